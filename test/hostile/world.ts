// The registry the hostile campaign attacks, and what the campaign knows about it: keys derived
// from the seed, the commits and proposals it made on purpose, the proposal ids its signed
// requests may touch, and the checks of the head, the hash chain and the audit chain.
import { setTimeout as delay } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { pino } from 'pino';
import { publicKeyOf, signApproval } from '../../src/core/crypto.js';
import { canonicalJson, hashBytes, hashOf } from '../../src/core/encoding.js';
import type { Approval, AuditEvent, CommitRecord, Op, SignerSet } from '../../src/core/schemas.js';
import { BAD_SIGNATURE } from '../../src/core/approvals.js';
import type { Config } from '../../src/config/config.js';
import { checkAuditChain, readAudit } from '../helpers/audit.js';
import { genesisRecord, proposal, put, del, setSigners, signerSet, type TestSigner } from '../helpers/fixtures.js';
import type { HeadJson } from '../helpers/responses.js';
import { request, startTestRegistry, type TestRegistry } from '../helpers/server.js';
import type { Ctx } from './arbitraries.js';

/** A signer whose key is derived from the campaign's seed, so a replay signs alike. */
export function seededSigner(seed: number, id: string): TestSigner {
  const secretKey = createHash('sha256').update(`hostile:${seed}:${id}`).digest('hex');
  return { id, secretKey, publicKey: publicKeyOf(secretKey) };
}

const REGISTRY_ID = 'hostile';
const KINDS = ['service', 'node', 'region', 'placement'];
const LABEL_KEYS = ['region', 'status', 'tier', 'weight', 'team/owner', 'a.b'];

export class World {
  readonly signers: Record<'alice' | 'bob' | 'carol' | 'dave' | 'mallory' | 'trent', TestSigner>;
  /** The set the campaign keeps in force between phases. */
  readonly homeSet: SignerSet;
  reg!: TestRegistry;
  /** Proposal ids the campaign made or may have caused (its own, and its signed requests'). */
  readonly allowed = new Set<string>();
  /** Proposals the campaign made, by what became of them. */
  readonly proposals = { pending: [] as string[], stale: [] as string[], expired: [] as string[], committed: [] as string[] };
  /** Audit events seen so far, and the head then. */
  auditCount = 0;
  head!: HeadJson;
  private step = 0;

  constructor(readonly seed: number) {
    const s = (id: string) => seededSigner(seed, id);
    this.signers = { alice: s('alice'), bob: s('bob'), carol: s('carol'), dave: s('dave'), mallory: s('mallory'), trent: s('trent') };
    this.homeSet = signerSet([this.signers.alice, this.signers.bob, this.signers.carol], 2);
  }

  get url(): string {
    return this.reg.url;
  }

  /** The server's log lines at warn and above (an unexpected error is logged there), newest last. */
  readonly serverErrors: string[] = [];

  async start(config: Partial<Config> = {}): Promise<void> {
    const { alice, bob, carol, dave } = this.signers;
    const logger = pino({ level: 'warn' }, { write: (line: string) => void this.serverErrors.push(line.slice(0, 4000)) });
    this.reg = await startTestRegistry(genesisRecord(REGISTRY_ID, [alice, bob, carol, dave], 2), { config, logger });
    await this.refresh();
    // dave leaves: his signatures are then those of a removed signer (SPEC §9 audits them).
    await this.commit([setSigners(this.homeSet)]);
    const seeded: Op[] = [];
    for (let i = 0; i < 48; i++) {
      const kind = KINDS[i % KINDS.length]!;
      const id = [`svc-${i}`, `node-${i}@eu-west-1`, `region/${i}`, `place:${i}/a.b_c-d`][i % 4]!;
      const labels: Record<string, string> = { region: ['eu-west', 'us-east', 'ap-south'][i % 3]!, status: i % 5 ? 'online' : 'offline' };
      if (i % 2) labels.weight = String(i * 7);
      if (i % 3 === 0) labels['team/owner'] = `team-${i % 4}`;
      const op = put(
        id,
        labels,
        { addr: `10.0.0.${i}`, port: 8000 + i, caps: ['x', `c${i}`], nested: { deep: { n: i, ok: i % 2 === 0 } } },
        kind,
      );
      // Some have expired, some will.
      if (i % 7 === 0) (op as { descriptor: { expires_at?: string } }).descriptor.expires_at = new Date(Date.now() - 60_000).toISOString();
      if (i % 11 === 0)
        (op as { descriptor: { expires_at?: string } }).descriptor.expires_at = new Date(Date.now() + 86_400_000).toISOString();
      seeded.push(op);
    }
    seeded.push(put('unicode', { status: 'online', tier: 'gold' }, { text: 'é😀\u202e', empty: {}, list: [] }));
    await this.commit(seeded);
    // A proposal that expires: approvals of it answer 410 once signed, 422 when forged.
    const expiring = await this.propose([put('never-1')], 400);
    // The event is the clock passing the proposal's own expires_at: wait for that instant, then
    // settle it through the writer (what the service's once-a-second sweep does), not by polling.
    const stored = await request<{ payload: { expires_at: string } }>(this.url, 'GET', `/registry/proposals/${expiring}`);
    await delay(Math.max(0, Date.parse(stored.json.payload.expires_at) - Date.now() + 1));
    await this.reg.writer.expireNow();
    const settled = await request<{ status: string }>(this.url, 'GET', `/registry/proposals/${expiring}`);
    if (settled.json.status !== 'expired') throw new Error(`proposal ${expiring} did not expire: ${settled.text}`);
    this.proposals.pending = this.proposals.pending.filter((p) => p !== expiring);
    this.proposals.expired.push(expiring);
    await this.syncAudit();
  }

  async refresh(): Promise<HeadJson> {
    const r = await request<HeadJson>(this.url, 'GET', '/registry/head');
    if (r.status !== 200) throw new Error(`GET /registry/head answered ${r.status}`);
    this.head = r.json;
    return r.json;
  }

  /** Signs with every signer the campaign holds among the current set and the proposed one. */
  private approvals(id: string, ops: Op[], only?: TestSigner[]): Approval[] {
    const proposed = ops.flatMap((o) => (o.op === 'set_signers' ? o.signer_set.signers.map((s) => s.id) : []));
    const electorate = new Set([...this.head.signer_set.signers.map((s) => s.id), ...proposed]);
    const held = Object.values(this.signers).filter((s) => electorate.has(s.id) && this.keyMatches(s));
    return (only ?? held).map((s) => ({ signer_id: s.id, sig: signApproval(s.secretKey, id) }));
  }

  private keyMatches(s: TestSigner): boolean {
    const inSet = this.head.signer_set.signers.find((x) => x.id === s.id);
    return !inSet || inSet.public_key === s.publicKey;
  }

  /** A commit made on purpose; the signer set is put back to the home set if a signed request
   * of the campaign changed it. Every pending proposal goes stale. */
  async commit(ops: Op[]): Promise<number> {
    await this.refresh();
    const home = this.head.signer_set;
    const drifted = canonicalJson(home) !== canonicalJson(this.homeSet) && !ops.some((o) => o.op === 'set_signers');
    const all = drifted ? [...ops, setSigners(this.homeSet)] : ops;
    const p = proposal(REGISTRY_ID, this.head, all, { reason: `campaign step ${++this.step}` });
    const id = hashOf(p);
    this.allowed.add(id);
    const r = await request<{ status: string; version: number }>(this.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: this.approvals(id, all),
    });
    if (r.status !== 201 || r.json.status !== 'committed')
      throw new Error(`the campaign's commit was refused: ${r.status} ${r.text.slice(0, 400)}`);
    this.proposals.stale.push(...this.proposals.pending);
    this.proposals.pending = [];
    this.proposals.committed.push(id);
    await this.refresh();
    return r.json.version;
  }

  /** A pending proposal approved by alice alone (the threshold is 2). */
  async propose(ops: Op[], ttlMs = 3_600_000): Promise<string> {
    await this.refresh();
    const p = proposal(REGISTRY_ID, this.head, ops, { ttlMs, reason: `campaign step ${++this.step}` });
    const id = hashOf(p);
    this.allowed.add(id);
    const r = await request<{ status: string }>(this.url, 'POST', '/registry/proposals', {
      payload: p,
      approvals: this.approvals(id, ops, [this.signers.alice]),
    });
    if (r.status !== 201 || r.json.status !== 'pending')
      throw new Error(`the campaign's proposal was refused: ${r.status} ${r.text.slice(0, 400)}`);
    this.proposals.pending.push(id);
    return id;
  }

  /** Moves the head on: a commit that changes a few descriptors (the campaign's stale
   * proposal goes stale with it), then two fresh pending proposals. */
  async nextSegment(n: number): Promise<void> {
    // A signed request may have committed another threshold: the set comes back first, or
    // alice's approval alone would commit the proposals meant to stay pending.
    await this.refresh();
    if (canonicalJson(this.head.signer_set) !== canonicalJson(this.homeSet)) await this.commit([put(`restore-${n}`)]);
    await this.propose([put(`stale-${n}`)]);
    // The signed requests of the phase before may have deleted it already.
    const previous = n > 0 && (await request(this.url, 'GET', `/registry/descriptors/seg-${n - 1}?include_expired=true`)).status === 200;
    await this.commit([put(`seg-${n}`, { region: 'eu-west', status: 'online' }, { n }), ...(previous ? [del(`seg-${n - 1}`)] : [])]);
    await this.propose([put(`pending-${n}-a`)]);
    await this.propose([put(`pending-${n}-b`), put('svc-0', { status: 'online' })]);
    await this.syncAudit();
  }

  /** What the generators know of the registry now. */
  async ctx(): Promise<Ctx> {
    const head = await this.refresh();
    const list = await request<{ items: { id: string }[]; next_cursor: string | null }>(
      this.url,
      'GET',
      '/registry/head/descriptors?include_expired=true&limit=1000',
    );
    const cursorOf = async (path: string) => (await request<{ next_cursor: string | null }>(this.url, 'GET', path)).json.next_cursor;
    const listingCursors = (
      await Promise.all([
        cursorOf('/registry/head/descriptors?limit=3'),
        cursorOf('/registry/head/descriptors?limit=2&kind=service'),
        cursorOf(`/registry/head/descriptors?limit=2&filter=${encodeURIComponent("labels.status == 'online'")}`),
        cursorOf(`/registry/${head.version}/descriptors?limit=5&include_expired=true`),
        cursorOf(`/registry/${Math.max(0, head.version - 1)}/descriptors?limit=1`),
      ])
    ).filter((c): c is string => typeof c === 'string');
    const proposalCursors = (
      await Promise.all([cursorOf('/registry/proposals?limit=1'), cursorOf('/registry/proposals?limit=2&status=stale')])
    ).filter((c): c is string => typeof c === 'string');
    const etags = await Promise.all(
      ['/registry/head', '/registry/0', `/registry/descriptors/${list.json.items[1]?.id ?? 'x'}`].map(
        async (p) => (await request(this.url, 'GET', p)).headers.get('etag') ?? '"x"',
      ),
    );
    const { alice, bob, carol, dave, mallory, trent } = this.signers;
    const foreignSigs: Approval[] = [];
    for (let i = 0; i < 6; i++) {
      const other = hashOf({ other: i, seed: this.seed });
      for (const s of [alice, bob, carol, dave, mallory, trent])
        foreignSigs.push({ signer_id: s.id, sig: signApproval(s.secretKey, other) });
    }
    return {
      registryId: REGISTRY_ID,
      head: { version: head.version, hash: head.hash },
      now: Date.now(),
      ids: list.json.items.map((i) => i.id),
      labelKeys: LABEL_KEYS,
      kinds: KINDS,
      proposals: structuredClone(this.proposals),
      listingCursors,
      proposalCursors,
      etags,
      signers: { current: [alice, bob, carol], removed: [dave], strangers: [mallory, trent] },
      signerSet: head.signer_set,
      foreignSigs,
    };
  }

  /** Audit events after the ones seen so far; marks them seen. */
  async newAuditEvents(): Promise<AuditEvent[]> {
    const r = await request<{ events: AuditEvent[] }>(this.url, 'GET', `/registry/audit?from_seq=${this.auditCount + 1}&limit=1000`);
    if (r.status !== 200) throw new Error(`GET /registry/audit answered ${r.status}`);
    this.auditCount += r.json.events.length;
    return r.json.events;
  }

  async syncAudit(): Promise<void> {
    while ((await this.newAuditEvents()).length);
  }

  /** Why these audit events could not come from the campaign's own and signed requests. */
  unexplained(events: AuditEvent[]): string[] {
    const known = new Set(['alice', 'bob', 'carol', 'dave']);
    return events.flatMap((e) => {
      const problems: string[] = [];
      if (e.proposal_id !== undefined && !this.allowed.has(e.proposal_id))
        problems.push(`names proposal ${e.proposal_id}, which no signed request carried`);
      if (e.kind === 'approval_refused') {
        if (e.signer_id === undefined || !known.has(e.signer_id))
          problems.push(`audits a refusal of ${e.signer_id}, who never signed for this registry`);
        if (e.reason === BAD_SIGNATURE) problems.push('audits a signature that does not verify');
      }
      return problems.map((p) => `audit event ${e.seq} (${e.kind}): ${p}`);
    });
  }

  /** The whole log and the whole audit log, as an auditor checks them. */
  async verifyChains(): Promise<{ commits: number; events: number }> {
    const head = await this.refresh();
    let prev: string | null = null;
    for (let v = 0; v <= head.version; v++) {
      const r = await request<CommitRecord>(this.url, 'GET', `/registry/${v}`);
      if (r.status !== 200) throw new Error(`GET /registry/${v} answered ${r.status}`);
      const hash = hashBytes(Buffer.from(r.text));
      if (r.headers.get('etag') !== `"${hash}"`) throw new Error(`version ${v}: its ETag is not the hash of its bytes`);
      if (hashOf(r.json) !== hash) throw new Error(`version ${v} is not served as canonical JSON`);
      const record = r.json;
      if (record.version !== v || record.prev_hash !== prev) throw new Error(`version ${v}: prev_hash ${record.prev_hash} is not ${prev}`);
      if (v > 0) {
        const payload = record.payload as { base_version: number; base_hash: string };
        if (payload.base_version !== v - 1 || payload.base_hash !== prev) throw new Error(`version ${v}: its base is not version ${v - 1}`);
        if (!this.allowed.has(record.payload_hash))
          throw new Error(`version ${v} commits ${record.payload_hash}, which no signed request carried`);
      }
      prev = hash;
    }
    if (prev !== head.hash) throw new Error(`the head hash ${head.hash} is not the last record's ${prev}`);
    const events = await readAudit(this.url);
    checkAuditChain(events);
    const problems = this.unexplained(events);
    if (problems.length) throw new Error(problems.slice(0, 20).join('\n'));
    return { commits: head.version + 1, events: events.length };
  }
}
