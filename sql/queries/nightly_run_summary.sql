-- The operator's summary text of a finished run.
UPDATE vee.scoring_run SET summary = :summary WHERE dag_run_id = :dag_run_id;
