// The perf scripts' registry: fixed keys, the genesis, the seed generator (the descriptors every
// benchmark reads), proposals, governance flows over HTTP, and the serve arguments of each
// profile. Everything here is deterministic but the timestamps (which the registry checks
// against its clock) and so the hashes; sizes do not change from run to run.
//
// Profiles: micronode keeps the log in memory (`--db :memory:`), macronode in a file with
// `synchronous=FULL` (an fsync per commit).
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { publicKeyOf, signApproval } from '../../dist/core/crypto.js';
import { formatTime, hashOf } from '../../dist/core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../../dist/core/records.js';

export const REGISTRY_ID = 'perf';
export const PROFILES = ['micronode', 'macronode'];

/** 2-of-3 signers whose keys are derived from their names: the same keys in every run. */
export const KEYS = ['alice', 'bob', 'carol'].map((id) => {
  const secretKey = createHash('sha256').update(`signed-registry perf key ${id}`).digest('hex');
  return { id, secretKey, publicKey: publicKeyOf(secretKey) };
});

/** Writes the genesis (2-of-3) to `dir/genesis.json`; returns its path. */
export function writeGenesis(dir) {
  const payload = buildGenesisPayload(
    REGISTRY_ID,
    { threshold: 2, signers: KEYS.map((k) => ({ id: k.id, public_key: k.publicKey })) },
    formatTime(Date.now()),
  );
  const genesis = assembleGenesis(
    payload,
    KEYS.slice(0, 2).map((k) => ({ signer_id: k.id, sig: signApproval(k.secretKey, hashOf(payload)) })),
  );
  const file = join(dir, 'genesis.json');
  writeFileSync(file, JSON.stringify(genesis));
  return file;
}

const REGIONS = ['us-west', 'us-east', 'eu-west', 'eu-central', 'ap-south'];

/** The i-th seeded descriptor (the seed generator). One in ten is online in us-west, so a
 * filtered page of 100 over 10,000 has 1,000 candidates by region and the index narrows to them. */
export function seedDescriptor(i) {
  const j = i % 100;
  return {
    id: `svc-${i}`,
    kind: j % 2 ? 'service' : 'node',
    labels: { region: REGIONS[j % 5], status: j % 10 < 5 ? 'online' : 'offline' },
    body: { addr: `10.0.${Math.floor(i / 100)}.${j}:443` },
  };
}

/** The reads every harness measures, over `descriptors` seeded descriptors. */
export const FILTER = "labels.status == 'online' AND labels.region == 'us-west'";
export const readPaths = (descriptors) => ({
  head: '/registry/head',
  version: '/registry/1',
  lookup: `/registry/descriptors/svc-${Math.floor(descriptors / 2)}`,
  filter: `/registry/head/descriptors?limit=100&filter=${encodeURIComponent(FILTER)}`,
});
export const batchBody = (descriptors) => JSON.stringify({ ids: Array.from({ length: 50 }, (_, i) => `svc-${(i * 197) % descriptors}`) });

/** A proposal on `head` ({version, hash}). */
export function proposal(head, ops, now = Date.now()) {
  return {
    type: 'registry.proposal',
    schema_version: 1,
    registry_id: REGISTRY_ID,
    base_version: head.version,
    base_hash: head.hash,
    ops,
    created_at: formatTime(now),
    expires_at: formatTime(now + 3600_000),
  };
}

/** The body of a submission with alice's approval, and bob's approval (the one that commits). */
export function signedFlow(head, ops) {
  const payload = proposal(head, ops);
  const id = hashOf(payload);
  return {
    id,
    submission: JSON.stringify({ payload, approvals: [{ signer_id: 'alice', sig: signApproval(KEYS[0].secretKey, id) }] }),
    approval: JSON.stringify({ signer_id: 'bob', sig: signApproval(KEYS[1].secretKey, id) }),
  };
}

/** A small HTTP client on one keep-alive connection (node:http, no pooling surprises). */
export class Client {
  constructor(url) {
    const u = new URL(url);
    this.host = u.hostname;
    this.port = Number(u.port);
    this.agent = new Agent({ keepAlive: true, maxSockets: 1 });
  }

  request(method, path, body, headers = {}) {
    return new Promise((resolve, reject) => {
      const h =
        body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      const req = httpRequest({ agent: this.agent, host: this.host, port: this.port, method, path, headers: h }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), reused: req.reusedSocket }),
        );
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  async json(method, path, body, expect = [200, 201]) {
    const res = await this.request(method, path, body);
    if (!expect.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${res.body.toString().slice(0, 300)}`);
    return JSON.parse(res.body.toString());
  }

  /** One governance flow: read the head, propose with one approval, approve -> commit.
   * Returns the committed version. */
  async flow(ops) {
    const head = await this.json('GET', '/registry/head');
    const f = signedFlow(head, ops);
    await this.json('POST', '/registry/proposals', f.submission);
    const r = await this.json('POST', `/registry/proposals/${f.id}/approvals`, f.approval);
    if (r.status !== 'committed') throw new Error(`not committed: ${JSON.stringify(r)}`);
    return r.version;
  }

  close() {
    this.agent.destroy();
  }
}

/** The op of the i-th measured governance flow: one descriptor of 50 rewritten, so the state's
 * size stays the same however many flows run. */
export const flowOps = (i) => [{ op: 'put', descriptor: { id: `flow-${i % 50}`, kind: 'service', labels: {}, body: { i } } }];

/** Seeds `descriptors` descriptors (seedDescriptor) in commits of `perCommit`; with `bulk`,
 * only the first commit (version 1, the version the reads fetch) has `perCommit`, and the rest
 * come in commits of `bulk` (fewer commits: faster where each costs, e.g. under valgrind). */
export async function seed(client, descriptors, perCommit = 100, bulk = perCommit) {
  for (let i = 0; i < descriptors;) {
    const size = Math.min(i === 0 ? perCommit : bulk, descriptors - i);
    await client.flow(Array.from({ length: size }, (_, j) => ({ op: 'put', descriptor: seedDescriptor(i + j) })));
    i += size;
  }
}

/**
 * The service's limits as the perf scripts run it: a benchmark's client is one address sending
 * thousands of requests and writes a second, and under valgrind the event loop lags by hundreds
 * of milliseconds, so the per-address and per-signer write rates, the in-flight and event-loop
 * shedding thresholds and the per-address connection and stream caps are raised out of reach.
 * They are raised rather than turned off (0): the token buckets and the event-loop monitor still
 * run on every request, and their cost is counted. Only settings the service has (its DEFAULTS)
 * are passed.
 */
export const PERF_LIMITS = Object.freeze({
  streamMaxSubscribers: 20_000,
  streamMaxPerAddress: 20_000,
  maxConnectionsPerAddress: 1_000_000,
  shedReadsInFlight: 10_000_000,
  shedWritesInFlight: 10_000_000,
  shedReadsEventLoopDelayMs: 3_600_000,
  shedWritesEventLoopDelayMs: 3_600_000,
  writeRatePerAddress: 1_000_000,
  writeBurstPerAddress: 1_000_000,
  writeRatePerSigner: 1_000_000,
  writeBurstPerSigner: 1_000_000,
});

/** Writes PERF_LIMITS and `overrides` (those the service knows) to `dir/perf-config.json`:
 * `--config` it. */
export async function perfConfig(dir, overrides = {}) {
  const { DEFAULTS } = await import('../../dist/config/config.js');
  const raised = Object.fromEntries(
    Object.entries({ ...PERF_LIMITS, ...overrides }).filter(([key, value]) => key in DEFAULTS && DEFAULTS[key] !== value),
  );
  const file = join(dir, 'perf-config.json');
  writeFileSync(file, JSON.stringify(raised));
  return { file, raised };
}

/** `registry serve` arguments for a profile. `db`: the file for macronode (ignored by micronode). */
export function serveArgs({ genesis, profile, db, config, level = 'warn' }) {
  return [
    'dist/cli/main.js',
    'serve',
    '--genesis',
    genesis,
    '--db',
    profile === 'micronode' ? ':memory:' : db,
    ...(profile === 'macronode' ? ['--synchronous', 'FULL'] : []),
    '--port',
    '0',
    '--log-level',
    level,
    ...(config ? ['--config', config] : []),
  ];
}
