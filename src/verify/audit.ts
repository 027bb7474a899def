// The audit chain (SPEC §9): events served exactly as hashed, seq 1, 2, 3… without gaps, each
// prev_hash the hash b3(JCS(event)) of the one before (null for seq 1).
import { b3, HASH, jcs } from './primitives.js';
import { LogError } from './replay.js';

/** The audit chain breaks at `seq`. */
export class AuditError extends Error {
  override name = 'AuditError';
  constructor(
    readonly seq: number,
    message: string,
  ) {
    super(`audit event ${seq}: ${message}`);
  }
}

const KINDS = new Set([
  'proposal_received',
  'approval_accepted',
  'approval_refused',
  'committed',
  'proposal_stale',
  'proposal_expired',
  'frozen',
  'thawed',
]);
const ALLOWED = new Set(['seq', 'prev_hash', 'at', 'kind', 'proposal_id', 'signer_id', 'version', 'reason']);
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export interface AuditCounts {
  events: number;
  committedEvents: number;
  lastHash: string | null;
}

/** Checks events fed in order. `commitOf(version)` answers the payload hash of a verified commit,
 * so that each `committed` event is cross-checked against the log: null for a version that is in
 * the log but whose payload hash is unknown (pruned, read over HTTP), undefined for none. */
export class AuditChain {
  private expectedSeq = 1;
  private prevHash: string | null = null;
  readonly counts: AuditCounts = { events: 0, committedEvents: 0, lastHash: null };

  constructor(private readonly commitOf: (version: number) => string | null | undefined) {}

  /** `storedHash`, `storedText`: the hash the source keeps beside the event and the event's text
   * (a database's columns), if any; the text must be the event's canonical JSON. */
  add(event: unknown, storedHash?: string, storedText?: string): void {
    const seq = this.expectedSeq;
    const fail = (m: string): never => {
      throw new AuditError(seq, m);
    };
    if (typeof event !== 'object' || event === null || Array.isArray(event)) return fail('not a JSON object');
    const e = event as Record<string, unknown>;
    if (e.seq !== seq) fail(`expected seq ${seq}, found ${JSON.stringify(e.seq)} (a gap, a repeat or a reordering)`);
    for (const k of Object.keys(e)) if (!ALLOWED.has(k)) fail(`unknown member "${k}"`);
    if (typeof e.kind !== 'string' || !KINDS.has(e.kind)) fail(`unknown kind ${JSON.stringify(e.kind)}`);
    if (typeof e.at !== 'string' || !TIME.test(e.at)) fail('"at" is not a time');
    if (e.prev_hash !== this.prevHash)
      fail(
        `prev_hash ${String(e.prev_hash)} is not the hash of event ${seq - 1} (${String(this.prevHash)}): an event before it was changed`,
      );
    if (e.proposal_id !== undefined && (typeof e.proposal_id !== 'string' || !HASH.test(e.proposal_id)))
      fail('proposal_id is not a b3 hash');
    const text = jcs(e);
    const hash = b3(text);
    if (storedHash !== undefined && storedHash !== hash)
      fail(`the stored hash ${storedHash} is not the hash of the event (${hash}): the event was changed`);
    if (storedText !== undefined && storedText !== text) fail('the stored event is not its canonical JSON');
    if (e.kind === 'committed') {
      if (typeof e.version !== 'number') fail('a committed event without a version');
      const payloadHash = this.commitOf(e.version as number);
      // The chain holds together but the log lacks the version: the log was cut, name the version.
      if (payloadHash === undefined)
        throw new LogError(e.version as number, `missing, yet audit event ${seq} says it was committed: the log was truncated`);
      if (payloadHash !== null && payloadHash !== e.proposal_id)
        fail(`says ${String(e.proposal_id)} became version ${String(e.version)}, whose payload hash is ${payloadHash}`);
      this.counts.committedEvents++;
    }
    this.prevHash = hash;
    this.counts.events++;
    this.counts.lastHash = hash;
    this.expectedSeq++;
  }
}
