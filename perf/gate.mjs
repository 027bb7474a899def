// The perf gate: counts that do not swing with the machine's load, compared with the committed
// baselines (baselines/<profile>.json). Wall-clock figures on shared machines swing ±20% from run
// to run; a 10% gate on them would fail at random, so this one counts:
//
//   - CPU instructions per operation under callgrind (perf/lib/callgrind.mjs: N then 3N
//     operations after the JIT has settled, (Ir(3N) - Ir(N)) / 2N; the server starts
//     uninstrumented, so start-up, seeding and the first warm-up cost little wall time);
//   - system calls per operation, and fsyncs, with strace attached to a native server
//     (perf/lib/strace.mjs: the same N/3N cut at the same syncs);
//   - the server's RSS after that run (the reference load: the seeded registry, the operations
//     below, 100 stream subscribers);
//   - the golden metrics on /metrics, once the service has a /metrics endpoint.
//
// Operations, per profile (micronode: --db :memory:; macronode: a file, synchronous=FULL):
//   head, version, lookup, filter  GET /registry/head, /registry/1, /registry/descriptors/{id},
//                                  a filtered page of 100 over the seeded descriptors; over HTTP,
//                                  one keep-alive connection
//   flow        one governance flow over HTTP: read the head, propose with one approval (2-of-3),
//               approve -> commit
//   fanout100   the same flow with 100 stream subscribers connected, each getting the commit
//   verify      one approval verification, in process (both profiles: it does not touch the store)
//   replay      one replayed commit at start, in process (macronode: micronode's log starts empty)
//
// The rules (perf/gate-logic.mjs): instructions/op +10%, system calls/op +10%, fsyncs/op any
// rise, RSS +15%, a golden metric missing: the gate fails, printing which operation and by how
// much, and writes to perf/results/gate-<timestamp>/ the callgrind profile of each regressed
// operation (open it with kcachegrind or callgrind_annotate) and the ten functions whose
// instructions per operation grew most against the baseline's (baselines/<profile>.functions.json).
//
// Usage: node perf/gate.mjs [--profile micronode --profile macronode] [--only head --only flow]
//          [--write-baseline] [--baselines baselines] [--descriptors 10000] [--jobs 2] [--keep]
//   --write-baseline rewrites the baselines from this run (npm run perf:baseline); their
//   `informational` part (wall-clock figures, written by npm run perf -- --update-baselines) is kept.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Callgrind, jitName, measureOp, nodeFlags, readPerfMap, startServer, stopServer, sync, writePreload } from './lib/callgrind.mjs';
import { Client, PROFILES, flowOps, perfConfig, readPaths, seed, serveArgs, writeGenesis } from './lib/registry.mjs';
import { traceOps } from './lib/strace.mjs';
import { Subscribers } from './lib/subscribers.mjs';
import { GOLDEN_METRICS, RULES, compare, metricNames, topGrowth } from './gate-logic.mjs';

const { values } = parseArgs({
  options: {
    profile: { type: 'string', multiple: true },
    only: { type: 'string', multiple: true },
    'write-baseline': { type: 'boolean', default: false },
    baselines: { type: 'string', default: 'baselines' },
    descriptors: { type: 'string', default: '10000' },
    jobs: { type: 'string', default: '2' },
    keep: { type: 'boolean', default: false },
  },
});
const profiles = values.profile ?? PROFILES;
for (const p of profiles) if (!PROFILES.includes(p)) throw new Error(`--profile ${p}: one of ${PROFILES.join(', ')}`);
const descriptors = Number(values.descriptors);
const jobs = Math.max(1, Number(values.jobs));
const SUBSCRIBERS = 100;
/** The seed's commits after the first (of 100 descriptors, version 1: the version read). */
const SEED_BULK = 1000;
/** Operations and where they are measured. */
const SERVER_OPS = ['head', 'version', 'lookup', 'filter', 'flow', 'fanout100'];
const INPROCESS_OPS = { verify: PROFILES, replay: ['macronode'] };
const selected = (op) => !values.only || values.only.some((o) => op.includes(o));
if (values['write-baseline'] && values.only) throw new Error('--write-baseline measures every operation: no --only');
/** N, the counted warm-up's chunk and bounds, and the uncounted warm-up, per kind of operation. */
const COUNTS = {
  read: { n: 200, chunk: 400, min: 800, max: 8000, uninstrumented: 2000 },
  write: { n: 30, chunk: 30, min: 60, max: 450, uninstrumented: 150 },
  verify: { n: 200, chunk: 200, min: 400, max: 3000, uninstrumented: 400 },
  // The logs hold N and 3N commits: the warm-up opens the N log.
  replay: { n: 200, chunk: 200, min: 400, max: 2000, uninstrumented: 200 },
};
/** System calls: N and the (native, uncounted) warm-up. */
const TRACE = { read: { n: 100, warmup: 1000 }, write: { n: 40, warmup: 100 } };
const kindOf = (op) => (['flow', 'fanout100'].includes(op) ? 'write' : op === 'verify' || op === 'replay' ? op : 'read');
/** Functions kept in the baseline per operation: those with at least this share of its cost. */
const FUNCTION_SHARE = 0.002;

const started = performance.now();
const log = (msg) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1)} s] ${msg}\n`);
const dir = mkdtempSync(join(tmpdir(), 'registry-gate-'));
/** V8's perf maps of the servers (/tmp/perf-<pid>.map), removed at the end, however it ends. */
const perfMaps = new Set();
process.on('exit', () => {
  for (const file of perfMaps) rmSync(file, { force: true });
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
});
const preload = writePreload(dir, 'minor');
const genesis = writeGenesis(dir);
// No shedding by event-loop delay (the rest of the limits as perf/lib/registry.mjs raises them):
// its monitor wakes the event loop every 10 ms and reads a histogram twice a second. Timers are
// left out of the counts (Callgrind.args, timers: false), but not the event loop's own round per
// wake-up: a cost per second of wall time, and under valgrind a second holds ~50 times fewer
// requests than natively, more or fewer as the machine's load varies.
const { file: config, raised } = await perfConfig(dir, { shedReadsEventLoopDelayMs: 0, shedWritesEventLoopDelayMs: 0 });
const paths = readPaths(descriptors);
const FLAGS = { preload, memoryReducer: false, logDir: dir };
/** Under callgrind, also an old generation of 1 GiB (nodeFlags, oldMb): the counts hold no full
 * collection. The native server of the strace run keeps V8's sizing: its RSS is the one gated. */
const COUNTED = { ...FLAGS, oldMb: 1024, perfMap: true };

// -- the macronode log, seeded once by a native server -------------------------------------------

let seededDb;
async function seedFile() {
  const db = join(dir, 'seed.db');
  const server = await startServer(
    'seed',
    process.execPath,
    serveArgs({ genesis, profile: 'macronode', db, config }),
    join(dir, 'seed.stderr.log'),
  );
  const client = new Client(server.url);
  await seed(client, descriptors, 100, SEED_BULK);
  client.close();
  await stopServer(server);
  log(`seeded ${descriptors} descriptors into the macronode log`);
  return db;
}
/** A copy of the seeded log (a registry holds its file). */
function dbCopy(name) {
  const db = join(dir, `${name}.db`);
  for (const suffix of ['', '-wal']) if (existsSync(seededDb + suffix)) copyFileSync(seededDb + suffix, db + suffix);
  return db;
}

/** The operations' runners on a server at `url`; `subscribers` connects the fan-out's. */
function runners(url) {
  const client = new Client(url);
  let flows = 0;
  let subscribers;
  const read = (path) => async (count) => {
    for (let i = 0; i < count; i++) {
      const res = await client.request('GET', path);
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status} ${res.body.toString().slice(0, 200)}`);
    }
  };
  const run = {
    head: read(paths.head),
    version: read(paths.version),
    lookup: read(paths.lookup),
    filter: read(paths.filter),
    flow: async (count) => {
      for (let i = 0; i < count; i++) await client.flow(flowOps(flows++));
    },
    fanout100: async (count) => {
      for (let i = 0; i < count; i++) await subscribers.waitFor(await client.flow(flowOps(flows++)));
    },
  };
  return {
    client,
    run,
    async subscribe() {
      subscribers = new Subscribers(url, SUBSCRIBERS);
      await subscribers.open();
    },
    close() {
      subscribers?.close();
      client.close();
    },
  };
}

async function startNative(name, profile) {
  const db = profile === 'macronode' ? dbCopy(name) : undefined;
  const server = await startServer(
    name,
    process.execPath,
    [...nodeFlags(FLAGS), ...serveArgs({ genesis, profile, db, config })],
    join(dir, `${name}.stderr.log`),
  );
  return server;
}

/** A display name per callgrind function key ("fn\tobject"): JIT code named from V8's perf map. */
function namer(ranges) {
  const cwd = `file://${process.cwd()}/`;
  return (key) => {
    const [named, obj] = key.split('\t');
    // fn'2: callgrind's name for a recursive call's frames.
    const fn = named.replace(/'\d+$/, '');
    // Compiles are left out of the counts (measureOp, 'compiles-apart'), not out of functions' costs.
    if (/^v8::internal::(compiler|maglev|turboshaft)::/.test(fn)) return '(V8 optimizing compilers: left out of the count)';
    if (/^0x[0-9a-f]+$/.test(fn)) {
      const name = jitName(ranges, parseInt(fn, 16));
      return name ? `JS ${name.replaceAll(cwd, '')}` : '(JIT code, unnamed)';
    }
    return `${fn.length > 160 ? `${fn.slice(0, 157)}...` : fn}${obj && obj !== '???' ? ` [${obj.replace(/^.*\//, '')}]` : ''}`;
  };
}
const byName = (selfPerOp, name) => {
  const out = {};
  for (const [k, v] of Object.entries(selfPerOp)) out[name(k)] = (out[name(k)] ?? 0) + v;
  return out;
};

// -- the tasks ------------------------------------------------------------------------------

const instructions = Object.fromEntries(PROFILES.map((p) => [p, {}]));
const syscalls = Object.fromEntries(PROFILES.map((p) => [p, {}]));
const rss = {};
const metrics = {};

async function callgrindServer(profile) {
  const name = `cg-${profile}`;
  const db = profile === 'macronode' ? dbCopy(name) : undefined;
  const nodeArgs = [...nodeFlags(COUNTED), ...serveArgs({ genesis, profile, db, config })];
  const server = await startServer(
    name,
    'valgrind',
    Callgrind.args({ name, dir, instrAtStart: false, timers: false, nodeArgs }),
    join(dir, `${name}.stderr.log`),
  );
  server.cg = new Callgrind({ name, dir, pid: server.pid, keep: values.keep });
  perfMaps.add(`/tmp/perf-${server.pid}.map`);
  log(`${name}: listening (uncounted start)`);
  const r = runners(server.url);
  try {
    if (profile === 'micronode') {
      await seed(r.client, descriptors, 100, SEED_BULK);
      log(`${name}: seeded ${descriptors} descriptors`);
    }
    for (const op of SERVER_OPS.filter(selected)) {
      if (op === 'fanout100') await r.subscribe();
      const m = await measureOp(server, {
        key: op,
        run: r.run[op],
        ...COUNTS[kindOf(op)],
        toggle: true,
        functions: true,
        jit: 'compiles-apart',
        log,
      });
      instructions[profile][op] = m;
      log(
        `${name} ${op}: ${Math.round(m.perOp).toLocaleString('en-US')} instructions/op (${m.warmupOps} warm-up, ${m.seconds.toFixed(0)} s)`,
      );
    }
    await idle(server, instructions[profile]);
  } finally {
    r.close();
    const ranges = readPerfMap(server.pid);
    await stopServer(server);
    rmSync(`/tmp/perf-${server.pid}.map`, { force: true });
    const name2 = namer(ranges);
    for (const m of Object.values(instructions[profile])) if (m.selfPerOp && !m.functions) m.functions = byName(m.selfPerOp, name2);
  }
}

/** What the server's timers cost per second of wall time (idle, counted): a phase pays it for
 * its duration, so each operation's count holds about `timerPerOpEstimate` of it. */
async function idle(server, results, seconds = 3) {
  await server.cg.instrument(true);
  await sync(server);
  await server.cg.dump('idle-start');
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const { ir } = await server.cg.dump('idle');
  const perSecond = ir / ((performance.now() - t0) / 1000);
  for (const m of Object.values(results)) {
    m.idleIrPerSecond = perSecond;
    m.timerPerOpEstimate = (perSecond * (m.phases[1].seconds - m.phases[0].seconds)) / (2 * m.phases[0].ops);
  }
  log(`${server.name}: idle ${Math.round(perSecond).toLocaleString('en-US')} instructions/s`);
}

async function callgrindInProcess() {
  const ops = Object.keys(INPROCESS_OPS).filter((op) => selected(op) && INPROCESS_OPS[op].some((p) => profiles.includes(p)));
  if (!ops.length) return;
  const name = 'cg-inprocess';
  const work = join(dir, 'inprocess');
  mkdirSync(work);
  const nodeArgs = [
    ...nodeFlags(COUNTED),
    'perf/gate-inprocess.mjs',
    '--dir',
    work,
    '--ops',
    ops.join(','),
    '--logs',
    `${COUNTS.replay.n},${3 * COUNTS.replay.n}`,
  ];
  const server = await startServer(
    name,
    'valgrind',
    Callgrind.args({ name, dir, instrAtStart: false, timers: false, nodeArgs }),
    join(dir, `${name}.stderr.log`),
    {
      stdin: 'pipe',
    },
  );
  server.cg = new Callgrind({ name, dir, pid: server.pid, keep: values.keep });
  perfMaps.add(`/tmp/perf-${server.pid}.map`);
  log(`${name}: ready (uncounted set-up)`);
  const run = (key) => async (count) => {
    server.child.stdin.write(`run ${key} ${count}\n`);
    if (!(await server.done())) throw new Error(`${name} ${key}: no answer; see ${server.stderrFile}`);
  };
  const results = {};
  try {
    for (const op of ops) {
      results[op] = await measureOp(server, {
        key: op,
        run: run(op),
        ...COUNTS[op],
        toggle: true,
        functions: true,
        jit: 'compiles-apart',
        log,
      });
      log(`${name} ${op}: ${Math.round(results[op].perOp).toLocaleString('en-US')} instructions/op (${results[op].seconds.toFixed(0)} s)`);
    }
  } finally {
    server.child.stdin.end();
    const ranges = readPerfMap(server.pid);
    await stopServer(server);
    rmSync(`/tmp/perf-${server.pid}.map`, { force: true });
    const name2 = namer(ranges);
    for (const m of Object.values(results)) m.functions = byName(m.selfPerOp, name2);
  }
  for (const [op, m] of Object.entries(results)) for (const p of INPROCESS_OPS[op]) if (profiles.includes(p)) instructions[p][op] = m;
}

async function straceServer(profile) {
  const name = `strace-${profile}`;
  const server = await startNative(name, profile);
  const r = runners(server.url);
  try {
    if (profile === 'micronode') await seed(r.client, descriptors, 100, SEED_BULK);
    const ops = SERVER_OPS.filter(selected).map((op) => ({
      key: op,
      run: r.run[op],
      ...TRACE[kindOf(op) === 'write' ? 'write' : 'read'],
      ...(op === 'fanout100' ? { setup: () => r.subscribe() } : {}),
    }));
    const results = await traceOps(server, join(dir, `${name}.strace`), ops, log);
    for (const [op, x] of Object.entries(results)) syscalls[profile][op] = x;
    // RSS at the reference load: after all of it (the seeded registry, the operations, the subscribers).
    const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
    const kib = (field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)[1]);
    rss[profile] = { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
    log(`${name}: RSS ${rss[profile].rssMiB.toFixed(1)} MiB (peak ${rss[profile].hwmMiB.toFixed(1)} MiB)`);
    metrics[profile] = await checkMetrics(r.client);
  } finally {
    r.close();
    await stopServer(server);
  }
}

/** The golden metrics: checked once the service has /metrics (a route in src/). */
async function checkMetrics(client) {
  const src = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? src(join(d, e.name)) : [join(d, e.name)]));
  const hasRoute = src('src').some((f) => f.endsWith('.ts') && /['"`]\/metrics['"`]/.test(readFileSync(f, 'utf8')));
  const res = await client.request('GET', '/metrics');
  if (!hasRoute && res.status === 404) return { checked: false, why: 'no /metrics route in src/ yet: golden metrics not checked' };
  if (res.status !== 200) return { checked: true, present: [], why: `GET /metrics: ${res.status}` };
  return { checked: true, present: metricNames(res.body.toString()) };
}

// -- run ------------------------------------------------------------------------------------

log(
  `gate: profiles ${profiles.join(', ')}; ${descriptors} descriptors; ${jobs} at a time; load ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs` +
    (Object.keys(raised).length ? `; raised for the benchmark client: ${JSON.stringify(raised)}` : ''),
);
if (profiles.includes('macronode')) seededDb = await seedFile();
const tasks = [
  ...profiles.filter(() => SERVER_OPS.some(selected)).map((p) => () => callgrindServer(p)),
  () => callgrindInProcess(),
  ...profiles.filter(() => SERVER_OPS.some(selected)).map((p) => () => straceServer(p)),
];
const queue = [...tasks];
await Promise.all(
  Array.from({ length: Math.min(jobs, tasks.length) }, async () => {
    for (let t = queue.shift(); t; t = queue.shift()) await t();
  }),
);

// -- compare, report ------------------------------------------------------------------------

const round = (x, d = 0) => (x === undefined ? undefined : Number(x.toFixed(d)));
function measurementOf(profile) {
  const operations = {};
  for (const op of [...SERVER_OPS, ...Object.keys(INPROCESS_OPS)]) {
    const i = instructions[profile][op];
    const s = syscalls[profile][op];
    if (!i && !s) continue;
    operations[op] = {
      ...(i ? { instructions: round(i.perOp) } : {}),
      ...(s ? { syscalls: round(s.syscalls, 2), fsyncs: round(s.fsyncs, 3) } : {}),
    };
  }
  // RSS at the reference load: only after the whole of it (not with --only).
  const r = rss[profile] && !values.only ? { rss: { rssMiB: round(rss[profile].rssMiB, 1) } } : {};
  return { profile, operations, ...r, metrics: metrics[profile] };
}
/** What the baseline keeps besides the enforced figures: how each was measured. */
function detailsOf(profile) {
  const details = {};
  for (const [op, i] of Object.entries(instructions[profile]))
    details[op] = {
      instructionsOutsideGc: round(i.mutatorPerOp),
      gcInstructions: round(i.gcPerOp),
      allocatedBytes: round(i.allocatedPerOp),
      warmupOps: i.warmupOps,
      timerInstructionsEstimate: round(i.timerPerOpEstimate),
      jitEventsWhileMeasured: i.jitEvents,
    };
  for (const [op, s] of Object.entries(syscalls[profile]))
    details[op] = {
      ...details[op],
      eventLoopWaits: round(s.waits, 2),
      calls: Object.fromEntries(Object.entries(s.calls).map(([k, v]) => [k, round(v, 3)])),
      syncs: s.syncs,
    };
  return details;
}
function functionsOf(profile) {
  const operations = {};
  const floor = {};
  for (const [op, i] of Object.entries(instructions[profile])) {
    floor[op] = Math.round(FUNCTION_SHARE * i.perOp);
    const rows = Object.entries(i.functions ?? {})
      .filter(([, v]) => v >= floor[op])
      .sort((a, b) => b[1] - a[1]);
    operations[op] = Object.fromEntries(rows.map(([k, v]) => [k, Math.round(v)]));
  }
  return { floor, operations };
}

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const seconds = (performance.now() - started) / 1000;
const node = process.version;
const valgrind = execFileSync('valgrind', ['--version'], { encoding: 'utf8' }).trim();
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
} catch {
  // not a git checkout
}
const settings = {
  descriptors,
  subscribers: SUBSCRIBERS,
  counts: COUNTS,
  trace: TRACE,
  node: Object.fromEntries(
    Object.entries({ counted: COUNTED, traced: FLAGS }).map(([k, f]) => [k, nodeFlags(f).filter((x) => !/^--(import|logfile)=/.test(x))]),
  ),
  rules: RULES,
  golden: GOLDEN_METRICS,
};

async function formatJson(file, value) {
  // As `prettier --check .` wants it (npm run lint).
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  writeFileSync(file, await prettier.format(JSON.stringify(value), { ...options, filepath: file }));
}

const unsettled = profiles.flatMap((p) =>
  Object.entries(instructions[p])
    .filter(([, i]) => !i.settled)
    .map(([op]) => `${p} ${op}`),
);
if (unsettled.length) log(`not settled (the JIT was still at work): ${unsettled.join(', ')}`);

if (values['write-baseline']) {
  mkdirSync(values.baselines, { recursive: true });
  for (const profile of profiles) {
    const file = join(values.baselines, `${profile}.json`);
    const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
    await formatJson(file, {
      about:
        `The perf gate's baseline for ${profile} (${profile === 'micronode' ? '--db :memory:' : 'a file, synchronous=FULL'}): ` +
        'operations (instructions, system calls and fsyncs per operation) and rss are enforced by npm run perf:gate (perf/gate.mjs, rules in ' +
        'perf/gate-logic.mjs); details and informational are for reading. Rewritten by npm run perf:baseline: say why in the commit.',
      ...measurementOf(profile),
      recorded: { at: new Date().toISOString(), commit, node, valgrind, seconds: round(seconds) },
      settings,
      details: detailsOf(profile),
      informational: previous.informational ?? {},
    });
    await formatJson(join(values.baselines, `${profile}.functions.json`), {
      about:
        `Self instructions per operation of each function (${FUNCTION_SHARE * 100}% of the operation's cost or more: floor), ` +
        "for the gate's report of what grew when an operation's count rises.",
      ...functionsOf(profile),
    });
    log(`wrote ${file}`);
  }
}

const lines = [];
let ok = true;
const failures = [];
for (const profile of profiles) {
  const file = join(values.baselines, `${profile}.json`);
  if (!existsSync(file)) {
    lines.push(`${profile}: no baseline (${file}); run npm run perf:baseline`);
    ok = false;
    continue;
  }
  const baseline = JSON.parse(readFileSync(file, 'utf8'));
  const verdict = compare(baseline, measurementOf(profile), { requireAll: !values.only });
  ok &&= verdict.ok;
  for (const v of verdict.verdicts) {
    lines.push(`${v.status === 'fail' ? 'FAIL' : v.status === 'ok' ? '  ok' : `  ${v.status}`}  ${v.message}`);
    if (v.status === 'fail') failures.push(v);
  }
}

const outDir = `perf/results/gate-${stamp}`;
mkdirSync(outDir, { recursive: true });
const report = [];
const regressedOps = new Map();
for (const f of failures)
  if (['instructions', 'syscalls', 'fsyncs'].includes(f.metric))
    regressedOps.set(`${f.profile} ${f.op}`, [...(regressedOps.get(`${f.profile} ${f.op}`) ?? []), f]);
for (const [key, fails] of regressedOps) {
  const [profile, op] = key.split(' ');
  const f = fails.find((x) => x.metric !== 'instructions') ?? fails[0];
  const i = instructions[profile][op];
  const s = syscalls[profile][op];
  const baselineFile = join(values.baselines, `${profile}.json`);
  const baselineDetails = JSON.parse(readFileSync(baselineFile, 'utf8')).details?.[op] ?? {};
  if (s && f.metric !== 'instructions') {
    // Which system calls (and which files' fsyncs) changed.
    const rows = [];
    for (const [kind, cur, base] of [
      ['call', s.calls, baselineDetails.calls ?? {}],
      ['flush', s.syncs, baselineDetails.syncs ?? {}],
    ])
      for (const name of new Set([...Object.keys(cur), ...Object.keys(base)])) {
        const d = (cur[name] ?? 0) - (base[name] ?? 0);
        if (Math.abs(d) >= 0.005)
          rows.push(
            `| ${kind} | ${name} | ${(base[name] ?? 0).toFixed(3)} | ${(cur[name] ?? 0).toFixed(3)} | ${d > 0 ? '+' : ''}${d.toFixed(3)} |`,
          );
      }
    const text = [f.message, '', '| | system call (file) | baseline/op | now/op | change |', '|---|---|---|---|---|', ...rows].join('\n');
    writeFileSync(`${outDir}/${profile}-${op}.syscalls.md`, `${text}\n`);
    report.push(text);
  }
  if (!i) continue;
  // The profile of the regressed operation: the 3N phase's dump (N's is beside it).
  const base = `${outDir}/${profile}-${op}`;
  if (i.files['3n']) copyFileSync(i.files['3n'], `${base}.3n.callgrind.out`);
  if (i.files.n) copyFileSync(i.files.n, `${base}.n.callgrind.out`);
  const grew = fails.find((x) => x.metric === 'instructions');
  if (!grew) {
    report.push(`Profiles: ${base}.n.callgrind.out and ${base}.3n.callgrind.out (instructions did not rise: no table of functions).`);
    continue;
  }
  const fnFile = join(values.baselines, `${profile}.functions.json`);
  const fns = existsSync(fnFile) ? JSON.parse(readFileSync(fnFile, 'utf8')) : {};
  const floor = fns.floor?.[op] ?? 0;
  const top = topGrowth(fns.operations?.[op] ?? {}, i.functions, 10, floor);
  const text = [
    grew.message,
    `The ten functions whose self instructions per operation grew most (baseline: ${fnFile}` +
      (floor ? `; a function not listed there had under ${floor} instructions/op, and counts as that):` : '):'),
    '',
    '| growth/op | baseline/op | now/op | function |',
    '|---|---|---|---|',
    ...top.map(
      (t) => `| +${Math.round(t.growth)} | ${Math.round(t.baseline)} | ${Math.round(t.current)} | ${t.name.replaceAll('|', '\\|')} |`,
    ),
    '',
    `Profiles: ${base}.n.callgrind.out and ${base}.3n.callgrind.out (N and 3N operations; callgrind_annotate or kcachegrind).`,
  ].join('\n');
  writeFileSync(`${base}.top10.md`, `${text}\n`);
  report.push(text);
}
writeFileSync(
  `${outDir}/gate.json`,
  JSON.stringify(
    {
      at: new Date().toISOString(),
      commit,
      node,
      ok,
      seconds,
      measurements: Object.fromEntries(profiles.map((p) => [p, measurementOf(p)])),
      details: Object.fromEntries(profiles.map((p) => [p, detailsOf(p)])),
      rss,
      runs: Object.fromEntries(
        profiles.map((p) => [
          p,
          Object.fromEntries(
            Object.entries(instructions[p]).map(([op, m]) => [
              op,
              Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'selfPerOp' && k !== 'functions')),
            ]),
          ),
        ]),
      ),
      lines,
    },
    null,
    2,
  ),
);
if (!values.keep) rmSync(dir, { recursive: true, force: true });
else log(`kept ${dir}`);

console.log(lines.join('\n'));
if (report.length) console.log(`\n${report.join('\n\n')}`);
console.log(`\nperf gate: ${ok ? 'passed' : 'FAILED'} in ${seconds.toFixed(0)} s (${outDir})`);
process.exitCode = ok ? 0 : 1;
