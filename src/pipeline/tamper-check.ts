// Tamper evidence: the start trusts nothing it reads. Replay (src/state/replay.ts) checks each
// record's hash, the links and the head's state root; this pass checks what replay does not:
// every record's payload hash and approvals, the genesis against the configured one byte for
// byte, the audit chain from its first event, and the log against the proposals and audit
// tables (a commit row deleted at the end leaves its `committed` event and its committed
// proposal behind). The head record is checked before reads are served; the rest runs in
// small slices on the event loop, so reads answer meanwhile. Writes wait for it (the writer
// reports `verifying: …`), and are refused for good on any finding (`tamper: …`).
import type { SignatureCheck } from '../core/approvals.js';
import { canonicalJson, hashBytes, utf8Bytes, type Digest32 } from '../core/encoding.js';
import { IntegrityError } from '../core/errors.js';
import { setSignersOf } from '../core/proposal.js';
import { checkApprovals, isGenesisPayload } from '../core/records.js';
import type { AuditEvent, CommitRecord, ProposalPayload, SignerSet } from '../core/schemas.js';
import type { HeadView } from '../state/head-view.js';
import type { Store, StoredCommit, StoredCommitRow } from '../store/store.js';

const PAGE = 500;
/** Records (or events) checked between two yields to the event loop. */
const SLICE = 64;

/** What the pass reports to: the writer, which refuses writes while verifying and for good
 * once anything failed. */
export interface TamperSink {
  /** A finding: `version` names the commit at fault, when there is one. */
  distrust(problem: string, version?: number): void;
  /** How far the pass is, or undefined once it has finished. */
  verifying(progress: string | undefined): void;
}

export interface TamperCheckOptions {
  store: Store;
  /** The log as the start loaded it: its head version, its digest, and the signer-set history
   * that the latest checkpoint gave it (checked here against the records). */
  view: Pick<HeadView, 'head' | 'state'> | LoadedLog;
  /** The configured genesis record's canonical JSON. */
  genesisText: string;
  verifier: SignatureCheck;
  sink: TamperSink;
}

/** What the pass needs of the loaded log when it runs apart from it (a worker thread). */
export interface LoadedLog {
  headVersion: number;
  digest: Digest32;
  /** Canonical JSON of the signer-set history the start holds, `[{from, set}]`. */
  signerHistory: string;
}

export const loadedLog = (view: TamperCheckOptions['view']): LoadedLog =>
  'headVersion' in view
    ? view
    : { headVersion: view.head.version, digest: view.state.digest, signerHistory: canonicalJson(view.state.signerHistoryEntries) };

/** The problem with a stored record's own bytes, or undefined: its text must hash to its
 * stored hash, and its payload to its payload_hash. Checked on every record read from the
 * store before it is served. */
export function recordBytesProblem(stored: StoredCommit, digest?: Digest32): string | undefined {
  if (hashBytes(utf8Bytes(stored.text), digest) !== stored.hash) return `the stored record does not hash to ${stored.hash}`;
  let record: CommitRecord;
  try {
    record = JSON.parse(stored.text) as CommitRecord;
  } catch {
    return 'the stored record is not JSON';
  }
  if (record.version !== stored.version) return `the stored record says it is version ${String(record.version)}`;
  const payloadHash = hashBytes(utf8Bytes(canonicalJson(record.payload)), digest);
  if (payloadHash !== record.payload_hash) return `its payload hashes to ${payloadHash}, not to its payload_hash ${record.payload_hash}`;
  return undefined;
}

class Stopped extends Error {}

export class TamperCheck {
  private readonly store: Store;
  private readonly loaded: LoadedLog;
  private readonly digest: Digest32;
  private readonly verifier: SignatureCheck;
  private readonly sink: TamperSink;
  private readonly genesisText: string;
  /** The head version when the pass started (writes wait for the pass, so it stays the head). */
  private readonly headVersion: number;
  /** payload_hash → version, of every commit after the genesis. */
  private readonly commitOf = new Map<string, number>();
  /** The proposals table: id → status and version. */
  private readonly proposalOf = new Map<string, { status: string; version: number | null }>();
  /** Versions whose records retention pruned. */
  private readonly prunedVersions = new Set<number>();
  /** Approval rows, as `proposal_id signer_id`. */
  private readonly approvalRows = new Set<string>();
  findings = 0;
  private stopped = false;

  constructor(options: TamperCheckOptions) {
    this.store = options.store;
    this.loaded = loadedLog(options.view);
    this.digest = this.loaded.digest;
    this.verifier = options.verifier;
    this.sink = options.sink;
    this.genesisText = options.genesisText;
    this.headVersion = this.loaded.headVersion;
  }

  /** Stops the pass at its next slice (the registry is closing). */
  stop(): void {
    this.stopped = true;
  }

  /** Yields to the event loop between slices, so reads answer meanwhile. */
  private async slice(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.stopped) throw new Stopped();
  }

  private fail(problem: string, version?: number): void {
    this.findings++;
    this.sink.distrust(problem, version);
  }

  /** The checks made before reads are served: the stored genesis is the configured one byte
   * for byte, and the head record's payload hash and approvals hold. */
  async checkStart(): Promise<void> {
    const genesis = await this.store.genesis();
    if (genesis && genesis.text !== this.genesisText)
      // Not marked as a bad version: the configured genesis is what version 0 serves from memory,
      // and a read of the stored row is checked against its hash before it goes out.
      this.fail('version 0: the stored genesis record is not the configured genesis record, byte for byte');
    if (this.headVersion > 0) {
      const head = await this.store.commit(this.headVersion);
      const history = JSON.parse(this.loaded.signerHistory) as { from: number; set: SignerSet }[];
      if (head) this.checkRecord(head, setAt(history, this.headVersion - 1));
    }
  }

  /** The whole pass: every record, the proposals table, the audit chain and the cross-checks.
   * Resolves when done; reports progress and findings to the sink as it goes. */
  async run(): Promise<void> {
    const head = this.headVersion;
    try {
      this.sink.verifying(`checking the payload hashes and approvals of versions 1 to ${head}`);
      await this.checkCommits();
      this.sink.verifying('checking the proposals table against the log');
      await this.checkProposals();
      this.sink.verifying('checking the audit chain and that it records every commit');
      await this.checkAudit();
    } catch (e) {
      if (e instanceof Stopped || this.stopped) return;
      this.fail(`the check did not complete: ${(e as Error).message}`);
    } finally {
      this.sink.verifying(undefined);
    }
  }

  /** Checks a record's own bytes and its approvals against `current`, the signer set in force
   * at its base. */
  private checkRecord(stored: StoredCommit, current: SignerSet): void {
    const v = stored.version;
    const problem = recordBytesProblem(stored, this.digest);
    if (problem) return this.fail(`version ${v}: ${problem}`, v);
    const record = JSON.parse(stored.text) as CommitRecord;
    if (isGenesisPayload(record.payload)) return this.fail(`version ${v}: carries a genesis payload`, v);
    try {
      checkApprovals(record.approvals, { current, proposed: setSignersOf(record.payload) }, record.payload_hash, this.verifier, v);
    } catch (e) {
      this.fail(e instanceof IntegrityError ? e.message : `version ${v}: its approvals are malformed (${(e as Error).message})`, v);
    }
  }

  /** Every record from version 1 to the head: its bytes, its link to the one before (over the
   * stored hash, pruned or not), its approvals under the signer set it follows (tracked here from
   * the records themselves, genesis first), and what retention may have pruned. The start
   * replayed only the commits after the latest checkpoint: this pass is what binds the ones
   * before it to the head. */
  private async checkCommits(): Promise<void> {
    const genesis = JSON.parse(this.genesisText) as CommitRecord;
    const history: { from: number; set: SignerSet }[] = [{ from: 1, set: (genesis.payload as { signer_set: SignerSet }).signer_set }];
    const checkpoints = await this.store.checkpoints();
    const horizon = checkpoints[0]?.version ?? 0;
    const checkpointAt = new Map(checkpoints.map((c) => [c.version, c]));
    // The checkpoint the start loaded: the newest below the head (src/state/replay.ts). Each
    // entry's changed_in is checked against the records, unless some before it were pruned.
    const loaded = checkpoints.filter((c) => c.version < this.headVersion).pop();
    const lastPut = loaded ? new Map<string, number>() : undefined;
    let prunedBefore = false;
    let prevSetChange = false;
    let prev: { version: number; hash: string } = { version: 0, hash: hashBytes(utf8Bytes(this.genesisText), this.digest) };
    for (let from = 1; from <= this.headVersion; from += PAGE) {
      const page = await this.store.commits(from, Math.min(PAGE, this.headVersion - from + 1));
      for (const [i, stored] of page.entries()) {
        const v = stored.version;
        if (v !== prev.version + 1) return this.fail(`version ${prev.version + 1}: missing from the log`, prev.version + 1);
        this.commitOf.set(stored.payloadHash, v);
        const c = checkpointAt.get(v);
        if (c && c.hash !== stored.hash)
          this.fail(`the checkpoint at version ${v}: its hash ${c.hash} is not its record's ${stored.hash}`, v);
        if (stored.text === '') {
          prunedBefore = true;
          if (v >= horizon)
            this.fail(`version ${v}: its record was pruned, but it is not older than the oldest checkpoint (${horizon})`, v);
          else if (prevSetChange) this.fail(`version ${v}: its record was pruned, but it follows a signer-set change, which it binds`, v);
          this.prunedVersions.add(v);
          prevSetChange = false;
        } else {
          const record = this.checkChained(stored, prev, history);
          prevSetChange = record !== undefined && setChangeOf(record) !== undefined;
          if (record && c && record.state_root !== c.stateRoot)
            this.fail(`the checkpoint at version ${v}: its state_root is not its record's`, v);
          if (record && lastPut && !prunedBefore && loaded && v <= loaded.version)
            for (const op of (record.payload as ProposalPayload).ops) if (op.op === 'put') lastPut.set(op.descriptor.id, v);
        }
        prev = { version: v, hash: stored.hash };
        if (i % SLICE === SLICE - 1) {
          this.sink.verifying(`checking the records and approvals of versions 1 to ${this.headVersion}: at version ${v}`);
          await this.slice();
        }
      }
      if (page.length === 0) break;
    }
    if (canonicalJson(history) !== this.loaded.signerHistory)
      this.fail('the signer-set history the start loaded (from the latest checkpoint) is not the one the records carry');
    if (loaded && lastPut && !prunedBefore) await this.checkChangedIn(loaded.version, lastPut);
  }

  /** Each entry of checkpoint `version` says it changed in the last version that put it. */
  private async checkChangedIn(version: number, lastPut: Map<string, number>): Promise<void> {
    for (let after = ''; ;) {
      const page = await this.store.checkpointEntries(version, after, PAGE);
      for (const e of page) {
        if (lastPut.get(e.id) !== e.changedIn)
          return this.fail(
            `the checkpoint at version ${version}: its entry ${e.id} says it changed in version ${e.changedIn}, the log says ${String(lastPut.get(e.id))}`,
            version,
          );
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.id;
      await this.slice();
    }
  }

  /** A record that follows `prev`: its link, its base, its bytes and approvals; a signer-set
   * change it carries is added to `history`. */
  private checkChained(
    stored: StoredCommitRow,
    prev: { version: number; hash: string },
    history: { from: number; set: SignerSet }[],
  ): CommitRecord | undefined {
    const v = stored.version;
    let record: CommitRecord;
    try {
      record = JSON.parse(stored.text) as CommitRecord;
    } catch {
      this.fail(`version ${v}: the stored record is not JSON`, v);
      return undefined;
    }
    const payload = record.payload as { base_version?: unknown; base_hash?: unknown };
    if (record.prev_hash !== prev.hash) this.fail(`version ${v}: its prev_hash is not the hash of version ${prev.version}`, v);
    else if (payload.base_version !== prev.version || payload.base_hash !== prev.hash)
      this.fail(`version ${v}: its payload is based on another head`, v);
    else this.checkSigned(stored, record, history);
    return record;
  }

  /** A linked record's bytes and approvals; a signer-set change it carries joins `history`. */
  private checkSigned(stored: StoredCommitRow, record: CommitRecord, history: { from: number; set: SignerSet }[]): void {
    const v = stored.version;
    // The head was checked at start.
    if (v !== this.headVersion) this.checkRecord(stored, history[history.length - 1]!.set);
    const next = setChangeOf(record);
    if (next) history.push({ from: v + 1, set: next });
  }

  /** Whether the log holds proposal `id`'s commit at `version`, past the head the pass checks: on
   * a shared log other instances commit while it runs (the follower checks those records); on a
   * log of one process, nothing is past the head, and a row that says so means a truncated log. */
  private async committedPastHead(version: number, id: string): Promise<boolean> {
    const [row] = await this.store.commits(version, 1);
    return row?.version === version && row.payloadHash === id;
  }

  private async checkProposals(): Promise<void> {
    const head = this.headVersion;
    for (let after = 0; ;) {
      const page = await this.store.proposals({ afterSeq: after, limit: PAGE });
      for (const p of page) {
        this.proposalOf.set(p.id, { status: p.status, version: p.version });
        for (const a of p.approvals) this.approvalRows.add(`${p.id} ${a.signer_id}`);
        if (p.status !== 'committed') continue;
        const v = p.version;
        if (v !== null && p.proposedThreshold !== null && this.prunedVersions.has(v))
          this.fail(`version ${v}: its record was pruned, but its proposal changed the signer set`, v);
        if (v !== null && v > head) {
          if (!(await this.committedPastHead(v, p.id)))
            this.fail(`version ${v}: proposal ${p.id} was committed at version ${v}, past the head ${head}: the log was truncated`, v);
        } else if (v === null || this.commitOf.get(p.id) !== v)
          this.fail(`proposal ${p.id}: the proposals table says committed at version ${String(v)}, the log does not`, v ?? undefined);
      }
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.seq;
      await this.slice();
    }
    for (const [id, v] of this.commitOf) {
      const row = this.proposalOf.get(id);
      if (row?.status !== 'committed' || row.version !== v)
        this.fail(`version ${v}: its proposal ${id} is not committed at version ${v} in the proposals table`, v);
    }
  }

  private async checkAudit(): Promise<void> {
    const head = this.headVersion;
    let prevHash: string | null = null;
    let expected = 1;
    const committedEvents = new Map<number, string>();
    const received = new Set<string>();
    const accepted = new Set<string>();
    const settled = new Map<string, string>();
    for (;;) {
      const texts = await this.store.audit(expected, PAGE);
      for (const [i, text] of texts.entries()) {
        const seq = expected;
        let event: AuditEvent;
        try {
          event = JSON.parse(text) as AuditEvent;
        } catch {
          this.fail(`audit event ${seq}: not JSON`);
          return;
        }
        if (event.seq !== seq) return this.fail(`audit event ${seq}: says it is event ${String(event.seq)}`);
        if (event.prev_hash !== prevHash)
          return this.fail(
            `audit event ${seq}: its prev_hash ${String(event.prev_hash)} is not the hash of event ${seq - 1} (${String(prevHash)})`,
          );
        if (canonicalJson(event) !== text) return this.fail(`audit event ${seq}: not stored as its canonical JSON`);
        prevHash = hashBytes(utf8Bytes(text));
        expected++;
        const id = event.proposal_id;
        if (event.kind === 'committed' && event.version !== undefined && id !== undefined) committedEvents.set(event.version, id);
        else if (event.kind === 'proposal_received' && id !== undefined) received.add(id);
        else if (event.kind === 'approval_accepted' && id !== undefined) accepted.add(`${id} ${String(event.signer_id)}`);
        else if ((event.kind === 'proposal_stale' || event.kind === 'proposal_expired') && id !== undefined) settled.set(id, event.kind);
        if (i % (SLICE * 4) === SLICE * 4 - 1) await this.slice();
      }
      if (texts.length < PAGE) break;
    }
    for (const [v, id] of committedEvents) {
      if (v > head && !(await this.committedPastHead(v, id)))
        this.fail(`version ${v}: the audit log records its commit (proposal ${id}), past the head ${head}: the log was truncated`, v);
    }
    for (const [id, v] of this.commitOf) {
      if (committedEvents.get(v) !== id) this.fail(`version ${v}: the audit log has no \`committed\` event for it (proposal ${id})`, v);
    }
    for (const [id, row] of this.proposalOf) {
      if (!received.has(id)) this.fail(`proposal ${id}: the audit log has no \`proposal_received\` event for it`);
      if ((row.status === 'stale' || row.status === 'expired') && settled.get(id) !== `proposal_${row.status}`)
        this.fail(`proposal ${id}: ${row.status} in the proposals table, without its \`proposal_${row.status}\` audit event`);
    }
    for (const key of this.approvalRows) {
      if (!accepted.has(key)) {
        const [id, signer] = key.split(' ');
        this.fail(`proposal ${id}: the approval by ${signer} has no \`approval_accepted\` audit event`);
      }
    }
  }
}

/** The signer set in force for a proposal on base version `base`. */
function setAt(history: readonly { from: number; set: SignerSet }[], base: number): SignerSet {
  let set = history[0]!.set;
  for (const h of history) if (h.from <= base + 1) set = h.set;
  return set;
}

/** The signer set a record's payload sets, if it sets one (a malformed payload sets none). */
function setChangeOf(record: CommitRecord): SignerSet | undefined {
  try {
    return isGenesisPayload(record.payload) ? undefined : setSignersOf(record.payload);
  } catch {
    return undefined;
  }
}
