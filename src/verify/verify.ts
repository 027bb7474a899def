// `registry verify`: replays a whole log from the wire contract alone (SPEC §1–§5, §9, §10) and
// answers what it checked, or throws a LogError (naming the version), an AuditError (naming the
// seq), a TableError (a database row that disagrees) or a SourceError (cannot read the source).
import { AuditChain, AuditError, type AuditCounts } from './audit.js';
import { hashOfValue, jcs, verifyApproval } from './primitives.js';
import { LogError, Replay, type Checked, type ReplayCounts, type SignerSet } from './replay.js';
import { getJson, inOrder, openDb, SourceError, TableError } from './sources.js';

export { AuditError } from './audit.js';
export { LogError } from './replay.js';
export { SourceError, TableError } from './sources.js';

export interface Progress {
  phase(name: string, total: number): void;
  tick(done: number): void;
  end(): void;
}

const silent: Progress = { phase: () => undefined, tick: () => undefined, end: () => undefined };

export interface VerifyOptions {
  /** The genesis hash the caller pins (the trust root); without it, version 0 is trusted as read. */
  genesisHash?: string;
  /** Records fetched at once over HTTP. */
  concurrency?: number;
  progress?: Progress;
}

export interface Summary {
  source: string;
  registryId: string;
  genesisHash: string;
  genesisPinned: boolean;
  head: Checked;
  signerSet: SignerSet;
  counts: ReplayCounts;
  audit: AuditCounts;
  /** Extra checks made against the source's own tables or answers. */
  crossChecks: string[];
  checkpoint: string;
  seconds: number;
}

function checkGenesisPin(replay: Replay, pinned: string | undefined): void {
  if (pinned !== undefined && replay.history[0] && replay.history[0].hash !== pinned)
    throw new LogError(0, `the genesis hash is ${replay.history[0].hash}, not the pinned ${pinned}: another registry, or a forged genesis`);
}

function summary(
  source: string,
  replay: Replay,
  chain: AuditChain,
  opts: VerifyOptions,
  started: number,
  extra: Partial<Summary>,
): Summary {
  return {
    source,
    registryId: replay.registryId,
    genesisHash: replay.history[0]!.hash,
    genesisPinned: opts.genesisHash !== undefined,
    head: replay.last!,
    signerSet: replay.currentSigners!,
    counts: replay.counts,
    audit: chain.counts,
    crossChecks: [],
    checkpoint: 'none served',
    seconds: (performance.now() - started) / 1000,
    ...extra,
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Verifies the registry served at `base` (its /registry/… answers). */
export async function verifyUrl(base: string, opts: VerifyOptions = {}): Promise<Summary> {
  const started = performance.now();
  const progress = opts.progress ?? silent;
  const root = base.endsWith('/') ? base : base + '/';
  const head = await getJson(root, 'registry/head');
  if (head.status !== 200 || !isObj(head.json) || !Number.isSafeInteger(head.json.version) || (head.json.version as number) < 0)
    throw new SourceError(`${root}registry/head answered ${head.status}, not a head: is this a registry?`);
  const claimed = head.json;
  const headVersion = claimed.version as number;
  const replay = new Replay();

  const fetchRecord = async (v: number): Promise<unknown> => {
    const r = await getJson(root, `registry/${v}`);
    if (r.status === 200) return r.json;
    if (r.status === 404) throw new LogError(v, `missing (404), yet the head is version ${headVersion}`);
    if (r.status === 410) throw new SourceError(`version ${v} is pruned (410): verifying across pruned versions is not supported yet`);
    throw new SourceError(`${root}registry/${v} answered ${r.status}`);
  };
  const replayUpTo = async (last: number): Promise<void> => {
    const from = replay.last ? replay.last.version + 1 : 0;
    for await (const record of inOrder(last - from + 1, from, opts.concurrency ?? 8, fetchRecord)) {
      const checked = replay.apply(record, replay.last ? replay.last.version + 1 : 0);
      if (checked.version === 0) checkGenesisPin(replay, opts.genesisHash);
      progress.tick(checked.version + 1);
    }
  };

  progress.phase('records', headVersion + 1);
  await replayUpTo(headVersion);
  const last = replay.last!;
  // The head must be the end of the chain, and say what the replay found.
  const beyond = await getJson(root, `registry/${headVersion + 1}`);
  if (beyond.status === 200)
    throw new LogError(headVersion + 1, `exists, but the head answers version ${headVersion}: the head is not the end of the chain`);
  const headProblems: string[] = [];
  if (claimed.hash !== last.hash) headProblems.push(`hash ${String(claimed.hash)} (the record hashes to ${last.hash})`);
  if (claimed.prev_hash !== last.prevHash) headProblems.push(`prev_hash ${String(claimed.prev_hash)}`);
  if (claimed.state_root !== last.stateRoot) headProblems.push(`state_root ${String(claimed.state_root)} (replayed: ${last.stateRoot})`);
  if (claimed.committed_at !== last.committedAt) headProblems.push(`committed_at ${String(claimed.committed_at)}`);
  if (claimed.descriptor_count !== last.descriptorCount)
    headProblems.push(`descriptor_count ${String(claimed.descriptor_count)} (replayed: ${last.descriptorCount})`);
  if (!isObj(claimed.signer_set) || jcs(claimed.signer_set) !== jcs(replay.currentSigners))
    headProblems.push('a signer set other than the replayed one');
  if (headProblems.length > 0) throw new LogError(headVersion, `the head answer disagrees with the record: ${headProblems.join('; ')}`);

  // The audit chain, page by page. A live registry may have committed since the head was read:
  // a `committed` event past the replayed head makes the replay catch up first.
  const chain = new AuditChain((v) => replay.history[v]?.payloadHash);
  progress.phase('audit events', 0);
  for (let from = 1; ;) {
    const page = await getJson(root, `registry/audit?from_seq=${from}&limit=1000`);
    if (page.status !== 200 || !isObj(page.json) || !Array.isArray(page.json.events))
      throw new SourceError(`${root}registry/audit answered ${page.status}, not a page of events`);
    const events = page.json.events as unknown[];
    for (const e of events) {
      if (isObj(e) && e.kind === 'committed' && Number.isSafeInteger(e.version) && (e.version as number) > replay.last!.version)
        await replayUpTo(e.version as number).catch((err: unknown) => {
          throw err instanceof LogError && err.message.includes('missing (404)')
            ? new LogError(err.version, `missing (404), yet audit event ${String(e.seq)} says it was committed`)
            : err;
        });
      chain.add(e);
    }
    progress.tick(chain.counts.events);
    if (events.length === 0) break;
    if (page.json.next_from_seq !== from + events.length)
      throw new SourceError(
        `${root}registry/audit gave next_from_seq ${String(page.json.next_from_seq)} after ${events.length} events from ${from}`,
      );
    from += events.length;
  }
  if (chain.counts.committedEvents !== replay.counts.commits)
    throw new LogError(
      replay.last!.version,
      `the audit log records ${chain.counts.committedEvents} commits but the log holds ${replay.counts.commits}: a commit without its audit event`,
    );

  // The latest checkpoint, when the service serves one (SPEC §10).
  let checkpoint = 'none served';
  const cp = await getJson(root, 'registry/checkpoints/latest');
  if (cp.status === 200 && isObj(cp.json)) {
    const v = cp.json.version;
    const at = Number.isSafeInteger(v) ? replay.history[v as number] : undefined;
    if (!at) throw new LogError(Number(v) || 0, 'the latest checkpoint names a version that is not in the verified log');
    if (cp.json.hash !== at.hash || cp.json.state_root !== at.stateRoot || cp.json.descriptor_count !== at.descriptorCount)
      throw new LogError(at.version, 'the latest checkpoint disagrees with the replayed record (hash, state_root or descriptor_count)');
    checkpoint = `version ${at.version} agrees`;
  } else if (cp.status !== 404) throw new SourceError(`${root}registry/checkpoints/latest answered ${cp.status}`);
  progress.end();
  return summary(root, replay, chain, opts, started, { checkpoint, crossChecks: ['head answer'] });
}

/** Verifies a registry's SQLite file, opened read-only (a stopped service's file, or a copy). */
export function verifyDb(file: string, opts: VerifyOptions = {}): Summary {
  const started = performance.now();
  const progress = opts.progress ?? silent;
  const rows = openDb(file);
  try {
    const replay = new Replay();
    progress.phase('records', rows.commitCount());
    for (const row of rows.commits()) {
      const expected = replay.last ? replay.last.version + 1 : 0;
      if (row.version !== expected) throw new LogError(expected, `no such row: the commits table jumps to version ${row.version}`);
      let record: unknown;
      try {
        record = JSON.parse(row.record);
      } catch {
        throw new LogError(expected, 'the stored record is not JSON');
      }
      const checked = replay.apply(record, expected);
      if (expected === 0) checkGenesisPin(replay, opts.genesisHash);
      if (jcs(record) !== row.record) throw new LogError(expected, 'the stored record is not its canonical JSON');
      if (row.hash !== checked.hash)
        throw new LogError(expected, `the hash column ${row.hash} is not the hash of the record (${checked.hash})`);
      if (row.payload_hash !== checked.payloadHash) throw new LogError(expected, 'the payload_hash column is not the hash of the payload');
      progress.tick(expected + 1);
    }
    if (!replay.last) throw new SourceError(`${file} holds no commits: not a registry's database, or an empty one`);

    const chain = new AuditChain((v) => replay.history[v]?.payloadHash);
    progress.phase('audit events', rows.auditCount());
    for (const row of rows.audit()) {
      let event: unknown;
      try {
        event = JSON.parse(row.event);
      } catch {
        event = row.event;
      }
      const before = chain.counts.events;
      chain.add(event, row.hash);
      if (row.seq !== before + 1) throw new AuditError(before + 1, `the seq column says ${row.seq}`);
      if (jcs(event) !== row.event) throw new AuditError(row.seq, 'the stored event is not its canonical JSON');
      if (chain.counts.events % 1000 === 0) progress.tick(chain.counts.events);
    }
    if (chain.counts.committedEvents !== replay.counts.commits)
      throw new LogError(
        replay.last.version,
        `the audit log records ${chain.counts.committedEvents} commits but the log holds ${replay.counts.commits}: a commit without its audit event, or a deleted tail`,
      );

    // Proposals: each payload hashes to its id; a committed one is the payload of its version.
    const payloads = new Map<string, Record<string, unknown>>();
    let proposals = 0;
    for (const p of rows.proposals()) {
      let payload: unknown;
      try {
        payload = JSON.parse(p.payload);
      } catch {
        throw new TableError(`proposal ${p.id}: its payload is not JSON`);
      }
      if (hashOfValue(payload) !== p.id)
        throw new TableError(`proposal ${p.id}: its payload does not hash to its id (the payload was edited)`);
      if (p.status === 'committed' && (p.version === null || replay.history[p.version]?.payloadHash !== p.id))
        throw new TableError(`proposal ${p.id}: committed as version ${String(p.version)}, whose payload is another`);
      payloads.set(p.id, payload as Record<string, unknown>);
      proposals++;
    }
    // Approvals: each verifies under the key its signer has or had, or is given by the proposal.
    let approvals = 0;
    for (const a of rows.approvals()) {
      const payload = payloads.get(a.proposal_id);
      if (!payload) throw new TableError(`an approval by ${a.signer_id} names an unknown proposal ${a.proposal_id}`);
      const proposed = (Array.isArray(payload.ops) ? payload.ops : []).find((o: { op?: string }) => o?.op === 'set_signers') as
        { signer_set?: SignerSet } | undefined;
      const key = replay.keyEverOf(a.signer_id) ?? proposed?.signer_set?.signers?.find((s) => s.id === a.signer_id)?.public_key;
      if (key === undefined || !verifyApproval(key, a.proposal_id, a.sig))
        throw new TableError(`the stored approval by ${a.signer_id} of proposal ${a.proposal_id} does not verify (a forged approval row)`);
      approvals++;
    }
    progress.end();
    return summary(file, replay, chain, opts, started, {
      checkpoint: 'none stored',
      crossChecks: [`commits table hash columns`, `${proposals} proposals`, `${approvals} stored approvals`],
    });
  } finally {
    rows.db.close();
  }
}
