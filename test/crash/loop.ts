// The crash loop (issue 15): a stream of governed commits against the real `registry serve`,
// a SIGKILL at a random moment, a restart on the same SQLite file, and every check that a crash
// must not break: what was acknowledged is there, whole, with the same hashes; what was not is
// either wholly there or absent; the start's tamper pass and the independent auditor find
// nothing. Then the next trial goes on with the same file.
//
// The random choices (kill delays, kills during the start, what each client worker proposes)
// come from a PRNG seeded by CRASH_SEED, so that a failing trial's choices can be replayed; the
// interleaving of the workers' requests with the writer is the machine's, not the seed's.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ENV_NAMES, type Config } from '../../src/config/config.js';
import { hashOf } from '../../src/core/encoding.js';
import type { CommitRecord, Op, ProposalPayload, ProposalStatus } from '../../src/core/schemas.js';
import type { ProposalView } from '../../src/state/proposal-view.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { StoredCommitRow } from '../../src/store/store.js';
import { approve, genesisRecord, proposal, signers, signerSet, type TestSigner } from '../helpers/fixtures.js';
import { CLI } from '../helpers/process.js';
import type { HeadJson, ProposalJson } from '../helpers/responses.js';
import { request, TEST_LIMITS, type Reply } from '../helpers/server.js';

export type Mode = 'commits' | 'checkpointing' | 'pruning';

export interface ModeSettings {
  /** Environment of the served process (README → Configuration). */
  env: Record<string, string>;
  /** Descriptors committed before the first trial (in batches of 1000), so that building a
   * checkpoint of the state takes long enough for kills to land in it. */
  seedDescriptors: number;
  /** A kill comes after a random delay in this range (ms after the trial's commits start)… */
  killDelayMs: [number, number];
  /** …or at most killJitterMs after the server logged the n-th commit of the trial, n in
   * killAfterCommits: just after an acknowledgement, or in the checkpoint a commit starts… */
  killAfterCommits: [number, number];
  killJitterMs: number;
  /** …or, in the modes with checkpoints, at most retentionJitterMs after it logged that it made
   * a checkpoint: in the retention that follows (old checkpoints dropped, records pruned). */
  retentionJitterMs: number;
  /** Whether the mode makes checkpoints (GET /registry/checkpoints/latest is checked). */
  checkpoints: boolean;
  /** Whether old commits may be pruned (410 Gone)… */
  mayPrune: boolean;
  /** …and the head from which some must be (a horizon is due: retainCommits behind the head, plus
   * a few checkpoints' worth for builds cut short by kills). */
  pruneFromHead?: number;
}

/** Settled (stale, expired) proposals count against the pending cap until their payloads are
 * pruned; the loop makes many stale ones, so they are pruned after a second. Write rate limits
 * and shedding on event-loop delay are off, as in the other tests (TEST_LIMITS): the loop
 * commits as fast as it can from one address, on a machine busy with the auditor and more. */
const BASE_ENV: Record<string, string> = {
  REGISTRY_SETTLED_PAYLOAD_TTL_MS: '1000',
  ...Object.fromEntries(Object.entries(TEST_LIMITS).map(([k, v]) => [ENV_NAMES[k as keyof Config], String(v)])),
};

export const MODES: Record<Mode, ModeSettings> = {
  commits: {
    env: { ...BASE_ENV },
    seedDescriptors: 0,
    killDelayMs: [20, 900],
    killAfterCommits: [1, 25],
    killJitterMs: 5,
    retentionJitterMs: 0,
    checkpoints: false,
    mayPrune: false,
  },
  // A checkpoint every 3 commits of a state of 5,000+ descriptors (a few transactions of entries
  // each). The horizon is 30 commits behind the head: the checkpoints from it on are kept (about
  // ten of 5,000 entries), older ones dropped (a kill target too) and older records pruned.
  checkpointing: {
    env: { ...BASE_ENV, REGISTRY_CHECKPOINT_EVERY: '3', REGISTRY_RETAIN_COMMITS: '30' },
    seedDescriptors: 5000,
    killDelayMs: [20, 1200],
    killAfterCommits: [1, 12],
    killJitterMs: 80,
    retentionJitterMs: 40,
    checkpoints: true,
    mayPrune: true,
    pruneFromHead: 30 + 12,
  },
  // Checkpoints every 3 commits and a horizon 4 commits behind the head: old checkpoints are
  // dropped and old records pruned after nearly every checkpoint.
  pruning: {
    env: { ...BASE_ENV, REGISTRY_CHECKPOINT_EVERY: '3', REGISTRY_RETAIN_COMMITS: '4' },
    seedDescriptors: 0,
    killDelayMs: [20, 1200],
    killAfterCommits: [1, 12],
    killJitterMs: 30,
    retentionJitterMs: 10,
    checkpoints: true,
    mayPrune: true,
    pruneFromHead: 4 + 12,
  },
};

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (mulberry32) and seed derivation (splitmix-like), so that each trial and each
// worker has its own stream whatever the others draw.

export interface Rng {
  next(): number;
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
}

export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

/** A seed for the stream named by `parts` under `seed`. */
export function derive(seed: number, ...parts: (string | number)[]): number {
  let h = seed >>> 0;
  for (const part of parts) {
    for (const c of String(part) + '\u0000') {
      h = Math.imul(h ^ c.charCodeAt(0), 0x9e3779b1) >>> 0;
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

/** CRASH_SEED if set (decimal), else a fresh one; printed by the caller either way. */
export function seedFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.CRASH_SEED;
  if (given !== undefined && given !== '') {
    const n = Number(given);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`CRASH_SEED must be an integer in [0, 2^32): ${given}`);
    return n;
  }
  return Math.floor(Math.random() * 0x100000000);
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// The served process.

interface LogLine {
  level?: number;
  msg?: string;
  [key: string]: unknown;
}

/** `registry serve` on the trial's file, logging at info (JSON lines on stderr). */
export class Served {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The URL once 'listening on' is printed; rejects if the process exits first. */
  readonly listening: Promise<string>;
  /** The start's verification: resolves with its findings (0: the log verified). */
  readonly verified: Promise<number>;
  /** Error and fatal log lines. */
  readonly errors: LogLine[] = [];
  private readonly tail: string[] = [];
  private readonly watchers: { test: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--log-level', 'info', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    let onUrl!: (url: string) => void;
    this.listening = new Promise<string>((resolve, reject) => {
      onUrl = resolve;
      void this.exited.then(({ code, signal }) =>
        reject(new Error(`the server exited (${code ?? signal}) before it listened:\n${this.output()}`)),
      );
    });
    this.listening.catch(() => undefined);
    this.verified = new Promise<number>((resolve, reject) => {
      this.watch(
        (l) => l.msg === 'the log verified' || l.msg === 'the log failed verification: writes are refused',
        (l) => resolve(typeof l.findings === 'number' ? l.findings : l.msg === 'the log verified' ? 0 : 1),
      );
      void this.exited.then(({ code, signal }) =>
        reject(new Error(`the server exited (${code ?? signal}) before its log verified:\n${this.output()}`)),
      );
    });
    this.verified.catch(() => undefined);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.keep(line);
      const m = /^listening on (http:\/\/\S+)/.exec(line);
      if (m) onUrl(m[1]!);
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => {
      this.keep(line);
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        return;
      }
      if ((parsed.level ?? 0) >= 50) this.errors.push(parsed);
      for (const w of [...this.watchers]) {
        if (!w.test(parsed)) continue;
        this.watchers.splice(this.watchers.indexOf(w), 1);
        w.resolve(parsed);
      }
    });
  }

  /** Resolves with the n-th log line from now on that passes `test`. */
  nth(test: (l: LogLine) => boolean, n: number): Promise<LogLine> {
    let seen = 0;
    return new Promise((resolve) => this.watch((l) => test(l) && ++seen === n, resolve));
  }

  /** Resolves with the first log line from now on that passes `test`. */
  watch(test: (l: LogLine) => boolean, resolve: (l: LogLine) => void): void {
    this.watchers.push({ test, resolve });
  }

  private keep(line: string): void {
    this.tail.push(line.length > 600 ? line.slice(0, 600) + '…' : line);
    if (this.tail.length > 60) this.tail.shift();
  }

  /** The last lines it printed. */
  output(): string {
    return this.tail.join('\n');
  }

  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** A graceful stop (SIGTERM): in-flight requests finish, the store closes. */
  async stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return (await this.exited).code;
  }
}

// ---------------------------------------------------------------------------------------------
// What the client knows: every proposal sent, what was acknowledged of it.

/** The status a proposal was last acknowledged in ('unknown': its submission got no answer;
 * 'absent': its submission was refused). */
type Known = ProposalStatus | 'unknown' | 'absent';

/** The statuses a proposal may be found in after one it was acknowledged in. */
const NEXT: Record<Known, readonly ProposalStatus[]> = {
  unknown: ['pending', 'committed', 'stale', 'expired'],
  absent: [],
  pending: ['pending', 'committed', 'stale', 'expired'],
  committed: ['committed'],
  stale: ['stale'],
  expired: ['expired'],
};

export interface Tracked {
  id: string;
  payload: ProposalPayload;
  trial: number;
  /** Signers whose approvals were sent, answered or not. */
  sent: Set<string>;
  /** Signers listed by an acknowledged answer. */
  acked: Set<string>;
  known: Known;
  /** The version of its acknowledged commit. */
  version?: number;
  /** Signers whose approvals got an answer, whether it listed them or not (a refusal, or a
   * late approval of a committed proposal): one not listed must never be found counted. */
  answered: Set<string>;
}

export interface Acked {
  id: string;
  /** The record's hash, when it was read before the kill. */
  hash?: string;
  trial: number;
}

export class Ledger {
  readonly proposals = new Map<string, Tracked>();
  /** version → the commit acknowledged at it. */
  readonly commits = new Map<number, Acked>();
  /** version → record hash, as read from the log after a restart: never to change again. */
  readonly hashes = new Map<number, string>();
  /** What the restarts found of writes that got no answer: submissions wholly there or absent,
   * approvals (sent, never acknowledged) counted or not. */
  readonly outcomes = { submissionsWhole: 0, submissionsAbsent: 0, approvalsCounted: 0, approvalsNot: 0 };
  /** Auditor runs not yet awaited (settleAudits). */
  readonly audits: { run: Promise<AuditRun>; from: number; after: string }[] = [];
  /** Descriptor ids whose put was acknowledged as committed and not yet sent a delete. */
  readonly deletable: string[] = [];
  maxAcked = -1;

  track(payload: ProposalPayload, trial: number): Tracked {
    const t: Tracked = { id: hashOf(payload), payload, trial, sent: new Set(), acked: new Set(), known: 'unknown', answered: new Set() };
    this.proposals.set(t.id, t);
    return t;
  }

  /** Records an acknowledged answer about `t` (a 2xx with a proposal view). */
  answered(t: Tracked, view: ProposalView): void {
    if (view.proposal_id !== t.id) throw new Error(`an answer about ${t.id} names ${view.proposal_id}`);
    for (const a of view.approvals) t.acked.add(a.signer_id);
    if (view.status === 'committed') {
      if (view.version === undefined) throw new Error(`a committed answer about ${t.id} has no version`);
      if (t.version !== undefined && t.version !== view.version)
        throw new Error(`${t.id} was acknowledged committed at ${t.version} and at ${view.version}`);
      const other = this.commits.get(view.version);
      if (other && other.id !== t.id) throw new Error(`version ${view.version} was acknowledged for ${other.id} and for ${t.id}`);
      t.version = view.version;
      if (!other) {
        this.commits.set(view.version, { id: t.id, trial: t.trial });
        this.maxAcked = Math.max(this.maxAcked, view.version);
        for (const op of t.payload.ops) if (op.op === 'put') this.deletable.push(op.descriptor.id);
      }
    }
    this.settle(t, view.status);
  }

  /** Records that `t` was acknowledged in `status`, which must follow what was acknowledged before. */
  settle(t: Tracked, status: ProposalStatus): void {
    if (!NEXT[t.known].includes(status)) throw new Error(`${t.id} was acknowledged ${t.known}, then ${status}`);
    t.known = status;
  }
}

// ---------------------------------------------------------------------------------------------
// The stream of commits: a few workers, each proposing on the head it read and approving, in
// one of several patterns, so that proposals, approvals and commits race in the writer's queue.

interface Signers {
  registryId: string;
  keys: TestSigner[];
  threshold: number;
}

/** A request that reached no answer: the server is gone (or going). */
class Cut extends Error {}

async function send<T>(url: string, method: string, path: string, body?: unknown): Promise<Reply<T | undefined>> {
  let r: Reply<T | undefined>;
  try {
    r = await request<T | undefined>(url, method, path, body);
  } catch (e) {
    throw new Cut((e as Error).message);
  }
  return r;
}

export interface DriveStats {
  requests: number;
  /** Requests that got no answer: in flight when the kill came. */
  cut: number;
}

export class Driver {
  readonly stats: DriveStats = { requests: 0, cut: 0 };
  private stopped = false;
  private finding: Error | undefined;
  private readonly workers: Promise<void>[] = [];

  constructor(
    private readonly url: string,
    private readonly who: Signers,
    private readonly ledger: Ledger,
    private readonly trial: number,
    private readonly seed: number,
  ) {}

  start(workers: number): void {
    for (let w = 0; w < workers; w++) this.workers.push(this.work(w, rng(derive(this.seed, 'worker', this.trial, w))));
  }

  /** Stops the workers (after the kill) and waits for the requests they have out. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers);
    if (this.finding) throw this.finding;
  }

  /** A request; `t` and `by`: the proposal and the signers whose approvals it carries. */
  private async call<T>(
    t: Tracked | undefined,
    by: readonly TestSigner[],
    method: string,
    path: string,
    body?: unknown,
  ): Promise<Reply<T | undefined>> {
    this.stats.requests++;
    for (const k of by) t?.sent.add(k.id);
    let r: Reply<T | undefined>;
    try {
      r = await send<T>(this.url, method, path, body);
    } catch (e) {
      this.stats.cut++;
      throw e;
    }
    for (const k of by) t?.answered.add(k.id);
    return r;
  }

  /** A worker ends at the kill (a request cut off) or at a finding, which stop() throws. */
  private async work(w: number, r: Rng): Promise<void> {
    try {
      for (let i = 0; !this.stopped; i++) await this.one(w, i, r);
    } catch (e) {
      if (!(e instanceof Cut)) this.finding ??= e as Error;
    }
  }

  private ops(w: number, i: number, r: Rng): Op[] {
    const { keys, threshold } = this.who;
    if (r.chance(0.03)) return [{ op: 'set_signers', signer_set: signerSet(keys, threshold) }];
    const ops: Op[] = [];
    if (r.chance(0.1) && this.ledger.deletable.length > 0) {
      const at = r.int(0, this.ledger.deletable.length - 1);
      ops.push({ op: 'delete', id: this.ledger.deletable.splice(at, 1)[0]! });
    }
    for (let k = r.int(1, 4); k > 0; k--) {
      const id = `t${this.trial}-w${w}-${i}-${k}`;
      ops.push({
        op: 'put',
        descriptor: {
          id,
          kind: 'service',
          labels: { trial: String(this.trial), worker: String(w) },
          body: { i, pad: 'x'.repeat(r.int(0, 3000)) },
        },
      });
    }
    return ops;
  }

  /** One proposal: submitted with one or two approvals, then approved by the others. */
  private async one(w: number, i: number, r: Rng): Promise<void> {
    const { registryId, keys, threshold } = this.who;
    const head = await this.call<HeadJson>(undefined, [], 'GET', '/registry/head');
    if (head.status !== 200 || !head.json) return;
    const t = this.ledger.track(
      proposal(registryId, head.json, this.ops(w, i, r), { reason: `crash loop ${this.trial}/${w}/${i}` }),
      this.trial,
    );
    const order = [...keys].sort(() => r.next() - 0.5);
    const first = r.chance(0.3) ? threshold : 1;
    const withIt = order.slice(0, first);
    const submitted = await this.call<ProposalView>(t, withIt, 'POST', '/registry/proposals', {
      payload: t.payload,
      approvals: withIt.map((k) => approve(k, t.id)),
    });
    if (submitted.status !== 200 && submitted.status !== 201) {
      t.known = 'absent';
      return;
    }
    this.ledger.answered(t, submitted.json!);
    // The rest approve, one at a time or racing each other.
    const rest = order.slice(first);
    const racing = r.chance(0.3);
    const approveBy = async (k: TestSigner) => {
      const a = await this.call<ProposalView>(
        t,
        [k],
        'POST',
        `/registry/proposals/${encodeURIComponent(t.id)}/approvals`,
        approve(k, t.id),
      );
      if (a.status === 200) this.ledger.answered(t, a.json!);
      else if (a.status === 409) this.ledger.settle(t, 'stale');
    };
    if (racing) await Promise.all(rest.map((k) => approveBy(k)));
    else for (const k of rest) if (t.known === 'pending') await approveBy(k);
    // Sometimes the same payload again: 200 with its current status.
    if (r.chance(0.1)) {
      const again = await this.call<ProposalView>(t, [order[0]!], 'POST', '/registry/proposals', {
        payload: t.payload,
        approvals: [approve(order[0]!, t.id)],
      });
      if (again.status === 200) this.ledger.answered(t, again.json!);
    }
    // Read the record of an acknowledged commit, to hold its hash against every later restart.
    if (t.version !== undefined) {
      const rec = await this.call<CommitRecord>(undefined, [], 'GET', `/registry/${t.version}`);
      if (rec.status === 200 && rec.json) {
        if (rec.json.payload_hash !== t.id)
          throw new Error(`version ${t.version} holds ${rec.json.payload_hash}, acknowledged for ${t.id}`);
        this.ledger.commits.get(t.version)!.hash = hashOf(rec.json);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The checks after a restart.

export class CrashCheckError extends Error {}

function fail(message: string): never {
  throw new CrashCheckError(message);
}

async function get<T>(url: string, path: string): Promise<Reply<T | undefined>> {
  return request<T | undefined>(url, 'GET', path);
}

export interface CheckpointJson {
  version: number;
  hash: string;
  state_root: string;
  descriptor_count: number;
  created_at: string;
}

/** Polls /readyz until writes are accepted (bounded): the start's checks done, the writer open. */
async function writable(url: string, deadlineMs = 15_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  let last = '';
  for (let wait = 5; Date.now() < until; wait = Math.min(wait * 2, 100)) {
    const r = await get<{ write: boolean; reasons: string[] }>(url, '/readyz');
    last = r.text;
    if (r.status === 200 && r.json?.write === true) return;
    await delay(wait);
  }
  fail(`/readyz never said write: true: ${last}`);
}

export interface AuditRun {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `registry verify --db`, the independent auditor, on the file; `fast`: signatures with Node's
 * crypto (the same verdicts, a fraction of the CPU) instead of strict @noble/ed25519. */
export function verifyDb(db: string, fast = false): Promise<AuditRun> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, 'verify', '--db', db, ...(fast ? ['--fast'] : [])],
      { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr, ms: performance.now() - started });
      },
    );
  });
}

/** Awaits the auditor runs started after earlier restarts: each exited 0 and trusts a head the
 * log still holds (a run reads the live file in one transaction, at a moment at or after the
 * restart it followed, so its head may be a later version than the one checked then). Answers
 * how long the longest took. */
export async function settleAudits(ledger: Ledger, rows: readonly StoredCommitRow[]): Promise<number> {
  let ms = 0;
  for (const a of ledger.audits.splice(0)) {
    const run = await a.run;
    ms = Math.max(ms, run.ms);
    const where = `registry verify --db after ${a.after} (head ${a.from})`;
    if (run.code !== 0) fail(`${where} exited ${run.code}:\n${run.stdout}\n${run.stderr}`);
    const m = /^\s*head\s+version (\d+) (b3:[0-9a-f]{64})$/m.exec(run.stdout);
    const trusted = /^trusted head: (b3:[0-9a-f]{64})$/m.exec(run.stdout)?.[1];
    if (!m || trusted !== m[2]) fail(`${where} printed no head:\n${run.stdout}`);
    const version = Number(m[1]);
    if (version < a.from) fail(`${where} trusts version ${version}, before the head it followed`);
    if (rows[version]?.hash !== m[2])
      fail(`${where} trusts version ${version} ${m[2]}; the log holds ${rows[version]?.hash ?? 'nothing'} there`);
  }
  return ms;
}

export interface CheckResult {
  head: number;
  /** How long the previous restart's `registry verify --db` took. */
  verifyMs?: number;
  checkpoint?: number;
  pruned: number;
}

/** Everything a crash must not break, on the freshly restarted `served`. */
export async function checkAfterRestart(ctx: {
  served: Served;
  db: string;
  ledger: Ledger;
  settings: ModeSettings;
  trial: number;
  /** `registry verify --fast` after this restart. */
  fastVerify: boolean;
}): Promise<CheckResult> {
  const { served, db, ledger, settings, trial } = ctx;
  const url = await served.listening;
  const findings = await served.verified;
  if (findings !== 0) fail(`the start's verification found ${findings} problem(s):\n${served.output()}`);
  await writable(url);

  const head = (await get<HeadJson>(url, '/registry/head')).json!;
  if (head.version < ledger.maxAcked) fail(`the head is ${head.version}, but version ${ledger.maxAcked} was acknowledged`);
  // The independent auditor (the chain, the audit chain, the tables) runs beside these checks and
  // the next trial; the next restart's checks, or the end of the loop, await it.
  ledger.audits.push({ run: verifyDb(db, ctx.fastVerify), from: head.version, after: `the restart of trial ${trial}` });

  // The log's rows, read beside the running service as `registry verify --db` does.
  const store = new SqliteStore({ path: db, readonly: true });
  try {
    const rows = await store.commits(0, Number.MAX_SAFE_INTEGER);
    if (rows.length !== head.version + 1 || rows.some((row, v) => row.version !== v))
      fail(`the log holds ${rows.length} rows for head ${head.version}, or a gap`);
    const verifyMs = await settleAudits(ledger, rows);
    // Nothing once seen ever changes; every acknowledged commit is there, with its proposal.
    for (const [v, hash] of ledger.hashes) if (rows[v]!.hash !== hash) fail(`version ${v} was ${hash}, is now ${rows[v]!.hash}`);
    for (const [v, c] of ledger.commits) {
      const row = rows[v]!;
      if (row.payloadHash !== c.id) fail(`version ${v} was acknowledged for ${c.id} (trial ${c.trial}), holds ${row.payloadHash}`);
      if (c.hash !== undefined && row.hash !== c.hash) fail(`version ${v} was read as ${c.hash} before the kill, is now ${row.hash}`);
    }
    // Pending proposals are on the head: a commit makes every other one stale in its own transaction.
    for (const p of await store.proposals({ status: 'pending', afterSeq: 0, limit: 100_000 }))
      if (p.baseVersion !== head.version) fail(`proposal ${p.id} is pending on version ${p.baseVersion}, the head is ${head.version}`);
    const result = await checkLog(url, store, rows, head, ledger, settings, trial);
    result.verifyMs = verifyMs;
    // Every proposal of this trial, and any left pending or unknown before: wholly there or absent.
    for (const t of ledger.proposals.values()) await checkProposal(url, store, ledger, t, rows, head.version);
    for (const row of rows) ledger.hashes.set(row.version, row.hash);
    // Settled proposals are checked once, after the trial that sent them: forget them.
    for (const [id, t] of ledger.proposals) if (t.known !== 'pending' && t.known !== 'unknown') ledger.proposals.delete(id);
    if (served.errors.length > 0) fail(`the restarted server logged errors: ${JSON.stringify(served.errors.slice(0, 3))}`);
    return result;
  } finally {
    await store.close();
  }
}

/** Checkpoints and retention, and the records over HTTP. */
async function checkLog(
  url: string,
  store: SqliteStore,
  rows: StoredCommitRow[],
  head: HeadJson,
  ledger: Ledger,
  settings: ModeSettings,
  trial: number,
): Promise<CheckResult> {
  // Retention and checkpoints (the plain mode makes them too, at the default every 1000 commits).
  const result: CheckResult = { head: head.version, pruned: 0 };
  let newest: number | undefined;
  const cp = await get<CheckpointJson>(url, '/registry/checkpoints/latest');
  if (cp.status === 200) {
    const c = cp.json!;
    if (c.version > head.version || rows[c.version]!.hash !== c.hash)
      fail(`the latest checkpoint names version ${c.version} ${c.hash}; the log holds ${rows[c.version]?.hash ?? 'nothing'} there`);
    for (const k of ['state_root', 'descriptor_count', 'created_at'] as const)
      if (c[k] === undefined) fail(`the latest checkpoint has no ${k}`);
    const record = rows[c.version]!.text === '' ? undefined : (JSON.parse(rows[c.version]!.text) as CommitRecord);
    if (record?.state_root !== c.state_root)
      fail(
        `the latest checkpoint (version ${c.version}) has state root ${c.state_root}; its record ${record ? record.state_root : 'is pruned'}`,
      );
    newest = c.version;
    result.checkpoint = c.version;
  } else if (cp.status !== 404) fail(`GET /registry/checkpoints/latest answered ${cp.status}: ${cp.text.slice(0, 300)}`);
  const prunedRows = rows.filter((row) => row.text === '');
  result.pruned = prunedRows.length;
  if (settings.pruneFromHead !== undefined && head.version >= settings.pruneFromHead && prunedRows.length === 0) {
    const kept = (await store.checkpoints()).map((c) => c.version).join(', ');
    const knobs = Object.entries(settings.env).filter(([k]) => /CHECKPOINT|RETAIN/.test(k));
    fail(
      `the head is ${head.version} and nothing is pruned (${knobs.map(([k, v]) => `${k}=${v}`).join(' ')}); checkpoints kept: ${kept || 'none'}`,
    );
  }
  if (prunedRows.length > 0) {
    if (!settings.mayPrune) fail(`versions ${prunedRows.map((x) => x.version).join(', ')} are pruned, in a mode without retention`);
    if (newest === undefined) fail(`versions are pruned but there is no checkpoint`);
    if (rows[0]!.text === '') fail('the genesis is pruned');
    const last = prunedRows[prunedRows.length - 1]!.version;
    if (last >= newest) fail(`version ${last} is pruned, at or after the newest checkpoint ${newest}`);
  }
  if (newest !== undefined) {
    const torn = rows.slice(newest).find((row) => row.text === '');
    if (torn) fail(`version ${torn.version}, at or after the newest checkpoint ${newest}, is pruned`);
  }

  // Over HTTP: this trial's acknowledged versions, the checkpoint's, the head, a pruned one.
  const wanted = new Set<number>([head.version, ...(newest === undefined ? [] : [newest])]);
  for (const [v, c] of ledger.commits) if (c.trial === trial) wanted.add(v);
  if (prunedRows.length > 0) wanted.add(prunedRows[prunedRows.length - 1]!.version);
  for (const v of wanted) {
    const rec = await get<CommitRecord>(url, `/registry/${v}`);
    // Retention may run now (the start's checkpoint): a 410 for a row read whole is read again.
    if (rows[v]!.text === '' || (rec.status === 410 && settings.mayPrune && (await store.commit(v))?.text === '')) {
      if (rec.status !== 410) fail(`version ${v} is pruned, yet GET /registry/${v} answered ${rec.status}`);
      continue;
    }
    if (rec.status !== 200) fail(`GET /registry/${v} answered ${rec.status}: ${rec.text.slice(0, 300)}`);
    if (hashOf(rec.json) !== rows[v]!.hash) fail(`GET /registry/${v} hashes to ${hashOf(rec.json)}, the log says ${rows[v]!.hash}`);
  }

  return result;
}

/** A proposal is wholly there (its row, its approvals, a status its acknowledged answers allow) or
 * absent; what is found is what the next restarts must find too. */
async function checkProposal(
  url: string,
  store: SqliteStore,
  ledger: Ledger,
  t: Tracked,
  rows: StoredCommitRow[],
  head: number,
): Promise<void> {
  const r = await get<ProposalJson>(url, `/registry/proposals/${encodeURIComponent(t.id)}`);
  const where = `proposal ${t.id} (trial ${t.trial}, acknowledged ${t.known}${t.version === undefined ? '' : ` at ${t.version}`})`;
  const row = await store.proposal(t.id);
  if (r.status === 404) {
    if (t.known !== 'unknown' && t.known !== 'absent') fail(`${where} is gone (404)`);
    if (row) fail(`${where} answers 404, but its row is there (${row.status})`);
    if (t.known === 'unknown') ledger.outcomes.submissionsAbsent++;
    t.known = 'absent';
    return;
  }
  if (!row) fail(`${where} answers ${r.status} but has no row`);
  // A settled proposal's payload is pruned after a while: then its row alone is checked.
  if (r.status === 200) {
    const p = r.json!;
    if (p.status !== row.status || p.version !== (row.version ?? undefined))
      fail(`${where}: GET says ${p.status} ${p.version}, the row ${row.status} ${row.version}`);
    if (hashOf(p.payload) !== t.id) fail(`${where}: GET answers a payload that hashes to ${hashOf(p.payload)}`);
    if (p.status === 'pending' && p.payload.base_version !== head)
      fail(`${where} is pending on ${p.payload.base_version}, the head is ${head}`);
    const listed = p.approvals.map((a) => a.signer_id).join(',');
    if (listed !== row.approvals.map((a) => a.signer_id).join(',')) fail(`${where}: GET lists approvals ${listed}, the table holds others`);
  } else if (r.status !== 410 || row.status === 'pending' || row.payloadText !== '') {
    fail(
      `${where}: GET answered ${r.status} (row ${row.status}${row.payloadText === '' ? ', payload pruned' : ''}): ${r.text.slice(0, 300)}`,
    );
  }
  if (!NEXT[t.known].includes(row.status)) fail(`${where} is ${row.status}`);
  if (t.version !== undefined && row.version !== t.version) fail(`${where} is committed at ${row.version}`);
  const have = new Set(row.approvals.map((a) => a.signer_id));
  for (const s of t.acked) if (!have.has(s)) fail(`${where} lost the acknowledged approval of ${s}: has ${[...have].join(', ')}`);
  for (const s of have) if (!t.sent.has(s)) fail(`${where} has an approval by ${s}, who never sent one`);
  if (have.size === 0) fail(`${where} has no approval`);
  if (row.status === 'committed') {
    const v = row.version;
    if (v === null || v > head || rows[v]!.payloadHash !== t.id)
      fail(`${where} says committed at ${v}; the log holds ${v === null ? '-' : rows[v]?.payloadHash} there`);
  } else if (row.version !== null) fail(`${where} is ${row.status} at version ${row.version}`);
  if (row.status === 'pending' && row.baseVersion !== head) fail(`${where} is pending on ${row.baseVersion}, the head is ${head}`);
  for (const s of t.answered)
    if (!t.acked.has(s) && have.has(s)) fail(`${where} has the approval of ${s}, which was answered without being counted`);
  if (t.known === 'unknown') ledger.outcomes.submissionsWhole++;
  for (const s of t.sent) if (!t.answered.has(s)) ledger.outcomes[have.has(s) ? 'approvalsCounted' : 'approvalsNot']++;
  // From now on it must stay as found.
  for (const s of have) t.acked.add(s);
  for (const s of t.sent) t.answered.add(s);
  t.known = row.status;
  if (row.version !== null) t.version = row.version;
}

// ---------------------------------------------------------------------------------------------
// The loop.

export interface LoopOptions {
  mode: Mode;
  trials: number;
  seed: number;
  workers?: number;
  /** Told of each trial's outcome (progress lines). */
  log?: (line: string) => void;
  /** `registry verify --db` after each restart checks signatures with Node's crypto (`--fast`)
   * rather than strict @noble/ed25519: the log and so each run grow with the trials, and a
   * nightly's strict runs would take most of its time. The run after the last trial is strict
   * either way. Default: fast beyond 50 trials. */
  fastVerify?: boolean;
}

export interface LoopReport {
  mode: Mode;
  seed: number;
  trials: number;
  acknowledged: number;
  head: number;
  /** Kills that found requests in flight (at least one got no answer). */
  midStream: number;
  /** Extra kills of a restarting server, before or while it verified its log. */
  startKills: number;
  /** Kills that left checkpoint entries without their row: a build (or a drop) cut short. */
  midCheckpoint: number;
  checkpoint?: number;
  pruned: number;
  seconds: number;
  /** Ledger.outcomes. */
  outcomes: Ledger['outcomes'];
}

/** Which versions, if any, have checkpoint entries but no checkpoint row: a build cut short. */
async function halfBuilt(db: string): Promise<number[]> {
  let store: SqliteStore | undefined;
  try {
    store = new SqliteStore({ path: db, readonly: true });
    return await store.orphanCheckpointVersions();
  } catch {
    return [];
  } finally {
    await store?.close();
  }
}

export async function crashLoop(options: LoopOptions): Promise<LoopReport> {
  const { mode, trials, seed } = options;
  const settings = MODES[mode];
  const fastVerify = options.fastVerify ?? trials > 50;
  const started = performance.now();
  const dir = mkdtempSync(join(tmpdir(), `registry-crash-${mode}-`));
  const db = join(dir, 'registry.db');
  const keys = signers('alice', 'bob', 'carol');
  const who: Signers = { registryId: `crash-${mode}`, keys, threshold: 2 };
  const genesisPath = join(dir, 'genesis.json');
  writeFileSync(genesisPath, JSON.stringify(genesisRecord(who.registryId, keys, who.threshold)));
  const args = ['--genesis', genesisPath, '--db', db];
  const ledger = new Ledger();
  const report: LoopReport = {
    mode,
    seed,
    trials,
    acknowledged: 0,
    head: 0,
    midStream: 0,
    startKills: 0,
    midCheckpoint: 0,
    pruned: 0,
    seconds: 0,
    outcomes: ledger.outcomes,
  };
  const live = new Set<Served>();
  const serve = () => {
    const s = new Served(args, settings.env);
    live.add(s);
    void s.exited.then(() => live.delete(s));
    return s;
  };
  let trial = 0;
  try {
    let served = serve();
    const url0 = await served.listening;
    if ((await served.verified) !== 0) fail(`a new log failed its start's verification:\n${served.output()}`);
    await writable(url0);
    await seedState(url0, who, ledger, settings.seedDescriptors);

    for (trial = 1; trial <= trials; trial++) {
      const r = rng(derive(seed, mode, 'trial', trial));
      const url = await served.listening;
      const driver = new Driver(url, who, ledger, trial, seed);
      // The kill: after a random delay, just after the n-th commit, or just after a checkpoint.
      const when = r.next();
      const [lo, hi] = settings.killAfterCommits;
      const moment =
        when < 0.4
          ? undefined
          : when < 0.7 || !settings.checkpoints
            ? { line: served.nth((l) => l.msg === 'committed', r.int(lo, hi)), jitter: settings.killJitterMs }
            : { line: served.nth((l) => l.msg === 'checkpoint made', r.int(1, 2)), jitter: settings.retentionJitterMs };
      driver.start(options.workers ?? 4);
      if (moment) {
        // A trial whose workers stall (every proposal stale) still ends.
        await Promise.race([moment.line, delay(settings.killDelayMs[1] * 3)]);
        await delay(r.int(0, moment.jitter));
      } else await delay(r.int(settings.killDelayMs[0], settings.killDelayMs[1]));
      await served.kill();
      if (served.errors.length > 0) fail(`the server logged errors before the kill: ${JSON.stringify(served.errors.slice(0, 3))}`);
      await driver.stop();
      if (driver.stats.cut > 0) report.midStream++;
      if (settings.checkpoints && (await halfBuilt(db)).length > 0) report.midCheckpoint++;
      // Now and then the restarted server is killed too, before or while it checks its log.
      if (r.chance(0.15)) {
        const early = serve();
        await delay(r.int(0, 700));
        await early.kill();
        report.startKills++;
      }
      served = serve();
      const restarted = performance.now();
      await served.verified.catch(() => undefined);
      const startMs = performance.now() - restarted;
      const result = await checkAfterRestart({ served, db, ledger, settings, trial, fastVerify });
      report.head = result.head;
      report.pruned = result.pruned;
      report.checkpoint = result.checkpoint;
      options.log?.(
        `${mode} trial ${trial}/${trials}: head ${result.head}, ${ledger.commits.size} acknowledged, ${driver.stats.requests} requests (${driver.stats.cut} cut)` +
          (result.checkpoint === undefined ? '' : `, checkpoint ${result.checkpoint}`) +
          (result.pruned ? `, ${result.pruned} pruned` : '') +
          `; start ${Math.round(startMs)} ms, checks ${Math.round(performance.now() - restarted - startMs)} ms; the last verify took ${Math.round(result.verifyMs ?? 0)} ms`,
      );
    }
    const code = await served.stop();
    if (code !== 0) fail(`the last server stopped with ${code}:\n${served.output()}`);
    // The last auditor run after a restart, and one on the file of the stopped service (strict).
    ledger.audits.push({ run: verifyDb(db), from: report.head, after: 'the graceful stop' });
    const store = new SqliteStore({ path: db, readonly: true });
    try {
      await settleAudits(ledger, await store.commits(0, Number.MAX_SAFE_INTEGER));
    } finally {
      await store.close();
    }
  } catch (e) {
    const err = e as Error;
    err.message = `crash loop ${mode}, trial ${trial} of ${trials} (reproduce: CRASH_SEED=${seed} CRASH_MODES=${mode}; the file is kept: ${db}): ${err.message}`;
    throw err;
  } finally {
    await Promise.all([...live].map((s) => s.kill()));
  }
  if (process.env.CRASH_KEEP) options.log?.(`${mode}: the file is kept: ${db}`);
  else rmSync(dir, { recursive: true, force: true });
  report.acknowledged = ledger.commits.size;
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/** Commits `count` descriptors before the first trial, 1000 a commit (acknowledged, in the ledger). */
async function seedState(url: string, who: Signers, ledger: Ledger, count: number): Promise<void> {
  for (let from = 0; from < count; from += 1000) {
    const head = (await get<HeadJson>(url, '/registry/head')).json!;
    const ops: Op[] = [];
    for (let i = from; i < Math.min(count, from + 1000); i++)
      ops.push({
        op: 'put',
        descriptor: { id: `seed-${i}`, kind: 'node', labels: { zone: `z${i % 16}` }, body: { i, addr: `10.1.${i >> 8}.${i & 255}` } },
      });
    const t = ledger.track(proposal(who.registryId, head, ops, { reason: 'seed' }), 0);
    t.known = 'pending';
    for (const k of who.keys.slice(0, who.threshold)) t.sent.add(k.id);
    const r = await request<ProposalView>(url, 'POST', '/registry/proposals', {
      payload: t.payload,
      approvals: who.keys.slice(0, who.threshold).map((k) => approve(k, t.id)),
    });
    if (r.status !== 201 || r.json.status !== 'committed') fail(`the seed commit was refused: ${r.status} ${r.text.slice(0, 300)}`);
    ledger.answered(t, r.json);
  }
}
