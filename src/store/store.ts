// The one interface the writer, replay and the read plane use to reach the log. It returns
// promises although SQLite answers synchronously: the PostgreSQL backend sits behind it too, and
// there several processes share one log (a write that loses a race throws WriteConflict).
import type { ChainedEvent, AuditHead } from '../core/audit.js';
import type { Approval, ProposalStatus } from '../core/schemas.js';

export interface StoredCommit {
  version: number;
  hash: string;
  /** The record's canonical JSON; '' once retention has pruned it (README → Durability). */
  text: string;
}

/** A commit as the log holds it, pruned or not: what a walk of the whole chain reads. */
export interface StoredCommitRow extends StoredCommit {
  payloadHash: string;
}

/** A checkpoint (SPEC §10) without its state. */
export interface CheckpointInfo {
  version: number;
  hash: string;
  stateRoot: string;
  descriptorCount: number;
  createdAt: string;
  /** The signer set in force after `version`, canonical JSON. */
  signerSet: string;
  /** Every signer set in force up to `version`, JSON `[{from, set}]`, genesis first. */
  signerHistory: string;
}

/** One descriptor of a checkpoint's state. */
export interface CheckpointEntry {
  id: string;
  changedIn: number;
  /** The descriptor's canonical JSON. */
  json: string;
}

/** A proposal without its payload: what listings and the writer's bookkeeping need. */
export interface ProposalSummary {
  seq: number;
  id: string;
  baseVersion: number;
  createdAt: string;
  expiresAt: number;
  /** The threshold of its set_signers op, if it has one. */
  proposedThreshold: number | null;
  receivedAt: string;
  status: ProposalStatus;
  version: number | null;
  /** In signer_id order. */
  approvals: Approval[];
}

export interface StoredProposal extends ProposalSummary {
  /** The payload's canonical JSON. */
  payloadText: string;
}

export interface NewProposal {
  id: string;
  payloadText: string;
  baseVersion: number;
  createdAt: string;
  expiresAt: number;
  proposedThreshold: number | null;
  receivedAt: string;
}

export interface NewApproval extends Approval {
  proposalId: string;
  receivedAt: string;
}

export interface StatusChange {
  proposalId: string;
  status: Exclude<ProposalStatus, 'pending'>;
  version?: number;
}

/** Everything one step of the writer changes, written in one transaction. */
export interface WriteBatch {
  proposal?: NewProposal;
  /** When `statusChanges` settle their proposals (ms since the epoch). */
  settledAt?: number;
  approvals?: NewApproval[];
  statusChanges?: StatusChange[];
  commit?: StoredCommit & { payloadHash: string };
  audit: ChainedEvent[];
}

export interface ProposalQuery {
  status?: ProposalStatus;
  afterSeq: number;
  limit: number;
}

export interface Store {
  /** The stored genesis (version 0), or undefined for an empty log. */
  genesis(): Promise<StoredCommit | undefined>;
  /** Writes the genesis into an empty log. */
  initialize(genesis: StoredCommit & { payloadHash: string }): Promise<void>;
  commit(version: number): Promise<StoredCommit | undefined>;
  /** Commits with version ≥ `from`, in order, at most `limit`. */
  commits(from: number, limit: number): Promise<StoredCommitRow[]>;
  /** The newest checkpoint, or undefined. */
  latestCheckpoint(): Promise<CheckpointInfo | undefined>;
  /** Every checkpoint, oldest first. */
  checkpoints(): Promise<CheckpointInfo[]>;
  /** Entries of checkpoint `version`'s state with id > `afterId`, by id, at most `limit`. */
  checkpointEntries(version: number, afterId: string, limit: number): Promise<CheckpointEntry[]>;
  /** Adds entries to the state of a checkpoint being built (one transaction). */
  addCheckpointEntries(version: number, entries: readonly CheckpointEntry[]): Promise<void>;
  /** Writes the checkpoint row once every entry is there: the checkpoint exists from then on. */
  sealCheckpoint(info: CheckpointInfo): Promise<void>;
  /** Drops a checkpoint (never the newest), then up to `limit` of its entries per call; also
   * removes entries left without a checkpoint by a crash. Returns the entries removed. */
  dropCheckpointEntries(version: number, limit: number): Promise<number>;
  /** Versions whose checkpoint entries exist without a checkpoint row (a crash while building). */
  orphanCheckpointVersions(): Promise<number[]>;
  dropCheckpoint(version: number): Promise<void>;
  /** Prunes the records of commits in [from, to] older than the oldest checkpoint (not the genesis,
   * not a signer-set change) and the payloads of their proposals. Returns the versions pruned. */
  pruneCommits(from: number, to: number): Promise<number>;
  /** Prunes up to `limit` payloads of stale or expired proposals settled before `before` (ms). */
  pruneSettledProposals(before: number, limit: number): Promise<number>;
  /** Stale or expired proposals whose payload is not pruned yet. */
  unprunedSettledCount(): Promise<number>;
  proposal(id: string): Promise<StoredProposal | undefined>;
  /** Summaries in arrival order after `afterSeq`, without payloads. */
  proposals(query: ProposalQuery): Promise<ProposalSummary[]>;
  auditHead(): Promise<AuditHead | null>;
  /** Audit events' canonical JSON from `fromSeq` on, at most `limit`. */
  audit(fromSeq: number, limit: number): Promise<string[]>;
  /** The last `frozen` or `thawed` audit event's canonical JSON, or undefined: the write
   * plane's freeze state, found without reading the whole audit log. */
  lastFreezeEvent(): Promise<string | undefined>;
  write(batch: WriteBatch): Promise<void>;
  /** Shared logs (PostgreSQL) only: whether this process does the maintenance (checkpoints,
   * retention) now. One process at a time does; absent, this one always does. */
  leads?(): Promise<boolean>;
  /** Shared logs only: gives the maintenance up for another process to take. */
  resign?(): Promise<void>;
  /** Shared logs only: calls `onCommit` with each version any process commits from now on, and
   * `onListening` whenever listening (re)starts (what was sent meanwhile is lost: catch up then).
   * Resolves to a function that stops. Absent, this process is the log's only writer. */
  watchCommits?(onCommit: (version: number) => void, onListening: () => void): Promise<() => Promise<void>>;
  /** The setting `name`, created with `initial()` by the first caller that asks for it. */
  setting(name: string, initial: () => string): Promise<string>;
  close(): Promise<void>;
}
