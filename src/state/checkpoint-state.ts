// A checkpoint's state read back from the log, for the start (replay.ts) and for past versions
// (version-snapshots.ts): the signer-set history first, then the descriptors a page at a time.
// What the rows alone can show is checked here (each changed_in within the checkpoint, the
// count); the caller checks that the state hashes to its record's state root.
import type { SignerSet } from '../core/schemas.js';
import type { Delta, RegistryState } from '../core/state.js';
import type { CheckpointInfo, Store } from '../store/store.js';

const PAGE = 10_000;

/** Reads checkpoint `c` into `state`, a fresh one, handing each page to `apply` as a delta
 * (which applies it to the state, and to whatever index the caller keeps). Throws an Error that
 * says what is wrong with a malformed state; `pause` runs between pages. */
export async function readCheckpointState(
  store: Store,
  c: CheckpointInfo,
  state: RegistryState,
  apply: (delta: Delta) => void,
  pause?: () => Promise<void>,
): Promise<void> {
  state.restoreSigners(JSON.parse(c.signerHistory) as { from: number; set: SignerSet }[]);
  let count = 0;
  for (let after = ''; ;) {
    const page = await store.checkpointEntries(c.version, after, PAGE);
    const puts = page.map((e) => {
      if (!Number.isSafeInteger(e.changedIn) || e.changedIn < 1 || e.changedIn > c.version)
        throw new Error(`its entry ${e.id} says it changed in version ${e.changedIn}`);
      return state.entryFromJson(e.json, e.changedIn);
    });
    apply({ version: c.version, puts, deletes: [], signerSet: undefined, changed: [] });
    count += page.length;
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.id;
    await pause?.();
  }
  if (count !== c.descriptorCount || state.size !== count)
    throw new Error(`it holds ${count} entries for ${state.size} descriptors, not ${c.descriptorCount}`);
}
