"""One transformer rating and one line rating (twin.grid.ratings), used by the power flow,
the KPIs, the linear model and the contracts' limits alike; parallel transformers are one
station."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandapower as pp
import pytest

from twin.grid.compliance import grid_kpis, station_of
from twin.grid.linear import LinearFeederModel
from twin.grid.powerflow import BatchPowerFlow
from twin.grid.ratings import (
    line_rating_kva,
    station_mask,
    station_rating_kva,
    trafo_unit_rating_kva,
)
from twin.optim.limits import build_grid_limits

CASE_DIR = Path(__file__).parent / "data" / "grid"


def two_units(sn_mva: tuple[float, float] = (0.25, 0.25), vk: tuple[float, float] = (4.0, 4.0)):
    """Two separate transformer rows in parallel between one MV and one LV bus, one cable,
    two loads."""
    net = pp.create_empty_network()
    mv, lv = pp.create_bus(net, 20.0), pp.create_bus(net, 0.4)
    b1, b2 = pp.create_bus(net, 0.4), pp.create_bus(net, 0.4)
    pp.create_ext_grid(net, mv)
    for sn, vk_pct in zip(sn_mva, vk, strict=True):
        pp.create_transformer_from_parameters(
            net, mv, lv, sn_mva=sn, vn_hv_kv=20.0, vn_lv_kv=0.4, vkr_percent=1.0,
            vk_percent=vk_pct, pfe_kw=0.0, i0_percent=0.0, vector_group="Dyn5", shift_degree=150,
        )  # fmt: skip
    pp.create_line(net, lv, b1, 0.1, "NAYY 4x150 SE")
    pp.create_line(net, b1, b2, 0.1, "NAYY 4x150 SE")
    pp.create_load(net, b1, p_mw=0.0)
    pp.create_load(net, b2, p_mw=0.0)
    return net


def test_unit_rating_counts_parallel_units_and_derating():
    case = json.loads((CASE_DIR / "lv_tap_parallel_derated.json").read_text())
    net = pp.from_json_string(case["net"])
    t = net.trafo.iloc[0]
    assert t["parallel"] == 2 and t["df"] < 1.0
    expected = t["sn_mva"] * 1e3 * 2 * t["df"]
    assert trafo_unit_rating_kva(net)[0] == pytest.approx(expected)
    assert station_rating_kva(net) == pytest.approx(expected)
    # the KPIs, the power flow's loading and the optimiser's limit row use that one figure
    p = np.array(case["p_load_kw"], float)
    q = np.array(case["q_load_kvar"], float)
    res = BatchPowerFlow(net).run(p, q)
    k = grid_kpis(res, net)
    assert k["trafo_rating_kva"] == pytest.approx(expected)
    np.testing.assert_allclose(res.trafo_loading_pct[:, 0], 100 * res.trafo_s_kva[:, 0] / expected)
    lim = build_grid_limits(net, np.full(2, 1e3), np.zeros(2), np.zeros(2), margin=0.1)
    assert lim.names[0] == "trafo 0" and lim.s_max[0] == pytest.approx(0.9 * expected)


def test_two_parallel_transformers_are_one_station():
    net = two_units()
    assert station_mask(net).tolist() == [True, True]
    assert station_rating_kva(net) == pytest.approx(500.0)
    p = np.array([[60.0, 40.0], [200.0, 180.0]])
    q = 0.2 * p
    res = BatchPowerFlow(net).run(p, q)
    st = station_of(res, net)
    # identical units share the load equally; the station carries all of it (+ losses)
    np.testing.assert_allclose(res.trafo_s_kva[:, 0], res.trafo_s_kva[:, 1], rtol=1e-9)
    np.testing.assert_allclose(st.p_kw, p.sum(axis=1) + res.losses_kw, rtol=1e-9)
    k = grid_kpis(res, net)
    assert k["trafo_units"] == 2 and k["trafo_rating_kva"] == pytest.approx(500.0)
    assert k["trafo_peak_kva"] == pytest.approx(st.s_kva.max())
    assert k["trafo_peak_kva"] == pytest.approx(res.trafo_s_kva[1].sum())  # both units, not one
    assert k["trafo_peak_loading_pct"] == pytest.approx(100 * st.s_kva.max() / 500.0)
    # the linear model sees one radial station (no "mesh"), and so does the optimiser
    lin = LinearFeederModel(net)
    np.testing.assert_allclose(lin.A_station, [1.0, 1.0])
    np.testing.assert_allclose(lin.A_trafo, [[0.5, 0.5], [0.5, 0.5]])
    lim = build_grid_limits(net, np.full(2, 1e3), np.zeros(2), np.zeros(2), margin=0.0)
    assert [n for n in lim.names if n.startswith("trafo")] == ["trafo 0+1"]
    assert lim.s_max[0] == pytest.approx(k["trafo_rating_kva"])
    # linear station flow against the AC result: within the losses
    assert np.max(np.abs(lin.station_p0_kw + p @ lin.A_station - st.p_kw)) < 2 * res.losses_kw.max()


def test_unequal_parallel_units_share_by_admittance():
    net = two_units(sn_mva=(0.4, 0.25), vk=(4.0, 4.0))  # same vk: current splits as the ratings
    lin = LinearFeederModel(net)
    share = lin.A_trafo[:, 0]
    np.testing.assert_allclose(share, [0.4 / 0.65, 0.25 / 0.65], rtol=1e-9)
    p = np.array([[150.0, 150.0]])
    res = BatchPowerFlow(net).run(p, 0.0 * p)
    np.testing.assert_allclose(res.trafo_p_kw[0] / res.trafo_p_kw[0].sum(), share, atol=2e-3)
    # both units are loaded alike relative to their ratings
    assert res.trafo_loading_pct[0, 0] == pytest.approx(res.trafo_loading_pct[0, 1], rel=5e-3)


def test_line_rating_at_nominal_voltage():
    net = two_units()
    np.testing.assert_allclose(line_rating_kva(net), np.sqrt(3) * 0.4 * 270.0)
