"""Domestic hot water: stochastic draws and a fully mixed storage tank.

Draws (:func:`draw_dhw_demand`), DHWcalc-style (Jordan & Vajen): four draw categories with the
volume shares of DHWcalc's single-family default (short 14 %, medium 36 %, bath 10 %, shower
40 %) and typical volumes, drawn as Poisson events whose rate follows an hourly probability
profile with morning and evening peaks (DHWcalc-like, assumption), each household's daily
volume varying from day to day (log-normal, sigma 0.3). The daily volume per person is
36 L at 60 °C (range 30-45): derived from Vewin "Waterverbruik thuis 2016" (showering 49.8 L
per person and day, mixed at ~38 °C, i.e. ~28 L at 60 °C, plus bath, wash basin and kitchen).
Demand is expressed as heat: ``q_draw_kw`` = drawn volume × c_water × (60 °C − T_cold) / dt,
T_cold = 10 °C. A thermostatic mixing valve makes the heat drawn independent of the tank
temperature as long as the tank is at least at its usable temperature.

Tank (:class:`DhwTank`, :func:`tank_step`): a stratified store with two zones, hot water at
the charging temperature ``t_set_c`` on top of cold water (a moving thermocline, as in the
usual heat-pump boiler). The state is the stored heat above cold water, ``e_kwh`` in
``[0, C (t_set − T_cold)]``; water leaves at ``t_set_c`` (>= the usable 45 °C) while any hot
zone is left. Standing losses come from the hot zone, ``UA (t_set − T_room) e / e_full``, so
``de/dt = Q_in − Q_draw − λ e`` with ``λ = UA (t_set − T_room) / e_full``, integrated exactly
over a step with constant inputs (``a = exp(−λ dt)``). A draw larger than what is stored is
cut, and the rest is the *shortfall* (kWh): the hot-water service level. UA from EU 812/2013's
storage classes (S < 8.5 + 4.25 V^0.4 W for class B, at 45 K): ≈ 1 W/K for 200 L. Charging
follows a thermostat on the mean temperature with a hysteresis (a sensor at mid-height starts
charging when a third to half of the store is used).

Flexibility (:func:`tank_energy_bounds_kwh`, :func:`tank_linear_model`): ``e`` in
``[0, e_full]`` (``e_max`` at ``t_max_c`` when a planner boosts), and the exact step is linear in
(state, heat in, heat drawn), so a planner can treat it as a lossy store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.fleet import Fleet
from twin.timegrid import DT_H, STEPS_PER_DAY, STEPS_PER_HOUR

WATER_KWH_PER_L_K = 4.186 / 3600.0  # c_p of water, kWh per litre and kelvin
T_HOT_REF_C = 60.0  # draw volumes are counted as litres at 60 °C
T_COLD_C = 10.0  # cold mains water (assumption; Dutch drinking water 5-20 °C over the year)
T_ROOM_C = 18.0  # where the tank stands (assumption)
LITRES_60C_PER_PERSON_DAY = (30.0, 45.0)  # derived from Vewin 2016 (see module docstring)
DAY_VOLUME_SIGMA = 0.3  # day-to-day spread of a household's hot-water use (assumption)
#: category -> (share of the volume, mean litres at 60 °C per draw) after DHWcalc's defaults
#: (short 1 L/min x 1 min, medium 6 L/min x 1 min, bath 14 L/min x 10 min, shower 8 L/min x
#: 8 min; mixed water is ~56 % hot water at 60 °C)
DRAW_CATEGORIES: dict[str, tuple[float, float]] = {
    "short": (0.14, 0.6),
    "medium": (0.36, 3.4),
    "bath": (0.10, 78.0),
    "shower": (0.40, 36.0),
}
#: probability of a draw by hour of the day (DHWcalc-like morning and evening peaks; assumption)
HOURLY_PROFILE = np.array(
    [0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 2.2, 3.0, 2.4, 1.6, 1.2, 1.1,
     1.3, 1.1, 0.9, 0.9, 1.0, 1.3, 1.7, 1.8, 1.6, 1.3, 0.9, 0.5]
)  # fmt: skip
HOURLY_PROFILE = HOURLY_PROFILE / HOURLY_PROFILE.sum()


@dataclass(frozen=True)
class DhwTank:
    """Hot-water tanks of the households (H,) arrays; ``volume_l`` 0 where there is none."""

    volume_l: np.ndarray
    ua_kw_per_k: np.ndarray
    t_set_c: np.ndarray  # charging temperature = temperature of the hot zone
    hysteresis_k: np.ndarray  # charging starts when the mean temperature is this far below
    t_max_c: np.ndarray  # highest temperature a planner may charge to
    t_min_c: float = 45.0  # usable temperature (the hot zone is always above it)
    t_cold_c: float = T_COLD_C
    t_room_c: float = T_ROOM_C

    @property
    def c_kwh_per_k(self) -> np.ndarray:
        return self.volume_l * WATER_KWH_PER_L_K

    @property
    def e_full_kwh(self) -> np.ndarray:
        """Stored heat of a tank full of water at ``t_set_c`` (above cold water)."""
        return self.c_kwh_per_k * (self.t_set_c - self.t_cold_c)

    @property
    def loss_rate_per_h(self) -> np.ndarray:
        """``λ``: standing loss per stored kWh and hour (0 where there is no tank)."""
        e = self.e_full_kwh
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = self.ua_kw_per_k * (self.t_set_c - self.t_room_c) / np.where(e > 0, e, 1.0)
        return np.where(e > 0, lam, 0.0)


def tank_of(fleet: Fleet) -> DhwTank:
    """The fleet's tanks (volume 0 where a household has none)."""
    m = fleet.dhw_model
    return DhwTank(
        volume_l=np.where(fleet.has_tank, fleet.tank_volume_l, 0.0),
        ua_kw_per_k=np.where(fleet.has_tank, fleet.tank_ua_kw_per_k, 0.0),
        t_set_c=fleet.tank_t_set_c,
        hysteresis_k=fleet.tank_hysteresis_k,
        t_max_c=fleet.tank_t_max_c,
        t_min_c=m.t_usable_c,
        t_cold_c=m.t_cold_c,
        t_room_c=m.t_room_c,
    )


def deliverable_kw(fleet: Fleet) -> np.ndarray:
    """``(H,)`` the most hot water (heat, kW over a step) a household's tank can deliver: full
    at its setpoint, with the heat pump and the element at full output (0 without a tank)."""
    tank = tank_of(fleet)
    a, b = tank_linear_model(tank)
    q_in = np.where(fleet.has_tank, fleet.hp_q_max_kw + fleet.tank_element_kw, 0.0)
    return np.where(tank.volume_l > 0, a * tank.e_full_kwh / b + q_in, 0.0)


def thermostat_start_kwh(tank: DhwTank) -> np.ndarray:
    """Stored heat at which the tank's own thermostat starts charging (``hysteresis_k`` below
    the setpoint on the mean temperature)."""
    return np.maximum(tank.c_kwh_per_k * (tank.t_set_c - tank.hysteresis_k - tank.t_cold_c), 0.0)


def draw_heat_kwh_per_litre(t_cold_c: float = T_COLD_C) -> float:
    """Heat of one litre counted at 60 °C above the cold water (kWh)."""
    return WATER_KWH_PER_L_K * (T_HOT_REF_C - t_cold_c)


def expected_draw_kw(
    persons: np.ndarray,
    litres_per_person_day: np.ndarray,
    n_steps: int,
    start_step: int = 0,
    t_cold_c: float = T_COLD_C,
) -> np.ndarray:
    """The mean of :func:`draw_dhw_demand` (T, H): what a household's HEMS expects its taps to
    draw at each step from ``start_step`` (steps since a midnight), without knowing the day's
    showers and baths."""
    step_share = np.repeat(HOURLY_PROFILE / STEPS_PER_HOUR, STEPS_PER_HOUR)  # (96,)
    tod = (start_step + np.arange(n_steps)) % STEPS_PER_DAY
    day_kwh = np.asarray(persons, float) * litres_per_person_day * draw_heat_kwh_per_litre(t_cold_c)
    return step_share[tod][:, None] * day_kwh[None, :] / DT_H


def storage_loss_w(volume_l: np.ndarray, energy_class: str = "B") -> np.ndarray:
    """Upper standing loss (W at 45 K) of a storage class in EU 812/2013 Annex II."""
    a, b = {"A": (5.5, 3.16), "B": (8.5, 4.25), "C": (12.0, 5.93)}[energy_class]
    return a + b * np.asarray(volume_l, float) ** 0.4


def draw_tanks(rng: np.random.Generator, persons: np.ndarray, has_tank: np.ndarray) -> DhwTank:
    """A tank per household with ``has_tank``: 150 L up to two persons, 200 L up to four,
    300 L for five or more (common heat-pump boiler sizes, assumption); standing loss between
    EU classes A and C; charged to 50-55 °C, hysteresis 12-20 K on the mean temperature
    (assumption), planner boost up to 60 °C."""
    persons = np.asarray(persons)
    n = len(persons)
    vol = np.where(persons <= 2, 150.0, np.where(persons <= 4, 200.0, 300.0))
    vol = np.where(has_tank, vol, 0.0)
    loss_w = rng.uniform(storage_loss_w(vol, "A"), storage_loss_w(vol, "C"))
    return DhwTank(
        volume_l=vol,
        ua_kw_per_k=np.where(has_tank, loss_w / 45.0 / 1000.0, 0.0),
        t_set_c=rng.uniform(50.0, 55.0, n),
        hysteresis_k=rng.uniform(12.0, 20.0, n),
        t_max_c=np.full(n, 60.0),
    )


def draw_dhw_demand(
    rng: np.random.Generator,
    persons: np.ndarray,
    n_days: int,
    litres_per_person_day: np.ndarray | None = None,
    day_volume_sigma: float = DAY_VOLUME_SIGMA,
    t_cold_c: float = T_COLD_C,
) -> np.ndarray:
    """Hot-water heat demand ``q_draw_kw`` (T, H), T = 96 ``n_days``, starting at midnight.

    ``litres_per_person_day`` (H,) at 60 °C (drawn from ``LITRES_60C_PER_PERSON_DAY`` if None).
    """
    persons = np.asarray(persons, float)
    n = len(persons)
    if litres_per_person_day is None:
        litres_per_person_day = rng.uniform(*LITRES_60C_PER_PERSON_DAY, n)
    s = day_volume_sigma
    day_l = (persons * litres_per_person_day) * rng.lognormal(-0.5 * s * s, s, (n_days, n))
    step_share = np.repeat(HOURLY_PROFILE / STEPS_PER_HOUR, STEPS_PER_HOUR)  # (96,)
    litres = np.zeros((n_days * STEPS_PER_DAY, n))
    for share, mean_l in DRAW_CATEGORIES.values():
        rate = (day_l[:, None, :] * share / mean_l) * step_share[None, :, None]
        counts = rng.poisson(rate.reshape(-1, n))
        litres += counts * mean_l * rng.lognormal(-0.5 * 0.3**2, 0.3, counts.shape)
    return litres * draw_heat_kwh_per_litre(t_cold_c) / DT_H


def tank_linear_model(tank: DhwTank, dt_h: float = DT_H) -> tuple[np.ndarray, np.ndarray]:
    """Exact step as ``e' = a e + b (Q_in − Q_draw)`` -> ``(a, b)`` (H,): ``a = exp(−λ dt)``,
    ``b = (1 − a) / λ`` (→ dt without losses)."""
    lam = tank.loss_rate_per_h
    a = np.exp(-lam * dt_h)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where(lam > 0, (1.0 - a) / np.where(lam > 0, lam, 1.0), dt_h)
    return a, b


def tank_step(
    e_kwh: np.ndarray,
    q_in_kw: np.ndarray,
    q_draw_kw: np.ndarray,
    tank: DhwTank,
    dt_h: float = DT_H,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One exact step. Returns ``(new_e_kwh, q_delivered_kw, shortfall_kwh)``: a draw the store
    cannot cover is cut to what it holds (the end state is then empty)."""
    a, b = tank_linear_model(tank, dt_h)
    free = a * e_kwh + b * q_in_kw  # end state without any draw
    q_ok = np.maximum(free, 0.0) / b
    has = tank.volume_l > 0
    q_del = np.where(has, np.clip(q_draw_kw, 0.0, q_ok), 0.0)
    new_e = np.where(has, np.maximum(free - b * q_del, 0.0), 0.0)
    return new_e, q_del, (np.asarray(q_draw_kw) - q_del) * dt_h


def tank_mean_energy_kwh(
    e_kwh: np.ndarray, q_net_kw: np.ndarray, tank: DhwTank, dt_h: float = DT_H
) -> np.ndarray:
    """Exact mean stored heat over a step with constant net heat ``q_net_kw`` = in − drawn."""
    lam = tank.loss_rate_per_h
    a = np.exp(-lam * dt_h)
    with np.errstate(divide="ignore", invalid="ignore"):
        e_eq = np.where(lam > 0, q_net_kw / np.where(lam > 0, lam, 1.0), 0.0)
        frac = np.where(lam > 0, (1.0 - a) / np.where(lam > 0, lam * dt_h, 1.0), 1.0)
    mean = e_eq + (e_kwh - e_eq) * frac
    return np.where(lam > 0, mean, e_kwh + 0.5 * q_net_kw * dt_h)


def tank_energy_bounds_kwh(tank: DhwTank) -> tuple[np.ndarray, np.ndarray]:
    """The store as a planner sees it: ``(0, e_max_kwh)``, full at ``t_max_c``."""
    e_max = tank.c_kwh_per_k * (tank.t_max_c - tank.t_cold_c)
    return np.zeros_like(e_max), e_max


def mean_temperature_c(e_kwh: np.ndarray, tank: DhwTank) -> np.ndarray:
    """Volume-mean tank temperature of the stored heat."""
    c = np.where(tank.c_kwh_per_k > 0, tank.c_kwh_per_k, np.inf)
    return tank.t_cold_c + e_kwh / c


def charging_temperature_c(e_kwh: np.ndarray, tank: DhwTank) -> np.ndarray:
    """The temperature a heat pump charges the tank at: its setpoint, or the tank's mean
    temperature when it holds more than full at the setpoint (a boost, up to ``t_max_c``)."""
    return np.clip(mean_temperature_c(e_kwh, tank), tank.t_set_c, tank.t_max_c)


def thermostat_charging(e_kwh: np.ndarray, charging: np.ndarray, tank: DhwTank) -> np.ndarray:
    """Hysteresis on the mean temperature: start ``hysteresis_k`` below ``t_set_c``, stop when
    full -> new charging flag."""
    e_start = tank.c_kwh_per_k * (tank.t_set_c - tank.hysteresis_k - tank.t_cold_c)
    start = e_kwh < e_start
    stop = e_kwh >= tank.e_full_kwh * (1.0 - 1e-9)
    return (charging | start) & ~stop & (tank.volume_l > 0)


def heat_to_fill_kw(
    e_kwh: np.ndarray,
    q_draw_kw: np.ndarray,
    tank: DhwTank,
    dt_h: float = DT_H,
    e_target_kwh: np.ndarray | None = None,
) -> np.ndarray:
    """Heat input (kW, >= 0) that ends the step at ``e_target_kwh`` (default: full) given the
    draw."""
    a, b = tank_linear_model(tank, dt_h)
    target = tank.e_full_kwh if e_target_kwh is None else e_target_kwh
    q = (target - a * e_kwh) / b + q_draw_kw
    return np.where(tank.volume_l > 0, np.maximum(q, 0.0), 0.0)
