// The auditor's own primitives, from the wire contract (SPEC §1, §2) alone: canonical JSON
// (RFC 8785, the `canonicalize` package), BLAKE3-256 (@noble/hashes, or hash-wasm's WebAssembly
// once fastHashes() has run), and Ed25519 verified strictly
// (@noble/ed25519 with ZIP-215 leniency off, plus the subgroup checks of docs/protocol.md §3), or
// with Node's crypto for `verify --fast`. Nothing here comes from the service's code.
import * as ed from '@noble/ed25519';
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { blake3 } from '@noble/hashes/blake3.js';
import { sha512 } from '@noble/hashes/sha2.js';
import canonicalize from 'canonicalize';
import { createBLAKE3 } from 'hash-wasm';

ed.hashes.sha512 ??= sha512;

const utf8 = new TextEncoder();

/** RFC 8785 canonical JSON text of a value. */
export function jcs(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new Error('value has no canonical JSON form');
  return text;
}

let digest: (bytes: Uint8Array) => Uint8Array = blake3;

/** Switches BLAKE3 to hash-wasm's WebAssembly build, about ten times @noble's pure JavaScript here:
 * a replay hashes each record, each payload and, for each state root, 8 KiB of bucket hashes, and
 * BLAKE3 was most of the main thread's time (`npm run perf:verify`). Both give the same digests
 * (test/unit/verify checks them against each other and the vectors). */
export async function fastHashes(): Promise<void> {
  if (digest !== blake3) return;
  const hasher = await createBLAKE3(256);
  digest = (bytes) => {
    hasher.init();
    hasher.update(bytes);
    return hasher.digest('binary');
  };
}

export const b3raw = (bytes: Uint8Array): Uint8Array => digest(bytes);

export const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** `b3:` + hex of BLAKE3 over the bytes. */
export const b3 = (bytes: Uint8Array | string): string => 'b3:' + toHex(digest(typeof bytes === 'string' ? utf8.encode(bytes) : bytes));

/** The hash of a value: b3(JCS(value)). */
export const hashOfValue = (value: unknown): string => b3(jcs(value));

export const HEX64 = /^[0-9a-f]{64}$/;
export const HEX128 = /^[0-9a-f]{128}$/;
export const HASH = /^b3:[0-9a-f]{64}$/;

const fromHex = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, 'hex'));

/** A public key a signer set may hold: canonical encoding, not small order, in the prime-order subgroup. */
export function keyProblem(publicKey: string): string | undefined {
  if (!HEX64.test(publicKey)) return 'is not 64 lowercase hex digits';
  let point: ed.Point;
  try {
    point = ed.Point.fromBytes(fromHex(publicKey), false);
  } catch {
    return 'is not the canonical encoding of a curve point';
  }
  if (point.isSmallOrder()) return 'is a small-order point';
  if (!point.isTorsionFree()) return 'has a small-order component (not in the prime-order subgroup)';
  return undefined;
}

/** The bytes an approval signs (SPEC §2). */
export const approvalMessage = (payloadHash: string): Uint8Array => utf8.encode(`registry-approval-v1:${payloadHash}`);

const acceptedKeys = new Map<string, boolean>();

/** Strict Ed25519: RFC 8032 without ZIP-215 leniency, canonical S, canonical R in the prime-order
 * subgroup, and a key that keyProblem accepts. */
export function verifyApproval(publicKey: string, payloadHash: string, sig: string): boolean {
  if (!HEX128.test(sig)) return false;
  let keyOk = acceptedKeys.get(publicKey);
  if (keyOk === undefined) acceptedKeys.set(publicKey, (keyOk = keyProblem(publicKey) === undefined));
  if (!keyOk) return false;
  const sigBytes = fromHex(sig);
  try {
    const r = ed.Point.fromBytes(sigBytes.subarray(0, 32), false);
    if (!r.isTorsionFree()) return false;
  } catch {
    return false;
  }
  try {
    return ed.verify(sigBytes, approvalMessage(payloadHash), fromHex(publicKey), { zip215: false });
  } catch {
    return false;
  }
}

/** A raw Ed25519 public key wrapped in SPKI DER (RFC 8410): this 12-byte prefix, then the 32 bytes. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const nodeKeys = new Map<string, KeyObject | null>();

/** `verify --fast`: Ed25519 by Node's crypto (OpenSSL), for the same verdicts as verifyApproval.
 *
 * OpenSSL rejects a non-canonical S and checks the equation without the cofactor, comparing the
 * encoding of [S]B − [k]A with R's bytes; it does accept small-order and mixed-order public keys,
 * so each key must first pass keyProblem (canonical, not small order, in the prime-order subgroup),
 * as the signer-set checks of the replay demand too. With such a key, [S]B − [k]A lies in the
 * prime-order subgroup, so an R that matches it byte for byte is canonical and in that subgroup:
 * the strict path's explicit check of R holds by itself. test/unit/verify checks both paths give
 * the same verdict on every vector. */
export function verifyApprovalFast(publicKey: string, payloadHash: string, sig: string): boolean {
  if (!HEX128.test(sig)) return false;
  let key = nodeKeys.get(publicKey);
  if (key === undefined) {
    key =
      keyProblem(publicKey) === undefined
        ? createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(publicKey, 'hex')]), format: 'der', type: 'spki' })
        : null;
    nodeKeys.set(publicKey, key);
  }
  if (key === null) return false;
  try {
    return cryptoVerify(null, approvalMessage(payloadHash), key, Buffer.from(sig, 'hex'));
  } catch {
    return false;
  }
}
