-- Columns of mdm.vee_exception as the warehouse has them (the batch-level schema check).
SELECT column_name, data_type
FROM information_schema.columns
WHERE table_schema = 'mdm' AND table_name = 'vee_exception';
