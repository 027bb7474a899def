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
  while (next < end && window.length < limit) window.push(task(next++));
  while (window.length > 0) {
    const head = window.shift()!;
    // keep the others from being reported as unhandled while we wait on the first
    for (const p of window) p.catch(() => undefined);
    const value = await head;
    if (next < end) window.push(task(next++));
    yield value;
  }
}

export interface DbRows {
  db: Database.Database;
  commits(): IterableIterator<{ version: number; hash: string; payload_hash: string; record: string }>;
  commitCount(): number;
  audit(): IterableIterator<{ seq: number; hash: string; event: string }>;
  auditCount(): number;
  proposals(): IterableIterator<{ id: string; payload: string; status: string; version: number | null }>;
  approvals(): IterableIterator<{ proposal_id: string; signer_id: string; sig: string }>;
}

/** Opens the file read-only; WAL lets it read a log that a running service is writing. A lock it
 * cannot get within a second is a SourceError saying so. */
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
      db.close();
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
  const count = (sql: string): number => {
    try {
      return (prepare(sql).get() as { n: number }).n;
    } catch (e) {
      if (e instanceof SourceError) throw e;
      return busy(e);
    }
  };
  // Touch the schema first so that a lock or a file that is no registry shows at once.
  count('SELECT COUNT(*) AS n FROM commits');
  return {
    db,
    commitCount: () => count('SELECT COUNT(*) AS n FROM commits'),
    auditCount: () => count('SELECT COUNT(*) AS n FROM audit'),
    commits: guard(() => prepare('SELECT version, hash, payload_hash, record FROM commits ORDER BY version').iterate() as never),
    audit: guard(() => prepare('SELECT seq, hash, event FROM audit ORDER BY seq').iterate() as never),
    proposals: guard(() => prepare('SELECT id, payload, status, version FROM proposals ORDER BY seq').iterate() as never),
    approvals: guard(() => prepare('SELECT proposal_id, signer_id, sig FROM approvals ORDER BY seq').iterate() as never),
  };
}
