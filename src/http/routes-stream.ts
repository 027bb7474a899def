// GET /registry/stream (SPEC §8): checks the request like any other (a bad filter, a resume
// point past the head, too many subscribers: the usual envelope), then hands the connection
// to the hub.
import type { FastifyPluginAsync } from 'fastify';
import Type from 'typebox';
import { badRequest, RegistryError } from '../core/errors.js';
import { compileQuery } from '../core/filter.js';
import type { RegistryContext } from './context.js';

const StreamQuery = Type.Object(
  {
    filter: Type.Optional(Type.String({ maxLength: 8192 })),
    kind: Type.Optional(Type.String({ maxLength: 64 })),
    from: Type.Optional(Type.String({ maxLength: 20 })),
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
  async (app) => {
    app.get<{ Querystring: { filter?: string; kind?: string; from?: string } }>(
      '/registry/stream',
      { schema: { querystring: StreamQuery } },
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
        reply.hijack();
        await ctx.hub.open(reply.raw, { filter: query.filter, hints: query.hints, from, address });
      },
    );
  };
