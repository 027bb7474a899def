// Cluster mode (README → Cluster): several registry instances on one PostgreSQL log, each a real
// server on a real port, the database a real PostgreSQL (test/helpers/postgres.ts). Any instance
// takes writes; racing writes leave one version each, and the losers answer as one instance
// would; every instance follows the log (LISTEN/NOTIFY and catch-up), checks what it reads, and
// feeds its own SSE subscribers; reads go on while the database is away.
import pino from 'pino';
import postgres from 'postgres';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Config } from '../../src/config/config.js';
import { canonicalJson, hashOf } from '../../src/core/encoding.js';
import { buildCommitRecord, checkGenesisRecord } from '../../src/core/records.js';
import { planOps, RegistryState } from '../../src/core/state.js';
import type { CommitRecord } from '../../src/core/schemas.js';
import { checkAuditChain, readAudit } from '../helpers/audit.js';
import { Committer } from '../helpers/commits.js';
import { approve, genesisRecord, proposal, put, signers, type TestSigner } from '../helpers/fixtures.js';
import { postgresForSuite, postgresSkipReason } from '../helpers/postgres.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, tempDir, type TestRegistry } from '../helpers/server.js';
import { subscribe, type SseStream } from '../helpers/sse.js';

const SKIP = postgresSkipReason();
if (SKIP) console.warn(`cluster: not run: ${SKIP}`);

const keys = signers('alice', 'bob', 'carol', 'dave');
const [alice, bob, carol, dave] = keys as [TestSigner, TestSigner, TestSigner, TestSigner];

type Answer = { status: string; version?: number; error?: { code: string } };

describe.skipIf(SKIP !== undefined)('a cluster of registries on one PostgreSQL log', () => {
  const pg = postgresForSuite();

  const running: TestRegistry[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await Promise.all(running.splice(0).map((r) => r.close()));
  });

  async function start(g: CommitRecord, url: string, config: Partial<Config> = {}): Promise<TestRegistry> {
    const reg = await startTestRegistry(g, {
      config: { store: url, ...config, ...(process.env.CLUSTER_LOG ? { logLevel: 'info' as const } : {}) },
    });
    running.push(reg);
    await reg.verified;
    return reg;
  }
  const cluster = async (g: CommitRecord, url: string, n = 3, config: Partial<Config> = {}) => {
    const regs: TestRegistry[] = [];
    for (let i = 0; i < n; i++) regs.push(await start(g, url, config));
    return regs;
  };
  const watch = async (reg: TestRegistry, path = '/registry/stream'): Promise<SseStream> => {
    const s = await subscribe(`${reg.url}${path}`);
    cleanups.push(() => Promise.resolve(s.close()));
    return s;
  };
  const raw = (url: string): postgres.Sql => {
    const sql = postgres(url, { max: 2, onnotice: () => {} });
    cleanups.push(() => sql.end());
    return sql;
  };
  const head = async (reg: TestRegistry) => (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
  const ready = async (reg: TestRegistry) =>
    (await request<{ read: boolean; write: boolean; reasons: string[] }>(reg.url, 'GET', '/readyz')).json;
  const submit = (reg: TestRegistry, payload: object, approvals: object[]) =>
    request<Answer>(reg.url, 'POST', '/registry/proposals', { payload, approvals });

  it('follows a commit made on any instance: heads agree and a subscriber on another instance sees it', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('cl', [alice, bob], 1);
    const [a, b, c] = (await cluster(g, url)) as [TestRegistry, TestRegistry, TestRegistry];
    const onB = await watch(b);
    const onC = await watch(c, '/registry/stream?kind=service');
    const p = proposal('cl', await head(a), [put('svc-a', { zone: 'x' })]);
    const r = await submit(a, p, [approve(alice, hashOf(p))]);
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ status: 'committed', version: 1 });
    await onB.waitFor((s) => s.versions.includes(1), 'version 1 on b');
    await onC.waitFor((s) => s.versions.includes(1), 'version 1 on c');
    expect(await head(b)).toEqual(await head(a));
    expect(await head(c)).toEqual(await head(a));
    expect((await request(c.url, 'GET', '/registry/descriptors/svc-a')).status).toBe(200);
    // The record an instance serves is the one that was committed, byte for byte.
    expect((await request(b.url, 'GET', '/registry/1')).text).toBe((await request(a.url, 'GET', '/registry/1')).text);
    // An approval sent to another instance for the committed proposal answers as one instance would.
    const again = await request<Answer>(c.url, 'POST', `/registry/proposals/${hashOf(p)}/approvals`, approve(bob, hashOf(p)));
    expect(again.json).toMatchObject({ status: 'committed', version: 1 });
  });

  it('resumes a stream on another instance with Last-Event-ID', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('resume', [alice], 1);
    const [a, b] = (await cluster(g, url, 2)) as [TestRegistry, TestRegistry];
    const onA = await watch(a);
    for (let i = 1; i <= 4; i++) {
      const p = proposal('resume', await head(a), [put(`svc-${i}`)]);
      expect((await submit(a, p, [approve(alice, hashOf(p))])).json.status).toBe('committed');
    }
    await onA.waitFor((s) => s.versions.length === 4, '4 commits on a');
    // A subscriber of a that saw version 2, reconnecting to b.
    const resumed = await subscribe(`${b.url}/registry/stream`, { headers: { 'last-event-id': '2' } });
    cleanups.push(() => Promise.resolve(resumed.close()));
    await resumed.waitFor((s) => s.versions.length >= 2, 'versions 3 and 4 on b');
    expect(resumed.versions).toEqual([3, 4]);
    expect(resumed.commits.map((c) => c.hash)).toEqual(onA.commits.slice(2).map((c) => c.hash));
  });

  it('races commits from every instance: one version each, the losers told to rebase, every subscriber sees every commit once', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('race', [alice, bob], 1);
    const regs = await cluster(g, url);
    const streams = await Promise.all(regs.map((r) => watch(r)));
    const PER_WRITER = 8;
    const answers: number[] = [];
    const stale: string[] = [];
    // Each writer commits PER_WRITER changes through its own instance, on the head it reads
    // there; a proposal that lost the race to the same version is refused, and re-proposed.
    await Promise.all(
      regs.map(async (reg, w) => {
        for (let i = 0; i < PER_WRITER;) {
          const p = proposal('race', await head(reg), [put(`w${w}-${i}`)]);
          const r = await submit(reg, p, [approve(alice, hashOf(p))]);
          if (r.status === 201 && r.json.status === 'committed') {
            answers.push(r.json.version!);
            i++;
          } else {
            expect(r.status, r.text).toBe(409);
            stale.push(r.json.error!.code);
          }
        }
      }),
    );
    const total = regs.length * PER_WRITER;
    expect(answers.sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    for (const s of streams) await s.waitFor((x) => x.versions.length === total, `${total} commits`);
    for (const s of streams) expect(s.versions).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    const heads = await Promise.all(regs.map(head));
    for (const h of heads) expect(h).toEqual(heads[0]);
    const sql = raw(url);
    const [count] = await sql<{ n: number }[]>`SELECT COUNT(*)::integer AS n FROM commits`;
    expect(count!.n).toBe(total + 1);
    // One audit chain, whoever wrote: every commit recorded once.
    const events = await readAudit(regs[0]!.url);
    checkAuditChain(events);
    expect(events.filter((e) => e.kind === 'committed')).toHaveLength(total);
    if (stale.length) expect(new Set(stale)).toEqual(new Set(['StaleVersion']));
  }, 60_000);

  it('lets approvals sent to different instances at once reach quorum: the proposal commits exactly once', async () => {
    const url = await pg().createDatabase();
    // 3 of 4: the proposal arrives with one approval, then two race on two instances.
    const g = genesisRecord('quorum', keys, 3);
    const [a, b, c] = (await cluster(g, url)) as [TestRegistry, TestRegistry, TestRegistry];
    for (let round = 1; round <= 5; round++) {
      const p = proposal('quorum', await head(a), [put(`svc-${round}`)]);
      const id = hashOf(p);
      expect((await submit(a, p, [approve(alice, id)])).json.status).toBe('pending');
      const [onB, onC] = await Promise.all([
        request<Answer>(b.url, 'POST', `/registry/proposals/${id}/approvals`, approve(bob, id)),
        request<Answer>(c.url, 'POST', `/registry/proposals/${id}/approvals`, approve(carol, id)),
      ]);
      // Whichever came second saw both approvals and committed; the other answered pending.
      expect([onB.json.status, onC.json.status].sort(), `round ${round}`).toEqual(['committed', 'pending']);
      const late = await request<Answer>(a.url, 'POST', `/registry/proposals/${id}/approvals`, approve(dave, id));
      expect(late.json).toMatchObject({ status: 'committed', version: round });
    }
    for (const reg of [a, b, c]) await vi.waitFor(async () => expect((await head(reg)).version).toBe(5), { timeout: 10_000, interval: 10 });
  }, 60_000);

  it('refuses to start a second registry with another genesis on the same database', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('one', [alice], 1);
    const other = genesisRecord('two', [bob], 1);
    // Started at once on an empty database: exactly one genesis gets in, the other start fails.
    const results = await Promise.allSettled([start(g, url), start(other, url)]);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(1);
    expect(String((refused[0] as PromiseRejectedResult).reason)).toMatch(/the database holds another registry/);
    const third = await start(g, url).then(
      () => 'started',
      (e: unknown) => String(e),
    );
    const sql = raw(url);
    const [stored] = await sql<{ hash: string }[]>`SELECT hash FROM commits WHERE version = 0`;
    // The same genesis as the one stored starts beside it; the other is refused again.
    expect(third === 'started').toBe(stored!.hash === hashOf(g));
  });

  it('finds a commit that was never notified: the catch-up reads every record after the head', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('silent', [alice], 1);
    const [a, b] = (await cluster(g, url, 2, { followPollMs: 50 })) as [TestRegistry, TestRegistry];
    const onA = await watch(a);
    const onB = await watch(b);
    // A valid commit written straight into the log, without its NOTIFY (and without the proposal
    // and audit rows a registry writes with it: the followers read the records alone).
    const p = proposal('silent', await head(a), [put('quiet')]);
    const state = new RegistryState(checkGenesisRecord(g).payload.signer_set);
    const delta = planOps(state, p.ops, 1);
    const record = buildCommitRecord({
      registryId: 'silent',
      version: 1,
      prevHash: (await head(a)).hash,
      payload: p,
      payloadHash: hashOf(p),
      approvals: [approve(alice, hashOf(p))],
      stateRoot: state.rootAfter(delta),
      committedAt: new Date().toISOString(),
    });
    const sql = raw(url);
    await sql`INSERT INTO commits (version, hash, payload_hash, record) VALUES (1, ${hashOf(record)}, ${record.payload_hash}, ${canonicalJson(record)})`;
    await onA.waitFor((s) => s.versions.includes(1), 'version 1 on a');
    await onB.waitFor((s) => s.versions.includes(1), 'version 1 on b');
    expect((await head(b)).hash).toBe(hashOf(record));
    expect((await request(b.url, 'GET', '/registry/descriptors/quiet')).status).toBe(200);
  });

  it('starts an instance while others commit: it verifies the log and follows it, and takes writes', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('rolling', [alice], 1);
    const a = await start(g, url);
    let stop = false;
    let committed = 0;
    const writing = (async () => {
      while (!stop) {
        const p = proposal('rolling', await head(a), [put(`svc-${committed}`)]);
        const r = await submit(a, p, [approve(alice, hashOf(p))]);
        if (r.json.status === 'committed') committed++;
      }
    })();
    const onA = await watch(a);
    await onA.waitFor((s) => s.versions.length >= 5, '5 commits before the start');
    // Started while a commits, with the integrity pass run in the background (as a long log's is).
    const b = await startTestRegistry(g, { config: { store: url }, foregroundVerifyLimit: 0 });
    running.push(b);
    const onB = await watch(b);
    await b.verified;
    await onB.waitFor((s) => s.versions.length >= 5, '5 commits followed by b');
    stop = true;
    await writing;
    expect(await ready(b)).toEqual({ read: true, write: true, reasons: [] });
    await vi.waitFor(async () => expect(await head(b)).toEqual(await head(a)), { timeout: 10_000, interval: 50 });
    const p = proposal('rolling', await head(b), [put('from-b')]);
    expect((await submit(b, p, [approve(alice, hashOf(p))])).json.status).toBe('committed');
  }, 60_000);

  it('freezes and thaws every instance: the freeze is an event of the shared log', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('frozen', [alice], 1);
    const token = 'operator-token-of-the-cluster-test';
    const [a, b] = (await cluster(g, url, 2, { operatorToken: token })) as [TestRegistry, TestRegistry];
    const auth = { authorization: `Bearer ${token}` };
    expect((await request(a.url, 'POST', '/ops/freeze', { reason: 'key rotation' }, auth)).status).toBe(200);
    // b refuses the next write, and says why, without being told anything but the log.
    const p = proposal('frozen', await head(b), [put('x')]);
    const refused = await submit(b, p, [approve(alice, hashOf(p))]);
    expect(refused.status).toBe(503);
    expect(refused.text).toMatch(/frozen/);
    expect((await ready(b)).reasons.join('\n')).toMatch(/^frozen: key rotation/m);
    expect((await request(b.url, 'POST', '/ops/thaw', { reason: 'done' }, auth)).status).toBe(200);
    const again = await submit(a, p, [approve(alice, hashOf(p))]);
    expect(again.json).toMatchObject({ status: 'committed', version: 1 });
  });

  it('keeps following after its listening connection is cut', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('lost', [alice], 1);
    const a = await start(g, url);
    // No poll worth the name: the client listens again on a new connection (and catches up then).
    const b = await start(g, url, { followPollMs: 3_600_000 });
    const onB = await watch(b);
    const sql = raw(url);
    const listeners = await sql<
      { pid: number }[]
    >`SELECT pid FROM pg_stat_activity WHERE query ILIKE 'listen%' AND datname = current_database()`;
    expect(listeners).toHaveLength(2);
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'listen%' AND datname = current_database()`;
    const p = proposal('lost', await head(a), [put('x')]);
    expect((await submit(a, p, [approve(alice, hashOf(p))])).json.status).toBe('committed');
    await onB.waitFor((s) => s.versions.includes(1), 'version 1 on b after its listener reconnected', 20_000);
    expect(await head(b)).toEqual(await head(a));
  }, 30_000);

  it('does not serve a row it cannot verify: the instance stays at its last good head and refuses writes', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('forged', [alice, bob], 1);
    const [a, b] = (await cluster(g, url, 2)) as [TestRegistry, TestRegistry];
    const p = proposal('forged', await head(a), [put('good')]);
    expect((await submit(a, p, [approve(alice, hashOf(p))])).json.status).toBe('committed');
    await vi.waitFor(async () => expect((await head(b)).version).toBe(1), { timeout: 10_000, interval: 10 });
    const before = await head(b);
    // A record that links and hashes correctly, written straight into the database, signed by a
    // key that is not a signer's.
    const [mallory] = signers('alice');
    const forgedPayload = proposal('forged', before, [put('evil')]);
    const record = buildCommitRecord({
      registryId: 'forged',
      version: 2,
      prevHash: before.hash,
      payload: forgedPayload,
      payloadHash: hashOf(forgedPayload),
      approvals: [approve(mallory!, hashOf(forgedPayload))],
      stateRoot: before.state_root,
      committedAt: new Date().toISOString(),
    });
    const text = canonicalJson(record);
    const sql = raw(url);
    await sql`INSERT INTO commits (version, hash, payload_hash, record) VALUES (2, ${hashOf(record)}, ${record.payload_hash}, ${text})`;
    await sql`SELECT pg_notify('registry_commit', '2')`;
    for (const reg of [a, b]) {
      await vi.waitFor(async () => expect((await ready(reg)).write).toBe(false), { timeout: 10_000, interval: 10 });
      expect((await ready(reg)).reasons.join('\n')).toMatch(
        /tamper: following the shared log: version 2: the approval by alice does not verify/,
      );
      expect(await head(reg)).toEqual(before);
      expect((await request(reg.url, 'GET', '/registry/descriptors/evil')).status).toBe(404);
      const next = proposal('forged', before, [put('more')]);
      expect((await submit(reg, next, [approve(bob, hashOf(next))])).status).toBe(503);
    }
  });

  it('gives a write up after losing 20 races in a row: 503 write_conflicts, nothing written, and it commits once the races stop', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('races', [alice], 1);
    const a = await start(g, url);
    const sql = raw(url);
    // Every attempt loses, as to a faster instance each time: the audit insert fails with a
    // serialization failure. A sequence (not rolled back with the transaction) counts attempts.
    await sql`CREATE SEQUENCE attempts`;
    await sql.unsafe(`CREATE FUNCTION always_lose() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM nextval('attempts'); RAISE EXCEPTION 'another writer' USING ERRCODE = 'serialization_failure'; END $$`);
    await sql`CREATE TRIGGER always_lose BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION always_lose()`;
    const p = proposal('races', await head(a), [put('x')]);
    const r = await request<{ error: { code: string; message: string } }>(a.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: [approve(alice, hashOf(p))],
    });
    expect(r.status, r.text).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(r.json.error).toMatchObject({
      code: 'Unavailable',
      message: 'the write lost 20 races with other instances in a row; nothing was changed',
    });
    const [count] = await sql<{ n: number }[]>`SELECT last_value::integer AS n FROM attempts`;
    expect(count!.n).toBe(20);
    const [rows] = await sql<{ n: number }[]>`SELECT COUNT(*)::integer AS n FROM proposals`;
    expect(rows!.n).toBe(0);
    expect((await head(a)).version).toBe(0);
    await sql`DROP TRIGGER always_lose ON audit`;
    expect((await submit(a, p, [approve(alice, hashOf(p))])).json).toMatchObject({ status: 'committed', version: 1 });
  });

  it('hands the maintenance on: checkpoints go on, once each, when the leader loses its session and when it stops', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('lead', [alice], 1);
    const config = { checkpointEvery: 2, followPollMs: 50 };
    const commitOn = async (reg: TestRegistry, id: string) => {
      const p = proposal('lead', await head(reg), [put(id)]);
      expect((await submit(reg, p, [approve(alice, hashOf(p))])).json.status).toBe('committed');
    };
    type Checkpoint = { version: number; hash: string; state_root: string };
    const checkpoints = async (reg: TestRegistry) =>
      (await request<{ items: Checkpoint[] }>(reg.url, 'GET', '/registry/checkpoints')).json.items.map((c) => c.version);
    const sql = raw(url);

    // Alone, the first instance leads: it makes the checkpoint at 2.
    const a = await start(g, url, config);
    await commitOn(a, 'svc-1');
    await commitOn(a, 'svc-2');
    await vi.waitFor(async () => expect(await checkpoints(a)).toEqual([2]), { timeout: 10_000, interval: 20 });

    // The leader's session breaks (its connection killed, as a network fault does): the lock goes
    // with it, and the next checkpoint is made all the same, by whichever instance takes the lock.
    const b = await start(g, url, config);
    const holders = await sql<
      { pid: number }[]
    >`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
    expect(holders).toHaveLength(1);
    await sql`SELECT pg_terminate_backend(${holders[0]!.pid})`;
    await commitOn(b, 'svc-3');
    await commitOn(b, 'svc-4');
    await vi.waitFor(async () => expect(await checkpoints(b)).toEqual([2, 4]), { timeout: 10_000, interval: 20 });

    // The first instance stops: the other, alone, makes the next one, on the same cadence (it
    // builds on the latest checkpoint, whoever made it). Two are kept.
    running.splice(running.indexOf(a), 1);
    await a.close();
    await commitOn(b, 'svc-5');
    await commitOn(b, 'svc-6');
    await vi.waitFor(async () => expect(await checkpoints(b)).toEqual([4, 6]), { timeout: 10_000, interval: 20 });
    const [lock] = await sql<
      { pid: number }[]
    >`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;
    expect(lock).toBeDefined();
    // Each is the state of its version: what a recovery from it would start from.
    for (const c of (await request<{ items: Checkpoint[] }>(b.url, 'GET', '/registry/checkpoints')).json.items) {
      const record = (await request<CommitRecord>(b.url, 'GET', `/registry/${c.version}`)).json;
      expect(c).toMatchObject({ hash: hashOf(record), state_root: record.state_root });
    }
  });

  it('says an instance that fell behind the retention horizon serves stale reads: /readyz 503, writes refused, no tamper alarm; a restart catches up', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('behind', [alice], 1);
    const config = { checkpointEvery: 2, retainCommits: 2, followPollMs: 50 };
    const a = await start(g, url, config);
    // B reads the log through a connection the test can cut, as a network fault would.
    let cut = false;
    const b = await startTestRegistry(g, {
      config: { store: url, ...config },
      wrapStore: (store) =>
        new Proxy(store, {
          get(target, key, receiver) {
            const value: unknown = Reflect.get(target, key, receiver);
            if (typeof value !== 'function') return value;
            return (...args: unknown[]) =>
              cut ? Promise.reject(new Error('connection cut')) : (value as (...a: unknown[]) => unknown).apply(target, args);
          },
        }),
    });
    running.push(b);
    await b.verified;
    cut = true;
    // A commits and checkpoints on; retention prunes the records B would need next.
    const committer = new Committer(() => a.url, 'behind', alice);
    for (let i = 1; i <= 8; i++) {
      await committer.commit([put(`svc-${i}`)]);
      await a.checkpointer.idle();
    }
    expect((await request(a.url, 'GET', '/registry/1')).status).toBe(410);
    expect((await head(b)).version).toBe(0);
    cut = false;
    const r = await vi.waitFor(
      async () => {
        const answer = await request<{ error: { code: string; message: string } }>(b.url, 'GET', '/readyz');
        expect(answer.status).toBe(503);
        return answer;
      },
      { timeout: 10_000, interval: 20 },
    );
    expect(r.json.error.message).toBe(
      'this instance is at version 0 and the log has pruned version 1, behind its retention horizon: restart it to load the latest checkpoint',
    );
    expect(b.writer.blockers().filter((reason) => reason.startsWith('tamper:'))).toEqual([]);
    const p = proposal('behind', await head(a), [put('late')]);
    const w = await request<{ error: { message: string } }>(b.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: [approve(alice, hashOf(p))],
    });
    expect(w.status).toBe(503);
    expect(w.json.error.message).toMatch(/behind its retention horizon: restart it .*; another instance takes writes$/);
    // Restarted, it loads the latest checkpoint and follows from there.
    running.splice(running.indexOf(b), 1);
    await b.close();
    const again = await start(g, url, config);
    expect(await head(again)).toEqual(await head(a));
    expect(await ready(again)).toEqual({ read: true, write: true, reasons: [] });
  });

  it('answers 503 and writes nothing when its connection is dropped in the middle of a transaction', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('drop', [alice], 1);
    const a = await start(g, url);
    const sql = raw(url);
    const p = proposal('drop', await head(a), [put('x')]);
    // Hold the audit table so that the registry's transaction stops half-way (its proposal row
    // written, its audit rows waiting), then kill the connection it runs on.
    const blocker = await sql.reserve();
    cleanups.push(() => Promise.resolve(blocker.release()));
    await blocker`BEGIN`;
    await blocker`LOCK TABLE audit IN ACCESS EXCLUSIVE MODE`;
    const answer = submit(a, p, [approve(alice, hashOf(p))]);
    const [waiting] = await vi.waitFor(
      async () => {
        const rows = await sql<{ pid: number }[]>`
          SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND application_name = 'signed-registry'`;
        expect(rows.length).toBeGreaterThan(0);
        return rows;
      },
      { timeout: 10_000, interval: 10 },
    );
    await sql`SELECT pg_terminate_backend(${waiting!.pid})`;
    const r = await answer;
    await blocker`ROLLBACK`;
    expect(r.status, r.text).toBe(503);
    expect(r.headers.get('retry-after')).toBe('1');
    const [rows] = await sql<{ n: number }[]>`SELECT COUNT(*)::integer AS n FROM proposals`;
    expect(rows!.n).toBe(0);
    expect((await head(a)).version).toBe(0);
    // Sent again, it commits.
    const again = await submit(a, p, [approve(alice, hashOf(p))]);
    expect(again.json).toMatchObject({ status: 'committed', version: 1 });
  });
});

describe.skipIf(SKIP !== undefined)('a cluster while its database is away', () => {
  const pg = postgresForSuite();
  const running: TestRegistry[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.close()));
  });
  /** Waits until `reg` says it takes writes (true) or not (false); answers its /readyz. */
  const writes = (reg: TestRegistry, expected: boolean) =>
    vi.waitFor(
      async () => {
        const r = await request<{ read: boolean; write: boolean; reasons: string[] }>(reg.url, 'GET', '/readyz');
        expect(r.json.write).toBe(expected);
        return r.json;
      },
      { timeout: 20_000, interval: 20 },
    );

  it('serves reads from memory, answers writes 503 with Retry-After and says why in /readyz, then writes again', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('away', [alice], 1);
    const regs = [await startTestRegistry(g, { config: { store: url, followPollMs: 50 } })];
    regs.push(await startTestRegistry(g, { config: { store: url, followPollMs: 50 } }));
    running.push(...regs);
    const [a, b] = regs as [TestRegistry, TestRegistry];
    const p = proposal('away', (await request<HeadJson>(a.url, 'GET', '/registry/head')).json, [put('svc')]);
    expect(
      (await request<Answer>(a.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(alice, hashOf(p))] })).json.status,
    ).toBe('committed');
    await vi.waitFor(async () => expect((await request<HeadJson>(b.url, 'GET', '/registry/head')).json.version).toBe(1), {
      timeout: 10_000,
      interval: 10,
    });
    await pg().halt();
    for (const reg of regs) {
      // The follower's next poll finds the database gone.
      const r = await writes(reg, false);
      expect(r.read).toBe(true);
      expect(r.reasons.join('\n')).toMatch(/^store: /m);
      expect((await request<HeadJson>(reg.url, 'GET', '/registry/head')).json.version).toBe(1);
      expect((await request(reg.url, 'GET', '/registry/descriptors/svc')).status).toBe(200);
      // What only the log holds answers 503 with the reason, not an internal error.
      const audit = await request<{ error: { code: string; message: string } }>(reg.url, 'GET', '/registry/audit');
      expect(audit.status).toBe(503);
      expect(audit.json.error.message).toMatch(/^the log could not be read: /);
      expect(Number(audit.headers.get('retry-after'))).toBeGreaterThan(0);
      const next = proposal('away', (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json, [put('more')]);
      const w = await request(reg.url, 'POST', '/registry/proposals', { payload: next, approvals: [approve(alice, hashOf(next))] });
      expect(w.status, w.text).toBe(503);
      expect(Number(w.headers.get('retry-after'))).toBeGreaterThan(0);
    }
    await pg().resume();
    // Back: the next catch-up reads the log again, and the reason goes, before any write.
    for (const reg of regs) await writes(reg, true);
    const next = proposal('away', (await request<HeadJson>(b.url, 'GET', '/registry/head')).json, [put('back')]);
    const w = await vi.waitFor(
      async () => {
        const r = await request<Answer>(b.url, 'POST', '/registry/proposals', { payload: next, approvals: [approve(alice, hashOf(next))] });
        expect(r.status, r.text).toBe(201);
        return r;
      },
      { timeout: 20_000, interval: 100 },
    );
    expect(w.json).toMatchObject({ status: 'committed', version: 2 });
    await vi.waitFor(async () => expect((await request<HeadJson>(a.url, 'GET', '/registry/head')).json.version).toBe(2), {
      timeout: 10_000,
      interval: 10,
    });
  }, 60_000);

  it('keeps serving reads while the database is silent (a lost host), gives a write up after storeTimeoutMs, and converges once it answers', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('silent', [alice], 1);
    const config = { store: url, followPollMs: 50, storeTimeoutMs: 1000 };
    const regs: TestRegistry[] = [];
    for (let i = 0; i < 2; i++) {
      const reg = await startTestRegistry(g, { config });
      running.push(reg);
      await reg.verified;
      regs.push(reg);
    }
    const [a, b] = regs as [TestRegistry, TestRegistry];
    const headOf = async (reg: TestRegistry) => (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    const first = proposal('silent', await headOf(a), [put('svc')]);
    const committed = await request<Answer>(a.url, 'POST', '/registry/proposals', {
      payload: first,
      approvals: [approve(alice, hashOf(first))],
    });
    expect(committed.json.status).toBe('committed');
    await vi.waitFor(async () => expect((await headOf(b)).version).toBe(1), { timeout: 10_000, interval: 10 });
    const before = await headOf(a);

    // Connections stay open and queries go out, but nothing answers: not a refusal, a silence.
    const p = proposal('silent', await headOf(a), [put('during')]);
    const approvals = [approve(alice, hashOf(p))];
    try {
      pg().stall();
      const w = await request<{ error: { code: string; message: string } }>(a.url, 'POST', '/registry/proposals', {
        payload: p,
        approvals,
      });
      expect(w.status, w.text).toBe(503);
      expect(Number(w.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(w.json.error.message).toMatch(/^the log could not be (read|written); /);
      for (const reg of regs) {
        // The follower's catch-up is given up on too: each instance says why it takes no writes.
        const r = await writes(reg, false);
        expect(r.read).toBe(true);
        expect(r.reasons.join('\n')).toMatch(/^store: the store did not answer within 1000 ms$/m);
        // Reads come from memory, silence or not.
        expect(await headOf(reg)).toMatchObject({ version: 1, hash: before.hash });
        const d = await request<{ version: number; descriptor: { id: string } }>(reg.url, 'GET', '/registry/descriptors/svc');
        expect(d.status).toBe(200);
        expect(d.json).toMatchObject({ version: 1, descriptor: { id: 'svc' } });
        // What only the log holds is given up on too, after storeTimeoutMs: a 503 with the reason.
        const audit = await request<{ error: { code: string; message: string } }>(reg.url, 'GET', '/registry/audit');
        expect(audit.status, audit.text).toBe(503);
        expect(audit.json.error.message).toBe('the log could not be read: the store did not answer within 1000 ms');
        expect(Number(audit.headers.get('retry-after'))).toBeGreaterThan(0);
      }
    } finally {
      pg().unstall();
    }
    for (const reg of regs) await writes(reg, true);
    // Whether the write given up on reached the log is unknown to its sender (the 503 says so);
    // sending it again, to any instance, is safe: it commits once.
    const again = await request<Answer>(b.url, 'POST', '/registry/proposals', { payload: p, approvals });
    expect(again.json).toMatchObject({ status: 'committed', version: 2 });
    await vi.waitFor(async () => expect((await headOf(a)).version).toBe(2), { timeout: 10_000, interval: 10 });
    expect((await headOf(a)).hash).toBe((await headOf(b)).hash);
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql<{ version: number }[]>`SELECT version::integer AS version FROM commits ORDER BY version`;
      expect(rows.map((r) => r.version)).toEqual([0, 1, 2]);
    } finally {
      await sql.end();
    }
    checkAuditChain(await readAudit(a.url));
  }, 60_000);

  it('starts from its own cache when the database refuses connections: reads at once, writes once it is back and verified', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('cached', [alice], 1);
    const dir = tempDir();
    const config = { store: url, followPollMs: 50 };
    const commit = async (reg: TestRegistry, id: string) => {
      const p = proposal('cached', (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json, [put(id)]);
      const r = await request<Answer>(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(alice, hashOf(p))] });
      expect(r.json.status, r.text).toBe('committed');
      return r.json.version!;
    };
    const first = await startTestRegistry(g, { dir, config });
    await first.verified;
    await commit(first, 'svc-1');
    await commit(first, 'svc-2');
    const cachedHead = (await request<HeadJson>(first.url, 'GET', '/registry/head')).json;
    // A graceful stop leaves the cache at the head.
    await first.close();
    const other = await startTestRegistry(g, { config });
    running.push(other);
    await other.verified;
    expect(await commit(other, 'svc-3')).toBe(3);
    await pg().halt();

    const again = await startTestRegistry(g, { dir, config });
    running.push(again);
    expect((await request<HeadJson>(again.url, 'GET', '/registry/head')).json).toEqual(cachedHead);
    expect((await request(again.url, 'GET', '/registry/descriptors/svc-2')).status).toBe(200);
    const ready = await request<{ read: boolean; write: boolean; reasons: string[] }>(again.url, 'GET', '/readyz');
    expect(ready.json).toMatchObject({ read: true, write: false });
    expect(ready.json.reasons.join('\n')).toMatch(/unreachable: serving reads from this instance's cache of version 2/);
    // What the cache does not hold, and writes, answer 503 with Retry-After.
    const older = await request(again.url, 'GET', '/registry/1');
    expect(older.status).toBe(503);
    expect(Number(older.headers.get('retry-after'))).toBeGreaterThan(0);
    const next = proposal('cached', cachedHead, [put('svc-x')]);
    expect(
      (await request(again.url, 'POST', '/registry/proposals', { payload: next, approvals: [approve(alice, hashOf(next))] })).status,
    ).toBe(503);

    await pg().resume();
    // Connected, it follows the log from its cached head (version 3, committed meanwhile), verifies
    // the log, and takes writes.
    await again.verified;
    await vi.waitFor(async () => expect((await request<HeadJson>(again.url, 'GET', '/registry/head')).json.version).toBe(3), {
      timeout: 20_000,
      interval: 20,
    });
    await writes(again, true);
    expect((await request(again.url, 'GET', '/registry/1')).status).toBe(200);
    expect(await commit(again, 'svc-4')).toBe(4);
  }, 60_000);

  it('retries a database that refuses connections at start, with back-off, and starts once it is up', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('late', [alice], 1);
    await pg().halt();
    const refused = await startTestRegistry(g, { config: { store: url, storeConnectRetryMs: 0 } }).then(
      () => 'started',
      (e: unknown) => String(e),
    );
    expect(refused).toMatch(/cannot open the PostgreSQL log at postgres:\/\/postgres@127\.0\.0\.1:\d+\/registry_\d+: .*ECONNREFUSED/);
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
    const starting = startTestRegistry(g, { config: { store: url, storeConnectRetryMs: 60_000 }, logger });
    await vi.waitFor(() => expect(lines.filter((l) => l.includes('trying again')).length).toBeGreaterThanOrEqual(2), {
      timeout: 10_000,
      interval: 20,
    });
    await pg().resume();
    const reg = await starting;
    running.push(reg);
    expect((await request<HeadJson>(reg.url, 'GET', '/registry/head')).json.version).toBe(0);
    const first = JSON.parse(lines.find((l) => l.includes('trying again'))!) as { retry_in_ms: number };
    expect(first.retry_in_ms).toBe(250);
  }, 60_000);
});
