"""End to end on the default feeder: the pipeline's physics and its behaviour as a program."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

import twin
from twin.config import compose
from twin.pipeline import run
from twin.timegrid import DT_H


def test_default_day_runs_on_the_real_feeder(day_result):
    r = day_result
    k = r.kpis
    assert k["grid"] == "1-LV-urban6--0-sw" and k["households"] == 102
    assert r.feeder.net.trafo.sn_mva.iloc[0] == pytest.approx(0.63)
    assert r.log["p_net_kw"].shape == (96, 102)
    # every heat-pump home holds its setpoint under a firm thermostat on a -3 °C day
    assert k["comfort_days_met_share"] == 1.0
    # transformer peak equals the AC result; per-household peak is the simulated load
    assert k["trafo_peak_kva"] == pytest.approx(r.grid.trafo_s_kva.max())
    assert k["coincident_peak_per_household_kw"] == pytest.approx(
        r.log["p_net_kw"].sum(1).max() / 102
    )


def test_household_energy_balance(day_result):
    """Per household, device energies sum to the grid exchange, and the battery's and EV's
    stored energy changes match what flowed in and out."""
    lg, f = day_result.log, day_result.fleet  # the reported steps
    devices = lg["p_base_kw"] + lg["p_hp_kw"] + lg["p_ev_kw"] + lg["p_bat_kw"] - lg["p_pv_kw"]
    np.testing.assert_allclose(devices.sum(0) * DT_H, lg["p_net_kw"].sum(0) * DT_H, atol=1e-9)
    eta = f.bat_eta
    pb = lg["p_bat_kw"]
    d_soc = lg["bat_soc_kwh"][-1] - day_result.start_state["bat_soc_kwh"]
    stored = (eta * np.clip(pb, 0, None) - np.clip(-pb, 0, None) / eta).sum(0) * DT_H
    np.testing.assert_allclose(d_soc, stored, atol=1e-9)
    assert np.all(lg["bat_soc_kwh"] <= f.bat_capacity_kwh + 1e-9) and np.all(
        lg["bat_soc_kwh"] >= -1e-9
    )


def test_grid_power_balance(day_result):
    """Transformer active power = all loads + network losses, at every step (AC result)."""
    r = day_result
    np.testing.assert_allclose(
        r.grid.trafo_p_kw[:, 0] - r.grid.losses_kw, r.p_load_kw.sum(1), rtol=1e-6, atol=1e-3
    )


def test_same_seed_same_kpis_other_seed_differs():
    a = run(compose(["sim=day", "seed=5", "output.progress=false"])).kpis
    b = run(compose(["sim=day", "seed=5", "output.progress=false"])).kpis
    c = run(compose(["sim=day", "seed=6", "output.progress=false"])).kpis
    assert a == b
    assert a["coincident_peak_kw"] != c["coincident_peak_kw"]


def test_results_on_disk(day_result, tmp_path):
    out = twin.write(day_result, tmp_path / "run")
    assert (out / "DONE").exists()
    kpis = json.loads((out / "kpis.json").read_text())
    assert kpis["trafo_peak_kva"] == pytest.approx(day_result.kpis["trafo_peak_kva"])
    hh = pd.read_parquet(out / "households.parquet")
    assert len(hh) == 96 * 102 and {"time", "household", "p_net_kw", "t_in_c", "ev_soc_kwh"} <= set(
        hh.columns
    )
    feeder = pd.read_parquet(out / "feeder.parquet")
    assert feeder.trafo_loading_pct.max() == pytest.approx(kpis["trafo_peak_loading_pct"], rel=1e-9)
    for name in ("transformer_loading", "voltage_band", "indoor_temperature", "ev_state_of_charge"):
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "seed: 42" in (out / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("sim.days=0", "sim.days"),
        ("grid.name=no-such-grid", "no-such-grid"),
        ("scenario.name=nope", "scenario 'nope' not found"),
        ("sim.start=yesterday", "sim.start"),
        ("weather.region=99", "weather.region"),
    ],
)
def test_bad_input_gives_one_line_error_and_nonzero_exit(
    override, needle, tmp_path, twin_exe, repo_dir
):
    proc = subprocess.run(
        [twin_exe, override, f"paths.results_dir={tmp_path}"],
        capture_output=True,
        text=True,
        cwd=repo_dir,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    err = [ln for ln in proc.stderr.splitlines() if ln.startswith("twin: error:")]
    assert len(err) == 1 and needle in err[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("DONE"))


def test_python_api_as_documented(tmp_path):
    """The README's notebook example: ``twin.compose`` + ``twin.run`` (twice) + ``write``."""
    import twin

    cfg = twin.compose(["sim=day", "seed=3", "output.progress=false", "output.figures=false"])
    first = twin.run(cfg)
    again = twin.run(cfg)  # twin.run stays the function after the pipeline module is imported
    assert isinstance(first, twin.RunResult)
    assert first.kpis == again.kpis
    assert len(first.households_frame()) == 96 * first.kpis["households"]
    assert (twin.write(first, tmp_path / "r") / "DONE").exists()


def test_fairness_spread_matches_the_per_household_values():
    """Spread KPIs are the percentiles of the per-household comfort and EV shortfall."""
    from twin.kpi import household_kpis

    r = run(compose(["sim=day", "output.progress=false"]))
    log = dict(r.log)
    f = r.fleet
    log["t_in_c"] = log["t_in_c"].copy()
    hp = np.flatnonzero(f.has_hp)
    log["t_in_c"][:, hp[0]] = f.setpoint_c[hp[0]] - 3.0  # 2 K below the 1 K band all day: 48 K·h
    k = household_kpis(log, f, r.trips, r.start_state, r.cfg.service)
    assert k["comfort_kelvin_hours_worst_household"] == pytest.approx(2.0 * 24)
    assert k["comfort_kelvin_hours_median_household"] == 0.0
    assert k["ev_shortfall_kwh_worst_household"] == 0.0
