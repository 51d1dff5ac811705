-- A shard's decisions, loaded with binary COPY chunk by chunk (fixed-width rows: the code
-- and the decision travel as a number and a flag, text columns follow from them), written
-- back in one set-based pass. The parameter resolution_codes is the vocabulary
-- (RESOLUTION_CODES), bound by the driver into the definition; a position outside it leaves
-- predicted_resolution NULL, which NOT NULL refuses.
CREATE TEMP TABLE nightly_result (
    exception_id          bigint PRIMARY KEY,
    predicted_code        smallint NOT NULL,
    confidence            double precision NOT NULL,
    p_accept              double precision NOT NULL,
    p_estimate            double precision NOT NULL,
    p_edit                double precision NOT NULL,
    p_reread              double precision NOT NULL,
    p_field_order         double precision NOT NULL,
    auto_apply            boolean NOT NULL,
    audit                 boolean NOT NULL,
    predicted_resolution  text NOT NULL
        GENERATED ALWAYS AS ((CAST(:resolution_codes AS text[]))[predicted_code]) STORED,
    decision              text NOT NULL
        GENERATED ALWAYS AS (CASE WHEN auto_apply THEN 'AUTO_APPLY' ELSE 'REVIEW' END) STORED
) ON COMMIT DROP;
-- moved: locked by nightly_lock_unchanged at the other decided status than this run's, which
-- another run of the same read date set meanwhile (nightly_update_moved.sql sets it again)
CREATE TEMP TABLE nightly_locked (
    exception_id  bigint PRIMARY KEY,
    moved         boolean NOT NULL DEFAULT false
) ON COMMIT DROP;
