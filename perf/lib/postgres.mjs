// A throw-away PostgreSQL for the benchmarks: the subset of test/helpers/postgres.ts that the perf
// scripts need (they are plain .mjs and cannot import it), and it mirrors that helper: Debian's
// binaries ($PG_BINDIR or the newest /usr/lib/postgresql/<version>/bin), a temporary data
// directory, a free port on 127.0.0.1, initdb and pg_ctl as the `postgres` user when we are root
// (PostgreSQL refuses to run as root). fsync is off (a benchmark's durability against a machine
// crash is not under test); synchronous_commit stays on, so a commit is in the WAL when
// acknowledged, as in production. stop() deletes everything; so does the process's exit.
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';

const run = promisify(execFile);

function binDir() {
  const candidates = process.env.PG_BINDIR ? [process.env.PG_BINDIR] : [];
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian))
    candidates.push(
      ...readdirSync(debian)
        .filter((v) => /^\d+(\.\d+)?$/.test(v))
        .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
        .map((v) => join(debian, v, 'bin')),
    );
  const dir = candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')));
  if (!dir) throw new Error('PostgreSQL is not installed: initdb and pg_ctl come from Debian\'s "postgresql" package');
  return dir;
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });

/** Starts the server; resolves with {url, version, pid, createDatabase(), stop()}. */
export async function startPostgres() {
  const bin = binDir();
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'registry-perf-pg-'));
  const data = join(dir, 'data');
  const sockets = join(dir, 'sockets');
  const log = join(dir, 'postgres.log');
  mkdirSync(sockets);
  if (asRoot) {
    const id = (flag) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    for (const path of [dir, sockets]) chownSync(path, id('-u'), id('-g'));
  }
  const command = (name, args) => (asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, name), ...args]] : [join(bin, name), args]);
  const tool = (name, args) => run(...command(name, args));
  let started = false;
  const stopNow = () => {
    if (started) spawnSync(...command('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']));
    started = false;
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stopNow);
  try {
    await tool('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync']);
    const port = await freePort();
    const options = [
      `-p ${port}`,
      `-k ${sockets}`,
      '-c listen_addresses=127.0.0.1',
      '-c fsync=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
    ];
    await tool('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', options.join(' '), 'start']);
    started = true;
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    const [{ server_version: version }] = await admin`SHOW server_version`;
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    let databases = 0;
    return {
      url,
      version,
      /** The postmaster's process id (its backends are its children). */
      pid,
      async createDatabase() {
        const name = `registry_${++databases}`;
        await admin.unsafe(`CREATE DATABASE ${name}`);
        return `postgres://postgres@127.0.0.1:${port}/${name}`;
      },
      async stop() {
        await admin.end({ timeout: 5 });
        await tool('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']).catch(() => {});
        started = false;
        stopNow();
        process.removeListener('exit', stopNow);
      },
    };
  } catch (e) {
    const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '(no log)';
    stopNow();
    process.removeListener('exit', stopNow);
    throw new Error(`PostgreSQL did not start (${bin}): ${e.message}\n${tail}`, { cause: e });
  }
}
