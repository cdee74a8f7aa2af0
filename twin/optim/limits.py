"""Feeder limits for the allocation LP, from the grid engine's linear model.

:class:`GridLimits` holds the limits as rows ``r`` of the form

    sign_r * (p0_r + A_r @ p_load) <= P_max_r[j]     (kW, per period j)

with ``A_r`` the linear map from every load's active power to the limited quantity
(:class:`twin.grid.linear.LinearFeederModel`): the transformer's active power, a cable's
active power flow in either direction, or (scaled to kW) a bus voltage drop. For flows,
``P_max = sqrt(S_max^2 - Q^2)`` with ``Q`` the forecast reactive flow (devices run at unity
power factor, so ``Q`` is known before the plan) and ``S_max = rating * (1 - margin)``; cable
ratings are taken at ``v_min_pu`` (a conservative voltage at the cable's upstream end). The
part of ``A_r`` on the optimised households becomes the LP's coefficients
(:class:`FeederLimits`); everything else moves to the right-hand side
(:meth:`GridLimits.rhs`).

**Per phase** (unbalanced runs): a cable row may instead bound one phase's flow,

    sign_r * (p0_r / 3 + A_r @ p_load[:, f_r]) <= P_max_r[j],   S_max = rating / 3 * (1 - margin)

(the linear model's per-phase flows, :meth:`twin.grid.linear.LinearFeederModel.
line_phase_p_kw`: a line's phase-``f`` flow is the sum of the phase-``f`` loads downstream),
with the uncontrollable loads given per phase to :meth:`GridLimits.rhs` and each optimised
household's controllable power put on the phases by ``flex_share`` (its share on phase ``f``
is the largest share of its controllable devices there: heat pump, charger, battery; an upper
bound while they consume). So a band that is safe in total but overloads one phase is not
allocated; every screened cable then has up to three import and three export rows, one per
phase, instead of one of each.

Rows are **screened** once per run: a cable (or voltage) row enters the LP only if the worst
case over the simulated window — every load downstream at its largest possible value (devices
at full power, PV at its peak for export) — could exceed its limit; the transformer's import
row is always there. Rows that cannot bind would only slow the solver down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FeederLimits", "GridLimits", "build_grid_limits"]


@dataclass(frozen=True)
class FeederLimits:
    """The feeder limits an allocation respects, as linear rows over households.

    Attributes
    ----------
    coef : np.ndarray
        ``(R, n)`` sensitivity of each limited quantity to each optimised household's load
        (the row reads ``sign * coef @ flex <= rhs``).
    lazy : np.ndarray, optional
        ``(R,)`` rows built into the model but handed to the solver only when a solution
        would violate them (then the LP is re-solved, warm); they rarely bind and would
        otherwise slow every solve down.
    sign : np.ndarray
        ``(R,)`` +1 import direction, -1 export direction.
    names : tuple[str, ...]
        Row names (``"trafo"``, ``"line 17"``, ...), for reports.
    """

    coef: np.ndarray
    sign: np.ndarray
    names: tuple[str, ...]
    lazy: np.ndarray | None = (
        None  # (R,) rows handed to the solver only once a plan would violate them
    )

    @classmethod
    def transformer_only(cls, n: int) -> FeederLimits:
        return cls(np.ones((1, n)), np.ones(1), ("trafo",))


@dataclass
class GridLimits:
    """Feeder limit rows over all loads of a feeder; see the module docstring.

    Attributes
    ----------
    names : tuple[str, ...]
        Row names.
    sign : np.ndarray
        ``(R,)`` direction (+1 import/downstream, -1 export/upstream).
    a_p : np.ndarray
        ``(R, n_load)`` sensitivity of the row's quantity to each load's active power.
    a_q : np.ndarray
        ``(R, n_load)`` same for reactive power (flows) or voltage (scaled).
    p0 : np.ndarray
        ``(R,)`` no-load value of the quantity.
    s_max : np.ndarray
        ``(R,)`` apparent-power limit (flows, kVA) or scaled voltage margin.
    is_flow : np.ndarray
        ``(R,)`` flows use ``sqrt(S^2 - Q^2)``; voltage rows are linear in ``q``.
    screened_out : dict
        Names of rows left out by the screening, and why.
    phase : np.ndarray, optional
        ``(R,)`` -1 for a row over all phases, 0/1/2 for a row of phase a/b/c (default all -1).
    flex_share : np.ndarray, optional
        ``(n_load, 3)`` share of each load's controllable power on each phase (needed with
        phase rows).
    """

    names: tuple[str, ...]
    sign: np.ndarray
    a_p: np.ndarray
    a_q: np.ndarray
    p0: np.ndarray
    q0: np.ndarray
    s_max: np.ndarray
    is_flow: np.ndarray
    screened_out: dict[str, str] = field(default_factory=dict)
    phase: np.ndarray | None = None
    flex_share: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.phase is None:
            self.phase = np.full(len(self.names), -1, dtype=np.int64)
        if (self.phase >= 0).any() and self.flex_share is None:
            raise ValueError("phase rows need flex_share (n_load, 3)")

    @property
    def has_phase_rows(self) -> bool:
        """True if some rows bound a single phase (an unbalanced run)."""
        return bool((self.phase >= 0).any())

    @classmethod
    def transformer_only(cls, n_load: int, rating_kva: float, margin: float) -> GridLimits:
        """One row: the sum of all loads within the (derated) transformer rating."""
        return cls(
            ("trafo",),
            np.ones(1),
            np.ones((1, n_load)),
            np.ones((1, n_load)),
            np.zeros(1),
            np.zeros(1),
            np.array([rating_kva * (1.0 - margin)]),
            np.ones(1, bool),
        )

    @property
    def n_rows(self) -> int:
        return len(self.names)

    def feeder_limits(self, opt_cols: np.ndarray) -> FeederLimits:
        """The LP's coefficients for the optimised households at load columns ``opt_cols``
        (rows other than the transformer's import row are lazy)."""
        lazy = np.array(
            [not (n.startswith("trafo") and not n.endswith("export")) for n in self.names]
        )
        coef = self.a_p[:, opt_cols].copy()
        rows = np.flatnonzero(self.phase >= 0)
        if len(rows):  # a phase row sees the household's controllable power on that phase
            coef[rows] *= self.flex_share[np.asarray(opt_cols)][:, self.phase[rows]].T
        return FeederLimits(coef, self.sign.copy(), self.names, lazy)

    def rhs(self, p_rest_kw: np.ndarray, q_kvar: np.ndarray) -> np.ndarray:
        """``(R, N)`` right-hand sides for per-period loads: ``p_rest_kw`` is everything not
        controllable in the LP, ``q_kvar`` all reactive power, ``(N, n_load)`` or per phase
        ``(N, n_load, 3)`` (required when there are phase rows; rows over all phases take
        the sum)."""
        p_rest = np.asarray(p_rest_kw, dtype=float)
        q_all = np.asarray(q_kvar, dtype=float)
        per_phase = p_rest.ndim == 3
        if self.has_phase_rows and not per_phase:
            raise ValueError("phase rows need per-phase loads (N, n_load, 3)")
        p_tot = p_rest.sum(axis=-1) if per_phase else p_rest
        q_tot = q_all.sum(axis=-1) if per_phase else q_all
        p = self.p0[:, None] + self.a_p @ p_tot.T
        q = self.q0[:, None] + self.a_q @ q_tot.T
        for f in range(3):
            rows = np.flatnonzero(self.phase == f)
            if len(rows):
                p[rows] = self.p0[rows, None] + self.a_p[rows] @ p_rest[..., f].T
                q[rows] = self.q0[rows, None] + self.a_q[rows] @ q_all[..., f].T
        flow = np.sqrt(np.maximum(self.s_max[:, None] ** 2 - q**2, 0.0))
        lim = np.where(self.is_flow[:, None], flow, self.s_max[:, None] - self.sign[:, None] * q)
        return lim - self.sign[:, None] * p


def build_grid_limits(
    net: Any,
    p_worst_import_kw: np.ndarray,
    p_worst_export_kw: np.ndarray,
    q_max_kvar: np.ndarray,
    margin: float,
    cables: bool = True,
    voltages: bool = True,
    v_min_pu: float = 0.95,
    v_limit_pu: float = 0.90,
    phase_worst_import_kw: np.ndarray | None = None,
    phase_worst_export_kw: np.ndarray | None = None,
    flex_share: np.ndarray | None = None,
) -> GridLimits:
    """Screened limit rows of a radial feeder.

    Parameters
    ----------
    net : pandapowerNet
        The feeder (model of record).
    p_worst_import_kw, p_worst_export_kw : np.ndarray
        ``(n_load,)`` largest possible consumption and feed-in of every ``net.load`` row over
        the run (for the screening).
    q_max_kvar : np.ndarray
        ``(n_load,)`` largest reactive power of every load.
    margin : float
        Safety margin on every limit (share of the rating kept free).
    cables, voltages : bool
        Screen cable / voltage rows in (the transformer import row is always in).
    v_min_pu : float
        Voltage at which cable ratings are taken (current limit -> kVA).
    v_limit_pu : float
        Lowest allowed bus voltage (EN 50160: 0.90 p.u. for 95 % of the time).
    phase_worst_import_kw, phase_worst_export_kw : np.ndarray, optional
        ``(n_load, 3)`` the worst cases per phase: given, the cable rows are per phase (see
        the module docstring), screened per phase against a third of the rating.
    flex_share : np.ndarray, optional
        ``(n_load, 3)`` share of each load's controllable power per phase (with the above).
    """
    from twin.grid.linear import LinearFeederModel

    lin = LinearFeederModel(net)
    n_load = len(lin.load_idx)
    names: list[str] = []
    sign, a_p, a_q, p0, q0, s_max, is_flow = [], [], [], [], [], [], []
    phase: list[int] = []
    out: dict[str, str] = {}
    per_phase = phase_worst_import_kw is not None
    if per_phase and (phase_worst_export_kw is None or flex_share is None):
        raise ValueError("per-phase rows need phase_worst_export_kw and flex_share too")
    derate = 1.0 - margin

    def add(
        name: str,
        sg: float,
        ap: np.ndarray,
        aq: np.ndarray,
        pz: float,
        qz: float,
        smax: float,
        flow: bool,
        ph: int = -1,
    ) -> None:
        phase.append(ph)
        names.append(name)
        sign.append(sg)
        a_p.append(ap)
        a_q.append(aq)
        p0.append(pz)
        q0.append(qz)
        s_max.append(smax)
        is_flow.append(flow)

    # the transformer station (parallel units together): import always, export if it could bind
    units = lin.trafo_index[lin.station_units]
    if len(units):
        name = "trafo " + "+".join(str(int(u)) for u in units)
        rating = float(lin.station_rating_kva) * derate
        a = lin.A_station
        sp0, sq0 = lin.station_p0_kw, lin.station_q0_kvar
        add(name, 1.0, a, a, sp0, sq0, rating, True)
        if float(a @ p_worst_export_kw) > rating:
            add(f"{name} export", -1.0, a, a, sp0, sq0, rating, True)
        else:
            out[f"{name} export"] = "feed-in cannot reach the rating"
    if cables:
        for k in range(len(lin.line_index)):
            a = lin.A_line[k]
            if not np.any(a):
                continue
            orient = float(np.sign(a[np.flatnonzero(a)[0]]))  # +1 if from_bus is upstream
            down = orient * a  # 0/1: loads downstream of the line
            rating = float(lin.line_rating_kva[k]) * v_min_pu * derate
            name = f"line {lin.line_index[k]}"
            if per_phase:
                for f, ph_name in enumerate("abc"):
                    for sg, worst, label in (
                        (1.0, phase_worst_import_kw, ""),
                        (-1.0, phase_worst_export_kw, " export"),
                    ):
                        row = f"{name} phase {ph_name}{label}"
                        if float(down @ worst[:, f]) > rating / 3.0:
                            add(
                                row,
                                sg,
                                down,
                                down,
                                orient * float(lin.line_p0_kw[k]) / 3.0,
                                orient * float(lin.line_q0_kvar[k]) / 3.0,
                                rating / 3.0,
                                True,
                                f,
                            )
                        else:
                            out[row] = "worst case below the phase rating"
                continue
            for sg, worst, label in (
                (1.0, p_worst_import_kw, ""),
                (-1.0, p_worst_export_kw, " export"),
            ):
                if float(down @ worst) > rating:
                    add(
                        name + label,
                        sg,
                        down,
                        down,
                        orient * float(lin.line_p0_kw[k]),
                        orient * float(lin.line_q0_kvar[k]),
                        rating,
                        True,
                    )
                else:
                    out[name + label] = "worst case below the rating"
    if voltages:
        # vm = vm0 + V_p p + V_q q >= v_limit  <=>  -V_p p / s <= (vm0 - v_limit + V_q q) / s
        vm_worst = lin.vm0_pu + lin.V_p @ p_worst_import_kw + lin.V_q @ q_max_kvar
        for b in range(len(lin.bus_index)):
            scale = float(np.max(np.abs(lin.V_p[b]))) if np.any(lin.V_p[b]) else 0.0
            if scale == 0.0 or not np.isfinite(lin.vm0_pu[b]):
                continue
            name = f"bus {lin.bus_index[b]} voltage"
            if vm_worst[b] < v_limit_pu + margin * (1.0 - v_limit_pu):
                add(
                    name,
                    1.0,
                    -lin.V_p[b] / scale,
                    -lin.V_q[b] / scale,
                    0.0,
                    0.0,
                    (float(lin.vm0_pu[b]) - v_limit_pu) / scale * derate,
                    False,
                )
    if not any(n.startswith("bus") for n in names):
        out["bus voltages"] = "worst case stays above the limit"
    return GridLimits(
        names=tuple(names),
        sign=np.array(sign),
        a_p=np.array(a_p).reshape(len(names), n_load),
        a_q=np.array(a_q).reshape(len(names), n_load),
        p0=np.array(p0),
        q0=np.array(q0),
        s_max=np.array(s_max),
        is_flow=np.array(is_flow, dtype=bool),
        screened_out=out,
        phase=np.array(phase, dtype=np.int64),
        flex_share=None if flex_share is None else np.asarray(flex_share, dtype=float),
    )
