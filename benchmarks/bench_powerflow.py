"""Time a year of AC power flow: power-grid-model batch vs pandapower (runpp, run_timeseries),
and the unbalanced year: power-grid-model asymmetric batch vs a pandapower ``runpp_3ph`` loop.

Usage::

    python benchmarks/bench_powerflow.py [FEEDER] [--pp-steps 200] [--ts-steps 500]
    python benchmarks/bench_powerflow.py --asym [--asym-feeders 1-LV-urban6--0-sw ieee_european_lv]
        [--pp3-steps 20]

Prints a Markdown table (paste into the README) and the worst agreement between the batch
engine and pandapower on the steps pandapower solved. pandapower runs are extrapolated
linearly from a sample of steps spread over the year.

Unbalanced loads (``--asym``): a feeder's loads sit on the phases the feeder file gives
(the IEEE European LV feeder: each load on its phase of the published feeder); elsewhere the
households' connections are drawn as a run draws them (:func:`twin.population.sample_fleet`,
scenario ``nl-2040-central``, seed 0: single-phase connections on their phase, three-phase
ones split equally) and the other loads are split equally. The batch stores float32 results
for feeders above 500 buses, as the pipeline does (memory: a year of the IEEE feeder is
~1.4 GB then). The machine's load average is printed with the table: other work on the
machine slows the batch down.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import pandas as pd

from twin.grid.asymmetric import AsymmetricPowerFlow, phase_loads, run_pandapower_3ph
from twin.grid.feeders import DEFAULT_FEEDER, load_feeder
from twin.grid.linear import LinearFeederModel
from twin.grid.phases import FLOAT32_ABOVE_BUSES
from twin.grid.powerflow import BatchPowerFlow, run_pandapower


def _time_batch(bpf: BatchPowerFlow, p: np.ndarray, q: np.ndarray, repeats: int = 2):
    best = np.inf
    res = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = bpf.run(p, q)
        best = min(best, time.perf_counter() - t0)
    return best, res


def _time_run_timeseries(net, p_kw: np.ndarray, q_kvar: np.ndarray, steps: np.ndarray) -> float:
    import copy

    import pandapower.control as control
    import pandapower.timeseries as ts

    net = copy.deepcopy(net)
    df_p = pd.DataFrame(p_kw[steps] / 1e3, columns=net.load.index)
    df_q = pd.DataFrame(q_kvar[steps] / 1e3, columns=net.load.index)
    control.ConstControl(
        net,
        "load",
        "p_mw",
        element_index=net.load.index,
        data_source=ts.DFData(df_p),
        profile_name=net.load.index,
    )
    control.ConstControl(
        net,
        "load",
        "q_mvar",
        element_index=net.load.index,
        data_source=ts.DFData(df_q),
        profile_name=net.load.index,
    )
    ow = ts.OutputWriter(net, time_steps=range(len(steps)), output_path=None)
    ow.log_variable("res_bus", "vm_pu")
    ow.log_variable("res_line", "loading_percent")
    ow.log_variable("res_trafo", "loading_percent")
    t0 = time.perf_counter()
    ts.run_timeseries(
        net,
        time_steps=range(len(steps)),
        verbose=False,
        trafo_model="pi",
        trafo_loading="power",
        lightsim2grid=False,
        numba=False,
    )
    return time.perf_counter() - t0


def _phase_of_loads(f) -> np.ndarray:
    """Each load's phase: the feeder's, else the households' drawn connections."""
    from twin.population import sample_fleet
    from twin.scenario import load_scenario

    phase = np.full(len(f.net.load), -1)
    fleet = sample_fleet(
        load_scenario("nl-2040-central"), f.n_households, np.random.default_rng(0),
        f.household_phase,
    )  # fmt: skip
    phase[f.household_cols] = fleet.phase_connection
    if f.load_phase is not None:
        phase = np.where(f.load_phase >= -1, f.load_phase, phase)
    return phase


def bench_asymmetric(specs: list[str], pp3_steps: int) -> None:
    """Unbalanced year per feeder: PGM batch (1 and all threads) vs a runpp_3ph loop."""
    n_threads = os.cpu_count() or 1
    print(
        "| feeder (buses / loads) | PGM asym, 1 thread | PGM asym, "
        f"{n_threads} threads | `runpp_3ph` loop ({pp3_steps} steps, extrapolated) "
        "| speed-up | max abs dV (p.u.) |"
    )
    print("|---|---|---|---|---|---|")
    for spec in specs:
        f = load_feeder(spec)
        net = f.net
        phase = _phase_of_loads(f)
        p, q = phase_loads(f.load_p_kw, f.load_q_kvar, phase)
        n_t = p.shape[0]
        dtype = np.float32 if len(net.bus) > FLOAT32_ABOVE_BUSES else np.float64
        times = {}
        res = None
        for th in (1, 0):
            apf = AsymmetricPowerFlow(net, threads=th, dtype=dtype)
            t0 = time.perf_counter()
            res = apf.run(p, q)
            times[th] = time.perf_counter() - t0
        steps = np.linspace(0, n_t - 1, pp3_steps).astype(int)
        run_pandapower_3ph(net, p, q, steps=steps[:1])  # warm up
        timings: list[float] = []
        t0 = time.perf_counter()
        ref = run_pandapower_3ph(net, p, q, steps=steps, timings=timings)
        t_pp = (time.perf_counter() - t0) / len(steps) * n_t
        d_vm = float(np.nanmax(np.abs(res.vm_pu[steps] - ref.vm_pu)))
        best = min(times.values())
        print(
            f"| {f.name} ({len(net.bus)} / {len(net.load)}, {int((phase >= 0).sum())} "
            f"single-phase) | {times[1]:.2f} s | {times[0]:.2f} s "
            f"| {t_pp:.0f} s ({np.median(timings) * 1e3:.0f} ms per call) | {t_pp / best:.0f}x "
            f"| {d_vm:.1e} |"
        )
        del res, ref
    print(
        "\ntargets: default-feeder unbalanced year <= 5 s; >= 100x the runpp_3ph loop "
        "(runpp_3ph run with the transformer zero sequence aligned, see twin.grid.asymmetric)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("feeder", nargs="?", default=DEFAULT_FEEDER)
    ap.add_argument("--pp-steps", type=int, default=200, help="runpp calls to time")
    ap.add_argument("--ts-steps", type=int, default=500, help="run_timeseries steps (0: skip)")
    ap.add_argument("--asym", action="store_true", help="time the unbalanced year instead")
    ap.add_argument("--asym-feeders", nargs="+", default=[DEFAULT_FEEDER, "ieee_european_lv"])
    ap.add_argument("--pp3-steps", type=int, default=20, help="runpp_3ph calls per feeder")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    if args.asym:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"machine: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} hardware threads, load average {load} (1, 5, 15 min)\n"
        )
        bench_asymmetric(args.asym_feeders, args.pp3_steps)
        return

    f = load_feeder(args.feeder)
    net = f.net
    p, q = f.load_p_kw, f.load_q_kvar
    n_t = p.shape[0]

    t0 = time.perf_counter()
    bpf1 = BatchPowerFlow(net, threads=1)
    t_build = time.perf_counter() - t0
    t_pgm1, res = _time_batch(bpf1, p, q)
    bpf0 = BatchPowerFlow(net, threads=0)
    t_pgm0, res0 = _time_batch(bpf0, p, q)
    n_threads = os.cpu_count() or 1

    lm = LinearFeederModel(net)
    t0 = time.perf_counter()
    lm.trafo_loading_pct(p, q)
    lm.line_loading_pct(p, q)
    lm.vm_pu(p, q)
    t_lin = time.perf_counter() - t0

    steps = np.linspace(0, n_t - 1, args.pp_steps).astype(int)
    run_pandapower(net, p[:2], q[:2])  # warm up imports and caches
    timings: list[float] = []
    t0 = time.perf_counter()
    ref = run_pandapower(net, p, q, steps=steps, timings=timings)
    t_pp_loop = time.perf_counter() - t0
    t_pp_year = t_pp_loop / len(steps) * n_t

    t_ts_year = float("nan")
    if args.ts_steps:
        ts_steps = np.linspace(0, n_t - 1, args.ts_steps).astype(int)
        t_ts = _time_run_timeseries(net, p, q, ts_steps)
        t_ts_year = t_ts / len(ts_steps) * n_t

    d_vm = np.nanmax(np.abs(res.vm_pu[steps] - ref.vm_pu))
    d_ll = np.max(np.abs(res.line_loading_pct[steps] - ref.line_loading_pct))
    d_tl = np.max(np.abs(res.trafo_loading_pct[steps] - ref.trafo_loading_pct))
    d_thr = np.nanmax(np.abs(res.vm_pu - res0.vm_pu))

    print(
        f"feeder {f.name}: {len(net.bus)} buses, {len(net.line)} lines, {len(net.load)} loads "
        f"({f.n_households} households), {n_t} steps of 15 min"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {n_threads} hardware threads; "
        f"PGM model build {t_build * 1e3:.0f} ms\n"
    )
    print("| engine | one year (35,040 steps) | per step | speed-up vs runpp loop |")
    print("|---|---|---|---|")
    rows = [
        ("power-grid-model batch, 1 thread", t_pgm1),
        (f"power-grid-model batch, {n_threads} threads", t_pgm0),
        (f"pandapower `runpp` loop ({len(steps)} steps, extrapolated)", t_pp_year),
    ]
    if args.ts_steps:
        rows.append(
            (f"pandapower `run_timeseries` ({args.ts_steps} steps, extrapolated)", t_ts_year)
        )
    rows.append(("linear model (LinDistFlow) evaluation", t_lin))
    for name, t in rows:
        print(f"| {name} | {t:.2f} s | {t / n_t * 1e3:.3f} ms | {t_pp_year / t:.0f}x |")
    print()
    print(
        f"agreement on {len(steps)} steps, batch vs runpp (trafo_model='pi', ideal ext grid): "
        f"max |dV| {d_vm:.1e} p.u., max |d line loading| {d_ll:.1e} %, "
        f"max |d trafo loading| {d_tl:.1e} %"
    )
    print(f"1 thread vs {n_threads} threads: max |dV| {d_thr:.1e} p.u.")
    print(f"runpp per call: median {np.median(timings) * 1e3:.1f} ms")
    print(
        f"targets: year <= 2 s: {'met' if t_pgm0 <= 2.0 else 'NOT met'} ({t_pgm0:.2f} s); "
        f">= 50x pandapower: {'met' if t_pp_year / t_pgm0 >= 50 else 'NOT met'} "
        f"({t_pp_year / t_pgm0:.0f}x)"
    )


if __name__ == "__main__":
    main()
