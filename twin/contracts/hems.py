"""The household side shared by every contract whose HEMSs carry out a plan (the performance
contract and the tariff HEMS): planning terms and cadence, who signs, the service guards
that secure comfort and EV range whatever the plan says, and the service report measured on
the simulated result.

* :class:`PlanningTerms` — service levels, horizon and re-plan cadence (validated once);
* :func:`draw_signed` — which households sign, from the contract's seeded stream;
* :class:`HemsDevices` — index arrays and device parameters the HEMSs use every interval;
* :func:`follow_heat_plan`, :func:`follow_tank_plan`, :func:`follow_ev_plan` — a plan carried
  out with its guards: never let the indoor temperature fall below the comfort band, never let
  the hot-water tank fall below the level at which its own thermostat would charge it (the
  heat pump's capacity left after the comfort guard), never fall behind the EV deadline and
  never discharge a bidirectional car below what the deadline, the reserve and its owner's
  V2G reserve need;
* :func:`service_misses` — service levels missed in the simulated result, never silent.

The firm behaviour every contract falls back to is the physics layer's
(:func:`twin.devices.household.firm_controls`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from twin.devices import dhw
from twin.devices.ev import CHARGE_EFFICIENCY
from twin.devices.heatpump import dhw_cop, electric_power_kw, heat_for_power_kw, min_output_kw
from twin.errors import TwinError
from twin.fleet import Fleet
from twin.kpi import EV_CHECK_TOL_KWH, comfort_measures, ev_measures
from twin.optim.devices import COMFORT_TOL_K, EV_TOL_KWH, DeviceSet
from twin.optim.horizon import Horizon
from twin.service import DHW_CHECK_TOL_KWH, ServiceLevels, dhw_measures, thermostat_q_max_kw
from twin.timegrid import DT_H, STEPS_PER_DAY, STEPS_PER_HOUR
from twin.view import Outcome, Present

__all__ = [
    "DETAIL_MAX",
    "DayExtremes",
    "HemsDevices",
    "PlanningTerms",
    "ServiceMisses",
    "draw_signed",
    "follow_ev_plan",
    "follow_heat_plan",
    "follow_tank_plan",
    "service_misses",
]

#: Entries kept in the detailed KPI lists (the counts and totals cover everything).
DETAIL_MAX = 50
#: A tank below its thermostat's level (after a large draw) recovers this share of the
#: deficit each step, whatever a band allows (:func:`follow_tank_plan`) ...
TANK_RECOVERY_PER_STEP = 0.25
#: Whatever a band allows, a tank is kept at (or brought back to, as above) the thermostat's
#: level or this much hot water, whichever is less (litres at 60 °C: one bath); above it a tank
#: recovers its thermostat's level inside the band.
TANK_HARD_RESERVE_L = 78.0


def _bad(key: str, value: Any, want: str) -> TwinError:
    return TwinError(f"contract.{key}={value!r} is invalid: {want}")


@dataclass(frozen=True, kw_only=True)
class PlanningTerms:
    """Service levels and planning settings of a HEMS that follows a plan.

    Attributes
    ----------
    comfort_band_k, preheat_k : float
        Comfort band below the setpoint; allowed pre-heating above it.
    comfort_rule, comfort_swing_k : str, float
        ``swing``: the indoor temperature also varies by no more than ``comfort_swing_k``
        within a day (the E.DSO paper's wording); ``band``: the band alone.
    ev_range_km, ev_deadline_h : float
        EV range due at the deadline (hour of day) or at departure, whichever comes first.
    ev_reserve_km : float
        Range kept at all times for an unplanned trip (:mod:`twin.service`).
    comfort_margin_k : float
        Kept free below the top of the comfort band and within the daily swing for heat the
        HEMS cannot foresee (appliance and solar gains that differ from their forecast): the
        plans and the HEMS pre-heat to ``preheat_k - comfort_margin_k`` and keep the day's
        swing within ``comfort_swing_k - comfort_margin_k``. The service is still measured on
        the full terms.
    horizon_h, resolution_h, fine_h : float
        Rolling horizon, plan period length, optional leading 15-minute part.
    replan_every_h, replan_at_h : float
        Re-plan cadence and the hour of day it is anchored at (the first plan is made at the
        start).
    """

    comfort_band_k: float = 1.0
    preheat_k: float = 1.0
    comfort_rule: str = "swing"
    comfort_swing_k: float = 1.0
    ev_range_km: float = 150.0
    ev_deadline_h: float = 6.0
    ev_reserve_km: float = 30.0
    comfort_margin_k: float = 0.0
    horizon_h: float = 24.0
    resolution_h: float = 1.0
    fine_h: float = 0.0
    replan_every_h: float = 24.0
    replan_at_h: float = 12.0

    def __post_init__(self) -> None:
        for key in ("horizon_h", "replan_every_h", "resolution_h"):
            v = getattr(self, key)
            if v <= 0 or abs(v * STEPS_PER_HOUR - round(v * STEPS_PER_HOUR)) > 1e-9:
                raise _bad(key, v, "give a positive whole number of 15-minute steps (hours)")
        if self.replan_every_h > self.horizon_h:
            raise _bad(
                "replan_every_h",
                self.replan_every_h,
                f"re-plan at least every horizon_h={self.horizon_h} h",
            )
        if not 0.0 <= self.replan_at_h < 24.0:
            raise _bad("replan_at_h", self.replan_at_h, "give an hour of the day (0 to below 24)")
        if not 0.0 <= self.fine_h <= self.horizon_h:
            raise _bad("fine_h", self.fine_h, "give hours from 0 to horizon_h")
        if self.comfort_band_k <= COMFORT_TOL_K:
            raise _bad("comfort_band_k", self.comfort_band_k, f"give more than {COMFORT_TOL_K} K")
        if self.comfort_rule not in ("band", "swing"):
            raise _bad("comfort_rule", self.comfort_rule, "use band or swing")
        if self.comfort_rule == "swing" and self.comfort_swing_k <= 2 * COMFORT_TOL_K:
            raise _bad(
                "comfort_swing_k", self.comfort_swing_k, f"give more than {2 * COMFORT_TOL_K} K"
            )
        if not 0.0 <= self.comfort_margin_k < min(self.comfort_swing_k, 1.0) / 2:
            raise _bad(
                "comfort_margin_k",
                self.comfort_margin_k,
                "give K from 0 to below half the swing (and 0.5 K)",
            )
        if self.ev_reserve_km < 0 or self.ev_reserve_km > self.ev_range_km:
            raise _bad("ev_reserve_km", self.ev_reserve_km, "give km from 0 to ev_range_km")

    @classmethod
    def from_config(cls, cfg: Any, **extra: Any) -> Any:
        """The terms from a contract config (keys that are not terms are ignored)."""
        names = {f.name for f in fields(cls)}
        values = {k: cfg[k] for k in names if k in cfg}
        return cls(**{**values, **extra})

    def horizon(self) -> Horizon:
        return Horizon.from_segments(
            [(self.fine_h, 0.25), (self.horizon_h - self.fine_h, self.resolution_h)]
        )

    @property
    def cadence_steps(self) -> int:
        return int(round(self.replan_every_h * STEPS_PER_HOUR))

    @property
    def offset_steps(self) -> int:
        return int(round(self.replan_at_h * STEPS_PER_HOUR))

    def is_replan_step(self, k: int, first: int = 0) -> bool:
        """Re-plan at the contract's first step and every ``replan_every_h`` from
        ``replan_at_h`` o'clock."""
        return k == first or (k - self.offset_steps) % self.cadence_steps == 0

    def service_levels(self) -> ServiceLevels:
        """The terms' service levels, measured as every run measures them."""
        return ServiceLevels(
            comfort_band_k=self.comfort_band_k,
            comfort_above_k=self.preheat_k,
            comfort_rule=self.comfort_rule,
            comfort_swing_k=self.comfort_swing_k,
            ev_range_km=self.ev_range_km,
            ev_deadline_h=self.ev_deadline_h,
            ev_reserve_km=self.ev_reserve_km,
        )

    def device_set(self, fleet: Fleet, households: np.ndarray) -> DeviceSet:
        """The controllable devices of ``households`` with these service levels."""
        return DeviceSet.from_fleet(
            fleet,
            households,
            self.comfort_band_k,
            self.ev_range_km,
            self.ev_deadline_h,
            max(self.preheat_k - self.comfort_margin_k, 0.0),
            ev_reserve_km=self.ev_reserve_km,
            swing_k=(
                self.comfort_swing_k - self.comfort_margin_k
                if self.comfort_rule == "swing"
                else None
            ),
        )


def draw_signed(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """``(n,)`` which households signed: ``round(share * n)`` of them at random."""
    n_signed = int(round(share * n))
    signed = np.zeros(n, bool)
    if n_signed == n:
        signed[:] = True
    else:
        signed[rng.permutation(n)[:n_signed]] = True
    return signed


@dataclass(frozen=True)
class HemsDevices:
    """Index arrays and device parameters the HEMSs of ``households`` use every interval.

    ``g_*`` are fleet positions of the households with a heat pump / EV / battery among the
    planning households (in :class:`~twin.optim.devices.DeviceSet` order), ``*_pos`` their
    positions among the planning households.
    """

    g_hp: np.ndarray
    g_ev: np.ndarray
    g_bat: np.ndarray
    g_no_ev: np.ndarray
    hp_pos: np.ndarray
    ev_pos: np.ndarray
    bat_pos: np.ndarray
    hybrid: np.ndarray
    floor_c: np.ndarray
    setpoint_c: np.ndarray
    ceiling_k: float
    swing_k: float
    r_hp: np.ndarray
    a_hp: np.ndarray
    qmax_hp: np.ndarray
    ev_pmax: np.ndarray
    ev_cap: np.ndarray
    ev_reserve: np.ndarray
    ev_step_kwh: float
    bat_pmax: np.ndarray
    bat_eta: np.ndarray
    # hot-water tanks: fleet positions, positions among the planning households and into the
    # heat-pump arrays, the tank's step and levels, what a HEMS expects its taps to draw
    g_tk: np.ndarray
    tk_pos: np.ndarray
    tk_hp: np.ndarray
    tk_a: np.ndarray
    tk_b: np.ndarray
    tk_guard: np.ndarray
    tk_hard: np.ndarray  # the reserve no band may cut into (one bath), kWh
    tk_e_max: np.ndarray
    tk_t_set: np.ndarray
    tk_t_max: np.ndarray
    tk_c: np.ndarray  # kWh per K
    tk_t_cold: float
    tk_draw_day: np.ndarray  # (96, n_tk) expected draws by step of the day (kW heat)
    hp_model: Any
    # V2G (over the EV arrays): bidirectional, its discharge rating, the owner's reserve
    ev_v2g: np.ndarray
    ev_p_dis: np.ndarray
    ev_v2g_reserve: np.ndarray
    ev_eta_dis: float
    # derived once (every interval uses them): the comfort ceiling, the 1R1C step's
    # ``1 - a`` and ``R (1 - a)`` (:func:`twin.devices.thermal.heat_to_reach`), each tank's
    # heat pump's capacity, whether any car is bidirectional
    ceil_c: np.ndarray = field(init=False, repr=False)
    one_minus_a: np.ndarray = field(init=False, repr=False)
    heat_den: np.ndarray = field(init=False, repr=False)
    tk_qmax: np.ndarray = field(init=False, repr=False)
    any_v2g: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        derived = {
            "ceil_c": self.setpoint_c + self.ceiling_k,
            "one_minus_a": 1.0 - self.a_hp,
            "heat_den": self.r_hp * (1.0 - self.a_hp),
            "tk_qmax": self.qmax_hp[self.tk_hp],
            "any_v2g": bool(self.ev_v2g.any()),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @classmethod
    def build(cls, fleet: Fleet, dev: DeviceSet) -> HemsDevices:
        h = dev.households
        g_hp, g_ev, g_bat = h[dev.hp], h[dev.ev], h[dev.bat]
        g_tk = h[dev.tk]
        tank = dhw.tank_of(fleet)
        a, b = dhw.tank_linear_model(tank)
        draw_day = dhw.expected_draw_kw(
            fleet.persons[g_tk],
            fleet.dhw_litres_per_person_day[g_tk],
            STEPS_PER_DAY,
            0,
            fleet.dhw_model.t_cold_c,
        )
        v2g = np.zeros(len(g_ev), bool)
        v2g[dev.v2g] = True
        no_ev = np.ones(len(h), bool)
        no_ev[dev.ev] = False
        return cls(
            g_hp=g_hp,
            g_ev=g_ev,
            g_bat=g_bat,
            g_no_ev=h[no_ev],
            hp_pos=dev.hp,
            ev_pos=dev.ev,
            bat_pos=dev.bat,
            hybrid=dev.hybrid,
            floor_c=dev.setpoint_c - dev.comfort_band_k + 0.1 * COMFORT_TOL_K,
            setpoint_c=dev.setpoint_c,
            ceiling_k=dev.preheat_k - 0.1 * COMFORT_TOL_K,
            swing_k=dev.swing_k,
            r_hp=fleet.r_k_per_kw[g_hp],
            a_hp=fleet.a_step[g_hp],
            qmax_hp=fleet.hp_q_max_kw[g_hp],
            ev_pmax=fleet.ev_p_max_kw[g_ev],
            ev_cap=fleet.ev_capacity_kwh[g_ev],
            ev_reserve=dev.ev_reserve_kwh,
            ev_step_kwh=CHARGE_EFFICIENCY * DT_H,
            bat_pmax=fleet.bat_p_max_kw[g_bat],
            bat_eta=fleet.bat_eta[g_bat],
            g_tk=g_tk,
            tk_pos=dev.tk,
            tk_hp=dev.tk_hp,
            tk_a=a[g_tk],
            tk_b=b[g_tk],
            tk_guard=dev.tk_e_guard_kwh,
            tk_hard=np.full(
                len(g_tk), TANK_HARD_RESERVE_L * dhw.draw_heat_kwh_per_litre(tank.t_cold_c)
            ),
            tk_e_max=dev.tk_e_max_kwh,
            tk_t_set=dev.tk_t_set_c,
            tk_t_max=tank.t_max_c[g_tk],
            tk_c=tank.c_kwh_per_k[g_tk],
            tk_t_cold=float(tank.t_cold_c),
            tk_draw_day=draw_day,
            hp_model=fleet.hp_model,
            ev_v2g=v2g,
            ev_p_dis=np.where(v2g, fleet.ev_p_dis_max_kw[g_ev], 0.0),
            ev_v2g_reserve=np.where(v2g, fleet.ev_v2g_reserve_kwh[g_ev], 0.0),
            ev_eta_dis=dev.v2g_eta,
        )


@dataclass
class HeatRequest:
    """The heat pumps' requests of one step (arrays over the planning heat pumps)."""

    q_req_kw: np.ndarray  # heat asked for (heat pump + a hybrid's boiler), thermal
    q_cap_kw: np.ndarray  # the heat pump's thermal limit this step
    p_hp_kw: np.ndarray  # the heat pump's electric power it implies (cycling included)
    q_guard_kw: np.ndarray  # heat that keeps the home at the comfort floor
    cop: np.ndarray  # full-output COP
    q_min_kw: np.ndarray  # the heat pump's minimum output (below it, it cycles)

    def electric(self, c: HemsDevices, q_kw: np.ndarray, full: np.ndarray | None = None):
        """Electricity for space heat ``q_kw`` (no cycling loss where ``full``: the heat pump
        also charges the tank this step and runs at full output)."""
        q_min = self.q_min_kw if full is None else np.where(full, 0.0, self.q_min_kw)
        return electric_power_kw(q_kw, self.cop, q_min, c.hp_model.cycling_cd)

    def heat(self, c: HemsDevices, p_kw: np.ndarray, full: np.ndarray | None = None):
        """Space heat the electricity ``p_kw`` gives (inverse of :meth:`electric`)."""
        q_min = self.q_min_kw if full is None else np.where(full, 0.0, self.q_min_kw)
        return heat_for_power_kw(p_kw, self.cop, q_min, c.hp_model.cycling_cd)


class DayExtremes:
    """Each heat-pump home's lowest and highest *controlled* indoor temperature (minus
    setpoint) among today's measured states, for the swing rule. The state at the start of step
    ``k`` ends step ``k - 1``, so it belongs to day ``(k - 1) // 96`` (as the KPIs count a day).

    Controlled, as the KPIs measure it (:func:`twin.kpi.comfort_measures`): warmth above the
    setpoint counts only as far as the home is warmer than a thermostat holding the setpoint
    would have kept it; the sun's and the appliances' warmth is taken out. The HEMS follows
    that difference step by step (:func:`twin.service.preheat_warming_k`) from the heat its
    heat pump reported and the weather and gains it saw; ``uncontrolled_k`` is the rest of the
    current warmth (the plans' swing window leaves it out as well).
    """

    def __init__(self, c: HemsDevices) -> None:
        self.c = c
        self.day = None
        n = len(c.g_hp)
        self.lo = self.hi = np.zeros(n)
        self.k_last: int | None = None
        self.y_k = np.zeros(n)  # warmer than the thermostat's home (K)
        self.uncontrolled_k = np.zeros(n)
        self._seen: tuple[int, np.ndarray, float, np.ndarray] | None = None
        self._q_max = thermostat_q_max_kw(c.qmax_hp, c.hybrid)

    def at(
        self, k: int, t_in_c: np.ndarray, heat_of: Any = None, x: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Include the state at the start of step ``k``; today's ``(min, max)`` and the
        current uncontrolled warmth (K). ``heat_of(k_start, k_end)``: the heat the homes'
        heating delivered (``(steps, n_hp)``); ``x``: the present step (weather, gains)."""
        c = self.c
        t = t_in_c[c.g_hp]
        d = t - c.setpoint_c
        if self.k_last is None or k > self.k_last:
            seen = self._seen
            if heat_of is not None and seen is not None and seen[0] == k - 1:
                _, t_start, t_out, gain_kw = seen
                g = (1.0 - c.a_hp) * c.r_hp
                t_cf = t_start - self.y_k
                need = (c.setpoint_c - c.a_hp * t_cf - (1.0 - c.a_hp) * t_out) / g - gain_kw
                q_cf = np.minimum(np.maximum(need, 0.0), self._q_max)
                q = heat_of(k - 1, k)[-1]
                self.y_k = c.a_hp * self.y_k + g * (q - q_cf)
            elif self.k_last is not None:  # steps not seen: the difference decays
                self.y_k = c.a_hp ** (k - self.k_last) * self.y_k
            self.k_last = k
        if x is not None:
            self._seen = (k, t.copy(), float(x.t_out_c), x.q_gain_kw[c.g_hp].copy())
        warm = np.maximum(d, 0.0)
        self.uncontrolled_k = warm - np.minimum(np.maximum(self.y_k, 0.0), warm)
        ctrl = d - self.uncontrolled_k
        day = (k - 1) // STEPS_PER_DAY
        if day != self.day:
            self.day, self.lo, self.hi = day, ctrl.copy(), ctrl.copy()
        else:
            self.lo, self.hi = np.minimum(self.lo, ctrl), np.maximum(self.hi, ctrl)
        return self.lo, self.hi, self.uncontrolled_k


def follow_heat_plan(
    c: HemsDevices,
    t_in_c: np.ndarray,
    x: Present,
    p_hp_plan_kw: np.ndarray,
    q_boiler_plan_kw: np.ndarray,
    day: tuple[np.ndarray, np.ndarray] | None = None,
) -> HeatRequest:
    """The planned heat (heat pump power, a hybrid's boiler heat), never below the floor and,
    with the swing rule, within today's window (``day``: today's ``(min, max)`` measured
    temperature minus setpoint, :class:`DayExtremes`; the floor wins if they conflict)."""
    g = c.g_hp
    cop = x.cop[g]
    floor_c, ceil_c = c.floor_c, c.ceil_c
    if day is not None and np.isfinite(c.swing_k) and x.k % STEPS_PER_DAY:
        width = c.swing_k - 0.2 * COMFORT_TOL_K
        floor_c = np.maximum(floor_c, c.setpoint_c + day[1] - width)
        ceil_c = np.minimum(ceil_c, c.setpoint_c + day[0] + width)
    # heat_to_reach (twin.devices.thermal) of both targets, its shared terms computed once
    kept = c.a_hp * t_in_c[g]
    lost = c.one_minus_a * x.t_out_c
    gain = x.q_gain_kw[g]
    q_guard = (floor_c - kept - lost) / c.heat_den - gain
    np.maximum(q_guard, 0.0, out=q_guard)
    q_ceil = (ceil_c - kept - lost) / c.heat_den - gain
    # the planned electricity as heat at the COP the heat pump really has (cycling below its
    # minimum output: the plan's COP is the period's estimate)
    q_min = min_output_kw(c.qmax_hp, x.t_out_c, model=c.hp_model)
    cd = c.hp_model.cycling_cd
    q_hp_plan = heat_for_power_kw(p_hp_plan_kw, cop, q_min, cd)
    q_req = np.maximum(np.minimum(q_hp_plan + q_boiler_plan_kw, q_ceil), q_guard)
    # a hybrid's heat pump is capped at its planned electricity (the physics reads the cap as
    # heat at the full-output COP: twin.devices.household.Controls)
    q_cap = np.where(c.hybrid, p_hp_plan_kw * cop, c.qmax_hp)
    q_sh = np.minimum(q_req, np.where(c.hybrid, q_hp_plan, c.qmax_hp))
    p_hp = electric_power_kw(q_sh, cop, q_min, cd)
    return HeatRequest(q_req, q_cap, p_hp, q_guard, cop, q_min)


@dataclass
class TankRequest:
    """The tanks' requests of one step (arrays over the planning tanks)."""

    q_req_kw: np.ndarray  # heat asked for the tank (at least what keeps the thermostat's level)
    q_guard_kw: np.ndarray  # heat that keeps the hard reserve: never cut by a band
    p_kw: np.ndarray  # the electricity it implies
    cop: np.ndarray


def follow_tank_plan(
    c: HemsDevices,
    e_tank_kwh: np.ndarray,
    x: Present,
    p_dhw_plan_kw: np.ndarray,
    q_sh_guard_kw: np.ndarray | None = None,
) -> TankRequest:
    """The planned charging of each tank, never letting it end the step below the level at
    which its own thermostat would start charging (given the draws its HEMS expects now),
    never above full at ``t_max_c``, and leaving the heat pump the capacity the comfort guard
    needs (``q_sh_guard_kw``, over the planning heat pumps; the physics still keeps the hot
    zone from running out whatever is asked): at that level the tank stays there; below it
    (after a bath) it recovers :data:`TANK_RECOVERY_PER_STEP` of the deficit each step. A band
    may cut the charging down to ``q_guard_kw``, which does the same for the smaller of that
    level and one bath (:data:`TANK_HARD_RESERVE_L`)."""
    g = c.g_tk
    e = e_tank_kwh[g]
    draw = c.tk_draw_day[x.k % STEPS_PER_DAY]
    cop = tank_cop(c, e, x.t_out_c)
    q_max = c.tk_qmax
    if q_sh_guard_kw is not None:
        q_max = np.maximum(q_max - q_sh_guard_kw[c.tk_hp], 0.0)
    q_room = np.maximum((c.tk_e_max - c.tk_a * e) / c.tk_b + draw, 0.0)

    def heat_to(level: np.ndarray) -> np.ndarray:
        # at ``level`` or above: stay there; below it (after a bath): recover a quarter of the
        # deficit each step
        target = np.minimum(level, e + TANK_RECOVERY_PER_STEP * np.maximum(level - e, 0.0))
        return np.minimum(np.maximum((target - c.tk_a * e) / c.tk_b + draw, 0.0), q_room)

    q_soft = np.minimum(heat_to(c.tk_guard + 1e-3), q_max)  # the thermostat's level
    q_guard = np.minimum(heat_to(np.minimum(c.tk_hard, c.tk_guard + 1e-3)), q_soft)  # a bath
    # the planned electricity as heat at the COP the tank is charged at now
    q_req = np.minimum(
        np.maximum(np.maximum(p_dhw_plan_kw * cop, q_soft), 0.0), np.minimum(q_room, q_max)
    )
    return TankRequest(q_req, q_guard, q_req / cop, cop)


def tank_cop(c: HemsDevices, e: np.ndarray, t_out_c: float) -> np.ndarray:
    """Hot-water COP at the temperature a tank is charged at this step (its setpoint, or its
    mean temperature when boosted above it; :func:`twin.devices.dhw.charging_temperature_c`)."""
    t_charge = np.minimum(np.maximum(c.tk_t_cold + e / c.tk_c, c.tk_t_set), c.tk_t_max)
    return dhw_cop(t_out_c, t_charge, c.hp_model)


def follow_ev_plan(
    c: HemsDevices,
    ev_soc_kwh: np.ndarray,
    x: Present,
    p_ev_plan_kw: np.ndarray,
    need_kwh: np.ndarray,
    home_after: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(request, guard)`` per planning EV: the planned power, never behind the deadline
    (``guard`` is the least power that keeps the deadline reachable, within what the car can
    take this step). A bidirectional car may discharge (a negative plan) while that keeps
    every later check reachable and the car above its reserve and its owner's V2G reserve:
    its ``guard`` is then negative, the largest discharge allowed."""
    e = c.g_ev
    soc = np.maximum(ev_soc_kwh[e] - x.trip_kwh[e], 0.0)
    room = np.minimum(c.ev_pmax, np.maximum(c.ev_cap - soc, 0.0) / c.ev_step_kwh) * x.home[e]
    behind = need_kwh + 0.5 * EV_TOL_KWH - soc - c.ev_step_kwh * c.ev_pmax * home_after
    guard = np.where(np.isfinite(behind), np.maximum(behind / c.ev_step_kwh, 0.0), 0.0)
    # the reserve first: a car below it charges at full power until it is back
    guard = np.maximum(guard, (c.ev_reserve + 0.5 * EV_TOL_KWH - soc) / c.ev_step_kwh)
    guard = np.minimum(guard, room)
    if c.any_v2g:
        floor = np.maximum(np.where(np.isfinite(need_kwh), need_kwh, 0.0), c.ev_reserve)
        floor = np.maximum(floor, c.ev_v2g_reserve) + EV_TOL_KWH
        dis = np.minimum(np.maximum((soc - floor) * c.ev_eta_dis / DT_H, 0.0), c.ev_p_dis)
        dis = dis * x.home[e]
        guard = np.where(c.ev_v2g & (guard <= 0.0), -dis, guard)
    return np.minimum(np.maximum(p_ev_plan_kw, guard), room), guard


@dataclass
class ServiceMisses:
    """Service levels missed in the simulated result."""

    comfort_households: int
    ev_deadlines: int
    ev_reserve_departures: int
    details: list[dict[str, Any]]
    hot_water_days: int = 0


def service_misses(
    fleet: Fleet,
    outcome: Outcome,
    households: np.ndarray,
    levels: ServiceLevels,
    who: str,
) -> ServiceMisses:
    """Comfort (band and swing) and EV (range, reserve) misses of ``households`` (bool mask)
    over the reported steps, measured as :mod:`twin.service` defines them; logged as a
    warning, never silent."""
    log, rep = outcome.log, outcome.report
    cm = comfort_measures(
        log["t_in_c"][rep],
        (log["q_hp_kw"] + log["q_boiler_kw"])[rep],
        fleet,
        levels,
        log["t_out_c"][rep],
        log["q_gain_kw"][rep],
        outcome.start_state["t_in_c"],
    )
    em = ev_measures(
        log["ev_soc_kwh"][rep],
        outcome.start_state["ev_soc_kwh"],
        outcome.reported_trips,
        fleet,
        levels,
    )
    details: list[dict[str, Any]] = []
    missed = np.flatnonzero(households & fleet.has_hp & (~cm.day_met).any(axis=0))
    for h in missed[:DETAIL_MAX]:
        day = int(np.argmax(~cm.day_met[:, h]))
        rows = slice(day * STEPS_PER_DAY, (day + 1) * STEPS_PER_DAY)
        details.append(
            {
                "household": int(h),
                "term": "comfort",
                "day": day,
                "below_k": round(float(cm.below_k[rows, h].max()), 4),
                "above_k": round(float(cm.above_k[rows, h].max()), 4),
                "swing_k": round(float(cm.swing_k[day, h]), 4),
            }
        )
    short = np.where(em.range_checked & households, em.range_short_kwh, 0.0)
    days, hh = np.nonzero(short > EV_CHECK_TOL_KWH)
    for d, h in zip(days, hh, strict=True):
        if len(details) >= DETAIL_MAX:
            break
        details.append(
            {
                "household": int(h),
                "term": "ev_range",
                "day": int(d),
                "at_departure": bool(em.range_at_departure[d, h]),
                "amount": round(float(short[d, h]), 4),
                "unit": "kWh short",
            }
        )
    gone = np.where(em.range_checked & households, em.range_unreachable_kwh, 0.0)
    for d, h in zip(*np.nonzero(gone > EV_CHECK_TOL_KWH), strict=True):
        if len(details) >= DETAIL_MAX:
            break
        details.append(
            {
                "household": int(h),
                "term": "ev_range_unreachable",
                "day": int(d),
                "amount": round(float(gone[d, h]), 4),
                "unit": "kWh no charging could reach",
            }
        )
    reserve = (em.departure_short_kwh > EV_CHECK_TOL_KWH) & households
    n_hw = 0
    if "dhw_draw_kw" in log:
        hw = dhw_measures(
            log["dhw_draw_kw"][rep],
            log["dhw_delivered_kw"][rep],
            fleet.has_tank & households,
            dhw.deliverable_kw(fleet),
        )
        bad_hw = ~hw.day_met & (fleet.has_tank & households)
        n_hw = int(bad_hw.sum())
        for d, h in zip(*np.nonzero(bad_hw), strict=True):
            if len(details) >= DETAIL_MAX:
                break
            details.append(
                {
                    "household": int(h),
                    "term": "hot_water",
                    "day": int(d),
                    "amount": round(float(hw.day_shortfall_kwh[d, h]), 4),
                    "unit": f"kWh not delivered (> {DHW_CHECK_TOL_KWH:g})",
                }
            )
    if len(missed) or len(days) or reserve.any() or n_hw:
        logging.getLogger(f"twin.{who}").warning(
            "%s: service levels missed in the simulated result: %d household(s) outside the "
            "comfort terms, %d EV range check(s) short, %d departure(s) below trip + reserve, "
            "%d household-day(s) short of hot water",
            who,
            len(missed),
            len(days),
            int(reserve.sum()),
            n_hw,
        )
    return ServiceMisses(int(len(missed)), int(len(days)), int(reserve.sum()), details, n_hw)
