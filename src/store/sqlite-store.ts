// The SQLite backend of the log: WAL, synchronous=FULL unless configured otherwise, numbered
// migrations, one transaction per writer step.
import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AuditHead } from '../core/audit.js';
import type { Synchronous } from '../config/config.js';
import { StoreBusyError } from '../errors.js';
import type { Approval, ProposalStatus } from '../core/schemas.js';
import type { ProposalQuery, ProposalSummary, Store, StoredCommit, StoredProposal, WriteBatch } from './store.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export interface SqliteOptions {
  /** A file path, or ':memory:' for a log that keeps nothing on disk. */
  path: string;
  synchronous?: Synchronous;
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

  constructor(options: SqliteOptions) {
    this.db = new Database(options.path);
    try {
      // One process owns a log: the single writer is only single if nobody else writes.
      // EXCLUSIVE keeps the file lock from the first write on, so a second `serve` on the
      // same file fails at start instead of serving a stale head with a failing write plane.
      this.db.pragma('locking_mode = EXCLUSIVE');
      // better-sqlite3 waits synchronously, which would stall every read: do not wait long.
      this.db.pragma('busy_timeout = 50');
      if (options.path !== ':memory:') this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
      this.db.pragma('foreign_keys = ON');
      this.db.exec('BEGIN IMMEDIATE; COMMIT');
      migrate(this.db);
    } catch (e) {
      this.db.close();
      if ((e as { code?: string }).code === 'SQLITE_BUSY') throw new StoreBusyError(options.path);
      throw e;
    }
    const db = this.db;
    this.stmt = {
      commit: db.prepare<[number], { version: number; hash: string; record: string }>(
        'SELECT version, hash, record FROM commits WHERE version = ?',
      ),
      commits: db.prepare<[number, number], { version: number; hash: string; record: string }>(
        'SELECT version, hash, record FROM commits WHERE version >= ? ORDER BY version LIMIT ?',
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
      setStatus: db.prepare("UPDATE proposals SET status = ?, version = ? WHERE id = ? AND status = 'pending'"),
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

  async commits(from: number, limit: number): Promise<StoredCommit[]> {
    return this.stmt.commits.all(from, limit).map((row) => ({ version: row.version, hash: row.hash, text: row.record }));
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
        if (s.setStatus.run(c.status, c.version ?? null, c.proposalId).changes !== 1) {
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

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
