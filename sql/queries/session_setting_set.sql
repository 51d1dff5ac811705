-- A planner or memory setting for the rest of the current transaction only (SET LOCAL, with
-- the name and value bound): e.g. work_mem for one large sort, jit off for a wide query.
SELECT set_config(:name, :value, true) AS value;
