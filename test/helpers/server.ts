// Starts a real registry on a real port with a real SQLite file, as integration tests need.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { DEFAULTS, type Config } from '../../src/config/config.js';
import type { CommitRecord } from '../../src/core/schemas.js';
import { createLogger } from '../../src/obs/logger.js';
import { startRegistry, type RunningRegistry, type StartOptions } from '../../src/server.js';

export interface TestRegistry extends RunningRegistry {
  dir: string;
  db: string;
  genesisPath: string;
}

export function tempDir(prefix = 'registry-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The limits tests run with unless they set their own (see startTestRegistry). */
export const TEST_LIMITS: Partial<Config> = {
  writeRatePerAddress: 0,
  writeRatePerSigner: 0,
  refusedKibPerAddress: 0,
  shedReadsEventLoopDelayMs: 0,
  shedWritesEventLoopDelayMs: 0,
};

export async function startTestRegistry(
  genesis: CommitRecord,
  options: {
    dir?: string;
    config?: Partial<Config>;
    logger?: Logger;
    wrapStore?: StartOptions['wrapStore'];
    foregroundVerifyLimit?: StartOptions['foregroundVerifyLimit'];
  } = {},
): Promise<TestRegistry> {
  const dir = options.dir ?? tempDir();
  const genesisPath = join(dir, 'genesis.json');
  writeFileSync(genesisPath, JSON.stringify(genesis));
  const db = join(dir, 'registry.db');
  const config = {
    ...DEFAULTS,
    db,
    port: 0,
    dataDir: dir,
    logLevel: 'silent' as const,
    // Tests commit hundreds of times a second from one address and signer, and run CPU-heavy
    // code on the server's own event loop: write rate limits and shedding on event-loop delay
    // are off unless a test sets them (test/integration/limits.test.ts does).
    ...TEST_LIMITS,
    ...options.config,
    genesis: options.config?.genesis ?? genesisPath,
  };
  const running = await startRegistry(config, options.logger ?? createLogger(config.logLevel), {
    wrapStore: options.wrapStore,
    foregroundVerifyLimit: options.foregroundVerifyLimit,
  });
  return Object.assign(running, { dir, db, genesisPath });
}

export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as the caller expects it (`request<HeadJson>(...)`); undefined if it is not JSON. */
  json: T;
}

export async function request<T = unknown>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetchRetryingStale(base + path, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as T };
}

/** fetch, sending a GET or HEAD once more when the connection closed under it after it had carried
 * earlier responses (RFC 9112 §9.3.1 lets a client retry an idempotent request then). Tests that
 * restart a registry on the same port reuse the origin's connection pool, and the fetch pool may
 * not have read the old process's FIN before the next request picks the connection: "other side
 * closed" on a socket with bytesRead > 0. (That also lets through a connection that closed in the
 * middle of its first response; a GET sent again there fails again if the server is at fault.) A
 * connection that closes before any byte is the server's doing and fails as it is; so does a reset
 * (ECONNRESET carries no socket to tell). A POST is never resent: the server may have acted on it. */
async function fetchRetryingStale(url: string, init: RequestInit): Promise<Response> {
  const idempotent = ['GET', 'HEAD'].includes((init.method ?? 'GET').toUpperCase());
  // Each stale connection fails once and leaves the pool; a few retries cover a pool of several.
  for (let retries = 3; ; retries--) {
    try {
      return await fetch(url, init);
    } catch (e) {
      if (!idempotent || retries === 0 || !closedAfterEarlierResponses(e)) throw e;
    }
  }
}

function closedAfterEarlierResponses(e: unknown): boolean {
  const cause = (e as { cause?: { code?: unknown; socket?: { bytesRead?: unknown } } }).cause;
  return cause?.code === 'UND_ERR_SOCKET' && typeof cause.socket?.bytesRead === 'number' && cause.socket.bytesRead > 0;
}
