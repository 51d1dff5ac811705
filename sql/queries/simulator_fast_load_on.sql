-- `vee simulate`: skip the per-row foreign-key triggers while COPYing mdm.interval_read (every
-- meter_id comes from the mdm.meter rows loaded in the same transaction). Superuser or
-- GRANT SET ON PARAMETER session_replication_role; the simulator falls back when refused.
SET LOCAL session_replication_role = replica
