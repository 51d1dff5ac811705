-- Daily usage rollup (issue 6): one row per meter and settled day, so that the features'
-- usage history reads ~14 rows per exception instead of ~14 x 24 (or x 96) interval reads.
--
-- A day d is *settled* at settled_at = local midnight starting day d + 1 + SETTLE_DAYS
-- (vee_tasks/usage_rollup.py). Its row aggregates the reads of d received before settled_at,
-- a set that no longer changes once settled_at has passed, so a row is computed once and is
-- a pure cache: the features query computes the same aggregate from mdm.interval_read for a
-- day that has no complete rollup, and uses the rollup only for exceptions raised at or after
-- settled_at (point in time).

CREATE TABLE vee.meter_daily (
    meter_id      text NOT NULL,
    day           date NOT NULL,
    settled_at    timestamptz NOT NULL,
    n_rows        integer NOT NULL,
    n_values      integer NOT NULL,
    n_nonactual   integer NOT NULL,
    kwh           double precision,
    export_kwh    double precision NOT NULL,
    abs_kwh       double precision,
    max_interval  double precision,
    intraday_cv   double precision,
    -- covering: a context's ~14 days are read by an index-only scan of adjacent entries
    -- (the heap holds each day's rows together, a meter's days far apart)
    PRIMARY KEY (meter_id, day) INCLUDE (settled_at, n_rows, n_values, n_nonactual, kwh,
                                         export_kwh, abs_kwh, max_interval, intraday_cv)
);

-- The days whose rollup is complete (every meter's row written in one transaction). The
-- features query trusts vee.meter_daily for a day only when it is listed here with the same
-- settled_at; a day not listed (or settled differently) is computed from raw reads.
CREATE TABLE vee.meter_daily_day (
    day          date PRIMARY KEY,
    settled_at   timestamptz NOT NULL,
    meters       integer NOT NULL,
    reads        bigint NOT NULL,
    seconds      double precision NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now()
);
