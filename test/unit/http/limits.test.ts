// The pieces of the write limits that need no server: token buckets on a fake clock, and the
// key per-address limits count under.
import { describe, expect, it } from 'vitest';
import { addressKey } from '../../../src/http/limits.js';
import { TokenBuckets } from '../../../src/http/token-bucket.js';

describe('TokenBuckets', () => {
  const clock = () => {
    const c = { now: 0 };
    return { c, now: () => c.now };
  };

  it('gives a burst, then `rate` tokens a second', () => {
    const { c, now } = clock();
    const b = new TokenBuckets(2, 3, 100, now);
    expect([b.tryTake('a'), b.tryTake('a'), b.tryTake('a')]).toEqual([0, 0, 0]);
    expect(b.tryTake('a')).toBeCloseTo(0.5);
    c.now += 250;
    expect(b.tryTake('a')).toBeCloseTo(0.25);
    c.now += 250;
    expect(b.tryTake('a')).toBe(0);
    expect(b.tryTake('b')).toBe(0);
  });

  it('goes into debt when charged after the fact, and a refused try takes nothing', () => {
    const { c, now } = clock();
    const b = new TokenBuckets(1, 1, 100, now);
    b.take('s');
    b.take('s');
    b.take('s');
    expect(b.wait('s')).toBeCloseTo(3);
    expect(b.tryTake('s')).toBeCloseTo(3);
    c.now += 3000;
    expect(b.wait('s')).toBe(0);
  });

  it('never holds more than maxKeys, and forgets refilled keys on a sweep', () => {
    const { c, now } = clock();
    const b = new TokenBuckets(1, 2, 3, now);
    for (const k of ['a', 'b', 'c', 'd', 'e']) b.take(k);
    expect(b.size).toBe(3);
    c.now += 1000;
    b.sweep();
    expect(b.size).toBe(0);
  });
});

describe('addressKey', () => {
  it('keeps IPv4 addresses, unwraps IPv4-mapped IPv6 and counts IPv6 by its /64', () => {
    expect(addressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey(undefined)).toBe('unknown');
  });
});
