"""The households behind a feeder as data: :class:`Fleet`, per-household device parameters.

Core data (no physics, no sampling): the sampler (:mod:`twin.population`) fills it, the
physics (:mod:`twin.devices`), the optimiser and the contracts read it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from twin.timegrid import DT_H

__all__ = ["Fleet"]


@dataclass
class Fleet:
    """Per-household parameters, each an array of length ``n``."""

    n: int
    # adoption (bool)
    has_hp: np.ndarray
    hp_hybrid: np.ndarray
    has_ev: np.ndarray
    has_pv: np.ndarray
    has_battery: np.ndarray
    # dwelling
    floor_area_m2: np.ndarray
    ua_kw_per_k: np.ndarray
    r_k_per_kw: np.ndarray
    c_kwh_per_k: np.ndarray
    solar_aperture_m2: np.ndarray
    internal_gains_kw: np.ndarray
    setpoint_c: np.ndarray
    design_heat_load_kw: np.ndarray
    # heat pump (thermal capacity 0 where there is none)
    hp_q_max_kw: np.ndarray
    flow_design_c: np.ndarray
    # EV (capacity 0 where there is none)
    ev_capacity_kwh: np.ndarray
    ev_p_max_kw: np.ndarray
    ev_kwh_per_km: np.ndarray
    ev_departure_h: np.ndarray
    ev_arrival_h: np.ndarray
    ev_soc0_kwh: np.ndarray
    # PV and battery (0 where there is none)
    pv_kwp: np.ndarray
    bat_capacity_kwh: np.ndarray
    bat_p_max_kw: np.ndarray
    bat_eta: np.ndarray
    bat_soc0_kwh: np.ndarray

    @cached_property
    def a_step(self) -> np.ndarray:
        """One-step decay factor of the exact 1R1C discretisation, ``exp(-dt / (R C))``
        (:func:`twin.devices.thermal.decay_factor` over one 15-minute step)."""
        return np.exp(-DT_H / (self.r_k_per_kw * self.c_kwh_per_k))

    def subset(self, idx: np.ndarray) -> Fleet:
        """The households at positions ``idx`` (for small test instances)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values = {k: (v[idx] if isinstance(v, np.ndarray) else v) for k, v in values.items()}
        values["n"] = len(np.arange(self.n)[idx])
        return Fleet(**values)
