// The perf gate's rules (perf/gate-logic.mjs): what fails and what passes, on made-up figures,
// and the committed baselines' shape.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GOLDEN_METRICS, RULES, compare, metricNames, topGrowth, type Measurement } from '../../../perf/gate-logic.mjs';

const baseline: Measurement = {
  profile: 'macronode',
  operations: {
    head: { instructions: 80_000, syscalls: 3, fsyncs: 0 },
    flow: { instructions: 6_000_000, syscalls: 60, fsyncs: 2 },
    verify: { instructions: 1_300_000 },
  },
  rss: { rssMiB: 150 },
};
const present = { checked: true, present: [...GOLDEN_METRICS] };

/** The baseline with `changes` applied to its operations (and the golden metrics present). */
function current(changes: Record<string, Record<string, number>> = {}, extra: Partial<Measurement> = {}): Measurement {
  const operations = structuredClone(baseline.operations!);
  for (const [op, c] of Object.entries(changes)) Object.assign(operations[op]!, c);
  return { profile: 'macronode', operations, rss: { rssMiB: 150 }, metrics: present, ...extra };
}
const failures = (r: ReturnType<typeof compare>) => r.verdicts.filter((v) => v.status === 'fail');

describe('perf gate rules', () => {
  it('passes an unchanged measurement, and one within tolerance', () => {
    expect(compare(baseline, current(), { requireAll: true }).ok).toBe(true);
    const r = compare(
      baseline,
      current(
        { head: { instructions: 88_000, syscalls: 3.3 }, flow: { instructions: 5_000_000, fsyncs: 2.075 } },
        { rss: { rssMiB: 172 } },
      ),
      { requireAll: true },
    );
    expect(failures(r)).toEqual([]);
    expect(r.ok).toBe(true);
  });

  it('fails instructions per operation up 10.1%, naming the operation and the rise', () => {
    const r = compare(baseline, current({ head: { instructions: 88_080 } }));
    expect(r.ok).toBe(false);
    expect(failures(r)).toHaveLength(1);
    const [f] = failures(r);
    expect(f).toMatchObject({ profile: 'macronode', op: 'head', metric: 'instructions', baseline: 80_000, current: 88_080 });
    expect(f!.change).toBeCloseTo(0.101, 6);
    expect(f!.message).toMatch(/macronode head: instructions\/op 88,080 against 80,000 \(\+10\.1%; limit \+10\.0%\): REGRESSION/);
  });

  it('fails an extra JSON round-trip on the head path (a third more instructions)', () => {
    const r = compare(baseline, current({ head: { instructions: 106_000 } }));
    expect(failures(r).map((v) => `${v.op} ${v.metric}`)).toEqual(['head instructions']);
  });

  it('fails system calls per operation up more than 10% (a log line per request: one write more)', () => {
    const r = compare(baseline, current({ head: { syscalls: 4 } }));
    expect(failures(r)).toMatchObject([{ op: 'head', metric: 'syscalls', baseline: 3, current: 4 }]);
    expect(compare(baseline, current({ head: { syscalls: 3.3 } })).ok).toBe(true);
  });

  it('fails any rise in fsyncs per operation: an extra fsync per commit, or one every few commits', () => {
    const extra = compare(baseline, current({ flow: { fsyncs: 3 } }));
    expect(failures(extra)).toMatchObject([{ op: 'flow', metric: 'fsyncs', baseline: 2, current: 3 }]);
    expect(failures(extra)[0]!.message).toMatch(/fsyncs\/op 3\.000 against 2\.000 \(\+1\.000; no rise allowed\): REGRESSION/);
    // One more every eight commits.
    expect(compare(baseline, current({ flow: { fsyncs: 2.125 } })).ok).toBe(false);
    // From none (micronode's reads) to one every five reads.
    expect(compare(baseline, current({ head: { fsyncs: 0.2 } })).ok).toBe(false);
    // A fall is fine; so is the measurement's resolution (checkpoints' fsyncs shared over the commits measured).
    expect(compare(baseline, current({ flow: { fsyncs: 1 } })).ok).toBe(true);
    expect(compare(baseline, current({ flow: { fsyncs: 2.05 } })).ok).toBe(true);
    expect(compare(baseline, current({ flow: { fsyncs: 2 + RULES.fsyncs } })).ok).toBe(true);
  });

  it('fails RSS at the reference load up more than 15%', () => {
    const r = compare(baseline, current({}, { rss: { rssMiB: 173 } }));
    expect(failures(r)).toMatchObject([{ op: 'reference load', metric: 'rss' }]);
    expect(compare(baseline, current({}, { rss: { rssMiB: 172.4 } })).ok).toBe(true);
  });

  it('fails a golden metric missing from /metrics, and allows a common prefix', () => {
    const missing = compare(
      baseline,
      current({}, { metrics: { checked: true, present: ['http_requests_total', 'request_latency_seconds', 'rejected_total'] } }),
    );
    expect(failures(missing)).toMatchObject([{ op: '/metrics', metric: 'golden', current: 'bus_lagged_total' }]);
    expect(failures(missing)[0]!.message).toBe('macronode /metrics: bus_lagged_total MISSING');
    const prefixed = { checked: true, present: GOLDEN_METRICS.map((m) => `registry_${m}`) };
    expect(compare(baseline, current({}, { metrics: prefixed })).ok).toBe(true);
    // Before the service has /metrics: not checked, not failed.
    const unchecked = compare(baseline, current({}, { metrics: { checked: false, why: 'no /metrics route' } }));
    expect(unchecked.ok).toBe(true);
    expect(unchecked.verdicts.find((v) => v.op === '/metrics')?.status).toBe('skipped');
  });

  it('fails an operation the baseline has but the run did not measure, in a full run only', () => {
    const partial = current();
    delete partial.operations!.verify;
    expect(compare(baseline, partial, { requireAll: true }).ok).toBe(false);
    expect(compare(baseline, partial).ok).toBe(true);
    const extra = current({}, {});
    extra.operations!.replay = { instructions: 1 };
    expect(compare(baseline, extra).verdicts.find((v) => v.op === 'replay')?.status).toBe('new');
  });

  it('reports every failure at once', () => {
    const r = compare(baseline, current({ head: { instructions: 100_000, syscalls: 5 }, flow: { fsyncs: 3 } }, { rss: { rssMiB: 200 } }));
    expect(failures(r).map((v) => `${v.op} ${v.metric}`)).toEqual([
      'head instructions',
      'head syscalls',
      'flow fsyncs',
      'reference load rss',
    ]);
  });
});

describe('perf gate helpers', () => {
  it('reads metric family names from an exposition', () => {
    const text = [
      '# HELP http_requests_total Requests.',
      '# TYPE http_requests_total counter',
      'http_requests_total{route="/registry/head",code="200"} 3',
      'request_latency_seconds_bucket{le="0.005"} 1',
      'bus_lagged_total 0',
    ].join('\n');
    expect(metricNames(text).sort()).toEqual(['bus_lagged_total', 'http_requests_total', 'request_latency_seconds_bucket']);
  });

  it('lists the functions whose cost grew most, a new function counting from zero', () => {
    const top = topGrowth({ a: 100, b: 50, c: 10 }, { a: 90, b: 80, c: 10, JSON_parse: 5000 }, 10);
    expect(top).toEqual([
      { name: 'JSON_parse', baseline: 0, current: 5000, growth: 5000 },
      { name: 'b', baseline: 50, current: 80, growth: 30 },
    ]);
    expect(topGrowth({ a: 100 }, { a: 150, b: 1, c: 2, d: 3 }, 2)).toHaveLength(2);
  });

  it('counts a function the baseline does not list as its floor', () => {
    // Under a floor of 40: 'small' had up to 40, so it grew by 5 at most; 'new' by 960 at least.
    expect(topGrowth({ big: 1000 }, { big: 1000, small: 45, new: 1000 }, 10, 40)).toEqual([
      { name: 'new', baseline: 40, current: 1000, growth: 960 },
      { name: 'small', baseline: 40, current: 45, growth: 5 },
    ]);
  });
});

describe('the committed baselines', () => {
  for (const profile of ['micronode', 'macronode']) {
    it(`${profile}: every operation the gate enforces, and they pass against themselves`, () => {
      const b = JSON.parse(readFileSync(`baselines/${profile}.json`, 'utf8')) as Measurement;
      expect(b.profile).toBe(profile);
      const ops = ['head', 'version', 'lookup', 'filter', 'flow', 'fanout100', 'verify', ...(profile === 'macronode' ? ['replay'] : [])];
      expect(Object.keys(b.operations!).sort()).toEqual(ops.sort());
      for (const op of ops) expect(b.operations![op]!.instructions).toBeGreaterThan(0);
      expect(b.rss?.rssMiB).toBeGreaterThan(0);
      expect(compare(b, { ...b, metrics: present }, { requireAll: true }).ok).toBe(true);
    });
  }
});
