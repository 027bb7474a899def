// End to end: `registry freeze` and `registry thaw` as an operator runs them, against a real
// `registry serve` child process (compiled dist/; `npm test` builds it first). The operator
// token reaches the server through --operator-token-file and the CLI through --token-file or
// the environment, never through a command-line value.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import type { AuditEvent } from '../../src/core/schemas.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';

const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const TOKEN = 'e2e-operator-token-4f1c9a7d2b';

const ENV: NodeJS.ProcessEnv = { ...process.env };
for (const name of Object.keys(ENV)) if (name.startsWith('REGISTRY_') || ['HOST', 'PORT', 'LOG_LEVEL'].includes(name)) delete ENV[name];

let dir = '';
let server: ChildProcess | undefined;
let url = '';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = ENV): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd: dir, env, timeout: 15_000 }, (err, stdout, stderr) => {
      const code =
        err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code ?? null) : null;
      resolve({ code, stdout, stderr });
    });
  });
}

async function post(
  path: string,
  body: unknown,
): Promise<{ status: number; json: { error?: { message: string } } & Record<string, unknown> }> {
  const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as { error?: { message: string } } };
}

const keys = signers('alice', 'bob');

beforeAll(async () => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (\`npm test\` does it)`);
  dir = mkdtempSync(join(tmpdir(), 'registry-e2e-operator-'));
  writeFileSync(join(dir, 'genesis.json'), JSON.stringify(genesisRecord('ops-e2e', keys, 1)));
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  const child = spawn(
    process.execPath,
    [
      CLI,
      'serve',
      '--genesis',
      'genesis.json',
      '--db',
      'registry.db',
      '--port',
      '0',
      '--log-level',
      'warn',
      '--operator-token-file',
      'token',
    ],
    { cwd: dir, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  server = child;
  url = await new Promise<string>((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server!.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('registry freeze / thaw', () => {
  it('has no flag that takes the operator token itself', async () => {
    const r = await run(['serve', '--operator-token', TOKEN, '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--operator-token'/);
  });

  it('needs the token: without one it is a usage error, with a wrong one the registry answers 404', async () => {
    const none = await run(['freeze', '--url', url, '--reason', 'x']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/operator token is needed/);
    const wrong = await run(['freeze', '--url', url, '--reason', 'x'], { ...ENV, REGISTRY_OPERATOR_TOKEN: 'not-the-token-at-all-0000' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/404.*the operator token is wrong/);
    expect((await fetch(`${url}/readyz`).then((r) => r.json())) as unknown).toEqual({ read: true, write: true, reasons: [] });
  });

  it('freezes with --token-file: writes are refused with the reason, reads go on; thaws with the environment', async () => {
    const frozen = await run(['freeze', '--url', url, '--reason', 'disk replacement', '--token-file', 'token']);
    expect(frozen.code).toBe(0);
    expect(JSON.parse(frozen.stdout)).toMatchObject({ frozen: true, reason: 'disk replacement', changed: true });
    expect(frozen.stderr).toMatch(/^frozen since .*: disk replacement/);

    const again = await run(['freeze', '--url', url, '--reason', 'other', '--token-file', 'token']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ frozen: true, reason: 'disk replacement', changed: false });
    expect(again.stderr).toMatch(/^already frozen/);

    const head = (await fetch(`${url}/registry/head`).then((r) => r.json())) as { version: number; hash: string };
    const p = proposal('ops-e2e', head, [put('svc-a')]);
    const refused = await post('/registry/proposals', { payload: p, approvals: [approve(keys[0]!, hashOf(p))] });
    expect(refused.status).toBe(503);
    expect(refused.json.error!.message).toContain('disk replacement');
    expect((await fetch(`${url}/readyz`).then((r) => r.json())) as unknown).toEqual({
      read: true,
      write: false,
      reasons: ['frozen: disk replacement'],
    });

    const thawed = await run(['thaw', '--url', url, '--reason', 'disk replaced'], { ...ENV, REGISTRY_OPERATOR_TOKEN: TOKEN });
    expect(thawed.code).toBe(0);
    expect(JSON.parse(thawed.stdout)).toEqual({ frozen: false, changed: true });
    const accepted = await post('/registry/proposals', { payload: p, approvals: [approve(keys[0]!, hashOf(p))] });
    expect(accepted.json).toMatchObject({ status: 'committed', version: 1 });

    const audit = (await fetch(`${url}/registry/audit`).then((r) => r.json())) as { events: AuditEvent[] };
    expect(audit.events.map((e) => [e.kind, e.reason])).toEqual([
      ['frozen', 'disk replacement'],
      ['thawed', 'disk replaced'],
      ['proposal_received', undefined],
      ['approval_accepted', undefined],
      ['committed', undefined],
    ]);
  });
});
