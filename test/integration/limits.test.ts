// Limits and overload (README → Operations → Limits and overload) on a real server: timeouts,
// connection caps, header and URL limits, write rate limits per address and per signer, shedding
// (writes before reads) and the bound on request bodies in progress.
//
// Per-address limits need more than one client address: on Linux the whole of 127.0.0.0/8 is
// the loopback, so the "attacker" binds its sockets to 127.0.0.2 (and .3, .4) while the
// well-behaved client stays on 127.0.0.1. Where that is not so (macOS), those tests are skipped.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import { hashOf } from '../../src/core/encoding.js';
import { openFileLimit } from '../../src/http/limits.js';
import { approve, genesisRecord, proposal, put, signers, type TestSigner } from '../helpers/fixtures.js';
import type { ErrorJson, HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

/** Whether this host routes 127.0.0.2 to the loopback. */
async function loopbackAliases(): Promise<boolean> {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const ok = await new Promise<boolean>((resolve) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
    s.on('connect', () => resolve(true));
    s.on('error', () => resolve(false));
  });
  server.close();
  return ok;
}
const aliases = await loopbackAliases();

// On Linux all of 127.0.0.0/8 is the loopback: the address-based groups below must run there (CI),
// never be skipped quietly. Elsewhere they are skipped.
it.runIf(process.platform === 'linux')('can bind a second loopback address (127.0.0.2) for the address-based tests', () => {
  expect(aliases).toBe(true);
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** One request on a fresh connection from `from`. */
function call(reg: TestRegistry, method: string, path: string, options: { body?: unknown; from?: string } = {}): Promise<Answer> {
  const { port } = new URL(reg.url);
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: Number(port),
        method,
        path,
        localAddress: options.from ?? '127.0.0.1',
        agent: false,
        headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const code = (a: Answer): string | undefined => (JSON.parse(a.text) as Partial<ErrorJson>).error?.code;

/** Raw sockets still open: destroyed before each registry closes (closing waits for requests in progress). */
const opened = new Set<Socket>();
const destroyAll = (): void => {
  for (const s of opened) s.destroy();
};

/** A raw socket from `from` that sends `bytes` and then nothing; `closed` resolves with what
 * the server sent, once the connection closes. */
function stall(
  reg: TestRegistry,
  bytes: string,
  from = '127.0.0.1',
): { socket: Socket; closed: Promise<string>; connected: Promise<void> } {
  const { port } = new URL(reg.url);
  const socket = connect({ port: Number(port), host: '127.0.0.1', localAddress: from });
  opened.add(socket);
  socket.on('close', () => opened.delete(socket));
  let out = '';
  socket.on('data', (d) => (out += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(out)));
  const connected = new Promise<void>((resolve) => socket.on('connect', () => resolve()));
  if (bytes) socket.write(bytes);
  return { socket, closed, connected };
}

/** Resolves with `p`'s value, or with 'timeout' after `ms`. */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> =>
  Promise.race([p, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms))]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `check` holds, tested now and after each connection the registry's server
 * accepts or drops (when the guard's connection counts change); fails after 10 s. */
function afterConnections(reg: TestRegistry, check: () => boolean, what: string): Promise<void> {
  if (check()) return Promise.resolve();
  const server = reg.app.server;
  return new Promise((resolve, reject) => {
    const test = () => {
      if (!check()) return;
      done();
      resolve();
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out waiting for ${what}`));
    }, 10_000);
    const done = () => {
      clearTimeout(timer);
      server.off('connection', later).off('drop', later);
    };
    // After the guard's own listeners, which were added first: the counts are up to date then.
    const later = () => setImmediate(test);
    server.on('connection', later).on('drop', later);
  });
}

/** A proposal on the head with `signer`'s approval (a 1-of-N registry: it commits at once). */
async function signedWrite(reg: TestRegistry, registryId: string, signer: TestSigner, id: string) {
  const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
  const p = proposal(registryId, head, [put(id)]);
  return { payload: p, approvals: [approve(signer, hashOf(p))] };
}

async function start(name: string, config: Partial<Config>, list = signers('alice')): Promise<TestRegistry> {
  return startTestRegistry(genesisRecord(name, list, 1), { config });
}

describe('timeouts', () => {
  let reg: TestRegistry;
  beforeAll(async () => (reg = await start('timeouts', { headersTimeoutMs: 1000, keepAliveTimeoutMs: 500 })));
  afterAll(async () => {
    destroyAll();
    await reg.close();
  });

  it('cuts a header-only slowloris at the headers timeout, with a 408, long before the request timeout', async () => {
    const { socket, closed } = stall(reg, 'GET /registry/head HTTP/1.1\r\nHost: x\r\n');
    // A header line every 200 ms: the connection is never idle, the headers never end.
    const drip = setInterval(() => socket.write(`X-Drip-${Date.now()}: 1\r\n`), 200);
    const out = await within(closed, 6000);
    clearInterval(drip);
    expect(out).not.toBe('timeout');
    expect(out).toMatch(/^HTTP\/1\.1 408 /);
    expect(out).toContain('"code":"BadRequest"');
  });

  it('cuts a connection that sends nothing at the headers timeout', async () => {
    const { closed } = stall(reg, '');
    expect(await within(closed, 6000)).not.toBe('timeout');
  });

  it('closes an idle keep-alive connection after the keep-alive timeout', async () => {
    const { closed } = stall(reg, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const out = await within(closed, 6000);
    expect(out).not.toBe('timeout');
    expect(out).toMatch(/^HTTP\/1\.1 200 /);
  });
});

describe('header and URL limits', () => {
  let reg: TestRegistry;
  beforeAll(async () => (reg = await start('sizes', {})));
  afterAll(async () => {
    destroyAll();
    await reg.close();
  });

  it('answers a URL over maxUrlLength with 414 in the envelope, and headers over maxHeaderBytes with 431', async () => {
    const long = await call(reg, 'GET', `/registry/head/descriptors?filter=${'a'.repeat(14_000)}`);
    expect(long.status).toBe(414);
    expect(code(long)).toBe('BadRequest');
    const huge = await stall(reg, `GET /registry/head?x=${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`).closed;
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect((await call(reg, 'GET', `/registry/head?x=${'a'.repeat(8000)}`)).status).toBe(200);
  });

  it('refuses a compressed body with 415', async () => {
    const { port } = new URL(reg.url);
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: Number(port), method: 'POST', path: '/registry/proposals', agent: false },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
        },
      );
      req.setHeader('content-type', 'application/json');
      req.setHeader('content-encoding', 'gzip');
      req.on('error', reject);
      req.end(Buffer.from([0x1f, 0x8b, 0x08, 0x00]));
    });
    expect(answer.status).toBe(415);
    expect(code(answer)).toBe('UnsupportedMediaType');
  });
});

describe.skipIf(!aliases)('connection caps', () => {
  // Two sockets per connection in this process (client and server side).
  const flood = Math.min(2000, Math.floor(((openFileLimit() ?? 4096) - 1000) / 2));

  it(`refuses sockets over the per-address cap at accept, while other addresses read the head (${flood} slow connections)`, async () => {
    const reg = await start('conn-cap', { maxConnectionsPerAddress: 50 });
    try {
      const sockets = Array.from({ length: flood }, () => stall(reg, 'GET /registry/head HTTP/1.1\r\nHost: x\r\n', '127.0.0.2'));
      const head = await call(reg, 'GET', '/registry/head');
      expect(head.status).toBe(200);
      // All but 50 are closed by the server without an answer.
      await afterConnections(reg, () => reg.guard.connections!.refused.perAddress >= flood - 50, 'the refusals at accept');
      expect(reg.guard.connections!.refused.perAddress).toBe(flood - 50);
      expect(reg.guard.connections!.open()).toBeLessThanOrEqual(51);
      expect((await call(reg, 'GET', '/registry/head')).status).toBe(200);
      for (const s of sockets) s.socket.destroy();
    } finally {
      destroyAll();
      await reg.close();
    }
  });

  it(`keeps answering head reads on fresh connections while ${flood} slow connections are held`, async () => {
    const reg = await start('conn-flood', {});
    try {
      const sockets = Array.from({ length: flood }, () => stall(reg, 'GET /registry/head HTTP/1.1\r\nHost: x\r\n', '127.0.0.2'));
      await Promise.all(sockets.map((s) => s.connected));
      await afterConnections(reg, () => reg.guard.connections!.open() >= flood, 'every connection to be held');
      expect(reg.guard.connections!.open()).toBe(flood);
      for (let i = 0; i < 5; i++) {
        const head = await within(call(reg, 'GET', '/registry/head'), 5000);
        expect(head === 'timeout' ? 'timeout' : head.status).toBe(200);
      }
      for (const s of sockets) s.socket.destroy();
    } finally {
      destroyAll();
      await reg.close();
    }
  });

  it('closes sockets over maxConnections', async () => {
    const reg = await start('conn-total', { maxConnections: 20 });
    try {
      const sockets = Array.from({ length: 40 }, () => stall(reg, '', '127.0.0.2'));
      await afterConnections(reg, () => reg.guard.connections!.refused.total >= 20, 'the refusals over maxConnections');
      expect(reg.guard.connections!.refused.total).toBe(20);
      for (const s of sockets) s.socket.destroy();
    } finally {
      destroyAll();
      await reg.close();
    }
  });
});

describe.skipIf(!aliases)('write rate limits', () => {
  it('answers 429 RateLimited with Retry-After to an address flooding writes; reads and other addresses go on', async () => {
    const reg = await start('rate-address', { writeRatePerAddress: 1, writeBurstPerAddress: 5 });
    try {
      const answers: Answer[] = [];
      // Not even valid: the address bucket is taken before the body is read.
      for (let i = 0; i < 12; i++) answers.push(await call(reg, 'POST', '/registry/proposals', { body: { junk: i }, from: '127.0.0.2' }));
      expect(answers.slice(0, 5).map((a) => a.status)).toEqual([400, 400, 400, 400, 400]);
      const limited = answers.filter((a) => a.status === 429);
      expect(limited.length).toBeGreaterThanOrEqual(6);
      expect(code(limited[0]!)).toBe('RateLimited');
      expect(Number(limited[0]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect((await call(reg, 'GET', '/registry/head', { from: '127.0.0.2' })).status).toBe(200);
      expect((await call(reg, 'POST', '/registry/proposals', { body: { junk: 1 } })).status).toBe(400);
    } finally {
      destroyAll();
      await reg.close();
    }
  });

  it('bounds the refused bytes one address may send: a stranger’s large proposals get 429 once its bucket is spent', async () => {
    const [alice] = signers('alice');
    const stranger = signers('mallory')[0]!;
    const reg = await start('refused-bytes', { refusedKibPerAddress: 1, refusedBurstKibPerAddress: 600 }, [alice!]);
    try {
      // About 250 KiB each, approved by a key the registry never had: 422, not audited.
      const forged = async (i: number) => {
        const body = await signedWrite(reg, 'refused-bytes', stranger, `forged-${i}`);
        body.payload.reason = 'x'.repeat(250_000);
        body.approvals = [approve(stranger, hashOf(body.payload))];
        return body;
      };
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++)
        statuses.push((await call(reg, 'POST', '/registry/proposals', { body: await forged(i), from: '127.0.0.2' })).status);
      // 600 KiB of burst: three refusals spend it (the third into debt), then the address waits.
      expect(statuses).toEqual([422, 422, 422, 429, 429]);
      const limited = await call(reg, 'POST', '/registry/proposals', { body: { junk: 1 }, from: '127.0.0.2' });
      expect(limited.status).toBe(429);
      expect(limited.text).toContain('refused');
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(reg.guard.refused.addressRefused).toBe(3);
      // Reads from that address, and writes from another, go on.
      expect((await call(reg, 'GET', '/registry/head', { from: '127.0.0.2' })).status).toBe(200);
      expect((await call(reg, 'POST', '/registry/proposals', { body: await signedWrite(reg, 'refused-bytes', alice!, 'ok') })).status).toBe(
        201,
      );
    } finally {
      destroyAll();
      await reg.close();
    }
  });

  it('limits a signer by its verified writes only: a stranger naming it cannot drain its bucket', async () => {
    const [alice, bob] = signers('alice', 'bob');
    const reg = await start('rate-signer', { writeRatePerSigner: 1, writeBurstPerSigner: 2 }, [alice!, bob!]);
    try {
      // A stranger's approvals in bob's name do not verify: 422 each, and bob keeps his tokens.
      for (let i = 0; i < 5; i++) {
        const forged = await signedWrite(reg, 'rate-signer', alice!, `forged-${i}`);
        forged.approvals = [{ signer_id: 'bob', sig: forged.approvals[0]!.sig }];
        expect((await call(reg, 'POST', '/registry/proposals', { body: forged })).status).toBe(422);
      }
      expect((await call(reg, 'POST', '/registry/proposals', { body: await signedWrite(reg, 'rate-signer', bob!, 'b1') })).status).toBe(
        201,
      );
      // Alice's two verified writes spend her burst; the third is refused before it runs.
      for (const id of ['a1', 'a2'])
        expect((await call(reg, 'POST', '/registry/proposals', { body: await signedWrite(reg, 'rate-signer', alice!, id) })).status).toBe(
          201,
        );
      const third = await call(reg, 'POST', '/registry/proposals', { body: await signedWrite(reg, 'rate-signer', alice!, 'a3') });
      expect(third.status).toBe(429);
      expect(code(third)).toBe('RateLimited');
      expect(third.text).toContain('alice');
      expect(Number(third.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect((await request<HeadJson>(reg.url, 'GET', '/registry/head')).json.descriptor_count).toBe(3);
      // Bob still has a token.
      expect((await call(reg, 'POST', '/registry/proposals', { body: await signedWrite(reg, 'rate-signer', bob!, 'b2') })).status).toBe(
        201,
      );
    } finally {
      destroyAll();
      await reg.close();
    }
  });
});

describe.skipIf(!aliases)('shedding', () => {
  it('sheds writes before reads by requests in flight; readiness says why; operator routes still answer', async () => {
    const reg = await start('shed-inflight', { shedWritesInFlight: 3, shedReadsInFlight: 6 });
    try {
      const batch =
        'POST /registry/descriptors:batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{';
      const held = [stall(reg, batch, '127.0.0.2'), stall(reg, batch, '127.0.0.2'), stall(reg, batch, '127.0.0.3')];
      await Promise.all(held.map((h) => h.connected));
      const deadline = Date.now() + 5000;
      while (reg.guard.inFlight < 3 && Date.now() < deadline) await sleep(20);
      const write = await call(reg, 'POST', '/registry/proposals', { body: { junk: 1 } });
      expect(write.status).toBe(503);
      expect(code(write)).toBe('Unavailable');
      expect(write.headers['retry-after']).toBe('1');
      expect((await call(reg, 'GET', '/registry/head')).status).toBe(200);
      const ready = JSON.parse((await call(reg, 'GET', '/readyz')).text) as { read: boolean; write: boolean; reasons: string[] };
      expect(ready).toMatchObject({ read: true, write: false });
      // The count includes the /readyz request itself.
      expect(ready.reasons.join()).toMatch(/^overloaded: [34] requests in flight \(writes are shed from 3\)$/);

      held.push(stall(reg, batch, '127.0.0.3'), stall(reg, batch, '127.0.0.4'), stall(reg, batch, '127.0.0.4'));
      while (reg.guard.inFlight < 6 && Date.now() < deadline) await sleep(20);
      const read = await call(reg, 'GET', '/registry/head');
      expect(read.status).toBe(503);
      expect(code(read)).toBe('Unavailable');
      expect((await call(reg, 'GET', '/healthz')).status).toBe(200);

      for (const h of held) h.socket.destroy();
      while (reg.guard.inFlight > 0 && Date.now() < deadline) await sleep(20);
      expect((await call(reg, 'GET', '/registry/head')).status).toBe(200);
      expect((await call(reg, 'POST', '/registry/proposals', { body: { junk: 1 } })).status).toBe(400);
    } finally {
      destroyAll();
      await reg.close();
    }
  });

  it('sheds writes, not reads, while the event loop is delayed', async () => {
    const reg = await start('shed-delay', { shedWritesEventLoopDelayMs: 50, shedReadsEventLoopDelayMs: 60_000 });
    try {
      // Block the event loop (the server's too) in 200 ms slices for over two samples.
      const until = Date.now() + 1300;
      while (Date.now() < until) {
        const slice = Date.now() + 200;
        while (Date.now() < slice);
        await new Promise((resolve) => setImmediate(resolve));
      }
      await sleep(0);
      expect(reg.guard.eventLoopDelayMs).toBeGreaterThan(50);
      const [write, read] = await Promise.all([
        call(reg, 'POST', '/registry/proposals', { body: { junk: 1 } }),
        call(reg, 'GET', '/registry/head'),
      ]);
      expect(write.status).toBe(503);
      expect(write.text).toMatch(/event-loop delay/);
      expect(read.status).toBe(200);
      // Once the loop is idle again, writes are accepted (a 400 here: the body is junk): the
      // guard's next samples see the idle loop.
      for (let i = 0; i < 10 && reg.guard.overloaded() !== undefined; i++) await reg.guard.nextSample();
      expect(reg.guard.overloaded()).toBeUndefined();
      expect((await call(reg, 'POST', '/registry/proposals', { body: { junk: 1 } })).status).toBe(400);
    } finally {
      destroyAll();
      await reg.close();
    }
  });
});

describe.skipIf(!aliases)('request bodies in progress', () => {
  it('refuses new uploads promptly beyond the per-address and total byte bounds, and frees them when uploads end', async () => {
    const MiB = 1024 * 1024;
    const reg = await start('bodies', { maxBodyBytesPerAddress: MiB, maxBodyBytesInFlight: 2 * MiB });
    try {
      const upload = `POST /registry/descriptors:batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${MiB / 2}\r\n\r\n{"ids":[`;
      const held = [stall(reg, upload, '127.0.0.2'), stall(reg, upload, '127.0.0.2')];
      await Promise.all(held.map((h) => h.connected));
      const deadline = Date.now() + 5000;
      while (reg.guard.bodyBytes < MiB && Date.now() < deadline) await sleep(20);
      // A third from the same address: 429 at once, without its body being read.
      const third = stall(reg, upload, '127.0.0.2');
      const refused = await within(new Promise<string>((resolve) => third.socket.on('data', (d) => resolve(d.toString('latin1')))), 5000);
      expect(refused).toMatch(/^HTTP\/1\.1 429 /);
      expect(refused).toContain('"code":"RateLimited"');
      third.socket.destroy();

      held.push(stall(reg, upload, '127.0.0.3'), stall(reg, upload, '127.0.0.3'));
      while (reg.guard.bodyBytes < 2 * MiB && Date.now() < deadline) await sleep(20);
      const fifth = await call(reg, 'POST', '/registry/descriptors:batch', { body: { ids: ['x'] }, from: '127.0.0.4' });
      expect(fifth.status).toBe(503);
      expect(code(fifth)).toBe('Unavailable');
      expect((await call(reg, 'GET', '/registry/head')).status).toBe(200);

      for (const h of held) h.socket.destroy();
      while (reg.guard.bodyBytes > 0 && Date.now() < deadline) await sleep(20);
      expect(reg.guard.bodyBytes).toBe(0);
      expect((await call(reg, 'POST', '/registry/descriptors:batch', { body: { ids: ['x'] }, from: '127.0.0.2' })).status).toBe(200);
    } finally {
      destroyAll();
      await reg.close();
    }
  });
});
