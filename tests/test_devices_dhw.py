"""Domestic hot water: draw statistics, exact stratified-tank step, service level, flexibility."""

from __future__ import annotations

import numpy as np
import pytest

from twin.devices import dhw
from twin.timegrid import DT_H, STEPS_PER_DAY, STEPS_PER_HOUR


def _tanks(n: int = 20, seed: int = 0) -> dhw.DhwTank:
    rng = np.random.default_rng(seed)
    return dhw.draw_tanks(rng, rng.integers(1, 6, n), np.ones(n, bool))


def test_draws_match_the_daily_volume_per_person_and_peak_morning_and_evening():
    rng = np.random.default_rng(1)
    n, days = 300, 60
    persons = rng.integers(1, 6, n)
    litres = np.full(n, 36.0)
    q = dhw.draw_dhw_demand(rng, persons, days, litres)
    assert q.shape == (days * STEPS_PER_DAY, n) and np.all(q >= 0)
    kwh_per_l = dhw.WATER_KWH_PER_L_K * (60.0 - dhw.T_COLD_C)  # 0.058 kWh per litre at 60 °C
    daily = q.sum(axis=0) * DT_H / days
    assert daily.sum() == pytest.approx((persons * litres).sum() * kwh_per_l, rel=0.03)
    hourly = q.mean(axis=1).reshape(days, 24, STEPS_PER_HOUR).mean(axis=(0, 2))
    assert hourly[7] > 5 * hourly[3] and hourly[19] > 5 * hourly[3]
    # days differ (showers, baths): a household's daily use is not constant
    per_day = q.reshape(days, STEPS_PER_DAY, n).sum(axis=1) * DT_H
    assert np.median(per_day.std(axis=0) / per_day.mean(axis=0)) > 0.3


def test_standing_loss_decays_exponentially_and_matches_the_eu_class():
    tank = _tanks()
    e0 = tank.e_full_kwh
    e = e0.copy()
    steps = 4 * 24
    for _ in range(steps):
        e, _, _ = dhw.tank_step(e, np.zeros_like(e), np.zeros_like(e), tank)
    lam = tank.loss_rate_per_h
    np.testing.assert_allclose(e, e0 * np.exp(-lam * steps * DT_H), rtol=1e-10)
    # full tank: loss = UA (T_set - T_room), within EU 812/2013 classes A..C at 45 K
    loss_w = lam * e0 * 1000 * 45.0 / (tank.t_set_c - tank.t_room_c)
    assert np.all(loss_w >= dhw.storage_loss_w(tank.volume_l, "A") - 1e-9)
    assert np.all(loss_w <= dhw.storage_loss_w(tank.volume_l, "C") + 1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tank_conserves_energy_and_books_every_undelivered_kwh(seed):
    """Δe = Σ (Q_in − Q_delivered) dt − Σ λ ē dt with ē the exact step mean; drawn = delivered
    + shortfall; the store stays within [0, e_full]."""
    rng = np.random.default_rng(seed)
    tank = _tanks(30, seed)
    n = len(tank.volume_l)
    e = tank.e_full_kwh * rng.uniform(0, 1, n)
    e0 = e.copy()
    rhs = np.zeros(n)
    drawn = np.zeros(n)
    delivered = np.zeros(n)
    short = np.zeros(n)
    for _ in range(2000):
        q_in = np.where(rng.random(n) < 0.2, rng.uniform(0, 6, n), 0.0)
        q_in = np.minimum(q_in, dhw.heat_to_fill_kw(e, np.zeros(n), tank))  # never overfill
        q_draw = np.where(rng.random(n) < 0.3, rng.exponential(3.0, n), 0.0)
        e_before = e
        e, q_del, s = dhw.tank_step(e, q_in, q_draw, tank)
        assert np.all(q_del <= q_draw + 1e-12) and np.all(e >= 0)
        assert np.all(e <= tank.e_full_kwh + 1e-9)
        e_mean = dhw.tank_mean_energy_kwh(e_before, q_in - q_del, tank)
        rhs += (q_in - q_del - tank.loss_rate_per_h * e_mean) * DT_H
        drawn += q_draw * DT_H
        delivered += q_del * DT_H
        short += s
    np.testing.assert_allclose(e - e0, rhs, atol=1e-8)
    np.testing.assert_allclose(drawn, delivered + short, atol=1e-9)
    assert short.sum() > 0  # this abuse empties tanks: the shortfall is booked


def test_draws_within_the_store_are_delivered_in_full():
    tank = _tanks(5)
    e = tank.e_full_kwh.copy()
    q_draw = np.full(5, 4.0)  # 1 kWh in a quarter-hour, far less than a full tank
    _, q_del, short = dhw.tank_step(e, np.zeros(5), q_draw, tank)
    np.testing.assert_allclose(q_del, q_draw)
    assert np.all(short == 0)


def test_linear_model_is_the_step_a_planner_can_use():
    tank = _tanks(10)
    a, b = dhw.tank_linear_model(tank)
    rng = np.random.default_rng(4)
    e = tank.e_full_kwh * 0.5
    q_in, q_draw = rng.uniform(0, 3, 10), rng.uniform(0, 3, 10)
    e_new, _, _ = dhw.tank_step(e, q_in, q_draw, tank)
    np.testing.assert_allclose(e_new, a * e + b * (q_in - q_draw), rtol=1e-12)
    lo, hi = dhw.tank_energy_bounds_kwh(tank)
    assert np.all(lo == 0) and np.all(hi > tank.e_full_kwh)  # boosting to 60 °C adds room
    # a 200 L tank at 50-55 °C holds ~10 kWh above 10 °C: two days of a two-person household
    i = tank.volume_l == 200
    assert np.all((tank.e_full_kwh[i] > 9) & (tank.e_full_kwh[i] < 11))


def test_thermostat_has_hysteresis():
    tank = _tanks(1)
    full = tank.e_full_kwh
    e_start = tank.c_kwh_per_k * (tank.t_set_c - tank.hysteresis_k - tank.t_cold_c)
    off = np.zeros(1, bool)
    assert not dhw.thermostat_charging(0.5 * (full + e_start), off, tank)[0]  # within the band
    assert dhw.thermostat_charging(0.99 * e_start, off, tank)[0]  # below: start
    assert dhw.thermostat_charging(0.5 * (full + e_start), ~off, tank)[0]  # keep charging
    assert not dhw.thermostat_charging(full, ~off, tank)[0]  # full: stop
    t = dhw.mean_temperature_c(full, tank)
    np.testing.assert_allclose(t, tank.t_set_c)
