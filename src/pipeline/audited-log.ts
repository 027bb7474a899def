// The log as the writer sees it: every write carries its audit events, chained onto the audit
// head in the same transaction, and a store that fails becomes a 503 the client may retry.
// This is where another backend (PostgreSQL) or a follower of a shared log plugs in: the
// writer never touches the store but through it.
import { chainAuditEvent, type AuditFields, type AuditHead, type ChainedEvent } from '../core/audit.js';
import { hashBytes, utf8Bytes } from '../core/encoding.js';
import { IntegrityError, RegistryError } from '../core/errors.js';
import { WriteConflict } from '../errors.js';
import type { Store, WriteBatch } from '../store/store.js';

/** Where the pipeline reports what no request can be told: failed store writes, failing listeners. */
export interface PipelineLog {
  error(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/** A store write that runs longer than this is slow: /readyz says so, and while one runs
 * new writes are shed (they would only queue behind it). */
export const DEFAULT_STORE_SLOW_MS = 1000;
/** How long /readyz keeps reporting a slow write after it ended, unless a write in time clears it. */
export const STORE_SLOW_HOLD_MS = 30_000;

export interface AuditedLogOptions {
  /** See DEFAULT_STORE_SLOW_MS. */
  slowMs?: number;
  now?: () => number;
  /** A store access that has not answered after this long is given up on: it answers 503 and the
   * queue moves on. Only for a shared log (PostgreSQL), where a connection reset can leave a query
   * of the client unanswered for good, and where whatever such a query did is read back by the next
   * catch-up. Unset: no limit (SQLite answers or throws). */
  timeoutMs?: number;
  /** A shared log: a read that succeeds clears a failed write's problem too (what fails there is
   * the database or the way to it, and a follower reads it every few seconds), and a write whose
   * connection was lost may have been applied (the 503 says so). */
  shared?: boolean;
}

/** The store's answer, or a rejection once `ms` have passed without one. */
export function within<T>(work: Promise<T>, ms: number | undefined): Promise<T> {
  if (ms === undefined) return work;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the store did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

export class AuditedLog {
  private head: AuditHead | null = null;
  /** Why the last store access failed, until one succeeds again. */
  storeProblem: string | undefined;
  /** Whether storeProblem came from a read: then a read that succeeds clears it too (the
   * database is back), while a failed write is cleared only by a write that succeeds. */
  private problemFromRead = false;
  private readonly slowMs: number;
  private readonly timeoutMs: number | undefined;
  private readonly shared: boolean;
  private readonly clock: () => number;
  /** When the store write under way began. */
  private writingSince: number | undefined;
  /** The last write, when it took longer than slowMs: how long, and when it ended. */
  private lastSlow: { ms: number; endedAt: number } | undefined;
  /** Told of the audit events of each write once it is durable (metrics count them). */
  onWritten: ((events: readonly AuditFields[]) => void) | undefined;

  constructor(
    readonly store: Store,
    private readonly log?: PipelineLog,
    options: AuditedLogOptions = {},
  ) {
    this.slowMs = options.slowMs ?? DEFAULT_STORE_SLOW_MS;
    this.timeoutMs = options.timeoutMs;
    this.shared = options.shared ?? false;
    this.clock = options.now ?? (() => performance.now());
  }

  /** Whether a store write has been running longer than the slow threshold: new writes are
   * shed rather than queued behind it. */
  stuck(): boolean {
    return this.writingSince !== undefined && this.clock() - this.writingSince > this.slowMs;
  }

  /** Why the store is too slow to take writes now, or undefined: a write running longer than
   * the threshold, or the last write took longer (until a write in time, or STORE_SLOW_HOLD_MS). */
  slowness(): string | undefined {
    const now = this.clock();
    if (this.writingSince !== undefined && now - this.writingSince > this.slowMs)
      return `a store write has been running for ${Math.round(now - this.writingSince)} ms (slow above ${this.slowMs} ms)`;
    if (this.lastSlow && now - this.lastSlow.endedAt < STORE_SLOW_HOLD_MS)
      return `the last store write took ${Math.round(this.lastSlow.ms)} ms (slow above ${this.slowMs} ms)`;
    return undefined;
  }

  /** The audit head this log appends after (null: none yet). */
  get auditHead(): AuditHead | null {
    return this.head;
  }

  /** Loads the audit head, refusing an audit log whose last event was edited. */
  async open(): Promise<void> {
    this.adopt(await this.readHead());
  }

  /** The store's audit head, checked as open() checks it, without appending after it yet. */
  async readHead(): Promise<AuditHead | null> {
    const head = await this.read((s) => s.auditHead());
    if (!head) return null;
    const [text] = await this.read((s) => s.audit(head.seq, 1));
    if (text === undefined || hashBytes(utf8Bytes(text)) !== head.hash) {
      throw new IntegrityError(`audit event ${head.seq} does not hash to its stored hash: the audit log was edited`);
    }
    return head;
  }

  /** Appends after `head` from now on: the caller has read everything the log holds up to it. */
  adopt(head: AuditHead | null): void {
    this.head = head;
  }

  /** Chains `events` onto the audit log and writes them with `batch` in one transaction. */
  async write(batch: Omit<WriteBatch, 'audit'>, events: readonly AuditFields[]): Promise<void> {
    const chained: ChainedEvent[] = [];
    let head = this.head;
    for (const fields of events) {
      const e = chainAuditEvent(head, fields);
      chained.push(e);
      head = { seq: e.event.seq, hash: e.hash };
    }
    const started = this.clock();
    this.writingSince = started;
    try {
      await within(this.store.write({ ...batch, audit: chained }), this.timeoutMs);
      this.storeProblem = undefined;
      this.problemFromRead = false;
    } catch (e) {
      // Lost a race with another instance (a shared log): not the store's failure; the writer
      // catches up and retries.
      if (e instanceof WriteConflict) throw e;
      throw this.unavailable(e, 'written');
    } finally {
      const ended = this.clock();
      this.writingSince = undefined;
      this.lastSlow = ended - started > this.slowMs ? { ms: ended - started, endedAt: ended } : undefined;
    }
    this.head = head;
    this.onWritten?.(events);
  }

  audit(events: readonly AuditFields[]): Promise<void> {
    return events.length ? this.write({}, events) : Promise.resolve();
  }

  /** A store read inside a writer step: a failing store is a 503, like a failing write. */
  async read<T>(query: (store: Store) => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await within(query(this.store), this.timeoutMs);
    } catch (e) {
      throw this.unavailable(e, 'read');
    }
    if (this.problemFromRead || this.shared) this.storeProblem = undefined;
    return result;
  }

  private unavailable(e: unknown, what: 'read' | 'written'): RegistryError {
    this.storeProblem = (e as Error).message;
    this.problemFromRead = what === 'read';
    this.log?.error({ err: e }, `the log could not be ${what}`);
    const outcome =
      what === 'written' && this.shared
        ? 'if the connection was lost as it committed, the change may have been applied: send it again, which is safe (a known proposal or approval answers with its status)'
        : 'nothing was changed';
    return new RegistryError('Unavailable', `the log could not be ${what}; ${outcome}`, {
      retryAfter: 1,
      reason: 'store_unavailable',
    });
  }
}
