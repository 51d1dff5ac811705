-- The reads' primary key, built once after the bulk load (and the foreign key, not
-- re-checked: the loader draws meter ids from mdm.meter).
SET LOCAL maintenance_work_mem = '1GB';
SET LOCAL max_parallel_maintenance_workers = 2;
ALTER TABLE mdm.interval_read ADD CONSTRAINT interval_read_pkey PRIMARY KEY (meter_id, interval_start);
ALTER TABLE mdm.interval_read ADD CONSTRAINT interval_read_meter_id_fkey
    FOREIGN KEY (meter_id) REFERENCES mdm.meter NOT VALID;
