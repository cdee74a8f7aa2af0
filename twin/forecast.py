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
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from twin.devices.ev import TripSchedule
from twin.devices.household import Exogenous, HouseholdState, simulate_firm
from twin.errors import TwinError
from twin.fleet import Fleet
from twin.timegrid import DT_H, STEPS_PER_DAY

__all__ = [
    "ISSUE_PHYSICS_MAX_STEPS",
    "QUANTILES",
    "ForecastSettings",
    "Forecaster",
    "PerfectForecaster",
    "StatisticalForecaster",
    "declared_trips",
    "run_declared_trips",
    "horizon_index",
]

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


#: Issues up to this long keep every household's physics (a plan's horizon plus the extra
#: day for trips, and more); a longer request (the whole window at set-up) is computed as asked.
ISSUE_PHYSICS_MAX_STEPS = 8 * STEPS_PER_DAY


def _part(exo: Exogenous, n: int, cols: np.ndarray) -> Exogenous:
    """The first ``n`` steps and the household columns ``cols`` of ``exo`` (copies)."""
    if len(cols) == exo.p_base_kw.shape[1] and _is_all(cols):

        def take(a: np.ndarray) -> np.ndarray:
            return a[:n].copy()

        km = exo.trips.km.copy()
    else:

        def take(a: np.ndarray) -> np.ndarray:
            return a[:n, cols]

        km = exo.trips.km[:, cols]
    t = exo.trips
    return Exogenous(
        t_out_c=exo.t_out_c[:n].copy(),
        ghi_w_m2=exo.ghi_w_m2[:n].copy(),
        p_base_kw=take(exo.p_base_kw),
        q_base_kvar=take(exo.q_base_kvar),
        p_pv_kw=take(exo.p_pv_kw),
        q_gain_kw=take(exo.q_gain_kw),
        cop=take(exo.cop),
        trips=TripSchedule(
            home=take(t.home), trip_kwh=take(t.trip_kwh), departure=take(t.departure), km=km
        ),
        q_dhw_kw=None if exo.q_dhw_kw is None else take(exo.q_dhw_kw),
        price_eur_per_kwh=(
            None if exo.price_eur_per_kwh is None else exo.price_eur_per_kwh[:n].copy()
        ),
    )


def _take(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``a[np.ix_(rows, cols)]`` (a copy), rows first: a few times faster on a year-long
    array (whole rows are gathered, then the columns, all of them at no cost)."""
    out = a[rows]
    return out if len(cols) == a.shape[1] and _is_all(cols) else out[:, cols]


def _is_all(cols: np.ndarray) -> bool:
    """Whether ``cols`` are ``0 .. len(cols) - 1`` in order."""
    return bool(np.array_equal(cols, np.arange(len(cols))))


def _take_trips(trips: TripSchedule, rows: np.ndarray, cols: np.ndarray) -> TripSchedule:
    """The rows and household columns of ``trips`` (copies)."""
    cols = np.asarray(cols, dtype=np.int64)
    return TripSchedule(
        home=_take(trips.home, rows, cols),
        trip_kwh=_take(trips.trip_kwh, rows, cols),
        departure=_take(trips.departure, rows, cols),
        km=trips.km[:, cols],
    )


def slice_exogenous(exo: Exogenous, rows: np.ndarray, cols: np.ndarray) -> Exogenous:
    """The rows and household columns of ``exo`` (copies)."""
    return Exogenous(
        t_out_c=exo.t_out_c[rows],
        ghi_w_m2=exo.ghi_w_m2[rows],
        p_base_kw=_take(exo.p_base_kw, rows, cols),
        q_base_kvar=_take(exo.q_base_kvar, rows, cols),
        p_pv_kw=_take(exo.p_pv_kw, rows, cols),
        q_gain_kw=_take(exo.q_gain_kw, rows, cols),
        cop=_take(exo.cop, rows, cols),
        trips=_take_trips(exo.trips, rows, cols),
        q_dhw_kw=None if exo.q_dhw_kw is None else _take(exo.q_dhw_kw, rows, cols),
        price_eur_per_kwh=None if exo.price_eur_per_kwh is None else exo.price_eur_per_kwh[rows],
    )


class Forecaster(ABC):
    """The DSO's (and HEMSs') view of the future; see the module docstring."""

    @abstractmethod
    def exogenous(self, k0: int, n: int, households: np.ndarray) -> Exogenous:
        """Weather, base load, PV, gains, COP and EV plans of ``households`` for ``n`` steps."""

    def trips(self, k0: int, n: int, households: np.ndarray) -> TripSchedule:
        """The EV plans of ``households`` for ``n`` steps: what :meth:`exogenous` has as its
        ``trips`` (the declared ones, when the real trips deviate), without the rest."""
        return self.exogenous(k0, n, households).trips

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
        self._state0 = state0.copy()
        self._other_p = np.asarray(other_p_kw, dtype=float)
        self._other_q = np.asarray(other_q_kvar, dtype=float)
        self._firm: dict[bytes, np.ndarray] = {}

    @property
    def n_steps(self) -> int:
        return self._exo.n_steps

    def exogenous(self, k0: int, n: int, households: np.ndarray) -> Exogenous:
        rows = horizon_index(k0, n, self.n_steps)
        return slice_exogenous(self._exo, rows, np.asarray(households, dtype=np.int64))

    def trips(self, k0: int, n: int, households: np.ndarray) -> TripSchedule:
        return _take_trips(self._trips_ahead, horizon_index(k0, n, self.n_steps), households)

    @property
    def _trips_ahead(self) -> TripSchedule:
        """The trips a forecast of this forecaster carries (perfect foresight: the real ones)."""
        return self._exo.trips

    def other_loads(self, k0: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        rows = horizon_index(k0, n, self.n_steps)
        return self._other_p[rows], self._other_q[rows]

    def inflexible_quantiles_kw(
        self, k0: int, n: int, households: np.ndarray
    ) -> dict[str, np.ndarray]:
        """How far the households' inflexible load (base load − PV) may lie above (``up``) and
        below (``down``) the point forecast: the 90th and 10th percentiles' distance, per
        household and step, and the parts from base load and PV; ``agg_base_*`` for the
        feeder's households together (the diversity between them); ``other_*`` for the
        feeder's other loads together. Perfect foresight: 0."""
        zero = np.zeros((n, len(households)))
        keys = ("up_kw", "down_kw", "base_up_kw", "base_down_kw", "pv_up_kw", "pv_down_kw")
        return {k: zero for k in keys} | {
            "agg_base_up_kw": np.zeros(n),
            "agg_base_down_kw": np.zeros(n),
            "other_up_kw": np.zeros(n),
            "other_down_kw": np.zeros(n),
        }

    def release(self) -> None:
        """Let the caches go (a run's simulation is over: :func:`twin.pipeline.run` calls
        this before the KPIs); asked again, a forecast is made again, the same numbers."""
        self._firm = {}

    def firm_load_kw(self, k0: int, n: int, households: np.ndarray) -> np.ndarray:
        h = np.asarray(households, dtype=np.int64)
        if len(h) == 0:
            return np.zeros((n, 0))
        key = h.tobytes()
        if key not in self._firm:
            state = self._state0.subset(h)
            self._firm[key] = simulate_firm(
                self._fleet.subset(h),
                state,
                self.exogenous(0, self.n_steps + FIRM_LOOKAHEAD_STEPS, h),
            )
        trajectory = self._firm[key]
        if k0 + n > len(trajectory):
            raise ValueError(f"firm forecast asked for {k0 + n} steps, prepared {len(trajectory)}")
        return trajectory[k0 : k0 + n]


# ----------------------------------------------------------------------------------------------
# forecasts with error
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ForecastSettings:
    """The forecast config group (``twin/configs/forecast/``); see :class:`StatisticalForecaster`.

    Attributes
    ----------
    name : str
        ``perfect`` or ``statistical``.
    history_days : int
        Days of the feeder's own past the models learn from.
    retrain_every_days : int
        The models are learned again from the latest past this often.
    level_days : float
        Each issue rescales the learned forecast by the ratio of the measured to the forecast
        load over the latest ``level_days`` before it (0: off), so the forecast follows a level
        that drifts faster than its week-old lags.
    nowcast_h : float
        The error of the latest measured step carries into the first steps of each issue,
        fading as ``exp(-lead / nowcast_h)`` (persistence of the last error; 0: off).
    t_sigma0_k, t_sigma24_k : float
        Outdoor-temperature forecast error (standard deviation) at lead 0 and 24 h; it grows
        with the square root of lead time.
    ghi_sigma4h, ghi_sigma_max : float
        Irradiance forecast error (log-normal, relative) at 4 h ahead and its cap.
    error_corr_h : float
        Correlation length of the forecast errors along lead time (AR(1)).
    ev_arrival_sigma_h, ev_energy_sigma : float
        How far a car's real trip deviates from its declared plan: arrival time (h) and energy
        (relative), normal, seeded.
    n_estimators, num_leaves, learning_rate, min_child_samples : LightGBM settings.
    threads : int
        Blocks of steps learned at once on a pool of this many threads (each model on one
        thread, deterministic: the same forecasts, bit for bit, as ``1``, one block after the
        other); with more than one, the block after the latest one asked for is learned ahead
        in the background while the run goes on.
    """

    name: str = "perfect"
    history_days: int = 56
    retrain_every_days: int = 28
    level_days: float = 1.0
    nowcast_h: float = 1.0
    t_sigma0_k: float = 0.3
    t_sigma24_k: float = 1.3
    ghi_sigma4h: float = 0.30
    ghi_sigma_max: float = 0.60
    error_corr_h: float = 12.0
    ev_arrival_sigma_h: float = 0.5
    ev_energy_sigma: float = 0.15
    n_estimators: int = 60
    num_leaves: int = 15
    learning_rate: float = 0.1
    min_child_samples: int = 50
    threads: int = 1

    @classmethod
    def from_config(cls, cfg: Any) -> ForecastSettings:
        if cfg is None:
            return cls()
        names = {f.name for f in fields(cls)}
        return cls(**{k: cfg[k] for k in names if k in cfg})


#: Quantiles every forecaster reports (the paper's p10 is the 90th percentile of load).
QUANTILES = (0.1, 0.5, 0.9)
#: z-score of the 90th percentile of a standard normal.
Z90 = 1.2815515655446004
#: LightGBM objective of each model of the statistical forecaster (by the quantity it predicts)
_OBJECTIVES: dict[str, dict[str, Any]] = {
    "q10": {"objective": "quantile", "alpha": 0.1},
    "q50": {"objective": "quantile", "alpha": 0.5},
    "q90": {"objective": "quantile", "alpha": 0.9},
    "mean": {"objective": "regression"},
}


@dataclass
class Issue:
    """One forecast issued at step ``k0`` for ``n`` steps (arrays ``(n, ...)``)."""

    k0: int
    rows: np.ndarray  # (n,) simulated steps forecast (horizon_index)
    t_out_c: np.ndarray  # (n,)
    ghi_w_m2: np.ndarray  # (n,)
    ghi_sigma: np.ndarray  # (n,) relative irradiance error (log-normal)
    base_kw: np.ndarray  # (4, n, H) base load: quantiles 10/50/90 and the mean (last)
    agg_base_kw: np.ndarray  # (3, n) the feeder's households' base load together
    # (a point forecaster, quantiles=False: base_kw (1, n, H) the mean alone, agg_base_kw (0, n))
    exogenous: Exogenous | None = None  # every household's physics on it (made when asked)


@dataclass(frozen=True)
class _Floors:
    """A training's floors of the load levels: per household ``(H,)`` and of their total."""

    hh: np.ndarray
    agg: float


#: What a block learns, in two stages: the households' mean model (the point forecast: all a
#: HEMS, the DSO's limit screening and its physics need) and the quantile models (the
#: households' 10th/50th/90th percentiles, those of their total and the other loads' error:
#: the DSO's margins), learned when first asked for.
MEAN, QUANTILES = "mean", "quantiles"


@dataclass
class _Learned:
    """One block's learning of one stage (:meth:`StatisticalForecaster._learn_block`): the
    forecasts of its steps ``at`` (of the predictions' axis) and its compute times (s, on
    whichever thread)."""

    b: int
    stage: str
    at: slice
    base: np.ndarray  # (len of the stage's household keys, n, H)
    agg: np.ndarray  # (len of the stage's feeder keys, n)
    other_err_q: tuple[float, float] | None
    train_s: float
    predict_s: float


class StatisticalForecaster(PerfectForecaster):
    """Forecasts as a DSO (and a HEMS) would have them.

    * **Weather**: the actual weather plus an error that grows with lead time: outdoor
      temperature ``T + sigma_T(L) z`` with ``sigma_T(L) = sigma0 + (sigma24 - sigma0)
      sqrt(L / 24 h)``; irradiance ``G exp(sigma_G(L) z' - sigma_G^2 / 2)`` with ``sigma_G(L) =
      min(sigma4h sqrt(L / 4 h), sigma_max)``; ``z, z'`` AR(1) along lead time
      (``error_corr_h``), a new path for every issue time, seeded. The defaults are
      **assumptions** calibrated so that the 4 h-ahead PV forecast has a MAPE in the E.DSO
      paper's 20–30 % (Sadales tīkls pilot) and the day-ahead temperature error is about the
      1–1.5 K of operational day-ahead 2 m temperature forecasts; the run reports the errors it
      got (``forecast_*`` KPIs).
    * **Base load**: quantile gradient boosting (LightGBM, 10th/50th/90th percentile, one
      pooled model over the households, load normalised by each household's mean) on calendar
      (time of day, weekday) and lag features (the same time one and two weeks earlier, always
      measured for horizons up to a week), learned from the feeder's own past
      (``history_days`` before the window, then the measured past) and learned again every
      ``retrain_every_days``; the same for the households' total (the feeder-level spread).
      This is OpenSTEF's method (quantile GBM over lags and calendar) made light enough to sit
      in the loop.
    * **PV**: the physics (:mod:`twin.devices.pv`) on the irradiance forecast; its quantiles
      follow from the irradiance error.
    * **EV plans**: a HEMS knows its car's declared plan; the real trip deviates from it
      (arrival ``ev_arrival_sigma_h``, energy ``ev_energy_sigma``, seeded): the forecast's
      trips are the declared plans, the simulation's are the real ones.
    * **Other loads**: seasonal naive (the same time a week earlier, measured).

    Parameters
    ----------
    exo, fleet, state0, other_p_kw, other_q_kvar : see :class:`PerfectForecaster`.
    physics : callable
        ``physics(households, t_out_c, ghi_w_m2, p_base_kw, q_base_kvar, trips) ->
        Exogenous``: the model's own device physics on forecast inputs (gains, COP, PV).
    year_rows : np.ndarray
        ``(T,)`` row of each simulated step in the reference year (calendar features).
    history : dict
        The past before the first simulated step: ``base_kw`` ``(T_h, H)``, ``other_kw``
        ``(T_h, n_other)`` and ``year_rows`` ``(T_h,)``.
    settings : ForecastSettings
    seed : int
    measured : dict, optional
        What the forecaster learns from instead of the exact past (the DSO's forecaster:
        :meth:`twin.measure.DsoMeters.learning_series`): ``base_kw`` ``(T_h + T, H)`` and
        ``other_kw`` ``(T_h + T, n_other)`` over the history and the window as the meters
        delivered them, and ``delay_steps``: a step's value is known only that many steps
        after it, so the models learn from, the level correction compares and the persistence
        term carries the latest *arrived* steps (the persistence term faded by their age).
        None: the exact past, known at once (a HEMS's forecast of its own house).
    quantiles : bool
        Learn the quantile models (the households' 10th/50th/90th percentiles and those of
        their total), which :meth:`inflexible_quantiles_kw` reads (the DSO's margins). False:
        a point forecaster, the households' mean model alone (what a HEMS plans on, through
        :meth:`exogenous`): the same mean, a seventh of the learning.
    declared : TripSchedule, optional
        The households' declared EV plans, as :func:`run_declared_trips` draws them from
        ``exo.trips``, ``settings`` and ``seed`` (given: those another forecaster of the run
        drew, the same plans computed once; never written).

    Attributes
    ----------
    train_s, predict_s : float
        The compute time of the blocks' training and prediction (s), summed over the threads
        they ran on (``settings.threads``: with blocks learned at once, or ahead in the
        background, the wall time the run waits for is less): the ``forecast_train_s`` and
        ``forecast_predict_s`` KPIs. With ``threads=1`` the wall time of each (as before: its
        predictions may use LightGBM's OpenMP threads); with more, each pool thread's own CPU
        time (``time.thread_time``; every LightGBM call there on one thread), so that time
        spent waiting for a core or the GIL while the run goes on is not counted. Counted, as ``n_trainings``, when a block's forecasts are
        taken into use (a block learned ahead and never asked for is not counted).
    """

    def __init__(
        self,
        exo: Exogenous,
        fleet: Fleet,
        state0: HouseholdState,
        other_p_kw: np.ndarray,
        other_q_kvar: np.ndarray,
        physics: Any,
        year_rows: np.ndarray,
        history: dict[str, np.ndarray],
        settings: ForecastSettings,
        seed: int,
        measured: dict[str, Any] | None = None,
        quantiles: bool = True,
        declared: TripSchedule | None = None,
    ) -> None:
        super().__init__(exo, fleet, state0, other_p_kw, other_q_kvar)
        self.settings = settings
        # the models learned (and predicted, in this order): households, their total
        self.quantiles = bool(quantiles)
        self._hh_keys = ("q10", "q50", "q90", "mean") if quantiles else ("mean",)
        self._agg_keys = ("q10", "q50", "q90") if quantiles else ()
        self._physics = physics
        self._seed = int(seed)
        h = history
        self._n_hist = len(h["base_kw"])
        # the past and the window on one axis: index t + n_hist
        if measured is None:
            self._base = np.vstack([h["base_kw"], exo.p_base_kw])
            other = np.vstack([h["other_kw"], self._other_p]) if self._other_p.size else None
            self._delay = 0
        else:
            self._base = np.asarray(measured["base_kw"], float)
            other = np.asarray(measured["other_kw"], float) if self._other_p.size else None
            self._delay = int(measured["delay_steps"])
            if len(self._base) != self._n_hist + exo.n_steps:
                raise ValueError("measured: one row per step of the history and the window")
        self._other = other
        self._rows = np.concatenate([h["year_rows"], year_rows])
        if declared is None:
            declared = run_declared_trips(exo.trips, settings, seed)
        self._declared = declared  # (read only: shared by the run's two forecasters)
        self._stages = (MEAN, QUANTILES) if quantiles else (MEAN,)
        # the learning series' total and daily means (:meth:`_series`)
        self._agg: np.ndarray | None = None
        self._day_mean = self._day_agg = np.zeros(0)
        # blocks learned at once on a pool of this many threads (1: one after the other, in
        # the caller's thread), and the block learned ahead in the background (its future)
        self._threads = max(int(settings.threads), 1)
        self._executor: Any = None
        self._pending: dict[tuple[int, str], Any] = {}
        # predictions of every step, filled block by block (a block: the steps one trained
        # model forecasts); rows before the window (the measured past the level correction
        # compares with) come with the first block
        self._pre = min(
            int(np.ceil(settings.level_days * STEPS_PER_DAY))
            + (self._delay + 1 if self._delay else 0),
            max(self._n_hist - 15 * STEPS_PER_DAY, 0),
        )
        self._alloc_predictions()
        self._issues: dict[int, Issue] = {}
        self.train_s = 0.0
        self.predict_s = 0.0
        self.n_trainings = 0
        self._log_k0: list[int] = []
        self._log_agg: list[np.ndarray] = []  # (4, L) p10, p50, p90 of the inflexible total

    def _alloc_predictions(self) -> None:
        n_axis = self._pre + self.n_steps
        self._pred_base = np.zeros((len(self._hh_keys), n_axis, self._base.shape[1]))
        self._pred_agg = np.zeros((len(self._agg_keys), n_axis))
        self._predicted = {st: np.zeros(self._n_blocks(), bool) for st in self._stages}
        # 10th, 90th percentile of the other loads' seasonal-naive error (kW), per block
        self._other_err_q = np.zeros((self._n_blocks(), 2))

    def _stage_keys(self, stage: str) -> tuple[tuple[str, ...], tuple[str, ...], slice]:
        """The household and feeder models of ``stage`` and their rows of the predictions."""
        n = len(self._hh_keys)
        if stage == MEAN:
            return ("mean",), (), slice(n - 1, n)
        return self._hh_keys[:-1], self._agg_keys, slice(0, n - 1)

    def release(self) -> None:
        """Let the caches go: every step's predicted quantiles (4 x T x H: 115 MB for a year
        of the default feeder), the issue kept, the firm trajectories and the models. A
        forecast asked for again is predicted again, the same numbers (the blocks, their
        training times and the training draws are fixed). A block being learned ahead is
        dropped, and the pool's threads end once idle (a new pool when asked again)."""
        super().release()
        if self._executor is not None:
            # not waited for: a block being learned ahead writes nothing shared (its result
            # is dropped), so the run goes on with its KPIs and files meanwhile
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._pending = {}
        self._alloc_predictions()  # zeros: untouched pages, no memory until written
        self._issues = {}

    # -- weather ------------------------------------------------------------------------------
    def _error_path(self, k0: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        s = self.settings
        rng = np.random.default_rng([self._seed, 11, k0])
        rho = np.exp(-DT_H / max(s.error_corr_h, 1e-6))
        z = rng.standard_normal((2, n))
        if n > 1:  # z[i] = rho z[i-1] + sqrt(1 - rho^2) e[i], as a filter (the same numbers)
            from scipy.signal import lfilter

            c = np.sqrt(1.0 - rho**2)
            z[:, 1:] = lfilter([c], [1.0, -rho], z[:, 1:], axis=1, zi=rho * z[:, :1])[0]
        lead_h = np.arange(n) * DT_H
        sig_t = s.t_sigma0_k + (s.t_sigma24_k - s.t_sigma0_k) * np.sqrt(lead_h / 24.0)
        sig_g = np.minimum(s.ghi_sigma4h * np.sqrt(lead_h / 4.0), s.ghi_sigma_max)
        return sig_t * z[0], np.stack([sig_g * z[1], sig_g])

    # -- learning -------------------------------------------------------------------------------
    def _level(self, t_abs: np.ndarray, fl: _Floors, hh: np.ndarray | None) -> np.ndarray:
        """The mean load of the day a week before each target step (per household, or of
        the households together), at least the training's floors ``fl``: the scale the models
        predict relative to, so they follow a seasonal level they were not trained on (trees
        do not extrapolate)."""
        d = t_abs // STEPS_PER_DAY - 7
        if hh is None:
            return np.maximum(self._day_agg[d], fl.agg)
        return np.maximum(self._day_mean[d, hh], fl.hh[hh])

    def _features(self, t_abs: np.ndarray, fl: _Floors, hh: np.ndarray | None = None) -> np.ndarray:
        """Calendar and lag features of absolute steps ``t_abs`` (past-and-window axis), of
        households ``hh`` (paired with ``t_abs``) or of the households together (None)."""
        yr = self._rows[t_abs]
        tod = yr % STEPS_PER_DAY
        dow = (2 + yr // STEPS_PER_DAY) % 7  # 1 Jan 2025 was a Wednesday (Monday = 0)
        week = 7 * STEPS_PER_DAY
        if hh is None:
            series = self._agg
            lag7, lag14 = series[t_abs - week], series[t_abs - 2 * week]
            lv14 = np.maximum(self._day_agg[t_abs // STEPS_PER_DAY - 14], fl.agg)
        else:
            lag7, lag14 = self._base[t_abs - week, hh], self._base[t_abs - 2 * week, hh]
            lv14 = np.maximum(self._day_mean[t_abs // STEPS_PER_DAY - 14, hh], fl.hh[hh])
        lv = self._level(t_abs, fl, hh)
        return np.column_stack([tod, dow, lag7 / lv, lag14 / lv, lv14 / lv])

    def _series(self) -> None:
        """The households' total and the daily means the features and levels read (of the
        learning series, known up front: made once, before any block's learning, and read
        only after that)."""
        if self._agg is None:
            n_h = self._base.shape[1]
            self._agg = self._base.sum(axis=1)
            self._day_mean = self._base.reshape(-1, STEPS_PER_DAY, n_h).mean(axis=1)
            self._day_agg = self._agg.reshape(-1, STEPS_PER_DAY).mean(axis=1)

    def _train(self, now: int, stage: str) -> tuple[dict[tuple[str, str], Any], _Floors, Any]:
        """Learn the models of ``stage`` from the ``history_days`` measured before absolute
        step ``now``: ``(models, floors, other_err_q)`` (the 10th and 90th percentile of the
        other loads' seasonal-naive error; None without other loads or in the mean stage).
        Both stages draw the same training sample (the same seed), so a model is the one it
        would be learned with the others. Reads the shared series only (several blocks may
        learn at once, on threads)."""
        import lightgbm as lgb

        s = self.settings
        end = now - self._delay  # the targets whose readings have arrived
        n_days = max(min(s.history_days, end // STEPS_PER_DAY - 15), 1)
        t_abs = np.arange(end - n_days * STEPS_PER_DAY, end)
        n_h = self._base.shape[1]
        past = self._base[t_abs]
        fl = _Floors(
            np.maximum(0.05 * past.mean(axis=0), 1e-4),
            max(0.05 * float(past.sum(axis=1).mean()), 1e-4),
        )
        rng = np.random.default_rng([self._seed, 13, now])
        take = min(len(t_abs) * n_h, 60_000)
        pick = rng.choice(len(t_abs) * n_h, size=take, replace=False)
        tt, hh = t_abs[pick // n_h], pick % n_h
        x, y = self._features(tt, fl, hh), self._base[tt, hh] / self._level(tt, fl, hh)
        params = {
            "num_leaves": s.num_leaves,
            "learning_rate": s.learning_rate,
            "min_data_in_leaf": s.min_child_samples,
            "num_threads": 1,
            "verbose": -1,
            "seed": self._seed % 2**31,
            "deterministic": True,
        }
        hh_keys, agg_keys, _ = self._stage_keys(stage)
        models: dict[tuple[str, str], Any] = {}
        # one binned data set per series, shared by its models (the same models as a data set
        # per model, built once instead of four and three times)
        data_hh = lgb.Dataset(x, y, free_raw_data=False)
        # households: the 10th/50th/90th percentiles and the mean (the point forecast the
        # planner sums: medians of skewed household loads would add up too low)
        for key in hh_keys:
            models[("hh", key)] = lgb.train(
                {**params, **_OBJECTIVES[key]}, data_hh, num_boost_round=s.n_estimators
            )
        if agg_keys:
            xa, ya = self._features(t_abs, fl), self._agg[t_abs] / self._level(t_abs, fl, None)
            data_agg = lgb.Dataset(xa, ya, free_raw_data=False)
            for key in agg_keys:
                models[("agg", key)] = lgb.train(
                    {**params, **_OBJECTIVES[key]}, data_agg, num_boost_round=s.n_estimators
                )
        other_err_q = None
        if self._other is not None and stage == QUANTILES:  # the other loads' naive error
            o = self._other.sum(axis=1)
            err = o[t_abs] - o[t_abs - 7 * STEPS_PER_DAY]
            other_err_q = (float(np.quantile(err, 0.1)), float(np.quantile(err, 0.9)))
        return models, fl, other_err_q

    def _block_len(self) -> int:
        return max(int(self.settings.retrain_every_days), 1) * STEPS_PER_DAY

    def _n_blocks(self) -> int:
        return max(-(-self.n_steps // self._block_len()), 1)

    def _learn_block(self, b: int, stage: str = MEAN) -> _Learned:
        """Base-load forecasts (``stage``: the mean, or the quantiles and those of the total)
        of every household for block ``b``: the steps ``b R ..
        (b + 1) R`` (``R``: ``retrain_every_days``) of the window, forecast by the models
        learned from the past before the block's first step (the models use calendar and
        week-old lags only, so a forecast does not depend on when it is issued). The blocks
        and their training times are fixed, so every forecast of a step comes from the same
        model, learned from its past only, whatever order the steps are asked for in. Block 0
        also covers the measured steps before the window that the level correction reads.

        Returns the block's forecasts (and its compute times) without writing any shared
        state: blocks may learn at once on threads (LightGBM releases the GIL; each model on
        one thread, deterministic, the same data and seed as one after the other: the same
        bits); :meth:`_commit` writes them in the order they are asked for."""
        import time as _time

        # the compute time: one after the other, the wall time as it always was (LightGBM's
        # predictions may run on several OpenMP threads then); on the pool, the thread's own
        # CPU time (every call on one thread: not the time it waits for a core or the GIL)
        clock = _time.perf_counter if self._threads <= 1 else _time.thread_time
        t0 = clock()
        start = b * self._block_len()
        models, fl, other_err_q = self._train(start + self._n_hist, stage)
        hh_keys, agg_keys, _ = self._stage_keys(stage)
        t1 = clock()
        end = min(start + self._block_len(), self.n_steps)
        first = start - self._pre if b == 0 else start
        t_abs = np.arange(first, end) + self._n_hist
        n, n_h = len(t_abs), self._base.shape[1]
        tt, hh = np.repeat(t_abs, n_h), np.tile(np.arange(n_h), n)
        x, lv = self._features(tt, fl, hh), self._level(tt, fl, hh)
        # (LightGBM's thread count is a process-wide setting that every call sets: with
        # blocks learning at once, predictions ask for one thread too, as training does, so no
        # call changes another's; a prediction's numbers do not depend on it)
        kw = {"num_threads": 1} if self._threads > 1 else {}
        out = np.stack(
            [(models[("hh", key)].predict(x, **kw) * lv).reshape(n, n_h) for key in hh_keys]
        )
        del x, lv, tt, hh
        agg = np.zeros((0, n))
        if stage == QUANTILES:
            out.sort(axis=0)  # quantiles never cross
            xa, lva = self._features(t_abs, fl), self._level(t_abs, fl, None)
            agg = np.stack([models[("agg", k)].predict(xa, **kw) * lva for k in agg_keys])
            agg.sort(axis=0)
            np.maximum(agg, 0.0, out=agg)
        np.maximum(out, 0.0, out=out)
        at = slice(first + self._pre, end + self._pre)
        return _Learned(b, stage, at, out, agg, other_err_q, t1 - t0, clock() - t1)

    def _commit(self, got: _Learned) -> None:
        """Write a learned block's stage into the forecasts (and the block's other loads'
        error quantiles, which the DSO's issues in that block read)."""
        self._pred_base[self._stage_keys(got.stage)[2], got.at] = got.base
        if got.stage == QUANTILES:
            self._pred_agg[:, got.at] = got.agg
        if got.other_err_q is not None:
            self._other_err_q[got.b] = got.other_err_q
        if not any(done[got.b] for done in self._predicted.values()):
            self.n_trainings += 1  # blocks learned (in one stage or both)
        self._predicted[got.stage][got.b] = True
        self.train_s += got.train_s
        self.predict_s += got.predict_s

    def _pool(self) -> Any:
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="twin-forecast")
        return self._executor

    def _learn(self, todo: list[tuple[int, str]]) -> None:
        """Learn and commit the stages ``todo`` (``(block, stage)``, ascending, not yet
        predicted): one after the other with ``threads=1``; otherwise on the pool, at most
        ``threads`` at once, committed in order. Learned ahead in the background: beside them,
        the first of these blocks in the stages not asked for (after the whole window's mean at
        set-up, the first plan asks for its quantiles: no core then learns it while the other
        waits); after them, the block after the last one of each stage asked for (the
        forecasters are asked block by block as the run reaches them: the DSO's quantiles, the
        households' mean)."""
        self._series()
        if self._threads <= 1:
            for b, stage in todo:
                self._commit(self._learn_block(b, stage))
            return
        pool = self._pool()

        def ahead(b: int, stage: str) -> None:
            if b < self._n_blocks() and not self._predicted[stage][b]:
                if (b, stage) not in self._pending:
                    self._pending[(b, stage)] = pool.submit(self._learn_block, b, stage)

        asked = {st for _, st in todo}
        first = min(b for b, _ in todo)
        for stage in self._stages:
            if stage not in asked:
                ahead(first, stage)
        queue = list(todo)
        running: list[Any] = []
        while queue or running:
            # at most `threads` in flight (each holds its features and forecasts)
            while queue and len(running) < self._threads:
                item = queue.pop(0)
                running.append(
                    self._pending.pop(item, None) or pool.submit(self._learn_block, *item)
                )
            self._commit(running.pop(0).result())
        for stage in asked:
            ahead(max(b for b, st in todo if st == stage) + 1, stage)

    def _base_quantiles(
        self, rows: np.ndarray, stages: tuple[str, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The predictions of ``rows`` (every model's; ``stages``: those learned for them if
        not yet, default every stage: the others' rows may still be zeros)."""
        rows = np.asarray(rows)
        if len(rows) and rows.min() < -self._pre:
            raise ValueError(
                f"base-load forecast of step {int(rows.min())}: only {self._pre} steps before "
                "the window are forecast"
            )
        blocks = np.unique(np.maximum(rows, 0) // self._block_len()) if len(rows) else []
        todo = [
            (int(b), st)
            for b in blocks
            for st in (self._stages if stages is None else stages)
            if not self._predicted[st][b]
        ]
        if todo:
            self._learn(todo)
        at = rows + self._pre
        return self._pred_base[:, at], self._pred_agg[:, at]

    def _level_ratio(self, k0: int, stages: tuple[str, ...]) -> tuple[float, float]:
        """Measured over forecast load of the households together over the latest
        ``level_days`` before ``k0`` (for the household models' mean, and for the feeder
        model's median), clipped to [2/3, 3/2]: 1 when off (the feeder's: 1 without its
        quantiles among ``stages``)."""
        n = int(round(self.settings.level_days * STEPS_PER_DAY))
        if n <= 0:
            return 1.0, 1.0
        # measured and arrived: the past and the history before the window
        past = np.arange(k0 - n, k0) - self._delay
        base, agg = self._base_quantiles(past, stages)
        actual = float(self._base[past + self._n_hist].sum())
        r_hh = actual / max(float(base[-1].sum()), 1e-9)
        r_agg = actual / max(float(agg[1].sum()), 1e-9) if QUANTILES in stages else 1.0
        return float(np.clip(r_hh, 2 / 3, 1.5)), float(np.clip(r_agg, 2 / 3, 1.5))

    def _other_ratio(self, k0: int) -> float:
        """The same for the other loads' seasonal-naive forecast (week-on-week drift)."""
        n = int(round(self.settings.level_days * STEPS_PER_DAY))
        if n <= 0 or self._other is None:
            return 1.0
        t = np.arange(k0 - n, k0) - self._delay + self._n_hist
        week = 7 * STEPS_PER_DAY
        ratio = float(self._other[t].sum()) / max(float(self._other[t - week].sum()), 1e-9)
        return float(np.clip(ratio, 2 / 3, 1.5))

    # -- issues -----------------------------------------------------------------------------------
    def issue(self, k0: int, n: int) -> Issue:
        """The forecast issued at ``k0`` for ``n`` steps (cached; longer requests extend it).

        A request longer than :data:`ISSUE_PHYSICS_MAX_STEPS` (the whole window, for the DSO's
        limit screening at set-up) is the point forecast alone: the quantile models of a
        block are learned only when a plan first asks for them (in the background ahead of
        that with ``forecast.threads`` above 1). Asked for a plan's horizon later, the same
        issue gets its quantiles over its first :data:`ISSUE_PHYSICS_MAX_STEPS` steps (the
        same weather draw: the numbers the whole issue would have had there)."""
        got = self._issues.get(k0)
        if got is not None and len(got.rows) >= n:
            if n > ISSUE_PHYSICS_MAX_STEPS or len(got.base_kw) == len(self._hh_keys):
                return got
            m = min(len(got.rows), ISSUE_PHYSICS_MAX_STEPS)
            base, agg = self._loads(k0, got.rows[:m], self._stages)
            got = Issue(
                k0, got.rows[:m], got.t_out_c[:m], got.ghi_w_m2[:m], got.ghi_sigma[:m], base, agg
            )
            self._issues = {k0: got}
            return got
        rows = horizon_index(k0, n, self.n_steps)
        week = 7 * STEPS_PER_DAY
        # (longer requests, the whole window at set-up for the limit screening, read
        # week-old lags that lie ahead of the issue whatever the delay)
        if self._delay and n <= week and self._delay > week - n:
            raise TwinError(
                f"measurement.meters.delay_steps={self._delay} is too late for the DSO's "
                f"forecaster: a {n}-step forecast needs the readings of a week before its last "
                f"step: give measurement.meters.delay_steps={max(week - n, 0)} or less (or "
                "forecast=perfect)"
            )
        e_t, (e_g, sig_g) = self._error_path(k0, n)
        x = self._exo
        ghi = np.maximum(x.ghi_w_m2[rows] * np.exp(e_g - 0.5 * sig_g**2), 0.0)
        stages = (MEAN,) if n > ISSUE_PHYSICS_MAX_STEPS else self._stages
        base, agg = self._loads(k0, rows, stages)
        issue = Issue(k0, rows, x.t_out_c[rows] + e_t, ghi, sig_g, base, agg)
        self._issues = {k0: issue}  # one issue time at a time
        return issue

    def _loads(
        self, k0: int, rows: np.ndarray, stages: tuple[str, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The base-load forecast issued at ``k0`` for ``rows`` (the models of ``stages``;
        the mean alone: ``(1, n, H)`` and no feeder quantiles), levelled and nowcast."""
        n = len(rows)
        base, agg = self._base_quantiles(rows, stages)
        if QUANTILES not in stages:
            base, agg = base[-1:], agg[:0]
        r_hh, r_agg = self._level_ratio(k0, stages)
        base, agg = base * r_hh, agg * r_agg
        if self.settings.nowcast_h > 0:  # the last measured error fades over the first steps
            k_last = k0 - 1 - self._delay  # the latest step whose readings have arrived
            last, _ = self._base_quantiles(np.array([k_last]), stages)
            err = self._base[k_last + self._n_hist] - last[-1, 0] * r_hh  # (H,)
            age = np.arange(n) + 1 + self._delay
            fade = np.exp(-age * DT_H / self.settings.nowcast_h)[:, None]
            base = base + fade[None] * err[None, None, :]
            agg = agg + fade[:, 0][None] * float(err.sum())
            np.maximum(base, 0.0, out=base)
            np.maximum(agg, 0.0, out=agg)
        return base, agg

    def exogenous(self, k0: int, n: int, households: np.ndarray) -> Exogenous:
        it = self.issue(k0, n)
        h = np.asarray(households, dtype=np.int64)
        if n > ISSUE_PHYSICS_MAX_STEPS:  # e.g. the whole window at set-up: not kept
            return self._issue_physics(it, n, h)
        if it.exogenous is None or it.exogenous.n_steps < n:
            # the physics of every household over the issue, once: it is step by step and
            # household by household, so a part of it is the physics of that part
            it.exogenous = self._issue_physics(it, len(it.rows), np.arange(self._base.shape[1]))
        return _part(it.exogenous, n, h)

    @property
    def _trips_ahead(self) -> TripSchedule:
        return self._declared  # the plans the households declared, not the trips they make

    def _issue_physics(self, it: Issue, n: int, h: np.ndarray) -> Exogenous:
        rows = it.rows[:n]
        trips = _take_trips(self._declared, rows, h)
        p_base = it.base_kw[-1, :n][:, h]  # the mean: the point forecast
        q_base = _take(self._exo.q_base_kvar, rows, h)
        return self._physics(h, rows, it.t_out_c[:n], it.ghi_w_m2[:n], p_base, q_base, trips)

    def other_loads(self, k0: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        rows = horizon_index(k0, n, self.n_steps)
        if self._other is None:
            return self._other_p[rows], self._other_q[rows]
        week = 7 * STEPS_PER_DAY  # seasonal naive: the same time a week before (measured)
        lag = rows - week * np.ceil((rows - k0 + 1) / week).astype(int)
        return self._other[lag + self._n_hist] * self._other_ratio(k0), self._other_q[rows]

    def inflexible_quantiles_kw(
        self, k0: int, n: int, households: np.ndarray
    ) -> dict[str, np.ndarray]:
        if not self.quantiles:
            raise ValueError("a point forecaster (quantiles=False) has no quantiles")
        it = self.issue(k0, n)
        h = np.asarray(households, dtype=np.int64)
        b = it.base_kw[:, :n][:, :, h]
        pv = self.exogenous(k0, n, h).p_pv_kw  # the point forecast on forecast irradiance
        s = it.ghi_sigma[:n, None]
        pv_low = pv * np.exp(0.5 * s**2 - Z90 * s)  # the truth's 10th percentile given fc
        pv_high = pv * np.exp(0.5 * s**2 + Z90 * s)
        a = it.agg_base_kw[:, :n]
        # the other loads' error quantiles of the block k0 lies in (learned from its past)
        other_q = self._other_err_q[min(max(k0, 0), self.n_steps - 1) // self._block_len()]
        up, down = np.maximum(b[2] - b[3], 0.0), np.maximum(b[3] - b[0], 0.0)
        return {
            "up_kw": np.hypot(up, pv - pv_low),
            "down_kw": np.hypot(down, pv_high - pv),
            "base_up_kw": up,
            "base_down_kw": down,
            "pv_up_kw": pv - pv_low,
            "pv_down_kw": pv_high - pv,
            "agg_base_up_kw": a[2] - a[1],
            "agg_base_down_kw": a[1] - a[0],
            "other_up_kw": np.full(n, max(float(other_q[1]), 0.0)),
            "other_down_kw": np.full(n, max(-float(other_q[0]), 0.0)),
        }

    def firm_load_kw(self, k0: int, n: int, households: np.ndarray) -> np.ndarray:
        """Households that did not sign: their firm behaviour on the forecast (p50) inputs
        and declared trips, simulated once from the start (an approximation: a DSO would
        forecast their load as a whole; with every household signed it is never needed)."""
        h = np.asarray(households, dtype=np.int64)
        if len(h) == 0:
            return np.zeros((n, 0))
        key = h.tobytes()
        if key not in self._firm:
            state = self._state0.subset(h)
            exo = self.exogenous(0, self.n_steps + FIRM_LOOKAHEAD_STEPS, h)
            self._firm[key] = simulate_firm(self._fleet.subset(h), state, exo)
        return self._firm[key][k0 : k0 + n]


def run_declared_trips(trips: TripSchedule, settings: ForecastSettings, seed: int) -> TripSchedule:
    """The declared plans of a run with ``seed``: :func:`declared_trips` on the run's own
    stream for them (the same plans for every forecaster of the run)."""
    return declared_trips(trips, settings, np.random.default_rng([seed, 7]))


def declared_trips(
    real: TripSchedule, s: ForecastSettings, rng: np.random.Generator
) -> TripSchedule:
    """The plans the households declare, from which their real trips deviate: the same
    departures, arrivals shifted by ``N(0, ev_arrival_sigma_h)`` (never before an hour after
    leaving), trip energy scaled by ``1 + N(0, ev_energy_sigma)`` (at least 0)."""
    t_n, n = real.home.shape
    dep_rows, dep_cols = np.nonzero(real.departure)
    home = np.ones_like(real.home)
    trip = np.zeros_like(real.trip_kwh)
    arrivals = {
        (c, r): real.trip_kwh[r, c] for r, c in zip(*np.nonzero(real.trip_kwh), strict=True)
    }
    away = ~real.home
    for r, c in zip(dep_rows, dep_cols, strict=True):
        # the real arrival: the first step home after this departure
        back = np.flatnonzero(~away[r:, c])
        arr = r + (int(back[0]) if len(back) else t_n - r)
        shift = int(round(rng.normal(0.0, s.ev_arrival_sigma_h) * 4))
        arr_d = int(np.clip(arr + shift, r + 4, t_n - 1)) if arr < t_n else t_n
        home[r : min(arr_d, t_n), c] = False
        kwh = arrivals.get((c, arr), 0.0) * max(1.0 + rng.normal(0.0, s.ev_energy_sigma), 0.0)
        if arr_d < t_n:
            trip[arr_d, c] += kwh
    return TripSchedule(home=home, trip_kwh=trip, departure=real.departure.copy(), km=real.km)
