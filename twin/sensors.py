"""Sensor placement: where should the DSO put its next current sensors? (``twin study=sensors``)

The feeder is simulated once (the configured contract, scenario and window); then the state
estimation of the reported steps (:mod:`twin.measure`, :mod:`twin.grid.estimation`) is
repeated with the sensors of a base measurement preset (``study.base``, default
``transformer_only``: a station sensor and nothing else) plus candidate sensors, and scored
against the truth. A candidate is a current sensor (magnitude and angle, the cable heads'
accuracy class ``measurement.cable_heads.*``) on one cable, at its end nearer the station;
every in-service cable without one is a candidate. The ranking is greedy: each round adds
the candidate that lowers the **worst cable-loading error** (``se_line_err_max_pp``: the
largest ``|estimated - true|`` loading over every cable and step of the nowcast, what the DSO
acts on) the most, ties broken by the mean error. Each sensor's readings come from a random
stream of its own, so a set's readings do not change when a sensor is added.

Writes ``sensors.csv`` (the greedy ranking: after each added sensor the worst, p99 and mean
cable-loading errors and the voltage error), ``sensor_candidates.csv`` (every candidate's
effect on its own, added to the base), ``sensors.json``, ``sensor_placement.png`` (the
feeder, each cable coloured by its worst loading error with the base sensors, the chosen
sensors numbered in their order) and ``summary.md``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SensorStudy", "plot_sensor_placement", "sensor_study", "write_sensors"]


@dataclass
class SensorStudy:
    """The greedy ranking, every candidate's own effect, and what they were measured on."""

    ranking: pd.DataFrame
    candidates: pd.DataFrame
    base_preset: str
    base_line_err_pct: np.ndarray  # (n_line,) each cable's worst loading error, base sensors
    chosen: list[int]  # net.line positions, in the order chosen
    info: dict[str, Any] = field(default_factory=dict)


def _line_names(net: Any) -> list[str]:
    names = net.line["name"] if "name" in net.line.columns else pd.Series([None] * len(net.line))
    return [
        str(n) if isinstance(n, str) and n else f"line {i}"
        for i, n in zip(net.line.index, names, strict=True)
    ]


def sensor_study(result: Any, settings: Any, n_sensors: int, threads: int = 0) -> SensorStudy:
    """Rank candidate current sensors on the simulated ``result`` (a :class:`RunResult`)
    measured with ``settings`` (the base preset, :class:`twin.measure.MeasurementSettings`)."""
    from twin.grid.estimation import cable_head_lines, source_ends
    from twin.measure import estimate_feeder

    t0 = time.perf_counter()
    feeder, window = result.feeder, result.window
    net = feeder.net
    settings = replace(settings, estimate=True)
    p_sim = np.vstack([result.warmup_p_load_kw, result.p_load_kw])
    q_sim = feeder.load_q_kvar[window.sim_year_index]
    prof = result.standard_p_kw
    seed = int(result.cfg.seed)
    truth = result.grid
    warm = window.n_warmup_steps

    def score(lines: list[int]) -> tuple[dict[str, Any], np.ndarray]:
        se = estimate_feeder(
            settings,
            net,
            p_sim,
            q_sim,
            prof,
            warm,
            truth,
            seed,
            threads,
            current_lines=np.asarray(lines, np.int64),
            final=False,
        )
        est = se.nowcast.result.line_loading_pct[se.nowcast.observable]
        err = np.abs(est - truth.line_loading_pct[se.nowcast.observable])
        per_line = err.max(axis=0) if len(err) else np.full(len(net.line), np.nan)
        return se.kpis, per_line

    on = net.line["in_service"].astype(bool).to_numpy()
    taken = cable_head_lines(net)[0] if settings.heads else np.zeros(0, np.int64)
    cands = [int(i) for i in np.flatnonzero(on) if i not in set(taken.tolist())]
    names = _line_names(net)
    from_end = dict(zip(cands, source_ends(net, np.asarray(cands, np.int64)), strict=True))

    def at_bus(line: int) -> int:
        side = "from_bus" if from_end[line] else "to_bus"
        return int(net.line[side].iloc[line])

    def row(kp: dict[str, Any], per_line: np.ndarray) -> dict[str, Any]:
        worst = int(np.nanargmax(per_line)) if np.isfinite(per_line).any() else -1
        return {
            "line_err_max_pp": kp["se_line_err_max_pp"],
            "line_err_p99_pp": kp["se_line_err_p99_pp"],
            "line_err_mean_pp": kp["se_line_err_mean_pp"],
            "vm_err_max_pu": kp["se_vm_err_max_pu"],
            "trafo_err_max_pp": kp.get("se_trafo_err_max_pp", float("nan")),
            "worst_cable": names[worst] if worst >= 0 else "",
            "unobservable_steps": kp["se_unobservable_steps"],
        }

    base_kp, base_line = score([])
    ranking = [
        {
            "rank": 0,
            "line": None,
            "cable": "(base sensors)",
            "at_bus": None,
            **row(base_kp, base_line),
            "reduction_pp": 0.0,
        }
    ]
    singles: dict[int, tuple[dict, np.ndarray]] = {}
    chosen: list[int] = []
    before = base_kp["se_line_err_max_pp"]
    evaluations = 1
    for rank in range(1, min(n_sensors, len(cands)) + 1):
        best = None
        for c in cands:
            if c in chosen:
                continue
            kp, per_line = score([*chosen, c])
            evaluations += 1
            if rank == 1:
                singles[c] = (kp, per_line)
            key = (kp["se_line_err_max_pp"], kp["se_line_err_mean_pp"], c)
            if best is None or key < best[0]:
                best = (key, c, kp, per_line)
        _, c, kp, per_line = best
        chosen.append(c)
        ranking.append(
            {
                "rank": rank,
                "line": int(net.line.index[c]),
                "cable": names[c],
                "at_bus": at_bus(c),
                **row(kp, per_line),
                "reduction_pp": before - kp["se_line_err_max_pp"],
            }
        )
        before = kp["se_line_err_max_pp"]
    cand_rows = []
    base_max = base_kp["se_line_err_max_pp"]
    for c, (kp, per_line) in singles.items():
        cand_rows.append(
            {
                "line": int(net.line.index[c]),
                "cable": names[c],
                "at_bus": at_bus(c),
                **row(kp, per_line),
                "reduction_pp": base_max - kp["se_line_err_max_pp"],
            }
        )
    candidates = pd.DataFrame(cand_rows)
    if len(candidates):
        candidates = candidates.sort_values(
            ["line_err_max_pp", "line_err_mean_pp", "line"]
        ).reset_index(drop=True)
        candidates.insert(0, "order", np.arange(1, len(candidates) + 1))
    info = {
        "base": settings.name,
        "candidates": len(cands),
        "evaluations": evaluations,
        "steps": int(len(truth.line_loading_pct)),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return SensorStudy(
        ranking=pd.DataFrame(ranking),
        candidates=candidates,
        base_preset=settings.name,
        base_line_err_pct=base_line,
        chosen=chosen,
        info=info,
    )


def plot_sensor_placement(net: Any, study: SensorStudy, path: Any, subtitle: str = "") -> None:
    """The feeder map: each cable coloured by its worst loading error with the base sensors,
    the chosen sensors numbered in their order at their end of the cable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    from twin.grid.plots import bus_coordinates, line_segments, map_axes, station_marks
    from twin.writer import atomic_write

    xy = bus_coordinates(net)
    pos = {int(b): i for i, b in enumerate(net.bus.index)}
    segs = line_segments(net, xy)
    err = np.nan_to_num(np.asarray(study.base_line_err_pct, float))
    fig, ax = plt.subplots(figsize=(8.5, 7), dpi=120)
    top = max(float(err.max()) if len(err) else 1.0, 1.0)
    lc = LineCollection(segs, cmap="magma_r", linewidths=2.2, zorder=2)
    lc.set_array(err)
    lc.set_clim(0.0, top)
    ax.add_collection(lc)
    ax.scatter(xy[:, 0], xy[:, 1], s=5, c="0.4", zorder=3)
    station_marks(ax, net, xy)
    r = study.ranking
    for _, rw in r[r["rank"] > 0].iterrows():
        line_pos = int(net.line.index.get_loc(int(rw["line"])))
        a, b = segs[line_pos]
        end = xy[pos[int(rw["at_bus"])]]
        mid = 0.5 * (np.asarray(a) + np.asarray(b))
        p = 0.65 * end + 0.35 * mid  # on the cable, near its measured end
        ax.scatter(
            [p[0]],
            [p[1]],
            marker="o",
            s=190,
            c="tab:cyan",
            edgecolors="k",
            zorder=6,
            label="chosen current sensor (order)" if rw["rank"] == 1 else None,
        )
        ax.annotate(
            str(int(rw["rank"])),
            p,
            ha="center",
            va="center",
            fontsize=8,
            fontweight="bold",
            zorder=7,
        )
    cb = fig.colorbar(lc, ax=ax, shrink=0.85)
    cb.set_label(f"worst cable-loading error with the base sensors ({study.base_preset}), %-points")
    map_axes(ax, net)
    ax.legend(loc="lower right", fontsize=8)
    first, last = r.iloc[0], r.iloc[-1]
    fig.suptitle(
        f"Sensor placement: worst cable-loading error {first['line_err_max_pp']:.1f} → "
        f"{last['line_err_max_pp']:.1f} %-points with {len(r) - 1} current sensor(s)"
        + (f"\n{subtitle}" if subtitle else ""),
        fontsize=9,
        x=0.01,
        ha="left",
    )
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png"))
    plt.close(fig)


def sensors_markdown(study: SensorStudy, cfg: Any = None) -> str:
    """The study's ``summary.md``."""
    head = "# Sensor placement"
    if cfg is not None:
        head += (
            f": {cfg.grid.name} · {cfg.scenario.name} · contract {cfg.contract.name} · "
            f"{cfg.sim.start} + {cfg.sim.days} d · seed {cfg.seed}"
        )
    info = study.info
    cols = [
        "rank",
        "cable",
        "at_bus",
        "line_err_max_pp",
        "reduction_pp",
        "line_err_p99_pp",
        "line_err_mean_pp",
        "vm_err_max_pu",
        "worst_cable",
    ]
    top = study.candidates.head(10)
    lines = [
        head,
        "",
        f"Base sensors: measurement preset `{study.base_preset}`. Candidates: a current sensor "
        f"(magnitude and angle) on any of the {info['candidates']} cables without one, at its "
        "end nearer the station. Each round adds the candidate that lowers the worst "
        "cable-loading error of the DSO's nowcast (every cable and step of the window, "
        f"{info['steps']} steps) the most. {info['evaluations']} state estimations in "
        f"{info['seconds']:.0f} s.",
        "",
        "## Greedy ranking",
        "",
        study.ranking[cols].to_markdown(index=False, floatfmt=".4g"),
        "",
        "![sensor placement](sensor_placement.png)",
        "",
        "## Each candidate on its own (the ten best)",
        "",
        top.to_markdown(index=False, floatfmt=".4g") if len(top) else "(none)",
        "",
        "Files: `sensors.csv` (the ranking), `sensor_candidates.csv` (every candidate on its "
        "own), `sensors.json`, `sensor_placement.png`.",
        "",
    ]
    return "\n".join(lines)


def write_sensors(study: SensorStudy, out_dir: Any, cfg: Any = None, net: Any = None) -> Path:
    """Write the study's folder (an exclusive, all-or-nothing :class:`twin.writer.RunFolder`):
    ``sensors.csv``, ``sensor_candidates.csv``, ``sensors.json``, ``sensor_placement.png``,
    ``summary.md``, then ``DONE``."""
    from twin.writer import RunFolder, write_json

    out_dir = Path(out_dir)
    with RunFolder(out_dir) as folder:
        study.ranking.to_csv(folder.stage / "sensors.csv", index=False)
        study.candidates.to_csv(folder.stage / "sensor_candidates.csv", index=False)
        write_json(
            folder.stage / "sensors.json",
            {
                **study.info,
                "ranking": study.ranking.to_dict(orient="records"),
                "chosen_lines": [int(net.line.index[c]) for c in study.chosen]
                if net is not None
                else study.chosen,
            },
        )
        if net is not None:
            subtitle = (
                f"{cfg.grid.name} · {cfg.scenario.name} · {cfg.sim.start} + {cfg.sim.days} d"
                if cfg is not None
                else ""
            )
            plot_sensor_placement(net, study, folder.stage / "sensor_placement.png", subtitle)
        (folder.stage / "summary.md").write_text(sensors_markdown(study, cfg))
    return out_dir
