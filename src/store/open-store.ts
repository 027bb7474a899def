// Which backend holds the log, from the `store` setting (README → Configuration): unset, SQLite
// at `db` as before; `sqlite:<file>`, SQLite at that file; `postgres://…` or `postgresql://…`,
// PostgreSQL (multi-host URLs and their query parameters, target_session_attrs among them, go
// to the client as they are).
import type { Config } from '../config/config.js';
import { ConfigError } from '../errors.js';
import { PostgresStore, redactUrl, type PostgresOptions } from './postgres-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { Store } from './store.js';

export type StoreTarget =
  /** A SQLite file, or ':memory:'. */
  { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** The backend and place the settings name; ConfigError for a `store` it does not know. */
export function storeTarget(config: Pick<Config, 'store' | 'db'>): StoreTarget {
  const store = config.store;
  if (store === undefined) return { kind: 'sqlite', path: config.db };
  if (store.startsWith('sqlite:')) {
    const path = store.slice('sqlite:'.length);
    if (path === '') throw new ConfigError('store: sqlite: needs a file (sqlite:<file>, or sqlite::memory:)');
    return { kind: 'sqlite', path };
  }
  if (/^postgres(ql)?:\/\//.test(store)) return { kind: 'postgres', url: store };
  throw new ConfigError(`store must be sqlite:<file>, postgres://… or postgresql://…, not ${redactUrl(store)}`);
}

/** Where the log is, for logs and messages: a SQLite path, or the URL without its password. */
export function describeStore(target: StoreTarget): string {
  return target.kind === 'sqlite' ? target.path : redactUrl(target.url);
}

/** Opens the log the settings name. Fails with StoreBusyError when another process owns it. */
export async function openStore(config: Pick<Config, 'store' | 'db' | 'synchronous'>, options: PostgresOptions = {}): Promise<Store> {
  const target = storeTarget(config);
  if (target.kind === 'sqlite') return new SqliteStore({ path: target.path, synchronous: config.synchronous });
  return PostgresStore.open(target.url, options);
}

/** The waits between attempts to reach a log that refuses connections: 250 ms, doubling, then 5 s
 * for as long as the caller goes on. */
export function* backoff(): Generator<number, never> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) yield delay;
}
