"""``twin --help``: generated from what twin knows, never written by hand.

* feeders: the SimBench LV code pattern (from :mod:`twin.grid.feeders`' code check), the
  ``pandapower.networks`` feeders of :data:`twin.grid.feeders.KNOWN_FEEDERS`, the ``grid``
  config options;
* the options of every config group (``scenario``, ``contract``, ``tariff``, ``study``,
  ``sim``, ``weather``), one line each from the first sentence of the option's own comment
  (a scenario's from its ``description``);
* every key of :class:`twin.schema.TwinConfig` and of the selected contract's and study's
  schema, one line each: type, default, bounds and the ``help`` of the field's metadata.

The Hydra help template (``hydra.help.template`` in ``twin/configs/config.yaml``) calls it
through the ``${twin_help:}`` resolver, registered when this module is imported (by
:mod:`twin.cli`); the resolver sees the composed config, so ``twin contract=performance
--help`` lists the performance contract's keys.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

__all__ = ["help_text"]

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
GROUPS = ("scenario", "contract", "tariff", "study", "sim", "weather", "grid")
WIDTH = 100


def _first_sentence(text: str, width: int = 80) -> str:
    text = " ".join(text.split())
    m = re.search(r"(?<=[a-z0-9)\]])[.](\s|$)", text)
    out = text[: m.start()] if m else text
    return out if len(out) <= width else out[: width - 1].rstrip() + "…"


def _comment_head(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return _first_sentence(" ".join(lines))


def _options(group: str) -> list[tuple[str, str]]:
    if group == "scenario":
        import yaml

        from twin.scenario import SCENARIO_DIR

        out = []
        for path in sorted(SCENARIO_DIR.glob("*.yaml")):
            data = yaml.safe_load(path.read_text()) or {}
            out.append((path.stem, _first_sentence(str(data.get("description", "")))))
        return out
    return [(p.stem, _comment_head(p)) for p in sorted((CONFIG_DIR / group).glob("*.yaml"))]


def _simbench_pattern() -> str:
    """``1-LV-{rural1,...}--{0,1,2}-{sw,no_sw}`` from the feeder module's code check."""
    from twin.grid.feeders import _SIMBENCH_LV_CODE

    pat = _SIMBENCH_LV_CODE.pattern.strip("^$")

    def expand(item: str) -> list[str]:
        m = re.fullmatch(r"(\w*)\[(\w+)\](\w*)", item)
        return [f"{m.group(1)}{c}{m.group(3)}" for c in m.group(2)] if m else [item]

    pat = re.sub(
        r"\(([^()]*)\)",
        lambda m: "{" + ",".join(x for i in m.group(1).split("|") for x in expand(i)) + "}",
        pat,
    )
    return re.sub(r"\[(\w+)\]", lambda m: "{" + ",".join(m.group(1)) + "}", pat)


def _feeders() -> list[tuple[str, str]]:
    from twin.grid.feeders import DEFAULT_FEEDER, KNOWN_FEEDERS

    rows = [(_simbench_pattern(), f"a SimBench LV code (default {DEFAULT_FEEDER})")]
    for name, make in KNOWN_FEEDERS.items():
        doc = (make.__doc__ or "").strip()
        rows.append((name, _first_sentence(doc) if doc else f"pandapower.networks.create_{name}()"))
    rows.append(("/path/to/net.json", "your own pandapower net (pandapower.to_json)"))
    return rows


def _type_name(tp: Any) -> str:
    text = tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))
    return text.replace("typing.", "").replace(" | None", "|null")


def _keys(schema: type, prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for f in fields(schema):
        if f.name in {"contract", "study", "name", "label", "run_name"}:
            continue
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if is_dataclass(default):
            rows += _keys(type(default), f"{prefix}{f.name}.")
            continue
        meta = f.metadata
        bits = [_type_name(f.type)]
        if isinstance(default, str | int | float | bool) or default is None:
            shown = (
                "null"
                if default is None
                else str(default).lower()
                if isinstance(default, bool)
                else str(default)
            )
            if not shown.startswith("${") and shown != "???":
                bits.append(f"= {shown}")
        if meta.get("choices"):
            bits.append("|".join(map(str, meta["choices"])))
        elif meta.get("low") is not None or meta.get("high") is not None:
            bits.append(f"{meta.get('low', '')}..{meta.get('high', '')}".replace("None", ""))
        rows.append((f"{prefix}{f.name}", f"{meta.get('help', '')}  [{', '.join(bits)}]"))
    return rows


def _section(title: str, rows: list[tuple[str, str]]) -> list[str]:
    width = min(max((len(k) for k, _ in rows), default=0), 34)
    out = [f"== {title} =="]
    for key, text in rows:
        if len(key) > width:  # one line still: the key, then its text
            out.append(f"  {key}  {text}")
        else:
            out.append(f"  {key:<{width}}  {text}")
    return [*out, ""]


def help_text(root: Any = None) -> str:
    """The body of ``twin --help`` (see the module docstring); ``root``: the composed config
    (its contract and study pick the extra key lists)."""
    import logging

    from twin.schema import CONTRACT_SCHEMAS, STUDY_SCHEMAS, TwinConfig

    # importing pandapower (the feeder list) logs optional-import notes at INFO; the run's own
    # logging config silences them, the help has none of its own
    logging.getLogger("pandapower").setLevel(logging.WARNING)
    lines: list[str] = []
    lines += _section("Feeders (grid.name=...)", _feeders())
    titles = {
        "grid": "Feeder configs (grid=...)",
        "scenario": "Scenarios (scenario=..., or scenario.name=/path/to/file.yaml)",
        "contract": "Contracts (contract=...)",
        "tariff": "Tariffs (tariff=...)",
        "study": "Studies (study=...)",
        "sim": "Periods (sim=...)",
        "weather": "Weather (weather=...)",
    }
    for group in GROUPS:
        lines += _section(titles[group], _options(group))
    lines += _section("Keys (key=value)", _keys(TwinConfig))
    for group, schemas in (("contract", CONTRACT_SCHEMAS), ("study", STUDY_SCHEMAS)):
        try:
            name = str(root[group]["name"]) if root is not None else None
        except Exception:  # noqa: BLE001 - help must print whatever the config holds
            name = None
        if name in schemas:
            rows = _keys(schemas[name], f"{group}.")
            if rows:
                lines += _section(f"Keys of {group}={name} ({group}.key=value)", rows)
    lines.append(
        "Other contracts' and studies' keys: twin contract=<name> --help. "
        "The composed config: twin --cfg job."
    )
    return "\n".join(lines).replace("$", "$$")  # the text goes through string.Template


def _resolve(*, _root_: Any = None) -> str:
    return help_text(_root_)


OmegaConf.register_new_resolver("twin_help", _resolve, replace=True)
