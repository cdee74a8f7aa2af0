"""Linear feeder model: structure, first-order exactness, and its error over a year."""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pytest

from twin.grid.feeders import Feeder, load_feeder
from twin.grid.linear import LinearFeederModel
from twin.grid.powerflow import BatchPowerFlow, PowerFlowResult

# Error band of the linear model against the AC batch power flow over a stressed year of the
# default feeder (see stressed_year). Measured: transformer loading max 3.97 / p99 1.93
# %-points, line loading max 2.98 / p99 0.44 %-points, voltage max 0.0048 / p99 0.0018 p.u.
TRAFO_MAX_PP, TRAFO_P99_PP = 6.0, 3.0
LINE_MAX_PP, LINE_P99_PP = 5.0, 1.0
VM_MAX_PU, VM_P99_PU = 0.008, 0.003


def stressed_year(f: Feeder, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Profiles x3, 11 kW EV charging (2 h/day from 17-21 h) at 30 % of the households and
    4 kWp PV at another 30 %: transformer up to ~115 %, reverse flow at noon in summer."""
    rng = np.random.default_rng(seed)
    n_t = f.load_p_kw.shape[0]
    p = f.load_p_kw * 3.0
    q = f.load_q_kvar * 3.0
    hh = f.household_cols
    ev = rng.choice(hh, size=int(0.3 * len(hh)), replace=False)
    days = n_t // 96
    start = rng.integers(17 * 4, 21 * 4, size=(days, len(ev)))
    rows = (np.arange(days)[:, None, None] * 96 + start[:, :, None] + np.arange(8)).clip(
        max=n_t - 1
    )
    cols = np.broadcast_to(ev[None, :, None], rows.shape)
    np.add.at(p, (rows.ravel(), cols.ravel()), 11.0)
    pv = rng.choice(hh, size=int(0.3 * len(hh)), replace=False)
    hour = (np.arange(n_t) % 96) / 4
    day = np.arange(n_t) // 96
    shape = np.clip(np.sin(np.pi * (hour - 6) / 14), 0, None) * (
        0.6 + 0.4 * np.cos(2 * np.pi * (day - 172) / 365)
    )
    p[:, pv] -= 4.0 * 0.85 * shape[:, None]
    return p, q


@pytest.fixture(scope="module")
def urban6() -> Feeder:
    return load_feeder("1-LV-urban6--0-sw")


@pytest.fixture(scope="module")
def year(urban6: Feeder) -> tuple[np.ndarray, np.ndarray, PowerFlowResult]:
    p, q = stressed_year(urban6)
    return p, q, BatchPowerFlow(urban6.net).run(p, q)


def test_structure_is_lossless_distflow(urban6: Feeder) -> None:
    net = urban6.net
    lm = LinearFeederModel(net)
    assert set(np.unique(lm.A_line)) <= {-1.0, 0.0, 1.0}
    # every load is behind the single transformer
    assert (lm.A_trafo == 1.0).all()
    # Kirchhoff: at every LV bus, flow in = flow out + the bus's own load (lossless)
    rng = np.random.default_rng(0)
    p = rng.uniform(-5, 10, size=len(net.load))
    lp = p @ lm.A_line.T
    load_at_bus = net.load.groupby("bus").size().reindex(net.bus.index, fill_value=0)
    assert load_at_bus.sum() == len(net.load)
    for b in net.bus.index[net.bus.vn_kv < 1.0]:
        inflow = (
            lp[net.line.to_bus.to_numpy() == b].sum() - lp[net.line.from_bus.to_numpy() == b].sum()
        )
        if b == net.trafo.lv_bus.iloc[0]:
            inflow += p.sum()  # fed by the transformer
        own = p[net.load.bus.to_numpy() == b].sum()
        assert inflow == pytest.approx(own, abs=1e-9)


def test_sensitivities_are_first_order_exact() -> None:
    """Around no load, (AC(delta) - AC(0)) / delta matches the linear model's matrices."""
    f = load_feeder("kerber_dorfnetz")
    net = f.net
    lm = LinearFeederModel(net)
    n = len(net.load)
    cols = [0, n // 2, n - 1]
    delta_kw = 0.2
    p = np.zeros((1 + 2 * len(cols), n))
    q = np.zeros_like(p)
    for k, c in enumerate(cols):
        p[1 + k, c] = delta_kw
        q[1 + len(cols) + k, c] = delta_kw
    res = BatchPowerFlow(net).run(p, q)
    np.testing.assert_allclose(res.vm_pu[0], lm.vm0_pu, atol=1e-9)
    for k, c in enumerate(cols):
        dv_p = (res.vm_pu[1 + k] - res.vm_pu[0]) / delta_kw
        dv_q = (res.vm_pu[1 + len(cols) + k] - res.vm_pu[0]) / delta_kw
        lv = net.bus.vn_kv.to_numpy() < 1.0
        scale = np.abs(lm.V_p[lv, c]).max()
        assert np.abs(dv_p[lv] - lm.V_p[lv, c]).max() < 0.03 * scale
        assert np.abs(dv_q[lv] - lm.V_q[lv, c]).max() < 0.03 * np.abs(lm.V_q[lv, c]).max()
        dp_line = (res.line_p_from_kw[1 + k] - res.line_p_from_kw[0]) / delta_kw
        np.testing.assert_allclose(dp_line, lm.A_line[:, c], atol=2e-3)


def test_error_band_over_a_year(urban6: Feeder, year) -> None:
    p, q, ac = year
    lm = LinearFeederModel(urban6.net)
    assert ac.trafo_loading_pct.max() > 100.0 and ac.trafo_p_kw.min() < 0.0  # stressed

    e_tr = lm.trafo_loading_pct(p, q) - ac.trafo_loading_pct
    e_ln = np.abs(lm.line_loading_pct(p, q) - ac.line_loading_pct)
    e_vm = lm.vm_pu(p, q) - ac.vm_pu
    assert np.abs(e_tr).max() < TRAFO_MAX_PP and np.percentile(np.abs(e_tr), 99) < TRAFO_P99_PP
    assert e_ln.max() < LINE_MAX_PP and np.percentile(e_ln, 99) < LINE_P99_PP
    assert np.nanmax(np.abs(e_vm)) < VM_MAX_PU
    assert np.nanpercentile(np.abs(e_vm), 99) < VM_P99_PU
    # the neglected losses make the linear model optimistic: lower transformer loading and
    # higher voltages than the AC solution (add a margin in the optimiser)
    assert e_tr.max() < 0.05
    assert np.nanmin(e_vm) > -1e-6


def test_loaded_operating_point_is_tighter_where_it_binds(urban6: Feeder, year) -> None:
    p, q, ac = year
    top = np.argsort(ac.trafo_loading_pct[:, 0])[-350:]
    lm = LinearFeederModel(urban6.net, p_ref_kw=p[top].mean(axis=0), q_ref_kvar=q[top].mean(axis=0))
    hi = ac.trafo_loading_pct[:, 0] > 80.0
    e_tr = (lm.trafo_loading_pct(p, q) - ac.trafo_loading_pct)[hi]
    e_vm = (lm.vm_pu(p, q) - ac.vm_pu)[hi]
    # measured: -1.84 ... +0.44 %-points, |dV| <= 0.0017 p.u.
    assert np.abs(e_tr).max() < 2.5
    assert np.nanmax(np.abs(e_vm)) < 0.0025
    # exact at the operating point itself (same AC solution)
    ref = BatchPowerFlow(urban6.net).run(p[top].mean(axis=0)[None], q[top].mean(axis=0)[None])
    np.testing.assert_allclose(
        lm.vm_pu(p[top].mean(axis=0), q[top].mean(axis=0)), ref.vm_pu[0], atol=1e-8
    )


def test_radial_check_and_subset_of_loads() -> None:
    f = load_feeder("kerber_landnetz_kabel_1")
    lm = LinearFeederModel(f.net, load_idx=f.household_load_idx[:3])
    assert lm.A_line.shape == (len(f.net.line), 3)
    with pytest.raises(ValueError, match="last dimension 3"):
        lm.vm_pu(np.zeros(5))
    net = copy.deepcopy(f.net)
    lv = net.bus.index[net.bus.vn_kv < 1.0]
    pp.create_line(net, lv[1], lv[-1], 0.05, "NAYY 4x150 SE")  # close a ring
    with pytest.raises(ValueError, match="radial"):
        LinearFeederModel(net)
