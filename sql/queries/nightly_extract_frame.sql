-- The staged rows as validation reads them (COPY ... TO STDOUT). Null-ness of the measured
-- values is explicit because pandas cannot tell NULL from NaN in a float column.
SELECT stage_row, shard, exception_id, meter_id, rule_code,
       -- date_part is double precision; extract() is numeric, slow to compute and convert
       date_part('epoch', window_start) AS window_start_epoch,
       date_part('epoch', window_end) AS window_end_epoch,
       date_part('epoch', raised_at) AS raised_at_epoch,
       observed_value, expected_value,
       observed_value IS NULL AS observed_null,
       expected_value IS NULL AS expected_null,
       meter_known,
       -- days from the install to the read date; NULL for an unknown meter, or an install
       -- date of +-infinity (PostgreSQL cannot subtract it)
       CASE WHEN isfinite(meter_installed_on) THEN read_date - meter_installed_on END
           AS meter_age_days,
       id_copies
FROM vee.nightly_extract
WHERE dag_run_id = :dag_run_id
