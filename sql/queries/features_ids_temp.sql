-- The exception ids whose features are wanted; filled with COPY, read by features_prepare.sql.
-- A temp table (not ON COMMIT DROP) so that a caller may build features twice in one
-- transaction; features.py drops it when done.
DROP TABLE IF EXISTS pg_temp.vee_feature_ids;
CREATE TEMP TABLE vee_feature_ids (exception_id bigint PRIMARY KEY);
