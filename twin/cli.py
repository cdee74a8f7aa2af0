"""``twin``: the Hydra command line. Compose the config, run, write the results, print KPIs.

    twin                                  # the embedded default (twin/configs/config.yaml)
    twin sim.days=1 seed=7                # overrides
    twin -m seed=1,2,3 hydra/launcher=joblib   # a sweep

Errors in the input print one line (``twin: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

import twin.helptext  # noqa: F401 - registers ${twin_help:}, the body of `twin --help`
from twin.catalog import RUN_TABLE, label, unit
from twin.config import CONFIG_DIR
from twin.errors import TwinError

log = logging.getLogger("twin")


def format_kpi_table(kpis: dict[str, Any]) -> str:
    """The terminal KPI table (also used in the README): value, unit, the limit where there is
    one (:func:`twin.writer.limits`) and whether the run keeps it (``ok``, ``✗ over``,
    ``✗ below``)."""
    from twin.writer import limit_text, mark

    rows = [(key, label(key), unit(key), kpis[key]) for key in RUN_TABLE if key in kpis]
    width = max(len(r[1]) for r in rows)
    uwidth = max(len(r[2]) for r in rows)
    head = (
        f"{kpis.get('grid')} | {kpis.get('scenario')} | contract {kpis.get('contract')} | "
        f"{kpis.get('start')} + {kpis.get('days')} d | {kpis.get('households')} households | seed {kpis.get('seed')}"
    )
    lines = [head, "-" * len(head)]
    for key, name, units, value in rows:
        text = (
            f"{value:,.3f}"
            if isinstance(value, float) and abs(value) < 10
            else (f"{value:,.1f}" if isinstance(value, float) else str(value))
        )
        limit = limit_text(key)
        verdict = mark(key, value)
        line = f"{name:<{width}}  {text:>12}  {units:<{uwidth}}  {limit:<7}  {verdict}"
        lines.append(line.rstrip())
    broken = [label(k) for k, *_ in rows if mark(k, kpis[k]).startswith("✗")]
    lines.append(
        f"limits broken: {', '.join(dict.fromkeys(broken))}" if broken else "all limits kept"
    )
    return "\n".join(lines)


def _output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _single(cfg: DictConfig, out_dir: Path) -> dict[str, Any] | float:
    """One run. Returns its KPIs, or with ``objective=<kpi>`` that KPI as a float (negated
    for ``-<kpi>``), the value a Hydra sweeper such as optuna optimises."""
    from twin.catalog import objective_value
    from twin.memory import release_finished_models
    from twin.pipeline import config_to_yaml, run
    from twin.writer import is_complete, write_run

    objective = cfg.get("objective")
    if is_complete(out_dir) and (out_dir / "config.yaml").read_text() == config_to_yaml(cfg):
        # a re-run of a sweep into the same folder: this run is already complete
        print(f"twin: {out_dir} already holds a complete run of this configuration: skipped")
        kpis = json.loads((out_dir / "kpis.json").read_text())
        return objective_value(kpis, objective) if objective else kpis
    t0 = time.perf_counter()
    # the progress bar on a terminal only: piped output (a log file, `| tee`) gets no bar
    # states in front of the table
    result = run(cfg, progress=bool(cfg.output.progress) and sys.stderr.isatty())
    result.timings_s["total_run"] = time.perf_counter() - t0
    value = objective_value(result.kpis, objective) if objective else None  # before writing
    # the finished model goes before the files are written (the result is data only): a
    # year's model, forecaster and optimiser no longer sit under the writer's peak
    release_finished_models()  # and sweeps run many jobs in one process (twin.memory)
    gc.collect()
    write_run(result, out_dir)
    sys.stderr.flush()
    print(format_kpi_table(result.kpis))
    print(f"results: {out_dir}")
    if value is not None:
        print(f"objective {objective} = {value:.6g}")
        return value
    return result.kpis


def _contract_configs(cfg: DictConfig) -> dict[str, DictConfig]:
    """One composed config per contract of ``cfg.study.contracts``, from this command's own
    overrides (the study's and contract overrides dropped; tariff contracts get their tariff)."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from twin.compare import contract_configs

    def compose_main(overrides: list[str]) -> DictConfig:
        c = compose(config_name="config", overrides=overrides)
        return OmegaConf.masked_copy(c, [k for k in c if k != "hydra"])

    return contract_configs(
        list(cfg.study.contracts), list(HydraConfig.get().overrides.task), compose_main
    )


def _hosting(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    import pandas as pd

    from twin.hosting import hosting_study, write_hosting

    configs = _contract_configs(cfg)
    summary, table = hosting_study(configs, cfg.study)
    write_hosting(summary, table, cfg.study, out_dir, next(iter(configs.values())))
    print(pd.DataFrame(summary).to_markdown(index=False, floatfmt=".3g"))
    print(f"results: {out_dir}")
    return {"hosting": summary}


def _compare(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    from twin.compare import compare_study, write_comparison

    configs = _contract_configs(cfg)
    cmp = compare_study(configs, str(cfg.study.baseline))
    write_comparison(cmp, out_dir, figures=bool(cfg.study.get("figures", True)))
    print(cmp.normalised.to_markdown(floatfmt=".3f"))
    print(f"results: {out_dir}")
    return {"compare": cmp.normalised.to_dict(orient="index")}


STUDIES = {"single": _single, "hosting": _hosting, "compare": _compare}


def _log_to_files(message: str) -> None:
    """Write an error into the job's log file(s) only (the terminal gets one line already)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
            handler.flush()


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> dict[str, Any] | None:
    study = cfg.get("study", {}).get("name", "single")
    try:
        if study not in STUDIES:
            raise TwinError(f"study={study!r} is unknown: use one of {', '.join(STUDIES)}")
        return STUDIES[study](cfg, _output_dir())
    except TwinError as err:
        from twin.writer import mark_failed

        _log_to_files(f"twin: error: {err}")  # the run's log file, for twin-report
        mark_failed(_output_dir(), f"twin: error: {err}")
        print(f"twin: error: {err}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    """Console-script entry point."""
    _app()


if __name__ == "__main__":
    main()
