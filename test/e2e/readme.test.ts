// The README's CLI walkthrough, run as it is written: its ```sh blocks are taken from README.md
// and run by bash with `registry` on the PATH (the built CLI), the first against a development
// registry started the way `npm start` starts it, the second in an empty folder. The commands
// the development registry prints at start are run as printed, too.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, killChildren, registryBin, runBash, serveOk, withPath, type Served } from '../helpers/cli.js';

const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
const blocks = [...README.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);

const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('the README walkthrough', { timeout: 90_000 }, () => {
  const dirs: string[] = [];
  const temp = () => {
    const d = mkdtempSync(join(tmpdir(), 'registry-readme-'));
    dirs.push(d);
    return d;
  };
  let env: NodeJS.ProcessEnv;
  let dev: Served;
  let devDir = '';

  beforeAll(async () => {
    assertBuilt();
    const home = temp();
    env = withPath(registryBin(home));
    devDir = temp();
    // `npm start` is `registry serve` with no genesis: a development registry under ./data.
    dev = await serveOk(['--port', '0', '--log-level', 'warn'], { cwd: devDir, env, settleMs: 200 });
  });

  afterAll(async () => {
    await dev?.stop();
    await killChildren();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('has the two blocks the test runs', () => {
    expect(blocks).toHaveLength(2);
    expect(blocks[0]).toContain('keys=./data/dev-keys');
    expect(blocks[1]).toContain('registry genesis assemble');
  });

  it('the development registry prints where its keys are and a propose and approve pair that run as printed', async () => {
    const printed = dev.stdout();
    const keys = join(devDir, 'data', 'dev-keys');
    expect(printed).toContain(`their keys in ${keys} (never use them in production)`);
    const commands = printed
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .map((l) => l.trim());
    expect(commands).toHaveLength(2);
    expect(commands[0]).toMatch(
      new RegExp(
        `^id=\\$\\(node \\S+/dist/cli/main\\.js propose --url ${dev.url} --key ${keys}/alice\\.key --ops \\S+ --reason 'a first change' --quiet\\)$`,
      ),
    );
    expect(commands[1]).toMatch(
      new RegExp(`^node \\S+/dist/cli/main\\.js approve "\\$id" --url ${dev.url} --key ${keys}/bob\\.key --registry-id dev$`),
    );
    const script = join(devDir, 'banner.sh');
    let output: string;
    if (hasScript) {
      // On a terminal, as printed: approve shows the review and asks.
      writeFileSync(script, commands.join('\n') + '\n');
      try {
        output = execFileSync('script', ['-qec', `bash -euo pipefail ${script}`, '/dev/null'], {
          cwd: devDir,
          env,
          input: 'y\n',
          encoding: 'utf8',
        });
      } catch (e) {
        throw new Error(`the printed commands failed: ${(e as { stdout?: string }).stdout}`, { cause: e });
      }
      expect(output).toContain('[y/N]');
    } else {
      const r = await runBash(`${commands[0]}\n${commands[1]} --yes\n`, { cwd: devDir, env });
      expect(r.code).toBe(0);
      output = r.stdout + r.stderr;
    }
    expect(output).toMatch(/\+ svc-hello@dev: added/);
    expect(output).toMatch(/approved b3:[0-9a-f]{64} as bob: committed as version 1/);
  });

  it('runs the development registry walkthrough as written', async () => {
    const r = await runBash(blocks[0]!, { cwd: devDir, env: { ...env, REGISTRY_URL: dev.url } });
    if (r.code !== 0) throw new Error(`the walkthrough exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    expect(r.stdout).toContain('  + svc-storage@us-east-1: added\n');
    expect(r.stdout).toContain('PENDING on the current head: it can be approved (exit 0)');
    expect(r.stdout).toMatch(/"status": "committed",\n {2}"approvals": \[[^\]]*\],\n {2}"threshold": 2,\n {2}"version": 2\n/);
    expect(r.stdout).toMatch(/"descriptor": \{[\s\S]*"id": "svc-storage@us-east-1"/);
    expect(r.stdout).toMatch(/^\d+ \S+ committed b3:[0-9a-f]{64} version 2$/m);
    const head = (await (await fetch(`${dev.url}/registry/head`)).json()) as { version: number; descriptor_count: number };
    expect(head).toMatchObject({ version: 2, descriptor_count: 2 });
  });

  it('runs the own-registry block as written, and its genesis serves', async () => {
    const dir = temp();
    const r = await runBash(blocks[1]!, { cwd: dir, env });
    if (r.code !== 0) throw new Error(`the block exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    expect(existsSync(join(dir, 'genesis.json'))).toBe(true);
    // The README's serve line, on any free port.
    expect(README).toContain('    registry serve --genesis genesis.json --db ./prod-eu.db --port 8080\n');
    const served = await serveOk(['--genesis', 'genesis.json', '--db', './prod-eu.db', '--port', '0', '--log-level', 'warn'], {
      cwd: dir,
      env,
    });
    try {
      const version = (await (await fetch(`${served.url}/version`)).json()) as { registry_id: string };
      expect(version.registry_id).toBe('prod-eu');
    } finally {
      await served.stop();
    }
  });
});
