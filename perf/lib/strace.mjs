// System calls per operation: `strace -f -y` attached to a running server (every thread), its
// trace cut at the preload's `synced` writes (perf/lib/callgrind.mjs's sync), as instructions
// are cut at callgrind's dumps. N then 3N operations; (calls(3N) - calls(N)) / 2N per system
// call, and the fsyncs by file (strace -y prints each descriptor's path).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { sync } from './callgrind.mjs';

export const STRACE = '/usr/bin/strace';
/** The event loop's waits: how many there are per request depends on whether the next request
 * is already there when the loop looks (timing), so they are counted apart (`waits`), outside
 * `syscalls`. */
export const WAIT_CALLS = new Set(['epoll_wait', 'epoll_pwait', 'epoll_pwait2']);
/** The system calls that make the kernel flush to the disk. */
export const SYNC_CALLS = new Set(['fsync', 'fdatasync', 'sync_file_range', 'syncfs', 'sync', 'msync']);

/** Attaches strace to every thread of `pid`; resolves once it has attached. */
export function attach(pid, file) {
  const child = spawn(STRACE, ['-f', '-y', '-s', '24', '-o', file, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`strace did not attach to ${pid}: ${err}`)), 30_000);
    child.stderr.on('data', (d) => {
      err += d;
      if (/attached/.test(err)) {
        clearTimeout(timer);
        resolve({
          child,
          detach: () =>
            new Promise((done) => {
              child.once('exit', done);
              child.kill('SIGINT');
            }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`strace exited (${code}): ${err}`));
    });
  });
}

const SYSCALL = /^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)(\(| resumed>)/;
const MARKER = /^\d+\s+write\(1(<[^>]*>)?, "synced /;

/**
 * Splits a trace at the markers: segment k holds the calls between marker k and k+1 (the one
 * before the first marker is dropped). Each segment: { calls: {name: n}, syncs: {"name fd": n} }.
 * A call interrupted by another thread's (`<unfinished ...>` then `<... resumed>`) counts once.
 */
export function segments(text) {
  const out = [];
  let current;
  for (const line of text.split('\n')) {
    if (MARKER.test(line)) {
      current = { calls: {}, syncs: {} };
      out.push(current);
      continue;
    }
    if (!current) continue;
    const m = SYSCALL.exec(line);
    if (!m || m[2] === ' resumed>') continue;
    const name = m[1];
    current.calls[name] = (current.calls[name] ?? 0) + 1;
    if (SYNC_CALLS.has(name)) {
      // fdatasync(12</tmp/x/registry.db-wal>) -> the file, with the temporary directory left out.
      const fd = /^\d+\s+[a-z_]+\(\d+<([^>]*)>/.exec(line)?.[1] ?? '?';
      const key = `${name} ${fd.replace(/^.*\//, '')}`;
      current.syncs[key] = (current.syncs[key] ?? 0) + 1;
    }
  }
  // The last marker's segment runs to the detach: not a phase.
  out.pop();
  return out;
}

const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
const diff = (a, b, n) => {
  const out = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const v = ((b[k] ?? 0) - (a[k] ?? 0)) / n;
    if (v !== 0) out[k] = v;
  }
  return out;
};

/** Per operation from an N segment and a 3N segment: system calls (not the event loop's
 * waits), waits, fsyncs, and each call's and each file's flushes. */
export function perOp(segN, seg3N, n) {
  const calls = diff(segN.calls, seg3N.calls, 2 * n);
  const syncs = diff(segN.syncs, seg3N.syncs, 2 * n);
  const waits = Object.entries(calls).reduce((k, [name, v]) => (WAIT_CALLS.has(name) ? k + v : k), 0);
  return { syscalls: sum(calls) - waits, waits, fsyncs: sum(syncs), calls, syncs };
}

/**
 * System calls per operation on a native server started with the sync preload. `ops`: { key,
 * run(count), n, warmup, setup? }. Operations without `setup` are warmed up (`warmup`
 * operations) before strace attaches; one with `setup` (e.g. subscribers connecting) runs it,
 * and its warm-up, traced but not counted. Then N and 3N operations, a sync after each.
 */
export async function traceOps(server, file, ops, log) {
  for (const op of ops) if (op.warmup && !op.setup) await op.run(op.warmup);
  await sync(server);
  const tracer = await attach(server.pid, file);
  /** The label of each segment: the sync that ends it. */
  const labels = [];
  const mark = async (label) => {
    await sync(server);
    labels.push(label);
  };
  try {
    // The first marker opens the first segment.
    await sync(server);
    for (const op of ops) {
      if (op.setup) {
        await op.setup();
        if (op.warmup) await op.run(op.warmup);
        await mark(`${op.key} setup`);
      }
      await op.run(op.n);
      await mark(`${op.key} n`);
      await op.run(3 * op.n);
      await mark(`${op.key} 3n`);
    }
  } finally {
    await tracer.detach();
  }
  const segs = segments(readFileSync(file, 'utf8'));
  if (segs.length !== labels.length) throw new Error(`strace: ${segs.length} segments in ${file}, not ${labels.length}`);
  const results = {};
  for (const op of ops) {
    const i = labels.indexOf(`${op.key} n`);
    results[op.key] = perOp(segs[i], segs[i + 1], op.n);
    log?.(
      `${server.name} ${op.key}: ${results[op.key].syscalls.toFixed(2)} system calls/op, ${results[op.key].fsyncs.toFixed(3)} fsyncs/op`,
    );
  }
  return results;
}
