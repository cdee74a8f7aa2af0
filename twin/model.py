"""The mesa model of one feeder: one step = one 15-minute control interval.

Each step the DSO agent decides (contract-dependent), the household HEMSs dispatch their
devices (vectorised, through the contract), the physics advances every household at once, and
the outcome is logged into preallocated (time × household) arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mesa
import numpy as np

from twin.agents import DsoAgent, HouseholdAgent
from twin.contracts.base import Contract
from twin.devices.ev import draw_trips
from twin.devices.household import Exogenous, HouseholdState, make_exogenous, step_households
from twin.population import Fleet, sample_fleet
from twin.scenario import Scenario
from twin.tariffs import Tariff
from twin.timegrid import TimeWindow

LOGGED = (
    "p_base_kw",
    "p_hp_kw",
    "q_hp_kw",
    "q_boiler_kw",
    "p_ev_kw",
    "p_bat_kw",
    "p_pv_kw",
    "p_net_kw",
    "t_in_c",
    "ev_soc_kwh",
    "bat_soc_kwh",
    "ev_public_kwh",
)


@dataclass(frozen=True)
class StudyInputs:
    """What a run simulates, for the run's simulated steps (warm-up included): scenario,
    weather, today's household loads."""

    scenario: Scenario
    window: TimeWindow
    t_out_c: np.ndarray  # (T,)
    ghi_w_m2: np.ndarray  # (T,)
    p_base_kw: np.ndarray  # (T, H)
    q_base_kvar: np.ndarray  # (T, H)
    load_index: np.ndarray  # (H,) net.load index of each household
    tariff: Tariff | None = None  # prices over the simulated steps (HEMSs that optimise their bill)
    p_other_kw: np.ndarray | None = None  # (T,) the feeder's non-household loads together
    trafo_rating_kva: float = float("inf")
    feeder: Any = None  # the grid (twin.grid.feeders.Feeder) when the pipeline built the inputs


class FeederModel(mesa.Model):
    """Households and the DSO on one feeder, under one contract.

    All randomness (population, trips) comes from ``self.rng``, seeded by ``seed``.
    """

    def __init__(self, inputs: StudyInputs, contract: Contract, seed: int) -> None:
        super().__init__(rng=seed)
        self.inputs = inputs
        self.window = inputs.window
        self.contract = contract
        n = inputs.p_base_kw.shape[1]
        sc = inputs.scenario
        self.fleet: Fleet = sample_fleet(sc, n, self.rng)
        trips = draw_trips(
            self.rng,
            self.window.warmup_days + self.window.days,
            self.fleet.ev_departure_h,
            self.fleet.ev_arrival_h,
            sc["ev"]["annual_km"].value,
            sc["ev"]["days_used_per_week"].value,
            self.fleet.ev_kwh_per_km,
            self.fleet.has_ev,
        )
        self.exo: Exogenous = make_exogenous(
            self.fleet,
            inputs.t_out_c,
            inputs.ghi_w_m2,
            inputs.p_base_kw,
            inputs.q_base_kvar,
            sc["pv"]["yield_factor"].value,
            sc["dwelling"]["design_outdoor_c"].value,
            trips,
        )
        self.state = HouseholdState.initial(self.fleet)
        self.households = [
            HouseholdAgent(self, i, int(li)) for i, li in enumerate(inputs.load_index)
        ]
        self.dso = DsoAgent(self)
        self.k = 0
        t = self.exo.n_steps
        self.log: dict[str, np.ndarray] = {name: np.zeros((t, n)) for name in LOGGED}
        self.log["p_base_kw"][:] = self.exo.p_base_kw
        self.log["p_pv_kw"][:] = self.exo.p_pv_kw
        contract.setup(self)

    @property
    def n_steps(self) -> int:
        return self.exo.n_steps

    def step(self) -> None:
        k = self.k
        self.dso.step()
        controls = self.contract.dispatch(self, k)
        out = step_households(self.fleet, self.state, self.exo, k, controls)
        log = self.log
        log["p_hp_kw"][k] = out.p_hp_kw
        log["q_hp_kw"][k] = out.q_hp_kw
        log["q_boiler_kw"][k] = out.q_boiler_kw
        log["p_ev_kw"][k] = out.p_ev_kw
        log["p_bat_kw"][k] = out.p_bat_kw
        log["p_net_kw"][k] = out.p_net_kw
        log["ev_public_kwh"][k] = out.ev_public_kwh
        log["t_in_c"][k] = self.state.t_in_c
        log["ev_soc_kwh"][k] = self.state.ev_soc_kwh
        log["bat_soc_kwh"][k] = self.state.bat_soc_kwh
        self.k += 1
        if self.k >= self.n_steps:
            self.running = False
