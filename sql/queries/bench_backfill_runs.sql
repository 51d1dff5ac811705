-- The last run record of each benchmarked read date (the backfill's runs).
SELECT DISTINCT ON (read_date) read_date, status, selected, scored, quarantined, auto_applied,
       sent_to_review, skipped_analyst, started_at, finished_at
FROM vee.scoring_run
WHERE read_date BETWEEN :first AND :last AND started_at >= :since
ORDER BY read_date, started_at DESC
