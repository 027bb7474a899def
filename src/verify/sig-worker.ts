// A worker thread of the auditor's signature pool (signatures.ts): verifies batches of approvals
// and answers one byte per approval, 1 when it verifies. Strict @noble/ed25519 by default, Node's
// crypto under `verify --fast` (workerData.fast); the same functions as the in-thread path.
import { parentPort, workerData } from 'node:worker_threads';
import { verifyApproval, verifyApprovalFast } from './primitives.js';

/** A batch: the i-th approval is sigs[i] over `registry-approval-v1:` + hashes[i] under keys[i]. */
export interface SignatureBatch {
  id: number;
  keys: string[];
  hashes: string[];
  sigs: string[];
}
export interface SignatureResult {
  id: number;
  ok: Uint8Array;
}

const check = (workerData as { fast?: boolean } | null)?.fast ? verifyApprovalFast : verifyApproval;
const port = parentPort;
if (!port) throw new Error('sig-worker.js runs as a worker thread of the signature pool');
port.on('message', (batch: SignatureBatch) => {
  const ok = new Uint8Array(batch.sigs.length);
  for (let i = 0; i < ok.length; i++) ok[i] = check(batch.keys[i]!, batch.hashes[i]!, batch.sigs[i]!) ? 1 : 0;
  port.postMessage({ id: batch.id, ok } satisfies SignatureResult, [ok.buffer]);
});
