// The fast canonical JSON against the `canonicalize` package that SPEC §1 names: the same
// bytes for every JSON value, and the same refusals.
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jcs, TooDeep } from '../../../src/core/jcs.js';

/** Keys that exercise the ordering: integer-like ones (enumerated first by the engine), ones
 * sorting around the digits, non-ASCII and astral characters (UTF-16 order, not code points). */
const key = fc.oneof(
  fc.string({ maxLength: 4 }),
  fc.string({ unit: 'binary', maxLength: 3 }),
  fc.constantFrom(
    '0',
    '1',
    '9',
    '10',
    '01',
    '-1',
    '1.5',
    '4294967295',
    '4294967294',
    'a',
    'B',
    '_',
    ' ',
    '\u00e9',
    '\ud83d\ude00',
    '\uff61',
  ),
);
const value = fc.letrec((tie) => ({
  json: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.integer(),
    fc.string({ unit: 'binary', maxLength: 6 }),
    fc.array(tie('json'), { maxLength: 5 }),
    fc.dictionary(key, tie('json'), { maxKeys: 6 }),
  ),
})).json;

describe('jcs: canonical JSON (RFC 8785)', () => {
  it('writes what canonicalize writes, for any JSON value', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(jcs(v)).toBe(canonicalize(v));
        // Values as JSON.parse makes them (own __proto__ keys, -0 read back, key order as sent).
        const parsed: unknown = JSON.parse(JSON.stringify(v));
        expect(jcs(parsed)).toBe(canonicalize(parsed));
      }),
      { numRuns: 2000 },
    );
  });

  it('orders keys by UTF-16 code units, integer-like keys and __proto__ included', () => {
    const parsed = JSON.parse(
      '{"b":1,"10":2,"9":3,"-x":4,"a":{"1":[{"z":1,"y":2}]},"__proto__":5,"\\ud83d\\ude00":6,"\\uff61":7}',
    ) as unknown;
    expect(jcs(parsed)).toBe(canonicalize(parsed));
    expect(jcs(parsed)).toBe('{"-x":4,"10":2,"9":3,"__proto__":5,"a":{"1":[{"y":2,"z":1}]},"b":1,"\ud83d\ude00":6,"\uff61":7}');
    expect(jcs({ b: [{ d: 1, c: 2 }, 3], a: -0, e: 1e21, f: 'x\u2028"\\\n' })).toBe(
      canonicalize({ b: [{ d: 1, c: 2 }, 3], a: -0, e: 1e21, f: 'x\u2028"\\\n' }),
    );
  });

  it('leaves what is not plain JSON data to canonicalize, and refuses what it refuses', () => {
    const odd = { date: new Date(0), buf: { toJSON: () => 'x' }, skip: undefined, list: [undefined, 1] };
    expect(jcs(odd)).toBe(canonicalize(odd));
    expect(jcs(undefined)).toBe(canonicalize(undefined));
    for (const bad of [Number.NaN, Infinity, { a: [-Infinity] }, '\ud800', { '\udc00': 1 }]) {
      expect(() => canonicalize(bad)).toThrow();
      expect(() => jcs(bad)).toThrow();
    }
  });

  it('refuses nesting past maxDepth', () => {
    const deep = JSON.parse('['.repeat(70) + ']'.repeat(70)) as unknown;
    expect(() => jcs(deep, 64)).toThrow(TooDeep);
    expect(jcs(deep)).toBe(canonicalize(deep));
    expect(jcs(JSON.parse('['.repeat(64) + ']'.repeat(64)), 64)).toBe('['.repeat(64) + ']'.repeat(64));
  });
});
