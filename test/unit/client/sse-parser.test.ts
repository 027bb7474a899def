// The SSE parser against the WHATWG event-stream rules, fed a sample stream whole, a byte at a
// time, split at every byte boundary and cut into random pieces: the same events every time.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseParser, type SseItem } from '../../../src/client/sse-parser.js';

const SAMPLE = [
  '\uFEFF: a comment before anything\r\n',
  'retry: 3000\n',
  'id: 1\n',
  'event: commit\n',
  'data: {"version":1,"changed":["svc-é","node-🚀"]}\n',
  '\n',
  ':heartbeat\r',
  '\r',
  'id: 2\r\n',
  'event: commit\r\n',
  'data:  two leading spaces keep one\r\n',
  'data\r\n',
  'data:last line\r\n',
  '\r\n',
  'event: reset\n',
  'unknown: ignored\n',
  'retry: soon\n',
  'id: bad\u0000id\n',
  'data: {"version":9}\n',
  '\n',
  'id: 10\n',
  '\n',
  'data: id stays\n',
  '\n',
  'id: 11\n',
  'event: commit\n',
  'data: cut off before its blank line\n',
].join('');

const EXPECTED: SseItem[] = [
  { kind: 'comment', text: 'a comment before anything' },
  { kind: 'retry', ms: 3000 },
  { kind: 'event', type: 'commit', data: '{"version":1,"changed":["svc-é","node-🚀"]}', lastEventId: '1' },
  { kind: 'comment', text: 'heartbeat' },
  { kind: 'event', type: 'commit', data: ' two leading spaces keep one\n\nlast line', lastEventId: '2' },
  // An id with NUL is ignored: the last id stays 2.
  { kind: 'event', type: 'reset', data: '{"version":9}', lastEventId: '2' },
  // An id alone dispatches nothing but moves the last id.
  { kind: 'event', type: 'message', data: 'id stays', lastEventId: '10' },
];

const bytes = new TextEncoder().encode(SAMPLE);

function parse(chunks: (Uint8Array | string)[]): { items: SseItem[]; dropped: boolean; lastEventId: string } {
  const p = new SseParser();
  const items = chunks.flatMap((c) => p.feed(c));
  const dropped = p.end();
  return { items, dropped, lastEventId: p.lastEventId };
}

const whole = { items: EXPECTED, dropped: true, lastEventId: '10' };

describe('SseParser', () => {
  it('parses the sample stream whole, as bytes and as text', () => {
    expect(parse([bytes])).toEqual(whole);
    expect(parse([SAMPLE.replace(/^\uFEFF/, '')])).toEqual(whole);
  });

  it('gives the same events whatever byte boundary a chunk ends on', () => {
    for (let i = 0; i <= bytes.length; i++) expect(parse([bytes.subarray(0, i), bytes.subarray(i)]), `split at byte ${i}`).toEqual(whole);
  });

  it('gives the same events for every pair of split points', () => {
    for (let i = 0; i <= bytes.length; i += 3)
      for (let j = i; j <= bytes.length; j++)
        expect(parse([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]), `split at ${i}, ${j}`).toEqual(whole);
  });

  it('gives the same events a byte at a time', () => {
    expect(parse([...bytes].map((b) => Uint8Array.of(b)))).toEqual(whole);
  });

  it('gives the same events for random chunkings (empty chunks included)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: bytes.length }), { maxLength: 40 }), (cuts) => {
        const points = [0, ...cuts.sort((a, b) => a - b), bytes.length];
        const chunks = points.slice(1).map((end, k) => bytes.subarray(points[k], end));
        expect(parse(chunks)).toEqual(whole);
      }),
      { numRuns: 500 },
    );
  });

  it('treats CR, LF and CRLF alike, a CRLF split across chunks as one line break', () => {
    const p = new SseParser();
    expect(p.feed('data: a\r')).toEqual([]);
    expect(p.feed('\ndata: b\r')).toEqual([]);
    // The CR above ended the line; this CR ends the event (an LF here would not).
    expect(p.feed('\r')).toEqual([{ kind: 'event', type: 'message', data: 'a\nb', lastEventId: '' }]);
    expect(p.feed('\ndata: c\n\n')).toEqual([{ kind: 'event', type: 'message', data: 'c', lastEventId: '' }]);
  });

  it('drops an event without its trailing blank line at the end of the stream, and its id', () => {
    const p = new SseParser();
    expect(p.feed('id: 1\ndata: one\n\nid: 2\ndata: two\n')).toEqual([{ kind: 'event', type: 'message', data: 'one', lastEventId: '1' }]);
    expect(p.end()).toBe(true);
    expect(p.lastEventId).toBe('1');
    // The next connection starts clean, the last id kept.
    expect(p.feed('data: three\n\n')).toEqual([{ kind: 'event', type: 'message', data: 'three', lastEventId: '1' }]);
    expect(p.end()).toBe(false);
  });

  it('drops a last line without its line break', () => {
    const p = new SseParser();
    expect(p.feed('data: x\n\ndata: y')).toHaveLength(1);
    expect(p.end()).toBe(true);
  });

  it('reads a field without a colon as an empty value, and a data line of nothing as an empty line', () => {
    const p = new SseParser();
    expect(p.feed('data\ndata\n\ndata:\n\n')).toEqual([
      { kind: 'event', type: 'message', data: '\n', lastEventId: '' },
      { kind: 'event', type: 'message', data: '', lastEventId: '' },
    ]);
  });

  it('reads what the registry sends', () => {
    const p = new SseParser();
    const frame = 'id: 42\nevent: commit\ndata: {"version":42}\n\n: heartbeat\n\nevent: lagged\ndata: {"reason":"x"}\n\n';
    expect(p.feed(frame)).toEqual([
      { kind: 'event', type: 'commit', data: '{"version":42}', lastEventId: '42' },
      { kind: 'comment', text: 'heartbeat' },
      { kind: 'event', type: 'lagged', data: '{"reason":"x"}', lastEventId: '42' },
    ]);
  });
});
