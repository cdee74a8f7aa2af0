"""Configuration: compose the Hydra config from Python and validate it.

``compose`` gives notebooks the same configuration the ``twin`` command builds; ``validate``
checks the values a typo or a bad override can break, with one-line errors that name the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from twin.errors import TwinError

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


def _require(cfg: DictConfig, key: str) -> Any:
    value = OmegaConf.select(cfg, key, default="__missing__")
    if value == "__missing__":
        raise TwinError(f"config key '{key}' is missing: add it (see twin/configs/config.yaml)")
    return value


def _number(cfg: DictConfig, key: str, low: float, high: float, integer: bool = False) -> None:
    value = _require(cfg, key)
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not low <= value <= high:
        what = "a whole number" if integer else "a number"
        raise TwinError(f"{key}={value!r} is invalid: give {what} from {low:g} to {high:g}")


def validate(cfg: DictConfig) -> None:
    """Raise :class:`TwinError` (one line) on the first invalid value."""
    _number(cfg, "seed", 0, 2**32 - 1, integer=True)
    _number(cfg, "sim.days", 1, 365, integer=True)
    _require(cfg, "sim.start")
    _number(cfg, "sim.warmup_days", 0, 14, integer=True)
    _require(cfg, "grid.name")
    _require(cfg, "scenario.name")
    _require(cfg, "contract.name")
    _number(cfg, "service.comfort_band_k", 0.0, 10.0)
    _number(cfg, "service.ev_range_km", 0.0, 1000.0)
    _number(cfg, "service.ev_deadline_h", 0.0, 24.0)
