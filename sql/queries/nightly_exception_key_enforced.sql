-- Does mdm.vee_exception have a unique index on exception_id alone (the contract's key; other
-- columns may be INCLUDEd)? A valid one over every row: an index left invalid by a failed
-- CREATE INDEX CONCURRENTLY may sit beside duplicates already there, a partial one says
-- nothing of the rows it leaves out; then the run checks for duplicates itself.
SELECT EXISTS (
    SELECT 1
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'exception_id'
    WHERE n.nspname = 'mdm'
      AND c.relname = 'vee_exception'
      AND i.indisunique
      AND i.indisvalid
      AND i.indpred IS NULL
      AND i.indnkeyatts = 1
      AND i.indkey[0] = a.attnum
) AS enforced;
