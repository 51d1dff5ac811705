-- The end of the summary's window: the latest read date a nightly run found exceptions of
-- (selected > 0). A run of a date with none (the scheduler's first run on a warehouse whose
-- data ends months earlier, a mistyped future date) must not move the window onto empty
-- days and blank its counts and trends (outside probe, 2026-11-28); with no such run, the
-- latest read date any run looked at.
SELECT coalesce(max(read_date) FILTER (WHERE selected > 0), max(read_date)) AS last_read_date
FROM vee.scoring_run;
