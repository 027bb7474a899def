// What Node's HTTP parser refuses before a request exists still gets the SPEC §7 envelope.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { genesisRecord, signers } from '../helpers/fixtures.js';
import { startTestRegistry, type TestRegistry } from '../helpers/server.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry(genesisRecord('raw', signers('alice'), 1));
});
afterAll(async () => reg.close());

/** Sends raw bytes and resolves with everything the server answers before it closes. */
function raw(bytes: string | Buffer): Promise<string> {
  const { port } = new URL(reg.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let out = '';
    socket.on('data', (d) => (out += d.toString('latin1')));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.end(bytes);
  });
}

const envelope = (response: string) =>
  JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)) as { error: { code: string; request_id: string } };

describe('malformed HTTP', () => {
  it.each([
    ['a raw non-ASCII byte in the path', Buffer.from('GET /registry/\xe9 HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'), 400],
    [
      'both Transfer-Encoding and Content-Length',
      'POST /registry/proposals HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}',
      400,
    ],
    ['an unknown method token', 'FOO / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    [
      'a bad chunk size',
      'POST /registry/proposals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      400,
    ],
    ['headers over 16 KiB', `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
  ])('%s -> %i with the envelope', async (_name, bytes, status) => {
    const response = await raw(bytes);
    expect(response.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
    const body = envelope(response);
    expect(body.error.code).toBe('BadRequest');
    expect(response).toContain(`X-Request-Id: ${body.error.request_id}`);
  });

  it('still serves well-formed requests afterwards', async () => {
    expect((await raw('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).startsWith('HTTP/1.1 200 ')).toBe(true);
  });
});
