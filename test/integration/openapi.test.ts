// GET /openapi.json over real HTTP: the document is valid OpenAPI 3.1 (checked by a real
// validator), its schemas are valid JSON Schema 2020-12 and hold their examples, and it
// documents every route the service has, and nothing else. Also: the answers that Fastify
// serializes through their response schemas (fast-json-stringify) lose no field.
import { Validator, type SpecData } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, hashOf } from '../../src/core/encoding.js';
import { registeredRoutes, type RouteEntry } from '../../src/http/openapi.js';
import { approve, genesisRecord, proposal, put, setSigners, signers, signerSet } from '../helpers/fixtures.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  parameters?: { name: string; in: string; required?: boolean; schema: object; example?: unknown }[];
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, { description: string; content?: Record<string, Media> }>;
}
interface Media {
  schema: object;
  example?: unknown;
  examples?: Record<string, { value: unknown }>;
}
interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description?: string };
  tags: { name: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, object> };
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** A Fastify route path as OpenAPI writes it: `:name` is `{name}`, `::` a literal colon, and
 * the wildcard of /registry/descriptors/* the descriptor `{id}`. */
const openApiPath = (url: string): string =>
  url
    .replace(/::|:([A-Za-z0-9_]+)/g, (m: string, name: string | undefined) => (name === undefined ? ':' : `{${name}}`))
    .replace(/\*$/, '{id}');

/** The operations each side has that the other lacks, as "METHOD path". HEAD routes, which
 * Fastify adds beside every GET, are not documented separately. */
function coverage(routes: readonly RouteEntry[], doc: OpenApiDocument): { undocumented: string[]; unrouted: string[] } {
  const served = new Set(routes.filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${openApiPath(r.url)}`));
  const documented = new Set(
    Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => METHODS.includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    ),
  );
  return {
    undocumented: [...served].filter((op) => !documented.has(op)).sort(),
    unrouted: [...documented].filter((op) => !served.has(op)).sort(),
  };
}

const operations = (doc: OpenApiDocument): [string, Operation][] =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([m, op]): [string, Operation] => [`${m.toUpperCase()} ${path}`, op]),
  );

const keys = signers('alice', 'bob', 'carol');
let reg: TestRegistry;
let doc: OpenApiDocument;
let text: string;

beforeAll(async () => {
  reg = await startTestRegistry(genesisRecord('docs', keys, 2));
  const r = await request<OpenApiDocument>(reg.url, 'GET', '/openapi.json');
  expect(r.status).toBe(200);
  doc = r.json;
  text = r.text;
});
afterAll(() => reg.close());

describe('GET /openapi.json', () => {
  it('serves the document as JSON, cacheable a minute, with a strong ETag that revalidates', async () => {
    const r = await request(reg.url, 'GET', '/openapi.json');
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.headers.get('cache-control')).toBe('public, max-age=60');
    const etag = r.headers.get('etag')!;
    expect(etag).toMatch(/^"b3:[0-9a-f]{64}"$/);
    expect(r.text).toBe(text); // the same document for the life of the process
    const again = await request(reg.url, 'GET', '/openapi.json', undefined, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'Signed registry', version: expect.stringMatching(/^\d+\.\d+\.\d+/) as unknown });
    expect(doc.info.description).toBeTruthy();
    const validator = new Validator();
    const result = await validator.validate(JSON.parse(text) as SpecData);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  it('documents every route the service has, and no other', () => {
    const routes = registeredRoutes(reg.app);
    // Not vacuous: the table holds the routes, HEAD ones included.
    expect(routes).toContainEqual({ method: 'GET', url: '/registry/head' });
    expect(routes).toContainEqual({ method: 'HEAD', url: '/registry/head' });
    expect(routes).toContainEqual({ method: 'POST', url: '/registry/descriptors::batch' });
    expect(coverage(routes, doc)).toEqual({ undocumented: [], unrouted: [] });
    // The paths as a client writes them.
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/registry/{version}',
        '/registry/{version}/descriptors',
        '/registry/descriptors/{id}',
        '/registry/descriptors:batch',
        '/registry/proposals/{id}/approvals',
        '/openapi.json',
      ]),
    );
  });

  it('the coverage check fails when a route is missing from the document, or a documented one is not served', () => {
    const routes = [...registeredRoutes(reg.app), { method: 'GET', url: '/registry/extra/:name' }];
    expect(coverage(routes, doc).undocumented).toEqual(['GET /registry/extra/{name}']);
    const withoutHead = registeredRoutes(reg.app).filter((r) => !(r.method === 'GET' && r.url === '/registry/head'));
    expect(coverage(withoutHead, doc).unrouted).toEqual(['GET /registry/head']);
    expect(openApiPath('/registry/descriptors::batch')).toBe('/registry/descriptors:batch');
    expect(openApiPath('/registry/:version/descriptors')).toBe('/registry/{version}/descriptors');
    expect(openApiPath('/registry/descriptors/*')).toBe('/registry/descriptors/{id}');
  });

  it('gives every operation a summary, a description, a tag, its path parameters and its answers, errors in the envelope', () => {
    const tags = doc.tags.map((t) => t.name);
    expect(tags).toEqual(['read', 'write', 'ops']);
    for (const [name, op] of operations(doc)) {
      expect(op.summary, name).toBeTruthy();
      expect(op.description, name).toBeTruthy();
      expect(op.tags?.length, name).toBe(1);
      expect(tags, name).toContain(op.tags![0]);
      const path = name.split(' ')[1]!;
      const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const pathParams = (op.parameters ?? []).filter((p) => p.in === 'path');
      expect(pathParams.map((p) => p.name).sort(), name).toEqual(inPath.sort());
      for (const p of pathParams) expect(p.required, `${name} ${p.name}`).toBe(true);
      const statuses = Object.keys(op.responses);
      expect(
        statuses.some((s) => /^2/.test(s)),
        name,
      ).toBe(true);
      for (const status of ['400', '415', '503']) expect(statuses, name).toContain(status);
      for (const [status, answer] of Object.entries(op.responses)) {
        expect(answer.description, `${name} ${status}`).toBeTruthy();
        if (status === '304') expect(answer.content, `${name} 304`).toBeUndefined();
        else if (Number(status) >= 400)
          expect(answer.content?.['application/json']?.schema, `${name} ${status}`).toEqual({ $ref: '#/components/schemas/ErrorEnvelope' });
        else expect(Object.values(answer.content ?? {})[0]?.schema, `${name} ${status}`).toBeDefined();
      }
    }
  });

  it('shows the main bodies and answers with examples', () => {
    const media = (name: string, status?: string): Media => {
      const [method, path] = name.split(' ') as [string, string];
      const op = doc.paths[path]![method.toLowerCase()]!;
      return status === undefined ? op.requestBody!.content['application/json']! : op.responses[status]!.content!['application/json']!;
    };
    for (const [name, status] of [
      ['GET /registry/head', '200'],
      ['GET /registry/{version}', '200'],
      ['GET /registry/head/descriptors', '200'],
      ['GET /registry/descriptors/{id}', '200'],
      ['POST /registry/descriptors:batch', '200'],
      ['GET /registry/diff', '200'],
      ['POST /registry/proposals', '201'],
      ['GET /registry/proposals/{id}', '200'],
      ['GET /registry/proposals', '200'],
      ['GET /registry/audit', '200'],
      ['GET /version', '200'],
      ['POST /registry/descriptors:batch', undefined],
      ['POST /registry/proposals', undefined],
      ['POST /registry/proposals/{id}/approvals', undefined],
    ] as const) {
      const m = media(name, status);
      expect(m.example ?? m.examples, `${name} ${status ?? 'body'}`).toBeDefined();
    }
  });

  it('holds JSON Schema 2020-12 that compiles strictly, and every example is valid against its schema', () => {
    // The components' references, made absolute, so that each schema compiles on its own.
    const base = 'https://registry.test/openapi.json';
    const absolute = (value: unknown): unknown =>
      JSON.parse(JSON.stringify(value).replaceAll('"#/components/schemas/', `"${base}#/$defs/`)) as unknown;
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    ajv.addSchema({ $id: base, $defs: absolute(doc.components.schemas) as object });
    const compile = (schema: object, where: string): ValidateFunction => {
      expect(ajv.validateSchema(absolute(schema) as object), `${where}: ${ajv.errorsText()}`).toBe(true);
      return ajv.compile(absolute(schema) as object);
    };
    const check = (validate: ValidateFunction, example: unknown, where: string) =>
      expect(validate(example), `${where}: ${ajv.errorsText(validate.errors)}`).toBe(true);
    let examples = 0;
    const media = (m: Media, where: string) => {
      const validate = compile(m.schema, where);
      for (const value of [
        ...(m.example === undefined ? [] : [m.example]),
        ...Object.values(m.examples ?? {}).map((e) => e.value),
        ...((m.schema as { examples?: unknown[] }).examples ?? []),
      ]) {
        check(validate, value, where);
        examples++;
      }
    };
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      const validate = compile(schema, name);
      for (const value of (schema as { examples?: unknown[] }).examples ?? []) check(validate, value, name);
    }
    for (const [name, op] of operations(doc)) {
      for (const p of op.parameters ?? []) {
        const validate = compile(p.schema, `${name} ${p.name}`);
        if (p.example !== undefined) check(validate, p.example, `${name} ${p.name}`);
      }
      for (const [type, m] of Object.entries(op.requestBody?.content ?? {})) media(m, `${name} body ${type}`);
      for (const [status, answer] of Object.entries(op.responses))
        for (const [type, m] of Object.entries(answer.content ?? {})) media(m, `${name} ${status} ${type}`);
    }
    expect(examples).toBeGreaterThanOrEqual(15);
  });
});

describe('answers serialized through their response schemas', () => {
  // fast-json-stringify writes only the fields a schema lists: each answer is compared whole.
  const head = async () => (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;

  it('keeps every field of the operator answers', async () => {
    expect((await request(reg.url, 'GET', '/healthz')).text).toBe('{"status":"ok"}');
    expect((await request(reg.url, 'GET', '/readyz')).text).toBe('{"read":true,"write":true,"reasons":[]}');
    const version = await request(reg.url, 'GET', '/version');
    expect(version.json).toEqual({
      service: 'signed-registry',
      version: doc.info.version,
      schema_version: 1,
      registry_id: 'docs',
      genesis_hash: (await request<HeadJson>(reg.url, 'GET', '/registry/0')).headers.get('etag')!.slice(1, -1),
    });
    expect(Object.keys(version.json as object)).toEqual(['service', 'version', 'schema_version', 'registry_id', 'genesis_hash']);
  });

  it('keeps every field of proposal views, and serves the payload as signed', async () => {
    // A set_signers proposal has every field a view can have: proposed_threshold, then version.
    const next = signerSet([...keys, ...signers('dave')], 3);
    const p = proposal('docs', await head(), [put('svc-a', { region: 'eu' }, { addr: '10.0.0.1', port: 80 }), setSigners(next)]);
    const id = hashOf(p);
    const created = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id)] });
    expect(created.status).toBe(201);
    const pending = { proposal_id: id, status: 'pending', approvals: [{ signer_id: 'alice' }], threshold: 2, proposed_threshold: 3 };
    expect(created.json).toEqual(pending);

    const full = await request(reg.url, 'GET', `/registry/proposals/${id}`);
    expect(full.json).toEqual({ ...pending, payload: p });
    // The payload's bytes are its canonical JSON, the bytes that were hashed and signed.
    expect(full.text).toContain(`"payload":${canonicalJson(p)}`);

    const list = await request(reg.url, 'GET', '/registry/proposals?status=pending');
    expect(list.json).toEqual({
      items: [{ ...pending, created_at: p.created_at, received_at: expect.stringMatching(/Z$/) as unknown }],
      next_cursor: null,
    });

    const known = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[1]!, id)] });
    expect(known.status).toBe(200);
    expect(known.json).toEqual({ ...pending, approvals: [{ signer_id: 'alice' }, { signer_id: 'bob' }] });
  });

  it('keeps the version of a committed proposal', async () => {
    const p = proposal('docs', await head(), [put('svc-b')]);
    const id = hashOf(p);
    await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id)] });
    const committed = await request(reg.url, 'POST', `/registry/proposals/${id}/approvals`, approve(keys[2]!, id));
    const view = { proposal_id: id, status: 'committed', approvals: [{ signer_id: 'alice' }, { signer_id: 'carol' }], threshold: 2 };
    expect(committed.json).toEqual({ ...view, version: (await head()).version });
    expect((await request(reg.url, 'GET', `/registry/proposals/${id}`)).json).toEqual({ ...view, version: 1, payload: p });
  });
});
