"""Time a year of state estimation: twin's batch (power-grid-model WLS over all 35,040 steps)
against a loop of ``pandapower.estimation.estimate`` on the same measurements.

Usage::

    python benchmarks/bench_estimation.py [FEEDER] [--pp-steps 100] [--presets full ...]

The truth is a year of the feeder's own load profiles (one AC power flow per step); each
preset's measurement layer (:func:`twin.measure.estimate_feeder`: ideal sensor readings from a
batch power flow, noise, lost and late readings, pseudo-measurements, the nowcast and, with
late meters, the final estimate) is timed as a run would add it. The pandapower loop runs on
the ``transformer_and_meters`` measurements with real-time meters (a layout both engines
take: pandapower has no current-angle sensor), Newton WLS on both sides; it is extrapolated
linearly from ``--pp-steps`` steps spread over the year, and the agreement of the two on those
steps is printed. Prints Markdown tables (paste into the README) and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from dataclasses import replace

import numpy as np

from twin.config import compose
from twin.grid.estimation import BatchStateEstimator, pandapower_estimate
from twin.grid.feeders import DEFAULT_FEEDER, load_feeder
from twin.grid.powerflow import BatchPowerFlow
from twin.measure import (
    MEASUREMENT_PRESETS,
    MeasurementSettings,
    estimate_feeder,
    measure,
    metered_connections,
    sensor_layout,
)


def _settings(name: str) -> MeasurementSettings:
    return MeasurementSettings.from_config(compose([f"measurement={name}"]).measurement)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("feeder", nargs="?", default=DEFAULT_FEEDER)
    ap.add_argument("--pp-steps", type=int, default=100)
    ap.add_argument("--presets", nargs="*", default=list(MEASUREMENT_PRESETS))
    ap.add_argument("--threads", type=int, default=0, help="PGM threads (0: all cores)")
    args = ap.parse_args()

    feeder = load_feeder(args.feeder)
    net = feeder.net
    p, q = feeder.load_p_kw, feeder.load_q_kvar
    n_t = p.shape[0]
    t0 = time.perf_counter()
    truth = BatchPowerFlow(net, threads=args.threads).run(p, q)
    t_pf = time.perf_counter() - t0
    print(
        f"feeder {feeder.name}: {len(net.bus)} buses, {len(net.line)} lines, {len(net.load)} "
        f"loads; {n_t} steps; batch power flow of the truth {t_pf:.2f} s"
    )
    print()
    print(
        "| preset | method | readings in the nowcast | year of SE (s) | of which estimation | "
        "mean / max voltage error (p.u.) | mean / max cable-loading error (%-points) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.presets:
        s = _settings(name)
        t0 = time.perf_counter()
        se = estimate_feeder(s, net, p, q, p, 0, truth, seed=42, threads=args.threads)
        wall = time.perf_counter() - t0
        k = se.kpis
        est_s = se.nowcast.seconds + (se.final.seconds if se.final is not None else 0.0)
        method = k["se_method"]
        if "se_nowcast_method" in k:
            method += f" (nowcast {k['se_nowcast_method']})"
        print(
            f"| {name} | {method} | {k['se_reading_share']:.2f} | {wall:.2f} | "
            f"{est_s:.2f} | {k['se_vm_err_mean_pu']:.4f} / {k['se_vm_err_max_pu']:.4f} | "
            f"{k['se_line_err_mean_pp']:.2f} / {k['se_line_err_max_pp']:.1f} |"
        )

    # the same measurements in both engines
    s = replace(_settings("transformer_and_meters"), meter_delay_steps=0)
    metered = metered_connections(s, len(net.load), 42)
    est = BatchStateEstimator(
        net, sensor_layout(s, metered), threads=args.threads, method="newton_raphson"
    )
    sensors = est.sensor_truth(p, q)
    m = measure(s, est, sensors, p, q, p, 0, metered, 42)
    t0 = time.perf_counter()
    batch = est.run(m.nowcast)
    t_batch = time.perf_counter() - t0
    steps = np.linspace(0, n_t - 1, args.pp_steps).astype(int)
    times: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        vm_pp, ll_pp = pandapower_estimate(net, est, m.nowcast, steps, times)
        t_loop = time.perf_counter() - t0
    per_step = t_loop / len(steps)
    year_pp = per_step * n_t
    dv = np.nanmax(np.abs(batch.result.vm_pu[steps] - vm_pp))
    dl = np.nanmax(np.abs(batch.result.line_loading_pct[steps] - ll_pp))
    print()
    print(
        "| engine (transformer_and_meters, real-time meters, Newton WLS) | a year (35,040 steps) |"
    )
    print("|---|---|")
    print(
        f"| power-grid-model batch, {est.threads or os.cpu_count()} thread(s) | {t_batch:.2f} s |"
    )
    print(
        f"| pandapower.estimation loop ({per_step * 1e3:.1f} ms per step, "
        f"{len(steps)} steps extrapolated) | {year_pp:,.0f} s |"
    )
    print(f"| of which pandapower's estimate() calls | {np.mean(times) * n_t:,.0f} s |")
    print(f"| ratio (whole loop / batch) | {year_pp / t_batch:,.0f}x |")
    print()
    print(
        f"agreement on the {len(steps)} steps: max |dU| {dv:.2e} p.u., max |d loading| "
        f"{dl:.2e} %-points; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores "
        f"({platform.processor() or platform.machine()})"
    )


if __name__ == "__main__":
    main()
