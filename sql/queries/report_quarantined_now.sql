-- Exceptions in quarantine now, of read dates in the window: what the summary's headline
-- counts (rows without an id each count once). Not a sum over vee.scoring_run, which counts
-- again each rerun of a date and the rows a run stopped by a batch check would have
-- quarantined (it writes none).
SELECT count(DISTINCT q.exception_id) + count(*) FILTER (WHERE q.exception_id IS NULL)
           AS quarantined
FROM vee.quarantined_exception AS q
WHERE q.read_date BETWEEN :since AND :until;
