"""Feeders of a chosen size built from a real SimBench LV feeder, for scaling studies.

The real SimBench LV feeders top out at about 100 households (``1-LV-urban6--0-sw``: 102).
:func:`scaled_feeder` builds feeders of other sizes from one of them and keeps its data (cables,
lengths, the loads' SimBench profiles, the station's transformer type):

* **smaller** — keep a subset of its cable branches (the subtrees below the station's LV bus,
  :func:`cable_branches`); :func:`keep_branches`;
* **larger** — ``k`` copies of every cable branch (deep copies of the subtree below the station
  bus: new bus, line, load and switch indices, the same cable types, lengths and load
  profiles) under the same station bus; :func:`replicate`.

**Assumption (labelled):** the station is sized with the households, at the source feeder's
kVA per household. ``k`` copies get ``parallel = k`` units of the source's transformer type
(``k x 0.63 MVA`` for urban6: an LV station that large does not exist in practice, a real
feeder of 400 households would be split over several stations); a subset gets that type
derated to the subset's share of the households (``sn_mva`` and the no-load losses scaled,
the per-unit impedances ``vk_percent``, ``vkr_percent``, ``i0_percent`` kept, so the
station's voltage drop per unit of its rating is the source's). The copies' buses are
shifted east on the map so that figures do not overlap them.

Static generators and storage are dropped (a SimBench code does not carry them over either;
a JSON file's in-service ``sgen`` rows would become household PV, :mod:`twin.grid.feeders`),
and only the load profiles the kept loads use are written, so a built feeder read back with
``grid.name=<file>.json`` has the same households and loads as the source would.

    from twin.grid.scaled import scaled_feeder, write_feeder
    write_feeder(scaled_feeder(400), "urban6_x4.json")     # 408 households

Used by ``benchmarks/bench_scaling.py``; not used by a run.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
from pandapower.auxiliary import pandapowerNet

__all__ = [
    "PLANS",
    "SOURCE_FEEDER",
    "cable_branches",
    "household_mask",
    "keep_branches",
    "replicate",
    "scaled_feeder",
    "write_feeder",
]

#: The real SimBench feeder the scaled feeders are built from (102 households, 7 branches).
SOURCE_FEEDER = "1-LV-urban6--0-sw"

#: Longitude shift between copies on the map (degrees; urban6 spans about 0.008).
COPY_SHIFT_DEG = 0.012


def household_mask(net: pandapowerNet) -> np.ndarray:
    """In-service loads with a SimBench household profile (``H0*``), as twin reads them."""
    prof = net.load["profile"].astype(str).str.startswith("H0").to_numpy()
    return prof & net.load["in_service"].astype(bool).to_numpy()


def _station(net: pandapowerNet) -> tuple[int, int]:
    """The (only) station transformer row and its LV bus."""
    trafos = net.trafo[net.trafo["in_service"].astype(bool)]
    if len(trafos) != 1:
        raise ValueError(f"expected one in-service transformer, found {len(trafos)}")
    return int(trafos.index[0]), int(trafos["lv_bus"].iloc[0])


def cable_branches(net: pandapowerNet) -> list[list[int]]:
    """The buses of each cable branch: the connected parts of the LV net below the station's LV
    bus (that bus removed), in the order of their lowest bus index."""
    _, lv = _station(net)
    g = nx.Graph()
    g.add_nodes_from(net.bus.index[net.bus["vn_kv"] < 1.0])
    for _, row in net.line[net.line["in_service"].astype(bool)].iterrows():
        g.add_edge(int(row["from_bus"]), int(row["to_bus"]))
    g.remove_node(lv)
    return sorted((sorted(c) for c in nx.connected_components(g)), key=lambda c: c[0])


def _drop_generation(net: pandapowerNet) -> None:
    for table in ("sgen", "storage", "measurement"):
        net[table] = net[table].iloc[0:0]
    prof = net.get("profiles")
    if isinstance(prof, dict) and "load" in prof:
        used = sorted(set(net.load["profile"].astype(str)))
        cols = [c for n in used for c in (f"{n}_pload", f"{n}_qload")]
        net.profiles = {"load": prof["load"][cols].copy()}
    if "loadcases" in net:
        del net["loadcases"]


def _scale_station(net: pandapowerNet, trafo: int, factor: float) -> None:
    row = net.trafo.loc[trafo]
    if float(factor).is_integer():
        net.trafo.loc[trafo, "parallel"] = int(row["parallel"]) * int(factor)
        return
    net.trafo.loc[trafo, "sn_mva"] = float(row["sn_mva"]) * factor
    net.trafo.loc[trafo, "pfe_kw"] = float(row["pfe_kw"]) * factor
    net.trafo.loc[trafo, "name"] = f"{row['name']} ({row['std_type']} derated x{factor:.3f})"
    net.trafo.loc[trafo, "std_type"] = None


def keep_branches(net: pandapowerNet, keep: list[int]) -> pandapowerNet:
    """A copy of ``net`` with only the cable branches numbered ``keep`` (:func:`cable_branches`)
    and its station derated to their share of the households."""
    out = copy.deepcopy(net)
    trafo, lv = _station(out)
    branches = cable_branches(out)
    drop = {b for i, br in enumerate(branches) if i not in keep for b in br}
    n_before = int(household_mask(out).sum())
    out.load = out.load[~out.load["bus"].isin(drop)]
    lines = out.line.index[out.line["from_bus"].isin(drop) | out.line["to_bus"].isin(drop)]
    out.switch = out.switch[
        ~(
            ((out.switch["et"] == "l") & out.switch["element"].isin(lines))
            | out.switch["bus"].isin(drop)
        )
    ]
    out.line = out.line.drop(lines)
    out.bus = out.bus.drop(sorted(drop))
    _drop_generation(out)
    _scale_station(out, trafo, int(household_mask(out).sum()) / n_before)
    return out


def _shift_geo(geo: object, dx: float) -> object:
    if not isinstance(geo, str) or not geo:
        return geo
    g = json.loads(geo)

    def move(c: list) -> list:
        return [c[0] + dx, *c[1:]] if c and not isinstance(c[0], list) else [move(x) for x in c]

    g["coordinates"] = move(g["coordinates"])
    return json.dumps(g)


def replicate(net: pandapowerNet, copies: int) -> pandapowerNet:
    """``copies`` copies of every cable branch of ``net`` under its station bus, the station
    ``copies`` parallel units of its transformer. Copy 0 is the original; copy ``j`` gets new
    indices and ``" #j"`` appended to its element names."""
    if copies < 1:
        raise ValueError("copies must be >= 1")
    out = copy.deepcopy(net)
    trafo, lv = _station(out)
    lv_buses = [b for br in cable_branches(out) for b in br]
    lines = out.line.index[out.line["from_bus"].isin(lv_buses) | out.line["to_bus"].isin(lv_buses)]
    loads = out.load.index[out.load["bus"].isin(lv_buses)]
    switches = out.switch.index[(out.switch["et"] == "l") & out.switch["element"].isin(lines)]
    bus0, line0, load0, sw0 = (
        int(t.index.max()) + 1 for t in (out.bus, out.line, out.load, out.switch)
    )
    new_bus, new_line, new_load, new_sw = [], [], [], []
    for j in range(1, copies):
        bmap = {b: bus0 + (j - 1) * len(lv_buses) + i for i, b in enumerate(lv_buses)}
        bmap[lv] = lv
        lmap = {ln: line0 + (j - 1) * len(lines) + i for i, ln in enumerate(lines)}
        dx = j * COPY_SHIFT_DEG
        b = out.bus.loc[lv_buses].copy()
        b.index = [bmap[x] for x in b.index]
        b["name"] = b["name"].astype(str) + f" #{j}"
        if "geo" in b:
            b["geo"] = b["geo"].map(lambda g, dx=dx: _shift_geo(g, dx))
        new_bus.append(b)
        ln = out.line.loc[lines].copy()
        ln.index = [lmap[x] for x in ln.index]
        ln["from_bus"] = ln["from_bus"].map(bmap)
        ln["to_bus"] = ln["to_bus"].map(bmap)
        ln["name"] = ln["name"].astype(str) + f" #{j}"
        if "geo" in ln:
            ln["geo"] = ln["geo"].map(lambda g, dx=dx: _shift_geo(g, dx))
        new_line.append(ln)
        ld = out.load.loc[loads].copy()
        ld.index = range(load0 + (j - 1) * len(loads), load0 + j * len(loads))
        ld["bus"] = ld["bus"].map(bmap)
        ld["name"] = ld["name"].astype(str) + f" #{j}"
        new_load.append(ld)
        sw = out.switch.loc[switches].copy()
        sw.index = range(sw0 + (j - 1) * len(switches), sw0 + j * len(switches))
        sw["bus"] = sw["bus"].map(bmap)
        sw["element"] = sw["element"].map(lmap)
        new_sw.append(sw)
    for table, parts in (
        ("bus", new_bus),
        ("line", new_line),
        ("load", new_load),
        ("switch", new_sw),
    ):
        if parts:
            merged = pd.concat([out[table], *parts])
            out[table] = merged.astype(out[table].dtypes.to_dict())
    _drop_generation(out)
    _scale_station(out, trafo, copies)
    return out


#: How :func:`scaled_feeder` reaches each size from urban6's branches (households per branch:
#: 25, 6, 34, 13, 16, 0, 8): which branches, or how many copies of all of them.
PLANS: dict[int, tuple[str, object]] = {
    25: ("keep", [0]),  # 25 households
    50: ("keep", [2, 4]),  # 34 + 16
    100: ("copies", 1),  # the feeder itself: 102
    200: ("copies", 2),  # 204
    400: ("copies", 4),  # 408
}


def scaled_feeder(size: int, source: pandapowerNet | None = None) -> pandapowerNet:
    """The feeder of about ``size`` households (a key of :data:`PLANS`) built from urban6."""
    if size not in PLANS:
        raise ValueError(f"size must be one of {sorted(PLANS)}")
    if source is None:
        import simbench

        source = simbench.get_simbench_net(SOURCE_FEEDER)
    how, arg = PLANS[size]
    net = keep_branches(source, list(arg)) if how == "keep" else replicate(source, int(arg))
    net.name = f"{SOURCE_FEEDER} scaled to {int(household_mask(net).sum())} households"
    return net


def write_feeder(net: pandapowerNet, path: str | Path) -> Path:
    """Write ``net`` as pandapower JSON (``grid.name=<path>`` runs it)."""
    import pandapower as pp

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pp.to_json(net, str(path))
    return path
