"""Household-side KPIs: energy per device class, comfort, EV service, coincident peak.

Grid KPIs (transformer, cables, voltages, losses) come from :mod:`twin.grid.compliance`; both
end up in one flat dict whose keys carry their units.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twin.fleet import Fleet
from twin.service import ev_deadline_states
from twin.timegrid import DT_H, STEPS_PER_DAY, STEPS_PER_HOUR


def comfort_kelvin_hours(t_in_c: np.ndarray, setpoint_c: np.ndarray, band_k: float) -> np.ndarray:
    """Per household: K·h below ``setpoint - band`` over the run.

    The comfort term is about heating: only the cold side counts. Warm excursions (summer
    gains; heat pumps here do not cool) are not the grid's doing and are not counted.
    """
    shortfall = np.maximum(setpoint_c - band_k - t_in_c, 0.0)
    return shortfall.sum(axis=0) * DT_H


def ev_deadline_shortfall_kwh(
    ev_soc_kwh: np.ndarray,
    home: np.ndarray,
    fleet: Fleet,
    range_km: float,
    deadline_h: float,
) -> np.ndarray:
    """``(D, H)``: energy short of ``range_km`` at each deadline of the window (D: one a day),
    for cars that owe it (:func:`twin.service.ev_deadline_states`).

    The state of charge is read at the end of the step just before the deadline (so 06:00 reads
    the state reached by 06:00). Cars that do not owe it, and households without an EV, count
    as 0. The requirement is capped at the battery capacity.
    """
    deadline_step = int(round(deadline_h * STEPS_PER_HOUR)) % STEPS_PER_DAY
    states, due = ev_deadline_states(home, 0, deadline_step)
    need = np.minimum(range_km * fleet.ev_kwh_per_km, fleet.ev_capacity_kwh)
    short = np.maximum(need - ev_soc_kwh[states - 1], 0.0)
    return np.where(due & fleet.has_ev, short, 0.0)


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
    log: dict[str, np.ndarray], fleet: Fleet, home: np.ndarray, service: Any
) -> dict[str, Any]:
    """KPIs of the simulated (not planned) household behaviour."""
    n_t, n_h = log["p_net_kw"].shape
    days = n_t // STEPS_PER_DAY
    total_kw = log["p_net_kw"].sum(axis=1)
    e = {
        name: float(log[name].sum() * DT_H)
        for name in ("p_base_kw", "p_hp_kw", "p_ev_kw", "p_pv_kw")
    }
    kh = comfort_kelvin_hours(log["t_in_c"], fleet.setpoint_c, service.comfort_band_k)
    hp_idx = fleet.has_hp
    short = ev_deadline_shortfall_kwh(
        log["ev_soc_kwh"], home, fleet, service.ev_range_km, service.ev_deadline_h
    )
    # a household-day meets the comfort term if it spends no step outside the band that day
    outside = log["t_in_c"] < fleet.setpoint_c - service.comfort_band_k - 1e-9
    outside_day = outside[: days * STEPS_PER_DAY].reshape(days, STEPS_PER_DAY, n_h).any(axis=1)
    n_ev_days = int(fleet.has_ev.sum()) * short.shape[0]
    n_hp_days = int(hp_idx.sum()) * days
    return {
        "households": n_h,
        "households_with_heat_pump": int(hp_idx.sum()),
        "households_with_ev": int(fleet.has_ev.sum()),
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
        "ev_kwh_per_ev": e["p_ev_kw"] / max(int(fleet.has_ev.sum()), 1),
        "ev_public_charging_kwh": float(log["ev_public_kwh"].sum()),
        "heat_from_boilers_kwh": float(log["q_boiler_kw"][:, fleet.has_hp].sum() * DT_H),
        "comfort_kelvin_hours_total": float(kh.sum()),
        "comfort_days_met_share": float(1 - outside_day[:, hp_idx].sum() / n_hp_days)
        if n_hp_days
        else 1.0,
        "ev_shortfall_kwh_total": float(short.sum()),
        "ev_shortfall_kwh_worst_day": float(short.max()) if short.size else 0.0,
        # spread across households (fairness): heat-pump homes and EV owners respectively
        **_spread("comfort_kelvin_hours", kh[hp_idx]),
        **_spread("ev_shortfall_kwh", short.sum(axis=0)[fleet.has_ev]),
        "ev_days_met_share": float(1 - (short > 1e-6).sum() / n_ev_days) if n_ev_days else 1.0,
    }


def per_household_table(
    log: dict[str, np.ndarray], fleet: Fleet, service: Any
) -> dict[str, np.ndarray]:
    """Per-household KPI columns (for the results' per-household summary)."""
    return {
        "comfort_kelvin_hours": comfort_kelvin_hours(
            log["t_in_c"], fleet.setpoint_c, service.comfort_band_k
        ),
        "peak_kw": log["p_net_kw"].max(axis=0),
        "import_kwh": np.clip(log["p_net_kw"], 0, None).sum(axis=0) * DT_H,
        "heat_pump_kwh": log["p_hp_kw"].sum(axis=0) * DT_H,
        "ev_home_kwh": log["p_ev_kw"].sum(axis=0) * DT_H,
    }
