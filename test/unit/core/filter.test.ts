// Unit tests of src/core/filter.ts (SPEC §11): the parser (shapes, precedence, every refusal
// with its 1-based character position), the evaluator rule by rule, the planner's index hints
// and the query helper. Random filters against a reference evaluator are in
// filter.properties.test.ts.
import { describe, expect, it } from 'vitest';
import {
  compareCodePoints,
  compileQuery,
  indexHints,
  jsonEqual,
  kindFilter,
  labelNumber,
  matches,
  MAX_FILTER_CHARS,
  MAX_FILTER_REGEX_SIZE,
  parseFilter,
  patternSize,
  type Filter,
} from '../../../src/core/filter.js';
import type { Descriptor } from '../../../src/core/schemas.js';
import { expectRefusal } from './fixtures.js';

/** The AST without compiled regexes, for structural comparison. */
const shape = (f: Filter): unknown => JSON.parse(JSON.stringify(f, (k, v: unknown) => (k === 'regex' ? undefined : v)));

const id = { name: 'id' } as const;
const kind = { name: 'kind' } as const;
const label = (key: string) => ({ name: 'labels', key }) as const;
const body = (...path: string[]) => ({ name: 'body', path }) as const;

/** Expects `text` to be refused with a BadRequest naming `position` (and matching `message`). */
function refused(text: string, position: number, message?: RegExp): string {
  const error = expectRefusal(() => parseFilter(text), 'BadRequest', message);
  expect(error.status).toBe(400);
  expect(error.message).toMatch(/^filter: .+ at position \d+$/s);
  expect(Number(/at position (\d+)$/.exec(error.message)![1])).toBe(position);
  return error.message;
}

describe('parseFilter: the examples of SPEC §11', () => {
  it.each([
    [
      "labels.status == 'online' AND labels.region == 'us-west'",
      {
        type: 'and',
        items: [
          { type: 'term', field: label('status'), op: '==', value: 'online' },
          { type: 'term', field: label('region'), op: '==', value: 'us-west' },
        ],
      },
    ],
    ["kind IN ['service','node']", { type: 'term', field: kind, op: 'IN', values: ['service', 'node'] }],
    [
      "labels.tier != 'gold' OR NOT (id MATCHES '^auth-')",
      {
        type: 'or',
        items: [
          { type: 'term', field: label('tier'), op: '!=', value: 'gold' },
          { type: 'not', item: { type: 'term', field: id, op: 'MATCHES', pattern: '^auth-' } },
        ],
      },
    ],
    ['labels.weight >= 10', { type: 'term', field: label('weight'), op: '>=', value: 10 }],
    ["body.caps CONTAINS 'x'", { type: 'term', field: body('caps'), op: 'CONTAINS', value: 'x' }],
    ['labels.canary EXISTS', { type: 'term', field: label('canary'), op: 'EXISTS' }],
  ])('%s', (text, ast) => {
    expect(shape(parseFilter(text))).toEqual(ast);
  });
});

describe('parseFilter: structure', () => {
  const a = { type: 'term', field: label('a'), op: 'EXISTS' };
  const b = { type: 'term', field: label('b'), op: 'EXISTS' };
  const c = { type: 'term', field: label('c'), op: 'EXISTS' };

  it.each([
    ['labels.a EXISTS OR labels.b EXISTS AND labels.c EXISTS', { type: 'or', items: [a, { type: 'and', items: [b, c] }] }],
    ['labels.a EXISTS AND labels.b EXISTS OR labels.c EXISTS', { type: 'or', items: [{ type: 'and', items: [a, b] }, c] }],
    ['(labels.a EXISTS OR labels.b EXISTS) AND labels.c EXISTS', { type: 'and', items: [{ type: 'or', items: [a, b] }, c] }],
    ['NOT labels.a EXISTS AND labels.b EXISTS', { type: 'and', items: [{ type: 'not', item: a }, b] }],
    ['NOT (labels.a EXISTS AND labels.b EXISTS)', { type: 'not', item: { type: 'and', items: [a, b] } }],
    ['NOT NOT labels.a EXISTS', { type: 'not', item: { type: 'not', item: a } }],
    ['labels.a EXISTS OR labels.b EXISTS OR labels.c EXISTS', { type: 'or', items: [a, b, c] }],
    ['((labels.a EXISTS))', a],
  ])('%s', (text, ast) => {
    expect(shape(parseFilter(text))).toEqual(ast);
  });

  it('reads every operator, literal and field form', () => {
    const t = (text: string) => shape(parseFilter(text)) as Record<string, unknown>;
    for (const op of ['==', '!=', '<', '<=', '>', '>=']) expect(t(`id ${op} 'x'`)).toMatchObject({ op, value: 'x' });
    expect(t('body.a.b-c.d_e == true')).toMatchObject({ field: body('a', 'b-c', 'd_e'), value: true });
    expect(t('body.x == false').value).toBe(false);
    expect(t('body.x == null').value).toBeNull();
    expect(t('body.x == -1.5e+3').value).toBe(-1500);
    expect(t('body.x == 0.25E-2').value).toBe(0.0025);
    expect(t('body.x == 9007199254740991').value).toBe(Number.MAX_SAFE_INTEGER);
    expect(t("body.x IN [1, 'a', true, null]").values).toEqual([1, 'a', true, null]);
    expect(t("labels.team/name.v-1_x == 'a'").field).toEqual(label('team/name.v-1_x'));
    expect(t(`labels.${'k'.repeat(63)} EXISTS`).field).toEqual(label('k'.repeat(63)));
    expect(t("id == 'it\\'s a \\\\ backslash'").value).toBe("it's a \\ backslash");
    expect(t("id == ''").value).toBe('');
    expect(t("id == '\u{1F600} \n \\\\'").value).toBe('\u{1F600} \n \\');
  });

  it('needs no whitespace around operators and punctuation, and takes tabs and newlines', () => {
    expect(shape(parseFilter("labels.x=='a'AND(kind IN['b','c'])"))).toEqual({
      type: 'and',
      items: [
        { type: 'term', field: label('x'), op: '==', value: 'a' },
        { type: 'term', field: kind, op: 'IN', values: ['b', 'c'] },
      ],
    });
    expect(shape(parseFilter('\tid\r\nEXISTS\n'))).toEqual({ type: 'term', field: id, op: 'EXISTS' });
    expect(shape(parseFilter('body.n>=-1'))).toEqual({ type: 'term', field: body('n'), op: '>=', value: -1 });
  });

  it('keys with dots are label keys, not paths', () => {
    expect(shape(parseFilter("labels.a.b == 'x'"))).toMatchObject({ field: label('a.b') });
  });
});

describe('parseFilter: limits', () => {
  const term = 'id EXISTS';

  it(`takes ${MAX_FILTER_CHARS} characters and refuses one more at position ${MAX_FILTER_CHARS + 1}`, () => {
    const exact = term + ' '.repeat(MAX_FILTER_CHARS - term.length);
    expect(() => parseFilter(exact)).not.toThrow();
    refused(exact + ' ', 4097, /longer than 4096 characters/);
    refused('x'.repeat(100_000), 4097, /longer than 4096 characters/);
  });

  it('counts characters, not UTF-16 units', () => {
    // 4,096 characters, 6,000-odd UTF-16 units.
    const astral = `id == '${'\u{1F600}'.repeat(MAX_FILTER_CHARS - 8)}'`;
    expect(Array.from(astral)).toHaveLength(MAX_FILTER_CHARS);
    expect(astral.length).toBeGreaterThan(MAX_FILTER_CHARS);
    expect(() => parseFilter(astral)).not.toThrow();
    refused(astral + ' ', 4097);
  });

  it('nests 10 deep and refuses the 11th level at its position', () => {
    expect(() => parseFilter('NOT '.repeat(10) + term)).not.toThrow();
    refused('NOT '.repeat(11) + term, 41, /nested more than 10 deep/);
    expect(() => parseFilter('('.repeat(10) + term + ')'.repeat(10))).not.toThrow();
    refused('('.repeat(11) + term + ')'.repeat(11), 11, /nested more than 10 deep/);
    expect(() => parseFilter('NOT ('.repeat(5) + term + ')'.repeat(5))).not.toThrow();
    refused('NOT ('.repeat(5) + `NOT ${term}` + ')'.repeat(5), 26, /nested more than 10 deep/);
    // Deep enough to overflow a naive recursive parser: refused at level 11, not a crash.
    refused('('.repeat(4000), 11, /nested more than 10 deep/);
    refused('NOT '.repeat(1000), 41, /nested more than 10 deep/);
    // Sequential parentheses do not add up.
    expect(() => parseFilter(Array(30).fill(`(${term})`).join(' AND '))).not.toThrow();
  });

  it('holds 64 terms and refuses the 65th at its position', () => {
    const terms = (n: number) => Array(n).fill(term).join(' OR ');
    expect(() => parseFilter(terms(64))).not.toThrow();
    refused(terms(65), 64 * 13 + 1, /more than 64 terms/);
  });
});

describe('parseFilter: the size of MATCHES patterns', () => {
  it.each([
    ['a', 1],
    ['^auth-', 6],
    ['a{1000}', 1000],
    ['a{2,5}', 8],
    ['a{3,}', 4],
    ['a{0,}', 3],
    ['a*b+c?', 9],
    ['(?:ab{1000}|ac{1000})', 2006],
    ['(?i)[a-z\\]]{10}', 10],
    ['\\pL{1000}', 1000],
    ['\\p{Greek}{10}x', 11],
    ['\\x{1F600}{4}', 4],
    ['\\Qa{1000}\\E', 7],
    ['a\\Q\\E{10}', 10],
    ['[[:alpha:]]{10}', 10],
    ['a{', 2],
    ['a{x}', 4],
  ])('%j is about %i instructions', (pattern, size) => {
    expect(patternSize(pattern)).toBe(size);
  });

  it(`holds the patterns of a filter to ${MAX_FILTER_REGEX_SIZE} instructions in all, refused at the pattern that passes it`, () => {
    const terms = (n: number) => Array(n).fill("id MATCHES 'a{1000}'").join(' OR ');
    expect(() => parseFilter(terms(20))).not.toThrow();
    refused(terms(21), 20 * 24 + 12, /regular expressions too large/);
    // 400 alternatives of 1,000: RE2 would take most of a second to compile it; refused before.
    const alternatives = Array.from({ length: 400 }, (_, i) => `${String.fromCharCode(97 + (i % 26))}${i % 10}{1000}`);
    refused(`kind == 'a' OR id MATCHES '(?:${alternatives.join('|')})'`, 27, /regular expressions too large/);
  });
});

describe('parseFilter: refusals name the position', () => {
  it.each([
    // [filter, position, message]
    ["id == 'abc", 7, /unterminated string/],
    ["id == 'abc\\'", 7, /unterminated string/],
    ["id == 'abc\\", 7, /unterminated string/],
    ["id == 'a\\nb'", 9, /bad escape \\n/],
    ["id == 'a\\\"b'", 9, /bad escape \\"/],
    ["id == 'a\\\nb'", 9, /bad escape \\ then U\+000A/],
    ["name == 'x'", 1, /unknown field 'name'/],
    ["kind == 'a' AND name == 'x'", 17, /unknown field 'name'/],
    ['labels. EXISTS', 1, /unknown field 'labels\.'/],
    [`labels.${'k'.repeat(64)} EXISTS`, 1, /unknown field/],
    ['body EXISTS', 1, /unknown field 'body'/],
    ['labels EXISTS', 1, /unknown field 'labels'/],
    ['body. EXISTS', 1, /unknown field 'body\.'/],
    ['body.a..b EXISTS', 1, /unknown field 'body\.a\.\.b'/],
    ['body.a. EXISTS', 1, /unknown field/],
    ['body.a/b EXISTS', 1, /unknown field 'body\.a\/b'/],
    ['ID EXISTS', 1, /unknown field 'ID'/],
    ['id == 01', 7, /bad number '01'/],
    ['id == 1.', 7, /bad number '1\.'/],
    ['id == 1.e5', 7, /bad number/],
    ['id == 1e', 7, /bad number '1e'/],
    ['id == 1e+', 7, /bad number/],
    ['id == -', 7, /bad number '-'/],
    ['id == -x', 7, /bad number '-x'/],
    ['id == +1', 7, /unexpected character "\+"/],
    ['id == .5', 7, /unexpected character "\."/],
    ['id == 10abc', 7, /bad number '10abc'/],
    ['id == 1.2.3', 7, /bad number/],
    ['id == 0x10', 7, /bad number/],
    ['id == 1e400', 7, /out of range/],
    ['id == 9007199254740992', 7, /out of range/],
    ['id == -1e20', 7, /out of range/],
    ['labels.x ==', 12, /expected a literal .* but found the end of the filter/],
    ['labels.x == AND', 13, /expected a literal .* but found 'AND'/],
    ['id EXISTS AND', 14, /expected a field .* but found the end of the filter/],
    ['AND id EXISTS', 1, /expected a field .* but found 'AND'/],
    ['', 1, /expected a field .* but found the end of the filter/],
    ['   ', 4, /expected a field/],
    ['id', 3, /expected an operator .* but found the end of the filter/],
    ["id 'x'", 4, /expected an operator .* but found the string 'x'/],
    ['10 == id', 1, /expected a field .* but found the number 10/],
    ["id EXISTS 'x'", 11, /expected AND, OR or the end of the filter but found the string 'x'/],
    ['id EXISTS)', 10, /but found '\)'/],
    ['id EXISTS id EXISTS', 11, /expected AND, OR or the end/],
    ['(id EXISTS', 11, /expected AND, OR or '\)' but found the end/],
    ['()', 2, /expected a field/],
    ['id exists', 4, /'exists' is not a keyword \(keywords are written 'EXISTS'\)/],
    ["kind == 'a' and id EXISTS", 13, /'and' is not a keyword .*'AND'/],
    ["kind == 'a' Or id EXISTS", 13, /'Or' is not a keyword .*'OR'/],
    ['not id EXISTS', 1, /'not' is not a keyword .*'NOT'/],
    ["kind in ['a']", 6, /'in' is not a keyword .*'IN'/],
    ['body.x == True', 11, /'True' is not a keyword .*'true'/],
    ['body.x == NULL', 11, /'NULL' is not a keyword .*'null'/],
    ['kind IN []', 10, /expected a literal .* but found '\]'/],
    ["kind IN ['a',]", 14, /expected a literal/],
    ["kind IN ['a' 'b']", 14, /expected ',' or '\]'/],
    ["kind IN ['a'", 13, /expected ',' or '\]' but found the end/],
    ["kind IN 'a'", 9, /expected '\[' after IN/],
    ['kind IN', 8, /expected '\[' after IN/],
    ["id MATCHES '('", 12, /bad regular expression \(.*missing closing \)/],
    ["id MATCHES 'a**'", 12, /bad regular expression/],
    ["id MATCHES '(?=x)'", 12, /bad regular expression/],
    ["id MATCHES 'a{1001}'", 12, /bad regular expression/],
    ["id MATCHES '\\\\'", 12, /bad regular expression/],
    ['id MATCHES 5', 12, /expected a string \(the RE2 pattern\) after MATCHES but found the number 5/],
    ['id MATCHES', 11, /expected a string/],
    ["id = 'a'", 4, /'=' is not an operator/],
    ['id ! EXISTS', 4, /'!' is not an operator/],
    ["id == 'a' && kind == 'b'", 11, /unexpected character "&"/],
    ['id == #', 7, /unexpected character "#"/],
    ['id == "a"', 7, /unexpected character "\\""/],
    ['id\u00a0EXISTS', 3, /unexpected character/],
    // Positions count characters: the emoji before the fault is one.
    ["id == '\u{1F600}\u{1F600}' AND name == 'x'", 16, /unknown field 'name'/],
    ["id == '\u{1F600}' AND kind == 'a\\x'", 25, /bad escape/],
    ["id MATCHES '\u{1F600}' \u{1F600}", 16, /unexpected character "\u{1F600}"/u],
  ])('%j at %i', (text, position, message) => {
    refused(text, position, message);
  });

  it('reports the first fault in the text', () => {
    // A parse error before a lexical one further on.
    refused("id == == 'abc", 7, /expected a literal/);
    refused("name == 'abc", 1, /unknown field/);
  });

  it('refuses a value that is not a string', () => {
    expectRefusal(() => parseFilter(42 as unknown as string), 'BadRequest', /a filter is a string/);
    expectRefusal(() => parseFilter(['id EXISTS'] as unknown as string), 'BadRequest');
  });
});

describe('matches', () => {
  const D: Descriptor = {
    id: 'auth-service@eu',
    kind: 'service',
    labels: {
      status: 'online',
      region: 'us-west',
      weight: '10',
      w2: '10.0',
      w3: '1e1',
      neg: '-0',
      frac: '9.5',
      word: 'abc',
      lead: '010',
      spaced: ' 10',
      empty: '',
      'team/name': 'core',
      'a.b': 'dot',
      astral: '\u{1F600}',
      bmp: '\uFFFF',
    },
    body: {
      caps: ['x', 'y', 3, null, true, { a: 1 }, ['z']],
      name: 'storage',
      numstr: '10',
      port: 8080,
      ratio: 0.5,
      on: true,
      off: false,
      nil: null,
      nested: { deep: { v: 'leaf' }, list: [1, 2] },
      empty: {},
      str: 'hello world',
      astral: 'a\u{1F600}b',
      bmp: 'a\uFFFFb',
    },
  };
  const run = (text: string, d: Descriptor = D) => matches(parseFilter(text), d);

  const table = (cases: [string, boolean][]) =>
    it.each(cases)('%s → %s', (text, expected) => {
      expect(run(text)).toBe(expected);
    });

  describe('a term on a missing field is false whatever the operator; NOT negates the whole term', () => {
    table([
      ["labels.nope == 'x'", false],
      ["labels.nope != 'x'", false],
      ['labels.nope != 1', false],
      ['labels.nope != null', false],
      ["labels.nope < 'x'", false],
      ["labels.nope >= 'x'", false],
      ["labels.nope IN ['x', 1]", false],
      ["labels.nope CONTAINS ''", false],
      ["labels.nope MATCHES ''", false],
      ['labels.nope EXISTS', false],
      ["body.nope != 'x'", false],
      ['body.nested.nope != 1', false],
      ["NOT labels.nope == 'a'", true],
      ["NOT labels.nope != 'a'", true],
      ['NOT labels.nope EXISTS', true],
      ["NOT labels.status == 'online'", false],
      ["NOT NOT labels.status == 'online'", true],
      ["NOT labels.status != 'online'", true],
    ]);
  });

  describe('fields: labels by key, body by path through objects only', () => {
    table([
      ['labels.empty EXISTS', true],
      ["labels.empty == ''", true],
      ["labels.team/name == 'core'", true],
      ["labels.a.b == 'dot'", true],
      ['labels.a EXISTS', false],
      ["body.nested.deep.v == 'leaf'", true],
      ['body.nested.deep EXISTS', true],
      ['body.nested.list EXISTS', true],
      ['body.nested.list.0 EXISTS', false],
      ['body.caps.0 EXISTS', false],
      ['body.name.length EXISTS', false],
      ['body.nil EXISTS', true],
      ['body.nil == null', true],
      ['body.nil != null', false],
      ['body.nil.x EXISTS', false],
      ['body.empty EXISTS', true],
      // Inherited properties are not fields.
      ['labels.constructor EXISTS', false],
      ['labels.toString EXISTS', false],
      ['body.constructor EXISTS', false],
      ['body.__proto__ EXISTS', false],
      ['body.nested.hasOwnProperty EXISTS', false],
      ["id == 'auth-service@eu'", true],
      ["kind == 'service'", true],
    ]);

    it('finds an own __proto__ member of a parsed body', () => {
      const d: Descriptor = { ...D, body: JSON.parse('{"__proto__": {"x": 1}}') as Record<string, unknown> };
      expect(run('body.__proto__.x == 1', d)).toBe(true);
      expect(run('body.__proto__.y EXISTS', d)).toBe(false);
    });
  });

  describe('==, != and IN compare JSON values; a number literal matches a label whose text is a JSON number', () => {
    table([
      ['labels.weight == 10', true],
      ['labels.w2 == 10', true],
      ['labels.w3 == 10', true],
      ['labels.weight == 10.0', true],
      ['labels.weight == 1e1', true],
      ['labels.neg == 0', true],
      ['labels.frac == 9.5', true],
      ["labels.weight == '10'", true],
      ["labels.w2 == '10'", false],
      ["labels.w3 == '1e1'", true],
      ['labels.word == 10', false],
      ['labels.lead == 10', false],
      ['labels.spaced == 10', false],
      ['labels.empty == 0', false],
      ['labels.weight != 10', false],
      ['labels.w3 != 10', false],
      ['labels.weight != 11', true],
      // A label whose text is not a JSON number is a string: no JSON value it holds equals a number.
      ['labels.word != 10', true],
      ['labels.lead != 10', true],
      ['labels.weight == true', false],
      ['labels.weight != true', true],
      ['labels.weight == null', false],
      ['labels.weight IN [1, 10]', true],
      ["labels.weight IN [1, '1e1']", false],
      ["labels.w3 IN ['x', '1e1']", true],
      ['labels.w2 IN [1e1]', true],
      ["kind IN ['node', 'service']", true],
      ["kind IN ['node']", false],
      ['id IN [1, true, null]', false],
      ["id != 'x'", true],
      ['body.port == 8080', true],
      ['body.port == 8.08e3', true],
      ["body.port == '8080'", false],
      ["body.port != '8080'", true],
      ['body.numstr == 10', false],
      ["body.numstr == '10'", true],
      ['body.ratio == 0.5', true],
      ['body.on == true', true],
      ['body.on != false', true],
      ['body.off == false', true],
      ['body.on == 1', false],
      ['body.nil IN [null]', true],
      ['body.on IN [1, true]', true],
      // Objects and arrays equal no (scalar) literal.
      ['body.empty == null', false],
      ["body.empty != 'x'", true],
      ['body.nested.list == 1', false],
      ['body.nested.list != 1', true],
      ["body.astral == 'a\u{1F600}b'", true],
    ]);
  });

  describe('<, <=, >, >=: strings by code points, numbers numerically, labels against number literals numerically', () => {
    table([
      ['labels.weight >= 10', true],
      ['labels.weight > 10', false],
      ['labels.weight > 9.5', true],
      ['labels.w3 < 11', true],
      ['labels.w3 <= 10', true],
      ['labels.frac < 10', true],
      ['labels.neg >= 0', true],
      ['labels.neg < 0', false],
      ['labels.weight > 100', false],
      ['labels.word < 10', false],
      ['labels.word >= 10', false],
      ['labels.lead > 1', false],
      // A string literal compares the label as a string.
      ["labels.weight < '9'", true],
      ["labels.weight > '9'", false],
      ["labels.word > 'abb'", true],
      ["labels.word >= 'abc'", true],
      ["labels.word < 'abc'", false],
      ["labels.word < 'abcd'", true],
      ["labels.empty < 'a'", true],
      ["kind < 't'", true],
      ["kind > 'service'", false],
      ["kind >= 'service'", true],
      ['kind < 1', false],
      ['kind > 1', false],
      ['body.port > 80', true],
      ['body.port <= 8080', true],
      ['body.ratio < 1', true],
      ["body.port < 'z'", false],
      ["body.port > ''", false],
      ['body.name > 10', false],
      ['body.numstr > 1', false],
      ['body.on < true', false],
      ['body.on >= true', false],
      ['body.nil <= null', false],
      ['body.nested.list > 0', false],
      // U+1F600 is after U+FFFF by code points, though its UTF-16 units (D83D DE00) are before FFFF.
      ["labels.astral > '\uFFFF'", true],
      ["labels.astral < '\uFFFF'", false],
      ["labels.bmp < '\u{1F600}'", true],
      ["labels.bmp >= '\u{1F600}'", false],
      ["labels.astral >= '\u{1F600}'", true],
      ["labels.astral <= '\u{1F600}'", true],
      ["labels.astral > '\u{1F600}'", false],
      ["labels.astral < '\u{1F601}'", true],
      ["labels.astral > '\uE000'", true],
      ["body.astral > 'a\uFFFFz'", true],
      ["body.bmp < 'a\u{1F600}'", true],
      ["labels.astral < '\u{1F600}a'", true],
    ]);
  });

  describe('CONTAINS: membership in an array, substring of a string', () => {
    table([
      ["body.caps CONTAINS 'x'", true],
      ["body.caps CONTAINS 'X'", false],
      ["body.caps CONTAINS 'z'", false],
      ['body.caps CONTAINS 3', true],
      ['body.caps CONTAINS 3.0', true],
      ["body.caps CONTAINS '3'", false],
      ['body.caps CONTAINS null', true],
      ['body.caps CONTAINS true', true],
      ['body.caps CONTAINS false', false],
      ['body.caps CONTAINS 1', false],
      ["body.str CONTAINS 'lo wo'", true],
      ["body.str CONTAINS 'hello world'", true],
      ["body.str CONTAINS 'world!'", false],
      ["body.str CONTAINS ''", true],
      ['body.str CONTAINS 1', false],
      ["labels.status CONTAINS 'nli'", true],
      ["labels.weight CONTAINS '1'", true],
      ['labels.weight CONTAINS 1', false],
      ["id CONTAINS 'service'", true],
      ["kind CONTAINS 'vic'", true],
      ['body.port CONTAINS 8', false],
      ["body.nested CONTAINS 'deep'", false],
      ['body.nil CONTAINS null', false],
      ["body.astral CONTAINS '\u{1F600}'", true],
      ["body.astral CONTAINS '\u{1F600}b'", true],
      // A lone surrogate is not a substring of the pair it is half of.
      ["body.astral CONTAINS '\uD83D'", false],
      ["body.astral CONTAINS '\uDE00b'", false],
    ]);
  });

  describe('MATCHES: RE2, unanchored search, strings only', () => {
    table([
      ["id MATCHES '^auth-'", true],
      ["id MATCHES 'service'", true],
      ["id MATCHES '^service'", false],
      ["id MATCHES 'eu$'", true],
      ["id MATCHES '^auth-service@eu$'", true],
      ["id MATCHES '^auth$'", false],
      ["labels.region MATCHES 'west'", true],
      ["labels.region MATCHES '^us-(east|west)$'", true],
      ["labels.region MATCHES '^US'", false],
      ["labels.region MATCHES '(?i)^US'", true],
      ["kind MATCHES ''", true],
      ["body.name MATCHES 'tor'", true],
      ["body.port MATCHES '80'", false],
      ["body.caps MATCHES 'x'", false],
      ["body.nested MATCHES '.'", false],
      ["body.nil MATCHES ''", false],
      ["labels.weight MATCHES '^\\\\d+$'", true],
      // '.' is one code point.
      ["body.astral MATCHES '^a.b$'", true],
      ["body.astral MATCHES '^a..b$'", false],
      ["labels.astral MATCHES '^\\\\x{1F600}$'", true],
    ]);

    it('runs in linear time: (a+)+$ over 50,000 a and a b', () => {
      const d: Descriptor = { ...D, body: { s: `${'a'.repeat(50_000)}b` } };
      expect(run("body.s MATCHES '(a+)+$'", d)).toBe(false);
      expect(run("body.s MATCHES '(a+)+b$'", d)).toBe(true);
      expect(run("body.s MATCHES '^(a|aa)+$'", d)).toBe(false);
      expect(run("body.s MATCHES '^(a|aa)+b$'", d)).toBe(true);
    });
  });

  describe('AND binds tighter than OR', () => {
    table([
      // (false AND false) OR true; it would be false read as false AND (false OR true).
      ["labels.status == 'offline' AND labels.region == 'x' OR kind == 'service'", true],
      ["labels.status == 'offline' AND (labels.region == 'x' OR kind == 'service')", false],
      ["kind == 'service' OR labels.status == 'offline' AND labels.region == 'x'", true],
      ["NOT kind == 'service' OR kind == 'service'", true],
      ["NOT (kind == 'service' OR kind == 'node')", false],
      ["labels.tier != 'gold' OR NOT (id MATCHES '^auth-')", false],
    ]);
  });
});

describe('compareCodePoints', () => {
  it.each([
    ['', '', 0],
    ['a', 'b', -1],
    ['b', 'a', 1],
    ['a', 'ab', -1],
    ['\uFFFF', '\u{1F600}', -1],
    ['\u{1F600}', '\uFFFF', 1],
    ['\uE000', '\u{10000}', -1],
    ['\u{1F600}', '\u{1F601}', -1],
    ['x\u{1F600}', 'x\u{1F600}', 0],
    // Lone surrogates are code points of their own.
    ['\uD800', '\u{10000}', -1],
    ['\uD800a', '\uD800\uDC00', -1],
    ['\uD83D', '\uE000', -1],
    ['\uDC00', '\uD800', 1],
    ['\uD800\uD800', '\uD800', 1],
  ])('%j vs %j', (a, b, expected) => {
    expect(Math.sign(compareCodePoints(a, b))).toBe(expected);
    expect(Math.sign(compareCodePoints(b, a))).toBe(expected === 0 ? 0 : -expected);
  });
});

describe('labelNumber and jsonEqual', () => {
  it.each([
    ['10', 10],
    ['-0', -0],
    ['1e1', 10],
    ['1E+1', 10],
    ['0.5', 0.5],
    ['-12.5e-1', -1.25],
    ['1e400', Number.POSITIVE_INFINITY],
  ])('reads %j as %d', (text, value) => {
    expect(labelNumber(text)).toBe(value);
  });

  it.each(['', '01', '1.', '.5', '+1', ' 1', '1 ', '1e', '0x1', 'NaN', 'Infinity', '-', '1_000', '١'])('%j is no JSON number', (text) => {
    expect(labelNumber(text)).toBeUndefined();
  });

  it('compares JSON values deeply', () => {
    expect(jsonEqual({ a: [1, { b: 2, c: 'x' }] }, { a: [1, { c: 'x', b: 2 }] })).toBe(true);
    expect(jsonEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual({ a: 1, b: 2 }, { a: 1 })).toBe(false);
    expect(jsonEqual({ a: undefined }, { b: undefined })).toBe(false);
    expect(jsonEqual([], {})).toBe(false);
    expect(jsonEqual({}, [])).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
    expect(jsonEqual(0, -0)).toBe(true);
    expect(jsonEqual('1', 1)).toBe(false);
    expect(jsonEqual([[null]], [[null]])).toBe(true);
  });
});

describe('indexHints', () => {
  const hints = (text: string) => indexHints(parseFilter(text));

  it.each([
    [
      "labels.status == 'online' AND labels.region == 'us-west'",
      {
        labels: [
          { key: 'status', values: ['online'] },
          { key: 'region', values: ['us-west'] },
        ],
      },
    ],
    ["kind IN ['service','node']", { kinds: ['service', 'node'] }],
    ["kind == 'service' AND labels.weight >= 10", { kinds: ['service'] }],
    ["kind IN ['a', 'b', 'a'] AND kind == 'a'", { kinds: ['a'] }],
    ["kind == 'a' AND kind == 'b'", { kinds: [] }],
    ["kind == 'a' OR kind IN ['b', 'a']", { kinds: ['a', 'b'] }],
    ["(kind == 'a' AND labels.x == '1') OR (kind == 'b' AND labels.y == '2')", { kinds: ['a', 'b'] }],
    [
      "(kind == 'a' AND labels.x == '1') OR (kind == 'b' AND labels.x IN ['2', '3'])",
      { kinds: ['a', 'b'], labels: [{ key: 'x', values: ['1', '2', '3'] }] },
    ],
    [
      "labels.x == 'a' AND (labels.y == 'b' AND kind == 'k')",
      {
        labels: [
          { key: 'x', values: ['a'] },
          { key: 'y', values: ['b'] },
        ],
        kinds: ['k'],
      },
    ],
    ["labels.a.b IN ['x', 'y'] AND NOT kind == 'z'", { labels: [{ key: 'a.b', values: ['x', 'y'] }] }],
    // Kinds are strings: other literals equal none. Labels are strings: true and null equal none.
    ["kind IN ['a', 1, true]", { kinds: ['a'] }],
    ['kind == 1', { kinds: [] }],
    ["labels.x IN ['a', true, null]", { labels: [{ key: 'x', values: ['a'] }] }],
  ])('%s', (text, expected) => {
    expect(hints(text)).toEqual(expected);
  });

  it.each([
    "NOT kind == 'a'",
    "NOT labels.x == 'a'",
    "kind != 'a'",
    "kind == 'a' OR labels.x == 'y'",
    "kind == 'a' OR id EXISTS",
    // A number literal matches many label texts ('10', '10.0', '1e1'…): no finite list of values.
    'labels.weight == 10',
    "labels.weight IN ['a', 10]",
    "id == 'x'",
    "body.kind == 'x'",
    'labels.x EXISTS',
    "labels.x MATCHES '^a$'",
    "kind CONTAINS 'a'",
    "kind < 'b'",
  ])('%s gives no hint', (text) => {
    expect(hints(text)).toBeUndefined();
  });

  it('is undefined for no filter', () => {
    expect(indexHints(undefined)).toBeUndefined();
  });
});

describe('compileQuery and kindFilter', () => {
  const node: Descriptor = { id: 'n1', kind: 'node', labels: { region: 'eu' }, body: {} };
  const service: Descriptor = { id: 's1', kind: 'service', labels: { region: 'eu' }, body: {} };

  it('kindFilter(k) is kind == k', () => {
    expect(kindFilter('node')).toEqual(shape(parseFilter("kind == 'node'")));
    expect(matches(kindFilter('node'), node)).toBe(true);
    expect(matches(kindFilter('node'), service)).toBe(false);
  });

  it('is empty without filter or kind', () => {
    expect(compileQuery(undefined, undefined)).toEqual({ filter: undefined, matches: undefined, hints: undefined });
  });

  it('joins kind= to the filter with AND', () => {
    const q = compileQuery("labels.region == 'eu'", 'node');
    expect(q.hints).toEqual({ labels: [{ key: 'region', values: ['eu'] }], kinds: ['node'] });
    expect(q.matches?.(node)).toBe(true);
    expect(q.matches?.(service)).toBe(false);
    const k = compileQuery(undefined, 'service');
    expect(k.hints).toEqual({ kinds: ['service'] });
    expect(k.matches?.(service)).toBe(true);
    expect(k.matches?.(node)).toBe(false);
    const f = compileQuery("kind == 'node' OR kind == 'service'", undefined);
    expect([node, service].map((d) => f.matches?.(d))).toEqual([true, true]);
    const none = compileQuery("kind == 'node'", 'service');
    expect(none.hints).toEqual({ kinds: [] });
    expect([node, service].map((d) => none.matches?.(d))).toEqual([false, false]);
  });

  it('refuses a bad or empty filter', () => {
    expectRefusal(() => compileQuery('', 'node'), 'BadRequest', /at position 1$/);
    expectRefusal(() => compileQuery('kind ==', undefined), 'BadRequest', /at position 8$/);
  });
});
