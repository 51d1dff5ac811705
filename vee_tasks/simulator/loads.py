"""Interval reads for a chunk of meters of one interval length: load shapes, weather
response, solar, then the scheduled events and faults, then delivery (receipt, quality).

Arrays are (meters, T) over the whole period's time axis; the only Python loops are over
scheduled events (a few per meter), each a slice operation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from vee_tasks.simulator import params as P
from vee_tasks.simulator.fleet import Fleet, Weather
from vee_tasks.simulator.timegrid import US_PER_HOUR, US_PER_MIN, Calendar, SlotGrid

Q_A, Q_E, Q_S, Q_F, Q_N = range(5)
QUALITY_BYTES = np.array([b"A", b"E", b"S", b"F", b"N"], dtype="S1")


def _g(h, mu, sd):
    d = (h - mu + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (d / sd) ** 2)


def _plateau(h, on, off, soft=0.7):
    return 1 / (1 + np.exp(-(h - on) / soft)) * 1 / (1 + np.exp(-(off - h) / soft))


def _profiles(h):
    """Daily load shapes by class, (work day, off day); a work day averages 1."""
    res_w = 0.35 + 0.5 * _g(h, 7.5, 1.3) + 1.0 * _g(h, 19.0, 2.5) + 0.25 * _g(h, 13.0, 3.0)
    res_o = 0.38 + 0.45 * _g(h, 9.5, 2.0) + 0.9 * _g(h, 18.5, 3.0) + 0.45 * _g(h, 13.0, 3.0)
    com_w = 0.28 + 1.0 * _plateau(h, 7.5, 18.5)
    com_o = 0.28 + 0.15 * _plateau(h, 9.0, 17.0)
    ind_w = 0.55 + 0.45 * _plateau(h, 6.0, 22.0)
    ind_o = 0.50 + 0.10 * _plateau(h, 7.0, 15.0)
    return {0: (res_w, res_o), 1: (com_w, com_o), 2: (ind_w, ind_o)}


_FINE = np.linspace(0, 24, 24 * 12, endpoint=False)
_NORM = {c: shapes[0].mean() for c, shapes in _profiles(_FINE).items()}
_HEAT_NORM = (0.6 + 0.4 * _g(_FINE, 7.0, 2.0) + 0.5 * _g(_FINE, 19.0, 3.0)).mean()
_COOL_NORM = (0.15 + _g(_FINE, 16.5, 3.5)).mean()


def solar_noon_utc(timezone: str) -> float:
    """Solar noon in UTC hours, from the zone's standard offset (Toronto: about 17:20)."""
    offset = ZoneInfo(timezone).utcoffset(dt.datetime(2026, 1, 15)).total_seconds() / 3600.0
    return 12.3 - offset


def solar_shape(utc_hour: np.ndarray, doy: np.ndarray, noon_utc: float = 17.3) -> np.ndarray:
    """Clear-sky output per kWp (kW) around solar noon, by season (mid-latitude day length)."""
    season = np.sin(2 * np.pi * (doy - 80) / 365.25)
    daylength = 12.0 + 3.4 * season
    x = ((utc_hour - noon_utc + 12.0) % 24.0 - 12.0) / daylength * np.pi
    return np.where(np.abs(x) < np.pi / 2, np.cos(x).clip(0) ** 1.4, 0.0) * (0.62 + 0.25 * season)


@dataclass
class Chunk:
    """Interval data of a chunk of meters (rows of `meters`) on one grid."""

    meters: np.ndarray  # fleet indices
    value: np.ndarray  # (n, T) float64; NaN = null value
    present: np.ndarray  # (n, T) bool; False = no row at all
    quality: np.ndarray  # (n, T) uint8
    received_us: np.ndarray  # (n, T) int64


def generate_chunk(
    rng: np.random.Generator,
    fleet: Fleet,
    meters: np.ndarray,
    grid: SlotGrid,
    cal: Calendar,
    weather: Weather,
    events: pd.DataFrame,
) -> Chunk:
    n, T = len(meters), grid.size
    hrs = grid.minutes / 60.0
    day = grid.day
    cls = fleet.cls[meters]
    reg = fleet.region[meters]
    temp = weather.read_days(weather.temp)[reg][:, day]  # (n, T) via day index
    hdd = np.maximum(0.0, P.HDD_BASE_C - temp)
    cdd = np.maximum(0.0, temp - P.CDD_BASE_C)
    h = (grid.local_hour[None, :] - fleet.shift_h[meters][:, None]) % 24.0
    off = cal.offday[day][None, :]
    shapes = _profiles(h)
    shape = np.empty((n, T))
    for c in (0, 1, 2):
        rows = cls == c
        if rows.any():
            work, offd = shapes[c]
            shape[rows] = np.where(off, offd, work)[rows] / _NORM[c]
    # RES off days are ordinary days (people at home): no dip, just a different shape
    typical = (fleet.scale[meters] / 24.0 * hrs)[:, None]  # kWh in an average interval
    heat_shape = (0.6 + 0.4 * _g(h, 7.0, 2.0) + 0.5 * _g(h, 19.0, 3.0)) / _HEAT_NORM
    cool_shape = (0.15 + _g(h, 16.5, 3.5)) / _COOL_NORM
    day_noise = np.exp(
        rng.normal(0, 1, (n, cal.days)) * np.array([P.DAY_NOISE[c] for c in ("RES", "COM", "IND")])[cls][:, None]
    )
    load = typical * (
        shape * day_noise[:, day]
        + fleet.heat[meters][:, None] * hdd * heat_shape
        + fleet.cool[meters][:, None] * cdd * (1 + 0.06 * cdd) * cool_shape
    )
    sig = np.array([P.INTERVAL_NOISE[c] for c in ("RES", "COM", "IND")])[cls][:, None]
    load *= np.exp(rng.normal(0, 1, (n, T)) * sig - 0.5 * sig**2)
    del shape, heat_shape, cool_shape, hdd, cdd, temp

    ev = events[events["meter"].isin(meters)]
    row_of = {m: i for i, m in enumerate(meters)}
    pos0 = np.searchsorted(grid.start_us, ev["t0"].to_numpy())
    pos1 = np.searchsorted(grid.start_us, ev["t1"].to_numpy())
    ev = ev.assign(a=pos0, b=pos1, row=[row_of[m] for m in ev["meter"]])
    ev = ev[ev["b"] > ev["a"]]
    by_kind = {k: g for k, g in ev.groupby("kind", sort=False)}

    def each(kind):
        g = by_kind.get(kind)
        if g is None:
            return []
        return zip(g["row"].to_numpy(), g["a"].to_numpy(), g["b"].to_numpy(),
                   g["p1"].to_numpy(), g["p2"].to_numpy())

    # genuine events
    for r, a, b, p1, p2 in each("VACANCY"):
        flat = typical[r, 0] * p1 * np.exp(rng.normal(0, 0.12, b - a))
        load[r, a:b] = 0.0 if p2 > 0 else flat
    for r, a, b, p1, _ in each("PARTY"):
        load[r, a:b] *= p1
    for r, a, b, _, _ in each("FLAT_PROCESS"):
        load[r, a:b] = np.round(load[r, a:b].mean(), 1)
    for r, a, b, p1, _ in each("GENUINE_STEP"):
        load[r, a:b] *= p1
    for r, a, b, p1, _ in each("SPIKE_REAL"):
        load[r, a] = max(load[r, a], typical[r, 0]) * p1
    # solar (registered and unregistered)
    kwp = fleet.kwp[meters]
    sol_rows = np.flatnonzero(kwp > 0)
    unreg = list(each("UNREG_SOLAR"))
    if len(sol_rows) or unreg:
        clear = weather.read_days(weather.clear)[reg][:, day]
        base = solar_shape(grid.utc_hour, cal.doy[day], solar_noon_utc(grid.timezone))[None, :] * hrs * 0.85
        for r in sol_rows:
            load[r] -= kwp[r] * base[0] * clear[r]
        for r, a, b, p1, _ in unreg:
            load[r, a:b] -= p1 * base[0, a:b] * clear[r, a:b]
    # faults on the values
    for kind in ("TAMPER", "MULT_WRONG", "PHASE_LOSS"):
        for r, a, b, p1, _ in each(kind):
            load[r, a:b] *= p1
    for r, a, b, _, _ in each("REVERSED"):
        load[r, a:b] = -load[r, a:b]
    for kind in ("OUTAGE", "DEAD_ZERO"):
        for r, a, b, _, _ in each(kind):
            load[r, a:b] = 0.0
    for r, a, b, _, _ in each("STUCK"):
        v0 = abs(load[r, a])
        load[r, a:b] = round(max(v0, 0.05 * typical[r, 0]), 3)
    for r, a, b, p1, _ in each("GLITCH_SPIKE"):
        load[r, a] = max(abs(load[r, a]), typical[r, 0]) * p1
    value = np.round(load, 3)
    del load
    present = np.ones((n, T), dtype=bool)
    quality = np.zeros((n, T), dtype=np.uint8)
    # meters installed during the period have no reads before local midnight of that day
    for r in np.flatnonzero(fleet.install_day[meters] > 0):
        present[r, : np.searchsorted(grid.start_us, cal.start_us[fleet.install_day[meters[r]]])] = False
    # clock shifts relabel the series: an hour is lost where the clock jumps
    s = 60 // grid.minutes
    for r, a, b, p1, _ in each("CLOCK_SHIFT"):
        if b - a <= 2 * s:
            continue
        if p1 > 0:
            value[r, a + s : b] = value[r, a : b - s].copy()
            present[r, a : a + s] = False
        else:
            value[r, a : b - s] = value[r, a + s : b].copy()
            present[r, b - s : b] = False
    # delivery: batches every 4 h (UTC), plus a per-meter offset
    end_us = grid.start_us + grid.minutes * US_PER_MIN
    batch = -(-end_us // (4 * US_PER_HOUR)) * (4 * US_PER_HOUR)
    lo, hi = P.RECEIPT_DELAY_H
    offset = (rng.uniform(lo, min(hi, 1.5), n) * US_PER_HOUR).astype(np.int64)
    received = batch[None, :] + offset[:, None]
    received += rng.integers(0, 5 * US_PER_MIN, (n, T))
    # communications
    for kind in ("COMM_SHORT", "COMM_LONG", "COMM_DEAD"):
        for r, a, b, flavour, catch in each(kind):
            if catch > 0 and b < T and flavour != 1:
                value[r, b] = round(value[r, b] + np.nansum(value[r, a:b]), 3)
            if flavour == 0:
                value[r, a:b] = np.nan
                quality[r, a:b] = Q_N
            elif flavour == 1:
                if kind == "COMM_DEAD":
                    back = end_us[b - 1] + int(rng.uniform(2, 24) * US_PER_HOUR)
                else:
                    back = end_us[b - 1] + int(rng.uniform(26, 60) * US_PER_HOUR)
                received[r, a:b] = np.maximum(received[r, a:b], back)
            else:
                present[r, a:b] = False
    for r, a, b, _, _ in each("HEADEND_EST"):
        if a == 0 or b >= T:
            continue
        left, right = value[r, a - 1], value[r, b]
        if np.isnan(left) or np.isnan(right):
            continue
        value[r, a:b] = np.round(np.linspace(left, right, b - a + 2)[1:-1], 3)
        quality[r, a:b] = Q_E
    return Chunk(meters=meters, value=value, present=present, quality=quality, received_us=received)
