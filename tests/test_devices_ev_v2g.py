"""Vehicle-to-grid in the EV physics: energy conserved, reserve honoured, unidirectional unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from twin.devices.ev import (
    CHARGE_EFFICIENCY,
    DISCHARGE_EFFICIENCY,
    draw_trips,
    ev_step,
    v2g_wear_cost_eur,
)
from twin.timegrid import DT_H, STEPS_PER_DAY


@pytest.mark.parametrize("seed", [0, 1])
def test_v2g_conserves_energy_and_never_goes_below_the_reserve(seed):
    """Δsoc = η E_charge − E_discharge / η_dis − E_drive + E_public, with random ± requests."""
    rng = np.random.default_rng(seed)
    n, days = 60, 10
    cons = rng.uniform(0.17, 0.25, n)
    trips = draw_trips(rng, days, rng.uniform(6.5, 9, n), rng.uniform(16, 20, n), 18100, 5.5, cons)
    cap = rng.uniform(40, 80, n)
    pmax = np.where(rng.random(n) < 0.5, 3.7, 11.0)
    bidi = rng.random(n) < 0.5
    p_dis_max = np.where(bidi, rng.uniform(3.0, 10.0, n), 0.0)
    reserve = 0.3 * cap
    soc = cap * rng.uniform(0.4, 0.9, n)
    soc0 = soc.copy()
    e_ch = np.zeros(n)
    e_dis = np.zeros(n)
    e_pub = np.zeros(n)
    for k in range(days * STEPS_PER_DAY):
        req = rng.normal(0.0, 8.0, n)
        before = soc - trips.trip_kwh[k]
        p, soc, pub = ev_step(
            soc, req, trips.home[k], trips.trip_kwh[k], cap, pmax, DT_H, bidi, p_dis_max, reserve
        )
        assert np.all(p[~bidi] >= 0)  # unidirectional cars never discharge
        assert np.all(p >= -p_dis_max - 1e-12) and np.all(p <= pmax + 1e-12)
        assert np.all(p[~trips.home[k]] == 0)
        # V2G never takes a car below its reserve (driving may, V2G may not)
        discharged = p < 0
        assert np.all(soc[discharged] >= reserve[discharged] - 1e-9)
        assert np.all(soc[discharged] <= np.maximum(before, reserve)[discharged] + 1e-9)
        e_ch += np.clip(p, 0, None) * DT_H
        e_dis += np.clip(-p, 0, None) * DT_H
        e_pub += pub
    e_drive = (trips.km * cons).sum(axis=0)
    np.testing.assert_allclose(
        soc - soc0,
        CHARGE_EFFICIENCY * e_ch - e_dis / DISCHARGE_EFFICIENCY - e_drive + e_pub,
        atol=1e-9,
    )
    assert e_dis[bidi].sum() > 0 and e_dis[~bidi].sum() == 0
    assert np.all((soc >= -1e-9) & (soc <= cap + 1e-9))


def test_unidirectional_cars_behave_exactly_as_before():
    rng = np.random.default_rng(5)
    n = 30
    cap = rng.uniform(40, 80, n)
    pmax = np.full(n, 11.0)
    soc = cap * 0.5
    home = rng.random(n) < 0.8
    trip = np.where(rng.random(n) < 0.2, rng.uniform(0, 30, n), 0.0)
    req = rng.normal(0, 8, n)
    old = ev_step(soc, req, home, trip, cap, pmax, DT_H)
    new = ev_step(soc, req, home, trip, cap, pmax, DT_H, np.zeros(n, bool), 5.0, 10.0)
    for a, b in zip(old, new, strict=True):
        np.testing.assert_array_equal(a, b)


def test_discharge_limits_power_and_reserve_analytically():
    cap, soc, reserve = np.array([60.0, 60.0]), np.array([40.0, 30.5]), np.array([30.0, 30.0])
    p, new_soc, _ = ev_step(
        soc, np.array([-20.0, -20.0]), np.ones(2, bool), np.zeros(2), cap, np.full(2, 11.0),
        DT_H, np.ones(2, bool), np.array([7.0, 7.0]), reserve,
    )  # fmt: skip
    # car 0: power-limited at 7 kW; car 1: energy-limited to 0.5 kWh above the reserve
    np.testing.assert_allclose(p, [-7.0, -0.5 * DISCHARGE_EFFICIENCY / DT_H])
    np.testing.assert_allclose(new_soc, [40.0 - 7.0 * DT_H / DISCHARGE_EFFICIENCY, 30.0])


def test_wear_cost_counts_only_delivered_energy():
    p = np.array([[-4.0, 3.0], [-2.0, -1.0], [5.0, 0.0]])
    np.testing.assert_allclose(v2g_wear_cost_eur(p, DT_H, 0.05), [6.0 * DT_H * 0.05, DT_H * 0.05])
