"""Diverse, stochastic base load per household in the run's inputs (issue 11, item 1):
generated per (seed, household) for every feeder by default, SimBench's own H0 profiles as
an option, and the calendars agree: a profile's weekdays are the simulated dates' weekdays."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from twin.config import compose
from twin.devices.baseload import calendar_day_map, expected_shape, remap_to_reference_year
from twin.inputs import build_inputs, household_base_loads
from twin.scenario import load_scenario
from twin.timegrid import DT_H, REFERENCE_YEAR, STEPS_PER_DAY


def _cfg(*overrides: str, **grid: object):
    cfg = compose(["sim.days=7", "sim.warmup_days=0", *overrides])
    # grid.base_load and grid.profiles are not in twin/schema.py's GridConfig (yet): a plain
    # copy of the composed config takes them (build_inputs reads them with defaults)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for k, v in grid.items():
        cfg.grid[k] = v
    return cfg


def _weekday(day_index: np.ndarray, year: int = REFERENCE_YEAR) -> np.ndarray:
    return (pd.Timestamp(f"{year}-01-01").dayofweek + np.asarray(day_index)) % 7


@pytest.mark.parametrize("grid", ["kerber_dorfnetz", "ieee_european_lv"])
def test_every_household_draws_its_own_load_and_energy(grid, caplog):
    with caplog.at_level(logging.INFO, logger="twin"):
        inp = build_inputs(_cfg(f"grid.name={grid}"))
    f = inp.feeder
    year = f.load_p_kw[:, f.household_cols]
    e = year.sum(axis=0) * DT_H
    n = len(e)
    # no two households alike: not the one BDEW H0 profile at 2,550 kWh any more
    assert len(np.unique(e.round(3))) == n
    assert np.corrcoef(year[:, :20].T)[np.triu_indices(20, 1)].mean() < 0.3
    # the Dutch mean (CBS 81528NED: 2,550 kWh) within the sampling error of n households
    assert e.mean() == pytest.approx(2550.0, rel=3 * 0.6 / np.sqrt(n))
    assert set(np.unique(inp.household_persons)) <= {1, 2, 3, 4, 5}
    # the reactive power follows (q/p of SimBench's H0 profiles) and the window is cut from it
    np.testing.assert_allclose(f.load_q_kvar[:, f.household_cols], 0.3 * year)
    np.testing.assert_array_equal(inp.p_base_kw, year[inp.window.sim_year_index])
    assert inp.base_load == "generated"
    said = [r.message for r in caplog.records if r.message.startswith("base load:")]
    assert len(said) == 1 and "instead of BDEW H0 copies" in said[0]


def test_a_household_depends_only_on_the_seed_and_its_position():
    sc = load_scenario("nl-2040-central")
    p5, e5 = household_base_loads(sc, 7, 5)[1:]
    p8, e8 = household_base_loads(sc, 7, 8)[1:]
    np.testing.assert_array_equal(p5, p8[:, :5])
    np.testing.assert_array_equal(e5, e8[:5])
    other = household_base_loads(sc, 8, 5)[1]
    assert not np.allclose(p5, other)


def test_generated_base_loads_follow_the_simulated_calendar():
    """The feeder's base load is lower on the simulated Sundays and holidays: it follows the
    2025 calendar (BDEW H25 with Dutch holidays), not 2016's."""
    inp = build_inputs(_cfg())
    f = inp.feeder
    agg = f.load_p_kw[:, f.household_cols].sum(axis=1).reshape(365, STEPS_PER_DAY).sum(axis=1)
    ref = expected_shape().reshape(365, STEPS_PER_DAY).sum(axis=1)
    shifted = np.roll(ref, 3)  # the 2016 calendar's weekdays, 3 days off
    assert np.corrcoef(agg, ref)[0, 1] > np.corrcoef(agg, shifted)[0, 1] + 0.1
    wd = _weekday(np.arange(365))
    assert agg[wd == 6].mean() != pytest.approx(agg[wd < 5].mean(), rel=0.02)


def test_simbench_profiles_are_an_option_and_are_on_the_2025_weekdays(caplog):
    import simbench as sb

    with caplog.at_level(logging.INFO, logger="twin"):
        inp = build_inputs(_cfg(base_load="feeder"))
    assert inp.base_load == "feeder"
    assert not [r for r in caplog.records if r.message.startswith("base load:")]
    f = inp.feeder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = sb.get_simbench_net("1-LV-urban6--0-sw")
    j = int(f.household_cols[0])
    name = str(net.load["profile"].iloc[j])
    raw = net.profiles["load"][f"{name}_pload"].to_numpy(float)  # 2016, 366 days
    scale = float(net.load["p_mw"].iloc[j]) * 1e3 * float(net.load["scaling"].iloc[j])
    np.testing.assert_allclose(f.load_p_kw[:, j], remap_to_reference_year(raw, 2016) * scale)
    # every 2025 day comes from a 2016 day with the same weekday (1 Dec 2025 is a Monday)
    src = calendar_day_map(2016)
    np.testing.assert_array_equal(_weekday(src, 2016), _weekday(np.arange(365)))
    dec1 = pd.Timestamp("2025-12-01").dayofyear - 1
    assert _weekday(np.array([dec1]))[0] == 0 and _weekday(src[[dec1]], 2016)[0] == 0
    # the simulated week starts on that Monday
    assert inp.window.start == pd.Timestamp("2025-12-01")


def test_single_households_have_real_spikes_and_the_feeder_a_coincidence_curve():
    """Single-household 15-min peaks of a winter week 1.5-3.5 kW in the median (SimBench
    urban6's measured H0 households: 2.0 kW), the feeder's coincident base-load peak well
    below the Dutch design value of 1.5 kW per household (DOMAIN.md)."""
    inp = build_inputs(_cfg())
    p = inp.p_base_kw
    assert 1.5 < np.median(p.max(axis=0)) < 3.5
    coincident = p.sum(axis=1).max() / p.shape[1]
    assert 0.5 < coincident < 1.2
    assert coincident < 0.4 * np.median(p.max(axis=0))
