-- Issue 14: a delivery in four round trips instead of ten to fifteen. Each statement of the
-- ingest transaction was a round trip: riskhook's and PostgreSQL's CPU per statement, and,
-- with the database a network hop away, its latency, paid a dozen times per delivery. The
-- statements now run server-side, in two calls between BEGIN and COMMIT:
--   riskhook_ingest   everything up to the facts the user's recomputation needs (the user's
--                     lock, the event, its snapshot, assessment and shadows, the session's
--                     advance, the user's facts and open case), in that order;
--   riskhook_settle   what riskhook decided from those facts (the rulebook stays in Rust):
--                     the evidence in the user's case, the user's row and notification, the
--                     audit entries staged.
-- The same SQL serves people's commands (riskhook_user_facts, riskhook_store_user,
-- riskhook_stage_audit), so there is one definition of each write. All are PL/pgSQL, not SQL
-- functions: PostgreSQL caches a PL/pgSQL function's plans per connection, while it parses
-- and plans a SQL function's body at every call (before PostgreSQL 18), which profiled at a
-- tenth of its CPU per delivery.

-- The facts a user's recomputation follows from (rulebook::UserFacts) and their unresolved
-- case. The caller holds the user's lock.
CREATE FUNCTION riskhook_user_facts(p_user TEXT)
RETURNS TABLE (
    user_found BOOLEAN, user_status TEXT, user_decision TEXT, user_score INTEGER,
    user_assessment TEXT, user_verdict TEXT, user_version BIGINT, user_ever_frozen BOOLEAN,
    open_case_id TEXT, open_case_decision TEXT,
    current_id TEXT, current_score INTEGER, current_decision TEXT)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT u.user_id IS NOT NULL, u.status, u.decision, u.score, u.current_assessment_id,
           u.verdict, u.version,
           EXISTS (SELECT 1 FROM assessments WHERE user_id = p_user AND decision = 'freeze'),
           c.id, c.decision, cur.id, cur.score, cur.decision
    FROM (SELECT 1) AS one
    LEFT JOIN users u ON u.user_id = p_user
    -- at most one: cases_one_open_per_user
    LEFT JOIN cases c ON c.user_id = p_user AND c.status <> 'resolved'
    LEFT JOIN LATERAL (
        SELECT a.id, a.score, a.decision
        FROM sessions s JOIN assessments a ON a.id = s.current_assessment_id
        WHERE s.vendor_data = p_user
        ORDER BY a.decision_rank DESC, a.score DESC, a.evaluated_at DESC, s.session_id
        LIMIT 1) AS cur ON TRUE;
END $$;

-- Stores a user's recomputed row; with a payload (the status or decision moved), also a
-- `user.updated` message and one pending delivery per configured endpoint (disabled ones
-- included: they wait until it is enabled again). Nobody to tell: no message, since one
-- without deliveries would only be written and never read. Returns whether one was queued.
CREATE FUNCTION riskhook_store_user(
    p_user TEXT, p_now BIGINT, p_now_ms BIGINT, p_status TEXT, p_score INTEGER,
    p_decision TEXT, p_assessment TEXT, p_ever_frozen BOOLEAN, p_version BIGINT,
    p_message_id TEXT, p_payload TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO users (user_id, status, score, decision, current_assessment_id, ever_frozen,
                       version, first_seen_at, updated_at)
    VALUES (p_user, p_status, p_score, p_decision, p_assessment, p_ever_frozen, p_version,
            p_now, p_now)
    ON CONFLICT (user_id) DO UPDATE SET
        status = EXCLUDED.status, score = EXCLUDED.score, decision = EXCLUDED.decision,
        current_assessment_id = EXCLUDED.current_assessment_id,
        ever_frozen = EXCLUDED.ever_frozen, version = EXCLUDED.version,
        updated_at = EXCLUDED.updated_at;
    IF p_payload IS NULL OR NOT EXISTS (SELECT 1 FROM endpoints WHERE configured) THEN
        RETURN FALSE;
    END IF;
    -- The delivery ids are 24 random hex digits, as SQLite's `hex(randomblob(12))`.
    WITH message AS (
        INSERT INTO outbox (id, user_id, event_type, payload, created_at)
        VALUES (p_message_id, p_user, 'user.updated', p_payload, p_now_ms) RETURNING seq
    )
    INSERT INTO deliveries (id, message_seq, endpoint_id, user_id, status, next_attempt_at,
                            created_at)
    SELECT 'dlv_' || left(replace(gen_random_uuid()::text, '-', ''), 24), message.seq, e.id,
           p_user, 'pending', p_now_ms, p_now_ms
    FROM message, endpoints e WHERE e.configured
    ORDER BY e.id;
    RETURN TRUE;
END $$;

-- Stages audit entries, in array order (the identity column is the staging order): see
-- migration 6.
CREATE FUNCTION riskhook_stage_audit(
    p_ids TEXT[], p_at BIGINT[], p_actor TEXT[], p_action TEXT[], p_subject TEXT[],
    p_reason TEXT[], p_before TEXT[], p_after TEXT[], p_keyed BOOLEAN, p_seal TEXT[])
RETURNS VOID LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_staged (id, at, actor, action, subject, reason, before, after, keyed, seal)
    SELECT e.id, e.at, e.actor, e.action, e.subject, e.reason, e.before, e.after, p_keyed, e.seal
    FROM UNNEST(p_ids, p_at, p_actor, p_action, p_subject, p_reason, p_before, p_after, p_seal)
         WITH ORDINALITY AS e (id, at, actor, action, subject, reason, before, after, seal, n)
    ORDER BY e.n;
END $$;

-- A delivery's first call. Takes the user's lock first (the lock order of `effects.rs`),
-- then inserts the event unless one with its delivery key or content key exists (committed,
-- or being committed: the insert then waits for that transaction). A duplicate is not
-- `stored`, returns the first event's id in `duplicate_of`, and has changed nothing; the
-- caller rolls back. Every
-- statement here sees the ones before it, so the facts include this event's assessment and
-- session.
CREATE FUNCTION riskhook_ingest(
    p_id TEXT, p_provider TEXT, p_received_at BIGINT, p_webhook_type TEXT, p_delivery_key TEXT,
    p_content_key TEXT, p_subject_id TEXT, p_session_id TEXT, p_status TEXT,
    p_event_timestamp BIGINT, p_vendor_data TEXT, p_key_id TEXT, p_scheme TEXT,
    p_body_trusted BOOLEAN, p_raw BYTEA, p_replay_at BIGINT, p_signals TEXT,
    -- the session's status as the pipeline parsed it, and its lifecycle stage
    p_session_status TEXT, p_session_stage INTEGER,
    -- the assessment, all NULL when there is none
    p_assessment_id TEXT, p_policy_hash TEXT, p_score INTEGER, p_decision TEXT,
    p_decision_rank INTEGER, p_evaluated_at BIGINT, p_assessment TEXT,
    p_shadow_ids TEXT[], p_shadow_hashes TEXT[], p_shadow_scores INTEGER[],
    p_shadow_decisions TEXT[], p_shadow_fired TEXT[],
    OUT stored BOOLEAN, OUT duplicate_of TEXT, OUT session_advanced BOOLEAN,
    OUT user_found BOOLEAN, OUT user_status TEXT, OUT user_decision TEXT, OUT user_score INTEGER,
    OUT user_assessment TEXT, OUT user_verdict TEXT, OUT user_version BIGINT,
    OUT user_ever_frozen BOOLEAN, OUT open_case_id TEXT, OUT open_case_decision TEXT,
    OUT current_id TEXT, OUT current_score INTEGER, OUT current_decision TEXT)
LANGUAGE plpgsql AS $$
DECLARE
    v_seq BIGINT;
    v_current TEXT;
BEGIN
    session_advanced := FALSE;
    stored := FALSE;
    IF p_vendor_data IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('user:' || p_vendor_data, 0));
    END IF;
    INSERT INTO events (id, provider, received_at, webhook_type, delivery_key, content_key,
                        subject_id, session_id, status, event_timestamp, vendor_data, key_id,
                        scheme, body_trusted, raw)
    VALUES (p_id, p_provider, p_received_at, p_webhook_type, p_delivery_key, p_content_key,
            p_subject_id, p_session_id, p_status, p_event_timestamp, p_vendor_data, p_key_id,
            p_scheme, p_body_trusted, p_raw)
    ON CONFLICT DO NOTHING
    RETURNING seq INTO v_seq;
    IF v_seq IS NULL THEN
        -- A new statement: at READ COMMITTED it sees the row the insert conflicted with.
        -- Events are never deleted, so it is there.
        SELECT e.id INTO duplicate_of FROM events e
        WHERE e.provider = p_provider
          AND (e.delivery_key = p_delivery_key OR e.content_key = p_content_key)
        ORDER BY e.seq LIMIT 1;
        RETURN;
    END IF;
    stored := TRUE;
    IF p_session_id IS NOT NULL THEN
        INSERT INTO signal_snapshots (event_seq, received_at, at, user_id, signals)
        VALUES (v_seq, p_received_at, p_replay_at, p_vendor_data, p_signals);
    END IF;
    IF p_assessment_id IS NOT NULL THEN
        INSERT INTO assessments (id, event_id, session_id, user_id, policy_hash, score, decision,
                                 decision_rank, evaluated_at, created_at, assessment)
        VALUES (p_assessment_id, p_id, p_session_id, p_vendor_data, p_policy_hash, p_score,
                p_decision, p_decision_rank, p_evaluated_at, p_received_at, p_assessment);
        INSERT INTO shadow_assessments (shadow_id, assessment_id, policy_hash, score, decision,
                                        fired)
        SELECT s.id, p_assessment_id, s.hash, s.score, s.decision, s.fired
        FROM UNNEST(p_shadow_ids, p_shadow_hashes, p_shadow_scores, p_shadow_decisions,
                    p_shadow_fired) WITH ORDINALITY AS s (id, hash, score, decision, fired, n)
        ORDER BY s.n;
    END IF;
    -- The session moves to the event's status if the event's observation is the greatest seen
    -- (body timestamp, then lifecycle stage, then the status text in byte order), compared as
    -- one row value in one statement. Concurrent events of one session are safe without a
    -- lock of ours: the UPSERT locks the row, and compares against its latest committed version.
    IF p_session_id IS NOT NULL AND p_session_status IS NOT NULL
       AND p_event_timestamp IS NOT NULL THEN
        INSERT INTO sessions AS s (session_id, status, status_timestamp, status_stage,
                                   status_event_id, vendor_data, first_seen_at, updated_at,
                                   current_assessment_id)
        VALUES (p_session_id, p_session_status, p_event_timestamp, p_session_stage, p_id,
                p_vendor_data, p_received_at, p_received_at, p_assessment_id)
        ON CONFLICT (session_id) DO UPDATE SET
            status = CASE WHEN (EXCLUDED.status_timestamp, EXCLUDED.status_stage, EXCLUDED.status)
                               > (s.status_timestamp, s.status_stage, s.status)
                          THEN EXCLUDED.status ELSE s.status END,
            status_event_id = CASE WHEN (EXCLUDED.status_timestamp, EXCLUDED.status_stage,
                                         EXCLUDED.status)
                                        > (s.status_timestamp, s.status_stage, s.status)
                                   THEN EXCLUDED.status_event_id ELSE s.status_event_id END,
            current_assessment_id = CASE WHEN (EXCLUDED.status_timestamp, EXCLUDED.status_stage,
                                               EXCLUDED.status)
                                              > (s.status_timestamp, s.status_stage, s.status)
                                         THEN EXCLUDED.current_assessment_id
                                         ELSE s.current_assessment_id END,
            status_stage = CASE WHEN (EXCLUDED.status_timestamp, EXCLUDED.status_stage,
                                      EXCLUDED.status)
                                     > (s.status_timestamp, s.status_stage, s.status)
                                THEN EXCLUDED.status_stage ELSE s.status_stage END,
            status_timestamp = GREATEST(s.status_timestamp, EXCLUDED.status_timestamp),
            vendor_data = COALESCE(s.vendor_data, EXCLUDED.vendor_data),
            updated_at = EXCLUDED.updated_at
        RETURNING s.status_event_id INTO v_current;
        session_advanced := v_current = p_id;
    END IF;
    IF p_vendor_data IS NOT NULL THEN
        SELECT * INTO user_found, user_status, user_decision, user_score, user_assessment,
                      user_verdict, user_version, user_ever_frozen, open_case_id,
                      open_case_decision, current_id, current_score, current_decision
        FROM riskhook_user_facts(p_vendor_data);
    END IF;
END $$;

-- A delivery's second call: what riskhook decided from the first call's facts. With a case
-- id, the assessment is evidence in that case (opened now when `p_case_opened`, else joined,
-- its decision raised to `p_case_decision`); with a user, their row is stored (and notified:
-- riskhook_store_user); then the audit entries are staged. Returns whether a notification
-- was queued.
CREATE FUNCTION riskhook_settle(
    -- as riskhook_store_user's
    p_user TEXT, p_now BIGINT, p_now_ms BIGINT, p_status TEXT, p_score INTEGER,
    p_decision TEXT, p_assessment TEXT, p_ever_frozen BOOLEAN, p_version BIGINT,
    p_message_id TEXT, p_payload TEXT,
    p_case_id TEXT, p_case_opened BOOLEAN, p_case_decision TEXT, p_case_rank INTEGER,
    p_assessment_id TEXT,
    p_audit_ids TEXT[], p_audit_at BIGINT[], p_audit_actor TEXT[], p_audit_action TEXT[],
    p_audit_subject TEXT[], p_audit_reason TEXT[], p_audit_before TEXT[], p_audit_after TEXT[],
    p_audit_keyed BOOLEAN, p_audit_seal TEXT[])
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    v_queued BOOLEAN := FALSE;
BEGIN
    IF p_case_id IS NOT NULL THEN
        IF p_case_opened THEN
            INSERT INTO cases (id, user_id, status, decision, decision_rank, opened_at,
                               updated_at)
            VALUES (p_case_id, p_user, 'open', p_case_decision, p_case_rank, p_now, p_now);
        ELSE
            UPDATE cases SET decision = p_case_decision, decision_rank = p_case_rank,
                             updated_at = p_now
            WHERE id = p_case_id;
        END IF;
        UPDATE assessments SET case_id = p_case_id WHERE id = p_assessment_id;
    END IF;
    IF p_user IS NOT NULL THEN
        v_queued := riskhook_store_user(p_user, p_now, p_now_ms, p_status, p_score,
                                        p_decision, p_assessment, p_ever_frozen, p_version,
                                        p_message_id, p_payload);
    END IF;
    PERFORM riskhook_stage_audit(p_audit_ids, p_audit_at, p_audit_actor, p_audit_action,
                                 p_audit_subject, p_audit_reason, p_audit_before, p_audit_after,
                                 p_audit_keyed, p_audit_seal);
    RETURN v_queued;
END $$;
