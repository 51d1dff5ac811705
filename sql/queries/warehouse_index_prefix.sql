-- Does :schema.:table have an index this system can use for lookups by :columns: a valid,
-- non-partial btree index whose leading key columns are :columns, in that order? The
-- warehouse's own index, whatever its name (an expression column never matches; an INCLUDE
-- column is no key column: indkey lists it after the indnkeyatts key columns).
SELECT EXISTS (
    SELECT 1
    FROM pg_index AS i
    JOIN pg_class AS c ON c.oid = i.indrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    JOIN pg_class AS ic ON ic.oid = i.indexrelid
    JOIN pg_am AS am ON am.oid = ic.relam
    WHERE n.nspname = :schema
      AND c.relname = :table
      AND i.indisvalid
      AND i.indpred IS NULL
      AND am.amname = 'btree'
      AND ARRAY(
              SELECT a.attname::text
              FROM unnest(CAST(i.indkey AS int2[])) WITH ORDINALITY AS k(attnum, position)
              LEFT JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum = k.attnum
              WHERE k.position <= least(i.indnkeyatts, cardinality(CAST(:columns AS text[])))
              ORDER BY k.position
          ) = CAST(:columns AS text[])
) AS present;
