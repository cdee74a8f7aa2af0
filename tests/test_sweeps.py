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
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import sacct_states

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


def _job_ids(sweep: Path) -> set[str]:
    """Slurm job ids (``<array id>_<index>``) of a sweep, from submitit's folders."""
    return {p.name for p in (sweep / ".submitit").glob("*_*") if p.is_dir()}


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
        states = sacct_states(ids)
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


# --------------------------------------------------------------------------------- failures


def _quiet_env() -> dict[str, str]:
    """No debug switches: a failure must look as a user sees it (one line)."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "TWIN_DEBUG")}
    return {**env, "MPLBACKEND": "Agg"}


def _jobs(sweep: Path) -> dict[int, Path]:
    return {int(p.name): p for p in sweep.iterdir() if p.is_dir() and (p / ".hydra").is_dir()}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["basic", "local"])
def test_a_failing_job_is_reported_the_others_finish_and_a_rerun_resumes(
    launcher: str, tmp_path: Path
) -> None:
    sweep = tmp_path / "sweep"
    cmd = [_twin_exe(), "-m", "seed=1,-1,2", "sim=day", "output.figures=false"]
    cmd += ["output.progress=false", f"hydra/launcher={launcher}", f"hydra.sweep.dir={sweep}"]

    def sweep_once() -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            cmd,
            cwd=tmp_path,
            env=_quiet_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SWEEP_TIMEOUT_S,
        )
        lines = proc.stderr.splitlines()
        assert proc.returncode == 2, proc.stderr
        assert len(lines) == 1 and lines[0].startswith("twin: error: 1 of 3 sweep runs failed")
        assert "seed=-1 is out of range" in lines[0] and str(sweep) in lines[0]
        assert "Traceback" not in proc.stderr + proc.stdout
        return proc

    sweep_once()
    jobs = _jobs(sweep)
    assert sorted(jobs) == [0, 1, 2]
    for num in (0, 2):  # the jobs before and after the failing one both finished
        assert (jobs[num] / "DONE").is_file(), f"job {num} did not finish: {os.listdir(jobs[num])}"
        assert json.loads((jobs[num] / "kpis.json").read_text())["seed"] == (1 if num == 0 else 2)
    failed = jobs[1]
    assert not (failed / "DONE").exists()
    assert "twin: error: seed=-1 is out of range" in (failed / "FAILED").read_text()
    assert "twin: error: seed=-1" in (failed / "twin.log").read_text()  # the job's log line

    # the same command again: the complete runs are skipped, the failing one fails again
    stamps = {n: (jobs[n] / "kpis.json").stat().st_mtime_ns for n in (0, 2)}
    again = sweep_once()
    assert again.stdout.count("already holds a complete run of this configuration") == 2
    assert {n: (jobs[n] / "kpis.json").stat().st_mtime_ns for n in (0, 2)} == stamps
    assert (failed / "FAILED").is_file() and not (failed / "DONE").exists()


# --------------------------------------------------------------------------------- kill


def _processes() -> dict[int, tuple[int, str, int]]:
    """pid -> (parent pid, state, start time) of every process, from /proc."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        out[int(stat.parent.name)] = (int(fields[1]), fields[0], int(fields[19]))
    return out


def _descendants(root: int) -> dict[int, int]:
    """pid -> start time of every process below ``root``."""
    procs = _processes()
    found, todo = {}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, _, start) in procs.items():
            if ppid == parent and pid not in found:
                found[pid] = start
                todo.append(pid)
    return found


def _alive(pids: dict[int, int]) -> list[int]:
    """The processes of ``pids`` still running (not gone, not a zombie, not a reused pid)."""
    procs = _processes()
    return [
        p for p, start in pids.items() if p in procs and procs[p][2] == start and procs[p][1] != "Z"
    ]


def _files(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_a_local_sweep_kills_its_workers(sig: signal.Signals, tmp_path: Path) -> None:
    """A real kill of a running local sweep: no worker survives it, and nothing is written
    into the sweep afterwards (so an immediate re-run cannot race with them)."""
    sweep = tmp_path / "sweep"
    cmd = [_twin_exe(), "-m", "seed=1,2,3,4", "sim.days=60", "output.figures=false"]
    cmd += ["output.progress=false", "hydra/launcher=local", "hydra.launcher.n_jobs=2"]
    cmd += [f"hydra.sweep.dir={sweep}"]
    main = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=_quiet_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: dict[int, int] = {}
    try:
        deadline = time.monotonic() + SWEEP_TIMEOUT_S
        # both workers have started a job (each a 60-day run: far from done)
        while len(list(sweep.glob("*/.hydra/overrides.yaml"))) < 2:
            assert main.poll() is None, main.communicate()[1]
            assert time.monotonic() < deadline, "the sweep's jobs did not start"
            time.sleep(0.1)
        workers = _descendants(main.pid)
        assert len(workers) >= 2, f"no worker processes below the twin process: {workers}"
        done_before = sorted(sweep.rglob("DONE"))

        main.send_signal(sig)
        _, err = main.communicate(timeout=SWEEP_TIMEOUT_S)
        if sig == signal.SIGTERM:
            lines = err.splitlines()
            assert main.returncode == 143, err
            assert len(lines) == 1 and lines[0].startswith("twin: error: stopped by SIGTERM")

        deadline = time.monotonic() + 120
        while _alive(workers):
            assert time.monotonic() < deadline, (
                f"workers still running after the sweep was killed: {_alive(workers)}"
            )
            time.sleep(0.2)
        after = _files(sweep)
        time.sleep(1.0)
        assert _files(sweep) == after, "files changed after every worker was gone"
        assert sorted(sweep.rglob("DONE")) == done_before, "a worker finished a run after the kill"
    finally:
        if main.poll() is None:
            main.kill()
            main.communicate()
        for pid in _alive(workers):
            os.kill(pid, signal.SIGKILL)
