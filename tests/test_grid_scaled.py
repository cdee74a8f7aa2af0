"""Scaled feeders for the scaling benchmark (twin.grid.scaled): household counts, radial, and
the replicated feeder's power flow is the source's, copy by copy."""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pytest
import simbench

from twin.grid.feeders import is_radial, load_feeder
from twin.grid.scaled import (
    PLANS,
    SOURCE_FEEDER,
    cable_branches,
    household_mask,
    keep_branches,
    replicate,
    scaled_feeder,
    write_feeder,
)

EXPECTED = {25: 25, 50: 50, 100: 102, 200: 204, 400: 408}


@pytest.fixture(scope="module")
def source() -> pp.pandapowerNet:
    return simbench.get_simbench_net(SOURCE_FEEDER)


def _station_kva_per_household(net: pp.pandapowerNet) -> float:
    t = net.trafo.iloc[0]
    return float(t["sn_mva"]) * float(t["parallel"]) * 1e3 / int(household_mask(net).sum())


@pytest.mark.parametrize("size", sorted(PLANS))
def test_size_household_count_radial_station(source: pp.pandapowerNet, size: int) -> None:
    net = scaled_feeder(size, source)
    assert int(household_mask(net).sum()) == EXPECTED[size]
    assert is_radial(net)
    # every load and line in the LV part hangs from the station's one LV bus
    assert set(net.load["bus"]) <= set(net.bus.index)
    assert net.switch["bus"].isin(net.bus.index).all()
    assert net.switch.loc[net.switch["et"] == "l", "element"].isin(net.line.index).all()
    assert len(net.sgen) == 0 and len(net.storage) == 0
    # the station is sized with the households (urban6: 630 kVA for 102)
    assert _station_kva_per_household(net) == pytest.approx(630 / 102)


def test_subset_keeps_the_source_cables(source: pp.pandapowerNet) -> None:
    net = keep_branches(source, [2, 4])
    cols = ["from_bus", "to_bus", "length_km", "r_ohm_per_km", "x_ohm_per_km", "max_i_ka"]
    pd_src = source.line.loc[net.line.index, cols]
    assert (net.line[cols] == pd_src).all().all()
    assert len(cable_branches(net)) == 2


def _pf(net: pp.pandapowerNet) -> pp.pandapowerNet:
    pp.runpp(net, tolerance_mva=1e-9, max_iteration=50)
    return net


def _copy_of(table, names, j: int):
    """Rows of copy ``j`` in the order of the source rows named ``names``."""
    by_name = dict(zip(table["name"].astype(str), table.index, strict=True))
    return [by_name[n if j == 0 else f"{n} #{j}"] for n in names]


@pytest.mark.parametrize("copies", [2, 4])
def test_replicated_power_flow_is_the_source_per_copy(
    source: pp.pandapowerNet, copies: int
) -> None:
    """Identical loads per copy (the SimBench p_mw, q_mvar): every copy's cables carry the
    source's currents, every copy's bus has the source's voltage, and the station (k parallel
    units) the source's loading in percent at k times its power."""
    src = _pf(replicate(source, 1))
    big = _pf(replicate(source, copies))
    assert len(big.line) == copies * len(src.line)
    line_names = src.line["name"].astype(str).tolist()
    lv = [b for br in cable_branches(src) for b in br]
    bus_names = src.bus.loc[lv, "name"].astype(str).tolist()
    for j in range(copies):
        lines = _copy_of(big.line, line_names, j)
        for col in ("i_ka", "loading_percent"):
            np.testing.assert_allclose(
                big.res_line.loc[lines, col].to_numpy(), src.res_line[col].to_numpy(), rtol=1e-6
            )
        buses = _copy_of(big.bus, bus_names, j)
        np.testing.assert_allclose(
            big.res_bus.loc[buses, "vm_pu"].to_numpy(),
            src.res_bus.loc[lv, "vm_pu"].to_numpy(),
            atol=1e-9,
        )
    assert src.res_line["loading_percent"].max() > 1.0  # the loads load the cables
    assert big.res_trafo["loading_percent"].iloc[0] == pytest.approx(
        src.res_trafo["loading_percent"].iloc[0], rel=1e-6
    )
    assert big.res_trafo["p_hv_mw"].iloc[0] == pytest.approx(
        copies * src.res_trafo["p_hv_mw"].iloc[0], rel=1e-6
    )


def test_written_feeder_reads_back_as_the_source(source: pp.pandapowerNet, tmp_path) -> None:
    """A copies=1 file is the SimBench feeder itself to twin: same households, same profiles;
    a 2-copy file has twice the households with the same profiles."""
    ref = load_feeder(SOURCE_FEEDER, cache_dir=tmp_path / "cache")
    one = load_feeder(write_feeder(replicate(source, 1), tmp_path / "x1.json"), tmp_path / "cache")
    two = load_feeder(write_feeder(replicate(source, 2), tmp_path / "x2.json"), tmp_path / "cache")
    assert one.n_households == ref.n_households == 102
    assert two.n_households == 204
    assert one.has_simbench_profiles and two.has_simbench_profiles
    np.testing.assert_allclose(one.load_p_kw, ref.load_p_kw)
    n = len(ref.net.load)
    np.testing.assert_allclose(two.load_p_kw[:, :n], ref.load_p_kw)
    np.testing.assert_allclose(two.load_p_kw[:, n:], ref.load_p_kw)
