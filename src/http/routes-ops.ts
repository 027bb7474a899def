// Operator endpoints: liveness, readiness, identity.
import type { FastifyPluginAsync } from 'fastify';
import type { RegistryContext } from './context.js';

export const opsRoutes =
  (ctx: RegistryContext): FastifyPluginAsync =>
  async (app) => {
    app.get('/healthz', async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));

    app.get('/readyz', async (_request, reply) => {
      const reasons: string[] = [];
      if (ctx.log.storeProblem) reasons.push(`store: ${ctx.log.storeProblem}`);
      return reply.header('cache-control', 'no-store').send({ read: true, write: reasons.length === 0, reasons });
    });

    app.get('/version', async (_request, reply) =>
      reply.header('cache-control', 'no-store').send({
        service: 'signed-registry',
        version: ctx.serviceVersion,
        schema_version: 1,
        registry_id: ctx.registryId,
        genesis_hash: ctx.genesisHash,
      }),
    );
  };
