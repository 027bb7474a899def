// Maps every error a request can meet, ours or Fastify's, to the SPEC §7 envelope.
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
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

/** What to do about each of Fastify's refusals, in the envelope's hint. */
const FASTIFY_HINTS: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'send Content-Type: application/json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'bodies are limited to 1 MiB: split the change into several proposals',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'send a JSON body, or no Content-Type: application/json header',
  FST_ERR_CTP_INVALID_JSON_BODY: 'send one JSON document',
  FST_ERR_CTP_EMPTY_TYPE: 'send Content-Type: application/json',
  FST_ERR_CTP_INVALID_TYPE: 'send Content-Type: application/json',
};

/** The registry's view of any error: a RegistryError, or undefined for a bug of ours. */
export function toRegistryError(error: FastifyError | Error): RegistryError | undefined {
  if (error instanceof RegistryError) return error;
  const fe = error as FastifyError;
  if (fe.validation) {
    return new RegistryError('BadRequest', `request ${fe.validationContext ?? 'input'} is not valid: ${fe.message}`, {
      hint: 'see the request schemas in GET /openapi.json (and docs/protocol.md); unknown fields are refused',
    });
  }
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new RegistryError(mapped, fe.message, { hint: FASTIFY_HINTS[fe.code] });
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

/** rejected_total's reason for each status, when the error gave none finer: its code in snake case. */
const STATUS_REASONS: Readonly<Record<number, string>> = {
  400: 'bad_request',
  409: 'stale_version',
  410: 'gone',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'bad_signature',
  429: 'rate_limited',
  503: 'unavailable',
};
/** The finer reasons of refused answers (RegistryError.reason), until the metrics hook reads them. */
const rejectReasons = new WeakMap<FastifyReply, string>();

/** Why an answer with `status` (≥ 400) was refused, as rejected_total{reason} counts it. */
export function rejectReasonOf(reply: FastifyReply, status: number): string {
  return rejectReasons.get(reply) ?? STATUS_REASONS[status] ?? `http_${status}`;
}

export function sendError(reply: FastifyReply, request: FastifyRequest, error: RegistryError): FastifyReply {
  if (error.reason !== undefined) rejectReasons.set(reply, error.reason);
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

/** The level of a request's log lines: info for what went wrong, debug for successes and for the
 * refusals of the limits and of overload (429, 503), which come in floods and are counted in
 * rejected_total by reason. A store failure behind a 503 is logged at error where it happens. */
export function logLevelOf(status: number): 'info' | 'debug' {
  return status >= 400 && status !== 429 && status !== 503 ? 'info' : 'debug';
}

export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const known = toRegistryError(error);
  if (known) {
    request.log[logLevelOf(known.status)]({ code: known.code, err: known.message, ...writeContext(request) }, 'request refused');
    return sendError(reply, request, known);
  }
  // A bug of ours. SPEC §7 has no 500 code; the caller may retry and an operator is paged by the log.
  request.log.error({ err: error }, 'unexpected error');
  return sendError(reply, request, new RegistryError('Unavailable', 'internal error', { retryAfter: 1, reason: 'internal_error' }));
}

/** How long answers to requests parsed before a client error may take before the connection
 * is cut anyway, and how long a closed connection waits for the client's side of the close. */
const ANSWER_WAIT_MS = 30_000;
const LINGER_MS = 2_000;
const ANSWERED = Symbol('client error answered');
type ClientSocket = Socket & { [ANSWERED]?: true; _httpMessage?: ServerResponse | null };

/** Requests Node's HTTP parser refuses before any request exists (malformed request lines or
 * headers, oversized headers, timeouts) are answered in the envelope too, then the connection
 * is closed. Their status is the one HTTP defines (400, 408, 431); the code is BadRequest.
 * `rejected` counts each (rejected_total: request_timeout, headers_too_large, bad_http).
 *
 * Requests received whole before the bad bytes (pipelined on the same connection) may still be
 * running, a write among them: each is answered first, in order, then the error, so that no
 * applied write loses its answer. The error is sent with the connection's end, and the socket
 * is destroyed once the client closes its side too (or LINGER_MS later): destroying it with
 * answers still buffered, or with the client's bytes unread (a reset), could lose them. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket, rejected?: (reason: string) => void): void {
  const s = socket as ClientSocket;
  if (err.code === 'ECONNRESET' || socket.destroyed || s[ANSWERED]) return;
  // The parser keeps failing on every later chunk: one answer per connection.
  s[ANSWERED] = true;
  const [status, reason, message, counted] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'the request did not arrive in time', 'request_timeout']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'the request headers are too large', 'headers_too_large']
        : [400, 'Bad Request', 'the request is not valid HTTP/1.1', 'bad_http'];
  rejected?.(counted);
  const deadline = setTimeout(() => socket.destroy(), ANSWER_WAIT_MS);
  deadline.unref();
  const next = (): void => {
    if (socket.destroyed) return clearTimeout(deadline);
    // Node answers pipelined requests in order: the one on the socket now, then the next.
    const res = s._httpMessage;
    if (res && res.req.complete && !res.closed) {
      res.once('close', next);
      return;
    }
    clearTimeout(deadline);
    // A response already under way (its request not received whole) cannot be followed by another.
    if (!socket.writable || res?.headersSent) return void socket.destroy();
    const body: Envelope = { error: { code: 'BadRequest', message, hint: '', retryable: false, request_id: randomUUID() } };
    const text = JSON.stringify(body);
    // The answer to a HEAD has no body (RFC 9110 §9.3.2): a client would take one for the next answer.
    const head = (err as { rawPacket?: Buffer }).rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nX-Request-Id: ${body.error.request_id}\r\nConnection: close\r\n\r\n${head ? '' : text}`,
    );
    const linger = setTimeout(() => socket.destroy(), LINGER_MS);
    linger.unref();
    socket.once('close', () => clearTimeout(linger));
  };
  next();
}
