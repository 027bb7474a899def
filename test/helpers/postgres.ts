// A real PostgreSQL for the tests, started by the tests themselves: Debian's `postgresql` package
// (.ci/run installs it), run from a temporary data directory on a free port, never the system
// service. PostgreSQL refuses to run as root, so as root initdb and pg_ctl run as the `postgres`
// user (runuser). Without the binaries the PostgreSQL tests are skipped with a message, but only
// outside CI: with CI set, a missing PostgreSQL fails them (like promtool, test/helpers/prometheus.ts).
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll } from 'vitest';
import { freePort } from './nginx.js';

const run = promisify(execFile);

export interface PostgresServer {
  /** postgres://postgres@127.0.0.1:<port>/postgres: the server's default database. */
  url: string;
  /** A new, empty database on this server, and its URL. `icuLocale` makes an ICU collation
   * (e.g. 'en-US') the database's default, to show that the store's ordering does not depend on it. */
  createDatabase(options?: { icuLocale?: string }): Promise<string>;
  /** Stops the server at once (as a crash does: -m immediate), keeping its files and port. */
  halt(): Promise<void>;
  /** Starts it again after halt(), on the same port. */
  resume(): Promise<void>;
  /** Freezes the server and all its sessions (SIGSTOP), as a lost host or a network partition
   * looks to a client: connections open and queries sent, but no answer and no refusal. Linux
   * (the sessions are found in /proc). halt() and stop() let a stalled server go on first. */
  stall(): void;
  /** Lets it go on after stall(): what it was sent is answered then. */
  unstall(): void;
  stop(): Promise<void>;
}

const MISSING =
  'PostgreSQL is not installed: the PostgreSQL tests need initdb and pg_ctl from Debian\'s "postgresql" package ' +
  '(apt-get install postgresql), which .ci/run installs';

/** Where PostgreSQL's programs may be: $PG_BINDIR, then each /usr/lib/postgresql/<version>/bin, newest first. */
export function debianBinDirs(): string[] {
  const candidates: string[] = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
    candidates.push(...versions.map((v) => join(debian, v, 'bin')));
  }
  return candidates;
}

/** The folder of initdb and pg_ctl: $PG_BINDIR, the newest /usr/lib/postgresql/<version>/bin, or the PATH. */
export function postgresBinDir(): string | undefined {
  const candidates = [...debianBinDirs(), ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  return candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
}

/** Why the PostgreSQL tests are skipped here, or undefined when they run: they are skipped only
 * when PostgreSQL is missing outside CI. In CI they run, and startPostgres fails saying what is missing. */
export function postgresSkipReason(): string | undefined {
  if (postgresBinDir() !== undefined || process.env.CI) return undefined;
  return `${MISSING}; skipped outside CI`;
}

/** The uid and gid PostgreSQL's processes run as: ours, or the postgres user's when we are root. */
export function owner(): { uid: number; gid: number; asRoot: boolean } {
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) return { uid, gid: process.getgid?.() ?? -1, asRoot: false };
  const id = (flag: string): number => {
    const r = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`running as root, PostgreSQL needs the "postgres" user, which does not exist: ${r.stderr.trim()}`);
    return Number(r.stdout.trim());
  };
  return { uid: id('-u'), gid: id('-g'), asRoot: true };
}

/** Starts a throw-away PostgreSQL server; stop() stops it and deletes its files. */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error(MISSING);
  const who = owner();
  const dir = mkdtempSync(join(tmpdir(), 'registry-pg-'));
  const data = join(dir, 'data');
  const sockets = join(dir, 'sockets');
  mkdirSync(sockets);
  if (who.asRoot) for (const path of [dir, sockets]) chownSync(path, who.uid, who.gid);
  const tool = (name: string, args: string[]) =>
    who.asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, name), ...args]) : run(join(bin, name), args);
  const log = join(dir, 'postgres.log');
  const serverLog = () => (existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '(no log)');
  let started = false;
  /** Stopped with SIGSTOP by stall(): a stop must let it go on first, or pg_ctl waits in vain. */
  let stalled = false;
  const wake = () => {
    if (!stalled) return;
    stalled = false;
    const postmaster = postmasterPid(data);
    for (const pid of childrenOf(postmaster)) signal(pid, 'SIGCONT');
    signal(postmaster, 'SIGCONT');
  };
  const stopNow = () => {
    // The last resort when a test file's process exits without stopping it (a crash, a timeout).
    wake();
    if (started)
      spawnSync(who.asRoot ? 'runuser' : join(bin, 'pg_ctl'), [
        ...(who.asRoot ? ['-u', 'postgres', '--', join(bin, 'pg_ctl')] : []),
        '-D',
        data,
        '-m',
        'immediate',
        'stop',
      ]);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // No fsync: a test cluster's durability against a machine crash is not under test, and it is
    // much faster on busy disks. synchronous_commit stays on: a commit is in the WAL (the OS's
    // buffers) when acknowledged, so that halt() (a crash of the server process) loses nothing.
    await tool('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync']);
    let port = 0;
    const options = () =>
      [
        `-p ${port}`,
        `-k ${sockets}`,
        '-c listen_addresses=127.0.0.1',
        '-c fsync=off',
        '-c full_page_writes=off',
        '-c max_connections=200',
      ].join(' ');
    // -w: pg_ctl returns once the server accepts connections (it polls as pg_isready does).
    const startServer = () => tool('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '60', '-o', options(), 'start']);
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await startServer();
        started = true;
        break;
      } catch (e) {
        // The port was taken between freePort() and the start: try another, twice.
        if (attempt >= 3 || !/could not bind|Address already in use/.test(serverLog())) throw e;
      }
    }
    process.once('exit', stopNow);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    // pg_ctl said ready; a query proves it.
    await admin`SELECT 1`;
    let databases = 0;
    return {
      url,
      async createDatabase(options = {}) {
        const name = `registry_${++databases}`;
        const locale = options.icuLocale
          ? ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${options.icuLocale.replace(/'/g, "''")}' LOCALE 'C.UTF-8'`
          : '';
        await admin.unsafe(`CREATE DATABASE ${name}${locale}`);
        return `postgres://postgres@127.0.0.1:${port}/${name}`;
      },
      async halt() {
        wake();
        await tool('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
        started = false;
      },
      async resume() {
        await startServer();
        started = true;
      },
      stall() {
        // The postmaster first, so that it forks no new session meanwhile. Marked stalled before
        // the first signal: whatever happens after it, a stop lets everything go on first.
        const postmaster = postmasterPid(data);
        stalled = true;
        signal(postmaster, 'SIGSTOP');
        for (const pid of childrenOf(postmaster)) signal(pid, 'SIGSTOP');
      },
      unstall: wake,
      async stop() {
        process.removeListener('exit', stopNow);
        wake();
        await admin.end({ timeout: 5 });
        await tool('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
        started = false;
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    const message = `PostgreSQL did not start (${bin}): ${(e as Error).message}\n${serverLog()}`;
    stopNow();
    throw new Error(message, { cause: e });
  }
}

/** Sends a signal to a process that may have ended meanwhile (a session that closed). */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

/** The postmaster's pid: the first line of postmaster.pid in the data directory. */
function postmasterPid(data: string): number {
  return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
}

/** The processes whose parent is `pid` (PostgreSQL's sessions and background processes), from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) children.push(Number(entry));
  }
  return children;
}

/** A PostgreSQL server for the enclosing describe block: started before its tests, stopped after.
 * Call the returned function inside a test to get it. */
export function postgresForSuite(): () => PostgresServer {
  let server: PostgresServer | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(async () => server?.stop(), 60_000);
  return () => {
    if (!server) throw new Error('PostgreSQL did not start (see beforeAll)');
    return server;
  };
}
