import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../../src/core/errors.js';
import { freezeReason, freezeStateOf, freezeTransition, frozenError, THAWED } from '../../../src/core/freeze.js';

const at = '2026-11-23T12:00:00.000Z';

describe('freeze and thaw (README → Operations)', () => {
  it('derives the state from the last frozen or thawed audit event', () => {
    expect(freezeStateOf(undefined)).toEqual(THAWED);
    expect(freezeStateOf({ kind: 'frozen', at, reason: 'maintenance' })).toEqual({ frozen: true, reason: 'maintenance', since: at });
    expect(freezeStateOf({ kind: 'thawed', at })).toEqual(THAWED);
  });

  it('audits a change of state, and nothing when the registry is already in it', () => {
    const freeze = freezeTransition(THAWED, 'frozen', 'maintenance', at);
    expect(freeze).toEqual({
      event: { at, kind: 'frozen', reason: 'maintenance' },
      next: { frozen: true, reason: 'maintenance', since: at },
    });
    expect(freezeTransition(freeze!.next, 'frozen', 'again', at)).toBeUndefined();
    expect(freezeTransition(freeze!.next, 'thawed', undefined, at)).toEqual({ event: { at, kind: 'thawed' }, next: THAWED });
    expect(freezeTransition(THAWED, 'thawed', 'x', at)).toBeUndefined();
  });

  it('needs a reason of 1-1024 characters to freeze; thawing takes one optionally', () => {
    expect(freezeReason('maintenance', true)).toBe('maintenance');
    for (const bad of [undefined, '', '  \n', 'x'.repeat(1025)]) expect(() => freezeReason(bad, true)).toThrow(RegistryError);
    expect(freezeReason(undefined, false)).toBeUndefined();
    expect(freezeReason(' ', false)).toBeUndefined();
    expect(() => freezeReason('x'.repeat(1025), false)).toThrow(/1024/);
  });

  it('refuses writes with 503 Unavailable, the reason and Retry-After', () => {
    const e = frozenError({ frozen: true, reason: 'key compromise', since: at });
    expect(e).toMatchObject({ code: 'Unavailable', status: 503, retryable: true, retryAfter: 30, reason: 'frozen' });
    expect(e.message).toBe(`the registry is frozen since ${at}: key compromise`);
  });
});
