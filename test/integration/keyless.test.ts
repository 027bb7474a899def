// What a party without a key can make the service do, over real HTTP (issue 14; perf/keyless.mjs
// measures what it costs): a proposal whose approvals no signer of the registry validly signed is
// refused 422 by the screen, before the payload is validated or planned, whatever its size; it
// stores nothing and adds nothing to the audit log (SPEC §9). A valid signer's malformed payload
// is still a 400, and proposed signers may still add approvals to a known rotation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signApproval } from '../../src/core/crypto.js';
import { hashOf } from '../../src/core/encoding.js';
import type { Approval, Op, ProposalPayload } from '../../src/core/schemas.js';
import { readAudit } from '../helpers/audit.js';
import { approve, genesisRecord, proposal, put, setSigners, signers, signerSet } from '../helpers/fixtures.js';
import type { ErrorJson, HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

const keys = signers('alice', 'bob', 'carol');
const [mallory] = signers('mallory');
let reg: TestRegistry;
let h0: HeadJson;

beforeAll(async () => {
  reg = await startTestRegistry(genesisRecord('keyless', keys, 2));
  h0 = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
});
afterAll(() => reg.close());

/** 10,000 put ops, about 1 MiB in all. */
const bigOps = (): Op[] => Array.from({ length: 10_000 }, (_, i) => put(`svc-${i}`, {}, { p: 'x'.repeat(12) }));
const big = (): ProposalPayload => proposal('keyless', h0, bigOps());

/** Posts a proposal; answers the status, the error, and whether the log stayed as it was. */
async function submit(payload: unknown, approvals: unknown, extra: object = {}) {
  const before = { audit: (await readAudit(reg.url)).length, unaudited: reg.writer.refusals.unaudited };
  const body = JSON.stringify({ payload, approvals, ...extra });
  const r = await request<ErrorJson>(reg.url, 'POST', '/registry/proposals', body);
  const audit = await readAudit(reg.url);
  return {
    status: r.status,
    json: r.json,
    bytes: body.length,
    audited: audit.length - before.audit,
    unaudited: reg.writer.refusals.unaudited - before.unaudited,
  };
}

describe('the screen of POST /registry/proposals', () => {
  it('refuses a 1 MiB, 10,000-op proposal with a stranger’s approval: 422, nothing stored, nothing audited', async () => {
    const p = big();
    const r = await submit(p, [{ signer_id: mallory!.id, sig: signApproval(mallory!.secretKey, hashOf(p)) }]);
    expect(r.bytes).toBeGreaterThan(900_000);
    expect(r.bytes).toBeLessThan(1024 * 1024);
    expect(r.status).toBe(422);
    expect(r.json.error).toMatchObject({
      code: 'BadSignature',
      message: 'approval refused (mallory: not a signer of this registry for this proposal)',
    });
    expect(r.audited).toBe(0);
    expect(r.unaudited).toBe(1);
    expect((await request(reg.url, 'GET', `/registry/proposals/${hashOf(p)}`)).status).toBe(404);
  });

  it('refuses one with a current signer’s id and a signature that does not verify: 422, nothing audited', async () => {
    const p = big();
    const forged: Approval = { signer_id: 'alice', sig: signApproval(mallory!.secretKey, hashOf(p)) };
    // Alone, beside a stranger, or with a real signature of alice's over another proposal.
    const other = proposal('keyless', h0, [put('other')]);
    for (const approvals of [[forged], [forged, { signer_id: 'mallory', sig: forged.sig }], [approve(keys[0]!, hashOf(other))]]) {
      const r = await submit(p, approvals);
      expect(r.status).toBe(422);
      expect(r.json.error.code).toBe('BadSignature');
      expect(r.json.error.message).toContain('alice: signature does not verify');
      expect(r.json.error.hint).toContain(hashOf(p));
      expect(r.audited).toBe(0);
    }
    expect((await request(reg.url, 'GET', `/registry/proposals/${hashOf(p)}`)).status).toBe(404);
  });

  it('refuses malformed approvals and extra members with 400, before reading the payload', async () => {
    const p = big();
    for (const [approvals, extra] of [
      [[], {}],
      [[{ signer_id: 'alice', sig: 'zz' }], {}],
      [[{ signer_id: 'alice', sig: '0'.repeat(128), extra: 1 }], {}],
      ['alice', {}],
      [[approve(keys[0]!, hashOf(p))], { padding: 'x'.repeat(10) }],
    ] as const) {
      const r = await submit(p, approvals, extra);
      expect(r.status, JSON.stringify(approvals)).toBe(400);
      expect(r.json.error.code).toBe('BadRequest');
      expect(r.audited).toBe(0);
    }
    const notAnObject = await request<ErrorJson>(reg.url, 'POST', '/registry/proposals', {
      payload: [1, 2],
      approvals: [approve(keys[0]!, 'b3:x')],
    });
    expect(notAnObject.status).toBe(400);
  });

  it('still answers 400 for a valid signer’s malformed or ambiguous payload, naming the place', async () => {
    const p = proposal('keyless', h0, [put('svc-a')]);
    const signed = [approve(keys[0]!, hashOf(p))];
    const bad = { ...p, ops: [{ op: 'put', descriptor: { id: 'svc-a', kind: 'service', labels: {}, body: {}, extra: 1 } }] };
    const r = await submit(bad, [approve(keys[0]!, hashOf(bad))]);
    expect(r.status).toBe(400);
    expect(r.audited).toBe(0);
    // An unknown field added after signing (SPEC §7, and the outside conformance suite): a schema
    // violation is 400 even though the signature no longer verifies over the payload sent.
    const extra = await submit({ ...p, extra: 1 }, signed);
    expect(extra.status).toBe(400);
    expect(extra.json.error.code).toBe('BadRequest');
    expect(extra.audited).toBe(0);
    // A repeated member: the signature was made over one reading of it; the answer says why.
    const text = JSON.stringify({ payload: p, approvals: signed }).replace('"reason":"test"', '"reason":"test","reason":"test"');
    const dup = await request<ErrorJson>(reg.url, 'POST', '/registry/proposals', text);
    expect(dup.status).toBe(400);
    expect(dup.json.error.message).toMatch(/names member "reason" twice at \/payload/);
    // A number with no canonical form.
    const inf = JSON.stringify({ payload: p, approvals: signed }).replace('"body":{}', '"body":{"n":1e400}');
    const r2 = await request<ErrorJson>(reg.url, 'POST', '/registry/proposals', inf);
    expect(r2.status).toBe(400);
    expect(r2.json.error.message).toBe('a number in the body is out of the range of a double');
  });

  it('refuses approvals by proposed signers alone for an unknown payload, and accepts them for a known rotation', async () => {
    const newcomers = signers('dave', 'erin');
    const next = signerSet([keys[0]!, keys[1]!, ...newcomers], 2);
    const p = proposal('keyless', h0, [setSigners(next)]);
    const id = hashOf(p);
    const alone = await submit(
      p,
      newcomers.map((s) => approve(s, id)),
    );
    expect(alone.status).toBe(422);
    expect(alone.json.error.message).toBe('a proposal needs at least one approval by a signer of the current set');
    expect(alone.audited).toBe(0);

    const first = await submit(p, [approve(keys[0]!, id)]);
    expect(first.status).toBe(201);
    const known = await submit(p, [approve(newcomers[0]!, id)]);
    expect(known.status).toBe(200);
    expect(known.json).toMatchObject({ status: 'pending', approvals: [{ signer_id: 'alice' }, { signer_id: 'dave' }] });
    expect(known.audited).toBe(1); // approval_accepted
  });
});

describe('an approval body', () => {
  it('is checked against its small schema before the body is walked', async () => {
    const p = proposal('keyless', h0, [put('svc-b')]);
    const r = await request<ErrorJson>(reg.url, 'POST', `/registry/proposals/${hashOf(p)}/approvals`, {
      signer_id: 'alice',
      sig: '0'.repeat(128),
      junk: Array.from({ length: 50_000 }, () => ({ a: [1, 2, 3] })),
    });
    expect(r.status).toBe(400);
    expect(r.json.error.code).toBe('BadRequest');
  });
});
