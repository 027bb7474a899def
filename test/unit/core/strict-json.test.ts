// I-JSON request bodies (SPEC §1): what JSON.parse lets by silently is refused, naming the place.
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../../src/core/errors.js';
import { parseStrictJson } from '../../../src/core/strict-json.js';

function refusal(text: string): string {
  try {
    parseStrictJson(text);
  } catch (e) {
    expect(e).toBeInstanceOf(RegistryError);
    expect((e as RegistryError).code).toBe('BadRequest');
    return (e as RegistryError).message;
  }
  throw new Error(`accepted: ${text}`);
}

describe('parseStrictJson', () => {
  it('accepts I-JSON and returns what JSON.parse returns', () => {
    const texts = [
      '{"a":1,"b":[1,2,{"a":2}],"c":{"a":3}}',
      ' [ 9007199254740991 , -9007199254740991, 1.5e300, 0.1, -0, 1e2, "x\\"y", true, false, null ] ',
      '{"a\\u0062":1,"ab ":2}',
      '{}',
      '"s"',
    ];
    for (const t of texts) expect(parseStrictJson(t)).toEqual(JSON.parse(t));
  });

  it('refuses a name twice in one object, escaped or not, naming the object', () => {
    expect(refusal('{"a":1,"a":2}')).toMatch(/member "a" twice at \(the top level\)/);
    expect(refusal('{"x":{"ops":[{"ab":1,"a\\u0062":2}]}}')).toMatch(/member "ab" twice at \/x\/ops\/0$/);
    expect(refusal('{"p":{"a/b~c":{"k":1,"k":1}}}')).toMatch(/at \/p\/a~1b~0c$/);
  });

  it('refuses integer literals beyond ±(2^53 − 1), naming the place; doubles in other notations pass', () => {
    expect(parseStrictJson('[1e20, 12345678901234567890.0, 1.5e300]')).toEqual([1e20, Number('12345678901234567890'), 1.5e300]);
    for (const n of ['9007199254740992', '-9007199254740993', '123456789012345678901234567890']) {
      expect(refusal(`{"payload":{"ops":[{"w":${n}}]}}`)).toMatch(new RegExp(`integer .* at /payload/ops/0/w, beyond`));
    }
  });

  it('says what is wrong with a __proto__ member, and with text that is not JSON', () => {
    expect(refusal('{"body":{"__proto__":{"x":1}}}')).toMatch(/member named "__proto__" at \/body/);
    expect(refusal('{"a":')).toMatch(/not valid JSON/);
    expect(refusal('')).toMatch(/not valid JSON/);
  });

  it('refuses nesting past the limit as a 400, not a stack overflow', () => {
    expect(refusal('['.repeat(10_000) + ']'.repeat(10_000))).toMatch(/nests deeper than 64/);
  });
});
