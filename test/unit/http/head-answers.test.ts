// Kept head answers hold exactly while the head and the set of visible descriptors do.
import { describe, expect, it } from 'vitest';
import { HeadAnswers } from '../../../src/http/head-answers.js';
import { DescriptorIndex, toItem } from '../../../src/state/descriptor-index.js';

const T = Date.parse('2026-11-23T12:00:00.000Z');
const answer = (text: string) => ({ body: Buffer.from(text), etag: `"${text}"`, cacheControl: 'x' });

describe('kept head answers', () => {
  it('serve an answer until the head moves', () => {
    const index = new DescriptorIndex();
    const kept = new HeadAnswers();
    expect(kept.get('/a', 1, index, T)).toBeUndefined();
    kept.set('/a', 1, answer('one'));
    expect(kept.get('/a', 1, index, T + 10_000)?.etag).toBe('"one"');
    expect(kept.get('/b', 1, index, T)).toBeUndefined();
    expect(kept.get('/a', 2, index, T)).toBeUndefined();
    // An answer made at another version than the one last asked about is not kept.
    kept.set('/a', 1, answer('stale'));
    expect(kept.get('/a', 2, index, T)).toBeUndefined();
  });

  it('drop every answer when the next descriptor expiry passes, and only then', () => {
    const index = new DescriptorIndex();
    index.set(toItem({ id: 'lease', kind: 'lease', labels: {}, body: {}, expires_at: new Date(T + 5000).toISOString() }, 1));
    index.set(toItem({ id: 'old', kind: 'lease', labels: {}, body: {}, expires_at: new Date(T - 5000).toISOString() }, 1));
    const kept = new HeadAnswers();
    kept.get('/a', 1, index, T);
    kept.set('/a', 1, answer('one'));
    expect(kept.get('/a', 1, index, T + 4999)?.etag).toBe('"one"');
    expect(kept.get('/a', 1, index, T + 5000)).toBeUndefined();
    kept.set('/a', 1, answer('two'));
    // No expiry is left ahead: kept for good at this version.
    expect(kept.get('/a', 1, index, T + 10 ** 9)?.etag).toBe('"two"');
  });

  it('track expiries through puts and deletes, in bulk too', () => {
    for (const bulk of [false, true]) {
      const index = new DescriptorIndex();
      if (bulk) index.beginBulk();
      for (const [id, at] of [
        ['a', 30],
        ['b', 10],
        ['c', 20],
      ] as const) {
        index.set(toItem({ id, kind: 'k', labels: {}, body: {}, expires_at: new Date(T + at).toISOString() }, 1));
      }
      index.delete('b');
      index.set(toItem({ id: 'c', kind: 'k', labels: {}, body: {} }, 2));
      if (bulk) index.endBulk();
      expect(index.nextExpiryAfter(T)).toBe(T + 30);
      expect(index.nextExpiryAfter(T + 30)).toBe(Number.POSITIVE_INFINITY);
    }
  });
});
