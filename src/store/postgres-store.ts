// The PostgreSQL backend of the log, through the `postgres` client: the same tables, the same
// append-only triggers (migrations/postgres/) and the same semantics as the SQLite backend,
// method for method. One instance owns a log for now (cluster mode, issue 18, comes later).
//
// Guarantees, as the Store interface promises them:
// - every method that writes is one transaction (`sql.begin`): a failure changes nothing;
// - the database itself refuses to rewrite history (triggers, TRUNCATE included), so a bug here
//   or a hand-typed statement cannot either;
// - one process writes a log: the owner holds a session-level advisory lock on a connection of
//   its own from open() to close(). A second store on the same database fails at open with
//   StoreBusyError, as a second SQLite process does. PostgreSQL drops the lock when that
//   session ends (the process died, the connection broke): from then on this store refuses to
//   write, since another process may own the log.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import type { AuditHead } from '../core/audit.js';
import type { Approval, ProposalStatus } from '../core/schemas.js';
import { StartError, StoreBusyError } from '../errors.js';
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

export const POSTGRES_MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/postgres/', import.meta.url));

/** The advisory lock keys, one per purpose, in a namespace of our own (hashtextextended in SQL). */
const OWNER_LOCK = 'signed-registry: the log owner';
const MIGRATION_LOCK = 'signed-registry: migrations';

export interface PostgresOptions {
  /** Connections for reads and writes (the owner lock holds one more). Default 10. */
  maxConnections?: number;
  /** Seconds to wait for a connection. Default 30. */
  connectTimeout?: number;
}

/** Parses BIGINT (int8) columns, COUNT(*) included, as numbers: every one the log holds (versions,
 * sequence numbers, ms since the epoch) is a safe integer. The client's default is a string. */
const BIGINT_AS_NUMBER = {
  to: 20,
  from: [20],
  serialize: (x: number) => String(x),
  parse: (x: string) => {
    const n = Number(x);
    if (!Number.isSafeInteger(n)) throw new RangeError(`${x} is not a safe integer`);
    return n;
  },
};

type Sql = postgres.Sql<{ bigint: number }>;

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:@/?#]*):[^@/?#]*@/i, '$1:***@');
}

type ClientOptions = postgres.Options<{ bigint: typeof BIGINT_AS_NUMBER }>;

function connect(url: string, options: PostgresOptions, extra: ClientOptions): Sql {
  const multiHost = /^[a-z]+:\/\/[^/?#]*,/i.test(url);
  // A log is written: with several hosts, find the primary, unless the URL says otherwise.
  const pick: ClientOptions = multiHost && !/[?&]target_session_attrs=/.test(url) ? { target_session_attrs: 'primary' } : {};
  return postgres(url, {
    max: options.maxConnections ?? 10,
    connect_timeout: options.connectTimeout ?? 30,
    types: { bigint: BIGINT_AS_NUMBER },
    // The migrations' notices (IF NOT EXISTS …) are not the operator's business.
    onnotice: () => {},
    connection: { application_name: 'signed-registry' },
    ...pick,
    ...extra,
  });
}

/** Applies every numbered migration of `dir` newer than the database's, each in a transaction
 * that holds a transaction-level advisory lock, so that processes starting at once apply each
 * migration once. The versions applied are rows of `schema_migrations`. Returns the version reached. */
export async function migratePostgres<T extends Record<string, unknown>>(
  sql: postgres.Sql<T>,
  dir = POSTGRES_MIGRATIONS_DIR,
): Promise<number> {
  const files = readdirSync(dir)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .sort();
  let version = 0;
  for (const file of files) {
    const n = Number.parseInt(file, 10);
    version = await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtextextended(${MIGRATION_LOCK}, 0))`;
      await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    INTEGER PRIMARY KEY,
        name       TEXT NOT NULL,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
      )`;
      const [row] = await tx<{ v: number }[]>`SELECT COALESCE(MAX(version), 0)::integer AS v FROM schema_migrations`;
      const current = row?.v ?? 0;
      if (n <= current) return current;
      // No parameters: the simple protocol, which runs a file of several statements.
      await tx.unsafe(readFileSync(`${dir}/${file}`, 'utf8'));
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${n}, ${file})`;
      return n;
    });
  }
  return version;
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
  /** In signer_id order (json_agg: the client parses it). */
  approvals: Approval[];
}

const toSummary = (row: ProposalRow): ProposalSummary => ({
  seq: row.seq,
  id: row.id,
  baseVersion: row.base_version,
  createdAt: row.created_at,
  expiresAt: row.expires_at,
  proposedThreshold: row.proposed_threshold,
  receivedAt: row.received_at,
  status: row.status,
  version: row.version,
  approvals: row.approvals,
});

/** Rows of checkpoint entries per INSERT: 4 parameters each, well under the protocol's 65,535. */
const ENTRIES_PER_INSERT = 2000;

export class PostgresStore implements Store {
  private closing = false;
  /** Set when the owner lock's session ended while the store was open. */
  private lockLost: string | undefined;

  private constructor(
    private readonly sql: Sql,
    /** The connection that holds the owner lock, and nothing else. */
    private readonly lockSql: Sql,
    private readonly where: string,
  ) {}

  /** Connects, takes the owner lock (StoreBusyError when another process holds it), then
   * migrates. Fails with StartError when the database cannot be reached. */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresStore> {
    const where = redactUrl(url);
    const opened: { store?: PostgresStore } = {};
    // One connection, kept for the store's life: no idle timeout (0), no maximum lifetime.
    const lockSql = connect(url, options, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      onclose: () => opened.store?.ownerLockClosed(),
    });
    let locked: boolean;
    try {
      const [row] = await lockSql<{ locked: boolean }[]>`SELECT pg_try_advisory_lock(hashtextextended(${OWNER_LOCK}, 0)) AS locked`;
      locked = row?.locked === true;
    } catch (e) {
      await lockSql.end({ timeout: 1 }).catch(() => {});
      throw new StartError(`cannot open the PostgreSQL log at ${where}: ${(e as Error).message}`);
    }
    if (!locked) {
      await lockSql.end({ timeout: 1 });
      throw new StoreBusyError(where);
    }
    const sql = connect(url, options, {});
    try {
      await migratePostgres(sql);
    } catch (e) {
      await Promise.all([sql.end({ timeout: 1 }), lockSql.end({ timeout: 1 })]).catch(() => {});
      throw new StartError(`cannot migrate the PostgreSQL log at ${where}: ${(e as Error).message}`);
    }
    opened.store = new PostgresStore(sql, lockSql, where);
    return opened.store;
  }

  private ownerLockClosed(): void {
    if (!this.closing) this.lockLost = `the connection holding the lock on the log ${this.where} closed: another process may own it now`;
  }

  /** Throws unless this store still owns the log: every write goes through here first. */
  private owned(): void {
    if (this.lockLost) throw new Error(this.lockLost);
    if (this.closing) throw new Error('the store is closed');
  }

  async genesis(): Promise<StoredCommit | undefined> {
    return this.commit(0);
  }

  async initialize(genesis: StoredCommit & { payloadHash: string }): Promise<void> {
    this.owned();
    await this
      .sql`INSERT INTO commits (version, hash, payload_hash, record) VALUES (0, ${genesis.hash}, ${genesis.payloadHash}, ${genesis.text})`;
  }

  async commit(version: number): Promise<StoredCommit | undefined> {
    const [row] = await this.sql<{ version: number; hash: string; record: string }[]>`
      SELECT version, hash, record FROM commits WHERE version = ${version}`;
    return row && { version: row.version, hash: row.hash, text: row.record };
  }

  async commits(from: number, limit: number): Promise<StoredCommitRow[]> {
    const rows = await this.sql<{ version: number; hash: string; payload_hash: string; record: string }[]>`
      SELECT version, hash, payload_hash, record FROM commits WHERE version >= ${from} ORDER BY version LIMIT ${limit}`;
    return rows.map((row) => ({ version: row.version, hash: row.hash, payloadHash: row.payload_hash, text: row.record }));
  }

  async latestCheckpoint(): Promise<CheckpointInfo | undefined> {
    const [row] = await this.sql<CheckpointRow[]>`SELECT * FROM checkpoints ORDER BY version DESC LIMIT 1`;
    return row && toCheckpoint(row);
  }

  async checkpoints(): Promise<CheckpointInfo[]> {
    return (await this.sql<CheckpointRow[]>`SELECT * FROM checkpoints ORDER BY version`).map(toCheckpoint);
  }

  async checkpointEntries(version: number, afterId: string, limit: number): Promise<CheckpointEntry[]> {
    const rows = await this.sql<{ id: string; changed_in: number; descriptor: string }[]>`
      SELECT id, changed_in, descriptor FROM checkpoint_entries WHERE version = ${version} AND id > ${afterId} ORDER BY id LIMIT ${limit}`;
    return rows.map((r) => ({ id: r.id, changedIn: r.changed_in, json: r.descriptor }));
  }

  async addCheckpointEntries(version: number, entries: readonly CheckpointEntry[]): Promise<void> {
    this.owned();
    if (entries.length === 0) return;
    await this.sql.begin(async (tx) => {
      for (let i = 0; i < entries.length; i += ENTRIES_PER_INSERT) {
        const rows = entries
          .slice(i, i + ENTRIES_PER_INSERT)
          .map((e) => ({ version, id: e.id, changed_in: e.changedIn, descriptor: e.json }));
        await tx`INSERT INTO checkpoint_entries ${tx(rows, 'version', 'id', 'changed_in', 'descriptor')}`;
      }
    });
  }

  async sealCheckpoint(c: CheckpointInfo): Promise<void> {
    this.owned();
    await this.sql`
      INSERT INTO checkpoints (version, hash, state_root, descriptor_count, created_at, signer_set, signer_history)
      VALUES (${c.version}, ${c.hash}, ${c.stateRoot}, ${c.descriptorCount}, ${c.createdAt}, ${c.signerSet}, ${c.signerHistory})`;
  }

  async dropCheckpoint(version: number): Promise<void> {
    this.owned();
    await this.sql`DELETE FROM checkpoints WHERE version = ${version}`;
  }

  async dropCheckpointEntries(version: number, limit: number): Promise<number> {
    this.owned();
    const r = await this.sql`
      DELETE FROM checkpoint_entries WHERE version = ${version}
        AND id IN (SELECT id FROM checkpoint_entries WHERE version = ${version} LIMIT ${limit})`;
    return r.count;
  }

  async orphanCheckpointVersions(): Promise<number[]> {
    const rows = await this.sql<{ version: number }[]>`
      SELECT DISTINCT version FROM checkpoint_entries WHERE version NOT IN (SELECT version FROM checkpoints) ORDER BY version`;
    return rows.map((r) => r.version);
  }

  async pruneCommits(from: number, to: number): Promise<number> {
    this.owned();
    return this.sql.begin(async (tx) => {
      // The trigger commits_no_update (migration 004) refuses whatever retention may not prune.
      const pruned = await tx`
        UPDATE commits SET record = '' WHERE version BETWEEN ${from} AND ${to} AND version > 0 AND record <> ''
          AND version < (SELECT MIN(version) FROM checkpoints) AND NOT registry_changes_signers(record)
          AND NOT registry_changes_signers(COALESCE((SELECT p.record FROM commits p WHERE p.version = commits.version - 1), ''))`;
      // By id (the payload hash), so that each slice costs its own rows, not a scan of every proposal.
      await tx`
        UPDATE proposals SET payload = '' WHERE payload <> '' AND status = 'committed'
          AND id IN (SELECT payload_hash FROM commits WHERE version BETWEEN ${from} AND ${to} AND record = '')`;
      return pruned.count;
    });
  }

  async pruneSettledProposals(before: number, limit: number): Promise<number> {
    this.owned();
    const r = await this.sql`
      UPDATE proposals SET payload = '' WHERE id IN (SELECT id FROM proposals WHERE status IN ('stale', 'expired')
        AND payload <> '' AND COALESCE(settled_at, 0) < ${before} ORDER BY seq LIMIT ${limit})`;
    return r.count;
  }

  async unprunedSettledCount(): Promise<number> {
    const [row] = await this.sql<
      { n: number }[]
    >`SELECT COUNT(*) AS n FROM proposals WHERE status IN ('stale', 'expired') AND payload <> ''`;
    return row?.n ?? 0;
  }

  /** The summary columns, with the approvals in signer_id order ("C" collation: byte order). */
  private summaryColumns() {
    return this.sql`p.seq, p.id, p.base_version, p.created_at, p.expires_at, p.proposed_threshold, p.received_at, p.status, p.version,
      COALESCE((SELECT json_agg(json_build_object('signer_id', a.signer_id, 'sig', a.sig) ORDER BY a.signer_id)
        FROM approvals a WHERE a.proposal_id = p.id), '[]'::json) AS approvals`;
  }

  async proposal(id: string): Promise<StoredProposal | undefined> {
    const [row] = await this.sql<(ProposalRow & { payload: string })[]>`
      SELECT ${this.summaryColumns()}, p.payload FROM proposals p WHERE p.id = ${id}`;
    return row && { ...toSummary(row), payloadText: row.payload };
  }

  async proposals(q: ProposalQuery): Promise<ProposalSummary[]> {
    const rows = q.status
      ? await this.sql<ProposalRow[]>`
          SELECT ${this.summaryColumns()} FROM proposals p WHERE p.status = ${q.status} AND p.seq > ${q.afterSeq} ORDER BY p.seq LIMIT ${q.limit}`
      : await this.sql<ProposalRow[]>`
          SELECT ${this.summaryColumns()} FROM proposals p WHERE p.seq > ${q.afterSeq} ORDER BY p.seq LIMIT ${q.limit}`;
    return rows.map(toSummary);
  }

  async auditHead(): Promise<AuditHead | null> {
    const [row] = await this.sql<AuditHead[]>`SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`;
    return row ? { seq: row.seq, hash: row.hash } : null;
  }

  async audit(fromSeq: number, limit: number): Promise<string[]> {
    const rows = await this.sql<{ event: string }[]>`SELECT event FROM audit WHERE seq >= ${fromSeq} ORDER BY seq LIMIT ${limit}`;
    return rows.map((r) => r.event);
  }

  async lastFreezeEvent(): Promise<string | undefined> {
    // The WHERE clause is the partial index audit_freezes's own (migration 003), so that it is used.
    const [row] = await this.sql<{ event: string }[]>`
      SELECT event FROM audit WHERE (registry_json(event) ->> 'kind') IN ('frozen', 'thawed') ORDER BY seq DESC LIMIT 1`;
    return row?.event;
  }

  async write(batch: WriteBatch): Promise<void> {
    this.owned();
    const settledAt = batch.settledAt ?? Date.now();
    await this.sql.begin(async (tx) => {
      // Sent at once (pipelined), in this order; the first statement that fails fails the
      // transaction, and a status change that finds its proposal no longer pending too.
      const statements: postgres.PendingQuery<postgres.Row[]>[] = [];
      const p = batch.proposal;
      if (p)
        statements.push(tx`
          INSERT INTO proposals (id, payload, base_version, created_at, expires_at, proposed_threshold, received_at, status)
          VALUES (${p.id}, ${p.payloadText}, ${p.baseVersion}, ${p.createdAt}, ${p.expiresAt}, ${p.proposedThreshold}, ${p.receivedAt}, 'pending')`);
      for (const a of batch.approvals ?? [])
        statements.push(tx`
          INSERT INTO approvals (proposal_id, signer_id, sig, received_at) VALUES (${a.proposalId}, ${a.signer_id}, ${a.sig}, ${a.receivedAt})`);
      const c = batch.commit;
      if (c)
        statements.push(tx`
          INSERT INTO commits (version, hash, payload_hash, record) VALUES (${c.version}, ${c.hash}, ${c.payloadHash}, ${c.text})`);
      const changes = (batch.statusChanges ?? []).map((s) => {
        statements.push(tx`
          UPDATE proposals SET status = ${s.status}, version = ${s.version ?? null}, settled_at = ${settledAt}
          WHERE id = ${s.proposalId} AND status = 'pending'`);
        return { id: s.proposalId, at: statements.length - 1 };
      });
      for (const e of batch.audit) statements.push(tx`INSERT INTO audit (seq, hash, event) VALUES (${e.event.seq}, ${e.hash}, ${e.text})`);
      const results = await Promise.all(statements);
      for (const { id, at } of changes) if (results[at]?.count !== 1) throw new Error(`proposal ${id} is not pending`);
    });
  }

  async setting(name: string, initial: () => string): Promise<string> {
    const [found] = await this.sql<{ value: string }[]>`SELECT value FROM settings WHERE name = ${name}`;
    if (found) return found.value;
    this.owned();
    await this.sql`INSERT INTO settings (name, value) VALUES (${name}, ${initial()}) ON CONFLICT (name) DO NOTHING`;
    const [row] = await this.sql<{ value: string }[]>`SELECT value FROM settings WHERE name = ${name}`;
    if (!row) throw new Error(`the setting ${name} vanished`);
    return row.value;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.sql.end({ timeout: 5 });
    // Ending the owner's session releases its advisory lock.
    await this.lockSql.end({ timeout: 5 });
  }
}
