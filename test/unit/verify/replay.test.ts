/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-return */
// The auditor's own replay (src/verify) against the test vectors, which an implementation
// independent of src/ wrote: every verdict and every hash must agree.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AuditChain } from '../../../src/verify/audit.js';
import { hashOfValue, keyProblem, verifyApproval } from '../../../src/verify/primitives.js';
import { LogError, Replay } from '../../../src/verify/replay.js';

const vectors = (name: string) => JSON.parse(readFileSync(new URL(`../../vectors/${name}`, import.meta.url), 'utf8'));
const approvals = vectors('approvals.json') as {
  vectors: { name: string; public_key: string; payload_hash: string; sig: string; valid: boolean }[];
  public_keys: { name: string; public_key: string; acceptable: boolean }[];
};
const records = vectors('records.json') as { records: { name: string; record: Record<string, unknown>; hash: string }[] };

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

function replayAll(list: Record<string, unknown>[]): Replay {
  const r = new Replay();
  list.forEach((rec, v) => r.apply(rec, v));
  return r;
}

describe('the auditor against the vectors', () => {
  it.each(approvals.vectors.map((v) => [v.name, v] as const))('signature %s', (_name, v) => {
    expect(verifyApproval(v.public_key, v.payload_hash, v.sig)).toBe(v.valid);
  });

  it.each(approvals.public_keys.map((k) => [k.name, k] as const))('public key %s', (_name, k) => {
    expect(keyProblem(k.public_key) === undefined).toBe(k.acceptable);
  });

  it('replays records.json, hash for hash, with the rotation', () => {
    const r = replayAll(records.records.map((x) => x.record));
    expect(r.history.map((c) => c.hash)).toEqual(records.records.map((x) => x.hash));
    expect(r.counts).toMatchObject({ records: 4, commits: 3, signerSetChanges: 1, signatures: 9 });
  });

  const tamper = (version: number, edit: (rec: Record<string, any>) => void, rehash = true) => {
    const list = records.records.map((x) => clone(x.record)) as Record<string, any>[];
    edit(list[version]!);
    if (rehash)
      for (let v = version; v < list.length; v++) {
        if (v > version) {
          list[v]!.prev_hash = hashOfValue(list[v - 1]);
          list[v]!.payload.base_hash = list[v]!.prev_hash;
        }
        list[v]!.payload_hash = hashOfValue(list[v]!.payload);
      }
    try {
      replayAll(list);
    } catch (e) {
      expect(e).toBeInstanceOf(LogError);
      return e as LogError;
    }
    throw new Error('the tampered log verified');
  };

  it('names the version of each tampering', () => {
    expect(tamper(1, (r) => (r.payload.reason = 'edited'), false).message).toMatch(/^version 1: payload_hash .* the payload was changed/);
    expect(tamper(1, (r) => (r.payload.reason = 'edited')).message).toMatch(/^version 1: the approval of alice does not verify/);
    expect(tamper(3, (r) => r.approvals.pop()).message).toMatch(/^version 3: approved by 1 of the current set, below its threshold 2/);
    // alice and bob are in both sets: without dave, version 2 still has both quorums, but the
    // re-chained version 3 then has a new payload hash, which bob and dave never signed
    expect(tamper(2, (r) => (r.approvals = r.approvals.filter((a: { signer_id: string }) => a.signer_id !== 'dave'))).message).toMatch(
      /^version 3: the approval of bob does not verify/,
    );
    expect(tamper(2, (r) => (r.payload.ops.at(-1).signer_set.threshold = 3)).message).toMatch(
      /^version 2: the approval of alice does not verify/,
    );
    expect(tamper(3, (r) => (r.state_root = 'b3:' + '0'.repeat(64))).message).toMatch(/^version 3: state_root/);
    expect(tamper(2, (r) => (r.prev_hash = 'b3:' + '1'.repeat(64))).message).toMatch(/^version 2: prev_hash/);
    expect(tamper(0, (r) => r.approvals.pop()).message).toMatch(/^version 0: approved by 1 of the genesis set/);
  });

  it('checks the audit chain and names the seq', () => {
    const events: Record<string, unknown>[] = [];
    let prev: string | null = null;
    for (let seq = 1; seq <= 4; seq++) {
      const e: Record<string, unknown> = { seq, prev_hash: prev, at: '2026-11-22T17:11:00.000Z', kind: 'frozen', reason: `r${seq}` };
      events.push(e);
      prev = hashOfValue(e);
    }
    const chain = new AuditChain(() => undefined);
    for (const e of events) chain.add(e);
    expect(chain.counts.events).toBe(4);
    const bad = clone(events);
    bad[1]!.reason = 'changed';
    const c2 = new AuditChain(() => undefined);
    expect(() => bad.forEach((e) => c2.add(e))).toThrow(/^audit event 3: prev_hash/);
  });
});
