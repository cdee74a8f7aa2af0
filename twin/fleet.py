"""The households behind a feeder as data: :class:`Fleet`, per-household device parameters.

Core data (no physics, no sampling): the sampler (:mod:`twin.population`) fills it, the
physics (:mod:`twin.devices`), the optimiser and the contracts read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cached_property

import numpy as np

from twin.timegrid import DT_H

__all__ = [
    "PHASE_DEVICES",
    "RESPONSE_AUTO",
    "RESPONSE_MANUAL",
    "RESPONSE_NONE",
    "RESPONSE_TIMER",
    "RESPONSE_TYPES",
    "THREE_PHASE",
    "Fleet",
    "HeatPumpModel",
    "HotWaterModel",
    "PvModel",
    "phase_share",
]

#: Phase code of a three-phase connection or device (its power split equally over a, b, c);
#: 0, 1, 2 are the phases a, b, c of a single-phase one.
THREE_PHASE = -1
#: The parts of a household's load that sit on a phase of their own (``Fleet.phase_<part>``).
PHASE_DEVICES = ("base", "hp", "ev", "pv", "bat")

#: How a household responds to a tariff (``Fleet.response``; twin/contracts/tariff_hems.py):
#: its code is its position here. ``none``: as under a firm connection; ``manual``: shifts
#: its EV's charging by hand on some days; ``timer``: the charger starts at a set clock time
#: and the thermostat sets back in the dear block; ``full_automation``: a HEMS minimises the
#: bill.
RESPONSE_TYPES = ("none", "manual", "timer", "full_automation")
RESPONSE_NONE, RESPONSE_MANUAL, RESPONSE_TIMER, RESPONSE_AUTO = range(4)


def response_codes(
    position: np.ndarray, automation: float, timer: float, manual: float
) -> np.ndarray:
    """``(n,)`` response codes of households at ``position`` (0 .. n-1, a random ranking):
    the first ``round(automation n)`` are fully automated, then timers, then manual
    responders (cumulative rounding, so a larger automation share only turns the next ranked
    households automated), the rest do not respond."""
    pos = np.asarray(position)
    n = len(pos)
    b1 = int(round(automation * n))
    b2 = max(int(round((automation + timer) * n)), b1)
    b3 = max(int(round((automation + timer + manual) * n)), b2)
    out = np.full(n, RESPONSE_NONE, dtype=np.int8)
    out[pos < b3] = RESPONSE_MANUAL
    out[pos < b2] = RESPONSE_TIMER
    out[pos < b1] = RESPONSE_AUTO
    return out


def phase_share(phase: np.ndarray) -> np.ndarray:
    """``(n, 3)`` share of each element's power on phases a, b, c: 1/3 each for
    :data:`THREE_PHASE`, all of it on one phase otherwise."""
    ph = np.asarray(phase, dtype=np.int64)
    return np.where(ph[:, None] < 0, 1.0 / 3.0, (ph[:, None] == np.arange(3)).astype(float))


@dataclass(frozen=True)
class HeatPumpModel:
    """What the scenario says of every heat pump (``heat_pump.*``; twin.devices.heatpump):
    the field COP's defrost, cycling and field factors, the minimum modulation, standby, the
    hot-water flow offset, and the hybrids' boiler and gas price."""

    defrost_max_loss: float = 0.12
    min_modulation: float = 0.3
    cycling_cd: float = 0.9
    capacity_slope_per_k: float = 0.025
    dhw_flow_offset_k: float = 5.0
    standby_kw: float = 0.010
    field_cop_factor: float = 0.80
    boiler_eta: float = 0.9
    gas_eur_per_kwh: float = 0.14


@dataclass(frozen=True)
class HotWaterModel:
    """What the scenario says of every hot-water tank and draw (``hot_water.*``;
    twin.devices.dhw): usable, cold-water and room temperature, the draws' day-to-day spread."""

    t_usable_c: float = 45.0
    t_cold_c: float = 10.0
    t_room_c: float = 18.0
    day_volume_sigma: float = 0.3


@dataclass(frozen=True)
class PvModel:
    """What the scenario says of every PV system (``pv.*``; twin.devices.pv)."""

    system_loss: float = 0.10
    gamma_pdc_per_k: float = -0.0037
    cell_u_c: float = 20.0
    albedo: float = 0.2


@dataclass
class Fleet:
    """Per-household parameters, each an array of length ``n`` (and, for what is the same for
    every household, the scenario's device models ``hp_model``, ``dhw_model``, ``pv_model``).
    """

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
    # household size (persons, 5 = five or more; twin.inputs draws it with the base load)
    persons: np.ndarray
    # heat pumps as measured (twin.devices.heatpump): a hybrid's heat pump runs at or above its
    # bivalence point (-inf for all-electric) and, with the price switch, while it is cheaper
    hp_t_bivalent_c: np.ndarray
    hp_price_switch: np.ndarray
    # hot water (twin.devices.dhw): a tank per all-electric heat-pump household (volume 0 where
    # there is none); litres at 60 °C a person draws per day (drawn for everyone)
    has_tank: np.ndarray
    tank_volume_l: np.ndarray
    tank_ua_kw_per_k: np.ndarray
    tank_t_set_c: np.ndarray
    tank_hysteresis_k: np.ndarray
    tank_t_max_c: np.ndarray
    tank_element_kw: np.ndarray
    dhw_litres_per_person_day: np.ndarray
    # PV roofs (twin.devices.pv Roofs): up to two planes, share2 of the kWp on the second
    pv_tilt_deg: np.ndarray
    pv_azimuth_deg: np.ndarray
    pv_tilt2_deg: np.ndarray
    pv_azimuth2_deg: np.ndarray
    pv_share2: np.ndarray
    pv_dc_ac_ratio: np.ndarray
    # vehicle-to-grid: bidirectional chargers (discharge power 0 where unidirectional), the
    # energy V2G always leaves in the battery, the battery wear per kWh discharged
    ev_bidirectional: np.ndarray
    ev_p_dis_max_kw: np.ndarray
    ev_v2g_reserve_kwh: np.ndarray
    ev_wear_eur_per_kwh: np.ndarray
    # the scenario's device models (the same for every household)
    hp_model: HeatPumpModel = field(default_factory=HeatPumpModel)
    dhw_model: HotWaterModel = field(default_factory=HotWaterModel)
    pv_model: PvModel = field(default_factory=PvModel)
    # phases (twin.population.draw_phases): THREE_PHASE (-1) or 0/1/2 for phase a/b/c, per
    # household, drawn also where the device is absent (a larger adoption keeps the phases);
    # None for a fleet built without them (then every load is balanced)
    phase_connection: np.ndarray | None = field(default=None)  # the connection itself
    phase_base: np.ndarray | None = field(default=None)  # the household's own base load
    phase_hp: np.ndarray | None = field(default=None)  # heat pump
    phase_ev: np.ndarray | None = field(default=None)  # EV charger (3.7 kW: 1, 11 kW: 3)
    phase_pv: np.ndarray | None = field(default=None)  # PV inverter
    phase_bat: np.ndarray | None = field(default=None)  # battery inverter
    # tariff response (twin.population.draw_responses; RESPONSE_TYPES codes), None for a
    # fleet built without it (then every household with a device is fully automated): the
    # household's type, its place in the random ranking the types are assigned by, the
    # timer's start after the cheap block begins (h), the thermostat's setback in the dear
    # block (K), the share of days a manual responder shifts and its habitual delay (h)
    response: np.ndarray | None = field(default=None)
    response_position: np.ndarray | None = field(default=None)
    timer_delay_h: np.ndarray | None = field(default=None)
    timer_setback_k: np.ndarray | None = field(default=None)
    manual_shift_share: np.ndarray | None = field(default=None)
    manual_delay_h: np.ndarray | None = field(default=None)

    @property
    def has_phases(self) -> bool:
        """True if the households' phases were drawn."""
        return self.phase_connection is not None

    def phase_shares(self) -> dict[str, np.ndarray]:
        """``{part: (n, 3)}`` share of each part's power on phases a, b, c
        (:data:`PHASE_DEVICES`); three-phase everywhere for a fleet without phases."""
        out = {}
        for part in PHASE_DEVICES:
            ph = getattr(self, f"phase_{part}")
            out[part] = phase_share(np.full(self.n, THREE_PHASE) if ph is None else ph)
        return out

    def response_or_auto(self) -> np.ndarray:
        """``(n,)`` response codes; every household fully automated without them."""
        if self.response is None:
            return np.full(self.n, RESPONSE_AUTO, dtype=np.int8)
        return self.response

    @property
    def has_v2g(self) -> np.ndarray:
        """``(n,)`` households whose EV can discharge (a bidirectional charger)."""
        return self.has_ev & self.ev_bidirectional & (self.ev_p_dis_max_kw > 0)

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
