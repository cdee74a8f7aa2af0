"""Cost-minimising HEMS under a tariff: time-of-use, dynamic or capacity (implicit flexibility).

Nobody allocates anything: each household's HEMS plans its heat pump, EV and battery against
**its own** bill under the run's tariff, independently of the other households and of the
feeder. The price is the only signal, so households that see the same prices tend to move
together (herding): that is what this contract kind is in the comparison for.

One class, registered three times (``contract=tou``, ``dynamic``, ``capacity``); each config
selects the matching tariff (``twin/configs/contract/<name>.yaml``: ``override /tariff: <name>``),
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
   planned power but never letting the indoor temperature fall below the band; the hot-water
   tank charged as planned but never below the level its own thermostat would keep; the EV
   at its planned power (a bidirectional car may discharge into the house or the grid when
   the plan says so) but never falling behind its deadline or below its reserves; the
   battery keeps the household's grid exchange at the planned value (it absorbs the base
   load's variation inside a plan period and what the guards add).

A failed solve falls back to firm behaviour until the next re-plan (reported in the KPIs).
Households without a controllable device behave as under a firm connection.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.contracts.base import Contract
from twin.contracts.hems import (
    DETAIL_MAX,
    DayExtremes,
    HemsDevices,
    PlanningTerms,
    _bad,
    follow_ev_plan,
    follow_heat_plan,
    follow_tank_plan,
    service_misses,
)
from twin.devices.household import Controls, firm_controls
from twin.errors import TwinError
from twin.forecast import horizon_index
from twin.optim.devices import device_inputs, ev_guards
from twin.optim.options import SolverOptions
from twin.timegrid import STEPS_PER_DAY
from twin.view import FeederView, Outcome

if TYPE_CHECKING:
    from twin.optim.cost_hems import CostPlan, CostWeights
    from twin.tariffs import Tariff

log = logging.getLogger("twin.hems")

#: Calendar days of each month of the (non-leap) reference year: a monthly capacity charge
#: costs ``rate per day × days of the month`` per kW of that month's peak.
DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)


@dataclass(frozen=True, kw_only=True)
class HemsTerms(PlanningTerms):
    """Settings of the tariff HEMS (``twin/configs/contract/{tou,dynamic,capacity}.yaml``): the
    tariff planned against, plus the service levels and planning cadence of
    :class:`~twin.contracts.hems.PlanningTerms` (horizon 36 h by default: from noon a plan sees
    the next day's prices and the 06:00 deadline after).

    Attributes
    ----------
    tariff : str
        The tariff the HEMSs plan against; the run's tariff must be this one.
    """

    tariff: str
    horizon_h: float = 36.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.horizon_h > 7 * 24:
            raise _bad("horizon_h", self.horizon_h, "give at most a week (168 h)")


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
    """

    def __init__(
        self,
        name: str,
        terms: HemsTerms,
        weights: CostWeights | None = None,
        solver: SolverOptions | None = None,
    ) -> None:
        from twin.optim.cost_hems import CostWeights

        self.name = name
        self.terms = terms
        self.weights = weights or CostWeights()
        self.solver = solver or SolverOptions()

    @classmethod
    def from_config(cls, cfg: Any) -> TariffHemsContract:
        from twin.optim.cost_hems import CostWeights

        get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: d)
        name = str(get("name"))
        try:
            weights = CostWeights.from_config(get("weights", None))
        except ValueError as err:
            raise TwinError(f"contract.weights: {err}") from None
        return cls(
            name,
            HemsTerms.from_config(cfg, tariff=str(get("tariff", None) or name)),
            weights,
            SolverOptions.from_config(get("solver", None) or {}),
        )

    # ------------------------------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------------------------------
    def setup(self, view: FeederView) -> None:
        from twin.optim.cost_hems import CostHems

        t0 = time.perf_counter()
        super().setup(view)
        terms, f = self.terms, view.households.devices
        tariff: Tariff | None = view.tariff
        if tariff is None:
            raise TwinError(
                f"contract={self.name} plans against the run's tariff, but the run has none: "
                "give the study inputs a tariff (twin.inputs.build_inputs does)"
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
        self.dev = terms.device_set(f, self.hh)
        self.c = HemsDevices.build(f, self.dev)
        self.days = DayExtremes(self.c)
        n_steps = view.n_steps
        # capacity charge: billing-period labels of every simulated step, slots per horizon
        self._capacity = tariff.capacity_eur_per_kw_per_day > 0
        n_slots = 0
        if self._capacity:
            if tariff.capacity_period_days == 1:
                self._labels = np.arange(n_steps) // STEPS_PER_DAY
                self._label_days = np.ones(self._labels.max() + 1)
                n_slots = int(np.ceil(self.hz.n_steps / STEPS_PER_DAY)) + 1
            else:
                self._labels = np.asarray(tariff.months) - 1
                self._label_days = DAYS_IN_MONTH
                n_slots = 2 + self.hz.n_steps // (28 * STEPS_PER_DAY)
            self._metered = np.zeros((self._labels.max() + 1, f.n))
            self._metered_until = 0
        self.hems = (
            CostHems(self.dev, self.hz, self.weights, self.solver, capacity_slots=n_slots)
            if len(self.hh)
            else None
        )
        self.plan: _Plan | None = None
        self.fallback = np.zeros(n_steps, bool)
        self.planned_net_kw = np.full((n_steps, f.n), np.nan)
        self.stats = _Stats()
        self.setup_s = time.perf_counter() - t0

    # ------------------------------------------------------------------------------------------
    # planning
    # ------------------------------------------------------------------------------------------
    def _prices(self, k0: int, exo: Any) -> Any:
        from twin.optim.cost_hems import CapacityPrices, PriceInputs, ev_need_per_period

        hz, dev, tariff = self.hz, self.dev, self.tariff
        rows = horizon_index(k0, hz.n_steps, self.view.n_steps)
        vat = 1.0 + tariff.vat
        prices = PriceInputs(
            import_eur_per_kwh=hz.mean(tariff.import_eur_per_kwh[rows]),
            export_eur_per_kwh=hz.mean(tariff.export_eur_per_kwh[rows]),
            ev_need_kwh=ev_need_per_period(dev, hz, exo, k0),
        )
        if self._capacity:
            self._meter(k0)
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

    def _meter(self, k0: int) -> None:
        """Each household's import peak per billing period, metered up to step ``k0``."""
        a = self._metered_until
        if k0 > a:
            p = self.view.households.metered_net_kw(a, k0)
            np.maximum.at(self._metered, self._labels[a:k0], p)
            self._metered_until = k0

    def _heat_of(self, k_start: int, k_end: int) -> np.ndarray:
        """The heat each heat-pump home's heating reported (its own meter)."""
        return self.view.households.metered_heat_kw(k_start, k_end, self.c.g_hp)

    def replan(self, k0: int) -> None:
        """Forecast, price and solve every HEMS's plan from step ``k0``."""
        hz, dev, st = self.hz, self.dev, self.stats
        h, hh = self.view.households, self.hh
        s = h.state
        exo = h.forecaster.exogenous(k0, hz.n_steps + STEPS_PER_DAY, hh)
        inp = device_inputs(
            dev,
            hz,
            exo,
            s.t_in_c[hh],
            s.ev_soc_kwh[hh],
            s.bat_soc_kwh[hh],
            k0,
            self.days.at(k0, s.t_in_c, self._heat_of),
            e_tank_kwh=None if s.e_tank_kwh is None else s.e_tank_kwh[hh],
        )
        prices = self._prices(k0, exo)
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
        need, after = ev_guards(dev, exo, k0, hz.n_steps)
        net = inp.p_inflex_kw + plan.devices.p_flex_kw
        self.plan = _Plan(k0, plan, net, need, after)

    # ------------------------------------------------------------------------------------------
    # households
    # ------------------------------------------------------------------------------------------
    def dispatch(self, k: int) -> Controls:
        h = self.view.households
        f, s = h.devices, h.state
        x = h.present(k)
        self.days.at(k, s.t_in_c, self._heat_of, x)  # every step: the swing rule's record
        firm = firm_controls(f, s.t_in_c, x.t_out_c, x.q_gain_kw)
        if self.hems is not None and self.terms.is_replan_step(k, self.view.n_warmup_steps):
            t0 = time.perf_counter()
            self.replan(k)
            self.stats.replan_s += time.perf_counter() - t0
        plan = self.plan
        if plan is None or k - plan.k0 >= self.hz.n_steps:
            if self.hems is not None:
                self.fallback[k] = True
            return Controls(q_heat_kw=firm.q_heat_kw, p_ev_kw=f.ev_p_max_kw.copy())
        t0 = time.perf_counter()
        ctl = self._follow(k, x, plan, firm.q_heat_kw)
        self.stats.dispatch_s += time.perf_counter() - t0
        return ctl

    def _follow(self, k: int, x: Any, plan: _Plan, q_heat: np.ndarray) -> Controls:
        """Carry the plan out at step ``k``, with the service guards."""
        h, c = self.view.households, self.c
        f, s = h.devices, h.state
        o = k - plan.k0
        j = int(self.hz.period_of_step[o])
        pl = plan.plan.devices
        n = f.n
        q_hp_max = np.full(n, np.inf)
        p_ev = np.zeros(n)
        p_bat = np.zeros(n)

        # heat pumps: the planned power (a hybrid's boiler its planned heat), never below the floor
        heat = follow_heat_plan(
            c,
            s.t_in_c,
            x,
            pl.p_hp_kw[:, j],
            pl.q_boiler_kw[:, j],
            self.days.at(k, s.t_in_c, self._heat_of, x),
        )
        g = c.g_hp
        q_heat[g] = heat.q_req_kw
        q_hp_max[g] = np.where(c.hybrid, heat.q_cap_kw, np.inf)
        # hot-water tanks: the planned charging, never below the thermostat's level; space heat
        # gets what the tank leaves of the heat pump
        q_dhw = np.full(n, np.nan)
        tank = follow_tank_plan(c, s.e_tank_kwh, x, pl.p_dhw_kw[:, j], heat.q_guard_kw)
        q_dhw[c.g_tk] = tank.q_req_kw
        q_sh_cap = np.where(c.hybrid, heat.heat(c, heat.q_cap_kw / heat.cop), c.qmax_hp)
        q_sh_cap[c.tk_hp] -= tank.q_req_kw
        full = np.zeros(len(g), bool)  # the heat pump charges the tank: full output
        full[c.tk_hp] = tank.q_req_kw > 0
        p_sh = heat.electric(c, np.minimum(heat.q_req_kw, q_sh_cap), full)

        # EVs: the planned power, never behind the deadline
        p_ev[c.g_ev], _ = follow_ev_plan(
            c, s.ev_soc_kwh, x, pl.p_ev_kw[:, j], plan.ev_need_kwh[:, o], plan.ev_home_after[:, o]
        )

        # batteries: hold the household's grid exchange at the planned value
        b = c.g_bat
        rest = x.p_base_kw - x.p_pv_kw
        rest[g] += p_sh
        rest[c.g_tk] += tank.p_kw
        rest += p_ev
        p_bat[b] = plan.net_kw[self.dev.bat, j] - rest[b]
        self.planned_net_kw[k, self.hh] = plan.net_kw[:, j]
        return Controls(
            q_heat_kw=q_heat, p_ev_kw=p_ev, p_bat_kw=p_bat, q_hp_max_kw=q_hp_max, q_dhw_kw=q_dhw
        )

    # ------------------------------------------------------------------------------------------
    # results
    # ------------------------------------------------------------------------------------------
    def timeseries(self) -> dict[str, np.ndarray]:
        """Each household's planned grid exchange (kW; NaN without a plan or devices)."""
        return {"hems_planned_net_kw": self.planned_net_kw}

    def kpis(self, outcome: Outcome) -> dict[str, Any]:
        st, rep = self.stats, self.view.window.report
        out: dict[str, Any] = {
            "hems_tariff": self.tariff.name,
            "hems_households_planning": len(self.hh),
            "hems_horizon_h": self.terms.horizon_h,
            "hems_replan_every_h": self.terms.replan_every_h,
            "hems_replans": st.replans,
            "hems_replans_failed": st.failed,
            "hems_failures": st.failures[:DETAIL_MAX],
            "hems_fallback_steps": int(self.fallback[rep].sum()),
            "hems_unreachable_service_levels": st.relaxations,
            "hems_planned_below_band_kh": round(st.planned_below_band_kh, 6),
            "hems_planned_ev_short_kwh": round(st.planned_ev_short_kwh, 6),
        }
        f = self.view.households.devices
        miss = service_misses(
            f, outcome, np.ones(f.n, bool), self.terms.service_levels(), self.name
        )
        out["hems_comfort_households_missed"] = miss.comfort_households
        out["hems_ev_deadlines_missed"] = miss.ev_deadlines
        out["hems_ev_reserve_departures_missed"] = miss.ev_reserve_departures
        out["hems_hot_water_days_missed"] = miss.hot_water_days
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
