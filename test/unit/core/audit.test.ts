// Unit tests of src/core/audit.ts (SPEC §9): the hash-chained audit log.
import { describe, expect, it } from 'vitest';
import { chainAuditEvent } from '../../../src/core/audit.js';
import { hashOf } from '../../../src/core/encoding.js';
import { b3 } from './fixtures.js';

describe('chainAuditEvent (SPEC §9)', () => {
  const at = '2026-11-22T17:00:00.000Z';

  it('starts the chain at seq 1 with prev_hash null; the hash is b3 of the canonical text', () => {
    const first = chainAuditEvent(null, { at, kind: 'frozen', reason: 'maintenance' });
    expect(first.event).toEqual({ seq: 1, prev_hash: null, at, kind: 'frozen', reason: 'maintenance' });
    expect(first.text).toBe('{"at":"2026-11-22T17:00:00.000Z","kind":"frozen","prev_hash":null,"reason":"maintenance","seq":1}');
    expect(first.hash).toBe(b3(first.text));
    expect(first.hash).toBe(hashOf(first.event));
  });

  it('chains: seq + 1 and prev_hash = the previous hash', () => {
    const first = chainAuditEvent(null, { at, kind: 'proposal_received', proposal_id: hashOf({ p: 1 }) });
    const second = chainAuditEvent({ seq: first.event.seq, hash: first.hash }, { at, kind: 'approval_accepted', signer_id: 'alice' });
    expect(second.event.seq).toBe(2);
    expect(second.event.prev_hash).toBe(first.hash);
    expect(second.hash).toBe(b3(second.text));
    const third = chainAuditEvent({ seq: 41, hash: second.hash }, { at, kind: 'committed', version: 7 });
    expect(third.event.seq).toBe(42);
    expect(third.text).toBe(`{"at":"${at}","kind":"committed","prev_hash":"${second.hash}","seq":42,"version":7}`);
  });

  it('omits undefined fields from the event, the text and the hash', () => {
    const chained = chainAuditEvent(null, {
      at,
      kind: 'thawed',
      proposal_id: undefined,
      signer_id: undefined,
      version: undefined,
      reason: undefined,
    });
    expect(Object.keys(chained.event).sort()).toEqual(['at', 'kind', 'prev_hash', 'seq']);
    expect(chained.text).toBe(`{"at":"${at}","kind":"thawed","prev_hash":null,"seq":1}`);
    expect(chained.hash).toBe(chainAuditEvent(null, { at, kind: 'thawed' }).hash);
  });

  it('the hash changes with any field', () => {
    const base = chainAuditEvent(null, { at, kind: 'approval_refused', signer_id: 'bob', reason: 'bad signature' });
    expect(chainAuditEvent(null, { at, kind: 'approval_refused', signer_id: 'bob', reason: 'bad signature.' }).hash).not.toBe(base.hash);
    expect(
      chainAuditEvent({ seq: 0, hash: hashOf({}) }, { at, kind: 'approval_refused', signer_id: 'bob', reason: 'bad signature' }).hash,
    ).not.toBe(base.hash);
  });
});
