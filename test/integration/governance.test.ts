// The governed write path over real HTTP on a real port with a real SQLite file.
import { afterEach, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import type { CommitRecord } from '../../src/core/schemas.js';
import { RegistryState } from '../../src/core/state.js';
import type { ProposalView } from '../../src/state/proposal-view.js';
import { checkAuditChain, readAudit } from '../helpers/audit.js';
import { approve, del, genesisRecord, proposal, put, setSigners, signers, signerSet } from '../helpers/fixtures.js';
import type { ErrorJson, HeadJson, ProposalJson, ProposalListJson } from '../helpers/responses.js';
import { request, startTestRegistry, type Reply, type TestRegistry } from '../helpers/server.js';

const running: TestRegistry[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

async function start(...args: Parameters<typeof startTestRegistry>) {
  const reg = await startTestRegistry(...args);
  running.push(reg);
  return reg;
}

async function head(base: string): Promise<HeadJson> {
  return (await request<HeadJson>(base, 'GET', '/registry/head')).json;
}

describe('governance flow', () => {
  it('propose -> approve -> commit -> read, with caching, listings and an intact audit chain', async () => {
    const keys = signers('alice', 'bob', 'carol');
    const reg = await start(genesisRecord('flow', keys, 2));
    const h0 = await head(reg.url);
    expect(h0.version).toBe(0);

    const p = proposal('flow', h0, [put('svc-a', { region: 'eu' }, { addr: '10.0.0.1' }), put('node-1', {}, { cores: 8 }, 'node')]);
    const id = hashOf(p);
    const submitted = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id)] });
    expect(submitted.status).toBe(201);
    expect(submitted.json).toEqual({ proposal_id: id, status: 'pending', approvals: [{ signer_id: 'alice' }], threshold: 2 });

    const pending = await request(reg.url, 'GET', `/registry/proposals/${id}`);
    expect(pending.json).toMatchObject({ proposal_id: id, status: 'pending', payload: p, threshold: 2 });
    const encoded = await request(reg.url, 'GET', `/registry/proposals/${encodeURIComponent(id)}`);
    expect(encoded.status).toBe(200);

    const committed = await request(reg.url, 'POST', `/registry/proposals/${id}/approvals`, approve(keys[2]!, id));
    expect(committed.status).toBe(200);
    expect(committed.json).toMatchObject({ status: 'committed', version: 1, approvals: [{ signer_id: 'alice' }, { signer_id: 'carol' }] });

    const h1 = await head(reg.url);
    expect(h1).toMatchObject({ version: 1, descriptor_count: 2 });
    const v1 = await request<CommitRecord>(reg.url, 'GET', '/registry/1');
    expect(v1.status).toBe(200);
    expect(hashOf(v1.json)).toBe(h1.hash);
    expect(v1.text).toBe(JSON.stringify(v1.json)); // served as canonical JSON: the bytes that hash
    expect(v1.json).toMatchObject({ version: 1, prev_hash: h0.hash, payload_hash: id, payload: p });
    expect(v1.json.approvals.map((a) => a.signer_id)).toEqual(['alice', 'carol']);
    const state = new RegistryState(signerSet(keys, 2));
    for (const op of p.ops)
      if (op.op === 'put')
        state.apply({
          version: 1,
          puts: [state.entry(state.keyOf(op.descriptor.id), op.descriptor, 1)],
          deletes: [],
          signerSet: undefined,
          changed: [],
        });
    expect(v1.json.state_root).toBe(state.root());
    expect(v1.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(v1.headers.get('etag')).toBe(`"${h1.hash}"`);

    const headReply = await request(reg.url, 'GET', '/registry/head');
    expect(headReply.headers.get('cache-control')).toBe('public, max-age=1, must-revalidate');
    expect(headReply.headers.get('etag')).toBe(`"${h1.hash}"`);
    const revalidated = await request(reg.url, 'GET', '/registry/head', undefined, { 'if-none-match': `"${h1.hash}"` });
    expect(revalidated.status).toBe(304);
    const weak = await request(reg.url, 'GET', '/registry/head', undefined, { 'if-none-match': `"x", W/"${h1.hash}"` });
    expect(weak.status).toBe(304);
    const oldTag = await request(reg.url, 'GET', '/registry/head', undefined, { 'if-none-match': `"${h0.hash}"` });
    expect(oldTag.status).toBe(200);
    const v0 = await request(reg.url, 'GET', '/registry/0', undefined, { 'if-none-match': `"${h0.hash}"` });
    expect(v0.status).toBe(304);

    const past = await request<ErrorJson>(reg.url, 'GET', '/registry/2');
    expect(past.status).toBe(404);
    expect(past.json.error.code).toBe('NotFound');
    expect(past.headers.get('cache-control')).toBe('no-store');

    // A valid approval after the commit changes nothing and says committed.
    const late = await request(reg.url, 'POST', `/registry/proposals/${id}/approvals`, approve(keys[1]!, id));
    expect(late.status).toBe(200);
    expect(late.json).toMatchObject({ status: 'committed', version: 1 });
    expect((await head(reg.url)).hash).toBe(h1.hash);

    // Submitting the known payload again answers 200 with its current status.
    const again = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id)] });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ status: 'committed', version: 1 });

    const list = await request<ProposalListJson>(reg.url, 'GET', '/registry/proposals?status=committed');
    expect(list.json.items.map((i) => i.proposal_id)).toEqual([id]);
    const none = await request(reg.url, 'GET', '/registry/proposals?status=pending');
    expect(none.json).toEqual({ items: [], next_cursor: null });

    const audit = await readAudit(reg.url);
    checkAuditChain(audit);
    expect(audit.map((e) => e.kind)).toEqual(['proposal_received', 'approval_accepted', 'approval_accepted', 'committed']);
    expect(audit[3]).toMatchObject({ kind: 'committed', proposal_id: id, version: 1 });
  });

  it('commits at once when the approvals sent with the proposal reach quorum', async () => {
    const keys = signers('alice', 'bob', 'carol');
    const reg = await start(genesisRecord('quick', keys, 2));
    const p = proposal('quick', await head(reg.url), [put('a')]);
    const id = hashOf(p);
    const r = await request(reg.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: [approve(keys[1]!, id), approve(keys[0]!, id), approve(keys[2]!, id)],
    });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ status: 'committed', version: 1 });
    const v1 = await request<CommitRecord>(reg.url, 'GET', '/registry/1');
    // Every valid approval received is recorded, sorted by signer id.
    expect(v1.json.approvals.map((a) => a.signer_id)).toEqual(['alice', 'bob', 'carol']);
  });

  it('counts a duplicate approval once', async () => {
    const keys = signers('alice', 'bob', 'carol');
    const reg = await start(genesisRecord('dup', keys, 2));
    const p = proposal('dup', await head(reg.url), [put('a')]);
    const id = hashOf(p);
    const a = approve(keys[0]!, id);
    expect((await request<ProposalView>(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [a, a] })).json.status).toBe(
      'pending',
    );
    expect((await request(reg.url, 'POST', `/registry/proposals/${id}/approvals`, a)).json).toMatchObject({
      status: 'pending',
      approvals: [{ signer_id: 'alice' }],
    });
    expect((await head(reg.url)).version).toBe(0);
  });

  it('turns a second proposal on the same base stale when the first commits', async () => {
    const keys = signers('alice', 'bob', 'carol');
    const reg = await start(genesisRecord('race', keys, 2));
    const h0 = await head(reg.url);
    const p1 = proposal('race', h0, [put('a')]);
    const p2 = proposal('race', h0, [put('b')]);
    const [id1, id2] = [hashOf(p1), hashOf(p2)];
    const [r1, r2] = await Promise.all([
      request(reg.url, 'POST', '/registry/proposals', { payload: p1, approvals: [approve(keys[0]!, id1)] }),
      request(reg.url, 'POST', '/registry/proposals', { payload: p2, approvals: [approve(keys[1]!, id2)] }),
    ]);
    expect([r1.status, r2.status]).toEqual([201, 201]);
    const [c1, c2] = await Promise.all([
      request(reg.url, 'POST', `/registry/proposals/${id1}/approvals`, approve(keys[2]!, id1)),
      request(reg.url, 'POST', `/registry/proposals/${id2}/approvals`, approve(keys[2]!, id2)),
    ]);
    // Exactly one commits; the other finds its base gone.
    const statuses = [c1, c2].map((c) => c.status).sort();
    expect(statuses).toEqual([200, 409]);
    const loser = c1.status === 409 ? id1 : id2;
    // The loser's reply is the 409 error envelope, the winner's a proposal view.
    expect(((c1.status === 409 ? c1 : c2).json as ErrorJson).error.code).toBe('StaleVersion');
    expect((await request<ProposalJson>(reg.url, 'GET', `/registry/proposals/${loser}`)).json.status).toBe('stale');
    expect((await head(reg.url)).version).toBe(1);
    // A stale proposal never commits, whoever approves it.
    const more = await request(reg.url, 'POST', `/registry/proposals/${loser}/approvals`, approve(keys[0]!, loser));
    expect(more.status).toBe(409);
    expect((await head(reg.url)).version).toBe(1);
    const kinds = (await readAudit(reg.url)).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'proposal_stale')).toHaveLength(1);
  });

  it('rotates the signer set with both quorums, then refuses the removed signer', async () => {
    const [alice, bob, carol] = signers('alice', 'bob', 'carol');
    const [dave, erin] = signers('dave', 'erin');
    const reg = await start(genesisRecord('rot', [alice!, bob!, carol!], 2));
    const next = signerSet([alice!, dave!, erin!], 2);
    const p = proposal('rot', await head(reg.url), [setSigners(next)]);
    const id = hashOf(p);
    let r = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(alice!, id), approve(bob!, id)] });
    // Quorum of the current set (alice, bob) but only alice of the new set.
    expect(r.json).toMatchObject({ status: 'pending', threshold: 2, proposed_threshold: 2 });
    r = await request(reg.url, 'POST', `/registry/proposals/${id}/approvals`, approve(dave!, id));
    expect(r.json).toMatchObject({ status: 'committed', version: 1 });
    const h1 = await head(reg.url);
    expect(h1.signer_set).toEqual(next);

    const p2 = proposal('rot', h1, [put('after-rotation')]);
    const id2 = hashOf(p2);
    const refused = await request<ErrorJson>(reg.url, 'POST', '/registry/proposals', { payload: p2, approvals: [approve(bob!, id2)] });
    expect(refused.status).toBe(422);
    expect(refused.json.error.code).toBe('BadSignature');
    r = await request(reg.url, 'POST', '/registry/proposals', { payload: p2, approvals: [approve(erin!, id2)] });
    expect(r.status).toBe(201);
    const bobLate = await request(reg.url, 'POST', `/registry/proposals/${id2}/approvals`, approve(bob!, id2));
    expect(bobLate.status).toBe(422);
    r = await request(reg.url, 'POST', `/registry/proposals/${id2}/approvals`, approve(dave!, id2));
    expect(r.json).toMatchObject({ status: 'committed', version: 2 });
    const audit = await readAudit(reg.url);
    checkAuditChain(audit);
    expect(audit.filter((e) => e.kind === 'approval_refused').map((e) => e.signer_id)).toEqual(['bob', 'bob']);
  });

  it('refuses a rotation approved only by the new signers', async () => {
    const [alice, bob] = signers('alice', 'bob');
    const [dave, erin] = signers('dave', 'erin');
    const reg = await start(genesisRecord('rot2', [alice!, bob!], 1));
    const p = proposal('rot2', await head(reg.url), [setSigners(signerSet([dave!, erin!], 1))]);
    const id = hashOf(p);
    const r = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(dave!, id)] });
    expect(r.status).toBe(422);
    const ok = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(dave!, id), approve(bob!, id)] });
    expect(ok.json).toMatchObject({ status: 'committed', version: 1 });
  });

  it('expires proposals: approvals after expires_at get 410 Gone', async () => {
    const keys = signers('alice', 'bob');
    const reg = await start(genesisRecord('exp', keys, 2));
    const now = Date.now();
    const p = proposal('exp', await head(reg.url), [put('a')], { now: now - 1000, ttlMs: 1500 });
    const id = hashOf(p);
    expect((await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id)] })).status).toBe(201);
    // Wait for the writer's expiry sweep to settle it rather than sleeping a fixed time.
    await new Promise<void>((resolve) => {
      const poll = async () =>
        (await request<ProposalJson>(reg.url, 'GET', `/registry/proposals/${id}`)).json.status === 'expired'
          ? resolve()
          : setImmediate(() => void poll());
      void poll();
    });
    const r = await request<ErrorJson>(reg.url, 'POST', `/registry/proposals/${id}/approvals`, approve(keys[1]!, id));
    expect(r.status).toBe(410);
    expect(r.json.error.code).toBe('Gone');
    expect((await head(reg.url)).version).toBe(0);
    const already = proposal('exp', await head(reg.url), [put('b')], { now: now - 10_000, ttlMs: 5000 });
    const gone = await request(reg.url, 'POST', '/registry/proposals', {
      payload: already,
      approvals: [approve(keys[0]!, hashOf(already))],
    });
    expect(gone.status).toBe(410);
    expect((await readAudit(reg.url)).map((e) => e.kind)).toContain('proposal_expired');
  });

  it('keeps the head, the pending proposals and the audit chain across a restart', async () => {
    const keys = signers('alice', 'bob', 'carol');
    const g = genesisRecord('restart', keys, 2);
    const first = await startTestRegistry(g);
    const p = proposal('restart', await head(first.url), [put('a'), put('b')]);
    const id = hashOf(p);
    await request(first.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id), approve(keys[1]!, id)] });
    const h1 = await head(first.url);
    const p2 = proposal('restart', h1, [del('a')]);
    const id2 = hashOf(p2);
    await request(first.url, 'POST', '/registry/proposals', { payload: p2, approvals: [approve(keys[0]!, id2)] });
    const audit = await readAudit(first.url);
    await first.close();

    const second = await start(g, { dir: first.dir });
    expect(await head(second.url)).toEqual(h1);
    expect(await readAudit(second.url)).toEqual(audit);
    const r = await request(second.url, 'POST', `/registry/proposals/${id2}/approvals`, approve(keys[2]!, id2));
    expect(r.json).toMatchObject({ status: 'committed', version: 2 });
    expect((await head(second.url)).descriptor_count).toBe(1);
    checkAuditChain(await readAudit(second.url));
  });

  it('refuses to open a database that holds another genesis', async () => {
    const keys = signers('alice', 'bob');
    const first = await startTestRegistry(genesisRecord('one', keys, 1));
    await first.close();
    await expect(startTestRegistry(genesisRecord('one', keys, 2), { dir: first.dir })).rejects.toThrow(/another registry/);
  });

  it('keeps nothing on disk with --db :memory:', async () => {
    const keys = signers('alice');
    const reg = await start(genesisRecord('mem', keys, 1), { config: { db: ':memory:' } });
    const p = proposal('mem', await head(reg.url), [put('a')]);
    const r = await request<ProposalView>(reg.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: [approve(keys[0]!, hashOf(p))],
    });
    expect(r.json.status).toBe('committed');
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(reg.dir)).toEqual(['genesis.json']);
  });
});

describe('known payloads', () => {
  it('answers 200 with the current status, whatever the head, and adds approvals while pending', async () => {
    const keys = signers('alice', 'bob', 'carol');
    const reg = await start(genesisRecord('known', keys, 3));
    const h0 = await head(reg.url);
    const p = proposal('known', h0, [put('a')]);
    const id = hashOf(p);
    expect((await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id)] })).status).toBe(201);
    const again = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[1]!, id)] });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ status: 'pending', approvals: [{ signer_id: 'alice' }, { signer_id: 'bob' }] });
    const bad = await request(reg.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: [{ signer_id: 'carol', sig: approve(keys[0]!, id).sig }],
    });
    expect(bad.status).toBe(422);
    const done = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[2]!, id)] });
    expect(done.json).toMatchObject({ status: 'committed', version: 1 });
    // Known and committed: 200 even though its base is no longer the head.
    const later = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id)] });
    expect(later.status).toBe(200);
    expect(later.json).toMatchObject({ status: 'committed', version: 1 });
  });
});

describe('proposal listings', () => {
  it('pages in arrival order with an opaque cursor that ends with null', async () => {
    const keys = signers('alice', 'bob');
    const reg = await start(genesisRecord('list', keys, 2));
    const h0 = await head(reg.url);
    const ids: string[] = [];
    for (const id of ['a', 'b', 'c']) {
      const p = proposal('list', h0, [put(id)]);
      ids.push(hashOf(p));
      await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, hashOf(p))] });
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      // Annotated: `cursor` flows from one page into the next request.
      const page: Reply<ProposalListJson> = await request<ProposalListJson>(
        reg.url,
        'GET',
        `/registry/proposals?status=pending&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      for (const item of page.json.items) {
        expect(item).toMatchObject({ status: 'pending', threshold: 2 });
        expect(item.created_at).toMatch(/Z$/);
        seen.push(item.proposal_id);
      }
      cursor = page.json.next_cursor;
    } while (cursor);
    expect(seen).toEqual(ids);
    const exact = await request<ProposalListJson>(reg.url, 'GET', '/registry/proposals?limit=3');
    expect(exact.json.items).toHaveLength(3);
    expect(exact.json.next_cursor).toBeNull();
  });
});
