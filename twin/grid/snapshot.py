"""Back to pandapower: any step of a run as a pandapower net that ``pandapower.runpp`` solves to
the state twin stored.

twin's power flow (:mod:`twin.grid.powerflow`) solves every step with power-grid-model; the
pandapower net stays the model of record. This module writes one step's powers into the net's
tables the way a pandapower user would set them:

* ``net.load``: every load's ``p_mw``/``q_mvar`` of the step (``scaling`` 1, constant power);
  a household's load is its consumption *before* its rooftop PV (base load, heat pump, EV,
  battery);
* ``net.sgen``: one in-service static generator per household with PV (``name`` ``twin PV
  household <k>``, ``type`` ``PV``), ``p_mw`` its PV output of the step. The source data's own
  static generators stay out of service (twin models PV per household, see
  :mod:`twin.grid.feeders`);
* ``net.load["twin_household"]`` / ``net.sgen["twin_household"]``: the household number (the
  ``household`` column of the run's files), -1 for loads that are not households.

The household's bus injection is the same as in the run (load minus PV = the stored net power
``p_net_kw``), so :func:`runpp_step` reproduces the stored bus voltages and line loadings (the
test checks 1e-6 p.u. and 1e-4 %-points). :data:`PANDAPOWER_OPTIONS` are the ``runpp`` options
that model what twin models (``trafo_model='pi'``, power-based transformer loading, ideal
external grid).

From a run folder alone (``network.json``, ``loads.parquet``, ``feeder.parquet`` and, for the
PV split, ``households.parquet``), :func:`net_from_folder` does the same without twin's
in-memory result.

For many steps, :func:`timeseries_net` attaches pandapower's own time-series machinery
(``ConstControl`` on ``DFData``, an ``OutputWriter``) so that
``pandapower.timeseries.run_timeseries(net, time_steps=..., **PANDAPOWER_OPTIONS)`` replays
the run.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandapower as pp
import pandas as pd
from pandapower.auxiliary import pandapowerNet

from twin.grid.powerflow import constant_power_loads

__all__ = [
    "PANDAPOWER_OPTIONS",
    "WORST",
    "net_at_step",
    "net_from_folder",
    "runpp_step",
    "step_of",
    "timeseries_net",
    "worst_step",
]

#: ``pandapower.runpp`` options that model what twin's power flow models (see
#: :func:`twin.grid.powerflow.run_pandapower`).
PANDAPOWER_OPTIONS: dict[str, Any] = {
    "algorithm": "nr",
    "trafo_model": "pi",
    "trafo_loading": "power",
    "calculate_voltage_angles": True,
    "init": "auto",
    "tolerance_mva": 1e-10,
    "max_iteration": 50,
    "lightsim2grid": False,
    "numba": False,
}

#: What ``step="worst_<by>"`` picks: the step with the highest station loading, the highest
#: cable loading, or the lowest LV bus voltage.
WORST = ("trafo", "line", "voltage")


def worst_step(result: Any, by: str = "trafo") -> int:
    """The reported step (row) where ``by`` is worst: ``trafo`` (highest station loading),
    ``line`` (highest loading of any cable) or ``voltage`` (lowest LV bus voltage)."""
    from twin.grid.compliance import station_of

    g = result.grid
    if by == "trafo":
        return int(np.argmax(station_of(g, result.feeder.net).loading_pct))
    if by == "line":
        return int(np.argmax(g.line_loading_pct.max(axis=1)))
    if by == "voltage":
        return int(np.argmin(g.vm_pu[:, result.lv_buses()].min(axis=1)))
    raise ValueError(f"by={by!r} is unknown: use one of {', '.join(WORST)}")


def step_of(result: Any, step: int | str | pd.Timestamp = "worst") -> int:
    """The row of ``step``: a row number (from 0), a time of the window (``"2025-12-01 18:00"``),
    ``"worst"`` (highest station loading) or ``"worst_trafo"``/``"worst_line"``/
    ``"worst_voltage"``."""
    n = result.grid.n_steps
    if isinstance(step, int | np.integer):
        if not -n <= int(step) < n:
            raise IndexError(f"step {step} is outside the run's {n} steps")
        return int(step) % n
    if isinstance(step, str) and step.startswith("worst"):
        by = step.partition("_")[2] or "trafo"
        return worst_step(result, by)
    t = pd.Timestamp(step)
    k = result.window.times.get_indexer([t])[0]
    if k < 0:
        raise KeyError(f"{t} is not a step of the run ({result.period()})")
    return int(k)


def _household_pv(result: Any) -> tuple[np.ndarray, np.ndarray]:
    """Load columns of the households and their PV output ``(T, H)``, kW."""
    net = result.feeder.net
    cols = net.load.index.get_indexer(result.load_index)
    return cols, np.asarray(result.log["p_pv_kw"], dtype=float)


def _prepare_net(
    net: pandapowerNet, load_index: np.ndarray, pv_households: np.ndarray
) -> pandapowerNet:
    """A copy of ``net`` with constant-power loads, household numbers (``load_index``: each
    household's ``net.load`` label) and one PV static generator per household of
    ``pv_households`` (``p_mw`` 0 until a step is written)."""
    net = copy.deepcopy(net)
    constant_power_loads(net)
    household = np.full(len(net.load), -1, dtype=np.int64)
    household[net.load.index.get_indexer(load_index)] = np.arange(len(load_index))
    net.load["twin_household"] = household
    if len(net.sgen):
        net.sgen["twin_household"] = -1
    for h in np.asarray(pv_households, dtype=int):
        pp.create_sgen(
            net,
            bus=int(net.load.at[load_index[h], "bus"]),
            p_mw=0.0,
            q_mvar=0.0,
            name=f"twin PV household {h}",
            type="PV",
            twin_household=int(h),
        )
    return net


def _prepare(result: Any) -> pandapowerNet:
    has_pv = np.flatnonzero(np.asarray(result.fleet.pv_kwp) > 0)
    return _prepare_net(result.feeder.net, np.asarray(result.load_index), has_pv)


def _twin_pv_rows(net: pandapowerNet) -> tuple[pd.Index, np.ndarray]:
    rows = net.sgen.index[net.sgen["twin_household"].to_numpy() >= 0]
    return rows, net.sgen.loc[rows, "twin_household"].to_numpy(dtype=np.int64)


def _write_step(
    net: pandapowerNet, p_kw: np.ndarray, q_kvar: np.ndarray, pv_kw: np.ndarray
) -> None:
    """Put one step into ``net``: ``p_kw``/``q_kvar`` what the power flow saw per load
    (``net.load`` order; a household's net of its PV), ``pv_kw`` ``(H,)`` each household's
    PV output (its load becomes the consumption before PV, its static generator the PV)."""
    hh = net.load["twin_household"].to_numpy()
    p = np.array(p_kw, dtype=float)
    p[hh >= 0] += np.asarray(pv_kw, dtype=float)[hh[hh >= 0]]
    net.load["p_mw"] = p / 1e3
    net.load["q_mvar"] = np.asarray(q_kvar, dtype=float) / 1e3
    rows, households = _twin_pv_rows(net)
    net.sgen.loc[rows, "p_mw"] = np.asarray(pv_kw, dtype=float)[households] / 1e3


def _powers(result: Any, k: int | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Load p, q (MW, Mvar; ``net.load`` order) and household PV (MW) of row(s) ``k``."""
    cols, pv = _household_pv(result)
    p = np.array(result.p_load_kw[k], dtype=float)
    p[..., cols] += pv[k]
    return p / 1e3, np.asarray(result.q_load_kvar[k], dtype=float) / 1e3, pv[k] / 1e3


def net_at_step(result: Any, step: int | str | pd.Timestamp = "worst") -> pandapowerNet:
    """A copy of the run's net with ``step``'s powers in ``net.load`` and ``net.sgen`` (see the
    module docstring; ``step`` as for :func:`step_of`). ``net.twin_step`` holds the row and
    ``net.twin_time`` its time."""
    k = step_of(result, step)
    net = _prepare(result)
    _write_step(net, result.p_load_kw[k], result.q_load_kvar[k], result.log["p_pv_kw"][k])
    net["twin_step"] = k
    net["twin_time"] = str(result.window.times[k])
    return net


def runpp_step(result: Any, step: int | str | pd.Timestamp = "worst") -> pandapowerNet:
    """:func:`net_at_step` solved with ``pandapower.runpp(**PANDAPOWER_OPTIONS)``: its
    ``res_bus.vm_pu`` and ``res_line.loading_percent`` are the run's stored values."""
    net = net_at_step(result, step)
    pp.runpp(net, **PANDAPOWER_OPTIONS)
    return net


def _folder_step(run_dir: Path, step: int | str | pd.Timestamp) -> tuple[int, pd.Timestamp]:
    feeder = pd.read_parquet(
        run_dir / "feeder.parquet",
        columns=["time", "trafo_loading_pct", "line_loading_max_pct", "vm_min_pu"],
    )
    n = len(feeder)
    if isinstance(step, int | np.integer):
        if not -n <= int(step) < n:
            raise IndexError(f"step {step} is outside the run's {n} steps")
        k = int(step) % n
    elif isinstance(step, str) and step.startswith("worst"):
        by = step.partition("_")[2] or "trafo"
        column = {"trafo": "trafo_loading_pct", "line": "line_loading_max_pct"}.get(by)
        if by == "voltage":
            k = int(feeder["vm_min_pu"].to_numpy().argmin())
        elif column is not None:
            k = int(feeder[column].to_numpy().argmax())
        else:
            raise ValueError(f"step={step!r}: use worst, {', '.join('worst_' + w for w in WORST)}")
    else:
        t = pd.Timestamp(step)
        hits = np.flatnonzero(feeder["time"].to_numpy() == t.to_datetime64())
        if not len(hits):
            raise KeyError(f"{t} is not a step of the run in {run_dir}")
        k = int(hits[0])
    return k, pd.Timestamp(feeder["time"].iloc[k])


def net_from_folder(run_dir: str | Path, step: int | str | pd.Timestamp = "worst") -> pandapowerNet:
    """A run folder's step as a pandapower net, without twin's in-memory result: its
    ``network.json`` (read as data, :func:`twin.grid.netjson.read_net_json`) with the step's
    load powers from ``loads.parquet`` and, when ``households.parquet`` and
    ``households_summary.csv`` are there, the households' PV as static generators (as
    :func:`net_at_step`). ``step``: a row, a time, ``"worst"``, ``"worst_line"`` or
    ``"worst_voltage"`` (from ``feeder.parquet``). ``pandapower.runpp(net,
    **PANDAPOWER_OPTIONS)`` then gives the stored bus voltages and line loadings."""
    from twin.grid.netjson import read_net_json

    run_dir = Path(run_dir)
    k, t = _folder_step(run_dir, step)
    net = read_net_json(run_dir / "network.json")
    load_index = net.load.index[net.load["twin_household"].to_numpy() >= 0]
    load_index = load_index[np.argsort(net.load.loc[load_index, "twin_household"].to_numpy())]
    summary = run_dir / "households_summary.csv"
    hh_file = run_dir / "households.parquet"
    pv = np.zeros(len(load_index))
    pv_households = np.zeros(0, dtype=int)
    if summary.is_file() and hh_file.is_file():
        kwp = pd.read_csv(summary, usecols=["household", "pv_kwp"]).set_index("household")
        pv_households = kwp.index[kwp["pv_kwp"].to_numpy() > 0].to_numpy()
        hh = pd.read_parquet(
            hh_file, columns=["household", "p_pv_kw"], filters=[("time", "==", t)]
        ).set_index("household")
        pv = hh["p_pv_kw"].reindex(np.arange(len(load_index))).to_numpy(float)
    net = _prepare_net(net, np.asarray(load_index), pv_households)
    loads = pd.read_parquet(
        run_dir / "loads.parquet", columns=["load", "p_kw", "q_kvar"], filters=[("step", "==", k)]
    ).set_index("load")
    loads = loads.reindex(net.load.index)
    if loads.isna().any().any():
        raise KeyError(f"{run_dir / 'loads.parquet'} has no step {k} for every load")
    _write_step(net, loads["p_kw"].to_numpy(float), loads["q_kvar"].to_numpy(float), pv)
    net["twin_step"] = k
    net["twin_time"] = str(t)
    return net


def timeseries_net(
    result: Any, steps: np.ndarray | list[int] | None = None
) -> tuple[pandapowerNet, Any]:
    """The run's net with pandapower time-series controllers for ``steps`` (default all
    rows) and an ``OutputWriter`` logging bus voltages, line and transformer loadings.

    Replay with::

        from pandapower.timeseries import run_timeseries
        net, ow = timeseries_net(result, steps=[0, 1, 2])
        run_timeseries(net, time_steps=[0, 1, 2], verbose=False, **PANDAPOWER_OPTIONS)
        ow.output["res_bus.vm_pu"]      # rows: steps, columns: net.bus index

    Returns
    -------
    (net, output_writer)
    """
    from pandapower.control import ConstControl
    from pandapower.timeseries import DFData, OutputWriter

    rows = np.arange(result.grid.n_steps) if steps is None else np.asarray(steps, dtype=int)
    net = _prepare(result)
    p, q, pv = _powers(result, rows)
    loads = net.load.index
    pv_rows, households = _twin_pv_rows(net)
    data = pd.DataFrame(
        np.hstack([p, q, pv[:, households]]),
        index=rows,
        columns=[f"load_p_mw_{i}" for i in loads]
        + [f"load_q_mvar_{i}" for i in loads]
        + [f"sgen_p_mw_{i}" for i in pv_rows],
    )
    ds = DFData(data)
    ConstControl(
        net, "load", "p_mw", loads, data_source=ds, profile_name=[f"load_p_mw_{i}" for i in loads]
    )
    ConstControl(
        net,
        "load",
        "q_mvar",
        loads,
        data_source=ds,
        profile_name=[f"load_q_mvar_{i}" for i in loads],
    )
    if len(pv_rows):
        ConstControl(
            net,
            "sgen",
            "p_mw",
            pv_rows,
            data_source=ds,
            profile_name=[f"sgen_p_mw_{i}" for i in pv_rows],
        )
    ow = OutputWriter(net, time_steps=rows.tolist(), output_path=None)
    ow.log_variable("res_bus", "vm_pu")
    ow.log_variable("res_line", "loading_percent")
    ow.log_variable("res_trafo", "loading_percent")
    return net, ow
