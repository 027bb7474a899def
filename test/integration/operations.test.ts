// Operations over real HTTP on a real port with a real SQLite file: freeze and thaw (the
// operator token, the write plane refused with the reason, reads served, audit events, a
// restart, no way around quorum), and readiness under store faults injected at the store
// interface (test/helpers/faulty-store.ts): writes shed with 503 and Retry-After, reads green,
// /readyz saying why, and recovery once the fault clears.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { hashOf } from '../../src/core/encoding.js';
import { bearerCheck } from '../../src/http/routes-operator.js';
import { checkAuditChain, readAudit } from '../helpers/audit.js';
import { FaultyStore } from '../helpers/faulty-store.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import type { ErrorJson, HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, tempDir, type TestRegistry } from '../helpers/server.js';

const TOKEN = 'op-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

const running: TestRegistry[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

async function start(...args: Parameters<typeof startTestRegistry>) {
  const reg = await startTestRegistry(...args);
  running.push(reg);
  return reg;
}

const head = async (base: string): Promise<HeadJson> => (await request<HeadJson>(base, 'GET', '/registry/head')).json;

interface Ready {
  read: boolean;
  write: boolean;
  reasons: string[];
}
const ready = async (base: string) => request<Ready>(base, 'GET', '/readyz');

/** Polls `probe` every 20 ms until it holds, or fails after `ms`. */
async function until(probe: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the operator token', () => {
  it('is compared whole, as a bearer token', () => {
    const check = bearerCheck(TOKEN);
    expect(check(`Bearer ${TOKEN}`)).toBe(true);
    expect(check(`bearer ${TOKEN}`)).toBe(true);
    for (const wrong of [undefined, '', TOKEN, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Basic ${TOKEN}`, `Bearer ${TOKEN} x`])
      expect(check(wrong), String(wrong)).toBe(false);
    expect(bearerCheck(undefined)(`Bearer ${TOKEN}`)).toBe(false);
  });

  it('guards the operator endpoints: without it, or with a wrong one, they answer like an unknown route', async () => {
    const keys = signers('alice', 'bob');
    const open = await start(genesisRecord('noop', keys, 1));
    const unknown = await request<ErrorJson>(open.url, 'POST', '/ops/nothing', { reason: 'x' }, auth);
    const disabled = await request<ErrorJson>(open.url, 'POST', '/ops/freeze', { reason: 'x' }, auth);
    expect(unknown.status).toBe(404);
    expect(disabled.status).toBe(404);
    expect(disabled.json.error.message).toBe('no route POST /ops/freeze');

    const reg = await start(genesisRecord('guarded', keys, 1), { config: { operatorToken: TOKEN } });
    for (const headers of [
      {} as Record<string, string>,
      { authorization: 'Bearer wrong-token-0123456789' },
      { authorization: TOKEN },
      { authorization: `Basic ${TOKEN}` },
    ]) {
      const r = await request<ErrorJson>(reg.url, 'POST', '/ops/freeze', { reason: 'x' }, headers);
      expect(r.status).toBe(404);
      expect(r.json.error).toMatchObject({ code: 'NotFound', message: 'no route POST /ops/freeze' });
    }
    // Nothing happened: not frozen, nothing audited.
    expect((await ready(reg.url)).json).toEqual({ read: true, write: true, reasons: [] });
    expect((await readAudit(reg.url)).map((e) => e.kind)).not.toContain('frozen');
  });

  it('comes from operatorTokenFile or the environment, never both and never a flag, at least 16 characters', () => {
    const file = join(tempDir(), 'token');
    writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
    expect(loadConfig({ operatorTokenFile: file }, {}).operatorToken).toBe(TOKEN);
    expect(loadConfig({}, { REGISTRY_OPERATOR_TOKEN_FILE: file }).operatorToken).toBe(TOKEN);
    expect(loadConfig({}, { REGISTRY_OPERATOR_TOKEN: TOKEN }).operatorToken).toBe(TOKEN);
    expect(loadConfig({}, {}).operatorToken).toBeUndefined();
    expect(loadConfig({ operatorToken: TOKEN }, {}).operatorToken).toBeUndefined();
    expect(() => loadConfig({ operatorTokenFile: file }, { REGISTRY_OPERATOR_TOKEN: TOKEN })).toThrow(/not both/);
    expect(() => loadConfig({}, { REGISTRY_OPERATOR_TOKEN: 'short-token' })).toThrow(/at least 16 characters/);
    expect(() => loadConfig({ operatorTokenFile: join(tempDir(), 'missing') }, {})).toThrow(/cannot read the operator token file/);
  });
});

describe('freeze and thaw', () => {
  it('refuses every write with 503, the reason and Retry-After while frozen; reads go on; both are audited', async () => {
    const keys = signers('alice', 'bob', 'carol');
    const reg = await start(genesisRecord('freeze', keys, 2), { config: { operatorToken: TOKEN } });
    const h0 = await head(reg.url);
    // A proposal one approval short of quorum.
    const p = proposal('freeze', h0, [put('svc-a')]);
    const id = hashOf(p);
    expect((await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id)] })).status).toBe(201);

    const reason = 'signer key compromise under investigation (INC-4127)';
    const frozen = await request(reg.url, 'POST', '/ops/freeze', { reason }, auth);
    expect(frozen.status).toBe(200);
    expect(frozen.headers.get('cache-control')).toBe('no-store');
    expect(frozen.json).toEqual({ frozen: true, reason, since: expect.stringMatching(/Z$/) as unknown, changed: true });

    // The approval that would reach quorum is refused, and nothing commits.
    const late = await request<ErrorJson>(reg.url, 'POST', `/registry/proposals/${id}/approvals`, approve(keys[1]!, id));
    expect(late.status).toBe(503);
    expect(late.headers.get('retry-after')).toBe('30');
    expect(late.json.error).toMatchObject({ code: 'Unavailable', retryable: true });
    expect(late.json.error.message).toContain(reason);
    // So is the same quorum sent with the proposal again, and any new proposal.
    const again = await request<ErrorJson>(reg.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: [approve(keys[1]!, id), approve(keys[2]!, id)],
    });
    expect(again.status).toBe(503);
    const q = proposal('freeze', h0, [put('svc-b')]);
    const fresh = await request<ErrorJson>(reg.url, 'POST', '/registry/proposals', {
      payload: q,
      approvals: [approve(keys[0]!, hashOf(q)), approve(keys[1]!, hashOf(q))],
    });
    expect(fresh.status).toBe(503);
    expect(fresh.json.error.message).toContain(reason);

    // Reads go on; readiness says why writes do not.
    expect((await head(reg.url)).version).toBe(0);
    expect((await request(reg.url, 'GET', `/registry/proposals/${id}`)).json).toMatchObject({
      status: 'pending',
      approvals: [{ signer_id: 'alice' }],
    });
    expect((await request(reg.url, 'GET', '/registry/0')).status).toBe(200);
    const r = await ready(reg.url);
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ read: true, write: false, reasons: [`frozen: ${reason}`] });

    // Freezing again changes nothing and audits nothing; the first reason stands.
    const twice = await request(reg.url, 'POST', '/ops/freeze', { reason: 'another reason' }, auth);
    expect(twice.json).toEqual({ ...(frozen.json as object), changed: false });

    const thawed = await request(reg.url, 'POST', '/ops/thaw', { reason: 'keys rotated' }, auth);
    expect(thawed.json).toEqual({ frozen: false, changed: true });
    expect((await request(reg.url, 'POST', '/ops/thaw', {}, auth)).json).toEqual({ frozen: false, changed: false });
    expect((await ready(reg.url)).json).toEqual({ read: true, write: true, reasons: [] });

    // After the thaw the same approval goes through, and commits.
    const done = await request(reg.url, 'POST', `/registry/proposals/${id}/approvals`, approve(keys[1]!, id));
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ status: 'committed', version: 1 });

    const events = await readAudit(reg.url);
    checkAuditChain(events);
    const kinds = events.map((e) => e.kind);
    // proposal_received, approval_accepted (alice), frozen, thawed, approval_accepted (bob), committed:
    // the refused writes were refused before any signature was checked, and audit nothing.
    expect(kinds).toEqual(['proposal_received', 'approval_accepted', 'frozen', 'thawed', 'approval_accepted', 'committed']);
    expect(events[2]).toMatchObject({ kind: 'frozen', reason });
    expect(events[3]).toMatchObject({ kind: 'thawed', reason: 'keys rotated' });
    expect(events[2]).not.toHaveProperty('proposal_id');
  });

  it('refuses a write admitted while the freeze waited in the writer queue: the freeze lands first', async () => {
    const keys = signers('alice', 'bob');
    const store: { faulty?: FaultyStore } = {};
    const reg = await start(genesisRecord('queued', keys, 2), {
      config: { operatorToken: TOKEN },
      wrapStore: (s) => (store.faulty = new FaultyStore(s)),
    });
    const faulty = store.faulty!;
    const h0 = await head(reg.url);
    const p = proposal('queued', h0, [put('a')]);
    const id = hashOf(p);
    await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id)] });
    // The writer is busy with a slow write (another proposal) when the freeze, then the approval
    // that would reach quorum, arrive: both wait in the queue, the freeze first.
    faulty.delayWrites(300);
    const q = proposal('queued', h0, [put('b')]);
    const busy = request(reg.url, 'POST', '/registry/proposals', { payload: q, approvals: [approve(keys[0]!, hashOf(q))] });
    await until(() => Promise.resolve(faulty.counts.attempted >= 2));
    const freeze = request(reg.url, 'POST', '/ops/freeze', { reason: 'stop' }, auth);
    await new Promise((r) => setTimeout(r, 50));
    const quorum = request<ErrorJson>(reg.url, 'POST', `/registry/proposals/${id}/approvals`, approve(keys[1]!, id));
    expect((await busy).status).toBe(201);
    faulty.clear();
    expect((await freeze).json).toMatchObject({ frozen: true, changed: true });
    const refused = await quorum;
    expect(refused.status).toBe(503);
    expect(refused.json.error.message).toContain('stop');
    expect((await head(reg.url)).version).toBe(0);
    expect((await request(reg.url, 'GET', `/registry/proposals/${id}`)).json).toMatchObject({
      status: 'pending',
      approvals: [{ signer_id: 'alice' }],
    });
  });

  it('survives a restart, derived from the last frozen or thawed audit event', async () => {
    const keys = signers('alice');
    const g = genesisRecord('restart', keys, 1);
    const first = await startTestRegistry(g, { config: { operatorToken: TOKEN } });
    await request(first.url, 'POST', '/ops/freeze', { reason: 'maintenance' }, auth);
    await first.close();

    const second = await start(g, { dir: first.dir, config: { operatorToken: TOKEN } });
    expect((await ready(second.url)).json).toEqual({ read: true, write: false, reasons: ['frozen: maintenance'] });
    const h0 = await head(second.url);
    const p = proposal('restart', h0, [put('a')]);
    const refused = await request<ErrorJson>(second.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: [approve(keys[0]!, hashOf(p))],
    });
    expect(refused.status).toBe(503);
    expect(refused.json.error.message).toContain('maintenance');
    await request(second.url, 'POST', '/ops/thaw', {}, auth);
    await second.close();
    running.splice(running.indexOf(second), 1);

    const third = await start(g, { dir: first.dir, config: { operatorToken: TOKEN } });
    expect((await ready(third.url)).json.write).toBe(true);
    const ok = await request(third.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, hashOf(p))] });
    expect(ok.json).toMatchObject({ status: 'committed', version: 1 });
    const kinds = (await readAudit(third.url)).map((e) => e.kind);
    expect(kinds).toEqual(['frozen', 'thawed', 'proposal_received', 'approval_accepted', 'committed']);
  });

  it('refuses a freeze without a reason, or with one over 1024 characters', async () => {
    const keys = signers('alice');
    const reg = await start(genesisRecord('reasons', keys, 1), { config: { operatorToken: TOKEN } });
    for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 'x'.repeat(1025) }, { reason: 'x', extra: 1 }]) {
      const r = await request<ErrorJson>(reg.url, 'POST', '/ops/freeze', body, auth);
      expect(r.status, JSON.stringify(body)).toBe(400);
    }
    expect((await ready(reg.url)).json.write).toBe(true);
  });
});

describe('readiness under store faults', () => {
  it('sheds writes with 503 and Retry-After while a store write is stuck, keeps reads green, and recovers', async () => {
    const keys = signers('alice', 'bob');
    const store: { faulty?: FaultyStore } = {};
    const reg = await start(genesisRecord('slow', keys, 1), {
      config: { storeSlowMs: 150 },
      wrapStore: (s) => (store.faulty = new FaultyStore(s)),
    });
    const faulty = store.faulty!;
    const h0 = await head(reg.url);
    expect((await ready(reg.url)).json).toEqual({ read: true, write: true, reasons: [] });

    faulty.delayWrites(1200);
    const p = proposal('slow', h0, [put('a')]);
    const stuck = request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, hashOf(p))] });
    // Once the write has run past 150 ms: not ready to write, and new writes are shed at once.
    await until(async () => !(await ready(reg.url)).json.write);
    const r = await ready(reg.url);
    expect(r.status).toBe(200);
    expect(r.json.read).toBe(true);
    expect(r.json.reasons).toEqual([expect.stringMatching(/^store: a store write has been running for \d+ ms \(slow above 150 ms\)$/)]);
    const q = proposal('slow', h0, [put('b')]);
    const t0 = Date.now();
    const shed = await request<ErrorJson>(reg.url, 'POST', '/registry/proposals', {
      payload: q,
      approvals: [approve(keys[0]!, hashOf(q))],
    });
    expect(shed.status).toBe(503);
    expect(Date.now() - t0).toBeLessThan(500); // answered at once, not queued behind the stuck write
    expect(Number(shed.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(shed.json.error).toMatchObject({ code: 'Unavailable', retryable: true });
    // Reads are served from memory and stay up.
    for (const path of ['/registry/head', '/registry/0', '/registry/descriptors/none', '/healthz']) {
      const read = await request(reg.url, 'GET', path);
      expect(read.status, path).toBe(path === '/registry/descriptors/none' ? 404 : 200);
    }

    faulty.clear();
    expect((await stuck).json).toMatchObject({ status: 'committed', version: 1 });
    // The slow write is reported until a write in time clears it.
    expect((await ready(reg.url)).json.reasons).toEqual([expect.stringMatching(/^store: the last store write took \d+ ms/)]);
    const h1 = await head(reg.url);
    const next = proposal('slow', h1, [put('c')]);
    expect(
      (await request(reg.url, 'POST', '/registry/proposals', { payload: next, approvals: [approve(keys[0]!, hashOf(next))] })).status,
    ).toBe(201);
    expect((await ready(reg.url)).json).toEqual({ read: true, write: true, reasons: [] });
  });

  it('answers writes 503 while the store fails them, keeps reads green, and recovers with the next write that succeeds', async () => {
    const keys = signers('alice');
    const store: { faulty?: FaultyStore } = {};
    const reg = await start(genesisRecord('failing', keys, 1), { wrapStore: (s) => (store.faulty = new FaultyStore(s)) });
    const faulty = store.faulty!;
    const h0 = await head(reg.url);
    const auditBefore = await readAudit(reg.url);

    faulty.failWrites('disk I/O error (injected)');
    const p = proposal('failing', h0, [put('a')]);
    const body = { payload: p, approvals: [approve(keys[0]!, hashOf(p))] };
    const failed = await request<ErrorJson>(reg.url, 'POST', '/registry/proposals', body);
    expect(failed.status).toBe(503);
    expect(failed.headers.get('retry-after')).toBe('1');
    expect(failed.json.error.code).toBe('Unavailable');
    expect((await ready(reg.url)).json).toEqual({ read: true, write: false, reasons: ['store: disk I/O error (injected)'] });
    expect((await request(reg.url, 'GET', '/registry/head')).status).toBe(200);
    expect(await readAudit(reg.url)).toEqual(auditBefore);

    faulty.clear();
    const ok = await request(reg.url, 'POST', '/registry/proposals', body);
    expect(ok.json).toMatchObject({ status: 'committed', version: 1 });
    expect((await ready(reg.url)).json).toEqual({ read: true, write: true, reasons: [] });
  });
});
