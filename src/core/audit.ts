// Audit events (SPEC §9), hash-chained like the commits.
import { canonicalJson, hashBytes, utf8Bytes } from './encoding.js';
import type { AuditEvent } from './schemas.js';

export interface AuditHead {
  seq: number;
  hash: string;
}

export interface ChainedEvent {
  event: AuditEvent;
  /** The canonical JSON that is hashed, stored and served. */
  text: string;
  hash: string;
}

export type AuditFields = Omit<AuditEvent, 'seq' | 'prev_hash'>;

export function chainAuditEvent(prev: AuditHead | null, fields: AuditFields): ChainedEvent {
  const event: AuditEvent = { seq: (prev?.seq ?? 0) + 1, prev_hash: prev?.hash ?? null, ...fields };
  for (const k of Object.keys(event) as (keyof AuditEvent)[]) if (event[k] === undefined) delete event[k];
  const text = canonicalJson(event);
  return { event, text, hash: hashBytes(utf8Bytes(text)) };
}
