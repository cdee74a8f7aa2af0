"""Device models of the households in an optimisation, as data (numpy, no Pyomo).

:class:`DeviceSet` holds the parameters of the devices that the optimiser controls (heat pump
in a 1R1C building, EV, home battery) for a chosen set of households; :func:`device_inputs`
turns a forecast and the households' current state into the per-period data of one re-plan
(:class:`DeviceInputs`), which the Pyomo blocks of :mod:`twin.optim.blocks` take as their
mutable parameters.

The optimisation uses the same exact discretisation as the simulation
(:mod:`twin.devices.thermal`), with the indoor temperature as a deviation from the setpoint,
``d = T - T_set``, over a period of ``m`` steps (inputs held at their period mean):

    d[s+1] = A d[s] + (1 - A) R (cop p_hp + q_boiler) + (1 - A) (T_out + R g - T_set),
    A = a ** m.

Service levels become bounds on states, relaxed only where the devices physically cannot meet
them (so the optimisation is always feasible, and every relaxation is reported):

* comfort: ``d >= -band`` where reachable. The reachable floor follows the recursion
  ``lo[s+1] = min(-band, A lo[s] + (1 - A) (T_out + R (g + q_max) - T_set))`` from
  ``lo[0] = min(-band, d0)``: any trajectory that stays above ``lo`` can be continued (full
  heating keeps it above), so the bound never makes the programme infeasible. Hybrids have an
  unlimited boiler. A ceiling ``d <= preheat`` limits pre-heating (relaxed where solar gains
  alone push the temperature higher: there is no cooling).
* EV range at the deadline: ``soc >= need`` at each deadline the car is home for, capped by
  the state of charge that charging at full power from now on can reach. A trip's energy
  leaves the battery at departure in the plan (:func:`trips_at_departure`; the simulation
  takes it at arrival, which is the same while the car is away); the part of a trip the
  battery could not hold even when charged at full power is charged elsewhere (``public``), as
  in :func:`twin.devices.ev.ev_step`. A car with a bidirectional charger may also discharge
  (vehicle-to-grid, at most its charger's rating while home, wear cost per kWh), never below
  the energy its owner keeps for V2G (``ev.v2g_reserve_*``; never charged for, though) or what
  the service levels need, and ending the horizon with at least the energy it would have
  without V2G (energy-neutral over a plan: a rolling horizon gives the energy after its end
  no value, so without it a plan sells the cars' energy and the next one buys it back at a
  higher peak).
* Hot water (a tank per all-electric heat pump): the stored heat ``e`` follows the tank's exact
  step over a period (``e' = A e + B (cop_dhw p_dhw - draw)``, ``A = exp(-λ m dt)``,
  ``B = (1 - A) / λ``), within ``[guard + margin, e_full]`` (the floor soft, see
  :class:`twin.optim.blocks.DeviceBlock`): never below the level at which the tank's own
  thermostat would start charging (so the hot water lasts at least as long as under the
  thermostat; the HEMS guards hold it) plus, in the plan, the heat of one bath
  (:data:`TANK_PLAN_MARGIN_L` litres at 60 °C, at most half the room to full) for draws the
  plan did not expect, relaxed only where the heat pump cannot keep it; at most full at its
  setpoint: charging above it (towards ``hot_water.t_max_c``) needs flow temperatures at
  which the field COP of an air/water heat pump falls to ~1.1-1.5 in winter (the hplib
  regression at 65 °C flow, floored), close to the element's, which a constant-COP LP would
  not see. The draws are the forecast's if it has them, else each household's expected
  draws (:func:`twin.devices.household.expected_hot_water`). The heat pump's thermal
  capacity is shared: ``cop p_hp + cop_dhw p_dhw <= q_max``.

The COP depends on the power (cycling below the minimum output, :mod:`twin.devices.heatpump`),
which an LP cannot carry: each period keeps the field COP at full output times the cycling
factor at the forecast operating point (the heat that holds the setpoint over the period),
the hot-water COP at the tank's setpoint; the physics applies the true COP of what is done.
Standby is in the base load (inflexible). A hybrid's heat pump is off in periods below its bivalence
point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.devices import dhw
from twin.devices.ev import CHARGE_EFFICIENCY, DISCHARGE_EFFICIENCY, TripSchedule
from twin.devices.heatpump import cycling_factor, dhw_cop, min_output_kw
from twin.devices.household import Exogenous
from twin.fleet import Fleet, HeatPumpModel
from twin.optim.horizon import Horizon
from twin.service import EvDue, ev_due, trips_at_departure
from twin.timegrid import DT_H, STEPS_PER_DAY, STEPS_PER_HOUR

#: The plan keeps this much hot water (litres at 60 °C: one bath, twin.devices.dhw
#: DRAW_CATEGORIES; at most half the room to full) above the thermostat's level, for draws
#: the plan did not expect (it plans with the expected draws unless the forecast has them).
TANK_PLAN_MARGIN_L = 78.0
#: Boiler capacity used for the reachability of hybrids (kW thermal): "unlimited".
BOILER_Q_MAX_KW = 1e3
#: Service levels are planned this far inside their limits, so solver tolerances cannot
#: push the simulated result across the line (K and kWh).
COMFORT_TOL_K = 0.04
EV_TOL_KWH = 0.02


@dataclass(frozen=True)
class DeviceSet:
    """Parameters of the controllable devices of a set of households.

    Attributes
    ----------
    households : np.ndarray
        ``(n,)`` fleet positions of the households.
    hp, ev, bat : np.ndarray
        Positions (into ``households``) of those with a heat pump, an EV, a battery.
    hybrid : np.ndarray
        ``(n_hp,)`` whether the heat pump is a hybrid (a boiler covers the rest).
    r_k_per_kw, a_step, setpoint_c, hp_q_max_kw : np.ndarray
        ``(n_hp,)`` building resistance, one-step decay factor, setpoint, heat pump thermal
        capacity.
    ev_capacity_kwh, ev_p_max_kw, ev_need_kwh, ev_reserve_kwh : np.ndarray
        ``(n_ev,)`` battery size, charger power, energy the range guarantee requires and the
        reserve kept at all times (both capped at the capacity; :mod:`twin.service`).
    bat_capacity_kwh, bat_p_max_kw, bat_eta : np.ndarray
        ``(n_bat,)`` home battery size, power rating and one-way efficiency.
    comfort_band_k, preheat_k : float
        Guaranteed band below the setpoint; allowed pre-heating above it.
    swing_k : float
        Largest daily swing of the indoor temperature (``inf``: no swing rule).
    deadline_step : int
        Step of the day at which the EV range is due (06:00 -> 24).
    """

    households: np.ndarray
    hp: np.ndarray
    hybrid: np.ndarray
    r_k_per_kw: np.ndarray
    a_step: np.ndarray
    setpoint_c: np.ndarray
    hp_q_max_kw: np.ndarray
    ev: np.ndarray
    ev_capacity_kwh: np.ndarray
    ev_p_max_kw: np.ndarray
    ev_need_kwh: np.ndarray
    ev_reserve_kwh: np.ndarray
    bat: np.ndarray
    bat_capacity_kwh: np.ndarray
    bat_p_max_kw: np.ndarray
    bat_eta: np.ndarray
    comfort_band_k: float
    preheat_k: float
    deadline_step: int
    swing_k: float = float("inf")
    # heat pumps as measured (positions as ``hp``): bivalence point (-inf: all-electric),
    # standby, the scenario's model (COP factors, minimum modulation)
    hp_t_bivalent_c: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hp_standby_kw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hp_model: HeatPumpModel = field(default_factory=HeatPumpModel)
    # hot-water tanks: positions (into ``households``) and into the heat-pump arrays, the
    # tank's step (per 15 min), bounds, setpoint; persons and litres for expected draws
    tk: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tk_hp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tk_loss_per_h: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tk_e_guard_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tk_e_max_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tk_e_full_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tk_t_set_c: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tk_persons: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tk_litres: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tk_t_cold_c: float = 10.0
    # vehicle-to-grid: positions (into the EV arrays) of the bidirectional cars, their
    # discharge rating, the energy V2G leaves, wear (€/kWh discharged)
    v2g: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    v2g_p_max_kw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v2g_reserve_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v2g_wear_eur_per_kwh: np.ndarray = field(default_factory=lambda: np.zeros(0))
    v2g_eta: float = DISCHARGE_EFFICIENCY

    @classmethod
    def from_fleet(
        cls,
        fleet: Fleet,
        households: np.ndarray,
        comfort_band_k: float,
        ev_range_km: float,
        ev_deadline_h: float,
        preheat_k: float | None = None,
        ev_reserve_km: float = 0.0,
        swing_k: float | None = None,
    ) -> DeviceSet:
        """The devices of ``households`` (fleet positions) with the contract's service levels."""
        h = np.asarray(households, dtype=np.int64)
        hp = np.flatnonzero(fleet.has_hp[h])
        ev = np.flatnonzero(fleet.has_ev[h] & (fleet.ev_capacity_kwh[h] > 0))
        bat = np.flatnonzero(fleet.has_battery[h] & (fleet.bat_capacity_kwh[h] > 0))
        g_hp, g_ev, g_bat = h[hp], h[ev], h[bat]
        cap = fleet.ev_capacity_kwh[g_ev]
        need = np.minimum(ev_range_km * fleet.ev_kwh_per_km[g_ev], cap)
        reserve = np.minimum(ev_reserve_km * fleet.ev_kwh_per_km[g_ev], cap)
        tk = np.flatnonzero(fleet.has_tank[h] & fleet.has_hp[h])
        tk_hp = np.searchsorted(hp, tk)
        tank = dhw.tank_of(fleet)
        g_tk = h[tk]
        v2g = np.flatnonzero(fleet.has_v2g[g_ev])
        g_v = g_ev[v2g]
        return cls(
            households=h,
            hp=hp,
            hybrid=fleet.hp_hybrid[g_hp].copy(),
            r_k_per_kw=fleet.r_k_per_kw[g_hp].copy(),
            a_step=fleet.a_step[g_hp].copy(),
            setpoint_c=fleet.setpoint_c[g_hp].copy(),
            hp_q_max_kw=fleet.hp_q_max_kw[g_hp].copy(),
            ev=ev,
            ev_capacity_kwh=fleet.ev_capacity_kwh[g_ev].copy(),
            ev_p_max_kw=fleet.ev_p_max_kw[g_ev].copy(),
            ev_need_kwh=need,
            ev_reserve_kwh=reserve,
            bat=bat,
            bat_capacity_kwh=fleet.bat_capacity_kwh[g_bat].copy(),
            bat_p_max_kw=fleet.bat_p_max_kw[g_bat].copy(),
            bat_eta=fleet.bat_eta[g_bat].copy(),
            comfort_band_k=float(comfort_band_k),
            preheat_k=float(comfort_band_k if preheat_k is None else preheat_k),
            deadline_step=int(round(ev_deadline_h * STEPS_PER_HOUR)) % STEPS_PER_DAY,
            swing_k=float("inf") if swing_k is None else float(swing_k),
            hp_t_bivalent_c=fleet.hp_t_bivalent_c[g_hp].copy(),
            hp_standby_kw=np.full(len(g_hp), fleet.hp_model.standby_kw),
            hp_model=fleet.hp_model,
            tk=tk,
            tk_hp=tk_hp,
            tk_loss_per_h=tank.loss_rate_per_h[g_tk].copy(),
            tk_e_guard_kwh=dhw.thermostat_start_kwh(tank)[g_tk].copy(),
            # planners charge up to the setpoint (module docstring)
            tk_e_max_kwh=tank.e_full_kwh[g_tk].copy(),
            tk_e_full_kwh=tank.e_full_kwh[g_tk].copy(),
            tk_t_set_c=fleet.tank_t_set_c[g_tk].copy(),
            tk_persons=fleet.persons[g_tk].astype(float),
            tk_litres=fleet.dhw_litres_per_person_day[g_tk].copy(),
            tk_t_cold_c=float(fleet.dhw_model.t_cold_c),
            v2g=v2g,
            v2g_p_max_kw=fleet.ev_p_dis_max_kw[g_v].copy(),
            v2g_reserve_kwh=fleet.ev_v2g_reserve_kwh[g_v].copy(),
            v2g_wear_eur_per_kwh=fleet.ev_wear_eur_per_kwh[g_v].copy(),
        )

    @property
    def n(self) -> int:
        return len(self.households)

    @property
    def n_hp(self) -> int:
        return len(self.hp)

    @property
    def n_ev(self) -> int:
        return len(self.ev)

    @property
    def n_bat(self) -> int:
        return len(self.bat)

    @property
    def n_tk(self) -> int:
        return len(self.tk)

    @property
    def n_v2g(self) -> int:
        return len(self.v2g)

    @property
    def hybrid_pos(self) -> np.ndarray:
        """Positions (into the heat pump arrays) of the hybrids."""
        return np.flatnonzero(self.hybrid)

    def tank_decay(self, horizon: Horizon) -> tuple[np.ndarray, np.ndarray]:
        """``(A, B)`` ``(n_tk, N)``: the tanks' exact step over each period,
        ``e' = A e + B (q_in - q_draw)``."""
        lam = self.tk_loss_per_h[:, None]
        dt = horizon.dt_h[None, :]
        a = np.exp(-lam * dt)
        with np.errstate(divide="ignore", invalid="ignore"):
            b = np.where(lam > 0, (1.0 - a) / np.where(lam > 0, lam, 1.0), dt)
        return a, b


@dataclass
class Relaxation:
    """A service level the devices cannot physically meet in a plan (never silent).

    Attributes
    ----------
    household : int
        Fleet position.
    term : str
        ``"comfort"`` (K below the guaranteed floor) or ``"ev_range"`` (kWh short).
    step : int
        Simulation step of the state concerned.
    amount : float
        How far the reachable state falls short (K or kWh).
    cause : str
        Why (device limit, starting state, ...).
    """

    household: int
    term: str
    step: int
    amount: float
    cause: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "household": self.household,
            "term": self.term,
            "step": self.step,
            "amount": round(self.amount, 4),
            "cause": self.cause,
        }


@dataclass
class DeviceInputs:
    """Per-period data of one re-plan for the devices of a :class:`DeviceSet`.

    Thermal arrays are ``(n_hp, N)``, EV ``(n_ev, N)``, households ``(n, N)``; state bounds
    refer to states ``1 .. N`` (state 0 is the measured one).
    """

    k0: int
    th_rhs_k: np.ndarray
    cop: np.ndarray
    hp_p_max_kw: np.ndarray
    d0_k: np.ndarray
    d_lo_k: np.ndarray
    d_hi_k: np.ndarray
    ev_p_max_kw: np.ndarray
    ev_trip_kwh: np.ndarray
    ev_soc0_kwh: np.ndarray
    ev_soc_min_kwh: np.ndarray
    bat_soc0_kwh: np.ndarray
    p_inflex_kw: np.ndarray
    relaxations: list[Relaxation] = field(default_factory=list)
    # hot-water tanks (n_tk, N): the hot-water COP, the draws (period mean, heat), the largest
    # electric power of the tank's charging, the lowest stored heat allowed (states 1 .. N)
    tk_cop: np.ndarray | None = None
    tk_draw_kw: np.ndarray | None = None
    tk_p_max_kw: np.ndarray | None = None
    tk_e0_kwh: np.ndarray | None = None
    tk_e_min_kwh: np.ndarray | None = None
    # V2G (n_v2g, N): the largest discharge (0 while away), the least energy kept (states 1..N)
    v2g_p_max_kw: np.ndarray | None = None
    v2g_keep_kwh: np.ndarray | None = None
    # the swing rule (DeviceSet.swing_k finite): bounds of each state's window lower edge and
    # the jump it may make at a state (0 within a calendar day)
    win_lb_k: np.ndarray | None = None  # (n_hp, N + 1)
    win_ub_k: np.ndarray | None = None  # (n_hp, N + 1)
    win_jump_k: np.ndarray | None = None  # (N + 1,)
    # the window's edge is shifted by the forecast uncontrolled warmth at each state
    win_shift_k: np.ndarray | None = None  # (n_hp, N + 1)


def thermal_decay(dev: DeviceSet, horizon: Horizon) -> np.ndarray:
    """``(n_hp, N)`` decay factor ``A = a ** m`` of each period."""
    return dev.a_step[:, None] ** horizon.steps[None, :]


#: The lowest part-load ratio (heat / minimum output) a plan's cycling loss is evaluated at.
#: The loss is linearised at the heat that would hold the setpoint over the period; where that
#: is near zero (a mild period) the EN 14825 factor goes to zero with it, and so would the
#: COP: a plan that then has to heat (to recover a deficit) saw its heat pump draw
#: ``q_max / cop`` -- 486 kW for a 1.8 kW heat pump, in a 6-h period of an envelope-mode
#: year, whose envelope then demanded 2,200 kWh. Heat that a plan delivers comes in cycles of
#: a meaningful share of the minimum output: 0.1 bounds the factor at 0.53 (``CYCLING_CD``
#: 0.9). Assumption.
PLAN_MIN_PART_LOAD = 0.1


def plan_cop(dev: DeviceSet, horizon: Horizon, fc: Exogenous) -> np.ndarray:
    """``(n_hp, N)`` the space-heating COP each period plans with: the field COP at full
    output (the forecast's) times the cycling loss at the forecast operating point, the heat
    that would hold the setpoint over the period, at a part-load ratio of at least
    :data:`PLAN_MIN_PART_LOAD` (module docstring)."""
    hp = dev.hp
    cop_full = horizon.mean(fc.cop[:, hp]).T
    t_out = horizon.mean(fc.t_out_c)[None, :]
    gain = horizon.mean(fc.q_gain_kw[:, hp]).T
    q_need = np.maximum((dev.setpoint_c[:, None] - t_out) / dev.r_k_per_kw[:, None] - gain, 0.0)
    q_need = np.minimum(q_need, dev.hp_q_max_kw[:, None])
    q_min = min_output_kw(dev.hp_q_max_kw[:, None], t_out, model=dev.hp_model)
    q_op = np.maximum(q_need, PLAN_MIN_PART_LOAD * q_min)
    f = cycling_factor(q_op, q_min, dev.hp_model.cycling_cd)
    return cop_full * np.where(q_need > 0, f, 1.0)


def tank_draws_kw(dev: DeviceSet, fc: Exogenous, k0: int, n_steps: int) -> np.ndarray:
    """``(n_steps, n_tk)`` the tanks' draws a plan counts on: the forecast's if it has them,
    else each household's expected draws (steps from ``k0``, a window starting at midnight)."""
    if fc.q_dhw_kw is not None:
        return np.asarray(fc.q_dhw_kw[:n_steps, dev.tk], dtype=float)
    return dhw.expected_draw_kw(dev.tk_persons, dev.tk_litres, n_steps, k0, dev.tk_t_cold_c)


def device_inputs(
    dev: DeviceSet,
    horizon: Horizon,
    fc: Exogenous,
    t_in_c: np.ndarray,
    ev_soc_kwh: np.ndarray,
    bat_soc_kwh: np.ndarray,
    k0: int,
    d_day_k: tuple[np.ndarray, np.ndarray] | None = None,
    e_tank_kwh: np.ndarray | None = None,
) -> DeviceInputs:
    """The data of a re-plan at step ``k0``.

    Parameters
    ----------
    dev : DeviceSet
        Devices of the optimised households.
    horizon : Horizon
        Periods of the plan.
    fc : Exogenous
        Forecast for the households in ``dev`` (columns in ``dev.households`` order) over at
        least ``horizon.n_steps + 1`` steps from ``k0`` (one extra step for the EV at home
        after the last deadline); a day more lets the plan see trips that start within the
        horizon but end after it.
    t_in_c, ev_soc_kwh, bat_soc_kwh : np.ndarray
        Current state of the households in ``dev`` (``(n,)`` each).
    k0 : int
        Simulation step the plan starts at.
    d_day_k : tuple of np.ndarray, optional
        ``(min, max)`` over today's measured states so far of each heat-pump home's indoor
        temperature minus setpoint (the swing rule's window must hold them); default: the
        current state only.
    e_tank_kwh : np.ndarray, optional
        ``(n,)`` stored hot-water heat of the households in ``dev``; default: the
        ``e_tank_kwh`` that ``d_day_k`` carries (:class:`MeasuredToday`), else full tanks.
    """
    if e_tank_kwh is None:
        e_tank_kwh = getattr(d_day_k, "e_tank_kwh", None)
    n_per = horizon.n_periods
    relax: list[Relaxation] = []

    # --- thermal --------------------------------------------------------------------------
    hp = dev.hp
    r = dev.r_k_per_kw[:, None]
    a_per = thermal_decay(dev, horizon)
    t_out = horizon.mean(fc.t_out_c)[None, :]
    gain = horizon.mean(fc.q_gain_kw[:, hp]).T
    cop = plan_cop(dev, horizon, fc)
    th_rhs = (1.0 - a_per) * (t_out + r * gain - dev.setpoint_c[:, None])
    d0 = t_in_c[hp] - dev.setpoint_c
    q_cap = np.where(dev.hybrid, dev.hp_q_max_kw + BOILER_Q_MAX_KW, dev.hp_q_max_kw)[:, None]
    floor, ceil = -dev.comfort_band_k + COMFORT_TOL_K, dev.preheat_k - COMFORT_TOL_K
    d_lo = np.empty((dev.n_hp, n_per))
    d_hi = np.empty((dev.n_hp, n_per))
    lo, hi = np.minimum(floor, d0), np.maximum(ceil, d0)
    full = th_rhs + (1.0 - a_per) * r * q_cap
    for j in range(n_per):
        lo = np.minimum(floor, a_per[:, j] * lo + full[:, j])
        hi = np.maximum(ceil, a_per[:, j] * hi + th_rhs[:, j])
        d_lo[:, j], d_hi[:, j] = lo, hi
    short = -dev.comfort_band_k - d_lo
    for i, j in zip(*np.nonzero(short > 1e-6), strict=True):
        cause = "starts below the band" if d0[i] < -dev.comfort_band_k else "heat pump too small"
        relax.append(
            Relaxation(
                int(dev.households[hp[i]]),
                "comfort",
                k0 + int(horizon.state_step[j + 1]),
                float(short[i, j]),
                cause,
            )
        )

    # the swing rule judges the controlled temperature: the sun's and appliances' warmth
    # above the setpoint is left out (twin.kpi.comfort_measures). Its forecast: the path of a
    # thermostat that holds the setpoint and never pre-heats, from the current temperature
    # without the pre-heating's warming (d_day_k[2]: the HEMS's uncontrolled warmth)
    unc0 = d_day_k[2] if d_day_k is not None and len(d_day_k) > 2 else np.zeros(dev.n_hp)
    p = np.minimum(d0, 0.0) + unc0
    u = np.empty((dev.n_hp, n_per + 1))
    u[:, 0] = np.maximum(p, 0.0)
    gain_q = (1.0 - a_per) * r
    for j in range(n_per):
        q = (0.0 - a_per[:, j] * p - th_rhs[:, j]) / gain_q[:, j]
        q = np.minimum(np.maximum(q, 0.0), q_cap[:, 0])  # np.clip, without its overhead
        p = a_per[:, j] * p + th_rhs[:, j] + gain_q[:, j] * q
        u[:, j + 1] = np.maximum(p, 0.0)
    win = swing_window(dev, horizon, k0, d0 - u[:, 0], d_day_k)
    if win[0] is not None:  # the window on (state - u): shift its edge by u at every state
        win = (win[0] + u, win[1] + u, win[2])

    # --- EV ---------------------------------------------------------------------------------
    ev = dev.ev
    n_steps = horizon.n_steps
    home_all = horizon.all(fc.trips.home[:, ev]).T
    p_ub = dev.ev_p_max_kw[:, None] * home_all
    trip = horizon.sum(
        trips_at_departure(fc.trips.trip_kwh[:, ev], fc.trips.departure[:, ev])[:n_steps]
    ).T
    soc0 = ev_soc_kwh[ev].copy()
    cap = dev.ev_capacity_kwh
    step_kwh = CHARGE_EFFICIENCY * p_ub * horizon.dt_h[None, :]
    trip_eff = np.empty_like(trip)
    soc_max = np.empty((dev.n_ev, n_per + 1))
    soc_max[:, 0] = s = soc0
    for j in range(n_per):  # full power from now on: trip at arrival, public for what is missing
        public = np.maximum(trip[:, j] - s, 0.0)
        trip_eff[:, j] = trip[:, j] - public
        s = np.minimum(s - trip_eff[:, j] + step_kwh[:, j], cap)
        soc_max[:, j + 1] = s
    soc_min = np.zeros((dev.n_ev, n_per))
    # the reserve at every state, as far as full power can reach it
    soc_min[:] = np.minimum(dev.ev_reserve_kwh[:, None] + EV_TOL_KWH, soc_max[:, 1:])
    due = horizon_due(dev, fc.trips, k0, n_steps).due_kwh
    # every step something is due at, and the last state of the plan at or before it (a
    # departure: the car is gone after); due at state 0 (now): the guards take care of it
    s_f = np.flatnonzero(due.max(axis=1, initial=0.0) > 0)
    sig = np.searchsorted(horizon.state_step, s_f, side="right") - 1
    s_f, sig = s_f[sig > 0], sig[sig > 0]
    d, reach = due[s_f], soc_max[:, sig].T  # (due steps, n_ev)
    need = np.where(d > 0, d + EV_TOL_KWH, 0.0)
    # several due steps in one period: the largest need (max is exact in any order)
    np.maximum.at(soc_min.T, sig - 1, np.minimum(need, reach))
    gap = np.where(d > 0, d - reach, 0.0)
    for i, e in zip(*np.nonzero(gap > 1e-6), strict=True):
        relax.append(
            Relaxation(
                int(dev.households[ev[e]]),
                "ev_range",
                k0 + int(horizon.state_step[sig[i]]),
                float(gap[i, e]),
                "cannot charge enough in time at full power",
            )
        )

    # V2G: a bidirectional car is never discharged below what its owner keeps for V2G; the
    # plan keeps it there, but never charges for it (a car that comes home below it may
    # stay there: its floor is then where it would be without charging)
    v2g_p = np.zeros((dev.n_v2g, n_per))
    v2g_keep = np.zeros((dev.n_v2g, n_per))
    if dev.n_v2g:
        v = dev.v2g
        natural = np.maximum(soc0[v, None] - np.cumsum(trip_eff[v], axis=1), 0.0)
        v2g_keep = np.minimum(dev.v2g_reserve_kwh[:, None] + EV_TOL_KWH, natural)
        # and what it discharges within the horizon it has back by its end (at least where
        # it would be without V2G): the horizon has no value for energy after its end, and
        # a plan that sells the cars' energy now would leave the next one to buy it back
        v2g_keep[:, -1] = np.maximum(v2g_keep[:, -1], natural[:, -1])
        v2g_keep = np.minimum(v2g_keep, soc_max[v, 1:])
        soc_min[v] = np.maximum(soc_min[v], v2g_keep)
        v2g_p = dev.v2g_p_max_kw[:, None] * home_all[v]

    # --- hot-water tanks ------------------------------------------------------------------------
    tk = dev.tk
    t_out_p = horizon.mean(fc.t_out_c)
    tk_cop = dhw_cop(t_out_p[None, :], dev.tk_t_set_c[:, None], dev.hp_model)
    tk_draw = horizon.mean(tank_draws_kw(dev, fc, k0, n_steps)).T
    q_max_tk = dev.hp_q_max_kw[dev.tk_hp][:, None]
    tk_p_max = np.broadcast_to(q_max_tk / tk_cop, tk_cop.shape).copy()
    e0 = dev.tk_e_full_kwh.copy() if e_tank_kwh is None else np.asarray(e_tank_kwh, float)[tk]
    a_tk, b_tk = dev.tank_decay(horizon)
    e_min = np.empty((dev.n_tk, n_per))
    lo = e0.copy()
    margin = np.minimum(
        TANK_PLAN_MARGIN_L * dhw.draw_heat_kwh_per_litre(dev.tk_t_cold_c),
        0.5 * np.maximum(dev.tk_e_max_kwh - dev.tk_e_guard_kwh, 0.0),
    )
    target = dev.tk_e_guard_kwh + 1e-3 + margin
    for j in range(n_per):  # the level where full charging can hold it, else the best it can
        reach = a_tk[:, j] * lo + b_tk[:, j] * (q_max_tk[:, 0] - tk_draw[:, j])
        lo = np.minimum(target, np.maximum(reach, 0.0))
        e_min[:, j] = lo
    short_tk = dev.tk_e_guard_kwh[:, None] - e_min
    for i, j in zip(*np.nonzero(short_tk > 1e-3 + 1e-6), strict=True):
        relax.append(
            Relaxation(
                int(dev.households[tk[i]]),
                "hot_water",
                k0 + int(horizon.state_step[j + 1]),
                float(short_tk[i, j]),
                "heat pump cannot keep the tank at its thermostat's level",
            )
        )

    # --- households' inflexible load ----------------------------------------------------------
    p_inflex = horizon.mean(fc.p_base_kw - fc.p_pv_kw).T  # (base load includes standby)
    # a hybrid's heat pump is off below its bivalence point
    hp_p_max = dev.hp_q_max_kw[:, None] / cop
    hp_p_max = np.where(t_out_p[None, :] >= dev.hp_t_bivalent_c[:, None], hp_p_max, 0.0)

    return DeviceInputs(
        k0=k0,
        th_rhs_k=th_rhs,
        cop=cop,
        hp_p_max_kw=hp_p_max,
        d0_k=d0,
        d_lo_k=d_lo,
        d_hi_k=d_hi,
        ev_p_max_kw=p_ub,
        ev_trip_kwh=trip_eff,
        ev_soc0_kwh=soc0,
        ev_soc_min_kwh=soc_min,
        bat_soc0_kwh=bat_soc_kwh[dev.bat].copy(),
        p_inflex_kw=p_inflex,
        relaxations=relax,
        tk_cop=tk_cop,
        tk_draw_kw=tk_draw,
        tk_p_max_kw=tk_p_max,
        tk_e0_kwh=e0,
        tk_e_min_kwh=e_min,
        v2g_p_max_kw=v2g_p,
        v2g_keep_kwh=v2g_keep,
        win_lb_k=win[0],
        win_ub_k=win[1],
        win_jump_k=win[2],
        win_shift_k=u if win[0] is not None else None,
    )


class MeasuredToday(tuple):
    """``(min, max)`` of today's measured indoor temperatures minus setpoint (the swing rule's
    ``d_day_k``) that also carries the households' measured tank states (``e_tank_kwh``,
    ``(n,)``): the measured state a re-plan starts from, for callers that pass only
    ``d_day_k`` on to :func:`device_inputs`."""

    e_tank_kwh: np.ndarray | None

    def __new__(cls, lo: np.ndarray, hi: np.ndarray, e_tank_kwh: np.ndarray | None = None):
        obj = super().__new__(cls, (lo, hi))
        obj.e_tank_kwh = e_tank_kwh
        return obj


#: Bound standing for "any" on the swing window's edge and jump (K).
WINDOW_FREE_K = 50.0


def swing_window(
    dev: DeviceSet,
    horizon: Horizon,
    k0: int,
    d0: np.ndarray,
    d_day_k: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """The swing rule in the plan: each calendar day's states lie in a window
    ``[lo, lo + swing]`` whose lower edge ``lo`` the plan chooses per day; today's window must
    hold what today's states already were. Returns the bounds of ``lo`` per state and the jump
    ``lo`` may make at each state (at the first state of a new day), or Nones without the rule.

    A state belongs to the day in which it is reached: the state at ``k0 + s`` ends step
    ``k0 + s - 1`` (the KPIs measure a day's swing over the ends of its 96 steps alike).
    """
    if not np.isfinite(dev.swing_k) or dev.n_hp == 0:
        return None, None, None
    t = k0 + horizon.state_step
    day = (t - 1) // STEPS_PER_DAY
    jump = np.where(np.r_[False, day[1:] != day[:-1]], WINDOW_FREE_K, 0.0)
    lo_real, hi_real = (d0, d0) if d_day_k is None else d_day_k[:2]
    lo_real, hi_real = np.minimum(lo_real, d0), np.maximum(hi_real, d0)
    lb = np.full((dev.n_hp, len(t)), -WINDOW_FREE_K)
    ub = np.full((dev.n_hp, len(t)), WINDOW_FREE_K)
    today = day == day[0]
    width = dev.swing_k - 2 * COMFORT_TOL_K
    lb[:, today] = (hi_real - width)[:, None]
    ub[:, today] = lo_real[:, None]
    lb = np.minimum(lb, ub)  # today already broken: the slack in the plan reports it
    return lb, ub, jump


def horizon_due(dev: DeviceSet, trips: TripSchedule, k0: int, n_steps: int) -> EvDue:
    """What the EVs of ``dev`` owe over the first ``n_steps`` of a forecast's ``trips`` from
    ``k0`` (:func:`twin.service.ev_due`; the forecast's extra rows let a trip that ends after
    the horizon count at its departure inside it)."""
    ev = dev.ev
    return ev_due(
        trips.home[:n_steps, ev],
        trips.departure[:n_steps, ev],
        trips_at_departure(trips.trip_kwh[:, ev], trips.departure[:, ev])[:n_steps],
        k0,
        dev.deadline_step,
        dev.ev_need_kwh,
        dev.ev_reserve_kwh,
        dev.ev_capacity_kwh,
    )


def ev_guards(
    dev: DeviceSet, trips: TripSchedule, k0: int, n_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """For every EV and step of a horizon, what keeps every check of the horizon reachable
    (range at the deadline or departure, trip + reserve at a departure): the equivalent need
    ``max over later checks s of (due_s + trips arriving before s − full-power charging in
    the home steps after this one before s)``, so ``need − soc`` is the energy this step must
    store (the HEMS guard). Returns ``(need, home_after)`` of shape ``(n_ev, n_steps)``;
    ``home_after`` is 0 (folded into ``need``); ``need`` is ``-inf`` where nothing is due.
    """
    ev = dev.ev
    due = horizon_due(dev, trips, k0, n_steps).due_kwh  # (n_steps + 1, n_ev)
    home = trips.home[:n_steps, ev]
    trip = trips.trip_kwh[:n_steps, ev]
    e = CHARGE_EFFICIENCY * DT_H * dev.ev_p_max_kw
    zero = np.zeros((1, dev.n_ev))
    c_home = np.concatenate([zero, np.cumsum(home, axis=0)], axis=0)  # (n_steps + 1, n_ev)
    c_trip = np.concatenate([zero, np.cumsum(trip, axis=0)], axis=0)
    m = np.where(due > 0, due + c_trip - e * c_home, -np.inf)
    rmax = np.maximum.accumulate(m[::-1], axis=0)[::-1]  # max over s >= x
    need = (rmax[1:] - c_trip[1:] + e * c_home[1:]).T  # step o: checks at states >= o + 1
    return need, np.zeros((dev.n_ev, n_steps))
