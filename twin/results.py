"""Write a run to disk: parquet time series, kpis.json, resolved config, figures, ``DONE``.

Every file is written under a temporary name and moved into place, and ``DONE`` is written
last (and removed first when a folder is reused), so an interrupted run never leaves a folder
that looks complete, and never half-overwrites a file another run wrote.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

if TYPE_CHECKING:
    from twin.pipeline import RunResult

DONE = "DONE"


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
    return (run_dir / DONE).is_file()


def write_run(result: RunResult, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DONE).unlink(missing_ok=True)
    cfg_yaml = OmegaConf.to_yaml(result.cfg, resolve=True)
    atomic_write(out_dir / "config.yaml", lambda p: p.write_text(cfg_yaml))
    if result.cfg.output.timeseries:
        atomic_write(
            out_dir / "households.parquet",
            lambda p: result.households_frame().to_parquet(p, index=False),
        )
        atomic_write(
            out_dir / "feeder.parquet", lambda p: result.feeder_frame().to_parquet(p, index=False)
        )
    atomic_write(
        out_dir / "households_summary.csv",
        lambda p: result.households_summary().to_csv(p, index=False, float_format="%.4g"),
    )
    if result.cfg.output.figures:
        from twin.plots import write_figures

        write_figures(result, out_dir / "figures")
    write_json(out_dir / "kpis.json", result.kpis)
    write_json(out_dir / "timings.json", result.timings_s)
    (out_dir / DONE).write_text("")
    return out_dir
