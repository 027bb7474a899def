// The start's integrity pass (tamper-check.ts) in a worker thread: it opens the log read-only
// beside the serving connection (WAL lets it read) and reports its progress and findings to
// the main thread, which hands them to the writer. The main thread's event loop then spends
// nothing on the pass: reads answer at full speed while every signature is verified.
import { parentPort, workerData } from 'node:worker_threads';
import { ApprovalVerifier } from '../core/crypto.js';
import { fastDigest } from '../core/fast-digest.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { TamperCheck } from './tamper-check.js';
import type { TamperWorkerData, TamperWorkerMessage } from './tamper-pass.js';

const data = workerData as TamperWorkerData;
const port = parentPort!;
const post = (m: TamperWorkerMessage): void => port.postMessage(m);
const store = new SqliteStore({ path: data.path, readonly: true });
try {
  const check = new TamperCheck({
    store,
    view: { headVersion: data.headVersion, signerHistory: data.signerHistory, digest: await fastDigest() },
    genesisText: data.genesisText,
    verifier: new ApprovalVerifier(),
    sink: {
      distrust: (problem, version) => post({ type: 'distrust', problem, version }),
      verifying: (progress) => post({ type: 'verifying', progress }),
    },
  });
  await check.run();
  post({ type: 'done', findings: check.findings });
} finally {
  await store.close();
}
