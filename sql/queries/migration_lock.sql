-- Serialises concurrent upgrades (two workers starting at once) until the transaction ends.
SELECT pg_advisory_xact_lock(:lock_key);
