"""Grid engine of twin: feeders, batch AC power flow, linear model, KPIs and figures.

Public API (import from the submodules or from here)::

    from twin.grid import load_feeder, BatchPowerFlow, grid_kpis, LinearFeederModel

``twin.grid.plots`` (matplotlib) is not imported here to keep ``import twin.grid`` light.
"""

from twin.grid.compliance import cable_kpis, grid_kpis, loading_duration_curve, voltage_compliance
from twin.grid.feeders import DEFAULT_FEEDER, KNOWN_FEEDERS, Feeder, FeederError, load_feeder
from twin.grid.linear import LinearFeederModel
from twin.grid.powerflow import BatchPowerFlow, PowerFlowError, PowerFlowResult, run_pandapower

__all__ = [
    "DEFAULT_FEEDER",
    "KNOWN_FEEDERS",
    "BatchPowerFlow",
    "Feeder",
    "FeederError",
    "LinearFeederModel",
    "PowerFlowError",
    "PowerFlowResult",
    "cable_kpis",
    "grid_kpis",
    "load_feeder",
    "loading_duration_curve",
    "run_pandapower",
    "voltage_compliance",
]
