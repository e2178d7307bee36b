-- The whole riskhook schema for PostgreSQL: the same tables, keys and CHECKs as the SQLite
-- migrations 0001-0004 end with, in PostgreSQL types.
--
-- Text that is ordered or compared (ids paged by `>`, session statuses compared as a row value)
-- is `COLLATE "C"`: byte order, as in SQLite and in Rust's `str` ordering, whatever the
-- database's default collation is.

-- Every verified Didit delivery, stored once, with the bytes exactly as received.
CREATE TABLE events (
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY, -- arrival order
    id              TEXT    COLLATE "C" NOT NULL UNIQUE,               -- evt_<uuid v7>
    provider        TEXT    NOT NULL,
    received_at     BIGINT  NOT NULL,                                  -- Unix seconds
    webhook_type    TEXT    NOT NULL,
    delivery_key    TEXT,                                              -- Didit event_id
    content_key     TEXT    NOT NULL,                                  -- type|subject|status|timestamp
    subject_id      TEXT,
    session_id      TEXT    COLLATE "C",
    status          TEXT,
    event_timestamp BIGINT,
    vendor_data     TEXT    COLLATE "C",
    key_id          TEXT    NOT NULL,
    scheme          TEXT    NOT NULL,
    body_trusted    BOOLEAN NOT NULL,
    raw             BYTEA   NOT NULL
);
-- The two keys that make a delivery exactly-once: a duplicate by either is ignored
-- (`INSERT … ON CONFLICT DO NOTHING`). NULLs are distinct, so events without event_id are
-- keyed by content alone.
CREATE UNIQUE INDEX events_delivery_key ON events (provider, delivery_key);
CREATE UNIQUE INDEX events_content_key ON events (provider, content_key);
CREATE INDEX events_session ON events (session_id);
CREATE INDEX events_vendor_data ON events (vendor_data, event_timestamp, seq);

-- Every assessment the engine made, with its full explanation and the signal snapshot it saw.
CREATE TABLE assessments (
    id            TEXT    COLLATE "C" PRIMARY KEY,                     -- asm_<uuid v7>
    event_id      TEXT    COLLATE "C" NOT NULL UNIQUE REFERENCES events (id),
    session_id    TEXT    COLLATE "C",
    user_id       TEXT    COLLATE "C",                                 -- Didit vendor_data
    policy_hash   TEXT    NOT NULL,
    score         INTEGER NOT NULL CHECK (score BETWEEN 0 AND 100),
    decision      TEXT    NOT NULL CHECK (decision IN ('approve', 'review', 'freeze')),
    decision_rank INTEGER NOT NULL,                                    -- approve 0, review 1, freeze 2
    evaluated_at  BIGINT  NOT NULL,                                    -- the `now` the policy saw
    created_at    BIGINT  NOT NULL,
    assessment    TEXT    NOT NULL,                                    -- canonical JSON
    case_id       TEXT    COLLATE "C"                                  -- REFERENCES cases, below
);
CREATE INDEX assessments_user ON assessments (user_id, evaluated_at);
CREATE INDEX assessments_session ON assessments (session_id);
CREATE INDEX assessments_case ON assessments (case_id);

-- Each session's current state: the greatest status observation (timestamp, lifecycle stage,
-- name) seen so far, so that arrival order does not matter. The stage is stored so that
-- advancing a session is one UPSERT comparing (timestamp, stage, status) as a row value.
CREATE TABLE sessions (
    session_id            TEXT    COLLATE "C" PRIMARY KEY,
    status                TEXT    COLLATE "C" NOT NULL,
    status_timestamp      BIGINT  NOT NULL,
    status_stage          INTEGER NOT NULL DEFAULT 0,
    status_event_id       TEXT    COLLATE "C" NOT NULL REFERENCES events (id),
    vendor_data           TEXT    COLLATE "C",
    first_seen_at         BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    current_assessment_id TEXT    COLLATE "C" REFERENCES assessments (id)
);
CREATE INDEX sessions_vendor_data ON sessions (vendor_data);

-- Each person (keyed by vendor_data): derived from the current assessments of their sessions
-- and the verdict of the last person to act; `version` counts their notified changes.
CREATE TABLE users (
    user_id               TEXT    COLLATE "C" PRIMARY KEY,
    status                TEXT    NOT NULL
                          CHECK (status IN ('active', 'in_review', 'frozen', 'declined')),
    verdict               TEXT    CHECK (verdict IN ('active', 'frozen', 'declined')),
    verdict_at            BIGINT,
    verdict_by            TEXT,
    version               BIGINT  NOT NULL DEFAULT 0,
    score                 INTEGER NOT NULL,
    decision              TEXT    NOT NULL,
    current_assessment_id TEXT    COLLATE "C" REFERENCES assessments (id),
    ever_frozen           BOOLEAN NOT NULL,
    first_seen_at         BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL
);

-- A review case gathers the evidence (assessments deciding review or freeze) about one user
-- until a person resolves it. At most one unresolved case per user, enforced here.
CREATE TABLE cases (
    id            TEXT    COLLATE "C" PRIMARY KEY,                     -- case_<uuid v7>
    user_id       TEXT    COLLATE "C" NOT NULL,
    status        TEXT    NOT NULL
                  CHECK (status IN ('open', 'claimed', 'pending_approval', 'resolved')),
    decision      TEXT    NOT NULL CHECK (decision IN ('review', 'freeze')),
    decision_rank INTEGER NOT NULL,
    assignee      TEXT,
    opened_at     BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    resolved_at   BIGINT,
    resolved_by   TEXT,
    outcome       TEXT    CHECK (outcome IN ('approve', 'decline', 'freeze', 'unfreeze')),
    reason        TEXT
);
CREATE UNIQUE INDEX cases_one_open_per_user ON cases (user_id) WHERE status <> 'resolved';
CREATE INDEX cases_status ON cases (status, id);
CREATE INDEX cases_user ON cases (user_id, id);

ALTER TABLE assessments ADD FOREIGN KEY (case_id) REFERENCES cases (id);

-- Manual freezes and unfreezes, and case resolutions waiting for a second person.
CREATE TABLE actions (
    id              TEXT    COLLATE "C" PRIMARY KEY,                   -- act_<uuid v7>
    kind            TEXT    NOT NULL CHECK (kind IN ('freeze', 'unfreeze', 'resolve_case')),
    user_id         TEXT    COLLATE "C" NOT NULL,
    case_id         TEXT    COLLATE "C" REFERENCES cases (id),
    outcome         TEXT    CHECK (outcome IN ('approve', 'decline', 'freeze', 'unfreeze')),
    case_evidence   BIGINT,                                            -- evidence count when requested
    reason          TEXT    NOT NULL,
    requested_by    TEXT    NOT NULL,
    requested_at    BIGINT  NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    decided_by      TEXT,
    decided_at      BIGINT,
    decision_reason TEXT
);
CREATE INDEX actions_status ON actions (status, id);

-- API keys made by `riskhook keys create`: only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id         TEXT   COLLATE "C" PRIMARY KEY,                         -- key_<hex>
    name       TEXT   NOT NULL,
    role       TEXT   NOT NULL CHECK (role IN ('read', 'review', 'admin')),
    hash       TEXT   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT   NOT NULL,
    revoked_at BIGINT
);

-- The audit log: append-only and hash-chained (riskhook_core::audit). Appends are serialised
-- by an advisory lock (see `effects.rs`), so `seq` is the chain position 1, 2, 3... The
-- triggers stop accidental edits; the chain catches deliberate ones (`riskhook audit verify`).
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,                                      -- chain position
    id        TEXT   COLLATE "C" NOT NULL UNIQUE,                      -- aud_<uuid v7>
    at        BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    reason    TEXT,
    before    TEXT,
    after     TEXT,
    prev_hash TEXT   NOT NULL,
    hash      TEXT   NOT NULL UNIQUE
);
CREATE INDEX audit_log_action ON audit_log (action, seq);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
-- PostgreSQL can also empty a table without touching its rows.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Notification endpoints named in the configuration, and their state (410 Gone disables).
CREATE TABLE endpoints (
    id              TEXT    COLLATE "C" PRIMARY KEY,
    configured      BOOLEAN NOT NULL,
    disabled_at     BIGINT,                                            -- ms
    disabled_reason TEXT,
    updated_at      BIGINT  NOT NULL                                   -- ms
);

-- The outbox: one row per notification, written in the transaction of the change it reports.
CREATE TABLE outbox (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT   COLLATE "C" NOT NULL UNIQUE,                     -- msg_<uuid v7>: the webhook-id
    user_id    TEXT   COLLATE "C" NOT NULL,
    event_type TEXT   NOT NULL,
    payload    TEXT   NOT NULL,
    created_at BIGINT NOT NULL                                         -- ms
);
CREATE INDEX outbox_user ON outbox (user_id, seq);

-- One delivery of a notification to one endpoint, with its retry state and lease. `seq` is
-- taken at insert, not at commit; a user's rows are written under that user's lock, so their
-- `seq` order is their commit order, which is what per-user delivery order needs.
CREATE TABLE deliveries (
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT    COLLATE "C" NOT NULL UNIQUE,               -- dlv_<hex>
    message_seq     BIGINT  NOT NULL REFERENCES outbox (seq),
    endpoint_id     TEXT    COLLATE "C" NOT NULL REFERENCES endpoints (id),
    user_id         TEXT    COLLATE "C" NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,                                  -- ms
    lease_owner     TEXT,
    lease_until     BIGINT,                                            -- ms
    last_status     INTEGER,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,                                  -- ms
    delivered_at    BIGINT,                                            -- ms
    UNIQUE (message_seq, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_order ON deliveries (endpoint_id, user_id, seq) WHERE status = 'pending';
CREATE INDEX deliveries_status ON deliveries (status, seq);
