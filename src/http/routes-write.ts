// The write plane: proposals and approvals go to the single writer.
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Approval } from '../core/schemas.js';
import { checkStrictJson, parseJson } from '../core/strict-json.js';
import { check, checkJsonShape } from '../core/validate.js';
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

    // Before the body is read: a frozen registry, or a store write stuck, refuses every write
    // with 503 and Retry-After (README → Operations); reads go on.
    app.addHook('onRequest', (_request, _reply, done) => {
      try {
        ctx.writer.admit();
        done();
      } catch (e) {
        done(e as Error);
      }
    });

    // The write plane parses its bodies itself: JSON.parse, keeping the text, so that the
    // cheap checks come before the I-JSON walk over up to 1 MiB (checkStrictJson, in the hook
    // below) and before schema validation. The root parser does both at once.
    const texts = new WeakMap<object, string>();
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      try {
        texts.set(request, body as string);
        done(null, parseJson(body as string));
      } catch (e) {
        done(e as Error, undefined);
      }
    });

    // What a request without a valid signature may cost (README → Decisions → Order of checks):
    // a proposal's approvals are screened first (the writer's screen: ids, then one signature
    // over the payload hash), an approval body is checked against its small schema. Then the
    // body must be I-JSON, and what JSON.parse accepts but canonical JSON cannot carry is
    // refused; only then the schema validates the whole body.
    app.addHook('preValidation', async (request) => {
      let walked = false;
      const strict = (): void => {
        if (walked) return;
        walked = true;
        const text = texts.get(request);
        if (text !== undefined) checkStrictJson(text);
      };
      if (request.routeOptions.url === '/registry/proposals') await ctx.writer.screen(request.body, strict);
      else check(Approval, request.body, 'the body');
      strict();
      checkJsonShape(request.body);
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
            ...errorAnswers('StaleVersion', 'Gone', 'PayloadTooLarge', 'BadSignature', 'RateLimited'),
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
          response: {
            200: ProposalApproved,
            ...errorAnswers('NotFound', 'StaleVersion', 'Gone', 'PayloadTooLarge', 'BadSignature', 'RateLimited'),
          },
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
