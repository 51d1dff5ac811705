-- One resolution row per locked exception. A row whose decision is unchanged is left as it
-- is (a rerun gives the same rows, scored_at and dag_run_id included); a newer model's or a
-- changed decision replaces it.
INSERT INTO vee.exception_resolution AS t (
    exception_id, read_date, predicted_resolution, confidence, probabilities, decision,
    model_name, model_version, dag_run_id, scored_at, audit
)
SELECT r.exception_id,
       :read_date,
       r.predicted_resolution,
       r.confidence,
       jsonb_build_object(
           'ACCEPT', r.p_accept,
           'ESTIMATE', r.p_estimate,
           'EDIT', r.p_edit,
           'REREAD', r.p_reread,
           'FIELD_ORDER', r.p_field_order
       ),
       r.decision,
       :model_name,
       :model_version,
       :dag_run_id,
       now(),
       r.audit
FROM nightly_result AS r
JOIN nightly_locked AS l ON l.exception_id = r.exception_id
ORDER BY r.exception_id
ON CONFLICT (exception_id) DO UPDATE
SET read_date = EXCLUDED.read_date,
    predicted_resolution = EXCLUDED.predicted_resolution,
    confidence = EXCLUDED.confidence,
    probabilities = EXCLUDED.probabilities,
    decision = EXCLUDED.decision,
    model_name = EXCLUDED.model_name,
    model_version = EXCLUDED.model_version,
    dag_run_id = EXCLUDED.dag_run_id,
    scored_at = EXCLUDED.scored_at,
    audit = EXCLUDED.audit
WHERE (t.read_date, t.predicted_resolution, t.confidence, t.probabilities, t.decision,
       t.model_name, t.model_version, t.audit)
      IS DISTINCT FROM
      (EXCLUDED.read_date, EXCLUDED.predicted_resolution, EXCLUDED.confidence,
       EXCLUDED.probabilities, EXCLUDED.decision, EXCLUDED.model_name, EXCLUDED.model_version,
       EXCLUDED.audit);
