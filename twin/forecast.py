"""What the DSO (and a household's HEMS) know about the future: the forecast component.

The DSO plans on forecasts and is judged on reality: every decision reads the future only
through a :class:`Forecaster`, never the simulation's inputs. Today there is one
implementation, :class:`PerfectForecaster` (perfect foresight: the forecast is what will
happen, the upper bound); a noisy or statistical forecaster (p50/p10 quantiles) replaces it
without touching the optimiser or the contracts.

What a forecaster supplies, for a horizon of ``n`` steps from step ``k0``:

* :meth:`Forecaster.exogenous` — weather (outdoor temperature, irradiance), the households'
  base load, PV, gains and heat pump COP, and the households' declared EV plans (home mask and
  trip energy; a HEMS knows its car's plans, and in central mode the DSO receives them);
* :meth:`Forecaster.other_loads` — the feeder's non-household loads;
* :meth:`Forecaster.firm_load_kw` — the net load of households that did not sign (they
  behave as under a firm connection);
* :meth:`Forecaster.inflexible_quantiles_kw` — how uncertain the households' inflexible
  load (base load minus PV) is: per household and for the feeder as a whole, the 10th and
  90th percentiles around the point forecast (the margin policies of the performance contract
  plan on them).

Two implementations: :class:`PerfectForecaster` (the true future: the upper bound) and
:class:`StatisticalForecaster` (weather forecasts with an error that grows with lead time,
quantile gradient boosting learned from the feeder's own past, declared EV plans that the
real trips deviate from). Both record what they forecast, so forecast quality is measured
the same way (:meth:`Forecaster.quality`).

The measured past is the measurement layer's (:mod:`twin.measure`). Horizons that run past the
end of the simulated window repeat its last day (a plan's look-ahead, never carried out).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from twin.devices.ev import TripSchedule
from twin.devices.household import Exogenous, HouseholdState, simulate_firm
from twin.fleet import Fleet
from twin.timegrid import STEPS_PER_DAY

__all__ = ["Forecaster", "PerfectForecaster", "horizon_index"]

#: Look-ahead the firm-behaviour forecast is prepared for beyond the window (the longest
#: planning horizon, a week, plus the extra day plans read for trips that end later).
FIRM_LOOKAHEAD_STEPS = 8 * STEPS_PER_DAY


def horizon_index(k0: int, n: int, n_total: int) -> np.ndarray:
    """Rows ``k0 .. k0 + n - 1`` of a window of ``n_total`` steps; past its end, its last day
    again (periodically)."""
    idx = k0 + np.arange(n)
    over = idx >= n_total
    if over.any():
        day = min(STEPS_PER_DAY, n_total)
        last = n_total - day
        idx[over] = last + (idx[over] - n_total) % day
    return idx


def slice_exogenous(exo: Exogenous, rows: np.ndarray, cols: np.ndarray) -> Exogenous:
    """The rows and household columns of ``exo`` (copies)."""
    ix = np.ix_(rows, cols)
    trips = exo.trips
    return Exogenous(
        t_out_c=exo.t_out_c[rows],
        ghi_w_m2=exo.ghi_w_m2[rows],
        p_base_kw=exo.p_base_kw[ix],
        q_base_kvar=exo.q_base_kvar[ix],
        p_pv_kw=exo.p_pv_kw[ix],
        q_gain_kw=exo.q_gain_kw[ix],
        cop=exo.cop[ix],
        trips=TripSchedule(
            home=trips.home[ix],
            trip_kwh=trips.trip_kwh[ix],
            departure=trips.departure[ix],
            km=trips.km[:, cols],
        ),
    )


class Forecaster(ABC):
    """The DSO's (and HEMSs') view of the future; see the module docstring."""

    @abstractmethod
    def exogenous(self, k0: int, n: int, households: np.ndarray) -> Exogenous:
        """Weather, base load, PV, gains, COP and EV plans of ``households`` for ``n`` steps."""

    @abstractmethod
    def other_loads(self, k0: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(p_kw, q_kvar)``, each ``(n, n_other)``: the feeder's non-household loads."""

    @abstractmethod
    def firm_load_kw(self, k0: int, n: int, households: np.ndarray) -> np.ndarray:
        """``(n, len(households))`` net load of ``households`` behaving as under a firm
        connection (thermostat, charge on arrival, self-consumption)."""


class PerfectForecaster(Forecaster):
    """Perfect foresight: forecasts are the simulation's own exogenous inputs.

    This class is the one place on the deciding side that holds the true future. It never
    holds the households' live state: the firm behaviour of households that did not sign is
    simulated once, from their state at the start, when it is first asked for (households
    that did not sign behave as under a firm connection for the whole run).

    Parameters
    ----------
    exo : Exogenous
        The simulation's exogenous inputs over its steps (the truth).
    fleet : Fleet
        The households' devices (for the firm-behaviour forecast).
    state0 : HouseholdState
        The households' state at the first step (copied).
    other_p_kw, other_q_kvar : np.ndarray
        ``(T, n_other)`` the feeder's non-household loads.
    """

    def __init__(
        self,
        exo: Exogenous,
        fleet: Fleet,
        state0: HouseholdState,
        other_p_kw: np.ndarray,
        other_q_kvar: np.ndarray,
    ) -> None:
        self._exo = exo
        self._fleet = fleet
        self._state0 = HouseholdState(
            state0.t_in_c.copy(), state0.ev_soc_kwh.copy(), state0.bat_soc_kwh.copy()
        )
        self._other_p = np.asarray(other_p_kw, dtype=float)
        self._other_q = np.asarray(other_q_kvar, dtype=float)
        self._firm: dict[bytes, np.ndarray] = {}

    @property
    def n_steps(self) -> int:
        return self._exo.n_steps

    def exogenous(self, k0: int, n: int, households: np.ndarray) -> Exogenous:
        rows = horizon_index(k0, n, self.n_steps)
        return slice_exogenous(self._exo, rows, np.asarray(households, dtype=np.int64))

    def other_loads(self, k0: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        rows = horizon_index(k0, n, self.n_steps)
        return self._other_p[rows], self._other_q[rows]

    def firm_load_kw(self, k0: int, n: int, households: np.ndarray) -> np.ndarray:
        h = np.asarray(households, dtype=np.int64)
        if len(h) == 0:
            return np.zeros((n, 0))
        key = h.tobytes()
        if key not in self._firm:
            s = self._state0
            state = HouseholdState(
                s.t_in_c[h].copy(), s.ev_soc_kwh[h].copy(), s.bat_soc_kwh[h].copy()
            )
            self._firm[key] = simulate_firm(
                self._fleet.subset(h),
                state,
                self.exogenous(0, self.n_steps + FIRM_LOOKAHEAD_STEPS, h),
            )
        trajectory = self._firm[key]
        if k0 + n > len(trajectory):
            raise ValueError(f"firm forecast asked for {k0 + n} steps, prepared {len(trajectory)}")
        return trajectory[k0 : k0 + n]
