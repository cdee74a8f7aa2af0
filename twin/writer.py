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
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from twin.errors import TwinError
from twin.result import RunResult

__all__ = [
    "DONE",
    "FAILED",
    "RunFolder",
    "atomic_write",
    "is_complete",
    "mark_failed",
    "RUN_FILES",
    "write_json",
    "write_run",
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


def mark_failed(run_dir: Path, message: str) -> None:
    """Leave ``FAILED`` (the one-line error) in a run folder, and no ``DONE``."""
    run_dir = Path(run_dir)
    if run_dir.is_dir():
        (run_dir / DONE).unlink(missing_ok=True)
        atomic_write(run_dir / FAILED, lambda p: p.write_text(message.rstrip() + "\n"))


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

    def __enter__(self) -> RunFolder:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.path / LOCK, "a")  # noqa: SIM115 - held until __exit__
        except OSError as err:
            raise TwinError(
                f"cannot write into {self.path}: {err.strerror}: choose a writable "
                "paths.results_dir (or hydra.run.dir)"
            ) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise TwinError(
                f"another twin run is writing into {self.path}: wait for it to finish, or "
                "give this run its own folder (hydra.run.dir=...)"
            ) from None
        (self.path / DONE).unlink(missing_ok=True)
        (self.path / FAILED).unlink(missing_ok=True)
        shutil.rmtree(self.stage, ignore_errors=True)
        self.stage.mkdir()
        return self

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
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
            if self._lock is not None:
                fcntl.flock(self._lock, fcntl.LOCK_UN)
                self._lock.close()
                self._lock = None


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
    "feeder.parquet": "per time step: feeder totals, transformer station P/S/loading, LV voltage extremes and their buses, the worst cable, losses",
    "buses.parquet": "per (time, bus): voltage magnitude (all buses, or the worst_n LV buses)",
    "lines.parquet": "per (time, line): loading, current, active power (all lines, or the worst_n)",
    "transformers.parquet": "per (time, transformer): active and apparent power, loading",
    "households_summary.csv": "per household: devices, parameters, its own peak, energies, comfort and bill",
    "figures/": "PNG figures (listed in summary.md)",
    "timings.json": "seconds per stage of the run, and per file written",
}


def _element_files(result: RunResult) -> dict[str, Callable[[], Any]]:
    """The per-element frames ``output.elements`` asks for (``all``, ``worst``, ``none``)."""
    out = result.cfg.output
    mode = str(out.get("elements", "all"))
    if mode == "none":
        return {}
    n = int(out.get("worst_n", 10))
    buses = result.worst_buses(n) if mode == "worst" else None
    lines = result.worst_lines(n) if mode == "worst" else None
    return {
        "buses.parquet": lambda: result.bus_frame(buses),
        "lines.parquet": lambda: result.line_frame(lines),
        "transformers.parquet": result.trafo_frame,
    }


def write_run(result: RunResult, out_dir: str | Path) -> Path:
    """Write one run into ``out_dir`` (an exclusive, all-or-nothing :class:`RunFolder`), the
    files of :data:`RUN_FILES` (time series with ``output.timeseries``, per-element results
    as ``output.elements`` says, figures with ``output.figures``), ``DONE`` last. See
    ``results/README.md`` for every file and column."""
    import time

    from twin.provenance import metadata, network_json, scenario_yaml
    from twin.summary import run_summary

    out_dir = Path(out_dir)
    timings = dict(result.timings_s)
    written: list[str] = []

    def timed(name: str, write: Callable[[Path], None]) -> None:
        t0 = time.perf_counter()
        write(stage / name)
        timings[f"write {name}"] = time.perf_counter() - t0
        written.append(name)

    with RunFolder(out_dir) as folder:
        stage = folder.stage
        cfg_yaml = OmegaConf.to_yaml(result.cfg, resolve=True)
        timed("config.yaml", lambda p: p.write_text(cfg_yaml))
        timed("scenario.yaml", lambda p: p.write_text(scenario_yaml(result)))
        timed("network.json", lambda p: network_json(result, p))
        if result.cfg.output.timeseries:
            timed(
                "households.parquet",
                lambda p: result.households_frame().to_parquet(p, index=False),
            )
            timed("feeder.parquet", lambda p: result.feeder_frame().to_parquet(p, index=False))
            for name, frame in _element_files(result).items():
                timed(name, lambda p, frame=frame: frame().to_parquet(p, index=False))
        timed(
            "households_summary.csv",
            lambda p: result.households_summary().to_csv(p, index=False, float_format="%.4g"),
        )
        figures: list[Any] = []
        if result.cfg.output.figures:
            from twin.plots import write_figures

            t0 = time.perf_counter()
            figures = write_figures(result, stage / "figures")
            timings["write figures/"] = time.perf_counter() - t0
            written.append("figures/")
        timed("kpis.json", lambda p: write_json(p, result.kpis))
        files = {
            name: RUN_FILES[name]
            for name in [*written, "summary.md", "metadata.json", "timings.json"]
        }
        meta = metadata(result, files)
        write_json(stage / "metadata.json", meta)
        (stage / "summary.md").write_text(run_summary(result, figures, files, meta))
        write_json(stage / "timings.json", timings)
    return out_dir
