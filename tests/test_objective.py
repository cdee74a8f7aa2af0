"""``objective=<kpi>``: a single run returns that KPI as a float (negated with a leading '-'),
so Hydra's optuna sweeper can optimise a contract setting; a real 3-trial search."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from twin.catalog import objective_value
from twin.errors import TwinError


def test_objective_value_sign_and_errors():
    kpis = {"coincident_peak_per_household_kw": 2.5, "grid": "g", "ok": True, "n": 3}
    assert objective_value(kpis, "coincident_peak_per_household_kw") == 2.5
    assert objective_value(kpis, "+coincident_peak_per_household_kw") == 2.5
    assert objective_value(kpis, "-coincident_peak_per_household_kw") == -2.5
    assert objective_value(kpis, "n") == 3.0
    with pytest.raises(TwinError, match="did you mean coincident_peak_per_household_kw"):
        objective_value(kpis, "coincident_peak_household_kw")
    with pytest.raises(TwinError, match="'grid' is not a number"):
        objective_value(kpis, "grid")
    with pytest.raises(TwinError, match="'ok' is not a number"):
        objective_value(kpis, "ok")


def test_a_single_run_returns_its_objective(tmp_path):
    from twin.cli import _single
    from twin.config import compose

    cfg = compose(
        [
            "sim=day",
            "objective=-coincident_peak_per_household_kw",
            "output.figures=false",
            "output.progress=false",
        ]
    )
    out = tmp_path / "run"
    value = _single(cfg, out)
    kpis = json.loads((out / "kpis.json").read_text())
    assert isinstance(value, float)
    assert value == -kpis["coincident_peak_per_household_kw"]
    assert _single(cfg, out) == value  # a re-run into the complete folder: same value
    bad = compose(["sim=day", "objective=peak_typo", "output.progress=false"])
    with pytest.raises(TwinError, match="objective='peak_typo'"):
        _single(bad, tmp_path / "bad")
    assert not (tmp_path / "bad" / "DONE").exists()  # checked before anything is written


def test_optuna_searches_the_safety_margin(tmp_path, twin_exe, repo_dir):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = tmp_path / "opt"
    proc = subprocess.run(
        [
            twin_exe,
            "-m",
            "hydra/sweeper=optuna",
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.n_jobs=1",
            "hydra.sweeper.sampler.seed=7",
            "sim=day",
            "contract=performance",
            "contract.safety_margin=interval(0.0,0.3)",
            "objective=coincident_peak_per_household_kw",
            "output.figures=false",
            "output.progress=false",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        cwd=repo_dir,
        env=dict(os.environ, MPLBACKEND="Agg"),
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    runs = sorted(p for p in sweep.iterdir() if (p / "DONE").exists())
    assert len(runs) == 3
    values = {}
    for run in runs:
        kpis = json.loads((run / "kpis.json").read_text())
        margin = yaml.safe_load((run / "config.yaml").read_text())["contract"]["safety_margin"]
        assert 0.0 <= margin <= 0.3
        values[margin] = kpis["coincident_peak_per_household_kw"]
    assert len(values) == 3  # three different trials
    margin, value = min(values.items(), key=lambda kv: kv[1])
    assert best["best_value"] == value  # the value optuna saw is the run's KPI
    assert best["best_params"]["contract.safety_margin"] == pytest.approx(margin, abs=1e-12)
    assert Path(sweep / "optimization_results.yaml").is_file()
