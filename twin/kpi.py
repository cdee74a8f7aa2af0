"""Household-side KPIs: energy per device class, comfort, EV service, coincident peak, and
energies and bills corrected for what is left stored at the end.

Service levels are measured exactly as :mod:`twin.service` defines them, on the simulated
(not the planned) result. Grid KPIs (transformer, cables, voltages, losses) come from
:mod:`twin.grid.compliance`; both end up in one flat dict whose keys carry their units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.devices.dhw import deliverable_kw as dhw_deliverable_kw
from twin.devices.ev import CHARGE_EFFICIENCY, TripSchedule
from twin.fleet import Fleet
from twin.service import (
    ServiceLevels,
    dhw_measures,
    ev_due,
    full_power_soc,
    preheat_warming_k,
    thermostat_q_max_kw,
    trips_at_departure,
)
from twin.timegrid import DT_H, STEPS_PER_DAY

__all__ = [
    "ComfortMeasures",
    "EvMeasures",
    "comfort_measures",
    "ev_measures",
    "household_kpis",
    "per_household_table",
    "stored_electricity_kwh",
    "stored_energy",
]

#: Tolerances of the service checks (K, kWh): below them a deviation is numerical noise.
COMFORT_CHECK_TOL_K = 1e-6
EV_CHECK_TOL_KWH = 1e-6


@dataclass
class ComfortMeasures:
    """Comfort of every household over the reported steps (see :mod:`twin.service`)."""

    below_k: np.ndarray  # (T, H) K below setpoint - band
    above_k: np.ndarray  # (T, H) K above setpoint + above, brought by heating
    swing_k: np.ndarray  # (days, H) max - min of the day's controlled temperature
    day_met: np.ndarray  # (days, H) the day keeps the promise under the configured rule

    def kelvin_hours(self) -> tuple[np.ndarray, np.ndarray]:
        """Per household: K·h below and K·h above."""
        return self.below_k.sum(axis=0) * DT_H, self.above_k.sum(axis=0) * DT_H


def comfort_measures(
    t_in_c: np.ndarray,
    q_heat_kw: np.ndarray,
    fleet: Fleet,
    levels: ServiceLevels,
    t_out_c: np.ndarray,
    q_gain_kw: np.ndarray,
    t0_c: np.ndarray | None = None,
) -> ComfortMeasures:
    """Both sides of the band and the daily swing.

    ``q_heat_kw``: heat delivered (heat pump + boiler) per step; ``t_out_c``, ``q_gain_kw``:
    the weather and gains; ``t0_c``: the temperature at the start of the first step. Warmth
    above the setpoint counts only as far as the home is warmer than a thermostat holding the
    setpoint would have kept it (:func:`twin.service.preheat_warming_k`); the swing is measured
    on the temperature with the rest of the warmth above the setpoint taken out.
    """
    n_t, n_h = t_in_c.shape
    # (in place where a temporary would be another year-long array: the same numbers)
    dev = t_in_c - fleet.setpoint_c
    below = -levels.comfort_band_k - dev
    np.maximum(below, 0.0, out=below)
    # warmth above the setpoint counts only as far as the contract's heating brought it (sun,
    # appliances and a thermostat at the setpoint bring none): on the upper side of the band
    # and in the swing alike
    warm = np.maximum(dev, 0.0)
    y = preheat_warming_k(
        t_in_c,
        q_heat_kw,
        t_out_c,
        q_gain_kw,
        fleet.setpoint_c,
        fleet.r_k_per_kw,
        fleet.a_step,
        # homes without a heat pump heat with a boiler: unlimited, like a hybrid's
        thermostat_q_max_kw(fleet.hp_q_max_kw, fleet.hp_hybrid | ~fleet.has_hp),
        t0_c,
    )
    pre = np.clip(y, 0.0, warm, out=y)
    above = pre - levels.comfort_above_k
    np.maximum(above, 0.0, out=above)
    ctrl = np.subtract(dev, np.subtract(warm, pre, out=warm), out=dev)
    del warm, pre, y
    days = n_t // STEPS_PER_DAY
    blocks = ctrl[: days * STEPS_PER_DAY].reshape(days, STEPS_PER_DAY, n_h)
    swing = blocks.max(axis=1) - blocks.min(axis=1) if days else np.zeros((0, n_h))
    bad = (below > COMFORT_CHECK_TOL_K) | (above > COMFORT_CHECK_TOL_K)
    met = ~bad[: days * STEPS_PER_DAY].reshape(days, STEPS_PER_DAY, n_h).any(axis=1)
    if levels.swing_k is not None:
        met &= swing <= levels.swing_k + COMFORT_CHECK_TOL_K
    return ComfortMeasures(below, above, swing, met)


@dataclass
class EvMeasures:
    """The EV promise over the reported steps (see :mod:`twin.service`).

    Range checks are ``(D, H)`` (one a day); shortfalls count against what charging at full
    power could have reached, and what even that could not reach is ``range_unreachable_kwh``.
    """

    range_checked: np.ndarray  # (D, H) bool, a range check fell in the window
    range_at_departure: np.ndarray  # (D, H) bool, checked at departure
    range_short_kwh: np.ndarray  # (D, H)
    range_unreachable_kwh: np.ndarray  # (D, H)
    departure_short_kwh: np.ndarray  # (T + 1, H) trip + reserve short at each departure
    departures: np.ndarray  # (T + 1, H) bool
    home_below_reserve: np.ndarray  # (T + 1, H) bool, at home below min(reserve, reachable)
    arrivals_below_reserve: int


def ev_measures(
    soc_kwh: np.ndarray,
    soc0_kwh: np.ndarray,
    trips: TripSchedule,
    fleet: Fleet,
    levels: ServiceLevels,
) -> EvMeasures:
    """Every range and reserve check of the window.

    ``soc_kwh``: ``(T, H)`` state of charge at the end of each step; ``soc0_kwh``: at the start
    of the window; ``trips``: the window's trips (home mask, departures, energy at arrival).
    """
    n_t, n_h = soc_kwh.shape
    soc = np.vstack([soc0_kwh[None, :], soc_kwh])  # states 0 .. T
    ev = fleet.has_ev & (fleet.ev_capacity_kwh > 0)
    cap = fleet.ev_capacity_kwh
    range_kwh = np.where(ev, np.minimum(levels.ev_range_km * fleet.ev_kwh_per_km, cap), 0.0)
    reserve = np.where(ev, np.minimum(levels.ev_reserve_km * fleet.ev_kwh_per_km, cap), 0.0)
    home, dep = trips.home, trips.departure & ev
    due = ev_due(
        home,
        dep,
        trips_at_departure(trips.trip_kwh, trips.departure),
        0,
        levels.deadline_step,
        range_kwh,
        reserve,
        cap,
    )
    reach = full_power_soc(soc0_kwh, home, trips.trip_kwh, fleet.ev_p_max_kw, cap)
    cols = np.broadcast_to(np.arange(n_h), due.range_state.shape)
    st = np.maximum(due.range_state, 0)
    checked = (due.range_state >= 0) & ev
    need = np.broadcast_to(range_kwh, st.shape)
    r_short = np.where(checked, np.maximum(np.minimum(need, reach[st, cols]) - soc[st, cols], 0), 0)
    unreachable = np.where(checked, np.maximum(need - reach[st, cols], 0.0), 0.0)
    # departures: the trip plus the reserve
    leave = np.where(due.departure_state, due.due_kwh, 0.0)
    d_short = np.where(due.departure_state, np.maximum(np.minimum(leave, reach) - soc, 0.0), 0.0)
    # at home: never below the reserve longer than charging at full power from arrival takes
    floor = np.empty_like(soc)
    g = soc[0].copy()
    floor[0] = g
    step = CHARGE_EFFICIENCY * fleet.ev_p_max_kw * DT_H
    for k in range(n_t):
        arrived = trips.trip_kwh[k] > 0
        g = np.where(arrived, np.maximum(soc[k] - trips.trip_kwh[k], 0.0), g)
        g = np.minimum(g + step * home[k], cap)
        floor[k + 1] = g
    at_home = np.zeros_like(soc, dtype=bool)
    at_home[1:] = home & ev
    below = at_home & (soc < np.minimum(reserve, floor) - EV_CHECK_TOL_KWH)
    after_trip = np.maximum(soc[:-1] - trips.trip_kwh, 0.0)
    arrivals_low = (trips.trip_kwh > 0) & ev & (after_trip < reserve - EV_CHECK_TOL_KWH)
    return EvMeasures(
        range_checked=checked,
        range_at_departure=due.range_at_departure & checked,
        range_short_kwh=r_short,
        range_unreachable_kwh=unreachable,
        departure_short_kwh=d_short,
        departures=due.departure_state,
        home_below_reserve=below,
        arrivals_below_reserve=int(arrivals_low.sum()),
    )


def stored_energy(
    fleet: Fleet, start: dict[str, np.ndarray], end: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """``(H,)`` energy left stored at the end of the window beyond its start, per store:
    EV and home battery (kWh in the battery), the building (kWh of heat, ``C ΔT``) and the
    hot-water tank (kWh of heat; 0 when the states do not say)."""
    tank = np.zeros(fleet.n)
    if "e_tank_kwh" in end and "e_tank_kwh" in start:
        tank = np.where(fleet.has_tank, end["e_tank_kwh"] - start["e_tank_kwh"], 0.0)
    return {
        "ev_kwh": end["ev_soc_kwh"] - start["ev_soc_kwh"],
        "battery_kwh": end["bat_soc_kwh"] - start["bat_soc_kwh"],
        "building_kwh_th": fleet.c_kwh_per_k * (end["t_in_c"] - start["t_in_c"]),
        "tank_kwh_th": tank,
    }


def stored_electricity_kwh(
    log: dict[str, np.ndarray], fleet: Fleet, start: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """``(H,)`` the electricity that what is left stored at the end of the window (beyond its
    start) took: EV at the charger's efficiency, home battery at its own, the building's heat
    through each all-electric heat pump's mean space-heating COP over the window (hybrids' and
    gas homes' heat is gas), the tank's heat through its mean hot-water COP. The correction
    that puts contracts on equal terms: an energy or a bill minus this compares like with
    like."""
    names = ("t_in_c", "ev_soc_kwh", "bat_soc_kwh", "e_tank_kwh")
    end = {k: log[k][-1] for k in names if k in log}
    stored = stored_energy(fleet, start, end)
    q_hp = log["q_hp_kw"].sum(axis=0)
    p_dhw = log["p_dhw_kw"].sum(axis=0) if "p_dhw_kw" in log else np.zeros(fleet.n)
    q_dhw = log["q_dhw_kw"].sum(axis=0) if "q_dhw_kw" in log else np.zeros(fleet.n)
    p_sh = log["p_hp_kw"].sum(axis=0) - p_dhw  # space heat (and standby)
    electric = fleet.has_hp & ~fleet.hp_hybrid & (p_sh > 0)
    cop = np.where(electric, q_hp / np.where(electric, p_sh, 1.0), 1.0)
    tank = fleet.has_tank & (p_dhw > 0)
    cop_dhw = np.where(tank, q_dhw / np.where(tank, p_dhw, 1.0), 1.0)
    bat_eta = np.where(fleet.bat_eta > 0, fleet.bat_eta, 1.0)
    out = {
        "ev_kwh": stored["ev_kwh"] / CHARGE_EFFICIENCY,
        "battery_kwh": np.where(fleet.bat_capacity_kwh > 0, stored["battery_kwh"] / bat_eta, 0.0),
        "building_kwh": np.where(electric, stored["building_kwh_th"] / cop, 0.0),
        "tank_kwh": np.where(tank, stored["tank_kwh_th"] / cop_dhw, 0.0),
    }
    out["total_kwh"] = out["ev_kwh"] + out["battery_kwh"] + out["building_kwh"] + out["tank_kwh"]
    out["tank_kwh_th"] = stored["tank_kwh_th"]
    out["building_kwh_th"] = stored["building_kwh_th"]
    out["ev_battery_kwh"] = stored["ev_kwh"]
    out["home_battery_kwh"] = stored["battery_kwh"]
    return out


def _spread(name: str, per_household: np.ndarray) -> dict[str, float]:
    """Median, 90th percentile and worst of a per-household quantity (0 when nobody has it)."""
    if per_household.size == 0:
        return {
            f"{name}_median_household": 0.0,
            f"{name}_p90_household": 0.0,
            f"{name}_worst_household": 0.0,
        }
    p50, p90 = np.percentile(per_household, [50, 90])
    return {
        f"{name}_median_household": float(p50),
        f"{name}_p90_household": float(p90),
        f"{name}_worst_household": float(per_household.max()),
    }


def _mean_energy(p_kw: np.ndarray, mask: np.ndarray) -> float:
    """Mean energy (kWh) per household in ``mask`` (0 when the mask is empty)."""
    return float(p_kw[:, mask].sum() * DT_H / mask.sum()) if mask.any() else 0.0


def household_kpis(
    log: dict[str, np.ndarray],
    fleet: Fleet,
    trips: TripSchedule,
    start_state: dict[str, np.ndarray],
    service: Any,
) -> dict[str, Any]:
    """KPIs of the simulated (not planned) household behaviour over the reported steps.

    ``trips``: the reported steps' trips; ``start_state``: the device states at the start of
    the reported window (``t_in_c``, ``ev_soc_kwh``, ``bat_soc_kwh``); ``service``: the
    service levels (``service.*`` of the config, or a :class:`~twin.service.ServiceLevels`).
    """
    levels = service if isinstance(service, ServiceLevels) else ServiceLevels.from_config(service)
    n_t, n_h = log["p_net_kw"].shape
    total_kw = log["p_net_kw"].sum(axis=1)
    e = {
        name: float(log[name].sum() * DT_H)
        for name in ("p_base_kw", "p_hp_kw", "p_ev_kw", "p_pv_kw")
    }
    hp_idx = fleet.has_hp
    n_ev = int(fleet.has_ev.sum())
    cm = comfort_measures(
        log["t_in_c"],
        log["q_hp_kw"] + log["q_boiler_kw"],
        fleet,
        levels,
        log["t_out_c"],
        log["q_gain_kw"],
        start_state["t_in_c"],
    )
    kh_below, kh_above = cm.kelvin_hours()
    em = ev_measures(log["ev_soc_kwh"], start_state["ev_soc_kwh"], trips, fleet, levels)
    n_hp_days = int(hp_idx.sum()) * cm.day_met.shape[0]
    n_checks = int(em.range_checked.sum())
    n_dep = int((em.departures & fleet.has_ev).sum())
    # equal terms: what is left stored at the end, in electricity
    st = stored_electricity_kwh(log, fleet, start_state)
    extra = _hot_water_and_v2g_kpis(log, fleet, st)
    elec_ev, elec_building, stored_elec = st["ev_kwh"], st["building_kwh"], st["total_kwh"]
    return {
        "households": n_h,
        "households_with_heat_pump": int(hp_idx.sum()),
        "households_with_ev": n_ev,
        "households_with_pv": int(fleet.has_pv.sum()),
        "households_with_battery": int(fleet.has_battery.sum()),
        "coincident_peak_kw": float(total_kw.max()),
        "coincident_peak_per_household_kw": float(total_kw.max() / n_h),
        "max_export_per_household_kw": float(max(-total_kw.min(), 0.0) / n_h),
        "energy_base_kwh": e["p_base_kw"],
        "energy_heat_pump_kwh": e["p_hp_kw"],
        "energy_ev_home_kwh": e["p_ev_kw"],
        "energy_battery_losses_kwh": float(log["p_bat_kw"].sum() * DT_H),
        "energy_pv_kwh": e["p_pv_kw"],
        "energy_import_kwh": float(np.clip(log["p_net_kw"], 0, None).sum() * DT_H),
        "energy_export_kwh": float(np.clip(-log["p_net_kw"], 0, None).sum() * DT_H),
        "heat_pump_kwh_per_heat_pump": e["p_hp_kw"] / max(int(hp_idx.sum()), 1),
        "heat_pump_kwh_per_all_electric": _mean_energy(log["p_hp_kw"], hp_idx & ~fleet.hp_hybrid),
        "heat_pump_kwh_per_hybrid": _mean_energy(log["p_hp_kw"], fleet.hp_hybrid),
        "ev_kwh_per_ev": e["p_ev_kw"] / max(n_ev, 1),
        "ev_public_charging_kwh": float(log["ev_public_kwh"].sum()),
        "heat_from_boilers_kwh": float(log["q_boiler_kw"][:, fleet.has_hp].sum() * DT_H),
        # equal terms between contracts: energies net of what is left stored at the end
        "stored_energy_change_ev_kwh": float(st["ev_battery_kwh"].sum()),
        "stored_energy_change_battery_kwh": float(st["home_battery_kwh"].sum()),
        "stored_energy_change_building_kwh_th": float(st["building_kwh_th"][hp_idx].sum()),
        "stored_energy_change_kwh": float(stored_elec.sum()),
        "energy_import_corrected_kwh": float(
            np.clip(log["p_net_kw"], 0, None).sum() * DT_H - stored_elec.sum()
        ),
        "energy_ev_home_corrected_kwh": float(e["p_ev_kw"] - elec_ev.sum()),
        "ev_kwh_per_ev_corrected": float((e["p_ev_kw"] - elec_ev.sum()) / max(n_ev, 1)),
        "energy_heat_pump_corrected_kwh": float(e["p_hp_kw"] - elec_building.sum()),
        # comfort: both sides, and the daily swing (twin.service)
        "comfort_rule": levels.comfort_rule,
        # heat-pump homes (the others heat with their own boiler, outside every contract)
        "comfort_kelvin_hours_below": float(kh_below[hp_idx].sum()),
        "comfort_kelvin_hours_above": float(kh_above[hp_idx].sum()),
        "comfort_kelvin_hours_total": float(kh_below[hp_idx].sum() + kh_above[hp_idx].sum()),
        "comfort_swing_max_k": float(cm.swing_k[:, hp_idx].max(initial=0.0)),
        "comfort_swing_days_over_share": float(
            (cm.swing_k[:, hp_idx] > levels.comfort_swing_k + 1e-6).sum() / n_hp_days
        )
        if n_hp_days
        else 0.0,
        "comfort_days_met_share": float(cm.day_met[:, hp_idx].sum() / n_hp_days)
        if n_hp_days
        else 1.0,
        # EV: range at the deadline or at departure, whichever first; the reserve
        "ev_range_checks": n_checks,
        "ev_range_checked_at_departure": int(em.range_at_departure.sum()),
        "ev_shortfall_kwh_total": float(em.range_short_kwh.sum()),
        "ev_shortfall_kwh_worst_day": float(em.range_short_kwh.max(initial=0.0)),
        "ev_unreachable_kwh": float(em.range_unreachable_kwh.sum()),
        "ev_days_met_share": float(
            1 - ((em.range_short_kwh > EV_CHECK_TOL_KWH) & em.range_checked).sum() / n_checks
        )
        if n_checks
        else 1.0,
        "ev_departures": n_dep,
        "ev_reserve_departures_short": int((em.departure_short_kwh > EV_CHECK_TOL_KWH).sum()),
        "ev_reserve_short_kwh_total": float(em.departure_short_kwh.sum()),
        "ev_reserve_departures_met_share": float(
            1 - (em.departure_short_kwh > EV_CHECK_TOL_KWH).sum() / n_dep
        )
        if n_dep
        else 1.0,
        "ev_reserve_home_steps_below": int(em.home_below_reserve.sum()),
        "ev_arrivals_below_reserve": em.arrivals_below_reserve,
        # spread across households (fairness): heat-pump homes and EV owners respectively
        **_spread("comfort_kelvin_hours", (kh_below + kh_above)[hp_idx]),
        **_spread("ev_shortfall_kwh", em.range_short_kwh.sum(axis=0)[fleet.has_ev]),
        **extra,
    }


def seasonal_cop(log: dict[str, np.ndarray], mask: np.ndarray, standby_kw: float = 0.0) -> float:
    """Heat the heat pumps of ``mask`` delivered (space heat + hot water, element included)
    over the electricity they used, standby included (``standby_kw`` per heat pump, counted
    with the base load in the logs: twin.devices.household.Exogenous); NaN without any."""
    q = log["q_hp_kw"][:, mask].sum()
    if "q_dhw_kw" in log:
        q = q + log["q_dhw_kw"][:, mask].sum()
    p = log["p_hp_kw"][:, mask].sum() + standby_kw * int(mask.sum()) * len(log["q_hp_kw"])
    return float(q / p) if p > 0 else float("nan")


def _hot_water_and_v2g_kpis(
    log: dict[str, np.ndarray], fleet: Fleet, st: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Hot water (its service level, as :mod:`twin.service` defines it), the heat pumps'
    seasonal COP and vehicle-to-grid."""
    tank = fleet.has_tank
    n_tank = int(tank.sum())
    ae = fleet.has_hp & ~fleet.hp_hybrid
    standby = float(fleet.hp_model.standby_kw)
    out: dict[str, Any] = {
        "households_with_tank": n_tank,
        "heat_pump_seasonal_cop_all_electric": seasonal_cop(log, ae, standby),
        "heat_pump_seasonal_cop_hybrid": seasonal_cop(log, fleet.hp_hybrid, standby),
        # the heat pumps' standby (in the base load, energy_base_kwh)
        "heat_pump_standby_kwh": standby * int(fleet.has_hp.sum()) * len(log["p_hp_kw"]) * DT_H,
    }
    if "dhw_draw_kw" in log:
        hw = dhw_measures(
            log["dhw_draw_kw"], log["dhw_delivered_kw"], tank, dhw_deliverable_kw(fleet)
        )
        n_days = hw.day_met.shape[0] * n_tank
        q_in = float(log["q_dhw_kw"].sum() * DT_H)
        delivered = float(log["dhw_delivered_kw"].sum() * DT_H)
        out.update(
            {
                "dhw_draw_kwh": float(log["dhw_draw_kw"].sum() * DT_H),
                "dhw_delivered_kwh": delivered,
                "dhw_shortfall_kwh_total": float(hw.shortfall_kwh.sum()),
                "dhw_undeliverable_kwh": float(hw.undeliverable_kwh.sum()),
                "dhw_shortfall_kwh_worst_day": float(hw.day_shortfall_kwh.max(initial=0.0)),
                "dhw_days_met_share": float(hw.day_met[:, tank].sum() / n_days) if n_days else 1.0,
                "energy_hot_water_kwh": float(log["p_dhw_kw"].sum() * DT_H),
                "hot_water_heat_kwh": q_in,
                "hot_water_element_kwh": float(log["q_dhw_element_kw"].sum() * DT_H),
                # what went in and was neither delivered nor left stored: the standing losses
                "hot_water_tank_losses_kwh": q_in - delivered - float(st["tank_kwh_th"].sum()),
                "stored_energy_change_tank_kwh_th": float(st["tank_kwh_th"].sum()),
                **_spread("dhw_shortfall_kwh", hw.shortfall_kwh.sum(axis=0)[tank]),
            }
        )
    v2g = fleet.has_v2g
    dis = np.clip(-log["p_ev_kw"], 0.0, None) * DT_H  # (T, H) kWh delivered by the cars
    out.update(
        {
            "households_with_v2g": int(v2g.sum()),
            "energy_v2g_discharge_kwh": float(dis.sum()),
            "v2g_wear_cost_eur": float((dis.sum(axis=0) * fleet.ev_wear_eur_per_kwh).sum()),
        }
    )
    return out


def per_household_table(
    log: dict[str, np.ndarray], fleet: Fleet, service: Any, t0_c: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Per-household KPI columns (for the results' per-household summary)."""
    levels = service if isinstance(service, ServiceLevels) else ServiceLevels.from_config(service)
    cm = comfort_measures(
        log["t_in_c"],
        log["q_hp_kw"] + log["q_boiler_kw"],
        fleet,
        levels,
        log["t_out_c"],
        log["q_gain_kw"],
        t0_c,
    )
    below, above = cm.kelvin_hours()
    return {
        "comfort_kelvin_hours_below": below,
        "comfort_kelvin_hours_above": above,
        "comfort_swing_max_k": cm.swing_k.max(axis=0, initial=0.0),
        "peak_kw": log["p_net_kw"].max(axis=0),
        "import_kwh": np.clip(log["p_net_kw"], 0, None).sum(axis=0) * DT_H,
        "heat_pump_kwh": log["p_hp_kw"].sum(axis=0) * DT_H,
        "ev_home_kwh": log["p_ev_kw"].sum(axis=0) * DT_H,
        **(
            {
                "hot_water_kwh": log["p_dhw_kw"].sum(axis=0) * DT_H,
                "dhw_draw_kwh": log["dhw_draw_kw"].sum(axis=0) * DT_H,
                "dhw_shortfall_kwh": dhw_measures(
                    log["dhw_draw_kw"], log["dhw_delivered_kw"], fleet.has_tank
                ).shortfall_kwh.sum(axis=0),
                "dhw_deliverable_kw": dhw_deliverable_kw(fleet),
            }
            if "dhw_draw_kw" in log
            else {}
        ),
        "v2g_discharge_kwh": np.clip(-log["p_ev_kw"], 0.0, None).sum(axis=0) * DT_H,
    }
