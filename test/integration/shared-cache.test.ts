// The registry behind a real shared cache (SPEC §6): nginx proxy_cache, honouring the
// registry's Cache-Control and ETags only (no proxy_cache_valid, no proxy_ignore_headers).
// Pinned versions are served from the cache without reaching the registry; the head is
// refetched once its max-age has passed, and revalidated with a 304 when unchanged; 404s
// past the head are never kept. What reaches the registry is seen on its own HTTP server.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import type { CommitRecord, Op } from '../../src/core/schemas.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import { startCachingProxy, type CachingProxy } from '../helpers/nginx.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type Reply, type TestRegistry } from '../helpers/server.js';

const IMMUTABLE = 'public, max-age=31536000, immutable';
const HEAD_CACHE = 'public, max-age=1, must-revalidate';
/** nginx counts max-age in whole seconds of its own clock: a copy fetched at t stays fresh
 * until the second after floor(t) + max-age is over, so up to 2 s for max-age=1. */
const FRESH_AT_MOST_MS = 2000;
const SLACK_MS = 300;

interface OriginRequest {
  url: string;
  ifNoneMatch: string | undefined;
  res: ServerResponse;
}

const keys = signers('alice');
let reg: TestRegistry;
let proxy: CachingProxy;
let registryStopped = false;
/** Every request that reached the registry, in order. */
const origin: OriginRequest[] = [];
const reached = (path: string) => origin.filter((o) => o.url === path);

const via = <T = unknown>(path: string): Promise<Reply<T>> => request<T>(proxy.url, 'GET', path);
const cacheStatus = (r: Reply) => r.headers.get('x-cache-status');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function commit(ops: Op[]): Promise<number> {
  const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
  const p = proposal('shared-cache', head, ops);
  const r = await request<{ status: string; version: number }>(reg.url, 'POST', '/registry/proposals', {
    payload: p,
    approvals: keys.map((k) => approve(k, hashOf(p))),
  });
  expect(r.json.status).toBe('committed');
  return r.json.version;
}

beforeAll(async () => {
  reg = await startTestRegistry(genesisRecord('shared-cache', keys, 1));
  expect(await commit([put('svc-a', { tier: 'gold' }, { addr: '10.0.0.1' })])).toBe(1);
  // A second listener on the registry's own server: sees every request, answers none.
  reg.app.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const inm = req.headers['if-none-match'];
    origin.push({ url: req.url ?? '', ifNoneMatch: inm, res });
  });
  proxy = await startCachingProxy(reg.url);
});

afterAll(async () => {
  await proxy?.stop();
  if (reg && !registryStopped) await reg.close();
});

describe('the registry behind nginx proxy_cache', () => {
  it('serves pinned versions from the cache: a second request never reaches the registry', async () => {
    for (const path of ['/registry/0', '/registry/1', '/registry/1/descriptors']) {
      const first = await via(path);
      expect(first.status, path).toBe(200);
      expect(first.headers.get('cache-control'), path).toBe(IMMUTABLE);
      expect(cacheStatus(first), path).toBe('MISS');
      expect(reached(path), path).toHaveLength(1);
      const direct = await request(reg.url, 'GET', path);
      expect(first.text, path).toBe(direct.text);

      for (let i = 0; i < 3; i++) {
        const again = await via(path);
        expect(again.status, path).toBe(200);
        expect(cacheStatus(again), path).toBe('HIT');
        expect(again.text, path).toBe(first.text);
        expect(again.headers.get('etag'), path).toBe(first.headers.get('etag'));
      }
      // Only the direct request above reached it; none of the cached ones did.
      expect(reached(path), path).toHaveLength(2);
    }
    expect((await via<CommitRecord>('/registry/1')).json.version).toBe(1);
  });

  it('never serves a head older than its max-age: a commit shows through the cache once max-age passes', async () => {
    const fetchedAt = Date.now();
    const h1 = await via<HeadJson>('/registry/head');
    expect(h1.status).toBe(200);
    expect(h1.json.version).toBe(1);
    expect(h1.headers.get('cache-control')).toBe(HEAD_CACHE);
    expect(h1.headers.get('etag')).toMatch(/^"b3:[0-9a-f]{64}"$/);
    expect(cacheStatus(h1)).toBe('MISS');
    // Within max-age the cache answers alone: the head is cacheable, not no-store.
    const cached = await via<HeadJson>('/registry/head');
    expect(cacheStatus(cached)).toBe('HIT');
    expect(cached.text).toBe(h1.text);
    expect(reached('/registry/head')).toHaveLength(1);

    expect(await commit([put('svc-b')])).toBe(2);
    const committedAt = Date.now();
    const statuses: string[] = [];
    let fresh: Reply<HeadJson> | undefined;
    while (!fresh) {
      const sentAt = Date.now();
      const r = await via<HeadJson>('/registry/head');
      expect(r.status).toBe(200);
      statuses.push(`${r.json.version}:${cacheStatus(r)}`);
      if (r.json.version === 2) fresh = r;
      else {
        // The old head only while the copy is within max-age (in nginx's whole seconds).
        expect(r.json.version).toBe(1);
        expect(cacheStatus(r)).toBe('HIT');
        expect(sentAt - fetchedAt, `stale head served: ${statuses.join(' ')}`).toBeLessThan(FRESH_AT_MOST_MS + SLACK_MS);
        await sleep(50);
      }
    }
    expect(Date.now() - committedAt, statuses.join(' ')).toBeLessThan(FRESH_AT_MOST_MS + SLACK_MS);
    // nginx asked with the old ETag; the head had changed, so the registry sent the new one.
    expect(cacheStatus(fresh)).toBe('EXPIRED');
    const refetch = reached('/registry/head').at(-1)!;
    expect(refetch.ifNoneMatch).toBe(h1.headers.get('etag'));
    expect(refetch.res.statusCode).toBe(200);
    expect(fresh.headers.get('etag')).not.toBe(h1.headers.get('etag'));
    expect(fresh.text).toBe((await request(reg.url, 'GET', '/registry/head')).text);
  });

  it('revalidates an expired head with a conditional request that the registry answers 304', async () => {
    const before = reached('/registry/head').length;
    const current = await request<HeadJson>(reg.url, 'GET', '/registry/head');
    const etag = current.headers.get('etag')!;
    const seen: string[] = [];
    const deadline = Date.now() + FRESH_AT_MOST_MS + 2000;
    for (;;) {
      const r = await via<HeadJson>('/registry/head');
      const status = cacheStatus(r) ?? 'none';
      seen.push(status);
      expect(r.status).toBe(200);
      expect(r.text).toBe(current.text);
      expect(r.headers.get('etag')).toBe(etag);
      // HIT until max-age passes, then REVALIDATED; EXPIRED would mean a full 200 refetch.
      expect(['HIT', 'REVALIDATED'], seen.join(' ')).toContain(status);
      if (status === 'REVALIDATED') break;
      expect(Date.now(), `no revalidation: ${seen.join(' ')}`).toBeLessThan(deadline);
      await sleep(50);
    }
    // One request reached the registry (the direct one aside): conditional, answered 304.
    const since = reached('/registry/head')
      .slice(before)
      .filter((o) => o.ifNoneMatch !== undefined);
    expect(since).toHaveLength(1);
    expect(since[0]!.ifNoneMatch).toBe(etag);
    expect(since[0]!.res.statusCode).toBe(304);
    expect(reached('/registry/head').length - before).toBe(2);
  });

  it('never caches a 404 past the head: once the version is committed, the cache serves it', async () => {
    const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json.version;
    const next = head + 1;
    const paths = [`/registry/${next}`, `/registry/${next}/descriptors`, '/registry/999'];
    for (const path of paths)
      for (let i = 1; i <= 3; i++) {
        const r = await via(path);
        expect(r.status, path).toBe(404);
        expect(r.headers.get('cache-control'), path).toBe('no-store');
        expect(cacheStatus(r), path).toBe('MISS');
        expect(reached(path), path).toHaveLength(i);
      }

    expect(await commit([put('svc-c')])).toBe(next);
    for (const path of paths.slice(0, 2)) {
      const r = await via(path);
      expect(r.status, path).toBe(200);
      expect(r.headers.get('cache-control'), path).toBe(IMMUTABLE);
      expect(cacheStatus(r), path).toBe('MISS');
      expect(reached(path), path).toHaveLength(4);
      const again = await via(path);
      expect(cacheStatus(again), path).toBe('HIT');
      expect(again.text, path).toBe(r.text);
      expect(reached(path), path).toHaveLength(4);
    }
    expect((await via<CommitRecord>(`/registry/${next}`)).json.version).toBe(next);
    expect((await via('/registry/999')).status).toBe(404);
  });

  it('keeps serving pinned versions with the registry stopped, but not the head past its max-age', async () => {
    const count = origin.length;
    await reg.close();
    registryStopped = true;
    for (const path of ['/registry/0', '/registry/1', '/registry/1/descriptors', '/registry/3', '/registry/3/descriptors']) {
      const r = await via(path);
      expect(r.status, path).toBe(200);
      expect(cacheStatus(r), path).toBe('HIT');
    }
    // must-revalidate and no proxy_cache_use_stale: once expired, nginx cannot answer it.
    const seen: string[] = [];
    const deadline = Date.now() + FRESH_AT_MOST_MS + 2000;
    for (;;) {
      const r = await via('/registry/head');
      seen.push(`${r.status}:${cacheStatus(r)}`);
      if (r.status !== 200) {
        expect(r.status, seen.join(' ')).toBe(502);
        break;
      }
      expect(cacheStatus(r), seen.join(' ')).toBe('HIT');
      expect(Date.now(), `stale head served: ${seen.join(' ')}`).toBeLessThan(deadline);
      await sleep(50);
    }
    expect(origin).toHaveLength(count);
  });
});
