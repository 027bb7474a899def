// A subscriber pool for perf/fanout.mjs: a child process holding many raw TCP connections to
// GET /registry/stream, driven over the IPC channel. Each connection records when the first byte
// of each commit frame reached this process (the 'data' event of the read holding it), on
// process.hrtime (CLOCK_MONOTONIC: one clock for every process on the machine, so the committing
// process's send time and these arrival times subtract directly).
import net from 'node:net';

const now = () => Number(process.hrtime.bigint()) / 1e6;

/** @type {{ expect: boolean, socket: net.Socket, raw: string, body: string, pendT: number | undefined, headers: boolean, open: boolean, arrivals: Map<number, number> }[]} */
const conns = [];
/** For each version, how many expecting connections got it, and who waits for all of them. */
const got = new Map();
const waiters = new Map();
let expecting = 0;
let unexpected = 0;
let lagged = 0;
let heartbeats = 0;
let droppedAfterConnect = 0;

function arrived(c, version, t) {
  if (c.arrivals.has(version)) return;
  c.arrivals.set(version, t);
  if (!c.expect) return void unexpected++;
  const n = (got.get(version) ?? 0) + 1;
  got.set(version, n);
  if (n === expecting) waiters.get(version)?.();
}

function frame(c, text, t) {
  if (text.startsWith(':')) return void heartbeats++;
  let id;
  let event = 'message';
  for (const line of text.split('\n')) {
    if (line.startsWith('id: ')) id = Number(line.slice(4));
    else if (line.startsWith('event: ')) event = line.slice(7);
  }
  if (event === 'commit' && id !== undefined) arrived(c, id, t);
  else if (event === 'lagged') lagged++;
}

/** Undoes the chunked transfer coding, then splits server-sent events. */
function decode(c, t) {
  for (;;) {
    const eol = c.raw.indexOf('\r\n');
    if (eol < 0) break;
    const size = parseInt(c.raw.slice(0, eol), 16);
    if (size === 0 || Number.isNaN(size)) return void c.socket.destroy();
    if (c.raw.length < eol + 2 + size + 2) break;
    c.body += c.raw.slice(eol + 2, eol + 2 + size);
    c.raw = c.raw.slice(eol + 2 + size + 2);
  }
  for (let end = c.body.indexOf('\n\n'); end >= 0; end = c.body.indexOf('\n\n')) {
    frame(c, c.body.slice(0, end), c.pendT ?? t);
    c.body = c.body.slice(end + 2);
    // Later frames in the same read arrived with it.
    c.pendT = t;
  }
}

function open(host, port, path, expect) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const c = { expect, socket, raw: '', body: '', pendT: undefined, headers: false, open: false, arrivals: new Map() };
    socket.setEncoding('latin1');
    // A server out of file descriptors leaves connections unanswered: give up on those.
    socket.setTimeout(15_000, () => {
      if (!c.headers) socket.destroy(new Error('no answer within 15 s'));
    });
    socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAccept: text/event-stream\r\n\r\n`));
    socket.on('data', (chunk) => {
      const t = now();
      if (c.pendT === undefined) c.pendT = t;
      c.raw += chunk;
      if (!c.headers) {
        const end = c.raw.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = c.raw.slice(0, end);
        c.raw = c.raw.slice(end + 4);
        c.headers = true;
        if (!/^HTTP\/1\.1 200 /.test(head) || !/transfer-encoding: chunked/i.test(head)) {
          socket.destroy();
          return resolve(`unexpected answer: ${head.split('\r\n')[0]}`);
        }
        c.open = true;
        socket.setTimeout(0);
        conns.push(c);
        if (expect) expecting++;
        resolve(undefined);
      }
      decode(c, t);
      if (!c.raw && !c.body) c.pendT = undefined;
    });
    socket.on('error', (err) => {
      if (!c.open) resolve(err.code ?? err.message);
    });
    socket.on('close', () => {
      if (c.open) droppedAfterConnect++;
      c.open = false;
      if (!c.headers) resolve('closed before the answer');
    });
  });
}

/** Opens `list` ({path, expect}[]) with at most `concurrency` handshakes at a time. */
async function connectAll(host, port, list, concurrency) {
  const failures = {};
  let next = 0;
  const lane = async () => {
    while (next < list.length) {
      const { path, expect } = list[next++];
      const failure = await open(host, port, path, expect);
      if (failure) failures[failure] = (failures[failure] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, list.length) }, lane));
  return failures;
}

// `node perf/fanout-worker.mjs bare-server`: the harness's floor instead of a subscriber pool. A
// bare node:http server with the same routes the benchmark uses and no registry behind them: a
// POST writes one commit-sized frame to every stream, then answers. Same clients, same clock.
if (process.argv[2] === 'bare-server') {
  const { createServer } = await import('node:http');
  const streams = new Set();
  let version = 0;
  const hash = 'sha256:' + '0'.repeat(64);
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url.startsWith('/registry/stream')) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.flushHeaders();
      streams.add(res);
      res.on('close', () => streams.delete(res));
    } else if (req.method === 'GET') {
      res.end(JSON.stringify({ version, hash }));
    } else {
      req.resume();
      req.on('end', () => {
        version++;
        const data = { version, hash, prev_hash: hash, committed_at: new Date().toISOString(), changed: ['svc-0'], changed_count: 1 };
        const frame = Buffer.from(`id: ${version}\nevent: commit\ndata: ${JSON.stringify(data)}\n\n`);
        for (const s of streams) s.write(frame);
        res.end(JSON.stringify({ status: 'committed', version }));
      });
    }
  });
  server.listen(0, '127.0.0.1', 4096, () => process.stdout.write(`listening on http://127.0.0.1:${server.address().port}\n`));
  process.on('SIGTERM', () => process.exit(0));
} else process.send({ type: 'ready' });

process.on('message', (m) => {
  switch (m.type) {
    case 'clock':
      process.send({ type: 'clock', id: m.id, t: now() });
      break;
    case 'connect':
      void connectAll(m.host, m.port, m.list, m.concurrency).then((failures) =>
        process.send({ type: 'connected', open: conns.filter((c) => c.open).length, expecting, failures }),
      );
      break;
    case 'await': {
      const done = (complete) => {
        clearTimeout(timer);
        waiters.delete(m.version);
        process.send({ type: 'arrived', version: m.version, complete, got: got.get(m.version) ?? 0, expecting });
      };
      const timer = setTimeout(() => done(false), m.timeoutMs);
      if ((got.get(m.version) ?? 0) >= expecting) done(true);
      else waiters.set(m.version, () => done(true));
      break;
    }
    case 'report': {
      // Arrival times of the expecting connections, by version.
      const arrivals = {};
      for (const c of conns) {
        if (!c.expect) continue;
        for (const [v, t] of c.arrivals) (arrivals[v] ??= []).push(t);
      }
      const stillOpen = conns.filter((c) => c.open).length;
      process.send({ type: 'report', arrivals, unexpected, lagged, heartbeats, droppedAfterConnect, stillOpen });
      break;
    }
    case 'close':
      for (const c of conns) c.socket.destroy();
      process.disconnect();
      break;
  }
});
