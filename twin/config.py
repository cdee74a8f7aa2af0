"""Configuration: compose the Hydra config from Python and validate it.

``compose`` gives notebooks the same configuration the ``twin`` command builds; ``validate``
checks the values a typo or a bad override can break, with one-line errors that name the key.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from twin.errors import TwinError
from twin.schema import CONTRACT_SCHEMAS, STUDY_SCHEMAS, TwinConfig, bounds_of, register

register()  # the structured configs Hydra composes against (twin/schema.py)

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # package data (ships in the wheel)


def compose(overrides: list[str] | None = None, config_name: str = "config") -> DictConfig:
    """Compose the configuration as ``twin <overrides>`` would, without running anything.

    Example::

        cfg = compose(["sim.days=1", "contract=firm", "seed=3"])
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = hydra_compose(config_name=config_name, overrides=list(overrides or []))
    # the run folder's ${now:...} and hydra keys are the CLI's business: drop them here
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    return cfg


def _num(x: Any) -> str:
    """A bound or value as people type it: whole numbers without exponent or ``.0``."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:g}" if isinstance(x, float) else str(x)


def _value_error(key: str, value: Any, meta: dict[str, Any]) -> TwinError | None:
    low, high, choices = meta.get("low"), meta.get("high"), meta.get("choices")
    if choices is not None:
        if value not in choices:
            return TwinError(
                f"{key}={value!r} is invalid: use one of {', '.join(map(str, choices))}"
            )
        return None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return TwinError(f"{key}={value!r} is invalid: give a number")
    if (low is not None and value < low) or (high is not None and value > high):
        return TwinError(
            f"{key}={_num(value)} is out of range: give a number from {_num(low)} to {_num(high)}"
        )
    return None


def _check(cfg: DictConfig, schema: type, prefix: str) -> None:
    for key, meta in bounds_of(schema, prefix):
        value = OmegaConf.select(cfg, key, default="__missing__")
        if value == "__missing__":
            raise TwinError(f"config key '{key}' is missing: add it (see twin/configs/config.yaml)")
        err = _value_error(key, value, meta)
        if err is not None:
            raise err


def _unknown_top_level(cfg: DictConfig) -> None:
    import difflib

    known = {f.name for f in fields(TwinConfig)} | {"hydra"}
    for k in cfg:
        if k not in known:
            near = difflib.get_close_matches(str(k), sorted(known), n=1)
            hint = f"did you mean {near[0]}?" if near else f"known keys: {', '.join(sorted(known))}"
            raise TwinError(f"config key '{k}' is not a twin key: {hint}")


def validate(cfg: DictConfig) -> None:
    """Raise :class:`TwinError` (one line) on the first invalid value: every bound the schema
    (:mod:`twin.schema`) declares, for the config and its contract and study."""
    _unknown_top_level(cfg)
    _check(cfg, TwinConfig, "")
    for group, schemas in (("contract", CONTRACT_SCHEMAS), ("study", STUDY_SCHEMAS)):
        name = OmegaConf.select(cfg, f"{group}.name")
        if name in schemas:
            _check(cfg, schemas[name], f"{group}.")
