// Shutdown takes as long as the requests in flight: a connection that never sent a byte (HTTP
// clients open spare ones ahead of need) does not hold it until the headers timeout.
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { genesisRecord, signers } from '../helpers/fixtures.js';
import { startTestRegistry } from '../helpers/server.js';

describe('shutdown', () => {
  it('drops connections that have sent nothing, and closes', async () => {
    // A headers timeout beyond the test's own timeout: only the drop can end this in time.
    const reg = await startTestRegistry(genesisRecord('shutdown', signers('alice'), 1), { config: { headersTimeoutMs: 60_000 } });
    const { port } = new URL(reg.url);
    const spare: Socket = await new Promise((resolve, reject) => {
      const s = connect(Number(port), '127.0.0.1', () => resolve(s)).on('error', reject);
    });
    const dropped = new Promise<void>((resolve) => spare.once('close', () => resolve()));
    spare.on('error', () => undefined);
    // The server has seen the connection once a request on another one is answered.
    expect((await fetch(`${reg.url}/healthz`)).status).toBe(200);
    await reg.close();
    await dropped;
    expect(spare.bytesRead).toBe(0);
  }, 20_000);
});
