-- The write plane's freeze state is the last `frozen` or `thawed` audit event (SPEC §9). This
-- partial index holds only those events, so that a start finds the last one at once instead of
-- reading the whole audit log.
CREATE INDEX audit_freezes ON audit (seq) WHERE json_extract(event, '$.kind') IN ('frozen', 'thawed');
