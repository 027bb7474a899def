// Checkpoints and retention (issue 15 items 1–3, SPEC §10) on a real server with a real SQLite
// file: a checkpoint every K commits, served and used by the next start; a checkpoint edited
// while the registry was stopped is found and not used; retention prunes what is behind the
// horizon (410 Gone) but never the genesis nor a signer-set change; settled proposals' payloads
// are pruned after their time.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import { canonicalJson, hashOf } from '../../src/core/encoding.js';
import type { CommitRecord } from '../../src/core/schemas.js';
import { planOps, RegistryState } from '../../src/core/state.js';
import pino from 'pino';
import { createLogger } from '../../src/obs/logger.js';
import { approve, genesisRecord, proposal, put, setSigners, signerSet, signers, type TestSigner } from '../helpers/fixtures.js';
import { parseExposition, sampleValue } from '../helpers/prometheus.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, tempDir, type TestRegistry } from '../helpers/server.js';
import { subscribe } from '../helpers/sse.js';

const running: TestRegistry[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

const keys = signers('alice', 'bob', 'carol');
const [alice, bob, carol] = keys as [TestSigner, TestSigner, TestSigner];

interface Checkpoint {
  version: number;
  hash: string;
  state_root: string;
  descriptor_count: number;
  created_at: string;
}
interface Ready {
  write: boolean;
  reasons: string[];
}

async function start(g: CommitRecord, config: Partial<Config>, dir?: string, logger = createLogger('silent')): Promise<TestRegistry> {
  const reg = await startTestRegistry(g, { dir, config, logger });
  running.push(reg);
  await reg.verified;
  return reg;
}

const head = async (reg: TestRegistry) => (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;

/** Commits `ops` with alice's and bob's approvals (2 of 3); returns the proposal id. */
async function commit(reg: TestRegistry, ops: Parameters<typeof proposal>[2], by: TestSigner[] = [alice, bob]): Promise<string> {
  const p = proposal('cp', await head(reg), ops);
  const r = await request<{ status: string }>(reg.url, 'POST', '/registry/proposals', {
    payload: p,
    approvals: by.map((k) => approve(k, hashOf(p))),
  });
  expect(r.json.status).toBe('committed');
  return hashOf(p);
}

async function stop(reg: TestRegistry): Promise<void> {
  running.splice(running.indexOf(reg), 1);
  await reg.close();
}

describe('checkpoints', () => {
  it('are made every checkpointEvery commits, served, and match the record and the state at their version', async () => {
    const reg = await start(genesisRecord('cp', keys, 2), { checkpointEvery: 3 });
    const none = await request(reg.url, 'GET', '/registry/checkpoints/latest');
    expect(none.status).toBe(404);
    for (let i = 0; i < 7; i++) {
      await commit(reg, [put(`svc-${i}`, { n: String(i) }), put(`svc-${i}-b`)]);
      await reg.checkpointer.idle();
    }
    const latest = await request<Checkpoint>(reg.url, 'GET', '/registry/checkpoints/latest');
    expect(latest.status).toBe(200);
    expect(latest.headers.get('cache-control')).toBe('no-store');
    const record = (await request<CommitRecord>(reg.url, 'GET', '/registry/6')).json;
    expect(latest.json).toEqual({
      version: 6,
      hash: hashOf(record),
      state_root: record.state_root,
      descriptor_count: 12,
      created_at: expect.any(String) as string,
    });
    const list = await request<{ items: Checkpoint[] }>(reg.url, 'GET', '/registry/checkpoints');
    expect(list.json.items.map((c) => c.version)).toEqual([3, 6]);
    const metrics = parseExposition((await request(reg.url, 'GET', '/metrics')).text);
    expect(sampleValue(metrics, 'registry_checkpoint_version')).toBe(6);
    // Version 7 is not in a checkpoint yet: the age counts.
    expect(sampleValue(metrics, 'registry_checkpoint_age_seconds')).toBeGreaterThanOrEqual(0);
    const rows = new Database(reg.db, { readonly: true });
    const count = rows.prepare('SELECT COUNT(*) AS n FROM checkpoint_entries WHERE version = 3').get() as { n: number };
    rows.close();
    expect(count.n).toBe(6);
  });

  it('are made after checkpointIntervalMs when a commit came since the last, and never twice for one head', async () => {
    const reg = await start(genesisRecord('cp', keys, 2), { checkpointEvery: 0, checkpointIntervalMs: 1 });
    await reg.checkpointer.tick();
    await reg.checkpointer.idle();
    expect((await request(reg.url, 'GET', '/registry/checkpoints/latest')).status).toBe(404);
    await commit(reg, [put('a')]);
    await reg.checkpointer.tick();
    await reg.checkpointer.idle();
    await reg.checkpointer.tick();
    await reg.checkpointer.idle();
    const list = await request<{ items: Checkpoint[] }>(reg.url, 'GET', '/registry/checkpoints');
    expect(list.json.items.map((c) => c.version)).toEqual([1]);
  });

  it('are where the next start loads the state from: it replays only the commits after the latest', async () => {
    const g = genesisRecord('cp', keys, 2);
    const dir = tempDir();
    const reg = await start(g, { checkpointEvery: 4 }, dir);
    for (let i = 0; i < 6; i++) await commit(reg, [put(`svc-${i}`, { tier: i % 2 ? 'gold' : 'silver' })]);
    await reg.checkpointer.idle();
    const before = await head(reg);
    const listing = (await request(reg.url, 'GET', '/registry/head/descriptors?limit=1000')).text;
    await stop(reg);

    const lines: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const again = await start(g, { checkpointEvery: 4 }, dir, logger);
    const loaded = lines.find((l) => l.msg === 'loaded the latest checkpoint and replayed the commits after it');
    expect(loaded).toMatchObject({ version: 6, checkpoint: 4, replayed: 2, descriptors: 6 });
    expect(await head(again)).toEqual(before);
    expect((await request(again.url, 'GET', '/registry/head/descriptors?limit=1000')).text).toBe(listing);
    // A past version before the checkpoint is still rebuilt from the log, one after it from the checkpoint.
    const at2 = await request<{ items: { id: string }[] }>(again.url, 'GET', '/registry/2/descriptors');
    expect(at2.json.items.map((i) => i.id)).toEqual(['svc-0', 'svc-1']);
    const at5 = await request<{ items: { id: string }[] }>(again.url, 'GET', '/registry/5/descriptors');
    expect(at5.json.items).toHaveLength(5);
    expect((await request<Ready>(again.url, 'GET', '/readyz')).json).toMatchObject({ write: true });
    await commit(again, [put('after-restart')]);
  });

  it('edited while the registry was stopped is found: the start replays from the genesis and refuses writes', async () => {
    const g = genesisRecord('cp', keys, 2);
    const dir = tempDir();
    const reg = await start(g, { checkpointEvery: 2 }, dir);
    for (let i = 0; i < 3; i++) await commit(reg, [put(`svc-${i}`, { n: String(i) })]);
    await reg.checkpointer.idle();
    const listing = (await request(reg.url, 'GET', '/registry/head/descriptors?limit=1000')).text;
    await stop(reg);
    const db = new Database(reg.db);
    db.exec(`DROP TRIGGER checkpoint_entries_no_update;
      UPDATE checkpoint_entries SET descriptor = replace(descriptor, '"n":"1"', '"n":"forged"') WHERE version = 2 AND id = 'svc-1';`);
    db.close();

    const again = await start(g, { checkpointEvery: 2 }, dir);
    // Reads serve the log's own state, rebuilt from the genesis, not the edited checkpoint.
    expect((await request(again.url, 'GET', '/registry/head/descriptors?limit=1000')).text).toBe(listing);
    const ready = (await request<Ready>(again.url, 'GET', '/readyz')).json;
    expect(ready.write).toBe(false);
    expect(ready.reasons.join('\n')).toMatch(/tamper: the checkpoint at version 2: its state hashes to b3:\w+, not to the state_root/);
    const p = proposal('cp', await head(again), [put('x')]);
    const refused = await request(again.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(alice, hashOf(p))] });
    expect(refused.status).toBe(503);
  });

  it('at the head is not what a start trusts: a forged one there, its record rehashed, stops the start at that version', async () => {
    const g = genesisRecord('cp', keys, 2);
    const dir = tempDir();
    const reg = await start(g, { checkpointEvery: 2 }, dir);
    for (let i = 0; i < 4; i++) await commit(reg, [put(`svc-${i}`, { n: String(i) })]);
    await reg.checkpointer.idle();
    await stop(reg);
    // The attacker forges the state at the head (version 4, a checkpoint), the head record's
    // state_root to match, and every hash column: nothing signed covers the head's state root.
    const forged = new RegistryState(signerSet(keys, 2));
    forged.apply(
      planOps(
        forged,
        [0, 1, 2, 3].map((i) => put(`svc-${i}`, { n: i === 1 ? 'forged' : String(i) })),
        4,
      ),
    );
    const db = new Database(reg.db);
    const record = JSON.parse(
      (db.prepare('SELECT record FROM commits WHERE version = 4').get() as { record: string }).record,
    ) as CommitRecord;
    const edited = { ...record, state_root: forged.root() };
    db.exec('DROP TRIGGER commits_no_update; DROP TRIGGER checkpoint_entries_no_update; DROP TRIGGER checkpoints_no_update;');
    db.prepare('UPDATE commits SET record = ?, hash = ? WHERE version = 4').run(canonicalJson(edited), hashOf(edited));
    db.prepare('UPDATE checkpoints SET hash = ?, state_root = ? WHERE version = 4').run(hashOf(edited), forged.root());
    db.prepare('UPDATE checkpoint_entries SET descriptor = replace(descriptor, \'"n":"1"\', \'"n":"forged"\') WHERE version = 4').run();
    db.close();
    await expect(startTestRegistry(g, { dir, config: { checkpointEvery: 2 } })).rejects.toThrow(
      /the replayed state root b3:\w+ is not the head's state_root b3:\w+ \(version 4\)/,
    );
  });

  it("whose entries' changed_in were edited is found: out of range at start, off the log by the verification", async () => {
    const g = genesisRecord('cp', keys, 2);
    const dir = tempDir();
    const reg = await start(g, { checkpointEvery: 2 }, dir);
    for (let i = 0; i < 3; i++) await commit(reg, [put(`svc-${i}`)]);
    await reg.checkpointer.idle();
    await stop(reg);
    const edit = (changedIn: number) => {
      const db = new Database(reg.db);
      db.exec('DROP TRIGGER IF EXISTS checkpoint_entries_no_update');
      db.prepare("UPDATE checkpoint_entries SET changed_in = ? WHERE version = 2 AND id = 'svc-1'").run(changedIn);
      db.close();
    };
    edit(1); // svc-1 was put at version 2: in range, but not what the log says
    const again = await start(g, { checkpointEvery: 2 }, dir);
    const ready = (await request<Ready>(again.url, 'GET', '/readyz')).json;
    expect(ready.reasons.join('\n')).toMatch(
      /tamper: the checkpoint at version 2: its entry svc-1 says it changed in version 1, the log says 2/,
    );
    await stop(again);
    edit(999);
    const third = await start(g, { checkpointEvery: 2 }, dir);
    const reasons = (await request<Ready>(third.url, 'GET', '/readyz')).json.reasons.join('\n');
    expect(reasons).toMatch(/tamper: the checkpoint at version 2: its entry svc-1 says it changed in version 999/);
    const item = await request<{ changed_in: number }>(third.url, 'GET', '/registry/descriptors/svc-1');
    expect(item.json.changed_in).toBe(2);
  });

  it('left unfinished by a crash (entries without their row) are deleted at the next start', async () => {
    const g = genesisRecord('cp', keys, 2);
    const dir = tempDir();
    const reg = await start(g, { checkpointEvery: 0 }, dir);
    await commit(reg, [put('a'), put('b')]);
    await stop(reg);
    const db = new Database(reg.db);
    db.prepare("INSERT INTO checkpoint_entries (version, id, changed_in, descriptor) VALUES (1, 'a', 1, '{}')").run();
    db.close();
    const again = await start(g, { checkpointEvery: 1 }, dir);
    await again.checkpointer.idle();
    const latest = await request<Checkpoint>(again.url, 'GET', '/registry/checkpoints/latest');
    // The start deleted the orphan, then made the checkpoint its log was owed, whole.
    expect(latest.json).toMatchObject({ version: 1, descriptor_count: 2 });
  });
});

describe('retention', () => {
  it('prunes records behind the horizon (410 Gone), never the genesis nor a signer-set change, and starts and verifies after', async () => {
    const g = genesisRecord('cp', keys, 2);
    const dir = tempDir();
    const config = { checkpointEvery: 2, retainCommits: 2 };
    const reg = await start(g, config, dir);
    const first = await commit(reg, [put('a')]);
    // Version 2 rotates the signer set: raise the threshold to 3 of 3.
    await commit(reg, [setSigners(signerSet(keys, 3))], [alice, bob, carol]);
    for (let i = 3; i <= 8; i++) await commit(reg, [put(`svc-${i}`)], [alice, bob, carol]);
    await reg.checkpointer.idle();
    const checkpoints = (await request<{ items: Checkpoint[] }>(reg.url, 'GET', '/registry/checkpoints')).json.items;
    // The horizon is the newest checkpoint at least 2 commits behind the head (8): version 6.
    expect(checkpoints.map((c) => c.version)).toEqual([6, 8]);
    const gone = await request<{ error: { code: string; message: string; hint: string } }>(reg.url, 'GET', '/registry/1');
    expect(gone.status).toBe(410);
    expect(gone.json.error.code).toBe('Gone');
    expect(gone.json.error.hint).toContain('GET /registry/6/descriptors');
    // Version 3 stays whole: its signed base_hash is what binds the signer-set change before it.
    for (const v of [4, 5]) expect((await request(reg.url, 'GET', `/registry/${v}`)).status).toBe(410);
    for (const v of [0, 2, 3, 6, 7, 8]) expect((await request(reg.url, 'GET', `/registry/${v}`)).status).toBe(200);
    const diff = await request<{ error: { code: string } }>(reg.url, 'GET', '/registry/diff?from=0&to=8');
    expect([diff.status, diff.json.error.code]).toEqual([410, 'Gone']);
    expect((await request(reg.url, 'GET', '/registry/4/descriptors')).status).toBe(410);
    expect((await request(reg.url, 'GET', '/registry/6/descriptors')).status).toBe(200);
    expect((await request(reg.url, 'GET', `/registry/proposals/${first}`)).status).toBe(410);
    const raw = new Database(reg.db);
    expect(() => raw.prepare("UPDATE commits SET record = '' WHERE version = 3").run()).toThrow(
      /only a payload older than the oldest checkpoint/,
    );
    raw.close();
    const lastRecords = await Promise.all([7, 8].map(async (v) => (await request(reg.url, 'GET', `/registry/${v}`)).text));
    await stop(reg);

    const again = await start(g, config, dir);
    expect((await request<Ready>(again.url, 'GET', '/readyz')).json).toEqual({ read: true, write: true, reasons: [] });
    expect(await Promise.all([7, 8].map(async (v) => (await request(again.url, 'GET', `/registry/${v}`)).text))).toEqual(lastRecords);
    // A stream resuming from before the horizon (once the commits are no longer in memory) is
    // told to reconcile from the head.
    const stream = await subscribe(`${again.url}/registry/stream?from=0`);
    await stream.waitFor((s) => s.frames.length > 0, 'a first frame');
    stream.close();
    expect(stream.frames[0]).toMatchObject({ event: 'reset', id: '8' });
    await commit(again, [put('after')], [alice, bob, carol]);
  });

  it('keeps every checkpoint until one is far enough behind the head to be the horizon, then prunes behind it', async () => {
    const reg = await start(genesisRecord('cp', keys, 2), { checkpointEvery: 2, retainCommits: 7 });
    for (let i = 1; i <= 12; i++) {
      await commit(reg, [put(`svc-${i}`)]);
      await reg.checkpointer.idle();
    }
    // The horizon is the newest checkpoint at least 7 behind 12: version 4. The ones after it
    // were kept while they waited to become it.
    const list = await request<{ items: Checkpoint[] }>(reg.url, 'GET', '/registry/checkpoints');
    expect(list.json.items.map((c) => c.version)).toEqual([4, 6, 8, 10, 12]);
    for (const v of [1, 2, 3]) expect((await request(reg.url, 'GET', `/registry/${v}`)).status).toBe(410);
    expect((await request(reg.url, 'GET', '/registry/4')).status).toBe(200);
  });

  it('a pruned record the triggers would refuse (the genesis, a signer-set change, past the horizon) is refused by the database', async () => {
    const reg = await start(genesisRecord('cp', keys, 2), { checkpointEvery: 2 });
    await commit(reg, [setSigners(signerSet(keys, 2))]);
    await commit(reg, [put('a')], [alice, bob]);
    await commit(reg, [put('b')], [alice, bob]);
    await reg.checkpointer.idle();
    const db = new Database(reg.db);
    try {
      const prune = (v: number) => () => db.prepare("UPDATE commits SET record = '' WHERE version = ?").run(v);
      expect(prune(0)).toThrow(/only a payload older than the oldest checkpoint/);
      expect(prune(1)).toThrow(/only a payload older than the oldest checkpoint/);
      expect(prune(3)).toThrow(/only a payload older than the oldest checkpoint/);
      expect(() => db.prepare('DELETE FROM checkpoints WHERE version = 2').run()).toThrow(/the newest checkpoint is never dropped/);
    } finally {
      db.close();
    }
  });
});

describe('settled proposals', () => {
  it('lose their payloads settledPayloadTtlMs after they settle; their audit events stay', async () => {
    const reg = await start(genesisRecord('cp', keys, 2), { settledPayloadTtlMs: 0 });
    const h = await head(reg);
    const loser = proposal('cp', h, [put('loser')]);
    await request(reg.url, 'POST', '/registry/proposals', { payload: loser, approvals: [approve(alice, hashOf(loser))] });
    await commit(reg, [put('winner')]);
    const stale = await request<{ status: string }>(reg.url, 'GET', `/registry/proposals/${hashOf(loser)}`);
    expect(stale.json.status).toBe('stale');
    expect(reg.writer.settledUnprunedCount).toBe(1);
    await reg.checkpointer.tick();
    const pruned = await request<{ error: { code: string; message: string } }>(reg.url, 'GET', `/registry/proposals/${hashOf(loser)}`);
    expect(pruned.status).toBe(410);
    expect(pruned.json.error.message).toMatch(/stale and its payload was pruned/);
    expect(reg.writer.settledUnprunedCount).toBe(0);
    // Listed still, with its status; an approval of it is still answered 409 and audited.
    const listed = await request<{ items: { proposal_id: string; status: string }[] }>(reg.url, 'GET', '/registry/proposals?status=stale');
    expect(listed.json.items.map((i) => i.proposal_id)).toEqual([hashOf(loser)]);
    const late = await request(reg.url, 'POST', `/registry/proposals/${hashOf(loser)}/approvals`, approve(bob, hashOf(loser)));
    expect(late.status).toBe(409);
    const audit = await request<{ events: { kind: string; proposal_id?: string }[] }>(reg.url, 'GET', '/registry/audit?limit=1000');
    expect(audit.json.events.filter((e) => e.proposal_id === hashOf(loser)).map((e) => e.kind)).toEqual([
      'proposal_received',
      'approval_accepted',
      'proposal_stale',
      'approval_refused',
    ]);
  });
});
