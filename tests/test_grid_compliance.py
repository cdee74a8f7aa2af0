"""Grid KPIs on hand-made power-flow results whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pandapower as pp
import pytest

from twin.grid.compliance import (
    cable_kpis,
    grid_kpis,
    loading_duration_curve,
    voltage_compliance,
    week_of_step,
)
from twin.grid.powerflow import PowerFlowResult
from twin.grid.ratings import line_rating_kva

WEEK = 7 * 96


def tiny_net() -> pp.pandapowerNet:
    """MV bus 0, LV buses 1-3, a 250 kVA transformer and two NAYY 4x150 cables (270 A)."""
    net = pp.create_empty_network()
    mv = pp.create_bus(net, 10.0)
    b1, b2, b3 = (pp.create_bus(net, 0.4) for _ in range(3))
    pp.create_ext_grid(net, mv)
    pp.create_transformer(net, mv, b1, std_type="0.25 MVA 10/0.4 kV")
    pp.create_line(net, b1, b2, 0.1, "NAYY 4x150 SE", name="c1")
    pp.create_line(net, b2, b3, 0.1, "NAYY 4x150 SE", name="c2")
    return net


def make_result(n_t: int, vm: np.ndarray | None = None) -> PowerFlowResult:
    net = tiny_net()
    vm = np.ones((n_t, 4)) if vm is None else vm
    return PowerFlowResult(
        vm_pu=vm,
        line_loading_pct=np.full((n_t, 2), 50.0),
        line_p_from_kw=np.zeros((n_t, 2)),
        trafo_loading_pct=np.full((n_t, 1), 40.0),
        trafo_s_kva=np.full((n_t, 1), 100.0),
        trafo_p_kw=np.full((n_t, 1), 100.0),
        losses_kw=np.full(n_t, 2.0),
        bus_index=net.bus.index.to_numpy(),
        line_index=net.line.index.to_numpy(),
        trafo_index=net.trafo.index.to_numpy(),
        steps=np.arange(n_t),
    )


def test_week_blocks() -> None:
    w = week_of_step(35040)
    assert w.max() == 51  # 52 weeks, the 365th day joins the last week
    assert np.bincount(w)[-1] == 8 * 96 and np.bincount(w)[0] == WEEK
    assert (week_of_step(100) == 0).all()  # a short run is one partial week


def test_transformer_and_cable_overload_kpis() -> None:
    n_t = 96
    res = make_result(n_t)
    # 2 hours (8 steps) at 300 kVA on a 250 kVA transformer: 50 kVA above rating
    res.trafo_s_kva[:8, 0] = 300.0
    res.trafo_loading_pct[:, 0] = 100.0 * res.trafo_s_kva[:, 0] / 250.0
    # cable c2: 4 steps at 150 %
    res.line_loading_pct[10:14, 1] = 150.0
    # 4 steps of PV export
    res.trafo_p_kw[20:24, 0] = -30.0
    net = tiny_net()
    k = grid_kpis(res, net)
    json.dumps(k)  # JSON-able
    assert k["trafo_rating_kva"] == pytest.approx(250.0)
    assert k["trafo_peak_kva"] == pytest.approx(300.0)
    assert k["trafo_peak_loading_pct"] == pytest.approx(120.0)
    assert k["trafo_hours_over_100pct_h"] == pytest.approx(2.0)
    assert k["trafo_energy_over_rating_kvah"] == pytest.approx(50.0 * 2.0)
    assert k["trafo_export_kwh"] == pytest.approx(30.0 * 1.0)
    assert k["trafo_import_kwh"] == pytest.approx(100.0 * (n_t - 4) * 0.25)
    rating = line_rating_kva(net)
    assert rating[1] == pytest.approx(np.sqrt(3) * 0.4 * 270.0)
    assert k["line_worst"] == 1 and k["line_worst_name"] == "c2"
    assert k["line_max_loading_pct"] == pytest.approx(150.0)
    assert k["line_worst_hours_over_100pct_h"] == pytest.approx(1.0)
    assert k["line_worst_energy_over_rating_kvah"] == pytest.approx(0.5 * rating[1] * 1.0)
    assert k["lines_n_overloaded"] == 1
    ck = cable_kpis(res, net)
    assert ck.loc[0, "hours_over_100pct_h"] == 0.0
    # losses: 2 kW for 24 h over |P| energy through the transformer
    through = 100.0 * (n_t - 4) * 0.25 + 30.0
    assert k["losses_kwh"] == pytest.approx(48.0)
    assert k["losses_pct_of_trafo_energy"] == pytest.approx(100 * 48.0 / through)


def test_duration_curve_sorted() -> None:
    res = make_result(10)
    res.trafo_loading_pct[:, 0] = [5, 80, 20, 120, 60, 0, 99, 101, 30, 40]
    c = loading_duration_curve(res.trafo_loading_pct[:, 0])
    assert c.tolist() == [120, 101, 99, 80, 60, 40, 30, 20, 5, 0]


def test_voltage_compliance_rules() -> None:
    n_t = 2 * WEEK
    vm = np.ones((n_t, 4))
    # bus 1, week 0: exactly 5 % of steps at 0.89 p.u. -> still compliant
    n5 = int(0.05 * WEEK)  # 33 steps = 4.9 %
    vm[:n5, 1] = 0.89
    # bus 2, week 0: 6 % at 0.89 -> not compliant; week 1 fine
    vm[: int(0.06 * WEEK) + 1, 2] = 0.89
    # bus 3, week 1: one step at 0.84 (below -15 %) -> not compliant though 99.9 % in band
    vm[WEEK + 5, 3] = 0.84
    comp = voltage_compliance(vm)
    assert comp["compliant"].shape == (2, 4)
    assert comp["compliant"][:, 1].all()
    assert comp["compliant"][:, 2].tolist() == [False, True]
    assert comp["compliant"][:, 3].tolist() == [True, False]
    assert comp["share_in_band"][0, 1] == pytest.approx(1 - n5 / WEEK)

    res = make_result(n_t, vm)
    k = grid_kpis(res, tiny_net())
    # bus 0 is the 10 kV bus: not counted; 3 LV buses x 2 weeks, 2 bus-weeks fail
    assert k["voltage_n_bus_weeks"] == 6
    assert k["voltage_bus_weeks_compliant_share"] == pytest.approx(4 / 6)
    assert k["voltage_worst_bus"] == 2  # lowest in-band share (94 %) among the failing buses
    assert k["voltage_all_compliant"] is False
    assert k["vm_min_pu"] == pytest.approx(0.84) and k["vm_min_bus"] == 3


def test_overvoltage_counts_too() -> None:
    vm = np.ones((WEEK, 2))
    vm[:100, 1] = 1.11  # 15 % of the week above +10 %
    comp = voltage_compliance(vm)
    assert comp["compliant"].tolist() == [[True, False]]
    assert not comp["all_within_limits"][0, 1]
