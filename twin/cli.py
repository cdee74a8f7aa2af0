"""``twin``: the Hydra command line. Compose the config, run, write the results, print KPIs.

    twin                                  # the embedded default (twin/configs/config.yaml)
    twin sim.days=1 seed=7                # overrides
    twin -m seed=1,2,3 hydra/launcher=joblib   # a sweep

Every failed call prints one line on stderr, ``twin: error: <what>: <how to fix it>``, and
exits with status 2 (bad input, Hydra's own composition errors included), 130 (Ctrl-C) or 143
(SIGTERM); ``TWIN_DEBUG=1`` or ``hydra.verbose=true`` print the traceback too. A failed single
run leaves no run folder if it wrote nothing (else ``FAILED`` and no ``DONE``); a failed sweep
job leaves ``FAILED`` in its folder, the other jobs finish, and the call ends with one line
counting the failures. See the README, "Bad input".
"""

from __future__ import annotations

import difflib
import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

import twin.helptext  # noqa: F401 - registers ${twin_help:}, the body of `twin --help`
from twin.catalog import RUN_TABLE, label, unit
from twin.config import CONFIG_DIR, validate
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


def _sensors(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from twin.measure import MeasurementSettings
    from twin.pipeline import run
    from twin.sensors import sensor_study, write_sensors

    task = [o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith("study")]
    if not any(o.lstrip("+~").startswith("measurement=") for o in task):
        task.append(f"measurement={cfg.study.base}")  # (a measurement= override wins)
    c = compose(config_name="config", overrides=[*task, "study=single"])
    c = OmegaConf.masked_copy(c, [k for k in c if k != "hydra"])
    result = run(c, progress=bool(cfg.output.progress))
    threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
    settings = MeasurementSettings.from_config(c.measurement)
    study = sensor_study(result, settings, int(cfg.study.n_sensors), threads)
    write_sensors(study, out_dir, c, result.feeder.net)
    cols = ["rank", "cable", "line_err_max_pp", "reduction_pp", "line_err_mean_pp"]
    print(study.ranking[cols].to_markdown(index=False, floatfmt=".3g"))
    print(f"results: {out_dir}")
    return {"sensors": study.ranking.to_dict(orient="records")}


def _unregistered(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from twin.enhance import unregistered_study, write_unregistered
    from twin.measure import MeasurementSettings
    from twin.pipeline import run
    from twin.scenario import load_scenario, with_adoption

    task = [o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith("study")]
    if not any(o.lstrip("+~").startswith("measurement=") for o in task):
        task.append(f"measurement={cfg.study.base}")  # (a measurement= override wins)
    c = compose(config_name="config", overrides=[*task, "study=single"])
    c = OmegaConf.masked_copy(c, [k for k in c if k != "hydra"])
    scenario = load_scenario(str(c.scenario.name))
    if cfg.study.share is not None:
        share = float(cfg.study.share)
        scenario = with_adoption(scenario, "study.share", unregistered_given_adopter=share)
    result = run(c, progress=bool(cfg.output.progress), scenario=scenario)
    threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
    out = unregistered_study(result, MeasurementSettings.from_config(c.measurement), threads)
    write_unregistered(out, out_dir, c)
    print(out["detection"].to_markdown(index=False, floatfmt=".3g"))
    print(out["forecasts"].to_markdown(index=False, floatfmt=".4g"))
    print(f"results: {out_dir}")
    return {"unregistered": out["detection"].to_dict(orient="records")}


def _herding(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    from twin.herding import herding_study, write_herding

    configs = _contract_configs(cfg)
    table = herding_study(configs, cfg.study)
    write_herding(table, cfg.study, out_dir, next(iter(configs.values())))
    cols = ["contract", "automation_share", "trafo_peak_kva", "line_max_loading_pct"]
    cols += [c for c in table.columns if c.endswith(f"_vs_{cfg.study.baseline}")]
    print(table[cols].to_markdown(index=False, floatfmt=".3f"))
    print(f"results: {out_dir}")
    return {"herding": table.replace({float("nan"): None}).to_dict(orient="records")}


def _region(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    from twin.region import run_region, totals_table, write_region

    configs = _contract_configs(cfg)
    res = run_region(cfg, configs, out_dir)
    write_region(res, out_dir, figures=bool(cfg.study.figures))
    print(totals_table(res))
    print(f"results: {out_dir}")
    if res.failures:
        raise TwinError(
            f"{len(res.failures)} of {len(res.table)} feeder runs of the region failed (first: "
            f"{res.failures[0]}): fix the input and run the same command with "
            f"hydra.run.dir={out_dir} (complete feeder runs are skipped); region.csv lists them"
        )
    return {"region": res.totals.replace({float("nan"): None}).to_dict(orient="index")}


STUDIES = {
    "single": _single,
    "hosting": _hosting,
    "compare": _compare,
    "herding": _herding,
    "sensors": _sensors,
    "unregistered": _unregistered,
    "region": _region,
}


def _log_to_files(message: str) -> None:
    """Write an error into the job's log file(s) only (the terminal gets one line already)."""
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, message, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
            handler.flush()


# ----------------------------------------------------------------------------------------------
# failed calls: one line, an exit status, no traceback unless asked for
# ----------------------------------------------------------------------------------------------

EXIT_BAD_INPUT = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM
_MAIN_PID = "TWIN_MAIN_PID"  # "<host>:<pid>" of the twin process a local sweep's workers watch
_HYDRA_FILES = (".hydra", "twin.log")  # what Hydra writes into a job folder before twin runs


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C (so joblib stops its workers)."""


class _CallFailed(BaseException):
    """A failed single run, carried past Hydra's job wrapper (which would print a second line
    for an ``Exception``) to :func:`main`; ``__cause__`` is the original error."""

    def __init__(self, line: str, status: int) -> None:
        super().__init__(line)
        self.line, self.status = line, status


def _first_line(text: object) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _nearest(name: str, known: Sequence[str]) -> str:
    near = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return near[0] if near else ""


def _schema_field(key: str) -> tuple[Any, dict[str, Any]] | None:
    """(type, metadata) of the schema field behind a dotted config key (twin/schema.py), or
    None when twin's schema does not know it (Hydra's own keys)."""
    import dataclasses
    import typing

    from twin.schema import CONTRACT_SCHEMAS, STUDY_SCHEMAS, TwinConfig

    parts = key.split(".")
    groups = {"contract": CONTRACT_SCHEMAS, "study": STUDY_SCHEMAS}
    roots: list[type] = [TwinConfig]
    if parts[0] in groups and len(parts) > 1:
        roots, parts = list(dict.fromkeys(groups[parts[0]].values())), parts[1:]
    for root in roots:
        cls: Any = root
        for i, part in enumerate(parts):
            found = {f.name: f for f in dataclasses.fields(cls)}.get(part)
            if found is None:
                break
            hint = typing.get_type_hints(cls)[part]
            if i == len(parts) - 1:
                return hint, dict(found.metadata)
            if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
                break
            cls = hint
    return None


def _wanted(key: str, hydra_msg: str) -> str:
    """What a value of ``key`` must be, from the schema (type and bounds) or Hydra's message."""
    import typing

    field = _schema_field(key)
    if field is None:
        msg = hydra_msg.lower()
        for needle, kind in (
            ("integer", "a whole number"),
            ("float", "a number"),
            ("bool", "true or false"),
            ("string", "text (quote it)"),
            ("dict", "a mapping such as {key: value}"),
            ("list", "a list such as [a,b]"),
            ("optional", "a value (null is not allowed)"),
        ):
            if needle in msg:
                return kind
        return "a value of the right type"
    hint, meta = field
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    nullable = type(None) in typing.get_args(hint)
    base = args[0] if args and nullable and len(args) == 1 else hint
    origin = typing.get_origin(base) or base
    if origin is bool:
        kind = "true or false"
    elif origin is int:
        kind = "a whole number"
    elif origin is float:
        kind = "a number"
    elif origin is str:
        kind = "text"
    elif origin is dict:
        kind = "a mapping such as {key: value}"
    elif origin is list:
        kind = "a list such as [a,b]"
    else:
        kind = "a value of the right type"
    if meta.get("choices"):
        kind = f"one of {', '.join(map(str, meta['choices']))}"
    elif meta.get("low") is not None and meta.get("high") is not None:
        kind += f" from {_num(meta['low'])} to {_num(meta['high'])}"
    return kind + (" (or null)" if nullable else "")


def _override_text(key: str, overrides: Sequence[str]) -> str | None:
    """The command-line override that sets ``key``, as typed."""
    for text in reversed(list(overrides)):
        name = text.split("=", 1)[0].lstrip("+~")
        if name == key:
            return text
    return None


def _unknown_key(cause: Any) -> str:
    """An override of a key the config does not have (``foo=1``, ``sim.dayz=3``)."""
    from twin.schema import CONTRACT_SCHEMAS

    full_key = str(cause.full_key or cause.key)
    name = full_key.rsplit(".", 1)[-1]
    parent = full_key.rsplit(".", 1)[0] if "." in full_key else ""
    node = cause.parent_node
    known = [str(k) for k in node.keys()] if node is not None and hasattr(node, "keys") else []
    if parent == "contract":
        import dataclasses

        current = node.get("name") if node is not None and hasattr(node, "get") else None
        owners = sorted(
            n
            for n, sch in CONTRACT_SCHEMAS.items()
            if name in {f.name for f in dataclasses.fields(sch)}
        )
        if owners:
            return (
                f"contract.{name} is not a key of contract={current}: it belongs to contract="
                f"{', '.join(owners)}: choose that contract first, e.g. contract={owners[0]} "
                f"contract.{name}=..."
            )
    near = _nearest(name, [k for k in known if k != "hydra"])
    where = f"a key of {parent}" if parent else "a twin key"
    hint = (
        f"did you mean {parent + '.' if parent else ''}{near}?"
        if near
        else (
            f"the keys are {', '.join(k for k in known if k != 'hydra')}"
            if known
            else "check the name"
        )
    )
    if not parent:  # as twin.config.validate says it for +foo=1
        return f"config key '{full_key}' is not a twin key: {hint}"
    return f"{full_key} is not {where}: {hint}"


def _missing_option(err: Any) -> str:
    """A group option that does not exist (``contract=perfomance``, ``hydra/launcher=x``)."""
    missing = str(err.missing_cfg_file or "")
    if "/" not in missing:
        return f"config '{missing}' not found: {_first_line(err)}: check the name"
    group, option = missing.rsplit("/", 1)
    options = sorted(o for o in (err.options or []) if not str(o).endswith("_schema"))
    near = _nearest(option, options)
    hint = f"did you mean {group}={near}? " if near else ""
    listed = f"the options of {group} are {', '.join(options)}" if options else "check the name"
    return f"{group}={option} does not exist: {hint}{listed}"


def _composition(err: Any, overrides: Sequence[str]) -> str:
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    cause = err.__cause__
    if isinstance(cause, ConfigAttributeError | ConfigKeyError) and cause.full_key:
        return _unknown_key(cause)
    if isinstance(cause, ValidationError) and cause.full_key:
        key = str(cause.full_key)
        merging = _first_line(err).removeprefix("Error merging override ")
        text = merging if merging != _first_line(err) else _override_text(key, overrides)
        text = text or f"{key}={cause.value!r}"
        return f"{text} is invalid: give {_wanted(key, str(cause.msg or cause))}"
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    head = lines[0] if lines else type(err).__name__
    if head.startswith("Could not append to config. An item is already at"):
        key = head.rsplit("'", 2)[-2] if head.count("'") >= 2 else "?"
        return f"+{key}=... adds a key that exists: write {key}=... (without the +)"
    if head.startswith("Ambiguous value for argument"):
        text = head.split("'", 1)[-1].rstrip("'")
        return (
            f"{text} gives several values: add -m to run one job per value (twin -m {text}), "
            f"or write a list as [..] or quote the text"
        )
    if cause is not None and not lines[1:]:
        lines.append(_first_line(cause))
    return head.rstrip(".:") + (": " + " ".join(lines[1:]) if lines[1:] else "")


def _os_error(err: OSError, folder: Path | None = None) -> str:
    import errno

    where = err.filename or err.filename2
    reason = os.strerror(err.errno) if err.errno else (_first_line(err) or type(err).__name__)
    if where:
        target = f"cannot write into {Path(str(where)).parent}"
    else:
        target = f"cannot write into {folder}" if folder else "cannot write the results"
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{target}: {reason}: free some space, or choose another paths.results_dir"
    if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"{target}: {reason}: choose a writable paths.results_dir "
            "(or hydra.run.dir / hydra.sweep.dir)"
        )
    return f"{where or 'a file'}: {reason}: check the path and its folder"


def describe(
    err: BaseException, overrides: Sequence[str] = (), folder: Path | None = None
) -> tuple[str, int]:
    """The one line (after ``twin: error: ``) and the exit status for an error that ended a
    call: twin's own :class:`TwinError`, Hydra's composition and override errors, OmegaConf's
    value errors, file-system errors, interrupts; anything else is reported as a bug (exit 1).
    ``folder``: the run or sweep folder, named when a file-system error does not say which.
    """
    from hydra.errors import (
        CompactHydraException,
        ConfigCompositionException,
        HydraException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(err, _CallFailed):
        return err.line, err.status
    if isinstance(err, _Terminated):
        return (
            "stopped by SIGTERM: runs that did not finish are not marked complete; run the "
            "same command again (complete runs of a sweep are skipped)",
            EXIT_TERMINATED,
        )
    if isinstance(err, KeyboardInterrupt):
        return (
            "interrupted: runs that did not finish are not marked complete; run the same "
            "command again (complete runs of a sweep are skipped)",
            EXIT_INTERRUPTED,
        )
    if isinstance(err, TwinError):
        return _one_line(str(err)), EXIT_BAD_INPUT
    if isinstance(err, MissingConfigException):
        return _one_line(_missing_option(err)), EXIT_BAD_INPUT
    if isinstance(err, OverrideParseException):
        return _one_line(_bad_grammar(err.override, str(err))), EXIT_BAD_INPUT
    if isinstance(err, ConfigCompositionException):
        return _one_line(_composition(err, overrides)), EXIT_BAD_INPUT
    if isinstance(err, OmegaConfBaseException):
        key = err.full_key or err.key
        text = _first_line(err.msg or err)
        fix = (
            "fix the value: an interpolation ${...} must name an existing key of the config"
            if "nterpolation" in text
            else "fix the value"
        )
        return _one_line(f"{key + ': ' if key else ''}{text}: {fix}"), EXIT_BAD_INPUT
    if isinstance(err, CompactHydraException | HydraException):
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        return _one_line(": ".join(lines[:2]) or type(err).__name__), EXIT_BAD_INPUT
    if type(err).__module__.startswith("submitit") and isinstance(err, RuntimeError):
        return (
            _one_line(
                f"a Slurm job of the sweep did not finish ({_first_line(err)}): see its logs "
                "under <sweep folder>/.submitit/; raise hydra.launcher.timeout_min or "
                "hydra.launcher.mem_gb if Slurm killed it for time or memory"
            ),
            EXIT_BAD_INPUT,
        )
    chain: BaseException | None = err
    while chain is not None:  # an OSError, possibly wrapped (logging's dictConfig wraps it)
        if isinstance(chain, OSError):
            return _one_line(_os_error(chain, folder)), EXIT_BAD_INPUT
        chain = chain.__cause__ or chain.__context__
    return (
        _one_line(
            f"unexpected {type(err).__name__}: {_first_line(err)}: this is a bug in twin; run "
            "again with TWIN_DEBUG=1 and report the traceback"
        ),
        EXIT_BUG,
    )


def _bad_grammar(override: str, message: str) -> str:
    return (
        f"cannot read the override {override!r} ({_first_line(message)}): write key=value, "
        "quote values holding spaces, brackets or commas (key='a,b'), see "
        "https://hydra.cc/docs/advanced/override_grammar/basic/"
    )


def _debug_requested(overrides: Sequence[str]) -> bool:
    """TWIN_DEBUG=1, Hydra's own HYDRA_FULL_ERROR=1, or a hydra.verbose override."""
    if (
        os.environ.get("TWIN_DEBUG", "") not in ("", "0")
        or os.environ.get("HYDRA_FULL_ERROR") == "1"
    ):
        return True
    for text in overrides:
        key, _, value = text.partition("=")
        if key.lstrip("+") == "hydra.verbose" and value.strip().lower() not in (
            "",
            "false",
            "null",
            "none",
            "[]",
        ):
            return True
    return False


def _precheck(argv: Sequence[str]) -> tuple[list[str], bool]:
    """Read the command line as Hydra will (its argument parser, its override grammar), so an
    unknown flag or an override it cannot parse is one line naming it. Returns the overrides
    and whether the call is a sweep (``-m``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:  # Hydra's own parser of the command line (internal: hydra.main uses it)
        from hydra._internal.utils import get_args_parser
    except ImportError:  # a Hydra that moved it: Hydra itself still reads the command line
        plain = [a for a in argv if not a.startswith("-")]
        return plain, "-m" in argv or "--multirun" in argv
    parser = get_args_parser()

    def refuse(message: str) -> None:
        raise TwinError(f"{message}: write overrides as key=value; twin --help lists the flags")

    parser.error = refuse  # type: ignore[method-assign]  # argparse would print its usage
    args = parser.parse_args(list(argv))
    grammar = OverridesParser.create()
    for text in args.overrides:
        try:
            parsed = grammar.parse_override(text)
        except HydraException as err:
            raise TwinError(_bad_grammar(text, str(err))) from None
        if not parsed.key_or_group:
            raise TwinError(f"the override {text!r} has no key: write key=value")
    return list(args.overrides), bool(args.multirun)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def _watch_parent() -> None:
    """In a local sweep's worker (a child of the ``twin`` process, e.g. joblib's loky workers):
    exit at once when that process is gone (SIGKILL, SIGTERM, a crash) instead of running on
    and writing into the sweep's folders beside a re-run. A daemon thread polls the parent pid;
    staging folders of a run killed this way are removed by the next run into its folder."""
    here = socket.gethostname()
    host, _, pid = os.environ.get(_MAIN_PID, "").rpartition(":")
    if host != here or not pid.isdigit() or int(pid) == os.getpid():
        return  # in the twin process itself, or a Slurm job on its own node
    parent = int(pid)
    if os.getppid() != parent or getattr(_watch_parent, "started", False):
        return
    _watch_parent.started = True  # type: ignore[attr-defined]

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(EXIT_TERMINATED)

    threading.Thread(target=watch, name="twin-watch-parent", daemon=True).start()


class CallReport(Callback):
    """Hydra callback (``hydra/callbacks=twin``, selected by :func:`main`) in the twin process:
    it records the single run's folder (so :func:`main` can remove it when the call fails
    before twin wrote anything, e.g. Hydra's own files on a full disk) and, after a sweep,
    counts the jobs that left a new ``FAILED`` marker, so the call ends with one line and
    exit 2 instead of exit 0. The jobs may run anywhere (joblib workers, Slurm nodes): the
    markers in the sweep folder are what they share."""

    last: CallReport | None = None

    def __init__(self) -> None:
        self.run_dir: Path | None = None
        self.sweep_dir: Path | None = None
        self.before: dict[Path, int] = {}
        self.jobs_before: dict[Path, int] = {}

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        CallReport.last = self
        try:
            self.run_dir = Path(str(config.hydra.run.dir)).absolute()
        except Exception:  # noqa: BLE001 - Hydra reports a broken run.dir itself
            self.run_dir = None

    def _markers(self) -> dict[Path, int]:
        if self.sweep_dir is None or not self.sweep_dir.is_dir():
            return {}
        found = {}
        for p in self.sweep_dir.rglob("FAILED"):
            if ".submitit" not in p.parts:
                try:
                    found[p] = p.stat().st_mtime_ns
                except OSError:
                    pass
        return found

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        CallReport.last = self
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        self.before = self._markers()
        self.jobs_before = self._jobs()

    def _jobs(self) -> dict[Path, int]:
        if self.sweep_dir is None or not self.sweep_dir.is_dir():
            return {}
        out = {}
        for p in self.sweep_dir.rglob(".hydra/overrides.yaml"):
            if ".submitit" not in p.parts:
                try:
                    out[p.parent.parent] = p.stat().st_mtime_ns
                except OSError:
                    pass
        return out

    def failures(self) -> tuple[list[Path], int]:
        """The job folders that failed in this sweep, and how many jobs it ran."""
        failed = sorted(
            (p.parent for p, t in self._markers().items() if self.before.get(p) != t),
            key=lambda d: (len(d.parts), str(d)),
        )
        ran = [d for d, t in self._jobs().items() if self.jobs_before.get(d) != t]
        return failed, max(len(ran), len(failed))

    def summary(self) -> str | None:
        failed, ran = self.failures()
        if not failed:
            return None
        first = failed[0]
        try:
            text = _first_line((first / "FAILED").read_text()).removeprefix("twin: error: ")
        except OSError:
            text = "see its FAILED file"
        name = first.relative_to(self.sweep_dir) if self.sweep_dir else first
        return _one_line(
            f"{len(failed)} of {ran} sweep runs failed, the others finished (first: run {name}: "
            f"{text}): fix the input and run the same command with hydra.sweep.dir="
            f"{self.sweep_dir} (complete runs are skipped); twin-report lists every failure"
        )


def _job_failed(err: BaseException, cfg: DictConfig) -> Any:
    """Bookkeeping of a failed job, in the process that ran it: the one line into its log and
    ``FAILED`` (a sweep job, or a single run whose folder holds earlier results), or no folder
    at all (a single run that wrote nothing). A sweep job's error stays in the job so the other
    jobs finish; a single run's goes on to :func:`main`. Never raises anything else: it may run
    in a damaged interpreter (Ctrl-C in the middle of an import)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    hc: Any = None
    overrides: list[str] = []
    try:
        hc = HydraConfig.get()
        # as typed: an override may hold an interpolation that does not resolve (seed=${oops})
        overrides = [str(o) for o in OmegaConf.to_container(hc.overrides.task, resolve=False)]
        line, status = describe(err, overrides)
    except Exception:  # noqa: BLE001
        line, status = f"{type(err).__name__}: {_first_line(err)}", EXIT_BUG
    line = f"twin: error: {line}"
    if os.environ.get("TWIN_DEBUG", "") not in ("", "0") and not isinstance(err, KeyboardInterrupt):
        traceback.print_exception(err)
    sweep = hc is not None and hc.mode == RunMode.MULTIRUN
    try:
        from twin.writer import RunFolder, mark_failed

        out_dir = Path(hc.runtime.output_dir)
        if sweep:
            log.error(line)  # the job's log and the terminal (stdout); twin-report reads FAILED
            mark_failed(out_dir, line)
        else:
            hydra_files = tuple(f for f in (hc.output_subdir, f"{hc.job.name}.log") if f)
            if not RunFolder.discard_if_empty(out_dir, hydra_files):
                _log_to_files(line)  # the run's log file; main() prints the terminal's line
                mark_failed(out_dir, line)
    except Exception:  # noqa: BLE001 - the folder stays as it is (no DONE was written)
        pass
    if sweep:
        if isinstance(err, Exception):
            return {"failed": line}  # the sweep goes on; CallReport counts it
        raise err
    raise _CallFailed(line.removeprefix("twin: error: "), status) from err


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> dict[str, Any] | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if HydraConfig.get().mode == RunMode.MULTIRUN:
        _watch_parent()
        logging.raiseExceptions = False  # a full disk must not print logging's tracebacks
    study = cfg.get("study", {}).get("name", "single")
    try:
        if study not in STUDIES:
            raise TwinError(f"study={study!r} is unknown: use one of {', '.join(STUDIES)}")
        validate(cfg)  # every bound, the study's too (a study composes its runs' configs anew)
        return STUDIES[study](cfg, _output_dir())
    except BaseException as err:  # noqa: BLE001 - every failure ends in one line
        return _job_failed(err, cfg)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the command; every failure ends in one line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    saved_argv = sys.argv
    saved_env = {k: os.environ.get(k) for k in ("HYDRA_FULL_ERROR", "TWIN_DEBUG", _MAIN_PID)}
    saved_raise = logging.raiseExceptions
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    overrides = [a for a in argv if not a.startswith("-")]
    debug = _debug_requested(overrides)
    CallReport.last = None
    try:
        overrides, _ = _precheck(argv)
        debug = _debug_requested(overrides)
        os.environ["TWIN_DEBUG"] = "1" if debug else "0"  # for the jobs (and sweep workers)
        # Hydra re-raises its own errors instead of printing them when HYDRA_FULL_ERROR=1 (its
        # documented switch); describe() below makes each of them one line
        os.environ["HYDRA_FULL_ERROR"] = "1"
        os.environ[_MAIN_PID] = f"{socket.gethostname()}:{os.getpid()}"
        logging.raiseExceptions = False  # a full disk must not print logging's tracebacks
        # the sweep bookkeeping (CallReport), unless the user chose callbacks of their own
        own = any(o.split("=", 1)[0].lstrip("+~") == "hydra/callbacks" for o in overrides)
        # beside the other overrides: argparse takes the positional overrides as one run
        args = list(argv)
        if not own:
            first = next((i for i, a in enumerate(args) if a in overrides), len(args))
            args.insert(first, "hydra/callbacks=twin")
        sys.argv = [saved_argv[0], *args]
        _app()
        summary = CallReport.last.summary() if CallReport.last is not None else None
        if summary is not None:
            print(f"twin: error: {summary}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
    except SystemExit:
        raise
    except BaseException as err:  # noqa: BLE001 - every failure ends in one line
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        report = CallReport.last
        folder = report and (report.sweep_dir or report.run_dir)
        line, status = describe(err, overrides, folder or None)
        if debug and not isinstance(err, _CallFailed):  # a failed job printed its own
            traceback.print_exception(err)
        _cleanup_after_hydra()
        print(f"twin: error: {line}", file=sys.stderr)
        sys.exit(status)
    finally:
        sys.argv = saved_argv
        signal.signal(signal.SIGTERM, previous)
        logging.raiseExceptions = saved_raise
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _cleanup_after_hydra() -> None:
    """A single run that failed (in twin, or in Hydra's own preparation of its folder, e.g. a
    full disk): remove its folder if it holds nothing but Hydra's own files."""
    report = CallReport.last
    if report is None or report.run_dir is None or report.sweep_dir is not None:
        return
    try:
        from twin.writer import RunFolder

        RunFolder.discard_if_empty(report.run_dir, _HYDRA_FILES)
    except Exception:  # noqa: BLE001 - e.g. an import broken by Ctrl-C: the folder has no DONE
        pass


if __name__ == "__main__":
    main()
