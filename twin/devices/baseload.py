"""Household base load (appliances and lighting): a stochastic 15-minute profile per household.

Why this generator
------------------
* **richardsonpy** (CREST model) makes 1-minute profiles from occupancy, but takes ~7 s per
  household-year in pure Python, is calibrated on UK households and does not hit the annual
  energy asked for unless normalised (MEASURED.md). Too slow to draw a feeder per seed.
* **SimBench's H0 profiles** have real spikes, but the whole SimBench data set holds only six
  H0 columns (H0-A, -B, -C, -G, -L and H0-H, which is flat: peak/mean 1.5), so ~20 households
  of a feeder share each profile step for step and their coincident peak is overstated; they
  follow the 2016 calendar (see :func:`remap_to_reference_year` for using them anyway).
* Used here: **BDEW H25** (the 2025 German standard household profile, from demandlib, with
  Dutch public holidays) gives the *expected* load of a household for every 15 minutes of the
  simulated calendar (season, weekday, Saturday, Sunday/holiday). Each household's actual load
  is an always-on part (fridge, standby) plus **appliance events** (kettle, hob, oven, washing
  machine, dishwasher, dryer, small appliances, lighting/media blocks) drawn as Poisson events
  whose rate follows the household's share of H25, each with the 15-minute power shape of the
  appliance. The mean over many households is H25 (slightly smoothed by the appliance shapes);
  single households have the spikes and randomness of real ones; everything is vectorised
  (100 household-years in ~1-2 s) and seeded.

Annual consumption: household size drawn from CBS 37975 (1 Jan 2024: 39.9 % one person,
32.3 % two, 11.6 % three, 11.4 % four, 4.8 % five or more); the mean electricity delivery by
size from CBS 85140NED (2020: one person 1,800 kWh, median 1,580; three persons 3,370 kWh,
median 3,140; two, four and five-plus interpolated by the power law through those two,
E ∝ persons^0.571), scaled so the population mean is CBS 81528NED's 2,550 kWh (2024, gross);
within a size class log-normal with sigma 0.45 (from CBS's median/mean ratios: 0.51 for one
person, 0.37 for three).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from twin.timegrid import DT_H, REFERENCE_YEAR, STEPS_PER_DAY, STEPS_PER_YEAR

# --- annual consumption ------------------------------------------------------------------------
HOUSEHOLD_SIZE_SHARES = np.array([3_340_560, 2_706_372, 968_419, 953_582, 405_471], float)
HOUSEHOLD_SIZE_SHARES /= HOUSEHOLD_SIZE_SHARES.sum()  # CBS 37975, 1 Jan 2024: 1, 2, 3, 4, 5+
PERSONS_5_PLUS = 5.4  # mean size of the 5+ class (assumption)
KWH_1_PERSON, KWH_3_PERSONS = 1_800.0, 3_370.0  # CBS 85140NED, 2020, mean delivery
SIZE_EXPONENT = np.log(KWH_3_PERSONS / KWH_1_PERSON) / np.log(3.0)  # 0.571
MEAN_ANNUAL_KWH = 2_550.0  # CBS 81528NED, 2024, gross delivery per dwelling
ANNUAL_KWH_SIGMA = 0.45  # log-normal spread within a size class (CBS median/mean, derived)
REACTIVE_PER_ACTIVE = 0.30  # q/p of SimBench's H0 profiles (0.24-0.32; cos phi ~0.96)

# --- always-on part and appliance events (assumptions from typical appliance ratings) --------
BASE_FRACTION = (0.25, 0.45)  # share of annual energy that is always on (fridge, standby)
BASE_NOISE = 0.2  # relative 15-min fluctuation of the always-on part (fridge cycling)
CHRONOTYPE_STEPS_SD = 2.0  # a household's habitual shift of its day (15-min steps)
EVENT_AMPLITUDE_SIGMA = 0.2  # log-normal spread of one event's power
DAY_FACTOR_SIGMA_COMMON = 0.07  # day-to-day factor shared by all households (weather, occasions)
DAY_FACTOR_SIGMA_HOUSEHOLD = 0.25  # a household's own busy and quiet days
#: name -> (share of event energy, 15-minute mean power in kW over the event's steps, whether a
#: household runs at most one at a time)
APPLIANCES: dict[str, tuple[float, tuple[float, ...], bool]] = {
    "kettle_coffee": (0.06, (0.5,), True),  # 2 kW for ~4 min
    "hob": (0.14, (1.0, 1.0), True),  # hob zones pulse: 15-min means below their rating
    "oven": (0.06, (1.5, 0.8, 0.8, 0.6), True),
    "washing_machine": (0.09, (1.4, 0.3, 0.2, 0.3, 0.2), True),
    "dishwasher": (0.11, (1.3, 0.1, 0.1, 1.1, 0.1, 0.1), True),
    "tumble_dryer": (0.07, (1.4, 1.4, 1.4, 0.8), True),
    "small_appliances": (0.07, (0.8,), True),  # microwave, vacuum cleaner, hair dryer
    "lighting_media": (0.40, (0.15,) * 8, False),  # 2-hour blocks of lights, TV, computers
}


@dataclass(frozen=True)
class BaseLoadParams:
    """The generator's numbers (the scenario's ``base_load`` section; defaults: this module's
    constants, which are the scenario's defaults)."""

    mean_annual_kwh: float = MEAN_ANNUAL_KWH
    size_shares: tuple[float, ...] = tuple(HOUSEHOLD_SIZE_SHARES.tolist())
    size_exponent: float = float(SIZE_EXPONENT)
    annual_kwh_sigma: float = ANNUAL_KWH_SIGMA
    base_fraction: tuple[float, float] = BASE_FRACTION
    day_sigma_common: float = DAY_FACTOR_SIGMA_COMMON
    day_sigma_household: float = DAY_FACTOR_SIGMA_HOUSEHOLD
    chronotype_steps_sd: float = CHRONOTYPE_STEPS_SD
    reactive_per_active: float = REACTIVE_PER_ACTIVE

    @classmethod
    def from_section(cls, sec: dict) -> BaseLoadParams:
        """From a scenario's ``base_load`` section (``{field: Param}``)."""
        keys = ("1", "2", "3", "4", "5_plus")
        shares = np.array([sec[f"household_share_{k}"].value for k in keys])
        bf = sec["base_fraction"]
        return cls(
            mean_annual_kwh=sec["mean_annual_kwh"].value,
            size_shares=tuple((shares / shares.sum()).tolist()),
            size_exponent=sec["kwh_by_size_exponent"].value,
            annual_kwh_sigma=sec["annual_kwh_sigma"].value,
            base_fraction=(bf.low, bf.high),
            day_sigma_common=sec["day_factor_sigma_common"].value,
            day_sigma_household=sec["day_factor_sigma_household"].value,
            chronotype_steps_sd=sec["chronotype_shift_h_sd"].value * 4.0,
            reactive_per_active=sec["reactive_per_active"].value,
        )


DEFAULT_PARAMS = BaseLoadParams()


def draw_household_size(
    rng: np.random.Generator, n: int, params: BaseLoadParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Persons per household (H,) int in 1..5 (5 = five or more), CBS 37975 shares."""
    return rng.choice(np.arange(1, 6), size=n, p=np.asarray(params.size_shares))


def mean_annual_kwh_by_size(
    mean_kwh: float = MEAN_ANNUAL_KWH, params: BaseLoadParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Mean annual kWh of households with 1..5+ persons (5,), scaled to a population mean."""
    persons = np.array([1.0, 2.0, 3.0, 4.0, PERSONS_5_PLUS])
    raw = KWH_1_PERSON * persons**params.size_exponent
    return raw * mean_kwh / float(raw @ np.asarray(params.size_shares))


def draw_annual_kwh(
    rng: np.random.Generator,
    persons: np.ndarray,
    mean_kwh: float = MEAN_ANNUAL_KWH,
    sigma: float = ANNUAL_KWH_SIGMA,
    params: BaseLoadParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Annual base-load energy per household (H,) kWh: log-normal around its size's mean."""
    mean = mean_annual_kwh_by_size(mean_kwh, params)[np.asarray(persons) - 1]
    return mean * rng.lognormal(-0.5 * sigma**2, sigma, len(mean))


# --- calendar ----------------------------------------------------------------------------------
def dutch_holidays(year: int) -> list[dt.date]:
    """Dutch public holidays (treated like Sundays): New Year, Easter Sunday and Monday, King's
    Day (27 Apr, 26 Apr when the 27th is a Sunday), Liberation Day in lustrum years, Ascension,
    Whit Sunday and Monday, Christmas Day and Boxing Day."""
    from dateutil.easter import easter

    e = easter(year)
    kings = dt.date(year, 4, 27)
    if kings.weekday() == 6:
        kings = dt.date(year, 4, 26)
    days = [
        dt.date(year, 1, 1),
        e,
        e + dt.timedelta(days=1),
        kings,
        e + dt.timedelta(days=39),
        e + dt.timedelta(days=49),
        e + dt.timedelta(days=50),
        dt.date(year, 12, 25),
        dt.date(year, 12, 26),
    ]
    if year % 5 == 0:
        days.append(dt.date(year, 5, 5))
    return sorted(days)


def reference_times(year: int = REFERENCE_YEAR) -> pd.DatetimeIndex:
    """Start of every 15-minute step of a (non-leap) year."""
    return pd.date_range(f"{year}-01-01", periods=STEPS_PER_YEAR, freq="15min")


@functools.lru_cache(maxsize=2)
def expected_shape(year: int = REFERENCE_YEAR) -> np.ndarray:
    """BDEW H25 household profile for ``year`` with Dutch holidays, as a multiple of its annual
    mean power (T,) (mean 1.0): weekdays are ``year``'s own."""
    from demandlib.bdew import H25

    times = reference_times(year)
    h25 = H25(times, holidays={d: "holiday" for d in dutch_holidays(year)}).to_numpy(float)
    shape = h25 / h25.mean()
    shape.setflags(write=False)
    return shape


def calendar_day_map(source_year: int, target_year: int = REFERENCE_YEAR) -> np.ndarray:
    """For every day of ``target_year`` (365,), the day of ``source_year`` with the same weekday
    nearest to the same day of the year (at most 3 days away; up to 6 in the first and last week)."""
    n_src = 366 if pd.Timestamp(f"{source_year}-12-31").dayofyear == 366 else 365
    src_wd0 = pd.Timestamp(f"{source_year}-01-01").dayofweek
    tgt_wd0 = pd.Timestamp(f"{target_year}-01-01").dayofweek
    d = np.arange(365)
    # shift s with (src_wd0 + d + s) % 7 == (tgt_wd0 + d) % 7, taken in -3..3
    s = (tgt_wd0 - src_wd0 + 3) % 7 - 3
    src = d + s
    src = np.where(src < 0, src + 7, src)
    src = np.where(src >= n_src, src - 7, src)
    return src


def remap_to_reference_year(profile: np.ndarray, source_year: int) -> np.ndarray:
    """A year-long 15-minute profile of ``source_year`` (e.g. SimBench's 2016: 35,136 rows) on
    the reference year's calendar (35,040 rows): every day is taken from the source day with the
    same weekday (:func:`calendar_day_map`). Holidays of either year are not moved."""
    profile = np.asarray(profile)
    days = profile.reshape(-1, STEPS_PER_DAY, *profile.shape[1:])
    return days[calendar_day_map(source_year)].reshape(STEPS_PER_YEAR, *profile.shape[1:])


# --- the generator -----------------------------------------------------------------------------
def _roll_add(out: np.ndarray, a: np.ndarray, kernel: tuple[float, ...]) -> None:
    """out[t + l] += a[t] * kernel[l] (periodic over the year)."""
    for lag, k in enumerate(kernel):
        if lag == 0:
            out += a * k
        else:
            out[lag:] += a[:-lag] * k
            out[:lag] += a[-lag:] * k


def draw_day_factors(
    rng: np.random.Generator, params: BaseLoadParams = DEFAULT_PARAMS
) -> np.ndarray:
    """``(365,)`` the busy-and-quiet-day factor shared by all households of a feeder."""
    s_c = params.day_sigma_common
    return rng.lognormal(-0.5 * s_c**2, s_c, STEPS_PER_YEAR // STEPS_PER_DAY)


def draw_base_load(
    rng: np.random.Generator,
    annual_kwh: np.ndarray,
    year: int = REFERENCE_YEAR,
    exact_energy: bool = True,
    params: BaseLoadParams = DEFAULT_PARAMS,
    day_common: np.ndarray | None = None,
) -> np.ndarray:
    """Draw each household's base load for the whole reference year: ``p_base_kw`` (T, H).

    ``annual_kwh`` (H,) is each household's energy over the year; with ``exact_energy`` the
    drawn profile is rescaled to hit it exactly (otherwise it is met in expectation).
    ``day_common`` (365,): the day factor shared by the feeder's households
    (:func:`draw_day_factors`; drawn from ``rng`` if None, i.e. shared by these households).
    """
    e_kwh = np.asarray(annual_kwh, float)
    n = len(e_kwh)
    shape = expected_shape(year)
    mean_kw = e_kwh / (STEPS_PER_YEAR * DT_H)
    f_base = rng.uniform(*params.base_fraction, n)
    base = mean_kw * f_base
    p = base * np.clip(1.0 + BASE_NOISE * rng.standard_normal((STEPS_PER_YEAR, n)), 0.0, None)
    # each household's day, shifted by its habit; event power = expected minus always-on
    shift = np.round(rng.normal(0.0, params.chronotype_steps_sd, n)).astype(int)
    idx = (np.arange(STEPS_PER_YEAR)[:, None] - shift[None, :]) % STEPS_PER_YEAR
    p_event_kw = np.clip(shape[idx] - f_base, 0.0, None) * mean_kw  # (T, H) expected kW
    # busy and quiet days: one factor per day for everyone, one per household and day
    n_days = STEPS_PER_YEAR // STEPS_PER_DAY
    s_h = params.day_sigma_household
    common = draw_day_factors(rng, params) if day_common is None else np.asarray(day_common)
    day = common[:, None] * rng.lognormal(-0.5 * s_h**2, s_h, (n_days, n))
    p_event_kw *= np.repeat(day, STEPS_PER_DAY, axis=0)
    mu_amp = -0.5 * EVENT_AMPLITUDE_SIGMA**2
    for share, kernel, single in APPLIANCES.values():
        e_event_kwh = sum(kernel) * DT_H
        centre = int(round(np.average(np.arange(len(kernel)), weights=kernel)))
        rate = np.roll(p_event_kw, -centre, axis=0) * (share * DT_H / e_event_kwh)
        if single:  # at most one at a time: P(at least one Poisson event) = 1 - exp(-rate)
            counts = (rng.random(rate.shape) < -np.expm1(-rate)).astype(float)
        else:
            counts = rng.poisson(rate).astype(float)
        on = counts > 0  # each event's power drawn only where there is one (sparse)
        amp = np.zeros_like(counts)
        amp[on] = counts[on] * rng.lognormal(mu_amp, EVENT_AMPLITUDE_SIGMA, int(on.sum()))
        _roll_add(p, amp, kernel)
    if exact_energy:
        p *= e_kwh / (p.sum(axis=0) * DT_H)
    return p


def reactive_power_kvar(p_base_kw: np.ndarray, ratio: float = REACTIVE_PER_ACTIVE) -> np.ndarray:
    """Base-load reactive power at SimBench's H0 q/p ratio."""
    return p_base_kw * ratio


def coincident_peak_per_household_kw(
    p_kw: np.ndarray, sizes: list[int] | np.ndarray, rng: np.random.Generator, draws: int = 20
) -> np.ndarray:
    """After-diversity maximum demand: mean over ``draws`` random groups of ``n`` households of
    the group's peak 15-minute load divided by ``n``, for each ``n`` in ``sizes`` -> (len(sizes),)."""
    n_h = p_kw.shape[1]
    out = []
    for n in sizes:
        peaks = [
            p_kw[:, rng.choice(n_h, n, replace=False)].sum(axis=1).max() / n for _ in range(draws)
        ]
        out.append(float(np.mean(peaks)))
    return np.array(out)
