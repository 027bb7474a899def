// Small, strict parsers for path and query values that schemas cannot fully describe.
import { isHash } from '../core/encoding.js';
import { badRequest, RegistryError } from '../core/errors.js';

/** A version in a path: a canonical decimal. A word is no version but a route that does not
 * exist (404); anything number-like that is not canonical is a bad version (400). */
export function parseVersion(text: string): number {
  if (/^[A-Za-z][A-Za-z0-9:._-]*$/.test(text)) throw new RegistryError('NotFound', `no resource /registry/${text.slice(0, 64)}`);
  const n = /^(0|[1-9][0-9]{0,15})$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw badRequest(`"${text.slice(0, 40)}" is not a version: a version is a non-negative integer`);
  return n;
}

/** Query integers are canonical decimals too: no "2.9", "1e3", "0x10" or " 5". */
export function parseQueryInt(text: string | undefined, name: string, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text) || n < min || n > max) throw badRequest(`${name} must be an integer from ${min} to ${max}`);
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
  throw new RegistryError('BadRequest', 'the cursor is not one this service issued', {
    hint: 'pass next_cursor from the previous page unchanged',
  });
}
