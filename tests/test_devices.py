"""Device physics against analytic solutions, independent integrators and energy balances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from twin.devices.battery import battery_step
from twin.devices.ev import CHARGE_EFFICIENCY, draw_trips, ev_step
from twin.devices.pv import pv_power_kw
from twin.devices.thermal import (
    cop,
    decay_factor,
    flow_temperature_c,
    heat_to_reach,
    mean_temperature,
    step_temperature,
)
from twin.timegrid import DT_H, STEPS_PER_DAY
from twin.weather import load_weather

R = np.array([5.0, 8.0, 3.0])  # K/kW
C = np.array([12.0, 20.0, 6.0])  # kWh/K


def test_thermal_step_response_matches_analytic_solution():
    """Constant heat input from 15 °C: T(t) = T_eq + (T0 - T_eq) exp(-t / RC)."""
    a = decay_factor(R, C, DT_H)
    t_out, q, gain = -5.0, np.array([4.0, 3.0, 6.0]), np.array([0.3, 0.2, 0.1])
    t_in = np.full(3, 15.0)
    hours = np.arange(1, 4 * 24 + 1) * DT_H
    traj = []
    for _ in hours:
        t_in = step_temperature(t_in, t_out, q, gain, R, a)
        traj.append(t_in)
    t_eq = t_out + R * (q + gain)
    analytic = t_eq + (15.0 - t_eq) * np.exp(-hours[:, None] / (R * C))
    np.testing.assert_allclose(np.array(traj), analytic, atol=1e-10)


def test_thermal_model_agrees_with_ode_integrator_under_varying_inputs():
    """Piecewise-constant weather and heat over a day vs scipy's RK45 on C dT/dt = ..."""
    rng = np.random.default_rng(1)
    n = 96
    t_out = rng.uniform(-8, 10, n)
    q = rng.uniform(0, 6, n)
    r, c = 6.0, 14.0
    a = decay_factor(np.array(r), np.array(c), DT_H)
    t_in = np.array(19.0)
    ours = []
    for k in range(n):
        t_in = step_temperature(t_in, t_out[k], np.array(q[k]), np.array(0.2), np.array(r), a)
        ours.append(float(t_in))

    def rhs(t, y):
        k = min(int(t / DT_H), n - 1)
        return [((t_out[k] - y[0]) / r + q[k] + 0.2) / c]

    sol = solve_ivp(
        rhs,
        (0, n * DT_H),
        [19.0],
        t_eval=np.arange(1, n + 1) * DT_H,
        max_step=DT_H / 20,
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_allclose(ours, sol.y[0], atol=1e-6)


def test_thermal_energy_balance_with_exact_mean_temperature():
    """C ΔT = Σ (Q + G - (T̄ - T_out) / R) dt with T̄ the exact step mean."""
    rng = np.random.default_rng(2)
    a = decay_factor(R, C, DT_H)
    t_in = np.full(3, 20.0)
    t0 = t_in.copy()
    lhs_heat = np.zeros(3)
    for _ in range(200):
        t_out = rng.uniform(-10, 5)
        q = rng.uniform(0, 5, 3)
        g = rng.uniform(0, 1, 3)
        t_mean = mean_temperature(t_in, t_out, q, g, R, a)
        lhs_heat += (q + g - (t_mean - t_out) / R) * DT_H
        t_in = step_temperature(t_in, t_out, q, g, R, a)
    np.testing.assert_allclose(C * (t_in - t0), lhs_heat, rtol=1e-9, atol=1e-9)


def test_heat_to_reach_hits_the_target_in_one_step():
    a = decay_factor(R, C, DT_H)
    t_in, target, g = (
        np.array([18.0, 20.5, 19.0]),
        np.array([20.0, 20.0, 21.0]),
        np.array([0.2, 0.5, 0.0]),
    )
    q = heat_to_reach(target, t_in, -3.0, g, R, a)
    np.testing.assert_allclose(step_temperature(t_in, -3.0, q, g, R, a), target, atol=1e-10)


def test_cop_matches_hplib_generic_reference_points():
    # hplib "Generic" regulated air/water: A2/W35 ≈ 4.3, A-7/W35 ≈ 2.9, A-10/W35 ≈ 2.4
    np.testing.assert_allclose(
        cop(np.array([2.0, -7.0, -10.0]), np.full(3, 35.0)), [4.3, 2.9, 2.4], atol=0.05
    )
    assert cop(-30.0, np.array(70.0)) >= 1.5


def test_heating_curve_runs_from_setpoint_to_design_flow():
    flow = flow_temperature_c(np.array([-10.0, 5.0, 20.0]), np.array(55.0), np.array(20.0), -10.0)
    np.testing.assert_allclose(flow, [55.0, 37.5, 25.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_battery_respects_bounds_and_conserves_energy(seed):
    rng = np.random.default_rng(seed)
    n = 50
    cap = rng.uniform(5, 15, n)
    pmax = 0.5 * cap
    eta = np.full(n, np.sqrt(0.9))
    soc = cap * rng.uniform(0, 1, n)
    soc0 = soc.copy()
    e_in = np.zeros(n)
    e_out = np.zeros(n)
    for _ in range(500):
        p, soc = battery_step(soc, rng.normal(0, 8, n), cap, pmax, eta, DT_H)
        assert np.all(np.abs(p) <= pmax + 1e-12)
        assert np.all((soc >= -1e-12) & (soc <= cap + 1e-12))
        e_in += np.clip(p, 0, None) * DT_H
        e_out += np.clip(-p, 0, None) * DT_H
    np.testing.assert_allclose(soc - soc0, eta * e_in - e_out / eta, atol=1e-9)


def test_ev_energy_conserved_over_trips():
    """Δsoc = η E_home − E_drive + E_public, with E_drive from km × consumption."""
    rng = np.random.default_rng(3)
    n, days = 40, 14
    cons = rng.uniform(0.17, 0.25, n)
    trips = draw_trips(rng, days, rng.uniform(6.5, 9, n), rng.uniform(16, 20, n), 18100, 5.5, cons)
    cap = rng.uniform(30, 80, n)
    pmax = np.where(rng.random(n) < 0.5, 3.7, 11.0)
    soc = cap * 0.3
    soc0 = soc.copy()
    e_home = np.zeros(n)
    e_public = np.zeros(n)
    for k in range(days * STEPS_PER_DAY):
        # a charger that only charges at night: trips can then exceed the battery (public top-up)
        req = pmax if (k % STEPS_PER_DAY) < 16 else np.zeros(n)
        p, soc, pub = ev_step(soc, req, trips.home[k], trips.trip_kwh[k], cap, pmax, DT_H)
        assert np.all(p[~trips.home[k]] == 0)
        e_home += p * DT_H
        e_public += pub
    e_drive = (trips.km * cons).sum(axis=0)
    np.testing.assert_allclose(trips.trip_kwh.sum(axis=0), e_drive)
    np.testing.assert_allclose(
        soc - soc0, CHARGE_EFFICIENCY * e_home - e_drive + e_public, atol=1e-9
    )
    assert np.all(soc <= cap + 1e-9) and np.all(soc >= 0)


def test_trip_statistics_match_the_annual_distance():
    rng = np.random.default_rng(4)
    n = 400
    trips = draw_trips(rng, 365, np.full(n, 7.5), np.full(n, 18.0), 18100, 5.5, np.full(n, 0.2))
    assert trips.km.sum(axis=0).mean() == pytest.approx(18100, rel=0.03)
    # every trip leaves once and returns once: departures equal arrivals
    assert trips.departure.sum() == (trips.trip_kwh > 0).sum()
    away = ~trips.home
    assert 0.2 < away.mean() < 0.5


def test_pv_annual_yield_per_kwp_is_dutch_normal_year():
    w = load_weather()
    yield_kwh = pv_power_kw(w.ghi_w_m2, np.array([1.0]), 0.977).sum() * DT_H
    assert yield_kwh == pytest.approx(935, rel=0.03)  # ~935 kWh/kWp in a Dutch normal year
