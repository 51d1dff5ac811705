-- The migration ledger (vee_tasks/migrations.py): which migration of which track ran, with
-- the checksum of its file, so that a changed file is refused instead of silently skipped.
CREATE SCHEMA IF NOT EXISTS vee;
CREATE TABLE IF NOT EXISTS vee.schema_migration (
    track       text NOT NULL,
    version     text NOT NULL,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track, version)
);
