// GET /metrics on a real server (README → Operations → Metrics): every golden metric is there,
// the exposition passes `promtool check metrics`, route labels are templates (10,000 distinct
// paths add no series), and the counts move with commits, refusals, cut connections, a store
// problem and a lagged stream subscriber.
import { statSync } from 'node:fs';
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import type { Op } from '../../src/core/schemas.js';
import { Committer } from '../helpers/commits.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import { parseExposition, promtool, sampleValue, type Family } from '../helpers/prometheus.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';
import { stalledSubscriber, subscribe } from '../helpers/sse.js';

/** Every metric the service exports, with its type: the test fails when one goes missing. The
 * first four are the golden ones. */
const EXPORTED: Record<string, string> = {
  http_requests_total: 'counter',
  request_latency_seconds: 'histogram',
  rejected_total: 'counter',
  bus_lagged_total: 'counter',
  http_requests_in_flight: 'gauge',
  registry_head_version: 'gauge',
  registry_checkpoint_age_seconds: 'gauge',
  registry_checkpoint_version: 'gauge',
  registry_descriptors: 'gauge',
  registry_pending_proposals: 'gauge',
  governance_proposals_total: 'counter',
  governance_approvals_total: 'counter',
  governance_commit_approvals_total: 'counter',
  commit_latency_seconds: 'histogram',
  approval_verify_seconds: 'histogram',
  sse_subscribers: 'gauge',
  registry_storage_bytes: 'gauge',
  registry_write_ready: 'gauge',
  // The process (prom-client's default metrics), a few of them.
  process_cpu_seconds_total: 'counter',
  process_resident_memory_bytes: 'gauge',
  process_open_fds: 'gauge',
  nodejs_eventloop_lag_p99_seconds: 'gauge',
  nodejs_heap_size_used_bytes: 'gauge',
  nodejs_gc_duration_seconds: 'histogram',
};

const keys = signers('alice', 'bob', 'carol');
const [alice, bob, carol] = keys as [(typeof keys)[0], (typeof keys)[0], (typeof keys)[0]];
const mallory = signers('mallory')[0]!;

async function scrape(reg: TestRegistry): Promise<Map<string, Family>> {
  const r = await request(reg.url, 'GET', '/metrics');
  expect(r.status).toBe(200);
  return parseExposition(r.text);
}

/** The registry's own series (the process metrics vary with the process, not with requests). */
const ownSeries = (families: Map<string, Family>): string[] =>
  [...families.values()]
    .filter((f) => !/^(process|nodejs)_/.test(f.name))
    .flatMap((f) => f.samples.map((s) => `${s.name}${JSON.stringify(s.labels)}`));

describe('GET /metrics', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startTestRegistry(genesisRecord('metrics', keys, 2));
  });
  afterAll(() => reg.close());

  it('answers Prometheus text, not cached, with every metric the README lists', async () => {
    const r = await request(reg.url, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.headers.get('cache-control')).toBe('no-store');
    const families = parseExposition(r.text);
    const missing = Object.entries(EXPORTED).filter(([name, type]) => families.get(name)?.type !== type);
    expect(missing, 'metrics missing or of another type').toEqual([]);
    // An empty log has nothing a checkpoint would cover.
    expect(sampleValue(families, 'registry_checkpoint_age_seconds')).toBe(0);
    expect(sampleValue(families, 'registry_checkpoint_version')).toBe(-1);
    expect(sampleValue(families, 'registry_head_version')).toBe(0);
    expect(sampleValue(families, 'registry_write_ready')).toBe(1);
    // The scrape itself is the one request in flight.
    expect(sampleValue(families, 'http_requests_in_flight')).toBe(1);
  });

  it('passes promtool check metrics, with traffic of every kind behind it', async () => {
    const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    await request(reg.url, 'HEAD', '/registry/head');
    await request(reg.url, 'GET', '/registry/descriptors/absent');
    await request(reg.url, 'GET', '/no/such/route');
    await request(reg.url, 'POST', '/registry/proposals', '{"payload":');
    const p = proposal('metrics', head, [put('svc-promtool')]);
    await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(mallory, hashOf(p))] });
    const r = await request(reg.url, 'GET', '/metrics');
    const checked = promtool(['check', 'metrics'], { input: r.text });
    expect(checked.output, 'promtool check metrics').toBe('');
    expect(checked.status).toBe(0);
    // And promtool does find fault where there is one: the check is not vacuous.
    const bad = promtool(['check', 'metrics'], { input: '# HELP x_total x\n# TYPE x_total gauge\nx_total 1\n' });
    expect(bad.status).not.toBe(0);
  });

  it('labels requests by route template: 10,000 distinct paths add no series', async () => {
    const paths = (i: number): [string, string] => {
      switch (i % 6) {
        case 0:
          return ['GET', `/nowhere/${i}/${'x'.repeat(i % 50)}`];
        case 1:
          return ['GET', `/registry/descriptors/svc-${i}`];
        case 2:
          return ['GET', `/registry/proposals/b3:${i.toString(16).padStart(64, '0')}`];
        case 3:
          return ['GET', `/registry/${1_000_000 + i}`];
        case 4:
          return ['GET', `/registry/head?n=${i}`];
        default:
          return ['DELETE', `/registry/head/${i}`];
      }
    };
    // Every kind once, so that its series exist, then 10,000 more.
    for (let i = 0; i < 6; i++) await request(reg.url, ...paths(i));
    const before = await scrape(reg);
    const seriesBefore = ownSeries(before);
    let next = 6;
    const worker = async () => {
      while (next < 10_006) {
        const r = await request(reg.url, ...paths(next++));
        expect(r.status).toBeLessThan(500);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const after = await scrape(reg);
    expect(ownSeries(after).sort()).toEqual(seriesBefore.sort());
    // Kinds 0–3 were sent 1,667 times each, kinds 4 and 5 1,666 times; each was counted.
    const delta = (name: string, labels: Record<string, string>) => sampleValue(after, name, labels) - sampleValue(before, name, labels);
    expect(delta('http_requests_total', { route: 'unmatched', method: 'GET', code: '404', plane: 'none' })).toBe(1667);
    expect(delta('http_requests_total', { route: 'unmatched', method: 'DELETE', code: '404', plane: 'none' })).toBe(1666);
    expect(delta('http_requests_total', { route: '/registry/descriptors/*', method: 'GET', code: '404', plane: 'read' })).toBe(1667);
    expect(delta('http_requests_total', { route: '/registry/proposals/:id', method: 'GET', code: '404', plane: 'read' })).toBe(1667);
    expect(delta('http_requests_total', { route: '/registry/:version', method: 'GET', code: '404', plane: 'read' })).toBe(1667);
    expect(delta('http_requests_total', { route: '/registry/head', method: 'GET', code: '200', plane: 'read' })).toBe(1666);
    // A 404 answers the question asked: it is not a refusal.
    expect(ownSeries(after).filter((s) => s.startsWith('rejected_total'))).toEqual(
      ownSeries(before).filter((s) => s.startsWith('rejected_total')),
    );
    expect(sampleValue(after, 'rejected_total', { reason: 'not_found' })).toBe(0);
    expect(sampleValue(after, 'rejected_total', { reason: 'http_404' })).toBe(0);
  }, 120_000);

  it('counts proposals, approvals accepted and refused, commits and their latency', async () => {
    const m0 = await scrape(reg);
    const delta = (m1: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
      sampleValue(m1, name, labels) - sampleValue(m0, name, labels);
    const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    // P1, pending with alice's approval.
    const p1 = proposal('metrics', head, [put('svc-p1')], { reason: 'p1' });
    const id1 = hashOf(p1);
    expect((await request(reg.url, 'POST', '/registry/proposals', { payload: p1, approvals: [approve(alice, id1)] })).status).toBe(201);
    expect(sampleValue(await scrape(reg), 'registry_pending_proposals')).toBe(1);
    // Two approvals that prove nothing: a signature over something else, and a stranger's.
    const approvals = `/registry/proposals/${encodeURIComponent(id1)}/approvals`;
    expect((await request(reg.url, 'POST', approvals, { signer_id: 'carol', sig: approve(carol, hashOf(head)).sig })).status).toBe(422);
    expect((await request(reg.url, 'POST', approvals, approve(mallory, id1))).status).toBe(422);
    // P2 commits with alice and bob; P1 goes stale.
    const p2 = proposal('metrics', head, [put('svc-p2'), put('svc-p2b')], { reason: 'p2' });
    const r2 = await request<{ status: string }>(reg.url, 'POST', '/registry/proposals', {
      payload: p2,
      approvals: [approve(alice, hashOf(p2)), approve(bob, hashOf(p2))],
    });
    expect(r2.json.status).toBe('committed');
    // Carol's valid approval of the stale P1: refused and audited.
    expect((await request(reg.url, 'POST', approvals, approve(carol, id1))).status).toBe(409);

    const m1 = await scrape(reg);
    expect(delta(m1, 'governance_proposals_total', { status: 'received' })).toBe(2);
    expect(delta(m1, 'governance_proposals_total', { status: 'committed' })).toBe(1);
    expect(delta(m1, 'governance_proposals_total', { status: 'stale' })).toBe(1);
    expect(delta(m1, 'governance_proposals_total', { status: 'expired' })).toBe(0);
    expect(delta(m1, 'governance_approvals_total', { result: 'accepted' })).toBe(3);
    expect(delta(m1, 'governance_approvals_total', { result: 'invalid_signature' })).toBe(2);
    expect(delta(m1, 'governance_approvals_total', { result: 'stale' })).toBe(1);
    expect(delta(m1, 'governance_commit_approvals_total')).toBe(2);
    expect(delta(m1, 'commit_latency_seconds_count')).toBe(1);
    expect(sampleValue(m1, 'commit_latency_seconds_sum')).toBeGreaterThan(0);
    // alice (P1), carol twice, alice and bob (P2), carol again: at least one verification each.
    expect(delta(m1, 'approval_verify_seconds_count')).toBeGreaterThanOrEqual(5);
    expect(delta(m1, 'registry_head_version')).toBe(1);
    expect(delta(m1, 'registry_descriptors')).toBe(2);
    expect(sampleValue(m1, 'registry_pending_proposals')).toBe(0);
    expect(delta(m1, 'rejected_total', { reason: 'bad_signature' })).toBe(2);
    expect(delta(m1, 'rejected_total', { reason: 'stale_version' })).toBe(1);
    const approvalsRoute = { route: '/registry/proposals/:id/approvals', method: 'POST', plane: 'write' };
    expect(delta(m1, 'http_requests_total', { ...approvalsRoute, code: '422' })).toBe(2);
    expect(delta(m1, 'http_requests_total', { ...approvalsRoute, code: '409' })).toBe(1);
    expect(delta(m1, 'request_latency_seconds_count', approvalsRoute)).toBe(3);
    expect(delta(m1, 'http_requests_total', { route: '/registry/proposals', method: 'POST', code: '201', plane: 'write' })).toBe(2);
  });

  it('counts what is refused before any route sees it: cut connections and malformed URLs', async () => {
    const m0 = await scrape(reg);
    const { port } = new URL(reg.url);
    const raw = (bytes: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port: Number(port) }, () => socket.write(bytes));
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
    expect(await raw(`GET /registry/head HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect(await raw('NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
    // A percent-encoding that decodes to no text: Fastify refuses it before routing.
    expect((await request(reg.url, 'GET', '/registry/proposals/%E0%A4%A')).status).toBe(400);
    const m1 = await scrape(reg);
    const delta = (reason: string) => sampleValue(m1, 'rejected_total', { reason }) - sampleValue(m0, 'rejected_total', { reason });
    expect(delta('headers_too_large')).toBe(1);
    expect(delta('bad_http')).toBe(1);
    expect(delta('bad_request')).toBe(1);
    const answered400 = (m: Map<string, Family>) =>
      m
        .get('http_requests_total')!
        .samples.filter((s) => s.labels.code === '400')
        .reduce((n, s) => n + s.value, 0);
    expect(answered400(m1) - answered400(m0)).toBe(1);
  });

  it('says whether the write plane is ready as /readyz does, and counts the log on disk', async () => {
    const log = (reg.writer as unknown as { log: { storeProblem: string | undefined } }).log;
    log.storeProblem = 'the disk is full';
    try {
      expect((await request(reg.url, 'GET', '/readyz')).json).toEqual({ read: true, write: false, reasons: ['store: the disk is full'] });
      expect(sampleValue(await scrape(reg), 'registry_write_ready')).toBe(0);
    } finally {
      log.storeProblem = undefined;
    }
    expect(sampleValue(await scrape(reg), 'registry_write_ready')).toBe(1);
    const size = (f: string) => {
      try {
        return statSync(f).size;
      } catch {
        return 0;
      }
    };
    const bytes = sampleValue(await scrape(reg), 'registry_storage_bytes');
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBe(size(reg.db) + size(`${reg.db}-wal`));
  });
});

describe('a stream subscriber that falls behind', () => {
  let reg: TestRegistry;
  let c: Committer;
  beforeAll(async () => {
    const two = signers('alice', 'bob');
    reg = await startTestRegistry(genesisRecord('lagging', two, 1), {
      config: { streamQueueFrames: 4, streamQueueBytes: 1024, synchronous: 'NORMAL' },
    });
    c = new Committer(() => reg.url, 'lagging', two[0]!);
  });
  afterAll(() => reg.close());

  it('is counted in bus_lagged_total, and leaves sse_subscribers', async () => {
    const stalled = await stalledSubscriber(`${reg.url}/registry/stream`);
    const healthy = await subscribe(`${reg.url}/registry/stream`);
    const m0 = await scrape(reg);
    expect(sampleValue(m0, 'sse_subscribers')).toBe(2);
    expect(sampleValue(m0, 'bus_lagged_total')).toBe(0);
    // Streams are not requests in flight: only the scrape is.
    expect(sampleValue(m0, 'http_requests_in_flight')).toBe(1);
    // Frames of ~20 KB fill the stalled socket's buffers, then its queue passes its bound.
    const ids = Array.from({ length: 100 }, (_, j) => `${'x'.repeat(195)}-${j}`);
    let lagged = 0;
    for (let i = 1; i <= 3000 && lagged === 0; i++) {
      await c.commit(ids.map((id): Op => put(id, {}, { i })));
      if (i % 10 === 0) lagged = sampleValue(await scrape(reg), 'bus_lagged_total');
    }
    expect(lagged).toBe(1);
    const m1 = await scrape(reg);
    expect(sampleValue(m1, 'sse_subscribers')).toBe(1);
    stalled.socket.destroy();
    healthy.close();
  }, 120_000);
});
