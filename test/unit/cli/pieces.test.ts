// The CLI's pieces on their own: key files and JSON files that are not what they should be,
// text shown to a person, the HTTP client's errors, the development registry's banner, and the
// review's rendering of changes and keys.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryApi } from '../../../src/cli/api.js';
import { devBanner, EXAMPLE_OPS } from '../../../src/cli/dev-registry.js';
import { call } from '../../../src/cli/http-client.js';
import { readJsonFile, registryUrl, shellQuote, shown, shownJson } from '../../../src/cli/io.js';
import { readKeyFile, readPublicKey, writeKeyFile } from '../../../src/cli/keyfile.js';
import {
  describeChanges,
  describeSigners,
  fieldChanges,
  formatExpiry,
  keyProblem,
  resolveProposalId,
  signerIdFor,
} from '../../../src/cli/review.js';
import { CliError } from '../../../src/cli/exit.js';
import { UsageError } from '../../../src/errors.js';
import { signers, signerSet } from '../../helpers/fixtures.js';
import { tempDir } from '../../helpers/server.js';

const [alice, bob, carol] = signers('alice', 'bob', 'carol');
const dir = tempDir('registry-cli-unit-');

describe('key files', () => {
  const path = (name: string) => join(dir, name);
  const write = (name: string, content: string, mode = 0o600) => {
    writeFileSync(path(name), content);
    chmodSync(path(name), mode);
    return path(name);
  };

  it('refuses what is not a key file, saying so, before looking at its mode', () => {
    expect(() => readKeyFile(write('text.key', 'hello', 0o644))).toThrow(/--key .*text\.key is not a key file: it is not JSON/);
    expect(() => readKeyFile(write('array.key', '[]'))).toThrow(/is not a key file \(a key file is/);
    expect(() => readKeyFile(write('genesis.key', '{"type":"registry.genesis"}', 0o644))).toThrow(
      /is not a key file \(it holds a registry\.genesis\): it has no secret_key/,
    );
    expect(() => readKeyFile(write('public.key', JSON.stringify({ public_key: alice!.publicKey })))).toThrow(/holds a public key only/);
    expect(() => readKeyFile(path('absent.key'))).toThrow(/^--key: no such file: /);
    expect(() => readKeyFile(dir)).toThrow(/is a folder, not a file/);
  });

  it('refuses a key others can read, and a public key that is not the secret key’s', () => {
    const key = { signer_id: 'alice', public_key: alice!.publicKey, secret_key: alice!.secretKey };
    expect(() => readKeyFile(write('open.key', JSON.stringify(key), 0o644))).toThrow(/readable by others \(mode 644\): chmod 600/);
    expect(() => readKeyFile(write('mixed.key', JSON.stringify({ ...key, public_key: bob!.publicKey })))).toThrow(
      /does not belong to its secret_key/,
    );
    expect(readKeyFile(write('good.key', JSON.stringify(key)))).toEqual(key);
  });

  it('reads a public key from a key file or a public-key file; never overwrites one, nor makes a folder', () => {
    const pub = write('bob.pub', JSON.stringify({ signer_id: 'bob', public_key: bob!.publicKey }), 0o644);
    expect(readPublicKey(pub, '--signer bob=')).toEqual({ signer_id: 'bob', public_key: bob!.publicKey });
    expect(() => readPublicKey(write('nokey.pub', '{}'), '--signer x=')).toThrow(/no public_key of 64 hex characters/);
    writeKeyFile(path('new.key'), { public_key: carol!.publicKey, secret_key: carol!.secretKey });
    expect(readPublicKey(path('new.key'), '--signer carol=')).toEqual({ public_key: carol!.publicKey, secret_key: carol!.secretKey });
    expect(() => writeKeyFile(path('new.key'), { public_key: carol!.publicKey, secret_key: carol!.secretKey })).toThrow(/EEXIST/);
    expect(() => writeKeyFile(path('no/such/folder.key'), { public_key: carol!.publicKey, secret_key: carol!.secretKey })).toThrow(
      /the folder of .* does not exist/,
    );
  });
});

describe('files, URLs and text shown to a person', () => {
  it('names the flag and the place in a JSON file that is not valid, I-JSON included', () => {
    writeFileSync(join(dir, 'dup.json'), '{"a": 1, "a": 2}');
    expect(() => readJsonFile(join(dir, 'dup.json'), '--ops')).toThrow(UsageError);
    expect(() => readJsonFile(join(dir, 'dup.json'), '--ops')).toThrow(/^--ops: .*dup\.json is not valid JSON: /);
  });

  it('checks --url', () => {
    expect(registryUrl('http://h:1/')).toBe('http://h:1');
    expect(registryUrl('HTTPS://h/base//')).toBe('HTTPS://h/base');
    expect(() => registryUrl('h:1')).toThrow('--url must start with http:// or https:// (got h:1)');
    expect(() => registryUrl('http://[::1')).toThrow(/is not a valid URL/);
  });

  it('escapes what could hide or reorder text, and quotes for a shell only when needed', () => {
    expect(shown('a\u001b[2Kb\u202ec\u0085d\te')).toBe('a\\u001b[2Kb\\u202ec\\u0085d\te');
    expect(shownJson({ k: 'x\u2066' })).toBe('{"k":"x\\u2066"}');
    expect(shellQuote('/a/b-c.key')).toBe('/a/b-c.key');
    expect(shellQuote("/my keys/it's.key")).toBe(`'/my keys/it'\\''s.key'`);
  });
});

describe('the HTTP client', () => {
  let server: Server;
  let url = '';
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/text') res.writeHead(200).end('<html>');
      else if (req.url === '/ok') res.writeHead(200).end('{}');
      else
        res
          .writeHead(503, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { code: 'Unavailable', message: 'busy', hint: 'later' } }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('says when the answer is not JSON, and carries the envelope’s hint', async () => {
    await expect(call(url, 'GET', 'text')).rejects.toThrow(`GET /text: 200 with a body that is not JSON: is ${url} the registry?`);
    await expect(call(url, 'GET', 'other')).rejects.toThrow('GET /other: 503 Unavailable busy (hint: later)');
    // A base URL with a trailing slash joins the path once.
    await expect(call(`${url}/`, 'POST', 'ok', {})).resolves.toEqual({});
  });

  it('says when the host does not exist', async () => {
    await expect(call('http://no-such-host.invalid', 'GET', 'version')).rejects.toThrow(
      /^cannot connect to http:\/\/no-such-host\.invalid \((ENOTFOUND|EAI_AGAIN)\): no such host no-such-host\.invalid; check --url$/,
    );
  });
});

describe('the development registry’s banner', () => {
  it('writes an example ops file and prints runnable commands with the paths quoted', () => {
    const data = join(dir, 'my data');
    mkdirSync(data);
    const text = devBanner('http://127.0.0.1:8080', data);
    expect(JSON.parse(readFileSync(join(data, 'example-ops.json'), 'utf8'))).toEqual(EXAMPLE_OPS);
    expect(text).toContain(`--key '${join(data, 'dev-keys', 'alice.key')}'`);
    expect(text).toContain(`--ops '${join(data, 'example-ops.json')}'`);
    expect(text).toMatch(/ approve "\$id" --url http:\/\/127\.0\.0\.1:8080 --key '.*bob\.key' --registry-id dev\n$/);
    expect(existsSync(join(data, 'example-ops.json'))).toBe(true);
  });
});

describe('the review', () => {
  it('shows ops alone when the base is unknown, and a rotation that rebinds a key', () => {
    const ops = describeChanges(
      [
        { op: 'delete', id: 'x' },
        { op: 'put', descriptor: { id: 'y', kind: 'k', labels: {}, body: {} } },
      ],
      undefined,
      undefined,
    );
    expect(ops).toEqual([
      'ops (1 put, 1 delete; the base is not the head, so they are shown without its descriptors):',
      '  delete x',
      '  put y',
      '      kind  "k"',
      '      body  {}',
    ]);
    const absent = describeChanges([{ op: 'delete', id: 'x' }], new Map(), undefined);
    expect(absent[1]).toBe('  ! delete x: not in the base; the registry will refuse this proposal');
    const before = signerSet([alice!, bob!], 2);
    const rebound = { threshold: 1, signers: [{ id: 'alice', public_key: carol!.publicKey }] };
    expect(describeSigners(before, rebound)).toEqual([
      'signer set: threshold 2 of 2 → 1 of 1',
      `  ~ alice        ${alice!.publicKey} → ${carol!.publicKey}  NEW KEY (the registry refuses this)`,
      `  - bob          ${bob!.publicKey}  removed`,
    ]);
    expect(describeSigners(undefined, rebound)).toEqual(['signer set: becomes 1 of 1:', `    alice        ${carol!.publicKey}`]);
  });

  it('compares descriptors field by field: kind, odd keys, expiry', () => {
    const a = { id: 'x', kind: 'k', labels: {}, body: { 'a.b': 1, n: null }, expires_at: '2026-01-01T00:00:00.000Z' };
    const b = { id: 'x', kind: 'j', labels: {}, body: { 'a.b': 2, n: { deep: true } } };
    expect(fieldChanges(a, b)).toEqual([
      '      kind         "k" → "j"',
      '      body.n       removed (was null)',
      '      body.n.deep  added true',
      '      body["a.b"]  1 → 2',
      '      expires_at   removed (was "2026-01-01T00:00:00.000Z")',
    ]);
  });

  it('tells keys apart by as many characters as it takes', () => {
    const set = { current: signerSet([alice!], 1) };
    const near = alice!.publicKey.slice(0, 8) + 'f'.repeat(56);
    expect(keyProblem(set, 'alice', near, 'r')).toBe(
      `this key's public key ${near.slice(0, 12)}… is not alice's key on registry r (${alice!.publicKey.slice(0, 12)}…); check --key`,
    );
    expect(keyProblem(set, 'alice', alice!.publicKey, 'r')).toBeUndefined();
    expect(keyProblem({ ...set, proposed: signerSet([bob!], 1) }, 'zed', near, 'r')).toMatch(/its signers: alice; the proposed set: bob\)/);
    expect(signerIdFor(set, undefined, alice!.publicKey, 'k')).toBe('alice');
    expect(() => signerIdFor(set, undefined, bob!.publicKey, 'k')).toThrow(CliError);
  });

  it('shows the time left', () => {
    const now = Date.parse('2026-01-01T00:00:00.000Z');
    expect(formatExpiry(now + 90_000, now)).toBe('2026-01-01T00:01:30.000Z (in 1 min)');
    expect(formatExpiry(now + 3 * 3600_000 + 60_000, now)).toBe('2026-01-01T03:01:00.000Z (in 3 h 1 min)');
    expect(formatExpiry(now - 1, now)).toBe('2025-12-31T23:59:59.999Z (expired)');
  });

  it('resolves an id prefix against the pending proposals only, when it is unique', async () => {
    const ids = ['b3:' + 'ab'.repeat(32), 'b3:' + 'ac'.repeat(32)];
    const api = {
      url: 'http://r',
      proposals: () => Promise.resolve({ items: ids.map((proposal_id) => ({ proposal_id })), more: false }),
    } as unknown as RegistryApi;
    await expect(resolveProposalId(api, 'abab')).resolves.toBe(ids[0]);
    await expect(resolveProposalId(api, 'b3:a')).rejects.toThrow(/too short/);
    await expect(resolveProposalId(api, 'b3:abX')).rejects.toThrow(/is not a proposal id/);
    await expect(resolveProposalId(api, 'b3:a0a0')).rejects.toThrow(/no pending proposal's id starts with b3:a0a0/);
    ids.push('b3:abab' + 'cd'.repeat(30));
    await expect(resolveProposalId(api, 'b3:ab')).rejects.toThrow(/too short/);
    await expect(resolveProposalId(api, 'b3:abab')).rejects.toThrow(/is the start of 2 pending proposals/);
  });
});
