-- Statistics of the chunk's id list (temp table vee_feature_ids, just filled by COPY): without
-- them the planner guesses its size and picks scans for a table of unknown rows.
ANALYZE vee_feature_ids;
