// Whether a proposal may be accepted against the current head (SPEC §3, §6 write rules).
import { parseTime } from './encoding.js';
import { badRequest, RegistryError } from './errors.js';
import type { ProposalPayload, SignerSet } from './schemas.js';

export const DEFAULT_PROPOSAL_TTL_MS = 72 * 3600_000;
export const MAX_PROPOSAL_TTL_MS = 30 * 24 * 3600_000;
/** How far in the future a proposal's created_at may be: signers' clocks drift. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export interface Head {
  version: number;
  hash: string;
}

/** The instant after which approvals and commits are refused, checked for sense. */
export function proposalExpiry(payload: ProposalPayload): number {
  const created = parseTime(payload.created_at);
  if (Number.isNaN(created)) throw badRequest('created_at is not a valid RFC 3339 UTC time');
  if (payload.expires_at === undefined) return created + DEFAULT_PROPOSAL_TTL_MS;
  const expires = parseTime(payload.expires_at);
  if (Number.isNaN(expires)) throw badRequest('expires_at is not a valid RFC 3339 UTC time');
  if (expires <= created) throw badRequest('expires_at must be after created_at');
  if (expires - created > MAX_PROPOSAL_TTL_MS) throw badRequest('expires_at may be at most 30 days after created_at');
  return expires;
}

export const isExpired = (expiresAt: number, now: number): boolean => now >= expiresAt;

/** The signer set a proposal would put in force, if it has a set_signers op (at most one). */
export const setSignersOf = (payload: ProposalPayload): SignerSet | undefined =>
  payload.ops.find((op) => op.op === 'set_signers')?.signer_set;

/** How a commit settles another pending proposal (SPEC §6): its base is gone, so it is stale,
 * or expired when its time was already up. */
export const settledBy = (expiresAt: number, now: number): 'stale' | 'expired' => (isExpired(expiresAt, now) ? 'expired' : 'stale');

/** A proposal for another registry: no approval of it can count here (SPEC §3, §6). */
export function foreignRegistry(payload: { registry_id: string }, registryId: string): RegistryError | undefined {
  if (payload.registry_id === registryId) return undefined;
  return new RegistryError('BadSignature', `the proposal is for registry ${payload.registry_id}; this is ${registryId}`, {
    hint: 'approvals are bound to one registry and cannot be replayed on another',
  });
}

export interface ProposalContext {
  registryId: string;
  head: Head;
  now: number;
}

/** The cheap checks of a new proposal against the head (registry, times, base), made before
 * any signature is verified; returns its expiry. `planOps` checks the ops afterwards. */
export function checkProposalHeader(payload: ProposalPayload, ctx: ProposalContext): number {
  const foreign = foreignRegistry(payload, ctx.registryId);
  if (foreign) throw foreign;
  const expiresAt = proposalExpiry(payload);
  const created = parseTime(payload.created_at);
  if (created > ctx.now + MAX_CLOCK_SKEW_MS) throw badRequest('created_at is more than 5 minutes in the future');
  if (isExpired(expiresAt, ctx.now)) throw new RegistryError('Gone', 'the proposal has already expired');
  if (payload.base_version !== ctx.head.version || payload.base_hash !== ctx.head.hash) {
    throw new RegistryError(
      'StaleVersion',
      `the proposal's base (version ${payload.base_version}) is not the head (version ${ctx.head.version})`,
      {
        hint: 'rebuild the proposal against GET /registry/head and sign it again',
      },
    );
  }
  return expiresAt;
}
