// The auditor's signature checks, spread over worker threads (one per core) while the replay
// goes on in order on the main thread. The replay hands each approval over as a job and carries
// on as if it verified; the jobs go out in batches, and a failure is reported as the FIRST failing
// job in the order the replay made them (settle()), so the verdict and the message are the ones
// an in-order, in-thread check gives. Few signatures (a small log), one core, or `workers: 0`
// verify in-thread: starting threads would cost more than it saves.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { verifyApproval, verifyApprovalFast } from './primitives.js';
import type { SignatureBatch, SignatureResult } from './sig-worker.js';

/** One approval to check, and the error that reports it when it does not verify. */
export interface SignatureJob {
  key: string;
  payloadHash: string;
  sig: string;
  failure: () => Error;
}

export interface SignatureOptions {
  /** Node's crypto (OpenSSL) instead of strict @noble/ed25519 (see verifyApprovalFast). */
  fast?: boolean;
  /** Worker threads; default os.availableParallelism(), 0 verifies in-thread. */
  workers?: number;
}

/** Below this many signatures in all, the pool never starts: they are verified in-thread. */
export const IN_THREAD_BELOW = 64;
const BATCH = 128;
/** Batches in flight per worker before the replay waits for one to come back. */
const AHEAD = 4;

// A Worker runs a JavaScript file, never TypeScript: the script is the compiled one in dist/. This
// URL resolves to <repo>/dist/verify/sig-worker.js both from src/verify/signatures.ts (vitest runs
// the sources; `npm test` builds dist/ first) and from dist/verify/signatures.js (the CLI), since
// both folders sit two levels below the repository root. When the file is missing (sources run
// without a build), the checks are made in-thread and the summary says so.
const WORKER_URL = new URL('../../dist/verify/sig-worker.js', import.meta.url);

interface Job extends SignatureJob {
  seq: number;
}
interface PoolWorker {
  worker: Worker;
  pending: Map<number, { jobs: Job[]; resolve: () => void }>;
}

export class SignatureVerifier {
  readonly fast: boolean;
  private readonly wanted: number;
  private readonly check: (key: string, payloadHash: string, sig: string) => boolean;
  private pool: PoolWorker[] | undefined;
  private buffer: Job[] = [];
  private seq = 0;
  private batchId = 0;
  private readonly inflight = new Map<number, Promise<void>>();
  private failed: Job | undefined;
  private note = '';
  private closing = false;
  /** Signatures checked so far, and by how many threads (0: in-thread). */
  verified = 0;
  threads = 0;

  constructor(options: SignatureOptions = {}) {
    this.fast = options.fast === true;
    this.check = this.fast ? verifyApprovalFast : verifyApproval;
    // Strict verification costs far more than the replay: every core verifies, the main thread
    // mostly waits. Node's crypto is fast enough that the replay's own hashing weighs as much:
    // one core is left to the main thread.
    const cores = availableParallelism();
    this.wanted = options.workers ?? (cores < 2 ? 0 : this.fast ? cores - 1 : cores);
    if (this.wanted > 0 && !existsSync(fileURLToPath(WORKER_URL))) {
      this.note = `in-thread: ${fileURLToPath(WORKER_URL)} is missing (run npm run build)`;
      this.wanted = 0;
    }
  }

  /** What verified the signatures, for the summary. */
  describe(): string {
    const how = this.fast ? 'Node crypto Ed25519 (--fast)' : 'strict Ed25519 (@noble/ed25519)';
    if (this.threads > 0) return `${how} on ${this.threads} worker thread${this.threads > 1 ? 's' : ''}`;
    if (this.note) return `${how}, ${this.note}`;
    if (this.wanted === 0) return `${how}, in-thread`;
    return `${how}, in-thread (fewer than ${IN_THREAD_BELOW})`;
  }

  /** Takes a job. In-thread (workers: 0) it is checked at once and a failure throws; otherwise it
   * is batched, and its failure shows in mustWait / wait() / settle(). */
  add(job: SignatureJob): void {
    const j: Job = { ...job, seq: this.seq++ };
    if (this.wanted === 0) {
      this.verified++;
      if (!this.check(j.key, j.payloadHash, j.sig)) throw j.failure();
      return;
    }
    this.buffer.push(j);
    if (this.buffer.length >= (this.pool ? BATCH : IN_THREAD_BELOW)) this.dispatch();
  }

  /** True when the caller should `await wait()`: a failure is known, or enough is in flight. */
  get mustWait(): boolean {
    return this.failed !== undefined || (this.pool !== undefined && this.inflight.size >= this.pool.length * AHEAD);
  }

  /** Throws the first failure once it is known for sure; else waits for a batch to come back. */
  async wait(): Promise<void> {
    if (this.failed) {
      const first = await this.settle();
      if (first) throw first;
    }
    if (this.inflight.size > 0) await Promise.race(this.inflight.values());
  }

  /** Checks everything taken so far; answers the error of the first job (in the order taken) that
   * does not verify, or undefined. */
  async settle(): Promise<Error | undefined> {
    if (this.buffer.length > 0) {
      if (this.pool || this.wanted === 0) this.dispatch();
      else {
        // Fewer than IN_THREAD_BELOW in all: in-thread, in order, up to the first failure.
        const jobs = this.buffer;
        this.buffer = [];
        for (const j of jobs) {
          this.verified++;
          if (!this.check(j.key, j.payloadHash, j.sig)) {
            this.fail(j);
            break;
          }
        }
      }
    }
    while (this.inflight.size > 0) await Promise.all(this.inflight.values());
    return this.failed?.failure();
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all((this.pool ?? []).map((p) => p.worker.terminate()));
  }

  private fail(j: Job): void {
    if (!this.failed || j.seq < this.failed.seq) this.failed = j;
  }

  private start(): PoolWorker[] {
    const pool: PoolWorker[] = [];
    for (let i = 0; i < this.wanted; i++) {
      const p: PoolWorker = { worker: new Worker(WORKER_URL, { workerData: { fast: this.fast } }), pending: new Map() };
      p.worker.on('message', (r: SignatureResult) => {
        const batch = p.pending.get(r.id);
        if (!batch) return;
        p.pending.delete(r.id);
        batch.jobs.forEach((j, n) => {
          if (r.ok[n] !== 1) this.fail(j);
        });
        this.verified += batch.jobs.length;
        batch.resolve();
      });
      // A worker that dies (it should not) leaves its batches to the main thread: the verdict
      // must not depend on a thread's health.
      const orphan = (why: string) => {
        if (this.closing) return;
        const at = this.pool?.indexOf(p) ?? -1;
        if (at >= 0) this.pool!.splice(at, 1);
        this.note = `a worker thread stopped (${why}); its signatures were verified in-thread`;
        for (const [id, batch] of p.pending) {
          p.pending.delete(id);
          this.inThread(batch.jobs);
          batch.resolve();
        }
      };
      p.worker.on('error', (e) => orphan(e.message));
      p.worker.on('exit', (code) => orphan(`exit code ${code}`));
      pool.push(p);
    }
    this.threads = pool.length;
    return pool;
  }

  private inThread(jobs: Job[]): void {
    for (const j of jobs) {
      this.verified++;
      if (!this.check(j.key, j.payloadHash, j.sig)) this.fail(j);
    }
  }

  private dispatch(): void {
    const jobs = this.buffer;
    this.buffer = [];
    if (jobs.length === 0) return;
    this.pool ??= this.start();
    if (this.pool.length === 0) return this.inThread(jobs);
    // the worker with the fewest batches in flight
    const p = this.pool.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.batchId++;
    const done = new Promise<void>((resolve) => p.pending.set(id, { jobs, resolve }));
    const tracked = done.then(() => void this.inflight.delete(id));
    this.inflight.set(id, tracked);
    const batch: SignatureBatch = {
      id,
      keys: jobs.map((j) => j.key),
      hashes: jobs.map((j) => j.payloadHash),
      sigs: jobs.map((j) => j.sig),
    };
    p.worker.postMessage(batch);
  }
}
