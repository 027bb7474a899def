// The descriptor state at a version and its bucketed state root (SPEC §5). Planning a
// change (planOps) is pure and validates every op; applying it (applyDelta) mutates the
// state in place, so a commit costs what it touches, not the size of the registry.
import { blake3Digest, canonicalBytes, canonicalJson, hashBytes, parseTime, toHex, utf8Bytes, type Digest32 } from './encoding.js';
import { badRequest } from './errors.js';
import type { Descriptor, Op, SignerSet } from './schemas.js';
import { rotationProblem, signerSetProblem } from './signers.js';

const BUCKETS = 256;
const ROOT_PREFIX = utf8Bytes('registry-state-v1');

export interface Entry {
  readonly descriptor: Descriptor;
  /** b3(UTF-8 id), raw 32 bytes, and its hex (the sort key within a bucket). */
  readonly key: Uint8Array;
  readonly keyHex: string;
  /** b3(JCS(descriptor)), raw 32 bytes. */
  readonly leaf: Uint8Array;
  /** JCS(descriptor): what is hashed, and what the read plane serves. */
  readonly json: string;
  /** The version whose commit last put this descriptor. */
  readonly changedIn: number;
}

export interface Delta {
  readonly version: number;
  readonly puts: readonly Entry[];
  readonly deletes: readonly string[];
  readonly signerSet: SignerSet | undefined;
  /** Every descriptor id the change touches, in op order. */
  readonly changed: readonly string[];
}

export class RegistryState {
  readonly entries = new Map<string, Entry>();
  private readonly buckets: Map<string, Entry>[] = Array.from({ length: BUCKETS }, () => new Map<string, Entry>());
  private readonly bucketHashes: Uint8Array[];
  private readonly dirty = new Set<number>();
  private signerSetDigest: Uint8Array;
  /** Every signer set in force so far, with the first version it counts approvals for. */
  private readonly signerHistory: { from: number; set: SignerSet }[];

  constructor(
    private signers: SignerSet,
    readonly digest: Digest32 = blake3Digest,
  ) {
    this.signerHistory = [{ from: 1, set: signers }];
    const empty = digest(new Uint8Array(0));
    this.bucketHashes = Array.from({ length: BUCKETS }, () => empty);
    this.signerSetDigest = digest(canonicalBytes(signers));
  }

  get signerSet(): SignerSet {
    return this.signers;
  }

  /** Every signer set in force so far, genesis first: ids and keys are never rebound. */
  get signerSets(): SignerSet[] {
    return this.signerHistory.map((h) => h.set);
  }

  /** The signer sets in force over time, as a checkpoint keeps them: each with the first
   * version it approves. */
  get signerHistoryEntries(): readonly { from: number; set: SignerSet }[] {
    return this.signerHistory;
  }

  /** Loads a checkpoint's signer-set history into a fresh state (genesis set first), before its
   * descriptors are applied. */
  restoreSigners(history: readonly { from: number; set: SignerSet }[]): void {
    if (this.entries.size || this.signerHistory.length !== 1) throw new Error('restoreSigners needs a fresh state');
    this.signerHistory.length = 0;
    this.signerHistory.push(...history);
    this.signers = history[history.length - 1]!.set;
    this.signerSetDigest = this.digest(canonicalBytes(this.signers));
  }

  /** An entry from a checkpoint: `json` is the descriptor's stored canonical JSON, hashed as
   * stored (the state root check catches any other text, and the leaf is what clients hash). */
  entryFromJson(json: string, changedIn: number): Entry {
    const descriptor = JSON.parse(json) as Descriptor;
    const key = this.keyOf(descriptor.id);
    return { descriptor, key, keyHex: toHex(key), leaf: this.digest(utf8Bytes(json)), json, changedIn };
  }

  /** The signer set whose approvals count for a proposal on base version `baseVersion`. */
  signerSetAt(baseVersion: number): SignerSet {
    let set = this.signerHistory[0]!.set;
    for (const h of this.signerHistory) if (h.from <= baseVersion + 1) set = h.set;
    return set;
  }

  get size(): number {
    return this.entries.size;
  }

  entry(key: Uint8Array, descriptor: Descriptor, changedIn: number): Entry {
    const json = canonicalJson(descriptor);
    return { descriptor, key, keyHex: toHex(key), leaf: this.digest(utf8Bytes(json)), json, changedIn };
  }

  keyOf(id: string): Uint8Array {
    return this.digest(utf8Bytes(id));
  }

  /** Applies a planned change. Bucket hashes are recomputed lazily by `root()`. */
  apply(delta: Delta): void {
    for (const id of delta.deletes) {
      const old = this.entries.get(id);
      if (!old) continue;
      this.entries.delete(id);
      this.buckets[old.key[0]!]!.delete(id);
      this.dirty.add(old.key[0]!);
    }
    for (const entry of delta.puts) {
      this.entries.set(entry.descriptor.id, entry);
      this.buckets[entry.key[0]!]!.set(entry.descriptor.id, entry);
      this.dirty.add(entry.key[0]!);
    }
    if (delta.signerSet) {
      this.signers = delta.signerSet;
      this.signerHistory.push({ from: delta.version + 1, set: delta.signerSet });
      this.signerSetDigest = this.digest(canonicalBytes(delta.signerSet));
    }
  }

  /** The state root now. */
  root(): string {
    for (const b of this.dirty) this.bucketHashes[b] = this.hashBucket(this.buckets[b]!.values());
    this.dirty.clear();
    return this.combine(this.bucketHashes, this.signerSetDigest);
  }

  /** The state root after `delta`, without changing this state. */
  rootAfter(delta: Delta): string {
    this.root();
    const hashes = [...this.bucketHashes];
    const touched = new Set<number>();
    for (const id of delta.deletes) touched.add(this.entries.get(id)?.key[0] ?? this.keyOf(id)[0]!);
    for (const e of delta.puts) touched.add(e.key[0]!);
    const removed = new Set([...delta.deletes, ...delta.puts.map((e) => e.descriptor.id)]);
    for (const b of touched) {
      const kept = [...this.buckets[b]!.values()].filter((e) => !removed.has(e.descriptor.id));
      hashes[b] = this.hashBucket([...kept, ...delta.puts.filter((e) => e.key[0] === b)]);
    }
    const signers = delta.signerSet ? this.digest(canonicalBytes(delta.signerSet)) : this.signerSetDigest;
    return this.combine(hashes, signers);
  }

  private hashBucket(entries: Iterable<Entry>): Uint8Array {
    const sorted = [...entries].sort((a, b) => (a.keyHex < b.keyHex ? -1 : a.keyHex > b.keyHex ? 1 : 0));
    const bytes = new Uint8Array(sorted.length * 64);
    sorted.forEach((e, i) => {
      bytes.set(e.key, i * 64);
      bytes.set(e.leaf, i * 64 + 32);
    });
    return this.digest(bytes);
  }

  private combine(bucketHashes: readonly Uint8Array[], signerSetDigest: Uint8Array): string {
    const bytes = new Uint8Array(ROOT_PREFIX.length + 32 * (BUCKETS + 1));
    bytes.set(ROOT_PREFIX, 0);
    bucketHashes.forEach((h, i) => bytes.set(h, ROOT_PREFIX.length + 32 * i));
    bytes.set(signerSetDigest, ROOT_PREFIX.length + 32 * BUCKETS);
    return hashBytes(bytes, this.digest);
  }
}

/** Validates `ops` against `state` (SPEC §3) and plans the change as version `version`. */
export function planOps(state: RegistryState, ops: readonly Op[], version: number): Delta {
  const seen = new Set<string>();
  const puts: Entry[] = [];
  const deletes: string[] = [];
  let signerSet: SignerSet | undefined;
  ops.forEach((op, i) => {
    const where = `ops[${i}]`;
    if (op.op === 'set_signers') {
      if (signerSet) throw badRequest(`${where}: at most one set_signers per proposal`);
      const problem = signerSetProblem(op.signer_set) ?? rotationProblem(state.signerSets, op.signer_set);
      if (problem) throw badRequest(`${where}: ${problem}`);
      signerSet = op.signer_set;
      return;
    }
    const id = op.op === 'put' ? op.descriptor.id : op.id;
    if (seen.has(id)) throw badRequest(`${where}: descriptor ${id} appears more than once in the proposal`);
    seen.add(id);
    if (op.op === 'put') {
      const expires = op.descriptor.expires_at;
      if (expires !== undefined && Number.isNaN(parseTime(expires))) throw badRequest(`${where}: expires_at ${expires} is not a real time`);
      puts.push(state.entry(state.keyOf(id), op.descriptor, version));
    } else {
      if (!state.entries.has(id)) throw badRequest(`${where}: delete of ${id}, which is not in the base state`);
      deletes.push(id);
    }
  });
  return { version, puts, deletes, signerSet, changed: [...seen] };
}
