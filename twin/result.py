"""The outcome of one run as data: :class:`RunResult`.

Arrays and frames only (the households' parameters, per-step logs, the grid result, KPIs,
bills, discounts), no live model: a result can be pickled, compared, written
(:func:`twin.writer.write_run`) and reopened without the simulation behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from twin.devices.ev import TripSchedule
from twin.fleet import Fleet
from twin.grid.compliance import station_of
from twin.grid.feeders import Feeder
from twin.grid.powerflow import PowerFlowResult
from twin.kpi import per_household_table
from twin.tariffs import Tariff
from twin.timegrid import TimeWindow

__all__ = ["RunResult"]


@dataclass
class RunResult:
    """Everything one run produced (reported steps only; see :func:`twin.writer.write_run`
    for the files).

    Attributes
    ----------
    cfg : DictConfig
        The resolved configuration.
    window : TimeWindow
        The simulated window.
    feeder : Feeder
        The grid (pandapower net of record and its profiles).
    fleet : Fleet
        Every household's devices and parameters.
    load_index : np.ndarray
        ``(H,)`` ``net.load`` index of each household.
    log : dict[str, np.ndarray]
        ``(T, H)`` per logged variable (the model's, then the contract's time series).
    home : np.ndarray
        ``(T, H)`` EV at home.
    trips : TripSchedule
        The reported steps' trips (home mask, departures, energy at arrival, km per day).
    start_state : dict[str, np.ndarray]
        ``(H,)`` device states at the start of the reported window (``t_in_c``,
        ``ev_soc_kwh``, ``bat_soc_kwh``), i.e. at the end of the warm-up.
    t_out_c : np.ndarray
        ``(T,)`` outdoor temperature.
    grid : PowerFlowResult
        The AC power flow of every reported step.
    p_load_kw, q_load_kvar : np.ndarray
        ``(T, n_load)`` what the power flow saw, ``net.load`` row order.
    kpis : dict
        Flat KPIs (names carry their units).
    bills : pd.DataFrame
        One row per household, € per component over the window.
    tariff : Tariff
        The run's prices over the reported steps.
    discount_eur_per_year : np.ndarray
        ``(H,)`` each household's contract discount.
    stored_electricity_kwh : np.ndarray
        ``(H,)`` electricity in what is left stored at the end beyond the start
        (:func:`twin.kpi.stored_electricity_kwh`), the equal-terms correction.
    contract_households, contract_feeder : dict[str, np.ndarray]
        The contract's own ``(H,)`` columns (e.g. ``signed``) and ``(T,)`` series (e.g. the
        intervals the DSO declared congested).
    timings_s : dict
        Where the time went.
    """

    cfg: DictConfig
    window: TimeWindow
    feeder: Feeder
    fleet: Fleet
    load_index: np.ndarray
    log: dict[str, np.ndarray]
    home: np.ndarray
    start_state: dict[str, np.ndarray]
    trips: TripSchedule
    t_out_c: np.ndarray
    grid: PowerFlowResult
    p_load_kw: np.ndarray
    q_load_kvar: np.ndarray
    kpis: dict[str, Any]
    bills: pd.DataFrame
    tariff: Tariff
    discount_eur_per_year: np.ndarray
    stored_electricity_kwh: np.ndarray
    contract_households: dict[str, np.ndarray] = field(default_factory=dict)
    contract_feeder: dict[str, np.ndarray] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    def households_frame(self) -> pd.DataFrame:
        """Tidy: one row per (time, household), one column per logged variable."""
        t, h = self.log["p_net_kw"].shape
        frame = {
            "time": np.repeat(self.window.times.values, h),
            "household": np.tile(np.arange(h, dtype=np.int32), t),
            "load_index": np.tile(self.load_index.astype(np.int32), t),
        }
        for name, values in self.log.items():  # the model's LOGGED variables, then the contract's
            frame[name] = values.astype(np.float32).ravel()
        frame["ev_home"] = self.home.ravel()
        frame["ev_departure"] = self.trips.departure.ravel()
        frame["ev_trip_kwh"] = self.trips.trip_kwh.astype(np.float32).ravel()
        return pd.DataFrame(frame)

    def feeder_frame(self) -> pd.DataFrame:
        """One row per time step: feeder totals and the grid's worst values."""
        g = self.grid
        st = station_of(g, self.feeder.net)
        return pd.DataFrame(
            {
                "time": self.window.times,
                "t_out_c": self.t_out_c,
                "p_households_kw": self.log["p_net_kw"].sum(axis=1),
                "p_loads_kw": self.p_load_kw.sum(axis=1),
                "trafo_s_kva": st.s_kva,
                "trafo_loading_pct": st.loading_pct,
                "vm_min_pu": g.vm_pu.min(axis=1),
                "vm_max_pu": g.vm_pu.max(axis=1),
                "line_loading_max_pct": g.line_loading_pct.max(axis=1),
                "losses_kw": g.losses_kw,
                **self.contract_feeder,
            }
        )

    def households_summary(self) -> pd.DataFrame:
        """One row per household: devices, parameters and its own KPIs."""
        f = self.fleet
        cols = per_household_table(self.log, f, self.cfg.service)
        return pd.DataFrame(
            {
                "household": np.arange(f.n),
                "load_index": self.load_index,
                "heat_pump": np.where(
                    f.has_hp, np.where(f.hp_hybrid, "hybrid", "all-electric"), "none"
                ),
                "ev": f.has_ev,
                "pv_kwp": f.pv_kwp,
                "battery_kwh": f.bat_capacity_kwh,
                "design_heat_load_kw": f.design_heat_load_kw,
                "setpoint_c": f.setpoint_c,
                **self.contract_households,
                **cols,
                "bill_total_eur": self.bills["total_eur"].to_numpy(),
            }
        )
