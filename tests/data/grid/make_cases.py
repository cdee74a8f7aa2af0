"""Regenerate the power-flow reference cases in this folder (run from the repo root).

    python tests/data/grid/make_cases.py

Each case is ``<name>.json``: a pandapower net (``pandapower.to_json``), load steps in kW/kvar
(``net.load`` row order) and the results of ``pandapower.runpp`` for each step, solved with
``twin.grid.powerflow.run_pandapower`` (trafo_model='pi', trafo_loading='power', ideal ext
grid, tolerance 1e-10 MVA). ``tests/test_grid_reference_cases.py`` runs them all.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandapower as pp
import pandapower.networks as pn

from twin.grid.feeders import prepare_net
from twin.grid.powerflow import run_pandapower

HERE = Path(__file__).parent


def switches_shunt_sgen() -> tuple[pp.pandapowerNet, np.ndarray, np.ndarray]:
    """Bus-bus switch, an open line switch cutting off a bus with a load, a shunt, a PV sgen,
    an off-nominal tap on the HV side."""
    net = pp.create_empty_network()
    mv = pp.create_bus(net, 10.0, name="mv")
    bb1 = pp.create_bus(net, 0.4, name="busbar 1")
    bb2 = pp.create_bus(net, 0.4, name="busbar 2")
    b = [pp.create_bus(net, 0.4, name=f"b{i}") for i in range(4)]
    pp.create_ext_grid(net, mv, vm_pu=1.03)
    pp.create_transformer(net, mv, bb1, std_type="0.4 MVA 10/0.4 kV", tap_pos=2)
    pp.create_switch(net, bb1, bb2, et="b", closed=True)
    pp.create_line(net, bb2, b[0], 0.12, "NAYY 4x150 SE")
    pp.create_line(net, b[0], b[1], 0.08, "NAYY 4x50 SE")
    pp.create_line(net, bb1, b[2], 0.20, "NAYY 4x120 SE")
    cut = pp.create_line(net, b[2], b[3], 0.05, "NAYY 4x50 SE")
    pp.create_switch(net, b[3], cut, et="l", closed=False)
    for bus in (b[0], b[1], b[1], b[2], b[3]):
        pp.create_load(net, bus, p_mw=0.003, q_mvar=0.001)
    pp.create_sgen(net, b[1], p_mw=0.010, q_mvar=0.0)
    pp.create_shunt(net, b[2], q_mvar=-0.005, p_mw=0.0001)
    p = np.array([[3, 2, 4, 5, 1], [12, 15, 9, 20, 7], [-8, -6, -4, 1, 0]], dtype=float)
    q = np.array([[1, 0.5, 1, 2, 0.3], [3, 4, 2, 5, 2], [0, 0, 0, 0.5, 0]], dtype=float)
    return net, p, q


def lv_tap_parallel_derated() -> tuple[pp.pandapowerNet, np.ndarray, np.ndarray]:
    """Tap on the LV side at -1, two parallel transformers in one element, derating factors
    on transformer and a parallel cable."""
    net = pp.create_empty_network()
    mv = pp.create_bus(net, 20.0)
    lv = pp.create_bus(net, 0.4)
    b1, b2 = pp.create_bus(net, 0.4), pp.create_bus(net, 0.4)
    pp.create_ext_grid(net, mv, vm_pu=1.0)
    pp.create_transformer_from_parameters(
        net,
        mv,
        lv,
        sn_mva=0.25,
        vn_hv_kv=20.0,
        vn_lv_kv=0.41,
        vk_percent=4.5,
        vkr_percent=1.3,
        pfe_kw=0.6,
        i0_percent=0.3,
        shift_degree=150.0,
        tap_side="lv",
        tap_neutral=0,
        tap_min=-2,
        tap_max=2,
        tap_step_percent=2.5,
        tap_pos=-1,
        parallel=2,
        df=0.9,
        vector_group="Dyn5",
        tap_changer_type="Ratio",
    )
    pp.create_line(net, lv, b1, 0.15, "NAYY 4x150 SE", parallel=2, df=0.8)
    pp.create_line(net, b1, b2, 0.10, "NAYY 4x50 SE")
    pp.create_load(net, b1, p_mw=0.01)
    pp.create_load(net, b2, p_mw=0.01)
    p = np.array([[50.0, 30.0], [250.0, 90.0], [-60.0, -40.0]])
    q = np.array([[10.0, 5.0], [60.0, 20.0], [0.0, 0.0]])
    return net, p, q


def kerber_landnetz_kabel_1() -> tuple[pp.pandapowerNet, np.ndarray, np.ndarray]:
    """A Kerber feeder as shipped (no tap changer data)."""
    net = prepare_net(pn.create_kerber_landnetz_kabel_1())
    n = len(net.load)
    p = np.vstack([np.full(n, 0.5), np.full(n, 9.0), np.full(n, -7.0)])
    q = 0.25 * np.clip(p, 0, None)
    return net, p, q


CASES = {
    f.__name__: f for f in (switches_shunt_sgen, lv_tap_parallel_derated, kerber_landnetz_kabel_1)
}


def main() -> None:
    for name, make in CASES.items():
        net, p, q = make()
        ref = run_pandapower(net, p, q)
        net.std_types = {key: {} for key in net.std_types}  # keep the files small
        case = {
            "description": " ".join((make.__doc__ or "").split()),
            "generated_with": f"pandapower {pp.__version__}, twin.grid.powerflow.run_pandapower",
            "net": pp.to_json(net),
            "p_load_kw": p.tolist(),
            "q_load_kvar": q.tolist(),
            "expected": {
                "vm_pu": np.where(np.isnan(ref.vm_pu), None, ref.vm_pu).tolist(),
                "line_loading_pct": ref.line_loading_pct.tolist(),
                "trafo_loading_pct": ref.trafo_loading_pct.tolist(),
                "trafo_p_kw": ref.trafo_p_kw.tolist(),
                "losses_kw": ref.losses_kw.tolist(),
            },
        }
        (HERE / f"{name}.json").write_text(json.dumps(case, indent=1))
        print(f"wrote {name}.json")


if __name__ == "__main__":
    main()
