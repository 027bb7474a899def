// Recomputes the audit chain from GET /registry/audit, as an auditor would.
import { hashOf } from '../../src/core/encoding.js';
import type { AuditEvent } from '../../src/core/schemas.js';
import { request } from './server.js';

export async function readAudit(base: string): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for (let from = 1; ;) {
    const r = await request<{ events: AuditEvent[]; next_from_seq: number }>(base, 'GET', `/registry/audit?from_seq=${from}&limit=1000`);
    events.push(...r.json.events);
    if (r.json.events.length < 1000) return events;
    from = r.json.next_from_seq;
  }
}

/** Throws unless seq runs 1..n and each prev_hash is the hash of the event before. */
export function checkAuditChain(events: AuditEvent[]): void {
  let prev: string | null = null;
  events.forEach((e, i) => {
    if (e.seq !== i + 1) throw new Error(`audit seq ${e.seq} at position ${i + 1}`);
    if (e.prev_hash !== prev) throw new Error(`audit event ${e.seq}: prev_hash ${e.prev_hash} is not ${prev}`);
    prev = hashOf(e);
  });
}
