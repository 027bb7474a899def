// The log lines an operator reads (issue 14): one per request carrying the id the client sent
// or was given, commits and refusals with their proposal, version and signers, and no key or
// signature material at info.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import type { ErrorJson, HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

type Line = Record<string, unknown> & { level: number; msg: string };

/** A pino logger writing into an array, at `level`, with the options the service uses. */
function capture(level: 'info' | 'debug'): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = pino({ level, base: { service: 'registry' } }, { write: (s: string) => void lines.push(JSON.parse(s) as Line) });
  return { logger, lines };
}

const running: TestRegistry[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});

const INFO = 30;
const DEBUG = 20;

describe('request, commit and refusal logs', () => {
  it('logs each request at debug with the request id echoed to the client, its route template, status and latency', async () => {
    const keys = signers('alice');
    const { logger, lines } = capture('debug');
    const reg = await startTestRegistry(genesisRecord('logs', keys, 1), { logger });
    running.push(reg);

    const given = await request(reg.url, 'GET', '/registry/head', undefined, { 'x-request-id': 'trace-123' });
    expect(given.headers.get('x-request-id')).toBe('trace-123');
    const generated = await request<ErrorJson>(reg.url, 'GET', '/registry/999');
    const id = generated.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-z]+-[0-9a-z]+$/);
    expect(generated.json.error.request_id).toBe(id);

    const requestLines = lines.filter((l) => l.msg === 'request');
    const ok = requestLines.find((l) => l.request_id === 'trace-123');
    expect(ok).toMatchObject({ level: DEBUG, route: '/registry/head', method: 'GET', status: 200 });
    expect(typeof ok?.ms).toBe('number');
    // Refused requests are logged at info, under the route template rather than the raw path.
    const refused = requestLines.find((l) => l.request_id === id);
    expect(refused).toMatchObject({ level: INFO, route: '/registry/:version', status: 404 });
  });

  it('logs the refusals of the limits (429) at debug, not info: a flood of them costs no line each', async () => {
    const { logger, lines } = capture('info');
    const reg = await startTestRegistry(genesisRecord('logs', signers('alice'), 1), {
      logger,
      config: { writeRatePerAddress: 1, writeBurstPerAddress: 1 },
    });
    running.push(reg);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await request(reg.url, 'POST', '/registry/proposals', { junk: i })).status);
    expect(statuses).toEqual([400, 429, 429]);
    expect(lines.filter((l) => l.msg === 'request').map((l) => l.status)).toEqual([400]);
    expect(lines.filter((l) => l.msg === 'request refused').map((l) => l.code)).toEqual(['BadRequest']);
  });

  it('logs at info neither successful reads nor any signature or key, and logs commits and refusals with their ids', async () => {
    const keys = signers('alice', 'bob');
    const { logger, lines } = capture('info');
    const reg = await startTestRegistry(genesisRecord('logs', keys, 2), { logger });
    running.push(reg);
    for (let i = 0; i < 5; i++) await request(reg.url, 'GET', '/registry/head');

    const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    const p = proposal('logs', head, [put('svc-a')]);
    const id = hashOf(p);
    const byAlice = approve(keys[0]!, id);
    const byBob = approve(keys[1]!, id);
    // Bob's id with a signature that does not verify (Alice's): refused, not audited (SPEC §9).
    const forged = { signer_id: 'bob', sig: byAlice.sig };
    expect((await request(reg.url, 'POST', '/registry/proposals', { payload: p, approvals: [byAlice] })).status).toBe(201);
    const refused = await request<ErrorJson>(reg.url, 'POST', `/registry/proposals/${id}/approvals`, forged);
    expect(refused.status).toBe(422);
    const committed = await request<{ version: number }>(reg.url, 'POST', `/registry/proposals/${id}/approvals`, byBob);
    expect(committed.json.version).toBe(1);

    expect(lines.filter((l) => l.msg === 'request' && l.status === 200)).toEqual([]);
    const refusal = lines.find((l) => l.msg === 'approvals refused');
    expect(refusal).toMatchObject({ level: INFO, proposal_id: id, code: 'BadSignature' });
    expect(refusal?.refusals).toEqual([expect.objectContaining({ signer_id: 'bob', audited: false })]);
    const answered = lines.find((l) => l.msg === 'request refused');
    expect(answered).toMatchObject({
      code: 'BadSignature',
      proposal_id: id,
      signer_ids: ['bob'],
      request_id: refused.json.error.request_id,
    });
    expect(lines.find((l) => l.msg === 'committed')).toMatchObject({
      level: INFO,
      version: 1,
      proposal_id: id,
      signer_ids: ['alice', 'bob'],
    });

    const text = lines.map((l) => JSON.stringify(l)).join('\n');
    for (const secret of [byAlice.sig, byBob.sig, keys[0]!.secretKey, keys[1]!.secretKey]) expect(text).not.toContain(secret);
  });
});
