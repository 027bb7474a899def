// The bundle that `npm start` and the `registry` command run (dist/registry.mjs, made by
// scripts/bundle.mjs from the compiled dist/): it serves what the unbundled program serves, finds
// the files it names relative to itself (migrations, package.json, the worker scripts), and
// loads @fastify/swagger from node_modules when the document is first asked for.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../helpers/process.js';

const BUNDLE = fileURLToPath(new URL('../../dist/registry.mjs', import.meta.url));
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const ENV: NodeJS.ProcessEnv = { ...process.env };
for (const name of Object.keys(ENV)) if (name.startsWith('REGISTRY_') || ['HOST', 'PORT', 'LOG_LEVEL'].includes(name)) delete ENV[name];

const children = new Set<ChildProcess>();
let dir = '';

function serve(program: string, args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [program, 'serve', '--port', '0', '--log-level', 'warn', ...args], { cwd: dir, env: ENV });
  children.add(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${program} exited with ${code}: ${out.slice(-500)}`)));
  });
}

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [BUNDLE, ...args], { cwd: dir, env: ENV }, (e, stdout, stderr) =>
      resolve({ code: e ? Number(e.code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

describe('dist/registry.mjs', () => {
  beforeAll(() => {
    if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run npm run build (npm ci runs it)`);
    dir = mkdtempSync(join(tmpdir(), 'registry-bundle-'));
  });
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the version of package.json', async () => {
    expect((await run(['--version'])).stdout.trim()).toBe(VERSION);
  });

  it('serves a development registry as the unbundled program does, and the log it wrote verifies', async () => {
    const bundled = await serve(BUNDLE, ['--data-dir', join(dir, 'data')]);
    // The unbundled program on the same genesis, with a database of its own.
    const plain = await serve(CLI, ['--genesis', join(dir, 'data', 'genesis.json'), '--db', join(dir, 'plain.db')]);
    for (const path of ['/registry/head', '/version', '/openapi.json']) {
      const [a, b] = await Promise.all([fetch(bundled.url + path), fetch(plain.url + path)]);
      expect(a.status, path).toBe(200);
      expect(await a.text(), path).toBe(await b.text());
    }
    // The verifier's worker threads, and the migrations, found from the bundle.
    const verified = await run(['verify', '--db', join(dir, 'data', 'registry.db')]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^trusted head: b3:[0-9a-f]{64}$/m);
  });
});
