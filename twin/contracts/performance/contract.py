"""The performance contract: the DSO side and the household side wired together.

Each re-plan (``replan_every_h``, first at the start, then at ``replan_at_h`` o'clock):

1. central mode — the DSO (:class:`~twin.contracts.performance.dso.DsoPlanner`) reads the
   signed households' declared devices and state and plans their devices and the feeder in
   one LP; envelope mode — every signed household's HEMS
   (:class:`~twin.contracts.performance.households.SignedHouseholds`) sends a flexibility
   envelope, the DSO allocates within the envelopes and the feeder limits, the HEMSs plan
   inside their bands and answer with a counter-proposal when they cannot follow
   (``envelope_rounds``);
2. the DSO hands out capacity bands per 15-minute interval;
3. every interval the HEMSs dispatch inside their bands, service first.

Never silent: physically unreachable service levels, planned feeder-limit exceedance, band
excess and any service level missed in the simulated result are reported in the KPIs and
logged as warnings. A solver failure or time limit falls back to firm behaviour for the
signed households until the next successful re-plan, flagged in the KPIs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twin.contracts.base import Contract
from twin.contracts.hems import DETAIL_MAX, draw_signed, service_misses
from twin.contracts.performance.dso import DsoPlanner
from twin.contracts.performance.households import SignedHouseholds
from twin.contracts.performance.margins import forecast_quality
from twin.contracts.performance.terms import PerformanceTerms
from twin.devices.household import Controls
from twin.errors import TwinError
from twin.optim.options import SolverOptions, Weights
from twin.timegrid import DT_H
from twin.view import FeederView, Outcome

__all__ = ["PerformanceContract"]

log = logging.getLogger("twin.performance")


@dataclass
class _Stats:
    replans: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
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
    """Service-level contract with DSO capacity allocation; see the package docstring."""

    name = "performance"

    def __init__(
        self,
        terms: PerformanceTerms | None = None,
        solver: SolverOptions | None = None,
        weights: Weights | None = None,
    ) -> None:
        self.terms = terms or PerformanceTerms()
        self.solver = solver or SolverOptions()
        self.weights = weights or Weights()

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

    # -- set-up --------------------------------------------------------------------------------
    def setup(self, view: FeederView) -> None:
        t0 = time.perf_counter()
        super().setup(view)
        terms = self.terms
        n = view.households.devices.n
        # who signed: the contract's own seeded stream (the population is the same under
        # every contract)
        self.signed = draw_signed(view.draws, n, terms.share_signed)
        self.sig = np.flatnonzero(self.signed)
        self.non = np.flatnonzero(~self.signed)
        self.hz = terms.horizon()
        # the steps of a plan carried out before its coarse part (all of it without one)
        coarse = terms.coarse_from_h
        self._fine_steps = self.hz.n_steps if coarse is None else int(round(coarse / DT_H))
        # how far ahead a coarse part carried out is checked for tightness (its period length)
        self._coarse_steps = 0 if coarse is None else int(round(terms.coarse_h / DT_H))
        args = (terms, self.sig, self.non, self.hz, self.weights, self.solver)
        self.dso = DsoPlanner(view.dso(terms.information), *args)
        self.hems = SignedHouseholds(view.households, *args, view.n_steps)
        self.stats = _Stats()
        self.setup_s = time.perf_counter() - t0

    # -- the DSO's decision ----------------------------------------------------------------------
    def dso_step(self, k: int) -> None:
        if len(self.sig) and self.terms.is_replan_step(k, self.view.n_warmup_steps):
            t0 = time.perf_counter()
            reason = self._replan_reason(k)
            if reason:
                self.replan(k, reason)
                self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
            else:
                self.stats.skipped += 1
            self.stats.replan_s += time.perf_counter() - t0

    def _replan_reason(self, k: int) -> str:
        """Why re-plan at re-plan step ``k`` ("": skip it). ``replan_trigger=deviation``:
        only when reality left the plan since the last re-plan step (see
        :class:`PerformanceTerms`); the first, the day-ahead one, one after a failure, one
        the plan would not last until the next and one inside the plan's coarse part are
        always made."""
        t = self.terms
        if t.replan_trigger == "always":
            return "cadence"
        plan = self.hems.plan
        if k == self.view.n_warmup_steps or plan is None:
            return "no plan"
        if t.is_day_ahead_step(k):
            return "day-ahead"
        if k + t.cadence_steps - plan.k0 > self.hz.n_steps:
            return "plan ends"
        coarse = k - plan.k0 >= self._fine_steps  # (never without a coarse part: "plan ends")
        if coarse and (
            t.replan_coarse == "always"
            or t.replan_tight_share is None
            or self.dso.plan_is_tight(k, k + self._coarse_steps, t.replan_tight_share)
        ):
            return "coarse part"  # re-planned before (more of) it is carried out
        if coarse:  # carried out: a coarse period has a state only at its ends
            short = 0
        else:
            short = self.hems.short_of_plan(k, t.replan_tolerance_k, t.replan_tolerance_kwh)
            if short < 0:  # k is none of the plan's states (a cadence off its periods)
                return "off the plan's states"
        if self.dso.load_left_plan(k - t.cadence_steps, k, t.replan_tolerance_kw):
            return "feeder load"
        if self.dso.cable_over_limit(k - t.cadence_steps, k):
            return "cable estimate"
        if short >= t.replan_min_households and (
            t.replan_tight_share is None
            or self.dso.plan_is_tight(k, plan.k0 + self._fine_steps, t.replan_tight_share)
        ):
            return "household state"
        return ""

    def replan(self, k0: int, reason: str = "") -> None:
        """Forecast, allocate, hand out bands (and, in envelope mode, let the HEMSs plan)."""
        hz, terms, st, dso, hems = self.hz, self.terms, self.stats, self.dso, self.hems
        starts = hz.start_step
        if terms.information == "central":  # the HEMSs' guards need their EV plans alone
            own_trips = hems.own_trips(k0)
            inp, _ = dso.central_inputs(k0, hems.day_extremes(k0))
        else:
            own = hems.own_forecast(k0)
            own_trips = own.trips
            inp = hems.device_inputs(k0, own)
        lf = dso.forecast_limits(k0)
        sunk = lf.lim.sunk_peak_kw
        st.replans += 1
        record: dict[str, Any] = {"step": k0, "reason": reason, "sunk_peak_kw": round(sunk, 3)}
        if terms.information == "central":
            res = dso.allocate_central(inp, lf)
            plan = res.plan
        else:
            env = hems.envelopes(inp)
            res = dso.allocate(env, lf)
            plan = None
            for round_ in range(1, terms.envelope_rounds + 1):
                if not res.stats.ok:
                    break
                share = dso.headroom(res, lf)
                band_flex = res.flex_kw + np.minimum.reduceat(share, starts)[None, :]
                hstats, plan, excess = hems.plan_in_band(inp, band_flex)
                st.hems_highs_s += hstats.highs_s
                st.hems_wall_s += hstats.solve_wall_s
                record[f"hems_status_{round_}"] = hstats.status
                if not hstats.ok:
                    res.stats.ok, res.stats.status = False, f"HEMS planning: {hstats.status}"
                    break
                misfit = np.flatnonzero(excess.max(axis=1) > 1e-3)
                record[f"households_counter_proposal_{round_}"] = len(misfit)
                if not len(misfit) or round_ == terms.envelope_rounds:
                    break
                env = hems.counter_proposal(env, misfit, plan, hz.dt_h)
                res2 = dso.allocate(env, lf)
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
        self._record_relaxations(k0, inp.relaxations)
        if not res.stats.ok or plan is None:
            st.failed += 1
            hems.drop_plan()
            st.failures.append({"step": k0, "status": res.stats.status})
            log.warning(
                "performance: re-plan at step %d failed (%s): signed households fall back to "
                "firm behaviour until the next re-plan",
                k0,
                res.stats.status,
            )
            st.records.append(record)
            return
        st.planned_peak_kw = max(st.planned_peak_kw, float(res.peak_kw))
        record["planned_peak_kw"] = round(float(res.peak_kw), 3)
        self._record_over(k0, res.over_kw)
        dso.record_plan(k0, res, lf, hz.n_steps)  # the next re-plan overwrites its part
        hems.accept(k0, plan, dso.bands(res, lf, res.flex_kw), own_trips)
        st.records.append(record)

    def _record_relaxations(self, k0: int, relaxations: list) -> None:
        st = self.stats
        for rel in relaxations:
            st.n_relaxations += 1
            if len(st.relaxations) < DETAIL_MAX:
                st.relaxations.append(rel.as_dict())
        if relaxations:
            log.warning(
                "performance: re-plan at step %d: %d service level(s) cannot be met physically, "
                "e.g. %s",
                k0,
                len(relaxations),
                relaxations[0].as_dict(),
            )

    def _record_over(self, k0: int, over: np.ndarray) -> None:
        st, names, hz = self.stats, self.dso.grid.names, self.hz
        if not np.any(over > 1e-6):
            return
        for r, j in zip(*np.nonzero(over > 1e-6), strict=True):
            st.over_kwh += float(over[r, j] * hz.dt_h[j])
            if len(st.over) < DETAIL_MAX:
                st.over.append(
                    {
                        "limit": names[r],
                        "step": k0 + int(hz.start_step[j]),
                        "kw": round(float(over[r, j]), 3),
                    }
                )
        log.warning(
            "performance: re-plan at step %d exceeds feeder limits (%s) by up to %.1f kW to keep "
            "the service levels",
            k0,
            ", ".join(sorted({names[r] for r in np.nonzero(over > 1e-6)[0]})),
            float(over.max()),
        )

    # -- the households ----------------------------------------------------------------------------
    def dispatch(self, k: int) -> Controls:
        t0 = time.perf_counter()
        ctl = self.hems.dispatch(k)
        self.stats.dispatch_s += time.perf_counter() - t0
        return ctl

    # -- results ------------------------------------------------------------------------------------
    def discount_eur_per_year(self) -> np.ndarray:
        """The contract's grid-fee discount, for the households that signed."""
        return np.where(self.signed, self.terms.discount_eur_per_year, 0.0)

    def timeseries(self) -> dict[str, np.ndarray]:
        """The capacity band of every household and step (NaN: not signed, or firm fallback)."""
        band = np.full((self.view.n_steps, len(self.signed)), np.nan)
        band[:, self.sig] = self.hems.band_kw
        return {"band_kw": band}

    def feeder_timeseries(self) -> dict[str, np.ndarray]:
        """What the DSO planned on at the transformer while each step was carried out (the
        plan in force): its point forecast of everything not controllable, that forecast
        with the margin policy's uplift, the plan's total (controllable plan plus the point
        forecast), and whether the transformer limit bound the plan (financial risk:
        ``feeder.parquet``)."""
        log = self.dso.log
        return {
            "dso_inflexible_p50_kw": log.p50_used_kw,
            "dso_inflexible_planned_kw": log.used_kw,
            "dso_planned_kw": log.planned_kw,
            "dso_trafo_binding": log.binding,
        }

    def _risk_and_forecast_kpis(self, outcome: Outcome) -> dict[str, Any]:
        """Financial risk (capacity withheld for congestion the realised load did not bring)
        and the DSO's forecast quality, judged on the truth."""
        log, rep = outcome.log, outcome.report
        actual = log["p_base_kw"].sum(axis=1) - log["p_pv_kw"].sum(axis=1)
        if outcome.other_kw is not None:
            actual = actual + outcome.other_kw
        flog = self.dso.log
        used, binding = flog.used_kw[rep], flog.binding[rep]
        over = np.where(binding & np.isfinite(used), np.maximum(used - actual[rep], 0.0), 0.0)
        kwh = float(over.sum() * DT_H)
        out: dict[str, Any] = {
            "forecast": type(self.view.households.forecaster).__name__,
            "performance_margin_policy": self.terms.margin_policy,
            "financial_risk_kwh": kwh,
            "financial_risk_eur": kwh * self.terms.flex_price_eur_per_kwh,
            "financial_risk_steps": int((over > 1e-6).sum()),
            "performance_trafo_row_binding_steps": int(binding.sum()),
            "performance_trafo_limit_kw": (
                float(self.dso.grid.s_max[0]) if np.isfinite(self.dso.grid.s_max[0]) else None
            ),
        }
        first = self.view.n_warmup_steps
        out.update(
            forecast_quality(flog, actual, log["p_pv_kw"].sum(axis=1), first, log["p_base_kw"])
        )
        fc = self.view.households.forecaster
        if hasattr(fc, "train_s"):
            # the time of both forecasters (the households' and the DSO's own, when it has
            # one); the blocks learned by the one that learned most (their blocks are the
            # same; in central mode the households' learns none: their HEMSs read only their
            # EV plans of it)
            both = {id(f): f for f in (fc, self.dso.view.forecaster)}.values()
            out["forecast_train_s"] = round(sum(getattr(f, "train_s", 0.0) for f in both), 4)
            out["forecast_predict_s"] = round(sum(getattr(f, "predict_s", 0.0) for f in both), 4)
            out["forecast_trainings"] = max(getattr(f, "n_trainings", 0) for f in both)
        return out

    def household_table(self) -> dict[str, np.ndarray]:
        return {"signed": self.signed.copy()}

    def kpis(self, outcome: Outcome) -> dict[str, Any]:
        terms, st, dso = self.terms, self.stats, self.dso
        log = outcome.log
        rep = self.view.window.report
        sig = self.sig
        fallback = self.hems.fallback
        out: dict[str, Any] = {
            "performance_information": terms.information,
            "performance_households_signed": len(sig),
            "performance_share_signed": round(len(sig) / max(len(self.signed), 1), 6),
            "performance_discount_eur_per_household_year": terms.discount_eur_per_year,
            "performance_discount_eur_per_year": terms.discount_eur_per_year * len(sig),
            "performance_horizon_h": terms.horizon_h,
            "performance_replan_every_h": terms.replan_every_h,
            "performance_safety_margin": terms.safety_margin,
            "performance_station_rating_kva": dso.planned_rating_kva,
            "performance_limit_rows": list(dso.grid.names) if len(sig) else [],
            "performance_limit_rows_in_lp": (
                [n for n, a in zip(dso.grid.names, dso.alloc.limits.active, strict=True) if a]
                if len(sig)
                else []
            ),
            "performance_limits_screened_out": len(dso.grid.screened_out),
            "performance_replans": st.replans,
            "performance_replan_trigger": terms.replan_trigger,
            "performance_replans_skipped": st.skipped,
            "performance_replans_by_reason": dict(st.reasons),
            "performance_replans_failed": st.failed,
            "performance_fallback_steps": int(fallback[rep].sum()),
            "performance_fallback": bool(st.failed or fallback[rep].any()),
            "performance_failures": st.failures[:DETAIL_MAX],
            "performance_relaxations": st.n_relaxations,
            "performance_relaxations_detail": st.relaxations,
            "performance_planned_over_limit_kwh": round(st.over_kwh, 6),
            "performance_planned_over_limit_detail": st.over,
            "performance_planned_peak_kw": round(st.planned_peak_kw, 3),
        }
        # band adherence, measured on the simulated result
        band = self.hems.band_kw[rep]
        net = log["p_net_kw"][rep][:, sig]
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
        miss = service_misses(
            self.view.households.devices,
            outcome,
            self.signed,
            terms.service_levels(),
            "performance",
        )
        out.update(
            {
                "performance_ev_reserve_departures_missed": miss.ev_reserve_departures,
                "performance_comfort_households_missed": miss.comfort_households,
                "performance_hot_water_days_missed": miss.hot_water_days,
                "performance_ev_deadlines_missed": miss.ev_deadlines,
                "performance_service_detail": miss.details,
            }
        )
        out.update(self._risk_and_forecast_kpis(outcome))
        lp = dso.alloc.lp
        lps = [dso.alloc] + ([self.hems.planner] if self.hems.planner is not None else [])
        out.update(
            {
                "performance_setup_s": round(self.setup_s, 4),
                "performance_replan_s": round(st.replan_s, 4),
                "performance_dispatch_s": round(st.dispatch_s, 4),
                "performance_highs_s": round(st.highs_s + st.hems_highs_s, 4),
                "performance_solve_wall_s": round(st.solve_wall_s + st.hems_wall_s, 4),
                "performance_simplex_iterations": st.iterations,
                "performance_lp_columns": lp.n_cols if len(sig) else 0,
                "performance_lp_rows": lp.n_rows if len(sig) else 0,
                "performance_lp_build_s": round(
                    sum(m.build_s + m.lp.set_instance_s for m in lps), 4
                ),
                "performance_lp_push_s": round(sum(m.lp.push_s for m in lps), 4),
                "performance_lp_readback_s": round(sum(m.lp.readback_s for m in lps), 4),
            }
        )
        return out
