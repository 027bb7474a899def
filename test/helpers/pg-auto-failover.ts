// A real highly available PostgreSQL for the failover tests: a pg_auto_failover monitor and two
// PostgreSQL 15 nodes (a primary and its synchronous standby), from Debian's packages
// `pg-auto-failover-cli` (pg_autoctl) and `postgresql-15-auto-failover` (the monitor's extension),
// which .ci/run installs. Everything lives in one temporary folder: the data directories, the Unix
// sockets (PG_REGRESS_SOCK_DIR, pg_autoctl's own switch for that), pg_autoctl's configuration and
// state (XDG_CONFIG_HOME, XDG_DATA_HOME) and the logs; every server listens on 127.0.0.1 only, on a
// free port. As root, pg_autoctl and so PostgreSQL run as the `postgres` user (PostgreSQL refuses
// root). Without the packages the tests are skipped with a message, but only outside CI: with CI
// set, they fail (as test/helpers/postgres.ts does).
//
// The monitor's timings are cut from pg_auto_failover's production defaults (a failover in 30 s or
// more) to a few seconds: see MONITOR_SETTINGS.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { freePort } from './nginx.js';
import { debianBinDirs, owner } from './postgres.js';

const run = promisify(execFile);

export interface FailoverNode {
  /** The node's name on the monitor: node1 or node2. */
  name: string;
  port: number;
}

export interface FailoverCluster {
  /** postgres://postgres@127.0.0.1:<p1>,127.0.0.1:<p2>/registry?target_session_attrs=read-write: both nodes, for the npm
   * `postgres` client, which tries them in turn and keeps the one that takes writes (see the note at the URL's making). */
  url: string;
  /** Both PostgreSQL nodes, in the order of the URL (the monitor is not one of them). */
  nodes: FailoverNode[];
  /** The node currently primary, asked of the monitor. */
  primary(): Promise<FailoverNode>;
  /** SIGKILLs everything of the primary's node at once, as a machine loss would: its pg_autoctl processes (the supervisor
   * and its keeper) and its PostgreSQL (postmaster and backends). Resolves, with the node it was, once they are gone. */
  killPrimary(): Promise<FailoverNode>;
  /** Resolves once the monitor reports another node than `old` as primary and that node takes a write; rejects after
   * `timeoutMs` with the monitor's state (pg_autoctl show state) in the message. */
  waitForPromotion(old: { name: string }, timeoutMs?: number): Promise<FailoverNode>;
  /** Stops what still runs (nodes, then the monitor) and deletes the files. */
  stop(): Promise<void>;
}

/** The application's database on the nodes: pg_autoctl creates it (--dbname) and opens it to `postgres` from 127.0.0.1. */
export const FAILOVER_DATABASE = 'registry';

const MISSING =
  "pg_auto_failover is not installed: the failover tests need pg_autoctl and the PostgreSQL extension from Debian's " +
  '"pg-auto-failover-cli" and "postgresql-15-auto-failover" packages (apt-get install pg-auto-failover-cli ' +
  'postgresql-15-auto-failover), which .ci/run installs';

/** The monitor's settings (its postgresql.auto.conf; times in milliseconds). pg_auto_failover promotes the standby only
 * when the primary is unhealthy, which takes BOTH its keeper silent for node_considered_unhealthy_timeout AND a failed
 * health check (node_metadata.c, IsUnhealthy), and then waits primary_demote_timeout for the old primary to report that
 * it stopped, which a lost machine never does: with the defaults (20 s of silence, checks every 5 s with 2 retries 2 s
 * apart, 30 s to demote) that is about a minute. Here it is about 3 s from the SIGKILL to a standby taking writes. */
const MONITOR_SETTINGS: Record<string, string | number> = {
  // A health check of every node twice a second (default 5 s)…
  'pgautofailover.health_check_period': 500,
  // …that gives up on a connection after 2 s (default 5 s): a dead node on loopback refuses at once, so this only
  // bounds a node too busy to answer, which is not to be taken for dead on a shared machine…
  'pgautofailover.health_check_timeout': 2000,
  // …and marks the node bad after one retry (the least allowed; default 2) 200 ms later (default 2 s).
  'pgautofailover.health_check_max_retries': 1,
  'pgautofailover.health_check_retry_delay': 200,
  // A keeper reports every second: silent for 2 s (default 20 s) and failing its checks, its node is unhealthy. A live
  // node is not taken for dead by this alone (its health checks succeed), nor by a check that failed while its keeper
  // still reports.
  'pgautofailover.node_considered_unhealthy_timeout': 2000,
  // The monitor does not fail over in its first startup_grace_period (default 10 s) after it starts: our monitor starts
  // seconds before the test kills a primary.
  'pgautofailover.startup_grace_period': 1000,
  // How long the monitor waits for the old primary to confirm that it is drained and stopped before the standby takes
  // writes (default 30 s). A killed node never confirms, so this is waited in full on every failover of this kind.
  'pgautofailover.primary_demote_timeout': 1000,
  // As the nodes' (NODE_SETTINGS).
  shared_buffers: "'32MB'",
  fsync: 'off',
};

/** The nodes' settings, appended to the first node's postgresql.auto.conf before it runs for real, and copied to the
 * standby by pg_basebackup. pg_autoctl sizes shared_buffers to a quarter of the machine's memory (6 GB on 24 GB), three
 * times over on one machine: 32 MB does for a test. No fsync, as in test/helpers/postgres.ts: a SIGKILL loses no written
 * data (it stays in the kernel's page cache), so a commit the primary acknowledged is on the standby all the same
 * (synchronous_commit = on, synchronous_standby_names = ANY 1 (the standby): checked at start), and busy disks are spared. */
const NODE_SETTINGS: Record<string, string | number> = {
  shared_buffers: "'32MB'",
  fsync: 'off',
  // A standby that lost its primary waits this long (default 5 s) between attempts to get WAL from its sources; seen
  // here, its promotion (pg_ctl promote, by the keeper) then took up to those 5 s instead of a fraction of one.
  wal_retrieve_retry_interval: "'250ms'",
};

/** pg_auto_failover's states of a node that takes writes (with its standby or, after a failover, without one). */
const PRIMARY_STATES = new Set(['single', 'wait_primary', 'primary']);

/** The PostgreSQL bin folder whose server has the pgautofailover extension: $PG_BINDIR or /usr/lib/postgresql/<v>/bin,
 * newest first (the extension package is for one major version; a newer server without it would not do). */
export function autoFailoverBinDir(): string | undefined {
  return debianBinDirs().find((bin) => existsSync(join(bin, 'pg_ctl')) && existsSync(join(bin, '..', 'lib', 'pgautofailover.so')));
}

function pgAutoctl(): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return [...dirs, '/usr/bin'].map((dir) => join(dir, 'pg_autoctl')).find((path) => existsSync(path));
}

/** Why the failover tests are skipped here, or undefined when they run: they are skipped only when pg_auto_failover is
 * missing outside CI. In CI they run, and startFailoverCluster fails saying what is missing. */
export function autoFailoverSkipReason(): string | undefined {
  if ((autoFailoverBinDir() !== undefined && pgAutoctl() !== undefined) || process.env.CI) return undefined;
  return `${MISSING}; skipped outside CI`;
}

// Processes, from /proc (Linux: Debian's packages are what this harness runs anyway).

/** A process's parent and state, or undefined when it is gone. */
function procStat(pid: number): { ppid: number; state: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name, in parentheses, may hold spaces and parentheses: the fields after the last ')' are state, ppid, …
    const [state = '', ppid = '0'] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(ppid), state };
  } catch {
    return undefined;
  }
}

/** Alive: neither gone nor a zombie (a killed process whose parent has not collected it holds nothing any more). */
function alive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z';
}

/** A process and all its descendants. */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(entry)]);
  }
  const tree: number[] = [];
  for (let todo = alive(root) ? [root] : []; todo.length > 0;) {
    const pid = todo.pop()!;
    tree.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return tree;
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // Gone already.
    }
  }
}

/** SIGKILLs a process tree at once. Stopped first, then listed again and killed: a pg_autoctl supervisor that saw a child
 * die would restart it, and a process forked between the listing and the kill would survive it. */
function killTree(root: number): number[] {
  signal(processTree(root), 'SIGSTOP');
  const pids = processTree(root);
  signal(pids, 'SIGKILL');
  return pids;
}

/** Blocks this thread for `ms`: the process's exit handler has no event loop left to wait with. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Until every pid is gone, for at most `ms`. */
function waitGoneSync(pids: number[], ms: number): void {
  for (const end = Date.now() + ms; pids.some(alive) && Date.now() < end;) sleepSync(20);
}

/** Runs `pg_autoctl` with stdin held open by us: when it reads end of file (we stopped it, or this process died without
 * stopping it, even by SIGKILL), it stops pg_autoctl, which stops its PostgreSQL. So no cluster outlives its test run. */
const WATCHDOG = '"$0" "$@" & child=$!; read -r _; kill -TERM "$child" 2>/dev/null; wait "$child"';

interface Member {
  name: string;
  port: number;
  data: string;
  log: string;
  child?: ChildProcess;
  exited?: Promise<void>;
}

/** Starts a three-server pg_auto_failover cluster (a monitor, a primary, its synchronous standby) and resolves once the
 * monitor reports the primary `primary` and the standby `secondary`, the standby being the primary's synchronous standby. */
export async function startFailoverCluster(): Promise<FailoverCluster> {
  const bin = autoFailoverBinDir();
  const autoctl = pgAutoctl();
  if (bin === undefined || autoctl === undefined) throw new Error(MISSING);
  const pgctl = join(bin, 'pg_ctl');
  const who = owner();
  const dir = mkdtempSync(join(tmpdir(), 'registry-pgaf-'));
  const sockets = join(dir, 'sockets');
  for (const sub of [sockets, join(dir, 'config'), join(dir, 'share')]) mkdirSync(sub);
  if (who.asRoot) for (const path of [dir, sockets, join(dir, 'config'), join(dir, 'share')]) chownSync(path, who.uid, who.gid);
  // Only what pg_autoctl needs, so that no PGDATABASE, PGUSER or PGPORT of ours steers it. XDG_*: pg_autoctl keeps its
  // configuration and state files there (else in ~postgres, shared with any other cluster). PG_REGRESS_SOCK_DIR: the
  // PostgreSQL servers put their Unix sockets there (-k) rather than in /var/run/postgresql. A UTF-8 locale for initdb.
  const env: NodeJS.ProcessEnv = {
    PATH: [bin, ...(process.env.PATH ?? '/usr/bin:/bin').split(delimiter)].join(delimiter),
    HOME: dir,
    XDG_CONFIG_HOME: join(dir, 'config'),
    XDG_DATA_HOME: join(dir, 'share'),
    PG_CONFIG: join(bin, 'pg_config'),
    PG_REGRESS_SOCK_DIR: sockets,
    PGHOST: sockets,
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
  };
  const asOwner = who.asRoot ? { uid: who.uid, gid: who.gid } : {};

  const ports = new Set<number>();
  while (ports.size < 3) ports.add(await freePort());
  const [monitorPort, ...nodePorts] = [...ports] as [number, number, number];
  const member = (name: string, port: number): Member => ({ name, port, data: join(dir, name), log: join(dir, `${name}.log`) });
  const monitor = member('monitor', monitorPort);
  const nodes = nodePorts.map((port, i) => member(`node${i + 1}`, port));
  const members = [monitor, ...nodes];
  const monitorUri = `postgres://autoctl_node@127.0.0.1:${monitor.port}/pg_auto_failover?sslmode=prefer`;

  const logs = () =>
    members
      .filter((m) => existsSync(m.log))
      .map((m) => `--- ${m.name}.log (end):\n${readFileSync(m.log, 'utf8').slice(-3000)}`)
      .join('\n');

  /** pg_autoctl, to its end (create, config set, show): its output goes to the member's log too. */
  const autoctlOnce = async (m: Member, args: string[]): Promise<string> => {
    try {
      const { stdout, stderr } = await run(autoctl, args, { ...asOwner, env, cwd: dir, maxBuffer: 16 << 20 });
      appendFileSync(m.log, `$ pg_autoctl ${args.join(' ')}\n${stderr}`);
      return stdout;
    } catch (e) {
      const { stderr = '', stdout = '' } = e as { stderr?: string; stdout?: string };
      appendFileSync(m.log, `$ pg_autoctl ${args.join(' ')}\n${stdout}${stderr}`);
      throw new Error(`pg_autoctl ${args.slice(0, 2).join(' ')} (${m.name}) failed: ${(e as Error).message.split('\n')[0]}`, { cause: e });
    }
  };

  /** pg_autoctl in the background (run, or create … --run), under the watchdog, its output appended to the member's log. */
  const autoctlService = (m: Member, args: string[]): void => {
    const out = openSync(m.log, 'a');
    const child = spawn('/bin/sh', ['-c', WATCHDOG, autoctl, ...args], { ...asOwner, env, cwd: dir, stdio: ['pipe', out, out] });
    closeSync(out);
    m.child = child;
    m.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    // Neither the process nor its stdin pipe keeps this process's event loop alive: stop() or the exit handler ends them.
    child.unref();
    (child.stdin as Socket).unref();
  };

  const appendSettings = (m: Member, settings: Record<string, string | number>) =>
    appendFileSync(
      join(m.data, 'postgresql.auto.conf'),
      `# test/helpers/pg-auto-failover.ts\n${Object.entries(settings)
        .map(([k, v]) => `${k} = ${v}\n`)
        .join('')}`,
    );

  /** Kills what is left and deletes the files: at the end of stop(), and when this process exits without stop(). */
  const cleanupNow = () => {
    const pids: number[] = [];
    for (const m of members) {
      if (m.child?.pid !== undefined && alive(m.child.pid)) pids.push(...killTree(m.child.pid));
      const postmaster = postmasterPid(m.data);
      if (postmaster !== undefined) pids.push(...killTree(postmaster));
    }
    waitGoneSync(pids, 5000);
    for (const m of members) removeSharedMemory(m.data);
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  process.once('exit', cleanupNow);

  let monitorSql: postgres.Sql | undefined;
  try {
    // The monitor: created (pg_autoctl runs initdb, starts PostgreSQL, installs the extension, stops it), then given
    // 127.0.0.1 only (pg_autoctl create monitor has no --listen; it would listen on '*') and our settings, then run.
    await autoctlOnce(monitor, [
      'create',
      'monitor',
      ...['--pgdata', monitor.data, '--pgport', String(monitor.port), '--pgctl', pgctl],
      ...['--hostname', '127.0.0.1', '--auth', 'trust', '--no-ssl'],
    ]);
    await autoctlOnce(monitor, ['config', 'set', '--pgdata', monitor.data, 'postgresql.listen_addresses', '127.0.0.1']);
    appendSettings(monitor, MONITOR_SETTINGS);
    autoctlService(monitor, ['run', '--pgdata', monitor.data]);
    // initdb's pg_hba.conf trusts every local user from 127.0.0.1: `postgres` reads the monitor's tables.
    monitorSql = postgres(`postgres://postgres@127.0.0.1:${monitor.port}/pg_auto_failover`, {
      max: 1,
      onnotice: () => {},
      connect_timeout: 5,
    });
    const sql = monitorSql;
    await until('the monitor to take connections', 60_000, async () => {
      await sql`SELECT 1 FROM pgautofailover.formation`;
      return true;
    });

    // Both nodes: synchronous (replication quorum, the default) and either one promotable (candidate priority above 0,
    // the default 50): stated rather than assumed, since the failover test depends on both.
    const nodeArgs = (m: Member) => [
      'create',
      'postgres',
      ...['--pgdata', m.data, '--pgport', String(m.port), '--pghost', sockets, '--listen', '127.0.0.1', '--pgctl', pgctl],
      ...['--hostname', '127.0.0.1', '--name', m.name, '--dbname', FAILOVER_DATABASE, '--monitor', monitorUri],
      ...['--auth', 'trust', '--no-ssl', '--candidate-priority', '50', '--replication-quorum', 'true'],
    ];
    const [first, second] = nodes as [Member, Member];
    // The first node registers as `single` and initializes a primary (initdb, the database); then, with our settings in
    // its postgresql.auto.conf, it runs for good. The second one registers as a standby: pg_autoctl waits for the primary
    // to open replication to it, copies it (pg_basebackup, our settings included) and runs on.
    await autoctlOnce(first, nodeArgs(first));
    appendSettings(first, NODE_SETTINGS);
    autoctlService(first, ['run', '--pgdata', first.data]);
    autoctlService(second, [...nodeArgs(second), '--run']);
    await until('the first node to be primary and the second its secondary', 90_000, async () => {
      const states = await nodeStates(sql);
      const settled = (m: Member, state: string) => states.some((s) => s.name === m.name && s.reported === state && s.goal === state);
      return settled(first, 'primary') && settled(second, 'secondary');
    });

    // A commit that the primary acknowledged must be on the standby: check that replication is synchronous to it.
    const primarySql = postgres(nodeUrl(first.port, 'postgres'), { max: 1, onnotice: () => {}, connect_timeout: 5 });
    try {
      const [names] = await primarySql<{ synchronous_standby_names: string }[]>`SHOW synchronous_standby_names`;
      const [commit] = await primarySql<{ synchronous_commit: string }[]>`SHOW synchronous_commit`;
      const [standby] = await primarySql<{ sync_state: string }[]>`SELECT sync_state FROM pg_stat_replication`;
      if (!/pgautofailover_standby_\d/.test(names?.synchronous_standby_names ?? '') || commit?.synchronous_commit !== 'on')
        throw new Error(
          `replication is not synchronous: synchronous_standby_names = '${names?.synchronous_standby_names}', ` +
            `synchronous_commit = ${commit?.synchronous_commit}`,
        );
      if (standby?.sync_state !== 'quorum' && standby?.sync_state !== 'sync')
        throw new Error(`the standby is not a synchronous standby: pg_stat_replication.sync_state = ${standby?.sync_state}`);
      // waitForPromotion's write probe writes here, out of the application's database.
      await primarySql`CREATE TABLE failover_probe (at timestamptz NOT NULL DEFAULT clock_timestamp())`;
    } finally {
      await primarySql.end({ timeout: 1 });
    }
    // The standby says it takes no writes the way the npm `postgres` client (3.4) understands: see READ_ONLY_STANDBY.
    const standbySql = postgres(nodeUrl(second.port, 'postgres'), { max: 1, onnotice: () => {}, connect_timeout: 5 });
    try {
      await standbySql`ALTER SYSTEM SET default_transaction_read_only = on`;
      await standbySql`SELECT pg_reload_conf()`;
    } finally {
      await standbySql.end({ timeout: 1 });
    }
    // The reload is signalled, not waited for: until a new session gets the setting.
    await until('the standby to report default_transaction_read_only = on', 10_000, async () => {
      const check = postgres(nodeUrl(second.port, 'postgres'), { max: 1, onnotice: () => {}, connect_timeout: 5 });
      try {
        const [row] = await check<{ default_transaction_read_only: string }[]>`SHOW default_transaction_read_only`;
        return row?.default_transaction_read_only === 'on';
      } finally {
        await check.end({ timeout: 1 });
      }
    });
  } catch (e) {
    const message = `pg_auto_failover cluster did not start (${bin}, ${autoctl}): ${(e as Error).message}\n${logs()}`;
    await monitorSql?.end({ timeout: 0 });
    process.removeListener('exit', cleanupNow);
    cleanupNow();
    throw new Error(message, { cause: e });
  }
  const sql = monitorSql;

  const showState = async () => {
    try {
      return await autoctlOnce(monitor, ['show', 'state', '--pgdata', monitor.data]);
    } catch (e) {
      return `(pg_autoctl show state failed: ${(e as Error).message})`;
    }
  };

  const primary = async (): Promise<FailoverNode> => {
    const states = await nodeStates(sql);
    const found = states.find((s) => s.reported === s.goal && PRIMARY_STATES.has(s.goal));
    if (!found) throw new Error(`the monitor reports no primary:\n${await showState()}`);
    return { name: found.name, port: found.port };
  };

  return {
    // READ_ONLY_STANDBY. target_session_attrs=read-write, as `pg_autoctl show uri` gives, but the npm client (3.4.9,
    // src/connection.js tryNext) tells read-write from read-only by default_transaction_read_only alone, which is off on
    // a hot standby (PostgreSQL 14+ reports it at connection, so the client asks nothing more): after the primary's loss
    // it would settle on the standby still in recovery and have its writes refused (25006). Hence the standby's
    // default_transaction_read_only = on (ALTER SYSTEM, above), which is what libpq's read-write test sees there (it also
    // looks at in_hot_standby). pg_auto_failover keeps it on while it promotes the standby (stop_replication: promoted
    // but not yet cleared to take writes, against a split brain) and sets it off in wait_primary, when writes may go
    // there. (Only the first standby gets it: a node that rejoins as a standby after a failover would need it too, and
    // this harness rejoins none.) target_session_attrs=primary would not do either: it looks at in_hot_standby alone, so
    // it takes the node in stop_replication, whose writes are refused (25006) for the second or so until wait_primary.
    // No sslmode: the npm client would take it for ssl, and the servers have none.
    url: `postgres://postgres@${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}/${FAILOVER_DATABASE}?target_session_attrs=read-write`,
    nodes: nodes.map((n) => ({ name: n.name, port: n.port })),
    primary,

    async killPrimary() {
      const target = await primary();
      const m = nodes.find((n) => n.name === target.name)!;
      const pids = m.child?.pid !== undefined ? killTree(m.child.pid) : [];
      // The postmaster is in that tree (supervisor → postgres controller → postmaster); should it not be, it dies too.
      const postmaster = postmasterPid(m.data);
      if (postmaster !== undefined) pids.push(...killTree(postmaster));
      if (pids.length === 0) throw new Error(`${m.name} had no process to kill`);
      const deadline = Date.now() + 10_000;
      while (pids.some(alive)) {
        if (Date.now() > deadline) throw new Error(`${m.name}: processes ${pids.filter(alive).join(', ')} outlived SIGKILL`);
        await delay(20);
      }
      return target;
    },

    async waitForPromotion(old, timeoutMs = 30_000) {
      let last: string;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        try {
          const states = await nodeStates(sql);
          const next = states.find((s) => s.name !== old.name && s.reported === s.goal && PRIMARY_STATES.has(s.goal));
          if (next === undefined) last = `states: ${states.map((s) => `${s.name} ${s.reported} → ${s.goal}`).join(', ')}`;
          else {
            const refused = await probeWrite(next.port, Math.max(500, Math.min(3000, deadline - Date.now())));
            if (refused === undefined) return { name: next.name, port: next.port };
            last = `${next.name} is ${next.reported} on the monitor but refused a write: ${refused}`;
          }
        } catch (e) {
          last = `the monitor did not answer: ${(e as Error).message}`;
        }
        if (Date.now() > deadline)
          throw new Error(`no node took over from ${old.name} within ${timeoutMs} ms (${last}); the monitor says:\n${await showState()}`);
        await delay(100);
      }
    },

    async stop() {
      process.removeListener('exit', cleanupNow);
      await sql.end({ timeout: 1 });
      // The nodes before the monitor, so that no keeper outlives it; each is stopped by closing the watchdog's stdin
      // (pg_autoctl then stops its PostgreSQL with a fast shutdown), and killed if it takes longer than 20 s.
      const stopMember = async (m: Member) => {
        if (m.child === undefined || m.exited === undefined || m.child.exitCode !== null || m.child.signalCode !== null) return;
        m.child.stdin?.end();
        const timedOut = await Promise.race([m.exited.then(() => false), delay(20_000).then(() => true)]);
        if (timedOut && m.child.pid !== undefined) killTree(m.child.pid);
      };
      await Promise.all(nodes.map(stopMember));
      await stopMember(monitor);
      cleanupNow();
    },
  };
}

function nodeUrl(port: number, database: string): string {
  return `postgres://postgres@127.0.0.1:${port}/${database}`;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `ready` (an error counts as not yet) every 100 ms until it holds; throws after `timeoutMs` with the last error. */
async function until(what: string, timeoutMs: number, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      if (await ready()) return;
    } catch (e) {
      last = `: ${(e as Error).message}`;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    await delay(100);
  }
}

interface NodeState {
  name: string;
  port: number;
  reported: string;
  goal: string;
}

/** The monitor's view of the nodes: the state each keeper last reported, and the one the monitor assigned it. */
async function nodeStates(sql: postgres.Sql): Promise<NodeState[]> {
  return sql<NodeState[]>`
    SELECT nodename AS name, nodeport AS port, reportedstate::text AS reported, goalstate::text AS goal
    FROM pgautofailover.node ORDER BY nodeid`;
}

/** Whether the node at `port` commits a write within `timeoutMs`: undefined if it does, else why not. A commit that
 * waits on a synchronous standby that is gone would wait for ever: that counts as refused, after the timeout. */
async function probeWrite(port: number, timeoutMs: number): Promise<string | undefined> {
  const sql = postgres(nodeUrl(port, 'postgres'), { max: 1, onnotice: () => {}, connect_timeout: Math.ceil(timeoutMs / 1000) });
  let timer: NodeJS.Timeout | undefined;
  try {
    // Settled either way, so that a write still pending when the connection is dropped below rejects into nothing.
    const write = sql`INSERT INTO failover_probe DEFAULT VALUES`.then(
      () => undefined,
      (e: Error) => e.message,
    );
    const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`no commit within ${timeoutMs} ms`), timeoutMs)));
    return await Promise.race([write, late]);
  } finally {
    clearTimeout(timer);
    await sql.end({ timeout: 0 });
  }
}

/** The postmaster of a data directory, from its postmaster.pid, if it still runs: checked against its command line,
 * since a pid left in a crashed server's file may have gone to another process since. */
function postmasterPid(data: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(data) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A killed postmaster leaves its System V shared memory segment (a few bytes; the rest is anonymous memory) behind: it
 * is removed here, once nothing is attached, if it is still the one its postmaster.pid names (same key and id). */
function removeSharedMemory(data: string): void {
  let key: number;
  let id: number;
  try {
    const line = readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[6] ?? '';
    [key, id] = line.trim().split(/\s+/).map(Number) as [number, number];
  } catch {
    return; // A clean shutdown removes both the file and the segment.
  }
  if (!Number.isInteger(key) || !Number.isInteger(id)) return;
  let table: string;
  try {
    table = readFileSync('/proc/sysvipc/shm', 'utf8');
  } catch {
    return;
  }
  // Columns: key shmid perms size cpid lpid nattch …
  const row = table
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/).map(Number))
    .find((r) => r[0] === key && r[1] === id);
  if (row && row[6] === 0) spawnSync('ipcrm', ['-m', String(id)]);
}
