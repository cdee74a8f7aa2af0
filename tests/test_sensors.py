"""The sensor-placement study (twin/sensors.py, ``twin study=sensors``): a greedy ranking of
current sensors by how much each lowers the worst cable-loading error of the DSO's estimate,
recomputed here from the estimator itself; the readings of a sensor set do not change when
a sensor is added; the command writes its table and map, and refuses a bad base preset in
one line."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from twin.config import compose
from twin.grid.estimation import BatchStateEstimator
from twin.measure import MeasurementSettings, estimate_feeder, measure, sensor_layout
from twin.pipeline import run
from twin.sensors import sensor_study


@pytest.fixture(scope="module")
def day():
    cfg = compose(
        ["sim=day", "output.progress=false", "output.figures=false", "measurement=transformer_only"]
    )
    return run(cfg)


@pytest.fixture(scope="module")
def study(day):
    settings = MeasurementSettings.from_config(day.cfg.measurement)
    return sensor_study(day, settings, 2, threads=1), settings


def _score(day, settings, lines):
    p = np.vstack([day.warmup_p_load_kw, day.p_load_kw])
    q = day.feeder.load_q_kvar[day.window.sim_year_index]
    return estimate_feeder(
        settings,
        day.feeder.net,
        p,
        q,
        day.standard_p_kw,
        day.window.n_warmup_steps,
        day.grid,
        int(day.cfg.seed),
        1,
        current_lines=np.asarray(lines),
        final=False,
    )


def test_the_greedy_ranking_is_the_estimators_own(day, study):
    st, settings = study
    r, c = st.ranking, st.candidates
    # the base row is the run's own state estimation with the base preset
    assert r.loc[0, "line_err_max_pp"] == pytest.approx(day.kpis["se_line_err_max_pp"])
    # the first sensor is the best candidate on its own, and lowers the worst error
    assert r.loc[1, "cable"] == c.loc[0, "cable"]
    assert r.loc[1, "line_err_max_pp"] == c["line_err_max_pp"].min() < r.loc[0, "line_err_max_pp"]
    # recomputed from the estimator: the chosen pair's errors
    pos = [int(day.feeder.net.line.index.get_loc(int(x))) for x in r["line"].iloc[1:]]
    se = _score(day, settings, pos)
    assert r.loc[2, "line_err_max_pp"] == pytest.approx(se.kpis["se_line_err_max_pp"])
    assert r.loc[2, "line_err_mean_pp"] == pytest.approx(se.kpis["se_line_err_mean_pp"])
    np.testing.assert_allclose(
        np.diff(-r["line_err_max_pp"].to_numpy()), r["reduction_pp"].to_numpy()[1:]
    )
    # each candidate was tried: one row per cable without a sensor
    assert len(c) == int(day.feeder.net.line["in_service"].sum())


def test_a_measured_cable_is_estimated_to_its_sensors_accuracy(day, study):
    st, settings = study
    c = int(day.feeder.net.line.index.get_loc(int(st.ranking.loc[1, "line"])))
    se = _score(day, settings, [c])
    err = np.abs(se.nowcast.result.line_loading_pct[:, c] - day.grid.line_loading_pct[:, c])
    before = np.abs(
        _score(day, settings, []).nowcast.result.line_loading_pct[:, c]
        - day.grid.line_loading_pct[:, c]
    )
    assert err.max() < 0.25 * before.max()
    assert err.max() < 5.0  # class 1 current sensor: ~1 % of the current + 1 A


def test_adding_a_sensor_leaves_the_others_readings(day):
    s = MeasurementSettings.from_config(compose(["measurement=transformer_only"]).measurement)
    net = day.feeder.net
    p = np.vstack([day.warmup_p_load_kw, day.p_load_kw])
    q = day.feeder.load_q_kvar[day.window.sim_year_index]
    w = day.window.n_warmup_steps
    metered = np.zeros(len(net.load), bool)
    reads = []
    for lines in ([5], [5, 20]):
        lay = replace(sensor_layout(s, metered), current_lines=np.asarray(lines))
        est = BatchStateEstimator(net, lay, threads=1, method="iterative_linear")
        truth = est.sensor_truth(p[w:], q[w:])
        m = measure(s, est, truth, p, q, day.standard_p_kw, w, metered, 42)
        reads.append(m.nowcast.line_i_ka[:, list(est.heads).index(5)])
    np.testing.assert_array_equal(reads[0], reads[1])


def test_the_command_writes_the_table_and_the_map(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    out = tmp_path / "s"
    cmd = [
        sys.executable,
        "-m",
        "twin.cli",
        "study=sensors",
        "sim=day",
        "study.n_sensors=1",
        "output.progress=false",
        f"hydra.run.dir={out}",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    for f in (
        "sensors.csv",
        "sensor_candidates.csv",
        "sensors.json",
        "sensor_placement.png",
        "summary.md",
        "DONE",
    ):
        assert (out / f).exists(), f
    table = pd.read_csv(out / "sensors.csv")
    assert list(table["rank"]) == [0, 1]
    assert "Greedy ranking" in (out / "summary.md").read_text()
    bad = subprocess.run(
        [*cmd[:-1], "study.base=nope", f"hydra.run.dir={tmp_path / 'b'}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert bad.returncode == 2
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("twin: error: study.base='nope' is invalid")
    assert "transformer_only" in lines[0]
