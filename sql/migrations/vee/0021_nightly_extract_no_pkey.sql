-- The nightly extract is loaded once per run (INSERT ... SELECT of up to millions of rows) and
-- then read by shard: a unique index on (dag_run_id, stage_row) cost a third of the load and
-- served only the update of the few rows that fail validation (a hash join does that).
-- stage_row stays unique within a run by construction (row_number()).
ALTER TABLE vee.nightly_extract DROP CONSTRAINT nightly_extract_pkey;
