"""``run(cfg) -> RunResult``: the whole pipeline of one run, no file output of its own.

inputs (feeder, weather, scenario) → FeederModel steps (contract decides, physics acts) →
batch AC power flow over every step → KPIs. :meth:`RunResult.write` puts it on disk.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from twin.config import validate
from twin.contracts import make_contract
from twin.grid.compliance import grid_kpis, station_of
from twin.grid.feeders import Feeder, load_feeder
from twin.grid.powerflow import BatchPowerFlow, PowerFlowResult
from twin.grid.ratings import station_rating_kva
from twin.kpi import household_kpis, per_household_table
from twin.model import FeederModel, StudyInputs
from twin.scenario import Scenario, load_scenario
from twin.tariffs import bill_kpis, bills, make_tariff
from twin.timegrid import TimeWindow, make_window
from twin.weather import load_weather

log = logging.getLogger("twin")


@dataclass
class RunResult:
    """Everything one run produced, as objects (see :meth:`write` for the files)."""

    cfg: DictConfig
    window: TimeWindow
    feeder: Feeder
    model: FeederModel
    grid: PowerFlowResult
    p_load_kw: np.ndarray  # (T, n_load) what the power flow saw, net.load row order
    log: dict[str, np.ndarray]  # (T, H) per logged variable, reported steps only (no warm-up)
    home: np.ndarray  # (T, H) EV at home
    t_out_c: np.ndarray  # (T,)
    kpis: dict[str, Any]
    bills: pd.DataFrame  # one row per household, € per component over the window
    timings_s: dict[str, float] = field(default_factory=dict)

    def households_frame(self) -> pd.DataFrame:
        """Tidy: one row per (time, household), one column per logged variable."""
        t, h = self.log["p_net_kw"].shape
        frame = {
            "time": np.repeat(self.window.times.values, h),
            "household": np.tile(np.arange(h, dtype=np.int32), t),
            "load_index": np.tile(self.model.inputs.load_index.astype(np.int32), t),
        }
        for name, values in self.log.items():  # the model's LOGGED variables, then the contract's
            frame[name] = values.astype(np.float32).ravel()
        frame["ev_home"] = self.home.ravel()
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
            }
        )

    def households_summary(self) -> pd.DataFrame:
        """One row per household: devices, parameters and its own KPIs."""
        f = self.model.fleet
        cols = per_household_table(self.log, f, self.cfg.service)
        return pd.DataFrame(
            {
                "household": np.arange(f.n),
                "load_index": self.model.inputs.load_index,
                "heat_pump": np.where(
                    f.has_hp, np.where(f.hp_hybrid, "hybrid", "all-electric"), "none"
                ),
                "ev": f.has_ev,
                "pv_kwp": f.pv_kwp,
                "battery_kwh": f.bat_capacity_kwh,
                "design_heat_load_kw": f.design_heat_load_kw,
                "setpoint_c": f.setpoint_c,
                **cols,
                "bill_total_eur": self.bills["total_eur"].to_numpy(),
            }
        )

    def write(self, out_dir: str | Path) -> Path:
        from twin.results import write_run

        return write_run(self, Path(out_dir))


def build_inputs(cfg: DictConfig, scenario: Scenario | None = None) -> tuple[Feeder, StudyInputs]:
    """Load feeder, weather and scenario (unless given) and cut them to the run's window."""
    window = make_window(cfg.sim.start, cfg.sim.days, cfg.sim.get("warmup_days", 0))
    cache = Path(cfg.paths.cache_dir) / "feeders" if cfg.paths.get("cache_dir") else None
    feeder = load_feeder(str(cfg.grid.name), cache_dir=cache)  # FeederError is a TwinError
    weather = load_weather(cfg.weather.source, cfg.weather.region, cfg.weather.get("csv"))
    scenario = scenario or load_scenario(str(cfg.scenario.name))
    rows, cols = window.sim_year_index, feeder.household_cols
    inputs = StudyInputs(
        scenario=scenario,
        window=window,
        t_out_c=weather.t_out_c[rows],
        ghi_w_m2=weather.ghi_w_m2[rows],
        p_base_kw=feeder.load_p_kw[np.ix_(rows, cols)],
        q_base_kvar=feeder.load_q_kvar[np.ix_(rows, cols)],
        load_index=np.asarray(feeder.household_load_idx),
        tariff=make_tariff(cfg.tariff, window, weather.t_out_c, weather.ghi_w_m2),
        p_other_kw=np.delete(feeder.load_p_kw[rows], cols, axis=1).sum(axis=1),
        trafo_rating_kva=station_rating_kva(feeder.net),
        feeder=feeder,
    )
    return feeder, inputs


def run(
    cfg: DictConfig, progress: bool | None = None, scenario: Scenario | None = None
) -> RunResult:
    """Run one study: simulate the households under the contract, validate the grid, KPIs.

    ``scenario`` replaces the configured one (studies that vary adoption use it).
    """
    validate(cfg)
    show = bool(cfg.output.progress) if progress is None else progress
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    contract = make_contract(cfg.contract)
    feeder, inputs = build_inputs(cfg, scenario)
    timings["inputs"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = FeederModel(inputs, contract, seed=int(cfg.seed))
    steps = range(model.n_steps)
    if show:
        from tqdm import tqdm

        steps = tqdm(
            steps, desc=f"simulate ({contract.name})", unit="step", mininterval=0.5, leave=False
        )
    for _ in steps:
        model.step()
    timings["simulate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    window = inputs.window
    log_ = {
        name: values[window.report]
        for name, values in (model.log | contract.timeseries(model)).items()
    }
    home = model.exo.trips.home[window.report]
    rows = window.year_index
    p_load = feeder.load_p_kw[rows].copy()
    q_load = feeder.load_q_kvar[rows].copy()
    cols = feeder.household_cols
    p_load[:, cols] = log_["p_net_kw"]  # devices run at unity power factor: q stays the base load's
    # all cores, or the ones a Slurm task was given (0 = hardware concurrency)
    threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
    grid = BatchPowerFlow(feeder.net, threads=threads).run(p_load, q_load)
    timings["powerflow"] = time.perf_counter() - t0

    kpis: dict[str, Any] = {
        "contract": contract.name,
        "scenario": inputs.scenario.name,
        "grid": feeder.name,
        "seed": int(cfg.seed),
        "start": str(inputs.window.start.date()),
        "days": inputs.window.days,
    }
    kpis.update(household_kpis(log_, model.fleet, home, cfg.service))
    kpis.update(grid_kpis(grid, feeder.net))
    bill = bills(
        log_["p_net_kw"], inputs.tariff.sliced(window.report), contract.discount_eur_per_year(model)
    )
    kpis["tariff"] = inputs.tariff.name
    kpis.update(bill_kpis(bill))
    kpis.update(contract.kpis(model))
    return RunResult(
        cfg=cfg,
        window=inputs.window,
        feeder=feeder,
        model=model,
        grid=grid,
        p_load_kw=p_load,
        log=log_,
        home=home,
        t_out_c=model.exo.t_out_c[window.report],
        kpis=kpis,
        bills=bill,
        timings_s=timings,
    )


def config_to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
