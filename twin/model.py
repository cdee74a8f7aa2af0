"""The mesa model of one feeder: one step = one 15-minute control interval.

The model holds the truth (device states, exact loads, the future weather) and gives the
contract a :class:`~twin.view.FeederView`, never itself. Each step the DSO agent decides
(contract-dependent), the household HEMSs dispatch their devices (vectorised, through the
contract), the physics advances every household at once, and the outcome is logged into
preallocated (time × household) arrays.
"""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from twin.agents import DsoAgent, HouseholdAgent
from twin.contracts.base import Contract
from twin.devices.ev import draw_trips
from twin.devices.household import (
    Exogenous,
    HouseholdState,
    draw_hot_water,
    firm_controls,
    make_exogenous,
    step_households,
    weather_response,
)
from twin.errors import TwinError
from twin.fleet import Fleet
from twin.forecast import (
    ISSUE_PHYSICS_MAX_STEPS,
    Forecaster,
    ForecastSettings,
    PerfectForecaster,
    StatisticalForecaster,
    run_declared_trips,
)
from twin.inputs import StudyInputs
from twin.kpi import household_kpis
from twin.measure import Clock, DsoMeters, MeasurementSettings, Meters
from twin.population import draw_unregistered, sample_fleet
from twin.timegrid import STEPS_PER_DAY
from twin.view import FeederView, HouseholdView, Outcome, Registered

__all__ = ["LOGGED", "FeederModel"]

LOGGED = (
    "p_base_kw",
    "p_hp_kw",
    "q_hp_kw",
    "q_boiler_kw",
    "p_ev_kw",
    "p_bat_kw",
    "p_pv_kw",
    "p_net_kw",
    "t_in_c",
    "ev_soc_kwh",
    "bat_soc_kwh",
    "ev_public_kwh",
    "q_gain_kw",
    # hot water (issue 11): heat into the tank (heat pump + element) and the electricity for
    # it (part of p_hp_kw), the element's part, the draws at the taps and what was delivered
    # (drawn - delivered = the shortfall), the stored heat at the end of each step
    "q_dhw_kw",
    "p_dhw_kw",
    "q_dhw_element_kw",
    "dhw_draw_kw",
    "dhw_delivered_kw",
    "e_tank_kwh",
)


def _logged_input(zeros: np.ndarray, series: Any) -> np.ndarray:
    """The log's column of an input series: a read-only view of it when it is the log's shape
    and type (the steps never write it), else a copy into ``zeros``."""
    a = np.asarray(series) if series is not None else None
    if a is not None and a.shape == zeros.shape and a.dtype == zeros.dtype:
        view = a.view()
        view.flags.writeable = False
        return view
    zeros[:] = series
    return zeros


class FeederModel(mesa.Model):
    """Households and the DSO on one feeder, under one contract.

    All randomness (population, trips, the contract's draws, hot-water draws) comes from
    ``self.rng``, seeded by ``seed``, in that order (the hot-water draws from a child stream
    spawned after the contract's, so every earlier draw is what it was without them). The
    base load is an input (``inputs.p_base_kw``: the feeder's profiles, drawn per household
    by :func:`twin.inputs.build_inputs`, or a user's meter data).

    Parameters
    ----------
    inputs : StudyInputs
        What the run simulates.
    contract : Contract
        The contract (set up here with the feeder view).
    seed : int
        The run's seed.
    forecaster : Forecaster, optional
        What the deciding side knows of the future; perfect foresight by default.
    forecast : ForecastSettings, optional
        The forecaster to build when ``forecaster`` is not given.
    measurement : MeasurementSettings, optional
        What the DSO's sensors deliver (:class:`~twin.measure.DsoMeters`; the default
        preset ``full`` when not given). A statistical forecaster is built twice: the
        households' HEMSs forecast their own houses from their exact past (a point forecast:
        the mean model alone), the DSO from what its meters delivered (with the quantiles its
        margins read).
    """

    def __init__(
        self,
        inputs: StudyInputs,
        contract: Contract,
        seed: int,
        forecaster: Forecaster | None = None,
        forecast: ForecastSettings | None = None,
        measurement: MeasurementSettings | None = None,
    ) -> None:
        super().__init__(rng=seed)
        self.inputs = inputs
        self.window = inputs.window
        self.contract = contract
        n = inputs.p_base_kw.shape[1]
        sc = inputs.scenario
        self.fleet: Fleet = sample_fleet(
            sc,
            n,
            self.rng,
            inputs.connection_phase,
            persons=inputs.household_persons,
            existing_pv_kwp=inputs.existing_pv_kwp,
        )
        trips = draw_trips(
            self.rng,
            self.window.warmup_days + self.window.days,
            self.fleet.ev_departure_h,
            self.fleet.ev_arrival_h,
            sc["ev"]["annual_km"].value,
            sc["ev"]["days_used_per_week"].value,
            self.fleet.ev_kwh_per_km,
            self.fleet.has_ev,
        )
        # the contract's own draws (who signs), then the hot-water draws: child streams in
        # that order, after the fleet and the trips
        self._draws = self.rng.spawn(1)[0]
        days = self.window.warmup_days + self.window.days
        q_dhw = draw_hot_water(self.fleet, self.rng.spawn(1)[0], days)
        price = None
        if inputs.tariff is not None and self.fleet.hp_price_switch.any():
            price = inputs.tariff.import_eur_per_kwh
        self.exo: Exogenous = make_exogenous(
            self.fleet,
            inputs.t_out_c,
            inputs.ghi_w_m2,
            inputs.p_base_kw,
            inputs.q_base_kvar,
            sc["dwelling"]["design_outdoor_c"].value,
            trips,
            year_rows=self.window.sim_year_index,
            q_dhw_kw=q_dhw,
            pv_irradiance_scale=inputs.pv_irradiance_scale,
            price_eur_per_kwh=price,
            site=(inputs.site_lat_deg, inputs.site_lon_deg),
        )
        self.state = HouseholdState.initial(self.fleet)
        self.households = [
            HouseholdAgent(self, i, int(li)) for i, li in enumerate(inputs.load_index)
        ]
        self.dso = DsoAgent(self)
        self.k = 0
        t = self.exo.n_steps
        self.log: dict[str, np.ndarray] = {name: np.zeros((t, n)) for name in LOGGED}
        # the inputs the steps never write are logged as read-only views of the exogenous
        # series, not copies (four year-long arrays: ~115 MB for the default feeder)
        for name, series in (
            ("p_base_kw", self.exo.p_base_kw),
            ("p_pv_kw", self.exo.p_pv_kw),
            ("q_gain_kw", self.exo.q_gain_kw),
            ("dhw_draw_kw", self.exo.q_dhw_kw),
        ):
            self.log[name] = _logged_input(self.log[name], series)
        self.log["t_out_c"] = np.asarray(self.exo.t_out_c, float).copy()  # (T,): the weather
        self.clock = Clock()
        # the devices the DSO's register does not know of (a stream of their own)
        share = float(sc["adoption"]["unregistered_given_adopter"].value)
        self.unregistered = draw_unregistered(self.fleet, share, seed)
        self.measurement = measurement or MeasurementSettings()
        self.dso_meters = self._make_dso_meters(seed)
        # (households, year rows, weather) and the PV and COP of the latest forecast's weather
        self._weather_kept: tuple[tuple, tuple[np.ndarray, np.ndarray]] | None = None
        settings = forecast or ForecastSettings()
        # the EV plans the households declare, drawn once for both forecasters
        self._declared: tuple[tuple, Any] | None = None
        own = forecaster is None and settings.name != "perfect"  # the DSO's forecaster its own
        # (the HEMSs plan on the point forecast of their houses: theirs learns the mean only;
        # the DSO's margins read quantiles)
        self.forecaster = forecaster or self._make_forecaster(settings, seed, quantiles=not own)
        self.dso_forecaster = self.forecaster
        if own:
            hist = inputs.history
            if hist is not None and "standard_kw" not in hist:
                hist = {**hist, "standard_kw": self._columns(hist["base_kw"], hist["other_kw"])}
            measured = self.dso_meters.learning_series(self.exo.p_base_kw, hist)
            self.dso_forecaster = self._make_forecaster(settings, seed, measured)
        self.view = self._make_view()
        contract.setup(self.view)

    def _physics(
        self,
        households: np.ndarray,
        rows: np.ndarray,
        t_out_c: np.ndarray,
        ghi_w_m2: np.ndarray,
        p_base_kw: np.ndarray,
        q_base_kvar: np.ndarray,
        trips: Any,
    ) -> Exogenous:
        """The households' device physics on given (e.g. forecast) inputs for the simulated
        steps ``rows`` (the sun's position and the prices are those of the steps; hot-water
        draws are not known ahead: the planners use the expected ones).

        The PV and COP of the latest weather asked for are kept: the households' and the
        DSO's forecasters issue the same weather forecast (the same seed) on different base
        loads, so the second asks for the weather's physics the first had (the same numbers,
        computed once). Only an issue's length is kept (not the whole window the limit
        screening asks for once: two year-long arrays)."""
        sc, inp = self.inputs.scenario, self.inputs
        price = self.exo.price_eur_per_kwh
        fleet = self.fleet.subset(households)
        design_c = sc["dwelling"]["design_outdoor_c"].value
        year_rows = self.window.sim_year_index[rows]
        site = (inp.site_lat_deg, inp.site_lon_deg)
        key = (households, year_rows, t_out_c, ghi_w_m2)
        kept = self._weather_kept
        if kept is None or not all(np.array_equal(a, b) for a, b in zip(kept[0], key, strict=True)):
            weather = weather_response(
                fleet,
                t_out_c,
                ghi_w_m2,
                design_c,
                year_rows=year_rows,
                pv_irradiance_scale=inp.pv_irradiance_scale,
                site=site,
            )
            for a in weather:  # shared by both forecasters' issues: never written
                a.flags.writeable = False
            kept = (tuple(np.array(a) for a in key), weather)
            if len(rows) <= ISSUE_PHYSICS_MAX_STEPS:
                self._weather_kept = kept
        return make_exogenous(
            fleet,
            t_out_c,
            ghi_w_m2,
            p_base_kw,
            q_base_kvar,
            design_c,
            trips,
            year_rows=year_rows,
            pv_irradiance_scale=inp.pv_irradiance_scale,
            price_eur_per_kwh=None if price is None else price[rows],
            site=site,
            weather=kept[1],
        )

    def _columns(self, hh: np.ndarray, other: np.ndarray) -> np.ndarray:
        """``(T, n_load)`` household and other-load columns in ``net.load`` order."""
        inp = self.inputs
        out = np.zeros((len(hh), len(inp.hh_cols) + len(inp.other_cols)))
        out[:, inp.hh_cols] = hh
        out[:, inp.other_cols] = other
        return out

    def _make_dso_meters(self, seed: int) -> DsoMeters:
        """The DSO's sensors under the measurement preset (twin.measure.DsoMeters)."""
        inp, log = self.inputs, self.log
        rows = self.window.sim_year_index
        feeder = inp.feeder
        if feeder is not None:
            q = feeder.load_q_kvar[rows]
            net = feeder.net
        else:  # no grid (tests): connections in column order, the truth as their profile
            q = self._columns(self.exo.q_base_kvar, inp.q_other_kvar)
            net = None
        standard = inp.standard_p_kw
        if standard is None:
            standard = self._columns(self.exo.p_base_kw, inp.p_other_kw)
        return DsoMeters(
            self.clock,
            self.measurement,
            int(seed),
            self.window.n_warmup_steps,
            np.asarray(inp.hh_cols),
            np.asarray(inp.other_cols),
            log["p_net_kw"],
            (log["p_hp_kw"], log["p_ev_kw"], log["p_bat_kw"]),
            inp.p_other_kw,
            q,
            standard,
            net,
        )

    def _make_forecaster(
        self,
        settings: ForecastSettings,
        seed: int,
        measured: dict | None = None,
        quantiles: bool = True,
    ) -> Forecaster:
        inp = self.inputs
        if settings.name == "perfect":
            return PerfectForecaster(
                self.exo, self.fleet, self.state, inp.p_other_kw, inp.q_other_kvar
            )
        n_h, n_o = inp.p_base_kw.shape[1], inp.p_other_kw.shape[1]
        history = inp.history or {
            "base_kw": np.zeros((0, n_h)),
            "other_kw": np.zeros((0, n_o)),
            "year_rows": np.zeros(0, dtype=np.int64),
        }
        if len(history["base_kw"]) < 15 * STEPS_PER_DAY:
            raise TwinError(
                "forecast=statistical needs at least 15 days of the feeder's past to learn "
                f"from, got {len(history['base_kw']) // STEPS_PER_DAY}: set "
                "forecast.history_days=15 or more"
            )
        key = (seed, settings.ev_arrival_sigma_h, settings.ev_energy_sigma)
        if self._declared is None or self._declared[0] != key:  # both forecasters': once
            self._declared = (key, run_declared_trips(self.exo.trips, settings, seed))
        return StatisticalForecaster(
            self.exo,
            self.fleet,
            self.state,
            inp.p_other_kw,
            inp.q_other_kvar,
            self._physics,
            self.window.sim_year_index,
            history,
            settings,
            seed,
            measured,
            quantiles,
            self._declared[1],
        )

    def _make_view(self) -> FeederView:
        """What the contract may read (twin.view): built once, read through accessors."""
        inp = self.inputs
        meters = Meters(
            self.clock, self.log["p_net_kw"], (self.log["q_hp_kw"], self.log["q_boiler_kw"])
        )
        households = HouseholdView(
            self.fleet, self.state, self.exo, self.clock, meters, self.forecaster
        )
        dso = {
            "feeder": inp.feeder,
            "station_rating_kva": inp.trafo_rating_kva,
            "hh_cols": np.asarray(inp.hh_cols),
            "other_cols": np.asarray(inp.other_cols),
            "registered": Registered.of(self.fleet, self.unregistered),
            "forecaster": self.dso_forecaster,
            "meters": self.dso_meters,
        }
        # the contract's own draws (who signs) come from a child stream of the run's seed,
        # spawned after the fleet and trips, so the population is the same under every contract
        return FeederView(households, dso, self.window, inp.tariff, self._draws)

    @property
    def n_steps(self) -> int:
        return self.exo.n_steps

    def step(self) -> None:
        k = self.k
        self.clock.now = k
        if k < self.window.n_warmup_steps:
            # warm-up: every contract starts its window from the same states (firm behaviour)
            x = self.exo
            controls = firm_controls(self.fleet, self.state.t_in_c, x.t_out_c[k], x.q_gain_kw[k])
        else:
            self.dso.step()
            controls = self.contract.dispatch(k)
        out = step_households(self.fleet, self.state, self.exo, k, controls)
        log = self.log
        log["p_hp_kw"][k] = out.p_hp_kw
        log["q_hp_kw"][k] = out.q_hp_kw
        log["q_boiler_kw"][k] = out.q_boiler_kw
        log["p_ev_kw"][k] = out.p_ev_kw
        log["p_bat_kw"][k] = out.p_bat_kw
        log["p_net_kw"][k] = out.p_net_kw
        log["ev_public_kwh"][k] = out.ev_public_kwh
        log["t_in_c"][k] = self.state.t_in_c
        log["ev_soc_kwh"][k] = self.state.ev_soc_kwh
        log["bat_soc_kwh"][k] = self.state.bat_soc_kwh
        log["q_dhw_kw"][k] = out.q_dhw_kw
        log["p_dhw_kw"][k] = out.p_dhw_kw
        log["q_dhw_element_kw"][k] = out.q_dhw_element_kw
        log["dhw_delivered_kw"][k] = out.dhw_delivered_kw
        log["e_tank_kwh"][k] = self.state.e_tank_kwh
        self.k += 1
        self.clock.now = self.k
        if self.k >= self.n_steps:
            self.running = False

    def run_to_end(self) -> None:
        """Step until the end of the window."""
        while self.k < self.n_steps:
            self.step()

    def start_state(self) -> dict[str, np.ndarray]:
        """Device states at the start of the reported window (the end of the warm-up)."""
        first = self.window.n_warmup_steps - 1
        f = self.fleet
        s0 = HouseholdState.initial(f)
        initial = {
            "t_in_c": f.setpoint_c,
            "ev_soc_kwh": f.ev_soc0_kwh,
            "bat_soc_kwh": f.bat_soc0_kwh,
            "e_tank_kwh": s0.e_tank_kwh,
        }
        return {
            name: (self.log[name][first] if first >= 0 else value).copy()
            for name, value in initial.items()
        }

    def outcome(self) -> Outcome:
        """The simulated result, for scoring (the truth)."""
        return Outcome(
            self.log,
            self.exo.trips,
            self.window.report,
            self.start_state(),
            self.window.n_warmup_steps,
            self.inputs.p_other_kw.sum(axis=1),
        )

    def contract_kpis(self) -> dict[str, Any]:
        """The contract's KPIs, measured on the simulated result."""
        return self.contract.kpis(self.outcome())

    def household_kpis(self, service: Any) -> dict[str, Any]:
        """The household KPIs of the reported steps (:func:`twin.kpi.household_kpis`)."""
        o = self.outcome()
        log = {name: values[o.report] for name, values in self.log.items()}
        return household_kpis(log, self.fleet, o.reported_trips, o.start_state, service)
