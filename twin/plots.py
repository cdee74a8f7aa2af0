"""Figures of one run (PNG, matplotlib Agg), written into the run's staging folder.

Every figure is titled with the feeder, scenario, contract and period and has units on every
axis. Runs longer than :data:`DAILY_AFTER_DAYS` days are drawn as daily maximum and minimum
(a year of 15-minute values is a solid block at figure width). Each ``fig_*`` function
returns a :class:`Figure` whose ``data`` are the arrays it drew, so tests compare the figures
with the results rather than pixels.

=============================== ===============================================================
``transformer_loading.png``     the station's signed active power (import > 0, export < 0)
                                against ± its rating, and its loading (% of the rating)
``voltage_band.png``            lowest and highest voltage over the LV buses, EN 50160 band
``worst_cable.png``             the most loaded cable's current against its ampacity
``feeder_line_loading.png``     map: every cable coloured by its highest loading (open-ended)
``feeder_bus_voltage.png``      map: every LV bus coloured by its lowest and highest voltage
``transformer_duration_curve.png`` the station's loading, sorted
``indoor_temperature.png``      heat-pump homes: indoor temperature minus setpoint
``ev_state_of_charge.png``      EVs: state of charge and the feeder's EV charging power
``performance_band.png``        performance contract: the worst household's band and load
``forecast_risk.png``           performance contract on forecasts: forecast vs actual vs limit
                                with technical and financial risk shaded (E.DSO Fig. 5-1)
``forecast_quality.png``        performance contract on forecasts: rMAE and quantile
                                reliability of the DSO's feeder forecast by lead time
``state_estimation.png``        the DSO's estimate (measurement preset) against the truth: the
                                station's and the most loaded cable's loading, and the worst
                                voltage and cable-loading error of every step
=============================== ===============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from twin.result import RunResult  # noqa: E402

__all__ = ["DAILY_AFTER_DAYS", "Figure", "daily", "time_axis", "write_figures"]

#: Runs longer than this many days are drawn as daily maximum / minimum.
DAILY_AFTER_DAYS = 14
DPI = 110


@dataclass
class Figure:
    """A written figure: its file, a one-line caption and the arrays it drew."""

    name: str
    path: Path
    caption: str
    data: dict[str, Any] = field(default_factory=dict)


def _save(fig, path: Path) -> None:
    """Save into the run's staging folder (twin.writer.RunFolder moves it into place)."""
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)


def time_axis(ax) -> None:
    """Readable date ticks for the span shown: hours within two days, days within five weeks,
    months beyond."""
    lo, hi = ax.get_xlim()
    days = hi - lo  # matplotlib dates are in days
    if days <= 2.5:
        ax.xaxis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, 3)))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M\n%d %b"))
    elif days <= 35:
        ax.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, int(np.ceil(days / 10)))))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%a\n%d %b"))
    else:
        ax.xaxis.set_major_locator(mdates.MonthLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b"))
    ax.set_xlabel("time (UTC+1, no daylight saving)", fontsize=8)
    ax.grid(alpha=0.3)


def _is_long(result: RunResult) -> bool:
    return result.window.days > DAILY_AFTER_DAYS


def daily(
    times: pd.DatetimeIndex, values: np.ndarray
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """Per calendar day: (day, minimum, maximum) of ``values`` ``(T,)`` or ``(T, n)`` (over
    the steps of the day and any columns)."""
    v = np.asarray(values, dtype=float).reshape(len(times), -1)
    days = pd.DatetimeIndex(times).normalize()
    uniq, inverse = np.unique(days.values, return_inverse=True)
    lo = np.full(len(uniq), np.inf)
    hi = np.full(len(uniq), -np.inf)
    np.minimum.at(lo, inverse, v.min(axis=1))
    np.maximum.at(hi, inverse, v.max(axis=1))
    return pd.DatetimeIndex(uniq), lo, hi


_BOX = {"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85}


def _title(ax, what: str, result: RunResult) -> None:
    ax.set_title(f"{what}\n{result.title()}", fontsize=9, loc="left")


def _when(t: Any) -> str:
    return pd.Timestamp(t).strftime("%d %b %H:%M")


# ----------------------------------------------------------------------------------------------
# transformer
# ----------------------------------------------------------------------------------------------
def fig_transformer(result: RunResult, path: Path) -> Figure:
    """The station's signed active power (import / export) against ± its rating, and its
    loading in % of the rating."""
    from twin.grid.compliance import station_of

    st = station_of(result.grid, result.feeder.net)
    times = result.window.times
    p, loading, rating = st.p_kw, st.loading_pct, st.rating_kva
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(10, 6.2), sharex=True, gridspec_kw={"height_ratios": [1.6, 1]}
    )
    data: dict[str, Any] = {"p_kw": p, "loading_pct": loading, "rating_kva": rating}
    if _is_long(result):
        day, lo, hi = daily(times, p)
        ax.fill_between(day, lo, hi, color="0.85", step="mid", label="daily range")
        ax.plot(
            day, hi, color="tab:blue", lw=1.1, drawstyle="steps-mid", label="daily highest (import)"
        )
        ax.plot(
            day,
            lo,
            color="tab:orange",
            lw=1.1,
            drawstyle="steps-mid",
            label="daily lowest (< 0: export)",
        )
        dl, _, dh = daily(times, loading)
        ax2.plot(dl, dh, color="tab:purple", lw=1.1, drawstyle="steps-mid", label="daily maximum")
        data.update(day=day, p_daily_min_kw=lo, p_daily_max_kw=hi, loading_daily_max_pct=dh)
    else:
        ax.fill_between(
            times, 0, p, where=p >= 0, color="tab:blue", alpha=0.35, lw=0, label="import (MV → LV)"
        )
        if (p < 0).any():
            ax.fill_between(
                times,
                0,
                p,
                where=p < 0,
                color="tab:orange",
                alpha=0.5,
                lw=0,
                label="export (LV → MV)",
            )
        ax.plot(times, p, color="0.2", lw=0.7)
        ax2.plot(times, loading, color="tab:purple", lw=0.9, label="loading")
    export = bool((p < 0).any())
    ax.axhline(0, color="0.3", lw=0.6)
    ax.axhline(
        rating,
        color="crimson",
        ls="--",
        lw=1,
        label=f"rating {'±' if export else ''}{rating:,.0f} kVA",
    )
    if export:
        ax.axhline(-rating, color="crimson", ls="--", lw=1)
    k_imp, k_exp = int(np.argmax(p)), int(np.argmin(p))
    note = f"peak import {p[k_imp]:,.0f} kW ({_when(times[k_imp])})"
    if p[k_exp] < 0:
        note += f"   peak export {-p[k_exp]:,.0f} kW ({_when(times[k_exp])})"
    ax.text(0.99, 0.89, note, transform=ax.transAxes, fontsize=8, va="top", ha="right", bbox=_BOX)
    top = max(rating, float(np.abs(p).max())) * 1.35  # room for the legend and the note
    ax.set_ylim(-top if export else -0.15 * top, top)
    ax.set_ylabel("active power at the HV side (kW)\nimport > 0, export < 0")
    ax.legend(loc="upper right", fontsize=8, ncol=4)
    _title(ax, f"Transformer station ({len(st.units)} unit(s), {rating:,.0f} kVA)", result)
    ax2.axhline(100, color="crimson", ls="--", lw=1, label="rating (100 %)")
    over_h = float((loading > 100).sum() * 0.25)
    ax2.set_ylabel("loading (% of rating)\napparent power")
    ax2.set_ylim(0, max(125.0, float(loading.max()) * 1.3))
    ax2.text(
        0.01,
        0.9,
        f"peak {loading.max():.1f} %, {over_h:g} h above 100 %",
        transform=ax2.transAxes,
        fontsize=8,
        va="top",
        bbox=_BOX,
    )
    ax2.legend(loc="upper right", fontsize=8, ncol=2)
    time_axis(ax2)
    ax.set_xlabel("")
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        "transformer_loading",
        path,
        "Transformer station: signed active power (import/export) against its rating, and its loading",
        data,
    )


# ----------------------------------------------------------------------------------------------
# voltages
# ----------------------------------------------------------------------------------------------
def fig_voltage_band(result: RunResult, path: Path) -> Figure:
    """Lowest and highest voltage over the energised LV buses (the MV bus excluded), with the
    EN 50160 band."""
    from twin.grid.compliance import BAND_95_PU, BAND_ALWAYS_PU

    g, net = result.grid, result.feeder.net
    lv = np.flatnonzero(result.lv_buses())
    vm = g.vm_pu[:, lv]
    times = result.window.times
    lo, hi = vm.min(axis=1), vm.max(axis=1)
    un = net.bus.loc[g.bus_index[lv], "vn_kv"].to_numpy(float)
    un_v = float(np.median(un)) * 1e3 if len(un) else float("nan")
    fig, ax = plt.subplots(figsize=(10, 4.2))
    data: dict[str, Any] = {"vm_min_pu": lo, "vm_max_pu": hi, "buses": g.bus_index[lv]}
    if _is_long(result):
        day, dlo, _ = daily(times, lo)
        _, _, dhi = daily(times, hi)
        ax.fill_between(
            day,
            dlo,
            dhi,
            step="mid",
            color="tab:blue",
            alpha=0.35,
            label="daily lowest–highest over the LV buses",
        )
        data.update(day=day, vm_daily_min_pu=dlo, vm_daily_max_pu=dhi)
    else:
        ax.fill_between(
            times,
            lo,
            hi,
            color="tab:blue",
            alpha=0.35,
            lw=0,
            label="lowest–highest over the LV buses",
        )
        ax.plot(times, lo, color="tab:blue", lw=0.8)
    ax.axhline(BAND_95_PU[0], color="crimson", ls="--", lw=1, label="±10 % (95 % of every week)")
    ax.axhline(BAND_95_PU[1], color="crimson", ls="--", lw=1)
    ax.axhline(BAND_ALWAYS_PU[0], color="crimson", ls=":", lw=1.2, label="−15 % (always)")
    ax.axhline(1.0, color="0.5", lw=0.6)
    kmin = np.unravel_index(np.argmin(vm), vm.shape)
    names = np.asarray(result.element_names("bus"), dtype=object)[lv]
    ax.text(
        0.01,
        0.03,
        f"lowest {vm[kmin]:.3f} p.u. at {names[kmin[1]]} ({_when(times[kmin[0]])}); "
        f"highest {hi.max():.3f} p.u.",
        transform=ax.transAxes,
        fontsize=8,
    )
    ax.set_ylim(min(0.82, float(lo.min()) - 0.01), max(1.12, float(hi.max()) + 0.01))
    ax.set_ylabel(f"voltage (p.u. of Un = {un_v:.0f} V)")
    ax.legend(loc="upper right", fontsize=8, ncol=3)
    _title(ax, f"Voltage band of the {len(lv)} LV buses (EN 50160)", result)
    time_axis(ax)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        "voltage_band", path, "Lowest and highest LV bus voltage against the EN 50160 band", data
    )


# ----------------------------------------------------------------------------------------------
# the worst cable
# ----------------------------------------------------------------------------------------------
def fig_worst_cable(result: RunResult, path: Path) -> Figure:
    """The cable with the highest loading: its current against its ampacity over time."""
    from twin.grid.ratings import line_ampacity_ka

    g, net = result.grid, result.feeder.net
    times = result.window.times
    col = int(np.argmax(g.line_loading_pct.max(axis=0)))
    line = g.line_index[col]
    amp_a = float(line_ampacity_ka(net)[net.line.index.get_loc(line)]) * 1e3
    i_a = g.line_loading_pct[:, col] / 100.0 * amp_a
    name = result.element_names("line")[col]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    data: dict[str, Any] = {"line": int(line), "i_a": i_a, "ampacity_a": amp_a}
    if _is_long(result):
        day, _, hi = daily(times, i_a)
        ax.plot(
            day, hi, color="tab:blue", lw=1.1, drawstyle="steps-mid", label="daily maximum current"
        )
        data.update(day=day, i_daily_max_a=hi)
    else:
        ax.plot(times, i_a, color="tab:blue", lw=1.0, label="current (larger end)")
    ax.axhline(amp_a, color="crimson", ls="--", lw=1.2, label=f"ampacity {amp_a:,.0f} A")
    over = i_a > amp_a
    if over.any():
        ax.fill_between(
            times,
            amp_a,
            i_a,
            where=over,
            color="crimson",
            alpha=0.35,
            lw=0,
            label=f"{over.sum() * 0.25:g} h above",
        )
    k = int(np.argmax(i_a))
    ax.annotate(
        f"{i_a[k]:,.0f} A = {100 * i_a[k] / amp_a:.0f} % ({_when(times[k])})",
        (times[k], i_a[k]),
        textcoords="offset points",
        xytext=(8, 6),
        fontsize=8,
        bbox=_BOX,
    )
    std = net.line.at[line, "std_type"] if "std_type" in net.line else None
    kind = f", {std}" if isinstance(std, str) and std else ""
    length = float(net.line.at[line, "length_km"]) * 1e3
    ax.set_ylim(0, max(amp_a, float(i_a.max())) * 1.3)
    ax.set_ylabel("current (A)")
    ax.legend(loc="upper right", fontsize=8, ncol=3)
    _title(
        ax,
        f"Most loaded cable: {name} (line {line}{kind}, {length:.0f} m) against its ampacity",
        result,
    )
    time_axis(ax)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        "worst_cable", path, f"The most loaded cable ({name}): current against its ampacity", data
    )


# ----------------------------------------------------------------------------------------------
# households
# ----------------------------------------------------------------------------------------------
def _band(ax, times, values: np.ndarray, color: str, label: str, long: bool) -> dict[str, Any]:
    """Median line and 5-95 % band over the households (columns); daily for long runs."""
    p5, p50, p95 = np.percentile(values, [5, 50, 95], axis=1)
    if long:
        day, lo, _ = daily(times, p5)
        _, _, hi = daily(times, p95)
        _, mlo, mhi = daily(times, p50)
        ax.fill_between(
            day,
            lo,
            hi,
            step="mid",
            color=color,
            alpha=0.25,
            label=f"{label}: daily range of the 5–95 % band",
        )
        ax.plot(
            day,
            0.5 * (mlo + mhi),
            color=color,
            lw=1.3,
            drawstyle="steps-mid",
            label=f"{label}: median household, daily mid-range",
        )
        return {"day": day, "p5_daily_min": lo, "p95_daily_max": hi}
    ax.fill_between(
        times, p5, p95, color=color, alpha=0.25, lw=0, label=f"{label}: 5–95 % of households"
    )
    ax.plot(times, p50, color=color, lw=1.6, label=f"{label}: median household", zorder=4)
    return {"p5": p5, "p50": p50, "p95": p95}


def fig_indoor(result: RunResult, path: Path) -> Figure:
    f, lg = result.fleet, result.log
    times = result.window.times
    band = float(result.cfg.service.comfort_band_k)
    dev = lg["t_in_c"][:, f.has_hp] - f.setpoint_c[f.has_hp]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    data = _band(ax, times, dev, "tab:orange", "indoor − setpoint", _is_long(result))
    worst = dev.min(axis=1)
    if _is_long(result):
        day, lo, _ = daily(times, worst)
        ax.plot(
            day,
            lo,
            color="tab:red",
            lw=0.9,
            drawstyle="steps-mid",
            label="coldest household, daily minimum",
        )
    else:
        ax.plot(times, worst, color="tab:red", lw=0.8, label="coldest household")
    ax.axhline(-band, color="crimson", ls="--", lw=1, label=f"comfort limit (−{band:g} K)")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_ylabel("indoor temperature − setpoint (K)")
    ax.set_ylim(min(-1.4 * band, float(worst.min()) - 0.1), max(0.8, float(dev.max()) + 0.3))
    ax.legend(loc="upper right", fontsize=8, ncol=2)
    _title(ax, f"Indoor temperature of the {int(f.has_hp.sum())} heat-pump homes", result)
    time_axis(ax)
    fig.tight_layout()
    _save(fig, path)
    data["worst_k"] = worst
    return Figure(
        "indoor_temperature",
        path,
        "Indoor temperature of the heat-pump homes against the comfort band",
        data,
    )


def fig_ev(result: RunResult, path: Path) -> Figure:
    """EVs: state of charge (5-95 % band, median, the lowest car) and the feeder's EV
    charging power."""
    f, lg = result.fleet, result.log
    times = result.window.times
    long = _is_long(result)
    soc = lg["ev_soc_kwh"][:, f.has_ev] / f.ev_capacity_kwh[f.has_ev] * 100
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(10, 5.8), sharex=True, gridspec_kw={"height_ratios": [1.5, 1]}
    )
    data = _band(ax, times, soc, "tab:green", "state of charge", long)
    lowest = soc.min(axis=1)
    p_ev = lg["p_ev_kw"].sum(axis=1)
    if long:
        day, lo, _ = daily(times, lowest)
        ax.plot(
            day,
            lo,
            color="tab:red",
            lw=0.9,
            drawstyle="steps-mid",
            label="lowest car, daily minimum",
        )
        dp, _, hi = daily(times, p_ev)
        ax2.plot(dp, hi, color="tab:blue", lw=1.0, drawstyle="steps-mid", label="daily maximum")
    else:
        ax.plot(times, lowest, color="tab:red", lw=0.8, label="lowest car")
        ax2.plot(times, p_ev, color="tab:blue", lw=0.9, label="EV home charging, all EVs")
    ax.set_ylabel("state of charge\n(% of battery)")
    ax.set_ylim(0, 104)  # the median often sits at 100 %: keep it visible inside the frame
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    _title(ax, f"EV state of charge ({int(f.has_ev.sum())} EVs) and their charging power", result)
    ax2.set_ylabel("EV charging power,\nfeeder total (kW)")
    ax2.set_ylim(0, max(1.0, float(p_ev.max())) * 1.15)
    ax2.legend(loc="upper right", fontsize=8)
    time_axis(ax2)
    fig.tight_layout()
    _save(fig, path)
    data.update(p_ev_total_kw=p_ev, soc_lowest_pct=lowest)
    return Figure(
        "ev_state_of_charge", path, "EV state of charge and the feeder's EV charging power", data
    )


#: Logged plans a contract may provide (the household's planned grid exchange, kW).
PLAN_KEYS = ("planned_net_kw", "hems_planned_net_kw")


def worst_band_household(result: RunResult) -> int | None:
    """The signed household that is worst off against its capacity band: the most energy
    above its band, then the highest peak load (when every household keeps its band);
    ``None`` without a band."""
    band = result.log.get("band_kw")
    if band is None or not np.isfinite(band).any():
        return None
    net = result.log["p_net_kw"]
    signed = np.isfinite(band).any(axis=0)
    excess = np.where(np.isfinite(band), np.maximum(net - np.nan_to_num(band), 0.0), 0.0)
    excess[excess < 1e-6] = 0.0
    excess_kwh = np.where(signed, excess.sum(axis=0) * 0.25, -1.0)
    peak = np.where(signed, net.max(axis=0), -np.inf)
    return int(np.lexsort((-peak, -excess_kwh))[0])


def fig_performance_band(result: RunResult, path: Path) -> Figure | None:
    """The performance contract's capacity band (the DSO's allocation), the household's plan
    where the contract logs one, and its actual net load, for :func:`worst_band_household`:
    the whole period above, the day around its tightest step below (with its devices)."""
    h = worst_band_household(result)
    if h is None:
        return None
    lg, times = result.log, result.window.times
    band, net = lg["band_kw"][:, h], lg["p_net_kw"][:, h]
    plan_key = next((key for key in PLAN_KEYS if key in lg), None)
    gap = np.where(np.isfinite(band), net - np.nan_to_num(band), -np.inf)
    k = int(np.argmax(gap))
    excess = np.where(np.isfinite(band), np.maximum(net - np.nan_to_num(band), 0.0), 0.0)
    excess[excess < 1e-6] = 0.0
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 6.6), gridspec_kw={"height_ratios": [1, 1.2]})
    data: dict[str, Any] = {
        "household": h,
        "band_kw": band,
        "p_net_kw": net,
        "excess_kwh": float(excess.sum() * 0.25),
    }
    if _is_long(result):
        day, _, bhi = daily(times, np.nan_to_num(band, nan=0.0))
        _, _, nhi = daily(times, net)
        ax.plot(
            day, bhi, color="crimson", lw=1.1, drawstyle="steps-mid", label="band, daily maximum"
        )
        ax.plot(
            day,
            nhi,
            color="0.15",
            lw=1.0,
            drawstyle="steps-mid",
            label="actual net load, daily maximum",
        )
    else:
        ax.step(
            times,
            band,
            where="post",
            color="crimson",
            lw=1.2,
            label="capacity band: the DSO's allocation",
        )
        ax.plot(times, net, color="0.15", lw=0.9, label="actual net load")
    if plan_key is not None:
        data["plan_kw"] = lg[plan_key][:, h]
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_ylabel("power (kW)")
    ax.legend(loc="upper right", fontsize=8, ncol=2)
    _title(
        ax,
        f"Performance contract: household {h}, band and actual load "
        f"({data['excess_kwh']:.2f} kWh above its band over the period)",
        result,
    )
    time_axis(ax)
    ax.set_xlabel("")
    # the day around the tightest step
    lo, hi = max(0, k - 48), min(len(times), k + 48)
    sl = slice(lo, hi)
    t = times[sl]
    ax.axvspan(t[0], t[-1], color="0.85", alpha=0.5, zorder=0)
    ax2.step(
        t,
        band[sl],
        where="post",
        color="crimson",
        lw=1.6,
        label="capacity band (the DSO's allocation)",
    )
    if plan_key is not None:
        ax2.step(
            t,
            lg[plan_key][sl, h],
            where="post",
            color="tab:purple",
            lw=1.0,
            ls="--",
            label="the household's plan",
        )
    ax2.step(t, net[sl], where="post", color="0.15", lw=1.2, label="actual net load (15-min means)")
    for key, color, lab in (
        ("p_hp_kw", "tab:orange", "heat pump"),
        ("p_ev_kw", "tab:green", "EV"),
        ("p_bat_kw", "tab:cyan", "battery"),
        ("p_pv_kw", "gold", "PV production"),
    ):
        if np.any(lg[key][sl, h]):
            ax2.step(t, lg[key][sl, h], where="post", color=color, lw=0.9, alpha=0.9, label=lab)
    if (excess[sl] > 0).any():
        ax2.fill_between(
            t,
            band[sl],
            net[sl],
            where=excess[sl] > 0,
            step="post",
            color="crimson",
            alpha=0.3,
            label="above the band",
        )
    ax2.axhline(0, color="0.5", lw=0.6)
    head = float(-gap[k])
    ax2.set_title(
        f"The 24 h around its tightest step ({_when(times[k])}: "
        + (
            f"{-head:.2f} kW above the band)"
            if head < -1e-6
            else f"{max(head, 0.0):.2f} kW headroom)"
        )
        + (
            ""
            if plan_key
            else "; the band is the plan the household's HEMS follows (its device plan is not logged)"
        ),
        fontsize=8,
        loc="left",
    )
    ax2.set_ylabel("power (kW)")
    ax2.legend(loc="upper right", fontsize=7, ncol=3)
    time_axis(ax2)
    fig.tight_layout()
    _save(fig, path)
    data.update(zoom_steps=np.arange(lo, hi), tightest_step=k)
    return Figure(
        "performance_band",
        path,
        f"Performance contract: household {h}'s capacity band and actual load",
        data,
    )


# ----------------------------------------------------------------------------------------------
# forecasts and risk (performance contract)
# ----------------------------------------------------------------------------------------------
def _risk_window(times: Any, score: np.ndarray, days: int = 7) -> slice:
    """The ``days`` (whole days) with the most risk, or the whole run if it is shorter."""
    n = len(times)
    width = days * 96
    if n <= 2 * width:
        return slice(0, n)
    c = np.concatenate([[0.0], np.cumsum(score)])
    sums = c[width::96] - c[: len(c) - width : 96][: len(c[width::96])]
    start = int(np.argmax(sums)) * 96
    return slice(start, start + width)


def fig_forecast_risk(result: RunResult, path: Path) -> Figure | None:
    """The E.DSO paper's Figure 5-1 on the simulated result: at the transformer, what the DSO
    planned on (its forecast of the uncontrollable load, and that plus the margin policy's
    uplift), what happened, and the limit; technical risk (the realised load above the
    rating) and financial risk (capacity withheld while the limit bound the plan, for load
    that did not come) shaded."""
    from twin.grid.compliance import station_of

    cf = result.contract_feeder
    if "dso_inflexible_p50_kw" not in cf:
        return None
    k = result.kpis
    times = result.window.times
    lg = result.log
    st = station_of(result.grid, result.feeder.net)
    other = result.p_load_kw.sum(axis=1) - lg["p_net_kw"].sum(axis=1)
    actual_inflex = lg["p_base_kw"].sum(axis=1) - lg["p_pv_kw"].sum(axis=1) + other
    p50 = np.asarray(cf["dso_inflexible_p50_kw"], float)
    used = np.asarray(cf["dso_inflexible_planned_kw"], float)
    planned = np.asarray(cf["dso_planned_kw"], float)
    binding = np.asarray(cf["dso_trafo_binding"], bool)
    limit = k.get("performance_trafo_limit_kw")
    rating = st.rating_kva
    tech = np.clip(st.s_kva - rating, 0.0, None)
    fin = np.where(binding, np.clip(used - actual_inflex, 0.0, None), 0.0)
    sl = _risk_window(times, tech + fin)
    t = times[sl]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(10, 6.6), sharex=True)
    ax.plot(t, st.p_kw[sl], color="0.15", lw=0.9, label="actual (power flow)")
    ax.plot(t, planned[sl], color="tab:blue", lw=0.9, ls="--", label="planned (on the forecast)")
    ax.axhline(rating, color="crimson", lw=1.1, label=f"rating {rating:,.0f} kVA")
    if limit is not None:
        ax.axhline(limit, color="crimson", lw=0.9, ls=":", label=f"planning limit {limit:,.0f} kW")
    over = st.s_kva[sl] > rating
    if over.any():
        ax.fill_between(
            t,
            rating,
            st.s_kva[sl],
            where=over,
            color="crimson",
            alpha=0.35,
            lw=0,
            label="technical risk (above the rating)",
        )
    ax.set_ylabel("transformer load (kW)")
    ax.legend(loc="upper left", fontsize=7, ncol=3)
    ax.set_ylim(0, max(rating, float(np.nanmax(st.s_kva[sl]))) * 1.3)
    _title(ax, "Planning on forecasts: forecast vs actual vs limit (E.DSO Fig. 5-1)", result)
    ax2.plot(t, actual_inflex[sl], color="0.15", lw=0.9, label="actual uncontrollable load")
    ax2.plot(t, p50[sl], color="tab:green", lw=0.9, label="forecast (p50)")
    ax2.plot(
        t,
        used[sl],
        color="tab:orange",
        lw=0.9,
        ls="--",
        label=f"planned on ({k.get('performance_margin_policy', '?')} policy)",
    )
    shade = fin[sl] > 0
    if shade.any():
        ax2.fill_between(
            t,
            actual_inflex[sl],
            used[sl],
            where=shade,
            color="tab:orange",
            alpha=0.35,
            lw=0,
            label="financial risk (withheld, not needed)",
        )
    ax2.set_ylabel("uncontrollable load (kW)\nbase load − PV + other loads")
    ax2.legend(loc="upper left", fontsize=7, ncol=2)
    note = (
        f"technical risk: {k.get('technical_risk_events', 0)} events, "
        f"{k.get('technical_risk_kwh', 0.0):,.1f} kVAh above the rating   "
        f"financial risk: {k.get('financial_risk_kwh', 0.0):,.1f} kWh "
        f"(€ {k.get('financial_risk_eur', 0.0):,.2f})   whole run"
    )
    ax2.text(0.99, 0.03, note, transform=ax2.transAxes, fontsize=7, ha="right", bbox=_BOX)
    time_axis(ax2)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        "forecast_risk",
        path,
        "Forecast vs actual vs limit at the transformer, technical and financial risk shaded",
        {
            "steps": np.arange(len(times))[sl],
            "actual_inflexible_kw": actual_inflex[sl],
            "forecast_p50_kw": p50[sl],
            "planned_on_kw": used[sl],
            "financial_risk_kw": fin[sl],
            "technical_risk_kva": tech[sl],
        },
    )


def fig_forecast_quality(result: RunResult, path: Path) -> Figure | None:
    """The DSO's forecast of the feeder's uncontrollable load judged by lead time: rMAE of
    the point forecast and how often the outcome fell outside the 10th-90th percentiles."""
    import re

    k = result.kpis
    pat = re.compile(r"forecast_trafo_rmae_(\d+(?:\.\d+)?)_(\d+(?:\.\d+)?)h$")
    buckets = sorted(
        (float(m.group(1)), float(m.group(2)), m.group(0)) for key in k if (m := pat.match(key))
    )
    if not buckets or k.get("forecast") == "PerfectForecaster":
        return None
    labels = [f"{lo:g}–{hi:g} h" for lo, hi, _ in buckets]
    tags = [key.removeprefix("forecast_trafo_rmae_") for _, _, key in buckets]
    rmae = np.array([k[f"forecast_trafo_rmae_{tag}"] for tag in tags])
    above = np.array([k[f"forecast_trafo_above_p90_share_{tag}"] for tag in tags])
    below = np.array([k[f"forecast_trafo_below_p10_share_{tag}"] for tag in tags])
    x = np.arange(len(tags))
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.9))
    ax.bar(x, rmae, color="tab:blue", alpha=0.8)
    ax.axhspan(0.082, 0.095, color="0.8", label="OpenSTEF day-ahead, transformers (0.082–0.095)")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlabel("lead time")
    ax.set_ylabel("rMAE (MAE / p1–p99 range)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("Point forecast of the feeder's uncontrollable load", fontsize=9, loc="left")
    w = 0.38
    ax2.bar(x - w / 2, above, w, color="tab:red", alpha=0.8, label="above the 90th percentile")
    ax2.bar(x + w / 2, below, w, color="tab:green", alpha=0.8, label="below the 10th percentile")
    ax2.axhline(0.1, color="0.2", ls="--", lw=1, label="calibrated (0.10)")
    ax2.set_xticks(x, labels, fontsize=8)
    ax2.set_xlabel("lead time")
    ax2.set_ylabel("share of outcomes")
    ax2.set_ylim(0, max(0.3, float(max(above.max(), below.max())) * 1.3))
    ax2.legend(fontsize=7, loc="upper right")
    hh = k.get("forecast_household_rmae")
    pv = k.get("forecast_pv_mape_4h")
    extra = []
    if hh is not None:
        extra.append(
            f"households: rMAE {hh:.3f}, above p90 {k['forecast_household_above_p90_share']:.2f},"
            f" below p10 {k['forecast_household_below_p10_share']:.2f}"
        )
    if pv is not None:
        extra.append(f"PV MAPE 4 h ahead {pv:.0%} (E.DSO paper: 20–30 %)")
    ax2.set_title("Quantile reliability\n" + "; ".join(extra), fontsize=8, loc="left")
    fig.suptitle(f"Forecast quality\n{result.title()}", fontsize=9, x=0.01, ha="left")
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        "forecast_quality",
        path,
        "The DSO's forecast by lead time: rMAE and quantile reliability",
        {"lead": labels, "rmae": rmae, "above_p90": above, "below_p10": below},
    )


# ----------------------------------------------------------------------------------------------
def fig_state_estimation(result: RunResult, path: Path) -> Figure | None:
    """The DSO's state estimate against the truth (:mod:`twin.measure`)."""
    se = result.estimation
    if se is None or not se.nowcast.observable.any():
        return None
    from twin.grid.compliance import station_of

    g, net = result.grid, result.feeder.net
    times = result.window.times
    long = _is_long(result)
    est = se.nowcast.result
    fin = se.final.result if se.final is not None else None
    lv = result.lv_buses()
    fig, axes = plt.subplots(3, 1, figsize=(10, 9.5), sharex=True)
    data: dict[str, Any] = {}

    def series(ax, values: np.ndarray, color: str, label: str, lw: float = 1.0, ls="-") -> None:
        if long:
            day, _, hi = daily(times, np.nan_to_num(values, nan=-np.inf))
            ax.plot(day, hi, color=color, lw=lw, ls=ls, drawstyle="steps-mid", label=label)
        else:
            ax.plot(times, values, color=color, lw=lw, ls=ls, label=label)

    k = se.kpis
    name = se.settings.name
    truth_st = station_of(g, net).loading_pct
    ax = axes[0]
    if len(station_of(g, net).units):
        est_st = station_of(est, net).loading_pct
        series(ax, truth_st, "black", "truth (power flow)", 1.4)
        series(ax, est_st, "tab:orange", f"estimate as the DSO knew it ({name})", 1.0)
        if fin is not None:
            series(
                ax,
                station_of(fin, net).loading_pct,
                "tab:green",
                "estimate once all meters arrived",
                0.9,
                "--",
            )
        data.update(trafo_truth_pct=truth_st, trafo_est_pct=est_st)
    ax.set_ylabel("transformer loading\n(% of rating)")
    ax.legend(loc="upper right", fontsize=8, ncol=3)
    ax.set_title(
        f"State estimation ({name}): the DSO's estimate against the truth"
        + (" (daily maxima)" if long else "")
        + f"\n{result.title()}",
        fontsize=9,
        loc="left",
    )
    ax = axes[1]
    if g.line_loading_pct.shape[1]:
        col = int(np.argmax(g.line_loading_pct.max(axis=0)))
        cable = result.element_names("line")[col]
        series(ax, g.line_loading_pct[:, col], "black", f"truth: {cable}", 1.4)
        series(ax, est.line_loading_pct[:, col], "tab:orange", "estimate (as known)", 1.0)
        if fin is not None:
            series(
                ax, fin.line_loading_pct[:, col], "tab:green", "estimate (all meters)", 0.9, "--"
            )
        data.update(line=int(g.line_index[col]), line_truth_pct=g.line_loading_pct[:, col])
        data.update(line_est_pct=est.line_loading_pct[:, col])
        ax.set_ylabel("most loaded cable\n(% of ampacity)")
        ax.legend(loc="upper right", fontsize=8, ncol=3)
    ax = axes[2]
    dv = np.abs(est.vm_pu[:, lv] - g.vm_pu[:, lv]).max(axis=1)
    dl = np.abs(est.line_loading_pct - g.line_loading_pct).max(axis=1)
    series(ax, dv * 100.0, "tab:blue", "worst bus voltage error (% of nominal)")
    ax.set_ylabel("voltage error\n(% of nominal)", color="tab:blue")
    ax2 = ax.twinx()
    if long:
        day, _, hi = daily(times, np.nan_to_num(dl, nan=-np.inf))
        ax2.plot(day, hi, color="tab:red", lw=1.0, drawstyle="steps-mid")
    else:
        ax2.plot(times, dl, color="tab:red", lw=1.0)
    ax2.set_ylabel("worst cable-loading\nerror (%-points)", color="tab:red")
    ax.text(
        0.01,
        0.95,
        f"mean |ΔU| {k['se_vm_err_mean_pu']:.4f} p.u., max {k['se_vm_err_max_pu']:.4f}; "
        f"cable loading: mean {k.get('se_line_err_mean_pp', float('nan')):.2f}, "
        f"max {k.get('se_line_err_max_pp', float('nan')):.1f} %-points; "
        f"{k['se_unobservable_steps']} steps unobservable",
        transform=ax.transAxes,
        fontsize=8,
        va="top",
        bbox=_BOX,
    )
    data.update(vm_err_max_pu=dv, line_err_max_pp=dl)
    time_axis(ax)
    fig.tight_layout()
    _save(fig, path)
    return Figure(
        "state_estimation",
        path,
        f"State estimation ({name}): the DSO's estimate of transformer and cable loading "
        "against the truth, and the worst errors per step",
        data,
    )


def write_figures(result: RunResult, out_dir: Path) -> list[Figure]:
    """Write every figure of the run into ``out_dir`` (see the module docstring)."""
    from twin.grid.compliance import loading_duration_curve, station_of
    from twin.grid.plots import plot_bus_voltages, plot_duration_curve, plot_feeder_loading

    out_dir.mkdir(parents=True, exist_ok=True)
    g, f, net = result.grid, result.fleet, result.feeder.net
    figures = [fig_transformer(result, out_dir / "transformer_loading.png")]
    if result.lv_buses().any():
        figures.append(fig_voltage_band(result, out_dir / "voltage_band.png"))
    if g.line_loading_pct.shape[1]:
        figures.append(fig_worst_cable(result, out_dir / "worst_cable.png"))
        peak = g.line_loading_pct.max(axis=0)
        path = out_dir / "feeder_line_loading.png"
        plot_feeder_loading(
            net,
            peak,
            path,
            title=f"Cable loading: each cable's highest loading over the period\n{result.title()}",
            dt_h=0.25,
            hours_over=(g.line_loading_pct > 100).sum(axis=0) * 0.25,
        )
        figures.append(
            Figure(
                "feeder_line_loading",
                path,
                "Map: each cable's highest loading (open-ended colour scale above 100 %)",
                {"line_loading_max_pct": peak},
            )
        )
    lv = result.lv_buses()
    if lv.any():
        vm = np.full(len(g.bus_index), np.nan)
        vmin, vmax = vm.copy(), vm.copy()
        vmin[lv] = g.vm_pu[:, lv].min(axis=0)
        vmax[lv] = g.vm_pu[:, lv].max(axis=0)
        path = out_dir / "feeder_bus_voltage.png"
        plot_bus_voltages(
            net,
            vmin,
            vmax,
            path,
            title=f"Bus voltages: each LV bus's lowest and highest voltage over the period\n{result.title()}",
        )
        figures.append(
            Figure(
                "feeder_bus_voltage",
                path,
                "Map: each LV bus's lowest and highest voltage",
                {"vm_min_pu": vmin, "vm_max_pu": vmax},
            )
        )
    station = station_of(g, net)
    path = out_dir / "transformer_duration_curve.png"
    curve = loading_duration_curve(station.loading_pct)
    plot_duration_curve(curve, path, title=f"Transformer loading duration curve\n{result.title()}")
    figures.append(
        Figure(
            "transformer_duration_curve",
            path,
            "Transformer loading, sorted: hours at or above each loading",
            {"curve_pct": curve},
        )
    )
    if f.has_hp.any():
        figures.append(fig_indoor(result, out_dir / "indoor_temperature.png"))
    if f.has_ev.any():
        figures.append(fig_ev(result, out_dir / "ev_state_of_charge.png"))
    if result.grid_phases is not None:  # per-phase voltages at the worst bus
        from twin.grid.plots import plot_phase_voltages

        path = out_dir / "phase_voltages.png"
        plot_phase_voltages(result.grid_phases, net, path)
        figures.append(
            Figure(
                "phase_voltages",
                path,
                "Per-phase voltages at the worst bus, with the voltage unbalance factor",
            )
        )
    for fig_of, name in (
        (fig_performance_band, "performance_band.png"),
        (fig_forecast_risk, "forecast_risk.png"),
        (fig_forecast_quality, "forecast_quality.png"),
        (fig_state_estimation, "state_estimation.png"),
    ):
        made = fig_of(result, out_dir / name)
        if made is not None:
            figures.append(made)
    return figures
