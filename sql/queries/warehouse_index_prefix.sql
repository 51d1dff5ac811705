-- Does :schema.:table have an index this system can use for lookups by :columns: a valid,
-- non-partial btree index whose leading key columns are :columns, in that order? The
-- warehouse's own index, whatever its name (an expression column never matches; an INCLUDE
-- column is no key column: indkey lists it after the indnkeyatts key columns). A partitioned
-- table has one when it has one itself, or when every one of its leaf partitions has one (a
-- DBA may index partition by partition; the planner uses those). Columns are matched by
-- name on each relation, whose column numbers may differ from the parent's.
WITH target AS (
    SELECT c.oid, c.relkind
    FROM pg_class AS c
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema
      AND c.relname = :table
),
leaves AS (
    SELECT p.relid
    FROM target AS t
    CROSS JOIN LATERAL pg_partition_tree(t.oid) AS p
    WHERE t.relkind = 'p' AND p.isleaf
),
indexed AS (
    SELECT DISTINCT i.indrelid AS relid
    FROM pg_index AS i
    JOIN pg_class AS ic ON ic.oid = i.indexrelid
    JOIN pg_am AS am ON am.oid = ic.relam
    WHERE i.indrelid IN (SELECT oid FROM target UNION ALL SELECT relid FROM leaves)
      AND i.indisvalid
      AND i.indpred IS NULL
      AND am.amname = 'btree'
      AND ARRAY(
              SELECT a.attname::text
              FROM unnest(CAST(i.indkey AS int2[])) WITH ORDINALITY AS k(attnum, position)
              LEFT JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE k.position <= least(i.indnkeyatts, cardinality(CAST(:columns AS text[])))
              ORDER BY k.position
          ) = CAST(:columns AS text[])
)
SELECT EXISTS (SELECT 1 FROM target AS t JOIN indexed AS x ON x.relid = t.oid)
       OR (EXISTS (SELECT 1 FROM leaves)
           AND NOT EXISTS (SELECT 1 FROM leaves AS l
                           WHERE l.relid NOT IN (SELECT relid FROM indexed))) AS present;
