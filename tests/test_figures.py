"""Figures: every file is a PNG, and what each figure draws equals the run's results (the
drawing functions return the arrays they drew; no pixels are compared)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from twin.grid.compliance import loading_duration_curve, station_of
from twin.grid.ratings import line_ampacity_ka
from twin.plots import daily, write_figures
from twin.timegrid import make_window

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def figures(day_result, tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    return {f.name: f for f in write_figures(day_result, out)}


@pytest.fixture(scope="module")
def performance_result():
    from twin.config import compose
    from twin.pipeline import run

    return run(compose(["sim=day", "contract=performance", "output.progress=false"]))


def test_every_figure_is_a_png(figures):
    assert set(figures) >= {
        "transformer_loading",
        "voltage_band",
        "worst_cable",
        "feeder_line_loading",
        "feeder_bus_voltage",
        "transformer_duration_curve",
        "indoor_temperature",
        "ev_state_of_charge",
    }
    for f in figures.values():
        assert f.path.read_bytes()[:8] == PNG and f.path.stat().st_size > 10_000, f.name
        assert f.caption


def test_transformer_figure_draws_the_signed_station_power(day_result, figures):
    st = station_of(day_result.grid, day_result.feeder.net)
    d = figures["transformer_loading"].data
    np.testing.assert_array_equal(d["p_kw"], st.p_kw)  # signed: import > 0, export < 0
    np.testing.assert_array_equal(d["loading_pct"], st.loading_pct)
    assert d["rating_kva"] == st.rating_kva == day_result.kpis["trafo_rating_kva"]
    assert d["p_kw"].max() == pytest.approx(day_result.kpis["trafo_peak_import_kw"])


def test_voltage_band_is_lv_buses_only(day_result, figures):
    d = figures["voltage_band"].data
    assert d["vm_max_pu"].max() == pytest.approx(day_result.kpis["vm_max_pu"])
    assert d["vm_min_pu"].min() == pytest.approx(day_result.kpis["vm_min_pu"])
    slack = int(day_result.feeder.net.ext_grid.bus.iloc[0])
    assert slack not in set(d["buses"])


def test_worst_cable_against_its_ampacity(day_result, figures):
    g, net = day_result.grid, day_result.feeder.net
    d = figures["worst_cable"].data
    assert d["line"] == day_result.kpis["line_worst"]
    col = list(g.line_index).index(d["line"])
    amp = line_ampacity_ka(net)[net.line.index.get_loc(d["line"])] * 1e3
    assert d["ampacity_a"] == pytest.approx(amp)
    np.testing.assert_allclose(d["i_a"], g.line_loading_pct[:, col] / 100 * amp)
    assert d["i_a"].max() / amp * 100 == pytest.approx(day_result.kpis["line_max_loading_pct"])


def test_maps_draw_each_elements_extremes(day_result, figures):
    g = day_result.grid
    np.testing.assert_array_equal(
        figures["feeder_line_loading"].data["line_loading_max_pct"], g.line_loading_pct.max(0)
    )
    d = figures["feeder_bus_voltage"].data
    lv = day_result.lv_buses()
    np.testing.assert_array_equal(d["vm_min_pu"][lv], g.vm_pu[:, lv].min(axis=0))
    assert np.isnan(d["vm_max_pu"][~lv]).all()  # the MV bus is not coloured
    np.testing.assert_array_equal(
        figures["transformer_duration_curve"].data["curve_pct"],
        np.sort(station_of(g, day_result.feeder.net).loading_pct)[::-1],
    )


def test_household_figures(day_result, figures):
    f, lg = day_result.fleet, day_result.log
    d = figures["ev_state_of_charge"].data
    soc = lg["ev_soc_kwh"][:, f.has_ev] / f.ev_capacity_kwh[f.has_ev] * 100
    np.testing.assert_allclose(d["p50"], np.percentile(soc, 50, axis=1))
    np.testing.assert_allclose(d["soc_lowest_pct"], soc.min(axis=1))
    np.testing.assert_allclose(d["p_ev_total_kw"], lg["p_ev_kw"].sum(axis=1))
    t = figures["indoor_temperature"].data
    dev = lg["t_in_c"][:, f.has_hp] - f.setpoint_c[f.has_hp]
    np.testing.assert_allclose(t["worst_k"], dev.min(axis=1))


def test_daily_max_min():
    times = pd.date_range("2025-01-01", periods=3 * 96, freq="15min")
    v = np.arange(3 * 96, dtype=float)
    day, lo, hi = daily(times, v)
    assert list(day) == list(pd.date_range("2025-01-01", periods=3, freq="D"))
    np.testing.assert_array_equal(lo, [0, 96, 192])
    np.testing.assert_array_equal(hi, [95, 191, 287])


def test_long_runs_are_drawn_as_daily_max_and_min(day_result, tmp_path):
    """A 20-day result (the day repeated) is drawn per day, not as 1,920 points."""
    from twin.plots import fig_transformer, fig_voltage_band

    n = 20
    g = day_result.grid
    tile = {
        name: np.tile(getattr(g, name), (n, 1))
        for name in ("vm_pu", "trafo_p_kw", "trafo_s_kva", "trafo_loading_pct")
    }
    long = dataclasses.replace(
        day_result,
        window=make_window("2025-06-01", n),
        grid=dataclasses.replace(g, **tile, steps=np.arange(n * g.n_steps)),
    )
    d = fig_transformer(long, tmp_path / "t.png").data
    st = station_of(g, day_result.feeder.net)
    assert len(d["day"]) == n
    np.testing.assert_allclose(d["p_daily_max_kw"], st.p_kw.max())
    np.testing.assert_allclose(d["p_daily_min_kw"], st.p_kw.min())
    v = fig_voltage_band(long, tmp_path / "v.png").data
    assert len(v["vm_daily_min_pu"]) == n
    assert v["vm_daily_min_pu"].min() == pytest.approx(day_result.kpis["vm_min_pu"])


def test_performance_band_figure_shows_the_worst_households_band(performance_result, tmp_path):
    from twin.plots import fig_performance_band, worst_band_household

    r = performance_result
    f = fig_performance_band(r, tmp_path / "band.png")
    assert f is not None and f.path.read_bytes()[:8] == PNG
    h = f.data["household"]
    assert h == worst_band_household(r)
    band, net = r.log["band_kw"], r.log["p_net_kw"]
    np.testing.assert_array_equal(f.data["band_kw"], band[:, h])
    np.testing.assert_array_equal(f.data["p_net_kw"], net[:, h])
    assert np.isfinite(band[:, h]).any()  # a household that signed
    excess = np.where(np.isfinite(band), np.maximum(net - np.nan_to_num(band), 0.0), 0.0)
    excess[excess < 1e-6] = 0.0
    per_household = excess.sum(axis=0) * 0.25
    assert f.data["excess_kwh"] == pytest.approx(per_household.max())
    # the contract's own KPI sums the excess over every household
    assert r.kpis["performance_band_excess_kwh"] == pytest.approx(per_household.sum(), abs=1e-9)
    names = {x.name for x in write_figures(r, tmp_path / "all")}
    assert "performance_band" in names


def test_firm_runs_have_no_band_figure(day_result, tmp_path):
    from twin.plots import fig_performance_band

    assert fig_performance_band(day_result, tmp_path / "x.png") is None


def test_overload_colours_are_open_ended():
    from twin.grid.plots import loading_colours

    cmap, norm = loading_colours(150.0)
    c100, c131, c60 = (np.array(cmap(norm(v))[:3]) for v in (100.0, 131.0, 60.0))
    assert np.abs(c131 - c100).sum() > 0.3  # 131 % does not look like 100 %
    assert norm(131.0) > norm(100.0) == pytest.approx(0.5)
    assert c60[1] > c60[0]  # below 100 %: green side


def test_bus_voltage_map_checks_shapes(day_result, tmp_path):
    from twin.grid.plots import plot_bus_voltages

    net = day_result.feeder.net
    with pytest.raises(ValueError, match="shape"):
        plot_bus_voltages(net, np.ones(3), np.ones(3), tmp_path / "x.png")


def test_compare_duration_curves_per_contract(tmp_path):
    from twin.compare import plot_duration

    rng = np.random.default_rng(0)
    outcomes = [
        SimpleNamespace(
            name=name,
            trafo_loading_pct=rng.uniform(0, top, 96),
            kpis={"grid": "g", "scenario": "s", "start": "2025-12-02", "days": 1},
        )
        for name, top in (("firm", 120.0), ("performance", 80.0))
    ]
    cmp = SimpleNamespace(outcomes=outcomes, baseline="firm")
    curves = plot_duration(cmp, tmp_path / "d.png")
    assert (tmp_path / "d.png").read_bytes()[:8] == PNG
    for o in outcomes:
        np.testing.assert_array_equal(curves[o.name], loading_duration_curve(o.trafo_loading_pct))
