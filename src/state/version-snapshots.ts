// The descriptors of a past version, for listings, lookups and diffs at that version. Rebuilt
// by replaying the log from the genesis (the head's replay already checked it), kept in a
// small LRU; two requests for the same version share one rebuild. The cost of a rebuild is the
// log up to that version: checkpoints (a later issue) will bound it to the tail after one.
import type { CommitRecord, ProposalPayload, SignerSet } from '../core/schemas.js';
import { IntegrityError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import { DescriptorIndex, toItem } from './descriptor-index.js';

export interface Snapshot {
  version: number;
  hash: string;
  /** ms since the epoch: descriptors expired by then are hidden at this version. */
  committedAt: number;
  index: DescriptorIndex;
  signerSet: SignerSet;
}

const PAGE = 1000;
/** Rebuild in slices: a long replay yields to the event loop so reads keep answering. */
const YIELD_EVERY = 200;

export class VersionSnapshots {
  private readonly cache = new Map<number, Promise<Snapshot>>();

  constructor(
    private readonly store: Store,
    private readonly genesisSignerSet: SignerSet,
    private readonly capacity = 4,
  ) {}

  /** The snapshot of `version`, which the caller has checked is at or below the head. */
  at(version: number): Promise<Snapshot> {
    const cached = this.cache.get(version);
    if (cached) {
      // Most recently used last.
      this.cache.delete(version);
      this.cache.set(version, cached);
      return cached;
    }
    const building = this.build(version);
    this.cache.set(version, building);
    building.catch(() => this.cache.delete(version));
    while (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value!);
    return building;
  }

  private async build(version: number): Promise<Snapshot> {
    const index = new DescriptorIndex();
    index.beginBulk();
    let signerSet = this.genesisSignerSet;
    const genesis = await this.store.commit(0);
    if (!genesis) throw new IntegrityError('the log has no genesis', 0);
    let last = { version: 0, hash: genesis.hash, committedAt: (JSON.parse(genesis.text) as CommitRecord).committed_at };
    for (let from = 1; from <= version; from += PAGE) {
      const page = await this.store.commits(from, Math.min(PAGE, version - from + 1));
      for (const [i, commit] of page.entries()) {
        const record = JSON.parse(commit.text) as CommitRecord;
        for (const op of (record.payload as ProposalPayload).ops) {
          if (op.op === 'put') index.set(toItem(op.descriptor, record.version));
          else if (op.op === 'delete') index.delete(op.id);
          else signerSet = op.signer_set;
        }
        last = { version: record.version, hash: commit.hash, committedAt: record.committed_at };
        if (i % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((resolve) => setImmediate(resolve));
      }
      if (page.length === 0) break;
    }
    if (last.version !== version) throw new IntegrityError(`version ${version} is missing from the log`, version);
    index.endBulk();
    return { version, hash: last.hash, committedAt: Date.parse(last.committedAt), index, signerSet };
  }
}
