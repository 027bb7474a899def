// The descriptor read plane over real HTTP (SPEC §6, §11): lookups, listings with filters and
// cursors, past versions, batch lookups, diffs, and their cache headers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import type { Descriptor, Op } from '../../src/core/schemas.js';
import { approve, del, genesisRecord, proposal, put, setSigners, signers, signerSet } from '../helpers/fixtures.js';
import { request, startTestRegistry, tempDir, type TestRegistry } from '../helpers/server.js';

interface Head {
  version: number;
  hash: string;
  state_root: string;
}
interface ListItem {
  id: string;
  changed_in: number;
  descriptor: Descriptor;
}
interface Listing {
  version: number;
  items: ListItem[];
  next_cursor: string | null;
}
interface Lookup {
  version: number;
  changed_in: number;
  descriptor: Descriptor;
}
interface ErrorJson {
  error: { code: string; message: string };
}

const keys = signers('alice', 'bob');
let reg: TestRegistry;

async function commit(ops: Op[]): Promise<number> {
  const head = (await request<Head>(reg.url, 'GET', '/registry/head')).json;
  const p = proposal('reads', head, ops);
  const r = await request<{ status: string; version: number }>(reg.url, 'POST', '/registry/proposals', {
    payload: p,
    approvals: keys.map((k) => approve(k, hashOf(p))),
  });
  expect(r.json.status).toBe('committed');
  return r.json.version;
}

const node = (i: number, region: string, status: string): Op =>
  put(`node-${String(i).padStart(3, '0')}`, { region, status }, { i }, 'node');

beforeAll(async () => {
  reg = await startTestRegistry(genesisRecord('reads', keys, 1));
  // v1: 30 nodes in two regions; v2: services, one with a '/' in its id; v3: one node goes.
  await commit(Array.from({ length: 30 }, (_, i) => node(i, i % 3 === 0 ? 'eu-west' : 'us-west', i % 2 ? 'online' : 'offline')));
  await commit([put('svc/storage@eu', { tier: 'gold' }, { caps: ['x', 'y'] }), put('svc-auth', { tier: 'silver' })]);
  await commit([del('node-000')]);
});
afterAll(() => reg.close());

describe('descriptor lookups', () => {
  it('answers {version, changed_in, descriptor} with a strong ETag, revalidates with 304, and answers HEAD', async () => {
    const r = await request<Lookup>(reg.url, 'GET', '/registry/descriptors/node-001');
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      version: 3,
      changed_in: 1,
      descriptor: { id: 'node-001', kind: 'node', labels: { region: 'us-west', status: 'online' }, body: { i: 1 } },
    });
    const etag = r.headers.get('etag')!;
    expect(etag).toMatch(/^"b3:[0-9a-f]{64}"$/);
    expect(r.headers.get('cache-control')).toBe('public, max-age=1, must-revalidate');
    expect((await request(reg.url, 'GET', '/registry/descriptors/node-001', undefined, { 'if-none-match': etag })).status).toBe(304);
    const head = await fetch(`${reg.url}/registry/descriptors/node-001`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('etag')).toBe(etag);
    expect(await head.text()).toBe('');
  });

  it('finds ids holding "/", "@" and ":", raw or percent-encoded', async () => {
    for (const path of ['svc/storage@eu', 'svc%2Fstorage%40eu']) {
      const r = await request<Lookup>(reg.url, 'GET', `/registry/descriptors/${path}`);
      expect(r.json.descriptor.id).toBe('svc/storage@eu');
    }
  });

  it('answers 404 that no cache keeps for absent and deleted ids, and 400 for ids no descriptor can have', async () => {
    for (const id of ['nope', 'node-000']) {
      const r = await request<ErrorJson>(reg.url, 'GET', `/registry/descriptors/${id}`);
      expect(r.status).toBe(404);
      expect(r.json.error.code).toBe('NotFound');
      expect(r.headers.get('cache-control')).toBe('no-store');
    }
    for (const id of ['a%00b', 'a%zz', 'sp%20ace', 'x'.repeat(257)]) {
      const r = await request<ErrorJson>(reg.url, 'GET', `/registry/descriptors/${id}`);
      expect(r.status, id).toBe(400);
      expect(r.json.error.code).toBe('BadRequest');
    }
  });
});

describe('listings', () => {
  it('pages the head in id order with opaque cursors, and a cursor keeps paging its version after a commit', async () => {
    const first = await request<Listing>(reg.url, 'GET', '/registry/head/descriptors?limit=10');
    expect(first.json.version).toBe(3);
    expect(first.json.items.map((i) => i.id)).toEqual(Array.from({ length: 10 }, (_, i) => `node-${String(i + 1).padStart(3, '0')}`));
    expect(first.headers.get('etag')).toMatch(/^"b3:/);
    const cursor = first.json.next_cursor!;
    // A commit lands between pages: the rest still comes from version 3.
    await commit([put('node-0055', { region: 'eu-west', status: 'online' }, {}, 'node')]);
    const ids = first.json.items.map((i) => i.id);
    let next: string | null = cursor;
    while (next) {
      const page: Listing = (
        await request<Listing>(reg.url, 'GET', `/registry/head/descriptors?limit=10&cursor=${encodeURIComponent(next)}`)
      ).json;
      expect(page.version).toBe(3);
      ids.push(...page.items.map((i) => i.id));
      next = page.next_cursor;
    }
    expect(ids).toHaveLength(31);
    expect(ids).not.toContain('node-0055');
    expect([...ids].sort()).toEqual(ids);
    const now = await request<Listing>(reg.url, 'GET', '/registry/head/descriptors?limit=1000');
    expect(now.json.version).toBe(4);
    expect(now.json.items.map((i) => i.id)).toContain('node-0055');
    expect(now.json.next_cursor).toBeNull();
  });

  it('filters with the SPEC §11 language and kind=, the same whether or not an index applies', async () => {
    const all = (await request<Listing>(reg.url, 'GET', '/registry/head/descriptors?limit=1000')).json.items.map((i) => i.descriptor);
    const cases: [string, (d: Descriptor) => boolean][] = [
      ["labels.region == 'eu-west' AND labels.status == 'online'", (d) => d.labels.region === 'eu-west' && d.labels.status === 'online'],
      ["labels.tier != 'gold'", (d) => d.labels.tier !== undefined && d.labels.tier !== 'gold'],
      ["NOT (id MATCHES '^node-')", (d) => !d.id.startsWith('node-')],
      ["body.caps CONTAINS 'y'", (d) => Array.isArray(d.body.caps) && (d.body.caps as unknown[]).includes('y')],
      ["kind IN ['service'] OR labels.status == 'offline'", (d) => d.kind === 'service' || d.labels.status === 'offline'],
    ];
    for (const [filter, expected] of cases) {
      const r = await request<Listing>(reg.url, 'GET', `/registry/head/descriptors?limit=1000&filter=${encodeURIComponent(filter)}`);
      expect(r.status, filter).toBe(200);
      expect(
        r.json.items.map((i) => i.id),
        filter,
      ).toEqual(all.filter(expected).map((d) => d.id));
    }
    const byKind = await request<Listing>(
      reg.url,
      'GET',
      `/registry/head/descriptors?kind=service&filter=${encodeURIComponent("labels.tier == 'gold'")}`,
    );
    expect(byKind.json.items.map((i) => i.id)).toEqual(['svc/storage@eu']);
  });

  it('serves a past version immutably, with its own state', async () => {
    const r = await request<Listing>(reg.url, 'GET', '/registry/1/descriptors?limit=1000');
    expect(r.status).toBe(200);
    expect(r.json.version).toBe(1);
    expect(r.json.items).toHaveLength(30);
    expect(r.json.items[0]!.id).toBe('node-000');
    expect(r.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const page = await request<Listing>(reg.url, 'GET', '/registry/1/descriptors?limit=20');
    const rest = await request<Listing>(
      reg.url,
      'GET',
      `/registry/1/descriptors?limit=20&cursor=${encodeURIComponent(page.json.next_cursor!)}`,
    );
    expect([...page.json.items, ...rest.json.items].map((i) => i.id)).toEqual(r.json.items.map((i) => i.id));
    // A cursor of version 1 is no cursor for version 2.
    const other = await request<ErrorJson>(reg.url, 'GET', `/registry/2/descriptors?cursor=${encodeURIComponent(page.json.next_cursor!)}`);
    expect(other.status).toBe(400);
    expect((await request(reg.url, 'GET', '/registry/99/descriptors')).status).toBe(404);
  });

  it('refuses forged, truncated and borrowed cursors, bad limits and bad filters with 400', async () => {
    const page = (await request<Listing>(reg.url, 'GET', '/registry/head/descriptors?limit=5')).json;
    const c = page.next_cursor!;
    const flipped = c.slice(0, 3) + (c[3] === 'A' ? 'B' : 'A') + c.slice(4);
    const bad = [
      `cursor=${encodeURIComponent(flipped)}`,
      `cursor=${encodeURIComponent(c.slice(0, -4))}`,
      `cursor=${encodeURIComponent(c)}&kind=node`,
      `cursor=${encodeURIComponent(c)}&include_expired=true`,
      'cursor=bm90LWEtY3Vyc29y',
      'limit=0',
      'limit=100000',
      'limit=-1',
      'include_expired=yes',
      `filter=${encodeURIComponent("labels.x == 'unterminated")}`,
      `filter=${encodeURIComponent('name == 1')}`,
      `filter=${encodeURIComponent('('.repeat(11) + "id == 'a'" + ')'.repeat(11))}`,
      `filter=${encodeURIComponent("id MATCHES '(unclosed'")}`,
      `filter=${encodeURIComponent("id == 'a' AND ".repeat(400) + "id == 'b'")}`,
      'unknown=1',
    ];
    for (const q of bad) {
      const r = await request<ErrorJson>(reg.url, 'GET', `/registry/head/descriptors?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.json.error.code, q).toBe('BadRequest');
    }
    const unterminated = await request<ErrorJson>(
      reg.url,
      'GET',
      `/registry/head/descriptors?filter=${encodeURIComponent("labels.x == 'abc")}`,
    );
    expect(unterminated.json.error.message).toMatch(/position \d+/);
  });

  it('stays linear on a catastrophic pattern', async () => {
    const r = await request<Listing>(reg.url, 'GET', `/registry/head/descriptors?filter=${encodeURIComponent("id MATCHES '^(a+)+$'")}`);
    expect(r.status).toBe(200);
    expect(r.json.items).toEqual([]);
  });
});

describe('expiry', () => {
  it('hides an expired descriptor from lookups, listings and batches unless include_expired=true, and changes no state', async () => {
    const gone: Descriptor = { id: 'lease-1', kind: 'lease', labels: {}, body: {}, expires_at: '2020-01-01T00:00:00.000Z' };
    const v = await commit([{ op: 'put', descriptor: gone }]);
    const head = (await request<Head>(reg.url, 'GET', '/registry/head')).json;
    expect((await request(reg.url, 'GET', '/registry/descriptors/lease-1')).status).toBe(404);
    expect((await request<Lookup>(reg.url, 'GET', '/registry/descriptors/lease-1?include_expired=true')).json.descriptor).toEqual(gone);
    for (const path of ['/registry/head/descriptors?kind=lease', `/registry/${v}/descriptors?kind=lease`]) {
      expect((await request<Listing>(reg.url, 'GET', path)).json.items, path).toEqual([]);
      expect(
        (await request<Listing>(reg.url, 'GET', `${path}&include_expired=true`)).json.items.map((i) => i.id),
        path,
      ).toEqual(['lease-1']);
    }
    const batch = await request<{ missing: string[] }>(reg.url, 'POST', '/registry/descriptors:batch', { ids: ['lease-1'] });
    expect(batch.json.missing).toEqual(['lease-1']);
    const withExpired = await request<{ items: ListItem[] }>(reg.url, 'POST', '/registry/descriptors:batch', {
      ids: ['lease-1'],
      include_expired: true,
    });
    expect(withExpired.json.items.map((i) => i.id)).toEqual(['lease-1']);
    // Hiding is a read-time view: the head and its state root stay what the commit made them.
    expect((await request<Head>(reg.url, 'GET', '/registry/head')).json).toEqual(head);
  });
});

describe('batch lookups', () => {
  it('answers found and missing in the order asked, at one version', async () => {
    const r = await request<{ version: number; items: ListItem[]; missing: string[] }>(reg.url, 'POST', '/registry/descriptors:batch', {
      ids: ['svc-auth', 'nope', 'node-002', 'node-000', 'svc/storage@eu'],
    });
    expect(r.status).toBe(200);
    expect(r.json.items.map((i) => i.id)).toEqual(['svc-auth', 'node-002', 'svc/storage@eu']);
    expect(r.json.missing).toEqual(['nope', 'node-000']);
    expect(r.json.version).toBeGreaterThanOrEqual(3);
  });

  it('refuses duplicates, more than 1,000 ids, none, and bad ids', async () => {
    for (const ids of [['a', 'b', 'a'], Array.from({ length: 1001 }, (_, i) => `id-${i}`), [], ['bad id']]) {
      const r = await request<ErrorJson>(reg.url, 'POST', '/registry/descriptors:batch', { ids });
      expect(r.status).toBe(400);
    }
  });
});

describe('diffs', () => {
  it('lists added, removed and changed descriptors and signer-set changes between two versions, immutably', async () => {
    const v = await commit([
      put('svc-auth', { tier: 'gold' }),
      put('svc-new'),
      del('node-001'),
      setSigners(signerSet([keys[0]!, keys[1]!], 2)),
    ]);
    const r = await request<{
      from: number;
      to: number;
      added: Descriptor[];
      removed: Descriptor[];
      changed: { id: string; before: Descriptor; after: Descriptor }[];
      signer_set: { before: { signers: unknown[] }; after: { signers: unknown[] } } | null;
    }>(reg.url, 'GET', `/registry/diff?from=2&to=${v}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(r.json.from).toBe(2);
    expect(r.json.to).toBe(v);
    expect(r.json.added.map((d) => d.id)).toEqual(['lease-1', 'node-0055', 'svc-new']);
    expect(r.json.removed.map((d) => d.id)).toEqual(['node-000', 'node-001']);
    expect(r.json.changed).toEqual([
      {
        id: 'svc-auth',
        before: { id: 'svc-auth', kind: 'service', labels: { tier: 'silver' }, body: {} },
        after: { id: 'svc-auth', kind: 'service', labels: { tier: 'gold' }, body: {} },
      },
    ]);
    expect(r.json.signer_set?.before.signers).toHaveLength(2);
    const none = await request<{ added: unknown[]; signer_set: unknown }>(reg.url, 'GET', '/registry/diff?from=1&to=1');
    expect(none.json).toMatchObject({ added: [], removed: [], changed: [], signer_set: null });
    for (const [q, status] of [
      ['from=3&to=2', 400],
      ['from=1&to=999', 404],
      ['from=-1&to=2', 400],
      ['from=1', 400],
    ] as const) {
      expect((await request(reg.url, 'GET', `/registry/diff?${q}`)).status, q).toBe(status);
    }
  });
});

describe('versions read back from the log', () => {
  it('are kept after the first read, so a restarted registry reads a hot version from memory', async () => {
    const dir = tempDir();
    const genesis = genesisRecord('kept', keys, 1);
    let r = await startTestRegistry(genesis, { dir });
    const head = (await request<Head>(r.url, 'GET', '/registry/head')).json;
    const p = proposal('kept', head, [put('a')]);
    await request(r.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, hashOf(p))] });
    const q = proposal('kept', (await request<Head>(r.url, 'GET', '/registry/head')).json, [put('b')]);
    await request(r.url, 'POST', '/registry/proposals', { payload: q, approvals: [approve(keys[0]!, hashOf(q))] });
    await r.close();
    r = await startTestRegistry(genesis, { dir });
    try {
      expect(r.view.recentRecord(1)).toBeUndefined();
      const first = await request(r.url, 'GET', '/registry/1');
      expect(first.status).toBe(200);
      expect(r.view.recentRecord(1)?.body.toString()).toBe(first.text);
      expect(r.view.recentRecord(1)?.etag).toBe(first.headers.get('etag'));
    } finally {
      await r.close();
    }
  });
});
