// The checkpointer on a shared log (cluster mode): the instance holding the maintenance lock may
// not be the one that made the latest checkpoint. Before building, it reads the latest from the
// log and builds only if a checkpoint is still due after it, by count or by time; judged by its own
// stale latest, it would build one off the cadence (a whole copy of the state). The store is a
// stand-in that records what is written: the schedule is what is under test, not the storage.
import { describe, expect, it } from 'vitest';
import { formatTime } from '../../../src/core/encoding.js';
import { Checkpointer, type CheckpointerOptions } from '../../../src/pipeline/checkpointer.js';
import type { HeadView } from '../../../src/state/head-view.js';
import type { CheckpointInfo, Store } from '../../../src/store/store.js';

const T0 = Date.parse('2026-11-23T12:00:00Z');

const checkpointAt = (version: number, at: number): CheckpointInfo => ({
  version,
  hash: `b3:${version}`,
  stateRoot: `b3:root-${version}`,
  descriptorCount: 0,
  createdAt: formatTime(at),
  signerSet: '{}',
  signerHistory: '[]',
});

/** A log whose latest checkpoint another instance moves (`latest`), and what this one seals. */
function sharedLog() {
  const log = { latest: undefined as CheckpointInfo | undefined, sealed: [] as number[] };
  const store = {
    latestCheckpoint: () => Promise.resolve(log.latest),
    checkpoints: () => Promise.resolve(log.latest ? [log.latest] : []),
    orphanCheckpointVersions: () => Promise.resolve([]),
    addCheckpointEntries: () => Promise.resolve(),
    dropCheckpointEntries: () => Promise.resolve(0),
    sealCheckpoint: (info: CheckpointInfo) => {
      log.sealed.push(info.version);
      log.latest = info;
      return Promise.resolve();
    },
  } as unknown as Store;
  return { log, store };
}

function checkpointer(store: Store, head: { version: number }, options: Partial<CheckpointerOptions> & { now: () => number }) {
  const view = {
    get head() {
      return { version: head.version, hash: `b3:${head.version}`, stateRoot: `b3:root-${head.version}` };
    },
    state: { entries: new Map(), signerSet: {}, signerHistoryEntries: [] },
  } as unknown as HeadView;
  return new Checkpointer({
    store,
    view,
    every: 0,
    intervalMs: 0,
    retainCommits: 0,
    retainDays: 0,
    settledTtlMs: 300_000,
    trusted: () => true,
    leads: () => Promise.resolve(true),
    resign: () => Promise.resolve(),
    settledUnpruned: () => 0,
    ...options,
  });
}

describe('the checkpointer on a shared log', () => {
  it('builds by count on the latest checkpoint of the log, whoever made it', async () => {
    const { log, store } = sharedLog();
    log.latest = checkpointAt(2, T0);
    const head = { version: 2 };
    const points = checkpointer(store, head, { every: 2, now: () => T0 });
    await points.open();
    // Another instance made the checkpoint at 4; this one, told of commit 5, still knows of 2 only.
    log.latest = checkpointAt(4, T0);
    head.version = 5;
    points.afterCommit();
    await points.idle();
    expect(log.sealed).toEqual([]);
    expect(points.latest?.version).toBe(4);
    // Two commits past 4: due.
    head.version = 6;
    points.afterCommit();
    await points.idle();
    expect(log.sealed).toEqual([6]);
  });

  it('builds by time on the latest checkpoint of the log, whoever made it', async () => {
    const { log, store } = sharedLog();
    let now = T0;
    log.latest = checkpointAt(2, T0);
    const head = { version: 5 };
    const points = checkpointer(store, head, { intervalMs: 1000, now: () => now });
    await points.open();
    // Another instance made one at 4 half a second ago: the next is not due for another half.
    log.latest = checkpointAt(4, T0 + 1500);
    now = T0 + 2000;
    await points.tick();
    await points.idle();
    expect(log.sealed).toEqual([]);
    now = T0 + 2600;
    await points.tick();
    await points.idle();
    expect(log.sealed).toEqual([5]);
  });
});
