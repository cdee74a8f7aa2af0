"""The periods of one rolling-horizon optimisation.

A horizon is a sequence of periods, each a whole number of 15-minute simulation steps: fine
(15-minute) periods for the part that will be carried out before the next re-plan, coarser ones
(e.g. hourly) for the look-ahead tail that is re-planned anyway. Data given per simulation step
(``(n_steps, ...)`` arrays) are mapped onto periods with :meth:`Horizon.mean`,
:meth:`Horizon.sum` and :meth:`Horizon.all`.

States (indoor temperature, state of charge) live on period boundaries: state ``s`` is the state
at the start of period ``s`` (``s = 0 .. n_periods``); :attr:`Horizon.state_step` gives the
simulation step each state belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from twin.timegrid import DT_H, STEPS_PER_HOUR


@dataclass(frozen=True)
class Horizon:
    """Period lengths of one optimisation horizon, in simulation steps.

    Attributes
    ----------
    steps : np.ndarray
        ``(n_periods,)`` number of 15-minute steps in each period.
    """

    steps: np.ndarray

    @classmethod
    def make(cls, horizon_h: float, fine_h: float, coarse_h: float = 1.0) -> Horizon:
        """``fine_h`` hours of 15-minute periods, then ``coarse_h`` periods up to ``horizon_h``."""
        return cls.from_segments(
            [(min(fine_h, horizon_h), 0.25), (max(horizon_h - fine_h, 0.0), coarse_h)]
        )

    @classmethod
    def from_segments(cls, segments: list[tuple[float, float]]) -> Horizon:
        """Consecutive segments ``(length_h, period_h)``, e.g. ``[(24, 1.0), (12, 2.0)]``.

        Lengths and period lengths must be whole numbers of 15-minute steps; a segment that
        is not a whole number of periods ends with a shorter one.
        """
        steps: list[int] = []
        for length_h, period_h in segments:
            n = int(round(float(length_h) * STEPS_PER_HOUR))
            m = max(int(round(float(period_h) * STEPS_PER_HOUR)), 1)
            steps += [m] * (n // m) + ([n % m] if n % m else [])
        if not steps:
            raise ValueError("a horizon needs at least one period")
        return cls(np.array(steps, dtype=np.int64))

    @cached_property
    def n_periods(self) -> int:
        return len(self.steps)

    @cached_property
    def n_steps(self) -> int:
        """Simulation steps covered."""
        return int(self.steps.sum())

    @cached_property
    def n_fine(self) -> int:
        """Leading 15-minute periods (the part a re-plan can carry out step by step)."""
        coarse = np.flatnonzero(self.steps != 1)
        return int(coarse[0]) if len(coarse) else self.n_periods

    @cached_property
    def start_step(self) -> np.ndarray:
        """``(n_periods,)`` first simulation step of each period (relative to the horizon)."""
        return np.concatenate(([0], np.cumsum(self.steps)[:-1]))

    @cached_property
    def state_step(self) -> np.ndarray:
        """``(n_periods + 1,)`` simulation step of each state (relative to the horizon)."""
        return np.concatenate(([0], np.cumsum(self.steps)))

    @cached_property
    def dt_h(self) -> np.ndarray:
        """``(n_periods,)`` period lengths, hours."""
        return self.steps * DT_H

    @cached_property
    def period_of_step(self) -> np.ndarray:
        """``(n_steps,)`` the period each simulation step of the horizon belongs to."""
        return np.repeat(np.arange(self.n_periods), self.steps)

    def sum(self, x: np.ndarray) -> np.ndarray:
        """Sum of per-step values over each period (axis 0)."""
        return np.add.reduceat(np.asarray(x, dtype=float)[: self.n_steps], self.start_step, axis=0)

    def mean(self, x: np.ndarray) -> np.ndarray:
        """Mean of per-step values over each period (axis 0)."""
        s = self.sum(x)
        return s / self.steps.reshape((-1,) + (1,) * (s.ndim - 1))

    def all(self, mask: np.ndarray) -> np.ndarray:
        """Whether a per-step boolean holds at every step of each period (axis 0)."""
        return np.logical_and.reduceat(
            np.asarray(mask, dtype=bool)[: self.n_steps], self.start_step, axis=0
        )
