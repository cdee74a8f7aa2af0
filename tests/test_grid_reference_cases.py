"""Reference power-flow cases stored as data (tests/data/grid/*.json), one test runs them all.

The expected values were computed with pandapower ``runpp`` (see make_cases.py there); the
cases cover converter paths the SimBench feeders do not: bus-bus switches, an open line
switch (de-energised bus), a shunt, an in-service static generator, taps on either side,
parallel transformers and derating factors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandapower as pp
import pytest

from twin.grid.linear import LinearFeederModel
from twin.grid.powerflow import BatchPowerFlow

CASE_DIR = Path(__file__).parent / "data" / "grid"
CASES = sorted(CASE_DIR.glob("*.json"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_reference_case(path: Path) -> None:
    case = json.loads(path.read_text())
    net = pp.from_json_string(case["net"])
    p = np.array(case["p_load_kw"], dtype=float)
    q = np.array(case["q_load_kvar"], dtype=float)
    exp = {k: np.array(v, dtype=float) for k, v in case["expected"].items()}
    res = BatchPowerFlow(net).run(p, q)
    assert np.array_equal(np.isnan(res.vm_pu), np.isnan(exp["vm_pu"]))
    np.testing.assert_allclose(res.vm_pu, exp["vm_pu"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.line_loading_pct, exp["line_loading_pct"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(res.trafo_loading_pct, exp["trafo_loading_pct"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(res.trafo_p_kw, exp["trafo_p_kw"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(res.losses_kw, exp["losses_kw"], rtol=0, atol=1e-4)


def test_cases_exist() -> None:
    assert len(CASES) >= 3


def test_linear_model_handles_switches() -> None:
    case = json.loads((CASE_DIR / "switches_shunt_sgen.json").read_text())
    net = pp.from_json_string(case["net"])
    net.sgen["in_service"] = False
    lm = LinearFeederModel(net)
    # the load behind the open switch (row 4) feeds nothing; the two on busbar 2's branch
    # reach the transformer through the bus-bus switch
    assert (lm.A_line[:, 4] == 0).all() and lm.A_trafo[0, 4] == 0
    assert (lm.A_trafo[0, :4] == 1).all()


def test_tap_without_changer_type_is_ignored_like_pandapower() -> None:
    from twin.grid.powerflow import run_pandapower

    case = json.loads((CASE_DIR / "lv_tap_parallel_derated.json").read_text())
    net = pp.from_json_string(case["net"])
    p = np.array(case["p_load_kw"], dtype=float)
    q = np.array(case["q_load_kvar"], dtype=float)
    with_tap = BatchPowerFlow(net).run(p, q)
    net.trafo["tap_changer_type"] = None  # pandapower 3 then ignores tap_pos
    res = BatchPowerFlow(net).run(p, q)
    ref = run_pandapower(net, p, q)
    np.testing.assert_allclose(res.vm_pu, ref.vm_pu, rtol=0, atol=1e-8)
    # the LV-side tap at -1 (one 2.5 % step on the LV winding) lowers the LV voltage by ~2.5 %
    lv = net.bus.vn_kv.to_numpy() < 1.0
    assert np.allclose(with_tap.vm_pu[0, lv] - res.vm_pu[0, lv], -0.025, atol=0.003)
