-- This shard's record, in the shard's own transaction.
INSERT INTO vee.nightly_shard_result AS s (
    dag_run_id, shard, scored, auto_applied, sent_to_review, skipped_analyst, seconds, finished_at
)
VALUES (:dag_run_id, :shard, :scored, :auto_applied, :sent_to_review, :skipped_analyst, :seconds, now())
ON CONFLICT (dag_run_id, shard) DO UPDATE
SET scored = EXCLUDED.scored,
    auto_applied = EXCLUDED.auto_applied,
    sent_to_review = EXCLUDED.sent_to_review,
    skipped_analyst = EXCLUDED.skipped_analyst,
    seconds = EXCLUDED.seconds,
    finished_at = EXCLUDED.finished_at;
