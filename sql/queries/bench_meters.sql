-- Benchmark warehouse (vee bench): :meters meters BM0000000.. with a realistic mix of classes
-- and kinds, all hourly (the leanest interval the contract allows). Regions R0..R7.
INSERT INTO mdm.meter (meter_id, service_point_id, customer_class, meter_kind, multiplier,
                       interval_minutes, has_der, region, installed_on)
SELECT 'BM' || lpad(i::text, 7, '0'),
       'SP' || i,
       CASE WHEN i % 100 < 85 THEN 'RES' WHEN i % 100 < 97 THEN 'COM' ELSE 'IND' END,
       CASE WHEN i % 100 < 85 THEN 'AMI_1PH' WHEN i % 100 < 97 THEN 'AMI_3PH' ELSE 'CT' END,
       CASE WHEN i % 100 < 97 THEN 1 ELSE (ARRAY[40, 80, 200])[1 + i % 3] END,
       60,
       i % 10 = 0,
       'R' || (i % 8),
       DATE '2012-01-01' + (i % 4000)
FROM generate_series(0, CAST(:meters AS integer) - 1) i
