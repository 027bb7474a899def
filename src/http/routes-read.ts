// The read plane: head, versions, proposals, audit. Bytes of the head and of recent versions
// are precomputed per commit by the HeadView.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { RegistryError } from '../core/errors.js';
import { recordBytesProblem } from '../pipeline/tamper-check.js';
import { fullView, summaryView } from '../state/proposal-view.js';
import { HEAD_CACHE, IMMUTABLE, sendBytes, sendJsonText } from './send.js';
import type { RegistryContext } from './context.js';
import type { CheckpointInfo } from '../store/store.js';
import { decodeCursor, encodeCursor, parseProposalId, parseQueryInt, parseVersion } from './params.js';
import {
  AuditPage,
  AuditQuery,
  CheckpointAnswer,
  CheckpointList,
  CommitRecordAnswer,
  errorAnswers,
  HeadAnswer,
  NotModified,
  ProposalDetail,
  ProposalIdParams,
  ProposalList,
  ProposalListQuery,
  VersionParams,
} from './schemas.js';

export const readRoutes =
  (ctx: RegistryContext): FastifyPluginAsync =>
  async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/registry/head',
      {
        schema: {
          summary: 'The head',
          description:
            'The latest version: the hash of its commit record, its state root, its descriptor count and the signer set in force. ' +
            'Revalidate with If-None-Match.',
          tags: ['read'],
          response: { 200: HeadAnswer, 304: NotModified, ...errorAnswers() },
        },
      },
      async (request, reply) => {
        const { body, etag } = ctx.view.response;
        return sendBytes(request, reply, body, etag, HEAD_CACHE);
      },
    );

    app.get(
      '/registry/:version',
      {
        schema: {
          summary: 'A commit record',
          description:
            'The signed commit record at a version (0 is the genesis), as hashed: clients recompute its hash and the chain. ' +
            'Immutable; 404 (not cached) past the head.',
          tags: ['read'],
          params: VersionParams,
          response: { 200: CommitRecordAnswer, 304: NotModified, ...errorAnswers('NotFound', 'Gone') },
        },
      },
      async (request, reply) => {
        const version = parseVersion(request.params.version);
        if (version > ctx.view.head.version)
          throw new RegistryError('NotFound', `version ${version} is past the head (${ctx.view.head.version})`);
        // A version the start's integrity pass found tampered with is not served (README → Tamper evidence).
        const tampered = ctx.writer.tamperedVersion(version);
        if (tampered)
          throw new RegistryError('Unavailable', `version ${version} failed its integrity check: ${tampered}`, { retryAfter: 3600 });
        let cached = ctx.view.recentRecord(version);
        if (!cached) {
          const stored = await ctx.store.commit(version);
          if (!stored) throw new RegistryError('NotFound', `no version ${version}`);
          if (stored.text === '') {
            const horizon = (await ctx.store.checkpoints())[0]?.version;
            throw new RegistryError('Gone', `version ${version} was pruned: the log keeps whole records from version ${horizon} on`, {
              hint: `its state is in the checkpoint at version ${horizon}: GET /registry/checkpoints, GET /registry/${horizon}/descriptors`,
            });
          }
          // Read back from the store: checked against its own bytes before it goes out.
          const problem = recordBytesProblem(stored, ctx.view.state.digest);
          if (problem) {
            ctx.writer.distrust(`version ${version}: ${problem}`, version);
            throw new RegistryError('Unavailable', `version ${version} failed its integrity check: ${problem}`, { retryAfter: 3600 });
          }
          cached = { body: Buffer.from(stored.text), etag: `"${stored.hash}"` };
          ctx.view.remember(version, cached);
        }
        return sendBytes(request, reply, cached.body, cached.etag, IMMUTABLE);
      },
    );

    const checkpointJson = (c: CheckpointInfo) => ({
      version: c.version,
      hash: c.hash,
      state_root: c.stateRoot,
      descriptor_count: c.descriptorCount,
      created_at: c.createdAt,
    });

    app.get(
      '/registry/checkpoints/latest',
      {
        schema: {
          summary: 'The latest checkpoint',
          description: 'The newest checkpoint (SPEC §10); 404 before the first. Not cached: a newer one may come with any commit.',
          tags: ['read'],
          response: { 200: CheckpointAnswer, ...errorAnswers('NotFound') },
        },
      },
      async (_request, reply) => {
        const latest = await ctx.store.latestCheckpoint();
        if (!latest) throw new RegistryError('NotFound', 'no checkpoint yet', { hint: 'one is made every checkpointEvery commits' });
        return reply.header('cache-control', 'no-store').send(checkpointJson(latest));
      },
    );

    app.get(
      '/registry/checkpoints',
      {
        schema: {
          summary: 'Every checkpoint kept',
          description: 'Oldest first. The oldest is the retention horizon: records before it may have been pruned (410).',
          tags: ['read'],
          response: { 200: CheckpointList, ...errorAnswers() },
        },
      },
      async (_request, reply) => {
        const items = (await ctx.store.checkpoints()).map(checkpointJson);
        return reply.header('cache-control', 'no-store').send({ items });
      },
    );

    app.get(
      '/registry/proposals',
      {
        schema: {
          summary: 'List proposals',
          description: 'Proposals in the order received, optionally of one status, a page at a time. Not cached.',
          tags: ['read'],
          querystring: ProposalListQuery,
          response: { 200: ProposalList, ...errorAnswers() },
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

    app.get(
      '/registry/proposals/:id',
      {
        schema: {
          summary: 'A proposal',
          description: 'Where a proposal stands (its approvals, the threshold, its status and version once committed) and its payload.',
          tags: ['read'],
          params: ProposalIdParams,
          response: { 200: ProposalDetail, ...errorAnswers('NotFound', 'Gone') },
        },
      },
      async (request, reply) => {
        const id = parseProposalId(request.params.id);
        const stored = await ctx.store.proposal(id);
        if (!stored) throw new RegistryError('NotFound', `no proposal ${id}`);
        return reply.header('cache-control', 'no-store').send(fullView(stored, ctx.view.state));
      },
    );

    app.get(
      '/registry/audit',
      {
        schema: {
          summary: 'The audit log',
          description:
            'Audit events from from_seq on (SPEC §9), each exactly as hashed, so that a client can recompute the chain. Not cached.',
          tags: ['read'],
          querystring: AuditQuery,
          response: { 200: AuditPage, ...errorAnswers() },
        },
      },
      async (request, reply) => {
        const from = parseQueryInt(request.query.from_seq, 'from_seq', 1, 1, Number.MAX_SAFE_INTEGER);
        const events = await ctx.store.audit(from, parseQueryInt(request.query.limit, 'limit', 100, 1, 1000));
        // Served exactly as hashed: the stored canonical JSON of each event, unchanged.
        const body = `{"events":[${events.join(',')}],"next_from_seq":${from + events.length}}`;
        return sendJsonText(reply, body, 'no-store');
      },
    );
  };
