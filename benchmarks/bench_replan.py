"""Intraday re-planning of the performance contract over a full year, whole process.

    python benchmarks/bench_replan.py                  # hourly, daily, hourly on perfect foresight
    python benchmarks/bench_replan.py --reference      # + hourly re-plans of the full LP, always
    python benchmarks/bench_replan.py --period week    # the default winter week instead

Each case is the ``twin`` command (``python -m twin.cli``, so ``PYTHONPATH`` picks the
checkout) in its own process (interpreter start, imports, inputs, the
forecaster's training, the simulation with every re-plan, the AC power flow, the KPIs, every
file and figure), e.g. ``twin contract=performance sim=year contract.replan_every_h=1`` (the
statistical forecaster is the performance contract's default). Per case it reports the wall
time, the CPU time and the peak resident memory of that process (``os.wait4``: what
``/usr/bin/time -v`` reports), and from the run's ``kpis.json``: the forecaster's training
time (``forecast_train_s``), its prediction time (``forecast_predict_s``), HiGHS's own time
(``performance_highs_s``), the rest (wall minus those three), the re-plans made and skipped,
and the headline KPIs.

Cases (``--cases``):

* ``hourly`` — ``contract.replan_every_h=1`` with the defaults for intraday re-plans: the
  deviation trigger (``contract.replan_trigger=deviation``) and periods growing with lead
  (``contract.coarse_after_h=6``, ``contract.coarse_h=3``);
* ``daily`` — the default daily re-plan at noon;
* ``hourly-perfect`` — ``hourly`` on perfect foresight (``forecast=perfect``);
* ``hourly-always`` (``--reference``) — every hour, the full 24 x 1 h LP
  (``contract.replan_trigger=always contract.coarse_after_h=null``): the reference the
  defaults are measured against.

Target (issue 12, item 9): the hourly year <= 60 s and <= 2 GiB on this machine (2 cores).

Measured (2 cores, one run each, HEAD of branch ``replan``; the machine was shared with
other jobs, load average 2-4, so wall times are upper bounds; CPU time is the process's own):

(filled in below by the run recorded in the commit that added this file)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: the ``twin`` command of the Python running this (``python -m twin.cli``: the twin on its path)
TWIN = [sys.executable, "-m", "twin.cli"]
HOURLY = ["contract.replan_every_h=1"]
CASES = {
    "hourly": HOURLY,
    "daily": [],
    "hourly-perfect": [*HOURLY, "forecast=perfect"],
    "hourly-always": [*HOURLY, "contract.replan_trigger=always", "contract.coarse_after_h=null"],
}
PERIODS = {"year": ["sim=year"], "week": []}
KPIS = (
    "coincident_peak_per_household_kw",
    "comfort_days_met_share",
    "ev_days_met_share",
    "performance_band_excess_kwh",
    "trafo_peak_loading_pct",
    "financial_risk_kwh",
)


def whole_process(overrides: list[str]) -> dict:
    """Run ``twin`` with ``overrides`` in a fresh process; its wall, CPU, peak RSS, KPIs."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["twin", "contract=performance", *overrides, f"hydra.run.dir={tmp}/run"]
        log = Path(tmp) / "stderr.txt"
        t0 = time.perf_counter()
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [*TWIN, *cmd[1:], "output.progress=false"],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, "MPLBACKEND": "Agg"},
            )
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{log.read_text()[-3000:]}")
        k = json.loads(next(Path(tmp).rglob("kpis.json")).read_text())
    train, predict = k.get("forecast_train_s", 0.0), k.get("forecast_predict_s", 0.0)
    highs = k["performance_highs_s"]
    return {
        "command": "twin " + " ".join(["contract=performance", *overrides]),
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "forecast_train_s": train,
        "forecast_predict_s": predict,
        "highs_s": highs,
        "rest_s": wall - train - predict - highs,
        "replans": k["performance_replans"],
        "skipped": k.get("performance_replans_skipped", 0),
        "reasons": k.get("performance_replans_by_reason", {}),
        "highs_ms_per_replan": 1000 * highs / max(k["performance_replans"], 1),
        "lp": f"{k['performance_lp_columns']} x {k['performance_lp_rows']}",
        "kpis": {key: k.get(key) for key in KPIS},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--period", choices=sorted(PERIODS), default="year")
    ap.add_argument(
        "--cases", nargs="+", choices=sorted(CASES), default=["hourly", "daily", "hourly-perfect"]
    )
    ap.add_argument("--reference", action="store_true", help="also run hourly-always (slow)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    cases = list(args.cases) + (["hourly-always"] if args.reference else [])
    results = {}
    for case in cases:
        results[case] = whole_process([*PERIODS[args.period], *CASES[case]])
        r = results[case]
        print(f"{case}: {r['wall_s']:.1f} s, {r['peak_rss_mb']:.0f} MB", file=sys.stderr)
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}; "
        f"period: {args.period}\n"
    )
    print(
        "| case | whole process (s) | CPU (s) | peak RSS (MB) | forecaster training (s) | "
        "forecaster prediction (s) | HiGHS (s) | the rest (s) | re-plans made / skipped | "
        "HiGHS per re-plan (ms) | LP cols x rows |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for case, r in results.items():
        print(
            f"| {case} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r['forecast_train_s']:.1f} | {r['forecast_predict_s']:.1f} | {r['highs_s']:.1f} | "
            f"{r['rest_s']:.1f} | {r['replans']} / {r['skipped']} | "
            f"{r['highs_ms_per_replan']:.1f} | {r['lp']} |"
        )
    print("\n| KPI | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for key in KPIS:
        vals = [r["kpis"][key] for r in results.values()]
        print(
            f"| {key} | "
            + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in vals)
            + " |"
        )
    print("\nRe-plans by reason: " + "; ".join(f"{c}: {r['reasons']}" for c, r in results.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
