"""Load an LV feeder: a pandapower net plus one year of 15-minute load profiles.

A feeder is selected by a *spec* string:

* a SimBench LV code, e.g. ``"1-LV-urban6--0-sw"`` (the default, :data:`DEFAULT_FEEDER`),
  ``"1-LV-semiurb5--0-sw"``, ``"1-LV-rural1--0-sw"``; the pure LV codes of ``simbench`` 1.6
  are ``1-LV-{rural1,rural2,rural3,semiurb4,semiurb5,urban6}--{0,1,2}-{sw,no_sw}``;
* a short name from :data:`KNOWN_FEEDERS` for a network of ``pandapower.networks``:
  ``ieee_european_lv`` (the IEEE European LV test feeder: its 55 single-phase loads become
  ``net.load`` rows at the same bus that keep their phase in a ``phase`` column),
  ``kerber_landnetz_freileitung_1``,
  ``kerber_landnetz_freileitung_2``, ``kerber_landnetz_kabel_1``, ``kerber_landnetz_kabel_2``,
  ``kerber_dorfnetz``, ``kerber_vorstadtnetz_kabel_1``, ``kerber_vorstadtnetz_kabel_2``;
* one LV feeder of a SimBench MV+LV region, ``<region code>:<feeder>``, e.g.
  ``"1-MVLV-semiurb-all-0-sw:LV1.201"`` (:mod:`twin.grid.regions`; ``twin study=region``
  runs every feeder of a region);
* a path to a pandapower JSON file (``pandapower.to_json``).

Which loads are households
--------------------------
* SimBench: in-service loads whose ``profile`` starts with ``"H0"`` (one household per load). Other
  loads (commercial ``G*``, and in the future scenarios heat pumps / charging points) stay as
  non-household loads with their own SimBench profile.
* ``pandapower.networks`` feeders: every in-service load is one household.
* user JSON files (:data:`HOUSEHOLD_RULE`): a boolean ``household`` column on ``net.load``
  decides where it is given; otherwise a ``profile`` column (SimBench's convention: names
  starting with ``H`` are households, ``G*``/``L*`` commercial and agricultural); otherwise a
  load whose ``p_mw * scaling`` exceeds a household connection (3 x 25 A, 17.3 kW,
  :data:`HOUSEHOLD_MAX_KW`) is not a household. A user JSON file that still carries SimBench
  profiles (``net.profiles["load"]`` and a ``profile`` column) keeps them, like a SimBench net.

Profiles
--------
Every feeder has 35,040 steps (365 days x 96) starting 1 Jan 00:00 of the reference year 2025,
whose weekdays they follow. SimBench profiles are those of the 2016 leap year: each 2025 day
takes the 2016 day with the same weekday nearest to the same date
(:func:`twin.devices.baseload.remap_to_reference_year`; 1 Dec 2016 was a Thursday, 1 Dec 2025
a Monday). Loads without SimBench profiles get the BDEW H0 standard load profile with
dynamisation (``demandlib``, ``h0_dyn``, the 2025 calendar with Dutch public holidays) scaled
to 2,550 kWh/yr, the gross mean Dutch household use (CBS StatLine 81528NED, 2024), at
cos phi = 0.97 inductive. The BDEW profile is an *average* household: its peak already
includes the diversity of many households, so a run replaces the household columns by
households of their own (``grid.base_load=generated``, :func:`twin.inputs.build_inputs`).

A user's JSON file keeps its data: each load's annual energy from an ``annual_kwh`` column on
``net.load`` where given, otherwise its ``p_mw * scaling`` as the annual 15-minute peak the
profile is scaled to (:attr:`Feeder.load_annual_kwh`, :attr:`Feeder.load_peak_kw`);
non-household loads get the BDEW G0 (commercial) profile scaled the same way. Its existing PV
(in-service ``sgen`` rows, ``p_mw * scaling`` as kWp) is kept: at a household's bus it is that
household's PV (:attr:`Feeder.household_pv_kwp`, split equally among the households at the
bus), elsewhere it becomes feeder PV, a ``net.load`` row named ``PV (sgen <i>)`` whose
profile (negative) twin computes from the weather (:attr:`Feeder.pv_load_kwp`). What the
conversion decided is in :attr:`Feeder.notes` (said at the start of a run).

Static generators (also ``asymmetric_sgen``) and storage units are then set out of service:
twin models rooftop PV and batteries per household itself. Their rows stay in the net. The
built-in nets' static generators (SimBench's 2016 PV) are not carried over: the scenario
draws the PV.

Phases
------
A feeder may carry phase data (:attr:`Feeder.has_phase_data`; the run's ``grid.unbalanced``
then defaults to on):

* a ``phase`` column on ``net.load``: ``a``/``b``/``c`` (or 0/1/2) for a single-phase
  connection on that phase, ``abc`` (or -1) for a three-phase one, empty where unknown (twin
  draws the connection, :func:`twin.population.draw_phases`); normalised to integers
  (:data:`PHASE_CODES`) when the feeder is loaded, anything else is a :class:`FeederError`;
* in-service ``asymmetric_load`` rows: constant per-phase loads (their ``p_a_mw`` ...
  ``q_c_mvar`` at every step) that only the unbalanced power flow models. They are loaded
  with ``load_feeder(..., asymmetric=True)`` (what a run does unless ``grid.unbalanced=false``)
  and refused otherwise, like an unsupported element, before anything is simulated.

Checks when a feeder is loaded (:func:`check_net`, each a one-line :class:`FeederError`
naming the element and the fix; nothing is repaired silently):

* exactly one in-service ``ext_grid``; at least one in-service transformer (transformers in
  parallel between the same two buses are one station, not an error);
* no in-service element the power flow does not model (``twin.grid.elements.UNSUPPORTED``:
  ``gen``, ``ward``, ``impedance``, ``trafo3w``, ``dcline``, ...); storage and static
  generators are set out of service first (see above);
* in-service lines: ``length_km > 0``, ``r_ohm_per_km >= 0``, ``x_ohm_per_km >= 0`` and not
  both zero, ``max_i_ka > 0``, both buses at the same ``vn_kv``; transformers: ``sn_mva``,
  ``vk_percent``, ``vn_hv_kv``, ``vn_lv_kv`` > 0, ``0 <= vkr_percent <= vk_percent``, rated
  voltages within :data:`TRAFO_VN_RTOL` of their buses' ``vn_kv``; buses: ``vn_kv > 0``;
  every referenced bus exists;
* every in-service load is supplied from the ``ext_grid`` (no out-of-service line, isolated bus
  or open switch between them): loads cut off from the transformer would otherwise be counted
  as consumption that no power flow delivers.

A meshed feeder is not an error when loaded (the AC power flow handles meshes); contracts
that need a radial feeder call :func:`check_radial` (or :func:`is_radial`).

User JSON files and cache entries are read as data only (:mod:`twin.grid.netjson`: an
allowlist of pandapower's table classes, no module imported by name, no file read by path).
Converted feeders are cached (pandapower JSON plus an ``.npz`` of the profiles, never pickle)
under ``$TWIN_CACHE_DIR/feeders`` or, without that variable, ``~/.cache/twin/feeders``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import itertools
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandapower as pp
import pandas as pd
from pandapower.auxiliary import pandapowerNet

from twin.grid.elements import ASYMMETRIC_ONLY, UNSUPPORTED, UNSUPPORTED_FIX
from twin.grid.netjson import FeederError, read_net_json
from twin.grid.regions import feeder_net, is_region_code, split_feeder_spec, stations

log = logging.getLogger("twin")

__all__ = [
    "DEFAULT_FEEDER",
    "HOUSEHOLD_COS_PHI",
    "HOUSEHOLD_E_KWH_PER_YEAR",
    "KNOWN_FEEDERS",
    "N_STEPS_YEAR",
    "Feeder",
    "bdew_h0_profile_kw",
    "FeederError",
    "TRAFO_VN_RTOL",
    "check_net",
    "check_radial",
    "check_supplied",
    "default_cache_dir",
    "find_mesh",
    "is_radial",
    "load_feeder",
    "prepare_net",
]

DEFAULT_FEEDER = "1-LV-urban6--0-sw"
N_STEPS_YEAR = 365 * 96
#: Gross mean household electricity use in the Netherlands, 2024 (CBS StatLine 81528NED).
HOUSEHOLD_E_KWH_PER_YEAR = 2550.0
#: Power factor given to loads without a reactive profile (typical household, inductive).
HOUSEHOLD_COS_PHI = 0.97
#: Bump when the cached format or the conversion rules change.
CACHE_VERSION = 4
#: A household connection is at most 3 x 25 A (DOMAIN.md): about 17.3 kW. A user's load above
#: it (``p_mw * scaling``) is not a household (:data:`HOUSEHOLD_RULE`).
HOUSEHOLD_MAX_KW = 17.3
#: How the loads of a user's JSON file are told apart (the first that applies).
HOUSEHOLD_RULE = (
    "a boolean net.load 'household' column; else a 'profile' column (names starting with H "
    f"are households); else p_mw * scaling up to {HOUSEHOLD_MAX_KW:g} kW (one 3 x 25 A "
    "connection) is a household"
)
#: Orientation of feeder PV (sgen rows away from households): south, 35° tilt (assumption).
FEEDER_PV_TILT_DEG, FEEDER_PV_AZIMUTH_DEG = 35.0, 180.0
#: ``net.load.phase`` after normalisation: phase a, b, c; three-phase; unknown (drawn).
PHASE_CODES = {"a": 0, "b": 1, "c": 2, "abc": -1, "unknown": -2}
_PHASE_TEXT = {"a": 0, "b": 1, "c": 2, "abc": -1, "0": 0, "1": 1, "2": 2, "-1": -1, "3": -1}
#: Largest relative difference allowed between a transformer's rated voltage and its bus's
#: ``vn_kv``. Off-nominal ratings in practice are within 10 % (0.41/0.42/0.433 kV on a 0.4 kV
#: bus, 10.5/11 kV on 10 kV); a wrong voltage level is at least 50 % off (10 vs 20 kV, 0.23 vs
#: 0.4 kV, or hv and lv swapped).
TRAFO_VN_RTOL = 0.15
#: How many elements an error message names before it says "and N more" (one line).
_MAX_NAMED = 4

_SIMBENCH_LV_CODE = re.compile(r"^1-LV-(rural[123]|semiurb[45]|urban6)--[012]-(sw|no_sw)$")
_FEB29_START = 59 * 96  # first 15-min step of Feb 29 in a leap year


def _ieee_european_lv() -> pandapowerNet:
    import pandapower.networks as pn

    net = pn.ieee_european_lv_asymmetric("on_peak_566")
    asym = net.asymmetric_load
    phases = []
    for idx, row in asym.iterrows():
        p_ph = np.array([row["p_a_mw"], row["p_b_mw"], row["p_c_mw"]], dtype=float)
        phases.append(int(np.argmax(p_ph)) if np.count_nonzero(p_ph) == 1 else -1)
        pp.create_load(
            net,
            bus=int(row["bus"]),
            p_mw=float(row["p_a_mw"] + row["p_b_mw"] + row["p_c_mw"]),
            q_mvar=float(row["q_a_mvar"] + row["q_b_mvar"] + row["q_c_mvar"]),
            name=row["name"] if isinstance(row["name"], str) else f"asymmetric_load {idx}",
            in_service=bool(row["in_service"]),
        )
    net.asymmetric_load = net.asymmetric_load.iloc[0:0]
    net.load["phase"] = np.asarray(phases, dtype=np.int64)  # each load keeps its phase
    return net


def _networks_factory(func_name: str) -> Callable[[], pandapowerNet]:
    def make() -> pandapowerNet:
        import pandapower.networks as pn

        return getattr(pn, func_name)()

    return make


#: Short names of the ``pandapower.networks`` feeders and what builds them.
KNOWN_FEEDERS: dict[str, Callable[[], pandapowerNet]] = {
    "ieee_european_lv": _ieee_european_lv,
    **{
        name: _networks_factory(f"create_{name}")
        for name in (
            "kerber_landnetz_freileitung_1",
            "kerber_landnetz_freileitung_2",
            "kerber_landnetz_kabel_1",
            "kerber_landnetz_kabel_2",
            "kerber_dorfnetz",
            "kerber_vorstadtnetz_kabel_1",
            "kerber_vorstadtnetz_kabel_2",
        )
    },
}


@dataclass
class Feeder:
    """An LV feeder: the pandapower net of record and a year of load profiles.

    Attributes
    ----------
    name : str
        SimBench code, short name from :data:`KNOWN_FEEDERS`, or the JSON file's stem.
    net : pandapowerNet
        Model of record; static generators and storage units are out of service.
    household_load_idx : np.ndarray
        ``net.load`` index labels of residential loads, one household per load.
    load_p_kw : np.ndarray
        ``(35040, len(net.load))`` active power of every ``net.load`` row (in row order), kW,
        15-min means of a 365-day year starting Jan 1 00:00.
    load_q_kvar : np.ndarray
        Same shape, reactive power in kvar (positive = inductive consumption).
    """

    name: str
    net: pandapowerNet
    household_load_idx: np.ndarray
    load_p_kw: np.ndarray
    load_q_kvar: np.ndarray
    #: the run models the feeder per phase (``grid.unbalanced``; set by the run's inputs)
    unbalanced: bool = False
    #: ``simbench``, ``networks`` (pandapower.networks) or ``file`` (a user's JSON)
    kind: str = "simbench"
    #: ``(len(net.load),)`` annual energy each load keeps (NaN: none given)
    load_annual_kwh: np.ndarray | None = None
    #: ``(len(net.load),)`` annual 15-minute peak each load's profile is scaled to (NaN: none)
    load_peak_kw: np.ndarray | None = None
    #: ``(n_households,)`` existing PV of each household (kWp, 0: none) from the file's sgens
    household_pv_kwp: np.ndarray | None = None
    #: ``(len(net.load),)`` kWp of the feeder-PV load rows (0 for every other load)
    pv_load_kwp: np.ndarray | None = None
    #: what the conversion decided, one line each (said at the start of a run)
    notes: tuple[str, ...] = ()

    @property
    def load_phase(self) -> np.ndarray | None:
        """``(len(net.load),)`` phase of every load's connection from the feeder file
        (:data:`PHASE_CODES`: 0/1/2 single-phase, -1 three-phase, -2 unknown), or None."""
        if "phase" not in self.net.load.columns:
            return None
        return self.net.load["phase"].to_numpy(np.int64)

    @property
    def household_phase(self) -> np.ndarray | None:
        """``(n_households,)`` :attr:`load_phase` of the households, or None."""
        ph = self.load_phase
        return None if ph is None else ph[self.household_cols]

    @property
    def has_asymmetric_loads(self) -> bool:
        """True if the net has in-service ``asymmetric_load`` rows."""
        return _has_rows(self.net, "asymmetric_load")

    @property
    def has_phase_data(self) -> bool:
        """True if the feeder says which phase its loads are on (a ``phase`` column on
        ``net.load`` with a known phase, or in-service ``asymmetric_load`` rows)."""
        ph = self.load_phase
        known = ph is not None and bool((ph != PHASE_CODES["unknown"]).any())
        return known or self.has_asymmetric_loads

    @property
    def household_cols(self) -> np.ndarray:
        """Column positions (in ``load_p_kw``) of the household loads."""
        return self.net.load.index.get_indexer(self.household_load_idx)

    @property
    def n_households(self) -> int:
        """Number of households (residential loads)."""
        return len(self.household_load_idx)

    @property
    def has_simbench_profiles(self) -> bool:
        """True if the households' profiles are SimBench's own (``H0-*``)."""
        return (
            "profile" in self.net.load.columns
            and self.kind != "networks"
            and bool(self.net.load["profile"].astype(str).str.startswith("H0-").any())
        )


def default_cache_dir() -> Path:
    """Return ``$TWIN_CACHE_DIR/feeders`` or ``~/.cache/twin/feeders``."""
    root = os.environ.get("TWIN_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "twin"
    return base / "feeders"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _unknown(spec: str) -> FeederError:
    return FeederError(
        f"unknown grid '{spec}': use a SimBench LV code such as {DEFAULT_FEEDER}, one of "
        f"{', '.join(sorted(KNOWN_FEEDERS))}, or a path to a pandapower .json file"
    )


# ----------------------------------------------------------------------------------------------
# net preparation
# ----------------------------------------------------------------------------------------------


def _vector_group_from_shift(shift_degree: float) -> str:
    clock = round(float(shift_degree) / 30.0) % 12
    # an odd clock number needs a delta/wye pair, an even one a like pair
    return f"Dyn{clock}" if clock % 2 else f"Yyn{clock}"


def prepare_net(net: pandapowerNet) -> pandapowerNet:
    """Normalise a pandapower net in place for twin and return it.

    * transformers without ``vector_group`` get one consistent with ``shift_degree``
      (150 deg -> ``Dyn5``), which power-grid-model needs;
    * transformers without a tap changer get ``tap_pos = tap_neutral = 0``;
    * static generators and storage units are set out of service.
    """
    trafo = net.trafo
    if len(trafo):
        if "vector_group" not in trafo.columns:
            trafo["vector_group"] = None
        vg = trafo["vector_group"].astype(object)
        missing = vg.isna() | (vg.astype(str).str.strip() == "")
        trafo["vector_group"] = [
            _vector_group_from_shift(s) if m else v
            for v, s, m in zip(vg, trafo["shift_degree"].fillna(0.0), missing, strict=True)
        ]
        for col in ("tap_pos", "tap_neutral", "tap_min", "tap_max", "tap_step_percent"):
            if col not in trafo.columns:
                trafo[col] = np.nan
        no_tap = trafo["tap_pos"].isna() | trafo["tap_neutral"].isna()
        trafo.loc[no_tap, ["tap_pos", "tap_neutral", "tap_min", "tap_max"]] = 0.0
        trafo.loc[no_tap, "tap_step_percent"] = 0.0
        if "tap_side" not in trafo.columns:
            trafo["tap_side"] = "hv"
        trafo["tap_side"] = trafo["tap_side"].astype(object).where(trafo["tap_side"].notna(), "hv")
    if len(net.sgen):
        net.sgen["in_service"] = False
    for table in ("storage", "asymmetric_sgen"):
        if table in net and isinstance(net[table], pd.DataFrame) and len(net[table]):
            net[table]["in_service"] = False
    return net


def _has_rows(net: pandapowerNet, table: str) -> bool:
    """True if ``net[table]`` has an in-service row."""
    if table not in net or not isinstance(net[table], pd.DataFrame) or not len(net[table]):
        return False
    return bool(len(_in_service(net[table])))


def _normalise_phase(name: str, net: pandapowerNet) -> None:
    """``net.load.phase`` as integers (:data:`PHASE_CODES`); FeederError if unreadable."""
    if "phase" not in net.load.columns:
        return
    raw = net.load["phase"]
    codes = np.full(len(raw), PHASE_CODES["unknown"], dtype=np.int64)
    bad = []
    for k, v in enumerate(raw.to_numpy(object)):
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            continue
        text = str(v).strip().lower()
        if isinstance(v, int | float | np.number) and not isinstance(v, bool):
            text = f"{float(v):g}" if float(v) != int(float(v)) else str(int(float(v)))
        if text in _PHASE_TEXT:
            codes[k] = _PHASE_TEXT[text]
        elif text == "-2":
            continue
        else:
            bad.append(raw.index[k])
    if bad:
        raise FeederError(
            f"feeder '{name}': {_elements('load', net.load, bad)} has phase="
            f"{_one_line(raw.at[bad[0]])[:20]!r} (must be a, b, c, abc or empty): give the "
            "phase of its connection, abc for three-phase"
        )
    net.load["phase"] = codes


def _elements(table: str, df: pd.DataFrame, idx: pd.Index | np.ndarray) -> str:
    """``line 3 ('L3'), line 7 and 2 more``: the rows of a table, named for a message."""
    idx = list(idx)
    names = []
    for i in idx[:_MAX_NAMED]:
        label = df.at[i, "name"] if "name" in df.columns else None
        shown = f" ({_one_line(label)[:30]!r})" if isinstance(label, str) and label else ""
        names.append(f"{table} {i}{shown}")
    more = f" and {len(idx) - _MAX_NAMED} more" if len(idx) > _MAX_NAMED else ""
    return ", ".join(names) + more


def _in_service(df: pd.DataFrame) -> pd.DataFrame:
    if "in_service" not in df.columns:
        return df
    return df[df["in_service"].fillna(False).astype(bool)]


def _col(df: pd.DataFrame, col: str) -> pd.Series:
    """A numeric column (NaN where missing or not a number)."""
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index)
    return pd.to_numeric(df[col], errors="coerce").astype(float)


#: Fix suggested for in-service elements the power flow does not model.


def _check_supported(name: str, net: pandapowerNet, asymmetric: bool = False) -> None:
    # asymmetric_load rows: only the unbalanced power flow models them (asymmetric=True);
    # asymmetric_sgen rows are out of service (prepare_net)
    for el in UNSUPPORTED + (() if asymmetric else ASYMMETRIC_ONLY):
        if el not in net or not isinstance(net[el], pd.DataFrame) or not len(net[el]):
            continue
        rows = _in_service(net[el])
        if len(rows):
            fix = UNSUPPORTED_FIX.get(el, "model it with lines, transformers and loads")
            if el in ASYMMETRIC_ONLY:
                fix = f"run it unbalanced (grid.unbalanced=true), {fix}"
            raise FeederError(
                f"feeder '{name}': {_elements(el, net[el], rows.index)} in service, which "
                f"twin's power flow does not model: set in_service=False or {fix}"
            )


def _check_refs(name: str, net: pandapowerNet, table: str, cols: tuple[str, ...]) -> None:
    df = net[table]
    for col in cols:
        bad = df.index[~df[col].isin(net.bus.index)]
        if len(bad):
            raise FeederError(
                f"feeder '{name}': {_elements(table, df, bad)} refer(s) to a {col} that net.bus "
                f"lacks: give {table}.{col} the index of an existing bus"
            )


def _require(
    name: str, table: str, df: pd.DataFrame, col: str, ok: pd.Series, rule: str, fix: str
) -> None:
    """Raise naming the rows of ``df`` where ``ok`` is False and the first one's ``col``."""
    bad = ~ok.fillna(False).to_numpy(bool)
    if bad.any():
        rows = df.index[bad]
        value = df.at[rows[0], col] if col in df.columns else None
        if value is None or pd.isna(value):
            shown = "missing"
        elif isinstance(value, int | float | np.number) and not isinstance(value, bool):
            shown = f"{float(value):g}"
        else:
            shown = repr(_one_line(value)[:30])
        raise FeederError(
            f"feeder '{name}': {_elements(table, df, rows)} has {col}={shown} (must be {rule}): "
            f"{fix}"
        )


def check_net(net: pandapowerNet, name: str = "net", asymmetric: bool = False) -> None:
    """Check a prepared net before twin uses it (see the module docstring); raise FeederError.

    Loads cut off from the ``ext_grid`` are checked by :func:`check_supplied`;
    ``asymmetric`` accepts in-service ``asymmetric_load`` rows (unbalanced runs).
    """
    eg = _in_service(net.ext_grid)
    if len(eg) != 1:
        found = (
            "no" if not len(eg) else f"{len(eg)} ({_elements('ext_grid', net.ext_grid, eg.index)})"
        )
        raise FeederError(
            f"feeder '{name}' has {found} in-service ext_grid: twin needs exactly one, at the "
            "transformer's MV bus (pandapower create_ext_grid; set the others in_service=False)"
        )
    if not len(_in_service(net.trafo)):
        raise FeederError(
            f"feeder '{name}' has no in-service MV/LV transformer: twin models a feeder "
            "behind one transformer (pandapower create_transformer)"
        )
    _check_supported(name, net, asymmetric)
    for table, cols in (
        ("ext_grid", ("bus",)),
        ("load", ("bus",)),
        ("line", ("from_bus", "to_bus")),
        ("trafo", ("hv_bus", "lv_bus")),
        *((("asymmetric_load", ("bus",)),) if _has_rows(net, "asymmetric_load") else ()),
    ):
        _check_refs(name, net, table, cols)
    vn = _col(net.bus, "vn_kv")
    bus = _in_service(net.bus)
    _require(
        name, "bus", bus, "vn_kv", _col(bus, "vn_kv") > 0, "> 0", "give its nominal voltage in kV"
    )

    line = _in_service(net.line)
    r, x = _col(line, "r_ohm_per_km"), _col(line, "x_ohm_per_km")
    fix_z = (
        "correct the cable data (r and x of a cable are positive) or set the line out of service"
    )
    for col, ok, rule, fix in (
        ("length_km", _col(line, "length_km") > 0, "> 0", "give the line its length in km"),
        ("r_ohm_per_km", r >= 0, ">= 0", fix_z),
        ("x_ohm_per_km", x >= 0, ">= 0", fix_z),
        ("r_ohm_per_km", (r > 0) | (x > 0), "> 0 where x_ohm_per_km is 0: zero impedance", fix_z),
        ("max_i_ka", _col(line, "max_i_ka") > 0, "> 0", "give the line its rated current in kA"),
        ("parallel", _col(line, "parallel") >= 1, ">= 1", "set the number of parallel cables"),
    ):
        _require(name, "line", line, col, ok, rule, fix)
    vf = vn.reindex(line["from_bus"]).to_numpy()
    vt = vn.reindex(line["to_bus"]).to_numpy()
    same = pd.Series(np.isclose(vf, vt, rtol=1e-6), index=line.index)
    if not same.all():
        i = line.index[~same.to_numpy()][0]
        raise FeederError(
            f"feeder '{name}': {_elements('line', line, line.index[~same.to_numpy()])} joins "
            f"buses of different vn_kv (bus {line.at[i, 'from_bus']} at {vn[line.at[i, 'from_bus']]:g} "
            f"kV, bus {line.at[i, 'to_bus']} at {vn[line.at[i, 'to_bus']]:g} kV): a line joins "
            "buses of one voltage level: correct net.bus.vn_kv or connect them through a "
            "transformer"
        )

    trafo = _in_service(net.trafo)
    fix_t = "correct the transformer data (pandapower create_transformer_from_parameters)"
    vk, vkr = _col(trafo, "vk_percent"), _col(trafo, "vkr_percent")
    for col, ok, rule in (
        ("sn_mva", _col(trafo, "sn_mva") > 0, "> 0"),
        ("vk_percent", vk > 0, "> 0"),
        ("vkr_percent", (vkr >= 0) & (vkr <= vk), "within 0 ... vk_percent"),
        ("vn_hv_kv", _col(trafo, "vn_hv_kv") > 0, "> 0"),
        ("vn_lv_kv", _col(trafo, "vn_lv_kv") > 0, "> 0"),
        ("parallel", _col(trafo, "parallel") >= 1, ">= 1"),
    ):
        _require(name, "trafo", trafo, col, ok, rule, fix_t)
    for side, bus_col in (("hv", "hv_bus"), ("lv", "lv_bus")):
        rated = _col(trafo, f"vn_{side}_kv")
        at_bus = vn.reindex(trafo[bus_col]).to_numpy()
        off = np.abs(rated.to_numpy() / at_bus - 1) > TRAFO_VN_RTOL
        if off.any():
            i = trafo.index[off][0]
            raise FeederError(
                f"feeder '{name}': {_elements('trafo', trafo, trafo.index[off])} "
                f"has vn_{side}_kv={rated[i]:g} but its {bus_col} {trafo.at[i, bus_col]} has "
                f"vn_kv={vn[trafo.at[i, bus_col]]:g} (more than {TRAFO_VN_RTOL:.0%} apart): "
                f"connect the {side.upper()} side to a bus of its rated voltage (hv_bus/lv_bus "
                "swapped?) or correct the ratings"
            )


def check_supplied(net: pandapowerNet, name: str = "net") -> None:
    """Every in-service load must be supplied from the ext_grid; raise FeederError if not."""
    import pandapower.topology as top

    unsupplied = set(top.unsupplied_buses(net, respect_switches=True))
    unsupplied |= set(net.bus.index) - set(_in_service(net.bus).index)
    load = _in_service(net.load)
    cut = load.index[load["bus"].isin(unsupplied).to_numpy()]
    if len(cut):
        raise FeederError(
            f"feeder '{name}': {_elements('load', net.load, cut)} ({len(cut)} in all) are not "
            "supplied by the ext_grid (an out-of-service line or bus, or an open switch, cuts "
            "them off from the transformer): reconnect them, or set those loads "
            "in_service=False to leave them out"
        )


def _mesh_edges(net: pandapowerNet) -> list[tuple[int, int, str]]:
    """In-service, switched-in lines and transformers as (node, node, label).

    Buses joined by a closed bus-bus switch are one node (the switch has no impedance);
    transformers in parallel between the same two nodes count once (one station).
    """
    bus_ok = set(_in_service(net.bus).index)
    sw = net.switch if "switch" in net else pd.DataFrame()
    closed = sw["closed"].astype(bool) if len(sw) else pd.Series(dtype=bool)
    node: dict[int, int] = {}

    def find(v: int) -> int:
        node.setdefault(v, v)
        while node[v] != v:
            node[v] = node[node[v]]
            v = node[v]
        return v

    open_ends: set[tuple[str, int]] = set()
    if len(sw):
        for _, row in sw[(sw["et"] == "b") & closed].iterrows():
            a, b = int(row["bus"]), int(row["element"])
            if a in bus_ok and b in bus_ok:
                node[find(a)] = find(b)
        for _, row in sw[(sw["et"] != "b") & ~closed].iterrows():
            open_ends.add((str(row["et"]), int(row["element"])))

    edges: list[tuple[int, int, str]] = []
    for i, row in _in_service(net.line).iterrows():
        a, b = int(row["from_bus"]), int(row["to_bus"])
        if a in bus_ok and b in bus_ok and ("l", i) not in open_ends:
            edges.append((find(a), find(b), f"line {i}"))
    stations: set[frozenset[int]] = set()
    for i, row in _in_service(net.trafo).iterrows():
        a, b = int(row["hv_bus"]), int(row["lv_bus"])
        if a in bus_ok and b in bus_ok and ("t", i) not in open_ends:
            pair = frozenset((find(a), find(b)))
            if pair not in stations:
                stations.add(pair)
                edges.append((find(a), find(b), f"trafo {i}"))
    return edges


def find_mesh(net: pandapowerNet) -> list[str] | None:
    """The branches of one loop of the net (``["line 3", "line 7", "line 9"]``), or None if
    the net is radial. Buses joined by closed bus-bus switches are one node; transformers in
    parallel between the same two nodes are one station; two line rows between the same two
    buses are a loop (merge them into one with ``parallel=2``)."""
    import networkx as nx

    parent: dict[int, int] = {}

    def root(v: int) -> int:
        parent.setdefault(v, v)
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    forest = nx.Graph()
    for a, b, label in _mesh_edges(net):
        ra, rb = root(a), root(b)
        if ra == rb:
            path = nx.shortest_path(forest, a, b) if a != b else [a]
            return [forest.edges[u, v]["label"] for u, v in itertools.pairwise(path)] + [label]
        parent[ra] = rb
        forest.add_edge(a, b, label=label)
    return None


def is_radial(net: pandapowerNet) -> bool:
    """True if the in-service, switched-in net has no loop (parallel transformers between the
    same two buses count as one station)."""
    return find_mesh(net) is None


def check_radial(net: pandapowerNet, name: str = "net", needed_by: str = "this contract") -> None:
    """Raise FeederError (one line, naming the loop) if the net is meshed."""
    loop = find_mesh(net)
    if loop is not None:
        shown = ", ".join(loop[:6]) + (f" and {len(loop) - 6} more" if len(loop) > 6 else "")
        raise FeederError(
            f"feeder '{name}' is meshed (a loop through {shown}) but {needed_by} needs a radial "
            "feeder: open a switch in the loop (net.switch closed=False), set one of its lines "
            "out of service, or merge parallel lines into one with parallel=2"
        )


def _check_usable(
    name: str, net: pandapowerNet, household_load_idx: np.ndarray, asymmetric: bool = False
) -> None:
    check_net(net, name, asymmetric)
    check_supplied(net, name)
    if not len(household_load_idx):
        raise FeederError(
            f"feeder '{name}' has no in-service household load on a bus supplied by the "
            "ext_grid: add loads to its LV buses (pandapower create_load)"
        )


# ----------------------------------------------------------------------------------------------
# profiles
# ----------------------------------------------------------------------------------------------


def _drop_feb29(a: np.ndarray) -> np.ndarray:
    if a.shape[0] == N_STEPS_YEAR + 96:
        return np.delete(a, np.s_[_FEB29_START : _FEB29_START + 96], axis=0)
    if a.shape[0] != N_STEPS_YEAR:
        raise FeederError(
            f"profiles have {a.shape[0]} steps, expected {N_STEPS_YEAR} or "
            f"{N_STEPS_YEAR + 96} (15-min, one year): supply 15-min yearly profiles"
        )
    return a


def _to_reference_year(a: np.ndarray) -> np.ndarray:
    """SimBench's 2016 profiles (35,136 rows) on the reference year's weekdays; a 365-day
    profile as it is."""
    from twin.devices.baseload import remap_to_reference_year

    if a.shape[0] == N_STEPS_YEAR + 96:
        return remap_to_reference_year(a, 2016)
    return _drop_feb29(a)


def bdew_h0_profile_kw(e_kwh_per_year: float = HOUSEHOLD_E_KWH_PER_YEAR) -> np.ndarray:
    """BDEW H0 (dynamised) standard load profile, kW, 35,040 steps of the reference year 2025
    (its weekdays and Dutch public holidays), scaled to ``e_kwh_per_year``. Computed once per
    process."""
    return _bdew_profile_kw("h0_dyn", float(e_kwh_per_year)).copy()


@functools.lru_cache(maxsize=8)
def _bdew_profile_kw(name: str, e_kwh_per_year: float) -> np.ndarray:
    import warnings

    from demandlib import bdew

    from twin.devices.baseload import dutch_holidays
    from twin.timegrid import REFERENCE_YEAR

    holidays = {d: "holiday" for d in dutch_holidays(REFERENCE_YEAR)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slp = bdew.ElecSlp(REFERENCE_YEAR, holidays=holidays)
        p_kw = slp.get_scaled_power_profiles({name: e_kwh_per_year})[name]
    p = np.asarray(p_kw, dtype=float)[:N_STEPS_YEAR]
    return p * e_kwh_per_year / (p.sum() * 0.25)


@dataclass
class _Profiles:
    """Profiles of a feeder in compact form: load column j = profile[:, idx[j]] * scale[j],
    and what the conversion kept of a user's file."""

    profile_p: np.ndarray  # (35040, n_profiles) relative
    profile_q: np.ndarray
    load_profile_idx: np.ndarray  # (n_load,) int
    p_scale_kw: np.ndarray  # (n_load,)
    q_scale_kvar: np.ndarray
    household_load_idx: np.ndarray
    kind: np.ndarray = field(default_factory=lambda: np.array("simbench"))
    load_annual_kwh: np.ndarray | None = None  # (n_load,) NaN: none given
    load_peak_kw: np.ndarray | None = None  # (n_load,) NaN: none given
    household_pv_kwp: np.ndarray | None = None  # (n_households,)
    pv_load_kwp: np.ndarray | None = None  # (n_load,)
    notes: np.ndarray = field(default_factory=lambda: np.array([], dtype=str))

    def expand(self) -> tuple[np.ndarray, np.ndarray]:
        p = self.profile_p[:, self.load_profile_idx] * self.p_scale_kw
        q = self.profile_q[:, self.load_profile_idx] * self.q_scale_kvar
        return p, q


def _has_simbench_profiles(net: pandapowerNet) -> bool:
    prof = net.get("profiles") if hasattr(net, "get") else None
    return (
        isinstance(prof, dict)
        and isinstance(prof.get("load"), pd.DataFrame)
        and len(prof["load"]) > 0
        and "profile" in net.load.columns
    )


def _simbench_profiles(net: pandapowerNet) -> _Profiles:
    rel = net.profiles["load"]
    is_pv = net.load["name"].astype(str).str.startswith("PV (sgen").to_numpy()
    names = np.where(is_pv, "", net.load["profile"].astype(str).to_numpy())
    uniq = sorted(set(names) - {""})
    missing = [n for n in uniq if f"{n}_pload" not in rel.columns or f"{n}_qload" not in rel]
    if missing:
        raise FeederError(
            f"loads refer to profiles {missing} that net.profiles['load'] lacks: "
            "add them or remove the 'profile' column"
        )
    profile_p = _to_reference_year(
        np.column_stack([rel[f"{n}_pload"].to_numpy(float) for n in uniq])
    )
    profile_q = _to_reference_year(
        np.column_stack([rel[f"{n}_qload"].to_numpy(float) for n in uniq])
    )
    # feeder-PV rows (a user's sgens away from households): no profile here (the weather's)
    profile_p = np.column_stack([profile_p, np.zeros(len(profile_p))])
    profile_q = np.column_stack([profile_q, np.zeros(len(profile_q))])
    lookup = {n: i for i, n in enumerate(uniq)} | {"": len(uniq)}
    in_service = net.load["in_service"].astype(bool).to_numpy()
    households = net.load.index[np.char.startswith(names.astype(str), "H0") & in_service].to_numpy()
    return _Profiles(
        profile_p=profile_p,
        profile_q=profile_q,
        load_profile_idx=np.array([lookup[n] for n in names], dtype=np.int64),
        p_scale_kw=net.load["p_mw"].to_numpy(float) * 1e3 * net.load["scaling"].to_numpy(float),
        q_scale_kvar=net.load["q_mvar"].to_numpy(float) * 1e3 * net.load["scaling"].to_numpy(float),
        household_load_idx=households,
    )


def _h0_profiles(
    net: pandapowerNet,
    households: np.ndarray,
    annual_kwh: np.ndarray | None = None,
    peak_kw: np.ndarray | None = None,
) -> _Profiles:
    """BDEW H0 for the households, G0 for the other loads (0 for feeder-PV rows, whose profile
    comes from the weather), each scaled to its annual energy, else to its peak, else (H0)
    2,550 kWh."""
    h0 = bdew_h0_profile_kw(1.0)
    g0 = _bdew_profile_kw("g0", 1.0)
    n = len(net.load)
    is_h = net.load.index.isin(households)
    is_pv = net.load["name"].astype(str).str.startswith("PV (sgen").to_numpy()
    idx = np.where(is_h, 0, np.where(is_pv, 2, 1)).astype(np.int64)
    base = np.stack([h0, g0, np.zeros_like(h0)], axis=1)
    e = np.full(n, np.nan) if annual_kwh is None else np.asarray(annual_kwh, float)
    pk = np.full(n, np.nan) if peak_kw is None else np.asarray(peak_kw, float)
    peak_of = np.array([h0.max(), g0.max(), 1.0])[idx]
    scale = np.where(
        np.isfinite(e) & (e >= 0),
        e,
        np.where(
            np.isfinite(pk) & (pk > 0), pk / peak_of, np.where(is_h, HOUSEHOLD_E_KWH_PER_YEAR, 0.0)
        ),
    )
    tan_phi = np.tan(np.arccos(HOUSEHOLD_COS_PHI))
    return _Profiles(
        profile_p=base,
        profile_q=base * tan_phi,
        load_profile_idx=idx,
        p_scale_kw=np.where(is_pv, 0.0, scale),
        q_scale_kvar=np.where(is_pv, 0.0, scale),
        household_load_idx=np.asarray(households),
    )


def _build(
    name: str, net: pandapowerNet, asymmetric: bool = False, kind: str = "simbench"
) -> tuple[pandapowerNet, _Profiles]:
    try:
        return _build_checked(name, net, asymmetric, kind)
    except FeederError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # a table without a column pandapower always writes, or of the wrong type
        raise FeederError(
            f"feeder '{name}' has a malformed table ({type(exc).__name__}: "
            f"{_one_line(exc)[:120]}): write the net with pandapower.to_json"
        ) from None


def _user_households(
    name: str, net: pandapowerNet, in_service: np.ndarray
) -> tuple[np.ndarray, str]:
    """The households of a user's net without SimBench profiles (:data:`HOUSEHOLD_RULE`)."""
    load = net.load
    if "household" in load.columns:
        raw = load["household"]
        text = raw.astype(str).str.strip().str.lower()
        ok = text.isin(["true", "false", "1", "0", "1.0", "0.0", "yes", "no"])
        if not ok.all():
            bad = load.index[~ok.to_numpy()]
            raise FeederError(
                f"feeder '{name}': {_elements('load', load, bad)} has household="
                f"{_one_line(raw.at[bad[0]])[:20]!r} (must be true or false): mark each load "
                "as a household or not"
            )
        mask = text.isin(["true", "1", "1.0", "yes"]).to_numpy()
        how = "the net.load 'household' column"
    elif "profile" in load.columns:
        mask = load["profile"].astype(str).str.strip().str.upper().str.startswith("H").to_numpy()
        how = "the net.load 'profile' column (H*: households)"
    else:
        peak = (
            _col(load, "p_mw").fillna(0.0).to_numpy()
            * _col(load, "scaling").fillna(1.0).to_numpy()
            * 1e3
        )
        mask = peak <= HOUSEHOLD_MAX_KW
        how = f"p_mw * scaling up to {HOUSEHOLD_MAX_KW:g} kW (one 3 x 25 A connection)"
    return load.index[mask & in_service].to_numpy(), how


def _user_pv(net: pandapowerNet, households: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The file's in-service PV (sgen rows, ``p_mw * scaling`` as kWp): households' kWp
    ``(n_households,)`` where it sits at their bus (split equally); elsewhere a feeder-PV
    ``net.load`` row each (appended). Call before :func:`prepare_net` switches sgens off."""
    kwp_h = np.zeros(len(households))
    notes: list[str] = []
    sg = net.sgen if "sgen" in net and isinstance(net.sgen, pd.DataFrame) else pd.DataFrame()
    if not len(sg):
        return kwp_h, notes
    on = _in_service(sg)
    on = on[(_col(on, "p_mw").fillna(0.0) > 0).to_numpy()]
    if not len(on):
        return kwp_h, notes
    kwp = (_col(on, "p_mw").to_numpy() * _col(on, "scaling").fillna(1.0).to_numpy()) * 1e3
    hh_bus = net.load.loc[households, "bus"].to_numpy()
    n_home, n_feeder, kwp_feeder = 0, 0, 0.0
    for (i, row), k in zip(on.iterrows(), kwp, strict=True):
        at = np.flatnonzero(hh_bus == int(row["bus"]))
        if len(at):
            kwp_h[at] += k / len(at)
            n_home += 1
        else:
            pp.create_load(net, int(row["bus"]), p_mw=0.0, q_mvar=0.0, name=f"PV (sgen {i})")
            n_feeder += 1
            kwp_feeder += k
    if n_home:
        notes.append(
            f"{n_home} sgen row(s) ({kwp_h.sum():.1f} kWp) at household buses kept as those "
            f"{int((kwp_h > 0).sum())} households' PV (counted toward the scenario's PV share)"
        )
    if n_feeder:
        notes.append(
            f"{n_feeder} sgen row(s) ({kwp_feeder:.1f} kWp) away from households kept as feeder "
            f"PV (load rows 'PV (sgen i)', south {FEEDER_PV_TILT_DEG:g}°, modelled with pvlib)"
        )
    return kwp_h, notes


def _build_checked(
    name: str, net: pandapowerNet, asymmetric: bool = False, kind: str = "simbench"
) -> tuple[pandapowerNet, _Profiles]:
    simbench = _has_simbench_profiles(net)
    notes: list[str] = []
    kwp_h = None
    in_service = net.load["in_service"].astype(bool).to_numpy()
    if simbench:
        names = net.load["profile"].astype(str).to_numpy()
        households = net.load.index[
            np.char.startswith(names.astype(str), "H0") & in_service
        ].to_numpy()
    elif kind == "file":
        households, how = _user_households(name, net, in_service)
        n_other = int(in_service.sum()) - len(households)
        notes.append(f"{len(households)} household(s), {n_other} other load(s) by {how}")
    else:
        households = net.load.index[in_service].to_numpy()
    if kind == "file":
        kwp_h, pv_notes = _user_pv(net, households)
        notes += pv_notes
    prepare_net(net)
    _normalise_phase(name, net)
    _check_usable(name, net, households, asymmetric)
    annual = peak = pv_kwp = None
    if kind == "file" and simbench:
        notes.append(
            f"{len(households)} household(s) (H0 profiles) and the other loads keep the "
            "file's SimBench profiles"
        )
    elif kind == "file":
        load = net.load
        annual = (
            _col(load, "annual_kwh").to_numpy()
            if "annual_kwh" in load.columns
            else np.full(len(load), np.nan)
        )
        p_kw = (
            _col(load, "p_mw").fillna(0.0).to_numpy()
            * 1e3
            * _col(load, "scaling").fillna(1.0).to_numpy()
        )
        is_pv = load["name"].astype(str).str.startswith("PV (sgen").to_numpy()
        peak = np.where(np.isfinite(annual) | (p_kw <= 0) | is_pv, np.nan, p_kw)
        hh = load.index.isin(households)
        in_service = load["in_service"].astype(bool).to_numpy()
        n_e, n_p = int((np.isfinite(annual) & hh).sum()), int((np.isfinite(peak) & hh).sum())
        notes.append(
            f"households: {n_e} keep net.load.annual_kwh, {n_p} have their profile scaled to "
            f"p_mw * scaling as the annual 15-min peak, {len(households) - n_e - n_p} get a "
            "drawn annual energy"
        )
        if not simbench and (~hh & in_service & ~is_pv).any():
            notes.append(
                f"{int((~hh & in_service & ~is_pv).sum())} other load(s): BDEW G0 profile scaled "
                "to net.load.annual_kwh, else to p_mw * scaling as the annual peak"
            )
    if kind == "file":
        load = net.load
        is_pv = load["name"].astype(str).str.startswith("PV (sgen").to_numpy()
        pv_kwp = np.zeros(len(load))
        if is_pv.any():
            sg_kwp = {
                f"PV (sgen {i})": float(r["p_mw"])
                * 1e3
                * float(r["scaling"] if pd.notna(r.get("scaling", 1.0)) else 1.0)
                for i, r in net.sgen.iterrows()
            }
            pv_kwp[is_pv] = [sg_kwp.get(str(nm), 0.0) for nm in load["name"][is_pv]]
    if simbench:
        profiles = _simbench_profiles(net)
    else:
        profiles = _h0_profiles(net, households, annual, peak)
    profiles.kind = np.array(kind)
    profiles.load_annual_kwh = annual
    profiles.load_peak_kw = peak
    profiles.household_pv_kwp = kwp_h
    profiles.pv_load_kwp = pv_kwp
    profiles.notes = np.array(notes, dtype=str)
    # keep the cached net small: the profiles live in the arrays
    for key in ("profiles", "loadcases"):
        if key in net:
            del net[key]
    return net, profiles


# ----------------------------------------------------------------------------------------------
# cache
# ----------------------------------------------------------------------------------------------


def _cache_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)
    stem = f"{safe}.v{CACHE_VERSION}"
    return cache_dir / f"{stem}.json", cache_dir / f"{stem}.npz"


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _save_cache(cache_dir: Path, key: str, net: pandapowerNet, prof: _Profiles) -> None:
    json_path, npz_path = _cache_paths(cache_dir, key)

    def write_npz(p: Path) -> None:
        with open(p, "wb") as fh:
            arrays = {
                k: v for k, v in vars(prof).items() if isinstance(v, np.ndarray) and v is not None
            }
            np.savez_compressed(fh, **arrays)

    try:
        _atomic_write(npz_path, write_npz)
        _atomic_write(json_path, lambda p: pp.to_json(net, str(p)))
    except OSError:
        pass  # an unwritable cache only costs time


def _load_cache(cache_dir: Path, key: str) -> tuple[pandapowerNet, _Profiles] | None:
    json_path, npz_path = _cache_paths(cache_dir, key)
    if not (json_path.is_file() and npz_path.is_file()):
        return None
    try:
        net = read_net_json(json_path)  # data only, like a user's file
        with np.load(npz_path, allow_pickle=False) as z:
            prof = _Profiles(**{k: z[k] for k in z.files})
    except Exception as exc:  # a corrupt or foreign cache entry is rebuilt
        log.warning(
            "feeder cache entry %s is unreadable (%s): rebuilding it", json_path, _one_line(exc)
        )
        return None
    return net, prof


# ----------------------------------------------------------------------------------------------
# public entry point
# ----------------------------------------------------------------------------------------------


# converted feeders already read in this process (reading the JSON costs ~0.5 s)
_MEMO: dict[tuple[str, str], tuple[pandapowerNet, _Profiles]] = {}
_MEMO_SIZE = 8


def _read_json(path: Path) -> pandapowerNet:
    """A user's pandapower JSON file, read as data only (:func:`twin.grid.netjson.read_net_json`)."""
    net = read_net_json(path)
    if "bus" not in net or not len(net.bus):
        raise FeederError(
            f"'{path}' is not a pandapower net with buses: write it with pandapower.to_json"
        )
    return net


def _spec_source(spec: str) -> tuple[str, str, Callable[[], pandapowerNet]]:
    """Return (feeder name, cache key, builder) for a spec, or raise FeederError (the kind
    of feeder: :func:`_spec_kind`)."""
    if _SIMBENCH_LV_CODE.match(spec):

        def make_sb() -> pandapowerNet:
            import warnings

            import simbench as sb

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return sb.get_simbench_net(spec)

        return spec, spec, make_sb
    region = split_feeder_spec(spec)
    if region is not None:  # one LV feeder of an MV+LV region (twin.grid.regions)
        return spec, spec, lambda: feeder_net(*region)
    if is_region_code(spec):
        raise FeederError(
            f"{spec} is a region of {len(stations(spec))} LV feeders: run them all with "
            f"`twin study=region grid.name={spec}`, or one with grid.name={spec}:<feeder> "
            f"(e.g. {spec}:{stations(spec).index[0]})"
        )
    key = spec.strip().lower()
    if key in KNOWN_FEEDERS:
        return key, key, KNOWN_FEEDERS[key]
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".json" or path.exists():
        if not path.is_file():
            raise FeederError(
                f"grid file '{path}' does not exist or is not a file: give the path of a pandapower .json file"
            )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        return path.stem, f"file-{path.stem}-{digest}", lambda: _read_json(path)
    raise _unknown(spec)


def _spec_kind(spec: str) -> str:
    if _SIMBENCH_LV_CODE.match(spec) or split_feeder_spec(spec) is not None:
        return "simbench"
    return "networks" if spec.strip().lower() in KNOWN_FEEDERS else "file"


def load_feeder(
    spec: str | os.PathLike[str] = DEFAULT_FEEDER,
    cache_dir: Path | None = None,
    asymmetric: bool = False,
) -> Feeder:
    """Load a feeder and its year of 15-minute load profiles (cached).

    Parameters
    ----------
    spec : str or path
        SimBench LV code, short name from :data:`KNOWN_FEEDERS`, or path to a pandapower JSON.
    cache_dir : Path, optional
        Cache directory; default :func:`default_cache_dir`.
    asymmetric : bool, default False
        Accept in-service ``asymmetric_load`` rows (for the unbalanced power flow only).

    Returns
    -------
    Feeder

    Raises
    ------
    FeederError
        Unknown spec, unreadable or invalid file, or a feeder without a usable household load.
    """
    spec = os.fspath(spec)
    name, key, make = _spec_source(spec)
    kind = _spec_kind(spec)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    memo_key = (key, str(cache.resolve()))
    if memo_key in _MEMO:
        net0, prof = _MEMO[memo_key]
    else:
        cached = _load_cache(cache, key)
        if cached is None:
            net0, prof = _build(name, make(), asymmetric, kind)
            _save_cache(cache, key, net0, prof)
        else:
            net0, prof = cached
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[memo_key] = (net0, prof)
    if not asymmetric:  # a net cached by an unbalanced run
        _check_supported(name, net0)
    net = copy.deepcopy(net0)  # callers may change their net; the memo keeps a clean one
    p_kw, q_kvar = prof.expand()
    return Feeder(
        name=name,
        net=net,
        household_load_idx=np.array(prof.household_load_idx, dtype=np.int64),
        load_p_kw=p_kw,
        load_q_kvar=q_kvar,
        kind=str(prof.kind),
        load_annual_kwh=None if prof.load_annual_kwh is None else prof.load_annual_kwh.copy(),
        load_peak_kw=None if prof.load_peak_kw is None else prof.load_peak_kw.copy(),
        household_pv_kwp=None if prof.household_pv_kwp is None else prof.household_pv_kwp.copy(),
        pv_load_kwp=None if prof.pv_load_kwp is None else prof.pv_load_kwp.copy(),
        notes=tuple(str(x) for x in np.atleast_1d(prof.notes)),
    )
