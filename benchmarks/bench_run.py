"""Whole-run timings and peak memory of the ``twin`` command on the default feeder: the firm
baseline over a week and a year, and the performance contract over a year.

    python benchmarks/bench_run.py                    # firm week, firm year, performance year
    python benchmarks/bench_run.py --cases firm-year performance-year

Prints, for each case, the whole-process wall time of the ``twin`` command (imports, inputs,
simulation, AC power flow, KPIs, files and figures) and its peak resident memory (the child's
own ``ru_maxrss`` from ``wait4``, not the maximum over every child so far), the in-process
stages of ``twin.pipeline.run`` and the time spent writing files and figures (from
``timings.json``). Target (issue 12): every year at most 2 GiB. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TWIN = str(Path(sys.executable).with_name("twin"))

CASES = {
    "firm-week": ["contract=firm"],
    "firm-year": ["contract=firm", "sim=year"],
    "performance-year": ["contract=performance", "sim=year"],
}

#: Peak resident memory a full-year run must stay under, whole process (issue 12).
YEAR_LIMIT_MB = 2048


def whole_process(overrides: list[str]) -> tuple[float, float, dict]:
    """Run ``twin`` in a child process: wall time (s), its peak RSS (MB), its timings.json."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [TWIN, *overrides, f"paths.results_dir={tmp}", "output.progress=false"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-2000:]
            raise SystemExit(f"twin {' '.join(overrides)} failed ({proc.returncode}):\n{tail}")
        peak_mb = usage.ru_maxrss / 1024  # Linux: KiB
        timings = json.loads(next(Path(tmp).rglob("timings.json")).read_text())
    return wall, peak_mb, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    args = parser.parse_args()
    rows = []
    for case in args.cases:
        wall, mb, t = whole_process(CASES[case])
        rows.append((case, wall, mb, t))
        print(f"{case}: {wall:.1f} s, {mb:.0f} MB", file=sys.stderr, flush=True)
    print(
        "| case | whole process (s) | peak memory (MB) | inputs (s) | simulation (s) "
        "| AC power flow (s) | run() total (s) | files and figures (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for case, wall, mb, t in rows:
        write_s = sum(v for k, v in t.items() if k.startswith("write "))
        flag = " (over 2 GiB)" if case.endswith("year") and mb > YEAR_LIMIT_MB else ""
        print(
            f"| {case} | {wall:.1f} | {mb:.0f}{flag} | {t['inputs']:.2f} | {t['simulate']:.2f} "
            f"| {t['powerflow']:.2f} | {t['total_run']:.2f} | {write_s:.2f} |"
        )


if __name__ == "__main__":
    main()
