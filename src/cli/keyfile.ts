// Signer key files: JSON with the 32-byte Ed25519 seed, readable by their owner only.
import { openSync, readFileSync, statSync, writeSync, closeSync } from 'node:fs';
import { KEY_RE, publicKeyOf } from '../core/crypto.js';

export interface KeyFile {
  signer_id?: string;
  public_key: string;
  secret_key: string;
}

/** Creates the file with mode 0600; refuses to overwrite an existing key. */
export function writeKeyFile(path: string, key: KeyFile): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, JSON.stringify(key, null, 2) + '\n');
  } finally {
    closeSync(fd);
  }
}

export function readKeyFile(path: string): KeyFile {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) throw new Error(`${path} is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
  const key = JSON.parse(readFileSync(path, 'utf8')) as Partial<KeyFile>;
  if (typeof key.secret_key !== 'string' || !KEY_RE.test(key.secret_key))
    throw new Error(`${path} holds no secret_key (64 hex characters)`);
  const public_key = publicKeyOf(key.secret_key);
  if (key.public_key !== undefined && key.public_key !== public_key) throw new Error(`${path}: public_key does not belong to secret_key`);
  return { ...(typeof key.signer_id === 'string' ? { signer_id: key.signer_id } : {}), public_key, secret_key: key.secret_key };
}
