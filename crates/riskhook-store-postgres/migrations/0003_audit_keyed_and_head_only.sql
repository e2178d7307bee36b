-- Issue 11, finding 4: an entry may be keyed (its hash an HMAC-SHA256 under the audit key,
-- which is not in the database), and an insert must extend the head of the chain. The same
-- as SQLite's migration 7.
--
-- `keyed` says how `hash` was computed; it is not itself hashed, and needs not be: flipping it
-- makes the stored hash wrong under either rule. Entries written before this migration, or
-- without a key, are false.
ALTER TABLE audit_log ADD COLUMN keyed BOOLEAN NOT NULL DEFAULT false;

-- UPDATE, DELETE and TRUNCATE are refused since migration 1; this refuses an INSERT anywhere
-- but at the head: its `seq` must be the head's + 1 and its `prev_hash` the head's hash
-- (GENESIS for the first entry). riskhook appends under its global audit lock, so the head
-- it read is still the head here; rows inserted earlier by the same statement (a commit's
-- several entries) are visible to this row-level BEFORE trigger, so each extends the one
-- before it. Two concurrent inserts outside that lock that both see the same head collide
-- on the primary key: the chain cannot fork. The head is one backwards step on the primary
-- key index. An attacker who may run DDL can drop this trigger: the key and the anchors are
-- what catch that (see README, "The audit log").
CREATE FUNCTION audit_log_extends_head() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_seq  BIGINT;
    head_hash TEXT;
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := '0000000000000000000000000000000000000000000000000000000000000000';
    END IF;
    IF NEW.seq IS DISTINCT FROM head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash THEN
        RAISE EXCEPTION 'an audit entry must extend the head of the chain'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER audit_log_extends_head BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_extends_head();
