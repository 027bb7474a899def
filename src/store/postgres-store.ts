// The PostgreSQL backend of the log, through the `postgres` client: the same tables, the same
// append-only triggers (migrations/postgres/) and the same semantics as the SQLite backend,
// method for method, and shared: several registry instances write one log (README → Cluster).
//
// Guarantees, as the Store interface promises them:
// - every method that writes is one transaction (`sql.begin`): a failure changes nothing;
// - the database itself refuses to rewrite history (triggers, TRUNCATE included), so a bug here
//   or a hand-typed statement cannot either;
// - writes from several processes serialize on the log itself: every writer batch appends audit
//   events at the audit head it saw, and a commit at the version after the head it saw; the
//   primary keys and the contiguity triggers let exactly one of two racing batches in, and the
//   other fails with WriteConflict, having changed nothing (the writer catches up and redoes it);
// - each commit NOTIFYs its version on COMMIT_CHANNEL in its own transaction, so a listener
//   hears of it once it is visible (watchCommits);
// - maintenance (checkpoints, retention, pruning) is one process's at a time: the one holding a
//   session-level advisory lock on a connection of its own (leads()). PostgreSQL drops the lock
//   when that session ends (the process died, the connection broke), and another takes over;
//   this store refuses maintenance writes from then on until it holds the lock again.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import type { AuditHead } from '../core/audit.js';
import type { Approval, ProposalStatus } from '../core/schemas.js';
import { StartError, WriteConflict } from '../errors.js';
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

/** The channel each commit's version is notified on. */
export const COMMIT_CHANNEL = 'registry_commit';

export const POSTGRES_MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/postgres/', import.meta.url));

/** The advisory lock keys, one per purpose, in a namespace of our own (hashtextextended in SQL). */
const MAINTENANCE_LOCK = 'signed-registry: maintenance';
const MIGRATION_LOCK = 'signed-registry: migrations';

export interface PostgresOptions {
  /** Connections for reads and writes (the owner lock holds one more). Default 10. */
  maxConnections?: number;
  /** Seconds to wait for a connection. Default 10: a host that does not answer (a machine lost
   * during a failover) delays the next host of a multi-host URL by this much. */
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
    connect_timeout: options.connectTimeout ?? 10,
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

/** The WriteConflict a failed batch amounts to, when another process wrote first: a row with
 * its key (an audit sequence number, a version, a proposal or approval) is there already, or a
 * contiguity trigger found the head moved. Undefined for any other failure. */
function conflictOf(e: unknown): WriteConflict | undefined {
  if (e instanceof WriteConflict) return e;
  const { code, message } = e as { code?: unknown; message?: unknown };
  // 40P01 deadlock_detected, 40001 serialization_failure: PostgreSQL rolled the transaction back.
  if (
    code === '23505' ||
    code === '40P01' ||
    code === '40001' ||
    (code === '23000' && typeof message === 'string' && message.includes('must be contiguous'))
  )
    return new WriteConflict(`another instance wrote first (${String(message)})`);
  return undefined;
}

/** Rows of checkpoint entries per INSERT: 4 parameters each, well under the protocol's 65,535. */
const ENTRIES_PER_INSERT = 2000;

export class PostgresStore implements Store {
  private closing = false;
  /** Whether this process holds the maintenance lock (see leads()). */
  private leading = false;

  private constructor(
    private readonly sql: Sql,
    /** The connection that holds the maintenance lock, and nothing else. */
    private readonly leadSql: Sql,
    private readonly where: string,
  ) {}

  /** Connects and migrates. Fails with StartError when the database cannot be reached. */
  static async open(url: string, options: PostgresOptions = {}): Promise<PostgresStore> {
    const where = redactUrl(url);
    const sql = connect(url, options, {});
    try {
      await migratePostgres(sql);
    } catch (e) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw new StartError(`cannot open the PostgreSQL log at ${where}: ${(e as Error).message}`);
    }
    const opened: { store?: PostgresStore } = {};
    // One connection, kept for the store's life: no idle timeout (0), no maximum lifetime, so that
    // the session holding the lock ends only when the process or the connection does.
    const leadSql = connect(url, options, {
      max: 1,
      idle_timeout: 0,
      max_lifetime: null,
      onclose: () => {
        if (opened.store) opened.store.leading = false;
      },
    });
    opened.store = new PostgresStore(sql, leadSql, where);
    return opened.store;
  }

  /** Whether this process does the log's maintenance now: it holds the maintenance lock, taking
   * it when nobody does. Called before each maintenance pass; false while the database is away. */
  async leads(): Promise<boolean> {
    if (this.closing) return false;
    try {
      // Asked of the database each time: the client reconnects by itself, and a new session does
      // not hold the old one's lock. A session that holds it already gets true (and holds it once
      // more: it is released whole when the session ends, or by resign()).
      const [row] = await this.leadSql<{ locked: boolean }[]>`
        SELECT pg_try_advisory_lock(hashtextextended(${MAINTENANCE_LOCK}, 0)) AS locked`;
      this.leading = row?.locked === true;
    } catch {
      this.leading = false;
    }
    return this.leading;
  }

  /** Gives the maintenance lock up, for another instance to take (this one refuses writes). */
  async resign(): Promise<void> {
    if (!this.leading || this.closing) return;
    this.leading = false;
    await this.leadSql`SELECT pg_advisory_unlock_all()`.catch(() => {});
  }

  /** Throws unless this store may do maintenance writes: it holds the maintenance lock. */
  private maintaining(): void {
    this.open_();
    if (!this.leading) throw new Error(`this process does not hold the maintenance lock on the log ${this.where}`);
  }

  private open_(): void {
    if (this.closing) throw new Error('the store is closed');
  }

  /** Calls `onCommit` with each version committed from now on, by any process, and `onListening`
   * each time the listening connection is (re)established: notifications sent while it was down
   * are lost, so the listener catches up then. Returns a function that stops listening. */
  async watchCommits(onCommit: (version: number) => void, onListening: () => void): Promise<() => Promise<void>> {
    const listening = await this.sql.listen(COMMIT_CHANNEL, (payload) => onCommit(Number(payload)), onListening);
    return () => listening.unlisten();
  }

  async genesis(): Promise<StoredCommit | undefined> {
    return this.commit(0);
  }

  async initialize(genesis: StoredCommit & { payloadHash: string }): Promise<void> {
    this.open_();
    // Two instances starting on an empty database race here: the loser's row is skipped, and the
    // caller compares the genesis it reads back with its own (src/state/replay.ts).
    try {
      await this.sql`INSERT INTO commits (version, hash, payload_hash, record)
        VALUES (0, ${genesis.hash}, ${genesis.payloadHash}, ${genesis.text}) ON CONFLICT DO NOTHING`;
    } catch (e) {
      // The contiguity trigger saw the other instance's genesis first.
      if (!(await this.commit(0))) throw e;
    }
    // The same genesis written by another instance is this one's; another genesis is refused.
    const stored = await this.commit(0);
    if (stored?.hash !== genesis.hash) throw new Error(`the log holds another genesis (${stored?.hash ?? 'none'})`);
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
    this.maintaining();
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
    this.maintaining();
    await this.sql`
      INSERT INTO checkpoints (version, hash, state_root, descriptor_count, created_at, signer_set, signer_history)
      VALUES (${c.version}, ${c.hash}, ${c.stateRoot}, ${c.descriptorCount}, ${c.createdAt}, ${c.signerSet}, ${c.signerHistory})`;
  }

  async dropCheckpoint(version: number): Promise<void> {
    this.maintaining();
    await this.sql`DELETE FROM checkpoints WHERE version = ${version}`;
  }

  async dropCheckpointEntries(version: number, limit: number): Promise<number> {
    this.maintaining();
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
    this.maintaining();
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
    this.maintaining();
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
    this.open_();
    const settledAt = batch.settledAt ?? Date.now();
    try {
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
        if (c) {
          statements.push(tx`
            INSERT INTO commits (version, hash, payload_hash, record) VALUES (${c.version}, ${c.hash}, ${c.payloadHash}, ${c.text})`);
          // Delivered when the transaction commits, never if it rolls back.
          statements.push(tx`SELECT pg_notify(${COMMIT_CHANNEL}, ${String(c.version)})`);
        }
        // In id order, in every transaction: two that settle the same proposals lock them in the
        // same order, so one waits for the other instead of deadlocking.
        const sorted = [...(batch.statusChanges ?? [])].sort((a, b) =>
          a.proposalId < b.proposalId ? -1 : a.proposalId > b.proposalId ? 1 : 0,
        );
        const changes = sorted.map((s) => {
          statements.push(tx`
            UPDATE proposals SET status = ${s.status}, version = ${s.version ?? null}, settled_at = ${settledAt}
            WHERE id = ${s.proposalId} AND status = 'pending'`);
          return { id: s.proposalId, at: statements.length - 1 };
        });
        // The events chain onto the event the log holds before them, not only onto its number: an
        // instance whose memory forked from the log (a restored database) cannot append.
        const first = batch.audit[0];
        const link = first && first.event.seq > 1 ? statements.push(tx`SELECT hash FROM audit WHERE seq = ${first.event.seq - 1}`) - 1 : -1;
        for (const e of batch.audit)
          statements.push(tx`INSERT INTO audit (seq, hash, event) VALUES (${e.event.seq}, ${e.hash}, ${e.text})`);
        const results = await Promise.all(statements);
        if (first && link >= 0 && (results[link]?.[0] as { hash?: string } | undefined)?.hash !== first.event.prev_hash)
          throw new WriteConflict(`audit event ${first.event.seq - 1} is not the one this instance chained onto`);
        // Another process settled it first (a status moves once, so it was not this one).
        for (const { id, at } of changes) if (results[at]?.count !== 1) throw new WriteConflict(`proposal ${id} is not pending`);
      });
    } catch (e) {
      throw conflictOf(e) ?? e;
    }
  }

  async setting(name: string, initial: () => string): Promise<string> {
    const [found] = await this.sql<{ value: string }[]>`SELECT value FROM settings WHERE name = ${name}`;
    if (found) return found.value;
    this.open_();
    await this.sql`INSERT INTO settings (name, value) VALUES (${name}, ${initial()}) ON CONFLICT (name) DO NOTHING`;
    const [row] = await this.sql<{ value: string }[]>`SELECT value FROM settings WHERE name = ${name}`;
    if (!row) throw new Error(`the setting ${name} vanished`);
    return row.value;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await this.sql.end({ timeout: 5 });
    // Ending the session releases the maintenance lock, for another instance to take.
    await this.leadSql.end({ timeout: 5 });
  }
}
