// Commit and genesis records (SPEC §4) and the checks a replay makes on them.
import type { SignatureCheck } from './approvals.js';
import { ApprovalVerifier } from './crypto.js';
import { hashOf, parseTime } from './encoding.js';
import { IntegrityError } from './errors.js';
import { CommitRecord, type Approval, type GenesisPayload, type ProposalPayload, type SignerSet } from './schemas.js';
import { hasQuorum, signerSetProblem } from './signers.js';
import { RegistryState } from './state.js';
import { check } from './validate.js';

export const sortApprovals = (approvals: Iterable<Approval>): Approval[] =>
  [...approvals].sort((a, b) => (a.signer_id < b.signer_id ? -1 : a.signer_id > b.signer_id ? 1 : 0));

export interface CommitParts {
  registryId: string;
  version: number;
  prevHash: string | null;
  payload: ProposalPayload | GenesisPayload;
  payloadHash: string;
  approvals: Iterable<Approval>;
  stateRoot: string;
  committedAt: string;
}

export function buildCommitRecord(p: CommitParts): CommitRecord {
  return {
    type: 'registry.commit',
    schema_version: 1,
    registry_id: p.registryId,
    version: p.version,
    prev_hash: p.prevHash,
    payload: p.payload,
    payload_hash: p.payloadHash,
    approvals: sortApprovals(p.approvals),
    state_root: p.stateRoot,
    committed_at: p.committedAt,
  };
}

export const isGenesisPayload = (p: CommitRecord['payload']): p is GenesisPayload => p.type === 'registry.genesis';

export function buildGenesisPayload(registryId: string, signerSet: SignerSet, createdAt: string): GenesisPayload {
  return { type: 'registry.genesis', schema_version: 1, registry_id: registryId, signer_set: signerSet, created_at: createdAt };
}

export interface CheckedGenesis {
  record: CommitRecord;
  payload: GenesisPayload;
  hash: string;
}

const integrity = (message: string): IntegrityError => new IntegrityError(message, 0);

/** Checks everything a genesis record claims: shape, payload hash, signer set, approvals
 * meeting the genesis set's own threshold, and the empty state root. A failure is an
 * IntegrityError: a genesis is the trust root, never a request. */
export function checkGenesisRecord(value: unknown, verifier: SignatureCheck = new ApprovalVerifier()): CheckedGenesis {
  const record = check(CommitRecord, value, 'the genesis record', integrity);
  const payload = record.payload;
  if (!isGenesisPayload(payload)) throw integrity('the genesis record carries no registry.genesis payload');
  if (record.version !== 0 || record.prev_hash !== null) throw integrity('the genesis record must be version 0 with prev_hash null');
  if (record.registry_id !== payload.registry_id) throw integrity('the genesis record and its payload name different registries');
  if (Number.isNaN(parseTime(payload.created_at))) throw integrity('the genesis record has an invalid time');
  // SPEC §4: signers who assemble the same approvals get the same record, byte for byte.
  if (record.committed_at !== payload.created_at) {
    throw integrity(`the genesis committed_at (${record.committed_at}) must be its payload's created_at (${payload.created_at})`);
  }
  const payloadHash = hashOf(payload);
  if (record.payload_hash !== payloadHash) throw integrity(`the genesis payload hashes to ${payloadHash}, not ${record.payload_hash}`);
  const set = payload.signer_set;
  const problem = signerSetProblem(set);
  if (problem) throw integrity(`the genesis signer set is not valid: ${problem}`);
  checkApprovals(record.approvals, { current: set }, payloadHash, verifier);
  const root = new RegistryState(set).root();
  if (record.state_root !== root) throw integrity(`the genesis state_root should be ${root}`);
  return { record, payload, hash: hashOf(record) };
}

/** Approvals of a record: listed once each in signer order, each valid under the electorate,
 * reaching quorum. A failure is an IntegrityError naming `version`. */
export function checkApprovals(
  approvals: readonly Approval[],
  electorate: { current: SignerSet; proposed?: SignerSet | undefined },
  payloadHash: string,
  verifier: SignatureCheck,
  version = 0,
): void {
  const fail = (why: string): never => {
    throw new IntegrityError(`version ${version}: ${why}`, version);
  };
  const keys = new Map([...(electorate.proposed?.signers ?? []), ...electorate.current.signers].map((s) => [s.id, s.public_key]));
  approvals.forEach((a, i) => {
    if (i > 0 && !(approvals[i - 1]!.signer_id < a.signer_id)) fail('approvals must be sorted by signer_id, once each');
    const key = keys.get(a.signer_id);
    if (key === undefined) fail(`approval by ${a.signer_id}, who is not a signer`);
    else if (!verifier.verify(key, payloadHash, a.sig)) fail(`the approval by ${a.signer_id} does not verify`);
  });
  if (!hasQuorum(electorate, new Set(approvals.map((a) => a.signer_id)))) fail('the approvals do not reach quorum');
}

/** The links a replay checks between a record and the one before it. Signatures and the
 * payload hash are the full verifier's work (they cost a canonicalization per record). */
export function checkLink(record: CommitRecord, prev: { version: number; hash: string }, registryId: string): void {
  const payload = record.payload;
  const fail = (why: string): never => {
    throw new IntegrityError(`version ${record.version}: ${why}`, record.version);
  };
  if (record.version !== prev.version + 1) fail(`follows version ${prev.version}`);
  if (record.registry_id !== registryId) fail(`names registry ${record.registry_id}`);
  if (record.prev_hash !== prev.hash) fail(`prev_hash ${record.prev_hash} is not the hash of version ${prev.version} (${prev.hash})`);
  if (isGenesisPayload(payload)) fail('carries a genesis payload');
  else if (payload.base_version !== prev.version || payload.base_hash !== prev.hash) fail('its payload is based on another head');
}

/** The genesis record for a payload and the approvals collected for it. It is committed at
 * its payload's created_at (SPEC §4), so assembling it twice gives the same bytes. */
export function assembleGenesis(payload: GenesisPayload, approvals: Iterable<Approval>): CommitRecord {
  return buildCommitRecord({
    registryId: payload.registry_id,
    version: 0,
    prevHash: null,
    payload,
    payloadHash: hashOf(payload),
    approvals,
    stateRoot: new RegistryState(payload.signer_set).root(),
    committedAt: payload.created_at,
  });
}
