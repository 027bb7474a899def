// Slow and oversized requests are cut off by the server's own timeouts and limits (issue 14,
// item 8): a header-only slowloris within `headersTimeoutMs` (plus Node's one-second check), a
// body that trickles within `requestTimeoutMs`, headers over `maxHeaderBytes` at once with 431.
// Each refusal is the envelope (code BadRequest, with the status HTTP defines), then the
// connection closes; other clients are served meanwhile. Raw sockets, as no HTTP client sends
// this slowly or this much.
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { genesisRecord, signers } from '../helpers/fixtures.js';
import { envelopeProblem, parseAnswers, type RawAnswer } from '../helpers/hostile-http.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
/** Node checks both timeouts once a second (app.ts sets connectionsCheckingInterval). */
const CHECK_MS = 1000;
const SLACK_MS = 1500;

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry(genesisRecord('slow', signers('alice'), 1), {
    config: { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS },
  });
});
afterAll(async () => reg.close());

interface Outcome {
  answers: RawAnswer[];
  /** Milliseconds from the first byte sent to the close. */
  closedAfter: number;
  /** Bytes the client had sent when the server closed. */
  sent: number;
}

/** Opens a socket, lets `drive` write to it, and resolves when the server closes it (or fails
 * after `limitMs`). */
function exchange(drive: (socket: Socket) => () => void, limitMs: number): Promise<Outcome> {
  const { port, hostname } = new URL(reg.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const started = performance.now();
    let stop = () => {};
    const deadline = setTimeout(() => {
      stop();
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${limitMs} ms`));
    }, limitMs);
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(deadline);
      stop();
      resolve({
        answers: parseAnswers(Buffer.concat(chunks)).answers,
        closedAfter: performance.now() - started,
        sent: socket.bytesWritten,
      });
    });
    socket.on('connect', () => (stop = drive(socket)));
  });
}

/** Writes `bytes` one byte every `everyMs`, then keeps silent; returns the stopper. */
const trickle =
  (bytes: string, everyMs: number) =>
  (socket: Socket): (() => void) => {
    let i = 0;
    const timer = setInterval(() => {
      if (i < bytes.length && !socket.destroyed) socket.write(bytes[i++]!);
    }, everyMs);
    return () => clearInterval(timer);
  };

/** The answer is the envelope, code BadRequest, with `status`. */
function refusedWith(outcome: Outcome, status: number): void {
  expect(outcome.answers.map((a) => a.status)).toEqual([status]);
  const answer = outcome.answers[0]!;
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  expect(answer.headers.connection).toBe('close');
  const json: unknown = JSON.parse(answer.body.toString('utf8'));
  expect(envelopeProblem(status, json, answer.headers['x-request-id'])).toBeUndefined();
  expect((json as { error: { code: string } }).error.code).toBe('BadRequest');
}

describe('slowloris', () => {
  it('a request whose headers arrive one byte at a time is cut off at the headers timeout, with a 408', async () => {
    // Endless headers: the request line, then header bytes, never the blank line.
    const slow = `GET /registry/head HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(10_000)}`;
    const outcome = await exchange(trickle(slow, 50), HEADERS_TIMEOUT_MS + CHECK_MS + SLACK_MS + 2000);
    expect(outcome.closedAfter).toBeLessThan(HEADERS_TIMEOUT_MS + CHECK_MS + SLACK_MS);
    expect(outcome.sent).toBeLessThan(slow.length);
    refusedWith(outcome, 408);
  });

  it('many slow senders at once are each cut off, and head reads keep answering meanwhile', async () => {
    const slow = `GET /registry/head HTTP/1.1\r\nHost: x\r\n${'X-Slow: b\r\n'.repeat(1000)}`;
    const pending = Array.from({ length: 50 }, () => exchange(trickle(slow, 100), HEADERS_TIMEOUT_MS + CHECK_MS + SLACK_MS + 2000));
    // Head reads one after another for as long as the slow senders are connected.
    let cutOff = false;
    const outcomes = Promise.all(pending).finally(() => (cutOff = true));
    const reads: number[] = [];
    while (!cutOff) {
      const t = performance.now();
      const r = await request(reg.url, 'GET', '/registry/head');
      expect(r.status).toBe(200);
      reads.push(performance.now() - t);
    }
    expect(reads.length).toBeGreaterThanOrEqual(10);
    for (const outcome of await outcomes) {
      expect(outcome.closedAfter).toBeLessThan(HEADERS_TIMEOUT_MS + CHECK_MS + SLACK_MS);
      refusedWith(outcome, 408);
    }
    expect(Math.max(...reads)).toBeLessThan(1000);
  });

  it('a body that trickles in is cut off at the request timeout, with a 408', async () => {
    const head = 'POST /registry/descriptors:batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n';
    const outcome = await exchange(
      (socket) => {
        socket.write(head);
        return trickle('{"ids":["a"'.padEnd(100_000, ' '), 50)(socket);
      },
      REQUEST_TIMEOUT_MS + CHECK_MS + SLACK_MS + 2000,
    );
    expect(outcome.closedAfter).toBeLessThan(REQUEST_TIMEOUT_MS + CHECK_MS + SLACK_MS);
    refusedWith(outcome, 408);
  });
});

describe('oversized headers', () => {
  const limit = 5000;

  it.each([
    ['64 headers of 1 KiB', Array.from({ length: 64 }, (_, i) => `X-Big-${i}: ${'v'.repeat(1024)}\r\n`).join('')],
    ['one header of 64 KiB', `X-Big: ${'v'.repeat(64 * 1024)}\r\n`],
    ['a 64 KiB header name', `${'X'.repeat(64 * 1024)}: v\r\n`],
    ['a 64 KiB request target', null],
  ])('%s: 431 (or 414) in the envelope, and the connection closes', async (_name, headers) => {
    const bytes =
      headers === null
        ? `GET /registry/head?${'q'.repeat(64 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`
        : `GET /registry/head HTTP/1.1\r\nHost: x\r\n${headers}\r\n`;
    const outcome = await exchange((socket) => {
      socket.write(bytes);
      return () => {};
    }, limit);
    expect(outcome.closedAfter).toBeLessThan(limit);
    const status = outcome.answers[0]?.status;
    expect([414, 431]).toContain(status);
    refusedWith(outcome, status!);
  });

  it('on a kept-alive connection: the request before is answered, then 431 and the close', async () => {
    const outcome = await exchange((socket) => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      // The second request once the first is answered (its answer is one small chunk).
      socket.once('data', () => socket.write(`GET /registry/head HTTP/1.1\r\nHost: x\r\nX-Big: ${'v'.repeat(64 * 1024)}\r\n\r\n`));
      return () => {};
    }, limit);
    expect(outcome.answers.map((a) => a.status)).toEqual([200, 431]);
    refusedWith({ ...outcome, answers: outcome.answers.slice(1) }, 431);
  });

  it('headers that never end but pass the limit are refused at once, not at the headers timeout', async () => {
    const outcome = await exchange((socket) => {
      socket.write(`GET /registry/head HTTP/1.1\r\nHost: x\r\nX-Big: ${'v'.repeat(64 * 1024)}`);
      return () => {};
    }, limit);
    expect(outcome.closedAfter).toBeLessThan(HEADERS_TIMEOUT_MS);
    refusedWith(outcome, 431);
  });
});
