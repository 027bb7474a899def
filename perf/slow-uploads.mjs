// Memory under stalled uploads (issue 14: "400 stalled 1 MiB uploads raised RSS from 91 to
// 476 MiB"). The registry runs as `registry serve` in a child process; --uploads raw sockets,
// spread over --addresses loopback addresses (127.0.0.2, .3, ...: Linux), each send the headers
// of a POST /registry/descriptors:batch with Content-Length 1 MiB and then all of the body but
// its last byte, and stall. The server's RSS (/proc/<pid>/status) is read before and once the
// uploads have been sent (and again after --settle seconds); the uploads the server refused
// (429/503 before reading the body) are counted. Scenarios: `limits` (the defaults: 64 MiB of
// bodies in progress in all, 8 MiB per address), the same from 5x the addresses (the total
// bound is the one that holds) and `unbounded` (both raised to 1 TiB: what the service did
// before). A head read on a fresh connection from 127.0.0.1 is timed at the end.
// Linux only. Prints a Markdown table; writes perf/results/slow-uploads-<timestamp>.json.
// Usage: npm run perf:slow-uploads [-- --uploads 400 --addresses 8 --settle 3 --only limits]
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateKeyPair } from '../dist/core/crypto.js';
import { serveRegistry } from './lib/serve.mjs';

const { values } = parseArgs({
  options: {
    uploads: { type: 'string', default: '400' },
    addresses: { type: 'string', default: '8' },
    settle: { type: 'string', default: '3' },
    only: { type: 'string', multiple: true },
  },
});
const UPLOADS = Number(values.uploads);
const ADDRESSES = Number(values.addresses);
const SETTLE_MS = Number(values.settle) * 1000;
const MiB = 1024 * 1024;
const TiB = String(2 ** 40);

const SCENARIOS = [
  { key: 'limits', args: [] },
  // Enough addresses that the total bound, not the per-address one, is what holds.
  { key: 'limits, 5x the addresses', args: [], addresses: ADDRESSES * 5 },
  {
    key: 'unbounded',
    args: ['--max-body-bytes-in-flight', TiB, '--max-body-bytes-per-address', TiB, '--max-connections-per-address', '100000'],
  },
].filter((s) => !values.only || values.only.includes(s.key.split(',')[0]));

const rssMiB = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const serve = (dir, args) => serveRegistry(dir, 'uploads', [{ id: 'alice', ...generateKeyPair() }], args);

/** Sends all of a 1 MiB body but its last byte; resolves once written, answered or closed.
 * `how()` then says what became of it: the status of the server's early answer, 'closed', or
 * 'stalled' (still held by the server, unanswered). */
function upload(port, from, body) {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: from });
    let answer = '';
    let closed = false;
    const how = () => /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? (closed ? 'closed' : 'stalled');
    const done = () => resolve({ socket, how });
    socket.on('data', (d) => {
      answer += d.toString('latin1');
      done();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      done();
    });
    socket.on('connect', () => {
      socket.write(
        `POST /registry/descriptors:batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${MiB}\r\n\r\n`,
      );
      socket.write(body, done);
    });
  });
}

async function headMs(url) {
  const t0 = performance.now();
  const res = await fetch(`${url}/registry/head`);
  await res.arrayBuffer();
  return { status: res.status, ms: Math.round((performance.now() - t0) * 10) / 10 };
}

const body = Buffer.alloc(MiB - 1, 'a');
const results = [];
for (const s of SCENARIOS) {
  const dir = mkdtempSync(join(tmpdir(), 'registry-uploads-'));
  const { child, url } = await serve(dir, s.args);
  const port = Number(new URL(url).port);
  try {
    await headMs(url);
    await sleep(500);
    const before = rssMiB(child.pid);
    const addresses = s.addresses ?? ADDRESSES;
    const outcomes = [];
    // In waves of 50, so that the client does not hold 400 MiB of socket buffers at once.
    for (let i = 0; i < UPLOADS; i += 50)
      outcomes.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(50, UPLOADS - i) }, (_, j) => upload(port, `127.0.0.${2 + ((i + j) % addresses)}`, body)),
        )),
      );
    const sent = rssMiB(child.pid);
    await sleep(SETTLE_MS);
    const settled = rssMiB(child.pid);
    const head = await headMs(url);
    const counts = {};
    for (const o of outcomes) counts[o.how()] = (counts[o.how()] ?? 0) + 1;
    results.push({ scenario: s.key, uploads: UPLOADS, addresses, before, sent, settled, outcomes: counts, head });
    process.stderr.write(`${s.key}: ${JSON.stringify(results.at(-1))}\n`);
    for (const o of outcomes) o.socket.destroy();
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const f = (x) => x.toFixed(0);
const lines = [
  `${UPLOADS} stalled uploads of 1 MiB (all but the last byte sent) from loopback addresses; server RSS in MiB, after ${SETTLE_MS / 1000} s; node ${process.version}.`,
  '',
  '| scenario | addresses | RSS before | RSS once sent | RSS after settling | uploads stalled in the server / refused | head read after |',
  '|---|---|---|---|---|---|---|',
  ...results.map(
    (r) =>
      `| ${r.scenario} | ${r.addresses} | ${f(r.before)} | ${f(r.sent)} | ${f(r.settled)} | ${r.outcomes.stalled ?? 0} / ${Object.entries(
        r.outcomes,
      )
        .filter(([k]) => k !== 'stalled')
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ')} | ${r.head.status} in ${r.head.ms} ms |`,
  ),
];
mkdirSync('perf/results', { recursive: true });
writeFileSync(`perf/results/slow-uploads-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, JSON.stringify(results, null, 2));
process.stdout.write(lines.join('\n') + '\n');
