"""``run(cfg) -> RunResult``: the whole pipeline of one run, no file output of its own.

inputs (feeder, weather, scenario) → FeederModel steps (contract decides through its feeder
view, physics acts) → batch AC power flow over every step → KPIs → a
:class:`~twin.result.RunResult` (data). :func:`twin.writer.write_run` puts it on disk.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from twin.config import validate
from twin.contracts import make_contract
from twin.forecast import ForecastSettings
from twin.grid.compliance import asym_run_kpis, grid_kpis, station_limit_risk
from twin.grid.feeders import check_radial
from twin.grid.phases import balanced_equivalent, run_power_flows
from twin.inputs import build_inputs
from twin.kpi import household_kpis, stored_electricity_kwh
from twin.measure import MeasurementSettings, dso_read_kpis, estimate_feeder
from twin.memory import big_arrays_back_to_the_os, release_finished_models
from twin.model import FeederModel
from twin.result import RunResult
from twin.scenario import Scenario
from twin.tariffs import bill_kpis, bills, stored_value_eur

__all__ = ["RunResult", "config_to_yaml", "run"]

log = logging.getLogger("twin")

#: Contracts whose DSO plans on the linear (radial) feeder model: a meshed feeder is refused
#: with one line before anything is simulated.
RADIAL_CONTRACTS = frozenset({"performance"})


def run(
    cfg: DictConfig, progress: bool | None = None, scenario: Scenario | None = None
) -> RunResult:
    """Run one study: simulate the households under the contract, validate the grid, KPIs.

    ``scenario`` replaces the configured one (studies that vary adoption use it).
    """
    validate(cfg)
    big_arrays_back_to_the_os()
    show = bool(cfg.output.progress) if progress is None else progress
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    contract = make_contract(cfg.contract)
    inputs = build_inputs(cfg, scenario)
    feeder = inputs.feeder
    if contract.name in RADIAL_CONTRACTS:
        check_radial(feeder.net, feeder.name, needed_by=f"contract={contract.name}")
    timings["inputs"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    forecast = ForecastSettings.from_config(cfg.get("forecast"))
    # what the DSO's sensors deliver (twin.measure): the contract's DSO reads the present only
    # through them; the truth scores (below)
    measurement = MeasurementSettings.from_config(cfg.get("measurement"))
    model = FeederModel(
        inputs, contract, seed=int(cfg.seed), forecast=forecast, measurement=measurement
    )
    steps = range(model.n_steps)
    if show:
        from tqdm import tqdm

        steps = tqdm(
            steps, desc=f"simulate ({contract.name})", unit="step", mininterval=0.5, leave=False
        )
    for _ in steps:
        model.step()
    timings["simulate"] = time.perf_counter() - t0

    window = inputs.window
    rep = window.report
    # the forecasters' caches (a year of predicted quantiles each) are not needed for the
    # KPIs: let them go before the KPIs' temporaries (the run's peak memory)
    _release_forecasters(model)
    log_ = {name: values[rep] for name, values in (model.log | contract.timeseries()).items()}
    home = model.exo.trips.home[rep]
    # what the rest needs of the model and the contract, then both go (mesa would keep them
    # until the process ends, twin.memory): the power flow, the state estimation, the KPIs and
    # the files work on data only, and what only the model held (a year of inputs and
    # exogenous series, the forecaster, the optimiser) is free for their temporaries
    outcome = model.outcome()
    fleet = model.fleet
    p_net_sim = model.log["p_net_kw"]
    contract_kpis = model.contract_kpis()
    discount = np.broadcast_to(
        np.asarray(contract.discount_eur_per_year(), float), (fleet.n,)
    ).copy()
    contract_households = contract.household_table()
    contract_feeder = {k: v[rep] for k, v in contract.feeder_timeseries().items()}
    contract_name = contract.name
    t_out_c = model.exo.t_out_c[rep]
    ghi_w_m2 = np.asarray(model.exo.ghi_w_m2[rep], float)
    tariff_year, scenario_used = inputs.tariff, inputs.scenario
    load_index = np.asarray(inputs.load_index)
    standard_p_kw = inputs.standard_p_kw
    unregistered = model.unregistered
    # what the DSO's side had of the station at the end of each step (twin.measure.DsoMeters;
    # the steps no contract read are measured now). With the state estimate it is the scored
    # estimate's nowcast (the same numbers, tests/test_dso_measured.py): taken from the
    # estimation below rather than estimated twice
    t0 = time.perf_counter()
    dso_station = None
    if not (model.dso_meters.estimates and measurement.estimate):
        dso_station = model.dso_meters.transformer_kw(window.n_warmup_steps, model.n_steps, True)
    timings["dso_meters"] = time.perf_counter() - t0
    del model, contract, inputs, steps
    release_finished_models()
    gc.collect()
    # the household KPIs read the log only: made before the power flow and the state
    # estimation hold their results (their temporaries and those are the run's peak memory)
    hh_kpis = household_kpis(log_, fleet, outcome.reported_trips, outcome.start_state, cfg.service)

    t0 = time.perf_counter()
    rows = window.year_index
    p_load = feeder.load_p_kw[rows].copy()
    q_load = feeder.load_q_kvar[rows].copy()
    p_load[:, feeder.household_cols] = log_["p_net_kw"]  # devices at unity power factor
    # all cores, or the ones a Slurm task was given (0 = hardware concurrency)
    threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
    # balanced: the batch flow of the totals; unbalanced (grid.unbalanced): also the per-phase
    # flow, each household's loads on their phases (twin.grid.phases)
    grid, grid_phases = run_power_flows(feeder, fleet, log_, p_load, q_load, threads)
    timings["powerflow"] = time.perf_counter() - t0

    # what the DSO receives and estimates the feeder from (twin.measure, twin.grid.estimation):
    # the truth above only scores the estimate
    t0 = time.perf_counter()
    estimation = None
    if measurement.estimate:
        rows_sim = window.sim_year_index
        p_sim = standard_p_kw  # the pseudo-measurements' standard profiles
        p_true = feeder.load_p_kw[rows_sim].copy()
        p_true[:, feeder.household_cols] = p_net_sim
        q_sim = feeder.load_q_kvar[rows_sim]
        net_se = feeder.net
        if feeder.unbalanced:  # the estimator is balanced: it sees what the balanced flow saw,
            # asymmetric_load rows as balanced loads of their total (run_power_flows)
            net_se, p_extra, q_extra = balanced_equivalent(feeder.net)
            if len(p_extra):
                t_sim = p_true.shape[0]
                extra_p = np.broadcast_to(p_extra, (t_sim, len(p_extra)))
                p_true = np.hstack([p_true, extra_p])
                p_sim = np.hstack([p_sim, extra_p])
                q_sim = np.hstack([q_sim, np.broadcast_to(q_extra, (t_sim, len(q_extra)))])
        estimation = estimate_feeder(
            measurement,
            net_se,
            p_true,
            q_sim,
            p_sim,
            window.n_warmup_steps,
            grid,
            int(cfg.seed),
            threads,
        )
        timings["estimation"] = time.perf_counter() - t0

    kpis: dict[str, Any] = {
        "contract": contract_name,
        "scenario": scenario_used.name,
        "grid": feeder.name,
        "seed": int(cfg.seed),
        "start": str(window.start.date()),
        "days": window.days,
    }
    kpis.update(hh_kpis)
    kpis.update(grid_kpis(grid, feeder.net))
    if "performance_station_rating_kva" in contract_kpis:  # the limit the DSO planned to
        limit = float(contract_kpis["performance_station_rating_kva"])
        kpis.update(station_limit_risk(grid, feeder.net, limit))
    if estimation is not None:
        kpis.update(estimation.kpis)
    # what the DSO's side read of the station, against the truth at its LV side
    if estimation is not None and estimation.station_true_kw is not None:
        station_true = estimation.station_true_kw
    else:
        from twin.grid.estimation import StationFlow

        p_true = feeder.load_p_kw[window.sim_year_index].copy()
        p_true[:, feeder.household_cols] = p_net_sim
        q_true = feeder.load_q_kvar[window.sim_year_index]
        w = window.n_warmup_steps
        flow = StationFlow(feeder.net)
        station_true = -flow(p_true[w:], q_true[w:])[0].sum(axis=1) if len(flow.units) else None
    kpis["dso_measurement"] = measurement.name
    if dso_station is None:
        dso_station = estimation.dso_station_kw()
    contract_feeder = {"dso_station_kw": dso_station, **contract_feeder}
    if station_true is not None:
        kpis.update(dso_read_kpis(dso_station, station_true))
    if grid_phases is not None:  # the unbalanced KPIs beside the balanced ones
        kpis.update(asym_run_kpis(grid_phases, feeder.net))
    tariff = tariff_year.sliced(rep)
    bill = bills(log_["p_net_kw"], tariff, discount)
    kpis["tariff"] = tariff_year.name
    stored = stored_electricity_kwh(log_, fleet, outcome.start_state)["total_kwh"]
    kpis.update(bill_kpis(bill, stored_value_eur(stored, tariff)))
    kpis.update(contract_kpis)
    return RunResult(
        cfg=cfg,
        window=window,
        feeder=feeder,
        fleet=fleet,
        load_index=load_index,
        log=log_,
        home=home,
        start_state=outcome.start_state,
        trips=outcome.reported_trips,
        t_out_c=t_out_c,
        grid=grid,
        grid_phases=grid_phases,
        p_load_kw=p_load,
        q_load_kvar=q_load,
        kpis=kpis,
        bills=bill,
        tariff=tariff,
        discount_eur_per_year=discount,
        stored_electricity_kwh=stored,
        contract_households=contract_households,
        contract_feeder=contract_feeder,
        timings_s=timings,
        scenario=scenario_used,
        estimation=estimation,
        warmup_p_load_kw=_warmup_loads(feeder, p_net_sim, window),
        standard_p_kw=standard_p_kw,
        ghi_w_m2=ghi_w_m2,
        unregistered=unregistered,
    )


def _release_forecasters(model: FeederModel) -> None:
    """Let the model's forecasters' caches go (a function: no name in ``run`` keeps a
    forecaster, and through it the model, alive once the model is deleted)."""
    for fc in {id(f): f for f in (model.forecaster, model.dso_forecaster)}.values():
        if hasattr(fc, "release"):
            fc.release()


def _warmup_loads(feeder: Any, p_net_kw: np.ndarray, window: Any) -> np.ndarray:
    """``(T_warmup, n_load)`` every connection's load over the warm-up steps."""
    w = window.n_warmup_steps
    p = feeder.load_p_kw[window.sim_year_index[:w]].copy()
    p[:, feeder.household_cols] = p_net_kw[:w]
    return p


def config_to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)
