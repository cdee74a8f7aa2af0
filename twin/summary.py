"""``summary.md``: what a run means, for someone who opens one file.

:func:`run_summary` writes the header (feeder, scenario, contract, period, households, seed,
weather, twin version), the KPI table with each limit and whether the run keeps it
(:func:`twin.catalog.limits`: transformer and cables 100 %, the EN 50160 voltage band, the
service levels), where and when a limit broke (:func:`violations`: the station, each cable
above its ampacity, each bus outside the band, with hours, the worst value and its time), the
figures and the files. :func:`kpi_table` is the same table for the studies' summaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from twin.catalog import KPI_INFO, RUN_TABLE, SUMMARY_EXTRA, label, limit_text, mark, unit

__all__ = ["fmt", "kpi_table", "run_summary", "violations"]


def fmt(value: Any) -> str:
    """A KPI value as the tables show it."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return str(value)
    v = float(value)
    if v != v:
        return "–"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"


def kpi_table(kpis: dict[str, Any], keys: Iterable[str] = RUN_TABLE + SUMMARY_EXTRA) -> str:
    """Markdown: KPI, value, unit, limit, ``ok`` / ``✗ over`` / ``✗ below``."""
    lines = ["| KPI | value | unit | limit | |", "|---|---:|---|---|---|"]
    for key in keys:
        if key in kpis and key in KPI_INFO:
            verdict = mark(key, kpis[key])
            cell = f"**{verdict}**" if verdict.startswith("✗") else verdict
            lines.append(
                f"| {label(key)} | {fmt(kpis[key])} | {unit(key)} | {limit_text(key)} | {cell} |"
            )
    return "\n".join(lines)


def _when(t: Any) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%d %H:%M")


def violations(result: Any) -> list[dict[str, Any]]:
    """Where and when the run broke a limit: one row per element (the station, a cable, an LV
    bus) with ``limit``, ``element``, ``hours``, ``worst`` (value and unit), ``when`` (the
    worst step) and ``first`` (the first step above the limit); the service levels last."""
    from twin.grid.compliance import BAND_95_PU, BAND_ALWAYS_PU, station_of, voltage_compliance

    g, net, times = result.grid, result.feeder.net, result.window.times
    dt = 0.25
    rows: list[dict[str, Any]] = []
    st = station_of(g, net)
    over = st.loading_pct > 100.0
    if over.any():
        k = int(np.argmax(st.loading_pct))
        rows.append(
            {
                "limit": "transformer ≤ 100 %",
                "element": f"station ({len(st.units)} unit(s), {st.rating_kva:,.0f} kVA)",
                "hours": float(over.sum() * dt),
                "worst": f"{st.loading_pct[k]:.1f} %",
                "when": _when(times[k]),
                "first": _when(times[int(np.argmax(over))]),
            }
        )
    ll = g.line_loading_pct
    names = result.element_names("line")
    for col in np.argsort(-ll.max(axis=0)) if ll.shape[1] else []:
        o = ll[:, col] > 100.0
        if not o.any():
            break
        k = int(np.argmax(ll[:, col]))
        rows.append(
            {
                "limit": "cable ≤ 100 %",
                "element": f"{names[col]} (line {g.line_index[col]})",
                "hours": float(o.sum() * dt),
                "worst": f"{ll[k, col]:.1f} %",
                "when": _when(times[k]),
                "first": _when(times[int(np.argmax(o))]),
            }
        )
    lv = np.flatnonzero(result.lv_buses())
    if len(lv):
        vm = g.vm_pu[:, lv]
        comp = voltage_compliance(vm, dt)
        bad_weeks = (~comp["compliant"]).sum(axis=0)
        outside = (vm < BAND_95_PU[0]) | (vm > BAND_95_PU[1])
        bnames = np.asarray(result.element_names("bus"), dtype=object)[lv]
        worst_dev = np.abs(vm - 1.0).max(axis=0)
        for j in np.argsort(-worst_dev):
            if not outside[:, j].any() and not bad_weeks[j]:
                continue
            k = int(np.argmax(np.abs(vm[:, j] - 1.0)))
            never = (vm[:, j] < BAND_ALWAYS_PU[0]) | (vm[:, j] > BAND_ALWAYS_PU[1])
            rows.append(
                {
                    "limit": "voltage ±10 % (95 % of a week), +10/−15 % always",
                    "element": f"{bnames[j]} (bus {g.bus_index[lv[j]]})",
                    "hours": float(outside[:, j].sum() * dt),
                    "worst": f"{vm[k, j]:.3f} p.u."
                    + (f"; {int(never.sum())} step(s) beyond +10/−15 %" if never.any() else "")
                    + (f"; {int(bad_weeks[j])} week(s) non-compliant" if bad_weeks[j] else ""),
                    "when": _when(times[k]),
                    "first": _when(times[int(np.argmax(outside[:, j]))])
                    if outside[:, j].any()
                    else "",
                }
            )
    kp = result.kpis
    for key, what in (("comfort_days_met_share", "comfort"), ("ev_days_met_share", "EV range")):
        if mark(key, kp.get(key)).startswith("✗"):
            rows.append(
                {
                    "limit": f"service level: {what} on every household-day",
                    "element": "households",
                    "hours": float("nan"),
                    "worst": f"{kp[key]:.4f} of household-days met",
                    "when": "",
                    "first": "",
                }
            )
    return rows


def _violation_table(rows: Sequence[dict[str, Any]], most: int = 20) -> str:
    if not rows:
        return "No limit broken: transformer and cables within their ratings, every LV bus within the EN 50160 band, every service level met."
    lines = [
        "| limit | element | hours above | worst | at | first |",
        "|---|---|---:|---|---|---|",
    ]
    for r in rows[:most]:
        hours = "" if r["hours"] != r["hours"] else f"{r['hours']:g}"
        lines.append(
            f"| {r['limit']} | {r['element']} | {hours} | {r['worst']} | {r['when']} | {r['first']} |"
        )
    if len(rows) > most:
        lines.append(f"\n… and {len(rows) - most} more element(s).")
    return "\n".join(lines)


def run_summary(
    result: Any, figures: Sequence[Any], files: dict[str, str], meta: dict[str, Any]
) -> str:
    """``summary.md`` of one run (module docstring). ``figures``: :class:`twin.plots.Figure`
    objects written (``figures/<name>.png``); ``files``: name -> description; ``meta``: the
    run's ``metadata.json``."""
    k = result.kpis
    git = meta.get("git")
    version = f"twin {meta['twin_version']}" + (
        f" (commit {git['commit'][:12]}{', with local changes' if git['dirty'] else ''})"
        if git
        else ""
    )
    broken = [label(key) for key in RUN_TABLE if key in k and mark(key, k[key]).startswith("✗")]
    verdict = (
        f"**Limits broken: {', '.join(dict.fromkeys(broken))}.**"
        if broken
        else "**All limits kept.**"
    )
    lines = [
        f"# {k['grid']} · {k['scenario']} · contract {k['contract']}",
        "",
        f"{result.period()} · {k.get('households')} households · seed {k.get('seed')} · "
        f"weather {meta['weather'].get('name')} · tariff {k.get('tariff')} · {version}",
        "",
        verdict,
        "",
        "## KPIs against the limits",
        "",
        "Transformer and cables at most 100 % of their rating; every LV bus voltage within "
        "Un +10 %/−15 % at all times and, per bus and week, 95 % of the 15-min values within "
        "±10 % (EN 50160 / Netcode; the MV bus is not counted); service levels met on every "
        "household-day. Full list: `kpis.json`.",
        "",
        kpi_table(k),
        "",
        "## Where and when limits broke",
        "",
        _violation_table(violations(result)),
        "",
    ]
    if figures:
        lines += ["## Figures", ""]
        for f in figures:
            lines += [f"**{f.caption}**", "", f"![{f.name}](figures/{f.path.name})", ""]
    lines += ["## Files", "", "| file | what it holds |", "|---|---|"]
    lines += [f"| `{name}` | {what} |" for name, what in files.items()]
    lines += ["", "Every column: `results/README.md` in the twin repository.", ""]
    return "\n".join(lines)
