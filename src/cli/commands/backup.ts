// `registry backup <db> <out>`: a consistent copy of a registry's SQLite file, also while a
// `serve` commits to it (the service holds an owner lock on <db>.lock, not the file itself, so
// a reader may open the log beside it). The copy is SQLite's online backup API, from a snapshot
// (SqliteStore.backup), into a temporary file beside <out>; the copy is then checked, made a
// single file (journal_mode DELETE), synced and renamed to <out>, so that a crash at any point
// leaves either no backup or a whole one under that name.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { CliError, EXIT } from '../exit.js';

const BACKUP_HELP = `
The copy is a snapshot: it holds every commit acknowledged when the snapshot was taken, and the
head it prints is the one it holds. Check it with \`registry verify --db <out>\`. To restore: stop
the service, replace its database with the backup, remove <db>-wal and <db>-shm, start it
(README -> Backup and restore).

Exit codes:
  0  the backup is written: <out> holds the head it printed
  1  the database cannot be read or copied (not a registry database, an I/O error)
  2  usage: <db> missing, <out> exists (without --force) or its folder does not exist
`;

interface Head {
  version: number;
  hash: string;
}

/** Refuses a <db> that is missing, unreadable or not a file. */
function checkSource(db: string): void {
  let stat;
  try {
    stat = statSync(db);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new UsageError(`backup: no such database file: ${db}`);
    if (err.code === 'EACCES') throw new UsageError(`backup: cannot read ${db} (permission denied)`);
    throw new UsageError(`backup: cannot read ${db}: ${err.message}`);
  }
  if (!stat.isFile()) throw new UsageError(`backup: ${db} is not a file`);
}

/** Refuses an <out> that would overwrite something it must not: an existing file without
 * --force, the database itself or one of its companion files, a folder, a missing folder, or
 * a file with a write-ahead log beside it (which SQLite would replay onto the new backup). */
function checkDestination(db: string, out: string, force: boolean): void {
  const folder = dirname(out);
  let folderStat;
  try {
    folderStat = statSync(folder);
  } catch {
    throw new UsageError(`backup: the folder of ${out} does not exist: create ${folder}, or choose another <out>`);
  }
  if (!folderStat.isDirectory()) throw new UsageError(`backup: the folder of ${out} is not a folder: ${folder}`);
  const source = resolve(db);
  const target = resolve(out);
  if ([source, `${source}-wal`, `${source}-shm`, `${source}-journal`, `${source}.lock`].includes(target) || sameFile(db, out))
    throw new UsageError(`backup: <out> ${out} is the database itself (or one of its files); choose another <out>`);
  const existing = statOrUndefined(out);
  if (existing?.isDirectory()) throw new UsageError(`backup: ${out} is a folder; <out> names the backup file to write`);
  if (existing && !force) throw new UsageError(`backup: ${out} exists; a backup never replaces a file unless --force is given`);
  for (const companion of [`${out}-wal`, `${out}-shm`])
    if (statOrUndefined(companion))
      throw new UsageError(
        `backup: ${companion} exists: ${out} is open or was not closed cleanly, and SQLite would replay that log onto the new ` +
          `backup; stop whatever uses ${out} and remove ${out}-wal and ${out}-shm, or choose another <out>`,
      );
}

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

function sameFile(a: string, b: string): boolean {
  const sa = statOrUndefined(a);
  const sb = statOrUndefined(b);
  return sa !== undefined && sb !== undefined && sa.dev === sb.dev && sa.ino === sb.ino;
}

/** The temporary file's companions, removed with it. */
const withCompanions = (path: string): string[] => [path, `${path}-wal`, `${path}-shm`, `${path}-journal`];

function removeTemporary(path: string): void {
  for (const p of withCompanions(path)) rmSync(p, { force: true });
}

/** fsync of a file or a folder (the rename's directory entry). */
function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The copy checked and made one self-contained file: SQLite's quick_check, the head it holds,
 * and journal_mode DELETE (the backup of a WAL log is a WAL file; this folds it into one file,
 * so that the backup can be copied or moved on its own). */
async function finish(tmp: string, db: string): Promise<Head> {
  const { default: Database } = await import('better-sqlite3');
  const copy = new Database(tmp, { fileMustExist: true });
  try {
    const check = copy.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') throw new CliError(`backup: the copy of ${db} does not pass SQLite's quick_check: ${check}`, EXIT.FAILURE);
    const head = copy.prepare<[], Head>('SELECT version, hash FROM commits ORDER BY version DESC LIMIT 1').get();
    if (!head) throw new CliError(`backup: ${db} holds no commit (not even a genesis): nothing to back up`, EXIT.FAILURE);
    copy.pragma('journal_mode = DELETE');
    return head;
  } finally {
    copy.close();
  }
}

/** A progress bar on stderr while pages are copied, only on a terminal. */
async function progressBar(): Promise<{ update: (done: number, total: number) => void; stop: () => void }> {
  if (!process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar(
    { stream: process.stderr, format: 'backing up [{bar}] {percentage}% | {value}/{total} pages | {duration_formatted}', hideCursor: true },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

const size = (bytes: number): string =>
  bytes < 1024
    ? `${bytes} bytes`
    : bytes < 1024 * 1024
      ? `${(bytes / 1024).toFixed(1)} KiB (${bytes} bytes)`
      : bytes < 1024 ** 3
        ? `${(bytes / 1024 ** 2).toFixed(1)} MiB (${bytes} bytes)`
        : `${(bytes / 1024 ** 3).toFixed(2)} GiB (${bytes} bytes)`;

/** Why the store cannot open or copy `db`, in the user's terms. */
function readError(db: string, e: unknown): Error {
  if (e instanceof CliError || e instanceof UsageError) return e;
  const code = (e as { code?: string }).code ?? '';
  const message = (e as Error).message;
  if (code === 'SQLITE_NOTADB') return new CliError(`backup: ${db} is not a SQLite database`, EXIT.FAILURE);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
    return new CliError(`backup: ${db} is locked (${code}); try again`, EXIT.FAILURE);
  if (code === 'SQLITE_ERROR' && /no such (table|column)/.test(message))
    return new CliError(`backup: ${db} is not a registry database of this version (${message})`, EXIT.FAILURE);
  if (code === 'SQLITE_CANTOPEN') return new CliError(`backup: cannot open ${db} (${message})`, EXIT.FAILURE);
  return new CliError(`backup: cannot copy ${db}: ${message}`, EXIT.FAILURE);
}

async function backup(db: string, out: string, opts: { force?: boolean }): Promise<void> {
  checkSource(db);
  checkDestination(db, out, opts.force === true);
  const tmp = join(dirname(out), `.${basename(out)}.${process.pid}.partial`);
  // An interrupted backup leaves nothing behind: not the temporary file, never <out>.
  const onSignal = (signal: NodeJS.Signals) => {
    removeTemporary(tmp);
    process.stderr.write(`registry: backup interrupted (${signal}); ${out} was not written\n`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const bar = await progressBar();
  const started = performance.now();
  let head: Head;
  try {
    removeTemporary(tmp);
    const { SqliteStore } = await import('../../store/sqlite-store.js');
    let store;
    try {
      // Read-only, without the owner lock and without migrating: beside a running service.
      store = new SqliteStore({ path: db, readonly: true });
    } catch (e) {
      throw readError(db, e);
    }
    try {
      if ((await store.genesis()) === undefined)
        throw new CliError(`backup: ${db} holds no genesis: not a registry database`, EXIT.FAILURE);
      let last = { done: 0, total: 0 };
      await store.backup(tmp, (done, total) => {
        last = { done, total };
        bar.update(done, total);
      });
      bar.update(last.total, last.total);
    } catch (e) {
      throw readError(db, e);
    } finally {
      bar.stop();
      await store.close();
    }
    head = await finish(tmp, db);
    for (const companion of withCompanions(tmp).slice(1))
      if (statOrUndefined(companion))
        throw new CliError(`backup: ${companion} is left beside the copy; the copy is not one file`, EXIT.FAILURE);
    syncPath(tmp);
    renameSync(tmp, out);
    syncPath(dirname(out));
  } catch (e) {
    removeTemporary(tmp);
    throw e;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  const seconds = (performance.now() - started) / 1000;
  const lines = [
    `backed up ${db} to ${out} in ${seconds.toFixed(2)} s`,
    `  head      version ${head.version} ${head.hash}`,
    `  size      ${size(statSync(out).size)}`,
    `check it with: registry verify --db ${out}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

export function backupCommand(program: Command): void {
  program
    .command('backup')
    .summary("copy a registry's database consistently, also while it is served")
    .description(
      "Copies a registry's SQLite file to <out> with SQLite's online backup API: a consistent snapshot, also while a `registry " +
        'serve` commits to it. Writes a temporary file beside <out>, checks it, syncs it and renames it, so <out> is never a ' +
        'half backup; refuses to replace an existing <out> unless --force. Prints the version and hash of the head it copied and ' +
        'the size; progress goes to stderr on a terminal.',
    )
    .argument('<db>', "the registry's SQLite file (live or stopped)")
    .argument('<out>', 'the backup file to write; its folder must exist')
    .option('--force', 'replace <out> if it exists')
    .addHelpText('after', BACKUP_HELP)
    .action(backup);
}
