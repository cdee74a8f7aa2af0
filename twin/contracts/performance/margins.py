"""How the DSO plans around forecast error: the margin policies, and what it logs to judge
its forecasts and its risks (E.DSO paper, Sadales tīkls case: p50 or p10, safety margins,
technical vs financial risk).

Every feeder-limit row of the allocation LP reads ``sign * coef @ flex <= rhs``, where ``rhs``
is the limit minus the forecast flow of everything not controllable (:mod:`twin.optim.limits`).
A policy lowers ``rhs`` by an uplift ``u`` (kW, per row and step) for the error of that
forecast:

* ``p50`` — ``u = 0``: plan on the median;
* ``p10`` — the load the paper calls p10 (exceeded with 10 % probability: the 90th
  percentile). Per row, the households' quantile spreads combine as
  ``u = sqrt((D · Σ|c| Δbase)² + (Σ|c| ΔPV)²)``: base load and PV errors independent of each
  other; PV errors of one weather fully correlated across households; base-load errors
  diversify: ``D`` is the ratio of the households' total's spread (its own quantile model) to
  the sum of their spreads, scaled by ``sqrt(N / m)`` for a row over ``m`` of the ``N``
  households (independent errors add as the square root), never above 1; the feeder's other
  loads add their own seasonal-naive error (its 90th percentile over the training window) in
  proportion to the row's sensitivity to them, independent of the rest;
* ``fixed`` — ``margin_fixed_share`` of the row's limit;
* ``dynamic`` — the ``margin_dynamic_quantile`` of the forecast errors of the feeder's
  inflexible load over the last ``margin_dynamic_days`` (measured: forecast issued then,
  outcome metered since), by lead time, shared over the rows in proportion to their p10
  uplifts; p10 until a day of errors has been measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from twin.timegrid import STEPS_PER_DAY

__all__ = [
    "LEAD_BUCKETS_H",
    "ForecastLog",
    "dynamic_uplift_kw",
    "forecast_quality",
    "household_quality",
    "pinball",
    "row_uplift_kw",
]

#: Relative slack of the coverage counts: the log keeps float32 forecasts.
_TOL = 1e-5
#: Lead-time buckets (hours) the errors are judged by.
LEAD_BUCKETS_H = (0.0, 1.0, 4.0, 8.0, 12.0, 24.0, 48.0, 1e9)


def row_uplift_kw(
    coef: np.ndarray,
    sign: np.ndarray,
    q: dict[str, np.ndarray],
    n_households: int,
    coef_other: np.ndarray | None = None,
) -> np.ndarray:
    """``(R, n)`` the p10 uplift of each row (module docstring).

    ``coef``: ``(R, H)`` every row's sensitivity to each household's load; ``q``: the
    forecaster's spreads (:meth:`twin.forecast.Forecaster.inflexible_quantiles_kw`) over
    ``n`` steps. ``coef_other``: ``(R,)`` each row's sensitivity to the other (non-household)
    loads together (their error adds as independent of the households').
    """
    c = np.abs(coef)
    r = len(sign)
    up = np.empty((r, q["base_up_kw"].shape[0]))
    m = np.maximum((c > 1e-12).sum(axis=1), 1)
    for direction, rows in (("up", sign > 0), ("down", sign < 0)):
        if not rows.any():
            continue
        base, pv = q[f"base_{direction}_kw"], q[f"pv_{direction}_kw"]  # (n, H)
        total = base.sum(axis=1)
        d = np.where(total > 1e-9, q[f"agg_base_{direction}_kw"] / np.maximum(total, 1e-9), 1.0)
        scale = np.sqrt(n_households / m[rows])[:, None]
        div = np.minimum(d[None, :] * scale, 1.0)
        up[rows] = np.hypot(div * (c[rows] @ base.T), c[rows] @ pv.T)
        if coef_other is not None and f"other_{direction}_kw" in q:
            other = np.abs(coef_other[rows])[:, None] * q[f"other_{direction}_kw"][None, :]
            up[rows] = np.hypot(up[rows], other)
    return up


@dataclass
class ForecastLog:
    """What the DSO forecast at each re-plan, for the dynamic margin and to judge forecasts
    and risks afterwards (feeder level: the inflexible load at the transformer)."""

    n_steps: int
    k0: list[int] = field(default_factory=list)
    p50_kw: list[np.ndarray] = field(default_factory=list)  # inflexible total, per lead
    p10_kw: list[np.ndarray] = field(default_factory=list)
    p90_kw: list[np.ndarray] = field(default_factory=list)
    pv_kw: list[np.ndarray] = field(default_factory=list)  # PV total forecast, per lead

    def __post_init__(self) -> None:
        # what the DSO planned against while each step was carried out (financial risk)
        self.used_kw = np.full(self.n_steps, np.nan)  # forecast + uplift at the transformer
        self.p50_used_kw = np.full(self.n_steps, np.nan)  # the point forecast in force
        self.planned_kw = np.full(self.n_steps, np.nan)  # the plan's total at the transformer
        self.binding = np.zeros(self.n_steps, bool)  # the transformer row bound in the plan
        # household base-load forecasts: the first issue of each day, its first 24 h
        self.hh_k0: list[int] = []
        self.hh_mean_kw: list[np.ndarray] = []  # (n, H)
        self.hh_up_kw: list[np.ndarray] = []  # 90th percentile minus the mean
        self.hh_down_kw: list[np.ndarray] = []  # the mean minus the 10th percentile

    def record_households(
        self, k0: int, mean: np.ndarray, up: np.ndarray, down: np.ndarray
    ) -> None:
        """Keep the households' base-load forecast of the first issue of each day."""
        if self.hh_k0 and self.hh_k0[-1] // STEPS_PER_DAY == k0 // STEPS_PER_DAY:
            return
        n = min(len(mean), STEPS_PER_DAY)
        self.hh_k0.append(k0)
        self.hh_mean_kw.append(mean[:n].astype(np.float32))
        self.hh_up_kw.append(up[:n].astype(np.float32))
        self.hh_down_kw.append(down[:n].astype(np.float32))

    def record(
        self, k0: int, p50: np.ndarray, p10: np.ndarray, p90: np.ndarray, pv: np.ndarray
    ) -> None:
        self.k0.append(k0)
        self.p50_kw.append(p50.astype(np.float32))
        self.p10_kw.append(p10.astype(np.float32))
        self.p90_kw.append(p90.astype(np.float32))
        self.pv_kw.append(pv.astype(np.float32))

    def recent_errors(
        self, k0: int, actual: np.ndarray, days: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(lead_steps, error_kw)`` of the forecasts issued in the last ``days`` for steps
        already measured (``actual``: the metered inflexible load of steps ``0 .. k0-1``)."""
        leads, errs = [], []
        for i in range(len(self.k0) - 1, -1, -1):
            t0 = self.k0[i]
            if t0 < k0 - days * STEPS_PER_DAY:
                break
            n = min(len(self.p50_kw[i]), k0 - t0)
            if n <= 0:
                continue
            leads.append(np.arange(n))
            errs.append(actual[t0 : t0 + n] - self.p50_kw[i][:n])
        if not leads:
            return np.zeros(0, int), np.zeros(0)
        return np.concatenate(leads), np.concatenate(errs)


def dynamic_uplift_kw(
    leads: np.ndarray, errors: np.ndarray, n: int, quantile: float
) -> np.ndarray | None:
    """``(n,)`` the ``quantile`` of recent errors per lead bucket (≥ 0), or None with too few
    errors measured (under a day's worth)."""
    if len(errors) < STEPS_PER_DAY:
        return None
    lead_h = np.arange(n) * 0.25
    err_h = leads * 0.25
    out = np.zeros(n)
    edges = np.asarray(LEAD_BUCKETS_H)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (err_h >= lo) & (err_h < hi)
        val = float(np.quantile(errors[sel], quantile)) if sel.sum() >= 8 else None
        if val is None:
            val = float(np.quantile(errors, quantile))
        out[(lead_h >= lo) & (lead_h < hi)] = max(val, 0.0)
    return out


def pinball(y: np.ndarray, q_pred: np.ndarray, q: float) -> np.ndarray:
    """The pinball (quantile) loss of predicting the ``q`` quantile ``q_pred`` for ``y``."""
    d = y - q_pred
    return np.maximum(q * d, (q - 1.0) * d)


def household_quality(log: ForecastLog, actual_kw: np.ndarray, first: int) -> dict[str, float]:
    """Single households' base-load forecasts (the first issue of each day, 24 h ahead)
    against their metered base load ``actual_kw`` ``(T, H)``: rMAE of the point forecast
    (MAE over each household's p99 − p1 range, averaged over households), pinball loss of
    the 10th and 90th percentiles and the point forecast (kW), and how often the outcome lay
    above the 90th / below the 10th percentile."""
    n_t = len(actual_kw)
    picks = []
    for k0, mean in zip(log.hh_k0, log.hh_mean_kw, strict=True):
        t = k0 + np.arange(len(mean))
        ok = (t >= first) & (t < n_t)
        picks.append((t[ok], ok))
    n = sum(len(t) for t, _ in picks)
    if not n:
        return {}
    # the issues' rows one after the other, filled in place (a year: each array ~30 MB, and
    # lists of pieces and their concatenations would be held at once)
    shape = (n, *np.shape(actual_kw)[1:])
    y, mean, p90, p10 = (np.empty(shape) for _ in range(4))
    at = 0
    for (t, ok), m, up, down in zip(
        picks, log.hh_mean_kw, log.hh_up_kw, log.hh_down_kw, strict=True
    ):
        r = slice(at, at + len(t))
        y[r], mean[r], p90[r], p10[r] = actual_kw[t], m[ok], up[ok], down[ok]
        at += len(t)
    p90 += mean  # the mean plus the 90th percentile's distance
    np.subtract(mean, p10, out=p10)  # the mean minus the 10th percentile's distance
    span = np.percentile(actual_kw[first:], 99, axis=0) - np.percentile(
        actual_kw[first:], 1, axis=0
    )
    span = np.where(span > 1e-9, span, 1.0)
    tol = _TOL * np.maximum(np.abs(y), 1.0)
    return {
        "forecast_household_rmae": float((np.abs(y - mean).mean(axis=0) / span).mean()),
        "forecast_household_pinball_p10_kw": float(pinball(y, p10, 0.1).mean()),
        "forecast_household_pinball_p50_kw": float(pinball(y, mean, 0.5).mean()),
        "forecast_household_pinball_p90_kw": float(pinball(y, p90, 0.9).mean()),
        "forecast_household_above_p90_share": float((y > p90 + tol).mean()),
        "forecast_household_below_p10_share": float((y < p10 - tol).mean()),
    }


def forecast_quality(
    log: ForecastLog,
    actual_kw: np.ndarray,
    actual_pv_kw: np.ndarray,
    first: int,
    actual_base_kw: np.ndarray,
) -> dict[str, float]:
    """The DSO's forecasts of the feeder's inflexible load judged against what happened
    (steps from ``first``, the reported window), by lead-time bucket: rMAE of the median
    (MAE over the p99 − p1 range of the actual load, as OpenSTEF reports it), pinball loss
    of the 10th/50th/90th percentiles (kW) and the share of outcomes above the 90th and
    below the 10th percentile (about 0.1 each when calibrated); the PV MAPE 4 h ahead
    (daylight steps, where the actual PV is above 5 % of its maximum)."""
    n_t = len(actual_kw)
    rows = {"lead": [], "y": [], "p10": [], "p50": [], "p90": [], "pv_fc": [], "pv": []}
    for k0, p50, p10, p90, pv in zip(
        log.k0, log.p50_kw, log.p10_kw, log.p90_kw, log.pv_kw, strict=True
    ):
        t = k0 + np.arange(len(p50))
        ok = (t >= first) & (t < n_t)
        rows["lead"].append(np.arange(len(p50))[ok])
        rows["y"].append(actual_kw[t[ok]])
        rows["p10"].append(p10[ok])
        rows["p50"].append(p50[ok])
        rows["p90"].append(p90[ok])
        rows["pv_fc"].append(pv[ok])
        rows["pv"].append(actual_pv_kw[t[ok]])
    if not rows["lead"] or not sum(len(x) for x in rows["lead"]):
        return {}
    a = {k: np.concatenate(v).astype(float) for k, v in rows.items()}
    span = float(np.percentile(actual_kw[first:], 99) - np.percentile(actual_kw[first:], 1))
    span = span if span > 1e-9 else 1.0
    out: dict[str, float] = {"forecast_issues": len(log.k0)}
    lead_h = a["lead"] * 0.25
    edges = LEAD_BUCKETS_H
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (lead_h >= lo) & (lead_h < hi)
        if not sel.any():
            continue
        tag = f"{lo:g}_{hi:g}h" if hi < 1e8 else f"{lo:g}h_plus"
        y = a["y"][sel]
        out[f"forecast_trafo_rmae_{tag}"] = float(np.abs(y - a["p50"][sel]).mean() / span)
        for q, key in ((0.1, "p10"), (0.5, "p50"), (0.9, "p90")):
            out[f"forecast_trafo_pinball_{key}_{tag}_kw"] = float(pinball(y, a[key][sel], q).mean())
        tol = _TOL * np.maximum(np.abs(y), 1.0)
        out[f"forecast_trafo_above_p90_share_{tag}"] = float((y > a["p90"][sel] + tol).mean())
        out[f"forecast_trafo_below_p10_share_{tag}"] = float((y < a["p10"][sel] - tol).mean())
    y, p50 = a["y"], a["p50"]
    out["forecast_trafo_rmae"] = float(np.abs(y - p50).mean() / span)
    tol = _TOL * np.maximum(np.abs(y), 1.0)
    out["forecast_trafo_above_p90_share"] = float((y > a["p90"] + tol).mean())
    out["forecast_trafo_below_p10_share"] = float((y < a["p10"] - tol).mean())
    out.update(household_quality(log, actual_base_kw, first))
    at4h = a["lead"] == 16
    day = at4h & (a["pv"] > 0.05 * max(float(actual_pv_kw.max()), 1e-9))
    if day.any():
        out["forecast_pv_mape_4h"] = float(
            np.mean(np.abs(a["pv_fc"][day] - a["pv"][day]) / a["pv"][day])
        )
    return out
