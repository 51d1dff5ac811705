-- Every weekly training run's outcome (`vee reports`, summary page): its report folder holds
-- only the training set's data quality, which passes for a run that failed or declined later.
SELECT run_id, status, model_version, decision
FROM vee.training_run;
