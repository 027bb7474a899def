// A `checkpoints` row as both backends read it (the same columns in SQLite and PostgreSQL).
import type { CheckpointInfo } from './store.js';

export interface CheckpointRow {
  version: number;
  hash: string;
  state_root: string;
  descriptor_count: number;
  created_at: string;
  signer_set: string;
  signer_history: string;
}

export const toCheckpoint = (r: CheckpointRow): CheckpointInfo => ({
  version: r.version,
  hash: r.hash,
  stateRoot: r.state_root,
  descriptorCount: r.descriptor_count,
  createdAt: r.created_at,
  signerSet: r.signer_set,
  signerHistory: r.signer_history,
});
