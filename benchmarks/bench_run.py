"""Whole-run timings of twin's firm baseline: a week and a year on the default feeder.

    python benchmarks/bench_run.py

Prints, for each period, the whole-process wall time of the ``twin`` command (imports, inputs,
simulation, AC power flow, KPIs, files and figures) and peak memory, and the in-process
stages of ``twin.pipeline.run`` (from ``timings.json``). Not part of the test run.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TWIN = str(Path(sys.executable).with_name("twin"))


def whole_process(overrides: list[str]) -> tuple[float, float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        subprocess.run(
            [TWIN, *overrides, f"paths.results_dir={tmp}", "output.progress=false"],
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - t0
        peak_mb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
        timings = json.loads(next(Path(tmp).rglob("timings.json")).read_text())
    return wall, peak_mb, timings


def main() -> None:
    rows = []
    for label, over in (("winter week", []), ("full year", ["sim=year"])):
        wall, mb, t = whole_process(over)
        rows.append((label, wall, mb, t))
    print(
        "| period | whole process (s) | peak memory (MB) | inputs (s) | simulation (s) | AC power flow (s) | run() total (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, wall, mb, t in rows:
        print(
            f"| {label} | {wall:.1f} | {mb:.0f} | {t['inputs']:.2f} | {t['simulate']:.2f} | {t['powerflow']:.2f} | {t['total_run']:.2f} |"
        )


if __name__ == "__main__":
    main()
