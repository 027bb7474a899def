// The single writer. Every proposal and approval passes through one queue; a step asks the
// pure core whether what it was sent is legal, writes everything it changes in one store
// transaction (through the audited log), and only then moves the in-memory head. The approval
// that reaches quorum commits in the same step.
import { EventEmitter } from 'node:events';
import {
  judgeApprovals,
  judgeNewProposal,
  newApprovals,
  refuseAll,
  refuseSettled,
  refusalEvents,
  type ApprovalContext,
  type Verdict,
} from '../core/approvals.js';
import type { AuditFields } from '../core/audit.js';
import { ApprovalVerifier } from '../core/crypto.js';
import { canonicalBytes, canonicalJson, formatTime, hashBytes, utf8Bytes, type Digest32 } from '../core/encoding.js';
import { RegistryError } from '../core/errors.js';
import { checkProposalHeader, foreignRegistry, isExpired, setSignersOf, settledBy } from '../core/proposal.js';
import { buildCommitRecord } from '../core/records.js';
import type { Approval, CommitRecord, Descriptor, ProposalPayload, ProposalSubmission, SignerSet } from '../core/schemas.js';
import { hasQuorum, type Electorate } from '../core/signers.js';
import { planOps, type Delta } from '../core/state.js';
import type { HeadView } from '../state/head-view.js';
import { summaryView, viewOf, type ProposalView } from '../state/proposal-view.js';
import type { ProposalSummary, StatusChange, WriteBatch } from '../store/store.js';
import type { AuditedLog, PipelineLog } from './audited-log.js';

export interface CommitEvent {
  record: CommitRecord;
  hash: string;
  changed: readonly string[];
  /** Each changed descriptor before and after the commit (absent when it did not exist), in
   * the order of `changed`: a filtered subscription matches either side. */
  descriptors: readonly ChangedDescriptor[];
}

export interface ChangedDescriptor {
  id: string;
  before: Descriptor | undefined;
  after: Descriptor | undefined;
}

/** What the writer keeps of a pending proposal; the payload stays in the store until commit. */
interface Pending {
  id: string;
  expiresAt: number;
  electorate: Electorate;
  /** signer_id → sig, in arrival order. */
  approvals: Map<string, string>;
}

export interface WriterOptions {
  log: AuditedLog;
  view: HeadView;
  registryId: string;
  now?: () => number;
  verifier?: ApprovalVerifier;
  /** Where a failing commit listener is reported. */
  logger?: PipelineLog;
  /** Pending proposals beyond this are refused 503: each holds a row and a slot in memory. */
  maxPending?: number;
}

export const DEFAULT_MAX_PENDING = 1000;
const PAGE = 1000;

export class Writer extends EventEmitter<{ commit: [CommitEvent] }> {
  private readonly log: AuditedLog;
  private readonly view: HeadView;
  private readonly registryId: string;
  private readonly now: () => number;
  private readonly verifier: ApprovalVerifier;
  private readonly digest: Digest32;
  private readonly logger: PipelineLog | undefined;
  private readonly maxPending: number;
  private readonly pending = new Map<string, Pending>();
  private tail: Promise<unknown> = Promise.resolve();
  /** Refused approvals, by whether they were audited (signed claims) or only logged. */
  readonly refusals = { audited: 0, unaudited: 0 };

  constructor(options: WriterOptions) {
    super();
    this.log = options.log;
    this.view = options.view;
    this.registryId = options.registryId;
    this.now = options.now ?? Date.now;
    this.verifier = options.verifier ?? new ApprovalVerifier();
    this.digest = options.view.state.digest;
    this.logger = options.logger;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  }

  /** Loads the audit head and the pending proposals; settles those that can no longer commit. */
  async open(): Promise<void> {
    await this.log.open();
    const offBase: string[] = [];
    for (let after = 0; ;) {
      const page = await this.log.store.proposals({ status: 'pending', afterSeq: after, limit: PAGE });
      for (const p of page) {
        if (p.baseVersion === this.view.head.version) this.pending.set(p.id, await this.toPending(p));
        else offBase.push(p.id);
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.seq;
    }
    // Defensive: every commit settles the other pending proposals in its own transaction, so
    // a pending proposal off the head means the log was written by something else.
    if (offBase.length) {
      const at = formatTime(this.now());
      await this.log.write(
        { statusChanges: offBase.map((id) => ({ proposalId: id, status: 'stale' })) },
        offBase.map((id) => ({ at, kind: 'proposal_stale', proposal_id: id })),
      );
    }
    await this.run(() => this.expireDue());
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** POST /registry/proposals. */
  submit(body: ProposalSubmission): Promise<{ created: boolean; view: ProposalView }> {
    return this.run(async () => {
      const id = hashBytes(canonicalBytes(body.payload), this.digest);
      const known = this.pending.get(id);
      // A known payload answers with its current status; an expired one is settled first.
      if (known && !isExpired(known.expiresAt, this.now())) return { created: false, view: await this.addApprovals(known, body.approvals) };
      if (known) await this.expireDue();
      const stored = await this.log.read((s) => s.proposal(id));
      if (stored) {
        // Settled: the approvals change nothing, but a bad one is refused as anywhere else.
        const ctx = this.context(id, this.electorateAt(stored.baseVersion, setSignersOf(body.payload)));
        await this.enforce(ctx, judgeApprovals(ctx, body.approvals));
        return { created: false, view: summaryView(stored, this.view.state) };
      }
      return { created: true, view: await this.accept(id, body) };
    });
  }

  /** POST /registry/proposals/{id}/approvals. */
  approve(id: string, approval: Approval): Promise<ProposalView> {
    return this.run(async () => {
      const pending = this.pending.get(id);
      if (pending) return this.addApprovals(pending, [approval]);
      const stored = await this.log.read((s) => s.proposal(id));
      if (!stored) throw new RegistryError('NotFound', `no proposal ${id}`);
      const payload = JSON.parse(stored.payloadText) as ProposalPayload;
      const ctx = this.context(id, this.electorateAt(stored.baseVersion, setSignersOf(payload)));
      await this.enforce(ctx, judgeApprovals(ctx, [approval]));
      if (stored.status === 'stale' || stored.status === 'expired') await this.enforce(ctx, refuseSettled(id, [approval], stored.status));
      return summaryView(stored, this.view.state);
    });
  }

  /** Marks every pending proposal past its expiry as expired. Runs in the queue. */
  expireNow(): Promise<void> {
    return this.run(() => this.expireDue());
  }

  /** Resolves when every step queued so far has finished. */
  drain(): Promise<void> {
    return this.tail.then(() => undefined);
  }

  // -- steps, each running inside the queue --------------------------------------------------

  private run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.tail.then(step);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async accept(id: string, body: ProposalSubmission): Promise<ProposalView> {
    const { payload, approvals } = body;
    const head = this.view.head;
    const electorate: Electorate = { current: this.view.state.signerSet, proposed: setSignersOf(payload) };
    const ctx = this.context(id, electorate);
    const foreign = foreignRegistry(payload, this.registryId);
    if (foreign) await this.enforce(ctx, refuseAll(ctx, approvals, foreign.message, foreign));
    const expiresAt = checkProposalHeader(payload, { registryId: this.registryId, head, now: this.now() });
    // Signatures before anything costly (planning up to 10,000 ops).
    await this.enforce(ctx, judgeNewProposal(ctx, approvals));
    if (this.pending.size >= this.maxPending) {
      throw new RegistryError('Unavailable', `${this.pending.size} proposals are pending; approve or let some expire first`, {
        retryAfter: 60,
      });
    }
    const delta = planOps(this.view.state, payload.ops, head.version + 1);
    const pending: Pending = { id, expiresAt, electorate, approvals: newApprovals(new Map(), approvals) };
    const receivedAt = formatTime(this.now());
    const batch: WriteBatch = {
      proposal: {
        id,
        payloadText: canonicalJson(payload),
        baseVersion: payload.base_version,
        createdAt: payload.created_at,
        expiresAt,
        proposedThreshold: electorate.proposed?.threshold ?? null,
        receivedAt,
      },
      approvals: [...pending.approvals].map(([signer_id, sig]) => ({ proposalId: id, signer_id, sig, receivedAt })),
      audit: [],
    };
    const events: AuditFields[] = [
      { at: receivedAt, kind: 'proposal_received', proposal_id: id },
      ...[...pending.approvals.keys()].map((signer_id) => ({
        at: receivedAt,
        kind: 'approval_accepted' as const,
        proposal_id: id,
        signer_id,
      })),
    ];
    return this.recordOrCommit(pending, batch, events, { payload, delta });
  }

  private async addApprovals(pending: Pending, approvals: readonly Approval[]): Promise<ProposalView> {
    const ctx = this.context(pending.id, pending.electorate);
    await this.enforce(ctx, judgeApprovals(ctx, approvals));
    if (isExpired(pending.expiresAt, this.now())) {
      await this.expireDue();
      await this.enforce(ctx, refuseSettled(pending.id, approvals, 'expired'));
    }
    const fresh = newApprovals(pending.approvals, approvals);
    if (fresh.size === 0) return this.pendingView(pending);
    for (const [signer_id, sig] of fresh) pending.approvals.set(signer_id, sig);
    const receivedAt = formatTime(this.now());
    const batch: WriteBatch = {
      approvals: [...fresh].map(([signer_id, sig]) => ({ proposalId: pending.id, signer_id, sig, receivedAt })),
      audit: [],
    };
    const events: AuditFields[] = [...fresh.keys()].map((signer_id) => ({
      at: receivedAt,
      kind: 'approval_accepted',
      proposal_id: pending.id,
      signer_id,
    }));
    try {
      return await this.recordOrCommit(pending, batch, events);
    } catch (e) {
      for (const signer of fresh.keys()) pending.approvals.delete(signer);
      throw e;
    }
  }

  /** A step that gave `pending` new approvals: it commits when they reach quorum, and is
   * recorded as it is otherwise. `planned` is passed when the proposal was planned in this step. */
  private recordOrCommit(
    pending: Pending,
    batch: WriteBatch,
    events: AuditFields[],
    planned?: { payload: ProposalPayload; delta: Delta },
  ): Promise<ProposalView> {
    return hasQuorum(pending.electorate, new Set(pending.approvals.keys()))
      ? this.commit(pending, batch, events, planned)
      : this.record(pending, batch, events);
  }

  /** Writes the proposal or its new approvals; it stays pending. */
  private async record(pending: Pending, batch: WriteBatch, events: AuditFields[]): Promise<ProposalView> {
    await this.log.write(batch, events);
    this.pending.set(pending.id, pending);
    return this.pendingView(pending);
  }

  /** Appends the commit record with the step's own writes, settles every other pending
   * proposal, then moves the head and tells the listeners. */
  private async commit(
    pending: Pending,
    batch: WriteBatch,
    events: AuditFields[],
    planned?: { payload: ProposalPayload; delta: Delta },
  ): Promise<ProposalView> {
    const head = this.view.head;
    const version = head.version + 1;
    const payload = planned?.payload ?? (await this.payloadOf(pending.id));
    const delta = planned?.delta ?? planOps(this.view.state, payload.ops, version);
    const now = this.now();
    const committedAt = formatTime(now);
    const record = buildCommitRecord({
      registryId: this.registryId,
      version,
      prevHash: head.hash,
      payload,
      payloadHash: pending.id,
      approvals: [...pending.approvals].map(([signer_id, sig]) => ({ signer_id, sig })),
      stateRoot: this.view.state.rootAfter(delta),
      committedAt,
    });
    const text = canonicalJson(record);
    const hash = hashBytes(utf8Bytes(text), this.digest);
    const settled = [...this.pending.values()]
      .filter((p) => p.id !== pending.id)
      .map((p) => ({ id: p.id, status: settledBy(p.expiresAt, now) }));
    const statusChanges: StatusChange[] = [
      { proposalId: pending.id, status: 'committed', version },
      ...settled.map((p) => ({ proposalId: p.id, status: p.status })),
    ];
    await this.log.write({ ...batch, commit: { version, hash, text, payloadHash: pending.id }, statusChanges }, [
      ...events,
      { at: committedAt, kind: 'committed', proposal_id: pending.id, version },
      ...settled.map((p) => ({
        at: committedAt,
        kind: p.status === 'stale' ? ('proposal_stale' as const) : ('proposal_expired' as const),
        proposal_id: p.id,
      })),
    ]);
    const after = new Map(delta.puts.map((e) => [e.descriptor.id, e.descriptor]));
    const descriptors = delta.changed.map((id) => ({ id, before: this.view.index.get(id)?.descriptor, after: after.get(id) }));
    this.view.advance(record, hash, text, delta);
    this.pending.clear();
    try {
      this.emit('commit', { record, hash, changed: delta.changed, descriptors });
    } catch (e) {
      // The commit is durable and acknowledged; a failing listener must not turn it into an error.
      this.logger?.error({ err: e, version }, 'a commit listener failed');
    }
    return { ...this.pendingView(pending), status: 'committed', version };
  }

  private async expireDue(): Promise<void> {
    const now = this.now();
    const due = [...this.pending.values()].filter((p) => isExpired(p.expiresAt, now));
    if (!due.length) return;
    const at = formatTime(now);
    await this.log.write(
      { statusChanges: due.map((p) => ({ proposalId: p.id, status: 'expired' })) },
      due.map((p) => ({ at, kind: 'proposal_expired', proposal_id: p.id })),
    );
    for (const p of due) this.pending.delete(p.id);
  }

  /** Carries out the core's verdict on a request's approvals: audits the refusals that are
   * signed claims, counts the rest, and throws the verdict's error. */
  private async enforce(ctx: ApprovalContext, verdict: Verdict): Promise<void> {
    if (verdict.ok) return;
    const events = refusalEvents(ctx.proposalId, verdict.refusals, formatTime(this.now()));
    this.refusals.audited += verdict.refusals.filter((r) => r.signed).length;
    this.refusals.unaudited += verdict.refusals.filter((r) => !r.signed).length;
    // Who was refused and why, never the signatures themselves.
    this.logger?.info(
      {
        proposal_id: ctx.proposalId,
        code: verdict.error.code,
        refusals: verdict.refusals.map((r) => ({ signer_id: r.signer_id, reason: r.reason, audited: r.signed })),
      },
      'approvals refused',
    );
    await this.log.audit(events);
    throw verdict.error;
  }

  // -- helpers -------------------------------------------------------------------------------

  private context(proposalId: string, electorate: Electorate): ApprovalContext {
    return { proposalId, electorate, history: this.view.state.signerSets, verifier: this.verifier };
  }

  private async payloadOf(id: string): Promise<ProposalPayload> {
    const stored = await this.log.read((s) => s.proposal(id));
    if (!stored) throw new Error(`pending proposal ${id} is missing from the store`);
    return JSON.parse(stored.payloadText) as ProposalPayload;
  }

  private async toPending(p: ProposalSummary): Promise<Pending> {
    const proposed = p.proposedThreshold === null ? undefined : setSignersOf(await this.payloadOf(p.id));
    return {
      id: p.id,
      expiresAt: p.expiresAt,
      electorate: this.electorateAt(p.baseVersion, proposed),
      approvals: new Map(p.approvals.map((a) => [a.signer_id, a.sig])),
    };
  }

  private electorateAt(baseVersion: number, proposed: SignerSet | undefined): Electorate {
    return { current: this.view.state.signerSetAt(baseVersion), proposed };
  }

  private pendingView(p: Pending): ProposalView {
    return viewOf(p.id, 'pending', p.approvals.keys(), p.electorate.current.threshold, p.electorate.proposed?.threshold);
  }
}
