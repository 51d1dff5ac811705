-- Every migration applied so far, in order.
SELECT track, version, name, checksum
FROM vee.schema_migration
ORDER BY track, version;
