// Canonical JSON (RFC 8785), byte for byte what the `canonicalize` package that SPEC §1 names
// writes, at about twice its speed on proposals (a 1 MiB payload: ~15 ms instead of ~30 ms).
// JSON.stringify already writes strings and numbers as JCS does; it only keeps an object's keys
// in insertion order. So objects whose keys are out of order are rebuilt in order, sharing every
// subtree that is already in order, and the whole value is written by one native JSON.stringify.
// Where an engine object would not keep the sorted order (integer-like keys come first in a
// JavaScript object) or a value is not plain JSON data, `canonicalize` writes it instead.
// test/unit/core/jcs.test.ts holds the two equal on arbitrary JSON values.
import canonicalize from 'canonicalize';

/** Something JSON.stringify would not write as `canonicalize` does: let `canonicalize` do it. */
class NotPlain extends Error {}

const wellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** A value JCS cannot write: a number that is not finite, a string or key with a lone surrogate. */
export class NoCanonicalForm extends Error {
  constructor(readonly what: 'number' | 'string' | 'key') {
    super(
      what === 'number' ? 'a number that is not finite has no canonical form' : `a ${what} with a lone surrogate has no canonical form`,
    );
    this.name = 'NoCanonicalForm';
  }
}

/** Thrown for a value nested deeper than the caller allows. */
export class TooDeep extends Error {
  constructor(readonly maxDepth: number) {
    super(`the value nests deeper than ${maxDepth} levels`);
    this.name = 'TooDeep';
  }
}

/** `value` with every object's keys in canonical order: `value` itself when it already is. */
function ordered(value: unknown, depth: number, maxDepth: number): unknown {
  switch (typeof value) {
    case 'string':
      if (!wellFormed(value)) throw new NoCanonicalForm('string');
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new NoCanonicalForm('number');
      return value;
    case 'boolean':
    case 'undefined':
      return value;
    case 'object':
      break;
    default:
      throw new NotPlain();
  }
  if (value === null) return value;
  if (depth > maxDepth) throw new TooDeep(maxDepth);
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const done = ordered(item, depth + 1, maxDepth);
      if (copy === undefined && done !== item) copy = value.slice(0, i);
      if (copy !== undefined) copy.push(done);
    }
    return copy ?? value;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw new NotPlain();
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  let sorted = true;
  let indexLike = false;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (i > 0 && !(keys[i - 1]! < key)) sorted = false;
    const c = key.charCodeAt(0);
    if (c >= 48 && c <= 57) indexLike = true;
    if (key === '__proto__') throw new NotPlain();
    if (!wellFormed(key)) throw new NoCanonicalForm('key');
  }
  let rebuilt: Record<string, unknown> | undefined;
  if (sorted) {
    // Rebuilt only when a value below changes: most objects below are already in order.
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const item = object[key];
      const done = ordered(item, depth + 1, maxDepth);
      if (rebuilt === undefined && done !== item) {
        rebuilt = {};
        for (let j = 0; j < i; j++) rebuilt[keys[j]!] = object[keys[j]!];
      }
      if (rebuilt !== undefined) rebuilt[key] = done;
    }
    if (rebuilt === undefined) return value;
  } else {
    // The default sort compares UTF-16 code units, as JCS orders keys.
    const order = keys.slice().sort();
    rebuilt = {};
    for (const key of order) rebuilt[key] = ordered(object[key], depth + 1, maxDepth);
  }
  if (indexLike) {
    // Integer-like keys are enumerated first, in numeric order, whatever the insertion order.
    const kept = Object.keys(rebuilt);
    for (let i = 1; i < kept.length; i++) if (!(kept[i - 1]! < kept[i]!)) throw new NotPlain();
  }
  return rebuilt;
}

/** `canonicalize`, its refusals of what has no canonical form as NoCanonicalForm: it throws a
 * plain Error for them, which callers took for a bug of ours (a 503 for a payload holding both
 * integer-like keys out of order and a lone surrogate; found by test/hostile/). */
function canonicalizeOrRefuse(value: unknown): string | undefined {
  try {
    return canonicalize(value);
  } catch (e) {
    const message = (e as Error).message;
    if (message === 'Lone surrogate is not allowed') throw new NoCanonicalForm('string');
    if (message === 'NaN is not allowed' || message === 'Infinity is not allowed') throw new NoCanonicalForm('number');
    throw e;
  }
}

/** The canonical JSON of `value`, or undefined where `canonicalize` gives undefined (a value
 * with no JSON form); throws where it throws (NoCanonicalForm: NaN, Infinity, a lone surrogate),
 * and TooDeep past `maxDepth` levels of nesting. */
export function jcs(value: unknown, maxDepth = Number.POSITIVE_INFINITY): string | undefined {
  let done: unknown;
  try {
    done = ordered(value, 1, maxDepth);
  } catch (e) {
    if (e instanceof NotPlain) return canonicalizeOrRefuse(value);
    throw e;
  }
  // undefined for a value with no JSON form, as canonicalize answers it.
  return JSON.stringify(done);
}
