"""The DSO side of the performance contract: feeder limits, the allocation LP, capacity bands.

:class:`DsoPlanner` is constructed with a :class:`~twin.view.DsoView` and nothing else of the
run: forecasts, the measured past, the network model, the connections' registered ratings
and, in central mode only, the signed households' declared devices and state. In envelope
mode it learns about households only from the envelopes their HEMSs send
(:meth:`DsoPlanner.allocate`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.contracts.performance.margins import ForecastLog, dynamic_uplift_kw, row_uplift_kw
from twin.contracts.performance.terms import PerformanceTerms
from twin.optim.devices import DeviceInputs, DeviceSet, device_inputs
from twin.optim.envelope import FlexibilityEnvelope
from twin.optim.horizon import Horizon
from twin.optim.limits import GridLimits, build_grid_limits
from twin.optim.options import SolverOptions, Weights
from twin.timegrid import STEPS_PER_DAY
from twin.view import DsoView

__all__ = ["DsoPlanner", "LimitForecast"]

log = logging.getLogger("twin.performance")


@dataclass
class LimitForecast:
    """One re-plan's limits as the DSO forecasts them (step and period resolution)."""

    lim: Any  # twin.optim.allocation.LimitData (per period)
    rhs_steps: np.ndarray  # (R, n_steps) limit minus the uncontrollable flow, per step
    infl_steps: np.ndarray  # (n_steps,) uncontrollable feeder load, per step
    inflex_sig_kw: np.ndarray  # (n_steps, n_signed) signed households' base load minus PV


class DsoPlanner:
    """The DSO: screened feeder limits, the allocation LP (built once), bands.

    Parameters
    ----------
    view : DsoView
        What the DSO may read.
    terms : PerformanceTerms
        The contract's terms.
    sig, non : np.ndarray
        Positions of the households that signed and of those that did not.
    hz : Horizon
        The plan's periods.
    weights, solver
        Objective weights and HiGHS settings.
    """

    def __init__(
        self,
        view: DsoView,
        terms: PerformanceTerms,
        sig: np.ndarray,
        non: np.ndarray,
        hz: Horizon,
        weights: Weights,
        solver: SolverOptions,
    ) -> None:
        from twin.optim.allocation import CentralAllocation, EnvelopeAllocation, GroupedAllocation

        self.view = view
        self.terms = terms
        self.sig, self.non, self.hz = sig, non, hz
        self.hh_cols = view.hh_cols
        self.other_cols = view.other_cols
        self.n_load = view.n_load
        self._shares = self._phase_shares()
        self.grid = self._grid_limits()
        limits = self.grid.feeder_limits(self.hh_cols[sig])
        if terms.information == "central":
            declared = view.declared()
            self.dev: DeviceSet | None = terms.device_set(declared.devices, sig)
            group = terms.group_households
            if group is not None and len(sig) > max(group, terms.group_above):  # LP per group
                self.alloc: Any = GroupedAllocation(
                    self.dev, hz, limits, weights, solver, group, terms.group_sweeps
                )
            else:
                self.alloc = CentralAllocation(self.dev, hz, limits, weights, solver)
        else:
            self.dev = None
            self.alloc = EnvelopeAllocation(len(sig), hz, limits, weights, solver)
        self._metered_until, self._metered_peak = 0, 0.0
        self.log = ForecastLog(view.n_steps)
        self.uplift_trafo_kw = np.zeros(hz.n_steps)
        # the feeder load the plan being carried out expects, with its margin (per step)
        self.expected_kw = np.full(view.n_steps, np.nan)
        # the level the bands of the plan being carried out fill up to (kW)
        self.plan_level_kw = np.nan

    # -- limits --------------------------------------------------------------------------------
    def _phase_shares(self) -> dict[str, np.ndarray] | None:
        """Unbalanced runs: ``(n_load, 3)`` phase shares per part, from the registered phases
        of the connections (``base``, ``pv``, ``flex``: the households' controllable power,
        the largest share of their heat pump, charger and battery on each phase) and the
        feeder's ``net.load.phase`` for the other loads (split equally where not given).
        None for a balanced run."""
        v = self.view
        reg = v.registered
        if v.feeder is None or not v.feeder.unbalanced or reg.phase_shares is None:
            return None
        from twin.fleet import THREE_PHASE, phase_share

        ph = v.feeder.load_phase
        ph = np.full(self.n_load, THREE_PHASE) if ph is None else np.where(ph >= 0, ph, -1)
        other = phase_share(ph)
        sh = reg.phase_shares
        has = {"hp": reg.hp_q_max_kw > 0, "ev": reg.ev_p_max_kw > 0, "bat": reg.bat_p_max_kw > 0}
        flex = np.zeros((v.n_households, 3))
        for part, present in has.items():
            flex = np.maximum(flex, np.where(present[:, None], sh[part], 0.0))
        none = ~(has["hp"] | has["ev"] | has["bat"])
        flex[none] = sh["base"][none]
        out = {}
        for part, hh in (("base", sh["base"]), ("pv", sh["pv"]), ("flex", flex)):
            full = other.copy()
            full[self.hh_cols] = hh
            out[part] = full
        for part in ("hp", "ev", "bat"):
            full = other.copy()
            full[self.hh_cols] = sh[part]
            out[part] = full
        out["other"] = other
        return out

    def _grid_limits(self) -> GridLimits:
        """Feeder limit rows (linear feeder model when the grid is known, else the station).

        Cable and voltage rows are screened on the worst case over the run, from the
        connections' registered ratings and the forecaster's view of the run.
        """
        v, terms = self.view, self.terms
        if v.feeder is None:
            rating = terms.limit_kva if terms.limit_kva is not None else v.station_rating_kva
            return GridLimits.transformer_only(self.n_load, rating, terms.safety_margin)
        fc = v.forecaster.exogenous(0, v.n_steps, np.arange(v.n_households))
        po, qo = v.forecaster.other_loads(0, v.n_steps)
        reg = v.registered
        cop_min = np.maximum(fc.cop.min(axis=0), 1e-3)
        dev_max = reg.hp_q_max_kw / cop_min + reg.ev_p_max_kw + reg.bat_p_max_kw
        worst_imp = np.zeros(self.n_load)
        worst_exp = np.zeros(self.n_load)
        worst_imp[self.hh_cols] = fc.p_base_kw.max(axis=0) + dev_max
        worst_exp[self.hh_cols] = np.maximum(
            fc.p_pv_kw.max(axis=0) + reg.bat_p_max_kw - fc.p_base_kw.min(axis=0), 0.0
        )
        worst_imp[self.other_cols] = po.max(axis=0, initial=0.0)
        worst_exp[self.other_cols] = np.maximum(-po.min(axis=0, initial=0.0), 0.0)
        q_max = np.zeros(self.n_load)
        q_max[self.hh_cols] = fc.q_base_kvar.max(axis=0)
        q_max[self.other_cols] = qo.max(axis=0, initial=0.0)
        per_phase: dict[str, Any] = {}
        sh = self._shares
        if sh is not None:  # unbalanced run: cable rows per phase, worst cases per phase
            hh = self.hh_cols
            imp3 = worst_imp[:, None] * sh["other"]
            exp3 = worst_exp[:, None] * sh["other"]
            imp3[hh] = (
                fc.p_base_kw.max(axis=0)[:, None] * sh["base"][hh]
                + (reg.hp_q_max_kw / cop_min)[:, None] * sh["hp"][hh]
                + reg.ev_p_max_kw[:, None] * sh["ev"][hh]
                + reg.bat_p_max_kw[:, None] * sh["bat"][hh]
            )
            exp3[hh] = np.maximum(
                fc.p_pv_kw.max(axis=0)[:, None] * sh["pv"][hh]
                + reg.bat_p_max_kw[:, None] * sh["bat"][hh]
                - fc.p_base_kw.min(axis=0)[:, None] * sh["base"][hh],
                0.0,
            )
            per_phase = {
                "phase_worst_import_kw": imp3,
                "phase_worst_export_kw": exp3,
                "flex_share": sh["flex"],
            }
        grid = build_grid_limits(
            v.feeder.net,
            worst_imp,
            worst_exp,
            q_max,
            terms.safety_margin,
            cables=terms.cables,
            voltages=terms.voltages,
            **per_phase,
        )
        if terms.limit_kva is not None:  # override the station rating
            grid.s_max[0] = terms.limit_kva * (1.0 - terms.safety_margin)
        binding = [nm for nm in grid.names if not nm.startswith("trafo")]
        if binding:
            log.info("performance: limit rows besides the transformer: %s", ", ".join(binding))
        return grid

    @property
    def planned_rating_kva(self) -> float:
        """The station rating the DSO plans against (before the safety margin)."""
        return float(self.grid.s_max[0] / (1.0 - self.terms.safety_margin))

    def forecast_limits(self, k0: int) -> LimitForecast:
        """Forecasts, per step and per period, of everything that is not controllable."""
        from twin.optim.allocation import LimitData

        hz, sig, non = self.hz, self.sig, self.non
        n_steps = hz.n_steps
        fc = self.view.forecaster
        exo = fc.exogenous(k0, n_steps + 1, np.arange(self.view.n_households))
        p_rest = np.zeros((n_steps, self.n_load))
        q_all = np.zeros((n_steps, self.n_load))
        inflex_sig = (exo.p_base_kw - exo.p_pv_kw)[:n_steps, sig]
        p_rest[:, self.hh_cols[sig]] = inflex_sig
        if len(non):
            p_rest[:, self.hh_cols[non]] = fc.firm_load_kw(k0, n_steps, non)
        po, qo = fc.other_loads(k0, n_steps)
        p_rest[:, self.other_cols] = po
        q_all[:, self.other_cols] = qo
        q_all[:, self.hh_cols] = exo.q_base_kvar[:n_steps]
        if self.grid.has_phase_rows:  # the same loads, per phase
            rhs_steps = self.grid.rhs(*self._per_phase(exo, p_rest, q_all, n_steps))
        else:
            rhs_steps = self.grid.rhs(p_rest, q_all)
        infl_steps = p_rest.sum(axis=1)
        # forecast error: the margin policy lowers every row's limit by its uplift
        uplift = self._uplift(k0, n_steps, exo, po)
        rhs_steps = rhs_steps - uplift
        self.uplift_trafo_kw = uplift[0]
        # devices hold their power over a period, so each period must fit its worst step
        starts = hz.start_step
        rhs = np.minimum.reduceat(rhs_steps, starts, axis=1)
        # the peak the plan minimises is that of the load the policy plans on (p10: the load
        # exceeded with 10 % probability), so flexible load keeps away from uncertain hours
        inflexible = np.maximum.reduceat(infl_steps + uplift[0], starts)
        lim = LimitData(rhs_kw=rhs, inflexible_kw=inflexible, sunk_peak_kw=self._sunk_peak(k0))
        return LimitForecast(lim, rhs_steps, infl_steps, inflex_sig)

    def _uplift(self, k0: int, n_steps: int, exo: Any, po: np.ndarray) -> np.ndarray:
        """``(R, n_steps)`` how far each row's limit is lowered for forecast error under the
        contract's margin policy (:mod:`twin.contracts.performance.margins`); logs the
        forecast for the dynamic margin, the forecast-quality KPIs and the risks."""
        t, v, g = self.terms, self.view, self.grid
        all_h = np.arange(v.n_households)
        q = v.forecaster.inflexible_quantiles_kw(k0, n_steps, all_h)
        coef = g.a_p[:, self.hh_cols]
        a_o = g.a_p[:, self.other_cols]
        weight = np.abs(po).mean(axis=0) if po.size else np.zeros(a_o.shape[1])
        coef_o = a_o @ (weight / weight.sum()) if weight.sum() > 0 else np.zeros(len(g.sign))
        p10 = row_uplift_kw(coef, g.sign, q, v.n_households, coef_o)
        infl = (exo.p_base_kw - exo.p_pv_kw)[:n_steps].sum(axis=1) + po.sum(axis=1)
        down = row_uplift_kw(coef, -np.ones_like(g.sign), q, v.n_households, coef_o)[0]
        self.log.record(k0, infl, infl - down, infl + p10[0], exo.p_pv_kw[:n_steps].sum(axis=1))
        self.log.record_households(k0, exo.p_base_kw[:n_steps], q["base_up_kw"], q["base_down_kw"])
        if t.margin_policy == "p50":
            return np.zeros_like(p10)
        if t.margin_policy == "fixed":
            return np.repeat((t.margin_fixed_share * g.s_max)[:, None], n_steps, axis=1)
        if t.margin_policy == "dynamic":
            k_meas = min(k0, v.meters.measured_until)  # the errors it has measured
            start = max(k_meas - t.margin_dynamic_days * STEPS_PER_DAY, v.n_warmup_steps)
            if k_meas > start:
                actual = np.zeros(k_meas)
                actual[start:k_meas] = v.meters.inflexible_kw(start, k_meas)
                leads, errs = self.log.recent_errors(k_meas, actual, t.margin_dynamic_days)
                ok = leads >= 0
                agg = dynamic_uplift_kw(leads[ok], errs[ok], n_steps, t.margin_dynamic_quantile)
                if agg is not None:  # shared over the rows like the p10 uplifts
                    ref = np.maximum(p10[0], 1e-9)
                    share = np.where(
                        p10[0] > 1e-9, p10 / ref, (np.abs(coef) > 0).mean(axis=1)[:, None]
                    )
                    return agg[None, :] * share
        return p10

    def _per_phase(
        self, exo: Any, p_rest: np.ndarray, q_all: np.ndarray, n_steps: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(n_steps, n_load, 3)`` the uncontrollable loads per phase: base load and PV on
        their phases, the rest of a non-signed household's firm load (its devices) on its
        controllable share, the other loads on theirs."""
        sh = self._shares
        hh = self.hh_cols
        p3 = p_rest[..., None] * sh["other"]
        q3 = q_all[..., None] * sh["other"]
        base = exo.p_base_kw[:n_steps]
        pv = exo.p_pv_kw[:n_steps]
        p_hh = base[..., None] * sh["base"][hh] - pv[..., None] * sh["pv"][hh]
        devices = p_rest[:, hh] - base + pv  # 0 for signed households (their devices are in the LP)
        devices[:, self.sig] = 0.0
        p3[:, hh] = p_hh + devices[..., None] * sh["flex"][hh]
        q3[:, hh] = q_all[:, hh][..., None] * sh["base"][hh]
        return p3, q3

    def _sunk_peak(self, k0: int) -> float:
        """The largest feeder load the DSO is sure it has reached in the reported steps before
        ``k0``: the running max of its measured load less ``sunk_peak_sigmas`` of that
        value's standard deviation (:meth:`~twin.measure.DsoMeters.load_sigma_kw`). Steps it
        holds only pseudo-measurements of do not count (a peak it guessed is not sunk), and
        neither does its measurement noise: a plan that fills up to a running max of noisy
        reads raises the peak by the noise at every re-plan (the perfect-foresight
        day-ahead year crept from 170 to 224 kW of feeder load on a 0.2 kW read error)."""
        meters = self.view.meters
        start = max(self._metered_until, self.view.n_warmup_steps)
        end = min(k0, meters.measured_until)
        if end > start:
            sure = self.terms.sunk_peak_sigmas * meters.load_sigma_kw(start, end)
            new = meters.load_kw(start, end) - sure
            self._metered_peak = max(self._metered_peak, float(new.max()))
            self._metered_until = end
        return self._metered_peak

    # -- allocation ------------------------------------------------------------------------------
    def central_inputs(
        self, k0: int, d_day_k: tuple[np.ndarray, np.ndarray] | None = None
    ) -> tuple[DeviceInputs, Any]:
        """Central mode: the declared households' device data of a re-plan (and the forecast
        it came from); ``d_day_k``: today's measured temperature extremes (swing rule)."""
        declared = self.view.declared()
        s = declared.state
        sig = self.sig
        sig_exo = self.view.forecaster.exogenous(k0, self.hz.n_steps + STEPS_PER_DAY, sig)
        inp = device_inputs(
            self.dev,
            self.hz,
            sig_exo,
            s.t_in_c[sig],
            s.ev_soc_kwh[sig],
            s.bat_soc_kwh[sig],
            k0,
            d_day_k,
            e_tank_kwh=None if s.e_tank_kwh is None else s.e_tank_kwh[sig],
        )
        return inp, sig_exo

    def allocate_central(self, inp: DeviceInputs, lf: LimitForecast) -> Any:
        return self.alloc.solve(inp, lf.lim)

    def allocate(self, envelopes: FlexibilityEnvelope, lf: LimitForecast) -> Any:
        """Envelope mode: allocate controllable load within the HEMSs' envelopes."""
        return self.alloc.allocate(envelopes, lf.lim)

    def headroom(self, res: Any, lf: LimitForecast, level: float | None = None) -> np.ndarray:
        """``(n_steps,)`` capacity per signed household left under the planned peak and under
        every limit row, step by step."""
        hz = self.hz
        period = np.repeat(np.arange(hz.n_periods), hz.steps)
        n_sig = max(len(self.sig), 1)
        level = max(res.peak_kw, lf.lim.sunk_peak_kw) if level is None else level
        free = np.maximum(level - (res.total_kw[period] + lf.infl_steps), 0.0) / n_sig
        fl = self.grid.feeder_limits(self.hh_cols[self.sig])
        coef = fl.sign[:, None] * fl.coef
        slack = np.maximum(lf.rhs_steps - (coef @ res.flex_kw)[:, period], 0.0)
        count = np.maximum((np.abs(coef) > 1e-12).sum(axis=1), 1)[:, None]
        return np.minimum(free, (slack / count).min(axis=0))

    def record_plan(self, k0: int, res: Any, lf: LimitForecast, n_carried: int) -> None:
        """What the DSO planned against at the transformer while this plan is carried out
        (the first ``n_carried`` steps; a later re-plan overwrites its own): the forecast
        inflexible load plus its uplift, the feeder load it expects with the planned devices,
        and whether the transformer row bound (the plan withheld capacity for congestion)."""
        hz = self.hz
        period = np.repeat(np.arange(hz.n_periods), hz.steps)
        steps = np.arange(min(n_carried, hz.n_steps))
        t = k0 + steps
        keep = t < len(self.log.used_kw)
        t, steps = t[keep], steps[keep]
        self.log.used_kw[t] = (lf.infl_steps + self.uplift_trafo_kw)[steps]
        planned = res.total_kw[period[steps]]
        self.log.p50_used_kw[t] = lf.infl_steps[steps]
        self.log.planned_kw[t] = planned + lf.infl_steps[steps]
        self.expected_kw[t] = self.log.used_kw[t] + planned
        self.plan_level_kw = max(float(res.peak_kw), float(lf.lim.sunk_peak_kw))
        s_max = float(self.grid.s_max[0])
        if not np.isfinite(s_max):  # no transformer limit: nothing ever binds
            return
        self.log.binding[t] = planned >= lf.lim.rhs_kw[0, period[steps]] - 0.005 * s_max

    def load_left_plan(self, k_start: int, k: int, tol_kw: float) -> bool:
        """Whether the measured feeder load of steps ``k_start .. k`` exceeded what the plan
        expected (forecast inflexible load with the margin policy's uplift, plus the planned
        controllable load) by more than ``tol_kw`` at any step; steps the DSO has not measured
        yet (late meters, no station sensor) cannot tell."""
        k_start = max(k_start, 0)
        k = min(k, self.view.meters.measured_until)
        if k <= k_start:
            return False
        expected = self.expected_kw[k_start:k]
        if np.isnan(expected).any():
            return True
        return bool((self.view.meters.load_kw(k_start, k) - expected).max() > tol_kw)

    def plan_is_tight(self, k: int, k_end: int, share: float) -> bool:
        """Whether the feeder load the plan expects at some step of ``k .. k_end`` (its
        forecast with the margin, plus the planned devices) reaches ``share`` of the level its
        bands fill up to (:meth:`bands`): at or below, the bands' shares of the capacity left
        under that level are what absorbs a household's deviation from its plan."""
        ahead = self.expected_kw[k : max(k_end, k + 1)]
        if not len(ahead) or np.isnan(ahead).any() or not np.isfinite(self.plan_level_kw):
            return True
        return bool(ahead.max() >= share * self.plan_level_kw)

    def cable_over_limit(self, k_start: int, k: int) -> bool:
        """Whether the DSO's state estimate put a cable above the loading the plan allows
        (its rating less the safety margin) at any measured step of ``k_start .. k``: the
        congestion the linear feeder model's forecast did not see (meters do not measure
        cables; without the estimate this never fires)."""
        k_start = max(k_start, self.view.n_warmup_steps)
        k = min(k, self.view.meters.measured_until)
        if k <= k_start or not self.terms.cables:
            return False
        loading = self.view.meters.cable_loading_max_pct(k_start, k)
        limit_pct = 100.0 * (1.0 - self.terms.safety_margin)
        return bool(np.nanmax(loading, initial=-np.inf) > limit_pct)

    def bands(self, res: Any, lf: LimitForecast, flex: np.ndarray) -> np.ndarray:
        """``(n_signed, n_steps)`` capacity bands: each signed household's own forecast base
        load minus PV, its allocation, and an equal share of what is left."""
        hz = self.hz
        period = np.repeat(np.arange(hz.n_periods), hz.steps)
        level = max(res.peak_kw, lf.lim.sunk_peak_kw)
        share = self.headroom(res, lf, level)
        # a band is an import limit: never below 0 (no household is obliged to export)
        return np.maximum(lf.inflex_sig_kw.T + flex[:, period] + share[None, :], 0.0)
