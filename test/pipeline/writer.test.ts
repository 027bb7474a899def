// The single writer's edges that need a clock or a failing store: the real Writer over a real
// in-memory SqliteStore, with a clock the test moves.
import { describe, expect, it } from 'vitest';
import { hashOf } from '../../src/core/encoding.js';
import { RegistryError } from '../../src/core/errors.js';
import { checkGenesisRecord } from '../../src/core/records.js';
import type { AuditEvent } from '../../src/core/schemas.js';
import { AuditedLog } from '../../src/pipeline/audited-log.js';
import { Writer, type WriterOptions } from '../../src/pipeline/writer.js';
import { fullView } from '../../src/state/proposal-view.js';
import { openLog } from '../../src/state/replay.js';
import { SqliteStore } from '../../src/store/sqlite-store.js';
import type { Store, WriteBatch } from '../../src/store/store.js';
import { approve, genesisRecord, proposal, put, setSigners, signers, signerSet } from '../helpers/fixtures.js';

// Fixtures stamp proposals with the real clock, so the writer's clock starts there too.
const T0 = Date.now();
const keys = signers('alice', 'bob', 'carol');

/** The real store, with one fault injected on demand: the next write that commits throws. */
class FailingCommitStore extends SqliteStore {
  failNextCommit = false;
  override async write(batch: WriteBatch): Promise<void> {
    if (batch.commit && this.failNextCommit) {
      this.failNextCommit = false;
      throw new Error('disk I/O error (injected)');
    }
    return super.write(batch);
  }
}

async function rig(options: Partial<WriterOptions> = {}, store: Store = new SqliteStore({ path: ':memory:' })) {
  let now = T0;
  const view = await openLog(store, checkGenesisRecord(genesisRecord('w', keys, 2, T0)));
  const errors: string[] = [];
  const logger = { error: (_f: object, m: string) => errors.push(m), info: () => undefined };
  const log = new AuditedLog(store, logger);
  const writer = new Writer({ log, view, registryId: 'w', now: () => now, logger, ...options });
  await writer.open();
  const proposalView = async (id: string) => {
    const stored = await store.proposal(id);
    return stored && fullView(stored, view.state);
  };
  return { store, view, writer, log, errors, proposalView, setNow: (t: number) => (now = t) };
}

const code = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof RegistryError ? e.code : String(e)),
  );

describe('the writer', () => {
  it('settles a pending proposal past its expiry as expired, not stale, when another commits first', async () => {
    const { view, writer, store, setNow, proposalView } = await rig();
    const short = proposal('w', view.head, [put('a')], { now: T0, ttlMs: 1000 });
    const long = proposal('w', view.head, [put('b')], { now: T0 });
    await writer.submit({ payload: short, approvals: [approve(keys[0]!, hashOf(short))] });
    await writer.submit({ payload: long, approvals: [approve(keys[0]!, hashOf(long))] });
    setNow(T0 + 2000); // no sweep has run yet
    expect((await writer.approve(hashOf(long), approve(keys[1]!, hashOf(long)))).status).toBe('committed');
    expect((await proposalView(hashOf(short)))?.status).toBe('expired');
    const events = (await store.audit(1, 100)).map((t) => JSON.parse(t) as AuditEvent);
    expect(events.filter((e) => e.kind === 'proposal_expired').map((e) => e.proposal_id)).toEqual([hashOf(short)]);
  });

  it('checks a late signature before telling it the proposal expired', async () => {
    const { view, writer, setNow, proposalView } = await rig();
    const p = proposal('w', view.head, [put('a')], { now: T0, ttlMs: 1000 });
    const id = hashOf(p);
    await writer.submit({ payload: p, approvals: [approve(keys[0]!, id)] });
    setNow(T0 + 5000);
    expect(await code(writer.approve(id, { signer_id: 'bob', sig: approve(keys[0]!, id).sig }))).toBe('BadSignature');
    expect(await code(writer.approve(id, approve(keys[1]!, id)))).toBe('Gone');
    expect((await proposalView(id))?.status).toBe('expired');
  });

  it('audits valid approvals refused because the proposal is stale or expired', async () => {
    const { view, writer, store, setNow } = await rig();
    const a = proposal('w', view.head, [put('a')], { now: T0, ttlMs: 1000 });
    await writer.submit({ payload: a, approvals: [approve(keys[0]!, hashOf(a))] });
    setNow(T0 + 5000);
    expect(await code(writer.approve(hashOf(a), approve(keys[2]!, hashOf(a))))).toBe('Gone');
    const c = proposal('w', view.head, [put('c')], { now: T0 + 5000 });
    const d = proposal('w', view.head, [put('d')], { now: T0 + 5000 });
    await writer.submit({ payload: c, approvals: [approve(keys[0]!, hashOf(c))] });
    await writer.submit({ payload: d, approvals: [approve(keys[0]!, hashOf(d)), approve(keys[1]!, hashOf(d))] });
    expect(await code(writer.approve(hashOf(c), approve(keys[2]!, hashOf(c))))).toBe('StaleVersion');
    const refused = (await store.audit(1, 100)).map((t) => JSON.parse(t) as AuditEvent).filter((e) => e.kind === 'approval_refused');
    expect(refused.map((e) => [e.proposal_id, e.signer_id, e.reason])).toEqual([
      [hashOf(a), 'carol', 'the proposal has expired'],
      [hashOf(c), 'carol', 'the proposal is stale'],
    ]);
  });

  it('audits no approval by an id the registry never had, nor one whose signature does not verify (SPEC §9)', async () => {
    const { view, writer, store } = await rig();
    const p = proposal('w', view.head, [put('a')]);
    const strangers = signers(...Array.from({ length: 50 }, (_, i) => `nobody-${i}`));
    const before = await store.audit(1, 1000);
    expect(await code(writer.submit({ payload: p, approvals: strangers.map((s) => approve(s, hashOf(p))) }))).toBe('BadSignature');
    // A current signer's name on a signature by another key, beside a good approval.
    const junk = { signer_id: 'bob', sig: approve(keys[0]!, hashOf(p)).sig };
    expect(await code(writer.submit({ payload: p, approvals: [approve(keys[0]!, hashOf(p)), junk] }))).toBe('BadSignature');
    expect(await code(writer.approve(hashOf(p), junk))).toBe('NotFound');
    expect(await store.audit(1, 1000)).toEqual(before);
    expect(writer.refusals).toEqual({ audited: 0, unaudited: 51 });
  });

  it('audits a removed signer whose approval verifies under the key it had (SPEC §9)', async () => {
    const { view, writer, store } = await rig();
    const rotation = proposal('w', view.head, [setSigners(signerSet([keys[0]!, keys[1]!], 2))]);
    await writer.submit({ payload: rotation, approvals: [approve(keys[0]!, hashOf(rotation)), approve(keys[1]!, hashOf(rotation))] });
    expect(view.head.version).toBe(1);
    const p = proposal('w', view.head, [put('a')]);
    const before = (await store.audit(1, 1000)).length;
    // carol alone, removed: no current signer approved, but her signature is a signed claim.
    expect(await code(writer.submit({ payload: p, approvals: [approve(keys[2]!, hashOf(p))] }))).toBe('BadSignature');
    // carol beside alice: not a signer for this proposal, and audited as herself.
    expect(await code(writer.submit({ payload: p, approvals: [approve(keys[0]!, hashOf(p)), approve(keys[2]!, hashOf(p))] }))).toBe(
      'BadSignature',
    );
    // carol's name on a signature by another key proves nothing: not audited.
    expect(
      await code(
        writer.submit({
          payload: p,
          approvals: [approve(keys[0]!, hashOf(p)), { signer_id: 'carol', sig: approve(keys[1]!, hashOf(p)).sig }],
        }),
      ),
    ).toBe('BadSignature');
    const added = (await store.audit(1, 1000)).slice(before).map((t) => JSON.parse(t) as AuditEvent);
    expect(added.map((e) => [e.kind, e.signer_id, e.reason])).toEqual([
      ['approval_refused', 'carol', 'a proposal needs at least one approval by a signer of the current set'],
      ['approval_refused', 'carol', 'not a signer of this registry for this proposal'],
    ]);
  });

  it('audits a replayed signed claim once: sending it again does not grow the audit log', async () => {
    const { view, writer, store } = await rig();
    const rotation = proposal('w', view.head, [setSigners(signerSet([keys[0]!, keys[1]!], 2))]);
    await writer.submit({ payload: rotation, approvals: [approve(keys[0]!, hashOf(rotation)), approve(keys[1]!, hashOf(rotation))] });
    const p = proposal('w', view.head, [put('a')]);
    const before = (await store.audit(1, 1000)).length;
    const replayed = { payload: p, approvals: [approve(keys[2]!, hashOf(p))] };
    for (let i = 0; i < 5; i++) expect(await code(writer.submit(replayed))).toBe('BadSignature');
    const added = (await store.audit(1, 1000)).slice(before).map((t) => JSON.parse(t) as AuditEvent);
    expect(added.map((e) => [e.kind, e.signer_id])).toEqual([['approval_refused', 'carol']]);
    expect(writer.refusals).toMatchObject({ audited: 1, unaudited: 4 });
  });

  it('audits a signed approval of a proposal for another registry, and no unsigned one (SPEC §9)', async () => {
    const { view, writer, store } = await rig();
    const p = proposal('other', view.head, [put('a')]);
    const before = (await store.audit(1, 1000)).length;
    expect(
      await code(
        writer.submit({
          payload: p,
          approvals: [approve(keys[0]!, hashOf(p)), { signer_id: 'bob', sig: approve(keys[0]!, hashOf(p)).sig }],
        }),
      ),
    ).toBe('BadSignature');
    const added = (await store.audit(1, 1000)).slice(before).map((t) => JSON.parse(t) as AuditEvent);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ kind: 'approval_refused', proposal_id: hashOf(p), signer_id: 'alice' });
    expect(added[0]!.reason).toMatch(/registry other/);
  });

  it('refuses new proposals beyond the pending limit with 503', async () => {
    const { view, writer } = await rig({ maxPending: 2 });
    for (const id of ['a', 'b']) {
      const p = proposal('w', view.head, [put(id)]);
      await writer.submit({ payload: p, approvals: [approve(keys[0]!, hashOf(p))] });
    }
    const p = proposal('w', view.head, [put('c')]);
    expect(await code(writer.submit({ payload: p, approvals: [approve(keys[0]!, hashOf(p))] }))).toBe('Unavailable');
    expect(writer.pendingCount).toBe(2);
  });

  it('counts settled proposals whose payloads are still stored against the pending limit, until they are pruned', async () => {
    const { view, writer, store, setNow } = await rig({ maxPending: 2 });
    const loser = proposal('w', view.head, [put('loser')], { now: T0, ttlMs: 1000 });
    await writer.submit({ payload: loser, approvals: [approve(keys[0]!, hashOf(loser))] });
    const winner = proposal('w', view.head, [put('winner')]);
    await writer.submit({ payload: winner, approvals: [approve(keys[0]!, hashOf(winner)), approve(keys[1]!, hashOf(winner))] });
    // The loser went stale: one settled payload, no pending proposal.
    expect([writer.pendingCount, writer.settledUnprunedCount]).toEqual([0, 1]);
    const a = proposal('w', view.head, [put('a')]);
    await writer.submit({ payload: a, approvals: [approve(keys[0]!, hashOf(a))] });
    const b = proposal('w', view.head, [put('b')]);
    const refused = writer.submit({ payload: b, approvals: [approve(keys[0]!, hashOf(b))] });
    await expect(refused).rejects.toThrow(/1 proposals are pending and 1 settled ones still hold their payloads \(the cap is 2\)/);
    // Pruned (as retention does it, settledPayloadTtlMs after it settled), it no longer counts.
    setNow(T0 + 60_000);
    writer.settledPruned(await store.pruneSettledProposals(T0 + 60_000, 100));
    expect(writer.settledUnprunedCount).toBe(0);
    expect(await code(writer.submit({ payload: b, approvals: [approve(keys[0]!, hashOf(b))] }))).toBe('ok');
    // A restart counts what is still unpruned from the store.
    expect(await store.unprunedSettledCount()).toBe(0);
  });

  it('acknowledges a durable commit even when a commit listener throws', async () => {
    const { view, writer, errors } = await rig();
    writer.on('commit', () => {
      throw new Error('listener bug');
    });
    const p = proposal('w', view.head, [put('a')]);
    const r = await writer.submit({ payload: p, approvals: [approve(keys[0]!, hashOf(p)), approve(keys[1]!, hashOf(p))] });
    expect(r.view).toMatchObject({ status: 'committed', version: 1 });
    expect(view.head.version).toBe(1);
    expect(errors).toEqual(['a commit listener failed']);
  });

  it('answers 503 and changes nothing in memory when the store cannot be written', async () => {
    const { view, writer, store, errors, log } = await rig();
    const p = proposal('w', view.head, [put('a')]);
    await writer.submit({ payload: p, approvals: [approve(keys[0]!, hashOf(p))] });
    const before = { head: view.head, pending: writer.pendingCount };
    await store.close(); // a real failure: every write now throws
    expect(await code(writer.approve(hashOf(p), approve(keys[1]!, hashOf(p))))).toBe('Unavailable');
    expect({ head: view.head, pending: writer.pendingCount }).toEqual(before);
    expect(log.storeProblem).toMatch(/not open/i);
    expect(errors).toEqual(['the log could not be read']);
    const q = proposal('w', view.head, [put('b')]);
    expect(await code(writer.submit({ payload: q, approvals: [approve(keys[0]!, hashOf(q))] }))).toBe('Unavailable');
  });

  it('leaves everything as it was when the commit itself cannot be written, and commits on retry', async () => {
    const store = new FailingCommitStore({ path: ':memory:' });
    const { view, writer, proposalView, log } = await rig({}, store);
    const p = proposal('w', view.head, [put('a')]);
    const id = hashOf(p);
    await writer.submit({ payload: p, approvals: [approve(keys[0]!, id)] });
    const auditBefore = await store.audit(1, 100);
    store.failNextCommit = true;
    expect(await code(writer.approve(id, approve(keys[1]!, id)))).toBe('Unavailable');
    expect(view.head.version).toBe(0);
    expect(await store.commit(1)).toBeUndefined();
    expect(await store.audit(1, 100)).toEqual(auditBefore);
    expect((await proposalView(id))?.approvals).toEqual([{ signer_id: 'alice' }]);
    expect(log.storeProblem).toMatch(/injected/);
    expect((await writer.approve(id, approve(keys[1]!, id))).status).toBe('committed');
    expect(log.storeProblem).toBeUndefined();
    expect(view.head.version).toBe(1);
  });

  it('checks no proposed signer set before a current signer has signed the proposal', async () => {
    const { view, writer, store } = await rig();
    const newcomers = signers(...Array.from({ length: 64 }, (_, i) => `new-${String(i).padStart(2, '0')}`));
    const p = proposal('w', view.head, [setSigners(signerSet(newcomers, 1))]);
    const id = hashOf(p);
    const before = await store.audit(1, 1000);
    // Only the proposed signers approve: refused, and nothing audited (their keys are only
    // the sender's say-so, never decoded).
    expect(await code(writer.submit({ payload: p, approvals: newcomers.map((s) => approve(s, id)) }))).toBe('BadSignature');
    // A junk signature under a current signer's name: refused before any proposed key is looked at.
    expect(
      await code(
        writer.submit({
          payload: p,
          approvals: [{ signer_id: 'alice', sig: approve(keys[1]!, id).sig }, ...newcomers.map((s) => approve(s, id))],
        }),
      ),
    ).toBe('BadSignature');
    expect(await store.audit(1, 1000)).toEqual(before);
    // Once alice has vouched for it, the proposed signers are signers of this proposal.
    const r = await writer.submit({ payload: p, approvals: [approve(keys[0]!, id), ...newcomers.slice(0, 1).map((s) => approve(s, id))] });
    expect(r.view).toMatchObject({ status: 'pending', proposed_threshold: 1 });
  });

  it('audits a late approval by a proposed signer of a stale rotation under its own id', async () => {
    const { view, writer, store } = await rig();
    const [dave] = signers('dave');
    const rotation = proposal('w', view.head, [setSigners(signerSet([keys[0]!, keys[1]!, dave!], 2))]);
    const other = proposal('w', view.head, [put('x')]);
    await writer.submit({ payload: rotation, approvals: [approve(keys[0]!, hashOf(rotation))] });
    await writer.submit({ payload: other, approvals: [approve(keys[0]!, hashOf(other)), approve(keys[1]!, hashOf(other))] });
    expect(await code(writer.approve(hashOf(rotation), approve(dave!, hashOf(rotation))))).toBe('StaleVersion');
    const last = JSON.parse((await store.audit(1, 1000)).pop()!) as AuditEvent;
    expect(last).toMatchObject({ kind: 'approval_refused', signer_id: 'dave', reason: 'the proposal is stale' });
  });
});

describe('the audited log over a shared store', () => {
  /** The real store, whose next write never answers: what a query lost with a reset connection
   * does in the PostgreSQL client (test/helpers/pg-auto-failover.ts tells the story). */
  class HangingStore extends SqliteStore {
    hangNext = false;
    override write(batch: WriteBatch): Promise<void> {
      if (!this.hangNext) return super.write(batch);
      this.hangNext = false;
      return new Promise<void>(() => undefined);
    }
  }

  it('gives up on a store access that never answers: 503, and the next write goes through', async () => {
    const store = new HangingStore({ path: ':memory:' });
    await openLog(store, checkGenesisRecord(genesisRecord('w', keys, 2, T0)));
    const log = new AuditedLog(store, undefined, { timeoutMs: 50 });
    await log.open();
    store.hangNext = true;
    const error = await log.audit([{ at: '2026-01-01T00:00:00Z', kind: 'thawed' }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe('Unavailable');
    expect(log.storeProblem).toBe('the store did not answer within 50 ms');
    await log.audit([{ at: '2026-01-01T00:00:00Z', kind: 'thawed' }]);
    expect(log.storeProblem).toBeUndefined();
    expect((await store.auditHead())?.seq).toBe(1);
  });
});
