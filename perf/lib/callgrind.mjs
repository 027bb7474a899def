// Servers under valgrind's callgrind, and instructions per operation: the machinery of
// perf/instructions.mjs and perf/gate.mjs.
//
// A server runs under `valgrind --tool=callgrind` with `node --single-threaded` (V8's background
// threads off: its compiler and collector run on the main thread, in the count). It may start
// uninstrumented (--instr-atstart=no: valgrind runs ~4x faster than with callgrind counting), so
// that start-up, seeding and the first warm-up cost little wall time; counting is switched on
// (`callgrind_control -i on`) before the measured phases.
//
// One operation's cost: a warm-up until the JIT has settled (read from each dump: no TurboFan
// compile or deoptimization, two chunks in a row costing the same within 0.5%), then N operations
// and 3N operations, a dump after each; (Ir(3N) - Ir(N)) / 2N, so that whatever each phase pays
// once (the dump, the sync below, the tail of the previous phase) cancels out.
//
// Before each dump the client waits for the server to go idle: a preloaded module (--import)
// answers a signal once the event loop gets to it, after a scavenge (each phase starts with an
// empty young generation), and reports the bytes allocated.
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const STARTUP_TIMEOUT_MS = 600_000;
/** Answered by the preload; SIGUSR2 and the usual ones are close-with-grace's (shutdown). */
export const SYNC_SIGNAL = 'SIGURG';
/** Settled: consecutive warm-up chunks whose cost per operation (outside TurboFan) is this close,
 * with no TurboFan compile or deoptimization. */
export const SETTLED = 0.005;

/** Writes the preload to `dir`; `gc`: what runs at each sync (none, minor, full). On SYNC_SIGNAL it
 * reports the young generation's size and the bytes allocated in it since the last report (from
 * V8's GC profiler: what each collection found, plus what is there now), then collects. The
 * report is a write(2) of `synced ...` to stdout: perf/lib/strace.mjs cuts traces there. */
export function writePreload(dir, gc = 'minor') {
  const file = join(dir, 'sync-preload.mjs');
  writeFileSync(
    file,
    `import { writeSync } from 'node:fs';
import { GCProfiler, getHeapSpaceStatistics } from 'node:v8';
const young = (spaces) =>
  spaces.reduce((n, s) => (/^new_/.test(s.space_name ?? s.spaceName) ? n + (s.space_used_size ?? s.spaceUsedSize) : n), 0);
let profiler = new GCProfiler();
profiler.start();
let since = young(getHeapSpaceStatistics());
process.on('${SYNC_SIGNAL}', () => {
  let allocated = 0;
  for (const gc of profiler.stop().statistics) {
    allocated += young(gc.beforeGC.heapSpaceStatistics) - since;
    since = young(gc.afterGC.heapSpaceStatistics);
  }
  allocated += young(getHeapSpaceStatistics()) - since;
  ${{ none: '', minor: "globalThis.gc({ type: 'minor' });", full: 'globalThis.gc();' }[gc]}
  const size = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
  since = young(getHeapSpaceStatistics());
  profiler = new GCProfiler();
  profiler.start();
  writeSync(1, \`synced \${size} \${allocated}\\n\`);
});
`,
  );
  return file;
}

/**
 * Node's flags for a measured process. `tiering: 'fast'` cuts V8's tiering budgets 10x (the JIT
 * settles in ~10x fewer requests; the optimized code, and the counts, come out the same); `seed`
 * fixes V8's hash and random seeds (hash tables and the heap's layout repeat, and so does the
 * count); `youngMb` fixes the young generation at the size a busy server has (Node 20's default
 * maximum, 16 MB semi-spaces; left to V8, under valgrind it stays small, since V8 sizes it by
 * allocation throughput in bytes/ms); `perfMap` has V8 write /tmp/perf-<pid>.map, which names
 * the JIT's code in the profiles.
 */
export function nodeFlags({
  gc = 'minor',
  tiering = 'fast',
  seed = '1',
  youngMb = 16,
  oldMb = 0,
  perfMap = false,
  logDir = tmpdir(),
  memoryReducer = true,
  extra = [],
  preload,
}) {
  return [
    '--single-threaded',
    ...(gc === 'none' ? [] : ['--expose-gc']),
    ...(tiering === 'fast' ? ['--interrupt-budget=6758', '--minimum-invocations-after-ic-update=50'] : []),
    ...(seed === 'random' ? [] : [`--hash-seed=${seed}`, `--random-seed=${seed}`]),
    ...(youngMb ? [`--min-semi-space-size=${youngMb}`, `--max-semi-space-size=${youngMb}`] : []),
    // An old generation that starts this large (MB) is not marked until it is full: no marking
    // cycle (~10^8 instructions, mostly in incremental steps outside Heap::CollectGarbage) lands
    // in one measured phase and not in the other. Collections are then scavenges only.
    ...(oldMb ? [`--initial-old-space-size=${oldMb}`] : []),
    // (--perf-basic-prof also opens V8's log, isolate-*.log in the working directory by default.)
    ...(perfMap ? ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(logDir, 'v8-%p.log')}`] : []),
    // V8's memory reducer collects on timers once allocation slows down: under valgrind, at
    // points that depend on the wall clock.
    ...(memoryReducer ? [] : ['--no-memory-reducer']),
    ...extra,
    ...(preload ? [`--import=${preload}`] : []),
  ];
}

// Processes still running when the script ends (an error) go with it.
const children = new Set();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
// Interrupted: exit, so that the handler above runs.
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => process.exit(130));

/** Starts a process that prints `listening on http://HOST:PORT`; resolves once it has. Later
 * stdout lines are the preload's "synced" answers, `done ...` answers (perf/gate-inprocess.mjs;
 * to `server.done()`), or kept in `lines`. */
export function startServer(name, command, args, stderrFile, { env = process.env, stdin = 'ignore' } = {}) {
  const errFd = openSync(stderrFile, 'w');
  const child = spawn(command, args, { stdio: [stdin, 'pipe', errFd], env });
  closeSync(errFd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  const server = { name, child, pid: child.pid, url: undefined, waiters: [], doneWaiters: [], lines: [], exited: false, stderrFile };
  /** Resolves with the next `done ...` line. */
  server.done = () => new Promise((resolve) => server.doneWaiters.push(resolve));
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
        const m = /listening on (http:\/\/[\d.]+:\d+|in-process)/.exec(line);
        if (m && !server.url) {
          server.url = m[1];
          clearTimeout(timer);
          resolve(server);
        } else if (line.startsWith('synced ')) {
          const [youngBytes, allocated] = line.slice(7).split(' ').map(Number);
          server.waiters.shift()?.({ youngBytes, allocated });
        } else if (line.startsWith('done ')) server.doneWaiters.shift()?.(line);
        else server.lines.push(line);
      }
    });
    child.once('exit', (code, signal) => {
      server.exited = true;
      clearTimeout(timer);
      for (const w of [...server.waiters.splice(0), ...server.doneWaiters.splice(0)]) w(undefined);
      reject(new Error(`${name} exited (${code ?? signal}); see ${stderrFile}`));
    });
  });
}

export async function stopServer(server) {
  if (server.exited) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 120_000);
  await exited;
  clearTimeout(timer);
}

/** Waits until the server's event loop has run the preload's signal handler: the tail of the
 * last request is then done. */
export function sync(server) {
  const synced = new Promise((resolve) => server.waiters.push(resolve));
  server.child.kill(SYNC_SIGNAL);
  return synced;
}

/** V8's collections (scavenges and full ones) all enter here; incremental marking steps, if
 * any, run outside it and count as the mutator's. */
const GC_ENTRY = /^cfn=(\(\d+\) )?v8::internal::Heap::CollectGarbage\(/;
/** libuv's timers: every setTimeout and setInterval callback (the service's sweeps, stream
 * heartbeats, the load guard's samples), the event-loop delay monitors, and V8's delayed tasks
 * (Node's platform runs them from uv timers). Work per second of wall time, not per operation. */
const TIMER_ENTRY = /^cfn=(\(\d+\) )?uv__run_timers$/;
/** The JIT at work: TurboFan (and OSR) compiles, deoptimizations, and Sparkplug and lazy
 * bytecode compiles. With --single-threaded they run on the main thread, in the count. */
const JIT_ENTRIES = {
  optimized: /^cfn=(\(\d+\) )?v8::internal::Runtime_CompileOptimized(OSR)?\(/,
  deopts: /^cfn=(\(\d+\) )?v8::internal::Runtime_NotifyDeoptimized\(/,
  baseline: /^cfn=(\(\d+\) )?v8::internal::Compiler::CompileBaseline\(/,
  lazy: /^cfn=(\(\d+\) )?v8::internal::Runtime_CompileLazy\(/,
};

/** One dump (callgrind's format with --compress-strings=no): its Ir; the part inside
 * Heap::CollectGarbage (the inclusive cost of the calls to it: each `calls=` line is followed by
 * the call's inclusive cost) and how many collections; the JIT's compiles and deoptimizations,
 * and the Ir of the TurboFan compiles; and, with `functions`, each function's self cost. */
export function parseDump(text, { functions = false } = {}) {
  const label = /^desc: Trigger: dump (\S+)$/m.exec(text)?.[1];
  const total = /^(?:summary|totals): (\d+)/m.exec(text)?.[1];
  const jit = { optimized: 0, deopts: 0, baseline: 0, lazy: 0 };
  const self = functions ? new Map() : undefined;
  let callee = '';
  let fn = '';
  let obj = '';
  let gcIr = 0;
  let gcs = 0;
  let optimizeIr = 0;
  let timerIr = 0;
  let skipCost = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const c = line.charCodeAt(0);
    if ((c >= 48 && c <= 57) || c === 43 || c === 45 || c === 42) {
      // A cost line: "<line> <Ir>", or "+n <Ir>", "-n <Ir>", "* <Ir>" (compressed positions).
      if (skipCost) skipCost = false;
      else if (self) {
        const sp = line.lastIndexOf(' ');
        const key = `${fn}\t${obj}`;
        self.set(key, (self.get(key) ?? 0) + Number(line.slice(sp + 1)));
      }
    } else if (line.startsWith('fn=')) fn = line.slice(3);
    else if (line.startsWith('ob=')) obj = line.slice(3);
    else if (line.startsWith('cfn=')) callee = line;
    else if (line.startsWith('calls=')) {
      // The next line is the call's inclusive cost: not the caller's self cost.
      skipCost = true;
      const calls = Number(line.slice(6).split(' ')[0]);
      const inclusive = () => Number(lines[i + 1].trim().split(/\s+/).pop());
      if (GC_ENTRY.test(callee)) {
        gcs += calls;
        gcIr += inclusive();
      }
      if (TIMER_ENTRY.test(callee)) timerIr += inclusive();
      for (const [kind, re] of Object.entries(JIT_ENTRIES)) if (re.test(callee)) jit[kind] += calls;
      if (JIT_ENTRIES.optimized.test(callee)) optimizeIr += inclusive();
    }
  }
  return { label, ir: Number(total), gcIr, gcs, jit, optimizeIr, timerIr, ...(self ? { self } : {}) };
}

/**
 * Controls one callgrind process (`pid`: valgrind's launcher execs the tool in place, so the pid
 * we spawned is valgrind's) whose dumps land in `dir/<name>.cg.out.<part>`. `keep`: dump files
 * are kept (else deleted once parsed); labels in `profiles` are parsed with per-function costs.
 */
export class Callgrind {
  constructor({ name, dir, pid, keep = false }) {
    Object.assign(this, { name, dir, pid, keep, parsed: new Set(), dumps: new Map(), files: new Map() });
  }

  /** `valgrind` arguments for `node nodeArgs...`. `timers: false` leaves out what libuv's timers
   * run (TIMER_ENTRY: collection is toggled off on entering uv__run_timers, on on leaving it),
   * TurboFan compiles and collections that happen inside them included: work per second of wall
   * time, which under valgrind (a second holds ~50 times fewer requests than natively, more or
   * fewer as the machine's load varies) would otherwise leak into each operation's count. */
  static args({ name, dir, instrAtStart = true, timers = true, node = process.execPath, nodeArgs }) {
    return [
      '--tool=callgrind',
      `--instr-atstart=${instrAtStart ? 'yes' : 'no'}`,
      // (--toggle-collect turns collection off at start: --collect-atstart=yes after it.)
      ...(timers ? [] : ['--toggle-collect=uv__run_timers']),
      '--collect-atstart=yes',
      `--callgrind-out-file=${join(dir, `${name}.cg.out`)}`,
      `--log-file=${join(dir, `${name}.valgrind.log`)}`,
      // Function names in full in every dump (compressed, a name is written only in the first
      // dump that uses it): parseDump looks for the collector's, callgrind_annotate for all.
      '--compress-strings=no',
      node,
      ...nodeArgs,
    ];
  }

  async control(...args) {
    const { stdout } = await execFileP('callgrind_control', [...args, String(this.pid)]);
    if (!/OK/.test(stdout)) throw new Error(`${this.name}: callgrind_control ${args.join(' ')}: ${stdout}`);
    return stdout;
  }

  /** Counting on or off (translations are redone: a second or two). */
  instrument(on) {
    return this.control(`--instr=${on ? 'on' : 'off'}`);
  }

  /** Dumps the counters (and zeroes them); returns the dump labelled `label`, parsed. */
  async dump(label, { functions = false } = {}) {
    await this.control(`--dump=${label}`);
    const prefix = `${this.name}.cg.out.`;
    for (const file of readdirSync(this.dir).filter((f) => f.startsWith(prefix) && !this.parsed.has(f))) {
      this.parsed.add(file);
      const path = join(this.dir, file);
      const parsed = parseDump(readFileSync(path, 'utf8'), { functions });
      if (parsed.label !== undefined) {
        this.dumps.set(parsed.label, parsed);
        this.files.set(parsed.label, path);
      }
      if (!this.keep && !functions) rmSync(path);
    }
    const parsed = this.dumps.get(label);
    if (parsed === undefined) throw new Error(`${this.name}: no dump file for ${label}`);
    return parsed;
  }
}

/**
 * Instructions per operation on a server under callgrind (`server`: from startServer, with a
 * `cg` Callgrind). `run(count, phaseLabel)`: performs `count` operations in sequence and
 * resolves when they are answered. Counting is off on entry and on exit when `toggle`; the
 * warm-up then begins with `uninstrumented` operations at valgrind's faster pace. `min` and
 * `max`: the counted warm-up, in operations (chunks of `chunk`).
 *
 * `jit`: 'strict' (perf/instructions.mjs) waits for two chunks in a row with no TurboFan compile
 * or deoptimization, and measures again when the JIT was at work during N or 3N. 'compiles-apart'
 * (perf/gate.mjs) leaves TurboFan's compiles out of every count (their inclusive cost, read from
 * the call graph): a busy write path goes on recompiling a function now and then for thousands of
 * operations, each compile ~10^7 instructions in one lump; it waits for two chunks in a row with
 * no deoptimization costing the same within SETTLED, and measures again when N or 3N saw a
 * deoptimization (deoptimized code runs slower: that stays in the count).
 *
 * Returns the cost per operation, with the phases and warm-up for the record; with
 * `functions`, also each function's self cost per operation (3N dump - N dump) / 2N.
 */
export async function measureOp(
  server,
  { key, run, n, chunk, min, max, uninstrumented = 0, toggle = false, functions = false, jit = 'strict', log },
) {
  const apart = jit === 'compiles-apart';
  const cg = server.cg;
  const phase = async (label, count, opts) => {
    const t0 = performance.now();
    if (count) await run(count, label);
    const { youngBytes, allocated } = (await sync(server)) ?? {};
    const d = await cg.dump(label, opts);
    return {
      label,
      ops: count,
      ir: d.ir,
      gcIr: d.gcIr,
      gcs: d.gcs,
      youngBytes,
      allocated,
      jit: d.jit,
      optimizeIr: d.optimizeIr,
      timerIr: d.timerIr,
      seconds: (performance.now() - t0) / 1000,
      self: d.self,
    };
  };
  const t0 = performance.now();
  if (uninstrumented) await run(uninstrumented, `${key}-uninstrumented`);
  if (toggle) await cg.instrument(true);
  // The counters hold the toggle and whatever came before: dropped.
  await phase(`${key}-start`, 0);
  const warmup = [];
  let warmed = 0;
  let phases;
  const steady = (p) => (p.ir - p.optimizeIr) / p.ops;
  const jitAtWork = (p) => (apart ? p.jit.deopts : p.jit.optimized || p.jit.deopts);
  for (;;) {
    const p = await phase(`${key}-warmup${warmup.length + 1}`, chunk);
    warmup.push(p);
    warmed += p.ops;
    const [a, b] = warmup.slice(-2);
    const settled = b && !jitAtWork(a) && !jitAtWork(b) && Math.abs(steady(b) - steady(a)) <= SETTLED * steady(a);
    if (warmed < min || (!settled && warmed < max)) continue;
    const attempt = warmup.length;
    phases = [await phase(`${key}-n-${attempt}`, n, { functions }), await phase(`${key}-3n-${attempt}`, 3 * n, { functions })];
    if (!phases.some(jitAtWork) || warmed >= max) break;
    log?.(`${server.name} ${key}: the JIT was at work during the measurement; more warm-up`);
    warmup.push(...phases);
    warmed += 4 * n;
  }
  if (toggle) await cg.instrument(false);
  const settled = warmed < max;
  if (!settled) log?.(`${server.name} ${key}: not settled after ${warmed} counted warm-up operations`);
  const [p1, p3] = phases;
  const counted = (p) => (apart ? p.ir - p.optimizeIr : p.ir);
  const perOp = (counted(p3) - counted(p1)) / (2 * n);
  const gcPerOp = (p3.gcIr - p1.gcIr) / (2 * n);
  const jitEvents = phases.reduce((k, p) => k + p.jit.optimized + p.jit.deopts, 0);
  let selfPerOp;
  if (functions) {
    selfPerOp = {};
    for (const fnKey of new Set([...p1.self.keys(), ...p3.self.keys()])) {
      const v = ((p3.self.get(fnKey) ?? 0) - (p1.self.get(fnKey) ?? 0)) / (2 * n);
      if (v !== 0) selfPerOp[fnKey] = v;
    }
  }
  const strip = (p) => Object.fromEntries(Object.entries(p).filter(([k]) => k !== 'self'));
  return {
    perOp,
    jit,
    turbofanPerOp: (p3.optimizeIr - p1.optimizeIr) / (2 * n),
    timersPerOp: (p3.timerIr - p1.timerIr) / (2 * n),
    gcPerOp,
    mutatorPerOp: perOp - gcPerOp,
    allocatedPerOp: p1.allocated === undefined ? undefined : (p3.allocated - p1.allocated) / (2 * n),
    warmupOps: uninstrumented + warmed,
    settled,
    jitEvents,
    seconds: (performance.now() - t0) / 1000,
    phases: phases.map(strip),
    warmup: warmup.map(strip),
    files: { n: cg.files.get(p1.label), '3n': cg.files.get(p3.label) },
    ...(selfPerOp ? { selfPerOp } : {}),
  };
}

/** Reads /tmp/perf-<pid>.map (V8's --perf-basic-prof): sorted [start, end, name] ranges. */
export function readPerfMap(pid) {
  let text;
  try {
    text = readFileSync(`/tmp/perf-${pid}.map`, 'utf8');
  } catch {
    return [];
  }
  const ranges = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (m) ranges.push([parseInt(m[1], 16), parseInt(m[1], 16) + parseInt(m[2], 16), m[3]]);
  }
  return ranges.sort((a, b) => a[0] - b[0]);
}

/** The name of the JIT code holding `address`, from readPerfMap's ranges (the last one that
 * starts at or below it: V8 may reuse an address for new code). */
export function jitName(ranges, address) {
  let lo = 0;
  let hi = ranges.length - 1;
  let found;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ranges[mid][0] <= address) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (found === undefined) return undefined;
  const [start, end, name] = ranges[found];
  return address >= start && address < end ? name : undefined;
}
