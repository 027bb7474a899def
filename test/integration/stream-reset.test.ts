// A resume point older than what the service replays gets `event: reset` with the head, and
// the stream goes on live from there (SPEC §8).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import { approve, genesisRecord, proposal, put, signers } from '../helpers/fixtures.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';

interface Frame {
  id?: string;
  event: string;
  data: string;
}

const keys = signers('alice');
let reg: TestRegistry;

async function commit(id: string): Promise<void> {
  const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
  const p = proposal('resets', head, [put(id)]);
  const r = await request<{ status: string }>(reg.url, 'POST', '/registry/proposals', {
    payload: p,
    approvals: [approve(keys[0]!, hashOf(p))],
  });
  expect(r.json.status).toBe('committed');
}

/** Reads frames until `count` have arrived, then stops. */
async function frames(path: string, headers: Record<string, string>, count: number, onOpen?: () => Promise<void>): Promise<Frame[]> {
  const ctl = new AbortController();
  const res = await fetch(reg.url + path, { headers: { accept: 'text/event-stream', ...headers }, signal: ctl.signal });
  expect(res.status).toBe(200);
  const out: Frame[] = [];
  let buf = '';
  const opened = onOpen?.();
  const decoder = new TextDecoder();
  for await (const chunk of res.body!) {
    buf += decoder.decode(chunk, { stream: true });
    for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const f: Frame = { event: 'message', data: '' };
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const at = line.indexOf(': ');
        const [k, v] = [line.slice(0, at), line.slice(at + 2)];
        if (k === 'id') f.id = v;
        else if (k === 'event') f.event = v;
        else if (k === 'data') f.data += v;
      }
      if (f.id !== undefined) out.push(f);
    }
    if (out.length >= count) break;
  }
  ctl.abort();
  await opened;
  return out;
}

beforeAll(async () => {
  reg = await startTestRegistry(genesisRecord('resets', keys, 1), { config: { streamMaxReplay: 3, streamRingSize: 2 } });
  for (let i = 1; i <= 6; i++) await commit(`d-${i}`);
});
afterAll(() => reg.close());

describe('stream resets', () => {
  it('sends event: reset with the head for a resume point past the replay bound, then goes on live', async () => {
    const head = (await request<HeadJson>(reg.url, 'GET', '/registry/head')).json;
    const got = await frames('/registry/stream', { 'last-event-id': '2' }, 2, () => commit('d-7'));
    expect(got[0]).toMatchObject({ id: '6', event: 'reset' });
    expect(JSON.parse(got[0]!.data)).toMatchObject({ version: 6, hash: head.hash });
    expect(got[1]).toMatchObject({ id: '7', event: 'commit' });
  });

  it('replays from the log a resume point within the bound but older than the ring', async () => {
    const got = await frames('/registry/stream?from=4', {}, 3);
    expect(got.map((f) => [f.id, f.event])).toEqual([
      ['5', 'commit'],
      ['6', 'commit'],
      ['7', 'commit'],
    ]);
  });
});
