// What the hostile-input campaign (campaign.test.ts) found, each as its smallest reproducer, so
// that a regression fails here with a name rather than in a random batch. Raw sockets: each is
// about bytes that ordinary clients do not send.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import { envelopeProblem, parseAnswers, type RawAnswer } from '../helpers/hostile-http.js';
import type { ErrorJson, HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

const [alice] = signers('alice');
let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry(genesisRecord('regress', [alice!], 1));
});
afterAll(async () => reg.close());

/** Writes each chunk (pausing `gapMs` between them) on one connection; resolves with the
 * answers once the server closes it, or after `waitMs` with the connection still open. */
function converse(chunks: string[], waitMs = 1500, gapMs = 150): Promise<{ answers: RawAnswer[]; closed: boolean; ms: number }> {
  const { port, hostname } = new URL(reg.url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    const data: Buffer[] = [];
    const started = performance.now();
    let closed = false;
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answers: parseAnswers(Buffer.concat(data)).answers, closed, ms: performance.now() - started });
    };
    const timer = setTimeout(finish, waitMs);
    socket.on('data', (d: Buffer) => data.push(d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('connect', () => {
      chunks.forEach((c, i) => setTimeout(() => socket.writable && socket.write(c), i * gapMs));
    });
  });
}

const envelopeOf = (a: RawAnswer) => envelopeProblem(a.status, JSON.parse(a.body.toString('utf8')) as unknown, a.headers['x-request-id']);

describe('found by the hostile campaign', () => {
  it('HEAD /registry/stream answers its headers at once instead of never (Node sends no HEAD headers before the end)', async () => {
    const { answers } = await converse(['HEAD /registry/stream HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(answers[0]!.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(reg.hub.size).toBe(0);
  });

  it('a HEAD refused by the HTTP parser (headers too large) is answered without a body', async () => {
    const { port, hostname } = new URL(reg.url);
    const bytes = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), hostname);
      const data: Buffer[] = [];
      socket.on('data', (d: Buffer) => data.push(d));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(data).toString('latin1')));
      socket.on('connect', () => socket.write(`HEAD /registry/head HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`));
    });
    expect(bytes).toMatch(/^HTTP\/1\.1 431 /);
    expect(bytes).toMatch(/\r\ncontent-length: [1-9]\d*\r\n/i);
    // Nothing after the head of the answer: a body would be read as the next answer.
    expect(bytes.endsWith('\r\n\r\n')).toBe(true);
  });

  it('CONNECT gets the envelope (Node dropped it unanswered)', async () => {
    const { answers, closed } = await converse(['CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(answers.map((a) => a.status)).toEqual([404]);
    expect(envelopeOf(answers[0]!)).toBeUndefined();
    expect(closed).toBe(true);
  });

  it('an Expect other than 100-continue is ignored (Node answered a bare 417)', async () => {
    const { answers } = await converse(['GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n']);
    expect(answers.map((a) => a.status)).toEqual([200]);
  });

  it('an HTTP/1.1 request without Host gets the envelope (Node answered a bare 400)', async () => {
    const { answers } = await converse(['GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n']);
    expect(answers.map((a) => a.status)).toEqual([400]);
    expect(envelopeOf(answers[0]!)).toBeUndefined();
    // HTTP/1.0 has no Host requirement.
    expect((await converse(['GET /healthz HTTP/1.0\r\n\r\n'])).answers.map((a) => a.status)).toEqual([200]);
  });

  it.each([
    ['a Transfer-Encoding other than chunked', 'OPTIONS /registry/audit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n'],
    ['the same on a URL Fastify cannot route', 'LOCK /registry/proposals% HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n'],
    ['the same on an over-long URL', `GET /registry/head?${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n`],
  ])('%s is refused and closes the connection with its answer (it was dropped after a keep-alive answer)', async (_name, bytes) => {
    const { answers, closed } = await converse([bytes, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(answers.length).toBe(1);
    expect(answers[0]!.status).toBeGreaterThanOrEqual(400);
    expect(answers[0]!.headers.connection).toBe('close');
    expect(closed).toBe(true);
  });

  it('a request asking for an upgrade closes its connection, so oversized headers after it cannot wait for the headers timeout', async () => {
    const { answers, closed, ms } = await converse(
      [
        'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n',
        `GET /healthz/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      ],
      5000,
    );
    expect(answers.map((a) => [a.status, a.headers.connection])).toEqual([[200, 'close']]);
    expect(closed).toBe(true);
    expect(ms).toBeLessThan(2000);
  });

  it('a payload with integer-like keys out of order and a lone surrogate is a 400, not a 503 (canonical JSON threw a plain Error)', async () => {
    const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    const p = proposal('regress', head, [put('svc-x', { '10': 'a', '9': 'b' })], { reason: '\ud800' });
    const approval = approve(alice!, hashOf({ ...p, reason: 'x' }));
    const r = await request<ErrorJson>(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approval] });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('BadRequest');
    expect(r.json.error.message).toMatch(/surrogate/);
  });
});
