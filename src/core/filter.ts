// Filter expressions (SPEC §11): a hand-written tokenizer and recursive-descent parser to an
// AST, the evaluator of that AST against a descriptor, and the planner's index hints.
//
// Parsing is linear in the text: the tokenizer scans character by character (no regular
// expression ever runs over the filter text), nesting is bounded before the parser recurses,
// and MATCHES patterns are compiled by re2js (RE2: no backtracking). Every refusal is a
// RegistryError 'BadRequest' whose message ends with `at position N`, where N is the 1-based
// position of the offending CHARACTER, counting Unicode code points (an astral character such
// as 😀 is one character, not two UTF-16 units); the end of the text is position length + 1.
// The 4,096-character limit counts the same characters.
//
// Choices where SPEC §11 is silent (written into the docs with the feature):
// - The empty (or blank) filter is refused: the grammar has no empty expression.
// - Whitespace is space, tab, CR and LF. Tokens need no whitespace where the characters
//   already separate them (`labels.x=='a'`); a word (field or keyword) is a maximal run of
//   `[A-Za-z0-9._/-]`, so `ANDid` is one word.
// - A number literal must be a finite double, and an integer-valued one must lie within
//   ±(2^53 − 1): SPEC §1 refuses larger integers in bodies because they round silently, and
//   a literal that rounded would silently compare as another number.
// - `!=` is the negation of `==` on a present field: a label whose text is not a JSON number
//   is `!=` to every number literal (a string and a number are not equal JSON values), and
//   `labels.x != true` is true for any present label. A missing field is false (SPEC).
// - A label compared with a STRING literal is compared as a string, even when both are
//   numeric texts (`labels.v < '9'` is true for "10"); only a NUMBER literal reads the label
//   as a number. A numeric label text is read as the nearest double (so "1e400" is +Infinity
//   for ordering and equals no literal).
// - CONTAINS on a string field takes a string literal (substring by code points: a match may
//   not split a surrogate pair); any other literal, or any other field type, is false.
// - MATCHES applies to string fields only (id, kind, labels, string body values); `.` matches
//   one code point. Patterns use RE2 syntax with no flags (`(?i)` inside the pattern works);
//   being filter strings, their backslashes are doubled (`'^\\d+$'`).
// - A filter's MATCHES patterns may expand to at most MAX_FILTER_REGEX_SIZE RE2 instructions
//   in all, estimated from their text before compiling (see there): RE2 accepts far larger
//   programs, and compiling one costs time in proportion to its size.
// - The literals are scalars, so an object or array body value equals no literal (and is `!=`
//   to every literal). `jsonEqual` nonetheless compares arrays and objects deeply (CONTAINS
//   compares array elements with it).
// - A body path walks objects only: an array, a scalar or null on the way means the field is
//   missing. `body.a` is present when `a` holds null.
import { RE2JS } from 're2js';
import { badRequest, type RegistryError } from './errors.js';
import type { Descriptor } from './schemas.js';

export const MAX_FILTER_CHARS = 4096;
export const MAX_FILTER_DEPTH = 10;
export const MAX_FILTER_TERMS = 64;
/** RE2 instructions that the MATCHES patterns of one filter may expand to, estimated from the
 * pattern text BEFORE compiling. RE2 itself accepts programs of up to 1.4 M instructions, and
 * compiling costs time in proportion: one 3.6 KB pattern such as `(?:ab{1000}|ac{1000}|…)`
 * takes most of a second. No realistic filter comes near this (`.{0,1000}` is about 2,000). */
export const MAX_FILTER_REGEX_SIZE = 20_000;
const MAX_LABEL_KEY = 63;

export type CmpOp = '==' | '!=' | '<' | '<=' | '>' | '>=';
export type Literal = string | number | boolean | null;

export type Field =
  | { readonly name: 'id' }
  | { readonly name: 'kind' }
  | { readonly name: 'labels'; readonly key: string }
  | { readonly name: 'body'; readonly path: readonly string[] };

interface TermBase {
  readonly type: 'term';
  readonly field: Field;
}
export interface CompareTerm extends TermBase {
  readonly op: CmpOp;
  readonly value: Literal;
}
export interface InTerm extends TermBase {
  readonly op: 'IN';
  readonly values: readonly Literal[];
}
export interface ContainsTerm extends TermBase {
  readonly op: 'CONTAINS';
  readonly value: Literal;
}
export interface MatchesTerm extends TermBase {
  readonly op: 'MATCHES';
  /** The pattern as written (after string unescaping). */
  readonly pattern: string;
  readonly regex: RE2JS;
}
export interface ExistsTerm extends TermBase {
  readonly op: 'EXISTS';
}
export type Term = CompareTerm | InTerm | ContainsTerm | MatchesTerm | ExistsTerm;

export type Filter =
  | { readonly type: 'and'; readonly items: readonly Filter[] }
  | { readonly type: 'or'; readonly items: readonly Filter[] }
  | { readonly type: 'not'; readonly item: Filter }
  | Term;

// ---------------------------------------------------------------------------------------------
// Tokenizer

const KEYWORDS = new Set(['AND', 'OR', 'NOT', 'IN', 'CONTAINS', 'MATCHES', 'EXISTS', 'true', 'false', 'null']);

type Token =
  /** A keyword, exactly as written (`AND`, `true`…). */
  | { readonly t: 'kw'; readonly pos: number; readonly text: string }
  /** Any other word: a field, or a mistake (a lower-case keyword, an unknown field). */
  | { readonly t: 'word'; readonly pos: number; readonly text: string }
  | { readonly t: 'str'; readonly pos: number; readonly text: string; readonly value: string }
  | { readonly t: 'num'; readonly pos: number; readonly text: string; readonly value: number }
  | { readonly t: 'op'; readonly pos: number; readonly text: CmpOp }
  | { readonly t: 'punct'; readonly pos: number; readonly text: '(' | ')' | '[' | ']' | ',' }
  | { readonly t: 'end'; readonly pos: number; readonly text: '' };

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isLetter = (c: number): boolean => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
/** `[A-Za-z0-9._/-]`: the characters of a label key, and so of a word. */
const isWordChar = (c: number): boolean => isLetter(c) || isDigit(c) || c === 0x2e || c === 0x5f || c === 0x2f || c === 0x2d;
/** `[A-Za-z0-9_-]`: the characters of a body path segment. */
const isSegmentChar = (c: number): boolean => isLetter(c) || isDigit(c) || c === 0x5f || c === 0x2d;
const isSegment = (seg: string): boolean => {
  for (let i = 0; i < seg.length; i++) if (!isSegmentChar(seg.charCodeAt(i))) return false;
  return seg.length > 0;
};
const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isHigh = (c: number): boolean => c >= 0xd800 && c <= 0xdbff;
const isLow = (c: number): boolean => c >= 0xdc00 && c <= 0xdfff;

/** End (UTF-16 index) of the JSON number that starts at `i`, or -1 when there is none. */
function scanJsonNumber(s: string, i: number): number {
  let j = i;
  if (s.charCodeAt(j) === 0x2d) j++;
  const c = s.charCodeAt(j);
  if (c === 0x30) j++;
  else if (c >= 0x31 && c <= 0x39) while (isDigit(s.charCodeAt(++j)));
  else return -1;
  if (s.charCodeAt(j) === 0x2e) {
    if (!isDigit(s.charCodeAt(++j))) return -1;
    while (isDigit(s.charCodeAt(++j)));
  }
  const e = s.charCodeAt(j);
  if (e === 0x65 || e === 0x45) {
    const sign = s.charCodeAt(++j);
    if (sign === 0x2b || sign === 0x2d) j++;
    if (!isDigit(s.charCodeAt(j))) return -1;
    while (isDigit(s.charCodeAt(++j)));
  }
  return j;
}

/** The value of a label's text when that text is exactly a JSON number (SPEC §11). */
export function labelNumber(text: string): number | undefined {
  return text.length > 0 && scanJsonNumber(text, 0) === text.length ? Number(text) : undefined;
}

/** 1-based character (code point) position of UTF-16 index `index` of `text`. */
function charPosition(text: string, index: number): number {
  let n = 1;
  for (let i = 0; i < index && i < text.length; i++) {
    if (isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1)) && i + 1 < index) i++;
    n++;
  }
  return n;
}

const codePointName = (cp: number): string => `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;

/** At most `max` characters of `s`, for a message. */
function excerpt(s: string, max = 24): string {
  const chars = Array.from(s.slice(0, 2 * max + 2));
  return chars.length > max ? `${chars.slice(0, max).join('')}…` : chars.join('');
}

class Lexer {
  private index = 0;
  private peeked: Token | undefined;

  constructor(readonly text: string) {}

  error(index: number, what: string, hint?: string): RegistryError {
    return badRequest(`filter: ${what} at position ${charPosition(this.text, index)}`, hint);
  }

  peek(): Token {
    this.peeked ??= this.scan();
    return this.peeked;
  }

  take(): Token {
    const token = this.peek();
    this.peeked = undefined;
    return token;
  }

  private scan(): Token {
    const s = this.text;
    let i = this.index;
    while (i < s.length && isSpace(s.charCodeAt(i))) i++;
    const token = this.tokenAt(i);
    this.index = token.t === 'end' ? i : token.pos + token.text.length;
    return token;
  }

  /** The token that starts at `start` (no whitespace there). */
  private tokenAt(start: number): Token {
    const s = this.text;
    if (start >= s.length) return { t: 'end', pos: start, text: '' };
    const c = s.charCodeAt(start);
    const next = s.charCodeAt(start + 1);
    if (isLetter(c)) {
      let i = start + 1;
      while (i < s.length && isWordChar(s.charCodeAt(i))) i++;
      const text = s.slice(start, i);
      return { t: KEYWORDS.has(text) ? 'kw' : 'word', pos: start, text };
    }
    if (isDigit(c) || c === 0x2d) return this.number(start);
    if (c === 0x27) return this.string(start);
    switch (c) {
      case 0x28:
        return { t: 'punct', pos: start, text: '(' };
      case 0x29:
        return { t: 'punct', pos: start, text: ')' };
      case 0x5b:
        return { t: 'punct', pos: start, text: '[' };
      case 0x5d:
        return { t: 'punct', pos: start, text: ']' };
      case 0x2c:
        return { t: 'punct', pos: start, text: ',' };
      case 0x3d: // =
        if (next === 0x3d) return { t: 'op', pos: start, text: '==' };
        throw this.error(start, "'=' is not an operator (equality is '==')");
      case 0x21: // !
        if (next === 0x3d) return { t: 'op', pos: start, text: '!=' };
        throw this.error(start, "'!' is not an operator (use '!=' or NOT)");
      case 0x3c: // <
        return { t: 'op', pos: start, text: next === 0x3d ? '<=' : '<' };
      case 0x3e: // >
        return { t: 'op', pos: start, text: next === 0x3d ? '>=' : '>' };
      default:
        throw this.error(start, `unexpected character ${JSON.stringify(String.fromCodePoint(s.codePointAt(start)!))}`);
    }
  }

  /** A JSON number from `start`, which must not run on into a word (`01`, `1.`, `1e`, `10x`). */
  private number(start: number): Token {
    const s = this.text;
    const end = scanJsonNumber(s, start);
    if (end < 0 || (end < s.length && isWordChar(s.charCodeAt(end)))) {
      let j = start + 1;
      while (j < s.length && isWordChar(s.charCodeAt(j))) j++;
      throw this.error(start, `bad number '${excerpt(s.slice(start, j))}' (numbers use JSON syntax)`);
    }
    const text = s.slice(start, end);
    const value = Number(text);
    if (!Number.isFinite(value) || (Number.isInteger(value) && !Number.isSafeInteger(value))) {
      throw this.error(start, `number ${excerpt(text)} is out of range (a finite double; integers within ±(2^53 - 1))`);
    }
    return { t: 'num', pos: start, text, value };
  }

  /** A single-quoted string from `start` (its quote); its `text` runs to the closing quote. */
  private string(start: number): Token {
    const s = this.text;
    let value = '';
    let from = start + 1;
    let j = from;
    for (;;) {
      if (j >= s.length) throw this.error(start, 'unterminated string');
      const c = s.charCodeAt(j);
      if (c === 0x27) break;
      if (c === 0x5c) {
        if (j + 1 >= s.length) throw this.error(start, 'unterminated string');
        const e = s.charCodeAt(j + 1);
        if (e !== 0x27 && e !== 0x5c) {
          const shown = e > 0x20 && e < 0x7f ? `\\${s[j + 1]}` : `\\ then ${codePointName(s.codePointAt(j + 1)!)}`;
          throw this.error(j, `bad escape ${shown} (a string escapes only \\' and \\\\)`);
        }
        value += s.slice(from, j) + (e === 0x27 ? "'" : '\\');
        j += 2;
        from = j;
        continue;
      }
      j++;
    }
    value += s.slice(from, j);
    return { t: 'str', pos: start, text: s.slice(start, j + 1), value };
  }
}

// ---------------------------------------------------------------------------------------------
// The size of a pattern's RE2 program, read from its text alone

/** `indexOf` for forward scans: once `needle` is known absent after some point (or present at
 * some index), later calls from before that index reuse the answer, so a scan stays linear. */
function forwardFinder(s: string, needle: string): (from: number) => number {
  let searchedFrom = Number.POSITIVE_INFINITY;
  let found = -1;
  return (from) => {
    if (from >= searchedFrom && (found < 0 || found >= from)) return found;
    searchedFrom = from;
    found = s.indexOf(needle, from);
    return found;
  };
}

/** A capture compiles to two instructions and, when empty, a third. */
const GROUP_SIZE = 3;

/** A `{n}`, `{n,}` or `{n,m}` repetition at `i`, or undefined when the brace is a literal. */
function readRepeat(p: string, i: number): { min: number; max: number; end: number } | undefined {
  let j = i + 1;
  const digits = (): number | undefined => {
    const from = j;
    while (j < p.length && j - from < 8 && isDigit(p.charCodeAt(j))) j++;
    return j > from ? Number(p.slice(from, j)) : undefined;
  };
  const min = digits();
  if (min === undefined) return undefined;
  let max = min;
  if (p[j] === ',') {
    j++;
    max = digits() ?? -1;
  }
  return p[j] === '}' ? { min, max, end: j + 1 } : undefined;
}

/** An upper estimate of the number of instructions of the RE2 program of `pattern`, after RE2's
 * own count (re2js Parser.calcSize): a literal character or a class is one, `x*` is 2 + |x|,
 * `x{n,m}` is m·|x| + (m − n), alternatives add one each, a group adds three. Linear in the text;
 * exotic syntax (`\Q…\E`, flags, named groups) is over-counted rather than under-counted. A
 * pattern that RE2 would reject may get any estimate: compiling it reports the fault. */
export function patternSize(p: string): number {
  const stack: { done: number; cur: number; alts: number }[] = [];
  let frame = { done: 0, cur: 0, alts: 1 };
  let last = 0; // the size of the last atom, which a repetition applies to
  const atom = (size: number): void => {
    frame.cur += size;
    last = size;
  };
  const closeBrace = forwardFinder(p, '}');
  const endQuote = forwardFinder(p, '\\E');
  const closePosix = forwardFinder(p, ':]');
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    if (c === '\\') {
      const e = p[i + 1];
      if (e === 'Q') {
        const end = endQuote(i + 2);
        const stop = end < 0 ? p.length : end;
        // An empty \Q\E is nothing: a repetition after it applies to the atom before.
        if (stop > i + 2) atom(stop - (i + 2));
        i = end < 0 ? p.length : end + 2;
        continue;
      }
      if ((e === 'p' || e === 'P' || e === 'x') && p[i + 2] === '{') {
        const end = closeBrace(i + 3);
        i = end < 0 ? p.length : end + 1;
      } else i += e === 'x' ? 4 : e === 'p' || e === 'P' ? 3 : 2;
      atom(1);
    } else if (c === '[') {
      let j = i + 1;
      if (p[j] === '^') j++;
      if (p[j] === ']') j++;
      while (j < p.length && p[j] !== ']') {
        if (p[j] === '\\') j += 2;
        else if (p[j] === '[' && p[j + 1] === ':') {
          const end = closePosix(j + 2);
          j = end < 0 ? j + 2 : end + 2;
        } else j++;
      }
      i = j + 1;
      atom(1);
    } else if (c === '(') {
      i++;
      if (p[i] === '?') {
        // (?flags) alone opens no group; (?:…), (?flags:…), (?P<name>…) and (?<name>…) do.
        while (i < p.length && p[i] !== ':' && p[i] !== ')' && p[i] !== '>') i++;
        if (p[i] === ')') {
          i++;
          continue;
        }
        i++;
      }
      stack.push(frame);
      frame = { done: 0, cur: 0, alts: 1 };
      last = 0;
    } else if (c === ')') {
      const size = frame.done + Math.max(1, frame.cur) + frame.alts - 1 + GROUP_SIZE;
      frame = stack.pop() ?? { done: 0, cur: 0, alts: 1 };
      atom(size);
      i++;
    } else if (c === '|') {
      frame.done += Math.max(1, frame.cur); // an empty alternative is one instruction
      frame.cur = 0;
      frame.alts++;
      last = 0;
      i++;
    } else if (c === '*' || c === '+' || c === '?') {
      frame.cur += 2;
      last += 2;
      i++;
    } else if (c === '{' && readRepeat(p, i)) {
      const { min, max, end } = readRepeat(p, i)!;
      const size = max < 0 ? (min === 0 ? 2 + last : 1 + min * last) : max * last + (max - min);
      frame.cur += size - last;
      last = size;
      i = end;
    } else {
      atom(1);
      i++;
    }
  }
  let total = frame.done + Math.max(1, frame.cur) + frame.alts - 1;
  for (const open of stack) total += open.done + Math.max(1, open.cur) + open.alts - 1 + GROUP_SIZE;
  return total;
}

// ---------------------------------------------------------------------------------------------
// Parser

const describe = (token: Token): string => {
  switch (token.t) {
    case 'end':
      return 'the end of the filter';
    case 'str':
      return `the string ${excerpt(token.text)}`;
    case 'num':
      return `the number ${excerpt(token.text)}`;
    default:
      return `'${excerpt(token.text)}'`;
  }
};

/** A word that is a keyword in the wrong case, as the keyword. */
function miscasedKeyword(token: Token): string | undefined {
  if (token.t !== 'word') return undefined;
  for (const k of [token.text.toUpperCase(), token.text.toLowerCase()]) if (KEYWORDS.has(k)) return k;
  return undefined;
}

class Parser {
  private terms = 0;
  /** The estimated RE2 program size of the MATCHES patterns so far. */
  private regexSize = 0;

  constructor(private readonly lex: Lexer) {}

  parse(): Filter {
    const filter = this.or(0);
    const next = this.lex.peek();
    if (next.t !== 'end') throw this.unexpected(next, 'AND, OR or the end of the filter');
    return filter;
  }

  private unexpected(token: Token, expected: string): RegistryError {
    const keyword = miscasedKeyword(token);
    if (keyword !== undefined) {
      return this.lex.error(
        token.pos,
        `'${token.text}' is not a keyword (keywords are written '${keyword}')`,
        'keywords are case-sensitive',
      );
    }
    return this.lex.error(token.pos, `expected ${expected} but found ${describe(token)}`);
  }

  private isKeyword(keyword: string): boolean {
    const token = this.lex.peek();
    return token.t === 'kw' && token.text === keyword;
  }

  private or(depth: number): Filter {
    const items = [this.and(depth)];
    while (this.isKeyword('OR')) {
      this.lex.take();
      items.push(this.and(depth));
    }
    return items.length === 1 ? items[0]! : { type: 'or', items };
  }

  private and(depth: number): Filter {
    const items = [this.unary(depth)];
    while (this.isKeyword('AND')) {
      this.lex.take();
      items.push(this.unary(depth));
    }
    return items.length === 1 ? items[0]! : { type: 'and', items };
  }

  private unary(depth: number): Filter {
    const token = this.lex.peek();
    const isNot = token.t === 'kw' && token.text === 'NOT';
    const isParen = token.t === 'punct' && token.text === '(';
    if (!isNot && !isParen) return this.term();
    if (depth >= MAX_FILTER_DEPTH)
      throw this.lex.error(token.pos, `nested more than ${MAX_FILTER_DEPTH} deep (each NOT and each parenthesis is a level)`);
    this.lex.take();
    if (isNot) return { type: 'not', item: this.unary(depth + 1) };
    const inner = this.or(depth + 1);
    const close = this.lex.peek();
    if (close.t !== 'punct' || close.text !== ')') throw this.unexpected(close, "AND, OR or ')'");
    this.lex.take();
    return inner;
  }

  private field(token: Token): Field {
    if (token.t !== 'word') throw this.unexpected(token, "a field (id, kind, labels.<key>, body.<path>), NOT or '('");
    const text = token.text;
    if (text === 'id' || text === 'kind') return { name: text };
    if (text.startsWith('labels.')) {
      const key = text.slice('labels.'.length);
      // The word's characters are exactly those of a label key: only the length can be wrong.
      if (key.length >= 1 && key.length <= MAX_LABEL_KEY) return { name: 'labels', key };
      throw this.lex.error(
        token.pos,
        `unknown field '${excerpt(text)}' (a label key is 1-${MAX_LABEL_KEY} characters of A-Z a-z 0-9 . _ / -)`,
      );
    }
    if (text.startsWith('body.')) {
      const path = text.slice('body.'.length).split('.');
      if (path.every(isSegment)) return { name: 'body', path };
      throw this.lex.error(
        token.pos,
        `unknown field '${excerpt(text)}' (a body path is body.<segment>(.<segment>)*, a segment being A-Z a-z 0-9 _ -)`,
      );
    }
    if (miscasedKeyword(token) !== undefined) throw this.unexpected(token, 'a field');
    throw this.lex.error(token.pos, `unknown field '${excerpt(text)}' (fields are id, kind, labels.<key> and body.<path>)`);
  }

  private literal(): Literal {
    const token = this.lex.take();
    if (token.t === 'str' || token.t === 'num') return token.value;
    if (token.t === 'kw' && (token.text === 'true' || token.text === 'false')) return token.text === 'true';
    if (token.t === 'kw' && token.text === 'null') return null;
    throw this.unexpected(token, 'a literal (a string, a number, true, false or null)');
  }

  private term(): Term {
    const start = this.lex.take();
    const field = this.field(start);
    if (++this.terms > MAX_FILTER_TERMS) throw this.lex.error(start.pos, `more than ${MAX_FILTER_TERMS} terms`);
    const op = this.lex.take();
    if (op.t === 'op') return { type: 'term', field, op: op.text, value: this.literal() };
    if (op.t === 'kw') {
      switch (op.text) {
        case 'IN': {
          const open = this.lex.take();
          if (open.t !== 'punct' || open.text !== '[') throw this.unexpected(open, "'[' after IN");
          const values = [this.literal()];
          for (;;) {
            const next = this.lex.take();
            if (next.t === 'punct' && next.text === ']') break;
            if (next.t !== 'punct' || next.text !== ',') throw this.unexpected(next, "',' or ']'");
            values.push(this.literal());
          }
          return { type: 'term', field, op: 'IN', values };
        }
        case 'CONTAINS':
          return { type: 'term', field, op: 'CONTAINS', value: this.literal() };
        case 'MATCHES': {
          const pattern = this.lex.take();
          if (pattern.t !== 'str') throw this.unexpected(pattern, 'a string (the RE2 pattern) after MATCHES');
          this.regexSize += patternSize(pattern.value);
          if (this.regexSize > MAX_FILTER_REGEX_SIZE) {
            throw this.lex.error(
              pattern.pos,
              `regular expressions too large (their repetitions expand to more than ${MAX_FILTER_REGEX_SIZE} RE2 instructions in all)`,
              'use smaller repetition counts',
            );
          }
          let regex: RE2JS;
          try {
            regex = RE2JS.compile(pattern.value);
          } catch (e) {
            const reason = e instanceof Error ? e.message : String(e);
            throw this.lex.error(pattern.pos, `bad regular expression (${excerpt(reason, 160)})`, 'MATCHES takes an RE2 pattern');
          }
          return { type: 'term', field, op: 'MATCHES', pattern: pattern.value, regex };
        }
        case 'EXISTS':
          return { type: 'term', field, op: 'EXISTS' };
      }
    }
    throw this.unexpected(op, 'an operator (==, !=, <, <=, >, >=, IN, CONTAINS, MATCHES or EXISTS)');
  }
}

/** Parses a filter expression (SPEC §11). Throws only RegistryError 'BadRequest', whose message
 * names the 1-based character position at fault. */
export function parseFilter(text: string): Filter {
  if (typeof text !== 'string') throw badRequest('filter: a filter is a string');
  // Count characters (code points), stopping at the first one past the limit.
  let chars = 0;
  for (let i = 0; i < text.length; i++) {
    if (isHigh(text.charCodeAt(i)) && isLow(text.charCodeAt(i + 1))) i++;
    if (++chars > MAX_FILTER_CHARS)
      throw badRequest(`filter: longer than ${MAX_FILTER_CHARS} characters at position ${MAX_FILTER_CHARS + 1}`);
  }
  return new Parser(new Lexer(text)).parse();
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** Compares two strings by Unicode code points (UTF-16 order differs above U+FFFF: U+1F600 is
 * after U+FFFF, though its first unit 0xD83D is before 0xFFFF). A lone surrogate counts as
 * its own code point. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  // A shared high surrogate just before the first difference may pair differently in each.
  if (i > 0 && isHigh(a.charCodeAt(i - 1))) i--;
  while (i < a.length && i < b.length) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    i += ca > 0xffff ? 2 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Whether `needle` occurs in `hay` as a sequence of code points (a match may not start or end
 * inside a surrogate pair of `hay`). */
function includesCodePoints(hay: string, needle: string): boolean {
  if (needle.length === 0) return true;
  const splitStart = isLow(needle.charCodeAt(0));
  const splitEnd = isHigh(needle.charCodeAt(needle.length - 1));
  if (!splitStart && !splitEnd) return hay.includes(needle);
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + 1)) {
    if (splitStart && i > 0 && isHigh(hay.charCodeAt(i - 1))) continue;
    const end = i + needle.length;
    if (splitEnd && end < hay.length && isLow(hay.charCodeAt(end))) continue;
    return true;
  }
  return false;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Equality of JSON values: scalars by value (strings by code points, which is equality of
 * their UTF-16 units; 0 equals -0), arrays element-wise, objects by their members. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  return ka.every((k) => Object.hasOwn(rb, k) && jsonEqual(ra[k], rb[k]));
}

const MISSING = Symbol('missing');

function lookup(field: Field, d: Descriptor): unknown {
  switch (field.name) {
    case 'id':
      return d.id;
    case 'kind':
      return d.kind;
    case 'labels':
      return Object.hasOwn(d.labels, field.key) ? (d.labels[field.key] ?? MISSING) : MISSING;
    case 'body': {
      let v: unknown = d.body;
      for (const seg of field.path) {
        if (!isObject(v) || !Object.hasOwn(v, seg)) return MISSING;
        v = v[seg];
      }
      return v === undefined ? MISSING : v;
    }
  }
}

/** `==` between a present value and a literal. A label (a string) equals a number literal when
 * its text is a JSON number of that value. */
function equal(v: unknown, literal: Literal, isLabel: boolean): boolean {
  if (isLabel && typeof literal === 'number' && typeof v === 'string') return labelNumber(v) === literal;
  return jsonEqual(v, literal);
}

/** The order of a present value against a literal, or undefined when the pair has none. */
function order(v: unknown, literal: Literal, isLabel: boolean): number | undefined {
  if (typeof literal === 'string') return typeof v === 'string' ? compareCodePoints(v, literal) : undefined;
  if (typeof literal !== 'number') return undefined;
  const n = typeof v === 'number' ? v : isLabel && typeof v === 'string' ? labelNumber(v) : undefined;
  return n === undefined ? undefined : n < literal ? -1 : n > literal ? 1 : 0;
}

function termMatches(term: Term, d: Descriptor): boolean {
  const v = lookup(term.field, d);
  if (v === MISSING) return false;
  const isLabel = term.field.name === 'labels';
  switch (term.op) {
    case 'EXISTS':
      return true;
    case '==':
      return equal(v, term.value, isLabel);
    case '!=':
      return !equal(v, term.value, isLabel);
    case 'IN':
      return term.values.some((literal) => equal(v, literal, isLabel));
    case 'CONTAINS':
      if (Array.isArray(v)) return v.some((e) => jsonEqual(e, term.value));
      return typeof v === 'string' && typeof term.value === 'string' && includesCodePoints(v, term.value);
    case 'MATCHES':
      return typeof v === 'string' && term.regex.test(v);
    default: {
      const o = order(v, term.value, isLabel);
      if (o === undefined) return false;
      switch (term.op) {
        case '<':
          return o < 0;
        case '<=':
          return o <= 0;
        case '>':
          return o > 0;
        case '>=':
          return o >= 0;
      }
    }
  }
}

/** Whether descriptor `d` satisfies `filter` (SPEC §11). */
export function matches(filter: Filter, d: Descriptor): boolean {
  switch (filter.type) {
    case 'and':
      for (const item of filter.items) if (!matches(item, d)) return false;
      return true;
    case 'or':
      for (const item of filter.items) if (matches(item, d)) return true;
      return false;
    case 'not':
      return !matches(filter.item, d);
    case 'term':
      return termMatches(filter, d);
  }
}

// ---------------------------------------------------------------------------------------------
// Query helpers and the planner

/** `kind == '<kind>'`: what `?kind=` means (SPEC §11). */
export const kindFilter = (kind: string): Term => ({ type: 'term', field: { name: 'kind' }, op: '==', value: kind });

/** The conjunction of the filters given (undefined when none is). */
export function allOf(...filters: (Filter | undefined)[]): Filter | undefined {
  const items = filters.filter((f) => f !== undefined);
  return items.length <= 1 ? items[0] : { type: 'and', items };
}

/** Conditions that every descriptor matching a filter satisfies and that the indexes answer:
 * the kind is one of `kinds`, and for each entry of `labels` the label `key` is present with
 * one of `values`. An empty list means that nothing matches. A field without a condition is
 * left out; the caller still evaluates the whole filter on the candidates. */
export interface IndexHints {
  kinds?: readonly string[];
  labels?: readonly { key: string; values: readonly string[] }[];
}

/** Allowed values per indexed field (`kind`, or `labels.<key>`) implied by a filter. */
type Allowed = Map<string, Set<string>>;

/** The string values a term allows its (indexed) field to hold, or undefined for no limit. */
function allowedValues(term: Term): Set<string> | undefined {
  const literals = term.op === '==' ? [term.value] : term.op === 'IN' ? term.values : undefined;
  if (literals === undefined) return undefined;
  // A number literal matches every label text of its value ("10", "1e1"…): no finite set.
  // Kinds are strings and equal no number; true, false and null equal no kind and no label.
  if (term.field.name === 'labels' && literals.some((l) => typeof l === 'number')) return undefined;
  return new Set(literals.filter((l) => typeof l === 'string'));
}

function implied(filter: Filter): Allowed {
  switch (filter.type) {
    case 'term': {
      const f = filter.field;
      const key = f.name === 'kind' ? 'kind' : f.name === 'labels' ? `labels.${f.key}` : undefined;
      const values = key === undefined ? undefined : allowedValues(filter);
      return values === undefined ? new Map<string, Set<string>>() : new Map([[key!, values]]);
    }
    case 'and': {
      // Every conjunct holds: a field is limited by each, so by their intersection.
      const all: Allowed = new Map();
      for (const item of filter.items) {
        for (const [key, values] of implied(item)) {
          const had = all.get(key);
          all.set(key, had ? new Set([...had].filter((v) => values.has(v))) : values);
        }
      }
      return all;
    }
    case 'or': {
      // One disjunct holds: a field limited by every disjunct is limited by their union.
      const [first, ...rest] = filter.items.map(implied);
      const any: Allowed = new Map();
      for (const [key, values] of first ?? []) {
        if (rest.every((m) => m.has(key))) any.set(key, new Set([values, ...rest.map((m) => m.get(key)!)].flatMap((s) => [...s])));
      }
      return any;
    }
    case 'not':
      return new Map<string, Set<string>>();
  }
}

/** What an index can answer about `filter` (SPEC §11 planner), or undefined when nothing. */
export function indexHints(filter: Filter | undefined): IndexHints | undefined {
  if (filter === undefined) return undefined;
  const allowed = implied(filter);
  if (allowed.size === 0) return undefined;
  const hints: { kinds?: string[]; labels?: { key: string; values: string[] }[] } = {};
  for (const [key, values] of allowed) {
    if (key === 'kind') hints.kinds = [...values];
    else (hints.labels ??= []).push({ key: key.slice('labels.'.length), values: [...values] });
  }
  return hints;
}

export interface CompiledQuery {
  /** The whole query (filter AND kind), or undefined when it has neither. */
  readonly filter: Filter | undefined;
  readonly matches: ((d: Descriptor) => boolean) | undefined;
  readonly hints: IndexHints | undefined;
}

/** A listing's `filter` and `kind` query parameters as one query (SPEC §11: `kind=` is
 * `kind == '…'` joined with AND). An empty `filter` is refused like any other bad filter. */
export function compileQuery(filterText: string | undefined, kind: string | undefined): CompiledQuery {
  const filter = allOf(filterText === undefined ? undefined : parseFilter(filterText), kind === undefined ? undefined : kindFilter(kind));
  return { filter, matches: filter && ((d: Descriptor) => matches(filter, d)), hints: indexHints(filter) };
}
