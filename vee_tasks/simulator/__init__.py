"""A simulated MDMS: meters, weather, interval reads with faults, VEE exceptions and the
analysts' resolutions, written to the contract's mdm tables (`vee simulate`).

See docs/simulator.md for the rates, the rules and the analyst policy.
"""

from vee_tasks.simulator.core import SimulationSummary, simulate
from vee_tasks.simulator.params import SimulationConfig

__all__ = ["SimulationConfig", "SimulationSummary", "simulate"]
