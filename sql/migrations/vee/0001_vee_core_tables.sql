-- Tables this system owns (schema vee), per ../shared/warehouse-contract.md.

CREATE TABLE vee.exception_resolution (
    exception_id          bigint PRIMARY KEY,
    read_date             date NOT NULL,
    predicted_resolution  text NOT NULL
        CHECK (predicted_resolution IN ('ACCEPT', 'ESTIMATE', 'EDIT', 'REREAD', 'FIELD_ORDER')),
    confidence            double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    probabilities         jsonb NOT NULL,
    decision              text NOT NULL CHECK (decision IN ('AUTO_APPLY', 'REVIEW')),
    model_name            text NOT NULL,
    model_version         text NOT NULL,
    dag_run_id            text NOT NULL,
    scored_at             timestamptz NOT NULL
);
CREATE INDEX exception_resolution_read_date_idx ON vee.exception_resolution (read_date);

-- Exceptions that failed data-quality validation: never scored, never dropped. A rerun of a
-- date replaces that date's rows (delete + insert in one transaction), so no natural key is
-- needed; the surrogate key only identifies a row.
CREATE TABLE vee.quarantined_exception (
    quarantine_id   bigserial PRIMARY KEY,
    exception_id    bigint,
    read_date       date,
    dag_run_id      text,
    failed_checks   text[] NOT NULL,
    payload         jsonb,
    quarantined_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX quarantined_exception_read_date_idx
    ON vee.quarantined_exception (read_date, exception_id);

-- One row per nightly run: what an operator reads without opening logs.
CREATE TABLE vee.scoring_run (
    dag_run_id       text PRIMARY KEY,
    read_date        date NOT NULL,
    status           text NOT NULL DEFAULT 'RUNNING'
        CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED', 'DQ_FAILED')),
    model_name       text,
    model_version    text,
    selected         integer,
    scored           integer,
    quarantined      integer,
    auto_applied     integer,
    sent_to_review   integer,
    skipped_analyst  integer,
    dq_outcome       text,
    dq_report_path   text,
    step_seconds     jsonb NOT NULL DEFAULT '{}'::jsonb,
    message          text,
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX scoring_run_read_date_idx ON vee.scoring_run (read_date);
