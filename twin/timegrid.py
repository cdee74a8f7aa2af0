"""The simulation calendar: one reference year of 15-minute steps.

Every year-long input (weather, base-load profiles) is an array of ``STEPS_PER_YEAR`` rows that
start on 1 January 00:00 of ``REFERENCE_YEAR`` (a non-leap year). A run simulates a window
``[start, start + days)`` of that year; windows that run past 31 December wrap to January.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.errors import TwinError

DT_H = 0.25
STEPS_PER_HOUR = 4
STEPS_PER_DAY = 96
DAYS_PER_YEAR = 365
STEPS_PER_YEAR = STEPS_PER_DAY * DAYS_PER_YEAR  # 35,040
REFERENCE_YEAR = 2025


@dataclass(frozen=True)
class TimeWindow:
    """The steps of one run, as positions in the reference year.

    The model simulates ``warmup_days`` before ``start`` so that EV and battery states and
    indoor temperatures have settled; those steps are simulated but not reported.
    """

    start: pd.Timestamp
    days: int
    warmup_days: int = 0

    @property
    def n_steps(self) -> int:
        """Reported steps."""
        return self.days * STEPS_PER_DAY

    @property
    def n_warmup_steps(self) -> int:
        return self.warmup_days * STEPS_PER_DAY

    @property
    def n_sim_steps(self) -> int:
        """Simulated steps: warm-up plus reported."""
        return self.n_warmup_steps + self.n_steps

    @property
    def report(self) -> slice:
        """Rows of the simulated arrays that are reported."""
        return slice(self.n_warmup_steps, None)

    @functools.cached_property
    def sim_year_index(self) -> np.ndarray:
        """Row of each simulated step (warm-up included) in the year-long inputs (wraps);
        computed once per window (the forecasters read it at every issue) and read-only."""
        first = (self.start - pd.Timestamp(f"{REFERENCE_YEAR}-01-01")) // pd.Timedelta("15min")
        out = (first - self.n_warmup_steps + np.arange(self.n_sim_steps)) % STEPS_PER_YEAR
        out.flags.writeable = False
        return out

    @property
    def year_index(self) -> np.ndarray:
        """Row of each reported step in the year-long input arrays."""
        return self.sim_year_index[self.report]

    @property
    def times(self) -> pd.DatetimeIndex:
        """Start time of each reported step."""
        return pd.date_range(self.start, periods=self.n_steps, freq="15min")


def make_window(start: str, days: int, warmup_days: int = 0) -> TimeWindow:
    """Parse the configured window; the date's year is ignored (mapped onto the reference year)."""
    try:
        ts = pd.Timestamp(str(start))
    except (ValueError, TypeError):
        raise TwinError(
            f"sim.start={start!r} is not a date: give it as YYYY-MM-DD, e.g. sim.start=2025-12-01"
        ) from None
    if not isinstance(days, int) or not 1 <= days <= DAYS_PER_YEAR:
        raise TwinError(f"sim.days={days!r} is out of range: give a whole number from 1 to 365")
    if ts != ts.normalize():
        raise TwinError(f"sim.start={start!r} must be midnight: give a date only, e.g. 2025-12-01")
    if not isinstance(warmup_days, int) or not 0 <= warmup_days <= 14:
        raise TwinError(
            f"sim.warmup_days={warmup_days!r} is out of range: give a whole number from 0 to 14"
        )
    if ts.month == 2 and ts.day == 29:
        raise TwinError(
            "sim.start=Feb 29 does not exist in the reference year: use Feb 28 or Mar 1"
        )
    return TimeWindow(ts.replace(year=REFERENCE_YEAR), days, warmup_days)
