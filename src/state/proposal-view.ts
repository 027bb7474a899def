// What the HTTP surface shows of a proposal (SPEC §6). Pure: the writer answers writes with it
// and the read plane answers reads with it, each from what it has at hand.
import { RegistryError } from '../core/errors.js';
import type { ProposalPayload, ProposalStatus } from '../core/schemas.js';
import type { RegistryState } from '../core/state.js';
import type { ProposalSummary, StoredProposal } from '../store/store.js';

export interface ProposalView {
  proposal_id: string;
  status: ProposalStatus;
  approvals: { signer_id: string }[];
  threshold: number;
  proposed_threshold?: number;
  version?: number;
}

export function viewOf(
  id: string,
  status: ProposalStatus,
  signers: Iterable<string>,
  threshold: number,
  proposedThreshold?: number,
  version?: number,
): ProposalView {
  const view: ProposalView = { proposal_id: id, status, approvals: [...signers].sort().map((signer_id) => ({ signer_id })), threshold };
  if (proposedThreshold !== undefined) view.proposed_threshold = proposedThreshold;
  if (version !== undefined) view.version = version;
  return view;
}

/** The view of a stored proposal; its threshold is that of the set in force at its base. */
export const summaryView = (p: ProposalSummary, state: RegistryState): ProposalView =>
  viewOf(
    p.id,
    p.status,
    p.approvals.map((a) => a.signer_id),
    state.signerSetAt(p.baseVersion).threshold,
    p.proposedThreshold ?? undefined,
    p.version ?? undefined,
  );

/** GET /registry/proposals/{id}: the summary and the payload; 410 once retention pruned the
 * payload (a settled proposal's some time after it settled, a committed one's with its commit). */
export function fullView(p: StoredProposal, state: RegistryState): ProposalView & { payload: ProposalPayload } {
  if (p.payloadText === '')
    throw new RegistryError(
      'Gone',
      `proposal ${p.id} is ${p.status}${p.version === null ? '' : ` (version ${p.version})`} and its payload was pruned by retention`,
      {
        hint: p.version === null ? 'GET /registry/audit keeps its history' : `GET /registry/${p.version} or the checkpoint that covers it`,
      },
    );
  return { ...summaryView(p, state), payload: JSON.parse(p.payloadText) as ProposalPayload };
}
