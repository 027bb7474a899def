// The materialized head: the descriptor state, the signer sets in force over time, and the
// response bytes of the head and of recent versions, computed once per commit.
import { canonicalJson, type Digest32 } from '../core/encoding.js';
import type { CommitRecord, SignerSet } from '../core/schemas.js';
import { RegistryState, type Delta } from '../core/state.js';

export interface HeadInfo {
  version: number;
  hash: string;
  prevHash: string | null;
  stateRoot: string;
  committedAt: string;
}

export interface HeadResponse {
  body: Buffer;
  etag: string;
}

const RECENT_VERSIONS = 1024;

export class HeadView {
  readonly state: RegistryState;
  private headInfo!: HeadInfo;
  private headResponse!: HeadResponse;
  /** Signer sets by the first version they are in force at, ascending. */
  private readonly signerHistory: { from: number; set: SignerSet }[] = [];
  /** Canonical bytes of recent records by version, so hot versions skip the store. */
  private readonly recent = new Map<number, HeadResponse>();

  constructor(genesis: CommitRecord, genesisHash: string, genesisText: string, signerSet: SignerSet, digest?: Digest32) {
    this.state = new RegistryState(signerSet, digest);
    this.signerHistory.push({ from: 1, set: signerSet });
    this.setHead(genesis, genesisHash, genesisText);
  }

  get head(): HeadInfo {
    return this.headInfo;
  }

  get response(): HeadResponse {
    return this.headResponse;
  }

  /** The signer set whose approvals a proposal on base `version` is counted under. */
  signerSetAt(baseVersion: number): SignerSet {
    let set = this.signerHistory[0]!.set;
    for (const h of this.signerHistory) if (h.from <= baseVersion + 1) set = h.set;
    return set;
  }

  recentRecord(version: number): HeadResponse | undefined {
    return this.recent.get(version);
  }

  /** Moves the head to a record whose change has been planned as `delta`. */
  advance(record: CommitRecord, hash: string, text: string, delta: Delta): void {
    this.state.apply(delta);
    if (delta.signerSet) this.signerHistory.push({ from: record.version + 1, set: delta.signerSet });
    this.setHead(record, hash, text);
  }

  private setHead(record: CommitRecord, hash: string, text: string): void {
    this.headInfo = {
      version: record.version,
      hash,
      prevHash: record.prev_hash,
      stateRoot: record.state_root,
      committedAt: record.committed_at,
    };
    const body = {
      version: record.version,
      hash,
      prev_hash: record.prev_hash,
      state_root: record.state_root,
      committed_at: record.committed_at,
      descriptor_count: this.state.size,
      signer_set: this.state.signerSet,
    };
    this.headResponse = { body: Buffer.from(canonicalJson(body)), etag: `"${hash}"` };
    this.recent.set(record.version, { body: Buffer.from(text), etag: `"${hash}"` });
    if (this.recent.size > RECENT_VERSIONS) this.recent.delete(this.recent.keys().next().value!);
  }
}
