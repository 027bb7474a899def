// `registry verify` throughput: builds a log of N commits with K approvals each through the real
// writer (in process, synchronous=OFF to seed fast), then verifies its SQLite file with the
// independent auditor (dist/verify) on the default path (strict @noble/ed25519 on worker threads,
// one per core) and with --fast (Node's crypto), and prints approvals verified per second, end to
// end (replay, audit chain, table cross-checks included).
// Usage: npm run perf:verify [-- --commits 2000 --approvals 3 --in-thread --keep]
//   --in-thread  also time the strict path on the main thread alone (slow: ~20 s for 6,000)
//   --keep       keep the database and print its path (then: registry verify --db <file>)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../dist/config/config.js';
import { generateKeyPair, signApproval } from '../dist/core/crypto.js';
import { formatTime, hashOf } from '../dist/core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../dist/core/records.js';
import { createLogger } from '../dist/obs/logger.js';
import { startRegistry } from '../dist/server.js';
import { verifyDb } from '../dist/verify/verify.js';

const { values } = parseArgs({
  options: {
    commits: { type: 'string', default: '2000' },
    approvals: { type: 'string', default: '3' },
    'in-thread': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const commits = Number(values.commits);
const k = Number(values.approvals);
if (!(commits >= 1 && k >= 1 && k <= 64)) throw new Error('--commits ≥ 1 and 1 ≤ --approvals ≤ 64');

const dir = mkdtempSync(join(tmpdir(), 'registry-perf-verify-'));
const REGISTRY = 'perf-verify';
const keys = Array.from({ length: k }, (_, i) => ({ id: `s${String(i).padStart(2, '0')}`, ...generateKeyPair() }));
const set = { threshold: k, signers: keys.map((s) => ({ id: s.id, public_key: s.publicKey })) };
const genesisPayload = buildGenesisPayload(REGISTRY, set, formatTime(Date.now()));
const sign = (hash) => keys.map((s) => ({ signer_id: s.id, sig: signApproval(s.secretKey, hash) }));
writeFileSync(join(dir, 'genesis.json'), JSON.stringify(assembleGenesis(genesisPayload, sign(hashOf(genesisPayload)))));
const db = join(dir, 'registry.db');
const config = { ...DEFAULTS, genesis: join(dir, 'genesis.json'), db, port: 0, logLevel: 'silent', synchronous: 'OFF' };

let t0 = performance.now();
const reg = await startRegistry(config, createLogger('silent'));
for (let c = 0; c < commits; c++) {
  const head = reg.view.head;
  const now = Date.now();
  const p = {
    type: 'registry.proposal',
    schema_version: 1,
    registry_id: REGISTRY,
    base_version: head.version,
    base_hash: head.hash,
    // a few hundred descriptors, replaced over and over: the state root's buckets change
    ops: [{ op: 'put', descriptor: { id: `svc-${c % 500}`, kind: 'service', labels: { region: `r${c % 7}` }, body: { n: c } } }],
    created_at: formatTime(now),
    expires_at: formatTime(now + 3600_000),
  };
  const r = await reg.writer.submit({ payload: p, approvals: sign(hashOf(p)) });
  if (r.view.status !== 'committed') throw new Error(`commit ${c + 1} was not made: ${r.view.status}`);
}
await reg.close();
const built = (performance.now() - t0) / 1000;
const approvals = commits * k + k; // the genesis's too
console.log(`built ${commits} commits × ${k} approvals (${approvals} approvals with the genesis's) in ${built.toFixed(1)} s: ${db}`);

const runs = [
  { name: `default: strict @noble/ed25519, ${availableParallelism()} worker thread(s)`, opts: {} },
  { name: `--fast: Node crypto, ${Math.max(1, availableParallelism() - 1)} worker thread(s)`, opts: { fast: true } },
];
if (values['in-thread']) runs.push({ name: 'strict, in-thread (--workers 0)', opts: { workers: 0 } });
console.log(
  `${availableParallelism()} cores; load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(', ')} (other work on the machine slows the wall clock)`,
);
for (const run of runs) {
  const cpu0 = process.cpuUsage();
  t0 = performance.now();
  const s = await verifyDb(db, run.opts);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  console.log(
    `${run.name.padEnd(50)} ${seconds.toFixed(2).padStart(6)} s  ${String(Math.round(approvals / seconds)).padStart(6)} approvals/s` +
      `  (${cpuSeconds.toFixed(2)} CPU s: ${Math.round(approvals / cpuSeconds)} per CPU second; ${s.signatures.how})`,
  );
}
if (values.keep) console.log(`kept ${db}`);
else rmSync(dir, { recursive: true, force: true });
