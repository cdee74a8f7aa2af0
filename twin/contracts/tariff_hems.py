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

**Not every household automates.** Each household has a response type
(:data:`twin.fleet.RESPONSE_TYPES`, drawn from the scenario's ``response`` shares;
``contract.automation_share`` and ``contract.response_rest`` override them for a study), and
only the fully automated ones plan as above. The others read the tariff as people do, from its
mean day (:func:`twin.tariffs.cheap_block`: the night's cheap block and the dear block):

* ``timer``: the charger starts at the cheap block's start, or at a time of the owner's own
  after it (``Fleet.timer_delay_h``), and charges until the block ends (for at least
  :data:`TIMER_MIN_WINDOW_H`); the thermostat sets back by ``Fleet.timer_setback_k`` in the
  dear block (the heat pump recovers when it ends);
* ``manual``: on a share of days (``Fleet.manual_shift_share``) the owner delays the EV's
  charging to its habitual time after the block starts (``Fleet.manual_delay_h`` ±
  :data:`MANUAL_JITTER_H`, drawn per day), on the other days it charges on arrival;
* ``none``: as under a firm connection.

A timer or a manual responder whose car is below its reserve charges at once. A tariff with no
cheap block (a flat energy price: the capacity tariff) leaves timers and manual responders
with nothing to aim at: they behave as ``none``.

**Random delay.** The chargers of automated and timer households apply a random delay at the
start of every charging session, uniform from 0 to ``contract.random_delay_max_s`` (600 s by
default, to the nearest second): the default of the Electric Vehicles (Smart Charge Points)
Regulations 2021 (Great Britain, SI 2021/1467, reg. 11: "at each relevant time it operates
with a random delay of up to 600 seconds", the charge point must be capable of up to 1800 s).
A delay ``d`` takes ``d`` seconds of the session's first 15-minute steps at zero power (the
step's mean power is cut by the delayed share of it). Changes of an ongoing session's power
(the regulation's other "relevant time") are not delayed.
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
from twin.devices.thermal import heat_to_reach
from twin.errors import TwinError
from twin.fleet import (
    RESPONSE_AUTO,
    RESPONSE_MANUAL,
    RESPONSE_TIMER,
    RESPONSE_TYPES,
    Fleet,
    response_codes,
)
from twin.forecast import horizon_index
from twin.optim.devices import device_inputs, ev_guards
from twin.optim.options import SolverOptions
from twin.tariffs import CheapBlock, cheap_block
from twin.timegrid import DT_H, STEPS_PER_DAY, STEPS_PER_HOUR
from twin.view import FeederView, Outcome

if TYPE_CHECKING:
    from twin.optim.cost_hems import CostPlan, CostWeights
    from twin.tariffs import Tariff

log = logging.getLogger("twin.hems")

#: Calendar days of each month of the (non-leap) reference year: a monthly capacity charge
#: costs ``rate per day × days of the month`` per kW of that month's peak.
DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=float)
#: A timer (or a manual responder's delayed start) lets the car charge until the cheap block
#: ends, but for at least this long after it starts (assumption: a start time set late in a
#: short block still lets the car charge overnight).
TIMER_MIN_WINDOW_H = 6.0
#: A manual responder starts the delayed charge at its habitual time ± this (uniform, per
#: day; assumption).
MANUAL_JITTER_H = 0.5
#: Seconds in a simulation step.
STEP_S = DT_H * 3600.0
#: ``contract.response_rest``: what the households that are not fully automated do when
#: ``contract.automation_share`` is set: the scenario's mix of the other types, or all one type.
RESPONSE_REST = ("scenario", "none", "timer", "manual")


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
    automation_share: float | None = None
    response_rest: str = "scenario"
    random_delay_max_s: float = 600.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.horizon_h > 7 * 24:
            raise _bad("horizon_h", self.horizon_h, "give at most a week (168 h)")
        if self.automation_share is not None and not 0.0 <= self.automation_share <= 1.0:
            raise _bad("automation_share", self.automation_share, "give a share from 0 to 1")
        if self.response_rest not in RESPONSE_REST:
            raise _bad(
                "response_rest", self.response_rest, f"use one of {', '.join(RESPONSE_REST)}"
            )
        if not 0.0 <= self.random_delay_max_s <= 7200.0:
            raise _bad("random_delay_max_s", self.random_delay_max_s, "give seconds from 0 to 7200")

    def responses(self, fleet: Fleet) -> np.ndarray:
        """``(n,)`` each household's response code: the fleet's (the scenario's shares), or,
        with ``automation_share`` set (or ``response_rest`` not ``scenario``), the same
        ranking cut at these shares: the first ``automation_share`` of it fully automated, the
        rest split as ``response_rest`` says (``scenario``: the scenario's timers, manual and
        non-responders in their proportions)."""
        base = fleet.response_or_auto()
        if self.automation_share is None and self.response_rest == "scenario":
            return base
        n = fleet.n
        pos = fleet.response_position if fleet.response_position is not None else np.arange(n)
        a = float(np.mean(base == RESPONSE_AUTO))
        auto = a if self.automation_share is None else float(self.automation_share)
        rest = 1.0 - auto
        if self.response_rest == "scenario":
            other = 1.0 - a
            t = float(np.mean(base == RESPONSE_TIMER))
            m = float(np.mean(base == RESPONSE_MANUAL))
            timer, manual = (t * rest / other, m * rest / other) if other > 0 else (0.0, 0.0)
        else:
            timer = rest if self.response_rest == "timer" else 0.0
            manual = rest if self.response_rest == "manual" else 0.0
        return response_codes(pos, auto, timer, manual)


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
        self.response = terms.responses(f)
        self.hh = np.flatnonzero((f.has_hp | has_ev | has_bat) & (self.response == RESPONSE_AUTO))
        self._setup_responders(f, has_ev, view.n_steps)
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

    def _setup_responders(self, f: Fleet, has_ev: np.ndarray, n_steps: int) -> None:
        """Timers, manual responders and the chargers' random delay (module docstring)."""
        resp, terms = self.response, self.terms
        block = cheap_block(self.tariff.import_eur_per_kwh)
        self.block: CheapBlock = block
        timer, manual = resp == RESPONSE_TIMER, resp == RESPONSE_MANUAL
        self._timer_hp = np.flatnonzero(timer & f.has_hp)
        zero = np.zeros(f.n)
        self._setback_k = (f.timer_setback_k if f.timer_setback_k is not None else zero)[
            self._timer_hp
        ]
        self._timer_ev = np.flatnonzero(timer & has_ev) if block.exists else np.zeros(0, int)
        self._manual_ev = np.flatnonzero(manual & has_ev) if block.exists else np.zeros(0, int)
        self._reserve_kwh = terms.ev_reserve_km * f.ev_kwh_per_km
        min_steps = int(round(TIMER_MIN_WINDOW_H * STEPS_PER_HOUR))
        delay_h = f.timer_delay_h if f.timer_delay_h is not None else zero
        start = np.round(delay_h[self._timer_ev] * STEPS_PER_HOUR).astype(int)
        self._timer_start = np.minimum(start, STEPS_PER_DAY - 1)
        self._timer_end = np.minimum(np.maximum(block.length, start + min_steps), STEPS_PER_DAY)
        # manual responders: which days they shift and when they start, one draw per block
        man_rng, self._delay_rng = self.view.draws.spawn(2)
        n_windows = n_steps // STEPS_PER_DAY + 3
        m = self._manual_ev
        share = f.manual_shift_share if f.manual_shift_share is not None else zero
        habit = f.manual_delay_h if f.manual_delay_h is not None else zero
        self._manual_shift = man_rng.random((n_windows, len(m))) < share[m]
        jitter = man_rng.uniform(-MANUAL_JITTER_H, MANUAL_JITTER_H, (n_windows, len(m)))
        start = np.round(np.maximum(habit[m] + jitter, 0.0) * STEPS_PER_HOUR).astype(int)
        self._manual_start = np.minimum(start, STEPS_PER_DAY - 1)
        self._manual_end = np.minimum(np.maximum(block.length, start + min_steps), STEPS_PER_DAY)
        # the random delay: chargers of the automated and timer households
        self._delay_ev = np.flatnonzero(((resp == RESPONSE_AUTO) | timer) & has_ev)
        self._ev_on = np.zeros(f.n, bool)
        self._forced = np.zeros(f.n, bool)  # a guard raised the request: no delay (override)
        self._delay_left_s = np.zeros(f.n)
        #: the delay drawn at each session start (s; NaN elsewhere), simulated steps x households
        self.ev_delay_s = np.full((n_steps, f.n), np.nan, dtype=np.float32)

    def _responders(self, k: int, x: Any, firm: Controls) -> Controls:
        """Every household's requests as if it were not fully automated: timers, manual
        responders, the rest firm (the automated ones' entries are overwritten by their plan)."""
        h = self.view.households
        f, s = h.devices, h.state
        q_heat = firm.q_heat_kw
        p_ev = f.ev_p_max_kw.copy()
        step = k % STEPS_PER_DAY
        g = self._timer_hp
        if len(g) and self.block.dear[step]:
            q_heat = q_heat.copy()
            q_heat[g] = heat_to_reach(
                f.setpoint_c[g] - self._setback_k,
                s.t_in_c[g],
                x.t_out_c,
                x.q_gain_kw[g],
                f.r_k_per_kw[g],
                f.a_step[g],
            )
        b = self.block
        if b.exists and (len(self._timer_ev) or len(self._manual_ev)):
            phase = b.phase(k)
            soc = s.ev_soc_kwh - x.trip_kwh
            low = soc < self._reserve_kwh
            e = self._timer_ev
            on = (phase >= self._timer_start) & (phase < self._timer_end)
            p_ev[e] = np.where(on | low[e], f.ev_p_max_kw[e], 0.0)
            e = self._manual_ev
            if len(e):
                # the block that started last (0: before the simulation began) and the next
                w = min((k - b.start) // STEPS_PER_DAY + 1, len(self._manual_shift) - 2)
                inside = phase < self._manual_end[w]
                shifted = np.where(inside, self._manual_shift[w], self._manual_shift[w + 1])
                on = ~shifted | (inside & (phase >= self._manual_start[w]))
                p_ev[e] = np.where(on | low[e], f.ev_p_max_kw[e], 0.0)
        return Controls(q_heat_kw=q_heat, p_ev_kw=p_ev, p_bat_kw=None)

    def _random_delay(self, k: int, p_ev: np.ndarray, home: np.ndarray) -> np.ndarray:
        """Apply the chargers' random delay at the start of each charging session."""
        e = self._delay_ev
        max_s = self.terms.random_delay_max_s
        if not len(e) or max_s <= 0:
            return p_ev
        req = (p_ev[e] > 1e-9) & home[e]
        forced = self._forced[e]
        self._forced[:] = False
        start = req & ~self._ev_on[e] & ~forced
        if start.any():
            d = self._delay_rng.integers(0, int(round(max_s)) + 1, int(start.sum()))
            self._delay_left_s[e[start]] = d
            self.ev_delay_s[k, e[start]] = d
        left = np.where(forced, 0.0, self._delay_left_s[e])
        frac = np.clip(1.0 - left / STEP_S, 0.0, 1.0)
        out = p_ev.copy()
        out[e] = np.where(req, p_ev[e] * frac, p_ev[e])
        self._delay_left_s[e] = np.where(req, np.maximum(left - STEP_S, 0.0), 0.0)
        self._ev_on[e] = req
        return out

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
        need, after = ev_guards(dev, exo.trips, k0, hz.n_steps)
        net = inp.p_inflex_kw + plan.devices.p_flex_kw
        self.plan = _Plan(k0, plan, net, need, after)

    # ------------------------------------------------------------------------------------------
    # households
    # ------------------------------------------------------------------------------------------
    def dispatch(self, k: int) -> Controls:
        h = self.view.households
        f, s = h.devices, h.state
        x = h.present(k)
        day = self.days.at(k, s.t_in_c, self._heat_of, x)  # every step: the swing rule's record
        firm = firm_controls(f, s.t_in_c, x.t_out_c, x.q_gain_kw)
        base = self._responders(k, x, firm)
        if self.hems is not None and self.terms.is_replan_step(k, self.view.n_warmup_steps):
            t0 = time.perf_counter()
            self.replan(k)
            self.stats.replan_s += time.perf_counter() - t0
        plan = self.plan
        if plan is None or k - plan.k0 >= self.hz.n_steps:
            if self.hems is not None:
                self.fallback[k] = True
            ctl = base
        else:
            t0 = time.perf_counter()
            ctl = self._follow(k, x, plan, base, day)
            self.stats.dispatch_s += time.perf_counter() - t0
        ctl.p_ev_kw = self._random_delay(k, ctl.p_ev_kw, x.home)
        return ctl

    def _follow(
        self, k: int, x: Any, plan: _Plan, base: Controls, day: tuple[np.ndarray, ...]
    ) -> Controls:
        """Carry the plan out at step ``k``, with the service guards (``base``: the requests
        of the households that do not plan; ``day``: today's extremes,
        :meth:`DayExtremes.at` of step ``k``, which a re-plan at ``k`` leaves as they are)."""
        h, c = self.view.households, self.c
        f, s = h.devices, h.state
        o = k - plan.k0
        j = int(self.hz.period_of_step[o])
        pl = plan.plan.devices
        n = f.n
        q_heat = base.q_heat_kw.copy()
        q_hp_max = np.full(n, np.inf)
        p_ev = base.p_ev_kw.copy()
        p_ev[self.hh] = 0.0
        p_bat = np.full(n, np.nan)  # self-consumption where no plan holds the battery
        p_bat[self.hh] = 0.0

        # heat pumps: the planned power (a hybrid's boiler its planned heat), never below the floor
        heat = follow_heat_plan(
            c,
            s.t_in_c,
            x,
            pl.p_hp_kw[:, j],
            pl.q_boiler_kw[:, j],
            day,
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
        p_ev[c.g_ev], guard = follow_ev_plan(
            c, s.ev_soc_kwh, x, pl.p_ev_kw[:, j], plan.ev_need_kwh[:, o], plan.ev_home_after[:, o]
        )
        # the guard keeps the owner's deadline: it overrides the charger's random delay
        self._forced[:] = False
        self._forced[c.g_ev] = guard > pl.p_ev_kw[:, j] + 1e-9

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
    def household_table(self) -> dict[str, np.ndarray]:
        """Each household's response type (:data:`twin.fleet.RESPONSE_TYPES`)."""
        return {"response": np.asarray(RESPONSE_TYPES, dtype=object)[self.response]}

    def timeseries(self) -> dict[str, np.ndarray]:
        """Each household's planned grid exchange (kW; NaN without a plan or devices)."""
        return {"hems_planned_net_kw": self.planned_net_kw}

    def kpis(self, outcome: Outcome) -> dict[str, Any]:
        st, rep = self.stats, self.view.window.report
        out: dict[str, Any] = {
            "hems_tariff": self.tariff.name,
            "hems_households_planning": len(self.hh),
            **{
                f"response_households_{name}": int((self.response == code).sum())
                for code, name in enumerate(RESPONSE_TYPES)
            },
            "response_cheap_block_start_h": (
                self.block.start / STEPS_PER_HOUR if self.block.exists else None
            ),
            "response_cheap_block_h": self.block.length / STEPS_PER_HOUR,
            "ev_random_delay_max_s": self.terms.random_delay_max_s,
            "ev_random_delay_sessions": int(np.isfinite(self.ev_delay_s[rep]).sum()),
            "ev_random_delay_mean_s": (
                round(float(np.nanmean(self.ev_delay_s[rep])), 3)
                if np.isfinite(self.ev_delay_s[rep]).any()
                else 0.0
            ),
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
