"""Scenario files: adoption shares and device parameter ranges, each number with its source.

A scenario lives in ``twin/scenarios/<name>.yaml``. Every parameter is a mapping with either
``value`` (one number) or ``range`` ([low, high], sampled uniformly per household) and a
``source`` string. ``extends: <other scenario>`` takes every parameter of the other scenario
that the file does not set itself (so shared device and dwelling numbers stand in one place).
``SCHEMA`` below lists every section and field with the bounds a value must respect; a
missing, out-of-range or unknown field, or an unknown section, gives a one-line :class:`~twin.errors.TwinError` naming it (with the nearest known name; a
field that was retired, :data:`RETIRED`, says what replaced it), in the file that has it, so
a typo (``adoptoin:``) never silently falls back to the parent's numbers.

Sections: ``adoption`` (shares, incl. bidirectional chargers among EVs), ``dwelling``,
``heat_pump`` (sizing, the field COP's defrost/cycling/field factors, minimum modulation,
hybrids' bivalence point and price switch), ``ev`` (incl. V2G), ``pv`` (the roof mix and the
pvlib model's losses, the TRY2010 irradiance scale), ``battery``, ``base_load`` (household
sizes and annual energy, the generator's day-to-day spreads), ``hot_water`` (draws and
tanks) and ``response`` (how households respond to a tariff: full automation, timers, manual
response, none; the timers' and manual responders' habits). A boolean option is a number 0 or 1 (``heat_pump.price_switch``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from twin.errors import TwinError

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"  # package data (ships in the wheel)

# section -> field -> (lowest allowed, highest allowed)
SCHEMA: dict[str, dict[str, tuple[float, float]]] = {
    "adoption": {
        "heat_pump_all_electric": (0.0, 1.0),
        "heat_pump_hybrid": (0.0, 1.0),
        "ev": (0.0, 1.0),
        "pv": (0.0, 1.0),
        "battery_given_pv": (0.0, 1.0),
        "ev_bidirectional_given_ev": (0.0, 1.0),
        "unregistered_given_adopter": (0.0, 1.0),
    },
    "dwelling": {
        "floor_area_m2": (20.0, 1000.0),
        "design_heat_load_w_m2": (5.0, 200.0),
        "design_heat_load_w_m2_all_electric": (5.0, 200.0),
        "design_heat_load_w_m2_hybrid": (5.0, 200.0),
        "heat_capacity_kwh_per_k_m2": (0.01, 1.0),
        "solar_aperture_m2_per_m2": (0.0, 0.3),
        "internal_gains_kw": (0.0, 2.0),
        "setpoint_c": (10.0, 26.0),
        "design_outdoor_c": (-30.0, 5.0),
        "single_phase_connection_share": (0.0, 1.0),
    },
    "heat_pump": {
        "sizing_all_electric": (0.3, 3.0),
        "sizing_hybrid": (0.1, 3.0),
        "dhw_allowance_kw_per_person": (0.0, 2.0),
        "flow_temp_design_c": (25.0, 75.0),
        "single_phase_share_all_electric": (0.0, 1.0),
        "single_phase_share_hybrid": (0.0, 1.0),
        "defrost_max_loss": (0.0, 0.5),
        "min_modulation": (0.05, 1.0),
        "cycling_cd": (0.0, 1.0),
        "capacity_slope_per_k": (0.0, 0.1),
        "dhw_flow_offset_k": (0.0, 20.0),
        "standby_kw": (0.0, 0.2),
        "field_cop_factor": (0.3, 1.2),
        "boiler_eta": (0.5, 1.1),
        "t_bivalent_c": (-30.0, 15.0),
        "price_switch": (0.0, 1.0),
        "gas_eur_per_kwh": (0.0, 2.0),
    },
    "ev": {
        "battery_kwh": (5.0, 250.0),
        "consumption_kwh_per_km": (0.08, 0.6),
        "annual_km": (0.0, 100_000.0),
        "share_11kw_charger": (0.0, 1.0),
        "departure_h": (0.0, 24.0),
        "arrival_h": (0.0, 24.0),
        "days_used_per_week": (0.0, 7.0),
        "v2g_discharge_efficiency": (0.5, 1.0),
        "v2g_reserve_share": (0.0, 1.0),
        "v2g_reserve_km": (0.0, 500.0),
        "v2g_wear_cost_eur_per_kwh": (0.0, 1.0),
    },
    "pv": {
        "kwp": (0.0, 50.0),
        "single_phase_inverter_share": (0.0, 1.0),
        "share_flat_roof": (0.0, 1.0),
        "share_flat_east_west": (0.0, 1.0),
        "pitched_tilt_deg": (0.0, 90.0),
        "pitched_azimuth_sd_deg": (0.0, 180.0),
        "flat_tilt_deg": (0.0, 90.0),
        "dc_ac_ratio": (0.5, 2.0),
        "system_loss": (0.0, 0.5),
        "gamma_pdc_per_k": (-0.01, 0.0),
        "cell_u_c": (5.0, 60.0),
        "albedo": (0.0, 1.0),
        "irradiance_scale": (0.5, 1.5),
    },
    "battery": {
        "capacity_kwh": (0.5, 100.0),
        "c_rate": (0.05, 5.0),
        "roundtrip_efficiency": (0.3, 1.0),
    },
    "base_load": {
        "mean_annual_kwh": (100.0, 20_000.0),
        "household_share_1": (0.0, 1.0),
        "household_share_2": (0.0, 1.0),
        "household_share_3": (0.0, 1.0),
        "household_share_4": (0.0, 1.0),
        "household_share_5_plus": (0.0, 1.0),
        "kwh_by_size_exponent": (0.0, 2.0),
        "annual_kwh_sigma": (0.0, 2.0),
        "base_fraction": (0.0, 1.0),
        "day_factor_sigma_common": (0.0, 1.0),
        "day_factor_sigma_household": (0.0, 1.0),
        "chronotype_shift_h_sd": (0.0, 6.0),
        "reactive_per_active": (0.0, 1.0),
    },
    "hot_water": {
        "litres_60c_per_person_day": (0.0, 200.0),
        "day_volume_sigma": (0.0, 2.0),
        "t_cold_c": (0.0, 30.0),
        "tank_volume_l_1_2_persons": (30.0, 1000.0),
        "tank_volume_l_3_4_persons": (30.0, 1000.0),
        "tank_volume_l_5_plus_persons": (30.0, 1000.0),
        "tank_loss_a_to_c": (0.0, 1.0),
        "t_set_c": (40.0, 75.0),
        "hysteresis_k": (1.0, 40.0),
        "t_usable_c": (30.0, 60.0),
        "t_max_c": (45.0, 80.0),
        "t_room_c": (0.0, 30.0),
        "element_kw": (0.0, 10.0),
    },
    # how households respond to a tariff (twin/contracts/tariff_hems.py): shares of all
    # households (the rest do not respond), and the timers' and manual responders' habits
    "response": {
        "full_automation": (0.0, 1.0),
        "timer": (0.0, 1.0),
        "manual": (0.0, 1.0),
        "timer_at_block_start": (0.0, 1.0),
        "timer_own_delay_h": (0.0, 12.0),
        "timer_setback_k": (0.0, 5.0),
        "manual_shift_share": (0.0, 1.0),
        "manual_delay_h": (0.0, 12.0),
    },
}
#: Fields that scenarios no longer take, and what replaced them (a one-line error says so).
RETIRED: dict[str, str] = {
    "pv.yield_factor": "PV is modelled per roof with pvlib (pv.irradiance_scale, pv.system_loss, "
    "the roof mix pv.share_flat_roof ...)",
}


#: ``base_load.household_share_<key>``: households of 1, 2, 3, 4 and 5 or more persons.
SIZE_SHARE_KEYS = ("1", "2", "3", "4", "5_plus")


#: ``response.<key>``: the shares of households by how they respond to a tariff (the rest:
#: no response), in the order the households are ranked into them (twin.population).
RESPONSE_SHARE_KEYS = ("full_automation", "timer", "manual")


#: Keys of a scenario file besides the SCHEMA sections.
META_KEYS = ("name", "year", "description", "extends")


def _hint(name: str, known: list[str]) -> str:
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"did you mean {near[0]}? " if near else ""


@dataclass(frozen=True)
class Param:
    """One scenario number: a fixed value or a uniform range, and where it comes from."""

    low: float
    high: float
    source: str

    @property
    def value(self) -> float:
        """The mean of the parameter (the value itself when fixed)."""
        return 0.5 * (self.low + self.high)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.low == self.high:
            return np.full(n, self.low)
        return rng.uniform(self.low, self.high, n)


@dataclass(frozen=True)
class Scenario:
    name: str
    year: int
    description: str
    params: dict[str, dict[str, Param]]
    path: Path

    def __getitem__(self, section: str) -> dict[str, Param]:
        return self.params[section]


def with_adoption(scenario: Scenario, source: str, **shares: float) -> Scenario:
    """A copy of ``scenario`` with some adoption shares replaced (e.g. by a study)."""
    unknown = set(shares) - set(SCHEMA["adoption"])
    if unknown:
        raise TwinError(
            f"unknown adoption field(s) {sorted(unknown)}: use {sorted(SCHEMA['adoption'])}"
        )
    adoption = dict(scenario.params["adoption"])
    for key, value in shares.items():
        adoption[key] = _parse_param(
            f"adoption.{key}", {"value": value, "source": source}, SCHEMA["adoption"][key]
        )
    return replace(scenario, params={**scenario.params, "adoption": adoption})


def resolve_scenario_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"} and p.is_file():
        return p
    candidate = SCENARIO_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    known = ", ".join(sorted(f.stem for f in SCENARIO_DIR.glob("*.yaml")))
    raise TwinError(
        f"scenario {name_or_path!r} not found: use one of {known} or a path to a .yaml file"
    )


def _parse_param(where: str, raw: Any, bounds: tuple[float, float]) -> Param:
    if not isinstance(raw, dict):
        raise TwinError(f"{where} must be a mapping with value or range and source, got {raw!r}")
    if not str(raw.get("source", "")).strip():
        raise TwinError(f"{where} has no source: add source: '<where the number comes from>'")
    if "value" in raw:
        low = high = raw["value"]
    elif "range" in raw and isinstance(raw["range"], list | tuple) and len(raw["range"]) == 2:
        low, high = raw["range"]
    else:
        raise TwinError(f"{where} needs value: <number> or range: [low, high]")
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError):
        raise TwinError(f"{where} is not numeric ({low!r}, {high!r}): give numbers") from None
    lo, hi = bounds
    if not (lo <= low <= high <= hi):
        raise TwinError(
            f"{where}={low:g}..{high:g} is out of range: it must lie within [{lo:g}, {hi:g}]"
        )
    return Param(low, high, str(raw["source"]))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", -1) + 1
        raise TwinError(
            f"scenario file {path} is not valid YAML (line {line}): fix its syntax"
        ) from None
    if not isinstance(data, dict):
        raise TwinError(
            f"scenario file {path} is empty or not a mapping: see twin/scenarios/nl-2040-central.yaml"
        )
    return data


def _check_names(path: Path, data: dict[str, Any]) -> None:
    """Every key of one scenario file is a known section or field (before parents are merged,
    so the message names the file with the typo)."""
    sections = sorted(SCHEMA)
    for key, value in data.items():
        key = str(key)
        if key in META_KEYS:
            continue
        if key not in SCHEMA:
            raise TwinError(
                f"scenario {path.name}: unknown section '{key}': {_hint(key, [*sections, *META_KEYS])}"
                f"the sections are {', '.join(sections)} (and {', '.join(META_KEYS)})"
            )
        if not isinstance(value, dict):
            raise TwinError(
                f"scenario {path.name}: section '{key}' is a {type(value).__name__}, not a "
                "mapping: give its fields as 'field: {value: <number>, source: <text>}'"
            )
        fields = sorted(SCHEMA[key])
        for name in map(str, value):
            if name not in SCHEMA[key]:
                raise TwinError(
                    f"scenario {path.name}: unknown field {key}.{name}: "
                    f"{_hint(name, fields)}the fields of {key} are {', '.join(fields)}"
                )


def _read_with_parents(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """The file's data with ``extends`` resolved (the child's parameters win)."""
    if path in seen:
        raise TwinError(
            f"scenario {path.name} extends itself (through {seen[-1].name}): break the cycle"
        )
    data = _read_yaml(path)
    _check_names(path, data)
    parent_name = data.pop("extends", None)
    if parent_name is None:
        return data
    parent = _read_with_parents(resolve_scenario_path(str(parent_name)), (*seen, path))
    merged = dict(parent)
    for key, value in data.items():
        if key in SCHEMA and isinstance(value, dict) and isinstance(parent.get(key), dict):
            merged[key] = {**parent[key], **value}
        else:
            merged[key] = value
    return merged


def load_scenario(name_or_path: str) -> Scenario:
    """Read and validate a scenario by name (``twin/scenarios/<name>.yaml``) or path."""
    path = resolve_scenario_path(name_or_path)
    data = _read_with_parents(path, seen=())
    params: dict[str, dict[str, Param]] = {}
    for section, fields in SCHEMA.items():
        raw_section = data.get(section)
        if not isinstance(raw_section, dict):
            raise TwinError(f"scenario {path.name}: section '{section}' is missing")
        params[section] = {}
        for field, bounds in fields.items():
            where = f"scenario {path.name}: {section}.{field}"
            if field not in raw_section:
                raise TwinError(f"{where} is missing: add it with value/range and source")
            params[section][field] = _parse_param(where, raw_section[field], bounds)
        unknown = set(raw_section) - set(fields)
        for name in sorted(unknown):
            if f"{section}.{name}" in RETIRED:
                raise TwinError(
                    f"scenario {path.name}: {section}.{name} is no longer used: "
                    f"{RETIRED[f'{section}.{name}']}; remove it"
                )
        if unknown:
            raise TwinError(
                f"scenario {path.name}: unknown field(s) {section}.{sorted(unknown)[0]}: remove or fix the name"
            )
    adoption = params["adoption"]
    hp_total = adoption["heat_pump_all_electric"].high + adoption["heat_pump_hybrid"].high
    if hp_total > 1.0 + 1e-9:
        raise TwinError(
            f"scenario {path.name}: adoption.heat_pump_all_electric + heat_pump_hybrid = {hp_total:g} > 1: lower them"
        )
    for section, lo_name, hi_name in (
        ("hot_water", "t_set_c", "t_max_c"),
        ("hot_water", "t_usable_c", "t_set_c"),
    ):
        lo, hi = params[section][lo_name], params[section][hi_name]
        if lo.high > hi.low + 1e-9:
            raise TwinError(
                f"scenario {path.name}: {section}.{lo_name} (up to {lo.high:g}) must not exceed "
                f"{section}.{hi_name} ({hi.low:g}): lower or raise one of them"
            )
    resp = params["response"]
    resp_total = sum(resp[k].high for k in RESPONSE_SHARE_KEYS)
    if resp_total > 1.0 + 1e-9:
        raise TwinError(
            f"scenario {path.name}: response.full_automation + timer + manual = {resp_total:g} > 1: "
            "lower them (the rest of the households do not respond)"
        )
    shares = sum(params["base_load"][f"household_share_{k}"].value for k in SIZE_SHARE_KEYS)
    if abs(shares - 1.0) > 0.01:
        raise TwinError(
            f"scenario {path.name}: base_load.household_share_* add up to {shares:g}, not 1: "
            "give the shares of 1, 2, 3, 4 and 5+ person households"
        )
    return Scenario(
        name=str(data.get("name", path.stem)),
        year=int(data.get("year", 0)),
        description=str(data.get("description", "")).strip(),
        params=params,
        path=path,
    )
