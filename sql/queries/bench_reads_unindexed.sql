-- Bulk load of the bench's reads: no per-row index or foreign-key upkeep and no WAL; the
-- primary key is built once at the end (bench_reads_indexed.sql). The nightly path only
-- reads this table.
ALTER TABLE mdm.interval_read DROP CONSTRAINT interval_read_pkey;
ALTER TABLE mdm.interval_read DROP CONSTRAINT interval_read_meter_id_fkey;
ALTER TABLE mdm.interval_read SET UNLOGGED;
