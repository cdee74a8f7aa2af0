"""The interface every contract kind implements.

A contract has two halves, matching who decides what:

* :meth:`Contract.dso_step` — the DSO agent's decision for the coming interval(s), e.g.
  capacity bands per household (nothing under a firm connection);
* :meth:`Contract.dispatch` — every household HEMS's device requests for this interval,
  vectorised over the households (the physics then applies device limits).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from twin.devices.household import Controls
    from twin.model import FeederModel


class Contract(ABC):
    name: str = "abstract"

    @classmethod
    def from_config(cls, cfg: Any) -> Contract:
        return cls()

    def setup(self, model: FeederModel) -> None:  # noqa: B027 - optional hook
        """Called once after the model is built (e.g. to build an optimisation model)."""

    def dso_step(self, model: FeederModel, k: int) -> None:  # noqa: B027 - optional hook
        """The DSO's decision at step ``k``."""

    @abstractmethod
    def dispatch(self, model: FeederModel, k: int) -> Controls:
        """Every household's device requests at step ``k``."""

    def discount_eur_per_year(self, model: FeederModel) -> float | np.ndarray:
        """The grid-tariff discount each household gets for signing (0 without one)."""
        return 0.0

    def timeseries(self, model: FeederModel) -> dict[str, np.ndarray]:
        """Contract-specific (simulated steps × households) arrays for the results' time series,
        e.g. the DSO's capacity bands; NaN where a household has none."""
        return {}

    def kpis(self, model: FeederModel) -> dict[str, Any]:
        """Contract-specific KPIs (e.g. solver status); merged into the run's KPIs."""
        return {}
