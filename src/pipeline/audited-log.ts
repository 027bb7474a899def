// The log as the writer sees it: every write carries its audit events, chained onto the audit
// head in the same transaction, and a store that fails becomes a 503 the client may retry.
// This is where another backend (PostgreSQL) or a follower of a shared log plugs in: the
// writer never touches the store but through it.
import { chainAuditEvent, type AuditFields, type AuditHead, type ChainedEvent } from '../core/audit.js';
import { hashBytes, utf8Bytes } from '../core/encoding.js';
import { IntegrityError, RegistryError } from '../core/errors.js';
import type { Store, WriteBatch } from '../store/store.js';

/** Where the pipeline reports what no request can be told: failed store writes, failing listeners. */
export interface PipelineLog {
  error(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export class AuditedLog {
  private head: AuditHead | null = null;
  /** Why the last store access failed, until one succeeds again. */
  storeProblem: string | undefined;

  constructor(
    readonly store: Store,
    private readonly log?: PipelineLog,
  ) {}

  /** Loads the audit head, refusing an audit log whose last event was edited. */
  async open(): Promise<void> {
    this.head = await this.store.auditHead();
    if (!this.head) return;
    const [text] = await this.store.audit(this.head.seq, 1);
    if (text === undefined || hashBytes(utf8Bytes(text)) !== this.head.hash) {
      throw new IntegrityError(`audit event ${this.head.seq} does not hash to its stored hash: the audit log was edited`);
    }
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
    try {
      await this.store.write({ ...batch, audit: chained });
      this.storeProblem = undefined;
    } catch (e) {
      throw this.unavailable(e, 'written');
    }
    this.head = head;
  }

  audit(events: readonly AuditFields[]): Promise<void> {
    return events.length ? this.write({}, events) : Promise.resolve();
  }

  /** A store read inside a writer step: a failing store is a 503, like a failing write. */
  async read<T>(query: (store: Store) => Promise<T>): Promise<T> {
    try {
      return await query(this.store);
    } catch (e) {
      throw this.unavailable(e, 'read');
    }
  }

  private unavailable(e: unknown, what: 'read' | 'written'): RegistryError {
    this.storeProblem = (e as Error).message;
    this.log?.error({ err: e }, `the log could not be ${what}`);
    return new RegistryError('Unavailable', `the log could not be ${what}; nothing was changed`, { retryAfter: 1 });
  }
}
