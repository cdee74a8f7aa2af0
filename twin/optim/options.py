"""Settings of the optimisation models that do not need Pyomo: objective weights, solver options.

Objective priorities (:class:`Weights`, all per kWh or per K·h so they do not depend on the
period length), from the most to the least important:

0. the daily swing of the indoor temperature (``swing_kh``, per K·h outside the day's
   window; only with the swing rule): a service level, so it ranks above everything else and
   is only exceeded where the devices physically cannot keep it (e.g. a day already broken);
1. feeder limits: exceeding a transformer/cable limit is the last resort — first the largest
   exceedance over the horizon (``over_kw``, what protection and ageing see), then the energy
   above the limit (``over_kwh``); the service levels are bounds that are only relaxed where
   the devices physically cannot meet them (see :mod:`twin.optim.devices`), i.e. they rank
   above the feeder limits;
2. a household's band (``band_excess_kwh``, HEMS only): use more than the DSO allocated
   only to keep a service level;
3. the peak (``peak_kw``): the largest coincident feeder load over the horizon, not below
   the peak already realised (which is sunk capacity);
4. comfort preference (``cold_kh``): stay at the setpoint unless the grid needs otherwise;
5. energy terms: boiler gas (``gas_kwh``, per kWh of heat: high enough that a hybrid switches
   to its boiler only for a short, sharp peak — at 0.05 the DSO turns hybrids into gas
   heating whenever that flattens the peak: on the default winter week about 12 % lower peak
   for three times the gas), heat pump electricity, battery cycling, pre-heating above the
   setpoint, and small rewards for a charged EV and battery (so they charge when capacity is
   free rather than at the last moment; this also breaks ties).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["SolverOptions", "Weights"]


@dataclass(frozen=True)
class Weights:
    """Objective weights (priorities, not prices); see the module docstring."""

    over_kw: float = 1e4
    over_kwh: float = 100.0
    band_excess_kwh: float = 1e3
    peak_kw: float = 10.0
    cold_kh: float = 0.5
    warm_kh: float = 0.01
    hp_kwh: float = 0.01
    gas_kwh: float = 0.5
    bat_cycle_kwh: float = 0.02
    ev_soc_kwh_h: float = 0.002
    bat_soc_kwh_h: float = 0.0005
    alloc_kwh: float = 0.01
    swing_kh: float = 1e5

    @classmethod
    def from_config(cls, cfg: Any) -> Weights:
        names = {f.name for f in fields(cls)}
        given = dict(cfg or {})
        unknown = set(given) - names
        if unknown:
            raise ValueError(f"unknown objective weight(s) {sorted(unknown)}: use {sorted(names)}")
        return cls(**{k: float(v) for k, v in given.items()})


@dataclass(frozen=True)
class SolverOptions:
    """HiGHS settings of a persistent LP.

    Attributes
    ----------
    time_limit_s : float
        Per solve; a solve that hits it counts as failed (the caller falls back).
    threads : int
        HiGHS threads.
    mirror_params : bool
        Also write pushed values into the Pyomo Params (slower; for inspection).
    simplex_strategy : int
        HiGHS ``simplex_strategy`` (1 = dual simplex, the best for warm re-solves).
    extra : dict
        Further HiGHS options, passed as they are.
    """

    time_limit_s: float = 60.0
    threads: int = 1
    mirror_params: bool = False
    simplex_strategy: int = 1
    extra: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_config(cls, cfg: Any) -> SolverOptions:
        """From the ``solver:`` config group (missing keys keep their defaults)."""
        get = cfg.get if hasattr(cfg, "get") else (lambda k, d=None: d)
        extra = get("highs_options", None) or {}
        return cls(
            time_limit_s=float(get("time_limit_s", 60.0)),
            threads=int(get("threads", 1)),
            mirror_params=bool(get("mirror_params", False)),
            simplex_strategy=int(get("simplex_strategy", 1)),
            extra=tuple(dict(extra).items()),
        )
