// Answers about the head, kept by request URL until the head moves or the next descriptor
// expiry passes (either changes what a read sees). Gateways poll the same lookups and pages;
// with this, a repeated one costs what the head itself costs: no filter, no page walk, no
// hashing. Bounded by count and bytes; the oldest answer goes first.
import type { DescriptorIndex } from '../state/descriptor-index.js';

export interface Answer {
  body: Buffer;
  etag: string;
  cacheControl: string;
}

const MAX_ANSWERS = 2048;
const MAX_BYTES = 32 * 1024 * 1024;

export class HeadAnswers {
  private readonly answers = new Map<string, Answer>();
  private bytes = 0;
  private version = -1;
  private until = Number.NEGATIVE_INFINITY;

  /** The kept answer to `key` at head `version`, if it still holds at `now`. */
  get(key: string, version: number, index: DescriptorIndex, now: number): Answer | undefined {
    if (version !== this.version || now >= this.until) {
      this.answers.clear();
      this.bytes = 0;
      this.version = version;
      this.until = index.nextExpiryAfter(now);
      return undefined;
    }
    return this.answers.get(key);
  }

  /** Keeps `answer`, made at the version of the last `get`. */
  set(key: string, version: number, answer: Answer): void {
    if (version !== this.version) return;
    this.bytes += answer.body.length - (this.answers.get(key)?.body.length ?? 0);
    this.answers.set(key, answer);
    for (const [k, old] of this.answers) {
      if (this.answers.size <= MAX_ANSWERS && this.bytes <= MAX_BYTES) break;
      this.answers.delete(k);
      this.bytes -= old.body.length;
    }
  }
}
