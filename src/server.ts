// Start-up, the composition root: genesis → store → replay → writer → HTTP. Reads are ready
// when `listen` returns.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import { ApprovalVerifier } from './core/crypto.js';
import { canonicalJson, formatTime } from './core/encoding.js';
import { IntegrityError, RegistryError } from './core/errors.js';
import { fastDigest } from './core/fast-digest.js';
import { checkGenesisRecord, type CheckedGenesis } from './core/records.js';
import { StartError, StoreBusyError } from './errors.js';
import { BODY_LIMIT, buildApp, type RegistryApp } from './http/app.js';
import { LoadGuard } from './http/load-guard.js';
import { SpareConnections } from './http/spare-connections.js';
import { RegistryMetrics } from './obs/metrics.js';
import { AuditedLog, within } from './pipeline/audited-log.js';
import { Checkpointer, checkpointOf } from './pipeline/checkpointer.js';
import { Follower } from './pipeline/follower.js';
import { TamperCheck } from './pipeline/tamper-check.js';
import { startTamperPass, type TamperPass } from './pipeline/tamper-pass.js';
import { Writer } from './pipeline/writer.js';
import type { HeadView } from './state/head-view.js';
import { ListingCursors } from './http/listing-cursor.js';
import { openCachedLog, openLogFrom } from './state/replay.js';
import { VersionSnapshots } from './state/version-snapshots.js';
import { Hub } from './stream/hub.js';
import { CachedStore, localCachePath, readLocalCache, writeLocalCache, type LocalCache } from './store/local-cache.js';
import { backoff, describeStore, openStore, storeTarget } from './store/open-store.js';
import { SwitchingStore } from './store/switching-store.js';
import type { Store } from './store/store.js';
import { SERVICE_VERSION } from './version.js';

export interface RunningRegistry {
  app: RegistryApp;
  writer: Writer;
  view: HeadView;
  /** The commit stream: its subscribers and its drop counts. */
  hub: Hub;
  /** Its metrics, as GET /metrics serves them. */
  metrics: RegistryMetrics;
  /** Its limits and overload state: connection caps, shedding, write rate limits. */
  guard: LoadGuard;
  /** Checkpoints and retention. */
  checkpointer: Checkpointer;
  /** Resolves when the start's integrity pass has ended. */
  verified: Promise<void>;
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
  if ((value as { type?: unknown } | null)?.type === 'registry.genesis')
    throw new StartError(
      `${path} is a genesis payload, not the genesis record: have the signers \`registry sign\` it, then run \`registry genesis assemble\` to make the record to serve`,
    );
  try {
    return checkGenesisRecord(value);
  } catch (e) {
    if (e instanceof IntegrityError) throw new IntegrityError(`the genesis record ${path} is not valid: ${e.message}`, 0);
    throw e;
  }
}

/** Refuses a database in a folder that does not exist, unless it is the data directory, which
 * is ours to create: a folder named for the database is the operator's, and a typo there must
 * not start a new, empty registry. */
export function checkDbFolder(config: Pick<Config, 'db' | 'dataDir' | 'store'>): void {
  const target = storeTarget(config);
  if (target.kind !== 'sqlite' || target.path === ':memory:') return;
  const folder = dirname(target.path);
  if (resolve(folder) !== resolve(config.dataDir) && !existsSync(folder))
    throw new StartError(`the folder of the database ${target.path} does not exist: create ${folder}, or choose another --db`);
}

const EXPIRY_SWEEP_MS = 1000;

/** Accesses that wait by design (the LISTEN of commits, the maintenance lock, the close) are not
 * timed; every other one of the store's methods is. */
const UNTIMED = new Set<PropertyKey>(['watchCommits', 'leads', 'resign', 'close']);

/** The store as the read routes, the stream's replays and the maintenance use it. On a shared log
 * an access unanswered after `timeoutMs` (a silent database) fails, as the writer's do. With
 * `answer503`, a read that fails (the database away) is a 503 with Retry-After and the reason,
 * like a failed write, not an internal error. */
function storeFor(store: Store, timeoutMs: number | undefined, answer503: boolean): Store {
  if (timeoutMs === undefined && !answer503) return store;
  return new Proxy(store, {
    get(target, key, receiver) {
      const value: unknown = Reflect.get(target, key, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!(result instanceof Promise)) return result;
        const timed = UNTIMED.has(key) ? result : within(result, timeoutMs);
        if (!answer503) return timed;
        return timed.catch((e: unknown) => {
          if (e instanceof RegistryError) throw e;
          throw new RegistryError('Unavailable', `the log could not be read: ${(e as Error).message}`, {
            retryAfter: 1,
            reason: 'store_unavailable',
          });
        });
      };
    },
  });
}

/** Opens the log; a PostgreSQL log that cannot be reached is tried again with back-off (from
 * 250 ms, doubling, up to 5 s between tries) for `storeConnectRetryMs`, each failure logged. When
 * this instance has a cache of its own (src/store/local-cache.ts), it does not wait: the log is a
 * SwitchingStore serving the cache until the database answers. */
async function openStoreRetrying(
  config: Config,
  logger: Logger,
  genesis: CheckedGenesis,
): Promise<{ store: Store; cached?: SwitchingStore }> {
  const target = storeTarget(config);
  const giveUpAt = Date.now() + (target.kind === 'postgres' ? config.storeConnectRetryMs : 0);
  const delays = backoff();
  for (let attempt = 1; ; attempt++) {
    const delay = delays.next().value;
    try {
      return { store: await openStore(config) };
    } catch (e) {
      if (e instanceof StoreBusyError) throw e;
      const message = (e as Error).message;
      // Read once, after the first failure: a start that reaches its log never reads it.
      const cache =
        target.kind === 'postgres' && attempt === 1
          ? readLocalCache(localCachePath(config.dataDir), (problem) => logger.warn({ problem }, 'the local cache cannot be read'))
          : undefined;
      if (cache?.genesisHash === genesis.hash) {
        const db = describeStore(target);
        logger.error(
          { db, version: cache.checkpoint.version },
          `${message}: serving reads from the state cached at this version, and trying again`,
        );
        const genesisRow = {
          version: 0,
          hash: genesis.hash,
          text: canonicalJson(genesis.record),
          payloadHash: genesis.record.payload_hash,
        };
        const cached = new SwitchingStore(new CachedStore(cache, genesisRow, `the PostgreSQL log at ${db} is unreachable`), {
          connect: () => openStore(config),
          failed: (err, retryInMs) => logger.error({ db, retry_in_ms: retryInMs }, `${err.message}: trying again`),
        });
        return { store: cached, cached };
      }
      if (Date.now() + delay > giveUpAt)
        throw new StartError(
          target.kind === 'postgres' && config.storeConnectRetryMs > 0
            ? `${message} (gave up after ${config.storeConnectRetryMs} ms)`
            : message,
        );
      logger.error({ db: describeStore(target), retry_in_ms: delay }, `${message}: trying again`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

export interface StartOptions {
  /** Wraps the store the writer writes through (tests inject store faults with it). */
  wrapStore?: (store: Store) => Store;
  /** Logs up to this many commits are verified in full (README → Tamper evidence) before
   * reads are served; longer ones in the background while reads are served. */
  foregroundVerifyLimit?: number;
}

/** See StartOptions.foregroundVerifyLimit: a few hundred records check in tens of milliseconds. */
const FOREGROUND_VERIFY_LIMIT = 256;

/** Serves the registry whose genesis record is at `config.genesis` (the CLI makes a
 * development genesis when none is configured). */
export async function startRegistry(
  config: Config & { genesis: string },
  logger: Logger,
  options: StartOptions = {},
): Promise<RunningRegistry> {
  const genesis = loadGenesis(config.genesis);
  checkDbFolder(config);
  const target = storeTarget(config);
  // The SQLite file, or undefined when the log is in PostgreSQL.
  const file = target.kind === 'sqlite' ? target.path : undefined;
  if (file !== undefined && file !== ':memory:' && resolve(dirname(file)) === resolve(config.dataDir))
    mkdirSync(config.dataDir, { recursive: true });
  const { store, cached } = await openStoreRetrying(config, logger, genesis);
  let sweep: NodeJS.Timeout | undefined;
  let checking: Promise<void> = Promise.resolve();
  let pass: TamperPass | undefined;
  let checkpointer: Checkpointer | undefined;
  let follower: Follower | undefined;
  /** Whether the start's integrity pass ran to its end and found nothing. */
  let logVerified = false;
  /** Set when the pass is stopped (a stop, a failed start): it ended without checking everything. */
  let passStopped = false;
  try {
    const digest = await fastDigest();
    const loadStarted = performance.now();
    const opened = cached ? await openCachedLog(store, genesis, digest) : await openLogFrom(store, genesis, digest);
    const view = opened.view;
    logger.info(
      {
        version: view.head.version,
        checkpoint: opened.checkpoint?.version ?? null,
        replayed: opened.replayed,
        descriptors: view.state.size,
        ms: Math.round(performance.now() - loadStarted),
      },
      opened.checkpoint ? 'loaded the latest checkpoint and replayed the commits after it' : 'replayed the log from the genesis',
    );
    const shared = store.watchCommits !== undefined;
    /** Cluster mode: how long any store access may go unanswered (README → Configuration). */
    const storeTimeout = shared ? config.storeTimeoutMs : undefined;
    const log = new AuditedLog(options.wrapStore?.(store) ?? store, logger, {
      slowMs: config.storeSlowMs,
      timeoutMs: storeTimeout,
      shared,
    });
    // Metrics read the registry when scraped; the pieces they read are made below.
    const writeBlockers = (): string[] => {
      const overloaded = guard.overloaded();
      // The store failing or slow, the registry frozen (the writer's), then overload (the guard's).
      return [...writer.blockers(), ...(overloaded ? [overloaded] : [])];
    };
    const metrics: RegistryMetrics = new RegistryMetrics({
      headVersion: () => view.head.version,
      descriptors: () => view.state.size,
      pendingProposals: () => writer.pendingCount,
      subscribers: () => hub.size,
      lagged: () => hub.lagged,
      unauditedRefusals: () => writer.refusals.unaudited,
      writeBlockers,
      storageFiles: file === undefined || file === ':memory:' ? [] : [file, `${file}-wal`],
      checkpointAge: () => checkpointer?.ageSeconds() ?? 0,
      checkpointVersion: () => checkpointer?.latest?.version ?? -1,
    });
    log.onWritten = (events) => metrics.audited(events);
    // Requests in flight are counted once, by the metrics' hooks; the guard reads that count.
    const guard = new LoadGuard(config, { logger, bodyLimit: BODY_LIMIT, inFlight: metrics });
    const cursorKey = await store.setting('cursor_key', () => randomBytes(32).toString('hex'));
    const cursors = new ListingCursors(Buffer.from(cursorKey, 'hex'));
    /** Cluster mode: this instance's own checkpoint, for a start that finds the log unreachable
     * (src/store/local-cache.ts), of the state now. Written only from a verified state, never from
     * the cache itself: undefined when this instance must not write one. */
    const cacheOfNow = (): LocalCache | undefined => {
      if (!shared || !logVerified || !writer.trusted || cached?.onCache) return undefined;
      const kept = view.recentRecord(view.head.version);
      if (!kept) return undefined;
      const text = kept.body.toString('utf8');
      const { info, entries } = checkpointOf(view, formatTime(Date.now()));
      const payloadHash = (JSON.parse(text) as { payload_hash: string }).payload_hash;
      return {
        genesisHash: genesis.hash,
        checkpoint: info,
        record: { version: info.version, hash: info.hash, text, payloadHash },
        entries,
        cursorKey,
      };
    };
    // One write at a time (they share a temporary file). A write asked for while one is queued
    // adds nothing: the queued one takes the state when it starts.
    let cacheWrites: Promise<void> = Promise.resolve();
    let cacheQueued = false;
    const saveCache = (): Promise<void> => {
      if (!shared || cacheQueued) return cacheWrites;
      cacheQueued = true;
      cacheWrites = cacheWrites.then(async () => {
        cacheQueued = false;
        const cache = cacheOfNow();
        if (!cache) return;
        const started = performance.now();
        try {
          await writeLocalCache(localCachePath(config.dataDir), cache);
          logger.info(
            { version: cache.checkpoint.version, descriptors: cache.entries.length, ms: Math.round(performance.now() - started) },
            'local cache written',
          );
        } catch (err) {
          logger.error({ err }, 'the local cache could not be written');
        }
      });
      return cacheWrites;
    };
    const snapshots = new VersionSnapshots(storeFor(store, storeTimeout, true), genesis.payload.signer_set, undefined, digest, (problem) =>
      writer.distrust(problem),
    );
    const writer = new Writer({
      log,
      view,
      registryId: genesis.payload.registry_id,
      logger,
      verifier: metrics.timedVerifier(),
      observer: metrics,
      // A PostgreSQL log is shared by every instance of a cluster (README → PostgreSQL and cluster mode).
      shared,
    });
    const hub = new Hub(storeFor(store, storeTimeout, false), snapshots, () => view.head, {
      heartbeatMs: config.streamHeartbeatMs,
      ringSize: config.streamRingSize,
      maxQueueFrames: config.streamQueueFrames,
      maxQueueBytes: config.streamQueueBytes,
      maxSubscribers: config.streamMaxSubscribers,
      maxPerAddress: config.streamMaxPerAddress,
      maxReplay: config.streamMaxReplay,
    });
    writer.on('commit', (e) => hub.publish(e));
    checkpointer = new Checkpointer({
      store: storeFor(store, storeTimeout, false),
      view,
      logger,
      every: config.checkpointEvery,
      intervalMs: config.checkpointIntervalMs,
      retainCommits: config.retainCommits,
      retainDays: config.retainDays,
      settledTtlMs: config.settledPayloadTtlMs,
      trusted: () => writer.trusted,
      settledUnpruned: () => writer.settledUnprunedCount,
      settledPruned: (n) => writer.settledPruned(n),
      pruning: (horizon) => {
        view.forgetBelow(horizon);
        snapshots.forgetBelow(horizon);
      },
      leads: store.leads?.bind(store),
      resign: store.resign?.bind(store),
      checkpointed: () => void saveCache(),
    });
    const points = checkpointer;
    writer.on('commit', () => points.afterCommit());
    if (opened.checkpointProblem) writer.distrust(opened.checkpointProblem);
    // Tamper evidence: the genesis and the head record now; every record, the proposals table
    // and the audit chain in a worker thread (writes wait for it, reads do not); the writer
    // checks the pending proposals as it loads them.
    const genesisText = canonicalJson(genesis.record);
    const verifier = new ApprovalVerifier();
    writer.verifying('starting');
    await new TamperCheck({ store, view, genesisText, verifier, sink: writer }).checkStart();
    await checkpointer.open();
    const verifyStarted = performance.now();
    // The worker thread opens the SQLite file; a log in memory or in PostgreSQL is checked in slices
    // here, and so is a short log, which is checked before reads are served: a worker thread would
    // take longer to start than the check takes.
    const foreground = !cached && view.head.version <= (options.foregroundVerifyLimit ?? FOREGROUND_VERIFY_LIMIT);
    const verifyLog = () => {
      pass = startTamperPass({ path: file, inProcess: foreground, store, view, genesisText, verifier, sink: writer });
      return pass.done;
    };
    if (cached)
      writer.verifying(
        `the PostgreSQL log is unreachable: serving reads from this instance's cache of version ${view.head.version} until it answers`,
      );
    // From the cache: the whole log is verified once it is reachable, writes waiting until then.
    const verifying = cached ? cached.connected.then((ok) => (ok ? verifyLog() : undefined)) : verifyLog();
    checking = verifying.then((findings) => {
      // Closed while serving from the cache: nothing was verified.
      if (findings === undefined) return;
      logVerified = findings === 0 && !passStopped;
      logger[findings ? 'error' : 'info'](
        { version: view.head.version, findings, ms: Math.round(performance.now() - verifyStarted) },
        findings ? 'the log failed verification: writes are refused' : 'the log verified',
      );
      // A log long past its latest checkpoint (one written before checkpoints, or with them off)
      // gets one as soon as it is trusted.
      points.afterCommit();
      void saveCache();
    });
    if (foreground) await checking;
    await writer.open();
    if (store.watchCommits) {
      follower = new Follower({ store, writer, logger, pollMs: config.followPollMs });
      await follower.start();
    }
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
    sweep = setInterval(() => {
      void writer.expireNow().catch((err) => logger.error({ err }, 'expiry sweep failed'));
      void points.tick().catch((err) => logger.error({ err }, 'checkpoint tick failed'));
    }, EXPIRY_SWEEP_MS);
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
        store: storeFor(store, storeTimeout, true),
        snapshots,
        cursors,
        hub,
        closing: () => closing,
        operatorToken: config.operatorToken,
        guard,
        writeBlockers,
        readBlocker: () => writer.stale,
        metrics,
      },
      logger,
    );
    const spare = new SpareConnections(app.server);
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    logger.info({ registry_id: genesis.payload.registry_id, version: view.head.version, db: describeStore(target) }, 'registry ready');
    const timer = sweep;
    const following = follower;
    return {
      app,
      writer,
      view,
      hub,
      metrics,
      guard,
      checkpointer: points,
      verified: checking,
      url: `http://${host}:${port}`,
      async close() {
        closing = true;
        clearInterval(timer);
        // Streams never end by themselves: end them, or closing would wait for their clients.
        hub.close();
        passStopped = true;
        const stopping = Promise.all([pass?.stop(), points.stop(), following?.stop(), cached?.stopTrying()]);
        await spare.dropWhile(app.close());
        await stopping;
        await checking;
        await writer.drain();
        // The next start may find the log unreachable: it starts from here.
        await saveCache();
        await store.close();
      },
    };
  } catch (e) {
    clearInterval(sweep);
    passStopped = true;
    await Promise.all([pass?.stop(), checkpointer?.stop(), follower?.stop(), cached?.stopTrying()]);
    await checking;
    await store.close();
    throw e;
  }
}
