// The commit stream read by a client nobody here wrote: the `eventsource` package (a WHATWG
// EventSource). It subscribes, the registry stops and comes back on the same port over the
// same database, and the EventSource reconnects by itself with Last-Event-ID and sees every
// commit exactly once, in order (SPEC §8).
import { EventSource } from 'eventsource';
import { afterAll, describe, expect, it } from 'vitest';
import { Committer } from '../helpers/commits.js';
import { genesisRecord, put, signers } from '../helpers/fixtures.js';
import { startTestRegistry, tempDir, type TestRegistry } from '../helpers/server.js';
import type { CommitData } from '../helpers/sse.js';

const keys = signers('alice');
const genesis = genesisRecord('eventsource', keys, 1);

/** Resolves once `check` holds, checked at each wake-up (an EventSource event); fails at the deadline. */
function until(check: () => boolean, what: string, timeoutMs: number, wakeUps: Set<() => void>): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      wakeUps.delete(test);
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const test = () => {
      if (!check()) return;
      wakeUps.delete(test);
      clearTimeout(timer);
      resolve();
    };
    wakeUps.add(test);
  });
}

describe('an EventSource across a restart', () => {
  let reg: TestRegistry | undefined;
  let es: EventSource | undefined;
  afterAll(async () => {
    es?.close();
    await reg?.close();
  });

  it('reconnects by itself with Last-Event-ID and sees every commit once, in order, replayed from the log', async () => {
    const dir = tempDir();
    reg = await startTestRegistry(genesis, { dir });
    const url = reg.url;
    const port = Number(new URL(url).port);
    const c = new Committer(() => reg!.url, 'eventsource', keys[0]!);

    // Everything the EventSource does, as it happens: its requests (to see the Last-Event-ID it
    // sends), its opens and errors, and the commits it dispatches.
    const wakeUps = new Set<() => void>();
    const wake = () => [...wakeUps].forEach((w) => w());
    const requests: (string | null)[] = [];
    const seen: { lastEventId: string; data: CommitData }[] = [];
    let opens = 0;
    let errors = 0;
    es = new EventSource(`${url}/registry/stream`, {
      fetch: (input, init) => {
        requests.push(new Headers(init?.headers).get('last-event-id'));
        return fetch(input, init);
      },
    });
    es.addEventListener('open', () => {
      opens++;
      wake();
    });
    es.addEventListener('error', () => {
      errors++;
      wake();
    });
    es.addEventListener('commit', (e) => {
      seen.push({ lastEventId: e.lastEventId, data: JSON.parse(e.data as string) as CommitData });
      wake();
    });
    await until(() => opens === 1, 'the first open', 5_000, wakeUps);

    // Before the restart: 1…4, live.
    for (let i = 1; i <= 4; i++) await c.commit([put(`before-${i}`)]);
    await until(() => seen.length === 4, 'commits 1…4', 5_000, wakeUps);

    // The registry stops: the stream ends, and the EventSource waits to reconnect.
    await reg.close();
    reg = undefined;
    await until(() => errors >= 1 && es!.readyState === es!.CONNECTING, 'the EventSource to notice the end', 5_000, wakeUps);

    // Back on the same port over the same database, with a ring of one commit: 5, 6 and 7
    // land before the EventSource is back, so its resume after 4 is served from the log.
    reg = await startTestRegistry(genesis, { dir, config: { port, streamRingSize: 1 } });
    expect(reg.url).toBe(url);
    for (let i = 5; i <= 7; i++) expect(await c.commit([put(`after-${i}`)])).toBe(i);
    expect(opens).toBe(1);
    expect(seen).toHaveLength(4);

    // It reconnects by itself, after the registry's `retry: 1000`.
    await until(() => opens === 2 && seen.length === 7, 'the reconnect and the replay of 5…7', 10_000, wakeUps);
    // Then live again: 8 and 9.
    for (let i = 8; i <= 9; i++) await c.commit([put(`live-${i}`)]);
    await until(() => seen.length >= 9, 'commits 8 and 9', 5_000, wakeUps);

    expect(requests).toEqual([null, '4']);
    expect(seen.map((s) => s.data.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(seen.map((s) => s.lastEventId)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9']);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.data.prev_hash).toBe(seen[i - 1]!.data.hash);
    expect(seen.map((s) => s.data.changed)).toEqual([
      ['before-1'],
      ['before-2'],
      ['before-3'],
      ['before-4'],
      ['after-5'],
      ['after-6'],
      ['after-7'],
      ['live-8'],
      ['live-9'],
    ]);
    expect(opens).toBe(2);
  }, 30_000);
});
