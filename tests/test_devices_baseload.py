"""Stochastic base load: annual energy by household size, calendar, spikes and coincidence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from twin.devices import baseload as bl
from twin.timegrid import DT_H, REFERENCE_YEAR, STEPS_PER_DAY, STEPS_PER_YEAR

N_H = 200


@pytest.fixture(scope="module")
def fleet_load():
    rng = np.random.default_rng(11)
    persons = bl.draw_household_size(rng, N_H)
    e_kwh = bl.draw_annual_kwh(rng, persons)
    return persons, e_kwh, bl.draw_base_load(rng, e_kwh)


def _weekday(day_index: np.ndarray, year: int = REFERENCE_YEAR) -> np.ndarray:
    return (pd.Timestamp(f"{year}-01-01").dayofweek + np.asarray(day_index)) % 7


def test_annual_energy_follows_cbs_by_household_size():
    rng = np.random.default_rng(0)
    persons = bl.draw_household_size(rng, 40_000)
    shares = np.bincount(persons, minlength=6)[1:] / len(persons)
    np.testing.assert_allclose(shares, bl.HOUSEHOLD_SIZE_SHARES, atol=0.01)  # CBS 37975
    e = bl.draw_annual_kwh(rng, persons)
    assert e.mean() == pytest.approx(2550, rel=0.02)  # CBS 81528NED 2024
    by_size = np.array([e[persons == k].mean() for k in range(1, 6)])
    assert np.all(np.diff(by_size) > 0)
    # CBS 85140NED: three persons use 3,370 / 1,800 = 1.87 times what one person uses
    assert by_size[2] / by_size[0] == pytest.approx(3370 / 1800, rel=0.05)
    # spread within a class: CBS median/mean 0.88 (one person) .. 0.93 (three persons)
    med_over_mean = np.median(e[persons == 1]) / e[persons == 1].mean()
    assert 0.85 < med_over_mean < 0.95


def test_profiles_hit_each_households_annual_energy_and_are_diverse(fleet_load):
    _, e_kwh, p = fleet_load
    assert p.shape == (STEPS_PER_YEAR, N_H)
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=0) * DT_H, e_kwh, rtol=1e-9)
    # no two households alike: 15-min correlation between households is low
    c = np.corrcoef(p[:, :30].T)
    assert np.median(c[np.triu_indices(30, 1)]) < 0.3


def test_same_seed_same_profiles_other_seed_other_profiles():
    e = np.full(5, 2500.0)
    a = bl.draw_base_load(np.random.default_rng(3), e)
    b = bl.draw_base_load(np.random.default_rng(3), e)
    c = bl.draw_base_load(np.random.default_rng(4), e)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_expected_shape_uses_the_2025_calendar_and_dutch_holidays():
    shape = bl.expected_shape()
    assert shape.mean() == pytest.approx(1.0)
    days = shape.reshape(365, STEPS_PER_DAY)
    wd = _weekday(np.arange(365))
    assert pd.Timestamp("2025-01-01").dayofweek == 2  # Wednesday
    # weekdays alike, Saturday and Sunday different from them (BDEW H25 day types; the H25
    # dynamisation changes the level slowly from day to day)
    assert [wd[6], wd[7], wd[11], wd[10]] == [1, 2, 6, 5]  # Tue 7, Wed 8, Sun 12, Sat 11 Jan
    np.testing.assert_allclose(days[6], days[7], rtol=0.01)
    assert np.abs(days[11] / days[7] - 1).max() > 0.2
    assert np.abs(days[10] / days[7] - 1).max() > 0.2
    # 1 January (a Wednesday) is a holiday: shaped like Sunday 5 January
    np.testing.assert_allclose(days[0], days[4], rtol=0.02)
    # King's Day 2025 is Saturday 26 April (27 April is a Sunday): a Sunday-like day
    kings = pd.Timestamp("2025-04-26").dayofyear - 1
    np.testing.assert_allclose(days[kings], days[kings + 1], rtol=0.02)  # Sunday 27 April


def test_drawn_load_has_the_weekday_weekend_shape_of_h25(fleet_load):
    _, _, p = fleet_load
    agg_days = p.sum(axis=1).reshape(365, STEPS_PER_DAY).sum(axis=1)
    ref_days = bl.expected_shape().reshape(365, STEPS_PER_DAY).sum(axis=1)
    wd = _weekday(np.arange(365))
    ratio = [agg_days[wd == k].mean() / agg_days[wd < 5].mean() for k in range(7)]
    ref = [ref_days[wd == k].mean() / ref_days[wd < 5].mean() for k in range(7)]
    np.testing.assert_allclose(ratio, ref, atol=0.03)
    assert min(ratio[5], ratio[6]) > max(ratio[:5])  # weekends are the simulated weekends
    # the feeder's mean day follows H25 (the appliance shapes smooth it slightly)
    agg = p.sum(axis=1) / p.sum(axis=1).mean()
    hourly = lambda x: x.reshape(-1, 4).mean(axis=1)  # noqa: E731
    assert np.corrcoef(hourly(agg), hourly(bl.expected_shape()))[0, 1] > 0.85


def test_calendar_map_puts_2016_profiles_on_2025_weekdays():
    src = bl.calendar_day_map(2016)
    assert len(src) == 365 and src.min() >= 0 and src.max() <= 365
    np.testing.assert_array_equal(_weekday(src, 2016), _weekday(np.arange(365)))
    assert np.abs(src - np.arange(365))[7:-7].max() <= 3  # the same season
    assert np.abs(src - np.arange(365)).max() <= 6
    # a 2016 profile that is its own weekday number reads 2025's weekdays after remapping
    weekday_2016 = np.repeat(_weekday(np.arange(366), 2016), STEPS_PER_DAY).astype(float)
    remapped = bl.remap_to_reference_year(weekday_2016, 2016)
    assert remapped.shape == (STEPS_PER_YEAR,)
    np.testing.assert_array_equal(remapped[::STEPS_PER_DAY], _weekday(np.arange(365)))
    # 1 Jan 2025 is a Wednesday: taken from Wednesday 6 Jan 2016
    assert src[0] == 5


def test_single_household_peaks_are_those_of_real_households(fleet_load):
    """SimBench urban6's measured H0 households: annual 15-min peak median 3.0 kW, 1-7 Dec week
    median 2.0 kW, max 5.6 kW (remapped to 2025; MEASURED.md: 2.2 kW median in its week)."""
    _, _, p = fleet_load
    annual_peak = p.max(axis=0)
    assert 2.5 < np.median(annual_peak) < 5.0
    week = p[334 * STEPS_PER_DAY : 341 * STEPS_PER_DAY].max(axis=0)
    assert 1.5 < np.median(week) < 3.5
    assert week.max() < 9.0
    # spikes: the peak of a household is many times its mean, as in measured 15-min data
    assert np.median(annual_peak / p.mean(axis=0)) > 8


def test_coincidence_curve_falls_like_the_rusck_form_to_the_design_range(fleet_load):
    """After-diversity maximum demand per household vs group size: falls monotonically in the
    Rusck-type form g(n) = g_inf + (1 - g_inf) n^(-3/4) (German LV planning, e.g. Kerber
    2011) and ends, for large groups, between the H25 expectation (infinite-n limit) and the
    Dutch design value of 1.5 kW per household (DOMAIN.md)."""
    _, e_kwh, p = fleet_load
    rng = np.random.default_rng(1)
    sizes = np.array([1, 2, 5, 10, 20, 50, 100, 200])
    admd = bl.coincident_peak_per_household_kw(p, sizes, rng, draws=6)
    assert np.all(np.diff(admd) < 0.02 * admd[:-1])  # falls (up to sampling noise at the tail)
    g = admd / admd[0]
    x = sizes ** (-0.75)
    g_inf = float(np.clip(((g - x) @ (1 - x)) / ((1 - x) @ (1 - x)), 0, 1))
    fit = g_inf + (1 - g_inf) * x
    np.testing.assert_allclose(g[2:], fit[2:], rtol=0.2)
    h25_limit = bl.expected_shape().max() * e_kwh.mean() / (STEPS_PER_YEAR * DT_H)
    assert h25_limit < admd[-1] < 1.5
    assert admd[0] > 3 * admd[-1]
