// Approval signatures (SPEC §2). Node's crypto is the fast verifier of the service; the
// strict @noble/ed25519 path is the independent second verifier (tests, `registry verify`).
// Node's crypto refuses a non-canonical S itself but accepts small-order, mixed-order and
// non-canonical public keys, so every key is checked here before it can verify anything.
// @noble's synchronous verify needs a SHA-512, which the program's edge provides once
// (src/cli/noble-setup.ts); the core sets no globals when it loads.
import { createPrivateKey, createPublicKey, randomBytes, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { fromHex, utf8Bytes } from './encoding.js';

export const APPROVAL_DOMAIN = 'registry-approval-v1:';
export const KEY_RE = /^[0-9a-f]{64}$/;
export const SIG_RE = /^[0-9a-f]{128}$/;

export const approvalMessage = (payloadHash: string): Uint8Array => utf8Bytes(APPROVAL_DOMAIN + payloadHash);

/** Keys checked so far and what was found: a point decompression and a subgroup check cost
 * about 2 ms, and a 64-key set_signers is checked at submission and again at commit. Bounded,
 * so that a stream of new keys cannot grow it without end. */
const keyProblems = new Map<string, string | null>();
const MAX_CHECKED_KEYS = 4096;

/** Why a public key may not sign for the registry, or undefined when it may. */
export function publicKeyProblem(publicKeyHex: string): string | undefined {
  if (!KEY_RE.test(publicKeyHex)) return 'a public key is 64 lowercase hex characters';
  const known = keyProblems.get(publicKeyHex);
  if (known !== undefined) return known ?? undefined;
  const problem = checkPublicKey(publicKeyHex);
  if (keyProblems.size >= MAX_CHECKED_KEYS) keyProblems.clear();
  keyProblems.set(publicKeyHex, problem ?? null);
  return problem;
}

function checkPublicKey(publicKeyHex: string): string | undefined {
  let point: ed.Point;
  try {
    point = ed.Point.fromHex(publicKeyHex, false);
  } catch {
    return 'the public key is not a canonical Ed25519 point';
  }
  if (point.isSmallOrder()) return 'the public key is a small-order point';
  // A key with a small-order component would let the cofactored (@noble) and cofactorless
  // (node:crypto) equations disagree; only keys of the prime-order subgroup may sign.
  if (!point.isTorsionFree()) return 'the public key is not in the prime-order subgroup';
  return undefined;
}

const MAX_CACHED_KEYS = 4096;

// DER prefixes that wrap a raw 32-byte Ed25519 key for node:crypto.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Verifies approvals with node:crypto, caching one KeyObject per checked public key. Keys
 * come from signer sets, current or proposed (a proposal is only checked once a current signer
 * has signed it); the bound keeps a long-lived process from growing with old proposals. */
export class ApprovalVerifier {
  private readonly keys = new Map<string, KeyObject | null>();

  private keyObject(publicKeyHex: string): KeyObject | null {
    let key = this.keys.get(publicKeyHex);
    if (key === undefined) {
      key =
        publicKeyProblem(publicKeyHex) === undefined
          ? createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(publicKeyHex, 'hex')]), format: 'der', type: 'spki' })
          : null;
      if (this.keys.size >= MAX_CACHED_KEYS) this.keys.clear();
      this.keys.set(publicKeyHex, key);
    }
    return key;
  }

  verify(publicKeyHex: string, payloadHash: string, sigHex: string): boolean {
    if (!SIG_RE.test(sigHex)) return false;
    const key = this.keyObject(publicKeyHex);
    if (key === null) return false;
    return nodeVerify(null, approvalMessage(payloadHash), key, Buffer.from(sigHex, 'hex'));
  }
}

/** The independent, strict (RFC 8032, no ZIP-215 leniency) verifier. */
export function verifyApprovalStrict(publicKeyHex: string, payloadHash: string, sigHex: string): boolean {
  // Without a SHA-512 every verification would throw below and read as "does not verify".
  if (!ed.hashes.sha512) throw new Error('@noble/ed25519 has no SHA-512: call useNobleSha512() (src/cli/noble-setup.ts) at start');
  if (!SIG_RE.test(sigHex) || publicKeyProblem(publicKeyHex) !== undefined) return false;
  try {
    // @noble checks the cofactored equation; node:crypto the cofactorless one. Refusing an R
    // outside the prime-order subgroup makes the two agree on every signature.
    if (!ed.Point.fromHex(sigHex.slice(0, 64), false).isTorsionFree()) return false;
    return ed.verify(fromHex(sigHex), approvalMessage(payloadHash), fromHex(publicKeyHex), { zip215: false });
  } catch {
    return false;
  }
}

export interface KeyPair {
  secretKey: string;
  publicKey: string;
}

export function generateKeyPair(): KeyPair {
  const seed = randomBytes(32);
  return { secretKey: seed.toString('hex'), publicKey: publicKeyOf(seed.toString('hex')) };
}

const privateKey = (secretKeyHex: string): KeyObject =>
  createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.from(secretKeyHex, 'hex')]), format: 'der', type: 'pkcs8' });

/** The public key of a 32-byte Ed25519 seed: the last 32 bytes of its SPKI encoding. */
export const publicKeyOf = (secretKeyHex: string): string =>
  createPublicKey(privateKey(secretKeyHex)).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length).toString('hex');

/** Signs `registry-approval-v1:<payloadHash>` with a 32-byte Ed25519 seed. */
export function signApproval(secretKeyHex: string, payloadHash: string): string {
  return nodeSign(null, approvalMessage(payloadHash), privateKey(secretKeyHex)).toString('hex');
}
