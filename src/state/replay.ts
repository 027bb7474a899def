// Start-up: open the log on a genesis, load the latest checkpoint's state (when there is one and
// it holds together), replay every commit after it checking each prev_hash link, and check that
// the rebuilt state has the head's state_root.
import { canonicalJson, hashBytes, utf8Bytes, type Digest32 } from '../core/encoding.js';
import { IntegrityError, RegistryError } from '../core/errors.js';
import { checkLink, type CheckedGenesis } from '../core/records.js';
import type { CommitRecord, ProposalPayload } from '../core/schemas.js';
import { planOps } from '../core/state.js';
import type { CheckpointInfo, Store } from '../store/store.js';
import { readCheckpointState } from './checkpoint-state.js';
import { HeadView } from './head-view.js';

const PAGE = 2000;

export interface OpenedLog {
  view: HeadView;
  /** The checkpoint the state was loaded from, or undefined (replayed from the genesis). */
  checkpoint: CheckpointInfo | undefined;
  /** Commits replayed after it. */
  replayed: number;
  /** Why newer checkpoints were not used, when they did not hold together: an older one (or the
   * genesis) was used instead, and the start reports it as tampering. */
  checkpointProblem: string | undefined;
}

type Head = { version: number; hash: string; record: CommitRecord; text: string };

export async function openLog(store: Store, genesis: CheckedGenesis, digest?: Digest32): Promise<HeadView> {
  return (await openLogFrom(store, genesis, digest)).view;
}

export async function openLogFrom(store: Store, genesis: CheckedGenesis, digest?: Digest32): Promise<OpenedLog> {
  const text = canonicalJson(genesis.record);
  let stored = await store.genesis();
  if (!stored) {
    try {
      await store.initialize({ version: 0, hash: genesis.hash, text, payloadHash: genesis.record.payload_hash });
    } catch (e) {
      // Another instance wrote its genesis first (a shared log): compared below with a clear message.
      if (!(await store.genesis())) throw e;
    }
    stored = await store.genesis();
  }
  if (stored && stored.hash !== genesis.hash) {
    const storedId = (JSON.parse(stored.text) as { registry_id?: unknown }).registry_id;
    throw new IntegrityError(
      `the database holds another registry: ${String(storedId)} (genesis ${stored.hash}), not ${genesis.payload.registry_id} ` +
        `(genesis ${genesis.hash}): serve it with its own genesis record, or choose another --db`,
      0,
    );
  }
  // The newest checkpoint that holds together, below the head: a checkpoint at the head is
  // bound by nothing signed (a record's state root is bound by the next record's signed
  // base_hash), so the start takes the one before it and replays the head. A checkpoint that
  // does not hold together is reported, and the next older one tried.
  const problems: string[] = [];
  for (const c of (await store.checkpoints()).reverse()) {
    if (!(await store.commit(c.version + 1))) continue;
    const view = new HeadView(genesis, text, digest);
    try {
      const head = await loadCheckpoint(store, view, c);
      const replayed = await replayTail(store, view, head, genesis);
      return { view, checkpoint: c, replayed, checkpointProblem: problems.join('; ') || undefined };
    } catch (e) {
      if (!(e instanceof CheckpointProblem)) throw e;
      problems.push(e.message);
    }
  }
  // No checkpoint below the head, or none that holds together: the whole log, from the genesis.
  const view = new HeadView(genesis, text, digest);
  const replayed = await replayTail(store, view, { version: 0, hash: genesis.hash, record: genesis.record, text }, genesis);
  return { view, checkpoint: undefined, replayed, checkpointProblem: problems.join('; ') || undefined };
}

/** Cluster mode, a start while the shared log is unreachable: the view of the one checkpoint a
 * CachedStore holds, its record as the head (src/store/local-cache.ts). Its state must hash to
 * the record's state_root, and the record bytes to its hash; anything else is an IntegrityError. */
export async function openCachedLog(store: Store, genesis: CheckedGenesis, digest?: Digest32): Promise<OpenedLog> {
  const text = canonicalJson(genesis.record);
  const c = await store.latestCheckpoint();
  if (!c) throw new IntegrityError('the cache holds no checkpoint', 0);
  const view = new HeadView(genesis, text, digest);
  try {
    const head = await loadCheckpoint(store, view, c);
    view.setHead(head.record, head.hash, head.text);
  } catch (e) {
    if (e instanceof CheckpointProblem) throw new IntegrityError(`the cached ${e.message}`, c.version);
    throw e;
  }
  return { view, checkpoint: c, replayed: 0, checkpointProblem: undefined };
}

class CheckpointProblem extends Error {}

/** Loads checkpoint `c`'s state into a fresh view: its record must be the one the log holds at
 * its version (hash checked over the stored bytes), and the state must hash to that record's
 * state root. Anything else is a CheckpointProblem. */
async function loadCheckpoint(store: Store, view: HeadView, c: CheckpointInfo): Promise<Head> {
  const where = `the checkpoint at version ${c.version}`;
  const stored = await store.commit(c.version);
  if (!stored || stored.text === '') throw new CheckpointProblem(`${where}: the log has no record at its version`);
  if (hashBytes(utf8Bytes(stored.text), view.state.digest) !== stored.hash || stored.hash !== c.hash)
    throw new CheckpointProblem(`${where}: its hash ${c.hash} is not the hash of the record the log holds at ${c.version}`);
  const record = parseRecord(c.version, stored.text);
  try {
    view.index.beginBulk();
    await readCheckpointState(store, c, view.state, (delta) => view.apply(delta));
    view.index.endBulk();
  } catch (e) {
    throw new CheckpointProblem(`${where}: ${(e as Error).message}`);
  }
  const root = view.state.root();
  if (root !== record.state_root || root !== c.stateRoot)
    throw new CheckpointProblem(`${where}: its state hashes to ${root}, not to the state_root ${record.state_root} of its record`);
  return { version: c.version, hash: stored.hash, record, text: stored.text };
}

/** Replays every commit after `from` onto the view, checking each record's hash and link, then
 * the head's canonical form and state root, and publishes the head. Returns the commits replayed. */
async function replayTail(store: Store, view: HeadView, from: Head, genesis: CheckedGenesis): Promise<number> {
  // The state follows every commit; the head (and its response bytes) is published once.
  let head = from;
  let replayed = 0;
  view.index.beginBulk();
  for (let next = from.version + 1; ; next += PAGE) {
    const page = await store.commits(next, PAGE);
    for (const commit of page) {
      if (commit.text === '')
        throw new IntegrityError(
          `version ${commit.version} was pruned, and no checkpoint after it holds together: the log cannot be replayed`,
          commit.version,
        );
      const record = parseRecord(commit.version, commit.text);
      // The stored text is the canonical JSON that was hashed; hashing the text (fast) rather
      // than re-canonicalizing the record keeps start-up proportional to the log's bytes.
      const hash = hashBytes(utf8Bytes(commit.text), view.state.digest);
      if (hash !== commit.hash)
        throw new IntegrityError(`version ${commit.version}: the stored record does not hash to ${commit.hash}`, commit.version);
      try {
        checkLink(record, head, genesis.payload.registry_id); // also refuses a second genesis
        view.apply(planOps(view.state, (record.payload as ProposalPayload).ops, record.version));
      } catch (e) {
        // A record that does not replay, whatever the reason (ops a request would be refused
        // for, or a malformed record that throws TypeErrors), is a log that does not hold together.
        if (e instanceof IntegrityError && e.version === commit.version) throw e;
        const why = e instanceof RegistryError ? e.message : `the stored record is malformed (${(e as Error).message})`;
        throw new IntegrityError(`the log does not replay at version ${commit.version}: ${why}`, commit.version);
      }
      head = { version: record.version, hash, record, text: commit.text };
      replayed++;
    }
    if (page.length < PAGE) break;
  }
  view.index.endBulk();
  if (head.text !== canonicalJson(head.record)) {
    throw new IntegrityError(`version ${head.version}: the stored head record is not canonical JSON`, head.version);
  }
  const root = view.state.root();
  if (root !== head.record.state_root) {
    throw new IntegrityError(
      `the replayed state root ${root} is not the head's state_root ${head.record.state_root} (version ${head.version})`,
      head.version,
    );
  }
  view.setHead(head.record, head.hash, head.text);
  return replayed;
}

function parseRecord(version: number, text: string): CommitRecord {
  try {
    return JSON.parse(text) as CommitRecord;
  } catch (e) {
    throw new IntegrityError(`version ${version}: the stored record is not JSON (${(e as Error).message})`, version);
  }
}
