"""Air/water heat pump as measured in the field: defrost, cycling below minimum modulation,
hot water at a higher flow temperature, standby; hybrids with a bivalence point or a price
switch. Extends :mod:`twin.devices.thermal` (its steady-state COP regression and heating curve).

Effective COP of a step::

    COP = COP_hplib(T_out, T_flow) * f_defrost(T_out) * f_cycling(load ratio) * f_field

* ``COP_hplib``: :func:`twin.devices.thermal.cop`, the hplib "Generic" regulated air/water
  regression (a steady-state, Keymark-type figure).
* ``f_defrost``: frost forms on the outdoor coil between about -7 and +7 °C in humid air; the
  loss peaks around +1 °C (triangle of half-width ``DEFROST_HALF_WIDTH_K``). The depth
  ``DEFROST_MAX_LOSS`` (12 %) is an assumption: the field excess over the rating points
  (Keymark's A2 point already contains some defrosting).
* ``f_cycling``: below its minimum modulation (``MIN_MODULATION`` × rated output, 30 %) the heat
  pump runs on/off; EN 14825's degradation ``f = CR / (Cd CR + 1 − Cd)`` with the standard's
  default ``Cd = 0.9`` and ``CR`` = heat asked / minimum output.
* Hot water: the flow temperature is the tank temperature + ``DHW_FLOW_OFFSET_K`` (5 K), so the
  COP is lower; the heat pump charges at full output (no cycling penalty) and has priority over
  space heating within the step (a diverting valve shares the quarter-hour).
* ``f_field`` = ``FIELD_COP_FACTOR`` (0.80): what separates field installations from the
  rating beyond defrost and cycling (buffer tanks and mixing, flow temperatures above the
  heating curve, controls); an assumption calibrated so all-electric units over the TRY2010
  region-5 year land in the field range of 2.8-3.1 (Fraunhofer ISE field tests).
* Standby: controls and crankcase heater, ``P_STANDBY_KW`` (10 W) all year (assumption).

Hybrids (:func:`hybrid_split`): the heat pump runs only at or above its bivalence point
(outdoor temperature; e.g. 0 °C) and, if prices are given, only while heat from it is cheaper
than from the boiler (``price_el / COP < price_gas / eta_boiler``); the boiler covers the rest
and the hybrid's hot water (a combi boiler).

hplib (pip ``hplib``) was considered: its models give steady-state COP and output from the
same Keymark fits as the regression already used here, without defrost, cycling or standby,
so it is not a dependency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.devices import dhw as dhw_mod
from twin.devices.thermal import cop as cop_steady
from twin.devices.thermal import flow_temperature_c, heat_to_reach, step_temperature
from twin.fleet import HeatPumpModel
from twin.timegrid import DT_H


def _clip(x, lo, hi):
    """``np.clip`` without its dispatch overhead (the same result: ``min(max(x, lo), hi)``)."""
    if hi is None:
        return np.maximum(x, lo)
    return np.minimum(np.maximum(x, lo), hi)


DEFROST_MAX_LOSS = 0.12
DEFROST_PEAK_C = 1.0
DEFROST_HALF_WIDTH_K = 7.0
MIN_MODULATION = 0.3
CYCLING_CD = 0.9  # EN 14825 default degradation coefficient
DHW_FLOW_OFFSET_K = 5.0
P_STANDBY_KW = 0.010
# full-speed output rises ~2.5 %/K above the design point (hplib Generic P_th vs T_amb; assumption)
CAPACITY_SLOPE_PER_K = 0.025
DESIGN_POINT_C = -10.0
# field installations vs the rating: buffer/mixing losses, flow above the heating curve,
# controls (assumption, calibrated so all-electric units land in the Fraunhofer field range)
FIELD_COP_FACTOR = 0.80
BOILER_ETA = 0.9  # condensing boiler, seasonal on gross calorific value (assumption)


def defrost_factor(t_out_c: np.ndarray | float, max_loss: float = DEFROST_MAX_LOSS) -> np.ndarray:
    """COP multiplier for defrosting (1 outside the frost zone)."""
    x = np.abs(np.asarray(t_out_c, float) - DEFROST_PEAK_C) / DEFROST_HALF_WIDTH_K
    return 1.0 - max_loss * _clip(1.0 - x, 0.0, 1.0)


def cycling_factor(q_kw: np.ndarray, q_min_kw: np.ndarray, cd: float = CYCLING_CD) -> np.ndarray:
    """EN 14825 on/off degradation below the minimum output (1 at or above it)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        cr = _clip(np.where(q_min_kw > 0, q_kw / q_min_kw, 1.0), 0.0, 1.0)
        f = cr / (cd * cr + 1.0 - cd)
    return np.where(cr > 0, f, 1.0)


def electric_power_kw(
    q_kw: np.ndarray, cop: np.ndarray, q_min_kw: np.ndarray, cd: float = CYCLING_CD
) -> np.ndarray:
    """Electricity (kW) for the space heat ``q_kw`` at the full-output COP ``cop``, cycling
    below the minimum output ``q_min_kw`` (:func:`cycling_factor`): ``(Cd q + (1 - Cd) q_min)
    / cop`` below it, ``q / cop`` above, 0 without heat."""
    q = np.asarray(q_kw, float)
    below = (cd * q + (1.0 - cd) * q_min_kw) / cop
    return np.where(q <= 0.0, 0.0, np.where(q < q_min_kw, below, q / cop))


def heat_for_power_kw(
    p_kw: np.ndarray, cop: np.ndarray, q_min_kw: np.ndarray, cd: float = CYCLING_CD
) -> np.ndarray:
    """The space heat that the electricity ``p_kw`` gives (the inverse of
    :func:`electric_power_kw`; 0 below the power of the shortest cycle)."""
    p = np.asarray(p_kw, float)
    q_low = np.maximum((p * cop - (1.0 - cd) * q_min_kw) / max(cd, 1e-9), 0.0)
    return np.where(p * cop >= q_min_kw, p * cop, q_low)


def effective_cop(
    t_out_c: np.ndarray | float,
    t_flow_c: np.ndarray,
    q_kw: np.ndarray | None = None,
    q_rated_kw: np.ndarray | None = None,
    min_modulation: float = MIN_MODULATION,
    model: HeatPumpModel | None = None,
) -> np.ndarray:
    """Field COP: steady-state regression x defrost x field factor x (if ``q_kw`` given)
    cycling below the minimum output. ``model``: the scenario's numbers (default: this
    module's constants, which are the scenario's defaults)."""
    loss = DEFROST_MAX_LOSS if model is None else model.defrost_max_loss
    field = FIELD_COP_FACTOR if model is None else model.field_cop_factor
    c = cop_steady(t_out_c, t_flow_c) * defrost_factor(t_out_c, loss) * field
    if q_kw is not None and q_rated_kw is not None:
        if model is not None:
            min_modulation = model.min_modulation
        q_min = min_output_kw(q_rated_kw, t_out_c, min_modulation, model)
        cd = CYCLING_CD if model is None else model.cycling_cd
        c = c * cycling_factor(q_kw, q_min, cd)
    return c


def dhw_cop(
    t_out_c: np.ndarray | float, t_set_c: np.ndarray, model: HeatPumpModel | None = None
) -> np.ndarray:
    """COP while charging the hot-water tank (flow = charging temperature + 5 K, full output,
    defrost)."""
    offset = DHW_FLOW_OFFSET_K if model is None else model.dhw_flow_offset_k
    loss = DEFROST_MAX_LOSS if model is None else model.defrost_max_loss
    field = FIELD_COP_FACTOR if model is None else model.field_cop_factor
    c = cop_steady(t_out_c, np.asarray(t_set_c) + offset) * defrost_factor(t_out_c, loss)
    return c * field


def min_output_kw(
    q_hp_max_kw: np.ndarray,
    t_out_c: np.ndarray | float,
    min_modulation: float = MIN_MODULATION,
    model: HeatPumpModel | None = None,
) -> np.ndarray:
    """Lowest continuous output: ``min_modulation`` of the compressor's output at full speed,
    which grows with the outdoor temperature (``CAPACITY_SLOPE_PER_K`` above the design point
    where ``q_hp_max_kw`` is rated)."""
    slope = CAPACITY_SLOPE_PER_K if model is None else model.capacity_slope_per_k
    if model is not None:
        min_modulation = model.min_modulation
    gain = 1.0 + slope * _clip(np.asarray(t_out_c) - DESIGN_POINT_C, 0.0, None)
    return min_modulation * q_hp_max_kw * gain


def hybrid_split(
    q_heat_kw: np.ndarray,
    q_hp_max_kw: np.ndarray,
    t_out_c: np.ndarray | float,
    cop: np.ndarray,
    t_bivalent_c: np.ndarray | float = -np.inf,
    price_el_eur_kwh: np.ndarray | float | None = None,
    price_gas_eur_kwh: np.ndarray | float | None = None,
    boiler_eta: float = BOILER_ETA,
) -> tuple[np.ndarray, np.ndarray]:
    """Split a hybrid's space heat between heat pump and boiler -> ``(q_hp_kw, q_boiler_kw)``.

    The heat pump runs at or above ``t_bivalent_c`` and (with prices) when its heat is the
    cheaper; it gives up to ``q_hp_max_kw``, the boiler the rest."""
    q = np.maximum(np.asarray(q_heat_kw, float), 0.0)
    run = np.asarray(t_out_c) >= t_bivalent_c
    if price_el_eur_kwh is not None and price_gas_eur_kwh is not None:
        run = run & (
            np.asarray(price_el_eur_kwh) / cop <= np.asarray(price_gas_eur_kwh) / boiler_eta
        )
    q_hp = np.where(run, np.minimum(q, q_hp_max_kw), 0.0)
    return q_hp, q - q_hp


@dataclass
class HeatPumpYear:
    """Outcome of :func:`simulate_heat_pump_year`, (T, H) arrays unless noted."""

    p_hp_kw: np.ndarray  # electricity of the heat pump (space heat + hot water + standby)
    q_sh_hp_kw: np.ndarray  # space heat from the heat pump
    q_sh_boiler_kw: np.ndarray  # space heat from a (hybrid's) boiler
    q_dhw_hp_kw: np.ndarray  # heat into the tank from the heat pump
    q_dhw_delivered_kw: np.ndarray  # hot water delivered at the taps
    dhw_shortfall_kwh: np.ndarray  # (H,) hot water not delivered (tank below usable)
    t_in_c: np.ndarray
    e_tank_kwh: np.ndarray  # stored hot-water heat above cold water

    def seasonal_cop(self) -> np.ndarray:
        """(H,) heat from the heat pump / its electricity (space heat + hot water, standby)."""
        return (self.q_sh_hp_kw.sum(0) + self.q_dhw_hp_kw.sum(0)) / self.p_hp_kw.sum(0)

    def annual_kwh(self) -> np.ndarray:
        """(H,) heat-pump electricity over the simulated steps."""
        return self.p_hp_kw.sum(0) * DT_H


def simulate_heat_pump_year(
    t_out_c: np.ndarray,
    q_gain_kw: np.ndarray,
    r_k_per_kw: np.ndarray,
    a_step: np.ndarray,
    setpoint_c: np.ndarray,
    q_hp_max_kw: np.ndarray,
    flow_design_c: np.ndarray,
    design_outdoor_c: float,
    hybrid: np.ndarray,
    tank: dhw_mod.DhwTank,
    q_draw_kw: np.ndarray,
    t_bivalent_c: float = 0.0,
    min_modulation: float = MIN_MODULATION,
) -> HeatPumpYear:
    """Reference controller over the whole window (T steps, H heat-pump households): space
    heating by a thermostat that holds the setpoint (heat pump first, boiler for what a hybrid
    leaves), hot water by a hysteresis thermostat on the tank with priority. For calibration
    and validation; the contracts' HEMSs replace the controller, not the physics.

    ``t_out_c`` (T,); ``q_gain_kw`` (T, H); ``q_draw_kw`` (T, H) hot-water demand (zero for
    hybrids, whose combi boiler makes it); dwelling and heat-pump parameters (H,).
    """
    n_t, n = q_gain_kw.shape
    out = {k: np.zeros((n_t, n)) for k in ("p", "qsh", "qb", "qd", "qdel", "tin", "et")}
    t_in = setpoint_c.astype(float).copy()
    e_tank = tank.e_full_kwh.astype(float).copy()
    charging = np.zeros(n, bool)
    shortfall = np.zeros(n)
    flow = flow_temperature_c(t_out_c[:, None], flow_design_c, setpoint_c, design_outdoor_c)
    cop_sh_full = effective_cop(t_out_c[:, None], flow)
    cop_dhw = dhw_cop(t_out_c[:, None], tank.t_set_c)
    q_min = min_output_kw(q_hp_max_kw, t_out_c[:, None], min_modulation)
    has_hp = q_hp_max_kw > 0
    for k in range(n_t):
        # hot water first: charge at full output while the thermostat says so
        charging = dhw_mod.thermostat_charging(e_tank, charging, tank)
        q_need = dhw_mod.heat_to_fill_kw(e_tank, q_draw_kw[k], tank)
        q_dhw = np.where(charging & has_hp, np.minimum(q_need, q_hp_max_kw), 0.0)
        e_tank, q_del, short = dhw_mod.tank_step(e_tank, q_dhw, q_draw_kw[k], tank)
        shortfall += short
        # space heat: what holds the setpoint, within the capacity the tank left
        q_sh = np.maximum(
            heat_to_reach(setpoint_c, t_in, t_out_c[k], q_gain_kw[k], r_k_per_kw, a_step), 0.0
        )
        q_left = np.maximum(q_hp_max_kw - q_dhw, 0.0)
        q_hp, q_boiler = hybrid_split(q_sh, q_left, t_out_c[k], cop_sh_full[k], t_bivalent_c)
        q_hp = np.where(hybrid, q_hp, np.minimum(q_sh, q_left))
        q_boiler = np.where(hybrid, q_boiler, q_sh - q_hp)  # all-electric: unmet heat stays unmet
        q_boiler = np.where(hybrid, q_boiler, 0.0)
        # cycling below the minimum output (only when space heat alone runs the compressor)
        f_cyc = np.where(q_dhw > 0, 1.0, cycling_factor(q_hp, q_min[k]))
        p = np.where(q_hp > 0, q_hp / (cop_sh_full[k] * f_cyc), 0.0)
        p = p + np.where(q_dhw > 0, q_dhw / cop_dhw[k], 0.0) + np.where(has_hp, P_STANDBY_KW, 0.0)
        t_in = step_temperature(t_in, t_out_c[k], q_hp + q_boiler, q_gain_kw[k], r_k_per_kw, a_step)
        out["p"][k], out["qsh"][k], out["qb"][k], out["qd"][k] = p, q_hp, q_boiler, q_dhw
        out["qdel"][k], out["tin"][k], out["et"][k] = q_del, t_in, e_tank
    return HeatPumpYear(
        p_hp_kw=out["p"],
        q_sh_hp_kw=out["qsh"],
        q_sh_boiler_kw=out["qb"],
        q_dhw_hp_kw=out["qd"],
        q_dhw_delivered_kw=out["qdel"],
        dhw_shortfall_kwh=shortfall,
        t_in_c=out["tin"],
        e_tank_kwh=out["et"],
    )
