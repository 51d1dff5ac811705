"""How careful analysts resolve the exception queue (the labels), and when.

The policy reads what an analyst sees when the exception is raised: the exception row, the
meter's attributes, recent reads (level, profile spread, zero days, export), the weather
against the recent past, the meter's earlier exceptions and the resolutions already made.
It knows the hidden cause only where an analyst would (an outage log, a phone call), and
some decisions are inconsistent. docs/simulator.md tables the branches.

The loop runs over exceptions in time order (thousands, not intervals): a decision depends
on resolutions that were made before the exception was raised.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vee_tasks.config import RESOLUTION_CODES, RULE_CODES
from vee_tasks.simulator import params as P
from vee_tasks.simulator.fleet import Fleet, Weather
from vee_tasks.simulator.rules import DayStats
from vee_tasks.simulator.timegrid import US_PER_HOUR, US_PER_MIN, Calendar

CODE_INDEX = {c: i for i, c in enumerate(RESOLUTION_CODES)}
RULE_INDEX = {c: i for i, c in enumerate(RULE_CODES)}
#: factors a wrong CT multiplier produces (old ratio / new ratio)
CT_FACTORS = np.array(P.CT_ERROR_FACTORS)
PHASE_FACTORS = np.array([1 / 3, 2 / 3])
CT_TOLERANCE = 0.08  # |log(ratio / factor)| an analyst calls 'a CT ratio'

#: which hidden events explain which rule, in order of precedence (diagnostics only)
CAUSES = {
    "GAP": ("CLOCK_SHIFT", "COMM_DEAD", "COMM_LONG", "COMM_SHORT"),
    "SPIKE": ("GLITCH_SPIKE", "COMM_SHORT", "COMM_LONG", "SPIKE_REAL", "PARTY"),
    "HIGH_USAGE": ("MULT_WRONG", "GENUINE_STEP", "PARTY", "REVERSED", "STUCK", "GLITCH_SPIKE"),
    "LOW_USAGE": ("MULT_WRONG", "PHASE_LOSS", "TAMPER", "VACANCY", "OUTAGE", "GENUINE_STEP",
                  "STUCK", "REVERSED", "UNREG_SOLAR"),
    "ZERO_CONSUMPTION": ("DEAD_ZERO", "OUTAGE", "VACANCY"),
    "FLATLINE": ("STUCK", "FLAT_PROCESS", "HEADEND_EST"),
    "REVERSE_FLOW": ("REVERSED", "UNREG_SOLAR"),
    "STEP_CHANGE": ("MULT_WRONG", "PHASE_LOSS", "TAMPER", "GENUINE_STEP", "VACANCY", "STUCK"),
}


def _log_dist(ratio: float, factors: np.ndarray) -> float:
    if not (ratio > 0) or not math.isfinite(ratio):
        return 9.0
    return float(np.min(np.abs(np.log(ratio) - np.log(factors))))


def attribute_causes(exc: pd.DataFrame, events: pd.DataFrame, cal: Calendar,
                     weather: Weather, fleet: Fleet) -> np.ndarray:
    """The hidden cause of each exception (diagnostics and the analyst's outside knowledge)."""
    cause = np.full(len(exc), "NONE", dtype=object)
    if len(exc) == 0:
        return cause
    day_start = cal.start_us[exc["day"].to_numpy()]
    day_end = cal.start_us[exc["day"].to_numpy() + 1]
    left = pd.DataFrame({"row": np.arange(len(exc)), "meter": exc["meter"].to_numpy(),
                         "rule": exc["rule_code"].to_numpy(), "ds": day_start, "de": day_end})
    m = left.merge(events[["meter", "kind", "t0", "t1"]], on="meter", how="inner")
    m = m[(m["t0"] < m["de"]) & (m["t1"] > m["ds"] - 3 * 24 * US_PER_HOUR * (m["rule"] == "STEP_CHANGE"))]
    prio = []
    for rule, kinds in CAUSES.items():
        for i, k in enumerate(kinds):
            prio.append((rule, k, i))
    pr = pd.DataFrame(prio, columns=["rule", "kind", "prio"])
    m = m.merge(pr, on=["rule", "kind"], how="inner").sort_values(["row", "prio"])
    first = m.drop_duplicates("row")
    cause[first["row"].to_numpy()] = first["kind"].to_numpy()
    hw = weather.read_days(weather.heat_wave)[fleet.region[exc["meter"]], exc["day"]]
    cs = weather.read_days(weather.cold_snap)[fleet.region[exc["meter"]], exc["day"]]
    none = cause == "NONE"
    cause[none & hw] = "HEAT_WAVE"
    cause[none & cs] = "COLD_SNAP"
    return cause


@dataclass
class Ctx:
    """What the analyst looks at for one exception."""

    rule: str
    obs: float
    exp: float
    cls: str
    kind: str
    has_der: bool
    minutes: int
    day: int
    anom: float
    temp: float
    offday: bool
    win_start_h: float  # local hour of window start
    win_len_h: float
    gap_streak: int  # consecutive earlier days with a GAP on this meter
    same_rule_14d: int
    zero_days_7: int
    cv_ratio: float
    cv_hist: float
    export_share: float
    near_dst: bool
    gap_today: bool
    spike_today: bool  # a SPIKE was raised on the same meter-day
    reverse_today: bool  # a REVERSE_FLOW was raised on the same meter-day
    zero_share: float  # share of the day's intervals that read exactly zero
    est_14d: int  # head-end estimated intervals (quality E) in the last 14 days
    at_day_edge: bool  # window touches the read date's first or last instant
    checked_log: bool  # the analyst looked at the outage log this time
    cause: str
    known: list  # (day, rule, code) of resolutions known at raised_at, newest last


def _recent(known, day, within, rules=None, codes=None):
    for d, r, c in reversed(known):
        if day - d > within:
            break
        if (rules is None or r in rules) and (codes is None or c in codes):
            return c
    return None


def decide(c: Ctx) -> tuple[dict, str]:
    """Probabilities over resolution codes for one exception, and the analyst's note."""
    ratio = c.obs / c.exp if c.exp and c.exp > 0 and math.isfinite(c.exp) else float("nan")
    R = c.rule
    if R == "GAP":
        miss_h = c.obs * c.minutes / 60.0
        clock = abs(c.win_len_h - 1.0) < 1e-6 and abs(miss_h - 1.0) < 1e-6 and c.at_day_edge
        if clock:
            return ({"EDIT": 0.9, "ESTIMATE": 0.1} if c.near_dst else {"EDIT": 0.65, "ESTIMATE": 0.35},
                    "hour missing at midnight: meter clock shifted")
        if miss_h <= 2:
            if c.gap_streak >= 2:
                return {"REREAD": 0.6, "FIELD_ORDER": 0.4}, "short gap, repeated"
            if miss_h <= 1:
                return {"ESTIMATE": 0.995, "REREAD": 0.005}, "short gap: interpolate"
            return {"ESTIMATE": 0.88, "REREAD": 0.12}, "short gap: interpolate"
        if miss_h < 12:
            if c.same_rule_14d >= 2:
                return {"REREAD": 0.65, "FIELD_ORDER": 0.35}, "recurring gaps"
            if c.est_14d > 0:
                return {"REREAD": 0.75, "FIELD_ORDER": 0.1, "ESTIMATE": 0.15}, "flaky communications"
            if c.cls != "RES":
                return {"REREAD": 0.7, "ESTIMATE": 0.3}, "gap on a business meter: re-read"
            return {"ESTIMATE": 0.55, "REREAD": 0.45}, "gap of hours"
        if c.gap_streak == 0:
            return {"REREAD": 0.85, "FIELD_ORDER": 0.15}, "day missing: re-read"
        if c.gap_streak == 1:
            last = _recent(c.known, c.day, 3, rules=("GAP",))
            if last == "REREAD":
                return {"FIELD_ORDER": 0.8, "REREAD": 0.2}, "re-read did not help: field order"
            return {"REREAD": 0.5, "FIELD_ORDER": 0.5}, "second day missing"
        return {"FIELD_ORDER": 0.99, "REREAD": 0.01}, "meter silent for days"
    if R == "SPIKE":
        if c.gap_today:
            return {"ESTIMATE": 0.99, "ACCEPT": 0.01}, "catch-up interval after a gap"
        if ratio >= 12:
            if c.same_rule_14d >= 1:
                return {"FIELD_ORDER": 0.6, "ESTIMATE": 0.4}, "repeated absurd spikes"
            return {"ESTIMATE": 0.85, "FIELD_ORDER": 0.15}, "absurd interval"
        if ratio >= 6:
            if c.cls == "RES":
                return {"ESTIMATE": 0.5, "ACCEPT": 0.5}, "large spike"
            return {"ESTIMATE": 0.65, "ACCEPT": 0.35}, "large spike"
        return {"ACCEPT": 0.85, "ESTIMATE": 0.15}, "plausible appliance burst"
    if R == "HIGH_USAGE":
        if _recent(c.known, c.day, 14, codes=("EDIT",), rules=("HIGH_USAGE", "STEP_CHANGE", "LOW_USAGE")):
            return {"EDIT": 0.85, "FIELD_ORDER": 0.15}, "multiplier correction pending"
        if c.kind == "CT" and _log_dist(ratio, CT_FACTORS) < CT_TOLERANCE:
            return {"EDIT": 0.7, "FIELD_ORDER": 0.15, "ACCEPT": 0.15}, "jump by a CT ratio"
        if c.spike_today:
            return {"ESTIMATE": 0.85, "ACCEPT": 0.15}, "one absurd interval makes the day"
        if abs(c.anom) >= 4 or c.temp >= 27:
            return {"ACCEPT": 0.98, "ESTIMATE": 0.02}, "weather-driven usage"
        if _recent(c.known, c.day, 30, rules=("LOW_USAGE", "ZERO_CONSUMPTION"), codes=("ACCEPT",)):
            return {"ACCEPT": 0.85, "ESTIMATE": 0.15}, "premise occupied again"
        if c.cls == "RES" and c.offday and ratio < 3.5:
            return {"ACCEPT": 0.8, "ESTIMATE": 0.2}, "weekend usage"
        if ratio >= 4:
            return {"ESTIMATE": 0.45, "FIELD_ORDER": 0.3, "REREAD": 0.25}, "unexplained high day"
        return {"ACCEPT": 0.6, "ESTIMATE": 0.3, "REREAD": 0.1}, "high day"
    if R == "LOW_USAGE":
        if _recent(c.known, c.day, 21, rules=("LOW_USAGE", "ZERO_CONSUMPTION"), codes=("ACCEPT",)):
            return {"ACCEPT": 0.9, "FIELD_ORDER": 0.1}, "known vacancy"
        if _recent(c.known, c.day, 21, rules=("LOW_USAGE", "STEP_CHANGE"), codes=("FIELD_ORDER",)):
            return {"FIELD_ORDER": 0.8, "ESTIMATE": 0.2}, "field order open"
        if _recent(c.known, c.day, 14, codes=("EDIT",), rules=("HIGH_USAGE", "STEP_CHANGE", "LOW_USAGE")):
            return {"EDIT": 0.85, "FIELD_ORDER": 0.15}, "multiplier correction pending"
        if c.kind == "CT" and _log_dist(ratio, CT_FACTORS) < CT_TOLERANCE:
            return {"EDIT": 0.7, "FIELD_ORDER": 0.2, "ACCEPT": 0.1}, "drop by a CT ratio"
        if c.reverse_today and not c.has_der:
            if c.kind == "CT":
                return {"EDIT": 0.7, "FIELD_ORDER": 0.3}, "import lost to reversed CT"
            return {"FIELD_ORDER": 0.85, "ESTIMATE": 0.15}, "import lost to reversed wiring"
        if c.zero_share >= 0.2 or (c.cause == "OUTAGE" and c.checked_log):
            return {"ACCEPT": 0.8, "ESTIMATE": 0.1, "REREAD": 0.1}, "outage hours"
        if c.cls != "RES" and c.offday:
            return {"ACCEPT": 0.85, "ESTIMATE": 0.15}, "business closed"
        if c.kind == "AMI_3PH" and _log_dist(ratio, PHASE_FACTORS) < 0.1:
            return {"FIELD_ORDER": 0.8, "ACCEPT": 0.2}, "lost phase"
        if c.cv_ratio < 0.6:
            return {"ACCEPT": 0.8, "FIELD_ORDER": 0.1, "ESTIMATE": 0.1}, "flat low profile: vacancy"
        return {"FIELD_ORDER": 0.6, "ACCEPT": 0.25, "ESTIMATE": 0.15}, "load shape kept, level gone"
    if R == "ZERO_CONSUMPTION":
        if c.cause == "OUTAGE" and (abs(c.anom) >= 6 or c.checked_log):
            return {"ACCEPT": 0.85, "REREAD": 0.15}, "outage"
        vacant = _recent(c.known, c.day, 30, rules=("LOW_USAGE", "ZERO_CONSUMPTION"), codes=("ACCEPT",))
        if c.zero_days_7 >= 2:
            if vacant:
                return {"FIELD_ORDER": 0.5, "ACCEPT": 0.5}, "zero for days at a vacant premise"
            return {"FIELD_ORDER": 0.85, "ESTIMATE": 0.15}, "register dead for days"
        if abs(c.anom) >= 6 and c.zero_days_7 == 0:
            return {"ACCEPT": 0.7, "REREAD": 0.3}, "storm day"
        if vacant:
            return {"ACCEPT": 0.9, "FIELD_ORDER": 0.1}, "vacant, breaker off"
        return {"REREAD": 0.45, "FIELD_ORDER": 0.35, "ESTIMATE": 0.2}, "zero day"
    if R == "FLATLINE":
        run_h = c.obs * c.minutes / 60.0
        prior = _recent(c.known, c.day, 30, rules=("FLATLINE",))
        if c.cls != "RES" and run_h < 20 and prior in (None, "ACCEPT"):
            if prior == "ACCEPT" or c.cls == "IND":
                return {"ACCEPT": 0.85, "FIELD_ORDER": 0.15}, "constant process load"
            return {"ACCEPT": 0.55, "FIELD_ORDER": 0.3, "ESTIMATE": 0.15}, "flat business load"
        if run_h >= 20 or (prior is not None and prior != "ACCEPT") or c.same_rule_14d >= 1:
            return {"FIELD_ORDER": 0.85, "ESTIMATE": 0.15}, "stuck register"
        if run_h < 8:
            return {"ESTIMATE": 0.65, "FIELD_ORDER": 0.35}, "short flat stretch"
        return {"FIELD_ORDER": 0.6, "ESTIMATE": 0.4}, "flat stretch"
    if R == "REVERSE_FLOW":
        if c.has_der:
            return {"ACCEPT": 0.995, "FIELD_ORDER": 0.005}, "solar export"
        if c.win_len_h >= 14 or c.export_share >= 0.9:
            if c.kind == "CT":
                return {"EDIT": 0.75, "FIELD_ORDER": 0.25}, "CT polarity reversed"
            return {"FIELD_ORDER": 0.9, "EDIT": 0.1}, "reversed wiring"
        prior = _recent(c.known, c.day, 30, rules=("REVERSE_FLOW",))
        if prior == "ACCEPT":
            return {"ACCEPT": 0.85, "FIELD_ORDER": 0.15}, "unregistered solar, accepted before"
        if prior == "FIELD_ORDER":
            return {"ACCEPT": 0.5, "FIELD_ORDER": 0.5}, "unregistered solar, visit pending"
        return {"FIELD_ORDER": 0.6, "ACCEPT": 0.4}, "midday export without DER"
    # STEP_CHANGE
    if c.kind == "CT" and _log_dist(ratio, CT_FACTORS) < CT_TOLERANCE:
        return {"EDIT": 0.98, "ACCEPT": 0.01, "FIELD_ORDER": 0.01}, "CT ratio not updated"
    if ratio > 1 and (abs(c.anom) >= 3 or c.temp >= 24):
        return {"ACCEPT": 0.85, "FIELD_ORDER": 0.15}, "hot spell"
    if ratio < 1 and (c.cv_ratio < 0.6 or _recent(
            c.known, c.day, 21, rules=("LOW_USAGE", "ZERO_CONSUMPTION"), codes=("ACCEPT",))):
        return {"ACCEPT": 0.8, "FIELD_ORDER": 0.2}, "premise empty"
    if ratio > 1 and _recent(c.known, c.day, 45, rules=("LOW_USAGE", "ZERO_CONSUMPTION"), codes=("ACCEPT",)):
        return {"ACCEPT": 0.85, "FIELD_ORDER": 0.15}, "end of vacancy"
    if c.kind == "CT":
        if _log_dist(ratio, CT_FACTORS) < CT_TOLERANCE:
            return {"EDIT": 0.85, "ACCEPT": 0.1, "FIELD_ORDER": 0.05}, "CT ratio not updated"
        return {"ACCEPT": 0.45, "EDIT": 0.3, "FIELD_ORDER": 0.25}, "level change on CT meter"
    if c.kind == "AMI_3PH" and ratio < 1 and _log_dist(ratio, PHASE_FACTORS) < 0.1:
        return {"FIELD_ORDER": 0.85, "ACCEPT": 0.15}, "lost phase"
    if c.cls != "RES" and ratio > 1:
        return {"ACCEPT": 0.6, "FIELD_ORDER": 0.4}, "site expansion?"
    return {"FIELD_ORDER": 0.7, "ACCEPT": 0.3}, "level change on whole-current meter"


def resolve(exc: pd.DataFrame, fleet: Fleet, cal: Calendar, weather: Weather, stats: DayStats,
            raised_us: np.ndarray, now_us: int, rng: np.random.Generator,
            timezone: str = "America/Toronto") -> pd.DataFrame:
    """Resolution code, analyst, time and note for each exception (NaN/None where left open)."""
    n_exc = len(exc)
    out = pd.DataFrame({
        "resolution_code": pd.Series([None] * n_exc, dtype=object),
        "resolved_by": pd.Series([None] * n_exc, dtype=object),
        "resolved_us": np.zeros(n_exc, dtype=np.int64),
        "note": pd.Series([None] * n_exc, dtype=object),
    })
    if n_exc == 0:
        return out
    D = cal.days
    s = stats.arrays
    temps = weather.temp
    H = P.WEATHER_HISTORY_DAYS
    # weather anomaly against the trailing 14 days (what an analyst calls "unusual")
    trail = np.stack([temps[:, H + d - 14 : H + d].mean(axis=1) for d in range(D)], axis=1)
    anom = weather.read_days(temps) - trail
    dst_days = np.flatnonzero(cal.hours != 24)
    near_dst = np.zeros(D, dtype=bool)
    for dd in dst_days:
        near_dst[dd : dd + 7] = True
    N = fleet.size
    exc_days = np.zeros((N, D, len(RULE_CODES)), dtype=bool)
    rule_idx = exc["rule_code"].map(RULE_INDEX).to_numpy()
    meters = exc["meter"].to_numpy()
    days = exc["day"].to_numpy()
    exc_days[meters, days, rule_idx] = True
    zero = np.nan_to_num(s["zero_day"]) > 0
    cv = s["day_cv"]
    gap_i = RULE_INDEX["GAP"]
    local_hour = _local_hours(exc["window_start_us"].to_numpy(), cal)
    cause = exc["cause"].to_numpy()
    analyst_bias = rng.normal(0, 0.15, (len(P.ANALYSTS), len(RESOLUTION_CODES)))
    known: dict[int, list] = {}
    pending: list = []
    order = np.lexsort((rule_idx, meters, raised_us))
    u = rng.random((n_exc, 5))
    delay_h = np.exp(rng.normal(np.log(8.0), 0.9, n_exc)).clip(*P.RESOLUTION_DELAY_H)
    planned = working_time(raised_us + (delay_h * US_PER_HOUR).astype(np.int64), timezone,
                           rng.uniform(0, 3, n_exc))
    open_from = D - P.OPEN_LAST_DAYS
    for j in order:
        t = raised_us[j]
        while pending and pending[0][0] <= t:
            _, m, d, r, code = heapq.heappop(pending)
            known.setdefault(m, []).append((d, r, code))
        m, d, ri = meters[j], days[j], rule_idx[j]
        if d >= open_from:
            continue
        streak = 0
        while d - streak - 1 >= 0 and exc_days[m, d - streak - 1, gap_i]:
            streak += 1
        lo7, lo14 = max(0, d - 7), max(0, d - 14)
        cv_hist = np.nanmedian(cv[m, lo14:d]) if d > 0 and np.isfinite(cv[m, lo14:d]).any() else np.nan
        tot = s["import_kwh"][m, d] + s["export_kwh"][m, d]
        ws, we = exc["window_start_us"].iat[j], exc["window_end_us"].iat[j]
        ctx = Ctx(
            rule=RULE_CODES[ri],
            obs=float(exc["observed_value"].iat[j]),
            exp=float(exc["expected_value"].iat[j]),
            cls=fleet.frame["customer_class"].iat[m],
            kind=fleet.kind[m],
            has_der=bool(fleet.has_der[m]),
            minutes=int(fleet.minutes[m]),
            day=int(d),
            anom=float(anom[fleet.region[m], d]),
            temp=float(weather.read_days(temps)[fleet.region[m], d]),
            offday=bool(cal.offday[d]),
            win_start_h=float(local_hour[j]),
            win_len_h=(we - ws) / US_PER_HOUR,
            gap_streak=streak,
            same_rule_14d=int(exc_days[m, lo14:d, ri].sum()),
            zero_days_7=int(zero[m, lo7:d].sum()),
            cv_ratio=float(cv[m, d] / cv_hist) if cv_hist and np.isfinite(cv_hist) and cv_hist > 0 else 1.0,
            cv_hist=float(cv_hist) if np.isfinite(cv_hist) else 1.0,
            export_share=float(s["export_kwh"][m, d] / tot) if tot > 0 else 0.0,
            near_dst=bool(near_dst[d]),
            gap_today=bool(exc_days[m, d, gap_i]),
            spike_today=bool(exc_days[m, d, RULE_INDEX['SPIKE']]),
            reverse_today=bool(exc_days[m, d, RULE_INDEX['REVERSE_FLOW']]),
            zero_share=float(s['n_zero'][m, d] / max(s['n_expected'][m, d], 1)),
            est_14d=int(np.nansum(s['n_est'][m, lo14:d])),
            at_day_edge=bool(ws == cal.start_us[d] or we == cal.start_us[d + 1]),
            checked_log=bool(u[j, 4] < 0.5),
            cause=str(cause[j]),
            known=known.get(m, []),
        )
        probs, note = decide(ctx)
        analyst = int(u[j, 0] * len(P.ANALYSTS))
        p = np.zeros(len(RESOLUTION_CODES))
        for code, w in probs.items():
            p[CODE_INDEX[code]] = w
        p = np.where(p > 0, p * np.exp(analyst_bias[analyst]), 0.0)
        p /= p.sum()
        deviate = P.INCONSISTENT_SHARE_CLEAR if max(probs.values()) >= P.CLEAR_CUT_P else P.INCONSISTENT_SHARE
        if u[j, 1] < deviate:
            choice = int(u[j, 2] * len(RESOLUTION_CODES))
            note = "inconsistent"
        else:
            choice = int(np.searchsorted(np.cumsum(p), u[j, 2] * (1 - 1e-12)))
        code = RESOLUTION_CODES[choice]
        resolved = int(planned[j])
        resolved = min(resolved, now_us - int((1 + u[j, 3] * 30) * US_PER_MIN))
        resolved = max(resolved, int(t + 20 * US_PER_MIN))
        out.iat[j, 0] = code
        out.iat[j, 1] = P.ANALYSTS[analyst]
        out.iat[j, 2] = resolved
        out.iat[j, 3] = note if note != "inconsistent" else None
        heapq.heappush(pending, (resolved, m, d, RULE_CODES[ri], code))
    return out


def working_time(us: np.ndarray, timezone: str, late_h: np.ndarray) -> np.ndarray:
    """Analysts work 08:00-18:00 local, Monday to Friday: later instants move to the next
    working morning (08:00 plus `late_h` hours)."""
    if len(us) == 0:
        return us
    local = pd.DatetimeIndex(pd.to_datetime(us, unit="us", utc=True)).tz_convert(timezone)
    hour = local.hour + local.minute / 60.0
    weekday = local.weekday.to_numpy()
    midnight = local.tz_localize(None).normalize()  # wall clock, so DST days keep 08:00
    # days to the next working morning
    after_hours = hour >= 18
    shift = np.where(after_hours, 1, 0)
    day_next = (weekday + shift) % 7
    shift = shift + np.where(day_next == 5, 2, np.where(day_next == 6, 1, 0))
    moved = (hour < 8) | after_hours | (weekday >= 5)
    morning = midnight + pd.to_timedelta(shift, unit="D") + pd.to_timedelta(8.0 + late_h, unit="h")
    morning = morning.tz_localize(timezone, ambiguous=False, nonexistent="shift_forward")
    morning_us = morning.tz_convert("UTC").as_unit("us").asi8
    return np.where(moved, morning_us, us).astype(np.int64)


def _local_hours(us: np.ndarray, cal: Calendar) -> np.ndarray:
    """Hours since local midnight of the read date containing each instant."""
    day = np.searchsorted(cal.start_us, us, side="right") - 1
    return (us - cal.start_us[day]) / US_PER_HOUR
