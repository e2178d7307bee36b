-- Intake (issue 14): a delivery's body and its assessment's explanation are written
-- lz4-compressed when that makes them smaller (src/packed.rs); these columns say how each
-- value is stored: 0 as it is, 1 lz4. Rows stored before keep 0 and read as they always did.
-- Nothing is rewritten: the migration only adds the two columns.
ALTER TABLE events ADD COLUMN raw_encoding INTEGER NOT NULL DEFAULT 0
    CHECK (raw_encoding IN (0, 1));
ALTER TABLE assessments ADD COLUMN assessment_encoding INTEGER NOT NULL DEFAULT 0
    CHECK (assessment_encoding IN (0, 1));
