// Unit tests of src/core/approvals.ts (SPEC §3, §6, §9): which approvals a request may carry and
// which refusals are audited. The table-driven part checks the core against
// test/vectors/admission.json, which an independent reading of the SPEC wrote
// (test/vectors/generate.mjs, `npm run vectors`).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BAD_SIGNATURE,
  EXPIRED,
  isSignedClaim,
  judgeApprovals,
  judgeNewProposal,
  NO_CURRENT_SIGNER,
  NOT_A_SIGNER,
  newApprovals,
  proposedSignerIds,
  refusalEvents,
  refuseAll,
  refuseSettled,
  registryKeyOf,
  screenApprovals,
  STALE,
  type ApprovalContext,
  type Refusal,
  type Verdict,
} from '../../../src/core/approvals.js';
import { ApprovalVerifier, signApproval } from '../../../src/core/crypto.js';
import { hashOf } from '../../../src/core/encoding.js';
import { RegistryError } from '../../../src/core/errors.js';
import type { Approval, ProposalPayload, SignerSet } from '../../../src/core/schemas.js';

type Mode = 'new' | 'known' | 'foreign';
type Kind = 'not_a_signer' | 'bad_signature' | 'no_current_signer' | 'other_registry';
interface AdmissionCase {
  name: string;
  mode: Mode;
  history: SignerSet[];
  current: SignerSet;
  proposed?: SignerSet;
  proposal_id: string;
  approvals: Approval[];
  notes: string[];
  ok: boolean;
  refusals?: [string, boolean][];
  refusal_kinds?: Kind[];
  audited?: string[];
}
interface AdmissionVectors {
  registry_id: string;
  signers: { id: string; secret_key: string; public_key: string }[];
  payloads: { name: string; payload: ProposalPayload; hash: string }[];
  cases: AdmissionCase[];
}

const vectors = JSON.parse(readFileSync(new URL('../../vectors/admission.json', import.meta.url), 'utf8')) as AdmissionVectors;
const AT = '2026-11-22T17:00:00.000Z';
const FOREIGN_REASON = 'the proposal is for another registry';
const REASON_OF: Record<Kind, string> = {
  not_a_signer: NOT_A_SIGNER,
  bad_signature: BAD_SIGNATURE,
  no_current_signer: NO_CURRENT_SIGNER,
  other_registry: FOREIGN_REASON,
};

function run(c: AdmissionCase): Verdict {
  const ctx: ApprovalContext = {
    proposalId: c.proposal_id,
    electorate: c.proposed === undefined ? { current: c.current } : { current: c.current, proposed: c.proposed },
    history: c.history,
    verifier: new ApprovalVerifier(),
  };
  switch (c.mode) {
    case 'new':
      return judgeNewProposal(ctx, c.approvals);
    case 'known':
      return judgeApprovals(ctx, c.approvals);
    case 'foreign':
      return refuseAll(ctx, c.approvals, FOREIGN_REASON, new RegistryError('BadSignature', FOREIGN_REASON));
  }
}

describe('admission vectors (test/vectors/admission.json)', () => {
  it('cover every mode and branch', () => {
    const cases = vectors.cases;
    expect(cases.length).toBeGreaterThanOrEqual(15);
    for (const mode of ['new', 'known'] as const)
      expect(
        cases.some((c) => c.mode === mode && c.ok),
        `accepted ${mode}`,
      ).toBe(true);
    for (const mode of ['new', 'known', 'foreign'] as const)
      expect(
        cases.some((c) => c.mode === mode && !c.ok),
        `refused ${mode}`,
      ).toBe(true);
    const kinds = new Set(cases.flatMap((c) => c.refusal_kinds ?? []));
    expect([...kinds].sort()).toEqual(['bad_signature', 'no_current_signer', 'not_a_signer', 'other_registry']);
    // Signed and unsigned refusals, audited ones, and a signer refused more than once.
    expect(cases.some((c) => c.refusals?.some(([, signed]) => signed))).toBe(true);
    expect(cases.some((c) => c.refusals?.some(([, signed]) => !signed) && c.audited?.length === 0)).toBe(true);
    expect(cases.some((c) => (c.refusals?.filter(([, signed]) => signed).length ?? 0) > (c.audited?.length ?? 0))).toBe(true);
    expect(cases.some((c) => c.proposed !== undefined && c.mode === 'new' && c.ok)).toBe(true);
    expect(cases.some((c) => c.history.length >= 3)).toBe(true);
  });

  it('are built from real payload hashes and real signatures by the listed keys', () => {
    for (const p of vectors.payloads) expect(hashOf(p.payload), p.name).toBe(p.hash);
    const hashes = new Set(vectors.payloads.map((p) => p.hash));
    const byId = new Map(vectors.signers.map((s) => [s.id, s]));
    for (const c of vectors.cases) {
      expect(hashes.has(c.proposal_id), c.name).toBe(true);
      expect(c.current, c.name).toEqual(c.history.at(-1));
      c.approvals.forEach((a, i) => {
        // The approvals the notes call valid are what the project's own signer produces.
        const mine = signApproval(byId.get(a.signer_id)!.secret_key, c.proposal_id);
        expect(a.sig === mine, `${c.name}: ${c.notes[i]}`).toBe(c.notes[i]!.endsWith('valid, own key'));
      });
    }
  });

  for (const c of vectors.cases) {
    it(`${c.mode}: ${c.name}`, () => {
      const verdict = run(c);
      expect(verdict.ok).toBe(c.ok);
      if (verdict.ok) return;
      expect(verdict.error).toBeInstanceOf(RegistryError);
      expect(verdict.error.code).toBe('BadSignature');
      expect(verdict.error.status).toBe(422);
      expect(verdict.refusals.map((r): [string, boolean] => [r.signer_id, r.signed])).toEqual(c.refusals);
      expect(verdict.refusals.map((r) => r.reason)).toEqual(c.refusal_kinds!.map((k) => REASON_OF[k]));
      // The 422 of a judged request names each refused signer; the others carry their reason.
      if (c.refusal_kinds![0] === 'no_current_signer') expect(verdict.error.message).toBe(NO_CURRENT_SIGNER);
      else if (c.mode === 'foreign') expect(verdict.error.message).toBe(FOREIGN_REASON);
      else for (const [id] of c.refusals!) expect(verdict.error.message).toContain(`${id}: `);
      const events = refusalEvents(c.proposal_id, verdict.refusals, AT);
      expect(events.map((e) => e.signer_id)).toEqual(c.audited);
      for (const e of events) {
        expect(e).toMatchObject({ at: AT, kind: 'approval_refused', proposal_id: c.proposal_id });
        expect(e.reason).toBe(verdict.refusals.find((r) => r.signer_id === e.signer_id && r.signed)!.reason);
      }
    });
  }
});

describe('refusalEvents (SPEC §9)', () => {
  const id = hashOf({ p: 'refusal-events' });
  const refusal = (signer_id: string, reason: string, signed: boolean): Refusal => ({ signer_id, reason, signed });

  it('emits one approval_refused event per signed refusal, in order, with the proposal, signer and reason', () => {
    expect(refusalEvents(id, [refusal('carol', NOT_A_SIGNER, true), refusal('alice', STALE, true)], AT)).toEqual([
      { at: AT, kind: 'approval_refused', proposal_id: id, signer_id: 'carol', reason: NOT_A_SIGNER },
      { at: AT, kind: 'approval_refused', proposal_id: id, signer_id: 'alice', reason: STALE },
    ]);
  });

  it('skips unsigned refusals: nobody without a key can grow the audit log', () => {
    expect(refusalEvents(id, [refusal('mallory', NOT_A_SIGNER, false), refusal('bob', BAD_SIGNATURE, false)], AT)).toEqual([]);
    expect(refusalEvents(id, [], AT)).toEqual([]);
  });

  it('dedupes by signer id: the first signed refusal of an id gives the reason', () => {
    const events = refusalEvents(
      id,
      [
        refusal('carol', BAD_SIGNATURE, false), // unsigned: does not claim carol's slot
        refusal('carol', NOT_A_SIGNER, true),
        refusal('dave', EXPIRED, true),
        refusal('carol', STALE, true),
        refusal('dave', STALE, true),
      ],
      AT,
    );
    expect(events.map((e) => [e.signer_id, e.reason])).toEqual([
      ['carol', NOT_A_SIGNER],
      ['dave', EXPIRED],
    ]);
  });
});

describe('newApprovals', () => {
  it('counts the first approval by each signer; held ones and later duplicates change nothing', () => {
    const held = new Map([['bob', 'sig-bob-held']]);
    const fresh = newApprovals(held, [
      { signer_id: 'alice', sig: 'sig-alice-1' },
      { signer_id: 'bob', sig: 'sig-bob-2' },
      { signer_id: 'alice', sig: 'sig-alice-2' },
      { signer_id: 'carol', sig: 'sig-carol' },
    ]);
    expect([...fresh]).toEqual([
      ['alice', 'sig-alice-1'],
      ['carol', 'sig-carol'],
    ]);
    expect([...held]).toEqual([['bob', 'sig-bob-held']]);
  });

  it('returns nothing new when every signer is held already', () => {
    expect(newApprovals(new Map([['alice', 'x']]), [{ signer_id: 'alice', sig: 'y' }]).size).toBe(0);
  });
});

describe('refuseSettled', () => {
  const id = hashOf({ p: 'settled' });
  const approvals: Approval[] = [
    { signer_id: 'alice', sig: 'a' },
    { signer_id: 'bob', sig: 'b' },
    { signer_id: 'alice', sig: 'a2' },
  ];

  it('a stale proposal: 409 StaleVersion, every approval refused as a signed claim', () => {
    const verdict = refuseSettled(id, approvals, 'stale');
    if (verdict.ok) throw new Error('expected a refusal');
    expect(verdict.error.code).toBe('StaleVersion');
    expect(verdict.error.status).toBe(409);
    expect(verdict.error.message).toContain(id);
    expect(verdict.refusals).toEqual(approvals.map((a) => ({ signer_id: a.signer_id, reason: STALE, signed: true })));
    expect(refusalEvents(id, verdict.refusals, AT).map((e) => e.signer_id)).toEqual(['alice', 'bob']);
  });

  it('an expired proposal: 410 Gone, every approval refused as a signed claim', () => {
    const verdict = refuseSettled(id, approvals, 'expired');
    if (verdict.ok) throw new Error('expected a refusal');
    expect(verdict.error.code).toBe('Gone');
    expect(verdict.error.status).toBe(410);
    expect(verdict.refusals).toEqual(approvals.map((a) => ({ signer_id: a.signer_id, reason: EXPIRED, signed: true })));
  });
});

describe('registryKeyOf and isSignedClaim', () => {
  const key = (id: string): string => vectors.signers.find((s) => s.id === id)!.public_key;
  const set = (threshold: number, ...ids: string[]): SignerSet => ({ threshold, signers: ids.map((id) => ({ id, public_key: key(id) })) });
  const history = [set(2, 'alice', 'bob', 'carol'), set(2, 'alice', 'bob', 'dave'), set(2, 'alice', 'bob', 'frank')];

  it('finds the key an id has or had in any set of the history', () => {
    expect(registryKeyOf(history, 'alice')).toBe(key('alice'));
    expect(registryKeyOf(history, 'carol')).toBe(key('carol')); // genesis only
    expect(registryKeyOf(history, 'dave')).toBe(key('dave')); // the middle set only
    expect(registryKeyOf(history, 'frank')).toBe(key('frank')); // the current set only
  });

  it('is undefined for an id the registry never had, and for an empty history', () => {
    expect(registryKeyOf(history, 'erin')).toBeUndefined();
    expect(registryKeyOf(history, 'mallory')).toBeUndefined();
    expect(registryKeyOf([], 'alice')).toBeUndefined();
  });

  it('a signed claim verifies under the history key of its id, not under any other key', () => {
    const proposalId = vectors.payloads[0]!.hash;
    const secret = (id: string): string => vectors.signers.find((s) => s.id === id)!.secret_key;
    const ctx = { proposalId, history, verifier: new ApprovalVerifier() };
    expect(isSignedClaim(ctx, { signer_id: 'dave', sig: signApproval(secret('dave'), proposalId) })).toBe(true);
    expect(isSignedClaim(ctx, { signer_id: 'dave', sig: signApproval(secret('alice'), proposalId) })).toBe(false);
    expect(isSignedClaim(ctx, { signer_id: 'dave', sig: signApproval(secret('dave'), vectors.payloads[1]!.hash) })).toBe(false);
    expect(isSignedClaim(ctx, { signer_id: 'erin', sig: signApproval(secret('erin'), proposalId) })).toBe(false);
  });
});

describe('screenApprovals: the cheap checks first (what a request without a valid signature costs)', () => {
  const screenOf = (c: AdmissionCase, hashed: { count: number } = { count: 0 }) =>
    screenApprovals({
      history: c.history,
      approvals: c.approvals,
      proposedIds: new Set(c.proposed?.signers.map((s) => s.id) ?? []),
      payloadHash: () => {
        hashed.count++;
        return c.proposal_id;
      },
      verifier: new ApprovalVerifier(),
    });

  it('refuses only what the full judgement refuses, and only what it would not audit', () => {
    let refused = 0;
    for (const c of vectors.cases) {
      const screen = screenOf(c);
      // A known payload passes a 'refuse-unless-known' screen: the writer judges it in full.
      const refuses = screen.verdict === 'refuse' || (screen.verdict === 'refuse-unless-known' && c.mode !== 'known');
      if (!refuses) continue;
      refused++;
      expect(c.ok, c.name).toBe(false);
      expect(c.audited, c.name).toEqual([]);
      expect(screen.error.code).toBe('BadSignature');
      expect(screen.refusals.every((r) => !r.signed)).toBe(true);
    }
    expect(refused).toBeGreaterThanOrEqual(3);
  });

  it('passes every request the full judgement accepts', () => {
    for (const c of vectors.cases.filter((v) => v.ok)) {
      const screen = screenOf(c);
      expect(screen.verdict === 'pass' || (screen.verdict === 'refuse-unless-known' && c.mode === 'known'), c.name).toBe(true);
    }
  });

  it('hashes the payload only when an approval names a signer of the registry', () => {
    const history = [vectors.cases[0]!.current];
    const member = history[0]!.signers[0]!.id;
    const hashed = { count: 0 };
    const input = (approvals: Approval[], proposedIds: string[] = []) =>
      screenApprovals({
        history,
        approvals,
        proposedIds: new Set(proposedIds),
        payloadHash: () => {
          hashed.count++;
          return 'b3:' + '0'.repeat(64);
        },
        verifier: new ApprovalVerifier(),
      });
    const sig = '1'.repeat(128);
    expect(input([{ signer_id: 'mallory', sig }])).toMatchObject({
      verdict: 'refuse',
      refusals: [{ signer_id: 'mallory', reason: NOT_A_SIGNER }],
    });
    expect(input([{ signer_id: 'newcomer', sig }], ['newcomer'])).toMatchObject({ verdict: 'refuse-unless-known' });
    expect(hashed.count).toBe(0);
    expect(
      input([
        { signer_id: member, sig },
        { signer_id: 'mallory', sig },
      ]),
    ).toMatchObject({
      verdict: 'refuse',
      refusals: [
        { signer_id: member, reason: BAD_SIGNATURE, signed: false },
        { signer_id: 'mallory', reason: NOT_A_SIGNER, signed: false },
      ],
    });
    expect(hashed.count).toBe(1);
  });

  it('reads the proposed signer ids of any payload without trusting its shape', () => {
    expect(
      proposedSignerIds({ ops: [{ op: 'set_signers', signer_set: { signers: [{ id: 'a' }, { id: 'b' }, null, { id: 3 }] } }] }),
    ).toEqual(new Set(['a', 'b']));
    for (const junk of [
      null,
      1,
      'x',
      [],
      {},
      { ops: 'x' },
      { ops: [null, 1, { op: 'set_signers' }, { op: 'set_signers', signer_set: 'x' }] },
    ])
      expect(proposedSignerIds(junk)).toEqual(new Set());
  });
});
