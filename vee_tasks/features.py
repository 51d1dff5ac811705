"""Features of VEE exceptions: the one code path shared by training and nightly scoring.

`build_features(conn, exception_ids)` loads the ids into a temp table with COPY and runs
sql/queries/features.sql, which aggregates in PostgreSQL, point in time at each exception's
`raised_at` (reads received by then, or for a history day settled by then, before it settled,
see usage_rollup.py; earlier exceptions, resolutions strictly before it,
weather up to the read date). Python only derives a few columns, fills gaps and fixes
dtypes, so that a model sees the same frame at training and at scoring (no skew).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from vee_tasks.config import RESOLUTION_CODES, RULE_CODES, get_settings
from vee_tasks.usage_rollup import SETTLE_DAYS
from vee_tasks.warehouse import copy_query_frame, copy_rows, execute_sql_file

# Lookback windows: modest, so the nightly query stays set-based and index-bound.
HIST_DAYS = 14
TEMP_DAYS = 14
RES_DAYS = 365
# work_mem of the features query (per sort or hash; a 50,000-row chunk needs ~60 MB)
FEATURES_WORK_MEM_MB = 128

UNKNOWN = "UNKNOWN"
NONE = "NONE"

CATEGORICAL_COLUMNS: tuple[str, ...] = (
    "rule_code",
    "customer_class",
    "meter_kind",
    "last_resolution",
    "last_resolution_same_rule",
)

# Category vocabularies known to the contract; anything else maps to UNKNOWN.
CATEGORY_VALUES: dict[str, tuple[str, ...]] = {
    "rule_code": RULE_CODES,
    "customer_class": ("RES", "COM", "IND"),
    "meter_kind": ("AMI_1PH", "AMI_3PH", "CT"),
    "last_resolution": RESOLUTION_CODES,
    "last_resolution_same_rule": RESOLUTION_CODES,
}

_RULE_SLUG = {code: code.lower() for code in RULE_CODES}

# Ratios are neutral at 1 when undefined (no reference, no history).
_RATIO_COLUMNS = (
    "obs_exp_ratio",
    "cv_ratio",
    "recent_vs_prior",
    "day_vs_hist",
    "day_vs_same_dow",
    "day_max_vs_hist",
)

# Read dates since the meter's last exception resolved with each code (any rule / same rule),
# and since a low or zero usage day was accepted (a known vacancy).
_DAYS_SINCE_COLUMNS = (
    "ds_accept", "ds_estimate", "ds_edit", "ds_reread", "ds_field_order",
    "ds_same_accept", "ds_same_estimate", "ds_same_edit", "ds_same_reread",
    "ds_same_field_order", "ds_vacancy_accept",
)

# Level factors a wrong CT ratio produces: ratios of standard CT ratios (primary / 5 A:
# 50..4000 A), so a jump by one of them points to the multiplier, not to the customer.
_CT_RATIOS = np.array([10, 20, 40, 60, 80, 120, 160, 200, 240, 300, 400, 600, 800], dtype=float)
_CT_FACTORS = np.unique(np.round((_CT_RATIOS[:, None] / _CT_RATIOS[None, :]).ravel(), 6))
_CT_FACTORS = _CT_FACTORS[np.abs(np.log(_CT_FACTORS)) > 0.3]
# A lost phase on a three-phase meter leaves 1/3 or 2/3 of the level.
_PHASE_FACTORS = np.array([1 / 3, 2 / 3])

NUMERIC_COLUMNS: tuple[str, ...] = (
    # the rule and its measures
    "observed_value",
    "expected_value",
    "expected_missing",
    "log_observed",
    "log_expected",
    "log_ratio",
    "obs_exp_ratio",
    "window_hours",
    "window_start_hour",
    "window_intervals",
    "window_at_day_edge",
    "observed_hours",
    "ct_factor_dist",
    "phase_factor_dist",
    "read_dow",
    "is_weekend",
    "near_dst",
    "raise_lag_hours",
    # the meter
    "meter_known",
    "multiplier",
    "log_multiplier",
    "has_der",
    "interval_minutes",
    "meter_age_days",
    # the window's intervals as received
    "win_rows",
    "win_values",
    "win_coverage",
    "win_distinct",
    "win_nonactual",
    "win_zero",
    "win_negative",
    "win_kwh",
    "win_max",
    # usage context (HIST_DAYS before the read date, and the read date itself)
    "has_usage_history",
    "hist_days",
    "hist_mean",
    "hist_std",
    "hist_min",
    "hist_max",
    "hist_cv",
    "same_dow_mean",
    "recent7_mean",
    "prior_mean",
    "recent_vs_prior",
    "hist_zero_days",
    "hist_nonactual_share",
    "hist_null_share",
    "hist_export_share",
    "hist_mean_max_interval",
    "zero_days_7",
    "hist_cv_median",
    "day_cv",
    "cv_ratio",
    "day_kwh",
    "day_rows",
    "day_values",
    "day_coverage",
    "day_nonactual",
    "day_export_share",
    "day_max_interval",
    "day_vs_hist",
    "day_vs_same_dow",
    "day_max_vs_hist",
    # weather
    "weather_known",
    "temp_day",
    "temp_anomaly",
    # the meter's exception history
    "exc30_total",
    "exc90_total",
    "exc30_same_rule",
    "exc90_same_rule",
    "exc14_same_rule",
    "gap_streak",
    *(f"exc30_{_RULE_SLUG[c]}" for c in RULE_CODES),
    *(f"exc90_{_RULE_SLUG[c]}" for c in RULE_CODES),
    "sameday_total",
    "sameday_gap",
    "sameday_low",
    "sameday_high",
    "sameday_meter",
    # the meter's analyst resolutions before raised_at
    "res_total",
    "res_accept",
    "res_estimate",
    "res_edit",
    "res_reread",
    "res_field_order",
    "res_same_rule_total",
    "days_since_resolution",
    *_DAYS_SINCE_COLUMNS,
)

FEATURE_COLUMNS: tuple[str, ...] = CATEGORICAL_COLUMNS + NUMERIC_COLUMNS


def feature_schema_fingerprint() -> str:
    """Identifies the column set and vocabularies; a model records it and scoring checks it."""
    import hashlib
    import json

    spec = {
        "categorical": list(CATEGORICAL_COLUMNS),
        "numeric": list(NUMERIC_COLUMNS),
        "vocab": {k: list(v) for k, v in CATEGORY_VALUES.items()},
        "hist_days": HIST_DAYS,
        "temp_days": TEMP_DAYS,
        "res_days": RES_DAYS,
        "settle_days": SETTLE_DAYS,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


class UnknownExceptionIds(LookupError):
    """Some requested exception ids are not in mdm.vee_exception."""


def _signed_log(values: pd.Series) -> pd.Series:
    return np.sign(values) * np.log1p(np.abs(values))


def empty_features() -> pd.DataFrame:
    index = pd.Index([], dtype="int64", name="exception_id")
    columns = {c: pd.Series(dtype=object, index=index) for c in CATEGORICAL_COLUMNS}
    columns.update({c: pd.Series(dtype="float64", index=index) for c in NUMERIC_COLUMNS})
    return pd.DataFrame(columns, index=index)


def build_features(
    conn: Connection, exception_ids: Iterable[int], timezone: str | None = None
) -> pd.DataFrame:
    """One row per exception id (index `exception_id`), columns FEATURE_COLUMNS.

    Categorical columns are object dtype strings from CATEGORY_VALUES (or UNKNOWN / NONE);
    numeric columns are float64 with no NaN. Raises UnknownExceptionIds when an id is not in
    mdm.vee_exception.
    """
    ids = pd.Series(pd.unique(pd.Series(list(exception_ids), dtype="int64")), name="exception_id")
    if ids.empty:
        return empty_features()
    tz = timezone or get_settings().timezone
    execute_sql_file(conn, "queries/features_ids_temp.sql")
    copy_rows(conn, "vee_feature_ids", ["exception_id"], ids.to_frame())
    conn.exec_driver_sql("ANALYZE vee_feature_ids")
    # JIT compiling this wide query cost ~5 s per chunk, more than running it; its sorts of
    # wide rows spilled to disk under the default 4 MB of work_mem. Both for this
    # transaction only.
    conn.exec_driver_sql("SET LOCAL jit = off")
    conn.exec_driver_sql(f"SET LOCAL work_mem = '{FEATURES_WORK_MEM_MB}MB'")
    # COPY out and pandas' CSV parser: ~130 values a row would otherwise each become a
    # Python object in the cursor (most of the client's time at a million rows).
    raw = copy_query_frame(
        conn,
        "queries/features.sql",
        {
            "tz": tz,
            "hist_days": HIST_DAYS,
            "settle_days": SETTLE_DAYS,
            "temp_days": TEMP_DAYS,
            "res_days": RES_DAYS,
        },
        text_columns=(*CATEGORICAL_COLUMNS, "read_date"),
    )
    conn.exec_driver_sql("DROP TABLE IF EXISTS pg_temp.vee_feature_ids")
    if len(raw) != len(ids):
        missing = sorted(set(ids) - set(raw["exception_id"]))
        raise UnknownExceptionIds(
            f"{len(missing)} exception id(s) not in mdm.vee_exception, e.g. {missing[:5]}"
        )
    return finish_features(raw, tz)


def _factor_distance(log_ratio: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Distance in log space from the observed/expected ratio to the nearest factor (9 when
    there is no ratio)."""
    dist = np.abs(log_ratio[:, None] - np.log(factors)[None, :]).min(axis=1)
    return np.where(np.isfinite(dist), dist, 9.0)


def _near_dst(read_dates: pd.Series, timezone: str) -> np.ndarray:
    """1 when a daylight-saving change happened in the 7 read dates ending at this one
    (meter clocks that did not follow it shift an hour)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    cache: dict = {}

    def near(day) -> float:
        if day is None or day is pd.NaT:
            return 0.0
        if day not in cache:
            d = pd.Timestamp(day).date()
            a = dt.datetime.combine(d - dt.timedelta(days=6), dt.time(0, 0), tzinfo=zone)
            b = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(0, 0), tzinfo=zone)
            cache[day] = float(a.utcoffset() != b.utcoffset())
        return cache[day]

    return np.array([near(d) for d in read_dates], dtype="float64")


def finish_features(raw: pd.DataFrame, timezone: str = "America/Toronto") -> pd.DataFrame:
    """Derive, fill and type the raw query result (pure pandas: unit-testable)."""
    raw = raw.set_index("exception_id")
    read_date = raw.pop("read_date") if "read_date" in raw else pd.Series(None, index=raw.index)
    raw.index = raw.index.astype("int64")
    out: dict[str, pd.Series] = {}

    for col in CATEGORICAL_COLUMNS:
        fill = NONE if col.startswith("last_resolution") else UNKNOWN
        values = raw[col].astype(object).where(raw[col].notna(), fill)
        known = [*CATEGORY_VALUES[col], fill]
        out[col] = values.where(values.isin(known), UNKNOWN).astype(object)

    numeric = raw.drop(columns=list(CATEGORICAL_COLUMNS)).apply(pd.to_numeric, errors="coerce")
    # a dict of columns: many derived columns, no fragmented DataFrame
    num = {c: numeric[c].astype("float64") for c in numeric.columns}

    obs = num["observed_value"]
    exp = num["expected_value"]
    num["expected_missing"] = exp.isna().astype("float64")
    num["log_observed"] = _signed_log(obs)
    num["log_expected"] = _signed_log(exp)
    num["log_ratio"] = np.log((obs.abs() + 1e-3) / (exp.abs() + 1e-3))
    interval = num["interval_minutes"]
    num["window_intervals"] = num["window_hours"] * 60.0 / interval.where(interval > 0)
    num["win_coverage"] = num["win_values"] / num["window_intervals"].where(
        num["window_intervals"] > 0
    )
    expected_day = 24 * 60.0 / interval.where(interval > 0)
    num["day_coverage"] = num["day_values"] / expected_day
    num["log_multiplier"] = np.log(num["multiplier"].where(num["multiplier"] > 0))
    num["has_usage_history"] = (num["hist_days"].fillna(0) > 0).astype("float64")
    num["weather_known"] = num["temp_day"].notna().astype("float64")

    num["observed_hours"] = obs * interval / 60.0
    ratio = (obs / exp.where(exp > 0)).where(lambda r: r > 0)
    log_ratio = np.log(ratio.to_numpy(dtype="float64", na_value=np.nan))
    num["ct_factor_dist"] = _factor_distance(log_ratio, _CT_FACTORS)
    num["phase_factor_dist"] = _factor_distance(log_ratio, _PHASE_FACTORS)
    num["is_weekend"] = (num["read_dow"] >= 6).astype("float64")
    num["near_dst"] = pd.Series(_near_dst(read_date, timezone), index=raw.index)
    num["ct_factor_dist"] = pd.Series(num["ct_factor_dist"], index=raw.index)
    num["phase_factor_dist"] = pd.Series(num["phase_factor_dist"], index=raw.index)
    streak = pd.Series(0.0, index=raw.index)
    alive = pd.Series(True, index=raw.index)
    for k in (1, 2, 3, 4):
        alive &= num[f"gap_d{k}"].fillna(0) > 0
        streak += alive.astype("float64")
    num["gap_streak"] = streak
    for col in _DAYS_SINCE_COLUMNS:
        num[col] = num[col].fillna(float(RES_DAYS + 1))

    slug = raw["rule_code"].map(_RULE_SLUG)
    for window in (14, 30, 90):
        same = pd.Series(0.0, index=raw.index)
        for code, s in _RULE_SLUG.items():
            same = same.where(slug != s, num[f"exc{window}_{s}"])
        num[f"exc{window}_same_rule"] = same

    for col in _RATIO_COLUMNS:
        num[col] = num[col].clip(-1e4, 1e4).fillna(1.0)
    num["days_since_resolution"] = num["days_since_resolution"].fillna(float(RES_DAYS))
    for col in NUMERIC_COLUMNS:
        out[col] = num[col].replace([np.inf, -np.inf], np.nan).fillna(0.0).astype("float64")
    frame = pd.DataFrame(out, index=raw.index)[list(FEATURE_COLUMNS)]
    frame.index.name = "exception_id"
    return frame
