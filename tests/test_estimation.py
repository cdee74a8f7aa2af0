"""State estimation (twin/grid/estimation.py) from what the measurement layer (twin/measure.py)
delivers: physics, not recorded numbers.

* perfect, complete measurements give back the power-flow state (<= 1e-6 p.u.);
* removing sensors never makes the mean error smaller (nested sensor sets, the same readings
  of the sensors kept: the layer draws every sensor's noise from its own stream);
* the batch estimator agrees with pandapower.estimation's WLS on sampled steps;
* an unobservable feeder is reported, not a crash.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest

from twin.config import compose
from twin.grid.estimation import BatchStateEstimator, pandapower_estimate
from twin.measure import (
    MEASUREMENT_PRESETS,
    MeasurementSettings,
    estimate_feeder,
    measure,
    metered_connections,
    sensor_layout,
)
from twin.pipeline import run


@pytest.fixture(scope="module")
def day():
    """One simulated winter day of the default feeder (the truth the sensors read)."""
    return run(compose(["sim=day", "output.progress=false", "output.figures=false"]))


def _settings(name: str, **changes) -> MeasurementSettings:
    s = MeasurementSettings.from_config(compose([f"measurement={name}"]).measurement)
    return replace(s, **changes)


def _estimate(day, settings: MeasurementSettings, seed: int = 42):
    r = day
    prof = r.feeder.load_p_kw[r.window.year_index]
    return estimate_feeder(
        settings, r.feeder.net, r.p_load_kw, r.q_load_kvar, prof, 0, r.grid, seed, threads=1
    )


#: sensors without error but for a floor of 1e-5 of each unit (kW, % of nominal, A, degree)
#: that keeps every weight finite (1e-6 made the Newton-Raphson gain matrix singular)
PERFECT = dict(
    trafo_power_sigma_pct=0.0,
    trafo_power_floor_kw=1e-5,
    trafo_u_sigma_pct=0.0,
    trafo_u_floor_pct=1e-5,
    head_i_sigma_pct=0.0,
    head_i_floor_a=1e-5,
    head_angle_sigma_deg=0.0,
    head_angle_floor_deg=1e-5,
    meter_sigma_pct=0.0,
    meter_floor_kw=1e-5,
    meter_u_sigma_pct=0.0,
    meter_u_floor_pct=1e-5,
    meter_reactive=True,
)


def test_perfect_complete_measurements_give_the_power_flow_state(day):
    se = _estimate(day, _settings("full", **PERFECT))
    est, truth = se.nowcast.result, day.grid
    assert se.nowcast.observable.all()
    assert np.nanmax(np.abs(est.vm_pu - truth.vm_pu)) <= 1e-6
    # loadings follow from the voltages: the same state, so the same flows
    assert np.abs(est.line_loading_pct - truth.line_loading_pct).max() <= 1e-3
    assert np.abs(est.trafo_s_kva - truth.trafo_s_kva).max() <= 1e-2
    # and without the cable-head current sensors (the Newton-Raphson estimator then applies)
    se = _estimate(day, _settings("full", heads=False, **PERFECT))
    assert np.nanmax(np.abs(se.nowcast.result.vm_pu - truth.vm_pu)) <= 1e-6


def test_the_run_reports_se_kpis_for_its_preset(day):
    k = day.kpis
    assert k["se_preset"] == "full"
    assert k["se_unobservable_steps"] == 0
    for q in ("vm_err", "line_err", "trafo_err"):
        unit = "pu" if q == "vm_err" else "pp"
        assert 0 <= k[f"se_{q}_mean_{unit}"] <= k[f"se_{q}_p99_{unit}"] <= k[f"se_{q}_max_{unit}"]
    # the full preset's estimate is much closer than a meter's own voltage noise is wide
    assert k["se_vm_err_mean_pu"] < 0.005


#: nested sensor sets, most first: each drops sensors of the one before
CHAIN = [
    ("full (iterative linear)", dict(method="iterative_linear")),
    ("no cable heads (iterative linear)", dict(heads=False, method="iterative_linear")),
    ("no cable heads", dict(heads=False)),
    ("no meter voltage", dict(heads=False, meter_voltage=False)),
    ("half the meters", dict(heads=False, meter_voltage=False, meter_share=0.5)),
    ("transformer only", dict(heads=False, meter_voltage=False, meter_share=0.0)),
]


def test_removing_sensors_never_improves_the_mean_error(day):
    """Every seed draws new noise; the sensors a set keeps read the same values as in the set
    before it. Per pair of neighbours in the chain and per error, the mean over seeds of
    (error with fewer sensors - error with more) is not below zero by more than twice its
    standard error: removing sensors never makes the average error smaller (a WLS weighted
    with the sensors' true standard deviations is the best linear unbiased estimate; more
    measurements cannot increase its variance). Where a sensor carries real information the
    difference is large and positive."""
    seeds = range(1, 9)
    keys = ("se_vm_err_mean_pu", "se_line_err_mean_pp", "se_trafo_err_mean_pp")
    errs = np.array(
        [
            [[_estimate(day, _settings("full", **c), seed).kpis[k] for k in keys] for seed in seeds]
            for _, c in CHAIN
        ]
    )  # (chain, seed, key)
    for i in range(len(CHAIN) - 1):
        if i == 1:  # the same sensors, another estimator: not a pair
            continue
        d = errs[i + 1] - errs[i]  # (seed, key)
        mean, se = d.mean(axis=0), d.std(axis=0, ddof=1) / np.sqrt(len(seeds))
        for j, key in enumerate(keys):
            assert mean[j] >= -2 * se[j] - 1e-12, (CHAIN[i][0], CHAIN[i + 1][0], key, mean[j])
    # and the ends are far apart: the meters are what reveals the cable loadings
    assert errs[-1, :, 1].mean() > 10 * errs[0, :, 1].mean()
    # and the voltage sensors the voltages
    assert errs[3, :, 0].mean() > 1.5 * errs[2, :, 0].mean()


def test_late_data_and_aggregation_cost_accuracy(day):
    late = _estimate(day, _settings("transformer_and_meters", meter_missing_share=0.0))
    k = late.kpis
    # the nowcast has no meter reading yet; once they arrive the estimate is better
    assert k["se_reading_share"] == 0.0 and k["se_final_reading_share"] == 1.0
    assert k["se_final_line_err_mean_pp"] < k["se_line_err_mean_pp"]
    real_time = _settings("transformer_and_meters", meter_missing_share=0.0, meter_delay_steps=0)
    e1 = _estimate(day, real_time).kpis
    e5 = _estimate(day, replace(real_time, meter_aggregate_k=5)).kpis
    assert e5["se_line_err_mean_pp"] > e1["se_line_err_mean_pp"]
    assert e5["se_voltage_sensors"] == 1  # aggregated readings carry no voltage


def test_an_unobservable_feeder_is_reported_not_raised(day):
    blind = _settings(
        "meters_only", meter_voltage=False, meter_delay_steps=0, pseudo_source_u_sigma_pct=0.0
    )
    se = _estimate(day, blind)
    assert not se.nowcast.observable.any()
    assert se.kpis["se_unobservable_steps"] == day.grid.n_steps
    assert np.isnan(se.kpis["se_vm_err_max_pu"])
    assert "not enough measurements" in se.kpis["se_first_error"].lower()


def test_measurements_are_seeded_and_metered_sets_nested(day):
    s = _settings("transformer_and_meters")
    a, b = _estimate(day, s, 7), _estimate(day, s, 7)
    assert a.kpis["se_vm_err_mean_pu"] == b.kpis["se_vm_err_mean_pu"]
    c = _estimate(day, s, 8)
    assert c.kpis["se_vm_err_mean_pu"] != a.kpis["se_vm_err_mean_pu"]
    n = len(day.feeder.net.load)
    half = metered_connections(replace(s, meter_share=0.5), n, 3)
    most = metered_connections(replace(s, meter_share=0.8), n, 3)
    assert (half <= most).all() and half.sum() == round(0.5 * n)


@pytest.mark.parametrize("preset", MEASUREMENT_PRESETS)
def test_every_preset_estimates_every_step(day, preset):
    se = _estimate(day, _settings(preset))
    assert se.nowcast.observable.all()
    energised = np.isfinite(day.grid.vm_pu).all(axis=0)
    assert np.isfinite(se.nowcast.result.vm_pu[:, energised]).all()


def test_batch_estimate_agrees_with_pandapower_estimation(day):
    """pandapower.estimation's WLS (Newton) on the same noisy measurements of sampled steps:
    power-grid-model's Newton-Raphson WLS minimises the same objective, so the two agree to
    1e-5 p.u. (pandapower's 't' transformer model against PGM's pi model is ~1e-6) and its
    default iterative-linear estimator to 5e-4 p.u. (it linearises the power measurements
    around the last voltage estimate: a slightly different estimator)."""
    r = day
    s = _settings("transformer_and_meters", meter_delay_steps=0, heads=False)
    net = r.feeder.net
    metered = metered_connections(s, len(net.load), 42)
    layout = sensor_layout(s, metered)
    steps = np.array([8, 40, 70, 76, 90])  # night, midday, the evening peak
    prof = r.feeder.load_p_kw[r.window.year_index]
    results = {}
    for method in ("newton_raphson", "iterative_linear"):
        est = BatchStateEstimator(net, layout, threads=1, method=method)
        truth = est.sensor_truth(r.p_load_kw, r.q_load_kvar)
        m = measure(s, est, truth, r.p_load_kw, r.q_load_kvar, prof, 0, metered, 42)
        results[method] = est.run(m.nowcast).result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vm_pp, ll_pp = pandapower_estimate(net, est, m.nowcast, steps)
    assert np.isfinite(vm_pp).all()
    nr, il = results["newton_raphson"], results["iterative_linear"]
    assert np.abs(nr.vm_pu[steps] - vm_pp).max() <= 1e-5
    assert np.abs(nr.line_loading_pct[steps] - ll_pp).max() <= 0.05
    assert np.abs(il.vm_pu[steps] - vm_pp).max() <= 5e-4
    # both are estimates, not the truth: the error against the power flow is of the same size
    e_pp = np.abs(vm_pp - r.grid.vm_pu[steps]).mean()
    e_il = np.abs(il.vm_pu[steps] - r.grid.vm_pu[steps]).mean()
    assert 0.5 < e_il / e_pp < 2.0


def test_the_figure_draws_the_estimate_and_the_truth(day, tmp_path):
    from twin.grid.compliance import station_of
    from twin.plots import fig_state_estimation

    f = fig_state_estimation(day, tmp_path / "se.png")
    assert (tmp_path / "se.png").read_bytes()[:4] == b"\x89PNG"
    net, est = day.feeder.net, day.estimation.nowcast.result
    assert np.array_equal(f.data["trafo_truth_pct"], station_of(day.grid, net).loading_pct)
    assert np.array_equal(f.data["trafo_est_pct"], station_of(est, net).loading_pct)
    lv = day.lv_buses()
    worst = np.abs(est.vm_pu[:, lv] - day.grid.vm_pu[:, lv]).max(axis=1)
    assert np.allclose(f.data["vm_err_max_pu"], worst)
    assert f.data["vm_err_max_pu"].max() == pytest.approx(day.kpis["se_vm_err_max_pu"])


@pytest.mark.parametrize("preset", ["transformer_and_meters", "meters_only"])
def test_the_fast_paths_give_the_reference_estimate(day, preset):
    """The shortcuts of a late-meter run change no estimate: the nowcast without the meters'
    weightless voltage sensors, the nowcast without redundancy by iterative linear, and
    Newton-Raphson at its default tolerance all land within 1e-6 p.u. (and 1e-3 %-points) of
    the reference: every sensor in the model, Newton-Raphson at 1e-7."""
    from twin.grid.estimation import NO_READING_SIGMA_PU

    r = day
    s = _settings(preset)
    se = _estimate(day, s)
    assert s.meter_delay_steps > 0 and se.final is not None
    # reference nowcast: one weightless reading keeps every meter voltage sensor in the model
    data = replace(
        se.measured.nowcast,
        meter_u_pu=se.measured.nowcast.meter_u_pu.copy(),
        meter_u_sigma_pu=se.measured.nowcast.meter_u_sigma_pu.copy(),
    )
    assert not np.isfinite(data.meter_u_pu).any()
    data.meter_u_pu[0, 0] = 1.0
    data.meter_u_sigma_pu[0, 0] = NO_READING_SIGMA_PU
    ref = BatchStateEstimator(
        r.feeder.net,
        sensor_layout(s, se.measured.metered),
        threads=1,
        method="newton_raphson",
        error_tolerance=1e-7,
    )
    assert ref.voltage_loads.size
    want = ref.run(data)
    assert ref._without_meter_u is None  # the reference took the full model
    for got, ref_run in [(se.nowcast, want), (se.final, ref.run(se.measured.final))]:
        assert got.observable.all() and ref_run.observable.all()
        assert np.abs(got.result.vm_pu - ref_run.result.vm_pu).max() < 1e-6
        assert np.abs(got.result.line_loading_pct - ref_run.result.line_loading_pct).max() < 1e-3
        assert np.abs(got.result.trafo_loading_pct - ref_run.result.trafo_loading_pct).max() < 1e-3
    # without a station sensor the nowcast has no redundancy: iterative linear
    want_method = "iterative_linear" if not s.trafo else None
    assert se.kpis.get("se_nowcast_method") == want_method
    assert se.kpis["se_method"] == "newton_raphson"


def test_history_pseudo_by_slices_equals_the_gather(day):
    """The pseudo-measurements' history mean over consecutive steps (slices) is the one of
    any other order of the same steps (gathers)."""
    from twin.measure import _history_pseudo

    rng = np.random.default_rng(3)
    reading = rng.normal(1.0, 0.5, (400, 7))
    have = rng.random((400, 7)) < 0.8
    lags = [96, 192, 288]
    rows = np.arange(50, 400)
    perm = rng.permutation(len(rows))
    mean, count = _history_pseudo(reading, have, rows, lags)
    mean_p, count_p = _history_pseudo(reading, have, rows[perm], lags)
    np.testing.assert_array_equal(mean[perm], mean_p)
    np.testing.assert_array_equal(count[perm], count_p)
    assert count.max() == 3 and count[:46].max() == 0


@pytest.mark.parametrize("preset", ["full", "meters_only"])
def test_the_reused_pgm_batches_give_the_public_paths_results(day, preset, monkeypatch):
    """The DSO's small batches in the loop run through PGM datasets prepared once and re-run
    (twin.grid.powerflow.ReusedBatch): one step, then 4 steps at a time, each call with new
    data, the sensor truth and the estimate (station only or every array) are bit for bit
    those of PGM's public API."""
    from twin.grid import powerflow

    powerflow.check_pgm_internals()
    s = _settings(preset)
    se = _estimate(day, s)
    layout = sensor_layout(s, se.measured.metered)
    w = day.window.n_warmup_steps
    p, q = day.p_load_kw[w:], day.q_load_kvar[w:]
    windows = [(0, 1), (1, 2), (2, 6), (6, 10), (40, 44), (44, 45), (70, 74)]

    def rows(data, a, b):
        return replace(
            data,
            **{k: v[a:b] for k, v in vars(data).items() if isinstance(v, np.ndarray)},
        )

    def calls(est):
        out = []
        for final in (False, True):
            data = se.measured.final if final else se.measured.nowcast
            if data is None:  # no late meters: no final data
                continue
            for a, b in windows:
                t = est.sensor_truth(p[a:b], q[a:b], bus_u=final, threads=1)
                out.append([*vars(t).values()])
                for station_only in (True, False):
                    e = est.run(rows(data, a, b), threads=1, station_only=station_only)
                    out.append([*vars(e.result).values(), e.observable, e.station_kw, e.load_kw])
        return out

    fast = BatchStateEstimator(day.feeder.net, layout, threads=1)
    got = calls(fast)
    assert fast._reused  # the reused path was taken
    with monkeypatch.context() as m:
        m.setattr(powerflow, "REUSED_UP_TO", 0)  # every call through the public API
        public = BatchStateEstimator(day.feeder.net, layout, threads=1)
        want = calls(public)
        assert not public._reused
    for g, x in zip(got, want, strict=True):
        for a, b in zip(g, x, strict=True):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b)
