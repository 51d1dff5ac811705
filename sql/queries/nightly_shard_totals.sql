-- The shards' records of one run, summed.
SELECT count(*)::int AS shards,
       coalesce(sum(scored), 0)::int AS scored,
       coalesce(sum(auto_applied), 0)::int AS auto_applied,
       coalesce(sum(sent_to_review), 0)::int AS sent_to_review,
       coalesce(sum(skipped_analyst), 0)::int AS skipped_analyst
FROM vee.nightly_shard_result
WHERE dag_run_id = :dag_run_id;
