-- Shadow policies (issue 13): what each `[[policy.shadow]]` decided on an event's signals,
-- stored in the transaction of the real assessment and used for nothing but comparison.
CREATE TABLE shadow_assessments (
    shadow_id     TEXT     COLLATE "C" NOT NULL,
    assessment_id TEXT     COLLATE "C" NOT NULL REFERENCES assessments (id),
    policy_hash   TEXT     NOT NULL,
    score         INTEGER  NOT NULL CHECK (score BETWEEN 0 AND 100),
    decision      TEXT     NOT NULL CHECK (decision IN ('approve', 'review', 'freeze')),
    fired         TEXT     NOT NULL,                    -- JSON array of rule ids
    PRIMARY KEY (shadow_id, assessment_id)
);
