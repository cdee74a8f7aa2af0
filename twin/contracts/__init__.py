"""Contract kinds, all behind :class:`~twin.contracts.base.Contract`.

Adding a contract kind: a module here with a ``Contract`` subclass, an entry in ``REGISTRY``,
and a file in ``twin/configs/contract/``. Nothing else changes.
"""

from __future__ import annotations

from typing import Any

from twin.contracts.base import Contract
from twin.contracts.firm import FirmContract
from twin.contracts.nonfirm import NonFirmContract
from twin.contracts.performance import PerformanceContract
from twin.contracts.tariff_hems import TariffHemsContract
from twin.errors import TwinError

REGISTRY: dict[str, type[Contract]] = {
    "firm": FirmContract,
    "nonfirm": NonFirmContract,
    "performance": PerformanceContract,
    # one cost-minimising HEMS, parametrised by the tariff it plans against
    "tou": TariffHemsContract,
    "dynamic": TariffHemsContract,
    "capacity": TariffHemsContract,
    # real tariff designs (issue 18): the ACM proposal, an hourly grid tariff, Flanders
    "tou_acm": TariffHemsContract,
    "tou_hourly": TariffHemsContract,
    "capacity_flanders": TariffHemsContract,
}


def make_contract(cfg: Any) -> Contract:
    """Build the contract named by ``cfg.name`` from its config group entry."""
    name = cfg.get("name") if hasattr(cfg, "get") else None
    if name not in REGISTRY:
        raise TwinError(
            f"contract {name!r} is unknown: use contract=one of {', '.join(sorted(REGISTRY))}"
        )
    return REGISTRY[name].from_config(cfg)


__all__ = ["Contract", "REGISTRY", "make_contract"]
