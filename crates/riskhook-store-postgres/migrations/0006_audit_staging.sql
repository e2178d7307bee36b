-- Issue 14: no lock that serialises every writing transaction of every instance. A
-- transaction no longer appends its audit entries to the chain itself (under one global lock
-- held to its commit); it stages them here, in the same transaction, so they are committed
-- exactly when its effects are. One linker at a time (under the audit advisory lock, see
-- `audit.rs`) moves committed entries into `audit_log` in batches, linking each to the head,
-- and deletes them from here in the same transaction. Reads of the chain link first, so they
-- see every entry committed before them.
--
-- `seal` is the entry's hash at position 0 (keyed when the writer held the audit key): the
-- linker recomputes it, and refuses to link an entry changed or written outside riskhook
-- while staged, so it cannot launder one into the keyed chain.
CREATE TABLE audit_staged (
    staged  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,            -- staging order
    id      TEXT   COLLATE "C" NOT NULL UNIQUE,                         -- aud_<uuid v7>
    at      BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    subject TEXT   NOT NULL,
    reason  TEXT,
    before  TEXT,
    after   TEXT,
    keyed   BOOLEAN NOT NULL,
    seal    TEXT   NOT NULL
);

-- A staged entry is never edited, and leaves only into the chain: a delete is refused unless
-- the chain already holds an entry of its id (inserted earlier in the linker's transaction).
CREATE FUNCTION audit_staged_leaves_only_linked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM audit_log WHERE id = OLD.id) THEN
        RAISE EXCEPTION 'a staged audit entry leaves only into the chain'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER audit_staged_no_update BEFORE UPDATE ON audit_staged
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_staged_no_delete BEFORE DELETE ON audit_staged
    FOR EACH ROW EXECUTE FUNCTION audit_staged_leaves_only_linked();
CREATE TRIGGER audit_staged_no_truncate BEFORE TRUNCATE ON audit_staged
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
