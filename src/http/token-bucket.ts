// Token buckets by key (a client address, a signer id): `rate` tokens a second, at most `burst`
// saved up. A bucket may go into debt (a charge after the fact, for a request already
// answered), and a full bucket is the same as none, so full buckets are dropped: the map holds
// only keys that spent recently, and never more than `maxKeys` of them.

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date, ms (performance.now()). */
  at: number;
}

export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError('a token bucket needs a positive rate and a burst of at least 1');
    this.perMs = rate / 1000;
  }

  /** Seconds until `key` has a whole token; 0 when it has one now. */
  wait(key: string): number {
    const b = this.buckets.get(key);
    if (b === undefined) return 0;
    const tokens = this.refill(b);
    return tokens >= 1 ? 0 : (1 - tokens) / this.rate;
  }

  /** Takes a token when `key` has one (answers 0), else takes nothing and answers the seconds
   * until it will have one. */
  tryTake(key: string): number {
    const wait = this.wait(key);
    if (wait === 0) this.take(key);
    return wait;
  }

  /** Takes `n` tokens, into debt if need be. */
  take(key: string, n = 1): void {
    const b = this.buckets.get(key);
    if (b !== undefined) {
      b.tokens = this.refill(b) - n;
      return;
    }
    if (this.buckets.size >= this.maxKeys) this.makeRoom();
    this.buckets.set(key, { tokens: this.burst - n, at: this.now() });
  }

  /** Keys currently held (those that spent and have not refilled). */
  get size(): number {
    return this.buckets.size;
  }

  /** Drops the buckets that have refilled. */
  sweep(): void {
    for (const [key, b] of this.buckets) if (this.refill(b) >= this.burst) this.buckets.delete(key);
  }

  private refill(b: Bucket): number {
    const now = this.now();
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    return b.tokens;
  }

  private makeRoom(): void {
    this.sweep();
    // Still full: forget the oldest keys (a forgotten key starts again with a full burst).
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < this.maxKeys) break;
      this.buckets.delete(key);
    }
  }
}
