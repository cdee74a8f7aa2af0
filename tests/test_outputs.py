"""What a run folder holds: element results equal the in-memory results, the folder describes
itself (version, scenario, network, metadata, summary), the pandapower round trip reproduces
the stored state, and the terminal output marks broken limits and stays clean when piped."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from omegaconf import OmegaConf

import twin
from twin.grid.compliance import station_of
from twin.grid.ratings import line_ampacity_ka
from twin.result import EXACT_COLUMNS
from twin.writer import write_run, write_tidy_parquet

REPO = Path(__file__).resolve().parents[1]


def _with_output(result, **output):
    cfg = OmegaConf.create(OmegaConf.to_container(result.cfg))
    for k, v in output.items():
        cfg.output[k] = v
    return dataclasses.replace(result, cfg=cfg)


@pytest.fixture(scope="module")
def run_dir(day_result, tmp_path_factory):
    return write_run(day_result, tmp_path_factory.mktemp("out") / "run")


# ------------------------------------------------------------------------------- elements
def test_bus_line_and_transformer_files_equal_the_results(day_result, run_dir):
    g, net = day_result.grid, day_result.feeder.net
    t = g.n_steps
    buses = pd.read_parquet(run_dir / "buses.parquet")
    assert len(buses) == t * len(net.bus)
    assert {"time", "step", "bus", "bus_name", "vn_kv", "lv", "vm_pu"} <= set(buses.columns)
    vm = buses.pivot(index="step", columns="bus", values="vm_pu")
    np.testing.assert_allclose(vm[g.bus_index].to_numpy(), g.vm_pu, atol=1e-6)
    names = buses.drop_duplicates("bus").set_index("bus")["bus_name"].astype(str)
    assert (names.loc[net.bus.index] == net.bus["name"].astype(str)).all()
    # the MV bus of the external grid is in the file, marked as not LV
    slack = int(net.ext_grid.bus.iloc[0])
    assert not buses.loc[buses.bus == slack, "lv"].any()
    assert buses.loc[buses.bus == slack, "vn_kv"].iloc[0] > 1.0

    lines = pd.read_parquet(run_dir / "lines.parquet")
    assert len(lines) == t * len(net.line)
    ll = lines.pivot(index="step", columns="line", values="loading_pct")[g.line_index]
    np.testing.assert_allclose(ll.to_numpy(), g.line_loading_pct, rtol=1e-6)
    amp = pd.Series(line_ampacity_ka(net), index=net.line.index)
    i_ka = lines.pivot(index="step", columns="line", values="i_ka")[g.line_index]
    np.testing.assert_allclose(
        i_ka.to_numpy(), g.line_loading_pct / 100 * amp.loc[g.line_index].to_numpy(), rtol=1e-6
    )
    p_from = lines.pivot(index="step", columns="line", values="p_from_kw")[g.line_index]
    np.testing.assert_allclose(p_from.to_numpy(), g.line_p_from_kw, rtol=1e-5, atol=1e-4)
    assert lines["time"].iloc[0] == day_result.window.times[0]

    trafos = pd.read_parquet(run_dir / "transformers.parquet")
    assert len(trafos) == t * len(net.trafo) and trafos["in_station"].all()
    st = station_of(g, net)
    p = trafos.groupby("step")["p_hv_kw"].sum().to_numpy()
    np.testing.assert_allclose(p, st.p_kw, rtol=1e-5)
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert trafos.groupby("step")["s_kva"].sum().max() == pytest.approx(
        kpis["trafo_peak_kva"], rel=1e-6
    )


def test_feeder_file_covers_lv_buses_only_and_names_the_worst_line(day_result, run_dir):
    g, net = day_result.grid, day_result.feeder.net
    feeder = pd.read_parquet(run_dir / "feeder.parquet")
    kpis = day_result.kpis
    # as the KPIs: the MV slack bus (1.025 p.u. on urban6 in SimBench) is not counted
    assert feeder.vm_max_pu.max() == pytest.approx(kpis["vm_max_pu"], abs=1e-12)
    assert feeder.vm_min_pu.min() == pytest.approx(kpis["vm_min_pu"], abs=1e-12)
    slack_col = list(g.bus_index).index(int(net.ext_grid.bus.iloc[0]))
    assert (g.vm_pu[:, slack_col] > feeder.vm_max_pu).any()  # the slack would have been the max
    k = int(feeder.vm_min_pu.to_numpy().argmin())
    assert feeder.vm_min_bus.iloc[k] == kpis["vm_min_bus"]
    worst = g.line_loading_pct.argmax(axis=1)
    assert (feeder.line_worst.to_numpy() == g.line_index[worst]).all()
    assert list(feeder.line_worst_name.astype(str)) == [
        str(net.line.at[i, "name"]) for i in g.line_index[worst]
    ]
    np.testing.assert_allclose(feeder.line_loading_max_pct, g.line_loading_pct.max(axis=1))
    np.testing.assert_allclose(feeder.trafo_p_kw, station_of(g, net).p_kw)


def test_worst_n_keeps_the_worst_buses_and_lines_and_none_keeps_none(day_result, tmp_path):
    g = day_result.grid
    out = write_run(_with_output(day_result, elements="worst", worst_n=3), tmp_path / "w")
    buses = pd.read_parquet(out / "buses.parquet")
    lines = pd.read_parquet(out / "lines.parquet")
    assert buses.bus.nunique() == 3 and lines.line.nunique() == 3
    kpis = day_result.kpis
    assert kpis["line_worst"] in set(lines.line)
    assert list(pd.unique(lines.line)) == list(day_result.worst_lines(3))
    # the kept buses are the LV buses furthest from 1 p.u., the MV bus never
    lv = day_result.lv_buses()
    dev = np.abs(g.vm_pu[:, lv] - 1).max(axis=0)
    expected = set(g.bus_index[lv][np.argsort(-dev)[:3]])
    assert set(buses.bus) == expected and buses.lv.all()
    assert {kpis["vm_min_bus"], kpis["vm_max_bus"]} & expected
    none = write_run(_with_output(day_result, elements="none"), tmp_path / "n")
    assert not any((none / f).exists() for f in ("buses.parquet", "lines.parquet", "loads.parquet"))
    assert (none / "feeder.parquet").exists()


# ------------------------------------------------------------------- streamed tidy files
def _reference_households_frame(r):
    """households.parquet as one frame, built the way twin built it before streaming."""
    t, h = r.log["p_net_kw"].shape
    frame = {
        "time": np.repeat(r.window.times.values, h),
        "household": np.tile(np.arange(h, dtype=np.int32), t),
        "load_index": np.tile(r.load_index.astype(np.int32), t),
    }
    for name, values in r.log.items():
        if values.ndim != 2:  # per step only (the weather)
            continue
        frame[name] = values.astype(np.float64 if name in EXACT_COLUMNS else np.float32).ravel()
    frame["ev_home"] = r.home.ravel()
    frame["ev_departure"] = r.trips.departure.ravel()
    frame["ev_trip_kwh"] = r.trips.trip_kwh.ravel()
    return pd.DataFrame(frame)


def _reference_bus_frame(r, labels):
    g, net = r.grid, r.feeder.net
    cols = pd.Index(g.bus_index).get_indexer(labels)
    names = np.asarray(r.element_names("bus"), dtype=object)[cols]
    n_t, n_e = g.n_steps, len(cols)
    return pd.DataFrame(
        {
            "time": np.repeat(r.window.times.values, n_e),
            "step": np.repeat(np.arange(n_t, dtype=np.int32), n_e),
            "bus": np.tile(g.bus_index[cols].astype(np.int32), n_t),
            "bus_name": pd.Categorical(np.tile(names, n_t), categories=pd.unique(names)),
            "vn_kv": np.tile(net.bus.loc[g.bus_index[cols], "vn_kv"].to_numpy(np.float32), n_t),
            "lv": np.tile(r.lv_buses()[cols], n_t),
            "vm_pu": g.vm_pu[:, cols].astype(np.float32).ravel(),
        }
    )


def test_tidy_tables_equal_the_whole_frames_in_any_row_range(day_result):
    r = day_result
    worst = r.worst_buses(4)[::-1]  # a subset, not in net.bus order
    cases = [
        (r.households_table(), _reference_households_frame(r)),
        (r.bus_table(worst), _reference_bus_frame(r, worst)),
        (r.bus_table(), _reference_bus_frame(r, r.grid.bus_index)),
    ]
    for table, reference in cases:
        frame = table.frame()
        pd.testing.assert_frame_equal(frame, reference)
        assert list(frame.dtypes) == list(reference.dtypes)
        n = table.n_rows
        # ranges that start and stop inside a step, one row, the last rows, past the end
        for start, stop in ((0, 1), (5, 1234), (table.n + 3, 3 * table.n - 1), (n - 7, n + 50)):
            part = pd.DataFrame(table.rows(start, stop))
            expected = reference.iloc[start:stop].reset_index(drop=True)
            pd.testing.assert_frame_equal(part, expected)


def test_streamed_parquet_is_the_whole_frame_written_at_once(day_result, tmp_path):
    """A file written one row group at a time holds the frame exactly (types, categories,
    NaN); with pyarrow's row groups it is DataFrame.to_parquet's file, byte for byte."""
    r = day_result
    nan_vm = dataclasses.replace(r.grid, vm_pu=r.grid.vm_pu.copy())
    nan_vm.vm_pu[::7, 3] = np.nan  # NaN goes to parquet as null, as pandas writes it
    with_nan = dataclasses.replace(r, grid=nan_vm)
    tables = {
        "households": r.households_table(),
        "buses": with_nan.bus_table(),
        "lines": r.line_table(r.worst_lines(5)),
        "loads": r.load_table(),
        "transformers": r.trafo_table(),
    }
    for name, table in tables.items():
        frame = table.frame()
        whole = tmp_path / f"{name}-whole.parquet"
        frame.to_parquet(whole, index=False)
        same = tmp_path / f"{name}-streamed.parquet"
        write_tidy_parquet(table, same)
        assert same.read_bytes() == whole.read_bytes(), name
        # row groups that cut through steps: several groups, the same content
        chunked = tmp_path / f"{name}-chunked.parquet"
        size = table.n_rows // 4 + 1  # not a whole number of steps
        write_tidy_parquet(table, chunked, rows_per_group=size)
        assert pq.ParquetFile(chunked).metadata.num_row_groups == 4, name
        back = pd.read_parquet(chunked)
        pd.testing.assert_frame_equal(back, pd.read_parquet(whole))
        assert pq.read_schema(chunked) == pq.read_schema(whole)
    assert pd.read_parquet(tmp_path / "buses-chunked.parquet")["vm_pu"].isna().sum() > 0
    # an empty table (no lines kept) still writes its columns
    empty = r.line_table(r.worst_lines(0))
    write_tidy_parquet(empty, tmp_path / "empty.parquet")
    empty.frame().to_parquet(tmp_path / "empty-whole.parquet", index=False)
    assert (tmp_path / "empty.parquet").read_bytes() == (
        tmp_path / "empty-whole.parquet"
    ).read_bytes()


# ------------------------------------------------------------------------- self-describing
def test_metadata_scenario_and_network_describe_the_run(day_result, run_dir):
    meta = json.loads((run_dir / "metadata.json").read_text())
    assert meta["twin_version"] == twin.__version__
    if (REPO / ".git").exists():
        assert len(meta["git"]["commit"]) == 40 and isinstance(meta["git"]["dirty"], bool)
    assert meta["seed"] == 42 and meta["weather"]["source"] == "try2010"
    assert meta["weather"]["name"] == "TRY2010 region 5"
    assert meta["grid"]["households"] == len(day_result.load_index)
    assert meta["window"]["steps"] == day_result.grid.n_steps
    assert set(meta["files"]) >= {"summary.md", "network.json", "buses.parquet", "kpis.json"}
    assert all((run_dir / name).exists() for name in meta["files"])

    from twin.scenario import load_scenario

    sc = load_scenario("nl-2040-central")
    text = (run_dir / "scenario.yaml").read_text()
    data = yaml.safe_load(text)
    assert data["name"] == sc.name and Path(data["files"][0]) == sc.path
    for section, params in sc.params.items():
        for key, p in params.items():
            entry = data[section][key]
            assert entry["source"] == p.source
            assert entry.get("value", entry.get("range", [None])[0]) == p.low

    net = pp.from_json(str(run_dir / "network.json"))
    ref = day_result.feeder.net
    assert len(net.bus) == len(ref.bus) and len(net.line) == len(ref.line)
    households = net.load.index[net.load.twin_household >= 0]
    assert list(households) == list(day_result.load_index)
    assert list(net.load.loc[households, "twin_household"]) == list(range(len(households)))
    assert (net.load.twin_household[~net.load.index.isin(households)] == -1).all()
    pp.runpp(net, numba=False, lightsim2grid=False)  # a runnable net
    assert net.converged


def test_summary_has_header_kpis_with_limits_and_existing_figure_links(day_result, run_dir):
    text = (run_dir / "summary.md").read_text()
    k = day_result.kpis
    assert text.startswith(f"# {k['grid']} · {k['scenario']} · contract {k['contract']}")
    assert "**All limits kept.**" in text
    row = next(
        ln for ln in text.splitlines() if ln.startswith("| transformer peak | ") and "%" in ln
    )
    assert f"{k['trafo_peak_loading_pct']:.1f}" in row and "≤ 100" in row and "| ok |" in row
    assert "| min voltage |" in text and "≥ 0.85" in text
    links = [ln.split("](")[1].rstrip(")") for ln in text.splitlines() if ln.startswith("![")]
    assert len(links) >= 7 and all((run_dir / link).is_file() for link in links)
    assert "No limit broken" in text


def test_summary_lists_where_and_when_limits_broke(day_result):
    from twin.writer import run_summary, violations

    g = day_result.grid
    hot = dataclasses.replace(g, line_loading_pct=g.line_loading_pct * 3.0)
    kpis = dict(day_result.kpis, line_max_loading_pct=float(hot.line_loading_pct.max()))
    res = dataclasses.replace(day_result, grid=hot, kpis=kpis)
    rows = violations(res)
    cables = [r for r in rows if r["limit"].startswith("cable")]
    over = (hot.line_loading_pct > 100).any(axis=0)
    assert len(cables) == over.sum() > 0
    col = int(hot.line_loading_pct.max(axis=0).argmax())
    first = cables[0]
    assert first["element"].endswith(f"(line {g.line_index[col]})")
    assert first["hours"] == (hot.line_loading_pct[:, col] > 100).sum() * 0.25
    assert first["worst"] == f"{hot.line_loading_pct[:, col].max():.1f} %"
    when = day_result.window.times[hot.line_loading_pct[:, col].argmax()]
    assert first["when"] == when.strftime("%Y-%m-%d %H:%M")
    meta = {"twin_version": "0", "git": None, "weather": {"name": "w"}}
    text = run_summary(res, [], {}, meta)
    assert "**Limits broken: max cable loading" in text and "✗ over" in text


# ------------------------------------------------------------------------------ round trip
@pytest.mark.parametrize("step", ["worst", "worst_line", "worst_voltage", 17, "2025-12-02 08:30"])
def test_round_trip_to_pandapower_reproduces_the_stored_state(day_result, run_dir, step):
    from twin.grid.snapshot import runpp_step

    net = runpp_step(day_result, step)
    k = net.twin_step
    buses = pd.read_parquet(run_dir / "buses.parquet")
    stored = buses[buses.step == k].set_index("bus").loc[net.bus.index, "vm_pu"].to_numpy()
    np.testing.assert_allclose(net.res_bus.vm_pu.to_numpy(), stored, atol=1e-6)
    lines = pd.read_parquet(run_dir / "lines.parquet")
    stored_ll = lines[lines.step == k].set_index("line").loc[net.line.index, "loading_pct"]
    np.testing.assert_allclose(net.res_line.loading_percent.to_numpy(), stored_ll, atol=1e-4)
    # the households' PV is a static generator, their load the consumption before PV
    pv = net.sgen[net.sgen.twin_household >= 0]
    assert len(pv) == int((day_result.fleet.pv_kwp > 0).sum()) and pv.in_service.all()
    if step == "worst":
        assert k == int(np.argmax(station_of(day_result.grid, day_result.feeder.net).loading_pct))
    if isinstance(step, str) and step.startswith("2025"):
        assert net.twin_time == str(pd.Timestamp(step))


@pytest.mark.parametrize("step", ["worst", "worst_voltage", 60, "2025-12-02 19:00"])
def test_a_run_folder_alone_reopens_in_pandapower(day_result, run_dir, step):
    """network.json + loads.parquet (+ households.parquet for the PV split), no twin result."""
    from twin.grid.snapshot import PANDAPOWER_OPTIONS, net_at_step, net_from_folder

    net = net_from_folder(run_dir, step)
    pp.runpp(net, **PANDAPOWER_OPTIONS)
    k = net.twin_step
    buses = pd.read_parquet(run_dir / "buses.parquet", filters=[("step", "==", k)])
    stored = buses.set_index("bus").loc[net.bus.index, "vm_pu"].to_numpy()
    np.testing.assert_allclose(net.res_bus.vm_pu.to_numpy(), stored, atol=1e-6)
    lines = pd.read_parquet(run_dir / "lines.parquet", filters=[("step", "==", k)])
    stored_ll = lines.set_index("line").loc[net.line.index, "loading_pct"].to_numpy()
    np.testing.assert_allclose(net.res_line.loading_percent.to_numpy(), stored_ll, atol=1e-4)
    # the same net as from the in-memory result
    ref = net_at_step(day_result, k)
    np.testing.assert_allclose(net.load.p_mw, ref.load.p_mw, atol=1e-8)
    np.testing.assert_allclose(
        net.sgen.loc[net.sgen.twin_household >= 0, "p_mw"],
        ref.sgen.loc[ref.sgen.twin_household >= 0, "p_mw"],
        atol=1e-8,
    )


def test_loads_file_is_what_the_power_flow_saw(day_result, run_dir):
    loads = pd.read_parquet(run_dir / "loads.parquet")
    net = day_result.feeder.net
    p = loads.pivot(index="step", columns="load", values="p_kw")[net.load.index]
    np.testing.assert_allclose(p.to_numpy(), day_result.p_load_kw, rtol=1e-6, atol=1e-6)
    q = loads.pivot(index="step", columns="load", values="q_kvar")[net.load.index]
    np.testing.assert_allclose(q.to_numpy(), day_result.q_load_kvar, rtol=1e-6, atol=1e-6)
    hh = loads.drop_duplicates("load").set_index("load")["household"]
    assert list(hh.loc[day_result.load_index]) == list(range(len(day_result.load_index)))


def test_pandapower_timeseries_replays_the_run(day_result):
    from pandapower.timeseries import run_timeseries

    from twin.grid.snapshot import PANDAPOWER_OPTIONS, timeseries_net

    steps = [0, 40, 75]
    net, ow = timeseries_net(day_result, steps)
    run_timeseries(net, time_steps=steps, verbose=False, **PANDAPOWER_OPTIONS)
    vm = ow.output["res_bus.vm_pu"].loc[steps, day_result.grid.bus_index].to_numpy()
    np.testing.assert_allclose(vm, day_result.grid.vm_pu[steps], atol=1e-6)
    ll = ow.output["res_line.loading_percent"].loc[steps].to_numpy()
    np.testing.assert_allclose(ll, day_result.grid.line_loading_pct[steps], atol=1e-4)


# ------------------------------------------------------------------------------------- CLI
def test_kpi_table_marks_broken_limits(day_result):
    from twin.cli import format_kpi_table

    ok = format_kpi_table(day_result.kpis)
    assert "✗" not in ok and ok.endswith("all limits kept")
    bad = dict(
        day_result.kpis,
        trafo_peak_loading_pct=131.0,
        vm_max_pu=1.12,
        ev_days_met_share=0.98,
    )
    table = format_kpi_table(bad)
    line = next(ln for ln in table.splitlines() if "131.0" in ln)
    assert line.endswith("✗ over") and "≤ 100" in line
    assert next(ln for ln in table.splitlines() if ln.startswith("max voltage")).endswith("✗ over")
    assert next(ln for ln in table.splitlines() if ln.startswith("EV: household-days")).endswith(
        "✗ below"
    )
    assert "limits broken: transformer peak, max voltage, EV: household-days met" in table


def test_piped_output_has_no_progress_bar(tmp_path, twin_exe, repo_dir):
    proc = subprocess.run(
        [twin_exe, "sim=day", "output.figures=false", f"hydra.run.dir={tmp_path / 'run'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=repo_dir,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    out = proc.stdout
    assert "\r" not in out and "simulate (" not in out and "step/s" not in out
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("1-LV-urban6--0-sw | "))
    assert set(lines[head + 1]) == {"-"}


def _schema_keys(schema, prefix=""):
    from dataclasses import MISSING, fields, is_dataclass

    for f in fields(schema):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if is_dataclass(default):
            yield from _schema_keys(type(default), f"{prefix}{f.name}.")
        elif f.metadata.get("help"):
            yield f"{prefix}{f.name}", f.metadata["help"]


def test_help_lists_feeders_contracts_scenarios_and_every_key(twin_exe, repo_dir):
    from twin.grid.feeders import KNOWN_FEEDERS
    from twin.scenario import SCENARIO_DIR
    from twin.schema import PerformanceConfig, TwinConfig

    proc = subprocess.run(
        [twin_exe, "contract=performance", "--help"],
        capture_output=True,
        text=True,
        cwd=repo_dir,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "1-LV-{rural1,rural2,rural3,semiurb4,semiurb5,urban6}--{0,1,2}-{sw,no_sw}" in out
    for name in KNOWN_FEEDERS:
        assert f"\n  {name} " in out
    for path in SCENARIO_DIR.glob("*.yaml"):
        assert f"\n  {path.stem} " in out
    for path in (REPO / "twin" / "configs" / "contract").glob("*.yaml"):
        assert f"\n  {path.stem} " in out
    lines = out.splitlines()
    for key, text in [*_schema_keys(TwinConfig), *_schema_keys(PerformanceConfig, "contract.")]:
        if key.split(".")[-1] in {"name", "label"}:
            continue
        line = next((ln for ln in lines if ln.strip().startswith(key + " ")), None)
        assert line is not None and text in line, key
    assert "Failed to import" not in out + proc.stderr


def test_hosting_study_writes_a_summary(tmp_path):
    from twin.config import compose
    from twin.hosting import write_hosting

    cfg = compose(["grid.name=1-LV-rural2--0-sw", "study=hosting"])
    point = {
        "contract": "firm",
        "households_electrified": 39,
        "share": 39 / 92,
        "hosted": True,
        "violation": "",
        "coincident_peak_per_household_kw": 2.42,
        "trafo_peak_loading_pct": 99.1,
        "line_max_loading_pct": 80.0,
        "vm_min_pu": 0.95,
        "vm_max_pu": 1.02,
        "comfort_days_met_share": 1.0,
        "ev_days_met_share": 1.0,
    }
    summary = [
        {
            "contract": "firm",
            "hosted_households": 39,
            "hosted_share": 39 / 92,
            "first_violation": "transformer",
            "peak_per_household_at_hosted_kw": 2.42,
            "peak_per_household_full_electrification_kw": 4.48,
            "evaluations": 10,
        }
    ]
    out = write_hosting(summary, [point], cfg.study, tmp_path / "h", cfg)
    text = (out / "summary.md").read_text()
    assert text.startswith("# Hosting capacity: 1-LV-rural2--0-sw · nl-2040-central")
    assert "| firm | 39 / 92 | 42% | transformer | 2.42 | 4.48 | 10 |" in text
    assert "≤ 100 % of its rating" in text and "![hosting capacity](hosting_capacity.png)" in text
    assert (out / "DONE").exists() and (out / "hosting_capacity.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "hosting.json").read_text())["contracts"] == summary


def test_a_parquet_file_that_fails_on_its_thread_fails_the_write_and_leaves_no_folder(
    day_result, tmp_path, monkeypatch
):
    """The parquet files are written on a second thread while the summary and figures are
    made: a failure there reaches the caller (a full disk: the one-line error), and the run
    folder is never committed (no DONE, no staging folder left)."""
    import twin.writer
    from twin.errors import TwinError

    def broken(table, path, **kw):
        raise OSError(28, "No space left on device (test)")

    monkeypatch.setattr(twin.writer, "write_tidy_parquet", broken)
    out = tmp_path / "run"
    with pytest.raises(TwinError, match="cannot write into .*No space left"):
        write_run(_with_output(day_result, figures=False), out)
    assert not (out / "DONE").exists() and not list(out.glob(".staging-*"))
    assert not (out / "kpis.json").exists()
