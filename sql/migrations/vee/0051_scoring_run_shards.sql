-- How many shards a run's extract spread its rows over (issue 6): small days use fewer than
-- VEE_SHARD_COUNT, since each shard task pays a process start and a model load.
ALTER TABLE vee.scoring_run ADD COLUMN shard_count integer;
