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
from pandapower.auxiliary import pandapowerNet  # noqa: E402

__all__ = [
    "bus_coordinates",
    "loading_colours",
    "plot_bus_voltages",
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


#: Cable loading colours: green to red up to 100 %, then red to near black above it.
_BELOW = (
    (0.0, "#1a9850"),
    (0.55, "#a6d96a"),
    (0.75, "#fee08b"),
    (0.9, "#fc8d59"),
    (1.0, "#e31a1c"),
)
_ABOVE = ((0.0, "#e31a1c"), (0.5, "#99000d"), (1.0, "#2b0008"))


def loading_colours(top_pct: float):
    """``(cmap, norm)`` for loading in %: a green-to-red scale from 0 to 100 % and a second,
    red-to-black scale from 100 % to ``top_pct``, so 131 % looks different from 100 %."""
    from matplotlib.colors import LinearSegmentedColormap, ListedColormap, TwoSlopeNorm

    below = LinearSegmentedColormap.from_list("below", _BELOW)(np.linspace(0, 1, 200))
    above = LinearSegmentedColormap.from_list("above", _ABOVE)(np.linspace(0, 1, 200))
    cmap = ListedColormap(np.vstack([below, above]), name="twin_loading")
    return cmap, TwoSlopeNorm(vmin=0.0, vcenter=100.0, vmax=float(top_pct))


def line_segments(net: pandapowerNet, xy: np.ndarray) -> list:
    pos = {int(b): i for i, b in enumerate(net.bus.index)}
    return [
        (xy[pos[int(a)]], xy[pos[int(b)]])
        for a, b in zip(net.line["from_bus"], net.line["to_bus"], strict=True)
    ]


def station_marks(ax, net: pandapowerNet, xy: np.ndarray) -> None:
    pos = {int(b): i for i, b in enumerate(net.bus.index)}
    for i, (_, tr) in enumerate(net.trafo.iterrows()):
        p = xy[pos[int(tr["lv_bus"])]]
        ax.scatter(
            [p[0]],
            [p[1]],
            marker="s",
            s=120,
            c="tab:blue",
            edgecolors="k",
            zorder=5,
            label="transformer" if i == 0 else None,
        )
        ax.annotate(
            f"{tr['sn_mva'] * 1e3:.0f} kVA",
            p,
            textcoords="offset points",
            xytext=(8, 8),
            fontsize=8,
        )


def map_axes(ax, net: pandapowerNet) -> None:
    """Fill the axes with the feeder: equal scales for geodata (the data limits grow to fit
    the box, so a long feeder is not drawn as a sliver), no ticks."""
    ax.autoscale()
    ax.margins(0.05)
    if _geo_xy(net) is not None:
        ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_feeder_loading(
    net: pandapowerNet,
    line_loading_max_pct: np.ndarray,
    path: str | Path,
    title: str | None = None,
    vmax_pct: float | None = None,
    dt_h: float = 0.25,
    hours_over: np.ndarray | None = None,
) -> Path:
    """Draw the feeder with every cable coloured by its highest loading over the period.

    The colour scale is open-ended: green to red up to 100 %, then red to near black up to
    ``max(150 %, the worst loading)``; overloaded cables are also drawn thicker and labelled
    with their loading (and hours above 100 % when ``hours_over`` is given).

    Parameters
    ----------
    net : pandapowerNet
        The feeder.
    line_loading_max_pct : np.ndarray
        ``(n_line,)`` highest loading of each line, %, ``net.line`` order (e.g.
        ``result.line_loading_pct.max(axis=0)``).
    path : str or Path
        Output image (format from the suffix, e.g. ``.png``).
    title : str, optional
        Figure title.
    vmax_pct : float, optional
        Top of the colour scale (default: ``max(150, worst loading)``).
    dt_h : float
        Step length, hours (for ``hours_over``'s label).
    hours_over : np.ndarray, optional
        ``(n_line,)`` hours each line spent above 100 %.

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
    segs = line_segments(net, xy)
    worst = float(np.nanmax(loading)) if len(loading) else 0.0
    top = float(vmax_pct) if vmax_pct else max(150.0, 10.0 * np.ceil(worst / 10.0))
    cmap, norm = loading_colours(top)
    over = loading > 100.0
    fig, ax = plt.subplots(figsize=(8.5, 7), dpi=120)
    lc = LineCollection(segs, cmap=cmap, norm=norm, linewidths=np.where(over, 4.0, 2.0), zorder=2)
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
    station_marks(ax, net, xy)
    cb = fig.colorbar(lc, ax=ax, shrink=0.85, extend="max" if worst > top else "neither")
    cb.set_label("highest cable loading over the period (% of ampacity)")
    step = max(10.0, 10.0 * np.ceil((top - 100.0) / 30.0))
    cb.set_ticks([0, 25, 50, 75, *np.arange(100.0, top + 1e-9, step)])
    cb.ax.axhline(100.0, color="k", lw=1.2)
    # label the overloaded cables (the five worst), or the most loaded one
    order = np.argsort(-np.nan_to_num(loading, nan=-1.0))
    labelled = [k for k in order if over[k]][:5] or list(order[:1])
    for k in labelled:
        a, b = segs[k]
        text = f"{loading[k]:.1f} %" if 100.0 < loading[k] < 101.0 else f"{loading[k]:.0f} %"
        if hours_over is not None and over[k]:
            text += f", {float(hours_over[k]):g} h"
        ax.annotate(
            text,
            (0.5 * (a[0] + b[0]), 0.5 * (a[1] + b[1])),
            textcoords="offset points",
            xytext=(6, -12),
            fontsize=8,
            color="darkred" if over[k] else "0.2",
            fontweight="bold" if over[k] else "normal",
            zorder=6,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    n_over = int(over.sum())
    ax.text(
        0.01,
        0.99,
        f"{n_over} cable(s) above 100 % (thick)" if n_over else "no cable above 100 %",
        transform=ax.transAxes,
        fontsize=8,
        va="top",
    )
    map_axes(ax, net)
    ax.legend(loc="lower right", fontsize=8)
    fig.suptitle(
        title or "Cable loading: each cable's highest loading", fontsize=9, x=0.01, ha="left"
    )
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_bus_voltages(
    net: pandapowerNet,
    vm_min_pu: np.ndarray,
    vm_max_pu: np.ndarray,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Two maps of the feeder: every bus coloured by its lowest voltage (left) and its
    highest voltage (right) over the period; NaN buses (the MV bus, unenergised buses) grey.

    The colour scale is centred on 1 p.u. (red below, blue above) and spans at least the
    ±10 % band, further when a voltage lies outside it.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.
    vm_min_pu, vm_max_pu : np.ndarray
        ``(n_bus,)`` per bus, ``net.bus`` order.
    path : str or Path
        Output image.
    title : str, optional
        Figure title.
    """
    from matplotlib.colors import TwoSlopeNorm

    from twin.grid.compliance import BAND_95_PU

    lo = np.asarray(vm_min_pu, dtype=float)
    hi = np.asarray(vm_max_pu, dtype=float)
    if lo.shape != (len(net.bus),) or hi.shape != (len(net.bus),):
        raise ValueError(f"vm_min_pu and vm_max_pu must have shape ({len(net.bus)},)")
    xy = bus_coordinates(net)
    segs = line_segments(net, xy)
    finite = np.isfinite(lo) & np.isfinite(hi)
    vmin = min(BAND_95_PU[0] - 0.02, float(lo[finite].min()) - 0.005) if finite.any() else 0.88
    vmax = max(BAND_95_PU[1] + 0.02, float(hi[finite].max()) + 0.005) if finite.any() else 1.12
    norm = TwoSlopeNorm(vmin=vmin, vcenter=1.0, vmax=vmax)
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 6.5), dpi=110, layout="constrained")
    for ax, values, what in ((axes[0], lo, "lowest"), (axes[1], hi, "highest")):
        ax.add_collection(LineCollection(segs, colors="0.6", linewidths=1.2, zorder=1))
        sc = ax.scatter(
            xy[finite, 0],
            xy[finite, 1],
            c=values[finite],
            cmap="RdBu",
            norm=norm,
            s=36,
            edgecolors="0.2",
            linewidths=0.4,
            zorder=3,
        )
        if (~finite).any():
            ax.scatter(
                xy[~finite, 0], xy[~finite, 1], s=20, c="0.75", zorder=2, label="MV / not LV"
            )
        station_marks(ax, net, xy)
        if finite.any():
            k = int(np.nanargmin(values) if what == "lowest" else np.nanargmax(values))
            name = net.bus["name"].iloc[k] if "name" in net.bus else None
            label = name if isinstance(name, str) and name else f"bus {net.bus.index[k]}"
            ax.scatter(
                [xy[k, 0]],
                [xy[k, 1]],
                s=160,
                facecolors="none",
                edgecolors="k",
                linewidths=1.5,
                zorder=4,
            )
            ax.text(
                0.01,
                0.99,
                f"{what}: {values[k]:.3f} p.u. at {label} (ringed)",
                transform=ax.transAxes,
                fontsize=8,
                va="top",
                color="darkred" if what == "lowest" else "navy",
            )
        map_axes(ax, net)
        ax.set_title(f"{what} voltage of each bus", fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
    cb = fig.colorbar(sc, ax=axes, shrink=0.85)
    cb.set_label("bus voltage (p.u.); black lines: the ±10 % band")
    for lim in BAND_95_PU:
        cb.ax.axhline(lim, color="k", lw=1.2)
    fig.suptitle(title or "Bus voltages", fontsize=9, x=0.01, ha="left")
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
    fig, ax = plt.subplots(figsize=(8.5, 4.4), dpi=120)
    ax.plot(hours, c, color="tab:blue", lw=1.5, label="loading")
    ax.axhline(100.0, color="tab:red", ls="--", lw=1, label="rating (100 %)")
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
    ax.set_xlabel("hours of the period at or above the loading (h)")
    ax.set_ylabel("transformer loading (% of rating)")
    ax.set_xlim(0, max(hours[-1], dt_h) if len(hours) else 1)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(title or "Transformer loading duration curve", fontsize=9, loc="left")
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
