// Cluster mode: each instance keeps a checkpoint of its own (the state at its head, with the head
// record) in a file of its data directory, rewritten as the log's checkpoints come and at a
// graceful stop. A start that finds PostgreSQL refusing connections serves reads from it, read
// only, while it keeps trying the database (src/store/switching-store.ts; README → PostgreSQL and
// cluster mode). It is this instance's own copy, trusted as its SQLite file would be: loaded only
// if its state hashes to the record's state_root and the record bytes to the record's hash
// (src/state/replay.ts, openCachedLog), and checked against the log once the log is reachable.
import { readFileSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AuditHead } from '../core/audit.js';
import { RegistryError } from '../core/errors.js';
import type { CheckpointEntry, CheckpointInfo, ProposalSummary, Store, StoredCommit, StoredCommitRow, StoredProposal } from './store.js';

export const LOCAL_CACHE_FILE = 'cluster-cache.json';
const FORMAT = 1;

export interface LocalCache {
  /** The hash of the genesis record of the registry it belongs to. */
  genesisHash: string;
  /** The checkpoint: its version is the record's. */
  checkpoint: CheckpointInfo;
  record: StoredCommitRow;
  entries: CheckpointEntry[];
  /** The key of listing cursors (the log's `cursor_key` setting), so that cursors stay valid. */
  cursorKey: string;
}

export const localCachePath = (dataDir: string): string => join(dataDir, LOCAL_CACHE_FILE);

/** Writes the cache whole or not at all: a new file, flushed, renamed over the old one. Only the
 * JSON text is made on the event loop (~15 ms for 50,000 descriptors); the write and the flush of
 * its megabytes (~50 ms more there, longer on a slow disk) run off it, so reads do not wait.
 * One write at a time per path (the caller's to ensure): they share the temporary file. */
export async function writeLocalCache(path: string, cache: LocalCache): Promise<void> {
  const text = JSON.stringify({ format: FORMAT, ...cache });
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
}

/** The cache at `path`, or undefined when there is none or it cannot be read (said by `why`). */
export function readLocalCache(path: string, why?: (problem: string) => void): LocalCache | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const value = JSON.parse(text) as Partial<LocalCache> & { format?: unknown };
    if (
      value.format !== FORMAT ||
      !value.checkpoint ||
      !value.record ||
      !Array.isArray(value.entries) ||
      typeof value.genesisHash !== 'string'
    )
      throw new Error('it is not a cache of this format');
    return value as LocalCache;
  } catch (e) {
    why?.(`${path}: ${(e as Error).message}`);
    return undefined;
  }
}

/** A read-only log holding the genesis and one checkpoint at its head: what the cache knows.
 * What it cannot answer (older versions, proposals, writes) answers 503. */
export class CachedStore implements Store {
  constructor(
    private readonly cache: LocalCache,
    private readonly genesisRecord: StoredCommitRow,
    /** Why it is serving from the cache, for the 503s. */
    private readonly why: string,
  ) {}

  get version(): number {
    return this.cache.checkpoint.version;
  }

  private unavailable<T>(): Promise<T> {
    return Promise.reject(
      new RegistryError('Unavailable', `${this.why}: only the state at version ${this.version} is served until it is back`, {
        retryAfter: 5,
        reason: 'store_unavailable',
      }),
    );
  }

  genesis(): Promise<StoredCommit | undefined> {
    return Promise.resolve(this.genesisRecord);
  }
  initialize(): Promise<void> {
    return this.unavailable();
  }
  commit(version: number): Promise<StoredCommit | undefined> {
    if (version === 0) return Promise.resolve(this.genesisRecord);
    if (version === this.version) return Promise.resolve(this.cache.record);
    // Past the cached head: not known yet. Before it: in the log, out of reach.
    return version > this.version ? Promise.resolve(undefined) : this.unavailable();
  }
  commits(from: number, limit: number): Promise<StoredCommitRow[]> {
    if (from > this.version || limit <= 0) return Promise.resolve([]);
    if (from === this.version) return Promise.resolve([this.cache.record]);
    return this.unavailable();
  }
  latestCheckpoint(): Promise<CheckpointInfo | undefined> {
    return Promise.resolve(this.cache.checkpoint);
  }
  checkpoints(): Promise<CheckpointInfo[]> {
    return Promise.resolve([this.cache.checkpoint]);
  }
  checkpointEntries(version: number, afterId: string, limit: number): Promise<CheckpointEntry[]> {
    if (version !== this.version) return this.unavailable();
    // Sorted by id as written (the map of a state is not): sort once, page by id.
    return Promise.resolve(this.sorted.filter((e) => e.id > afterId).slice(0, limit));
  }
  private sortedEntries: CheckpointEntry[] | undefined;
  private get sorted(): CheckpointEntry[] {
    return (this.sortedEntries ??= [...this.cache.entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
  }
  addCheckpointEntries(): Promise<void> {
    return this.unavailable();
  }
  sealCheckpoint(): Promise<void> {
    return this.unavailable();
  }
  dropCheckpointEntries(): Promise<number> {
    return this.unavailable();
  }
  orphanCheckpointVersions(): Promise<number[]> {
    return Promise.resolve([]);
  }
  dropCheckpoint(): Promise<void> {
    return this.unavailable();
  }
  pruneCommits(): Promise<number> {
    return this.unavailable();
  }
  pruneSettledProposals(): Promise<number> {
    return this.unavailable();
  }
  unprunedSettledCount(): Promise<number> {
    return Promise.resolve(0);
  }
  proposal(): Promise<StoredProposal | undefined> {
    return this.unavailable();
  }
  proposals(): Promise<ProposalSummary[]> {
    return Promise.resolve([]);
  }
  auditHead(): Promise<AuditHead | null> {
    return Promise.resolve(null);
  }
  audit(): Promise<string[]> {
    return this.unavailable();
  }
  lastFreezeEvent(): Promise<string | undefined> {
    return Promise.resolve(undefined);
  }
  write(): Promise<void> {
    return this.unavailable();
  }
  setting(name: string, initial: () => string): Promise<string> {
    return Promise.resolve(name === 'cursor_key' ? this.cache.cursorKey : initial());
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
