// `propose`, `review` and `approve`: the signer's commands against a running registry. Keys
// never leave this machine; what is signed is a hash computed here.
import { createInterface } from 'node:readline';
import { Option, type Command } from 'commander';
import { signApproval } from '../../core/crypto.js';
import { formatTime, hashOf } from '../../core/encoding.js';
import { DEFAULT_PROPOSAL_TTL_MS, MAX_PROPOSAL_TTL_MS } from '../../core/proposal.js';
import { DeleteOp, PutOp, ProposalPayload, SetSignersOp, type Op } from '../../core/schemas.js';
import { check } from '../../core/validate.js';
import { RemoteError, UsageError } from '../../errors.js';
import { CliError, EXIT } from '../exit.js';
import { output, readJsonFile } from '../io.js';
import { readKeyFile } from '../keyfile.js';
import { electorateOf, keyProblem, reviewProposal, signerIdFor, verdictError, type Review } from '../review.js';
import { apiOf, registryIdOption, urlOption, needed } from './options.js';

const OP_SCHEMAS = { put: PutOp, delete: DeleteOp, set_signers: SetSignersOp } as const;

/** The ops in the --ops file: a JSON array of ops, or {"ops": [...]}; each checked by its kind. */
export function readOps(path: string): Op[] {
  const raw = readJsonFile(path, '--ops');
  const list = Array.isArray(raw) ? raw : (raw as { ops?: unknown } | null)?.ops;
  if (!Array.isArray(list) || list.length === 0)
    throw new UsageError(`--ops ${path} must hold a non-empty JSON array of ops, or {"ops": [...]}`);
  return list.map((op: unknown, i) => {
    const kind = (op as { op?: unknown } | null)?.op;
    const schema = typeof kind === 'string' ? OP_SCHEMAS[kind as keyof typeof OP_SCHEMAS] : undefined;
    if (!schema) throw new UsageError(`--ops ${path}: ops[${i}].op must be "put", "delete" or "set_signers"`);
    return check(schema as typeof PutOp, op, `--ops ${path}: ops[${i}] (${kind as string})`, (m) => new UsageError(m));
  });
}

/** A refusal of a write, with the exit code that scripts tell apart. */
function refused(e: unknown, what: string): unknown {
  if (!(e instanceof RemoteError)) return e;
  if (e.code === 'StaleVersion') return new CliError(`${what}: the head moved meanwhile (${e.message}); nothing committed`, EXIT.STALE);
  if (e.code === 'Gone') return new CliError(`${what}: ${e.message}`, EXIT.EXPIRED);
  return e;
}

export function proposeCommand(program: Command): void {
  program
    .command('propose')
    .summary('propose a change on the head, signed by your key')
    .description(
      'Proposes the ops in --ops against the head of the registry at --url, with your approval. Checks first that your key is a ' +
        "signer's key on that registry. Prints the proposal as the registry answers it (--quiet: its id only).",
    )
    .addOption(urlOption())
    .addOption(needed('--key <file>', 'your key file (registry keygen)'))
    .addOption(needed('--ops <file>', 'a JSON array of ops, or {"ops": [...]}: put, delete, set_signers'))
    .option('--reason <text>', 'why, shown to the other signers')
    .option(
      '--ttl-hours <hours>',
      `hours until it expires (default ${DEFAULT_PROPOSAL_TTL_MS / 3600_000}, at most ${MAX_PROPOSAL_TTL_MS / 3600_000})`,
    )
    .option('--id <signer-id>', "the signer you sign as (default: the key file's, or whose key it is)")
    .addOption(registryIdOption())
    .option('-q, --quiet', 'print only the proposal id, for scripts: id=$(registry propose … --quiet)')
    .action(propose);
}

interface ProposeOptions {
  url: string;
  key: string;
  ops: string;
  reason?: string;
  ttlHours?: string;
  id?: string;
  registryId?: string;
  quiet?: boolean;
}

async function propose(opts: ProposeOptions): Promise<void> {
  const api = apiOf(opts.url);
  const key = readKeyFile(opts.key);
  const ops = readOps(opts.ops);
  const ttl = opts.ttlHours === undefined ? DEFAULT_PROPOSAL_TTL_MS : Number(opts.ttlHours) * 3600_000;
  if (!(ttl > 0 && ttl <= MAX_PROPOSAL_TTL_MS))
    throw new UsageError(`--ttl-hours must be a number of hours above 0 and at most ${MAX_PROPOSAL_TTL_MS / 3600_000}`);
  const [head, info] = await Promise.all([api.head(), api.info()]);
  if (opts.registryId !== undefined && info.registry_id !== opts.registryId)
    throw new CliError(`the registry at ${api.url} is ${info.registry_id}, not ${opts.registryId} (--registry-id)`, EXIT.WRONG_REGISTRY);
  // Only a signer of the current set may propose: check the key before signing anything.
  const electorate = electorateOf(head);
  const signerId = signerIdFor(electorate, opts.id ?? key.signer_id, key.public_key, opts.key);
  const problem = keyProblem(electorate, signerId, key.public_key, info.registry_id);
  if (problem) throw new CliError(problem, EXIT.WRONG_KEY);
  const now = Date.now();
  const payload = check(
    ProposalPayload,
    {
      type: 'registry.proposal',
      schema_version: 1,
      registry_id: info.registry_id,
      base_version: head.version,
      base_hash: head.hash,
      ops,
      ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
      created_at: formatTime(now),
      expires_at: formatTime(now + ttl),
    },
    'the proposal',
    (m) => new UsageError(m),
  );
  const id = hashOf(payload);
  let result;
  try {
    result = await api.submit({ payload, approvals: [{ signer_id: signerId, sig: signApproval(key.secret_key, id) }] });
  } catch (e) {
    throw refused(e, 'the proposal was refused');
  }
  if (opts.quiet) process.stdout.write(`${id}\n`);
  else output(result);
  process.stderr.write(
    result.status === 'committed'
      ? `proposed ${id} as ${signerId}: committed as version ${result.version}\n`
      : `proposed ${id} as ${signerId} on registry ${info.registry_id} (${result.approvals.length} of ${result.threshold} approvals); ` +
          `the other signers review and approve it with: registry approve ${id} --url ${api.url} --key THEIR_KEY_FILE\n`,
  );
}

export function reviewCommand(program: Command): void {
  program
    .command('review')
    .summary('show what a proposal changes, checked on this machine')
    .description(
      'Fetches a proposal, hashes its payload here and refuses if it is not the id asked for or not for the registry you expect; ' +
        'says whether its base is the head; shows what it changes against the base: descriptors added, removed and changed ' +
        'field by field, the signer set and its thresholds, expiry and reason. The exit code says where it stands ' +
        '(README → CLI reference → Exit codes).',
    )
    .argument('<proposal-id>', 'the proposal id, or the start of a pending one (at least 4 hex characters)')
    .addOption(urlOption())
    .addOption(registryIdOption())
    .action(review);
}

async function review(given: string, opts: { url: string; registryId?: string }): Promise<void> {
  const result = await reviewProposal(apiOf(opts.url), given, opts.registryId);
  process.stdout.write(result.lines.join('\n') + '\n');
  const refusal = verdictError(result);
  // The verdict is printed already: exit with its code, saying nothing more.
  if (refusal) throw new CliError('', refusal.exitCode);
}

export function approveCommand(program: Command): void {
  program
    .command('approve')
    .summary('review a proposal, confirm, and sign it')
    .description(
      'Shows the review of `registry review`, refuses a stale, expired or committed proposal and a key that is not your signer key ' +
        'on this registry, asks you to confirm, then signs the hash it computed itself and posts the approval.',
    )
    .argument('<proposal-id>', 'the proposal id, or the start of a pending one (at least 4 hex characters)')
    .addOption(urlOption())
    .addOption(needed('--key <file>', 'your key file (registry keygen)'))
    .option('--id <signer-id>', "the signer you sign as (default: the key file's, or whose key it is)")
    .addOption(registryIdOption())
    .addOption(new Option('-y, --yes', 'approve without asking (for scripts; read the review first)'))
    .action(approve);
}

interface ApproveOptions {
  url: string;
  key: string;
  id?: string;
  registryId?: string;
  yes?: boolean;
}

/** Asks on the terminal; Enter, or the end of input, is no. */
function confirm(question: string): Promise<boolean> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    let answered = false;
    rl.once('close', () => {
      if (!answered) process.stderr.write('\n');
      resolve(false);
    });
    rl.question(question, (answer) => {
      answered = true;
      resolve(/^\s*y(es)?\s*$/i.test(answer));
      rl.close();
    });
  });
}

async function approve(given: string, opts: ApproveOptions): Promise<void> {
  const key = readKeyFile(opts.key);
  const api = apiOf(opts.url);
  const r: Review = await reviewProposal(api, given, opts.registryId);
  process.stderr.write(r.lines.join('\n') + '\n\n');
  const refusal = verdictError(r);
  if (refusal) throw refusal;
  const electorate = electorateOf(r.head, r.payload);
  const signerId = signerIdFor(electorate, opts.id ?? key.signer_id, key.public_key, opts.key);
  if (r.view.approvals.some((a) => a.signer_id === signerId))
    throw new CliError(
      `${signerId} has already approved ${r.id} (${r.view.approvals.length} of ${r.view.threshold} approvals): nothing was signed`,
      EXIT.ALREADY_APPROVED,
    );
  const problem = keyProblem(electorate, signerId, key.public_key, r.registryId);
  if (problem) throw new CliError(problem, EXIT.WRONG_KEY);
  if (!opts.yes) {
    if (!process.stdin.isTTY)
      throw new UsageError('approve asks for confirmation, and stdin is not a terminal: pass --yes to approve without asking');
    if (!(await confirm(`approve ${r.id} as ${signerId} on registry ${r.registryId}? [y/N] `)))
      throw new CliError('not approved: nothing was signed', EXIT.FAILURE);
  }
  // r.id is the hash of the payload computed here, never an id the registry handed over.
  let result;
  try {
    result = await api.approve(r.id, { signer_id: signerId, sig: signApproval(key.secret_key, r.id) });
  } catch (e) {
    throw refused(e, 'the approval was refused');
  }
  output(result);
  process.stderr.write(
    result.status === 'committed'
      ? `approved ${r.id} as ${signerId}: committed as version ${result.version}\n`
      : `approved ${r.id} as ${signerId}: ${result.approvals.length} of ${result.threshold} approvals, ${result.status}\n`,
  );
}
