"""The service levels' definitions, in one place: where and how the EV promise is checked.

The planner's constraints (:mod:`twin.optim.devices`, :mod:`twin.optim.cost_hems`), the HEMS
guards (:func:`twin.optim.devices.ev_guards`) and the KPIs (:mod:`twin.kpi`) all read the EV
promise from :func:`ev_deadline_states`, so they cannot disagree about when a car owes its
range.

States and steps: over a home mask of ``S + 1`` steps from step ``k0``, *state* ``s``
(``1 .. S``) is the state reached at the end of step ``k0 + s - 1``, i.e. at the start of step
``k0 + s``. The range is due at the deadline (``deadline_step``, the step of the day, e.g. 24
for 06:00) for a car that is home across it (home in the step before and in the step after).
"""

from __future__ import annotations

import numpy as np

from twin.timegrid import STEPS_PER_DAY

__all__ = ["ev_deadline_states"]


def ev_deadline_states(
    home: np.ndarray, k0: int, deadline_step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Where the EV range is due over a home mask ``(S + 1, n)`` starting at step ``k0``.

    Returns
    -------
    states : np.ndarray
        ``(D,)`` the states (``1 .. S``) that fall on a deadline.
    due : np.ndarray
        ``(D, n)`` bool, the car owes its range at that state.
    """
    s = np.arange(1, home.shape[0])
    states = s[(k0 + s) % STEPS_PER_DAY == deadline_step]
    return states, home[states - 1] & home[states]
