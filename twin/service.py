"""The service levels' definitions, in one place: when a car owes which energy, and how the
indoor temperature is judged.

The planners' constraints (:mod:`twin.optim.devices`, :mod:`twin.optim.cost_hems`), the HEMS
guards (:func:`twin.optim.devices.ev_guards`, :mod:`twin.contracts.hems`) and the KPIs
(:mod:`twin.kpi`) all read the promises from here, so they cannot disagree.

States and steps
----------------
Over ``R`` steps from step ``k0`` (a home mask of ``R`` rows), *state* ``s`` (``0 .. R``) is the
state at the start of step ``k0 + s`` (state 0: now; state ``s`` is reached at the end of step
``k0 + s - 1``).

The EV promise (:func:`ev_due`)
--------------------------------
* **Range**: the range energy (``ev_range_km`` × consumption, capped at the battery) is due at
  the deadline (``deadline_step`` of the day, 06:00 → 24) or at departure, whichever comes
  first: a car that is home in the step before the deadline owes it at the deadline (if it
  leaves exactly then, that is its departure); a car that is away then owes it at its last
  departure before the deadline.
* **Reserve**: the car keeps energy for an unplanned trip (``ev_reserve_km``) at all times: it
  never leaves home with less than its trip plus the reserve (capped at the battery), and at
  home it never sits below the reserve longer than charging at full power takes.

Nothing can charge faster than full power: the KPIs judge every check against what charging at
full power whenever the car is home could have reached from the window's start
(:func:`full_power_soc`), and report what even that could not reach separately.

Hot water (:func:`dhw_measures`)
--------------------------------
A household with a tank is promised hot water at its taps whenever it draws: the tank's hot
zone stands at its charging temperature, at or above the usable temperature
(``hot_water.t_usable_c``, 45 °C; the scenario keeps ``t_set_c`` above it), for as long as any
of it is left, so a draw is delivered at a usable temperature unless the tank runs out. What it
could not deliver is the *shortfall* (kWh, drawn minus delivered). As for the EV, nothing can
deliver more than the tank full at its setpoint and the heat pump (with the element) at full
output in the step: the part of a draw beyond that (a bath larger than a small tank holds) is
*undeliverable* and reported apart; a household-day is met when it has no other shortfall.
Measured like comfort: on the simulated result, per step (``dhw_draw_kw`` and
``dhw_delivered_kw`` in the run folder, ``dhw_deliverable_kw`` in households_summary.csv).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.devices.ev import ev_step
from twin.timegrid import DT_H, STEPS_PER_DAY, STEPS_PER_HOUR

__all__ = [
    "DHW_CHECK_TOL_KWH",
    "EvDue",
    "HotWaterMeasures",
    "ServiceLevels",
    "ev_due",
    "full_power_soc",
    "dhw_measures",
    "preheat_warming_k",
    "thermostat_q_max_kw",
    "trips_at_departure",
]

#: Below this a hot-water shortfall of a step is numerical noise (kWh).
DHW_CHECK_TOL_KWH = 1e-6


def trips_at_departure(trip_kwh: np.ndarray, departure: np.ndarray) -> np.ndarray:
    """Move each trip's energy from its arrival step to its departure step (``(T, n)``).

    The simulation takes a trip's energy at arrival; while the car is away nothing else
    happens to its battery, so taking it at departure is the same for every plan, and it lets
    a horizon that ends before the car is back still see the trip it must charge for. Trips
    that started before the horizon keep their arrival step.
    """
    t = np.arange(len(trip_kwh))[:, None]
    last_dep = np.maximum.accumulate(np.where(departure, t, -1), axis=0)  # (T, n)
    out = np.zeros_like(trip_kwh, dtype=float)
    rows, cols = np.nonzero(trip_kwh)
    dest = last_dep[rows, cols]
    dest = np.where(dest >= 0, dest, rows)
    np.add.at(out, (dest, cols), trip_kwh[rows, cols])
    return out


@dataclass(frozen=True)
class EvDue:
    """What the cars owe over ``R`` steps (states ``0 .. R``).

    Attributes
    ----------
    due_kwh : np.ndarray
        ``(R + 1, n)`` the energy each car must hold at each state (0: nothing due): the range
        at its check state, trip + reserve at every departure.
    range_state : np.ndarray
        ``(D, n)`` int, the state at which each deadline's range is checked (-1: not within
        the steps, e.g. the car left before them).
    range_at_departure : np.ndarray
        ``(D, n)`` bool, checked at departure (the car left at or before the deadline).
    departure_state : np.ndarray
        ``(R + 1, n)`` bool, the car leaves at this state (trip + reserve due).
    """

    due_kwh: np.ndarray
    range_state: np.ndarray
    range_at_departure: np.ndarray
    departure_state: np.ndarray


def ev_due(
    home: np.ndarray,
    departure: np.ndarray,
    trip_at_departure_kwh: np.ndarray,
    k0: int,
    deadline_step: int,
    range_kwh: np.ndarray,
    reserve_kwh: np.ndarray,
    capacity_kwh: np.ndarray,
) -> EvDue:
    """The EV promise over ``R`` steps from ``k0`` (see the module docstring).

    Parameters
    ----------
    home, departure, trip_at_departure_kwh : np.ndarray
        ``(R, n)`` per step from ``k0``: car at home; first step away; the energy of the trip
        that starts there (:func:`trips_at_departure`).
    range_kwh, reserve_kwh, capacity_kwh : np.ndarray
        ``(n,)`` range energy due at the deadline, the reserve, the battery.
    """
    r, n = home.shape
    due = np.zeros((r + 1, n))
    dep_state = np.zeros((r + 1, n), bool)
    dep_state[:r] = departure
    leave = np.minimum(trip_at_departure_kwh + reserve_kwh[None, :], capacity_kwh[None, :])
    due[:r] = np.where(departure, leave, 0.0)
    states = np.arange(1, r + 1)
    deadlines = states[(k0 + states) % STEPS_PER_DAY == deadline_step]
    # the last departure at or before each state (-1: none within the steps)
    t = np.arange(r)[:, None]
    last_dep = np.maximum.accumulate(np.where(departure, t, -1), axis=0)
    range_state = np.full((len(deadlines), n), -1)
    at_dep = np.zeros((len(deadlines), n), bool)
    for d, s in enumerate(deadlines):
        was_home = home[s - 1]
        away_from = last_dep[s - 1]
        range_state[d] = np.where(was_home, s, away_from)
        at_dep[d] = ~was_home & (away_from >= 0)
    cols = np.broadcast_to(np.arange(n), range_state.shape)
    ok = range_state >= 0
    np.maximum.at(
        due, (range_state[ok], cols[ok]), np.broadcast_to(range_kwh, range_state.shape)[ok]
    )
    at_dep |= ok & dep_state[np.maximum(range_state, 0), cols]  # leaving exactly at the deadline
    return EvDue(due, range_state, at_dep & ok, dep_state)


def full_power_soc(
    soc0_kwh: np.ndarray,
    home: np.ndarray,
    trip_kwh: np.ndarray,
    p_max_kw: np.ndarray,
    capacity_kwh: np.ndarray,
) -> np.ndarray:
    """``(T + 1, n)`` the state of charge if every car charged at full power whenever home
    (trips at arrival, the rest charged elsewhere as in :func:`twin.devices.ev.ev_step`): the
    most any contract can reach."""
    out = np.empty((len(home) + 1, len(soc0_kwh)))
    out[0] = s = np.asarray(soc0_kwh, dtype=float)
    for k in range(len(home)):
        _, s, _ = ev_step(s, p_max_kw, home[k], trip_kwh[k], capacity_kwh, p_max_kw, DT_H)
        out[k + 1] = s
    return out


@dataclass(frozen=True)
class ServiceLevels:
    """The service levels every run measures (``service.*`` of the config).

    Attributes
    ----------
    comfort_band_k : float
        The indoor temperature stays at most this far below the setpoint.
    comfort_above_k : float
        ... and at most this far above it, counting only warmth that pre-heating brought (sun,
        appliances and a thermostat at the setpoint bring none: there is no cooling, and that
        warmth is not a contract's doing; :func:`preheat_warming_k`).
    comfort_rule : str
        ``swing``: the day's temperature also varies by no more than ``comfort_swing_k``
        (the E.DSO paper's wording); ``band``: the band alone.
    comfort_swing_k : float
        The largest swing within a day (max − min of the temperature relative to the
        setpoint, warmth above the setpoint that pre-heating did not bring taken out).
    ev_range_km, ev_deadline_h, ev_reserve_km : float
        The EV promise (module docstring).
    """

    comfort_band_k: float = 1.0
    comfort_above_k: float = 1.0
    comfort_rule: str = "swing"
    comfort_swing_k: float = 1.0
    ev_range_km: float = 150.0
    ev_deadline_h: float = 6.0
    ev_reserve_km: float = 30.0

    @classmethod
    def from_config(cls, cfg: object) -> ServiceLevels:
        names = cls.__dataclass_fields__
        get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: getattr(cfg, k, d))
        return cls(**{k: get(k) for k in names if get(k, None) is not None})

    @property
    def swing_k(self) -> float | None:
        """The swing limit when the swing rule applies (None: band only)."""
        return self.comfort_swing_k if self.comfort_rule == "swing" else None

    @property
    def deadline_step(self) -> int:
        return int(round(self.ev_deadline_h * STEPS_PER_HOUR)) % STEPS_PER_DAY


def preheat_warming_k(
    t_in_c: np.ndarray,
    q_heat_kw: np.ndarray,
    t_out_c: np.ndarray,
    q_gain_kw: np.ndarray,
    setpoint_c: np.ndarray,
    r_k_per_kw: np.ndarray,
    a_step: np.ndarray,
    q_max_kw: np.ndarray,
    t0_c: np.ndarray | None = None,
) -> np.ndarray:
    """``(T, n)`` how much warmer each home is at the end of each step than the same home
    under a thermostat that holds its setpoint (and never pre-heats) would have been, from the
    same state at the start: the warming a contract's heating brought (negative: cooler).

    The counterfactual home gets the same weather and gains; its thermostat heats just enough
    to reach the setpoint each step (at most ``q_max_kw``: the heat pump's capacity, unlimited
    with a hybrid's boiler). The 1R1C building is linear, so the difference ``y`` follows
    ``y' = a y + (1 - a) R (q - q_thermostat)``. Warmth above the setpoint beyond ``y`` is the
    sun's and the appliances' (there is no cooling): not a contract's doing.

    ``t_in_c``: the temperature at the end of each step; ``t0_c``: at the start of the first
    (default: the first step's end).
    """
    loss = 1.0 - a_step
    gain = loss * r_k_per_kw
    start = t_in_c[0] if t0_c is None else np.asarray(t0_c, float)
    out = np.empty(t_in_c.shape, dtype=float)
    y = np.zeros(t_in_c.shape[1])
    for k in range(len(t_in_c)):
        t_cf = start - y  # the counterfactual at the start of step k
        need = (setpoint_c - a_step * t_cf - loss * t_out_c[k]) / gain - q_gain_kw[k]
        q_cf = np.minimum(np.maximum(need, 0.0), q_max_kw)  # np.clip, without its overhead
        y = a_step * y + gain * (q_heat_kw[k] - q_cf)
        out[k] = y
        start = t_in_c[k]
    return out


def thermostat_q_max_kw(hp_q_max_kw: np.ndarray, hybrid: np.ndarray) -> np.ndarray:
    """The heat a home's own thermostat could deliver: its heat pump's capacity, unlimited with
    a boiler (a hybrid's, or a home without a heat pump: pass ``hybrid | ~has_hp``)."""
    return np.where(hybrid, np.inf, hp_q_max_kw)


@dataclass(frozen=True)
class HotWaterMeasures:
    """The hot-water promise over the reported steps (module docstring)."""

    shortfall_kwh: np.ndarray  # (T, H) drawn but not delivered
    undeliverable_kwh: np.ndarray  # (T, H) of which nothing could have delivered
    day_shortfall_kwh: np.ndarray  # (days, H) the rest, per day
    day_met: np.ndarray  # (days, H) bool: no such shortfall that day (True without a tank)
    has_tank: np.ndarray  # (H,)


def dhw_measures(
    draw_kw: np.ndarray,
    delivered_kw: np.ndarray,
    has_tank: np.ndarray,
    deliverable_kw: np.ndarray | None = None,
) -> HotWaterMeasures:
    """Every hot-water check of the window from the draws and what the tanks delivered
    (``(T, H)`` kW each); ``deliverable_kw`` ``(H,)``: the most a tank full at its setpoint
    with the heat pump and element at full output delivers in a step (None: no limit)."""
    draw = np.asarray(draw_kw)
    tank = np.asarray(has_tank, bool)
    short = np.where(tank, np.maximum(draw - np.asarray(delivered_kw), 0.0) * DT_H, 0.0)
    beyond = np.zeros_like(short)
    if deliverable_kw is not None:
        beyond = np.minimum(np.maximum(draw - deliverable_kw, 0.0) * DT_H, short)
    n_t, n_h = short.shape
    days = n_t // STEPS_PER_DAY
    rest = (short - beyond)[: days * STEPS_PER_DAY]
    per_day = rest.reshape(days, STEPS_PER_DAY, n_h).sum(axis=1)
    return HotWaterMeasures(short, beyond, per_day, per_day <= DHW_CHECK_TOL_KWH, tank)
