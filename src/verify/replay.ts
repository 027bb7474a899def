// The auditor's replay of the commit log, from SPEC §3–§5, §10 and docs/protocol.md §5 alone: every
// record is checked against the one before it and against the state the auditor builds itself.
// Where retention pruned old records (SPEC §10), the replay follows the genesis and every kept
// record below the oldest checkpoint (signatures, quorums and signer-set changes, without the
// state), takes that checkpoint's state once it hashes to its record's state_root, and replays
// every record after it in full.
import { b3, b3raw, HASH, jcs, keyProblem, verifyApproval } from './primitives.js';
import type { SignatureJob } from './signatures.js';

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
  /** The version that last put each descriptor (a listing's `changed_in`). */
  readonly changedIn = new Map<string, number>();
  private readonly buckets: Map<string, Entry>[] = Array.from({ length: 256 }, () => new Map<string, Entry>());
  /** "registry-state-v1" ‖ bucket_hash(0..255) ‖ b3(JCS(signer_set)): kept between commits, only
   * the buckets a commit touched are rehashed into it. */
  private readonly rootBytes = new Uint8Array(17 + 257 * 32);
  private readonly dirty = new Set<number>(Array.from({ length: 256 }, (_, i) => i));
  private setText = '';

  /** `text`: the descriptor's text as a checkpoint stores it, hashed as it is (SPEC §5's leaf is
   * b3 of the canonical JSON; a text that is not canonical gives another root, which is caught). */
  put(d: Obj, changedIn: number, text = jcs(d)): void {
    const id = d.id as string;
    const keyBytes = b3raw(Buffer.from(id, 'utf8'));
    const entry: Entry = { key: Buffer.from(keyBytes).toString('hex'), keyBytes, leaf: b3raw(Buffer.from(text, 'utf8')) };
    this.descriptors.set(id, d);
    this.changedIn.set(id, changedIn);
    this.buckets[keyBytes[0]!]!.set(id, entry);
    this.dirty.add(keyBytes[0]!);
  }

  delete(id: string): void {
    const keyBytes = b3raw(Buffer.from(id, 'utf8'));
    this.descriptors.delete(id);
    this.changedIn.delete(id);
    this.buckets[keyBytes[0]!]!.delete(id);
    this.dirty.add(keyBytes[0]!);
  }

  root(signerSet: SignerSet): string {
    const all = this.rootBytes;
    if (this.setText === '') all.set(Buffer.from('registry-state-v1', 'ascii'), 0);
    for (const i of this.dirty) {
      const entries = [...this.buckets[i]!.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const bytes = new Uint8Array(entries.length * 64);
      entries.forEach((e, n) => {
        bytes.set(e.keyBytes, n * 64);
        bytes.set(e.leaf, n * 64 + 32);
      });
      all.set(b3raw(bytes), 17 + i * 32);
    }
    this.dirty.clear();
    const setText = jcs(signerSet);
    if (setText !== this.setText) {
      this.setText = setText;
      all.set(b3raw(Buffer.from(setText, 'utf8')), 17 + 256 * 32);
    }
    return b3(all);
  }
}

export interface ReplayCounts {
  /** Records read and checked (pruned ones are not). */
  records: number;
  /** Commits (versions ≥ 1), pruned ones included. */
  commits: number;
  /** Versions whose record was pruned (SPEC §10): only their hash links are known. */
  pruned: number;
  /** Kept records below the horizon, checked without the state (signatures, quorums, links). */
  followed: number;
  puts: number;
  deletes: number;
  signatures: number;
  signerSetChanges: number;
}

/** What the auditor knows of a version once it has checked it. For a pruned version, `hash` and
 * `payloadHash` are what the database's columns say ('' over HTTP, until the next record names
 * its prev_hash), and nothing else is known. */
export interface Checked {
  version: number;
  hash: string;
  prevHash: string | null;
  stateRoot: string;
  committedAt: string;
  payloadHash: string;
  /** -1 when the state at this version is not known (pruned records before it, no checkpoint yet). */
  descriptorCount: number;
  pruned: boolean;
  /** The replay built the state at this version itself (or loaded it from a checkpoint that
   * hashes to this record's state_root): stateRoot and descriptorCount are verified. */
  stateKnown: boolean;
}

/** A descriptor of a checkpoint's state, as a source serves it. */
export interface StateEntry {
  id: string;
  changedIn: number;
  descriptor: unknown;
  /** Its stored text (a database's checkpoint_entries), hashed as it is. */
  text?: string;
}

/** Verifies an approval at once, and throws its failure: the replay without a signature pool. */
const inThread = (job: SignatureJob): void => {
  if (!verifyApproval(job.key, job.payloadHash, job.sig)) throw job.failure();
};

/** Feeds records in version order; each is checked before it is applied. */
export class Replay {
  private state = new State();
  private signerSet: SignerSet | undefined;
  /** False from the first pruned version until the horizon's state is loaded. */
  private stateKnown = true;
  private firstPruned: number | undefined;
  /** The oldest checkpoint's version: only versions below it may be pruned. */
  horizon: number | undefined;
  /** Every id → key and key → id ever in force (an id names one key, a key one id). */
  private readonly keyOfId = new Map<string, string>();
  private readonly idOfKey = new Map<string, string>();
  registryId = '';
  last: Checked | undefined;
  readonly counts: ReplayCounts = {
    records: 0,
    commits: 0,
    pruned: 0,
    followed: 0,
    puts: 0,
    deletes: 0,
    signatures: 0,
    signerSetChanges: 0,
  };
  /** Every signer set in force so far, genesis first, each with the first version it approves. */
  readonly signerHistory: { from: number; set: SignerSet }[] = [];
  /** What is known of each version, indexed by version: the audit cross-check and checkpoints. */
  readonly history: Checked[] = [];

  /** `signatures` takes every approval to verify: by default it is verified at once, in-thread;
   * a SignatureVerifier may batch them and report the first failure later. */
  constructor(private readonly signatures: (job: SignatureJob) => void = inThread) {}

  /** Whether the replay holds the state at its last version (no pruned gap since the horizon). */
  get hasState(): boolean {
    return this.stateKnown;
  }
  /** The descriptors at the last version, with the version that last put each. */
  get descriptors(): ReadonlyMap<string, unknown> {
    return this.state.descriptors;
  }
  changedInOf(id: string): number | undefined {
    return this.state.changedIn.get(id);
  }

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

  /** Checks `record` as version `expectedVersion` and applies it. `storedText`: the text the source
   * stores it as (a database row), which must be its canonical JSON. */
  apply(record: unknown, expectedVersion: number, storedText?: string): Checked {
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
    const payloadText = jcs(payload);
    const payloadHash = b3(payloadText);
    if (record.payload_hash !== payloadHash)
      fail(`payload_hash ${show(record.payload_hash)} is not the hash of the payload (${payloadHash}): the payload was changed`);
    // The record's canonical JSON, reusing the payload's (most of it): its members are the ten
    // ASCII names checked above, which JCS orders as a plain sort does.
    const text = `{${Object.keys(record)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${k === 'payload' ? payloadText : jcs(record[k])}`)
      .join(',')}}`;
    if (storedText !== undefined && text !== storedText) fail('the stored record is not its canonical JSON');
    const hash = b3(text);
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
      this.adopt(newSet, 1);
    } else {
      const prev = this.last!;
      if (record.registry_id !== this.registryId) fail(`registry_id ${JSON.stringify(record.registry_id)} is not ${this.registryId}`);
      // A record pruned and read over HTTP (410): its hash is known only from the next record.
      if (prev.pruned && prev.hash === '' && typeof record.prev_hash === 'string' && HASH.test(record.prev_hash))
        prev.hash = record.prev_hash;
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
      if (this.stateKnown) this.applyOps(payload.ops as Obj[], expectedVersion);
      else if (expectedVersion !== this.horizon) this.counts.followed++;
      if (newSet) {
        this.adopt(newSet, expectedVersion + 1);
        this.counts.signerSetChanges++;
      }
      this.counts.commits++;
    }
    let root = record.state_root as string;
    if (this.stateKnown) {
      root = this.state.root(this.signerSet!);
      if (record.state_root !== root) fail(`state_root ${show(record.state_root)} is not the root of the state after the change (${root})`);
    }
    const checked: Checked = {
      version: expectedVersion,
      hash,
      prevHash: (record.prev_hash as string | null) ?? null,
      stateRoot: root,
      committedAt,
      payloadHash,
      descriptorCount: this.stateKnown ? this.state.descriptors.size : -1,
      pruned: false,
      stateKnown: this.stateKnown,
    };
    this.counts.records++;
    this.last = checked;
    this.history.push(checked);
    return checked;
  }

  /** A version whose record was pruned (its text is gone: a database row with record '', or 410
   * over HTTP). Only versions below the oldest checkpoint may be, never the genesis; the state is
   * unknown from here until the horizon's checkpoint is loaded. `known`: the hash columns kept. */
  applyPruned(version: number, known: { hash?: string; payloadHash?: string } = {}): Checked {
    if (version === 0) throw new LogError(0, 'the genesis record is pruned: the genesis is never pruned, it is the trust root');
    if (this.last?.version !== version - 1) throw new LogError(version, `out of order: the replay is at ${String(this.last?.version)}`);
    if (this.horizon === undefined)
      throw new LogError(version, 'pruned, yet there is no checkpoint: only versions below the oldest checkpoint may be pruned');
    if (version >= this.horizon)
      throw new LogError(
        version,
        `pruned, yet it is not below the oldest checkpoint (version ${this.horizon}): only versions below it may be pruned`,
      );
    for (const [what, h] of Object.entries(known))
      if (h !== undefined && !HASH.test(h)) throw new LogError(version, `pruned, and its ${what} column is not a b3 hash`);
    this.stateKnown = false;
    this.firstPruned ??= version;
    const checked: Checked = {
      version,
      hash: known.hash ?? '',
      prevHash: null,
      stateRoot: '',
      committedAt: '',
      payloadHash: known.payloadHash ?? '',
      descriptorCount: -1,
      pruned: true,
      stateKnown: false,
    };
    this.counts.pruned++;
    this.counts.commits++;
    this.last = checked;
    this.history.push(checked);
    return checked;
  }

  /** At the horizon (the last version applied, after pruned ones): takes a checkpoint's state as
   * the state, once it hashes (with the signer set the replay followed) to the record's state_root. */
  loadState(entries: Iterable<StateEntry>, where: string): void {
    const at = this.last!;
    const fail = (m: string): never => {
      throw new LogError(at.version, `the state of the checkpoint (${where}) ${m}`);
    };
    if (this.stateKnown) fail('is loaded, yet the replay holds the state already');
    const state = new State();
    for (const e of entries) {
      const d = e.descriptor;
      if (!isObj(d) || d.id !== e.id || typeof e.id !== 'string' || !DESCRIPTOR_ID.test(e.id))
        fail(`holds an entry ${JSON.stringify(e.id)} that is not a descriptor with that id`);
      if (state.descriptors.has(e.id)) fail(`holds ${e.id} twice`);
      if (!isNat(e.changedIn) || e.changedIn < 1 || e.changedIn > at.version)
        fail(`says ${e.id} changed in version ${show(e.changedIn)}, not one of 1..${at.version}`);
      state.put(d as Obj, e.changedIn, e.text);
    }
    const root = state.root(this.signerSet!);
    if (root !== at.stateRoot)
      fail(
        `hashes to ${root}, not to the state_root ${at.stateRoot} of record ${at.version}` +
          (this.firstPruned !== undefined ? this.prunedNote() : ''),
      );
    this.state = state;
    this.stateKnown = true;
    at.descriptorCount = state.descriptors.size;
    at.stateKnown = true;
  }

  /** Said where a failure could come from a signer-set change pruned against the rules. */
  private prunedNote(): string {
    if (this.firstPruned === undefined || this.stateKnown) return '';
    return ` (versions from ${this.firstPruned} on are pruned: had one of them changed the signer set, which is never pruned, this is what would show)`;
  }

  private adopt(set: SignerSet, from: number): void {
    this.signerSet = set;
    this.signerHistory.push({ from, set });
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
        if (this.stateKnown && !this.state.descriptors.has(op.id))
          fail(`ops[${i}] deletes ${op.id}, which is not in the state at the base`);
      } else if (op.op === 'set_signers') {
        members(op, ['op', 'signer_set'], [], `ops[${i}]`, fail);
        if (newSet) fail('more than one set_signers');
        newSet = this.checkSignerSet(op.signer_set, fail, 'the proposed signer set');
      } else fail(`ops[${i}] has an unknown op ${JSON.stringify(op.op)}`);
    });
    return newSet;
  }

  private applyOps(ops: Obj[], version: number): void {
    for (const op of ops) {
      if (op.op === 'put') {
        this.state.put(op.descriptor as Obj, version);
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
        return fail(
          `the approval of ${id} is by no signer of the ${sets.length > 1 ? 'current or proposed' : 'current'} set${this.prunedNote()}`,
        );
      const version = this.last ? this.last.version + 1 : 0;
      const note = this.prunedNote();
      this.signatures({
        key,
        payloadHash,
        sig,
        failure: () => new LogError(version, `the approval of ${id} does not verify under its key${note}`),
      });
      this.counts.signatures++;
      approved.add(id);
    }
    sets.forEach((set, i) => {
      const n = set.signers.filter((s) => approved.has(s.id)).length;
      const which =
        sets.length === 1 ? (this.last ? 'the current set' : 'the genesis set') : i === 0 ? 'the current set' : 'the proposed set';
      if (n < set.threshold) fail(`approved by ${n} of ${which}, below its threshold ${set.threshold}: no quorum${this.prunedNote()}`);
    });
  }
}

/** The state root (SPEC §5) of a whole state: the descriptors and the signer set. */
export function stateRootOf(descriptors: Iterable<Record<string, unknown>>, signerSet: SignerSet): string {
  const state = new State();
  for (const d of descriptors) state.put(d as Obj, 0);
  return state.root(signerSet);
}

/** The state root of descriptors as stored texts (a checkpoint's entries): key = b3(id), leaf =
 * b3(text) as it is stored. */
export function stateRootOfTexts(entries: Iterable<{ id: string; text: string }>, signerSet: SignerSet): string {
  const state = new State();
  for (const e of entries) state.put({ id: e.id }, 0, e.text);
  return state.root(signerSet);
}
