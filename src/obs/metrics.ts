// Prometheus metrics (README → Operations → Metrics). One RegistryMetrics per running registry,
// each with its own prom-client Registry: tests run several registries in one process, and the
// process-wide default registry would mix them. The process metrics (CPU, memory, event loop,
// GC) describe the process, not a registry, so they are collected once per process and
// appended to every registry's exposition.
//
// The read path pays for metrics on every request, so its series are plain numbers in cells
// resolved once (a route's cells when the route is registered, a status code's on its first
// answer): a request costs a Map lookup, two increments and a bucket search, no label hashing or
// string building (prom-client's own counters hash their labels on every increment). Everything
// else is computed when Prometheus scrapes.
import { statSync } from 'node:fs';
import { collectDefaultMetrics, Registry, type Metric } from 'prom-client';
import { EXPIRED, NO_CURRENT_SIGNER, NOT_A_SIGNER, STALE } from '../core/approvals.js';
import { ApprovalVerifier } from '../core/crypto.js';

/** Request latency, in seconds: reads answer in tens of microseconds in process, writes in
 * 1–750 ms (a commit waits for the disk); 0.05 is the read p95 target and 0.75 the commit's. */
export const REQUEST_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10,
] as const;
/** From a writer step's queueing to a durable commit; 0.75 s is the commit p95 target. */
export const COMMIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10] as const;
/** One Ed25519 verification: ~50 µs with node:crypto; DESIGN §4's target is 0.2 ms, the old SLO 7 ms. */
export const VERIFY_BUCKETS = [0.000025, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.0025, 0.007, 0.025] as const;

/** The route label of requests no route matched (404s, unknown methods): one series, whatever the path. */
export const UNMATCHED_ROUTE = 'unmatched';

/** Which plane a route serves, a label that lets alerts and dashboards take reads and writes
 * apart without listing routes: `read` (GET/HEAD under /registry/, and the batch read), `write`
 * (the other methods under /registry/), `ops` (health, readiness, metrics, documents) and `none`
 * (no route matched). It follows from the route and method, so it adds no series. */
export type Plane = 'read' | 'write' | 'ops' | 'none';

/** What the scrape-time gauges read. Each is called once per scrape. */
export interface MetricSources {
  headVersion: () => number;
  descriptors: () => number;
  pendingProposals: () => number;
  /** Open commit streams. */
  subscribers: () => number;
  /** Stream subscribers dropped for falling behind, since start (a counter). */
  lagged: () => number;
  /** Refused approvals that were not signed claims (bad signature, unknown signer id), since
   * start: SPEC §9 counts them instead of auditing them. */
  unauditedRefusals: () => number;
  /** Why the write plane refuses writes now; empty when it accepts them (what /readyz says). */
  writeBlockers: () => readonly string[];
  /** The files the log occupies (the SQLite database and its WAL); missing ones count 0. */
  storageFiles: readonly string[];
  /** Seconds since the latest checkpoint while commits after it wait for the next one (since
   * the start before the first); 0 while it covers the head. */
  checkpointAge: () => number;
  /** The latest checkpoint's version, or -1 before the first. */
  checkpointVersion: () => number;
}

// -- cells: series as plain numbers ------------------------------------------------------------

type Labels = Record<string, string>;
interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}
interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; aggregator: 'sum'; values: Sample[] }>;
  reset(): void;
}

export interface CounterCell {
  value: number;
}

export class HistogramCell {
  /** Observations per bucket, not cumulative; the last one is +Inf. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

abstract class CellFamily<C> implements Family {
  readonly aggregator = 'sum' as const;
  protected readonly cells = new Map<string, { labels: Labels; cell: C }>();
  abstract readonly type: Family['type'];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[] = [],
  ) {}

  protected abstract make(): C;
  protected abstract samples(labels: Labels, cell: C): Sample[];

  /** The cell of one label set, made on first use; `values` in the order of `labelNames`. */
  cell(...values: string[]): C {
    const key = values.length === 1 ? values[0]! : values.join('\u0000');
    let entry = this.cells.get(key);
    if (!entry) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      entry = { labels, cell: this.make() };
      this.cells.set(key, entry);
    }
    return entry.cell;
  }

  get() {
    const values: Sample[] = [];
    for (const { labels, cell } of this.cells.values()) values.push(...this.samples(labels, cell));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    this.cells.clear();
  }
}

class CounterFamily extends CellFamily<CounterCell> {
  readonly type = 'counter';
  protected make(): CounterCell {
    return { value: 0 };
  }
  protected samples(labels: Labels, cell: CounterCell): Sample[] {
    return [{ labels, value: cell.value }];
  }
}

class HistogramFamily extends CellFamily<HistogramCell> {
  readonly type = 'histogram';
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    super(name, help, labelNames);
  }
  protected make(): HistogramCell {
    return new HistogramCell(this.bounds);
  }
  protected samples(labels: Labels, cell: HistogramCell): Sample[] {
    const out: Sample[] = [];
    let cumulative = 0;
    this.bounds.forEach((le, i) => {
      cumulative += cell.counts[i]!;
      out.push({ labels: { ...labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
    });
    out.push({ labels: { ...labels, le: '+Inf' }, value: cell.count, metricName: `${this.name}_bucket` });
    out.push({ labels, value: cell.sum, metricName: `${this.name}_sum` });
    out.push({ labels, value: cell.count, metricName: `${this.name}_count` });
    return out;
  }
}

/** A gauge (or a counter kept elsewhere) read when Prometheus scrapes. */
class ScrapedFamily implements Family {
  readonly aggregator = 'sum' as const;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    private readonly read: () => Sample[],
  ) {}
  get() {
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.read() });
  }
  reset(): void {}
}

// -- the process metrics, once per process ------------------------------------------------------

/** prom-client's process metrics that `promtool check metrics` refuses (gauges named *_total);
 * each only sums the by-type gauge of the same name without the suffix. */
const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

let processRegistry: Registry | undefined;

function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    // The event-loop delay monitor wakes the loop every `precision` ms: 20 ms halves the wake-ups
    // of prom-client's default and still sees any stall that matters.
    collectDefaultMetrics({ register: processRegistry, eventLoopMonitoringPrecision: 20 });
    for (const name of LINT_FAILING_DEFAULTS) processRegistry.removeSingleMetric(name);
  }
  return processRegistry;
}

// -- the registry's metrics ---------------------------------------------------------------------

/** A route's series, resolved when the route is registered: `answered` is all a response costs. */
export class RouteSeries {
  private readonly byCode = new Map<number, CounterCell>();
  /** Made on the first answer, so that routes never asked have no series; null: not timed. */
  private latency: HistogramCell | undefined | null;

  constructor(
    private readonly metrics: RegistryMetrics,
    readonly route: string,
    readonly method: string,
    readonly plane: Plane,
    /** False for routes whose answer is a stream: their "latency" is the stream's lifetime. */
    timed: boolean,
  ) {
    this.latency = timed ? undefined : null;
  }

  /** One answer: its status code and its time in milliseconds (Fastify's reply.elapsedTime). */
  answered(code: number, ms: number): void {
    this.counted(code);
    if (this.latency !== null) (this.latency ??= this.metrics.latencyCell(this)).observe(ms / 1000);
  }

  /** One answer, counted but not timed. */
  counted(code: number): void {
    let cell = this.byCode.get(code);
    if (cell === undefined) {
      cell = this.metrics.requestCell(this, code);
      this.byCode.set(code, cell);
    }
    cell.value++;
  }
}

/** Audit-event kinds → governance_proposals_total{status}. */
const PROPOSAL_STATUS: Readonly<Record<string, string>> = {
  proposal_received: 'received',
  committed: 'committed',
  proposal_stale: 'stale',
  proposal_expired: 'expired',
};

/** The refusal reasons of audited approvals (core/approvals.ts) → governance_approvals_total{result}. */
const REFUSAL_RESULT: Readonly<Record<string, string>> = {
  [NOT_A_SIGNER]: 'not_a_signer',
  [NO_CURRENT_SIGNER]: 'no_current_signer',
  [STALE]: 'stale',
  [EXPIRED]: 'expired',
};

/** Every result governance_approvals_total has, present from the start at 0. */
export const APPROVAL_RESULTS = [
  'accepted',
  'invalid_signature',
  'not_a_signer',
  'no_current_signer',
  'stale',
  'expired',
  'wrong_registry',
];

/** The reasons rejected_total starts with (one per SPEC §7 code but NotFound, and the
 * connection-level ones); RegistryMetrics.rejected takes others. */
export const REJECT_REASONS = [
  'bad_request',
  'stale_version',
  'gone',
  'payload_too_large',
  'unsupported_media_type',
  'bad_signature',
  'rate_limited',
  'unavailable',
  'request_timeout',
  'headers_too_large',
  'bad_http',
];

/** The audit events the log wrote, as the governance counters see them. */
export interface AuditedEvent {
  kind: string;
  reason?: string | undefined;
}

export class RegistryMetrics {
  readonly registry = new Registry();
  private readonly requests = new CounterFamily(
    'http_requests_total',
    'HTTP requests answered, by route template (unmatched: no route), method, status code and plane (read, write, ops, none).',
    ['route', 'method', 'code', 'plane'],
  );
  private readonly latency = new HistogramFamily(
    'request_latency_seconds',
    'Time from a request being read to its answer being sent, by route template, method and plane (streams are left out).',
    ['route', 'method', 'plane'],
    REQUEST_BUCKETS,
  );
  private readonly rejects = new CounterFamily(
    'rejected_total',
    'Requests refused (every error answer but 404), by reason: the error code in snake case or a finer reason (rate_limited, overloaded, frozen, ...), and connections cut before a request existed.',
    ['reason'],
  );
  private readonly proposals = new CounterFamily(
    'governance_proposals_total',
    'Proposals received, committed, gone stale and expired (audit events).',
    ['status'],
  );
  private readonly approvals = new CounterFamily(
    'governance_approvals_total',
    'Approvals accepted and refused, by result: accepted, invalid_signature (not a signed claim: logged and counted, never audited) or the reason of an audited refusal.',
    ['result'],
  );
  private readonly commitApprovals = new CounterFamily(
    'governance_commit_approvals_total',
    'Approvals carried by the commits made (divided by commits: approvals per commit).',
  );
  private readonly commitLatency = new HistogramFamily(
    'commit_latency_seconds',
    'From the committing request entering the writer queue to the commit being durable and the head moved.',
    [],
    COMMIT_BUCKETS,
  );
  private readonly verifyTime = new HistogramFamily(
    'approval_verify_seconds',
    'Time to verify one approval signature.',
    [],
    VERIFY_BUCKETS,
  );
  private readonly commitApprovalsCell = this.commitApprovals.cell();
  private readonly commitLatencyCell = this.commitLatency.cell();
  private readonly verifyCell = this.verifyTime.cell();
  /** Requests in flight (streams are left out); read by the http_requests_in_flight gauge. */
  inFlight = 0;

  constructor(private readonly sources: MetricSources) {
    // The process metrics start with the first registry, so that the event-loop figures of the
    // first scrape cover the time before it.
    processMetrics();
    const gauge = (name: string, help: string, read: () => number) =>
      new ScrapedFamily(name, help, 'gauge', () => [{ labels: {}, value: read() }]);
    const families: Family[] = [
      this.requests,
      this.latency,
      gauge(
        'http_requests_in_flight',
        'Requests being answered now (open streams are not counted: see sse_subscribers).',
        () => this.inFlight,
      ),
      this.rejects,
      new ScrapedFamily('bus_lagged_total', 'Stream subscribers dropped for falling behind (event: lagged).', 'counter', () => [
        { labels: {}, value: sources.lagged() },
      ]),
      gauge('registry_head_version', 'The head version.', sources.headVersion),
      gauge('registry_descriptors', 'Descriptors at the head (expired ones included until deleted).', sources.descriptors),
      gauge('registry_pending_proposals', 'Proposals pending approval.', sources.pendingProposals),
      this.proposals,
      this.approvals,
      this.commitApprovals,
      this.commitLatency,
      this.verifyTime,
      gauge('sse_subscribers', 'Open commit streams.', sources.subscribers),
      gauge('registry_storage_bytes', 'Bytes on disk of the log: the SQLite database and its write-ahead log.', () =>
        storageBytes(sources.storageFiles),
      ),
      gauge(
        'registry_checkpoint_age_seconds',
        'Seconds since the latest checkpoint while commits after it wait for the next one; 0 while it covers the head.',
        sources.checkpointAge,
      ),
      gauge('registry_checkpoint_version', "The latest checkpoint's version; -1 before the first.", sources.checkpointVersion),
      gauge('registry_write_ready', '1 while the write plane accepts writes, 0 while /readyz says write: false.', () =>
        sources.writeBlockers().length === 0 ? 1 : 0,
      ),
    ];
    for (const f of families) this.registry.registerMetric(f as unknown as Metric);
    for (const s of ['received', 'committed', 'stale', 'expired']) this.proposals.cell(s);
    for (const r of APPROVAL_RESULTS) this.approvals.cell(r);
    for (const r of REJECT_REASONS) this.rejects.cell(r);
  }

  /** The Prometheus text exposition: this registry's metrics, then the process's. */
  async exposition(): Promise<string> {
    this.syncUnaudited();
    const [own, proc] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return own + '\n' + proc;
  }

  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;

  /** The series of one route and method, for its hooks. */
  route(route: string, method: string, plane: Plane, timed = true): RouteSeries {
    return new RouteSeries(this, route, method, plane, timed);
  }

  private readonly unmatched = new Map<string, RouteSeries>();

  /** The series of requests no route matched, by method (one of a fixed few). */
  unmatchedRoute(method: string): RouteSeries {
    let s = this.unmatched.get(method);
    if (!s) this.unmatched.set(method, (s = this.route(UNMATCHED_ROUTE, method, 'none')));
    return s;
  }

  /** @internal RouteSeries' cells. */
  requestCell(s: RouteSeries, code: number): CounterCell {
    return this.requests.cell(s.route, s.method, String(code), s.plane);
  }

  /** @internal */
  latencyCell(s: RouteSeries): HistogramCell {
    return this.latency.cell(s.route, s.method, s.plane);
  }

  /** Counts a refused request or connection. `reason` is a stable lowercase word from a fixed
   * set in the code, never anything a client sent. */
  rejected(reason: string): void {
    this.rejects.cell(reason).value++;
  }

  /** The audit events a write made durable. */
  audited(events: readonly AuditedEvent[]): void {
    for (const e of events) {
      const status = PROPOSAL_STATUS[e.kind];
      if (status !== undefined) this.proposals.cell(status).value++;
      else if (e.kind === 'approval_accepted') this.approvals.cell('accepted').value++;
      else if (e.kind === 'approval_refused') this.approvals.cell(refusalResult(e.reason)).value++;
    }
  }

  /** A commit, `seconds` after its step was queued, carrying `approvals` approvals. */
  committed(seconds: number, approvals: number): void {
    this.commitLatencyCell.observe(seconds);
    this.commitApprovalsCell.value += approvals;
  }

  /** An ApprovalVerifier that times each verification into approval_verify_seconds. */
  timedVerifier(): ApprovalVerifier {
    const cell = this.verifyCell;
    return new (class extends ApprovalVerifier {
      override verify(publicKeyHex: string, payloadHash: string, sigHex: string): boolean {
        const start = performance.now();
        try {
          return super.verify(publicKeyHex, payloadHash, sigHex);
        } finally {
          cell.observe((performance.now() - start) / 1000);
        }
      }
    })();
  }

  private unauditedSeen = 0;

  /** invalid_signature is the writer's count of unaudited refusals: brought up to date at scrape. */
  private syncUnaudited(): void {
    const now = this.sources.unauditedRefusals();
    if (now > this.unauditedSeen) this.approvals.cell('invalid_signature').value += now - this.unauditedSeen;
    this.unauditedSeen = now;
  }
}

function refusalResult(reason: string | undefined): string {
  if (reason === undefined) return 'not_a_signer';
  const known = REFUSAL_RESULT[reason];
  if (known !== undefined) return known;
  // core/proposal.ts foreignRegistry: "the proposal is for registry X; this is Y".
  return reason.startsWith('the proposal is for registry') ? 'wrong_registry' : 'not_a_signer';
}

function storageBytes(files: readonly string[]): number {
  let total = 0;
  for (const f of files) {
    try {
      total += statSync(f).size;
    } catch {
      // absent (no WAL yet, or an in-memory database)
    }
  }
  return total;
}
