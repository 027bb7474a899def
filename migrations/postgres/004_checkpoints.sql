-- Checkpoints and retention (SPEC §10, README → Durability); ../004_checkpoints.sql on SQLite.
--
-- A checkpoint at version v is a row of `checkpoints` plus the state at v, one row of
-- `checkpoint_entries` per descriptor. The entries are written first, in small transactions
-- so that reads keep answering; the checkpoint row is written last, and only when every entry
-- is there. A crash while building leaves entries without a row: the next start deletes them.
CREATE TABLE checkpoints (
  version          BIGINT PRIMARY KEY,
  hash             TEXT COLLATE "C" NOT NULL, -- the hash of record `version`
  state_root       TEXT NOT NULL,
  descriptor_count BIGINT NOT NULL,
  created_at       TEXT NOT NULL,
  signer_set       TEXT NOT NULL,      -- the signer set in force after `version`, canonical JSON
  -- Every signer set in force up to `version`, as JSON [{"from": first version it approves, "set"}],
  -- genesis first: ids and keys are never rebound, so a start from here needs them all.
  signer_history   TEXT NOT NULL
);

CREATE TABLE checkpoint_entries (
  version    BIGINT NOT NULL,
  id         TEXT COLLATE "C" NOT NULL,
  changed_in BIGINT NOT NULL,
  descriptor TEXT NOT NULL,            -- canonical JSON: its hash is the state root's leaf
  PRIMARY KEY (version, id)
);

CREATE FUNCTION checkpoints_complete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.descriptor_count IS DISTINCT FROM (SELECT COUNT(*) FROM checkpoint_entries WHERE version = NEW.version)
    OR NEW.hash IS DISTINCT FROM (SELECT hash FROM commits WHERE version = NEW.version) THEN
    RAISE EXCEPTION 'a checkpoint needs every entry of its state and the hash of its commit'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER checkpoints_complete BEFORE INSERT ON checkpoints
  FOR EACH ROW EXECUTE FUNCTION checkpoints_complete();
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
  FOR EACH ROW EXECUTE FUNCTION registry_refuse('checkpoints do not change');

-- Retention drops old checkpoints, never the newest one.
CREATE FUNCTION checkpoints_keep_newest() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.version = (SELECT MAX(version) FROM checkpoints) THEN
    RAISE EXCEPTION 'the newest checkpoint is never dropped' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN OLD;
END
$$;
CREATE TRIGGER checkpoints_keep_newest BEFORE DELETE ON checkpoints
  FOR EACH ROW EXECUTE FUNCTION checkpoints_keep_newest();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
  FOR EACH STATEMENT EXECUTE FUNCTION registry_refuse('the newest checkpoint is never dropped');

CREATE TRIGGER checkpoint_entries_no_update BEFORE UPDATE ON checkpoint_entries
  FOR EACH ROW EXECUTE FUNCTION registry_refuse('checkpoint entries do not change');
CREATE FUNCTION checkpoint_entries_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Row by row for DELETE; for TRUNCATE (a statement, OLD is NULL), while any checkpoint exists.
  IF EXISTS (SELECT 1 FROM checkpoints WHERE TG_LEVEL = 'STATEMENT' OR version = OLD.version) THEN
    RAISE EXCEPTION 'the entries of a checkpoint go only after the checkpoint' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN OLD;
END
$$;
CREATE TRIGGER checkpoint_entries_sealed BEFORE DELETE ON checkpoint_entries
  FOR EACH ROW EXECUTE FUNCTION checkpoint_entries_sealed();
CREATE TRIGGER checkpoint_entries_no_truncate BEFORE TRUNCATE ON checkpoint_entries
  FOR EACH STATEMENT EXECUTE FUNCTION checkpoint_entries_sealed();

-- Whether a commit record changes the signer set (a set_signers op): retention never prunes
-- those. '' (a pruned record) changes nothing. registry_json: see migration 003.
CREATE FUNCTION registry_changes_signers(record TEXT) RETURNS BOOLEAN LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT CASE
    WHEN record = '' THEN false
    WHEN json_typeof(registry_json(record) -> 'payload' -> 'ops') IS DISTINCT FROM 'array' THEN false
    ELSE EXISTS (SELECT 1 FROM json_array_elements(registry_json(record) -> 'payload' -> 'ops') AS op WHERE op ->> 'op' = 'set_signers')
  END
$$;

-- Retention: a commit's record text may become '' (pruned) when it is older than the oldest
-- checkpoint, unless it is the genesis, changes the signer set, or follows a signer-set change
-- (its payload's signed base_hash is what binds the kept record before it, whose own successor
-- would otherwise be pruned). Its hash and payload hash stay, so that the chain of hashes stays
-- whole. Nothing else about a commit ever changes.
CREATE FUNCTION commits_prune_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.record = '' AND OLD.record <> ''
    AND NEW.version = OLD.version AND NEW.hash = OLD.hash AND NEW.payload_hash = OLD.payload_hash
    AND OLD.version > 0
    AND OLD.version < COALESCE((SELECT MIN(version) FROM checkpoints), 0)
    AND NOT registry_changes_signers(OLD.record)
    AND NOT registry_changes_signers(COALESCE((SELECT record FROM commits WHERE version = OLD.version - 1), '')) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'commits are append-only: only a payload older than the oldest checkpoint may be pruned, never the genesis or a signer-set change'
    USING ERRCODE = 'integrity_constraint_violation';
END
$$;
DROP TRIGGER commits_no_update ON commits;
CREATE TRIGGER commits_no_update BEFORE UPDATE ON commits
  FOR EACH ROW EXECUTE FUNCTION commits_prune_only();

-- When a proposal left `pending` (ms since the epoch): settled payloads are pruned some time after.
ALTER TABLE proposals ADD COLUMN settled_at BIGINT;
CREATE INDEX proposals_unpruned_settled ON proposals (settled_at) WHERE status IN ('stale', 'expired') AND payload <> '';

-- A proposal moves once from pending to a final status. After that its payload alone may be
-- pruned: a stale or expired one's at any time (the service waits a configured delay), a
-- committed one's once its commit is pruned.
CREATE OR REPLACE FUNCTION proposals_status_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id IS NOT DISTINCT FROM OLD.id AND NEW.seq IS NOT DISTINCT FROM OLD.seq
    AND NEW.base_version IS NOT DISTINCT FROM OLD.base_version AND NEW.expires_at IS NOT DISTINCT FROM OLD.expires_at
    AND NEW.created_at IS NOT DISTINCT FROM OLD.created_at AND NEW.proposed_threshold IS NOT DISTINCT FROM OLD.proposed_threshold
    AND NEW.received_at IS NOT DISTINCT FROM OLD.received_at
    AND (
      (OLD.status = 'pending' AND NEW.status <> 'pending' AND NEW.payload = OLD.payload)
      OR (
        NEW.status = OLD.status AND OLD.status <> 'pending' AND NEW.version IS NOT DISTINCT FROM OLD.version
        AND NEW.settled_at IS NOT DISTINCT FROM OLD.settled_at AND NEW.payload = '' AND OLD.payload <> ''
        AND (OLD.status <> 'committed' OR (SELECT record FROM commits WHERE version = OLD.version) = '')
      )
    ) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'a proposal only moves once from pending to a final status, and then only its payload may be pruned'
    USING ERRCODE = 'integrity_constraint_violation';
END
$$;
