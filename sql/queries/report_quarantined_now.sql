-- Exceptions in quarantine now, of read dates in the window: what the summary's headline
-- counts. Not a sum over vee.scoring_run, which counts again each rerun of a date and the
-- rows a run stopped by a batch check would have quarantined (it writes none).
SELECT count(DISTINCT q.exception_id) AS quarantined
FROM vee.quarantined_exception AS q
WHERE q.read_date BETWEEN :since AND :until;
