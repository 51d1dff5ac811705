"""The MDMS's validation set: the contract's 8 rules over each meter-day.

Rules see only what had arrived when the nightly validation batch ran (received_at before
the batch time), like the real MDMS. Per-chunk work reduces the reads to per meter-day
statistics (arrays of shape (meters, days)); the rules that need history then run over the
whole fleet. Parameters live in params.py and are tabled in docs/simulator.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vee_tasks.config import RULE_CODES
from vee_tasks.simulator import params as P
from vee_tasks.simulator.fleet import Fleet, Weather
from vee_tasks.simulator.loads import Chunk
from vee_tasks.simulator.timegrid import US_PER_MIN, Calendar, SlotGrid

STAT_NAMES = (
    "n_expected", "n_seen", "n_est", "import_kwh", "export_kwh", "gap_first", "gap_last",
    "top1", "top3", "top1_slot", "zero_day", "flat_run", "flat_end", "neg_first", "neg_last",
    "day_cv", "minutes", "n_zero",
)


@dataclass
class DayStats:
    """Per meter-day statistics of what the validation batch saw (fleet-wide arrays)."""

    arrays: dict = field(default_factory=dict)

    @classmethod
    def empty(cls, n: int, days: int) -> "DayStats":
        return cls({k: np.full((n, days), np.nan) for k in STAT_NAMES})

    def __getitem__(self, key):
        return self.arrays[key]


def chunk_stats(chunk: Chunk, grid: SlotGrid, cal: Calendar, validation_us: np.ndarray,
                stats: DayStats, fleet_install_day: np.ndarray) -> None:
    """Reduce one chunk's reads to the per meter-day statistics the rules need."""
    n = len(chunk.meters)
    D, S = cal.days, grid.max_slots
    val_time = validation_us[chunk.meters][:, grid.day]  # (n, T)
    seen = chunk.present & ~np.isnan(chunk.value) & (chunk.received_us <= val_time)
    del val_time
    pad = np.full((n, D, S), np.nan)
    pad[:, grid.day, grid.slot] = np.where(seen, chunk.value, np.nan)
    est = np.zeros((n, D, S), dtype=bool)
    est[:, grid.day, grid.slot] = seen & (chunk.quality == 1)
    valid = np.zeros((D, S), dtype=bool)
    valid[grid.day, grid.slot] = True
    isnan = np.isnan(pad)
    missing = isnan & valid[None]
    n_seen = (~isnan).sum(axis=2)
    out = {}
    out["n_expected"] = np.broadcast_to(grid.slots_per_day[None, :], (n, D)).astype(float)
    out["n_seen"] = n_seen.astype(float)
    out["n_est"] = est.sum(axis=2).astype(float)
    out["minutes"] = np.full((n, D), float(grid.minutes))
    pos = np.where(isnan, 0.0, np.maximum(pad, 0.0))
    neg = np.where(isnan, 0.0, np.maximum(-pad, 0.0))
    out["import_kwh"] = pos.sum(axis=2)
    out["export_kwh"] = neg.sum(axis=2)
    any_missing = missing.any(axis=2)
    out["gap_first"] = np.where(any_missing, missing.argmax(axis=2), np.nan)
    out["gap_last"] = np.where(any_missing, S - 1 - missing[:, :, ::-1].argmax(axis=2), np.nan)
    filled = np.where(isnan, -np.inf, pad)
    top = -np.sort(-filled, axis=2)[:, :, :3]
    out["top1"] = np.where(n_seen >= 3, top[:, :, 0], np.nan)
    out["top3"] = np.where(n_seen >= 3, top[:, :, 2], np.nan)
    out["top1_slot"] = filled.argmax(axis=2).astype(float)
    out["n_zero"] = (pad == 0.0).sum(axis=2).astype(float)
    out["zero_day"] = ((n_seen >= 0.9 * grid.slots_per_day[None, :])
                       & np.all(isnan | (pad == 0.0), axis=2)).astype(float)
    # longest run of identical consecutive non-zero values (stuck register)
    eq = np.zeros((n, D, S), dtype=bool)
    eq[:, :, 1:] = (pad[:, :, 1:] == pad[:, :, :-1]) & (pad[:, :, 1:] != 0.0)
    c = np.cumsum(eq, axis=2)
    run = c - np.maximum.accumulate(np.where(~eq, c, 0), axis=2)
    out["flat_run"] = run.max(axis=2) + 1.0
    out["flat_end"] = run.argmax(axis=2).astype(float)
    negm = ~isnan & (pad < 0)
    any_neg = negm.any(axis=2)
    out["neg_first"] = np.where(any_neg, negm.argmax(axis=2), np.nan)
    out["neg_last"] = np.where(any_neg, S - 1 - negm[:, :, ::-1].argmax(axis=2), np.nan)
    vals = np.where(isnan, 0.0, pad)
    cnt = np.maximum(n_seen, 1)
    m1 = vals.sum(axis=2) / cnt
    m2 = (vals**2).sum(axis=2) / cnt
    with np.errstate(invalid="ignore", divide="ignore"):
        out["day_cv"] = np.sqrt(np.maximum(m2 - m1**2, 0.0)) / np.where(m1 > 0, m1, np.nan)
    # days before installation are not validated at all
    before = np.arange(D)[None, :] < fleet_install_day[chunk.meters][:, None]
    for k, v in out.items():
        stats.arrays[k][chunk.meters] = np.where(before, np.nan, v)


def _tadj(fleet: Fleet, weather: Weather) -> np.ndarray:
    """The MDMS's generic temperature normalisation factor per meter-day."""
    temp = weather.read_days(weather.temp)[fleet.region]
    hdd = np.maximum(0.0, P.HDD_BASE_C - temp)
    cdd = np.maximum(0.0, temp - P.CDD_BASE_C)
    a = np.array([P.RULE_TEMP_ADJ[c][0] for c in ("RES", "COM", "IND")])[fleet.cls][:, None]
    b = np.array([P.RULE_TEMP_ADJ[c][1] for c in ("RES", "COM", "IND")])[fleet.cls][:, None]
    return 1.0 + a * hdd + b * cdd


def _window_median(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise median of the masked values (NaN where none) and how many there were."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are expected
        med = np.nanmedian(np.where(mask, values, np.nan), axis=1)
    return med, mask.sum(axis=1)


def evaluate(fleet: Fleet, cal: Calendar, weather: Weather, stats: DayStats) -> tuple[pd.DataFrame, dict]:
    """All exceptions of the period, one row per (meter, read date, rule) that fired.

    Also returns fleet-wide context arrays (baseline, ratios) that the analyst sees.
    """
    N, D = fleet.size, cal.days
    s = stats.arrays
    n_exp, n_seen = s["n_expected"], s["n_seen"]
    missing = n_exp - n_seen
    clean = missing <= P.MAX_MISSING_FOR_USAGE * n_exp
    imp = s["import_kwh"] * np.where(n_seen > 0, n_exp / np.maximum(n_seen, 1), 0.0)
    tadj = _tadj(fleet, weather)
    level = np.where(clean, imp / tadj, np.nan)
    off = cal.offday
    baseline = np.full((N, D), np.nan)
    hist_n = np.zeros((N, D))
    any_base = np.full((N, D), np.nan)
    export_max = np.full((N, D), np.nan)
    export_n = np.zeros((N, D))
    H = P.USAGE_HISTORY_DAYS
    exp_hist = np.where(n_seen > 0, s["export_kwh"], np.nan)
    for d in range(1, D):
        lo = max(0, d - H)
        same = off[lo:d] == off[d]
        window = level[:, lo:d]
        ok = ~np.isnan(window)
        med, cnt = _window_median(window, ok & same[None, :])
        baseline[:, d] = med * tadj[:, d]
        hist_n[:, d] = cnt
        med_all, _ = _window_median(window, ok)
        any_base[:, d] = med_all * tadj[:, d]
        ew = exp_hist[:, lo:d]
        export_n[:, d] = (~np.isnan(ew)).sum(axis=1)
        with np.errstate(all="ignore"):
            export_max[:, d] = np.where(export_n[:, d] > 0, np.nanmax(np.where(np.isnan(ew), -1, ew), axis=1), np.nan)
    fired = {}
    has_hist = hist_n >= P.USAGE_MIN_HISTORY
    zero_day = s["zero_day"] == 1
    fired["GAP"] = missing >= 1
    hrs = s["minutes"] / 60.0
    fired["SPIKE"] = (
        (s["top1"] > (1 + P.SPIKE_TOLERANCE) * np.maximum(s["top3"], 0))
        & (s["top1"] - np.maximum(s["top3"], 0) > P.SPIKE_MIN_KW * hrs)
    )
    with np.errstate(invalid="ignore"):
        fired["HIGH_USAGE"] = (clean & has_hist & (imp > P.HIGH_RATIO * baseline)
                               & (imp - baseline > P.USAGE_MIN_KWH))
        fired["LOW_USAGE"] = (clean & has_hist & ~zero_day & (imp < P.LOW_RATIO * baseline)
                              & (baseline > P.USAGE_MIN_KWH))
        fired["ZERO_CONSUMPTION"] = zero_day & (any_base > P.ZERO_MIN_BASELINE_KWH)
    flat_need = P.FLATLINE_HOURS * 60.0 / s["minutes"]
    fired["FLATLINE"] = s["flat_run"] >= flat_need
    der = fleet.has_der[:, None]
    exp_kwh = s["export_kwh"]
    with np.errstate(invalid="ignore"):
        rev_der = (der & (export_n >= 14) & (exp_kwh > 1.0)
                   & (exp_kwh > P.REVERSE_DER_FACTOR * export_max)
                   & (exp_kwh >= P.REVERSE_DER_NET * s["import_kwh"]))
    fired["REVERSE_FLOW"] = (~der & (exp_kwh > P.REVERSE_MIN_KWH)) | rev_der
    # STEP_CHANGE: three consecutive clean days at a near-constant factor from the level
    # before them, same day type compared with same day type.
    step = np.zeros((N, D), dtype=bool)
    step_obs = np.full((N, D), np.nan)
    step_exp = np.full((N, D), np.nan)
    W = P.STEP_WINDOW
    back, need = P.STEP_HISTORY
    last_step = np.full(N, -10_000)
    for d in range(W - 1, D):
        w0 = d - W + 1
        lo = max(0, w0 - back)
        if w0 - lo < need:
            continue
        hist = level[:, lo:w0]
        ok = ~np.isnan(hist)
        if ok.sum(axis=1).max() < need:
            continue
        med_work, n_work = _window_median(hist, ok & ~off[lo:w0][None, :])
        med_off, n_off = _window_median(hist, ok & off[lo:w0][None, :])
        med_all, n_all = _window_median(hist, ok)
        ref = []
        for j in range(w0, d + 1):
            if off[j]:
                r = np.where(n_off >= 2, med_off, med_all)
            else:
                r = np.where(n_work >= 4, med_work, med_all)
            ref.append(r)
        ref = np.stack(ref, axis=1)
        win = level[:, w0 : d + 1]
        with np.errstate(all="ignore"):
            f = win / ref
            fbar = f.mean(axis=1)
            consistent = np.all(np.abs(f / fbar[:, None] - 1) <= P.STEP_CONSISTENCY, axis=1)
            big = (fbar >= P.STEP_UP) | (fbar <= P.STEP_DOWN)
            hit = (n_all >= need) & consistent & big & np.all(ref > 0.2, axis=1) & np.all(win > 0, axis=1)
        hit &= (d - last_step) > P.STEP_REFRACTORY_DAYS
        last_step = np.where(hit, d, last_step)
        step[:, d] = hit
        step_obs[:, d] = (win * tadj[:, w0 : d + 1]).mean(axis=1)
        step_exp[:, d] = (ref * tadj[:, w0 : d + 1]).mean(axis=1)
    fired["STEP_CHANGE"] = step

    # one frame of exceptions
    day_start = cal.start_us[:-1][None, :]
    day_end = cal.start_us[1:][None, :]
    step_us = (s["minutes"] * US_PER_MIN)
    frames = []
    for code in RULE_CODES:
        mask = np.asarray(fired[code], dtype=bool) & ~np.isnan(n_seen)
        mi, di = np.nonzero(mask)
        if len(mi) == 0:
            continue
        ws = np.broadcast_to(day_start, (N, D))[mi, di].astype(np.int64)
        we = np.broadcast_to(day_end, (N, D))[mi, di].astype(np.int64)
        st = step_us[mi, di].astype(np.int64)
        exp_v = np.full(len(mi), np.nan)
        if code == "GAP":
            obs = missing[mi, di]
            exp_v = n_exp[mi, di]
            a, b = s["gap_first"][mi, di], s["gap_last"][mi, di]
            ws, we = ws + a.astype(np.int64) * st, ws + (b.astype(np.int64) + 1) * st
        elif code == "SPIKE":
            obs = s["top1"][mi, di]
            exp_v = s["top3"][mi, di]
            k = s["top1_slot"][mi, di].astype(np.int64)
            ws, we = ws + k * st, ws + (k + 1) * st
        elif code in ("HIGH_USAGE", "LOW_USAGE"):
            obs = imp[mi, di]
            exp_v = baseline[mi, di]
        elif code == "ZERO_CONSUMPTION":
            obs = np.zeros(len(mi))
            exp_v = any_base[mi, di]
        elif code == "FLATLINE":
            run = s["flat_run"][mi, di].astype(np.int64)
            end = s["flat_end"][mi, di].astype(np.int64)
            obs = run.astype(float)
            ws, we = ws + (end - run + 1) * st, ws + (end + 1) * st
        elif code == "REVERSE_FLOW":
            obs = exp_kwh[mi, di]
            exp_v = np.where(fleet.has_der[mi], export_max[mi, di], np.nan)
            a, b = s["neg_first"][mi, di], s["neg_last"][mi, di]
            ws, we = ws + a.astype(np.int64) * st, ws + (b.astype(np.int64) + 1) * st
        else:  # STEP_CHANGE
            obs = step_obs[mi, di]
            exp_v = step_exp[mi, di]
        we = np.minimum(we, np.broadcast_to(day_end, (N, D))[mi, di])
        frames.append(pd.DataFrame({
            "meter": mi, "day": di, "rule_code": code,
            "window_start_us": ws, "window_end_us": we,
            "observed_value": np.round(obs.astype(float), 4),
            "expected_value": np.round(exp_v.astype(float), 4),
        }))
    exc = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({
        "meter": np.zeros(0, np.int64), "day": np.zeros(0, np.int64),
        "rule_code": np.zeros(0, object), "window_start_us": np.zeros(0, np.int64),
        "window_end_us": np.zeros(0, np.int64), "observed_value": np.zeros(0),
        "expected_value": np.zeros(0)})
    context = {"baseline": baseline, "any_base": any_base, "imp": imp, "clean": clean,
               "level": level, "tadj": tadj}
    return exc, context
