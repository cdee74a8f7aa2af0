"""Phase-aware linear sensitivities (LinearFeederModel per phase) against the unbalanced AC
power flow.

Stressed case: SimBench urban6, households x2 on their phases, and a 3.7 kW charger on phase
a at 70 % of the households in the evening (``one_phase_evening``). The balanced linear model
sees the cables' three-phase total (max 69 %) while the worst phase is at 138 % in the AC
solution: a band that is safe in total overloads phase a. The per-phase linear model
(measured over 7 days: worst-phase loading error max 9.0, p99 1.0 %-points, optimistic by at
most 6.5 % of the AC value above 80 % loading; phase voltage error max 0.015, p99 0.0077
p.u.) flags the overloaded cables; an LP using it should keep a margin of about 7 % of a
phase's rating at high load (or linearise around a loaded point).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_grid_asym import one_phase_evening

from twin.grid.asymmetric import AsymmetricPowerFlow
from twin.grid.feeders import Feeder, load_feeder
from twin.grid.linear import LinearFeederModel

LOADING_MAX_PP, LOADING_P99_PP = 12.0, 1.5
VM_MAX_PU, VM_P99_PU = 0.02, 0.01


@pytest.fixture(scope="module")
def urban6() -> Feeder:
    return load_feeder("1-LV-urban6--0-sw")


@pytest.fixture(scope="module")
def stressed(urban6: Feeder):
    p, q, _ = one_phase_evening(urban6, days=2, ev_share=0.7)
    return p, q, AsymmetricPowerFlow(urban6.net).run(p, q), LinearFeederModel(urban6.net)


def test_safe_in_total_but_one_phase_overloaded(stressed) -> None:
    p, q, ac, lm = stressed
    total = lm.line_loading_pct(p.sum(-1), q.sum(-1))  # the balanced view
    per_phase = lm.line_phase_loading_pct(p, q)
    over_ac = ac.line_loading_pct.max(axis=(0, 2)) > 100.0
    over_lin = per_phase.max(axis=(0, 2)) > 100.0
    assert total.max() < 80.0 and over_ac.any()
    assert ac.line_loading_pct[..., 0].max() == pytest.approx(ac.line_loading_pct.max())
    # the per-phase model flags only cables the AC solution overloads, and all of those that
    # are more than 10 % over
    assert over_lin.any() and not (over_lin & ~over_ac).any()
    assert (over_lin | ~(ac.line_loading_pct.max(axis=(0, 2)) > 110.0)).all()


def test_error_band(stressed) -> None:
    p, q, ac, lm = stressed
    e = lm.line_phase_loading_pct(p, q) - ac.line_loading_pct
    assert np.nanmax(np.abs(e)) < LOADING_MAX_PP
    assert np.nanpercentile(np.abs(e), 99) < LOADING_P99_PP
    hi = ac.line_loading_pct > 80.0
    ratio = lm.line_phase_loading_pct(p, q)[hi] / ac.line_loading_pct[hi]
    assert ratio.min() > 0.92 and ratio.max() < 1.01  # lossless: optimistic at high load
    ev = lm.phase_vm_pu(p, q) - ac.vm_pu
    assert np.nanmax(np.abs(ev)) < VM_MAX_PU and np.nanpercentile(np.abs(ev), 99) < VM_P99_PU
    # per-phase flows are those of the per-phase loads downstream: summed over phases they
    # are the balanced model's flows
    np.testing.assert_allclose(
        lm.line_phase_p_kw(p, q).sum(-1), lm.line_p_kw(p.sum(-1), q.sum(-1)), atol=1e-9
    )


def test_phase_sensitivities_are_first_order_exact() -> None:
    """Around no load, a small single-phase load moves each phase voltage and phase current
    as the linear model says (self and mutual coupling through the zero sequence)."""
    f = load_feeder("kerber_dorfnetz")
    net = f.net
    lm = LinearFeederModel(net)
    n = len(net.load)
    col, delta = n - 1, 0.3
    p = np.zeros((4, n, 3))
    for ph in range(3):
        p[1 + ph, col, ph] = delta
    q = np.zeros_like(p)
    ac = AsymmetricPowerFlow(net).run(p, q)
    lin = lm.phase_vm_pu(p, q)
    lv = net.bus["vn_kv"].to_numpy() < 1.0
    np.testing.assert_allclose(lin[0, lv], ac.vm_pu[0, lv], atol=1e-9)
    for k in range(1, 4):
        d_ac = ac.vm_pu[k, lv] - ac.vm_pu[0, lv]
        d_lin = lin[k, lv] - lin[0, lv]
        assert np.abs(d_lin - d_ac).max() < 0.03 * np.abs(d_ac).max()
        # the loaded phase drops; the mutual terms move the other two phases too
        assert (
            np.abs(d_ac[:, [j for j in range(3) if j != k - 1]]).max()
            > 0.1 * np.abs(d_ac[:, k - 1]).max()
        )
    i_ac = ac.line_i_ka[1, :, 0] - ac.line_i_ka[0, :, 0]
    i_lin = lm.line_phase_i_ka(p, q)[1, :, 0] - lm.line_phase_i_ka(p, q)[0, :, 0]
    carrying = lm.A_line[:, col] != 0
    np.testing.assert_allclose(i_lin[carrying], i_ac[carrying], rtol=0.02)
