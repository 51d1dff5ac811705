-- Forget what an earlier attempt of this run staged, listed or recorded per shard.
DELETE FROM vee.nightly_extract WHERE dag_run_id = :dag_run_id;
DELETE FROM vee.nightly_shard_ids WHERE dag_run_id = :dag_run_id;
DELETE FROM vee.nightly_shard_result WHERE dag_run_id = :dag_run_id;
