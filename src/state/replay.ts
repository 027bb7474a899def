// Start-up: open the log on a genesis, replay every commit checking each prev_hash link, and
// check that the rebuilt state has the head's state_root.
import { canonicalJson, hashBytes, utf8Bytes, type Digest32 } from '../core/encoding.js';
import { RegistryError } from '../core/errors.js';
import { checkLink, isGenesisPayload, type CheckedGenesis } from '../core/records.js';
import type { CommitRecord, ProposalPayload } from '../core/schemas.js';
import { planOps } from '../core/state.js';
import type { Store } from '../store/store.js';
import { HeadView } from './head-view.js';

/** The log is not the one asked for, or its history does not hold together. */
export class LogIntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LogIntegrityError';
  }
}

const PAGE = 2000;

export async function openLog(store: Store, genesis: CheckedGenesis, digest?: Digest32): Promise<HeadView> {
  const text = canonicalJson(genesis.record);
  const stored = await store.genesis();
  if (!stored) {
    await store.initialize({ version: 0, hash: genesis.hash, text, payloadHash: genesis.record.payload_hash });
  } else if (stored.hash !== genesis.hash) {
    throw new LogIntegrityError(`the database holds another registry (genesis ${stored.hash}), not genesis ${genesis.hash}`);
  }
  const view = new HeadView(genesis.record, genesis.hash, text, genesis.payload.signer_set, digest);
  for (let from = 1; ; from += PAGE) {
    const page = await store.commits(from, PAGE);
    for (const commit of page) {
      const record = JSON.parse(commit.text) as CommitRecord;
      // The stored text is the canonical JSON that was hashed; hashing the text (fast) rather
      // than re-canonicalizing the record keeps start-up proportional to the log's bytes.
      const hash = hashBytes(utf8Bytes(commit.text), view.state.digest);
      if (hash !== commit.hash) throw new LogIntegrityError(`version ${commit.version}: the stored record does not hash to ${commit.hash}`);
      try {
        checkLink(record, view.head, genesis.payload.registry_id);
        if (isGenesisPayload(record.payload)) throw new LogIntegrityError(`version ${commit.version} is a second genesis`);
        const delta = planOps(view.state, (record.payload as ProposalPayload).ops, record.version);
        view.advance(record, hash, commit.text, delta);
      } catch (e) {
        if (e instanceof RegistryError) throw new LogIntegrityError(`the log does not replay: ${e.message}`);
        throw e;
      }
    }
    if (page.length < PAGE) break;
  }
  const headText = (await store.commit(view.head.version))?.text;
  if (headText !== canonicalJson(JSON.parse(headText ?? 'null'))) {
    throw new LogIntegrityError(`version ${view.head.version}: the stored head record is not canonical JSON`);
  }
  const root = view.state.root();
  if (root !== view.head.stateRoot) {
    throw new LogIntegrityError(`the replayed state root ${root} is not the head's state_root ${view.head.stateRoot} (version ${view.head.version})`);
  }
  return view;
}

