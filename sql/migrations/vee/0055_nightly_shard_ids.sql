-- Each shard's exception ids to score, written once by the validate step (its rows that
-- passed, in id order) and read back by the shard a chunk at a time through a cursor
-- (nightly_shard_ids.sql). They replace the staging index
-- nightly_extract_shard_idx (dag_run_id, shard, exception_id), whose upkeep was half of the
-- extract (~2.3 s of a million-row INSERT, on the path before any shard starts), while one
-- ordered pass over the staged rows builds every list in ~0.6 s. Without that index each
-- query of vee.nightly_extract is one sequential pass over the staged rows: the run's own,
-- and any other run's staged at the time (concurrent backfill runs; a failed run's, kept
-- for a resume up to 3 days). Most read all of a run's rows, or its failed ones, anyway.
-- UNLOGGED, like the staging table: a crash loses only what a rerun of validate rebuilds.
CREATE UNLOGGED TABLE vee.nightly_shard_ids (
    dag_run_id     text NOT NULL,
    shard          integer NOT NULL,
    exception_ids  bigint[] NOT NULL,
    PRIMARY KEY (dag_run_id, shard)
);
-- A list is written whole and read in one pass (2 MB for 250,000 ids): stored out of line
-- uncompressed.
ALTER TABLE vee.nightly_shard_ids ALTER COLUMN exception_ids SET STORAGE EXTERNAL;

-- Takes nightly_extract's lock for a moment: apply between nights (`vee db upgrade`).
DROP INDEX IF EXISTS vee.nightly_extract_shard_idx;
