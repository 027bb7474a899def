import { afterEach, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

let reg: TestRegistry | undefined;
afterEach(async () => {
  await reg?.close();
  reg = undefined;
});

describe('smoke', () => {
  it('commits a 2-of-3 proposal over HTTP', async () => {
    const keys = signers('alice', 'bob', 'carol');
    const g = genesisRecord('smoke', keys, 2);
    reg = await startTestRegistry(g);
    const head = await request(reg.url, 'GET', '/registry/head');
    const p = proposal('smoke', head.json, [put('svc-a')]);
    const id = hashOf(p);
    const r1 = await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [approve(keys[0]!, id)] });
    expect(r1.status).toBe(201);
    const r2 = await request(reg.url, 'POST', `/registry/proposals/${id}/approvals`, approve(keys[1]!, id));
    expect(r2.json).toMatchObject({ status: 'committed', version: 1 });
  });
});
