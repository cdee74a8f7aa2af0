"""Shared fixtures: one composed config and one short default run per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def twin_executable(name: str = "twin") -> str:
    """The console script installed beside the interpreter running the tests."""
    exe = Path(sys.executable).with_name(name)
    if not exe.exists():
        pytest.fail(f"{exe} not found: install the project first (pip install -e '.[test]')")
    return str(exe)


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto`` (pyproject's addopts): a worker per core this process may use (a Slurm
    allocation's or a container's, not the machine's), at most four (a worker running the
    region study peaks at ~4 GB); ``TWIN_TEST_WORKERS`` sets the number."""
    wanted = os.environ.get("TWIN_TEST_WORKERS", "").strip()
    if wanted:
        if not wanted.isdigit():
            raise pytest.UsageError(f"TWIN_TEST_WORKERS={wanted!r}: give a whole number (0: none)")
        return int(wanted)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 4))


@pytest.fixture(scope="session")
def twin_exe() -> str:
    return twin_executable()


@pytest.fixture(scope="session")
def repo_dir() -> Path:
    return REPO


@pytest.fixture(scope="session")
def day_result():
    """One day of the embedded default (feeder, scenario, firm contract), seed 42."""
    from twin.config import compose
    from twin.pipeline import run

    return run(compose(["sim=day", "output.progress=false"]))


@pytest.fixture(autouse=True)
def _no_mpl_windows(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    os.environ.setdefault("HYDRA_FULL_ERROR", "0")


# --------------------------------------------------------------------------------- Slurm


def _slurm_problem() -> str | None:
    """Why no Slurm is reachable, or None when one is."""
    conf = os.environ.get("SLURM_CONF")
    if not conf:
        return "SLURM_CONF is not set (start one with: bash .ci/slurm/up.sh; source its env file)"
    if not Path(conf).is_file():
        return f"SLURM_CONF={conf} does not exist"
    if shutil.which("sinfo") is None:
        return "sinfo is not installed"
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%P %a %T"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 30 s"
    if proc.returncode != 0:
        return f"sinfo failed: {proc.stderr.strip()}"
    return None


@pytest.fixture
def slurm() -> str:
    """The partition to submit to; skips (or fails under TWIN_REQUIRE_SLURM=1) without Slurm."""
    problem = _slurm_problem()
    if problem is not None:
        if os.environ.get("TWIN_REQUIRE_SLURM") == "1":
            pytest.fail(f"TWIN_REQUIRE_SLURM=1 but no Slurm is reachable: {problem}")
        pytest.skip(f"no Slurm reachable: {problem}")
    return os.environ.get("TWIN_TEST_SLURM_PARTITION", "debug")


def sacct_states(job_ids: set[str]) -> dict[str, str]:
    array_ids = sorted({j.split("_")[0] for j in job_ids})
    proc = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "JobID,State,ExitCode", "-j", ",".join(array_ids)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, f"sacct failed: {proc.stderr}"
    states = {}
    for line in proc.stdout.splitlines():
        job, state, code = line.split("|")
        states[job] = f"{state.split()[0]} {code}"
    return states
