// End to end: `registry watch` as a user runs it (a child process of the compiled
// dist/cli/main.js) against a real registry on a real port with a real SQLite file. It
// follows commits, survives a registry restart on the same port and database (commits made
// while it was away arrive once, in order: the resume uses Last-Event-ID), narrows with
// --filter and --kind, exits non-zero with the server's words on a bad filter, and exits 0 on
// SIGTERM. Builds nothing: `npm test` compiles dist/ before vitest runs.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CommitEventData } from '../../src/client/subscriber.js';
import { hashOf } from '../../src/core/encoding.js';
import type { CommitRecord, Op } from '../../src/core/schemas.js';
import { approve, del, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import { request, startTestRegistry, tempDir, type TestRegistry } from '../helpers/server.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const B3 = /^b3:[0-9a-f]{64}$/;

const keys = signers('alice');
const genesis = genesisRecord('e2e-watch', keys, 1);

interface Head {
  version: number;
  hash: string;
}

async function commit(url: string, ops: Op[]): Promise<number> {
  const head = (await request<Head>(url, 'GET', '/registry/head')).json;
  const p = proposal('e2e-watch', head, ops);
  const r = await request<{ status: string; version: number }>(url, 'POST', '/registry/proposals', {
    payload: p,
    approvals: [approve(keys[0]!, hashOf(p))],
  });
  expect(r.status, r.text).toBe(201);
  expect(r.json.status).toBe('committed');
  return r.json.version;
}

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
});

/** A `registry watch` child: its stdout lines and stderr as they come, and a wait for either. */
class Watch {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = '';
  private waiters: (() => void)[] = [];

  constructor(args: string[]) {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build`);
    this.child = spawn(process.execPath, [CLI, 'watch', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(this.child);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (this.partial + d).split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
      this.wake();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      this.wake();
    });
    this.exited = new Promise((resolve) =>
      this.child.once('close', (code, signal) => {
        children.delete(this.child);
        this.wake();
        resolve({ code, signal });
      }),
    );
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once `ready()` holds; fails with everything printed so far after `ms`. */
  async until(what: string, ready: () => boolean, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!ready()) {
      if (this.child.exitCode !== null || Date.now() > deadline)
        throw new Error(`watch: no ${what} (exit ${this.child.exitCode})\nstdout:\n${this.lines.join('\n')}\nstderr:\n${this.stderr}`);
      // Woken by the next output or the exit; the deadline's timer only to fail on time.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now() + 1);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  untilLines(n: number): Promise<void> {
    return this.until(`${n} lines`, () => this.lines.length >= n);
  }

  untilStderr(pattern: RegExp): Promise<void> {
    return this.until(`stderr matching ${pattern}`, () => pattern.test(this.stderr));
  }

  events(): CommitEventData[] {
    return this.lines.map((l) => JSON.parse(l) as CommitEventData);
  }

  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill('SIGTERM');
    return this.exited;
  }
}

/** The watch's view of a commit, from the registry's own record. */
async function expected(url: string, version: number, changed: string[]): Promise<CommitEventData> {
  const record = (await request<CommitRecord & { hash?: string }>(url, 'GET', `/registry/${version}`)).json;
  return {
    version,
    hash: expect.stringMatching(B3) as string,
    prev_hash: record.prev_hash,
    committed_at: record.committed_at,
    changed,
    changed_count: changed.length,
  };
}

describe('registry watch, end to end', () => {
  const dir = tempDir('registry-watch-');
  let reg: TestRegistry;
  let port = 0;

  beforeAll(async () => {
    reg = await startTestRegistry(genesis, { dir });
    port = Number(new URL(reg.url).port);
  });
  afterAll(() => reg.close());

  it('prints each commit once and in order across a registry restart, resuming with Last-Event-ID; SIGTERM exits 0', async () => {
    const w = new Watch(['--url', reg.url, '--json']);
    await w.untilStderr(/watching http:\S+ after version 0/);

    await commit(reg.url, [put('svc-a', { tier: 'gold' })]);
    await commit(reg.url, [put('svc-b'), put('node-1', {}, {}, 'node')]);
    await commit(reg.url, [del('svc-b')]);
    await w.untilLines(3);
    const first = w.events();
    expect(first).toEqual([
      await expected(reg.url, 1, ['svc-a']),
      await expected(reg.url, 2, ['svc-b', 'node-1']),
      await expected(reg.url, 3, ['svc-b']),
    ]);
    expect(first[1]!.prev_hash).toBe(first[0]!.hash);
    expect(first[2]!.prev_hash).toBe(first[1]!.hash);

    // The registry goes away; while the watch knocks on the closed port, another process on
    // the same database commits 4 and 5; then the registry comes back on the same port.
    await reg.close();
    await w.untilStderr(/retrying in/);
    const elsewhere = await startTestRegistry(genesis, { dir });
    await commit(elsewhere.url, [put('svc-c')]);
    await commit(elsewhere.url, [put('svc-d'), put('svc-e')]);
    await elsewhere.close();
    expect(w.lines).toHaveLength(3);

    reg = await startTestRegistry(genesis, { dir, config: { port } });
    await w.untilStderr(/reconnected to http:\S+ after version 3/);
    await w.untilLines(5);
    await commit(reg.url, [put('svc-f')]);
    await w.untilLines(6);

    const all = w.events();
    expect(all.map((e) => e.version)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(all.slice(3)).toEqual([
      await expected(reg.url, 4, ['svc-c']),
      await expected(reg.url, 5, ['svc-d', 'svc-e']),
      await expected(reg.url, 6, ['svc-f']),
    ]);
    for (let i = 1; i < all.length; i++) expect(all[i]!.prev_hash).toBe(all[i - 1]!.hash);
    expect(all.at(-1)!.hash).toBe((await request<Head>(reg.url, 'GET', '/registry/head')).json.hash);

    expect(await w.stop()).toEqual({ code: 0, signal: null });
    expect(w.lines).toHaveLength(6);
  });

  it('narrows with --filter and --kind, prints the text format, and replays with --from', async () => {
    const head = (await request<Head>(reg.url, 'GET', '/registry/head')).json.version;
    const gold = new Watch(['--url', reg.url, '--json', '--filter', "labels.tier == 'gold'"]);
    const nodes = new Watch(['--url', reg.url, '--kind', 'node']);
    const replay = new Watch(['--url', reg.url, '--from', String(head - 1), '--filter', "id MATCHES '^svc-'"]);
    await Promise.all([gold, nodes, replay].map((w) => w.untilStderr(/watching/)));

    const v1 = await commit(reg.url, [put('svc-x', { tier: 'silver' })]);
    const v2 = await commit(reg.url, [put('svc-y', { tier: 'gold' }), put('node-2', { tier: 'silver' }, {}, 'node')]);
    const v3 = await commit(reg.url, [put('node-3', {}, {}, 'node')]);
    // Matches both: the last line each watch prints.
    const v4 = await commit(reg.url, [put('node-4', { tier: 'gold' }, {}, 'node'), put('svc-z')]);
    await Promise.all([gold.untilLines(2), nodes.untilLines(3), replay.untilLines(4)]);

    expect(gold.events()).toEqual([await expected(reg.url, v2, ['svc-y']), await expected(reg.url, v4, ['node-4'])]);
    const line = (v: number, changed: string) =>
      new RegExp(`^${v} b3:[0-9a-f]{64} \\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z ${changed.split(', ').length} changed: ${changed}$`);
    expect(nodes.lines).toHaveLength(3);
    expect(nodes.lines[0]).toMatch(line(v2, 'node-2'));
    expect(nodes.lines[1]).toMatch(line(v3, 'node-3'));
    expect(nodes.lines[2]).toMatch(line(v4, 'node-4'));
    // --from replays the head commit (svc-f) before going live; v3 touched no svc-.
    expect(replay.lines).toHaveLength(4);
    expect(replay.lines[0]).toMatch(line(head, 'svc-f'));
    expect(replay.lines[1]).toMatch(line(v1, 'svc-x'));
    expect(replay.lines[2]).toMatch(line(v2, 'svc-y'));
    expect(replay.lines[3]).toMatch(line(v4, 'svc-z'));

    for (const w of [gold, nodes, replay]) expect(await w.stop()).toEqual({ code: 0, signal: null });
  });

  it('exits non-zero with the server’s message on a bad filter and on a resume point past the head', async () => {
    const filter = 'labels.tier == ';
    const refusal = await request<{ error: { message: string } }>(reg.url, 'GET', `/registry/stream?filter=${encodeURIComponent(filter)}`);
    expect(refusal.status).toBe(400);

    const bad = new Watch(['--url', reg.url, '--filter', filter]);
    const past = new Watch(['--url', reg.url, '--from', '999999']);
    const [badExit, pastExit] = await Promise.all([bad.exited, past.exited]);
    expect(badExit).toEqual({ code: 1, signal: null });
    expect(bad.stderr).toBe(`registry: the stream refused the filter: ${refusal.json.error.message}\n`);
    expect(bad.lines).toEqual([]);
    expect(pastExit).toEqual({ code: 1, signal: null });
    expect(past.stderr).toMatch(/^registry: the stream refused the resume point: .*past the head/m);

    const usage = new Watch(['--filter', 'x']);
    expect(await usage.exited).toEqual({ code: 2, signal: null });
    expect(usage.stderr).toBe("registry watch: required option '--url <url>' not specified; see registry watch --help\n");
  });
});

describe('registry watch, on a reset', () => {
  it('says so on stderr and goes on live', async () => {
    const reg = await startTestRegistry(genesis, { config: { streamMaxReplay: 1 } });
    try {
      await commit(reg.url, [put('svc-1')]);
      await commit(reg.url, [put('svc-2')]);
      await commit(reg.url, [put('svc-3')]);
      const w = new Watch(['--url', reg.url, '--from', '0', '--json']);
      await w.untilStderr(/the stream was reset to version 3 \(b3:[0-9a-f]{64}\).*reconcile from http:\S+\/registry\/head/);
      await commit(reg.url, [put('svc-4')]);
      await w.untilLines(1);
      expect(w.events().map((e) => e.version)).toEqual([4]);
      expect(await w.stop()).toEqual({ code: 0, signal: null });
    } finally {
      await reg.close();
    }
  });
});
