// The signer set over a registry's life (issue 15, item 8), end to end over real HTTP on a real
// port with a real SQLite file and real Ed25519 signatures: adding, removing and replacing
// signers and raising the threshold (SPEC §3: a set_signers proposal needs quorum under the
// current set AND under the proposed one; an id names one key for the registry's whole life),
// what happens to a pending proposal when the set changes under it, and how approvals by a
// removed key are refused and audited (SPEC §9) while its approvals in earlier records still
// verify. Each step is checked on the HTTP answers, the head, the records' approvals and the
// audit events, and the whole log by the independent auditor (`registry verify --url`).
import { afterEach, describe, expect, it } from 'vitest';
import { verifyApprovalStrict } from '../../src/core/crypto.js';
import { hashOf } from '../../src/core/encoding.js';
import type { AuditEvent, CommitRecord, ProposalPayload } from '../../src/core/schemas.js';
import type { ProposalView } from '../../src/state/proposal-view.js';
import { checkAuditChain, readAudit } from '../helpers/audit.js';
import { runInProcess } from '../helpers/cli.js';
import { approve, genesisRecord, proposal, put, setSigners, signers, signerSet, type TestSigner } from '../helpers/fixtures.js';
import type { ErrorJson, HeadJson, ProposalJson } from '../helpers/responses.js';
import { request, startTestRegistry, type Reply, type TestRegistry } from '../helpers/server.js';

const NOT_A_SIGNER = 'not a signer of this registry for this proposal';
const NO_CURRENT_SIGNER = 'a proposal needs at least one approval by a signer of the current set';

const running: TestRegistry[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

/** A registry of `list`, `threshold` of them, and the calls the tests make on it. */
async function registry(id: string, list: TestSigner[], threshold: number) {
  const reg = await startTestRegistry(genesisRecord(id, list, threshold));
  running.push(reg);
  const url = reg.url;
  const head = async (): Promise<HeadJson> => (await request<HeadJson>(url, 'GET', '/registry/head')).json;
  return {
    url,
    head,
    /** A proposal of `ops` on the head. */
    propose: async (ops: ProposalPayload['ops']): Promise<{ payload: ProposalPayload; id: string }> => {
      const payload = proposal(id, await head(), ops);
      return { payload, id: hashOf(payload) };
    },
    submit: (p: { payload: ProposalPayload; id: string }, by: TestSigner[]): Promise<Reply<ProposalView & ErrorJson>> =>
      request(url, 'POST', '/registry/proposals', { payload: p.payload, approvals: by.map((s) => approve(s, p.id)) }),
    approve: (proposalId: string, by: TestSigner): Promise<Reply<ProposalView & ErrorJson>> =>
      request(url, 'POST', `/registry/proposals/${proposalId}/approvals`, approve(by, proposalId)),
    status: async (proposalId: string): Promise<Reply<ProposalJson>> =>
      request<ProposalJson>(url, 'GET', `/registry/proposals/${proposalId}`),
    record: async (version: number): Promise<CommitRecord> => (await request<CommitRecord>(url, 'GET', `/registry/${version}`)).json,
    audit: async (): Promise<AuditEvent[]> => {
      const events = await readAudit(url);
      checkAuditChain(events);
      return events;
    },
  };
}

const ids = (approvals: { signer_id: string }[]): string[] => approvals.map((a) => a.signer_id);
/** The audit events after the first `n`, without seq, prev_hash and time. */
const eventsAfter = (events: AuditEvent[], n: number) =>
  events.slice(n).map(({ kind, proposal_id, signer_id, version, reason }) => ({ kind, proposal_id, signer_id, version, reason }));
const event = (kind: AuditEvent['kind'], fields: { proposal_id?: string; signer_id?: string; version?: number; reason?: string } = {}) => ({
  kind,
  proposal_id: undefined,
  signer_id: undefined,
  version: undefined,
  reason: undefined,
  ...fields,
});

/** The independent auditor over HTTP: exit 0 and the head it trusts. */
async function verifyUrl(url: string): Promise<string> {
  const r = await runInProcess(['verify', '--url', url], { cwd: process.cwd() });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout;
}

describe('the signer set over a registry life', () => {
  it('adds a signer, removes one and raises the threshold, each with quorum under the current and the proposed set', async () => {
    const [alice, bob, carol, dave] = signers('alice', 'bob', 'carol', 'dave') as [TestSigner, TestSigner, TestSigner, TestSigner];
    const reg = await registry('life', [alice, bob, carol], 2);

    // 1. dave joins, 2 of 4. Alone he cannot put the change forward: no signer vouched for it.
    const add = await reg.propose([setSigners(signerSet([alice, bob, carol, dave], 2))]);
    const alone = await reg.submit(add, [dave]);
    expect(alone.status).toBe(422);
    expect(alone.json.error.code).toBe('BadSignature');
    expect((await reg.status(add.id)).status).toBe(404);
    let r = await reg.submit(add, [alice]);
    expect(r.status).toBe(201);
    expect(r.json).toEqual({
      proposal_id: add.id,
      status: 'pending',
      approvals: [{ signer_id: 'alice' }],
      threshold: 2,
      proposed_threshold: 2,
    });
    // dave's approval counts for the proposed set only: one current signer is not quorum.
    r = await reg.approve(add.id, dave);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ status: 'pending', approvals: [{ signer_id: 'alice' }, { signer_id: 'dave' }] });
    expect((await reg.head()).version).toBe(0);
    r = await reg.approve(add.id, carol);
    expect(r.json).toMatchObject({ status: 'committed', version: 1, threshold: 2, proposed_threshold: 2 });
    expect((await reg.head()).signer_set).toEqual(signerSet([alice, bob, carol, dave], 2));
    expect(ids((await reg.record(1)).approvals)).toEqual(['alice', 'carol', 'dave']);
    // From version 1 on, dave is a signer like the others.
    r = await reg.submit(await reg.propose([put('svc-by-dave')]), [dave, alice]);
    expect(r.json).toMatchObject({ status: 'committed', version: 2 });

    // 2. carol leaves (alice, bob, dave, 2 of 3). She may approve her own removal, but her
    // approval counts only under the current set: with bob's it is the current quorum, not the new one.
    const remove = await reg.propose([setSigners(signerSet([alice, bob, dave], 2))]);
    r = await reg.submit(remove, [carol]);
    expect(r.json).toEqual({
      proposal_id: remove.id,
      status: 'pending',
      approvals: [{ signer_id: 'carol' }],
      threshold: 2,
      proposed_threshold: 2,
    });
    r = await reg.approve(remove.id, bob);
    expect(r.json).toMatchObject({ status: 'pending', approvals: [{ signer_id: 'bob' }, { signer_id: 'carol' }] });
    r = await reg.approve(remove.id, dave);
    expect(r.json).toMatchObject({ status: 'committed', version: 3 });
    expect(ids((await reg.record(3)).approvals)).toEqual(['bob', 'carol', 'dave']);
    expect((await reg.head()).signer_set).toEqual(signerSet([alice, bob, dave], 2));

    // Ids and keys are never rebound: carol's key under another id, or her id with another key.
    const auditBefore = (await reg.audit()).length;
    const [carol2] = signers('carol') as [TestSigner];
    for (const [set, message] of [
      [signerSet([alice, bob, { ...carol, id: 'carol-2' }, dave], 2), /the key of signer carol reappears under the id carol-2/],
      [signerSet([alice, bob, carol2, dave], 2), /signer id carol already named another key; a new key takes a new id/],
    ] as const) {
      const p = await reg.propose([setSigners(set)]);
      const refused = await reg.submit(p, [alice, bob]);
      expect(refused.status).toBe(400);
      expect(refused.json.error.code).toBe('BadRequest');
      expect(refused.json.error.message).toMatch(message);
      expect((await reg.status(p.id)).status).toBe(404);
    }
    expect((await reg.audit()).length).toBe(auditBefore);

    // 3. The threshold rises to 3 of 3: the current quorum (2) is not enough, the proposed one is needed.
    const raise = await reg.propose([setSigners(signerSet([alice, bob, dave], 3))]);
    r = await reg.submit(raise, [alice, bob]);
    expect(r.status).toBe(201);
    expect(r.json).toEqual({
      proposal_id: raise.id,
      status: 'pending',
      approvals: [{ signer_id: 'alice' }, { signer_id: 'bob' }],
      threshold: 2,
      proposed_threshold: 3,
    });
    r = await reg.approve(raise.id, dave);
    expect(r.json).toMatchObject({ status: 'committed', version: 4 });
    expect((await reg.head()).signer_set).toEqual(signerSet([alice, bob, dave], 3));
    // From version 4 on, every change needs all three.
    const next = await reg.propose([put('svc-3-of-3')]);
    r = await reg.submit(next, [alice, bob]);
    expect(r.json).toEqual({
      proposal_id: next.id,
      status: 'pending',
      approvals: [{ signer_id: 'alice' }, { signer_id: 'bob' }],
      threshold: 3,
    });
    r = await reg.approve(next.id, dave);
    expect(r.json).toMatchObject({ status: 'committed', version: 5, threshold: 3 });
    expect(ids((await reg.record(5)).approvals)).toEqual(['alice', 'bob', 'dave']);

    // The audit log tells the same story; nothing was refused as a signed claim.
    const audit = await reg.audit();
    expect(audit.filter((e) => e.kind === 'committed').map((e) => [e.version, e.proposal_id])).toEqual([
      [1, add.id],
      [2, (await reg.record(2)).payload_hash],
      [3, remove.id],
      [4, raise.id],
      [5, next.id],
    ]);
    expect(audit.filter((e) => e.kind === 'approval_accepted' && e.proposal_id === add.id).map((e) => e.signer_id)).toEqual([
      'alice',
      'dave',
      'carol',
    ]);
    expect(audit.filter((e) => e.kind === 'approval_refused')).toEqual([]);
    const verified = await verifyUrl(reg.url);
    expect(verified).toMatch(/signer sets +3 change\(s\); now 3 of alice, bob, dave/);
    expect(verified).toContain(`trusted head: ${(await reg.head()).hash}`);
  });

  it('replaces a compromised key while a proposal is pending: the proposal goes stale, and the old key is refused from then on', async () => {
    const [alice, bob, carol] = signers('alice', 'bob', 'carol') as [TestSigner, TestSigner, TestSigner];
    const [bob2] = signers('bob-2') as [TestSigner];
    const reg = await registry('rekey', [alice, bob, carol], 2);

    // A change is pending with alice's approval when bob's key is found compromised.
    const pending = await reg.propose([put('svc-a', { tier: 'gold' })]);
    expect((await reg.submit(pending, [alice])).json).toMatchObject({ status: 'pending' });

    // bob's id cannot take the new key (an id names one key): the new key takes a new id, bob-2.
    const rebind = await reg.propose([setSigners(signerSet([alice, { ...bob2, id: 'bob' }, carol], 2))]);
    const rebound = await reg.submit(rebind, [alice, carol]);
    expect(rebound.status).toBe(400);
    expect(rebound.json.error.message).toMatch(/signer id bob already named another key/);

    const rotation = await reg.propose([setSigners(signerSet([alice, bob2, carol], 2))]);
    let r = await reg.submit(rotation, [alice, bob2]);
    // bob-2 proves the new key is live, but only alice counts under the current set.
    expect(r.json).toEqual({
      proposal_id: rotation.id,
      status: 'pending',
      approvals: [{ signer_id: 'alice' }, { signer_id: 'bob-2' }],
      threshold: 2,
      proposed_threshold: 2,
    });
    const before = (await reg.audit()).length;
    r = await reg.approve(rotation.id, carol);
    expect(r.json).toMatchObject({ status: 'committed', version: 1 });
    const h1 = await reg.head();
    expect(h1.signer_set).toEqual(signerSet([alice, bob2, carol], 2));
    expect(ids((await reg.record(1)).approvals)).toEqual(['alice', 'bob-2', 'carol']);

    // The pending proposal was based on version 0: the rotation made it stale, in the same step.
    expect((await reg.status(pending.id)).json.status).toBe('stale');
    expect(eventsAfter(await reg.audit(), before)).toEqual([
      event('approval_accepted', { proposal_id: rotation.id, signer_id: 'carol' }),
      event('committed', { proposal_id: rotation.id, version: 1 }),
      event('proposal_stale', { proposal_id: pending.id }),
    ]);
    // Nobody can revive it, a current signer no more than the old key.
    for (const s of [carol, bob]) {
      const late = await reg.approve(pending.id, s);
      expect(late.status).toBe(409);
      expect(late.json.error.code).toBe('StaleVersion');
    }

    // Proposed again on the new head, it needs the new set's approvals.
    const again = await reg.propose([put('svc-a', { tier: 'gold' })]);
    const auditMark = (await reg.audit()).length;
    // The old key is refused, with its proposal or on its own, and so is a request that carries it.
    const byOldKey = await reg.submit(again, [bob]);
    expect(byOldKey.status).toBe(422);
    expect(byOldKey.json.error).toMatchObject({ code: 'BadSignature', message: NO_CURRENT_SIGNER });
    const mixed = await reg.submit(again, [alice, bob]);
    expect(mixed.status).toBe(422);
    expect(mixed.json.error.message).toContain(`bob: ${NOT_A_SIGNER}`);
    expect((await reg.status(again.id)).status).toBe(404);
    expect((await reg.submit(again, [alice])).status).toBe(201);
    const oldKeyApproves = await reg.approve(again.id, bob);
    expect(oldKeyApproves.status).toBe(422);
    expect(oldKeyApproves.json.error.code).toBe('BadSignature');
    // The old key signing in bob-2's name does not verify: refused, and audited as nothing (no signed claim).
    const forged = await request<ErrorJson>(reg.url, 'POST', `/registry/proposals/${again.id}/approvals`, {
      signer_id: 'bob-2',
      sig: approve(bob, again.id).sig,
    });
    expect(forged.status).toBe(422);
    expect((await reg.status(again.id)).json).toMatchObject({ status: 'pending', approvals: [{ signer_id: 'alice' }] });
    r = await reg.approve(again.id, bob2);
    expect(r.json).toMatchObject({ status: 'committed', version: 2 });
    expect(ids((await reg.record(2)).approvals)).toEqual(['alice', 'bob-2']);

    // What the audit log holds of it: bob's signed claims refused, once per proposal and reason
    // (his approval of the pending proposal repeats the second claim), the forgery not at all.
    expect(eventsAfter(await reg.audit(), auditMark)).toEqual([
      event('approval_refused', { proposal_id: again.id, signer_id: 'bob', reason: NO_CURRENT_SIGNER }),
      event('approval_refused', { proposal_id: again.id, signer_id: 'bob', reason: NOT_A_SIGNER }),
      event('proposal_received', { proposal_id: again.id }),
      event('approval_accepted', { proposal_id: again.id, signer_id: 'alice' }),
      event('approval_accepted', { proposal_id: again.id, signer_id: 'bob-2' }),
      event('committed', { proposal_id: again.id, version: 2 }),
    ]);
    // The refusals of the stale proposal's late approvals are signed claims too (SPEC §9).
    const audit = await reg.audit();
    expect(audit.filter((e) => e.kind === 'approval_refused' && e.proposal_id === pending.id).map((e) => [e.signer_id, e.reason])).toEqual([
      ['carol', 'the proposal is stale'],
      ['bob', 'the proposal is stale'],
    ]);
    expect(await verifyUrl(reg.url)).toContain(`trusted head: ${(await reg.head()).hash}`);
  });

  it("refuses a removed signer's approvals from its removal on (422, audited), while its approvals in earlier records still verify", async () => {
    const [alice, bob, carol] = signers('alice', 'bob', 'carol') as [TestSigner, TestSigner, TestSigner];
    const reg = await registry('removed', [alice, bob, carol], 2);

    // carol approves versions 1 and 2, then is removed at version 3.
    const first = await reg.propose([put('svc-1')]);
    expect((await reg.submit(first, [alice, carol])).json).toMatchObject({ status: 'committed', version: 1 });
    const second = await reg.propose([put('svc-2')]);
    expect((await reg.submit(second, [carol, bob])).json).toMatchObject({ status: 'committed', version: 2 });
    const removal = await reg.propose([setSigners(signerSet([alice, bob], 2))]);
    expect((await reg.submit(removal, [alice, bob])).json).toMatchObject({ status: 'committed', version: 3 });
    const h3 = await reg.head();
    expect(h3.signer_set).toEqual(signerSet([alice, bob], 2));

    const mark = (await reg.audit()).length;
    // A new proposal carrying carol's approval, alone or beside a valid one: refused as a whole.
    const p = await reg.propose([put('svc-after')]);
    const alone = await reg.submit(p, [carol]);
    expect(alone.status).toBe(422);
    expect(alone.json.error).toMatchObject({ code: 'BadSignature', message: NO_CURRENT_SIGNER, retryable: false });
    const beside = await reg.submit(p, [alice, carol]);
    expect(beside.status).toBe(422);
    expect(beside.json.error).toMatchObject({ code: 'BadSignature', retryable: false });
    expect(beside.json.error.message).toContain(`carol: ${NOT_A_SIGNER}`);
    expect((await reg.status(p.id)).status).toBe(404);
    // On a pending proposal: refused, the proposal unchanged, and sent again, audited only once.
    expect((await reg.submit(p, [alice])).status).toBe(201);
    for (let i = 0; i < 2; i++) {
      const r = await reg.approve(p.id, carol);
      expect(r.status).toBe(422);
      expect(r.json.error.code).toBe('BadSignature');
    }
    // A signature that does not verify under carol's key proves nothing about her: not audited.
    const forged = await request<ErrorJson>(reg.url, 'POST', `/registry/proposals/${p.id}/approvals`, {
      signer_id: 'carol',
      sig: approve(alice, p.id).sig,
    });
    expect(forged.status).toBe(422);
    expect((await reg.status(p.id)).json).toMatchObject({ status: 'pending', approvals: [{ signer_id: 'alice' }], threshold: 2 });
    expect((await reg.approve(p.id, bob)).json).toMatchObject({ status: 'committed', version: 4 });
    expect(ids((await reg.record(4)).approvals)).toEqual(['alice', 'bob']);
    expect(eventsAfter(await reg.audit(), mark)).toEqual([
      // one event per proposal, signer and reason: her approvals of the pending proposal repeat the second claim
      event('approval_refused', { proposal_id: p.id, signer_id: 'carol', reason: NO_CURRENT_SIGNER }),
      event('approval_refused', { proposal_id: p.id, signer_id: 'carol', reason: NOT_A_SIGNER }),
      event('proposal_received', { proposal_id: p.id }),
      event('approval_accepted', { proposal_id: p.id, signer_id: 'alice' }),
      event('approval_accepted', { proposal_id: p.id, signer_id: 'bob' }),
      event('committed', { proposal_id: p.id, version: 4 }),
    ]);
    // A second proposal gets its own audited refusal: the claim is per proposal.
    const q = await reg.propose([put('svc-later')]);
    expect((await reg.submit(q, [alice])).status).toBe(201);
    expect((await reg.approve(q.id, carol)).status).toBe(422);
    expect((await reg.audit()).at(-1)).toMatchObject({
      kind: 'approval_refused',
      proposal_id: q.id,
      signer_id: 'carol',
      reason: NOT_A_SIGNER,
    });
    expect((await reg.head()).version).toBe(4);

    // A proposal committed while she was a signer was hers to approve: a late approval of it
    // answers committed and changes nothing.
    const late = await reg.approve(second.id, carol);
    expect(late.status).toBe(200);
    expect(late.json).toMatchObject({ status: 'committed', version: 2 });
    expect((await reg.head()).version).toBe(4);

    // Her approvals in the records before her removal still verify, under the key she had.
    for (const [version, proposalId] of [
      [1, first.id],
      [2, second.id],
    ] as const) {
      const record = await reg.record(version);
      expect(record.payload_hash).toBe(proposalId);
      const hers = record.approvals.find((a) => a.signer_id === 'carol');
      expect(hers).toBeDefined();
      expect(verifyApprovalStrict(carol.publicKey, record.payload_hash, hers!.sig)).toBe(true);
      expect((await reg.record(version + 1)).prev_hash).toBe(hashOf(record));
    }
    const verified = await verifyUrl(reg.url);
    expect(verified).toMatch(/signer sets +1 change\(s\); now 2 of alice, bob/);
    expect(verified).toContain(`trusted head: ${(await reg.head()).hash}`);
  });
});
