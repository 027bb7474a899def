// The built `registry` command as a user runs it: each call a child process of
// dist/cli/main.js, in a folder of the test's choosing, with none of the parent's registry
// settings in its environment.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** The environment of the children: the parent's, without anything that would configure them. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (/^REGISTRY_/.test(name) || ['HOST', 'PORT', 'LOG_LEVEL'].includes(name)) delete env[name];
  return { ...env, ...extra };
}

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const children = new Set<ChildProcess>();

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (\`npm test\` does it)`);
}

/** One command to completion; never rejects on a non-zero exit (the test checks the code). */
export function runCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; input?: string }): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: options.cwd, env: options.env ?? cleanEnv(), timeout: 20_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        children.delete(child);
        const e = err as (Error & { code?: unknown }) | null;
        resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, stdout, stderr });
      },
    );
    children.add(child);
    child.stdin!.end(options.input ?? '');
  });
}

/** A shell command line to completion, under bash (`-e -u -o pipefail`). */
export function runBash(script: string, options: { cwd: string; env: NodeJS.ProcessEnv; input?: string }): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = execFile(
      'bash',
      ['-euo', 'pipefail', '-c', script],
      { cwd: options.cwd, env: options.env, timeout: 60_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        children.delete(child);
        const e = err as (Error & { code?: unknown }) | null;
        resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, stdout, stderr });
      },
    );
    children.add(child);
    child.stdin!.end(options.input ?? '');
  });
}

/** A folder holding a `registry` executable that runs the built CLI, for PATH. */
export function registryBin(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'registry'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`);
  chmodSync(join(bin, 'registry'), 0o755);
  return bin;
}

export const withPath = (bin: string, env: NodeJS.ProcessEnv = cleanEnv()): NodeJS.ProcessEnv => ({
  ...env,
  PATH: `${bin}${delimiter}${env.PATH ?? ''}`,
});

export interface Served {
  child: ChildProcess;
  url: string;
  /** Everything printed on stdout so far. */
  stdout: () => string;
  stop(): Promise<number | null>;
}

export type ServeOutcome = ({ kind: 'listening' } & Served) | { kind: 'exit'; code: number | null; stdout: string; stderr: string };

/** `registry serve …` in `cwd`: resolves once it listens (and printed what follows the line
 * within `settleMs`), or when it exits first. */
export function serveCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; settleMs?: number }): Promise<ServeOutcome> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    cwd: options.cwd,
    env: options.env ?? cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      const first = !/^listening on /m.test(stdout);
      stdout += d;
      const m = /^listening on (http:\/\/\S+)$/m.exec(stdout);
      if (m && first)
        setTimeout(
          () =>
            resolve({
              kind: 'listening',
              child,
              url: m[1]!,
              stdout: () => stdout,
              stop: async () => {
                child.kill('SIGTERM');
                return exited;
              },
            }),
          options.settleMs ?? 0,
        );
    });
    child.once('close', (code) => resolve({ kind: 'exit', code, stdout, stderr }));
  });
}

export async function serveOk(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; settleMs?: number }): Promise<Served> {
  const r = await serveCli(args, options);
  if (r.kind !== 'listening') throw new Error(`serve exited ${r.code} before listening\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** Ends every child still running (afterAll). */
export async function killChildren(): Promise<void> {
  await Promise.all(
    [...children].map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
}

let queue: Promise<unknown> = Promise.resolve();

/** The same command run inside the test's own process (so that coverage sees src/cli), with
 * stdout and stderr captured and `cwd` as the working directory: one at a time. */
export function runInProcess(args: string[], options: { cwd: string }): Promise<CliRun> {
  const task = queue.then(async () => {
    const { run } = await import('../../src/cli/program.js');
    let stdout = '';
    let stderr = '';
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    const capture =
      (append: (text: string) => void) =>
      (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
        append(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
        const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
        done?.();
        return true;
      };
    const before = process.cwd();
    process.stdout.write = capture((t) => (stdout += t));
    process.stderr.write = capture((t) => (stderr += t));
    // Never a terminal to confirm on, whoever runs the tests: approve needs --yes here too.
    const tty = Object.getOwnPropertyDescriptor(process.stdin, 'isTTY');
    Object.defineProperty(process.stdin, 'isTTY', { value: false, configurable: true });
    process.chdir(options.cwd);
    try {
      return { code: await run(args), stdout, stderr };
    } finally {
      if (tty) Object.defineProperty(process.stdin, 'isTTY', tty);
      else delete (process.stdin as { isTTY?: boolean }).isTTY;
      process.chdir(before);
      process.stdout.write = out;
      process.stderr.write = err;
    }
  });
  queue = task.catch(() => undefined);
  return task;
}
