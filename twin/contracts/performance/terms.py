"""The performance contract's terms and the DSO's planning settings
(``twin/configs/contract/performance.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

from twin.contracts.hems import PlanningTerms, _bad
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

    def __post_init__(self) -> None:
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
