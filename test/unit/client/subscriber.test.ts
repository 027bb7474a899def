// The stream subscriber against a scripted HTTP server: resume with Last-Event-ID, exactly-once
// delivery, back-off with jitter (deterministic with an injected random), the server's retry:,
// lagged and reset events, Retry-After on 429/503, permanent refusals, idle connections.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  backoffDelay,
  retryAfterMs,
  StreamProtocolError,
  StreamRefusedError,
  StreamSubscriber,
  subscribe,
  type CommitEventData,
  type RetryInfo,
  type SubscribeOptions,
} from '../../../src/client/subscriber.js';

describe('backoffDelay', () => {
  it('doubles from the initial delay up to the cap, jittered within [ceiling/2, ceiling)', () => {
    const low = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((a) => backoffDelay(a, 250, 10_000, () => 0));
    expect(low).toEqual([125, 250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
    const high = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((a) => backoffDelay(a, 250, 10_000, () => 0.999999));
    expect(high).toEqual([249, 499, 999, 1999, 3999, 7999, 9999, 9999, 9999]);
    expect(backoffDelay(3, 250, 10_000, () => 0.5)).toBe(1500);
  });

  it('never overflows, however many attempts', () => {
    expect(backoffDelay(10_000, 250, 10_000, () => 0.5)).toBe(7500);
    for (let a = 0; a < 100; a++) {
      const d = backoffDelay(a, 250, 10_000);
      expect(d).toBeGreaterThanOrEqual(Math.min(10_000, 250 * 2 ** a) / 2);
      expect(d).toBeLessThan(10_000);
    }
  });
});

describe('retryAfterMs', () => {
  it('reads delta-seconds and HTTP dates', () => {
    const now = Date.parse('2026-11-23T10:00:00Z');
    expect(retryAfterMs('5', now)).toBe(5000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Mon, 23 Nov 2026 10:00:07 GMT', now)).toBe(7000);
    expect(retryAfterMs('Mon, 23 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});

const commit = (version: number, changed: string[] = [`svc-${version}`]): CommitEventData => ({
  version,
  hash: `b3:${String(version).padStart(64, '0')}`,
  prev_hash: version === 1 ? null : `b3:${String(version - 1).padStart(64, '0')}`,
  committed_at: `2026-11-23T10:00:0${version % 10}.000Z`,
  changed,
  changed_count: changed.length,
});

const frame = (c: CommitEventData) => `id: ${c.version}\nevent: commit\ndata: ${JSON.stringify(c)}\n\n`;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A server that answers each request with the next scripted handler, and records them. */
class Script {
  readonly requests: { path: string; lastEventId: string | undefined }[] = [];
  private readonly handlers: Handler[] = [];
  private readonly open = new Set<ServerResponse>();
  server: Server | undefined;
  url = '';

  async start(port = 0): Promise<this> {
    this.server = createServer((req, res) => {
      const header = req.headers['last-event-id'];
      this.requests.push({ path: req.url ?? '', lastEventId: typeof header === 'string' ? header : undefined });
      this.open.add(res);
      res.on('close', () => this.open.delete(res));
      const next = this.handlers.shift();
      if (next) next(req, res);
      else res.writeHead(500).end('no more script');
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  answer(...handlers: Handler[]): this {
    this.handlers.push(...handlers);
    return this;
  }

  async stop(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

const head =
  (version: number): Handler =>
  (_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version, hash: 'b3:x' }));

/** An event stream: writes `text` and ends it, or keeps it open when `keepOpen`. */
const stream =
  (text: string, keepOpen = false): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    res.write(text);
    if (!keepOpen) res.end();
  };

const refuse =
  (status: number, code: string, message: string, headers: Record<string, string> = {}): Handler =>
  (_req, res) =>
    res
      .writeHead(status, { 'content-type': 'application/json', ...headers })
      .end(JSON.stringify({ error: { code, message, hint: 'a hint', retryable: false, request_id: 'r' } }));

const scripts: Script[] = [];
afterEach(async () => {
  await Promise.all(scripts.splice(0).map((s) => s.stop()));
});

async function script(port?: number): Promise<Script> {
  const s = await new Script().start(port);
  scripts.push(s);
  return s;
}

/** A subscriber that records everything and stops itself once `until` says so. */
function record(options: Partial<SubscribeOptions> & { url: string }, until: (commits: CommitEventData[]) => boolean) {
  const commits: CommitEventData[] = [];
  const errors: { message: string; retry: RetryInfo }[] = [];
  const events: string[] = [];
  const sub = new StreamSubscriber({
    backoff: { initialMs: 8, maxMs: 100, random: () => 0 },
    ...options,
    onCommit: (e) => {
      commits.push(e);
      events.push(`commit ${e.version}`);
      if (until(commits)) sub.stop();
    },
    onReset: (h) => void events.push(`reset ${h.version}`),
    onLagged: () => void events.push('lagged'),
    onOpen: (o) => void events.push(`open ${o.resumeFrom} ${o.reconnect}`),
    onError: (err, retry) => void errors.push({ message: err.message, retry }),
  });
  return { sub, commits, errors, events, done: sub.start() };
}

describe('StreamSubscriber', () => {
  it('starts after the head, resumes with Last-Event-ID after the server ends the stream, and delivers each commit once', async () => {
    const s = await script();
    s.answer(
      head(4),
      stream(frame(commit(5)) + frame(commit(6)) + 'id: 7\nevent: commit\ndata: {"version":7,'),
      // A server that replays one too many: 6 is not delivered twice.
      stream(frame(commit(6)) + frame(commit(7)) + ': heartbeat\n\n' + frame(commit(8))),
    );
    const r = record({ url: s.url + '/' }, (c) => c.length === 4);
    await r.done;
    expect(r.commits.map((c) => c.version)).toEqual([5, 6, 7, 8]);
    expect(r.commits[0]).toEqual(commit(5));
    expect(s.requests).toEqual([
      { path: '/registry/head', lastEventId: undefined },
      { path: '/registry/stream', lastEventId: '4' },
      { path: '/registry/stream', lastEventId: '6' },
    ]);
    expect(r.events).toEqual(['open 4 false', 'commit 5', 'commit 6', 'open 6 true', 'commit 7', 'commit 8']);
    expect(r.errors).toEqual([{ message: 'the server ended the stream', retry: { attempt: 0, delayMs: 4 } }]);
    expect(r.sub.lastVersion).toBe(8);
  });

  it('sends the filter and kind, and starts after `from` without asking for the head', async () => {
    const s = await script();
    s.answer(stream(frame(commit(3, ['a']))));
    const r = record({ url: s.url, filter: "labels.tier == 'gold'", kind: 'service', from: 2 }, () => true);
    await r.done;
    expect(s.requests).toEqual([{ path: '/registry/stream?filter=labels.tier+%3D%3D+%27gold%27&kind=service', lastEventId: '2' }]);
  });

  it('backs off exponentially while the server is down, then starts over after a connection', async () => {
    const down = await script();
    const port = Number(new URL(down.url).port);
    await down.stop();
    const errors: RetryInfo[] = [];
    let revived: Promise<Script> | undefined;
    const commits: number[] = [];
    const sub = new StreamSubscriber({
      url: down.url,
      from: 0,
      backoff: { initialMs: 4, maxMs: 40, random: () => 0 },
      onCommit: (e) => {
        commits.push(e.version);
        if (commits.length === 2) sub.stop();
      },
      onError: (_e, retry) => {
        errors.push(retry);
        if (errors.length === 6) revived = script(port).then((s) => s.answer(stream(frame(commit(1))), stream(frame(commit(2)))));
      },
    });
    await sub.start();
    await revived;
    expect(commits).toEqual([1, 2]);
    expect(errors.slice(0, 6).map((e) => e.delayMs)).toEqual([2, 4, 8, 16, 20, 20]);
    expect(errors.slice(0, 6).map((e) => e.attempt)).toEqual([0, 1, 2, 3, 4, 5]);
    // After the accepted connection the count starts over.
    expect(errors.at(-1)).toEqual({ attempt: 0, delayMs: 2 });
  });

  it("honours the server's retry: as the initial delay", async () => {
    const s = await script();
    s.answer(stream('retry: 60\n' + frame(commit(1))), stream(frame(commit(2))));
    const r = record({ url: s.url, from: 0, backoff: { initialMs: 1000, random: () => 0 } }, (c) => c.length === 2);
    await r.done;
    expect(r.errors.map((e) => e.retry)).toEqual([{ attempt: 0, delayMs: 30 }]);
  });

  it('reconnects with Last-Event-ID after event: lagged', async () => {
    const s = await script();
    s.answer(stream(frame(commit(1)) + 'event: lagged\ndata: {"reason":"the subscriber fell behind"}\n\n', true), stream(frame(commit(2))));
    const r = record({ url: s.url, from: 0 }, (c) => c.length === 2);
    await r.done;
    expect(r.events).toEqual(['open 0 false', 'commit 1', 'lagged', 'open 1 true', 'commit 2']);
    expect(s.requests.map((q) => q.lastEventId)).toEqual(['0', '1']);
    expect(r.errors[0]?.message).toMatch(/falling behind/);
  });

  it('calls onReset, goes on live, and resumes after the reset head', async () => {
    const s = await script();
    s.answer(
      stream(
        `id: 900\nevent: reset\ndata: ${JSON.stringify({ version: 900, hash: 'b3:h', reason: 'too far back' })}\n\n` + frame(commit(901)),
      ),
      stream(frame(commit(902))),
    );
    const r = record({ url: s.url, from: 1 }, (c) => c.length === 2);
    await r.done;
    expect(r.events).toEqual(['open 1 false', 'reset 900', 'commit 901', 'open 901 true', 'commit 902']);
    expect(s.requests.map((q) => q.lastEventId)).toEqual(['1', '901']);
  });

  it('retries 429 and 503 after their Retry-After', async () => {
    const s = await script();
    s.answer(
      refuse(429, 'RateLimited', 'too many subscriptions', { 'retry-after': '0' }),
      refuse(503, 'Unavailable', 'full', { 'retry-after': '0' }),
      refuse(503, 'Unavailable', 'full, no Retry-After'),
      stream(frame(commit(1))),
    );
    const r = record({ url: s.url, from: 0 }, () => true);
    await r.done;
    // Without Retry-After, the back-off (the third failure in a row).
    expect(r.errors.map((e) => e.retry.delayMs)).toEqual([0, 0, 16]);
    expect(r.errors[0]?.message).toBe('GET registry/stream: 429 RateLimited: too many subscriptions');
  });

  it('retries a 5xx and a failed head request', async () => {
    const s = await script();
    s.answer(refuse(500, 'Internal', 'oops'), head(0), refuse(502, 'BadGateway', 'proxy'), stream(frame(commit(1))));
    const r = record({ url: s.url }, () => true);
    await r.done;
    expect(r.errors.map((e) => e.message)).toEqual(['GET registry/head: 500 Internal: oops', 'GET registry/stream: 502 BadGateway: proxy']);
  });

  it('gives up at once on a 4xx refusal, with the server’s message', async () => {
    const s = await script();
    s.answer(refuse(400, 'BadRequest', 'filter: unexpected end at position 12'));
    const r = record({ url: s.url, from: 0, filter: 'labels.x ==' }, () => true);
    const err = await r.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StreamRefusedError);
    expect(err).toMatchObject({ status: 400, code: 'BadRequest', detail: 'filter: unexpected end at position 12', hint: 'a hint' });
    expect(s.requests).toHaveLength(1);
    expect(r.errors).toEqual([]);
  });

  it('refuses an answer that is not an event stream, and a commit it cannot read', async () => {
    const s = await script();
    s.answer((_q, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>'));
    await expect(record({ url: s.url, from: 0 }, () => true).done).rejects.toMatchObject({ code: 'NotAnEventStream' });
    s.answer(stream('event: commit\ndata: {"version":"one"}\n\n'));
    await expect(record({ url: s.url, from: 0 }, () => true).done).rejects.toBeInstanceOf(StreamProtocolError);
  });

  it('reconnects a connection that stays silent past the idle timeout', async () => {
    const s = await script();
    s.answer(stream(frame(commit(1)), true), stream(frame(commit(2))));
    const r = record({ url: s.url, from: 0, idleTimeoutMs: 150 }, (c) => c.length === 2);
    await r.done;
    expect(r.errors[0]?.message).toMatch(/nothing received for 150 ms/);
    expect(s.requests.map((q) => q.lastEventId)).toEqual(['0', '1']);
  });

  it('stops at once while connected, while backing off, and through the signal', async () => {
    const s = await script();
    s.answer(stream(': hello\n\n', true));
    const opened = new Promise<StreamSubscriber>((resolve) => {
      const sub: StreamSubscriber = new StreamSubscriber({ url: s.url, from: 0, onCommit: () => undefined, onOpen: () => resolve(sub) });
      void sub.start();
    });
    const sub = await opened;
    const t0 = Date.now();
    sub.stop();
    await sub.start();
    expect(Date.now() - t0).toBeLessThan(500);

    const controller = new AbortController();
    const { done } = subscribe({
      url: 'http://127.0.0.1:1',
      from: 0,
      signal: controller.signal,
      backoff: { initialMs: 60_000 },
      onCommit: () => undefined,
      onError: () => controller.abort(),
    });
    await done;
  });

  it('ends with the error a handler throws', async () => {
    const s = await script();
    s.answer(stream(frame(commit(1))));
    const sub = new StreamSubscriber({
      url: s.url,
      from: 0,
      onCommit: () => {
        throw new Error('disk full');
      },
    });
    await expect(sub.start()).rejects.toThrow('disk full');
  });
});
