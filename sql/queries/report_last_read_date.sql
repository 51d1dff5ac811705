-- The latest read date any nightly run looked at: the end of the summary's window.
SELECT max(read_date) AS last_read_date FROM vee.scoring_run;
