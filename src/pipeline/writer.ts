// The single writer. Every proposal and approval passes through one queue; a step asks the
// pure core whether what it was sent is legal, writes everything it changes in one store
// transaction (through the audited log), and only then moves the in-memory head. The approval
// that reaches quorum commits in the same step.
//
// On a shared log (cluster mode, README → Cluster) other instances write too. What this one holds
// in memory (head, pending proposals, audit head, freeze state) is then a cache of the log: a step
// first checks that the audit head has not moved (every change to the log appends audit events)
// and catches up when it has; its write appends at the audit head it saw, so a write that raced
// another instance's fails whole (WriteConflict), and the step is redone on the caught-up state,
// answering as a single instance would have. Commits other instances append are read back and
// checked like any untrusted record (absorbCommit) before they move the head.
import { EventEmitter } from 'node:events';
import {
  judgeApprovals,
  judgeNewProposal,
  newApprovals,
  proposedSignerIds,
  screenApprovals,
  refuseAll,
  refuseSettled,
  refusalEvents,
  type ApprovalContext,
  type Verdict,
} from '../core/approvals.js';
import type { AuditFields } from '../core/audit.js';
import { ApprovalVerifier } from '../core/crypto.js';
import { canonicalBytes, canonicalJson, formatTime, hashBytes, utf8Bytes, type Digest32 } from '../core/encoding.js';
import { badRequest, IntegrityError, RegistryError } from '../core/errors.js';
import { freezeReason, freezeStateOf, freezeTransition, frozenError, THAWED, type FreezeState } from '../core/freeze.js';
import { jcs, NoCanonicalForm, TooDeep } from '../core/jcs.js';
import { checkProposalHeader, foreignRegistry, isExpired, proposalExpiry, setSignersOf, settledBy } from '../core/proposal.js';
import { buildCommitRecord, checkApprovals, checkLink } from '../core/records.js';
import { WriteConflict } from '../errors.js';
import {
  SubmissionShape,
  type Approval,
  type AuditEvent,
  type CommitRecord,
  type Descriptor,
  type ProposalPayload,
  ProposalSubmission,
  type SignerSet,
} from '../core/schemas.js';
import { check, MAX_JSON_DEPTH } from '../core/validate.js';
import { hasQuorum, type Electorate } from '../core/signers.js';
import { planOps, type Delta } from '../core/state.js';
import type { HeadView } from '../state/head-view.js';
import { summaryView, viewOf, type ProposalView } from '../state/proposal-view.js';
import type { ProposalSummary, StatusChange, StoredCommitRow, WriteBatch } from '../store/store.js';
import type { AuditedLog, PipelineLog } from './audited-log.js';
import { recordBytesProblem } from './tamper-check.js';

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
  /** Told of each commit (metrics). */
  observer?: WriterObserver;
  /** Other processes write the same log (PostgreSQL, cluster mode): see the top of this file. */
  shared?: boolean;
}

/** What the writer reports as it goes; each call is synchronous and cheap. */
export interface WriterObserver {
  /** A commit, durable and the head moved, `seconds` after its request entered the queue. */
  committed(seconds: number, approvals: number): void;
}

export const DEFAULT_MAX_PENDING = 1000;
/** Attempts of a step that keeps losing races with other instances before it answers 503. */
const MAX_ATTEMPTS = 20;
/** Findings shown in /readyz; the rest are in the log. */
const MAX_TAMPER_REASONS = 10;
const PAGE = 1000;

/** Audited claims remembered at most (then forgotten, each then audited at most once more). */
const MAX_AUDITED_CLAIMS = 100_000;

export class Writer extends EventEmitter<{ commit: [CommitEvent] }> {
  private readonly log: AuditedLog;
  private readonly view: HeadView;
  private readonly registryId: string;
  private readonly now: () => number;
  private readonly verifier: ApprovalVerifier;
  private readonly digest: Digest32;
  private readonly logger: PipelineLog | undefined;
  private readonly maxPending: number;
  private readonly observer: WriterObserver | undefined;
  private readonly shared: boolean;
  /** Why following the shared log stopped (a record that failed its checks), or undefined. */
  private followProblem: string | undefined;
  /** Shared logs: set when the next commit to follow was pruned by retention before this instance
   * read it. Not tampering: this instance fell further behind than the retention horizon (its
   * connection down that long). It cannot catch up from the log, only from the latest checkpoint,
   * which a restart loads: until then its head is stale for good, so it says it serves no reads
   * (/readyz answers 503) and refuses writes. */
  private behindHorizon: string | undefined;
  /** When the running step's request entered the queue (performance.now()). */
  private queuedAt = 0;
  private readonly pending = new Map<string, Pending>();
  /** Stale and expired proposals whose payloads are still stored: they count against the cap of
   * pending proposals until retention prunes them (a signer cannot fill the disk with proposals
   * that expire at once). */
  private settledUnpruned = 0;
  /** The write plane's freeze state: the last `frozen` or `thawed` audit event's. */
  private freeze: FreezeState = THAWED;
  private tail: Promise<unknown> = Promise.resolve();
  /** Refused approvals, by whether they were audited (signed claims) or only logged. */
  readonly refusals = { audited: 0, unaudited: 0 };
  /** Refused signed claims already audited, as `proposal id \n signer id \n reason` (kept in memory: after a
   * restart a replayed claim is audited once more). */
  private readonly auditedClaims = new Set<string>();
  /** Payload ids and canonical texts that screen() computed, for the submit() of the same body. */
  private readonly screened = new WeakMap<object, { id: string; text: string }>();
  /** What the start found tampered with (README → Tamper evidence): writes are refused for good. */
  private readonly tampered: string[] = [];
  /** Versions found tampered with: their records are not served. */
  private readonly tamperedVersions = new Map<number, string>();
  /** How far the start's integrity pass is; writes wait for it. */
  private verifyingNow: string | undefined;

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
    this.observer = options.observer;
    this.shared = options.shared ?? false;
  }

  /** Records a finding of the start's integrity pass: writes are refused from now on, and a
   * version named is no longer served. */
  distrust(problem: string, version?: number): void {
    this.tampered.push(problem);
    if (version !== undefined && !this.tamperedVersions.has(version)) this.tamperedVersions.set(version, problem);
    this.logger?.error({ problem, version }, 'the log was tampered with');
  }

  /** How far the start's integrity pass is (writes wait for it), or undefined once done. */
  verifying(progress: string | undefined): void {
    this.verifyingNow = progress;
  }

  /** Why version `version` is not to be served, or undefined. */
  tamperedVersion(version: number): string | undefined {
    return this.tamperedVersions.get(version);
  }

  /** Whether the integrity pass has finished and found nothing (and this instance has not fallen
   * behind the retention horizon). */
  get trusted(): boolean {
    return this.verifyingNow === undefined && this.tampered.length === 0 && this.behindHorizon === undefined;
  }

  /** Why this instance's head is stale for good (it fell behind the retention horizon), or undefined. */
  get stale(): string | undefined {
    return this.behindHorizon;
  }

  /** Loads the audit head and the pending proposals; settles those that can no longer commit.
   * A pending proposal is loaded only if its payload text hashes to its id and each stored
   * approval verifies; what fails is left out and reported (distrust). */
  async open(): Promise<void> {
    const offBase = await this.load();
    // Nothing is written to a log that is being verified or was tampered with: the settling
    // below waits for the next start, and the expiry sweep for the end of the verification.
    if (!this.trusted) return;
    // Defensive: every commit settles the other pending proposals in its own transaction, so
    // a pending proposal off the head means the log was written by something else. (On a shared
    // log, one based on a newer head is another instance's, and load() has caught up to it.)
    if (offBase.length && !this.shared) {
      const at = formatTime(this.now());
      await this.log.write(
        { statusChanges: offBase.map((id) => ({ proposalId: id, status: 'stale' })), settledAt: this.now() },
        offBase.map((id) => ({ at, kind: 'proposal_stale', proposal_id: id })),
      );
      this.settledUnpruned += offBase.length;
    }
    await this.run(() => this.expireDue());
  }

  /** Reads what the writer keeps in memory from the log: the audit head, the freeze state, the
   * settled payloads' count and the pending proposals (each checked, see open()). On a shared log
   * it first follows the commits other instances appended. Returns the pending proposals not
   * based on the head. */
  private async load(): Promise<string[]> {
    for (;;) {
      // The audit head first: what is read after it is at least as new, so a write chained on it
      // either finds the log as read, or conflicts (and the next load reads it again). It is
      // adopted last: a load that fails half-way leaves the old one, so the next step loads again.
      const auditHead = await this.log.readHead();
      if (this.shared) {
        await this.followLog();
        await this.checkHeadKept();
      }
      this.settledUnpruned = await this.log.read((s) => s.unprunedSettledCount());
      const lastFreeze = await this.log.read((s) => s.lastFreezeEvent());
      this.freeze = freezeStateOf(lastFreeze === undefined ? undefined : (JSON.parse(lastFreeze) as AuditEvent));
      const known = new Map(this.pending);
      this.pending.clear();
      const offBase: string[] = [];
      let behind = false;
      for (let after = 0; ;) {
        const page = await this.log.read((s) => s.proposals({ status: 'pending', afterSeq: after, limit: PAGE }));
        for (const p of page) {
          if (p.baseVersion !== this.view.head.version) {
            if (p.baseVersion > this.view.head.version) behind = true;
            offBase.push(p.id);
            continue;
          }
          const loaded = this.cached(known.get(p.id), p) ?? (await this.toPending(p));
          if (typeof loaded === 'string') this.distrust(`proposal ${p.id}: ${loaded}`);
          else this.pending.set(p.id, loaded);
        }
        if (page.length < PAGE) break;
        after = page[page.length - 1]!.seq;
      }
      // Another instance committed while the proposals were read: follow it, and read them again.
      if (this.shared && behind) continue;
      this.log.adopt(auditHead);
      return offBase;
    }
  }

  /** A pending proposal already checked, if the stored one holds nothing new; a new approval
   * sends it through toPending() again. */
  private cached(held: Pending | undefined, stored: ProposalSummary): Pending | undefined {
    if (!held || held.expiresAt !== stored.expiresAt || held.approvals.size !== stored.approvals.length) return undefined;
    return stored.approvals.every((a) => held.approvals.get(a.signer_id) === a.sig) ? held : undefined;
  }

  /** Shared logs: follows the commits other instances appended since the head, checking each.
   * Runs in the queue; the follower calls it when told of a commit, and every few seconds. */
  catchUp(): Promise<void> {
    return this.enqueue(async () => {
      await this.checkHeadKept();
      if ((await this.followLog()) > 0) this.pending.clear();
    });
  }

  /** Shared logs: distrusts a log that no longer holds the head this instance serves (a database
   * restored from an old backup, a standby promoted without the last commits): every write would
   * conflict with it, and what was acknowledged is gone from it. */
  private async checkHeadKept(): Promise<void> {
    const head = this.view.head;
    if (this.followProblem !== undefined || head.version === 0) return;
    const stored = await this.log.read((s) => s.commit(head.version));
    if (stored?.hash === head.hash) return;
    this.followProblem = `the shared log no longer holds version ${head.version} (${head.hash}), which this instance served`;
    this.distrust(this.followProblem, head.version);
  }

  /** Reads the commits after the head and applies each (absorbCommit). Returns how many. A record
   * that fails its checks stops the following for good: the head stays at the last good one,
   * reads go on, writes are refused (distrust). */
  private async followLog(): Promise<number> {
    if (this.followProblem !== undefined || this.behindHorizon !== undefined) return 0;
    let applied = 0;
    for (;;) {
      const page = await this.log.read((s) => s.commits(this.view.head.version + 1, PAGE));
      for (const stored of page) {
        if (stored.text === '') {
          this.behindHorizon =
            `this instance is at version ${this.view.head.version} and the log has pruned version ${stored.version}, ` +
            'behind its retention horizon: restart it to load the latest checkpoint';
          this.logger?.error({ version: stored.version, head: this.view.head.version }, this.behindHorizon);
          return applied;
        }
        try {
          this.absorbCommit(stored);
        } catch (e) {
          this.followProblem = (e as Error).message;
          this.distrust(`following the shared log: ${this.followProblem}`, stored.version);
          return applied;
        }
        applied++;
      }
      if (page.length < PAGE) return applied;
    }
  }

  /** Moves the head to a commit another instance appended, once it is checked as a start checks
   * the log: its bytes hash to its stored hash and are canonical JSON, its payload to its
   * payload_hash, it links to the head, its approvals verify and reach quorum under the signer
   * set in force, its ops apply to the head's state, and the state after them hashes to its
   * state_root. The database is shared; its rows are not trusted for being there. */
  private absorbCommit(stored: StoredCommitRow): void {
    const v = stored.version;
    const fail = (why: string): never => {
      throw new IntegrityError(`version ${v}: ${why}`, v);
    };
    if (stored.text === '') fail('its record was pruned before this instance read it');
    const problem = recordBytesProblem(stored, this.digest);
    if (problem) fail(problem);
    const record = JSON.parse(stored.text) as CommitRecord;
    if (canonicalJson(record) !== stored.text) fail('the stored record is not canonical JSON');
    if (record.payload_hash !== stored.payloadHash) fail(`its stored payload hash is not its record's payload_hash`);
    checkLink(record, this.view.head, this.registryId);
    const payload = record.payload as ProposalPayload;
    let delta: Delta;
    try {
      checkApprovals(
        record.approvals,
        { current: this.view.state.signerSet, proposed: setSignersOf(payload) },
        record.payload_hash,
        this.verifier,
        v,
      );
      delta = planOps(this.view.state, payload.ops, v);
    } catch (e) {
      if (e instanceof IntegrityError) throw e;
      return fail(`it does not apply to version ${v - 1} (${(e as Error).message})`);
    }
    const root = this.view.state.rootAfter(delta);
    if (root !== record.state_root) fail(`its ops give the state root ${root}, not its state_root ${record.state_root}`);
    this.advance(record, stored.hash, stored.text, delta);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Settled proposals whose payloads retention has not pruned yet. */
  get settledUnprunedCount(): number {
    return this.settledUnpruned;
  }

  /** Retention pruned `n` settled payloads. */
  settledPruned(n: number): void {
    this.settledUnpruned = Math.max(0, this.settledUnpruned - n);
  }

  get freezeState(): FreezeState {
    return this.freeze;
  }

  /** Why the write plane refuses writes now, one reason each (the store fails or is slow, the
   * registry is frozen); empty when it takes them. Overload is the HTTP layer's to add. */
  blockers(): string[] {
    const reasons: string[] = [];
    if (this.log.storeProblem) reasons.push(`store: ${this.log.storeProblem}`);
    const slow = this.log.slowness();
    if (slow) reasons.push(`store: ${slow}`);
    if (this.freeze.frozen) reasons.push(`frozen: ${this.freeze.reason}`);
    if (this.verifyingNow !== undefined) reasons.push(`verifying: ${this.verifyingNow}`);
    if (this.behindHorizon !== undefined) reasons.push(`behind: ${this.behindHorizon}`);
    const shown = this.tampered.slice(0, MAX_TAMPER_REASONS).map((t) => `tamper: ${t}`);
    if (this.tampered.length > MAX_TAMPER_REASONS)
      shown.push(`tamper: and ${this.tampered.length - MAX_TAMPER_REASONS} more (see the log)`);
    return [...reasons, ...shown];
  }

  /** Refuses a new write before its body is read: the registry is frozen, or a store write is
   * stuck (new writes would only queue behind it). A failing store is not refused here: the
   * next write is what finds out that it works again. */
  admit(): void {
    this.refuseUntrusted();
    // On a shared log another instance may have thawed it since: the step decides, once caught up.
    if (this.freeze.frozen && !this.shared) throw frozenError(this.freeze);
    if (this.log.stuck()) {
      throw new RegistryError('Unavailable', `the log is not taking writes: ${this.log.slowness() ?? 'a store write is stuck'}`, {
        retryAfter: 5,
        reason: 'store_slow',
      });
    }
  }

  /** Freezes the write plane (an operator's command): audits `frozen` with the reason. Nothing
   * is committed; pending proposals stay pending. Freezing a frozen registry changes nothing. */
  freezeWrites(reason: string): Promise<{ changed: boolean; state: FreezeState }> {
    return this.transition('frozen', freezeReason(reason, true));
  }

  /** Thaws the write plane: audits `thawed`, with the reason when one is given. */
  thawWrites(reason?: string): Promise<{ changed: boolean; state: FreezeState }> {
    return this.transition('thawed', freezeReason(reason, false));
  }

  private transition(to: 'frozen' | 'thawed', reason: string | undefined): Promise<{ changed: boolean; state: FreezeState }> {
    return this.run(async () => {
      const step = freezeTransition(this.freeze, to, reason, formatTime(this.now()));
      if (!step) return { changed: false, state: this.freeze };
      await this.log.audit([step.event]);
      this.freeze = step.next;
      this.logger?.info({ kind: to, reason }, to === 'frozen' ? 'write plane frozen' : 'write plane thawed');
      return { changed: true, state: this.freeze };
    });
  }

  /** Refuses writes while the start's integrity pass runs, and for good once it found the log
   * tampered with. */
  private refuseUntrusted(): void {
    if (this.behindHorizon !== undefined)
      throw new RegistryError('Unavailable', `${this.behindHorizon}; another instance takes writes`, {
        retryAfter: 60,
        reason: 'behind_horizon',
      });
    if (this.tampered.length)
      throw new RegistryError('Unavailable', `the log was tampered with: ${this.tampered[0]!}; writes are refused`, {
        retryAfter: 3600,
        reason: 'tampered',
      });
    if (this.verifyingNow !== undefined)
      throw new RegistryError('Unavailable', `the log is being verified: ${this.verifyingNow}`, { retryAfter: 5, reason: 'verifying' });
  }

  /** In the queue: a write that was queued before a freeze landed is refused all the same. */
  private refuseFrozen(): void {
    this.refuseUntrusted();
    if (this.freeze.frozen) throw frozenError(this.freeze);
  }

  /** The screen of POST /registry/proposals (core screenApprovals), run on the parsed body
   * before it is validated in full: a request that no signer of the registry validly signed is
   * refused here, for the cost of reading its approvals and, when one names a signer of the
   * registry, of hashing its payload once (the id and canonical text are kept for submit()).
   * `strict` checks that the body is I-JSON; it runs before the payload is hashed, so that an
   * ambiguous body is a 400 rather than a signature that does not verify. Refusals are counted
   * and logged like the writer's own, and never audited: none is a signed claim (SPEC §9). */
  async screen(body: unknown, strict: () => void): Promise<void> {
    const { payload, approvals } = check(SubmissionShape, body, 'the body');
    let memo: { id: string; text: string } | undefined;
    const payloadHash = (): string => {
      if (memo === undefined) {
        strict();
        // A body that names a signer of the registry is validated in full before its signature
        // is checked: a schema violation (an unknown field, a wrong type) is a 400 whoever
        // signed it (SPEC §7), not a signature that does not verify over the payload sent.
        check(ProposalSubmission, body, 'the body');
        const text = canonicalPayload(payload);
        memo = { id: hashBytes(utf8Bytes(text), this.digest), text };
        this.screened.set(payload, memo);
      }
      return memo.id;
    };
    const history = this.view.state.signerSets;
    const result = screenApprovals({ history, approvals, proposedIds: proposedSignerIds(payload), payloadHash, verifier: this.verifier });
    if (result.verdict === 'pass') return;
    if (result.verdict === 'refuse-unless-known') {
      const id = payloadHash();
      if (this.pending.has(id) || (await this.log.read((s) => s.proposal(id))) !== undefined) return;
    }
    this.refusals.unaudited += result.refusals.length;
    this.logger?.info(
      {
        proposal_id: memo?.id,
        code: result.error.code,
        refusals: result.refusals.map((r) => ({ signer_id: r.signer_id, reason: r.reason, audited: false })),
      },
      'approvals refused',
    );
    throw result.error;
  }

  /** POST /registry/proposals. */
  submit(body: ProposalSubmission): Promise<{ created: boolean; view: ProposalView }> {
    return this.run(async () => {
      this.refuseFrozen();
      const id = this.screened.get(body.payload)?.id ?? hashBytes(canonicalBytes(body.payload), this.digest);
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
      this.refuseFrozen();
      const pending = this.pending.get(id);
      if (pending) return this.addApprovals(pending, [approval]);
      const stored = await this.log.read((s) => s.proposal(id));
      if (!stored) throw new RegistryError('NotFound', `no proposal ${id}`);
      // A settled payload that retention pruned no longer names its proposed signer set: the
      // approval is judged against the set in force at its base alone.
      const proposed = stored.payloadText === '' ? undefined : setSignersOf(JSON.parse(stored.payloadText) as ProposalPayload);
      const ctx = this.context(id, this.electorateAt(stored.baseVersion, proposed));
      await this.enforce(ctx, judgeApprovals(ctx, [approval]));
      if (stored.status === 'stale' || stored.status === 'expired') await this.enforce(ctx, refuseSettled(id, [approval], stored.status));
      return summaryView(stored, this.view.state);
    });
  }

  /** Marks every pending proposal past its expiry as expired. Runs in the queue. */
  expireNow(): Promise<void> {
    // Nothing is written to a log that is being verified or was tampered with.
    if (!this.trusted) return Promise.resolve();
    return this.run(() => this.expireDue());
  }

  /** Resolves when every step queued so far has finished. */
  drain(): Promise<void> {
    return this.tail.then(() => undefined);
  }

  // -- steps, each running inside the queue --------------------------------------------------

  /** Runs a request's step in the queue. On a shared log it first catches up if another instance
   * wrote since, and redoes the step on the caught-up state when its write loses a race. */
  private run<T>(step: () => Promise<T>): Promise<T> {
    if (!this.shared) return this.enqueue(step);
    return this.enqueue(async () => {
      let lost = false;
      for (let attempt = 1; ; attempt++) {
        const head = lost ? undefined : await this.log.read((s) => s.auditHead());
        const held = this.log.auditHead;
        if (lost || head?.seq !== held?.seq || head?.hash !== held?.hash) await this.load();
        try {
          return await step();
        } catch (e) {
          if (!(e instanceof WriteConflict)) throw e;
          if (attempt === MAX_ATTEMPTS)
            throw new RegistryError(
              'Unavailable',
              `the write lost ${MAX_ATTEMPTS} races with other instances in a row; nothing was changed`,
              {
                retryAfter: 1,
                reason: 'write_conflicts',
              },
            );
          lost = true;
          this.logger?.info({ attempt, why: e.message }, 'another instance wrote first: catching up and redoing the step');
        }
      }
    });
  }

  private enqueue<T>(step: () => Promise<T>): Promise<T> {
    const queuedAt = performance.now();
    const result = this.tail.then(() => {
      this.queuedAt = queuedAt;
      return step();
    });
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
    if (this.pending.size + this.settledUnpruned >= this.maxPending) {
      throw new RegistryError(
        'Unavailable',
        `${this.pending.size} proposals are pending and ${this.settledUnpruned} settled ones still hold their payloads ` +
          `(the cap is ${this.maxPending}): approve some, or wait for settled payloads to be pruned (settledPayloadTtlMs)`,
        { retryAfter: 60, reason: 'too_many_pending' },
      );
    }
    const delta = planOps(this.view.state, payload.ops, head.version + 1);
    const pending: Pending = { id, expiresAt, electorate, approvals: newApprovals(new Map(), approvals) };
    const receivedAt = formatTime(this.now());
    const batch: WriteBatch = {
      proposal: {
        id,
        payloadText: this.screened.get(payload)?.text ?? canonicalJson(payload),
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
    await this.log.write({ ...batch, commit: { version, hash, text, payloadHash: pending.id }, statusChanges, settledAt: now }, [
      ...events,
      { at: committedAt, kind: 'committed', proposal_id: pending.id, version },
      ...settled.map((p) => ({
        at: committedAt,
        kind: p.status === 'stale' ? ('proposal_stale' as const) : ('proposal_expired' as const),
        proposal_id: p.id,
      })),
    ]);
    this.observer?.committed((performance.now() - this.queuedAt) / 1000, record.approvals.length);
    this.pending.clear();
    this.settledUnpruned += settled.length;
    this.advance(record, hash, text, delta);
    return { ...this.pendingView(pending), status: 'committed', version };
  }

  /** Moves the head to a durable commit (this instance's or, followed, another's) and tells the listeners. */
  private advance(record: CommitRecord, hash: string, text: string, delta: Delta): void {
    const after = new Map(delta.puts.map((e) => [e.descriptor.id, e.descriptor]));
    const descriptors = delta.changed.map((id) => ({ id, before: this.view.index.get(id)?.descriptor, after: after.get(id) }));
    this.view.advance(record, hash, text, delta);
    try {
      this.emit('commit', { record, hash, changed: delta.changed, descriptors });
    } catch (e) {
      // The commit is durable and acknowledged; a failing listener must not turn it into an error.
      this.logger?.error({ err: e, version: record.version }, 'a commit listener failed');
    }
  }

  private async expireDue(): Promise<void> {
    const now = this.now();
    const due = [...this.pending.values()].filter((p) => isExpired(p.expiresAt, now));
    if (!due.length) return;
    const at = formatTime(now);
    await this.log.write(
      { statusChanges: due.map((p) => ({ proposalId: p.id, status: 'expired' })), settledAt: now },
      due.map((p) => ({ at, kind: 'proposal_expired', proposal_id: p.id })),
    );
    for (const p of due) this.pending.delete(p.id);
    this.settledUnpruned += due.length;
  }

  /** Carries out the core's verdict on a request's approvals: audits the refusals that are
   * signed claims, counts the rest, and throws the verdict's error. */
  private async enforce(ctx: ApprovalContext, verdict: Verdict): Promise<void> {
    if (verdict.ok) return;
    // A signed claim is audited once per proposal, signer and reason: sent again (anyone may replay an
    // approval they have seen), it proves nothing new and must not grow the audit log.
    const events = refusalEvents(ctx.proposalId, verdict.refusals, formatTime(this.now())).filter(
      (e) => !this.auditedClaims.has(`${e.proposal_id}\n${e.signer_id}\n${e.reason}`),
    );
    this.refusals.audited += events.length;
    this.refusals.unaudited += verdict.refusals.length - events.length;
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
    if (this.auditedClaims.size >= MAX_AUDITED_CLAIMS) this.auditedClaims.clear();
    for (const e of events) this.auditedClaims.add(`${e.proposal_id}\n${e.signer_id}\n${e.reason}`);
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

  /** A stored pending proposal checked against its own bytes, or why it fails: its payload
   * text must hash to its id and agree with its columns, and each approval must verify. */
  private async toPending(p: ProposalSummary): Promise<Pending | string> {
    const stored = await this.log.read((s) => s.proposal(p.id));
    if (!stored) return 'missing from the store';
    if (hashBytes(utf8Bytes(stored.payloadText), this.digest) !== p.id) return 'its stored payload does not hash to its id';
    let payload: ProposalPayload;
    try {
      payload = JSON.parse(stored.payloadText) as ProposalPayload;
    } catch {
      return 'its stored payload is not JSON';
    }
    const head = this.view.head;
    let proposed: SignerSet | undefined;
    try {
      if (payload.base_version !== head.version || payload.base_hash !== head.hash || payload.registry_id !== this.registryId)
        return 'its stored payload is not based on the head of this registry';
      if (proposalExpiry(payload) !== p.expiresAt) return "its stored expiry is not its payload's";
      proposed = setSignersOf(payload);
    } catch (e) {
      return `its stored payload is malformed (${(e as Error).message})`;
    }
    if ((proposed?.threshold ?? null) !== p.proposedThreshold) return "its stored proposed threshold is not its payload's";
    const electorate = this.electorateAt(p.baseVersion, proposed);
    const verdict = judgeApprovals(this.context(p.id, electorate), p.approvals);
    if (!verdict.ok) return `a stored approval does not verify (${verdict.refusals.map((r) => `${r.signer_id}: ${r.reason}`).join('; ')})`;
    return { id: p.id, expiresAt: p.expiresAt, electorate, approvals: new Map(p.approvals.map((a) => [a.signer_id, a.sig])) };
  }

  private electorateAt(baseVersion: number, proposed: SignerSet | undefined): Electorate {
    return { current: this.view.state.signerSetAt(baseVersion), proposed };
  }

  private pendingView(p: Pending): ProposalView {
    return viewOf(p.id, 'pending', p.approvals.keys(), p.electorate.current.threshold, p.electorate.proposed?.threshold);
  }
}

/** A screened payload's canonical JSON; a 400 for one that has none (SPEC §1, as checkJsonShape says it). */
function canonicalPayload(payload: object): string {
  try {
    // The payload sits one level inside the body, which may nest MAX_JSON_DEPTH levels.
    const text = jcs(payload, MAX_JSON_DEPTH - 1);
    if (text === undefined) throw badRequest('the payload has no JSON form');
    return text;
  } catch (e) {
    if (e instanceof TooDeep) throw badRequest(`the body nests deeper than ${MAX_JSON_DEPTH} levels`);
    if (e instanceof NoCanonicalForm)
      throw badRequest(
        e.what === 'number'
          ? 'a number in the body is out of the range of a double'
          : `a ${e.what} in the body holds a lone UTF-16 surrogate`,
      );
    throw e;
  }
}
