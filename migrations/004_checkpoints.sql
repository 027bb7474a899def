-- Checkpoints and retention (SPEC §10, README → Durability).
--
-- A checkpoint at version v is a row of `checkpoints` plus the state at v, one row of
-- `checkpoint_entries` per descriptor. The entries are written first, in small transactions
-- so that reads keep answering; the checkpoint row is written last, and only when every entry
-- is there. A crash while building leaves entries without a row: the next start deletes them.
CREATE TABLE checkpoints (
  version          INTEGER PRIMARY KEY,
  hash             TEXT NOT NULL,      -- the hash of record `version`
  state_root       TEXT NOT NULL,
  descriptor_count INTEGER NOT NULL,
  created_at       TEXT NOT NULL,
  signer_set       TEXT NOT NULL,      -- the signer set in force after `version`, canonical JSON
  -- Every signer set in force up to `version`, as JSON [{"from": first version it approves, "set"}],
  -- genesis first: ids and keys are never rebound, so a start from here needs them all.
  signer_history   TEXT NOT NULL
) STRICT;

CREATE TABLE checkpoint_entries (
  version    INTEGER NOT NULL,
  id         TEXT NOT NULL,
  changed_in INTEGER NOT NULL,
  descriptor TEXT NOT NULL,            -- canonical JSON: its hash is the state root's leaf
  PRIMARY KEY (version, id)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER checkpoints_complete BEFORE INSERT ON checkpoints
WHEN NEW.descriptor_count IS NOT (SELECT COUNT(*) FROM checkpoint_entries WHERE version = NEW.version)
  OR NEW.hash IS NOT (SELECT hash FROM commits WHERE version = NEW.version)
BEGIN SELECT RAISE(ABORT, 'a checkpoint needs every entry of its state and the hash of its commit'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints do not change'); END;
-- Retention drops old checkpoints, never the newest one.
CREATE TRIGGER checkpoints_keep_newest BEFORE DELETE ON checkpoints
WHEN OLD.version = (SELECT MAX(version) FROM checkpoints)
BEGIN SELECT RAISE(ABORT, 'the newest checkpoint is never dropped'); END;
CREATE TRIGGER checkpoint_entries_no_update BEFORE UPDATE ON checkpoint_entries
BEGIN SELECT RAISE(ABORT, 'checkpoint entries do not change'); END;
CREATE TRIGGER checkpoint_entries_sealed BEFORE DELETE ON checkpoint_entries
WHEN EXISTS (SELECT 1 FROM checkpoints WHERE version = OLD.version)
BEGIN SELECT RAISE(ABORT, 'the entries of a checkpoint go only after the checkpoint'); END;

-- Retention: a commit's record text may become '' (pruned) when it is older than the oldest
-- checkpoint, unless it is the genesis, changes the signer set, or follows a signer-set change. Its hash and payload hash
-- stay, so that the chain of hashes stays whole. Nothing else about a commit ever changes.
DROP TRIGGER commits_no_update;
CREATE TRIGGER commits_no_update BEFORE UPDATE ON commits
WHEN NOT (
  NEW.record = '' AND OLD.record <> ''
  AND NEW.version IS OLD.version AND NEW.hash IS OLD.hash AND NEW.payload_hash IS OLD.payload_hash
  AND OLD.version > 0
  AND OLD.version < COALESCE((SELECT MIN(version) FROM checkpoints), 0)
  AND NOT EXISTS (SELECT 1 FROM json_each(OLD.record, '$.payload.ops') WHERE json_extract(value, '$.op') = 'set_signers')
  -- Nor the commit right after a signer-set change: its payload's signed base_hash is what binds
  -- the kept record before it, whose own successor would otherwise be pruned.
  AND NOT EXISTS (SELECT 1 FROM commits p, json_each(CASE WHEN p.record = '' THEN '{}' ELSE p.record END, '$.payload.ops') o
                  WHERE p.version = OLD.version - 1 AND json_extract(o.value, '$.op') = 'set_signers')
)
BEGIN SELECT RAISE(ABORT, 'commits are append-only: only a payload older than the oldest checkpoint may be pruned, never the genesis or a signer-set change'); END;

-- When a proposal left `pending` (ms since the epoch): settled payloads are pruned some time after.
ALTER TABLE proposals ADD COLUMN settled_at INTEGER;
CREATE INDEX proposals_unpruned_settled ON proposals (settled_at) WHERE status IN ('stale', 'expired') AND payload <> '';

-- A proposal moves once from pending to a final status. After that its payload alone may be
-- pruned: a stale or expired one's at any time (the service waits a configured delay), a
-- committed one's once its commit is pruned.
DROP TRIGGER proposals_status_only;
CREATE TRIGGER proposals_status_only BEFORE UPDATE ON proposals
WHEN NOT (
  (OLD.status = 'pending' AND NEW.status <> 'pending' AND NEW.payload IS OLD.payload)
  OR (
    NEW.status IS OLD.status AND OLD.status <> 'pending' AND NEW.version IS OLD.version
    AND NEW.settled_at IS OLD.settled_at AND NEW.payload = '' AND OLD.payload <> ''
    AND (OLD.status <> 'committed' OR (SELECT record FROM commits WHERE version = OLD.version) = '')
  )
)
  OR NEW.id IS NOT OLD.id OR NEW.seq IS NOT OLD.seq
  OR NEW.base_version IS NOT OLD.base_version OR NEW.expires_at IS NOT OLD.expires_at
  OR NEW.created_at IS NOT OLD.created_at OR NEW.proposed_threshold IS NOT OLD.proposed_threshold
  OR NEW.received_at IS NOT OLD.received_at
BEGIN SELECT RAISE(ABORT, 'a proposal only moves once from pending to a final status, and then only its payload may be pruned'); END;
