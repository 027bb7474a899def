// Answers sent as pre-built bytes. Fastify sends a Buffer or a string as it is, without the
// route's serializer: what was hashed, or computed once, is what goes out.
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The head and answers about it: a shared cache may keep them a second, then revalidates. */
export const HEAD_CACHE = 'public, max-age=1, must-revalidate';
/** Answers pinned to a version never change. */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/"x" matches "x". */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  return ifNoneMatch.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/** Cacheable answers (SPEC §6): precomputed bytes with a strong ETag, revalidated with 304. */
export function sendBytes(request: FastifyRequest, reply: FastifyReply, body: Buffer, etag: string, cacheControl: string) {
  reply.header('etag', etag).header('cache-control', cacheControl);
  if (matches(request.headers['if-none-match'], etag)) return reply.code(304).send();
  return reply.type('application/json').send(body);
}

/** JSON text built by the handler (stored canonical JSON inside), sent unchanged. */
export const sendJsonText = (reply: FastifyReply, body: string, cacheControl: string) =>
  reply.header('cache-control', cacheControl).type('application/json').send(body);
