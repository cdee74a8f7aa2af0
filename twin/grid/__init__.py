"""Grid engine of twin: feeders, batch AC power flow, linear model, KPIs and figures.

Public API (import from the submodules or from here)::

    from twin.grid import load_feeder, BatchPowerFlow, grid_kpis, LinearFeederModel
    from twin.grid import AsymmetricPowerFlow, phase_loads, asym_grid_kpis  # unbalanced
    from twin.grid import phase_load_columns, run_power_flows  # a run's per-phase loads

``twin.grid.plots`` (matplotlib) is not imported here to keep ``import twin.grid`` light.
"""

from twin.grid.asymmetric import AsymmetricPowerFlow, AsymPowerFlowResult, phase_loads
from twin.grid.compliance import (
    asym_grid_kpis,
    asym_run_kpis,
    cable_kpis,
    grid_kpis,
    loading_duration_curve,
    unbalance_compliance,
    voltage_compliance,
    voltage_unbalance_factor,
)
from twin.grid.feeders import DEFAULT_FEEDER, KNOWN_FEEDERS, Feeder, FeederError, load_feeder
from twin.grid.linear import LinearFeederModel
from twin.grid.phases import phase_load_columns, run_power_flows
from twin.grid.powerflow import BatchPowerFlow, PowerFlowError, PowerFlowResult, run_pandapower

__all__ = [
    "DEFAULT_FEEDER",
    "KNOWN_FEEDERS",
    "AsymPowerFlowResult",
    "AsymmetricPowerFlow",
    "BatchPowerFlow",
    "Feeder",
    "FeederError",
    "LinearFeederModel",
    "PowerFlowError",
    "PowerFlowResult",
    "asym_grid_kpis",
    "asym_run_kpis",
    "cable_kpis",
    "grid_kpis",
    "load_feeder",
    "loading_duration_curve",
    "phase_load_columns",
    "phase_loads",
    "run_pandapower",
    "run_power_flows",
    "unbalance_compliance",
    "voltage_compliance",
    "voltage_unbalance_factor",
]
