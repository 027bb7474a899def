// The write plane: proposals and approvals go to the single writer.
import type { FastifyPluginAsync } from 'fastify';
import { Approval, ProposalSubmission } from '../core/schemas.js';
import { checkJsonShape } from '../core/validate.js';
import type { RegistryContext } from './context.js';
import { parseProposalId } from './params.js';

export const writeRoutes =
  (ctx: RegistryContext): FastifyPluginAsync =>
  async (app) => {
    // Bodies that JSON.parse accepts but canonical JSON cannot carry, refused before the schema.
    app.addHook('preValidation', (request, _reply, done) => {
      try {
        checkJsonShape(request.body);
        done();
      } catch (e) {
        done(e as Error);
      }
    });

    app.post<{ Body: ProposalSubmission }>('/registry/proposals', { schema: { body: ProposalSubmission } }, async (request, reply) => {
      const { created, view } = await ctx.writer.submit(request.body);
      request.log.info(
        { proposal_id: view.proposal_id, status: view.status, version: view.version },
        created ? 'proposal accepted' : 'proposal known',
      );
      return reply
        .code(created ? 201 : 200)
        .header('cache-control', 'no-store')
        .send(view);
    });

    app.post<{ Params: { id: string }; Body: Approval }>(
      '/registry/proposals/:id/approvals',
      { schema: { body: Approval } },
      async (request, reply) => {
        const id = parseProposalId(request.params.id);
        const view = await ctx.writer.approve(id, request.body);
        request.log.info(
          { proposal_id: id, signer_id: request.body.signer_id, status: view.status, version: view.version },
          'approval accepted',
        );
        return reply.header('cache-control', 'no-store').send(view);
      },
    );
  };
