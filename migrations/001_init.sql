-- The registry's log. History (commits, approvals, audit) is append-only, enforced here by
-- triggers as well as by the service's code.

CREATE TABLE commits (
  version      INTEGER PRIMARY KEY,
  hash         TEXT NOT NULL UNIQUE,
  payload_hash TEXT NOT NULL UNIQUE,
  record       TEXT NOT NULL           -- the record's canonical JSON, exactly the hashed bytes
) STRICT;

CREATE TRIGGER commits_contiguous BEFORE INSERT ON commits
WHEN NEW.version IS NOT (SELECT COALESCE(MAX(version) + 1, 0) FROM commits)
BEGIN SELECT RAISE(ABORT, 'commit versions must be contiguous'); END;
CREATE TRIGGER commits_no_update BEFORE UPDATE ON commits
BEGIN SELECT RAISE(ABORT, 'commits are append-only'); END;
CREATE TRIGGER commits_no_delete BEFORE DELETE ON commits
BEGIN SELECT RAISE(ABORT, 'commits are append-only'); END;

CREATE TABLE proposals (
  seq          INTEGER PRIMARY KEY,    -- arrival order, the listing cursor
  id           TEXT NOT NULL UNIQUE,   -- the payload hash
  payload      TEXT NOT NULL,          -- canonical JSON
  base_version INTEGER NOT NULL,
  created_at   TEXT NOT NULL,          -- the payload's, for listings without the payload
  expires_at   INTEGER NOT NULL,       -- ms since the epoch
  proposed_threshold INTEGER,          -- for a set_signers proposal
  received_at  TEXT NOT NULL,
  status       TEXT NOT NULL CHECK (status IN ('pending', 'committed', 'stale', 'expired')),
  version      INTEGER                 -- the commit, once committed
) STRICT;
CREATE INDEX proposals_by_status ON proposals (status, seq);

-- A proposal's payload never changes; its status moves once, out of pending.
CREATE TRIGGER proposals_status_only BEFORE UPDATE ON proposals
WHEN OLD.status IS NOT 'pending' OR NEW.status IS 'pending'
  OR NEW.id IS NOT OLD.id OR NEW.seq IS NOT OLD.seq OR NEW.payload IS NOT OLD.payload
  OR NEW.base_version IS NOT OLD.base_version OR NEW.expires_at IS NOT OLD.expires_at
  OR NEW.created_at IS NOT OLD.created_at OR NEW.proposed_threshold IS NOT OLD.proposed_threshold
  OR NEW.received_at IS NOT OLD.received_at
BEGIN SELECT RAISE(ABORT, 'a proposal only moves once from pending to a final status'); END;
CREATE TRIGGER proposals_no_delete BEFORE DELETE ON proposals
BEGIN SELECT RAISE(ABORT, 'proposals are append-only'); END;

CREATE TABLE approvals (
  seq         INTEGER PRIMARY KEY,
  proposal_id TEXT NOT NULL REFERENCES proposals (id),
  signer_id   TEXT NOT NULL,
  sig         TEXT NOT NULL,
  received_at TEXT NOT NULL,
  UNIQUE (proposal_id, signer_id)
) STRICT;
CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;

CREATE TABLE audit (
  seq   INTEGER PRIMARY KEY,
  hash  TEXT NOT NULL UNIQUE,
  event TEXT NOT NULL                  -- the event's canonical JSON, exactly the hashed bytes
) STRICT;
CREATE TRIGGER audit_contiguous BEFORE INSERT ON audit
WHEN NEW.seq IS NOT (SELECT COALESCE(MAX(seq), 0) + 1 FROM audit)
BEGIN SELECT RAISE(ABORT, 'audit events must be contiguous'); END;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
