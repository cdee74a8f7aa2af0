"""The inputs of one run, cut to its window: :class:`StudyInputs` and :func:`build_inputs`.

Feeder (:mod:`twin.grid.feeders`), weather (:mod:`twin.weather`), scenario
(:mod:`twin.scenario`) and tariff (:mod:`twin.tariffs`) are loaded and cut to the run's
simulated steps (warm-up included). The run's power-flow model is chosen here
(:func:`resolve_unbalanced`: ``grid.unbalanced``, default on for feeders with phase data).

The households' base load (``grid.base_load``):

* ``generated`` (default): each household draws its own size (CBS 37975), annual energy (CBS
  85140NED by size, log-normal) and a year of stochastic 15-minute profile with appliance
  spikes on the BDEW H25 profile of the 2025 calendar
  (:func:`twin.devices.baseload.draw_base_load`), from a stream of its own: household ``i``'s
  load depends only on the seed and ``i`` (a larger feeder keeps the others'). A user's file
  that gives a load's annual energy (``annual_kwh``) or peak (``p_mw``) keeps it. Why the
  default, also on SimBench feeders: SimBench's 102 urban6 households share 5 H0 profiles
  step for step (~20 identical copies each), which overstates their coincident base-load peak
  (1.51 kW per household over the year against ~0.8 kW for independent households), and the
  generator gives every feeder the same Dutch household statistics. Generation takes ~7 ms
  per household-year, less than reading it back from a disk cache would, so it is kept only
  in memory (per process, like a loaded feeder).
* ``feeder``: the feeder's own profiles (SimBench's H0 on SimBench nets, on 2025 weekdays;
  BDEW H0 copies elsewhere).

``grid.profiles=<csv or parquet>`` replaces the base load of the connections it has (smart-
meter data: ``connection``, ``time``, ``p_kw``, optionally ``q_kvar``; :func:`read_profiles`).

Weather: TRY2010's rows are in true solar time (hourly means over local apparent solar hours;
the clearness index is symmetric about 12:00 only that way, and the year's irradiance centroid
is 12:04 rather than the 12:32 of clock time at Essen). The run's clock is CET (UTC+01:00): the
irradiance and temperature are moved onto it here (:func:`solar_to_clock_time`; the sun is
32 minutes later on CET at 6.97° E, less the equation of time), so PV, solar gains and the
synthetic day-ahead price see the sun when the households' clocks do. The PV model's
irradiance is scaled by ``pv.irradiance_scale`` for TRY2010 (a darker 1988-2007 mean year;
see the scenario's source). Each replacement is said in one line at the start of the run.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.devices.baseload import (
    BaseLoadParams,
    draw_annual_kwh,
    draw_base_load,
    draw_day_factors,
    draw_household_size,
)
from twin.errors import TwinError
from twin.grid.elements import UNSUPPORTED_FIX
from twin.grid.feeders import (
    FEEDER_PV_AZIMUTH_DEG,
    FEEDER_PV_TILT_DEG,
    Feeder,
    FeederError,
    load_feeder,
)
from twin.grid.ratings import station_rating_kva
from twin.scenario import Scenario, load_scenario
from twin.tariffs import Tariff, make_tariff
from twin.timegrid import (
    DT_H,
    REFERENCE_YEAR,
    STEPS_PER_DAY,
    STEPS_PER_HOUR,
    STEPS_PER_YEAR,
    TimeWindow,
    make_window,
)
from twin.weather import load_weather

__all__ = [
    "BASE_LOAD_SOURCES",
    "StudyInputs",
    "build_inputs",
    "household_base_loads",
    "read_profiles",
    "resolve_unbalanced",
    "solar_to_clock_time",
]

log = logging.getLogger("twin")

#: ``grid.base_load``: households draw their own base load, or keep the feeder's profiles.
BASE_LOAD_SOURCES = ("generated", "feeder")
#: Spawn keys of the base-load streams (beside the model's own children 0, 1, 2, ...): one per
#: household (``(BASE_LOAD_STREAM, i)``) and one for the day factor all households share.
BASE_LOAD_STREAM = 0xB45E
COMMON_STREAM = 0xC0
#: Longitude of the TRY2010 region-5 station (Essen; twin.devices.pv.SITE_LON_DEG).
TRY_LON_DEG = 6.967
TRY_LAT_DEG = 51.40
#: Longest gap in a profiles file filled by linear interpolation (as for weather files).
MAX_PROFILE_GAP_H = 3.0


@dataclass(frozen=True)
class StudyInputs:
    """What a run simulates, for the run's simulated steps (warm-up included): scenario,
    weather, today's household loads, the feeder's other loads and the grid.

    ``p_other_kw`` / ``q_other_kvar`` are ``(T, n_other)`` (``n_other`` may be 0);
    ``hh_cols`` and ``other_cols`` are the load columns (``net.load`` order) of the households
    and of the other loads (without a feeder: households first, then the others).
    ``household_persons`` ``(H,)``: household sizes drawn with the base load (None: the fleet
    draws them); ``existing_pv_kwp`` ``(H,)``: PV the feeder file already has (None: none);
    ``pv_irradiance_scale``: the PV model's irradiance scale for this weather.
    """

    scenario: Scenario
    window: TimeWindow
    t_out_c: np.ndarray  # (T,)
    ghi_w_m2: np.ndarray  # (T,)
    p_base_kw: np.ndarray  # (T, H)
    q_base_kvar: np.ndarray  # (T, H)
    load_index: np.ndarray  # (H,) net.load index of each household
    tariff: Tariff | None = None  # prices over the simulated steps
    p_other_kw: np.ndarray | None = None  # (T, n_other) the feeder's non-household loads
    q_other_kvar: np.ndarray | None = None  # (T, n_other)
    trafo_rating_kva: float = float("inf")  # the station rating (twin.grid.ratings)
    feeder: Feeder | None = None  # the grid, when the pipeline built the inputs
    weather_name: str = ""
    history: dict[str, np.ndarray] | None = None  # the past before the window (forecasters)
    hh_cols: np.ndarray = field(default=None)  # type: ignore[assignment]
    other_cols: np.ndarray = field(default=None)  # type: ignore[assignment]
    # (H,) each household's connection phase from the feeder file (twin.grid.feeders
    # PHASE_CODES; -2 where the file does not say), None: drawn for every household
    connection_phase: np.ndarray | None = None
    household_persons: np.ndarray | None = None
    existing_pv_kwp: np.ndarray | None = None
    pv_irradiance_scale: float = 1.0
    base_load: str = "feeder"  # where the households' base load came from
    # where the sun is computed for (the TRY2010 region's station; Essen otherwise)
    site_lat_deg: float = TRY_LAT_DEG
    site_lon_deg: float = TRY_LON_DEG
    # (T, n_load) each connection's standard profile (net.load order) over the simulated steps:
    # what a DSO holds from registration, the measurement layer's pseudo-measurement
    # (twin.measure). Households drawing their own base load get the BDEW H0 profile scaled to
    # their annual base energy; households on the feeder's or given profiles, and the other
    # loads, keep those profiles. None: no feeder (the households' base load stands in).
    standard_p_kw: np.ndarray | None = None

    def __post_init__(self) -> None:
        t, n = self.p_base_kw.shape
        if self.p_other_kw is None:
            object.__setattr__(self, "p_other_kw", np.zeros((t, 0)))
        p_other = np.asarray(self.p_other_kw, dtype=float).reshape(t, -1)
        object.__setattr__(self, "p_other_kw", p_other)
        if self.q_other_kvar is None:
            object.__setattr__(self, "q_other_kvar", np.zeros_like(p_other))
        if self.hh_cols is None:
            object.__setattr__(self, "hh_cols", np.arange(n))
        if self.other_cols is None:
            object.__setattr__(self, "other_cols", n + np.arange(p_other.shape[1]))


# ----------------------------------------------------------------------------------------------
# weather on twin's clock
# ----------------------------------------------------------------------------------------------


def try2010_site(region: int) -> tuple[float, float]:
    """``(lat, lon)`` in degrees of a TRY2010 region's station, from its file's header
    (``Lage: 51°24'N <- B.   6°58'O <- L.``); Essen's if the header cannot be read."""
    import re

    import demandlib.vdi

    path = (
        Path(demandlib.vdi.__file__).parent / "resources_weather" / f"TRY2010_{region:02d}_Jahr.dat"
    )
    try:
        head = path.read_text(encoding="latin-1")[:2000]
    except OSError:
        return TRY_LAT_DEG, TRY_LON_DEG
    m = re.search(r"(\d+)\D+(\d+)'N.*?(\d+)\D+(\d+)'O", head)
    if not m:
        return TRY_LAT_DEG, TRY_LON_DEG
    d1, m1, d2, m2 = (int(x) for x in m.groups())
    return d1 + m1 / 60.0, d2 + m2 / 60.0


def solar_to_clock_time(
    t_out_c: np.ndarray, ghi_w_m2: np.ndarray, lon_deg: float = TRY_LON_DEG
) -> tuple[np.ndarray, np.ndarray]:
    """A year of 15-minute weather (35,040 rows from 1 Jan) whose rows are in true solar time,
    on twin's clock (CET, UTC+01:00).

    Local apparent time = CET + (lon − 15°)·4 min/° + equation of time, so the value at CET
    step ``t`` is the solar-time series at ``t + δ``, ``δ = (lon − 15°)·4 min + EoT`` (about
    −32 min ± 16 min at Essen). Irradiance (a held step function of interval means): the mean
    of the solar-time series over the shifted interval, from its running integral, so the
    year's energy is kept (to the day-to-day change of δ); temperature: linear interpolation
    at the shifted midpoints. Periodic over the year.
    """
    import pvlib

    n = len(ghi_w_m2)
    day = np.arange(n) // STEPS_PER_DAY
    eot_min = pvlib.solarposition.equation_of_time_spencer71(day + 1)
    delta_steps = ((lon_deg - 15.0) * 4.0 + eot_min) / (60.0 / STEPS_PER_HOUR)
    g = np.clip(np.asarray(ghi_w_m2, float), 0.0, None)
    cum = np.concatenate([[0.0], np.cumsum(g)])  # integral at step edges (W/m² · steps)
    total = cum[-1]

    def integral(x: np.ndarray) -> np.ndarray:
        whole = np.floor(x / n)
        r = x - whole * n
        return whole * total + np.interp(r, np.arange(n + 1), cum)

    start = np.arange(n) + delta_steps
    ghi = integral(start + 1.0) - integral(start)
    mid = np.arange(n) + 0.5 + delta_steps
    t = np.interp(mid % n, np.arange(n) + 0.5, np.asarray(t_out_c, float), period=n)
    return t, np.clip(ghi, 0.0, None)


# ----------------------------------------------------------------------------------------------
# base load
# ----------------------------------------------------------------------------------------------


def _household_rngs(seed: int, n: int) -> list[np.random.Generator]:
    return [
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(BASE_LOAD_STREAM, i)))
        for i in range(n)
    ]


def household_base_loads(
    scenario: Scenario,
    seed: int,
    n: int,
    annual_kwh: np.ndarray | None = None,
    peak_kw: np.ndarray | None = None,
    generate: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Each household's size and, with ``generate``, its year of base load and its annual energy.

    Household ``i`` draws from its own stream ``(seed, i)``: its size, its annual energy (or
    ``annual_kwh[i]`` where finite), its profile; where ``peak_kw[i]`` is finite (and no
    energy is given) the profile is scaled to that annual 15-minute peak. The day factor all
    households share comes from one more stream of the seed. Returns ``(persons (n,),
    p_kw (35040, n) or None, e_kwh (n,) or None)``; kept in memory per process.
    """
    a = None if annual_kwh is None else np.asarray(annual_kwh, float)
    p = None if peak_kw is None else np.asarray(peak_kw, float)
    key = (
        BaseLoadParams.from_section(scenario["base_load"]),
        int(seed),
        int(n),
        None if a is None else a.tobytes(),
        None if p is None else p.tobytes(),
        bool(generate),
    )
    persons, prof, e = _household_base_loads(key)
    return persons.copy(), None if prof is None else prof.copy(), None if e is None else e.copy()


@functools.lru_cache(maxsize=4)
def _household_base_loads(key: tuple) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    params, seed, n, a_b, p_b, generate = key
    annual = np.full(n, np.nan) if a_b is None else np.frombuffer(a_b)
    peak = np.full(n, np.nan) if p_b is None else np.frombuffer(p_b)
    common = draw_day_factors(
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(COMMON_STREAM,))), params
    )
    persons = np.zeros(n, dtype=np.int64)
    prof = np.empty((STEPS_PER_YEAR, n)) if generate else None
    e = np.empty(n) if generate else None
    for i, rng in enumerate(_household_rngs(seed, n)):
        persons[i] = draw_household_size(rng, 1, params)[0]
        if not generate:
            continue
        drawn = draw_annual_kwh(
            rng, persons[i : i + 1], params.mean_annual_kwh, params.annual_kwh_sigma, params
        )
        e_i = annual[i] if np.isfinite(annual[i]) and annual[i] >= 0 else float(drawn[0])
        col = draw_base_load(rng, np.array([e_i]), params=params, day_common=common)[:, 0]
        if not np.isfinite(annual[i]) and np.isfinite(peak[i]) and peak[i] > 0:
            col = col * (peak[i] / col.max())
        prof[:, i] = col
        e[i] = col.sum() * DT_H
    return persons, prof, e


# ----------------------------------------------------------------------------------------------
# smart-meter profiles
# ----------------------------------------------------------------------------------------------


def read_profiles(path: str | Path) -> pd.DataFrame:
    """Per-connection profiles (smart-meter data) on the reference year's 35,040 quarter-hours.

    The file (CSV, optionally ``.csv.gz``, or parquet) has columns ``connection`` (a load's
    ``name`` in ``net.load``, or its index), ``time`` (ISO 8601; with a UTC offset converted to
    twin's clock, UTC+01:00, without one read as that clock, as weather files are) and ``p_kw``
    (the interval's mean, kW), optionally ``q_kvar``; 15-minute or hourly, one whole year per
    connection, any start date. Each day goes to the reference-year day with the same weekday
    nearest to the same date (the weekdays of 2025 are kept). Gaps up to 3 h are filled
    linearly (with a warning); longer gaps, a missing column, unreadable times or values, or
    less than a year are one-line errors. Returns a frame of ``(35040, n_connections)`` p
    (and, if given, ``q:<connection>`` columns), columns named by connection.
    """
    p = Path(path)
    label = str(path)
    if not p.is_file():
        raise TwinError(f"profiles file '{label}' not found: give grid.profiles an existing file")
    try:
        df = pd.read_parquet(p) if p.suffix.lower() in (".parquet", ".pq") else pd.read_csv(p)
    except Exception as exc:  # noqa: BLE001 - any reader error is the file's
        raise TwinError(
            f"profiles file '{label}' is not readable ({type(exc).__name__}): write it as CSV "
            "or parquet with columns connection, time, p_kw"
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = {"connection", "time", "p_kw"} - set(df.columns)
    if missing:
        raise TwinError(
            f"profiles file '{label}' lacks column(s) {sorted(missing)}: it needs connection, "
            "time, p_kw (optionally q_kvar)"
        )
    text = df["time"].astype(str).str.strip()
    aware = text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$")
    if aware.any() and not aware.all():
        raise TwinError(
            f"profiles file '{label}' mixes times with and without a UTC offset: give every "
            "time with an offset or none (read as UTC+01:00)"
        )
    times = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    if times.isna().any():
        i = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise TwinError(
            f"profiles file '{label}' has a time that is not ISO 8601 (row {i + 2}: "
            f"{text.iloc[i]!r}): write times as YYYY-MM-DDTHH:MM"
        )
    shift = pd.Timedelta(hours=1) if aware.all() else pd.Timedelta(0)
    local = (times + shift).dt.tz_localize(None)
    out: dict[str, np.ndarray] = {}
    for col in ("p_kw", "q_kvar"):
        if col not in df.columns:
            continue
        v = pd.to_numeric(df[col], errors="coerce")
        if v.isna().any() and col == "p_kw":
            bad = v.isna() & df[col].notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise TwinError(
                    f"profiles file '{label}' has a {col} that is not a number (row {i + 2}): "
                    "give plain numbers in kW"
                )
        frame = pd.DataFrame({"c": df["connection"].astype(str), "t": local, "v": v})
        for conn, part in frame.groupby("c", sort=False):
            year = _meter_year(label, conn, part["t"], part["v"].to_numpy(float))
            out[conn if col == "p_kw" else f"q:{conn}"] = year
    return pd.DataFrame(out)


def _meter_year(label: str, conn: str, times: pd.Series, values: np.ndarray) -> np.ndarray:
    """One connection's readings on the reference year's quarter-hours and weekdays."""
    s = pd.Series(values, index=pd.DatetimeIndex(times)).sort_index()
    s = s[~s.index.duplicated(keep="first")]
    step = s.index.to_series().diff().median()
    if pd.isna(step) or step > pd.Timedelta(hours=1):
        raise TwinError(
            f"profiles file '{label}': connection {conn!r} has one reading every {step}: give "
            "15-minute or hourly readings"
        )
    q = s.resample("15min").mean()
    if step > pd.Timedelta(minutes=15):  # hourly means: held over their quarter-hours
        q = s.resample("15min").ffill(limit=int(step / pd.Timedelta(minutes=15)) - 1)
    days = pd.date_range(q.index[0].normalize(), q.index[-1].normalize(), freq="D")
    q = q.reindex(pd.date_range(days[0], days[-1] + pd.Timedelta("23:45:00"), freq="15min"))
    # a first or last day the readings only partly cover (a UTC file on twin's clock) is left
    # out; gaps inside are filled up to 3 h
    valid = q.notna().to_numpy().reshape(-1, STEPS_PER_DAY).sum(axis=1)
    whole = np.flatnonzero(valid >= STEPS_PER_DAY - MAX_PROFILE_GAP_H * STEPS_PER_HOUR)
    if not len(whole):
        raise TwinError(
            f"profiles file '{label}': connection {conn!r} has no whole day of readings: give "
            "a whole year"
        )
    days = days[whole[0] : whole[-1] + 1]
    q = q.iloc[whole[0] * STEPS_PER_DAY : (whole[-1] + 1) * STEPS_PER_DAY]
    gap = q.isna().astype(int).groupby(q.notna().cumsum()).sum().max()
    if gap > MAX_PROFILE_GAP_H * STEPS_PER_HOUR:
        raise TwinError(
            f"profiles file '{label}': connection {conn!r} has no reading for {gap / 4:g} h: "
            f"at most {MAX_PROFILE_GAP_H:g} h are filled; complete the data"
        )
    if gap:
        log.warning(
            "profiles file '%s': connection %r: filled gaps up to %g h by linear interpolation",
            label,
            conn,
            gap / 4,
        )
    q = q.interpolate(limit_direction="both")
    daily = q.to_numpy().reshape(-1, STEPS_PER_DAY)
    if len(daily) < 365:
        raise TwinError(
            f"profiles file '{label}': connection {conn!r} covers {len(daily)} days: give a "
            "whole year (any start date)"
        )
    have = pd.DatetimeIndex(days)
    # each 2025 day: the file's day with the same weekday nearest to the same date
    ref = pd.date_range(f"{REFERENCE_YEAR}-01-01", periods=365, freq="D")
    out = np.empty((365, STEPS_PER_DAY))
    first = have[0]
    for d, date in enumerate(ref):
        year = first.year if (date.month, date.day) >= (first.month, first.day) else first.year + 1
        try:
            target = pd.Timestamp(year=year, month=date.month, day=date.day)
        except ValueError:
            target = pd.Timestamp(year=year, month=date.month, day=28)
        shift = (date.dayofweek - target.dayofweek + 3) % 7 - 3
        j = (target + pd.Timedelta(days=shift) - first).days
        if j < 0:
            j += 7
        if j >= len(daily):
            j -= 7 * ((j - len(daily)) // 7 + 1)
        out[d] = daily[j]
    return out.reshape(-1)


# ----------------------------------------------------------------------------------------------
# the run's inputs
# ----------------------------------------------------------------------------------------------


def _feeder_pv(
    feeder: Feeder,
    t_year: np.ndarray,
    g_year: np.ndarray,
    scale: float,
    lat: float = TRY_LAT_DEG,
    lon: float = TRY_LON_DEG,
) -> None:
    """Fill the feeder-PV load rows (negative loads) from the weather (pvlib, south 35°)."""
    kwp = feeder.pv_load_kwp
    if kwp is None or not (kwp > 0).any():
        return
    from twin.devices.pv import Roofs, pv_ac_power_kw, sun_at_rows

    cols = np.flatnonzero(kwp > 0)
    m = len(cols)
    roofs = Roofs(
        tilt_deg=np.full(m, FEEDER_PV_TILT_DEG),
        azimuth_deg=np.full(m, FEEDER_PV_AZIMUTH_DEG),
        tilt2_deg=np.full(m, FEEDER_PV_TILT_DEG),
        azimuth2_deg=np.full(m, FEEDER_PV_AZIMUTH_DEG),
        share2=np.zeros(m),
        dc_ac_ratio=np.full(m, 1.1),
    )
    sun = sun_at_rows(np.arange(STEPS_PER_YEAR), lat_deg=lat, lon_deg=lon)
    p = pv_ac_power_kw(g_year, t_year, kwp[cols], roofs, sun=sun, ghi_scale=scale)
    feeder.load_p_kw[:, cols] = -p
    feeder.load_q_kvar[:, cols] = 0.0


def _replace_with_profiles(
    feeder: Feeder, path: str, p_hh: np.ndarray, q_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """Households (and other loads) the profiles file has get its readings."""
    table = read_profiles(path)
    load = feeder.net.load
    names = load["name"].astype(str).to_numpy() if "name" in load.columns else None
    conns = [c for c in table.columns if not c.startswith("q:")]
    by_name = names is not None and all(c in set(names) for c in conns)
    col_of: dict[str, int] = {}
    for c in conns:
        if by_name:
            col_of[c] = int(np.flatnonzero(names == c)[0])
        else:
            try:
                col_of[c] = int(load.index.get_loc(int(float(c))))
            except (ValueError, KeyError):
                raise TwinError(
                    f"profiles file '{path}': connection {c!r} is neither a net.load name nor "
                    "an index of the feeder: give the load's name (or its index)"
                ) from None
    hh = feeder.household_cols
    pos_in_hh = {int(j): i for i, j in enumerate(hh)}
    n_hh = n_other = 0
    for c, j in col_of.items():
        p = table[c].to_numpy(float)
        q = table[f"q:{c}"].to_numpy(float) if f"q:{c}" in table.columns else None
        if j in pos_in_hh:
            i = pos_in_hh[j]
            p_hh[:, i] = p
            q_hh[:, i] = p * 0.3 if q is None else q
            n_hh += 1
        else:
            feeder.load_p_kw[:, j] = p
            if q is not None:
                feeder.load_q_kvar[:, j] = q
            n_other += 1
    note = (
        f"grid.profiles: {n_hh} of {len(hh)} households and {n_other} other load(s) take their "
        f"base load from '{Path(path).name}' (matched by net.load "
        f"{'name' if by_name else 'index'}); the others keep theirs"
    )
    return p_hh, q_hh, note


def feeder_cache_dir(cfg: Any) -> Path | None:
    """The feeder cache a run uses: ``<paths.cache_dir>/feeders``, or None for the default
    (:func:`twin.grid.feeders.default_cache_dir`)."""
    return Path(cfg.paths.cache_dir) / "feeders" if cfg.paths.get("cache_dir") else None


def build_inputs(cfg: Any, scenario: Scenario | None = None) -> StudyInputs:
    """Load feeder, weather and scenario (unless given) and cut them to the run's window; the
    households' base load as ``grid.base_load`` and ``grid.profiles`` say (module docstring)."""
    window = make_window(cfg.sim.start, cfg.sim.days, cfg.sim.get("warmup_days", 0))
    cache = feeder_cache_dir(cfg)
    setting = cfg.grid.get("unbalanced")
    # asymmetric_load rows only for the unbalanced power flow; FeederError is a TwinError
    feeder = load_feeder(str(cfg.grid.name), cache_dir=cache, asymmetric=setting is not False)
    feeder = replace(feeder, unbalanced=resolve_unbalanced(feeder, setting))
    source = str(cfg.weather.source)
    weather = load_weather(source, cfg.weather.region, cfg.weather.get("csv"))
    scenario = scenario or load_scenario(str(cfg.scenario.name))
    base_load = str(cfg.grid.get("base_load", None) or "generated")
    if base_load not in BASE_LOAD_SOURCES:
        raise TwinError(
            f"grid.base_load={base_load!r} is invalid: use one of {', '.join(BASE_LOAD_SOURCES)}"
        )
    seed = int(cfg.get("seed", 0) or 0)
    t_year, g_year = weather.t_out_c, weather.ghi_w_m2
    pv_scale = 1.0
    lat, lon = TRY_LAT_DEG, TRY_LON_DEG
    if source == "try2010":
        lat, lon = try2010_site(int(cfg.weather.region))
        t_year, g_year = solar_to_clock_time(t_year, g_year, lon)
        pv_scale = float(scenario["pv"]["irradiance_scale"].value)
        log.info(
            "weather: TRY2010 rows are in true solar time: moved onto twin's clock (CET, "
            "32 min later less the equation of time); PV irradiance x%.3f (pv.irradiance_scale)",
            pv_scale,
        )
    for note in feeder.notes:
        log.info("grid '%s': %s", feeder.name, note)
    cols = feeder.household_cols
    n_hh = len(cols)
    annual = peak = None
    if feeder.load_annual_kwh is not None:
        annual = feeder.load_annual_kwh[cols]
    if feeder.load_peak_kw is not None:
        peak = feeder.load_peak_kw[cols]
    persons, p_gen, e_gen = household_base_loads(
        scenario, seed, n_hh, annual, peak, generate=base_load == "generated"
    )
    if p_gen is not None:
        ratio = scenario["base_load"]["reactive_per_active"].value
        feeder.load_p_kw[:, cols] = p_gen
        feeder.load_q_kvar[:, cols] = p_gen * ratio
        what = (
            "SimBench's H0 profiles"
            if feeder.has_simbench_profiles
            else ("the file's load data" if feeder.kind == "file" else "BDEW H0 copies")
        )
        log.info(
            "base load: %d households draw their own (CBS household sizes and annual energy, "
            "stochastic appliance profiles on BDEW H25; mean %.0f kWh/yr) instead of %s "
            "(grid.base_load=generated; 'feeder' keeps them)",
            n_hh,
            float(e_gen.mean()) if n_hh else 0.0,
            what,
        )
    profiles = cfg.grid.get("profiles", None)
    if profiles:
        p_hh = feeder.load_p_kw[:, cols].copy()
        q_hh = feeder.load_q_kvar[:, cols].copy()
        p_hh, q_hh, note = _replace_with_profiles(feeder, str(profiles), p_hh, q_hh)
        feeder.load_p_kw[:, cols] = p_hh
        feeder.load_q_kvar[:, cols] = q_hh
        log.info("%s", note)
        base_load = "profiles"
    _feeder_pv(feeder, t_year, g_year, pv_scale, lat, lon)
    rows = window.sim_year_index
    standard = _standard_profiles(feeder, cols, None if profiles else p_gen)
    other = np.setdiff1d(np.arange(feeder.load_p_kw.shape[1]), cols)
    history = None
    forecast = cfg.get("forecast")
    days = (
        int(forecast.get("history_days", 0))
        if forecast and forecast.get("name") != "perfect"
        else 0
    )
    if days:  # the past before the first simulated step (the reference year repeats)
        past = (rows[0] - days * 96 + np.arange(days * 96)) % len(feeder.load_p_kw)
        history = {
            "base_kw": feeder.load_p_kw[np.ix_(past, cols)],
            "other_kw": feeder.load_p_kw[np.ix_(past, other)],
            "year_rows": past,
            "standard_kw": standard(past),
        }
    existing = feeder.household_pv_kwp
    return StudyInputs(
        scenario=scenario,
        window=window,
        t_out_c=t_year[rows],
        ghi_w_m2=g_year[rows],
        p_base_kw=feeder.load_p_kw[np.ix_(rows, cols)],
        q_base_kvar=feeder.load_q_kvar[np.ix_(rows, cols)],
        load_index=np.asarray(feeder.household_load_idx),
        tariff=make_tariff(cfg.tariff, window, t_year, g_year),
        p_other_kw=feeder.load_p_kw[np.ix_(rows, other)],
        q_other_kvar=feeder.load_q_kvar[np.ix_(rows, other)],
        trafo_rating_kva=station_rating_kva(feeder.net),
        feeder=feeder,
        weather_name=weather.name,
        hh_cols=np.asarray(cols),
        other_cols=other,
        connection_phase=feeder.household_phase,
        history=history,
        household_persons=persons,
        existing_pv_kwp=None if existing is None or not (existing > 0).any() else existing,
        pv_irradiance_scale=pv_scale,
        base_load=base_load,
        site_lat_deg=lat,
        site_lon_deg=lon,
        standard_p_kw=standard(rows),
    )


def _standard_profiles(feeder: Feeder, cols: np.ndarray, p_gen: np.ndarray | None) -> Any:
    """``standard(rows) -> (len(rows), n_load)``: each connection's standard profile at
    reference-year rows ``rows`` (see :attr:`StudyInputs.standard_p_kw`)."""
    h0 = annual = None
    if p_gen is not None:  # generated base loads: BDEW H0 at each household's annual energy
        from twin.grid.feeders import bdew_h0_profile_kw

        h0 = bdew_h0_profile_kw(1.0)
        annual = p_gen.sum(axis=0) * 0.25

    def standard(rows: np.ndarray) -> np.ndarray:
        out = feeder.load_p_kw[rows].copy()
        if h0 is not None:
            out[:, cols] = h0[rows][:, None] * annual[None, :]
        return out

    return standard


def resolve_unbalanced(feeder: Feeder, setting: bool | None) -> bool:
    """Whether the run models the feeder per phase: ``grid.unbalanced`` if set, else on for a
    feeder that carries phase data (:attr:`~twin.grid.feeders.Feeder.has_phase_data`).

    A balanced run of a net with in-service ``asymmetric_load`` rows is refused here, before
    anything is simulated (only the unbalanced power flow models them).
    """
    unbalanced = feeder.has_phase_data if setting is None else bool(setting)
    if not unbalanced and feeder.has_asymmetric_loads:
        raise FeederError(
            f"feeder '{feeder.name}' has in-service asymmetric_load rows, which only the "
            "unbalanced power flow models: run with grid.unbalanced=true (the default for such a "
            f"net) or {UNSUPPORTED_FIX['asymmetric_load']}"
        )
    return unbalanced
