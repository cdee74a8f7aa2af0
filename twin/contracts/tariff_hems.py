"""Cost-minimising HEMS under a tariff: time-of-use, dynamic or capacity (implicit flexibility).

Nobody allocates anything: each household's HEMS plans its heat pump, EV and battery against
**its own** bill under the run's tariff, independently of the other households and of the
feeder. The price is the only signal, so households that see the same prices tend to move
together (herding): that is what this contract kind is in the comparison for.

One class, registered three times (``contract=tou``, ``dynamic``, ``capacity``); each config
selects the matching tariff (``configs/contract/<name>.yaml``: ``override /tariff: <name>``),
so the bills of the run are computed with the tariff the HEMSs planned against. The run's
tariff must be the one the contract names (``contract.tariff``); otherwise the run stops with
one line saying so.

Each re-plan (first at the start, then every ``replan_every_h`` from ``replan_at_h``
o'clock), for every household with a controllable device:

1. forecasts from :mod:`twin.forecast` (perfect foresight today): weather, base load, PV, the
   car's trips, and the tariff's prices over a rolling ``horizon_h`` horizon;
2. one LP (:class:`twin.optim.cost_hems.CostHems`, built once, re-solved warm through the
   persistent HiGHS interface): minimise the energy bill (+ the capacity charge on the
   household's own peak for the capacity tariff) with the comfort band and the EV range at
   the deadline as penalised soft constraints (the same service levels the performance
   contract guarantees);
3. every interval the HEMS carries the plan out with service guards: the heat pump at its
   planned power but never letting the indoor temperature fall below the band; the EV at its
   planned power but never falling behind its deadline; the battery keeps the household's
   grid exchange at the planned value (it absorbs the base load's variation inside a plan
   period and what the guards add).

A failed solve falls back to firm behaviour until the next re-plan (reported in the KPIs).
Households without a controllable device behave as under a firm connection.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.contracts.base import Contract
from twin.devices.ev import CHARGE_EFFICIENCY
from twin.devices.household import Controls
from twin.devices.thermal import heat_to_reach
from twin.errors import TwinError
from twin.forecast import Forecaster, PerfectForecaster, horizon_index
from twin.kpi import ev_deadline_shortfall_kwh
from twin.optim.devices import COMFORT_TOL_K, EV_TOL_KWH, DeviceSet, device_inputs, ev_guards
from twin.optim.horizon import Horizon
from twin.optim.options import SolverOptions
from twin.timegrid import DT_H, STEPS_PER_DAY, STEPS_PER_HOUR

if TYPE_CHECKING:
    from twin.model import FeederModel
    from twin.optim.cost_hems import CostPlan, CostWeights
    from twin.tariffs import Tariff

log = logging.getLogger("twin.hems")

#: Calendar days of each month of the (non-leap) reference year: a monthly capacity charge
#: costs ``rate per day × days of the month`` per kW of that month's peak.
DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)


@dataclass(frozen=True)
class HemsTerms:
    """Settings of the tariff HEMS (``configs/contract/{tou,dynamic,capacity}.yaml``).

    Attributes
    ----------
    tariff : str
        The tariff the HEMSs plan against; the run's tariff must be this one.
    comfort_band_k, preheat_k : float
        Comfort band below the setpoint (soft floor); allowed pre-heating above it.
    ev_range_km, ev_deadline_h : float
        EV range wanted at the deadline (soft).
    horizon_h, resolution_h, fine_h : float
        Rolling horizon, plan period length, optional leading 15-minute part.
    replan_every_h, replan_at_h : float
        Re-plan cadence and the hour of day it is anchored at (the first plan is made at the
        start).
    """

    tariff: str
    comfort_band_k: float = 1.0
    preheat_k: float = 1.0
    ev_range_km: float = 150.0
    ev_deadline_h: float = 6.0
    horizon_h: float = 36.0
    resolution_h: float = 1.0
    fine_h: float = 0.0
    replan_every_h: float = 24.0
    replan_at_h: float = 12.0

    def __post_init__(self) -> None:
        def bad(key: str, value: Any, want: str) -> TwinError:
            return TwinError(f"contract.{key}={value!r} is invalid: {want}")

        for key in ("horizon_h", "replan_every_h", "resolution_h"):
            v = getattr(self, key)
            if v <= 0 or abs(v * STEPS_PER_HOUR - round(v * STEPS_PER_HOUR)) > 1e-9:
                raise bad(key, v, "give a positive whole number of 15-minute steps (hours)")
        if self.replan_every_h > self.horizon_h:
            raise bad(
                "replan_every_h",
                self.replan_every_h,
                f"re-plan at least every horizon_h={self.horizon_h} h",
            )
        if not 0.0 <= self.replan_at_h < 24.0:
            raise bad("replan_at_h", self.replan_at_h, "give an hour of the day (0 to below 24)")
        if not 0.0 <= self.fine_h <= self.horizon_h:
            raise bad("fine_h", self.fine_h, "give hours from 0 to horizon_h")
        if self.comfort_band_k <= COMFORT_TOL_K:
            raise bad("comfort_band_k", self.comfort_band_k, f"give more than {COMFORT_TOL_K} K")
        if self.horizon_h > 7 * 24:
            raise bad("horizon_h", self.horizon_h, "give at most a week (168 h)")

    @classmethod
    def from_config(cls, cfg: Any) -> HemsTerms:
        names = {f.name for f in fields(cls)}
        return cls(**{k: cfg[k] for k in names if k in cfg})

    def horizon(self) -> Horizon:
        return Horizon.from_segments(
            [(self.fine_h, 0.25), (self.horizon_h - self.fine_h, self.resolution_h)]
        )

    def is_replan_step(self, k: int) -> bool:
        cadence = int(round(self.replan_every_h * STEPS_PER_HOUR))
        return k == 0 or (k - int(round(self.replan_at_h * STEPS_PER_HOUR))) % cadence == 0


@dataclass
class _Plan:
    """A re-plan as the HEMSs carry it out."""

    k0: int
    plan: CostPlan
    net_kw: np.ndarray  # (n, N) planned grid exchange per period
    ev_need_kwh: np.ndarray  # (n_ev, n_steps) energy due at the next deadline (0: none)
    ev_home_after: np.ndarray  # (n_ev, n_steps) home steps after this one before it


@dataclass
class _Stats:
    replans: int = 0
    failed: int = 0
    replan_s: float = 0.0
    dispatch_s: float = 0.0
    highs_s: float = 0.0
    iterations: int = 0
    relaxations: int = 0
    planned_below_band_kh: float = 0.0
    planned_ev_short_kwh: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)


class TariffHemsContract(Contract):
    """Each household's HEMS minimises its own bill under the run's tariff (module docstring).

    Parameters
    ----------
    name : str
        Contract name (``tou``, ``dynamic``, ``capacity``).
    terms : HemsTerms
        Service levels, horizon and the tariff planned against.
    weights : CostWeights, optional
        Money on comfort, gas, battery wear and ties.
    solver : SolverOptions, optional
        HiGHS settings.
    forecaster : Forecaster, optional
        What the HEMSs know about the future (perfect foresight by default).
    """

    def __init__(
        self,
        name: str,
        terms: HemsTerms,
        weights: CostWeights | None = None,
        solver: SolverOptions | None = None,
        forecaster: Forecaster | None = None,
    ) -> None:
        from twin.optim.cost_hems import CostWeights

        self.name = name
        self.terms = terms
        self.weights = weights or CostWeights()
        self.solver = solver or SolverOptions()
        self._forecaster = forecaster

    @classmethod
    def from_config(cls, cfg: Any) -> TariffHemsContract:
        from twin.optim.cost_hems import CostWeights

        get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: d)
        name = str(get("name"))
        values = dict(cfg)
        values.setdefault("tariff", name)
        try:
            weights = CostWeights.from_config(get("weights", None))
        except ValueError as err:
            raise TwinError(f"contract.weights: {err}") from None
        return cls(
            name,
            HemsTerms.from_config(values),
            weights,
            SolverOptions.from_config(get("solver", None) or {}),
        )

    # ------------------------------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------------------------------
    def setup(self, model: FeederModel) -> None:
        from twin.optim.cost_hems import CostHems

        t0 = time.perf_counter()
        terms, f = self.terms, model.fleet
        tariff: Tariff | None = model.inputs.tariff
        if tariff is None:
            raise TwinError(
                f"contract={self.name} plans against the run's tariff, but the run has none: "
                "give the study inputs a tariff (twin.pipeline.build_inputs does)"
            )
        if tariff.name != terms.tariff:
            raise TwinError(
                f"contract={self.name} plans against tariff={terms.tariff}, but the run uses "
                f"tariff={tariff.name}: drop the tariff= override (contract={self.name} selects "
                f"tariff={terms.tariff} itself), or set contract.tariff={tariff.name} to plan "
                "against it"
            )
        self.tariff = tariff
        has_ev = f.has_ev & (f.ev_capacity_kwh > 0)
        has_bat = f.has_battery & (f.bat_capacity_kwh > 0)
        self.hh = np.flatnonzero(f.has_hp | has_ev | has_bat)
        self.hz = terms.horizon()
        self.dev = DeviceSet.from_fleet(
            f,
            self.hh,
            terms.comfort_band_k,
            terms.ev_range_km,
            terms.ev_deadline_h,
            terms.preheat_k,
        )
        dev = self.dev
        self._g_hp, self._g_ev, self._g_bat = self.hh[dev.hp], self.hh[dev.ev], self.hh[dev.bat]
        self._floor_c = dev.setpoint_c - terms.comfort_band_k + 0.1 * COMFORT_TOL_K
        if self._forecaster is None:
            self._forecaster = PerfectForecaster(model)
        self.fc = self._forecaster
        # capacity charge: billing-period labels of every simulated step, slots per horizon
        self._capacity = tariff.capacity_eur_per_kw_per_day > 0
        n_slots = 0
        if self._capacity:
            if tariff.capacity_period_days == 1:
                self._labels = np.arange(model.n_steps) // STEPS_PER_DAY
                self._label_days = np.ones(self._labels.max() + 1)
                n_slots = int(np.ceil(self.hz.n_steps / STEPS_PER_DAY)) + 1
            else:
                self._labels = np.asarray(tariff.months) - 1
                self._label_days = DAYS_IN_MONTH
                n_slots = 2 + self.hz.n_steps // (28 * STEPS_PER_DAY)
            self._metered = np.zeros((self._labels.max() + 1, f.n))
            self._metered_until = 0
        self.hems = (
            CostHems(dev, self.hz, self.weights, self.solver, capacity_slots=n_slots)
            if len(self.hh)
            else None
        )
        self.plan: _Plan | None = None
        self.fallback = np.zeros(model.n_steps, bool)
        self.planned_net_kw = np.full((model.n_steps, f.n), np.nan)
        self.stats = _Stats()
        self.setup_s = time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------
    # planning
    # ------------------------------------------------------------------------------------------
    def _prices(self, model: FeederModel, k0: int, exo: Any) -> Any:
        from twin.optim.cost_hems import CapacityPrices, PriceInputs, ev_need_per_period

        hz, dev, tariff = self.hz, self.dev, self.tariff
        rows = horizon_index(k0, hz.n_steps, model.n_steps)
        vat = 1.0 + tariff.vat
        prices = PriceInputs(
            import_eur_per_kwh=hz.mean(tariff.import_eur_per_kwh[rows]),
            export_eur_per_kwh=hz.mean(tariff.export_eur_per_kwh[rows]),
            ev_need_kwh=ev_need_per_period(
                dev, hz, exo.trips.home[: hz.n_steps + 1, dev.ev], k0, STEPS_PER_DAY
            ),
        )
        if self._capacity:
            self._meter(model, k0)
            labels = self._labels[rows][hz.start_step]
            uniq = list(dict.fromkeys(labels.tolist()))
            if len(uniq) > self.hems.n_slots:
                raise RuntimeError(f"horizon meets {len(uniq)} billing periods, built for fewer")
            n_slots = self.hems.n_slots
            slot = np.array([uniq.index(lab) for lab in labels.tolist()])
            cost = np.zeros(n_slots)
            cost[: len(uniq)] = tariff.capacity_eur_per_kw_per_day * self._label_days[uniq] * vat
            floor = np.full((dev.n, n_slots), tariff.capacity_min_kw)
            floor[:, : len(uniq)] = np.maximum(self._metered[uniq][:, self.hh].T, floor[:, :1])
            base = (exo.p_base_kw - exo.p_pv_kw)[: hz.n_steps]
            prices.capacity = CapacityPrices(
                slot_of_period=slot,
                eur_per_kw=cost,
                floor_kw=floor,
                inflex_max_kw=np.maximum.reduceat(base, hz.start_step, axis=0).T,
            )
        return prices

    def _meter(self, model: FeederModel, k0: int) -> None:
        """Each household's import peak per billing period, metered up to step ``k0``."""
        a = self._metered_until
        if k0 > a:
            p = model.log["p_net_kw"][a:k0]
            np.maximum.at(self._metered, self._labels[a:k0], p)
            self._metered_until = k0

    def replan(self, model: FeederModel, k0: int) -> None:
        """Forecast, price and solve every HEMS's plan from step ``k0``."""
        hz, dev, st, s = self.hz, self.dev, self.stats, model.state
        hh = self.hh
        exo = self.fc.exogenous(k0, hz.n_steps + STEPS_PER_DAY, hh)
        inp = device_inputs(dev, hz, exo, s.t_in_c[hh], s.ev_soc_kwh[hh], s.bat_soc_kwh[hh], k0)
        prices = self._prices(model, k0, exo)
        res, plan = self.hems.solve(inp, prices)
        st.replans += 1
        st.highs_s += res.highs_s
        st.iterations += res.iterations
        st.relaxations += len(inp.relaxations)
        if plan is None:
            st.failed += 1
            st.failures.append({"step": k0, "status": res.status})
            self.plan = None
            log.warning(
                "%s: HEMS re-plan at step %d failed (%s): households fall back to firm "
                "behaviour until the next re-plan",
                self.name,
                k0,
                res.status,
            )
            return
        # what is carried out before the next re-plan counts (the rest is re-planned)
        st.planned_below_band_kh += float(plan.below_band_kh.sum())
        st.planned_ev_short_kwh += float(plan.ev_short_kwh.sum())
        need, after = ev_guards(dev, exo.trips.home[:, dev.ev], k0, hz.n_steps)
        net = inp.p_inflex_kw + plan.devices.p_flex_kw
        self.plan = _Plan(k0, plan, net, need, after)

    # ------------------------------------------------------------------------------------------
    # households
    # ------------------------------------------------------------------------------------------
    def dispatch(self, model: FeederModel, k: int) -> Controls:
        f, s, x = model.fleet, model.state, model.exo
        q_heat = heat_to_reach(
            f.setpoint_c, s.t_in_c, x.t_out_c[k], x.q_gain_kw[k], f.r_k_per_kw, f.a_step
        )
        if self.hems is not None and self.terms.is_replan_step(k):
            t0 = time.perf_counter()
            self.replan(model, k)
            self.stats.replan_s += time.perf_counter() - t0
        plan = self.plan
        if plan is None or k - plan.k0 >= self.hz.n_steps:
            if self.hems is not None:
                self.fallback[k] = True
            return Controls(q_heat_kw=q_heat, p_ev_kw=f.ev_p_max_kw.copy())
        t0 = time.perf_counter()
        ctl = self._follow(model, k, plan, q_heat)
        self.stats.dispatch_s += time.perf_counter() - t0
        return ctl

    def _follow(self, model: FeederModel, k: int, plan: _Plan, q_heat: np.ndarray) -> Controls:
        """Carry the plan out at step ``k``, with the service guards."""
        f, s, x, dev = model.fleet, model.state, model.exo, self.dev
        o = k - plan.k0
        j = int(self.hz.period_of_step[o])
        pl = plan.plan.devices
        n = f.n
        q_hp_max = np.full(n, np.inf)
        p_ev = np.zeros(n)
        p_bat = np.zeros(n)

        # heat pumps: the planned power (a hybrid's boiler its planned heat), never below the floor
        g = self._g_hp
        cop = x.cop[k, g]
        q_guard = np.maximum(
            heat_to_reach(
                self._floor_c,
                s.t_in_c[g],
                x.t_out_c[k],
                x.q_gain_kw[k, g],
                f.r_k_per_kw[g],
                f.a_step[g],
            ),
            0.0,
        )
        q_hp_plan = pl.p_hp_kw[:, j] * cop
        q_req = np.maximum(q_hp_plan + pl.q_boiler_kw[:, j], q_guard)
        qmax = f.hp_q_max_kw[g]
        q_cap = np.where(dev.hybrid, q_hp_plan, qmax)
        p_hp = np.minimum(q_req, np.minimum(q_cap, qmax)) / cop
        q_heat[g] = q_req
        q_hp_max[g] = np.where(dev.hybrid, q_cap, np.inf)

        # EVs: the planned power, never behind the deadline
        e = self._g_ev
        step_kwh = CHARGE_EFFICIENCY * DT_H
        pmax, cap = f.ev_p_max_kw[e], f.ev_capacity_kwh[e]
        soc = np.maximum(s.ev_soc_kwh[e] - x.trips.trip_kwh[k, e], 0.0)
        room = np.minimum(pmax, np.maximum(cap - soc, 0.0) / step_kwh) * x.trips.home[k, e]
        need = plan.ev_need_kwh[:, o]
        behind = need + 0.5 * EV_TOL_KWH - soc - step_kwh * pmax * plan.ev_home_after[:, o]
        guard = np.where(need > 0, np.maximum(behind / step_kwh, 0.0), 0.0)
        p_ev[e] = np.minimum(np.maximum(pl.p_ev_kw[:, j], guard), room)

        # batteries: hold the household's grid exchange at the planned value
        b = self._g_bat
        rest = x.p_base_kw[k] - x.p_pv_kw[k]
        rest[g] += p_hp
        rest += p_ev
        p_bat[b] = plan.net_kw[dev.bat, j] - rest[b]
        self.planned_net_kw[k, self.hh] = plan.net_kw[:, j]
        return Controls(q_heat_kw=q_heat, p_ev_kw=p_ev, p_bat_kw=p_bat, q_hp_max_kw=q_hp_max)

    # ------------------------------------------------------------------------------------------
    # results
    # ------------------------------------------------------------------------------------------
    def timeseries(self, model: FeederModel) -> dict[str, np.ndarray]:
        """Each household's planned grid exchange (kW; NaN without a plan or devices)."""
        return {"hems_planned_net_kw": self.planned_net_kw}

    def kpis(self, model: FeederModel) -> dict[str, Any]:
        st, rep = self.stats, model.window.report
        out: dict[str, Any] = {
            "hems_tariff": self.tariff.name,
            "hems_households_planning": len(self.hh),
            "hems_horizon_h": self.terms.horizon_h,
            "hems_replan_every_h": self.terms.replan_every_h,
            "hems_replans": st.replans,
            "hems_replans_failed": st.failed,
            "hems_failures": st.failures[:50],
            "hems_fallback_steps": int(self.fallback[rep].sum()),
            "hems_unreachable_service_levels": st.relaxations,
            "hems_planned_below_band_kh": round(st.planned_below_band_kh, 6),
            "hems_planned_ev_short_kwh": round(st.planned_ev_short_kwh, 6),
        }
        out.update(self._service_report(model))
        lp = self.hems.lp if self.hems is not None else None
        out.update(
            {
                "hems_setup_s": round(self.setup_s, 4),
                "hems_build_s": round(self.hems.build_s + lp.set_instance_s, 4) if lp else 0.0,
                "hems_replan_s": round(st.replan_s, 4),
                "hems_dispatch_s": round(st.dispatch_s, 4),
                "hems_highs_s": round(st.highs_s, 4),
                "hems_simplex_iterations": st.iterations,
                "hems_lp_columns": lp.n_cols if lp else 0,
                "hems_lp_rows": lp.n_rows if lp else 0,
            }
        )
        return out

    def _service_report(self, model: FeederModel) -> dict[str, int]:
        """Service levels missed in the simulated result (households with a heat pump / EV)."""
        rep, f, lg = model.window.report, model.fleet, model.log
        floor = f.setpoint_c - self.terms.comfort_band_k
        cold = (lg["t_in_c"][rep] < floor - 1e-9) & f.has_hp
        short = ev_deadline_shortfall_kwh(
            lg["ev_soc_kwh"][rep],
            model.exo.trips.home[rep],
            f,
            self.terms.ev_range_km,
            self.terms.ev_deadline_h,
        )
        n_cold, n_short = int(cold.any(axis=0).sum()), int((short > 1e-6).sum())
        if n_cold or n_short:
            log.warning(
                "%s: service levels missed in the simulated result: %d household(s) below the "
                "comfort band, %d EV deadline(s) short",
                self.name,
                n_cold,
                n_short,
            )
        return {"hems_comfort_households_missed": n_cold, "hems_ev_deadlines_missed": n_short}
