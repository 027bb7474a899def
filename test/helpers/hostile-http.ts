// HTTP for the hostile-input campaign (test/hostile/): requests sent exactly as generated
// (any method token, raw paths, duplicate headers, bodies of any bytes) over reused keep-alive
// connections or fresh ones, each with a deadline, and raw bytes over a bare socket for what
// node:http will not send. `problemWith` judges an answer against SPEC §6/§7: a 2xx or 304, or
// a 4xx carrying the error envelope with a code whose status it is. Never a 5xx, never a hang.
import http, { type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { ERROR_STATUS, type ErrorCode } from '../../src/core/errors.js';

export interface HostileRequest {
  /** The route template the request aims at (`GET /registry/:version`), for the counts. */
  route: string;
  method: string;
  /** Path and query, sent byte for byte. */
  path: string;
  /** In order, duplicates allowed. A Host header is added unless one is given. */
  headers: [string, string][];
  body?: Buffer | undefined;
  /** A new connection for this request alone, instead of a kept-alive one. */
  fresh: boolean;
  /** Which generator made it, for the failure report. */
  label: string;
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body was cut short by the client (an event stream read a little, then aborted). */
  cut: boolean;
}

const LAST = Symbol('the last request on a socket');

/** A request in one line, big parts cut short: for failure reports. */
export function describeRequest(r: HostileRequest): string {
  const cut = (t: string, n: number) => (t.length > n ? `${t.slice(0, n)}…(${t.length})` : t);
  const headers = r.headers.map(([k, v]) => `${cut(k, 40)}: ${cut(v, 80)}`).join(' | ');
  const body = r.body === undefined ? '' : ` body(${r.body.length})=${JSON.stringify(r.body.subarray(0, 300).toString('latin1'))}`;
  return `[${r.label}${r.fresh ? ', fresh connection' : ''}] ${r.method} ${cut(r.path, 300)} {${headers}}${body}`;
}

/** How long any request may take before the campaign calls it a hang. */
export const DEADLINE_MS = 10_000;
/** What the client reads of an answer at most; an event stream is cut after its first bytes. */
const MAX_BODY = 16 * 1024 * 1024;

/** An event stream is read this far (its first chunk: `retry: 1000`, 13 bytes; a bare stream
 * then says nothing until a commit or the heartbeat), then the connection is dropped. */
const STREAM_READ = 1;

export class HostileClient {
  readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;

  constructor(base: string, maxSockets = 16) {
    const url = new URL(base);
    this.host = url.hostname;
    this.port = Number(url.port);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  send(r: HostileRequest): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers = r.headers.some(([k]) => k.toLowerCase() === 'host') ? [] : ['Host', `${this.host}:${this.port}`];
      for (const [k, v] of r.headers) headers.push(k, v);
      let req: http.ClientRequest;
      try {
        req = http.request({
          host: this.host,
          port: this.port,
          method: r.method,
          path: r.path,
          headers,
          setHost: false,
          agent: r.fresh ? false : this.agent,
        });
      } catch (e) {
        // node:http refused to send it (a character it will not write): the generator's fault.
        return reject(new Error(`node:http will not send ${r.method} ${r.path.slice(0, 200)}: ${(e as Error).message}`));
      }
      // What a kept-alive socket carried before, to name the request that left it broken.
      let before = '';
      const timer = setTimeout(() => {
        req.destroy();
        reject(new Error(`no answer within ${DEADLINE_MS} ms (a hang)${before ? `; the socket's previous request: ${before}` : ''}`));
      }, DEADLINE_MS);
      req.on('socket', (socket) => {
        const s = socket as typeof socket & { [LAST]?: string };
        before = s[LAST] ?? '';
        s[LAST] = `${describeRequest(r).slice(0, 400)} (no answer yet)`;
      });
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(
          new Error(
            `the connection failed before a whole answer: ${e.message}${before ? `; the socket's previous request: ${before}` : ''}`,
          ),
        );
      });
      req.on('response', (res) => {
        (res.socket as typeof res.socket & { [LAST]?: string })[LAST] =
          `${describeRequest(r).slice(0, 400)} -> ${res.statusCode} connection: ${res.headers.connection ?? '(none)'}`;
        const chunks: Buffer[] = [];
        let size = 0;
        const stream = /^text\/event-stream/.test(res.headers['content-type'] ?? '');
        const done = (cut: boolean) => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), cut });
        };
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          size += c.length;
          if ((stream && size >= STREAM_READ) || size > MAX_BODY) {
            // A short read, then the client goes away: the server must let the stream go.
            res.removeAllListeners('end');
            res.removeAllListeners('error');
            req.destroy();
            done(true);
          }
        });
        res.on('end', () => done(false));
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(new Error(`the answer broke off: ${e.message}`));
        });
      });
      if (r.body !== undefined) req.end(r.body);
      else req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** One answer read off a raw socket. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Sends `bytes` on a new socket, half-closes it, and reads answers until the server closes it. */
export function sendRaw(base: string, bytes: Buffer): Promise<{ answers: RawAnswer[]; rest: Buffer }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    const deadline = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server neither answered nor closed within ${DEADLINE_MS} ms (a hang)`));
    }, DEADLINE_MS);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('close', () => {
      clearTimeout(deadline);
      try {
        resolve(parseAnswers(Buffer.concat(chunks)));
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
    // A reset after the answer is written is how some refusals end; what arrived is judged.
    socket.on('error', () => undefined);
    socket.end(bytes);
  });
}

/** HTTP/1.1 answers, one after another, as far as they are whole: Content-Length or chunked
 * bodies, 1xx and 304 without one. */
export function parseAnswers(data: Buffer): { answers: RawAnswer[]; rest: Buffer } {
  const answers: RawAnswer[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = data.subarray(at, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
    if (!m) throw new Error(`not an HTTP/1.1 answer: ${JSON.stringify(data.subarray(at, at + 200).toString('latin1'))}`);
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    let bodyStart = end + 4;
    let body: Buffer = Buffer.alloc(0);
    if (status >= 200 && status !== 204 && status !== 304) {
      if (headers['content-length'] !== undefined) {
        const length = Number(headers['content-length']);
        if (data.length < bodyStart + length) break;
        body = data.subarray(bodyStart, bodyStart + length);
        bodyStart += length;
      } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
        const parts: Buffer[] = [];
        let p = bodyStart;
        let whole = false;
        for (;;) {
          const eol = data.indexOf('\r\n', p);
          if (eol < 0) break;
          const size = parseInt(data.subarray(p, eol).toString('latin1'), 16);
          if (!Number.isFinite(size)) throw new Error('a bad chunk size in an answer');
          if (size === 0) {
            const trailerEnd = data.indexOf('\r\n', eol + 2);
            if (trailerEnd < 0) break;
            p = trailerEnd + 2;
            whole = true;
            break;
          }
          if (data.length < eol + 2 + size + 2) break;
          parts.push(data.subarray(eol + 2, eol + 2 + size));
          p = eol + 2 + size + 2;
        }
        if (!whole) break;
        body = Buffer.concat(parts);
        bodyStart = p;
      } else {
        // Until the connection closes.
        body = data.subarray(bodyStart);
        bodyStart = data.length;
      }
    }
    answers.push({ status, headers, body });
    at = bodyStart;
  }
  return { answers, rest: data.subarray(at) };
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;
/** Statuses HTTP defines for a request refused as a whole, which the service sends with the
 * code BadRequest (README, Decisions): malformed (400), too slow (408), a URL over the cap
 * (414), headers over the limit (431). The parser's answers carry no Cache-Control. */
const PARSER_STATUSES = new Set([400, 408, 414, 431]);

export interface Expectations {
  method: string;
  /** Headers as sent, for the X-Request-Id echo. */
  headers?: [string, string][];
  /** Validates a 2xx JSON body; returns a problem or undefined. */
  validate?: (status: number, json: unknown) => string | undefined;
  /** The media types documented for a 2xx answer, where JSON is not the only one. */
  documentedTypes?: (status: number) => string[];
}

/** What is wrong with an answer under SPEC §6/§7, or undefined when it is fine. */
export function problemWith(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
  cut: boolean,
  e: Expectations,
) {
  const header = (name: string): string | undefined => {
    const v = headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  const head = e.method === 'HEAD';
  if (status >= 500) return `a ${status} (SPEC §7: no request gets a 5xx): ${body.subarray(0, 300).toString()}`;
  if (status < 200 || (status >= 300 && status < 400 && status !== 304)) return `status ${status} is neither 2xx, 304 nor 4xx`;
  const type = header('content-type') ?? '';
  if (status === 304) return body.length ? 'a 304 with a body' : undefined;
  if (status < 300) {
    if (/^text\/event-stream/.test(type)) return e.method === 'GET' || head ? undefined : `an event stream answering ${e.method}`;
    if (!/^application\/json/.test(type)) {
      const media = type.split(';')[0]!.trim();
      return media && e.documentedTypes?.(status).includes(media) ? undefined : `a ${status} of type ${type || '(none)'}, not JSON`;
    }
    if (head) return body.length ? 'an answer to HEAD with a body' : undefined;
    if (cut) return undefined;
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return `a ${status} whose body is not JSON: ${body.subarray(0, 200).toString()}`;
    }
    return e.validate?.(status, json);
  }
  // 4xx: the envelope, with a code whose status this is.
  const requestId = header('x-request-id');
  if (!requestId) return `a ${status} without X-Request-Id`;
  if (!/^application\/json/.test(type)) return `a ${status} of type ${type || '(none)'}, not the JSON envelope`;
  if (status === 429 && !/^\d+$/.test(header('retry-after') ?? '')) return 'a 429 without Retry-After';
  const fromParser = PARSER_STATUSES.has(status) && header('cache-control') === undefined;
  if (!fromParser && e.headers) {
    const sent = e.headers.filter(([k]) => k.toLowerCase() === 'x-request-id').map(([, v]) => v);
    if (sent.length === 1 && REQUEST_ID_RE.test(sent[0]!) && requestId !== sent[0])
      return `X-Request-Id ${requestId} is not the one sent, ${sent[0]}`;
  }
  if (head) {
    if (body.length) return 'an answer to HEAD with a body';
    return Object.values(ERROR_STATUS).includes(status as never) || PARSER_STATUSES.has(status)
      ? undefined
      : `status ${status} is in no SPEC §7 row`;
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return `a ${status} whose body is not JSON: ${body.subarray(0, 200).toString()}`;
  }
  return envelopeProblem(status, json, requestId);
}

/** What is wrong with a §7 envelope answering `status`. */
export function envelopeProblem(status: number, json: unknown, requestId: string | undefined): string | undefined {
  const show = JSON.stringify(json).slice(0, 300);
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return `a ${status} whose body is no envelope: ${show}`;
  const keys = Object.keys(json);
  if (keys.length !== 1 || keys[0] !== 'error') return `a ${status} whose body is no envelope: ${show}`;
  const err = (json as { error: unknown }).error;
  if (typeof err !== 'object' || err === null) return `a ${status} whose error is not an object: ${show}`;
  const f = err as Record<string, unknown>;
  if (Object.keys(f).sort().join() !== 'code,hint,message,request_id,retryable') return `envelope fields ${Object.keys(f).join()}: ${show}`;
  if (typeof f.message !== 'string' || typeof f.hint !== 'string' || typeof f.retryable !== 'boolean' || typeof f.request_id !== 'string')
    return `envelope field types: ${show}`;
  if (typeof f.code !== 'string' || !(f.code in ERROR_STATUS)) return `code ${String(f.code)} is in no SPEC §7 row: ${show}`;
  const code = f.code as ErrorCode;
  if (ERROR_STATUS[code] !== status && !(code === 'BadRequest' && PARSER_STATUSES.has(status)))
    return `code ${code} is a ${ERROR_STATUS[code]}, answered as ${status}: ${show}`;
  if (requestId !== undefined && f.request_id !== requestId) return `request_id ${f.request_id} is not X-Request-Id ${requestId}`;
  return undefined;
}

/** Runs `tasks` with at most `limit` in flight; every result, in order. */
export async function bounded<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}
