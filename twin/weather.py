"""Weather for a run: outdoor temperature and global horizontal irradiance, 15-minute steps.

Sources
-------
* ``try2010`` (default): the German Weather Service's test reference years TRY2010 that ship in
  the ``demandlib`` package (15 climate regions, hourly, "mean year" of 1988-2007). Region 5
  (Essen, "Niederrheinisch-westfälische Bucht und Emsland") borders the Netherlands: monthly
  means 3.1 ... 18.2 °C, 960 kWh/m² global horizontal irradiation a year, minimum -8.9 °C; De
  Bilt 1981-2010 has an annual mean of 10.1 °C (CBS 80182ned), region 5 has 10.4 °C.
* ``csv``: a user file (``weather.csv``, optionally gzip-compressed ``.csv.gz``) with columns
  ``time``, ``t_out_c`` (°C) and ``ghi_w_m2`` (W/m²), hourly or finer, one whole year starting
  on any date. It is read **by timestamp**:

  - times are ISO 8601 (``2025-07-01T12:00``); with a UTC offset (``+02:00``, ``Z``) they are
    converted to twin's clock, UTC+01:00 without daylight saving
    (:data:`LOCAL_STANDARD_OFFSET`); without one they are read as that clock already. A row is
    the mean of the interval that starts at its time (as twin's steps are), so an hourly file
    of the TRY2010 values stamped 00:00, 01:00, ... gives exactly the ``try2010`` weather;
  - each row goes to its calendar day and time of day in the reference year
    (:mod:`twin.timegrid`), whatever the file's year and start: a July-June file puts its
    December into December. Feb 29 is dropped (the reference year has 365 days); a file longer
    than a year uses its first 365 days (with a warning); finer than 15 minutes is averaged
    per quarter-hour;
  - repaired with a one-line warning (logger ``twin``): rows out of time order (sorted),
    repeated rows with equal values (dropped), gaps of missing rows or empty/NaN values up to
    :data:`MAX_FILLED_GAP_H` (linear interpolation), negative irradiance down to
    -:data:`GHI_NEGATIVE_TOLERANCE_W_M2` (set to 0);
  - rejected with one line naming the file, the line and the fix: unreadable CSV, missing
    columns, non-ISO or mixed naive/offset times, non-numeric values, coarser than hourly, less
    than a year, one time given twice with different values, longer gaps, kelvin temperatures
    or values outside :data:`T_OUT_RANGE_C`, irradiance in kW/m² or outside -20 ... 1,500 W/m².

  The file name is the weather's ``name`` (shown in the run header).

Resampling to 15 minutes (both sources): temperature is linearly interpolated between the
midpoints of the intervals the values are means of (TRY values are hourly means, placed at the
hour's midpoint); irradiance is held constant within the interval so its energy is conserved
exactly.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin.timegrid import REFERENCE_YEAR, STEPS_PER_DAY, STEPS_PER_HOUR, STEPS_PER_YEAR

log = logging.getLogger("twin")

TRY_HEADER_MARK = "***"


@dataclass(frozen=True)
class Weather:
    """Year-long weather arrays, ``STEPS_PER_YEAR`` rows each."""

    name: str
    t_out_c: np.ndarray
    ghi_w_m2: np.ndarray


def _try_path(region: int) -> Path:
    import demandlib.vdi

    return (
        Path(demandlib.vdi.__file__).parent / "resources_weather" / f"TRY2010_{region:02d}_Jahr.dat"
    )


def read_try2010(region: int = 5) -> pd.DataFrame:
    """Hourly TRY2010 data of one region: ``t_out_c`` and ``ghi_w_m2`` (direct + diffuse)."""
    if not isinstance(region, int) or not 1 <= region <= 15:
        raise TwinError(
            f"weather.region={region!r} is not a TRY2010 region: use 1 to 15 (5 = Essen)"
        )
    path = _try_path(region)
    lines = path.read_text(encoding="latin-1").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith(TRY_HEADER_MARK)) - 1
    skip = [*range(header), header + 1]  # preamble and the "***" marker line
    df = pd.read_csv(path, sep=r"\s+", skiprows=skip, nrows=8760, encoding="latin-1")
    return pd.DataFrame(
        {"t_out_c": df["t"].to_numpy(float), "ghi_w_m2": (df["B"] + df["D"]).to_numpy(float)}
    )


def hourly_to_quarter_hourly(
    t_out_c: np.ndarray, ghi_w_m2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Resample 8,760 hourly means to 35,040 quarter-hours (see module docstring)."""
    n_hours = len(t_out_c)
    hour_mid = np.arange(n_hours) + 0.5
    quarter_mid = (np.arange(n_hours * STEPS_PER_HOUR) + 0.5) / STEPS_PER_HOUR
    # periodic interpolation: the reference year wraps from 31 Dec to 1 Jan
    t_q = np.interp(quarter_mid, hour_mid, t_out_c, period=n_hours)
    ghi_q = np.repeat(ghi_w_m2, STEPS_PER_HOUR)
    return t_q, ghi_q


#: twin's clock: Central European standard time, UTC+01:00 all year (no daylight saving), the
#: clock of the TRY2010 files ("MEZ") and of the reference year's 15-minute steps. Times with a
#: UTC offset are converted to it; times without one are read as already in it.
LOCAL_STANDARD_OFFSET = pd.Timedelta(hours=1)
#: Longest stretch without a valid value (missing rows or empty/NaN cells) that is filled by
#: linear interpolation, with a warning. Over up to 3 h a clear-sky irradiance curve and the
#: daily temperature curve are close to straight lines (a few % of a day's irradiation at most);
#: a longer gap would invent a noticeable part of a day, so it is an error.
MAX_FILLED_GAP_H = 3.0
#: Plausible outdoor air temperatures, °C: wider than any value measured where people live
#: (-67.8 °C Oymyakon, 54 °C Death Valley); anything outside is a unit or sensor error, or a
#: missing-value code such as -999.
T_OUT_RANGE_C = (-60.0, 60.0)
#: A column whose median is above this is in kelvin (273.15 K = 0 °C), not °C.
KELVIN_MEDIAN = 150.0
#: Highest plausible global horizontal irradiance, W/m²: the solar constant is 1,361 W/m² and
#: cloud-edge enhancement at the ground stays below about 1,500 W/m².
GHI_MAX_W_M2 = 1500.0
#: A whole year whose highest irradiance is below this is not W/m² (everywhere outside the
#: polar night the summer noon exceeds 500 W/m²); at or below 1.5 it is kW/m².
GHI_MIN_PEAK_W_M2 = 200.0
GHI_KW_PEAK = 1.5
#: Negative irradiance down to this is a pyranometer's night-time offset (a few W/m²) and is
#: set to 0 with a warning; below it the column is not irradiance.
GHI_NEGATIVE_TOLERANCE_W_M2 = 20.0

_OFFSET = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")


def _warn(label: str, text: str) -> None:
    log.warning("weather file '%s': %s", label, text)


def _fail(label: str, text: str) -> TwinError:
    return TwinError(f"weather file '{label}' {text}")


def _read_table(p: Path, label: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(p, dtype=str, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        text = " ".join(str(exc).split())[:150]
        raise _fail(
            label,
            f"is not a readable CSV ({type(exc).__name__}: {text}): write it as "
            "comma-separated text with a header line time,t_out_c,ghi_w_m2",
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = {"time", "t_out_c", "ghi_w_m2"} - set(df.columns)
    if missing:
        raise _fail(label, f"lacks column(s) {sorted(missing)}: it needs time, t_out_c, ghi_w_m2")
    if not len(df):
        raise _fail(label, "has no rows: give a whole year, hourly or finer")
    return df


def _parse_times(text: pd.Series, label: str) -> tuple[pd.Series, bool]:
    """Local standard time (naive) of each row, and whether the file gave UTC offsets."""
    text = text.fillna("").astype(str).str.strip()
    aware = text.str.contains(_OFFSET)
    if aware.any() and not aware.all():
        i = int(np.flatnonzero(~aware.to_numpy())[0])
        raise _fail(
            label,
            f"mixes times with and without a UTC offset (line {i + 2}: {text.iloc[i]!r}): "
            "give every time with an offset (e.g. 2025-07-01T12:00+02:00) or none (read as "
            "UTC+01:00)",
        )
    times = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    if times.isna().any():
        i = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise _fail(
            label,
            f"has a time that is not ISO 8601 (line {i + 2}: {text.iloc[i]!r}): write "
            "times as YYYY-MM-DDTHH:MM, optionally with a UTC offset (+01:00, Z)",
        )
    # utc=True labels offset-less times as UTC: they are local standard time already
    shift = LOCAL_STANDARD_OFFSET if aware.all() else pd.Timedelta(0)
    return (times + shift).dt.tz_localize(None), bool(aware.all())


def _parse_values(df: pd.DataFrame, col: str, label: str) -> np.ndarray:
    raw = df[col]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(
            label,
            f"has a {col} that is not a number (line {i + 2}: {raw.iloc[i]!r}): use "
            "plain numbers with a decimal point, and leave missing values empty",
        )
    return values.to_numpy(float)


def _year_position(times: pd.Series) -> np.ndarray:
    """Quarter-hour ordinal on a 365-day calendar: day of year and time of day as in the
    reference year (Feb 29 removed beforehand), consecutive years 35,040 apart."""
    ref = pd.to_datetime(
        pd.DataFrame({"year": REFERENCE_YEAR, "month": times.dt.month, "day": times.dt.day})
    )
    doy = (ref - pd.Timestamp(f"{REFERENCE_YEAR}-01-01")).dt.days.to_numpy()
    quarter = (times.dt.hour * 60 + times.dt.minute).to_numpy() // 15
    year = (times.dt.year - times.dt.year.iloc[0]).to_numpy()
    return year * STEPS_PER_YEAR + doy * STEPS_PER_DAY + quarter


def _check_units(label: str, t: np.ndarray, g: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Reject implausible units and values; return irradiance with small negatives set to 0."""
    lo, hi = T_OUT_RANGE_C
    tv = t[~np.isnan(t)]
    if len(tv) and np.nanmedian(tv) > KELVIN_MEDIAN:
        raise _fail(
            label,
            f"has t_out_c with median {np.nanmedian(tv):.1f}: that is kelvin, twin needs "
            "°C: convert the column (subtract 273.15)",
        )
    out = ~np.isnan(t) & ~((t >= lo) & (t <= hi))
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise _fail(
            label,
            f"has {int(out.sum())} t_out_c value(s) outside {lo:g} ... {hi:g} °C (first "
            f"at line {lines[i]}: {t[i]:g}): give °C, and leave missing values empty (not -999)",
        )
    gv = g[~np.isnan(g)]
    if not len(gv):
        raise _fail(label, "has no valid ghi_w_m2 value: fill the column (W/m²)")
    peak = float(gv.max())
    if not peak >= GHI_MIN_PEAK_W_M2:
        hint = (
            "that is kW/m², twin needs W/m²: multiply the column by 1000"
            if 0 < peak <= GHI_KW_PEAK
            else "a year of global horizontal irradiance in W/m² peaks far higher: check the "
            "column's unit (W/m²)"
        )
        raise _fail(label, f"has ghi_w_m2 peaking at {peak:g} over the year: {hint}")
    high = ~np.isnan(g) & (g > GHI_MAX_W_M2)
    low = ~np.isnan(g) & ~(g >= -GHI_NEGATIVE_TOLERANCE_W_M2)
    for bad, what in (
        (high, f"above {GHI_MAX_W_M2:g}"),
        (low, f"below -{GHI_NEGATIVE_TOLERANCE_W_M2:g}"),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise _fail(
                label,
                f"has {int(bad.sum())} ghi_w_m2 value(s) {what} W/m² (first at line "
                f"{lines[i]}: {g[i]:g}): give global horizontal irradiance in W/m², and leave "
                "missing values empty (not -999)",
            )
    neg = ~np.isnan(g) & (g < 0)
    if neg.any():
        _warn(
            label,
            f"set {int(neg.sum())} negative ghi_w_m2 value(s) (down to {g[neg].min():g} "
            "W/m², a sensor's night-time offset) to 0",
        )
        g = np.where(neg, 0.0, g)
    return g


def _fill(
    label: str,
    col: str,
    pos: np.ndarray,
    values: np.ndarray,
    step: int,
    hold: bool,
    shown: list[str],
) -> np.ndarray:
    """Spread one column over the 35,040 quarter-hours of the window (positions ``pos``):
    linear in time (``hold=False``, temperature) or held for one native step (``hold=True``,
    irradiance, energy-conserving); gaps up to MAX_FILLED_GAP_H linear, longer ones an error."""
    n = STEPS_PER_YEAR
    ok = ~np.isnan(values)
    if not ok.any():
        raise _fail(label, f"has no valid {col} value: fill the column")
    p, v = pos[ok], values[ok]
    src = np.flatnonzero(ok)
    missing = np.diff(np.r_[p, p[0] + n]) - step  # quarters without data after each sample
    worst = int(np.argmax(missing))
    max_gap = int(np.clip(missing, 0, None).max())
    if max_gap > MAX_FILLED_GAP_H * STEPS_PER_HOUR:
        after = shown[src[worst]]
        before = (
            shown[src[worst + 1]]
            if worst + 1 < len(src)
            else f"the end of the 365 days from {shown[0]}"
        )
        raise _fail(
            label,
            f"has no valid {col} for {max_gap / STEPS_PER_HOUR:g} h "
            f"({max_gap / STEPS_PER_DAY:.1f} days), from after {after} "
            f"to {before} (missing rows or empty values; at most {MAX_FILLED_GAP_H:g} h are "
            "filled): complete the data there",
        )
    n_gaps = int((missing > 0).sum())
    if n_gaps:
        _warn(
            label,
            f"filled {n_gaps} gap(s) in {col} (missing rows or empty values, longest "
            f"{max_gap / STEPS_PER_HOUR:g} h, first after {shown[src[int(np.flatnonzero(missing > 0)[0])]]}) "
            "by linear interpolation",
        )
    # each sample is the mean of [p, p + run): its native step, or less up to the next sample
    run = np.minimum(step, np.diff(np.r_[p, p[0] + n]))
    grid = np.arange(n)
    if not hold:  # linear between interval midpoints, read at quarter-hour midpoints
        return np.interp(grid + 0.5, p + run / 2, v, period=n)
    cover = (np.repeat(p, run) + _ranges(run)) % n
    out = np.full(n, np.nan)
    out[cover] = np.repeat(v, run)
    have = ~np.isnan(out)
    if not have.all():
        out[~have] = np.interp(grid[~have], grid[have], out[have], period=n)
    return out


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """0..len-1 for each length, concatenated."""
    ends = np.cumsum(lengths)
    return np.arange(int(ends[-1])) - np.repeat(ends - lengths, lengths)


def _read_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """A user's weather file on the reference year's 35,040 quarter-hours (module docstring)."""
    p = Path(path)
    label = str(path)
    if not p.is_file():
        raise TwinError(f"weather file '{label}' not found: give weather.csv an existing CSV path")
    df = _read_table(p, label)
    times, aware = _parse_times(df["time"], label)
    t = _parse_values(df, "t_out_c", label)
    g = _parse_values(df, "ghi_w_m2", label)
    lines = np.arange(len(df)) + 2  # the header is line 1
    text = df["time"].astype(str).str.strip().to_numpy()
    if not aware:
        log.info(
            "weather file '%s': times have no UTC offset, read as twin's clock (UTC+01:00, "
            "no daylight saving)",
            label,
        )

    order = np.argsort(times.to_numpy(), kind="stable")
    if (order != np.arange(len(order))).any():
        _warn(label, "rows were not in time order: sorted them by time")
        times, t, g, lines, text = (
            times.iloc[order].reset_index(drop=True),
            t[order],
            g[order],
            lines[order],
            text[order],
        )
    dup = times.duplicated(keep=False).to_numpy()
    if dup.any():
        frame = pd.DataFrame({"time": times, "t": t, "g": g})
        differ = frame[dup].groupby("time").nunique(dropna=False).max(axis=1) > 1
        if differ.any():
            first = differ.index[differ.to_numpy()][0]
            i = int(np.flatnonzero((times == first).to_numpy())[0])
            raise _fail(
                label,
                f"gives {int(differ.sum())} time(s) twice with different values (first "
                f"{text[i]!r}, line {lines[i]}): keep one row per time; for local clock time "
                "with daylight saving, give UTC offsets (e.g. 2025-10-26T02:00+01:00)",
            )
        keep = ~times.duplicated(keep="first").to_numpy()
        _warn(label, f"dropped {int((~keep).sum())} repeated row(s) (same time, same values)")
        times, t, g, lines, text = (
            times[keep].reset_index(drop=True),
            t[keep],
            g[keep],
            lines[keep],
            text[keep],
        )
    feb29 = ((times.dt.month == 2) & (times.dt.day == 29)).to_numpy()
    if feb29.all():
        raise _fail(label, "only covers Feb 29: give a whole year, hourly or finer")
    if feb29.any():  # the reference year has 365 days
        times, t, g, lines, text = (
            times[~feb29].reset_index(drop=True),
            t[~feb29],
            g[~feb29],
            lines[~feb29],
            text[~feb29],
        )

    ordinal = _year_position(times)
    if len(ordinal) < 2:
        raise _fail(label, "has a single row: give a whole year, hourly or finer")
    steps = np.diff(np.unique(ordinal))
    step = int(np.median(steps))
    if step > STEPS_PER_HOUR:
        raise _fail(
            label,
            f"has one row every {step / STEPS_PER_HOUR:g} h: twin needs hourly or finer "
            "data (a whole year)",
        )
    o0 = int(ordinal[0])
    inside = ordinal < o0 + STEPS_PER_YEAR
    span = int(min(ordinal[inside][-1] - o0 + step, STEPS_PER_YEAR))
    if span < STEPS_PER_YEAR - MAX_FILLED_GAP_H * STEPS_PER_HOUR:
        raise _fail(
            label,
            f"covers {span / STEPS_PER_DAY:.1f} days ({text[0]} to {text[inside][-1]}): "
            "it must cover a whole year (365 days, hourly or finer; any start date)",
        )
    if not inside.all():
        _warn(
            label,
            f"covers more than a year: used the 365 days from {text[0]} and ignored "
            f"{int((~inside).sum())} later row(s) (from {text[~inside][0]})",
        )
    g = _check_units(label, t[inside], g[inside], lines[inside])
    t = t[inside]
    pos, text, lines = ordinal[inside] - o0, text[inside], lines[inside]

    # finer than 15 minutes: the mean of each quarter-hour
    frame = pd.DataFrame({"pos": pos, "t": t, "g": g, "row": np.arange(len(pos))})
    binned = frame.groupby("pos", sort=True).agg(
        t=("t", "mean"), g=("g", "mean"), row=("row", "first")
    )
    pos_b = binned.index.to_numpy()
    shown = [f"{text[r]} (line {lines[r]})" for r in binned["row"].to_numpy()]
    t_q = _fill(label, "t_out_c", pos_b, binned["t"].to_numpy(), step, False, shown)
    g_q = _fill(label, "ghi_w_m2", pos_b, binned["g"].to_numpy(), step, True, shown)
    shift = o0 % STEPS_PER_YEAR  # window position k is reference-year row (o0 + k) % 35040
    return np.roll(t_q, shift), np.roll(g_q, shift)


def load_weather(source: str = "try2010", region: int = 5, csv: str | None = None) -> Weather:
    """Load a year of weather at 15-minute resolution."""
    if source == "try2010":
        hourly = read_try2010(region)
        t, g = hourly_to_quarter_hourly(hourly["t_out_c"].to_numpy(), hourly["ghi_w_m2"].to_numpy())
        return Weather(f"TRY2010 region {region}", t, g)
    if source == "csv":
        if not csv:
            raise TwinError("weather.source=csv needs a file: set weather.csv=/path/to/weather.csv")
        t, g = _read_csv(csv)
        return Weather(Path(csv).name, t, g)
    raise TwinError(f"weather.source={source!r} is unknown: use try2010 or csv")
