// Signer-set rules (SPEC §3) and quorum, including the double quorum of a rotation.
import { publicKeyProblem } from './crypto.js';
import type { SignerSet } from './schemas.js';

/** Why a signer set is not acceptable, or undefined. Applies to genesis and set_signers. */
export function signerSetProblem(set: SignerSet): string | undefined {
  if (set.threshold < 1 || set.threshold > set.signers.length) {
    return `threshold ${set.threshold} must be between 1 and the number of signers (${set.signers.length})`;
  }
  const keys = new Set<string>();
  for (let i = 0; i < set.signers.length; i++) {
    const signer = set.signers[i]!;
    // Signer ids are ASCII, so string order is byte order; strictly ascending also means unique.
    if (i > 0 && !(set.signers[i - 1]!.id < signer.id)) {
      return `signers must be listed once each in ascending order of id (${signer.id} is out of place)`;
    }
    if (keys.has(signer.public_key)) return `signer ${signer.id} reuses the public key of another signer`;
    keys.add(signer.public_key);
    const problem = publicKeyProblem(signer.public_key);
    if (problem) return `signer ${signer.id}: ${problem}`;
  }
  return undefined;
}

/** Why `next` may not become the signer set, given every set in force so far: an id names
 * one key for the registry's whole life, and a key answers to one id (a new key takes a new
 * id; a removed key does not come back under another name). */
export function rotationProblem(history: readonly SignerSet[], next: SignerSet): string | undefined {
  const keyById = new Map<string, string>();
  const idByKey = new Map<string, string>();
  for (const set of history) {
    for (const s of set.signers) {
      keyById.set(s.id, s.public_key);
      idByKey.set(s.public_key, s.id);
    }
  }
  for (const signer of next.signers) {
    const oldKey = keyById.get(signer.id);
    if (oldKey !== undefined && oldKey !== signer.public_key) {
      return `signer id ${signer.id} already named another key; a new key takes a new id`;
    }
    const oldId = idByKey.get(signer.public_key);
    if (oldId !== undefined && oldId !== signer.id) {
      return `the key of signer ${oldId} reappears under the id ${signer.id}`;
    }
  }
  return undefined;
}

/** Who may approve a proposal: the set in force and, for a rotation, the proposed set. */
export interface Electorate {
  current: SignerSet;
  proposed?: SignerSet | undefined;
}

/** The key that an approval by `signerId` must verify under, or undefined for a stranger. */
export function keyOf(electorate: Electorate, signerId: string): string | undefined {
  return (
    electorate.current.signers.find((s) => s.id === signerId)?.public_key ??
    electorate.proposed?.signers.find((s) => s.id === signerId)?.public_key
  );
}

export const isCurrentSigner = (electorate: Electorate, signerId: string): boolean =>
  electorate.current.signers.some((s) => s.id === signerId);

const approvalsFrom = (set: SignerSet, approvers: ReadonlySet<string>): number =>
  set.signers.reduce((n, s) => n + (approvers.has(s.id) ? 1 : 0), 0);

/** Quorum under the current set and, for a rotation, under the proposed set as well. */
export function hasQuorum(electorate: Electorate, approvers: ReadonlySet<string>): boolean {
  if (approvalsFrom(electorate.current, approvers) < electorate.current.threshold) return false;
  const proposed = electorate.proposed;
  return proposed === undefined || approvalsFrom(proposed, approvers) >= proposed.threshold;
}
