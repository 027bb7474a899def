import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, loadConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';
import { tempDir } from '../helpers/server.js';

describe('configuration', () => {
  it('uses the defaults with nothing set', () => {
    expect(loadConfig({}, {})).toEqual(DEFAULTS);
  });

  it('lets flags win over the environment, and the environment over the file', () => {
    const file = join(tempDir(), 'c.json');
    writeFileSync(file, JSON.stringify({ port: 1000, host: '0.0.0.0', db: 'file.db', logLevel: 'debug' }));
    const c = loadConfig({ config: file, port: '3000' }, { PORT: '2000', REGISTRY_DB: 'env.db' });
    expect(c).toMatchObject({ port: 3000, db: 'env.db', host: '0.0.0.0', logLevel: 'debug' });
    expect(loadConfig({}, { REGISTRY_CONFIG: file }).port).toBe(1000);
  });

  it('fails fast on bad settings', () => {
    expect(() => loadConfig({ port: '70000' }, {})).toThrow(ConfigError);
    expect(() => loadConfig({ port: 'http' }, {})).toThrow(/port/);
    expect(() => loadConfig({}, { REGISTRY_SYNCHRONOUS: 'OFF' })).toThrow(/synchronous/);
    const file = join(tempDir(), 'c.json');
    writeFileSync(file, JSON.stringify({ prot: 1 }));
    expect(() => loadConfig({ config: file }, {})).toThrow(/unknown settings: prot/);
    expect(() => loadConfig({ config: join(tempDir(), 'missing.json') }, {})).toThrow(/cannot read/);
  });

  it('reads the stream limits from each source, within their ranges', () => {
    const file = join(tempDir(), 'c.json');
    writeFileSync(file, JSON.stringify({ streamRingSize: 10, streamQueueFrames: 20 }));
    const c = loadConfig({ config: file, streamQueueFrames: '30' }, { REGISTRY_STREAM_HEARTBEAT_MS: '250' });
    expect(c).toMatchObject({ streamRingSize: 10, streamQueueFrames: 30, streamHeartbeatMs: 250, streamMaxPerAddress: 2000 });
    expect(() => loadConfig({ streamHeartbeatMs: '10' }, {})).toThrow(/streamHeartbeatMs must be an integer from 100/);
    expect(() => loadConfig({}, { REGISTRY_STREAM_QUEUE_BYTES: '1e6' })).toThrow(ConfigError);
  });

  it('reads the limits from each source, and refuses a headers timeout longer than the request timeout', () => {
    const c = loadConfig({ writeRatePerSigner: '0' }, { REGISTRY_HEADERS_TIMEOUT_MS: '2000', REGISTRY_MAX_CONNECTIONS_PER_ADDRESS: '10' });
    expect(c).toMatchObject({ headersTimeoutMs: 2000, maxConnectionsPerAddress: 10, writeRatePerSigner: 0, requestTimeoutMs: 30_000 });
    expect(() => loadConfig({ headersTimeoutMs: '40000' }, {})).toThrow(/headersTimeoutMs \(40000\) must not exceed requestTimeoutMs/);
    expect(() => loadConfig({ maxBodyBytesPerAddress: '1000' }, {})).toThrow(/maxBodyBytesPerAddress must be an integer from 1048576/);
  });

  it('accepts the example config file', () => {
    expect(loadConfig({ config: new URL('../../config/registry.example.json', import.meta.url).pathname }, {}).genesis).toBe(
      './genesis.json',
    );
  });
});
