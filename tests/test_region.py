"""The region study (issue 17): the split of an MV+LV region into LV feeders is exact, the MV
check reproduces the region's own power flow, and the study's tables are what its feeder runs
wrote; failures are reported, re-runs resume, and the Slurm path runs a region week."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
from conftest import sacct_states

from twin.grid.feeders import load_feeder, prepare_net
from twin.grid.regions import (
    feeder_net,
    mv_net,
    profile_loads_kw,
    region_net,
    split_feeder_spec,
    stations,
)

REGION = "1-MVLV-rural-all-0-sw"  # 90 stations, 4,623 households, the smallest region
SEMIURB = "1-MVLV-semiurb-all-0-sw"


def _runpp(net) -> None:
    pp.runpp(
        net, algorithm="nr", trafo_model="pi", tolerance_mva=1e-10, calculate_voltage_angles=True
    )


@pytest.fixture(scope="module")
def solved_region():
    """The whole semi-urban region solved by pandapower at one step of its SimBench profiles
    (the peak of the households' H0 profile on 1 Dec), generation out of service as twin has it."""
    net = prepare_net(region_net(SEMIURB))
    step = 334 * 96 + 18 * 4  # 1 Dec 2025, 18:00
    p, q = profile_loads_kw(SEMIURB, net.load.index.to_numpy(), np.array([step]))
    net.load["p_mw"], net.load["q_mvar"], net.load["scaling"] = p[0] / 1e3, q[0] / 1e3, 1.0
    _runpp(net)
    return net


def test_stations_partition_the_region():
    """Every LV bus is in exactly one feeder; the feeders' households add up to the region's."""
    net = region_net(SEMIURB)
    st = stations(SEMIURB)
    assert len(st) == 110
    assert st["households"].sum() == int(
        (net.load["profile"].astype(str).str.startswith("H0") & net.load["in_service"]).sum()
    )
    lv = set(net.bus.index[net.bus["vn_kv"] < 1])
    seen: list[int] = []
    for f in st.index[::22]:  # a sample of feeders: their buses are LV, below their station
        sub = feeder_net(SEMIURB, f)
        buses = set(sub.bus.index) - {int(st.loc[f, "mv_bus"])}
        assert buses <= lv
        seen += list(buses)
        assert len(sub.trafo) == 1 and int(sub.trafo.index[0]) == int(st.loc[f, "trafo"])
        assert len(sub.ext_grid) == 1 and int(sub.ext_grid.bus.iloc[0]) == int(st.loc[f, "mv_bus"])
    assert len(seen) == len(set(seen)), "a bus belongs to two feeders"
    assert st["buses"].sum() == len(lv), "the feeders do not cover the LV buses"


@pytest.mark.parametrize("feeder", ["LV2.201", "LV4.212", "LV5.216"])
def test_feeder_cut_out_equals_the_region(solved_region, feeder):
    """A feeder cut out of the region, fed at the voltage its station's MV bus has in the
    region's power flow, carries the same loads to the same voltages and transformer power."""
    st = stations(SEMIURB).loc[feeder]
    sub = prepare_net(feeder_net(SEMIURB, feeder))
    mv = int(st["mv_bus"])
    sub.ext_grid["vm_pu"] = solved_region.res_bus.at[mv, "vm_pu"]
    sub.ext_grid["va_degree"] = solved_region.res_bus.at[mv, "va_degree"]
    for col in ("p_mw", "q_mvar", "scaling"):
        sub.load[col] = solved_region.load.loc[sub.load.index, col]
    _runpp(sub)
    lv = sub.bus.index.difference([mv])
    err = (sub.res_bus.loc[lv, "vm_pu"] - solved_region.res_bus.loc[lv, "vm_pu"]).abs().max()
    assert err < 1e-8
    t = int(st["trafo"])
    assert sub.res_trafo.at[t, "p_hv_mw"] == pytest.approx(
        solved_region.res_trafo.at[t, "p_hv_mw"], abs=1e-9
    )
    assert sub.res_trafo.at[t, "q_hv_mvar"] == pytest.approx(
        solved_region.res_trafo.at[t, "q_hv_mvar"], abs=1e-9
    )


def test_mv_net_with_station_loads_reproduces_the_region(solved_region):
    """The MV check's decomposition is exact: the MV grid with each station replaced by a load
    of the power its transformer draws at the MV side (what a feeder run measures) has the
    region's MV voltages and line loadings, in power-grid-model's batch flow."""
    from twin.grid.powerflow import BatchPowerFlow

    mv, station_load = mv_net(SEMIURB)
    mv = prepare_net(mv)
    st = stations(SEMIURB)
    p = np.zeros(len(mv.load))
    q = np.zeros(len(mv.load))
    others = mv.load.index.difference(station_load.to_numpy())
    pos = mv.load.index.get_indexer(others)
    p[pos] = solved_region.load.loc[others, "p_mw"].to_numpy() * 1e3
    q[pos] = solved_region.load.loc[others, "q_mvar"].to_numpy() * 1e3
    for f, j in station_load.items():
        t = int(st.loc[f, "trafo"])
        p[mv.load.index.get_loc(j)] = solved_region.res_trafo.at[t, "p_hv_mw"] * 1e3
        q[mv.load.index.get_loc(j)] = solved_region.res_trafo.at[t, "q_hv_mvar"] * 1e3
    res = BatchPowerFlow(mv).run(p[None], q[None])
    vm_region = solved_region.res_bus.loc[mv.bus.index, "vm_pu"].to_numpy()
    assert np.nanmax(np.abs(res.vm_pu[0] - vm_region)) < 1e-6
    ll_region = solved_region.res_line.loc[mv.line.index, "loading_percent"].to_numpy()
    assert np.max(np.abs(res.line_loading_pct[0] - ll_region)) < 1e-4


def test_a_region_feeder_is_a_grid_spec(tmp_path):
    assert split_feeder_spec(f"{SEMIURB}:LV1.201") == (SEMIURB, "LV1.201")
    assert split_feeder_spec("1-LV-urban6--0-sw") is None
    f = load_feeder(f"{SEMIURB}:LV2.201", cache_dir=tmp_path)
    assert f.n_households == int(stations(SEMIURB).at["LV2.201", "households"])
    assert f.has_simbench_profiles


def test_region_code_alone_is_refused_with_the_fix(twin_exe, tmp_path):
    proc = subprocess.run(
        [twin_exe, f"grid.name={SEMIURB}", f"hydra.run.dir={tmp_path / 'r'}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("twin: error: ") and "study=region" in line and f"{SEMIURB}:" in line
    proc = subprocess.run(
        [
            twin_exe,
            "study=region",
            f"grid.name={SEMIURB}",
            "study.feeders=[LV9.999]",
            f"hydra.run.dir={tmp_path / 's'}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "LV9.999" in proc.stderr.strip().splitlines()[-1]


def test_task_resources_and_batches():
    """Memory follows the largest run of a task, time all of them; batches never exceed the
    household budget unless a feeder alone does, and keep a feeder's contracts together."""
    from twin.region import FeederTask, _batches, task_resources

    m1, t1 = task_resources([100], ["firm"], 9)
    m2, t2 = task_resources([100, 100], ["firm"], 9)
    assert m1 == m2 and t2 >= t1
    m3, t3 = task_resources([100], ["firm", "performance"], 374)
    assert m3 > m1 and t3 >= t1
    m4, t4 = task_resources([400] * 4, ["firm", "performance"], 374)
    assert m4 > m3 and t4 > max(t3, 10)
    tasks = [
        FeederTask(f"f{i}", c, h, {}, "")
        for i, h in enumerate([500, 300, 200, 100, 90, 10, 3, 3])
        for c in ("firm", "performance")
    ]
    batches = _batches(tasks, 400)
    assert sorted(t for b in batches for t in [x.feeder + x.contract for x in b]) == sorted(
        t.feeder + t.contract for t in tasks
    )
    for b in batches:
        hh = {t.feeder: t.households for t in b}
        assert sum(hh.values()) <= 400 or len(hh) == 1
        for f in hh:
            assert {t.contract for t in b if t.feeder == f} == {"firm", "performance"}


# ----------------------------------------------------------------------------- the study


def _study(
    twin_exe,
    out: Path,
    *extra: str,
    cwd: Path,
    grid: str | Path = REGION,
    days: int = 1,
    warmup_days: int = 1,
    timeout: int = 900,
) -> subprocess.CompletedProcess:
    """``twin study=region`` of ``grid`` into ``out``, the feeder cache under ``cwd``."""
    return subprocess.run(
        [
            twin_exe,
            "study=region",
            f"grid.name={grid}",
            f"sim.days={days}",
            f"sim.warmup_days={warmup_days}",
            "output.elements=none",
            f"hydra.run.dir={out}",
            f"paths.cache_dir={cwd / 'cache'}",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def _check_tables(out: Path) -> pd.DataFrame:
    """region.csv and region_totals.csv recomputed from the feeder runs' own files."""
    table = pd.read_csv(out / "region.csv")
    totals = pd.read_csv(out / "region_totals.csv", index_col="contract")
    for r in table.itertuples():
        run = out / "feeders" / r.feeder / r.contract
        k = json.loads((run / "kpis.json").read_text())
        for key in (
            "households",
            "coincident_peak_per_household_kw",
            "trafo_peak_loading_pct",
            "line_max_loading_pct",
            "comfort_days_met_share",
        ):
            assert getattr(r, key) == pytest.approx(k[key], rel=1e-5), (r.feeder, key)
    for contract, grp in table.groupby("contract"):
        frames = [
            pd.read_parquet(out / "feeders" / f / contract / "feeder.parquet") for f in grp.feeder
        ]
        p_h = np.sum([f["p_households_kw"].to_numpy() for f in frames], axis=0)
        assert totals.at[contract, "region_coincident_peak_kw"] == pytest.approx(
            p_h.max(), rel=1e-5
        )
        assert totals.at[contract, "households"] == grp["households"].sum()
        # the MV grid saw the stations' measured power at every step
        mv = pd.read_parquet(out / "mv_steps.parquet")
        mv = mv[mv["contract"] == contract]
        p_st = np.sum([f["trafo_p_kw"].to_numpy() for f in frames], axis=0)
        stand_in = mv["stations_p_kw"].to_numpy() - p_st
        assert len(mv) == len(p_st)
        assert np.all(stand_in >= 0)  # the other stations' SimBench loads are consumption
    return table


def test_region_study_local(twin_exe, tmp_path):
    """Three feeders x two contracts on two local workers: the tables are the feeder runs'
    own, households are seeded per feeder (different feeders, the same under both contracts),
    a second run resumes without running anything again."""
    out = tmp_path / "study"
    proc = _study(
        twin_exe, out, "study.feeders=[LV1.101,LV2.101,LV1.102]", "study.n_jobs=2", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "DONE").is_file()
    table = _check_tables(out)
    assert set(table["status"]) == {"done"} and len(table) == 6
    for f in ("LV1.101", "LV2.101", "LV1.102"):
        cfgs = [
            (out / "feeders" / f / c / "config.yaml").read_text() for c in ("firm", "performance")
        ]
        seeds = {ln for cfg in cfgs for ln in cfg.splitlines() if ln.startswith("seed:")}
        assert len(seeds) == 1, f"{f}: the contracts saw different households"
    seeds = {
        next(
            ln
            for ln in (out / "feeders" / f / "firm" / "config.yaml").read_text().splitlines()
            if ln.startswith("seed:")
        )
        for f in ("LV1.101", "LV2.101", "LV1.102")
    }
    assert len(seeds) == 3
    for name in (
        "region_stations.png",
        "region_capacity.png",
        "region_mv.png",
        "summary.md",
        "stations.csv",
    ):
        assert (out / name).is_file(), name
    before = {p: p.stat().st_mtime_ns for p in out.glob("feeders/*/*/kpis.json")}
    t0 = time.perf_counter()
    again = _study(
        twin_exe, out, "study.feeders=[LV1.101,LV2.101,LV1.102]", "study.n_jobs=2", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in out.glob("feeders/*/*/kpis.json")} == before
    assert "skipped" in again.stderr + again.stdout
    print(f"resume: {time.perf_counter() - t0:.1f} s")


def test_a_failing_feeder_is_reported_and_the_rest_finish(twin_exe, tmp_path):
    """A folder of feeders, one of them broken: the others finish, the broken one leaves
    FAILED, the call ends with one line and exit 2; once mended, the re-run runs only it."""
    folder = tmp_path / "feeders"
    folder.mkdir()
    for f in ("LV1.101", "LV1.102"):
        pp.to_json(feeder_net(REGION, f), str(folder / f"{f}.json"))
    broken = feeder_net(REGION, "LV1.103")
    broken.line["length_km"] = -1.0
    pp.to_json(broken, str(folder / "LV1.103.json"))
    out = tmp_path / "study"
    args = ["study.contracts=[firm]", "study.n_jobs=1"]

    def study() -> subprocess.CompletedProcess:
        return _study(twin_exe, out, *args, cwd=tmp_path, grid=folder, warmup_days=0)

    proc = study()
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("twin: error: 1 of 3 feeder runs") and "LV1.103" in line
    table = pd.read_csv(out / "region.csv").set_index("feeder")
    assert table.loc[["LV1.101", "LV1.102"], "status"].eq("done").all()
    assert table.at["LV1.103", "status"] == "failed" and "length_km" in table.at["LV1.103", "error"]
    assert (out / "FAILED").is_file() and not (out / "DONE").exists()
    done = {p: p.stat().st_mtime_ns for p in out.glob("feeders/*/*/kpis.json")}
    # mend it: the re-run runs the mended feeder only
    pp.to_json(feeder_net(REGION, "LV1.103"), str(folder / "LV1.103.json"))
    proc = study()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in done} == done
    table = pd.read_csv(out / "region.csv")
    assert list(table["status"]) == ["done"] * 3
    assert (out / "DONE").is_file() and not (out / "FAILED").exists()
    assert not (out / "mv_steps.parquet").exists()  # a folder without mv.json: no MV check


def test_a_feeder_failing_in_its_run(twin_exe, tmp_path):
    """A feeder that fails while it runs (here: the performance contract on a meshed feeder
    is refused) is reported with its one line; its other contract and the other feeders finish;
    the study's folder holds FAILED and its tables."""
    folder = tmp_path / "feeders"
    folder.mkdir()
    pp.to_json(feeder_net(REGION, "LV1.101"), str(folder / "a.json"))
    mesh = feeder_net(REGION, "LV1.102")
    lines = mesh.line.index
    pp.create_line_from_parameters(
        mesh,
        from_bus=int(mesh.line.at[lines[0], "from_bus"]),
        to_bus=int(mesh.line.at[lines[-1], "to_bus"]),
        length_km=0.05,
        r_ohm_per_km=0.2,
        x_ohm_per_km=0.08,
        c_nf_per_km=0.0,
        max_i_ka=0.2,
    )
    pp.to_json(mesh, str(folder / "b.json"))
    out = tmp_path / "study"
    proc = _study(twin_exe, out, "study.n_jobs=1", cwd=tmp_path, grid=folder, warmup_days=0)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("twin: error: 1 of 4 feeder runs") and "hydra.run.dir=" in line
    table = pd.read_csv(out / "region.csv").set_index(["feeder", "contract"])
    assert table.loc[("b", "performance"), "status"] == "failed"
    assert (
        "radial" in table.loc[("b", "performance"), "error"]
        or "mesh" in table.loc[("b", "performance"), "error"]
    )
    assert (table.drop(("b", "performance"))["status"] == "done").all()
    assert (out / "FAILED").is_file() and not (out / "DONE").exists()
    assert (out / "feeders" / "b" / "performance" / "FAILED").is_file()


@pytest.mark.slurm
@pytest.mark.slow
def test_region_week_on_slurm(twin_exe, tmp_path, slurm):
    """A region week of eight feeders under two contracts through the real Slurm: Slurm array
    tasks (batches of feeders), every run complete, the tables the runs' own."""
    out = tmp_path / "study"
    try:
        proc = _study(
            twin_exe,
            out,
            "study.max_feeders=8",
            "study.launcher=slurm",
            f"study.slurm.partition={slurm}",
            "study.batch_households=12",
            cwd=tmp_path,
            days=7,  # the winter week
            warmup_days=2,
            timeout=1200,
        )
    finally:
        ids = {p.name for p in (out / ".submitit").glob("*_*") if p.is_dir()}
    if proc.returncode != 0 and ids:
        subprocess.run(["scancel", *sorted({j.split("_")[0] for j in ids})], timeout=30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = _check_tables(out)
    assert len(table) == 16 and set(table["status"]) == {"done"}
    assert len(ids) == 2, f"8 feeders of 3 households in batches of 12: 2 tasks, got {ids}"
    deadline = time.monotonic() + 60
    states = {}
    while time.monotonic() < deadline:
        states = sacct_states(ids)
        if len(states) == len(ids) and all(s.startswith("COMPLETED") for s in states.values()):
            break
        time.sleep(2)
    assert all(s.startswith("COMPLETED") for s in states.values()), states
