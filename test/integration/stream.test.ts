// The commit stream over real HTTP (SPEC §8, §11): framing and headers, resumes from every
// position while commits keep landing, slow subscribers, filters against a brute-force model,
// heartbeats, subscriber limits and shutdown. Real servers, real SQLite files, real sockets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommitRecord, Descriptor, Op } from '../../src/core/schemas.js';
import { Committer } from '../helpers/commits.js';
import { del, genesisRecord, put, setSigners, signers, signerSet } from '../helpers/fixtures.js';
import type { ErrorJson } from '../helpers/responses.js';
import { request, startTestRegistry, tempDir, type TestRegistry } from '../helpers/server.js';
import { openSse, SseStream, stalledSubscriber, subscribe, type CommitData } from '../helpers/sse.js';

const keys = signers('alice', 'bob');

/** Starts a 1-of-2 registry and a committer for it. */
async function start(registryId: string, config: Parameters<typeof startTestRegistry>[1] = {}) {
  const reg = await startTestRegistry(genesisRecord(registryId, keys, 1), config);
  return { reg, c: new Committer(() => reg.url, registryId, keys[0]!) };
}

/** The hash GET /registry/{version} names in its ETag. */
async function etagHash(reg: TestRegistry, version: number): Promise<string> {
  const r = await request<CommitRecord>(reg.url, 'GET', `/registry/${version}`);
  expect(r.status).toBe(200);
  return r.headers.get('etag')!.replace(/^"|"$/g, '');
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe('frames and headers', () => {
  let reg: TestRegistry;
  let c: Committer;
  /** Subscribed before the first commit: every frame as it went out live. */
  let everything: SseStream;
  beforeAll(async () => {
    ({ reg, c } = await start('frames', { config: { streamRingSize: 2 } }));
    everything = await subscribe(`${reg.url}/registry/stream`);
  });
  afterAll(() => {
    everything.close();
    return reg.close();
  });

  it('answers text/event-stream, uncached, unbuffered and uncompressed, and frames a commit exactly', async () => {
    const s = await subscribe(`${reg.url}/registry/stream`, { headers: { 'accept-encoding': 'gzip, deflate, br' } });
    expect(s.headers['content-type']).toMatch(/^text\/event-stream(;|$)/);
    expect(s.headers['cache-control']).toBe('no-store');
    expect(s.headers['x-accel-buffering']).toBe('no');
    expect(s.headers['content-encoding']).toBeUndefined();
    const v = await c.commit([put('svc-a', { region: 'eu' })]);
    await s.waitForVersion(v);
    // EventSource clients reconnect after 1 s rather than their default 3 s.
    expect(s.raw.startsWith('retry: 1000\n\n')).toBe(true);
    expect(s.retry).toBe(1000);
    const m = /^id: (\d+)\nevent: commit\ndata: (\{[^\n]*\})\n\n$/.exec(s.body);
    expect(m, JSON.stringify(s.body)).not.toBeNull();
    expect(Number(m![1])).toBe(v);
    const record = (await request<CommitRecord>(reg.url, 'GET', `/registry/${v}`)).json;
    expect(JSON.parse(m![2]!)).toStrictEqual({
      version: v,
      hash: await etagHash(reg, v),
      prev_hash: record.prev_hash,
      committed_at: record.committed_at,
      changed: ['svc-a'],
      changed_count: 1,
    });
    s.close();
  });

  it('sends the first 100 changed ids, in the order of the ops, and counts them all', async () => {
    const s = await subscribe(`${reg.url}/registry/stream`);
    const ops: Op[] = [del('svc-a'), ...range(1, 149).map((i) => put(`bulk-${String(150 - i).padStart(3, '0')}`))];
    const v = await c.commit(ops);
    await s.waitForVersion(v);
    const [data] = s.commits;
    expect(data!.changed_count).toBe(150);
    expect(data!.changed).toEqual(ops.slice(0, 100).map((op) => (op.op === 'put' ? op.descriptor.id : op.op === 'delete' ? op.id : '')));
    expect(data!.hash).toBe(await etagHash(reg, v));
    s.close();
  });

  it('sends a commit that changed only the signer set, with nothing changed, to unfiltered subscribers only', async () => {
    const all = await subscribe(`${reg.url}/registry/stream`);
    const filtered = await subscribe(`${reg.url}/registry/stream?filter=${encodeURIComponent("id MATCHES '.'")}`);
    const v1 = await c.commit([setSigners(signerSet(keys, 1))]);
    const v2 = await c.commit([put('after-signers')]);
    await all.waitForVersion(v2);
    await filtered.waitForVersion(v2);
    expect(all.commits.map((d) => [d.version, d.changed, d.changed_count])).toEqual([
      [v1, [], 0],
      [v2, ['after-signers'], 1],
    ]);
    expect(filtered.versions).toEqual([v2]);
    all.close();
    filtered.close();
  });

  it('replays byte for byte what went out live, from the log and from the ring', async () => {
    const v = await c.commit([put('svc-b', { region: 'us' }), put('svc-c')]);
    await everything.waitForVersion(v);
    expect(everything.versions).toEqual(range(1, v));
    // The ring holds the last 2 commits: a resume from 0 is served from the log, one from v-2 from the ring.
    const fromLog = await subscribe(`${reg.url}/registry/stream`, { headers: { 'last-event-id': '0' } });
    const fromRing = await subscribe(`${reg.url}/registry/stream?from=${v - 2}`);
    await fromLog.waitForVersion(v);
    await fromRing.waitForVersion(v);
    expect(fromLog.body).toBe(everything.body);
    expect(fromRing.versions).toEqual([v - 1, v]);
    expect(everything.body.endsWith(fromRing.body)).toBe(true);
    fromLog.close();
    fromRing.close();
  });
});

describe('resume', () => {
  const RING = 50;
  const HISTORY = 500;
  let reg: TestRegistry;
  let c: Committer;
  /** Subscribed from the start: every commit as it went out live, the reference for the rest. */
  let reference: SseStream;
  const byVersion = (v: number): CommitData => reference.commits[v - 1]!;

  beforeAll(async () => {
    ({ reg, c } = await start('resume', { config: { streamRingSize: RING, synchronous: 'NORMAL' } }));
    reference = await subscribe(`${reg.url}/registry/stream`);
    for (let i = 1; i <= HISTORY; i++) await c.commit([put(`d-${i % 37}`, { n: String(i) }), ...(i % 5 ? [] : [put(`e-${i}`)])]);
    await reference.waitForVersion(HISTORY);
  }, 60_000);
  /** Stops the background committer of the sweep, should the sweep fail half-way. */
  let stopCommitting: () => Promise<void> = () => Promise.resolve();
  afterAll(async () => {
    await stopCommitting();
    await reg.close();
  });

  /** Ways to resume: by Last-Event-ID or by ?from=, unfiltered or with a filter that every
   * commit here matches (each puts a descriptor of kind 'service'), so the answer is the same;
   * a filtered resume from the log rebuilds the state at the resume point, a longer path. */
  const ways = ['header', 'query', 'header+kind', 'query+filter'] as const;
  const resume = (p: number, way: (typeof ways)[number]) => {
    const query =
      way === 'query' ? `?from=${p}` : way === 'query+filter' ? `?from=${p}&filter=${encodeURIComponent("id MATCHES '^'")}` : '';
    const path = way === 'header+kind' ? '?kind=service' : query;
    return subscribe(`${reg.url}/registry/stream${path}`, way.startsWith('header') ? { headers: { 'last-event-id': String(p) } } : {});
  };

  /** Every commit p+1 … its last frame, each once, in order, exactly as it went out live. */
  function expectExactly(s: SseStream, p: number, atLeast: number): void {
    const versions = s.versions;
    const last = versions.at(-1) ?? p;
    expect(last, `resume after ${p}`).toBeGreaterThanOrEqual(atLeast);
    expect(versions, `resume after ${p}`).toEqual(range(p + 1, last));
    expect(s.commits, `resume after ${p}`).toEqual(range(p + 1, last).map(byVersion));
    expect(s.frames.every((f) => f.event === 'commit')).toBe(true);
  }

  it('keeps the live reference whole: every version once, chained, hashed like GET /registry/{version}', async () => {
    expect(reference.versions).toEqual(range(1, HISTORY));
    for (let v = 2; v <= HISTORY; v++) expect(byVersion(v).prev_hash).toBe(byVersion(v - 1).hash);
    for (const v of [1, 250, HISTORY]) expect(byVersion(v).hash).toBe(await etagHash(reg, v));
  });

  it('resumes at the edges of the ring and of the log, at a still head, then goes on live', async () => {
    // The ring holds 451…500: 450 is the last position served from the ring, 449 the first from the log.
    const positions = [0, 1, 2, HISTORY - RING - 2, HISTORY - RING - 1, HISTORY - RING, HISTORY - RING + 1, HISTORY - 1, HISTORY];
    const streams = await Promise.all(positions.flatMap((p) => ways.map((way) => resume(p, way))));
    const v = await c.commit([put('edge')]);
    await reference.waitForVersion(v);
    await Promise.all(streams.map((s) => s.waitForVersion(v)));
    positions.forEach((p, i) => ways.forEach((_, j) => expectExactly(streams[i * ways.length + j]!, p, v)));
    for (const s of streams) s.close();
  });

  it('resumes at every position 0…500 while commits keep landing: no gap, no duplicate, in order', async () => {
    // A committer runs while any stream waits; each stream, once open, waits for a commit that
    // was proposed after it was accepted (two past the last acknowledged one), so each proves a
    // replay joined to the live stream. Positions go from the head down, so that the first
    // ones are served from the ring (the head moves on meanwhile) and the rest from the log.
    let latest = reference.lastVersion!;
    let waiting = 0;
    let wake: (() => void) | undefined;
    let stop = false;
    const sources = { ring: 0, log: 0 };
    const committer = (async () => {
      let n = 0;
      while (!stop) {
        if (waiting === 0) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        latest = await c.commit([put(`bg-${n++ % 50}`, { n: String(n) })]);
      }
    })();
    stopCommitting = async () => {
      stop = true;
      wake?.();
      await committer;
    };
    const queue = range(0, HISTORY).reverse();
    const checked: number[] = [];
    const worker = async () => {
      for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
        const s = await resume(p, ways[p % ways.length]!);
        const target = latest + 2;
        if (p + 1 >= latest - RING + 1) sources.ring++;
        else sources.log++;
        waiting++;
        wake?.();
        try {
          await s.waitForVersion(target);
        } finally {
          waiting--;
          s.close();
        }
        await reference.waitForVersion(s.lastVersion!);
        expectExactly(s, p, target);
        checked.push(p);
      }
    };
    const started = Date.now();
    try {
      await Promise.all(Array.from({ length: 12 }, worker));
    } finally {
      await stopCommitting();
    }
    expect(checked.sort((a, b) => a - b)).toEqual(range(0, HISTORY));
    console.log(
      `resume sweep: 501 positions in ${Date.now() - started} ms, ${sources.ring} from the ring and ${sources.log} from the log, head ${latest}`,
    );
  }, 60_000);

  it('lets Last-Event-ID win over ?from=, and refuses a point past the head or not a version with 400', async () => {
    const head = (await request<{ version: number }>(reg.url, 'GET', '/registry/head')).json.version;
    const a = await subscribe(`${reg.url}/registry/stream?from=3`, { headers: { 'last-event-id': String(head - 2) } });
    const b = await subscribe(`${reg.url}/registry/stream?from=${head - 2}`, { headers: { 'last-event-id': String(head - 4) } });
    await a.waitForVersion(head);
    await b.waitForVersion(head);
    expect(a.versions).toEqual([head - 1, head]);
    expect(b.versions).toEqual([head - 3, head - 2, head - 1, head]);
    a.close();
    b.close();
    for (const [path, headers] of [
      [`?from=${head + 1}`, {}],
      ['', { 'last-event-id': String(head + 1) }],
      [`?from=${head}`, { 'last-event-id': String(head + 1) }],
      ['?from=99999999999', {}],
      ['', { 'last-event-id': 'abc' }],
      ['?from=-1', {}],
    ] as const) {
      const r = await openSse(`${reg.url}/registry/stream${path}`, { headers });
      expect(r, path + JSON.stringify(headers)).not.toBeInstanceOf(SseStream);
      if (r instanceof SseStream) {
        r.close();
        continue;
      }
      expect(r.status, path + JSON.stringify(headers)).toBe(400);
      expect(r.headers['content-type']).toMatch(/^application\/json/);
      const body = r.json as ErrorJson;
      expect(body.error).toMatchObject({ code: 'BadRequest', retryable: false });
      expect(typeof body.error.request_id).toBe('string');
    }
  });
});

/** A small seeded generator (mulberry32): the same seed, the same history. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('filtered streams', () => {
  const RING = 10;
  const seed = Number(process.env.STREAM_FILTER_SEED ?? Math.floor(Math.random() * 2 ** 32));
  let reg: TestRegistry;
  let c: Committer;
  beforeAll(async () => ({ reg, c } = await start('filters', { config: { streamRingSize: RING, synchronous: 'NORMAL' } })));
  afterAll(() => reg.close());

  /** Each subscription's query, and what it means, written out by hand (SPEC §11). */
  const subscriptions: { name: string; query: string; match: (d: Descriptor) => boolean }[] = [
    { name: 'kind index', query: `filter=${encodeURIComponent("kind == 'node'")}`, match: (d) => d.kind === 'node' },
    {
      name: 'label index',
      query: `filter=${encodeURIComponent("labels.region == 'eu' AND labels.status == 'on'")}`,
      match: (d) => d.labels.region === 'eu' && d.labels.status === 'on',
    },
    {
      // A term on an absent label is false, so its negation holds: descriptors without a status match.
      name: 'negation, scanned',
      query: `filter=${encodeURIComponent("NOT (labels.status == 'off')")}`,
      match: (d) => d.labels.status !== 'off',
    },
    { name: 'regex on ids, scanned', query: `filter=${encodeURIComponent("id MATCHES '^a'")}`, match: (d) => d.id.startsWith('a') },
    { name: 'kind= query', query: 'kind=service', match: (d) => d.kind === 'service' },
    {
      name: 'kind= AND a filter',
      query: `kind=edge&filter=${encodeURIComponent("labels.region IN ['us']")}`,
      match: (d) => d.kind === 'edge' && d.labels.region === 'us',
    },
    {
      name: 'label values in a disjunction',
      query: `filter=${encodeURIComponent("labels.region == 'eu' OR labels.region == 'us'")}`,
      match: (d) => d.labels.region === 'eu' || d.labels.region === 'us',
    },
  ];

  /** What a subscription must receive (SPEC §8): the commits that touched a descriptor matching
   * before or after, `changed` narrowed to those ids (first 100), counted in full. */
  interface Expected {
    version: number;
    changed: string[];
    changed_count: number;
  }
  interface ModelCommit {
    version: number;
    changes: { id: string; before: Descriptor | undefined; after: Descriptor | undefined }[];
  }
  const expectedFor = (commits: ModelCommit[], match: (d: Descriptor) => boolean): Expected[] =>
    commits.flatMap(({ version, changes }) => {
      const ids = changes.filter((ch) => (ch.before && match(ch.before)) || (ch.after && match(ch.after))).map((ch) => ch.id);
      return ids.length ? [{ version, changed: ids.slice(0, 100), changed_count: ids.length }] : [];
    });
  const received = (s: SseStream): Expected[] =>
    s.commits.map((d) => ({ version: d.version, changed: d.changed, changed_count: d.changed_count }));

  it('sends each subscriber exactly what a brute-force model says, live and resumed from the log and the ring', async () => {
    console.log(`filtered streams: seed ${seed} (STREAM_FILTER_SEED=${seed} replays this history)`);
    const random = prng(seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const url = (query: string) => `${reg.url}/registry/stream?${query}`;
    const unfiltered = await subscribe(`${reg.url}/registry/stream`);
    const live = await Promise.all(subscriptions.map((sub) => subscribe(url(sub.query))));

    const state = new Map<string, Descriptor>();
    const model: ModelCommit[] = [];
    const apply = async (ops: Op[]) => {
      const changes = ops.flatMap((op) => {
        if (op.op === 'set_signers') return [];
        const id = op.op === 'put' ? op.descriptor.id : op.id;
        return [{ id, before: state.get(id), after: op.op === 'put' ? op.descriptor : undefined }];
      });
      const version = await c.commit(ops);
      for (const ch of changes) {
        if (ch.after) state.set(ch.id, ch.after);
        else state.delete(ch.id);
      }
      model.push({ version, changes });
    };
    const ids = ['a', 'b', 'n'].flatMap((p) => range(1, 8).map((i) => `${p}-${i}`));
    const descriptor = (id: string): Descriptor => {
      const labels: Record<string, string> = {};
      const region = pick([undefined, 'eu', 'us', 'ap']);
      const status = pick([undefined, 'on', 'off']);
      if (region) labels.region = region;
      if (status) labels.status = status;
      if (random() < 0.3) labels.zone = pick(['z1', 'z2']);
      return { id, kind: pick(['node', 'service', 'edge']), labels, body: { r: Math.floor(random() * 1000) } };
    };
    for (let i = 1; i <= 100; i++) {
      if (i === 40) {
        // More matching changes than a frame lists: `changed` is cut at 100, `changed_count` is not.
        await apply(range(0, 129).map((j) => ({ op: 'put', descriptor: { ...descriptor(`a-big-${j}`), kind: 'node' } })));
        continue;
      }
      if (i === 60) {
        // Nothing but the signer set: no filtered subscriber hears of it.
        await apply([setSigners(signerSet(keys, 1))]);
        continue;
      }
      const chosen = new Set<string>();
      const n = 1 + Math.floor(random() * 4);
      while (chosen.size < n) chosen.add(pick(ids));
      await apply([...chosen].map((id): Op => (state.has(id) && random() < 0.35 ? del(id) : { op: 'put', descriptor: descriptor(id) })));
    }
    const head = model.at(-1)!.version;

    // Resumes: from the log (older than the ring of 10) and from the ring.
    const fromLog = await Promise.all(subscriptions.map((sub) => subscribe(url(sub.query), { headers: { 'last-event-id': '5' } })));
    const fromRing = await Promise.all(subscriptions.map((sub) => subscribe(`${url(sub.query)}&from=${head - 3}`)));
    // One last commit that every subscription matches: once it arrives, all before it has.
    await apply([
      { op: 'put', descriptor: { id: 'a-last-1', kind: 'node', labels: { region: 'eu', status: 'on' }, body: {} } },
      { op: 'put', descriptor: { id: 'a-last-2', kind: 'service', labels: { region: 'eu', status: 'on' }, body: {} } },
      { op: 'put', descriptor: { id: 'a-last-3', kind: 'edge', labels: { region: 'us', status: 'on' }, body: {} } },
    ]);
    const last = model.at(-1)!.version;
    await Promise.all([unfiltered, ...live, ...fromLog, ...fromRing].map((s) => s.waitForVersion(last)));

    // Unfiltered: every commit, the signer-set one too, with every id it changed.
    expect(received(unfiltered)).toEqual(
      model.map(({ version, changes }) => ({ version, changed: changes.slice(0, 100).map((ch) => ch.id), changed_count: changes.length })),
    );
    expect(unfiltered.versions).toEqual(range(1, last));
    const hashes = new Map(unfiltered.commits.map((d) => [d.version, d]));
    subscriptions.forEach((sub, i) => {
      const all = expectedFor(model, sub.match);
      expect(all.length, sub.name).toBeGreaterThan(1);
      expect(received(live[i]!), `${sub.name}, live`).toEqual(all);
      expect(received(fromLog[i]!), `${sub.name}, resumed from the log`).toEqual(all.filter((e) => e.version > 5));
      expect(received(fromRing[i]!), `${sub.name}, resumed from the ring`).toEqual(all.filter((e) => e.version > head - 3));
      for (const s of [live[i]!, fromLog[i]!, fromRing[i]!]) {
        for (const d of s.commits) {
          const whole = hashes.get(d.version)!;
          expect([d.hash, d.prev_hash, d.committed_at], sub.name).toEqual([whole.hash, whole.prev_hash, whole.committed_at]);
        }
      }
    });
    // The big commit reached the subscriptions its 130 nodes match, cut at 100.
    const big = model[39]!.version;
    const byKind = live[0]!.commits.find((d) => d.version === big)!;
    expect([byKind.changed.length, byKind.changed_count]).toEqual([100, 130]);
    for (const s of [unfiltered, ...live, ...fromLog, ...fromRing]) s.close();
  });
});

describe('a subscriber that stops reading', () => {
  let reg: TestRegistry;
  let c: Committer;
  beforeAll(
    async () =>
      ({ reg, c } = await start('stalls', {
        // One stream per address: a second one from the stalled subscriber's address is refused
        // (429) for as long as the server keeps it, which is how the test sees it dropped.
        config: { streamQueueFrames: 4, streamQueueBytes: 1024, streamMaxPerAddress: 1, synchronous: 'NORMAL' },
      })),
  );
  afterAll(() => reg.close());

  it('is dropped once its queue passes its bound, while a reading subscriber gets every commit and every commit lands', async () => {
    const STALLED = '127.0.0.7';
    const stalled = await stalledSubscriber(`${reg.url}/registry/stream`, { localAddress: STALLED });
    const healthy = await subscribe(`${reg.url}/registry/stream`);
    const stillHeld = async () => {
      const probe = await openSse(`${reg.url}/registry/stream`, { localAddress: STALLED });
      if (probe instanceof SseStream) {
        probe.close();
        return false;
      }
      expect(probe.status).toBe(429);
      return true;
    };
    expect(await stillHeld()).toBe(true);
    // Frames of ~20 KB (100 ids of ~200 characters): the kernel's socket buffers (a few MB on
    // the loopback) fill first, then the subscriber's queue (4 frames, 1 KB) passes its bound.
    const ids = range(0, 99).map((j) => `${'x'.repeat(195)}-${j}`);
    let last = 0;
    let dropped = false;
    for (let i = 1; i <= 3000 && !dropped; i++) {
      last = await c.commit(ids.map((id) => put(id, {}, { i })));
      if (i % 10 === 0) dropped = !(await stillHeld());
    }
    console.log(`stalled subscriber: dropped after ${last} commits of ~20 KB frames`);
    expect(dropped).toBe(true);
    // The server let go of the stalled stream: once the socket reads again, it reaches the end
    // of the response (or the connection is cut, if the server gave up on flushing it).
    stalled.socket.resume();
    const how = await Promise.race([
      stalled.over,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the stalled stream never ended')), 10_000)),
    ]);
    const text = stalled.received();
    expect(text.startsWith('HTTP/1.1 200')).toBe(true);
    if (how === 'finished') expect(text).toMatch(/event: lagged\ndata: \{[^\n]*\}\n\n\r\n0\r\n\r\n$/);
    console.log(
      `stalled subscriber: read ${text.length} bytes, then the stream ${how === 'finished' ? 'ended with event: lagged' : 'was cut'}`,
    );
    stalled.socket.destroy();
    // The reading subscriber missed nothing.
    await healthy.waitForVersion(last);
    expect(healthy.versions).toEqual(range(1, last));
    healthy.close();
  }, 60_000);
});

/** Retries `attempt` until it answers something, or fails at the deadline. */
async function eventually<T>(attempt: () => Promise<T | undefined>, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await attempt();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('a long resume read at full speed', () => {
  // Default queue bounds (1,024 frames, 4 MiB). 260 commits of 100 ids of ~200 characters make
  // ~5 MiB of frames: a resume from 0 replays more bytes than the live queue's bound at once.
  const genesis = genesisRecord('long-resume', keys, 1);
  const dir = tempDir();
  let reg: TestRegistry | undefined;
  let last = 0;
  beforeAll(async () => {
    reg = await startTestRegistry(genesis, { dir, config: { synchronous: 'NORMAL' } });
    const c = new Committer(() => reg!.url, 'long-resume', keys[0]!);
    const ids = range(0, 99).map((j) => `${'y'.repeat(195)}-${j}`);
    for (let i = 1; i <= 260; i++) last = await c.commit(ids.map((id) => put(id, {}, { i })));
  }, 60_000);
  afterAll(() => reg?.close());

  /** Resumes from 0 and reads as fast as the loopback goes: every commit must arrive, no `lagged`. */
  async function resumeFromZero(): Promise<void> {
    const s = await subscribe(`${reg!.url}/registry/stream`, { headers: { 'last-event-id': '0' } });
    try {
      await s.waitFor((x) => x.lastVersion === last || x.frames.some((f) => f.event === 'lagged'), `version ${last} or lagged`, 20_000);
      expect(
        s.frames.filter((f) => f.event !== 'commit').map((f) => f.event),
        `a reader at full speed was dropped after ${s.commits.length} of ${last} replayed commits`,
      ).toEqual([]);
      expect(s.versions).toEqual(range(1, last));
    } finally {
      s.close();
    }
  }

  it('replays from the ring (1,024 commits by default) without dropping a reader that keeps up', async () => {
    await resumeFromZero();
  });

  it('replays from the log without dropping a reader that keeps up', async () => {
    // Restarted over the same database: the ring is empty, the resume is served from the log.
    await reg!.close();
    reg = undefined;
    reg = await startTestRegistry(genesis, { dir, config: { synchronous: 'NORMAL' } });
    await resumeFromZero();
  });
});

describe('heartbeats', () => {
  let reg: TestRegistry;
  let c: Committer;
  beforeAll(async () => ({ reg, c } = await start('beats', { config: { streamHeartbeatMs: 200 } })));
  afterAll(() => reg.close());

  it('sends a comment frame every streamHeartbeatMs to every subscriber, between whole commit frames', async () => {
    const all = await subscribe(`${reg.url}/registry/stream`);
    const filtered = await subscribe(`${reg.url}/registry/stream?kind=nothing-matches`);
    await all.waitFor((s) => s.comments.length >= 1, 'a heartbeat', 5_000);
    const v = await c.commit([put('beat')]);
    await all.waitForVersion(v);
    await all.waitFor((s) => s.comments.length >= 3, 'three heartbeats', 5_000);
    await filtered.waitFor((s) => s.comments.length >= 2, 'two heartbeats on a filtered stream', 5_000);
    // Comments are whole frames of their own, `:` lines ended by a blank line, never inside a commit frame.
    const blocks = all.body.split('\n\n');
    expect(blocks.pop()).toBe('');
    for (const block of blocks) expect(block).toMatch(/^:[^\n]*(\n:[^\n]*)*$|^id: \d+\nevent: commit\ndata: [^\n]*$/);
    expect(blocks[0]).toMatch(/^:/);
    expect(all.versions).toEqual([v]);
    expect(filtered.frames).toEqual([]);
    all.close();
    filtered.close();
  });
});

describe('subscriber limits', () => {
  let reg: TestRegistry;
  beforeAll(async () => ({ reg } = await start('limits', { config: { streamMaxPerAddress: 2, streamMaxSubscribers: 3 } })));
  afterAll(() => reg.close());

  const open = (localAddress: string) => openSse(`${reg.url}/registry/stream`, { localAddress });
  async function refused(localAddress: string, status: number, code: string): Promise<void> {
    const r = await open(localAddress);
    expect(r, localAddress).not.toBeInstanceOf(SseStream);
    if (r instanceof SseStream) return r.close();
    expect(r.status).toBe(status);
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    expect(r.headers['cache-control']).toBe('no-store');
    expect((r.json as ErrorJson).error).toMatchObject({ code, retryable: true });
  }

  it('refuses a third stream from one address with 429, a fourth stream in all with 503, and frees a slot when a stream ends', async () => {
    const a1 = await subscribe(`${reg.url}/registry/stream`, { localAddress: '127.0.0.1' });
    const a2 = await subscribe(`${reg.url}/registry/stream`, { localAddress: '127.0.0.1' });
    await refused('127.0.0.1', 429, 'RateLimited');
    const b1 = await subscribe(`${reg.url}/registry/stream`, { localAddress: '127.0.0.2' });
    await refused('127.0.0.3', 503, 'Unavailable');
    await refused('127.0.0.1', 503, 'Unavailable');
    // A stream that ends gives its place back (to its address and to the total).
    a1.close();
    const a3 = await eventually(async () => {
      const r = await open('127.0.0.1');
      return r instanceof SseStream ? r : undefined;
    }, 'the place of the closed stream');
    await refused('127.0.0.3', 503, 'Unavailable');
    for (const s of [a2, b1, a3]) s.close();
    const again = await eventually(async () => {
      const r = await open('127.0.0.3');
      return r instanceof SseStream ? r : undefined;
    }, 'a place once every stream is gone');
    again.close();
  });
});

describe('shutdown', () => {
  it('ends every open stream with a last comment, and close() resolves', async () => {
    const { reg, c } = await start('shutdown', { config: { streamRingSize: 2 } });
    let closed = false;
    try {
      await c.commit([put('one', { region: 'eu' })]);
      await c.commit([put('two', { region: 'us' })]);
      await c.commit([put('three', { region: 'eu' })]);
      const streams = await Promise.all([
        subscribe(`${reg.url}/registry/stream`),
        subscribe(`${reg.url}/registry/stream?from=0`),
        subscribe(`${reg.url}/registry/stream?filter=${encodeURIComponent("labels.region == 'eu'")}`, {
          headers: { 'last-event-id': '0' },
        }),
        subscribe(`${reg.url}/registry/stream?filter=${encodeURIComponent("NOT (id == 'x')")}`),
      ]);
      // It reads its answer up to the last replayed commit, then stops reading.
      const stalled = await stalledSubscriber(`${reg.url}/registry/stream?from=0`);
      await stalled.readUntil(/id: 3\nevent: commit\ndata: [^\n]*\n\n/);
      await streams[1].waitForVersion(3);
      await streams[2].waitForVersion(3);
      const closing = reg.close().then(() => (closed = true));
      await Promise.race([closing, new Promise((_, reject) => setTimeout(() => reject(new Error('close() did not resolve')), 5_000))]);
      for (const s of streams) {
        await Promise.race([s.ended, new Promise((_, reject) => setTimeout(() => reject(new Error('a stream did not end')), 5_000))]);
        // The response finished (its last chunk arrived), it was not cut.
        expect(s.completed).toBe(true);
        const last = s.items.at(-1);
        expect(last?.type).toBe('comment');
        expect(last?.type === 'comment' && last.text).toMatch(/shutting down/);
        expect(s.raw).toMatch(/(^|\n\n): [^\n]*shutting down[^\n]*\n\n$/);
      }
      expect(streams.map((s) => s.versions)).toEqual([[], [1, 2, 3], [1, 3], []]);
      // The subscriber that never read gets the same ending once it reads.
      stalled.socket.resume();
      expect(await stalled.over).toMatch(/finished|closed/);
      expect(stalled.received()).toMatch(/: [^\n]*shutting down[^\n]*\n\n\r\n0\r\n\r\n$/);
      stalled.socket.destroy();
    } finally {
      if (!closed) await reg.close();
    }
  });
});
