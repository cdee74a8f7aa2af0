"""The inputs of one run, cut to its window: :class:`StudyInputs` and :func:`build_inputs`.

Feeder (:mod:`twin.grid.feeders`), weather (:mod:`twin.weather`), scenario
(:mod:`twin.scenario`) and tariff (:mod:`twin.tariffs`) are loaded and cut to the run's
simulated steps (warm-up included). The run's power-flow model is chosen here
(:func:`resolve_unbalanced`: ``grid.unbalanced``, default on for feeders with phase data).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from twin.grid.elements import UNSUPPORTED_FIX
from twin.grid.feeders import Feeder, FeederError, load_feeder
from twin.grid.ratings import station_rating_kva
from twin.scenario import Scenario, load_scenario
from twin.tariffs import Tariff, make_tariff
from twin.timegrid import TimeWindow, make_window
from twin.weather import load_weather

__all__ = ["StudyInputs", "build_inputs", "resolve_unbalanced"]


@dataclass(frozen=True)
class StudyInputs:
    """What a run simulates, for the run's simulated steps (warm-up included): scenario,
    weather, today's household loads, the feeder's other loads and the grid.

    ``p_other_kw`` / ``q_other_kvar`` are ``(T, n_other)`` (``n_other`` may be 0);
    ``hh_cols`` and ``other_cols`` are the load columns (``net.load`` order) of the households
    and of the other loads (without a feeder: households first, then the others).
    """

    scenario: Scenario
    window: TimeWindow
    t_out_c: np.ndarray  # (T,)
    ghi_w_m2: np.ndarray  # (T,)
    p_base_kw: np.ndarray  # (T, H)
    q_base_kvar: np.ndarray  # (T, H)
    load_index: np.ndarray  # (H,) net.load index of each household
    tariff: Tariff | None = None  # prices over the simulated steps
    p_other_kw: np.ndarray | None = None  # (T, n_other) the feeder's non-household loads
    q_other_kvar: np.ndarray | None = None  # (T, n_other)
    trafo_rating_kva: float = float("inf")  # the station rating (twin.grid.ratings)
    feeder: Feeder | None = None  # the grid, when the pipeline built the inputs
    weather_name: str = ""
    history: dict[str, np.ndarray] | None = None  # the past before the window (forecasters)
    hh_cols: np.ndarray = field(default=None)  # type: ignore[assignment]
    other_cols: np.ndarray = field(default=None)  # type: ignore[assignment]
    # (H,) each household's connection phase from the feeder file (twin.grid.feeders
    # PHASE_CODES; -2 where the file does not say), None: drawn for every household
    connection_phase: np.ndarray | None = None

    def __post_init__(self) -> None:
        t, n = self.p_base_kw.shape
        if self.p_other_kw is None:
            object.__setattr__(self, "p_other_kw", np.zeros((t, 0)))
        p_other = np.asarray(self.p_other_kw, dtype=float).reshape(t, -1)
        object.__setattr__(self, "p_other_kw", p_other)
        if self.q_other_kvar is None:
            object.__setattr__(self, "q_other_kvar", np.zeros_like(p_other))
        if self.hh_cols is None:
            object.__setattr__(self, "hh_cols", np.arange(n))
        if self.other_cols is None:
            object.__setattr__(self, "other_cols", n + np.arange(p_other.shape[1]))


def build_inputs(cfg: Any, scenario: Scenario | None = None) -> StudyInputs:
    """Load feeder, weather and scenario (unless given) and cut them to the run's window."""
    window = make_window(cfg.sim.start, cfg.sim.days, cfg.sim.get("warmup_days", 0))
    cache = Path(cfg.paths.cache_dir) / "feeders" if cfg.paths.get("cache_dir") else None
    setting = cfg.grid.get("unbalanced")
    # asymmetric_load rows only for the unbalanced power flow; FeederError is a TwinError
    feeder = load_feeder(str(cfg.grid.name), cache_dir=cache, asymmetric=setting is not False)
    feeder = replace(feeder, unbalanced=resolve_unbalanced(feeder, setting))
    weather = load_weather(cfg.weather.source, cfg.weather.region, cfg.weather.get("csv"))
    scenario = scenario or load_scenario(str(cfg.scenario.name))
    rows, cols = window.sim_year_index, feeder.household_cols
    other = np.setdiff1d(np.arange(feeder.load_p_kw.shape[1]), cols)
    history = None
    forecast = cfg.get("forecast")
    days = (
        int(forecast.get("history_days", 0))
        if forecast and forecast.get("name") != "perfect"
        else 0
    )
    if days:  # the past before the first simulated step (the reference year repeats)
        past = (rows[0] - days * 96 + np.arange(days * 96)) % len(feeder.load_p_kw)
        history = {
            "base_kw": feeder.load_p_kw[np.ix_(past, cols)],
            "other_kw": feeder.load_p_kw[np.ix_(past, other)],
            "year_rows": past,
        }
    return StudyInputs(
        scenario=scenario,
        window=window,
        t_out_c=weather.t_out_c[rows],
        ghi_w_m2=weather.ghi_w_m2[rows],
        p_base_kw=feeder.load_p_kw[np.ix_(rows, cols)],
        q_base_kvar=feeder.load_q_kvar[np.ix_(rows, cols)],
        load_index=np.asarray(feeder.household_load_idx),
        tariff=make_tariff(cfg.tariff, window, weather.t_out_c, weather.ghi_w_m2),
        p_other_kw=feeder.load_p_kw[np.ix_(rows, other)],
        q_other_kvar=feeder.load_q_kvar[np.ix_(rows, other)],
        trafo_rating_kva=station_rating_kva(feeder.net),
        feeder=feeder,
        weather_name=weather.name,
        hh_cols=np.asarray(cols),
        other_cols=other,
        connection_phase=feeder.household_phase,
        history=history,
    )


def resolve_unbalanced(feeder: Feeder, setting: bool | None) -> bool:
    """Whether the run models the feeder per phase: ``grid.unbalanced`` if set, else on for a
    feeder that carries phase data (:attr:`~twin.grid.feeders.Feeder.has_phase_data`).

    A balanced run of a net with in-service ``asymmetric_load`` rows is refused here, before
    anything is simulated (only the unbalanced power flow models them).
    """
    unbalanced = feeder.has_phase_data if setting is None else bool(setting)
    if not unbalanced and feeder.has_asymmetric_loads:
        raise FeederError(
            f"feeder '{feeder.name}' has in-service asymmetric_load rows, which only the "
            "unbalanced power flow models: run with grid.unbalanced=true (the default for such a "
            f"net) or {UNSUPPORTED_FIX['asymmetric_load']}"
        )
    return unbalanced
