// `registry verify`, the independent auditor, against real logs built through HTTP: it must
// agree with the service on honest logs and fail loudly, naming the version (or the audit seq),
// on tampered ones, whether a lying proxy rewrites the answers or the database file was edited.
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import type { Approval, CommitRecord, Op, ProposalPayload } from '../../src/core/schemas.js';
import { hashOfValue } from '../../src/verify/primitives.js';
import { stateRootOf } from '../../src/verify/replay.js';
import { runCli, runInProcess } from '../helpers/cli.js';
import { approve, del, genesisRecord, proposal, put, setSigners, signers, signerSet, type TestSigner } from '../helpers/fixtures.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, tempDir, type TestRegistry } from '../helpers/server.js';

const REGISTRY = 'verify-test';
const [alice, bob, carol, dave, eve, frank] = signers('alice', 'bob', 'carol', 'dave', 'eve', 'frank') as [
  TestSigner,
  TestSigner,
  TestSigner,
  TestSigner,
  TestSigner,
  TestSigner,
];
const dir = tempDir('registry-verify-');
const db = join(dir, 'registry.db');
let server: ServerProcess;
let url = '';
let head: HeadJson;
/** The version of the rotation to alice, bob, dave. */
let rotation = 0;

async function commit(ops: Op[], by: TestSigner[]): Promise<number> {
  const h = await request<HeadJson>(url, 'GET', '/registry/head');
  const p = proposal(REGISTRY, h.json, ops);
  const r = await request<{ status: string; version: number }>(url, 'POST', '/registry/proposals', {
    payload: p,
    approvals: by.map((s) => approve(s, hashOf(p))),
  });
  if (r.json.status !== 'committed') throw new Error(`not committed: ${r.status} ${r.text}`);
  return r.json.version;
}

// A proxy that forwards to the registry and lets a test rewrite any JSON answer.
type Rewrite = (path: string, status: number, body: unknown) => { status: number; body: unknown } | undefined;
let rewrite: Rewrite = () => undefined;
let proxy: Server;
let proxyUrl = '';

const verify = (...args: string[]) => runInProcess(['verify', ...args], { cwd: dir });

beforeAll(async () => {
  writeFileSync(join(dir, 'genesis.json'), JSON.stringify(genesisRecord(REGISTRY, [alice, bob, carol], 2)));
  server = await spawnServer(['--genesis', join(dir, 'genesis.json'), '--db', db]);
  url = server.url;
  for (let i = 0; i < 5; i++) await commit([put(`svc-${i}`, { n: String(i) }, { i })], [alice, bob]);
  await commit([del('svc-1'), put('svc-2', { n: 'again' })], [bob, carol]);
  rotation = await commit([setSigners(signerSet([alice, bob, dave], 2)), put('svc-9')], [alice, bob, dave]);
  await commit([put('after-rotation')], [bob, dave]);
  // A proposal left pending becomes stale at the next commit: audit events beyond commits.
  const h = await request<HeadJson>(url, 'GET', '/registry/head');
  const pending = proposal(REGISTRY, h.json, [put('never')]);
  await request(url, 'POST', '/registry/proposals', { payload: pending, approvals: [approve(alice, hashOf(pending))] });
  await commit([put('last')], [alice, dave]);
  head = (await request<HeadJson>(url, 'GET', '/registry/head')).json;

  proxy = createServer((req, res) => {
    void (async () => {
      const upstream = await fetch(url + req.url!);
      const text = await upstream.text();
      let answer: { status: number; body: unknown } | undefined;
      try {
        answer = rewrite(new URL(req.url!, 'http://x').pathname, upstream.status, JSON.parse(text));
      } catch {
        answer = undefined;
      }
      res.writeHead(answer?.status ?? upstream.status, { 'content-type': 'application/json' });
      res.end(answer ? JSON.stringify(answer.body) : text);
    })();
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

afterAll(async () => {
  proxy?.close();
  if (server && server.child.exitCode === null) {
    server.child.kill('SIGKILL');
    await server.exited;
  }
});

/** A record as an attacker re-hashes it: payload_hash over the edited payload. */
const rehashed = (r: CommitRecord): CommitRecord => ({ ...r, payload_hash: hashOfValue(r.payload) });
const at = (path: string, v: number) => path === `/registry/${v}`;

describe('registry verify --url', () => {
  it('agrees with the service on an honest log (commits, deletes, a rotation) and prints the head it trusts', async () => {
    const genesis = hashOfValue((await request(url, 'GET', '/registry/0')).json);
    const r = await verify('--url', url, '--genesis-hash', genesis);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`trusted head: ${head.hash}`);
    expect(r.stdout).toMatch(new RegExp(`versions +0\\.\\.${head.version} `));
    expect(r.stdout).toMatch(/signer sets +1 change/);
    expect(r.stdout).toMatch(/\(pinned\)/);
    const json = await verify('--url', proxyUrl, '--json');
    expect(json.code).toBe(0);
    const s = JSON.parse(json.stdout) as {
      head: { hash: string };
      counts: { commits: number; deletes: number };
      audit: { events: number };
    };
    expect(s.head.hash).toBe(head.hash);
    expect(s.counts).toMatchObject({ commits: head.version, deletes: 1 });
    expect(s.audit.events).toBeGreaterThan(head.version * 3);
  });

  it('--fast (Node crypto) and --workers 0 give the same verdict and say how they verified', async () => {
    const fast = await verify('--url', url, '--fast');
    expect(fast.code).toBe(0);
    expect(fast.stdout).toContain(`trusted head: ${head.hash}`);
    expect(fast.stdout).toMatch(/signatures +\d+ in records, Node crypto Ed25519 \(--fast\)/);
    const inThread = await verify('--db', db, '--workers', '0');
    expect(inThread.code).toBe(0);
    expect(inThread.stdout).toMatch(/strict Ed25519 \(@noble\/ed25519\), in-thread: \d+\/s/);
    // The approvals table holds every approval of the records (verified once, in the records) and
    // alice's approval of the proposal that went stale, verified from the table alone.
    const json = JSON.parse((await verify('--db', db, '--json')).stdout) as {
      counts: { signatures: number };
      signatures: { verified: number };
      crossChecks: string[];
    };
    expect(json.signatures.verified).toBe(json.counts.signatures + 1);
    expect(json.crossChecks).toContain(`${json.counts.signatures - 2 + 1} stored approvals`);
    expect((await verify('--url', url, '--workers', 'x')).code).toBe(2);
  });

  it('shows progress (cli-progress) on stderr when it is a terminal, and nothing when it is not', async () => {
    const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
    let r: Awaited<ReturnType<typeof verify>>;
    try {
      r = await verify('--url', url);
    } finally {
      if (tty) Object.defineProperty(process.stderr, 'isTTY', tty);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
    }
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/verifying records \[.*\] \d+% \d+\/\d+/);
    expect(r.stderr).toMatch(/verifying audit events: \d+/);
    expect(r.stdout).toContain(`trusted head: ${head.hash}`);
    expect((await verify('--url', url)).stderr).toBe('');
  });

  it('fails on a genesis other than the pinned one', async () => {
    const r = await verify('--url', url, '--genesis-hash', 'b3:' + '0'.repeat(64));
    expect(r.code).toBe(10);
    expect(r.stderr).toMatch(/version 0: the genesis hash is .* not the pinned/);
  });

  const lie = async (fn: Rewrite) => {
    rewrite = fn;
    try {
      return await verify('--url', proxyUrl);
    } finally {
      rewrite = () => undefined;
    }
  };

  it('fails, naming the version, on a changed payload', async () => {
    const r = await lie((path, _s, body) => {
      if (!at(path, 2)) return undefined;
      const rec = structuredClone(body) as CommitRecord & { payload: ProposalPayload };
      (rec.payload.ops[0] as { descriptor: { labels: Record<string, string> } }).descriptor.labels.n = 'forged';
      return { status: 200, body: rec };
    });
    expect(r.code).toBe(10);
    expect(r.stderr).toMatch(/verify FAILED: version 2: payload_hash .* the payload was changed/);
    const again = await lie((path, _s, body) => {
      if (!at(path, 2)) return undefined;
      const rec = structuredClone(body) as CommitRecord & { payload: ProposalPayload };
      rec.payload.reason = 'forged';
      return { status: 200, body: rehashed(rec) };
    });
    expect(again.code).toBe(10);
    expect(again.stderr).toMatch(/version 2: the approval of alice does not verify/);
  });

  it('fails, naming the version, on an approval dropped below quorum', async () => {
    const r = await lie((path, _s, body) => {
      if (!at(path, 3)) return undefined;
      const rec = structuredClone(body) as CommitRecord;
      return { status: 200, body: { ...rec, approvals: rec.approvals.slice(1) } };
    });
    expect(r.code).toBe(10);
    expect(r.stderr).toMatch(/version 3: approved by 1 of the current set, below its threshold 2/);
  });

  it('fails, naming the version, on a rotation carried by the old set alone', async () => {
    // The attacker holds alice's and bob's keys (the old quorum) and hands the registry to eve
    // and frank, who never approved: a well-formed record, re-hashed, with a true state root.
    const prev = (await request<CommitRecord>(url, 'GET', `/registry/${rotation - 1}`)).json;
    const items = (
      await request<{ items: { descriptor: Record<string, unknown> }[] }>(
        url,
        'GET',
        `/registry/${rotation - 1}/descriptors?include_expired=true&limit=1000`,
      )
    ).json.items.map((i) => i.descriptor);
    const newSet = signerSet([eve, frank], 2);
    const payload = proposal(REGISTRY, { version: rotation - 1, hash: hashOfValue(prev) }, [setSigners(newSet)]);
    const payloadHash = hashOfValue(payload);
    const forged = {
      type: 'registry.commit',
      schema_version: 1,
      registry_id: REGISTRY,
      version: rotation,
      prev_hash: hashOfValue(prev),
      payload,
      payload_hash: payloadHash,
      approvals: [alice, bob].map((s): Approval => approve(s, payloadHash)),
      state_root: stateRootOf(items, newSet),
      committed_at: payload.created_at,
    };
    const r = await lie((path) => (at(path, rotation) ? { status: 200, body: forged } : undefined));
    expect(r.code).toBe(10);
    expect(r.stderr).toMatch(new RegExp(`version ${rotation}: approved by 0 of the proposed set, below its threshold 2: no quorum`));
  });

  it('fails, naming the version, on a state root that lies', async () => {
    const r = await lie((path, _s, body) =>
      at(path, 4) ? { status: 200, body: { ...(body as CommitRecord), state_root: 'b3:' + 'a'.repeat(64) } } : undefined,
    );
    expect(r.code).toBe(10);
    expect(r.stderr).toMatch(/version 4: state_root b3:a{64} is not the root of the state after the change/);
  });

  it('fails, naming the version, on a head that is not the end of the chain', async () => {
    const behind = (await request<CommitRecord>(url, 'GET', `/registry/${head.version - 1}`)).json;
    const r = await lie((path, _s, body) =>
      path === '/registry/head'
        ? {
            status: 200,
            body: {
              ...(body as HeadJson),
              version: behind.version,
              hash: hashOfValue(behind),
              prev_hash: behind.prev_hash,
              state_root: behind.state_root,
            },
          }
        : undefined,
    );
    expect(r.code).toBe(10);
    expect(r.stderr).toMatch(
      new RegExp(`version ${head.version}: exists, but the head answers version ${head.version - 1}: the head is not the end`),
    );
    // and a head whose hash is not the record's
    const wrong = await lie((path, _s, body) =>
      path === '/registry/head' ? { status: 200, body: { ...(body as HeadJson), hash: 'b3:' + 'b'.repeat(64) } } : undefined,
    );
    expect(wrong.code).toBe(10);
    expect(wrong.stderr).toMatch(new RegExp(`version ${head.version}: the head answer disagrees with the record: hash`));
  });

  it('fails, naming the seq, on an edited audit event', async () => {
    const r = await lie((path, _s, body) => {
      if (path !== '/registry/audit') return undefined;
      const page = structuredClone(body) as { events: { seq: number; at: string }[] };
      const e = page.events.find((x) => x.seq === 5);
      if (e) e.at = '2020-01-01T00:00:00.000Z';
      return { status: 200, body: page };
    });
    expect(r.code).toBe(11);
    expect(r.stderr).toMatch(/verify FAILED: audit event 6: prev_hash .* an event before it was changed/);
  });

  it('exits 12 when the source cannot be read, 2 on a bad command line', async () => {
    const r = await verify('--url', 'http://127.0.0.1:9');
    expect(r.code).toBe(12);
    expect(r.stderr).toMatch(/cannot read http:\/\/127\.0\.0\.1:9\/registry\/head/);
    expect((await verify()).code).toBe(2);
    expect((await verify('--url', url, '--db', db)).code).toBe(2);
  });
});

describe('registry verify --db', () => {
  it('verifies the file of a running service (WAL lets it read the live log)', async () => {
    const r = await runCli(['verify', '--db', db], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`trusted head: ${head.hash}`);
  });

  it('verifies a stopped registry copy, and fails on copies edited with SQL', async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    const copy = (name: string) => {
      const to = join(dir, name);
      copyFileSync(db, to);
      for (const ext of ['-wal', '-shm']) if (existsSync(db + ext)) copyFileSync(db + ext, to + ext);
      return to;
    };
    const honest = await runCli(['verify', '--db', copy('copy.db')], { cwd: dir });
    expect(honest.stderr).toBe('');
    expect(honest.code).toBe(0);
    expect(honest.stdout).toContain(`trusted head: ${head.hash}`);
    expect((await verify('--db', join(dir, 'copy.db'))).code).toBe(0);

    const edit = (name: string, sql: string) => {
      const file = copy(name);
      const d = new Database(file);
      d.exec(sql);
      d.close();
      return file;
    };
    const audit = edit('audit.db', "DROP TRIGGER audit_no_update; UPDATE audit SET event = replace(event, '2026', '2025') WHERE seq = 4;");
    const a = await verify('--db', audit);
    expect(a.code).toBe(11);
    expect(a.stderr).toMatch(/audit event 4: the stored hash .* the event was changed/);

    const tail = edit('tail.db', 'DROP TRIGGER commits_no_delete; DELETE FROM commits WHERE version = (SELECT MAX(version) FROM commits);');
    const t = await verify('--db', tail);
    expect(t.code).toBe(10);
    expect(t.stderr).toMatch(new RegExp(`version ${head.version}: missing, yet audit event \\d+ says it was committed`));

    const proposalEdit = edit(
      'proposal.db',
      "DROP TRIGGER proposals_status_only; UPDATE proposals SET payload = replace(payload, '\"never\"', '\"forged\"') WHERE status = 'stale';",
    );
    const p = await verify('--db', proposalEdit);
    expect(p.code).toBe(10);
    expect(p.stderr).toMatch(/proposal b3:[0-9a-f]{64}: its payload does not hash to its id/);

    const forgedApproval = edit(
      'approval.db',
      `INSERT INTO approvals (proposal_id, signer_id, sig, received_at) SELECT id, 'carol', '${'ab'.repeat(64)}', received_at FROM proposals WHERE status = 'stale';`,
    );
    const fa = await verify('--db', forgedApproval);
    expect(fa.code).toBe(10);
    expect(fa.stderr).toMatch(/the stored approval by carol of proposal b3:[0-9a-f]{64} does not verify/);

    const record = edit(
      'record.db',
      `DROP TRIGGER commits_no_update; UPDATE commits SET record = replace(record, '"n":"3"', '"n":"x"') WHERE version = 4;`,
    );
    const c = await verify('--db', record);
    expect(c.code).toBe(10);
    expect(c.stderr).toMatch(/version 4: payload_hash .* the payload was changed/);
  });
});

// Checkpoints and retention (SPEC §10): a registry that checkpoints every 2 commits and keeps 2
// commits behind its horizon. Versions 1, 3, 4 and 5 are pruned; 0 (the genesis) and 2 (a
// signer-set change: the threshold goes from 2 to 3 of the same three keys) are kept; the oldest
// checkpoint is at 6. The verifier must follow 0 and 2, take the state at 6 from the checkpoint,
// replay 7 and 8 in full, and fail on every way of cheating around the horizon.
describe('registry verify across checkpoints and pruned records', () => {
  const cpDir = tempDir('registry-verify-cp-');
  let reg: TestRegistry;
  let cpHead: HeadJson;
  let cpDb = '';
  const all = [alice, bob, carol];

  const cpCommit = async (ops: Op[], by: TestSigner[]) => {
    const h = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    const p = proposal(REGISTRY, h, ops);
    const r = await request<{ status: string }>(reg.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: by.map((s) => approve(s, hashOf(p))),
    });
    if (r.json.status !== 'committed') throw new Error(`not committed: ${r.text}`);
  };

  beforeAll(async () => {
    reg = await startTestRegistry(genesisRecord(REGISTRY, all, 2), {
      dir: cpDir,
      config: { checkpointEvery: 2, retainCommits: 2, settledPayloadTtlMs: 0 },
    });
    await reg.verified;
    await cpCommit([put('a')], [alice, bob]);
    await cpCommit([setSigners(signerSet(all, 3))], all);
    for (let i = 3; i <= 5; i++) await cpCommit([put(`svc-${i}`, { n: String(i) })], all);
    // a proposal left pending goes stale at the next commit; its payload is pruned once settled
    const h = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    const loser = proposal(REGISTRY, h, [put('never')]);
    await request(reg.url, 'POST', '/registry/proposals', { payload: loser, approvals: [approve(alice, hashOf(loser))] });
    await cpCommit([put('svc-6')], all);
    await cpCommit([del('svc-3'), put('a', { again: 'yes' })], all);
    await cpCommit([put('svc-8')], all);
    await reg.checkpointer.tick();
    await reg.checkpointer.idle();
    cpHead = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    cpDb = reg.db;
  });

  afterAll(async () => {
    await reg?.close();
  });

  it('the fixture is what the test means: 1, 4, 5 pruned (410; 3 binds the signer-set change 2), checkpoints at 6 and 8, a stale payload pruned', async () => {
    expect(cpHead.version).toBe(8);
    const list = await request<{ items: { version: number }[] }>(reg.url, 'GET', '/registry/checkpoints');
    expect(list.json.items.map((c) => c.version)).toEqual([6, 8]);
    const statuses = await Promise.all(
      [0, 1, 2, 3, 4, 5, 6, 7, 8].map(async (v) => (await request(reg.url, 'GET', `/registry/${v}`)).status),
    );
    expect(statuses).toEqual([200, 410, 200, 200, 410, 410, 200, 200, 200]);
    const rows = new Database(cpDb, { readonly: true });
    const stale = rows.prepare("SELECT payload FROM proposals WHERE status = 'stale'").all() as { payload: string }[];
    rows.close();
    expect(stale).toEqual([{ payload: '' }]);
  });

  it('--url follows the genesis and the signer-set change, takes the state at the oldest checkpoint, replays the rest', async () => {
    const r = await verify('--url', reg.url);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`trusted head: ${cpHead.hash}`);
    expect(r.stdout).toMatch(
      /0\.\.8 \(6 records; 3 pruned, below the checkpoint at 6: replayed in full from it, the genesis and 2 kept record/,
    );
    expect(r.stdout).toMatch(/checkpoints +2 agree with the replay \(latest at version 8\)/);
    expect(r.stdout).toMatch(/signer sets +1 change\(s\); now 3 of alice, bob, carol/);
    const json = await verify('--url', reg.url, '--json', '--fast');
    expect(json.code).toBe(0);
    const s = JSON.parse(json.stdout) as {
      horizon: number;
      counts: { pruned: number; followed: number; commits: number; deletes: number };
    };
    expect(s.horizon).toBe(6);
    expect(s.counts).toMatchObject({ pruned: 3, followed: 2, commits: 8, deletes: 1 });
  });

  it('--db does the same from the file, with the checkpoint entries and the table cross-checks', async () => {
    const r = await verify('--db', cpDb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`trusted head: ${cpHead.hash}`);
    expect(r.stdout).toMatch(/3 pruned, below the checkpoint at 6/);
    expect(r.stdout).toMatch(/checkpoints +2 agree with the replay, entries and state root recomputed/);
    expect(r.stdout).toMatch(/payloads pruned/);
  });

  /** A copy of the registry's file (an online backup of the live file), edited with SQL: the
   * triggers that would refuse the edit dropped, as an attacker would. */
  const copyOf = async (name: string, sql: string): Promise<string> => {
    const to = join(cpDir, name);
    const src = new Database(cpDb, { readonly: true });
    await src.backup(to);
    src.close();
    const d = new Database(to);
    d.exec(sql);
    d.close();
    return to;
  };
  it.each([
    ['the genesis pruned', "UPDATE commits SET record = '' WHERE version = 0", /version 0: the genesis record is pruned/],
    [
      'a record above the oldest checkpoint pruned',
      "UPDATE commits SET record = '' WHERE version = 7",
      /version 7: pruned, yet it is not below the oldest checkpoint \(version 6\)/,
    ],
    [
      'the signer-set change pruned',
      "UPDATE commits SET record = '' WHERE version = 2",
      /version 2: pruned, yet it changed the signer set \(its proposal has a proposed threshold\)/,
    ],
    [
      'the signer-set change pruned and its proposal row made to agree',
      `UPDATE commits SET record = '' WHERE version = 2; DROP TRIGGER proposals_status_only; UPDATE proposals SET proposed_threshold = NULL`,
      /version 2: pruned, yet it changed the signer set \(the signer history of the checkpoint at 6 says so\)/,
    ],
    [
      'the signer-set change pruned, its proposal row and the checkpoint history made to agree',
      `UPDATE commits SET record = '' WHERE version = 2; DROP TRIGGER proposals_status_only;
       UPDATE proposals SET proposed_threshold = NULL; DROP TRIGGER checkpoints_no_update;
       UPDATE checkpoints SET signer_history = json_array(json_extract(signer_history, '$[0]'))`,
      // the state root at the horizon commits to the signer set: a threshold of 3, not 2
      /version 6: the state of the checkpoint \(checkpoint_entries of version 6\) hashes to b3:\w+, not to the state_root b3:\w+ of record 6 \(versions from 1 on are pruned: had one of them changed the signer set/,
    ],
    [
      'an entry of the oldest checkpoint edited',
      `DROP TRIGGER checkpoint_entries_no_update; UPDATE checkpoint_entries SET descriptor = replace(descriptor, '"n":"4"', '"n":"x"') WHERE version = 6`,
      /version 6: the state of the checkpoint \(checkpoint_entries of version 6\) hashes to/,
    ],
    [
      'an entry of a later checkpoint edited',
      `DROP TRIGGER checkpoint_entries_no_update; UPDATE checkpoint_entries SET descriptor = replace(descriptor, '"n":"4"', '"n":"x"') WHERE version = 8`,
      /version 8: the checkpoint at version 8: its entry svc-4 is not the descriptor the log holds there/,
    ],
    [
      "an entry's changed_in edited",
      `DROP TRIGGER checkpoint_entries_no_update; UPDATE checkpoint_entries SET changed_in = 5 WHERE version = 8 AND id = 'svc-8'`,
      /version 8: the checkpoint at version 8: its entry svc-8 says changed_in 5, not 8/,
    ],
    [
      "a checkpoint's state_root edited",
      `DROP TRIGGER checkpoints_no_update; UPDATE checkpoints SET state_root = 'b3:${'c'.repeat(64)}' WHERE version = 8`,
      /version 8: the checkpoint at version 8 says state_root b3:c{64}, but the replayed state hashes to/,
    ],
    [
      'the payload of a committed proposal whose record is kept pruned',
      `DROP TRIGGER proposals_status_only; UPDATE proposals SET payload = '' WHERE status = 'committed' AND version = 7`,
      /proposal b3:\w+: its payload is gone, yet it is the payload of version 7, which is not pruned/,
    ],
  ])('--db fails on %s', async (_name, sql, message) => {
    const file = await copyOf(`cp-${Math.random().toString(36).slice(2)}.db`, `DROP TRIGGER IF EXISTS commits_no_update; ${sql}`);
    const r = await verify('--db', file);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(10);
  });

  /** verify --url through a proxy that answers `answer(path)` instead of the registry when it gives one. */
  const through = async (answer: (path: string) => { status: number; body: unknown } | undefined) => {
    const liar = createServer((req, res) => {
      void (async () => {
        const path = new URL(req.url!, 'http://x').pathname;
        const forged = answer(path);
        if (forged) {
          res.writeHead(forged.status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(forged.body));
          return;
        }
        const upstream = await fetch(reg.url + req.url!);
        res.writeHead(upstream.status, { 'content-type': 'application/json' });
        res.end(await upstream.text());
      })();
    });
    await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve));
    try {
      return await verify('--url', `http://127.0.0.1:${(liar.address() as AddressInfo).port}`);
    } finally {
      liar.close();
    }
  };
  const gone = { status: 410, body: { error: { code: 'Gone', message: 'pruned', hint: '', retryable: false, request_id: 'x' } } };

  it('--url fails on a 410 for the genesis, for a version above the oldest checkpoint, and for the hidden signer-set change', async () => {
    const genesis = await through((p) => (p === '/registry/0' ? gone : undefined));
    expect(genesis.code).toBe(10);
    expect(genesis.stderr).toMatch(/version 0: the genesis record is pruned/);
    const above = await through((p) => (p === '/registry/7' ? gone : undefined));
    expect(above.code).toBe(10);
    expect(above.stderr).toMatch(/version 7: pruned, yet it is not below the oldest checkpoint \(version 6\)/);
    const rotation = await through((p) => (p === '/registry/2' ? gone : undefined));
    expect(rotation.code).toBe(10);
    expect(rotation.stderr).toMatch(
      /version 6: the state of the checkpoint .* hashes to b3:\w+, not to the state_root .* had one of them changed the signer set/,
    );
  });

  it('--url fails on a state at the horizon that is not the checkpoint state, and on a checkpoint that lies', async () => {
    const page = (
      await request<{ version: number; items: { id: string; descriptor: { labels: Record<string, string> } }[] }>(
        reg.url,
        'GET',
        '/registry/6/descriptors?include_expired=true&limit=1000',
      )
    ).json;
    const forgedPage = structuredClone(page);
    forgedPage.items[0]!.descriptor.labels.forged = 'yes';
    const state = await through((p) =>
      p === '/registry/6/descriptors' ? { status: 200, body: { ...forgedPage, next_cursor: null } } : undefined,
    );
    expect(state.code).toBe(10);
    expect(state.stderr).toMatch(/version 6: the state of the checkpoint \(.*registry\/6\/descriptors\) hashes to/);
    const list = (await request<{ items: Record<string, unknown>[] }>(reg.url, 'GET', '/registry/checkpoints')).json;
    const lying = { items: list.items.map((c) => (c.version === 8 ? { ...c, descriptor_count: 99 } : c)) };
    const cp = await through((p) => (p === '/registry/checkpoints' ? { status: 200, body: lying } : undefined));
    expect(cp.code).toBe(10);
    expect(cp.stderr).toMatch(/version 8: the checkpoint at version 8 says descriptor_count 99, but the replayed state holds \d+/);
  });
});
