// What the route modules are given: the read model, the writer and the log. No rules here.
import type { RegistryMetrics } from '../obs/metrics.js';
import type { AuditedLog } from '../pipeline/audited-log.js';
import type { Writer } from '../pipeline/writer.js';
import type { HeadView } from '../state/head-view.js';
import type { VersionSnapshots } from '../state/version-snapshots.js';
import type { Hub } from '../stream/hub.js';
import type { ListingCursors } from './listing-cursor.js';
import type { LoadGuard } from './load-guard.js';
import type { Store } from '../store/store.js';

export interface RegistryContext {
  registryId: string;
  genesisHash: string;
  serviceVersion: string;
  view: HeadView;
  writer: Writer;
  /** The writer's log: readiness reports its store problems. */
  log: AuditedLog;
  /** Reads outside the writer's queue. */
  store: Store;
  /** Past versions' descriptors, rebuilt from the log. */
  snapshots: VersionSnapshots;
  cursors: ListingCursors;
  /** The commit stream's subscribers. */
  hub: Hub;
  /** True once shutdown has begun: new requests are turned away with 503. */
  closing: () => boolean;
  /** Timeouts, connection caps, overload shedding and write rate limits (load-guard.ts);
   * `guard.overloaded()` says why writes are being shed now, or undefined. */
  guard: LoadGuard;
  /** Why the write plane refuses writes now, one reason each; empty when it accepts them.
   * /readyz answers it, and the registry_write_ready gauge reads it. */
  writeBlockers: () => string[];
  /** Why this instance serves no reads it can vouch for (cluster mode: its head is stale for good),
   * or undefined: /readyz then answers 503. */
  readBlocker?: () => string | undefined;
  /** This registry's metrics (GET /metrics). */
  metrics: RegistryMetrics;
  /** The bearer token of the operator endpoints (freeze, thaw); unset: they answer 404. */
  operatorToken?: string | undefined;
}
