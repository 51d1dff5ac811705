-- Statistics of the shard's decided rows (temp table nightly_result, filled by COPY) before
-- the write-back joins them to mdm.vee_exception and vee.exception_resolution.
ANALYZE nightly_result;
