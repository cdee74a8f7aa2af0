"""Unbalanced batch power flow: physical invariants, the user-net elements it models, the
unbalance KPIs and the per-phase voltage figure."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from twin.grid.asymmetric import AsymmetricPowerFlow, AsymPowerFlowResult, phase_loads
from twin.grid.compliance import (
    asym_grid_kpis,
    unbalance_compliance,
    voltage_unbalance_factor,
)
from twin.grid.feeders import Feeder, load_feeder
from twin.grid.powerflow import BatchPowerFlow, LineZeroSequence, PowerFlowError


@pytest.fixture(scope="module")
def urban6() -> Feeder:
    return load_feeder("1-LV-urban6--0-sw")


def one_phase_evening(
    f: Feeder, seed: int = 5, days: int = 2, ev_share: float = 0.5, ev_kw: float = 3.7
):
    """``days`` winter days from Jan 21: households x2 (60 % single-phase on a random phase,
    the rest three-phase), and an ``ev_kw`` charger on **phase a** at ``ev_share`` of the
    households for 3 h from a random start between 17 and 20 h. Returns (p, q, phase)."""
    rng = np.random.default_rng(seed)
    s0 = 20 * 96
    p = f.load_p_kw[s0 : s0 + 96 * days] * 2.0
    q = f.load_q_kvar[s0 : s0 + 96 * days] * 2.0
    hh = f.household_cols
    phase = np.full(len(f.net.load), -1)
    single = rng.random(len(hh)) < 0.6
    phase[hh[single]] = rng.integers(0, 3, single.sum())
    p3, q3 = phase_loads(p, q, phase)
    ev = rng.choice(hh, size=int(ev_share * len(hh)), replace=False)
    for d in range(days):
        for j, start in zip(ev, rng.integers(17 * 4, 20 * 4, len(ev)), strict=True):
            p3[d * 96 + start : d * 96 + start + 12, j, 0] += ev_kw
    return p3, q3, phase


@pytest.fixture(scope="module")
def evening(urban6: Feeder):
    p, q, phase = one_phase_evening(urban6)
    return p, q, AsymmetricPowerFlow(urban6.net).run(p, q)


def test_balanced_loads_give_the_balanced_solution(urban6: Feeder) -> None:
    p, q = urban6.load_p_kw[:48] * 2, urban6.load_q_kvar[:48] * 2
    sym = BatchPowerFlow(urban6.net).run(p, q)
    asym = AsymmetricPowerFlow(urban6.net).run(p, q)  # (T, n) is split equally
    for j in range(3):
        np.testing.assert_allclose(asym.vm_pu[..., j], sym.vm_pu, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        asym.line_i_ka.max(-1) * 1e3, asym.line_i_ka.min(-1) * 1e3, atol=1e-6
    )
    assert asym.line_i_n_ka.max() < 1e-9 and asym.trafo_i_n_ka.max() < 1e-9
    np.testing.assert_allclose(asym.trafo_p_kw, sym.trafo_p_kw, rtol=0, atol=1e-6)
    np.testing.assert_allclose(asym.losses_kw, sym.losses_kw, rtol=0, atol=1e-6)
    np.testing.assert_allclose(asym.line_loading_max_pct, sym.line_loading_pct, rtol=0, atol=1e-6)
    vuf = voltage_unbalance_factor(asym.u_pu)
    assert np.nanmax(vuf) < 1e-6
    # angles: phase b lags a by 120 deg everywhere
    d = (asym.va_degree[..., 0] - asym.va_degree[..., 1]) % 360
    np.testing.assert_allclose(d[np.isfinite(d)], 120.0, atol=1e-6)


def test_power_balance_and_neutral_current(urban6: Feeder, evening) -> None:
    p, q, res = evening
    on = urban6.net.load["in_service"].to_numpy(bool)
    load = p[:, on].sum(axis=(1, 2))
    np.testing.assert_allclose(res.trafo_p_kw[:, 0], load + res.losses_kw, rtol=0, atol=1e-6)
    assert (res.losses_kw > 0).all()
    # per phase, the LV side delivers that phase's loads plus the cables' losses of it (> 0)
    lv_losses = res.trafo_p_lv_kw[:, 0].sum(-1) - load
    assert (lv_losses > 0).all() and (lv_losses < res.losses_kw).all()
    # chargers on phase a: phase a carries most at the transformer in the evening
    ev = res.trafo_p_lv_kw[:, 0, 0] - res.trafo_p_lv_kw[:, 0, 1:].max(-1)
    assert ev.max() > 50.0
    # the residual current is at most the sum and at least the spread of the phase currents
    i = res.line_i_ka
    assert (res.line_i_n_ka <= i.sum(-1) + 1e-9).all()
    assert (res.line_i_n_ka >= i.max(-1) - i[..., [1, 2, 0]].max(-1) - i.min(-1) - 1e-6).all()


def test_single_phase_load_alone() -> None:
    """One single-phase load: the neutral carries its whole current, its phase drops most."""
    f = load_feeder("kerber_landnetz_kabel_1")
    n = len(f.net.load)
    p = np.zeros((1, n, 3))
    q = np.zeros((1, n, 3))
    p[0, -1, 1] = 8.0  # 8 kW on phase b of the last house
    res = AsymmetricPowerFlow(f.net).run(p, q)
    bus = int(f.net.load["bus"].iloc[-1])
    k = int(np.flatnonzero(f.net.bus.index == bus)[0])
    vm = res.vm_pu[0, k]
    assert vm[1] < vm[0] - 0.01 and vm[1] < vm[2] - 0.01
    carrying = res.line_i_ka[0, :, 1] > 0.01
    assert carrying.any()
    # other phases carry only cable charging current; the residual equals the phase-b current
    np.testing.assert_allclose(
        res.line_i_n_ka[0, carrying], res.line_i_ka[0, carrying, 1], rtol=2e-3
    )
    assert voltage_unbalance_factor(res.u_pu[0, k]) > 0.5
    # with Z0 = Z1 for every branch (the Dyn transformer's Z0 is its leakage impedance
    # anyway) the phases decouple: the unloaded phases keep their no-load voltage
    decoupled = LineZeroSequence(r0_per_r1=1.0, x0_per_x1=1.0, c0_per_c1=1.0)
    apf = AsymmetricPowerFlow(f.net, line_zero_sequence=decoupled)
    v0 = apf.run(np.zeros_like(p), q).vm_pu[0]
    v1 = apf.run(p, q).vm_pu[0]
    lv = f.net.bus["vn_kv"].to_numpy() < 1.0
    assert np.abs(v1[lv][:, [0, 2]] - v0[lv][:, [0, 2]]).max() < 1e-4
    assert (v0[lv, 1] - v1[lv, 1]).max() > 0.01
    # and with the default Z0 = 4 Z1 the loaded phase drops more (the neutral's drop adds)
    assert v0[k, 1] - vm[1] > 1.5 * (v0[k, 1] - v1[k, 1])


def test_asymmetric_rows_of_a_user_net() -> None:
    """The IEEE feeder as pandapower ships it (55 asymmetric_load rows) equals the same loads
    given per step as net.load rows on their phases; per-step asymmetric arrays update them."""
    net = pn.ieee_european_lv_asymmetric("on_peak_566")
    al = net.asymmetric_load
    none = np.zeros((1, 0, 3))
    res = AsymmetricPowerFlow(net).run(none, none)
    pabc = al[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy() * 1e3
    qabc = al[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].to_numpy() * 1e3
    as_loads = copy.deepcopy(net)
    for _, row in al.iterrows():
        pp.create_load(as_loads, bus=int(row["bus"]), p_mw=0.0)
    as_loads.asymmetric_load["in_service"] = False
    res2 = AsymmetricPowerFlow(as_loads).run(pabc[None], qabc[None])
    np.testing.assert_allclose(res2.vm_pu, res.vm_pu, rtol=0, atol=1e-10)
    # two steps of per-step asymmetric powers: the second doubles the loads
    p2 = np.stack([pabc, 2 * pabc])
    q2 = np.stack([qabc, 2 * qabc])
    res3 = AsymmetricPowerFlow(net).run(np.zeros((2, 0, 3)), np.zeros((2, 0, 3)), p2, q2)
    np.testing.assert_allclose(res3.vm_pu[0], res.vm_pu[0], rtol=0, atol=1e-10)
    assert np.nanmin(res3.vm_pu[1]) < np.nanmin(res.vm_pu[0]) - 0.01
    # an asymmetric_sgen injecting on phase c equals a negative load there
    gen = copy.deepcopy(net)
    bus = int(al["bus"].iloc[7])
    pp.create_asymmetric_sgen(gen, bus, p_c_mw=0.004, q_c_mvar=0.0)
    neg = copy.deepcopy(net)
    pp.create_asymmetric_load(neg, bus, p_c_mw=-0.004, type="wye")
    np.testing.assert_allclose(
        AsymmetricPowerFlow(gen).run(none, none).vm_pu,
        AsymmetricPowerFlow(neg).run(none, none).vm_pu,
        rtol=0,
        atol=1e-10,
    )
    # the balanced engine refuses them with a pointer to the unbalanced one
    with pytest.raises(ValueError, match="AsymmetricPowerFlow"):
        BatchPowerFlow(net)
    delta = copy.deepcopy(net)
    delta.asymmetric_load.loc[0, "type"] = "delta"
    with pytest.raises(ValueError, match="delta"):
        AsymmetricPowerFlow(delta)


def test_threads_chunks_and_float32(urban6: Feeder, evening) -> None:
    p, q, res = evening
    a = AsymmetricPowerFlow(urban6.net, threads=1, max_steps_per_call=50).run(p, q)
    np.testing.assert_allclose(a.vm_pu, res.vm_pu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a.line_i_n_ka, res.line_i_n_ka, rtol=0, atol=1e-12)
    b = AsymmetricPowerFlow(urban6.net, dtype=np.float32).run(p, q)
    assert b.vm_pu.dtype == np.float32
    np.testing.assert_allclose(b.vm_pu, res.vm_pu, rtol=0, atol=1e-6)


def test_errors_name_the_step_and_shape() -> None:
    f = load_feeder("kerber_landnetz_kabel_1")
    n = len(f.net.load)
    apf = AsymmetricPowerFlow(f.net)
    p = np.zeros((5, n, 3))
    p[3, :, 0] = 3000.0  # 3 MW per house on phase a: no solution
    with pytest.raises(PowerFlowError, match=r"step 3\b"):
        apf.run(p, np.zeros_like(p))
    with pytest.raises(ValueError, match=rf"\(T, {n}, 3\)"):
        apf.run(np.zeros((2, n, 2)), np.zeros((2, n, 2)))
    bad = np.zeros((3, n, 3))
    bad[2, 0, 1] = np.nan
    with pytest.raises(ValueError, match="step 2"):
        apf.run(bad, np.zeros_like(bad))
    with pytest.raises(ValueError, match="phase"):
        phase_loads(np.ones((2, n)), np.ones((2, n)), np.full(n, 3))
    no_sc = copy.deepcopy(f.net)
    no_sc.ext_grid["s_sc_max_mva"] = np.nan
    with pytest.raises(ValueError, match="s_sc_max_mva"):
        AsymmetricPowerFlow(no_sc, source="ext_grid")


def test_voltage_unbalance_factor_definition() -> None:
    a = np.exp(2j * np.pi / 3)
    pos = np.array([1.0, a**2, a])  # a, b lagging 120, c leading 120
    neg = np.array([1.0, a, a**2])
    zero = np.ones(3)
    assert voltage_unbalance_factor(pos) == pytest.approx(0.0, abs=1e-12)
    assert voltage_unbalance_factor(pos + 0.02 * neg) == pytest.approx(2.0, rel=1e-12)
    # the zero sequence does not count; scaling does not matter
    assert voltage_unbalance_factor(1.07 * (pos + 0.013 * neg) + 0.05 * zero) == pytest.approx(
        1.3, rel=1e-12
    )
    # a phase-voltage dip of d on one phase gives about d/3 unbalance
    dip = pos * np.array([0.97, 1.0, 1.0])
    assert voltage_unbalance_factor(dip) == pytest.approx(1.0, rel=0.02)


def test_unbalance_compliance_is_95_percent_of_a_week() -> None:
    week = 7 * 96
    vuf = np.full((2 * week, 2), 1.0)
    bad = int(0.05 * week)
    vuf[:bad, 0] = 3.0  # week 1, bus 0: exactly 5 % above 2 % -> compliant
    vuf[week : week + bad + 1, 1] = 3.0  # week 2, bus 1: one step more -> not
    out = unbalance_compliance(vuf)
    assert out["compliant"].tolist() == [[True, True], [True, False]]
    assert out["share_within"][1, 1] == pytest.approx(1 - (bad + 1) / week)
    # the weekly 95th percentile (nearest rank) is <= 2 % exactly when the week complies
    assert out["p95_pct"].tolist() == [[1.0, 1.0], [1.0, 3.0]]
    assert ((out["p95_pct"] <= 2.0) == out["compliant"]).all()
    vuf[:, 1] = np.nan
    assert not unbalance_compliance(vuf)["compliant"][:, 1].any()


def test_asym_kpis_on_chargers_on_one_phase(urban6: Feeder, evening) -> None:
    p, q, res = evening
    k = asym_grid_kpis(res, urban6.net)
    ll = res.line_loading_pct
    assert k["line_max_loading_pct"] == pytest.approx(np.nanmax(ll))
    assert k["line_worst_phase"] == "a"  # where the chargers are
    assert k["trafo_worst_phase"] == "a"
    assert k["trafo_max_phase_loading_pct"] == pytest.approx(res.trafo_loading_pct.max())
    # the worst phase is loaded well above the three-phase mean
    tl = res.trafo_loading_pct[:, 0]
    assert k["trafo_max_phase_loading_pct"] > tl.mean(-1).max() + 10
    lv = urban6.net.bus["vn_kv"].to_numpy() < 1.0
    vuf = voltage_unbalance_factor(res.u_pu[:, lv])
    assert k["vuf_max_pct"] == pytest.approx(np.nanmax(vuf))
    assert 0.1 < k["vuf_max_pct"] < 10.0
    assert k["vm_min_phase"] == "a"
    assert 0.0 <= k["unbalance_buses_compliant_share"] <= 1.0
    assert k["line_residual_current_max_a"] == pytest.approx(res.line_i_n_ka.max() * 1e3)
    assert k["vuf_p95_max_pct"] <= k["vuf_max_pct"]


def test_phase_voltage_figure(urban6: Feeder, evening, tmp_path) -> None:
    from twin.grid.plots import plot_phase_voltages, worst_phase_voltage_bus

    p, q, res = evening
    bus = worst_phase_voltage_bus(res, urban6.net)
    k = int(np.flatnonzero(res.bus_index == bus)[0])
    assert np.nanmin(res.vm_pu[:, k]) == pytest.approx(
        np.nanmin(res.vm_pu[:, urban6.net.bus["vn_kv"].to_numpy() < 1.0])
    )
    out = plot_phase_voltages(res, urban6.net, tmp_path / "phase_voltages.png")
    assert out.stat().st_size > 20_000
    assert isinstance(res, AsymPowerFlowResult)
