"""``twin-report <sweep folder>``: one table and figures from many runs, grouped by what the
sweep varied.

Every run folder below the sweep folder (a folder with ``kpis.json``, ``config.yaml`` or a
Hydra ``.hydra/`` snapshot) becomes one row: its status, the keys the sweep set (from
``.hydra/overrides.yaml``) with the values the run actually used (read from the run's own
resolved ``config.yaml``: ``scenario=nl-2030`` is ``scenario.name``, a default the run kept is
its default), and its KPIs. A run is

* ``complete``: ``DONE``, a readable ``kpis.json`` and ``config.yaml``;
* ``failed``: no ``DONE`` (the reason from ``FAILED`` or the job's log);
* ``unreadable``: ``DONE`` but a truncated or invalid ``kpis.json`` or ``config.yaml``.

Failed and unreadable runs are listed in the summary and skipped, never fatal.

**Groups**: the swept keys are the keys the overrides set whose values differ between the
complete runs (``seed`` excepted: seeds are replicates; ``--by`` names the keys instead). Each
group (one combination of the swept keys' values) gets the mean, minimum and maximum of each
KPI over its runs (its seeds), in ``groups.csv``, the summary and ``comparison.png`` (the mean
with min–max error bars, labelled).

Outputs go to ``<sweep>/report/``: ``runs.parquet``, ``runs.csv``, ``groups.csv``,
``summary.md`` and ``comparison.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from twin.catalog import KPI_INFO, REPORT
from twin.writer import DONE, FAILED, atomic_write

KEY_COLUMNS = REPORT  # twin.catalog
#: Override keys that say where or how a run writes, not what it simulates.
NOT_SWEPT_PREFIXES = ("hydra.", "paths.", "output.", "run_name")
#: Replicates: runs that differ only in these are one group.
REPLICATE_KEYS = ("seed",)


def _overrides(run_dir: Path) -> tuple[dict[str, str], str]:
    """The run's command-line overrides (key -> value text) and a note when unreadable."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}, ""
    try:
        items = yaml.safe_load(path.read_text()) or []
    except (yaml.YAMLError, OSError, UnicodeDecodeError):
        return {}, ".hydra/overrides.yaml is unreadable"
    if not isinstance(items, list):
        return {}, ".hydra/overrides.yaml is not a list"
    out = {}
    for item in items:
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out, ""


def _error_hint(run_dir: Path) -> str:
    """Why a run did not finish: its ``FAILED`` line, else the last error line of its log
    (Hydra's job log or submitit's stderr)."""
    failed = run_dir / FAILED
    if failed.is_file():
        text = failed.read_text(errors="replace").strip()
        if text:
            return text.splitlines()[-1][-200:]
    candidates = sorted(run_dir.glob("*.log")) + sorted(
        run_dir.parent.glob(".submitit/*/*_log.err")
    )
    for path in candidates:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()]
        if errors:
            return errors[-1][-200:]
    return "no DONE marker: the run did not finish"


def find_runs(sweep_dir: Path) -> list[Path]:
    marks = ("kpis.json", "config.yaml", ".hydra")
    runs = {
        p.parent
        for m in marks
        for p in sweep_dir.rglob(m)
        if not {"report", ".submitit"} & set(p.relative_to(sweep_dir).parts)
        and ".hydra" not in p.parent.parts
    }
    return sorted(r for r in runs if r != sweep_dir or (r / "kpis.json").exists())


def _read_json(path: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        return None, f"{path.name} is unreadable (truncated?): {str(err)[:80]}"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a JSON object"
    return data, ""


def _read_config(path: Path) -> tuple[dict[str, Any] | None, str]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return None, f"{path.name} is missing"
    except (yaml.YAMLError, UnicodeDecodeError, OSError):
        return None, f"{path.name} is unreadable (truncated?)"
    if not isinstance(data, dict):
        return None, f"{path.name} is not a mapping"
    return data, ""


def _select(config: dict[str, Any], key: str) -> Any:
    """``key`` (dotted) of a config; a group choice (``scenario``) gives its ``name``."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, dict):
        return node.get("name")
    return node if not isinstance(node, list) else str(node)


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def collect(sweep_dir: Path) -> pd.DataFrame:
    """One row per run folder: ``run``, ``status``, ``error``, ``override.<key>`` (the text
    given), ``param.<key>`` (the value the run used, from its ``config.yaml``), KPIs."""
    rows: list[dict[str, Any]] = []
    configs: dict[int, dict[str, Any]] = {}
    for run_dir in find_runs(sweep_dir):
        row: dict[str, Any] = {"run": str(run_dir.relative_to(sweep_dir)) or "."}
        overrides, note = _overrides(run_dir)
        row.update({f"override.{k}": v for k, v in overrides.items()})
        if not (run_dir / DONE).is_file():
            row.update(status="failed", error=_error_hint(run_dir))
            rows.append(row)
            continue
        kpis, why = _read_json(run_dir / "kpis.json")
        config, why_cfg = _read_config(run_dir / "config.yaml")
        if kpis is None or config is None:
            row.update(status="unreadable", error=why or why_cfg)
            rows.append(row)
            continue
        row.update(status="complete", error=note)
        row.update({k: v for k, v in kpis.items() if not isinstance(v, dict | list)})
        configs[len(rows)] = config
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    # the keys the sweep set, with each run's own value
    keys = sorted(
        {
            c.removeprefix("override.")
            for c in df.columns
            if c.startswith("override.")
            and not c.removeprefix("override.").startswith(NOT_SWEPT_PREFIXES)
        }
    )
    if not keys and len(configs) > 1:  # runs written without Hydra: what differs
        flat = [_flatten(c) for c in configs.values()]
        keys = sorted(
            k
            for k in set().union(*flat)
            if not k.startswith(NOT_SWEPT_PREFIXES)
            and len({json.dumps(f.get(k), default=str) for f in flat}) > 1
        )
    for key in keys:
        values = [_select(configs[i], key) if i in configs else None for i in range(len(df))]
        df[f"param.{key}"] = pd.Series(values, index=df.index, dtype=object)
    return df


def swept_keys(df: pd.DataFrame, by: list[str] | None = None) -> list[str]:
    """The ``param.<key>`` columns that group the complete runs (see the module docstring)."""
    ok = df[df.status == "complete"] if "status" in df else df
    if by:
        cols = [f"param.{k}" if not k.startswith("param.") else k for k in by]
        missing = [c for c in cols if c not in df]
        if missing:
            known = ", ".join(c.removeprefix("param.") for c in df if c.startswith("param."))
            raise KeyError(f"--by {', '.join(missing)}: not a swept key (known: {known or 'none'})")
        return cols
    return [
        c
        for c in df.columns
        if c.startswith("param.")
        and c.removeprefix("param.") not in REPLICATE_KEYS
        and ok[c].astype(str).nunique() > 1
    ]


def _sortable(value: Any) -> tuple[int, Any]:
    try:
        return (0, float(value))
    except (TypeError, ValueError):
        return (1, str(value))


def group_table(
    df: pd.DataFrame, keys: list[str], kpis: tuple[str, ...] = KEY_COLUMNS
) -> pd.DataFrame:
    """Per group of the complete runs: the keys' values, ``runs``, and ``<kpi>_mean``,
    ``<kpi>_min``, ``<kpi>_max`` for every KPI of ``kpis`` the runs have (numeric)."""
    ok = df[df.status == "complete"].copy()
    metrics = [k for k in kpis if k in ok and pd.api.types.is_numeric_dtype(ok[k])]
    if ok.empty:
        return pd.DataFrame()
    labels = (
        ok[keys].astype(str)
        if keys
        else pd.DataFrame({"group": ["all runs"] * len(ok)}, index=ok.index)
    )
    cols = list(labels.columns)
    ok[cols] = labels
    out = []
    for values, part in ok.groupby(cols, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        row: dict[str, Any] = dict(zip(cols, values, strict=True))
        row["runs"] = len(part)
        for m in metrics:
            v = part[m].astype(float)
            row[f"{m}_mean"], row[f"{m}_min"], row[f"{m}_max"] = v.mean(), v.min(), v.max()
        out.append(row)
    table = pd.DataFrame(out)
    order = sorted(range(len(table)), key=lambda i: [_sortable(table.at[i, c]) for c in cols])
    return table.iloc[order].reset_index(drop=True)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "–" if v != v else f"{v:.4g}"
    return str(v)


def _markdown(df: pd.DataFrame, groups: pd.DataFrame, keys: list[str], sweep_dir: Path) -> str:
    ok = df[df.status == "complete"]
    failed = df[df.status == "failed"]
    unreadable = df[df.status == "unreadable"]
    lines = [
        f"# twin report: {sweep_dir}",
        "",
        f"{len(ok)} complete run(s), {len(failed)} failed or incomplete"
        + (f", {len(unreadable)} unreadable (skipped)" if len(unreadable) else "")
        + ".",
        "",
    ]
    if len(groups):
        shown = [c for c in groups.columns if not c.endswith(("_mean", "_min", "_max"))]
        metrics = [c.removesuffix("_mean") for c in groups.columns if c.endswith("_mean")]
        by = ", ".join(k.removeprefix("param.") for k in keys) or "nothing (one group)"
        lines += [
            "## Per group: mean [min – max] over the group's runs",
            "",
            f"Grouped by {by}; the runs of a group differ only in "
            + ", ".join(REPLICATE_KEYS)
            + " (or in nothing).",
            "",
        ]
        head = [c.removeprefix("param.") for c in shown] + [
            f"{KPI_INFO[m][0]} ({KPI_INFO[m][1]})" if m in KPI_INFO else m for m in metrics
        ]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for _, g in groups.iterrows():
            cells = [_fmt(g[c]) for c in shown] + [
                f"{_fmt(g[f'{m}_mean'])} [{_fmt(g[f'{m}_min'])} – {_fmt(g[f'{m}_max'])}]"
                for m in metrics
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "![per group](comparison.png)", ""]
    if len(ok):
        cols = ["run"] + [c for c in df.columns if c.startswith("param.")]
        cols += [
            c
            for c in ("contract", "scenario", "grid", "seed", *KEY_COLUMNS)
            if c in ok.columns and c not in cols
        ]
        lines += ["## Every run", "", ok[cols].to_markdown(index=False, floatfmt=".3g"), ""]
    bad = df[df.status != "complete"]
    if len(bad):
        lines += ["## Failed, incomplete or unreadable runs (skipped)", ""]
        lines += [f"- `{r.run}` ({r.status}): {r.error}" for r in bad.itertuples()]
        lines.append("")
    return "\n".join(lines)


def plot_groups(groups: pd.DataFrame, keys: list[str], path: Path) -> dict[str, np.ndarray]:
    """One panel per KPI: each group's mean with min–max error bars, the values written at
    the bars. Returns ``{kpi: (n_group, 3) array of mean, min, max}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [c.removesuffix("_mean") for c in groups.columns if c.endswith("_mean")]
    shown = [c for c in groups.columns if c in keys] or (["group"] if "group" in groups else [])
    single = len(shown) == 1 and shown[0] != "group"
    labels = [
        (
            str(g[shown[0]])
            if single
            else "\n".join(f"{c.removeprefix('param.')}={g[c]}" for c in shown)
            if shown
            else "all runs"
        )
        for _, g in groups.iterrows()
    ]
    n = max(len(metrics), 1)
    ncol = min(n, 3)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.9 * nrow + 0.4), squeeze=False)
    drawn: dict[str, np.ndarray] = {}
    x = np.arange(len(groups))
    for ax, m in zip(axes.ravel(), metrics, strict=False):
        mean = groups[f"{m}_mean"].to_numpy(float)
        lo = groups[f"{m}_min"].to_numpy(float)
        hi = groups[f"{m}_max"].to_numpy(float)
        ax.errorbar(
            x,
            mean,
            yerr=[mean - lo, hi - mean],
            fmt="o",
            color="tab:blue",
            ecolor="0.3",
            capsize=5,
            lw=1.2,
            label="mean; bars: min – max",
        )
        for xi, a, b, c in zip(x, mean, lo, hi, strict=True):
            ax.annotate(f"{a:.4g}", (xi, a), textcoords="offset points", xytext=(7, -3), fontsize=7)
            if b != c:
                ax.annotate(
                    f"{c:.4g}",
                    (xi, c),
                    textcoords="offset points",
                    xytext=(0, 4),
                    ha="center",
                    fontsize=7,
                    color="0.35",
                )
                ax.annotate(
                    f"{b:.4g}",
                    (xi, b),
                    textcoords="offset points",
                    xytext=(0, -10),
                    ha="center",
                    fontsize=7,
                    color="0.35",
                )
        name, unit = KPI_INFO.get(m, (m, ""))
        ax.set_title(name, fontsize=9)
        ax.set_ylabel(unit)
        ax.set_xticks(
            x,
            labels,
            fontsize=7,
            rotation=30 if len(x) > 3 else 0,
            ha="right" if len(x) > 3 else "center",
        )
        ax.set_xlim(-0.6, len(x) - 0.4)
        if single:
            ax.set_xlabel(shown[0].removeprefix("param."), fontsize=8)
        ax.margins(y=0.2)
        ax.grid(axis="y", alpha=0.3)
        drawn[m] = np.column_stack([mean, lo, hi])
    for ax in axes.ravel()[len(metrics) :]:
        ax.set_visible(False)
    runs = groups["runs"].to_numpy() if "runs" in groups else np.ones(len(groups), int)
    by = ", ".join(k.removeprefix("param.") for k in keys) or "one group"
    count = f"{runs.min()}" if runs.min() == runs.max() else f"{runs.min()}–{runs.max()}"
    fig.suptitle(
        f"Per group ({by}): mean (dot) and min – max (bars) over {count} run(s) each",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    axes.ravel()[0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return drawn


def report(
    sweep_dir: Path, out_dir: Path | None = None, by: list[str] | None = None
) -> pd.DataFrame:
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(
            f"sweep folder {sweep_dir} does not exist: give the folder a `twin -m` run wrote"
        )
    out = out_dir or sweep_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    df = collect(sweep_dir)
    if df.empty:
        raise FileNotFoundError(
            f"no runs found under {sweep_dir}: give the folder a `twin -m` run wrote"
        )
    keys = swept_keys(df, by)
    groups = group_table(df, keys)
    atomic_write(out / "runs.csv", lambda p: df.to_csv(p, index=False))
    text_cols = [c for c in df.columns if c.startswith(("override.", "param."))] + ["error"]
    atomic_write(
        out / "runs.parquet",
        lambda p: df.astype({c: str for c in text_cols if c in df}).to_parquet(p, index=False),
    )
    atomic_write(out / "groups.csv", lambda p: groups.to_csv(p, index=False))
    atomic_write(out / "summary.md", lambda p: p.write_text(_markdown(df, groups, keys, sweep_dir)))
    if len(groups):
        plot_groups(groups, keys, out / "comparison.png")
    return df


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twin-report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweep_dir", type=Path, help="folder written by `twin -m ...` (or any folder of runs)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: <sweep_dir>/report)"
    )
    parser.add_argument(
        "--by",
        default=None,
        help="comma-separated keys to group by (default: the swept keys except seed)",
    )
    args = parser.parse_args(argv)
    by = [k.strip() for k in args.by.split(",") if k.strip()] if args.by else None
    try:
        df = report(args.sweep_dir, args.out, by)
    except (FileNotFoundError, KeyError) as err:
        print(f"twin-report: error: {str(err).strip(chr(34) + chr(39))}", file=sys.stderr)
        return 2
    n_bad = int((df.status != "complete").sum())
    print(f"{len(df) - n_bad} complete, {n_bad} failed: {(args.out or args.sweep_dir / 'report')}")
    for r in df[df.status != "complete"].itertuples():
        print(f"  {r.status}: {r.run}: {r.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
