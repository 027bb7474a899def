// The one interface the writer, replay and the read plane use to reach the log. It returns
// promises although SQLite answers synchronously: a PostgreSQL backend will sit behind it.
import type { ChainedEvent, AuditHead } from '../core/audit.js';
import type { Approval, ProposalStatus } from '../core/schemas.js';

export interface StoredCommit {
  version: number;
  hash: string;
  /** The record's canonical JSON. */
  text: string;
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
  commits(from: number, limit: number): Promise<StoredCommit[]>;
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
  /** The setting `name`, created with `initial()` by the first caller that asks for it. */
  setting(name: string, initial: () => string): Promise<string>;
  close(): Promise<void>;
}
