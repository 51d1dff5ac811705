-- Record how long one step took (seconds), keyed by step name.
UPDATE vee.scoring_run
SET step_seconds = step_seconds || jsonb_build_object(CAST(:step AS text), CAST(:seconds AS double precision))
WHERE dag_run_id = :dag_run_id;
