"""Everything a run or a study writes goes through here: atomic files, exclusive all-or-nothing
run folders, the ``DONE`` protocol, and one run's files (:func:`write_run`).

A run folder (:class:`RunFolder`) is

* **exclusive**: a lock file (``.lock``, ``flock``) is held while a run uses the folder; a
  second run into the same folder stops at once with one line instead of mixing its files
  with the first one's;
* **all-or-nothing**: files are written into a staging folder inside it and moved into place
  only when everything is written; ``DONE`` is written last. Before the move, the files a
  previous run wrote there (listed in ``.twin-files``) are removed, so a re-run never leaves
  stale files beside the new ``DONE`` (``output.timeseries=false`` after a run with it);
* **marked**: a run that fails leaves ``FAILED`` (its one-line error) and no ``DONE``.

Only files twin wrote are ever removed (Hydra's ``.hydra/`` and job log stay, and so does
anything else a user put there).

Self-describing run folders (:func:`metadata`, :func:`scenario_yaml`, :func:`network_json`):

* ``metadata.json``: twin's version and, when twin runs from a git checkout, its commit (and
  whether the work tree had changes), Python and the main packages' versions, the command
  line, the feeder (with its size and the households), the scenario files, the weather source
  (for a CSV file its SHA-256), the seed, the window, the contract and tariff;
* ``scenario.yaml``: the scenario as simulated, every parameter with its ``value`` or
  ``range`` and its ``source``, ``extends`` resolved, the files it came from;
* ``network.json``: the feeder as ``pandapower.to_json`` writes it (``pandapower.from_json``
  reads it back), ``net.load["twin_household"]`` giving each load's household number (-1: not
  a household);
* ``summary.md`` (:func:`run_summary`): the header, the KPI table with each limit and whether
  the run keeps it (:func:`twin.writer.limits`), where and when a limit broke
  (:func:`violations`), the figures and the files; :func:`kpi_table` is the same table for
  the studies.
"""

from __future__ import annotations

import copy
import errno
import fcntl
import functools
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml
from omegaconf import OmegaConf

from twin.catalog import KPI_INFO, RUN_TABLE, SUMMARY_EXTRA, label, unit
from twin.errors import TwinError
from twin.scenario import Scenario, load_scenario, resolve_scenario_path

if TYPE_CHECKING:  # (the run's result types import the grid: pandapower, ~2 s that a failed
    # run's bookkeeping, RunFolder and mark_failed, does not need)
    from twin.result import RunResult, TidyTable

__all__ = [
    "DONE",
    "FAILED",
    "RunFolder",
    "RUN_FILES",
    "atomic_write",
    "check",
    "fmt",
    "git_commit",
    "is_complete",
    "kpi_table",
    "limit_text",
    "limits",
    "mark",
    "mark_failed",
    "metadata",
    "network_json",
    "run_summary",
    "scenario_yaml",
    "violations",
    "write_json",
    "write_run",
    "write_tidy_parquet",
]

DONE = "DONE"
FAILED = "FAILED"
LOCK = ".lock"
MANIFEST = ".twin-files"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then move ``tmp`` onto ``path`` (same folder, atomic rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return _jsonable(value.item())
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(_jsonable(data), indent=2) + "\n"))


def is_complete(run_dir: Path) -> bool:
    return (Path(run_dir) / DONE).is_file()


def mark_failed(run_dir: Path, message: str) -> bool:
    """Leave ``FAILED`` (the one-line error) in a run folder, and no ``DONE``.

    Best effort: it runs while another error is being reported, so a folder that cannot be
    written (read-only, full) is left as it is; returns whether ``FAILED`` was written."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return False
    try:
        (run_dir / DONE).unlink(missing_ok=True)
        atomic_write(run_dir / FAILED, lambda p: p.write_text(message.rstrip() + "\n"))
    except OSError:
        return False
    return True


class RunFolder:
    """An exclusive, all-or-nothing run folder; see the module docstring.

    Use as a context manager; write into :attr:`stage`; on a clean exit the staged files
    replace the previous run's and ``DONE`` is written last::

        with RunFolder(out_dir) as folder:
            write_json(folder.stage / "kpis.json", kpis)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.stage = self.path / f".staging-{os.getpid()}"
        self._lock: Any = None

    @staticmethod
    def _disk_error(path: Path, err: OSError) -> TwinError:
        """One line for an OSError of the file system while writing into ``path``."""
        reason = os.strerror(err.errno) if err.errno else str(err)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            fix = "free some space, or choose another paths.results_dir"
        else:
            fix = "choose a writable paths.results_dir (or hydra.run.dir / hydra.sweep.dir)"
        return TwinError(f"cannot write into {path}: {reason}: {fix}")

    def __enter__(self) -> RunFolder:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / LOCK, "a")  # noqa: SIM115 - held until __exit__
        except OSError as err:
            raise self._disk_error(self.path, err) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._release()
            raise TwinError(
                f"another twin run is writing into {self.path}: wait for it to finish, or "
                "give this run its own folder (hydra.run.dir=...)"
            ) from None
        try:
            (self.path / DONE).unlink(missing_ok=True)
            (self.path / FAILED).unlink(missing_ok=True)
            # staging folders of runs that were killed here (the lock says none is running)
            for old in self.path.glob(".staging-*"):
                shutil.rmtree(old, ignore_errors=True)
            self.stage.mkdir()
        except OSError as err:
            self._release()
            raise self._disk_error(self.path, err) from None
        return self

    def _release(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def _commit(self) -> None:
        old = self.path / MANIFEST
        previous = old.read_text().split("\n") if old.is_file() else []
        for name in filter(None, previous):
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        names = sorted(p.name for p in self.stage.iterdir())
        for name in names:
            target = self.path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(self.stage / name, target)
        atomic_write(old, lambda p: p.write_text("\n".join(names) + "\n"))
        (self.path / DONE).write_text("")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self._commit()
        except OSError as err:
            raise self._disk_error(self.path, err) from None
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
            self._release()
        if isinstance(exc, OSError) and exc.errno is not None:
            # a write inside the block failed (read-only, full, quota): one line, no DONE
            raise self._disk_error(self.path, exc) from None

    @staticmethod
    def discard_if_empty(path: str | Path, hydra_files: tuple[str, ...] = (".hydra",)) -> bool:
        """Remove ``path`` if it holds nothing but ``hydra_files`` (what Hydra writes into
        every job folder before twin runs) and twin's own lock and markers, i.e. a failed
        call wrote nothing there. A folder another run holds the lock of is left alone.
        Returns whether the folder was removed."""
        path = Path(path)
        removable = {*hydra_files, LOCK, FAILED, DONE}
        try:
            names = {p.name for p in path.iterdir()}
        except OSError:
            return False
        if not all(n in removable or n.startswith(".staging-") for n in names):
            return False
        lock = None
        try:
            if (path / LOCK).exists():
                lock = open(path / LOCK, "a")  # noqa: SIM115 - closed below
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(path)
        except OSError:
            return False
        finally:
            if lock is not None:
                lock.close()
        return True


# ----------------------------------------------------------------------------------------------
# provenance: metadata.json, scenario.yaml, network.json
# ----------------------------------------------------------------------------------------------
PACKAGES = ("pandapower", "power-grid-model", "simbench", "numpy", "pandas", "mesa", "highspy")


@functools.cache
def git_commit() -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout twin runs from, ``None`` for an installed
    package (or without git)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def _version(package: str) -> str | None:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        return None


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def scenario_files(name_or_path: str) -> list[Path]:
    """The scenario file and the files it ``extends``, the given one first."""
    files: list[Path] = []
    path: Path | None = resolve_scenario_path(name_or_path)
    while path is not None and path not in files:
        files.append(path)
        data = yaml.safe_load(path.read_text()) or {}
        parent = data.get("extends") if isinstance(data, dict) else None
        path = resolve_scenario_path(str(parent)) if parent else None
    return files


def scenario_of(result: Any) -> Scenario:
    """The run's scenario: the one the pipeline passed, else ``cfg.scenario.name`` read
    again."""
    return result.scenario or load_scenario(str(result.cfg.scenario.name))


def scenario_yaml(result: Any) -> str:
    """The scenario as simulated, ``extends`` resolved, each parameter with its source."""
    sc = scenario_of(result)
    files = scenario_files(str(sc.path))
    data: dict[str, Any] = {
        "name": sc.name,
        "year": sc.year,
        "description": sc.description,
        "files": [str(f) for f in files],
    }
    for section, params in sc.params.items():
        data[section] = {
            key: (
                {"value": p.low, "source": p.source}
                if p.low == p.high
                else {"range": [p.low, p.high], "source": p.source}
            )
            for key, p in params.items()
        }
    head = (
        f"# The scenario as this run simulated it: {files[0].name}"
        + (
            f" with `extends` resolved ({', '.join(f.name for f in files[1:])})"
            if files[1:]
            else ""
        )
        + ".\n# Every parameter: value (all households) or range (uniform per household), and its"
        " source.\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def network_json(result: Any, path: Path) -> None:
    """Write the run's feeder as pandapower JSON, households marked (module docstring)."""
    import pandapower as pp

    net = copy.deepcopy(result.feeder.net)
    household = np.full(len(net.load), -1, dtype=np.int64)
    household[net.load.index.get_indexer(result.load_index)] = np.arange(len(result.load_index))
    net.load["twin_household"] = household
    pp.to_json(net, str(path))


def metadata(result: Any, files: dict[str, str]) -> dict[str, Any]:
    """``metadata.json`` of a run (module docstring); ``files``: name -> what it holds."""
    cfg, k, net = result.cfg, result.kpis, result.feeder.net
    weather: dict[str, Any] = {"source": str(cfg.weather.source)}
    if cfg.weather.source == "try2010":
        weather.update(
            region=int(cfg.weather.region),
            name=f"TRY2010 region {int(cfg.weather.region)}",
            origin="DWD test reference year TRY2010, as shipped in the demandlib package "
            f"{_version('demandlib')}",
        )
    else:
        csv = Path(str(cfg.weather.csv))
        weather.update(name=csv.name, csv=str(csv.resolve()), csv_sha256=_sha256(csv))
    sc = scenario_of(result)
    times = result.window.times
    return {
        # the package is imported before any of its modules
        "twin_version": sys.modules["twin"].__version__,
        "git": git_commit(),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else [],
        "python": platform.python_version(),
        "packages": {p: _version(p) for p in PACKAGES},
        "seed": int(cfg.seed),
        "grid": {
            "name": k["grid"],
            "spec": str(cfg.grid.name),
            "buses": len(net.bus),
            "lines": len(net.line),
            "transformers": len(net.trafo),
            "loads": len(net.load),
            "households": int(len(result.load_index)),
            "household_loads": "network.json: net.load.twin_household >= 0",
        },
        "scenario": {
            "name": sc.name,
            "files": [{"path": str(f), "sha256": _sha256(f)} for f in scenario_files(str(sc.path))],
        },
        "weather": weather,
        "window": {
            "start": str(times[0]),
            "end": str(times[-1]),
            "days": int(result.window.days),
            "warmup_days": int(result.window.warmup_days),
            "dt_h": float(k.get("dt_h", 0.25)),
            "steps": int(len(times)),
            "clock": "UTC+01:00 all year (no daylight saving), 2025 calendar",
        },
        "contract": k["contract"],
        "tariff": k.get("tariff"),
        "output": {
            "elements": str(cfg.output.get("elements", "all")),
            "worst_n": int(cfg.output.get("worst_n", 0)),
        },
        "files": files,
    }


# ----------------------------------------------------------------------------------------------
# summary.md
# ----------------------------------------------------------------------------------------------
@functools.cache
def limits() -> dict[str, tuple[str, float]]:
    """KPI key -> (``"<="`` or ``">="``, limit): what a planner checks a run against.

    Transformer and cables at most 100 % of their rating (:mod:`twin.grid.ratings`), no hour
    above it; every LV voltage within the EN 50160 / Netcode band that must always hold (Un
    +10 % / -15 %, :data:`twin.grid.compliance.BAND_ALWAYS_PU`) and every bus-week compliant
    (95 % of the week within ±10 %); the service levels met on every household-day.
    """
    from twin.grid.compliance import BAND_ALWAYS_PU, VUF_LIMIT_PCT

    return {
        "trafo_peak_loading_pct": ("<=", 100.0),
        "trafo_hours_over_100pct_h": ("<=", 0.0),
        "line_max_loading_pct": ("<=", 100.0),
        "lines_n_overloaded": ("<=", 0.0),
        "technical_risk_events": ("<=", 0.0),
        "technical_risk_kwh": ("<=", 0.0),
        "vm_min_pu": (">=", BAND_ALWAYS_PU[0]),
        "vm_max_pu": ("<=", BAND_ALWAYS_PU[1]),
        "voltage_bus_weeks_compliant_share": (">=", 1.0),
        # unbalanced runs: the same limits on the worst phase, and the Netcode / EN 50160
        # voltage unbalance (negative sequence <= 2 % for 95 % of a week's values)
        "trafo_max_phase_loading_pct": ("<=", 100.0),
        "phase_line_max_loading_pct": ("<=", 100.0),
        "phase_vm_min_pu": (">=", BAND_ALWAYS_PU[0]),
        "phase_vm_max_pu": ("<=", BAND_ALWAYS_PU[1]),
        "phase_voltage_buses_compliant_share": (">=", 1.0),
        "vuf_p95_max_pct": ("<=", VUF_LIMIT_PCT),
        "unbalance_bus_weeks_compliant_share": (">=", 1.0),
        "comfort_days_met_share": (">=", 1.0),
        "ev_days_met_share": (">=", 1.0),
        "dhw_days_met_share": (">=", 1.0),
    }


#: Slack in the comparison, so that float rounding never breaks a limit.
_TOL = 1e-9


def check(key: str, value: object) -> bool | None:
    """Whether ``value`` of KPI ``key`` keeps its limit (:func:`limits`); ``None``: no limit
    (or no number)."""
    rule = limits().get(key)
    if rule is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    op, lim = rule
    if value != value:  # NaN
        return None
    return value <= lim + _TOL if op == "<=" else value >= lim - _TOL


def limit_text(key: str) -> str:
    """The limit as shown in the tables (``≤ 100``, ``≥ 0.85``, ``= 1``, ``= 0``)."""
    rule = limits().get(key)
    if rule is None:
        return ""
    op, lim = rule
    if (op == ">=" and lim == 1.0 and unit(key) == "share") or (op == "<=" and lim == 0.0):
        return f"= {lim:g}"
    return f"{'≤' if op == '<=' else '≥'} {lim:g}"


def mark(key: str, value: object) -> str:
    """``ok``, ``✗ over`` / ``✗ below`` (the limit broken), or ``''`` without a limit."""
    ok = check(key, value)
    if ok is None:
        return ""
    if ok:
        return "ok"
    return "✗ over" if limits()[key][0] == "<=" else "✗ below"


def fmt(value: Any) -> str:
    """A KPI value as the tables show it."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return str(value)
    v = float(value)
    if v != v:
        return "–"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"


def kpi_table(kpis: dict[str, Any], keys: Iterable[str] = RUN_TABLE + SUMMARY_EXTRA) -> str:
    """Markdown: KPI, value, unit, limit, ``ok`` / ``✗ over`` / ``✗ below``."""
    lines = ["| KPI | value | unit | limit | |", "|---|---:|---|---|---|"]
    for key in keys:
        if key in kpis and key in KPI_INFO:
            verdict = mark(key, kpis[key])
            cell = f"**{verdict}**" if verdict.startswith("✗") else verdict
            lines.append(
                f"| {label(key)} | {fmt(kpis[key])} | {unit(key)} | {limit_text(key)} | {cell} |"
            )
    return "\n".join(lines)


def _when(t: Any) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")


def violations(result: Any) -> list[dict[str, Any]]:
    """Where and when the run broke a limit: one row per element (the station, a cable, an LV
    bus) with ``limit``, ``element``, ``hours``, ``worst`` (value and unit), ``when`` (the
    worst step) and ``first`` (the first step above the limit); the service levels last."""
    from twin.grid.compliance import BAND_95_PU, BAND_ALWAYS_PU, station_of, voltage_compliance

    g, net, times = result.grid, result.feeder.net, result.window.times
    dt = 0.25
    rows: list[dict[str, Any]] = []
    st = station_of(g, net)
    over = st.loading_pct > 100.0
    if over.any():
        k = int(np.argmax(st.loading_pct))
        rows.append(
            {
                "limit": "transformer ≤ 100 %",
                "element": f"station ({len(st.units)} unit(s), {st.rating_kva:,.0f} kVA)",
                "hours": float(over.sum() * dt),
                "worst": f"{st.loading_pct[k]:.1f} %",
                "when": _when(times[k]),
                "first": _when(times[int(np.argmax(over))]),
            }
        )
    ll = g.line_loading_pct
    names = result.element_names("line")
    for col in np.argsort(-ll.max(axis=0)) if ll.shape[1] else []:
        o = ll[:, col] > 100.0
        if not o.any():
            break
        k = int(np.argmax(ll[:, col]))
        rows.append(
            {
                "limit": "cable ≤ 100 %",
                "element": f"{names[col]} (line {g.line_index[col]})",
                "hours": float(o.sum() * dt),
                "worst": f"{ll[k, col]:.1f} %",
                "when": _when(times[k]),
                "first": _when(times[int(np.argmax(o))]),
            }
        )
    lv = np.flatnonzero(result.lv_buses())
    if len(lv):
        vm = g.vm_pu[:, lv]
        comp = voltage_compliance(vm, dt)
        bad_weeks = (~comp["compliant"]).sum(axis=0)
        outside = (vm < BAND_95_PU[0]) | (vm > BAND_95_PU[1])
        bnames = np.asarray(result.element_names("bus"), dtype=object)[lv]
        worst_dev = np.abs(vm - 1.0).max(axis=0)
        for j in np.argsort(-worst_dev):
            if not outside[:, j].any() and not bad_weeks[j]:
                continue
            k = int(np.argmax(np.abs(vm[:, j] - 1.0)))
            never = (vm[:, j] < BAND_ALWAYS_PU[0]) | (vm[:, j] > BAND_ALWAYS_PU[1])
            rows.append(
                {
                    "limit": "voltage ±10 % (95 % of a week), +10/−15 % always",
                    "element": f"{bnames[j]} (bus {g.bus_index[lv[j]]})",
                    "hours": float(outside[:, j].sum() * dt),
                    "worst": f"{vm[k, j]:.3f} p.u."
                    + (f"; {int(never.sum())} step(s) beyond +10/−15 %" if never.any() else "")
                    + (f"; {int(bad_weeks[j])} week(s) non-compliant" if bad_weeks[j] else ""),
                    "when": _when(times[k]),
                    "first": _when(times[int(np.argmax(outside[:, j]))])
                    if outside[:, j].any()
                    else "",
                }
            )
    kp = result.kpis
    for key, what in (("comfort_days_met_share", "comfort"), ("ev_days_met_share", "EV range")):
        if mark(key, kp.get(key)).startswith("✗"):
            rows.append(
                {
                    "limit": f"service level: {what} on every household-day",
                    "element": "households",
                    "hours": float("nan"),
                    "worst": f"{kp[key]:.4f} of household-days met",
                    "when": "",
                    "first": "",
                }
            )
    return rows


def _violation_table(rows: Sequence[dict[str, Any]], most: int = 20) -> str:
    if not rows:
        return "No limit broken: transformer and cables within their ratings, every LV bus within the EN 50160 band, every service level met."
    lines = [
        "| limit | element | hours above | worst | at | first |",
        "|---|---|---:|---|---|---|",
    ]
    for r in rows[:most]:
        hours = "" if r["hours"] != r["hours"] else f"{r['hours']:g}"
        lines.append(
            f"| {r['limit']} | {r['element']} | {hours} | {r['worst']} | {r['when']} | {r['first']} |"
        )
    if len(rows) > most:
        lines.append(f"\n… and {len(rows) - most} more element(s).")
    return "\n".join(lines)


def run_summary(
    result: Any, figures: Sequence[Any], files: dict[str, str], meta: dict[str, Any]
) -> str:
    """``summary.md`` of one run (module docstring). ``figures``: :class:`twin.plots.Figure`
    objects written (``figures/<name>.png``); ``files``: name -> description; ``meta``: the
    run's ``metadata.json``."""
    k = result.kpis
    git = meta.get("git")
    version = f"twin {meta['twin_version']}" + (
        f" (commit {git['commit'][:12]}{', with local changes' if git['dirty'] else ''})"
        if git
        else ""
    )
    broken = [label(key) for key in RUN_TABLE if key in k and mark(key, k[key]).startswith("✗")]
    verdict = (
        f"**Limits broken: {', '.join(dict.fromkeys(broken))}.**"
        if broken
        else "**All limits kept.**"
    )
    lines = [
        f"# {k['grid']} · {k['scenario']} · contract {k['contract']}",
        "",
        f"{result.period()} · {k.get('households')} households · seed {k.get('seed')} · "
        f"weather {meta['weather'].get('name')} · tariff {k.get('tariff')} · {version}",
        "",
        verdict,
        "",
        "## KPIs against the limits",
        "",
        "Transformer and cables at most 100 % of their rating; every LV bus voltage within "
        "Un +10 %/−15 % at all times and, per bus and week, 95 % of the 15-min values within "
        "±10 % (EN 50160 / Netcode; the MV bus is not counted); service levels met on every "
        "household-day. Full list: `kpis.json`.",
        "",
        kpi_table(k),
        "",
        "## Where and when limits broke",
        "",
        _violation_table(violations(result)),
        "",
    ]
    if figures:
        lines += ["## Figures", ""]
        for f in figures:
            lines += [f"**{f.caption}**", "", f"![{f.name}](figures/{f.path.name})", ""]
    lines += ["## Files", "", "| file | what it holds |", "|---|---|"]
    lines += [f"| `{name}` | {what} |" for name, what in files.items()]
    lines += ["", "Every column: `results/README.md` in the twin repository.", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# one run
# ----------------------------------------------------------------------------------------------
#: Every file :func:`write_run` may write, with what it holds (``metadata.json`` and
#: ``summary.md`` list the ones a run wrote; ``results/README.md`` documents every column).
RUN_FILES: dict[str, str] = {
    "summary.md": "this run in one page: header, KPIs against the limits, where and when limits broke, figures",
    "metadata.json": "twin version and git commit, packages, command line, feeder, scenario files, weather source, seed, window",
    "config.yaml": "the fully resolved configuration (Hydra keeps the overrides in .hydra/)",
    "scenario.yaml": "the scenario as simulated: every parameter with its value or range and source, extends resolved",
    "network.json": "the feeder as pandapower JSON (pandapower.from_json); net.load.twin_household: the household of each load (-1: none)",
    "kpis.json": "every KPI of the run (names carry their units)",
    "households.parquet": "per (time, household): device powers, heat, indoor temperature, states of charge, contract series",
    "feeder.parquet": "per time step: feeder totals, transformer station P/Q (MV side)/S/loading, LV voltage extremes and their buses, the worst cable, losses",
    "buses.parquet": "per (time, bus): voltage magnitude (all buses, or the worst_n LV buses)",
    "lines.parquet": "per (time, line): loading, current, active power (all lines, or the worst_n)",
    "transformers.parquet": "per (time, transformer): active and apparent power, loading",
    "loads.parquet": "per (time, load): the active and reactive power the power flow saw (with network.json: a step back in pandapower)",
    "grid_phases.parquet": "unbalanced runs, per (time, element, phase): bus voltages, line and transformer phase currents, loading and neutral currents",
    "households_summary.csv": "per household: devices, parameters, its own peak, energies, comfort and bill",
    "figures/": "PNG figures (listed in summary.md)",
    "timings.json": "seconds per stage of the run, per file written (the parquet files on a second thread: their seconds overlap the others), and of the whole write",
}


#: Rows per parquet row group of the tidy files: pyarrow's default, the row groups
#: ``DataFrame.to_parquet`` writes, so that a file streamed range by range is the file the
#: whole frame made, byte for byte.
ROW_GROUP_ROWS = 1024 * 1024


def write_tidy_parquet(table: TidyTable, path: Path, rows_per_group: int = ROW_GROUP_ROWS) -> None:
    """Write a :class:`~twin.result.TidyTable` as ``DataFrame.to_parquet(path, index=False)``
    writes ``table.frame()`` (same schema, pandas metadata, compression and row groups), one
    row group at a time: the whole frame and its copies are never in memory (a year of the
    default feeder's households peaked at 1 GB above the run, a row group takes ~60 MB)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    head = pd.DataFrame(table.rows(0, table.n))  # one step: the columns' types
    schema = pa.Schema.from_pandas(head, preserve_index=False)
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        for start in range(0, table.n_rows, rows_per_group) or [0]:
            cols = table.rows(start, start + rows_per_group)
            # as Table.from_pandas converts (NaN -> null, categoricals -> dictionaries)
            arrays = [pa.array(cols[f.name], type=f.type, from_pandas=True) for f in schema]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            del cols, arrays


def _element_files(result: RunResult) -> dict[str, Callable[[], TidyTable]]:
    """The per-element tables ``output.elements`` asks for (``all``, ``worst``, ``none``)."""
    out = result.cfg.output
    mode = str(out.get("elements", "all"))
    if mode == "none":
        return {}
    n = int(out.get("worst_n", 10))
    buses = result.worst_buses(n) if mode == "worst" else None
    lines = result.worst_lines(n) if mode == "worst" else None
    return {
        "buses.parquet": lambda: result.bus_table(buses),
        "lines.parquet": lambda: result.line_table(lines),
        "transformers.parquet": result.trafo_table,
        "loads.parquet": result.load_table,
    }


def write_run(result: RunResult, out_dir: str | Path) -> Path:
    """Write one run into ``out_dir`` (an exclusive, all-or-nothing :class:`RunFolder`), the
    files of :data:`RUN_FILES` (time series with ``output.timeseries``, per-element results
    as ``output.elements`` says, figures with ``output.figures``), ``DONE`` last. See
    ``results/README.md`` for every file and column."""
    import time

    t_start = time.perf_counter()
    out_dir = Path(out_dir)
    timings = dict(result.timings_s)
    written: list[str] = []

    def timed(name: str, write: Callable[[Path], None]) -> None:
        t0 = time.perf_counter()
        write(stage / name)
        timings[f"write {name}"] = time.perf_counter() - t0
        written.append(name)

    def tables() -> list[tuple[str, float]]:
        """The parquet files (time series, elements): ``(name, seconds)`` in order."""
        files: list[tuple[str, Callable[[Path], None]]] = [
            ("households.parquet", lambda p: write_tidy_parquet(result.households_table(), p)),
            ("feeder.parquet", lambda p: result.feeder_frame().to_parquet(p, index=False)),
        ]
        if result.grid_phases is not None:  # built for the write only, then let go
            files.append(
                ("grid_phases.parquet", lambda p: result.phases_frame().to_parquet(p, index=False))
            )
        for name, table in _element_files(result).items():
            files.append((name, lambda p, table=table: write_tidy_parquet(table(), p)))
        out = []
        for name, write in files:
            t0 = time.perf_counter()
            write(stage / name)
            out.append((name, time.perf_counter() - t0))
        return out

    with RunFolder(out_dir) as folder, ThreadPoolExecutor(1, "twin-write") as pool:
        stage = folder.stage
        cfg_yaml = OmegaConf.to_yaml(result.cfg, resolve=True)
        timed("config.yaml", lambda p: p.write_text(cfg_yaml))
        timed("scenario.yaml", lambda p: p.write_text(scenario_yaml(result)))
        timed("network.json", lambda p: network_json(result, p))
        # the parquet files on a second thread (pyarrow writes without the GIL) while the
        # summary and the figures are made; the folder is committed only after both (a
        # failure in either propagates, and the staging folder goes)
        parquet = pool.submit(tables) if result.cfg.output.timeseries else None
        # full precision: every service KPI is recomputed from this file (tests)
        t0 = time.perf_counter()
        result.households_summary().to_csv(stage / "households_summary.csv", index=False)
        summary_s = time.perf_counter() - t0
        figures: list[Any] = []
        figures_s = None
        if result.cfg.output.figures:
            from twin.plots import write_figures

            t0 = time.perf_counter()
            figures = write_figures(result, stage / "figures")
            figures_s = time.perf_counter() - t0
        for name, seconds in parquet.result() if parquet is not None else []:
            timings[f"write {name}"] = seconds
            written.append(name)
        timings["write households_summary.csv"] = summary_s
        written.append("households_summary.csv")
        if figures_s is not None:
            timings["write figures/"] = figures_s
            written.append("figures/")
        timed("kpis.json", lambda p: write_json(p, result.kpis))
        files = {
            name: RUN_FILES[name]
            for name in [*written, "summary.md", "metadata.json", "timings.json"]
        }
        meta = metadata(result, files)
        write_json(stage / "metadata.json", meta)
        (stage / "summary.md").write_text(run_summary(result, figures, files, meta))
        # the files' own seconds overlap (the parquet files are written on a second thread)
        timings["write (all files)"] = time.perf_counter() - t_start
        write_json(stage / "timings.json", timings)
    return out_dir
