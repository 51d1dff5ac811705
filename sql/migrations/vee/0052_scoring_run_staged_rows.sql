-- How many rows a run's extract staged: validate and score_shard check that they are all
-- still there before going on (a task cleared alone after its run's staging was dropped used
-- to see an empty day and succeed with nothing done).
ALTER TABLE vee.scoring_run ADD COLUMN staged_rows integer;
