"""The simulator's arguments and every tunable rate, in one place (documented in docs/simulator.md).

Rates are per meter-day unless said otherwise. Changing a number here changes the data
(and so every accuracy measured on it): keep docs/simulator.md in step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# --- arguments -------------------------------------------------------------------------

#: The usage rules compare a day with up to 28 earlier days of the same day type and need
#: at least 7 of them; STEP_CHANGE needs 10 clean days before a 3-day window. With fewer
#: than 21 days the usage rules could never fire and the last two days are left open.
MIN_DAYS = 21
MAX_DAYS = 3 * 366
MAX_METERS = 200_000
#: About 70 interval rows per meter-day: 3M meter-days is ~210M rows, hours of loading.
MAX_METER_DAYS = 3_000_000
MIN_START = dt.date(2000, 1, 1)
MAX_START = dt.date(2099, 1, 1)


@dataclass(frozen=True)
class SimulationConfig:
    """What `vee simulate` asks for: N meters over D read dates from `start`, seeded."""

    meters: int
    days: int
    start: dt.date
    seed: int

    def validate(self) -> None:
        """Raise ValueError (one line) for arguments that cannot give a usable warehouse."""
        if not isinstance(self.meters, int) or isinstance(self.meters, bool):
            raise ValueError(f"--meters must be an integer, got {self.meters!r}")
        if not isinstance(self.days, int) or isinstance(self.days, bool):
            raise ValueError(f"--days must be an integer, got {self.days!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"--seed must be an integer, got {self.seed!r}")
        if not isinstance(self.start, dt.date):
            raise ValueError(f"--start must be a date, got {self.start!r}")
        if self.meters < 1:
            raise ValueError(f"--meters must be at least 1, got {self.meters}")
        if self.meters > MAX_METERS:
            raise ValueError(f"--meters must be at most {MAX_METERS}, got {self.meters}")
        if self.days < MIN_DAYS:
            raise ValueError(
                f"--days must be at least {MIN_DAYS} (the usage rules need history), got {self.days}"
            )
        if self.days > MAX_DAYS:
            raise ValueError(f"--days must be at most {MAX_DAYS}, got {self.days}")
        if self.meters * self.days > MAX_METER_DAYS:
            raise ValueError(
                f"--meters x --days = {self.meters * self.days} meter-days is more than "
                f"{MAX_METER_DAYS} (hours of loading); use fewer meters or days"
            )
        if not (MIN_START <= self.start <= MAX_START):
            raise ValueError(f"--start must be between {MIN_START} and {MAX_START}, got {self.start}")
        if self.seed < 0 or self.seed > 2**31 - 1:
            raise ValueError(f"--seed must be between 0 and {2**31 - 1}, got {self.seed}")

    @property
    def end(self) -> dt.date:
        """The last read date (inclusive)."""
        return self.start + dt.timedelta(days=self.days - 1)


# --- fleet -----------------------------------------------------------------------------

CLASS_SHARES = {"RES": 0.85, "COM": 0.12, "IND": 0.03}
#: interval length shares by class (15-minute majority overall: ~57%)
INTERVAL_SHARES = {
    "RES": {15: 0.50, 30: 0.28, 60: 0.22},
    "COM": {15: 0.80, 30: 0.20, 60: 0.00},
    "IND": {15: 1.00, 30: 0.00, 60: 0.00},
}
#: daily kWh: lognormal median and sigma by class
DAILY_KWH = {"RES": (22.0, 0.45), "COM": (300.0, 0.8), "IND": (4000.0, 0.7)}
#: share of meters that are CT-rated (the largest by daily kWh within the class)
CT_SHARE = {"RES": 0.0, "COM": 0.35, "IND": 0.85}
#: share of non-CT meters that are three-phase
THREE_PHASE_SHARE = {"RES": 0.03, "COM": 0.9, "IND": 1.0}
CT_MULTIPLIERS = (40.0, 80.0, 120.0, 200.0, 400.0)
#: level factors a CT exchange with a stale multiplier produces (old / new ratio)
CT_ERROR_FACTORS = (1 / 3, 0.4, 0.5, 2.0, 2.5, 3.0)
#: registered rooftop solar (has_der)
DER_SHARE = {"RES": 0.12, "COM": 0.05, "IND": 0.0}
#: solar array size kWp: uniform range by class
SOLAR_KWP = {"RES": (3.0, 11.0), "COM": (15.0, 80.0), "IND": (0.0, 0.0)}
#: electric heating share and coefficients (fraction of base load per heating degree-day)
ELECTRIC_HEAT_SHARE = {"RES": 0.30, "COM": 0.20, "IND": 0.05}
HEAT_COEF = {"RES": (0.035, 0.010), "COM": (0.015, 0.005), "IND": (0.004, 0.002)}
HEAT_COEF_OTHER = {"RES": (0.006, 0.003), "COM": (0.004, 0.002), "IND": (0.001, 0.001)}
#: air-conditioning share and coefficient (fraction of base load per cooling degree-day)
AC_SHARE = {"RES": 0.75, "COM": 0.90, "IND": 0.5}
COOL_COEF = {"RES": (0.07, 0.025), "COM": (0.035, 0.01), "IND": (0.008, 0.003)}
HDD_BASE_C = 16.0
CDD_BASE_C = 20.0
#: per-interval multiplicative noise (lognormal sigma) and day-level noise by class
INTERVAL_NOISE = {"RES": 0.28, "COM": 0.08, "IND": 0.05}
DAY_NOISE = {"RES": 0.10, "COM": 0.06, "IND": 0.05}
#: IND/COM sites prone to long stretches of constant process load (genuine FLATLINE)
FLAT_PROCESS_SHARE = {"RES": 0.0, "COM": 0.05, "IND": 0.30}

REGIONS = {
    # name: (share of meters, annual mean temp C, seasonal amplitude C)
    "NORTH": (0.12, 3.0, 14.5),
    "CENTRAL": (0.34, 7.5, 13.0),
    "EAST": (0.18, 6.5, 13.5),
    "WEST": (0.20, 8.0, 12.5),
    "LAKESHORE": (0.16, 9.0, 11.5),
}
WEATHER_AR = 0.7
WEATHER_SD = 2.6
WEATHER_HISTORY_DAYS = 30  # weather rows before the first read date (for anomaly features)
HEAT_WAVE_START_RATE = 0.02  # per region-day when the normal is above 15 C
COLD_SNAP_START_RATE = 0.02  # per region-day when the normal is below 3 C
HEAT_WAVE_DELTA = (5.0, 9.0)
COLD_SNAP_DELTA = (7.0, 14.0)
EVENT_DAYS = (3, 6)
#: storms (outages): per region-day, much likelier on heat-wave / cold-snap days
STORM_RATE = 0.002
STORM_RATE_EXTREME = 0.06
STORM_METER_SHARE = (0.2, 0.6)
STORM_HOURS = (2.0, 40.0)

# --- delivery --------------------------------------------------------------------------

#: hours from interval end to arrival at the MDMS (normal delivery)
RECEIPT_DELAY_H = (0.25, 3.4)
#: the nightly validation batch runs at this local time on the day after the read date
VALIDATION_LOCAL_HOUR = 4.5
VALIDATION_SPREAD_MIN = 60.0

# --- faults and genuine events (per meter-day rates; comm rates scale with a per-meter
# --- communications quality factor, lognormal sigma COMM_QUALITY_SIGMA) ------------------

COMM_QUALITY_SIGMA = 0.9
RATES = {
    # communications
    "COMM_SHORT": 0.0035,  # 1-8 intervals missing
    "COMM_LONG": 0.0012,  # 3-20 hours missing
    "COMM_DEAD": 0.00025,  # radio dead for 2-8 days
    "HEADEND_EST": 0.004,  # head-end fills a short gap with estimates (quality E), no exception
    # meter faults
    "STUCK": 0.00025,  # register frozen at a non-zero value for 6 h to 4 days
    "DEAD_ZERO": 0.0001,  # register reports zeros for days (failed meter)
    "MULT_WRONG_CT": 0.0012,  # CT meter exchanged, multiplier not updated (CT meters only)
    "PHASE_LOSS": 0.0002,  # three-phase whole-current meter loses a phase (level x 1/3 or 2/3)
    "CLOCK_SHIFT": 0.0002,  # meter clock an hour fast from a local midnight, for days
    "CLOCK_DST": 0.02,  # per meter, on a DST change day: meter misses the change for days
    "TAMPER": 0.00004,  # bypass: sudden lasting low usage (RES/COM)
    "REVERSED": 0.00006,  # reversed wiring / CT polarity after work on site
    "GLITCH_SPIKE": 0.0012,  # one absurd interval (bit error / register glitch)
    # genuine (not faults)
    "VACANCY": 0.0004,  # RES premise empty for 5-30 days
    "PARTY": 0.0075,  # RES evening of guests (x2.5-5), before the work-day thinning below
    "SPIKE_REAL": 0.0015,  # one short appliance burst (x3-8 of a normal interval)
    "FLAT_PROCESS": 0.02,  # on flat-process sites: 6-16 h of constant load
    "GENUINE_STEP": 0.0003,  # COM/IND: new line or closed shift (lasting level change)
}
NEW_METER_SHARE = 0.015  # meters installed during the period (reads start that day)
UNREGISTERED_SOLAR_SHARE = 0.006  # RES meters without has_der that get panels mid-period
PARTY_WORKDAY_KEEP = 0.35  # share of drawn parties kept on work days (all on off days)
CATCH_UP_SHARE = 0.3  # share of short comm gaps whose energy arrives in the next interval
LATE_SHARE = {"COMM_SHORT": 0.3, "COMM_LONG": 0.5, "COMM_DEAD": 0.4}
NULL_SHARE = {"COMM_SHORT": 0.5, "COMM_LONG": 0.3, "COMM_DEAD": 0.0}

# --- VEE rules (the MDMS's validation set) ---------------------------------------------

RULE_VERSIONS = {
    "GAP": "GAP/2",
    "SPIKE": "SPIKE/3",
    "HIGH_USAGE": "HIGH_USAGE/2",
    "LOW_USAGE": "LOW_USAGE/2",
    "ZERO_CONSUMPTION": "ZERO_CONSUMPTION/1",
    "FLATLINE": "FLATLINE/2",
    "REVERSE_FLOW": "REVERSE_FLOW/2",
    "STEP_CHANGE": "STEP_CHANGE/1",
}
SPIKE_TOLERANCE = 2.0  # max > (1 + tol) x 3rd highest
SPIKE_MIN_KW = 2.0  # and max - 3rd highest above this demand (kW x interval hours)
USAGE_HISTORY_DAYS = 21
USAGE_MIN_HISTORY = 5  # same day-type days needed
HIGH_RATIO = 2.0
LOW_RATIO = 0.4
USAGE_MIN_KWH = 2.0
#: the MDMS's generic temperature normalisation (fraction per degree-day) by class
RULE_TEMP_ADJ = {"RES": (0.025, 0.08), "COM": (0.012, 0.04), "IND": (0.002, 0.008)}
ZERO_MIN_BASELINE_KWH = 1.0
FLATLINE_HOURS = 4.0
REVERSE_MIN_KWH = 0.1
REVERSE_DER_FACTOR = 1.5  # DER meters: export above this x the 28-day maximum ...
REVERSE_DER_NET = 0.5  # ... and at least this x the day's import
STEP_WINDOW = 3
STEP_HISTORY = (30, 10)  # look-back days, minimum clean days
STEP_UP, STEP_DOWN = 1.8, 0.55
STEP_CONSISTENCY = 0.2  # each day of the window within +-20% of the window's factor
STEP_REFRACTORY_DAYS = 14
MAX_MISSING_FOR_USAGE = 0.1  # usage rules skip days with more missing intervals than this

# --- analysts --------------------------------------------------------------------------

ANALYSTS = ("an-ahmed", "an-boucher", "an-chen", "an-dubois", "an-evans", "an-fortin")
INCONSISTENT_SHARE = 0.03  # decisions that ignore the policy (another code at random)
#: on clear-cut cases (the policy is >= CLEAR_CUT_P sure) analysts rarely deviate; the
#: few percent of inconsistency falls on the ambiguous cases, as in a real queue
CLEAR_CUT_P = 0.97
INCONSISTENT_SHARE_CLEAR = 0.002
RESOLUTION_DELAY_H = (2.0, 60.0)  # lognormal median ~8 h, clipped to this range
OPEN_LAST_DAYS = 2
