// Cold start to read-ready with a long log (DESIGN §4: < 500 ms with 100k commits and 50k
// descriptors). Generates the log directly with the compiled core and store (no HTTP, no
// writer queue): a genesis, then commits built as the writer builds them (payload on the head,
// approvals, state root, record hash), each with its proposal, approvals, status change and
// chained audit events, written through store.write() inside one transaction per few thousand
// commits at synchronous=OFF. A checkpoint is then written the way the service writes one
// (entries in batches, then the sealed row). Databases are cached under the temp dir, keyed by
// the parameters, so reruns skip generation.
//
// Then, per configuration, it times `registry serve` from spawn to its "listening on" line, and
// the in-process part (a child that imports dist/server.js and times startRegistry, and one that
// times openLog alone), so that Node's start and module loading show apart from our start.
//
// Usage: node perf/coldstart.mjs [--commits 100000] [--descriptors 50000] [--threshold 2]
//   [--signers 3] [--tail 500 | --tail 0 | --no-checkpoint | --compare] [--runs 5]
//   [--fresh] [--verify] [--profile] [--cache-dir <dir>] [--root <checkout>] [--main dist/registry.mjs]
// --compare measures the three configurations: tail 500, tail 0 and no checkpoint. (A start
// loads the newest checkpoint below the head, so with one checkpoint at the head, tail 0
// measures the fallback: the whole log replayed.)
// --verify runs `registry verify --db` once on each database measured (--fast when the build has it).
// --profile profiles one more start and prints where startRegistry's time went.
// --root measures another checkout's dist/ (a before/after); --main spawns another program than
// dist/registry.mjs, the bundle the registry bin runs (dist/cli/main.js is the same unbundled);
// the in-process probes always import dist/server.js.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, sign as nodeSign } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** Bumped when the generated log changes shape, so that old caches are not reused. */
const GENERATOR = 1;

const { values: args } = parseArgs({
  options: {
    // The checkout whose dist/ and migrations/ are measured (another build, for a before/after).
    root: { type: 'string', default: join(dirname(fileURLToPath(import.meta.url)), '..') },
    commits: { type: 'string', default: '100000' },
    descriptors: { type: 'string', default: '50000' },
    threshold: { type: 'string', default: '2' },
    signers: { type: 'string', default: '3' },
    tail: { type: 'string', default: '500' },
    'no-checkpoint': { type: 'boolean', default: false },
    compare: { type: 'boolean', default: false },
    runs: { type: 'string', default: '5' },
    fresh: { type: 'boolean', default: false },
    verify: { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    // The program `serve` is spawned from, relative to --root (e.g. a bundle of it).
    main: { type: 'string', default: 'dist/registry.mjs' },
    'cache-dir': { type: 'string', default: join(tmpdir(), 'registry-coldstart') },
    // Internal: the in-process probes, run in a child process of their own.
    probe: { type: 'string' },
    genesis: { type: 'string' },
    db: { type: 'string' },
  },
});
const ROOT = args.root;
const DIST = join(ROOT, 'dist');
const dist = (path) => import(join(DIST, path));

// -- measuring ----------------------------------------------------------------------------------

async function main() {
  const params = {
    commits: wholeNumber('commits', args.commits),
    descriptors: wholeNumber('descriptors', args.descriptors),
    threshold: wholeNumber('threshold', args.threshold),
    signers: wholeNumber('signers', args.signers),
  };
  if (params.descriptors > params.commits) fail('--descriptors may not exceed --commits (one put per commit)');
  if (params.threshold < 1 || params.threshold > params.signers) fail('--threshold must be between 1 and --signers');
  const runs = wholeNumber('runs', args.runs);
  const tails = args.compare ? [500, 0, null] : args['no-checkpoint'] ? [null] : [wholeNumber('tail', args.tail)];
  for (const t of tails) if (t !== null && t > params.commits) fail(`--tail ${t} is beyond the log (${params.commits} commits)`);

  const base = await baseDatabase(params);
  const rows = [];
  for (const tail of tails) {
    const db = tail === null ? base : await checkpointedDatabase(base, params, tail);
    const label = tail === null ? 'no checkpoint' : `checkpoint, tail ${tail}`;
    if (args.verify) await verifyOnce(db);
    rows.push({ label, ...(await measure(db, runs)) });
  }
  console.log(
    `\ncold start, ${params.commits} commits, ${params.descriptors} descriptors, ${params.threshold} of ${params.signers} (median of ${runs}; ms):`,
  );
  for (const r of rows) {
    console.log(
      `  ${r.label.padEnd(22)} spawn→listening ${fmt(r.cli)} (cpu ${fmt(r.cliCpu)}) [${r.cli.all.map(Math.round).join(' ')}]` +
        ` | in process: node ${fmt(r.boot)}, imports ${fmt(r.imports)}, startRegistry ${fmt(r.start)} (cpu ${fmt(r.startCpu)})` +
        `, of which openLog ${fmt(r.openLog)} (cpu ${fmt(r.openLogCpu)}): ${r.from}` +
        ` | ${r.cli.median <= 500 ? 'meets' : 'misses'} < 500 ms`,
    );
  }
  console.log(
    '  (wall ms, median; cpu: user+sys of the whole process, worker threads included, which a loaded machine inflates less than wall time)',
  );
}

/** Times `registry serve` from spawn to "listening on", and the in-process probes. */
async function measure(cached, runs) {
  // A scratch copy: a start may write (settings, a checkpoint of its own); the cache stays as made.
  const db = { ...cached, db: join(cached.dir, 'measure.db') };
  for (const suffix of ['', '-wal', '-shm', '.lock']) rmSync(`${db.db}${suffix}`, { force: true });
  copyFileSync(cached.db, db.db);
  const cli = [];
  const cliCpu = [];
  for (let i = 0; i < runs; i++) {
    const { ms, cpu } = await serveOnce(db);
    cli.push(ms);
    cliCpu.push(cpu);
  }
  const boot = [];
  const imports = [];
  const start = [];
  const startCpu = [];
  const openLog = [];
  const openLogCpu = [];
  let from;
  for (let i = 0; i < runs; i++) {
    const s = await probeChild('start', db);
    boot.push(s.boot);
    imports.push(s.imports);
    start.push(s.start);
    startCpu.push(s.cpu);
    const o = await probeChild('openlog', db);
    openLog.push(o.openLog);
    openLogCpu.push(o.cpu);
    from =
      o.checkpoint === null
        ? `replayed ${o.replayed ?? o.version} from the genesis${o.checkpointProblem ? ` (checkpoint refused: ${o.checkpointProblem})` : ''}`
        : `checkpoint ${o.checkpoint} + ${o.replayed} replayed`;
  }
  if (args.profile) await profileStart(db);
  for (const suffix of ['', '-wal', '-shm', '.lock']) rmSync(`${db.db}${suffix}`, { force: true });
  return {
    cli: stats(cli),
    cliCpu: stats(cliCpu),
    boot: stats(boot),
    imports: stats(imports),
    start: stats(start),
    startCpu: stats(startCpu),
    openLog: stats(openLog),
    openLogCpu: stats(openLogCpu),
    from,
  };
}

async function serveOnce(db) {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [join(ROOT, args.main), 'serve', '--genesis', db.genesis, '--db', db.db, '--port', '0', '--log-level', 'warn'],
    { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT },
  );
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const result = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('listening on')) resolve({ ms: performance.now() - t0, cpu: cpuOf(child.pid) });
    });
    void exited.then((code) => reject(new Error(`serve exited (${code}) before listening:\n${stderr}`)));
  });
  await stop(child, exited);
  return result;
}

/** The CPU time (user + system, ms, 10 ms ticks) a running process has used, from /proc; NaN elsewhere. */
function cpuOf(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

async function stop(child, exited) {
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Runs this script as a probe in a child process and returns what it prints. */
async function probeChild(kind, db, nodeArgs = []) {
  const child = spawn(
    process.execPath,
    [...nodeArgs, fileURLToPath(import.meta.url), '--root', ROOT, '--probe', kind, '--genesis', db.genesis, '--db', db.db],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      cwd: ROOT,
    },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`probe ${kind} failed (${code}): ${out}`);
  return JSON.parse(out.trim().split('\n').pop());
}

/** In a child process: `start` imports the server's modules and times startRegistry (to
 * listening); `openlog` times the replay alone. Only node: modules are imported statically,
 * so `boot` is Node's own start up to this script. */
async function probe(kind, genesisPath, dbPath) {
  const boot = performance.now();
  if (kind === 'start') {
    const t0 = performance.now();
    const [{ createLogger }, { startRegistry }, { DEFAULTS }] = await Promise.all([
      dist('obs/logger.js'),
      dist('server.js'),
      dist('config/config.js'),
    ]);
    const t1 = performance.now();
    const config = { ...DEFAULTS, genesis: genesisPath, db: dbPath, port: 0, host: '127.0.0.1', logLevel: 'silent' };
    const cpu0 = process.cpuUsage();
    const h0 = process.hrtime.bigint() / 1000n;
    const reg = await startRegistry(config, createLogger('silent'));
    const t2 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    const window = [Number(h0), Number(process.hrtime.bigint() / 1000n)];
    console.log(JSON.stringify({ boot, imports: t1 - t0, start: t2 - t1, cpu: (cpu.user + cpu.system) / 1000, window }));
    await reg.close();
  } else {
    const [{ SqliteStore }, replay, { fastDigest }, { loadGenesis }] = await Promise.all([
      dist('store/sqlite-store.js'),
      dist('state/replay.js'),
      dist('core/fast-digest.js'),
      dist('server.js'),
    ]);
    const genesis = loadGenesis(genesisPath);
    const store = new SqliteStore({ path: dbPath });
    const digest = await fastDigest();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    // openLogFrom (with checkpoints) says where it started from; openLog is the older entry.
    const opened = replay.openLogFrom
      ? await replay.openLogFrom(store, genesis, digest)
      : { view: await replay.openLog(store, genesis, digest), checkpoint: undefined, replayed: undefined };
    const t1 = performance.now();
    const cpu = process.cpuUsage(cpu0);
    console.log(
      JSON.stringify({
        boot,
        openLog: t1 - t0,
        cpu: (cpu.user + cpu.system) / 1000,
        version: opened.view.head.version,
        checkpoint: opened.checkpoint?.version ?? null,
        replayed: opened.replayed ?? null,
        checkpointProblem: opened.checkpointProblem,
      }),
    );
    await store.close();
  }
  process.exit(0);
}

/** --profile: one more start probe under --cpu-prof; prints the functions that took the most
 * of startRegistry (inclusive, main thread) and where the profile is, for Chrome DevTools. */
async function profileStart(db) {
  const dir = join(db.dir, 'profiles');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const { window } = await probeChild('start', db, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', '250']);
  const file = join(
    dir,
    readdirSync(dir).find((f) => f.endsWith('.cpuprofile')),
  );
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusive = new Map();
  let at = profile.startTime;
  let total = 0;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i];
    if (at < window[0] || at > window[1] || nodes.get(id).callFrame.functionName === '(idle)') return;
    const ms = profile.timeDeltas[i] / 1000;
    total += ms;
    const seen = new Set();
    for (let n = id; n !== undefined; n = parent.get(n)) {
      const f = nodes.get(n).callFrame;
      if (f.functionName === '(root)') continue;
      const name = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${f.lineNumber + 1}`;
      if (seen.has(name)) continue;
      seen.add(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
    }
  });
  console.log(`  profile of startRegistry (${Math.round(total)} ms sampled, profiler overhead included): ${file}`);
  for (const [name, ms] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 25))
    console.log(`    ${ms.toFixed(0).padStart(6)} ms  ${name}`);
}

function verifyOnce(db) {
  const t0 = performance.now();
  const genesisHash = readFileSync(`${db.genesis}.hash`, 'utf8').trim();
  // Node's crypto when this build's verify has it (--fast); the strict @noble path otherwise (slow).
  const help = spawnSync(process.execPath, [join(DIST, 'cli/main.js'), 'verify', '--help'], { encoding: 'utf8' }).stdout;
  const fast = help.includes('--fast') ? ['--fast'] : [];
  process.stderr.write(`verifying ${db.db} with registry verify --db ${fast.join(' ')}…\n`);
  const child = spawn(process.execPath, [join(DIST, 'cli/main.js'), 'verify', '--db', db.db, '--genesis-hash', genesisHash, ...fast], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: ROOT,
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      process.stderr.write(`${out}verify exited ${code} after ${Math.round((performance.now() - t0) / 1000)} s\n`);
      if (code === 0) resolve();
      else reject(new Error(`registry verify --db ${db.db} failed (${code})`));
    }),
  );
}

// -- generating ---------------------------------------------------------------------------------

/** The log without a checkpoint: generated once per parameters, then reused. */
async function baseDatabase(params) {
  const hash = createHash('sha256').update(JSON.stringify({ GENERATOR, ...params }));
  // The schema the log is made with: a changed migration makes another log.
  for (const f of readdirSync(join(ROOT, 'migrations'))
    .filter((f) => f.endsWith('.sql'))
    .sort())
    hash.update(f).update(readFileSync(join(ROOT, 'migrations', f)));
  const key = hash.digest('hex').slice(0, 12);
  const dir = join(args['cache-dir'], `${params.commits}c-${params.descriptors}d-${params.threshold}of${params.signers}-${key}`);
  const db = { dir, genesis: join(dir, 'genesis.json'), db: join(dir, 'registry.db') };
  if (args.fresh) rmSync(dir, { recursive: true, force: true });
  if (existsSync(join(dir, 'done'))) {
    console.log(`using the cached log ${db.db} (${mib(db.db)}; --fresh to generate it again)`);
    return db;
  }
  rmSync(dir, { recursive: true, force: true });
  const building = `${dir}.building-${process.pid}`;
  mkdirSync(building, { recursive: true });
  const t0 = performance.now();
  await generate(params, join(building, 'genesis.json'), join(building, 'registry.db'));
  for (const f of readdirSync(building)) if (f.endsWith('.lock')) rmSync(join(building, f));
  writeFileSync(join(building, 'done'), '');
  renameSync(building, dir);
  console.log(`generated ${db.db} in ${((performance.now() - t0) / 1000).toFixed(1)} s (${mib(db.db)})`);
  return db;
}

/** A copy of the base log with a checkpoint `tail` commits before its head. */
async function checkpointedDatabase(base, params, tail) {
  const version = params.commits - tail;
  const dir = `${base.dir}-cp${version}`;
  const db = { dir, genesis: join(dir, 'genesis.json'), db: join(dir, 'registry.db') };
  if (args.fresh) rmSync(dir, { recursive: true, force: true });
  if (existsSync(join(dir, 'done'))) return db;
  rmSync(dir, { recursive: true, force: true });
  const building = `${dir}.building-${process.pid}`;
  mkdirSync(building, { recursive: true });
  const t0 = performance.now();
  for (const f of ['genesis.json', 'genesis.json.hash', 'registry.db']) copyFileSync(join(base.dir, f), join(building, f));
  await writeCheckpoint(join(building, 'genesis.json'), join(building, 'registry.db'), version);
  for (const f of readdirSync(building)) if (f.endsWith('.lock')) rmSync(join(building, f));
  writeFileSync(join(building, 'done'), '');
  renameSync(building, dir);
  console.log(`wrote a checkpoint at version ${version} (tail ${tail}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return db;
}

const SIGNER_NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy'];
const KINDS = ['service', 'node', 'region', 'placement'];
const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-south-1'];
const TIERS = ['gold', 'silver', 'bronze'];
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** Commits per SQLite transaction while generating. */
const TX_COMMITS = 5000;

function descriptor(n, rev) {
  return {
    id: `${KINDS[n % KINDS.length]}-${n}@${REGIONS[n % REGIONS.length]}`,
    kind: KINDS[n % KINDS.length],
    labels: {
      region: REGIONS[n % REGIONS.length],
      tier: TIERS[n % TIERS.length],
      status: rev % 7 === 6 ? 'draining' : 'online',
      team: `team-${n % 40}`,
    },
    body: {
      addr: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:443`,
      weight: (n * 31 + rev) % 100,
      version: `1.${rev}.0`,
      healthcheck: { path: '/healthz', interval_ms: 5000 },
    },
  };
}

/** A small deterministic PRNG (mulberry32), so that a log is the same for the same parameters. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function generate(params, genesisPath, dbPath) {
  const [{ generateKeyPair, signApproval, approvalMessage }, enc, { assembleGenesis, buildGenesisPayload, buildCommitRecord }] =
    await Promise.all([dist('core/crypto.js'), dist('core/encoding.js'), dist('core/records.js')]);
  const [{ RegistryState, planOps }, { chainAuditEvent }, { fastDigest }, { SqliteStore }] = await Promise.all([
    dist('core/state.js'),
    dist('core/audit.js'),
    dist('core/fast-digest.js'),
    dist('store/sqlite-store.js'),
  ]);
  const { canonicalJson, formatTime, hashBytes, hashOf, utf8Bytes } = enc;
  const digest = await fastDigest();
  const { commits: N, descriptors: D, threshold, signers: S } = params;
  const registryId = 'coldstart';

  const keys = Array.from({ length: S }, (_, i) => ({ id: SIGNER_NAMES[i] ?? `signer-${i}`, ...generateKeyPair() }));
  for (const k of keys)
    k.object = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, Buffer.from(k.secretKey, 'hex')]), format: 'der', type: 'pkcs8' });
  const sign = (k, payloadHash) => nodeSign(null, approvalMessage(payloadHash), k.object).toString('hex');
  if (sign(keys[0], 'b3:00') !== signApproval(keys[0].secretKey, 'b3:00')) throw new Error('the cached key signs differently');

  // Committed one second apart, ending a minute ago.
  const startMs = Date.now() - (N + 60) * 1000;
  const signerSet = { threshold, signers: keys.map((k) => ({ id: k.id, public_key: k.publicKey })) };
  const genesisPayload = buildGenesisPayload(registryId, signerSet, formatTime(startMs));
  const genesisId = hashOf(genesisPayload);
  const genesis = assembleGenesis(
    genesisPayload,
    keys.slice(0, threshold).map((k) => ({ signer_id: k.id, sig: sign(k, genesisId) })),
  );
  const genesisText = canonicalJson(genesis);
  const genesisHash = hashOf(genesis);
  writeFileSync(genesisPath, JSON.stringify(genesis, null, 2) + '\n');
  writeFileSync(`${genesisPath}.hash`, `${genesisHash}\n`);

  const store = new SqliteStore({ path: dbPath, synchronous: 'OFF' });
  // The store's connection, to group commits into large transactions (store.write nests as a savepoint).
  const sql = store.db;
  sql.pragma('journal_mode = WAL');
  sql.pragma('cache_size = -262144');
  await store.initialize({ version: 0, hash: genesisHash, text: genesisText, payloadHash: genesis.payload_hash });

  const state = new RegistryState(signerSet, digest);
  const random = prng(0xc01d57a7);
  const revs = new Uint32Array(D);
  let created = 0;
  let head = { version: 0, hash: genesisHash };
  let audit = null;
  const t0 = performance.now();
  sql.exec('BEGIN');
  for (let c = 0; c < N; c++) {
    const version = c + 1;
    // Puts of new descriptors spread evenly over the log; the others update an existing one.
    const isNew = created < D && Math.floor(((c + 1) * D) / N) > created;
    const n = isNew ? created++ : Math.floor(random() * created);
    const rev = isNew ? 0 : ++revs[n];
    const committedMs = startMs + version * 1000;
    const receivedAt = formatTime(committedMs - 400);
    const payload = {
      type: 'registry.proposal',
      schema_version: 1,
      registry_id: registryId,
      base_version: head.version,
      base_hash: head.hash,
      ops: [{ op: 'put', descriptor: descriptor(n, rev) }],
      reason: isNew ? `add ${n}` : `update ${n} to revision ${rev}`,
      created_at: formatTime(committedMs - 2000),
    };
    const payloadText = canonicalJson(payload);
    const id = hashBytes(utf8Bytes(payloadText), digest);
    const approvals = [];
    for (let j = 0; j < threshold; j++) {
      const k = keys[(c + j) % S];
      approvals.push({ signer_id: k.id, sig: sign(k, id) });
    }
    const delta = planOps(state, payload.ops, version);
    state.apply(delta);
    const committedAt = formatTime(committedMs);
    const record = buildCommitRecord({
      registryId,
      version,
      prevHash: head.hash,
      payload,
      payloadHash: id,
      approvals,
      stateRoot: state.root(),
      committedAt,
    });
    const text = canonicalJson(record);
    const hash = hashBytes(utf8Bytes(text), digest);
    // The events the writer audits for a proposal submitted with a quorum of approvals.
    const events = [
      { at: receivedAt, kind: 'proposal_received', proposal_id: id },
      ...approvals.map((a) => ({ at: receivedAt, kind: 'approval_accepted', proposal_id: id, signer_id: a.signer_id })),
      { at: committedAt, kind: 'committed', proposal_id: id, version },
    ];
    const chained = events.map((fields) => {
      const e = chainAuditEvent(audit, fields);
      audit = { seq: e.event.seq, hash: e.hash };
      return e;
    });
    await store.write({
      proposal: {
        id,
        payloadText,
        baseVersion: head.version,
        createdAt: payload.created_at,
        expiresAt: committedMs - 2000 + 72 * 3600_000,
        proposedThreshold: null,
        receivedAt,
      },
      approvals: approvals.map((a) => ({ proposalId: id, signer_id: a.signer_id, sig: a.sig, receivedAt })),
      commit: { version, hash, text, payloadHash: id },
      statusChanges: [{ proposalId: id, status: 'committed', version }],
      settledAt: committedMs,
      audit: chained,
    });
    head = { version, hash };
    if (version % TX_COMMITS === 0) {
      sql.exec('COMMIT');
      const s = (performance.now() - t0) / 1000;
      process.stderr.write(`\r  generating: ${version}/${N} commits, ${created} descriptors, ${s.toFixed(1)} s`);
      sql.exec('BEGIN');
    }
  }
  sql.exec('COMMIT');
  process.stderr.write('\n');
  sql.pragma('wal_checkpoint(TRUNCATE)');
  await store.close();
  if (state.size !== D) throw new Error(`generated ${state.size} descriptors, not ${D}`);
}

/** Rebuilds the state at `version` from the log and writes it as a checkpoint, as the service
 * does: entries in batches, then the row that seals it. */
async function writeCheckpoint(genesisPath, dbPath, version) {
  const [{ RegistryState, planOps }, { fastDigest }, { SqliteStore }, { canonicalJson }] = await Promise.all([
    dist('core/state.js'),
    dist('core/fast-digest.js'),
    dist('store/sqlite-store.js'),
    dist('core/encoding.js'),
  ]);
  const genesis = JSON.parse(readFileSync(genesisPath, 'utf8'));
  const state = new RegistryState(genesis.payload.signer_set, await fastDigest());
  const store = new SqliteStore({ path: dbPath, synchronous: 'OFF' });
  let last;
  for (let from = 1; from <= version;) {
    const page = await store.commits(from, Math.min(5000, version - from + 1));
    for (const row of page) {
      last = { row, record: JSON.parse(row.text) };
      state.apply(planOps(state, last.record.payload.ops, row.version));
    }
    if (page.length === 0) break;
    from += page.length;
  }
  const root = state.root();
  const head = last ?? { row: await store.commit(0), record: genesis };
  if (head.row.version !== version) throw new Error(`the log ends before version ${version}`);
  if (root !== head.record.state_root) throw new Error(`rebuilt state root ${root} is not version ${version}'s ${head.record.state_root}`);
  const entries = [...state.entries.values()]
    .map((e) => ({ id: e.descriptor.id, changedIn: e.changedIn, json: e.json }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (let i = 0; i < entries.length; i += 2000) await store.addCheckpointEntries(version, entries.slice(i, i + 2000));
  await store.sealCheckpoint({
    version,
    hash: head.row.hash,
    stateRoot: root,
    descriptorCount: entries.length,
    createdAt: formatIso(head.record.committed_at),
    signerSet: canonicalJson(state.signerSet),
    // Every signer set in force up to `version` (no rotation here: the genesis set).
    signerHistory: canonicalJson(state.signerHistoryEntries ?? [{ from: 1, set: state.signerSet }]),
  });
  store.db.pragma('wal_checkpoint(TRUNCATE)');
  await store.close();
}

/** A checkpoint is made a little after its commit. */
const formatIso = (committedAt) => new Date(Date.parse(committedAt) + 1000).toISOString();

// -- helpers ------------------------------------------------------------------------------------

function wholeNumber(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a whole number, not ${text}`);
  return n;
}

function fail(message) {
  console.error(`coldstart: ${message}`);
  process.exit(2);
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor((sorted.length - 1) / 2)], min: sorted[0], max: sorted[sorted.length - 1], all: values };
}

const fmt = (s) => `${Math.round(s.median)}`;

const mib = (path) => `${(statSync(path).size / 1024 / 1024).toFixed(0)} MiB`;

// Last, once every constant above is initialized.
if (args.probe) await probe(args.probe, args.genesis, args.db);
else await main();
