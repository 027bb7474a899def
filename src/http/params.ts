// Small, strict parsers for path and query values that schemas cannot fully describe.
import { isHash } from '../core/encoding.js';
import { badRequest, RegistryError } from '../core/errors.js';

export const VERSION_PARAM_PATTERN = '^(0|[1-9][0-9]{0,15})$';

export function parseVersion(text: string): number {
  const n = /^(0|[1-9][0-9]{0,15})$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw badRequest(`"${text.slice(0, 40)}" is not a version: a version is a non-negative integer`);
  return n;
}

export function parseProposalId(text: string): string {
  if (!isHash(text)) throw badRequest('a proposal id is the payload hash, "b3:" and 64 lowercase hex characters');
  return text;
}

/** Opaque listing cursors: base64url of {"after": <seq>}. */
export const encodeCursor = (after: number): string => Buffer.from(JSON.stringify({ after })).toString('base64url');

export function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const after = (value as { after?: unknown }).after;
    if (typeof after === 'number' && Number.isSafeInteger(after) && after >= 0 && encodeCursor(after) === cursor) return after;
  } catch {
    // fall through to the refusal
  }
  throw new RegistryError('BadRequest', 'the cursor is not one this service issued', { hint: 'pass next_cursor from the previous page unchanged' });
}
