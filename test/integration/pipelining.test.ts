// A client that pipelines a valid write and then bytes that are not HTTP on one connection gets
// the write's answer before the error and the close (issue 14: "answer every request that was
// applied"). Raw sockets, since no HTTP client pipelines junk.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

const [alice] = signers('alice');
let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry(genesisRecord('pipe', [alice!], 1));
});
afterAll(async () => reg.close());

/** Writes `bytes` in one write and resolves with everything the server sends before it closes. */
function raw(bytes: string): Promise<string> {
  const { port } = new URL(reg.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let out = '';
    socket.on('data', (d) => (out += d.toString('latin1')));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

/** A POST /registry/proposals that commits at once (1 of 1), as raw HTTP/1.1. */
async function commitRequest(id: string): Promise<string> {
  const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
  const p = proposal('pipe', head, [put(id)]);
  const body = JSON.stringify({ payload: p, approvals: [approve(alice!, hashOf(p))] });
  return `POST /registry/proposals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** The status lines of the answers in `out`, in order. */
const statuses = (out: string): number[] => [...out.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));

describe('pipelined requests followed by junk', () => {
  it('answers an applied write before the 400 for the junk and the close', async () => {
    const before = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json.version;
    const out = await raw((await commitRequest('after-junk-1')) + '\x00\x01 this is not HTTP\r\n\r\n');
    expect(statuses(out)).toEqual([201, 400]);
    const answer = JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4, out.indexOf('HTTP/1.1 400'))) as { status: string; version: number };
    expect(answer).toMatchObject({ status: 'committed', version: before + 1 });
    expect(out.slice(out.indexOf('HTTP/1.1 400'))).toContain('"code":"BadRequest"');
    expect((await request<HeadJson>(reg.url, 'GET', '/registry/head')).json.version).toBe(before + 1);
  });

  it('answers every request parsed before the junk, in order', async () => {
    const write = await commitRequest('after-junk-2');
    const out = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n${write}GET /registry/head HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n`);
    expect(statuses(out)).toEqual([200, 201, 200, 400]);
  });

  it('answers the junk at once when nothing is pending', async () => {
    expect(statuses(await raw('\x16\x03\x01 not http\r\n\r\n'))).toEqual([400]);
  });
});
