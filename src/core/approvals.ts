// Which approvals a request may carry (SPEC §3, §6) and which refusals become audit events
// (SPEC §9). The writer asks these functions what to do, then does the I/O: it writes the
// events they return and throws the error they carry.
import type { AuditFields } from './audit.js';
import { RegistryError } from './errors.js';
import type { Approval, SignerSet } from './schemas.js';
import { isCurrentSigner, keyOf, type Electorate } from './signers.js';

/** Checks one approval signature; ApprovalVerifier (node:crypto) in the service. */
export interface SignatureCheck {
  verify(publicKeyHex: string, payloadHash: string, sigHex: string): boolean;
}

/** An approval the registry refuses. `signed` says whether it is a signed claim (SPEC §9): its
 * signature verifies under the key that its signer id has, or had, in this registry. Only
 * signed claims are audited: anybody can send the others, and they prove nothing. */
export interface Refusal {
  signer_id: string;
  reason: string;
  signed: boolean;
}

export type Verdict = { ok: true } | { ok: false; error: RegistryError; refusals: Refusal[] };

export interface ApprovalContext {
  /** The payload hash the approvals sign. */
  proposalId: string;
  /** Who may approve this proposal. */
  electorate: Electorate;
  /** Every signer set in force so far, genesis first: an id names one key for the registry's
   * whole life, so any of them tells which key an id's signature must verify under. */
  history: readonly SignerSet[];
  verifier: SignatureCheck;
}

export const NOT_A_SIGNER = 'not a signer of this registry for this proposal';
export const BAD_SIGNATURE = 'signature does not verify';
export const NO_CURRENT_SIGNER = 'a proposal needs at least one approval by a signer of the current set';
export const STALE = 'the proposal is stale';
export const EXPIRED = 'the proposal has expired';

const MAX_REASON = 1024;
const truncate = (text: string): string => (text.length <= MAX_REASON ? text : `${text.slice(0, MAX_REASON - 1)}…`);

/** The key `signerId` has, or had, in this registry; undefined for an id it never had. */
export function registryKeyOf(history: readonly SignerSet[], signerId: string): string | undefined {
  for (const set of history) {
    const signer = set.signers.find((s) => s.id === signerId);
    if (signer) return signer.public_key;
  }
  return undefined;
}

/** Whether `approval` is a signed claim: it verifies under the key its id has or had in this
 * registry's signer sets. (An approval that verified under its proposal's electorate is one
 * too: a proposed key counts once a current signer has vouched for the proposal.) */
export function isSignedClaim(ctx: Omit<ApprovalContext, 'electorate'>, approval: Approval): boolean {
  const key = registryKeyOf(ctx.history, approval.signer_id);
  return key !== undefined && ctx.verifier.verify(key, ctx.proposalId, approval.sig);
}

const badSignature = (proposalId: string | undefined, refusals: readonly Refusal[]): RegistryError =>
  new RegistryError('BadSignature', truncate(`approval refused (${refusals.map((r) => `${r.signer_id}: ${r.reason}`).join('; ')})`), {
    hint: `sign the ASCII bytes "registry-approval-v1:${proposalId ?? '<proposal id>'}" with the signer's Ed25519 key`,
  });

/** Every approval must name a signer of the electorate and verify under that signer's key.
 * One bad approval refuses the whole request. */
export function judgeApprovals(ctx: ApprovalContext, approvals: readonly Approval[]): Verdict {
  const refusals: Refusal[] = [];
  for (const a of approvals) {
    const key = keyOf(ctx.electorate, a.signer_id);
    if (key === undefined) refusals.push({ signer_id: a.signer_id, reason: NOT_A_SIGNER, signed: isSignedClaim(ctx, a) });
    else if (!ctx.verifier.verify(key, ctx.proposalId, a.sig))
      refusals.push({ signer_id: a.signer_id, reason: BAD_SIGNATURE, signed: false });
  }
  return refusals.length ? { ok: false, error: badSignature(ctx.proposalId, refusals), refusals } : { ok: true };
}

/** The approvals of a new proposal. At least one must be by a signer of the current set, and
 * the current signers' signatures are verified first: until one of them has vouched for the
 * proposal, a proposed signer set is only the sender's say-so, so its keys are neither
 * checked (each costs a point decoding and a subgroup check) nor its ids trusted. */
export function judgeNewProposal(ctx: ApprovalContext, approvals: readonly Approval[]): Verdict {
  const byCurrent = approvals.filter((a) => isCurrentSigner(ctx.electorate, a.signer_id));
  if (byCurrent.length === 0) return refuseAll(ctx, approvals, NO_CURRENT_SIGNER, new RegistryError('BadSignature', NO_CURRENT_SIGNER));
  const others = approvals.filter((a) => !isCurrentSigner(ctx.electorate, a.signer_id));
  const current = judgeApprovals({ ...ctx, electorate: { current: ctx.electorate.current } }, byCurrent);
  if (current.ok) return judgeApprovals(ctx, others);
  // The request is refused, and the proposed set stays unlooked-at. Approvals by ids outside
  // any set of this proposal are refused on their own account all the same, and audited when
  // they are signed claims (a removed signer): a junk approval beside them must not hide them.
  const strangers = others.filter((a) => keyOf(ctx.electorate, a.signer_id) === undefined);
  const refusals = [
    ...current.refusals,
    ...strangers.map((a) => ({ signer_id: a.signer_id, reason: NOT_A_SIGNER, signed: isSignedClaim(ctx, a) })),
  ];
  return { ok: false, error: badSignature(ctx.proposalId, refusals), refusals };
}

/** Approvals refused with `error` before any electorate is trusted (a proposal for another
 * registry, or one no current signer approved): each is audited when it is a signed claim
 * under the registry's own signer sets. */
export function refuseAll(
  ctx: Omit<ApprovalContext, 'electorate'>,
  approvals: readonly Approval[],
  reason: string,
  error: RegistryError,
): Verdict {
  return { ok: false, error, refusals: approvals.map((a) => ({ signer_id: a.signer_id, reason, signed: isSignedClaim(ctx, a) })) };
}

/** Approvals of a settled proposal, which judgeApprovals has verified under its electorate:
 * 409 for a stale one (its base is gone), 410 for an expired one. Each is a signed claim. */
export function refuseSettled(proposalId: string, approvals: readonly Approval[], status: 'stale' | 'expired'): Verdict {
  const error =
    status === 'stale'
      ? new RegistryError('StaleVersion', `proposal ${proposalId} is stale: another change landed on its base first`, {
          hint: 'rebuild the proposal against the current head and sign it again',
        })
      : new RegistryError('Gone', `proposal ${proposalId} has expired`);
  const reason = status === 'stale' ? STALE : EXPIRED;
  return { ok: false, error, refusals: approvals.map((a) => ({ signer_id: a.signer_id, reason, signed: true })) };
}

/** The audit events for a refused request (SPEC §9): one `approval_refused` per signer id
 * whose refusal is a signed claim, with the first reason given for it. The others are logged
 * and counted by the caller, never audited, so nobody without a key can grow the audit log. */
export function refusalEvents(proposalId: string, refusals: readonly Refusal[], at: string): AuditFields[] {
  const seen = new Set<string>();
  const events: AuditFields[] = [];
  for (const r of refusals) {
    if (!r.signed || seen.has(r.signer_id)) continue;
    seen.add(r.signer_id);
    events.push({ at, kind: 'approval_refused', proposal_id: proposalId, signer_id: r.signer_id, reason: r.reason });
  }
  return events;
}

/** Adds approvals to those a pending proposal holds: the first approval by a signer counts,
 * later ones by the same signer change nothing. Returns the approvals that are new. */
export function newApprovals(held: ReadonlyMap<string, string>, approvals: readonly Approval[]): Map<string, string> {
  const fresh = new Map<string, string>();
  for (const a of approvals) if (!held.has(a.signer_id) && !fresh.has(a.signer_id)) fresh.set(a.signer_id, a.sig);
  return fresh;
}

// -- the screen: what a request without a valid signature may cost -------------------------------

/** What the screen of POST /registry/proposals decides, before the payload is validated (a
 * walk over up to 1 MiB) or planned. `refuse` and `refuse-unless-known` carry the error and
 * refusals the full judgement would give (none is a signed claim, so none is audited). */
export type Screen =
  | { verdict: 'pass' }
  | { verdict: 'refuse'; error: RegistryError; refusals: Refusal[] }
  /** Refused unless the registry already holds a proposal with this payload (its proposed
   * signers may add their approvals by sending it again). */
  | { verdict: 'refuse-unless-known'; error: RegistryError; refusals: Refusal[] };

export interface ScreenInput {
  /** Every signer set in force so far, genesis first (ApprovalContext.history). */
  history: readonly SignerSet[];
  /** The request's approvals, well formed. */
  approvals: readonly Approval[];
  /** The ids the payload's set_signers ops name, read from a payload not yet validated. */
  proposedIds: ReadonlySet<string>;
  /** The payload hash. Asked only once an approval names a signer of this registry: it costs a
   * canonicalization of up to 1 MiB, and may throw (a payload with no canonical form is a 400). */
  payloadHash: () => string;
  verifier: SignatureCheck;
}

/** The cheap part of judging a new or known proposal's approvals (SPEC §3, §6, §9), made first
 * so that nobody without a key makes the service validate, plan or audit anything:
 * - no approval names a signer the registry has or had, and one names nobody at all (not even a
 *   signer of the proposed set): refused without hashing the payload;
 * - approvals name signers of the registry, and none verifies under its key: refused;
 * - only signers of the proposed set: refused unless the payload is known.
 * Whatever passes is judged in full by judgeApprovals / judgeNewProposal, which refuse all the
 * same what the screen refuses; the screen only answers sooner, with the same 422 and no audit
 * event (no refusal it makes is a signed claim). It may answer 422 where the full judgement
 * would have found a 400, 409 or 410 first. */
export function screenApprovals(input: ScreenInput): Screen {
  const { history, approvals, proposedIds } = input;
  const named: { approval: Approval; key: string }[] = [];
  const strangers: Approval[] = [];
  for (const a of approvals) {
    const key = registryKeyOf(history, a.signer_id);
    if (key !== undefined) named.push({ approval: a, key });
    else if (!proposedIds.has(a.signer_id)) strangers.push(a);
  }
  const stranger = (a: Approval): Refusal => ({ signer_id: a.signer_id, reason: NOT_A_SIGNER, signed: false });
  if (named.length === 0 && strangers.length > 0) {
    const refusals = strangers.map(stranger);
    return { verdict: 'refuse', error: badSignature(undefined, refusals), refusals };
  }
  if (named.length === 0) {
    const refusals = approvals.map((a) => ({ signer_id: a.signer_id, reason: NO_CURRENT_SIGNER, signed: false }));
    return { verdict: 'refuse-unless-known', error: new RegistryError('BadSignature', NO_CURRENT_SIGNER), refusals };
  }
  const id = input.payloadHash();
  if (named.some((n) => input.verifier.verify(n.key, id, n.approval.sig))) return { verdict: 'pass' };
  const refusals = [
    ...named.map((n) => ({ signer_id: n.approval.signer_id, reason: BAD_SIGNATURE, signed: false })),
    ...strangers.map(stranger),
  ];
  return { verdict: 'refuse', error: badSignature(id, refusals), refusals };
}

/** The signer ids a payload's set_signers ops name, read defensively: the payload is whatever
 * JSON a request sent, not yet validated. */
export function proposedSignerIds(payload: unknown): Set<string> {
  const ids = new Set<string>();
  const ops = (payload as { ops?: unknown } | null)?.ops;
  if (!Array.isArray(ops)) return ids;
  for (const op of ops as unknown[]) {
    if (typeof op !== 'object' || op === null || (op as { op?: unknown }).op !== 'set_signers') continue;
    const signers = (op as { signer_set?: { signers?: unknown } | null }).signer_set?.signers;
    if (!Array.isArray(signers)) continue;
    for (const s of signers as unknown[]) {
      const id = (s as { id?: unknown } | null)?.id;
      if (typeof id === 'string') ids.add(id);
    }
  }
  return ids;
}
