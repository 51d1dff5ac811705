-- The model version this run is pinned to.
UPDATE vee.scoring_run
SET model_name = :model_name, model_version = :model_version
WHERE dag_run_id = :dag_run_id;
