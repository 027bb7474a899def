// Commits quickly on a 1-of-N test registry: one POST /registry/proposals carrying the approval
// that reaches quorum commits at once (SPEC §6).
import { hashOf } from '../../src/core/encoding.js';
import type { Op } from '../../src/core/schemas.js';
import { approve, proposal, type TestSigner } from './fixtures.js';
import type { HeadJson } from './responses.js';
import { request } from './server.js';

export class Committer {
  constructor(
    private readonly url: () => string,
    private readonly registryId: string,
    private readonly signer: TestSigner,
  ) {}

  /** Commits `ops` on the current head and answers the new version. One committer at a time. */
  async commit(ops: Op[]): Promise<number> {
    const head = await request<HeadJson>(this.url(), 'GET', '/registry/head');
    if (head.status !== 200) throw new Error(`GET /registry/head answered ${head.status}: ${head.text.slice(0, 300)}`);
    const p = proposal(this.registryId, head.json, ops);
    const r = await request<{ status: string; version: number }>(this.url(), 'POST', '/registry/proposals', {
      payload: p,
      approvals: [approve(this.signer, hashOf(p))],
    });
    if (r.status !== 201 || r.json.status !== 'committed') throw new Error(`the commit was not made: ${r.status} ${r.text.slice(0, 300)}`);
    return r.json.version;
  }
}
