// `registry verify`: replays a whole log from the wire contract alone (SPEC §1–§5, §9, §10) and
// answers what it checked, or throws a LogError (naming the version), an AuditError (naming the
// seq), a TableError (a database row that disagrees) or a SourceError (cannot read the source).
//
// Signatures are verified on worker threads (signatures.ts) while the replay goes on in order on
// the main thread; whatever fails, the error reported is the one an in-order check meets first: a
// failure anywhere settles the signatures taken before it, and the first of those that does not
// verify wins.
import { AuditChain, AuditError, type AuditCounts } from './audit.js';
import { b3raw, fastHashes, hashOfValue, HASH, jcs } from './primitives.js';
import { LogError, Replay, stateRootOfTexts, type Checked, type ReplayCounts, type SignerSet, type StateEntry } from './replay.js';
import { SignatureVerifier } from './signatures.js';
import { getJson, inOrder, openDb, SourceError, TableError, type CheckpointRow, type DbRows } from './sources.js';

export { AuditError } from './audit.js';
export { LogError } from './replay.js';
export { SourceError, TableError } from './sources.js';

export interface Progress {
  phase(name: string, total: number): void;
  tick(done: number): void;
  end(): void;
}

const silent: Progress = { phase: () => undefined, tick: () => undefined, end: () => undefined };

export interface VerifyOptions {
  /** The genesis hash the caller pins (the trust root); without it, version 0 is trusted as read. */
  genesisHash?: string;
  /** Records fetched at once over HTTP. */
  concurrency?: number;
  /** Ed25519 by Node's crypto rather than strict @noble/ed25519 (same verdicts, much faster). */
  fast?: boolean;
  /** Signature worker threads: default one per core (os.availableParallelism()), 0 in-thread. */
  workers?: number;
  progress?: Progress;
}

export interface Summary {
  source: string;
  registryId: string;
  genesisHash: string;
  genesisPinned: boolean;
  head: Checked;
  signerSet: SignerSet;
  counts: ReplayCounts;
  audit: AuditCounts;
  /** How the signatures were verified, how many (records', and stored approvals not in a record),
   * and how many per second of the whole run. */
  signatures: { how: string; threads: number; verified: number; perSecond: number };
  /** The checkpoint the replay took its state from, because versions below it are pruned. */
  horizon: number | null;
  /** Checkpoints checked against the replay. */
  checkpoints: number;
  /** Extra checks made against the source's own tables or answers. */
  crossChecks: string[];
  checkpoint: string;
  seconds: number;
}

function checkGenesisPin(replay: Replay, pinned: string | undefined): void {
  if (pinned !== undefined && replay.history[0] && replay.history[0].hash !== pinned)
    throw new LogError(0, `the genesis hash is ${replay.history[0].hash}, not the pinned ${pinned}: another registry, or a forged genesis`);
}

function summary(
  source: string,
  replay: Replay,
  chain: AuditChain,
  sigs: SignatureVerifier,
  opts: VerifyOptions,
  started: number,
  extra: Partial<Summary>,
): Summary {
  const seconds = (performance.now() - started) / 1000;
  return {
    source,
    registryId: replay.registryId,
    genesisHash: replay.history[0]!.hash,
    genesisPinned: opts.genesisHash !== undefined,
    head: replay.last!,
    signerSet: replay.currentSigners!,
    counts: replay.counts,
    audit: chain.counts,
    signatures: {
      how: sigs.describe(),
      threads: sigs.threads,
      verified: sigs.verified,
      perSecond: Math.round(sigs.verified / Math.max(seconds, 1e-3)),
    },
    horizon: null,
    checkpoints: 0,
    crossChecks: [],
    checkpoint: 'none',
    seconds,
    ...extra,
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The payload hash the audit chain checks a `committed` event against: null when the version is
 * pruned and its payload hash is unknown (over HTTP). */
const commitOf =
  (replay: Replay) =>
  (v: number): string | null | undefined => {
    const c = replay.history[v];
    return c === undefined ? undefined : c.payloadHash === '' ? null : c.payloadHash;
  };

/** Runs `body` with a signature verifier; whatever it throws, the signatures taken before are
 * settled first, and the first of them that fails is the error (it came first in the log). */
async function withSignatures<T>(opts: VerifyOptions, body: (sigs: SignatureVerifier) => Promise<T>): Promise<T> {
  await fastHashes();
  const sigs = new SignatureVerifier({ fast: opts.fast, workers: opts.workers });
  try {
    const result = await body(sigs);
    const failure = await sigs.settle();
    if (failure) throw failure;
    return result;
  } catch (e) {
    const first = await sigs.settle().catch(() => undefined);
    throw first ?? e;
  } finally {
    await sigs.close();
  }
}

/** A replay whose approvals go to `sigs`; each one taken is remembered, so that the same
 * approval stored in the approvals table is not verified twice. */
function replayWith(sigs: SignatureVerifier, seen?: Set<string>): Replay {
  return new Replay((job) => {
    seen?.add(approvalDigest(job.key, job.payloadHash, job.sig));
    sigs.add(job);
  });
}

/** 32 bytes (as a short string) that stand for an approval: key, payload hash and signature. */
const approvalDigest = (key: string, payloadHash: string, sig: string): string =>
  Buffer.from(b3raw(Buffer.from(`${key}:${payloadHash}:${sig}`, 'utf8'))).toString('latin1');

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
};

/** The versions that a checkpoint's signer_history says changed the signer set (each entry after
 * the genesis's starts at the version after its change). */
function historyChanges(cp: CheckpointRow): Set<number> {
  const history = cp.signer_history === undefined ? [] : parseJson(cp.signer_history);
  if (!Array.isArray(history))
    throw new LogError(cp.version, `the checkpoint at version ${cp.version}: its signer_history is not a JSON array`);
  return new Set(
    history
      .slice(1)
      .map((h: unknown) => (isObj(h) && Number.isSafeInteger(h.from) ? (h.from as number) - 1 : -1))
      .filter((v) => v > 0),
  );
}

const CHECKPOINT_SHAPE = ['version', 'hash', 'state_root', 'descriptor_count', 'created_at'];

interface CheckpointClaim {
  version: number;
  hash: string;
  state_root: string;
  descriptor_count: number;
  created_at: string;
}

/** A checkpoint as the source describes it must be the replayed record and state at its version. */
function checkCheckpoint(replay: Replay, cp: CheckpointClaim, what: string): void {
  const at = replay.history[cp.version];
  if (!at) throw new LogError(cp.version, `${what} is at a version past the head: the log was cut, or the checkpoint is forged`);
  const fail = (m: string): never => {
    throw new LogError(cp.version, `${what} ${m}`);
  };
  if (at.pruned) fail('is at a version whose record is pruned');
  if (cp.hash !== at.hash) fail(`says hash ${String(cp.hash)}, but the record hashes to ${at.hash}`);
  if (!at.stateKnown) fail('is at a version whose state the replay could not know');
  if (cp.state_root !== at.stateRoot) fail(`says state_root ${String(cp.state_root)}, but the replayed state hashes to ${at.stateRoot}`);
  if (cp.descriptor_count !== at.descriptorCount)
    fail(`says descriptor_count ${String(cp.descriptor_count)}, but the replayed state holds ${at.descriptorCount}`);
  if (typeof cp.created_at !== 'string') fail('has no created_at');
}

function parseCheckpointList(json: unknown, path: string): CheckpointClaim[] {
  const items = isObj(json) && Array.isArray(json.items) ? (json.items as unknown[]) : undefined;
  if (!items) throw new SourceError(`${path} answered something other than {items: [...]}`);
  let previous = -1;
  return items.map((c) => {
    if (!isObj(c) || CHECKPOINT_SHAPE.some((k) => !(k in c)) || !Number.isSafeInteger(c.version) || (c.version as number) <= previous)
      throw new SourceError(
        `${path} lists a checkpoint that is not {version, hash, state_root, descriptor_count, created_at}, oldest first`,
      );
    previous = c.version as number;
    return c as unknown as CheckpointClaim;
  });
}

/** Verifies the registry served at `base` (its /registry/… answers). */
export async function verifyUrl(base: string, opts: VerifyOptions = {}): Promise<Summary> {
  const started = performance.now();
  const progress = opts.progress ?? silent;
  const root = base.endsWith('/') ? base : base + '/';
  const head = await getJson(root, 'registry/head');
  if (head.status !== 200 || !isObj(head.json) || !Number.isSafeInteger(head.json.version) || (head.json.version as number) < 0)
    throw new SourceError(`${root}registry/head answered ${head.status}, not a head: is this a registry?`);
  const claimed = head.json;
  const headVersion = claimed.version as number;

  /** Every checkpoint served, oldest first: GET /registry/checkpoints, or only the latest where the
   * list is not served. */
  const readCheckpoints = async (): Promise<CheckpointClaim[]> => {
    const list = await getJson(root, 'registry/checkpoints');
    if (list.status === 200) return parseCheckpointList(list.json, `${root}registry/checkpoints`);
    const latest = await getJson(root, 'registry/checkpoints/latest');
    if (latest.status === 404) return [];
    if (latest.status !== 200) throw new SourceError(`${root}registry/checkpoints/latest answered ${latest.status}`);
    return parseCheckpointList({ items: [latest.json] }, `${root}registry/checkpoints/latest`);
  };

  return withSignatures(opts, async (sigs) => {
    const replay = replayWith(sigs);
    let checkpoints = await readCheckpoints();
    replay.horizon = checkpoints[0]?.version;
    let horizon: number | null = null;

    const fetchRecord = async (v: number): Promise<unknown> => {
      const r = await getJson(root, `registry/${v}`);
      if (r.status === 200) return r.json;
      if (r.status === 404) throw new LogError(v, `missing (404), yet the head is version ${headVersion}`);
      if (r.status === 410) return PRUNED;
      throw new SourceError(`${root}registry/${v} answered ${r.status}`);
    };
    /** The whole state at version v, page by page (GET /registry/{v}/descriptors). */
    const fetchState = async (v: number): Promise<StateEntry[]> => {
      const entries: StateEntry[] = [];
      for (let cursor: string | undefined; ;) {
        const path = `registry/${v}/descriptors?include_expired=true&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const page = await getJson(root, path);
        if (page.status !== 200 || !isObj(page.json) || !Array.isArray(page.json.items))
          throw new SourceError(`${root}${path} answered ${page.status}, not a page of descriptors`);
        if (page.json.version !== v) throw new LogError(v, `${root}${path} answered the state of version ${String(page.json.version)}`);
        for (const item of page.json.items as unknown[]) {
          if (!isObj(item)) throw new LogError(v, `${root}${path} holds an item that is not an object`);
          entries.push({ id: item.id as string, changedIn: item.changed_in as number, descriptor: item.descriptor });
        }
        progress.tick(entries.length);
        const next = page.json.next_cursor;
        if (next === null || next === undefined || next === '') return entries;
        if (typeof next !== 'string' || next === cursor) throw new SourceError(`${root}${path} answered a bad next_cursor`);
        cursor = next;
      }
    };

    const replayUpTo = async (last: number): Promise<void> => {
      const from = replay.last ? replay.last.version + 1 : 0;
      for await (const record of inOrder(last - from + 1, from, opts.concurrency ?? 8, fetchRecord)) {
        const v = replay.last ? replay.last.version + 1 : 0;
        if (record === PRUNED) {
          // Retention on a live registry moves the oldest checkpoint on: read the list again.
          if (v > 0 && (replay.horizon === undefined || v >= replay.horizon)) {
            checkpoints = await readCheckpoints();
            replay.horizon = checkpoints[0]?.version;
          }
          replay.applyPruned(v);
        } else {
          replay.apply(record, v);
          if (v === 0) checkGenesisPin(replay, opts.genesisHash);
          if (!replay.hasState && v === replay.horizon) {
            progress.phase(`state at checkpoint ${v}`, 0);
            replay.loadState(await fetchState(v), `${root}registry/${v}/descriptors`);
            horizon = v;
            progress.phase('records', headVersion + 1);
          }
        }
        if (sigs.mustWait) await sigs.wait();
        progress.tick(v + 1);
      }
    };

    progress.phase('records', headVersion + 1);
    await replayUpTo(headVersion);
    const last = replay.last!;
    if (!last.stateKnown)
      throw new LogError(last.version, 'the head is reached with pruned versions behind it and no checkpoint to take the state from');
    // The head must be the end of the chain, and say what the replay found.
    const beyond = await getJson(root, `registry/${headVersion + 1}`);
    if (beyond.status === 200)
      throw new LogError(headVersion + 1, `exists, but the head answers version ${headVersion}: the head is not the end of the chain`);
    const headProblems: string[] = [];
    if (claimed.hash !== last.hash) headProblems.push(`hash ${String(claimed.hash)} (the record hashes to ${last.hash})`);
    if (claimed.prev_hash !== last.prevHash) headProblems.push(`prev_hash ${String(claimed.prev_hash)}`);
    if (claimed.state_root !== last.stateRoot) headProblems.push(`state_root ${String(claimed.state_root)} (replayed: ${last.stateRoot})`);
    if (claimed.committed_at !== last.committedAt) headProblems.push(`committed_at ${String(claimed.committed_at)}`);
    if (claimed.descriptor_count !== last.descriptorCount)
      headProblems.push(`descriptor_count ${String(claimed.descriptor_count)} (replayed: ${last.descriptorCount})`);
    if (!isObj(claimed.signer_set) || jcs(claimed.signer_set) !== jcs(replay.currentSigners))
      headProblems.push('a signer set other than the replayed one');
    if (headProblems.length > 0) throw new LogError(headVersion, `the head answer disagrees with the record: ${headProblems.join('; ')}`);

    // Every checkpoint served (SPEC §10), read again (a live registry may have made one since), and
    // the latest as its own route answers it; the replay first catches up with the newest.
    checkpoints = await readCheckpoints();
    const latest = await getJson(root, 'registry/checkpoints/latest');
    if (latest.status !== 200 && latest.status !== 404)
      throw new SourceError(`${root}registry/checkpoints/latest answered ${latest.status}`);
    const latestClaim =
      latest.status === 200 ? parseCheckpointList({ items: [latest.json] }, `${root}registry/checkpoints/latest`)[0] : undefined;
    const newestNamed = Math.max(latestClaim?.version ?? -1, checkpoints[checkpoints.length - 1]?.version ?? -1);
    if (newestNamed > replay.last!.version)
      await replayUpTo(newestNamed).catch((err: unknown) => {
        throw err instanceof LogError && err.message.includes('missing (404)')
          ? new LogError(err.version, 'missing (404), yet a checkpoint is at or after it')
          : err;
      });

    // The audit chain, page by page. A live registry may have committed since the head was read:
    // a `committed` event past the replayed head makes the replay catch up first.
    const chain = new AuditChain(commitOf(replay));
    progress.phase('audit events', 0);
    for (let from = 1; ;) {
      const page = await getJson(root, `registry/audit?from_seq=${from}&limit=1000`);
      if (page.status !== 200 || !isObj(page.json) || !Array.isArray(page.json.events))
        throw new SourceError(`${root}registry/audit answered ${page.status}, not a page of events`);
      const events = page.json.events as unknown[];
      for (const e of events) {
        if (isObj(e) && e.kind === 'committed' && Number.isSafeInteger(e.version) && (e.version as number) > replay.last!.version)
          await replayUpTo(e.version as number).catch((err: unknown) => {
            throw err instanceof LogError && err.message.includes('missing (404)')
              ? new LogError(err.version, `missing (404), yet audit event ${String(e.seq)} says it was committed`)
              : err;
          });
        chain.add(e);
      }
      progress.tick(chain.counts.events);
      if (events.length === 0) break;
      if (page.json.next_from_seq !== from + events.length)
        throw new SourceError(
          `${root}registry/audit gave next_from_seq ${String(page.json.next_from_seq)} after ${events.length} events from ${from}`,
        );
      from += events.length;
    }
    if (chain.counts.committedEvents !== replay.counts.commits)
      throw new LogError(
        replay.last!.version,
        `the audit log records ${chain.counts.committedEvents} commits but the log holds ${replay.counts.commits}: a commit without its audit event`,
      );

    if (latestClaim) {
      checkCheckpoint(replay, latestClaim, 'the latest checkpoint');
      if (checkpoints.length > 0 && checkpoints[checkpoints.length - 1]!.version > latestClaim.version)
        throw new LogError(
          latestClaim.version,
          `the latest checkpoint is not the newest one listed (${checkpoints[checkpoints.length - 1]!.version})`,
        );
    } else if (checkpoints.length > 0) throw new SourceError(`${root}registry/checkpoints/latest answered 404, yet checkpoints are listed`);
    for (const cp of checkpoints) checkCheckpoint(replay, cp, `the checkpoint at version ${cp.version}`);
    const newest = checkpoints[checkpoints.length - 1];
    const failure = await sigs.settle();
    if (failure) throw failure;
    progress.end();
    return summary(root, replay, chain, sigs, opts, started, {
      horizon,
      checkpoints: checkpoints.length,
      checkpoint: newest ? `${checkpoints.length} agree with the replay (latest at version ${newest.version})` : 'none served',
      crossChecks: ['head answer'],
    });
  });
}

const PRUNED = Symbol('pruned');
const PAGE = 1000;

/** Verifies a registry's SQLite file, opened read-only (a stopped service's file, a copy, or the
 * file of a running service: it is read in one transaction, at one moment of the log). */
export async function verifyDb(file: string, opts: VerifyOptions = {}): Promise<Summary> {
  const started = performance.now();
  const progress = opts.progress ?? silent;
  const rows = openDb(file);
  try {
    return await withSignatures(opts, (sigs) => verifyRows(file, rows, sigs, opts, progress, started));
  } finally {
    rows.close();
  }
}

async function verifyRows(
  file: string,
  rows: DbRows,
  sigs: SignatureVerifier,
  opts: VerifyOptions,
  progress: Progress,
  started: number,
): Promise<Summary> {
  const seen = new Set<string>();
  const replay = replayWith(sigs, seen);
  const checkpoints = rows.checkpoints();
  const byVersion = new Map(checkpoints.map((c) => [c.version, c]));
  replay.horizon = checkpoints[0]?.version;
  // What the tables say changed the signer set, to name a pruned one (the replay would meet it only
  // at the horizon, as a state root or quorum that does not hold): the committed proposals with a
  // proposed threshold, and the oldest checkpoint's history of signer sets.
  const signerSetCommits = rows.signerSetCommits();
  const recordedChanges = checkpoints[0] ? historyChanges(checkpoints[0]) : new Set<number>();
  let horizon: number | null = null;

  progress.phase('records', rows.commitCount());
  for (let from = 0; ; from += PAGE) {
    const page = rows.commitPage(from, PAGE);
    for (const row of page) {
      const expected = replay.last ? replay.last.version + 1 : 0;
      if (row.version !== expected) throw new LogError(expected, `no such row: the commits table jumps to version ${row.version}`);
      if (row.record === '') {
        if (signerSetCommits.has(expected) || recordedChanges.has(expected))
          throw new LogError(
            expected,
            `pruned, yet it changed the signer set (${
              signerSetCommits.has(expected)
                ? 'its proposal has a proposed threshold'
                : `the signer history of the checkpoint at ${checkpoints[0]!.version} says so`
            }): such a commit is never pruned`,
          );
        replay.applyPruned(expected, { hash: row.hash, payloadHash: row.payload_hash });
      } else {
        let record: unknown;
        try {
          record = JSON.parse(row.record);
        } catch {
          throw new LogError(expected, 'the stored record is not JSON');
        }
        const checked = replay.apply(record, expected, row.record);
        if (expected === 0) checkGenesisPin(replay, opts.genesisHash);
        if (row.hash !== checked.hash)
          throw new LogError(expected, `the hash column ${row.hash} is not the hash of the record (${checked.hash})`);
        if (row.payload_hash !== checked.payloadHash)
          throw new LogError(expected, 'the payload_hash column is not the hash of the payload');
        const cp = byVersion.get(expected);
        if (cp) {
          if (!replay.hasState) {
            replay.loadState(checkpointState(rows, cp), `checkpoint_entries of version ${expected}`);
            horizon = expected;
          }
          checkStoredCheckpoint(rows, replay, cp);
        }
      }
      if (sigs.mustWait) await sigs.wait();
      progress.tick(expected + 1);
    }
    if (page.length < PAGE) break;
  }
  if (!replay.last) throw new SourceError(`${file} holds no commits: not a registry's database, or an empty one`);
  if (!replay.last.stateKnown)
    throw new LogError(replay.last.version, 'the head is reached with pruned versions behind it and no checkpoint to take the state from');
  for (const cp of checkpoints)
    if (!replay.history[cp.version]) checkCheckpoint(replay, { ...cp }, `the checkpoint at version ${cp.version}`);
  // Every record signature first: a failure there comes before anything found in the tables.
  const failure = await sigs.settle();
  if (failure) throw failure;

  const chain = new AuditChain(commitOf(replay));
  progress.phase('audit events', rows.auditCount());
  for (const row of rows.audit()) {
    let event: unknown;
    try {
      event = JSON.parse(row.event);
    } catch {
      event = row.event;
    }
    const before = chain.counts.events;
    chain.add(event, row.hash, row.event);
    if (row.seq !== before + 1) throw new AuditError(before + 1, `the seq column says ${row.seq}`);
    if (chain.counts.events % 1000 === 0) progress.tick(chain.counts.events);
  }
  if (chain.counts.committedEvents !== replay.counts.commits)
    throw new LogError(
      replay.last.version,
      `the audit log records ${chain.counts.committedEvents} commits but the log holds ${replay.counts.commits}: a commit without its audit event, or a deleted tail`,
    );

  // Proposals: each payload hashes to its id; a committed one is the payload of its version. A
  // payload may be pruned ('') once settled: a stale or expired one's, a committed one's with its
  // commit's record.
  const payloads = new Map<string, Record<string, unknown> | null>();
  let proposals = 0;
  let prunedPayloads = 0;
  for (const p of rows.proposals()) {
    const at = p.status === 'committed' && p.version !== null ? replay.history[p.version] : undefined;
    if (p.status === 'committed' && at?.payloadHash !== p.id)
      throw new TableError(`proposal ${p.id}: committed as version ${String(p.version)}, whose payload is another`);
    if (p.payload === '') {
      if (p.status === 'pending' || (p.status === 'committed' && !at?.pruned))
        throw new TableError(
          `proposal ${p.id}: its payload is gone, yet it is ${p.status === 'pending' ? 'pending' : `the payload of version ${String(p.version)}, which is not pruned`}`,
        );
      payloads.set(p.id, null);
      prunedPayloads++;
      proposals++;
      continue;
    }
    let payload: unknown;
    try {
      payload = JSON.parse(p.payload);
    } catch {
      throw new TableError(`proposal ${p.id}: its payload is not JSON`);
    }
    if (hashOfValue(payload) !== p.id)
      throw new TableError(`proposal ${p.id}: its payload does not hash to its id (the payload was edited)`);
    payloads.set(p.id, payload as Record<string, unknown>);
    proposals++;
  }
  // Approvals: each verifies under the key its signer has or had, or is given by the proposal. One
  // already verified in a record is not verified again. The approval of a pruned payload by an id
  // that was never a signer (a proposed signer of a rotation that never committed) cannot be.
  let approvals = 0;
  let unverifiable = 0;
  progress.phase('stored approvals', 0);
  for (const a of rows.approvals()) {
    if (!payloads.has(a.proposal_id)) throw new TableError(`an approval by ${a.signer_id} names an unknown proposal ${a.proposal_id}`);
    const payload = payloads.get(a.proposal_id);
    const proposed = (payload && Array.isArray(payload.ops) ? payload.ops : []).find((o: { op?: string }) => o?.op === 'set_signers') as
      { signer_set?: SignerSet } | undefined;
    const key = replay.keyEverOf(a.signer_id) ?? proposed?.signer_set?.signers?.find((s) => s.id === a.signer_id)?.public_key;
    const forged = () =>
      new TableError(`the stored approval by ${a.signer_id} of proposal ${a.proposal_id} does not verify (a forged approval row)`);
    approvals++;
    if (key === undefined) {
      if (payload === null) {
        unverifiable++;
        continue;
      }
      throw forged();
    }
    if (!HASH.test(a.proposal_id)) throw forged();
    if (seen.has(approvalDigest(key, a.proposal_id, a.sig))) continue;
    sigs.add({ key, payloadHash: a.proposal_id, sig: a.sig, failure: forged });
    if (sigs.mustWait) await sigs.wait();
    if (approvals % 256 === 0) progress.tick(approvals);
  }
  const last = await sigs.settle();
  if (last) throw last;
  progress.end();
  const newest = checkpoints[checkpoints.length - 1];
  return summary(file, replay, chain, sigs, opts, started, {
    horizon,
    checkpoints: checkpoints.length,
    checkpoint: newest
      ? `${checkpoints.length} agree with the replay, entries and state root recomputed (latest at version ${newest.version})`
      : 'none stored',
    crossChecks: [
      'commits table hash columns',
      `${proposals} proposals${prunedPayloads ? ` (${prunedPayloads} payloads pruned)` : ''}`,
      `${approvals} stored approvals${unverifiable ? ` (${unverifiable} of pruned rotations by ids never in force: not verifiable)` : ''}`,
    ],
  });
}

/** The entries of checkpoint `cp`, as the replay loads them at the horizon. */
function* checkpointState(rows: DbRows, cp: CheckpointRow): IterableIterator<StateEntry> {
  for (const e of rows.checkpointEntries(cp.version)) {
    let descriptor: unknown;
    try {
      descriptor = JSON.parse(e.descriptor);
    } catch {
      throw new LogError(cp.version, `the checkpoint entry ${e.id} is not JSON`);
    }
    yield { id: e.id, changedIn: e.changed_in, descriptor, text: e.descriptor };
  }
}

/** A stored checkpoint, right after the replay reached its version: its row is the record and the
 * replayed state; its entries are that state, descriptor for descriptor, and hash (key = b3(id),
 * leaf = b3(stored text)) to its state root. */
function checkStoredCheckpoint(rows: DbRows, replay: Replay, cp: CheckpointRow): void {
  const what = `the checkpoint at version ${cp.version}`;
  checkCheckpoint(replay, cp, what);
  const fail = (m: string): never => {
    throw new LogError(cp.version, `${what}: ${m}`);
  };
  const signers = parseJson(cp.signer_set);
  if (signers === undefined || jcs(signers) !== jcs(replay.currentSigners)) fail('its signer_set is not the signer set in force there');
  if (cp.signer_history !== undefined) {
    const history = parseJson(cp.signer_history);
    if (history === undefined || jcs(history) !== jcs(replay.signerHistory))
      fail('its signer_history is not the history of signer sets the log holds up to there');
  }
  const entries: { id: string; text: string }[] = [];
  for (const e of rows.checkpointEntries(cp.version)) {
    const held = replay.descriptors.get(e.id);
    if (held === undefined) fail(`its entries hold ${e.id}, which is not in the state there`);
    if (e.descriptor !== jcs(held)) fail(`its entry ${e.id} is not the descriptor the log holds there`);
    if (e.changed_in !== replay.changedInOf(e.id))
      fail(`its entry ${e.id} says changed_in ${e.changed_in}, not ${replay.changedInOf(e.id)}`);
    entries.push({ id: e.id, text: e.descriptor });
  }
  if (entries.length !== replay.descriptors.size)
    fail(`it holds ${entries.length} entries, the state ${replay.descriptors.size} descriptors`);
  const root = stateRootOfTexts(entries, replay.currentSigners!);
  if (root !== cp.state_root) fail(`its entries hash to ${root}, not to its state_root ${cp.state_root}`);
}
