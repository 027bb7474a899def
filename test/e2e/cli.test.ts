// End-to-end: the `registry` CLI as a user runs it, each command a real child process of the
// compiled dist/cli/main.js, in a fresh temp directory with a real SQLite file. Builds nothing:
// `npm test` (and `npm ci`, through `prepare`) compiles dist/ before vitest runs.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyFile } from '../../src/cli/keyfile.js';
import type { CommitRecord, GenesisPayload } from '../../src/core/schemas.js';
import type { ProposalView } from '../../src/state/proposal-view.js';
import type { HeadJson } from '../helpers/responses.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const HEX64 = /^[0-9a-f]{64}$/;

/** The parent's registry settings must not leak into the children (flags < env would surprise). */
const ENV: NodeJS.ProcessEnv = { ...process.env };
for (const name of [
  'REGISTRY_GENESIS',
  'REGISTRY_DB',
  'HOST',
  'PORT',
  'REGISTRY_SYNCHRONOUS',
  'LOG_LEVEL',
  'REGISTRY_DATA_DIR',
  'REGISTRY_CONFIG',
])
  delete ENV[name];

const children = new Set<ChildProcess>();
let dir = '';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** One CLI command to completion; never rejects on a non-zero exit (the test checks the code). */
function run(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: dir, env: ENV, timeout: 15_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        children.delete(child);
        const e = err as (Error & { code?: unknown; signal?: NodeJS.Signals | null }) | null;
        const code = e === null ? 0 : typeof e.code === 'number' ? e.code : null;
        resolve({ code, signal: e?.signal ?? null, stdout, stderr });
      },
    );
    children.add(child);
  });
}

/** Runs a command that must succeed and returns its stdout, or fails with all it printed. */
async function ok(...args: string[]): Promise<string> {
  const r = await run(...args);
  if (r.code !== 0) throw new Error(`registry ${args.join(' ')} exited ${r.code ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** expect.stringMatching, typed: Vitest declares its asymmetric matchers as returning `any`. */
const matching = (pattern: RegExp): unknown => expect.stringMatching(pattern);

/** Runs a command that must succeed and parses its stdout as the JSON the caller expects. */
const okJson = async <T = unknown>(...args: string[]): Promise<T> => JSON.parse(await ok(...args)) as T;

interface Server {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

type ServeOutcome =
  | { kind: 'listening'; url: string; server: Server }
  | { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

/** Spawns `serve` and resolves on whichever comes first: the "listening on" line or the exit. */
function serve(...args: string[]): Promise<ServeOutcome> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], { cwd: dir, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  const server: Server = { child, stderr: () => stderr, exited };
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      for (const line of stdout.split('\n').slice(0, -1)) {
        const m = /^listening on (http:\/\/\S+)$/.exec(line);
        if (m) resolve({ kind: 'listening', url: m[1]!, server });
      }
    });
    // 'close' (not 'exit') so that all of stdout and stderr has been read.
    child.once('close', (code, signal) => resolve({ kind: 'exit', code, signal, stdout, stderr }));
  });
}

async function serveOk(...args: string[]): Promise<{ url: string; server: Server }> {
  const r = await serve(...args);
  if (r.kind !== 'listening')
    throw new Error(`serve exited ${r.code ?? r.signal} before listening\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

async function stop(server: Server): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  server.child.kill('SIGTERM');
  return server.exited;
}

async function getJson<T = unknown>(url: string, path: string): Promise<{ status: number; json: T }> {
  const res = await fetch(new URL(path, url));
  return { status: res.status, json: (await res.json()) as T };
}

const ops = [
  { op: 'put', descriptor: { id: 'svc-a@eu-west-1', kind: 'service', labels: { region: 'eu-west-1' }, body: { port: 443 } } },
  { op: 'put', descriptor: { id: 'svc-b@eu-west-1', kind: 'service', labels: { region: 'eu-west-1', tier: 'gold' }, body: {} } },
];

describe('registry CLI, end to end', () => {
  const pub: Record<string, string> = {};
  const key = (id: string) => join(dir, `${id}.key`);
  const db = () => join(dir, 'registry.db');
  let server: Server | undefined;
  let url = '';
  let proposalId = '';

  beforeAll(() => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (\`npm test\` does it)`);
    dir = mkdtempSync(join(tmpdir(), 'registry-e2e-'));
  });

  afterAll(async () => {
    const exits = [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    );
    await Promise.all(exits);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keygen writes 0600 key files, prints the public key, and never overwrites', async () => {
    const outs = await Promise.all(['alice', 'bob', 'carol'].map((id) => ok('keygen', '--out', key(id), '--id', id)));
    for (const [i, id] of ['alice', 'bob', 'carol'].entries()) {
      const lines = outs[i]!.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(HEX64);
      pub[id] = lines[0]!;
      expect(statSync(key(id)).mode & 0o777).toBe(0o600);
      const file = JSON.parse(readFileSync(key(id), 'utf8')) as KeyFile;
      expect(file).toMatchObject({ signer_id: id, public_key: pub[id] });
    }
    expect(new Set(Object.values(pub)).size).toBe(3);

    const before = readFileSync(key('alice'), 'utf8');
    const again = await run('keygen', '--out', key('alice'), '--id', 'alice');
    expect(again.code).not.toBe(0);
    expect(again.code).not.toBeNull();
    expect(again.stdout).toBe('');
    expect(again.stderr).toMatch(/EEXIST|exists/i);
    expect(readFileSync(key('alice'), 'utf8')).toBe(before);
  });

  it('creates, signs (2 of 3) and assembles a genesis', async () => {
    const payloadFile = join(dir, 'genesis-payload.json');
    await ok(
      'genesis',
      'create',
      '--registry-id',
      'e2e',
      '--threshold',
      '2',
      '--signer',
      `carol=${pub.carol}`,
      '--signer',
      `alice=${pub.alice}`,
      '--signer',
      `bob=${pub.bob}`,
      '--out',
      payloadFile,
    );
    const payload = JSON.parse(readFileSync(payloadFile, 'utf8')) as GenesisPayload;
    expect(payload).toMatchObject({ type: 'registry.genesis', registry_id: 'e2e', signer_set: { threshold: 2 } });
    expect(payload.signer_set.signers.map((s) => s.id)).toEqual(['alice', 'bob', 'carol']);

    const approvals: string[] = [];
    const signed = await Promise.all(['alice', 'bob'].map((id) => okJson('sign', payloadFile, '--key', key(id))));
    for (const [i, id] of ['alice', 'bob'].entries()) {
      expect(signed[i]).toEqual({ signer_id: id, sig: matching(/^[0-9a-f]{128}$/) });
      const f = join(dir, `${id}.approval.json`);
      writeFileSync(f, JSON.stringify(signed[i]));
      approvals.push('--approval', f);
    }
    await ok('genesis', 'assemble', payloadFile, ...approvals, '--out', join(dir, 'genesis.json'));
    const record = JSON.parse(readFileSync(join(dir, 'genesis.json'), 'utf8')) as CommitRecord;
    expect(record).toMatchObject({ type: 'registry.commit', registry_id: 'e2e', version: 0, prev_hash: null, payload });
    expect(record.approvals.map((a) => a.signer_id)).toEqual(['alice', 'bob']);
  });

  it('serves on --port 0 and prints the real port', async () => {
    ({ url, server } = await serveOk(
      '--genesis',
      join(dir, 'genesis.json'),
      '--db',
      db(),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--log-level',
      'warn',
    ));
    const m = /^http:\/\/127\.0\.0\.1:(\d+)$/.exec(url);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(existsSync(db())).toBe(true);
    const version = await getJson(url, '/version');
    expect(version.status).toBe(200);
    expect(version.json).toMatchObject({ registry_id: 'e2e' });
  });

  it('proposes with alice, commits with bob, and reports status', async () => {
    const opsFile = join(dir, 'ops.json');
    writeFileSync(opsFile, JSON.stringify(ops));
    const proposed = await okJson<ProposalView>(
      'propose',
      '--url',
      url,
      '--key',
      key('alice'),
      '--ops',
      opsFile,
      '--reason',
      'two services',
    );
    expect(proposed).toMatchObject({
      proposal_id: matching(/^b3:[0-9a-f]{64}$/),
      status: 'pending',
      approvals: [{ signer_id: 'alice' }],
      threshold: 2,
    });
    expect(proposed.version).toBeUndefined();
    proposalId = proposed.proposal_id;

    const approved = await okJson('approve', proposalId, '--url', url, '--key', key('bob'), '--yes');
    expect(approved).toMatchObject({ proposal_id: proposalId, status: 'committed', version: 1 });

    const [head, shown] = await Promise.all([okJson<HeadJson>('status', '--url', url), okJson('status', '--url', url, proposalId)]);
    expect(head).toMatchObject({ version: 1, descriptor_count: 2 });
    expect(shown).toMatchObject({ proposal_id: proposalId, status: 'committed', version: 1, payload: { reason: 'two services', ops } });

    const http = await getJson(url, '/registry/head');
    expect(http.status).toBe(200);
    expect(http.json).toMatchObject({ version: 1, descriptor_count: 2, hash: head.hash });
    const record = await getJson<CommitRecord>(url, '/registry/1');
    expect(record.status).toBe(200);
    expect(record.json).toMatchObject({ type: 'registry.commit', version: 1, payload_hash: proposalId, payload: { ops } });
    expect(record.json.approvals.map((a) => a.signer_id)).toEqual(['alice', 'bob']);
  });

  it('refuses an approval by a key that is not a signer before signing, saying whose key it is not', async () => {
    const mallory = (await ok('keygen', '--out', key('mallory'), '--id', 'mallory')).trim();
    expect(mallory).toMatch(HEX64);
    const opsFile = join(dir, 'ops2.json');
    writeFileSync(opsFile, JSON.stringify([{ op: 'delete', id: 'svc-b@eu-west-1' }]));
    const pending = await okJson<ProposalView>('propose', '--url', url, '--key', key('alice'), '--ops', opsFile);
    expect(pending).toMatchObject({ status: 'pending' });

    const [refused, forged] = await Promise.all([
      run('approve', pending.proposal_id, '--url', url, '--key', key('mallory'), '--yes'),
      // mallory's key under carol's name: the CLI sees it is not carol's key and signs nothing.
      run('approve', pending.proposal_id, '--url', url, '--key', key('mallory'), '--id', 'carol', '--yes'),
    ]);
    expect(refused.code).toBe(9);
    expect(refused.stderr).toContain('registry: mallory is not a signer on registry e2e (its signers: alice, bob, carol)');
    expect(refused.stdout).toBe('');
    expect(forged.code).toBe(9);
    expect(forged.stderr).toMatch(
      /registry: this key's public key [0-9a-f]+… is not carol's key on registry e2e \([0-9a-f]+…\); check --key/,
    );

    const [still, head] = await Promise.all([okJson('status', '--url', url, pending.proposal_id), okJson('status', '--url', url)]);
    expect(still).toMatchObject({ status: 'pending', approvals: [{ signer_id: 'alice' }] });
    expect(head).toMatchObject({ version: 1 });
  });

  it('stops on SIGTERM with exit code 0 and restarts on the same database', async () => {
    expect(server).toBeDefined();
    expect(await stop(server!)).toEqual({ code: 0, signal: null });
    server = undefined;

    const again = await serveOk(
      '--genesis',
      join(dir, 'genesis.json'),
      '--db',
      db(),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--log-level',
      'warn',
    );
    server = again.server;
    url = again.url;
    const [head, shown] = await Promise.all([okJson('status', '--url', url), okJson('status', '--url', url, proposalId)]);
    expect(head).toMatchObject({ version: 1, descriptor_count: 2 });
    expect(shown).toMatchObject({ status: 'committed', version: 1 });

    expect(await stop(server)).toEqual({ code: 0, signal: null });
    server = undefined;
  });

  it('refuses to serve a database with another genesis', async () => {
    const payloadFile = join(dir, 'genesis3-payload.json');
    await ok(
      'genesis',
      'create',
      '--registry-id',
      'e2e',
      '--threshold',
      '3',
      '--signer',
      `alice=${pub.alice}`,
      '--signer',
      `bob=${pub.bob}`,
      '--signer',
      `carol=${pub.carol}`,
      '--out',
      payloadFile,
    );
    const ids = ['alice', 'bob', 'carol'];
    const signed = await Promise.all(ids.map((id) => ok('sign', payloadFile, '--key', key(id))));
    const approvals = ids.flatMap((id, i) => {
      const f = join(dir, `${id}.approval3.json`);
      writeFileSync(f, signed[i]!);
      return ['--approval', f];
    });
    await ok('genesis', 'assemble', payloadFile, ...approvals, '--out', join(dir, 'genesis3.json'));

    const r = await serve(
      '--genesis',
      join(dir, 'genesis3.json'),
      '--db',
      db(),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--log-level',
      'warn',
    );
    if (r.kind === 'listening') throw new Error(`serve accepted a database holding another genesis (listening on ${r.url})`);
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stdout).not.toContain('listening on');
    expect(r.stderr).toMatch(/cannot start/);
    expect(r.stderr).toMatch(/another registry|genesis/);

    // The refusal changed nothing: the right genesis still serves version 1.
    const back = await serveOk(
      '--genesis',
      join(dir, 'genesis.json'),
      '--db',
      db(),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--log-level',
      'warn',
    );
    server = back.server;
    expect((await getJson(back.url, '/registry/head')).json).toMatchObject({ version: 1, descriptor_count: 2 });
    expect(await stop(server)).toEqual({ code: 0, signal: null });
    server = undefined;
  });
});
