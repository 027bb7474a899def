// Wall-clock figures (npm run perf), for both profiles (micronode: --db :memory:; macronode: a
// file, synchronous=FULL), on a registry seeded by the committed generator (perf/lib/registry.mjs,
// 10,000 descriptors by default, --descriptors 100000 for the large profile):
//
//   - reads against references serving byte-identical answers: a bare Fastify route and raw
//     node:http (perf/bare-server.mjs), in interleaved rounds (reference, raw, registry, for each
//     read, then again), medians and the median of the per-round ratios; the registry's head
//     row is the read throughput at saturation (--connections, 64);
//   - the head at fixed rates (500, 1,000, 2,500, 3,000 requests/s: autocannon's overallRate,
//     each request sent on schedule, its latency from then: no coordinated omission as long as
//     the achieved rate holds, which the table shows);
//   - reads at saturation while commits run at 50/s: the head's p99 beside the same load alone;
//   - governance flows (read the head, propose with one approval, approve -> commit, 2-of-3) at
//     5 commits/s and back to back (a flow's successor must be based on its commit: one client);
//   - bulk registration: one proposal of 10,000 puts, descriptors committed per second;
//   - start to read-ready (spawn to the "listening on" line): micronode empty, macronode
//     restarted on its log once the scenarios above are done (replaying all of it);
//   - approval verification in process (node:crypto's Ed25519, as the writer verifies);
//   - the server's CPU (user + system, from /proc) and RSS in every scenario.
//
// These machines are shared: absolute figures swing ±20% from run to run; the ratios are the
// figures to compare across runs. The service runs with its per-address limits raised out of
// the benchmark client's reach (perf/lib/registry.mjs, PERF_LIMITS). etcd's JSON gateway, the
// system a user might pick instead, is measured where `etcd` is installed (not yet: skipped).
//
// Writes perf/results/<timestamp>.json and .md (the Markdown table, also printed).
// Usage: npm run perf [-- --descriptors 10000 --profile micronode --seconds 3 --rounds 3
//          --connections 64 --rate-seconds 8 --update-baselines]
//   --update-baselines writes this run's figures into baselines/<profile>.json's `informational`.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { startServer, stopServer } from './lib/callgrind.mjs';
import { Client, PROFILES, batchBody, flowOps, perfConfig, readPaths, seed, serveArgs, signedFlow, writeGenesis } from './lib/registry.mjs';

const { values } = parseArgs({
  options: {
    profile: { type: 'string', multiple: true },
    descriptors: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
    'rate-seconds': { type: 'string', default: '8' },
    rates: { type: 'string', default: '500,1000,2500,3000' },
    'flow-seconds': { type: 'string', default: '8' },
    bulk: { type: 'string', default: '10000' },
    'update-baselines': { type: 'boolean', default: false },
  },
});
const profiles = values.profile ?? PROFILES;
const descriptors = Number(values.descriptors);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const rateSeconds = Number(values['rate-seconds']);
const rates = values.rates.split(',').map(Number);
const flowSeconds = Number(values['flow-seconds']);
const bulk = Number(values.bulk);

const started = performance.now();
const log = (msg) => process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0)} s] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (sorted, p) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] : undefined;
const dir = mkdtempSync(join(tmpdir(), 'registry-perf-'));
const genesis = writeGenesis(dir);
const { file: config, raised } = await perfConfig(dir);

/** CPU time (user + system) of a process, in ms, and its RSS. */
function usage(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (f) => Number(new RegExp(`${f}:\\s+(\\d+) kB`).exec(status)[1]);
  return {
    cpuMs: (Number(fields[11]) + Number(fields[12])) * 10,
    rssMiB: kib('VmRSS') / 1024,
    hwmMiB: kib('VmHWM') / 1024,
    t: performance.now(),
  };
}
/** Runs `fn`, returning its value and the server's CPU (cores busy) and RSS over it. */
async function metered(pid, fn) {
  const a = usage(pid);
  const value = await fn();
  const b = usage(pid);
  return { ...value, server: { cpuCores: (b.cpuMs - a.cpuMs) / (b.t - a.t), rssMiB: b.rssMiB, hwmMiB: b.hwmMiB } };
}

/** autocannon, every latency kept (it reports no p95). */
function load({ url, duration = seconds, headers = {}, method = 'GET', body, overallRate, conns = connections, expect = 200 }) {
  const latencies = [];
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        connections: conns,
        duration,
        method,
        headers: body ? { ...headers, 'content-type': 'application/json' } : headers,
        ...(body ? { body } : {}),
        ...(overallRate ? { overallRate } : {}),
      },
      (err, r) => {
        if (err) return reject(err);
        latencies.sort((a, b) => a - b);
        const unexpected = r.errors + r.timeouts + (expect === 200 ? r.non2xx : r.requests.total - (r['3xx'] ?? 0));
        resolve({
          rps: r.requests.total / r.duration,
          requests: r.requests.total,
          p50: pct(latencies, 50),
          p95: pct(latencies, 95),
          p99: pct(latencies, 99),
          max: latencies.at(-1),
          errors: unexpected,
        });
      },
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  });
}

/** One governance flow's latency (propose and approve; the head read and signing before). */
async function timedFlow(client, i) {
  const head = await client.json('GET', '/registry/head');
  const f = signedFlow(head, flowOps(i));
  const t0 = performance.now();
  await client.json('POST', '/registry/proposals', f.submission);
  const r = await client.json('POST', `/registry/proposals/${f.id}/approvals`, f.approval);
  if (r.status !== 'committed') throw new Error(`not committed: ${JSON.stringify(r)}`);
  return performance.now() - t0;
}
const summary = (ms) => {
  const s = [...ms].sort((a, b) => a - b);
  return { count: s.length, p50: pct(s, 50), p95: pct(s, 95), p99: pct(s, 99), max: s.at(-1) };
};

async function runProfile(profile) {
  const out = { profile, descriptors };
  const db = join(dir, `${profile}.db`);
  const t0 = performance.now();
  const registry = await startServer(
    profile,
    process.execPath,
    serveArgs({ genesis, profile, db, config }),
    join(dir, `${profile}.stderr.log`),
  );
  out.start = { emptyMs: performance.now() - t0 };
  const client = new Client(registry.url);
  let flows = 0;
  try {
    const ts = performance.now();
    await seed(client, descriptors);
    out.seedSeconds = (performance.now() - ts) / 1000;
    log(`${profile}: seeded ${descriptors} descriptors in ${out.seedSeconds.toFixed(1)} s`);

    // -- reads against the references --
    const paths = readPaths(descriptors);
    const reads = [
      { key: 'head', name: 'GET /registry/head', path: paths.head },
      { key: 'head304', name: 'GET /registry/head, 304', path: paths.head, revalidate: true },
      { key: 'version', name: 'GET /registry/1 (immutable)', path: paths.version },
      { key: 'lookup', name: 'GET /registry/descriptors/{id}', path: paths.lookup },
      { key: 'filter', name: `filtered page of 100 over ${descriptors.toLocaleString('en-US')}`, path: paths.filter },
      {
        key: 'batch',
        name: 'POST descriptors:batch, 50 ids',
        path: '/registry/descriptors:batch',
        method: 'POST',
        body: batchBody(descriptors),
      },
    ];
    const refArgs = [];
    for (const r of reads) {
      const res = await client.request(r.method ?? 'GET', r.path, r.body);
      if (res.status !== 200) throw new Error(`${r.path}: ${res.status}`);
      r.bytes = res.body.length;
      r.etag = res.headers.etag;
      if (r.revalidate) continue;
      writeFileSync(join(dir, `${r.key}.body`), res.body);
      refArgs.push(`${r.key}=${join(dir, `${r.key}.body`)}=${r.etag ?? ''}=${r.method ?? 'GET'}`);
    }
    const bare = await startServer('bare', process.execPath, ['perf/bare-server.mjs', ...refArgs], join(dir, 'bare.stderr.log'));
    const raw = await startServer('raw', process.execPath, ['perf/bare-server.mjs', '--raw', ...refArgs], join(dir, 'raw.stderr.log'));
    const target = (r, server) => ({
      url: server === registry ? `${registry.url}${r.path}` : `${server.url}/bare/${r.revalidate ? 'head' : r.key}`,
      method: r.method,
      body: r.body,
      headers: r.revalidate && server === registry ? { 'if-none-match': r.etag } : {},
      expect: r.revalidate && server === registry ? 304 : 200,
    });
    for (const r of reads) for (const s of [bare, raw, registry]) await load({ ...target(r, s), duration: 1 }); // warm-up
    const samples = Object.fromEntries(reads.map((r) => [r.key, { registry: [], bare: [], raw: [] }]));
    for (let round = 0; round < rounds; round++) {
      for (const r of reads) {
        samples[r.key].bare.push(await load(target(r, bare)));
        samples[r.key].raw.push(await load(target(r, raw)));
        samples[r.key].registry.push(await metered(registry.pid, () => load(target(r, registry))));
      }
      log(`${profile}: reads, round ${round + 1} of ${rounds}`);
    }
    await stopServer(bare);
    await stopServer(raw);
    out.reads = reads.map((r) => {
      const s = samples[r.key];
      const m = (xs, f) => median(xs.map(f));
      return {
        key: r.key,
        name: r.name,
        bytes: r.bytes,
        rps: m(s.registry, (x) => x.rps),
        bareRps: m(s.bare, (x) => x.rps),
        rawRps: m(s.raw, (x) => x.rps),
        ratioBare: m(s.registry, (x) => x.rps / s.bare[s.registry.indexOf(x)].rps),
        ratioRaw: m(s.registry, (x) => x.rps / s.raw[s.registry.indexOf(x)].rps),
        p50: m(s.registry, (x) => x.p50),
        p95: m(s.registry, (x) => x.p95),
        p99: m(s.registry, (x) => x.p99),
        errors: s.registry.reduce((n, x) => n + x.errors, 0),
        cpuCores: m(s.registry, (x) => x.server.cpuCores),
        rssMiB: Math.max(...s.registry.map((x) => x.server.rssMiB)),
        rounds: s,
      };
    });

    // -- the head at fixed rates --
    out.fixedRate = [];
    for (const rate of rates) {
      const r = await metered(registry.pid, () => load({ url: `${registry.url}${paths.head}`, overallRate: rate, duration: rateSeconds }));
      out.fixedRate.push({ rate, ...r });
      log(`${profile}: head at ${rate}/s: achieved ${r.rps.toFixed(0)}/s, p95 ${r.p95.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms`);
    }

    // -- reads at saturation, alone and while commits run at 50/s --
    const alone = await metered(registry.pid, () => load({ url: `${registry.url}${paths.head}`, duration: rateSeconds }));
    const writer = new Client(registry.url);
    let writing = true;
    const commitMs = [];
    const commits = (async () => {
      const t0 = performance.now();
      for (let i = 0; writing; i++) {
        const due = t0 + i * 20; // 50 a second
        if (due > performance.now()) await sleep(due - performance.now());
        commitMs.push(await timedFlow(writer, flows++));
      }
      return (performance.now() - t0) / 1000;
    })();
    const during = await metered(registry.pid, () => load({ url: `${registry.url}${paths.head}`, duration: rateSeconds }));
    writing = false;
    const writeSeconds = await commits;
    writer.close();
    out.readsUnderCommits = {
      alone,
      during,
      p99Change: during.p99 / alone.p99 - 1,
      commitsPerSecond: commitMs.length / writeSeconds,
      commit: summary(commitMs),
    };
    log(
      `${profile}: head p99 ${alone.p99.toFixed(1)} ms alone, ${during.p99.toFixed(1)} ms with ${out.readsUnderCommits.commitsPerSecond.toFixed(0)} commits/s`,
    );

    // -- governance flows: at 5 commits/s, then back to back --
    const paced = await metered(registry.pid, async () => {
      const ms = [];
      const t0 = performance.now();
      for (let i = 0; performance.now() - t0 < flowSeconds * 1000; i++) {
        const due = t0 + i * 200;
        if (due > performance.now()) await sleep(due - performance.now());
        ms.push(await timedFlow(client, flows++));
      }
      return { ...summary(ms), perSecond: ms.length / ((performance.now() - t0) / 1000) };
    });
    const saturated = await metered(registry.pid, async () => {
      const ms = [];
      const t0 = performance.now();
      while (performance.now() - t0 < flowSeconds * 1000) ms.push(await timedFlow(client, flows++));
      return { ...summary(ms), perSecond: ms.length / ((performance.now() - t0) / 1000) };
    });
    out.flows = { paced, saturated };
    log(
      `${profile}: flows at 5/s p95 ${paced.p95.toFixed(1)} ms; back to back ${saturated.perSecond.toFixed(0)}/s, p95 ${saturated.p95.toFixed(1)} ms`,
    );

    // -- bulk registration: one proposal of `bulk` puts --
    out.bulk = await metered(registry.pid, async () => {
      const ops = Array.from({ length: bulk }, (_, i) => ({
        op: 'put',
        descriptor: { id: `bulk-${i}`, kind: 'node', labels: {}, body: { a: `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}` } },
      }));
      const head = await client.json('GET', '/registry/head');
      const f = signedFlow(head, ops);
      const t0 = performance.now();
      await client.json('POST', '/registry/proposals', f.submission);
      const t1 = performance.now();
      const r = await client.json('POST', `/registry/proposals/${f.id}/approvals`, f.approval);
      const t2 = performance.now();
      if (r.status !== 'committed') throw new Error(`bulk: not committed: ${JSON.stringify(r)}`);
      return {
        descriptors: bulk,
        bodyBytes: Buffer.byteLength(f.submission),
        proposeMs: t1 - t0,
        commitMs: t2 - t1,
        perSecond: bulk / ((t2 - t0) / 1000),
      };
    });
    log(`${profile}: bulk registration of ${bulk}: ${out.bulk.perSecond.toFixed(0)} descriptors/s`);
    out.rss = usage(registry.pid);
    out.commits = (await client.json('GET', '/registry/head')).version;
  } finally {
    client.close();
    await stopServer(registry);
  }
  if (profile === 'macronode') {
    // Start again on the log just written: spawn to read-ready, replaying every commit.
    const t1 = performance.now();
    const again = await startServer(
      `${profile}-restart`,
      process.execPath,
      serveArgs({ genesis, profile, db, config }),
      join(dir, `${profile}-restart.stderr.log`),
    );
    out.start.withLogMs = performance.now() - t1;
    out.start.rssMiB = usage(again.pid).rssMiB;
    await stopServer(again);
    log(`${profile}: start to read-ready with ${out.commits} commits: ${out.start.withLogMs.toFixed(0)} ms`);
  }
  return out;
}

/** Approval verification in process, as the writer does it: µs per approval. */
async function verification(count = 5000) {
  const { ApprovalVerifier, signApproval } = await import('../dist/core/crypto.js');
  const { hashOf } = await import('../dist/core/encoding.js');
  const { KEYS } = await import('./lib/registry.mjs');
  const claims = Array.from({ length: count }, (_, i) => {
    const id = hashOf({ perf: 'verify', i });
    return [KEYS[i % 3].publicKey, id, signApproval(KEYS[i % 3].secretKey, id)];
  });
  const verifier = new ApprovalVerifier();
  for (const c of claims.slice(0, 500)) verifier.verify(...c); // warm-up
  const us = [];
  for (const c of claims) {
    const t = process.hrtime.bigint();
    if (!verifier.verify(...c)) throw new Error('a signature did not verify');
    us.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  return summary(us);
}

// -- run ------------------------------------------------------------------------------------

const etcd = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' }).stdout.trim();
log(
  `perf: profiles ${profiles.join(', ')}; ${descriptors} descriptors; load ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs; ` +
    `limits raised for the benchmark client: ${JSON.stringify(raised)}`,
);
const results = [];
for (const profile of profiles) results.push(await runProfile(profile));
const verify = await verification();
log(`approval verification: p50 ${verify.p50.toFixed(0)} µs, p99 ${verify.p99.toFixed(0)} µs`);

const f0 = (x) => (x === undefined ? '–' : Math.round(x).toLocaleString('en-US'));
const f1 = (x) => (x === undefined ? '–' : x.toFixed(1));
const f2 = (x) => (x === undefined ? '–' : x.toFixed(2));
const at = new Date().toISOString();
const md = [
  `## npm run perf, ${at.slice(0, 10)}: ${descriptors.toLocaleString('en-US')} descriptors`,
  '',
  `Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load ${loadavg()[0].toFixed(1)} at the end. ` +
    `Reads: ${connections} connections, ${rounds} interleaved rounds of ${seconds} s (bare Fastify, raw node:http, registry), medians. ` +
    `etcd: ${etcd ? `found at ${etcd} but not measured yet` : 'not installed, skipped'}.`,
];
for (const r of results) {
  md.push(
    '',
    `### ${r.profile} (${r.profile === 'micronode' ? '--db :memory:' : 'a file, synchronous=FULL'})`,
    '',
    '| read | bytes | req/s | bare Fastify req/s | raw node:http req/s | ratio to bare | ratio to raw | p50 ms | p95 ms | p99 ms | server CPU (cores) | RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...r.reads.map(
      (x) =>
        `| ${x.name} | ${x.bytes} | ${f0(x.rps)} | ${f0(x.bareRps)} | ${f0(x.rawRps)} | ${f2(x.ratioBare)}x | ${f2(x.ratioRaw)}x | ${f1(x.p50)} | ${f1(x.p95)} | ${f1(x.p99)} | ${f2(x.cpuCores)} | ${f1(x.rssMiB)} |`,
    ),
    '',
    '| GET /registry/head at a fixed rate | achieved req/s | p50 ms | p95 ms | p99 ms | max ms | errors | server CPU (cores) | RSS MiB |',
    '|---|---|---|---|---|---|---|---|---|',
    ...r.fixedRate.map(
      (x) =>
        `| ${x.rate}/s | ${f0(x.rps)} | ${f1(x.p50)} | ${f1(x.p95)} | ${f1(x.p99)} | ${f1(x.max)} | ${x.errors} | ${f2(x.server.cpuCores)} | ${f1(x.server.rssMiB)} |`,
    ),
    '',
    '| scenario | rate | p50 ms | p95 ms | p99 ms | server CPU (cores) | RSS MiB |',
    '|---|---|---|---|---|---|---|',
    `| head at saturation, alone | ${f0(r.readsUnderCommits.alone.rps)} req/s | ${f1(r.readsUnderCommits.alone.p50)} | ${f1(r.readsUnderCommits.alone.p95)} | ${f1(r.readsUnderCommits.alone.p99)} | ${f2(r.readsUnderCommits.alone.server.cpuCores)} | ${f1(r.readsUnderCommits.alone.server.rssMiB)} |`,
    `| head at saturation, commits at 50/s | ${f0(r.readsUnderCommits.during.rps)} req/s (p99 ${r.readsUnderCommits.p99Change >= 0 ? '+' : ''}${(100 * r.readsUnderCommits.p99Change).toFixed(0)}%) | ${f1(r.readsUnderCommits.during.p50)} | ${f1(r.readsUnderCommits.during.p95)} | ${f1(r.readsUnderCommits.during.p99)} | ${f2(r.readsUnderCommits.during.server.cpuCores)} | ${f1(r.readsUnderCommits.during.server.rssMiB)} |`,
    `| the commits meanwhile | ${f1(r.readsUnderCommits.commitsPerSecond)} commits/s | ${f1(r.readsUnderCommits.commit.p50)} | ${f1(r.readsUnderCommits.commit.p95)} | ${f1(r.readsUnderCommits.commit.p99)} | | |`,
    `| governance flow at 5 commits/s | ${f1(r.flows.paced.perSecond)} commits/s | ${f1(r.flows.paced.p50)} | ${f1(r.flows.paced.p95)} | ${f1(r.flows.paced.p99)} | ${f2(r.flows.paced.server.cpuCores)} | ${f1(r.flows.paced.server.rssMiB)} |`,
    `| governance flow back to back (one client) | ${f1(r.flows.saturated.perSecond)} commits/s | ${f1(r.flows.saturated.p50)} | ${f1(r.flows.saturated.p95)} | ${f1(r.flows.saturated.p99)} | ${f2(r.flows.saturated.server.cpuCores)} | ${f1(r.flows.saturated.server.rssMiB)} |`,
    `| bulk registration: one proposal of ${r.bulk.descriptors.toLocaleString('en-US')} puts (${f0(r.bulk.bodyBytes / 1024)} KiB) | ${f0(r.bulk.perSecond)} descriptors/s | propose ${f0(r.bulk.proposeMs)} ms, commit ${f0(r.bulk.commitMs)} ms | | | ${f2(r.bulk.server.cpuCores)} | ${f1(r.bulk.server.rssMiB)} |`,
    '',
    `Seeding ${r.descriptors.toLocaleString('en-US')} descriptors (commits of 100): ${f1(r.seedSeconds)} s. Server RSS at the end ${f1(r.rss.rssMiB)} MiB (peak ${f1(r.rss.hwmMiB)} MiB). ` +
      `Start to read-ready (spawn to "listening on"): ${f0(r.start.emptyMs)} ms with an empty log` +
      (r.start.withLogMs === undefined
        ? '.'
        : `, ${f0(r.start.withLogMs)} ms on this log (${r.commits} commits; RSS then ${f1(r.start.rssMiB)} MiB).`),
  );
}
md.push(
  '',
  `Approval verification in process (ApprovalVerifier, node:crypto's Ed25519, keys cached): p50 ${f0(verify.p50)} µs, p95 ${f0(verify.p95)} µs, p99 ${f0(verify.p99)} µs over ${verify.count}.`,
);
const table = md.join('\n');
mkdirSync('perf/results', { recursive: true });
const stamp = at.replace(/[:.]/g, '-');
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
} catch {
  // not a git checkout
}
const file = `perf/results/${stamp}.json`;
writeFileSync(
  file,
  JSON.stringify(
    {
      at,
      commit,
      node: process.version,
      cpus: cpus().length,
      options: values,
      raised,
      etcd: etcd || null,
      results,
      verify,
      seconds: (performance.now() - started) / 1000,
    },
    null,
    2,
  ),
);
writeFileSync(`perf/results/${stamp}.md`, `${table}\n`);

if (values['update-baselines']) {
  const prettier = await import('prettier');
  for (const r of results) {
    const path = `baselines/${r.profile}.json`;
    if (!existsSync(path)) continue;
    const baseline = JSON.parse(readFileSync(path, 'utf8'));
    const read = (k) => r.reads.find((x) => x.key === k);
    baseline.informational = {
      about:
        'Wall-clock figures from npm run perf (perf/wallclock.mjs): not enforced, they swing with the machine. Ratios are registry / reference.',
      at,
      commit,
      descriptors,
      reads: Object.fromEntries(
        r.reads.map((x) => [
          x.key,
          {
            rps: Math.round(x.rps),
            ratioBare: +x.ratioBare.toFixed(2),
            ratioRaw: +x.ratioRaw.toFixed(2),
            p95Ms: +x.p95.toFixed(1),
            p99Ms: +x.p99.toFixed(1),
          },
        ]),
      ),
      headFixedRate: r.fixedRate.map((x) => ({
        rate: x.rate,
        achieved: Math.round(x.rps),
        p95Ms: +x.p95.toFixed(1),
        p99Ms: +x.p99.toFixed(1),
      })),
      readP99ChangeUnderCommits: +r.readsUnderCommits.p99Change.toFixed(2),
      flowAt5PerSecondP95Ms: +r.flows.paced.p95.toFixed(1),
      flowsBackToBackPerSecond: Math.round(r.flows.saturated.perSecond),
      bulkDescriptorsPerSecond: Math.round(r.bulk.perSecond),
      rssMiBAtEnd: +r.rss.rssMiB.toFixed(1),
      startMs: {
        empty: Math.round(r.start.emptyMs),
        ...(r.start.withLogMs === undefined ? {} : { withLog: Math.round(r.start.withLogMs), commits: r.commits }),
      },
      verifyMicroseconds: { p50: Math.round(verify.p50), p99: Math.round(verify.p99) },
      headRatioAgainstBare: +read('head').ratioBare.toFixed(2),
    };
    const options = (await prettier.resolveConfig(path)) ?? {};
    writeFileSync(path, await prettier.format(JSON.stringify(baseline), { ...options, filepath: path }));
    log(`updated ${path} (informational)`);
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(table);
log(`done in ${((performance.now() - started) / 1000).toFixed(0)} s: ${file}`);
