// Runs the start's integrity pass (tamper-check.ts) over a log the start has loaded: in a worker
// thread for a database file, so that verifying every signature of a long log costs the event
// loop nothing; in slices on the event loop for a log kept in memory, which no other thread
// can open, and for a short log, which checks in less time than a worker takes to start.
import { Worker } from 'node:worker_threads';
import type { SignatureCheck } from '../core/approvals.js';
import type { HeadView } from '../state/head-view.js';
import type { Store } from '../store/store.js';
import { loadedLog, TamperCheck, type TamperSink } from './tamper-check.js';

export interface TamperWorkerData {
  path: string;
  headVersion: number;
  signerHistory: string;
  genesisText: string;
}

export type TamperWorkerMessage =
  | { type: 'distrust'; problem: string; version: number | undefined }
  | { type: 'verifying'; progress: string | undefined }
  | { type: 'done'; findings: number };

export interface TamperPassOptions {
  /** The SQLite file, or undefined (or ':memory:') for a log no other thread can open: in memory, or in PostgreSQL. */
  path: string | undefined;
  /** Runs the pass on the event loop even for a file: a short log checks in milliseconds, and
   * a worker thread takes hundreds to load its modules (~0.5 s of CPU unbundled). */
  inProcess?: boolean;
  store: Store;
  view: HeadView;
  genesisText: string;
  verifier: SignatureCheck;
  sink: TamperSink;
}

export interface TamperPass {
  /** Resolves with the number of findings once the pass has ended (stopped included). */
  done: Promise<number>;
  stop(): Promise<void>;
}

// Vitest runs the sources (src/*.ts), but a worker thread needs JavaScript: from src/pipeline
// and from dist/pipeline alike this URL names the compiled worker (npm test builds first).
const WORKER_URL = new URL('../../dist/pipeline/tamper-worker.js', import.meta.url);

export function startTamperPass(options: TamperPassOptions): TamperPass {
  const { sink } = options;
  if (options.path === undefined || options.path === ':memory:' || options.inProcess) {
    const check = new TamperCheck({ ...options, view: options.view });
    return {
      done: check.run().then(() => check.findings),
      stop: () => Promise.resolve(check.stop()),
    };
  }
  const path = options.path;
  const loaded = loadedLog(options.view);
  const data: TamperWorkerData = {
    path,
    headVersion: loaded.headVersion,
    signerHistory: loaded.signerHistory,
    genesisText: options.genesisText,
  };
  const worker = new Worker(WORKER_URL, { workerData: data });
  let findings = 0;
  let stopped = false;
  const done = new Promise<number>((resolve) => {
    worker.on('message', (m: TamperWorkerMessage) => {
      if (m.type === 'distrust') {
        findings++;
        sink.distrust(m.problem, m.version);
      } else if (m.type === 'verifying') sink.verifying(m.progress);
    });
    worker.on('error', (e) => {
      if (stopped) return;
      findings++;
      sink.distrust(`the check did not complete: ${e.message}`);
    });
    worker.on('exit', () => {
      sink.verifying(undefined);
      resolve(findings);
    });
  });
  return {
    done,
    async stop() {
      stopped = true;
      await worker.terminate();
      await done;
    },
  };
}
