"""What a contract may read: the feeder *view* (principle 4, "the DSO only sees what it would
see").

The simulation (:class:`twin.model.FeederModel`) holds the truth: device states, exact loads,
the future weather. A contract never receives the model. It receives a :class:`FeederView`
with two faces:

* :class:`HouseholdView` — what the households' HEMSs read: each household's own devices and
  state (a HEMS measures its own house), the present step as its sensors see it
  (:meth:`HouseholdView.present`, the current step only), its own smart meter's past, and its
  forecasts of the future;
* :class:`DsoView` — what the DSO reads: the network model and the station rating, the
  connections' registered nameplate ratings, its forecasts (:mod:`twin.forecast`, learned
  from what its meters delivered), the measured present and past as the run's measurement
  preset delivers them (:class:`twin.measure.DsoMeters`: sensor noise, lost and late
  readings, aggregation, pseudo-measurements), and, **in central mode only**, the signed households' declared
  device models and state (:meth:`DsoView.declared`; the upper bound). In envelope mode the
  DSO learns about households only from the envelopes their HEMSs send.

The truth beyond that is reachable only through the forecaster (the future) and the meters
(the past); ``tests/test_view.py`` shows that an envelope-mode DSO cannot reach indoor
temperatures or states of charge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.devices.ev import TripSchedule
from twin.devices.household import Exogenous, HouseholdState
from twin.fleet import Fleet
from twin.forecast import Forecaster
from twin.measure import Clock, DsoMeters, Meters
from twin.tariffs import Tariff
from twin.timegrid import TimeWindow

__all__ = [
    "INFORMATION_MODES",
    "Declared",
    "Outcome",
    "DsoView",
    "FeederView",
    "HouseholdView",
    "Present",
    "Registered",
]

#: What the DSO may see of the households that signed: everything (central) or envelopes.
INFORMATION_MODES = ("central", "envelope")


@dataclass(frozen=True)
class Present:
    """One step as the households' own sensors see it (arrays over all households)."""

    k: int
    t_out_c: float
    q_gain_kw: np.ndarray
    cop: np.ndarray
    p_base_kw: np.ndarray
    p_pv_kw: np.ndarray
    home: np.ndarray
    trip_kwh: np.ndarray


class HouseholdView:
    """What the households' HEMSs may read (see the module docstring)."""

    __slots__ = ("_clock", "_exo", "_state", "devices", "forecaster", "meters")

    def __init__(
        self,
        devices: Fleet,
        state: HouseholdState,
        exo: Exogenous,
        clock: Clock,
        meters: Meters,
        forecaster: Forecaster,
    ) -> None:
        self.devices = devices
        self._state = state
        self._exo = exo
        self._clock = clock
        self.meters = meters
        self.forecaster = forecaster

    @property
    def state(self) -> HouseholdState:
        """The households' current device state (each HEMS reads its own house)."""
        return self._state

    def present(self, k: int) -> Present:
        """Step ``k`` as the households' sensors see it; only the step being decided."""
        if k != self._clock.now:
            raise RuntimeError(f"the present is step {self._clock.now}, not {k}")
        x = self._exo
        return Present(
            k=k,
            t_out_c=x.t_out_c[k],
            q_gain_kw=x.q_gain_kw[k],
            cop=x.cop[k],
            p_base_kw=x.p_base_kw[k],
            p_pv_kw=x.p_pv_kw[k],
            home=x.trips.home[k],
            trip_kwh=x.trips.trip_kwh[k],
        )

    def metered_net_kw(
        self, k_start: int, k_end: int, households: np.ndarray | None = None
    ) -> np.ndarray:
        """Each household's own smart-meter readings (net import, kW) of past steps."""
        return self.meters.household_kw(k_start, k_end, households)

    def metered_heat_kw(self, k_start: int, k_end: int, households: np.ndarray) -> np.ndarray:
        """The heat each home's heating delivered in past steps (its heat pump reports it)."""
        return self.meters.heat_kw(k_start, k_end, households)


@dataclass(frozen=True)
class Registered:
    """What a DSO knows of every connection from registration: nameplate ratings (kW; 0
    where there is no device, or one the register does not know of:
    :func:`twin.population.draw_unregistered`)."""

    hp_q_max_kw: np.ndarray  # heat pump thermal capacity (0: none)
    ev_p_max_kw: np.ndarray  # charger power (0: no EV)
    bat_p_max_kw: np.ndarray  # home battery inverter power (0: none)
    # {part: (H, 3)} share of each part's power on phases a, b, c (twin.fleet.PHASE_DEVICES):
    # the connection type and the phases of PV and chargers are registered with the DSO
    phase_shares: dict[str, np.ndarray] | None = None
    pv_kwp: np.ndarray | None = None  # PV peak power (0: none)

    @classmethod
    def of(cls, fleet: Fleet, unregistered: dict[str, np.ndarray] | None = None) -> Registered:
        u = unregistered or {}
        none = np.zeros(fleet.n, bool)
        return cls(
            np.where(u.get("heat_pump", none), 0.0, fleet.hp_q_max_kw),
            np.where(u.get("ev", none), 0.0, fleet.ev_p_max_kw),
            fleet.bat_p_max_kw.copy(),
            fleet.phase_shares() if fleet.has_phases else None,
            np.where(u.get("pv", none), 0.0, fleet.pv_kwp),
        )


@dataclass(frozen=True)
class Declared:
    """Central mode: the households' device models and their current state."""

    devices: Fleet
    state: HouseholdState


class DsoView:
    """What the DSO may read (see the module docstring).

    Attributes
    ----------
    information : str
        ``"central"`` or ``"envelope"``.
    feeder : Feeder or None
        The network model (:class:`twin.grid.feeders.Feeder`), None without a grid.
    station_rating_kva : float
        The transformer station's rating (:mod:`twin.grid.ratings`).
    hh_cols, other_cols : np.ndarray
        Load columns (``net.load`` order) of the households and of the other loads.
    registered : Registered
        Nameplate ratings of every household's devices.
    forecaster : Forecaster
        The future (the DSO's own: learned from what its meters delivered).
    meters : DsoMeters
        The measured present and past, as the run's measurement preset delivers them: the
        station load, the inflexible load (:class:`twin.measure.DsoMeters`); never the
        truth.
    n_steps, n_warmup_steps : int
        Simulated steps (warm-up included) and warm-up steps.
    """

    __slots__ = (
        "_declared",
        "feeder",
        "forecaster",
        "hh_cols",
        "information",
        "meters",
        "n_steps",
        "n_warmup_steps",
        "other_cols",
        "registered",
        "station_rating_kva",
    )

    def __init__(
        self,
        information: str,
        feeder: Any,
        station_rating_kva: float,
        hh_cols: np.ndarray,
        other_cols: np.ndarray,
        registered: Registered,
        forecaster: Forecaster,
        meters: DsoMeters,
        n_steps: int,
        n_warmup_steps: int,
        declared: Declared | None = None,
    ) -> None:
        if information not in INFORMATION_MODES:
            raise ValueError(f"information={information!r}: use one of {INFORMATION_MODES}")
        if information == "envelope" and declared is not None:
            raise ValueError("an envelope-mode DSO view carries no declared households")
        self.information = information
        self.feeder = feeder
        self.station_rating_kva = float(station_rating_kva)
        self.hh_cols = hh_cols
        self.other_cols = other_cols
        self.registered = registered
        self.forecaster = forecaster
        self.meters = meters
        self.n_steps = n_steps
        self.n_warmup_steps = n_warmup_steps
        self._declared = declared

    @property
    def n_households(self) -> int:
        return len(self.hh_cols)

    @property
    def n_load(self) -> int:
        return len(self.hh_cols) + len(self.other_cols)

    def declared(self) -> Declared:
        """The households' device models and current state (central mode only)."""
        if self._declared is None:
            raise PermissionError(
                "envelope mode: the DSO learns about households from their envelopes only"
            )
        return self._declared


class FeederView:
    """Everything a contract is given: the two faces and the run's public facts."""

    __slots__ = (
        "_dso",
        "draws",
        "households",
        "n_steps",
        "n_warmup_steps",
        "tariff",
        "window",
    )

    def __init__(
        self,
        households: HouseholdView,
        dso: dict[str, Any],
        window: TimeWindow,
        tariff: Tariff | None,
        draws: np.random.Generator,
    ) -> None:
        self.households = households
        self._dso = dso
        self.window = window
        self.n_steps = window.n_sim_steps
        self.n_warmup_steps = window.n_warmup_steps
        self.tariff = tariff
        self.draws = draws

    @property
    def station_rating_kva(self) -> float:
        return float(self._dso["station_rating_kva"])

    def dso(self, information: str = "envelope") -> DsoView:
        """The DSO's view in an information mode (central: it also sees the households)."""
        declared = None
        if information == "central":
            h = self.households
            declared = Declared(h.devices, h.state)
        return DsoView(
            information,
            n_steps=self.n_steps,
            n_warmup_steps=self.n_warmup_steps,
            declared=declared,
            **self._dso,
        )


@dataclass(frozen=True)
class Outcome:
    """The simulated result a contract's KPIs are scored on (the truth, once the run is over).

    ``log`` and ``trips`` cover every simulated step (warm-up included); ``report`` selects the
    reported ones; ``start_state`` is the device state at the start of the reported window.
    """

    log: dict[str, np.ndarray]
    trips: TripSchedule
    report: slice
    start_state: dict[str, np.ndarray]
    n_warmup_steps: int
    other_kw: np.ndarray | None = None  # (T,) the feeder's other loads together

    @property
    def reported_trips(self) -> TripSchedule:
        t, r = self.trips, self.report
        day0 = self.n_warmup_steps // 96
        return TripSchedule(t.home[r], t.trip_kwh[r], t.departure[r], t.km[day0:])

    def reported(self, name: str) -> np.ndarray:
        return self.log[name][self.report]
