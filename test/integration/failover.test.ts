// Cluster mode through a real failover (README → PostgreSQL and cluster mode): three registry
// instances on a pg_auto_failover formation (a monitor, a primary and a synchronous standby,
// test/helpers/pg-auto-failover.ts), writers on every instance committing at once, an SSE
// subscriber on every instance, then a SIGKILL of the primary's whole node. After the promotion
// commits go on; nothing acknowledged is lost, no version is duplicated, every instance converges
// on the same head, and every subscriber saw every commit once, in order. The write gap (the kill
// to the first commit acknowledged after it) is printed.
//
// `npm test` runs it once; `npm run test:failover` runs it FAILOVER_RUNS times (default 3), each
// on a new formation.
import { afterEach, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import { approve, genesisRecord, proposal, put, signers, type TestSigner } from '../helpers/fixtures.js';
import { autoFailoverSkipReason, startFailoverCluster, type FailoverCluster } from '../helpers/pg-auto-failover.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';
import { subscribe, type SseStream } from '../helpers/sse.js';

const SKIP = autoFailoverSkipReason();
if (SKIP) console.warn(`failover: not run: ${SKIP}`);

const RUNS = Number(process.env.FAILOVER_RUNS ?? 1);
const [alice] = signers('alice') as [TestSigner];
const WRITERS_PER_INSTANCE = 2;

interface Ack {
  version: number;
  proposalId: string;
  at: number;
}

describe.skipIf(SKIP !== undefined)('a cluster through a failover of its PostgreSQL', () => {
  let formation: FailoverCluster | undefined;
  const running: TestRegistry[] = [];
  const streams: SseStream[] = [];
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    await Promise.all(running.splice(0).map((r) => r.close()));
    await formation?.stop();
    formation = undefined;
  }, 120_000);

  for (let run = 1; run <= RUNS; run++) {
    it(`keeps every acknowledged commit across a SIGKILL of the primary, and commits after the promotion (run ${run} of ${RUNS})`, async () => {
      formation = await startFailoverCluster();
      const g = genesisRecord('failover', [alice], 1);
      for (let i = 0; i < 3; i++) {
        const reg = await startTestRegistry(g, { config: { store: formation.url, followPollMs: 200 } });
        running.push(reg);
        await reg.verified;
      }
      for (const reg of running) streams.push(await subscribe(`${reg.url}/registry/stream`));

      const acks: Ack[] = [];
      const refusals = new Map<number, number>();
      let stopping = false;
      let seq = 0;
      const waiting: (() => void)[] = [];
      /** Commits through `reg` until told to stop: a 409 (another instance took the version) or a
       * 503 (the database away) is retried on the head read again. */
      const writer = async (reg: TestRegistry): Promise<void> => {
        while (!stopping) {
          const head = await request<HeadJson>(reg.url, 'GET', '/registry/head');
          const p = proposal('failover', head.json, [put(`svc-${++seq}`)]);
          const r = await request<{ status: string; version: number }>(reg.url, 'POST', '/registry/proposals', {
            payload: p,
            approvals: [approve(alice, hashOf(p))],
          });
          if (r.status === 201 && r.json.status === 'committed')
            acks.push({ version: r.json.version, proposalId: hashOf(p), at: performance.now() });
          else {
            // Only the answers a single instance gives while its log is away or has moved on.
            expect([409, 503], r.text).toContain(r.status);
            expect(Number(r.headers.get('retry-after') ?? 1)).toBeGreaterThan(0);
            refusals.set(r.status, (refusals.get(r.status) ?? 0) + 1);
          }
          for (const wake of waiting.splice(0)) wake();
        }
      };
      const writers = Promise.all(running.flatMap((reg) => Array.from({ length: WRITERS_PER_INSTANCE }, () => writer(reg))));
      const reached = (ok: () => boolean): Promise<void> =>
        Promise.race([
          new Promise<void>((resolve) => {
            const check = () => (ok() ? resolve() : void waiting.push(check));
            check();
          }),
          writers.then(() => {
            throw new Error(`the writers stopped at ${acks.length} commits`);
          }),
        ]);

      await reached(() => acks.length >= 30);
      const killed = await formation.killPrimary();
      const killedAt = performance.now();
      const ackedBefore = acks.length;
      const promoted = await formation.waitForPromotion(killed, 60_000);
      expect(promoted.name).not.toBe(killed.name);
      await reached(() => acks.filter((a) => a.at > killedAt).length >= 30);
      stopping = true;
      await writers;
      const firstAfter = acks.find((a) => a.at > killedAt)!;

      // No version acknowledged twice, and each acknowledged commit is the log's, on every instance.
      const versions = acks.map((a) => a.version);
      expect(new Set(versions).size).toBe(versions.length);
      const top = Math.max(...versions);
      for (const reg of running) {
        await waitForHead(reg, top);
      }
      const heads = await Promise.all(running.map(async (r) => (await request<HeadJson>(r.url, 'GET', '/registry/head')).json));
      for (const h of heads) expect(h).toEqual(heads[0]);
      const head = heads[0]!.version;
      for (const ack of acks) {
        const record = await request<{ payload_hash: string }>(running[ack.version % 3]!.url, 'GET', `/registry/${ack.version}`);
        expect(record.json.payload_hash, `version ${ack.version}`).toBe(ack.proposalId);
      }
      // Every subscriber saw every commit once, in order.
      const all = Array.from({ length: head }, (_, i) => i + 1);
      for (const s of streams) {
        await s.waitFor((x) => x.versions.length >= head, `${head} commits`, 20_000);
        expect(s.versions).toEqual(all);
      }
      // After the failover every instance takes writes again.
      for (const reg of running) expect((await request<{ write: boolean }>(reg.url, 'GET', '/readyz')).json.write).toBe(true);
      console.log(
        `failover run ${run}: ${killed.name} killed after ${ackedBefore} commits; ${promoted.name} promoted; ` +
          `write gap ${Math.round(firstAfter.at - killedAt)} ms (kill → first commit acknowledged after it); ` +
          `head ${head}; refusals ${JSON.stringify(Object.fromEntries(refusals))}`,
      );
    }, 180_000);
  }
});

/** Resolves once `reg` serves `version` as its head or later (it follows the log). */
async function waitForHead(reg: TestRegistry, version: number): Promise<void> {
  const stream = await subscribe(`${reg.url}/registry/stream`, { headers: { 'last-event-id': String(version - 1) } });
  try {
    await stream.waitFor((s) => s.versions.includes(version), `version ${version} at ${reg.url}`, 20_000);
  } finally {
    stream.close();
  }
}
