// Unit tests of src/core/records.ts (SPEC §4): the genesis record and the link between records.
import { describe, expect, it } from 'vitest';
import { generateKeyPair, signApproval } from '../../../src/core/crypto.js';
import { canonicalJson, formatTime, hashOf } from '../../../src/core/encoding.js';
import {
  assembleGenesis,
  buildCommitRecord,
  buildGenesisPayload,
  checkGenesisRecord,
  checkLink,
  isGenesisPayload,
} from '../../../src/core/records.js';
import type { Approval, CommitRecord, GenesisPayload, Op, SignerSet } from '../../../src/core/schemas.js';
import { RegistryState } from '../../../src/core/state.js';
import { approve, genesisRecord, proposal, put, signers, signerSet } from '../../helpers/fixtures.js';
import { alice, bob, carol, expectIntegrityFailure, IDENTITY_KEY, NOW } from './fixtures.js';

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
    record.committed_at = formatTime(created + 1);
    expectIntegrityFailure(() => checkGenesisRecord(record), /hashes to/);
  });

  it('refuses a payload with a different signer set, even with a matching payload_hash', () => {
    const record = clone(valid());
    genesisPayloadOf(record).signer_set.threshold = 1;
    record.payload_hash = hashOf(record.payload);
    // The old approvals are over the old payload hash.
    expectIntegrityFailure(() => checkGenesisRecord(record), /does not verify/);
  });

  it('refuses a wrong state_root', () => {
    const record = clone(valid());
    record.state_root = hashOf({ not: 'the empty state' });
    expectIntegrityFailure(() => checkGenesisRecord(record), /state_root/);
  });

  it('refuses too few approvals', () => {
    const record = clone(valid());
    record.approvals = record.approvals.slice(0, 1);
    expectIntegrityFailure(() => checkGenesisRecord(record), /quorum/);
  });

  it('refuses the same signer counted twice towards quorum', () => {
    const record = clone(valid());
    record.approvals = [record.approvals[0]!, record.approvals[0]!];
    expectIntegrityFailure(() => checkGenesisRecord(record), /sorted|once/);
  });

  it('refuses unsorted approvals', () => {
    const record = clone(valid());
    record.approvals = [...record.approvals].reverse();
    expect(record.approvals[0]!.signer_id > record.approvals[1]!.signer_id).toBe(true);
    expectIntegrityFailure(() => checkGenesisRecord(record), /sorted/);
  });

  it('refuses a forged signature', () => {
    const record = clone(valid());
    const mallory = generateKeyPair();
    record.approvals[1] = { signer_id: record.approvals[1]!.signer_id, sig: signApproval(mallory.secretKey, record.payload_hash) };
    expectIntegrityFailure(() => checkGenesisRecord(record), /does not verify/);
  });

  it('refuses an approval by someone outside the set', () => {
    const record = clone(valid());
    const [zed] = signers('zed');
    record.approvals = [...record.approvals, approve(zed!, record.payload_hash)];
    expectIntegrityFailure(() => checkGenesisRecord(record), /not a signer/);
  });

  it('refuses a version other than 0 or a prev_hash', () => {
    const v1 = clone(valid());
    v1.version = 1;
    expectIntegrityFailure(() => checkGenesisRecord(v1), /version 0/);
    const linked = clone(valid());
    linked.prev_hash = hashOf({});
    expectIntegrityFailure(() => checkGenesisRecord(linked), /prev_hash/);
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
    expectIntegrityFailure(() => checkGenesisRecord(record), /signer set/);
  });

  it('is committed at its payload created_at, so the same approvals assemble the same bytes (SPEC §4)', () => {
    const record = valid();
    const payload = record.payload as GenesisPayload;
    expect(record.committed_at).toBe(payload.created_at);
    const again = assembleGenesis(payload, [...record.approvals].reverse());
    expect(canonicalJson(again)).toBe(canonicalJson(record));
    const later = { ...record, committed_at: formatTime(created + 1000) };
    expectIntegrityFailure(() => checkGenesisRecord(later), /committed_at .* must be its payload's created_at/, 0);
  });

  it('refuses unknown fields (schema)', () => {
    const record = { ...valid(), extra: 1 };
    expectIntegrityFailure(() => checkGenesisRecord(record), /not valid/);
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
    expectIntegrityFailure(() => checkLink(commit({ version: 2 }), prev, registryId), /follows version 0/);
  });

  it('refuses another registry', () => {
    expectIntegrityFailure(() => checkLink(commit({ registry_id: 'prod-us' }), prev, registryId), /prod-us/);
  });

  it('refuses a prev_hash that is not the hash of the previous record', () => {
    expectIntegrityFailure(() => checkLink(commit({ prev_hash: hashOf({}) }), prev, registryId), /prev_hash/);
    expectIntegrityFailure(() => checkLink(commit({ prev_hash: null }), prev, registryId), /prev_hash/);
  });

  it('refuses a payload based on another head', () => {
    const record = commit();
    if (isGenesisPayload(record.payload)) throw new Error('unexpected');
    const payload = { ...record.payload, base_hash: hashOf({ other: 'head' }) };
    const rebased = { ...record, payload, payload_hash: hashOf(payload) };
    expectIntegrityFailure(() => checkLink(rebased, prev, registryId), /another head/);
  });

  it('refuses a genesis payload after version 0', () => {
    expectIntegrityFailure(() => checkLink(commit({ payload: genesis.payload }), prev, registryId), /genesis/);
  });
});
