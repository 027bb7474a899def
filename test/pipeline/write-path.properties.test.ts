// Property tests of the write path (SPEC §2–§4, §6 write rules): the real Writer over a real
// in-memory SqliteStore, driven with random signer sets, thresholds, approval orders and ops.
import { blake3 } from '@noble/hashes/blake3.js';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateKeyPair, signApproval, verifyApprovalStrict, type KeyPair } from '../../src/core/crypto.js';
import { hashOf } from '../../src/core/encoding.js';
import { RegistryError, type ErrorCode } from '../../src/core/errors.js';
import { checkGenesisRecord, type CheckedGenesis } from '../../src/core/records.js';
import type { Approval, CommitRecord, Descriptor, Op, ProposalPayload, SignerSet } from '../../src/core/schemas.js';
import { AuditedLog } from '../../src/pipeline/audited-log.js';
import { Writer, type CommitEvent } from '../../src/pipeline/writer.js';
import type { HeadView } from '../../src/state/head-view.js';
import { fullView, type ProposalView } from '../../src/state/proposal-view.js';
import { openLog } from '../../src/state/replay.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import { approve, del, genesisRecord, proposal, put, setSigners, signerSet, type TestSigner } from '../helpers/fixtures.js';

const REGISTRY = 'props';
const T0 = Date.parse('2026-11-22T17:00:00.000Z');
/** Keys are expensive to derive; runs draw distinct keys from this pool (a run has its own log). */
const KEYS: readonly KeyPair[] = Array.from({ length: 24 }, () => generateKeyPair());
const STRANGER_KEY = KEYS[23]!;

// -- harness ---------------------------------------------------------------------------------

interface Harness {
  store: SqliteStore;
  genesis: CheckedGenesis;
  view: HeadView;
  writer: Writer;
  commits: CommitEvent[];
}

async function newWriter(h: Pick<Harness, 'store' | 'view' | 'commits'>): Promise<Writer> {
  const writer = new Writer({ log: new AuditedLog(h.store), view: h.view, registryId: REGISTRY, now: () => T0 });
  await writer.open();
  writer.on('commit', (e) => h.commits.push(e));
  return writer;
}

async function proposalView(h: Pick<Harness, 'store' | 'view'>, id: string) {
  const stored = await h.store.proposal(id);
  return stored && fullView(stored, h.view.state);
}

async function withRegistry(list: TestSigner[], threshold: number, body: (h: Harness) => Promise<void>): Promise<void> {
  const genesis = checkGenesisRecord(genesisRecord(REGISTRY, list, threshold, T0));
  const store = new SqliteStore({ path: ':memory:' });
  try {
    const view = await openLog(store, genesis);
    const partial = { store, view, commits: [] as CommitEvent[] };
    const h: Harness = { ...partial, genesis, writer: await newWriter(partial) };
    await body(h);
  } finally {
    await store.close();
  }
}

/** Restarts the writer on a view replayed from the same store. */
async function restart(h: Harness): Promise<void> {
  await h.writer.drain();
  h.view = await openLog(h.store, h.genesis);
  h.writer = await newWriter(h);
}

const signersFrom = (ids: readonly string[], keys: readonly KeyPair[]): TestSigner[] =>
  ids.map((id, i) => ({ id, publicKey: keys[i]!.publicKey, secretKey: keys[i]!.secretKey }));

const sortedIds = (ids: Iterable<string>): string[] => [...ids].sort();

async function refusedWith(action: Promise<unknown>, code: ErrorCode): Promise<void> {
  let error: unknown;
  let value: unknown;
  try {
    value = await action;
  } catch (e) {
    error = e;
  }
  expect(error, `expected a ${code} refusal, got ${JSON.stringify(value)}`).toBeInstanceOf(RegistryError);
  expect((error as RegistryError).code).toBe(code);
}

/** Everything a refused request must leave as it was. */
async function snapshot(h: Harness, proposalIds: readonly string[] = []) {
  return {
    head: { ...h.view.head },
    stateRoot: h.view.state.root(),
    commits: (await h.store.commits(0, 1_000_000)).map((c) => c.hash),
    commitEvents: h.commits.length,
    pending: h.writer.pendingCount,
    proposals: await Promise.all(proposalIds.map((id) => proposalView(h, id))),
  };
}

async function record(h: Harness, version: number): Promise<{ record: CommitRecord; hash: string }> {
  const stored = await h.store.commit(version);
  expect(stored, `version ${version} is stored`).toBeDefined();
  return { record: JSON.parse(stored!.text) as CommitRecord, hash: stored!.hash };
}

async function refusedAuditCount(h: Harness): Promise<number> {
  const events = await h.store.audit(1, 1_000_000);
  return events.filter((e) => (JSON.parse(e) as { kind: string }).kind === 'approval_refused').length;
}

// -- an independent reading of the state root (SPEC §5) ----------------------------------------

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const jcs = (v: unknown): string => {
  const text = canonicalize(v);
  if (text === undefined) throw new TypeError('no canonical form');
  return text;
};

function specStateRoot(descriptors: ReadonlyMap<string, Descriptor>, set: SignerSet): string {
  const buckets: { key: Uint8Array; leaf: Uint8Array }[][] = Array.from({ length: 256 }, () => []);
  for (const d of descriptors.values()) {
    const key = blake3(utf8(d.id));
    buckets[key[0]!]!.push({ key, leaf: blake3(utf8(jcs(d))) });
  }
  const parts: Uint8Array[] = [utf8('registry-state-v1')];
  for (const bucket of buckets) {
    bucket.sort((a, b) => Buffer.compare(a.key, b.key));
    parts.push(blake3(Buffer.concat(bucket.flatMap((e) => [e.key, e.leaf]))));
  }
  parts.push(blake3(utf8(jcs(set))));
  return `b3:${Buffer.from(blake3(Buffer.concat(parts))).toString('hex')}`;
}

// -- arbitraries -----------------------------------------------------------------------------

const signerIdArb = fc.stringMatching(/^[a-z0-9._-]{1,10}$/);
const idsArb = (n: number) => fc.uniqueArray(signerIdArb, { minLength: n, maxLength: n });
const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

// -- properties ------------------------------------------------------------------------------

describe('write path properties', () => {
  it('1. no commit without quorum; duplicates count once; strangers are refused and change nothing', async () => {
    const arb = fc.integer({ min: 1, max: 7 }).chain((n) =>
      fc.record({
        ids: idsArb(n + 1), // the last one is a stranger to the set
        m: fc.integer({ min: 1, max: n }),
        order: fc.shuffledSubarray(range(n), { minLength: 1 }),
        // Extra approvals interleaved after the first: `who === n` is the stranger, any other
        // index a member (a duplicate when that member has already approved).
        extras: fc.array(fc.record({ at: fc.nat(), who: fc.integer({ min: 0, max: n }) }), { maxLength: 4 }),
        dupInSubmit: fc.boolean(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(arb, async ({ ids, m, order, extras, dupInSubmit }) => {
        const n = ids.length - 1;
        const members = signersFrom(ids.slice(0, n), KEYS);
        const stranger: TestSigner = { id: ids[n]!, publicKey: KEYS[n]!.publicKey, secretKey: KEYS[n]!.secretKey };
        const seq = [...order];
        for (const x of extras) seq.splice(1 + (x.at % seq.length), 0, x.who);
        await withRegistry(members, m, async (h) => {
          const p = proposal(REGISTRY, h.view.head, [put('svc-quorum')], { now: T0 });
          const id = hashOf(p);
          const approvers = new Set<string>();
          let committed = false;
          const expectState = async (view: ProposalView) => {
            expect(view.status).toBe(committed ? 'committed' : 'pending');
            expect(view.approvals.map((a) => a.signer_id)).toEqual(sortedIds(approvers));
            expect(view.threshold).toBe(m);
            expect(view.version).toBe(committed ? 1 : undefined);
            expect((await proposalView(h, id))?.status).toBe(view.status);
            expect(h.view.head.version).toBe(committed ? 1 : 0);
            expect(h.commits.length).toBe(committed ? 1 : 0);
          };
          const count = (signer: TestSigner) => {
            if (committed) return;
            approvers.add(signer.id);
            committed = approvers.size >= m;
          };

          const firstSigner = members[seq[0]!]!;
          const first = approve(firstSigner, id);
          const submitted = await h.writer.submit({ payload: p, approvals: dupInSubmit ? [first, first] : [first] });
          expect(submitted.created).toBe(true);
          count(firstSigner);
          await expectState(submitted.view);

          for (const who of seq.slice(1)) {
            if (who === n) {
              const before = await snapshot(h, [id]);
              await refusedWith(h.writer.approve(id, approve(stranger, id)), 'BadSignature');
              expect(await snapshot(h, [id])).toEqual(before);
              continue;
            }
            const signer = members[who]!;
            const view = await h.writer.approve(id, approve(signer, id));
            count(signer);
            await expectState(view);
          }

          expect(committed).toBe(new Set(seq.filter((i) => i < n)).size >= m);
          if (committed) {
            const { record: rec } = await record(h, 1);
            expect(rec.approvals.map((a) => a.signer_id)).toEqual(sortedIds(approvers));
            expect(rec.approvals.length).toBe(m);
            expect(rec.payload_hash).toBe(id);
          }
        });
      }),
      { numRuns: 120 },
    );
  });

  it('2. each commit is version+1, chained by prev_hash, and replays to the same head and state root', async () => {
    const POOL = ['a', 'b', 'svc/x', 'node-1@eu', 'z:9', 'Q.q', 'm_1', '-'];
    const descriptorArb = fc.record({
      id: fc.constantFrom(...POOL),
      kind: fc.stringMatching(/^[a-z0-9._-]{1,8}$/),
      labels: fc.dictionary(fc.stringMatching(/^[A-Za-z0-9._/-]{1,8}$/), fc.string({ unit: 'grapheme', maxLength: 12 }), { maxKeys: 3 }),
      body: fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 6 }), fc.jsonValue({ maxDepth: 2, stringUnit: 'grapheme' }), {
        maxKeys: 3,
      }),
      expires: fc.option(
        fc.integer({ min: 0, max: 400 * 86_400_000 }).map((d) => new Date(T0 - 200 * 86_400_000 + d).toISOString()),
        {
          nil: undefined,
        },
      ),
    });
    const stepArb = fc.record({
      ops: fc.array(fc.record({ del: fc.boolean(), pick: fc.nat(), put: descriptorArb }), { minLength: 1, maxLength: 4 }),
      viaSubmit: fc.nat(),
      offset: fc.nat(),
      restart: fc.integer({ min: 0, max: 3 }).map((x) => x === 0),
    });
    const arb = fc
      .integer({ min: 1, max: 4 })
      .chain((n) =>
        fc.record({ ids: idsArb(n), m: fc.integer({ min: 1, max: n }), steps: fc.array(stepArb, { minLength: 1, maxLength: 6 }) }),
      );
    await fc.assert(
      fc.asyncProperty(arb, async ({ ids, m, steps }) => {
        const members = signersFrom(ids, KEYS);
        const set = signerSet(members, m);
        await withRegistry(members, m, async (h) => {
          const model = new Map<string, { descriptor: Descriptor; changedIn: number }>();
          for (const step of steps) {
            // Resolve the abstract ops against the state: deletes name ids that exist, and an
            // id appears once per proposal.
            const used = new Set<string>();
            const ops: Op[] = [];
            for (const o of step.ops) {
              const existing = [...model.keys()].filter((k) => !used.has(k));
              if (o.del && existing.length > 0) {
                const target = existing[o.pick % existing.length]!;
                used.add(target);
                ops.push(del(target));
              } else if (!used.has(o.put.id)) {
                used.add(o.put.id);
                const d = o.put;
                const descriptor: Descriptor = { id: d.id, kind: d.kind, labels: d.labels, body: d.body };
                if (d.expires !== undefined) descriptor.expires_at = d.expires;
                ops.push({ op: 'put', descriptor });
              }
            }

            const prev = { ...h.view.head };
            const v = prev.version + 1;
            const p = proposal(REGISTRY, prev, ops, { now: T0 });
            const id = hashOf(p);
            const order = members.map((_, i) => members[(i + step.offset) % members.length]!).slice(0, m);
            const k = 1 + (step.viaSubmit % m);
            let view = (await h.writer.submit({ payload: p, approvals: order.slice(0, k).map((s) => approve(s, id)) })).view;
            for (const s of order.slice(k)) {
              expect(view.status).toBe('pending');
              view = await h.writer.approve(id, approve(s, id));
            }
            expect(view).toMatchObject({ status: 'committed', version: v });

            for (const op of ops) {
              if (op.op === 'put') model.set(op.descriptor.id, { descriptor: op.descriptor, changedIn: v });
              else if (op.op === 'delete') model.delete(op.id);
            }

            const { record: rec, hash } = await record(h, v);
            const { record: prevRec, hash: prevHash } = await record(h, prev.version);
            expect(hash).toBe(hashOf(rec));
            expect(prevHash).toBe(hashOf(prevRec));
            expect(rec.version).toBe(prevRec.version + 1);
            expect(rec.prev_hash).toBe(hashOf(prevRec));
            const payload = rec.payload as ProposalPayload;
            expect(payload.base_version).toBe(v - 1);
            expect(payload.base_hash).toBe(rec.prev_hash);
            expect(rec.payload_hash).toBe(id);
            expect(hashOf(rec.payload)).toBe(id);
            expect(rec.state_root).toBe(specStateRoot(new Map([...model].map(([k2, e]) => [k2, e.descriptor])), set));
            expect(h.view.head).toMatchObject({ version: v, hash, prevHash: prevHash, stateRoot: rec.state_root });
            expect(h.commits.at(-1)).toMatchObject({ hash, record: { version: v } });

            const fresh = await openLog(h.store, h.genesis);
            expect(fresh.head.hash).toBe(h.view.head.hash);
            expect(fresh.head.stateRoot).toBe(h.view.head.stateRoot);
            expect(fresh.state.root()).toBe(h.view.state.root());
            expect(fresh.state.root()).toBe(rec.state_root);
            expect(sortedIds(fresh.state.entries.keys())).toEqual(sortedIds(model.keys()));
            for (const [key, e] of model) {
              // As stored: JSON has no -0 (JCS writes it as 0), so compare the JSON forms.
              expect(fresh.state.entries.get(key)?.descriptor).toEqual(JSON.parse(JSON.stringify(e.descriptor)));
              expect(fresh.state.entries.get(key)?.changedIn).toBe(e.changedIn);
            }

            if (step.restart) await restart(h);
          }
          expect(h.view.head.version).toBe(steps.length);
        });
      }),
      { numRuns: 40 },
    );
  });

  it('3. a rotation needs quorum under both the current and the proposed set', async () => {
    const arb = fc
      .record({ n: fc.integer({ min: 1, max: 5 }), newCount: fc.integer({ min: 0, max: 3 }) })
      .chain(({ n, newCount }) =>
        fc.record({
          n: fc.constant(n),
          ids: idsArb(n + newCount), // the first n are the current set, the rest newcomers
          m: fc.integer({ min: 1, max: n }),
          kept: fc.subarray(range(n)),
          mpSeed: fc.nat(),
          // Each signer of the union approves with probability 3/4, in the order of `key`.
          picks: fc.array(fc.record({ in: fc.integer({ min: 0, max: 3 }).map((x) => x > 0), key: fc.nat() }), {
            minLength: n + newCount,
            maxLength: n + newCount,
          }),
        }),
      )
      .filter(({ n, ids, kept }) => kept.length + ids.length - n > 0);
    await fc.assert(
      fc.asyncProperty(arb, async ({ n, ids, m, kept, mpSeed, picks }) => {
        const all = signersFrom(ids, KEYS);
        const current = all.slice(0, n);
        const newcomers = all.slice(n);
        const removed = current.filter((_, i) => !kept.includes(i));
        const next = [...kept.map((i) => current[i]!), ...newcomers];
        const mp = 1 + (mpSeed % next.length);
        const nextSet = signerSet(next, mp);
        const currentIds = new Set(current.map((s) => s.id));
        const nextIds = new Set(next.map((s) => s.id));
        let seq = range(all.length)
          .filter((i) => picks[i]!.in)
          .sort((a, b) => picks[a]!.key - picks[b]!.key || a - b);
        if (seq.length === 0) seq = [0];

        await withRegistry(current, m, async (h) => {
          const ops: Op[] = [setSigners(nextSet), put('svc-rotated')];
          const p = proposal(REGISTRY, h.view.head, ops, { now: T0 });
          const id = hashOf(p);
          const approvers = new Set<string>();
          let committed = false;
          const from = (ids2: ReadonlySet<string>) => [...approvers].filter((a) => ids2.has(a)).length;
          const count = (signers2: readonly TestSigner[]) => {
            if (committed) return;
            for (const s of signers2) approvers.add(s.id);
            committed = from(currentIds) >= m && from(nextIds) >= mp;
          };
          const expectState = (view: ProposalView) => {
            expect(view.status).toBe(committed ? 'committed' : 'pending');
            expect(view.approvals.map((a) => a.signer_id)).toEqual(sortedIds(approvers));
            expect(view.threshold).toBe(m);
            expect(view.proposed_threshold).toBe(mp);
            expect(h.view.head.version).toBe(committed ? 1 : 0);
            expect(h.commits.length).toBe(committed ? 1 : 0);
            expect(h.view.state.signerSet).toEqual(committed ? nextSet : signerSet(current, m));
          };

          // A proposal is sent with the approvals up to and including the first by a current signer.
          const firstCurrent = seq.findIndex((i) => i < n);
          if (firstCurrent < 0) {
            const before = await snapshot(h);
            await refusedWith(h.writer.submit({ payload: p, approvals: seq.map((i) => approve(all[i]!, id)) }), 'BadSignature');
            expect(await snapshot(h)).toEqual(before);
            expect(await proposalView(h, id)).toBeUndefined();
            return;
          }
          const prefix = seq.slice(0, firstCurrent + 1).map((i) => all[i]!);
          const submitted = await h.writer.submit({ payload: p, approvals: prefix.map((s) => approve(s, id)) });
          expect(submitted.created).toBe(true);
          count(prefix);
          expectState(submitted.view);
          for (const i of seq.slice(firstCurrent + 1)) {
            const view = await h.writer.approve(id, approve(all[i]!, id));
            count([all[i]!]);
            expectState(view);
          }

          const fromCurrent = seq.filter((i) => i < n).length;
          const fromNext = seq.filter((i) => nextIds.has(all[i]!.id)).length;
          expect(committed).toBe(fromCurrent >= m && fromNext >= mp);
          if (!committed) return;

          const { record: rec } = await record(h, 1);
          expect(rec.approvals.map((a) => a.signer_id)).toEqual(sortedIds(approvers));
          const descriptors = new Map([['svc-rotated', (ops[1] as { descriptor: Descriptor }).descriptor]]);
          expect(rec.state_root).toBe(specStateRoot(descriptors, nextSet));
          const fresh = await openLog(h.store, h.genesis);
          expect(fresh.state.signerSet).toEqual(nextSet);
          expect(fresh.head.hash).toBe(h.view.head.hash);

          // A removed signer's approval of the committed rotation itself is still valid (it was a
          // signer at that base): 200 committed, nothing changes.
          if (removed.length > 0) {
            const before = await snapshot(h, [id]);
            expect(await h.writer.approve(id, approve(removed[0]!, id))).toMatchObject({ status: 'committed', version: 1 });
            expect(await snapshot(h, [id])).toEqual(before);
          }

          // On the next proposal, removed signers are strangers and newcomers are signers.
          const p2 = proposal(REGISTRY, h.view.head, [put('svc-after')], { now: T0 });
          const id2 = hashOf(p2);
          if (removed.length > 0) {
            const before = await snapshot(h, [id2]);
            await refusedWith(h.writer.submit({ payload: p2, approvals: [approve(removed[0]!, id2)] }), 'BadSignature');
            expect(await snapshot(h, [id2])).toEqual(before);
          }
          const order = [...newcomers, ...next.filter((s) => !newcomers.includes(s))];
          const r2 = await h.writer.submit({ payload: p2, approvals: [approve(order[0]!, id2)] });
          expect(r2.created).toBe(true);
          expect(r2.view).toMatchObject({ status: mp === 1 ? 'committed' : 'pending', threshold: mp });
          if (mp > 1) {
            for (const s of removed) {
              const before = await snapshot(h, [id2]);
              await refusedWith(h.writer.approve(id2, approve(s, id2)), 'BadSignature');
              expect(await snapshot(h, [id2])).toEqual(before);
            }
            let view = r2.view;
            for (const s of order.slice(1, mp)) view = await h.writer.approve(id2, approve(s, id2));
            expect(view).toMatchObject({ status: 'committed', version: 2 });
          }
          expect(h.view.head.version).toBe(2);
        });
      }),
      { numRuns: 120 },
    );
  });

  it("3b. across rotations, an id names one key and a key one id for the registry's whole life", async () => {
    // SPEC §3: "A signer id kept in the new set keeps its key; a new key takes a new id"; §4: "an
    // id names one key". A removed id may come back only with its own key, and a removed key
    // only under its own id.
    const kinds = ['current', 'removed', 'fresh', 'oldIdNewKey', 'oldKeyNewId'] as const;
    const arb = fc.record({
      genesisSize: fc.integer({ min: 1, max: 3 }),
      steps: fc.array(
        fc.record({
          members: fc.array(fc.record({ kind: fc.constantFrom(...kinds), pick: fc.nat() }), { minLength: 1, maxLength: 3 }),
          thresholdSeed: fc.nat(),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ genesisSize, steps }) => {
        let nextKey = 0;
        let nextId = 0;
        const fresh = (): TestSigner => {
          const k = KEYS[nextKey++]!;
          return { id: `s${nextId++}`, publicKey: k.publicKey, secretKey: k.secretKey };
        };
        let current = Array.from({ length: genesisSize }, fresh);
        const ever: TestSigner[] = [...current];
        await withRegistry(current, current.length, async (h) => {
          for (const [i, step] of steps.entries()) {
            const removed = ever.filter((s) => !current.some((c) => c.id === s.id && c.publicKey === s.publicKey));
            const next: TestSigner[] = [];
            for (const { kind, pick } of step.members) {
              const from = (list: TestSigner[]) => list[pick % list.length]!;
              const old = kind === 'current' || kind === 'oldIdNewKey' || kind === 'oldKeyNewId' ? from(ever) : undefined;
              let s: TestSigner;
              if (kind === 'current') s = from(current);
              else if (kind === 'removed' && removed.length > 0) s = from(removed);
              else if (kind === 'oldIdNewKey') s = { ...fresh(), id: old!.id };
              else if (kind === 'oldKeyNewId') s = { ...old!, id: fresh().id };
              else s = fresh();
              if (!next.some((x) => x.id === s.id || x.publicKey === s.publicKey)) next.push(s);
            }
            const threshold = 1 + (step.thresholdSeed % next.length);
            const clash = next.some((s) => ever.some((e) => (e.id === s.id) !== (e.publicKey === s.publicKey)));
            const p = proposal(REGISTRY, h.view.head, [setSigners(signerSet(next, threshold))], { now: T0, reason: `rotation ${i}` });
            const id = hashOf(p);
            const approvals = [...current, ...next.filter((s) => !current.some((c) => c.id === s.id))].map((s) => approve(s, id));
            if (clash) {
              const before = await snapshot(h, [id]);
              await refusedWith(h.writer.submit({ payload: p, approvals }), 'BadRequest');
              expect(await snapshot(h, [id])).toEqual(before);
              continue;
            }
            const r = await h.writer.submit({ payload: p, approvals });
            expect(r.view.status).toBe('committed');
            current = next;
            for (const s of next) if (!ever.some((e) => e.id === s.id)) ever.push(s);
          }
        });
      }),
      { numRuns: 60 },
    );
  });

  it('4. a commit makes the other pending proposals on its base stale; they refuse approvals', async () => {
    const arb = fc.integer({ min: 2, max: 6 }).chain((n) =>
      fc.record({
        ids: idsArb(n),
        m: fc.integer({ min: 2, max: n }),
        others: fc.array(fc.record({ k: fc.nat(), offset: fc.nat() }), { minLength: 1, maxLength: 3 }),
        winner: fc.record({ k: fc.nat(), offset: fc.nat(), at: fc.nat(), viaResubmit: fc.boolean() }),
        late: fc.nat(),
      }),
    );
    await fc.assert(
      fc.asyncProperty(arb, async ({ ids, m, others, winner, late }) => {
        const members = signersFrom(ids, KEYS);
        const n = members.length;
        const rotated = (offset: number) => members.map((_, i) => members[(i + offset) % n]!);
        await withRegistry(members, m, async (h) => {
          const base = { ...h.view.head };
          const entries = others.map((o, i) => ({
            ...o,
            payload: proposal(REGISTRY, base, [put(`svc-other-${i}`)], { now: T0, reason: `other ${i}` }),
          }));
          const win = { ...winner, payload: proposal(REGISTRY, base, [put('svc-winner')], { now: T0, reason: 'winner' }) };
          const queue = [...entries];
          queue.splice(winner.at % (entries.length + 1), 0, win);
          // Every proposal is sent with fewer approvals than the threshold: all stay pending.
          for (const e of queue) {
            const id = hashOf(e.payload);
            const k = 1 + (e.k % (m - 1));
            const r = await h.writer.submit({
              payload: e.payload,
              approvals: rotated(e.offset)
                .slice(0, k)
                .map((s) => approve(s, id)),
            });
            expect(r).toMatchObject({ created: true, view: { status: 'pending' } });
          }
          expect(h.writer.pendingCount).toBe(queue.length);
          expect(h.view.head.version).toBe(0);

          const winId = hashOf(win.payload);
          const rest = rotated(win.offset)
            .slice(1 + (win.k % (m - 1)), m)
            .map((s) => approve(s, winId));
          let view: ProposalView;
          if (win.viaResubmit) {
            const r = await h.writer.submit({ payload: win.payload, approvals: rest });
            expect(r.created).toBe(false);
            view = r.view;
          } else {
            view = (await Promise.all(rest.map((a) => h.writer.approve(winId, a)))).at(-1)!;
          }
          expect(view).toMatchObject({ status: 'committed', version: 1 });
          expect(h.view.head.version).toBe(1);
          expect(h.writer.pendingCount).toBe(0);

          const otherIds = entries.map((e) => hashOf(e.payload));
          for (const [i, otherId] of otherIds.entries()) {
            expect((await proposalView(h, otherId))?.status).toBe('stale');
            const signer = members[late % n]!;
            const before = await snapshot(h, otherIds);
            await refusedWith(h.writer.approve(otherId, approve(signer, otherId)), 'StaleVersion');
            expect(await snapshot(h, otherIds)).toEqual(before);
            // The known payload again: 200 with its current status, whatever the head.
            const again = await h.writer.submit({ payload: entries[i]!.payload, approvals: [approve(signer, otherId)] });
            expect(again).toMatchObject({ created: false, view: { status: 'stale' } });
            expect(await snapshot(h, otherIds)).toEqual(before);
          }

          // A new proposal on the old base is refused; so is one after a restart of the writer.
          const lateP = proposal(REGISTRY, base, [put('svc-late')], { now: T0, reason: 'late' });
          const lateId = hashOf(lateP);
          await refusedWith(h.writer.submit({ payload: lateP, approvals: [approve(members[0]!, lateId)] }), 'StaleVersion');
          expect(await proposalView(h, lateId)).toBeUndefined();
          await restart(h);
          for (const otherId of otherIds) {
            expect((await proposalView(h, otherId))?.status).toBe('stale');
            await refusedWith(h.writer.approve(otherId, approve(members[late % n]!, otherId)), 'StaleVersion');
          }
          expect(h.view.head.version).toBe(1);
        });
      }),
      { numRuns: 60 },
    );
  });

  it('5. wrong signatures never commit and never advance the head', async () => {
    const garbageArb = fc.record({
      who: fc.nat(),
      how: fc.oneof(
        fc.record({ kind: fc.constant('random' as const), bytes: fc.uint8Array({ minLength: 64, maxLength: 64 }) }),
        fc.record({ kind: fc.constant('flip' as const), bit: fc.integer({ min: 0, max: 511 }) }),
        fc.record({ kind: fc.constant('malleable' as const) }),
        fc.record({ kind: fc.constant('otherPayload' as const) }),
        fc.record({ kind: fc.constant('strangerKey' as const) }),
        fc.record({ kind: fc.constant('otherMember' as const), shift: fc.nat() }),
      ),
    });
    const arb = fc.integer({ min: 1, max: 5 }).chain((n) =>
      fc.record({
        ids: idsArb(n),
        m: fc.integer({ min: 1, max: n }),
        first: fc.nat(),
        garbage: fc.array(garbageArb, { minLength: 1, maxLength: 5 }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(arb, async ({ ids, m, first, garbage }) => {
        const members = signersFrom(ids, KEYS);
        const n = members.length;
        const set = signerSet(members, m);
        await withRegistry(members, m, async (h) => {
          const p = proposal(REGISTRY, h.view.head, [put('svc-guarded')], { now: T0 });
          const id = hashOf(p);
          const bad: Approval[] = garbage.map(({ who, how }) => {
            const signer = members[who % n]!;
            const valid = signApproval(signer.secretKey, id);
            let sig: string;
            switch (how.kind) {
              case 'random':
                sig = Buffer.from(how.bytes).toString('hex');
                break;
              case 'flip': {
                const bytes = Buffer.from(valid, 'hex');
                bytes[how.bit >> 3]! ^= 1 << (how.bit & 7);
                sig = bytes.toString('hex');
                break;
              }
              case 'malleable':
                sig = malleate(valid);
                break;
              case 'otherPayload':
                sig = signApproval(signer.secretKey, hashOf({ ...p, reason: 'another proposal' }));
                break;
              case 'strangerKey':
                sig = signApproval(STRANGER_KEY.secretKey, id);
                break;
              case 'otherMember': {
                const other = members[(who + 1 + (how.shift % Math.max(1, n - 1))) % n]!;
                sig = signApproval(other.id === signer.id ? STRANGER_KEY.secretKey : other.secretKey, id);
                break;
              }
            }
            expect(sig).toMatch(/^[0-9a-f]{128}$/);
            expect(verifyApprovalStrict(signer.publicKey, id, sig)).toBe(false);
            return { signer_id: signer.id, sig };
          });
          const firstSigner = members[first % n]!;
          let refused = 0;

          // Refused with the proposal: nothing is stored, alone or beside a valid approval.
          const empty = await snapshot(h, [id]);
          await refusedWith(h.writer.submit({ payload: p, approvals: [bad[0]!] }), 'BadSignature');
          await refusedWith(h.writer.submit({ payload: p, approvals: [approve(firstSigner, id), bad[0]!] }), 'BadSignature');
          refused += 2;
          expect(await snapshot(h, [id])).toEqual(empty);
          expect(await proposalView(h, id)).toBeUndefined();

          const r = await h.writer.submit({ payload: p, approvals: [approve(firstSigner, id)] });
          expect(r.view.status).toBe(m === 1 ? 'committed' : 'pending');

          // Refused afterwards, by approve or by sending the known payload again. (A known payload
          // that is no longer pending answers 200 with its status, whatever the approvals with it,
          // SPEC §6; the invariant is that nothing changes.)
          for (const [i, a] of bad.entries()) {
            const before = await snapshot(h, [id]);
            if (i % 2 === 0) {
              await refusedWith(h.writer.approve(id, a), 'BadSignature');
              refused += 1;
            } else if (m > 1) {
              await refusedWith(h.writer.submit({ payload: p, approvals: [a] }), 'BadSignature');
              refused += 1;
            } else {
              const answer = await h.writer.submit({ payload: p, approvals: [a] }).catch((e: unknown) => e);
              if (answer instanceof RegistryError) {
                expect(answer.code).toBe('BadSignature');
                refused += 1;
              } else {
                expect(answer).toMatchObject({ created: false, view: { status: 'committed', version: 1 } });
              }
            }
            expect(await snapshot(h, [id])).toEqual(before);
          }
          expect(h.view.head.version).toBe(m === 1 ? 1 : 0);
          // None of them is a signed claim: logged and counted, never audited (SPEC §9).
          expect(await refusedAuditCount(h)).toBe(0);
          expect(h.writer.refusals).toEqual({ audited: 0, unaudited: refused });

          // The valid approvals still reach quorum; only valid signatures were kept.
          const others = members.filter((s) => s !== firstSigner);
          let view = r.view;
          for (const s of others.slice(0, m - 1)) view = await h.writer.approve(id, approve(s, id));
          expect(view).toMatchObject({ status: 'committed', version: 1 });
          const keyOf = new Map(set.signers.map((s) => [s.id, s.public_key]));
          const { record: rec } = await record(h, 1);
          expect(rec.approvals.length).toBe(m);
          for (const a of [...rec.approvals, ...(await h.store.proposal(id))!.approvals]) {
            expect(verifyApprovalStrict(keyOf.get(a.signer_id)!, id, a.sig)).toBe(true);
          }
        });
      }),
      { numRuns: 80 },
    );
  });
});

/** The same signature with S replaced by S + L: the same point equation, a non-canonical S
 * (RFC 8032 strict verification refuses it). */
function malleate(sigHex: string): string {
  const L = (1n << 252n) + 27742317777372353535851937790883648493n;
  const bytes = Buffer.from(sigHex, 'hex');
  let s = 0n;
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(bytes[32 + i]!);
  s += L;
  for (let i = 0; i < 32; i++) {
    bytes[32 + i] = Number(s & 0xffn);
    s >>= 8n;
  }
  return bytes.toString('hex');
}
