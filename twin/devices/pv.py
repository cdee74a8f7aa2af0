"""Rooftop PV.

Two models:

* :func:`pv_power_kw` (kept for the current model): ``p_kw = kwp * ghi / 1000 * yield_factor``,
  one shape for every roof.
* :func:`pv_ac_power_kw` (pvlib): sun position for the weather's site, Erbs decomposition of
  the global horizontal irradiance into direct and diffuse, Perez transposition to each roof's
  tilt and azimuth (albedo 0.2), ASHRAE incidence-angle loss on the direct part, PVsyst cell
  temperature for roof-mounted modules, PVWatts DC model (temperature coefficient, system
  losses) and PVWatts inverter with clipping at the AC rating ``kwp / dc_ac_ratio``.
  Vectorised over households by evaluating each distinct (tilt, azimuth) once.

Time base: the TRY2010 irradiances are hourly means in *true solar time* (row ``i`` covers
``[i, i+1)`` h local apparent time): the clearness index is symmetric about noon only with that
reading (with CET it falls by a third from morning to afternoon). :func:`solar_position` turns
the 15-minute step midpoints into UTC with the site's longitude and the equation of time.

Roofs (:func:`draw_roofs`; an assumption, no Dutch survey of roof orientations was found): 70 %
pitched roofs, tilt 30-45° (Dutch pitched roofs), the panels on the sunnier face of a roof
whose street orientation is random, and households with a south-facing face more likely to
install: azimuth 180° + N(0, 50°), clipped to east (90°) .. west (270°); 30 % flat roofs with
racks at 10-15°, half facing south, half split east/west (two half-size arrays). DC/AC ratio
1.0-1.3 (inverter undersizing, common practice).

Irradiance level: TRY2010 region 5 is a 1988-2007 mean year with 960 kWh/m² on the horizontal;
Dutch years since 2010 are brighter (KNMI stations ~1,000-1,100 kWh/m², the "brightening"
trend). ``ghi_scale`` of :func:`pv_ac_power_kw` scales the irradiance to such a year; the
model's own losses stay physical.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.fleet import Fleet, PvModel
from twin.timegrid import DT_H, REFERENCE_YEAR, STEPS_PER_YEAR

STC_IRRADIANCE_W_M2 = 1000.0
# TRY2010 region 5, station Essen (file header): 51°24' N, 6°58' E, 152 m
SITE_LAT_DEG, SITE_LON_DEG, SITE_ALT_M = 51.40, 6.967, 152.0
ALBEDO = 0.2
GAMMA_PDC_PER_K = (
    -0.0037
)  # crystalline-Si power temperature coefficient (datasheets -0.34..-0.40 %/K)
SYSTEM_LOSS = (
    0.10  # soiling, mismatch, wiring, LID, availability (PVWatts default 0.14; assumption)
)
INVERTER_ETA_NOM = 0.96  # PVWatts default nominal inverter efficiency
CELL_U_C = 20.0  # PVsyst "semi-integrated" (roof, ventilated rear) heat-loss factor, W/m²K
WIND_M_S = 1.0  # the weather has no wind here; PVsyst's u_c alone carries the cooling
IAM_B0 = 0.05  # ASHRAE incidence-angle modifier (PVsyst default)


def pv_power_kw(
    ghi_w_m2: np.ndarray, kwp: np.ndarray, yield_factor: float | np.ndarray
) -> np.ndarray:
    """PV output (kW, >= 0) for irradiance (T,) and installed peak power (H,) -> (T, H)."""
    return np.outer(np.clip(ghi_w_m2, 0.0, None) / STC_IRRADIANCE_W_M2, kwp * yield_factor)


@dataclass(frozen=True)
class SolarPosition:
    """Per 15-minute step (T,): apparent zenith and azimuth (deg), extraterrestrial normal
    irradiance (W/m²), relative airmass."""

    zenith_deg: np.ndarray
    azimuth_deg: np.ndarray
    dni_extra_w_m2: np.ndarray
    airmass: np.ndarray
    day_of_year: np.ndarray
    #: the reference-year row of each step and the year's site (lat, lon, solar_time), when
    #: the sun was cut from a year (:func:`sun_at_rows`): the planes' sun geometry is then
    #: read from a cache made once for those rows (:class:`_PlaneGeometry`)
    rows: np.ndarray | None = None
    site: tuple[float, float, bool] | None = None


@functools.lru_cache(maxsize=4)
def solar_position(
    lat_deg: float = SITE_LAT_DEG,
    lon_deg: float = SITE_LON_DEG,
    alt_m: float = SITE_ALT_M,
    n_steps: int = STEPS_PER_YEAR,
    solar_time: bool = True,
) -> SolarPosition:
    """Sun at the midpoint of every 15-minute step of the reference year. With ``solar_time``
    the steps are in local apparent solar time (TRY2010), otherwise in CET (UTC+1)."""
    import pvlib

    mid = pd.date_range(f"{REFERENCE_YEAR}-01-01", periods=n_steps, freq="15min") + pd.Timedelta(
        minutes=7.5
    )
    doy = mid.dayofyear.to_numpy()
    if solar_time:
        eot_min = pvlib.solarposition.equation_of_time_spencer71(doy)
        utc = mid - pd.to_timedelta(lon_deg / 15.0 * 60.0 + eot_min, unit="min")
    else:
        utc = mid - pd.Timedelta(hours=1)
    utc = pd.DatetimeIndex(utc).tz_localize("UTC")
    sp = pvlib.solarposition.get_solarposition(utc, lat_deg, lon_deg, altitude=alt_m)
    zen = sp["apparent_zenith"].to_numpy()
    am = pvlib.atmosphere.get_relative_airmass(zen)
    return SolarPosition(
        zenith_deg=zen,
        azimuth_deg=sp["azimuth"].to_numpy(),
        dni_extra_w_m2=pvlib.irradiance.get_extra_radiation(doy),
        airmass=np.nan_to_num(am, nan=40.0),
        day_of_year=doy,
    )


def sun_at_rows(
    rows: np.ndarray,
    solar_time: bool = False,
    lat_deg: float = SITE_LAT_DEG,
    lon_deg: float = SITE_LON_DEG,
) -> SolarPosition:
    """The sun at the reference-year rows ``rows`` (a run's steps; the year is computed once
    per process and site and cut). ``solar_time``: the rows are in true solar time (TRY2010 as
    it is) rather than twin's clock (CET, UTC+01:00)."""
    sun = solar_position(float(lat_deg), float(lon_deg), solar_time=solar_time)
    r = np.asarray(rows, dtype=np.int64)
    return SolarPosition(
        zenith_deg=sun.zenith_deg[r],
        azimuth_deg=sun.azimuth_deg[r],
        dni_extra_w_m2=sun.dni_extra_w_m2[r],
        airmass=sun.airmass[r],
        day_of_year=sun.day_of_year[r],
        rows=r,
        site=(float(lat_deg), float(lon_deg), bool(solar_time)),
    )


def _sun_at(sun: SolarPosition, at: np.ndarray) -> SolarPosition:
    """The sun at positions ``at`` of ``sun``'s steps."""
    return SolarPosition(
        zenith_deg=sun.zenith_deg[at],
        azimuth_deg=sun.azimuth_deg[at],
        dni_extra_w_m2=sun.dni_extra_w_m2[at],
        airmass=sun.airmass[at],
        day_of_year=sun.day_of_year[at],
        rows=None if sun.rows is None else sun.rows[at],
        site=sun.site,
    )


def decompose_ghi(ghi_w_m2: np.ndarray, sun: SolarPosition) -> tuple[np.ndarray, np.ndarray]:
    """Erbs decomposition: ``(dni_w_m2, dhi_w_m2)`` (T,)."""
    import pvlib

    ghi = np.clip(np.asarray(ghi_w_m2, float), 0.0, None)
    out = pvlib.irradiance.erbs(ghi, sun.zenith_deg, sun.day_of_year)
    dni = np.nan_to_num(np.asarray(out["dni"], float))
    dhi = np.nan_to_num(np.asarray(out["dhi"], float))
    return dni, dhi


def plane_of_array_w_m2(
    ghi_w_m2: np.ndarray,
    tilt_deg: float | np.ndarray,
    azimuth_deg: float | np.ndarray,
    sun: SolarPosition | None = None,
    dni_dhi: tuple[np.ndarray, np.ndarray] | None = None,
    albedo: float = ALBEDO,
) -> np.ndarray:
    """Effective irradiance on one plane (T,) W/m² (Perez, ASHRAE IAM on the direct part); the
    plane may be given per step (arrays of T tilts and azimuths)."""
    import pvlib

    sun = sun or solar_position(n_steps=len(ghi_w_m2))
    dni, dhi = dni_dhi if dni_dhi is not None else decompose_ghi(ghi_w_m2, sun)
    ghi = np.clip(np.asarray(ghi_w_m2, float), 0.0, None)
    # pvlib.irradiance.get_total_irradiance(..., model="perez") call by call, so that the angle
    # of incidence it computes is the one the incidence-angle loss reads (not computed twice)
    irr = pvlib.irradiance
    sky = irr.get_sky_diffuse(
        tilt_deg,
        azimuth_deg,
        sun.zenith_deg,
        sun.azimuth_deg,
        dni,
        ghi,
        dhi,
        dni_extra=sun.dni_extra_w_m2,
        airmass=sun.airmass,
        model="perez",
    )
    ground = irr.get_ground_diffuse(tilt_deg, ghi, albedo)
    aoi = irr.aoi(tilt_deg, azimuth_deg, sun.zenith_deg, sun.azimuth_deg)
    poa = irr.poa_components(aoi, dni, sky, ground)
    iam = pvlib.iam.ashrae(aoi, IAM_B0)
    direct = np.nan_to_num(np.asarray(poa["poa_direct"], float)) * np.nan_to_num(iam)
    diffuse = np.nan_to_num(np.asarray(poa["poa_diffuse"], float))
    return np.clip(direct + diffuse, 0.0, None)


def dc_power_per_kwp(
    poa_w_m2: np.ndarray, t_out_c: np.ndarray, model: PvModel | None = None
) -> np.ndarray:
    """PVWatts DC output per kWp (kW/kWp) with PVsyst cell temperature and system losses
    (``model``: the scenario's numbers; default this module's constants)."""
    import pvlib

    u_c = CELL_U_C if model is None else model.cell_u_c
    gamma = GAMMA_PDC_PER_K if model is None else model.gamma_pdc_per_k
    loss = SYSTEM_LOSS if model is None else model.system_loss
    t_cell = pvlib.temperature.pvsyst_cell(poa_w_m2, t_out_c, WIND_M_S, u_c=u_c, u_v=0.0)
    pdc = pvlib.pvsystem.pvwatts_dc(poa_w_m2, t_cell, 1.0, gamma)
    return np.clip(pdc, 0.0, None) * (1.0 - loss)


def inverter_ac_kw(pdc_kw: np.ndarray, p_ac_max_kw: np.ndarray | float) -> np.ndarray:
    """PVWatts inverter: part-load efficiency curve, clipped at the AC rating ``p_ac_max_kw``."""
    import pvlib

    pdc0 = np.asarray(p_ac_max_kw, float) / INVERTER_ETA_NOM
    with np.errstate(divide="ignore", invalid="ignore"):
        pac = pvlib.inverter.pvwatts(pdc_kw, pdc0, INVERTER_ETA_NOM)
    return np.clip(np.nan_to_num(pac), 0.0, None)


@dataclass(frozen=True)
class Roofs:
    """Each household's PV arrays (H,): two planes at most (the second one for east/west
    splits); ``share2`` of the kWp sits on plane 2."""

    tilt_deg: np.ndarray
    azimuth_deg: np.ndarray
    tilt2_deg: np.ndarray
    azimuth2_deg: np.ndarray
    share2: np.ndarray
    dc_ac_ratio: np.ndarray


def draw_roofs(
    rng: np.random.Generator,
    n: int,
    share_flat: float = 0.3,
    share_flat_east_west: float = 0.5,
    pitched_tilt_deg: tuple[float, float] = (30.0, 45.0),
    pitched_azimuth_sd_deg: float = 50.0,
    flat_tilt_deg: tuple[float, float] = (10.0, 15.0),
    dc_ac_ratio: tuple[float, float] = (1.0, 1.3),
) -> Roofs:
    """Draw roof orientations and inverter sizing (see the module docstring for the mix;
    :func:`twin.population.draw_roofs` draws them for a fleet, from the scenario)."""
    from twin.population import draw_roofs as draw

    a = draw(
        rng,
        n,
        share_flat,
        share_flat_east_west,
        pitched_tilt_deg,
        pitched_azimuth_sd_deg,
        flat_tilt_deg,
        dc_ac_ratio,
    )
    return Roofs(**{k.removeprefix("pv_"): v for k, v in a.items()})


def roofs_of(fleet: Fleet) -> Roofs:
    """The fleet's PV roofs."""
    return Roofs(
        tilt_deg=fleet.pv_tilt_deg,
        azimuth_deg=fleet.pv_azimuth_deg,
        tilt2_deg=fleet.pv_tilt2_deg,
        azimuth2_deg=fleet.pv_azimuth2_deg,
        share2=fleet.pv_share2,
        dc_ac_ratio=fleet.pv_dc_ac_ratio,
    )


#: Steps x planes evaluated in one call of pvlib (one call per plane cost ~1 ms of Python each
#: on the short horizons a forecast issue asks for; blocks bound the temporaries of a year)
PLANE_BLOCK_CELLS = 200_000


def _per_kwp_of_planes(
    ghi: np.ndarray,
    t_out: np.ndarray,
    planes: np.ndarray,
    sun: SolarPosition,
    dni_dhi: tuple[np.ndarray, np.ndarray],
    albedo: float,
    model: PvModel | None,
) -> np.ndarray:
    """``(T, P)`` DC output per kWp of every plane ``planes`` ``(P, 2)`` (tilt, azimuth):
    every (step, plane) pair in one elementwise pvlib evaluation, a block of steps at a time
    (the same numbers as one call per plane)."""
    n_t, n_p = len(ghi), len(planes)
    out = np.empty((n_t, n_p))
    step = max(PLANE_BLOCK_CELLS // max(n_p, 1), 1)
    dni, dhi = dni_dhi
    for a in range(0, n_t, step):
        b = min(a + step, n_t)
        m = b - a

        def rep(x: np.ndarray, a: int = a, b: int = b) -> np.ndarray:
            return np.repeat(np.asarray(x)[a:b], n_p)

        block_sun = SolarPosition(
            zenith_deg=rep(sun.zenith_deg),
            azimuth_deg=rep(sun.azimuth_deg),
            dni_extra_w_m2=rep(sun.dni_extra_w_m2),
            airmass=rep(sun.airmass),
            day_of_year=rep(sun.day_of_year),
        )
        poa = plane_of_array_w_m2(
            rep(ghi),
            np.tile(planes[:, 0].astype(float), m),
            np.tile(planes[:, 1].astype(float), m),
            block_sun,
            (rep(dni), rep(dhi)),
            albedo,
        )
        out[a:b] = dc_power_per_kwp(poa.reshape(m, n_p), t_out[a:b, None], model)
    return out


#: Days of the year whose planes' sun geometry a :class:`_PlaneGeometry` keeps (a forecast
#: issue spans at most 8 days plus the last day of the window its look-ahead repeats)
GEOMETRY_DAYS_KEPT = 12


class _PlaneGeometry:
    """The sun geometry of a set of planes at reference-year rows: what
    :func:`plane_of_array_w_m2` computes from the sun's position and the planes alone (not
    from the irradiance), made once per day of the year (96 rows) and kept for the latest
    :data:`GEOMETRY_DAYS_KEPT` days (a run's forecast issues ask for the same rows again and
    again: 3,549 issues a year). Every value is computed elementwise as
    :func:`plane_of_array_w_m2` computes it (the same numpy functions on the same inputs laid
    out the same way: step-major, planes tiled), so the output is the same, bit for bit."""

    def __init__(self, site: tuple[float, float, bool], planes: np.ndarray) -> None:
        self.site = site
        self.tilt = planes[:, 0].astype(float)
        self.azimuth = planes[:, 1].astype(float)
        self._days: dict[int, dict[str, np.ndarray]] = {}
        self.plane: dict[str, np.ndarray] = {}  # per plane (P,), made with the first day

    def _day(self, d: int) -> dict[str, np.ndarray]:
        got = self._days.pop(d, None)
        if got is None:
            got = self._compute(d)
        self._days[d] = got  # the latest used last
        while len(self._days) > GEOMETRY_DAYS_KEPT:
            self._days.pop(next(iter(self._days)))
        return got

    def _compute(self, d: int) -> dict[str, np.ndarray]:
        import pvlib

        from twin.timegrid import STEPS_PER_DAY

        lat, lon, solar_time = self.site
        sun = solar_position(lat, lon, solar_time=solar_time)
        r = d * STEPS_PER_DAY + np.arange(STEPS_PER_DAY)
        r = r[r < len(sun.zenith_deg)]
        m, n_p = len(r), len(self.tilt)
        zen, azi = np.repeat(sun.zenith_deg[r], n_p), np.repeat(sun.azimuth_deg[r], n_p)
        tilt, azimuth = np.tile(self.tilt, m), np.tile(self.azimuth, m)
        irr, tools = pvlib.irradiance, pvlib.tools
        with np.errstate(all="ignore"):  # the night's rows too (never read: no light)
            projection = irr.aoi_projection(tilt, azimuth, zen, azi)
            aoi = np.rad2deg(np.arccos(projection))  # pvlib.irradiance.aoi
            iam = pvlib.iam.ashrae(aoi, IAM_B0)
            grid = {
                # (step, plane): perez's A, poa_components' cos(aoi), the IAM
                "A": np.maximum(projection, 0),
                "cos_aoi": np.cos(np.radians(aoi)),
                "iam": np.nan_to_num(iam),
            }
            z = np.radians(zen)
            step = {  # per step (of the steps' column, computed as laid out above)
                "z": z,
                "kz3": 1.041 * (z**3),  # perez's kappa * z ** 3
                "B": np.maximum(tools.cosd(zen), tools.cosd(85)),
            }
            plane = {  # per plane: perez's tilt terms, get_ground_diffuse's (1 - cos(tilt))
                "cos_tilt1": 1 + tools.cosd(tilt),
                "sin_tilt": tools.sind(tilt),
                "ground": 1 - np.cos(np.radians(tilt)),
            }
        out = {k: v.reshape(m, n_p) for k, v in grid.items()}
        out |= {k: v.reshape(m, n_p)[:, 0].copy() for k, v in step.items()}
        self.plane = {k: v.reshape(m, n_p)[0].copy() for k, v in plane.items()}
        return out

    def at(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Every quantity ``(len(rows), P)`` at reference-year ``rows``."""
        from twin.timegrid import STEPS_PER_DAY

        days, pos = np.divmod(np.asarray(rows, dtype=np.int64), STEPS_PER_DAY)
        uniq, inv = np.unique(days, return_inverse=True)
        parts = [self._day(int(d)) for d in uniq]
        if len(parts) == 1:
            return {k: v[pos] for k, v in parts[0].items()}
        # the days' rows one after the other: row `pos` of the i-th day at 96 i + pos
        flat = inv.reshape(-1) * STEPS_PER_DAY + pos
        return {k: np.concatenate([_pad_day(p[k]) for p in parts])[flat] for k in parts[0]}


def _pad_day(a: np.ndarray) -> np.ndarray:
    """A day's rows, padded to a whole day (the year's last day may be short: never read)."""
    from twin.timegrid import STEPS_PER_DAY

    if len(a) == STEPS_PER_DAY:
        return a
    return np.concatenate([a, np.zeros((STEPS_PER_DAY - len(a), *a.shape[1:]))])


@functools.lru_cache(maxsize=4)
def _plane_geometry(site: tuple[float, float, bool], planes_key: bytes, n_p: int) -> _PlaneGeometry:
    """The geometry cache of a set of planes at a site (kept for the latest few sets: a run's
    households' forecasters ask for the same planes)."""
    planes = np.frombuffer(planes_key, dtype=float).reshape(n_p, 2)
    return _PlaneGeometry(site, planes)


@functools.cache
def _perez_coefficients() -> tuple[np.ndarray, np.ndarray]:
    """pvlib's Perez coefficients (allsitescomposite1990) with the row of NaNs its ``perez``
    appends for invalid clearness (bin -1)."""
    import pvlib

    f1c, f2c = pvlib.irradiance._get_perez_coefficients("allsitescomposite1990")
    nans = np.array([np.nan, np.nan, np.nan])
    return np.vstack((f1c, nans)), np.vstack((f2c, nans))


def _per_kwp_of_planes_cached(
    ghi: np.ndarray,
    t_out: np.ndarray,
    planes: np.ndarray,
    sun: SolarPosition,
    dni_dhi: tuple[np.ndarray, np.ndarray],
    albedo: float,
    model: PvModel | None,
) -> np.ndarray:
    """:func:`_per_kwp_of_planes` with the sun geometry read from :class:`_PlaneGeometry`
    (``sun`` cut from a year at known rows): the same operations on the irradiance, in the same
    order, per (step, plane), so the same numbers bit for bit (tests/test_devices_pv.py); a
    block of steps at a time (the temporaries of a year)."""
    planes = np.ascontiguousarray(planes, dtype=float)
    cache = _plane_geometry(sun.site, planes.tobytes(), len(planes))
    n_t, n_p = len(ghi), len(planes)
    step = max(PLANE_BLOCK_CELLS // max(n_p, 1), 1)
    if n_t <= step:
        return _per_kwp_block(ghi, t_out, cache, sun, dni_dhi, albedo, model)
    out = np.empty((n_t, n_p))
    for a in range(0, n_t, step):
        at = slice(a, min(a + step, n_t))
        dd = (dni_dhi[0][at], dni_dhi[1][at])
        out[at] = _per_kwp_block(ghi[at], t_out[at], cache, _sun_at(sun, at), dd, albedo, model)
    return out


def _per_kwp_block(
    ghi: np.ndarray,
    t_out: np.ndarray,
    cache: _PlaneGeometry,
    sun: SolarPosition,
    dni_dhi: tuple[np.ndarray, np.ndarray],
    albedo: float,
    model: PvModel | None,
) -> np.ndarray:
    """One block of :func:`_per_kwp_of_planes_cached`."""
    geo = cache.at(sun.rows)
    pl = cache.plane
    dni, dhi = dni_dhi
    col = np.newaxis
    # pvlib.irradiance.perez (allsitescomposite1990): its clearness bins and coefficients
    # depend on the step alone
    delta = dhi * sun.airmass / sun.dni_extra_w_m2
    z, kz3 = geo["z"], geo["kz3"]
    with np.errstate(invalid="ignore", divide="ignore"):
        eps = (np.divide(dhi + dni, dhi) + kz3) / (1 + kz3)
    ebin = np.digitize(eps, (0.0, 1.065, 1.23, 1.5, 1.95, 2.8, 4.5, 6.2))
    ebin = np.array(ebin)
    ebin[np.isnan(eps)] = 0
    ebin -= 1
    f1c, f2c = _perez_coefficients()
    f1 = f1c[ebin, 0] + f1c[ebin, 1] * delta + f1c[ebin, 2] * z
    f1 = np.maximum(f1, 0)
    f2 = f2c[ebin, 0] + f2c[ebin, 1] * delta + f2c[ebin, 2] * z
    term1 = (0.5 * (1 - f1))[:, col] * pl["cos_tilt1"]
    term2 = f1[:, col] * geo["A"] / geo["B"][:, col]
    term3 = f2[:, col] * pl["sin_tilt"]
    sky = np.maximum(dhi[:, col] * (term1 + term2 + term3), 0)
    nan_am = np.isnan(sun.airmass)
    if nan_am.any():
        sky = np.where(nan_am[:, col], 0, sky)
    # get_ground_diffuse, poa_components, the IAM (plane_of_array_w_m2)
    g = np.clip(np.asarray(ghi, float), 0.0, None)
    ground = (g * albedo)[:, col] * pl["ground"] * 0.5
    poa_direct = np.maximum(dni[:, col] * geo["cos_aoi"], 0)
    poa_diffuse = sky + ground
    direct = np.nan_to_num(poa_direct) * geo["iam"]
    poa = np.clip(direct + np.nan_to_num(poa_diffuse), 0.0, None)
    return dc_power_per_kwp(poa, t_out[:, col], model)


@functools.lru_cache(maxsize=8)
def _distinct_planes(planes_key: bytes, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(planes, axis=0, return_inverse=True)`` of ``(n, 2)`` (tilt, azimuth)
    planes given as bytes, once per set of planes (a plan's every forecast asks again)."""
    planes = np.frombuffer(planes_key, dtype=float).reshape(n, 2)
    unique, inverse = np.unique(planes, axis=0, return_inverse=True)
    unique.setflags(write=False)
    inverse = inverse.reshape(-1)
    inverse.setflags(write=False)
    return unique, inverse


def pv_ac_power_kw(
    ghi_w_m2: np.ndarray,
    t_out_c: np.ndarray,
    kwp: np.ndarray,
    roofs: Roofs,
    sun: SolarPosition | None = None,
    ghi_scale: float = 1.0,
    model: PvModel | None = None,
) -> np.ndarray:
    """AC output of every household's PV (T, H) kW for weather (T,) and ``kwp`` (H,) (0
    where there is none); ``ghi_scale`` scales the irradiance (see the module docstring);
    ``sun``: the sun at the weather's steps (default: a year from 1 January in true solar
    time, as TRY2010 is); ``model``: the scenario's PV numbers. Each distinct plane of the
    households with PV is evaluated once."""
    ghi = np.asarray(ghi_w_m2, float) * ghi_scale
    t_out = np.asarray(t_out_c, float)
    sun = sun or solar_position(n_steps=len(ghi))
    kwp = np.asarray(kwp, float)
    out = np.zeros((len(ghi), len(kwp)))
    on = np.flatnonzero(kwp > 0)
    if not len(on):
        return out
    dni_dhi = decompose_ghi(ghi, sun)
    albedo = ALBEDO if model is None else model.albedo
    planes = np.concatenate(
        [
            np.stack([roofs.tilt_deg[on], roofs.azimuth_deg[on]], 1),
            np.stack([roofs.tilt2_deg[on], roofs.azimuth2_deg[on]], 1),
        ]
    )
    planes = np.ascontiguousarray(planes, dtype=float)
    unique, inverse = _distinct_planes(planes.tobytes(), len(planes))
    # without irradiance every plane's output is 0 (no direct, diffuse or reflected light):
    # the planes are evaluated at the steps with light only (about half of them)
    lit = np.flatnonzero(ghi > 0.0)
    per_kwp = np.zeros((len(ghi), len(unique)))
    if len(lit):
        dni, dhi = dni_dhi
        cached = sun.rows is not None and sun.site is not None
        per_kwp[lit] = (_per_kwp_of_planes_cached if cached else _per_kwp_of_planes)(
            ghi[lit],
            t_out[lit],
            unique,
            _sun_at(sun, lit),
            (dni[lit], dhi[lit]),
            albedo,
            model,
        )
    n, k, s2 = len(on), kwp[on], roofs.share2[on]
    pdc = per_kwp[:, inverse[:n]] * (k * (1.0 - s2)) + per_kwp[:, inverse[n:]] * (k * s2)
    out[:, on] = inverter_ac_kw(pdc, k / roofs.dc_ac_ratio[on])
    return out


def annual_yield_kwh_per_kwp(p_ac_kw: np.ndarray, kwp: np.ndarray) -> np.ndarray:
    """Annual specific yield (H,) kWh/kWp of a year of AC output (T, H)."""
    return p_ac_kw.sum(axis=0) * DT_H / np.asarray(kwp, float)
