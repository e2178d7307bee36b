-- Shadow policies (issue 13): what each `[[policy.shadow]]` decided on an event's signals,
-- stored in the transaction of the real assessment and used for nothing but comparison.
-- Keyed by shadow, then the real assessment's id (a UUIDv7: new rows go at the end of each
-- shadow's range, so a shadow costs few index pages per delivery).
CREATE TABLE shadow_assessments (
    shadow_id     TEXT    NOT NULL,
    assessment_id TEXT    NOT NULL REFERENCES assessments (id),
    policy_hash   TEXT    NOT NULL,
    score         INTEGER NOT NULL CHECK (score BETWEEN 0 AND 100),
    decision      TEXT    NOT NULL CHECK (decision IN ('approve', 'review', 'freeze')),
    fired         TEXT    NOT NULL,                    -- JSON array of rule ids
    PRIMARY KEY (shadow_id, assessment_id)
) WITHOUT ROWID;
