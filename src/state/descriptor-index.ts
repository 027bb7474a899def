// Descriptors of one version, by id and by the fields filters index (SPEC §6, §11): the
// descriptors in id order, and postings by `kind` and by label name and value. The head keeps
// one, updated from each commit's delta; past versions build one when asked. A page walks the
// smallest posting an expression allows, in id order from the cursor, so a filtered page costs
// the page and the candidates it skips, not the registry.
import { canonicalJson, parseTime } from '../core/encoding.js';
import type { Descriptor } from '../core/schemas.js';

export interface Item {
  readonly descriptor: Descriptor;
  /** The version whose commit last put this descriptor. */
  readonly changedIn: number;
  /** ms since the epoch; +Infinity when the descriptor does not expire. */
  readonly expiresAt: number;
  /** The descriptor as served: its canonical JSON, computed once. */
  readonly json: string;
}

export const toItem = (descriptor: Descriptor, changedIn: number, json = canonicalJson(descriptor)): Item => ({
  descriptor,
  changedIn,
  expiresAt: descriptor.expires_at === undefined ? Number.POSITIVE_INFINITY : parseTime(descriptor.expires_at),
  json,
});

/** Ids are ASCII (SPEC §1), so UTF-16 order is byte order. */
const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Index of the first element of `sorted` greater than `after` (or 0). */
function startAfter(sorted: readonly string[], after: string | undefined): number {
  if (after === undefined) return 0;
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A set of ids kept sorted. In bulk mode (start-up replay) sorting waits until the end. */
class Posting {
  private readonly members = new Set<string>();
  private sorted: string[] | null = [];

  get size(): number {
    return this.members.size;
  }

  add(id: string, bulk: boolean): void {
    if (this.members.has(id)) return;
    this.members.add(id);
    if (this.sorted === null) return;
    if (bulk) {
      this.sorted = null;
      return;
    }
    const at = startAfter(this.sorted, id);
    this.sorted.splice(at, 0, id);
  }

  remove(id: string): void {
    if (!this.members.delete(id) || this.sorted === null) return;
    const at = startAfter(this.sorted, id) - 1;
    if (this.sorted[at] === id) this.sorted.splice(at, 1);
  }

  ids(): readonly string[] {
    this.sorted ??= [...this.members].sort(compare);
    return this.sorted;
  }
}

/** What every match must satisfy, as the filter's planner reads it: the kind is one of
 * `kinds`, and for each label constraint the label `key` has one of `values`. */
export interface IndexHints {
  kinds?: readonly string[] | undefined;
  labels?: readonly { key: string; values: readonly string[] }[] | undefined;
}

export interface PageQuery {
  matches?: ((d: Descriptor) => boolean) | undefined;
  hints?: IndexHints | undefined;
  /** The last id of the previous page. */
  after?: string | undefined;
  limit: number;
  /** Hide descriptors whose expires_at is at or before this instant (ms). */
  now?: number | undefined;
}

export class DescriptorIndex {
  private readonly items = new Map<string, Item>();
  private readonly all = new Posting();
  private readonly byKind = new Map<string, Posting>();
  private readonly byLabel = new Map<string, Map<string, Posting>>();
  /** The finite expires_at instants, sorted (repeats kept): when the next one passes, reads
   * see a different set of descriptors without a commit. */
  private expiries: number[] = [];
  private bulk = false;

  get size(): number {
    return this.items.size;
  }

  get(id: string): Item | undefined {
    return this.items.get(id);
  }

  /** Defers sorting until `endBulk`: a replay of many commits then sorts each posting once. */
  beginBulk(): void {
    this.bulk = true;
  }

  endBulk(): void {
    this.bulk = false;
    this.expiries.sort((a, b) => a - b);
  }

  /** The first instant after `now` at which a descriptor expires, or +Infinity. */
  nextExpiryAfter(now: number): number {
    const e = this.expiries;
    let lo = 0;
    let hi = e.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (e[mid]! <= now) lo = mid + 1;
      else hi = mid;
    }
    return e[lo] ?? Number.POSITIVE_INFINITY;
  }

  private addExpiry(at: number): void {
    if (!Number.isFinite(at)) return;
    if (this.bulk) {
      this.expiries.push(at);
      return;
    }
    let lo = 0;
    let hi = this.expiries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.expiries[mid]! < at) lo = mid + 1;
      else hi = mid;
    }
    this.expiries.splice(lo, 0, at);
  }

  private removeExpiry(at: number): void {
    if (!Number.isFinite(at)) return;
    const i = this.expiries.indexOf(at);
    if (i >= 0) this.expiries.splice(i, 1);
  }

  set(item: Item): void {
    const id = item.descriptor.id;
    this.delete(id);
    this.items.set(id, item);
    this.addExpiry(item.expiresAt);
    this.all.add(id, this.bulk);
    posting(this.byKind, item.descriptor.kind).add(id, this.bulk);
    for (const [key, value] of Object.entries(item.descriptor.labels)) {
      let values = this.byLabel.get(key);
      if (!values) this.byLabel.set(key, (values = new Map<string, Posting>()));
      posting(values, value).add(id, this.bulk);
    }
  }

  delete(id: string): void {
    const old = this.items.get(id);
    if (!old) return;
    this.items.delete(id);
    this.removeExpiry(old.expiresAt);
    this.all.remove(id);
    this.byKind.get(old.descriptor.kind)?.remove(id);
    for (const [key, value] of Object.entries(old.descriptor.labels)) this.byLabel.get(key)?.get(value)?.remove(id);
  }

  /** Items in id order after `after`, drawn from the smallest set of candidates that `hints`
   * allow; the caller checks each against the whole filter. */
  *candidates(hints: IndexHints | undefined, after?: string): Generator<Item> {
    for (const id of this.plan(hints, after)) yield this.items.get(id)!;
  }

  /** One page: the first `limit` items after `after` that `matches` accepts and that are not
   * expired at `now` (all of them when `now` is undefined); `more` when another page exists. */
  page(q: PageQuery): { items: Item[]; more: boolean } {
    const items: Item[] = [];
    for (const item of this.candidates(q.hints, q.after)) {
      if (q.now !== undefined && item.expiresAt <= q.now) continue;
      if (q.matches && !q.matches(item.descriptor)) continue;
      if (items.length === q.limit) return { items, more: true };
      items.push(item);
    }
    return { items, more: false };
  }

  private plan(hints: IndexHints | undefined, after: string | undefined): Iterable<string> {
    const options: Posting[][] = [];
    if (hints?.kinds) options.push(hints.kinds.map((k) => this.byKind.get(k)).filter((p) => p !== undefined));
    for (const label of hints?.labels ?? []) {
      const values = this.byLabel.get(label.key);
      options.push(label.values.map((v) => values?.get(v)).filter((p) => p !== undefined));
    }
    if (!options.length) return merge([this.all.ids()], after);
    let best = options[0]!;
    let bestSize = Number.POSITIVE_INFINITY;
    for (const o of options) {
      const size = o.reduce((n, p) => n + p.size, 0);
      if (size < bestSize) [best, bestSize] = [o, size];
    }
    return merge(
      best.map((p) => p.ids()),
      after,
    );
  }
}

function posting<K>(map: Map<K, Posting>, key: K): Posting {
  let p = map.get(key);
  if (!p) map.set(key, (p = new Posting()));
  return p;
}

/** The union of sorted id lists, in order, from after `after`. */
function* merge(lists: readonly (readonly string[])[], after: string | undefined): Generator<string> {
  if (lists.length === 1) {
    const list = lists[0]!;
    for (let i = startAfter(list, after); i < list.length; i++) yield list[i]!;
    return;
  }
  const at = lists.map((l) => startAfter(l, after));
  for (;;) {
    let min: string | undefined;
    for (let i = 0; i < lists.length; i++) {
      const v = lists[i]![at[i]!];
      if (v !== undefined && (min === undefined || v < min)) min = v;
    }
    if (min === undefined) return;
    for (let i = 0; i < lists.length; i++) if (lists[i]![at[i]!] === min) at[i]!++;
    yield min;
  }
}
