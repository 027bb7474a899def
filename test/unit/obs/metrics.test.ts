// RegistryMetrics in process: histogram buckets as Prometheus reads them (upper bounds
// inclusive, cumulative), counters kept apart per registry, the governance counters taken from
// audit events, and the gauges read at scrape time.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BAD_SIGNATURE, EXPIRED, NO_CURRENT_SIGNER, NOT_A_SIGNER, STALE } from '../../../src/core/approvals.js';
import { generateKeyPair, signApproval } from '../../../src/core/crypto.js';
import { HistogramCell, RegistryMetrics, type MetricSources } from '../../../src/obs/metrics.js';
import { parseExposition, sampleValue } from '../../helpers/prometheus.js';

function sources(overrides: Partial<MetricSources> = {}): MetricSources {
  return {
    headVersion: () => 7,
    descriptors: () => 3,
    pendingProposals: () => 2,
    subscribers: () => 5,
    lagged: () => 1,
    unauditedRefusals: () => 0,
    writeBlockers: () => [],
    storageFiles: [],
    checkpointAge: () => 42,
    checkpointVersion: () => 1000,
    ...overrides,
  };
}

describe('HistogramCell', () => {
  it("puts a value on a bound in that bound's bucket, and past the last one in +Inf", () => {
    const h = new HistogramCell([0.001, 0.01, 0.1]);
    for (const v of [0, 0.001, 0.0010001, 0.01, 0.05, 0.1, 7]) h.observe(v);
    expect(h.counts).toEqual([2, 2, 2, 1]);
    expect(h.count).toBe(7);
    expect(h.sum).toBeCloseTo(7.1620001, 9);
  });
});

describe('RegistryMetrics', () => {
  it('exposes cumulative buckets, sums and counts per route, and keeps each registry apart', async () => {
    const a = new RegistryMetrics(sources());
    const b = new RegistryMetrics(sources());
    const head = a.route('/registry/head', 'GET', 'read');
    head.answered(200, 0.05);
    head.answered(200, 3);
    head.answered(304, 0.02);
    a.route('/registry/stream', 'GET', 'read', false).answered(200, 60_000);
    const fa = parseExposition(await a.exposition());
    const fb = parseExposition(await b.exposition());
    const labels = { route: '/registry/head', method: 'GET', plane: 'read' };
    expect(sampleValue(fa, 'http_requests_total', { ...labels, code: '200' })).toBe(2);
    expect(sampleValue(fa, 'http_requests_total', { ...labels, code: '304' })).toBe(1);
    expect(sampleValue(fa, 'request_latency_seconds_bucket', { ...labels, le: '0.0001' })).toBe(2);
    expect(sampleValue(fa, 'request_latency_seconds_bucket', { ...labels, le: '0.0025' })).toBe(2);
    expect(sampleValue(fa, 'request_latency_seconds_bucket', { ...labels, le: '0.005' })).toBe(3);
    expect(sampleValue(fa, 'request_latency_seconds_bucket', { ...labels, le: '+Inf' })).toBe(3);
    expect(sampleValue(fa, 'request_latency_seconds_count', labels)).toBe(3);
    expect(sampleValue(fa, 'request_latency_seconds_sum', labels)).toBeCloseTo(0.00307, 9);
    // A stream is counted, not timed.
    expect(sampleValue(fa, 'http_requests_total', { route: '/registry/stream', code: '200' })).toBe(1);
    expect(fa.get('request_latency_seconds')!.samples.some((s) => s.labels.route === '/registry/stream')).toBe(false);
    // The other registry saw nothing.
    expect(fb.get('http_requests_total')!.samples).toEqual([]);
    // Both carry the process metrics.
    expect(fa.has('process_cpu_seconds_total') && fb.has('process_cpu_seconds_total')).toBe(true);
  });

  it('counts refusals by reason, and starts with the known reasons at 0', async () => {
    const m = new RegistryMetrics(sources());
    m.rejected('rate_limited');
    m.rejected('rate_limited');
    m.rejected('frozen');
    const f = parseExposition(await m.exposition());
    expect(sampleValue(f, 'rejected_total', { reason: 'rate_limited' })).toBe(2);
    expect(sampleValue(f, 'rejected_total', { reason: 'frozen' })).toBe(1);
    expect(f.get('rejected_total')!.samples.find((s) => s.labels.reason === 'payload_too_large')?.value).toBe(0);
  });

  it('counts proposals and approvals from audit events, and invalid signatures from the writer', async () => {
    let unaudited = 0;
    const m = new RegistryMetrics(sources({ unauditedRefusals: () => unaudited }));
    m.audited([
      { kind: 'proposal_received' },
      { kind: 'approval_accepted' },
      { kind: 'approval_accepted' },
      { kind: 'committed' },
      { kind: 'proposal_stale' },
      { kind: 'proposal_stale' },
      { kind: 'proposal_expired' },
      { kind: 'approval_refused', reason: NOT_A_SIGNER },
      { kind: 'approval_refused', reason: NO_CURRENT_SIGNER },
      { kind: 'approval_refused', reason: STALE },
      { kind: 'approval_refused', reason: EXPIRED },
      { kind: 'approval_refused', reason: 'the proposal is for registry other; this is mine' },
      { kind: 'frozen', reason: 'maintenance' },
    ]);
    unaudited = 3;
    let f = parseExposition(await m.exposition());
    const proposals = (status: string) => sampleValue(f, 'governance_proposals_total', { status });
    const approvals = (result: string) => sampleValue(f, 'governance_approvals_total', { result });
    expect([proposals('received'), proposals('committed'), proposals('stale'), proposals('expired')]).toEqual([1, 1, 2, 1]);
    expect(approvals('accepted')).toBe(2);
    expect(approvals('invalid_signature')).toBe(3);
    for (const r of ['not_a_signer', 'no_current_signer', 'stale', 'expired', 'wrong_registry']) expect(approvals(r), r).toBe(1);
    // Brought up to date at each scrape, never counted twice.
    unaudited = 4;
    f = parseExposition(await m.exposition());
    expect(approvals('invalid_signature')).toBe(4);
    f = parseExposition(await m.exposition());
    expect(approvals('invalid_signature')).toBe(4);
    // BAD_SIGNATURE is never audited: it is the writer's count, not an audit reason.
    expect(BAD_SIGNATURE).not.toBe(NOT_A_SIGNER);
  });

  it('times commits and approval verifications', async () => {
    const m = new RegistryMetrics(sources());
    m.committed(0.8, 3);
    m.committed(0.01, 2);
    const key = generateKeyPair();
    const hash = `b3:${'ab'.repeat(32)}`;
    const verifier = m.timedVerifier();
    expect(verifier.verify(key.publicKey, hash, signApproval(key.secretKey, hash))).toBe(true);
    expect(verifier.verify(key.publicKey, hash, '00'.repeat(64))).toBe(false);
    const f = parseExposition(await m.exposition());
    expect(sampleValue(f, 'commit_latency_seconds_count')).toBe(2);
    expect(sampleValue(f, 'commit_latency_seconds_bucket', { le: '0.75' })).toBe(1);
    expect(sampleValue(f, 'commit_latency_seconds_bucket', { le: '1' })).toBe(2);
    expect(sampleValue(f, 'governance_commit_approvals_total')).toBe(5);
    expect(sampleValue(f, 'approval_verify_seconds_count')).toBe(2);
    expect(sampleValue(f, 'approval_verify_seconds_sum')).toBeGreaterThan(0);
  });

  it('reads the gauges when scraped: head, descriptors, pending, subscribers, lag, write readiness, storage', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'metrics-'));
    writeFileSync(join(dir, 'db'), Buffer.alloc(1000));
    writeFileSync(join(dir, 'db-wal'), Buffer.alloc(234));
    let blockers: string[] = [];
    const m = new RegistryMetrics(
      sources({ writeBlockers: () => blockers, storageFiles: [join(dir, 'db'), join(dir, 'db-wal'), join(dir, 'absent')] }),
    );
    m.inFlight = 4;
    let f = parseExposition(await m.exposition());
    expect(sampleValue(f, 'registry_head_version')).toBe(7);
    expect(sampleValue(f, 'registry_descriptors')).toBe(3);
    expect(sampleValue(f, 'registry_pending_proposals')).toBe(2);
    expect(sampleValue(f, 'sse_subscribers')).toBe(5);
    expect(sampleValue(f, 'bus_lagged_total')).toBe(1);
    expect(sampleValue(f, 'http_requests_in_flight')).toBe(4);
    expect(sampleValue(f, 'registry_storage_bytes')).toBe(1234);
    expect(sampleValue(f, 'registry_checkpoint_age_seconds')).toBe(42);
    expect(sampleValue(f, 'registry_checkpoint_version')).toBe(1000);
    expect(sampleValue(f, 'registry_write_ready')).toBe(1);
    blockers = ['frozen: maintenance'];
    f = parseExposition(await m.exposition());
    expect(sampleValue(f, 'registry_write_ready')).toBe(0);
  });
});
