-- The lifecycle stage of a session's current status (riskhook_didit::session::stage), stored so
-- that advancing a session is one UPSERT comparing (timestamp, stage, status) as a row value.
ALTER TABLE sessions ADD COLUMN status_stage INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET status_stage = CASE status
    WHEN 'Not Started' THEN 1
    WHEN 'In Progress' THEN 2
    WHEN 'Awaiting User' THEN 3
    WHEN 'In Review' THEN 4
    WHEN 'Resubmitted' THEN 5
    WHEN 'Approved' THEN 6
    WHEN 'Declined' THEN 6
    WHEN 'Abandoned' THEN 6
    WHEN 'Expired' THEN 6
    WHEN 'Kyc Expired' THEN 7
    ELSE 0
END;
