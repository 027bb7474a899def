// `npm start` with no genesis: a development registry with freshly generated keys.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { generateKeyPair, signApproval } from '../core/crypto.js';
import { formatTime, hashOf } from '../core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../core/records.js';
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
