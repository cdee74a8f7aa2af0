"""Tariffs and bills: components add up, blocks and capacity charges land where they should."""

from __future__ import annotations

import numpy as np
import pytest

from twin.config import compose
from twin.tariffs import bills, make_tariff, synthetic_day_ahead_eur_per_kwh
from twin.timegrid import DT_H, make_window
from twin.weather import load_weather

WEATHER = load_weather()


def _tariff(name, days=2, start="2025-03-03", **over):
    cfg = compose([f"tariff={name}", *[f"tariff.{k}={v}" for k, v in over.items()]]).tariff
    return make_tariff(cfg, make_window(start, days), WEATHER.t_out_c, WEATHER.ghi_w_m2)


def test_bill_components_sum_to_the_total_and_match_hand_computation():
    t = _tariff("flat")
    p = np.zeros((192, 2))
    p[:, 0] = 1.0  # 1 kW for two days = 48 kWh
    p[:96, 1] = -2.0  # exports 48 kWh on day one
    b = bills(p, t, discount_eur_per_year=np.array([365.0, 0.0]))
    np.testing.assert_allclose(b.drop(columns="total_eur").sum(axis=1), b.total_eur)
    assert b.energy_eur[0] == pytest.approx(48 * 0.11)
    assert b.tax_eur[0] == pytest.approx(48 * 0.10154)
    assert b.grid_fee_eur[0] == pytest.approx(468.0 * 2 / 365)
    assert b.vat_eur[0] == pytest.approx(0.21 * (48 * 0.11 + 48 * 0.10154 + 468.0 * 2 / 365))
    assert b.discount_eur[0] == pytest.approx(-2.0)
    assert b.feed_in_eur[1] == pytest.approx(-48 * 0.05)
    assert b.energy_eur[1] == 0.0


def test_time_of_use_blocks_price_the_evening():
    t = _tariff("tou", days=1)
    hour = np.arange(96) / 4
    assert np.all(t.grid_fee_eur_per_kwh[(hour >= 17) & (hour < 21)] == 0.12)
    assert np.all(t.grid_fee_eur_per_kwh[(hour >= 7) & (hour < 9)] == 0.06)
    assert np.all(t.grid_fee_eur_per_kwh[hour < 7] == 0.02)
    # moving 1 kWh from 18:00 to 03:00 saves the block difference plus VAT
    assert (t.import_eur_per_kwh[72] - t.import_eur_per_kwh[12]) == pytest.approx(
        (0.12 - 0.02) * 1.21
    )


def test_capacity_charge_follows_the_daily_peak():
    t = _tariff("capacity", days=3, **{"capacity.period": "day"})
    p = np.full((288, 1), 1.0)
    p[10, 0], p[100, 0], p[200, 0] = 6.0, 2.0, 4.0  # day peaks 6, 2 (billed at the 2.5 kW floor), 4
    b = bills(p, t)
    assert b.capacity_eur[0] == pytest.approx((6.0 + 2.5 + 4.0) * 4.0 / (365 / 12))


def test_synthetic_day_ahead_matches_its_calibration():
    price = synthetic_day_ahead_eur_per_kwh(WEATHER.t_out_c, WEATHER.ghi_w_m2)
    hourly = price.reshape(-1, 4).mean(axis=1)
    assert (hourly < 0).mean() == pytest.approx(0.08, abs=0.01)  # NL 2024: 8 % negative hours
    assert price.mean() * 1000 == pytest.approx(78.5, abs=1.0)
    assert DT_H == 0.25
