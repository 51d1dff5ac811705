-- The MDMS-owned tables of ../shared/warehouse-contract.md, for dev, test, demo and evaluation
-- warehouses only (`vee db upgrade --with-mdm`). In production the MDMS owns these.
CREATE SCHEMA IF NOT EXISTS mdm;

CREATE TABLE mdm.meter (
    meter_id          text PRIMARY KEY,
    service_point_id  text NOT NULL,
    customer_class    text NOT NULL CHECK (customer_class IN ('RES', 'COM', 'IND')),
    meter_kind        text NOT NULL CHECK (meter_kind IN ('AMI_1PH', 'AMI_3PH', 'CT')),
    multiplier        double precision NOT NULL,
    interval_minutes  smallint NOT NULL CHECK (interval_minutes IN (15, 30, 60)),
    has_der           boolean NOT NULL,
    region            text NOT NULL,
    installed_on      date NOT NULL
);

CREATE TABLE mdm.weather_daily (
    region       text NOT NULL,
    day          date NOT NULL,
    mean_temp_c  real,
    PRIMARY KEY (region, day)
);

CREATE TABLE mdm.interval_read (
    meter_id        text NOT NULL REFERENCES mdm.meter,
    interval_start  timestamptz NOT NULL,
    value_kwh       double precision,
    quality         char(1) NOT NULL CHECK (quality IN ('A', 'E', 'S', 'F', 'N')),
    received_at     timestamptz NOT NULL,
    PRIMARY KEY (meter_id, interval_start)
);

CREATE TABLE mdm.vee_exception (
    exception_id       bigint PRIMARY KEY,
    meter_id           text NOT NULL REFERENCES mdm.meter,
    rule_code          text NOT NULL,
    read_date          date NOT NULL,
    window_start       timestamptz NOT NULL,
    window_end         timestamptz NOT NULL,
    observed_value     double precision,
    expected_value     double precision,
    rule_version       text NOT NULL,
    raised_at          timestamptz NOT NULL,
    status             text NOT NULL
        CHECK (status IN ('OPEN', 'AUTO_RESOLVED', 'PENDING_REVIEW', 'ANALYST_RESOLVED')),
    status_changed_at  timestamptz NOT NULL
);

CREATE TABLE mdm.analyst_resolution (
    exception_id     bigint PRIMARY KEY REFERENCES mdm.vee_exception,
    resolution_code  text NOT NULL,
    resolved_by      text NOT NULL,
    resolved_at      timestamptz NOT NULL,
    note             text
);

-- What the nightly and weekly queries need: the day's decidable exceptions, a meter's
-- exception history before a moment, and labels by resolution time.
CREATE INDEX vee_exception_read_date_status_idx ON mdm.vee_exception (read_date, status);
CREATE INDEX vee_exception_meter_raised_idx ON mdm.vee_exception (meter_id, raised_at);
CREATE INDEX analyst_resolution_resolved_at_idx ON mdm.analyst_resolution (resolved_at);
