// A quick local measurement: reads (head, version, descriptor lookup, a filtered page of 100,
// a batch of 50) against a bare Fastify route serving the same bytes (measured in the same run,
// reported as ratios), and full governance flows (propose with 1 approval + 1 more approval ->
// commit, 2-of-3) over HTTP.
// Usage: npm run perf [-- --seconds 5 --rounds 3 --connections 64 --flows 500 --descriptors 10000]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { generateKeyPair, signApproval } from '../dist/core/crypto.js';
import { formatTime, hashOf } from '../dist/core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../dist/core/records.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    flows: { type: 'string', default: '500' },
    descriptors: { type: 'string', default: '10000' },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const flows = Number(values.flows);
const descriptors = Number(values.descriptors);

function serve(args) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}`)));
  });
}

async function post(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${res.status} ${JSON.stringify(json)}`);
  return json;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

const dir = mkdtempSync(join(tmpdir(), 'registry-perf-'));
const keys = ['alice', 'bob', 'carol'].map((id) => ({ id, ...generateKeyPair() }));
const payload = buildGenesisPayload(
  'perf',
  { threshold: 2, signers: keys.map((k) => ({ id: k.id, public_key: k.publicKey })) },
  formatTime(Date.now()),
);
const gHash = hashOf(payload);
const genesis = assembleGenesis(
  payload,
  keys.slice(0, 2).map((k) => ({ signer_id: k.id, sig: signApproval(k.secretKey, gHash) })),
);
writeFileSync(join(dir, 'genesis.json'), JSON.stringify(genesis));
const registry = await serve([
  'dist/cli/main.js',
  'serve',
  '--genesis',
  join(dir, 'genesis.json'),
  '--db',
  join(dir, 'registry.db'),
  '--port',
  '0',
  '--log-level',
  'warn',
]);
const base = registry.url;

async function flow(ops) {
  const head = await (await fetch(`${base}/registry/head`)).json();
  const now = Date.now();
  const p = {
    type: 'registry.proposal',
    schema_version: 1,
    registry_id: 'perf',
    base_version: head.version,
    base_hash: head.hash,
    ops,
    created_at: formatTime(now),
    expires_at: formatTime(now + 3600_000),
  };
  const id = hashOf(p);
  const a1 = { signer_id: 'alice', sig: signApproval(keys[0].secretKey, id) };
  const a2 = { signer_id: 'bob', sig: signApproval(keys[1].secretKey, id) };
  const t0 = performance.now();
  await post(`${base}/registry/proposals`, { payload: p, approvals: [a1] });
  const r = await post(`${base}/registry/proposals/${id}/approvals`, a2);
  if (r.status !== 'committed') throw new Error(`not committed: ${JSON.stringify(r)}`);
  return performance.now() - t0;
}

// Seed: descriptors in commits of 100.
for (let i = 0; i < descriptors; i += 100) {
  await flow(
    Array.from({ length: Math.min(100, descriptors - i) }, (_, j) => ({
      op: 'put',
      descriptor: {
        id: `svc-${i + j}`,
        kind: j % 2 ? 'service' : 'node',
        // One in ten is online in us-west: a filtered page of 100 needs 1,000 of 10,000 candidates
        // by region, and the index narrows to those.
        labels: { region: ['us-west', 'us-east', 'eu-west', 'eu-central', 'ap-south'][j % 5], status: j % 10 < 5 ? 'online' : 'offline' },
        body: { addr: `10.0.${i / 100}.${j}:443` },
      },
    })),
  );
}

// Governance flows, one after another (a commit's successor must be based on it).
const flowMs = [];
const t0 = performance.now();
for (let i = 0; i < flows; i++)
  flowMs.push(await flow([{ op: 'put', descriptor: { id: `flow-${i % 50}`, kind: 'service', labels: {}, body: { i } } }]));
const flowSeconds = (performance.now() - t0) / 1000;
flowMs.sort((a, b) => a - b);

// The reference serves byte-identical answers: the head, and version 1 (a seed commit).
const headRes = await fetch(`${base}/registry/head`);
writeFileSync(join(dir, 'head.json'), Buffer.from(await headRes.arrayBuffer()));
const versionRes = await fetch(`${base}/registry/1`);
writeFileSync(join(dir, 'version.json'), Buffer.from(await versionRes.arrayBuffer()));
const FILTER = `/registry/head/descriptors?limit=100&filter=${encodeURIComponent("labels.status == 'online' AND labels.region == 'us-west'")}`;
const LOOKUP = `/registry/descriptors/svc-${Math.floor(descriptors / 2)}`;
const BATCH = { ids: Array.from({ length: 50 }, (_, i) => `svc-${(i * 197) % descriptors}`) };
const reference = async (name, path, init) => {
  const res = await fetch(`${base}${path}`, init);
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  writeFileSync(join(dir, `${name}.json`), Buffer.from(await res.arrayBuffer()));
  return { res, arg: `${name}=${join(dir, `${name}.json`)}=${res.headers.get('etag') ?? ''}=${init?.method ?? 'GET'}` };
};
const lookupRef = await reference('lookup', LOOKUP);
const filterRef = await reference('filter', FILTER);
const batchInit = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(BATCH) };
const batchRef = await reference('batch', '/registry/descriptors:batch', batchInit);
const bare = await serve([
  'perf/bare-server.mjs',
  `head=${join(dir, 'head.json')}=${headRes.headers.get('etag')}=GET`,
  `version=${join(dir, 'version.json')}=${versionRes.headers.get('etag')}=GET`,
  lookupRef.arg,
  filterRef.arg,
  batchRef.arg,
]);

async function load(url, headers = {}, expect = 200, duration = seconds, post = undefined) {
  const r = await autocannon({
    url,
    connections,
    duration,
    headers: post ? { ...headers, 'content-type': 'application/json' } : headers,
    ...(post ? { method: 'POST', body: post } : {}),
  });
  const unexpected = r.errors + r.timeouts + (expect === 200 ? r.non2xx : r.requests.total - (r['3xx'] ?? 0));
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: unexpected };
}

// Each scenario runs back to back with its bare reference, in several rounds, and reports the
// median: these machines are shared, and a ratio measured minutes apart means little.
const etag = headRes.headers.get('etag');
const scenarios = [
  { name: 'GET /registry/head', ours: [`${base}/registry/head`], bare: [`${bare.url}/bare/head`] },
  { name: 'GET /registry/head, 304', ours: [`${base}/registry/head`, { 'if-none-match': etag }, 304], bare: [`${bare.url}/bare/head`] },
  { name: 'GET /registry/1 (immutable)', ours: [`${base}/registry/1`], bare: [`${bare.url}/bare/version`] },
  { name: 'GET /registry/descriptors/{id}', ours: [`${base}${LOOKUP}`], bare: [`${bare.url}/bare/lookup`] },
  { name: 'filtered page of 100 over 10k', ours: [`${base}${FILTER}`], bare: [`${bare.url}/bare/filter`] },
  {
    name: 'POST descriptors:batch, 50 ids',
    ours: [`${base}/registry/descriptors:batch`, {}, 200, batchInit.body],
    bare: [`${bare.url}/bare/batch`, {}, 200, batchInit.body],
  },
];
for (const s of scenarios) {
  await load(s.bare[0], {}, 200, 1, s.bare[3]); // warm-up, not reported
  await load(s.ours[0], s.ours[1] ?? {}, s.ours[2] ?? 200, 1, s.ours[3]);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = {};
for (const s of scenarios) results[s.name] = { ours: [], bare: [] };
for (let round = 0; round < rounds; round++) {
  for (const s of scenarios) {
    results[s.name].bare.push(await load(s.bare[0], {}, 200, seconds, s.bare[3]));
    results[s.name].ours.push(await load(s.ours[0], s.ours[1] ?? {}, s.ours[2] ?? 200, seconds, s.ours[3]));
  }
}
registry.child.kill('SIGTERM');
bare.child.kill('SIGTERM');

// The writer alone, in process (no HTTP, no client): what the single writer can sustain.
const { startRegistry } = await import('../dist/server.js');
const { createLogger } = await import('../dist/obs/logger.js');
const { DEFAULTS } = await import('../dist/config/config.js');
const local = await startRegistry(
  { ...DEFAULTS, genesis: join(dir, 'genesis.json'), db: join(dir, 'writer.db'), port: 0, logLevel: 'silent' },
  createLogger('silent'),
);
const writerMs = [];
const tw = performance.now();
for (let i = 0; i < flows; i++) {
  const head = local.view.head;
  const now = Date.now();
  const p = {
    type: 'registry.proposal',
    schema_version: 1,
    registry_id: 'perf',
    base_version: head.version,
    base_hash: head.hash,
    ops: [{ op: 'put', descriptor: { id: `flow-${i % 50}`, kind: 'service', labels: {}, body: { i } } }],
    created_at: formatTime(now),
    expires_at: formatTime(now + 3600_000),
  };
  const id = hashOf(p);
  const a1 = { signer_id: 'alice', sig: signApproval(keys[0].secretKey, id) };
  const a2 = { signer_id: 'bob', sig: signApproval(keys[1].secretKey, id) };
  const t = performance.now();
  await local.writer.submit({ payload: p, approvals: [a1] });
  await local.writer.approve(id, a2);
  writerMs.push(performance.now() - t);
}
const writerSeconds = (performance.now() - tw) / 1000;
await local.close();
writerMs.sort((a, b) => a - b);

const rowsOf = (name) => {
  const { ours, bare: ref } = results[name];
  const ratio = median(ours.map((o, i) => o.rps / ref[i].rps));
  const errors = ours.reduce((n, o) => n + o.errors, 0);
  return `| ${name} | ${Math.round(median(ours.map((o) => o.rps)))} | ${Math.round(median(ref.map((o) => o.rps)))} | ${ratio.toFixed(2)}x | ${median(ours.map((o) => o.p50))} | ${median(ours.map((o) => o.p99))} | ${errors} |`;
};
const table = [
  `Reads: ${connections} connections, ${rounds} rounds of ${seconds} s per scenario, each back to back with a bare Fastify route serving the same bytes (head ${headRes.headers.get('content-length')} B, version ${versionRes.headers.get('content-length')} B, lookup ${lookupRef.res.headers.get('content-length')} B, page ${filterRef.res.headers.get('content-length')} B, batch ${batchRef.res.headers.get('content-length')} B); medians; ${descriptors + 50} descriptors.`,
  '',
  '| scenario | req/s | bare Fastify req/s | ratio | p50 ms | p99 ms | errors |',
  '|---|---|---|---|---|---|---|',
  ...scenarios.map((s) => rowsOf(s.name)),
  '',
  `Governance flows (propose + 1 approval, then 1 more approval -> commit, 2-of-3, synchronous=FULL), ${flows} in sequence.`,
  'Latency: the propose and approve steps (signing excluded); rate: the whole loop (head read and signing included).',
  '',
  '| path | commits/s | p50 ms | p95 ms | p99 ms |',
  '|---|---|---|---|---|',
  `| over HTTP, one client | ${Math.round(flows / flowSeconds)} | ${pct(flowMs, 50).toFixed(2)} | ${pct(flowMs, 95).toFixed(2)} | ${pct(flowMs, 99).toFixed(2)} |`,
  `| the writer alone, in process (signing excluded) | ${Math.round(flows / writerSeconds)} | ${pct(writerMs, 50).toFixed(2)} | ${pct(writerMs, 95).toFixed(2)} | ${pct(writerMs, 99).toFixed(2)} |`,
].join('\n');
mkdirSync('perf/results', { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
writeFileSync(
  `perf/results/${stamp}.json`,
  JSON.stringify(
    {
      at: new Date().toISOString(),
      connections,
      seconds,
      rounds,
      flows,
      descriptors,
      results,
      flow: { perSecond: flows / flowSeconds, p50: pct(flowMs, 50), p95: pct(flowMs, 95), p99: pct(flowMs, 99) },
      writer: { perSecond: flows / writerSeconds, p50: pct(writerMs, 50), p95: pct(writerMs, 95), p99: pct(writerMs, 99) },
    },
    null,
    2,
  ),
);
console.log(table);
