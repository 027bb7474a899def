// The SQLite backend of the log: WAL, synchronous=FULL unless configured otherwise, numbered
// migrations, one transaction per writer step.
import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AuditHead } from '../core/audit.js';
import type { Synchronous } from '../config/config.js';
import { StoreBusyError } from '../errors.js';
import type { Approval, ProposalStatus } from '../core/schemas.js';
import type {
  CheckpointEntry,
  CheckpointInfo,
  ProposalQuery,
  ProposalSummary,
  Store,
  StoredCommit,
  StoredCommitRow,
  StoredProposal,
  WriteBatch,
} from './store.js';
import { toCheckpoint, type CheckpointRow } from './checkpoint-row.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface SqliteOptions {
  /** A file path, or ':memory:' for a log that keeps nothing on disk. */
  path: string;
  synchronous?: Synchronous;
  /** Opens the log for reading only, beside the process that serves it (verify, backup, the
   * start's verification worker): no lock, no migration, no write. */
  readonly?: boolean;
}

interface ProposalRow {
  seq: number;
  id: string;
  base_version: number;
  created_at: string;
  expires_at: number;
  proposed_threshold: number | null;
  received_at: string;
  status: ProposalStatus;
  version: number | null;
}

const SUMMARY_COLUMNS = 'seq, id, base_version, created_at, expires_at, proposed_threshold, received_at, status, version';

/** Applies every numbered migration newer than the database's user_version. */
export function migrate(db: Database.Database, dir = MIGRATIONS_DIR): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  const files = readdirSync(dir)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .sort();
  let version = current;
  for (const file of files) {
    const n = Number.parseInt(file, 10);
    if (n <= current) continue;
    db.transaction(() => {
      db.exec(readFileSync(`${dir}/${file}`, 'utf8'));
      db.pragma(`user_version = ${n}`);
    })();
    version = n;
  }
  return version;
}

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmt;

  /** The lock that keeps a second writer off this log (see OwnerLock). */
  private readonly lock: OwnerLock | undefined;

  constructor(options: SqliteOptions) {
    const memory = options.path === ':memory:';
    this.lock = options.readonly || memory ? undefined : new OwnerLock(options.path);
    try {
      this.db = new Database(options.path, { readonly: options.readonly === true, fileMustExist: options.readonly === true });
    } catch (e) {
      this.lock?.release();
      throw e;
    }
    try {
      // better-sqlite3 waits synchronously, which would stall every read: do not wait long.
      this.db.pragma('busy_timeout = 50');
      if (!options.readonly) {
        if (!memory) this.db.pragma('journal_mode = WAL');
        this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
        this.db.pragma('foreign_keys = ON');
        migrate(this.db);
      }
    } catch (e) {
      this.db.close();
      this.lock?.release();
      if ((e as { code?: string }).code === 'SQLITE_BUSY') throw new StoreBusyError(options.path);
      throw e;
    }
    const db = this.db;
    this.stmt = {
      commit: db.prepare<[number], { version: number; hash: string; record: string }>(
        'SELECT version, hash, record FROM commits WHERE version = ?',
      ),
      commits: db.prepare<[number, number], { version: number; hash: string; payload_hash: string; record: string }>(
        'SELECT version, hash, payload_hash, record FROM commits WHERE version >= ? ORDER BY version LIMIT ?',
      ),
      latestCheckpoint: db.prepare<[], CheckpointRow>('SELECT * FROM checkpoints ORDER BY version DESC LIMIT 1'),
      checkpoints: db.prepare<[], CheckpointRow>('SELECT * FROM checkpoints ORDER BY version'),
      checkpointEntries: db.prepare<[number, string, number], { id: string; changed_in: number; descriptor: string }>(
        'SELECT id, changed_in, descriptor FROM checkpoint_entries WHERE version = ? AND id > ? ORDER BY id LIMIT ?',
      ),
      insertEntry: db.prepare('INSERT INTO checkpoint_entries (version, id, changed_in, descriptor) VALUES (?, ?, ?, ?)'),
      sealCheckpoint: db.prepare(
        'INSERT INTO checkpoints (version, hash, state_root, descriptor_count, created_at, signer_set, signer_history) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      dropCheckpoint: db.prepare('DELETE FROM checkpoints WHERE version = ?'),
      dropEntries: db.prepare(
        'DELETE FROM checkpoint_entries WHERE version = ? AND id IN (SELECT id FROM checkpoint_entries WHERE version = ? LIMIT ?)',
      ),
      orphanVersions: db.prepare<[], { version: number }>(
        'SELECT DISTINCT version FROM checkpoint_entries WHERE version NOT IN (SELECT version FROM checkpoints)',
      ),
      // The trigger commits_no_update (migration 004) refuses whatever retention may not prune.
      pruneCommits: db.prepare(
        `UPDATE commits SET record = '' WHERE version BETWEEN ? AND ? AND version > 0 AND record <> ''
           AND version < (SELECT MIN(version) FROM checkpoints)
           AND NOT EXISTS (SELECT 1 FROM json_each(record, '$.payload.ops') WHERE json_extract(value, '$.op') = 'set_signers')
           AND NOT EXISTS (SELECT 1 FROM commits p, json_each(CASE WHEN p.record = '' THEN '{}' ELSE p.record END, '$.payload.ops') o
                           WHERE p.version = commits.version - 1 AND json_extract(o.value, '$.op') = 'set_signers')`,
      ),
      // By id (the payload hash), so that each slice costs its own rows, not a scan of every proposal.
      pruneCommittedProposals: db.prepare(
        `UPDATE proposals SET payload = '' WHERE payload <> '' AND status = 'committed'
           AND id IN (SELECT payload_hash FROM commits WHERE version BETWEEN ? AND ? AND record = '')`,
      ),
      pruneSettled: db.prepare(
        `UPDATE proposals SET payload = '' WHERE id IN (SELECT id FROM proposals WHERE status IN ('stale', 'expired')
           AND payload <> '' AND COALESCE(settled_at, 0) < ? LIMIT ?)`,
      ),
      unprunedSettled: db.prepare<[], { n: number }>(
        "SELECT COUNT(*) AS n FROM proposals WHERE status IN ('stale', 'expired') AND payload <> ''",
      ),
      insertCommit: db.prepare('INSERT INTO commits (version, hash, payload_hash, record) VALUES (?, ?, ?, ?)'),
      proposal: db.prepare<[string], ProposalRow & { payload: string }>(`SELECT ${SUMMARY_COLUMNS}, payload FROM proposals WHERE id = ?`),
      proposalsAll: db.prepare<[number, number], ProposalRow>(
        `SELECT ${SUMMARY_COLUMNS} FROM proposals WHERE seq > ? ORDER BY seq LIMIT ?`,
      ),
      proposalsByStatus: db.prepare<[string, number, number], ProposalRow>(
        `SELECT ${SUMMARY_COLUMNS} FROM proposals WHERE status = ? AND seq > ? ORDER BY seq LIMIT ?`,
      ),
      approvals: db.prepare<[string], Approval>('SELECT signer_id, sig FROM approvals WHERE proposal_id = ? ORDER BY signer_id'),
      insertProposal: db.prepare(
        "INSERT INTO proposals (id, payload, base_version, created_at, expires_at, proposed_threshold, received_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')",
      ),
      insertApproval: db.prepare('INSERT INTO approvals (proposal_id, signer_id, sig, received_at) VALUES (?, ?, ?, ?)'),
      setStatus: db.prepare("UPDATE proposals SET status = ?, version = ?, settled_at = ? WHERE id = ? AND status = 'pending'"),
      auditHead: db.prepare<[], AuditHead>('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1'),
      audit: db.prepare<[number, number], { event: string }>('SELECT event FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?'),
      // The WHERE clause is the partial index audit_freezes's own (migration 003), so that it is used.
      lastFreeze: db.prepare<[], { event: string }>(
        "SELECT event FROM audit WHERE json_extract(event, '$.kind') IN ('frozen', 'thawed') ORDER BY seq DESC LIMIT 1",
      ),
      insertAudit: db.prepare('INSERT INTO audit (seq, hash, event) VALUES (?, ?, ?)'),
      insertSetting: db.prepare('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING'),
      setting: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE name = ?'),
    };
  }

  /** The durability settings in force on this connection, as SQLite reports them. */
  durability(): { journalMode: string; synchronous: number } {
    return {
      journalMode: this.db.pragma('journal_mode', { simple: true }) as string,
      synchronous: this.db.pragma('synchronous', { simple: true }) as number,
    };
  }

  private toSummary(row: ProposalRow): ProposalSummary {
    return {
      seq: row.seq,
      id: row.id,
      baseVersion: row.base_version,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      proposedThreshold: row.proposed_threshold,
      receivedAt: row.received_at,
      status: row.status,
      version: row.version,
      approvals: this.stmt.approvals.all(row.id),
    };
  }

  async genesis(): Promise<StoredCommit | undefined> {
    return this.commit(0);
  }

  async initialize(genesis: StoredCommit & { payloadHash: string }): Promise<void> {
    this.stmt.insertCommit.run(0, genesis.hash, genesis.payloadHash, genesis.text);
  }

  async commit(version: number): Promise<StoredCommit | undefined> {
    const row = this.stmt.commit.get(version);
    return row && { version: row.version, hash: row.hash, text: row.record };
  }

  async commits(from: number, limit: number): Promise<StoredCommitRow[]> {
    return this.stmt.commits
      .all(from, limit)
      .map((row) => ({ version: row.version, hash: row.hash, payloadHash: row.payload_hash, text: row.record }));
  }

  async latestCheckpoint(): Promise<CheckpointInfo | undefined> {
    const row = this.stmt.latestCheckpoint.get();
    return row && toCheckpoint(row);
  }

  async checkpoints(): Promise<CheckpointInfo[]> {
    return this.stmt.checkpoints.all().map(toCheckpoint);
  }

  async checkpointEntries(version: number, afterId: string, limit: number): Promise<CheckpointEntry[]> {
    return this.stmt.checkpointEntries.all(version, afterId, limit).map((r) => ({ id: r.id, changedIn: r.changed_in, json: r.descriptor }));
  }

  async addCheckpointEntries(version: number, entries: readonly CheckpointEntry[]): Promise<void> {
    const insert = this.stmt.insertEntry;
    this.db.transaction(() => {
      for (const e of entries) insert.run(version, e.id, e.changedIn, e.json);
    })();
  }

  async sealCheckpoint(c: CheckpointInfo): Promise<void> {
    this.stmt.sealCheckpoint.run(c.version, c.hash, c.stateRoot, c.descriptorCount, c.createdAt, c.signerSet, c.signerHistory);
  }

  async dropCheckpoint(version: number): Promise<void> {
    this.stmt.dropCheckpoint.run(version);
  }

  async dropCheckpointEntries(version: number, limit: number): Promise<number> {
    return this.stmt.dropEntries.run(version, version, limit).changes;
  }

  async orphanCheckpointVersions(): Promise<number[]> {
    return this.stmt.orphanVersions.all().map((r) => r.version);
  }

  async pruneCommits(from: number, to: number): Promise<number> {
    return this.db.transaction(() => {
      const n = this.stmt.pruneCommits.run(from, to).changes;
      this.stmt.pruneCommittedProposals.run(from, to);
      return n;
    })();
  }

  async pruneSettledProposals(before: number, limit: number): Promise<number> {
    return this.stmt.pruneSettled.run(before, limit).changes;
  }

  async unprunedSettledCount(): Promise<number> {
    return this.stmt.unprunedSettled.get()!.n;
  }

  async proposal(id: string): Promise<StoredProposal | undefined> {
    const row = this.stmt.proposal.get(id);
    return row && { ...this.toSummary(row), payloadText: row.payload };
  }

  async proposals(q: ProposalQuery): Promise<ProposalSummary[]> {
    const rows = q.status
      ? this.stmt.proposalsByStatus.all(q.status, q.afterSeq, q.limit)
      : this.stmt.proposalsAll.all(q.afterSeq, q.limit);
    return rows.map((row) => this.toSummary(row));
  }

  async auditHead(): Promise<AuditHead | null> {
    return this.stmt.auditHead.get() ?? null;
  }

  async audit(fromSeq: number, limit: number): Promise<string[]> {
    return this.stmt.audit.all(fromSeq, limit).map((r) => r.event);
  }

  async lastFreezeEvent(): Promise<string | undefined> {
    return this.stmt.lastFreeze.get()?.event;
  }

  async write(batch: WriteBatch): Promise<void> {
    const s = this.stmt;
    this.db.transaction(() => {
      if (batch.proposal) {
        const p = batch.proposal;
        s.insertProposal.run(p.id, p.payloadText, p.baseVersion, p.createdAt, p.expiresAt, p.proposedThreshold, p.receivedAt);
      }
      for (const a of batch.approvals ?? []) s.insertApproval.run(a.proposalId, a.signer_id, a.sig, a.receivedAt);
      if (batch.commit) s.insertCommit.run(batch.commit.version, batch.commit.hash, batch.commit.payloadHash, batch.commit.text);
      for (const c of batch.statusChanges ?? []) {
        if (s.setStatus.run(c.status, c.version ?? null, batch.settledAt ?? Date.now(), c.proposalId).changes !== 1) {
          throw new Error(`proposal ${c.proposalId} is not pending`);
        }
      }
      for (const e of batch.audit) s.insertAudit.run(e.event.seq, e.hash, e.text);
    })();
  }

  async setting(name: string, initial: () => string): Promise<string> {
    const found = this.stmt.setting.get(name);
    if (found) return found.value;
    this.stmt.insertSetting.run(name, initial());
    return this.stmt.setting.get(name)!.value;
  }

  /** Copies the live database to `destination` consistently, with SQLite's online backup API
   * (pages written meanwhile are copied again). */
  async backup(destination: string, progress?: (done: number, total: number) => void): Promise<void> {
    // SQLite restarts an online backup whenever the source is written meanwhile: copied 256
    // pages at a time, a large log that commits faster than one pass would never finish. Once
    // a restart is seen, the rest is copied in one step, from one snapshot (WAL does not block
    // the writer meanwhile). Not -1 for "all": better-sqlite3 clamps it to 0, which copies nothing.
    let last = 0;
    let restarted = false;
    await this.db.backup(destination, {
      progress: ({ totalPages, remainingPages }) => {
        const done = totalPages - remainingPages;
        if (done < last) restarted = true;
        last = done;
        progress?.(done, totalPages);
        return restarted ? 0x7fffffff : 256;
      },
    });
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
    this.lock?.release();
  }
}

/**
 * One process writes a log: the single writer is only single if nobody else writes. The owner
 * holds an exclusive lock on a small SQLite file beside the log (`<db>.lock`), from the start
 * until it closes; the operating system drops the lock when the process dies, SIGKILL
 * included, so no stale lock outlives a crash. A second `serve` on the same log fails at start.
 * The log itself stays in WAL's normal locking mode, so that other processes can read it while
 * it is served (`registry verify --db`, `registry backup`).
 */
export class OwnerLock {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(`${path}.lock`);
    try {
      this.db.pragma('busy_timeout = 0');
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.exec('BEGIN EXCLUSIVE');
    } catch (e) {
      this.db.close();
      if ((e as { code?: string }).code === 'SQLITE_BUSY') throw new StoreBusyError(path);
      throw e;
    }
  }

  release(): void {
    if (this.db.open) this.db.close();
  }
}
