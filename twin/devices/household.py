"""One time step of every household at once: heat pump (space heat and hot water) and building,
hot-water tank, EV (with vehicle-to-grid), battery, PV, base load.

The contract's HEMS decides *requests* (:class:`Controls`); this module applies device limits and
physics and returns what actually happened. Inputs that depend only on weather and the fleet
(gains, COP, PV, base load, hot-water draws, trips) are precomputed for the whole window in
:class:`Exogenous`.

The heat pump as measured (:mod:`twin.devices.heatpump`): the COP of a step is the field COP at
the heating-curve flow temperature (hplib regression x defrost x field factor, ``Exogenous.cop``)
times EN 14825's cycling degradation when the space heat asked is below the unit's minimum
output (``min_modulation`` of its output at full speed); its standby is an always-on load
counted with the base load (``Exogenous.p_base_kw``). The COP therefore depends
on the power: planners keep a per-period COP at their forecast operating point, the physics
here applies the true one. Its thermal capacity is shared: hot water first (the diverting
valve gives the tank the quarter-hour it needs, at the hot-water COP), space heat from what is
left. A hybrid's heat pump runs at or above its bivalence point and, with the price switch,
only while its heat is cheaper than the boiler's (the unit's own controller, where no contract
caps it); the boiler covers the rest.

Hot water (:mod:`twin.devices.dhw`): one tank per all-electric heat-pump household; its own
thermostat charges it (hysteresis on the mean temperature) unless a HEMS asks for a charging
power (:attr:`Controls.q_dhw_kw`); whatever the request, the tank's controller never lets the
hot zone run out while the heat pump or, failing that, its element can prevent it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from twin.devices import dhw
from twin.devices.battery import battery_step, self_consumption_request
from twin.devices.ev import TripSchedule, ev_step
from twin.devices.heatpump import (
    dhw_cop,
    effective_cop,
    electric_power_kw,
    heat_for_power_kw,
    min_output_kw,
)
from twin.devices.pv import pv_ac_power_kw, roofs_of, sun_at_rows
from twin.devices.thermal import flow_temperature_c, heat_to_reach, step_temperature
from twin.fleet import Fleet
from twin.timegrid import DT_H


@dataclass(frozen=True)
class Exogenous:
    """Everything outside the households' control over the window, (T,) or (T, H) arrays.

    ``cop`` is the field COP of space heating at full output (the cycling loss below the
    minimum output is applied by the physics); ``q_dhw_kw`` the hot-water draws (heat at the
    taps, 0 without a tank; None: no draws known, e.g. a forecast that has none); ``price``
    the import price of each step (€/kWh, for hybrids with the price switch; None: no switch).
    ``p_base_kw`` includes the heat pump's standby (controls, crankcase heater): an always-on
    load, so that planners and the DSO see it as inflexible load (:func:`make_exogenous`).
    """

    t_out_c: np.ndarray  # (T,)
    ghi_w_m2: np.ndarray  # (T,)
    p_base_kw: np.ndarray  # (T, H) appliances and lighting
    q_base_kvar: np.ndarray  # (T, H)
    p_pv_kw: np.ndarray  # (T, H) PV potential (all of it is produced)
    q_gain_kw: np.ndarray  # (T, H) internal + solar gains
    cop: np.ndarray  # (T, H) heat pump field COP at the heating-curve flow temperature
    trips: TripSchedule
    q_dhw_kw: np.ndarray | None = None  # (T, H) hot water drawn (heat), None: not known
    price_eur_per_kwh: np.ndarray | None = None  # (T,) import price, for the price switch

    @property
    def n_steps(self) -> int:
        return len(self.t_out_c)


def weather_response(
    fleet: Fleet,
    t_out_c: np.ndarray,
    ghi_w_m2: np.ndarray,
    design_outdoor_c: float,
    *,
    year_rows: np.ndarray | None = None,
    pv_irradiance_scale: float = 1.0,
    solar_time: bool = False,
    site: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(p_pv_kw, cop)`` (T, H): every household's PV output and heat pump field COP under
    the weather ``t_out_c``, ``ghi_w_m2`` (T,) (the parts of :func:`make_exogenous` that
    depend on the weather alone; its arguments)."""
    t_col = t_out_c[:, None]
    flow = flow_temperature_c(t_col, fleet.flow_design_c, fleet.setpoint_c, design_outdoor_c)
    rows = np.arange(len(t_out_c)) if year_rows is None else np.asarray(year_rows)
    p_pv = pv_ac_power_kw(
        ghi_w_m2,
        t_out_c,
        fleet.pv_kwp,
        roofs_of(fleet),
        sun=sun_at_rows(rows, solar_time, *(site or ())),
        ghi_scale=pv_irradiance_scale,
        model=fleet.pv_model,
    )
    return p_pv, effective_cop(t_col, flow, model=fleet.hp_model)


def make_exogenous(
    fleet: Fleet,
    t_out_c: np.ndarray,
    ghi_w_m2: np.ndarray,
    p_base_kw: np.ndarray,
    q_base_kvar: np.ndarray,
    design_outdoor_c: float,
    trips: TripSchedule,
    *,
    year_rows: np.ndarray | None = None,
    q_dhw_kw: np.ndarray | None = None,
    pv_irradiance_scale: float = 1.0,
    price_eur_per_kwh: np.ndarray | None = None,
    solar_time: bool = False,
    site: tuple[float, float] | None = None,
    weather: tuple[np.ndarray, np.ndarray] | None = None,
) -> Exogenous:
    """Precompute gains, COP and PV over the window (vectorised over time and households).

    ``year_rows`` (T,): the reference-year row of each step (for the sun; default the year
    from 1 January); ``solar_time``: the weather's rows are in true solar time rather than
    twin's clock (TRY2010 as it ships; :func:`twin.inputs.build_inputs` shifts it to the clock);
    ``pv_irradiance_scale``: the PV model's irradiance scale (``pv.irradiance_scale``);
    ``site``: ``(lat, lon)`` of the weather (default: TRY2010 region 5, Essen); ``weather``:
    :func:`weather_response` of these arguments when the caller has it (not computed again).
    """
    q_gain = (
        fleet.internal_gains_kw + p_base_kw + np.outer(ghi_w_m2 / 1000.0, fleet.solar_aperture_m2)
    )
    # the heat pump's standby runs outdoors (crankcase heater) and all the time: base load
    standby = np.where(fleet.has_hp, fleet.hp_model.standby_kw, 0.0)
    if standby.any():
        p_base_kw = p_base_kw + standby
    # (the standby is in p_base_kw from here on; see Exogenous)
    if weather is None:
        weather = weather_response(
            fleet,
            t_out_c,
            ghi_w_m2,
            design_outdoor_c,
            year_rows=year_rows,
            pv_irradiance_scale=pv_irradiance_scale,
            solar_time=solar_time,
            site=site,
        )
    p_pv, cop = weather
    return Exogenous(
        t_out_c=t_out_c,
        ghi_w_m2=ghi_w_m2,
        p_base_kw=p_base_kw,
        q_base_kvar=q_base_kvar,
        p_pv_kw=p_pv,
        q_gain_kw=q_gain,
        cop=cop,
        trips=trips,
        q_dhw_kw=None if q_dhw_kw is None else np.where(fleet.has_tank, q_dhw_kw, 0.0),
        price_eur_per_kwh=price_eur_per_kwh,
    )


def draw_hot_water(
    fleet: Fleet, rng: np.random.Generator, n_days: int, t_cold_c: float | None = None
) -> np.ndarray:
    """``(96 n_days, H)`` hot-water draws (heat at the taps, kW) of the households with a tank,
    from midnight of the first day (:func:`twin.devices.dhw.draw_dhw_demand`); 0 elsewhere."""
    out = np.zeros((n_days * 96, fleet.n))
    tank = np.flatnonzero(fleet.has_tank)
    if len(tank):
        m = fleet.dhw_model
        out[:, tank] = dhw.draw_dhw_demand(
            rng,
            fleet.persons[tank],
            n_days,
            fleet.dhw_litres_per_person_day[tank],
            m.day_volume_sigma,
            m.t_cold_c if t_cold_c is None else t_cold_c,
        )
    return out


def expected_hot_water(fleet: Fleet, n_steps: int, start_step: int = 0) -> np.ndarray:
    """``(n_steps, H)`` the draws a HEMS expects (the mean of :func:`draw_hot_water`) from step
    ``start_step`` of a window that starts at midnight; 0 without a tank."""
    q = dhw.expected_draw_kw(
        fleet.persons,
        fleet.dhw_litres_per_person_day,
        n_steps,
        start_step,
        fleet.dhw_model.t_cold_c,
    )
    return np.where(fleet.has_tank, q, 0.0)


@dataclass
class Controls:
    """A HEMS's requests for one step, arrays over households.

    ``q_heat_kw``: space heat wanted (thermal kW); the heat pump gives what it can, a (hybrid's
    or gas home's) boiler the rest. ``p_ev_kw``: charging request (negative: discharge, for a
    bidirectional charger). ``p_bat_kw``: battery request (positive charging); ``None`` (or NaN
    for a household) means self-consumption on the rest of the house's load. ``q_hp_max_kw``:
    a limit on the heat pump this step (e.g. a DSO's dimming, a hybrid's planned share), on top
    of its rating, given as heat at its space-heating COP at full output: it limits the
    electricity to ``q_hp_max_kw / cop``, within which hot water (at its own COP), space heat
    (with its cycling loss) and the tank's element fit; ``None`` (or inf) means no limit other
    than the rating (the compressor's heat output). ``q_dhw_kw``: heat asked for the hot-water
    tank this step; ``None`` (or NaN for a household) means the tank's own thermostat.
    """

    q_heat_kw: np.ndarray
    p_ev_kw: np.ndarray
    p_bat_kw: np.ndarray | None = None
    q_hp_max_kw: np.ndarray | None = None
    q_dhw_kw: np.ndarray | None = None


@dataclass(frozen=True)
class _Constants:
    """Per-household constants of the step, computed once per state (the step is a few dozen
    array operations over households; what does not change is not recomputed)."""

    tank: dhw.DhwTank
    a: np.ndarray  # tank decay over a step
    b: np.ndarray  # tank heat-in gain over a step
    a_over_b: np.ndarray
    inv_b: np.ndarray
    e_full: np.ndarray
    e_max: np.ndarray
    e_full_b: np.ndarray  # e_full / b
    e_max_b: np.ndarray  # e_max / b
    e_nearly_full: np.ndarray  # full, to round-off
    e_start: np.ndarray  # the thermostat starts charging below it
    has_tank: np.ndarray
    inv_c_w: np.ndarray  # 1 / tank heat capacity (kWh/K)
    standby_kw: np.ndarray
    elec: np.ndarray  # all-electric heat pump
    hybrid: np.ndarray
    v2g: np.ndarray
    inf: np.ndarray  # no cap


def _constants(fleet: Fleet) -> _Constants:
    tank = dhw.tank_of(fleet)
    a, b = dhw.tank_linear_model(tank)
    has = tank.volume_l > 0
    c_w = tank.c_kwh_per_k
    e_max = dhw.tank_energy_bounds_kwh(tank)[1]
    inv_b = 1.0 / b
    return _Constants(
        tank=tank,
        a=a,
        b=b,
        a_over_b=a / b,
        inv_b=inv_b,
        e_full=tank.e_full_kwh,
        e_max=e_max,
        e_full_b=tank.e_full_kwh * inv_b,
        e_max_b=e_max * inv_b,
        e_nearly_full=tank.e_full_kwh * (1.0 - 1e-9),
        e_start=np.where(has, c_w * (tank.t_set_c - tank.hysteresis_k - tank.t_cold_c), -1.0),
        has_tank=has,
        inv_c_w=np.where(c_w > 0, 1.0 / np.where(c_w > 0, c_w, 1.0), 0.0),
        standby_kw=np.where(fleet.has_hp, fleet.hp_model.standby_kw, 0.0),
        elec=fleet.has_hp & ~fleet.hp_hybrid,
        hybrid=fleet.has_hp & fleet.hp_hybrid,
        v2g=fleet.has_v2g,
        inf=np.full(fleet.n, np.inf),
    )


@dataclass
class HouseholdState:
    """The households' device states. ``e_tank_kwh`` (stored hot-water heat above cold water)
    and ``tank_charging`` (the tank thermostat's state) start full and off when not given."""

    t_in_c: np.ndarray
    ev_soc_kwh: np.ndarray
    bat_soc_kwh: np.ndarray
    e_tank_kwh: np.ndarray | None = None
    tank_charging: np.ndarray | None = None
    _const: _Constants | None = field(default=None, repr=False, compare=False)

    @classmethod
    def initial(cls, fleet: Fleet) -> HouseholdState:
        s = cls(fleet.setpoint_c.copy(), fleet.ev_soc0_kwh.copy(), fleet.bat_soc0_kwh.copy())
        s.ensure(fleet)
        return s

    def ensure(self, fleet: Fleet) -> _Constants:
        """Fill what was not given (a full tank, thermostat off); the step's constants."""
        if self._const is None:
            self._const = _constants(fleet)
        if self.e_tank_kwh is None:
            self.e_tank_kwh = self._const.e_full.copy()
        if self.tank_charging is None:
            self.tank_charging = np.zeros(fleet.n, bool)
        return self._const

    def subset(self, households: np.ndarray) -> HouseholdState:
        """An independent copy of the states of ``households`` (positions; the step's
        constants are made again for the subset's fleet)."""
        h = np.asarray(households, dtype=np.int64)
        return HouseholdState(
            self.t_in_c[h].copy(),
            self.ev_soc_kwh[h].copy(),
            self.bat_soc_kwh[h].copy(),
            None if self.e_tank_kwh is None else self.e_tank_kwh[h].copy(),
            None if self.tank_charging is None else self.tank_charging[h].copy(),
        )

    def copy(self) -> HouseholdState:
        """An independent copy (the constants are shared)."""
        return HouseholdState(
            self.t_in_c.copy(),
            self.ev_soc_kwh.copy(),
            self.bat_soc_kwh.copy(),
            None if self.e_tank_kwh is None else self.e_tank_kwh.copy(),
            None if self.tank_charging is None else self.tank_charging.copy(),
            self._const,
        )


@dataclass
class StepOutcome:
    p_hp_kw: np.ndarray  # heat pump electricity: space heat, hot water (with the element)
    q_hp_kw: np.ndarray  # space heat from the heat pump
    q_boiler_kw: np.ndarray
    p_ev_kw: np.ndarray
    ev_public_kwh: np.ndarray
    p_bat_kw: np.ndarray
    p_net_kw: np.ndarray
    q_dhw_kw: np.ndarray  # heat into the tank (heat pump + element)
    p_dhw_kw: np.ndarray  # electricity for it (part of p_hp_kw)
    q_dhw_element_kw: np.ndarray  # of which the element (heat = electricity)
    dhw_delivered_kw: np.ndarray  # hot water delivered at the taps
    dhw_shortfall_kwh: np.ndarray  # drawn but not delivered (tank ran out)


def hybrid_runs(fleet: Fleet, exo: Exogenous, k: int, cop: np.ndarray) -> np.ndarray:
    """``(H,)`` whether each hybrid's own controller runs its heat pump at step ``k``: at or
    above its bivalence point and, with the price switch, while heat from it is cheaper than
    from the boiler (``price / COP <= gas / eta``). True for every other household."""
    run = exo.t_out_c[k] >= fleet.hp_t_bivalent_c
    if exo.price_eur_per_kwh is not None and fleet.hp_price_switch.any():
        m = fleet.hp_model
        cheaper = (
            exo.price_eur_per_kwh[k] / np.maximum(cop, 1e-9) <= m.gas_eur_per_kwh / m.boiler_eta
        )
        run &= ~fleet.hp_price_switch | cheaper
    return run | ~fleet.hp_hybrid


def step_households(
    fleet: Fleet, state: HouseholdState, exo: Exogenous, k: int, ctl: Controls
) -> StepOutcome:
    """Advance ``state`` in place by step ``k`` under the requests ``ctl``."""
    c = state.ensure(fleet)
    hp_model = fleet.hp_model
    cd = hp_model.cycling_cd
    t_out = exo.t_out_c[k]
    cop_sh = exo.cop[k]
    q_rated = fleet.hp_q_max_kw
    # a contract's cap on the heat pump (a DSO's dimming, a hybrid's planned share): its
    # electricity, given as heat at the space-heating COP at full output
    dimmed = ctl.q_hp_max_kw is not None
    budget = c.inf
    if dimmed:
        cap = np.maximum(ctl.q_hp_max_kw, 0.0)
        budget = np.where(np.isfinite(cap), cap / cop_sh, np.inf)
    # --- hot water first: the request (or the tank's thermostat), never letting the hot zone
    # run out if the heat pump, or failing that the element, can prevent it (within the cap);
    # the tank's exact step inlined (twin.devices.dhw.tank_step, thermostat_charging)
    tank, e = c.tank, state.e_tank_kwh
    draw = np.zeros(fleet.n) if exo.q_dhw_kw is None else exo.q_dhw_kw[k]
    full_now = e >= c.e_nearly_full
    charging = (state.tank_charging | (e < c.e_start)) & ~full_now & c.has_tank
    ae = c.a_over_b * e
    q_room = np.maximum(c.e_max_b - ae + draw, 0.0)  # fills the tank to e_max
    q_thermo = np.where(charging, np.maximum(c.e_full_b - ae + draw, 0.0), 0.0)
    if ctl.q_dhw_kw is None:
        q_req = q_thermo
    else:
        q_req = np.where(np.isnan(ctl.q_dhw_kw), q_thermo, np.maximum(ctl.q_dhw_kw, 0.0))
    q_keep = np.minimum(np.maximum(draw - ae, 0.0), q_room)  # the hot zone lasts
    q_req = np.where(c.has_tank, np.minimum(np.maximum(q_req, q_keep), q_room), 0.0)
    # the hot-water COP at the charging temperature: the setpoint, or the tank's mean
    # temperature at the start of the step when it was boosted above it (that costs more)
    t_charge = np.minimum(np.maximum(tank.t_cold_c + e * c.inv_c_w, tank.t_set_c), tank.t_max_c)
    cop_w = dhw_cop(t_out, t_charge, hp_model)
    q_dhw_hp = np.minimum(np.minimum(q_req, q_rated), budget * cop_w)
    p_dhw_hp = np.where(q_dhw_hp > 0, q_dhw_hp / cop_w, 0.0)
    q_el = np.minimum(np.maximum(q_keep - q_dhw_hp, 0.0), fleet.tank_element_kw)
    if dimmed:
        q_el = np.minimum(q_el, np.maximum(budget - p_dhw_hp, 0.0))
    q_el = np.where(c.has_tank, q_el, 0.0)
    free = c.a * e + c.b * (q_dhw_hp + q_el)  # the end state without any draw
    q_del = np.where(c.has_tank, np.minimum(draw, np.maximum(free, 0.0) * c.inv_b), 0.0)
    e_new = np.where(c.has_tank, np.maximum(free - c.b * q_del, 0.0), 0.0)
    short = (draw - q_del) * DT_H
    state.e_tank_kwh = e_new
    state.tank_charging = charging & (e_new < c.e_nearly_full)
    p_dhw = p_dhw_hp + q_el

    # --- space heat from what is left of the heat pump (and of the cap)
    q_heat = np.maximum(ctl.q_heat_kw, 0.0)
    full = q_dhw_hp > 0  # the compressor runs at full output for the tank: no cycling loss
    q_min = np.where(full, 0.0, min_output_kw(q_rated, t_out, model=hp_model))
    q_left = np.minimum(
        np.maximum(q_rated - q_dhw_hp, 0.0),
        heat_for_power_kw(np.maximum(budget - p_dhw, 0.0), cop_sh, q_min, cd),
    )
    run = hybrid_runs(fleet, exo, k, cop_sh)
    if dimmed:  # a contract that caps the heat pump decides the hybrid's split itself
        run |= np.isfinite(ctl.q_hp_max_kw)
    q_hp = np.where(run, np.minimum(q_heat, q_left), 0.0)
    # gas homes (no heat pump) and hybrids: a boiler covers what the heat pump does not
    q_boiler = np.where(c.elec, 0.0, q_heat - q_hp)
    p_sh = electric_power_kw(q_hp, cop_sh, q_min, cd)
    p_hp = p_sh + p_dhw  # the standby is in the base load (Exogenous)
    state.t_in_c = step_temperature(
        state.t_in_c,
        t_out,
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
        bidirectional=c.v2g,
        p_dis_max_kw=fleet.ev_p_dis_max_kw,
        reserve_kwh=fleet.ev_v2g_reserve_kwh,
    )
    p_base, p_pv = exo.p_base_kw[k], exo.p_pv_kw[k]
    p_req_bat = ctl.p_bat_kw
    if p_req_bat is None:
        p_req_bat = self_consumption_request(p_base + p_hp + p_ev - p_pv)
    elif np.isnan(p_req_bat).any():  # NaN: self-consumption for that household
        own = self_consumption_request(p_base + p_hp + p_ev - p_pv)
        p_req_bat = np.where(np.isnan(p_req_bat), own, p_req_bat)
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
        q_dhw_kw=q_dhw_hp + q_el,
        p_dhw_kw=p_dhw,
        q_dhw_element_kw=q_el,
        dhw_delivered_kw=q_del,
        dhw_shortfall_kwh=short,
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
    """Firm behaviour (today's connection, no control): the thermostat, the hot-water tank on
    its own thermostat, the EV at full power whenever it is home (never discharging), the
    battery on self-consumption, PV producing fully."""
    return Controls(
        q_heat_kw=thermostat_heat_kw(fleet, t_in_c, t_out_c, q_gain_kw),
        p_ev_kw=fleet.ev_p_max_kw,
        p_bat_kw=None,
    )


def simulate_firm(
    fleet: Fleet, state: HouseholdState, exo: Exogenous, start_step: int = 0
) -> np.ndarray:
    """Net load ``(T, n)`` of households behaving as under a firm connection over ``exo``'s
    steps (:func:`firm_controls`); advances ``state``. Without hot-water draws in ``exo`` (a
    forecast that has none) the expected draws are used (:func:`expected_hot_water`;
    ``start_step``: the first row's step since a midnight)."""
    if exo.q_dhw_kw is None and fleet.has_tank.any():
        exo = replace(exo, q_dhw_kw=expected_hot_water(fleet, exo.n_steps, start_step))
    out = np.empty((exo.n_steps, fleet.n))
    for k in range(exo.n_steps):
        ctl = firm_controls(fleet, state.t_in_c, exo.t_out_c[k], exo.q_gain_kw[k])
        out[k] = step_households(fleet, state, exo, k, ctl).p_net_kw
    return out
