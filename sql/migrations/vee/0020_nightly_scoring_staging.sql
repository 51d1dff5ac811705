-- Nightly scoring (issue 4): the per-run extract, per-shard results, and the run record's
-- extra fields. See vee_tasks/scoring/.

-- The read date's decidable exceptions, copied once per run so that validation, sharding and
-- scoring all see the same rows. Not keyed by exception_id: a warehouse that does not enforce
-- the contract may deliver duplicates, which validation must see (and quarantine).
-- UNLOGGED: a crash loses only what a rerun rebuilds; it saves the WAL of a million rows.
CREATE UNLOGGED TABLE vee.nightly_extract (
    dag_run_id         text NOT NULL,
    stage_row          bigint NOT NULL,
    shard              integer NOT NULL,
    exception_id       bigint,
    meter_id           text,
    rule_code          text,
    read_date          date,
    window_start       timestamptz,
    window_end         timestamptz,
    observed_value     double precision,
    expected_value     double precision,
    rule_version       text,
    raised_at          timestamptz,
    status             text,
    status_changed_at  timestamptz,
    meter_known        boolean NOT NULL,
    -- NULL until validated; then NULL = passed, else the names of the failed checks.
    failed_checks      text[],
    PRIMARY KEY (dag_run_id, stage_row)
);
CREATE INDEX nightly_extract_shard_idx ON vee.nightly_extract (dag_run_id, shard, exception_id);

-- What each shard wrote, upserted in the shard's own transaction (so a retried shard
-- replaces its row); the run record sums these.
CREATE TABLE vee.nightly_shard_result (
    dag_run_id       text NOT NULL,
    shard            integer NOT NULL,
    scored           integer NOT NULL,
    auto_applied     integer NOT NULL,
    sent_to_review   integer NOT NULL,
    skipped_analyst  integer NOT NULL,
    seconds          double precision NOT NULL,
    finished_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_run_id, shard)
);

ALTER TABLE vee.scoring_run
    ADD COLUMN dq_summary jsonb,
    ADD COLUMN summary text;
