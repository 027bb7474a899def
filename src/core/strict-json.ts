// Request bodies are I-JSON (RFC 7493, SPEC §1), which JCS assumes: JSON.parse keeps the last
// of two members with one name, and rounds an integer beyond ±(2^53 − 1) to the nearest
// double, so a signer and the service would hash different documents. This parses with
// JSON.parse and then walks the text once, refusing either with the JSON Pointer of the place.
import { badRequest } from './errors.js';
import { MAX_JSON_DEPTH } from './validate.js';

const pointer = (path: readonly (string | number)[]): string =>
  path.length ? path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('') : '(the top level)';

/** The value of `text`, a JSON document that is also I-JSON; a 400 naming the place otherwise. */
export function parseStrictJson(text: string): unknown {
  const value = parseJson(text);
  checkStrictJson(text);
  return value;
}

/** The value of `text` as JSON.parse reads it; a 400 when it is not JSON. The write plane parses
 * with this, screens the approvals (cheap), and only then walks the whole text (checkStrictJson). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw badRequest(`the body is not valid JSON: ${(e as Error).message}`);
  }
}

/** Refuses `text`, which JSON.parse has accepted, when it is not I-JSON (a 400 naming the place). */
export function checkStrictJson(text: string): void {
  new Walker(text).document();
}

/** A walk over text that JSON.parse has accepted, so it checks only what JSON.parse lets by. */
class Walker {
  private at = 0;
  private readonly path: (string | number)[] = [];

  constructor(private readonly text: string) {}

  document(): void {
    this.value(1);
  }

  private space(): void {
    const t = this.text;
    for (let c = t.charCodeAt(this.at); c === 32 || c === 9 || c === 10 || c === 13; c = t.charCodeAt(++this.at));
  }

  private value(depth: number): void {
    if (depth > MAX_JSON_DEPTH) throw badRequest(`the body nests deeper than ${MAX_JSON_DEPTH} levels at ${pointer(this.path)}`);
    this.space();
    const c = this.text[this.at];
    if (c === '{') this.object(depth);
    else if (c === '[') this.array(depth);
    else if (c === '"') this.string();
    else if (c === 't' || c === 'n') this.at += 4;
    else if (c === 'f') this.at += 5;
    else this.number();
  }

  private object(depth: number): void {
    this.at++;
    const names = new Set<string>();
    this.space();
    if (this.text[this.at] === '}') return void this.at++;
    for (;;) {
      this.space();
      const token = this.string();
      const name = token.includes('\\') ? (JSON.parse(token) as string) : token.slice(1, -1);
      if (names.has(name))
        throw badRequest(
          `the body names member "${name.slice(0, 64)}" twice at ${pointer(this.path)}`,
          'each name appears once per object (I-JSON)',
        );
      if (name === '__proto__') {
        throw badRequest(
          `the body has a member named "__proto__" at ${pointer(this.path)}`,
          'the name is refused: JavaScript reads it as an object prototype',
        );
      }
      names.add(name);
      this.space();
      this.at++; // ':'
      this.path.push(name);
      this.value(depth + 1);
      this.path.pop();
      this.space();
      if (this.text[this.at++] === '}') return;
    }
  }

  private array(depth: number): void {
    this.at++;
    this.space();
    if (this.text[this.at] === ']') return void this.at++;
    for (let i = 0; ; i++) {
      this.path.push(i);
      this.value(depth + 1);
      this.path.pop();
      this.space();
      if (this.text[this.at++] === ']') return;
    }
  }

  /** Skips a string token; returns its text, quotes included. */
  private string(): string {
    const t = this.text;
    const start = this.at;
    let end = t.indexOf('"', start + 1);
    for (;;) {
      let slashes = 0;
      while (t.charCodeAt(end - 1 - slashes) === 92) slashes++;
      if (slashes % 2 === 0) break;
      end = t.indexOf('"', end + 1);
    }
    this.at = end + 1;
    return t.slice(start, this.at);
  }

  private number(): void {
    const t = this.text;
    const start = this.at;
    let plain = true;
    for (
      let c = t.charCodeAt(this.at);
      (c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 69 || c === 101;
      c = t.charCodeAt(++this.at)
    ) {
      if (c === 46 || c === 69 || c === 101) plain = false;
    }
    // An integer written in digits is what a signer may keep exactly; written with a fraction
    // or an exponent it is a double to every JCS implementation alike. 2^53 has 16 digits.
    if (!plain || this.at - start < 16) return;
    const literal = t.slice(start, this.at);
    if (Math.abs(Number(literal)) > Number.MAX_SAFE_INTEGER) {
      throw badRequest(
        `the body holds the integer ${literal.slice(0, 40)} at ${pointer(this.path)}, beyond ±(2^53 − 1)`,
        'send integers within ±9007199254740991 (I-JSON): a double would round it',
      );
    }
  }
}
