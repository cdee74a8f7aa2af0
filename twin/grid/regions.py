"""A region: an MV grid and the LV feeders below its MV/LV stations.

SimBench ships regions as MV+LV nets (``1-MVLV-<type>-all-<scenario>-<sw|no_sw>``, e.g.
``1-MVLV-semiurb-all-0-sw``: 110 MV/LV stations and 7,824 H0 households behind one 20 kV
grid; ``1-MVLV-rural-all-0-sw``: 90 and 4,623; ``1-MVLV-urban-all-0-sw``: 133 and 10,225).

* :func:`stations` lists the region's LV feeders: each MV/LV transformer (LV side below 1 kV)
  with every bus reachable from its LV bus through lines and closed switches. A feeder is
  named after its station's SimBench ``subnet`` (``LV1.201``), else ``trafo<index>``.
* :func:`feeder_net` cuts one feeder out: its buses, the station's MV bus, the transformer,
  the lines, loads and switches among them, and an external grid at the MV bus at
  :data:`FEEDER_EXT_GRID_VM_PU` (what SimBench's own LV nets use). Loads keep their SimBench
  profiles, so the feeder loads like any SimBench LV feeder (:func:`twin.grid.feeders.load_feeder`).
* :func:`mv_net` is the MV grid without the LV feeders: every bus at or above 1 kV, the
  HV/MV transformers and the external grid, the MV loads with their profiles, and one load
  per station at its MV bus (named after the feeder; its power is what the LV run measured
  at the station's MV side, :mod:`twin.region`).

A feeder of a region is a grid spec of its own: ``<region code>:<feeder>``, e.g.
``grid.name=1-MVLV-semiurb-all-0-sw:LV1.201`` (:func:`twin.grid.feeders.load_feeder`).
"""

from __future__ import annotations

import copy
import functools
import re
import warnings

import numpy as np
import pandapower as pp
import pandas as pd
from pandapower.auxiliary import pandapowerNet
from pandapower.toolbox import select_subnet

from twin.grid.netjson import FeederError

__all__ = [
    "FEEDER_EXT_GRID_VM_PU",
    "MVLV_CODE",
    "REGION_FEEDER",
    "feeder_net",
    "is_region_code",
    "mv_net",
    "profile_loads_kw",
    "region_net",
    "split_feeder_spec",
    "station_profiles_kw",
    "stations",
]

#: SimBench's MV+LV region codes (simbench 1.6: rural, semiurb, urban, comm; ``all`` LV types).
MVLV_CODE = re.compile(r"^1-MVLV-(rural|semiurb|urban|comm)-(all|[0-9]+\.[0-9]+)-[012]-(sw|no_sw)$")
#: ``<region code>:<feeder>``: one LV feeder of a region as a grid spec.
REGION_FEEDER = re.compile(r"^(?P<region>1-MVLV-[^:]+):(?P<feeder>[^:]+)$")
#: Voltage set point of a feeder's external grid at its station's MV bus, p.u.: the value
#: SimBench's own LV nets (``1-LV-*``) and MV+LV regions give their external grids.
FEEDER_EXT_GRID_VM_PU = 1.025
#: Buses at or above this voltage belong to the MV (and HV) grid, kV.
MV_MIN_KV = 1.0


def is_region_code(spec: str) -> bool:
    """Whether ``spec`` is a SimBench MV+LV region code."""
    return bool(MVLV_CODE.match(str(spec)))


def split_feeder_spec(spec: str) -> tuple[str, str] | None:
    """``(region code, feeder)`` of a ``<region code>:<feeder>`` spec, else None."""
    m = REGION_FEEDER.match(str(spec))
    if not m or not is_region_code(m["region"]):
        return None
    return m["region"], m["feeder"]


@functools.lru_cache(maxsize=2)
def _region_net(code: str) -> pandapowerNet:
    import simbench as sb

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return sb.get_simbench_net(code)
    except Exception as exc:  # noqa: BLE001 - simbench raises plain exceptions for unknown codes
        raise FeederError(
            f"SimBench has no region {code!r} ({' '.join(str(exc).split())[:100]}): use a code "
            "such as 1-MVLV-semiurb-all-0-sw, 1-MVLV-rural-all-0-sw or 1-MVLV-urban-all-0-sw"
        ) from None


def region_net(code: str) -> pandapowerNet:
    """The SimBench MV+LV net of a region code (a copy; loading takes 3-4 s, kept per process)."""
    if not is_region_code(code):
        raise FeederError(
            f"{code!r} is not a SimBench MV+LV region code: use e.g. 1-MVLV-semiurb-all-0-sw"
        )
    return copy.deepcopy(_region_net(code))


def _graph(net: pandapowerNet):  # noqa: ANN202 - networkx graph
    import pandapower.topology as top

    return top.create_nxgraph(net, include_trafos=False, respect_switches=True)


def _station_trafos(net: pandapowerNet) -> pd.DataFrame:
    tr = net.trafo[net.trafo["in_service"].astype(bool)]
    return tr[tr["vn_lv_kv"].astype(float) < MV_MIN_KV]


def _feeder_name(row: pd.Series, idx: int) -> str:
    sub = row.get("subnet")
    return str(sub) if isinstance(sub, str) and sub.strip() else f"trafo{idx}"


def _is_household(net: pandapowerNet, loads: pd.DataFrame) -> np.ndarray:
    prof = loads["profile"].astype(str) if "profile" in loads else pd.Series("", loads.index)
    return (prof.str.startswith("H0") & loads["in_service"].astype(bool)).to_numpy()


def _components(net: pandapowerNet) -> dict[str, tuple[int, np.ndarray]]:
    """feeder name -> (station transformer index, the feeder's LV buses)."""
    import networkx as nx

    g = _graph(net)
    out: dict[str, tuple[int, np.ndarray]] = {}
    seen: dict[int, str] = {}
    for idx, row in _station_trafos(net).iterrows():
        name = _feeder_name(row, int(idx))
        lv = int(row["lv_bus"])
        if lv in seen:
            raise FeederError(
                f"stations {seen[lv]} and {name} share the LV bus {lv}: a region's LV feeders "
                "must each hang from one transformer (open the switch between them)"
            )
        buses = np.array(sorted(nx.node_connected_component(g, lv)), dtype=np.int64)
        if (net.bus.loc[buses, "vn_kv"].astype(float) >= MV_MIN_KV).any():
            raise FeederError(
                f"the LV side of station {name} reaches the MV grid without a transformer: "
                "check the switches and lines of that feeder"
            )
        for b in buses:
            if int(b) in seen:
                raise FeederError(
                    f"LV feeders {seen[int(b)]} and {name} are connected (bus {b}): open the "
                    "switch between them, a region study runs each station's feeder on its own"
                )
            seen[int(b)] = name
        if name in out:
            name = f"{name}-trafo{idx}"
        out[name] = (int(idx), buses)
    if not out:
        raise FeederError("the region has no MV/LV transformer (LV side below 1 kV)")
    return out


@functools.lru_cache(maxsize=4)
def _stations_of(code: str) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    net = _region_net(code)
    comps = _components(net)
    rows = []
    for name, (idx, buses) in comps.items():
        tr = net.trafo.loc[idx]
        loads = net.load[net.load["bus"].isin(buses)]
        rows.append(
            {
                "feeder": name,
                "trafo": idx,
                "mv_bus": int(tr["hv_bus"]),
                "lv_bus": int(tr["lv_bus"]),
                "rating_kva": float(tr["sn_mva"]) * 1e3,
                "households": int(_is_household(net, loads).sum()),
                "loads": int(loads["in_service"].astype(bool).sum()),
                "buses": len(buses),
                "lines": int(net.line["from_bus"].isin(buses).sum()),
            }
        )
    table = pd.DataFrame(rows).set_index("feeder")
    return table, {n: b for n, (_, b) in comps.items()}


def stations(code: str) -> pd.DataFrame:
    """The region's LV feeders, one row each (index: the feeder's name): its station
    transformer (``trafo``), ``mv_bus``, ``lv_bus``, ``rating_kva``, ``households`` (in-service
    H0 loads), ``loads``, ``buses`` and ``lines``; in the region's transformer order."""
    return _stations_of(code)[0].copy()


def feeder_net(code: str, feeder: str) -> pandapowerNet:
    """One LV feeder of a region as a net of its own (module docstring)."""
    table, buses_of = _stations_of(code)
    if feeder not in table.index:
        near = ", ".join(list(table.index[:4]))
        raise FeederError(
            f"region {code} has no feeder {feeder!r}: use one of its stations' names "
            f"({near}, ...; `twin study=region grid.name={code}` lists them in stations.csv)"
        )
    net = _region_net(code)
    row = table.loc[feeder]
    keep = np.append(buses_of[feeder], int(row["mv_bus"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sub = select_subnet(
            net, keep, include_switch_buses=False, include_results=False, keep_everything_else=True
        )
    sub.trafo = sub.trafo.loc[[int(row["trafo"])]]
    # the MV bus's own elements are the MV grid's, not this feeder's
    mv = int(row["mv_bus"])
    for table_name in ("load", "sgen", "storage", "shunt", "asymmetric_load", "asymmetric_sgen"):
        if table_name in sub and len(sub[table_name]):
            sub[table_name] = sub[table_name][sub[table_name]["bus"] != mv]
    sub.switch = sub.switch[~((sub.switch["et"] == "b") & (sub.switch["bus"] == mv))]
    sub.ext_grid = sub.ext_grid.iloc[0:0]
    pp.create_ext_grid(sub, bus=mv, vm_pu=FEEDER_EXT_GRID_VM_PU, name=f"MV grid at {feeder}")
    sub.name = f"{code}:{feeder}"
    return sub


def mv_net(code: str) -> tuple[pandapowerNet, pd.Series]:
    """The region's MV grid without its LV feeders, and the index of each feeder's station
    load in it (a Series: feeder name -> ``net.load`` index). The station loads have
    ``p_mw = q_mvar = 0`` (a run gives them their power per step); the MV loads keep their
    SimBench ``profile``; static generators and storage stay out of service (twin's rule: the
    MV generation of SimBench's 2016 data is not part of a scenario). Pass it through
    :func:`twin.grid.feeders.prepare_net` before a power flow."""
    table, _ = _stations_of(code)
    net = _region_net(code)
    mv_buses = net.bus.index[net.bus["vn_kv"].astype(float) >= MV_MIN_KV].to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mv = select_subnet(
            net,
            mv_buses,
            include_switch_buses=False,
            include_results=False,
            keep_everything_else=True,
        )
    for table_name in ("sgen", "storage"):
        if table_name in mv and len(mv[table_name]):
            mv[table_name]["in_service"] = False
    idx = {}
    for name, row in table.iterrows():
        idx[name] = pp.create_load(
            mv, bus=int(row["mv_bus"]), p_mw=0.0, q_mvar=0.0, name=f"station {name}"
        )
    if "profile" in mv.load:
        mv.load.loc[list(idx.values()), "profile"] = ""
    mv.name = f"{code} (MV)"
    return mv, pd.Series(idx, name="load")


def profile_loads_kw(
    code: str, loads: np.ndarray, steps: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(p_kw, q_kvar)``, each ``(len(steps), len(loads))`` (default: the year's 35,040
    steps): the SimBench profiles of the region's ``net.load`` rows ``loads`` (index labels)
    times their ``p_mw``/``q_mvar`` and ``scaling``, on the reference year's calendar (as
    :func:`twin.grid.feeders.load_feeder` maps them)."""
    from twin.devices.baseload import remap_to_reference_year

    net = _region_net(code)
    load = net.load.loc[np.asarray(loads, dtype=np.int64)]
    rel = net.profiles["load"]
    # the profile row behind each step of the reference year
    source = np.arange(len(rel))
    if len(rel) != 35040:
        source = remap_to_reference_year(source, 2016)
    rows = source if steps is None else source[np.asarray(steps, dtype=np.int64)]
    names = load["profile"].astype(str).to_numpy() if "profile" in load else np.full(len(load), "")
    usable = load["in_service"].astype(bool).to_numpy() & np.isin(
        np.char.add(names.astype(str), "_pload"), rel.columns
    )
    uniq = sorted(set(names[usable]))
    col = {n: i for i, n in enumerate(uniq)}
    pick = np.array([col.get(n, 0) for n in names], dtype=np.int64)
    scale = load["scaling"].to_numpy(float) * 1e3 * usable
    zero = [np.zeros(len(rows))]
    base_p = np.column_stack([rel[f"{n}_pload"].to_numpy(float)[rows] for n in uniq] or zero)
    base_q = np.column_stack([rel[f"{n}_qload"].to_numpy(float)[rows] for n in uniq] or zero)
    p = base_p[:, pick] * (load["p_mw"].to_numpy(float) * scale)
    q = base_q[:, pick] * (load["q_mvar"].to_numpy(float) * scale)
    return p, q


def station_profiles_kw(
    code: str, feeders: list[str], steps: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(p_kw, q_kvar)``, each ``(len(steps), len(feeders))``: each feeder's loads on their
    SimBench profiles together (no devices, no losses): the MV check's stand-in for a station
    whose feeder was not simulated."""
    _, buses_of = _stations_of(code)
    net = _region_net(code)
    p = np.zeros((35040 if steps is None else len(steps), len(feeders)))
    q = np.zeros_like(p)
    for j, f in enumerate(feeders):
        idx = net.load.index[net.load["bus"].isin(buses_of[f])].to_numpy()
        pj, qj = profile_loads_kw(code, idx, steps)
        p[:, j], q[:, j] = pj.sum(axis=1), qj.sum(axis=1)
    return p, q
