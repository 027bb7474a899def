#!/usr/bin/env node
// The `registry` command. Keys never leave the signer's machine: `sign`, `propose` and
// `approve` sign locally and send only signatures.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { generateKeyPair, signApproval } from '../core/crypto.js';
import { formatTime, hashOf } from '../core/encoding.js';
import { DEFAULT_PROPOSAL_TTL_MS } from '../core/proposal.js';
import { assembleGenesis, buildGenesisPayload, checkGenesisRecord } from '../core/records.js';
import { Approval, GenesisPayload, Op, ProposalPayload, SignerSet, type CommitRecord } from '../core/schemas.js';
import { check } from '../core/validate.js';
import Type from 'typebox';
import { loadConfig } from '../config/config.js';
import { IntegrityError, RegistryError } from '../core/errors.js';
import { ConfigError, RemoteError, StartError, StoreBusyError, UsageError } from '../errors.js';
import { call } from './http-client.js';
import { readKeyFile, writeKeyFile } from './keyfile.js';
import { useNobleSha512 } from './noble-setup.js';
import { watch } from './watch.js';

useNobleSha512();

const USAGE = `registry <command> [options]

  serve      [--genesis F] [--db F|:memory:] [--host H] [--port N] [--config F]
             [--synchronous FULL|NORMAL|EXTRA] [--log-level L] [--data-dir D]
             [--stream-heartbeat-ms N] [--stream-ring-size N] [--stream-queue-frames N]
             [--stream-queue-bytes N] [--stream-max-subscribers N] [--stream-max-per-address N]
             [--stream-max-replay N]
  keygen     --out F [--id SIGNER_ID]            new Ed25519 key (file mode 0600); prints the public key
  genesis create   --registry-id ID --threshold M --signer ID=PUBLIC_KEY ... [--out F]
  genesis assemble PAYLOAD_FILE --approval FILE ... [--out F]
  sign       PAYLOAD_FILE --key F [--id SIGNER_ID]   prints an approval {signer_id, sig}
  propose    --url U --key F --ops F [--reason TEXT] [--ttl-hours N] [--id SIGNER_ID]
  approve    PROPOSAL_ID --url U --key F [--id SIGNER_ID]
  status     --url U [PROPOSAL_ID]
  watch      --url U [--filter EXPR] [--kind K] [--from V] [--json]   follows the commit stream, one line per commit
`;

type Options = NonNullable<ParseArgsConfig['options']>;

function args<const O extends Options>(argv: string[], options: O) {
  return parseArgs({ args: argv, options, allowPositionals: true as const, strict: true as const });
}

const str = (v: unknown, name: string): string => {
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${name} is required`);
  return v;
};

const readJson = (path: string): unknown => JSON.parse(readFileSync(path, 'utf8'));

function output(value: unknown, out?: string): void {
  const text = JSON.stringify(value, null, 2) + '\n';
  if (out) writeFileSync(out, text);
  else process.stdout.write(text);
}

function signerOf(keyPath: string, id: unknown): { signerId: string; secretKey: string } {
  const key = readKeyFile(keyPath);
  const signerId = typeof id === 'string' ? id : key.signer_id;
  if (!signerId) throw new UsageError(`${keyPath} names no signer_id; pass --id`);
  return { signerId, secretKey: key.secret_key };
}

async function serve(argv: string[]): Promise<void> {
  const { values } = args(argv, {
    genesis: { type: 'string' },
    db: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    config: { type: 'string' },
    synchronous: { type: 'string' },
    'log-level': { type: 'string' },
    'data-dir': { type: 'string' },
    'stream-heartbeat-ms': { type: 'string' },
    'stream-ring-size': { type: 'string' },
    'stream-queue-frames': { type: 'string' },
    'stream-queue-bytes': { type: 'string' },
    'stream-max-subscribers': { type: 'string' },
    'stream-max-per-address': { type: 'string' },
    'stream-max-replay': { type: 'string' },
  });
  // --kebab-case flags name camelCase settings.
  const camel = Object.fromEntries(Object.entries(values).map(([k, v]) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v]));
  const config = loadConfig(camel);
  // Loaded here so that the signing commands start without the server's modules.
  const [{ createLogger }, { startRegistry }, { ensureDevGenesis }] = await Promise.all([
    import('../obs/logger.js'),
    import('../server.js'),
    import('./dev-registry.js'),
  ]);
  const logger = createLogger(config.logLevel);
  const registry = await startRegistry({ ...config, genesis: config.genesis ?? ensureDevGenesis(config.dataDir, logger) }, logger);
  process.stdout.write(`listening on ${registry.url}\n`);
  const { default: closeWithGrace } = await import('close-with-grace');
  closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an error');
    else logger.info({ signal }, 'shutting down');
    await registry.close();
  });
}

function keygen(argv: string[]): void {
  const { values } = args(argv, { out: { type: 'string' }, id: { type: 'string' } });
  const out = str(values.out, 'out');
  if (values.id !== undefined && !/^[a-z0-9._-]{1,64}$/.test(values.id)) throw new UsageError('--id: 1-64 characters of a-z 0-9 . _ -');
  const key = generateKeyPair();
  writeKeyFile(out, { ...(values.id ? { signer_id: values.id } : {}), public_key: key.publicKey, secret_key: key.secretKey });
  process.stdout.write(key.publicKey + '\n');
}

function genesis(argv: string[]): void {
  const [sub, ...rest] = argv;
  if (sub === 'create') {
    const { values } = args(rest, {
      'registry-id': { type: 'string' },
      threshold: { type: 'string' },
      signer: { type: 'string', multiple: true },
      out: { type: 'string' },
    });
    const signers = (values.signer ?? []).map((s) => {
      const [id, public_key] = s.split('=');
      if (!id || !public_key) throw new UsageError(`--signer ${s}: expected ID=PUBLIC_KEY`);
      return { id, public_key };
    });
    signers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const set = check(SignerSet, { threshold: Number(values.threshold), signers }, 'the signer set');
    const payload = check(
      GenesisPayload,
      buildGenesisPayload(str(values['registry-id'], 'registry-id'), set, formatTime(Date.now())),
      'the genesis payload',
    );
    output(payload, values.out);
    process.stderr.write(
      `genesis payload ${hashOf(payload)}: have ${set.threshold} of ${set.signers.length} signers run \`registry sign\` on it\n`,
    );
    return;
  }
  if (sub === 'assemble') {
    const { values, positionals } = args(rest, { approval: { type: 'string', multiple: true }, out: { type: 'string' } });
    if (positionals.length !== 1) throw new UsageError('genesis assemble PAYLOAD_FILE --approval FILE ...');
    const payload = check(GenesisPayload, readJson(positionals[0]!), 'the genesis payload');
    const approvals = (values.approval ?? []).map((f) => check(Approval, readJson(f), `the approval in ${f}`));
    const record = assembleGenesis(payload, approvals);
    const checked = checkGenesisRecord(record);
    output(record, values.out);
    process.stderr.write(`genesis record ${checked.hash}: this is the trust root clients pin\n`);
    return;
  }
  throw new UsageError('genesis create | genesis assemble');
}

function sign(argv: string[]): void {
  const { values, positionals } = args(argv, { key: { type: 'string' }, id: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('sign PAYLOAD_FILE --key F');
  const payload = check(Type.Union([GenesisPayload, ProposalPayload]), readJson(positionals[0]!), 'the payload');
  const { signerId, secretKey } = signerOf(str(values.key, 'key'), values.id);
  const payloadHash = hashOf(payload);
  output({ signer_id: signerId, sig: signApproval(secretKey, payloadHash) });
  process.stderr.write(`signed ${payloadHash} as ${signerId}\n`);
}

interface Head {
  version: number;
  hash: string;
}

async function propose(argv: string[]): Promise<void> {
  const { values } = args(argv, {
    url: { type: 'string' },
    key: { type: 'string' },
    ops: { type: 'string' },
    reason: { type: 'string' },
    'ttl-hours': { type: 'string' },
    id: { type: 'string' },
  });
  const url = str(values.url, 'url');
  const { signerId, secretKey } = signerOf(str(values.key, 'key'), values.id);
  const raw = readJson(str(values.ops, 'ops'));
  const ops = check(Type.Array(Op, { minItems: 1 }), Array.isArray(raw) ? raw : (raw as { ops?: unknown }).ops, 'the ops file');
  const ttl = values['ttl-hours'] === undefined ? DEFAULT_PROPOSAL_TTL_MS : Number(values['ttl-hours']) * 3600_000;
  if (!(ttl > 0)) throw new UsageError('--ttl-hours must be a positive number');
  const [head, info] = await Promise.all([call<Head>(url, 'GET', 'registry/head'), call<{ registry_id: string }>(url, 'GET', 'version')]);
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
      ...(values.reason !== undefined ? { reason: values.reason } : {}),
      created_at: formatTime(now),
      expires_at: formatTime(now + ttl),
    },
    'the proposal',
  );
  const id = hashOf(payload);
  const result = await call(url, 'POST', 'registry/proposals', {
    payload,
    approvals: [{ signer_id: signerId, sig: signApproval(secretKey, id) }],
  });
  output(result);
}

async function approve(argv: string[]): Promise<void> {
  const { values, positionals } = args(argv, { url: { type: 'string' }, key: { type: 'string' }, id: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('approve PROPOSAL_ID --url U --key F');
  const url = str(values.url, 'url');
  const proposalId = positionals[0]!;
  const { signerId, secretKey } = signerOf(str(values.key, 'key'), values.id);
  const [proposal, info] = await Promise.all([
    call<{ payload: unknown }>(url, 'GET', `registry/proposals/${encodeURIComponent(proposalId)}`),
    call<{ registry_id: string }>(url, 'GET', 'version'),
  ]);
  // Sign what we hashed ourselves, never an id the server hands us.
  const payload = check(ProposalPayload, proposal.payload, 'the proposal payload');
  const payloadHash = hashOf(payload);
  if (payloadHash !== proposalId) throw new Error(`the server's payload hashes to ${payloadHash}, not ${proposalId}: refusing to sign`);
  if (payload.registry_id !== info.registry_id)
    throw new Error(`the proposal is for registry ${payload.registry_id}, the server is ${info.registry_id}`);
  process.stderr.write(
    `approving ${payloadHash} on ${payload.registry_id} (base version ${payload.base_version}, ${payload.ops.length} ops${payload.reason ? `: ${payload.reason}` : ''})\n`,
  );
  output(
    await call(url, 'POST', `registry/proposals/${encodeURIComponent(proposalId)}/approvals`, {
      signer_id: signerId,
      sig: signApproval(secretKey, payloadHash),
    }),
  );
}

async function status(argv: string[]): Promise<void> {
  const { values, positionals } = args(argv, { url: { type: 'string' } });
  const url = str(values.url, 'url');
  const proposalId = positionals[0];
  if (proposalId === undefined) output(await call<unknown>(url, 'GET', 'registry/head'));
  else output(await call<CommitRecord>(url, 'GET', `registry/proposals/${encodeURIComponent(proposalId)}`));
}

const COMMANDS: Record<string, (argv: string[]) => void | Promise<void>> = {
  serve,
  keygen,
  genesis,
  sign,
  propose,
  approve,
  status,
  watch,
};

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  const run = COMMANDS[command];
  if (!run) throw new UsageError(`unknown command ${command}`);
  await run(rest);
}

/** What the user reads when a command fails: what went wrong and, where it helps, what to do. */
function explain(e: unknown, command: string | undefined): string {
  if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return `${(e as Error).message}\n\n${USAGE}`;
  if (e instanceof StartError || e instanceof ConfigError || e instanceof StoreBusyError) return `registry: cannot start: ${e.message}\n`;
  // A log that does not hold together, or a genesis that does not check out.
  if (e instanceof IntegrityError) return command === 'serve' ? `registry: cannot start: ${e.message}\n` : `registry: ${e.message}\n`;
  if (e instanceof RemoteError || e instanceof RegistryError) return `registry: ${e.message}\n`;
  return `registry: ${(e as Error).message}\n`;
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(explain(e, process.argv[2]));
  process.exit(1);
});
