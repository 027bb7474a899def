// Tamper evidence (issue 15 item 5): a database edited while the registry was stopped, as an
// attacker with write access to the file would edit it, is found at the next start. The
// registry then serves reads, refuses writes (503) and names the bad version or event in
// /readyz.
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { canonicalJson, hashOf } from '../../src/core/encoding.js';
import type { CommitRecord, GenesisPayload, ProposalPayload, PutOp } from '../../src/core/schemas.js';
import { RegistryState, planOps } from '../../src/core/state.js';
import { recordBytesProblem } from '../../src/pipeline/tamper-check.js';
import type { StoredCommit } from '../../src/store/store.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

const running: TestRegistry[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

interface Ready {
  read: boolean;
  write: boolean;
  reasons: string[];
}

const keys = signers('alice', 'bob', 'carol');
const [alice, bob] = keys as [(typeof keys)[0], (typeof keys)[0]];

/** A stopped registry's file: a genesis (2 of 3), two commits, two stale proposals, and one
 * pending proposal (`put('c')`) with alice's approval alone. */
async function populated() {
  const g = genesisRecord('tamper', keys, 2);
  const reg = await startTestRegistry(g);
  for (const id of ['a', 'b']) {
    const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    const p = proposal('tamper', head, [put(id, { n: id })]);
    const loser = proposal('tamper', head, [put(`${id}-loser`)]);
    await request(reg.url, 'POST', '/registry/proposals', { payload: loser, approvals: [approve(alice, hashOf(loser))] });
    await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [alice, bob].map((k) => approve(k, hashOf(p))) });
  }
  const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
  expect(head.version).toBe(2);
  const pending = proposal('tamper', head, [put('c', { n: 'c' })]);
  const created = await request(reg.url, 'POST', '/registry/proposals', { payload: pending, approvals: [approve(alice, hashOf(pending))] });
  expect(created.status).toBe(201);
  await reg.close();
  return { g, dir: reg.dir, db: reg.db, head, pendingId: hashOf(pending) };
}

async function restart(g: CommitRecord, dir: string, options: { foregroundVerifyLimit?: number } = {}): Promise<TestRegistry> {
  const reg = await startTestRegistry(g, { dir, ...options });
  running.push(reg);
  return reg;
}

const ready = async (reg: TestRegistry): Promise<Ready> => (await request<Ready>(reg.url, 'GET', '/readyz')).json;

/** The registry serves reads, refuses writes with 503, and /readyz names the fault. */
async function expectRefused(reg: TestRegistry, fault: RegExp, pendingId: string, readable = 1): Promise<void> {
  const r = await ready(reg);
  expect(r.read).toBe(true);
  expect(r.write).toBe(false);
  expect(
    r.reasons.some((x) => x.startsWith('tamper: ') && fault.test(x)),
    r.reasons.join('\n'),
  ).toBe(true);
  expect((await request(reg.url, 'GET', '/registry/head')).status).toBe(200);
  expect((await request(reg.url, 'GET', `/registry/${readable}`)).status).toBe(200);
  const refused = await request<{ error: { code: string } }>(
    reg.url,
    'POST',
    `/registry/proposals/${pendingId}/approvals`,
    approve(bob, pendingId),
  );
  expect(refused.status).toBe(503);
  expect(refused.json.error.code).toBe('Unavailable');
}

const editRecord = (raw: Database.Database, version: number, change: (rec: CommitRecord) => void): void => {
  raw.exec('DROP TRIGGER IF EXISTS commits_no_update');
  const rec = JSON.parse(
    (raw.prepare('SELECT record FROM commits WHERE version = ?').get(version) as { record: string }).record,
  ) as CommitRecord;
  change(rec);
  raw.prepare('UPDATE commits SET record = ?, hash = ? WHERE version = ?').run(canonicalJson(rec), hashOf(rec), version);
};

describe('tamper evidence at start', () => {
  it('trusts an untouched log: writes are ready, and the pending proposal commits', async () => {
    const { g, dir, pendingId } = await populated();
    const reg = await restart(g, dir);
    expect(await ready(reg)).toEqual({ read: true, write: true, reasons: [] });
    const res = await request<{ status: string }>(reg.url, 'POST', `/registry/proposals/${pendingId}/approvals`, approve(bob, pendingId));
    expect(res.json.status).toBe('committed');
  });

  it('finds the last commit row deleted: the proposals and audit tables remember it', async () => {
    const { g, dir, db, pendingId } = await populated();
    const raw = new Database(db);
    raw.exec('DROP TRIGGER commits_no_delete');
    raw.exec('DELETE FROM commits WHERE version = 2');
    raw.close();
    const reg = await restart(g, dir);
    expect((await request<HeadJson>(reg.url, 'GET', '/registry/head')).json.version).toBe(1);
    await expectRefused(reg, /^tamper: version 2: .*past the head 1: the log was truncated/, pendingId);
    const reasons = (await ready(reg)).reasons.join('\n');
    expect(reasons).toMatch(/proposals table|committed at version 2/);
    expect(reasons).toMatch(/audit log records its commit/);
  });

  it("finds the head record's approval replaced by garbage, its hash recomputed", async () => {
    const { g, dir, db, pendingId } = await populated();
    const raw = new Database(db);
    editRecord(raw, 2, (rec) => {
      rec.approvals[0]!.sig = 'ab'.repeat(64);
    });
    raw.close();
    const reg = await restart(g, dir);
    await expectRefused(reg, /^tamper: version 2: the approval by alice does not verify$/, pendingId);
    // The bad version is not served.
    const bad = await request<{ error: { message: string } }>(reg.url, 'GET', '/registry/2');
    expect(bad.status).toBe(503);
    expect(bad.json.error.message).toMatch(/version 2 failed its integrity check/);
  });

  it("finds the head record's ops replaced, its state_root and hash recomputed", async () => {
    const { g, dir, db, pendingId } = await populated();
    const raw = new Database(db);
    const rec1 = JSON.parse(
      (raw.prepare('SELECT record FROM commits WHERE version = 1').get() as { record: string }).record,
    ) as CommitRecord;
    editRecord(raw, 2, (rec) => {
      const payload = rec.payload as ProposalPayload;
      (payload.ops[0] as PutOp).descriptor.labels.n = 'forged';
      const state = new RegistryState((g.payload as GenesisPayload).signer_set);
      state.apply(planOps(state, (rec1.payload as ProposalPayload).ops, 1));
      rec.state_root = state.rootAfter(planOps(state, payload.ops, 2));
    });
    raw.close();
    const reg = await restart(g, dir);
    await expectRefused(reg, /^tamper: version 2: its payload hashes to b3:[0-9a-f]+, not to its payload_hash/, pendingId);
    expect((await request(reg.url, 'GET', '/registry/2')).status).toBe(503);
  });

  it('finds a forged approval row inserted for a pending proposal, and does not let it count', async () => {
    const { g, dir, db, pendingId } = await populated();
    const raw = new Database(db);
    raw
      .prepare('INSERT INTO approvals (proposal_id, signer_id, sig, received_at) VALUES (?, ?, ?, ?)')
      .run(pendingId, 'carol', '00'.repeat(64), new Date().toISOString());
    raw.close();
    const reg = await restart(g, dir);
    await expectRefused(reg, new RegExp(`^tamper: proposal ${pendingId}: a stored approval does not verify \\(carol: `), pendingId);
    expect(reg.view.head.version).toBe(2);
  });

  it("finds a pending proposal's payload text edited, its id kept", async () => {
    const { g, dir, db, pendingId } = await populated();
    const raw = new Database(db);
    raw.exec('DROP TRIGGER proposals_status_only');
    const changed = raw
      .prepare(`UPDATE proposals SET payload = replace(payload, '"n":"c"', '"n":"x"') WHERE id = ?`)
      .run(pendingId).changes;
    expect(changed).toBe(1);
    raw.close();
    const reg = await restart(g, dir);
    await expectRefused(reg, new RegExp(`^tamper: proposal ${pendingId}: its stored payload does not hash to its id$`), pendingId);
  });

  it("finds the genesis row's text edited, its hash column untouched", async () => {
    const { g, dir, db, pendingId } = await populated();
    const raw = new Database(db);
    raw.exec('DROP TRIGGER commits_no_update');
    const changed = raw
      .prepare(`UPDATE commits SET record = replace(record, '"version":0', '"version":0 ') WHERE version = 0`)
      .run().changes;
    expect(changed).toBe(1);
    raw.close();
    const reg = await restart(g, dir);
    await expectRefused(reg, /^tamper: version 0: the stored genesis record is not the configured genesis record/, pendingId);
    // Version 0 goes out as the configured genesis, never the stored text.
    const served = await request(reg.url, 'GET', '/registry/0');
    expect(served.status).toBe(200);
    expect(served.text).toBe(canonicalJson(g));
  });

  it('finds an audit event in the middle of the chain edited, even with its hash recomputed', async () => {
    const { g, dir, db, pendingId } = await populated();
    const raw = new Database(db);
    raw.exec('DROP TRIGGER audit_no_update');
    const event = JSON.parse((raw.prepare('SELECT event FROM audit WHERE seq = 3').get() as { event: string }).event) as Record<
      string,
      unknown
    >;
    event.at = '2000-01-01T00:00:00.000Z';
    raw.prepare('UPDATE audit SET event = ?, hash = ? WHERE seq = 3').run(canonicalJson(event), hashOf(event));
    raw.close();
    const reg = await restart(g, dir);
    await expectRefused(reg, /^tamper: audit event 4: its prev_hash b3:[0-9a-f]+ is not the hash of event 3/, pendingId);
  });

  it('finds the last audit event deleted', async () => {
    const { g, dir, db, pendingId } = await populated();
    const raw = new Database(db);
    raw.exec('DROP TRIGGER audit_no_delete');
    const last = raw.prepare('SELECT event FROM audit ORDER BY seq DESC LIMIT 1').get() as { event: string };
    expect(JSON.parse(last.event)).toMatchObject({ kind: 'approval_accepted', signer_id: 'alice' });
    raw.exec('DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)');
    raw.close();
    const reg = await restart(g, dir);
    await expectRefused(
      reg,
      new RegExp(`^tamper: proposal ${pendingId}: the approval by alice has no \`approval_accepted\` audit event$`),
      pendingId,
    );
  });

  it('verifies in the background past the foreground limit: writes wait for it, then a re-linked chain is refused', async () => {
    const { g, dir, db, pendingId } = await populated();
    const raw = new Database(db);
    // Version 1's approval forged and every later link rebuilt (hash, prev_hash, base_hash and
    // payload_hash): replay sees a chain that holds together; the signatures do not.
    editRecord(raw, 1, (rec) => {
      rec.approvals[0]!.sig = 'cd'.repeat(64);
    });
    const v1 = raw.prepare('SELECT hash FROM commits WHERE version = 1').get() as { hash: string };
    editRecord(raw, 2, (rec) => {
      rec.prev_hash = v1.hash;
      (rec.payload as ProposalPayload).base_hash = v1.hash;
      rec.payload_hash = hashOf(rec.payload);
    });
    raw.close();
    const reg = await restart(g, dir, { foregroundVerifyLimit: 0 });
    let r = await ready(reg);
    for (let i = 0; i < 200 && r.reasons.some((x) => x.startsWith('verifying: ')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      r = await ready(reg);
    }
    expect(r.reasons).toContain('tamper: version 1: the approval by alice does not verify');
    expect(r.reasons.some((x) => x.startsWith('tamper: version 2: '))).toBe(true);
    await expectRefused(reg, /^tamper: version 1: /, pendingId, 0);
    expect((await request(reg.url, 'GET', '/registry/1')).status).toBe(503);
  });

  it('verifies an untouched log in the background past the foreground limit, then takes writes', async () => {
    const { g, dir, pendingId } = await populated();
    const reg = await restart(g, dir, { foregroundVerifyLimit: 0 });
    expect((await request(reg.url, 'GET', '/registry/head')).status).toBe(200);
    let r = await ready(reg);
    for (let i = 0; i < 200 && !r.write; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      r = await ready(reg);
    }
    expect(r).toEqual({ read: true, write: true, reasons: [] });
    const res = await request<{ status: string }>(reg.url, 'POST', `/registry/proposals/${pendingId}/approvals`, approve(bob, pendingId));
    expect(res.json.status).toBe('committed');
  });
});

describe('recordBytesProblem (the check of a record read back from the store before it is served)', () => {
  it('passes a record that holds together, and names what does not', async () => {
    const { db } = await populated();
    const raw = new Database(db, { readonly: true });
    const row = raw.prepare('SELECT version, hash, record AS text FROM commits WHERE version = 2').get() as StoredCommit;
    raw.close();
    expect(recordBytesProblem(row)).toBeUndefined();
    expect(recordBytesProblem({ ...row, text: `${row.text} ` })).toMatch(/does not hash to/);
    const rec = JSON.parse(row.text) as CommitRecord;
    (rec.payload as ProposalPayload).reason = 'forged';
    expect(recordBytesProblem({ ...row, text: canonicalJson(rec), hash: hashOf(rec) })).toMatch(/^its payload hashes to b3:/);
    expect(recordBytesProblem({ ...row, version: 3 })).toMatch(/says it is version 2/);
  });
});
