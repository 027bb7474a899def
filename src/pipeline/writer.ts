// The single writer. Every proposal and approval passes through one queue; a step verifies,
// decides with the pure core, writes everything it changes in one store transaction, and only
// then moves the in-memory head. The approval that reaches quorum commits in the same step.
import { EventEmitter } from 'node:events';
import { chainAuditEvent, type AuditFields, type AuditHead, type ChainedEvent } from '../core/audit.js';
import { ApprovalVerifier } from '../core/crypto.js';
import { canonicalBytes, canonicalJson, formatTime, hashBytes, utf8Bytes, type Digest32 } from '../core/encoding.js';
import { RegistryError } from '../core/errors.js';
import { checkProposalHeader, isExpired } from '../core/proposal.js';
import { buildCommitRecord } from '../core/records.js';
import type { Approval, CommitRecord, ProposalPayload, ProposalStatus, ProposalSubmission, SignerSet } from '../core/schemas.js';
import { hasQuorum, isCurrentSigner, keyOf, type Electorate } from '../core/signers.js';
import { planOps, type Delta } from '../core/state.js';
import type { HeadView } from '../state/head-view.js';
import { LogIntegrityError } from '../state/replay.js';
import type { ProposalSummary, StatusChange, Store, WriteBatch } from '../store/store.js';

export interface ProposalView {
  proposal_id: string;
  status: ProposalStatus;
  approvals: { signer_id: string }[];
  threshold: number;
  proposed_threshold?: number;
  version?: number;
}

export interface CommitEvent {
  record: CommitRecord;
  hash: string;
  changed: readonly string[];
}

/** What the writer keeps of a pending proposal; the payload stays in the store until commit. */
interface Pending {
  id: string;
  expiresAt: number;
  electorate: Electorate;
  /** signer_id → sig, in arrival order. */
  approvals: Map<string, string>;
}

interface Refusal {
  signer_id: string;
  reason: string;
}

/** Where the writer reports what no request can be told: failed store writes, failing listeners. */
export interface WriterLog {
  error(fields: object, message: string): void;
}

export interface WriterOptions {
  store: Store;
  view: HeadView;
  registryId: string;
  now?: () => number;
  verifier?: ApprovalVerifier;
  log?: WriterLog;
  /** Pending proposals beyond this are refused 503: each holds a row and a slot in memory. */
  maxPending?: number;
}

export const DEFAULT_MAX_PENDING = 1000;

const setSignersOf = (payload: ProposalPayload): SignerSet | undefined =>
  payload.ops.find((op) => op.op === 'set_signers')?.signer_set;

export class Writer extends EventEmitter<{ commit: [CommitEvent] }> {
  private readonly store: Store;
  private readonly view: HeadView;
  private readonly registryId: string;
  private readonly now: () => number;
  private readonly verifier: ApprovalVerifier;
  private readonly digest: Digest32;
  private readonly log: WriterLog | undefined;
  private readonly maxPending: number;
  private readonly pending = new Map<string, Pending>();
  private auditHead: AuditHead | null = null;
  private tail: Promise<unknown> = Promise.resolve();
  /** Why the last store write failed, until one succeeds again. */
  storeProblem: string | undefined;

  constructor(options: WriterOptions) {
    super();
    this.store = options.store;
    this.view = options.view;
    this.registryId = options.registryId;
    this.now = options.now ?? Date.now;
    this.verifier = options.verifier ?? new ApprovalVerifier();
    this.digest = options.view.state.digest;
    this.log = options.log;
    this.maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  }

  /** Loads the audit head and the pending proposals; settles those that can no longer commit. */
  async open(): Promise<void> {
    this.auditHead = await this.store.auditHead();
    if (this.auditHead) {
      const [text] = await this.store.audit(this.auditHead.seq, 1);
      if (text === undefined || hashBytes(utf8Bytes(text)) !== this.auditHead.hash) {
        throw new LogIntegrityError(`audit event ${this.auditHead.seq} does not hash to its stored hash: the audit log was edited`);
      }
    }
    const offBase: string[] = [];
    for (let after = 0; ; ) {
      const page = await this.store.proposals({ status: 'pending', afterSeq: after, limit: 1000 });
      for (const p of page) {
        if (p.baseVersion === this.view.head.version) this.pending.set(p.id, await this.toPending(p));
        else offBase.push(p.id);
      }
      if (page.length < 1000) break;
      after = page[page.length - 1]!.seq;
    }
    // Defensive: every commit settles the other pending proposals in its own transaction, so
    // a pending proposal off the head means the log was written by something else.
    if (offBase.length) {
      const at = formatTime(this.now());
      await this.write({ statusChanges: offBase.map((id) => ({ proposalId: id, status: 'stale' })) }, offBase.map((id) => ({ at, kind: 'proposal_stale', proposal_id: id })));
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
      const stored = await this.read(() => this.store.proposal(id));
      if (stored) {
        // Settled: the approvals change nothing, but a bad one is refused as anywhere else.
        await this.verifyAll(id, this.electorateAt(stored.baseVersion, setSignersOf(body.payload)), body.approvals);
        return { created: false, view: this.summaryView(stored) };
      }
      return { created: true, view: await this.accept(id, body) };
    });
  }

  /** POST /registry/proposals/{id}/approvals. */
  approve(id: string, approval: Approval): Promise<ProposalView> {
    return this.run(async () => {
      const pending = this.pending.get(id);
      if (pending) return this.addApprovals(pending, [approval]);
      const stored = await this.read(() => this.store.proposal(id));
      if (!stored) throw new RegistryError('NotFound', `no proposal ${id}`);
      const payload = JSON.parse(stored.payloadText) as ProposalPayload;
      await this.verifyAll(id, this.electorateAt(stored.baseVersion, setSignersOf(payload)), [approval]);
      if (stored.status === 'stale') {
        await this.refuse(id, [{ signer_id: approval.signer_id, reason: 'the proposal is stale' }], new RegistryError('StaleVersion', `proposal ${id} is stale: another change landed on its base first`, {
          hint: 'rebuild the proposal against the current head and sign it again',
        }), setSignersOf(payload));
      }
      if (stored.status === 'expired') {
        await this.refuse(id, [{ signer_id: approval.signer_id, reason: 'the proposal has expired' }], new RegistryError('Gone', `proposal ${id} has expired`), setSignersOf(payload));
      }
      return this.summaryView(stored);
    });
  }

  async proposalView(id: string): Promise<(ProposalView & { payload: ProposalPayload }) | undefined> {
    const stored = await this.store.proposal(id);
    if (!stored) return undefined;
    return { ...this.summaryView(stored), payload: JSON.parse(stored.payloadText) as ProposalPayload };
  }

  /** The view of a stored proposal; its threshold is that of the set in force at its base. */
  summaryView(p: ProposalSummary): ProposalView {
    return this.viewOf(p.id, p.status, p.approvals.map((a) => a.signer_id), this.view.state.signerSetAt(p.baseVersion).threshold, p.proposedThreshold ?? undefined, p.version ?? undefined);
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
    let expiresAt: number;
    try {
      expiresAt = checkProposalHeader(payload, { registryId: this.registryId, head, now: this.now() });
    } catch (e) {
      if (e instanceof RegistryError && e.code === 'BadSignature') {
        // No signature can be checked against another registry's signers: one event per request.
        const names = [...new Set(approvals.map((a) => a.signer_id))].join(', ');
        await this.audit([{ at: formatTime(this.now()), kind: 'approval_refused', proposal_id: id, reason: truncate(`${e.message} (approvals by ${names})`) }]);
      }
      throw e;
    }
    // Signatures before anything costly (planning up to 10,000 ops), and the current signers'
    // first: until one of them has vouched for it, a proposed signer set is only the
    // sender's say-so, and its keys are neither checked (each costs a point decoding and a
    // subgroup check) nor its ids treated as signers in the audit log.
    const electorate: Electorate = { current: this.view.state.signerSet, proposed: setSignersOf(payload) };
    const byCurrent = approvals.filter((a) => isCurrentSigner(electorate, a.signer_id));
    if (byCurrent.length === 0) {
      const e = new RegistryError('BadSignature', 'a proposal needs at least one approval by a signer of the current set');
      await this.refuse(id, approvals.map((a) => ({ signer_id: a.signer_id, reason: e.message })), e);
    }
    await this.verifyAll(id, { current: electorate.current }, byCurrent);
    await this.verifyAll(id, electorate, approvals.filter((a) => !isCurrentSigner(electorate, a.signer_id)));
    if (this.pending.size >= this.maxPending) {
      throw new RegistryError('Unavailable', `${this.pending.size} proposals are pending; approve or let some expire first`, { retryAfter: 60 });
    }
    const delta = planOps(this.view.state, payload.ops, head.version + 1);
    const pending: Pending = { id, expiresAt, electorate, approvals: new Map() };
    for (const a of approvals) if (!pending.approvals.has(a.signer_id)) pending.approvals.set(a.signer_id, a.sig);
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
      ...[...pending.approvals.keys()].map((signer_id) => ({ at: receivedAt, kind: 'approval_accepted' as const, proposal_id: id, signer_id })),
    ];
    return this.persist(pending, batch, events, { payload, delta });
  }

  private async addApprovals(pending: Pending, approvals: readonly Approval[]): Promise<ProposalView> {
    await this.verifyAll(pending.id, pending.electorate, approvals);
    if (isExpired(pending.expiresAt, this.now())) {
      await this.expireDue();
      const reason = 'the proposal has expired';
      await this.refuse(pending.id, approvals.map((a) => ({ signer_id: a.signer_id, reason })), new RegistryError('Gone', `proposal ${pending.id} has expired`), pending.electorate.proposed);
    }
    const receivedAt = formatTime(this.now());
    const fresh = new Map<string, string>();
    for (const a of approvals) if (!pending.approvals.has(a.signer_id) && !fresh.has(a.signer_id)) fresh.set(a.signer_id, a.sig);
    if (fresh.size === 0) return this.pendingView(pending);
    for (const [signer_id, sig] of fresh) pending.approvals.set(signer_id, sig);
    const batch: WriteBatch = {
      approvals: [...fresh].map(([signer_id, sig]) => ({ proposalId: pending.id, signer_id, sig, receivedAt })),
      audit: [],
    };
    const events: AuditFields[] = [...fresh.keys()].map((signer_id) => ({ at: receivedAt, kind: 'approval_accepted', proposal_id: pending.id, signer_id }));
    try {
      return await this.persist(pending, batch, events);
    } catch (e) {
      for (const signer of fresh.keys()) pending.approvals.delete(signer);
      throw e;
    }
  }

  /** Writes a step for a pending proposal, committing it when its approvals reach quorum.
   * `planned` is passed when the proposal was planned in this very step. */
  private async persist(pending: Pending, batch: WriteBatch, events: AuditFields[], planned?: { payload: ProposalPayload; delta: Delta }): Promise<ProposalView> {
    const quorum = hasQuorum(pending.electorate, new Set(pending.approvals.keys()));
    if (!quorum) {
      await this.write(batch, events);
      this.pending.set(pending.id, pending);
      return this.pendingView(pending);
    }
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
    // Every other pending proposal is settled by this commit: expired if its time is up,
    // stale otherwise (its base is gone).
    const others = [...this.pending.values()].filter((p) => p.id !== pending.id);
    const settled = others.map((p) => ({ id: p.id, status: isExpired(p.expiresAt, now) ? ('expired' as const) : ('stale' as const) }));
    const statusChanges: StatusChange[] = [
      { proposalId: pending.id, status: 'committed', version },
      ...settled.map((p) => ({ proposalId: p.id, status: p.status })),
    ];
    await this.write({ ...batch, commit: { version, hash, text, payloadHash: pending.id }, statusChanges }, [
      ...events,
      { at: committedAt, kind: 'committed', proposal_id: pending.id, version },
      ...settled.map((p) => ({ at: committedAt, kind: p.status === 'stale' ? ('proposal_stale' as const) : ('proposal_expired' as const), proposal_id: p.id })),
    ]);
    this.view.advance(record, hash, text, delta);
    this.pending.clear();
    try {
      this.emit('commit', { record, hash, changed: delta.changed });
    } catch (e) {
      // The commit is durable and acknowledged; a failing listener must not turn it into an error.
      this.log?.error({ err: e, version }, 'a commit listener failed');
    }
    return { ...this.pendingView(pending), status: 'committed', version };
  }

  /** Verifies every approval; any failure is audited and refuses the whole request. */
  private async verifyAll(proposalId: string, electorate: Electorate, approvals: readonly Approval[]): Promise<void> {
    if (approvals.length === 0) return;
    const refusals: Refusal[] = [];
    for (const a of approvals) {
      const key = keyOf(electorate, a.signer_id);
      if (key === undefined) refusals.push({ signer_id: a.signer_id, reason: 'not a signer of this registry for this proposal' });
      else if (!this.verifier.verify(key, proposalId, a.sig)) refusals.push({ signer_id: a.signer_id, reason: 'signature does not verify' });
    }
    if (refusals.length) {
      const detail = refusals.map((r) => `${r.signer_id}: ${r.reason}`).join('; ');
      await this.refuse(proposalId, refusals, new RegistryError('BadSignature', truncate(`approval refused (${detail})`), {
        hint: `sign the ASCII bytes "registry-approval-v1:${proposalId}" with the signer's Ed25519 key`,
      }), electorate.proposed);
    }
  }

  /** Audits refused approvals (they are signed claims), then throws `error`. A signer id that
   * never named a signer of this registry claims nothing: those are folded into one event, so
   * an anonymous request adds at most one event however many approvals it carries. */
  private async refuse(proposalId: string, refusals: Refusal[], error: RegistryError, proposed?: SignerSet): Promise<never> {
    const at = formatTime(this.now());
    const known = new Set([...this.view.state.signerSets, ...(proposed ? [proposed] : [])].flatMap((set) => set.signers.map((s) => s.id)));
    const events: AuditFields[] = [];
    const strangers: string[] = [];
    const audited = new Set<string>();
    for (const r of refusals) {
      if (!known.has(r.signer_id)) {
        strangers.push(r.signer_id);
      } else if (!audited.has(r.signer_id)) {
        audited.add(r.signer_id);
        events.push({ at, kind: 'approval_refused', proposal_id: proposalId, signer_id: r.signer_id, reason: r.reason });
      }
    }
    if (strangers.length) {
      events.push({ at, kind: 'approval_refused', proposal_id: proposalId, reason: truncate(`not signers of this registry: ${[...new Set(strangers)].join(', ')}`) });
    }
    await this.audit(events);
    throw error;
  }

  private async expireDue(): Promise<void> {
    const now = this.now();
    const due = [...this.pending.values()].filter((p) => isExpired(p.expiresAt, now));
    if (!due.length) return;
    const at = formatTime(now);
    await this.write(
      { statusChanges: due.map((p) => ({ proposalId: p.id, status: 'expired' })) },
      due.map((p) => ({ at, kind: 'proposal_expired', proposal_id: p.id })),
    );
    for (const p of due) this.pending.delete(p.id);
  }

  private audit(events: AuditFields[]): Promise<void> {
    return this.write({}, events);
  }

  /** Chains `events` onto the audit log and writes them with `batch` in one transaction. */
  private async write(batch: Omit<WriteBatch, 'audit'>, events: AuditFields[]): Promise<void> {
    const chained: ChainedEvent[] = [];
    let head = this.auditHead;
    for (const fields of events) {
      const e = chainAuditEvent(head, fields);
      chained.push(e);
      head = { seq: e.event.seq, hash: e.hash };
    }
    try {
      await this.store.write({ ...batch, audit: chained });
      this.storeProblem = undefined;
    } catch (e) {
      this.storeProblem = (e as Error).message;
      this.log?.error({ err: e }, 'the log could not be written');
      throw new RegistryError('Unavailable', 'the log could not be written; nothing was changed', { retryAfter: 1 });
    }
    this.auditHead = head;
  }

  // -- helpers -------------------------------------------------------------------------------

  /** A store read inside a step: a failing store is a 503, like a failing write. */
  private async read<T>(query: () => Promise<T>): Promise<T> {
    try {
      return await query();
    } catch (e) {
      this.storeProblem = (e as Error).message;
      this.log?.error({ err: e }, 'the log could not be read');
      throw new RegistryError('Unavailable', 'the log could not be read; nothing was changed', { retryAfter: 1 });
    }
  }

  private async payloadOf(id: string): Promise<ProposalPayload> {
    const stored = await this.read(() => this.store.proposal(id));
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
    return this.viewOf(p.id, 'pending', [...p.approvals.keys()], p.electorate.current.threshold, p.electorate.proposed?.threshold, undefined);
  }

  private viewOf(id: string, status: ProposalStatus, signers: string[], threshold: number, proposedThreshold: number | undefined, version: number | undefined): ProposalView {
    const view: ProposalView = { proposal_id: id, status, approvals: [...signers].sort().map((signer_id) => ({ signer_id })), threshold };
    if (proposedThreshold !== undefined) view.proposed_threshold = proposedThreshold;
    if (version !== undefined) view.version = version;
    return view;
  }
}

const truncate = (text: string, max = 1024): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

