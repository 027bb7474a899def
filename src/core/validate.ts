// Schema checks for values that arrive outside Fastify (genesis files, CLI input, records
// read back for replay), with the same schemas the HTTP layer uses.
import type { TSchema, Static } from 'typebox';
import { Compile } from 'typebox/compile';
import { badRequest } from './errors.js';

type Validator<T extends TSchema> = ReturnType<typeof Compile<T>>;
const compiled = new WeakMap<TSchema, Validator<TSchema>>();

export function check<T extends TSchema>(schema: T, value: unknown, what: string): Static<T> {
  let validator = compiled.get(schema) as Validator<T> | undefined;
  if (!validator) {
    validator = Compile(schema);
    compiled.set(schema, validator as unknown as Validator<TSchema>);
  }
  if (validator.Check(value)) return value as Static<T>;
  const first = validator.Errors(value)[0];
  const where = first?.instancePath ? ` at ${first.instancePath}` : '';
  throw badRequest(`${what} is not valid${where}: ${first?.message ?? 'schema violation'}`);
}
