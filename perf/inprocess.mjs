// In-process costs of the read plane, without HTTP: a descriptor lookup (the index and the
// answer's bytes), the filter `labels.status == 'online' AND labels.region == 'us-west'` over
// 1,000 descriptors with and without the index, and a filtered page of 100 over 10,000.
// Usage: npm run perf:inprocess [-- --iterations 20000]
import { parseArgs } from 'node:util';
import { compileQuery, matches, parseFilter } from '../dist/core/filter.js';
import { DescriptorIndex, toItem } from '../dist/state/descriptor-index.js';

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '20000' } } });
const iterations = Number(values.iterations);
const REGIONS = ['us-west', 'us-east', 'eu-west', 'eu-central', 'ap-south'];

function build(n) {
  const index = new DescriptorIndex();
  index.beginBulk();
  for (let i = 0; i < n; i++) {
    const descriptor = {
      id: `svc-${String(i).padStart(6, '0')}`,
      kind: i % 2 ? 'service' : 'node',
      labels: { region: REGIONS[i % 5], status: i % 10 < 5 ? 'online' : 'offline', tier: i % 3 ? 'silver' : 'gold' },
      body: { addr: `10.0.${i >> 8}.${i & 255}:443`, weight: i % 100 },
    };
    index.set(toItem(descriptor, 1));
  }
  index.endBulk();
  return index;
}

/** Runs `fn` `iterations` times after a warm-up; percentiles in microseconds. */
function measure(fn, n = iterations) {
  for (let i = 0; i < Math.min(n, 2000); i++) fn(i);
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    fn(i);
    times[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  times.sort();
  const at = (p) => times[Math.min(n - 1, Math.floor(p * n))];
  return { p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

const FILTER = "labels.status == 'online' AND labels.region == 'us-west'";
const small = build(1000);
const large = build(10000);
const compiled = compileQuery(FILTER, undefined);
let sink = 0;

const rows = [];
const row = (name, r, target) => rows.push(`| ${name} | ${r.p50.toFixed(2)} | ${r.p95.toFixed(2)} | ${r.p99.toFixed(2)} | ${target} |`);

row(
  'lookup by id, 10k descriptors (index + answer bytes)',
  measure((i) => {
    const item = large.get(`svc-${String((i * 7919) % 10000).padStart(6, '0')}`);
    sink += `{"version":1,"changed_in":${item.changedIn},"descriptor":${item.json}}`.length;
  }),
  'p99 < 10 µs',
);
row(
  'filter over 1,000, with the index (compiled once)',
  measure(() => {
    sink += small.page({ matches: compiled.matches, hints: compiled.hints, limit: 1000 }).items.length;
  }),
  '< 20 µs (the design replaced: 93 µs)',
);
row(
  'filter over 1,000, with the index (parsed each time)',
  measure(() => {
    const q = compileQuery(FILTER, undefined);
    sink += small.page({ matches: q.matches, hints: q.hints, limit: 1000 }).items.length;
  }),
  '',
);
const parsed = parseFilter(FILTER);
row(
  'filter over 1,000, full scan (no index)',
  measure(() => {
    sink += small.page({ matches: (d) => matches(parsed, d), limit: 1000 }).items.length;
  }),
  '',
);
row(
  'filtered page of 100 over 10,000 (parsed each time)',
  measure(() => {
    const q = compileQuery(FILTER, undefined);
    sink += large.page({ matches: q.matches, hints: q.hints, limit: 100 }).items.length;
  }),
  'p95 < 5 ms',
);

const matched = small.page({ matches: compiled.matches, hints: compiled.hints, limit: 1000 }).items.length;
console.log(
  `In process, ${iterations} iterations each, after a warm-up; microseconds. The filter matches ${matched} of 1,000 (checksum ${sink % 997}).`,
);
console.log('');
console.log('| operation | p50 µs | p95 µs | p99 µs | target |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(r);
