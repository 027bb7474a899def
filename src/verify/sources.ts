// Where the auditor reads a log from: a registry over HTTP (SPEC §6), or its SQLite file
// (migrations/*.sql) opened read-only.
import Database from 'better-sqlite3';

/** The source cannot be read (unreachable, not a registry, a locked or missing file). */
export class SourceError extends Error {
  override name = 'SourceError';
}

/** A database row that disagrees with the log (a proposal or an approval), named by its table. */
export class TableError extends Error {
  override name = 'TableError';
}

export interface HttpAnswer {
  status: number;
  json: unknown;
}

/** GET base + path as JSON; network failures and non-JSON bodies are SourceErrors. */
export async function getJson(base: string, path: string, timeoutMs = 30_000): Promise<HttpAnswer> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base), { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  } catch (e) {
    throw new SourceError(
      `cannot read ${base}${path}: ${(e as Error).cause ? String((e as Error & { cause: Error }).cause.message) : (e as Error).message}`,
    );
  }
  const text = await res.text();
  try {
    return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
  } catch {
    if (res.status !== 200) return { status: res.status, json: undefined };
    throw new SourceError(`${path} answered ${res.status} with a body that is not JSON`);
  }
}

/** Runs tasks with at most `limit` in flight, yielding results in order. */
export async function* inOrder<T>(count: number, start: number, limit: number, task: (i: number) => Promise<T>): AsyncGenerator<T> {
  const window: Promise<T>[] = [];
  let next = start;
  const end = start + count;
  const launch = () => {
    const p = task(next++);
    // handled here so that one failing while an earlier one is awaited, or after the consumer
    // stopped at a failed check, is not reported as unhandled; awaiting it still throws
    p.catch(() => undefined);
    window.push(p);
  };
  while (next < end && window.length < limit) launch();
  while (window.length > 0) {
    const value = await window.shift()!;
    if (next < end) launch();
    yield value;
  }
}

export interface CheckpointRow {
  version: number;
  hash: string;
  state_root: string;
  descriptor_count: number;
  created_at: string;
  signer_set: string;
  /** JSON [{from, set}], genesis first (absent from databases made before it was added). */
  signer_history?: string;
}

export interface DbRows {
  db: Database.Database;
  /** Commits from version `from` on, at most `limit`, in order. */
  commitPage(from: number, limit: number): { version: number; hash: string; payload_hash: string; record: string }[];
  commitCount(): number;
  audit(): IterableIterator<{ seq: number; hash: string; event: string }>;
  auditCount(): number;
  proposals(): IterableIterator<{ id: string; payload: string; status: string; version: number | null }>;
  approvals(): IterableIterator<{ proposal_id: string; signer_id: string; sig: string }>;
  /** Checkpoints, oldest first (none before migration 004). */
  checkpoints(): CheckpointRow[];
  checkpointEntries(version: number): IterableIterator<{ id: string; changed_in: number; descriptor: string }>;
  /** The versions whose committed proposal changed the signer set (its proposed_threshold). */
  signerSetCommits(): Set<number>;
  close(): void;
}

/** Opens the file read-only, in one read transaction: every table is read at the same moment of
 * the log, even while a running service writes it (WAL lets a reader in beside the writer). A lock
 * it cannot get within a second is a SourceError saying so. */
export function openDb(file: string): DbRows {
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true, timeout: 1000 });
  } catch (e) {
    throw new SourceError(`cannot open ${file}: ${(e as Error).message}`);
  }
  const busy = (e: unknown): never => {
    const code = (e as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
      throw new SourceError(
        `${file} is locked (${code}): another process holds the database; ` +
          'try again, verify a backup of the file (registry backup), or verify the running registry with --url',
      );
    throw new SourceError(`cannot read ${file}: ${(e as Error).message}`);
  };
  const prepare = (sql: string) => {
    try {
      return db.prepare(sql);
    } catch (e) {
      return busy(e);
    }
  };
  const guard = <T>(iter: () => IterableIterator<T>) =>
    function* (): IterableIterator<T> {
      let it: IterableIterator<T>;
      try {
        it = iter();
      } catch (e) {
        return busy(e);
      }
      try {
        for (;;) {
          let r: IteratorResult<T>;
          try {
            r = it.next();
          } catch (e) {
            return busy(e);
          }
          if (r.done) return;
          yield r.value;
        }
      } finally {
        // a consumer that stops early (a failed check) must end the statement before the close
        it.return?.();
      }
    };
  const all = <T>(sql: string, ...params: unknown[]): T[] => {
    try {
      return prepare(sql).all(...params) as T[];
    } catch (e) {
      if (e instanceof SourceError) throw e;
      return busy(e);
    }
  };
  const count = (sql: string): number => all<{ n: number }>(sql)[0]!.n;
  const close = () => {
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
  };
  try {
    db.exec('BEGIN');
    // Touch the schema first so that a lock or a file that is no registry shows at once.
    count('SELECT COUNT(*) AS n FROM commits');
  } catch (e) {
    close();
    if (e instanceof SourceError) throw e;
    return busy(e);
  }
  const hasCheckpoints = count("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'checkpoints'") > 0;
  const hasHistory =
    hasCheckpoints && count("SELECT COUNT(*) AS n FROM pragma_table_info('checkpoints') WHERE name = 'signer_history'") > 0;
  const page = prepare('SELECT version, hash, payload_hash, record FROM commits WHERE version >= ? ORDER BY version LIMIT ?');
  return {
    db,
    close,
    commitCount: () => count('SELECT COUNT(*) AS n FROM commits'),
    auditCount: () => count('SELECT COUNT(*) AS n FROM audit'),
    commitPage: (from, limit) => {
      try {
        return page.all(from, limit) as never;
      } catch (e) {
        return busy(e);
      }
    },
    audit: guard(() => prepare('SELECT seq, hash, event FROM audit ORDER BY seq').iterate() as never),
    proposals: guard(() => prepare('SELECT id, payload, status, version FROM proposals ORDER BY seq').iterate() as never),
    approvals: guard(() => prepare('SELECT proposal_id, signer_id, sig FROM approvals ORDER BY seq').iterate() as never),
    checkpoints: () =>
      hasCheckpoints
        ? all<CheckpointRow>(
            `SELECT version, hash, state_root, descriptor_count, created_at, signer_set${hasHistory ? ', signer_history' : ''} FROM checkpoints ORDER BY version`,
          )
        : [],
    checkpointEntries: (version) =>
      guard<{ id: string; changed_in: number; descriptor: string }>(
        () => prepare('SELECT id, changed_in, descriptor FROM checkpoint_entries WHERE version = ? ORDER BY id').iterate(version) as never,
      )(),
    signerSetCommits: () =>
      new Set(
        all<{ version: number }>(
          "SELECT version FROM proposals WHERE status = 'committed' AND proposed_threshold IS NOT NULL AND version IS NOT NULL",
        ).map((r) => r.version),
      ),
  };
}
