// The log's own defences: the database refuses to rewrite history, and start-up refuses a
// log whose history was edited behind the service's back.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import type { CommitRecord, ProposalPayload, PutOp } from '../../src/core/schemas.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

const running: TestRegistry[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

/** A registry file with a genesis, two commits, a stale proposal and audit events. */
async function populated() {
  const keys = signers('alice', 'bob');
  const g = genesisRecord('store', keys, 2);
  const reg = await startTestRegistry(g);
  for (const id of ['a', 'b']) {
    const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    const p = proposal('store', head, [put(id, { n: id })]);
    const loser = proposal('store', head, [put(`${id}-loser`)]);
    await request(reg.url, 'POST', '/registry/proposals', { payload: loser, approvals: [approve(keys[0]!, hashOf(loser))] });
    await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: keys.map((k) => approve(k, hashOf(p))) });
  }
  const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
  await reg.close();
  return { g, dir: reg.dir, db: reg.db, head };
}

/** Version 1's first op, a put (populated() commits `put('a', { n: 'a' })` there). */
const firstPut = (rec: CommitRecord) => (rec.payload as ProposalPayload).ops[0] as PutOp;

describe('the SQLite log', () => {
  it('runs in WAL mode with synchronous=FULL by default', async () => {
    const { db } = await populated();
    const store = new SqliteStore({ path: db });
    expect(store.durability()).toEqual({ journalMode: 'wal', synchronous: 2 }); // 2 = FULL
    await store.close();
    const normal = new SqliteStore({ path: db, synchronous: 'NORMAL' });
    expect(normal.durability().synchronous).toBe(1);
    await normal.close();
    const raw = new Database(db);
    expect(raw.pragma('user_version', { simple: true })).toBe(4);
    raw.close();
  });

  it('refuses UPDATE and DELETE of history, and gaps, at the database level', async () => {
    const { db } = await populated();
    const raw = new Database(db);
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
      "UPDATE proposals SET status = 'pending' WHERE status = 'stale'",
      "UPDATE proposals SET status = 'committed' WHERE status = 'stale'",
      'DELETE FROM proposals',
    ];
    for (const sql of refused) expect(() => raw.exec(sql), sql).toThrow();
    raw.close();
  });

  it('refuses to start on a log whose history was edited behind its back', async () => {
    const { g, dir, db } = await populated();
    const raw = new Database(db);
    raw.exec('DROP TRIGGER commits_no_update');
    const rec = JSON.parse(
      (raw.prepare('SELECT record FROM commits WHERE version = 1').get() as { record: string }).record,
    ) as CommitRecord;
    firstPut(rec).descriptor.labels.n = 'tampered';
    raw.prepare('UPDATE commits SET record = ? WHERE version = 1').run(JSON.stringify(rec));
    raw.close();
    await expect(startTestRegistry(g, { dir })).rejects.toThrow(/version 1/);
  });

  it('refuses to start when a re-hashed edit breaks the chain or the state root', async () => {
    const { g, dir, db } = await populated();
    const raw = new Database(db);
    raw.exec('DROP TRIGGER commits_no_update');
    // A forger who also fixes the stored hash and payload hash still breaks the next link.
    const rec = JSON.parse(
      (raw.prepare('SELECT record FROM commits WHERE version = 1').get() as { record: string }).record,
    ) as CommitRecord;
    firstPut(rec).descriptor.labels.n = 'tampered';
    rec.payload_hash = hashOf(rec.payload);
    raw
      .prepare('UPDATE commits SET record = ?, hash = ?, payload_hash = ? WHERE version = 1')
      .run(JSON.stringify(rec), hashOf(rec), rec.payload_hash);
    raw.close();
    await expect(startTestRegistry(g, { dir })).rejects.toThrow(/version 2|state root/);
  });

  it('refuses to start on a stored record that is not a commit record, naming its version', async () => {
    const { g, dir, db } = await populated();
    const raw = new Database(db);
    raw.exec('DROP TRIGGER commits_no_update');
    raw.prepare('UPDATE commits SET record = ?, hash = ? WHERE version = 2').run('{"x":1}', hashOf({ x: 1 }));
    raw.close();
    await expect(startTestRegistry(g, { dir })).rejects.toThrow(/version 2/);
  });

  it('lets one process own a log: a second registry on the same file is refused at start', async () => {
    const { g, dir } = await populated();
    const reg = await startTestRegistry(g, { dir });
    running.push(reg);
    await expect(startTestRegistry(g, { dir })).rejects.toThrow(/in use by another process/);
    expect((await request(reg.url, 'GET', '/readyz')).json).toEqual({ read: true, write: true, reasons: [] });
  });

  it('reopens an untouched log with the same head', async () => {
    const { g, dir, head } = await populated();
    const reg = await startTestRegistry(g, { dir });
    running.push(reg);
    expect((await request(reg.url, 'GET', '/registry/head')).json).toEqual(head);
  });
});

describe('the audit log at start', () => {
  it('refuses a log whose last audit event was edited', async () => {
    const { g, dir, db } = await populated();
    const raw = new Database(db);
    raw.exec('DROP TRIGGER audit_no_update');
    const changed = raw
      .prepare(`UPDATE audit SET event = replace(event, '"at":"2', '"at":"1') WHERE seq = (SELECT MAX(seq) FROM audit)`)
      .run().changes;
    expect(changed).toBe(1);
    raw.close();
    await expect(startTestRegistry(g, { dir })).rejects.toThrow(/audit event \d+ does not hash/);
  });
});
