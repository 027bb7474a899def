// The write plane: proposals and approvals go to the single writer.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { checkJsonShape } from '../core/validate.js';
import type { RegistryContext } from './context.js';
import { parseProposalId } from './params.js';
import {
  ApprovalBody,
  errorAnswers,
  ProposalApproved,
  ProposalCreated,
  ProposalIdParams,
  ProposalKnown,
  ProposalSubmission,
} from './schemas.js';

export const writeRoutes =
  (ctx: RegistryContext): FastifyPluginAsync =>
  async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

    // Bodies that JSON.parse accepts but canonical JSON cannot carry, refused before the schema.
    app.addHook('preValidation', (request, _reply, done) => {
      try {
        checkJsonShape(request.body);
        done();
      } catch (e) {
        done(e as Error);
      }
    });

    app.post(
      '/registry/proposals',
      {
        schema: {
          summary: 'Submit a proposal',
          description:
            'A proposal (SPEC §3) with approvals by current signers. 201 when it is new; 200 with its current status when the payload is ' +
            'known (valid approvals sent with it are added while it is pending). When the approvals reach quorum it commits at once: ' +
            'status `committed` and its `version`. 409 when its base is not the head; 422 for a bad signature, an unknown signer or another registry.',
          tags: ['write'],
          body: ProposalSubmission,
          response: {
            200: ProposalKnown,
            201: ProposalCreated,
            ...errorAnswers('StaleVersion', 'Gone', 'PayloadTooLarge', 'BadSignature'),
          },
        },
      },
      async (request, reply) => {
        const { created, view } = await ctx.writer.submit(request.body);
        request.log.info(
          { proposal_id: view.proposal_id, status: view.status, version: view.version },
          created ? 'proposal accepted' : 'proposal known',
        );
        return reply
          .code(created ? 201 : 200)
          .header('cache-control', 'no-store')
          .send(view);
      },
    );

    app.post(
      '/registry/proposals/:id/approvals',
      {
        schema: {
          summary: 'Approve a proposal',
          description:
            'One signer approval. The approval that reaches quorum commits the proposal at once; one for a proposal already ' +
            'committed answers 200 and changes nothing; one for a stale or expired proposal answers 409 or 410.',
          tags: ['write'],
          params: ProposalIdParams,
          body: ApprovalBody,
          response: { 200: ProposalApproved, ...errorAnswers('NotFound', 'StaleVersion', 'Gone', 'PayloadTooLarge', 'BadSignature') },
        },
      },
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
