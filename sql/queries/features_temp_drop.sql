-- The chunk's temp tables (features_ids_temp.sql, features_prepare.sql), once its features
-- are read.
DROP TABLE IF EXISTS pg_temp.vee_feature_ids, pg_temp.vee_feature_exc, pg_temp.vee_feature_ctx;
