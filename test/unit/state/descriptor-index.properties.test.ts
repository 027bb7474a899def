// The head index and diffs against a brute-force reference (a plain Map, filtered and sorted
// on every question), over random commit sequences, random index hints and random pages.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Descriptor, SignerSet } from '../../../src/core/schemas.js';
import { DescriptorIndex, toItem, type IndexHints } from '../../../src/state/descriptor-index.js';
import { diffStates } from '../../../src/state/diff.js';

const IDS = ['a', 'a.b', 'b', 'c/d', 'c@e', 'node-1', 'node-10', 'node-2', 'svc:x', 'z'];
const KINDS = ['node', 'service', 'map'];
const REGIONS = ['eu', 'us', 'ap'];
const NOW = 1_000_000;

const descriptorArb = fc.record({
  id: fc.constantFrom(...IDS),
  kind: fc.constantFrom(...KINDS),
  region: fc.option(fc.constantFrom(...REGIONS), { nil: undefined }),
  status: fc.option(fc.constantFrom('on', 'off'), { nil: undefined }),
  expired: fc.boolean(),
  n: fc.nat(3),
});
type Op = { put: Descriptor } | { del: string };
const opArb: fc.Arbitrary<Op> = fc.oneof(
  descriptorArb.map(({ id, kind, region, status, expired, n }) => {
    const labels: Record<string, string> = {};
    if (region) labels.region = region;
    if (status) labels.status = status;
    const d: Descriptor = { id, kind, labels, body: { n } };
    if (expired) d.expires_at = new Date(NOW - 1).toISOString();
    else if (n === 3) d.expires_at = new Date(NOW + 1000).toISOString();
    return { put: d };
  }),
  fc.constantFrom(...IDS).map((id) => ({ del: id })),
);
const commitsArb = fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 12 });
const hintsArb: fc.Arbitrary<IndexHints | undefined> = fc.option(
  fc.record({
    kinds: fc.option(fc.subarray(KINDS, { minLength: 1 }), { nil: undefined }),
    labels: fc.option(
      fc.array(fc.record({ key: fc.constantFrom('region', 'status'), values: fc.subarray([...REGIONS, 'on', 'off'], { minLength: 1 }) }), {
        maxLength: 2,
      }),
      {
        nil: undefined,
      },
    ),
  }),
  { nil: undefined },
);

function replay(commits: Op[][], upTo: number, bulk: boolean) {
  const index = new DescriptorIndex();
  const ref = new Map<string, { d: Descriptor; v: number }>();
  if (bulk) index.beginBulk();
  commits.slice(0, upTo).forEach((ops, i) => {
    for (const op of ops) {
      if ('put' in op) {
        index.set(toItem(op.put, i + 1));
        ref.set(op.put.id, { d: op.put, v: i + 1 });
      } else {
        index.delete(op.del);
        ref.delete(op.del);
      }
    }
  });
  if (bulk) index.endBulk();
  return { index, ref };
}

const satisfies = (d: Descriptor, hints: IndexHints | undefined): boolean =>
  (hints?.kinds === undefined || hints.kinds.includes(d.kind)) &&
  (hints?.labels ?? []).every((l) => d.labels[l.key] !== undefined && l.values.includes(d.labels[l.key]!));

describe('the descriptor index', () => {
  it('answers lookups and every page exactly as a brute-force scan does', () => {
    fc.assert(
      fc.property(
        commitsArb,
        hintsArb,
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (commits, hints, limit, bulk, hideExpired, odd) => {
          const { index, ref } = replay(commits, commits.length, bulk);
          expect(index.size).toBe(ref.size);
          for (const id of IDS) {
            const item = index.get(id);
            expect(item?.descriptor).toEqual(ref.get(id)?.d);
            expect(item?.changedIn).toBe(ref.get(id)?.v);
          }
          // A filter implies its hints and may say more that no index sees; the index only
          // narrows the candidates, the matcher decides.
          const extra = (d: Descriptor) => satisfies(d, hints) && (!odd || (d.body.n as number) % 2 === 1);
          const now = hideExpired ? NOW : undefined;
          const expected = [...ref.values()]
            .map((e) => e.d)
            .filter((d) => extra(d) && (now === undefined || d.expires_at === undefined || Date.parse(d.expires_at) > now))
            .map((d) => d.id)
            .sort();
          const got: string[] = [];
          let after: string | undefined;
          for (let pages = 0; pages < 20; pages++) {
            const page = index.page({ hints, matches: extra, after, limit, now });
            expect(page.items.length).toBeLessThanOrEqual(limit);
            got.push(...page.items.map((i) => i.descriptor.id));
            if (!page.more) break;
            expect(page.items).toHaveLength(limit);
            after = page.items[page.items.length - 1]!.descriptor.id;
          }
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('diffs two versions exactly as comparing their full states does', () => {
    const set = (n: number): SignerSet => ({ threshold: 1, signers: [{ id: `s${n}`, public_key: '00'.repeat(32) }] });
    fc.assert(
      fc.property(commitsArb, fc.nat(), fc.nat(), (commits, x, y) => {
        const [from, to] = [x % (commits.length + 1), y % (commits.length + 1)].sort((p, q) => p - q) as [number, number];
        const a = replay(commits, from, false);
        const b = replay(commits, to, true);
        const touched = new Set(commits.slice(from, to).flatMap((ops) => ops.map((op) => ('put' in op ? op.put.id : op.del))));
        const diff = diffStates(
          { version: from, index: a.index, signerSet: set(from === to ? 0 : 1) },
          { version: to, index: b.index, signerSet: set(from === to ? 0 : 2) },
          [...touched].sort(),
        );
        const all = [...new Set([...a.ref.keys(), ...b.ref.keys()])].sort();
        expect(diff.added.map((d) => d.id)).toEqual(all.filter((id) => !a.ref.has(id) && b.ref.has(id)));
        expect(diff.removed.map((d) => d.id)).toEqual(all.filter((id) => a.ref.has(id) && !b.ref.has(id)));
        expect(diff.changed.map((c) => c.id)).toEqual(
          all.filter((id) => a.ref.has(id) && b.ref.has(id) && JSON.stringify(a.ref.get(id)!.d) !== JSON.stringify(b.ref.get(id)!.d)),
        );
        for (const c of diff.changed) expect([c.before, c.after]).toEqual([a.ref.get(c.id)!.d, b.ref.get(c.id)!.d]);
        expect(diff.signer_set === null).toBe(from === to);
      }),
      { numRuns: 300 },
    );
  });
});
