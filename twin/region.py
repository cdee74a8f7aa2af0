"""The region study (``twin study=region``): every LV feeder under an MV grid, every contract.

``grid.name`` is a SimBench MV+LV region code (``1-MVLV-semiurb-all-0-sw``; the feeders are
its MV/LV stations with everything below them, :mod:`twin.grid.regions`) or a folder of
pandapower JSON feeders (one per file, named after the file). Each selected feeder runs under
each contract of ``study.contracts`` as an ordinary single run (:func:`twin.pipeline.run`,
:func:`twin.writer.write_run`) into ``feeders/<feeder>/<contract>/``, with the command's own
overrides (scenario, window, weather, measurement, ...). The households of a feeder are drawn
with a seed of its own, :func:`feeder_seed` (``seed`` and the feeder's name), the same under
every contract, so contracts compare on the same households.

Engines:

* ``study.launcher=local``: ``study.n_jobs`` worker processes (joblib, loky), one task per
  (feeder, contract);
* ``study.launcher=slurm``: Slurm job arrays through submitit, one task per batch of feeders
  (packed largest first up to ``study.batch_households`` households; a larger feeder is a task
  of its own), one array per resource class: each task's memory and time limit come from its
  feeders' size and the window (:func:`task_resources`). The study process waits for the
  arrays, like Hydra's submitit launcher.

Failures: a feeder run that fails leaves ``FAILED`` (its one-line error) in its folder and the
others finish; a Slurm task killed for time or memory leaves its unfinished runs without
``DONE``. The study writes its tables over what finished, ``FAILED`` instead of ``DONE`` in
its own folder, and the command ends with one line counting the failures. Running the same
command with ``hydra.run.dir=<the study folder>`` resumes: a feeder run whose folder holds
``DONE`` and the same ``config.yaml`` is not run again.

The MV check (``study.mv_check``, SimBench regions and folders with an ``mv.json``): per
contract, each station's power at its MV side per step (``trafo_p_kw``/``trafo_q_kvar`` of the
feeder's ``feeder.parquet``) is a load of the MV grid at the station's MV bus; the MV loads
keep their SimBench profiles, a station whose feeder was not simulated (not selected, or
failed) its loads' SimBench profiles (no devices); one batch AC power flow
(:class:`twin.grid.powerflow.BatchPowerFlow`, power-grid-model) gives the MV lines' loadings,
the MV voltages and the HV/MV transformers' loading per step.

Files: ``stations.csv`` (every station of the region: rating, households, selected),
``region.csv`` (a row per feeder and contract: status, capacity per household, transformer
and cable peaks, hours over, voltages, service levels, technical risk, bills, run time),
``region_totals.csv`` (a row per contract: feeders, households, the region's coincident peak,
capacity per household across feeders, stations over their rating, service levels, the MV
results), ``mv_steps.parquet`` (per contract and step: the MV grid's worst line, voltages,
HV/MV transformer loading, the stations' total), ``mv_lines.csv`` (each MV line's peak loading
and hours over per contract), ``region.json`` (the totals, the MV KPIs, the failures, the
settings), ``summary.md`` and the figures ``region_stations.png`` (stations ranked by peak
loading, per contract), ``region_capacity.png`` (the distribution of capacity per household
across feeders, per contract) and ``region_mv.png`` (the MV grid's loading duration curves).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import TwinError

log = logging.getLogger("twin")

__all__ = [
    "FeederTask",
    "RegionResult",
    "feeder_seed",
    "plan_region",
    "plot_region",
    "region_feeders",
    "run_region",
    "run_task",
    "run_tasks",
    "task_resources",
    "write_region",
]

#: What :func:`task_resources` assumes a feeder run needs, per household-day of the simulated
#: window (warm-up included), by contract: memory (MB) and CPU time (s) above a fixed part.
#: Measured on this machine (benchmarks/bench_replan.py, bench_run.py; 102 households): a firm
#: year 1,322 MB and ~10 s, a performance year 2,070 MB and ~95 s, with ~450 MB and ~4 s of
#: interpreter, imports and inputs. The limits requested are these x SAFETY (assumption).
MB_PER_HOUSEHOLD_DAY = {"firm": 0.024, "performance": 0.044}
S_PER_HOUSEHOLD_DAY = {"firm": 0.0003, "performance": 0.0026}
BASE_MB, BASE_S, SAFETY = 450.0, 4.0, 2.0

#: Columns of ``region.csv`` taken from each run's kpis.json (those present).
REGION_KPIS = (
    "households",
    "trafo_rating_kva",
    "coincident_peak_kw",
    "coincident_peak_per_household_kw",
    "trafo_peak_kva",
    "trafo_peak_loading_pct",
    "trafo_hours_over_100pct_h",
    "trafo_energy_over_rating_kvah",
    "line_max_loading_pct",
    "lines_n_overloaded",
    "lines_hours_over_100pct_max_h",
    "vm_min_pu",
    "vm_max_pu",
    "voltage_all_compliant",
    "comfort_days_met_share",
    "ev_days_met_share",
    "dhw_days_met_share",
    "technical_risk_events",
    "technical_risk_kwh",
    "energy_import_kwh",
    "bill_mean_eur",
    "dso_revenue_eur",
    "performance_replans_failed",  # the DSO's plans that failed (it falls back to firm)
    "performance_fallback_steps",
    "performance_highs_s",
)


@dataclass(frozen=True)
class FeederTask:
    """One feeder under one contract: what a worker needs (plain data, picklable)."""

    feeder: str
    contract: str
    households: int
    config: dict[str, Any]  # the run's whole config, resolved
    out_dir: str

    def status(self) -> str:
        """Its folder's state: ``done`` (``DONE`` and this task's ``config.yaml``),
        ``failed: <line>`` or ``missing``."""
        from omegaconf import OmegaConf

        from twin.pipeline import config_to_yaml

        return _status(Path(self.out_dir), config_to_yaml(OmegaConf.create(self.config)))


@dataclass
class RegionResult:
    """What the study found: the tables the files are written from."""

    source: str
    stations: pd.DataFrame
    table: pd.DataFrame  # a row per (feeder, contract)
    totals: pd.DataFrame  # a row per contract
    mv_steps: pd.DataFrame | None
    mv_lines: pd.DataFrame | None
    failures: list[str]
    settings: dict[str, Any]
    wall_s: float


def feeder_seed(seed: int, feeder: str) -> int:
    """The seed of a feeder's households: stable across runs, machines and Python versions
    (SHA-256 of ``"<seed>:<feeder>"``), different for every feeder, the same under every
    contract."""
    digest = hashlib.sha256(f"{int(seed)}:{feeder}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def region_feeders(spec: str, cache_dir: Path | None = None) -> tuple[pd.DataFrame, dict[str, str]]:
    """The stations of a region spec (``stations.csv``'s rows) and each feeder's grid spec;
    a folder's feeders are converted into the feeder cache ``cache_dir`` here."""
    from twin.grid.regions import is_region_code, stations

    if is_region_code(spec):
        table = stations(spec)
        return table, {f: f"{spec}:{f}" for f in table.index}
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise TwinError(
            f"study=region needs grid.name to be a SimBench MV+LV region (e.g. "
            f"1-MVLV-semiurb-all-0-sw) or a folder of pandapower .json feeders; {spec!r} is "
            "neither"
        )
    files = sorted(p for p in folder.glob("*.json") if p.stem != "mv")
    if not files:
        raise TwinError(
            f"folder {folder} holds no feeder (*.json besides mv.json): put one pandapower "
            "JSON file per feeder there"
        )
    from twin.grid.feeders import load_feeder
    from twin.grid.ratings import station_rating_kva

    rows = []
    for f in files:
        try:
            feeder = load_feeder(
                f, cache_dir=cache_dir
            )  # converted once here: the workers read the cache
        except TwinError as err:  # its runs fail with this line; the other feeders run
            log.warning("feeder %s: %s", f.name, err)
            rows.append({"feeder": f.stem, "households": 0, "error": str(err)})
            continue
        rows.append(
            {
                "feeder": f.stem,
                "rating_kva": station_rating_kva(feeder.net),
                "households": feeder.n_households,
                "loads": len(feeder.net.load),
                "buses": len(feeder.net.bus),
                "lines": len(feeder.net.line),
                "error": "",
            }
        )
    table = pd.DataFrame(rows).set_index("feeder")
    return table, {f.stem: str(f.resolve()) for f in files}


def _selected(stations: pd.DataFrame, study: Any) -> list[str]:
    names = list(stations.index)
    if study.get("feeders"):
        wanted = [str(f) for f in study.feeders]
        unknown = [f for f in wanted if f not in stations.index]
        if unknown:
            raise TwinError(
                f"study.feeders names {', '.join(unknown[:4])}, not a feeder of this region: "
                f"use its stations' names ({', '.join(names[:4])}, ...)"
            )
        names = wanted
    if study.get("max_feeders"):
        names = names[: int(study.max_feeders)]
    return names


def plan_region(
    spec: str, configs: dict[str, Any], study: Any, out_dir: Path
) -> tuple[pd.DataFrame, list[FeederTask]]:
    """The stations and one task per (selected feeder, contract); ``configs`` holds each
    contract's composed config (without Hydra's node)."""
    from omegaconf import OmegaConf

    from twin.inputs import feeder_cache_dir

    stations, specs = region_feeders(spec, feeder_cache_dir(next(iter(configs.values()))))
    chosen = _selected(stations, study)
    stations = stations.assign(selected=stations.index.isin(chosen))
    tasks = []
    for feeder in chosen:
        for contract, cfg in configs.items():
            c = OmegaConf.to_container(cfg, resolve=True)
            c["grid"]["name"] = specs[feeder]
            c["seed"] = feeder_seed(int(cfg.seed), feeder)
            c["output"]["progress"] = False
            c["output"]["figures"] = bool(study.feeder_figures)
            c["run_name"] = f"{feeder}_{contract}"
            tasks.append(
                FeederTask(
                    feeder=feeder,
                    contract=contract,
                    households=int(stations.loc[feeder, "households"]),
                    config=c,
                    out_dir=str(out_dir / "feeders" / feeder / contract),
                )
            )
    return stations, tasks


# ----------------------------------------------------------------------------------------------
# the workers
# ----------------------------------------------------------------------------------------------


def _status(out_dir: Path, config_yaml: str | None = None) -> str:
    """``done`` (DONE, and the same config where given), ``failed: <line>`` or ``missing``."""
    from twin.writer import DONE, FAILED

    if (out_dir / DONE).is_file():
        if config_yaml is None or (out_dir / "config.yaml").read_text() == config_yaml:
            return "done"
        return "missing"
    if (out_dir / FAILED).is_file():
        return "failed: " + (out_dir / FAILED).read_text().strip()
    return "missing"


def run_task(task: FeederTask) -> dict[str, Any]:
    """Run one feeder under one contract into its folder, unless it is complete with the same
    config. Never raises for a failed run: its one line goes into ``FAILED`` and the result."""
    import gc

    from omegaconf import OmegaConf

    from twin.memory import release_finished_models
    from twin.pipeline import run
    from twin.writer import mark_failed, write_run

    out_dir = Path(task.out_dir)
    cfg = OmegaConf.create(task.config)
    if task.status() == "done":
        return {"feeder": task.feeder, "contract": task.contract, "status": "skipped"}
    t0, c0 = time.perf_counter(), time.process_time()
    handler = None
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(out_dir / "twin.log")
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(levelname)s] %(message)s"))
        log.addHandler(handler)
        log.setLevel(min(log.getEffectiveLevel(), logging.INFO))
        result = run(cfg, progress=False)
        result.timings_s["total_run"] = time.perf_counter() - t0
        release_finished_models()
        gc.collect()
        write_run(result, out_dir)
        status = "done"
        _write_task_info(out_dir, time.perf_counter() - t0, time.process_time() - c0)
    except Exception as err:  # noqa: BLE001 - one feeder failing must not stop the others
        line = f"twin: error: {task.feeder} under {task.contract}: {_error_line(err)}"
        log.error(line)
        mark_failed(out_dir, line)
        status = "failed: " + line
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
        release_finished_models()
        gc.collect()
    return {
        "feeder": task.feeder,
        "contract": task.contract,
        "status": status,
        "run_s": time.perf_counter() - t0,
    }


def _write_task_info(out_dir: Path, wall_s: float, cpu_s: float) -> None:
    """``task.json`` beside a feeder run's files: its wall and CPU time, and the worker
    process's peak resident memory so far (an upper bound on the run's own: a worker runs
    its tasks one after another), the host and the Slurm job."""
    import resource
    import socket

    from twin.writer import atomic_write

    info = {
        "wall_s": wall_s,
        "cpu_s": cpu_s,
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID")),
        "slurm_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"),
    }
    atomic_write(out_dir / "task.json", lambda p: p.write_text(json.dumps(info, indent=1)))


def _error_line(err: BaseException) -> str:
    """One line for a feeder run's error: twin's own message, else the exception's first
    line (a bug: ``TWIN_DEBUG=1`` with the feeder's own ``twin grid.name=...`` shows it)."""
    text = " ".join(str(err).split())
    if isinstance(err, TwinError):
        return text
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename or ''}".rstrip(": ")
    return f"{type(err).__name__}: {text[:200]}"


def run_tasks(tasks: list[FeederTask]) -> list[dict[str, Any]]:
    """A Slurm task's batch: its feeders' runs one after another."""
    return [run_task(t) for t in tasks]


def _run_local(tasks: list[FeederTask], n_jobs: int) -> None:
    if n_jobs == 1 or len(tasks) <= 1:
        for t in tasks:
            _report(run_task(t), len(tasks))
        return
    from joblib import Parallel, delayed

    # largest first: the long runs start early and the small ones fill the gaps
    order = sorted(tasks, key=lambda t: -t.households)
    for out in Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")(
        delayed(run_task)(t) for t in order
    ):
        _report(out, len(tasks))


_DONE_COUNT = [0]


def _report(out: dict[str, Any], n: int) -> None:
    _DONE_COUNT[0] += 1
    took = f" in {out['run_s']:.1f} s" if "run_s" in out else ""
    log.info(
        "[%d/%d] %s %s: %s%s",
        _DONE_COUNT[0],
        n,
        out["feeder"],
        out["contract"],
        out["status"].split(":")[0],
        took,
    )


def task_resources(households: list[int], contracts: list[str], days: float) -> tuple[float, int]:
    """``(mem_gb, timeout_min)`` a Slurm task running ``contracts`` on feeders of these
    ``households`` over ``days`` simulated days needs (:data:`MB_PER_HOUSEHOLD_DAY` ...):
    memory for its largest run (runs follow one another), time for all of them; x SAFETY,
    at least 1 GB and 10 minutes."""
    mb = max(
        BASE_MB + MB_PER_HOUSEHOLD_DAY.get(c, MB_PER_HOUSEHOLD_DAY["performance"]) * h * days
        for h in households
        for c in contracts
    )
    s = sum(
        BASE_S + S_PER_HOUSEHOLD_DAY.get(c, S_PER_HOUSEHOLD_DAY["performance"]) * h * days
        for h in households
        for c in contracts
    )
    mem_gb = max(1.0, math.ceil(SAFETY * mb / 1024 * 4) / 4)  # quarter-GB steps
    return mem_gb, max(10, math.ceil(SAFETY * s / 60))


def _batches(tasks: list[FeederTask], max_households: int) -> list[list[FeederTask]]:
    """The feeders packed, largest first, into batches of up to ``max_households`` (first fit
    decreasing); all of a feeder's contracts go into its batch."""
    by_feeder: dict[str, list[FeederTask]] = {}
    for t in tasks:
        by_feeder.setdefault(t.feeder, []).append(t)
    order = sorted(by_feeder, key=lambda f: -by_feeder[f][0].households)
    bins: list[tuple[int, list[FeederTask]]] = []
    for f in order:
        h = by_feeder[f][0].households
        for i, (load, content) in enumerate(bins):
            if load + h <= max_households:
                bins[i] = (load + h, content + by_feeder[f])
                break
        else:
            bins.append((h, list(by_feeder[f])))
    return [content for _, content in bins]


def _run_slurm(tasks: list[FeederTask], study: Any, out_dir: Path, days: float) -> list[str]:
    """Submit the batches as Slurm arrays (one per resource class) and wait; returns the
    lines of tasks Slurm ended without their result (killed, out of time or memory)."""
    import submitit

    batches = _batches(tasks, int(study.batch_households))
    classes: dict[tuple[float, int], list[list[FeederTask]]] = {}
    for b in batches:
        households = list({t.feeder: t.households for t in b}.values())
        mem_gb, minutes = task_resources(households, sorted({t.contract for t in b}), days)
        key = (float(study.slurm.mem_gb or mem_gb), int(study.slurm.timeout_min or minutes))
        classes.setdefault(key, []).append(b)
    jobs = []
    for (mem_gb, minutes), group in sorted(classes.items()):
        ex = submitit.SlurmExecutor(folder=out_dir / ".submitit" / "%j")
        params: dict[str, Any] = {
            "job_name": "twin-region",
            "time": minutes,
            "mem": f"{int(mem_gb * 1024)}M",
            "cpus_per_task": 1,
            "array_parallelism": int(study.slurm.array_parallelism),
            "setup": list(study.slurm.setup),
        }
        if study.slurm.partition:
            params["partition"] = str(study.slurm.partition)
        if study.slurm.account:
            params["account"] = str(study.slurm.account)
        ex.update_parameters(**params)
        submitted = ex.map_array(run_tasks, group)
        log.info(
            "submitted %d Slurm tasks (array %s): %.2f GB and %d min each",
            len(group),
            submitted[0].job_id.split("_")[0],
            mem_gb,
            minutes,
        )
        jobs += list(zip(submitted, group, strict=True))
    lost = []
    for job, batch in jobs:
        try:
            for out in job.result():
                _report(out, len(tasks))
        except Exception as err:  # noqa: BLE001 - a killed task: its runs have no DONE
            names = ", ".join(sorted({t.feeder for t in batch}))
            lost.append(
                f"Slurm task {job.job_id} ({names}) ended without its result "
                f"({type(err).__name__}: {' '.join(str(err).split())[:160]})"
            )
            log.error(lost[-1])
    return lost


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------


def _collect(tasks: list[FeederTask]) -> pd.DataFrame:
    rows = []
    for t in tasks:
        out = Path(t.out_dir)
        status = t.status()
        row: dict[str, Any] = {"feeder": t.feeder, "contract": t.contract}
        row["status"] = status.split(":")[0]
        row["error"] = status.split(": ", 1)[1] if status.startswith("failed") else ""
        if status == "done":
            k = json.loads((out / "kpis.json").read_text())
            row.update({key: k.get(key) for key in REGION_KPIS})
            info = out / "task.json"
            timings = out / "timings.json"
            if not info.is_file() and timings.is_file():  # a run written before task.json
                row["run_s"] = json.loads(timings.read_text()).get("total_run")
            if info.is_file():
                t = json.loads(info.read_text())
                row.update(
                    run_s=t.get("wall_s"),
                    cpu_s=t.get("cpu_s"),
                    worker_peak_rss_mb=t.get("worker_peak_rss_mb"),
                    slurm_job=t.get("slurm_job_id"),
                )
        else:
            row["households"] = t.households
        rows.append(row)
    return pd.DataFrame(rows)


def _station_series(tasks: list[FeederTask]) -> dict[str, dict[str, pd.DataFrame]]:
    """contract -> feeder -> its feeder.parquet's time, trafo_p_kw and trafo_q_kvar (runs with
    DONE only)."""
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for t in tasks:
        f = Path(t.out_dir) / "feeder.parquet"
        if not (Path(t.out_dir) / "DONE").is_file() or not f.is_file():
            continue
        cols = ["time", "p_households_kw", "trafo_p_kw", "trafo_q_kvar", "trafo_s_kva"]
        frame = pd.read_parquet(f)
        out.setdefault(t.contract, {})[t.feeder] = frame[[c for c in cols if c in frame]]
    return out


def _totals(table: pd.DataFrame, series: dict[str, dict[str, pd.DataFrame]]) -> pd.DataFrame:
    rows = []
    for contract, grp in table.groupby("contract", sort=False):
        done = grp[grp["status"].isin(["done", "skipped"])]
        hh = done["households"].astype(float)
        cap = done["coincident_peak_per_household_kw"].astype(float)
        row: dict[str, Any] = {
            "contract": contract,
            "feeders": len(grp),
            "feeders_done": len(done),
            "feeders_failed": int((grp["status"] == "failed").sum()),
            "households": int(hh.sum()),
        }
        s = series.get(str(contract), {})
        if s:  # the households' net load together (as each feeder's coincident peak), and
            # the stations' power at their MV side together (all loads, losses)
            p_h = np.sum([f["p_households_kw"].to_numpy(float) for f in s.values()], axis=0)
            p_st = np.sum([f["trafo_p_kw"].to_numpy(float) for f in s.values()], axis=0)
            row["region_coincident_peak_kw"] = float(p_h.max())
            row["region_coincident_peak_per_household_kw"] = float(p_h.max() / max(hh.sum(), 1))
            row["region_station_peak_kw"] = float(p_st.max())
        row["station_peaks_sum_kw"] = float(done["coincident_peak_kw"].astype(float).sum())
        if len(done):
            row["capacity_per_household_p10_kw"] = float(np.percentile(cap, 10))
            row["capacity_per_household_median_kw"] = float(np.median(cap))
            row["capacity_per_household_p90_kw"] = float(np.percentile(cap, 90))
            row["capacity_per_household_max_kw"] = float(cap.max())
            row["stations_over_rating"] = int((done["trafo_peak_loading_pct"] > 100).sum())
            row["station_peak_loading_max_pct"] = float(done["trafo_peak_loading_pct"].max())
            row["feeders_with_cable_over_rating"] = int((done["lines_n_overloaded"] > 0).sum())
            row["cable_loading_max_pct"] = float(done["line_max_loading_pct"].max())
            row["vm_min_pu"] = float(done["vm_min_pu"].min())
            w = hh / hh.sum()
            for k in ("comfort_days_met_share", "ev_days_met_share", "dhw_days_met_share"):
                if k in done and done[k].notna().all():
                    row[f"{k}_min"] = float(done[k].min())
                    row[f"{k}_household_weighted"] = float((done[k].astype(float) * w).sum())
            row["technical_risk_events"] = int(done["technical_risk_events"].sum())
            if (
                "performance_replans_failed" in done
                and done["performance_replans_failed"].notna().any()
            ):
                row["performance_replans_failed"] = int(done["performance_replans_failed"].sum())
                row["performance_fallback_steps"] = int(done["performance_fallback_steps"].sum())
        if "cpu_s" in done and done["cpu_s"].notna().any():
            row["cpu_s"] = float(done["cpu_s"].sum())
            row["run_s_max"] = float(done["run_s"].max())
            row["worker_peak_rss_mb_max"] = float(done["worker_peak_rss_mb"].max())
        rows.append(row)
    return pd.DataFrame(rows).set_index("contract")


def _mv_check(
    spec: str,
    stations: pd.DataFrame,
    series: dict[str, dict[str, pd.DataFrame]],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict[str, Any]]] | None:
    """The MV grid's batch power flow per contract (module docstring), or None without an MV
    grid."""
    from twin.grid.feeders import prepare_net
    from twin.grid.powerflow import BatchPowerFlow
    from twin.grid.regions import is_region_code, mv_net, profile_loads_kw, station_profiles_kw

    if not series:
        return None
    year0 = pd.Timestamp("2025-01-01")
    first = next(iter(next(iter(series.values())).values()))
    times = pd.DatetimeIndex(first["time"])
    rows = ((times - year0) // pd.Timedelta(minutes=15)).to_numpy().astype(np.int64) % 35040
    n_t = len(rows)
    if is_region_code(spec):
        mv, station_load = mv_net(spec)
        others = mv.load.index.difference(station_load.to_numpy())
        p_other, q_other = profile_loads_kw(spec, others.to_numpy(), rows)

        def stand_in(feeders: list[str]) -> tuple[np.ndarray, np.ndarray]:
            return station_profiles_kw(spec, feeders, rows)
    else:
        path = Path(spec).expanduser() / "mv.json"
        if not path.is_file():
            return None
        from twin.grid.netjson import read_net_json

        mv = read_net_json(path)
        names = mv.load["name"].astype(str)
        station_load = pd.Series(
            {
                f: int(mv.load.index[names == f"station {f}"][0])
                for f in stations.index
                if (names == f"station {f}").any()
            },
            dtype=np.int64,
        )
        others = mv.load.index.difference(station_load.to_numpy())
        sc = mv.load.loc[others, "scaling"].to_numpy(float) * 1e3
        p_other = np.tile(mv.load.loc[others, "p_mw"].to_numpy(float) * sc, (n_t, 1))
        q_other = np.tile(mv.load.loc[others, "q_mvar"].to_numpy(float) * sc, (n_t, 1))

        def stand_in(feeders: list[str]) -> tuple[np.ndarray, np.ndarray]:
            z = np.zeros((n_t, len(feeders)))  # a folder: no profile to stand in
            return z, z

    mv = prepare_net(mv)
    pf = BatchPowerFlow(mv)
    pos_other = mv.load.index.get_indexer(others)
    step_rows: list[pd.DataFrame] = []
    line_rows: list[pd.DataFrame] = []
    kpis: dict[str, dict[str, Any]] = {}
    hvmv = mv.trafo.index.to_numpy()
    line_names = (
        mv.line["name"].astype(str).to_numpy() if "name" in mv.line else mv.line.index.astype(str)
    )
    station_cols = mv.load.index.get_indexer(station_load.to_numpy())
    missing_all = sorted(
        {str(f) for f in station_load.index} - set.intersection(*[set(b) for b in series.values()])
    )
    # every station missing under some contract: their stand-ins, computed once
    p_in, q_in = stand_in(missing_all) if missing_all else (None, None)
    for contract, by_feeder in series.items():
        if len(by_feeder) and any(len(f) != n_t for f in by_feeder.values()):
            raise TwinError(f"the feeder runs of {contract} cover different windows: re-run them")
        p = np.zeros((n_t, len(mv.load)))
        q = np.zeros_like(p)
        p[:, pos_other] = p_other
        q[:, pos_other] = q_other
        simulated = 0
        for feeder, col in zip(station_load.index, station_cols, strict=True):
            frame = by_feeder.get(str(feeder))
            if frame is not None:
                p[:, col] = frame["trafo_p_kw"].to_numpy(float)
                if "trafo_q_kvar" in frame:
                    q[:, col] = frame["trafo_q_kvar"].to_numpy(float)
                simulated += 1
            else:
                k = missing_all.index(str(feeder))
                p[:, col], q[:, col] = p_in[:, k], q_in[:, k]
        res = pf.run(p, q)
        ll = res.line_loading_pct
        vm = res.vm_pu
        tl = res.trafo_loading_pct
        dt_h = 0.25
        step_rows.append(
            pd.DataFrame(
                {
                    "contract": contract,
                    "time": times,
                    "stations_p_kw": p[:, mv.load.index.get_indexer(station_load.to_numpy())].sum(
                        axis=1
                    ),
                    "mv_line_loading_max_pct": ll.max(axis=1),
                    "mv_vm_min_pu": np.nanmin(vm, axis=1),
                    "mv_vm_max_pu": np.nanmax(vm, axis=1),
                    "mv_trafo_loading_max_pct": tl.max(axis=1) if tl.shape[1] else np.nan,
                    "mv_losses_kw": res.losses_kw,
                }
            )
        )
        line_rows.append(
            pd.DataFrame(
                {
                    "contract": contract,
                    "line": mv.line.index,
                    "name": line_names,
                    "peak_loading_pct": ll.max(axis=0),
                    "hours_over_100pct_h": (ll > 100).sum(axis=0) * dt_h,
                }
            )
        )
        worst = int(ll.max(axis=0).argmax())
        kpis[contract] = {
            "mv_stations_simulated": simulated,
            "mv_stations_stand_in": len(station_load) - simulated,
            "mv_line_max_loading_pct": float(ll.max()),
            "mv_line_worst": str(line_names[worst]),
            "mv_lines_over_100pct": int((ll.max(axis=0) > 100).sum()),
            "mv_line_hours_over_100pct_max_h": float((ll > 100).sum(axis=0).max() * dt_h),
            "mv_vm_min_pu": float(np.nanmin(vm)),
            "mv_vm_max_pu": float(np.nanmax(vm)),
            "mv_trafo_peak_loading_pct": float(tl.max()) if tl.size else None,
            "mv_trafo_units": len(hvmv),
            "mv_region_peak_mw": float(res.trafo_p_kw.sum(axis=1).max() / 1e3)
            if res.trafo_p_kw.size
            else None,
            "mv_losses_mwh": float(res.losses_kw.sum() * dt_h / 1e3),
        }
    return pd.concat(step_rows, ignore_index=True), pd.concat(line_rows, ignore_index=True), kpis


def run_region(cfg: Any, configs: dict[str, Any], out_dir: Path) -> RegionResult:
    """Plan, run (locally or on Slurm) and collect the region study of ``cfg.study``."""
    t0 = time.perf_counter()
    study = cfg.study
    spec = str(cfg.grid.name)
    stations, tasks = plan_region(spec, configs, study, out_dir)
    days = float(cfg.sim.days) + float(cfg.sim.warmup_days)
    n_feeders = int(stations["selected"].sum())
    log.info(
        "region %s: %d of %d feeders (%d households) x %d contracts = %d runs, launcher %s",
        spec,
        n_feeders,
        len(stations),
        int(stations.loc[stations["selected"], "households"].sum()),
        len(configs),
        len(tasks),
        study.launcher,
    )
    _DONE_COUNT[0] = 0
    lost: list[str] = []
    if study.launcher == "slurm":
        todo = [t for t in tasks if t.status() != "done"]
        if todo:
            lost = _run_slurm(todo, study, out_dir, days)
    else:
        n_jobs = int(study.n_jobs)
        _run_local(tasks, (os.cpu_count() or 1) if n_jobs == -1 else n_jobs)
    table = _collect(tasks)
    series = _station_series(tasks)
    totals = _totals(table, series)
    mv_steps = mv_lines = None
    if study.mv_check:
        mv = _mv_check(spec, stations, series)
        if mv is not None:
            mv_steps, mv_lines, mv_kpis = mv
            for contract, k in mv_kpis.items():
                for key, value in k.items():
                    totals.loc[contract, key] = value
    failures = [
        f"{r.feeder} under {r.contract}: {r.error or 'no result (the task was killed?)'}"
        for r in table.itertuples()
        if r.status not in ("done", "skipped")
    ]
    failures += lost
    settings = {
        "grid": spec,
        "contracts": list(configs),
        "scenario": str(cfg.scenario.name),
        "start": str(cfg.sim.start),
        "days": int(cfg.sim.days),
        "seed": int(cfg.seed),
        "launcher": str(study.launcher),
        "feeders_selected": n_feeders,
        "feeders_in_region": len(stations),
    }
    if "cpu_s" in table and table["cpu_s"].notna().any():
        cpu = float(table["cpu_s"].sum())
        longest = float(table["run_s"].max())
        settings["compute"] = {
            "runs_timed": int(table["cpu_s"].notna().sum()),
            "cpu_s": cpu,
            "longest_run_s": longest,
            "worker_peak_rss_mb_max": float(table["worker_peak_rss_mb"].max()),
            # a lower bound: every run a task of its own, no queueing, the same per-core speed
            "projected_wall_s_on_256_cores": max(cpu / 256, longest),
        }
    return RegionResult(
        source=spec,
        stations=stations,
        table=table,
        totals=totals,
        mv_steps=mv_steps,
        mv_lines=mv_lines,
        failures=failures,
        settings=settings,
        wall_s=time.perf_counter() - t0,
    )


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------


#: The totals ``summary.md`` shows (those present); the terminal shows :data:`TERMINAL_TOTALS`.
SUMMARY_TOTALS = (
    "feeders_done",
    "households",
    "region_coincident_peak_per_household_kw",
    "capacity_per_household_median_kw",
    "capacity_per_household_p90_kw",
    "stations_over_rating",
    "station_peak_loading_max_pct",
    "feeders_with_cable_over_rating",
    "comfort_days_met_share_min",
    "ev_days_met_share_min",
    "mv_line_max_loading_pct",
    "mv_vm_min_pu",
    "mv_trafo_peak_loading_pct",
)
TERMINAL_TOTALS = (
    "feeders_done",
    "households",
    "region_coincident_peak_per_household_kw",
    "capacity_per_household_median_kw",
    "stations_over_rating",
    "mv_line_max_loading_pct",
    "mv_vm_min_pu",
)


def totals_table(res: RegionResult, columns: tuple[str, ...] = TERMINAL_TOTALS) -> str:
    """The totals' ``columns`` (those present) as a Markdown table, a row per contract."""
    return res.totals[[c for c in columns if c in res.totals]].to_markdown(floatfmt=".3f")


def region_markdown(res: RegionResult) -> str:
    s = res.settings
    cols = [c for c in SUMMARY_TOTALS if c in res.totals]
    lines = [
        f"# Region {s['grid']}",
        "",
        f"{s['feeders_selected']} of {s['feeders_in_region']} feeders · {s['scenario']} · "
        f"{s['start']} + {s['days']} d · seed {s['seed']} · contracts {', '.join(s['contracts'])}"
        f" · {res.wall_s:.0f} s ({s['launcher']})",
        "",
        res.totals[cols].T.to_markdown(floatfmt=".3f"),
        "",
    ]
    if res.failures:
        lines += ["## Failures", "", *[f"- {f}" for f in res.failures], ""]
    return "\n".join(lines)


def write_region(res: RegionResult, out_dir: Path, figures: bool = True) -> Path:
    """Write the study's files (module docstring) into ``out_dir``; ``DONE`` last, or
    ``FAILED`` (the failures counted) when a feeder run failed."""
    from twin.writer import RunFolder, mark_failed, write_json

    with RunFolder(out_dir) as folder:
        st = folder.stage
        res.stations.to_csv(st / "stations.csv")
        res.table.to_csv(st / "region.csv", index=False, float_format="%.6g")
        res.totals.to_csv(st / "region_totals.csv", float_format="%.6g")
        if res.mv_steps is not None:
            res.mv_steps.to_parquet(st / "mv_steps.parquet", index=False)
            res.mv_lines.to_csv(st / "mv_lines.csv", index=False, float_format="%.6g")
        write_json(
            st / "region.json",
            {
                **res.settings,
                "wall_s": res.wall_s,
                "totals": res.totals.replace({np.nan: None}).to_dict(orient="index"),
                "failures": res.failures,
            },
        )
        (st / "summary.md").write_text(region_markdown(res))
        if figures:
            plot_region(res, st)
    if res.failures:
        mark_failed(out_dir, f"{len(res.failures)} feeder run(s) failed: {res.failures[0]}")
    return out_dir


def _subtitle(res: RegionResult) -> str:
    s = res.settings
    return (
        f"{s['grid']} · {s['feeders_selected']} of {s['feeders_in_region']} feeders · "
        f"{s['scenario']} · {s['start']} + {s['days']} d"
    )


def plot_region(res: RegionResult, folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """The study's figures (module docstring) into ``folder``; returns what each drew."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.grid.compliance import loading_duration_curve

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(folder / name, dpi=110, format="png")
        plt.close(fig)

    done = res.table[res.table["status"].isin(["done", "skipped"])]
    contracts = list(dict.fromkeys(res.table["contract"]))
    drawn: dict[str, dict[str, np.ndarray]] = {}
    if not len(done):
        return drawn
    # stations ranked by peak loading under the first contract; every contract on that order
    peak = done.pivot(index="feeder", columns="contract", values="trafo_peak_loading_pct")
    cap = done.pivot(index="feeder", columns="contract", values="coincident_peak_per_household_kw")
    order = (
        peak[contracts[0]].sort_values(ascending=False).index
        if contracts[0] in peak
        else peak.index
    )
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    x = np.arange(1, len(order) + 1)
    data: dict[str, np.ndarray] = {}
    for c in contracts:
        if c not in peak:
            continue
        y = peak.loc[order, c].to_numpy(float)
        data[c] = y
        ax1.plot(x, y, marker="o", ms=3, lw=1, label=c)
        ax2.plot(x, cap.loc[order, c].to_numpy(float), marker="o", ms=3, lw=1, label=c)
    ax1.axhline(100, color="crimson", ls="--", lw=1, label="rating")
    ax1.set_ylabel("station peak loading (% of rating)")
    ax2.set_ylabel("capacity per household (kW)")
    ax2.set_xlabel(f"station, ranked by its peak loading under {contracts[0]}")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax1.set_title(
        f"MV/LV stations by peak loading, per contract\n{_subtitle(res)}", fontsize=9, loc="left"
    )
    save(fig, "region_stations.png")
    drawn["region_stations"] = data | {"order": np.asarray(order)}

    # capacity per household across feeders: household-weighted cumulative distribution
    fig, ax = plt.subplots(figsize=(8, 5))
    data = {}
    for c in contracts:
        g = done[done["contract"] == c].sort_values("coincident_peak_per_household_kw")
        if not len(g):
            continue
        v = g["coincident_peak_per_household_kw"].to_numpy(float)
        w = np.cumsum(g["households"].to_numpy(float))
        share = w / w[-1]
        data[c] = np.column_stack([v, share])
        ax.step(v, share, where="post", label=f"{c} (median {np.median(v):.2f} kW)")
    ax.set_xlabel("capacity per household: the feeder's coincident peak / households (kW)")
    ax.set_ylabel("share of the region's households (cumulative)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Capacity per household across feeders\n{_subtitle(res)}", fontsize=9, loc="left")
    save(fig, "region_capacity.png")
    drawn["region_capacity"] = data

    if res.mv_steps is not None and len(res.mv_steps):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
        data = {}
        for c, g in res.mv_steps.groupby("contract", sort=False):
            ll = loading_duration_curve(g["mv_line_loading_max_pct"].to_numpy(float))
            vm = np.sort(g["mv_vm_min_pu"].to_numpy(float))
            share = np.arange(1, len(ll) + 1) / len(ll) * 100
            data[str(c)] = ll
            ax1.plot(share, ll, label=str(c))
            ax2.plot(share, vm, label=str(c))
        ax1.axhline(100, color="crimson", ls="--", lw=1)
        ax1.set_ylabel("most loaded MV line (% of ampacity)")
        ax2.set_ylabel("lowest MV voltage (p.u.)")
        for ax in (ax1, ax2):
            ax.set_xlabel("share of the steps (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        ax1.set_title(
            f"MV grid per contract, duration curves\n{_subtitle(res)}", fontsize=9, loc="left"
        )
        save(fig, "region_mv.png")
        drawn["region_mv"] = data
    return drawn
