// The OpenAPI 3.1 document of the whole surface, built by @fastify/swagger from the routes' own
// schemas (./schemas.ts) and served at GET /openapi.json. Route schemas are JSON Schema 2020-12
// already, which OpenAPI 3.1 takes as it is; the transforms here only
//  - name the wildcard of /registry/descriptors/* `{id}` (swagger writes `::` as `:` itself),
//  - reference the shared schemas under components/schemas instead of repeating them,
//  - show a signed document served as stored (schemas.ts `asStored`) with its schema, and
//  - keep `patternProperties`, which swagger's schema conversion (made for OpenAPI 3.0) would
//    fold into `additionalProperties`, losing the key pattern, by hiding it from the conversion.
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifySchema,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerBase,
  RouteOptions,
} from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { hashBytes } from '../core/encoding.js';
import { SERVICE_VERSION } from '../version.js';
import { AS_STORED, COMPONENT_SCHEMAS, COMPONENTS, DescriptorIdPath, errorAnswers, NotModified } from './schemas.js';
import { sendBytes } from './send.js';

export const OPENAPI_PATH = '/openapi.json';
/** The document is the same for the life of the process. */
export const OPENAPI_CACHE = 'public, max-age=60';

/** What the wildcard of a route stands for, as the document names it. */
const WILDCARD_NAME = 'id';
const HIDDEN_PATTERN_PROPERTIES = 'x-pattern-properties';
const componentRef = (name: string) => `#/components/schemas/${name}`;

/** Keywords whose values are data, not schemas. */
const DATA_KEYWORDS = new Set(['examples', 'default', 'const', 'enum']);

/** `schema` as the document shows it. `self` is the component being written, if any: it is not
 * replaced by a reference to itself. */
function forDocument(schema: unknown, self?: unknown): unknown {
  if (Array.isArray(schema)) return schema.map((s) => forDocument(s, self));
  if (typeof schema !== 'object' || schema === null) return schema;
  const name = schema === self ? undefined : COMPONENTS.get(schema);
  if (name !== undefined) {
    // At the root of a response, swagger takes the description and headers from beside the
    // reference.
    const { description, headers } = schema as { description?: string; headers?: unknown };
    return { $ref: componentRef(name), ...(description === undefined ? {} : { description }), ...(headers ? { headers } : {}) };
  }
  const record = schema as Record<string, unknown>;
  if (AS_STORED in record) return forDocument(record[AS_STORED], self);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (DATA_KEYWORDS.has(key)) out[key] = value;
    else out[key === 'patternProperties' ? HIDDEN_PATTERN_PROPERTIES : key] = forDocument(value, self);
  }
  return out;
}

/** Puts back what `forDocument` hid from swagger's conversion. */
function restore(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(restore);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) out[key === HIDDEN_PATTERN_PROPERTIES ? 'patternProperties' : key] = restore(v);
  return out;
}

function transformRoute({ schema, url }: { schema: FastifySchema; url: string }): { schema: FastifySchema; url: string } {
  const doc: Record<string, unknown> = { ...schema };
  for (const part of ['querystring', 'params', 'body', 'headers'] as const) {
    if (schema[part] !== undefined) doc[part] = forDocument(schema[part]);
  }
  if (schema.response !== undefined) {
    doc.response = Object.fromEntries(Object.entries(schema.response as Record<string, unknown>).map(([s, r]) => [s, forDocument(r)]));
  }
  let path = url;
  if (url.endsWith('*')) {
    // The one wildcard route, /registry/descriptors/*: its rest of the path is a descriptor id.
    path = `${url.slice(0, -1)}{${WILDCARD_NAME}}`;
    doc.params = { type: 'object', properties: { [WILDCARD_NAME]: forDocument(DescriptorIdPath) }, required: [WILDCARD_NAME] };
  }
  return { schema: doc, url: path };
}

export interface RouteEntry {
  method: string;
  url: string;
}

/** The root instance, whatever its server and logger. */
type Root<S extends RawServerBase, L extends FastifyBaseLogger> = FastifyInstance<
  S,
  RawRequestDefaultExpression<S>,
  RawReplyDefaultExpression<S>,
  L
>;

const routeTables = new WeakMap<object, RouteEntry[]>();
/** What the document is built from: each route's method, URL, schema and config. */
type DocumentedRoute = Pick<RouteOptions, 'method' | 'url' | 'schema' | 'config'>;
const documentedRoutes = new WeakMap<object, DocumentedRoute[]>();

/** Every route registered on `app` from now on, HEAD routes included. */
export function recordRoutes<S extends RawServerBase, L extends FastifyBaseLogger>(app: Root<S, L>): void {
  const routes: RouteEntry[] = [];
  const documented: DocumentedRoute[] = [];
  routeTables.set(app, routes);
  documentedRoutes.set(app, documented);
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url ?? route.path });
    documented.push({ method: route.method, url: route.url ?? route.path, schema: route.schema, config: route.config });
  });
}

/** The routes `recordRoutes` saw (the OpenAPI test checks the document against them). */
export const registeredRoutes = (app: object): readonly RouteEntry[] => routeTables.get(app) ?? [];

/** The options of @fastify/swagger that make the document. */
function swaggerOptions(): FastifyDynamicSwaggerOptions {
  const components = Object.fromEntries(
    Object.entries(COMPONENT_SCHEMAS).map(([name, schema]) => [name, forDocument(schema, schema) as object]),
  );
  return {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Signed registry',
        version: SERVICE_VERSION,
        description:
          'A signed, append-only registry of versioned descriptors: M-of-N Ed25519 governance over a hash-chained log. ' +
          'Reads are served from the head with strong ETags; changes are proposals that commit once enough signers approve. ' +
          'Every refusal is the error envelope, with a stable code. The wire contract is SPEC.md (v1).',
      },
      tags: [
        { name: 'read', description: 'The head, versions, descriptors, proposals and the audit log. Never changes state.' },
        { name: 'write', description: 'Proposals and approvals: the only way the registry changes.' },
        {
          name: 'ops',
          description: "Liveness, readiness, identity, this document, and the operator's freeze and thaw of the write plane.",
        },
      ],
      // OpenAPI 3.1 schemas are JSON Schema 2020-12: each component is its schema as it is.
      components: { schemas: components as never },
    },
    // OpenAPI 3.1 has `const`: keep the schemas as Fastify validates with them.
    convertConstToEnum: false,
    transform: transformRoute,
    transformObject: (document) =>
      'openapiObject' in document ? (restore(document.openapiObject) as typeof document.openapiObject) : document.swaggerObject,
  };
}

/**
 * The document, built when it is first asked for: @fastify/swagger (and the YAML and schema
 * resolver modules it loads) cost ~30 ms of every start, for a document few ever fetch. It is
 * made on a throwaway Fastify instance, from the routes `recordRoutes` saw on the real one (the
 * method, URL, schema and config that @fastify/swagger reads, HEAD routes left out as it does),
 * so it is the document that @fastify/swagger registered on the real instance would make.
 */
async function buildDocument(routes: readonly DocumentedRoute[]): Promise<{ body: Buffer; etag: string }> {
  const [{ default: Fastify }, { default: swagger }] = await Promise.all([import('fastify'), import('@fastify/swagger')]);
  // No validation or serialization on this instance: nothing is ever sent to it.
  const noCompiler = () => () => () => true;
  const doc = Fastify({
    exposeHeadRoutes: false,
    schemaController: { compilersFactory: { buildValidator: noCompiler as never, buildSerializer: noCompiler as never } },
  });
  await doc.register(swagger, swaggerOptions());
  for (const route of routes) {
    const methods = [route.method].flat().filter((m) => m !== 'HEAD');
    if (methods.length) doc.route({ ...route, method: methods, handler: () => undefined });
  }
  await doc.ready();
  const body = Buffer.from(JSON.stringify(doc.swagger()));
  await doc.close();
  return { body, etag: `"${hashBytes(body)}"` };
}

/** Registers the route of the document (before any other route, so that the document lists them all). */
export function registerOpenApi<S extends RawServerBase, L extends FastifyBaseLogger>(app: Root<S, L>): void {
  const routes = documentedRoutes.get(app);
  if (!routes) throw new Error('registerOpenApi needs recordRoutes(app) first');
  void app.register(async (instance) => {
    const typed = instance.withTypeProvider<TypeBoxTypeProvider>();
    let document: Promise<{ body: Buffer; etag: string }> | undefined;
    typed.get(
      OPENAPI_PATH,
      {
        schema: {
          summary: 'This document',
          description: `The OpenAPI 3.1 document of every route, built from the schemas the service validates and serializes with. Cache-Control: \`${OPENAPI_CACHE}\`, with a strong ETag.`,
          tags: ['ops'],
          response: {
            200: Type.Object(
              {
                openapi: Type.String(),
                info: Type.Object({}, { additionalProperties: true }),
                paths: Type.Object({}, { additionalProperties: true }),
              },
              { additionalProperties: true, description: 'An OpenAPI 3.1 document.' },
            ),
            304: NotModified,
            ...errorAnswers(),
          },
        },
      },
      async (request, reply) => {
        // Built once; a failure is not kept, so that the next request tries again.
        document ??= buildDocument(routes).catch((e: unknown) => {
          document = undefined;
          throw e;
        });
        const { body, etag } = await document;
        return sendBytes(request, reply, body, etag, OPENAPI_CACHE);
      },
    );
  });
}
