"""Figures of a feeder: cables coloured by loading, and the transformer duration curve.

Bus positions come from ``net.bus.geo`` (GeoJSON points, as in SimBench and the IEEE
European LV feeder). Nets without coordinates (the Kerber networks) get a tree layout
computed here from the topology (depth from the external grid downwards, leaves spread
left to right), so no igraph or graphviz is needed.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from pandapower.auxiliary import pandapowerNet  # noqa: E402

__all__ = [
    "bus_coordinates",
    "plot_duration_curve",
    "plot_feeder_loading",
    "plot_phase_voltages",
    "worst_phase_voltage_bus",
]


def _geo_xy(net: pandapowerNet) -> np.ndarray | None:
    if "geo" not in net.bus.columns:
        return None
    xy = np.full((len(net.bus), 2), np.nan)
    for i, g in enumerate(net.bus["geo"].to_numpy()):
        if isinstance(g, str) and g:
            try:
                c = json.loads(g).get("coordinates")
                xy[i] = float(c[0]), float(c[1])
            except (ValueError, TypeError, AttributeError, IndexError):
                continue
    return xy if np.isfinite(xy).all() else None


def _tree_xy(net: pandapowerNet) -> np.ndarray:
    """Layered tree layout: y = -depth from the ext grid, x = leaf order (parents centred)."""
    pos = {int(b): i for i, b in enumerate(net.bus.index)}
    n = len(pos)
    adj: list[list[int]] = [[] for _ in range(n)]
    for _, row in net.line.iterrows():
        a, b = pos[int(row["from_bus"])], pos[int(row["to_bus"])]
        adj[a].append(b)
        adj[b].append(a)
    for _, row in net.trafo.iterrows():
        a, b = pos[int(row["hv_bus"])], pos[int(row["lv_bus"])]
        adj[a].append(b)
        adj[b].append(a)
    if len(net.switch):
        for _, row in net.switch[net.switch["et"] == "b"].iterrows():
            a, b = pos[int(row["bus"])], pos[int(row["element"])]
            adj[a].append(b)
            adj[b].append(a)
    roots = [pos[int(b)] for b in net.ext_grid["bus"]] or [0]
    depth = np.full(n, -1)
    children: list[list[int]] = [[] for _ in range(n)]
    order: list[int] = []
    for r in roots + list(range(n)):  # also lay out islands
        if depth[r] >= 0:
            continue
        depth[r] = 0
        queue = deque([r])
        while queue:
            u = queue.popleft()
            order.append(u)
            for v in adj[u]:
                if depth[v] < 0:
                    depth[v] = depth[u] + 1
                    children[u].append(v)
                    queue.append(v)
    x = np.zeros(n)
    next_leaf = 0.0
    # assign leaves in depth-first order so subtrees stay together
    stack = [u for u in order if depth[u] == 0][::-1]
    visited = np.zeros(n, dtype=bool)
    while stack:
        u = stack.pop()
        if visited[u]:
            continue
        visited[u] = True
        if not children[u]:
            x[u] = next_leaf
            next_leaf += 1.0
        stack.extend(reversed(children[u]))
    for u in reversed(order):  # children before parents: centre parents over children
        if children[u]:
            x[u] = float(np.mean([x[c] for c in children[u]]))
    return np.column_stack([x, -depth.astype(float)])


def bus_coordinates(net: pandapowerNet) -> np.ndarray:
    """``(n_bus, 2)`` plotting coordinates in ``net.bus`` order (geodata or a tree layout)."""
    xy = _geo_xy(net)
    return xy if xy is not None else _tree_xy(net)


def plot_feeder_loading(
    net: pandapowerNet,
    line_loading_max_pct: np.ndarray,
    path: str | Path,
    title: str | None = None,
    vmax_pct: float | None = None,
) -> Path:
    """Draw the feeder with every cable coloured by its worst loading.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.
    line_loading_max_pct : np.ndarray
        ``(n_line,)`` worst loading of each line, %, ``net.line`` order (e.g.
        ``result.line_loading_pct.max(axis=0)``).
    path : str or Path
        Output image (format from the suffix, e.g. ``.png``).
    title : str, optional
        Figure title.
    vmax_pct : float, optional
        Top of the colour scale (default: ``max(100, worst loading)``).

    Returns
    -------
    Path
        The written file.
    """
    loading = np.asarray(line_loading_max_pct, dtype=float)
    if loading.shape != (len(net.line),):
        raise ValueError(
            f"line_loading_max_pct must have shape ({len(net.line)},), got {loading.shape}"
        )
    xy = bus_coordinates(net)
    pos = {int(b): i for i, b in enumerate(net.bus.index)}
    segs = [
        (xy[pos[int(a)]], xy[pos[int(b)]])
        for a, b in zip(net.line["from_bus"], net.line["to_bus"], strict=True)
    ]
    top = (
        float(vmax_pct)
        if vmax_pct
        else max(100.0, float(np.nanmax(loading)) if len(loading) else 100.0)
    )
    norm = Normalize(vmin=0.0, vmax=top)
    fig, ax = plt.subplots(figsize=(8, 6.5), dpi=120)
    lc = LineCollection(segs, cmap="RdYlGn_r", norm=norm, linewidths=2.0)
    lc.set_array(np.nan_to_num(loading))
    ax.add_collection(lc)
    ax.scatter(xy[:, 0], xy[:, 1], s=6, c="0.3", zorder=3, label="bus")
    if len(net.load):
        lb = [pos[int(b)] for b in net.load["bus"]]
        ax.scatter(
            xy[lb, 0],
            xy[lb, 1],
            s=14,
            facecolors="none",
            edgecolors="0.2",
            zorder=3,
            linewidths=0.6,
            label="load",
        )
    for i, (_, tr) in enumerate(net.trafo.iterrows()):
        p = xy[pos[int(tr["lv_bus"])]]
        ax.scatter(
            [p[0]],
            [p[1]],
            marker="s",
            s=120,
            c="tab:blue",
            edgecolors="k",
            zorder=4,
            label="transformer" if i == 0 else None,
        )
        ax.annotate(
            f"{tr['sn_mva'] * 1e3:.0f} kVA",
            p,
            textcoords="offset points",
            xytext=(8, 8),
            fontsize=8,
        )
    cb = fig.colorbar(lc, ax=ax, shrink=0.85)
    cb.set_label("worst cable loading (%)")
    if len(loading):
        k = int(np.nanargmax(loading))
        a, b = segs[k]
        ax.annotate(
            f"max {loading[k]:.0f} %",
            (0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1])),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
            color="darkred",
        )
    ax.autoscale()
    ax.set_aspect("equal" if _geo_xy(net) is not None else "auto")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title or "Cable loading (worst step)")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_duration_curve(
    curve: np.ndarray, path: str | Path, dt_h: float = 0.25, title: str | None = None
) -> Path:
    """Plot a transformer loading duration curve (loading %, sorted high to low).

    Parameters
    ----------
    curve : np.ndarray
        Sorted loading, %, e.g. from :func:`twin.grid.compliance.loading_duration_curve`.
    path : str or Path
        Output image.
    dt_h : float
        Step length, hours (x axis in hours).
    title : str, optional
        Figure title.
    """
    c = np.asarray(curve, dtype=float)
    hours = np.arange(1, len(c) + 1) * dt_h
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(hours, c, color="tab:blue", lw=1.5)
    ax.axhline(100.0, color="tab:red", ls="--", lw=1, label="rating")
    over = c > 100.0
    if over.any():
        ax.fill_between(
            hours,
            100.0,
            c,
            where=over,
            color="tab:red",
            alpha=0.3,
            label=f"{over.sum() * dt_h:.1f} h above rating",
        )
    ax.set_xlabel("hours of the period")
    ax.set_ylabel("transformer loading (%)")
    ax.set_xlim(0, max(hours[-1], dt_h) if len(hours) else 1)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "Transformer loading duration curve")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def worst_phase_voltage_bus(result, net: pandapowerNet) -> int:
    """``net.bus`` index label of the energised LV bus with the lowest phase voltage."""
    vn = net.bus.loc[result.bus_index, "vn_kv"].to_numpy(float)
    vm = np.where((vn < 1.0)[None, :, None], result.vm_pu, np.nan)
    if not np.isfinite(vm).any():
        raise ValueError("the result has no energised LV bus")
    return int(result.bus_index[np.unravel_index(np.nanargmin(vm), vm.shape)[1]])


def plot_phase_voltages(
    result,
    net: pandapowerNet,
    path: str | Path,
    bus: int | None = None,
    dt_h: float = 0.25,
    title: str | None = None,
) -> Path:
    """Per-phase voltages at one bus over time, with the unbalance factor below.

    Parameters
    ----------
    result : twin.grid.asymmetric.AsymPowerFlowResult
        Unbalanced power-flow result.
    net : pandapowerNet
        The feeder (bus names).
    path : str or Path
        Output image.
    bus : int, optional
        ``net.bus`` index label; default :func:`worst_phase_voltage_bus`.
    dt_h : float
        Step length, hours (x axis in days).
    title : str, optional
        Figure title (default names the bus).
    """
    from twin.grid.compliance import BAND_95_PU, VUF_LIMIT_PCT, voltage_unbalance_factor

    b = worst_phase_voltage_bus(result, net) if bus is None else int(bus)
    k = int(np.flatnonzero(result.bus_index == b)[0])
    vm = result.vm_pu[:, k, :]
    vuf = voltage_unbalance_factor(result.u_pu[:, k, :])
    days = np.arange(result.n_steps) * dt_h / 24.0
    fig, (ax, ax2) = plt.subplots(
        2, 1, figsize=(9, 5.5), dpi=120, sharex=True, gridspec_kw={"height_ratios": [2.2, 1]}
    )
    colors = ("tab:orange", "tab:blue", "tab:green")
    for j, (ph, color) in enumerate(zip("abc", colors, strict=True)):
        ax.plot(days, vm[:, j], color=color, lw=1.0, label=f"phase {ph}")
    lo, hi = float(np.nanmin(vm)), float(np.nanmax(vm))
    y0, y1 = min(lo - 0.01, 0.95), max(hi + 0.01, 1.05)
    shown = [lim for lim in BAND_95_PU if y0 <= lim <= y1]
    for lim in shown:
        ax.axhline(lim, color="tab:red", ls="--", lw=0.9)
    ax.axhline(1.0, color="0.6", lw=0.6)
    ax.set_ylim(y0, y1)
    ax.set_ylabel("phase-to-neutral voltage (p.u.)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8, ncol=3)
    band = (
        "Un ±10 % band dashed"
        if shown
        else f"Un ±10 % band ({BAND_95_PU[0]:.2f}-{BAND_95_PU[1]:.2f} p.u.) outside the view"
    )
    ax.text(
        0.99,
        0.02,
        f"min {lo:.3f} p.u.   max {hi:.3f} p.u.   {band}",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=8,
    )
    ax2.plot(days, vuf, color="tab:purple", lw=1.0, label="voltage unbalance factor")
    ax2.axhline(VUF_LIMIT_PCT, color="tab:red", ls="--", lw=0.9, label=f"{VUF_LIMIT_PCT:g} % limit")
    ax2.set_ylim(0, max(VUF_LIMIT_PCT * 1.5, float(np.nanmax(vuf)) * 1.35))
    ax2.set_ylabel("VUF (%)")
    ax2.set_xlabel("time (days from the first step)")
    ax2.grid(alpha=0.3)
    ax2.legend(loc="upper left", fontsize=8, ncol=2)
    name = net.bus.at[b, "name"] if "name" in net.bus else None
    label = f"bus {b}" + (f" ({name})" if isinstance(name, str) and name else "")
    ax.set_title(title or f"Phase voltages at {label}, the bus with the lowest phase voltage")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
