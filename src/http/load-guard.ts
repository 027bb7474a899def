// Overload shedding and write limits (README → Operations → Limits and overload), as route
// hooks so that each route pays only for what applies to it:
//
// - every read and write route: requests in flight and event-loop delay. Writes are shed (503
//   `Unavailable`, Retry-After) at lower thresholds than reads, so reads keep answering while
//   writes are refused. Operator routes (outside /registry/) and the commit stream (capped by
//   its hub) are not shed: readiness must answer under overload;
// - every route with a body, operator routes included: the bytes of request bodies being
//   received, per client address (429) and in all (503), reserved from Content-Length before
//   any byte of the body is read, so that stalled uploads cannot fill memory;
// - write routes: a token bucket per client address, taken before the body is read (429
//   `RateLimited`, Retry-After), and one per signer. A signer's bucket is checked before the
//   request runs but charged only for requests whose approvals verified (a 2xx, or an audited
//   409/410 on the approvals route): the signer id in a body is a claim until its signature
//   verifies, and charging claims would let anyone without a key lock a signer out;
// - write routes: a bucket of refused-body KiB per client address, charged when a write is
//   refused (400, 413, 415, 422) and checked before the next body is read (429): parsing and
//   hashing a body nobody can sign costs in proportion to its bytes, so this bounds what one
//   address without a key can make the service spend.
//
// The read path pays one hook call and three comparisons when the requests in flight are counted
// elsewhere (the metrics' counter, given as `inFlight`), else also a counter and a 'close' listener.
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { ServerResponse } from 'node:http';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
} from 'fastify';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { RegistryError } from '../core/errors.js';
import { addressKey, limitConnections, type ConnectionRefusals, type Limits } from './limits.js';
import { TokenBuckets } from './token-bucket.js';

/** The routes that change state: rate limited per address and per signer, shed first. */
const WRITE_ROUTES = new Set(['/registry/proposals', '/registry/proposals/:id/approvals']);
/** The one write route whose refusals 409 and 410 come after its approvals verified (and are audited). */
const APPROVAL_ROUTE = '/registry/proposals/:id/approvals';
/** Not shed: the stream has its own caps, and operator routes must answer under overload. */
const UNGUARDED = /^\/registry\/stream$|^\/(?!registry\/)/;

/** How often the event-loop delay is read, and the timer's resolution. */
const SAMPLE_MS = 500;
const RESOLUTION_MS = 10;
/** Bucket maps drop refilled keys this often. */
const SWEEP_EVERY_SAMPLES = 20;
/** What a request with a body reserves at least, whatever its length: its objects and buffers. */
export const MIN_BODY_RESERVATION = 16 * 1024;

/** Requests refused by this guard, since start, by reason. */
export interface GuardRefusals {
  /** 503: reads shed (in flight or event-loop delay). */
  readsShed: number;
  /** 503: writes shed. */
  writesShed: number;
  /** 429: an address's write rate. */
  addressRate: number;
  /** 429: a signer's write rate. */
  signerRate: number;
  /** 429: an address's bodies in progress. */
  addressBodies: number;
  /** 503: all bodies in progress. */
  bodies: number;
  /** 429: an address's refused writes. */
  addressRefused: number;
}

export interface LoadGuardOptions {
  logger?: Logger | undefined;
  /** The body limit of one request (app.ts): what a body of unknown length reserves. */
  bodyLimit?: number;
  /** Requests in flight, counted by someone else on every route the guard sees (the metrics'
   * http_requests_in_flight): the guard then reads it instead of counting too. */
  inFlight?: { readonly inFlight: number };
}

export class LoadGuard {
  /** Bytes reserved by request bodies being received or handled. */
  bodyBytes = 0;
  /** The event-loop delay over the last sample, ms (mean, less the timer's resolution). */
  eventLoopDelayMs = 0;
  /** Requests in flight; set up by the constructor. */
  private readonly counter: { inFlight: number };
  /** Whether the guard counts requests in flight itself. */
  private readonly counts: boolean;
  readonly refused: GuardRefusals = {
    readsShed: 0,
    writesShed: 0,
    addressRate: 0,
    signerRate: 0,
    addressBodies: 0,
    bodies: 0,
    addressRefused: 0,
  };
  /** Sockets refused at accept; set once installed. */
  connections: { refused: ConnectionRefusals; maxConnections: number; open: () => number } | undefined;

  private readonly readInFlight: number;
  private readonly writeInFlight: number;
  private readsDelayed = false;
  private writesDelayed = false;
  private readonly histogram: IntervalHistogram | undefined;
  private readonly timer: NodeJS.Timeout | undefined;
  private samples = 0;
  /** Waiting for the next sample (nextSample). */
  private sampleWaiters: (() => void)[] = [];
  private readonly byAddress: TokenBuckets | undefined;
  private readonly bySigner: TokenBuckets | undefined;
  private readonly refusedByAddress: TokenBuckets | undefined;
  private readonly bodyBytesByAddress = new Map<string, number>();
  private readonly logger: Logger | undefined;
  private readonly bodyLimit: number;
  /** Shared by every guarded read: no closure per request. */
  private readonly leave = (): void => {
    this.counter.inFlight--;
  };

  constructor(
    readonly limits: Limits,
    options: LoadGuardOptions = {},
  ) {
    this.logger = options.logger;
    this.bodyLimit = options.bodyLimit ?? 1024 * 1024;
    this.counts = options.inFlight === undefined;
    this.counter = options.inFlight ?? { inFlight: 0 };
    this.readInFlight = limits.shedReadsInFlight || Infinity;
    this.writeInFlight = limits.shedWritesInFlight || Infinity;
    if (limits.writeRatePerAddress > 0) this.byAddress = new TokenBuckets(limits.writeRatePerAddress, limits.writeBurstPerAddress);
    if (limits.writeRatePerSigner > 0) this.bySigner = new TokenBuckets(limits.writeRatePerSigner, limits.writeBurstPerSigner);
    if (limits.refusedKibPerAddress > 0)
      this.refusedByAddress = new TokenBuckets(limits.refusedKibPerAddress, limits.refusedBurstKibPerAddress);
    const delays = limits.shedReadsEventLoopDelayMs > 0 || limits.shedWritesEventLoopDelayMs > 0;
    if (delays) {
      this.histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      this.histogram.enable();
    }
    if (delays || this.byAddress || this.bySigner || this.refusedByAddress) {
      this.timer = setInterval(() => this.sample(), SAMPLE_MS);
      this.timer.unref();
    }
  }

  /** Requests in flight now. */
  get inFlight(): number {
    return this.counter.inFlight;
  }

  /** Resolves once the guard has next sampled the event-loop delay (and swept its buckets). */
  nextSample(): Promise<void> {
    return new Promise((resolve) => this.sampleWaiters.push(resolve));
  }

  /** Why writes are being shed now, or undefined: what readiness reports (`write` false). */
  overloaded(): string | undefined {
    const { shedWritesEventLoopDelayMs: delay, shedWritesInFlight: inFlight, maxBodyBytesInFlight: bodies } = this.limits;
    if (this.writesDelayed)
      return `overloaded: event-loop delay ${Math.round(this.eventLoopDelayMs)} ms (writes are shed above ${delay} ms)`;
    if (this.counter.inFlight >= this.writeInFlight)
      return `overloaded: ${this.counter.inFlight} requests in flight (writes are shed from ${inFlight})`;
    if (this.bodyBytes + this.bodyLimit > bodies)
      return `overloaded: request bodies in progress hold ${this.bodyBytes} bytes (at most ${bodies})`;
    return undefined;
  }

  /** Adds the hooks to every route registered after this (call before the routes), and the
   * connection limits to the app's server. */
  install<L extends FastifyBaseLogger>(
    app: FastifyInstance<Server, RawRequestDefaultExpression<Server>, RawReplyDefaultExpression<Server>, L>,
  ): void {
    this.connections = limitConnections(app.server, this.limits, this.logger);
    app.addHook('onRoute', (route) => {
      const url = route.url ?? route.path;
      if (url === undefined) return;
      const post = [route.method].flat().includes('POST');
      if (UNGUARDED.test(url)) {
        // Never shed, but a body is a body: the operator's POSTs reserve theirs too.
        if (post) route.onRequest = prepend(route.onRequest, this.bodyOnlyGate);
        return;
      }
      if (!post) {
        // With read shedding off (both thresholds 0), reads pay nothing at all.
        if (this.readInFlight !== Infinity || this.limits.shedReadsEventLoopDelayMs > 0 || this.counts)
          route.onRequest = prepend(route.onRequest, this.readGate);
      } else if (!WRITE_ROUTES.has(url)) {
        route.onRequest = prepend(route.onRequest, this.bodyGate);
      } else {
        route.onRequest = prepend(route.onRequest, this.writeGate(url === APPROVAL_ROUTE));
        if (this.bySigner) route.preHandler = prepend(route.preHandler, this.signerGate);
      }
    });
    app.addHook('onClose', (_app, done) => {
      this.close();
      done();
    });
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram?.disable();
  }

  // -- hooks ------------------------------------------------------------------------------------

  readonly readGate = (_request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    if (this.counter.inFlight >= this.readInFlight || this.readsDelayed) return done(this.shed('readsShed'));
    if (this.counts) {
      this.counter.inFlight++;
      reply.raw.on('close', this.leave);
    }
    done();
  };

  /** A read with a body (POST descriptors:batch): shed like a read, and its body reserved. */
  readonly bodyGate = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    if (this.counter.inFlight >= this.readInFlight || this.readsDelayed) return done(this.shed('readsShed'));
    const address = addressKey(request.socket.remoteAddress);
    const bytes = this.reserveBody(request, reply, address);
    if (bytes instanceof RegistryError) return done(bytes);
    if (this.counts) this.counter.inFlight++;
    reply.raw.on('close', () => {
      if (this.counts) this.counter.inFlight--;
      this.releaseBody(address, bytes);
    });
    done();
  };

  /** A route that is never shed but takes a body (an operator's): only its body is reserved. */
  readonly bodyOnlyGate = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    const address = addressKey(request.socket.remoteAddress);
    const bytes = this.reserveBody(request, reply, address);
    if (bytes instanceof RegistryError) return done(bytes);
    reply.raw.on('close', () => this.releaseBody(address, bytes));
    done();
  };

  private writeGate(approvals: boolean) {
    return (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
      if (this.counter.inFlight >= this.writeInFlight || this.writesDelayed) return done(this.shed('writesShed'));
      const address = addressKey(request.socket.remoteAddress);
      const refusedWait = this.refusedByAddress?.wait(address) ?? 0;
      if (refusedWait > 0) {
        this.refused.addressRefused++;
        reply.header('connection', 'close');
        return done(
          new RegistryError(
            'RateLimited',
            `too many refused writes from ${address}: at most ${this.limits.refusedKibPerAddress} KiB of refused bodies a second`,
            {
              retryAfter: Math.ceil(refusedWait),
              hint: 'fix the requests that were refused, then retry after the Retry-After delay',
              reason: 'refused_per_address',
            },
          ),
        );
      }
      const wait = this.byAddress?.tryTake(address) ?? 0;
      if (wait > 0) {
        this.refused.addressRate++;
        return done(
          new RegistryError('RateLimited', `too many writes from ${address}: at most ${this.limits.writeRatePerAddress} a second`, {
            retryAfter: Math.ceil(wait),
            hint: 'retry after the Retry-After delay',
            reason: 'write_rate_address',
          }),
        );
      }
      const bytes = this.reserveBody(request, reply, address);
      if (bytes instanceof RegistryError) return done(bytes);
      if (this.counts) this.counter.inFlight++;
      const res = reply.raw;
      res.on('close', () => {
        if (this.counts) this.counter.inFlight--;
        this.releaseBody(address, bytes);
        if (this.bySigner && charged(res, approvals)) for (const id of signerIds(request.body)) this.bySigner.take(id);
        if (this.refusedByAddress && refusal(res)) this.refusedByAddress.take(address, Math.max(1, Math.ceil(bodyLength(request) / 1024)));
      });
      done();
    };
  }

  /** Before the handler, once the body is parsed and valid: is any signer it names out of tokens? */
  readonly signerGate = (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    for (const id of signerIds(request.body)) {
      const wait = this.bySigner!.wait(id);
      if (wait > 0) {
        this.refused.signerRate++;
        return done(
          new RegistryError('RateLimited', `too many writes by signer ${id}: at most ${this.limits.writeRatePerSigner} a second`, {
            retryAfter: Math.ceil(wait),
            hint: 'retry after the Retry-After delay',
            reason: 'write_rate_signer',
          }),
        );
      }
    }
    done();
  };

  // -- accounting -------------------------------------------------------------------------------

  private shed(reason: 'readsShed' | 'writesShed'): RegistryError {
    this.refused[reason]++;
    const why =
      (reason === 'writesShed' ? this.overloaded() : undefined) ??
      `overloaded: ${this.counter.inFlight} requests in flight, event-loop delay ${Math.round(this.eventLoopDelayMs)} ms`;
    return new RegistryError('Unavailable', `the registry is ${why}; writes are shed before reads`, {
      retryAfter: 1,
      hint: 'retry after the Retry-After delay',
      reason: 'overloaded',
    });
  }

  /** Reserves the body's bytes for `address`: its Content-Length (the body limit when it has
   * none: chunked), at least MIN_BODY_RESERVATION. Answers the bytes, or the refusal. A refused
   * body is never read: the connection closes after the answer (Node would otherwise read and
   * drop the rest of the body, which costs what the refusal saves). */
  private reserveBody(request: FastifyRequest, reply: FastifyReply, address: string): number | RegistryError {
    const declared = Number(request.headers['content-length']);
    const bytes = Math.max(
      MIN_BODY_RESERVATION,
      Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, this.bodyLimit) : this.bodyLimit,
    );
    const held = this.bodyBytesByAddress.get(address) ?? 0;
    const over = held + bytes > this.limits.maxBodyBytesPerAddress || this.bodyBytes + bytes > this.limits.maxBodyBytesInFlight;
    if (over) reply.header('connection', 'close');
    if (held + bytes > this.limits.maxBodyBytesPerAddress) {
      this.refused.addressBodies++;
      return new RegistryError('RateLimited', `${address} has too many request bodies in progress (${held} bytes)`, {
        retryAfter: 1,
        hint: 'send one request at a time, and send each body whole',
        reason: 'bodies_per_address',
      });
    }
    if (this.bodyBytes + bytes > this.limits.maxBodyBytesInFlight) {
      this.refused.bodies++;
      return new RegistryError('Unavailable', 'the registry is receiving as many request bodies as it holds', {
        retryAfter: 1,
        hint: 'retry after the Retry-After delay',
        reason: 'bodies_in_flight',
      });
    }
    this.bodyBytesByAddress.set(address, held + bytes);
    this.bodyBytes += bytes;
    return bytes;
  }

  private releaseBody(address: string, bytes: number): void {
    this.bodyBytes -= bytes;
    const left = this.bodyBytesByAddress.get(address)! - bytes;
    if (left <= 0) this.bodyBytesByAddress.delete(address);
    else this.bodyBytesByAddress.set(address, left);
  }

  private sample(): void {
    const h = this.histogram;
    if (h !== undefined) {
      if (h.count > 0) this.eventLoopDelayMs = Math.max(0, h.mean / 1e6 - RESOLUTION_MS);
      h.reset();
      const { shedReadsEventLoopDelayMs: reads, shedWritesEventLoopDelayMs: writes } = this.limits;
      const wasDelayed = this.writesDelayed;
      this.readsDelayed = reads > 0 && this.eventLoopDelayMs > reads;
      this.writesDelayed = writes > 0 && this.eventLoopDelayMs > writes;
      if (this.writesDelayed !== wasDelayed)
        this.logger?.warn(
          { event_loop_delay_ms: Math.round(this.eventLoopDelayMs), shed_reads: this.readsDelayed },
          this.writesDelayed ? 'overloaded: shedding writes' : 'no longer overloaded',
        );
    }
    const waiters = this.sampleWaiters;
    this.sampleWaiters = [];
    for (const resolve of waiters) resolve();
    if (++this.samples % SWEEP_EVERY_SAMPLES === 0) {
      this.refusedByAddress?.sweep();
      this.byAddress?.sweep();
      this.bySigner?.sweep();
    }
  }
}

/** The signer ids a write body names: `approvals[].signer_id` or `signer_id`, once each. */
function signerIds(body: unknown): Set<string> {
  const ids = new Set<string>();
  if (typeof body !== 'object' || body === null) return ids;
  const { approvals, signer_id } = body as { approvals?: unknown; signer_id?: unknown };
  if (typeof signer_id === 'string') ids.add(signer_id);
  if (Array.isArray(approvals))
    for (const a of approvals) {
      const id = (a as { signer_id?: unknown } | null)?.signer_id;
      if (typeof id === 'string') ids.add(id);
    }
  return ids;
}

/** Whether an answered write proves its approvals verified: a 2xx; on the approvals route also
 * 409 and 410, which come after verification (README, Decisions: late approvals). */
function charged(res: ServerResponse, approvals: boolean): boolean {
  if (!res.headersSent) return false;
  const s = res.statusCode;
  return s === 200 || s === 201 || (approvals && (s === 409 || s === 410));
}

/** Whether an answered write was refused for what it sent (malformed, too large, not JSON, not
 * signed by anyone who may): what a party without a key can cause. Conflicts (409, 410) and the
 * guard's own refusals (429, 503) are not charged. */
function refusal(res: ServerResponse): boolean {
  const s = res.statusCode;
  return s === 400 || s === 413 || s === 415 || s === 422;
}

/** The bytes a request body took: its Content-Length, or what was read of a chunked body. */
function bodyLength(request: FastifyRequest): number {
  const declared = Number(request.headers['content-length']);
  if (Number.isSafeInteger(declared) && declared >= 0) return declared;
  return request.raw.socket?.bytesRead ?? 0;
}

type Hook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void;

function prepend<T>(existing: T | T[] | undefined, hook: Hook): T[] {
  const list = existing === undefined ? [] : Array.isArray(existing) ? existing : [existing];
  return (list as unknown[]).includes(hook) ? list : [hook as T, ...list];
}
