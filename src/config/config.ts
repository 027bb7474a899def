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
} as const;

export const DEFAULTS: Config = {
  genesis: undefined,
  db: 'data/registry.db',
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
};

/** Setting name → environment variable. */
export const ENV_NAMES: Record<keyof Config, string> = {
  genesis: 'REGISTRY_GENESIS',
  db: 'REGISTRY_DB',
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
  for (const key of Object.keys(DEFAULTS) as (keyof Config)[]) if (flags[key] !== undefined) fromFlags[key] = flags[key];
  const raw: Raw = { ...fromFile, ...fromEnv, ...fromFlags };
  const dataDir = raw.dataDir === undefined ? DEFAULTS.dataDir : text(raw.dataDir, 'dataDir');
  return {
    genesis: raw.genesis === undefined ? undefined : text(raw.genesis, 'genesis'),
    db: raw.db === undefined ? join(dataDir, 'registry.db') : text(raw.db, 'db'),
    host: raw.host === undefined ? DEFAULTS.host : text(raw.host, 'host'),
    port: raw.port === undefined ? DEFAULTS.port : port(raw.port),
    synchronous: raw.synchronous === undefined ? DEFAULTS.synchronous : oneOf(raw.synchronous, 'synchronous', SYNCHRONOUS_MODES),
    logLevel: raw.logLevel === undefined ? DEFAULTS.logLevel : oneOf(raw.logLevel, 'logLevel', LOG_LEVELS),
    dataDir,
    ...(Object.fromEntries(
      Object.entries(INTEGER_RANGES).map(([name, [min, max]]) => {
        const v = raw[name as keyof Config];
        return [name, v === undefined ? DEFAULTS[name as keyof typeof INTEGER_RANGES] : integer(v, name, min, max)];
      }),
    ) as Pick<Config, keyof typeof INTEGER_RANGES>),
  };
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
