// `registry backup <db> <out>` (issue 15, item 7) against a real `registry serve` on a real port
// with a real SQLite file that keeps committing governed changes while it is copied: the copy
// opens, holds a head the registry acknowledged, verifies on its own (`registry verify --db`),
// and served with the same genesis answers the same record bytes for every version it holds.
// The owner lock (<db>.lock) keeps a second `serve` off the live file, while readers (verify,
// backup) open it beside the service.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import type { Op } from '../../src/core/schemas.js';
import { assertBuilt, CLI, cleanEnv, killChildren, runCli, runInProcess, serveOk, type CliRun, type Served } from '../helpers/cli.js';
import { approve, genesisRecord, proposal, put, signers, type TestSigner } from '../helpers/fixtures.js';
import type { HeadJson } from '../helpers/responses.js';
import { request } from '../helpers/server.js';

const REG = 'e2e-backup';
const [alice, bob, carol] = signers('alice', 'bob', 'carol') as [TestSigner, TestSigner, TestSigner];
/** Rate limits and shedding off: the test commits as fast as one client can. */
const UNLIMITED = [
  '--write-rate-per-address',
  '0',
  '--write-rate-per-signer',
  '0',
  '--refused-kib-per-address',
  '0',
  '--shed-reads-event-loop-delay-ms',
  '0',
  '--shed-writes-event-loop-delay-ms',
  '0',
];
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir = '';
let live: Served;
let url = '';
let serial = 0;

const cli = (...args: string[]): Promise<CliRun> => runCli(args, { cwd: dir });
const inProcess = (...args: string[]): Promise<CliRun> => runInProcess(args, { cwd: dir });

/** One governed change on the head: 2 of 3 approvals, sent with the proposal, commit it at once. */
async function commit(ops: Op[]): Promise<number> {
  const head = await request<HeadJson>(url, 'GET', '/registry/head');
  const p = proposal(REG, head.json, ops);
  const id = hashOf(p);
  const r = await request<{ status: string; version: number }>(url, 'POST', '/registry/proposals', {
    payload: p,
    approvals: [approve(alice, id), approve(bob, id)],
  });
  if (r.status !== 201 || r.json.status !== 'committed') throw new Error(`not committed: ${r.status} ${r.text.slice(0, 300)}`);
  return r.json.version;
}

/** Commits one change after another until stop(): the versions the registry acknowledged. */
function keepCommitting(): { acked: number[]; first: Promise<void>; stop: () => Promise<number[]> } {
  const acked: number[] = [];
  let stopped = false;
  let started!: () => void;
  let failed!: (e: unknown) => void;
  const first = new Promise<void>((resolve, reject) => {
    started = resolve;
    failed = reject;
  });
  const loop = (async () => {
    try {
      while (!stopped) {
        const n = ++serial;
        acked.push(await commit([put(`live-${n}`, { n: String(n) }, { n })]));
        if (acked.length === 1) started();
      }
    } catch (e) {
      failed(e);
      throw e;
    }
  })();
  return {
    acked,
    first,
    stop: async () => {
      stopped = true;
      await loop;
      return acked;
    },
  };
}

/** The head a backup says it copied. */
function printedHead(stdout: string): { version: number; hash: string } {
  const m = /^ {2}head +version (\d+) (b3:[0-9a-f]{64})$/m.exec(stdout);
  if (!m) throw new Error(`no head in the backup's output:\n${stdout}`);
  return { version: Number(m[1]), hash: m[2]! };
}

const partials = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.partial'));

beforeAll(async () => {
  assertBuilt();
  dir = mkdtempSync(join(tmpdir(), 'registry-backup-'));
  writeFileSync(join(dir, 'genesis.json'), JSON.stringify(genesisRecord(REG, [alice, bob, carol], 2)));
  live = await serveOk(['--genesis', 'genesis.json', '--db', 'registry.db', '--port', '0', '--log-level', 'warn', ...UNLIMITED], {
    cwd: dir,
  });
  url = live.url;
  // A log of several MiB, so that a copy takes many steps of SQLite's backup (256 pages each).
  for (let i = 0; i < 8; i++) await commit([put(`bulk-${i}`, { i: String(i) }, { blob: String(i).repeat(350_000) })]);
}, 60_000);

afterAll(async () => {
  await live?.stop();
  await killChildren();
});

describe('registry backup', { timeout: 60_000 }, () => {
  it('copies the live database while governed changes commit: the copy holds an acknowledged head, verifies, and serves the same bytes', async () => {
    expect(statSync(join(dir, 'registry.db')).size + statSync(join(dir, 'registry.db-wal')).size).toBeGreaterThan(4 * 1024 * 1024);
    const committing = keepCommitting();
    await committing.first;
    const before = committing.acked.at(-1)!;
    const ackedBefore = committing.acked.length;
    const r = await cli('backup', 'registry.db', 'backup.db');
    const during = committing.acked.length - ackedBefore;
    const acked = new Set([0, ...Array.from({ length: before }, (_, i) => i + 1), ...(await committing.stop())]);

    expect(r.stderr).toBe(''); // no progress bar without a terminal
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^backed up registry\.db to backup\.db in \d+\.\d\d s$/m);
    expect(r.stdout).toMatch(/^ {2}size +\d+\.\d (KiB|MiB) \(\d+ bytes\)$/m);
    expect(r.stdout).toContain('check it with: registry verify --db backup.db');
    const head = printedHead(r.stdout);
    // Changes kept committing while the backup ran; its head is one the registry acknowledged,
    // no older than the last acknowledged before it started.
    expect(during).toBeGreaterThan(0);
    expect(acked.has(head.version)).toBe(true);
    expect(head.version).toBeGreaterThanOrEqual(before);
    const liveRecord = await request(url, 'GET', `/registry/${head.version}`);
    expect(hashOf(liveRecord.json)).toBe(head.hash);
    expect(Number(printedSize(r.stdout))).toBe(statSync(join(dir, 'backup.db')).size);

    // One self-contained file: no write-ahead log, no temporary file left.
    expect(partials()).toEqual([]);
    expect(existsSync(join(dir, 'backup.db-wal'))).toBe(false);
    const copy = new Database(join(dir, 'backup.db'), { readonly: true, fileMustExist: true });
    try {
      expect(copy.pragma('journal_mode', { simple: true })).toBe('delete');
      expect(copy.pragma('quick_check', { simple: true })).toBe('ok');
      expect(copy.prepare('SELECT MAX(version) AS v FROM commits').get()).toEqual({ v: head.version });
    } finally {
      copy.close();
    }

    const verified = await cli('verify', '--db', 'backup.db', '--genesis-hash', hashOf((await request(url, 'GET', '/registry/0')).json));
    expect(verified.stderr).toBe('');
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain(`trusted head: ${head.hash}`);

    const restored = await serveOk(['--genesis', 'genesis.json', '--db', 'backup.db', '--port', '0', '--log-level', 'warn'], { cwd: dir });
    try {
      const served = await request<HeadJson>(restored.url, 'GET', '/registry/head');
      expect(served.json).toMatchObject({ version: head.version, hash: head.hash });
      for (let v = 0; v <= head.version; v += 16) {
        const versions = Array.from({ length: Math.min(16, head.version + 1 - v) }, (_, i) => v + i);
        const pairs = await Promise.all(
          versions.map(async (n) => [await request(url, 'GET', `/registry/${n}`), await request(restored.url, 'GET', `/registry/${n}`)]),
        );
        for (const [a, b] of pairs) {
          expect(b!.status).toBe(200);
          expect(b!.text).toBe(a!.text);
        }
      }
      expect((await request(restored.url, 'GET', `/registry/${head.version + 1}`)).status).toBe(404);
      expect((await request(url, 'GET', `/registry/${head.version + 1}`)).status).toBe(200);
    } finally {
      await restored.stop();
    }
  });

  it('refuses a second serve on the live database, while verify --db reads it as changes commit', async () => {
    const second = await cli('serve', '--genesis', 'genesis.json', '--db', 'registry.db', '--port', '0', '--log-level', 'warn');
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(
      'registry: cannot start: the database registry.db is in use by another process; one registry process owns a log\n',
    );
    // The live service is untouched and still commits.
    const head = (await request<HeadJson>(url, 'GET', '/registry/head')).json;
    expect(await commit([put(`after-second-serve-${++serial}`)])).toBe(head.version + 1);

    const committing = keepCommitting();
    await committing.first;
    const r = await cli('verify', '--db', 'registry.db');
    const acked = await committing.stop();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const trusted = /^trusted head: (b3:[0-9a-f]{64})$/m.exec(r.stdout)![1]!;
    const version = Number(/^ {2}head +version (\d+) /m.exec(r.stdout)![1]);
    expect(version).toBeGreaterThan(head.version);
    expect(version).toBeLessThanOrEqual(acked.at(-1)!);
    expect(hashOf((await request(url, 'GET', `/registry/${version}`)).json)).toBe(trusted);
  });

  it('never replaces a file without --force; with it, replaces it whole', async () => {
    writeFileSync(join(dir, 'precious.db'), 'not to be overwritten');
    const refused = await inProcess('backup', 'registry.db', 'precious.db');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe('registry: backup: precious.db exists; a backup never replaces a file unless --force is given\n');
    expect(readFileSync(join(dir, 'precious.db'), 'utf8')).toBe('not to be overwritten');

    const forced = await inProcess('backup', 'registry.db', 'precious.db', '--force');
    expect(forced.stderr).toBe('');
    expect(forced.code).toBe(0);
    const head = printedHead(forced.stdout);
    expect(head.hash).toBe(hashOf((await request(url, 'GET', `/registry/${head.version}`)).json));
    expect((await cli('verify', '--db', 'precious.db')).stdout).toContain(`trusted head: ${head.hash}`);
    expect(partials()).toEqual([]);
  });

  it('says why it cannot back up, and writes nothing', async () => {
    writeFileSync(join(dir, 'notes.txt'), 'hello, not a database'.repeat(100));
    writeFileSync(join(dir, 'stale.db'), '');
    writeFileSync(join(dir, 'stale.db-wal'), 'a log of another file');
    const cases: [string[], number, string][] = [
      [['missing.db', 'x.db'], 2, 'registry: backup: no such database file: missing.db\n'],
      [
        ['registry.db', 'nowhere/x.db'],
        2,
        'registry: backup: the folder of nowhere/x.db does not exist: create nowhere, or choose another <out>\n',
      ],
      [['registry.db', '.'], 2, 'registry: backup: . is a folder; <out> names the backup file to write\n'],
      [['.', 'x.db'], 2, 'registry: backup: . is not a file\n'],
      [['notes.txt', 'x.db'], 1, 'registry: backup: notes.txt is not a SQLite database\n'],
      [
        ['registry.db', 'registry.db', '--force'],
        2,
        'registry: backup: <out> registry.db is the database itself (or one of its files); choose another <out>\n',
      ],
      [
        ['registry.db', 'registry.db-wal', '--force'],
        2,
        'registry: backup: <out> registry.db-wal is the database itself (or one of its files); choose another <out>\n',
      ],
      [
        ['registry.db', 'stale.db', '--force'],
        2,
        'registry: backup: stale.db-wal exists: stale.db is open or was not closed cleanly, and SQLite would replay that log onto the new ' +
          'backup; stop whatever uses stale.db and remove stale.db-wal and stale.db-shm, or choose another <out>\n',
      ],
      [['registry.db'], 2, "registry backup: missing required argument 'out'; see registry backup --help\n"],
    ];
    for (const [args, code, stderr] of cases) {
      const r = await inProcess('backup', ...args);
      expect({ args, code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({ args, code, stderr, stdout: '' });
    }
    const other = new Database(join(dir, 'other.sqlite'));
    other.exec('CREATE TABLE t (x)');
    other.close();
    const notRegistry = await inProcess('backup', 'other.sqlite', 'x.db');
    expect(notRegistry.code).toBe(1);
    expect(notRegistry.stderr).toMatch(
      /^registry: backup: other\.sqlite is not a registry database of this version \(no such table: \w+\)\n$/,
    );
    expect(existsSync(join(dir, 'x.db'))).toBe(false);
    expect(readFileSync(join(dir, 'stale.db'), 'utf8')).toBe('');
    expect(partials()).toEqual([]);
    // The live database is still served, and still the only writer's.
    expect((await request(url, 'GET', '/readyz')).status).toBe(200);
  });

  it('killed at any point, it leaves no half backup under <out>: either none, or a whole one', async () => {
    const committing = keepCommitting();
    await committing.first;
    const child = spawn(process.execPath, [CLI, 'backup', 'registry.db', 'killed.db'], { cwd: dir, env: cleanEnv(), stdio: 'ignore' });
    // Killed as soon as anything of the backup appears in the folder, mid-copy.
    const watcher = watch(dir, (_event, name) => {
      if (name && name.includes('killed.db')) child.kill('SIGKILL');
    });
    const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    watcher.close();
    await committing.stop();
    expect(ended.signal === 'SIGKILL' || ended.code === 0).toBe(true);
    if (existsSync(join(dir, 'killed.db'))) {
      const v = await cli('verify', '--db', 'killed.db');
      expect(v.code).toBe(0);
    }
    // What the crash left is the temporary file, under its own name; the next backup succeeds.
    const again = await cli('backup', 'registry.db', 'killed.db', '--force');
    expect(again.code).toBe(0);
    expect((await cli('verify', '--db', 'killed.db')).code).toBe(0);
  });

  it.runIf(hasScript)('shows its progress on a terminal', async () => {
    // `script` runs the command on a pseudo-terminal: stderr is a TTY there.
    const r = await new Promise<string>((resolve, reject) =>
      execFileCb(
        'script',
        ['-qec', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} backup registry.db tty.db`, '/dev/null'],
        (e, out) => (e ? reject(e) : resolve(out)),
      ),
    );
    expect(r).toMatch(/backing up \[[^\]]+\] 100% \| (\d+)\/\1 pages/);
    expect(r).toMatch(/backed up registry\.db to tty\.db/);
  });
});

function printedSize(stdout: string): string {
  return /^ {2}size .*\((\d+) bytes\)$/m.exec(stdout)![1]!;
}

function execFileCb(file: string, args: string[], done: (e: Error | null, out: string) => void): void {
  const child = spawn(file, args, { cwd: dir, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.once('exit', (code) => done(code === 0 ? null : new Error(`script exited ${code}: ${out}`), out));
}
