// The project's core against the committed test vectors (test/vectors/*.json), which an
// independent implementation of SPEC §1–§5 wrote (test/vectors/generate.mjs, `npm run vectors`).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ApprovalVerifier, publicKeyOf, publicKeyProblem, signApproval, verifyApprovalStrict } from '../../src/core/crypto.js';
import { blake3Digest, canonicalJson, hashOf, type Digest32 } from '../../src/core/encoding.js';
import { buildCommitRecord, checkApprovals, checkGenesisRecord, checkLink, isGenesisPayload } from '../../src/core/records.js';
import { CommitRecord, GenesisPayload, ProposalPayload, type Descriptor, type Op, type SignerSet } from '../../src/core/schemas.js';
import { signerSetProblem } from '../../src/core/signers.js';
import { planOps, RegistryState } from '../../src/core/state.js';
import { check } from '../../src/core/validate.js';
import { fastDigest } from '../../src/core/fast-digest.js';

const load = <T>(file: string): T => JSON.parse(readFileSync(new URL(`../vectors/${file}`, import.meta.url), 'utf8')) as T;

interface PayloadVector {
  name: string;
  payload: ProposalPayload | GenesisPayload;
  jcs: string;
  hash: string;
}
interface ApprovalVector {
  name: string;
  public_key: string;
  payload_hash: string;
  sig: string;
  valid: boolean;
  why?: string;
}
interface KeyVector {
  name: string;
  public_key: string;
  acceptable: boolean;
  why?: string;
}
interface RecordVector {
  name: string;
  record: CommitRecord;
  hash: string;
}
interface StateVector {
  name: string;
  signer_set: SignerSet;
  descriptors: Descriptor[];
  root: string;
  steps?: { name: string; ops: Op[]; root: string }[];
}

const payloads = load<{ vectors: PayloadVector[] }>('payload-hashes.json').vectors;
const approvals = load<{
  keys: { index: number; secret_key: string; public_key: string }[];
  vectors: ApprovalVector[];
  public_keys: KeyVector[];
}>('approvals.json');
const records = load<{ registry_id: string; records: RecordVector[] }>('records.json');
const states = load<{ vectors: StateVector[] }>('state-roots.json').vectors;

describe('vector files', () => {
  it('hold the cases the suite relies on', () => {
    expect(payloads.length).toBeGreaterThanOrEqual(6);
    expect(approvals.vectors.filter((v) => v.valid).length).toBeGreaterThanOrEqual(3);
    expect(approvals.vectors.filter((v) => !v.valid).length).toBeGreaterThanOrEqual(10);
    expect(approvals.vectors.filter((v) => !v.valid).every((v) => typeof v.why === 'string' && v.why.length > 0)).toBe(true);
    expect(records.records.length).toBeGreaterThanOrEqual(3);
    expect(states.some((s) => s.descriptors.length >= 600)).toBe(true);
  });
});

describe('payload hashes (SPEC §1, §3)', () => {
  it.each(payloads.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    expect(canonicalJson(v.payload)).toBe(v.jcs);
    expect(hashOf(v.payload)).toBe(v.hash);
    // The vectors are well-formed payloads, so the project's schemas accept them.
    if (v.payload.type === 'registry.genesis') check(GenesisPayload, v.payload, 'vector');
    else check(ProposalPayload, v.payload, 'vector');
  });
});

describe('approval signatures (SPEC §2)', () => {
  const cases = approvals.vectors.map((v) => [`${v.valid ? 'valid' : 'invalid'}: ${v.name}`, v] as const);

  it.each(cases)('node:crypto ApprovalVerifier — %s', (_name, v) => {
    expect(new ApprovalVerifier().verify(v.public_key, v.payload_hash, v.sig)).toBe(v.valid);
  });

  it.each(cases)('@noble strict verifyApprovalStrict — %s', (_name, v) => {
    expect(verifyApprovalStrict(v.public_key, v.payload_hash, v.sig)).toBe(v.valid);
  });

  it('one ApprovalVerifier (with its key cache) gives every answer, in order and again', () => {
    const verifier = new ApprovalVerifier();
    const expected = approvals.vectors.map((v) => v.valid);
    for (let round = 0; round < 2; round++) {
      expect(approvals.vectors.map((v) => verifier.verify(v.public_key, v.payload_hash, v.sig))).toEqual(expected);
    }
  });

  it('the project derives the same public keys and signs the same bytes (Ed25519 is deterministic)', () => {
    for (const key of approvals.keys) expect(publicKeyOf(key.secret_key)).toBe(key.public_key);
    const byKey = new Map(approvals.keys.map((k) => [k.public_key, k.secret_key]));
    // The first valid vectors are plain RFC 8032 signatures by a vector key.
    const plain = approvals.vectors.filter((v) => v.valid && v.name.startsWith('valid: key '));
    expect(plain.length).toBeGreaterThanOrEqual(3);
    for (const v of plain) expect(signApproval(byKey.get(v.public_key)!, v.payload_hash)).toBe(v.sig);
  });
});

describe('publicKeyProblem (SPEC §1, §3)', () => {
  it.each(approvals.public_keys.map((k) => [`${k.acceptable ? 'accepts' : 'refuses'} ${k.name}`, k] as const))('%s', (_name, k) => {
    const problem = publicKeyProblem(k.public_key);
    if (k.acceptable) expect(problem).toBeUndefined();
    else expect(problem).toEqual(expect.any(String));
  });

  it('refuses the public key of every invalid vector whose key is small-order, non-canonical or mixed-order', () => {
    const suspicious = approvals.vectors.filter((v) => /public key/.test(v.name) && !v.valid);
    expect(suspicious.length).toBeGreaterThanOrEqual(4);
    for (const v of suspicious) expect(publicKeyProblem(v.public_key), v.name).toEqual(expect.any(String));
  });
});

describe('commit records (SPEC §4)', () => {
  const [genesis, ...commits] = records.records;

  it('the genesis record hashes, checks and yields its own hash', () => {
    expect(hashOf(genesis!.record)).toBe(genesis!.hash);
    const checked = checkGenesisRecord(genesis!.record);
    expect(checked.hash).toBe(genesis!.hash);
    expect(checked.record.state_root).toBe(new RegistryState(checked.payload.signer_set).root());
  });

  it.each(commits.map((r) => [r.name, r] as const))('hash of %s', (_name, r) => {
    expect(hashOf(r.record)).toBe(r.hash);
    check(CommitRecord, r.record, 'vector');
  });

  it('the chain replays: links, payload hashes, approvals and state roots all check', () => {
    const payload = genesis!.record.payload;
    if (!isGenesisPayload(payload)) throw new Error('the first record is not a genesis');
    const state = new RegistryState(payload.signer_set);
    const verifier = new ApprovalVerifier();
    let prev = { version: 0, hash: genesis!.hash };
    for (const { record, hash } of commits) {
      checkLink(record, prev, records.registry_id);
      const p = record.payload;
      if (isGenesisPayload(p)) throw new Error('a genesis payload after version 0');
      expect(hashOf(p)).toBe(record.payload_hash);
      const delta = planOps(state, p.ops, record.version);
      const electorate = { current: state.signerSet, proposed: delta.signerSet };
      checkApprovals(record.approvals, electorate, record.payload_hash, verifier);
      expect(state.rootAfter(delta)).toBe(record.state_root);
      state.apply(delta);
      expect(state.root()).toBe(record.state_root);
      // The project's record builder gives the same record (approvals sorted by signer_id).
      const rebuilt = buildCommitRecord({
        registryId: record.registry_id,
        version: record.version,
        prevHash: record.prev_hash,
        payload: p,
        payloadHash: record.payload_hash,
        approvals: [...record.approvals].reverse(),
        stateRoot: record.state_root,
        committedAt: record.committed_at,
      });
      expect(hashOf(rebuilt)).toBe(hash);
      prev = { version: record.version, hash };
    }
    expect(prev.version).toBe(commits.length);
  });

  it('includes a rotation whose approvals come from both the current and the proposed set', () => {
    const rotation = commits.find((r) => !isGenesisPayload(r.record.payload) && r.record.payload.ops.some((o) => o.op === 'set_signers'));
    expect(rotation).toBeDefined();
  });
});

describe('state roots (SPEC §5)', () => {
  const digests: [string, () => Promise<Digest32>][] = [
    ['@noble BLAKE3', () => Promise.resolve(blake3Digest)],
    ['WebAssembly BLAKE3', fastDigest],
  ];
  const cases = digests.flatMap(([digestName, digest]) => states.map((s) => [`${s.name} (${digestName})`, s, digest] as const));

  it.each(cases)('%s', async (_name, s, makeDigest) => {
    expect(signerSetProblem(s.signer_set)).toBeUndefined();
    const state = new RegistryState(s.signer_set, await makeDigest());
    if (s.descriptors.length === 0) expect(state.root()).toBe(s.root);
    const delta = planOps(
      state,
      s.descriptors.map((descriptor): Op => ({ op: 'put', descriptor })),
      1,
    );
    expect(state.rootAfter(delta)).toBe(s.root);
    state.apply(delta);
    expect(state.root()).toBe(s.root);
    expect(state.size).toBe(s.descriptors.length);
    (s.steps ?? []).forEach((step, i) => {
      const stepDelta = planOps(state, step.ops, i + 2);
      expect(state.rootAfter(stepDelta), `${step.name} (rootAfter)`).toBe(step.root);
      state.apply(stepDelta);
      expect(state.root(), `${step.name} (root)`).toBe(step.root);
    });
  });

  it('the root does not depend on the order descriptors were put in, or how many commits it took', () => {
    const big = states.find((s) => s.descriptors.length >= 600)!;
    const state = new RegistryState(big.signer_set);
    const reversed = [...big.descriptors].reverse();
    for (let i = 0; i < reversed.length; i += 97) {
      const chunk = reversed.slice(i, i + 97).map((descriptor): Op => ({ op: 'put', descriptor }));
      state.apply(planOps(state, chunk, 1 + i / 97));
    }
    expect(state.root()).toBe(big.root);
  });
});
