"""What makes a run folder self-describing: where the code, the inputs and the seed came from.

* :func:`metadata`: ``metadata.json``: twin's version and, when twin runs from a git checkout,
  its commit (and whether the work tree had changes), Python and the main packages' versions,
  the command line, the feeder (with its size and the households), the scenario files, the
  weather source (for a CSV file its SHA-256), the seed, the window, the contract and tariff;
* :func:`scenario_yaml`: ``scenario.yaml``: the scenario as simulated, every parameter with its
  ``value`` or ``range`` and its ``source``, ``extends`` resolved, the files it came from;
* :func:`network_json`: ``network.json``: the feeder as ``pandapower.to_json`` writes it
  (``pandapower.from_json`` reads it back), with ``net.load["twin_household"]`` giving each
  load's household number (the ``household`` column of the run's files; -1: not a household).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import twin
from twin.scenario import Scenario, load_scenario, resolve_scenario_path

__all__ = ["git_commit", "metadata", "network_json", "scenario_of", "scenario_yaml"]

PACKAGES = ("pandapower", "power-grid-model", "simbench", "numpy", "pandas", "mesa", "highspy")


@functools.cache
def git_commit() -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout twin runs from, ``None`` for an installed
    package (or without git)."""
    root = Path(twin.__file__).resolve().parent.parent
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
        "twin_version": twin.__version__,
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
