// GET /registry/stream (SPEC §8): checks the request like any other (a bad filter, a resume
// point past the head, too many subscribers: the usual envelope), then hands the connection
// to the hub.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { badRequest, RegistryError } from '../core/errors.js';
import { compileQuery } from '../core/filter.js';
import type { RegistryContext } from './context.js';
import { errorAnswers, StreamAnswer } from './schemas.js';

const StreamQuery = Type.Object(
  {
    filter: Type.Optional(
      Type.String({
        maxLength: 8192,
        description: 'Only commits that touched a descriptor matching this expression (SPEC §11), `changed` narrowed to those.',
        examples: ["labels.region == 'eu-west-1'"],
      }),
    ),
    kind: Type.Optional(
      Type.String({ maxLength: 64, description: "Only this kind: the same as `AND kind == '…'`.", examples: ['service'] }),
    ),
    from: Type.Optional(
      Type.String({
        maxLength: 20,
        description: 'Replay every commit after this version, then go live. A Last-Event-ID header wins over it.',
        examples: ['41'],
      }),
    ),
  },
  { additionalProperties: false },
);

/** A resume point: a canonical non-negative integer. */
function resumePoint(text: string, name: string): number {
  const n = /^(0|[1-9][0-9]{0,15})$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw badRequest(`${name} must be a version (a non-negative integer)`);
  return n;
}

export const streamRoutes =
  (ctx: RegistryContext): FastifyPluginAsync =>
  async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/registry/stream',
      {
        schema: {
          summary: 'Stream commits',
          description:
            'Every commit as it lands (SPEC §8), in order, without gaps or duplicates. Resume with the Last-Event-ID header or ' +
            '`from`: every commit after that version is replayed, then the stream goes live (400 past the head). 429 when this ' +
            'address holds as many subscriptions as one may, 503 when the service holds as many subscribers as it takes.',
          tags: ['read'],
          querystring: StreamQuery,
          response: { 200: StreamAnswer, ...errorAnswers('RateLimited') },
        },
      },
      async (request, reply) => {
        // The header wins: it is what a reconnecting client sends.
        const header = request.headers['last-event-id'];
        const from =
          typeof header === 'string' && header !== ''
            ? resumePoint(header.trim(), 'Last-Event-ID')
            : request.query.from === undefined
              ? undefined
              : resumePoint(request.query.from, 'from');
        const head = ctx.view.head.version;
        if (from !== undefined && from > head) throw badRequest(`the resume point ${from} is past the head (${head})`);
        const query = compileQuery(request.query.filter, request.query.kind);
        const address = request.ip;
        const refusal = ctx.hub.refusal(address);
        if (refusal === 'global') {
          throw new RegistryError('Unavailable', 'the registry has as many stream subscribers as it takes', { retryAfter: 5 });
        }
        if (refusal === 'address') {
          throw new RegistryError('RateLimited', `${address} has as many stream subscriptions as one address may hold`, { retryAfter: 5 });
        }
        // HEAD gets the stream's headers and no stream: Node sends no headers for a HEAD answer
        // before it ends, so a subscription would leave the client waiting for ever.
        if (request.method === 'HEAD') {
          return reply
            .header('content-type', 'text/event-stream; charset=utf-8')
            .header('cache-control', 'no-store')
            .header('x-accel-buffering', 'no')
            .send('');
        }
        reply.hijack();
        await ctx.hub.open(reply.raw, { filter: query.filter, hints: query.hints, from, address });
      },
    );
  };
