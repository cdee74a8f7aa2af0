"""Sweeps through Hydra launchers, as planners run them: joblib on one machine, Slurm on HPC.

Both tests start the installed ``twin`` console script (the one beside the interpreter that
runs pytest) as a subprocess, in a temporary folder, and check the sweep's run folders.

The Slurm test needs a reachable Slurm (``SLURM_CONF`` set and ``sinfo`` answering); .ci/run
starts a private one with .ci/slurm/up.sh. Without one it is skipped, unless
``TWIN_REQUIRE_SLURM=1`` (set by CI), in which case it fails. ``TWIN_TEST_SLURM_PARTITION``
(default ``debug``) names the partition it submits to.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

# What every finished run leaves in its output folder (DONE last).
RUN_FILES = ("kpis.json", "config.yaml", "households.parquet", "feeder.parquet", "DONE")
SEEDS = (1, 2, 3, 4)
SWEEP_TIMEOUT_S = 480  # outer limit for one whole sweep, whatever the launcher does
SACCT_TIMEOUT_S = 60  # a task's result is on disk a moment before sacct reports it COMPLETED


# --------------------------------------------------------------------------------- helpers


def _twin_exe() -> str:
    exe = Path(sys.executable).with_name("twin")
    if not exe.exists():
        pytest.fail(f"{exe} not found: install the project first (pip install -e '.[test]')")
    return str(exe)


def _tail(text: str, n: int = 40) -> str:
    return "\n".join(text.splitlines()[-n:])


def _submitit_logs(sweep: Path, n: int = 20) -> str:
    """The ends of submitit's job logs, for failure messages."""
    parts = []
    for log in sorted((sweep / ".submitit").glob("*/*_log.*")):
        parts.append(f"--- {log.relative_to(sweep)}\n{_tail(log.read_text(errors='replace'), n)}")
    return "\n".join(parts) or "(no submitit logs)"


def run_sweep(overrides: list[str], sweep: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``twin -m <overrides> hydra.sweep.dir=<sweep>``, bounded by SWEEP_TIMEOUT_S."""
    env = dict(os.environ, MPLBACKEND="Agg", HYDRA_FULL_ERROR="1")
    cmd = [_twin_exe(), "-m", *overrides, "output.progress=false", f"hydra.sweep.dir={sweep}"]
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SWEEP_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as err:
        out = (
            (err.stdout or b"").decode(errors="replace")
            if isinstance(err.stdout, bytes)
            else (err.stdout or "")
        )
        pytest.fail(
            f"sweep did not finish within {SWEEP_TIMEOUT_S} s: {' '.join(cmd)}\n{_tail(out)}"
        )
    assert proc.returncode == 0, (
        f"sweep failed with exit code {proc.returncode}: {' '.join(cmd)}\n"
        f"--- stdout\n{_tail(proc.stdout)}\n--- stderr\n{_tail(proc.stderr)}"
    )
    return proc


def _seed_of(run: Path) -> int:
    """The seed override of one run, from Hydra's record of the job's overrides."""
    overrides = (run / ".hydra" / "overrides.yaml").read_text()
    for line in overrides.splitlines():
        item = line.strip().removeprefix("- ").strip("'\"")
        if item.startswith("seed="):
            return int(item.split("=", 1)[1])
    raise AssertionError(f"no seed override recorded in {run}/.hydra/overrides.yaml")


def check_sweep(sweep: Path, seeds: tuple[int, ...]) -> dict[int, dict]:
    """Assert the sweep left one complete run folder per seed; return {seed: kpis}."""
    runs = sorted(p for p in sweep.iterdir() if p.is_dir() and (p / ".hydra").is_dir())
    assert len(runs) == len(seeds), f"expected {len(seeds)} run folders in {sweep}, found {runs}"
    kpis: dict[int, dict] = {}
    for run in runs:
        missing = [name for name in RUN_FILES if not (run / name).exists()]
        assert not missing, f"run {run} is incomplete: missing {missing}"
        assert (run / "figures").is_dir(), f"run {run} has no figures/"
        data = json.loads((run / "kpis.json").read_text())
        assert isinstance(data, dict) and data, f"{run}/kpis.json is empty"
        kpis[_seed_of(run)] = data
    assert sorted(kpis) == sorted(seeds), (
        f"runs cover seeds {sorted(kpis)}, expected {sorted(seeds)}"
    )

    # Same KPI keys in every run, and runs with different seeds give different results.
    keys = {seed: set(k) for seed, k in kpis.items()}
    first = keys[seeds[0]]
    assert all(k == first for k in keys.values()), f"KPI keys differ between runs: {keys}"
    numeric = sorted(
        k for k in first if k != "seed" and all(isinstance(kpis[s][k], int | float) for s in seeds)
    )
    assert numeric, "kpis.json has no numeric KPIs"
    for s in seeds:
        bad = [k for k in numeric if not math.isfinite(kpis[s][k])]
        assert not bad, f"seed {s}: non-finite KPIs {bad}"
    for i, a in enumerate(seeds):
        for b in seeds[i + 1 :]:
            assert any(kpis[a][k] != kpis[b][k] for k in numeric), (
                f"seeds {a} and {b} gave identical KPIs"
            )
    return kpis


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


def _job_ids(sweep: Path) -> set[str]:
    """Slurm job ids (``<array id>_<index>``) of a sweep, from submitit's folders."""
    return {p.name for p in (sweep / ".submitit").glob("*_*") if p.is_dir()}


def _sacct_states(job_ids: set[str]) -> dict[str, str]:
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


@pytest.mark.slurm
@pytest.mark.slow
def test_slurm_sweep(tmp_path: Path, slurm: str) -> None:
    sweep = tmp_path / "sweep"
    overrides = [
        "seed=" + ",".join(map(str, SEEDS)),
        "sim.days=1",
        "hydra/launcher=slurm",
        f"hydra.launcher.partition={slurm}",
        "hydra.launcher.timeout_min=10",
        "hydra.launcher.cpus_per_task=1",
    ]
    t0 = time.perf_counter()
    try:
        proc = run_sweep(overrides, sweep, cwd=tmp_path)
    except BaseException:
        # Leave no job of a failed sweep behind on the cluster.
        ids = _job_ids(sweep) if sweep.exists() else set()
        if ids:
            subprocess.run(["scancel", *sorted({j.split("_")[0] for j in ids})], timeout=30)
            print(_submitit_logs(sweep))
        raise
    print(f"Slurm sweep of {len(SEEDS)} runs: {time.perf_counter() - t0:.1f} s")
    assert "Submitit 'slurm' sweep" in proc.stdout + proc.stderr, "sweep did not use Slurm"

    check_sweep(sweep, SEEDS)

    # Every run was a task of a Slurm job array, and accounting saw each one complete.
    ids = _job_ids(sweep)
    assert len(ids) == len(SEEDS), f"expected {len(SEEDS)} Slurm tasks, submitit has {ids}"
    deadline = time.monotonic() + SACCT_TIMEOUT_S
    while True:
        states = _sacct_states(ids)
        if set(states) >= ids and all(states[j] == "COMPLETED 0:0" for j in ids):
            break
        finished = {
            j: s
            for j, s in states.items()
            if not s.startswith(("RUNNING", "PENDING", "COMPLETING"))
        }
        failed = {j: s for j, s in finished.items() if s != "COMPLETED 0:0"}
        assert not failed, f"Slurm tasks did not complete: {failed}\n{_submitit_logs(sweep)}"
        assert time.monotonic() < deadline, (
            f"sacct does not show all tasks COMPLETED after {SACCT_TIMEOUT_S} s: {states}"
        )
        time.sleep(1)


# --------------------------------------------------------------------------------- joblib


@pytest.mark.slow
def test_joblib_sweep(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    overrides = ["seed=1,2", "sim.days=1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    t0 = time.perf_counter()
    proc = run_sweep(overrides, sweep, cwd=tmp_path)
    print(f"joblib sweep of 2 runs: {time.perf_counter() - t0:.1f} s")
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr, "sweep did not use joblib"
    check_sweep(sweep, (1, 2))
