// The error codes against their documentation, in both directions, as Fastify checks its
// FST_ERR codes against its docs: every code the service can send is documented with its
// status, and every documented code exists with that status.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_STATUS, IntegrityError, RegistryError, type ErrorCode } from '../../../src/core/errors.js';

/** `| 400 | `BadRequest` | … |` rows of the first table under `heading`. */
function documentedCodes(markdown: string, heading: RegExp): Map<string, number> {
  const start = markdown.search(heading);
  expect(start, `a section matching ${heading}`).toBeGreaterThanOrEqual(0);
  const rows = new Map<string, number>();
  for (const line of markdown.slice(start).split('\n').slice(1)) {
    if (/^#{1,3} /.test(line)) break;
    const m = /^\| (\d{3}) \| `([A-Za-z]+)` \|/.exec(line);
    if (m) rows.set(m[2]!, Number(m[1]));
  }
  return rows;
}

const SPEC = new URL('../../../../shared/SPEC.md', import.meta.url);
const README = new URL('../../../README.md', import.meta.url);

describe('ERROR_STATUS', () => {
  it('matches the README table in both directions', () => {
    const documented = documentedCodes(readFileSync(README, 'utf8'), /^## HTTP surface/m);
    expect(Object.fromEntries(documented)).toEqual(ERROR_STATUS);
  });

  // The shared SPEC sits beside the project in every checkout the team and CI use; a lone
  // clone has only the README, which the test above holds to the code.
  it.runIf(existsSync(SPEC))('matches SPEC §7 in both directions', () => {
    const documented = documentedCodes(readFileSync(SPEC, 'utf8'), /^## 7\. Errors/m);
    expect(documented.size).toBeGreaterThan(0);
    expect(Object.fromEntries(documented)).toEqual(ERROR_STATUS);
  });

  it('gives each RegistryError the status of its code, and Retry-After-worthy codes are retryable', () => {
    for (const [code, status] of Object.entries(ERROR_STATUS) as [ErrorCode, number][]) {
      const e = new RegistryError(code, 'x');
      expect(e.status).toBe(status);
      expect(e.retryable).toBe(code === 'RateLimited' || code === 'Unavailable');
    }
  });

  it('keeps integrity failures apart from request refusals', () => {
    const e = new IntegrityError('version 7: prev_hash does not link', 7);
    expect(e).not.toBeInstanceOf(RegistryError);
    expect(e.version).toBe(7);
    expect(e.name).toBe('IntegrityError');
  });
});
