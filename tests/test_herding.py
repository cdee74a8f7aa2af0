"""The herding study (issue 18): peak against the automation share, per tariff."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest


def test_herding_study_on_the_command_line(tmp_path, twin_exe, repo_dir):
    proc = subprocess.run(
        [
            twin_exe,
            "study=herding",
            "sim=day",
            "study.contracts=[firm,tou]",
            "study.shares=[0,1]",
            "output.progress=false",
            f"paths.results_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        cwd=repo_dir,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (out,) = [p for p in (tmp_path / "runs").iterdir() if (p / "DONE").exists()]
    for name in ("herding.csv", "herding.json", "herding.png", "summary.md"):
        assert (out / name).stat().st_size > 0, name
    t = pd.read_csv(out / "herding.csv")
    assert t.contract.tolist() == ["firm", "tou", "tou"]
    assert t.automation_share.isna().tolist() == [True, False, False]
    assert t.automation_share[1:].tolist() == [0.0, 1.0]
    assert t.hems_households_planning[1] == 0 and t.hems_households_planning[2] > 0
    firm = t.iloc[0]
    assert t.trafo_peak_kva_vs_firm.tolist() == pytest.approx(
        (t.trafo_peak_kva / firm.trafo_peak_kva).tolist()
    )
    # the two shares are different populations on the same households
    assert t.trafo_peak_kva[2] != t.trafo_peak_kva[1] and (t.trafo_peak_kva > 0).all()
    assert (t.comfort_days_met_share == 1.0).all()
    data = json.loads((out / "herding.json").read_text())
    assert data["study"]["response_rest"] == "scenario" and len(data["runs"]) == 3
    assert "| tou" in proc.stdout


def test_herding_rejects_a_contract_without_automation(tmp_path, twin_exe, repo_dir):
    proc = subprocess.run(
        [
            twin_exe,
            "study=herding",
            "sim=day",
            "study.contracts=[firm,nonfirm]",
            "output.progress=false",
            f"paths.results_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        cwd=repo_dir,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "contract=nonfirm has no automation_share" in proc.stderr.strip().splitlines()[-1]
