// Test fixtures built with the project's own signing helpers: keys, genesis records, proposals.
import { generateKeyPair, signApproval } from '../../src/core/crypto.js';
import { formatTime, hashOf } from '../../src/core/encoding.js';
import { assembleGenesis, buildGenesisPayload } from '../../src/core/records.js';
import type { Approval, CommitRecord, Op, ProposalPayload, SignerSet } from '../../src/core/schemas.js';

export interface TestSigner {
  id: string;
  publicKey: string;
  secretKey: string;
}

export function signers(...ids: string[]): TestSigner[] {
  return ids.map((id) => ({ id, ...generateKeyPair() }));
}

export function signerSet(list: TestSigner[], threshold: number): SignerSet {
  const sorted = [...list].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { threshold, signers: sorted.map((s) => ({ id: s.id, public_key: s.publicKey })) };
}

export const approve = (signer: TestSigner, payloadHash: string): Approval => ({
  signer_id: signer.id,
  sig: signApproval(signer.secretKey, payloadHash),
});

export function genesisRecord(registryId: string, list: TestSigner[], threshold: number, now = Date.now()): CommitRecord {
  const payload = buildGenesisPayload(registryId, signerSet(list, threshold), formatTime(now));
  const hash = hashOf(payload);
  return assembleGenesis(
    payload,
    list.slice(0, threshold).map((s) => approve(s, hash)),
  );
}

export function proposal(
  registryId: string,
  base: { version: number; hash: string },
  ops: Op[],
  options: { now?: number; ttlMs?: number; reason?: string } = {},
): ProposalPayload {
  const now = options.now ?? Date.now();
  return {
    type: 'registry.proposal',
    schema_version: 1,
    registry_id: registryId,
    base_version: base.version,
    base_hash: base.hash,
    ops,
    reason: options.reason ?? 'test',
    created_at: formatTime(now),
    expires_at: formatTime(now + (options.ttlMs ?? 3600_000)),
  };
}

export const put = (id: string, labels: Record<string, string> = {}, body: Record<string, unknown> = {}, kind = 'service'): Op => ({
  op: 'put',
  descriptor: { id, kind, labels, body },
});
export const del = (id: string): Op => ({ op: 'delete', id });
export const setSigners = (set: SignerSet): Op => ({ op: 'set_signers', signer_set: set });
