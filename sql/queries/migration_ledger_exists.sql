-- Whether the migration ledger exists yet (NULL before the first upgrade).
SELECT to_regclass('vee.schema_migration') IS NOT NULL AS ledger_exists;
