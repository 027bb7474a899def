// Random filters (SPEC §11) against an independent reference: random ASTs are printed to text
// by a printer of this file, parsed back, and `matches` is held to a brute-force evaluator
// written here from the SPEC (code points by Array.from, JSON equality by sorted
// serialisation, JS RegExp for the MATCHES patterns). Also: no input makes the parser throw
// anything but a BadRequest naming a position in the text, and the index hints never exclude a
// match.
import fc from 'fast-check';
import { RE2JS } from 're2js';
import { describe, expect, it } from 'vitest';
import { RegistryError } from '../../../src/core/errors.js';
import { compareCodePoints, indexHints, matches, parseFilter, patternSize, type Filter } from '../../../src/core/filter.js';
import type { Descriptor } from '../../../src/core/schemas.js';

// ---------------------------------------------------------------------------------------------
// The test's own AST, printer and reference evaluator

type GField = { name: 'id' } | { name: 'kind' } | { name: 'labels'; key: string } | { name: 'body'; path: string[] };
type GLit = string | number | boolean | null;
type GTerm =
  | { t: 'term'; field: GField; op: '==' | '!=' | '<' | '<=' | '>' | '>=' | 'CONTAINS'; value: GLit }
  | { t: 'term'; field: GField; op: 'IN'; values: GLit[] }
  | { t: 'term'; field: GField; op: 'MATCHES'; pattern: string }
  | { t: 'term'; field: GField; op: 'EXISTS' };
type GNode = { t: 'and'; items: GNode[] } | { t: 'or'; items: GNode[] } | { t: 'not'; item: GNode } | (GTerm & { parens?: boolean });

/** RE2 patterns with a JS equivalent (RE2's inline (?i) is JS's i flag). */
const PATTERNS: Record<string, RegExp> = {
  '^a': /^a/u,
  b$: /b$/u,
  'a.c': /a.c/u,
  '^$': /^$/u,
  'x|y': /x|y/u,
  '[0-9]+': /[0-9]+/u,
  '\u{1F600}': /\u{1F600}/u,
  '^.$': /^.$/u,
  'ab*c': /ab*c/u,
  '(?i)ABC': /ABC/iu,
  "'": /'/u,
  '\\\\': /\\/u,
  '^1(0|e1)$': /^1(0|e1)$/u,
  '': /(?:)/u,
};

const IDS = ['auth-1', 'svc/a', 'node:7@x', 'abc'];
const KINDS = ['service', 'node', 'db', 'abc'];
const LABEL_KEYS = ['status', 'w', 'a.b', 'team/x', 'k-1', 'e'];
const BODY_KEYS = ['a', 'b', 'n', 's', 'arr', '0'];
const BODY_PATHS = [
  ['a'],
  ['b'],
  ['n'],
  ['s'],
  ['arr'],
  ['a', 'b'],
  ['a', 'n'],
  ['a', 'b', 'n'],
  ['arr', 'a'],
  ['arr', '0'],
  ['arr', 'length'],
  ['s', 'length'],
  ['0'],
];
const STRINGS = [
  '',
  'a',
  'abc',
  'abcd',
  'x',
  "it's",
  'back\\slash',
  '10',
  '1e1',
  '-0',
  '9.5',
  'online',
  '\u{1F600}',
  '\uFFFF',
  'a\u{1F600}c',
  'service',
  'b',
  'ac',
];
const NUMBERS = [0, -0, 1, 10, 9.5, -3, 0.5, 1e-7, 100, 9007199254740991, -9007199254740991];
const LABEL_VALUES = [...STRINGS, '10.0', '01', ' 10', '1e400', '0.5'];

const stringArb = fc.oneof(fc.constantFrom(...STRINGS), fc.string({ maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 3 }));
const numberArb = fc.oneof(fc.constantFrom(...NUMBERS), fc.integer({ min: -20, max: 20 }));
const litArb: fc.Arbitrary<GLit> = fc.oneof(
  { weight: 4, arbitrary: stringArb },
  { weight: 3, arbitrary: numberArb },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
);
const fieldArb: fc.Arbitrary<GField> = fc.oneof(
  fc.constant({ name: 'id' as const }),
  fc.constant({ name: 'kind' as const }),
  { weight: 3, arbitrary: fc.constantFrom(...LABEL_KEYS).map((key) => ({ name: 'labels' as const, key })) },
  { weight: 3, arbitrary: fc.constantFrom(...BODY_PATHS).map((path) => ({ name: 'body' as const, path })) },
);
/** Literals that the field can hold, more often than chance would give. */
const litFor = (field: GField): fc.Arbitrary<GLit> =>
  field.name === 'id'
    ? fc.oneof(fc.constantFrom(...IDS), litArb)
    : field.name === 'kind'
      ? fc.oneof(fc.constantFrom(...KINDS), litArb)
      : field.name === 'labels'
        ? fc.oneof(fc.constantFrom(...LABEL_VALUES), litArb)
        : litArb;

const termArb: fc.Arbitrary<GNode> = fieldArb.chain((field) =>
  fc
    .oneof(
      {
        weight: 6,
        arbitrary: fc.record({ op: fc.constantFrom('==', '!=', '<', '<=', '>', '>=', 'CONTAINS' as const), value: litFor(field) }),
      },
      {
        weight: 2,
        arbitrary: fc.record({ op: fc.constant('IN' as const), values: fc.array(litFor(field), { minLength: 1, maxLength: 4 }) }),
      },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('MATCHES' as const), pattern: fc.constantFrom(...Object.keys(PATTERNS)) }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('EXISTS' as const) }) },
    )
    .chain((rest) => fc.boolean().map((parens): GNode => ({ t: 'term', field, parens, ...rest }))),
);

function nodeArb(depth: number): fc.Arbitrary<GNode> {
  if (depth === 0) return termArb;
  const sub = nodeArb(depth - 1);
  return fc.oneof(
    { weight: 2, arbitrary: termArb },
    {
      weight: 2,
      arbitrary: fc.record({ t: fc.constantFrom('and' as const, 'or' as const), items: fc.array(sub, { minLength: 2, maxLength: 3 }) }),
    },
    { weight: 1, arbitrary: sub.map((item): GNode => ({ t: 'not', item })) },
  );
}
const filterArb = nodeArb(3);

interface Style {
  /** Whitespace between words. */
  sep: string;
  /** No whitespace around operators and punctuation. */
  tight: boolean;
  /** Spell numbers in exponent form. */
  exp: boolean;
}
const styleArb: fc.Arbitrary<Style> = fc.record({
  sep: fc.constantFrom(' ', '  ', '\t', '\n', ' \r\n '),
  tight: fc.boolean(),
  exp: fc.boolean(),
});

const printString = (s: string): string => `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
function printLit(v: GLit, style: Style): string {
  if (typeof v === 'string') return printString(v);
  if (typeof v === 'number') {
    if (Object.is(v, -0)) return style.exp ? '-0E0' : '-0';
    return style.exp ? v.toExponential() : JSON.stringify(v);
  }
  return String(v);
}
const printField = (f: GField): string =>
  f.name === 'labels' ? `labels.${f.key}` : f.name === 'body' ? `body.${f.path.join('.')}` : f.name;

function print(n: GNode, style: Style): string {
  const { sep } = style;
  const pad = style.tight ? '' : sep;
  const compound = (c: GNode) => (c.t === 'and' || c.t === 'or' ? `(${pad}${print(c, style)}${pad})` : print(c, style));
  switch (n.t) {
    case 'and':
    case 'or':
      return n.items.map(compound).join(`${sep}${n.t.toUpperCase()}${sep}`);
    case 'not':
      return `NOT${sep}${compound(n.item)}`;
    case 'term': {
      const f = printField(n.field);
      let text: string;
      if (n.op === 'EXISTS') text = `${f}${sep}EXISTS`;
      else if (n.op === 'MATCHES') text = `${f}${sep}MATCHES${sep}${printString(n.pattern)}`;
      else if (n.op === 'IN') text = `${f}${sep}IN${pad}[${pad}${n.values.map((v) => printLit(v, style)).join(`${pad},${pad}`)}${pad}]`;
      else if (n.op === 'CONTAINS') text = `${f}${sep}CONTAINS${sep}${printLit(n.value, style)}`;
      else text = `${f}${pad}${n.op}${pad}${printLit(n.value, style)}`;
      return n.parens ? `(${text})` : text;
    }
  }
}

const MISSING = Symbol('missing');
const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);

function refField(f: GField, d: Descriptor): unknown {
  if (f.name === 'id') return d.id;
  if (f.name === 'kind') return d.kind;
  if (f.name === 'labels') return own(d.labels, f.key) ? d.labels[f.key] : MISSING;
  let v: unknown = d.body;
  for (const seg of f.path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !own(v, seg)) return MISSING;
    v = (v as Record<string, unknown>)[seg];
  }
  return v;
}

/** JSON text with sorted keys: equal JSON values, equal texts. */
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}
const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;
const codePoints = (s: string): number[] => Array.from(s, (c) => c.codePointAt(0)!);
function cmpCodePoints(a: string, b: string): number {
  const x = codePoints(a);
  const y = codePoints(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}
function includesCodePoints(hay: string, needle: string): boolean {
  const h = codePoints(hay);
  const n = codePoints(needle);
  for (let i = 0; i + n.length <= h.length; i++) if (n.every((c, j) => h[i + j] === c)) return true;
  return false;
}

function refEq(v: unknown, lit: GLit, isLabel: boolean): boolean {
  if (isLabel && typeof lit === 'number') return typeof v === 'string' && JSON_NUMBER.test(v) && Number(v) === lit;
  return canon(v) === canon(lit);
}
function refCmp(v: unknown, lit: GLit, isLabel: boolean): number | undefined {
  if (typeof v === 'string' && typeof lit === 'string') return cmpCodePoints(v, lit);
  if (typeof v === 'number' && typeof lit === 'number') return v - lit;
  if (isLabel && typeof v === 'string' && typeof lit === 'number' && JSON_NUMBER.test(v)) {
    const n = Number(v);
    return n === lit ? 0 : n < lit ? -1 : 1;
  }
  return undefined;
}

function refTerm(n: GTerm, d: Descriptor): boolean {
  const v = refField(n.field, d);
  if (v === MISSING) return false;
  const isLabel = n.field.name === 'labels';
  switch (n.op) {
    case 'EXISTS':
      return true;
    case 'MATCHES':
      return typeof v === 'string' && PATTERNS[n.pattern]!.test(v);
    case 'IN':
      return n.values.some((lit) => refEq(v, lit, isLabel));
    case 'CONTAINS':
      if (Array.isArray(v)) return v.some((e) => canon(e) === canon(n.value));
      return typeof v === 'string' && typeof n.value === 'string' && includesCodePoints(v, n.value);
    case '==':
      return refEq(v, n.value, isLabel);
    case '!=':
      return !refEq(v, n.value, isLabel);
    default: {
      const c = refCmp(v, n.value, isLabel);
      if (c === undefined) return false;
      return n.op === '<' ? c < 0 : n.op === '<=' ? c <= 0 : n.op === '>' ? c > 0 : c >= 0;
    }
  }
}

function ref(n: GNode, d: Descriptor): boolean {
  if (n.t === 'and') return n.items.every((i) => ref(i, d));
  if (n.t === 'or') return n.items.some((i) => ref(i, d));
  if (n.t === 'not') return !ref(n.item, d);
  return refTerm(n, d);
}

/** The parsed AST in the test's terms, and/or flattened, for comparison with the generated one. */
function normalize(n: GNode): unknown {
  const num = (v: GLit) => (v === 0 ? 0 : v);
  if (n.t === 'and' || n.t === 'or')
    return { t: n.t, items: n.items.flatMap((i) => (i.t === n.t ? (normalize(i) as { items: unknown[] }).items : [normalize(i)])) };
  if (n.t === 'not') return { t: 'not', item: normalize(n.item) };
  const { field, op } = n;
  if (n.op === 'IN') return { field, op, values: n.values.map(num) };
  if (n.op === 'MATCHES') return { field, op, pattern: n.pattern };
  if (n.op === 'EXISTS') return { field, op };
  return { field, op, value: num(n.value) };
}
function fromFilter(f: Filter): GNode {
  switch (f.type) {
    case 'and':
    case 'or':
      return { t: f.type, items: f.items.map(fromFilter) };
    case 'not':
      return { t: 'not', item: fromFilter(f.item) };
    case 'term': {
      const field = f.field.name === 'body' ? { name: 'body' as const, path: [...f.field.path] } : f.field;
      if (f.op === 'IN') return { t: 'term', field, op: 'IN', values: [...f.values] };
      if (f.op === 'MATCHES') return { t: 'term', field, op: 'MATCHES', pattern: f.pattern };
      if (f.op === 'EXISTS') return { t: 'term', field, op: 'EXISTS' };
      return { t: 'term', field, op: f.op, value: f.value };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Random descriptors

const scalarArb = fc.oneof(fc.constantFrom(...STRINGS), fc.constantFrom(...NUMBERS), fc.boolean(), fc.constant(null));
const { json: jsonArb } = fc.letrec<{ json: unknown }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 4, arbitrary: scalarArb },
    { weight: 1, arbitrary: fc.array(tie('json'), { maxLength: 3 }) },
    { weight: 2, arbitrary: fc.dictionary(fc.constantFrom(...BODY_KEYS), tie('json'), { maxKeys: 3, noNullPrototype: true }) },
  ),
}));
const descriptorArb: fc.Arbitrary<Descriptor> = fc.record({
  id: fc.constantFrom(...IDS),
  kind: fc.constantFrom(...KINDS),
  labels: fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES), { maxKeys: 4, noNullPrototype: true }),
  body: fc.dictionary(fc.constantFrom(...BODY_KEYS), jsonArb, { maxKeys: 4, noNullPrototype: true }),
});

// ---------------------------------------------------------------------------------------------

describe('filters against the reference evaluator', () => {
  it('print → parse gives the same tree, and matches agrees with the reference on random descriptors', () => {
    let matched = 0;
    let evaluated = 0;
    fc.assert(
      fc.property(filterArb, styleArb, fc.array(descriptorArb, { minLength: 1, maxLength: 8 }), (node, style, descriptors) => {
        const text = print(node, style);
        const filter = parseFilter(text);
        expect(normalize(fromFilter(filter))).toEqual(normalize(node));
        for (const d of descriptors) {
          const expected = ref(node, d);
          expect(matches(filter, d), `${text} on ${JSON.stringify(d)}`).toBe(expected);
          evaluated++;
          if (expected) matched++;
        }
      }),
      { numRuns: 1500 },
    );
    // Both outcomes are exercised often, not just "false".
    expect(matched).toBeGreaterThan(evaluated / 10);
    expect(evaluated - matched).toBeGreaterThan(evaluated / 10);
  });

  it('single terms on every field and operator (dense coverage of the term rules)', () => {
    fc.assert(
      fc.property(termArb, styleArb, fc.array(descriptorArb, { minLength: 4, maxLength: 12 }), (node, style, descriptors) => {
        const filter = parseFilter(print(node, style));
        for (const d of descriptors) expect(matches(filter, d)).toBe(ref(node, d));
      }),
      { numRuns: 3000 },
    );
  });

  it('compareCodePoints agrees with code point arrays, surrogates included', () => {
    const unit = fc.constantFrom(
      'a',
      'z',
      '\uD800',
      '\uDBFF',
      '\uDC00',
      '\uDFFF',
      '\uD83D',
      '\uDE00',
      '\uE000',
      '\uFFFF',
      '\u{1F600}',
      '\u{10000}',
    );
    const str = fc.oneof(fc.string({ unit, maxLength: 5 }), fc.string({ unit: 'binary', maxLength: 5 }));
    fc.assert(
      fc.property(str, str, (a, b) => {
        expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(cmpCodePoints(a, b)));
        expect(compareCodePoints(a, a)).toBe(0);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('patternSize', () => {
  const REGEX_FRAGMENTS = ['a', 'b', '(', ')', '(?:', '(?i)', '(?P<x>', '|', '*', '+', '?', '{2}', '{3,}', '{0,5}', '{10}', '[ab]', '[^a]'];
  const MORE = [
    '.',
    '\\d',
    '\\pL',
    '\\x{41}',
    '\\Q',
    '\\E',
    '^',
    '$',
    '[[:digit:]]',
    '{',
    '}',
    ',',
    '\\b',
    '[]x]',
    '*?',
    '(?s:',
    '\u{1F600}',
  ];

  it('is an upper estimate of the program RE2 compiles (within its 3 fixed instructions)', () => {
    let compiled = 0;
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...REGEX_FRAGMENTS, ...MORE), { minLength: 1, maxLength: 14 }), (parts) => {
        const pattern = parts.join('');
        let actual: number;
        try {
          actual = RE2JS.compile(pattern).programSize();
        } catch {
          return;
        }
        compiled++;
        expect(actual, pattern).toBeLessThanOrEqual(patternSize(pattern) + 3);
      }),
      { numRuns: 20_000 },
    );
    expect(compiled).toBeGreaterThan(2000);
  });
});

describe('the parser refuses, never crashes', () => {
  const FRAGMENTS = [
    "'",
    '\\',
    '(',
    ')',
    '[',
    ']',
    ',',
    '==',
    '!=',
    '=',
    '!',
    '<',
    '>=',
    ' ',
    ' AND ',
    ' OR ',
    'NOT ',
    ' IN ',
    ' CONTAINS ',
    ' MATCHES ',
    ' EXISTS',
    'labels.',
    'body.',
    'id',
    'kind',
    'x',
    '1',
    '0',
    '-',
    '.',
    'e',
    'true',
    'null',
    'and',
    '/',
    '\uD800',
    '\uDC00',
    '\u{1F600}',
    '*',
    '+',
    '?',
    '{',
    '}',
    '|',
    '^',
    '$',
    '\n',
    '\u0000',
  ];
  const textArb = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.string({ unit: fc.constantFrom(...FRAGMENTS), maxLength: 40 }),
  );

  /** parseFilter(text) returns a filter that evaluates without throwing, or throws a
   * BadRequest naming a position within the text (or just past its end). */
  function check(text: string, descriptors: Descriptor[]): boolean {
    let filter: Filter;
    try {
      filter = parseFilter(text);
    } catch (error) {
      expect(error).toBeInstanceOf(RegistryError);
      const e = error as RegistryError;
      expect(e.code).toBe('BadRequest');
      const m = /^filter: .+ at position (\d+)$/s.exec(e.message);
      expect(m, e.message).not.toBeNull();
      const position = Number(m![1]);
      expect(position).toBeGreaterThanOrEqual(1);
      expect(position).toBeLessThanOrEqual(Math.min(Array.from(text).length + 1, 4097));
      return false;
    }
    for (const d of descriptors) expect(typeof matches(filter, d)).toBe('boolean');
    return true;
  }

  it('on random text', () => {
    fc.assert(
      fc.property(textArb, fc.array(descriptorArb, { maxLength: 3 }), (text, ds) => {
        check(text, ds);
      }),
      { numRuns: 10_000 },
    );
  });

  it('on mutations of valid filters', () => {
    const edit = fc.record({ at: fc.nat(), len: fc.nat(6), insert: fc.string({ unit: fc.constantFrom(...FRAGMENTS), maxLength: 3 }) });
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(
        filterArb,
        styleArb,
        fc.array(edit, { minLength: 1, maxLength: 4 }),
        fc.array(descriptorArb, { maxLength: 3 }),
        (node, style, edits, ds) => {
          let text = print(node, style);
          for (const { at, len, insert } of edits) {
            const i = at % (text.length + 1);
            text = text.slice(0, i) + insert + text.slice(i + len);
          }
          if (check(text, ds)) accepted++;
          else refused++;
        },
      ),
      { numRuns: 5000 },
    );
    expect(accepted).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(50);
  });
});

describe('index hints', () => {
  /** Filters where kind and label equality (the hinted terms) are common. */
  const hintedTermArb: fc.Arbitrary<GNode> = fc.oneof(
    fc
      .record({ op: fc.constant('==' as const), value: fc.oneof(fc.constantFrom(...KINDS), litArb) })
      .map((r): GNode => ({ t: 'term', field: { name: 'kind' }, ...r })),
    fc
      .array(fc.oneof(fc.constantFrom(...KINDS), litArb), { minLength: 1, maxLength: 3 })
      .map((values): GNode => ({ t: 'term', field: { name: 'kind' }, op: 'IN', values })),
    fc
      .record({ key: fc.constantFrom(...LABEL_KEYS), value: fc.oneof(fc.constantFrom(...LABEL_VALUES), litArb) })
      .map(({ key, value }): GNode => ({ t: 'term', field: { name: 'labels', key }, op: '==', value })),
    fc
      .record({
        key: fc.constantFrom(...LABEL_KEYS),
        values: fc.array(fc.oneof(fc.constantFrom(...LABEL_VALUES), litArb), { minLength: 1, maxLength: 3 }),
      })
      .map(({ key, values }): GNode => ({ t: 'term', field: { name: 'labels', key }, op: 'IN', values })),
    termArb,
  );
  const hintedArb = (depth: number): fc.Arbitrary<GNode> =>
    depth === 0
      ? hintedTermArb
      : fc.oneof(
          { weight: 2, arbitrary: hintedTermArb },
          {
            weight: 3,
            arbitrary: fc.record({
              t: fc.constantFrom('and' as const, 'or' as const),
              items: fc.array(hintedArb(depth - 1), { minLength: 2, maxLength: 3 }),
            }),
          },
          { weight: 1, arbitrary: hintedArb(depth - 1).map((item): GNode => ({ t: 'not', item })) },
        );

  it('every match satisfies the hints', () => {
    let hintedMatches = 0;
    fc.assert(
      fc.property(hintedArb(3), fc.array(descriptorArb, { minLength: 1, maxLength: 10 }), (node, descriptors) => {
        const filter = parseFilter(print(node, { sep: ' ', tight: false, exp: false }));
        const hints = indexHints(filter);
        for (const d of descriptors) {
          if (!matches(filter, d)) continue;
          expect(ref(node, d)).toBe(true);
          if (hints) hintedMatches++;
          if (hints?.kinds) expect(hints.kinds).toContain(d.kind);
          for (const { key, values } of hints?.labels ?? []) {
            expect(Object.hasOwn(d.labels, key), `label ${key}`).toBe(true);
            expect(values).toContain(d.labels[key]);
          }
        }
      }),
      { numRuns: 4000 },
    );
    expect(hintedMatches).toBeGreaterThan(100);
  });
});
