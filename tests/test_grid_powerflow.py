"""Batch AC power flow (power-grid-model) against pandapower, and physical invariants."""

from __future__ import annotations

import numpy as np
import pytest

from twin.grid.feeders import Feeder, load_feeder
from twin.grid.powerflow import BatchPowerFlow, PowerFlowError, PowerFlowResult, run_pandapower

FEEDERS = ["1-LV-urban6--0-sw", "1-LV-semiurb5--0-sw", "kerber_dorfnetz", "ieee_european_lv"]

# agreement bands (measured: vm 7e-10 p.u., line loading 6e-7 %, trafo loading 3e-7 %)
VM_TOL_PU = 1e-8
LINE_LOADING_TOL_PCT = 1e-5
TRAFO_LOADING_TOL_PCT = 1e-5
POWER_TOL_KW = 1e-4


@pytest.fixture(scope="module", params=FEEDERS)
def feeder(request: pytest.FixtureRequest) -> Feeder:
    return load_feeder(request.param)


def sampled_loads(f: Feeder, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """20 steps: 10 as profiled, 5 with +8 kW per household, 5 with 6 kW PV feed-in each."""
    rng = np.random.default_rng(seed)
    steps = rng.choice(f.load_p_kw.shape[0], size=20, replace=False)
    p = f.load_p_kw[steps].copy()
    q = f.load_q_kvar[steps].copy()
    hh = f.household_cols
    p[10:15, hh] += 8.0
    p[15:20, hh] -= 6.0 * rng.uniform(0.5, 1.0, size=(5, len(hh)))
    return p, q


def test_batch_matches_pandapower(feeder: Feeder) -> None:
    p, q = sampled_loads(feeder)
    res = BatchPowerFlow(feeder.net).run(p, q)
    ref = run_pandapower(feeder.net, p, q)
    assert np.nanmax(np.abs(res.vm_pu - ref.vm_pu)) < VM_TOL_PU
    assert np.array_equal(np.isnan(res.vm_pu), np.isnan(ref.vm_pu))
    assert np.max(np.abs(res.line_loading_pct - ref.line_loading_pct)) < LINE_LOADING_TOL_PCT
    assert np.max(np.abs(res.trafo_loading_pct - ref.trafo_loading_pct)) < TRAFO_LOADING_TOL_PCT
    assert np.max(np.abs(res.line_p_from_kw - ref.line_p_from_kw)) < POWER_TOL_KW
    assert np.max(np.abs(res.trafo_s_kva - ref.trafo_s_kva)) < POWER_TOL_KW
    assert np.max(np.abs(res.trafo_p_kw - ref.trafo_p_kw)) < POWER_TOL_KW
    assert np.max(np.abs(res.losses_kw - ref.losses_kw)) < POWER_TOL_KW
    # the sample really covers heavy load and reverse flow
    assert res.trafo_p_kw[10:15].min() > res.trafo_p_kw[:10].max()
    assert (res.trafo_p_kw[15:20] < 0).all()
    assert np.nanmax(res.vm_pu[15:20]) > np.nanmax(res.vm_pu[:10])


def test_power_balance_and_losses(feeder: Feeder) -> None:
    p, q = sampled_loads(feeder, seed=11)
    res = BatchPowerFlow(feeder.net).run(p, q)
    on = feeder.net.load["in_service"].to_numpy(bool)
    # MV grid supplies loads plus losses (single transformer behind the ext grid)
    assert np.allclose(res.trafo_p_kw.sum(axis=1), p[:, on].sum(axis=1) + res.losses_kw, atol=1e-6)
    assert (res.losses_kw > 0).all()
    # losses grow with the transferred power: the +8 kW steps lose more than any base step
    assert res.losses_kw[10:15].min() > res.losses_kw[:10].max()
    # transformer apparent power is at least its active power
    assert (res.trafo_s_kva + 1e-9 >= np.abs(res.trafo_p_kw)).all()


def test_zero_load_voltages_follow_ext_grid(feeder: Feeder) -> None:
    """With no load the LV voltages equal the ext grid setpoint scaled by the tap ratio,
    up to the transformer's magnetising current and the cables' charging current."""
    net = feeder.net
    n = len(net.load)
    res = BatchPowerFlow(net).run(np.zeros((1, n)), np.zeros((1, n)))
    tr = net.trafo.iloc[0]
    bus_vn = net.bus["vn_kv"]
    ratio = (
        (
            tr.vn_hv_kv
            * (1 + (tr.tap_pos - tr.tap_neutral) * tr.tap_step_percent / 100)
            / tr.vn_lv_kv
        )
        * bus_vn[tr.lv_bus]
        / bus_vn[tr.hv_bus]
    )
    v_expected = net.ext_grid.vm_pu.iloc[0] / ratio
    lv = (bus_vn < 1.0).to_numpy()
    assert np.nanmax(np.abs(res.vm_pu[0, lv] - v_expected)) < 2e-3
    # the LV network is nearly flat: cable charging moves voltages by far less than 1e-4 p.u.
    assert np.nanmax(res.vm_pu[0, lv]) - np.nanmin(res.vm_pu[0, lv]) < 1e-4
    # only iron losses remain: p0 of the transformer (at the actual voltage) within 1 %
    v_hv = net.ext_grid.vm_pu.iloc[0]
    assert res.losses_kw[0] == pytest.approx(tr.pfe_kw * v_hv**2, rel=0.01, abs=0.01)
    assert res.line_loading_pct.max() < 1.0


def test_threads_give_identical_results() -> None:
    f = load_feeder("kerber_dorfnetz")
    p, q = f.load_p_kw[:500] * 4, f.load_q_kvar[:500] * 4
    a = BatchPowerFlow(f.net, threads=1).run(p, q)
    b = BatchPowerFlow(f.net, threads=0, max_steps_per_call=128).run(p, q)  # 4 chunks
    np.testing.assert_allclose(a.vm_pu, b.vm_pu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.line_loading_pct, b.line_loading_pct, rtol=0, atol=1e-9)
    assert isinstance(a, PowerFlowResult) and a.n_steps == 500


def test_nonconvergence_names_the_step() -> None:
    f = load_feeder("kerber_landnetz_kabel_1")
    p = f.load_p_kw[:6].copy()
    q = f.load_q_kvar[:6].copy()
    p[4] += 5000.0  # 5 MW per house: no power-flow solution exists
    with pytest.raises(PowerFlowError, match=r"step 4\b") as info:
        BatchPowerFlow(f.net).run(p, q)
    assert "\n" not in str(info.value)


def test_bad_shapes_are_rejected() -> None:
    f = load_feeder("kerber_landnetz_kabel_1")
    bpf = BatchPowerFlow(f.net)
    with pytest.raises(ValueError, match="must both be"):
        bpf.run(np.zeros((3, 2)), np.zeros((3, 2)))
    p = np.zeros((3, len(f.net.load)))
    p[1, 0] = np.nan
    with pytest.raises(ValueError, match="step 1"):
        bpf.run(p, np.zeros_like(p))


def test_open_switch_deenergises_subtree() -> None:
    f = load_feeder("kerber_landnetz_kabel_1")
    import copy

    import pandapower as pp

    net = copy.deepcopy(f.net)
    # open the last line at its to-bus: that bus and its load are cut off
    line = net.line.index[-1]
    cut_bus = int(net.line.at[line, "to_bus"])
    pp.create_switch(net, bus=cut_bus, element=line, et="l", closed=False)
    p, q = f.load_p_kw[:3], f.load_q_kvar[:3]
    res = BatchPowerFlow(net).run(p, q)
    ref = run_pandapower(net, p, q)
    pos = net.bus.index.get_loc(cut_bus)
    assert np.isnan(res.vm_pu[:, pos]).all() and np.isnan(ref.vm_pu[:, pos]).all()
    assert np.nanmax(np.abs(res.vm_pu - ref.vm_pu)) < VM_TOL_PU


def test_moved_pgm_internals_fail_with_one_message_and_fall_back(monkeypatch) -> None:
    """If power-grid-model moves an internal the reused batches rely on, the check names it
    and the adapter, and a solve warns once and takes the public API, with its results."""
    from power_grid_model import ComponentType, initialize_array

    from twin.grid import powerflow as pf

    gone = ("power_grid_model._core.data_handling", "gone")
    monkeypatch.setattr(pf, "_PGM_INTERNALS", (*pf._PGM_INTERNALS, gone))
    monkeypatch.setattr(pf, "_pgm_internals_error", [])
    with pytest.raises(pf.PgmInternalsMoved, match=r"data_handling\.gone.*twin/grid/powerflow\.py"):
        pf.check_pgm_internals()
    f = load_feeder(FEEDERS[0])
    model = BatchPowerFlow(f.net)._model
    p, q = sampled_loads(f)
    upd = {ComponentType.sym_load: initialize_array("update", ComponentType.sym_load, p[:4].shape)}
    upd[ComponentType.sym_load]["p_specified"] = p[:4] * 1e3
    upd[ComponentType.sym_load]["q_specified"] = q[:4] * 1e3
    outputs = {ComponentType.node: ["u_pu"]}

    def solve(reuse):
        return pf.solve_batch(model, upd, outputs, 0, True, 1e-10, -1, lambda k: 0.0, reuse=reuse)

    cache: dict = {}
    with pytest.warns(RuntimeWarning, match="using its public API"):
        got = solve(cache)
    assert not cache
    np.testing.assert_array_equal(
        got[ComponentType.node]["u_pu"], solve(None)[ComponentType.node]["u_pu"]
    )
