// The HTTP side of the metrics (src/obs/metrics.ts): per-route hooks that count each answer, and
// GET /metrics. The hooks are attached to each route when it is registered, so that a request
// never looks its route up: its series were resolved once, with the route template as label.
// Requests no route matched share one label (`unmatched`), whatever their path.
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerBase,
} from 'fastify';
import Type from 'typebox';
import { UNMATCHED_ROUTE, type Plane, type RegistryMetrics, type RouteSeries } from '../obs/metrics.js';
import type { RegistryContext } from './context.js';
import { rejectReasonOf } from './errors.js';
import { errorAnswers } from './schemas.js';

export const METRICS_PATH = '/metrics';

/** Routes whose answer is a stream: counted, but neither timed nor in flight (their lifetime is
 * the subscriber's). */
const STREAMS = new Set(['/registry/stream']);

/** The methods an unmatched request is labelled with; any other is `other`. Node's parser
 * accepts only a fixed list, but the label set stays small whatever it accepts. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);

/** The plane of a route (see Plane). */
export function planeOf(route: string, method: string): Plane {
  if (!route.startsWith('/registry/')) return 'ops';
  if (method === 'GET' || method === 'HEAD' || route === '/registry/descriptors:batch') return 'read';
  return 'write';
}

/** A route's label: its template as Fastify has it, with `::` (an escaped colon) as the path has it. */
export const routeLabel = (url: string): string => url.replaceAll('::', ':');

type Hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;
const METRICS_HOOK = Symbol('metrics hook');

/** A request in flight until its response closes (finished or cut). */
function inFlightHook(metrics: RegistryMetrics): Hook {
  const closed = () => void metrics.inFlight--;
  return (_request, reply, done) => {
    metrics.inFlight++;
    reply.raw.on('close', closed);
    done();
  };
}

/** Counts an answer of `series`, and refusals by reason: every error answer but a 404, which
 * answers the question asked (no such descriptor, version or route). */
function answeredHook(metrics: RegistryMetrics, series: (request: FastifyRequest) => RouteSeries): Hook {
  return (request, reply, done) => {
    const code = reply.statusCode;
    series(request).answered(code, reply.elapsedTime);
    if (code >= 400 && code !== 404) metrics.rejected(rejectReasonOf(reply, code));
    done();
  };
}

const tagged = (hook: Hook): Hook => Object.assign(hook, { [METRICS_HOOK]: true });
const asList = <T>(hooks: T | T[] | undefined): T[] => (hooks === undefined ? [] : Array.isArray(hooks) ? [...hooks] : [hooks]);

/** The options of the not-found handler that carry its metrics hooks. Fastify 5 runs every
 * lifecycle hook given there (lib/four-oh-four.js), though its types name only preValidation and
 * preHandler; test/integration/metrics.test.ts sees unmatched requests counted. */
export type NotFoundHooks = Record<string, never>;

/** Attaches the metrics hooks to every route registered on `app` from now on. Returns the
 * options that attach them to the not-found handler: pass them to setNotFoundHandler. */
export function instrumentRoutes<S extends RawServerBase, L extends FastifyBaseLogger>(
  app: FastifyInstance<S, RawRequestDefaultExpression<S>, RawReplyDefaultExpression<S>, L>,
  metrics: RegistryMetrics,
): NotFoundHooks {
  const inFlight = tagged(inFlightHook(metrics));
  app.addHook('onRoute', (route) => {
    const methods = [route.method].flat();
    const url = routeLabel(route.url ?? UNMATCHED_ROUTE);
    const stream = STREAMS.has(url);
    const byMethod = new Map(methods.map((m) => [m, metrics.route(url, m, planeOf(url, m), !stream)]));
    const only = methods.length === 1 ? byMethod.get(methods[0]!)! : undefined;
    const series = only ? () => only : (request: FastifyRequest) => byMethod.get(request.method) ?? byMethod.values().next().value!;
    // A HEAD route that Fastify derives from a GET one is registered with the GET route's
    // options: take out the GET route's hooks first.
    const onRequest = asList(route.onRequest).filter((h) => !(METRICS_HOOK in h));
    const onResponse = asList(route.onResponse).filter((h) => !(METRICS_HOOK in h));
    route.onRequest = (stream ? onRequest : [...onRequest, inFlight]) as typeof route.onRequest;
    route.onResponse = [...onResponse, tagged(answeredHook(metrics, series))] as typeof route.onResponse;
  });
  const unmatchedSeries = (request: FastifyRequest): RouteSeries =>
    metrics.unmatchedRoute(KNOWN_METHODS.has(request.method) ? request.method : 'other');
  const hooks = { onRequest: [inFlight], onResponse: [answeredHook(metrics, unmatchedSeries)] };
  return hooks as unknown as NotFoundHooks;
}

/** A request Fastify refused before routing it (a malformed URL, through `frameworkErrors`):
 * no route's hooks see it, so it is counted here, as unmatched and as a refusal. */
export function countUnrouted(metrics: RegistryMetrics, request: FastifyRequest, code: number, reason: string): void {
  metrics.unmatchedRoute(KNOWN_METHODS.has(request.method) ? request.method : 'other').counted(code);
  metrics.rejected(reason);
}

export const MetricsAnswer = {
  description: 'The Prometheus text exposition (format 0.0.4) of every metric the service exports (README → Operations → Metrics).',
  content: {
    'text/plain': {
      schema: Type.String({
        examples: ['# HELP registry_head_version The head version.\n# TYPE registry_head_version gauge\nregistry_head_version 42\n'],
      }),
    },
  },
};

export const metricsRoutes =
  (ctx: RegistryContext): FastifyPluginAsync =>
  async (app) => {
    app.get(
      METRICS_PATH,
      {
        schema: {
          summary: 'Metrics',
          description:
            'Prometheus text: request rates and latency, refusals, governance, commits, the stream, storage, readiness and the process. Not cached.',
          tags: ['ops'],
          response: { 200: MetricsAnswer, ...errorAnswers() },
        },
      },
      async (_request, reply) =>
        reply
          .header('cache-control', 'no-store')
          .type(ctx.metrics.contentType)
          .send(await ctx.metrics.exposition()),
    );
  };
