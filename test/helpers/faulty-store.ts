// Fault injection at the store interface, for tests only: a Store that passes everything to the
// real SQLite store, and on command delays its writes, or fails them, as a slow or broken disk
// would. startRegistry takes it through its `wrapStore` option (startTestRegistry's too).
import type { Store, WriteBatch } from '../../src/store/store.js';

export class FaultyStore implements Store {
  private delayMs = 0;
  private failure: string | undefined;
  /** Writes that reached the real store, and writes started (delayed or failed included). */
  readonly counts = { written: 0, attempted: 0 };

  constructor(private readonly inner: Store) {}

  /** Every write from now on waits `ms` before it reaches the store (0: none). */
  delayWrites(ms: number): void {
    this.delayMs = ms;
  }

  /** Every write from now on fails with `message`, and changes nothing. */
  failWrites(message = 'disk I/O error (injected)'): void {
    this.failure = message;
  }

  /** Writes go straight to the store again (a write already waiting still waits). */
  clear(): void {
    this.delayMs = 0;
    this.failure = undefined;
  }

  async write(batch: WriteBatch): Promise<void> {
    this.counts.attempted++;
    if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    if (this.failure !== undefined) throw new Error(this.failure);
    await this.inner.write(batch);
    this.counts.written++;
  }

  genesis: Store['genesis'] = () => this.inner.genesis();
  initialize: Store['initialize'] = (g) => this.inner.initialize(g);
  commit: Store['commit'] = (v) => this.inner.commit(v);
  commits: Store['commits'] = (from, limit) => this.inner.commits(from, limit);
  proposal: Store['proposal'] = (id) => this.inner.proposal(id);
  proposals: Store['proposals'] = (q) => this.inner.proposals(q);
  auditHead: Store['auditHead'] = () => this.inner.auditHead();
  audit: Store['audit'] = (from, limit) => this.inner.audit(from, limit);
  lastFreezeEvent: Store['lastFreezeEvent'] = () => this.inner.lastFreezeEvent();
  setting: Store['setting'] = (name, initial) => this.inner.setting(name, initial);
  latestCheckpoint: Store['latestCheckpoint'] = () => this.inner.latestCheckpoint();
  checkpoints: Store['checkpoints'] = () => this.inner.checkpoints();
  checkpointEntries: Store['checkpointEntries'] = (v, after, limit) => this.inner.checkpointEntries(v, after, limit);
  addCheckpointEntries: Store['addCheckpointEntries'] = (v, entries) => this.inner.addCheckpointEntries(v, entries);
  sealCheckpoint: Store['sealCheckpoint'] = (info) => this.inner.sealCheckpoint(info);
  dropCheckpointEntries: Store['dropCheckpointEntries'] = (v, limit) => this.inner.dropCheckpointEntries(v, limit);
  orphanCheckpointVersions: Store['orphanCheckpointVersions'] = () => this.inner.orphanCheckpointVersions();
  dropCheckpoint: Store['dropCheckpoint'] = (v) => this.inner.dropCheckpoint(v);
  pruneCommits: Store['pruneCommits'] = (from, to) => this.inner.pruneCommits(from, to);
  pruneSettledProposals: Store['pruneSettledProposals'] = (before, limit) => this.inner.pruneSettledProposals(before, limit);
  unprunedSettledCount: Store['unprunedSettledCount'] = () => this.inner.unprunedSettledCount();
  close: Store['close'] = () => this.inner.close();
}
