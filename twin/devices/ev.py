"""Electric vehicle: trips drawn per household and day, state of charge, home charging.

Trips (per household and day, all vectorised):

* the car is used on a day with probability ``days_used_per_week / 7``;
* it leaves at the household's habitual departure hour (scenario range) plus N(0, 0.5 h) and
  comes back at its habitual arrival hour plus N(0, 0.75 h), at least 1 h after leaving;
* it drives a log-normal distance (sigma 0.5) whose mean makes the annual distance equal to the
  scenario's ``annual_km`` (CBS 85405NED: 18,100 km for BEVs);
* the trip's energy ``km * consumption_kwh_per_km`` leaves the battery at the arrival step; if
  the battery holds less, the rest is charged elsewhere (``public_kwh``), so energy is conserved:
  ``Δsoc = eta * E_home_charge - E_drive + E_public``.

Vehicle-to-grid (optional, per car): a car whose ``bidirectional`` flag is set accepts negative
requests while at home and discharges up to ``p_dis_max_kw`` (grid side), never taking the
battery below ``reserve_kwh`` (e.g. the energy for the contract's guaranteed range). Energy
through the discharge path loses ``DISCHARGE_EFFICIENCY``:
``Δsoc = eta * E_charge - E_discharge / eta_dis - E_drive + E_public``. Unidirectional cars
ignore negative requests exactly as before. The wear cost of cycling the battery for the grid is
:func:`v2g_wear_cost_eur` (``V2G_WEAR_COST_EUR_PER_KWH`` per kWh delivered).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.timegrid import STEPS_PER_DAY, STEPS_PER_HOUR


def _clip(x, lo, hi):
    """``np.clip`` without its dispatch overhead (the same result: ``min(max(x, lo), hi)``)."""
    if hi is None:
        return np.maximum(x, lo)
    return np.minimum(np.maximum(x, lo), hi)


CHARGE_EFFICIENCY = 0.92  # AC charger + battery, typical 0.9-0.95 (assumption)
# battery -> grid through a bidirectional charger: same chain backwards (assumption)
DISCHARGE_EFFICIENCY = 0.92
# battery wear per kWh delivered to the grid: pack ~120 EUR/kWh / ~2,500 equivalent full cycles
# ~= 0.05 EUR/kWh (assumption derived from pack prices and cycle-life ratings; sweep 0.03-0.10)
V2G_WEAR_COST_EUR_PER_KWH = 0.05
DEPARTURE_JITTER_H = 0.5
ARRIVAL_JITTER_H = 0.75
KM_LOGNORMAL_SIGMA = 0.5


@dataclass(frozen=True)
class TripSchedule:
    """Where each car is, per step (T, H): ``home`` mask, trip energy removed at arrival."""

    home: np.ndarray  # bool (T, H)
    trip_kwh: np.ndarray  # float (T, H), non-zero at arrival steps
    departure: np.ndarray  # bool (T, H), True at the first step away
    km: np.ndarray  # float (days, H) distance driven per day


def draw_trips(
    rng: np.random.Generator,
    days: int,
    departure_h: np.ndarray,
    arrival_h: np.ndarray,
    annual_km: float,
    days_used_per_week: float,
    consumption_kwh_per_km: np.ndarray,
    has_ev: np.ndarray | None = None,
) -> TripSchedule:
    """Draw every car's trips for ``days`` days starting at midnight.

    Households without an EV (``has_ev`` False) never leave: their columns are always home.
    """
    n = len(departure_h)
    p_use = days_used_per_week / 7.0
    used = rng.random((days, n)) < p_use
    if has_ev is not None:
        used &= has_ev
    dep = departure_h + rng.normal(0.0, DEPARTURE_JITTER_H, (days, n))
    arr = arrival_h + rng.normal(0.0, ARRIVAL_JITTER_H, (days, n))
    dep = _clip(dep, 5.0, 12.0)
    arr = _clip(np.maximum(arr, dep + 1.0), 0.0, 23.75)
    mean_km = annual_km / (365.0 * max(p_use, 1e-9))
    mu = np.log(mean_km) - 0.5 * KM_LOGNORMAL_SIGMA**2 if mean_km > 0 else -np.inf
    km = np.where(used, rng.lognormal(mu, KM_LOGNORMAL_SIGMA, (days, n)), 0.0)

    t = np.arange(days * STEPS_PER_DAY)
    day_of_step = t // STEPS_PER_DAY
    dep_step = (
        day_of_step[:, None] * STEPS_PER_DAY
        + np.round(dep * STEPS_PER_HOUR).astype(int)[day_of_step]
    )
    arr_step = (
        day_of_step[:, None] * STEPS_PER_DAY
        + np.round(arr * STEPS_PER_HOUR).astype(int)[day_of_step]
    )
    used_t = used[day_of_step]
    away = used_t & (t[:, None] >= dep_step) & (t[:, None] < arr_step)
    arrival = used_t & (t[:, None] == arr_step)
    departure = used_t & (t[:, None] == dep_step)
    trip_kwh = np.where(arrival, (km * consumption_kwh_per_km)[day_of_step], 0.0)
    return TripSchedule(home=~away, trip_kwh=trip_kwh, departure=departure, km=km)


def ev_step(
    soc_kwh: np.ndarray,
    p_req_kw: np.ndarray,
    home: np.ndarray,
    trip_kwh: np.ndarray,
    capacity_kwh: np.ndarray,
    p_max_kw: np.ndarray,
    dt_h: float,
    bidirectional: np.ndarray | None = None,
    p_dis_max_kw: np.ndarray | float | None = None,
    reserve_kwh: np.ndarray | float = 0.0,
    discharge_efficiency: float = DISCHARGE_EFFICIENCY,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step: trip energy leaves at arrival, then home charging (or V2G discharge) within limits.

    ``p_req_kw`` > 0 charges; < 0 discharges, only for cars with ``bidirectional`` True (bool
    (H,), default none), limited to ``p_dis_max_kw`` (kW at the grid side, default the charger's
    ``p_max_kw``) and to the energy above ``reserve_kwh`` (``discharge_efficiency``: battery to
    grid). Returns ``(p_kw, new_soc_kwh,
    public_kwh)`` with ``p_kw`` < 0 while discharging.
    """
    public_kwh = np.maximum(trip_kwh - soc_kwh, 0.0)
    soc = soc_kwh - trip_kwh + public_kwh
    headroom_kw = (capacity_kwh - soc) / (CHARGE_EFFICIENCY * dt_h)
    p_kw = np.where(home, _clip(p_req_kw, 0.0, np.minimum(p_max_kw, headroom_kw)), 0.0)
    soc = np.minimum(soc + CHARGE_EFFICIENCY * p_kw * dt_h, capacity_kwh)
    if bidirectional is None:
        return p_kw, soc, public_kwh
    dis_max = p_max_kw if p_dis_max_kw is None else p_dis_max_kw
    available_kw = np.maximum(soc - reserve_kwh, 0.0) * discharge_efficiency / dt_h
    p_dis = np.where(
        home & bidirectional, _clip(-p_req_kw, 0.0, np.minimum(dis_max, available_kw)), 0.0
    )
    soc = soc - p_dis / discharge_efficiency * dt_h
    return p_kw - p_dis, soc, public_kwh


def v2g_wear_cost_eur(
    p_ev_kw: np.ndarray,
    dt_h: float,
    cost_eur_per_kwh: float | np.ndarray = V2G_WEAR_COST_EUR_PER_KWH,
) -> np.ndarray:
    """Battery wear cost of the energy a car delivered to the grid: ``p_ev_kw`` (T, H) or (H,),
    negative while discharging; summed over time -> (H,) EUR (or per step for (H,) input)."""
    e_dis_kwh = _clip(-np.asarray(p_ev_kw), 0.0, None) * dt_h
    if e_dis_kwh.ndim > 1:
        e_dis_kwh = e_dis_kwh.sum(axis=0)
    return e_dis_kwh * cost_eur_per_kwh
