-- Statistics of the run's staged rows, just inserted: the validation and shard queries then
-- plan for the day's real volume. Through the migrator's function (migration 0058): the
-- tasks' login does not own the table, and a non-owner's ANALYZE only warns and skips it.
-- Called only when nightly_extract_analyze_allowed.sql says this login may.
SELECT vee.analyze_nightly_extract();
