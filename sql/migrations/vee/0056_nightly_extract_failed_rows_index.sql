-- The staged rows that failed a row-level check, by run: validate forgets an earlier
-- attempt's failures (nightly_reset_failed_rows.sql) and quarantines this attempt's
-- (nightly_quarantine_insert.sql, nightly_quarantine_withdraw.sql). Without an index each
-- of those was a sequential pass over every staged row, ~0.35 s each on a million-row run,
-- on the path before any shard starts, to find the usual handful. Partial: a row that
-- passed is never in it, so the extract's INSERT only tests the predicate.
-- Takes nightly_extract's lock for a moment: apply between nights (`vee db upgrade`).
CREATE INDEX nightly_extract_failed_idx
    ON vee.nightly_extract (dag_run_id)
    WHERE failed_checks IS NOT NULL;
