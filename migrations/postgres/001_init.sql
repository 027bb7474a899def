-- The registry's log on PostgreSQL: the tables and columns of ../001_init.sql (SQLite), with the
-- same append-only guarantees enforced here by triggers as well as by the service's code. Each
-- file of this folder is the PostgreSQL side of the SQLite migration with the same number.
--
-- Types: versions, sequence numbers and times in ms are BIGINT; texts are TEXT, and the ones the
-- service orders or pages by (ids, signer ids) use the "C" collation, byte order, as SQLite does,
-- whatever the database's default collation. TRUNCATE skips row triggers, so history tables
-- refuse it with statement triggers of their own.

-- Refuses the statement, with the message given as the trigger's argument.
CREATE FUNCTION registry_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TABLE commits (
  version      BIGINT PRIMARY KEY,
  hash         TEXT COLLATE "C" NOT NULL UNIQUE,
  payload_hash TEXT COLLATE "C" NOT NULL UNIQUE,
  record       TEXT NOT NULL           -- the record's canonical JSON, exactly the hashed bytes
);

CREATE FUNCTION commits_contiguous() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.version IS DISTINCT FROM (SELECT COALESCE(MAX(version) + 1, 0) FROM commits) THEN
    RAISE EXCEPTION 'commit versions must be contiguous' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER commits_contiguous BEFORE INSERT ON commits
  FOR EACH ROW EXECUTE FUNCTION commits_contiguous();
CREATE TRIGGER commits_no_update BEFORE UPDATE ON commits
  FOR EACH ROW EXECUTE FUNCTION registry_refuse('commits are append-only');
CREATE TRIGGER commits_no_delete BEFORE DELETE ON commits
  FOR EACH ROW EXECUTE FUNCTION registry_refuse('commits are append-only');
CREATE TRIGGER commits_no_truncate BEFORE TRUNCATE ON commits
  FOR EACH STATEMENT EXECUTE FUNCTION registry_refuse('commits are append-only');

CREATE TABLE proposals (
  seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- arrival order, the listing cursor
  id           TEXT COLLATE "C" NOT NULL UNIQUE,   -- the payload hash
  payload      TEXT NOT NULL,          -- canonical JSON
  base_version BIGINT NOT NULL,
  created_at   TEXT NOT NULL,          -- the payload's, for listings without the payload
  expires_at   BIGINT NOT NULL,        -- ms since the epoch
  proposed_threshold INTEGER,          -- for a set_signers proposal
  received_at  TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('pending', 'committed', 'stale', 'expired')),
  version      BIGINT                  -- the commit, once committed
);
CREATE INDEX proposals_by_status ON proposals (status, seq);

-- A proposal's payload never changes; its status moves once, out of pending.
CREATE FUNCTION proposals_status_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.status <> 'pending' OR NEW.status = 'pending'
    OR NEW.id IS DISTINCT FROM OLD.id OR NEW.seq IS DISTINCT FROM OLD.seq OR NEW.payload IS DISTINCT FROM OLD.payload
    OR NEW.base_version IS DISTINCT FROM OLD.base_version OR NEW.expires_at IS DISTINCT FROM OLD.expires_at
    OR NEW.created_at IS DISTINCT FROM OLD.created_at OR NEW.proposed_threshold IS DISTINCT FROM OLD.proposed_threshold
    OR NEW.received_at IS DISTINCT FROM OLD.received_at THEN
    RAISE EXCEPTION 'a proposal only moves once from pending to a final status' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER proposals_status_only BEFORE UPDATE ON proposals
  FOR EACH ROW EXECUTE FUNCTION proposals_status_only();
CREATE TRIGGER proposals_no_delete BEFORE DELETE ON proposals
  FOR EACH ROW EXECUTE FUNCTION registry_refuse('proposals are append-only');
CREATE TRIGGER proposals_no_truncate BEFORE TRUNCATE ON proposals
  FOR EACH STATEMENT EXECUTE FUNCTION registry_refuse('proposals are append-only');

CREATE TABLE approvals (
  seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  proposal_id TEXT COLLATE "C" NOT NULL REFERENCES proposals (id),
  signer_id   TEXT COLLATE "C" NOT NULL,
  sig         TEXT NOT NULL,
  received_at TEXT NOT NULL,
  UNIQUE (proposal_id, signer_id)
);
CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
  FOR EACH ROW EXECUTE FUNCTION registry_refuse('approvals are append-only');
CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
  FOR EACH ROW EXECUTE FUNCTION registry_refuse('approvals are append-only');
CREATE TRIGGER approvals_no_truncate BEFORE TRUNCATE ON approvals
  FOR EACH STATEMENT EXECUTE FUNCTION registry_refuse('approvals are append-only');

CREATE TABLE audit (
  seq   BIGINT PRIMARY KEY,
  hash  TEXT COLLATE "C" NOT NULL UNIQUE,
  event TEXT NOT NULL                  -- the event's canonical JSON, exactly the hashed bytes
);
CREATE FUNCTION audit_contiguous() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.seq IS DISTINCT FROM (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit) THEN
    RAISE EXCEPTION 'audit events must be contiguous' USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER audit_contiguous BEFORE INSERT ON audit
  FOR EACH ROW EXECUTE FUNCTION audit_contiguous();
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  FOR EACH ROW EXECUTE FUNCTION registry_refuse('the audit log is append-only');
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION registry_refuse('the audit log is append-only');
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION registry_refuse('the audit log is append-only');
