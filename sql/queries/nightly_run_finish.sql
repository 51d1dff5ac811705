-- Close a successful run: totals summed from the shards' own records.
UPDATE vee.scoring_run AS r
SET status = 'SUCCESS',
    scored = t.scored,
    auto_applied = t.auto_applied,
    sent_to_review = t.sent_to_review,
    skipped_analyst = t.skipped_analyst,
    summary = :summary,
    message = NULL,
    finished_at = now()
FROM (
    SELECT coalesce(sum(scored), 0)::int AS scored,
           coalesce(sum(auto_applied), 0)::int AS auto_applied,
           coalesce(sum(sent_to_review), 0)::int AS sent_to_review,
           coalesce(sum(skipped_analyst), 0)::int AS skipped_analyst
    FROM vee.nightly_shard_result
    WHERE dag_run_id = :dag_run_id
) AS t
WHERE r.dag_run_id = :dag_run_id;
