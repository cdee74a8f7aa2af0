"""The herding study (``twin study=herding``): feeder and cable peak against the share of
households whose HEMS is fully automated, per tariff (issue 18).

For every tariff contract of ``study.contracts`` and every share of ``study.shares``, one run
with ``contract.automation_share=<share>`` (the other households as ``study.response_rest``
says: the scenario's mix of timers, manual responders and non-responders by default), on the
same households, weather and grid (same seed; the ranking that decides who automates is the
fleet's, so a larger share only automates more households). The baseline contract
(``study.baseline``, firm) runs once. Files: ``herding.csv`` (one row per run: tariff, share,
transformer peak kVA and % of rating, coincident peak per household, worst cable loading,
service levels, mean bill, and each peak relative to the baseline), ``herding.json``,
``herding.png`` (feeder and cable peak against the automation share, one line per tariff, the
baseline as a level) and ``summary.md``; ``DONE`` last.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, open_dict

from twin.errors import TwinError
from twin.memory import release_finished_models
from twin.pipeline import run

log = logging.getLogger("twin")

#: KPIs of every run the study keeps (keys of kpis.json).
HERDING_KPIS = (
    "trafo_peak_kva",
    "trafo_peak_loading_pct",
    "coincident_peak_per_household_kw",
    "line_max_loading_pct",
    "trafo_hours_over_100pct_h",
    "comfort_days_met_share",
    "ev_days_met_share",
    "bill_mean_eur",
    "hems_households_planning",
)
#: Peaks normalised to the baseline's.
RELATIVE = ("trafo_peak_kva", "line_max_loading_pct")


def _row(cfg: DictConfig, share: float | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    result = run(cfg, progress=False)
    k = result.kpis
    release_finished_models()
    row = {
        "contract": str(k["contract"]),
        "tariff": str(k["tariff"]),
        "automation_share": share,
        **{key: float(k.get(key, np.nan)) for key in HERDING_KPIS},
        "run_s": time.perf_counter() - t0,
    }
    log.info(
        "herding: %s at %s automated: peak %.1f kVA, cable %.1f %% (%.1f s)",
        row["contract"],
        "-" if share is None else f"{share:.0%}",
        row["trafo_peak_kva"],
        row["line_max_loading_pct"],
        row["run_s"],
    )
    return row


def herding_study(configs: dict[str, DictConfig], study: Any) -> pd.DataFrame:
    """Run the sweep (module docstring) over the composed contract ``configs``."""
    baseline = str(study.baseline)
    if baseline not in configs:
        raise TwinError(f"study.baseline={baseline!r} must be among the study's contracts")
    shares = [float(s) for s in study.shares]
    if not shares or any(not 0.0 <= s <= 1.0 for s in shares):
        raise TwinError(f"study.shares={shares} is invalid: give shares from 0 to 1")
    swept = {name: cfg for name, cfg in configs.items() if name != baseline}
    for name, cfg in swept.items():
        if "automation_share" not in cfg.contract:
            raise TwinError(
                f"study=herding: contract={name} has no automation_share (it is no tariff "
                "contract): list tariff contracts only (tou, tou_acm, tou_hourly, dynamic, "
                "capacity, capacity_flanders) besides the baseline"
            )
    rows = [_row(configs[baseline], None)]
    for cfg in swept.values():
        for share in shares:
            c = cfg.copy()
            with open_dict(c):
                c.contract.automation_share = share
                c.contract.response_rest = str(study.response_rest)
            rows.append(_row(c, share))
    table = pd.DataFrame(rows)
    base = table.iloc[0]
    for key in RELATIVE:
        table[f"{key}_vs_{baseline}"] = table[key] / base[key]
    return table


def plot_herding(table: pd.DataFrame, path: Any, subtitle: str = "") -> None:
    """Feeder (transformer) peak and worst cable loading against the automation share."""
    import matplotlib.pyplot as plt

    base = table[table.automation_share.isna()].iloc[0]
    sweep = table[table.automation_share.notna()]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    panels = (
        ("trafo_peak_kva", "transformer peak (kVA)"),
        ("line_max_loading_pct", "worst cable loading (%)"),
    )
    for ax, (key, ylabel) in zip(axes, panels, strict=True):
        for name, g in sweep.groupby("contract", sort=False):
            ax.plot(100 * g.automation_share, g[key], marker="o", label=str(name))
        ax.axhline(base[key], color="k", ls="--", lw=1, label=f"{base.contract} (no tariff)")
        ax.axhline(0.9 * base[key], color="grey", ls=":", lw=1, label=f"{base.contract} − 10 %")
        ax.set_xlabel("households fully automated (%)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Herding: peak against the automation share · {subtitle}", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def herding_markdown(table: pd.DataFrame, study: Any, cfg: Any = None) -> str:
    head = (
        f"# Herding study\n\n{cfg.grid.name} · {cfg.scenario.name} · {cfg.sim.start} + "
        f"{cfg.sim.days} d · seed {cfg.seed}\n\n"
        if cfg is not None
        else "# Herding study\n\n"
    )
    cols = [
        "contract",
        "automation_share",
        "trafo_peak_kva",
        "trafo_peak_loading_pct",
        "coincident_peak_per_household_kw",
        "line_max_loading_pct",
        *[c for c in table.columns if c.endswith(f"_vs_{study.baseline}")],
        "comfort_days_met_share",
        "ev_days_met_share",
        "bill_mean_eur",
    ]
    return (
        head
        + f"The rest of the households: `{study.response_rest}`.\n\n"
        + table[cols].to_markdown(index=False, floatfmt=".3f")
        + "\n\n![herding](herding.png)\n"
    )


def write_herding(table: pd.DataFrame, study: Any, out_dir: Any, cfg: Any = None) -> Any:
    """The study's folder (exclusive, all-or-nothing; ``DONE`` last)."""
    from pathlib import Path

    from omegaconf import OmegaConf

    from twin.writer import RunFolder, write_json

    out_dir = Path(out_dir)
    with RunFolder(out_dir) as folder:
        table.to_csv(folder.stage / "herding.csv", index=False)
        write_json(
            folder.stage / "herding.json",
            {
                "study": OmegaConf.to_container(study),
                "runs": table.replace({np.nan: None}).to_dict(orient="records"),
            },
        )
        subtitle = (
            f"{cfg.grid.name} · {cfg.sim.start} + {cfg.sim.days} d" if cfg is not None else ""
        )
        if bool(study.get("figures", True)):
            plot_herding(table, folder.stage / "herding.png", subtitle)
        (folder.stage / "summary.md").write_text(herding_markdown(table, study, cfg))
    return out_dir
