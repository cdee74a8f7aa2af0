"""The DSO acts on what its sensors deliver (twin.measure.DsoMeters), never on the truth.

* what the DSO's side reads of the station in the loop is its state estimate of that step,
  exactly the scored estimate (from the measurement layer's data of the step's end, later
  from every reading that arrived); the estimate sees what meters cannot (cable losses,
  cable loadings);
* the non-firm DSO declares congestion from the station load it measured: its flags are the
  threshold rule applied to its readings, they differ between presets, and under late meters
  they differ from what the truth would have given;
* the performance DSO re-plans on deviation where the load it measured left the plan;
* the DSO's statistical forecaster learns from the measured data and waits for late ones: its
  forecast at a step does not depend on anything that happened within the meters' delay.
"""

from __future__ import annotations

import numpy as np
import pytest

from twin.config import compose
from twin.contracts import make_contract
from twin.forecast import ForecastSettings, StatisticalForecaster
from twin.grid.estimation import StationFlow
from twin.inputs import build_inputs
from twin.measure import MeasurementSettings
from twin.model import FeederModel
from twin.pipeline import run
from twin.timegrid import STEPS_PER_DAY

#: A congestion threshold the default feeder's winter evenings cross (its peak is ~65 %).
THRESHOLD = ["contract=nonfirm", "contract.congestion_threshold_pct=40"]


def _model(overrides: list[str], run_it: bool = True) -> FeederModel:
    cfg = compose(["output.progress=false", *overrides])
    model = FeederModel(
        build_inputs(cfg),
        make_contract(cfg.contract),
        seed=int(cfg.seed),
        forecast=ForecastSettings.from_config(cfg.get("forecast")),
        measurement=MeasurementSettings.from_config(cfg.measurement),
    )
    if run_it:
        model.run_to_end()
    return model


def _true_station_kw(model: FeederModel) -> np.ndarray:
    """The truth: the active power into the station's LV side at every simulated step."""
    f = model.inputs.feeder
    rows = model.window.sim_year_index
    p = f.load_p_kw[rows].copy()
    p[:, f.household_cols] = model.log["p_net_kw"]
    return -StationFlow(f.net)(p, f.load_q_kvar[rows])[0].sum(axis=1)


def _congestion_rule(read_kw: np.ndarray, limit_kw: float, first: int, hold: int) -> np.ndarray:
    """The non-firm rule on a series of station loads (every simulated step)."""
    out = np.zeros(len(read_kw), bool)
    until = -1
    for k in range(first, len(read_kw)):
        seen = [k - 1, k - STEPS_PER_DAY]
        if any(j >= 0 and read_kw[j] > limit_kw for j in seen):
            until = k + hold - 1
        out[k] = k <= until
    return out[first:]


@pytest.mark.parametrize("preset", ["full", "transformer_and_meters", "meters_only"])
def test_the_dso_acts_on_the_state_estimate_it_is_scored_on(preset):
    """Non-firm reads the station every step (the meters measure and the DSO estimates
    lazily, step by step); what it read is, bit for bit, the scored state estimate's station
    load of the same steps from the data of the step's end (the nowcast); later, with every
    late reading arrived, it holds the final estimate."""
    over = ["sim=day", f"measurement={preset}", *THRESHOLD]
    m = _model(over)
    w = m.window.n_warmup_steps
    assert m.dso_meters._est.done[False][w : m.n_steps - 1].all()  # in the loop, step by step
    read = m.dso_meters.transformer_kw(w, m.n_steps, nowcast=True)
    r = run(compose(["output.figures=false", *over]))
    e = r.estimation
    assert np.isfinite(e.nowcast.station_kw).all()
    np.testing.assert_array_equal(read, e.nowcast.station_kw)
    np.testing.assert_array_equal(r.contract_feeder["dso_station_kw"], read)  # (feeder.parquet)
    k = r.kpis
    assert k["dso_measurement"] == preset
    assert 0 < k["dso_station_err_mean_kw"] <= k["dso_station_err_max_kw"]


def test_late_meters_final_estimate_is_what_the_dso_holds_of_old_steps():
    days = ["sim=day", "sim.days=2", "measurement=meters_only", *THRESHOLD]
    m = _model(days)
    w, n, d = m.window.n_warmup_steps, m.n_steps, m.dso_meters.delay_steps
    assert n - w == 2 * d
    held = m.dso_meters.transformer_kw(w, n)  # now: the steps more than a day old are final
    r = run(compose(["output.figures=false", *days]))
    old = slice(0, n - w - d - 1)
    assert not np.array_equal(
        r.estimation.final.station_kw[old], r.estimation.nowcast.station_kw[old]
    )
    np.testing.assert_array_equal(held[old], r.estimation.final.station_kw[old])
    recent = slice(n - w - d, None)
    np.testing.assert_array_equal(held[recent], r.estimation.nowcast.station_kw[recent])


def test_the_estimate_sees_the_cable_losses_the_meters_miss():
    """With every meter in real time and no station sensor, the sum of the readings misses
    the cable losses; the state estimate of the station load has them (the network model),
    so it is unbiased where the sum reads low by the losses."""
    base = ["sim=day", "measurement=meters_only", "measurement.meters.delay_steps=0"]
    base += ["measurement.meters.missing_share=0", *THRESHOLD]
    est = _model(base)
    raw = _model([*base, "measurement.dso_reads=readings"])
    true = _true_station_kw(est)
    np.testing.assert_allclose(_true_station_kw(raw), true, rtol=0, atol=1e-9)  # same truth
    w, n = est.window.n_warmup_steps, est.n_steps
    e = est.dso_meters.transformer_kw(w, n) - true[w:]
    r = raw.dso_meters.transformer_kw(w, n) - true[w:]
    f = est.inputs.feeder
    rows = est.window.sim_year_index[w:]
    loads = f.load_p_kw[rows].copy()
    loads[:, f.household_cols] = est.log["p_net_kw"][w:]
    losses = true[w:] - loads.sum(axis=1)
    assert losses.mean() > 0.5  # kW: a winter day's cable losses on the default feeder
    np.testing.assert_allclose(r.mean(), -losses.mean(), atol=0.3)
    assert abs(e.mean()) < 0.25 * losses.mean()
    # the feeder load the DSO plans on (the connections' sum) is the estimate less its losses
    lo = est.dso_meters.load_kw(w, n) - loads.sum(axis=1)
    assert abs(lo.mean()) < 0.25 * losses.mean() and np.abs(lo).max() < 2.0
    # and the estimate holds every cable's loading, which no meter measures
    cab = est.dso_meters.cable_loading_max_pct(w, n)
    assert np.isfinite(cab).all() and cab.max() > 1.0
    assert np.isnan(raw.dso_meters.cable_loading_max_pct(w, n)).all()


@pytest.fixture(scope="module")
def nonfirm():
    return {p: _model(["sim=day", f"measurement={p}", *THRESHOLD]) for p in ("full", "meters_only")}


def test_nonfirm_declares_congestion_from_what_it_measured(nonfirm):
    flags = {}
    for preset, m in nonfirm.items():
        c, w = m.contract, m.window.n_warmup_steps
        limit = c.threshold_pct / 100.0 * m.inputs.trafo_rating_kva
        read = m.dso_meters.transformer_kw(0, m.n_steps, nowcast=True)
        got = c.congested[w:]
        # the decisions are the rule applied to the DSO's readings ...
        np.testing.assert_array_equal(got, _congestion_rule(read, limit, w, c.hold_steps))
        assert got.any()
        truth = _congestion_rule(_true_station_kw(m), limit, w, c.hold_steps)
        if preset == "full":  # ... a class 0.5 sensor: what the truth would have given
            assert (got != truth).mean() < 0.02
        else:  # ... next-day meters: yesterday's pattern, not today's load
            assert (got != truth).sum() >= 8
        flags[preset] = got
    assert (flags["full"] != flags["meters_only"]).sum() >= 8


def test_the_dso_never_reads_the_truth_of_late_steps(nonfirm):
    """With next-day meters and no station sensor, the station load the DSO has of a step
    within the delay is its pseudo-measurement: changing the truth there changes nothing."""
    m = nonfirm["meters_only"]
    dm = m.dso_meters
    now = m.n_steps
    before = dm.transformer_kw(now - 96, now)
    saved = m.log["p_net_kw"].copy()
    try:
        m.log["p_net_kw"][now - 96 :] *= 3.0  # the truth of the last day, after the fact
        dm._done = now - 96  # (measure and estimate those steps again)
        dm._est.done[False][now - 96 :] = False
        np.testing.assert_array_equal(dm.transformer_kw(now - 96, now), before)
        older = dm.connections_kw(now - 97, now - 96)
        assert not np.array_equal(older, dm._pseudo[now - 97 : now - 96])  # arrived readings
    finally:
        m.log["p_net_kw"][:] = saved
        dm._done = 0


def test_with_every_reading_there_at_once_the_connections_are_the_readings(nonfirm):
    """The full preset (every meter, none lost, no delay): what the DSO has of a connection is
    its reading at every step, now and as it knew it then; the pseudo-measurement is never
    read, so it is not made (NaN)."""
    m = nonfirm["full"]
    dm, n = m.dso_meters, m.n_steps
    for nowcast in (False, True):
        got = dm.connections_kw(0, n, nowcast)
        assert np.isfinite(got).all()
        np.testing.assert_array_equal(got, dm._p_read[:n])
    assert np.isnan(dm._pseudo[:n]).all()
    # and they are readings: the truth with the meters' noise (class B, about 1 %)
    true = np.zeros_like(got)
    true[:, dm.hh_cols] = m.log["p_net_kw"][:n]
    true[:, dm.other_cols] = m.inputs.p_other_kw[:n]
    err = np.abs(got - true)
    assert 0 < np.median(err / np.maximum(np.abs(true), 0.1)) < 0.02


@pytest.fixture(scope="module")
def performance():
    base = ["sim=day", "contract=performance"]
    return {p: _model([*base, f"measurement={p}"]) for p in ("full", "meters_only")}


def test_performance_plans_from_what_it_measured(performance):
    """The peak a re-plan counts as already reached is the largest feeder load the DSO had
    measured (station sensor: up to the step before; next-day meters: up to a day before),
    less three standard deviations of its read;
    a re-plan on deviation is one where the measured load left the plan."""
    replans, lag = {}, {}
    for preset, m in performance.items():
        c, dm = m.contract, m.dso_meters
        t, w = c.terms, m.window.n_warmup_steps
        read = dm.load_kw(0, m.n_steps)  # the feeder load it holds now of every step
        sure = read - t.sunk_peak_sigmas * dm.load_sigma_kw(0, m.n_steps)  # ... sure of
        true = _true_station_kw(m)
        delay = 0 if dm.has_station_sensor else dm.delay_steps
        gaps = []
        for rec in c.stats.records:
            k = rec["step"]
            end = k - delay  # measured by then
            sunk = sure[w:end].max() if end > w else 0.0
            assert rec["sunk_peak_kw"] == pytest.approx(sunk, abs=1e-3)
            if k > w:
                gaps.append(true[w:k].max() - rec["sunk_peak_kw"])
            if rec["reason"] == "feeder load":
                lo = k - t.cadence_steps
                exceed = read[lo:end] - c.dso.expected_kw[lo:end]
                assert exceed.size and exceed.max() > t.replan_tolerance_kw
        replans[preset] = [(r["step"], r["reason"]) for r in c.stats.records]
        lag[preset] = max(gaps)
    assert replans["full"] != replans["meters_only"]
    # the station sensor knows the peak to its accuracy class; next-day meters do not yet
    assert lag["full"] < 10.0 < lag["meters_only"]


def test_the_dso_forecaster_learns_from_measured_data_and_waits_for_late_ones():
    cfg = compose(["sim=day", "forecast=statistical", "measurement=meters_only"])
    m = FeederModel(
        build_inputs(cfg),
        make_contract(cfg.contract),
        seed=3,
        forecast=ForecastSettings.from_config(cfg.forecast),
        measurement=MeasurementSettings.from_config(cfg.measurement),
    )
    hems, dso = m.forecaster, m.dso_forecaster
    assert isinstance(dso, StatisticalForecaster) and dso is not hems
    n_hist = hems._n_hist
    true = hems._base[n_hist:]
    seen = dso._base[n_hist:]
    assert np.array_equal(true, m.exo.p_base_kw)  # a HEMS forecasts its house from its past
    rel = np.abs(seen - true).sum() / np.abs(true).sum()
    assert 0.005 < rel < 0.2  # meter noise, lost readings filled with pseudo-measurements
    # the DSO's forecast issued at k is the same whatever the truth did within the delay
    k, d, n = 150, dso._delay, 96
    assert d == 96
    measured = {"base_kw": dso._base.copy(), "other_kw": dso._other.copy(), "delay_steps": d}
    a = dso.issue(k, n).base_kw.copy()
    late = {**measured, "base_kw": measured["base_kw"].copy()}
    late["base_kw"][n_hist + k - d :] *= 5.0
    b = m._make_forecaster(ForecastSettings.from_config(cfg.forecast), 3, late).issue(k, n)
    np.testing.assert_allclose(b.base_kw, a, rtol=1e-12, atol=1e-12)  # (to rounding)
    arrived = {**measured, "base_kw": measured["base_kw"].copy()}
    arrived["base_kw"][n_hist + k - d - 1] *= 5.0  # the latest step that has arrived
    c = m._make_forecaster(ForecastSettings.from_config(cfg.forecast), 3, arrived).issue(k, n)
    assert np.abs(c.base_kw - a).max() > 1e-3


def _true_cable_max_pct(model: FeederModel) -> np.ndarray:
    """The truth: the most loaded cable's loading (%) at every simulated step."""
    from twin.grid.powerflow import BatchPowerFlow

    f = model.inputs.feeder
    rows = model.window.sim_year_index
    p = f.load_p_kw[rows].copy()
    p[:, f.household_cols] = model.log["p_net_kw"]
    return BatchPowerFlow(f.net).run(p, f.load_q_kvar[rows]).line_loading_pct.max(axis=1)


def test_the_dso_estimates_cable_loadings_and_replans_when_one_is_over_its_limit():
    """The estimate gives the DSO what no meter measures: every cable's loading (full
    preset: within the estimate's error of the truth). The performance DSO re-plans on it:
    with the default margin no cable of this strong feeder comes near its limit (never a
    "cable estimate" re-plan); judged against a limit of 20 % of the rating it re-plans, and
    only where its estimate put a cable above 20 %."""
    from dataclasses import replace

    base = ["sim=day", "contract=performance"]
    m = _model(base)
    w, n = m.window.n_warmup_steps, m.n_steps
    est = m.dso_meters.cable_loading_max_pct(w, n)
    true = _true_cable_max_pct(m)[w:]
    assert true.max() > 15.0
    np.testing.assert_allclose(est, true, rtol=0, atol=1.0)  # %-points
    assert "cable estimate" not in {r["reason"] for r in m.contract.stats.records}

    low = _model(base, run_it=False)
    dso = low.contract.dso
    dso.terms = replace(dso.terms, safety_margin=0.8)  # the trigger's limit only: 20 %
    low.run_to_end()
    cadence = low.contract.terms.cadence_steps
    got = [r["step"] for r in low.contract.stats.records if r["reason"] == "cable estimate"]
    assert got
    seen = low.dso_meters.cable_loading_max_pct(0, low.n_steps, nowcast=True)
    for k in got:
        assert seen[max(k - cadence, w) : k].max() > 20.0


def test_the_sunk_peak_counts_no_measurement_noise(performance):
    """A running max of noisy reads lies above the true running max (its noise is what
    the max picks), and a plan that fills up to it would lock the noise in at every re-plan;
    the sunk peak less three standard deviations of the read stays at or below the truth."""
    m = performance["full"]
    c, dm, w = m.contract, m.dso_meters, m.window.n_warmup_steps
    f = m.inputs.feeder
    p = f.load_p_kw[m.window.sim_year_index].copy()
    p[:, f.household_cols] = m.log["p_net_kw"]
    true = p.sum(axis=1)  # the feeder load: every connection, no losses
    read = dm.load_kw(0, m.n_steps)
    above_raw, above_sunk = 0, 0
    for rec in c.stats.records:
        k = rec["step"]
        if k <= w + 4:
            continue
        true_max = true[w:k].max()
        above_raw += read[w:k].max() > true_max
        above_sunk += rec["sunk_peak_kw"] > true_max + 1e-6
        assert rec["sunk_peak_kw"] > true_max - 5.0  # (and not far below it)
    assert above_raw > 0 and above_sunk == 0
