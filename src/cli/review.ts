// `registry review`, and the review `registry approve` shows before it signs. Nothing the
// registry says about a proposal is taken on trust where it can be checked here: the payload
// is hashed on this machine and must hash to the id asked for, it must name the registry the
// signer expects, and its base must be the head. Then what it would change is shown against
// the base: descriptors added, removed and changed field by field, the signer set with its
// thresholds, its expiry and reason. What cannot be checked here (the approvals the registry
// says it holds, the descriptors it says the base has) is labelled as the registry's word.
import { canonicalJson, HASH_RE, hashOf, parseTime } from '../core/encoding.js';
import { DEFAULT_PROPOSAL_TTL_MS, setSignersOf } from '../core/proposal.js';
import { ProposalPayload, type Descriptor, type Op, type SignerSet } from '../core/schemas.js';
import { keyOf, type Electorate } from '../core/signers.js';
import { check } from '../core/validate.js';
import { UsageError } from '../errors.js';
import type { HeadJson, ProposalJson, RegistryApi } from './api.js';
import { CliError, EXIT } from './exit.js';
import { shown, shownJson } from './io.js';

export type Verdict = 'pending' | 'stale' | 'committed' | 'expired';

export interface Review {
  /** The proposal id: the hash of the payload, computed here. */
  id: string;
  payload: ProposalPayload;
  /** Where the registry says the proposal stands. */
  view: ProposalJson;
  head: HeadJson;
  registryId: string;
  verdict: Verdict;
  /** The review as shown, line by line. */
  lines: string[];
}

/** The full id of a proposal given by its id or by a unique prefix of a pending one's. */
export async function resolveProposalId(api: RegistryApi, given: string): Promise<string> {
  if (HASH_RE.test(given)) return given;
  const hex = given.startsWith('b3:') ? given.slice(3) : given;
  if (!/^[0-9a-f]{1,64}$/.test(hex))
    throw new UsageError(`${given} is not a proposal id: give its id (b3: and 64 hex characters) or the start of a pending proposal's`);
  if (hex.length < 4) throw new UsageError(`${given} is too short to pick a proposal: give at least 4 hex characters`);
  const prefix = `b3:${hex}`;
  const { items } = await api.proposals('pending', Number.MAX_SAFE_INTEGER);
  const matches = items.filter((p) => p.proposal_id.startsWith(prefix));
  if (matches.length === 1) return matches[0]!.proposal_id;
  if (matches.length === 0)
    throw new CliError(
      `no pending proposal's id starts with ${prefix}; a proposal that is no longer pending needs its full id (registry proposals --url ${api.url})`,
      EXIT.FAILURE,
    );
  throw new UsageError(
    `${prefix} is the start of ${matches.length} pending proposals (${matches.map((p) => p.proposal_id).join(', ')}): give more of it`,
  );
}

/** Everything a signer needs to decide, fetched from `api` and checked here. */
export async function reviewProposal(
  api: RegistryApi,
  given: string,
  expectedRegistryId: string | undefined,
  now = Date.now(),
): Promise<Review> {
  const asked = await resolveProposalId(api, given);
  const [view, info, head] = await Promise.all([api.proposal(asked), api.info(), api.head()]);

  // 1. The payload is the one the id names: hashed here, never taken from the registry.
  const payload = check(ProposalPayload, view.payload, 'the proposal the registry served', (m) => new CliError(m, EXIT.HASH_MISMATCH));
  const id = hashOf(payload);
  if (id !== asked)
    throw new CliError(
      `the registry at ${api.url} served a payload that hashes to ${id}, not ${asked}: it is not the proposal asked for; nothing was signed`,
      EXIT.HASH_MISMATCH,
    );

  // 2. The registry is the one the signer expects.
  const registryId = expectedRegistryId ?? info.registry_id;
  if (info.registry_id !== registryId)
    throw new CliError(`the registry at ${api.url} is ${info.registry_id}, not ${registryId} (--registry-id)`, EXIT.WRONG_REGISTRY);
  if (payload.registry_id !== registryId)
    throw new CliError(
      `the proposal is for registry ${payload.registry_id}, not ${registryId}${expectedRegistryId ? ' (--registry-id)' : ` (the registry at ${api.url})`}: an approval would count there, not here`,
      EXIT.WRONG_REGISTRY,
    );

  // 3. Where it stands: committed, expired, stale (its base is not the head) or pending.
  const expiresAt =
    payload.expires_at === undefined ? parseTime(payload.created_at) + DEFAULT_PROPOSAL_TTL_MS : parseTime(payload.expires_at);
  const onHead = payload.base_version === head.version && payload.base_hash === head.hash;
  let verdict: Verdict =
    view.status === 'committed'
      ? 'committed'
      : view.status === 'expired' || now >= expiresAt
        ? 'expired'
        : view.status === 'stale' || !onHead
          ? 'stale'
          : 'pending';

  // 4. What it changes, against its base.
  let changes: string[];
  if (verdict === 'pending') {
    const ids = [...new Set(payload.ops.flatMap((op) => (op.op === 'put' ? [op.descriptor.id] : op.op === 'delete' ? [op.id] : [])))];
    const { versions, found } = ids.length
      ? await api.lookup(ids)
      : { versions: new Set([head.version]), found: new Map<string, Descriptor>() };
    if (versions.size === 1 && versions.has(payload.base_version)) changes = describeChanges(payload.ops, found, head.signer_set);
    else {
      // A commit landed while the review was being fetched: the base is no longer the head.
      verdict = 'stale';
      changes = describeChanges(payload.ops, undefined, undefined);
    }
  } else if (verdict === 'committed' && view.version !== undefined) {
    const diff = await api.diff(payload.base_version, view.version);
    const before = new Map<string, Descriptor>([...diff.removed, ...diff.changed.map((c) => c.before)].map((d) => [d.id, d]));
    // A put the diff does not list, neither added nor changed, put the same descriptor again.
    const added = new Set(diff.added.map((d) => d.id));
    for (const op of payload.ops)
      if (op.op === 'put' && !added.has(op.descriptor.id) && !before.has(op.descriptor.id)) before.set(op.descriptor.id, op.descriptor);
    changes = describeChanges(payload.ops, before, diff.signer_set?.before ?? undefined);
  } else changes = describeChanges(payload.ops, undefined, undefined);

  const lines = [
    `proposal  ${id}`,
    `          (the payload was hashed here and matches this id)`,
    `registry  ${registryId}${expectedRegistryId ? ' (as expected: --registry-id)' : ` (as the registry at ${api.url} says; pass --registry-id ${registryId} to check it)`}`,
    `base      version ${payload.base_version} ${payload.base_hash}${onHead ? ' (the head)' : `; the head is version ${head.version} ${head.hash}`}`,
    `created   ${payload.created_at}`,
    `expires   ${formatExpiry(expiresAt, now)}`,
    `reason    ${payload.reason === undefined ? '(none given)' : shown(payload.reason)}`,
    `status    ${statusLine(view, verdict)}`,
    '',
    ...changes,
    '',
    verdictLine(verdict, payload, head, view),
  ];
  return { id, payload, view, head, registryId, verdict, lines };
}

/** The refusal of a review whose proposal cannot be approved, with its exit code. */
export function verdictError(review: Review): CliError | undefined {
  const { verdict, view, id } = review;
  if (verdict === 'committed')
    return new CliError(`${id} is already committed (version ${view.version}): nothing was signed`, EXIT.COMMITTED);
  if (verdict === 'expired') return new CliError(`${id} has expired: nothing was signed; propose it again`, EXIT.EXPIRED);
  if (verdict === 'stale')
    return new CliError(
      `${id} is stale: its base (version ${review.payload.base_version}) is not the head (version ${review.head.version}); nothing was signed. ` +
        'It can never commit: propose the change again on the head',
      EXIT.STALE,
    );
  return undefined;
}

function statusLine(view: ProposalJson, verdict: Verdict): string {
  const approvers = view.approvals.map((a) => a.signer_id).join(', ') || 'none';
  const counted = `${view.approvals.length} approval${view.approvals.length === 1 ? '' : 's'} (${approvers}), ${view.threshold} needed${
    view.proposed_threshold === undefined ? '' : `, and ${view.proposed_threshold} of the proposed signers`
  }; as the registry reports`;
  if (verdict === 'committed') return `committed as version ${view.version}; ${counted}`;
  return `${verdict === 'pending' ? 'pending' : verdict}: ${counted}`;
}

function verdictLine(verdict: Verdict, payload: ProposalPayload, head: HeadJson, view: ProposalJson): string {
  switch (verdict) {
    case 'pending':
      return 'PENDING on the current head: it can be approved (exit 0)';
    case 'committed':
      return `COMMITTED as version ${view.version}: there is nothing to approve (exit ${EXIT.COMMITTED})`;
    case 'expired':
      return `EXPIRED: it can no longer be approved (exit ${EXIT.EXPIRED})`;
    case 'stale':
      return `STALE: its base, version ${payload.base_version}, is not the head (version ${head.version}); it can never commit: propose it again on the head (exit ${EXIT.STALE})`;
  }
}

export function formatExpiry(expiresAt: number, now: number): string {
  const at = new Date(expiresAt).toISOString();
  const left = expiresAt - now;
  if (left <= 0) return `${at} (expired)`;
  const minutes = Math.floor(left / 60_000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const span = days ? `${days} d ${hours} h` : hours ? `${hours} h ${minutes % 60} min` : `${minutes} min`;
  return `${at} (in ${span})`;
}

// ---- the changes, shown field by field ------------------------------------------------------

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const segment = (key: string): string => (IDENT.test(key) ? `.${key}` : `[${shownJson(key)}]`);

/** A descriptor as (field, value) pairs: kind, each label, each leaf of the body (objects are
 * walked, arrays and empty objects are values), expires_at. */
export function fieldsOf(d: Descriptor): Map<string, unknown> {
  const fields = new Map<string, unknown>([['kind', d.kind]]);
  for (const [k, v] of Object.entries(d.labels)) fields.set(`labels${segment(k)}`, v);
  const walk = (value: unknown, path: string): void => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length) {
      for (const [k, v] of Object.entries(value)) walk(v, `${path}${segment(k)}`);
    } else fields.set(path, value);
  };
  walk(d.body, 'body');
  if (d.expires_at !== undefined) fields.set('expires_at', d.expires_at);
  return fields;
}

const pad = (rows: [string, string][]): string[] => {
  const width = Math.min(40, Math.max(0, ...rows.map(([f]) => f.length)));
  return rows.map(([f, v]) => `      ${shown(f).padEnd(width)}  ${v}`);
};

const allFields = (d: Descriptor): string[] => pad([...fieldsOf(d)].map(([f, v]) => [f, shownJson(v)]));

/** Field-by-field changes from `a` to `b`. */
export function fieldChanges(a: Descriptor, b: Descriptor): string[] {
  const before = fieldsOf(a);
  const after = fieldsOf(b);
  const rows: [string, string][] = [];
  for (const [f, v] of after) {
    if (!before.has(f)) rows.push([f, `added ${shownJson(v)}`]);
    else if (canonicalJson(before.get(f)) !== canonicalJson(v)) rows.push([f, `${shownJson(before.get(f))} → ${shownJson(v)}`]);
  }
  for (const [f, v] of before) if (!after.has(f)) rows.push([f, `removed (was ${shownJson(v)})`]);
  // kind, then labels, body and expires_at, each in field order.
  const rank = (f: string): number => (f === 'kind' ? 0 : f.startsWith('labels') ? 1 : f.startsWith('body') ? 2 : 3);
  rows.sort(([a], [b]) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
  return pad(rows);
}

/** What `ops` do, against the descriptors of the base (`before`; undefined: unknown, the ops
 * alone are shown) and its signer set. */
export function describeChanges(
  ops: readonly Op[],
  before: ReadonlyMap<string, Descriptor> | undefined,
  signers: SignerSet | undefined,
): string[] {
  const out: string[] = [];
  const puts = ops.filter((o) => o.op === 'put').length;
  const deletes = ops.filter((o) => o.op === 'delete').length;
  const rotation = ops.find((o) => o.op === 'set_signers');
  const counts = [
    `${puts} put${puts === 1 ? '' : 's'}`,
    `${deletes} delete${deletes === 1 ? '' : 's'}`,
    ...(rotation ? ['a new signer set'] : []),
  ];
  out.push(
    before
      ? `changes against the base (${counts.join(', ')}):`
      : `ops (${counts.join(', ')}; the base is not the head, so they are shown without its descriptors):`,
  );
  for (const op of ops) {
    if (op.op === 'put') {
      const d = op.descriptor;
      const old = before?.get(d.id);
      if (!before) out.push(`  put ${shown(d.id)}`, ...allFields(d));
      else if (!old) out.push(`  + ${shown(d.id)}: added`, ...allFields(d));
      else if (canonicalJson(old) === canonicalJson(d)) out.push(`  = ${shown(d.id)}: unchanged (the same descriptor again)`);
      else out.push(`  ~ ${shown(d.id)}: changed`, ...fieldChanges(old, d));
    } else if (op.op === 'delete') {
      const old = before?.get(op.id);
      if (!before) out.push(`  delete ${shown(op.id)}`);
      else if (!old) out.push(`  ! delete ${shown(op.id)}: not in the base; the registry will refuse this proposal`);
      else out.push(`  - ${shown(op.id)}: removed`, ...allFields(old));
    }
  }
  if (rotation) out.push('', ...describeSigners(signers, rotation.signer_set));
  return out;
}

/** A signer-set change: thresholds, and each signer added, removed or kept, with full keys. */
export function describeSigners(before: SignerSet | undefined, after: SignerSet): string[] {
  const of = (s: SignerSet): string => `${s.threshold} of ${s.signers.length}`;
  if (!before) return [`signer set: becomes ${of(after)}:`, ...after.signers.map((s) => `    ${s.id.padEnd(12)} ${s.public_key}`)];
  const out = [`signer set: threshold ${of(before)} → ${of(after)}`];
  const old = new Map(before.signers.map((s) => [s.id, s.public_key]));
  const next = new Map(after.signers.map((s) => [s.id, s.public_key]));
  for (const s of after.signers) {
    const was = old.get(s.id);
    if (was === undefined) out.push(`  + ${s.id.padEnd(12)} ${s.public_key}  added`);
    else if (was !== s.public_key) out.push(`  ~ ${s.id.padEnd(12)} ${was} → ${s.public_key}  NEW KEY (the registry refuses this)`);
    else out.push(`    ${s.id.padEnd(12)} ${s.public_key}  kept`);
  }
  for (const s of before.signers) if (!next.has(s.id)) out.push(`  - ${s.id.padEnd(12)} ${s.public_key}  removed`);
  return out;
}

// ---- the signer's key against the registry --------------------------------------------------

/** `a` and `b` shortened to the first 4, 8, ... hex characters that tell them apart. */
function distinguish(a: string, b: string): [string, string] {
  let n = 4;
  while (n < a.length && a.slice(0, n) === b.slice(0, n)) n += 4;
  const short = (k: string) => (n >= k.length ? k : `${k.slice(0, n)}…`);
  return [short(a), short(b)];
}

/** Why a key cannot approve on this registry (`electorate`: the signer set at the head, and the
 * proposed one for a rotation), or undefined when it is that signer's key. */
export function keyProblem(electorate: Electorate, signerId: string, publicKey: string, registryId: string): string | undefined {
  const expected = keyOf(electorate, signerId);
  if (expected === undefined) {
    const names = electorate.current.signers.map((s) => s.id).join(', ');
    const proposed = electorate.proposed ? `; the proposed set: ${electorate.proposed.signers.map((s) => s.id).join(', ')}` : '';
    return `${signerId} is not a signer on registry ${registryId} (its signers: ${names}${proposed}); check --key, or name the signer with --id`;
  }
  if (expected === publicKey) return undefined;
  const [mine, theirs] = distinguish(publicKey, expected);
  return `this key's public key ${mine} is not ${signerId}'s key on registry ${registryId} (${theirs}); check --key`;
}

/** The signer id for a key: --id, else the key file's, else the signer whose key it is. */
export function signerIdFor(electorate: Electorate, given: string | undefined, publicKey: string, keyPath: string): string {
  if (given) return given;
  const sets = [electorate.current, ...(electorate.proposed ? [electorate.proposed] : [])];
  const found = sets.flatMap((s) => s.signers).find((s) => s.public_key === publicKey);
  if (found) return found.id;
  throw new CliError(`--key ${keyPath} names no signer_id and its key is no signer's on this registry; pass --id`, EXIT.WRONG_KEY);
}

export const electorateOf = (head: HeadJson, payload?: ProposalPayload): Electorate => ({
  current: head.signer_set,
  proposed: payload ? setSignersOf(payload) : undefined,
});
