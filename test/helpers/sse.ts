// A minimal Server-Sent Events client over node:http, for tests of GET /registry/stream: it
// records every byte, every event frame (id, event, data, retry) and every comment line, in the
// order they arrived, and lets a test await a condition on them (never a fixed sleep).
import http, { type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';

export interface SseFrame {
  id: string | undefined;
  event: string;
  data: string;
  retry: number | undefined;
}

/** What arrived, in order: event frames and comment lines. */
export type SseItem = { type: 'event'; frame: SseFrame } | { type: 'comment'; text: string };

/** The data of an `event: commit` frame (SPEC §8). */
export interface CommitData {
  version: number;
  hash: string;
  prev_hash: string | null;
  committed_at: string;
  changed: string[];
  changed_count: number;
}

/** A commit frame's data; data that is not JSON is kept as `{invalid: text}`, which equals no commit. */
function parseCommit(data: string): CommitData {
  try {
    return JSON.parse(data) as CommitData;
  } catch {
    return { invalid: data } as unknown as CommitData;
  }
}

export class SseStream {
  readonly frames: SseFrame[] = [];
  readonly comments: string[] = [];
  readonly items: SseItem[] = [];
  /** Every byte of the body, as text. */
  raw = '';
  /** The reconnection delay the server asked for with `retry:`, if it did. */
  retry: number | undefined;

  /** What followed the stream's opening `retry:` block: its frames and comments, byte for byte. */
  get body(): string {
    return this.raw.replace(/^retry: \d+\n\n/, '');
  }
  /** True once the response finished (the server ended it); false when it was cut. */
  completed = false;
  /** The response is over, whichever way. */
  readonly ended: Promise<void>;
  private buffer = '';
  private pending: { id?: string; event?: string; data?: string[]; retry?: number } = {};
  private readonly waiters = new Set<() => void>();
  private done = false;

  constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    private readonly response: http.IncomingMessage,
    private readonly request: http.ClientRequest,
  ) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.feed(chunk));
    this.ended = new Promise((resolve) => {
      const finish = () => {
        if (this.done) return;
        this.done = true;
        this.wake();
        resolve();
      };
      response.once('end', () => {
        this.completed = true;
        finish();
      });
      response.once('close', finish);
      response.once('error', finish);
      request.once('error', finish);
    });
  }

  /** The commit frames' data, in order (parsed once, as they arrive). */
  readonly commits: CommitData[] = [];

  /** The versions of the commit frames, in order. */
  get versions(): number[] {
    return this.commits.map((c) => c.version);
  }

  /** The version of the last commit frame, or undefined before the first. */
  get lastVersion(): number | undefined {
    return this.commits.at(-1)?.version;
  }

  get isOpen(): boolean {
    return !this.done;
  }

  /** Resolves once `check` holds; rejects when the stream ends first or the deadline passes. */
  waitFor(check: (s: SseStream) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (check(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(test);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.describe()}`));
      }, timeoutMs);
      const test = () => {
        if (check(this)) {
          this.waiters.delete(test);
          clearTimeout(timer);
          resolve();
        } else if (this.done) {
          this.waiters.delete(test);
          clearTimeout(timer);
          reject(new Error(`the stream ended while waiting for ${what}; got ${this.describe()}`));
        }
      };
      this.waiters.add(test);
    });
  }

  /** Waits until a commit frame of at least `version` has arrived. */
  waitForVersion(version: number, timeoutMs = 10_000): Promise<void> {
    return this.waitFor((s) => s.commits.some((c) => c.version >= version), `version ${version}`, timeoutMs);
  }

  /** Hangs up (the client side). */
  close(): void {
    this.request.destroy();
    this.response.destroy();
  }

  private describe(): string {
    const last = this.frames.slice(-3).map((f) => `${f.event}#${f.id ?? ''}`);
    return `${this.frames.length} frames (last: ${last.join(', ') || 'none'}), ${this.comments.length} comments, ${this.done ? 'ended' : 'open'}`;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private feed(chunk: string): void {
    this.raw += chunk;
    this.buffer += chunk;
    // SSE lines end with CRLF, LF or CR; a CR at the very end may be the first half of a CRLF.
    const end = this.buffer.endsWith('\r') ? this.buffer.length - 2 : this.buffer.length - 1;
    const cut = end < 0 ? -1 : Math.max(this.buffer.lastIndexOf('\n', end), this.buffer.lastIndexOf('\r', end));
    if (cut >= 0) {
      const lines = this.buffer.slice(0, cut + 1).split(/\r\n|\n|\r/);
      this.buffer = this.buffer.slice(cut + 1);
      lines.pop();
      for (const line of lines) this.line(line);
    }
    this.wake();
  }

  private line(line: string): void {
    if (line === '') {
      const p = this.pending;
      this.pending = {};
      if (p.retry !== undefined) this.retry = p.retry;
      // A block without data, id or event dispatches no event (WHATWG SSE): `retry:` alone.
      if (p.data === undefined && p.id === undefined && p.event === undefined) return;
      const frame: SseFrame = { id: p.id, event: p.event ?? 'message', data: (p.data ?? []).join('\n'), retry: p.retry };
      this.frames.push(frame);
      this.items.push({ type: 'event', frame });
      if (frame.event === 'commit') this.commits.push(parseCommit(frame.data));
      return;
    }
    if (line.startsWith(':')) {
      const text = line.slice(1).replace(/^ /, '');
      this.comments.push(text);
      this.items.push({ type: 'comment', text });
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') this.pending.id = value;
    else if (field === 'event') this.pending.event = value;
    else if (field === 'data') (this.pending.data ??= []).push(value);
    else if (field === 'retry' && /^\d+$/.test(value)) this.pending.retry = Number(value);
  }
}

export interface RefusedStream {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: unknown;
}

export interface OpenOptions {
  headers?: Record<string, string>;
  /** The client's own address (127.0.0.2, …: another "client" on the loopback). */
  localAddress?: string;
}

/** Opens `url` as an event stream. A 200 answer resolves as soon as its headers arrive; any
 * other answer is read to its end and resolves as a RefusedStream. */
export function openSse(url: string, options: OpenOptions = {}): Promise<SseStream | RefusedStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, {
      agent: false,
      headers: { accept: 'text/event-stream', ...options.headers },
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    req.once('error', reject);
    req.once('response', (res) => {
      if (res.statusCode === 200) {
        resolve(new SseStream(200, res.headers, res, req));
        return;
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.once('end', () => {
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
      res.once('error', reject);
    });
  });
}

/** Opens an event stream that must be accepted (200). */
export async function subscribe(url: string, options: OpenOptions = {}): Promise<SseStream> {
  const s = await openSse(url, options);
  if (!(s instanceof SseStream)) throw new Error(`expected a stream, got ${s.status}: ${s.text.slice(0, 300)}`);
  return s;
}

export interface StalledSubscriber {
  socket: net.Socket;
  /** Every byte read so far (status line, headers, chunked body), as latin1 text. */
  received: () => string;
  /** Settles when the server ends the response or the connection closes. */
  over: Promise<'finished' | 'closed'>;
  /** Reads until the bytes received match `pattern`, then stops reading again. */
  readUntil: (pattern: RegExp, timeoutMs?: number) => Promise<void>;
}

/** A subscriber that sends its request and then never reads: its socket is paused at once, so
 * the kernel buffers fill and the server has to hold (or drop) what it sends. */
export function stalledSubscriber(
  url: string,
  options: { headers?: Record<string, string>; localAddress?: string } = {},
): Promise<StalledSubscriber> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    let text = '';
    let finished: () => void = () => undefined;
    let onData: () => void = () => undefined;
    /** Reads until the bytes received match `pattern`, then stops reading again. */
    const readUntil = (pattern: RegExp, timeoutMs = 5_000) =>
      new Promise<void>((done, fail) => {
        const timer = setTimeout(() => {
          socket.pause();
          fail(new Error(`timed out waiting for ${String(pattern)}; got ${JSON.stringify(text.slice(-300))}`));
        }, timeoutMs);
        onData = () => {
          if (!pattern.test(text)) return;
          socket.pause();
          clearTimeout(timer);
          onData = () => undefined;
          done();
        };
        onData();
        if (!pattern.test(text)) socket.resume();
      });
    const socket = net.connect({
      host: u.hostname,
      port: Number(u.port),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    // Paused before it connects: Node never starts reading it, and the 'data' listener does not
    // resume it either (only resume() does).
    socket.pause();
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      onData();
      // The last chunk of a chunked response: the server ended the stream (the connection may stay).
      if (text.endsWith('\r\n0\r\n\r\n')) finished();
    });
    // Over when the server ends the response or the connection closes, whichever comes first.
    const over = new Promise<'finished' | 'closed'>((done) => {
      finished = () => done('finished');
      socket.once('close', () => done('closed'));
    });
    socket.on('error', () => undefined);
    socket.once('error', reject);
    socket.once('connect', () => {
      const headers = Object.entries({ host: u.host, accept: 'text/event-stream', ...options.headers })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\n${headers}\r\n`, (err) => {
        if (err) reject(err);
        else resolve({ socket, received: () => text, over, readUntil });
      });
    });
  });
}
