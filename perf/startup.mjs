// Start-up to read-ready with a long log: seeds N commits of K descriptors each through the
// real writer (in process, synchronous=NORMAL to seed fast), then times `registry serve` from
// spawn to its "listening on" line, three times.
// Usage: node perf/startup.mjs [--commits 5000] [--per-commit 10]
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../dist/config/config.js';
import { generateKeyPair, signApproval } from '../dist/core/crypto.js';
import { formatTime, hashOf } from '../dist/core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../dist/core/records.js';
import { createLogger } from '../dist/obs/logger.js';
import { startRegistry } from '../dist/server.js';

const { values } = parseArgs({
  options: { commits: { type: 'string', default: '5000' }, 'per-commit': { type: 'string', default: '10' } },
});
const commits = Number(values.commits);
const perCommit = Number(values['per-commit']);
const dir = mkdtempSync(join(tmpdir(), 'registry-startup-'));
const key = { id: 'alice', ...generateKeyPair() };
const payload = buildGenesisPayload(
  'startup',
  { threshold: 1, signers: [{ id: 'alice', public_key: key.publicKey }] },
  formatTime(Date.now()),
);
writeFileSync(
  join(dir, 'genesis.json'),
  JSON.stringify(assembleGenesis(payload, [{ signer_id: 'alice', sig: signApproval(key.secretKey, hashOf(payload)) }])),
);
const config = {
  ...DEFAULTS,
  genesis: join(dir, 'genesis.json'),
  db: join(dir, 'registry.db'),
  port: 0,
  logLevel: 'silent',
  synchronous: 'NORMAL',
};
const reg = await startRegistry(config, createLogger('silent'));
for (let c = 0; c < commits; c++) {
  const head = reg.view.head;
  const now = Date.now();
  const ops = Array.from({ length: perCommit }, (_, i) => ({
    op: 'put',
    descriptor: { id: `svc-${c}-${i}`, kind: 'service', labels: { region: `r${i % 5}` }, body: { addr: `10.${c % 250}.${i}.1:443` } },
  }));
  const p = {
    type: 'registry.proposal',
    schema_version: 1,
    registry_id: 'startup',
    base_version: head.version,
    base_hash: head.hash,
    ops,
    created_at: formatTime(now),
    expires_at: formatTime(now + 3600_000),
  };
  await reg.writer.submit({ payload: p, approvals: [{ signer_id: 'alice', sig: signApproval(key.secretKey, hashOf(p)) }] });
}
await reg.close();
const times = [];
for (let i = 0; i < 3; i++) {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    ['dist/registry.mjs', 'serve', '--genesis', config.genesis, '--db', config.db, '--port', '0', '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise((resolve) => child.stdout.on('data', (d) => String(d).includes('listening on') && resolve()));
  times.push(performance.now() - t0);
  child.kill();
  await new Promise((r) => child.on('exit', r));
}
console.log(
  `start to read-ready with ${commits} commits and ${commits * perCommit} descriptors: ${times.map((t) => `${Math.round(t)} ms`).join(', ')} (process spawn included)`,
);
