"""The optimisation models of the performance contract, each built once and re-solved.

* :class:`CentralAllocation` — the DSO's allocation LP in *central* mode: it sees the device
  models of the households that signed, plans their devices and the feeder together, and
  hands out capacity bands (the upper bound of what the contract can achieve).
* :class:`EnvelopeAllocation` — the DSO's allocation LP in *envelope* mode: its only inputs
  about households are :class:`~twin.optim.envelope.FlexibilityEnvelope` s (plus its own
  forecast of their base load and PV); its only output, their allocated controllable load.
* :class:`HemsPlanning` — the households' HEMSs in envelope mode: each plans its own devices
  inside the band it received (service levels as hard bounds, band excess penalised). The
  HEMSs are independent (no shared constraint, separable objective); they are solved as one
  block-diagonal LP only because that is faster than ~100 tiny solves.

Each class owns one Pyomo model and one :class:`~twin.optim.persistent.PersistentLP`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo

from twin.optim.blocks import DeviceBlock, DevicePlan, EnvelopeBlock, LimitBlock, Weights
from twin.optim.devices import DeviceInputs, DeviceSet
from twin.optim.envelope import FlexibilityEnvelope
from twin.optim.horizon import Horizon
from twin.optim.limits import FeederLimits
from twin.optim.persistent import PersistentLP, SolverOptions, SolveStats

__all__ = [
    "CentralAllocation",
    "EnvelopeAllocation",
    "GroupedAllocation",
    "HemsPlanning",
    "LimitData",
    "branch_groups",
]


@dataclass
class LimitData:
    """One re-plan's limits.

    Attributes
    ----------
    rhs_kw : np.ndarray
        ``(R, N)`` limit minus the forecast flow of everything that is not controllable here
        (in the row's direction).
    inflexible_kw : np.ndarray
        ``(N,)`` forecast feeder load that is not controllable here.
    sunk_peak_kw : float
        Peak already realised (the plan's peak is not pushed below it).
    """

    rhs_kw: np.ndarray
    inflexible_kw: np.ndarray
    sunk_peak_kw: float = 0.0


@dataclass
class AllocationResult:
    """Outcome of one allocation solve (``plan``/``flex_kw`` are None when it failed)."""

    stats: SolveStats
    flex_kw: np.ndarray | None  # (n, N) controllable load per household
    over_kw: np.ndarray | None  # (R, N) limit exceedance
    total_kw: np.ndarray | None  # (N,) planned controllable total
    peak_kw: float
    plan: DevicePlan | None = None


def _solve(lp: PersistentLP) -> SolveStats:
    try:
        return lp.solve()
    except Exception as err:  # noqa: BLE001 - any solver failure -> reported fallback
        return SolveStats(
            ok=False,
            status=f"error: {err}",
            objective=float("nan"),
            highs_s=0.0,
            solve_wall_s=0.0,
            iterations=0,
        )


def _solve_lazy(
    lp: PersistentLP, limits: LimitBlock, read_flex: Any, max_rounds: int = 5
) -> SolveStats:
    """Solve; while the solution violates a lazy limit row, hand it to the solver and re-solve."""
    total = None
    for _ in range(max_rounds):
        stats = _solve(lp)
        if total is not None:
            stats.highs_s += total.highs_s
            stats.solve_wall_s += total.solve_wall_s
            stats.iterations += total.iterations
        if not stats.ok:
            return stats
        rows = limits.violated(read_flex())
        if not len(rows):
            return stats
        limits.activate(lp, rows)
        total = stats
    return stats


def _with_limits(
    m: pyo.ConcreteModel,
    households: DeviceBlock | EnvelopeBlock,
    n: int,
    horizon: Horizon,
    limits: FeederLimits,
    weights: Weights,
    options: SolverOptions,
) -> tuple[LimitBlock, PersistentLP]:
    """Add the feeder-limit block over ``households``' load and the objective to ``m``, hand
    the model to the persistent solver once and bind both blocks' parameters."""
    m.grid = pyo.Block()
    block = LimitBlock(
        m.grid,
        households.household_terms,
        n,
        horizon,
        limits.coef,
        limits.sign,
        weights,
        limits.lazy,
    )
    m.objective = pyo.Objective(expr=households.objective + block.objective, sense=pyo.minimize)
    lp = PersistentLP(m, options)
    households.bind(lp)
    block.bind(lp)
    return block, lp


class CentralAllocation:
    """DSO allocation in central mode: device models + feeder limits + peak.

    Parameters
    ----------
    dev : DeviceSet
        Devices of the households that signed.
    horizon : Horizon
        Periods.
    limits : FeederLimits
        Feeder limit rows.
    weights : Weights
        Objective weights.
    options : SolverOptions
        HiGHS settings.
    """

    def __init__(
        self,
        dev: DeviceSet,
        horizon: Horizon,
        limits: FeederLimits,
        weights: Weights,
        options: SolverOptions,
    ) -> None:
        t0 = time.perf_counter()
        m = pyo.ConcreteModel(name="central_allocation")
        m.devices = pyo.Block()
        self.devices = DeviceBlock(m.devices, dev, horizon, weights)
        self.limits, self.lp = _with_limits(
            m, self.devices, dev.n, horizon, limits, weights, options
        )
        self.build_s = time.perf_counter() - t0 - self.lp.set_instance_s  # Pyomo build only
        self.model = m

    def solve(self, inp: DeviceInputs, lim: LimitData) -> AllocationResult:
        self.devices.push(self.lp, inp)
        self.limits.push(self.lp, lim.rhs_kw, lim.inflexible_kw, lim.sunk_peak_kw)
        plans: list[DevicePlan] = []  # the plan read for the lazy rows' check is the plan

        def flex() -> np.ndarray:
            plans.append(self.devices.read(self.lp))
            return plans[-1].p_flex_kw

        stats = _solve_lazy(self.lp, self.limits, flex)
        if not stats.ok:
            return AllocationResult(stats, None, None, None, float("nan"))
        plan = plans[-1]
        over, total, peak = self.limits.read(self.lp)
        return AllocationResult(stats, plan.p_flex_kw, over, total, peak, plan)


class EnvelopeAllocation:
    """DSO allocation in envelope mode: flexibility envelopes + feeder limits + peak.

    The DSO side of the privacy-friendly interface: :meth:`allocate` takes envelopes and the
    DSO's own forecasts, and returns each household's allocated controllable load. It never
    receives device states or device models.
    """

    def __init__(
        self,
        n: int,
        horizon: Horizon,
        limits: FeederLimits,
        weights: Weights,
        options: SolverOptions,
    ) -> None:
        t0 = time.perf_counter()
        m = pyo.ConcreteModel(name="envelope_allocation")
        m.households = pyo.Block()
        self.households = EnvelopeBlock(m.households, n, horizon, weights)
        self.limits, self.lp = _with_limits(
            m, self.households, n, horizon, limits, weights, options
        )
        self.build_s = time.perf_counter() - t0 - self.lp.set_instance_s  # Pyomo build only
        self.model = m

    def allocate(self, envelopes: FlexibilityEnvelope, lim: LimitData) -> AllocationResult:
        """Allocate controllable load within the envelopes and the feeder limits."""
        self.households.push(self.lp, envelopes)
        self.limits.push(self.lp, lim.rhs_kw, lim.inflexible_kw, lim.sunk_peak_kw)
        stats = _solve_lazy(self.lp, self.limits, lambda: self.households.read(self.lp))
        if not stats.ok:
            return AllocationResult(stats, None, None, None, float("nan"))
        x = self.households.read(self.lp)
        over, total, peak = self.limits.read(self.lp)
        return AllocationResult(stats, x, over, total, peak)


class HemsPlanning:
    """Every signed household's HEMS planning its devices inside its band (envelope mode).

    Rows per household ``h`` with devices and period ``j``:
    ``flex_h[j] - excess[h, j] <= band_flex[h, j]``, with ``excess >= 0`` penalised
    (``Weights.band_excess_kwh``): the band binds unless a service level needs more.
    """

    def __init__(
        self, dev: DeviceSet, horizon: Horizon, weights: Weights, options: SolverOptions
    ) -> None:
        t0 = time.perf_counter()
        n_per = horizon.n_periods
        dt = horizon.dt_h
        m = pyo.ConcreteModel(name="hems_planning")
        m.devices = pyo.Block()
        self.devices = DeviceBlock(m.devices, dev, horizon, weights)
        flex = np.flatnonzero(self.devices.has_flex())
        self.flex = flex
        m.FJ = pyo.Set(initialize=[(f, j) for f in range(len(flex)) for j in range(n_per)], dimen=2)
        m.excess = pyo.Var(m.FJ, bounds=(0.0, None))
        m.band_rhs = pyo.Param(m.FJ, mutable=True, initialize=1e3)
        terms = self.devices.household_terms
        m.band = pyo.Constraint(
            m.FJ,
            rule=lambda m, f, j: (
                pyo.quicksum(c * v for c, v in terms(int(flex[f]), j)) - m.excess[f, j]
                <= m.band_rhs[f, j]
            ),
        )
        excess = pyo.quicksum(
            [
                weights.band_excess_kwh * float(dt[j]) * m.excess[f, j]
                for f in range(len(flex))
                for j in range(n_per)
            ],
        )
        m.objective = pyo.Objective(expr=self.devices.objective + excess, sense=pyo.minimize)
        self.build_s = time.perf_counter() - t0
        self.lp = PersistentLP(m, options)
        self.devices.bind(self.lp)
        fj = [(f, j) for f in range(len(flex)) for j in range(n_per)]
        self.lp.bind(m.band_rhs, fj, "row_ub", con=m.band)
        self._excess_cols = self.lp.cols(m.excess, fj).reshape(len(flex), n_per)
        self.model = m
        self.n = dev.n

    def plan(
        self, inp: DeviceInputs, band_flex_kw: np.ndarray
    ) -> tuple[SolveStats, DevicePlan | None, np.ndarray | None]:
        """Plan the devices with ``band_flex_kw`` ``(n, N)`` controllable load allowed.

        Returns ``(stats, plan, excess_kw (n, N))``; plan and excess are None on failure.
        """
        self.devices.push(self.lp, inp)
        self.lp.push(self.model.band_rhs, band_flex_kw[self.flex])
        stats = _solve(self.lp)
        if not stats.ok:
            return stats, None, None
        excess = np.zeros_like(band_flex_kw)
        excess[self.flex] = self.lp.values(self._excess_cols)
        return stats, self.devices.read(self.lp), excess


def branch_groups(coef: np.ndarray, max_households: int) -> list[np.ndarray]:
    """Households in groups of at most ``max_households`` that no local limit row splits.

    A row that reaches every household (the transformer, a voltage row through the station)
    couples all groups and is shared; any other row's households (a cable's downstream
    households: one cable branch or part of one) are kept in one group. The connected
    households are packed into groups first-fit by decreasing size; a part larger than
    ``max_households`` is a group of its own. Groups are sorted by their first household.
    """
    coef = np.asarray(coef, dtype=float)
    n = coef.shape[1]
    parent = np.arange(n)

    def root(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    nz = np.abs(coef) > 1e-12
    for row in nz[nz.sum(axis=1) < n]:
        members = np.flatnonzero(row)
        for h in members[1:].tolist():
            a, b = root(int(members[0])), root(h)
            if a != b:
                parent[b] = a
    roots = np.array([root(h) for h in range(n)])
    parts = sorted((np.flatnonzero(roots == r) for r in np.unique(roots)), key=len, reverse=True)
    bins: list[list[int]] = []
    for part in parts:
        for b in bins:
            if len(b) + len(part) <= max_households:
                b.extend(part.tolist())
                break
        else:
            bins.append(part.tolist())
    return sorted((np.array(sorted(b), dtype=np.int64) for b in bins), key=lambda g: g[0])


class _GroupLPs:
    """The group LPs' sizes and times, read like one :class:`PersistentLP`'s."""

    def __init__(self, lps: list[PersistentLP]) -> None:
        self.lps = lps

    def __getattr__(self, name: str) -> Any:
        if name in ("n_cols", "n_rows", "n_nonzeros", "set_instance_s", "push_s", "readback_s"):
            return sum(getattr(lp, name) for lp in self.lps)
        raise AttributeError(name)


class _GroupLimits:
    """Which limit rows any group's LP has handed to the solver (``active``, per row)."""

    def __init__(self, groups: list[tuple[np.ndarray, CentralAllocation]], n_rows: int):
        self.groups, self.n_rows = groups, n_rows

    @property
    def active(self) -> np.ndarray:
        out = np.zeros(self.n_rows, bool)
        for rows, alloc in self.groups:
            out[rows] |= alloc.limits.active
        return out


class GroupedAllocation:
    """The central allocation solved per group of cable branches (block Gauss-Seidel).

    The central LP grows worse than linearly with the households (HiGHS's time per re-plan
    about as households^1.8 on urban6 replicated up to 408 households,
    ``benchmarks/bench_scaling.py``). Its households are coupled only by the limit rows and
    the peak; a cable row couples the households downstream of that cable, the transformer
    row, the voltage rows and the peak all of them. :func:`branch_groups` splits the
    households into groups of whole cable branches (at most ``max_households``), and each
    group gets a :class:`CentralAllocation` of its own (the same device model, service
    levels as bounds, the same weights; built once, re-solved warm):

    1. every group plans against its share of every shared row (the row's limit times the
       group's share of the row's coefficients; the inflexible load and the sunk peak times
       its share of the households), rows of its own in full;
    2. with ``sweeps`` > 0 (``contract.group_sweeps``), then, group after group, each plans
       again against the limit minus what the other groups' latest plans put on each row,
       and the peak with the other groups' planned load added to the inflexible load
       (``sweeps`` such passes).

    Pass 1 alone (the default) costs one solve per group and re-plan, each warm from the
    group's last basis; the shares of a shared row add up to its limit, so the groups'
    plans together keep it. On urban6 replicated to 408 households (winter week, groups of
    at most 64) it plans a 0.8 % higher coincident peak than the one LP for 0.3-0.6x its
    HiGHS time; a sweep takes the peak to +0.3 % for 1.7x the HiGHS time of pass 1 alone
    (a group's LP then alternates between two right-hand sides, so its warm start helps less).

    Each group's own rows, its service levels and its devices' physics hold exactly as in
    the central LP; after a sweep the shared rows hold as the last sweep leaves them (the
    last group sees every other's final plan). The coincident peak is that of a split (and
    block-coordinate descent), not the joint optimum: the price of a cost per household
    that does not grow with the feeder. A feeder with at most ``max_households`` signed
    households is one group: exactly :class:`CentralAllocation`.
    """

    def __init__(
        self,
        dev: DeviceSet,
        horizon: Horizon,
        limits: FeederLimits,
        weights: Weights,
        options: SolverOptions,
        max_households: int,
        sweeps: int = 0,
    ) -> None:
        from twin.optim.subsets import Subset

        t0 = time.perf_counter()
        self.dev, self.coef, self.sign = dev, np.asarray(limits.coef, float), limits.sign
        self.sweeps = int(sweeps)
        self.groups: list[tuple[Subset, np.ndarray, CentralAllocation]] = []
        nz = np.abs(self.coef) > 1e-12
        for g in branch_groups(self.coef, max_households):
            rows = np.flatnonzero(nz[:, g].any(axis=1) | np.all(np.isclose(self.coef, 1.0), axis=1))
            sub = Subset(dev, g)
            lim_g = FeederLimits(
                self.coef[np.ix_(rows, g)],
                np.asarray(limits.sign)[rows],
                tuple(limits.names[r] for r in rows),
                None if limits.lazy is None else np.asarray(limits.lazy)[rows],
            )
            self.groups.append(
                (sub, rows, CentralAllocation(sub.devices(), horizon, lim_g, weights, options))
            )
        self.lp = _GroupLPs([a.lp for _, _, a in self.groups])
        self.limits = _GroupLimits([(rows, a) for _, rows, a in self.groups], len(self.coef))
        self.build_s = sum(a.build_s for _, _, a in self.groups)
        self.setup_s = time.perf_counter() - t0

    def solve(self, inp: DeviceInputs, lim: LimitData) -> AllocationResult:
        from twin.optim.subsets import merge_plans

        n, n_per = self.dev.n, lim.rhs_kw.shape[1]
        flex = np.zeros((n, n_per))
        signed = self.sign[:, None] * self.coef  # (R, n)
        total = SolveStats(True, "optimal", 0.0, 0.0, 0.0, 0)
        results: list[AllocationResult | None] = [None] * len(self.groups)
        inputs = [sub.inputs(inp) for sub, _, _ in self.groups]
        abs_coef = np.abs(self.coef).sum(axis=1)
        for sweep in range(self.sweeps + 1):
            for i, (sub, rows, alloc) in enumerate(self.groups):
                g = sub.pos
                if sweep == 0:
                    share_r = np.abs(self.coef[np.ix_(rows, g)]).sum(axis=1) / np.maximum(
                        abs_coef[rows], 1e-12
                    )
                    share = len(g) / n
                    lim_g = LimitData(
                        lim.rhs_kw[rows] * share_r[:, None],
                        lim.inflexible_kw * share,
                        lim.sunk_peak_kw * share,
                    )
                else:
                    others = flex.copy()
                    others[g] = 0.0
                    lim_g = LimitData(
                        lim.rhs_kw[rows] - signed[rows] @ others,
                        lim.inflexible_kw + others.sum(axis=0),
                        lim.sunk_peak_kw,
                    )
                res = alloc.solve(inputs[i], lim_g)
                s = res.stats
                total.highs_s += s.highs_s
                total.solve_wall_s += s.solve_wall_s
                total.iterations += s.iterations
                if not s.ok:
                    total.ok, total.status = False, f"group {i}: {s.status}"
                    return AllocationResult(total, None, None, None, float("nan"))
                total.objective = (total.objective if i else 0.0) + s.objective  # last sweep
                flex[g] = res.flex_kw
                results[i] = res
        plan = merge_plans(
            self.dev, [(sub, r.plan) for (sub, _, _), r in zip(self.groups, results, strict=True)]
        )
        tot = flex.sum(axis=0)
        over = np.maximum(signed @ flex - lim.rhs_kw, 0.0)
        peak = max(float((tot + lim.inflexible_kw).max(initial=0.0)), lim.sunk_peak_kw)
        return AllocationResult(total, flex, over, tot, peak, plan)
