-- What the run's extract staged: how many rows, over how many shards.
UPDATE vee.scoring_run SET shard_count = :shard_count, staged_rows = :staged WHERE dag_run_id = :dag_run_id
