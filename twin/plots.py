"""Figures of one run (PNG, matplotlib Agg), written into the run's staging folder."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from twin.result import RunResult


def _save(fig, path: Path) -> None:
    """Save into the run's staging folder (twin.writer.RunFolder moves it into place)."""
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def _time_axis(ax) -> None:
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b\n%H:%M"))
    ax.grid(alpha=0.3)


def _band(ax, times, values: np.ndarray, color: str, label: str) -> None:
    """Median line and 5-95 % band over the households (columns)."""
    p5, p50, p95 = np.percentile(values, [5, 50, 95], axis=1)
    ax.fill_between(times, p5, p95, color=color, alpha=0.25, label=f"{label}, 5-95 % of households")
    ax.plot(times, p50, color=color, lw=1.2, label=f"{label}, median")


def write_figures(result: RunResult, out_dir: Path) -> list[Path]:
    from twin.grid.compliance import loading_duration_curve, station_of
    from twin.grid.plots import plot_duration_curve, plot_feeder_loading

    out_dir.mkdir(parents=True, exist_ok=True)
    times = result.window.times
    g, lg, f = result.grid, result.log, result.fleet
    title = (
        f"{result.kpis['grid']} · {result.kpis['scenario']} · contract {result.kpis['contract']}"
    )
    paths = []

    fig, ax = plt.subplots(figsize=(10, 3.8))
    station = station_of(g, result.feeder.net)
    ax.plot(times, station.loading_pct, lw=1, label="transformer loading")
    ax.axhline(100, color="crimson", ls="--", lw=1, label="rating (100 %)")
    ax.set_ylabel("loading (%)")
    ax.set_title(f"Transformer loading — {title}", fontsize=9)
    ax.legend(loc="upper right", fontsize=8)
    _time_axis(ax)
    paths.append(out_dir / "transformer_loading.png")
    _save(fig, paths[-1])

    fig, ax = plt.subplots(figsize=(10, 3.8))
    ax.fill_between(
        times, g.vm_pu.min(axis=1), g.vm_pu.max(axis=1), alpha=0.4, label="min-max over buses"
    )
    for limit, style in ((0.9, "--"), (1.1, "--"), (0.85, ":")):
        ax.axhline(limit, color="crimson", ls=style, lw=1)
    ax.set_ylabel("voltage (p.u.)")
    ax.set_title("Bus voltage band (dashed ±10 %, dotted -15 %)", fontsize=9)
    ax.legend(loc="lower right", fontsize=8)
    _time_axis(ax)
    paths.append(out_dir / "voltage_band.png")
    _save(fig, paths[-1])

    if f.has_hp.any():
        band = result.cfg.service.comfort_band_k
        dev = lg["t_in_c"][:, f.has_hp] - f.setpoint_c[f.has_hp]
        fig, ax = plt.subplots(figsize=(10, 3.8))
        _band(ax, times, dev, "tab:orange", "indoor - setpoint")
        ax.plot(times, dev.min(axis=1), color="tab:red", lw=0.8, label="worst household")
        for s in (-band, band):
            ax.axhline(s, color="grey", ls="--", lw=1)
        ax.set_ylabel("indoor temperature - setpoint (K)")
        ax.set_title(
            f"Indoor temperature of heat-pump homes (dashed: ±{band:g} K comfort band)", fontsize=9
        )
        ax.legend(loc="lower right", fontsize=8)
        _time_axis(ax)
        paths.append(out_dir / "indoor_temperature.png")
        _save(fig, paths[-1])

    if f.has_ev.any():
        soc = lg["ev_soc_kwh"][:, f.has_ev] / f.ev_capacity_kwh[f.has_ev] * 100
        fig, ax = plt.subplots(figsize=(10, 3.8))
        _band(ax, times, soc, "tab:green", "EV state of charge")
        ax2 = ax.twinx()
        ax2.plot(
            times,
            lg["p_ev_kw"].sum(axis=1),
            color="tab:blue",
            lw=0.8,
            alpha=0.7,
            label="EV charging, all (kW)",
        )
        ax2.set_ylabel("EV charging power, feeder total (kW)")
        ax.set_ylabel("state of charge (%)")
        ax.set_ylim(0, 100)
        ax.set_title("EV state of charge and charging power", fontsize=9)
        ax.legend(loc="lower left", fontsize=8)
        ax2.legend(loc="lower right", fontsize=8)
        _time_axis(ax)
        paths.append(out_dir / "ev_state_of_charge.png")
        _save(fig, paths[-1])

    paths.append(out_dir / "feeder_line_loading.png")
    plot_feeder_loading(result.feeder.net, g.line_loading_pct.max(axis=0), paths[-1])
    if result.grid_phases is not None:  # per-phase voltages at the worst bus
        from twin.grid.plots import plot_phase_voltages

        paths.append(out_dir / "phase_voltages.png")
        plot_phase_voltages(result.grid_phases, result.feeder.net, paths[-1])
    paths.append(out_dir / "transformer_duration_curve.png")
    plot_duration_curve(loading_duration_curve(station.loading_pct), paths[-1])
    return paths
