// `npm start` with no genesis: a development registry whose freshly generated keys work.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { signApproval } from '../../src/core/crypto.js';
import { hashOf } from '../../src/core/encoding.js';
import { ensureDevGenesis } from '../../src/cli/dev-registry.js';
import { DEFAULTS } from '../../src/config/config.js';
import { createLogger } from '../../src/obs/logger.js';
import { startRegistry, type RunningRegistry } from '../../src/server.js';
import { proposal, put } from '../helpers/fixtures.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, tempDir } from '../helpers/server.js';

let reg: RunningRegistry | undefined;
afterEach(async () => {
  await reg?.close();
  reg = undefined;
});

describe('the development registry', () => {
  it('creates a 2-of-3 genesis with 0600 keys beside it, keeps it across restarts, and commits with those keys', async () => {
    const dir = tempDir();
    const logger = createLogger('silent');
    const config = {
      ...DEFAULTS,
      dataDir: dir,
      db: join(dir, 'registry.db'),
      port: 0,
      logLevel: 'silent' as const,
      genesis: ensureDevGenesis(dir, logger),
    };
    reg = await startRegistry(config, logger);
    const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    expect(head.signer_set.threshold).toBe(2);
    expect(head.signer_set.signers.map((s) => s.id)).toEqual(['alice', 'bob', 'carol']);
    const keys = ['alice', 'bob'].map((id) => {
      const file = join(dir, 'dev-keys', `${id}.key`);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      return JSON.parse(readFileSync(file, 'utf8')) as { signer_id: string; secret_key: string };
    });
    await reg.close();

    // A second start finds the genesis it made and keeps it.
    reg = await startRegistry({ ...config, genesis: ensureDevGenesis(dir, logger) }, logger);
    const again = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    expect(again.hash).toBe(head.hash);
    const p = proposal('dev', again, [put('svc-dev')]);
    const id = hashOf(p);
    const r = await request(reg.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: keys.map((k) => ({ signer_id: k.signer_id, sig: signApproval(k.secret_key, id) })),
    });
    expect(r.json).toMatchObject({ status: 'committed', version: 1 });
  });
});
