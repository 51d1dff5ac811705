-- Numbers the rows one extract stages (stage_row): this session's temp sequence, new for each
-- extract. row_number() OVER () buffered the whole day's rows first, spilling to disk
-- (~1.3 s of a million-row extract).
DROP SEQUENCE IF EXISTS pg_temp.nightly_stage_row;
CREATE TEMP SEQUENCE nightly_stage_row;
