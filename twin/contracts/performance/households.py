"""The household side of the performance contract: each signed household's HEMS.

It measures its own house (:class:`~twin.view.HouseholdView`), sends the DSO a flexibility
envelope (envelope mode), plans its devices inside the band it received (envelope mode; in
central mode the DSO's plan is its set-point), and every interval dispatches inside its band
with the service guards (:mod:`twin.contracts.hems`): if the band cannot hold base load plus
what the guards need, it reduces the battery, then the EV, then the heat pump (a hybrid's
boiler takes over) down to the guards, and only then exceeds the band — service first,
measured and reported. Households that did not sign behave as under a firm connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.contracts.hems import (
    DayExtremes,
    HemsDevices,
    follow_ev_plan,
    follow_heat_plan,
    follow_tank_plan,
)
from twin.contracts.performance.terms import PerformanceTerms
from twin.devices.household import Controls, firm_controls
from twin.optim.devices import DeviceInputs, device_inputs, ev_guards
from twin.optim.envelope import FlexibilityEnvelope, fixed_profile, household_envelopes
from twin.optim.horizon import Horizon
from twin.optim.options import SolverOptions, Weights
from twin.timegrid import DT_H, STEPS_PER_DAY
from twin.view import HouseholdView, Present

__all__ = ["SignedHouseholds"]


@dataclass
class _Plan:
    """A re-plan's outcome as the HEMSs carry it out (arrays over signed households)."""

    k0: int
    plan: Any  # twin.optim.blocks.DevicePlan
    band_kw: np.ndarray  # (n_signed, n_steps) per step of the horizon
    ev_need_next_kwh: np.ndarray  # (n_ev, n_steps) need at the next deadline (0: none)
    ev_home_after: np.ndarray  # (n_ev, n_steps) home steps after this one before that deadline


class SignedHouseholds:
    """The HEMSs of the signed households (see the module docstring)."""

    def __init__(
        self,
        view: HouseholdView,
        terms: PerformanceTerms,
        sig: np.ndarray,
        non: np.ndarray,
        hz: Horizon,
        weights: Weights,
        solver: SolverOptions,
        n_steps: int,
    ) -> None:
        self.view = view
        self.terms = terms
        self.sig, self.non, self.hz = sig, non, hz
        fleet = view.devices
        self.dev = terms.device_set(fleet, sig)
        self.c = HemsDevices.build(fleet, self.dev)
        self.days = DayExtremes(self.c)
        self.planner: Any = None
        if terms.information == "envelope":
            from twin.optim.allocation import HemsPlanning

            self.planner = HemsPlanning(self.dev, hz, weights, solver)
        self.plan: _Plan | None = None
        self.band_kw = np.full((n_steps, len(sig)), np.nan)
        self.fallback = np.zeros(n_steps, bool)

    # -- planning --------------------------------------------------------------------------------
    def own_forecast(self, k0: int) -> Any:
        """Each HEMS's forecast of its own house (+ a day for trips that end later)."""
        return self.view.forecaster.exogenous(k0, self.hz.n_steps + STEPS_PER_DAY, self.sig)

    def own_trips(self, k0: int) -> Any:
        """Each HEMS's EV plans (+ a day for trips that end later): what its guards read of
        its forecast (central mode: the DSO plans the devices; the HEMS needs no more)."""
        return self.view.forecaster.trips(k0, self.hz.n_steps + STEPS_PER_DAY, self.sig)

    def day_extremes(self, k0: int) -> tuple[np.ndarray, np.ndarray]:
        """Today's lowest and highest measured temperature (minus setpoint) of each home."""
        return self.days.at(k0, self.view.state.t_in_c, self._heat_of)

    def _heat_of(self, k_start: int, k_end: int) -> np.ndarray:
        """The heat each heat-pump home's heating reported (its own meter)."""
        return self.view.metered_heat_kw(k_start, k_end, self.c.g_hp)

    def device_inputs(self, k0: int, forecast: Any) -> DeviceInputs:
        """Each HEMS's device data for a re-plan: its forecast and its own measured state."""
        s, sig = self.view.state, self.sig
        return device_inputs(
            self.dev,
            self.hz,
            forecast,
            s.t_in_c[sig],
            s.ev_soc_kwh[sig],
            s.bat_soc_kwh[sig],
            k0,
            self.day_extremes(k0),
            e_tank_kwh=None if s.e_tank_kwh is None else s.e_tank_kwh[sig],
        )

    def envelopes(self, inp: DeviceInputs) -> FlexibilityEnvelope:
        """What each HEMS tells the DSO: its flexibility envelope (no device state)."""
        t = self.terms
        return household_envelopes(
            self.dev, inp, self.hz, t.envelope_margin_k, t.battery_reserve_cycles
        )

    def plan_in_band(self, inp: DeviceInputs, band_flex_kw: np.ndarray) -> tuple:
        """Envelope mode: every HEMS plans its devices inside its band."""
        return self.planner.plan(inp, band_flex_kw)

    @staticmethod
    def counter_proposal(
        env: FlexibilityEnvelope, misfit: np.ndarray, plan: Any, dt_h: np.ndarray
    ) -> FlexibilityEnvelope:
        """HEMSs that cannot follow their allocation propose the profile they can follow."""
        return fixed_profile(env, misfit, plan.p_flex_kw[misfit], dt_h)

    def accept(self, k0: int, plan: Any, band_kw: np.ndarray, trips: Any) -> None:
        """Carry out ``plan`` inside ``band_kw`` from step ``k0`` (with the EV guards' data:
        ``trips``, the HEMSs' own EV plans, :meth:`own_trips`)."""
        need, home_after = ev_guards(self.dev, trips, k0, self.hz.n_steps)
        self.plan = _Plan(k0, plan, band_kw, need, home_after)

    def drop_plan(self) -> None:
        self.plan = None

    def short_of_plan(self, k: int, tol_k: float, tol_kwh: float) -> int:
        """How many HEMSs find their house short of the plan at step ``k`` (a state the plan
        has): indoor temperature more than ``tol_k`` below it, or an EV at home / a battery
        with more than ``tol_kwh`` less energy than planned (a car away is not compared: the
        plan books a trip at departure, the car's meter at arrival). Each HEMS compares its
        own house with its own plan; only the count leaves it. -1: no plan covers ``k``."""
        plan = self.plan
        if plan is None:
            return -1
        o = k - plan.k0
        hz = self.hz
        s_idx = int(np.searchsorted(hz.state_step, o))
        if o < 0 or s_idx > hz.n_periods or hz.state_step[s_idx] != o:
            return -1
        st, c, pl = self.view.state, self.c, plan.plan
        short = (st.t_in_c[c.g_hp] - c.setpoint_c) < pl.d_k[:, s_idx] - tol_k
        n = int(short.sum())
        home = self.view.present(k).home[c.g_ev]
        n += int((home & (st.ev_soc_kwh[c.g_ev] < pl.ev_soc_kwh[:, s_idx] - tol_kwh)).sum())
        n += int((st.bat_soc_kwh[c.g_bat] < pl.bat_soc_kwh[:, s_idx] - tol_kwh).sum())
        return n

    # -- every interval ----------------------------------------------------------------------------
    def dispatch(self, k: int) -> Controls:
        v = self.view
        f, s = v.devices, v.state
        x = v.present(k)
        day = self.days.at(k, s.t_in_c, self._heat_of, x)  # every step: the swing rule's record
        firm = firm_controls(f, s.t_in_c, x.t_out_c, x.q_gain_kw)
        q_heat, p_ev = firm.q_heat_kw, f.ev_p_max_kw.copy()
        plan = self.plan
        if not len(self.sig):
            return Controls(q_heat_kw=q_heat, p_ev_kw=p_ev)
        if plan is None or k - plan.k0 >= self.hz.n_steps:
            self.fallback[k] = True
            return Controls(q_heat_kw=q_heat, p_ev_kw=p_ev)
        q_hp_max = np.full(f.n, np.inf)
        # NaN: households that did not sign keep their tank's thermostat and their battery on
        # self-consumption (firm); the physics does both
        p_bat = np.full(f.n, np.nan)
        q_dhw = np.full(f.n, np.nan)
        self._follow(k, x, plan, day, q_heat, q_hp_max, p_ev, p_bat, q_dhw)
        return Controls(
            q_heat_kw=q_heat, p_ev_kw=p_ev, p_bat_kw=p_bat, q_hp_max_kw=q_hp_max, q_dhw_kw=q_dhw
        )

    def _follow(
        self,
        k: int,
        x: Present,
        plan: _Plan,
        day: tuple[np.ndarray, np.ndarray, np.ndarray],
        q_heat: np.ndarray,
        q_hp_max: np.ndarray,
        p_ev: np.ndarray,
        p_bat: np.ndarray,
        q_dhw: np.ndarray,
    ) -> None:
        """Every signed household's HEMS: follow the plan inside the band, service first
        (``day``: today's extremes, :meth:`DayExtremes.at` of step ``k``)."""
        s, c = self.view.state, self.c
        o = k - plan.k0
        j = int(self.hz.period_of_step[o])
        pl = plan.plan

        heat = follow_heat_plan(
            c,
            s.t_in_c,
            x,
            pl.p_hp_kw[:, j],
            pl.q_boiler_kw[:, j],
            day,
        )
        q_req, q_cap, p_hp, q_guard, cop = (
            heat.q_req_kw,
            heat.q_cap_kw,
            heat.p_hp_kw,
            heat.q_guard_kw,
            heat.cop,
        )
        # the tanks: planned charging, never below the thermostat's level, leaving the heat
        # pump what the comfort guard needs; space heat gets what the tank leaves
        tank = follow_tank_plan(c, s.e_tank_kwh, x, pl.p_dhw_kw[:, j], q_guard)
        q_tk, tk_guard, cop_tk = tank.q_req_kw, tank.q_guard_kw, tank.cop
        q_sh_cap = np.where(c.hybrid, heat.heat(c, q_cap / cop), c.qmax_hp)
        q_sh_cap[c.tk_hp] -= q_tk
        full = np.zeros(len(c.g_hp), bool)  # the heat pump charges the tank: full output
        full[c.tk_hp] = q_tk > 0
        p_hp = heat.electric(c, np.minimum(q_req, q_sh_cap), full)
        ev_req, ev_guard = follow_ev_plan(
            c,
            s.ev_soc_kwh,
            x,
            pl.p_ev_kw[:, j],
            plan.ev_need_next_kwh[:, o],
            plan.ev_home_after[:, o],
        )

        # batteries: the planned power (the battery's own limits apply in the physics)
        b = c.g_bat
        bat_req = pl.p_bat_kw[:, j].copy()
        bat_min = -np.minimum(c.bat_pmax, s.bat_soc_kwh[b] * c.bat_eta / DT_H)

        # the band: base load and PV are what they are; reduce battery, EV, heat pump (to guards)
        flex = x.p_base_kw[self.sig] - x.p_pv_kw[self.sig]
        flex[c.hp_pos] += p_hp
        flex[c.tk_pos] += q_tk / cop_tk
        flex[c.ev_pos] += ev_req
        flex[c.bat_pos] += np.maximum(bat_req, bat_min)
        band = plan.band_kw[:, o]
        over = flex - band
        if over.max() > 1e-9:
            np.maximum(over, 0.0, out=over)
            cut = np.minimum(over[c.bat_pos], np.maximum(bat_req - bat_min, 0.0))
            bat_req -= cut
            over[c.bat_pos] -= cut
            cut = np.minimum(over[c.ev_pos], np.maximum(ev_req - ev_guard, 0.0))
            ev_req -= cut
            over[c.ev_pos] -= cut
            cut = np.minimum(over[c.tk_pos], np.maximum(q_tk - tk_guard, 0.0) / cop_tk)
            q_tk = q_tk - cut * cop_tk
            over[c.tk_pos] -= cut
            full[c.tk_hp] = q_tk > 0
            p_floor = np.where(
                c.hybrid, 0.0, heat.electric(c, np.minimum(q_guard, c.qmax_hp), full)
            )
            cut = np.minimum(over[c.hp_pos], np.maximum(p_hp - p_floor, 0.0))
            p_hp -= cut
            q_hp = heat.heat(c, p_hp, full)
            q_cap = np.where(c.hybrid, p_hp * cop, q_cap)
            q_req = np.where(c.hybrid, q_req, np.maximum(q_hp, q_guard))
        g = c.g_hp
        q_heat[g] = q_req
        q_hp_max[g] = np.where(c.hybrid, q_cap, np.inf)
        p_ev[c.g_no_ev] = 0.0
        p_ev[c.g_ev] = ev_req
        p_bat[self.sig] = 0.0  # signed households without a battery: nothing to do
        p_bat[b] = bat_req
        q_dhw[c.g_tk] = q_tk
        self.band_kw[k] = band
