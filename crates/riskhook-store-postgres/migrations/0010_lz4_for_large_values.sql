-- Issue 14: the two large values a delivery stores, its raw body (2-4 KB) and its assessment's
-- JSON (3-9 KB), are over PostgreSQL's TOAST threshold, so each is compressed as it is written,
-- with pglz by default. lz4 compresses them for less CPU: side by side, PostgreSQL's CPU per
-- delivery fell ~6% (BENCHMARKS.md). Only values written from now on use it; older ones stay
-- pglz, and both read back the same. Instances of the previous version, still running during a
-- rolling upgrade, are unaffected: compression is the server's business.
--
-- A server built without lz4 refuses the method (feature_not_supported): the values then stay
-- pglz, and the migration still succeeds.
DO $$
BEGIN
    ALTER TABLE events ALTER COLUMN raw SET COMPRESSION lz4;
    ALTER TABLE assessments ALTER COLUMN assessment SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'this PostgreSQL has no lz4: stored bodies and assessments stay compressed with pglz';
END;
$$;
