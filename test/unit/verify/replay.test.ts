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

describe('the auditor across pruned records (SPEC §10)', () => {
  const fresh = () => records.records.map((x) => clone(x.record)) as Record<string, any>[];
  const full = replayAll(fresh());
  const stateAt3 = () => [...full.descriptors].map(([id, d]) => ({ id, changedIn: full.changedInOf(id)!, descriptor: clone(d) }));
  const upTo = (horizon: number | undefined, prune: number[], last = 3, known = true) => {
    const list = fresh();
    const r = new Replay();
    r.horizon = horizon;
    for (let v = 0; v <= last; v++)
      if (prune.includes(v)) r.applyPruned(v, known ? { hash: records.records[v]!.hash, payloadHash: list[v]!.payload_hash } : {});
      else r.apply(list[v], v);
    return r;
  };
  const error = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(LogError);
      return (e as LogError).message;
    }
    throw new Error('no LogError');
  };

  it('follows the kept records below the horizon (the rotation: both quorums), then takes the checkpoint state', () => {
    const r = upTo(3, [1]);
    expect(r.hasState).toBe(false);
    expect(r.last).toMatchObject({ version: 3, stateKnown: false, descriptorCount: -1 });
    r.loadState(stateAt3(), 'test');
    expect(r.hasState).toBe(true);
    expect(r.last).toMatchObject({ version: 3, stateKnown: true, descriptorCount: full.descriptorCount, hash: records.records[3]!.hash });
    expect(r.counts).toMatchObject({ pruned: 1, followed: 1, signerSetChanges: 1, commits: 3, records: 3 });
    expect(r.currentSigners).toEqual(full.currentSigners);
    expect(r.history[1]).toMatchObject({ pruned: true, payloadHash: records.records[1]!.record.payload_hash });
  });

  it('over HTTP (no hash columns) learns a pruned hash from the next record, and still checks the chain from there', () => {
    const r = upTo(3, [1], 3, false);
    expect(r.history[1]!.hash).toBe(records.records[1]!.hash);
    r.loadState(stateAt3(), 'test');
    expect(r.last!.stateKnown).toBe(true);
  });

  it('refuses a pruned genesis, a pruned record without a checkpoint or at or above the oldest one', () => {
    expect(error(() => upTo(3, [0]))).toMatch(/^version 0: the genesis record is pruned/);
    expect(error(() => upTo(undefined, [1]))).toMatch(/^version 1: pruned, yet there is no checkpoint/);
    expect(error(() => upTo(3, [1, 3]))).toMatch(/^version 3: pruned, yet it is not below the oldest checkpoint \(version 3\)/);
    expect(error(() => upTo(2, [2]))).toMatch(/^version 2: pruned, yet it is not below the oldest checkpoint \(version 2\)/);
  });

  it('a hash column that lies breaks the link to the next kept record', () => {
    const list = fresh();
    const r = new Replay();
    r.horizon = 3;
    r.apply(list[0], 0);
    r.applyPruned(1, { hash: 'b3:' + '0'.repeat(64), payloadHash: list[1]!.payload_hash });
    expect(error(() => r.apply(list[2], 2))).toMatch(/^version 2: prev_hash b3:\w+ is not the hash of version 1 \(b3:0{64}\)/);
  });

  it('a pruned signer-set change shows: the next approvals are by no signer the replay knows, and it says why', () => {
    expect(error(() => upTo(3, [1, 2]))).toMatch(
      /^version 3: the approval of dave is by no signer of the current set \(versions from 1 on are pruned: had one of them changed the signer set/,
    );
  });

  it('a checkpoint state that is not the state at the horizon is refused, naming the version', () => {
    const missing = stateAt3().slice(1);
    expect(error(() => upTo(3, [1]).loadState(missing, 'test'))).toMatch(
      /^version 3: the state of the checkpoint \(test\) hashes to b3:\w+, not to the state_root b3:\w+ of record 3/,
    );
    const future = stateAt3().map((e, i) => (i === 0 ? { ...e, changedIn: 4 } : e));
    expect(error(() => upTo(3, [1]).loadState(future, 'test'))).toMatch(/says \S+ changed in version 4, not one of 1\.\.3/);
    const twice = [...stateAt3(), stateAt3()[0]!];
    expect(error(() => upTo(3, [1]).loadState(twice, 'test'))).toMatch(/holds \S+ twice/);
    const r = upTo(3, [1]);
    r.loadState(stateAt3(), 'test');
    expect(error(() => r.loadState(stateAt3(), 'again'))).toMatch(/the replay holds the state already/);
  });
});
