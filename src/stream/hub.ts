// The commit stream (SPEC §8). One hub, fed by the writer after each commit; each subscriber
// has its own bounded queue, so a slow one is dropped (`event: lagged`) and never slows the
// writer or another subscriber. A resume replays from a ring of recent commits or, when older,
// from the log, while live commits wait in the subscriber's queue: no gap, no duplicate.
// Filtered subscriptions are indexed by the kinds and labels their filters require, so a
// commit is matched only against the subscribers that could care about it.
import type { ServerResponse } from 'node:http';
import { RegistryError } from '../core/errors.js';
import type { Filter } from '../core/filter.js';
import { matches } from '../core/filter.js';
import type { CommitRecord, Descriptor, ProposalPayload } from '../core/schemas.js';
import type { CommitEvent } from '../pipeline/writer.js';
import type { VersionSnapshots } from '../state/version-snapshots.js';
import type { Store } from '../store/store.js';

export interface StreamLimits {
  /** Commits kept in memory for resumes. */
  ringSize: number;
  /** Frames and bytes a subscriber may have waiting before it is dropped as lagged. */
  maxQueueFrames: number;
  maxQueueBytes: number;
  heartbeatMs: number;
  maxSubscribers: number;
  maxPerAddress: number;
  /** The most commits a resume replays; a resume point further back gets `event: reset`. */
  maxReplay: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  ringSize: 1024,
  maxQueueFrames: 1024,
  maxQueueBytes: 4 * 1024 * 1024,
  heartbeatMs: 15_000,
  maxSubscribers: 20_000,
  maxPerAddress: 2_000,
  maxReplay: 100_000,
};

interface Change {
  id: string;
  before: Descriptor | undefined;
  after: Descriptor | undefined;
}

interface StreamCommit {
  version: number;
  hash: string;
  prevHash: string | null;
  committedAt: string;
  changes: readonly Change[];
  /** The frame every unfiltered subscriber gets. */
  frame: Buffer;
  /** While the commit is being published: the frame for each narrowed `changed` list, so that
   * filtered subscribers who see the same ids share one frame. */
  narrowed?: Map<string, Buffer> | undefined;
}

export interface Subscription {
  /** Only commits that touched a descriptor matching this, before or after. */
  filter?: Filter | undefined;
  /** What every match requires (from the filter's planner), for the subscriber index. */
  hints?: { kinds?: readonly string[] | undefined; labels?: readonly { key: string; values: readonly string[] }[] | undefined } | undefined;
  /** Replay every commit after this version first. */
  from?: number | undefined;
  address: string;
}

const MAX_CHANGED = 100;

function commitFrame(c: Omit<StreamCommit, 'frame'>, changed: readonly string[]): Buffer {
  const data = {
    version: c.version,
    hash: c.hash,
    prev_hash: c.prevHash,
    committed_at: c.committedAt,
    changed: changed.slice(0, MAX_CHANGED),
    changed_count: changed.length,
  };
  return Buffer.from(`id: ${c.version}\nevent: commit\ndata: ${JSON.stringify(data)}\n\n`);
}

class Subscriber {
  private readonly queue: Buffer[] = [];
  private queuedBytes = 0;
  private draining = false;
  /** While a resume replays history, live frames wait here (in version order). */
  private held: StreamCommit[] | undefined;
  /** The last version this subscriber was sent (or asked to resume after): nothing at or
   * below it goes out again, whatever path it comes by. */
  private sent: number;
  closed = false;

  constructor(
    readonly res: ServerResponse,
    readonly sub: Subscription,
    private readonly hub: Hub,
  ) {
    this.sent = sub.from ?? -1;
    res.on('drain', () => this.flush());
    res.on('close', () => this.hub.remove(this));
  }

  hold(): void {
    this.held = [];
  }

  /** Ends the replay: the held live commits after it go out, then live ones directly. */
  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const c of held) this.deliver(c);
  }

  deliver(c: StreamCommit): void {
    if (this.held) {
      this.held.push(c);
      if (this.held.length > this.hub.limits.maxQueueFrames) this.lag();
      return;
    }
    this.sendCommit(c.version, this.frameFor(c));
  }

  /** Replays the frame of commit `version`, waiting while the client's socket is full. */
  async replayCommit(version: number, frame: Buffer | undefined): Promise<void> {
    if (version <= this.sent || this.closed) return;
    this.sent = version;
    if (!frame || this.res.write(frame)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  /** Sends the frame of commit `version` (none when a filter left nothing), once. */
  sendCommit(version: number, frame: Buffer | undefined): void {
    if (version <= this.sent) return;
    this.sent = version;
    if (frame) this.send(frame);
  }

  frameFor(c: StreamCommit): Buffer | undefined {
    const filter = this.sub.filter;
    if (!filter) return c.frame;
    const changed = c.changes
      .filter((ch) => (ch.before && matches(filter, ch.before)) || (ch.after && matches(filter, ch.after)))
      .map((ch) => ch.id);
    if (!changed.length) return undefined;
    if (!c.narrowed) return commitFrame(c, changed);
    const key = changed.join('\n');
    let frame = c.narrowed.get(key);
    if (!frame) c.narrowed.set(key, (frame = commitFrame(c, changed)));
    return frame;
  }

  send(frame: Buffer): void {
    if (this.closed) return;
    if (this.draining) {
      this.queue.push(frame);
      this.queuedBytes += frame.length;
      if (this.queue.length > this.hub.limits.maxQueueFrames || this.queuedBytes > this.hub.limits.maxQueueBytes) this.lag();
      return;
    }
    if (!this.res.write(frame)) this.draining = true;
  }

  private flush(): void {
    this.draining = false;
    while (this.queue.length && !this.draining && !this.closed) {
      const frame = this.queue.shift()!;
      this.queuedBytes -= frame.length;
      if (!this.res.write(frame)) this.draining = true;
    }
  }

  /** Dropped for falling behind: told so if its socket still takes bytes, then closed. */
  lag(): void {
    if (this.closed) return;
    this.hub.lagged++;
    this.end(`event: lagged\ndata: ${JSON.stringify({ reason: 'the subscriber fell behind; resume with Last-Event-ID' })}\n\n`);
    // A socket that does not read never flushes: do not wait for it.
    setTimeout(() => this.res.destroy(), 1000).unref();
  }

  end(last: string): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.res.end(last);
    this.hub.remove(this);
  }
}

export class Hub {
  private readonly ring: StreamCommit[] = [];
  private readonly everyone = new Set<Subscriber>();
  private readonly unfiltered = new Set<Subscriber>();
  /** Filtered subscribers by an index key their filter requires ("k:<kind>", "l:<key>=<value>"),
   * and those whose filter requires nothing an index can answer. */
  private readonly byKey = new Map<string, Set<Subscriber>>();
  private readonly scanned = new Set<Subscriber>();
  private readonly perAddress = new Map<string, number>();
  private readonly heartbeat: NodeJS.Timeout;
  /** Commits waiting to go out, in order: the fan-out runs after the committing step has
   * answered, so a commit's latency does not grow with the number of subscribers. */
  private readonly outbox: StreamCommit[] = [];
  /** Subscribers dropped for falling behind, since start. */
  lagged = 0;

  constructor(
    private readonly store: Store,
    private readonly snapshots: VersionSnapshots,
    /** The head now; the writer publishes a commit after the head has moved to it. */
    private readonly headOf: () => { version: number; hash: string },
    readonly limits: StreamLimits = DEFAULT_STREAM_LIMITS,
  ) {
    this.heartbeat = setInterval(() => {
      const beat = Buffer.from(': heartbeat\n\n');
      for (const s of this.everyone) s.send(beat);
    }, limits.heartbeatMs);
    this.heartbeat.unref();
  }

  private readonly emptyWaiters: (() => void)[] = [];

  get size(): number {
    return this.everyone.size;
  }

  /** Why a new subscriber from `address` cannot be taken now, or undefined. */
  refusal(address: string): 'global' | 'address' | undefined {
    if (this.everyone.size >= this.limits.maxSubscribers) return 'global';
    if ((this.perAddress.get(address) ?? 0) >= this.limits.maxPerAddress) return 'address';
    return undefined;
  }

  /** The writer's commit listener: called synchronously after each commit, it only queues. */
  publish(e: CommitEvent): void {
    const base = {
      version: e.record.version,
      hash: e.hash,
      prevHash: e.record.prev_hash,
      committedAt: e.record.committed_at,
      changes: e.descriptors,
    };
    this.outbox.push({ ...base, frame: commitFrame(base, e.changed) });
    if (this.outbox.length === 1) setImmediate(() => this.fanOut());
  }

  private fanOut(): void {
    for (const c of this.outbox.splice(0)) {
      this.ring.push(c);
      if (this.ring.length > this.limits.ringSize) this.ring.shift();
      for (const s of this.unfiltered) s.deliver(c);
      c.narrowed = new Map();
      for (const s of this.candidates(c)) s.deliver(c);
      c.narrowed = undefined;
    }
  }

  /** Takes over `res` (headers not yet sent) as a subscriber. */
  async open(res: ServerResponse, sub: Subscription): Promise<void> {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      // A stream's connection is not reused when the stream ends (a shutdown, a lagging
      // subscriber dropped): closing it with the stream means a client's pool never hands a
      // later request a socket the registry has already let go of.
      connection: 'close',
    });
    // How long an EventSource waits before it reconnects (its default is 3 s).
    res.write('retry: 1000\n\n');
    const s = new Subscriber(res, sub, this);
    this.add(s);
    const last = this.headOf().version;
    if (sub.from === undefined || sub.from >= last) return;
    // Older than what the service holds for resumes: the client reconciles from the head
    // (like a watch on a compacted revision), and the stream goes on from there.
    const reset = (reason: string): void => {
      const { hash } = this.headOf();
      s.sendCommit(last, Buffer.from(`id: ${last}\nevent: reset\ndata: ${JSON.stringify({ version: last, hash, reason })}\n\n`));
    };
    if (last - sub.from > this.limits.maxReplay) return reset(`resumes reach back ${this.limits.maxReplay} commits`);
    // History goes out at the pace the client reads it (a reader that keeps up is never
    // dropped for the size of its resume), while live commits wait, bounded, behind it.
    s.hold();
    try {
      const oldest = this.ring[0]?.version ?? Number.POSITIVE_INFINITY;
      if (sub.from + 1 >= oldest) {
        const from = sub.from;
        for (const c of this.ring.filter((r) => r.version > from)) await s.replayCommit(c.version, s.frameFor(c));
      } else {
        await this.replay(s, sub.from, last);
      }
      s.release();
    } catch (e) {
      if (e instanceof Pruned || (e instanceof RegistryError && e.code === 'Gone')) {
        reset('the resume point is behind the retention horizon: its commits were pruned');
        s.release();
      } else s.end(': the log could not be read; reconnect with Last-Event-ID\n\n');
    }
  }

  /** Ends every stream with a last comment; clients reconnect with Last-Event-ID. */
  close(): void {
    clearInterval(this.heartbeat);
    for (const s of [...this.everyone]) s.end(': the registry is shutting down; reconnect with Last-Event-ID\n\n');
  }

  /** Resolves once no stream is open (at once when none is). */
  whenEmpty(): Promise<void> {
    if (this.everyone.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.emptyWaiters.push(resolve));
  }

  remove(s: Subscriber): void {
    if (!this.everyone.delete(s)) return;
    if (this.everyone.size === 0) for (const resolve of this.emptyWaiters.splice(0)) resolve();
    const n = (this.perAddress.get(s.sub.address) ?? 1) - 1;
    if (n > 0) this.perAddress.set(s.sub.address, n);
    else this.perAddress.delete(s.sub.address);
    this.unfiltered.delete(s);
    this.scanned.delete(s);
    for (const key of keysOf(s.sub)) this.byKey.get(key)?.delete(s);
  }

  private add(s: Subscriber): void {
    this.everyone.add(s);
    this.perAddress.set(s.sub.address, (this.perAddress.get(s.sub.address) ?? 0) + 1);
    if (!s.sub.filter) return void this.unfiltered.add(s);
    const keys = keysOf(s.sub);
    if (!keys.length) return void this.scanned.add(s);
    for (const key of keys) {
      let set = this.byKey.get(key);
      if (!set) this.byKey.set(key, (set = new Set()));
      set.add(s);
    }
  }

  /** The filtered subscribers whose index entry a changed descriptor could match. */
  private candidates(c: StreamCommit): Set<Subscriber> {
    const found = new Set(this.scanned);
    if (this.byKey.size === 0) return found;
    for (const ch of c.changes) {
      for (const d of [ch.before, ch.after]) {
        if (!d) continue;
        for (const s of this.byKey.get(`k:${d.kind}`) ?? []) found.add(s);
        for (const [k, v] of Object.entries(d.labels)) for (const s of this.byKey.get(`l:${k}=${v}`) ?? []) found.add(s);
      }
    }
    return found;
  }

  /** Sends commits (from, to] from the log; a filtered subscriber needs each descriptor's
   * value before the commit too, so it starts from the snapshot at `from`. */
  private async replay(s: Subscriber, from: number, to: number): Promise<void> {
    const base = s.sub.filter ? await this.snapshots.at(from) : undefined;
    const changedSince = new Map<string, Descriptor | undefined>();
    const before = (id: string) => (changedSince.has(id) ? changedSince.get(id) : base?.index.get(id)?.descriptor);
    for (let v = from + 1; v <= to && !s.closed; v += 256) {
      for (const stored of await this.store.commits(v, Math.min(256, to - v + 1))) {
        if (stored.text === '') throw new Pruned();
        const record = JSON.parse(stored.text) as CommitRecord;
        const changes = new Map<string, Change>();
        for (const op of (record.payload as ProposalPayload).ops) {
          if (op.op === 'set_signers') continue;
          const id = op.op === 'put' ? op.descriptor.id : op.id;
          const after = op.op === 'put' ? op.descriptor : undefined;
          changes.set(id, { id, before: base ? before(id) : undefined, after });
        }
        if (base) for (const ch of changes.values()) changedSince.set(ch.id, ch.after);
        const c = {
          version: record.version,
          hash: stored.hash,
          prevHash: record.prev_hash,
          committedAt: record.committed_at,
          changes: [...changes.values()],
        };
        await s.replayCommit(c.version, s.frameFor({ ...c, frame: commitFrame(c, [...changes.keys()]) }));
      }
      // Reads of the log are synchronous: let other requests in between pages.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/** The index keys a filtered subscriber is found under: one condition its filter requires,
 * a label's values rather than a kind (registries have few kinds, so a kind key would gather
 * most subscribers). */
function keysOf(sub: Subscription): string[] {
  if (!sub.filter || !sub.hints) return [];
  const label = sub.hints.labels?.[0];
  if (label) return label.values.map((v) => `l:${label.key}=${v}`);
  return sub.hints.kinds?.map((k) => `k:${k}`) ?? [];
}

/** A resume reached a commit whose record retention pruned. */
class Pruned extends Error {}
