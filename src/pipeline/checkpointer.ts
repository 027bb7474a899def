// Checkpoints and retention (SPEC §10, README → Durability). After every `every` commits, or
// once `intervalMs` has passed with a commit since the last one, the state at the head is
// written as a checkpoint: its entries in small transactions between which reads and commits
// go on (the entries are immutable objects, so a copy of the map's values is the state at that
// version however far the head moves meanwhile), then the checkpoint row, which the database
// accepts only when every entry is there. A crash in between leaves entries without a row,
// which the next start deletes. Retention then drops the checkpoints older than the horizon and
// prunes the records of the commits before it (never the genesis nor a signer-set change: the
// database refuses those). Stale and expired proposals' payloads are pruned `settledTtlMs`
// after they settle.
import { canonicalJson, formatTime } from '../core/encoding.js';
import type { HeadView } from '../state/head-view.js';
import type { CheckpointEntry, CheckpointInfo, Store } from '../store/store.js';
import type { PipelineLog } from './audited-log.js';

export interface RetentionOptions {
  /** A checkpoint every this many commits; 0: none by count. */
  every: number;
  /** A checkpoint once this long has passed with a commit since the last; 0: none by time. */
  intervalMs: number;
  /** The horizon: the newest checkpoint at least this many commits behind the head (0: any)… */
  retainCommits: number;
  /** …and at least this many days old (0: any). Both 0: nothing is pruned. */
  retainDays: number;
  /** Payloads of stale and expired proposals are pruned this long after they settle. */
  settledTtlMs: number;
}

export interface CheckpointerOptions extends RetentionOptions {
  store: Store;
  view: HeadView;
  logger?: PipelineLog;
  now?: () => number;
  /** Whether the log may be written to now (the start's verification passed, nothing tampered). */
  trusted: () => boolean;
  /** How many settled payloads are still stored (the writer counts them against its cap): the
   * tick queries the store only when there are some. */
  settledUnpruned?: () => number;
  /** Told how many settled payloads were pruned. */
  settledPruned?: (n: number) => void;
  /** Told that records below `horizon` may be pruned from now on: what is kept of them in
   * memory (record bytes, past states) must go, so that they answer 410 like the store. */
  pruning?: (horizon: number) => void;
  /** Shared logs: whether this instance does the maintenance now (Store.leads). The others only
   * follow the latest checkpoint, for their metrics. Absent: this one always does. */
  leads?: () => Promise<boolean>;
  /** Shared logs: gives up the maintenance for another instance to take (Store.resign). */
  resign?: () => Promise<void>;
  /** Told of each new checkpoint of the log, made here or (shared logs) found made by another. */
  checkpointed?: (info: CheckpointInfo) => void;
}

/** The checkpoint of the state `view` holds now (its head), made at `createdAt`. */
export function checkpointOf(view: HeadView, createdAt: string): { info: CheckpointInfo; entries: CheckpointEntry[] } {
  const head = view.head;
  const entries = [...view.state.entries.values()].map((e) => ({ id: e.descriptor.id, changedIn: e.changedIn, json: e.json }));
  const info: CheckpointInfo = {
    version: head.version,
    hash: head.hash,
    stateRoot: head.stateRoot,
    descriptorCount: entries.length,
    createdAt,
    signerSet: canonicalJson(view.state.signerSet),
    signerHistory: canonicalJson(view.state.signerHistoryEntries),
  };
  return { info, entries };
}

/** Entries written per transaction, and versions pruned per statement: each a few milliseconds. */
const SLICE = 2000;
const PRUNE_SLICE = 500;
const DAY_MS = 86_400_000;
/** Checkpoints kept when retention sets no horizon. */
const KEEP = 2;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Checkpointer {
  private readonly o: CheckpointerOptions;
  private readonly now: () => number;
  private latestCheckpoint: CheckpointInfo | undefined;
  /** When the last checkpoint was made (or this process started, before the first). */
  private lastMadeAt: number;
  /** Versions below this have been through a pruning pass. */
  private prunedBelow = 1;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  /** Whether the entries left by a crash were dropped (at open, or once leading on a shared log). */
  private orphansDropped = false;

  constructor(options: CheckpointerOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
    this.lastMadeAt = this.now();
  }

  get latest(): CheckpointInfo | undefined {
    return this.latestCheckpoint;
  }

  /** Loads the latest checkpoint and deletes the entries a crash left without one. */
  async open(): Promise<void> {
    await this.refreshLatest();
    // On a shared log, entries without a row may be the leader's build in progress: the leader
    // drops them (dropOrphans), once it is trusted.
    if (this.o.leads) return;
    await this.dropOrphans();
  }

  /** Deletes the entries a crash left without a checkpoint row. */
  private async dropOrphans(): Promise<void> {
    this.orphansDropped = true;
    for (const version of await this.o.store.orphanCheckpointVersions()) {
      while ((await this.o.store.dropCheckpointEntries(version, SLICE)) > 0) await yieldToLoop();
      this.o.logger?.info({ version }, 'dropped a checkpoint left unfinished by a crash');
    }
  }

  private leads(): Promise<boolean> {
    return this.o.leads?.() ?? Promise.resolve(true);
  }

  private async refreshLatest(): Promise<void> {
    const before = this.latestCheckpoint?.version;
    this.latestCheckpoint = await this.o.store.latestCheckpoint();
    if (this.latestCheckpoint) this.lastMadeAt = Date.parse(this.latestCheckpoint.createdAt);
    if (this.latestCheckpoint && before !== undefined && this.latestCheckpoint.version > before)
      this.o.checkpointed?.(this.latestCheckpoint);
  }

  /** Seconds since the latest checkpoint (or this process's start) while commits wait for the
   * next one; 0 while it covers the head. */
  ageSeconds(): number {
    return this.uncovered === 0 ? 0 : Math.max(0, (this.now() - this.lastMadeAt) / 1000);
  }

  /** Commits not yet in a checkpoint. */
  get uncovered(): number {
    return this.o.view.head.version - (this.latestCheckpoint?.version ?? 0);
  }

  /** Called after each commit, and once the start's verification is done: builds a checkpoint
   * when enough commits have come since the last. */
  afterCommit(): void {
    if (this.dueByCount()) void this.kick();
  }

  private dueByCount(): boolean {
    return this.o.every > 0 && this.uncovered >= this.o.every;
  }

  private dueByTime(): boolean {
    return this.o.intervalMs > 0 && this.uncovered > 0 && this.now() - this.lastMadeAt >= this.o.intervalMs;
  }

  /** The periodic tick: a checkpoint by time, and the pruning of settled payloads. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    // An instance that refuses writes does no maintenance: it lets another take the lock.
    if (!this.o.trusted()) return void (await this.o.resign?.());
    if (this.dueByTime()) void this.kick();
    if ((this.o.settledUnpruned?.() ?? 1) === 0 || !(await this.leads())) return;
    const pruned = await this.o.store.pruneSettledProposals(this.now() - this.o.settledTtlMs, SLICE);
    if (pruned > 0) this.o.settledPruned?.(pruned);
  }

  /** Builds a checkpoint of the head now (then applies retention); one build at a time, a
   * request during one makes another after it. On a shared log, only while this instance holds the
   * maintenance lock, and only if one is still due after the log's latest checkpoint (another
   * instance may have made it). Resolves when the work asked for is done. */
  kick(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          if (this.stopped) return;
          if (!this.o.trusted()) {
            // An instance that refuses writes does no maintenance: it lets another take the lock.
            await this.o.resign?.();
            return;
          }
          if (this.o.leads) {
            // Another instance may have made checkpoints since: build on the latest, and only if
            // one is still due after it (or every instance taking the lead over would make one
            // off the cadence, a whole copy of the state).
            await this.refreshLatest();
            if (!this.dueByCount() && !this.dueByTime()) return;
            if (!(await this.o.leads())) return;
            if (!this.orphansDropped) await this.dropOrphans();
          }
          await this.build();
          await this.applyRetention();
          // Commits that came during the build asked for another: only if they are enough.
        } while (this.again && this.dueByCount());
      } catch (e) {
        this.o.logger?.error({ err: e }, 'checkpoint or retention failed');
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Resolves once no build or retention pass is running. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Waits for the build in progress to stop at its next slice. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async build(): Promise<void> {
    const { store, view } = this.o;
    const head = view.head;
    if (this.latestCheckpoint && this.latestCheckpoint.version >= head.version) return;
    const started = performance.now();
    // Taken at once: the entries are immutable, so this is the state at head.version however far
    // the head moves while they are written.
    const { info: taken, entries } = checkpointOf(view, '');
    try {
      for (let i = 0; i < entries.length; i += SLICE) {
        await store.addCheckpointEntries(head.version, entries.slice(i, i + SLICE));
        await yieldToLoop();
        // Stopped halfway: the entries stay without a row, and the next start deletes them.
        if (this.stopped) return;
      }
    } catch (e) {
      // A failed build (a full disk) leaves no entries behind for the next attempt to trip on.
      while ((await store.dropCheckpointEntries(head.version, SLICE).catch(() => 0)) > 0) await yieldToLoop();
      throw e;
    }
    const info: CheckpointInfo = { ...taken, createdAt: formatTime(this.now()) };
    await store.sealCheckpoint(info);
    this.latestCheckpoint = info;
    this.o.checkpointed?.(info);
    this.lastMadeAt = this.now();
    this.o.logger?.info(
      { version: info.version, descriptors: info.descriptorCount, ms: Math.round(performance.now() - started) },
      'checkpoint made',
    );
  }

  /** The horizon (RetentionOptions), or undefined when nothing is to be pruned. */
  private horizon(checkpoints: CheckpointInfo[]): CheckpointInfo | undefined {
    const { retainCommits, retainDays } = this.o;
    if (retainCommits === 0 && retainDays === 0) return undefined;
    const head = this.o.view.head.version;
    const now = this.now();
    // Never the head itself: the start loads a checkpoint below the head (src/state/replay.ts).
    const eligible = checkpoints.filter(
      (c) => head - c.version >= Math.max(1, retainCommits) && (retainDays === 0 || now - Date.parse(c.createdAt) >= retainDays * DAY_MS),
    );
    return eligible[eligible.length - 1];
  }

  private async applyRetention(): Promise<void> {
    const { store } = this.o;
    const checkpoints = await store.checkpoints();
    const horizon = this.horizon(checkpoints);
    // Each checkpoint holds the whole state: without retention only the newest KEEP are kept (the
    // start needs one below the head); with it, every checkpoint from the horizon on, and all of
    // them until there is a horizon (each may become it).
    const retaining = this.o.retainCommits > 0 || this.o.retainDays > 0;
    const keepFrom = retaining ? (horizon?.version ?? 0) : (checkpoints[checkpoints.length - KEEP]?.version ?? 0);
    for (const c of checkpoints) {
      if (c.version >= keepFrom) break;
      await store.dropCheckpoint(c.version);
      while ((await store.dropCheckpointEntries(c.version, SLICE)) > 0) {
        await yieldToLoop();
        if (this.stopped) return;
      }
    }
    if (!horizon) return;
    let pruned = 0;
    for (let from = this.prunedBelow; from < horizon.version; from += PRUNE_SLICE) {
      pruned += await store.pruneCommits(from, Math.min(from + PRUNE_SLICE, horizon.version) - 1);
      this.prunedBelow = Math.min(from + PRUNE_SLICE, horizon.version);
      this.o.pruning?.(horizon.version);
      await yieldToLoop();
      if (this.stopped) return;
    }
    if (pruned > 0) this.o.logger?.info({ horizon: horizon.version, pruned }, 'pruned commit records behind the horizon');
  }
}
