"""The IEEE European LV test feeder's published solution (on-peak snapshot, minute 566).

The case (``tests/data/grid/published/ieee_eulv_on_peak_566.json``) quotes published OpenDSS
results and states the published model data the engine needs beyond pandapower's copy of the
feeder: the loads' power factor 0.95 and the source's short-circuit current (ISC3 = 3000 A at
11 kV, X/R = 4). With these, :class:`AsymmetricPowerFlow` (``source='ext_grid'``) reproduces
the published voltages to 1e-5 p.u. Measured: max |dV| 6.5e-6 p.u. over the quoted buses
(7.1e-6 p.u. over all 907 buses of the workbook), the order of the workbook's 6-digit
rounding (0.001 V = 4e-6 p.u.); angles within 0.047 deg (published to 0.1 deg); LINE1 phase
and residual currents within 0.012 A; transformer secondary powers within 0.001 kW / 0.0002
kvar. Without the published power factor the error is 7.4e-3 p.u., with an ideal source
9.9e-4 p.u.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandapower.networks as pn
import pytest

from twin.grid.asymmetric import AsymmetricPowerFlow

CASE = Path(__file__).parent / "data" / "grid" / "published" / "ieee_eulv_on_peak_566.json"
VM_TOL_PU = 1e-5
ANGLE_TOL_DEG = 0.06  # published angles are rounded to 0.1 deg
CURRENT_TOL_A = 0.03
POWER_TOL_KW = 0.005


@pytest.fixture(scope="module")
def case():
    return json.loads(CASE.read_text())


def published_model(case: dict, power_factor: float | None = None, source_isc3: bool = True):
    """pandapower's IEEE feeder with the published load power factor and source impedance."""
    model = case["model"]
    net = pn.ieee_european_lv_asymmetric("on_peak_566")
    if power_factor is not None:
        tan_phi = np.tan(np.arccos(power_factor))
        for ph in "abc":
            net.asymmetric_load[f"q_{ph}_mvar"] = net.asymmetric_load[f"p_{ph}_mw"] * tan_phi
    if source_isc3:
        net.ext_grid["s_sc_max_mva"] = (
            np.sqrt(3) * model["source_kv"] * model["source_isc3_a"] / 1e3
        )
        net.ext_grid["rx_max"] = 1.0 / model["source_x_over_r"]
        # zero sequence from ISC1 (irrelevant behind the delta winding, kept for completeness)
        z1 = model["source_kv"] ** 2 / net.ext_grid["s_sc_max_mva"].iloc[0]
        s1 = np.sqrt(3) * model["source_kv"] * model["source_isc1_a"] / 1e3
        net.ext_grid["x0x_max"] = (3 * model["source_kv"] ** 2 / s1 - 2 * z1) / z1
        net.ext_grid["r0x0_max"] = 1.0 / 3.0
    res = AsymmetricPowerFlow(net, source="ext_grid" if source_isc3 else "ideal").run(
        np.zeros((1, 0, 3)), np.zeros((1, 0, 3))
    )
    return net, res


def voltages_v(net, res, names):
    pos = {str(n).strip().upper(): i for i, n in enumerate(net.bus["name"])}
    k = np.array([pos[n.upper()] for n in names])
    base = net.bus["vn_kv"].to_numpy(float)[k, None] * 1e3 / np.sqrt(3)
    return res.vm_pu[0, k] * base, res.va_degree[0, k], base


def test_reproduces_published_solution(case: dict) -> None:
    pub = case["published"]
    net, res = published_model(case, power_factor=case["model"]["load_power_factor"])
    names = list(pub["bus_voltage_v"])
    v, ang, base = voltages_v(net, res, names)
    v_pub = np.array([pub["bus_voltage_v"][n] for n in names])
    a_pub = np.array([pub["bus_angle_deg"][n] for n in names])
    assert (np.abs(v - v_pub) / base).max() < VM_TOL_PU
    assert np.abs(ang - a_pub).max() < ANGLE_TOL_DEG
    # the published per-phase minima over the LV buses, at the same buses
    lv = net.bus["vn_kv"].to_numpy() < 1.0
    vm_lv = np.where(lv[:, None], res.vm_pu[0], np.inf)
    for j, ph in enumerate("abc"):
        v_min, bus = pub["lv_phase_voltage_min_v"][ph]
        k = int(np.argmin(vm_lv[:, j]))
        assert str(net.bus["name"].iloc[k]).strip() == bus
        assert vm_lv[k, j] * base.min() == pytest.approx(v_min, abs=VM_TOL_PU * base.min())
    # currents: the first cable (all of the feeder) and three loads
    np.testing.assert_allclose(
        res.line_i_ka[0, 0] * 1e3, pub["line1_current_a"], rtol=0, atol=CURRENT_TOL_A
    )
    assert res.line_i_n_ka[0, 0] * 1e3 == pytest.approx(
        pub["line1_residual_current_a"], abs=CURRENT_TOL_A
    )
    al = net.asymmetric_load.set_index("name")
    for load, i_pub in pub["load_current_a"].items():
        row = al.loc[load]
        j = int(np.argmax(row[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy(float)))
        s_va = np.hypot(row[f"p_{'abc'[j]}_mw"], row[f"q_{'abc'[j]}_mvar"]) * 1e6
        k = int(np.flatnonzero(net.bus.index == row["bus"])[0])
        u_v = res.vm_pu[0, k, j] * base.min()
        assert s_va / u_v == pytest.approx(i_pub, abs=CURRENT_TOL_A)
    # transformer secondary: power delivered per phase
    np.testing.assert_allclose(
        res.trafo_p_lv_kw[0, 0], pub["trafo_secondary_p_kw"], rtol=0, atol=POWER_TOL_KW
    )
    q_lv = np.sqrt(np.maximum(res.trafo_s_kva[0, 0] ** 2 - res.trafo_p_lv_kw[0, 0] ** 2, 0))
    np.testing.assert_allclose(q_lv, pub["trafo_secondary_q_kvar"], rtol=0, atol=POWER_TOL_KW)


def test_published_solution_needs_the_published_data(case: dict) -> None:
    """pandapower's copy of the loads (power factor ~1 on phases b, c) or an ideal source each
    move the voltages by far more than the tolerance: the case really tests these inputs."""
    pub = case["published"]
    names = [n for n in pub["bus_voltage_v"] if n != "SOURCEBUS"]
    v_pub = np.array([pub["bus_voltage_v"][n] for n in names])
    for kwargs in ({"power_factor": None}, {"power_factor": 0.95, "source_isc3": False}):
        net, res = published_model(case, **kwargs)
        v, _, base = voltages_v(net, res, names)
        assert (np.abs(v - v_pub) / base).max() > 20 * VM_TOL_PU
