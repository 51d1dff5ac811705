"""Features of VEE exceptions: the one code path shared by training and nightly scoring.

`build_features(conn, exception_ids)` loads the ids into a temp table with COPY and runs
sql/queries/features_*.sql, which aggregate in PostgreSQL, point in time at each exception's
`raised_at` (reads received by then, or for a history day settled by then, before it settled,
see usage_rollup.py; earlier exceptions, resolutions strictly before it,
weather up to the read date), and send fixed-width binary rows: one per usage context
(what a meter-day's exceptions raised together share) and one per exception. numpy joins
them, derives a few columns, fills gaps and fixes dtypes, so that a model sees the same frame
at training and at scoring (no skew).
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from vee_tasks.config import CUSTOMER_CLASSES, METER_KINDS, RESOLUTION_CODES, RULE_CODES, get_settings
from vee_tasks.usage_rollup import SETTLE_DAYS
from vee_tasks.warehouse import copy_query_matrix, copy_rows, execute_sql_file, pinned_settings

# Lookback windows: modest, so the nightly query stays set-based and index-bound.
HIST_DAYS = 14
TEMP_DAYS = 14
RES_DAYS = 365
# work_mem of the features query (per sort or hash; a 50,000-row chunk needs ~60 MB, the
# default 25,000-row chunk half that)
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
    "customer_class": CUSTOMER_CLASSES,
    "meter_kind": METER_KINDS,
    "last_resolution": RESOLUTION_CODES,
    "last_resolution_same_rule": RESOLUTION_CODES,
}

# The query sends each categorical as its 1-based position in these vocabularies (bound as
# arrays): 0 for a value outside it, -1 for NULL, so every column travels as a float8.
_VOCAB_PARAMS = {
    "rule_codes": "rule_code",
    "customer_classes": "customer_class",
    "meter_kinds": "meter_kind",
    "resolution_codes": "last_resolution",
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

# What the columns mean, where a change keeps their names: bump it whenever a column's
# definition changes, so that models trained on the old meaning are refused at load and
# retrained instead of scoring skewed inputs. History: 2, day_coverage counts the intervals
# of the local day's real length (23 or 25 hours on daylight-saving days), not 24 hours'.
FEATURE_DEFINITIONS_VERSION = 2


def feature_schema_fingerprint() -> str:
    """Identifies the column set, vocabularies, windows and definitions; a model records it
    and scoring checks it."""
    import hashlib
    import json

    spec = {
        "definitions": FEATURE_DEFINITIONS_VERSION,
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
    execute_sql_file(conn, "queries/features_ids_analyze.sql")
    # JIT compiling this wide query cost ~5 s per chunk, more than running it; its sorts of
    # wide rows spilled to disk under the default 4 MB of work_mem. Both for this
    # transaction only.
    execute_sql_file(conn, "queries/session_setting_set.sql", {"name": "jit", "value": "off"})
    execute_sql_file(conn, "queries/session_setting_set.sql",
                     {"name": "work_mem", "value": f"{FEATURES_WORK_MEM_MB}MB"})
    # The look-back windows subtract days from timestamps (`raised_at - interval '30 days'`),
    # which PostgreSQL does in the session's TimeZone: across a daylight-saving change a
    # server or login set to local time moved each bound by an hour, and with it the
    # features (outside probe, 2026-11-27: 53 of 510 confidences changed). Days of 24 hours
    # (UTC), as on the servers every test and benchmark ran on; a model trained where the
    # server ran in local time saw those bounds an hour off near a change. The utility's
    # own calendar days are bound explicitly (:tz). The session's zone is put back after,
    # for whatever else the transaction runs.
    params = {
        "tz": tz,
        "hist_days": HIST_DAYS,
        "settle_days": SETTLE_DAYS,
        "temp_days": TEMP_DAYS,
        "res_days": RES_DAYS,
        **{vocab: list(CATEGORY_VALUES[column]) for vocab, column in _VOCAB_PARAMS.items()},
    }
    with pinned_settings(conn, {"TimeZone": "UTC"}):
        execute_sql_file(conn, "queries/features_prepare.sql")
        # Binary COPY of fixed-width rows into numpy: ~130 values a row would otherwise each
        # become a Python object in the cursor, or be printed and parsed again as text. What
        # a usage context's exceptions share comes once per context, not once per exception.
        context_names, context_ids, context_values = copy_query_matrix(
            conn, "queries/features_context_rows.sql", params
        )
        names, ids_out, values = copy_query_matrix(conn, "queries/features_exception_rows.sql", params)
        execute_sql_file(conn, "queries/features_temp_drop.sql")
    if len(ids_out) != len(ids):
        missing = sorted(set(ids) - set(ids_out.tolist()))
        raise UnknownExceptionIds(
            f"{len(missing)} exception id(s) not in mdm.vee_exception, e.g. {missing[:5]}"
        )
    names, values = join_context_rows(
        names[1:], values, context_names[1:], context_ids, context_values
    )
    return finish_features(names, ids_out, values, tz)


# The counts of a meter-day's exceptions by group of rules, and the rules each group holds:
# an exception's own rule is left out of its group's count.
_SAMEDAY_GROUPS = {
    "gap": ("GAP",),
    "low": ("LOW_USAGE", "ZERO_CONSUMPTION"),
    "high": ("HIGH_USAGE", "SPIKE"),
    "meter": ("FLATLINE", "STEP_CHANGE", "REVERSE_FLOW"),
}
_WINDOW_COLUMNS = ("rows", "values", "distinct", "nonactual", "zero", "negative", "kwh", "max")


def join_context_rows(
    names: list[str], values: np.ndarray,
    context_names: list[str], context_ids: np.ndarray, context_values: np.ndarray,
) -> tuple[list[str], np.ndarray]:
    """Each exception's row (`names`/`values`, from features_exception_rows.sql, with its
    `ctx_id` and `whole_day` flag) joined to its context's row (from
    features_context_rows.sql, one per `context_ids`): the columns finish_features takes,
    laid out column by column. Numpy only, unit-testable.

    Here, as the single query did before: the same-day counts leave the exception's own
    rule out, and a rule window spanning the whole read date is that day's usage row."""
    own = {name: values[:, j] for j, name in enumerate(names)}
    context_ctx = np.asarray(context_ids, dtype=np.int64)
    exception_ctx = own.pop("ctx_id")
    position = np.full(int(context_ctx.max(initial=0)) + 2, -1, dtype=np.int64)
    position[context_ctx] = np.arange(len(context_ctx))
    known = np.isfinite(exception_ctx) & (exception_ctx >= 0) & (exception_ctx < len(position))
    rows = np.where(known, position[np.where(known, exception_ctx, 0).astype(np.int64)], -1)
    if (rows < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} exception row(s) without their context's row")
    shared = {name: context_values[rows, j] for j, name in enumerate(context_names)}

    whole_day = own.pop("whole_day") == 1.0
    for column in _WINDOW_COLUMNS:
        day_row = shared.pop(f"whole_day_{column}")
        own[f"win_{column}"] = np.where(whole_day, day_row, own[f"win_{column}"])
    rule = own["rule_code"]  # 1-based position in RULE_CODES, 0 unknown, -1 NULL
    for group, rules in _SAMEDAY_GROUPS.items():
        positions = [RULE_CODES.index(code) + 1 for code in rules]
        in_group = np.where(rule < 0, np.nan, np.isin(rule, positions).astype("float64"))
        # greatest(count - own, 0): a NULL rule leaves NULL, which greatest() skips: 0
        shared[f"sameday_{group}"] = np.fmax(shared.pop(f"sameday_n_{group}") - in_group, 0.0)

    columns = {**own, **shared}
    out = np.empty((len(rows), len(columns)), dtype="float64", order="F")
    for j, column in enumerate(columns.values()):
        out[:, j] = column
    return list(columns), out


def _factor_distance(log_ratio: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Distance in log space from the observed/expected ratio to the nearest factor (9 when
    there is no ratio)."""
    dist = np.abs(log_ratio[:, None] - np.log(factors)[None, :]).min(axis=1)
    return np.where(np.isfinite(dist), dist, 9.0)


def _per_read_date(epoch_days: np.ndarray, value_of) -> np.ndarray:
    """value_of(date) for each read date (days since 1970-01-01), computed once per distinct
    date; NaN for an unknown one."""
    epoch = dt.date(1970, 1, 1)
    out = np.full(len(epoch_days), np.nan, dtype="float64")
    known = np.isfinite(epoch_days)
    days, inverse = np.unique(epoch_days[known], return_inverse=True)
    values = np.array([value_of(epoch + dt.timedelta(days=int(day))) for day in days],
                      dtype="float64")
    out[known] = values[inverse]
    return out


def _near_dst(epoch_days: np.ndarray, timezone: str) -> np.ndarray:
    """1 when a daylight-saving change happened in the 7 read dates ending at this one
    (meter clocks that did not follow it shift an hour), else 0 (also for an unknown date)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)

    def near(d: dt.date) -> float:
        a = dt.datetime.combine(d - dt.timedelta(days=6), dt.time(0, 0), tzinfo=zone)
        b = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(0, 0), tzinfo=zone)
        return float(a.utcoffset() != b.utcoffset())

    return np.nan_to_num(_per_read_date(epoch_days, near), nan=0.0)


def _day_hours(epoch_days: np.ndarray, timezone: str) -> np.ndarray:
    """Hours in each read date in the utility's time zone: 23 or 25 on daylight-saving days,
    else 24 (NaN for an unknown date)."""
    from vee_tasks.dates import day_bounds

    def hours(d: dt.date) -> float:
        start, end = day_bounds(d, timezone)
        return (end - start).total_seconds() / 3600.0

    return _per_read_date(epoch_days, hours)


def decode_categories(codes: np.ndarray, column: str) -> np.ndarray:
    """The query's codes back to strings: -1 (NULL) the fill value, 0 (a value outside the
    vocabulary) UNKNOWN, k the k-th value of CATEGORY_VALUES[column]."""
    fill = NONE if column.startswith("last_resolution") else UNKNOWN
    lookup = np.array([fill, UNKNOWN, *CATEGORY_VALUES[column]], dtype=object)
    index = np.nan_to_num(codes, nan=-1.0).astype(np.int64) + 1
    return lookup[np.clip(index, 0, len(lookup) - 1)]


def finish_features(
    names: list[str], exception_ids: np.ndarray, values: np.ndarray,
    timezone: str = "America/Toronto",
) -> pd.DataFrame:
    """Derive, fill and type the query's rows (`names` the columns of `values`, one row per
    id in `exception_ids`): numpy only, unit-testable. Rows come back in id order.

    Columns are derived in the order the rows came (contiguous when `values` is laid out
    column by column, as copy_query_matrix returns it) and sorted by id once, at the end."""
    order = np.argsort(exception_ids, kind="stable")
    index = pd.Index(exception_ids[order], dtype="int64", name="exception_id")
    raw = {name: values[:, j] for j, name in enumerate(names)}
    num: dict[str, np.ndarray] = {
        c: v for c, v in raw.items() if c not in CATEGORICAL_COLUMNS and c != "read_date"
    }
    nan = np.nan
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        obs = num["observed_value"]
        exp = num["expected_value"]
        num["expected_missing"] = np.isnan(exp).astype("float64")
        num["log_observed"] = np.sign(obs) * np.log1p(np.abs(obs))
        num["log_expected"] = np.sign(exp) * np.log1p(np.abs(exp))
        num["log_ratio"] = np.log((np.abs(obs) + 1e-3) / (np.abs(exp) + 1e-3))
        interval = num["interval_minutes"]
        interval_pos = np.where(interval > 0, interval, nan)
        num["window_intervals"] = num["window_hours"] * 60.0 / interval_pos
        window_intervals = num["window_intervals"]
        num["win_coverage"] = num["win_values"] / np.where(window_intervals > 0, window_intervals, nan)
        # intervals the local day has: 23 or 25 hours' worth on daylight-saving days
        num["day_coverage"] = num["day_values"] / (
            _day_hours(raw["read_date"], timezone) * 60.0 / interval_pos)
        multiplier = num["multiplier"]
        num["log_multiplier"] = np.log(np.where(multiplier > 0, multiplier, nan))
        num["has_usage_history"] = (np.nan_to_num(num["hist_days"], nan=0.0) > 0).astype("float64")
        num["weather_known"] = (~np.isnan(num["temp_day"])).astype("float64")
        num["observed_hours"] = obs * interval / 60.0
        ratio = obs / np.where(exp > 0, exp, nan)
        log_ratio = np.log(np.where(ratio > 0, ratio, nan))
        num["ct_factor_dist"] = _factor_distance(log_ratio, _CT_FACTORS)
        num["phase_factor_dist"] = _factor_distance(log_ratio, _PHASE_FACTORS)
    num["is_weekend"] = (num["read_dow"] >= 6).astype("float64")
    num["near_dst"] = _near_dst(raw["read_date"], timezone)
    streak = np.zeros(len(index))
    alive = np.ones(len(index), dtype=bool)
    for k in (1, 2, 3, 4):
        alive &= np.nan_to_num(num[f"gap_d{k}"], nan=0.0) > 0
        streak += alive
    num["gap_streak"] = streak
    for col in _DAYS_SINCE_COLUMNS:
        num[col] = np.nan_to_num(num[col], nan=float(RES_DAYS + 1), posinf=np.inf, neginf=-np.inf)

    # The counts of the exception's own rule: its column among the per-rule counts.
    rule = np.nan_to_num(raw["rule_code"], nan=-1.0).astype(np.int64)  # 1-based in RULE_CODES
    known_rule = (rule >= 1) & (rule <= len(RULE_CODES))
    pick = np.where(known_rule, rule - 1, 0)[:, None]
    for window in (14, 30, 90):
        per_rule = np.column_stack([num[f"exc{window}_{_RULE_SLUG[c]}"] for c in RULE_CODES])
        same = np.take_along_axis(per_rule, pick, axis=1)[:, 0]
        num[f"exc{window}_same_rule"] = np.where(known_rule, same, 0.0)

    for col in _RATIO_COLUMNS:
        num[col] = np.nan_to_num(np.clip(num[col], -1e4, 1e4), nan=1.0)
    num["days_since_resolution"] = np.nan_to_num(
        num["days_since_resolution"], nan=float(RES_DAYS), posinf=np.inf, neginf=-np.inf
    )
    # One row per column, each a contiguous array: filled, then sorted by id in one gather;
    # its transpose is the row-per-exception layout pandas keeps as a single block.
    by_column = np.empty((len(NUMERIC_COLUMNS), len(index)), dtype="float64")
    for j, column in enumerate(NUMERIC_COLUMNS):
        by_column[j] = num[column]
    np.nan_to_num(by_column, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    by_column = by_column[:, order]
    categorical = pd.DataFrame(
        {c: decode_categories(raw[c], c)[order] for c in CATEGORICAL_COLUMNS},
        index=index,
        dtype=object,
    )
    numeric = pd.DataFrame(by_column.T, index=index, columns=list(NUMERIC_COLUMNS), copy=False)
    frame = pd.concat([categorical, numeric], axis=1)
    frame.index.name = "exception_id"
    return frame
