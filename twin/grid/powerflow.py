"""Batch AC power flow of a feeder with power-grid-model, and the pandapower reference.

:class:`BatchPowerFlow` converts a pandapower net to a power-grid-model (PGM) model once
(twin's own converter, see :func:`pgm_input_from_net`; no ``power_grid_model_io`` needed) and
solves all time steps of a load series in one batch call per chunk of steps (a full year of a
SimBench feeder is one call).

Modelling choices, shared with the reference :func:`run_pandapower` so that both engines
model the same thing:

* the external grid is an ideal voltage source (PGM source with ``sk`` = 1e15 VA);
* the transformer is the pi model with the magnetising branch split over both sides
  (pandapower ``trafo_model='pi'``); off-nominal taps via ``tap_pos``;
* loads are constant power, set per step in kW/kvar (``scaling`` and the ZIP shares of
  ``net.load`` are ignored: the arrays are the final powers);
* in-service static generators are constant-power injections at their ``p_mw * scaling``;
  shunts are constant admittances.

Transformer loading is **power based**: ``trafo_loading_pct = 100 * trafo_s_kva /
(sn_mva * 1000 * parallel * df)`` with ``trafo_s_kva`` the larger of the apparent powers at
the HV and LV terminals (pandapower's ``trafo_loading='power'``; its default ``'current'``
differs by about 1 %). Line loading is current based: ``100 * max(i_from, i_to) /
(max_i_ka * df * parallel)`` as in pandapower. Network losses are the sum over lines and
transformers of ``p_from + p_to`` (line and transformer copper and iron losses, minus the
active power of cable shunt conductance if any).

Small batches (the DSO's state estimates in the loop: a few steps per call, thousands of
calls a year) can run through :class:`ReusedBatch` (:func:`reused_batch`, the ``reuse``
argument of :func:`solve_batch`): PGM's options, update and output datasets built once and
re-run with new data, the same results to the bit without the public API's per-call set-up.
It is the one place twin uses power-grid-model internals: :func:`check_pgm_internals` names
what a new version moved, and the public API stays the fallback.
"""

from __future__ import annotations

import copy
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandapower as pp
import pandas as pd
from pandapower.auxiliary import pandapowerNet
from power_grid_model import (
    BranchSide,
    CalculationMethod,
    CalculationType,
    ComponentType,
    DatasetType,
    LoadGenType,
    PowerGridModel,
    TapChangingStrategy,
    WindingType,
    initialize_array,
    power_grid_meta_data,
)
from power_grid_model.errors import PowerGridBatchError, PowerGridError

from twin.grid.elements import ASYMMETRIC_ONLY, UNSUPPORTED
from twin.grid.ratings import trafo_unit_rating_kva

__all__ = [
    "LINE_ZERO_SEQUENCE_DEFAULT",
    "BatchPowerFlow",
    "LineZeroSequence",
    "PowerFlowError",
    "PowerFlowResult",
    "ReusedBatch",
    "PgmInternalsMoved",
    "check_pgm_internals",
    "constant_power_loads",
    "line_zero_sequence_per_km",
    "pgm_input_from_net",
    "reused_batch",
    "run_pandapower",
    "solve_batch",
]

#: Short-circuit power given to the PGM source so that it behaves as an ideal voltage source.
SOURCE_SK_VA = 1e15


@dataclass(frozen=True)
class LineZeroSequence:
    """Zero-sequence data given to lines that carry none (``r0/x0/c0_*_per_km`` NaN or absent).

    ``r0 = r0_per_r1 * r1``, ``x0 = x0_per_x1 * x1``, ``c0 = c0_per_c1 * c1``, per line.

    The default (4, 4, 1) is an **assumption** for a 4-core LV cable (NAYY/NA2XY 4x..) whose
    neutral core has the phase cross-section and carries all of the zero-sequence return
    current (no earth return, neutral earthed at the ends): then ``R0 = R_phase + 3 R_neutral
    = 4 R1`` and, for cores at equal spacing, ``X0 = 4 (X_self - X_mutual) = 4 X1``. The same
    4x ratios are used in pandapower's ``create_std_type`` example of a three-phase line type
    (``r0 = 0.7766 = 4 x 0.1941``, ``x0 = 4 x 0.0748`` Ohm/km). Real cables with a concentric
    neutral or sheath have a smaller ``X0``: the IEEE European LV test feeder's line codes
    have ``R0/R1 = 3.4 ... 3.6`` and ``X0/X1 = 1.1 ... 1.2``. ``c0 = c1`` is a placeholder
    (LV cable charging moves voltages by < 1e-5 p.u.). Lines that carry their own r0/x0/c0
    (e.g. the IEEE feeder) keep them.
    """

    r0_per_r1: float = 4.0
    x0_per_x1: float = 4.0
    c0_per_c1: float = 1.0


#: Default zero-sequence rule for lines without zero-sequence data (an assumption, see above).
LINE_ZERO_SEQUENCE_DEFAULT = LineZeroSequence()

_WINDING = {
    "Y": WindingType.wye,
    "YN": WindingType.wye_n,
    "D": WindingType.delta,
    "Z": WindingType.zigzag,
    "ZN": WindingType.zigzag_n,
}
_VECTOR_GROUP = re.compile(r"^(YN|Y|D|ZN|Z)(yn|y|d|zn|z)(\d*)$")


class PowerFlowError(RuntimeError):
    """The power flow failed (no convergence or an invalid model), naming the time step."""


@dataclass
class PowerFlowResult:
    """Results of a series of AC power flows; rows are time steps.

    Attributes
    ----------
    vm_pu : np.ndarray
        ``(T, n_bus)`` voltage magnitude, columns in ``net.bus.index`` order; NaN for buses
        not connected to the external grid.
    line_loading_pct : np.ndarray
        ``(T, n_line)`` current-based line loading, ``net.line.index`` order.
    line_p_from_kw : np.ndarray
        ``(T, n_line)`` active power entering each line at its ``from_bus``, kW.
    trafo_loading_pct : np.ndarray
        ``(T, n_trafo)`` power-based loading: ``100 * trafo_s_kva / (sn * parallel * df)``.
    trafo_s_kva : np.ndarray
        ``(T, n_trafo)`` apparent power, the larger of the HV- and LV-side values, kVA.
    trafo_p_kw : np.ndarray
        ``(T, n_trafo)`` active power entering the transformer at its HV side, kW (positive
        when the MV grid supplies the feeder).
    trafo_q_kvar : np.ndarray or None
        ``(T, n_trafo)`` reactive power entering the transformer at its HV side, kvar (None
        from an engine that does not report it).
    losses_kw : np.ndarray
        ``(T,)`` network losses (lines and transformers), kW.
    bus_index, line_index, trafo_index : np.ndarray
        pandapower index labels of the columns.
    steps : np.ndarray
        Time-step numbers of the rows (``arange(T)`` for a full batch).
    """

    vm_pu: np.ndarray
    line_loading_pct: np.ndarray
    line_p_from_kw: np.ndarray
    trafo_loading_pct: np.ndarray
    trafo_s_kva: np.ndarray
    trafo_p_kw: np.ndarray
    losses_kw: np.ndarray
    bus_index: np.ndarray
    line_index: np.ndarray
    trafo_index: np.ndarray
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    trafo_q_kvar: np.ndarray | None = None

    @property
    def n_steps(self) -> int:
        """Number of time steps (rows)."""
        return self.vm_pu.shape[0]


# ----------------------------------------------------------------------------------------------
# conversion pandapower -> power-grid-model
# ----------------------------------------------------------------------------------------------


def _check_supported(net: pandapowerNet, asymmetric: bool = False) -> None:
    for el in UNSUPPORTED + (() if asymmetric else ASYMMETRIC_ONLY):
        if el in net and len(net[el]) and net[el]["in_service"].astype(bool).any():
            hint = (
                "use the unbalanced engine (twin.grid.asymmetric.AsymmetricPowerFlow)"
                if el in ASYMMETRIC_ONLY
                else "set them out of service or convert them to loads/sgens"
            )
            raise ValueError(f"BatchPowerFlow does not model in-service '{el}' elements: {hint}")
    if asymmetric:
        for el in ASYMMETRIC_ONLY:
            if el in net and len(net[el]) and "type" in net[el]:
                on = net[el]["in_service"].astype(bool)
                kind = net[el]["type"].astype(object).where(net[el]["type"].notna(), "wye")
                bad = on & (kind.astype(str).str.lower() != "wye")
                if bad.any():
                    raise ValueError(
                        f"{el} rows {list(net[el].index[bad][:5])} are delta-connected: only "
                        "wye (phase-to-neutral) connection is modelled; give their power per "
                        "phase as type='wye'"
                    )
    if not len(net.ext_grid) or not net.ext_grid["in_service"].astype(bool).any():
        raise ValueError("net has no in-service ext_grid: add one (pandapower create_ext_grid)")


def _switch_closed(net: pandapowerNet, et: str, element: pd.Index, bus: np.ndarray) -> np.ndarray:
    """Whether the switches of type ``et`` at (element, bus) are closed (True if none)."""
    closed = np.ones(len(element), dtype=bool)
    sw = net.switch
    if not len(sw):
        return closed
    sw = sw[(sw["et"] == et) & ~sw["closed"].astype(bool)]
    if not len(sw):
        return closed
    open_pairs = set(zip(sw["element"].astype(int), sw["bus"].astype(int), strict=True))
    for k, (e, b) in enumerate(zip(element, bus, strict=True)):
        if (int(e), int(b)) in open_pairs:
            closed[k] = False
    return closed


def _winding_types(vector_group: object) -> tuple[WindingType, WindingType]:
    m = _VECTOR_GROUP.match(str(vector_group).strip()) if vector_group is not None else None
    if m is None:
        raise ValueError(
            f"transformer vector_group {vector_group!r} is not understood: set e.g. 'Dyn5' "
            "(twin.grid.feeders.prepare_net derives it from shift_degree)"
        )
    return _WINDING[m.group(1)], _WINDING[m.group(2).upper()]


def _source_impedance(net: pandapowerNet, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PGM source ``sk`` (VA), ``rx_ratio`` and ``z01_ratio`` per ext grid row."""
    eg = net.ext_grid
    n = len(eg)
    if source == "ideal":
        return np.full(n, SOURCE_SK_VA), np.full(n, 0.1), np.ones(n)
    if source != "ext_grid":
        raise ValueError(f"source must be 'ideal' or 'ext_grid', got {source!r}")

    def col(name: str) -> np.ndarray:
        if name not in eg or eg[name].isna().any():
            raise ValueError(
                f"source='ext_grid' needs net.ext_grid['{name}'] (short-circuit data of the "
                "MV grid) on every row"
            )
        return eg[name].to_numpy(float)

    sk = col("s_sc_max_mva") * 1e6
    rx = col("rx_max")
    # pandapower: x0 = x0x * x1, r0 = r0x0 * x0; PGM scales |z1| by z01_ratio
    x0x = eg["x0x_max"].fillna(1.0).to_numpy(float) if "x0x_max" in eg else np.ones(n)
    r0x0 = eg["r0x0_max"].fillna(0.1).to_numpy(float) if "r0x0_max" in eg else rx
    z01 = x0x * np.sqrt(1.0 + r0x0**2) / np.sqrt(1.0 + rx**2)
    return sk, rx, z01


def line_zero_sequence_per_km(
    line: pd.DataFrame, rule: LineZeroSequence
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-km r0, x0, c0 of every line and whether the default rule filled any of them."""

    def own(col: str) -> np.ndarray:
        return line[col].to_numpy(float) if col in line else np.full(len(line), np.nan)

    r0, x0, c0 = own("r0_ohm_per_km"), own("x0_ohm_per_km"), own("c0_nf_per_km")
    filled = ~(np.isfinite(r0) & np.isfinite(x0) & np.isfinite(c0))
    r0 = np.where(np.isfinite(r0), r0, rule.r0_per_r1 * line["r_ohm_per_km"].to_numpy(float))
    x0 = np.where(np.isfinite(x0), x0, rule.x0_per_x1 * line["x_ohm_per_km"].to_numpy(float))
    c0 = np.where(np.isfinite(c0), c0, rule.c0_per_c1 * line["c_nf_per_km"].to_numpy(float))
    return r0, x0, c0, filled


def pgm_input_from_net(
    net: pandapowerNet,
    asymmetric: bool = False,
    source: str = "ideal",
    line_zero_sequence: LineZeroSequence = LINE_ZERO_SEQUENCE_DEFAULT,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Convert a pandapower net to power-grid-model input data.

    Parameters
    ----------
    net : pandapowerNet
        Net with buses, lines, two-winding transformers, ext grids, loads, and optionally
        static generators, shunts and bus-bus switches; with ``asymmetric=True`` also
        ``asymmetric_load`` and ``asymmetric_sgen`` rows (wye-connected).
    asymmetric : bool
        Build the model for asymmetric (per-phase) calculations: ``net.load`` rows become
        ``asym_load`` rows (their power split equally over the phases until updated),
        ``net.asymmetric_load`` rows follow them in the same ``asym_load`` array,
        ``net.asymmetric_sgen`` rows become ``asym_gen``; lines get zero-sequence data
        (their own ``r0/x0/c0`` where set, else ``line_zero_sequence``); transformers get
        their neutral earthing impedance (``rn_ohm``/``xn_ohm``, 0 = solid) on the earthed
        wye side. The zero-sequence of a transformer follows PGM's model: for ``Dyn``/``YNd``
        the earthed side sees the leakage impedance ``uk`` (see :mod:`twin.grid.asymmetric`
        for how pandapower's 't' model differs).
    source : {"ideal", "ext_grid"}
        ``"ideal"``: the external grid is an ideal voltage source (``sk`` = 1e15 VA) in all
        sequences. ``"ext_grid"``: its impedance from ``net.ext_grid`` ``s_sc_max_mva``,
        ``rx_max`` and (zero sequence) ``x0x_max``/``r0x0_max``.
    line_zero_sequence : LineZeroSequence
        Rule for lines without zero-sequence data (asymmetric only).

    Returns
    -------
    input_data : dict
        PGM input dataset (``node``, ``line``, ``transformer``, ``source``, ``sym_load`` or
        ``asym_load``, and where present ``link``, ``sym_gen``, ``asym_gen``, ``shunt``).
        Load rows follow ``net.load`` row order (then ``net.asymmetric_load``); ``node``
        rows follow ``net.bus`` row order.
    ids : dict
        PGM ids per pandapower table: ``"bus"``, ``"line"``, ``"trafo"``, ``"load"``, ...;
        asymmetric models also carry ``"line_z0_default"`` (bool per line: the default
        zero-sequence rule filled its data).
    """
    _check_supported(net, asymmetric)
    f_hz = float(getattr(net, "f_hz", 50.0) or 50.0)
    next_id = 0
    ids: dict[str, np.ndarray] = {}

    def new_ids(table: str, n: int) -> np.ndarray:
        nonlocal next_id
        ids[table] = np.arange(next_id, next_id + n, dtype=np.int32)
        next_id += n
        return ids[table]

    bus = net.bus
    bus_pos = pd.Series(np.arange(len(bus)), index=bus.index)
    bus_ok = bus["in_service"].astype(bool).to_numpy()
    data: dict = {}

    node = initialize_array("input", ComponentType.node, len(bus))
    node["id"] = new_ids("bus", len(bus))
    node["u_rated"] = bus["vn_kv"].to_numpy(float) * 1e3
    data[ComponentType.node] = node

    def node_id(bus_labels: pd.Series) -> np.ndarray:
        return ids["bus"][bus_pos.loc[bus_labels.to_numpy()].to_numpy()]

    def bus_in_service(bus_labels: pd.Series) -> np.ndarray:
        return bus_ok[bus_pos.loc[bus_labels.to_numpy()].to_numpy()]

    def branch_ends(
        arr: np.ndarray, table: pd.DataFrame, et: str, key: str, ends: tuple[str, str]
    ) -> None:
        """Ids, end nodes and per-end status of a branch table (lines ``et='l'``, trafos ``'t'``)."""
        arr["id"] = new_ids(key, len(table))
        ok = table["in_service"].astype(bool).to_numpy()
        for end, col in zip(("from", "to"), ends, strict=True):
            arr[f"{end}_node"] = node_id(table[col])
            ok = ok & bus_in_service(table[col])
        for end, col in zip(("from", "to"), ends, strict=True):
            arr[f"{end}_status"] = ok & _switch_closed(net, et, table.index, table[col].to_numpy())

    line = net.line
    if len(line):
        ln = initialize_array("input", ComponentType.line, len(line))
        branch_ends(ln, line, "l", "line", ("from_bus", "to_bus"))
        length = line["length_km"].to_numpy(float)
        par = line["parallel"].to_numpy(float)
        c_nf = line["c_nf_per_km"].to_numpy(float)
        g_us = line["g_us_per_km"].to_numpy(float) if "g_us_per_km" in line else np.zeros(len(line))
        ln["r1"] = line["r_ohm_per_km"].to_numpy(float) * length / par
        ln["x1"] = line["x_ohm_per_km"].to_numpy(float) * length / par
        ln["c1"] = c_nf * length * par * 1e-9
        with np.errstate(divide="ignore", invalid="ignore"):
            # tan(delta) = G / (omega C) per unit length
            ln["tan1"] = np.where(c_nf > 0, g_us * 1e-6 / (2 * np.pi * f_hz * c_nf * 1e-9), 0.0)
        ln["i_n"] = line["max_i_ka"].to_numpy(float) * 1e3 * line["df"].to_numpy(float) * par
        if asymmetric:
            r0, x0, c0, filled = line_zero_sequence_per_km(line, line_zero_sequence)
            ln["r0"] = r0 * length / par
            ln["x0"] = x0 * length / par
            ln["c0"] = c0 * length * par * 1e-9
            g0 = line["g0_us_per_km"].fillna(0.0).to_numpy(float) if "g0_us_per_km" in line else 0
            with np.errstate(divide="ignore", invalid="ignore"):
                ln["tan0"] = np.where(c0 > 0, g0 * 1e-6 / (2 * np.pi * f_hz * c0 * 1e-9), 0.0)
            ids["line_z0_default"] = filled
        data[ComponentType.line] = ln

    trafo = net.trafo
    if len(trafo):
        tr = initialize_array("input", ComponentType.transformer, len(trafo))
        branch_ends(tr, trafo, "t", "trafo", ("hv_bus", "lv_bus"))
        par = trafo["parallel"].to_numpy(float)
        sn_va = trafo["sn_mva"].to_numpy(float) * 1e6 * par
        tr["u1"] = trafo["vn_hv_kv"].to_numpy(float) * 1e3
        tr["u2"] = trafo["vn_lv_kv"].to_numpy(float) * 1e3
        tr["sn"] = sn_va
        tr["uk"] = trafo["vk_percent"].to_numpy(float) / 100
        tr["pk"] = trafo["vkr_percent"].to_numpy(float) / 100 * sn_va
        tr["i0"] = trafo["i0_percent"].to_numpy(float) / 100
        tr["p0"] = trafo["pfe_kw"].to_numpy(float) * 1e3 * par
        windings = [_winding_types(vg) for vg in trafo.get("vector_group", [None] * len(trafo))]
        tr["winding_from"] = [w[0] for w in windings]
        tr["winding_to"] = [w[1] for w in windings]
        tr["clock"] = (
            np.round(trafo["shift_degree"].fillna(0.0).to_numpy(float) / 30).astype(int) % 12
        )
        if "tap_step_degree" in trafo and (trafo["tap_step_degree"].fillna(0.0) != 0).any():
            raise ValueError("phase-shifting transformers (tap_step_degree != 0) are not modelled")
        tap_pos = trafo["tap_pos"].fillna(0).to_numpy(float)
        tap_nom = trafo["tap_neutral"].fillna(0).to_numpy(float)
        # pandapower >= 3 applies a tap only with tap_changer_type 'Ratio' or 'Symmetrical'
        kind = (
            (
                trafo["tap_changer_type"]
                .astype(object)
                .where(trafo["tap_changer_type"].notna(), "")
                if "tap_changer_type" in trafo
                else pd.Series("Ratio", index=trafo.index)
            )
            .astype(str)
            .to_numpy()
        )
        if (
            "tap_dependency_table" in trafo
            and trafo["tap_dependency_table"].fillna(False).astype(bool).any()
        ):
            raise ValueError("transformer tap dependency tables are not modelled")
        off = tap_pos != tap_nom
        if (off & (kind == "Ideal")).any():
            raise ValueError("ideal (phase-shifting) tap changers are not modelled")
        if (
            "tap2_pos" in trafo
            and (
                trafo["tap2_pos"].notna() & (trafo["tap2_pos"] != trafo.get("tap2_neutral", 0))
            ).any()
        ):
            raise ValueError("second tap changers (tap2_*) are not modelled")
        tap_pos = np.where(np.isin(kind, ["Ratio", "Symmetrical"]), tap_pos, tap_nom)
        if not (
            np.allclose(tap_pos, np.round(tap_pos)) and np.allclose(tap_nom, np.round(tap_nom))
        ):
            raise ValueError("non-integer transformer tap positions are not modelled")
        tap_hv = (trafo["tap_side"].astype(str).str.lower() != "lv").to_numpy()
        tr["tap_side"] = np.where(tap_hv, BranchSide.from_side, BranchSide.to_side)
        tr["tap_pos"] = tap_pos
        tr["tap_nom"] = tap_nom
        tr["tap_min"] = np.minimum(
            trafo["tap_min"].fillna(0).to_numpy(float), np.minimum(tap_pos, tap_nom)
        )
        tr["tap_max"] = np.maximum(
            trafo["tap_max"].fillna(0).to_numpy(float), np.maximum(tap_pos, tap_nom)
        )
        vn_tap_v = np.where(tap_hv, tr["u1"], tr["u2"])
        tr["tap_size"] = trafo["tap_step_percent"].fillna(0).to_numpy(float) / 100 * vn_tap_v
        if asymmetric:
            # neutral earthing impedance (pandapower rn_ohm / xn_ohm) on the earthed wye side
            rn = trafo["rn_ohm"].fillna(0.0).to_numpy(float) if "rn_ohm" in trafo else 0.0
            xn = trafo["xn_ohm"].fillna(0.0).to_numpy(float) if "xn_ohm" in trafo else 0.0
            earthed = (WindingType.wye_n, WindingType.zigzag_n)
            hv_earthed = np.array([w[0] in earthed for w in windings])
            lv_earthed = np.array([w[1] in earthed for w in windings]) & ~hv_earthed
            tr["r_grounding_from"] = np.where(hv_earthed, rn, 0.0)
            tr["x_grounding_from"] = np.where(hv_earthed, xn, 0.0)
            tr["r_grounding_to"] = np.where(lv_earthed, rn, 0.0)
            tr["x_grounding_to"] = np.where(lv_earthed, xn, 0.0)
        data[ComponentType.transformer] = tr

    bb = net.switch[net.switch["et"] == "b"] if len(net.switch) else net.switch
    if len(bb):
        lk = initialize_array("input", ComponentType.link, len(bb))
        lk["id"] = new_ids("switch_bb", len(bb))
        lk["from_node"] = node_id(bb["bus"])
        lk["to_node"] = node_id(bb["element"])
        closed = bb["closed"].astype(bool).to_numpy()
        closed &= bus_in_service(bb["bus"]) & bus_in_service(bb["element"])
        lk["from_status"] = closed
        lk["to_status"] = closed
        data[ComponentType.link] = lk

    eg = net.ext_grid
    src = initialize_array("input", ComponentType.source, len(eg))
    src["id"] = new_ids("ext_grid", len(eg))
    src["node"] = node_id(eg["bus"])
    src["status"] = eg["in_service"].astype(bool).to_numpy() & bus_in_service(eg["bus"])
    src["u_ref"] = eg["vm_pu"].to_numpy(float)
    src["u_ref_angle"] = np.deg2rad(eg["va_degree"].fillna(0.0).to_numpy(float))
    src["sk"], src["rx_ratio"], src["z01_ratio"] = _source_impedance(net, source)
    data[ComponentType.source] = src

    load = net.load
    asym = net.asymmetric_load if asymmetric and "asymmetric_load" in net else None
    n_asym = 0 if asym is None else len(asym)
    ld = initialize_array(
        "input",
        ComponentType.asym_load if asymmetric else ComponentType.sym_load,
        len(load) + n_asym,
    )
    ld["id"][: len(load)] = new_ids("load", len(load))
    ld["type"] = LoadGenType.const_power
    if len(load):
        ld["node"][: len(load)] = node_id(load["bus"])
        ld["status"][: len(load)] = load["in_service"].astype(bool).to_numpy() & bus_in_service(
            load["bus"]
        )
        p_w = load["p_mw"].to_numpy(float) * 1e6
        q_var = load["q_mvar"].to_numpy(float) * 1e6
        if asymmetric:
            ld["p_specified"][: len(load)] = p_w[:, None] / 3.0
            ld["q_specified"][: len(load)] = q_var[:, None] / 3.0
        else:
            ld["p_specified"] = p_w
            ld["q_specified"] = q_var
    if n_asym:
        rows = slice(len(load), len(load) + n_asym)
        ld["id"][rows] = new_ids("asymmetric_load", n_asym)
        ld["node"][rows] = node_id(asym["bus"])
        ld["status"][rows] = asym["in_service"].astype(bool).to_numpy() & bus_in_service(
            asym["bus"]
        )
        scale = asym["scaling"].fillna(1.0).to_numpy(float)[:, None] * 1e6
        ld["p_specified"][rows] = asym[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy(float) * scale
        ld["q_specified"][rows] = asym[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].to_numpy(float) * scale
    data[ComponentType.asym_load if asymmetric else ComponentType.sym_load] = ld

    sgen = net.sgen
    if len(sgen) and sgen["in_service"].astype(bool).any():
        sg = initialize_array("input", ComponentType.sym_gen, len(sgen))
        sg["id"] = new_ids("sgen", len(sgen))
        sg["node"] = node_id(sgen["bus"])
        sg["status"] = sgen["in_service"].astype(bool).to_numpy() & bus_in_service(sgen["bus"])
        sg["type"] = LoadGenType.const_power
        scale = sgen["scaling"].to_numpy(float)
        sg["p_specified"] = sgen["p_mw"].to_numpy(float) * scale * 1e6
        sg["q_specified"] = sgen["q_mvar"].to_numpy(float) * scale * 1e6
        data[ComponentType.sym_gen] = sg

    asg = net.asymmetric_sgen if asymmetric and "asymmetric_sgen" in net else None
    if asg is not None and len(asg) and asg["in_service"].astype(bool).any():
        ag = initialize_array("input", ComponentType.asym_gen, len(asg))
        ag["id"] = new_ids("asymmetric_sgen", len(asg))
        ag["node"] = node_id(asg["bus"])
        ag["status"] = asg["in_service"].astype(bool).to_numpy() & bus_in_service(asg["bus"])
        ag["type"] = LoadGenType.const_power
        scale = asg["scaling"].fillna(1.0).to_numpy(float)[:, None] * 1e6
        ag["p_specified"] = asg[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy(float) * scale
        ag["q_specified"] = asg[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].to_numpy(float) * scale
        data[ComponentType.asym_gen] = ag

    shunt = net.shunt
    if len(shunt) and shunt["in_service"].astype(bool).any():
        sh = initialize_array("input", ComponentType.shunt, len(shunt))
        sh["id"] = new_ids("shunt", len(shunt))
        sh["node"] = node_id(shunt["bus"])
        sh["status"] = shunt["in_service"].astype(bool).to_numpy() & bus_in_service(shunt["bus"])
        vn2 = shunt["vn_kv"].to_numpy(float) ** 2
        step = shunt["step"].to_numpy(float) if "step" in shunt else np.ones(len(shunt))
        sh["g1"] = shunt["p_mw"].to_numpy(float) * step / vn2
        sh["b1"] = -shunt["q_mvar"].to_numpy(float) * step / vn2
        data[ComponentType.shunt] = sh

    return data, ids


# ----------------------------------------------------------------------------------------------
# batch engine
# ----------------------------------------------------------------------------------------------


def solve_batch(
    model: PowerGridModel,
    update: dict,
    outputs: dict,
    step0: int,
    symmetric: bool,
    error_tolerance: float,
    threading: int,
    load_kw: Callable[[int], float],
    reuse: dict | None = None,
) -> dict:
    """One PGM batch power flow with the iterative-current method; failed steps are re-solved
    with Newton-Raphson, and a step that fails both raises :class:`PowerFlowError`.

    ``update`` maps component types to columnar batch arrays (first axis = steps, all rows of
    the component in input order) or to row-based ``(steps, rows)`` arrays; ``step0`` is the first step's number (for the message);
    ``load_kw(k)`` is the total load of batch row ``k`` (for the message). ``reuse``: a cache
    of :class:`ReusedBatch` of ``model`` kept by the caller: a small row-based batch is solved
    through one (:func:`reused_batch`; the same results without the public path's per-call
    set-up), and the arrays returned are then the reused batch's, overwritten by its next
    call (copy what is kept).
    """

    def options(method: CalculationMethod) -> dict:
        return {
            "calculation_method": method,
            "error_tolerance": error_tolerance,
            "max_iterations": 100 if method == CalculationMethod.iterative_current else 30,
            "threading": threading,
        }

    def calc(upd: dict, method: CalculationMethod) -> dict:
        return model.calculate_power_flow(
            update_data=upd,
            symmetric=symmetric,
            output_component_types=outputs,
            continue_on_batch_error=True,
            **options(method),
        )

    rb = None
    if reuse is not None:
        rb = reused_batch(
            reuse,
            model,
            CalculationType.power_flow,
            update,
            outputs,
            symmetric,
            **options(CalculationMethod.iterative_current),
        )
    if rb is not None:
        out, err = rb.calculate(update)
    else:
        out = calc(update, CalculationMethod.iterative_current)
        err = model.batch_error
    if err is None:
        return out
    failed = np.asarray(err.failed_scenarios, dtype=np.int64)
    sub = {  # (columnar or row-based)
        c: np.ascontiguousarray(cols[failed])
        if isinstance(cols, np.ndarray)
        else {a: np.ascontiguousarray(v[failed]) for a, v in cols.items()}
        for c, cols in update.items()
    }
    retry = calc(sub, CalculationMethod.newton_raphson)
    err2: PowerGridBatchError | None = model.batch_error
    if err2 is not None:
        k = int(failed[int(err2.failed_scenarios[0])])
        msg = " ".join(str(err2.error_messages[0]).split())[:300]
        raise PowerFlowError(
            f"power flow failed at step {step0 + k} ({len(err2.failed_scenarios)} step(s) "
            f"failed; total load there {load_kw(k):.1f} kW): {msg}"
        )
    for comp, cols in out.items():
        for attr, arr in cols.items():
            arr[failed] = retry[comp][attr]
    return out


# ----------------------------------------------------------------------------------------------
# the one adapter to power-grid-model internals: a small batch prepared once, re-run
# ----------------------------------------------------------------------------------------------

#: ``power_grid_model._core`` objects :class:`ReusedBatch` relies on (not public API).
_PGM_INTERNALS = (
    ("power_grid_model._core.data_handling", "prepare_update_view"),
    ("power_grid_model._core.data_handling", "prepare_output_view"),
    ("power_grid_model._core.error_handling", "handle_errors"),
    ("power_grid_model._core.power_grid_core", "get_power_grid_core"),
    ("power_grid_model.enum", "_ExperimentalFeatures"),
)
#: Batches of up to this many steps go through a :class:`ReusedBatch` (:func:`reused_batch`).
REUSED_UP_TO = 96
#: Reused batches kept per cache (:func:`reused_batch`; the oldest is dropped).
REUSED_BATCHES_KEPT = 8
_pgm_internals_error: list[str] = []  # the first failure's message, once seen


class PgmInternalsMoved(RuntimeError):
    """The installed power-grid-model no longer has an internal :class:`ReusedBatch` uses."""

    def __init__(self, detail: str) -> None:
        from importlib.metadata import version

        super().__init__(
            f"power-grid-model {version('power-grid-model')} moved internals twin uses "
            f"({detail}): pin the version in pyproject.toml, or update twin/grid/powerflow.py "
            "(ReusedBatch, the one adapter to them)"
        )


def check_pgm_internals() -> None:
    """Raise :class:`PgmInternalsMoved` naming every power-grid-model internal
    :class:`ReusedBatch` relies on that the installed version no longer has."""
    import importlib

    missing = []
    for mod, name in _PGM_INTERNALS:
        try:
            ok = hasattr(importlib.import_module(mod), name)
        except ImportError:
            ok = False
        if not ok:
            missing.append(f"{mod}.{name}")
    if not callable(getattr(PowerGridModel, "_options", None)):
        missing.append("PowerGridModel._options")
    if not isinstance(getattr(PowerGridModel, "_model", None), property):
        missing.append("PowerGridModel._model")
    if missing:
        raise PgmInternalsMoved(", ".join(missing))


class ReusedBatch:
    """One power-grid-model batch calculation of a fixed shape, prepared once and re-run.

    PGM's public ``calculate_power_flow``/``calculate_state_estimation`` build, on every call,
    the calculation options, a C view of the update data, the output arrays and a C view of
    those (on the default feeder ~0.2 ms of Python per call, as much as solving a 4-step
    batch). This object builds them once, on arrays of its own: :meth:`calculate` copies the
    update into them and runs PGM's C++ calculation, the public path's with the
    same data and options, so the results are the same to the bit
    (``tests/test_estimation.py`` checks it on the DSO's calls).

    Parameters
    ----------
    model : PowerGridModel
    calculation_type : CalculationType
        ``power_flow`` or ``state_estimation``.
    batch_size : int
        Steps per call.
    update : tuple of ComponentType
        Components updated (every row, in input order).
    outputs : dict
        ``{component: [attribute, ...]}`` as the public ``output_component_types``.
    symmetric : bool
    **options
        The public calculation's keyword options (``calculation_method``,
        ``error_tolerance``, ``max_iterations``, ``threading``).
    """

    def __init__(
        self,
        model: PowerGridModel,
        calculation_type: CalculationType,
        batch_size: int,
        update: tuple,
        outputs: dict,
        symmetric: bool = True,
        **options,
    ) -> None:
        check_pgm_internals()
        from power_grid_model._core.data_handling import prepare_output_view, prepare_update_view
        from power_grid_model._core.error_handling import handle_errors
        from power_grid_model._core.power_grid_core import get_power_grid_core
        from power_grid_model.enum import _ExperimentalFeatures

        n = int(batch_size)
        count = model.all_component_count
        out_type = DatasetType.sym_output if symmetric else DatasetType.asym_output
        self.batch_size = n
        self._update = {c: initialize_array(DatasetType.update, c, (n, count[c])) for c in update}
        meta = power_grid_meta_data[out_type]
        self._output = {
            c: {a: np.empty((n, count[c]), dtype=meta[c].dtype[a]) for a in attrs}
            for c, attrs in outputs.items()
        }
        # the options the public path sets (its defaults where twin gives none)
        options = {"experimental_features": _ExperimentalFeatures.disabled, **options}
        if calculation_type == CalculationType.power_flow:
            options.setdefault("tap_changing_strategy", TapChangingStrategy.disabled)
        self._options = PowerGridModel._options(
            calculation_type=calculation_type, symmetric=symmetric, **options
        )
        self._update_view = prepare_update_view(self._update)
        self._output_view = prepare_output_view(self._output, out_type)
        # the views must point at these arrays (PGM reads and writes them in place)
        try:
            ok = [b.data.value for b in self._update_view._buffer_views] == [
                a.ctypes.data for a in self._update.values()
            ] and [
                [v.data.value for v in b.attribute_data.values()]
                for b in self._output_view.get_buffer_views()
            ] == [[a.ctypes.data for a in cols.values()] for cols in self._output.values()]
        except AttributeError as exc:
            raise PgmInternalsMoved(f"dataset buffer views: {exc}") from None
        if not ok:
            raise PgmInternalsMoved("dataset views no longer point at the caller's arrays")
        self._model = model
        self._calculate = get_power_grid_core().calculate
        self._handle_errors = handle_errors

    def calculate(self, update: dict) -> tuple[dict, PowerGridBatchError | None]:
        """Solve the batch of ``update`` (per component given at construction, a
        ``(batch_size, rows)`` row-based array, or columnar ``{attribute: (batch_size, rows)
        array}`` with the same attributes at every call): ``(output, batch_error)``, as the
        public call with ``continue_on_batch_error=True`` returns its output and sets
        ``batch_error`` (any other error raises, as there). The output arrays are this
        object's: its next call overwrites them."""
        for c, arr in self._update.items():
            new = update[c]
            if isinstance(new, np.ndarray):
                np.copyto(arr, new)
            else:  # the attributes not given stay "unchanged" (NaN) from the start
                for name, values in new.items():
                    arr[name] = values
        self._calculate(
            self._model._model,
            self._options.opt,
            self._output_view.get_dataset_ptr(),
            self._update_view.get_dataset_ptr(),
        )
        err = self._handle_errors(continue_on_batch_error=True, batch_size=self.batch_size)
        return self._output, err


def reused_batch(
    cache: dict,
    model: PowerGridModel,
    calculation_type: CalculationType,
    update: dict,
    outputs: dict,
    symmetric: bool = True,
    **options,
) -> ReusedBatch | None:
    """The :class:`ReusedBatch` of ``model`` for a calculation of ``update`` (row-based or
    columnar batch arrays, every row of each component) from ``cache`` (the caller's, kept
    across calls; made on first use; at most :data:`REUSED_BATCHES_KEPT` kept, the oldest
    dropped), or None: more than :data:`REUSED_UP_TO` steps, or an installed
    power-grid-model that moved the internals it relies on (a warning says so once; the
    caller takes the public path)."""
    first = next(iter(update.values()))
    n = (first if isinstance(first, np.ndarray) else next(iter(first.values()))).shape[0]
    if n > REUSED_UP_TO or _pgm_internals_error:
        return None
    key = (
        int(calculation_type),
        n,
        tuple(c if isinstance(u, np.ndarray) else (c, tuple(u)) for c, u in update.items()),
        tuple((c, tuple(a)) for c, a in outputs.items()),
        symmetric,
        tuple(sorted(options.items())),
    )
    rb = cache.get(key)
    if rb is None:
        try:
            rb = ReusedBatch(
                model, calculation_type, n, tuple(update), outputs, symmetric, **options
            )
        except PgmInternalsMoved as exc:
            _pgm_internals_error.append(str(exc))
            warnings.warn(f"{exc}; using its public API", RuntimeWarning, stacklevel=2)
            return None
        while len(cache) >= REUSED_BATCHES_KEPT:
            cache.pop(next(iter(cache)))
        cache[key] = rb
    return rb


class BatchPowerFlow:
    """Batch AC power flow of one net over many load time steps (power-grid-model).

    The PGM model is built once; :meth:`run` updates only the loads' p/q per step.

    Parameters
    ----------
    net : pandapowerNet
        The feeder (see :func:`pgm_input_from_net` for what is modelled).
    threads : int, default 0
        0 = all hardware threads, 1 = sequential, n > 1 = n threads.
    error_tolerance : float, default 1e-10
        Convergence tolerance on the voltage, p.u.
    max_steps_per_call : int, optional
        Upper bound on steps per PGM call (memory); default sizes calls to about 256 MB of
        PGM buffers, which is one call for a year of a SimBench feeder.

    Notes
    -----
    Steps are solved with the iterative-current method (1.4-1.8x faster than Newton-Raphson
    on LV feeders); steps where it fails are re-solved with Newton-Raphson, and a step that
    fails both raises :class:`PowerFlowError` naming it.
    """

    def __init__(
        self,
        net: pandapowerNet,
        threads: int = 0,
        error_tolerance: float = 1e-10,
        max_steps_per_call: int | None = None,
    ) -> None:
        self.net = net
        self.threads = int(threads)
        self.error_tolerance = float(error_tolerance)
        input_data, self._ids = pgm_input_from_net(net)
        self._input = input_data
        try:
            self._model = PowerGridModel(input_data, system_frequency=float(net.f_hz or 50.0))
        except PowerGridError as exc:
            raise ValueError(
                f"power-grid-model rejected the net: {' '.join(str(exc).split())}"
            ) from None
        self.bus_index = net.bus.index.to_numpy()
        self.line_index = net.line.index.to_numpy()
        self.trafo_index = net.trafo.index.to_numpy()
        self.n_load = len(net.load)
        self._has_line = ComponentType.line in input_data
        self._has_trafo = ComponentType.transformer in input_data
        self.trafo_rating_kva = trafo_unit_rating_kva(net)
        # which buses are energised (static topology): one non-iterative linear calculation
        try:
            out = self._model.calculate_power_flow(
                output_component_types={ComponentType.node: ["energized"]},
                calculation_method=CalculationMethod.linear,
            )
        except PowerGridError as exc:
            raise PowerFlowError(
                f"power-grid-model cannot solve the net: {' '.join(str(exc).split())[:300]}"
            ) from None
        self._energized = out[ComponentType.node]["energized"].astype(bool)
        per_step_bytes = 8 * (
            2 * self.n_load + len(net.bus) + 3 * len(net.line) + 4 * len(net.trafo) + 8
        )
        self.max_steps_per_call = int(
            max_steps_per_call or max(1, (256 * 2**20) // (3 * per_step_bytes))
        )

    # -- helpers --------------------------------------------------------------------------
    def _outputs(self) -> dict:
        out: dict = {ComponentType.node: ["u_pu"]}
        if self._has_line:
            out[ComponentType.line] = ["loading", "p_from", "p_to"]
        if self._has_trafo:
            out[ComponentType.transformer] = ["s_from", "s_to", "p_from", "p_to", "q_from"]
        return out

    def _threading(self) -> int:
        return -1 if self.threads == 1 else max(0, self.threads)

    def _solve_chunk(self, p_w: np.ndarray, q_var: np.ndarray, step0: int) -> dict:
        return solve_batch(
            self._model,
            {ComponentType.sym_load: {"p_specified": p_w, "q_specified": q_var}},
            outputs=self._outputs(),
            step0=step0,
            symmetric=True,
            error_tolerance=self.error_tolerance,
            threading=self._threading(),
            load_kw=lambda k: float(p_w[k].sum()) / 1e3,
        )

    # -- public ---------------------------------------------------------------------------
    def run(self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray) -> PowerFlowResult:
        """Solve one AC power flow per row of the load arrays.

        Parameters
        ----------
        p_load_kw, q_load_kvar : np.ndarray
            ``(T, len(net.load))`` active/reactive power of every ``net.load`` row (row
            order), kW/kvar, positive = consumption. A 1-D array is one step.

        Returns
        -------
        PowerFlowResult

        Raises
        ------
        PowerFlowError
            A step did not converge with either method (the message names it).
        """
        p = np.atleast_2d(np.asarray(p_load_kw, dtype=float))
        q = np.atleast_2d(np.asarray(q_load_kvar, dtype=float))
        if p.shape != q.shape or p.shape[1] != self.n_load:
            raise ValueError(
                f"p_load_kw and q_load_kvar must both be (T, {self.n_load}); got {p.shape}, {q.shape}"
            )
        if not (np.isfinite(p).all() and np.isfinite(q).all()):
            bad = int(np.flatnonzero(~(np.isfinite(p).all(1) & np.isfinite(q).all(1)))[0])
            raise ValueError(f"non-finite load at step {bad}")
        n_t = p.shape[0]
        n_bus, n_line, n_tr = len(self.bus_index), len(self.line_index), len(self.trafo_index)
        vm = np.empty((n_t, n_bus))
        ll = np.zeros((n_t, n_line))
        lp = np.zeros((n_t, n_line))
        tl = np.zeros((n_t, n_tr))
        ts = np.zeros((n_t, n_tr))
        tp = np.zeros((n_t, n_tr))
        tq = np.zeros((n_t, n_tr))
        losses = np.zeros(n_t)
        for s0 in range(0, n_t, self.max_steps_per_call):
            s1 = min(n_t, s0 + self.max_steps_per_call)
            out = self._solve_chunk(
                np.ascontiguousarray(p[s0:s1] * 1e3), np.ascontiguousarray(q[s0:s1] * 1e3), s0
            )
            vm[s0:s1] = out[ComponentType.node]["u_pu"]
            if self._has_line:
                o = out[ComponentType.line]
                ll[s0:s1] = o["loading"] * 100.0
                lp[s0:s1] = o["p_from"] / 1e3
                losses[s0:s1] += (o["p_from"] + o["p_to"]).sum(axis=1) / 1e3
            if self._has_trafo:
                o = out[ComponentType.transformer]
                ts[s0:s1] = np.maximum(o["s_from"], o["s_to"]) / 1e3
                tp[s0:s1] = o["p_from"] / 1e3
                tq[s0:s1] = o["q_from"] / 1e3
                losses[s0:s1] += (o["p_from"] + o["p_to"]).sum(axis=1) / 1e3
        vm[:, ~self._energized] = np.nan
        if n_tr:
            tl = 100.0 * ts / self.trafo_rating_kva
        return PowerFlowResult(
            vm_pu=vm,
            line_loading_pct=ll,
            line_p_from_kw=lp,
            trafo_loading_pct=tl,
            trafo_s_kva=ts,
            trafo_p_kw=tp,
            losses_kw=losses,
            bus_index=self.bus_index.copy(),
            line_index=self.line_index.copy(),
            trafo_index=self.trafo_index.copy(),
            steps=np.arange(n_t),
            trafo_q_kvar=tq,
        )


# ----------------------------------------------------------------------------------------------
# pandapower reference
# ----------------------------------------------------------------------------------------------


def constant_power_loads(net: pandapowerNet) -> None:
    """Make every load of ``net`` constant power at scaling 1 (in place), as twin's batch
    flow models them, so that pandapower reproduces its states."""
    for col in (
        "const_z_p_percent",
        "const_i_p_percent",
        "const_z_q_percent",
        "const_i_q_percent",
        "const_z_percent",
        "const_i_percent",
    ):
        if col in net.load:
            net.load[col] = 0.0
    net.load["scaling"] = 1.0


def run_pandapower(
    net: pandapowerNet,
    p_load_kw: np.ndarray,
    q_load_kvar: np.ndarray,
    steps: np.ndarray | list[int] | None = None,
    timings: list[float] | None = None,
) -> PowerFlowResult:
    """Reference: a loop of ``pandapower.runpp`` over the given time steps.

    Models the same thing as :class:`BatchPowerFlow`: ``trafo_model='pi'``,
    ``trafo_loading='power'``, ideal ext grid (pandapower's power-flow default),
    constant-power loads, no lightsim2grid, tolerance 1e-10 MVA.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; not modified (a deep copy is solved).
    p_load_kw, q_load_kvar : np.ndarray
        ``(T, len(net.load))`` load arrays as for :meth:`BatchPowerFlow.run`.
    steps : array of int, optional
        Rows to solve (default all); result rows follow this order.
    timings : list, optional
        If given, the wall time of each ``runpp`` call (s) is appended.

    Returns
    -------
    PowerFlowResult
    """
    net = copy.deepcopy(net)
    p = np.atleast_2d(np.asarray(p_load_kw, dtype=float))
    q = np.atleast_2d(np.asarray(q_load_kvar, dtype=float))
    steps_arr = np.arange(p.shape[0]) if steps is None else np.asarray(steps, dtype=np.int64)
    constant_power_loads(net)
    n_t = len(steps_arr)
    vm = np.empty((n_t, len(net.bus)))
    ll = np.empty((n_t, len(net.line)))
    lp = np.empty((n_t, len(net.line)))
    tl = np.empty((n_t, len(net.trafo)))
    ts = np.empty((n_t, len(net.trafo)))
    tp = np.empty((n_t, len(net.trafo)))
    tq = np.empty((n_t, len(net.trafo)))
    losses = np.empty(n_t)
    for k, step in enumerate(steps_arr):
        net.load["p_mw"] = p[step] / 1e3
        net.load["q_mvar"] = q[step] / 1e3
        t0 = time.perf_counter()
        pp.runpp(
            net,
            algorithm="nr",
            trafo_model="pi",
            trafo_loading="power",
            calculate_voltage_angles=True,
            init="auto",
            tolerance_mva=1e-10,
            max_iteration=50,
            lightsim2grid=False,
            numba=False,
        )
        if timings is not None:
            timings.append(time.perf_counter() - t0)
        vm[k] = net.res_bus["vm_pu"].to_numpy()
        ll[k] = net.res_line["loading_percent"].to_numpy()
        lp[k] = net.res_line["p_from_mw"].to_numpy() * 1e3
        rt = net.res_trafo
        s_hv = np.hypot(rt["p_hv_mw"], rt["q_hv_mvar"]).to_numpy()
        s_lv = np.hypot(rt["p_lv_mw"], rt["q_lv_mvar"]).to_numpy()
        ts[k] = np.maximum(s_hv, s_lv) * 1e3
        tl[k] = rt["loading_percent"].to_numpy()
        tp[k] = rt["p_hv_mw"].to_numpy() * 1e3
        tq[k] = rt["q_hv_mvar"].to_numpy() * 1e3
        losses[k] = (net.res_line["pl_mw"].sum() + rt["pl_mw"].sum()) * 1e3
    return PowerFlowResult(
        vm_pu=vm,
        line_loading_pct=ll,
        line_p_from_kw=lp,
        trafo_loading_pct=tl,
        trafo_s_kva=ts,
        trafo_p_kw=tp,
        losses_kw=losses,
        bus_index=net.bus.index.to_numpy(),
        line_index=net.line.index.to_numpy(),
        trafo_index=net.trafo.index.to_numpy(),
        steps=steps_arr,
        trafo_q_kvar=tq,
    )
