// Fastify's validator compiler for the routes' TypeBox schemas: @fastify/type-provider-typebox's
// TypeBoxValidatorCompiler, as it is, without that module's import of ajv-formats (and so of
// ajv), which only its registerAjvFormats() uses (never called here) and which cost ~60 ms of
// CPU at every start. The type provider itself is only a type, imported as such by the routes.
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Value } from 'typebox/value';

export const TypeBoxValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const typeCheck = Compile(schema);
  return (value) => {
    const converted: unknown = httpPart === 'body' ? value : Value.Convert(schema, value);
    if (typeCheck.Check(converted)) return { value: converted };
    return { error: typeCheck.Errors(converted) as never };
  };
};
