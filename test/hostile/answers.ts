// Checks a 2xx JSON answer against the response schema that /openapi.json documents for the
// route that served it: the route is found from the path as Fastify's router would (static
// segments before parameters, parameters before the wildcard).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { RouteEntry } from '../../src/http/openapi.js';

interface Doc {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>>;
  components: { schemas: Record<string, object> };
}

/** `/registry/:version` → `/registry/{version}`, `descriptors::batch` → `descriptors:batch`,
 * the trailing wildcard → `{id}` (as test/integration/openapi.test.ts writes them). */
const openApiPath = (url: string): string =>
  url
    .replace(/::|:([A-Za-z0-9_]+)/g, (m: string, name: string | undefined) => (name === undefined ? ':' : `{${name}}`))
    .replace(/\*$/, '{id}');

interface Matcher {
  method: string;
  url: string;
  re: RegExp;
  rank: number;
}

export class AnswerSchemas {
  private readonly matchers: Matcher[];
  private readonly compiled = new Map<string, ValidateFunction | null>();
  private readonly ajv: Ajv2020;
  private readonly base = 'https://registry.test/openapi.json';

  constructor(
    private readonly doc: Doc,
    routes: readonly RouteEntry[],
  ) {
    this.ajv = new Ajv2020({ strict: false, allErrors: false, validateFormats: false });
    this.ajv.addSchema({ $id: this.base, $defs: this.absolute(doc.components.schemas) as object });
    this.matchers = routes
      .map((r) => {
        let rank = 0;
        const source = r.url
          .replace(/::/g, '\ue000')
          .split('/')
          .map((seg) => {
            if (seg === '*') {
              rank += 100;
              return '.*';
            }
            if (seg.startsWith(':')) {
              rank += 1;
              return '[^/]+';
            }
            // A doubled colon is a literal one (held as U+E000 while the path is split).
            return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\ue000/g, ':');
          })
          .join('/');
        return { method: r.method, url: r.url, re: new RegExp(`^${source}$`), rank };
      })
      .sort((a, b) => a.rank - b.rank);
  }

  private absolute(value: unknown): unknown {
    return JSON.parse(JSON.stringify(value).replaceAll('"#/components/schemas/', `"${this.base}#/$defs/`)) as unknown;
  }

  /** The route that serves `method path` (query stripped), if any. */
  route(method: string, path: string): string | undefined {
    // The absolute form (`http://host/path`) names the same resource; the router matches
    // percent-decoded paths (`/met%72ics` is /metrics).
    const raw = path.split(/[?#]/)[0]!.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/, '');
    let bare = raw;
    try {
      bare = decodeURIComponent(raw);
    } catch {
      // not decodable: matched as sent
    }
    return (
      this.matchers.find((m) => m.method === method && m.re.test(bare)) ?? this.matchers.find((m) => m.method === method && m.re.test(raw))
    )?.url;
  }

  /** The media types documented for a `status` answer of the route serving `method path`. */
  types(method: string, path: string, status: number): string[] {
    const url = this.route(method === 'HEAD' ? 'GET' : method, path);
    if (url === undefined) return [];
    return Object.keys(
      this.doc.paths[openApiPath(url)]?.[method === 'HEAD' ? 'get' : method.toLowerCase()]?.responses[String(status)]?.content ?? {},
    );
  }

  /** Why `json` is not a valid `status` answer of the route serving `method path`. */
  problem(method: string, path: string, status: number, json: unknown): string | undefined {
    const url = this.route(method, path);
    if (url === undefined) return undefined;
    const key = `${method} ${url} ${status}`;
    let validate = this.compiled.get(key);
    if (validate === undefined) {
      const schema =
        this.doc.paths[openApiPath(url)]?.[method.toLowerCase()]?.responses[String(status)]?.content?.['application/json']?.schema;
      validate = schema ? this.ajv.compile(this.absolute(schema) as object) : null;
      this.compiled.set(key, validate);
    }
    if (validate === null) return status === 200 || status === 201 ? `no documented ${status} answer for ${method} ${url}` : undefined;
    if (validate(json)) return undefined;
    return `the ${status} answer of ${method} ${url} does not match its schema: ${this.ajv.errorsText(validate.errors)}`;
  }
}
