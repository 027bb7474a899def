// `registry freeze` and `registry thaw`: the operator stops and restarts the write plane
// (README → Operations → Freeze and thaw). The operator token comes from a file or from the
// environment, never from the command line, where every local user could read it (ps).
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { UsageError, RemoteError } from '../../errors.js';
import { call } from '../http-client.js';
import { output, registryUrl } from '../io.js';
import { urlOption } from './options.js';

export const OPERATOR_TOKEN_ENV = 'REGISTRY_OPERATOR_TOKEN';

interface FreezeJson {
  frozen: boolean;
  reason?: string;
  since?: string;
  changed: boolean;
}

const tokenFileOption = (): Option =>
  new Option('--token-file <file>', `a file holding the operator token (default: the environment's ${OPERATOR_TOKEN_ENV})`).env(
    'REGISTRY_OPERATOR_TOKEN_FILE',
  );

/** The operator token: the content of --token-file (without its trailing newline), or the environment's. */
function operatorToken(file: string | undefined): string {
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read the operator token file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const token = text.replace(/\r?\n$/, '');
    if (token === '') throw new UsageError(`the operator token file ${file} is empty`);
    return token;
  }
  const token = process.env[OPERATOR_TOKEN_ENV];
  if (token === undefined || token === '')
    throw new UsageError(`the operator token is needed: --token-file FILE, or ${OPERATOR_TOKEN_ENV}`);
  return token;
}

async function send(url: string, path: 'ops/freeze' | 'ops/thaw', body: object, tokenFile: string | undefined): Promise<void> {
  const token = operatorToken(tokenFile);
  let state: FreezeJson;
  try {
    state = await call<FreezeJson>(registryUrl(url), 'POST', path, body, { authorization: `Bearer ${token}` });
  } catch (e) {
    // The registry answers a wrong token exactly as an unknown route, by design.
    if (e instanceof RemoteError && e.status === 404)
      throw new Error(`${e.message}: the operator token is wrong, or the registry has none configured (operatorToken, operatorTokenFile)`, {
        cause: e,
      });
    throw e;
  }
  output(state);
  if (state.frozen)
    process.stderr.write(
      `${state.changed ? 'frozen' : 'already frozen'} since ${state.since}: ${state.reason}; writes are refused, reads go on\n`,
    );
  else process.stderr.write(`${state.changed ? 'thawed' : 'not frozen'}: writes are accepted\n`);
}

export function freezeCommand(program: Command): void {
  program
    .command('freeze')
    .summary('stop all writes (operator)')
    .description(
      'Freezes the write plane: every proposal and approval is refused 503 with the reason until `registry thaw`; reads go on. ' +
        'Audited as a `frozen` event; nothing is committed. Needs the operator token (--token-file, or ' +
        `${OPERATOR_TOKEN_ENV}). Freezing a frozen registry changes nothing and says so.`,
    )
    .addOption(urlOption())
    .requiredOption('--reason <text>', 'why (1 to 1024 characters): in the audit log and in every refusal')
    .addOption(tokenFileOption())
    .action((opts: { url: string; reason: string; tokenFile?: string }) =>
      send(opts.url, 'ops/freeze', { reason: opts.reason }, opts.tokenFile),
    );
}

export function thawCommand(program: Command): void {
  program
    .command('thaw')
    .summary('accept writes again (operator)')
    .description(
      'Thaws the write plane frozen by `registry freeze`. Audited as a `thawed` event. Needs the operator token (--token-file, or ' +
        `${OPERATOR_TOKEN_ENV}).`,
    )
    .addOption(urlOption())
    .option('--reason <text>', 'why (optional): in the audit log')
    .addOption(tokenFileOption())
    .action((opts: { url: string; reason?: string; tokenFile?: string }) =>
      send(opts.url, 'ops/thaw', opts.reason === undefined ? {} : { reason: opts.reason }, opts.tokenFile),
    );
}
