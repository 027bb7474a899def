// Freeze and thaw (SPEC §7, §9): an operator stops the write plane without touching the log.
// Frozen, every proposal and approval is refused 503 `Unavailable` with the operator's reason;
// reads go on. The state is nothing but the last `frozen` or `thawed` audit event, so it
// survives a restart, and freezing or thawing commits nothing and counts toward no quorum.
import type { AuditFields } from './audit.js';
import { badRequest, RegistryError } from './errors.js';
import type { AuditEvent } from './schemas.js';

export const MAX_FREEZE_REASON = 1024;
/** Seconds a refused writer is told to wait: a freeze lasts as long as an operator wants. */
export const FROZEN_RETRY_AFTER_S = 30;

export type FreezeState = { frozen: false } | { frozen: true; reason: string; since: string };

export const THAWED: FreezeState = { frozen: false };

/** The state the last `frozen` or `thawed` audit event leaves (thawed when there is none). */
export function freezeStateOf(last: Pick<AuditEvent, 'kind' | 'at' | 'reason'> | undefined): FreezeState {
  if (last?.kind !== 'frozen') return THAWED;
  return { frozen: true, reason: last.reason ?? '', since: last.at };
}

/** The operator's reason, checked: 1–1024 characters, not only white space. */
export function freezeReason(reason: string | undefined, required: boolean): string | undefined {
  if (reason === undefined || reason.trim() === '') {
    if (required) throw badRequest('a freeze needs a reason (1 to 1024 characters)', 'say why, e.g. "key compromise under investigation"');
    return undefined;
  }
  if (reason.length > MAX_FREEZE_REASON) throw badRequest(`the reason is longer than ${MAX_FREEZE_REASON} characters`);
  return reason;
}

/** What a freeze or thaw changes: the audit event to write, or nothing when the registry is
 * already in that state (a repeated command is answered with the state, and audits nothing). */
export function freezeTransition(
  state: FreezeState,
  to: 'frozen' | 'thawed',
  reason: string | undefined,
  at: string,
): { event: AuditFields; next: FreezeState } | undefined {
  if ((to === 'frozen') === state.frozen) return undefined;
  const event: AuditFields = { at, kind: to, ...(reason === undefined ? {} : { reason }) };
  return { event, next: to === 'frozen' ? { frozen: true, reason: reason ?? '', since: at } : THAWED };
}

/** The refusal of every write while frozen. */
export function frozenError(state: Extract<FreezeState, { frozen: true }>): RegistryError {
  return new RegistryError('Unavailable', `the registry is frozen since ${state.since}: ${state.reason}`, {
    retryAfter: FROZEN_RETRY_AFTER_S,
    hint: 'reads are served; writes resume once an operator thaws the registry',
    reason: 'frozen',
  });
}
