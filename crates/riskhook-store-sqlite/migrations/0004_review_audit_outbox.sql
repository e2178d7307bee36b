-- Manual review, account actions, API keys, the audit log and the notification outbox.

-- Users gain a `declined` status, the verdict of the last person to act, and a version that
-- counts their notified changes. SQLite cannot alter a CHECK constraint: the table is rebuilt.
CREATE TABLE users_v4 (
    user_id               TEXT    PRIMARY KEY,
    status                TEXT    NOT NULL
                          CHECK (status IN ('active', 'in_review', 'frozen', 'declined')),
    verdict               TEXT    CHECK (verdict IN ('active', 'frozen', 'declined')),
    verdict_at            INTEGER,
    verdict_by            TEXT,
    version               INTEGER NOT NULL DEFAULT 0,
    score                 INTEGER NOT NULL,
    decision              TEXT    NOT NULL,
    current_assessment_id TEXT    REFERENCES assessments (id),
    ever_frozen           INTEGER NOT NULL CHECK (ever_frozen IN (0, 1)),
    first_seen_at         INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
INSERT INTO users_v4 (user_id, status, score, decision, current_assessment_id, ever_frozen,
                      first_seen_at, updated_at)
SELECT user_id, status, score, decision, current_assessment_id, ever_frozen, first_seen_at,
       updated_at
FROM users;
DROP TABLE users;
ALTER TABLE users_v4 RENAME TO users;

-- A review case gathers the evidence (assessments deciding review or freeze) about one user
-- until a person resolves it. At most one unresolved case per user, enforced here.
CREATE TABLE cases (
    id            TEXT    PRIMARY KEY,                    -- case_<uuid v7>
    user_id       TEXT    NOT NULL,
    status        TEXT    NOT NULL
                  CHECK (status IN ('open', 'claimed', 'pending_approval', 'resolved')),
    decision      TEXT    NOT NULL CHECK (decision IN ('review', 'freeze')),
    decision_rank INTEGER NOT NULL,
    assignee      TEXT,
    opened_at     INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    resolved_at   INTEGER,
    resolved_by   TEXT,
    outcome       TEXT    CHECK (outcome IN ('approve', 'decline', 'freeze', 'unfreeze')),
    reason        TEXT
);
CREATE UNIQUE INDEX cases_one_open_per_user ON cases (user_id) WHERE status <> 'resolved';
CREATE INDEX cases_status ON cases (status, id);
CREATE INDEX cases_user ON cases (user_id, id);

ALTER TABLE assessments ADD COLUMN case_id TEXT REFERENCES cases (id);
CREATE INDEX assessments_case ON assessments (case_id);

-- Manual freezes and unfreezes, and case resolutions waiting for a second person.
CREATE TABLE actions (
    id              TEXT    PRIMARY KEY,                  -- act_<uuid v7>
    kind            TEXT    NOT NULL CHECK (kind IN ('freeze', 'unfreeze', 'resolve_case')),
    user_id         TEXT    NOT NULL,
    case_id         TEXT    REFERENCES cases (id),
    outcome         TEXT    CHECK (outcome IN ('approve', 'decline', 'freeze', 'unfreeze')),
    case_evidence   INTEGER,                              -- evidence count when requested
    reason          TEXT    NOT NULL,
    requested_by    TEXT    NOT NULL,
    requested_at    INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'applied', 'rejected')),
    decided_by      TEXT,
    decided_at      INTEGER,
    decision_reason TEXT
);
CREATE INDEX actions_status ON actions (status, id);

-- API keys made by `riskhook keys create`: only the SHA-256 of the secret is kept.
CREATE TABLE api_keys (
    id         TEXT    PRIMARY KEY,                       -- key_<hex>
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL CHECK (role IN ('read', 'review', 'admin')),
    hash       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    revoked_at INTEGER
);

-- The audit log: append-only and hash-chained (riskhook_core::audit). The triggers stop
-- accidental edits; the chain catches deliberate ones (`riskhook audit verify`).
CREATE TABLE audit_log (
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
    hash      TEXT    NOT NULL UNIQUE
);
CREATE INDEX audit_log_action ON audit_log (action, seq);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

-- Notification endpoints named in the configuration, and their state (410 Gone disables).
CREATE TABLE endpoints (
    id              TEXT    PRIMARY KEY,
    configured      INTEGER NOT NULL CHECK (configured IN (0, 1)),
    disabled_at     INTEGER,                              -- ms
    disabled_reason TEXT,
    updated_at      INTEGER NOT NULL                      -- ms
);

-- The outbox: one row per notification, written in the transaction of the change it reports.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,                   -- msg_<uuid v7>: the webhook-id
    user_id    TEXT    NOT NULL,
    event_type TEXT    NOT NULL,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL                           -- ms
);
CREATE INDEX outbox_user ON outbox (user_id, seq);

-- One delivery of a notification to one endpoint, with its retry state and lease.
CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,    -- order per user follows this
    id              TEXT    NOT NULL UNIQUE,              -- dlv_<hex>
    message_seq     INTEGER NOT NULL REFERENCES outbox (seq),
    endpoint_id     TEXT    NOT NULL REFERENCES endpoints (id),
    user_id         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,                     -- ms
    lease_owner     TEXT,
    lease_until     INTEGER,                              -- ms
    last_status     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,                     -- ms
    delivered_at    INTEGER,                              -- ms
    UNIQUE (message_seq, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_order ON deliveries (endpoint_id, user_id, seq) WHERE status = 'pending';
CREATE INDEX deliveries_status ON deliveries (status, seq);
