-- Statistics of the run's staged rows, just inserted: the validation and shard queries then
-- plan for the day's real volume.
ANALYZE vee.nightly_extract;
