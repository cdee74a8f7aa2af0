"""The performance contract's terms and the DSO's planning settings
(``twin/configs/contract/performance.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from twin.contracts.hems import PlanningTerms, _bad
from twin.optim.horizon import Horizon
from twin.timegrid import STEPS_PER_DAY
from twin.view import INFORMATION_MODES

__all__ = ["PerformanceTerms"]


@dataclass(frozen=True, kw_only=True)
class PerformanceTerms(PlanningTerms):
    """Terms of the performance contract (see :class:`~twin.contracts.hems.PlanningTerms` for
    the service levels and the planning cadence).

    Attributes
    ----------
    discount_eur_per_year : float
        Grid-fee discount per signed household.
    safety_margin : float
        Share of every feeder limit kept free.
    information : str
        ``central`` (the DSO sees device models) or ``envelope`` (flexibility envelopes only).
    share_signed : float
        Share of households that signed (the rest stay firm).
    envelope_margin_k, battery_reserve_cycles, envelope_rounds
        Envelope mode: heat-pump energy bounds for a narrower band, battery energy kept back,
        allocation rounds with counter-proposals.
    group_households, group_above : int or None, int
        Central mode: with more than ``group_above`` (and than ``group_households``) signed
        households the DSO's LP is solved per group of whole cable branches of at most
        ``group_households`` (:class:`twin.optim.allocation.GroupedAllocation`); None: one
        LP.
    group_sweeps : int
        Grouped LP: passes in which each group plans against the others' latest plans
        after the first, in which each plans against its share of the feeder (0: that
        one only).
    cables, voltages : bool
        Cable and bus-voltage rows from the linear feeder model.
    limit_kva : float or None
        Override of the station rating.
    margin_policy : str
        How the DSO plans around forecast error (:mod:`twin.contracts.performance.margins`):
        ``p50`` (the median forecast), ``p10`` (the load exceeded with 10 % probability, i.e.
        the 90th percentile: the E.DSO paper's recommendation), ``fixed`` (p50 plus
        ``margin_fixed_share`` of each limit) or ``dynamic`` (p50 plus the
        ``margin_dynamic_quantile`` of the forecast errors of the last
        ``margin_dynamic_days``).
    flex_price_eur_per_kwh : float
        What activated flexibility costs (the financial risk in €).
    coarse_after_h, coarse_h : float or None
        Periods grow with lead: from ``coarse_after_h`` ahead (never before the next
        re-plan) the plan's periods are ``coarse_h`` long; that part is re-planned before it
        is carried out. With daily re-plans and a 24 h horizon nothing changes; ``None``
        (either): ``resolution_h`` throughout.
    sunk_peak_sigmas : float
        The peak already reached counts only as far as the DSO is sure of it: the measured
        feeder load less this many of its standard deviations.
    replan_trigger : str
        ``always``: re-plan at every ``replan_every_h`` step; ``deviation``: an intraday
        re-plan only when reality left the plan since the last one — the metered feeder
        load above what the plan expected (its forecast, margin and planned devices) by more
        than ``replan_tolerance_kw``, a cable the DSO's state estimate puts above its
        rating less the safety margin, or a signed household's indoor temperature or EV/battery
        energy short of its plan by more than ``replan_tolerance_k`` /
        ``replan_tolerance_kwh`` (the HEMS asks, nothing of its state is sent), for at least
        ``replan_min_households`` signed households (1: any of them) and, with
        ``replan_tight_share``, only while the plan is tight: the feeder load it expects
        (forecast with its margin, plus the planned devices) reaches that share of the level
        the bands fill up to (the planned peak, at least the sunk peak) at some step of its
        fine part still ahead. Below it every band holds a share of the free capacity, which
        absorbs a household's deviation (None: always). The day-ahead
        re-plan at ``replan_at_h``, the first, the one after a failure and one the plan would
        not last until the next are always made.
    replan_coarse : str
        A plan that reaches its coarse part (``coarse_after_h``, reason ``coarse part``):
        ``always`` re-planned before any of it is carried out; ``tight`` only while the plan
        is tight over the next ``coarse_h`` hours (its expected feeder load reaches
        ``replan_tight_share`` of its band level; without that share: always). Otherwise
        the HEMSs carry the coarse period out (its devices' mean power, inside its bands,
        with their guards) and the feeder's own checks go on every re-plan step (load, cable
        estimate); the households' states are not compared there (a plan that is not tight
        absorbs their deviations: the household trigger above would not fire either).
    """

    discount_eur_per_year: float = 100.0
    safety_margin: float = 0.1
    information: str = "central"
    share_signed: float = 1.0
    envelope_margin_k: float = 0.3
    battery_reserve_cycles: float = 1.0
    envelope_rounds: int = 3
    cables: bool = True
    voltages: bool = True
    limit_kva: float | None = None
    margin_policy: str = "p10"
    margin_fixed_share: float = 0.1
    margin_dynamic_quantile: float = 0.9
    margin_dynamic_days: int = 7
    flex_price_eur_per_kwh: float = 0.1
    coarse_after_h: float | None = None
    coarse_h: float | None = None
    replan_trigger: str = "always"
    replan_tolerance_kw: float = 10.0
    replan_tolerance_k: float = 0.2
    replan_tolerance_kwh: float = 1.0
    replan_min_households: int = 1
    replan_tight_share: float | None = None
    replan_coarse: str = "always"
    sunk_peak_sigmas: float = 3.0
    group_households: int | None = None
    group_above: int = 0
    group_sweeps: int = 0

    def __post_init__(self) -> None:
        if self.group_households is not None and self.group_households < 1:
            raise _bad("group_households", self.group_households, "give 1 or more, or null")
        if self.group_above < 0:
            raise _bad("group_above", self.group_above, "give 0 or more")
        if self.group_sweeps < 0:
            raise _bad("group_sweeps", self.group_sweeps, "give 0 or more")
        if self.replan_coarse not in ("always", "tight"):
            raise _bad("replan_coarse", self.replan_coarse, "use always or tight")
        if self.replan_trigger not in ("always", "deviation"):
            raise _bad("replan_trigger", self.replan_trigger, "use always or deviation")
        for key in ("replan_tolerance_kw", "replan_tolerance_k", "replan_tolerance_kwh"):
            if not getattr(self, key) >= 0:
                raise _bad(key, getattr(self, key), "give a tolerance of 0 or more")
        if not self.sunk_peak_sigmas >= 0:
            raise _bad("sunk_peak_sigmas", self.sunk_peak_sigmas, "give 0 or more")
        if self.replan_min_households < 1:
            raise _bad("replan_min_households", self.replan_min_households, "give 1 or more")
        if self.replan_tight_share is not None and not 0 <= self.replan_tight_share <= 1:
            raise _bad("replan_tight_share", self.replan_tight_share, "give 0 to 1, or null")
        if self.coarse_h is not None and (
            self.coarse_h <= 0 or abs(self.coarse_h * 4 - round(self.coarse_h * 4)) > 1e-9
        ):
            raise _bad("coarse_h", self.coarse_h, "give a whole number of 15-minute steps (h)")
        if self.coarse_after_h is not None and self.coarse_after_h < 0:
            raise _bad("coarse_after_h", self.coarse_after_h, "give hours ahead, 0 or more")
        if self.information not in INFORMATION_MODES:
            raise _bad("information", self.information, "use central or envelope")
        if not 0.0 <= self.share_signed <= 1.0:
            raise _bad("share_signed", self.share_signed, "give a share from 0 to 1")
        if not 0.0 <= self.safety_margin < 1.0:
            raise _bad("safety_margin", self.safety_margin, "give a share from 0 to below 1")
        if self.margin_policy not in ("p50", "p10", "fixed", "dynamic"):
            raise _bad("margin_policy", self.margin_policy, "use p50, p10, fixed or dynamic")
        if self.limit_kva is not None and not self.limit_kva > 0:
            raise _bad("limit_kva", self.limit_kva, "give a positive rating in kVA, or null")
        super().__post_init__()
        if self.replan_at_h > self.horizon_h:
            raise _bad(
                "replan_at_h", self.replan_at_h, "give an hour of the day within the horizon"
            )

    @property
    def coarse_from_h(self) -> float | None:
        """Lead (h) from which the plan's periods are ``coarse_h`` long (None: nowhere)."""
        if self.coarse_after_h is None or self.coarse_h is None:
            return None
        if self.coarse_h <= self.resolution_h:
            return None
        start = max(self.coarse_after_h, self.replan_every_h, self.fine_h)
        return start if start < self.horizon_h else None

    def horizon(self) -> Horizon:
        """The plan's periods: ``fine_h`` of 15 minutes, ``resolution_h`` periods, and from
        :attr:`coarse_from_h` on ``coarse_h`` periods."""
        start = self.coarse_from_h
        if start is None:
            return super().horizon()
        return Horizon.from_segments(
            [
                (self.fine_h, 0.25),
                (start - self.fine_h, self.resolution_h),
                (self.horizon_h - start, self.coarse_h),
            ]
        )

    def is_day_ahead_step(self, k: int) -> bool:
        """The day-ahead re-plan: ``replan_at_h`` o'clock."""
        return (k - self.offset_steps) % STEPS_PER_DAY == 0
