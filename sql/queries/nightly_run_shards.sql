UPDATE vee.scoring_run SET shard_count = :shard_count WHERE dag_run_id = :dag_run_id
