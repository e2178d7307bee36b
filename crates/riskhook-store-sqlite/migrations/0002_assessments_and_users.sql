-- Every assessment the engine made, with its full explanation and the signal snapshot it saw.
CREATE TABLE assessments (
    id              TEXT    PRIMARY KEY,                 -- asm_<uuid v7>
    event_id        TEXT    NOT NULL UNIQUE REFERENCES events (id),
    session_id      TEXT,
    user_id         TEXT,                                -- Didit vendor_data
    policy_hash     TEXT    NOT NULL,
    score           INTEGER NOT NULL CHECK (score BETWEEN 0 AND 100),
    decision        TEXT    NOT NULL CHECK (decision IN ('approve', 'review', 'freeze')),
    decision_rank   INTEGER NOT NULL,                    -- approve 0, review 1, freeze 2
    evaluated_at    INTEGER NOT NULL,                    -- the `now` the policy saw
    created_at      INTEGER NOT NULL,
    assessment      TEXT    NOT NULL                     -- the Assessment, canonical JSON
);
CREATE INDEX assessments_user ON assessments (user_id, evaluated_at);
CREATE INDEX assessments_session ON assessments (session_id);

-- The session's current assessment is the one of the event that set its current status.
-- A session belongs to the user named by its vendor_data.
ALTER TABLE sessions ADD COLUMN current_assessment_id TEXT REFERENCES assessments (id);

-- Each person (keyed by vendor_data): derived from the current assessments of their sessions,
-- recomputed in the transaction of every event that touches them.
CREATE TABLE users (
    user_id               TEXT    PRIMARY KEY,
    status                TEXT    NOT NULL CHECK (status IN ('active', 'in_review', 'frozen')),
    score                 INTEGER NOT NULL,
    decision              TEXT    NOT NULL,
    current_assessment_id TEXT    REFERENCES assessments (id),
    ever_frozen           INTEGER NOT NULL CHECK (ever_frozen IN (0, 1)),
    first_seen_at         INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
