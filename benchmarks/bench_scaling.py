"""Cost per household-year of the firm and the performance contract, feeders of 25 to 400
households, whole process.

    python benchmarks/bench_scaling.py                              # winter week, every size
    python benchmarks/bench_scaling.py --period year --sizes 25 100 400
    python benchmarks/bench_scaling.py --contracts performance --json out.json

Feeders (:mod:`twin.grid.scaled`, written as pandapower JSON to ``--feeders``): the real
SimBench feeder ``1-LV-urban6--0-sw`` (102 households, 7 cable branches), a subset of its
branches for 25 and 50 households, 2 and 4 copies of all of its branches under the same
station for 204 and 408. The station is sized with the households (labelled assumption:
``k`` parallel units of urban6's 0.63 MVA type, a subset's station that type derated to its
share), so every feeder has urban6's 6.2 kVA per household.

Each case is the ``twin`` command in its own process (``bench_replan.whole_process``:
interpreter start, imports, inputs, the simulation, the AC power flow, the KPIs and files;
figures and per-element files off: ``output.figures=false output.elements=none``), the
contract's defaults otherwise (performance: statistical forecaster, hourly re-plans with the
deviation trigger, ``measurement=full`` state estimation). Per case: the CPU seconds of the
process (``os.wait4``), its wall time and peak RSS, HiGHS's own time
(``performance_highs_s``), and the cost per household-year, CPU s / (households x years of
simulated time; a winter week is 7/365 of a year, so the week's figure includes the fixed
start-up cost 52 times over and overstates the year's). Per contract it fits
``cpu = a * households^b`` (least squares on log-log) and reports the exponent ``b`` and the
ratio of the cost per household-year at the largest size to that at the smallest (the issue's
criterion: within 2x from 25 to 400 households).

Measured on this machine (2 cores shared with other engineers' jobs: load average 1.5-2.5
for the week, 6-7 for the year, which inflates even the CPU seconds; one run each; more in
``docs/scaling.md``).

Winter week, every size, the DSO's one LP (before ``GroupedAllocation``):

| contract | size | households | period | CPU (s) | wall (s) | peak RSS (MB) | HiGHS (s) | HiGHS share of CPU | re-plans | CPU s per household-year |
|---|---|---|---|---|---|---|---|---|---|---|
| firm | 25 | 25 | week | 3.5 | 3.6 | 663 | 0.0 | 0% | 0 | 7.32 |
| firm | 50 | 50 | week | 3.6 | 3.7 | 663 | 0.0 | 0% | 0 | 3.78 |
| firm | 100 | 102 | week | 4.0 | 4.2 | 663 | 0.0 | 0% | 0 | 2.05 |
| firm | 200 | 204 | week | 4.5 | 4.6 | 663 | 0.0 | 0% | 0 | 1.15 |
| firm | 400 | 408 | week | 5.7 | 5.9 | 846 | 0.0 | 0% | 0 | 0.73 |
| performance | 25 | 25 | week | 5.4 | 5.6 | 663 | 0.1 | 2% | 52 | 11.35 |
| performance | 50 | 50 | week | 7.2 | 7.5 | 663 | 0.6 | 8% | 70 | 7.56 |
| performance | 100 | 102 | week | 9.4 | 9.6 | 663 | 1.3 | 14% | 73 | 4.81 |
| performance | 200 | 204 | week | 16.2 | 20.3 | 745 | 4.7 | 29% | 102 | 4.14 |
| performance | 400 | 408 | week | 50.0 | 54.8 | 1,057 | 23.3 | 47% | 109 | 6.39 |

firm: CPU ~ households^0.17; performance: CPU ~ households^0.75, HiGHS ~ households^1.79.
At 408 households the grouped LP (the default above 128 signed households, groups of at
most 64) took HiGHS from 35.2 s (one LP, back to back at the same load) to 10.2 s, the
coincident peak +0.8 %, the same simplex iterations, no service level missed.

Year, the default (408 households: the grouped LP; all with the HiGHS time-limit fix):

| contract | size | households | period | CPU (s) | wall (s) | peak RSS (MB) | HiGHS (s) | HiGHS share of CPU | re-plans | CPU s per household-year |
|---|---|---|---|---|---|---|---|---|---|---|
| performance | 25 | 25 | year | 60.0 | 96.7 | 854 | 4.2 | 7% | 2,465 | 2.40 |
| performance | 100 | 102 | year | 144.1 | 284.1 | 2,255 | 38.2 | 27% | 3,529 | 1.41 |
| performance | 400 | 408 | year | 1,046.4 | 1,779.6 | 7,845 | 277.0 | 26% | 4,285 | 2.56 |
| firm | 25 | 25 | year | 11.2 | 12.3 | 744 | 0.0 | 0% | 0 | 0.45 |
| firm | 100 | 102 | year | 18.6 | 19.7 | 1,869 | 0.0 | 0% | 0 | 0.18 |
| firm | 400 | 408 | year | 53.8 | 50.6 | 6,068 | 0.0 | 0% | 0 | 0.13 |

performance: CPU ~ households^1.02, HiGHS ~ households^1.50; cost per household-year at 408
/ at 25 households: 1.07x (within the issue's 2x; 102 -> 408: 1.81x). firm: CPU ~
households^0.56; 0.30x.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
from bench_replan import KPIS, whole_process  # the whole-process measurement (os.wait4)

SIZES = (25, 50, 100, 200, 400)
CONTRACTS = ("firm", "performance")
#: simulated years per period (the SimBench-year run has 365 days; the winter week 7)
PERIODS = {"week": ([], 7 / 365), "year": (["sim=year"], 1.0)}
OUTPUT = ["output.figures=false", "output.elements=none"]
#: what each case records besides its cost: the headline KPIs and whether the DSO's plans held
CASE_KPIS = (
    *KPIS,
    "performance_replans_failed",
    "performance_fallback_steps",
    "performance_comfort_households_missed",
    "performance_ev_deadlines_missed",
    "performance_lp_build_s",
    "performance_simplex_iterations",
)


def build_feeders(sizes: list[int], folder: Path) -> dict[int, tuple[Path, int]]:
    """Write the scaled feeders (once per folder); size -> (JSON path, households)."""
    from twin.grid.scaled import household_mask, scaled_feeder, write_feeder

    out = {}
    source = None
    for size in sizes:
        path = folder / f"urban6_{size}.json"
        meta = path.with_suffix(".households")
        if not (path.exists() and meta.exists()):
            if source is None:
                import simbench

                from twin.grid.scaled import SOURCE_FEEDER

                source = simbench.get_simbench_net(SOURCE_FEEDER)
            net = scaled_feeder(size, source)
            write_feeder(net, path)
            meta.write_text(str(int(household_mask(net).sum())))
        out[size] = (path, int(meta.read_text()))
    return out


def fit_exponent(households: list[int], cost: list[float]) -> float:
    """``b`` of ``cost = a * households^b``, least squares on logs."""
    if len(households) < 2:
        return float("nan")
    return float(np.polyfit(np.log(households), np.log(cost), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--period", choices=sorted(PERIODS), default="week")
    ap.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), choices=SIZES)
    ap.add_argument("--contracts", nargs="+", default=list(CONTRACTS), choices=CONTRACTS)
    ap.add_argument("--feeders", default=str(Path(tempfile.gettempdir()) / "twin_scaled_feeders"))
    ap.add_argument("--json", help="also write the figures to this file (appended per case)")
    ap.add_argument("overrides", nargs="*", help="extra twin overrides for every case")
    args = ap.parse_args()
    feeders = build_feeders(args.sizes, Path(args.feeders))
    period, years = PERIODS[args.period]
    rows = []
    for contract in args.contracts:
        for size in args.sizes:
            path, n = feeders[size]
            r = whole_process(
                [f"grid.name={path}", *period, *OUTPUT, *args.overrides], contract, CASE_KPIS
            )
            r |= {"contract": contract, "size": size, "households": n, "period": args.period}
            r["cost_s_per_household_year"] = r["cpu_s"] / (n * years)
            rows.append(r)
            print(
                f"{contract} {size} ({n} households, {args.period}): CPU {r['cpu_s']:.1f} s, "
                f"wall {r['wall_s']:.1f} s, {r['peak_rss_mb']:.0f} MB, HiGHS {r['highs_s']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=2))
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f}; "
        f"period: {args.period}\n"
    )
    print(
        "| contract | size | households | period | CPU (s) | wall (s) | peak RSS (MB) | "
        "HiGHS (s) | HiGHS share of CPU | re-plans | CPU s per household-year |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['contract']} | {r['size']} | {r['households']} | {r['period']} | "
            f"{r['cpu_s']:.1f} | {r['wall_s']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r['highs_s']:.1f} | {r['highs_s'] / r['cpu_s']:.0%} | {r['replans']} | "
            f"{r['cost_s_per_household_year']:.3f} |"
        )
    print()
    for contract in args.contracts:
        rs = [r for r in rows if r["contract"] == contract]
        hh = [r["households"] for r in rs]
        b_cpu = fit_exponent(hh, [r["cpu_s"] for r in rs])
        b_highs = fit_exponent(hh, [max(r["highs_s"], 1e-9) for r in rs])
        ratio = rs[-1]["cost_s_per_household_year"] / rs[0]["cost_s_per_household_year"]
        print(
            f"{contract}: CPU ~ households^{b_cpu:.2f}"
            + (f", HiGHS ~ households^{b_highs:.2f}" if contract == "performance" else "")
            + f"; cost per household-year at {hh[-1]} / at {hh[0]} households: {ratio:.2f}x"
        )


if __name__ == "__main__":
    main()
