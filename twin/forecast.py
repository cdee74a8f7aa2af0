"""What the DSO (and a household's HEMS) know about the future: the forecast component.

The DSO plans on forecasts and is judged on reality: every DSO-side decision reads the future
only through a :class:`Forecaster` (never ``model.exo`` directly). Today there is one
implementation, :class:`PerfectForecaster` (perfect foresight: the forecast is what will
happen); a noisy or statistical forecaster (p50/p10 quantiles, persistence) replaces it
without touching the optimiser.

What a forecaster supplies, for a horizon of ``n`` steps from step ``k0``:

* :meth:`Forecaster.exogenous` — weather (outdoor temperature, irradiance), the households'
  base load, PV, gains and heat pump COP, and the households' declared EV plans (home mask and
  trip energy; a HEMS knows its car's plans, and in central mode the DSO receives them);
* :meth:`Forecaster.other_loads` — the feeder's non-household loads;
* :meth:`Forecaster.firm_load_kw` — the net load of households that did not sign (they
  behave as under a firm connection);
* :meth:`Forecaster.measured_feeder_kw` — the past: the transformer's metered load.

Horizons that run past the end of the simulated window repeat its last day (a plan's
look-ahead, never carried out).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.devices.ev import TripSchedule
from twin.devices.household import Controls, Exogenous, HouseholdState, step_households
from twin.devices.thermal import heat_to_reach
from twin.timegrid import STEPS_PER_DAY

if TYPE_CHECKING:
    from twin.model import FeederModel

__all__ = ["Forecaster", "PerfectForecaster", "horizon_index"]


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


def _slice_exogenous(exo: Exogenous, rows: np.ndarray, cols: np.ndarray) -> Exogenous:
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

    @abstractmethod
    def measured_feeder_kw(self, k_end: int, k_start: int = 0) -> np.ndarray:
        """``(k_end - k_start,)`` metered transformer load (all loads, kW) of steps
        ``k_start .. k_end - 1``."""


class PerfectForecaster(Forecaster):
    """Perfect foresight: forecasts are read from the simulation's own inputs.

    This class is the one place on the DSO's side allowed to read ``model.exo`` and the
    households' true state (for the firm-behaviour forecast of households that did not sign).

    Parameters
    ----------
    model : FeederModel
        The simulation.
    other_p_kw, other_q_kvar : np.ndarray, optional
        ``(T, n_other)`` non-household loads over the simulated steps; by default the
        aggregated ``model.inputs.p_other_kw`` (one column, no reactive power).
    """

    def __init__(
        self,
        model: FeederModel,
        other_p_kw: np.ndarray | None = None,
        other_q_kvar: np.ndarray | None = None,
    ) -> None:
        self._model = model
        t = model.n_steps
        if other_p_kw is None:
            agg = getattr(model.inputs, "p_other_kw", None)
            other_p_kw = (
                np.zeros((t, 0)) if agg is None else np.asarray(agg, dtype=float).reshape(t, 1)
            )
        self._other_p = np.asarray(other_p_kw, dtype=float)
        self._other_q = (
            np.zeros_like(self._other_p) if other_q_kvar is None else np.asarray(other_q_kvar)
        )

    def exogenous(self, k0: int, n: int, households: np.ndarray) -> Exogenous:
        rows = horizon_index(k0, n, self._model.n_steps)
        return _slice_exogenous(self._model.exo, rows, np.asarray(households, dtype=np.int64))

    def other_loads(self, k0: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        rows = horizon_index(k0, n, self._model.n_steps)
        return self._other_p[rows], self._other_q[rows]

    def firm_load_kw(self, k0: int, n: int, households: np.ndarray) -> np.ndarray:
        h = np.asarray(households, dtype=np.int64)
        if len(h) == 0:
            return np.zeros((n, 0))
        m = self._model
        fleet = m.fleet.subset(h)
        s = m.state
        state = HouseholdState(s.t_in_c[h].copy(), s.ev_soc_kwh[h].copy(), s.bat_soc_kwh[h].copy())
        exo = self.exogenous(k0, n, h)
        return simulate_firm(fleet, state, exo)

    def measured_feeder_kw(self, k_end: int, k_start: int = 0) -> np.ndarray:
        m = self._model
        p = m.log["p_net_kw"][k_start:k_end].sum(axis=1)
        return p + self._other_p[k_start:k_end].sum(axis=1)


def simulate_firm(fleet: Any, state: HouseholdState, exo: Exogenous) -> np.ndarray:
    """Net load ``(T, n)`` of households behaving as under a firm connection (advances
    ``state``): thermostat to the setpoint, EV at full power when home, battery
    self-consumption (:class:`twin.contracts.firm.FirmContract`)."""
    out = np.empty((exo.n_steps, fleet.n))
    for k in range(exo.n_steps):
        q = heat_to_reach(
            fleet.setpoint_c,
            state.t_in_c,
            exo.t_out_c[k],
            exo.q_gain_kw[k],
            fleet.r_k_per_kw,
            fleet.a_step,
        )
        res = step_households(
            fleet, state, exo, k, Controls(q_heat_kw=q, p_ev_kw=fleet.ev_p_max_kw)
        )
        out[k] = res.p_net_kw
    return out
