// The operator's endpoints, which SPEC §6 does not list: freeze and thaw the write plane
// (README → Operations → Freeze and thaw). They authenticate with the operator token from the
// configuration, compared in constant time. Without a token configured, or with a wrong or
// missing one, they answer exactly what an unknown route answers (404), so that they tell a
// stranger nothing, not even whether they are enabled.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { RegistryError } from '../core/errors.js';
import type { FreezeState } from '../core/freeze.js';
import type { RegistryContext } from './context.js';
import { errorAnswers, FreezeAnswer, FreezeBody, OperatorAuthorization, ThawBody } from './schemas.js';

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/** Whether an Authorization header carries `token` as a bearer token. Both sides are hashed
 * first, so that the comparison takes the same time whatever the lengths. */
export function bearerCheck(token: string | undefined): (header: string | undefined) => boolean {
  const expected = token === undefined ? undefined : sha256(token);
  return (header) => {
    if (expected === undefined || header === undefined) return false;
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    return m !== null && timingSafeEqual(sha256(m[1]!), expected);
  };
}

const answer = (result: { changed: boolean; state: FreezeState }) =>
  result.state.frozen
    ? { frozen: true, reason: result.state.reason, since: result.state.since, changed: result.changed }
    : { frozen: false, changed: result.changed };

export const operatorRoutes =
  (ctx: RegistryContext): FastifyPluginAsync =>
  async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    const authorized = bearerCheck(ctx.operatorToken);

    // Before the body is read: a caller without the token learns nothing and costs nothing.
    app.addHook('onRequest', (request: FastifyRequest, _reply: FastifyReply, done) => {
      if (authorized(request.headers.authorization)) return done();
      done(
        new RegistryError('NotFound', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`, {
          reason: 'operator_auth',
        }),
      );
    });

    app.post(
      '/ops/freeze',
      {
        schema: {
          summary: 'Freeze the write plane',
          description:
            'Operator only (`Authorization: Bearer <operator token>`; 404 without it, as for an unknown route). From now on every ' +
            'proposal and approval is refused 503 `Unavailable` with the reason and Retry-After, writes already queued included; ' +
            'reads go on. Audited as a `frozen` event with the reason; nothing is committed and pending proposals stay pending. ' +
            'The state survives a restart. Freezing a frozen registry answers its state with `changed: false` and audits nothing.',
          tags: ['ops'],
          headers: OperatorAuthorization,
          body: FreezeBody,
          response: { 200: FreezeAnswer, ...errorAnswers('NotFound', 'PayloadTooLarge') },
        },
      },
      async (request, reply) => {
        const result = await ctx.writer.freezeWrites(request.body.reason);
        request.log.warn({ changed: result.changed, reason: request.body.reason }, 'freeze requested');
        return reply.header('cache-control', 'no-store').send(answer(result));
      },
    );

    app.post(
      '/ops/thaw',
      {
        schema: {
          summary: 'Thaw the write plane',
          description:
            'Operator only, like /ops/freeze. Writes are accepted again; audited as a `thawed` event (with the reason, if one is ' +
            'given). Thawing a registry that is not frozen answers its state with `changed: false` and audits nothing.',
          tags: ['ops'],
          headers: OperatorAuthorization,
          body: ThawBody,
          response: { 200: FreezeAnswer, ...errorAnswers('NotFound', 'PayloadTooLarge') },
        },
      },
      async (request, reply) => {
        const result = await ctx.writer.thawWrites(request.body.reason);
        request.log.warn({ changed: result.changed, reason: request.body.reason }, 'thaw requested');
        return reply.header('cache-control', 'no-store').send(answer(result));
      },
    );
  };
