// Cluster mode's start from an instance's own cache (src/store/local-cache.ts) and the store that
// serves it until PostgreSQL answers (src/store/switching-store.ts): the file is written whole or
// not at all, the cached log answers what it holds and 503 for the rest, and once connected every
// call goes to the real log.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson, hashOf } from '../../../src/core/encoding.js';
import { RegistryError } from '../../../src/core/errors.js';
import { CachedStore, readLocalCache, writeLocalCache, type LocalCache } from '../../../src/store/local-cache.js';
import { SqliteStore } from '../../../src/store/sqlite-store.js';
import type { StoredCommitRow } from '../../../src/store/store.js';
import { SwitchingStore } from '../../../src/store/switching-store.js';
import { tempDir } from '../../helpers/server.js';

const row = (version: number, payload: object): StoredCommitRow => {
  const record = { version, payload };
  return { version, hash: hashOf(record), text: canonicalJson(record), payloadHash: hashOf(payload) };
};
const GENESIS = row(0, { type: 'registry.genesis' });
const HEAD = row(7, { ops: [] });
const CACHE: LocalCache = {
  genesisHash: GENESIS.hash,
  checkpoint: {
    version: 7,
    hash: HEAD.hash,
    stateRoot: 'b3:root',
    descriptorCount: 3,
    createdAt: '2026-11-23T12:00:00.000Z',
    signerSet: '{}',
    signerHistory: '[]',
  },
  record: HEAD,
  entries: ['c', 'a', 'b'].map((id) => ({ id, changedIn: 3, json: `{"id":"${id}"}` })),
  cursorKey: 'ab'.repeat(32),
};

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof RegistryError ? `${e.code} ${e.status}` : String(e)),
  );

describe('the local cache file', () => {
  it('is written whole, read back as written, and refused with a reason when it is not a cache', async () => {
    const dir = tempDir();
    const path = join(dir, 'nested', 'cluster-cache.json');
    await writeLocalCache(path, CACHE);
    expect(existsSync(`${path}.tmp`)).toBe(false);
    expect(readLocalCache(path)).toMatchObject(CACHE);
    expect(readLocalCache(join(dir, 'absent.json'))).toBeUndefined();
    const problems: string[] = [];
    writeFileSync(path, '{"format": 1, "genesisHash": "x"');
    expect(readLocalCache(path, (p) => problems.push(p))).toBeUndefined();
    writeFileSync(path, '{"format": 2}');
    expect(readLocalCache(path, (p) => problems.push(p))).toBeUndefined();
    expect(problems).toHaveLength(2);
    expect(problems[1]).toMatch(/not a cache of this format/);
  });
});

describe('the cached log', () => {
  const store = new CachedStore(CACHE, GENESIS, 'the log is unreachable');

  it('answers what the cache holds: the genesis, its head record, its checkpoint and entries by id', async () => {
    expect(await store.genesis()).toEqual(GENESIS);
    expect(await store.commit(0)).toEqual(GENESIS);
    expect(await store.commit(7)).toEqual(HEAD);
    expect(await store.commit(8)).toBeUndefined();
    expect(await store.commits(7, 10)).toEqual([HEAD]);
    expect(await store.commits(8, 10)).toEqual([]);
    expect(await store.latestCheckpoint()).toEqual(CACHE.checkpoint);
    expect(await store.checkpoints()).toEqual([CACHE.checkpoint]);
    expect((await store.checkpointEntries(7, '', 2)).map((e) => e.id)).toEqual(['a', 'b']);
    expect((await store.checkpointEntries(7, 'b', 2)).map((e) => e.id)).toEqual(['c']);
    expect(await store.orphanCheckpointVersions()).toEqual([]);
    expect(await store.proposals()).toEqual([]);
    expect(await store.auditHead()).toBeNull();
    expect(await store.lastFreezeEvent()).toBeUndefined();
    expect(await store.unprunedSettledCount()).toBe(0);
    expect(await store.setting('cursor_key', () => 'new')).toBe(CACHE.cursorKey);
    expect(await store.setting('other', () => 'new')).toBe('new');
    await store.close();
  });

  it('answers 503 with the reason for what it does not hold, and for every write', async () => {
    const refused = [
      store.commit(3),
      store.commits(1, 10),
      store.checkpointEntries(5, '', 10),
      store.proposal(),
      store.audit(),
      store.initialize(),
      store.write(),
      store.addCheckpointEntries(),
      store.sealCheckpoint(),
      store.dropCheckpoint(),
      store.dropCheckpointEntries(),
      store.pruneCommits(),
      store.pruneSettledProposals(),
    ];
    for (const p of refused) expect(await code(p)).toBe('Unavailable 503');
    await expect(store.write()).rejects.toThrow(/the log is unreachable: only the state at version 7 is served until it is back/);
  });
});

describe('the switching store', () => {
  it('serves the cache until the log opens, tried again with back-off, then the log for every call', async () => {
    const log = new SqliteStore({ path: ':memory:' });
    await log.initialize(GENESIS);
    const failures: number[] = [];
    let attempts = 0;
    const store = new SwitchingStore(new CachedStore(CACHE, GENESIS, 'away'), {
      connect: () => (++attempts < 3 ? Promise.reject(new Error('ECONNREFUSED')) : Promise.resolve(log)),
      failed: (_e, retryInMs) => failures.push(retryInMs),
    });
    expect(store.onCache).toBe(true);
    expect(await store.leads()).toBe(false);
    await expect(
      store.watchCommits(
        () => undefined,
        () => undefined,
      ),
    ).rejects.toThrow(/not reachable yet/);
    expect((await store.commit(7))?.hash).toBe(HEAD.hash);
    expect(await store.connected).toBe(true);
    expect(failures).toEqual([250, 500]);
    expect(store.onCache).toBe(false);
    // Every call goes to the log now (its own answers: no commit 7, no checkpoint).
    expect(await store.commit(7)).toBeUndefined();
    expect(await store.genesis()).toEqual({ version: 0, hash: GENESIS.hash, text: GENESIS.text });
    expect(await store.commits(0, 5)).toHaveLength(1);
    expect(await store.latestCheckpoint()).toBeUndefined();
    expect(await store.checkpoints()).toEqual([]);
    expect(await store.checkpointEntries(1, '', 5)).toEqual([]);
    expect(await store.orphanCheckpointVersions()).toEqual([]);
    expect(await store.unprunedSettledCount()).toBe(0);
    expect(await store.proposals({ afterSeq: 0, limit: 5 })).toEqual([]);
    expect(await store.proposal('x')).toBeUndefined();
    expect(await store.auditHead()).toBeNull();
    expect(await store.audit(1, 5)).toEqual([]);
    expect(await store.lastFreezeEvent()).toBeUndefined();
    expect(await store.setting('k', () => 'v')).toBe('v');
    expect(await store.leads()).toBe(true);
    await store.resign();
    await expect(store.initialize(GENESIS)).rejects.toThrow();
    expect(await store.dropCheckpointEntries(1, 5)).toBe(0);
    await store.dropCheckpoint(1);
    expect(await store.pruneSettledProposals(0, 5)).toBe(0);
    expect(await store.pruneCommits(1, 2)).toBe(0);
    await store.addCheckpointEntries(1, []);
    await expect(store.sealCheckpoint(CACHE.checkpoint)).rejects.toThrow();
    await store.write({ audit: [] });
    await store.close();
  });

  it('stops trying when closed first: connected says false', async () => {
    const store = new SwitchingStore(new CachedStore(CACHE, GENESIS, 'away'), {
      connect: () => Promise.reject(new Error('ECONNREFUSED')),
    });
    await store.close();
    expect(await store.connected).toBe(false);
  });
});
