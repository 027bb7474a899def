// `npm start` with no genesis: a development registry with freshly generated keys.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { generateKeyPair, signApproval } from '../core/crypto.js';
import { formatTime, hashOf } from '../core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../core/records.js';
import { shellQuote } from './io.js';
import { writeKeyFile } from './keyfile.js';

export const DEV_SIGNERS = ['alice', 'bob', 'carol'];

/** The path of the development genesis in `dataDir`, created with 2-of-3 dev keys if absent. */
export function ensureDevGenesis(dataDir: string, logger: Logger, now = Date.now()): string {
  const path = resolve(dataDir, 'genesis.json');
  const keysDir = resolve(dataDir, 'dev-keys');
  if (existsSync(path)) {
    logger.warn(
      { genesis: path, keys: keysDir },
      'DEVELOPMENT REGISTRY: serving the development genesis; its keys are on this disk, never use it in production',
    );
    return path;
  }
  // genesis.json is written last: keys without it are what a crash left behind; set them aside.
  if (existsSync(keysDir)) renameSync(keysDir, `${keysDir}.incomplete-${now}`);
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const keys = DEV_SIGNERS.map((id) => ({ id, ...generateKeyPair() }));
  for (const k of keys) writeKeyFile(join(keysDir, `${k.id}.key`), { signer_id: k.id, public_key: k.publicKey, secret_key: k.secretKey });
  const payload = buildGenesisPayload(
    'dev',
    { threshold: 2, signers: keys.map((k) => ({ id: k.id, public_key: k.publicKey })) },
    formatTime(now),
  );
  const payloadHash = hashOf(payload);
  const record = assembleGenesis(
    payload,
    keys.slice(0, 2).map((k) => ({ signer_id: k.id, sig: signApproval(k.secretKey, payloadHash) })),
  );
  writeFileSync(`${path}.tmp`, JSON.stringify(record, null, 2) + '\n');
  renameSync(`${path}.tmp`, path);
  logger.warn(
    { genesis: path, keys: keysDir, registry_id: 'dev', threshold: 2, signers: DEV_SIGNERS },
    'DEVELOPMENT REGISTRY: created a genesis with freshly generated 2-of-3 development keys written beside it; never use it in production',
  );
  return path;
}

/** How to run this CLI from any folder: `registry` when it was run as the installed command,
 * else node and the script's absolute path (never `npx registry`: outside the checkout, npx
 * would fetch whatever package of that name the npm registry has). */
function cliName(): string {
  const script = process.argv[1] ?? 'registry';
  if (basename(script) === 'registry') return 'registry';
  return `node ${shellQuote(resolve(script))}`;
}

/** An ops file to try the development registry with. */
export const EXAMPLE_OPS = [
  {
    op: 'put',
    descriptor: { id: 'svc-hello@dev', kind: 'service', labels: { region: 'dev', tier: 'example' }, body: { addr: '127.0.0.1:9000' } },
  },
];

/** What the development registry prints on stdout once it listens: where its keys are, and a
 * propose and approve pair to run as they are (an example ops file is written beside the keys). */
export function devBanner(url: string, dataDir: string): string {
  const keys = resolve(dataDir, 'dev-keys');
  const ops = resolve(dataDir, 'example-ops.json');
  if (!existsSync(ops)) writeFileSync(ops, JSON.stringify(EXAMPLE_OPS, null, 2) + '\n');
  const cli = cliName();
  const key = (id: string) => shellQuote(join(keys, `${id}.key`));
  return [
    `development registry "dev": 2 of 3 signers (${DEV_SIGNERS.join(', ')}), their keys in ${keys} (never use them in production)`,
    'try it: propose a change as alice, then approve it as bob, who is shown what it changes and asked (2 of 3 approvals commit it):',
    `  id=$(${cli} propose --url ${url} --key ${key('alice')} --ops ${shellQuote(ops)} --reason 'a first change' --quiet)`,
    `  ${cli} approve "$id" --url ${url} --key ${key('bob')} --registry-id dev`,
    '',
  ].join('\n');
}
