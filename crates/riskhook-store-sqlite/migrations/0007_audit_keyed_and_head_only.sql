-- Issue 11, finding 4: an entry may be keyed (its hash an HMAC-SHA256 under the audit key,
-- which is not in the database), and an insert must extend the head of the chain.
--
-- `keyed` says how `hash` was computed; it is not itself hashed, and needs not be: flipping it
-- makes the stored hash wrong under either rule. Entries written before this migration, or
-- without a key, are 0.
ALTER TABLE audit_log ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0 CHECK (keyed IN (0, 1));

-- UPDATE and DELETE are refused since migration 4; this refuses an INSERT anywhere but at the
-- head: its `seq` must be the head's + 1 and its `prev_hash` the head's hash (GENESIS for the
-- first entry). A forged entry in the middle, or a second chain, cannot be inserted. Both
-- look-ups are on the primary key (max() of a rowid alias reads one page), so an append costs
-- two B-tree descents more, on pages the writer's own head read has just touched.
-- An attacker who may run DDL can drop this trigger: the key and the anchors are what catch
-- that (see README, "The audit log").
CREATE TRIGGER audit_log_extends_head BEFORE INSERT ON audit_log
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit_log)
  OR NEW.prev_hash IS NOT coalesce(
        (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1),
        '0000000000000000000000000000000000000000000000000000000000000000')
BEGIN
    SELECT RAISE(ABORT, 'an audit entry must extend the head of the chain');
END;
