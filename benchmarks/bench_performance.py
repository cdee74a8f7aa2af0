"""The performance contract on the default feeder: a winter week and a full year.

    python benchmarks/bench_performance.py                      # week + year, central
    python benchmarks/bench_performance.py --modes firm central envelope --cases week year

Each case runs in its own Python process (``--child``) so that wall time and peak memory are
the whole process's: interpreter start, imports, inputs, building the Pyomo models, the
simulation with every re-plan, the AC power flow and the KPIs (no files, no figures).

Reported per case:

* whole-process wall time and peak resident memory;
* the HiGHS-only time of the same solves, from HiGHS's own clock (``getRunTime`` differences,
  summed over every solve of the run);
* overhead ratios against it: the optimisation layer (appsi solve calls, parameter pushes and
  solution read-back), every re-plan (plus forecasts, service-level bounds, envelopes, bands),
  and the whole process;
* where the rest of the time goes (a profile by stage) and the headline KPIs.

Targets (issue #4): full year <= 120 s on a 2-core machine (stretch 60 s); optimisation
overhead <= 1.3x the solver-only time. Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

CASES = {"week": ["sim=winter_week"], "year": ["sim=year"]}


def child(case: str, mode: str) -> dict:
    """Run one case in this process and return its figures."""
    t_start = time.perf_counter()
    import logging

    logging.basicConfig(level=logging.ERROR)
    from twin.config import compose
    from twin.pipeline import run

    t_imported = time.perf_counter()
    contract = (
        ["contract=firm"]
        if mode == "firm"
        else ["contract=performance", f"contract.information={mode}"]
    )
    cfg = compose([*CASES[case], "output.progress=false", *contract])
    r = run(cfg)
    t_end = time.perf_counter()
    k = r.kpis
    kpi_keys = (
        "coincident_peak_per_household_kw",
        "comfort_days_met_share",
        "ev_days_met_share",
        "trafo_peak_loading_pct",
        "line_max_loading_pct",
        "vm_min_pu",
        "heat_from_boilers_kwh",
        "energy_heat_pump_kwh",
        "ev_public_charging_kwh",
    )
    if mode == "firm":  # the baseline: no optimiser
        return {
            "case": case,
            "mode": mode,
            "process_s": t_end - t_start,
            "imports_s": t_imported - t_start,
            "run_s": t_end - t_imported,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "kpis": {key: k[key] for key in kpi_keys},
        }
    push_s = k["performance_lp_push_s"]
    readback_s = k["performance_lp_readback_s"]
    build_s = k["performance_lp_build_s"]
    setup_s, replan_s = k["performance_setup_s"], k["performance_replan_s"]
    dispatch_s = k["performance_dispatch_s"]
    highs = k["performance_highs_s"]
    solve_wall = k["performance_solve_wall_s"]
    opt_layer = solve_wall + push_s + readback_s
    simulate = r.timings_s["simulate"]
    return {
        "case": case,
        "mode": mode,
        "process_s": t_end - t_start,
        "imports_s": t_imported - t_start,
        "run_s": t_end - t_imported,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "highs_s": highs,
        "solve_calls_s": solve_wall,
        "push_s": push_s,
        "readback_s": readback_s,
        "replans": k["performance_replans"],
        "replans_failed": k["performance_replans_failed"],
        "replan_s": replan_s,
        "iterations": k["performance_simplex_iterations"],
        "lp_columns": k["performance_lp_columns"],
        "lp_rows": k["performance_lp_rows"],
        "overhead_optimisation": opt_layer / highs if highs else float("nan"),
        "overhead_replan": replan_s / highs if highs else float("nan"),
        "overhead_process": (t_end - t_start) / highs if highs else float("nan"),
        "stages_s": {
            "imports": t_imported - t_start,
            "inputs": r.timings_s["inputs"],
            "model build (Pyomo + set_instance, grid limits)": setup_s,
            "of which Pyomo build + set_instance": build_s,
            "re-plans (forecast, data, solve, bands)": replan_s,
            "of which HiGHS": highs,
            "HEMS dispatch": dispatch_s,
            "physics, logging, agents": simulate - setup_s - replan_s - dispatch_s,
            "AC power flow": r.timings_s["powerflow"],
            "KPIs and the rest": (t_end - t_imported)
            - r.timings_s["inputs"]
            - simulate
            - r.timings_s["powerflow"],
        },
        "kpis": {
            key: k[key]
            for key in (
                *kpi_keys,
                "performance_band_excess_kwh",
                "performance_relaxations",
                "performance_fallback",
            )
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", nargs="+", default=["week", "year"], choices=sorted(CASES))
    ap.add_argument(
        "--modes",
        nargs="+",
        default=["central"],
        choices=["firm", "central", "envelope"],
        help="firm runs the baseline contract (for the KPI comparison; no optimiser figures)",
    )
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--child", nargs=2, metavar=("CASE", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    results = []
    for case in args.cases:
        for mode in args.modes:
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, __file__, "--child", case, mode],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
            res = json.loads(out.stdout.strip().splitlines()[-1])
            res["wall_from_parent_s"] = time.perf_counter() - t0
            results.append(res)
            print(f"{case} {mode}: {res['wall_from_parent_s']:.1f} s", file=sys.stderr)
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    opt = [r for r in results if r["mode"] != "firm"]
    print(
        "| case | mode | whole process (s) | peak memory (MB) | HiGHS only (s) | re-plans | "
        "optimisation / HiGHS | re-plans / HiGHS | process / HiGHS | LP cols x rows |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if r["mode"] == "firm":
            print(
                f"| {r['case']} | firm | {r['wall_from_parent_s']:.1f} | {r['peak_rss_mb']:.0f} | - | - | - | - | - | - |"
            )
            continue
        print(
            f"| {r['case']} | {r['mode']} | {r['wall_from_parent_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['highs_s']:.2f} | "
            f"{r['replans']} | {r['overhead_optimisation']:.2f} | {r['overhead_replan']:.2f} | "
            f"{r['overhead_process']:.1f} | {r['lp_columns']} x {r['lp_rows']} |"
        )
    if opt:
        print("\nWhere the time goes (s):\n")
        stages = list(opt[0]["stages_s"])
        print("| stage | " + " | ".join(f"{r['case']} {r['mode']}" for r in opt) + " |")
        print("|---|" + "---|" * len(opt))
        for s in stages:
            print(f"| {s} | " + " | ".join(f"{r['stages_s'][s]:.2f}" for r in opt) + " |")
    print("\nHeadline KPIs (simulated result, AC power flow):\n")
    keys = list(dict.fromkeys(key for r in results for key in r["kpis"]))
    print("| KPI | " + " | ".join(f"{r['case']} {r['mode']}" for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for key in keys:
        vals = [r["kpis"].get(key, "-") for r in results]
        print(
            f"| {key} | "
            + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in vals)
            + " |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
