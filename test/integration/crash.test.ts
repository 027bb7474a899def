// Nothing acknowledged is lost across a crash: SIGKILL the server while commits are in
// flight, restart it on the same SQLite file, and find every acknowledged commit.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import type { CommitRecord } from '../../src/core/schemas.js';
import type { ProposalView } from '../../src/state/proposal-view.js';
import { checkAuditChain, readAudit } from '../helpers/audit.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import { spawnServer, type ServerProcess } from '../helpers/process.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, tempDir } from '../helpers/server.js';

const procs: ServerProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) p.child.kill('SIGKILL');
});

describe('crash safety', () => {
  it('keeps every acknowledged commit after SIGKILL in the middle of a stream of commits', async () => {
    const keys = signers('alice', 'bob');
    const dir = tempDir();
    const genesisPath = join(dir, 'genesis.json');
    writeFileSync(genesisPath, JSON.stringify(genesisRecord('crash', keys, 2)));
    const args = ['--genesis', genesisPath, '--db', join(dir, 'registry.db')];
    const first = await spawnServer(args);
    procs.push(first);

    const acked = new Map<number, string>(); // version -> proposal id
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const head = (await request<HeadJson>(first.url, 'GET', '/registry/head')).json;
        const p = proposal('crash', head, [put(`d-${i}`, {}, { i })]);
        const id = hashOf(p);
        // A reply cut short by the kill may hold no JSON (json undefined).
        const r = await request<ProposalView | undefined>(first.url, 'POST', '/registry/proposals', {
          payload: p,
          approvals: [approve(keys[0]!, id), approve(keys[1]!, id)],
        });
        if (r.json?.status === 'committed') acked.set(r.json.version!, id);
      }
    })().catch(() => undefined); // the kill cuts the last request off
    // Kill once a good number of commits have been acknowledged, while more are in flight.
    await new Promise<void>((resolve) => {
      const poll = () => (acked.size >= 25 ? resolve() : setImmediate(poll));
      poll();
    });
    first.child.kill('SIGKILL');
    await first.exited;
    stop = true;
    await writer;

    const second = await spawnServer(args);
    procs.push(second);
    const head = (await request<HeadJson>(second.url, 'GET', '/registry/head')).json;
    const maxAcked = Math.max(...acked.keys());
    expect(head.version).toBeGreaterThanOrEqual(maxAcked);
    let prev: string | null = null;
    for (let v = 0; v <= head.version; v++) {
      const rec = (await request<CommitRecord>(second.url, 'GET', `/registry/${v}`)).json;
      expect(rec.prev_hash).toBe(prev);
      if (acked.has(v)) expect(rec.payload_hash).toBe(acked.get(v));
      prev = hashOf(rec);
    }
    expect(prev).toBe(head.hash);
    checkAuditChain(await readAudit(second.url));
  });
});
