-- The write plane's freeze state is the last `frozen` or `thawed` audit event (SPEC §9). This
-- partial index holds only those events, so that a start finds the last one at once instead of
-- reading the whole audit log. The store's query repeats this WHERE clause, so that it is used.
--
-- The stored texts are canonical JSON, which may escape a NUL in a string as \u0000: PostgreSQL's
-- json accepts that as input but refuses it in every function that reads a field (and jsonb
-- refuses it outright). registry_json reads such a text with each \u0000 made \ufffd, which keeps
-- its structure (both are six characters of one escape, or of text after an escaped backslash);
-- what the store reads through it (kinds, op names) never holds a NUL.
CREATE FUNCTION registry_json(doc TEXT) RETURNS json LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT replace(doc, E'\\u0000', E'\\ufffd')::json
$$;

CREATE INDEX audit_freezes ON audit (seq) WHERE (registry_json(event) ->> 'kind') IN ('frozen', 'thawed');
