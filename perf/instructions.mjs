// CPU instructions per request on the read plane, counted by valgrind's callgrind: unlike req/s,
// the count does not depend on the machine's load or speed, so it can be compared across runs and
// commits. Each server (the registry, and the bare Fastify reference serving the same bytes) runs
// under `valgrind --tool=callgrind` with `node --single-threaded` (V8's background threads off, so
// its compiler and collector run on the main thread, in the count); the client runs outside
// valgrind. For each scenario, on one keep-alive connection: a warm-up (not measured), then N
// requests, then 3N requests, a callgrind dump after each (`callgrind_control --dump`); cost per
// request = (Ir(3N) - Ir(N)) / 2N, so that whatever each phase pays once (the dump, the sync
// below, the tail of the previous phase) cancels out.
//
// What makes the count repeat (see each flag below): the warm-up lasts until the JIT has settled
// (TurboFan compiles cost ~10^7 instructions each and go on for thousands of requests), read from
// each dump; V8's tiering budgets are cut so that it settles sooner; V8's seeds are fixed; the
// young generation is fixed at the size a busy server has. Before each dump the client waits for
// the server to go idle: a preloaded module (--import) answers a signal once the event loop gets
// to it, after a scavenge (--gc minor: each phase starts with an empty young generation), and
// reports the bytes allocated. Each row also gives the count outside V8's collector (the Ir under
// Heap::CollectGarbage, taken from the dump's call graph): collections come in lumps, so that part
// repeats less well than the rest.
//
// The database is seeded first by a normal (non-valgrind) server, as perf/wallclock.mjs does, and the
// reference bodies are taken from it; each server under valgrind then starts on its own copy and
// must answer the same bytes. Servers run --jobs at a time (counts do not depend on the load).
//
// Usage: node perf/instructions.mjs [--n 500] [--descriptors 10000] [--only head --only lookup]
//          [--warmup 1000] [--chunk 500] [--max-warmup 20000] [--jobs 2] [--idle 3]
//          [--gc minor|full|none] [--tiering fast|default] [--seed 1|random] [--young-mb 16|0]
//          [--node-flag=--trace-gc ...] [--keep] [--store sqlite|postgres]
//          [--serve-arg=--follow-poll-ms=3600000 ...] (more options for the measured registries)
// Scenarios (--only: a substring of these keys; may be repeated): head, version, lookup, filter,
// batch, log-info, log-debug (the last two: the head on registries at --log-level info and debug).
// --store postgres: the registries run in cluster mode on one throw-away PostgreSQL database
// (perf/lib/postgres.mjs), seeded the same way, each with its follower (LISTEN, and a catch-up query
// every followPollMs); the reads are served from memory in both modes, and comparing the two runs'
// counts says what cluster mode costs a read. The catch-up query every followPollMs costs per second,
// not per request, and under valgrind a second holds ~50x fewer requests than natively: measure
// with --serve-arg=--follow-poll-ms=3600000 for the per-request cost; the idle row gives the poll's.
// (The seeder runs with the default.)
// Writes perf/results/instructions-<timestamp>.json; prints a Markdown table.
import { execFile, spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { generateKeyPair, signApproval } from '../dist/core/crypto.js';
import { formatTime, hashOf } from '../dist/core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../dist/core/records.js';
import { SYNC_SIGNAL, writePreload } from './lib/callgrind.mjs';
import { startPostgres } from './lib/postgres.mjs';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '1000' },
    'max-warmup': { type: 'string', default: '20000' },
    chunk: { type: 'string', default: '500' },
    tiering: { type: 'string', default: 'fast' },
    seed: { type: 'string', default: '1' },
    descriptors: { type: 'string', default: '10000' },
    only: { type: 'string', multiple: true },
    jobs: { type: 'string', default: '2' },
    gc: { type: 'string', default: 'minor' },
    idle: { type: 'string', default: '3' },
    'young-mb': { type: 'string', default: '16' },
    keep: { type: 'boolean', default: false },
    'node-flag': { type: 'string', multiple: true },
    store: { type: 'string', default: 'sqlite' },
    'serve-arg': { type: 'string', multiple: true },
  },
});
if (!['sqlite', 'postgres'].includes(values.store)) throw new Error('--store sqlite|postgres');
const N = Number(values.n);
// Warm-up: chunks of N requests, at least --warmup and at most --max-warmup requests.
const WARMUP_CHUNK = Number(values.chunk);
const WARMUP_MIN = Number(values.warmup);
const WARMUP_MAX = Number(values['max-warmup']);
/** Settled: consecutive warm-up chunks whose cost per request (outside TurboFan) is this close,
 * with no TurboFan compile or deoptimization. */
const SETTLED = 0.005;
const descriptors = Number(values.descriptors);
const jobs = Math.max(1, Number(values.jobs));
const idleSeconds = Number(values.idle);
const youngMb = Number(values['young-mb']);
const STARTUP_TIMEOUT_MS = 600_000;
if (!['none', 'minor', 'full'].includes(values.gc)) throw new Error('--gc none|minor|full');
if (!['fast', 'default'].includes(values.tiering)) throw new Error('--tiering fast|default');
const started = performance.now();
const execFileP = promisify(execFile);
const log = (msg) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${msg}\n`);

const dir = mkdtempSync(join(tmpdir(), 'registry-instructions-'));
// The preload that reports the young generation and collects on SYNC_SIGNAL (perf/lib/callgrind.mjs).
const preload = writePreload(dir, values.gc);

// -- servers ------------------------------------------------------------------------------

// Servers still running when this script ends (an error) go with it.
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** Starts a server; resolves once it prints its "listening on" line. Later stdout lines are
 * the preload's "synced" answers. */
function start(name, command, args, stderrFile) {
  const errFd = openSync(stderrFile, 'w');
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', errFd] });
  closeSync(errFd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  const server = { name, child, url: undefined, host: '127.0.0.1', port: 0, waiters: [], lines: [], exited: false };
  let out = '';
  child.stdout.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not listening after ${STARTUP_TIMEOUT_MS / 1000} s`)), STARTUP_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      out += d;
      let nl;
      while ((nl = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const m = /listening on (http:\/\/([\d.]+):(\d+))/.exec(line);
        if (m && !server.url) {
          Object.assign(server, { url: m[1], host: m[2], port: Number(m[3]) });
          clearTimeout(timer);
          resolve(server);
        } else if (line.startsWith('synced ')) {
          const [youngBytes, allocated] = line.slice(7).split(' ').map(Number);
          server.waiters.shift()?.({ youngBytes, allocated });
        } else server.lines.push(line); // e.g. --node-flag=--trace-gc
      }
    });
    child.once('exit', (code, signal) => {
      server.exited = true;
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}); see ${stderrFile}`));
    });
  });
}

async function stop(server) {
  if (server.exited) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 120_000);
  await exited;
  clearTimeout(timer);
}

// -- the client: one keep-alive connection per server ----------------------------------------

function send(server, scenario) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        agent: server.agent,
        host: server.host,
        port: server.port,
        method: scenario.method,
        path: scenario.paths[server.kind],
        headers: scenario.body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(scenario.body) } : {},
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks), reused: req.reusedSocket }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(scenario.body);
  });
}

async function requests(server, scenario, count) {
  let newConnections = 0;
  for (let i = 0; i < count; i++) {
    const res = await send(server, scenario);
    if (res.status !== 200) throw new Error(`${server.name} ${scenario.key}: status ${res.status}: ${res.body.toString().slice(0, 300)}`);
    if (!res.body.equals(scenario.reference))
      throw new Error(
        `${server.name} ${scenario.key}: the body differs from the reference (${res.body.length} B, not ${scenario.reference.length} B)`,
      );
    if (!res.reused) newConnections++;
  }
  return newConnections;
}

/** Waits until the server's event loop has run the preload's signal handler (after a full GC
 * with --gc): the tail of the last request is then done. */
function sync(server) {
  const synced = new Promise((resolve) => server.waiters.push(resolve));
  server.child.kill(SYNC_SIGNAL);
  return synced;
}

/** V8's collections (scavenges and full ones) all enter here; incremental marking steps, if
 * any, run outside it and count as the mutator's. */
const GC_ENTRY = /^cfn=v8::internal::Heap::CollectGarbage\(/;
/** The JIT at work: TurboFan (and OSR) compiles, deoptimizations, and Sparkplug and lazy
 * bytecode compiles. With --single-threaded they run on the main thread, in the count. */
const JIT_ENTRIES = {
  optimized: /^cfn=v8::internal::Runtime_CompileOptimized(OSR)?\(/,
  deopts: /^cfn=v8::internal::Runtime_NotifyDeoptimized\(/,
  baseline: /^cfn=v8::internal::Compiler::CompileBaseline\(/,
  lazy: /^cfn=v8::internal::Runtime_CompileLazy\(/,
};

/** One dump: its Ir; the part inside Heap::CollectGarbage (the inclusive cost of the calls to
 * it: each `calls=` line is followed by the call's inclusive cost) and how many collections;
 * the JIT's compiles and deoptimizations, and the Ir of the TurboFan compiles. */
function parseDump(text) {
  const label = /^desc: Trigger: dump (\S+)$/m.exec(text)?.[1];
  const total = /^(?:summary|totals): (\d+)/m.exec(text)?.[1];
  const jit = { optimized: 0, deopts: 0, baseline: 0, lazy: 0 };
  let callee = '';
  let gcIr = 0;
  let gcs = 0;
  let optimizeIr = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('cfn=')) callee = line;
    else if (line.startsWith('calls=')) {
      const calls = Number(line.slice(6).split(' ')[0]);
      const inclusive = () => Number(lines[i + 1].trim().split(/\s+/).pop());
      if (GC_ENTRY.test(callee)) {
        gcs += calls;
        gcIr += inclusive();
      }
      for (const [kind, re] of Object.entries(JIT_ENTRIES)) if (re.test(callee)) jit[kind] += calls;
      if (JIT_ENTRIES.optimized.test(callee)) optimizeIr += inclusive();
    }
  }
  return { label, ir: Number(total), gcIr, gcs, jit, optimizeIr };
}

/** Dumps callgrind's counters (and zeroes them). callgrind_control takes the pid of the valgrind
 * process (it lists them with `vgdb -l`): the pid we spawned, since the valgrind launcher execs
 * the tool in place. Dumps land in <name>.cg.out.<part>. */
async function dump(server, label) {
  const { stdout } = await execFileP('callgrind_control', [`--dump=${label}`, String(server.child.pid)]);
  if (!/OK/.test(stdout)) throw new Error(`${server.name}: callgrind_control --dump: ${stdout}`);
  const prefix = `${server.name}.cg.out.`;
  for (const file of readdirSync(dir).filter((f) => f.startsWith(prefix) && !server.parsed.has(f))) {
    server.parsed.add(file);
    const parsed = parseDump(readFileSync(join(dir, file), 'utf8'));
    if (parsed.label !== undefined) server.dumps.set(parsed.label, parsed);
    if (!values.keep) rmSync(join(dir, file));
  }
  const parsed = server.dumps.get(label);
  if (parsed === undefined) throw new Error(`${server.name}: no dump file for ${label}`);
  return parsed;
}

async function phase(server, label, scenario, count) {
  const t0 = performance.now();
  server.lines.length = 0;
  const newConnections = scenario ? await requests(server, scenario, count) : 0;
  const { youngBytes, allocated } = scenario ? await sync(server) : {};
  if (!scenario) await new Promise((r) => setTimeout(r, count * 1000)); // idle: timers only, no collection
  const { ir, gcIr, gcs, jit, optimizeIr } = await dump(server, label);
  const seconds = (performance.now() - t0) / 1000;
  return {
    label,
    requests: scenario ? count : 0,
    ir,
    gcIr,
    gcs,
    youngBytes,
    allocated,
    jit,
    optimizeIr,
    seconds,
    newConnections,
    ...(values['node-flag'] ? { output: server.lines.slice(0, 50) } : {}),
  };
}

/** One server under callgrind: start, an idle phase, then each scenario's three phases. */
async function measure(task) {
  const t0 = performance.now();
  const nodeArgs = [
    '--single-threaded',
    ...(values.gc === 'none' ? [] : ['--expose-gc']),
    // The JIT settles in ~10x fewer requests with V8's tiering budgets cut 10x (the optimized
    // code, and the counts, come out the same within the runs' spread); --tiering default keeps V8's.
    ...(values.tiering === 'fast' ? ['--interrupt-budget=6758', '--minimum-invocations-after-ic-update=50'] : []),
    // V8's hash seed and random seed fixed (--seed random leaves them random): hash tables and
    // the heap's layout come out the same from run to run, and so does the count.
    ...(values.seed === 'random' ? [] : [`--hash-seed=${values.seed}`, `--random-seed=${values.seed}`]),
    // The young generation a busy server has (Node 20's default maximum, 16 MB semi-spaces;
    // natively the registry is there from its start-up on). Left to V8, under valgrind it stays
    // small: V8 sizes it by allocation throughput in bytes/ms, ~50x lower under valgrind.
    ...(youngMb ? [`--min-semi-space-size=${youngMb}`, `--max-semi-space-size=${youngMb}`] : []),
    ...(values['node-flag'] ?? []),
    `--import=${preload}`,
    ...task.args,
  ];
  const server = await start(
    task.name,
    'valgrind',
    [
      '--tool=callgrind',
      '--collect-atstart=yes',
      `--callgrind-out-file=${join(dir, `${task.name}.cg.out`)}`,
      `--log-file=${join(dir, `${task.name}.valgrind.log`)}`,
      // Function names in full in every dump (compressed, a name is written only in the first
      // dump that uses it): parseDump looks for the collector's, callgrind_annotate for all.
      '--compress-strings=no',
      process.execPath,
      ...nodeArgs,
    ],
    join(dir, `${task.name}.stderr.log`),
  );
  Object.assign(server, { kind: task.kind, agent: new Agent({ keepAlive: true, maxSockets: 1 }), parsed: new Set(), dumps: new Map() });
  const startupSeconds = (performance.now() - t0) / 1000;
  log(`${task.name}: listening after ${startupSeconds.toFixed(0)} s under callgrind`);
  const result = { command: ['valgrind', '--tool=callgrind', '...', 'node', ...nodeArgs].join(' '), startupSeconds, scenarios: {} };
  try {
    await sync(server);
    result.startupIr = (await dump(server, 'startup')).ir;
    for (const s of task.scenarios) {
      // Warm-up in chunks until the JIT (and the collector) have settled: two chunks in a row
      // with no TurboFan compile or deoptimization, costing the same within 0.5% (outside
      // TurboFan), then N and 3N; if the JIT was
      // at work during those, more warm-up and again (up to --max-warmup requests in all).
      const warmup = [];
      let warmed = 0;
      let phases;
      const steady = (p) => (p.ir - p.optimizeIr) / p.requests;
      const jitAtWork = (p) => p.jit.optimized || p.jit.deopts;
      for (;;) {
        const p = await phase(server, `${s.key}-warmup${warmup.length + 1}`, s, WARMUP_CHUNK);
        warmup.push(p);
        warmed += p.requests;
        const [a, b] = warmup.slice(-2);
        const settled = b && !jitAtWork(a) && !jitAtWork(b) && Math.abs(steady(b) - steady(a)) <= SETTLED * steady(a);
        if (warmed < WARMUP_MIN || (!settled && warmed < WARMUP_MAX)) continue;
        const attempt = warmup.length;
        phases = [await phase(server, `${s.key}-n-${attempt}`, s, N), await phase(server, `${s.key}-3n-${attempt}`, s, 3 * N)];
        if (!phases.some(jitAtWork) || warmed >= WARMUP_MAX) break;
        log(`${task.name} ${s.key}: the JIT was at work during the measurement; more warm-up`);
        warmup.push(...phases);
        warmed += 4 * N;
      }
      if (warmed >= WARMUP_MAX) log(`${task.name} ${s.key}: not settled after ${warmed} warm-up requests`);
      const perRequest = (phases[1].ir - phases[0].ir) / (2 * N);
      const gcPerRequest = (phases[1].gcIr - phases[0].gcIr) / (2 * N);
      const allocatedPerRequest = (phases[1].allocated - phases[0].allocated) / (2 * N);
      const jitEvents = phases.reduce((n, p) => n + p.jit.optimized + p.jit.deopts, 0);
      result.scenarios[s.key] = {
        perRequest,
        gcPerRequest,
        mutatorPerRequest: perRequest - gcPerRequest,
        allocatedPerRequest,
        warmupRequests: warmed,
        jitEvents,
        phases,
        warmup: warmup.map(({ label, requests, ir, gcIr, gcs, youngBytes, allocated, jit, optimizeIr, seconds }) => ({
          label,
          requests,
          ir,
          gcIr,
          gcs,
          youngBytes,
          allocated,
          jit,
          optimizeIr,
          seconds,
        })),
      };
      if (phases[0].newConnections || phases[1].newConnections) log(`${task.name} ${s.key}: a measured phase opened a connection`);
      log(
        `${task.name} ${s.key}: ${Math.round(perRequest)} instructions/request, ${Math.round(perRequest - gcPerRequest)} outside GC ` +
          `after ${warmed} warm-up requests (collections in the phases: ${phases.map((p) => p.gcs).join(', ')}; ` +
          `TurboFan compiles and deopts: ${jitEvents})`,
      );
    }
    // Idle: what the server's timers cost per second of wall time under valgrind (the registry
    // checks connections and sweeps expiries every second); a phase pays it for its duration.
    const idle = await phase(server, 'idle', undefined, idleSeconds);
    result.idle = idle;
    result.idleIrPerSecond = idle.ir / idle.seconds;
    for (const r of Object.values(result.scenarios))
      r.timerPerRequestEstimate = (result.idleIrPerSecond * (r.phases[1].seconds - r.phases[0].seconds)) / (2 * N);
  } finally {
    server.agent.destroy();
    await stop(server);
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

// -- seed a database with a normal server, and take the reference bodies from it -----------

const keys = ['alice', 'bob', 'carol'].map((id) => ({ id, ...generateKeyPair() }));
const genesisPayload = buildGenesisPayload(
  'perf',
  { threshold: 2, signers: keys.map((k) => ({ id: k.id, public_key: k.publicKey })) },
  formatTime(Date.now()),
);
const genesis = assembleGenesis(
  genesisPayload,
  keys.slice(0, 2).map((k) => ({ signer_id: k.id, sig: signApproval(k.secretKey, hashOf(genesisPayload)) })),
  formatTime(Date.now()),
);
const genesisFile = join(dir, 'genesis.json');
writeFileSync(genesisFile, JSON.stringify(genesis));
const seedDb = join(dir, 'seed.db');
// Cluster mode: every registry, the seeder's included, on one shared database (any instance reads
// and writes it; each keeps its local cache in its own data directory).
const pg = values.store === 'postgres' ? await startPostgres() : undefined;
const pgUrl = await pg?.createDatabase();
// Under callgrind the event loop runs some fifty times slower: shedding on event-loop delay
// (README → Operations → Limits and overload) would refuse the measured reads, so it is off.
// The other limits stay as configured by default (the read path's in-flight check included).
const serveArgs = (db, level) => [
  'dist/cli/main.js',
  'serve',
  '--genesis',
  genesisFile,
  ...(pgUrl ? ['--store', pgUrl, '--data-dir', `${db}.data`] : ['--db', db]),
  '--port',
  '0',
  '--log-level',
  level,
  '--shed-reads-event-loop-delay-ms',
  '0',
  '--shed-writes-event-loop-delay-ms',
  '0',
];

async function post(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${res.status} ${JSON.stringify(json)}`);
  return json;
}

if (pgUrl) mkdirSync(`${seedDb}.data`);
const seeder = await start('seed', process.execPath, serveArgs(seedDb, 'warn'), join(dir, 'seed.stderr.log'));
const base = seeder.url;
async function commit(ops) {
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
  await post(`${base}/registry/proposals`, { payload: p, approvals: [{ signer_id: 'alice', sig: signApproval(keys[0].secretKey, id) }] });
  const r = await post(`${base}/registry/proposals/${id}/approvals`, { signer_id: 'bob', sig: signApproval(keys[1].secretKey, id) });
  if (r.status !== 'committed') throw new Error(`not committed: ${JSON.stringify(r)}`);
}
// Descriptors in commits of 100, as perf/lib/registry.mjs seeds them (seedDescriptor).
for (let i = 0; i < descriptors; i += 100) {
  await commit(
    Array.from({ length: Math.min(100, descriptors - i) }, (_, j) => ({
      op: 'put',
      descriptor: {
        id: `svc-${i + j}`,
        kind: j % 2 ? 'service' : 'node',
        // One in ten is online in us-west: a filtered page of 100 needs 1,000 of 10,000 candidates.
        labels: { region: ['us-west', 'us-east', 'eu-west', 'eu-central', 'ap-south'][j % 5], status: j % 10 < 5 ? 'online' : 'offline' },
        body: { addr: `10.0.${i / 100}.${j}:443` },
      },
    })),
  );
}
log(`seeded ${descriptors} descriptors`);

const FILTER = `/registry/head/descriptors?limit=100&filter=${encodeURIComponent("labels.status == 'online' AND labels.region == 'us-west'")}`;
const BATCH = JSON.stringify({ ids: Array.from({ length: 50 }, (_, i) => `svc-${(i * 197) % descriptors}`) });
const SCENARIOS = [
  { key: 'head', name: 'GET /registry/head', method: 'GET', path: '/registry/head', server: 'registry' },
  { key: 'version', name: 'GET /registry/1 (a version)', method: 'GET', path: '/registry/1', server: 'registry' },
  {
    key: 'lookup',
    name: 'GET /registry/descriptors/{id}',
    method: 'GET',
    path: `/registry/descriptors/svc-${Math.floor(descriptors / 2)}`,
    server: 'registry',
  },
  { key: 'filter', name: 'filtered page of 100 (status, region)', method: 'GET', path: FILTER, server: 'registry' },
  {
    key: 'batch',
    name: 'POST /registry/descriptors:batch, 50 ids',
    method: 'POST',
    path: '/registry/descriptors:batch',
    body: BATCH,
    server: 'registry',
  },
  // The head again, on registries logging at info (no line for a successful read) and at debug
  // (a line per request); compared with the bare head.
  { key: 'log-info', name: 'GET /registry/head, --log-level info', method: 'GET', path: '/registry/head', server: 'info', bare: 'head' },
  { key: 'log-debug', name: 'GET /registry/head, --log-level debug', method: 'GET', path: '/registry/head', server: 'debug', bare: 'head' },
];
const selected = SCENARIOS.filter((s) => !values.only || values.only.some((o) => s.key.includes(o)));
if (!selected.length) throw new Error(`--only ${values.only.join(' ')} selects no scenario`);

const references = {};
for (const s of selected) {
  const res = await fetch(
    `${base}${s.path}`,
    s.body ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: s.body } : {},
  );
  if (res.status !== 200) throw new Error(`${s.path}: ${res.status}`);
  s.reference = Buffer.from(await res.arrayBuffer());
  const bareKey = s.bare ?? s.key;
  s.paths = { registry: s.path, bare: `/bare/${bareKey}` };
  if (!references[bareKey]) {
    const file = join(dir, `${bareKey}.body`);
    writeFileSync(file, s.reference);
    references[bareKey] = `${bareKey}=${file}=${res.headers.get('etag') ?? ''}=${s.method}`;
  }
}
await stop(seeder);

// Each registry under valgrind gets its own copy of the database (a registry holds its file).
const dbFor = (name) => {
  const db = join(dir, `${name}.db`);
  if (pgUrl) {
    mkdirSync(`${db}.data`);
    return db;
  }
  for (const suffix of ['', '-wal']) if (existsSync(seedDb + suffix)) copyFileSync(seedDb + suffix, db + suffix);
  return db;
};
// The bare server answers each distinct body once (the log rows compare with the bare head).
const bareScenarios = [...new Map(selected.map((s) => [s.bare ?? s.key, { ...s, key: s.bare ?? s.key }])).values()];
const tasks = [
  { name: 'registry', kind: 'registry', level: 'warn', scenarios: selected.filter((s) => s.server === 'registry') },
  { name: 'bare', kind: 'bare', scenarios: bareScenarios },
  { name: 'registry-info', kind: 'registry', level: 'info', scenarios: selected.filter((s) => s.server === 'info') },
  { name: 'registry-debug', kind: 'registry', level: 'debug', scenarios: selected.filter((s) => s.server === 'debug') },
].filter((t) => t.scenarios.length);
for (const t of tasks) {
  if (t.kind === 'registry') t.args = [...serveArgs(dbFor(t.name), t.level), ...(values['serve-arg'] ?? [])];
  else t.args = ['perf/bare-server.mjs', ...Object.values(references)];
}

// The servers under valgrind, `jobs` at a time: counts do not depend on the machine's load.
const results = {};
const queue = [...tasks];
await Promise.all(
  Array.from({ length: Math.min(jobs, tasks.length) }, async () => {
    for (let t = queue.shift(); t; t = queue.shift()) results[t.name] = await measure(t);
  }),
);

// -- report ---------------------------------------------------------------------------------

const fmt = (x) => (x === undefined || Number.isNaN(x) ? '–' : Math.round(x).toLocaleString('en-US'));
const ratio = (bare, ours) => (bare && ours ? `${(bare / ours).toFixed(2)}x` : '–');
const rows = selected.map((s) => {
  const ours = results[tasks.find((t) => t.kind === 'registry' && t.scenarios.includes(s))?.name]?.scenarios[s.key];
  const ref = results.bare?.scenarios[s.bare ?? s.key];
  return {
    key: s.key,
    name: s.name,
    bytes: s.reference.length,
    registry: ours?.perRequest,
    bare: ref?.perRequest,
    ratio: ours && ref ? ref.perRequest / ours.perRequest : undefined,
    registryOutsideGc: ours?.mutatorPerRequest,
    bareOutsideGc: ref?.mutatorPerRequest,
    ratioOutsideGc: ours && ref ? ref.mutatorPerRequest / ours.mutatorPerRequest : undefined,
    registryAllocated: ours?.allocatedPerRequest,
    bareAllocated: ref?.allocatedPerRequest,
    jitEvents: (ours?.jitEvents ?? 0) + (ref?.jitEvents ?? 0),
  };
});
const byKey = Object.fromEntries(rows.map((r) => [r.key, r]));
const flags = Object.values(results)[0]?.command.replace(/^.* node /, 'node ') ?? '';
const lines = [
  `Instructions per request (${values.store === 'postgres' ? 'cluster mode: registries on one PostgreSQL database' : 'SQLite'}): callgrind Ir (user space only; no kernel time) of the server process, N = ${N} then 3N = ${3 * N} requests ` +
    `on one keep-alive connection, cost = (Ir(3N) - Ir(N)) / 2N, after a warm-up of at least ${WARMUP_MIN} requests in chunks of ` +
    `${WARMUP_CHUNK}, until two chunks in a row have no TurboFan compile and cost the same within ${SETTLED * 100}%; ${descriptors} descriptors. ` +
    `"Outside GC" leaves out the Ir inside V8's Heap::CollectGarbage; "allocated" is the young generation's bytes per request. ` +
    `Servers: valgrind --tool=callgrind --collect-atstart=yes ${flags.replace(/ --import=\S+/, '').replace(/ dist\/cli.*| perf\/bare.*/, '')} ...`,
  '',
  '| scenario | body B | instructions/request (registry) | instructions/request (bare Fastify) | ratio (bare/registry) | outside GC: registry / bare (ratio) | allocated B/request: registry / bare |',
  '|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.name}${r.jitEvents ? ' (JIT not settled)' : ''} | ${r.bytes} | ${fmt(r.registry)} | ${fmt(r.bare)} | ${ratio(r.bare, r.registry)} | ` +
      `${fmt(r.registryOutsideGc)} / ${fmt(r.bareOutsideGc)} (${ratio(r.bareOutsideGc, r.registryOutsideGc)}) | ${fmt(r.registryAllocated)} / ${fmt(r.bareAllocated)} |`,
  ),
];
if (byKey['log-info']?.registry !== undefined && byKey['log-debug']?.registry !== undefined)
  lines.push(
    '',
    `A request line logged at debug costs ${fmt(byKey['log-debug'].registry - byKey['log-info'].registry)} instructions ` +
      `(${fmt(byKey['log-debug'].registryOutsideGc - byKey['log-info'].registryOutsideGc)} outside GC, ` +
      `${fmt(byKey['log-debug'].registryAllocated - byKey['log-info'].registryAllocated)} B allocated): debug - info; ` +
      'the kernel time of its write(2) (to a file here) is not counted.',
  );
lines.push(
  '',
  'Timers, instructions per second of wall time under valgrind (idle): ' +
    Object.entries(results)
      .map(([name, r]) => `${name} ${fmt(r.idleIrPerSecond)}`)
      .join(', ') +
    `; at most ${(
      100 *
      Math.max(0, ...Object.values(results).flatMap((r) => Object.values(r.scenarios).map((x) => x.timerPerRequestEstimate / x.perRequest)))
    ).toFixed(2)}% of a row's count (timerPerRequestEstimate in the JSON).`,
);
const table = lines.join('\n');
mkdirSync('perf/results', { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const out = `perf/results/instructions-${stamp}.json`;
writeFileSync(
  out,
  JSON.stringify(
    {
      at: new Date().toISOString(),
      node: process.version,
      argv: process.argv.slice(2),
      n: N,
      warmup: { min: WARMUP_MIN, chunk: WARMUP_CHUNK, max: WARMUP_MAX, settled: SETTLED },
      tiering: values.tiering,
      youngMb,
      descriptors,
      gc: values.gc,
      store: values.store,
      rows,
      servers: results,
      seconds: (performance.now() - started) / 1000,
    },
    null,
    2,
  ),
);
await pg?.stop();
if (!values.keep) rmSync(dir, { recursive: true, force: true });
else log(`kept ${dir}`);
console.log(table);
log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s; ${out}`);
