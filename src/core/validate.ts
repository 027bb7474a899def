// Schema checks for values that arrive outside Fastify (genesis files, CLI input, records
// read back for replay), with the same schemas the HTTP layer uses.
import type { TSchema, Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { badRequest } from './errors.js';

/** Builds the error a failed check throws: a 400 for what a request sent, an IntegrityError
 * for what the log holds. */
export type Failure = (message: string) => Error;

type Validator<T extends TSchema> = ReturnType<typeof Compile<T>>;
const compiled = new WeakMap<TSchema, Validator<TSchema>>();

export function check<T extends TSchema>(schema: T, value: unknown, what: string, fail: Failure = badRequest): Static<T> {
  let validator = compiled.get(schema) as Validator<T> | undefined;
  if (!validator) {
    validator = Compile(schema);
    compiled.set(schema, validator);
  }
  if (validator.Check(value)) return value;
  const first = validator.Errors(value)[0];
  const where = first?.instancePath ? ` at ${first.instancePath}` : '';
  throw fail(`${what} is not valid${where}: ${first?.message ?? 'schema violation'}`);
}

/** How deep a received JSON document may nest. A proposal's own structure takes 6 levels;
 * the rest is for descriptor bodies. Deeper documents would exhaust the canonicalizer's stack. */
export const MAX_JSON_DEPTH = 64;

const wellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** Refuses what JSON.parse accepts but canonical JSON (RFC 8785) cannot carry: nesting past
 * MAX_JSON_DEPTH, numbers that are not finite doubles (1e400 parses to Infinity), and
 * strings or keys with a lone UTF-16 surrogate ("\ud800" has no UTF-8 form). */
export function checkJsonShape(value: unknown, maxDepth = MAX_JSON_DEPTH): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v === 'number' && !Number.isFinite(v)) throw badRequest('a number in the body is out of the range of a double');
    if (typeof v === 'string' && !wellFormed(v)) throw badRequest('a string in the body holds a lone UTF-16 surrogate');
    if (typeof v !== 'object' || v === null) continue;
    if (depth > maxDepth) throw badRequest(`the body nests deeper than ${maxDepth} levels`);
    if (Array.isArray(v)) {
      for (const child of v) stack.push([child, depth + 1]);
      continue;
    }
    for (const [key, child] of Object.entries(v)) {
      if (!wellFormed(key)) throw badRequest('a key in the body holds a lone UTF-16 surrogate');
      stack.push([child, depth + 1]);
    }
  }
}
