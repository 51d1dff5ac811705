-- Per-row validation failures of this run, loaded with COPY before they are applied.
CREATE TEMP TABLE nightly_failed_rows (
    stage_row      bigint PRIMARY KEY,
    failed_checks  text[] NOT NULL
) ON COMMIT DROP;
