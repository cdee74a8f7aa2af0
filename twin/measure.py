"""The measurement layer: what the DSO's and the households' meters have recorded so far.

The simulation holds the truth; a contract reads the *past* only through :class:`Meters`
(the transformer's meter, each connection's smart meter), never the simulation's logs. Every
read is checked against the simulation clock: a step that has not been simulated yet cannot be
read (the future is the forecaster's business, :mod:`twin.forecast`).

Today the meters are ideal (exact 15-minute means, no delay, no gaps); noise, delay, missing
values and aggregation are the next milestone's state-estimation issue, and they change this
module only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Clock", "Meters"]


class Clock:
    """The simulation's current step: steps ``0 .. now - 1`` have been simulated."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0


class Meters:
    """Ideal 15-minute meters over the simulated steps.

    Parameters
    ----------
    clock : Clock
        The simulation clock (reads beyond ``clock.now`` are refused).
    p_net_kw : np.ndarray
        ``(T, H)`` each household's net import as the simulation records it (read-only use).
    p_other_kw : np.ndarray
        ``(T, n_other)`` the feeder's other (non-household) loads.
    """

    __slots__ = ("_clock", "_p_base", "_p_net", "_p_other", "_p_pv", "_q_heat")

    def __init__(
        self,
        clock: Clock,
        p_net_kw: np.ndarray,
        p_other_kw: np.ndarray,
        p_base_kw: np.ndarray | None = None,
        p_pv_kw: np.ndarray | None = None,
        q_heat_kw: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self._clock = clock
        self._q_heat = q_heat_kw
        self._p_net = p_net_kw
        self._p_other = p_other_kw
        self._p_base = p_base_kw
        self._p_pv = p_pv_kw

    def _check(self, k_start: int, k_end: int) -> None:
        if not 0 <= k_start <= k_end <= self._clock.now:
            raise RuntimeError(
                f"meters read steps {k_start}..{k_end - 1}, but only steps before "
                f"{self._clock.now} have been measured"
            )

    def transformer_kw(self, k_start: int, k_end: int) -> np.ndarray:
        """``(k_end - k_start,)`` the station's metered active load (all loads), kW."""
        self._check(k_start, k_end)
        p = self._p_net[k_start:k_end].sum(axis=1)
        return p + self._p_other[k_start:k_end].sum(axis=1)

    def inflexible_kw(self, k_start: int, k_end: int) -> np.ndarray:
        """``(k_end - k_start,)`` the feeder's inflexible load (households' base load minus PV
        and the other loads), kW. Assumption: the households' controllable devices are
        sub-metered (a HEMS under a contract reports what its devices drew), so the DSO can
        tell the inflexible part of the measured load apart."""
        self._check(k_start, k_end)
        p = self._p_base[k_start:k_end].sum(axis=1) - self._p_pv[k_start:k_end].sum(axis=1)
        return p + self._p_other[k_start:k_end].sum(axis=1)

    def heat_kw(self, k_start: int, k_end: int, households: np.ndarray) -> np.ndarray:
        """``(k_end - k_start, n)`` heat each home's heating delivered (heat pump and a
        hybrid's boiler, kW): every heat pump reports its heat output to its HEMS."""
        self._check(k_start, k_end)
        q_hp, q_boiler = self._q_heat
        return q_hp[k_start:k_end, households] + q_boiler[k_start:k_end, households]

    def household_kw(
        self, k_start: int, k_end: int, households: np.ndarray | None = None
    ) -> np.ndarray:
        """``(k_end - k_start, n)`` smart-meter readings (net import, kW) of ``households``."""
        self._check(k_start, k_end)
        rows = self._p_net[k_start:k_end]
        return rows if households is None else rows[:, households]
