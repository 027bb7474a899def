// The auditor's replay of the commit log, from SPEC §3–§5 and docs/protocol.md §5 alone: every
// record is checked against the one before it and against the state the auditor builds itself.
import { b3, b3raw, HASH, hashOfValue, jcs, keyProblem, verifyApproval } from './primitives.js';

/** A record that does not hold together, or a chain that breaks, at `version`. */
export class LogError extends Error {
  override name = 'LogError';
  constructor(
    readonly version: number,
    message: string,
  ) {
    super(`version ${version}: ${message}`);
  }
}

interface Signer {
  id: string;
  public_key: string;
}
export interface SignerSet {
  threshold: number;
  signers: Signer[];
}
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DESCRIPTOR_ID = /^[A-Za-z0-9._:@/-]{1,256}$/;
const SIGNER_ID = /^[a-z0-9._-]{1,64}$/;
const KIND = /^[a-z0-9._-]{1,64}$/;
const LABEL_KEY = /^[A-Za-z0-9._/-]{1,63}$/;
const REGISTRY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_SIGNERS = 64;
const MAX_OPS = 10_000;

const show = (v: unknown): string => (typeof v === 'string' ? v : (JSON.stringify(v) ?? 'nothing'));
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTime = (v: unknown): v is string => typeof v === 'string' && TIME.test(v) && new Date(v).toISOString() === v;
const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Throws unless `o` has exactly the `required` members and no others beyond `optional`. */
function members(o: Obj, required: string[], optional: string[], what: string, fail: (m: string) => never): void {
  for (const k of required) if (!(k in o)) fail(`${what} lacks "${k}"`);
  for (const k of Object.keys(o)) if (!required.includes(k) && !optional.includes(k)) fail(`${what} has an unknown member "${k}"`);
}

interface Entry {
  key: string; // hex of b3(id), orders the bucket
  keyBytes: Uint8Array;
  leaf: Uint8Array;
}

/** The descriptor state and its root (SPEC §5), rehashing only the buckets a commit touched. */
class State {
  readonly descriptors = new Map<string, Obj>();
  private readonly buckets: Map<string, Entry>[] = Array.from({ length: 256 }, () => new Map<string, Entry>());
  private readonly bucketHashes: Uint8Array[] = Array.from({ length: 256 }, () => b3raw(new Uint8Array()));
  private readonly dirty = new Set<number>();

  put(d: Obj): void {
    const id = d.id as string;
    const keyBytes = b3raw(Buffer.from(id, 'utf8'));
    const entry: Entry = { key: Buffer.from(keyBytes).toString('hex'), keyBytes, leaf: b3raw(Buffer.from(jcs(d), 'utf8')) };
    this.descriptors.set(id, d);
    this.buckets[keyBytes[0]!]!.set(id, entry);
    this.dirty.add(keyBytes[0]!);
  }

  delete(id: string): void {
    const keyBytes = b3raw(Buffer.from(id, 'utf8'));
    this.descriptors.delete(id);
    this.buckets[keyBytes[0]!]!.delete(id);
    this.dirty.add(keyBytes[0]!);
  }

  root(signerSet: SignerSet): string {
    for (const i of this.dirty) {
      const entries = [...this.buckets[i]!.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const bytes = new Uint8Array(entries.length * 64);
      entries.forEach((e, n) => {
        bytes.set(e.keyBytes, n * 64);
        bytes.set(e.leaf, n * 64 + 32);
      });
      this.bucketHashes[i] = b3raw(bytes);
    }
    this.dirty.clear();
    const all = new Uint8Array(17 + 257 * 32);
    all.set(Buffer.from('registry-state-v1', 'ascii'), 0);
    this.bucketHashes.forEach((h, i) => all.set(h, 17 + i * 32));
    all.set(b3raw(Buffer.from(jcs(signerSet), 'utf8')), 17 + 256 * 32);
    return b3(all);
  }
}

export interface ReplayCounts {
  records: number;
  commits: number;
  puts: number;
  deletes: number;
  signatures: number;
  signerSetChanges: number;
}

/** What the auditor knows of a version once it has checked it. */
export interface Checked {
  version: number;
  hash: string;
  prevHash: string | null;
  stateRoot: string;
  committedAt: string;
  payloadHash: string;
  descriptorCount: number;
}

/** Feeds records in version order; each is checked before it is applied. */
export class Replay {
  private readonly state = new State();
  private signerSet: SignerSet | undefined;
  /** Every id → key and key → id ever in force (an id names one key, a key one id). */
  private readonly keyOfId = new Map<string, string>();
  private readonly idOfKey = new Map<string, string>();
  registryId = '';
  last: Checked | undefined;
  readonly counts: ReplayCounts = { records: 0, commits: 0, puts: 0, deletes: 0, signatures: 0, signerSetChanges: 0 };
  /** Record hashes by version, for the audit cross-check and checkpoints. */
  readonly history: Checked[] = [];

  get currentSigners(): SignerSet | undefined {
    return this.signerSet;
  }
  /** The key a signer id has, or had, in any set in force so far. */
  keyEverOf(id: string): string | undefined {
    return this.keyOfId.get(id);
  }
  get descriptorCount(): number {
    return this.state.descriptors.size;
  }

  apply(record: unknown, expectedVersion: number): Checked {
    const fail = (m: string): never => {
      throw new LogError(expectedVersion, m);
    };
    if (!isObj(record)) return fail('the record is not a JSON object');
    members(
      record,
      [
        'type',
        'schema_version',
        'registry_id',
        'version',
        'prev_hash',
        'payload',
        'payload_hash',
        'approvals',
        'state_root',
        'committed_at',
      ],
      [],
      'the record',
      fail,
    );
    if (record.type !== 'registry.commit') fail(`type is ${JSON.stringify(record.type)}, not "registry.commit"`);
    if (record.schema_version !== 1) fail('schema_version is not 1');
    if (record.version !== expectedVersion) fail(`the record says version ${JSON.stringify(record.version)}`);
    if (!isTime(record.committed_at)) fail('committed_at is not a time');
    if (typeof record.state_root !== 'string' || !HASH.test(record.state_root)) fail('state_root is not a b3 hash');
    if (!isObj(record.payload)) return fail('the payload is not an object');
    const payload = record.payload;
    const payloadHash = hashOfValue(payload);
    if (record.payload_hash !== payloadHash)
      fail(`payload_hash ${show(record.payload_hash)} is not the hash of the payload (${payloadHash}): the payload was changed`);
    const hash = hashOfValue(record);
    const committedAt = record.committed_at as string;

    let newSet: SignerSet | undefined;
    if (expectedVersion === 0) {
      if (record.prev_hash !== null) fail('the genesis has a prev_hash');
      members(payload, ['type', 'schema_version', 'registry_id', 'signer_set', 'created_at'], [], 'the genesis payload', fail);
      if (payload.type !== 'registry.genesis') fail('the genesis payload type is not "registry.genesis"');
      if (payload.schema_version !== 1) fail('the genesis payload schema_version is not 1');
      if (typeof record.registry_id !== 'string' || !REGISTRY_ID.test(record.registry_id)) fail('registry_id is not a registry id');
      if (payload.registry_id !== record.registry_id) fail('the genesis payload names another registry than its record');
      if (payload.created_at !== committedAt) fail("committed_at is not the genesis payload's created_at");
      this.registryId = record.registry_id as string;
      newSet = this.checkSignerSet(payload.signer_set, fail, 'the genesis signer set');
      this.checkApprovals(record.approvals, payloadHash, [newSet], fail);
      this.adopt(newSet);
    } else {
      const prev = this.last!;
      if (record.registry_id !== this.registryId) fail(`registry_id ${JSON.stringify(record.registry_id)} is not ${this.registryId}`);
      if (record.prev_hash !== prev.hash)
        fail(`prev_hash ${show(record.prev_hash)} is not the hash of version ${prev.version} (${prev.hash})`);
      members(
        payload,
        ['type', 'schema_version', 'registry_id', 'base_version', 'base_hash', 'ops', 'created_at'],
        ['reason', 'expires_at'],
        'the payload',
        fail,
      );
      if (payload.type !== 'registry.proposal') fail('the payload type is not "registry.proposal"');
      if (payload.schema_version !== 1) fail('the payload schema_version is not 1');
      if (payload.registry_id !== this.registryId) fail(`the payload is for registry ${JSON.stringify(payload.registry_id)}`);
      if (payload.base_version !== prev.version) fail(`base_version ${show(payload.base_version)} is not ${prev.version}`);
      if (payload.base_hash !== prev.hash) fail(`base_hash ${show(payload.base_hash)} is not the hash of version ${prev.version}`);
      if (!isTime(payload.created_at)) fail('the payload created_at is not a time');
      const created = Date.parse(payload.created_at as string);
      const expires =
        payload.expires_at === undefined
          ? created + 72 * 3600_000
          : isTime(payload.expires_at)
            ? Date.parse(payload.expires_at)
            : fail('expires_at is not a time');
      if (expires <= created || expires > created + 30 * 24 * 3600_000) fail('expires_at is not within 30 days after created_at');
      if (Date.parse(committedAt) >= expires) fail(`committed at ${committedAt}, after the proposal expired`);
      if (payload.reason !== undefined && (typeof payload.reason !== 'string' || payload.reason.length > 1024))
        fail('reason is not a text of at most 1024 characters');
      if (committedAt < prev.committedAt) fail(`committed_at ${committedAt} is before version ${prev.version}'s`);
      newSet = this.checkOps(payload.ops, fail);
      const electorate = newSet ? [this.signerSet!, newSet] : [this.signerSet!];
      this.checkApprovals(record.approvals, payloadHash, electorate, fail);
      this.applyOps(payload.ops as Obj[]);
      if (newSet) {
        this.adopt(newSet);
        this.counts.signerSetChanges++;
      }
      this.counts.commits++;
    }
    const root = this.state.root(this.signerSet!);
    if (record.state_root !== root) fail(`state_root ${show(record.state_root)} is not the root of the state after the change (${root})`);
    const checked: Checked = {
      version: expectedVersion,
      hash,
      prevHash: (record.prev_hash as string | null) ?? null,
      stateRoot: root,
      committedAt,
      payloadHash,
      descriptorCount: this.state.descriptors.size,
    };
    this.counts.records++;
    this.last = checked;
    this.history.push(checked);
    return checked;
  }

  private adopt(set: SignerSet): void {
    this.signerSet = set;
    for (const s of set.signers) {
      this.keyOfId.set(s.id, s.public_key);
      this.idOfKey.set(s.public_key, s.id);
    }
  }

  private checkSignerSet(value: Json | undefined, fail: (m: string) => never, what: string): SignerSet {
    if (!isObj(value)) return fail(`${what} is not an object`);
    members(value, ['threshold', 'signers'], [], what, fail);
    const { threshold, signers } = value;
    if (!Array.isArray(signers) || signers.length < 1 || signers.length > MAX_SIGNERS)
      return fail(`${what} must hold 1 to ${MAX_SIGNERS} signers`);
    if (!isNat(threshold) || threshold < 1 || threshold > signers.length)
      fail(`${what} has threshold ${show(threshold)}, not 1 to ${signers.length}`);
    const keys = new Set<string>();
    let previous = '';
    for (const s of signers) {
      if (!isObj(s)) return fail(`${what} holds a signer that is not an object`);
      members(s, ['id', 'public_key'], [], `a signer of ${what}`, fail);
      const { id, public_key: key } = s;
      if (typeof id !== 'string' || !SIGNER_ID.test(id)) return fail(`${what} holds a bad signer id ${JSON.stringify(id)}`);
      if (typeof key !== 'string') return fail(`${what}: signer ${id} has no key`);
      if (previous !== '' && Buffer.compare(Buffer.from(previous), Buffer.from(id)) >= 0)
        fail(`${what}: signers are not in strictly ascending order of id (${previous}, ${id})`);
      previous = id;
      if (keys.has(key)) fail(`${what}: key ${key} appears twice`);
      keys.add(key);
      const problem = keyProblem(key);
      if (problem) fail(`${what}: the key of ${id} ${problem}`);
      const had = this.keyOfId.get(id);
      if (had !== undefined && had !== key) fail(`${what}: signer id ${id} had another key before (an id names one key)`);
      const owner = this.idOfKey.get(key);
      if (owner !== undefined && owner !== id) fail(`${what}: the key of ${id} belonged to ${owner} before (a new key takes a new id)`);
    }
    return value as unknown as SignerSet;
  }

  private checkOps(ops: Json | undefined, fail: (m: string) => never): SignerSet | undefined {
    if (!Array.isArray(ops) || ops.length < 1 || ops.length > MAX_OPS) return fail(`ops must hold 1 to ${MAX_OPS} entries`);
    const ids = new Set<string>();
    let newSet: SignerSet | undefined;
    ops.forEach((op, i) => {
      if (!isObj(op)) return fail(`ops[${i}] is not an object`);
      if (op.op === 'put') {
        members(op, ['op', 'descriptor'], [], `ops[${i}]`, fail);
        const d = op.descriptor;
        if (!isObj(d)) return fail(`ops[${i}].descriptor is not an object`);
        members(d, ['id', 'kind', 'labels', 'body'], ['expires_at'], `ops[${i}].descriptor`, fail);
        if (typeof d.id !== 'string' || !DESCRIPTOR_ID.test(d.id)) return fail(`ops[${i}] puts a bad descriptor id`);
        if (typeof d.kind !== 'string' || !KIND.test(d.kind)) fail(`ops[${i}] (${d.id}) has a bad kind`);
        if (!isObj(d.labels) || Object.keys(d.labels).length > 64)
          return fail(`ops[${i}] (${d.id}) labels are not a map of at most 64 entries`);
        for (const [k, v] of Object.entries(d.labels))
          if (!LABEL_KEY.test(k) || typeof v !== 'string' || v.length > 1024)
            fail(`ops[${i}] (${d.id}) has a bad label ${JSON.stringify(k)}`);
        if (!isObj(d.body)) fail(`ops[${i}] (${d.id}) body is not an object`);
        if (d.expires_at !== undefined && !isTime(d.expires_at)) fail(`ops[${i}] (${d.id}) expires_at is not a time`);
        if (ids.has(d.id)) fail(`descriptor ${d.id} appears twice in ops`);
        ids.add(d.id);
      } else if (op.op === 'delete') {
        members(op, ['op', 'id'], [], `ops[${i}]`, fail);
        if (typeof op.id !== 'string' || !DESCRIPTOR_ID.test(op.id)) return fail(`ops[${i}] deletes a bad descriptor id`);
        if (ids.has(op.id)) fail(`descriptor ${op.id} appears twice in ops`);
        ids.add(op.id);
        if (!this.state.descriptors.has(op.id)) fail(`ops[${i}] deletes ${op.id}, which is not in the state at the base`);
      } else if (op.op === 'set_signers') {
        members(op, ['op', 'signer_set'], [], `ops[${i}]`, fail);
        if (newSet) fail('more than one set_signers');
        newSet = this.checkSignerSet(op.signer_set, fail, 'the proposed signer set');
      } else fail(`ops[${i}] has an unknown op ${JSON.stringify(op.op)}`);
    });
    return newSet;
  }

  private applyOps(ops: Obj[]): void {
    for (const op of ops) {
      if (op.op === 'put') {
        this.state.put(op.descriptor as Obj);
        this.counts.puts++;
      } else if (op.op === 'delete') {
        this.state.delete(op.id as string);
        this.counts.deletes++;
      }
    }
  }

  /** Sorted, one per signer, each by a member of the electorate and valid; quorum under every set. */
  private checkApprovals(approvals: Json | undefined, payloadHash: string, sets: SignerSet[], fail: (m: string) => never): void {
    if (!Array.isArray(approvals) || approvals.length === 0) return fail('the record has no approvals');
    const approved = new Set<string>();
    let previous = '';
    for (const a of approvals) {
      if (!isObj(a)) return fail('an approval is not an object');
      members(a, ['signer_id', 'sig'], [], 'an approval', fail);
      const { signer_id: id, sig } = a;
      if (typeof id !== 'string' || typeof sig !== 'string') return fail('an approval lacks its signer_id or sig');
      if (previous !== '' && Buffer.compare(Buffer.from(previous), Buffer.from(id)) >= 0)
        fail(`approvals are not sorted by signer_id with no repeats (${previous}, ${id})`);
      previous = id;
      const key = sets.map((s) => s.signers.find((m) => m.id === id)?.public_key).find((k) => k !== undefined);
      if (key === undefined)
        return fail(`the approval of ${id} is by no signer of the ${sets.length > 1 ? 'current or proposed' : 'current'} set`);
      if (!verifyApproval(key, payloadHash, sig)) fail(`the approval of ${id} does not verify under its key`);
      this.counts.signatures++;
      approved.add(id);
    }
    sets.forEach((set, i) => {
      const n = set.signers.filter((s) => approved.has(s.id)).length;
      const which =
        sets.length === 1 ? (this.last ? 'the current set' : 'the genesis set') : i === 0 ? 'the current set' : 'the proposed set';
      if (n < set.threshold) fail(`approved by ${n} of ${which}, below its threshold ${set.threshold}: no quorum`);
    });
  }
}

/** The state root (SPEC §5) of a whole state: the descriptors and the signer set. */
export function stateRootOf(descriptors: Iterable<Record<string, unknown>>, signerSet: SignerSet): string {
  const state = new State();
  for (const d of descriptors) state.put(d as Obj);
  return state.root(signerSet);
}
