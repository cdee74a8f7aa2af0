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

import errno
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


def write_run(result: RunResult, out_dir: str | Path) -> Path:
    """Write one run into ``out_dir`` (an exclusive, all-or-nothing :class:`RunFolder`):
    ``config.yaml``, ``households.parquet`` and ``feeder.parquet`` (``output.timeseries``),
    ``households_summary.csv``, ``figures/`` (``output.figures``), ``kpis.json``,
    ``timings.json``, then ``DONE``. See ``results/README.md`` for every file and column."""
    out_dir = Path(out_dir)
    with RunFolder(out_dir) as folder:
        stage = folder.stage
        cfg_yaml = OmegaConf.to_yaml(result.cfg, resolve=True)
        (stage / "config.yaml").write_text(cfg_yaml)
        if result.cfg.output.timeseries:
            result.households_frame().to_parquet(stage / "households.parquet", index=False)
            result.feeder_frame().to_parquet(stage / "feeder.parquet", index=False)
        result.households_summary().to_csv(
            stage / "households_summary.csv", index=False, float_format="%.4g"
        )
        if result.cfg.output.figures:
            from twin.plots import write_figures

            write_figures(result, stage / "figures")
        write_json(stage / "kpis.json", result.kpis)
        write_json(stage / "timings.json", result.timings_s)
    return out_dir
