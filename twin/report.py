"""``twin-report <sweep folder>``: one comparison table and figures from many runs.

Every run folder below the sweep folder (a folder with ``kpis.json``, ``config.yaml`` or a
Hydra ``.hydra/`` snapshot) becomes one row: its status (complete, or failed/incomplete when
``DONE`` is missing), its command-line overrides as columns, and its KPIs. Failed and missing
runs are listed in the summary, never fatal. Outputs go to ``<sweep>/report/``: ``runs.parquet``,
``runs.csv``, ``summary.md`` and figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from twin.catalog import REPORT
from twin.writer import DONE, atomic_write

KEY_COLUMNS = REPORT  # twin.catalog


def _overrides(run_dir: Path) -> dict[str, str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    items = yaml.safe_load(path.read_text()) or []
    out = {}
    for item in items:
        key, _, value = str(item).partition("=")
        out[key.lstrip("+~")] = value
    return out


def _error_hint(run_dir: Path) -> str:
    """The last line of a failed run's log (Hydra's job log or submitit's stderr)."""
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


def collect(sweep_dir: Path) -> pd.DataFrame:
    """One row per run folder: ``run``, ``status``, ``error``, overrides, KPIs."""
    rows: list[dict[str, Any]] = []
    for run_dir in find_runs(sweep_dir):
        row: dict[str, Any] = {"run": str(run_dir.relative_to(sweep_dir)) or "."}
        row.update({f"override.{k}": v for k, v in _overrides(run_dir).items()})
        complete = (run_dir / DONE).is_file() and (run_dir / "kpis.json").is_file()
        row["status"] = "complete" if complete else "failed"
        row["error"] = "" if complete else _error_hint(run_dir)
        if complete:
            kpis = json.loads((run_dir / "kpis.json").read_text())
            row.update({k: v for k, v in kpis.items() if not isinstance(v, dict | list)})
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(df: pd.DataFrame, sweep_dir: Path) -> str:
    ok = df[df.status == "complete"]
    bad = df[df.status != "complete"]
    lines = [
        f"# twin report: {sweep_dir}",
        "",
        f"{len(ok)} complete run(s), {len(bad)} failed or incomplete.",
        "",
    ]
    if len(ok):
        cols = ["run"] + [c for c in df.columns if c.startswith("override.")]
        cols += [
            c
            for c in ("contract", "scenario", "grid", "seed", *KEY_COLUMNS)
            if c in ok.columns and c not in cols
        ]
        lines += [ok[cols].to_markdown(index=False, floatfmt=".3g"), ""]
    if len(bad):
        lines += ["## Failed or incomplete runs", ""]
        lines += [f"- `{r.run}`: {r.error}" for r in bad.itertuples()]
        lines.append("")
    return "\n".join(lines)


def _figures(df: pd.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = df[df.status == "complete"]
    if ok.empty or "contract" not in ok:
        return
    by = [c for c in ("scenario", "contract") if c in ok]
    metrics = [
        ("coincident_peak_per_household_kw", "coincident peak per household (kW)"),
        ("comfort_days_met_share", "comfort: household-days met"),
        ("ev_days_met_share", "EV range: household-days met"),
    ]
    metrics = [m for m in metrics if m[0] in ok]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.8), squeeze=False)
    grouped = ok.groupby(by)
    labels = [" / ".join(map(str, k if isinstance(k, tuple) else (k,))) for k in grouped.groups]
    for ax, (col, title) in zip(axes[0], metrics, strict=True):
        mean = grouped[col].mean()
        err = grouped[col].std().fillna(0.0)
        ax.bar(range(len(mean)), mean.values, yerr=err.values, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(mean)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    atomic_write(out / "comparison.png", lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


def report(sweep_dir: Path, out_dir: Path | None = None) -> pd.DataFrame:
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
    atomic_write(out / "runs.csv", lambda p: df.to_csv(p, index=False))
    atomic_write(
        out / "runs.parquet",
        lambda p: df.astype({c: str for c in df.columns if c.startswith("override.")}).to_parquet(
            p, index=False
        ),
    )
    atomic_write(out / "summary.md", lambda p: p.write_text(_markdown(df, sweep_dir)))
    _figures(df, out)
    return df


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twin-report", description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweep_dir", type=Path, help="folder written by `twin -m ...` (or any folder of runs)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: <sweep_dir>/report)"
    )
    args = parser.parse_args(argv)
    try:
        df = report(args.sweep_dir, args.out)
    except FileNotFoundError as err:
        print(f"twin-report: error: {err}", file=sys.stderr)
        return 2
    n_bad = int((df.status != "complete").sum())
    print(f"{len(df) - n_bad} complete, {n_bad} failed: {(args.out or args.sweep_dir / 'report')}")
    for r in df[df.status != "complete"].itertuples():
        print(f"  failed: {r.run}: {r.error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
