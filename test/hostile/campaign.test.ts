// The hostile-input campaign (issue 14, item 8): more than 20,000 generated and mutated
// requests against every route of a real registry on a real port, over kept-alive and fresh
// connections and raw sockets. Every answer is a 2xx/304, or a 4xx carrying the SPEC §7
// envelope with a code whose status it is: never a 5xx, never a hang (10 s per request).
//
// Requests without a signature that verifies under a key of this registry change nothing:
// after every batch of them the head and the audit log are what they were. Signed requests
// (mutated payloads signed by the registry's own and removed signers) may commit and may be
// audited (SPEC §9 audits refused signed claims), but only under the proposal ids they carried.
// At the end, the hash chain of every commit and the audit chain are recomputed.
//
// The seed is printed; HOSTILE_SEED=<n> replays a run (keys are derived from it; timestamps,
// and so proposal ids, differ), HOSTILE_SHRINK=1 lets fast-check shrink a failing batch.
import { setTimeout as delay } from 'node:timers/promises';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registeredRoutes } from '../../src/http/openapi.js';
import { bounded, describeRequest, HostileClient, problemWith, sendRaw } from '../helpers/hostile-http.js';
import { request } from '../helpers/server.js';
import { AnswerSchemas } from './answers.js';
import { genericRequest, rawRequest, signedRequest, unsignedRequest, type Ctx, type Generated } from './arbitraries.js';
import { World } from './world.js';

function seedFromEnv(): number {
  const given = process.env.HOSTILE_SEED;
  if (given === undefined || given === '') return Date.now() % 2 ** 31;
  if (!/^-?\d{1,10}$/.test(given) || !Number.isSafeInteger(Number(given))) throw new Error(`HOSTILE_SEED must be an integer, not ${given}`);
  return Number(given) | 0;
}

const SEED = seedFromEnv();
const SHRINK = process.env.HOSTILE_SHRINK === '1';

// The campaign's size: segments, each with its own head and pending proposals, then batches.
// HOSTILE_SCALE multiplies the runs (0.1 for a quick look, 10 for a long night).
const SCALE = Number(process.env.HOSTILE_SCALE ?? 1);
if (!(SCALE > 0)) throw new Error(`HOSTILE_SCALE must be a positive number, not ${process.env.HOSTILE_SCALE}`);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const SEGMENTS = 6;
const UNSIGNED_RUNS = runs(180);
const UNSIGNED_BATCH = 16;
const RAW_RUNS = runs(40);
const RAW_BATCH = 8;
const SIGNED_RUNS = runs(30);
const SIGNED_BATCH = 8;
const IN_FLIGHT = 12;

/** The routes the generators aim at on purpose; any other route gets generic requests. */
const TARGETED = new Set([
  'GET /registry/head',
  'GET /registry/:version',
  'GET /registry/head/descriptors',
  'GET /registry/:version/descriptors',
  'GET /registry/descriptors/*',
  'POST /registry/descriptors::batch',
  'GET /registry/diff',
  'GET /registry/proposals',
  'GET /registry/proposals/:id',
  'POST /registry/proposals',
  'POST /registry/proposals/:id/approvals',
  'GET /registry/audit',
  'GET /registry/stream',
  'GET /openapi.json',
  'GET /healthz',
  'GET /readyz',
  'GET /version',
]);

const world = new World(SEED);
let client: HostileClient;
let schemas: AnswerSchemas;
const counts = new Map<string, number>();
const count = (route: string) => counts.set(route, (counts.get(route) ?? 0) + 1);
/** Milliseconds spent waiting for answers, by route. */
const waited = new Map<string, number>();
const wait = (route: string, ms: number) => waited.set(route, (waited.get(route) ?? 0) + ms);
let invariantChecks = 0;

beforeAll(async () => {
  console.log(`hostile campaign: seed ${SEED} (replay with HOSTILE_SEED=${SEED})`);
  await world.start();
  client = new HostileClient(world.url, IN_FLIGHT);
  const doc = await request<ConstructorParameters<typeof AnswerSchemas>[0]>(world.url, 'GET', '/openapi.json');
  schemas = new AnswerSchemas(doc.json, registeredRoutes(world.reg.app));
}, 60_000);
afterAll(async () => {
  client?.close();
  await world.reg?.close();
});

/** Sends a batch; the problems with its answers. */
async function sendAll(batch: Generated[], inFlight: number): Promise<string[]> {
  const problems: string[] = [];
  await bounded(
    batch.map(({ request: r }) => async () => {
      count(r.route);
      const t = performance.now();
      try {
        const a = await client.send(r);
        wait(r.route, performance.now() - t);
        const p = problemWith(a.status, a.headers, a.body, a.cut, {
          method: r.method,
          headers: r.headers,
          validate: (status, json) => schemas.problem(r.method, r.path, status, json),
          documentedTypes: (status) => schemas.types(r.method, r.path, status),
        });
        if (p) problems.push(`${describeRequest(r)}\n    -> ${a.status}: ${p}${a.status >= 500 ? serverLog() : ''}`);
      } catch (e) {
        problems.push(`${describeRequest(r)}\n    -> ${(e as Error).message}`);
      }
    }),
    inFlight,
  );
  return problems;
}

/** What the server logged at warn and above lately: the cause of a 5xx. */
const serverLog = () => `\n    server log: ${world.serverErrors.slice(-3).join('    ') || '(nothing)'}`;

/** The head and the audit log must be as they were. */
async function unchanged(): Promise<string[]> {
  invariantChecks++;
  const before = world.head;
  const after = await world.refresh();
  const events = await world.newAuditEvents();
  const problems: string[] = [];
  if (after.version !== before.version || after.hash !== before.hash)
    problems.push(`the head moved from ${before.version} ${before.hash} to ${after.version} ${after.hash}`);
  if (events.length) problems.push(`the audit log grew: ${JSON.stringify(events).slice(0, 1000)}`);
  return problems;
}

async function check(phase: string, seg: number, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (e) {
    // fast-check reports the run (its seed and path, the batch) and keeps our problems as the cause.
    const report = (e as Error).message;
    const cause = (e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : '';
    throw new Error(
      `hostile campaign failed in segment ${seg}, ${phase} (replay: HOSTILE_SEED=${SEED}${SHRINK ? ' HOSTILE_SHRINK=1' : ''}):\n` +
        `${cause}\n\n${report.length > 3000 ? `${report.slice(0, 3000)}…` : report}`,
      { cause: e },
    );
  }
}

const options = (seg: number, phase: number, numRuns: number) => ({
  seed: (SEED + seg * 1000 + phase) | 0,
  numRuns,
  endOnFailure: !SHRINK,
});

describe('the hostile-input campaign', () => {
  it('answers every generated and mutated request with a 2xx/304 or a 4xx envelope, and only signed requests change anything', async () => {
    const started = performance.now();
    const uncovered = registeredRoutes(world.reg.app).filter((r) => r.method !== 'HEAD' && !TARGETED.has(`${r.method} ${r.url}`));
    const times: Record<string, number> = { unsigned: 0, raw: 0, signed: 0, setup: 0 };
    const timed = async (name: string, f: () => Promise<void>) => {
      const t = performance.now();
      await f();
      times[name]! += performance.now() - t;
    };

    for (let seg = 0; seg < SEGMENTS; seg++) {
      let ctx!: Ctx;
      await timed('setup', async () => {
        await world.nextSegment(seg);
        ctx = await world.ctx();
      });
      const generic = uncovered.flatMap((r) => [
        genericRequest(ctx, r.method, r.url),
        ...(r.method === 'GET' ? [genericRequest(ctx, 'HEAD', r.url)] : []),
      ]);
      const unsigned = generic.length
        ? fc.oneof(
            { weight: 15 * generic.length, arbitrary: unsignedRequest(ctx) },
            ...generic.map((arbitrary) => ({ weight: 1, arbitrary })),
          )
        : unsignedRequest(ctx);

      // Nothing without a valid signature may change the head or the audit log.
      await timed('unsigned', () =>
        check('unsigned requests', seg, () =>
          fc.assert(
            fc.asyncProperty(fc.array(unsigned, { minLength: UNSIGNED_BATCH, maxLength: UNSIGNED_BATCH }), async (batch) => {
              const problems = [...(await sendAll(batch, IN_FLIGHT)), ...(await unchanged())];
              if (problems.length) throw new Error(problems.join('\n'));
            }),
            options(seg, 1, UNSIGNED_RUNS),
          ),
        ),
      );

      // What node:http will not send, on raw sockets.
      await timed('raw', () =>
        check('raw requests', seg, () =>
          fc.assert(
            fc.asyncProperty(fc.array(rawRequest(), { minLength: RAW_BATCH, maxLength: RAW_BATCH }), async (batch) => {
              const problems: string[] = [];
              await bounded(
                batch.map(({ bytes, label }) => async () => {
                  count('(raw socket)');
                  try {
                    const { answers, rest } = await sendRaw(world.url, bytes);
                    const final = answers.filter((a) => a.status >= 200);
                    // Blank lines alone are no request (RFC 9112 §2.2 lets a server skip them): nothing to answer.
                    if (!final.length && bytes.toString('latin1').trim() !== '')
                      problems.push(
                        `${label}\n    -> the connection closed without an answer${rest.length ? `: ${rest.toString('latin1').slice(0, 200)}` : ''}`,
                      );
                    for (const a of final) {
                      const p = problemWith(a.status, a.headers, a.body, false, { method: 'GET' });
                      if (p) problems.push(`${label}\n    -> ${a.status}: ${p}`);
                    }
                    if (rest.length) problems.push(`${label}\n    -> a partial answer: ${rest.toString('latin1').slice(0, 200)}`);
                  } catch (e) {
                    problems.push(`${label}\n    -> ${(e as Error).message}`);
                  }
                }),
                RAW_BATCH,
              );
              problems.push(...(await unchanged()));
              if (problems.length) throw new Error(problems.join('\n'));
            }),
            options(seg, 2, RAW_RUNS),
          ),
        ),
      );

      // Signed requests: they may commit and be audited, under the ids they carry only.
      await timed('signed', () =>
        check('signed requests', seg, () =>
          fc.assert(
            fc.asyncProperty(fc.array(signedRequest(ctx), { minLength: SIGNED_BATCH, maxLength: SIGNED_BATCH }), async (batch) => {
              for (const g of batch) for (const id of g.mayTouch) world.allowed.add(id);
              const problems = await sendAll(batch, SIGNED_BATCH);
              problems.push(...world.unexplained(await world.newAuditEvents()));
              await world.refresh();
              if (problems.length) throw new Error(problems.join('\n'));
            }),
            options(seg, 3, SIGNED_RUNS),
          ),
        ),
      );
    }

    const { commits, events } = await world.verifyChains();
    // Every stream the campaign opened was cut short by its client: none may linger.
    const left = await Promise.race([
      world.reg.hub.whenEmpty().then(() => 0),
      // A bound on the wait, not a sleep: the hub resolves whenEmpty() as its last stream closes.
      delay(5000).then(() => world.reg.hub.size),
    ]);
    expect(left, 'stream subscribers left behind by clients that went away').toBe(0);
    const seconds = (performance.now() - started) / 1000;
    const total = [...counts.values()].reduce((a, b) => a + b, 0);
    const table = [...counts.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(
        ([route, n]) =>
          `  ${String(n).padStart(6)}  ${route}${waited.has(route) ? ` (mean ${((waited.get(route) ?? 0) / n).toFixed(1)} ms)` : ''}`,
      )
      .join('\n');
    console.log(
      `hostile campaign: seed ${SEED}: ${total} requests (+${invariantChecks} head/audit checks) in ${seconds.toFixed(1)} s ` +
        `(unsigned ${(times.unsigned! / 1000).toFixed(1)} s, raw ${(times.raw! / 1000).toFixed(1)} s, signed ${(times.signed! / 1000).toFixed(1)} s, ` +
        `setup ${(times.setup! / 1000).toFixed(1)} s); ${commits} commits and ${events} audit events verified\n${table}`,
    );

    if (SCALE >= 1) expect(total).toBeGreaterThanOrEqual(20_000);
    // Every route the service has was attacked, HEAD routes included.
    for (const r of registeredRoutes(world.reg.app))
      expect(counts.get(`${r.method} ${r.url}`) ?? 0, `${r.method} ${r.url}`).toBeGreaterThanOrEqual(SCALE >= 1 ? 20 : 1);
  }, 300_000);
});
