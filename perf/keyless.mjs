// What a party without a key can make the service spend (issue 14): the server's CPU per
// request refused for want of a valid signature, for bodies up to the 1 MiB limit. The
// registry runs as `registry serve` in a child process; its CPU is read from /proc around N
// sequential requests of each kind: the event-loop thread's (schedstat, nanoseconds) and the
// whole process's (utime + stime, every thread: GC, the HTTP parser's I/O). Linux only.
// Usage: npm run perf:keyless [-- --n 100 --log-level info]
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateKeyPair, signApproval } from '../dist/core/crypto.js';
import { formatTime, hashOf } from '../dist/core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../dist/core/records.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '100' },
    'log-level': { type: 'string', default: 'info' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(values.n);
const CLK_TCK = 100;

const dir = mkdtempSync(join(tmpdir(), 'registry-keyless-'));
const key = (id) => ({ id, ...generateKeyPair() });
const [alice, bob, carol] = ['alice', 'bob', 'carol'].map(key);
const mallory = key('mallory');
const genesisPayload = buildGenesisPayload(
  'keyless',
  { threshold: 2, signers: [alice, bob, carol].map((k) => ({ id: k.id, public_key: k.publicKey })) },
  formatTime(Date.now()),
);
const genesisHash = hashOf(genesisPayload);
writeFileSync(
  join(dir, 'genesis.json'),
  JSON.stringify(
    assembleGenesis(
      genesisPayload,
      [alice, bob].map((k) => ({ signer_id: k.id, sig: signApproval(k.secretKey, genesisHash) })),
    ),
  ),
);

const child = spawn(
  process.execPath,
  [
    'dist/cli/main.js',
    'serve',
    '--genesis',
    join(dir, 'genesis.json'),
    '--db',
    join(dir, 'registry.db'),
    '--port',
    '0',
    '--log-level',
    values['log-level'],
    // What is measured is the cost of each refusal, not the limits that would bound their rate.
    '--write-rate-per-address',
    '0',
    '--write-rate-per-signer',
    '0',
    '--shed-writes-event-loop-delay-ms',
    '0',
    '--shed-reads-event-loop-delay-ms',
    '0',
  ],
  // Log lines go where an operator's would: out of the process, to a pipe nobody waits on.
  { stdio: ['ignore', 'pipe', 'ignore'] },
);
const base = await new Promise((resolve, reject) => {
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
    const m = /listening on (http:\/\/\S+)/.exec(out);
    if (m) resolve(new URL(m[1]));
  });
  child.once('exit', (code) => reject(new Error(`registry exited ${code}`)));
});

/** CPU of the event-loop thread (ns) and of the whole process (ms, 10 ms ticks). */
function cpu() {
  const sched = readFileSync(`/proc/${child.pid}/task/${child.pid}/schedstat`, 'utf8').split(' ');
  const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { loopNs: Number(sched[0]), processMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function post(path, bytes) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': bytes.length },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode, text }));
      },
    );
    req.on('error', reject);
    req.end(bytes);
  });
}
const get = (path) => fetch(new URL(path, base)).then((r) => r.json());

const head = await get('/registry/head');
const created = Date.now();
function payload(ops, n = 0) {
  return {
    type: 'registry.proposal',
    schema_version: 1,
    registry_id: 'keyless',
    base_version: head.version,
    base_hash: head.hash,
    ops,
    reason: `keyless ${n}`,
    created_at: formatTime(created),
  };
}

/** 10,000 put ops padded so that the whole request body is just under 1 MiB. */
function bigOps(bodyBudget) {
  const ops = Array.from({ length: 10_000 }, (_, i) => ({
    op: 'put',
    descriptor: { id: `svc-${i}`, kind: 'service', labels: { r: 'eu' }, body: { p: '' } },
  }));
  const size = JSON.stringify({ payload: payload(ops), approvals: [{ signer_id: 'mallory', sig: '0'.repeat(128) }] }).length;
  const pad = Math.floor((bodyBudget - size) / ops.length);
  if (pad < 0) throw new Error(`10,000 ops take ${size} bytes, over ${bodyBudget}`);
  for (const op of ops) op.descriptor.body.p = 'x'.repeat(pad);
  return ops;
}
const big = bigOps(1024 * 1024 - 64);
/** One put whose body holds `count` copies of `item`: the same 1 MiB, shaped to cost the most to
 * parse (empty objects) or to canonicalize (small objects with their keys out of order). */
function shaped(item, bodyBudget) {
  const one = JSON.stringify(item).length + 1;
  const size = JSON.stringify({ payload: payload([]), approvals: [{ signer_id: 'mallory', sig: '0'.repeat(128) }] }).length + 120;
  const count = Math.floor((bodyBudget - size) / one);
  return [
    {
      op: 'put',
      descriptor: { id: 'svc-shaped', kind: 'service', labels: {}, body: { x: Array.from({ length: count }, () => ({ ...item })) } },
    },
  ];
}
const emptyObjects = shaped({}, 1024 * 1024 - 64);
const unordered = shaped({ b: 0, a: 0 }, 1024 * 1024 - 64);
const signers64 = Array.from({ length: 64 }, (_, i) => key(`s${String(i).padStart(2, '0')}`));
const rotation = [
  { op: 'set_signers', signer_set: { threshold: 33, signers: signers64.map((k) => ({ id: k.id, public_key: k.publicKey })) } },
];

const body = (p, approvals) => Buffer.from(JSON.stringify({ payload: p, approvals }));
const stranger = (p) => [{ signer_id: 'mallory', sig: signApproval(mallory.secretKey, hashOf(p)) }];
// alice's id, mallory's signature: what anyone can write without alice's key.
const forged = (p) => [{ signer_id: 'alice', sig: signApproval(mallory.secretKey, hashOf(p)) }];
const valid = (p) => [{ signer_id: 'alice', sig: signApproval(alice.secretKey, hashOf(p)) }];
const small = [{ op: 'put', descriptor: { id: 'svc-small', kind: 'service', labels: {}, body: {} } }];

const scenarios = [
  { name: 'small proposal, a stranger’s approval (baseline)', expect: 422, bodies: () => body(payload(small), stranger(payload(small))) },
  { name: '1 MiB, 10,000 ops, a stranger’s approval', expect: 422, bodies: () => body(payload(big), stranger(payload(big))) },
  {
    name: '1 MiB, 10,000 ops, a current signer’s id with a bad signature',
    expect: 422,
    bodies: () => body(payload(big), forged(payload(big))),
  },
  {
    name: '1 MiB of empty objects (the costliest to parse), a stranger’s approval',
    expect: 422,
    bodies: () => body(payload(emptyObjects), stranger(payload(emptyObjects))),
  },
  {
    name: '1 MiB of small objects, keys out of order (the costliest to canonicalize), a current signer’s id with a bad signature',
    expect: 422,
    bodies: () => body(payload(unordered), forged(payload(unordered))),
  },
  { name: '64-key set_signers, a stranger’s approval', expect: 422, bodies: () => body(payload(rotation), stranger(payload(rotation))) },
  {
    name: '64-key set_signers, a current signer’s id with a bad signature',
    expect: 422,
    bodies: () => body(payload(rotation), forged(payload(rotation))),
  },
  {
    name: '64-key set_signers, validly signed by a current signer (accepted, for reference)',
    expect: 201,
    signed: true,
    bodies: (i) => body(payload(rotation, i), valid(payload(rotation, i))),
  },
];

const results = [];
for (const s of scenarios) {
  // A valid proposal is new each time (its reason differs), so each one is admitted in full.
  const n = s.signed ? Math.min(N, 50) : N;
  const bytes = s.signed ? Array.from({ length: n + 3 }, (_, i) => s.bodies(i)) : [s.bodies()];
  const at = (i) => bytes[s.signed ? i : 0];
  for (let i = 0; i < 3; i++) {
    const r = await post('/registry/proposals', at(n + i));
    if (r.status !== s.expect) throw new Error(`${s.name}: expected ${s.expect}, got ${r.status} ${r.text.slice(0, 300)}`);
  }
  const before = cpu();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const r = await post('/registry/proposals', at(i));
    if (r.status !== s.expect) throw new Error(`${s.name}: expected ${s.expect}, got ${r.status} ${r.text.slice(0, 300)}`);
  }
  const wall = performance.now() - t0;
  const after = cpu();
  results.push({
    scenario: s.name,
    status: s.expect,
    body_bytes: at(0).length,
    requests: n,
    loop_cpu_ms: (after.loopNs - before.loopNs) / 1e6 / n,
    process_cpu_ms: (after.processMs - before.processMs) / n,
    wall_ms: wall / n,
  });
}

const audit = await get('/registry/audit?limit=1000');
child.kill('SIGTERM');
agent.destroy();
await new Promise((resolve) => child.once('exit', resolve));
rmSync(dir, { recursive: true, force: true });

if (values.json) process.stdout.write(JSON.stringify({ results, audit_events: audit.events.length }, null, 2) + '\n');
else {
  const f = (x) => x.toFixed(2);
  process.stdout.write(
    '| request | answer | body | event-loop CPU ms | process CPU ms | wall ms |\n|---|---|---|---|---|---|\n' +
      results
        .map(
          (r) =>
            `| ${r.scenario} | ${r.status} | ${(r.body_bytes / 1024).toFixed(0)} KiB | ${f(r.loop_cpu_ms)} | ${f(r.process_cpu_ms)} | ${f(r.wall_ms)} |`,
        )
        .join('\n') +
      `\n\n${N} requests each (at most 50 of the accepted kind), log level ${values['log-level']}; ` +
      `audit events after the run: ${audit.events.length} (genesis start and the accepted proposals only).\n`,
  );
}
