// The descriptors of a past version, for listings, lookups and diffs at that version. Rebuilt
// by replaying the log from the genesis (the head's replay already checked it), kept in a
// small LRU; two requests for the same version share one rebuild. A rebuild starts from the
// nearest checkpoint at or below the version, so it costs the state there and the commits
// after it. A version behind the retention horizon (a pruned commit on the way) is 410 Gone.
import { hashBytes, utf8Bytes, type Digest32 } from '../core/encoding.js';
import type { CommitRecord, ProposalPayload, SignerSet } from '../core/schemas.js';
import { RegistryState } from '../core/state.js';
import { IntegrityError, RegistryError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import { readCheckpointState } from './checkpoint-state.js';
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
    private readonly digest?: Digest32,
    /** Told of a checkpoint found not to hold together (the writer refuses writes from then on). */
    private readonly distrust?: (problem: string) => void,
  ) {}

  /** Forgets the states of versions below `version` (retention prunes them: they answer 410). */
  forgetBelow(version: number): void {
    for (const v of [...this.cache.keys()]) if (v < version) this.cache.delete(v);
  }

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
    // The nearest checkpoint at or below the version saves replaying the log up to it.
    const checkpoint = (await this.store.checkpoints()).filter((c) => c.version <= version).pop();
    let signerSet = this.genesisSignerSet;
    let last: { version: number; hash: string; committedAt: string };
    if (checkpoint) {
      const stored = await this.store.commit(checkpoint.version);
      if (!stored || stored.text === '')
        throw new IntegrityError(`the record of checkpoint ${checkpoint.version} is missing`, checkpoint.version);
      // Checked like the start checks the latest: the state must hash to its record's state root.
      const record = JSON.parse(stored.text) as CommitRecord;
      const state = new RegistryState(this.genesisSignerSet, this.digest);
      let malformed: string | undefined;
      try {
        await readCheckpointState(
          this.store,
          checkpoint,
          state,
          (delta) => {
            state.apply(delta);
            for (const e of delta.puts) index.set(toItem(e.descriptor, e.changedIn, e.json));
          },
          () => new Promise((resolve) => setImmediate(resolve)),
        );
      } catch (e) {
        malformed = (e as Error).message;
      }
      // Retention may drop the checkpoint while its rows are read: start again from what is kept.
      if (!(await this.store.checkpoints()).some((c) => c.version === checkpoint.version)) return this.build(version);
      if (
        malformed !== undefined ||
        hashBytes(utf8Bytes(stored.text), this.digest) !== checkpoint.hash ||
        state.root() !== record.state_root
      ) {
        const problem = `the checkpoint at version ${checkpoint.version}: ${malformed ?? "its state does not hash to its record's state root"}`;
        this.distrust?.(problem);
        throw new RegistryError('Unavailable', `the state at version ${version} failed its integrity check: ${problem}`, {
          retryAfter: 3600,
        });
      }
      signerSet = state.signerSet;
      last = { version: checkpoint.version, hash: stored.hash, committedAt: record.committed_at };
    } else {
      const genesis = await this.store.commit(0);
      if (!genesis) throw new IntegrityError('the log has no genesis', 0);
      last = { version: 0, hash: genesis.hash, committedAt: (JSON.parse(genesis.text) as CommitRecord).committed_at };
    }
    for (let from = last.version + 1; from <= version; from += PAGE) {
      const page = await this.store.commits(from, Math.min(PAGE, version - from + 1));
      for (const [i, commit] of page.entries()) {
        if (commit.text === '') {
          const oldest = (await this.store.checkpoints())[0]?.version;
          throw new RegistryError(
            'Gone',
            `the state at version ${version} is behind the retention horizon: version ${commit.version} was pruned`,
            {
              hint:
                oldest === undefined
                  ? undefined
                  : `the oldest state kept is the checkpoint at version ${oldest}: GET /registry/${oldest}/descriptors`,
            },
          );
        }
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
