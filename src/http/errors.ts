// Maps every error a request can meet, ours or Fastify's, to the SPEC §7 envelope.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError, type ErrorCode } from '../core/errors.js';

interface Envelope {
  error: { code: ErrorCode; message: string; hint: string; retryable: boolean; request_id: string };
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UnsupportedMediaType',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PayloadTooLarge',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BadRequest',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BadRequest',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BadRequest',
  FST_ERR_CTP_EMPTY_TYPE: 'BadRequest',
  FST_ERR_CTP_INVALID_TYPE: 'BadRequest',
};

/** The registry's view of any error: a RegistryError, or undefined for a bug of ours. */
export function toRegistryError(error: FastifyError | Error): RegistryError | undefined {
  if (error instanceof RegistryError) return error;
  const fe = error as FastifyError;
  if (fe.validation) {
    return new RegistryError('BadRequest', `request ${fe.validationContext ?? 'input'} is not valid: ${fe.message}`, {
      hint: 'see the request schema in SPEC §3 and §6; unknown fields are refused',
    });
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new RegistryError(mapped, fe.message);
  if (error instanceof SyntaxError || (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500)) {
    const code: ErrorCode =
      fe.statusCode === 404
        ? 'NotFound'
        : fe.statusCode === 413
          ? 'PayloadTooLarge'
          : fe.statusCode === 415
            ? 'UnsupportedMediaType'
            : 'BadRequest';
    return new RegistryError(code, fe.message);
  }
  return undefined;
}

export function sendError(reply: FastifyReply, request: FastifyRequest, error: RegistryError): FastifyReply {
  const body: Envelope = {
    error: { code: error.code, message: error.message, hint: error.hint, retryable: error.retryable, request_id: request.id },
  };
  reply.header('x-request-id', request.id);
  if (error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter));
  return reply.code(error.status).header('cache-control', 'no-store').type('application/json').send(JSON.stringify(body));
}

/** Which proposal and signers a refused write named, for its log line: ids only, never a
 * signature. Whatever the body holds, only well-typed short strings are taken. */
function writeContext(request: FastifyRequest): { proposal_id?: string; signer_ids?: string[] } {
  if (request.method !== 'POST') return {};
  const out: { proposal_id?: string; signer_ids?: string[] } = {};
  const id = (request.params as { id?: unknown } | undefined)?.id;
  if (typeof id === 'string') out.proposal_id = id.slice(0, 100);
  const body = request.body as { signer_id?: unknown; approvals?: unknown } | undefined;
  if (body && typeof body === 'object') {
    const named = Array.isArray(body.approvals)
      ? body.approvals.slice(0, 16).map((a) => (a as { signer_id?: unknown })?.signer_id)
      : [body.signer_id];
    const ids = named.filter((s): s is string => typeof s === 'string').map((s) => s.slice(0, 100));
    if (ids.length) out.signer_ids = ids;
  }
  return out;
}

export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const known = toRegistryError(error);
  if (known) {
    request.log.info({ code: known.code, err: known.message, ...writeContext(request) }, 'request refused');
    return sendError(reply, request, known);
  }
  // A bug of ours. SPEC §7 has no 500 code; the caller may retry and an operator is paged by the log.
  request.log.error({ err: error }, 'unexpected error');
  return sendError(reply, request, new RegistryError('Unavailable', 'internal error', { retryAfter: 1 }));
}

/** Requests Node's HTTP parser refuses before any request exists (malformed request lines or
 * headers, oversized headers, timeouts) are answered in the envelope too, then the connection
 * is closed. Their status is the one HTTP defines (400, 408, 431); the code is BadRequest. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'the request did not arrive in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'the request headers are too large']
        : [400, 'Bad Request', 'the request is not valid HTTP/1.1'];
  const body: Envelope = { error: { code: 'BadRequest', message, hint: '', retryable: false, request_id: randomUUID() } };
  const text = JSON.stringify(body);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nX-Request-Id: ${body.error.request_id}\r\nConnection: close\r\n\r\n${text}`,
    );
  }
  socket.destroy();
}
