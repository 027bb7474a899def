// The `registry` command line: commander parses it (help for every command, --version, the
// nearest flag or command suggested for a typo, extra arguments refused) and each command lives
// in src/cli/commands/. A failure prints one line saying what went wrong and what to do, and
// exits with a code scripts can rely on (src/cli/exit.ts, README → CLI reference).
import { Command, CommanderError } from 'commander';
import { IntegrityError, RegistryError } from '../core/errors.js';
import { ConfigError, RemoteError, StartError, StoreBusyError, UsageError } from '../errors.js';
import { SERVICE_VERSION } from '../version.js';
import { backupCommand } from './commands/backup.js';
import { approveCommand, proposeCommand, reviewCommand } from './commands/governance.js';
import { genesisCommand, keygenCommand, signCommand } from './commands/offline.js';
import { freezeCommand, thawCommand } from './commands/operator.js';
import { checkRequired, urlOption } from './commands/options.js';
import { auditCommand, getCommand, proposalsCommand, statusCommand } from './commands/read.js';
import { serveCommand } from './commands/serve.js';
import { verifyCommand } from './commands/verify.js';
import { CliError, EXIT } from './exit.js';
import { watch } from './watch.js';

const EXIT_CODES = `
Exit codes:
  0  done (review: pending on the current head, can be approved)
  1  failed: unreachable registry, refused request, unreadable file, not confirmed
  2  usage: unknown command or option, missing option, extra arguments
  3  the proposal is stale (its base is not the head)
  4  the proposal is already committed
  5  the proposal has expired
  6  the payload served does not hash to the proposal id
  7  another registry than --registry-id
  8  this signer has already approved the proposal
  9  the key is not that signer's key on this registry
  10-12  verify: the log, the audit chain, the source (registry verify --help)
`;

function watchCommand(program: Command): void {
  program
    .command('watch')
    .summary('follow the commit stream, one line per commit')
    .description(
      'Follows the commit stream: one line per commit (version, hash, time, changed ids) or, with --json, the event data as JSON ' +
        'lines. Reconnects by itself; runs until SIGINT or SIGTERM.',
    )
    .addOption(urlOption())
    .option('--filter <expr>', 'only commits touching matching descriptors (README → Filters), e.g. "labels.tier == \'gold\'"')
    .option('--kind <kind>', 'only commits touching descriptors of this kind')
    .option('--from <version>', 'replay the commits after this version first')
    .option('--json', 'the event data as JSON lines')
    .action(watch);
}

/** Every command, in the order `registry --help` lists them. A new command is a function that
 * adds itself to the program, here. */
const COMMANDS: ((program: Command) => void)[] = [
  serveCommand,
  keygenCommand,
  genesisCommand,
  signCommand,
  proposeCommand,
  reviewCommand,
  approveCommand,
  statusCommand,
  proposalsCommand,
  getCommand,
  auditCommand,
  watchCommand,
  freezeCommand,
  thawCommand,
  verifyCommand,
  backupCommand,
];

export function buildProgram(extra: ((program: Command) => void)[] = []): Command {
  const program = new Command('registry')
    .description('A signed, append-only registry: run it, sign its genesis, propose, review and approve changes, read it.')
    .version(SERVICE_VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    .configureHelp({ showGlobalOptions: false })
    .showSuggestionAfterError(true)
    // Errors are printed by run() below, on one line; help and version exit 0 through it too.
    .exitOverride()
    .configureOutput({ outputError: () => undefined });
  program.hook('preAction', (_program, command) => checkRequired(command));
  for (const add of [...COMMANDS, ...extra]) add(program);
  program.addHelpText('after', EXIT_CODES);
  return program;
}

/** `registry genesis create`: the command that `argv` reaches, as far as its words name commands. */
function commandPath(program: Command, argv: string[]): string {
  const path = ['registry'];
  let at = program;
  for (const word of argv) {
    if (word.startsWith('-')) break;
    const next = at.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!next) break;
    path.push(word);
    at = next;
  }
  return path.join(' ');
}

/** Commander's message as one line: `registry approve: unknown option '--urll' (did you mean --url?)`. */
function usageLine(e: CommanderError, where: string): string {
  const [line, ...rest] = e.message.replace(/^error: /, '').split('\n');
  // "too many arguments for 'status'. Expected 1 argument but got 2." → "… (expected 1 argument but got 2)"
  const first = line!.replace(/\. Expected (.*?)\.?$/, ' (expected $1)').replace(/\.$/, '');
  const suggestion = rest
    .join(' ')
    .trim()
    .replace(/^\(Did you mean (.*)\)$/, '(did you mean $1?)')
    .replace(/\?\?\)$/, '?)');
  const help = suggestion ? '' : `; see ${where} --help`;
  return `${where}: ${first}${suggestion ? ` ${suggestion}` : ''}${help}\n`;
}

/** What the user reads when a command fails: what went wrong and, where it helps, what to do. */
function explain(e: unknown, argv: string[]): { text: string; code: number } {
  // A CliError without a message has said what it had to say already (review's verdict).
  if (e instanceof CliError) return { text: e.message ? `registry: ${e.message}\n` : '', code: e.exitCode };
  if (e instanceof UsageError) return { text: `registry: ${e.message}\n`, code: EXIT.USAGE };
  if (e instanceof StartError || e instanceof ConfigError || e instanceof StoreBusyError)
    return { text: `registry: cannot start: ${e.message}\n`, code: EXIT.FAILURE };
  // A log that does not hold together, or a genesis that does not check out.
  if (e instanceof IntegrityError)
    return { text: argv[0] === 'serve' ? `registry: cannot start: ${e.message}\n` : `registry: ${e.message}\n`, code: EXIT.FAILURE };
  if (e instanceof RemoteError || e instanceof RegistryError) return { text: `registry: ${e.message}\n`, code: EXIT.FAILURE };
  return { text: `registry: ${(e as Error).message}\n`, code: EXIT.FAILURE };
}

/** Runs the command line `argv` (without node and the script): what it prints goes to stdout
 * and stderr, and the exit code is returned. */
export async function run(argv: string[], extra: ((program: Command) => void)[] = []): Promise<number> {
  const program = buildProgram(extra);
  if (argv.length === 0) {
    process.stdout.write(program.helpInformation() + EXIT_CODES);
    return EXIT.OK;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return EXIT.OK;
      // A command with subcommands given none: its help went to stderr already.
      if (e.code !== 'commander.help') process.stderr.write(usageLine(e, commandPath(program, argv)));
      return EXIT.USAGE;
    }
    const { text, code } = explain(e, argv);
    process.stderr.write(text);
    return code;
  }
}
