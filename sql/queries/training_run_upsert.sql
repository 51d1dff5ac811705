-- Record (or update) one training run; every column is the latest known state. started_at is
-- when the latest attempt started (a RUNNING write), so that a late callback of an earlier
-- attempt can tell it apart (training_run_reconcile.sql).
INSERT INTO vee.training_run AS t (
    run_id, as_of, cutoff, status, n_labels, n_train, n_calibration, n_holdout,
    training_digest, candidates, chosen_kind, model_name, model_version, decision,
    decision_reason, mlflow_run_id, step_seconds, message, finished_at)
VALUES (
    :run_id, :as_of, :cutoff, :status, :n_labels, :n_train, :n_calibration, :n_holdout,
    :training_digest, CAST(:candidates AS jsonb), :chosen_kind, :model_name, :model_version,
    :decision, :decision_reason, :mlflow_run_id, CAST(:step_seconds AS jsonb), :message,
    :finished_at)
ON CONFLICT (run_id) DO UPDATE SET
    as_of = EXCLUDED.as_of,
    cutoff = EXCLUDED.cutoff,
    status = EXCLUDED.status,
    n_labels = EXCLUDED.n_labels,
    n_train = EXCLUDED.n_train,
    n_calibration = EXCLUDED.n_calibration,
    n_holdout = EXCLUDED.n_holdout,
    training_digest = EXCLUDED.training_digest,
    candidates = EXCLUDED.candidates,
    chosen_kind = EXCLUDED.chosen_kind,
    model_name = EXCLUDED.model_name,
    model_version = EXCLUDED.model_version,
    decision = EXCLUDED.decision,
    decision_reason = EXCLUDED.decision_reason,
    mlflow_run_id = EXCLUDED.mlflow_run_id,
    step_seconds = EXCLUDED.step_seconds,
    message = EXCLUDED.message,
    finished_at = EXCLUDED.finished_at,
    started_at = CASE WHEN EXCLUDED.status = 'RUNNING' THEN now() ELSE t.started_at END
