// Every kind of bad input the foundation issue names gets its 4xx code and changes nothing
// but, for signed claims (SPEC §9: the signature verifies under the key its id has or had
// here), the audit record of the refusal. Anything else is logged, never audited.
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import type { AuditEvent, ProposalPayload } from '../../src/core/schemas.js';
import { checkAuditChain, readAudit } from '../helpers/audit.js';
import { approve, del, genesisRecord, proposal, put, setSigners, signers, type TestSigner } from '../helpers/fixtures.js';
import type { ErrorJson, HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const SMALL_ORDER_KEY = '01' + '00'.repeat(31); // the identity point

let reg: TestRegistry;
let keys: TestSigner[];
let head: { version: number; hash: string };

beforeAll(async () => {
  keys = signers('alice', 'bob', 'carol');
  reg = await startTestRegistry(genesisRecord('bad', keys, 2));
  // Version 1 holds one descriptor, so deletes have something to refer to.
  const p = proposal('bad', (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json, [put('svc-a')]);
  await request(reg.url, 'POST', '/registry/proposals', {
    payload: p,
    approvals: [approve(keys[0]!, hashOf(p)), approve(keys[1]!, hashOf(p))],
  });
  head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
});
afterAll(async () => reg.close());

async function snapshot() {
  const h = await request(reg.url, 'GET', '/registry/head');
  const proposals = await request(reg.url, 'GET', '/registry/proposals?limit=1000');
  return { head: h.text, proposals: proposals.text, audit: await readAudit(reg.url) };
}

const fresh = (ops: ProposalPayload['ops'], patch: Partial<ProposalPayload> = {}): ProposalPayload => ({
  ...proposal('bad', head, ops),
  ...patch,
});
const submit = (payload: unknown, approvals: unknown) => ({ payload, approvals });
const signed = (p: ProposalPayload, signer = 0) => submit(p, [approve(keys[signer]!, hashOf(p))]);

function nonCanonical(sigHex: string): string {
  const r = sigHex.slice(0, 64);
  const sBytes = Buffer.from(sigHex.slice(64), 'hex').reverse();
  const s = BigInt('0x' + sBytes.toString('hex')) + L;
  const out = Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse();
  return r + out.toString('hex');
}

interface Case {
  name: string;
  path?: string;
  method?: string;
  body: () => unknown;
  headers?: Record<string, string>;
  status: number;
  code: string;
  /** Refused signed claims leave approval_refused events behind. */
  audited?: number;
  /** What the refusal must say, where the code alone would not tell the cause. */
  message?: RegExp;
}

const cases: Case[] = [
  { name: 'malformed JSON', body: () => '{"payload": ', status: 400, code: 'BadRequest' },
  { name: 'empty JSON body', body: () => '', status: 400, code: 'BadRequest' },
  { name: 'a JSON array', body: () => '[]', status: 400, code: 'BadRequest' },
  { name: 'proto pollution key', body: () => '{"__proto__": {"x": 1}, "payload": {}, "approvals": []}', status: 400, code: 'BadRequest' },
  { name: 'unknown top-level field', body: () => ({ ...signed(fresh([put('x')])), extra: 1 }), status: 400, code: 'BadRequest' },
  {
    name: 'unknown payload field',
    body: () => signed({ ...fresh([put('x')]), extra: 1 } as ProposalPayload),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'unknown descriptor field',
    body: () => signed(fresh([{ op: 'put', descriptor: { id: 'x', kind: 'k', labels: {}, body: {}, owner: 'me' } as never }])),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'unknown approval field',
    body: () => submit(fresh([put('x')]), [{ ...approve(keys[0]!, hashOf(fresh([put('x')]))), note: 'hi' }]),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'wrong type: base_version as a string',
    body: () => signed({ ...fresh([put('x')]), base_version: '1' } as never),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'wrong type: labels value a number',
    body: () => signed(fresh([{ op: 'put', descriptor: { id: 'x', kind: 'k', labels: { a: 1 }, body: {} } as never }])),
    status: 400,
    code: 'BadRequest',
  },
  { name: 'descriptor id of 257 characters', body: () => signed(fresh([put('x'.repeat(257))])), status: 400, code: 'BadRequest' },
  { name: 'descriptor id with a NUL', body: () => signed(fresh([put('a\u0000b')])), status: 400, code: 'BadRequest' },
  { name: 'label key with a space', body: () => signed(fresh([put('x', { 'a b': 'c' })])), status: 400, code: 'BadRequest' },
  {
    name: '65 labels',
    body: () => signed(fresh([put('x', Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])))])),
    status: 400,
    code: 'BadRequest',
  },
  { name: 'no ops', body: () => signed(fresh([])), status: 400, code: 'BadRequest' },
  {
    name: '10,001 ops',
    body: () => signed(fresh(Array.from({ length: 10_001 }, (_, i) => put(`d${i}`)))),
    status: 400,
    code: 'BadRequest',
  },
  { name: 'the same id twice in one proposal', body: () => signed(fresh([put('x'), put('x')])), status: 400, code: 'BadRequest' },
  { name: 'put and delete of the same id', body: () => signed(fresh([put('svc-a'), del('svc-a')])), status: 400, code: 'BadRequest' },
  { name: 'delete of a missing id', body: () => signed(fresh([del('no-such-id')])), status: 400, code: 'BadRequest' },
  {
    name: 'reason over 1024 characters',
    body: () => signed(fresh([put('x')], { reason: 'r'.repeat(1025) })),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'expires_at 31 days out',
    body: () => signed(fresh([put('x')], { expires_at: new Date(Date.now() + 31 * 86400_000).toISOString() })),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'created_at an hour in the future',
    body: () =>
      signed(
        fresh([put('x')], {
          created_at: new Date(Date.now() + 3600_000).toISOString(),
          expires_at: new Date(Date.now() + 7200_000).toISOString(),
        }),
      ),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'a time without milliseconds',
    body: () => signed(fresh([put('x')], { created_at: '2026-11-23T00:00:00Z' })),
    status: 400,
    code: 'BadRequest',
  },
  { name: 'no approvals', body: () => submit(fresh([put('x')]), []), status: 400, code: 'BadRequest' },
  {
    name: 'a signature of the wrong length',
    body: () => submit(fresh([put('x')]), [{ signer_id: 'alice', sig: approve(keys[0]!, hashOf(fresh([put('x')]))).sig.slice(0, 126) }]),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'a signature in upper-case hex',
    body: () => {
      const p = fresh([put('x')]);
      return submit(p, [{ signer_id: 'alice', sig: approve(keys[0]!, hashOf(p)).sig.toUpperCase() }]);
    },
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'a non-canonical signature (S + L)',
    body: () => {
      const p = fresh([put('x')]);
      return submit(p, [{ signer_id: 'alice', sig: nonCanonical(approve(keys[0]!, hashOf(p)).sig) }]);
    },
    status: 422,
    code: 'BadSignature',
  },
  {
    name: 'a signature by another key',
    body: () => {
      const p = fresh([put('x')]);
      return submit(p, [{ signer_id: 'alice', sig: approve(keys[1]!, hashOf(p)).sig }]);
    },
    status: 422,
    code: 'BadSignature',
  },
  {
    name: 'an unknown signer',
    body: () => {
      const p = fresh([put('x')]);
      return submit(p, [approve({ ...signers('mallory')[0]! }, hashOf(p))]);
    },
    status: 422,
    code: 'BadSignature',
  },
  {
    name: 'one good and one bad approval',
    body: () => {
      const p = fresh([put('x')]);
      return submit(p, [approve(keys[0]!, hashOf(p)), { signer_id: 'bob', sig: approve(keys[0]!, hashOf(p)).sig }]);
    },
    status: 422,
    code: 'BadSignature',
  },
  {
    name: 'a proposal for another registry_id',
    body: () => signed(fresh([put('x')], { registry_id: 'other' })),
    status: 422,
    code: 'BadSignature',
    audited: 1,
  },
  {
    name: 'a proposal for another registry_id, with a junk signature',
    body: () => {
      const p = fresh([put('x')], { registry_id: 'other' });
      return submit(p, [{ signer_id: 'alice', sig: approve(keys[1]!, hashOf(p)).sig }]);
    },
    status: 422,
    code: 'BadSignature',
  },
  {
    name: 'a small-order public key in a new signer set',
    body: () => signed(fresh([setSigners({ threshold: 1, signers: [{ id: 'zed', public_key: SMALL_ORDER_KEY }] })])),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'a threshold of 0',
    body: () => signed(fresh([setSigners({ threshold: 0, signers: [{ id: 'alice', public_key: keys[0]!.publicKey }] })])),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'a threshold above the signer count',
    body: () => signed(fresh([setSigners({ threshold: 2, signers: [{ id: 'alice', public_key: keys[0]!.publicKey }] })])),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'signers out of order',
    body: () =>
      signed(
        fresh([
          setSigners({
            threshold: 1,
            signers: [
              { id: 'bob', public_key: keys[1]!.publicKey },
              { id: 'alice', public_key: keys[0]!.publicKey },
            ],
          }),
        ]),
      ),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'a kept signer id with a new key',
    body: () => signed(fresh([setSigners({ threshold: 1, signers: [{ id: 'alice', public_key: keys[1]!.publicKey }] })])),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'two set_signers ops',
    body: () => {
      const s = { threshold: 1, signers: [{ id: 'alice', public_key: keys[0]!.publicKey }] };
      return signed(fresh([setSigners(s), setSigners(s)]));
    },
    status: 400,
    code: 'BadRequest',
  },
  { name: 'a stale base', body: () => signed({ ...fresh([put('x')]), base_version: 0 }), status: 409, code: 'StaleVersion' },
  {
    name: 'a base hash that is not the head',
    body: () => signed({ ...fresh([put('x')]), base_hash: 'b3:' + '0'.repeat(64) }),
    status: 409,
    code: 'StaleVersion',
  },
  {
    name: 'a body over 1 MiB',
    body: () => signed(fresh([put('x', {}, { blob: 'x'.repeat(1_100_000) })])),
    status: 413,
    code: 'PayloadTooLarge',
  },
  {
    name: 'text/plain',
    body: () => JSON.stringify(signed(fresh([put('x')]))),
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'UnsupportedMediaType',
  },
  {
    name: 'no content type',
    body: () => JSON.stringify(signed(fresh([put('x')]))),
    headers: { 'content-type': '' },
    status: 415,
    code: 'UnsupportedMediaType',
  },
  {
    name: 'a gzip body',
    body: () => gzipSync(JSON.stringify(signed(fresh([put('x')])))),
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    status: 415,
    code: 'UnsupportedMediaType',
  },
  {
    name: 'a body nested 100,000 deep',
    body: () => JSON.stringify(signed(fresh([put('x')]))).replace('"body":{}', `"body":{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'a lone surrogate in a string',
    body: () => JSON.stringify(signed(fresh([put('x')]))).replace('"reason":"test"', '"reason":"\\ud800"'),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'a lone surrogate in a body key',
    body: () => JSON.stringify(signed(fresh([put('x')]))).replace('"body":{}', '"body":{"\\udc00":1}'),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'a descriptor expires_at that is no real time',
    body: () =>
      signed(fresh([{ op: 'put', descriptor: { id: 'x', kind: 'k', labels: {}, body: {}, expires_at: '2026-99-99T99:99:99.000Z' } }])),
    status: 400,
    code: 'BadRequest',
  },
  {
    // Valid but for the repeat: JSON.parse alone would accept it and commit.
    name: 'a member named twice (I-JSON)',
    body: () => {
      const { payload, approvals } = signed(fresh([put('x')]));
      const a = JSON.stringify(approvals);
      return `{"payload":${JSON.stringify(payload)},"approvals":${a},"approvals":${a}}`;
    },
    status: 400,
    code: 'BadRequest',
    message: /names member "approvals" twice at \(the top level\)/,
  },
  {
    name: 'an integer beyond 2^53 - 1 in a body (I-JSON)',
    body: () => JSON.stringify(signed(fresh([put('x')]))).replace('"body":{}', '"body":{"n":9007199254740993}'),
    status: 400,
    code: 'BadRequest',
    message: /integer 9007199254740993 at \/payload\/ops\/0\/descriptor\/body\/n/,
  },
  {
    name: 'a __proto__ member',
    body: () => JSON.stringify(signed(fresh([put('x')]))).replace('"body":{}', '"body":{"__proto__":{}}'),
    status: 400,
    code: 'BadRequest',
    message: /"__proto__" at \/payload\/ops\/0\/descriptor\/body/,
  },
  {
    name: 'fifty unknown signers',
    body: () => {
      const p = fresh([put('x')]);
      return submit(
        p,
        signers(...Array.from({ length: 50 }, (_, i) => `nobody-${i}`)).map((s) => approve(s, hashOf(p))),
      );
    },
    status: 422,
    code: 'BadSignature',
  },
  {
    name: 'a number out of range',
    body: () => JSON.stringify(signed(fresh([put('x')]))).replace('"body":{}', '"body":{"n":1e400}'),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'an approval with a malformed proposal id',
    path: '/registry/proposals/b3:xyz/approvals',
    body: () => approve(keys[0]!, 'b3:xyz'),
    status: 400,
    code: 'BadRequest',
  },
  {
    name: 'an approval for an unknown proposal',
    path: `/registry/proposals/b3:${'a'.repeat(64)}/approvals`,
    body: () => approve(keys[0]!, `b3:${'a'.repeat(64)}`),
    status: 404,
    code: 'NotFound',
  },
  {
    name: 'an approval with an unknown field',
    path: `/registry/proposals/b3:${'a'.repeat(64)}/approvals`,
    body: () => ({ ...approve(keys[0]!, `b3:${'a'.repeat(64)}`), x: 1 }),
    status: 400,
    code: 'BadRequest',
  },
];

const getCases: { path: string; status: number }[] = [
  { path: '/registry/-1', status: 400 },
  { path: '/registry/abc', status: 404 },
  { path: '/registry/streams', status: 404 },
  { path: '/registry/stream?from=abc', status: 400 },
  { path: '/registry/stream?from=-1', status: 400 },
  { path: '/registry/stream?from=999999', status: 400 },
  { path: `/registry/stream?filter=${encodeURIComponent("kind == 'x")}`, status: 400 },
  { path: '/registry/stream?unknown=1', status: 400 },
  { path: '/registry/1e3', status: 400 },
  { path: '/registry/proposals?limit=2.9', status: 400 },
  { path: '/registry/audit?from_seq=0x10', status: 400 },
  { path: '/registry/audit?from_seq=%205', status: 400 },
  { path: '/registry/proposals/%E0%A4%A', status: 400 },
  { path: `/registry/${'9'.repeat(1100)}`, status: 400 },
  { path: '/registry/1.5', status: 400 },
  { path: '/registry/01', status: 400 },
  { path: '/registry/99999999999999999999', status: 400 },
  { path: '/registry/42', status: 404 },
  { path: '/registry/proposals/nope', status: 400 },
  { path: `/registry/proposals/b3:${'0'.repeat(64)}`, status: 404 },
  { path: '/registry/proposals?limit=0', status: 400 },
  { path: '/registry/proposals?limit=100000', status: 400 },
  { path: '/registry/proposals?limit=ten', status: 400 },
  { path: '/registry/proposals?status=bogus', status: 400 },
  { path: '/registry/proposals?cursor=not-a-cursor', status: 400 },
  { path: `/registry/proposals?cursor=${Buffer.from('{"after":-1}').toString('base64url')}`, status: 400 },
  { path: '/registry/proposals?unknown=1', status: 400 },
  { path: '/registry/audit?from_seq=0', status: 400 },
  { path: '/registry/audit?limit=1001', status: 400 },
  { path: '/registry/audit?from_seq=%00', status: 400 },
  { path: '/registry/..%2F..%2Fetc', status: 400 },
  { path: '/no/such/route', status: 404 },
];

describe('bad input', () => {
  it.each(cases)('$name -> $status $code, nothing changed', async (c) => {
    const before = await snapshot();
    const body = c.body();
    const init: RequestInit = {
      method: c.method ?? 'POST',
      headers: { 'content-type': 'application/json', ...c.headers },
      body: (typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body)) as RequestInit['body'],
    };
    if (c.headers?.['content-type'] === '') delete (init.headers as Record<string, string>)['content-type'];
    const res = await fetch(reg.url + (c.path ?? '/registry/proposals'), init);
    const json = (await res.json()) as { error: { code: string; message: string; request_id: string } };
    expect(res.status).toBe(c.status);
    expect(json.error.code).toBe(c.code);
    if (c.message) expect(json.error.message).toMatch(c.message);
    expect(json.error.message.length).toBeGreaterThan(0);
    expect(json.error.request_id).toBe(res.headers.get('x-request-id'));
    const after = await snapshot();
    expect(after.head).toBe(before.head);
    expect(after.proposals).toBe(before.proposals);
    const added: AuditEvent[] = after.audit.slice(before.audit.length);
    expect(after.audit.slice(0, before.audit.length)).toEqual(before.audit);
    expect(added).toHaveLength(c.audited ?? 0);
    for (const e of added) expect(e.kind).toBe('approval_refused');
    checkAuditChain(after.audit);
  });

  it.each(getCases)('GET $path -> $status', async (c) => {
    const r = await request<ErrorJson>(reg.url, 'GET', c.path);
    expect(r.status).toBe(c.status);
    expect(r.headers.get('x-request-id')).toBe(r.json.error.request_id);
    expect(r.json.error.code).toBe(c.status === 404 ? 'NotFound' : 'BadRequest');
  });

  it('echoes a well-formed X-Request-Id and replaces a hostile one', async () => {
    const ok = await request<ErrorJson>(reg.url, 'GET', '/registry/42', undefined, { 'x-request-id': 'req-123' });
    expect(ok.headers.get('x-request-id')).toBe('req-123');
    expect(ok.json.error.request_id).toBe('req-123');
    const hostile = await request(reg.url, 'GET', '/registry/42', undefined, { 'x-request-id': 'a b\tc'.repeat(100) });
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-z]+$/);
  });
});
