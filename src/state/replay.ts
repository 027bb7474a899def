// Start-up: open the log on a genesis, replay every commit checking each prev_hash link, and
// check that the rebuilt state has the head's state_root.
import { canonicalJson, hashBytes, utf8Bytes, type Digest32 } from '../core/encoding.js';
import { IntegrityError, RegistryError } from '../core/errors.js';
import { checkLink, type CheckedGenesis } from '../core/records.js';
import type { CommitRecord, ProposalPayload } from '../core/schemas.js';
import { planOps } from '../core/state.js';
import type { Store } from '../store/store.js';
import { HeadView } from './head-view.js';

const PAGE = 2000;

export async function openLog(store: Store, genesis: CheckedGenesis, digest?: Digest32): Promise<HeadView> {
  const text = canonicalJson(genesis.record);
  const stored = await store.genesis();
  if (!stored) {
    await store.initialize({ version: 0, hash: genesis.hash, text, payloadHash: genesis.record.payload_hash });
  } else if (stored.hash !== genesis.hash) {
    const storedId = (JSON.parse(stored.text) as { registry_id?: unknown }).registry_id;
    throw new IntegrityError(
      `the database holds another registry: ${String(storedId)} (genesis ${stored.hash}), not ${genesis.payload.registry_id} ` +
        `(genesis ${genesis.hash}): serve it with its own genesis record, or choose another --db`,
      0,
    );
  }
  const view = new HeadView(genesis, text, digest);
  // The state follows every commit; the head (and its response bytes) is published once.
  let head = { version: 0, hash: genesis.hash, record: genesis.record, text };
  view.index.beginBulk();
  for (let from = 1; ; from += PAGE) {
    const page = await store.commits(from, PAGE);
    for (const commit of page) {
      const record = parseRecord(commit.version, commit.text);
      // The stored text is the canonical JSON that was hashed; hashing the text (fast) rather
      // than re-canonicalizing the record keeps start-up proportional to the log's bytes.
      const hash = hashBytes(utf8Bytes(commit.text), view.state.digest);
      if (hash !== commit.hash)
        throw new IntegrityError(`version ${commit.version}: the stored record does not hash to ${commit.hash}`, commit.version);
      try {
        checkLink(record, head, genesis.payload.registry_id); // also refuses a second genesis
        view.apply(planOps(view.state, (record.payload as ProposalPayload).ops, record.version));
      } catch (e) {
        // A record that does not replay, whatever the reason (ops a request would be refused
        // for, or a malformed record that throws TypeErrors), is a log that does not hold together.
        if (e instanceof IntegrityError && e.version === commit.version) throw e;
        const why = e instanceof RegistryError ? e.message : `the stored record is malformed (${(e as Error).message})`;
        throw new IntegrityError(`the log does not replay at version ${commit.version}: ${why}`, commit.version);
      }
      head = { version: record.version, hash, record, text: commit.text };
    }
    if (page.length < PAGE) break;
  }
  view.index.endBulk();
  if (head.text !== canonicalJson(head.record)) {
    throw new IntegrityError(`version ${head.version}: the stored head record is not canonical JSON`, head.version);
  }
  const root = view.state.root();
  if (root !== head.record.state_root) {
    throw new IntegrityError(
      `the replayed state root ${root} is not the head's state_root ${head.record.state_root} (version ${head.version})`,
      head.version,
    );
  }
  view.setHead(head.record, head.hash, head.text);
  return view;
}

function parseRecord(version: number, text: string): CommitRecord {
  try {
    return JSON.parse(text) as CommitRecord;
  } catch (e) {
    throw new IntegrityError(`version ${version}: the stored record is not JSON (${(e as Error).message})`, version);
  }
}
