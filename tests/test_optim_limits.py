"""Feeder limit rows from the linear feeder model: a row's slack is >= 0 exactly when the linear
model says the limit holds (transformer, cables, voltages), and screening keeps rows that can
bind."""

from __future__ import annotations

import numpy as np
import pytest

from twin.grid.feeders import load_feeder
from twin.grid.linear import LinearFeederModel
from twin.optim.limits import build_grid_limits


@pytest.fixture(scope="module")
def feeder():
    return load_feeder("1-LV-urban6--0-sw")


def test_rows_agree_with_the_linear_feeder_model(feeder):
    net = feeder.net
    n_load = len(net.load)
    lin = LinearFeederModel(net)
    huge = np.full(n_load, 1e3)  # everything could bind: every row is kept
    grid = build_grid_limits(
        net, huge, huge, np.full(n_load, 5.0), margin=0.0, v_min_pu=0.95, v_limit_pu=0.9
    )
    names = list(grid.names)
    assert (
        names[0] == "trafo 0"
        and any(n.startswith("line") for n in names)
        and any(n.endswith("voltage") for n in names)
    )
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 6, (5, n_load))
    q = rng.uniform(0, 1, (5, n_load))
    rhs = grid.rhs(p, q)  # (R, 5): slack of every row at these loads
    # transformer: active power within sqrt(S^2 - Q^2)
    trafo = lin.trafo_p_kw(p, q)[:, 0]
    s_max = lin.trafo_rating_kva[0]
    np.testing.assert_allclose(
        rhs[0], np.sqrt(s_max**2 - lin.trafo_q_kvar(p, q)[:, 0] ** 2) - trafo, rtol=1e-9
    )
    # a cable, downstream direction: rating at 0.95 p.u. minus the downstream flow
    k = next(i for i, n in enumerate(names) if n.startswith("line") and not n.endswith("export"))
    line = int(names[k].split()[1])
    pos = list(lin.line_index).index(line)
    orient = np.sign(lin.A_line[pos][np.flatnonzero(lin.A_line[pos])[0]])
    flow_p = orient * lin.line_p_kw(p, q)[:, pos]
    flow_q = orient * lin.line_q_kvar(p, q)[:, pos]
    rating = lin.line_rating_kva[pos] * 0.95
    np.testing.assert_allclose(
        rhs[k], np.sqrt(rating**2 - flow_q**2) - flow_p, rtol=1e-9, atol=1e-9
    )
    # a voltage row: its slack has the sign of vm - 0.90 (scaled to kW-like units)
    v = next(i for i, n in enumerate(names) if n.endswith("voltage"))
    bus = int(names[v].split()[1])
    b = list(lin.bus_index).index(bus)
    scale = (
        60.0 * np.linspace(0.2, 3.0, 40)[:, None] * np.ones((1, n_load))
    )  # from light to very heavy
    vm = lin.vm_pu(scale, 0.2 * scale)[:, b]
    slack = grid.rhs(scale, 0.2 * scale)[v]
    assert (vm < 0.9).any() and (vm > 0.9).any()
    np.testing.assert_array_equal(slack >= 0, vm >= 0.9)
    np.testing.assert_allclose(slack * np.max(np.abs(lin.V_p[b])), vm - 0.9, atol=1e-12)


def test_screening_keeps_only_rows_whose_worst_case_reaches_the_limit(feeder):
    net = feeder.net
    n_load = len(net.load)
    light = np.full(n_load, 0.5)
    grid = build_grid_limits(net, light, np.zeros(n_load), np.zeros(n_load), margin=0.1)
    assert grid.names == ("trafo 0",)
    assert "trafo 0 export" in grid.screened_out and "bus voltages" in grid.screened_out
