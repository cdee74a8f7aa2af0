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
    # Hydra's basic launcher runs jobs in order: seed=1 days=1, seed=1 days=0 (fails) -> stops
    report = subprocess.run(
        [str(__import__("pathlib").Path(twin_exe).with_name("twin-report")), str(sweep)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    df = pd.read_csv(sweep / "report" / "runs.csv")
    assert (df.status == "complete").sum() == 1 and (df.status == "failed").sum() == 1
    failed = df[df.status == "failed"].iloc[0]
    assert "sim.days=0" in failed.error
    ok = df[df.status == "complete"].iloc[0]
    assert ok["override.seed"] == 1 and ok["trafo_peak_loading_pct"] > 0
    summary = (sweep / "report" / "summary.md").read_text()
    assert "1 complete run(s), 1 failed" in summary and "sim.days=0" in summary
    assert pd.read_parquet(sweep / "report" / "runs.parquet").shape[0] == 2
    assert (sweep / "report" / "comparison.png").stat().st_size > 1000
