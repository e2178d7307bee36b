-- Fewer index writes per delivery. Each index keyed by a random value costs a whole B-tree
-- page in the WAL (and again at the checkpoint) for every entry, since entries of one commit
-- rarely share a page; on the intake path those pages were half of what was written.

-- Nothing looks up assessments by session (a session's assessment is
-- sessions.current_assessment_id).
DROP INDEX assessments_session;

-- Nothing looks up audit entries by hash: the chain is verified in `seq` order, and a forged
-- hash is caught by the chain, not by a uniqueness check. SQLite cannot drop a UNIQUE
-- constraint, so the table is rebuilt, with the same rows, index and triggers.
CREATE TABLE audit_log_v5 (
    seq       INTEGER PRIMARY KEY,                        -- chain position: 1, 2, 3...
    id        TEXT    NOT NULL UNIQUE,                    -- aud_<uuid v7>
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    subject   TEXT    NOT NULL,
    reason    TEXT,
    before    TEXT,
    after     TEXT,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
INSERT INTO audit_log_v5 (seq, id, at, actor, action, subject, reason, before, after, prev_hash,
                          hash)
SELECT seq, id, at, actor, action, subject, reason, before, after, prev_hash, hash
FROM audit_log ORDER BY seq;
DROP TABLE audit_log;
ALTER TABLE audit_log_v5 RENAME TO audit_log;
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
