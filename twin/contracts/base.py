"""The interface every contract kind implements.

A contract has two halves, matching who decides what:

* :meth:`Contract.dso_step` — the DSO's decision for the coming interval(s), e.g. capacity
  bands per household (nothing under a firm connection);
* :meth:`Contract.dispatch` — every household HEMS's device requests for this interval,
  vectorised over the households (the physics then applies device limits).

A contract is given a :class:`~twin.view.FeederView` once (:meth:`Contract.setup`) and reads
the run only through it: the DSO half through ``view.dso(information)``, the HEMS half
through ``view.households``. Scoring (:meth:`Contract.kpis`) gets the simulated result.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from twin.devices.household import Controls
from twin.view import FeederView, Outcome

__all__ = ["Contract"]


class Contract(ABC):
    name: str = "abstract"
    view: FeederView

    @classmethod
    def from_config(cls, cfg: Any) -> Contract:
        return cls()

    def setup(self, view: FeederView) -> None:
        """Called once, before the first step, with what the contract may read."""
        self.view = view

    def dso_step(self, k: int) -> None:  # noqa: B027 - optional hook
        """The DSO's decision at step ``k``."""

    @abstractmethod
    def dispatch(self, k: int) -> Controls:
        """Every household's device requests at step ``k``."""

    def discount_eur_per_year(self) -> float | np.ndarray:
        """The grid-tariff discount each household gets for signing (0 without one)."""
        return 0.0

    def timeseries(self) -> dict[str, np.ndarray]:
        """Contract-specific (simulated steps × households) arrays for the results' time series,
        e.g. the DSO's capacity bands; NaN where a household has none."""
        return {}

    def household_table(self) -> dict[str, np.ndarray]:
        """Contract-specific ``(H,)`` columns for the per-household results (e.g. who signed)."""
        return {}

    def feeder_timeseries(self) -> dict[str, np.ndarray]:
        """Contract-specific ``(simulated steps,)`` series of the DSO's decisions (e.g. the
        intervals a DSO declared congested) for the per-step feeder results."""
        return {}

    def kpis(self, outcome: Outcome) -> dict[str, Any]:
        """Contract-specific KPIs measured on the simulated result."""
        return {}
