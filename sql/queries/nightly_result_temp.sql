-- A shard's decisions, loaded with COPY chunk by chunk, written back in one set-based pass.
CREATE TEMP TABLE nightly_result (
    exception_id          bigint PRIMARY KEY,
    predicted_resolution  text NOT NULL,
    confidence            double precision NOT NULL,
    p_accept              double precision NOT NULL,
    p_estimate            double precision NOT NULL,
    p_edit                double precision NOT NULL,
    p_reread              double precision NOT NULL,
    p_field_order         double precision NOT NULL,
    decision              text NOT NULL,
    audit                 boolean NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE nightly_locked (
    exception_id  bigint PRIMARY KEY
) ON COMMIT DROP;
