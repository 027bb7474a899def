// Fixtures shared by the unit tests of src/core (test/unit/core/*.test.ts): a fixed clock, a
// small-order key, a plain BLAKE3 hash, a refusal matcher and one signer set. Keys, genesis
// records, proposals and ops come from test/helpers/fixtures.ts.
import { blake3 } from '@noble/hashes/blake3.js';
import { expect } from 'vitest';
import { IntegrityError, RegistryError, type ErrorCode } from '../../../src/core/errors.js';
import { signers, signerSet } from '../../helpers/fixtures.js';

export const NOW = Date.parse('2026-11-22T17:00:00.000Z');
export const IDENTITY_KEY = `01${'00'.repeat(31)}`;
export const b3 = (text: string): string => `b3:${Buffer.from(blake3(new TextEncoder().encode(text))).toString('hex')}`;

/** Runs `fn`, expects a RegistryError with `code` whose message matches `message`. */
export function expectRefusal(fn: () => unknown, code: ErrorCode, message?: RegExp): RegistryError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'expected a RegistryError').toBeInstanceOf(RegistryError);
  const error = thrown as RegistryError;
  expect(error.code).toBe(code);
  if (message) expect(error.message).toMatch(message);
  return error;
}

/** Runs `fn`, expects an IntegrityError (a record that fails its own checks) whose message
 * matches `message` and, when given, that names `version`. */
export function expectIntegrityFailure(fn: () => unknown, message?: RegExp, version?: number): IntegrityError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'expected an IntegrityError').toBeInstanceOf(IntegrityError);
  const error = thrown as IntegrityError;
  if (message) expect(error.message).toMatch(message);
  if (version !== undefined) expect(error.version).toBe(version);
  return error;
}

export const [alice, bob, carol, dave] = signers('alice', 'bob', 'carol', 'dave');
export const set3 = signerSet([alice!, bob!, carol!], 2);
