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

__all__ = ["CentralAllocation", "EnvelopeAllocation", "HemsPlanning", "LimitData"]


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
