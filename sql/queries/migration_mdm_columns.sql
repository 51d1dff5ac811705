-- The columns and types of the mdm tables found in place (`vee db upgrade --with-mdm`
-- adopting tables made elsewhere): checked against the contract before they are kept.
SELECT table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema = 'mdm'
  AND table_name = ANY(CAST(:tables AS text[]));
