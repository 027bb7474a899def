// Head reads while one address floods writes (issue 14: "while one address floods writes, head
// reads from another keep their p99"). The registry runs as `registry serve` in a child process;
// a worker thread floods POST /registry/proposals from 127.0.0.2 over --flood-connections
// keep-alive connections, each sending its next write as soon as the last is answered, while
// autocannon reads GET /registry/head from 127.0.0.1 (another address, Linux loopback) over
// --connections connections. Each scenario gets a fresh registry:
//
//   baseline        no flood
//   forged          the flood: proposals (~1 KB) approved in a signer's name with a signature
//                   that does not verify (422: what a party without a key can send), default limits
//   forged-nolimit  the same with the write rate limits off (--write-rate-per-address 0 ...)
//   signer          the flood: valid proposals by one signer, each committing at once (1-of-3
//                   registry), default limits; the per-signer bucket answers 429 past its burst
//   signer-nolimit  the same with the limits off
//
// Prints a Markdown table (head req/s, p50, p99; the flood's answers by status) and writes
// perf/results/overload-<timestamp>.json.
// Usage: npm run perf:overload [-- --seconds 10 --connections 32 --flood-connections 8 --only forged]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';
import { generateKeyPair, signApproval } from '../dist/core/crypto.js';
import { formatTime, hashOf } from '../dist/core/encoding.js';
import { serveRegistry } from './lib/serve.mjs';

const REGISTRY_ID = 'overload';
const LIMITS_OFF = ['--write-rate-per-address', '0', '--write-rate-per-signer', '0'];

// -- the flood (worker thread) ------------------------------------------------------------------

if (!isMainThread) {
  const { url, kind, connections, seconds, from, alice } = workerData;
  const agent = new Agent({ keepAlive: true, maxSockets: connections, localAddress: from });
  const { hostname, port } = new URL(url);
  const call = (method, path, body) =>
    new Promise((resolve) => {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const req = httpRequest(
        {
          host: hostname,
          port,
          method,
          path,
          agent,
          headers: text === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (data += d));
          res.on('end', () => resolve({ status: res.statusCode, data }));
        },
      );
      req.on('error', () => resolve({ status: 'error', data: '' }));
      req.end(text);
    });
  const stranger = generateKeyPair();
  let n = 0;
  const proposalOn = (head) => {
    const now = Date.now();
    return {
      type: 'registry.proposal',
      schema_version: 1,
      registry_id: REGISTRY_ID,
      base_version: head.version,
      base_hash: head.hash,
      ops: [{ op: 'put', descriptor: { id: `flood-${n++}`, kind: 'service', labels: { n: String(n) }, body: { pad: 'x'.repeat(600) } } }],
      created_at: formatTime(now),
      expires_at: formatTime(now + 3600_000),
    };
  };
  const counts = {};
  const end = Date.now() + seconds * 1000;
  let head = JSON.parse((await call('GET', '/registry/head')).data);
  const loop = async () => {
    while (Date.now() < end) {
      const p = proposalOn(head);
      const id = hashOf(p);
      // forged: alice's name, a stranger's signature (does not verify). signer: alice's own.
      const sig = signApproval(kind === 'signer' ? alice : stranger.secretKey, id);
      const r = await call('POST', '/registry/proposals', { payload: p, approvals: [{ signer_id: 'alice', sig }] });
      counts[r.status] = (counts[r.status] ?? 0) + 1;
      if (r.status === 201) {
        const v = JSON.parse(r.data);
        if (v.version !== undefined && v.version > head.version) head = JSON.parse((await call('GET', '/registry/head')).data);
      } else if (r.status === 409) head = JSON.parse((await call('GET', '/registry/head')).data);
      else if (r.status === 429 || r.status === 503) {
        // A well-behaved flood would wait Retry-After; this one does not, and sends again at once.
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  agent.destroy();
  parentPort.postMessage(counts);
  process.exit(0);
}

// -- the harness ---------------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    'flood-connections': { type: 'string', default: '8' },
    only: { type: 'string', multiple: true },
  },
});
const seconds = Number(values.seconds);
const connections = Number(values.connections);
const floodConnections = Number(values['flood-connections']);

const SCENARIOS = [
  { key: 'baseline', flood: undefined, args: [] },
  { key: 'forged', flood: 'forged', args: [] },
  { key: 'forged-nolimit', flood: 'forged', args: LIMITS_OFF },
  { key: 'signer', flood: 'signer', args: [] },
  { key: 'signer-nolimit', flood: 'signer', args: LIMITS_OFF },
].filter((s) => !values.only || values.only.some((o) => s.key === o));

const keys = ['alice', 'bob', 'carol'].map((id) => ({ id, ...generateKeyPair() }));

const serve = (dir, args) => serveRegistry(dir, REGISTRY_ID, keys, ['--synchronous', 'NORMAL', ...args]);

const results = [];
for (const s of SCENARIOS) {
  const dir = mkdtempSync(join(tmpdir(), 'registry-overload-'));
  const { child, url } = await serve(dir, s.args);
  try {
    // Warm up the head path first.
    await autocannon({ url: `${url}/registry/head`, connections, duration: 2 });
    const flood = s.flood
      ? new Promise((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), {
            workerData: {
              url,
              kind: s.flood,
              connections: floodConnections,
              seconds: seconds + 1,
              from: '127.0.0.2',
              alice: keys[0].secretKey,
            },
          });
          w.once('message', resolve);
          w.once('error', reject);
        })
      : Promise.resolve({});
    // Let the flood reach its pace, then measure the reads.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const reads = await autocannon({ url: `${url}/registry/head`, connections, duration: seconds });
    const floodCounts = await flood;
    const floodTotal = Object.values(floodCounts).reduce((a, b) => a + b, 0);
    results.push({
      scenario: s.key,
      headRps: Math.round(reads.requests.average),
      headP50: reads.latency.p50,
      headP99: reads.latency.p99,
      headErrors: reads.errors + reads.non2xx,
      floodRps: Math.round(floodTotal / (seconds + 1)),
      flood: floodCounts,
    });
    process.stderr.write(`${s.key}: ${JSON.stringify(results.at(-1))}\n`);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const lines = [
  `Head reads (autocannon, ${connections} connections from 127.0.0.1, ${seconds} s) while a flood of POST /registry/proposals comes from 127.0.0.2 ` +
    `(${floodConnections} keep-alive connections, each sending again as soon as answered), node ${process.version}.`,
  '',
  '| scenario | head req/s | head p50 ms | head p99 ms | head non-2xx | flood req/s | flood answers |',
  '|---|---|---|---|---|---|---|',
  ...results.map(
    (r) =>
      `| ${r.scenario} | ${r.headRps} | ${r.headP50} | ${r.headP99} | ${r.headErrors} | ${r.floodRps} | ${Object.entries(r.flood)
        .map(([status, n]) => `${status}: ${n}`)
        .join(', ')} |`,
  ),
];
mkdirSync('perf/results', { recursive: true });
writeFileSync(
  `perf/results/overload-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  JSON.stringify({ seconds, connections, floodConnections, results }, null, 2),
);
process.stdout.write(lines.join('\n') + '\n');
