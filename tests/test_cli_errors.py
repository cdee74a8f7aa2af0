"""Every failed ``twin`` call ends in exactly one stderr line ``twin: error: <what>: <fix>``, a
defined exit status (2 bad input, 130 Ctrl-C, 143 SIGTERM), no traceback unless asked for, no
``DONE`` and, for a single run that wrote nothing, no run folder at all.

The probes run the real console script in a temporary folder; the read-only and full results
folders are real mounts in a private mount namespace (``unshare -m``, needs root; skipped
otherwise).
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from twin.errors import TwinError
from twin.scenario import SCENARIO_DIR, load_scenario
from twin.writer import DONE, FAILED, RunFolder, mark_failed

HOSTILE_GRID = Path(__file__).parent / "data" / "hostile" / "grid"
QUIET = ("output.progress=false", "output.figures=false")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "TWIN_DEBUG")}
    return {**env, "MPLBACKEND": "Agg", **extra}


def _twin(twin_exe, cwd: Path, *args: str, env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [twin_exe, *args, f"paths.results_dir={cwd / 'results'}", *QUIET],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env or _env(),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def _run_folders(results: Path) -> list[Path]:
    runs = results / "runs"
    return sorted(p for p in runs.iterdir()) if runs.is_dir() else []


def assert_one_line(proc, needle: str, results: Path, status: int = 2) -> str:
    """Exit ``status``, exactly one stderr line (the error, containing ``needle``), no
    traceback, nothing marked complete and no run folder left behind."""
    lines = proc.stderr.splitlines()
    assert proc.returncode == status, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("twin: error: "), lines[0]
    assert needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not list(results.rglob(DONE)) if results.exists() else True
    assert _run_folders(results) == [], f"a failed call left {_run_folders(results)}"
    return lines[0]


# --------------------------------------------------------------------------- the probes


def _scenario_with(tmp_path: Path, old: str, new: str) -> str:
    text = (SCENARIO_DIR / "nl-2030.yaml").read_text()
    assert old in text
    path = tmp_path / "typo.yaml"
    path.write_text(text.replace(old, new, 1))
    return str(path)


PROBES = [
    # Hydra's composition errors, shortened, with the fix
    (["contract=perfomance"], "did you mean contract=performance?"),
    (["hydra/launcher=nope"], "the options of hydra/launcher are basic, joblib, local"),
    (["foo=1"], "config key 'foo' is not a twin key: the keys are seed, run_name,"),
    (["sim.dayz=3"], "sim.dayz is not a key of sim: did you mean sim.days?"),
    (
        ["contract.horizon_h=3"],
        "it belongs to contract=capacity, capacity_flanders, dynamic, performance, tou, tou_acm",
    ),
    (["sim.days=abc"], "sim.days=abc is invalid: give a whole number from 1 to 365"),
    (["seed=1.5"], "seed=1.5 is invalid: give a whole number from 0 to 4294967295"),
    (["solver.threads=abc"], "solver.threads=abc is invalid: give a whole number from 1 to 256"),
    (["output.figures=maybe"], "output.figures=maybe is invalid: give true or false"),
    (["+seed=3"], "write seed=... (without the +)"),
    (["seed=1,2"], "add -m to run one job per value"),
    # the override grammar and the flags, read with Hydra's own parsers
    (["sim.days=[1,"], "cannot read the override 'sim.days=[1,'"),
    (["=3"], "the override '=3' has no key"),
    (["seed"], "cannot read the override 'seed'"),
    (["-seed=3"], "unrecognized arguments: -seed=3"),
    # values: schema bounds and interpolations
    (["solver.time_limit_s=-1"], "solver.time_limit_s=-1"),
    (["contract=performance", "contract.limit_kva=-5"], "contract.limit_kva=-5"),
    (["sim.days=0"], "sim.days=0 is out of range"),
    (["seed=${oops}"], "seed: Interpolation key 'oops' not found"),
    (["run_name=${oops}"], "Interpolation key 'oops' not found"),
]


@pytest.mark.parametrize(("args", "needle"), PROBES, ids=[" ".join(a) for a, _ in PROBES])
def test_a_bad_call_ends_in_one_line_and_exit_2(args, needle, tmp_path, twin_exe):
    proc = _twin(twin_exe, tmp_path, "sim=day", *args)
    assert_one_line(proc, needle, tmp_path / "results")


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        (
            "adoption:",
            "adoptoin:",
            "unknown section 'adoptoin': did you mean adoption? the sections are adoption,",
        ),
        (
            "  ev:\n    value: 0.20",
            "  evv:\n    value: 0.20",
            "unknown field adoption.evv: did you",
        ),
        ("description:", "descriptoin:", "did you mean description?"),
    ],
    ids=["section", "field", "top-level key"],
)
def test_a_misspelt_scenario_name_is_an_error_not_the_parents_value(
    old, new, needle, tmp_path, twin_exe
):
    path = _scenario_with(tmp_path, old, new)
    with pytest.raises(TwinError, match="typo.yaml") as err:
        load_scenario(path)
    assert needle in str(err.value) and "\n" not in str(err.value)
    proc = _twin(twin_exe, tmp_path, "sim=day", f"scenario.name={path}")
    assert_one_line(proc, needle, tmp_path / "results")


def test_a_meshed_feeder_under_the_performance_contract_is_refused_before_simulating(
    tmp_path, twin_exe
):
    grid = HOSTILE_GRID / "meshed.json"
    proc = _twin(twin_exe, tmp_path, "sim=day", "contract=performance", f"grid.name={grid}")
    assert_one_line(proc, "contract=performance needs a radial feeder", tmp_path / "results")


@pytest.mark.parametrize(
    "ask", [{"TWIN_DEBUG": "1"}, {"HYDRA_FULL_ERROR": "1"}, "hydra.verbose=true"], ids=str
)
@pytest.mark.parametrize("args", [["contract=perfomance"], ["sim.days=0"]], ids=str)
def test_the_traceback_is_shown_when_asked_for(ask, args, tmp_path, twin_exe):
    env = _env(**ask) if isinstance(ask, dict) else _env()
    extra = [ask] if isinstance(ask, str) else []
    proc = _twin(twin_exe, tmp_path, "sim=day", *args, *extra, env=env)
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("twin: error: ")


def test_a_failed_rerun_into_a_complete_folder_marks_it_failed(tmp_path, twin_exe):
    out = tmp_path / "run"
    ok = _twin(twin_exe, tmp_path, "sim=day", f"hydra.run.dir={out}")
    assert ok.returncode == 0 and (out / DONE).is_file(), ok.stderr
    bad = _twin(twin_exe, tmp_path, "sim=day", "sim.days=0", f"hydra.run.dir={out}")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr
    # the folder holds an earlier run's files: kept, but no longer looks complete
    assert not (out / DONE).exists()
    assert "sim.days=0" in (out / FAILED).read_text()
    assert "sim.days=0" in (out / "twin.log").read_text()


# --------------------------------------------------------------------------- interrupts


def _default_sigint() -> None:
    """In the child before it starts: SIGINT at its default. A job a shell put in the
    background without job control (``.ci/run ... &`` in a script) inherits SIGINT ignored,
    and Python then keeps ignoring it (no KeyboardInterrupt): what a user's Ctrl-C is not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(twin_exe, cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [twin_exe, *args, f"paths.results_dir={cwd / 'results'}", *QUIET],
        cwd=cwd,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def _wait_for(predicate, what: str, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("sig", "status", "needle"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped by SIGTERM")],
    ids=["SIGINT", "SIGTERM"],
)
def test_an_interrupted_run_ends_in_one_line_and_leaves_no_folder(
    sig, status, needle, tmp_path, twin_exe
):
    # a fresh feeder cache: its files appear once the run is simulating (past the imports and
    # the inputs), and 30 days take long enough to be caught running
    cache = tmp_path / "cache"
    proc = _start(twin_exe, tmp_path, "sim.days=30", f"paths.cache_dir={cache}")
    results = tmp_path / "results"
    _wait_for(lambda: cache.is_dir() and any(cache.rglob("*.*")), "the feeder cache")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=300)
    assert_one_line(
        subprocess.CompletedProcess(proc.args, proc.returncode, out, err), needle, results, status
    )


# --------------------------------------------------------------------------- read-only, full


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


needs_mounts = pytest.mark.skipif(not _can_mount(), reason="needs root and unshare -m")


def _twin_on_mount(twin_exe, tmp_path: Path, mount: str, *args: str):
    """Run twin with its results folder mounted as ``mount`` says; return the process and what
    the results folder held when twin ended (the mount is gone with the namespace)."""
    results = tmp_path / "results"
    results.mkdir()
    tree = tmp_path / "tree.txt"
    script = f'{mount}\n"$@" && rc=0 || rc=$?\nfind {results} -mindepth 1 > {tree}\nexit $rc'
    cmd = ["unshare", "-m", "sh", "-c", script, "sh", twin_exe, *args]
    cmd += [f"paths.results_dir={results}", *QUIET]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=300
    )
    held = [Path(line).relative_to(results) for line in tree.read_text().splitlines()]
    return proc, results, held


@needs_mounts
def test_a_read_only_results_folder_is_one_line(tmp_path, twin_exe):
    d = tmp_path / "results"
    mount = f"mount --bind {d} {d}; mount -o remount,bind,ro {d}"
    proc, results, held = _twin_on_mount(twin_exe, tmp_path, mount, "sim=day")
    line = assert_one_line(proc, "Read-only file system", results)
    assert "choose a writable paths.results_dir" in line
    assert held == []


@needs_mounts
@pytest.mark.parametrize(
    "size", ["96k", "8k"], ids=["full while twin writes", "full while Hydra writes"]
)
def test_a_full_results_folder_is_one_line_and_leaves_no_folder(size, tmp_path, twin_exe):
    d = tmp_path / "results"
    mount = f"mount -t tmpfs -o size={size} tmpfs {d}"
    proc, results, held = _twin_on_mount(twin_exe, tmp_path, mount, "sim=day")
    line = assert_one_line(proc, "No space left on device", results)
    assert "free some space" in line
    # what the full folder held when twin ended: Hydra's runs/ and no run folder in it
    assert held == [Path("runs")], held


# --------------------------------------------------------------------------- RunFolder


def test_a_disk_error_inside_a_run_folder_is_one_line_and_no_done(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TwinError, match="No space left on device: free some space") as err:
        with RunFolder(out) as folder:
            (folder.stage / "kpis.json").write_text("{}")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert "\n" not in str(err.value)
    assert not (out / DONE).exists() and not list(out.glob(".staging-*"))
    assert not (out / "kpis.json").exists()


def test_a_killed_runs_staging_folder_is_removed_by_the_next_run(tmp_path):
    out = tmp_path / "run"
    (out / ".staging-99999999").mkdir(parents=True)
    (out / ".staging-99999999" / "kpis.json").write_text("half")
    with RunFolder(out) as folder:
        (folder.stage / "kpis.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == [".lock", ".twin-files", "DONE", "kpis.json"]


def test_mark_failed_on_a_folder_it_cannot_write_does_not_raise(tmp_path, monkeypatch):
    import twin.writer

    def refuse(path, write):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(twin.writer, "atomic_write", refuse)
    assert mark_failed(tmp_path, "twin: error: x") is False


def test_discard_if_empty_removes_only_a_folder_with_hydras_files(tmp_path):
    hydra_only = tmp_path / "a"
    (hydra_only / ".hydra").mkdir(parents=True)
    (hydra_only / "twin.log").write_text("")
    (hydra_only / FAILED).write_text("twin: error: x\n")
    assert RunFolder.discard_if_empty(hydra_only, (".hydra", "twin.log"))
    assert not hydra_only.exists()

    with_results = tmp_path / "b"
    (with_results / ".hydra").mkdir(parents=True)
    (with_results / "kpis.json").write_text("{}")
    assert not RunFolder.discard_if_empty(with_results, (".hydra", "twin.log"))
    assert (with_results / "kpis.json").exists()

    held = tmp_path / "c"
    (held / ".hydra").mkdir(parents=True)
    with open(held / ".lock", "a") as lock:  # another run is using the folder
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert not RunFolder.discard_if_empty(held, (".hydra", "twin.log"))
    assert held.exists()
