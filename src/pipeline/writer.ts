// The single writer. Every proposal and approval passes through one queue; a step verifies,
// decides with the pure core, writes everything it changes in one store transaction, and only
// then moves the in-memory head. The approval that reaches quorum commits in the same step.
import { EventEmitter } from 'node:events';
import { chainAuditEvent, type AuditFields, type AuditHead, type ChainedEvent } from '../core/audit.js';
import { ApprovalVerifier } from '../core/crypto.js';
import { canonicalJson, formatTime, hashBytes, hashOf, utf8Bytes } from '../core/encoding.js';
import { RegistryError } from '../core/errors.js';
import { checkProposal, isExpired, proposalExpiry } from '../core/proposal.js';
import { buildCommitRecord } from '../core/records.js';
import type { Approval, CommitRecord, ProposalPayload, ProposalStatus, ProposalSubmission } from '../core/schemas.js';
import { hasQuorum, isCurrentSigner, keyOf, type Electorate } from '../core/signers.js';
import { planOps } from '../core/state.js';
import type { HeadView } from '../state/head-view.js';
import type { StatusChange, Store, StoredProposal, WriteBatch } from '../store/store.js';

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

interface Pending {
  id: string;
  payload: ProposalPayload;
  expiresAt: number;
  electorate: Electorate;
  /** signer_id → sig, in arrival order. */
  approvals: Map<string, string>;
}

interface Refusal {
  signer_id: string;
  reason: string;
}

export interface WriterOptions {
  store: Store;
  view: HeadView;
  registryId: string;
  now?: () => number;
  verifier?: ApprovalVerifier;
}

export class Writer extends EventEmitter<{ commit: [CommitEvent] }> {
  private readonly store: Store;
  private readonly view: HeadView;
  private readonly registryId: string;
  private readonly now: () => number;
  private readonly verifier: ApprovalVerifier;
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
  }

  /** Loads pending proposals and the audit head; settles proposals that can no longer commit. */
  async open(): Promise<void> {
    this.auditHead = await this.store.auditHead();
    const settle: Pending[] = [];
    for (let after = 0; ; ) {
      const page = await this.store.proposals({ status: 'pending', afterSeq: after, limit: 1000 });
      for (const p of page) {
        const pending = this.toPending(p);
        if (p.baseVersion === this.view.head.version) this.pending.set(p.id, pending);
        else settle.push(pending);
      }
      if (page.length < 1000) break;
      after = page[page.length - 1]!.seq;
    }
    if (settle.length) {
      const at = formatTime(this.now());
      await this.write({ statusChanges: settle.map((p) => ({ proposalId: p.id, status: 'stale' })) }, settle.map((p) => ({ at, kind: 'proposal_stale', proposal_id: p.id })));
    }
    await this.run(() => this.expireDue());
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** POST /registry/proposals. */
  submit(body: ProposalSubmission): Promise<{ created: boolean; view: ProposalView }> {
    return this.run(async () => {
      const id = hashOf(body.payload);
      const known = this.pending.get(id);
      // A known payload answers with its current status; an expired one is settled first.
      if (known && isExpired(known.expiresAt, this.now())) await this.expireDue();
      else if (known) return { created: false, view: await this.addApprovals(known, body.approvals) };
      const stored = await this.store.proposal(id);
      if (stored) {
        // Settled: the approvals change nothing, but a bad one is refused as anywhere else.
        await this.verifyAll(id, this.electorateAt(stored.baseVersion, body.payload), body.approvals);
        return { created: false, view: this.storedView(stored) };
      }
      return { created: true, view: await this.accept(id, body) };
    });
  }

  /** POST /registry/proposals/{id}/approvals. */
  approve(id: string, approval: Approval): Promise<ProposalView> {
    return this.run(async () => {
      const pending = this.pending.get(id);
      if (pending) return this.addApprovals(pending, [approval]);
      const stored = await this.store.proposal(id);
      if (!stored) throw new RegistryError('NotFound', `no proposal ${id}`);
      const payload = JSON.parse(stored.payloadText) as ProposalPayload;
      await this.verifyAll(id, this.electorateAt(stored.baseVersion, payload), [approval]);
      if (stored.status === 'stale') {
        throw new RegistryError('StaleVersion', `proposal ${id} is stale: another change landed on its base first`, {
          hint: 'rebuild the proposal against the current head and sign it again',
        });
      }
      if (stored.status === 'expired') throw new RegistryError('Gone', `proposal ${id} has expired`);
      return this.storedView(stored);
    });
  }

  async proposalView(id: string): Promise<(ProposalView & { payload: ProposalPayload }) | undefined> {
    const stored = await this.store.proposal(id);
    if (!stored) return undefined;
    return { ...this.storedView(stored), payload: JSON.parse(stored.payloadText) as ProposalPayload };
  }

  storedView(stored: StoredProposal): ProposalView {
    const payload = JSON.parse(stored.payloadText) as ProposalPayload;
    const electorate = this.electorateAt(stored.baseVersion, payload);
    return this.view_(stored.id, stored.status, stored.approvals.map((a) => a.signer_id), electorate, stored.version ?? undefined);
  }

  /** Resolves when every step queued so far has finished. */
  drain(): Promise<void> {
    return this.tail.then(() => undefined);
  }

  /** Marks every pending proposal past its expiry as expired. Runs in the queue. */
  expireNow(): Promise<void> {
    return this.run(() => this.expireDue());
  }

  // -- steps, each running inside the queue --------------------------------------------------

  private run<T>(step: () => Promise<T>): Promise<T> {
    const result = this.tail.then(step);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private async accept(id: string, body: ProposalSubmission): Promise<ProposalView> {
    const { payload } = body;
    const head = this.view.head;
    let checked;
    try {
      checked = checkProposal(payload, { registryId: this.registryId, head, state: this.view.state, now: this.now() });
    } catch (e) {
      if (e instanceof RegistryError && e.code === 'BadSignature') {
        await this.refuse(id, body.approvals.map((a) => ({ signer_id: a.signer_id, reason: e.message })), e);
      }
      throw e;
    }
    const electorate: Electorate = { current: this.view.state.signerSet, proposed: checked.delta.signerSet };
    await this.verifyAll(id, electorate, body.approvals);
    if (!body.approvals.some((a) => isCurrentSigner(electorate, a.signer_id))) {
      const e = new RegistryError('BadSignature', 'a proposal needs at least one approval by a signer of the current set');
      await this.refuse(id, body.approvals.map((a) => ({ signer_id: a.signer_id, reason: e.message })), e);
    }
    const pending: Pending = { id, payload, expiresAt: checked.expiresAt, electorate, approvals: new Map() };
    for (const a of body.approvals) if (!pending.approvals.has(a.signer_id)) pending.approvals.set(a.signer_id, a.sig);
    const receivedAt = formatTime(this.now());
    const batch: WriteBatch = {
      proposal: { id, payloadText: canonicalJson(payload), baseVersion: payload.base_version, expiresAt: checked.expiresAt, receivedAt },
      approvals: [...pending.approvals].map(([signer_id, sig]) => ({ proposalId: id, signer_id, sig, receivedAt })),
      audit: [],
    };
    const events: AuditFields[] = [
      { at: receivedAt, kind: 'proposal_received', proposal_id: id },
      ...[...pending.approvals.keys()].map((signer_id) => ({ at: receivedAt, kind: 'approval_accepted' as const, proposal_id: id, signer_id })),
    ];
    return this.persist(pending, batch, events);
  }

  private async addApprovals(pending: Pending, approvals: readonly Approval[]): Promise<ProposalView> {
    if (isExpired(pending.expiresAt, this.now())) {
      await this.expireDue();
      throw new RegistryError('Gone', `proposal ${pending.id} has expired`);
    }
    await this.verifyAll(pending.id, pending.electorate, approvals);
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

  /** Writes a step for a pending proposal, committing it when its approvals reach quorum. */
  private async persist(pending: Pending, batch: WriteBatch, events: AuditFields[]): Promise<ProposalView> {
    const quorum = hasQuorum(pending.electorate, new Set(pending.approvals.keys()));
    if (!quorum) {
      await this.write(batch, events);
      this.pending.set(pending.id, pending);
      return this.pendingView(pending);
    }
    const head = this.view.head;
    const version = head.version + 1;
    const delta = planOps(this.view.state, pending.payload.ops, version);
    const committedAt = formatTime(this.now());
    const record = buildCommitRecord({
      registryId: this.registryId,
      version,
      prevHash: head.hash,
      payload: pending.payload,
      payloadHash: pending.id,
      approvals: [...pending.approvals].map(([signer_id, sig]) => ({ signer_id, sig })),
      stateRoot: this.view.state.rootAfter(delta),
      committedAt,
    });
    const text = canonicalJson(record);
    const hash = hashBytes(utf8Bytes(text));
    const stale = [...this.pending.keys()].filter((id) => id !== pending.id);
    const statusChanges: StatusChange[] = [
      { proposalId: pending.id, status: 'committed', version },
      ...stale.map((id) => ({ proposalId: id, status: 'stale' as const })),
    ];
    await this.write({ ...batch, commit: { version, hash, text, payloadHash: pending.id }, statusChanges }, [
      ...events,
      { at: committedAt, kind: 'committed', proposal_id: pending.id, version },
      ...stale.map((id) => ({ at: committedAt, kind: 'proposal_stale' as const, proposal_id: id })),
    ]);
    this.view.advance(record, hash, text, delta);
    this.pending.clear();
    this.emit('commit', { record, hash, changed: delta.changed });
    return { ...this.pendingView(pending), status: 'committed', version };
  }

  /** Verifies every approval; any failure is audited and refuses the whole request. */
  private async verifyAll(proposalId: string, electorate: Electorate, approvals: readonly Approval[]): Promise<void> {
    const refusals: Refusal[] = [];
    for (const a of approvals) {
      const key = keyOf(electorate, a.signer_id);
      if (key === undefined) refusals.push({ signer_id: a.signer_id, reason: 'not a signer of this registry for this proposal' });
      else if (!this.verifier.verify(key, proposalId, a.sig)) refusals.push({ signer_id: a.signer_id, reason: 'signature does not verify' });
    }
    if (refusals.length) {
      const detail = refusals.map((r) => `${r.signer_id}: ${r.reason}`).join('; ');
      await this.refuse(proposalId, refusals, new RegistryError('BadSignature', `approval refused (${detail})`, {
        hint: `sign the ASCII bytes "registry-approval-v1:${proposalId}" with the signer's Ed25519 key`,
      }));
    }
  }

  /** Audits refused approvals (they are signed claims), then throws `error`. */
  private async refuse(proposalId: string, refusals: Refusal[], error: RegistryError): Promise<never> {
    const at = formatTime(this.now());
    await this.write({}, refusals.map((r) => ({ at, kind: 'approval_refused', proposal_id: proposalId, signer_id: r.signer_id, reason: r.reason })));
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
      throw new RegistryError('Unavailable', 'the log could not be written; nothing was changed', { retryAfter: 1 });
    }
    this.auditHead = head;
  }

  // -- views ---------------------------------------------------------------------------------

  private toPending(p: StoredProposal): Pending {
    const payload = JSON.parse(p.payloadText) as ProposalPayload;
    return {
      id: p.id,
      payload,
      expiresAt: proposalExpiry(payload),
      electorate: this.electorateAt(p.baseVersion, payload),
      approvals: new Map(p.approvals.map((a) => [a.signer_id, a.sig])),
    };
  }

  private electorateAt(baseVersion: number, payload: ProposalPayload): Electorate {
    const rotation = payload.ops.find((op) => op.op === 'set_signers');
    return { current: this.view.signerSetAt(baseVersion), proposed: rotation?.signer_set };
  }

  private pendingView(p: Pending): ProposalView {
    return this.view_(p.id, 'pending', [...p.approvals.keys()], p.electorate, undefined);
  }

  private view_(id: string, status: ProposalStatus, signers: string[], electorate: Electorate, version: number | undefined): ProposalView {
    const view: ProposalView = {
      proposal_id: id,
      status,
      approvals: [...signers].sort().map((signer_id) => ({ signer_id })),
      threshold: electorate.current.threshold,
    };
    if (electorate.proposed) view.proposed_threshold = electorate.proposed.threshold;
    if (version !== undefined) view.version = version;
    return view;
  }
}
