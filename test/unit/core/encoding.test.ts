// Unit tests of src/core/encoding.ts (SPEC §1): timestamps, canonical JSON and hashes.
import { describe, expect, it } from 'vitest';
import { canonicalJson, formatTime, hashOf, parseTime } from '../../../src/core/encoding.js';
import { b3 } from './fixtures.js';

describe('parseTime (SPEC §1)', () => {
  it('reads RFC 3339 UTC with milliseconds', () => {
    expect(parseTime('2026-11-22T17:00:00.000Z')).toBe(Date.UTC(2026, 10, 22, 17, 0, 0, 0));
    expect(parseTime('2028-02-29T23:59:59.999Z')).toBe(Date.UTC(2028, 1, 29, 23, 59, 59, 999));
    expect(parseTime('1970-01-01T00:00:00.000Z')).toBe(0);
    expect(formatTime(parseTime('2026-11-22T17:00:00.123Z'))).toBe('2026-11-22T17:00:00.123Z');
  });

  it.each([
    ['2026-02-30T00:00:00.000Z', 'February 30'],
    ['2026-02-29T00:00:00.000Z', 'February 29 of a common year'],
    ['2026-04-31T00:00:00.000Z', 'April 31'],
    ['2026-13-01T00:00:00.000Z', 'month 13'],
    ['2026-11-22T24:00:00.000Z', 'hour 24'],
    ['2026-11-22T23:60:00.000Z', 'minute 60'],
    ['2026-12-31T23:59:60.000Z', 'a leap second'],
    ['2026-11-22T17:00:00Z', 'no milliseconds'],
    ['2026-11-22T17:00:00.0Z', 'one digit of milliseconds'],
    ['2026-11-22T17:00:00.000000Z', 'microseconds'],
    ['2026-11-22T17:00:00.000+00:00', 'a +00:00 offset'],
    ['2026-11-22T17:00:00.000-01:00', 'a -01:00 offset'],
    ['2026-11-22T17:00:00.000', 'no offset'],
    ['2026-11-22T17:00:00.000z', 'a lower-case z'],
    ['2026-11-22t17:00:00.000Z', 'a lower-case t'],
    ['2026-11-22 17:00:00.000Z', 'a space for T'],
    ['2026-11-22', 'a date alone'],
    [' 2026-11-22T17:00:00.000Z', 'leading space'],
    ['2026-11-22T17:00:00.000Z\n', 'trailing newline'],
    ['+002026-11-22T17:00:00.000Z', 'an expanded year'],
    ['', 'the empty string'],
  ])('refuses %s (%s)', (text) => {
    expect(parseTime(text)).toBeNaN();
  });
});

describe('hashOf and canonicalJson (SPEC §1)', () => {
  it('hashes the JCS text: key order and whitespace do not matter, values do', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'] })).toBe('{"a":[true,null,"x"],"b":1}');
    expect(hashOf({ b: 1, a: 2 })).toBe(hashOf({ a: 2, b: 1 }));
    expect(hashOf({ a: 1 })).toBe(b3('{"a":1}'));
    expect(hashOf({ a: 1 })).not.toBe(hashOf({ a: '1' }));
  });

  it('refuses values without a JSON form', () => {
    expect(() => canonicalJson(undefined)).toThrow();
  });
});
