// Cluster mode (README → PostgreSQL and cluster mode): three `registry serve --store postgres://…`
// instances on one throw-away PostgreSQL (perf/lib/postgres.mjs), all on the same genesis
// (threshold 1: a proposal with alice's approval commits at once), against one SQLite-mode
// registry (`--db` in a temp dir, synchronous=FULL, the default) as the reference. Both run with
// the perf scripts' raised limits (PERF_LIMITS, perf/lib/registry.mjs) and hold the same 2,000
// seeded descriptors (one proposal of 2,000 puts each) before anything is measured.
//
//   writes  --writers-per-instance loops on every instance for --write-seconds: each reads the
//           head from its instance, proposes one put on it, and on 409 StaleVersion reads the
//           head again and proposes again. The flow is timed from building the first proposal
//           to the 201 `committed` (the retries' head reads included). The same loops, all
//           against the one SQLite registry, for the reference. Every 201's version is checked
//           to be unique and the versions contiguous. The cores used meanwhile by the registries,
//           PostgreSQL (the postmaster and its backends) and this harness are read from /proc.
//   stream  one subscriber (GET /registry/stream, raw TCP) per instance; --sse-commits commits
//           through instance A, one at a time, every --sse-interval ms: for each version,
//           t_sent (the POST written), t_acked (its answer read) and t_sse at each subscriber
//           (the frame with that id read). The target: p95 of t_sse − t_acked < 25 ms at a
//           subscriber on another instance.
//   reads   autocannon (--connections, --read-seconds) on GET /registry/head and GET
//           /registry/descriptors/svc-1000 at instance A and at the SQLite registry,
//           interleaved in --rounds that alternate which goes first (SQLite, cluster; cluster,
//           SQLite; …), each run reported with each round's ratio, the ratio of the medians, and
//           the server's CPU per request (from /proc). The target: the cluster instance within
//           10% of SQLite mode.
//
// Prints Markdown; writes perf/results/cluster.json. Every process and temp dir is removed at
// the end, also on failure. About 2.5 minutes on 2 cores. Linux (/proc).
// Usage: npm run perf:cluster [-- --write-seconds 15 --writers-per-instance 2 --sse-commits 300
//        --sse-interval 20 --descriptors 2000 --read-seconds 8 --connections 64 --rounds 3]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { generateKeyPair, signApproval } from '../dist/core/crypto.js';
import { hashOf } from '../dist/core/encoding.js';
import { startPostgres } from './lib/postgres.mjs';
import { Client, perfConfig, proposal, REGISTRY_ID, seedDescriptor } from './lib/registry.mjs';
import { serveRegistry, writeGenesis } from './lib/serve.mjs';

const { values } = parseArgs({
  options: {
    'write-seconds': { type: 'string', default: '15' },
    'writers-per-instance': { type: 'string', default: '2' },
    'sse-commits': { type: 'string', default: '300' },
    'sse-interval': { type: 'string', default: '20' },
    descriptors: { type: 'string', default: '2000' },
    'read-seconds': { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
  },
});
const WRITE_SECONDS = Number(values['write-seconds']);
const WRITERS = Number(values['writers-per-instance']);
const SSE_COMMITS = Number(values['sse-commits']);
const SSE_INTERVAL = Number(values['sse-interval']);
const DESCRIPTORS = Number(values.descriptors);
const READ_SECONDS = Number(values['read-seconds']);
const CONNECTIONS = Number(values.connections);
const ROUNDS = Number(values.rounds);
const INSTANCES = 3;

const alice = { id: 'alice', ...generateKeyPair() };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now();
const log = (line) => process.stderr.write(`${line}\n`);
const round1 = (x) => (x === undefined ? undefined : Math.round(x * 10) / 10);

// -- clean-up: whatever happens, no registry, PostgreSQL or temp dir outlives this process --------

const children = new Set();
const dirs = [];
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

const tempDir = (name) => {
  const dir = mkdtempSync(join(os.tmpdir(), `registry-perf-${name}-`));
  dirs.push(dir);
  return dir;
};

async function serve(dir, args, options) {
  const server = await serveRegistry(dir, REGISTRY_ID, [alice], args, options);
  children.add(server.child);
  server.child.once('exit', () => children.delete(server.child));
  server.client = new Client(server.url);
  // Writes wait for the start's integrity pass: wait until /readyz says they are taken.
  for (let i = 0; ; i++) {
    const r = await server.client.request('GET', '/readyz');
    if (r.status === 200 && JSON.parse(r.body.toString()).write === true) break;
    if (i > 300) throw new Error(`${server.url}: not write-ready: ${r.body}`);
    await sleep(100);
  }
  return server;
}

async function stop(server) {
  server.client.close();
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  if ((await Promise.race([exited, sleep(5000).then(() => 'timeout')])) === 'timeout') server.child.kill('SIGKILL');
}

// -- proposals -------------------------------------------------------------------------------------

function submission(head, ops) {
  const payload = proposal(head, ops);
  return JSON.stringify({ payload, approvals: [{ signer_id: alice.id, sig: signApproval(alice.secretKey, hashOf(payload)) }] });
}

const committedVersion = (r) => {
  const answer = JSON.parse(r.body.toString());
  if (answer.status !== 'committed') throw new Error(`not committed: ${r.body}`);
  return answer.version;
};

/** Commits the seeded descriptors in one proposal. */
async function seed(server) {
  const head = await server.client.json('GET', '/registry/head');
  const ops = Array.from({ length: DESCRIPTORS }, (_, i) => ({ op: 'put', descriptor: seedDescriptor(i) }));
  const r = await server.client.request('POST', '/registry/proposals', submission(head, ops));
  if (r.status !== 201) throw new Error(`seed: ${r.status} ${r.body.toString().slice(0, 300)}`);
  return committedVersion(r);
}

// -- statistics ------------------------------------------------------------------------------------

const pct = (sorted, q) => (sorted.length ? sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] : undefined);
function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: round1(pct(s, 0.5)), p95: round1(pct(s, 0.95)), p99: round1(pct(s, 0.99)), max: round1(s.at(-1)) };
}

// -- CPU: the registries', PostgreSQL's (the postmaster and its children) and this process's -------

const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
/** utime + stime of a process, in seconds; 0 once it is gone. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICK;
  } catch {
    return 0;
  }
}
const childrenOf = (ppid) =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === ppid;
      } catch {
        return false;
      }
    })
    .map(Number);
/** Starts counting; the function returned gives the cores each group used since. */
function cpuMeter(groups) {
  const pidsOf = (g) => [...new Set([...g.pids, ...(g.childrenOf ? childrenOf(g.childrenOf) : [])])];
  const before = Object.fromEntries(Object.entries(groups).map(([k, g]) => [k, new Map(pidsOf(g).map((p) => [p, cpuSeconds(p)]))]));
  const self = process.cpuUsage();
  const t0 = now();
  return () => {
    const seconds = (now() - t0) / 1000;
    const cores = Object.fromEntries(
      Object.entries(groups).map(([k, g]) => [
        k,
        round2(pidsOf(g).reduce((sum, p) => sum + cpuSeconds(p) - (before[k].get(p) ?? 0), 0) / seconds),
      ]),
    );
    const used = process.cpuUsage(self);
    return { ...cores, harness: round2((used.user + used.system) / 1e6 / seconds) };
  };
}
const round2 = (x) => Math.round(x * 100) / 100;

// -- writes ----------------------------------------------------------------------------------------

/** `targets`: one server per writer loop. */
async function writes(targets, label, cpuGroups) {
  const versions = [];
  const flows = [];
  const retries = [];
  const statuses = {};
  const perLoop = targets.map(() => 0);
  const clients = targets.map((server) => new Client(server.url));
  const cpu = cpuMeter(cpuGroups);
  const t0 = now();
  const end = t0 + WRITE_SECONDS * 1000;
  await Promise.all(
    clients.map(async (client, loop) => {
      for (let i = 0; now() < end; i++) {
        let head = await client.json('GET', '/registry/head');
        const start = now();
        let tries = 0;
        // One of 50 descriptors per loop rewritten: the state's size stays the same.
        const ops = [{ op: 'put', descriptor: { id: `w${loop}-${i % 50}`, kind: 'service', labels: { loop: String(loop) }, body: { i } } }];
        for (;;) {
          const r = await client.request('POST', '/registry/proposals', submission(head, ops));
          tries++;
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          if (r.status === 201) {
            versions.push(committedVersion(r));
            flows.push(now() - start);
            retries.push(tries - 1);
            perLoop[loop]++;
            break;
          }
          if (r.status === 503) await sleep(50);
          else if (r.status !== 409) throw new Error(`${label}: ${r.status} ${r.body.toString().slice(0, 300)}`);
          head = await client.json('GET', '/registry/head');
        }
      }
    }),
  );
  const seconds = (now() - t0) / 1000;
  const cores = cpu();
  for (const c of clients) c.close();
  versions.sort((a, b) => a - b);
  const contiguous = versions.every((v, i) => i === 0 || v === versions[i - 1] + 1);
  if (!contiguous) throw new Error(`${label}: the committed versions are not unique and contiguous`);
  const result = {
    label,
    loops: clients.length,
    seconds: round1(seconds),
    commits: versions.length,
    commitsPerSecond: round1(versions.length / seconds),
    flowMs: summary(flows),
    retriesPerFlow: summary(retries),
    commitsPerLoop: perLoop,
    cores,
    conflicts409: statuses[409] ?? 0,
    unavailable503: statuses[503] ?? 0,
    statuses,
  };
  log(`writes ${label}: ${JSON.stringify(result)}`);
  return result;
}

// -- stream ----------------------------------------------------------------------------------------

/** One subscriber on raw TCP: `seen` maps each commit's version to when its frame was read. */
function subscribe(url) {
  const u = new URL(url);
  const seen = new Map();
  const socket = net.connect(Number(u.port), u.hostname);
  const opened = new Promise((resolve, reject) => {
    socket.once('connect', () => socket.write(`GET /registry/stream HTTP/1.1\r\nHost: ${u.host}\r\nAccept: text/event-stream\r\n\r\n`));
    let tail = '';
    let started = false;
    socket.setEncoding('latin1');
    socket.on('data', (d) => {
      const t = now();
      if (!started) {
        if (!/^HTTP\/1\.1 200/.test(d)) return reject(new Error(`stream: ${d.slice(0, 200)}`));
        started = true;
        resolve();
      }
      // Frames are written whole; the tail keeps one cut between two reads.
      const text = tail + d;
      for (const m of text.matchAll(/id: (\d+)\nevent: commit\n/g)) if (!seen.has(Number(m[1]))) seen.set(Number(m[1]), t);
      tail = text.slice(-64);
    });
    socket.on('error', reject);
  });
  return { seen, opened, close: () => socket.destroy() };
}

async function stream(cluster) {
  const subscribers = cluster.map((server) => subscribe(server.url));
  await Promise.all(subscribers.map((s) => s.opened));
  await sleep(200);
  const a = cluster[0].client;
  const sent = new Map();
  const t0 = now();
  for (let k = 0; k < SSE_COMMITS; k++) {
    const wait = t0 + k * SSE_INTERVAL - now();
    if (wait > 0) await sleep(wait);
    const head = await a.json('GET', '/registry/head');
    const body = submission(head, [{ op: 'put', descriptor: { id: 'sse-probe', kind: 'service', labels: {}, body: { k } } }]);
    const tSent = now();
    const r = await a.request('POST', '/registry/proposals', body);
    const tAcked = now();
    if (r.status !== 201) throw new Error(`stream: ${r.status} ${r.body.toString().slice(0, 300)}`);
    sent.set(committedVersion(r), { tSent, tAcked });
  }
  const seconds = (now() - t0) / 1000;
  const last = Math.max(...sent.keys());
  for (let i = 0; i < 100 && !subscribers.every((s) => s.seen.has(last)); i++) await sleep(100);
  const at = (s) => {
    const acked = [];
    const fromSent = [];
    let missing = 0;
    for (const [version, { tSent, tAcked }] of sent) {
      const t = s.seen.get(version);
      if (t === undefined) missing++;
      else {
        acked.push(t - tAcked);
        fromSent.push(t - tSent);
      }
    }
    return { afterAckMs: summary(acked), afterSentMs: summary(fromSent), missing, acked, fromSent };
  };
  const perInstance = subscribers.map(at);
  for (const s of subscribers) s.close();
  const others = {
    afterAckMs: summary([...perInstance[1].acked, ...perInstance[2].acked]),
    afterSentMs: summary([...perInstance[1].fromSent, ...perInstance[2].fromSent]),
  };
  const post = summary([...sent.values()].map((x) => x.tAcked - x.tSent));
  const strip = ({ afterAckMs, afterSentMs, missing }) => ({ afterAckMs, afterSentMs, missing });
  const result = {
    commits: sent.size,
    seconds: round1(seconds),
    postMs: post,
    A: strip(perInstance[0]),
    B: strip(perInstance[1]),
    C: strip(perInstance[2]),
    otherInstances: others,
  };
  log(`stream: ${JSON.stringify(result)}`);
  return result;
}

// -- reads -----------------------------------------------------------------------------------------

/** One autocannon run at `server`, with the server's CPU per request (from /proc: it holds better than
 * req/s on a shared machine, where another process's load takes cores from the server). */
async function cannon(server, path, seconds) {
  const cpu0 = cpuSeconds(server.child.pid);
  const r = await autocannon({ url: server.url + path, connections: CONNECTIONS, duration: seconds });
  const cpuUs = ((cpuSeconds(server.child.pid) - cpu0) * 1e6) / r.requests.total;
  return {
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
    cpuUs: Math.round(cpuUs),
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function reads(sqlite, node) {
  const paths = { head: '/registry/head', lookup: `/registry/descriptors/svc-${Math.floor(DESCRIPTORS / 2)}` };
  const out = {};
  for (const [name, path] of Object.entries(paths)) {
    for (const s of [sqlite, node]) await cannon(s, path, 2); // warm-up
    const runs = [];
    // Rounds alternate which goes first (SQLite, cluster; cluster, SQLite; …), so that a load
    // rising or falling on the machine favours neither.
    for (let round = 0; round < ROUNDS; round++) {
      const pair = [
        ['sqlite', sqlite],
        ['cluster', node],
      ];
      for (const [mode, s] of round % 2 ? pair.reverse() : pair) {
        const r = { mode, round: round + 1, ...(await cannon(s, path, READ_SECONDS)) };
        log(`reads ${name}: ${JSON.stringify(r)}`);
        runs.push(r);
      }
    }
    const of = (mode, key = 'rps') => runs.filter((r) => r.mode === mode).map((r) => r[key]);
    const x = {
      path,
      runs,
      // Each round's cluster / SQLite, the medians and the ratio of the medians.
      roundRatios: of('cluster').map((c, i) => round2(c / of('sqlite')[i])),
      sqliteRps: median(of('sqlite')),
      clusterRps: median(of('cluster')),
      sqliteCpuUs: median(of('sqlite', 'cpuUs')),
      clusterCpuUs: median(of('cluster', 'cpuUs')),
    };
    x.ratio = round2(x.clusterRps / x.sqliteRps);
    x.cpuRatio = round2(x.clusterCpuUs / x.sqliteCpuUs);
    out[name] = x;
  }
  return out;
}

// -- the run ---------------------------------------------------------------------------------------

const started = new Date();
const load = [os.loadavg()[0]];
let pg;
let cluster = [];
let sqlite;
const results = { date: started.toISOString() };
try {
  log('starting PostgreSQL');
  pg = await startPostgres();
  const dir = tempDir('cluster');
  const { file: config } = await perfConfig(dir);
  const genesis = writeGenesis(dir, REGISTRY_ID, [alice]);
  const store = await pg.createDatabase();
  // The three instances start together, on the same genesis and database.
  cluster = await Promise.all(Array.from({ length: INSTANCES }, () => serve(dir, ['--config', config], { genesis, store })));
  const sqliteDir = tempDir('sqlite');
  sqlite = await serve(sqliteDir, ['--config', config], { genesis });
  log(`cluster ${cluster.map((s) => s.url).join(' ')}; SQLite ${sqlite.url}`);

  await seed(cluster[0]);
  await seed(sqlite);

  results.writes = {
    sqlite: await writes(
      Array.from({ length: INSTANCES * WRITERS }, () => sqlite),
      'SQLite, one registry',
      { registries: { pids: [sqlite.child.pid] } },
    ),
    cluster: await writes(
      cluster.flatMap((s) => Array.from({ length: WRITERS }, () => s)),
      'cluster, 3 instances',
      { registries: { pids: cluster.map((s) => s.child.pid) }, postgres: { pids: [pg.pid], childrenOf: pg.pid } },
    ),
  };
  // Every instance on the same head before the stream's commits.
  for (let i = 0; ; i++) {
    const heads = await Promise.all(cluster.map((s) => s.client.json('GET', '/registry/head')));
    if (heads.every((h) => h.hash === heads[0].hash)) break;
    if (i > 100) throw new Error(`the instances do not converge: ${heads.map((h) => h.version).join(', ')}`);
    await sleep(100);
  }
  results.stream = await stream(cluster);
  results.reads = await reads(sqlite, cluster[0]);
} catch (e) {
  process.exitCode = 1;
  log(`perf:cluster failed: ${e.stack ?? e}`);
} finally {
  load.push(os.loadavg()[0]);
  await Promise.all([...cluster, sqlite].filter(Boolean).map(stop));
  await pg?.stop();
}
if (process.exitCode) process.exit();

results.machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  node: process.version,
  postgres: pg.version,
  loadAverage: load.map(round1),
};
results.settings = {
  instances: INSTANCES,
  writersPerInstance: WRITERS,
  writeSeconds: WRITE_SECONDS,
  sseCommits: SSE_COMMITS,
  sseIntervalMs: SSE_INTERVAL,
  descriptors: DESCRIPTORS,
  readSeconds: READ_SECONDS,
  connections: CONNECTIONS,
  rounds: ROUNDS,
  postgres: 'fsync=off, synchronous_commit=on',
  sqlite: 'synchronous=FULL',
};
results.seconds = round1((Date.now() - started.getTime()) / 1000);

const { writes: w, stream: s, reads: r } = results;
const ms = (x) => `${x.p50} / ${x.p95} / ${x.max}`;
const lines = [
  `perf:cluster ${results.date}, ${results.machine.cpus} cores, node ${process.version}, PostgreSQL ${pg.version}, ` +
    `load ${load.map(round1).join(' → ')}`,
  '',
  `Writes: ${WRITERS} loops per instance (${INSTANCES * WRITERS} in all), ${WRITE_SECONDS} s; flow = first proposal built → 201 committed, retries included.`,
  '',
  '| store | commits/s | flow p50 / p95 / p99 / max ms | 409s | 503s | retries per flow p50 / p95 / max | commits per loop | cores used |',
  '|---|---|---|---|---|---|---|---|',
  ...[w.sqlite, w.cluster].map(
    (x) =>
      `| ${x.label} | ${x.commitsPerSecond} | ${x.flowMs.p50} / ${x.flowMs.p95} / ${x.flowMs.p99} / ${x.flowMs.max} | ${x.conflicts409} | ` +
      `${x.unavailable503} | ${x.retriesPerFlow.p50} / ${x.retriesPerFlow.p95} / ${x.retriesPerFlow.max} | ${x.commitsPerLoop.join(', ')} | ` +
      `${Object.entries(x.cores)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')} |`,
  ),
  '',
  `Commit → SSE frame, ${s.commits} commits through A, one every ${SSE_INTERVAL} ms (POST round trip p50 / p95 ${s.postMs.p50} / ${s.postMs.p95} ms).`,
  '',
  '| subscriber on | t_sse − t_acked p50 / p95 / max ms | t_sse − t_sent p50 / p95 / max ms | missing |',
  '|---|---|---|---|',
  `| A (the committing instance) | ${ms(s.A.afterAckMs)} | ${ms(s.A.afterSentMs)} | ${s.A.missing} |`,
  `| B | ${ms(s.B.afterAckMs)} | ${ms(s.B.afterSentMs)} | ${s.B.missing} |`,
  `| C | ${ms(s.C.afterAckMs)} | ${ms(s.C.afterSentMs)} | ${s.C.missing} |`,
  `| B and C | ${ms(s.otherInstances.afterAckMs)} | ${ms(s.otherInstances.afterSentMs)} | |`,
  '',
  `Reads: autocannon, ${CONNECTIONS} connections, ${READ_SECONDS} s per run, ${DESCRIPTORS} descriptors, SQLite and cluster interleaved (rounds alternate which goes first); req/s per run, by round.`,
  '',
  '| read | SQLite req/s | cluster instance req/s | per round cluster / SQLite | SQLite median | cluster median | cluster / SQLite | server CPU µs per request, SQLite / cluster (medians) |',
  '|---|---|---|---|---|---|---|---|',
  ...Object.entries(r).map(([name, x]) => {
    const runs = (mode) =>
      x.runs
        .filter((y) => y.mode === mode)
        .map((y) => y.rps)
        .join(', ');
    return `| ${name} (${x.path}) | ${runs('sqlite')} | ${runs('cluster')} | ${x.roundRatios.join(', ')} | ${x.sqliteRps} | ${x.clusterRps} | ${x.ratio}x | ${x.sqliteCpuUs} / ${x.clusterCpuUs} (${x.cpuRatio}x) |`;
  }),
];
mkdirSync('perf/results', { recursive: true });
writeFileSync('perf/results/cluster.json', JSON.stringify(results, null, 2));
process.stdout.write(`${lines.join('\n')}\n`);
