"""Performance (service-level) contract: the DSO allocates capacity, comfort and EV range are
guaranteed (issue #4; E.DSO technology paper, Alliander case study).

A household that signs accepts that the DSO allocates its grid capacity interval by interval,
as a **capacity band** (an upper bound on its net import, kW), in exchange for a tariff discount
and guaranteed service levels: its indoor temperature never more than ``comfort_band_k`` below
its setpoint, its EV charged by ``ev_deadline_h`` for at least ``ev_range_km``. Households that
did not sign keep a firm connection (:class:`~twin.contracts.firm.FirmContract` behaviour).

Each re-plan (``replan_every_h``, first at the start, then at ``replan_at_h`` o'clock):

1. forecasts come from the :mod:`twin.forecast` component (the DSO never reads the simulation's
   inputs directly): weather, base load and PV of every household, the feeder's other loads,
   the firm behaviour of households that did not sign;
2. the DSO allocates (:mod:`twin.optim.allocation`) over a rolling horizon of ``horizon_h`` in
   periods of ``resolution_h`` (devices hold their power over a period; the feeder rows use
   each period's worst 15-minute step, so the plan holds at 15-minute resolution):

   * ``information: central`` — one LP with the device models of every signed household
     (heat pump in a 1R1C building, EV, battery) and the feeder's limits (transformer, and the
     cables and voltages that could bind, from the linear feeder model);
   * ``information: envelope`` — each HEMS sends only a flexibility envelope (min/max power
     and cumulative-energy bounds per period, :mod:`twin.optim.envelope`); the DSO's LP sees
     envelopes only and returns each household's allocation; each HEMS then plans its own
     devices inside its band. A HEMS that cannot follow its allocation (the envelope format
     cannot say which device may use which energy) answers with the load profile it can
     follow, and the DSO allocates again (``envelope_rounds``);

   objective, by priority: feeder limits (penalised slack, the last resort) ≫ band excess
   (HEMS) ≫ the peak above the peak already realised ≫ comfort preference ≫ energy terms
   (:mod:`twin.optim.options`); the service levels are hard bounds, relaxed only where the
   devices physically cannot meet them (reported);
3. bands, per 15-minute interval: every signed household gets its own forecast base load minus
   PV, its allocated controllable load, and an equal share of the capacity left under the
   planned peak (and under every modelled limit);
4. every interval, each signed household's HEMS dispatches inside its band: it runs its
   devices at their planned power, with service guards (never let the temperature fall below
   the band; never fall behind the EV's deadline); if the band cannot hold base load plus what
   the guards need, it reduces the battery, then the EV, then the heat pump (a hybrid's boiler
   takes over) down to the guards, and only then exceeds the band — service first, measured
   and reported.

Never silent: physically unreachable service levels, planned feeder-limit exceedance, band
excess and any service level missed in the simulated result are reported in :meth:`kpis`
(which household, which term, when, by how much) and logged as warnings. A solver failure or
time limit falls back to firm behaviour for the signed households until the next successful
re-plan, flagged in the KPIs.
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
from twin.forecast import Forecaster, PerfectForecaster
from twin.kpi import ev_deadline_shortfall_kwh
from twin.optim.devices import (
    COMFORT_TOL_K,
    EV_TOL_KWH,
    DeviceInputs,
    DeviceSet,
    device_inputs,
    ev_guards,
)
from twin.optim.envelope import fixed_profile, household_envelopes
from twin.optim.horizon import Horizon
from twin.optim.options import SolverOptions, Weights
from twin.timegrid import DT_H, STEPS_PER_DAY, STEPS_PER_HOUR

if TYPE_CHECKING:
    from twin.model import FeederModel
    from twin.optim.blocks import DevicePlan

# Pyomo (and the models built on it) are imported when a contract is set up, not when the
# contract registry is imported (keeps ``twin --help`` fast).

log = logging.getLogger("twin.performance")

#: Entries kept in the detailed KPI lists (the counts and totals cover everything).
DETAIL_MAX = 50


@dataclass(frozen=True)
class PerformanceTerms:
    """The contract's terms and the DSO's planning settings (``configs/contract/performance.yaml``)."""

    comfort_band_k: float = 1.0
    preheat_k: float = 1.0
    ev_range_km: float = 150.0
    ev_deadline_h: float = 6.0
    discount_eur_per_year: float = 100.0
    safety_margin: float = 0.1
    horizon_h: float = 24.0
    resolution_h: float = 1.0
    fine_h: float = 0.0
    replan_every_h: float = 24.0
    replan_at_h: float = 12.0
    information: str = "central"
    share_signed: float = 1.0
    envelope_margin_k: float = 0.3
    battery_reserve_cycles: float = 1.0
    envelope_rounds: int = 3
    cables: bool = True
    voltages: bool = True
    limit_kva: float | None = None

    def __post_init__(self) -> None:
        def bad(key: str, value: Any, want: str) -> TwinError:
            return TwinError(f"contract.{key}={value!r} is invalid: {want}")

        if self.information not in ("central", "envelope"):
            raise bad("information", self.information, "use central or envelope")
        if not 0.0 <= self.share_signed <= 1.0:
            raise bad("share_signed", self.share_signed, "give a share from 0 to 1")
        if not 0.0 <= self.safety_margin < 1.0:
            raise bad("safety_margin", self.safety_margin, "give a share from 0 to below 1")
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
        if not 0.0 <= self.replan_at_h < 24.0 or self.replan_at_h > self.horizon_h:
            raise bad("replan_at_h", self.replan_at_h, "give an hour of the day within the horizon")
        if not 0.0 <= self.fine_h <= self.horizon_h:
            raise bad("fine_h", self.fine_h, "give hours from 0 to horizon_h")
        if self.comfort_band_k <= COMFORT_TOL_K:
            raise bad("comfort_band_k", self.comfort_band_k, f"give more than {COMFORT_TOL_K} K")

    @classmethod
    def from_config(cls, cfg: Any) -> PerformanceTerms:
        names = {f.name for f in fields(cls)}
        values = {k: cfg[k] for k in names if k in cfg}
        return cls(**values)

    def horizon(self) -> Horizon:
        return Horizon.from_segments(
            [(self.fine_h, 0.25), (self.horizon_h - self.fine_h, self.resolution_h)]
        )

    @property
    def cadence_steps(self) -> int:
        return int(round(self.replan_every_h * STEPS_PER_HOUR))

    @property
    def offset_steps(self) -> int:
        return int(round(self.replan_at_h * STEPS_PER_HOUR))


@dataclass
class _Plan:
    """A re-plan's outcome as the HEMSs carry it out (arrays over signed households)."""

    k0: int
    inp: DeviceInputs
    plan: DevicePlan
    band_kw: np.ndarray  # (n_signed, n_steps) per step of the horizon
    ev_need_next_kwh: np.ndarray  # (n_ev, n_steps) need at the next deadline (0: none)
    ev_home_after: np.ndarray  # (n_ev, n_steps) home steps after this one before that deadline


@dataclass(frozen=True)
class _HemsConstants:
    """Index arrays and device parameters the HEMSs use every interval (built once)."""

    g_hp: np.ndarray
    g_ev: np.ndarray
    g_bat: np.ndarray
    g_no_ev: np.ndarray
    hp_pos: np.ndarray
    ev_pos: np.ndarray
    bat_pos: np.ndarray
    hybrid: np.ndarray
    floor_c: np.ndarray
    r_hp: np.ndarray
    a_hp: np.ndarray
    qmax_hp: np.ndarray
    ev_pmax: np.ndarray
    ev_cap: np.ndarray
    ev_step_kwh: float
    bat_pmax: np.ndarray
    bat_eta: np.ndarray

    @classmethod
    def build(cls, fleet: Any, dev: DeviceSet, sig: np.ndarray) -> _HemsConstants:
        g_hp, g_ev, g_bat = sig[dev.hp], sig[dev.ev], sig[dev.bat]
        no_ev = np.ones(len(sig), bool)
        no_ev[dev.ev] = False
        return cls(
            g_hp=g_hp,
            g_ev=g_ev,
            g_bat=g_bat,
            g_no_ev=sig[no_ev],
            hp_pos=dev.hp,
            ev_pos=dev.ev,
            bat_pos=dev.bat,
            hybrid=dev.hybrid,
            floor_c=dev.setpoint_c - dev.comfort_band_k + 0.1 * COMFORT_TOL_K,
            r_hp=fleet.r_k_per_kw[g_hp],
            a_hp=fleet.a_step[g_hp],
            qmax_hp=fleet.hp_q_max_kw[g_hp],
            ev_pmax=fleet.ev_p_max_kw[g_ev],
            ev_cap=fleet.ev_capacity_kwh[g_ev],
            ev_step_kwh=CHARGE_EFFICIENCY * DT_H,
            bat_pmax=fleet.bat_p_max_kw[g_bat],
            bat_eta=fleet.bat_eta[g_bat],
        )


@dataclass
class _Stats:
    replans: int = 0
    failed: int = 0
    highs_s: float = 0.0
    solve_wall_s: float = 0.0
    hems_highs_s: float = 0.0
    hems_wall_s: float = 0.0
    replan_s: float = 0.0
    dispatch_s: float = 0.0
    iterations: int = 0
    planned_peak_kw: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)
    relaxations: list[dict[str, Any]] = field(default_factory=list)
    n_relaxations: int = 0
    over: list[dict[str, Any]] = field(default_factory=list)
    over_kwh: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)


class PerformanceContract(Contract):
    """Service-level contract with DSO capacity allocation; see the module docstring."""

    name = "performance"

    def __init__(
        self,
        terms: PerformanceTerms | None = None,
        solver: SolverOptions | None = None,
        weights: Weights | None = None,
        forecaster: Forecaster | None = None,
    ) -> None:
        self.terms = terms or PerformanceTerms()
        self.solver = solver or SolverOptions()
        self.weights = weights or Weights()
        self._forecaster = forecaster

    @classmethod
    def from_config(cls, cfg: Any) -> PerformanceContract:
        solver = cfg.get("solver") if hasattr(cfg, "get") else None
        try:
            weights = Weights.from_config(cfg.get("weights") if hasattr(cfg, "get") else None)
        except ValueError as err:
            raise TwinError(f"contract.weights: {err}") from None
        return cls(
            PerformanceTerms.from_config(cfg), SolverOptions.from_config(solver or {}), weights
        )

    # ------------------------------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------------------------------
    def setup(self, model: FeederModel) -> None:
        from twin.optim.allocation import CentralAllocation, EnvelopeAllocation, HemsPlanning

        t0 = time.perf_counter()
        terms, fleet = self.terms, model.fleet
        n = fleet.n
        # who signed: drawn after the fleet and trips (from a child stream), so the population
        # is the same under every contract
        n_signed = int(round(terms.share_signed * n))
        if n_signed == n:
            signed = np.ones(n, bool)
        else:
            rng = model.rng.spawn(1)[0]
            signed = np.zeros(n, bool)
            signed[rng.permutation(n)[:n_signed]] = True
        self.signed = signed
        self.sig = np.flatnonzero(signed)
        self.non = np.flatnonzero(~signed)
        self.hz = terms.horizon()
        self.dev = DeviceSet.from_fleet(
            fleet,
            self.sig,
            terms.comfort_band_k,
            terms.ev_range_km,
            terms.ev_deadline_h,
            terms.preheat_k,
        )
        self._setup_loads(model)
        if self._forecaster is None:
            self._forecaster = PerfectForecaster(model, self._other_p, self._other_q)
        self.fc = self._forecaster
        self._setup_grid(model)
        feeder_limits = self.grid.feeder_limits(self.hh_cols[self.sig])
        if terms.information == "central":
            self.alloc: Any = CentralAllocation(
                self.dev, self.hz, feeder_limits, self.weights, self.solver
            )
            self.hems: Any = None
        else:
            self.alloc = EnvelopeAllocation(
                self.dev.n, self.hz, feeder_limits, self.weights, self.solver
            )
            self.hems = HemsPlanning(self.dev, self.hz, self.weights, self.solver)
        self._const = _HemsConstants.build(fleet, self.dev, self.sig)
        t = model.n_steps
        self.band_kw = np.full((t, len(self.sig)), np.nan)
        self.fallback = np.zeros(t, bool)
        self.plan: _Plan | None = None
        self.stats = _Stats()
        self.setup_s = time.perf_counter() - t0
        self._n_warmup = model.window.n_warmup_steps
        self._metered_until, self._metered_peak = 0, 0.0

    def _setup_loads(self, model: FeederModel) -> None:
        """Which load columns of the feeder are households, and the other loads' profiles."""
        inputs, n, t = model.inputs, model.fleet.n, model.n_steps
        feeder = getattr(inputs, "feeder", None)
        if feeder is None:  # no grid: the households and the aggregated other loads
            self.n_load = n + 1
            self.hh_cols = np.arange(n)
            self.other_cols = np.array([n])
            agg = getattr(inputs, "p_other_kw", None)
            self._other_p = (
                np.zeros((t, 1)) if agg is None else np.asarray(agg, float).reshape(t, 1)
            )
            self._other_q = np.zeros((t, 1))
            return
        rows = model.window.sim_year_index
        self.n_load = feeder.load_p_kw.shape[1]
        self.hh_cols = np.asarray(feeder.household_cols)
        self.other_cols = np.setdiff1d(np.arange(self.n_load), self.hh_cols)
        self._other_p = feeder.load_p_kw[np.ix_(rows, self.other_cols)]
        self._other_q = feeder.load_q_kvar[np.ix_(rows, self.other_cols)]

    def _setup_grid(self, model: FeederModel) -> None:
        """Feeder limit rows (linear feeder model when the grid is known, else the transformer).

        Cable and voltage rows are screened on the worst case over the run, from the device
        ratings and the forecaster's view of the run (never the simulation's inputs).
        """
        from twin.optim.limits import GridLimits, build_grid_limits

        terms, fleet, inputs = self.terms, model.fleet, model.inputs
        feeder = getattr(inputs, "feeder", None)
        if feeder is None:
            rating = (
                terms.limit_kva
                if terms.limit_kva is not None
                else float(getattr(inputs, "trafo_rating_kva", np.inf))
            )
            self.grid = GridLimits.transformer_only(self.n_load, rating, terms.safety_margin)
            return
        fc = self.fc.exogenous(0, model.n_steps, np.arange(fleet.n))
        po, qo = self.fc.other_loads(0, model.n_steps)
        cop_min = np.maximum(fc.cop.min(axis=0), 1e-3)
        dev_max = fleet.hp_q_max_kw / cop_min + fleet.ev_p_max_kw + fleet.bat_p_max_kw
        worst_imp = np.zeros(self.n_load)
        worst_exp = np.zeros(self.n_load)
        worst_imp[self.hh_cols] = fc.p_base_kw.max(axis=0) + dev_max
        worst_exp[self.hh_cols] = np.maximum(
            fc.p_pv_kw.max(axis=0) + fleet.bat_p_max_kw - fc.p_base_kw.min(axis=0), 0.0
        )
        worst_imp[self.other_cols] = po.max(axis=0, initial=0.0)
        worst_exp[self.other_cols] = np.maximum(-po.min(axis=0, initial=0.0), 0.0)
        q_max = np.zeros(self.n_load)
        q_max[self.hh_cols] = fc.q_base_kvar.max(axis=0)
        q_max[self.other_cols] = qo.max(axis=0, initial=0.0)
        self.grid = build_grid_limits(
            feeder.net,
            worst_imp,
            worst_exp,
            q_max,
            terms.safety_margin,
            cables=terms.cables,
            voltages=terms.voltages,
        )
        if terms.limit_kva is not None:  # override the transformer rating
            self.grid.s_max[0] = terms.limit_kva * (1.0 - terms.safety_margin)
        binding = [nm for nm in self.grid.names if not nm.startswith("trafo")]
        if binding:
            log.info("performance: limit rows besides the transformer: %s", ", ".join(binding))

    # ------------------------------------------------------------------------------------------
    # DSO
    # ------------------------------------------------------------------------------------------
    def _is_replan_step(self, k: int) -> bool:
        c, off = self.terms.cadence_steps, self.terms.offset_steps
        return k == 0 or (k - off) % c == 0

    def dso_step(self, model: FeederModel, k: int) -> None:
        if len(self.sig) and self._is_replan_step(k):
            t0 = time.perf_counter()
            self.replan(model, k)
            self.stats.replan_s += time.perf_counter() - t0

    def replan(self, model: FeederModel, k0: int) -> None:
        """Forecast, allocate, hand out bands (and, in envelope mode, let the HEMSs plan)."""
        from twin.optim.allocation import LimitData

        hz, dev, terms, st = self.hz, self.dev, self.terms, self.stats
        n_steps = hz.n_steps
        all_h = np.arange(model.fleet.n)
        exo = self.fc.exogenous(k0, n_steps + 1, all_h)
        sig_exo = self.fc.exogenous(k0, n_steps + STEPS_PER_DAY, self.sig)  # + trips that end later
        # the household side: its own devices and state
        s = model.state
        inp = device_inputs(
            dev,
            hz,
            sig_exo,
            s.t_in_c[self.sig],
            s.ev_soc_kwh[self.sig],
            s.bat_soc_kwh[self.sig],
            k0,
        )
        # the DSO side: forecasts, per step, of everything that is not controllable
        p_rest = np.zeros((n_steps, self.n_load))
        q_all = np.zeros((n_steps, self.n_load))
        inflex_sig = (exo.p_base_kw - exo.p_pv_kw)[:n_steps, self.sig]
        p_rest[:, self.hh_cols[self.sig]] = inflex_sig
        if len(self.non):
            p_rest[:, self.hh_cols[self.non]] = self.fc.firm_load_kw(k0, n_steps, self.non)
        po, qo = self.fc.other_loads(k0, n_steps)
        p_rest[:, self.other_cols] = po
        q_all[:, self.other_cols] = qo
        q_all[:, self.hh_cols] = exo.q_base_kvar[:n_steps]
        rhs_steps = self.grid.rhs(p_rest, q_all)
        infl_steps = p_rest.sum(axis=1)
        # devices hold their power over a period, so each period must fit its worst step
        starts = hz.start_step
        rhs = np.minimum.reduceat(rhs_steps, starts, axis=1)
        inflexible = np.maximum.reduceat(infl_steps, starts)
        sunk = self._sunk_peak(k0)
        lim = LimitData(rhs_kw=rhs, inflexible_kw=inflexible, sunk_peak_kw=sunk)
        period = np.repeat(np.arange(hz.n_periods), hz.steps)

        st.replans += 1
        record: dict[str, Any] = {"step": k0, "sunk_peak_kw": round(sunk, 3)}
        if terms.information == "central":
            res = self.alloc.solve(inp, lim)
            plan, flex = res.plan, res.flex_kw
            band_flex = flex
        else:
            env = household_envelopes(
                dev, inp, hz, terms.envelope_margin_k, terms.battery_reserve_cycles
            )
            res = self.alloc.allocate(env, lim)
            plan = flex = band_flex = None
            for round_ in range(1, terms.envelope_rounds + 1):
                if not res.stats.ok:
                    break
                share = self._headroom(res, lim, rhs_steps, infl_steps, period)
                band_flex = res.flex_kw + np.minimum.reduceat(share, starts)[None, :]
                hstats, plan, excess = self.hems.plan(inp, band_flex)
                st.hems_highs_s += hstats.highs_s
                st.hems_wall_s += hstats.solve_wall_s
                record[f"hems_status_{round_}"] = hstats.status
                if not hstats.ok:
                    res.stats.ok, res.stats.status = False, f"HEMS planning: {hstats.status}"
                    break
                flex = res.flex_kw
                misfit = np.flatnonzero(excess.max(axis=1) > 1e-3)
                record[f"households_counter_proposal_{round_}"] = len(misfit)
                if not len(misfit) or round_ == terms.envelope_rounds:
                    break
                # the HEMSs that cannot follow their allocation propose the profile they can follow
                env = fixed_profile(env, misfit, plan.p_flex_kw[misfit], hz.dt_h)
                res2 = self.alloc.allocate(env, lim)
                res2.stats.highs_s += res.stats.highs_s
                res2.stats.solve_wall_s += res.stats.solve_wall_s
                res2.stats.iterations += res.stats.iterations
                res = res2
        st.highs_s += res.stats.highs_s
        st.solve_wall_s += res.stats.solve_wall_s
        st.iterations += res.stats.iterations
        record.update(
            status=res.stats.status,
            highs_s=round(res.stats.highs_s, 4),
            iterations=res.stats.iterations,
        )
        for rel in inp.relaxations:
            st.n_relaxations += 1
            if len(st.relaxations) < DETAIL_MAX:
                st.relaxations.append(rel.as_dict())
        if inp.relaxations:
            log.warning(
                "performance: re-plan at step %d: %d service level(s) cannot be met physically, "
                "e.g. %s",
                k0,
                len(inp.relaxations),
                inp.relaxations[0].as_dict(),
            )
        if not res.stats.ok or plan is None:
            st.failed += 1
            self.plan = None
            st.failures.append({"step": k0, "status": res.stats.status})
            log.warning(
                "performance: re-plan at step %d failed (%s): signed households fall back to "
                "firm behaviour until the next re-plan",
                k0,
                res.stats.status,
            )
            st.records.append(record)
            return
        level = max(res.peak_kw, sunk)
        st.planned_peak_kw = max(st.planned_peak_kw, float(res.peak_kw))
        record["planned_peak_kw"] = round(float(res.peak_kw), 3)
        over = res.over_kw
        if np.any(over > 1e-6):
            for r, j in zip(*np.nonzero(over > 1e-6), strict=True):
                st.over_kwh += float(over[r, j] * hz.dt_h[j])
                if len(st.over) < DETAIL_MAX:
                    st.over.append(
                        {
                            "limit": self.grid.names[r],
                            "step": k0 + int(hz.start_step[j]),
                            "kw": round(float(over[r, j]), 3),
                        }
                    )
            log.warning(
                "performance: re-plan at step %d exceeds feeder limits (%s) by up to %.1f kW to keep "
                "the service levels",
                k0,
                ", ".join(sorted({self.grid.names[r] for r in np.nonzero(over > 1e-6)[0]})),
                float(over.max()),
            )
        # bands per step: the household's own inflexible load, its allocation, a share of what is left
        share = self._headroom(res, lim, rhs_steps, infl_steps, period, level)
        band = inflex_sig.T + flex[:, period] + share[None, :]
        need, home_after = ev_guards(
            self.dev, sig_exo.trips.home[:, self.dev.ev], k0, self.hz.n_steps
        )
        self.plan = _Plan(k0, inp, plan, band, need, home_after)
        st.records.append(record)

    def _sunk_peak(self, k0: int) -> float:
        """The largest metered feeder load of the reported steps before ``k0`` (running max)."""
        start = max(self._metered_until, self._n_warmup)
        if k0 > start:
            new = self.fc.measured_feeder_kw(k0, start)
            self._metered_peak = max(self._metered_peak, float(new.max()))
            self._metered_until = k0
        return self._metered_peak

    def _headroom(
        self,
        res: Any,
        lim: Any,
        rhs_steps: np.ndarray,
        infl_steps: np.ndarray,
        period: np.ndarray,
        level: float | None = None,
    ) -> np.ndarray:
        """``(n_steps,)`` capacity per signed household left under the planned peak and under
        every limit row, step by step."""
        n_sig = max(len(self.sig), 1)
        level = max(res.peak_kw, lim.sunk_peak_kw) if level is None else level
        free = np.maximum(level - (res.total_kw[period] + infl_steps), 0.0) / n_sig
        fl = self.grid.feeder_limits(self.hh_cols[self.sig])
        coef = fl.sign[:, None] * fl.coef
        slack = np.maximum(rhs_steps - (coef @ res.flex_kw)[:, period], 0.0)
        count = np.maximum((np.abs(coef) > 1e-12).sum(axis=1), 1)[:, None]
        return np.minimum(free, (slack / count).min(axis=0))

    # ------------------------------------------------------------------------------------------
    # households
    # ------------------------------------------------------------------------------------------
    def dispatch(self, model: FeederModel, k: int) -> Controls:
        # the household side: every HEMS measures its own house (state, base load, PV, car)
        t0 = time.perf_counter()
        f, s, x = model.fleet, model.state, model.exo
        q_heat = heat_to_reach(
            f.setpoint_c, s.t_in_c, x.t_out_c[k], x.q_gain_kw[k], f.r_k_per_kw, f.a_step
        )
        p_ev = f.ev_p_max_kw.copy()
        plan = self.plan
        if not len(self.sig):
            return Controls(q_heat_kw=q_heat, p_ev_kw=p_ev)
        if plan is None or k - plan.k0 >= self.hz.n_steps:
            self.fallback[k] = True
            return Controls(q_heat_kw=q_heat, p_ev_kw=p_ev)
        q_hp_max = np.full(f.n, np.inf)
        p_bat = np.zeros(f.n)
        self._hems(model, k, plan, q_heat, q_hp_max, p_ev, p_bat)
        if len(self.non):  # households that did not sign: battery self-consumption (firm)
            non = self.non
            p_hp = np.minimum(np.maximum(q_heat[non], 0.0), f.hp_q_max_kw[non]) / x.cop[k, non]
            p_hp = np.where(f.has_hp[non], p_hp, 0.0)
            residual = (
                x.p_base_kw[k, non]
                + p_hp
                + _expected_ev_kw(model, k, p_ev)[non]
                - x.p_pv_kw[k, non]
            )
            p_bat[non] = -residual
        self.stats.dispatch_s += time.perf_counter() - t0
        return Controls(q_heat_kw=q_heat, p_ev_kw=p_ev, p_bat_kw=p_bat, q_hp_max_kw=q_hp_max)

    def _hems(
        self,
        model: FeederModel,
        k: int,
        plan: _Plan,
        q_heat: np.ndarray,
        q_hp_max: np.ndarray,
        p_ev: np.ndarray,
        p_bat: np.ndarray,
    ) -> None:
        """Every signed household's HEMS: follow the plan inside the band, service first."""
        s, x, c = model.state, model.exo, self._const
        o = k - plan.k0
        j = int(self.hz.period_of_step[o])
        pl = plan.plan

        # heat pumps: the planned power (a hybrid's boiler its planned heat); never below the floor
        g = c.g_hp
        cop = x.cop[k, g]
        q_guard = heat_to_reach(
            c.floor_c, s.t_in_c[g], x.t_out_c[k], x.q_gain_kw[k, g], c.r_hp, c.a_hp
        )
        np.maximum(q_guard, 0.0, out=q_guard)
        q_hp_plan = pl.p_hp_kw[:, j] * cop
        q_req = np.maximum(q_hp_plan + pl.q_boiler_kw[:, j], q_guard)
        q_cap = np.where(c.hybrid, q_hp_plan, c.qmax_hp)
        p_hp = np.minimum(q_req, np.minimum(q_cap, c.qmax_hp)) / cop

        # EVs: the planned power, never behind the deadline
        e = c.g_ev
        soc = np.maximum(s.ev_soc_kwh[e] - x.trips.trip_kwh[k, e], 0.0)
        room = (
            np.minimum(c.ev_pmax, np.maximum(c.ev_cap - soc, 0.0) / c.ev_step_kwh)
            * x.trips.home[k, e]
        )
        need = plan.ev_need_next_kwh[:, o]
        behind = (
            need + 0.5 * EV_TOL_KWH - soc - c.ev_step_kwh * c.ev_pmax * plan.ev_home_after[:, o]
        )
        ev_guard = np.minimum(
            np.where(need > 0, np.maximum(behind / c.ev_step_kwh, 0.0), 0.0), room
        )
        ev_req = np.minimum(np.maximum(pl.p_ev_kw[:, j], ev_guard), room)

        # batteries: the planned power (the battery's own limits apply in the physics)
        b = c.g_bat
        bat_req = pl.p_bat_kw[:, j].copy()
        bat_min = -np.minimum(c.bat_pmax, s.bat_soc_kwh[b] * c.bat_eta / DT_H)

        # the band: base load and PV are what they are; reduce battery, EV, heat pump (to guards)
        flex = x.p_base_kw[k, self.sig] - x.p_pv_kw[k, self.sig]
        flex[c.hp_pos] += p_hp
        flex[c.ev_pos] += ev_req
        flex[c.bat_pos] += np.maximum(bat_req, bat_min)
        band = plan.band_kw[:, o]
        over = flex - band
        if over.max() > 1e-9:
            np.maximum(over, 0.0, out=over)
            cut = np.minimum(over[c.bat_pos], np.maximum(bat_req - bat_min, 0.0))
            bat_req -= cut
            over[c.bat_pos] -= cut
            cut = np.minimum(over[c.ev_pos], np.maximum(ev_req - ev_guard, 0.0))
            ev_req -= cut
            over[c.ev_pos] -= cut
            p_floor = np.where(c.hybrid, 0.0, np.minimum(q_guard, c.qmax_hp) / cop)
            cut = np.minimum(over[c.hp_pos], np.maximum(p_hp - p_floor, 0.0))
            p_hp -= cut
            q_cap = np.where(c.hybrid, p_hp * cop, q_cap)
            q_req = np.where(c.hybrid, q_req, np.maximum(p_hp * cop, q_guard))
        q_heat[g] = q_req
        q_hp_max[g] = np.where(c.hybrid, q_cap, np.inf)
        p_ev[c.g_no_ev] = 0.0
        p_ev[e] = ev_req
        p_bat[b] = bat_req
        self.band_kw[k] = band

    # ------------------------------------------------------------------------------------------
    # KPIs
    # ------------------------------------------------------------------------------------------
    def discount_eur_per_year(self, model: FeederModel) -> np.ndarray:
        """The contract's grid-fee discount, for the households that signed."""
        discount = np.zeros(model.fleet.n)
        discount[self.sig] = self.terms.discount_eur_per_year
        return discount

    def timeseries(self, model: FeederModel) -> dict[str, np.ndarray]:
        """The capacity band of every household and step (NaN: not signed, or firm fallback)."""
        band = np.full((model.n_steps, model.fleet.n), np.nan)
        band[:, self.sig] = self.band_kw
        return {"band_kw": band}

    def kpis(self, model: FeederModel) -> dict[str, Any]:
        terms, st = self.terms, self.stats
        rep = model.window.report
        lg = model.log
        sig = self.sig
        out: dict[str, Any] = {
            "performance_information": terms.information,
            "performance_households_signed": len(sig),
            "performance_share_signed": round(len(sig) / max(model.fleet.n, 1), 6),
            "performance_discount_eur_per_household_year": terms.discount_eur_per_year,
            "performance_discount_eur_per_year": terms.discount_eur_per_year * len(sig),
            "performance_horizon_h": terms.horizon_h,
            "performance_replan_every_h": terms.replan_every_h,
            "performance_safety_margin": terms.safety_margin,
            "performance_limit_rows": list(self.grid.names) if len(sig) else [],
            "performance_limit_rows_in_lp": (
                [n for n, a in zip(self.grid.names, self.alloc.limits.active, strict=True) if a]
                if len(sig)
                else []
            ),
            "performance_limits_screened_out": len(self.grid.screened_out),
            "performance_replans": st.replans,
            "performance_replans_failed": st.failed,
            "performance_fallback_steps": int(self.fallback[rep].sum()),
            "performance_fallback": bool(st.failed or self.fallback[rep].any()),
            "performance_failures": st.failures[:DETAIL_MAX],
            "performance_relaxations": st.n_relaxations,
            "performance_relaxations_detail": st.relaxations,
            "performance_planned_over_limit_kwh": round(st.over_kwh, 6),
            "performance_planned_over_limit_detail": st.over,
            "performance_planned_peak_kw": round(st.planned_peak_kw, 3),
        }
        # band adherence, measured on the simulated result
        band = self.band_kw[rep]
        net = lg["p_net_kw"][rep][:, sig]
        excess = np.where(np.isnan(band), 0.0, np.maximum(net - band, 0.0))
        excess[excess < 1e-6] = 0.0
        out.update(
            {
                "performance_band_excess_steps": int((excess > 0).any(axis=1).sum()),
                "performance_band_excess_kwh": float(excess.sum() * DT_H),
                "performance_band_excess_max_kw": float(excess.max(initial=0.0)),
                "performance_band_excess_households": int((excess > 0).any(axis=0).sum()),
            }
        )
        out.update(self._service_report(model))
        out.update(
            {
                "performance_setup_s": round(self.setup_s, 4),
                "performance_replan_s": round(st.replan_s, 4),
                "performance_dispatch_s": round(st.dispatch_s, 4),
                "performance_highs_s": round(st.highs_s + st.hems_highs_s, 4),
                "performance_solve_wall_s": round(st.solve_wall_s + st.hems_wall_s, 4),
                "performance_simplex_iterations": st.iterations,
                "performance_lp_columns": self.alloc.lp.n_cols if len(sig) else 0,
                "performance_lp_rows": self.alloc.lp.n_rows if len(sig) else 0,
            }
        )
        return out

    def _service_report(self, model: FeederModel) -> dict[str, Any]:
        """Service levels of the signed households, measured on the simulated result."""
        rep = model.window.report
        f, lg = model.fleet, model.log
        t_in = lg["t_in_c"][rep]
        floor = f.setpoint_c - self.terms.comfort_band_k
        cold = np.maximum(floor - t_in, 0.0)
        cold[cold < 1e-9] = 0.0
        signed_hp = self.signed & f.has_hp
        details: list[dict[str, Any]] = []
        n_comfort = 0
        for h in np.flatnonzero(signed_hp & (cold.max(axis=0) > 0)):
            n_comfort += 1
            if len(details) < DETAIL_MAX:
                step = int(np.argmax(cold[:, h]))
                details.append(
                    {
                        "household": int(h),
                        "term": "comfort",
                        "step": step + model.window.n_warmup_steps,
                        "amount": round(float(cold[step, h]), 4),
                        "unit": "K below the band",
                    }
                )
        short = ev_deadline_shortfall_kwh(
            lg["ev_soc_kwh"][rep],
            model.exo.trips.home[rep],
            f,
            self.terms.ev_range_km,
            self.terms.ev_deadline_h,
        )
        short[short < 1e-6] = 0.0
        short[:, ~self.signed] = 0.0
        days, hh = np.nonzero(short > 0)
        for d, h in zip(days, hh, strict=True):
            if len(details) < DETAIL_MAX:
                details.append(
                    {
                        "household": int(h),
                        "term": "ev_range",
                        "day": int(d),
                        "amount": round(float(short[d, h]), 4),
                        "unit": "kWh short at the deadline",
                    }
                )
        if n_comfort or len(days):
            log.warning(
                "performance: service levels missed in the simulated result: %d household(s) below "
                "the comfort band, %d EV deadline(s) short; see performance_service_detail",
                n_comfort,
                len(days),
            )
        return {
            "performance_comfort_households_missed": n_comfort,
            "performance_ev_deadlines_missed": int(len(days)),
            "performance_service_detail": details,
        }


def _expected_ev_kw(model: FeederModel, k: int, p_req_kw: np.ndarray) -> np.ndarray:
    """The EV power :func:`twin.devices.ev.ev_step` will draw for the request ``p_req_kw``."""
    f, s, x = model.fleet, model.state, model.exo
    soc = np.maximum(s.ev_soc_kwh - x.trips.trip_kwh[k], 0.0)
    headroom = np.maximum(f.ev_capacity_kwh - soc, 0.0) / (CHARGE_EFFICIENCY * DT_H)
    return np.where(
        x.trips.home[k], np.clip(p_req_kw, 0.0, np.minimum(f.ev_p_max_kw, headroom)), 0.0
    )
