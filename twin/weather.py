"""Weather for a run: outdoor temperature and global horizontal irradiance, 15-minute steps.

Sources
-------
* ``try2010`` (default): the German Weather Service's test reference years TRY2010 that ship in
  the ``demandlib`` package (15 climate regions, hourly, "mean year" of 1988-2007). Region 5
  (Essen, "Niederrheinisch-westfälische Bucht und Emsland") borders the Netherlands: monthly
  means 3.1 ... 18.2 °C, 960 kWh/m² global horizontal irradiation a year, minimum -8.9 °C; De
  Bilt 1981-2010 has an annual mean of 10.1 °C (CBS 80182ned), region 5 has 10.4 °C.
* ``csv``: a user file with columns ``time`` (parseable timestamps), ``t_out_c`` and
  ``ghi_w_m2``, hourly or finer, covering a whole year; it is mapped onto the reference year by
  day of year and step of day.

Resampling to 15 minutes: temperature is linearly interpolated between hourly values (TRY values
are hourly means, placed at the hour's midpoint); irradiance is held constant within the hour so
the hourly energy is conserved exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin.timegrid import STEPS_PER_HOUR, STEPS_PER_YEAR

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


def _read_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise TwinError(f"weather file {path!r} not found: give weather.csv an existing CSV path")
    df = pd.read_csv(p)
    missing = {"time", "t_out_c", "ghi_w_m2"} - set(df.columns)
    if missing:
        raise TwinError(
            f"weather file {path!r} lacks column(s) {sorted(missing)}: it needs time, t_out_c, ghi_w_m2"
        )
    s = df.set_index(pd.to_datetime(df["time"]))[["t_out_c", "ghi_w_m2"]].astype(float)
    s = s[~((s.index.month == 2) & (s.index.day == 29))]
    q = s.resample("15min").mean()
    q["t_out_c"] = q["t_out_c"].interpolate(limit_direction="both")
    q["ghi_w_m2"] = q["ghi_w_m2"].ffill().bfill()
    if len(q) < STEPS_PER_YEAR:
        raise TwinError(
            f"weather file {path!r} covers {len(q) / 96:.0f} days: it must cover a whole year"
        )
    q = q.iloc[:STEPS_PER_YEAR]
    return q["t_out_c"].to_numpy(), q["ghi_w_m2"].clip(lower=0).to_numpy()


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
