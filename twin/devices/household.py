"""One time step of every household at once: heat pump and building, EV, battery, PV, base load.

The contract's HEMS decides *requests* (:class:`Controls`); this module applies device limits and
physics and returns what actually happened. Inputs that depend only on weather and the fleet
(gains, COP, PV, base load, trips) are precomputed for the whole window in :class:`Exogenous`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.devices.battery import battery_step, self_consumption_request
from twin.devices.ev import TripSchedule, ev_step
from twin.devices.pv import pv_power_kw
from twin.devices.thermal import cop, flow_temperature_c, heat_to_reach, step_temperature
from twin.fleet import Fleet
from twin.timegrid import DT_H


@dataclass(frozen=True)
class Exogenous:
    """Everything outside the households' control over the window, (T,) or (T, H) arrays."""

    t_out_c: np.ndarray  # (T,)
    ghi_w_m2: np.ndarray  # (T,)
    p_base_kw: np.ndarray  # (T, H) appliances and lighting
    q_base_kvar: np.ndarray  # (T, H)
    p_pv_kw: np.ndarray  # (T, H) PV potential (all of it is produced)
    q_gain_kw: np.ndarray  # (T, H) internal + solar gains
    cop: np.ndarray  # (T, H) heat pump COP at the heating-curve flow temperature
    trips: TripSchedule

    @property
    def n_steps(self) -> int:
        return len(self.t_out_c)


def make_exogenous(
    fleet: Fleet,
    t_out_c: np.ndarray,
    ghi_w_m2: np.ndarray,
    p_base_kw: np.ndarray,
    q_base_kvar: np.ndarray,
    pv_yield_factor: float,
    design_outdoor_c: float,
    trips: TripSchedule,
) -> Exogenous:
    """Precompute gains, COP and PV over the window (vectorised over time and households)."""
    t_col = t_out_c[:, None]
    q_gain = (
        fleet.internal_gains_kw + p_base_kw + np.outer(ghi_w_m2 / 1000.0, fleet.solar_aperture_m2)
    )
    flow = flow_temperature_c(t_col, fleet.flow_design_c, fleet.setpoint_c, design_outdoor_c)
    return Exogenous(
        t_out_c=t_out_c,
        ghi_w_m2=ghi_w_m2,
        p_base_kw=p_base_kw,
        q_base_kvar=q_base_kvar,
        p_pv_kw=pv_power_kw(ghi_w_m2, fleet.pv_kwp, pv_yield_factor),
        q_gain_kw=q_gain,
        cop=cop(t_col, flow),
        trips=trips,
    )


@dataclass
class Controls:
    """A HEMS's requests for one step, arrays over households.

    ``q_heat_kw``: space heat wanted (thermal kW); the heat pump gives what it can, a (hybrid's
    or gas home's) boiler the rest. ``p_ev_kw``: charging request. ``p_bat_kw``: battery request
    (positive charging); ``None`` means self-consumption on the rest of the house's load.
    ``q_hp_max_kw``: a limit on the heat pump's thermal output this step (e.g. a DSO's dimming),
    on top of its rating; ``None`` means no limit.
    """

    q_heat_kw: np.ndarray
    p_ev_kw: np.ndarray
    p_bat_kw: np.ndarray | None = None
    q_hp_max_kw: np.ndarray | None = None


@dataclass
class HouseholdState:
    t_in_c: np.ndarray
    ev_soc_kwh: np.ndarray
    bat_soc_kwh: np.ndarray

    @classmethod
    def initial(cls, fleet: Fleet) -> HouseholdState:
        return cls(fleet.setpoint_c.copy(), fleet.ev_soc0_kwh.copy(), fleet.bat_soc0_kwh.copy())


@dataclass
class StepOutcome:
    p_hp_kw: np.ndarray
    q_hp_kw: np.ndarray
    q_boiler_kw: np.ndarray
    p_ev_kw: np.ndarray
    ev_public_kwh: np.ndarray
    p_bat_kw: np.ndarray
    p_net_kw: np.ndarray


def step_households(
    fleet: Fleet, state: HouseholdState, exo: Exogenous, k: int, ctl: Controls
) -> StepOutcome:
    """Advance ``state`` in place by step ``k`` under the requests ``ctl``."""
    q_heat = np.maximum(ctl.q_heat_kw, 0.0)
    q_hp_max = (
        fleet.hp_q_max_kw
        if ctl.q_hp_max_kw is None
        else np.minimum(fleet.hp_q_max_kw, ctl.q_hp_max_kw)
    )
    q_hp = np.minimum(q_heat, q_hp_max)
    # gas homes (no heat pump) and hybrids: a boiler covers what the heat pump does not
    q_boiler = np.where(fleet.has_hp & ~fleet.hp_hybrid, 0.0, q_heat - q_hp)
    p_hp = q_hp / exo.cop[k]
    state.t_in_c = step_temperature(
        state.t_in_c,
        exo.t_out_c[k],
        q_hp + q_boiler,
        exo.q_gain_kw[k],
        fleet.r_k_per_kw,
        fleet.a_step,
    )
    p_ev, state.ev_soc_kwh, public = ev_step(
        state.ev_soc_kwh,
        ctl.p_ev_kw,
        exo.trips.home[k],
        exo.trips.trip_kwh[k],
        fleet.ev_capacity_kwh,
        fleet.ev_p_max_kw,
        DT_H,
    )
    p_base, p_pv = exo.p_base_kw[k], exo.p_pv_kw[k]
    p_req_bat = ctl.p_bat_kw
    if p_req_bat is None:
        p_req_bat = self_consumption_request(p_base + p_hp + p_ev - p_pv)
    p_bat, state.bat_soc_kwh = battery_step(
        state.bat_soc_kwh,
        p_req_bat,
        fleet.bat_capacity_kwh,
        fleet.bat_p_max_kw,
        fleet.bat_eta,
        DT_H,
    )
    return StepOutcome(
        p_hp_kw=p_hp,
        q_hp_kw=q_hp,
        q_boiler_kw=q_boiler,
        p_ev_kw=p_ev,
        ev_public_kwh=public,
        p_bat_kw=p_bat,
        p_net_kw=p_base + p_hp + p_ev + p_bat - p_pv,
    )


def thermostat_heat_kw(
    fleet: Fleet, t_in_c: np.ndarray, t_out_c: float, q_gain_kw: np.ndarray
) -> np.ndarray:
    """Heat (kW thermal, unclipped) that brings every home exactly to its setpoint within the
    step: the firm thermostat (modulating; the physics clips it to the heat pump's capacity)."""
    return heat_to_reach(
        fleet.setpoint_c, t_in_c, t_out_c, q_gain_kw, fleet.r_k_per_kw, fleet.a_step
    )


def firm_controls(
    fleet: Fleet, t_in_c: np.ndarray, t_out_c: float, q_gain_kw: np.ndarray
) -> Controls:
    """Firm behaviour (today's connection, no control): the thermostat, the EV at full power
    whenever it is home, the battery on self-consumption, PV producing fully."""
    return Controls(
        q_heat_kw=thermostat_heat_kw(fleet, t_in_c, t_out_c, q_gain_kw),
        p_ev_kw=fleet.ev_p_max_kw,
        p_bat_kw=None,
    )


def simulate_firm(fleet: Fleet, state: HouseholdState, exo: Exogenous) -> np.ndarray:
    """Net load ``(T, n)`` of households behaving as under a firm connection over ``exo``'s
    steps (:func:`firm_controls`); advances ``state``."""
    out = np.empty((exo.n_steps, fleet.n))
    for k in range(exo.n_steps):
        ctl = firm_controls(fleet, state.t_in_c, exo.t_out_c[k], exo.q_gain_kw[k])
        out[k] = step_households(fleet, state, exo, k, ctl).p_net_kw
    return out
