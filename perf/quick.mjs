// A quick local measurement: head and version reads against a bare Fastify route serving the
// same bytes (measured in the same run, reported as ratios), and full governance flows
// (propose with 1 approval + 1 more approval -> commit, 2-of-3) over HTTP.
// Usage: npm run perf [-- --seconds 10 --connections 64 --flows 500 --descriptors 1000]
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
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '64' },
    flows: { type: 'string', default: '500' },
    descriptors: { type: 'string', default: '1000' },
  },
});
const seconds = Number(values.seconds);
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
const payload = buildGenesisPayload('perf', { threshold: 2, signers: keys.map((k) => ({ id: k.id, public_key: k.publicKey })) }, formatTime(Date.now()));
const gHash = hashOf(payload);
const genesis = assembleGenesis(payload, keys.slice(0, 2).map((k) => ({ signer_id: k.id, sig: signApproval(k.secretKey, gHash) })), formatTime(Date.now()));
writeFileSync(join(dir, 'genesis.json'), JSON.stringify(genesis));
const registry = await serve(['dist/cli/main.js', 'serve', '--genesis', join(dir, 'genesis.json'), '--db', join(dir, 'registry.db'), '--port', '0', '--log-level', 'warn']);
const base = registry.url;

async function flow(ops) {
  const head = await (await fetch(`${base}/registry/head`)).json();
  const now = Date.now();
  const p = { type: 'registry.proposal', schema_version: 1, registry_id: 'perf', base_version: head.version, base_hash: head.hash, ops, created_at: formatTime(now), expires_at: formatTime(now + 3600_000) };
  const id = hashOf(p);
  const t0 = performance.now();
  await post(`${base}/registry/proposals`, { payload: p, approvals: [{ signer_id: 'alice', sig: signApproval(keys[0].secretKey, id) }] });
  const r = await post(`${base}/registry/proposals/${id}/approvals`, { signer_id: 'bob', sig: signApproval(keys[1].secretKey, id) });
  if (r.status !== 'committed') throw new Error(`not committed: ${JSON.stringify(r)}`);
  return performance.now() - t0;
}

// Seed: descriptors in commits of 100.
for (let i = 0; i < descriptors; i += 100) {
  await flow(Array.from({ length: Math.min(100, descriptors - i) }, (_, j) => ({ op: 'put', descriptor: { id: `svc-${i + j}`, kind: 'service', labels: { region: `r${j % 5}` }, body: { addr: `10.0.${i / 100}.${j}:443` } } })));
}

// Governance flows, one after another (a commit's successor must be based on it).
const flowMs = [];
const t0 = performance.now();
for (let i = 0; i < flows; i++) flowMs.push(await flow([{ op: 'put', descriptor: { id: `flow-${i % 50}`, kind: 'service', labels: {}, body: { i } } }]));
const flowSeconds = (performance.now() - t0) / 1000;
flowMs.sort((a, b) => a - b);

const headRes = await fetch(`${base}/registry/head`);
const headBody = Buffer.from(await headRes.arrayBuffer());
writeFileSync(join(dir, 'head.json'), headBody);
const bare = await serve(['perf/bare-server.mjs', join(dir, 'head.json'), headRes.headers.get('etag')]);

async function load(url, headers = {}, expect = 200) {
  await autocannon({ url, connections, duration: 1, headers }); // warm-up, not reported
  const r = await autocannon({ url, connections, duration: seconds, headers });
  const unexpected = r.errors + r.timeouts + (expect === 200 ? r.non2xx : r.requests.total - (r['3xx'] ?? 0));
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: unexpected };
}

const results = {};
results.bare = await load(`${bare.url}/bare`);
results.head = await load(`${base}/registry/head`);
results.version = await load(`${base}/registry/1`);
results.head304 = await load(`${base}/registry/head`, { 'if-none-match': headRes.headers.get('etag') }, 304);
registry.child.kill('SIGTERM');
bare.child.kill('SIGTERM');

const row = (name, r) => `| ${name} | ${Math.round(r.rps)} | ${(r.rps / results.bare.rps).toFixed(2)}x | ${r.p50} | ${r.p99} | ${r.errors} |`;
const table = [
  `Reads: ${connections} connections, ${seconds} s each, ${descriptors + 50} descriptors, one machine, one run.`,
  '',
  '| scenario | req/s | vs bare Fastify | p50 ms | p99 ms | errors |',
  '|---|---|---|---|---|---|',
  row('bare Fastify, same bytes', results.bare),
  row('GET /registry/head', results.head),
  row('GET /registry/1 (immutable)', results.version),
  row('GET /registry/head, 304', results.head304),
  '',
  `Governance flows (propose + 1 approval, then 1 more approval -> commit, 2-of-3, synchronous=FULL), ${flows} in sequence:`,
  '',
  '| commits/s | p50 ms | p95 ms | p99 ms |',
  '|---|---|---|---|',
  `| ${Math.round(flows / flowSeconds)} | ${pct(flowMs, 50).toFixed(2)} | ${pct(flowMs, 95).toFixed(2)} | ${pct(flowMs, 99).toFixed(2)} |`,
].join('\n');
mkdirSync('perf/results', { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
writeFileSync(`perf/results/${stamp}.json`, JSON.stringify({ at: new Date().toISOString(), connections, seconds, flows, descriptors, results, flow: { perSecond: flows / flowSeconds, p50: pct(flowMs, 50), p95: pct(flowMs, 95), p99: pct(flowMs, 99) } }, null, 2));
console.log(table);
