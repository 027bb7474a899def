// A subscriber to the registry's commit stream (SPEC §8) on Node's fetch: typed commit events,
// in order and exactly once across reconnects. It starts after the head as of `start()` (or
// after `from`), remembers the last version it delivered and resumes from it with
// Last-Event-ID whenever the connection ends: the server closing it (a restart, `event:
// lagged`), a network failure, or silence longer than `idleTimeoutMs` (heartbeats stopped: a
// half-open connection). Reconnects back off exponentially with jitter from the server's
// `retry:` or `initialMs`, doubling up to `maxMs`, and start over after a connection succeeds.
// A 4xx answer (a bad filter, a resume point past the head, a wrong URL) is permanent and ends
// the subscription, except 429 and 503, which are retried after their Retry-After.
import { SseParser } from './sse-parser.js';

/** One commit, as the stream sends it (`changed` narrowed by the filter, at most 100 ids). */
export interface CommitEventData {
  version: number;
  hash: string;
  prev_hash: string | null;
  committed_at: string;
  changed: string[];
  /** How many descriptors the commit changed (that match the filter), `changed` listing the first 100. */
  changed_count: number;
}

/** `event: reset`: the resume point is older than the service replays. The stream goes on live
 * after this head; what happened before it is to be reconciled from `/registry/head`. */
export interface ResetEventData {
  version: number;
  hash: string;
  reason?: string;
}

export interface BackoffOptions {
  /** The first delay, doubled at each failed attempt; a server's `retry:` replaces it. Default 250 ms. */
  initialMs?: number;
  /** The longest delay. Default 10 s. */
  maxMs?: number;
  /** Random numbers in [0, 1), for the jitter. Default Math.random. */
  random?: () => number;
}

export interface RetryInfo {
  /** Failed attempts in a row before this one (0 after a connection that was accepted). */
  attempt: number;
  /** How long the subscriber waits before connecting again. */
  delayMs: number;
}

export interface SubscribeOptions {
  /** The registry's base URL (as given to the CLI's --url); the stream is at registry/stream under it. */
  url: string | URL;
  /** A filter expression (SPEC §11): only commits that touched a matching descriptor. */
  filter?: string | undefined;
  /** Only commits that touched a descriptor of this kind. */
  kind?: string | undefined;
  /** Start after this version (commits from+1 on are replayed). Default: the head when the
   * subscriber starts, read from registry/head, so that no commit is missed even if the
   * connection drops before the first event. */
  from?: number | undefined;
  /** Each commit, once, in version order. The next event waits for a returned promise (a slow
   * handler makes the server drop the connection as lagged, and the subscriber resumes). A
   * handler that throws ends the subscription with its error. */
  onCommit(e: CommitEventData): void | Promise<void>;
  onReset?(head: ResetEventData): void | Promise<void>;
  /** The server dropped this subscriber for falling behind; it resumes by itself. */
  onLagged?(): void;
  /** A connection was accepted; `resumeFrom` is the version it resumes after. */
  onOpen?(info: { resumeFrom: number | undefined; reconnect: boolean }): void;
  /** A connection failed or ended (transient); the subscriber tries again after `retry.delayMs`. */
  onError?(err: Error, retry: RetryInfo): void;
  /** Aborting it stops the subscriber, as `stop()` does. */
  signal?: AbortSignal | undefined;
  backoff?: BackoffOptions | undefined;
  /** Reconnect when nothing (not even a heartbeat comment) arrives for this long; 0: never.
   * Default 60 s, four heartbeats at the service's default period. */
  idleTimeoutMs?: number | undefined;
  /** Headers sent with every request (an Authorization, say). */
  headers?: Record<string, string> | undefined;
  /** The fetch to use (tests). Default: the global fetch. */
  fetch?: typeof fetch | undefined;
}

/** The registry refused the subscription for good (a 4xx other than 429/503, or an answer that
 * is not an event stream): retrying would get the same answer. */
export class StreamRefusedError extends Error {
  override name = 'StreamRefusedError';
  constructor(
    readonly status: number,
    /** The error envelope's code (`BadRequest`, `NotFound`…), or `NotAnEventStream`. */
    readonly code: string,
    /** The server's own words (the envelope's message). */
    readonly detail: string,
    readonly hint?: string,
  ) {
    super(`${status} ${code}: ${detail}${hint ? ` (hint: ${hint})` : ''}`);
  }
}

/** The stream sent something this client cannot read as the protocol says (permanent). */
export class StreamProtocolError extends Error {
  override name = 'StreamProtocolError';
}

/** A transient failure answered with Retry-After (429, 503). */
class RetryAfterError extends Error {
  constructor(
    message: string,
    readonly delayMs: number | undefined,
  ) {
    super(message);
  }
}

/** An error thrown by one of the caller's handlers: it ends the subscription as it is. */
class HandlerError extends Error {
  constructor(readonly error: unknown) {
    super('a handler threw', { cause: error });
  }
}

export const DEFAULT_BACKOFF = { initialMs: 250, maxMs: 10_000 } as const;
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** The least initial delay a server's `retry:` may set. */
const MIN_RETRY_MS = 50;

/** The delay before attempt `attempt` (0-based): "equal jitter" over an exponential ceiling,
 * min(max, initial·2^attempt), so a delay lies in [ceiling/2, ceiling): never zero, never in step
 * with other clients that failed at the same moment. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 52));
  return Math.floor(ceiling / 2 + (random() * ceiling) / 2);
}

/** A Retry-After header in milliseconds (delta-seconds or an HTTP date), or undefined. */
export function retryAfterMs(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^[0-9]+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The commit event's data, checked; throws StreamProtocolError on anything else. */
export function parseCommitEvent(data: string): CommitEventData {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    throw new StreamProtocolError(`a commit event whose data is not JSON: ${data.slice(0, 200)}`);
  }
  const e = v as Partial<Record<keyof CommitEventData, unknown>> | null;
  if (
    typeof e !== 'object' ||
    e === null ||
    !isInt(e.version) ||
    typeof e.hash !== 'string' ||
    !(e.prev_hash === null || typeof e.prev_hash === 'string') ||
    typeof e.committed_at !== 'string' ||
    !Array.isArray(e.changed) ||
    !e.changed.every((id) => typeof id === 'string') ||
    !isInt(e.changed_count)
  )
    throw new StreamProtocolError(
      `a commit event that is not {version, hash, prev_hash, committed_at, changed, changed_count}: ${data.slice(0, 200)}`,
    );
  return {
    version: e.version,
    hash: e.hash,
    prev_hash: e.prev_hash,
    committed_at: e.committed_at,
    changed: e.changed,
    changed_count: e.changed_count,
  };
}

function parseResetEvent(data: string): ResetEventData {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    throw new StreamProtocolError(`a reset event whose data is not JSON: ${data.slice(0, 200)}`);
  }
  const e = v as { version?: unknown; hash?: unknown; reason?: unknown } | null;
  if (typeof e !== 'object' || e === null || !isInt(e.version) || typeof e.hash !== 'string')
    throw new StreamProtocolError(`a reset event that is not {version, hash}: ${data.slice(0, 200)}`);
  return { version: e.version, hash: e.hash, ...(typeof e.reason === 'string' ? { reason: e.reason } : {}) };
}

/** What a failed fetch says, with its cause (undici's "fetch failed" alone says little). */
function describe(e: unknown): string {
  const err = e as { message?: unknown; cause?: { message?: unknown; code?: unknown } };
  const cause = err.cause;
  if (cause && typeof cause.message === 'string' && cause.message) return cause.message;
  if (cause && typeof cause.code === 'string') return cause.code;
  return typeof err.message === 'string' ? err.message : String(e);
}

/** The error envelope of a refusal: {error: {code, message, hint}}, or the raw text. */
async function envelope(res: Response): Promise<{ code: string; message: string; hint?: string }> {
  const text = await res.text().catch(() => '');
  try {
    const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown; hint?: unknown } }).error;
    if (e && typeof e.message === 'string')
      return {
        code: typeof e.code === 'string' ? e.code : `HTTP${res.status}`,
        message: e.message,
        ...(typeof e.hint === 'string' && e.hint ? { hint: e.hint } : {}),
      };
  } catch {
    // not JSON: the text itself
  }
  return { code: `HTTP${res.status}`, message: text.trim().slice(0, 500) || res.statusText || 'no message' };
}

type Ended = 'ended' | 'lagged';

export class StreamSubscriber {
  private readonly stopper = new AbortController();
  private readonly base: URL;
  private readonly fetch: typeof fetch;
  private readonly random: () => number;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly idleMs: number;
  private resume: number | undefined;
  private serverRetryMs: number | undefined;
  private opened = false;
  private running: Promise<void> | undefined;

  constructor(private readonly options: SubscribeOptions) {
    const url = new URL(options.url);
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    this.base = url;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.random = options.backoff?.random ?? Math.random;
    this.initialMs = options.backoff?.initialMs ?? DEFAULT_BACKOFF.initialMs;
    this.maxMs = options.backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs;
    this.idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    if (options.from !== undefined && !isInt(options.from))
      throw new RangeError(`from must be a version (a non-negative integer), not ${String(options.from)}`);
    this.resume = options.from;
    const signal = options.signal;
    if (signal?.aborted) this.stopper.abort();
    else if (signal) {
      const onAbort = () => this.stop();
      signal.addEventListener('abort', onAbort, { once: true });
      this.stopper.signal.addEventListener('abort', () => signal.removeEventListener('abort', onAbort), { once: true });
    }
  }

  /** The last version delivered (or the reset head): where a reconnect resumes. */
  get lastVersion(): number | undefined {
    return this.resume;
  }

  get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  /** Runs until `stop()` (or the signal), resolving then; rejects with a StreamRefusedError or
   * StreamProtocolError, or with what a handler threw. Calling it again returns the same run. */
  start(): Promise<void> {
    this.running ??= this.run();
    return this.running;
  }

  stop(): void {
    this.stopper.abort();
  }

  private async run(): Promise<void> {
    try {
      await this.loop();
    } catch (e) {
      throw e instanceof HandlerError ? e.error : e;
    } finally {
      this.stopper.abort();
    }
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      let failure: Error;
      let delay: number | undefined;
      try {
        if (this.resume === undefined) this.resume = await this.head();
        const ended = await this.connect(() => (attempt = 0));
        if (ended === 'lagged') this.call(() => this.options.onLagged?.());
        failure = new Error(ended === 'lagged' ? 'dropped by the server for falling behind' : 'the server ended the stream');
      } catch (e) {
        if (e instanceof HandlerError) throw e;
        if (this.stopped) return;
        if (e instanceof StreamRefusedError || e instanceof StreamProtocolError) throw e;
        if (e instanceof RetryAfterError) delay = e.delayMs;
        failure = e instanceof Error ? e : new Error(String(e));
      }
      if (this.stopped) break;
      const base = this.serverRetryMs ?? this.initialMs;
      delay ??= backoffDelay(attempt, base, Math.max(this.maxMs, base), this.random);
      this.call(() => this.options.onError?.(failure, { attempt, delayMs: delay }));
      attempt++;
      await this.sleep(delay);
    }
  }

  /** Runs a caller's handler: what it throws ends the subscription. */
  private call(f: () => void): void {
    try {
      f();
    } catch (e) {
      throw new HandlerError(e);
    }
  }

  private async handle(f: () => void | Promise<void>): Promise<void> {
    try {
      await f();
    } catch (e) {
      throw new HandlerError(e);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.stopper.signal;
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** A request whose signal aborts on stop() and, while `idle.arm()` keeps being called, after
   * `idleTimeoutMs` of silence. */
  private request(): { signal: AbortSignal; arm: () => void; done: () => void } {
    const controller = new AbortController();
    const onStop = () => controller.abort(this.stopper.signal.reason);
    this.stopper.signal.addEventListener('abort', onStop, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      if (this.idleMs <= 0) return;
      clearTimeout(timer);
      timer = setTimeout(
        () => controller.abort(new Error(`nothing received for ${this.idleMs} ms (no heartbeat): reconnecting`)),
        this.idleMs,
      );
    };
    const done = () => {
      clearTimeout(timer);
      this.stopper.signal.removeEventListener('abort', onStop);
    };
    arm();
    return { signal: controller.signal, arm, done };
  }

  /** Sorts an answer that is not a 200: permanent, Retry-After or transient. */
  private async refusal(res: Response, what: string): Promise<Error> {
    const e = await envelope(res);
    if (res.status === 429 || res.status === 503)
      return new RetryAfterError(`${what}: ${res.status} ${e.code}: ${e.message}`, retryAfterMs(res.headers.get('retry-after')));
    if (res.status >= 400 && res.status < 500) return new StreamRefusedError(res.status, e.code, e.message, e.hint);
    return new Error(`${what}: ${res.status} ${e.code}: ${e.message}`);
  }

  /** The head's version: where a subscriber with no `from` starts. */
  private async head(): Promise<number> {
    const req = this.request();
    try {
      let res: Response;
      try {
        res = await this.fetch(new URL('registry/head', this.base), {
          headers: { accept: 'application/json', ...this.options.headers },
          signal: req.signal,
        });
      } catch (e) {
        throw new Error(`GET registry/head: ${describe(req.signal.reason ?? e)}`, { cause: e });
      }
      if (res.status !== 200) throw await this.refusal(res, 'GET registry/head');
      const head = (await res.json().catch(() => undefined)) as { version?: unknown } | undefined;
      if (!isInt(head?.version)) throw new StreamProtocolError('registry/head answered without a version');
      return head.version;
    } finally {
      req.done();
    }
  }

  /** One connection, read to its end; `accepted` runs once the server has taken it. */
  private async connect(accepted: () => void): Promise<Ended> {
    const url = new URL('registry/stream', this.base);
    if (this.options.filter !== undefined) url.searchParams.set('filter', this.options.filter);
    if (this.options.kind !== undefined) url.searchParams.set('kind', this.options.kind);
    const headers: Record<string, string> = { accept: 'text/event-stream', 'cache-control': 'no-cache', ...this.options.headers };
    if (this.resume !== undefined) headers['last-event-id'] = String(this.resume);
    const req = this.request();
    const parser = new SseParser();
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      let res: Response;
      try {
        res = await this.fetch(url, { headers, signal: req.signal });
      } catch (e) {
        throw new Error(`cannot connect to ${url.origin}: ${describe(req.signal.reason ?? e)}`, { cause: e });
      }
      if (res.status !== 200) throw await this.refusal(res, 'GET registry/stream');
      const type = res.headers.get('content-type') ?? '';
      if (!/^text\/event-stream\b/i.test(type) || !res.body) {
        await res.body?.cancel().catch(() => undefined);
        throw new StreamRefusedError(
          res.status,
          'NotAnEventStream',
          `${url.pathname} answered ${type || 'no content-type'}, not text/event-stream`,
        );
      }
      accepted();
      this.call(() => this.options.onOpen?.({ resumeFrom: this.resume, reconnect: this.opened }));
      this.opened = true;
      reader = res.body.getReader();
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw new Error(`the stream broke: ${describe(req.signal.reason ?? e)}`, { cause: e });
        }
        if (chunk.done) {
          parser.end();
          return 'ended';
        }
        req.arm();
        for (const item of parser.feed(chunk.value)) {
          // A retry: of 0 would make a server that closes at once a busy loop.
          if (item.kind === 'retry') this.serverRetryMs = Math.max(MIN_RETRY_MS, item.ms);
          else if (item.kind === 'event') {
            if (item.type === 'commit') {
              const e = parseCommitEvent(item.data);
              // Never twice: a resume starts after the resume point.
              if (this.resume !== undefined && e.version <= this.resume) continue;
              await this.handle(() => this.options.onCommit(e));
              this.resume = e.version;
            } else if (item.type === 'reset') {
              const head = parseResetEvent(item.data);
              await this.handle(() => this.options.onReset?.(head));
              this.resume = head.version;
            } else if (item.type === 'lagged') return 'lagged';
            // Other event types are for other clients.
          }
          if (this.stopped) return 'ended';
        }
      }
    } finally {
      req.done();
      await reader?.cancel().catch(() => undefined);
    }
  }
}

/** Starts a subscriber: `const sub = subscribe({...}); … sub.stop(); await sub.done`. */
export function subscribe(options: SubscribeOptions): { subscriber: StreamSubscriber; done: Promise<void>; stop: () => void } {
  const subscriber = new StreamSubscriber(options);
  return { subscriber, done: subscriber.start(), stop: () => subscriber.stop() };
}
