// Settings from a JSON config file, the environment and command-line flags, in that order of
// precedence (flags win). Validated at once: a bad setting stops the start with a clear message.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** SQLite's `synchronous` settings that keep a commit durable once acknowledged (or nearly). */
export const SYNCHRONOUS_MODES = ['FULL', 'NORMAL', 'EXTRA'] as const;
export type Synchronous = (typeof SYNCHRONOUS_MODES)[number];

export interface Config {
  /** Path of the genesis record; unset: a development registry under dataDir. */
  genesis: string | undefined;
  /** SQLite file, or ':memory:'; by default registry.db in dataDir. */
  db: string;
  /** Where the log lives (src/store/open-store.ts): unset, SQLite at `db`; `sqlite:<file>`;
   * `postgres://…` or `postgresql://…`, PostgreSQL (README → PostgreSQL). */
  store: string | undefined;
  host: string;
  port: number;
  synchronous: Synchronous;
  logLevel: LogLevel;
  /** Where the database lives by default, and the development registry's genesis and keys. */
  dataDir: string;
  /** The commit stream: a comment this often keeps idle connections open. */
  streamHeartbeatMs: number;
  /** Recent commits kept in memory for resumes; older ones are replayed from the log. */
  streamRingSize: number;
  /** Frames and bytes a subscriber may have waiting before it is dropped as lagged. */
  streamQueueFrames: number;
  streamQueueBytes: number;
  /** Subscribers in all (503 beyond) and per client address (429 beyond). */
  streamMaxSubscribers: number;
  streamMaxPerAddress: number;
  /** The most commits a stream resume replays; older resume points get `event: reset`. */
  streamMaxReplay: number;
  /** A store write running longer than this makes the write plane unready (/readyz) and sheds
   * new writes until it ends. */
  storeSlowMs: number;
  /** The bearer token of the operator endpoints (POST /ops/freeze, /ops/thaw), read from
   * operatorTokenFile when that is set; unset: the endpoints answer 404. */
  operatorToken: string | undefined;
  operatorTokenFile: string | undefined;
  /** Limits and overload (README → Operations): a whole request must arrive within
   * requestTimeoutMs, its request line and headers within headersTimeoutMs; an idle keep-alive
   * connection is closed after keepAliveTimeoutMs. */
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Sockets held in all (lowered to fit the open-file limit) and per client address; more are closed at accept. */
  maxConnections: number;
  maxConnectionsPerAddress: number;
  /** Request line and headers together (431 beyond), and the request target alone (414 beyond). */
  maxHeaderBytes: number;
  maxUrlLength: number;
  /** Requests in flight from which reads, and (lower) writes, are shed with 503; 0: never. */
  shedReadsInFlight: number;
  shedWritesInFlight: number;
  /** Mean event-loop delay over 500 ms above which reads, and (lower) writes, are shed; 0: never. */
  shedReadsEventLoopDelayMs: number;
  shedWritesEventLoopDelayMs: number;
  /** Write token buckets (429 beyond): requests a second and burst, per client address and
   * per signer; a rate of 0 turns the limit off. */
  writeRatePerAddress: number;
  writeBurstPerAddress: number;
  writeRatePerSigner: number;
  writeBurstPerSigner: number;
  /** Refused writes per client address, in KiB of their bodies: a bucket refilling this many KiB
   * a second, holding at most the burst (429 beyond, before the body is read); 0: no limit.
   * What a party without a key can make the service spend is in proportion to the bytes it
   * sends (parsing and hashing them), and this is what bounds it per address. */
  refusedKibPerAddress: number;
  refusedBurstKibPerAddress: number;
  /** Bytes of request bodies in progress, in all (503 beyond) and per client address (429 beyond). */
  maxBodyBytesInFlight: number;
  maxBodyBytesPerAddress: number;
  /** Checkpoints (README → Durability): one every this many commits (0: none by count), and one
   * after this many ms when a commit came since the last (0: none by time). */
  checkpointEvery: number;
  checkpointIntervalMs: number;
  /** Retention: the horizon is the newest checkpoint at least retainCommits commits behind the
   * head and at least retainDays days old (each 0: no condition; both 0: nothing is pruned).
   * Older checkpoints are dropped and the records of older commits pruned (410 Gone), never the
   * genesis nor a signer-set change. */
  retainCommits: number;
  retainDays: number;
  /** Payloads of stale and expired proposals are pruned this long after they settle; until then
   * they count against the cap of pending proposals. */
  settledPayloadTtlMs: number;
  /** Cluster mode (a PostgreSQL store): each instance catches up with the shared log when told of
   * a commit, and at least this often (a notification lost while its connection was down). */
  followPollMs: number;
  /** How long a start keeps trying to reach a PostgreSQL log that refuses connections, with
   * back-off, before it gives up (0: one try). */
  storeConnectRetryMs: number;
  /** Cluster mode: a store access (a query, a write's transaction) that has not answered in this
   * long fails; a write answers 503. A lost host can leave a connection unanswered rather than
   * refused (a machine gone, a network partition): without a limit the request would wait for
   * TCP to give up, and every write behind it too. */
  storeTimeoutMs: number;
}

/** Integer settings: name → [minimum, maximum]. */
const INTEGER_RANGES = {
  streamHeartbeatMs: [100, 3_600_000],
  streamRingSize: [1, 1_000_000],
  streamQueueFrames: [1, 1_000_000],
  streamQueueBytes: [1024, 1024 ** 3],
  streamMaxSubscribers: [1, 1_000_000],
  streamMaxPerAddress: [1, 1_000_000],
  streamMaxReplay: [1, Number.MAX_SAFE_INTEGER],
  storeSlowMs: [10, 3_600_000],
  requestTimeoutMs: [1000, 3_600_000],
  headersTimeoutMs: [100, 3_600_000],
  keepAliveTimeoutMs: [100, 3_600_000],
  maxConnections: [1, 10_000_000],
  maxConnectionsPerAddress: [1, 10_000_000],
  maxHeaderBytes: [1024, 1024 * 1024],
  maxUrlLength: [256, 1024 * 1024],
  shedReadsInFlight: [0, 10_000_000],
  shedWritesInFlight: [0, 10_000_000],
  shedReadsEventLoopDelayMs: [0, 3_600_000],
  shedWritesEventLoopDelayMs: [0, 3_600_000],
  writeRatePerAddress: [0, 1_000_000],
  writeBurstPerAddress: [1, 1_000_000],
  writeRatePerSigner: [0, 1_000_000],
  writeBurstPerSigner: [1, 1_000_000],
  refusedKibPerAddress: [0, 1_000_000_000],
  refusedBurstKibPerAddress: [1, 1_000_000_000],
  maxBodyBytesInFlight: [1024 * 1024, 2 ** 40],
  maxBodyBytesPerAddress: [1024 * 1024, 2 ** 40],
  checkpointEvery: [0, 1_000_000_000],
  checkpointIntervalMs: [0, 365 * 86_400_000],
  retainCommits: [0, Number.MAX_SAFE_INTEGER],
  retainDays: [0, 100_000],
  settledPayloadTtlMs: [0, 365 * 86_400_000],
  followPollMs: [10, 3_600_000],
  storeConnectRetryMs: [0, 86_400_000],
  storeTimeoutMs: [100, 3_600_000],
} as const;

export const DEFAULTS: Config = {
  genesis: undefined,
  db: 'data/registry.db',
  store: undefined,
  host: '127.0.0.1',
  port: 8080,
  synchronous: 'FULL',
  logLevel: 'info',
  dataDir: 'data',
  streamHeartbeatMs: 15_000,
  streamRingSize: 1024,
  streamQueueFrames: 1024,
  streamQueueBytes: 4 * 1024 * 1024,
  streamMaxSubscribers: 20_000,
  streamMaxPerAddress: 2_000,
  streamMaxReplay: 100_000,
  storeSlowMs: 1000,
  operatorToken: undefined,
  operatorTokenFile: undefined,
  requestTimeoutMs: 30_000,
  headersTimeoutMs: 10_000,
  keepAliveTimeoutMs: 72_000,
  maxConnections: 25_000,
  maxConnectionsPerAddress: 2_500,
  maxHeaderBytes: 16 * 1024,
  maxUrlLength: 13 * 1024,
  shedReadsInFlight: 4096,
  shedWritesInFlight: 1024,
  shedReadsEventLoopDelayMs: 500,
  shedWritesEventLoopDelayMs: 100,
  writeRatePerAddress: 100,
  writeBurstPerAddress: 500,
  writeRatePerSigner: 50,
  writeBurstPerSigner: 500,
  refusedKibPerAddress: 1024,
  refusedBurstKibPerAddress: 8192,
  maxBodyBytesInFlight: 64 * 1024 * 1024,
  maxBodyBytesPerAddress: 8 * 1024 * 1024,
  checkpointEvery: 1000,
  checkpointIntervalMs: 3_600_000,
  retainCommits: 0,
  retainDays: 0,
  settledPayloadTtlMs: 300_000,
  followPollMs: 1000,
  storeConnectRetryMs: 60_000,
  storeTimeoutMs: 30_000,
};

/** Setting name → environment variable. */
export const ENV_NAMES: Record<keyof Config, string> = {
  genesis: 'REGISTRY_GENESIS',
  db: 'REGISTRY_DB',
  store: 'REGISTRY_STORE',
  host: 'HOST',
  port: 'PORT',
  synchronous: 'REGISTRY_SYNCHRONOUS',
  logLevel: 'LOG_LEVEL',
  dataDir: 'REGISTRY_DATA_DIR',
  streamHeartbeatMs: 'REGISTRY_STREAM_HEARTBEAT_MS',
  streamRingSize: 'REGISTRY_STREAM_RING_SIZE',
  streamQueueFrames: 'REGISTRY_STREAM_QUEUE_FRAMES',
  streamQueueBytes: 'REGISTRY_STREAM_QUEUE_BYTES',
  streamMaxSubscribers: 'REGISTRY_STREAM_MAX_SUBSCRIBERS',
  streamMaxPerAddress: 'REGISTRY_STREAM_MAX_PER_ADDRESS',
  streamMaxReplay: 'REGISTRY_STREAM_MAX_REPLAY',
  storeSlowMs: 'REGISTRY_STORE_SLOW_MS',
  operatorToken: 'REGISTRY_OPERATOR_TOKEN',
  operatorTokenFile: 'REGISTRY_OPERATOR_TOKEN_FILE',
  requestTimeoutMs: 'REGISTRY_REQUEST_TIMEOUT_MS',
  headersTimeoutMs: 'REGISTRY_HEADERS_TIMEOUT_MS',
  keepAliveTimeoutMs: 'REGISTRY_KEEP_ALIVE_TIMEOUT_MS',
  maxConnections: 'REGISTRY_MAX_CONNECTIONS',
  maxConnectionsPerAddress: 'REGISTRY_MAX_CONNECTIONS_PER_ADDRESS',
  maxHeaderBytes: 'REGISTRY_MAX_HEADER_BYTES',
  maxUrlLength: 'REGISTRY_MAX_URL_LENGTH',
  shedReadsInFlight: 'REGISTRY_SHED_READS_IN_FLIGHT',
  shedWritesInFlight: 'REGISTRY_SHED_WRITES_IN_FLIGHT',
  shedReadsEventLoopDelayMs: 'REGISTRY_SHED_READS_EVENT_LOOP_DELAY_MS',
  shedWritesEventLoopDelayMs: 'REGISTRY_SHED_WRITES_EVENT_LOOP_DELAY_MS',
  writeRatePerAddress: 'REGISTRY_WRITE_RATE_PER_ADDRESS',
  writeBurstPerAddress: 'REGISTRY_WRITE_BURST_PER_ADDRESS',
  writeRatePerSigner: 'REGISTRY_WRITE_RATE_PER_SIGNER',
  writeBurstPerSigner: 'REGISTRY_WRITE_BURST_PER_SIGNER',
  refusedKibPerAddress: 'REGISTRY_REFUSED_KIB_PER_ADDRESS',
  refusedBurstKibPerAddress: 'REGISTRY_REFUSED_BURST_KIB_PER_ADDRESS',
  maxBodyBytesInFlight: 'REGISTRY_MAX_BODY_BYTES_IN_FLIGHT',
  maxBodyBytesPerAddress: 'REGISTRY_MAX_BODY_BYTES_PER_ADDRESS',
  checkpointEvery: 'REGISTRY_CHECKPOINT_EVERY',
  checkpointIntervalMs: 'REGISTRY_CHECKPOINT_INTERVAL_MS',
  retainCommits: 'REGISTRY_RETAIN_COMMITS',
  retainDays: 'REGISTRY_RETAIN_DAYS',
  settledPayloadTtlMs: 'REGISTRY_SETTLED_PAYLOAD_TTL_MS',
  followPollMs: 'REGISTRY_FOLLOW_POLL_MS',
  storeConnectRetryMs: 'REGISTRY_STORE_CONNECT_RETRY_MS',
  storeTimeoutMs: 'REGISTRY_STORE_TIMEOUT_MS',
};

type Raw = Partial<Record<keyof Config, unknown>>;

export function loadConfig(flags: Raw & { config?: string }, env: NodeJS.ProcessEnv = process.env): Config {
  const file = flags.config ?? env.REGISTRY_CONFIG;
  const fromFile: Raw = file ? readConfigFile(file) : {};
  const fromEnv: Raw = {};
  for (const [key, name] of Object.entries(ENV_NAMES) as [keyof Config, string][]) {
    if (env[name] !== undefined && env[name] !== '') fromEnv[key] = env[name];
  }
  const fromFlags: Raw = {};
  for (const key of Object.keys(DEFAULTS) as (keyof Config)[])
    if (flags[key] !== undefined && !NOT_FLAGS.includes(key)) fromFlags[key] = flags[key];
  const raw: Raw = { ...fromFile, ...fromEnv, ...fromFlags };
  const dataDir = raw.dataDir === undefined ? DEFAULTS.dataDir : text(raw.dataDir, 'dataDir');
  const config: Config = {
    genesis: raw.genesis === undefined ? undefined : text(raw.genesis, 'genesis'),
    db: raw.db === undefined ? join(dataDir, 'registry.db') : text(raw.db, 'db'),
    store: raw.store === undefined ? undefined : text(raw.store, 'store'),
    host: raw.host === undefined ? DEFAULTS.host : text(raw.host, 'host'),
    port: raw.port === undefined ? DEFAULTS.port : port(raw.port),
    synchronous: raw.synchronous === undefined ? DEFAULTS.synchronous : oneOf(raw.synchronous, 'synchronous', SYNCHRONOUS_MODES),
    logLevel: raw.logLevel === undefined ? DEFAULTS.logLevel : oneOf(raw.logLevel, 'logLevel', LOG_LEVELS),
    dataDir,
    ...operatorToken(raw),
    ...(Object.fromEntries(
      Object.entries(INTEGER_RANGES).map(([name, [min, max]]) => {
        const v = raw[name as keyof Config];
        return [name, v === undefined ? DEFAULTS[name as keyof typeof INTEGER_RANGES] : integer(v, name, min, max)];
      }),
    ) as Pick<Config, keyof typeof INTEGER_RANGES>),
  };
  // Node refuses a headers timeout longer than the request timeout.
  if (config.headersTimeoutMs > config.requestTimeoutMs)
    throw new ConfigError(`headersTimeoutMs (${config.headersTimeoutMs}) must not exceed requestTimeoutMs (${config.requestTimeoutMs})`);
  return config;
}

/** Settings that are never command-line flags: a secret in argv is visible to every local
 * user (ps). Set them in the environment or the config file, or through a file (operatorTokenFile). */
export const NOT_FLAGS: readonly (keyof Config)[] = ['operatorToken'];

/** Operator tokens shorter than this are refused: the endpoints answer anyone who guesses one. */
export const MIN_OPERATOR_TOKEN_LENGTH = 16;

/** The operator token, from operatorToken or from the file operatorTokenFile names (its
 * content, without the trailing newline), never both. */
function operatorToken(raw: Raw): Pick<Config, 'operatorToken' | 'operatorTokenFile'> {
  const file = raw.operatorTokenFile === undefined ? undefined : text(raw.operatorTokenFile, 'operatorTokenFile');
  if (file !== undefined && raw.operatorToken !== undefined) throw new ConfigError('set operatorToken or operatorTokenFile, not both');
  let token: string | undefined;
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new ConfigError(`cannot read the operator token file ${file}: ${(e as Error).message}`);
    }
  } else if (raw.operatorToken !== undefined) token = text(raw.operatorToken, 'operatorToken');
  if (token !== undefined && (token.length < MIN_OPERATOR_TOKEN_LENGTH || /\s/.test(token)))
    throw new ConfigError(`the operator token must be at least ${MIN_OPERATOR_TOKEN_LENGTH} characters, without white space`);
  return { operatorToken: token, operatorTokenFile: file };
}

function integer(v: unknown, name: string, min: number, max: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,16}$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, not ${String(v)}`);
  return n;
}

function readConfigFile(path: string): Raw {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ConfigError(`cannot read the config file ${path}: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ConfigError(`the config file ${path} must hold a JSON object`);
  const unknown = Object.keys(value).filter((k) => !(k in DEFAULTS));
  if (unknown.length) throw new ConfigError(`the config file ${path} has unknown settings: ${unknown.join(', ')}`);
  return value;
}

function text(v: unknown, name: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${name} must be a non-empty string`);
  return v;
}

function port(v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`port must be an integer from 0 to 65535, not ${String(v)}`);
  return n;
}

function oneOf<T extends string>(v: unknown, name: string, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}, not ${String(v)}`);
  }
  return v as T;
}
