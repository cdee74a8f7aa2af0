"""Weather CSV files are read by timestamp: any start date, time zone stated or given, hourly or
finer; bad files end in one line naming the file, repairs in a one-line warning."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin import weather as wx
from twin.errors import TwinError
from twin.weather import load_weather, read_try2010

TRY = read_try2010(5)
T, G = TRY["t_out_c"].to_numpy(), TRY["ghi_w_m2"].to_numpy()
REF = load_weather()
YEAR = pd.date_range(f"{wx.REFERENCE_YEAR}-01-01", periods=8760, freq="h")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logged():
    handler = _Records()
    logger = logging.getLogger("twin")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(old)


def write(path: Path, times, t, g) -> Path:
    pd.DataFrame({"time": list(times), "t_out_c": t, "ghi_w_m2": g}).to_csv(path, index=False)
    return path


def iso(stamps: pd.DatetimeIndex) -> list[str]:
    return [s.isoformat(timespec="minutes") for s in stamps]


def test_hourly_year_of_8760_rows_is_the_try2010_weather(tmp_path, logged) -> None:
    path = write(tmp_path / "essen.csv", YEAR.strftime("%Y-%m-%d %H:%M"), T, G)
    w = load_weather("csv", csv=str(path))
    assert w.name == "essen.csv"
    np.testing.assert_allclose(w.t_out_c, REF.t_out_c, atol=1e-12)
    np.testing.assert_array_equal(w.ghi_w_m2, REF.ghi_w_m2)
    assert not [r for r in logged if r.levelno >= logging.WARNING]
    # naive times: the clock they are read in is stated
    assert any("UTC+01:00" in r.getMessage() and "essen.csv" in r.getMessage() for r in logged)


def test_leap_year_file_drops_feb29(tmp_path) -> None:
    stamps = pd.date_range("2024-01-01", periods=8784, freq="h")
    keep = ~((stamps.month == 2) & (stamps.day == 29))
    t = np.full(8784, 99.0)  # Feb 29 rows would show up as 99 °C... and fail the range check
    g = np.zeros(8784)
    t[keep], g[keep] = T, G
    w = load_weather("csv", csv=str(write(tmp_path / "leap.csv", iso(stamps), t, g)))
    np.testing.assert_allclose(w.t_out_c, REF.t_out_c, atol=1e-12)


def test_quarter_hour_and_five_minute_files(tmp_path) -> None:
    q = pd.date_range("2025-01-01", periods=35040, freq="15min")
    w = load_weather("csv", csv=str(write(tmp_path / "q.csv", iso(q), REF.t_out_c, REF.ghi_w_m2)))
    np.testing.assert_allclose(w.t_out_c, REF.t_out_c, atol=1e-9)
    np.testing.assert_allclose(w.ghi_w_m2, REF.ghi_w_m2, atol=1e-9)
    # 5-minute data: the mean of each quarter-hour (irradiance energy kept)
    five = pd.date_range("2025-01-01", periods=35040 * 3, freq="5min")
    g5 = np.repeat(REF.ghi_w_m2, 3) + np.tile([-1.0, 0.0, 1.0], 35040) * (REF.ghi_w_m2 > 5).repeat(
        3
    )
    w5 = load_weather(
        "csv", csv=str(write(tmp_path / "five.csv", iso(five), np.repeat(REF.t_out_c, 3), g5))
    )
    np.testing.assert_allclose(w5.ghi_w_m2, REF.ghi_w_m2, atol=1e-9)


def test_december_goes_to_december_whatever_the_start(tmp_path) -> None:
    """A file starting in July: rows are placed by calendar day, not by row position."""
    stamps = pd.date_range("2030-07-01", periods=8760, freq="h")
    rows = np.array([(s.dayofyear - 1) * 24 + s.hour for s in stamps])
    dec = write(tmp_path / "july.csv", iso(stamps), T[rows], G[rows])
    w = load_weather("csv", csv=str(dec))
    np.testing.assert_allclose(w.t_out_c, REF.t_out_c, atol=1e-12)
    # a December marker lands in December 24 of the reference year
    t = T[rows].copy()
    t[np.flatnonzero((stamps.month == 12) & (stamps.day == 24))] = 30.0
    w = load_weather("csv", csv=str(write(tmp_path / "marked.csv", iso(stamps), t, G[rows])))
    dec24 = (pd.Timestamp("2025-12-24") - pd.Timestamp("2025-01-01")).days * 96
    assert np.all(w.t_out_c[dec24 + 4 : dec24 + 92] == 30.0)


def test_utc_offsets_and_daylight_saving(tmp_path) -> None:
    local = YEAR.tz_localize("Etc/GMT-1")  # twin's clock: UTC+01:00 all year
    for name, stamps in (
        ("utc.csv", [s.strftime("%Y-%m-%dT%H:%M:%SZ") for s in local.tz_convert("UTC")]),
        ("amsterdam.csv", iso(local.tz_convert("Europe/Amsterdam"))),
        ("tokyo.csv", iso(local.tz_convert("Asia/Tokyo"))),
    ):
        w = load_weather("csv", csv=str(write(tmp_path / name, stamps, T, G)))
        np.testing.assert_allclose(w.t_out_c, REF.t_out_c, atol=1e-12, err_msg=name)


def test_thresholds_are_named_constants() -> None:
    assert wx.MAX_FILLED_GAP_H == 3.0
    assert wx.LOCAL_STANDARD_OFFSET == pd.Timedelta(hours=1)
    assert wx.T_OUT_RANGE_C[0] < -50 and wx.T_OUT_RANGE_C[1] > 50
    assert wx.GHI_MAX_W_M2 > 1361  # above the solar constant


@pytest.mark.parametrize("hours", [1, 3, 4])
def test_gap_limit(tmp_path, hours, logged) -> None:
    keep = np.ones(8760, bool)
    keep[4000 : 4000 + hours] = False
    path = write(tmp_path / f"gap{hours}.csv", iso(YEAR[keep]), T[keep], G[keep])
    if hours <= wx.MAX_FILLED_GAP_H:
        w = load_weather("csv", csv=str(path))
        assert np.isfinite(w.t_out_c).all()
        msgs = [r.getMessage() for r in logged if r.levelno == logging.WARNING]
        assert any(f"longest {hours:g} h" in m and str(path) in m for m in msgs)
    else:
        with pytest.raises(TwinError, match=f"for {hours:g} h"):
            load_weather("csv", csv=str(path))


def test_missing_file_and_source(tmp_path) -> None:
    with pytest.raises(TwinError, match="not found"):
        load_weather("csv", csv=str(tmp_path / "nope.csv"))
    with pytest.raises(TwinError, match="needs a file"):
        load_weather("csv")


# ----------------------------------------------------------------------------------------------
# property tests: any start date and clock, and random damage
# ----------------------------------------------------------------------------------------------

CLOCKS = {
    "naive": lambda s: s.strftime("%Y-%m-%dT%H:%M").tolist(),
    "utc": lambda s: (
        s.tz_localize("Etc/GMT-1").tz_convert("UTC").strftime("%Y-%m-%dT%H:%MZ").tolist()
    ),
    "plus01": lambda s: iso(s.tz_localize("Etc/GMT-1")),
    "amsterdam": lambda s: iso(s.tz_localize("Etc/GMT-1").tz_convert("Europe/Amsterdam")),
}


def rotated(start_day: int, year: int) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """An hourly year starting on day ``start_day`` of ``year`` (twin's clock, no Feb 29), and
    the reference-year hour of each row."""
    stamps = pd.date_range(
        pd.Timestamp(year, 1, 1) + pd.Timedelta(days=start_day), periods=8784, freq="h"
    )
    stamps = stamps[~((stamps.month == 2) & (stamps.day == 29))][:8760]
    ref = pd.to_datetime(
        pd.DataFrame({"year": wx.REFERENCE_YEAR, "month": stamps.month, "day": stamps.day})
    )
    rows = ((ref - pd.Timestamp(wx.REFERENCE_YEAR, 1, 1)).dt.days * 24 + stamps.hour).to_numpy()
    return stamps, rows


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start_day=st.integers(0, 364),
    year=st.sampled_from([1999, 2016, 2023, 2024, 2031]),
    clock=st.sampled_from(sorted(CLOCKS)),
)
def test_property_any_start_any_clock_gives_the_same_year(start_day, year, clock) -> None:
    stamps, rows = rotated(start_day, year)
    with tempfile.TemporaryDirectory() as d:
        path = write(Path(d) / "w.csv", CLOCKS[clock](stamps), T[rows], G[rows])
        w = load_weather("csv", csv=str(path))
    np.testing.assert_allclose(w.t_out_c, REF.t_out_c, atol=1e-9)
    np.testing.assert_allclose(w.ghi_w_m2, REF.ghi_w_m2, atol=1e-9)


def _mutate(kind: str, at: int, length: int, t: np.ndarray, g: np.ndarray, times: list[str]):
    t, g, times = t.copy(), g.copy(), list(times)
    n = len(times)
    at = at % n
    end = min(at + length, n)
    if kind == "drop_rows":
        keep = np.ones(n, bool)
        keep[at:end] = False
        return t[keep], g[keep], [s for s, k in zip(times, keep, strict=True) if k]
    if kind == "nan_t":
        t[at:end] = np.nan
    elif kind == "nan_g":
        g[at:end] = np.nan
    elif kind == "kelvin":
        t = t + 273.15
    elif kind == "kw":
        g = g / 1000
    elif kind == "negative_g":
        g[at:end] = -float(length)
    elif kind == "spike_t":
        t[at] = 40.0 + length
    elif kind == "duplicate":
        idx = np.r_[np.arange(end), np.arange(at, end), np.arange(end, n)]
        return t[idx], g[idx], [times[i] for i in idx]
    elif kind == "shuffle":
        rng = np.random.default_rng(at)
        idx = rng.permutation(n)
        return t[idx], g[idx], [times[i] for i in idx]
    elif kind == "truncate":
        return t[: n - length], g[: n - length], times[: n - length]
    return t, g, times


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(
        st.sampled_from(
            [
                "drop_rows",
                "nan_t",
                "nan_g",
                "kelvin",
                "kw",
                "negative_g",
                "spike_t",
                "duplicate",
                "shuffle",
                "truncate",
            ]
        ),
        min_size=1,
        max_size=3,
    ),
    at=st.integers(0, 8759),
    length=st.integers(1, 800),
)
def test_property_damaged_files_end_in_one_line_or_a_stated_repair(kinds, at, length) -> None:
    t, g, times = T, G, YEAR.strftime("%Y-%m-%dT%H:%M").tolist()
    for kind in kinds:
        t, g, times = _mutate(kind, at, length, t, g, times)
    handler = _Records()
    logger = logging.getLogger("twin")
    logger.addHandler(handler)
    try:
        with tempfile.TemporaryDirectory() as d:
            path = write(Path(d) / "damaged.csv", times, t, g)
            try:
                w = load_weather("csv", csv=str(path))
            except TwinError as err:
                msg = str(err)
                assert "\n" not in msg and f"weather file '{path}'" in msg and ": " in msg
                return
    finally:
        logger.removeHandler(handler)
    # accepted: a full, plausible year, and every change to the data was said
    assert w.t_out_c.shape == w.ghi_w_m2.shape == (35040,)
    assert np.isfinite(w.t_out_c).all() and np.isfinite(w.ghi_w_m2).all()
    lo, hi = wx.T_OUT_RANGE_C
    assert (w.t_out_c >= lo).all() and (w.t_out_c <= hi).all()
    assert (w.ghi_w_m2 >= 0).all() and (w.ghi_w_m2 <= wx.GHI_MAX_W_M2).all()
    warnings = [r.getMessage() for r in handler.records if r.levelno >= logging.WARNING]
    assert all("\n" not in m and "damaged.csv" in m for m in warnings)
    # a plausible spike is data; every other change to the file is repaired with a warning
    if "spike_t" not in kinds:
        unchanged = np.allclose(w.t_out_c, REF.t_out_c) and np.allclose(w.ghi_w_m2, REF.ghi_w_m2)
        assert unchanged or warnings, kinds
    else:
        assert 40.0 + length <= wx.T_OUT_RANGE_C[1]
    assert "kelvin" not in kinds and "kw" not in kinds  # units are never guessed silently
    if "negative_g" in kinds:
        assert length <= wx.GHI_NEGATIVE_TOLERANCE_W_M2
