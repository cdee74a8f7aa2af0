"""Batch unbalanced (three-phase) AC power flow with power-grid-model, and the pandapower
``runpp_3ph`` reference.

:class:`AsymmetricPowerFlow` builds one PGM model from the pandapower net with the same
converter as the balanced engine (:func:`twin.grid.powerflow.pgm_input_from_net` with
``asymmetric=True``) and solves every time step in batch calls, updating only the per-phase
powers of the loads. Loads are wye-connected (phase to neutral), constant power; the neutral
is Kron-reduced (solidly earthed at every bus), so lines are modelled by their positive- and
zero-sequence impedances. Per phase ``a, b, c`` are the phases of the pandapower model (the
transformer's LV phases lag the MV ones by ``30 * clock`` degrees).

What the model gives and what it does not
-----------------------------------------
* voltages: phase-to-earth magnitude (p.u. of ``vn_kv / sqrt(3)``) and angle per bus;
* line currents per phase, and loading per phase against the line's ampacity ``max_i_ka *
  df * parallel`` (as pandapower's ``res_line_3ph.loading_a_percent``);
* the **residual current** ``|Ia + Ib + Ic|`` of every line and of the transformer's LV side
  ("neutral current" in pandapower's ``res_line_3ph.i_n_ka``). With a Kron-reduced neutral
  the model does not split it between the neutral conductor and the earth: it is the neutral
  conductor's current if all of it returns through the neutral (an upper bound);
* transformer power per phase and a per-phase, **power-based** loading ``100 * S_phase /
  (S_rated / 3)`` (the balanced engine's definition per phase; pandapower
  ``trafo_loading='power'``).

Why pandapower and power-grid-model differed by 5.5e-4 p.u. on the IEEE feeder
-----------------------------------------------------------------------------------
Settled by ``tests/test_grid_asym_crosscheck.py``. The cause is the **zero-sequence model of
the Dyn transformer**. pandapower's ``runpp_3ph`` uses its transformer 't' model (3.5.6
refuses 'pi' for unbalanced flows). There the zero-sequence impedance seen from the earthed
LV star point is ``Z_LV + (Z_HV || Z_m0)``: the short-circuit impedance is split
``si0_hv_partial`` = 0.9 to the HV side, and the zero-sequence magnetising impedance is
``Z_m0 = mag0_percent/100 * Z_k0``. The IEEE net (like pandapower's suggested defaults)
carries ``mag0_percent = 100``, so ``Z_0 = 0.1 Z_k + (0.9 Z_k || Z_k)``, about 0.57 ``Z_k``.
power-grid-model treats the delta winding as a short circuit for zero-sequence currents
behind the leakage impedance: ``Z_0 = Z_k`` (as OpenDSS does for this feeder; the published
solution is reproduced with it, ``tests/test_grid_asym_reference.py``). The feeder's
unbalanced load drives a residual current of 121 A through the transformer at the on-peak
snapshot, and the two values of ``Z_0`` shift the LV star point differently: 6.2e-4 p.u. at
the worst bus and phase with pandapower 3.5.6 (the "5.5e-4" of the earlier comparison). The
difference is in the zero-sequence voltages, and it vanishes with balanced loads (no
residual current). Aligned, by giving pandapower ``mag0_percent`` = 1e12 (``Z_m0`` ->
infinity, so its ``Z_0`` -> ``Z_k``; :func:`run_pandapower_3ph` does this by default), the
two engines agree to 1.7e-6 p.u. That remainder grows with the load and is pandapower's: on a
60-cable test chain PGM's solution draws the specified load power to 1e-9 (Kirchhoff check
in the test), pandapower's misses it by about 1e-6 of the load. The other candidates do not
matter here: the source (pandapower keeps the ext grid ideal in the positive sequence and
uses its 10 GVA short-circuit power in the negative one; PGM is given an ideal source), the
load model (both wye, constant power), the lines' zero sequence (both take the net's r0/x0),
c0 (zero in this net), and the positive-sequence 't' vs 'pi' difference (the IEEE transformer
has no iron losses or magnetising current; on SimBench feeders, which have them, it causes
~2e-6 p.u.).

Which ``Z_0`` is right depends on the transformer: in a Dyn distribution transformer the
delta winding carries the zero-sequence ampere-turns, so ``Z_0`` is close to ``Z_k`` (about
0.8-1.0 ``Z_k`` for core types); ``mag0_percent = 100`` in the 't' model assumes a
zero-sequence magnetising impedance as small as the leakage impedance, which describes flux
returning through the tank of a transformer *without* a delta winding. twin follows PGM.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass, field

import numpy as np
import pandapower as pp
import pandas as pd
from pandapower.auxiliary import pandapowerNet
from power_grid_model import CalculationMethod, ComponentType, PowerGridModel
from power_grid_model.errors import PowerGridError

from twin.grid.powerflow import (
    LINE_ZERO_SEQUENCE_DEFAULT,
    LineZeroSequence,
    PowerFlowError,
    line_zero_sequence_per_km,
    pgm_input_from_net,
    solve_batch,
)
from twin.grid.ratings import line_ampacity_ka, trafo_unit_rating_kva

__all__ = [
    "PHASES",
    "AsymmetricPowerFlow",
    "AsymPowerFlowResult",
    "net_for_runpp_3ph",
    "phase_loads",
    "run_pandapower_3ph",
]

PHASES = ("a", "b", "c")
_SQRT3 = np.sqrt(3.0)


@dataclass
class AsymPowerFlowResult:
    """Results of a series of unbalanced AC power flows; first axis = time steps, last = phase.

    Attributes
    ----------
    vm_pu : np.ndarray
        ``(T, n_bus, 3)`` phase-to-earth voltage magnitude, p.u. of ``vn_kv / sqrt(3)``,
        ``net.bus`` order; NaN for buses not connected to the external grid.
    va_degree : np.ndarray
        ``(T, n_bus, 3)`` voltage angle, degrees (same reference as pandapower: the ext grid's
        phase a).
    line_i_ka : np.ndarray
        ``(T, n_line, 3)`` phase current, the larger of the two ends, kA.
    line_i_n_ka : np.ndarray
        ``(T, n_line)`` residual current ``|Ia + Ib + Ic|``, the larger of the two ends, kA.
    line_p_from_kw : np.ndarray
        ``(T, n_line)`` active power entering the line at its ``from_bus``, all phases, kW.
    trafo_s_kva : np.ndarray
        ``(T, n_trafo, 3)`` apparent power of each LV phase (star winding) at the LV
        terminals, kVA.
    trafo_p_lv_kw : np.ndarray
        ``(T, n_trafo, 3)`` active power delivered to the feeder per LV phase, kW (negative
        in reverse flow).
    trafo_p_kw : np.ndarray
        ``(T, n_trafo)`` active power entering at the HV side, all phases, kW (as
        :attr:`twin.grid.powerflow.PowerFlowResult.trafo_p_kw`).
    trafo_q_kvar : np.ndarray or None
        ``(T, n_trafo)`` reactive power entering at the HV side, all phases, kvar.
    trafo_i_n_ka : np.ndarray
        ``(T, n_trafo)`` residual current at the LV terminals, kA.
    losses_kw : np.ndarray
        ``(T,)`` losses of lines and transformers, all phases, kW.
    line_rating_ka : np.ndarray
        ``(n_line,)`` ampacity ``max_i_ka * df * parallel``, kA per phase.
    trafo_rating_kva : np.ndarray
        ``(n_trafo,)`` three-phase rating ``sn_mva * 1000 * parallel * df``, kVA.
    bus_index, line_index, trafo_index : np.ndarray
        pandapower index labels.
    steps : np.ndarray
        Time-step numbers of the rows.
    """

    vm_pu: np.ndarray
    va_degree: np.ndarray
    line_i_ka: np.ndarray
    line_i_n_ka: np.ndarray
    line_p_from_kw: np.ndarray
    trafo_s_kva: np.ndarray
    trafo_p_lv_kw: np.ndarray
    trafo_p_kw: np.ndarray
    trafo_i_n_ka: np.ndarray
    losses_kw: np.ndarray
    line_rating_ka: np.ndarray
    trafo_rating_kva: np.ndarray
    bus_index: np.ndarray
    line_index: np.ndarray
    trafo_index: np.ndarray
    steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    trafo_q_kvar: np.ndarray | None = None

    @property
    def n_steps(self) -> int:
        """Number of time steps (rows)."""
        return self.vm_pu.shape[0]

    @property
    def u_pu(self) -> np.ndarray:
        """``(T, n_bus, 3)`` complex phase voltages, p.u."""
        return self.vm_pu * np.exp(1j * np.deg2rad(self.va_degree))

    @property
    def line_loading_pct(self) -> np.ndarray:
        """``(T, n_line, 3)`` current-based loading per phase, % of the ampacity."""
        rating = self.line_rating_ka[:, None].astype(self.line_i_ka.dtype)  # keep float32
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100.0 * self.line_i_ka / rating

    @property
    def line_loading_max_pct(self) -> np.ndarray:
        """``(T, n_line)`` loading of the worst phase, %."""
        return self.line_loading_pct.max(axis=-1)

    @property
    def trafo_loading_pct(self) -> np.ndarray:
        """``(T, n_trafo, 3)`` power-based loading of each LV phase, % of a third of the rating."""
        return 100.0 * self.trafo_s_kva / (self.trafo_rating_kva[:, None] / 3.0)


def phase_loads(
    p_kw: np.ndarray, q_kvar: np.ndarray, phase: np.ndarray | list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Put per-load powers on phases: ``(T, n)`` -> ``(T, n, 3)``.

    Parameters
    ----------
    p_kw, q_kvar : np.ndarray
        ``(T, n)`` (or ``(n,)``) total power of each load, kW / kvar.
    phase : array of int
        ``(n,)`` 0, 1 or 2 to put the whole load on phase a, b or c (single-phase
        connection), -1 to split it equally over the three phases (three-phase connection).

    Returns
    -------
    p, q : np.ndarray
        ``(..., n, 3)`` per-phase powers.
    """
    p = np.asarray(p_kw, dtype=float)
    q = np.asarray(q_kvar, dtype=float)
    ph = np.asarray(phase, dtype=np.int64)
    if ph.shape != (p.shape[-1],) or q.shape != p.shape:
        raise ValueError(
            f"phase must have one entry per load ({p.shape[-1]}) and p, q equal shapes; "
            f"got {ph.shape}, {p.shape}, {q.shape}"
        )
    if not np.isin(ph, (-1, 0, 1, 2)).all():
        raise ValueError("phase entries must be 0, 1, 2 (single-phase a/b/c) or -1 (three-phase)")
    share = np.where(ph[:, None] < 0, 1.0 / 3.0, (ph[:, None] == np.arange(3)).astype(float))
    return p[..., None] * share, q[..., None] * share


class AsymmetricPowerFlow:
    """Batch unbalanced AC power flow of one net over many per-phase load steps.

    Parameters
    ----------
    net : pandapowerNet
        The feeder (see :func:`twin.grid.powerflow.pgm_input_from_net`); ``asymmetric_load``
        and ``asymmetric_sgen`` rows are modelled (wye connection).
    threads : int, default 0
        0 = all hardware threads, 1 = sequential, n > 1 = n threads.
    error_tolerance : float, default 1e-10
        Convergence tolerance on the voltage, p.u.
    max_steps_per_call : int, optional
        Upper bound on steps per PGM call; default sizes calls to about 256 MB of buffers.
    source : {"ideal", "ext_grid"}
        External grid model: ideal voltage source, or its short-circuit impedance from
        ``net.ext_grid`` (``s_sc_max_mva``, ``rx_max``, ``x0x_max``, ``r0x0_max``).
    line_zero_sequence : LineZeroSequence
        Zero-sequence rule for lines without ``r0/x0/c0`` (an assumption, documented there);
        :attr:`line_z0_default` tells which lines it was used for.
    dtype : numpy dtype, default float64
        Storage type of the result arrays (``np.float32`` halves the memory of a year of a
        large feeder; the solution itself is always double precision).

    Notes
    -----
    Steps are solved with the iterative-current method; steps where it fails are re-solved
    with Newton-Raphson, and a step that fails both raises :class:`PowerFlowError` naming it.
    """

    def __init__(
        self,
        net: pandapowerNet,
        threads: int = 0,
        error_tolerance: float = 1e-10,
        max_steps_per_call: int | None = None,
        source: str = "ideal",
        line_zero_sequence: LineZeroSequence = LINE_ZERO_SEQUENCE_DEFAULT,
        dtype: type = np.float64,
    ) -> None:
        self.net = net
        self.threads = int(threads)
        self.error_tolerance = float(error_tolerance)
        self.dtype = np.dtype(dtype)
        data, ids = pgm_input_from_net(
            net, asymmetric=True, source=source, line_zero_sequence=line_zero_sequence
        )
        self._ids = ids
        try:
            self._model = PowerGridModel(data, system_frequency=float(net.f_hz or 50.0))
        except PowerGridError as exc:
            raise ValueError(
                f"power-grid-model rejected the net: {' '.join(str(exc).split())}"
            ) from None
        self.bus_index = net.bus.index.to_numpy()
        self.line_index = net.line.index.to_numpy()
        self.trafo_index = net.trafo.index.to_numpy()
        self.n_load = len(net.load)
        self.n_asym_load = len(ids.get("asymmetric_load", ()))
        load_in = data[ComponentType.asym_load]
        self._asym_p_w = load_in["p_specified"][self.n_load :].copy()
        self._asym_q_var = load_in["q_specified"][self.n_load :].copy()
        self.line_z0_default = ids.get("line_z0_default", np.zeros(len(net.line), dtype=bool))
        self._has_line = ComponentType.line in data
        self._has_trafo = ComponentType.transformer in data
        # positions (in net.bus order) of branch end nodes; node ids are 0..n_bus-1
        node_pos = {int(i): k for k, i in enumerate(ids["bus"])}
        if self._has_line:
            ln = data[ComponentType.line]
            self._line_ends = (
                np.array([node_pos[int(i)] for i in ln["from_node"]]),
                np.array([node_pos[int(i)] for i in ln["to_node"]]),
            )
            # lines with shunt admittance: their two ends carry different currents
            self._line_shunt = np.flatnonzero((ln["c1"] > 0) | (ln["c0"] > 0))
        if self._has_trafo:
            tr = data[ComponentType.transformer]
            self._trafo_lv = np.array([node_pos[int(i)] for i in tr["to_node"]])
        self._u_base_v = net.bus["vn_kv"].to_numpy(float) * 1e3 / _SQRT3
        self.line_rating_ka = line_ampacity_ka(net)
        self.trafo_rating_kva = trafo_unit_rating_kva(net)
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
        n_ld = self.n_load + self.n_asym_load
        per_step_bytes = 24 * (
            2 * n_ld + 2 * len(net.bus) + 5 * len(net.line) + 6 * len(net.trafo) + 4
        )
        self.max_steps_per_call = int(
            max_steps_per_call or max(1, (256 * 2**20) // (3 * per_step_bytes))
        )

    def _outputs(self) -> dict:
        out: dict = {ComponentType.node: ["u_pu", "u_angle"]}
        if self._has_line:
            out[ComponentType.line] = ["p_from", "q_from", "p_to", "q_to", "i_from", "i_to"]
        if self._has_trafo:
            out[ComponentType.transformer] = ["p_from", "q_from", "p_to", "q_to", "s_to"]
        return out

    @staticmethod
    def _per_phase(
        p: np.ndarray, q: np.ndarray, n: int, name: str, split: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        p = np.asarray(p, dtype=float)
        q = np.asarray(q, dtype=float)
        if split and p.ndim == 2 and p.shape[1] == n and q.shape == p.shape:
            p = np.repeat(p[..., None] / 3.0, 3, axis=-1)
            q = np.repeat(q[..., None] / 3.0, 3, axis=-1)
        if p.shape != q.shape or p.ndim != 3 or p.shape[1:] != (n, 3):
            raise ValueError(
                f"{name} and its reactive twin must both be (T, {n}, 3) (per phase a, b, c)"
                + (f" or (T, {n}) (split equally)" if split else "")
                + f"; got {p.shape}, {q.shape}"
            )
        return p, q

    def run(
        self,
        p_load_kw: np.ndarray,
        q_load_kvar: np.ndarray,
        p_asym_load_kw: np.ndarray | None = None,
        q_asym_load_kvar: np.ndarray | None = None,
    ) -> AsymPowerFlowResult:
        """Solve one unbalanced AC power flow per time step.

        Parameters
        ----------
        p_load_kw, q_load_kvar : np.ndarray
            ``(T, len(net.load), 3)`` active/reactive power of every ``net.load`` row per
            phase a, b, c, kW/kvar, positive = consumption (a ``(T, len(net.load))`` array is
            split equally over the phases). Use :func:`phase_loads` for single-phase loads.
        p_asym_load_kw, q_asym_load_kvar : np.ndarray, optional
            ``(T, len(net.asymmetric_load), 3)`` per-step powers of the ``asymmetric_load``
            rows; default: their values in the net (``p_a_mw ... * scaling``) at every step.

        Returns
        -------
        AsymPowerFlowResult

        Raises
        ------
        PowerFlowError
            A step did not converge with either method (the message names it).
        """
        p, q = self._per_phase(p_load_kw, q_load_kvar, self.n_load, "p_load_kw", split=True)
        n_t = p.shape[0]
        if self.n_asym_load:
            if p_asym_load_kw is None:
                shape = (n_t, self.n_asym_load, 3)
                pa = np.broadcast_to(self._asym_p_w / 1e3, shape)
                qa = np.broadcast_to(self._asym_q_var / 1e3, shape)
            else:
                pa, qa = self._per_phase(
                    p_asym_load_kw, q_asym_load_kvar, self.n_asym_load, "p_asym_load_kw", False
                )
            if pa.shape[0] != n_t:
                raise ValueError(f"asymmetric load arrays have {pa.shape[0]} steps, loads {n_t}")
            p = np.concatenate([p, pa], axis=1)
            q = np.concatenate([q, qa], axis=1)
        elif p_asym_load_kw is not None:
            raise ValueError("the net has no asymmetric_load rows for p_asym_load_kw")
        if not (np.isfinite(p).all() and np.isfinite(q).all()):
            bad = int(np.flatnonzero(~(np.isfinite(p).all((1, 2)) & np.isfinite(q).all((1, 2))))[0])
            raise ValueError(f"non-finite load at step {bad}")

        n_bus, n_line, n_tr = len(self.bus_index), len(self.line_index), len(self.trafo_index)
        dt = self.dtype
        vm = np.empty((n_t, n_bus, 3), dtype=dt)
        va = np.empty((n_t, n_bus, 3), dtype=dt)
        li = np.zeros((n_t, n_line, 3), dtype=dt)
        lin = np.zeros((n_t, n_line), dtype=dt)
        lp = np.zeros((n_t, n_line), dtype=dt)
        ts = np.zeros((n_t, n_tr, 3), dtype=dt)
        tplv = np.zeros((n_t, n_tr, 3), dtype=dt)
        tp = np.zeros((n_t, n_tr), dtype=dt)
        tq = np.zeros((n_t, n_tr), dtype=dt)
        tin = np.zeros((n_t, n_tr), dtype=dt)
        losses = np.zeros(n_t)
        threading = -1 if self.threads == 1 else max(0, self.threads)
        for s0 in range(0, n_t, self.max_steps_per_call):
            s1 = min(n_t, s0 + self.max_steps_per_call)
            pw = np.ascontiguousarray(p[s0:s1] * 1e3)
            update = {
                ComponentType.asym_load: {
                    "p_specified": pw,
                    "q_specified": np.ascontiguousarray(q[s0:s1] * 1e3),
                }
            }
            out = solve_batch(
                self._model,
                update,
                outputs=self._outputs(),
                step0=s0,
                symmetric=False,
                error_tolerance=self.error_tolerance,
                threading=threading,
                load_kw=lambda k, pw=pw: float(pw[k].sum()) / 1e3,
            )
            node = out[ComponentType.node]
            vm[s0:s1] = node["u_pu"]
            va[s0:s1] = np.rad2deg(node["u_angle"])
            # phase voltage phasors (V) as U / |U|^2, for the residual currents
            u_abs = node["u_pu"] * self._u_base_v[None, :, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                inv = np.where(u_abs > 0, 1.0 / u_abs, 0.0)
            u_re = np.cos(node["u_angle"]) * inv
            u_im = np.sin(node["u_angle"]) * inv
            if self._has_line:
                o = out[ComponentType.line]
                li[s0:s1] = np.maximum(o["i_from"], o["i_to"]) / 1e3
                lp[s0:s1] = o["p_from"].sum(axis=-1) / 1e3
                losses[s0:s1] += (o["p_from"] + o["p_to"]).sum(axis=(1, 2)) / 1e3
                f, t = self._line_ends
                i_n = _residual_ka(o["p_from"], o["q_from"], u_re[:, f], u_im[:, f])
                sh, t = self._line_shunt, t[self._line_shunt]
                if len(sh):  # without shunt admittance the to-end current is the same
                    i_t = _residual_ka(o["p_to"][:, sh], o["q_to"][:, sh], u_re[:, t], u_im[:, t])
                    i_n[:, sh] = np.maximum(i_n[:, sh], i_t)
                lin[s0:s1] = i_n
            if self._has_trafo:
                o = out[ComponentType.transformer]
                ts[s0:s1] = o["s_to"] / 1e3
                tplv[s0:s1] = -o["p_to"] / 1e3
                tp[s0:s1] = o["p_from"].sum(axis=-1) / 1e3
                tq[s0:s1] = o["q_from"].sum(axis=-1) / 1e3
                losses[s0:s1] += (o["p_from"] + o["p_to"]).sum(axis=(1, 2)) / 1e3
                lv = self._trafo_lv
                tin[s0:s1] = _residual_ka(o["p_to"], o["q_to"], u_re[:, lv], u_im[:, lv])
        vm[:, ~self._energized] = np.nan
        va[:, ~self._energized] = np.nan
        return AsymPowerFlowResult(
            vm_pu=vm,
            va_degree=va,
            line_i_ka=li,
            line_i_n_ka=lin,
            line_p_from_kw=lp,
            trafo_s_kva=ts,
            trafo_p_lv_kw=tplv,
            trafo_p_kw=tp,
            trafo_i_n_ka=tin,
            losses_kw=losses,
            line_rating_ka=self.line_rating_ka.copy(),
            trafo_rating_kva=self.trafo_rating_kva.copy(),
            bus_index=self.bus_index.copy(),
            line_index=self.line_index.copy(),
            trafo_index=self.trafo_index.copy(),
            steps=np.arange(n_t),
            trafo_q_kvar=tq,
        )


def _residual_ka(p_w: np.ndarray, q_var: np.ndarray, u_re: np.ndarray, u_im: np.ndarray):
    """``|sum over phases of conj(S / U)|`` in kA, with ``u_re + j u_im = U / |U|^2``
    (0 where the voltage is 0): ``conj(S / U) = (P - jQ) U / |U|^2``."""
    re = (p_w * u_re + q_var * u_im).sum(axis=-1)
    im = (p_w * u_im - q_var * u_re).sum(axis=-1)
    return np.hypot(re, im) / 1e3


# ----------------------------------------------------------------------------------------------
# pandapower reference
# ----------------------------------------------------------------------------------------------


def net_for_runpp_3ph(
    net: pandapowerNet,
    line_zero_sequence: LineZeroSequence = LINE_ZERO_SEQUENCE_DEFAULT,
    ideal_source: bool = True,
) -> pandapowerNet:
    """A copy of ``net`` that ``pandapower.runpp_3ph`` accepts, with the data twin models.

    * lines without ``r0/x0/c0`` get them from ``line_zero_sequence`` (the same rule as
      :class:`AsymmetricPowerFlow`);
    * ``vector_group`` loses its clock digits (``Dyn5`` -> ``Dyn``; pandapower takes the
      phase shift from ``shift_degree``);
    * transformers without zero-sequence data get ``vk0 = vk``, ``vkr0 = vkr``,
      ``mag0_percent = 100``, ``mag0_rx = 0``, ``si0_hv_partial = 0.9`` (pandapower's
      suggested values; only its 't' model uses the last three);
    * with ``ideal_source`` the ext grid's short-circuit power is set to 1e9 MVA (pandapower
      uses it in the negative and zero sequence; PGM's ``source='ideal'``); otherwise
      missing short-circuit data is an error.
    """
    net = copy.deepcopy(net)
    line = net.line
    if len(line):
        r0, x0, c0, _ = line_zero_sequence_per_km(line, line_zero_sequence)
        line["r0_ohm_per_km"], line["x0_ohm_per_km"], line["c0_nf_per_km"] = r0, x0, c0
    trafo = net.trafo
    if len(trafo):
        trafo["vector_group"] = [
            re.sub(r"\d+$", "", str(v).strip()) for v in trafo["vector_group"].astype(str)
        ]
        for col, default in (
            ("vk0_percent", trafo["vk_percent"]),
            ("vkr0_percent", trafo["vkr_percent"]),
            ("mag0_percent", 100.0),
            ("mag0_rx", 0.0),
            ("si0_hv_partial", 0.9),
        ):
            if col not in trafo:
                trafo[col] = default
            else:
                trafo[col] = (
                    trafo[col]
                    .astype(float)
                    .fillna(
                        default if np.isscalar(default) else pd.Series(default, index=trafo.index)
                    )
                )
    eg = net.ext_grid
    if ideal_source:
        eg["s_sc_max_mva"] = 1e9
        for col, default in (("rx_max", 0.1), ("x0x_max", 1.0), ("r0x0_max", 0.1)):
            eg[col] = eg[col].fillna(default) if col in eg else default
    return net


def run_pandapower_3ph(
    net: pandapowerNet,
    p_load_kw: np.ndarray,
    q_load_kvar: np.ndarray,
    steps: np.ndarray | list[int] | None = None,
    timings: list[float] | None = None,
    align_trafo_zero_sequence: bool = True,
    ideal_source: bool = True,
    line_zero_sequence: LineZeroSequence = LINE_ZERO_SEQUENCE_DEFAULT,
) -> AsymPowerFlowResult:
    """Reference: a loop of ``pandapower.runpp_3ph`` over the given steps.

    ``net.load`` rows are replaced by wye ``asymmetric_load`` rows carrying the per-phase
    powers of each step (the net's own ``asymmetric_load`` rows stay as they are); the net is
    prepared by :func:`net_for_runpp_3ph`. pandapower 3.5 solves the unbalanced flow with its
    transformer 't' model only (``trafo_model='pi'`` raises there); transformer loading is
    power based, tolerance 1e-10 MVA.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; not modified.
    p_load_kw, q_load_kvar : np.ndarray
        ``(T, len(net.load), 3)`` per-phase loads as for :meth:`AsymmetricPowerFlow.run`.
    steps : array of int, optional
        Rows to solve (default all); result rows follow this order.
    timings : list, optional
        The wall time of each ``runpp_3ph`` call (s) is appended.
    align_trafo_zero_sequence : bool, default True
        Set ``mag0_percent`` to 1e12 so that the 't' model's zero-sequence impedance of a
        Dyn/YNd transformer is its leakage impedance, as in :class:`AsymmetricPowerFlow` (see
        the module docstring); False keeps the net's ``mag0_percent``.
    ideal_source, line_zero_sequence :
        As for :func:`net_for_runpp_3ph`.
    """
    from pandapower.pf.runpp_3ph import runpp_3ph

    net = net_for_runpp_3ph(net, line_zero_sequence, ideal_source)
    if align_trafo_zero_sequence and len(net.trafo):
        net.trafo["mag0_percent"] = 1e12
    p = np.asarray(p_load_kw, dtype=float)
    q = np.asarray(q_load_kvar, dtype=float)
    if p.ndim != 3 or p.shape[1:] != (len(net.load), 3) or q.shape != p.shape:
        raise ValueError(f"loads must be (T, {len(net.load)}, 3); got {p.shape}, {q.shape}")
    steps_arr = np.arange(p.shape[0]) if steps is None else np.asarray(steps, dtype=np.int64)
    n_own = len(net.asymmetric_load)
    load = net.load
    for _idx, row in load.iterrows():
        pp.create_asymmetric_load(
            net, bus=int(row["bus"]), in_service=bool(row["in_service"]), type="wye"
        )
    rows = net.asymmetric_load.index[n_own:]
    net.load["in_service"] = False
    pcols = ["p_a_mw", "p_b_mw", "p_c_mw"]
    qcols = ["q_a_mvar", "q_b_mvar", "q_c_mvar"]
    n_t, n_bus, n_line, n_tr = len(steps_arr), len(net.bus), len(net.line), len(net.trafo)
    vm = np.empty((n_t, n_bus, 3))
    va = np.empty((n_t, n_bus, 3))
    li = np.empty((n_t, n_line, 3))
    lin = np.empty((n_t, n_line))
    lp = np.empty((n_t, n_line))
    ts = np.empty((n_t, n_tr, 3))
    tplv = np.empty((n_t, n_tr, 3))
    tp = np.empty((n_t, n_tr))
    tq = np.empty((n_t, n_tr))
    tin = np.full((n_t, n_tr), np.nan)
    losses = np.empty(n_t)
    for k, step in enumerate(steps_arr):
        net.asymmetric_load.loc[rows, pcols] = p[step] / 1e3
        net.asymmetric_load.loc[rows, qcols] = q[step] / 1e3
        t0 = time.perf_counter()
        runpp_3ph(
            net,
            trafo_model="t",
            trafo_loading="power",
            tolerance_mva=1e-10,
            max_iteration=100,
            numba=False,
        )
        if timings is not None:
            timings.append(time.perf_counter() - t0)
        rb = net.res_bus_3ph
        vm[k] = rb[["vm_a_pu", "vm_b_pu", "vm_c_pu"]].to_numpy(float)
        va[k] = rb[["va_a_degree", "va_b_degree", "va_c_degree"]].to_numpy(float)
        rl = net.res_line_3ph
        li[k] = rl[["i_a_ka", "i_b_ka", "i_c_ka"]].to_numpy(float)
        lin[k] = rl["i_n_ka"].to_numpy(float)
        lp[k] = rl[["p_a_from_mw", "p_b_from_mw", "p_c_from_mw"]].to_numpy(float).sum(1) * 1e3
        rt = net.res_trafo_3ph
        for j, ph in enumerate(PHASES):
            ts[k, :, j] = np.hypot(rt[f"p_{ph}_lv_mw"], rt[f"q_{ph}_lv_mvar"]).to_numpy() * 1e3
            tplv[k, :, j] = -rt[f"p_{ph}_lv_mw"].to_numpy() * 1e3
        tp[k] = rt[["p_a_hv_mw", "p_b_hv_mw", "p_c_hv_mw"]].to_numpy().sum(axis=1) * 1e3
        tq[k] = rt[["q_a_hv_mvar", "q_b_hv_mvar", "q_c_hv_mvar"]].to_numpy().sum(axis=1) * 1e3
        losses[k] = (
            rl[["pl_a_mw", "pl_b_mw", "pl_c_mw"]].to_numpy().sum()
            + rt[["pl_a_mw", "pl_b_mw", "pl_c_mw"]].to_numpy().sum()
        ) * 1e3
    return AsymPowerFlowResult(
        vm_pu=vm,
        va_degree=va,
        line_i_ka=li,
        line_i_n_ka=lin,
        line_p_from_kw=lp,
        trafo_s_kva=ts,
        trafo_p_lv_kw=tplv,
        trafo_p_kw=tp,
        trafo_i_n_ka=tin,
        losses_kw=losses,
        line_rating_ka=line_ampacity_ka(net),
        trafo_rating_kva=trafo_unit_rating_kva(net),
        bus_index=net.bus.index.to_numpy(),
        line_index=net.line.index.to_numpy(),
        trafo_index=net.trafo.index.to_numpy(),
        steps=steps_arr,
        trafo_q_kvar=tq,
    )
