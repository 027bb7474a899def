// Unit tests of src/core/proposal.ts (SPEC §3, §6): the proposal header checks.
import { describe, expect, it } from 'vitest';
import { hashOf } from '../../../src/core/encoding.js';
import {
  checkProposalHeader,
  DEFAULT_PROPOSAL_TTL_MS,
  MAX_PROPOSAL_TTL_MS,
  proposalExpiry,
  type ProposalContext,
} from '../../../src/core/proposal.js';
import { isGenesisPayload } from '../../../src/core/records.js';
import type { CommitRecord, ProposalPayload, SignerSet } from '../../../src/core/schemas.js';
import { planOps, RegistryState } from '../../../src/core/state.js';
import { del, genesisRecord, proposal, put } from '../../helpers/fixtures.js';
import { alice, bob, carol, expectRefusal, NOW } from './fixtures.js';

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
    const p: ProposalPayload = proposal(registryId, head, [put('svc-a')], { now: NOW });
    delete p.expires_at;
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
