// The Fastify application: limits, request ids, the error envelope, and the route planes.
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import Fastify, { LogController } from 'fastify';
import type { Serializer, SerializerFactory, SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { Logger } from 'pino';
import { parseStrictJson } from '../core/strict-json.js';
import { RegistryError } from '../core/errors.js';
import type { RegistryContext } from './context.js';
import { clientErrorHandler, errorHandler, logLevelOf, sendError } from './errors.js';
import { UriTooLong } from './limits.js';
import { answerWhatNodeRefuses } from './node-answers.js';
import { countUnrouted, instrumentRoutes, metricsRoutes } from './metrics.js';
import { recordRoutes, registerOpenApi } from './openapi.js';
import { opsRoutes } from './routes-ops.js';
import { operatorRoutes } from './routes-operator.js';
import { descriptorRoutes } from './routes-descriptors.js';
import { readRoutes } from './routes-read.js';
import { streamRoutes } from './routes-stream.js';
import { writeRoutes } from './routes-write.js';
import { TypeBoxValidatorCompiler } from './typebox-validator.js';

export const BODY_LIMIT = 1024 * 1024;
const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

export type RegistryApp = ReturnType<typeof buildApp>;

/** fast-json-stringify serializers, each compiled when a route first answers an object with
 * it. Every route has a response schema for every status (the OpenAPI document is built from
 * them), but most answers are pre-built bytes that no serializer touches: compiling them all
 * up front cost ~60 ms of CPU at start-up. */
const requireCjs = createRequire(import.meta.url);
const lazySerializers: SerializerFactory = (externalSchemas, options) => {
  // fast-json-stringify (and the ajv it loads) only once a serializer is first needed.
  let compiler: ReturnType<SerializerFactory> | undefined;
  const compile: ReturnType<SerializerFactory> = (route) => {
    if (!compiler) {
      const selector = requireCjs('@fastify/fast-json-stringify-compiler') as { SerializerSelector: typeof SerializerSelector };
      compiler = selector.SerializerSelector()(externalSchemas, options);
    }
    return compiler(route);
  };
  return (route) => {
    let serialize: Serializer | undefined;
    return (data) => (serialize ??= compile(route))(data);
  };
};

export function buildApp(ctx: RegistryContext, logger: Logger) {
  const limits = ctx.guard.limits;
  // Request ids: a random id per process and a counter, unique across restarts and cheaper
  // than a UUID per request on the read path.
  const bootId = randomUUID().slice(0, 8);
  let requests = 0;
  const app = Fastify({
    loggerInstance: logger,
    // The validator compiler is TypeBox's (set below); naming it here too keeps Fastify from
    // loading its default, ajv, which no route uses.
    schemaController: { compilersFactory: { buildSerializer: lazySerializers, buildValidator: (() => TypeBoxValidatorCompiler) as never } },
    bodyLimit: BODY_LIMIT,
    // Timeouts (README → Operations → Limits and overload): a whole request, its headers (a
    // header-only slowloris is cut at headersTimeout, not at Node's 60 s), an idle keep-alive
    // connection. Node checks the first two every 30 s by default, which lets a slow sender
    // hold a connection for up to twice the limit: every second here.
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // requireHostHeader: Node's own 400 for a missing Host has no envelope; the onRequest hook refuses it.
    http: {
      connectionsCheckingInterval: 1000,
      headersTimeout: limits.headersTimeoutMs,
      maxHeaderSize: limits.maxHeaderBytes,
      requireHostHeader: false,
    },
    clientErrorHandler: (err, socket) => clientErrorHandler(err, socket, (reason) => ctx.metrics.rejected(reason)),
    // Path parameters are proposal ids today and percent-encoded descriptor ids (≤ 256
    // characters, ≤ 768 encoded) next; longer ones reach frameworkErrors below.
    routerOptions: { maxParamLength: 1024 },
    // Fastify's own URL errors (a bad percent-encoding, an over-long parameter) in our envelope.
    frameworkErrors: (error, request, reply) => {
      const message = error.message.length > 200 ? `${error.message.slice(0, 200)}…` : error.message;
      request.log.info({ code: 'BadRequest', err: message }, 'request refused');
      void sendError(reply, request, new RegistryError('BadRequest', message));
      countUnrouted(ctx.metrics, request, 400, 'bad_request');
    },
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : `${bootId}-${(++requests).toString(36)}`;
    },
    // One line per request, written by our onResponse hook, instead of Fastify's two.
    // `request_id`: the name the envelope uses too (SPEC §7), so that a log line and an answer
    // are found by one id.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    // Our onRequest hook answers 503 during shutdown, in the envelope and with Retry-After.
    return503OnClosing: false,
  });
  answerWhatNodeRefuses(app.server);
  // JSON only (SPEC §6): Fastify would otherwise also parse text/plain bodies.
  app.removeContentTypeParser('text/plain');
  // I-JSON (SPEC §1): duplicate names and integers a double would round are refused, naming
  // the place, instead of JSON.parse quietly keeping the last name or rounding the number.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseStrictJson(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  app.setErrorHandler(errorHandler);
  // Metrics hooks on every route from here on (route templates as labels), and on the not-found handler.
  const unmatchedHooks = instrumentRoutes(app, ctx.metrics);
  app.setNotFoundHandler(unmatchedHooks, (request, reply) =>
    sendError(
      reply,
      request,
      new RegistryError('NotFound', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`, {
        hint: 'the registry is served under /registry/ (GET /registry/head), with /version, /healthz, /readyz and /metrics; GET /openapi.json lists every route',
      }),
    ),
  );

  // Hooks are callback-style and do nothing costly: they run on every read.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    // A Transfer-Encoding other than chunked: the body's length is unknown (RFC 9112 §6.3: 400,
    // then close). First: Node's parser fails on it only once the request is under way, and
    // closed the connection after any answer, one that had said keep-alive included.
    const transfer = request.headers['transfer-encoding'];
    if (transfer !== undefined && transfer.trim().toLowerCase() !== 'chunked') {
      reply.header('connection', 'close');
      return done(
        new RegistryError('BadRequest', `Transfer-Encoding ${transfer.slice(0, 40)} is not accepted: send chunked or a Content-Length`),
      );
    }
    if (request.raw.url!.length > limits.maxUrlLength) return done(new UriTooLong(request.raw.url!.length, limits.maxUrlLength));
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1')
      return done(new RegistryError('BadRequest', 'an HTTP/1.1 request needs a Host header (RFC 9112 §3.2)'));
    if (ctx.closing()) {
      reply.header('connection', 'close');
      return done(new RegistryError('Unavailable', 'the registry is shutting down', { retryAfter: 1, reason: 'shutting_down' }));
    }
    const encoding = request.headers['content-encoding'];
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      return done(
        new RegistryError('UnsupportedMediaType', `compressed request bodies (${encoding.slice(0, 40)}) are not accepted`, {
          hint: 'send the JSON body uncompressed',
        }),
      );
    }
    done();
  });
  // A line per request, at info when it was refused or failed and at debug when it succeeded:
  // a synchronous line per successful read halved head throughput (0.52x bare Fastify against
  // 0.88x without), and the reads that matter to an operator are the ones that went wrong.
  // Refusals by the limits (429, 503) are at debug too: a flood of them must not pay for a line
  // each, and rejected_total counts them by reason. LOG_LEVEL=debug logs every request.
  app.addHook('onResponse', (request, reply, done) => {
    const level = logLevelOf(reply.statusCode);
    if (logger.isLevelEnabled(level)) {
      request.log[level](
        {
          route: request.routeOptions.url,
          method: request.method,
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 100) / 100,
        },
        'request',
      );
    }
    done();
  });

  // Overload shedding, body budgets and write rate limits as hooks of each route registered
  // below, and the connection caps on the server.
  ctx.guard.install(app);
  // First, so that both see every route: the route table (the OpenAPI test checks the document
  // against it) and the OpenAPI document itself (GET /openapi.json).
  recordRoutes(app);
  registerOpenApi(app);
  app.register(readRoutes(ctx));
  app.register(descriptorRoutes(ctx));
  app.register(writeRoutes(ctx));
  app.register(opsRoutes(ctx));
  app.register(operatorRoutes(ctx));
  app.register(metricsRoutes(ctx));
  app.register(streamRoutes(ctx));
  return app;
}
