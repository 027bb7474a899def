// Cluster mode, a start while PostgreSQL refuses connections: the log as the registry sees it is
// first the instance's cached checkpoint (CachedStore, read only), then, once a connection is
// made, the shared log itself. The switch happens once; the registry catches up from there as it
// does after any gap (the writer's load, the follower): every record after the cached head is
// checked before it is served, and the log must still hold the cached head.
import type { AuditHead } from '../core/audit.js';
import type { CachedStore } from './local-cache.js';
import { backoff } from './open-store.js';
import type {
  CheckpointEntry,
  CheckpointInfo,
  ProposalQuery,
  ProposalSummary,
  Store,
  StoredCommit,
  StoredCommitRow,
  StoredProposal,
  WriteBatch,
} from './store.js';

export interface SwitchingOptions {
  /** Opens the shared log; called again with back-off until it resolves. */
  connect: () => Promise<Store>;
  /** Told of each failed attempt, and of the wait before the next. */
  failed?: (error: Error, retryInMs: number) => void;
}

export class SwitchingStore implements Store {
  private current: Store;
  private closed = false;
  private wake: (() => void) | undefined;
  /** Resolves with true once the shared log is open and serves every call, or with false if the
   * store was closed first. */
  readonly connected: Promise<boolean>;

  constructor(
    readonly cached: CachedStore,
    private readonly o: SwitchingOptions,
  ) {
    this.current = cached;
    this.connected = this.keepTrying();
  }

  /** Whether calls still go to the cache. */
  get onCache(): boolean {
    return this.current === this.cached;
  }

  private async keepTrying(): Promise<boolean> {
    const delays = backoff();
    for (;;) {
      const delay = delays.next().value;
      if (this.closed) return false;
      try {
        const store = await this.o.connect();
        if (this.closed) {
          await store.close();
          return false;
        }
        this.current = store;
        return true;
      } catch (e) {
        this.o.failed?.(e as Error, delay);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  leads(): Promise<boolean> {
    return this.current.leads?.() ?? Promise.resolve(!this.onCache);
  }
  resign(): Promise<void> {
    return this.current.resign?.() ?? Promise.resolve();
  }
  watchCommits(onCommit: (version: number) => void, onListening: () => void): Promise<() => Promise<void>> {
    if (!this.current.watchCommits) return Promise.reject(new Error('the shared log is not reachable yet'));
    return this.current.watchCommits(onCommit, onListening);
  }
  genesis(): Promise<StoredCommit | undefined> {
    return this.current.genesis();
  }
  initialize(genesis: StoredCommit & { payloadHash: string }): Promise<void> {
    return this.current.initialize(genesis);
  }
  commit(version: number): Promise<StoredCommit | undefined> {
    return this.current.commit(version);
  }
  commits(from: number, limit: number): Promise<StoredCommitRow[]> {
    return this.current.commits(from, limit);
  }
  latestCheckpoint(): Promise<CheckpointInfo | undefined> {
    return this.current.latestCheckpoint();
  }
  checkpoints(): Promise<CheckpointInfo[]> {
    return this.current.checkpoints();
  }
  checkpointEntries(version: number, afterId: string, limit: number): Promise<CheckpointEntry[]> {
    return this.current.checkpointEntries(version, afterId, limit);
  }
  addCheckpointEntries(version: number, entries: readonly CheckpointEntry[]): Promise<void> {
    return this.current.addCheckpointEntries(version, entries);
  }
  sealCheckpoint(info: CheckpointInfo): Promise<void> {
    return this.current.sealCheckpoint(info);
  }
  dropCheckpointEntries(version: number, limit: number): Promise<number> {
    return this.current.dropCheckpointEntries(version, limit);
  }
  orphanCheckpointVersions(): Promise<number[]> {
    return this.current.orphanCheckpointVersions();
  }
  dropCheckpoint(version: number): Promise<void> {
    return this.current.dropCheckpoint(version);
  }
  pruneCommits(from: number, to: number): Promise<number> {
    return this.current.pruneCommits(from, to);
  }
  pruneSettledProposals(before: number, limit: number): Promise<number> {
    return this.current.pruneSettledProposals(before, limit);
  }
  unprunedSettledCount(): Promise<number> {
    return this.current.unprunedSettledCount();
  }
  proposal(id: string): Promise<StoredProposal | undefined> {
    return this.current.proposal(id);
  }
  proposals(query: ProposalQuery): Promise<ProposalSummary[]> {
    return this.current.proposals(query);
  }
  auditHead(): Promise<AuditHead | null> {
    return this.current.auditHead();
  }
  audit(fromSeq: number, limit: number): Promise<string[]> {
    return this.current.audit(fromSeq, limit);
  }
  lastFreezeEvent(): Promise<string | undefined> {
    return this.current.lastFreezeEvent();
  }
  write(batch: WriteBatch): Promise<void> {
    return this.current.write(batch);
  }
  setting(name: string, initial: () => string): Promise<string> {
    return this.current.setting(name, initial);
  }
  /** Stops trying to reach the shared log: `connected` resolves (false, unless it just did). */
  stopTrying(): Promise<boolean> {
    this.closed = true;
    this.wake?.();
    return this.connected;
  }

  async close(): Promise<void> {
    await this.stopTrying();
    await this.current.close();
  }
}
