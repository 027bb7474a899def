// In-process operations for perf/gate.mjs, measured under callgrind like the servers (the same
// preload, syncs and dumps, driven from outside: perf/lib/callgrind.mjs's measureOp). It sets up
// (uncounted: valgrind starts with --instr-atstart=no), prints `listening on in-process`, then
// reads commands on stdin, one a line: `run KEY COUNT`, answered `done KEY` on stdout.
//
//   verify KEY COUNT: COUNT approval verifications (ApprovalVerifier.verify: node:crypto's
//           Ed25519, keys cached as in the writer), of distinct signatures by the three signers.
//   replay KEY COUNT: one replayed commit at start: what start-up does per commit in the log
//           (open the store, replay it: hash, link and apply every commit, check the state root;
//           the service's openLog), on a log of COUNT governance commits (one put each, as
//           perf/lib/registry.mjs's flowOps). COUNT is the warm-up chunk, N or 3N, so the N/3N
//           difference / 2N is one commit's share. The rest of the start (Fastify's routes and
//           serializers, compiled anew each time) costs the same whatever the log holds.
//
// Usage (perf/gate.mjs runs it): valgrind --tool=callgrind --instr-atstart=no ... node
//   --expose-gc --import=<sync preload> perf/gate-inprocess.mjs --dir D [--ops verify,replay]
//   [--claims 1000] [--logs 200,600]
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { DEFAULTS } from '../dist/config/config.js';
import { ApprovalVerifier, signApproval } from '../dist/core/crypto.js';
import { hashOf } from '../dist/core/encoding.js';
import { fastDigest } from '../dist/core/fast-digest.js';
import { createLogger } from '../dist/obs/logger.js';
import { loadGenesis, startRegistry } from '../dist/server.js';
import { openLog } from '../dist/state/replay.js';
import { SqliteStore } from '../dist/store/sqlite-store.js';
import { KEYS, flowOps, proposal, writeGenesis } from './lib/registry.mjs';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    ops: { type: 'string', default: 'verify,replay' },
    claims: { type: 'string', default: '1000' },
    logs: { type: 'string', default: '200,600' },
  },
});
const ops = values.ops.split(',').filter(Boolean);
const dir = values.dir;
const run = {};

if (ops.includes('verify')) {
  const claims = Array.from({ length: Number(values.claims) }, (_, i) => {
    const k = KEYS[i % 3];
    const id = hashOf({ perf: 'verify', i });
    return [k.publicKey, id, signApproval(k.secretKey, id)];
  });
  const verifier = new ApprovalVerifier();
  let next = 0;
  run.verify = (count) => {
    for (let i = 0; i < count; i++, next = (next + 1) % claims.length)
      if (!verifier.verify(...claims[next])) throw new Error(`verify: claim ${next} does not verify`);
  };
}

if (ops.includes('replay')) {
  const genesis = writeGenesis(dir);
  const logger = createLogger('silent');
  mkdirSync(join(dir, 'replay'), { recursive: true });
  const logs = new Map();
  // Each log written through the writer (synchronous=NORMAL: faster, and the same bytes).
  for (const commits of values.logs.split(',').map(Number)) {
    const db = join(dir, 'replay', `${commits}.db`);
    const reg = await startRegistry({ ...DEFAULTS, genesis, db, port: 0, logLevel: 'silent', synchronous: 'NORMAL' }, logger);
    for (let i = 0; i < commits; i++) {
      const p = proposal(reg.view.head, flowOps(i));
      const id = hashOf(p);
      await reg.writer.submit({ payload: p, approvals: [{ signer_id: 'alice', sig: signApproval(KEYS[0].secretKey, id) }] });
      await reg.writer.approve(id, { signer_id: 'bob', sig: signApproval(KEYS[1].secretKey, id) });
    }
    await reg.close();
    logs.set(commits, db);
  }
  const checked = loadGenesis(genesis);
  const digest = await fastDigest();
  run.replay = async (count) => {
    const db = logs.get(count);
    if (!db) throw new Error(`replay: no log of ${count} commits (--logs ${values.logs})`);
    const store = new SqliteStore({ path: db, synchronous: 'FULL' });
    const view = await openLog(store, checked, digest);
    if (view.head.version !== count) throw new Error(`replay: ${db} holds ${view.head.version} commits`);
    await store.close();
  };
}

process.stdout.write('listening on in-process\n');
for await (const line of createInterface({ input: process.stdin })) {
  const [command, key, count] = line.split(' ');
  if (command !== 'run' || !run[key]) throw new Error(`unknown command: ${line}`);
  await run[key](Number(count));
  process.stdout.write(`done ${key}\n`);
}
