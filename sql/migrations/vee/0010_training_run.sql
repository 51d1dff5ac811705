-- One row per weekly retraining run (scheduled or `vee train`): what an operator reads
-- without opening MLflow. A rerun of the same run id updates its row.
CREATE TABLE vee.training_run (
    run_id            text PRIMARY KEY,
    as_of             date NOT NULL,
    cutoff            timestamptz NOT NULL,
    status            text NOT NULL DEFAULT 'RUNNING'
        CHECK (status IN ('RUNNING', 'SUCCESS', 'FAILED', 'DQ_FAILED')),
    n_labels          integer,
    n_train           integer,
    n_calibration     integer,
    n_holdout         integer,
    training_digest   text,
    candidates        jsonb NOT NULL DEFAULT '{}'::jsonb,
    chosen_kind       text,
    model_name        text,
    model_version     text,
    decision          text CHECK (decision IN ('champion', 'challenger')),
    decision_reason   text,
    mlflow_run_id     text,
    step_seconds      jsonb NOT NULL DEFAULT '{}'::jsonb,
    message           text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE INDEX training_run_as_of_idx ON vee.training_run (as_of);
