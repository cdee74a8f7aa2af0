"""twin-report over a real sweep with one deliberately failed run."""

from __future__ import annotations

import subprocess

import pandas as pd


def test_report_tables_the_complete_runs_and_names_the_failure(tmp_path, twin_exe, repo_dir):
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [
            twin_exe,
            "-m",
            "sim=day",
            "seed=1,2",
            "sim.days=1,0",
            "output.figures=false",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        cwd=repo_dir,
        timeout=300,
    )
    assert proc.returncode == 2  # the sweep reports the failed job
    # every job runs: a failing one writes FAILED and the sweep goes on (the call exits 2)
    report = subprocess.run(
        [str(__import__("pathlib").Path(twin_exe).with_name("twin-report")), str(sweep)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    df = pd.read_csv(sweep / "report" / "runs.csv")
    assert (df.status == "complete").sum() == 2 and (df.status == "failed").sum() == 2
    failed = df[df.status == "failed"].iloc[0]
    assert "sim.days=0" in failed.error
    ok = df[df.status == "complete"].iloc[0]
    assert ok["override.seed"] == 1 and ok["trafo_peak_loading_pct"] > 0
    summary = (sweep / "report" / "summary.md").read_text()
    assert "2 complete run(s), 2 failed" in summary and "sim.days=0" in summary
    assert pd.read_parquet(sweep / "report" / "runs.parquet").shape[0] == 4
    assert (sweep / "report" / "comparison.png").stat().st_size > 1000


def _fake_sweep(day_result, sweep):
    """Six run folders as a sweep over seed x contract.safety_margin leaves them, from one
    real result with planted KPIs: four complete, one with a truncated kpis.json, one that
    never finished."""
    import dataclasses
    import json

    import yaml
    from omegaconf import OmegaConf

    from twin.writer import write_run

    planted = {}
    for job, (margin, seed) in enumerate([(0.1, 1), (0.1, 2), (0.2, 1), (0.2, 2)]):
        cfg = OmegaConf.create(OmegaConf.to_container(day_result.cfg))
        cfg.seed = seed
        cfg.output.figures = False
        cfg.output.timeseries = False
        cfg.contract = {"name": "performance", "safety_margin": margin}
        peak = 2.0 + margin * 10 + seed * 0.1
        kpis = dict(day_result.kpis, seed=seed, coincident_peak_per_household_kw=peak)
        run = sweep / str(job)
        write_run(dataclasses.replace(day_result, cfg=cfg, kpis=kpis), run)
        (run / ".hydra").mkdir()
        overrides = [f"seed={seed}", f"contract.safety_margin={margin}", "output.figures=false"]
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        planted[(margin, seed)] = peak
    broken = sweep / "4"
    write_run(day_result, broken)
    (broken / "kpis.json").write_text(json.dumps(day_result.kpis)[:200])  # truncated
    (broken / ".hydra").mkdir()
    (broken / ".hydra" / "overrides.yaml").write_text("- seed=3\n- contract.safety_margin=0.3\n")
    failed = sweep / "5"
    (failed / ".hydra").mkdir(parents=True)
    (failed / ".hydra" / "overrides.yaml").write_text("- seed=4\n")
    (failed / "FAILED").write_text("twin: error: something broke\n")
    return planted


def test_report_groups_by_the_swept_keys_with_mean_min_max(day_result, tmp_path):
    import numpy as np
    import pytest

    from twin.report import main, plot_groups, report, swept_keys

    sweep = tmp_path / "sweep"
    planted = _fake_sweep(day_result, sweep)
    df = report(sweep)  # never raises on the truncated or failed run
    status = dict(zip(df.run, df.status, strict=True))
    assert status == {
        "0": "complete",
        "1": "complete",
        "2": "complete",
        "3": "complete",
        "4": "unreadable",
        "5": "failed",
    }
    assert "kpis.json is unreadable" in df.set_index("run").at["4", "error"]
    assert swept_keys(df) == ["param.contract.safety_margin"]  # seed: replicates
    groups = pd.read_csv(sweep / "report" / "groups.csv")
    assert list(groups["param.contract.safety_margin"]) == [0.1, 0.2]
    assert list(groups["runs"]) == [2, 2]
    for _, g in groups.iterrows():
        m = g["param.contract.safety_margin"]
        values = [planted[(m, s)] for s in (1, 2)]
        assert g["coincident_peak_per_household_kw_mean"] == pytest.approx(np.mean(values))
        assert g["coincident_peak_per_household_kw_min"] == pytest.approx(min(values))
        assert g["coincident_peak_per_household_kw_max"] == pytest.approx(max(values))
    summary = (sweep / "report" / "summary.md").read_text()
    assert "Grouped by contract.safety_margin" in summary
    assert "4 complete run(s), 1 failed or incomplete, 1 unreadable (skipped)" in summary
    assert "`4` (unreadable)" in summary and "something broke" in summary
    assert "3.15 [3.1 – 3.2]" in summary  # margin 0.1: seeds 1 and 2
    assert (sweep / "report" / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    drawn = plot_groups(
        pd.read_csv(sweep / "report" / "groups.csv"),
        ["param.contract.safety_margin"],
        tmp_path / "g.png",
    )
    peak = drawn["coincident_peak_per_household_kw"]
    np.testing.assert_allclose(peak[:, 0], groups["coincident_peak_per_household_kw_mean"])
    np.testing.assert_allclose(
        peak[:, 1:],
        groups[
            ["coincident_peak_per_household_kw_min", "coincident_peak_per_household_kw_max"]
        ].to_numpy(),
    )
    # --by seed: one group per seed instead
    assert main([str(sweep), "--by", "seed", "--out", str(tmp_path / "by_seed")]) == 0
    by_seed = pd.read_csv(tmp_path / "by_seed" / "groups.csv")
    assert list(by_seed["param.seed"]) == [1, 2] and list(by_seed["runs"]) == [2, 2]
    assert main([str(sweep), "--by", "nope", "--out", str(tmp_path / "x")]) == 2


def test_report_reads_values_from_each_runs_config(day_result, tmp_path):
    """A group choice (scenario=...) is the run's scenario.name, read from its config.yaml."""
    import dataclasses

    import yaml
    from omegaconf import OmegaConf

    from twin.report import collect
    from twin.writer import write_run

    sweep = tmp_path / "s"
    for job, name in enumerate(["nl-2030", "nl-2040-central"]):
        cfg = OmegaConf.create(OmegaConf.to_container(day_result.cfg))
        cfg.scenario.name = name
        cfg.output.figures = False
        cfg.output.timeseries = False
        run = write_run(dataclasses.replace(day_result, cfg=cfg), sweep / str(job))
        (run / ".hydra").mkdir()
        (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([f"scenario={name}"]))
    df = collect(sweep)
    assert list(df["param.scenario"]) == ["nl-2030", "nl-2040-central"]
