-- Issue 14: the foreign keys that every delivery checked. Each check is a query of its own run
-- by a trigger, which also locks the referenced row (FOR KEY SHARE): five to seven a delivery,
-- on rows the same function had just written. Without them PostgreSQL spends ~13% less CPU a
-- delivery and one instance takes ~10% more deliveries (BENCHMARKS.md, "PostgreSQL: the
-- foreign keys of the intake path dropped").
--
-- What they guarded still holds, because of how these rows are written rather than because of
-- a constraint: each reference is written in the transaction that writes (or finds) the row it
-- names, by riskhook's own functions, and none of these rows is ever deleted. Tests check that
-- every reference resolves after concurrent instances, SIGKILLs and every conformance scenario
-- (`test_support::dangling_references`). Foreign keys off the intake path (people's actions,
-- notification deliveries) stay. Instances of the previous version write the same rows.
ALTER TABLE assessments DROP CONSTRAINT assessments_event_id_fkey;
ALTER TABLE assessments DROP CONSTRAINT assessments_case_id_fkey;
ALTER TABLE shadow_assessments DROP CONSTRAINT shadow_assessments_assessment_id_fkey;
ALTER TABLE signal_snapshots DROP CONSTRAINT signal_snapshots_event_seq_fkey;
ALTER TABLE sessions DROP CONSTRAINT sessions_status_event_id_fkey;
ALTER TABLE sessions DROP CONSTRAINT sessions_current_assessment_id_fkey;
ALTER TABLE users DROP CONSTRAINT users_current_assessment_id_fkey;
