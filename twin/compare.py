"""The contract comparison (``twin study=compare``): every contract on the same households.

Each contract of ``study.contracts`` runs once on the same feeder, weather, scenario and seed
(so the same households, devices and trips); each is billed with its own tariff (the tariff
HEMS contracts select theirs, the others keep the run's). The study reports, per contract:

* grid: coincident peak per household, transformer peak (% of rating), hours above the
  transformer rating, the worst cable loading and voltage;
* service: comfort and EV household-days met, K·h below the band, EV energy short;
* money: household bill mean / median / worst decile, DSO revenue (grid fee + capacity
  charge − discounts), and each household's bill change against the baseline (winners and
  losers);
* energy imported, hybrids' boiler heat, the run's wall time;

absolute and normalised to the baseline (``study.baseline``, firm by default): ``value /
baseline value``, 1.0 where both are 0 (as CityLearn normalises to its no-control baseline).

Files: ``compare.csv`` (one row per contract, absolute columns then ``<kpi>_vs_<baseline>``),
``compare.json`` (the same plus every run's full KPIs and the bill-change summary),
``bills.csv`` (one row per household: its response type, its bill under each contract, the
change against the baseline, and the baseline's load billed under each contract's tariff and
discount), ``bills_by_response.csv`` (who wins and who pays per contract and response type:
full automation, timer, manual, none),
``summary.md``, ``compare_load.png`` (transformer loading of every contract over the same
days, and its mean day: herding shows as a new peak where prices are lowest),
``compare_duration.png`` (the transformer loading duration curve of every contract) and
``compare_bills.png`` (each household's bill change against the baseline); ``DONE`` last.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from twin.catalog import COMPARE, label, unit
from twin.errors import TwinError
from twin.fleet import RESPONSE_TYPES
from twin.grid.compliance import station_of
from twin.tariffs import Tariff
from twin.tariffs import bills as bills_of
from twin.timegrid import STEPS_PER_DAY

log = logging.getLogger("twin")

#: (KPI key, label, unit) of the comparison table, in order (twin.catalog).
COMPARE_KPIS: tuple[tuple[str, str, str], ...] = tuple((k, label(k), unit(k)) for k in COMPARE)

#: A household whose bill changes by less than this (€ over the window) neither wins nor loses.
BILL_TOL_EUR = 0.01


@dataclass
class ContractOutcome:
    """What the comparison keeps of one contract's run."""

    name: str
    tariff: str
    kpis: dict[str, Any]
    bill_eur: np.ndarray  # (H,) each household's bill over the window
    trafo_loading_pct: np.ndarray  # (T,) reported steps
    times: pd.DatetimeIndex
    run_s: float
    p_net_kw: np.ndarray  # (T, H) households' net load, reported steps
    tariff_prices: Tariff  # the run's tariff over the reported steps
    discount_eur_per_year: np.ndarray  # (H,)
    response: np.ndarray | None = None  # (H,) each household's response type (RESPONSE_TYPES)


@dataclass
class Comparison:
    """The study's result: tables over contracts and households."""

    baseline: str
    outcomes: list[ContractOutcome]
    absolute: pd.DataFrame  # index: contract; columns: tariff + COMPARE_KPIS keys
    normalised: pd.DataFrame  # index: contract; KPI / baseline KPI
    bills: pd.DataFrame  # index: household; one column per contract (€)
    bill_change: pd.DataFrame  # index: household; contract − baseline (€)
    passive_bills: pd.DataFrame  # index: household; the baseline's load billed under each contract
    bill_change_summary: pd.DataFrame  # index: contract; mean, median, p10, p90, winners, losers
    bills_by_response: pd.DataFrame | None = None  # index: (contract, response type)


def run_contract(cfg: DictConfig) -> ContractOutcome:
    """Run one contract's composed config and keep what the comparison needs."""
    from twin.memory import release_finished_models
    from twin.pipeline import run

    t0 = time.perf_counter()
    result = run(cfg, progress=False)
    run_s = time.perf_counter() - t0
    response = result.contract_households.get("response")
    if response is None:  # the fleet's (the scenario's) type: how it would respond to a tariff
        response = np.asarray(RESPONSE_TYPES, dtype=object)[result.fleet.response_or_auto()]
    release_finished_models()  # twin.memory: mesa would keep every contract's model alive
    window = result.window
    kpis = dict(result.kpis)
    kpis["run_s"] = run_s
    log.info("compare: %s (tariff %s) ran in %.1f s", kpis["contract"], kpis["tariff"], run_s)
    return ContractOutcome(
        name=str(kpis["contract"]),
        tariff=str(kpis["tariff"]),
        kpis=kpis,
        bill_eur=result.bills["total_eur"].to_numpy(),
        trafo_loading_pct=station_of(result.grid, result.feeder.net).loading_pct,
        times=window.times,
        run_s=run_s,
        p_net_kw=result.log["p_net_kw"].copy(),
        tariff_prices=result.tariff,
        discount_eur_per_year=result.discount_eur_per_year.copy(),
        response=np.asarray(response, dtype=object),
    )


def normalise(absolute: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Every numeric column divided by the baseline row; 1.0 where both are 0 (``inf`` where
    only the baseline is 0)."""
    num = absolute.select_dtypes("number")
    base = num.loc[baseline]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = num / base
    both_zero = (num == 0) & (base == 0)
    return ratio.mask(both_zero, 1.0)


def _bill_change_summary(bills: pd.DataFrame, passive: pd.DataFrame, baseline: str) -> pd.DataFrame:
    change = bills.sub(bills[baseline], axis=0)
    return pd.DataFrame(
        {
            "mean_eur": change.mean(),
            "median_eur": change.median(),
            "p10_eur": change.quantile(0.1),
            "p90_eur": change.quantile(0.9),
            "winners_share": (change < -BILL_TOL_EUR).mean(),
            "losers_share": (change > BILL_TOL_EUR).mean(),
            # the mean change = what the tariff/discount alone does to the baseline's load
            # + what the households' response to it does
            "tariff_effect_mean_eur": passive.sub(bills[baseline], axis=0).mean(),
            "response_mean_eur": (bills - passive).mean(),
        }
    )


def bills_by_response(
    outcomes: list[ContractOutcome], bills: pd.DataFrame, passive: pd.DataFrame, baseline: str
) -> pd.DataFrame | None:
    """Who wins and who pays, per contract and response type (each contract's own types):
    households, mean bill, mean change against the baseline split into the tariff effect and
    the response, the shares of winners and losers; the ``all`` row of each contract is the
    whole feeder (its households' counts and means add up to it)."""
    if any(o.response is None for o in outcomes):
        return None
    rows = []
    change = bills.sub(bills[baseline], axis=0)
    for o in outcomes:
        kinds = pd.Series(o.response, index=bills.index)
        groups = [*[(t, kinds == t) for t in RESPONSE_TYPES if (kinds == t).any()]]
        for kind, mask in [*groups, ("all", pd.Series(True, index=bills.index))]:
            ch = change.loc[mask, o.name]
            rows.append(
                {
                    "contract": o.name,
                    "response": kind,
                    "households": int(mask.sum()),
                    "bill_mean_eur": float(bills.loc[mask, o.name].mean()),
                    "change_mean_eur": float(ch.mean()),
                    "tariff_effect_mean_eur": float(
                        (passive.loc[mask, o.name] - bills.loc[mask, baseline]).mean()
                    ),
                    "response_mean_eur": float(
                        (bills.loc[mask, o.name] - passive.loc[mask, o.name]).mean()
                    ),
                    "winners_share": float((ch < -BILL_TOL_EUR).mean()),
                    "losers_share": float((ch > BILL_TOL_EUR).mean()),
                }
            )
    return pd.DataFrame(rows).set_index(["contract", "response"])


def compare_outcomes(outcomes: list[ContractOutcome], baseline: str) -> Comparison:
    """Tables of a set of contract runs on the same households (see the module docstring)."""
    names = [o.name for o in outcomes]
    if baseline not in names:
        raise TwinError(
            f"study.baseline={baseline!r} is not among study.contracts={names}: add it, or "
            "name one of them as the baseline"
        )
    if len(set(names)) != len(names):
        raise TwinError(f"study.contracts={names} names a contract twice: list each once")
    first = outcomes[0].kpis
    same = ("households", "seed", "start", "days", "grid", "scenario")
    for o in outcomes[1:]:
        differs = [k for k in same if o.kpis.get(k) != first.get(k)]
        if differs:
            raise TwinError(
                f"compare: contract {o.name} ran on other inputs ({', '.join(differs)}) than "
                f"{outcomes[0].name}: compare contracts on the same households only"
            )
    keys = [k for k, _, _ in COMPARE_KPIS]
    absolute = pd.DataFrame(
        [{"tariff": o.tariff, **{k: float(o.kpis.get(k, np.nan)) for k in keys}} for o in outcomes],
        index=pd.Index(names, name="contract"),
    )
    bills = pd.DataFrame(
        {o.name: o.bill_eur for o in outcomes},
        index=pd.Index(np.arange(len(outcomes[0].bill_eur)), name="household"),
    )
    base = outcomes[names.index(baseline)]
    passive = pd.DataFrame(
        {
            o.name: bills_of(base.p_net_kw, o.tariff_prices, o.discount_eur_per_year)[
                "total_eur"
            ].to_numpy()
            for o in outcomes
        },
        index=bills.index,
    )
    return Comparison(
        baseline=baseline,
        outcomes=outcomes,
        absolute=absolute,
        normalised=normalise(absolute, baseline),
        bills=bills,
        bill_change=bills.sub(bills[baseline], axis=0),
        passive_bills=passive,
        bill_change_summary=_bill_change_summary(bills, passive, baseline),
        bills_by_response=bills_by_response(outcomes, bills, passive, baseline),
    )


def compare_study(configs: dict[str, DictConfig], baseline: str = "firm") -> Comparison:
    """Run every composed contract config (same inputs) and compare them."""
    if baseline not in configs:
        raise TwinError(
            f"study.baseline={baseline!r} is not among study.contracts={list(configs)}: add it"
        )
    from twin.inputs import build_inputs

    build_inputs(next(iter(configs.values())))  # load the feeder once: run times compare contracts
    return compare_outcomes([run_contract(cfg) for cfg in configs.values()], baseline)


# ----------------------------------------------------------------------------------------------
# output
# ----------------------------------------------------------------------------------------------
def _markdown(frame: pd.DataFrame, fmt: str = ".4g") -> str:
    """A table with every number formatted alike (mixed-type columns included)."""
    text = frame.map(lambda v: format(v, fmt) if isinstance(v, int | float) else str(v))
    return text.to_markdown()


def summary_markdown(cmp: Comparison) -> str:
    """The comparison as a Markdown report (tables and figure links)."""
    k = cmp.outcomes[0].kpis
    base = cmp.baseline
    labels = {key: f"{label} ({unit})" for key, label, unit in COMPARE_KPIS}
    absolute = cmp.absolute.rename(columns=labels).T
    norm = cmp.normalised.rename(columns=labels).T
    change = cmp.bill_change_summary.drop(index=base).copy()
    lines = [
        "# Contract comparison",
        "",
        f"{k['grid']} · {k['scenario']} · {k['start']} + {k['days']} d · "
        f"{k['households']} households · seed {k['seed']}. Every contract runs on the same "
        "households, devices, trips and weather; each is billed with its own tariff "
        "(row `tariff`). Bills and DSO revenue are € over the simulated window, VAT included.",
        "",
        "## Limits per contract",
        "",
        "Transformer and cables at most 100 % of their rating, every LV bus within the EN 50160 "
        "band, service levels met on every household-day (`ok`, or `✗` where a contract breaks "
        "the limit).",
        "",
        limits_markdown(cmp),
        "",
        "## KPIs",
        "",
        _markdown(absolute),
        "",
        f"## Normalised to {base} (value / {base}; 1.0 where both are 0)",
        "",
        _markdown(norm, ".3f"),
        "",
        f"## Each household's bill against {base} (€ over the window)",
        "",
        f"Winners pay more than €{BILL_TOL_EUR:g} less than under {base}, losers more than "
        f"€{BILL_TOL_EUR:g} more. The mean change splits into the tariff effect (the {base} "
        "load billed under the contract's tariff and discount, minus its own bill) and the "
        "response (the contract's bill minus that).",
        "",
        _markdown(change, ".3g") if len(change) else "(only the baseline ran)",
        "",
        *_response_lines(cmp),
        "![transformer loading](compare_load.png)",
        "",
        "![duration curves](compare_duration.png)",
        "",
        "![bill change](compare_bills.png)",
        "",
    ]
    return "\n".join(lines)


def _response_lines(cmp: Comparison) -> list[str]:
    """Who wins and who pays, by how households respond (the tariff contracts' types)."""
    t = cmp.bills_by_response
    if t is None:
        return []
    t = t.drop(index=cmp.baseline, level="contract", errors="ignore")
    if not len(t):
        return []
    return [
        f"## Bills by response type (€ over the window, against {cmp.baseline})",
        "",
        "Each contract's households grouped by how they respond to a tariff (full automation, "
        "timer, manual, none; for contracts without a tariff HEMS the scenario's types); `all` "
        "is the whole feeder.",
        "",
        _markdown(t, ".3g"),
        "",
    ]


def limits_markdown(cmp: Comparison) -> str:
    """Each contract's value of every KPI with a limit (:func:`twin.writer.limits`) and
    whether it keeps it."""
    from twin.writer import fmt, limit_text, limits, mark

    names = [o.name for o in cmp.outcomes]
    lines = [
        "| KPI | unit | limit | " + " | ".join(names) + " |",
        "|---|---|---|" + "---:|" * len(names),
    ]
    for key in limits():
        if not any(key in o.kpis for o in cmp.outcomes):
            continue
        cells = []
        for o in cmp.outcomes:
            v = o.kpis.get(key)
            m = mark(key, v)
            cells.append(f"{fmt(v)} **{m}**" if m.startswith("✗") else f"{fmt(v)} {m}")
        lines.append(
            f"| {label(key)} | {unit(key)} | {limit_text(key)} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def plot_load(cmp: Comparison, path: Path) -> None:
    """Transformer loading of every contract over the same days (daily maxima for runs longer
    than two weeks), and its mean day."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.plots import DAILY_AFTER_DAYS, daily, time_axis
    from twin.writer import atomic_write

    k = cmp.outcomes[0].kpis
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7), gridspec_kw={"height_ratios": [1.3, 1]})
    hours = np.arange(STEPS_PER_DAY) / 4.0
    long = int(k["days"]) > DAILY_AFTER_DAYS
    for o in cmp.outcomes:
        lw = 1.6 if o.name == cmp.baseline else 1.0
        if long:
            day, _, hi = daily(o.times, o.trafo_loading_pct)
            ax1.plot(day, hi, lw=lw, drawstyle="steps-mid", label=f"{o.name} ({o.tariff})")
        else:
            ax1.plot(o.times, o.trafo_loading_pct, lw=lw, label=f"{o.name} ({o.tariff})")
        days = len(o.trafo_loading_pct) // STEPS_PER_DAY
        day_profile = o.trafo_loading_pct[: days * STEPS_PER_DAY].reshape(days, STEPS_PER_DAY)
        ax2.plot(hours, day_profile.mean(axis=0), lw=lw, label=o.name)
    for ax in (ax1, ax2):
        ax.axhline(100, color="crimson", ls="--", lw=1)
        ax.set_ylabel("transformer loading (% of rating)")
        ax.grid(alpha=0.3)
    time_axis(ax1)
    ax1.legend(fontsize=8, ncol=3, loc="upper left")
    ax1.set_title(
        "Transformer loading per contract, same households and days"
        + (" (daily maximum)" if long else "")
        + f"\n{k['grid']} · {k['scenario']} · {k['start']} + {k['days']} d",
        fontsize=9,
        loc="left",
    )
    ax2.set_xlabel("hour of day")
    ax2.set_xticks(range(0, 25, 3))
    ax2.set_xlim(0, 24)
    ax2.set_title(
        "Mean day: where prices are lowest, price-led contracts make new peaks", fontsize=9
    )
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


def plot_duration(cmp: Comparison, path: Path) -> dict[str, np.ndarray]:
    """Transformer loading duration curves, one per contract, on one axis. Returns the
    curves drawn (``{contract: loading sorted high to low}``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.grid.compliance import loading_duration_curve
    from twin.writer import atomic_write

    k = cmp.outcomes[0].kpis
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [2, 1]})
    curves = {}
    for o in cmp.outcomes:
        c = loading_duration_curve(o.trafo_loading_pct)
        hours = np.arange(1, len(c) + 1) * 0.25
        lw = 2.0 if o.name == cmp.baseline else 1.2
        over = float((c > 100).sum() * 0.25)
        ax.plot(hours, c, lw=lw, label=f"{o.name}: peak {c[0]:.0f} %, {over:g} h above 100 %")
        top = max(1, int(np.ceil(len(c) * 0.02)))  # the top 2 % of the period
        ax2.plot(hours[:top], c[:top], lw=lw, label=o.name)
        curves[o.name] = c
    for a in (ax, ax2):
        a.axhline(100, color="crimson", ls="--", lw=1)
        a.set_ylabel("transformer loading (% of rating)")
        a.grid(alpha=0.3)
        a.set_ylim(bottom=0)
    ax.set_xlabel("hours of the period at or above the loading (h)")
    ax2.set_xlabel("hours (h), the top 2 % of the period")
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(
        "Transformer loading duration curve per contract (dashed: the rating)\n"
        f"{k['grid']} · {k['scenario']} · {k['start']} + {k['days']} d · same households",
        fontsize=9,
        loc="left",
    )
    ax2.set_title("The peak hours", fontsize=9, loc="left")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return curves


def plot_bills(cmp: Comparison, path: Path) -> None:
    """Each household's bill change against the baseline, per contract (winners / losers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from twin.writer import atomic_write

    others = [o.name for o in cmp.outcomes if o.name != cmp.baseline]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    totals = [cmp.bills[n].to_numpy() for n in cmp.bills.columns]
    ax1.boxplot(totals, showfliers=False)
    ax1.set_xticks(range(1, len(totals) + 1), list(cmp.bills.columns))
    ax1.set_ylabel("household bill over the window (€)")
    ax1.set_title("Bills per contract (each with its own tariff)", fontsize=9)
    rng = np.random.default_rng(0)  # jitter of the points only
    if others:
        changes = [cmp.bill_change[n].to_numpy() for n in others]
        ax2.boxplot(changes, showfliers=False)
        for i, c in enumerate(changes, start=1):
            ax2.plot(i + rng.uniform(-0.18, 0.18, len(c)), c, ".", ms=3, alpha=0.5, color="0.3")
        shares = cmp.bill_change_summary.loc[others]
        ax2.set_xticks(
            range(1, len(others) + 1),
            [
                f"{n}\n{s.winners_share:.0%} win\n{s.losers_share:.0%} lose"
                for n, s in shares.iterrows()
            ],
            fontsize=8,
        )
    ax2.axhline(0, color="crimson", lw=1)
    ax2.set_ylabel(f"bill − bill under {cmp.baseline} (€)")
    ax2.set_title(
        f"Each household against {cmp.baseline}: winners below 0, losers above", fontsize=9
    )
    k = cmp.outcomes[0].kpis
    fig.suptitle(
        f"{k['grid']} · {k['scenario']} · {k['start']} + {k['days']} d · "
        f"{len(cmp.bills)} households",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


def write_comparison(cmp: Comparison, out_dir: Path, figures: bool = True) -> Path:
    """Write the study's files (module docstring) into ``out_dir`` (an exclusive,
    all-or-nothing :class:`twin.writer.RunFolder`), ``DONE`` last."""
    from twin.writer import RunFolder, write_json

    base = cmp.baseline
    with RunFolder(out_dir) as folder:
        stage = folder.stage
        table = cmp.absolute.join(cmp.normalised.add_suffix(f"_vs_{base}"))
        table.to_csv(stage / "compare.csv", float_format="%.6g")
        bills = cmp.bills.join(
            [
                cmp.bill_change.drop(columns=base).add_suffix(f"_minus_{base}_eur"),
                cmp.passive_bills.drop(columns=base).add_suffix(f"_{base}_load_eur"),
            ]
        )
        if cmp.outcomes[-1].response is not None:  # the last contract's response types
            bills.insert(0, "response", cmp.outcomes[-1].response)
        bills.to_csv(stage / "bills.csv", float_format="%.6g")
        if cmp.bills_by_response is not None:
            cmp.bills_by_response.to_csv(stage / "bills_by_response.csv", float_format="%.6g")
        write_json(
            stage / "compare.json",
            {
                "baseline": base,
                "contracts": [o.name for o in cmp.outcomes],
                "tariffs": {o.name: o.tariff for o in cmp.outcomes},
                "units": {k: unit for k, _, unit in COMPARE_KPIS},
                "absolute": cmp.absolute.to_dict(orient="index"),
                "normalised": cmp.normalised.to_dict(orient="index"),
                "bill_change_vs_baseline": cmp.bill_change_summary.to_dict(orient="index"),
                "bills_by_response": (
                    None
                    if cmp.bills_by_response is None
                    else cmp.bills_by_response.reset_index().to_dict(orient="records")
                ),
                "run_s": {o.name: o.run_s for o in cmp.outcomes},
                "kpis": {o.name: o.kpis for o in cmp.outcomes},
            },
        )
        (stage / "summary.md").write_text(summary_markdown(cmp))
        if figures:
            plot_load(cmp, stage / "compare_load.png")
            plot_duration(cmp, stage / "compare_duration.png")
            plot_bills(cmp, stage / "compare_bills.png")
    return out_dir


def contract_configs(
    contracts: list[str], overrides: list[str], compose: Any
) -> dict[str, DictConfig]:
    """Compose one config per contract from the study's own command-line ``overrides``.

    ``compose(overrides) -> DictConfig`` composes the main config (Hydra's inside the ``twin``
    command, :func:`twin.config.compose` from Python). Overrides that pick a contract or a
    study are dropped (each contract runs as a single run). A contract that selects its own
    tariff (``contract.tariff``: the tariff HEMS contracts) keeps it: a ``tariff=`` override
    applies to the other contracts only.
    """
    task = [o for o in overrides if not o.lstrip("+~").startswith(("contract=", "study"))]
    untariffed = [o for o in task if not o.lstrip("+~").startswith("tariff=")]
    configs: dict[str, DictConfig] = {}
    for name in contracts:
        cfg = compose([*untariffed, f"contract={name}", "study=single"])
        if not cfg.contract.get("tariff"):
            cfg = compose([*task, f"contract={name}", "study=single"])
        configs[str(name)] = cfg
    return configs
