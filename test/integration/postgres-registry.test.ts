// A whole registry on PostgreSQL: started with `store: postgres://…`, it commits, serves,
// checkpoints and prunes, restarts on the same database with the same head, and verifies its log
// in full. Several instances on one log: test/integration/cluster.test.ts. The PostgreSQL server
// is a real one, started here (test/helpers/postgres.ts).
import { existsSync } from 'node:fs';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config/config.js';
import type { CommitRecord } from '../../src/core/schemas.js';
import { Committer } from '../helpers/commits.js';
import { genesisRecord, put, setSigners, signerSet, signers, type TestSigner } from '../helpers/fixtures.js';
import { postgresForSuite, postgresSkipReason } from '../helpers/postgres.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

const SKIP = postgresSkipReason();
if (SKIP) console.warn(`postgres-registry: not run: ${SKIP}`);

const keys = signers('alice', 'bob', 'carol');
const [alice, bob] = keys as [TestSigner, TestSigner, TestSigner];

describe.skipIf(SKIP !== undefined)('a registry on PostgreSQL', () => {
  const pg = postgresForSuite();

  const running: TestRegistry[] = [];
  const clients: postgres.Sql[] = [];
  afterEach(async () => {
    for (const r of running.splice(0)) await r.close();
    for (const c of clients.splice(0)) await c.end();
  });

  /** A raw connection to the registry's database, beside it. */
  const connect = (url: string): postgres.Sql => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    clients.push(sql);
    return sql;
  };

  async function start(g: CommitRecord, url: string, config: Partial<Config> = {}): Promise<TestRegistry> {
    const reg = await startTestRegistry(g, { config: { store: url, ...config } });
    running.push(reg);
    await reg.verified;
    // Until src/server.ts opens config.store (openStore, src/store/open-store.ts), the registry
    // writes SQLite at `db` and ignores the URL: say so, rather than fail on a symptom.
    const [found] = await connect(url)<{ ok: boolean }[]>`SELECT to_regclass('commits') IS NOT NULL AS ok`;
    if (!found?.ok || existsSync(reg.db))
      throw new Error(
        `the registry did not keep its log in PostgreSQL (${found?.ok ? 'tables there' : 'no tables there'}, ` +
          `${existsSync(reg.db) ? `a SQLite file at ${reg.db}` : 'no SQLite file'}): src/server.ts must open config.store with openStore`,
      );
    return reg;
  }

  const head = async (reg: TestRegistry) => (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
  const ready = async (reg: TestRegistry) => (await request(reg.url, 'GET', '/readyz')).json;

  it('commits, serves and audits from PostgreSQL, and restarts on it with the same head', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('pg', [alice, bob], 1);
    const reg = await start(g, url);
    const committer = new Committer(() => reg.url, 'pg', alice);
    for (let i = 1; i <= 3; i++) expect(await committer.commit([put(`svc-${i}`, { n: String(i) })])).toBe(i);
    expect(await ready(reg)).toEqual({ read: true, write: true, reasons: [] });
    const sql = connect(url);
    const rows = await sql<{ version: number; hash: string }[]>`SELECT version::integer AS version, hash FROM commits ORDER BY version`;
    const before = await head(reg);
    expect(rows.map((r) => r.version)).toEqual([0, 1, 2, 3]);
    expect(rows[3]!.hash).toBe(before.hash);
    const audit = await request<{ events: unknown[] }>(reg.url, 'GET', '/registry/audit?limit=1000');
    const [stored] = await sql<{ n: number }[]>`SELECT COUNT(*)::integer AS n FROM audit`;
    expect(audit.json.events).toHaveLength(stored!.n);
    const record2 = (await request(reg.url, 'GET', '/registry/2')).text;
    await reg.close();
    running.splice(running.indexOf(reg), 1);

    const again = await start(g, url);
    expect(await head(again)).toEqual(before);
    expect((await request(again.url, 'GET', '/registry/2')).text).toBe(record2);
    expect(
      (await request<{ descriptor: { labels: { n: string } } }>(again.url, 'GET', '/registry/descriptors/svc-2')).json.descriptor.labels.n,
    ).toBe('2');
    expect(await ready(again)).toEqual({ read: true, write: true, reasons: [] });
    expect(await new Committer(() => again.url, 'pg', bob).commit([put('svc-4')])).toBe(4);
  });

  it('checkpoints and prunes behind the horizon, and starts from its checkpoint after', async () => {
    const url = await pg().createDatabase();
    const g = genesisRecord('pg', [alice, bob], 1);
    const config = { checkpointEvery: 2, retainCommits: 2 };
    const reg = await start(g, url, config);
    const committer = new Committer(() => reg.url, 'pg', alice);
    // Each checkpoint is let finish before the next commit: a build takes the head when it runs,
    // and on PostgreSQL commits would otherwise land while it writes, moving the versions.
    const commit = async (ops: Parameters<Committer['commit']>[0]) => {
      await committer.commit(ops);
      await reg.checkpointer.idle();
    };
    await commit([put('a')]);
    await commit([setSigners(signerSet(keys, 1))]);
    for (let i = 3; i <= 8; i++) await commit([put(`svc-${i}`)]);
    const checkpoints = (await request<{ items: { version: number }[] }>(reg.url, 'GET', '/registry/checkpoints')).json.items;
    expect(checkpoints.map((c) => c.version)).toEqual([6, 8]);
    // Pruned: 1, 4, 5; kept: the genesis, the signer-set change (2), the record after it (3), and from 6.
    for (const v of [1, 4, 5]) expect((await request(reg.url, 'GET', `/registry/${v}`)).status, `version ${v}`).toBe(410);
    for (const v of [0, 2, 3, 6, 7, 8]) expect((await request(reg.url, 'GET', `/registry/${v}`)).status, `version ${v}`).toBe(200);
    const sql = connect(url);
    await expect(sql`UPDATE commits SET record = '' WHERE version = 3`).rejects.toThrow(/only a payload older than the oldest checkpoint/);
    const before = await head(reg);
    await reg.close();
    running.splice(running.indexOf(reg), 1);

    const again = await start(g, url, config);
    expect(await head(again)).toEqual(before);
    expect(await ready(again)).toEqual({ read: true, write: true, reasons: [] });
    expect((await request(again.url, 'GET', '/registry/6/descriptors')).status).toBe(200);
  });
});
