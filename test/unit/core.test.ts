// Unit tests of the pure core rules (SPEC §1, §3, §4, §9): each would fail if a rule were
// dropped or got wrong.
import { blake3 } from '@noble/hashes/blake3.js';
import { describe, expect, it } from 'vitest';
import { chainAuditEvent } from '../../src/core/audit.js';
import { generateKeyPair, signApproval } from '../../src/core/crypto.js';
import { canonicalJson, formatTime, hashOf, parseTime } from '../../src/core/encoding.js';
import { RegistryError, type ErrorCode } from '../../src/core/errors.js';
import {
  checkProposalHeader,
  DEFAULT_PROPOSAL_TTL_MS,
  MAX_PROPOSAL_TTL_MS,
  proposalExpiry,
  type ProposalContext,
} from '../../src/core/proposal.js';
import { buildCommitRecord, buildGenesisPayload, checkGenesisRecord, checkLink, isGenesisPayload } from '../../src/core/records.js';
import type { Approval, CommitRecord, Op, ProposalPayload, SignerSet } from '../../src/core/schemas.js';
import { hasQuorum, keyOf, rotationProblem, signerSetProblem } from '../../src/core/signers.js';
import { planOps, RegistryState } from '../../src/core/state.js';
import { approve, del, genesisRecord, proposal, put, setSigners, signers, signerSet } from '../helpers/fixtures.js';

const NOW = Date.parse('2026-11-22T17:00:00.000Z');
const IDENTITY_KEY = `01${'00'.repeat(31)}`;
const b3 = (text: string): string => `b3:${Buffer.from(blake3(new TextEncoder().encode(text))).toString('hex')}`;

/** Runs `fn`, expects a RegistryError with `code` whose message matches `message`. */
function expectRefusal(fn: () => unknown, code: ErrorCode, message?: RegExp): RegistryError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'expected a RegistryError').toBeInstanceOf(RegistryError);
  const error = thrown as RegistryError;
  expect(error.code).toBe(code);
  if (message) expect(error.message).toMatch(message);
  return error;
}

const [alice, bob, carol, dave] = signers('alice', 'bob', 'carol', 'dave');
const set3 = signerSet([alice!, bob!, carol!], 2);

describe('signerSetProblem (SPEC §3)', () => {
  it('accepts a well-formed set, threshold 1 to n', () => {
    expect(signerSetProblem(set3)).toBeUndefined();
    expect(signerSetProblem({ ...set3, threshold: 1 })).toBeUndefined();
    expect(signerSetProblem({ ...set3, threshold: 3 })).toBeUndefined();
  });

  it('refuses threshold 0', () => {
    expect(signerSetProblem({ ...set3, threshold: 0 })).toMatch(/threshold/);
  });

  it('refuses a threshold above the number of signers', () => {
    expect(signerSetProblem({ ...set3, threshold: 4 })).toMatch(/threshold/);
  });

  it('refuses signers not in ascending order of id', () => {
    const [a, b, c] = set3.signers;
    expect(signerSetProblem({ threshold: 2, signers: [b!, a!, c!] })).toMatch(/ascending/);
    expect(signerSetProblem({ threshold: 2, signers: [a!, c!, b!] })).toMatch(/ascending/);
  });

  it("compares ids by bytes ('-' < '.' < '0' < '_' < 'a'), not by locale", () => {
    const [x, y] = signers('x', 'y');
    // Signer ids are [a-z0-9._-]: '-' (0x2d) < '.' (0x2e) < '0' (0x30) < '_' (0x5f) < 'a'.
    const ids = ['a-b', 'a.b', 'a0', 'a_b'];
    const keys = [x!, y!, ...signers('z', 'w')];
    const set: SignerSet = { threshold: 1, signers: ids.map((id, i) => ({ id, public_key: keys[i]!.publicKey })) };
    expect(signerSetProblem(set)).toBeUndefined();
    expect(signerSetProblem({ threshold: 1, signers: [...set.signers].reverse() })).toMatch(/ascending/);
  });

  it('refuses a duplicate id', () => {
    const [a, b] = set3.signers;
    expect(signerSetProblem({ threshold: 2, signers: [a!, { id: 'alice', public_key: b!.public_key }] })).toMatch(/once|ascending/);
  });

  it('refuses a duplicate key under two ids', () => {
    const [a] = set3.signers;
    expect(signerSetProblem({ threshold: 1, signers: [a!, { id: 'zed', public_key: a!.public_key }] })).toMatch(/key/);
  });

  it('refuses a small-order key (the identity)', () => {
    const set: SignerSet = { threshold: 1, signers: [...set3.signers, { id: 'mallory', public_key: IDENTITY_KEY }] };
    expect(signerSetProblem(set)).toMatch(/small-order/);
  });

  it('refuses a key that is not a canonical point', () => {
    const nonCanonical = `ee${'ff'.repeat(30)}7f`; // y = p + 1
    expect(signerSetProblem({ threshold: 1, signers: [{ id: 'mallory', public_key: nonCanonical }] })).toMatch(/mallory/);
  });
});

describe('rotationProblem (SPEC §3: an id names one key)', () => {
  it('accepts dropping a signer and adding a new id with a new key', () => {
    const next = signerSet([alice!, bob!, dave!], 2);
    expect(rotationProblem([set3], next)).toBeUndefined();
  });

  it('refuses a kept id with a new key', () => {
    const next: SignerSet = {
      threshold: 2,
      signers: set3.signers.map((s) => (s.id === 'bob' ? { id: 'bob', public_key: dave!.publicKey } : s)),
    };
    expect(rotationProblem([set3], next)).toMatch(/bob/);
  });

  it('refuses an old key under a new id', () => {
    const next: SignerSet = {
      threshold: 2,
      signers: [set3.signers[0]!, set3.signers[1]!, { id: 'carol2', public_key: carol!.publicKey }],
    };
    expect(rotationProblem([set3], next)).toMatch(/carol/);
  });

  it('refuses an old key of a removed signer coming back under a new id', () => {
    const next: SignerSet = { threshold: 1, signers: [set3.signers[0]!, { id: 'zz', public_key: carol!.publicKey }] };
    expect(rotationProblem([set3], next)).toBeDefined();
  });
});

describe('quorum (SPEC §3)', () => {
  it('counts only approvals by signers of the set', () => {
    expect(hasQuorum({ current: set3 }, new Set(['alice']))).toBe(false);
    expect(hasQuorum({ current: set3 }, new Set(['alice', 'mallory']))).toBe(false);
    expect(hasQuorum({ current: set3 }, new Set(['alice', 'carol']))).toBe(true);
  });

  it('a rotation needs quorum under the current AND the proposed set', () => {
    const [erin, frank] = signers('erin', 'frank');
    const proposed = signerSet([alice!, erin!, frank!], 2);
    const electorate = { current: set3, proposed };
    expect(hasQuorum(electorate, new Set(['alice', 'bob']))).toBe(false); // 1 of the new set
    expect(hasQuorum(electorate, new Set(['erin', 'frank']))).toBe(false); // 0 of the current set
    expect(hasQuorum(electorate, new Set(['alice', 'bob', 'erin']))).toBe(true);
    expect(keyOf(electorate, 'erin')).toBe(erin!.publicKey);
    expect(keyOf(electorate, 'bob')).toBe(bob!.publicKey);
    expect(keyOf(electorate, 'mallory')).toBeUndefined();
  });
});

describe('planOps (SPEC §3)', () => {
  const fresh = (): RegistryState => new RegistryState(set3);

  it('refuses the same id twice in one proposal (put, put)', () => {
    expectRefusal(() => planOps(fresh(), [put('a'), put('a', { x: '1' })], 1), 'BadRequest', /more than once/);
  });

  it('refuses the same id twice in one proposal (put, delete)', () => {
    const state = fresh();
    state.apply(planOps(state, [put('a')], 1));
    expectRefusal(() => planOps(state, [put('a'), del('a')], 2), 'BadRequest', /more than once/);
    expectRefusal(() => planOps(state, [del('a'), put('a')], 2), 'BadRequest', /more than once/);
  });

  it('refuses a delete of an id absent from the base state', () => {
    expectRefusal(() => planOps(fresh(), [del('missing')], 1), 'BadRequest', /missing/);
  });

  it('refuses two set_signers', () => {
    expectRefusal(() => planOps(fresh(), [setSigners(set3), setSigners({ ...set3, threshold: 1 })], 1), 'BadRequest', /set_signers/);
  });

  it('refuses a set_signers whose set is invalid or breaks the id-key rule', () => {
    expectRefusal(() => planOps(fresh(), [setSigners({ ...set3, threshold: 0 })], 1), 'BadRequest', /threshold/);
    const stolen: SignerSet = { threshold: 1, signers: [{ id: 'zz', public_key: alice!.publicKey }] };
    expectRefusal(() => planOps(fresh(), [setSigners(stolen)], 1), 'BadRequest', /alice/);
  });

  it('plans without touching the state; apply changes it as rootAfter predicted', () => {
    const state = fresh();
    const emptyRoot = state.root();
    const delta = planOps(state, [put('svc-a', { region: 'eu' }), put('svc-b')], 7);
    expect(state.size).toBe(0);
    expect(state.root()).toBe(emptyRoot);
    expect(delta.version).toBe(7);
    expect(delta.changed).toEqual(['svc-a', 'svc-b']);
    const predicted = state.rootAfter(delta);
    expect(predicted).not.toBe(emptyRoot);
    expect(state.root()).toBe(emptyRoot); // rootAfter does not change the state either
    state.apply(delta);
    expect(state.size).toBe(2);
    expect(state.entries.get('svc-a')?.changedIn).toBe(7);
    expect(state.entries.get('svc-a')?.descriptor.labels).toEqual({ region: 'eu' });
    expect(state.root()).toBe(predicted);
  });

  it('a replacing put changes the root and changedIn; deleting everything gives back the empty root', () => {
    const state = fresh();
    const emptyRoot = state.root();
    state.apply(planOps(state, [put('svc-a'), put('svc-b')], 1));
    const root1 = state.root();
    const replace = planOps(state, [put('svc-a', { v: '2' })], 2);
    const root2 = state.rootAfter(replace);
    state.apply(replace);
    expect(state.root()).toBe(root2);
    expect(root2).not.toBe(root1);
    expect(state.entries.get('svc-a')?.changedIn).toBe(2);
    expect(state.entries.get('svc-b')?.changedIn).toBe(1);
    const wipe = planOps(state, [del('svc-a'), del('svc-b')], 3);
    expect(wipe.deletes).toEqual(['svc-a', 'svc-b']);
    expect(state.rootAfter(wipe)).toBe(emptyRoot);
    state.apply(wipe);
    expect(state.size).toBe(0);
    expect(state.root()).toBe(emptyRoot);
  });

  it('set_signers changes the root (the signer set is part of it) and the state signer set', () => {
    const state = fresh();
    const before = state.root();
    const next = signerSet([alice!, bob!, dave!], 2);
    const delta = planOps(state, [setSigners(next)], 1);
    expect(delta.signerSet).toEqual(next);
    expect(delta.changed).toEqual([]);
    const predicted = state.rootAfter(delta);
    expect(predicted).not.toBe(before);
    state.apply(delta);
    expect(state.signerSet).toEqual(next);
    expect(state.root()).toBe(predicted);
    expect(predicted).toBe(new RegistryState(next).root());
  });
});

describe('checkProposalHeader (SPEC §3, §6)', () => {
  const registryId = 'prod-eu';
  const genesis = genesisRecord(registryId, [alice!, bob!, carol!], 2, NOW - 3600_000);
  const head = { version: 0, hash: hashOf(genesis) };
  const ctx = (over: Partial<ProposalContext> = {}): ProposalContext => ({
    registryId,
    head,
    now: NOW,
    ...over,
  });
  function set3Of(record: CommitRecord): SignerSet {
    if (!isGenesisPayload(record.payload)) throw new Error('not a genesis');
    return record.payload.signer_set;
  }

  it('accepts a proposal on the head, whose ops then plan as head + 1', () => {
    const p = proposal(registryId, head, [put('svc-a')], { now: NOW, ttlMs: 3600_000 });
    const expiresAt = checkProposalHeader(p, ctx());
    const delta = planOps(new RegistryState(set3Of(genesis)), p.ops, head.version + 1);
    expect(delta.version).toBe(1);
    expect(delta.changed).toEqual(['svc-a']);
    expect(expiresAt).toBe(NOW + 3600_000);
  });

  it('refuses another registry_id with BadSignature (422)', () => {
    const p = proposal('prod-us', head, [put('svc-a')], { now: NOW });
    const error = expectRefusal(() => checkProposalHeader(p, ctx()), 'BadSignature');
    expect(error.status).toBe(422);
  });

  it('refuses a base that is not the head with StaleVersion (409): version or hash', () => {
    const behind = proposal(registryId, { version: 0, hash: hashOf({ other: true }) }, [put('svc-a')], { now: NOW });
    expect(expectRefusal(() => checkProposalHeader(behind, ctx()), 'StaleVersion').status).toBe(409);
    const ahead = proposal(registryId, { version: 1, hash: head.hash }, [put('svc-a')], { now: NOW });
    expectRefusal(() => checkProposalHeader(ahead, ctx()), 'StaleVersion');
  });

  it('refuses an expired proposal with Gone (410), at and after expires_at', () => {
    const p = proposal(registryId, head, [put('svc-a')], { now: NOW - 2 * 3600_000, ttlMs: 3600_000 });
    expect(expectRefusal(() => checkProposalHeader(p, ctx()), 'Gone').status).toBe(410);
    const atExpiry = proposal(registryId, head, [put('svc-a')], { now: NOW - 3600_000, ttlMs: 3600_000 });
    expectRefusal(() => checkProposalHeader(atExpiry, ctx()), 'Gone');
    const justBefore = proposal(registryId, head, [put('svc-a')], { now: NOW - 3600_000 + 1, ttlMs: 3600_000 });
    expect(checkProposalHeader(justBefore, ctx())).toBe(NOW + 1);
  });

  it('refuses expires_at more than 30 days after created_at with BadRequest; exactly 30 days is fine', () => {
    const tooLong = proposal(registryId, head, [put('svc-a')], { now: NOW, ttlMs: MAX_PROPOSAL_TTL_MS + 1 });
    expectRefusal(() => checkProposalHeader(tooLong, ctx()), 'BadRequest', /30 days/);
    const thirtyDays = proposal(registryId, head, [put('svc-a')], { now: NOW, ttlMs: 30 * 24 * 3600_000 });
    expect(checkProposalHeader(thirtyDays, ctx())).toBe(NOW + 30 * 24 * 3600_000);
  });

  it('refuses expires_at not after created_at', () => {
    const p = proposal(registryId, head, [put('svc-a')], { now: NOW, ttlMs: 0 });
    expectRefusal(() => checkProposalHeader(p, ctx()), 'BadRequest', /after created_at/);
  });

  it('refuses created_at more than 5 minutes in the future with BadRequest; 5 minutes is fine', () => {
    const future = proposal(registryId, head, [put('svc-a')], { now: NOW + 5 * 60_000 + 1 });
    expectRefusal(() => checkProposalHeader(future, ctx()), 'BadRequest', /future/);
    const skewed = proposal(registryId, head, [put('svc-a')], { now: NOW + 5 * 60_000 });
    expect(() => checkProposalHeader(skewed, ctx())).not.toThrow();
  });

  it('defaults expiry to created_at + 72 h (proposalExpiry)', () => {
    const { expires_at: _dropped, ...withoutExpiry } = proposal(registryId, head, [put('svc-a')], { now: NOW });
    const p: ProposalPayload = withoutExpiry;
    expect(DEFAULT_PROPOSAL_TTL_MS).toBe(72 * 3600_000);
    expect(proposalExpiry(p)).toBe(NOW + 72 * 3600_000);
    expect(checkProposalHeader(p, ctx())).toBe(NOW + 72 * 3600_000);
    expectRefusal(() => checkProposalHeader(p, ctx({ now: NOW + 72 * 3600_000 })), 'Gone');
  });

  it('refuses an unparseable created_at or expires_at', () => {
    const p = proposal(registryId, head, [put('svc-a')], { now: NOW });
    expectRefusal(() => proposalExpiry({ ...p, created_at: '2026-02-30T00:00:00.000Z' }), 'BadRequest', /created_at/);
    expectRefusal(() => proposalExpiry({ ...p, expires_at: '2026-11-22T17:00:00Z' }), 'BadRequest', /expires_at/);
  });

  it('leaves the ops to planOps, which the writer runs only after the signatures verify', () => {
    const p = proposal(registryId, head, [del('nope')], { now: NOW });
    expect(() => checkProposalHeader(p, ctx())).not.toThrow();
    expectRefusal(() => planOps(new RegistryState(set3Of(genesis)), p.ops, 1), 'BadRequest', /nope/);
  });
});

describe('checkGenesisRecord (SPEC §4)', () => {
  const created = NOW;
  const valid = (): CommitRecord => genesisRecord('prod-eu', [alice!, bob!, carol!], 2, created);
  const clone = (r: CommitRecord): CommitRecord => structuredClone(r);
  const genesisPayloadOf = (r: CommitRecord) => {
    if (!isGenesisPayload(r.payload)) throw new Error('not a genesis');
    return r.payload;
  };

  it('accepts a valid genesis and returns its hash', () => {
    const record = valid();
    const checked = checkGenesisRecord(record);
    expect(checked.hash).toBe(hashOf(record));
    expect(checked.payload.signer_set).toEqual(signerSet([alice!, bob!, carol!], 2));
  });

  it('refuses a tampered payload', () => {
    const record = clone(valid());
    genesisPayloadOf(record).created_at = formatTime(created + 1);
    expectRefusal(() => checkGenesisRecord(record), 'BadRequest', /hashes to/);
  });

  it('refuses a payload with a different signer set, even with a matching payload_hash', () => {
    const record = clone(valid());
    genesisPayloadOf(record).signer_set.threshold = 1;
    record.payload_hash = hashOf(record.payload);
    // The old approvals are over the old payload hash.
    expectRefusal(() => checkGenesisRecord(record), 'BadRequest', /does not verify/);
  });

  it('refuses a wrong state_root', () => {
    const record = clone(valid());
    record.state_root = hashOf({ not: 'the empty state' });
    expectRefusal(() => checkGenesisRecord(record), 'BadRequest', /state_root/);
  });

  it('refuses too few approvals', () => {
    const record = clone(valid());
    record.approvals = record.approvals.slice(0, 1);
    expectRefusal(() => checkGenesisRecord(record), 'BadRequest', /quorum/);
  });

  it('refuses the same signer counted twice towards quorum', () => {
    const record = clone(valid());
    record.approvals = [record.approvals[0]!, record.approvals[0]!];
    expectRefusal(() => checkGenesisRecord(record), 'BadRequest', /sorted|once/);
  });

  it('refuses unsorted approvals', () => {
    const record = clone(valid());
    record.approvals = [...record.approvals].reverse();
    expect(record.approvals[0]!.signer_id > record.approvals[1]!.signer_id).toBe(true);
    expectRefusal(() => checkGenesisRecord(record), 'BadRequest', /sorted/);
  });

  it('refuses a forged signature', () => {
    const record = clone(valid());
    const mallory = generateKeyPair();
    record.approvals[1] = { signer_id: record.approvals[1]!.signer_id, sig: signApproval(mallory.secretKey, record.payload_hash) };
    expectRefusal(() => checkGenesisRecord(record), 'BadRequest', /does not verify/);
  });

  it('refuses an approval by someone outside the set', () => {
    const record = clone(valid());
    const [zed] = signers('zed');
    record.approvals = [...record.approvals, approve(zed!, record.payload_hash)];
    expectRefusal(() => checkGenesisRecord(record), 'BadRequest', /not a signer/);
  });

  it('refuses a version other than 0 or a prev_hash', () => {
    const v1 = clone(valid());
    v1.version = 1;
    expectRefusal(() => checkGenesisRecord(v1), 'BadRequest', /version 0/);
    const linked = clone(valid());
    linked.prev_hash = hashOf({});
    expectRefusal(() => checkGenesisRecord(linked), 'BadRequest', /prev_hash/);
  });

  it('refuses a genesis whose signer set breaks the rules, even if it is self-consistent', () => {
    const badSet: SignerSet = { threshold: 1, signers: [{ id: 'alice', public_key: IDENTITY_KEY }] };
    const payload = buildGenesisPayload('prod-eu', badSet, formatTime(created));
    const payloadHash = hashOf(payload);
    const record = buildCommitRecord({
      registryId: 'prod-eu',
      version: 0,
      prevHash: null,
      payload,
      payloadHash,
      approvals: [{ signer_id: 'alice', sig: `${IDENTITY_KEY}${'00'.repeat(32)}` }],
      stateRoot: new RegistryState(badSet).root(),
      committedAt: formatTime(created),
    });
    expectRefusal(() => checkGenesisRecord(record), 'BadRequest', /signer set/);
  });

  it('refuses unknown fields (schema)', () => {
    const record = { ...valid(), extra: 1 };
    expectRefusal(() => checkGenesisRecord(record), 'BadRequest');
  });
});

describe('checkLink (SPEC §4)', () => {
  const registryId = 'prod-eu';
  const genesis = genesisRecord(registryId, [alice!, bob!, carol!], 2, NOW);
  const prev = { version: 0, hash: hashOf(genesis) };
  const commit = (over: Partial<CommitRecord> = {}, ops: Op[] = [put('svc-a')]): CommitRecord => {
    const payload = proposal(registryId, prev, ops, { now: NOW });
    const payloadHash = hashOf(payload);
    const approvals: Approval[] = [approve(bob!, payloadHash), approve(alice!, payloadHash)];
    return {
      ...buildCommitRecord({
        registryId,
        version: 1,
        prevHash: prev.hash,
        payload,
        payloadHash,
        approvals,
        stateRoot: hashOf({ any: 'root' }),
        committedAt: formatTime(NOW),
      }),
      ...over,
    };
  };

  it('accepts a record that follows its predecessor (and sorts approvals)', () => {
    const record = commit();
    expect(() => checkLink(record, prev, registryId)).not.toThrow();
    expect(record.approvals.map((a) => a.signer_id)).toEqual(['alice', 'bob']);
  });

  it('refuses a version that does not follow', () => {
    expectRefusal(() => checkLink(commit({ version: 2 }), prev, registryId), 'BadRequest', /follows version 0/);
  });

  it('refuses another registry', () => {
    expectRefusal(() => checkLink(commit({ registry_id: 'prod-us' }), prev, registryId), 'BadRequest', /prod-us/);
  });

  it('refuses a prev_hash that is not the hash of the previous record', () => {
    expectRefusal(() => checkLink(commit({ prev_hash: hashOf({}) }), prev, registryId), 'BadRequest', /prev_hash/);
    expectRefusal(() => checkLink(commit({ prev_hash: null }), prev, registryId), 'BadRequest', /prev_hash/);
  });

  it('refuses a payload based on another head', () => {
    const record = commit();
    if (isGenesisPayload(record.payload)) throw new Error('unexpected');
    const payload = { ...record.payload, base_hash: hashOf({ other: 'head' }) };
    const rebased = { ...record, payload, payload_hash: hashOf(payload) };
    expectRefusal(() => checkLink(rebased, prev, registryId), 'BadRequest', /another head/);
  });

  it('refuses a genesis payload after version 0', () => {
    expectRefusal(() => checkLink(commit({ payload: genesis.payload }), prev, registryId), 'BadRequest', /genesis/);
  });
});

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
    const chained = chainAuditEvent(null, { at, kind: 'thawed', proposal_id: undefined, signer_id: undefined, version: undefined, reason: undefined });
    expect(Object.keys(chained.event).sort()).toEqual(['at', 'kind', 'prev_hash', 'seq']);
    expect(chained.text).toBe(`{"at":"${at}","kind":"thawed","prev_hash":null,"seq":1}`);
    expect(chained.hash).toBe(chainAuditEvent(null, { at, kind: 'thawed' }).hash);
  });

  it('the hash changes with any field', () => {
    const base = chainAuditEvent(null, { at, kind: 'approval_refused', signer_id: 'bob', reason: 'bad signature' });
    expect(chainAuditEvent(null, { at, kind: 'approval_refused', signer_id: 'bob', reason: 'bad signature.' }).hash).not.toBe(base.hash);
    expect(chainAuditEvent({ seq: 0, hash: hashOf({}) }, { at, kind: 'approval_refused', signer_id: 'bob', reason: 'bad signature' }).hash).not.toBe(base.hash);
  });
});

describe('parseTime (SPEC §1)', () => {
  it('reads RFC 3339 UTC with milliseconds', () => {
    expect(parseTime('2026-11-22T17:00:00.000Z')).toBe(Date.UTC(2026, 10, 22, 17, 0, 0, 0));
    expect(parseTime('2028-02-29T23:59:59.999Z')).toBe(Date.UTC(2028, 1, 29, 23, 59, 59, 999));
    expect(parseTime('1970-01-01T00:00:00.000Z')).toBe(0);
    expect(formatTime(parseTime('2026-11-22T17:00:00.123Z'))).toBe('2026-11-22T17:00:00.123Z');
  });

  it.each([
    ['2026-02-30T00:00:00.000Z', 'February 30'],
    ['2026-02-29T00:00:00.000Z', 'February 29 of a common year'],
    ['2026-04-31T00:00:00.000Z', 'April 31'],
    ['2026-13-01T00:00:00.000Z', 'month 13'],
    ['2026-11-22T24:00:00.000Z', 'hour 24'],
    ['2026-11-22T23:60:00.000Z', 'minute 60'],
    ['2026-12-31T23:59:60.000Z', 'a leap second'],
    ['2026-11-22T17:00:00Z', 'no milliseconds'],
    ['2026-11-22T17:00:00.0Z', 'one digit of milliseconds'],
    ['2026-11-22T17:00:00.000000Z', 'microseconds'],
    ['2026-11-22T17:00:00.000+00:00', 'a +00:00 offset'],
    ['2026-11-22T17:00:00.000-01:00', 'a -01:00 offset'],
    ['2026-11-22T17:00:00.000', 'no offset'],
    ['2026-11-22T17:00:00.000z', 'a lower-case z'],
    ['2026-11-22t17:00:00.000Z', 'a lower-case t'],
    ['2026-11-22 17:00:00.000Z', 'a space for T'],
    ['2026-11-22', 'a date alone'],
    [' 2026-11-22T17:00:00.000Z', 'leading space'],
    ['2026-11-22T17:00:00.000Z\n', 'trailing newline'],
    ['+002026-11-22T17:00:00.000Z', 'an expanded year'],
    ['', 'the empty string'],
  ])('refuses %s (%s)', (text) => {
    expect(parseTime(text)).toBeNaN();
  });
});

describe('hashOf and canonicalJson (SPEC §1)', () => {
  it('hashes the JCS text: key order and whitespace do not matter, values do', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'] })).toBe('{"a":[true,null,"x"],"b":1}');
    expect(hashOf({ b: 1, a: 2 })).toBe(hashOf({ a: 2, b: 1 }));
    expect(hashOf({ a: 1 })).toBe(b3('{"a":1}'));
    expect(hashOf({ a: 1 })).not.toBe(hashOf({ a: '1' }));
  });

  it('refuses values without a JSON form', () => {
    expect(() => canonicalJson(undefined)).toThrow();
  });
});
