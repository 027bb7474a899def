// Commit stream fan-out (SPEC §8) on real sockets: commit -> first byte at each subscriber with
// many connected subscribers, filtered subscribers, and the server's memory per idle subscriber.
//
// Three kinds of process: the registry (dist/cli/main.js serve, a child), the subscribers (raw
// TCP connections held by `--workers` child processes, perf/fanout-worker.mjs), and this one,
// which only commits and collects. Each scenario gets a fresh registry and fresh workers.
//
// Clock: every process reads process.hrtime (CLOCK_MONOTONIC, one clock for the whole machine on
// Linux), so a worker's arrival time minus this process's send time is a latency; a ping over
// IPC checks it (send <= worker's reading <= answer, for every worker) before anything is measured.
// t0 is taken just before the committing POST is written (signing and the head read are done
// before); the arrival is the worker's 'data' event for the read holding the frame's first byte.
// Commits go one at a time: commit k+1 only once every expecting subscriber has commit k.
//
// Usage: npm run perf:fanout [-- --sizes 100,1000,5000 --commits 20 --filtered 10000 --idle 10000 --workers 4]
//        also --warmup 5 (unmeasured commits first), --bare true|false (the node:http floor rows),
//        --concurrency 16 (handshakes in flight per worker), --nofile 65536 (the children's soft fd limit)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateKeyPair, signApproval } from '../dist/core/crypto.js';
import { formatTime, hashOf } from '../dist/core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../dist/core/records.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '100,1000,5000' },
    commits: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    bare: { type: 'string', default: 'true' },
    filtered: { type: 'string', default: '10000' },
    idle: { type: 'string', default: '10000' },
    workers: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '16' },
    nofile: { type: 'string', default: '65536' },
  },
});
const sizes = values.sizes
  .split(',')
  .filter(Boolean)
  .map((s) => Number(s));
const commits = Number(values.commits);
const warmup = Number(values.warmup);
const bare = values.bare !== 'false';
const filtered = Number(values.filtered);
const idle = Number(values.idle);
const workerCount = Number(values.workers);
const concurrency = Number(values.concurrency);
const nofile = Number(values.nofile);
const ARRIVAL_TIMEOUT_MS = 30_000;

const now = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
const started = now();

// Children get the soft file limit raised to `nofile`, or to the hard limit when that is lower.
const RAISE = `ulimit -n ${nofile} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`;
const limitsOf = (pid) => {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const [soft, hard] = line.trim().split(/\s+/).slice(3, 5);
  return { soft: Number(soft), hard: hard === 'unlimited' ? Infinity : Number(hard) };
};
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
// utime + stime of a process, in ms (the kernel counts in ticks of 10 ms).
const cpuMs = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
const hwmKiB = (pid) => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

const dir = mkdtempSync(join(tmpdir(), 'registry-fanout-'));
const key = { id: 'alice', ...generateKeyPair() };
const gPayload = buildGenesisPayload(
  'fanout',
  { threshold: 1, signers: [{ id: key.id, public_key: key.publicKey }] },
  formatTime(Date.now()),
);
const genesis = assembleGenesis(gPayload, [{ signer_id: key.id, sig: signApproval(key.secretKey, hashOf(gPayload)) }]);
writeFileSync(join(dir, 'genesis.json'), JSON.stringify(genesis));

// Whatever happens, no registry or subscriber process outlives this one.
const children = new Set();
const track = (child) => {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
};
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

let serial = 0;
function startServer(kind) {
  const db = join(dir, `registry-${serial++}.db`);
  const args = ['dist/cli/main.js', 'serve', '--genesis', join(dir, 'genesis.json'), '--db', db, '--port', '0', '--log-level', 'warn'];
  args.push('--stream-max-per-address', '20000', '--stream-max-subscribers', '20000');
  // Every subscriber connects from 127.0.0.1.
  args.push('--max-connections-per-address', '30000', '--max-connections', '30000');
  if (kind === 'bare') args.splice(0, args.length, 'perf/fanout-worker.mjs', 'bare-server');
  const child = track(spawn('bash', ['-c', RAISE, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'inherit'] }));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on http:\/\/([^:/]+):(\d+)/.exec(out);
      if (m) resolve({ child, host: m[1], port: Number(m[2]), agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) });
    });
    child.once('exit', (code) => reject(new Error(`the registry exited (${code}): ${out}`)));
  });
}

async function stopServer(server) {
  server.agent.destroy();
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
}

/** One HTTP request on the keep-alive agent; `t0` is read just before the request is written. */
function request(server, method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = http.request({ host: server.host, port: server.port, method, path, headers, agent: server.agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const tAck = now();
        const json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (res.statusCode >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${JSON.stringify(json)}`));
        else resolve({ json, t0, tAck });
      });
    });
    req.on('error', reject);
    const t0 = now();
    req.end(body);
  });
}

/** Commits `descriptor` (a 1-of-1 registry: a proposal with its one approval commits at once). */
async function commit(server, descriptor) {
  const { json: head } = await request(server, 'GET', '/registry/head');
  const created = Date.now();
  const payload = {
    type: 'registry.proposal',
    schema_version: 1,
    registry_id: 'fanout',
    base_version: head.version,
    base_hash: head.hash,
    ops: [{ op: 'put', descriptor }],
    created_at: formatTime(created),
    expires_at: formatTime(created + 3600_000),
  };
  const body = JSON.stringify({ payload, approvals: [{ signer_id: key.id, sig: signApproval(key.secretKey, hashOf(payload)) }] });
  const { json, t0, tAck } = await request(server, 'POST', '/registry/proposals', body);
  if (json.status !== 'committed') throw new Error(`not committed: ${JSON.stringify(json)}`);
  return { version: json.version, t0, tAck };
}

function startWorker() {
  const child = track(
    spawn('bash', ['-c', RAISE, process.execPath, 'perf/fanout-worker.mjs'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  const queue = [];
  child.on('message', (m) => {
    const i = queue.findIndex((q) => q.type === m.type && (q.match === undefined || q.match(m)));
    if (i >= 0) queue.splice(i, 1)[0].resolve(m);
  });
  const ask = (msg, type, match) =>
    new Promise((resolve) => {
      queue.push({ type, match, resolve });
      child.send(msg);
    });
  return new Promise((resolve, reject) => {
    queue.push({ type: 'ready', resolve: () => resolve({ child, ask }) });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`a subscriber process exited (${code})`)));
  });
}

/** Checks that the workers' clock is this one: send <= worker's reading <= answer, every time. */
async function clockCheck(workers) {
  const offsets = [];
  let ok = true;
  for (const w of workers) {
    for (let i = 0; i < 20; i++) {
      const sent = now();
      const { t } = await w.ask({ type: 'clock', id: i }, 'clock', (m) => m.id === i);
      const back = now();
      if (t < sent || t > back) ok = false;
      offsets.push(t - sent);
    }
  }
  offsets.sort((a, b) => a - b);
  return { ok, ipcOneWayMs: { min: offsets[0], p50: pct(offsets, 50), max: offsets.at(-1) } };
}

/**
 * One scenario on a fresh registry: connects `groups` ({ path, count, expect }) across the workers,
 * then commits `commitCount` descriptors from `descriptorOf(i)` one at a time (after `warmup`
 * unmeasured ones), collecting every expecting subscriber's arrival.
 */
async function scenario(name, groups, commitCount, descriptorOf, kind = 'registry') {
  const t = now();
  const server = await startServer(kind);
  const pid = server.child.pid;
  const workers = await Promise.all(Array.from({ length: workerCount }, startWorker));
  const clock = await clockCheck(workers);
  if (!clock.ok) throw new Error(`the workers' clock is not this process's: ${JSON.stringify(clock)}`);
  const fdLimits = { server: limitsOf(pid), worker: limitsOf(workers[0].child.pid) };
  await sleep(500);
  const rssBeforeKiB = rssKiB(pid);

  // Connections go round-robin to the workers, so each holds a share of every group.
  const lists = workers.map(() => []);
  let k = 0;
  for (const g of groups) for (let i = 0; i < g.count; i++) lists[k++ % workers.length].push({ path: g.path, expect: g.expect });
  const tc = now();
  const connected = await Promise.all(
    workers.map((w, i) => w.ask({ type: 'connect', host: server.host, port: server.port, list: lists[i], concurrency }, 'connected')),
  );
  const connectSeconds = (now() - tc) / 1000;
  const open = connected.reduce((n, c) => n + c.open, 0);
  const expecting = connected.reduce((n, c) => n + c.expecting, 0);
  const failures = {};
  for (const c of connected) for (const [why, n] of Object.entries(c.failures)) failures[why] = (failures[why] ?? 0) + n;
  await sleep(2000);
  const rssAfterKiB = rssKiB(pid);

  const runs = [];
  const warm = [];
  const load = [loadavg()[0]];
  let cpuStart;
  for (let i = 0; commitCount > 0 && i < warmup + commitCount && open > 0; i++) {
    const c = await commit(server, descriptorOf(i));
    const arrivals = await Promise.all(
      workers.map((w) =>
        w.ask({ type: 'await', version: c.version, timeoutMs: ARRIVAL_TIMEOUT_MS }, 'arrived', (m) => m.version === c.version),
      ),
    );
    const incomplete = arrivals.filter((a) => !a.complete);
    if (incomplete.length) {
      const missing = arrivals.reduce((n, a) => n + a.expecting - a.got, 0);
      throw new Error(`${name}: ${missing} subscribers did not get version ${c.version} within ${ARRIVAL_TIMEOUT_MS} ms`);
    }
    (i < warmup ? warm : runs).push(c);
    if (i === warmup - 1) cpuStart = cpuMs(pid);
  }
  const cpuEnd = cpuMs(pid);
  load.push(loadavg()[0]);
  // Time for a frame that should not come to come.
  if (runs.length) await sleep(1000);
  const reports = await Promise.all(workers.map((w) => w.ask({ type: 'report' }, 'report')));
  const rssEndKiB = rssKiB(pid);
  const hwm = hwmKiB(pid);
  for (const w of workers) w.child.send({ type: 'close' });
  await stopServer(server);

  const latencies = (set) => {
    const all = [];
    for (const c of set) for (const r of reports) for (const at of r.arrivals[c.version] ?? []) all.push(at - c.t0);
    return all.sort((a, b) => a - b);
  };
  const summary = (sorted) =>
    sorted.length
      ? { samples: sorted.length, p50: pct(sorted, 50), p95: pct(sorted, 95), p99: pct(sorted, 99), max: sorted.at(-1) }
      : undefined;
  const ack = runs.map((c) => c.tAck - c.t0).sort((a, b) => a - b);
  // Per commit: when the last subscriber had it.
  const lastArrival = runs
    .map((c) => Math.max(...reports.flatMap((r) => (r.arrivals[c.version] ?? []).map((at) => at - c.t0))))
    .sort((a, b) => a - b);
  // Per commit: answer time and first, median and last arrival (ms after t0).
  const perCommit = runs.map((c) => {
    const at = reports.flatMap((r) => (r.arrivals[c.version] ?? []).map((a) => a - c.t0)).sort((a, b) => a - b);
    return { version: c.version, ack: c.tAck - c.t0, first: at[0], p50: pct(at, 50), last: at.at(-1) };
  });
  return {
    name,
    server: kind,
    groups: groups.map((g) => ({ path: g.path, count: g.count, expect: g.expect })),
    subscribers: open,
    expecting,
    connectFailures: failures,
    connectSeconds,
    commits: runs.length,
    warmupCommits: warm.length,
    firstByteMs: summary(latencies(runs)),
    warmupFirstByteMs: summary(latencies(warm)),
    lastSubscriberMs: summary(lastArrival),
    commitAckMs: summary(ack),
    perCommit,
    unexpectedFrames: reports.reduce((n, r) => n + r.unexpected, 0),
    lagged: reports.reduce((n, r) => n + r.lagged, 0),
    droppedAfterConnect: reports.reduce((n, r) => n + r.droppedAfterConnect, 0),
    heartbeats: reports.reduce((n, r) => n + r.heartbeats, 0),
    serverCpuMsPerCommit: runs.length && cpuStart !== undefined ? (cpuEnd - cpuStart) / runs.length : undefined,
    loadAverage1m: load,
    memory: { pid, rssBeforeKiB, rssAfterKiB, rssEndKiB, hwmKiB: hwm },
    fdLimits,
    clock,
    seconds: (now() - t) / 1000,
  };
}

const REGIONS = ['eu-west', 'us-west', 'us-east', 'us-central', 'eu-central', 'eu-north', 'ap-south', 'ap-east', 'sa-east', 'af-south'];
const streamPath = (filter) => (filter ? `/registry/stream?filter=${encodeURIComponent(filter)}` : '/registry/stream');
const regionFilter = (region) => `labels.region == '${region}' AND kind == 'node'`;

const results = [];
for (const n of sizes) {
  const r = await scenario(`unfiltered, ${n}`, [{ path: streamPath(), count: n, expect: true }], commits, (i) => ({
    id: `svc-${i % 10}`,
    kind: 'service',
    labels: { region: 'eu-west' },
    body: { i },
  }));
  results.push(r);
  process.stderr.write(`${r.name}: ${JSON.stringify(r.firstByteMs)} (${r.seconds.toFixed(1)} s)\n`);
  if (!bare) continue;
  const b = await scenario(`bare node:http floor, ${n}`, [{ path: streamPath(), count: n, expect: true }], commits, () => ({}), 'bare');
  results.push(b);
  process.stderr.write(`${b.name}: ${JSON.stringify(b.firstByteMs)} (${b.seconds.toFixed(1)} s)\n`);
}
if (filtered > 0) {
  // A tenth match (eu-west nodes); the rest watch the nine other regions' nodes.
  const matching = Math.round(filtered / 10);
  const others = REGIONS.slice(1).map((region, i, all) => ({
    path: streamPath(regionFilter(region)),
    count: Math.floor((filtered - matching) / all.length) + (i < (filtered - matching) % all.length ? 1 : 0),
    expect: false,
  }));
  const r = await scenario(
    `filtered, ${matching} of ${filtered}`,
    [{ path: streamPath(regionFilter('eu-west')), count: matching, expect: true }, ...others],
    commits,
    (i) => ({
      id: 'node-eu-1',
      kind: 'node',
      labels: { region: 'eu-west' },
      body: { i },
    }),
  );
  results.push(r);
  process.stderr.write(`${r.name}: ${JSON.stringify(r.firstByteMs)}, unexpected ${r.unexpectedFrames} (${r.seconds.toFixed(1)} s)\n`);
}
if (idle > 0) {
  const r = await scenario(`idle, ${idle}`, [{ path: streamPath(), count: idle, expect: true }], 0, () => undefined);
  results.push(r);
  process.stderr.write(`${r.name}: RSS ${r.memory.rssBeforeKiB} -> ${r.memory.rssAfterKiB} KiB (${r.seconds.toFixed(1)} s)\n`);
}
rmSync(dir, { recursive: true, force: true });

const MiB = (kib) => (kib / 1024).toFixed(1);
const ms = (x) => (x === undefined ? '-' : x.toFixed(2));
const verdict = (ok) => (ok ? 'met' : '**missed**');
const latencyTarget = (r) => {
  const p95 = r.firstByteMs?.p95;
  if (p95 === undefined) return '-';
  if (r.server === 'bare') return 'reference: the harness with no registry';
  const parts = [];
  if (r.name.startsWith('filtered') || r.subscribers === 1000) parts.push(`p95 < 20 ms: ${verdict(p95 < 20)}`);
  parts.push(`p95 < 200 ms: ${verdict(p95 < 200)}`);
  return parts.join('; ');
};
const measured = results.filter((r) => r.firstByteMs);
const idleRuns = results.filter((r) => !r.firstByteMs);
const idleTable = idleRuns.length
  ? [
      '',
      '| idle subscribers | connected | connect s | server RSS before MiB | RSS after MiB (VmHWM) | per subscriber KiB | target: < 256 MiB RSS |',
      '|---|---|---|---|---|---|---|',
      ...idleRuns.map((r) => {
        const s = r.memory;
        const per = r.subscribers ? ((s.rssAfterKiB - s.rssBeforeKiB) / r.subscribers).toFixed(2) : '-';
        return `| ${r.name} | ${r.subscribers} | ${r.connectSeconds.toFixed(1)} | ${MiB(s.rssBeforeKiB)} | ${MiB(s.rssAfterKiB)} (${MiB(s.hwmKiB)}) | ${per} | ${verdict(s.rssAfterKiB < 256 * 1024)} |`;
      }),
    ]
  : [];
const lines = [
  `Commit -> first byte of the commit's frame at each subscriber (${workerCount} subscriber processes, raw TCP; t0 just before the committing POST is written;`,
  `one commit at a time, ${warmup} unmeasured warm-up commits first; percentiles over every (subscriber, commit) pair). Fresh server per row;\n'bare node:http floor' rows: a trivial node:http SSE server (no verification, no SQLite) under the same clients, the machine's and the harness's share.`,
  '',
  '| scenario | subscribers | commits | samples | p50 ms | p95 ms | p99 ms | max ms | last subscriber p50 / p95 ms | commit answer p50 ms | server CPU ms/commit | load 1m | unexpected frames | target |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...measured.map(
    (r) =>
      `| ${r.name} | ${r.subscribers} (${r.expecting} expecting) | ${r.commits} | ${r.firstByteMs.samples} | ${ms(r.firstByteMs.p50)} | ${ms(r.firstByteMs.p95)} | ${ms(r.firstByteMs.p99)} | ${ms(r.firstByteMs.max)} | ${ms(r.lastSubscriberMs?.p50)} / ${ms(r.lastSubscriberMs?.p95)} | ${ms(r.commitAckMs?.p50)} | ${r.serverCpuMsPerCommit?.toFixed(1) ?? '-'} | ${r.loadAverage1m.map((l) => l.toFixed(1)).join('→')} | ${r.unexpectedFrames} | ${latencyTarget(r)} |`,
  ),
  ...idleTable,
  '',
  `Open-file limits (soft/hard): registry ${results[0]?.fdLimits.server.soft}/${results[0]?.fdLimits.server.hard}, subscriber processes ${results[0]?.fdLimits.worker.soft}/${results[0]?.fdLimits.worker.hard}.`,
  `Clock check (IPC one-way, ms): ${results.map((r) => `${r.name}: ${ms(r.clock.ipcOneWayMs.min)}..${ms(r.clock.ipcOneWayMs.max)}`).join('; ')}.`,
  `Connect failures: ${JSON.stringify(Object.fromEntries(results.map((r) => [r.name, r.connectFailures])))}; lagged: ${results.reduce((n, r) => n + r.lagged, 0)}; dropped: ${results.reduce((n, r) => n + r.droppedAfterConnect, 0)}.`,
  `Run time: ${((now() - started) / 1000).toFixed(1)} s.`,
];
mkdirSync('perf/results', { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const file = `perf/results/fanout-${stamp}.json`;
writeFileSync(
  file,
  JSON.stringify(
    {
      at: new Date().toISOString(),
      options: { sizes, commits, warmup, filtered, idle, workers: workerCount, concurrency, nofile },
      node: process.version,
      cpus: cpus().length,
      seconds: (now() - started) / 1000,
      results,
    },
    null,
    2,
  ),
);
console.log(lines.join('\n'));
console.log(`\n${file}`);
