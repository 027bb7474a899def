// The materialized head: the descriptor state, the signer sets in force over time, and the
// response bytes of the head and of recent versions, computed once per commit.
import { canonicalJson, type Digest32 } from '../core/encoding.js';
import type { CheckedGenesis } from '../core/records.js';
import type { CommitRecord } from '../core/schemas.js';
import { RegistryState, type Delta } from '../core/state.js';
import { DescriptorIndex, toItem } from './descriptor-index.js';

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

// Records can be up to 1 MiB: bound the cache by bytes as well as by count.
const RECENT_VERSIONS = 1024;
const RECENT_BYTES = 32 * 1024 * 1024;

export class HeadView {
  readonly state: RegistryState;
  /** The head's descriptors by id, kind and label, for lookups and listings. */
  readonly index = new DescriptorIndex();
  private headInfo!: HeadInfo;
  private headResponse!: HeadResponse;
  /** Canonical bytes of recent records by version, so hot versions skip the store. */
  private readonly recent = new Map<number, HeadResponse>();
  private recentBytes = 0;

  constructor(genesis: CheckedGenesis, genesisText: string, digest?: Digest32) {
    this.state = new RegistryState(genesis.payload.signer_set, digest);
    this.setHead(genesis.record, genesis.hash, genesisText);
  }

  get head(): HeadInfo {
    return this.headInfo;
  }

  get response(): HeadResponse {
    return this.headResponse;
  }

  recentRecord(version: number): HeadResponse | undefined {
    return this.recent.get(version);
  }

  /** Moves the head to a record whose change has been planned as `delta`. */
  advance(record: CommitRecord, hash: string, text: string, delta: Delta): void {
    this.apply(delta);
    this.setHead(record, hash, text);
  }

  /** Applies a planned change to the state and the index, without publishing a head (replay
   * publishes once, at the end). */
  apply(delta: Delta): void {
    this.state.apply(delta);
    for (const id of delta.deletes) this.index.delete(id);
    for (const e of delta.puts) this.index.set(toItem(e.descriptor, e.changedIn, e.json));
  }

  /** Publishes `record` as the head once the state already holds its change (after replay). */
  setHead(record: CommitRecord, hash: string, text: string): void {
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
    this.remember(record.version, { body: Buffer.from(text), etag: `"${hash}"` });
  }

  /** Forgets the kept bytes of versions 1 to `version` - 1 (retention pruned them: what the
   * store no longer holds is not served from here either). */
  forgetBelow(version: number): void {
    for (const [v, kept] of this.recent) {
      if (v === 0 || v >= version) continue;
      this.recent.delete(v);
      this.recentBytes -= kept.body.length;
    }
  }

  /** Keeps the bytes of a record, new or read back from the log (after a restart only the
   * head is kept), so reads of a hot version skip the store. Oldest first out. */
  remember(version: number, entry: HeadResponse): void {
    this.recentBytes -= this.recent.get(version)?.body.length ?? 0;
    this.recent.delete(version);
    this.recent.set(version, entry);
    this.recentBytes += entry.body.length;
    for (const [old, kept] of this.recent) {
      if (this.recent.size <= RECENT_VERSIONS && this.recentBytes <= RECENT_BYTES) break;
      this.recent.delete(old);
      this.recentBytes -= kept.body.length;
    }
  }
}
