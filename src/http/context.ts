// What the route modules are given: the read model, the writer and the log. No rules here.
import type { AuditedLog } from '../pipeline/audited-log.js';
import type { Writer } from '../pipeline/writer.js';
import type { HeadView } from '../state/head-view.js';
import type { VersionSnapshots } from '../state/version-snapshots.js';
import type { Hub } from '../stream/hub.js';
import type { ListingCursors } from './listing-cursor.js';
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
}
