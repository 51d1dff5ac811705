"""The meter population, regional weather, and the schedule of faults and genuine events.

Everything here is drawn up front from one numpy Generator, so the data do not depend on
how the interval reads are later cut into chunks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vee_tasks.simulator import params as P
from vee_tasks.simulator.timegrid import US_PER_HOUR, Calendar

CLASSES = np.array(["RES", "COM", "IND"])


@dataclass
class Fleet:
    """Meter attributes: the public ones go to mdm.meter, the hidden ones drive the load."""

    frame: pd.DataFrame  # mdm.meter columns
    cls: np.ndarray  # class index 0 RES 1 COM 2 IND
    kind: np.ndarray  # 'AMI_1PH' | 'AMI_3PH' | 'CT'
    region: np.ndarray  # region index
    minutes: np.ndarray
    scale: np.ndarray  # median daily kWh
    heat: np.ndarray
    cool: np.ndarray
    shift_h: np.ndarray  # personal shift of the daily profile
    kwp: np.ndarray  # registered solar size (0 without DER)
    has_der: np.ndarray
    comm_quality: np.ndarray  # multiplies communication fault rates
    flat_site: np.ndarray  # genuine constant-load site
    multiplier: np.ndarray
    install_day: np.ndarray  # read-date index of installation (0: before the period)

    @property
    def size(self) -> int:
        return len(self.cls)


def build_fleet(rng: np.random.Generator, n: int, seed: int, start: dt.date, days: int) -> Fleet:
    cls = rng.choice(3, size=n, p=[P.CLASS_SHARES[c] for c in CLASSES])
    cls_name = CLASSES[cls]
    scale = np.empty(n)
    heat = np.empty(n)
    cool = np.empty(n)
    kind = np.empty(n, dtype=object)
    multiplier = np.ones(n)
    minutes = np.empty(n, dtype=np.int64)
    has_der = np.zeros(n, dtype=bool)
    kwp = np.zeros(n)
    flat_site = np.zeros(n, dtype=bool)
    for ci, c in enumerate(CLASSES):
        idx = np.flatnonzero(cls == ci)
        k = len(idx)
        if k == 0:
            continue
        med, sig = P.DAILY_KWH[c]
        scale[idx] = med * np.exp(rng.normal(0, sig, k))
        electric = rng.random(k) < P.ELECTRIC_HEAT_SHARE[c]
        hm, hs = P.HEAT_COEF[c]
        om, os_ = P.HEAT_COEF_OTHER[c]
        heat[idx] = np.where(electric, rng.normal(hm, hs, k), rng.normal(om, os_, k)).clip(0)
        ac = rng.random(k) < P.AC_SHARE[c]
        cm, cs = P.COOL_COEF[c]
        cool[idx] = np.where(ac, rng.normal(cm, cs, k), 0.0).clip(0)
        # CT for the largest sites of the class
        n_ct = int(round(P.CT_SHARE[c] * k))
        order = idx[np.argsort(-scale[idx], kind="stable")]
        ct = np.zeros(n, dtype=bool)
        ct[order[:n_ct]] = True
        three = rng.random(k) < P.THREE_PHASE_SHARE[c]
        kind[idx] = np.where(ct[idx], "CT", np.where(three, "AMI_3PH", "AMI_1PH"))
        ct_idx = idx[ct[idx]]
        if len(ct_idx):
            # bigger sites, bigger CT ratios
            rank = np.argsort(np.argsort(scale[ct_idx])) / max(len(ct_idx) - 1, 1)
            pos = np.clip((rank * 4 + rng.normal(0, 0.8, len(ct_idx))).round(), 0, 4).astype(int)
            multiplier[ct_idx] = np.array(P.CT_MULTIPLIERS)[pos]
        shares = P.INTERVAL_SHARES[c]
        minutes[idx] = rng.choice(list(shares), size=k, p=list(shares.values()))
        der = rng.random(k) < P.DER_SHARE[c]
        has_der[idx] = der
        lo, hi = P.SOLAR_KWP[c]
        kwp[idx] = np.where(der, rng.uniform(lo, hi, k), 0.0)
        flat_site[idx] = rng.random(k) < P.FLAT_PROCESS_SHARE[c]
    region_names = np.array(list(P.REGIONS))
    region = rng.choice(len(region_names), size=n, p=[v[0] for v in P.REGIONS.values()])
    installed_days = rng.integers(90, 12 * 365, n)
    # a few meters are installed during the period (not in its last three weeks)
    install_day = np.where(rng.random(n) < P.NEW_METER_SHARE,
                           rng.integers(1, max(2, days - 21), n), 0)
    installed_on = [start + dt.timedelta(days=int(k)) if k else start - dt.timedelta(days=int(x))
                    for x, k in zip(installed_days, install_day)]
    ids = np.array([f"M{seed}-{i + 1:06d}" for i in range(n)])
    frame = pd.DataFrame(
        {
            "meter_id": ids,
            "service_point_id": [f"SP{seed}-{i + 1:06d}" for i in range(n)],
            "customer_class": cls_name,
            "meter_kind": kind.astype(str),
            "multiplier": multiplier,
            "interval_minutes": minutes,
            "has_der": has_der,
            "region": region_names[region],
            "installed_on": installed_on,
        }
    )
    return Fleet(
        frame=frame,
        cls=cls,
        kind=kind.astype(str),
        region=region,
        minutes=minutes,
        scale=scale,
        heat=heat,
        cool=cool,
        shift_h=rng.normal(0, 0.7, n),
        kwp=kwp,
        has_der=has_der,
        comm_quality=np.exp(rng.normal(-0.5 * P.COMM_QUALITY_SIGMA**2, P.COMM_QUALITY_SIGMA, n)),
        flat_site=flat_site,
        multiplier=multiplier,
        install_day=install_day,
    )


# --- weather ---------------------------------------------------------------------------


@dataclass
class Weather:
    """Daily regional weather for the history days plus the read dates."""

    temp: np.ndarray  # (R, H + D) mean temp C, H = WEATHER_HISTORY_DAYS
    clear: np.ndarray  # (R, H + D) clear-sky fraction 0..1 (solar output)
    heat_wave: np.ndarray  # (R, H + D) bool (hidden)
    cold_snap: np.ndarray  # (R, H + D) bool (hidden)
    storm: np.ndarray  # (R, H + D) outage hours started that day (0 = none)
    first_day: dt.date

    def read_days(self, arr: np.ndarray) -> np.ndarray:
        return arr[:, P.WEATHER_HISTORY_DAYS :]

    def frame(self) -> pd.DataFrame:
        names = list(P.REGIONS)
        r, d = self.temp.shape
        days = [self.first_day + dt.timedelta(days=i) for i in range(d)]
        return pd.DataFrame(
            {
                "region": np.repeat(names, d),
                "day": days * r,
                "mean_temp_c": np.round(self.temp.reshape(-1), 1),
            }
        )


def seasonal_normal(doy: np.ndarray, mean: float, amp: float) -> np.ndarray:
    """Coldest around 20 January, warmest around 21 July."""
    return mean - amp * np.cos(2 * np.pi * (doy - 20) / 365.25)


def build_weather(rng: np.random.Generator, start: dt.date, days: int) -> Weather:
    h = P.WEATHER_HISTORY_DAYS
    first = start - dt.timedelta(days=h)
    total = h + days
    doy = np.array([(first + dt.timedelta(days=i)).timetuple().tm_yday for i in range(total)])
    regions = list(P.REGIONS.values())
    r = len(regions)
    normal = np.stack([seasonal_normal(doy, m, a) for _, m, a in regions])
    # AR(1) anomalies: a shared synoptic part plus a regional part
    shocks = 0.75 * rng.normal(0, 1, (1, total)) + 0.66 * rng.normal(0, 1, (r, total))
    anomaly = np.zeros((r, total))
    sd = P.WEATHER_SD * np.sqrt(1 - P.WEATHER_AR**2)
    for t in range(total):  # loop over days (not intervals): AR needs the previous day
        prev = anomaly[:, t - 1] if t else rng.normal(0, P.WEATHER_SD, r)
        anomaly[:, t] = P.WEATHER_AR * prev + sd * shocks[:, t]
    heat = np.zeros((r, total), dtype=bool)
    cold = np.zeros((r, total), dtype=bool)
    extra = np.zeros((r, total))
    starts_hw = (rng.random((r, total)) < P.HEAT_WAVE_START_RATE) & (normal > 15)
    starts_cs = (rng.random((r, total)) < P.COLD_SNAP_START_RATE) & (normal < 3)
    for flag, starts, (lo, hi), sign in (
        (heat, starts_hw, P.HEAT_WAVE_DELTA, 1.0),
        (cold, starts_cs, P.COLD_SNAP_DELTA, -1.0),
    ):
        for ri, di in zip(*np.nonzero(starts)):  # a handful of events
            length = int(rng.integers(P.EVENT_DAYS[0], P.EVENT_DAYS[1] + 1))
            delta = rng.uniform(lo, hi)
            ramp = np.sin(np.linspace(0.35, np.pi - 0.35, length))
            end = min(di + length, total)
            extra[ri, di:end] += sign * delta * ramp[: end - di]
            flag[ri, di:end] = True
    temp = normal + anomaly + extra
    clear = rng.beta(2.2, 1.2, (r, total))
    clear = np.where(heat, np.maximum(clear, 0.7), clear)
    storm_p = np.where(heat | cold, P.STORM_RATE_EXTREME, P.STORM_RATE)
    storm_on = rng.random((r, total)) < storm_p
    storm = np.where(storm_on, rng.uniform(*P.STORM_HOURS, (r, total)), 0.0)
    storm[:, :h] = 0.0
    return Weather(temp=temp, clear=clear, heat_wave=heat, cold_snap=cold, storm=storm, first_day=first)


# --- events ----------------------------------------------------------------------------

EVENT_COLUMNS = ["meter", "kind", "t0", "t1", "p1", "p2"]


def _draw(rng, rate, eligible, days, weight=None):
    """Meter index and start day of Poisson events at `rate` per eligible meter-day."""
    lam = rate * days * eligible.astype(float)
    if weight is not None:
        lam = lam * weight
    counts = rng.poisson(lam)
    meters = np.repeat(np.arange(len(eligible)), counts)
    day = rng.integers(0, days, len(meters))
    return meters, day


def build_events(
    rng: np.random.Generator, fleet: Fleet, cal: Calendar, weather: Weather
) -> pd.DataFrame:
    """The hidden schedule: (meter, kind, t0, t1 in UTC us, p1, p2) for every fault/event."""
    n, days = fleet.size, cal.days
    t_end = int(cal.start_us[-1])
    res, com, ind = fleet.cls == 0, fleet.cls == 1, fleet.cls == 2
    ct = fleet.kind == "CT"
    three_wc = fleet.kind == "AMI_3PH"
    everyone = np.ones(n, dtype=bool)
    rows = []

    def add(kind, meters, t0, t1, p1=None, p2=None):
        k = len(meters)
        if k == 0:
            return
        rows.append(
            pd.DataFrame(
                {
                    "meter": meters.astype(np.int64),
                    "kind": kind,
                    "t0": np.asarray(t0, dtype=np.int64),
                    "t1": np.minimum(np.asarray(t1, dtype=np.int64), t_end),
                    "p1": np.zeros(k) if p1 is None else np.asarray(p1, dtype=float),
                    "p2": np.zeros(k) if p2 is None else np.asarray(p2, dtype=float),
                }
            )
        )

    def at(day, hour):
        return cal.start_us[day] + (np.asarray(hour) * US_PER_HOUR).astype(np.int64)

    step_us = fleet.minutes * 60_000_000
    # communications: rates scale with the meter's communications quality
    m, d = _draw(rng, P.RATES["COMM_SHORT"], everyone, days, fleet.comm_quality)
    k = rng.geometric(0.35, len(m)).clip(1, 8)
    t0 = at(d, rng.uniform(0, 23.5, len(m)))
    t0 -= (t0 - cal.start_us[0]) % step_us[m]
    flavour = rng.choice(3, len(m), p=[P.NULL_SHARE["COMM_SHORT"], P.LATE_SHARE["COMM_SHORT"],
                                       1 - P.NULL_SHARE["COMM_SHORT"] - P.LATE_SHARE["COMM_SHORT"]])
    catch = (rng.random(len(m)) < P.CATCH_UP_SHARE) & (flavour != 1)
    add("COMM_SHORT", m, t0, t0 + k * step_us[m], flavour, catch)
    m, d = _draw(rng, P.RATES["COMM_LONG"], everyone, days, fleet.comm_quality)
    t0 = at(d, rng.uniform(0, 22, len(m)))
    t0 -= (t0 - cal.start_us[0]) % step_us[m]
    dur = rng.uniform(3, 20, len(m))
    flavour = rng.choice(3, len(m), p=[P.NULL_SHARE["COMM_LONG"], P.LATE_SHARE["COMM_LONG"],
                                       1 - P.NULL_SHARE["COMM_LONG"] - P.LATE_SHARE["COMM_LONG"]])
    add("COMM_LONG", m, t0, t0 + (dur * US_PER_HOUR).astype(np.int64), flavour)
    m, d = _draw(rng, P.RATES["COMM_DEAD"], everyone, days, fleet.comm_quality)
    t0 = at(d, rng.uniform(0, 24, len(m)))
    dur = rng.uniform(2, 8, len(m)) * 24
    flavour = np.where(rng.random(len(m)) < P.LATE_SHARE["COMM_DEAD"], 1, 2)
    add("COMM_DEAD", m, t0, t0 + (dur * US_PER_HOUR).astype(np.int64), flavour)
    m, d = _draw(rng, P.RATES["HEADEND_EST"], everyone, days, fleet.comm_quality)
    k = rng.integers(1, 5, len(m))
    t0 = at(d, rng.uniform(0, 23, len(m)))
    t0 -= (t0 - cal.start_us[0]) % step_us[m]
    add("HEADEND_EST", m, t0, t0 + k * step_us[m])

    # meter faults
    m, d = _draw(rng, P.RATES["STUCK"], everyone, days)
    t0 = at(d, rng.uniform(0, 24, len(m)))
    dur = np.exp(rng.uniform(np.log(6), np.log(96), len(m)))
    add("STUCK", m, t0, t0 + (dur * US_PER_HOUR).astype(np.int64))
    m, d = _draw(rng, P.RATES["DEAD_ZERO"], everyone, days)
    t0 = at(d, rng.uniform(0, 24, len(m)))
    dur = rng.uniform(2, 10, len(m)) * 24
    add("DEAD_ZERO", m, t0, t0 + (dur * US_PER_HOUR).astype(np.int64))
    m, d = _draw(rng, P.RATES["MULT_WRONG_CT"], ct, days)
    t0 = at(d, rng.uniform(9, 15, len(m)))
    # the new CT's ratio: one whose mix-up gives a standard error factor
    factors = np.array(P.CT_ERROR_FACTORS)
    cands = [np.array([x for x in P.CT_MULTIPLIERS if np.isclose(old / x, factors).any()] or [old / 2])
             for old in P.CT_MULTIPLIERS]
    pick = rng.random(len(m))
    new = np.array([cands[P.CT_MULTIPLIERS.index(old)][int(u * len(cands[P.CT_MULTIPLIERS.index(old)]))]
                    for old, u in zip(fleet.multiplier[m], pick)])
    dur = rng.uniform(6, 25, len(m)) * 24
    add("MULT_WRONG", m, t0, t0 + (dur * US_PER_HOUR).astype(np.int64), fleet.multiplier[m] / new)
    m, d = _draw(rng, P.RATES["PHASE_LOSS"], three_wc, days)
    t0 = at(d, rng.uniform(0, 24, len(m)))
    factor = rng.choice([1 / 3, 2 / 3], len(m))
    dur = rng.uniform(5, 20, len(m)) * 24
    add("PHASE_LOSS", m, t0, t0 + (dur * US_PER_HOUR).astype(np.int64), factor)
    m, d = _draw(rng, P.RATES["CLOCK_SHIFT"], everyone, days)
    dur_days = rng.integers(1, 8, len(m))
    add("CLOCK_SHIFT", m, cal.start_us[d], cal.start_us[np.minimum(d + dur_days, days)], 1.0)
    dst_days = np.flatnonzero(cal.hours != 24)
    for dd in dst_days:  # at most a few per year
        hit = np.flatnonzero(rng.random(n) < P.RATES["CLOCK_DST"])
        dur_days = rng.integers(1, 6, len(hit))
        sign = 1.0 if cal.hours[dd] == 25 else -1.0  # fall: clock ahead; spring: behind
        add("CLOCK_SHIFT", hit, np.full(len(hit), cal.start_us[dd]),
            cal.start_us[np.minimum(dd + dur_days, days)], sign)
    m, d = _draw(rng, P.RATES["TAMPER"], (res | com) & ~ct, days)
    t0 = at(d, rng.uniform(0, 24, len(m)))
    add("TAMPER", m, t0, np.full(len(m), t_end), rng.uniform(0.15, 0.4, len(m)))
    m, d = _draw(rng, P.RATES["REVERSED"], everyone, days, np.where(ct, 5.0, 1.0))
    t0 = at(d, rng.uniform(8, 16, len(m)))
    dur = rng.uniform(5, 30, len(m)) * 24
    add("REVERSED", m, t0, t0 + (dur * US_PER_HOUR).astype(np.int64))
    m, d = _draw(rng, P.RATES["GLITCH_SPIKE"], everyone, days)
    t0 = at(d, rng.uniform(0, 24, len(m)))
    t0 -= (t0 - cal.start_us[0]) % step_us[m]
    add("GLITCH_SPIKE", m, t0, t0 + step_us[m], np.exp(rng.normal(np.log(25), 0.6, len(m))))

    # genuine events
    m, d = _draw(rng, P.RATES["VACANCY"], res, days)
    t0 = at(d, rng.uniform(6, 20, len(m)))
    dur = rng.uniform(5, 30, len(m)) * 24
    breaker_off = (rng.random(len(m)) < 0.12).astype(float)
    add("VACANCY", m, t0, t0 + (dur * US_PER_HOUR).astype(np.int64),
        rng.uniform(0.08, 0.3, len(m)), breaker_off)
    m, d = _draw(rng, P.RATES["PARTY"], res, days)
    keep = cal.offday[d] | (rng.random(len(m)) < P.PARTY_WORKDAY_KEEP)  # mostly weekends
    m, d = m[keep], d[keep]
    start_h = rng.uniform(16, 19, len(m))
    add("PARTY", m, at(d, start_h), at(d, np.minimum(start_h + rng.uniform(4, 7, len(m)), 24)),
        rng.uniform(2.5, 5.0, len(m)))
    m, d = _draw(rng, P.RATES["SPIKE_REAL"], everyone, days)
    t0 = at(d, rng.uniform(6, 23, len(m)))
    t0 -= (t0 - cal.start_us[0]) % step_us[m]
    add("SPIKE_REAL", m, t0, t0 + step_us[m], np.exp(rng.normal(np.log(5.5), 0.3, len(m))))
    m, d = _draw(rng, P.RATES["FLAT_PROCESS"], fleet.flat_site, days)
    start_h = rng.uniform(0, 12, len(m))
    add("FLAT_PROCESS", m, at(d, start_h), at(d, np.minimum(start_h + rng.uniform(6, 16, len(m)), 24)))
    m, d = _draw(rng, P.RATES["GENUINE_STEP"], com | ind, days)
    up = rng.random(len(m)) < 0.6
    factor = np.where(up, rng.uniform(1.7, 2.6, len(m)), rng.uniform(0.35, 0.55, len(m)))
    add("GENUINE_STEP", m, at(d, rng.uniform(6, 10, len(m))), np.full(len(m), t_end), factor)
    sol = np.flatnonzero(res & ~fleet.has_der & (rng.random(n) < P.UNREGISTERED_SOLAR_SHARE))
    d = rng.integers(0, days, len(sol))
    add("UNREG_SOLAR", sol, cal.start_us[d], np.full(len(sol), t_end), rng.uniform(1.5, 4.5, len(sol)))

    # outages from storms: a share of the region's meters lose power for the storm's hours
    storms = weather.read_days(weather.storm)
    for ri, di in zip(*np.nonzero(storms > 0)):
        in_region = np.flatnonzero(fleet.region == ri)
        share = rng.uniform(*P.STORM_METER_SHARE)
        hit = in_region[rng.random(len(in_region)) < share]
        t0 = at(np.full(len(hit), di), rng.uniform(0, 20, 1)[0] + rng.uniform(0, 2, len(hit)))
        hours = storms[ri, di] * rng.uniform(0.5, 1.2, len(hit))
        add("OUTAGE", hit, t0, t0 + (hours * US_PER_HOUR).astype(np.int64))

    if not rows:
        return pd.DataFrame({c: [] for c in EVENT_COLUMNS})
    events = pd.concat(rows, ignore_index=True)
    events = events[events["t1"] > events["t0"]]
    return events.sort_values(["meter", "t0", "kind"], kind="stable").reset_index(drop=True)
