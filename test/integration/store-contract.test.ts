// The Store contract (src/store/store.ts), run against each backend: SQLite on a real file and
// PostgreSQL on a real server started here (test/helpers/postgres.ts). The same calls must give
// the same answers, a failing batch must change nothing, and each database itself must refuse
// to rewrite history: the raw statements go through the backend's own client, beside the store.
import Database from 'better-sqlite3';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { chainAuditEvent, type AuditHead, type ChainedEvent } from '../../src/core/audit.js';
import { canonicalJson, formatTime, hashOf } from '../../src/core/encoding.js';
import type { AuditKind } from '../../src/core/schemas.js';
import { ConfigError, StartError, StoreBusyError, WriteConflict } from '../../src/errors.js';
import { describeStore, openStore, storeTarget } from '../../src/store/open-store.js';
import { migratePostgres, POSTGRES_MIGRATIONS_DIR, PostgresStore } from '../../src/store/postgres-store.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { CheckpointEntry, CheckpointInfo, NewProposal, Store, StoredCommit, WriteBatch } from '../../src/store/store.js';
import { postgresSkipReason, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { tempDir } from '../helpers/server.js';

const SKIP_POSTGRES = postgresSkipReason();
if (SKIP_POSTGRES) console.warn(`store-contract: the PostgreSQL backend is not tested: ${SKIP_POSTGRES}`);

/** One log opened on a backend, with a raw connection to its database beside the store. */
interface Opened {
  store: Store;
  /** Runs a statement through the backend's own client, not through the store. */
  raw(sql: string): Promise<void>;
  /** The rows of `table`, through the raw connection. */
  count(table: string): Promise<number>;
  /** A second store on the same log while this one is open. */
  openAgain(): Promise<Store>;
  /** Closes the store and opens the log again. */
  reopen(): Promise<Store>;
}

interface Backend {
  name: string;
  skip: string | undefined;
  open(): Promise<Opened>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sqlite: Backend = {
  name: 'SQLite',
  skip: undefined,
  open() {
    const path = join(tempDir('store-contract-'), 'registry.db');
    const state = { store: new SqliteStore({ path }) as Store };
    const raw = new Database(path);
    cleanups.push(async () => {
      raw.close();
      await state.store.close();
    });
    return Promise.resolve({
      get store() {
        return state.store;
      },
      // better-sqlite3 throws at once: made rejections, as PostgreSQL's are.
      raw: (sql) => Promise.resolve().then(() => void raw.exec(sql)),
      count: (table) => Promise.resolve((raw.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n),
      openAgain: () => Promise.resolve().then(() => new SqliteStore({ path })),
      async reopen() {
        await state.store.close();
        state.store = new SqliteStore({ path });
        return state.store;
      },
    });
  },
};

/** One PostgreSQL server for the file; a database of its own for each test. */
let server: PostgresServer | undefined;
beforeAll(async () => {
  if (SKIP_POSTGRES === undefined) server = await startPostgres();
}, 60_000);
afterAll(async () => server?.stop(), 60_000);

const pg: Backend = {
  name: 'PostgreSQL',
  skip: SKIP_POSTGRES,
  async open() {
    // An ICU collation as the database's default: the store must still order ids byte by byte.
    const url = await server!.createDatabase({ icuLocale: 'en-US' });
    // Maintenance writes (checkpoints, pruning) are the lock holder's: this store takes it.
    const lead = async (store: PostgresStore) => {
      expect(await store.leads()).toBe(true);
      return store;
    };
    const state = { store: (await lead(await PostgresStore.open(url))) as Store };
    const raw = postgres(url, { max: 1, onnotice: () => {} });
    cleanups.push(async () => {
      await raw.end();
      await state.store.close();
    });
    return {
      get store() {
        return state.store;
      },
      raw: async (sql) => void (await raw.unsafe(sql)),
      count: async (table) => Number((await raw.unsafe<{ n: string }[]>(`SELECT COUNT(*) AS n FROM ${table}`))[0]!.n),
      openAgain: () => PostgresStore.open(url),
      async reopen() {
        await state.store.close();
        state.store = await lead(await PostgresStore.open(url));
        return state.store;
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// A small log written straight through the store: records, proposals and audit events whose
// hashes are real, though nothing here checks signatures (the store does not either).

const T0 = Date.parse('2026-11-23T12:00:00.000Z');
/** Past 2^31 ms: BIGINT columns must come back as numbers. */
const EXPIRES = T0 + 3_600_000;

interface TestCommit extends StoredCommit {
  payloadHash: string;
}

function commitOf(version: number, payload: Record<string, unknown>): TestCommit {
  const record = { version, payload };
  return { version, hash: hashOf(record), payloadHash: hashOf(payload), text: canonicalJson(record) };
}

const genesisPayload = { type: 'registry.genesis', registry_id: 'contract', signer_set: { threshold: 1, signers: [] } };
const GENESIS = commitOf(0, genesisPayload);

const putPayload = (n: number, label = `v${n}`) => ({
  type: 'registry.proposal',
  base_version: n - 1,
  ops: [{ op: 'put', descriptor: { id: `d${n}`, kind: 'service', labels: { n: label }, body: {} } }],
});
/** A signer-set change, its set_signers op second: the check must look at every op. */
const signersPayload = (n: number) => ({
  type: 'registry.proposal',
  base_version: n - 1,
  ops: [
    { op: 'put', descriptor: { id: `d${n}`, kind: 'service', labels: {}, body: {} } },
    { op: 'set_signers', signer_set: { threshold: 1, signers: [] } },
  ],
});

const newProposal = (payload: object, baseVersion = 0): NewProposal => ({
  id: hashOf(payload),
  payloadText: canonicalJson(payload),
  baseVersion,
  createdAt: formatTime(T0),
  expiresAt: EXPIRES,
  proposedThreshold: null,
  receivedAt: formatTime(T0 + 1),
});

const approval = (proposalId: string, signer: string) => ({
  proposalId,
  signer_id: signer,
  sig: `sig-${signer}`,
  receivedAt: formatTime(T0 + 2),
});

/** Writes through a store as the writer does, keeping the audit chain's head. */
class Log {
  head: AuditHead | null = null;
  version = 0;
  constructor(readonly store: Store) {}

  event(kind: AuditKind, fields: { proposal_id?: string; version?: number; reason?: string } = {}): ChainedEvent {
    const e = chainAuditEvent(this.head, { at: formatTime(T0 + (this.head?.seq ?? 0)), kind, ...fields });
    this.head = { seq: e.event.seq, hash: e.hash };
    return e;
  }

  /** The audit events a batch would carry, without moving the head (for batches meant to fail). */
  peek(kinds: AuditKind[]): ChainedEvent[] {
    const saved = this.head;
    const events = kinds.map((k) => this.event(k));
    this.head = saved;
    return events;
  }

  async genesis(): Promise<void> {
    await this.store.initialize(GENESIS);
  }

  /** A proposal received, approved and committed as the next version in one batch. */
  async commit(payload: Record<string, unknown>): Promise<{ id: string; version: number; commit: TestCommit }> {
    const version = this.version + 1;
    const commit = commitOf(version, payload);
    const id = hashOf(payload);
    await this.store.write({
      proposal: newProposal(payload, version - 1),
      approvals: [approval(id, 'alice')],
      commit,
      statusChanges: [{ proposalId: id, status: 'committed', version }],
      settledAt: T0,
      audit: [this.event('proposal_received', { proposal_id: id }), this.event('committed', { proposal_id: id, version })],
    });
    this.version = version;
    return { id, version, commit };
  }

  /** A pending proposal with one approval. */
  async propose(payload: object): Promise<string> {
    const id = hashOf(payload);
    await this.store.write({
      proposal: newProposal(payload, this.version),
      approvals: [approval(id, 'alice')],
      audit: [this.event('proposal_received', { proposal_id: id })],
    });
    return id;
  }

  async settle(id: string, status: 'stale' | 'expired', at: number): Promise<void> {
    await this.store.write({
      statusChanges: [{ proposalId: id, status }],
      settledAt: at,
      audit: [this.event(status === 'stale' ? 'proposal_stale' : 'proposal_expired', { proposal_id: id })],
    });
  }
}

const entry = (id: string, changedIn = 1): CheckpointEntry => ({ id, changedIn, json: canonicalJson({ id, kind: 'service' }) });

const checkpointOf = (commit: TestCommit, count: number): CheckpointInfo => ({
  version: commit.version,
  hash: commit.hash,
  stateRoot: `b3:${'0'.repeat(63)}${commit.version % 10}`,
  descriptorCount: count,
  createdAt: formatTime(T0 + commit.version),
  signerSet: canonicalJson(genesisPayload.signer_set),
  signerHistory: canonicalJson([{ from: 1, set: genesisPayload.signer_set }]),
});

/** What a refusal by one of the migrations' triggers says (any other error is not one). */
const REFUSED = /append-only|contiguous|only moves once|never dropped|go only after|do not change|needs every entry/;

// ---------------------------------------------------------------------------------------------

for (const backend of [sqlite, pg]) {
  describe.skipIf(backend.skip !== undefined)(`the store contract on ${backend.name}`, () => {
    it('writes the genesis and commits, and reads them back, also after a reopen', async () => {
      const o = await backend.open();
      expect(await o.store.genesis()).toBeUndefined();
      expect(await o.store.commits(0, 10)).toEqual([]);
      const log = new Log(o.store);
      await log.genesis();
      // A label with an escaped NUL and characters outside ASCII: stored as the exact bytes.
      const first = await log.commit(putPayload(1, 'nul\u0000 é 😀'));
      expect(first.commit.text).toContain('\\u0000');
      const second = await log.commit(putPayload(2));
      const third = await log.commit(signersPayload(3));
      const strip = (c: TestCommit) => ({ version: c.version, hash: c.hash, text: c.text });
      expect(await o.store.genesis()).toEqual(strip(GENESIS));
      expect(await o.store.commit(2)).toEqual(strip(second.commit));
      expect(await o.store.commit(4)).toBeUndefined();
      expect(await o.store.commits(1, 2)).toEqual([first.commit, second.commit]);
      expect(await o.store.commits(3, 100)).toEqual([third.commit]);
      expect(await o.store.commits(4, 100)).toEqual([]);
      const store = await o.reopen();
      expect(await store.commits(0, 100)).toEqual([GENESIS, first.commit, second.commit, third.commit]);
      expect((await store.commit(1))!.text).toBe(first.commit.text);
    });

    it('refuses a commit that is not the next version', async () => {
      const o = await backend.open();
      const log = new Log(o.store);
      await expect(o.store.write({ commit: commitOf(1, putPayload(1)), audit: [] })).rejects.toThrow(/contiguous/);
      await log.genesis();
      await expect(o.store.initialize(commitOf(0, { other: true }))).rejects.toThrow();
      expect(await o.store.genesis()).toEqual({ version: 0, hash: GENESIS.hash, text: GENESIS.text });
      await log.commit(putPayload(1));
      const gap = commitOf(3, putPayload(3));
      await expect(o.store.write({ commit: gap, audit: [] })).rejects.toThrow(/contiguous/);
      expect(await o.store.commit(3)).toBeUndefined();
    });

    it('stores proposals and approvals, in arrival and signer_id order, and moves a status once', async () => {
      const o = await backend.open();
      const log = new Log(o.store);
      await log.genesis();
      const a = putPayload(1, 'a');
      const aId = hashOf(a);
      const signerIds = ['bob', 'Alice', '_x', 'alice', 'Zed'];
      await o.store.write({
        proposal: { ...newProposal(a), proposedThreshold: 2 },
        approvals: signerIds.map((s) => approval(aId, s)),
        audit: [log.event('proposal_received', { proposal_id: aId })],
      });
      const bId = await log.propose(putPayload(1, 'b'));
      const cId = await log.propose(putPayload(1, 'c'));
      const stored = await o.store.proposal(aId);
      expect(stored).toEqual({
        seq: expect.any(Number) as number,
        id: aId,
        baseVersion: 0,
        createdAt: formatTime(T0),
        expiresAt: EXPIRES,
        proposedThreshold: 2,
        receivedAt: formatTime(T0 + 1),
        status: 'pending',
        version: null,
        // Byte order, as SQLite's BINARY collation: upper case before '_' before lower case.
        approvals: ['Alice', 'Zed', '_x', 'alice', 'bob'].map((s) => ({ signer_id: s, sig: `sig-${s}` })),
        payloadText: canonicalJson(a),
      });
      expect(await o.store.proposal('b3:none')).toBeUndefined();
      // A later approval joins the others.
      await o.store.write({ approvals: [approval(bId, 'carol')], audit: [log.event('approval_accepted', { proposal_id: bId })] });
      const all = await o.store.proposals({ afterSeq: 0, limit: 10 });
      expect(all.map((p) => p.id)).toEqual([aId, bId, cId]);
      expect(all.map((p) => p.seq)).toEqual([...all.map((p) => p.seq)].sort((x, y) => x - y));
      expect(all[1]!.approvals).toEqual([
        { signer_id: 'alice', sig: 'sig-alice' },
        { signer_id: 'carol', sig: 'sig-carol' },
      ]);
      expect(all[0]).not.toHaveProperty('payloadText');
      expect((await o.store.proposals({ afterSeq: all[0]!.seq, limit: 1 })).map((p) => p.id)).toEqual([bId]);

      // Moves: b commits at version 1, c goes stale; each once.
      const commit = commitOf(1, putPayload(1, 'b'));
      await o.store.write({
        commit,
        statusChanges: [
          { proposalId: bId, status: 'committed', version: 1 },
          { proposalId: cId, status: 'stale' },
        ],
        settledAt: T0 + 5,
        audit: [log.event('committed', { proposal_id: bId, version: 1 }), log.event('proposal_stale', { proposal_id: cId })],
      });
      expect(await o.store.proposal(bId)).toMatchObject({ status: 'committed', version: 1 });
      expect(await o.store.proposal(cId)).toMatchObject({ status: 'stale', version: null });
      expect((await o.store.proposals({ status: 'pending', afterSeq: 0, limit: 10 })).map((p) => p.id)).toEqual([aId]);
      expect((await o.store.proposals({ status: 'stale', afterSeq: 0, limit: 10 })).map((p) => p.id)).toEqual([cId]);
      expect(await o.store.proposals({ status: 'expired', afterSeq: 0, limit: 10 })).toEqual([]);

      // A second move of c fails, and takes the whole batch with it: a's move and the event.
      const head = await o.store.auditHead();
      await expect(
        o.store.write({
          statusChanges: [
            { proposalId: aId, status: 'expired' },
            { proposalId: cId, status: 'expired' },
          ],
          audit: log.peek(['proposal_expired', 'proposal_expired']),
        }),
      ).rejects.toThrow(`proposal ${cId} is not pending`);
      expect(await o.store.proposal(aId)).toMatchObject({ status: 'pending' });
      expect(await o.store.auditHead()).toEqual(head);
      // A second approval by the same signer is refused.
      await expect(o.store.write({ approvals: [approval(aId, 'bob')], audit: [] })).rejects.toThrow();
      expect((await o.store.proposal(aId))!.approvals).toHaveLength(signerIds.length);
    });

    it('changes nothing when any statement of a batch fails', async () => {
      const o = await backend.open();
      const log = new Log(o.store);
      await log.genesis();
      await log.commit(putPayload(1));
      const before = {
        proposals: await o.count('proposals'),
        approvals: await o.count('approvals'),
        commits: await o.count('commits'),
        audit: await o.count('audit'),
        head: await o.store.auditHead(),
      };
      const payload = putPayload(2);
      const id = hashOf(payload);
      const good = (): WriteBatch => ({
        proposal: newProposal(payload, 1),
        approvals: [approval(id, 'alice'), approval(id, 'bob')],
        commit: commitOf(2, payload),
        statusChanges: [{ proposalId: id, status: 'committed', version: 2 }],
        settledAt: T0,
        audit: log.peek(['proposal_received', 'approval_accepted', 'committed']),
      });
      const failing: [string, WriteBatch][] = [
        [
          'an audit event out of sequence, last',
          { ...good(), audit: [...good().audit.slice(0, 2), { ...good().audit[2]!, event: { ...good().audit[2]!.event, seq: 99 } }] },
        ],
        ['an audit hash used twice', { ...good(), audit: [good().audit[0]!, { ...good().audit[1]!, hash: good().audit[0]!.hash }] }],
        ['an approval given twice', { ...good(), approvals: [approval(id, 'alice'), approval(id, 'alice')] }],
        ['an approval of an unknown proposal', { ...good(), approvals: [approval('b3:unknown', 'alice')] }],
        [
          'a commit whose payload hash is already in the log',
          { ...good(), commit: { ...commitOf(2, payload), payloadHash: (await o.store.commits(1, 1))[0]!.payloadHash } },
        ],
        ['a status change of an unknown proposal', { ...good(), statusChanges: [{ proposalId: 'b3:unknown', status: 'stale' }] }],
      ];
      for (const [what, batch] of failing) {
        await expect(o.store.write(batch), what).rejects.toThrow();
        expect(
          {
            proposals: await o.count('proposals'),
            approvals: await o.count('approvals'),
            commits: await o.count('commits'),
            audit: await o.count('audit'),
            head: await o.store.auditHead(),
          },
          what,
        ).toEqual(before);
        expect(await o.store.proposal(id), what).toBeUndefined();
      }
      // The same batch, whole, goes in.
      await o.store.write(good());
      expect(await o.store.proposal(id)).toMatchObject({ status: 'committed', version: 2 });
      expect(await o.count('audit')).toBe(before.audit + 3);
    });

    it('chains the audit log and finds the last freeze event', async () => {
      const o = await backend.open();
      expect(await o.store.auditHead()).toBeNull();
      expect(await o.store.audit(1, 10)).toEqual([]);
      expect(await o.store.lastFreezeEvent()).toBeUndefined();
      const log = new Log(o.store);
      const events = [
        log.event('frozen', { reason: 'incident\u0000 née' }),
        log.event('thawed'),
        log.event('frozen', { reason: 'again' }),
        log.event('approval_refused', { reason: 'no' }),
      ];
      await o.store.write({ audit: events.slice(0, 1) });
      expect(await o.store.lastFreezeEvent()).toBe(events[0]!.text);
      await o.store.write({ audit: events.slice(1) });
      expect(await o.store.auditHead()).toEqual({ seq: 4, hash: events[3]!.hash });
      expect(await o.store.audit(1, 10)).toEqual(events.map((e) => e.text));
      expect(await o.store.audit(2, 2)).toEqual([events[1]!.text, events[2]!.text]);
      expect(await o.store.lastFreezeEvent()).toBe(events[2]!.text);
      // A gap or a repeat is refused.
      const skipped = chainAuditEvent({ seq: 5, hash: events[3]!.hash }, { at: formatTime(T0), kind: 'thawed' });
      await expect(o.store.write({ audit: [skipped] })).rejects.toThrow(/contiguous/);
      await expect(o.store.write({ audit: [events[3]!] })).rejects.toThrow();
      expect(await o.store.auditHead()).toEqual({ seq: 4, hash: events[3]!.hash });
    });

    it('keeps a setting as the first caller made it', async () => {
      const o = await backend.open();
      const initial = vi.fn(() => 'first');
      expect(await o.store.setting('cursor_key', initial)).toBe('first');
      expect(await o.store.setting('cursor_key', () => 'second')).toBe('first');
      expect(initial).toHaveBeenCalledTimes(1);
      expect(await o.store.setting('other', () => 'x')).toBe('x');
      const store = await o.reopen();
      expect(await store.setting('cursor_key', () => 'third')).toBe('first');
    });

    it('builds, seals, lists and drops checkpoints: sealed only when complete, the newest never dropped', async () => {
      const o = await backend.open();
      const log = new Log(o.store);
      await log.genesis();
      const commits = [];
      for (let n = 1; n <= 5; n++) commits.push((await log.commit(putPayload(n))).commit);
      const [, , c3, , c5] = commits as [TestCommit, TestCommit, TestCommit, TestCommit, TestCommit];
      expect(await o.store.latestCheckpoint()).toBeUndefined();
      expect(await o.store.checkpoints()).toEqual([]);

      // Entries in two transactions, out of order; a checkpoint row only once all are there.
      await o.store.addCheckpointEntries(3, [entry('b'), entry('_')]);
      await expect(o.store.sealCheckpoint(checkpointOf(c3, 4))).rejects.toThrow(/needs every entry/);
      await o.store.addCheckpointEntries(3, [entry('a', 2), entry('A', 3)]);
      expect(await o.store.orphanCheckpointVersions()).toEqual([3]);
      await expect(o.store.sealCheckpoint({ ...checkpointOf(c3, 4), hash: c5.hash })).rejects.toThrow(/needs every entry/);
      await expect(o.store.sealCheckpoint(checkpointOf(c3, 3))).rejects.toThrow(/needs every entry/);
      await o.store.sealCheckpoint(checkpointOf(c3, 4));
      expect(await o.store.orphanCheckpointVersions()).toEqual([]);
      expect(await o.store.latestCheckpoint()).toEqual(checkpointOf(c3, 4));
      // Paged by id in byte order, whatever the database's collation.
      expect(await o.store.checkpointEntries(3, '', 2)).toEqual([entry('A', 3), entry('_')]);
      expect(await o.store.checkpointEntries(3, '_', 10)).toEqual([entry('a', 2), entry('b')]);
      expect(await o.store.checkpointEntries(3, 'b', 10)).toEqual([]);
      // An entry cannot be added twice.
      await expect(o.store.addCheckpointEntries(5, [entry('x'), entry('x')])).rejects.toThrow();
      expect(await o.store.orphanCheckpointVersions()).toEqual([]);

      // The only checkpoint is the newest: never dropped, nor its entries.
      await expect(o.store.dropCheckpoint(3)).rejects.toThrow(/never dropped/);
      await expect(o.store.dropCheckpointEntries(3, 10)).rejects.toThrow(/go only after/);
      // A newer one (no descriptors), then the older one goes, then its entries a few at a time.
      await o.store.sealCheckpoint(checkpointOf(c5, 0));
      expect((await o.store.checkpoints()).map((c) => c.version)).toEqual([3, 5]);
      expect((await o.store.latestCheckpoint())?.version).toBe(5);
      await expect(o.store.dropCheckpoint(5)).rejects.toThrow(/never dropped/);
      await o.store.dropCheckpoint(3);
      expect(await o.store.orphanCheckpointVersions()).toEqual([3]);
      expect(await o.store.dropCheckpointEntries(3, 3)).toBe(3);
      expect(await o.store.dropCheckpointEntries(3, 3)).toBe(1);
      expect(await o.store.dropCheckpointEntries(3, 3)).toBe(0);
      expect(await o.store.orphanCheckpointVersions()).toEqual([]);
      expect(await o.store.checkpoints()).toEqual([checkpointOf(c5, 0)]);
    });

    it('prunes records below the oldest checkpoint, never the genesis, a signer-set change or the record after it', async () => {
      const o = await backend.open();
      const log = new Log(o.store);
      await log.genesis();
      const made = [];
      made.push(await log.commit(putPayload(1, 'nul\u0000')));
      made.push(await log.commit(signersPayload(2)));
      for (let n = 3; n <= 7; n++) made.push(await log.commit(putPayload(n)));
      const byVersion = new Map(made.map((m) => [m.version, m]));
      // Without a checkpoint nothing is pruned.
      expect(await o.store.pruneCommits(0, 7)).toBe(0);
      await o.store.sealCheckpoint(checkpointOf(byVersion.get(5)!.commit, 0));
      await o.store.sealCheckpoint(checkpointOf(byVersion.get(6)!.commit, 0));

      // Below the oldest checkpoint (5): 1 and 4; not the genesis, not 2 (set_signers), not 3
      // (its base_hash binds 2). A range prunes only what it covers.
      expect(await o.store.pruneCommits(0, 1)).toBe(1);
      expect(await o.store.pruneCommits(0, 7)).toBe(1);
      expect(await o.store.pruneCommits(0, 7)).toBe(0);
      const rows = await o.store.commits(0, 10);
      expect(rows.map((r) => [r.version, r.text === ''])).toEqual([
        [0, false],
        [1, true],
        [2, false],
        [3, false],
        [4, true],
        [5, false],
        [6, false],
        [7, false],
      ]);
      // Hashes stay: the chain stays whole.
      expect(rows.map((r) => [r.hash, r.payloadHash])).toEqual([GENESIS, ...made.map((m) => m.commit)].map((c) => [c.hash, c.payloadHash]));
      expect(await o.store.commit(1)).toEqual({ version: 1, hash: byVersion.get(1)!.commit.hash, text: '' });
      // Their proposals' payloads went with them; the others' stay.
      for (const m of made) {
        const p = await o.store.proposal(m.id);
        expect(p?.payloadText === '', `proposal of version ${m.version}`).toBe(m.version === 1 || m.version === 4);
        expect(p).toMatchObject({ status: 'committed', version: m.version });
      }
      // Dropping the oldest checkpoint moves the horizon to 6.
      await o.store.dropCheckpoint(5);
      expect(await o.store.pruneCommits(5, 7)).toBe(1);
      expect((await o.store.commit(5))!.text).toBe('');
      expect((await o.store.commit(6))!.text).not.toBe('');

      // The database refuses the rest itself.
      const refused = [
        "UPDATE commits SET record = '' WHERE version = 0",
        "UPDATE commits SET record = '' WHERE version = 2",
        "UPDATE commits SET record = '' WHERE version = 3",
        "UPDATE commits SET record = '' WHERE version = 6",
        "UPDATE commits SET record = '' WHERE version = 7",
        "UPDATE commits SET hash = 'h' WHERE version = 1",
        "UPDATE commits SET record = '{}' WHERE version = 1",
        // A committed proposal's payload goes only with its commit's record.
        `UPDATE proposals SET payload = '' WHERE id = '${byVersion.get(6)!.id}'`,
        // A pruned payload does not come back.
        `UPDATE proposals SET payload = '{}' WHERE id = '${byVersion.get(1)!.id}'`,
      ];
      for (const sql of refused) await expect(o.raw(sql), sql).rejects.toThrow(REFUSED);
      expect((await o.store.commit(6))!.text).toBe(byVersion.get(6)!.commit.text);
      expect((await o.store.proposal(byVersion.get(6)!.id))!.payloadText).not.toBe('');
    });

    it('prunes the payloads of settled proposals after their time, never a pending one', async () => {
      const o = await backend.open();
      const log = new Log(o.store);
      await log.genesis();
      const stale = await log.propose(putPayload(1, 'stale'));
      const expired = await log.propose(putPayload(1, 'expired'));
      const later = await log.propose(putPayload(1, 'later'));
      const pending = await log.propose(putPayload(1, 'pending'));
      await log.settle(stale, 'stale', T0 + 1000);
      await log.settle(expired, 'expired', T0 + 2000);
      await log.settle(later, 'stale', T0 + 9000);
      expect(await o.store.unprunedSettledCount()).toBe(3);
      expect(await o.store.pruneSettledProposals(T0 + 2500, 1)).toBe(1);
      expect(await o.store.pruneSettledProposals(T0 + 2500, 10)).toBe(1);
      expect(await o.store.pruneSettledProposals(T0 + 2500, 10)).toBe(0);
      expect(await o.store.unprunedSettledCount()).toBe(1);
      const payload = async (id: string) => (await o.store.proposal(id))!.payloadText;
      expect(await payload(stale)).toBe('');
      expect(await payload(expired)).toBe('');
      expect(await payload(later)).not.toBe('');
      expect(await o.store.pruneSettledProposals(T0 + 10_000, 10)).toBe(1);
      expect(await payload(pending)).toBe(canonicalJson(putPayload(1, 'pending')));
      expect(await o.store.unprunedSettledCount()).toBe(0);
      // Rows, statuses and approvals stay.
      expect(await o.store.proposal(stale)).toMatchObject({ status: 'stale', approvals: [{ signer_id: 'alice', sig: 'sig-alice' }] });
      // A pending proposal's payload is the database's to keep too.
      await expect(o.raw(`UPDATE proposals SET payload = '' WHERE id = '${pending}'`)).rejects.toThrow(REFUSED);
    });

    it('refuses UPDATE and DELETE of history at the database level', async () => {
      const o = await backend.open();
      const log = new Log(o.store);
      await log.genesis();
      const first = await log.commit(putPayload(1));
      await log.commit(putPayload(2));
      const stale = await log.propose(putPayload(3));
      await log.settle(stale, 'stale', T0);
      await o.store.addCheckpointEntries(2, [entry('a')]);
      await o.store.sealCheckpoint(checkpointOf(commitOf(2, putPayload(2)), 1));
      const counts = async (): Promise<Record<string, number>> =>
        Object.fromEntries(
          await Promise.all(
            ['commits', 'proposals', 'approvals', 'audit', 'checkpoints', 'checkpoint_entries'].map(
              async (t): Promise<[string, number]> => [t, await o.count(t)],
            ),
          ),
        );
      const before = await counts();
      const refused = [
        'UPDATE commits SET record = record WHERE version = 1',
        'DELETE FROM commits WHERE version = 2',
        "INSERT INTO commits (version, hash, payload_hash, record) VALUES (9, 'h', 'p', '{}')",
        "UPDATE approvals SET sig = 'x'",
        'DELETE FROM approvals',
        "UPDATE audit SET event = '{}' WHERE seq = 1",
        'DELETE FROM audit WHERE seq = 1',
        "INSERT INTO audit (seq, hash, event) VALUES (1000, 'h', '{}')",
        "UPDATE proposals SET payload = '{}'",
        `UPDATE proposals SET status = 'pending' WHERE id = '${stale}'`,
        `UPDATE proposals SET status = 'committed' WHERE id = '${stale}'`,
        `UPDATE proposals SET version = 7 WHERE id = '${first.id}'`,
        `UPDATE proposals SET expires_at = 0 WHERE id = '${first.id}'`,
        'DELETE FROM proposals',
        "UPDATE checkpoints SET state_root = 'x'",
        'DELETE FROM checkpoints',
        "UPDATE checkpoint_entries SET descriptor = '{}'",
        'DELETE FROM checkpoint_entries',
        ...(backend === pg
          ? [
              // TRUNCATE does not fire row triggers: each history table refuses it on its own.
              'TRUNCATE commits',
              'TRUNCATE approvals',
              'TRUNCATE proposals CASCADE',
              'TRUNCATE audit',
              'TRUNCATE checkpoints',
              'TRUNCATE checkpoint_entries',
            ]
          : []),
      ];
      for (const sql of refused) await expect(o.raw(sql), sql).rejects.toThrow(REFUSED);
      expect(await counts()).toEqual(before);
      expect(await o.store.commits(0, 10)).toHaveLength(3);
    });

    it.skipIf(backend.name !== 'SQLite')('lets one process own a log: a second store is refused while the first is open', async () => {
      const o = await backend.open();
      await new Log(o.store).genesis();
      const error = await o.openAgain().then(
        async (s) => {
          await s.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StoreBusyError);
      expect((error as Error).message).toMatch(/in use by another process/);
      // Once it is closed, the next one opens.
      const store = await o.reopen();
      expect((await store.genesis())?.hash).toBe(GENESIS.hash);
    });
  });
}

describe.skipIf(SKIP_POSTGRES !== undefined)('the PostgreSQL backend', () => {
  const migrationDir = (files: Record<string, string>): string => {
    const dir = join(tempDir('pg-migrations-'), 'migrations');
    mkdirSync(dir);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  };

  it('records the migrations applied, and applies each once when two processes start at once', async () => {
    const url = await server!.createDatabase();
    const clients = [1, 2, 3, 4].map(() => postgres(url, { max: 1, onnotice: () => {} }));
    cleanups.push(async () => void (await Promise.all(clients.map((c) => c.end()))));
    // Connected first, so that they migrate at once: without the advisory lock, the processes
    // that lose the race fail on a CREATE TABLE of the same name.
    await Promise.all(clients.map((c) => c`SELECT 1`));
    expect(await Promise.all(clients.map((c) => migratePostgres(c)))).toEqual([4, 4, 4, 4]);
    const applied = await clients[0]!<{ version: number; name: string }[]>`SELECT version, name FROM schema_migrations ORDER BY version`;
    expect(applied.map((r) => `${r.version} ${r.name}`)).toEqual([
      '1 001_init.sql',
      '2 002_settings.sql',
      '3 003_audit_freezes.sql',
      '4 004_checkpoints.sql',
    ]);
    // A store opens on it without applying anything again.
    const store = await PostgresStore.open(url);
    await store.close();
    expect(await clients[0]!`SELECT version FROM schema_migrations`).toHaveLength(4);
    expect(POSTGRES_MIGRATIONS_DIR).toMatch(/migrations\/postgres\/$/);
  });

  it('applies each migration in a transaction: one that fails leaves nothing of itself', async () => {
    const url = await server!.createDatabase();
    const client = postgres(url, { onnotice: () => {} });
    cleanups.push(async () => void (await client.end()));
    const dir = migrationDir({
      '001_one.sql': 'CREATE TABLE one (x INTEGER);',
      '002_two.sql': 'CREATE TABLE two (x INTEGER); INSERT INTO one VALUES (1); SELECT no_such_function();',
      'notes.txt': 'not a migration',
    });
    await expect(migratePostgres(client, dir)).rejects.toThrow(/no_such_function/);
    expect(await client`SELECT version FROM schema_migrations`).toEqual([{ version: 1 }]);
    expect(await client`SELECT to_regclass('two') AS t`).toEqual([{ t: null }]);
    expect(await client`SELECT COUNT(*)::integer AS n FROM one`).toEqual([{ n: 0 }]);
  });

  it('lets one of two processes appending at the same place in: the other fails whole with WriteConflict', async () => {
    const url = await server!.createDatabase();
    const first = await PostgresStore.open(url);
    cleanups.push(() => first.close());
    const second = await PostgresStore.open(url);
    cleanups.push(() => second.close());
    const one = new Log(first);
    const two = new Log(second);
    await one.genesis();
    // Both chain onto the same audit head: the one that writes first wins.
    await one.commit(putPayload(1, 'a'));
    const lost = await two.store.write({ proposal: newProposal(putPayload(1, 'b')), audit: two.peek(['proposal_received']) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(lost).toBeInstanceOf(WriteConflict);
    expect(await second.proposal(hashOf(putPayload(1, 'b')))).toBeUndefined();
    // The next commit at the same version, chained on the right audit head: the version is taken.
    two.head = await second.auditHead();
    const taken = await second.write({ commit: commitOf(1, putPayload(1, 'c')), audit: [two.event('thawed')] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(taken).toBeInstanceOf(WriteConflict);
    expect((await second.commit(1))?.hash).toBe((await first.commit(1))?.hash);
    // An event chained on another event than the log's (a fork): refused though its number is free.
    const forked = chainAuditEvent(
      { seq: (await second.auditHead())!.seq, hash: 'b3:not-the-head' },
      { at: formatTime(T0), kind: 'thawed' },
    );
    await expect(second.write({ audit: [forked] })).rejects.toBeInstanceOf(WriteConflict);
  });

  it('shares a log between processes: one does the maintenance, and another takes over when its session is gone', async () => {
    const url = await server!.createDatabase();
    const first = await PostgresStore.open(url);
    cleanups.push(() => first.close());
    const second = await PostgresStore.open(url);
    cleanups.push(() => second.close());
    await first.initialize(GENESIS);
    // The same genesis again is a no-op (two instances starting at once); another is refused.
    await second.initialize(GENESIS);
    await expect(second.initialize({ ...GENESIS, hash: 'b3:other' })).rejects.toThrow(/holds another genesis/);
    expect(await first.leads()).toBe(true);
    expect(await first.leads()).toBe(true);
    expect(await second.leads()).toBe(false);
    await expect(second.sealCheckpoint({ version: 0 } as CheckpointInfo)).rejects.toThrow(/does not hold the maintenance lock/);
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    cleanups.push(async () => void (await admin.end()));
    const holders = await admin<{ pid: number }[]>`
      SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
    expect(holders).toHaveLength(1);
    await admin`SELECT pg_terminate_backend(${holders[0]!.pid})`;
    // The second takes over once PostgreSQL has ended the first's session; the first, told its
    // session closed, no longer counts itself the leader and refuses maintenance writes.
    await vi.waitFor(async () => expect(await second.leads()).toBe(true), { timeout: 10_000, interval: 20 });
    expect(await first.leads()).toBe(false);
    await expect(first.addCheckpointEntries(0, [{ id: 'a', changedIn: 0, json: '{}' }])).rejects.toThrow(
      /does not hold the maintenance lock/,
    );
    // Both still read and write the log.
    expect((await first.genesis())?.hash).toBe(GENESIS.hash);
    await first.write({ audit: new Log(first).peek(['thawed']) });
    expect((await second.auditHead())?.seq).toBe(1);
  });

  it('fails at start with a clear error, without the password, when the database cannot be reached', async () => {
    const error = await PostgresStore.open('postgres://registry:s3cret@127.0.0.1:1/registry', { connectTimeout: 5 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StartError);
    expect((error as Error).message).toMatch(/^cannot open the PostgreSQL log at postgres:\/\/registry:\*\*\*@127\.0\.0\.1:1\/registry: /);
    expect((error as Error).message).not.toContain('s3cret');
  });
});

describe('openStore: the store setting', () => {
  it('reads the store setting from flags, the environment and the config file', () => {
    expect(loadConfig({}, {}).store).toBeUndefined();
    expect(loadConfig({}, { REGISTRY_STORE: 'postgres://h/db' }).store).toBe('postgres://h/db');
    expect(loadConfig({ store: 'sqlite:x.db' }, { REGISTRY_STORE: 'postgres://h/db' }).store).toBe('sqlite:x.db');
    expect(() => loadConfig({ store: '' }, {})).toThrow(ConfigError);
  });

  it('names the backend: SQLite at db by default, sqlite:<file>, postgres:// and postgresql:// URLs', () => {
    expect(storeTarget({ store: undefined, db: 'data/registry.db' })).toEqual({ kind: 'sqlite', path: 'data/registry.db' });
    expect(storeTarget({ store: 'sqlite:/var/lib/r.db', db: 'x' })).toEqual({ kind: 'sqlite', path: '/var/lib/r.db' });
    expect(storeTarget({ store: 'sqlite::memory:', db: 'x' })).toEqual({ kind: 'sqlite', path: ':memory:' });
    const multi = 'postgres://u:pw@db1:5432,db2:5432/registry?target_session_attrs=primary';
    expect(storeTarget({ store: multi, db: 'x' })).toEqual({ kind: 'postgres', url: multi });
    expect(storeTarget({ store: 'postgresql://db/registry', db: 'x' })).toEqual({ kind: 'postgres', url: 'postgresql://db/registry' });
    expect(describeStore(storeTarget({ store: multi, db: 'x' }))).toBe(
      'postgres://u:***@db1:5432,db2:5432/registry?target_session_attrs=primary',
    );
    expect(() => storeTarget({ store: 'sqlite:', db: 'x' })).toThrow(ConfigError);
    expect(() => storeTarget({ store: 'mysql://u:pw@h/db', db: 'x' })).toThrow(
      /store must be sqlite:<file>, postgres:\/\/… or postgresql:\/\/…, not mysql:\/\/u:\*\*\*@h\/db/,
    );
  });

  it('opens SQLite at db by default, or at the file of sqlite:<file>', async () => {
    const dir = tempDir('open-store-');
    const byDb = await openStore({ store: undefined, db: join(dir, 'a.db'), synchronous: 'FULL' });
    cleanups.push(() => byDb.close());
    expect(byDb).toBeInstanceOf(SqliteStore);
    await byDb.initialize(GENESIS);
    const byStore = await openStore({ store: `sqlite:${join(dir, 'b.db')}`, db: join(dir, 'a.db'), synchronous: 'NORMAL' });
    cleanups.push(() => byStore.close());
    expect(await byStore.genesis()).toBeUndefined();
    expect((byStore as SqliteStore).durability().synchronous).toBe(1);
  });

  it.skipIf(SKIP_POSTGRES !== undefined)('opens PostgreSQL from a URL, through a multi-host URL whose first host is down', async () => {
    const url = await server!.createDatabase();
    const { port, pathname } = new URL(url);
    // Host 1 refuses connections; the client goes on to the next host, which is the primary.
    const multi = `postgresql://postgres@127.0.0.1:1,127.0.0.1:${port}${pathname}`;
    const store = await openStore({ store: multi, db: 'unused.db', synchronous: 'FULL' });
    cleanups.push(() => store.close());
    expect(store).toBeInstanceOf(PostgresStore);
    await store.initialize(GENESIS);
    expect((await store.genesis())?.hash).toBe(GENESIS.hash);
    // The same URL, with the attribute spelled out, reaches the same log.
    const again = await openStore({ store: `${multi}?target_session_attrs=primary`, db: 'x', synchronous: 'FULL' });
    cleanups.push(() => again.close());
    expect((await again.genesis())?.hash).toBe(GENESIS.hash);
  });
});
