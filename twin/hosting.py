"""Hosting capacity: how much of the electrified fleet a feeder carries under each contract.

For a share ``x`` of households that own both an all-electric heat pump and an EV (hybrid heat
pumps off; PV and batteries at the scenario's shares), a run is *hosted* when the AC-validated
transformer and cable loadings, the bus voltages and the service levels stay within the
study's limits. Fleets are nested (see :func:`twin.population.sample_fleet`): a larger share
only adds households, so the largest hosted share is found by bisection over whole households.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from omegaconf import DictConfig

from twin.memory import release_finished_models
from twin.pipeline import run
from twin.scenario import Scenario, load_scenario, with_adoption

log = logging.getLogger("twin")


@dataclass
class HostingPoint:
    contract: str
    households_electrified: int
    share: float
    hosted: bool
    violation: str
    coincident_peak_per_household_kw: float
    trafo_peak_loading_pct: float
    line_max_loading_pct: float
    vm_min_pu: float
    vm_max_pu: float
    comfort_days_met_share: float
    ev_days_met_share: float


def violation(kpis: dict[str, Any], limits: Any) -> str:
    """The first limit a run breaks ('' when none)."""
    checks = (
        (kpis["trafo_peak_loading_pct"] > limits.max_trafo_loading_pct, "transformer"),
        (kpis["line_max_loading_pct"] > limits.max_line_loading_pct, "cable"),
        (kpis["vm_min_pu"] < limits.vm_min_pu, "undervoltage"),
        (kpis["vm_max_pu"] > limits.vm_max_pu, "overvoltage"),
        (kpis["comfort_days_met_share"] < limits.min_service_share, "comfort"),
        (kpis["ev_days_met_share"] < limits.min_service_share, "ev range"),
    )
    return next((name for broken, name in checks if broken), "")


def electrified(scenario: Scenario, share: float) -> Scenario:
    return with_adoption(
        scenario,
        "hosting-capacity study: share of households with heat pump and EV",
        heat_pump_all_electric=share,
        heat_pump_hybrid=0.0,
        ev=share,
    )


def search_contract(cfg: DictConfig, limits: Any, curve_points: int = 5) -> list[HostingPoint]:
    """Bisection over the number of electrified households for the contract in ``cfg``."""
    from twin.inputs import build_inputs

    base = load_scenario(str(cfg.scenario.name))
    n_households = build_inputs(cfg, base).p_base_kw.shape[1]
    points: dict[int, HostingPoint] = {}

    def evaluate(k: int) -> HostingPoint:
        if k not in points:
            share = k / n_households
            # keep the KPIs only, and let the finished model go (twin.memory: mesa would keep
            # every one of the ~25 runs alive)
            kpis = run(cfg, progress=False, scenario=electrified(base, share)).kpis
            release_finished_models()
            why = violation(kpis, limits)
            points[k] = HostingPoint(
                contract=str(cfg.contract.name),
                households_electrified=k,
                share=share,
                hosted=not why,
                violation=why,
                **{
                    f: float(kpis[f])
                    for f in (
                        "coincident_peak_per_household_kw",
                        "trafo_peak_loading_pct",
                        "line_max_loading_pct",
                        "vm_min_pu",
                        "vm_max_pu",
                        "comfort_days_met_share",
                        "ev_days_met_share",
                    )
                },
            )
            p = points[k]
            log.info(
                "hosting %s: %d/%d electrified -> %s",
                p.contract,
                k,
                n_households,
                "ok" if p.hosted else p.violation,
            )
        return points[k]

    # a coarse curve first (for the figure and to bracket the answer), then bisection
    grid = sorted({round(n_households * i / (curve_points - 1)) for i in range(curve_points)})
    hosted = [k for k in grid if evaluate(k).hosted]
    failed = [k for k in grid if not points[k].hosted]
    if not failed or not hosted:
        return sorted(points.values(), key=lambda p: p.households_electrified)
    lo = max(k for k in hosted if k < min(failed)) if any(k < min(failed) for k in hosted) else 0
    hi = min(failed)
    if lo == 0 and not evaluate(0).hosted:
        return sorted(points.values(), key=lambda p: p.households_electrified)
    while hi - lo > 1:  # invariant: lo hosted, hi not
        mid = (lo + hi) // 2
        if evaluate(mid).hosted:
            lo = mid
        else:
            hi = mid
    # the full-electrification point shows the capacity per household each contract needs
    return sorted(points.values(), key=lambda p: p.households_electrified)


def summarise(points: list[HostingPoint]) -> dict[str, Any]:
    hosted = [p for p in points if p.hosted]
    best = max(hosted, key=lambda p: p.households_electrified) if hosted else None
    full = max(points, key=lambda p: p.households_electrified)
    return {
        "contract": points[0].contract,
        "hosted_households": best.households_electrified if best else 0,
        "hosted_share": best.share if best else 0.0,
        "first_violation": min(
            (p for p in points if not p.hosted), key=lambda p: p.households_electrified
        ).violation
        if any(not p.hosted for p in points)
        else "",
        "peak_per_household_at_hosted_kw": best.coincident_peak_per_household_kw
        if best
        else float("nan"),
        "peak_per_household_full_electrification_kw": full.coincident_peak_per_household_kw,
        "evaluations": len(points),
    }


def hosting_study(configs: dict[str, DictConfig], limits: Any) -> tuple[list[dict], list[dict]]:
    """Run the search for each contract's composed config. Returns (summary rows, all points)."""
    summary, table = [], []
    for cfg in configs.values():
        points = search_contract(cfg, limits, int(limits.get("curve_points", 5)))
        summary.append(summarise(points))
        table.extend(asdict(p) for p in points)
    return summary, table


def plot_hosting(summary: list[dict], table: list[dict], path, subtitle: str = "") -> None:
    """Transformer peak loading and peak per household against the electrified share, one
    line per contract; ``subtitle``: feeder, scenario and period."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from twin.writer import atomic_write

    df = pd.DataFrame(table)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for row in summary:
        pts = df[df.contract == row["contract"]].sort_values("share")
        ax1.plot(pts.share * 100, pts.trafo_peak_loading_pct, "o-", label=row["contract"])
        ax1.axvline(row["hosted_share"] * 100, ls=":", color=ax1.lines[-1].get_color())
        ax2.plot(pts.share * 100, pts.coincident_peak_per_household_kw, "o-", label=row["contract"])
    ax1.axhline(100, color="crimson", ls="--", lw=1)
    ax1.set_xlabel("households with heat pump + EV (%)")
    ax1.set_ylabel("transformer peak loading (%)")
    ax1.set_title("Hosting capacity (dotted: largest hosted share; dashed: rating)", fontsize=9)
    ax2.set_xlabel("households with heat pump + EV (%)")
    ax2.set_ylabel("coincident peak per household (kW)")
    ax2.set_title("Capacity per household each contract needs", fontsize=9)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if subtitle:
        fig.suptitle(subtitle, fontsize=9, x=0.01, ha="left")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


def hosting_markdown(summary: list[dict], table: list[dict], limits: Any, cfg: Any = None) -> str:
    """The hosting study's ``summary.md``: header, the limits, the hosted share per contract,
    every evaluated point, the figure."""
    import pandas as pd

    from twin.catalog import label

    head = "# Hosting capacity"
    if cfg is not None:
        head += (
            f": {cfg.grid.name} · {cfg.scenario.name} · {cfg.sim.start} + {cfg.sim.days} d · "
            f"seed {cfg.seed}"
        )
    n = max((int(p["households_electrified"] / p["share"]) for p in table if p["share"]), default=0)
    lim_rows = [
        ("transformer loading", f"≤ {limits.max_trafo_loading_pct:g} % of its rating"),
        ("cable loading", f"≤ {limits.max_line_loading_pct:g} % of its ampacity"),
        ("LV bus voltage", f"{limits.vm_min_pu:g} … {limits.vm_max_pu:g} p.u."),
        (label("comfort_days_met_share"), f"≥ {limits.min_service_share:g}"),
        (label("ev_days_met_share"), f"≥ {limits.min_service_share:g}"),
    ]
    rows = [
        "| contract | households hosted | share | first limit broken | peak per household at "
        "the hosted share (kW) | at full electrification (kW) | runs |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for s in summary:
        rows.append(
            f"| {s['contract']} | {s['hosted_households']}"
            + (f" / {n}" if n else "")
            + f" | {s['hosted_share']:.0%} | {s['first_violation'] or '–'} | "
            f"{s['peak_per_household_at_hosted_kw']:.2f} | "
            f"{s['peak_per_household_full_electrification_kw']:.2f} | {s['evaluations']} |"
        )
    points = pd.DataFrame(table)
    lines = [
        head,
        "",
        "The largest share of households with an all-electric heat pump **and** an EV (hybrids "
        "off; PV and batteries at the scenario's shares) that the feeder carries under each "
        "contract without breaking a limit; evenly spaced shares first, then bisection over "
        "whole households (fleets are nested).",
        "",
        "## Limits",
        "",
        "| limit | value |",
        "|---|---|",
        *[f"| {a} | {b} |" for a, b in lim_rows],
        "",
        "## Hosted per contract",
        "",
        *rows,
        "",
        "![hosting capacity](hosting_capacity.png)",
        "",
        "## Every evaluated share",
        "",
        points.to_markdown(index=False, floatfmt=".3g") if len(points) else "(none)",
        "",
        "Files: `hosting.json` (limits and the table above), `hosting_points.csv` (every "
        "evaluated share), `hosting_capacity.png`.",
        "",
    ]
    return "\n".join(lines)


def write_hosting(
    summary: list[dict], table: list[dict], limits: Any, out_dir: Any, cfg: Any = None
) -> Any:
    """Write the study's folder (an exclusive, all-or-nothing :class:`twin.writer.RunFolder`):
    ``hosting.json``, ``hosting_points.csv``, ``hosting_capacity.png``, ``summary.md``, then
    ``DONE``. ``cfg``: one contract's composed config (the header)."""
    from pathlib import Path

    import pandas as pd
    from omegaconf import OmegaConf

    from twin.writer import RunFolder, write_json

    out_dir = Path(out_dir)
    with RunFolder(out_dir) as folder:
        write_json(
            folder.stage / "hosting.json",
            {"limits": OmegaConf.to_container(limits), "contracts": summary},
        )
        pd.DataFrame(table).to_csv(folder.stage / "hosting_points.csv", index=False)
        subtitle = (
            f"{cfg.grid.name} · {cfg.scenario.name} · {cfg.sim.start} + {cfg.sim.days} d"
            if cfg is not None
            else ""
        )
        plot_hosting(summary, table, folder.stage / "hosting_capacity.png", subtitle)
        (folder.stage / "summary.md").write_text(hosting_markdown(summary, table, limits, cfg))
    return out_dir
