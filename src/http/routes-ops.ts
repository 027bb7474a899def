// Operator endpoints: liveness, readiness, identity.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { RegistryError } from '../core/errors.js';
import type { RegistryContext } from './context.js';
import { errorAnswers, HealthAnswer, ReadyAnswer, VersionAnswer } from './schemas.js';

export const opsRoutes =
  (ctx: RegistryContext): FastifyPluginAsync =>
  async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    app.get(
      '/healthz',
      {
        schema: {
          summary: 'Liveness',
          description: 'The process answers. Not cached.',
          tags: ['ops'],
          response: { 200: HealthAnswer, ...errorAnswers() },
        },
      },
      async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }),
    );

    app.get(
      '/readyz',
      {
        schema: {
          summary: 'Readiness',
          description:
            'A 200 while reads are served, saying whether writes are accepted too and why not; a 503 once shutting down, ' +
            'or (cluster mode) while this instance has fallen behind the retention horizon and must be restarted.',
          tags: ['ops'],
          response: { 200: ReadyAnswer, ...errorAnswers() },
        },
      },
      async (_request, reply) => {
        const stale = ctx.readBlocker?.();
        if (stale !== undefined) throw new RegistryError('Unavailable', stale, { retryAfter: 60, reason: 'behind_horizon' });
        const reasons = ctx.writeBlockers();
        return reply.header('cache-control', 'no-store').send({ read: true, write: reasons.length === 0, reasons });
      },
    );

    app.get(
      '/version',
      {
        schema: {
          summary: 'Identity',
          description: 'The service and its release, the wire contract version, and the registry served: its id and genesis hash.',
          tags: ['ops'],
          response: { 200: VersionAnswer, ...errorAnswers() },
        },
      },
      async (_request, reply) =>
        reply.header('cache-control', 'no-store').send({
          service: 'signed-registry',
          version: ctx.serviceVersion,
          schema_version: 1,
          registry_id: ctx.registryId,
          genesis_hash: ctx.genesisHash,
        }),
    );
  };
