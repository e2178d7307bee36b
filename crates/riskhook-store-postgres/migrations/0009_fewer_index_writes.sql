-- Fewer index writes per delivery, as SQLite's migration 5 did. An index keyed by a random
-- value costs PostgreSQL a B-tree descent, a leaf page dirtied (a full-page image in the WAL
-- after each checkpoint) and CPU, for every row; on one instance PostgreSQL's own CPU is what
-- limits intake.
--
-- Only indexes are dropped: instances of the previous version, still running during a rolling
-- upgrade, issue the same statements, which need neither.

-- Nothing looks up assessments by session: a session's assessment is
-- sessions.current_assessment_id, and a user's are found by assessments_user.
DROP INDEX IF EXISTS assessments_session;

-- Nothing looks up audit entries by hash: the chain is read and verified in `seq` order, and a
-- forged or repeated hash is caught by the chain (each entry's hash covers the one before it),
-- not by a uniqueness check.
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_hash_key;
