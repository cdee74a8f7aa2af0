"""Unbalanced power flow: power-grid-model batch against pandapower ``runpp_3ph``, and the
5.5e-4 p.u. difference on the IEEE European LV feeder explained (see the docstring of
:mod:`twin.grid.asymmetric`).

Tolerances (measured values in brackets):

* IEEE feeder, transformer zero sequence aligned: voltages 5e-6 p.u. (1.7e-6), currents 10 mA
  (residual current 5.1 mA of 121 A, phase currents 0.04 mA);
* SimBench urban6 with single-phase loads and chargers on one phase: voltages 1e-5 p.u.
  (2.2e-6), phase and residual currents 10 mA (0.8 mA), transformer phase loading 1e-3 %
  (1e-5 %), losses 5 W (0.8 W). The residual there is pandapower's 't' transformer model in
  the positive sequence (magnetising branch in the middle; PGM: pi): without iron losses and
  magnetising current the two agree to 1e-7 p.u. (7.5e-9).
* What remains on the IEEE feeder (1.7e-6 p.u.) grows with the load; PGM's solution meets the
  specified load powers to 1e-9 (checked by Kirchhoff's current law below), while
  pandapower's left a mismatch of about 1e-6 of a load's power on a 60-cable chain.
"""

from __future__ import annotations

import copy

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from twin.grid.asymmetric import AsymmetricPowerFlow, phase_loads, run_pandapower_3ph
from twin.grid.feeders import load_feeder

IEEE_VM_TOL_PU = 5e-6
SB_VM_TOL_PU = 1e-5
CURRENT_TOL_KA = 1e-5
TRAFO_LOADING_TOL_PCT = 1e-3
LOSSES_TOL_KW = 5e-3

_A = np.exp(2j * np.pi / 3)
_TO_SEQ = np.array([[1, 1, 1], [1, _A, _A**2], [1, _A**2, _A]]) / 3  # rows: 0, 1, 2


def ieee():
    net = pn.ieee_european_lv_asymmetric("on_peak_566")
    none = np.zeros((1, 0, 3))
    return net, none


def sequences(u: np.ndarray) -> np.ndarray:
    return u @ _TO_SEQ.T


def default_feeder_sample(seed: int = 3):
    """8 sampled steps of urban6, households x3 on random phases (60 % single-phase), and a
    3.7 kW charger on phase a at 40 % of the households in half of the steps."""
    f = load_feeder("1-LV-urban6--0-sw")
    rng = np.random.default_rng(seed)
    steps = rng.choice(f.load_p_kw.shape[0], size=8, replace=False)
    hh = f.household_cols
    phase = np.full(len(f.net.load), -1)
    single = rng.random(len(hh)) < 0.6
    phase[hh[single]] = rng.integers(0, 3, single.sum())
    p, q = phase_loads(f.load_p_kw[steps] * 3, f.load_q_kvar[steps] * 3, phase)
    ev = rng.choice(hh, size=int(0.4 * len(hh)), replace=False)
    p[4:, ev, 0] += 3.7
    return f.net, p, q


def assert_agree(res, ref, vm_tol: float) -> None:
    assert np.array_equal(np.isnan(res.vm_pu), np.isnan(ref.vm_pu))
    assert np.nanmax(np.abs(res.vm_pu - ref.vm_pu)) < vm_tol
    assert np.abs(res.line_i_ka - ref.line_i_ka).max() < CURRENT_TOL_KA
    assert np.abs(res.line_i_n_ka - ref.line_i_n_ka).max() < CURRENT_TOL_KA
    assert np.abs(res.trafo_loading_pct - ref.trafo_loading_pct).max() < TRAFO_LOADING_TOL_PCT
    assert np.abs(res.trafo_p_kw - ref.trafo_p_kw).max() < LOSSES_TOL_KW
    assert np.abs(res.losses_kw - ref.losses_kw).max() < LOSSES_TOL_KW


def test_default_feeder_matches_runpp_3ph() -> None:
    net, p, q = default_feeder_sample()
    res = AsymmetricPowerFlow(net).run(p, q)
    ref = run_pandapower_3ph(net, p, q)
    assert_agree(res, ref, SB_VM_TOL_PU)
    # the sample is unbalanced where it matters: the chargers load phase a far more
    tl = res.trafo_loading_pct[4:, 0]
    assert (tl[:, 0] > tl[:, 1:].max(axis=1) + 5).all()
    assert res.line_i_n_ka.max() > 0.05  # > 50 A residual in some cable
    # without magnetising branch the 't' and 'pi' transformer models coincide
    net0 = copy.deepcopy(net)
    net0.trafo["i0_percent"] = 0.0
    net0.trafo["pfe_kw"] = 0.0
    d0 = np.nanmax(
        np.abs(AsymmetricPowerFlow(net0).run(p, q).vm_pu - run_pandapower_3ph(net0, p, q).vm_pu)
    )
    # (1.07e-7 on this sample since issue 11 put SimBench's profiles on 2025's weekdays: the
    # 8 sampled steps load the feeder differently; the engines' iteration tolerance, not a model gap)
    assert d0 < 2e-7
    # the SimBench lines carry no zero-sequence data: the documented default filled it
    assert AsymmetricPowerFlow(net).line_z0_default.all()


def test_ieee_feeder_matches_runpp_3ph_when_zero_sequence_aligned() -> None:
    net, none = ieee()
    res = AsymmetricPowerFlow(net).run(none, none)
    ref = run_pandapower_3ph(net, none, none, align_trafo_zero_sequence=True)
    assert_agree(res, ref, IEEE_VM_TOL_PU)
    assert not AsymmetricPowerFlow(net).line_z0_default.any()  # the feeder has its own r0/x0


def test_the_5p5e4_difference_is_the_transformer_zero_sequence() -> None:
    net, none = ieee()
    res = AsymmetricPowerFlow(net).run(none, none)
    raw = run_pandapower_3ph(net, none, none, align_trafo_zero_sequence=False)  # mag0 = 100 %
    aligned = run_pandapower_3ph(net, none, none, align_trafo_zero_sequence=True)
    d_raw = np.nanmax(np.abs(res.vm_pu - raw.vm_pu))
    d_aligned = np.nanmax(np.abs(res.vm_pu - aligned.vm_pu))
    assert 4e-4 < d_raw < 8e-4  # the "5.5e-4" (6.2e-4 at this snapshot with pandapower 3.5.6)
    assert d_aligned < IEEE_VM_TOL_PU
    # it is a zero-sequence effect: the zero-sequence voltages differ most ...
    ds = np.abs(sequences(res.u_pu[0]) - sequences(raw.u_pu[0]))
    assert ds[:, 0].max() > 3 * ds[:, 2].max()
    # ... driven by the residual current through the transformer (about 121 A here)
    assert res.trafo_i_n_ka[0, 0] > 0.1
    # and with balanced loads (no zero-sequence current) the transformer's Z0 does not matter
    bal = copy.deepcopy(net)
    al = bal.asymmetric_load
    p_tot = al[["p_a_mw", "p_b_mw", "p_c_mw"]].sum(axis=1)
    q_tot = al[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].sum(axis=1)
    for ph in "abc":
        al[f"p_{ph}_mw"] = p_tot / 3
        al[f"q_{ph}_mvar"] = q_tot / 3
    res_b = AsymmetricPowerFlow(bal).run(none, none)
    raw_b = run_pandapower_3ph(bal, none, none, align_trafo_zero_sequence=False)
    assert res_b.trafo_i_n_ka.max() < 1e-6
    assert np.nanmax(np.abs(res_b.vm_pu - raw_b.vm_pu)) < 1e-6


def test_solution_meets_the_load_powers_by_kirchhoff() -> None:
    """On a 60-cable chain the PGM solution draws the specified power at a single-phase load
    to 1e-9, from the phase voltages and the cables' phase impedance matrix alone."""
    net = pp.create_empty_network()
    mv, prev = pp.create_bus(net, 11.0), pp.create_bus(net, 0.416)
    pp.create_ext_grid(net, mv, vm_pu=1.05)
    pp.create_transformer_from_parameters(
        net, mv, prev, 0.8, 11.0, 0.416, 0.4, 4.02, 0.0, 0.0, shift_degree=30, vector_group="Dyn"
    )
    z1, z0, length = 0.446 + 0.071j, 1.505 + 0.083j, 0.02
    for _ in range(60):
        b = pp.create_bus(net, 0.416)
        pp.create_line_from_parameters(
            net, prev, b, length, z1.real, z1.imag, 0.0, 0.421,
            r0_ohm_per_km=z0.real, x0_ohm_per_km=z0.imag, c0_nf_per_km=0.0,
        )  # fmt: skip
        prev = b
    load_bus = int(net.bus.index[-4])
    pp.create_asymmetric_load(net, load_bus, p_c_mw=0.00117, q_c_mvar=0.000386, type="wye")
    res = AsymmetricPowerFlow(net).run(np.zeros((1, 0, 3)), np.zeros((1, 0, 3)))
    a_inv = np.linalg.inv(_TO_SEQ)  # sequence -> phase
    z_abc = a_inv @ np.diag([z0, z1, z1]) @ _TO_SEQ * length
    u = res.u_pu[0] * 416 / np.sqrt(3)
    k = int(np.flatnonzero(net.bus.index == load_bus)[0])
    i_in = np.linalg.solve(z_abc, u[k - 1] - u[k]) - np.linalg.solve(z_abc, u[k] - u[k + 1])
    s = u[k] * np.conj(i_in)
    np.testing.assert_allclose(s, [0, 0, 1170 + 386j], rtol=0, atol=1170 * 1e-9)


@pytest.mark.parametrize("mag0", [100.0, 1e12])
def test_reference_leaves_the_net_unchanged(mag0: float) -> None:
    net, none = ieee()
    net.trafo["mag0_percent"] = mag0
    before = net.trafo.copy()
    run_pandapower_3ph(net, none, none, align_trafo_zero_sequence=True)
    assert net.trafo.equals(before)
