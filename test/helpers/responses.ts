// The JSON bodies the registry answers with, as the tests read them. Where src has the type
// (commit records, audit events, proposal views), the tests use it; these name the rest.
import type { ErrorCode } from '../../src/core/errors.js';
import type { ProposalPayload } from '../../src/core/schemas.js';
import type { ProposalView } from '../../src/state/proposal-view.js';

/** GET /registry/head, as the CLI reads it too. */
export type { HeadJson } from '../../src/cli/api.js';

/** GET /registry/proposals/{id}, and `registry status PROPOSAL_ID`. */
export type ProposalJson = ProposalView & { payload: ProposalPayload };

/** GET /registry/proposals. */
export interface ProposalListJson {
  items: (ProposalView & { created_at: string; received_at: string })[];
  next_cursor: string | null;
}

/** The SPEC §7 error envelope. */
export interface ErrorJson {
  error: { code: ErrorCode; message: string; hint: string; retryable: boolean; request_id: string };
}
