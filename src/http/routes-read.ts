// The read plane: head, versions, proposals, audit. Bytes of the head and of recent versions
// are precomputed per commit by the HeadView.
import type { FastifyPluginAsync } from 'fastify';
import Type from 'typebox';
import { RegistryError } from '../core/errors.js';
import { PROPOSAL_STATUSES, type ProposalStatus } from '../core/schemas.js';
import { fullView, summaryView } from '../state/proposal-view.js';
import { HEAD_CACHE, IMMUTABLE, sendBytes } from './send.js';
import type { RegistryContext } from './context.js';
import { decodeCursor, encodeCursor, parseProposalId, parseQueryInt, parseVersion } from './params.js';

const QueryInt = Type.Optional(Type.String({ maxLength: 16 }));

export const readRoutes =
  (ctx: RegistryContext): FastifyPluginAsync =>
  async (app) => {
    app.get('/registry/head', async (request, reply) => {
      const { body, etag } = ctx.view.response;
      return sendBytes(request, reply, body, etag, HEAD_CACHE);
    });

    app.get<{ Params: { version: string } }>('/registry/:version', async (request, reply) => {
      const version = parseVersion(request.params.version);
      if (version > ctx.view.head.version)
        throw new RegistryError('NotFound', `version ${version} is past the head (${ctx.view.head.version})`);
      let cached = ctx.view.recentRecord(version);
      if (!cached) {
        const stored = await ctx.store.commit(version);
        if (!stored) throw new RegistryError('NotFound', `no version ${version}`);
        cached = { body: Buffer.from(stored.text), etag: `"${stored.hash}"` };
      }
      return sendBytes(request, reply, cached.body, cached.etag, IMMUTABLE);
    });

    app.get<{ Querystring: { status?: ProposalStatus; limit?: string; cursor?: string } }>(
      '/registry/proposals',
      {
        schema: {
          querystring: Type.Object(
            {
              status: Type.Optional(Type.Union(PROPOSAL_STATUSES.map((s) => Type.Literal(s)))),
              limit: QueryInt,
              cursor: Type.Optional(Type.String({ maxLength: 200 })),
            },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const limit = parseQueryInt(request.query.limit, 'limit', 100, 1, 1000);
        // One row more than asked tells whether another page exists.
        const rows = await ctx.store.proposals({
          status: request.query.status,
          afterSeq: decodeCursor(request.query.cursor),
          limit: limit + 1,
        });
        const page = rows.slice(0, limit);
        const items = page.map((p) => ({ ...summaryView(p, ctx.view.state), created_at: p.createdAt, received_at: p.receivedAt }));
        const next = rows.length > limit ? encodeCursor(page[page.length - 1]!.seq) : null;
        return reply.header('cache-control', 'no-store').send({ items, next_cursor: next });
      },
    );

    app.get<{ Params: { id: string } }>('/registry/proposals/:id', async (request, reply) => {
      const id = parseProposalId(request.params.id);
      const stored = await ctx.store.proposal(id);
      if (!stored) throw new RegistryError('NotFound', `no proposal ${id}`);
      return reply.header('cache-control', 'no-store').send(fullView(stored, ctx.view.state));
    });

    app.get<{ Querystring: { from_seq?: string; limit?: string } }>(
      '/registry/audit',
      { schema: { querystring: Type.Object({ from_seq: QueryInt, limit: QueryInt }, { additionalProperties: false }) } },
      async (request, reply) => {
        const from = parseQueryInt(request.query.from_seq, 'from_seq', 1, 1, Number.MAX_SAFE_INTEGER);
        const events = await ctx.store.audit(from, parseQueryInt(request.query.limit, 'limit', 100, 1, 1000));
        // Served exactly as hashed: the stored canonical JSON of each event, unchanged.
        const body = `{"events":[${events.join(',')}],"next_from_seq":${from + events.length}}`;
        return reply.header('cache-control', 'no-store').type('application/json').send(body);
      },
    );
  };
