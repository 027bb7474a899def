// What changed between two versions (GET /registry/diff): the descriptors added, removed and
// changed, and the signer set before and after when it changed. The ids come from the deltas
// of the commits in between; their values from the two versions' states, so an id put and
// deleted again in between, or put back unchanged, is no change at all.
import { canonicalJson } from '../core/encoding.js';
import { RegistryError } from '../core/errors.js';
import type { CommitRecord, Descriptor, ProposalPayload, SignerSet } from '../core/schemas.js';
import type { Store } from '../store/store.js';
import type { DescriptorIndex } from './descriptor-index.js';

export interface VersionState {
  version: number;
  index: DescriptorIndex;
  signerSet: SignerSet;
}

export interface Diff {
  from: number;
  to: number;
  added: Descriptor[];
  removed: Descriptor[];
  changed: { id: string; before: Descriptor; after: Descriptor }[];
  signer_set: { before: SignerSet; after: SignerSet } | null;
}

/** Every descriptor id an op touched in versions (from, to], sorted. */
export async function changedIds(store: Store, from: number, to: number, page = 1000): Promise<string[]> {
  const ids = new Set<string>();
  for (let v = from + 1; v <= to; v += page) {
    for (const commit of await store.commits(v, Math.min(page, to - v + 1))) {
      if (commit.text === '')
        throw new RegistryError('Gone', `version ${commit.version}, between the two versions, was pruned by retention`, {
          hint: 'diff from the oldest checkpoint on: GET /registry/checkpoints',
        });
      for (const op of ((JSON.parse(commit.text) as CommitRecord).payload as ProposalPayload).ops) {
        if (op.op === 'put') ids.add(op.descriptor.id);
        else if (op.op === 'delete') ids.add(op.id);
      }
    }
  }
  return [...ids].sort();
}

export function diffStates(a: VersionState, b: VersionState, ids: readonly string[]): Diff {
  const diff: Diff = { from: a.version, to: b.version, added: [], removed: [], changed: [], signer_set: null };
  for (const id of ids) {
    const before = a.index.get(id);
    const after = b.index.get(id);
    if (before && after) {
      if (before.json !== after.json) diff.changed.push({ id, before: before.descriptor, after: after.descriptor });
    } else if (after) diff.added.push(after.descriptor);
    else if (before) diff.removed.push(before.descriptor);
  }
  if (canonicalJson(a.signerSet) !== canonicalJson(b.signerSet)) diff.signer_set = { before: a.signerSet, after: b.signerSet };
  return diff;
}
