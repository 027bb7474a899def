// Start-up, the composition root: genesis → store → replay → writer → HTTP. Reads are ready
// when `listen` returns.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import { IntegrityError } from './core/errors.js';
import { fastDigest } from './core/fast-digest.js';
import { checkGenesisRecord, type CheckedGenesis } from './core/records.js';
import { StartError, StoreBusyError } from './errors.js';
import { buildApp, type RegistryApp } from './http/app.js';
import { AuditedLog } from './pipeline/audited-log.js';
import { Writer } from './pipeline/writer.js';
import type { HeadView } from './state/head-view.js';
import { ListingCursors } from './http/listing-cursor.js';
import { openLog } from './state/replay.js';
import { VersionSnapshots } from './state/version-snapshots.js';
import { Hub } from './stream/hub.js';
import { SqliteStore } from './store/sqlite-store.js';
import { SERVICE_VERSION } from './version.js';

export interface RunningRegistry {
  app: RegistryApp;
  writer: Writer;
  view: HeadView;
  /** The commit stream: its subscribers and its drop counts. */
  hub: Hub;
  url: string;
  close(): Promise<void>;
}

export function loadGenesis(path: string): CheckedGenesis {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new StartError(`cannot read the genesis record ${path}: ${(e as Error).message}`);
  }
  try {
    return checkGenesisRecord(value);
  } catch (e) {
    if (e instanceof IntegrityError) throw new IntegrityError(`the genesis record ${path} is not valid: ${e.message}`, 0);
    throw e;
  }
}

const EXPIRY_SWEEP_MS = 1000;

/** Serves the registry whose genesis record is at `config.genesis` (the CLI makes a
 * development genesis when none is configured). */
export async function startRegistry(config: Config & { genesis: string }, logger: Logger): Promise<RunningRegistry> {
  const genesis = loadGenesis(config.genesis);
  if (config.db !== ':memory:') mkdirSync(dirname(config.db), { recursive: true });
  let store: SqliteStore;
  try {
    store = new SqliteStore({ path: config.db, synchronous: config.synchronous });
  } catch (e) {
    throw e instanceof StoreBusyError ? e : new StartError((e as Error).message);
  }
  let sweep: NodeJS.Timeout | undefined;
  try {
    const view = await openLog(store, genesis, await fastDigest());
    const log = new AuditedLog(store, logger);
    const cursors = new ListingCursors(Buffer.from(await store.setting('cursor_key', () => randomBytes(32).toString('hex')), 'hex'));
    const snapshots = new VersionSnapshots(store, genesis.payload.signer_set);
    const writer = new Writer({ log, view, registryId: genesis.payload.registry_id, logger });
    const hub = new Hub(store, snapshots, () => view.head, {
      heartbeatMs: config.streamHeartbeatMs,
      ringSize: config.streamRingSize,
      maxQueueFrames: config.streamQueueFrames,
      maxQueueBytes: config.streamQueueBytes,
      maxSubscribers: config.streamMaxSubscribers,
      maxPerAddress: config.streamMaxPerAddress,
      maxReplay: config.streamMaxReplay,
    });
    writer.on('commit', (e) => hub.publish(e));
    await writer.open();
    writer.on('commit', (e) =>
      logger.info(
        {
          version: e.record.version,
          hash: e.hash,
          proposal_id: e.record.payload_hash,
          signer_ids: e.record.approvals.map((a) => a.signer_id),
          changed_count: e.changed.length,
        },
        'committed',
      ),
    );
    sweep = setInterval(() => void writer.expireNow().catch((err) => logger.error({ err }, 'expiry sweep failed')), EXPIRY_SWEEP_MS);
    sweep.unref();
    let closing = false;
    const app = buildApp(
      {
        registryId: genesis.payload.registry_id,
        genesisHash: genesis.hash,
        serviceVersion: SERVICE_VERSION,
        view,
        writer,
        log,
        store,
        snapshots,
        cursors,
        hub,
        closing: () => closing,
      },
      logger,
    );
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    logger.info({ registry_id: genesis.payload.registry_id, version: view.head.version, db: config.db }, 'registry ready');
    const timer = sweep;
    return {
      app,
      writer,
      view,
      hub,
      url: `http://${host}:${port}`,
      async close() {
        closing = true;
        clearInterval(timer);
        // Streams never end by themselves: end them, or closing would wait for their clients.
        hub.close();
        await app.close();
        await writer.drain();
        await store.close();
      },
    };
  } catch (e) {
    clearInterval(sweep);
    await store.close();
    throw e;
  }
}
