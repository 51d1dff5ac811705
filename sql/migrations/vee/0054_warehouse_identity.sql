-- A random id for this warehouse, made once: each registered model version records the
-- warehouse it was trained on, so that a registry shared by two warehouses (the demo's and a
-- real one under the default local registry; dev and production on one server) never lets
-- one's champion decide the other's exceptions unnoticed. A dump restored elsewhere keeps
-- it: the same data, the same models. Written by this migration only.
CREATE TABLE vee.warehouse_identity (
    only_row      boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    warehouse_id  uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at    timestamptz NOT NULL DEFAULT now()
);
INSERT INTO vee.warehouse_identity DEFAULT VALUES;

DO $$
BEGIN
    IF (SELECT count(*) FROM pg_roles WHERE rolname IN ('vee_scoring', 'vee_training')) = 2 THEN
        -- read by every role (default privileges of 0040); changed by nobody but the migrator
        EXECUTE 'REVOKE INSERT, UPDATE, DELETE ON vee.warehouse_identity FROM vee_scoring, vee_training';
    END IF;
END
$$;
