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
        return FeederLimits(self.a_p[:, opt_cols].copy(), self.sign.copy(), self.names, lazy)

    def rhs(self, p_rest_kw: np.ndarray, q_kvar: np.ndarray) -> np.ndarray:
        """``(R, N)`` right-hand sides for per-period loads ``(N, n_load)``: ``p_rest_kw`` is
        everything not controllable in the LP, ``q_kvar`` all reactive power."""
        p = self.p0[:, None] + self.a_p @ p_rest_kw.T
        q = self.q0[:, None] + self.a_q @ q_kvar.T
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
    """
    from twin.grid.linear import LinearFeederModel

    lin = LinearFeederModel(net)
    n_load = len(lin.load_idx)
    names: list[str] = []
    sign, a_p, a_q, p0, q0, s_max, is_flow = [], [], [], [], [], [], []
    out: dict[str, str] = {}
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
    ) -> None:
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
    )
