// Signer key files: JSON with the 32-byte Ed25519 seed, readable by their owner only.
import { openSync, statSync, writeSync, closeSync } from 'node:fs';
import { KEY_RE, publicKeyOf } from '../core/crypto.js';
import { UsageError } from '../errors.js';
import { readText } from './io.js';

export interface KeyFile {
  signer_id?: string;
  public_key: string;
  secret_key: string;
}

/** Creates the file with mode 0600; refuses to overwrite an existing key. */
export function writeKeyFile(path: string, key: KeyFile): void {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EEXIST') throw new UsageError(`--out: ${path} exists (EEXIST); a key file is never overwritten: pick another name`);
    if (err.code === 'ENOENT') throw new UsageError(`--out: the folder of ${path} does not exist`);
    throw new UsageError(`--out: cannot create ${path}: ${err.message}`);
  }
  try {
    writeSync(fd, JSON.stringify(key, null, 2) + '\n');
  } finally {
    closeSync(fd);
  }
}

const WHAT_A_KEY_FILE_IS = 'a key file is the JSON {signer_id, public_key, secret_key} that `registry keygen --out F` writes';

/** The JSON object in a file that should be a key file, or a UsageError saying it is not one. */
function keyFileObject(path: string, flag: string): Record<string, unknown> {
  const text = readText(path, flag);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`${flag} ${path} is not a key file: it is not JSON (${WHAT_A_KEY_FILE_IS})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new UsageError(`${flag} ${path} is not a key file (${WHAT_A_KEY_FILE_IS})`);
  return value as Record<string, unknown>;
}

/** A signer's key file, checked: it is one, only its owner can read it, and its public key is its secret key's. */
export function readKeyFile(path: string, flag = '--key'): KeyFile {
  const key = keyFileObject(path, flag);
  if (typeof key.secret_key !== 'string' || !KEY_RE.test(key.secret_key)) {
    const type = typeof key.type === 'string' ? ` (it holds a ${key.type})` : '';
    if (typeof key.public_key === 'string' && key.secret_key === undefined)
      throw new UsageError(`${flag} ${path} holds a public key only; signing needs the signer's own key file, with its secret_key`);
    throw new UsageError(`${flag} ${path} is not a key file${type}: it has no secret_key of 64 hex characters (${WHAT_A_KEY_FILE_IS})`);
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) throw new UsageError(`${flag} ${path} is readable by others (mode ${mode.toString(8)}): chmod 600 ${path}`);
  const public_key = publicKeyOf(key.secret_key);
  if (key.public_key !== undefined && key.public_key !== public_key)
    throw new UsageError(`${flag} ${path}: its public_key does not belong to its secret_key; the file is damaged`);
  return { ...(typeof key.signer_id === 'string' ? { signer_id: key.signer_id } : {}), public_key, secret_key: key.secret_key };
}

/** The public key and signer id in a key file, for `genesis create --signer ID=KEYFILE`: a
 * signer's own key file, or a file holding only {signer_id?, public_key}. */
export function readPublicKey(path: string, flag: string): { signer_id?: string; public_key: string } {
  const key = keyFileObject(path, flag);
  if (key.secret_key !== undefined) return readKeyFile(path, flag);
  if (typeof key.public_key !== 'string' || !KEY_RE.test(key.public_key))
    throw new UsageError(`${flag} ${path} is not a key file: it has no public_key of 64 hex characters (${WHAT_A_KEY_FILE_IS})`);
  return { ...(typeof key.signer_id === 'string' ? { signer_id: key.signer_id } : {}), public_key: key.public_key };
}
