"""A user's own feeder keeps its data (issue 11, item 6): loads' annual energy or their p_mw as
the peak to scale to, non-household loads by a documented rule or a column, existing PV
(sgen) as the households' or feeder PV, per-connection smart-meter profiles in place of the
drawn base load; what twin replaces is said at the start of the run."""

from __future__ import annotations

import logging

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
from omegaconf import OmegaConf

from twin.config import compose
from twin.contracts.firm import FirmContract
from twin.errors import TwinError
from twin.grid.feeders import HOUSEHOLD_MAX_KW, load_feeder
from twin.inputs import build_inputs, read_profiles
from twin.model import FeederModel
from twin.timegrid import DT_H, STEPS_PER_DAY


def street(path, household_column: bool = False) -> str:
    """Six houses on two cables, a shop (60 kW), PV on house 1's bus and on the shop's bus."""
    net = pp.create_empty_network()
    mv, lv = pp.create_bus(net, 10.0), pp.create_bus(net, 0.4)
    b1, b2 = pp.create_bus(net, 0.4), pp.create_bus(net, 0.4)
    pp.create_ext_grid(net, mv)
    pp.create_transformer(net, mv, lv, std_type="0.25 MVA 10/0.4 kV")
    pp.create_line(net, lv, b1, 0.1, "NAYY 4x150 SE")
    pp.create_line(net, b1, b2, 0.1, "NAYY 4x150 SE")
    for i in range(6):
        pp.create_load(net, b1 if i < 3 else b2, p_mw=0.004, name=f"house {i}")
    pp.create_load(net, b2, p_mw=0.060, name="shop")
    net.load["annual_kwh"] = [3200.0, np.nan, np.nan, np.nan, np.nan, 1800.0, 90_000.0]
    net.load.loc[2, "p_mw"] = 0.0  # no data: a drawn annual energy
    if household_column:
        net.load["household"] = [True] * 5 + [False, False]
    pp.create_sgen(net, b1, p_mw=0.006, name="roof PV")  # three houses at b1 share it
    pp.create_sgen(net, lv, p_mw=0.020, name="school PV")  # no house at the station's bus
    out = path / "street.json"
    pp.to_json(net, str(out))
    return str(out)


def _cfg(grid: str, tmp_path, **extra: object):
    cfg = compose(["sim.days=2", "sim.warmup_days=0", f"grid.name={grid}"])
    # grid.base_load and grid.profiles are not in twin/schema.py's GridConfig (yet): a plain
    # copy of the composed config takes them (build_inputs reads them with defaults)
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    cfg.paths.cache_dir = str(tmp_path / "cache")
    for k, v in extra.items():
        cfg.grid[k] = v
    return cfg


def test_a_users_feeder_keeps_its_loads_energy_peaks_other_loads_and_pv(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="twin"):
        inp = build_inputs(_cfg(street(tmp_path), tmp_path))
    f = inp.feeder
    load = f.net.load
    # the rule: a household connection is at most 3 x 25 A (17.3 kW); the shop is not one
    assert list(load.loc[f.household_load_idx, "name"]) == [f"house {i}" for i in range(6)]
    assert HOUSEHOLD_MAX_KW == pytest.approx(17.3)
    e = f.load_p_kw.sum(axis=0) * DT_H
    names = list(load["name"])
    # households: their annual energy where given, their p_mw as their annual 15-min peak
    assert e[names.index("house 0")] == pytest.approx(3200.0)
    assert e[names.index("house 5")] == pytest.approx(1800.0)
    for i in (1, 3, 4):
        assert f.load_p_kw[:, names.index(f"house {i}")].max() == pytest.approx(4.0)
    assert 300 < e[names.index("house 2")] < 20_000  # drawn
    # the shop: the BDEW G0 (commercial) profile at its annual energy, not a household
    shop = names.index("shop")
    assert e[shop] == pytest.approx(90_000.0)
    assert f.load_p_kw[:, shop].reshape(365, STEPS_PER_DAY).sum(1).std() > 0
    assert inp.p_other_kw.shape[1] == 2  # the shop and the school's PV
    # PV at a household's bus: those households' own (6 kW over three houses) ...
    np.testing.assert_allclose(inp.existing_pv_kwp, [2.0, 2.0, 2.0, 0.0, 0.0, 0.0])
    m = FeederModel(inp, FirmContract(), seed=1)
    assert m.fleet.has_pv[:3].all()
    np.testing.assert_allclose(m.fleet.pv_kwp[:3], 2.0)
    # ... elsewhere feeder PV: a negative load row with the weather's pvlib profile
    school = names.index("PV (sgen 1)")
    pv_year = -f.load_p_kw[:, school]
    assert (pv_year >= 0).all() and pv_year.max() <= 20.0
    assert 800 < pv_year.sum() * DT_H / 20.0 < 1_100  # kWh/kWp, south 35°
    # and every replacement is said once at the start
    said = " ".join(r.message for r in caplog.records)
    for text in (
        "6 household(s), 1 other load(s) by p_mw * scaling up to 17.3 kW",
        "kept as those 3 households' PV",
        "kept as feeder PV",
        "households: 2 keep net.load.annual_kwh, 3 have their profile scaled to p_mw",
        "1 get a drawn annual energy",
        "BDEW G0",
        "base load: 6 households draw their own",
    ):
        assert text in said, text


def test_a_household_column_decides_which_loads_are_households(tmp_path):
    f = load_feeder(street(tmp_path, household_column=True), cache_dir=tmp_path / "cache")
    assert list(f.net.load.loc[f.household_load_idx, "name"]) == [f"house {i}" for i in range(5)]


def _meter_file(path, ids, year: int = 2023, hourly: bool = True) -> tuple[str, np.ndarray]:
    """A year of readings for ``ids`` from 1 Jan ``year`` (UTC offsets, as meters give them):
    each day's value is its weekday number, so the calendar can be read back."""
    freq = "1h" if hourly else "15min"
    times = pd.date_range(f"{year}-01-01", f"{year}-12-31 23:59", freq=freq, tz="UTC")
    local = times.tz_convert("Etc/GMT-1")  # twin's clock, UTC+01:00
    value = local.dayofweek.to_numpy(float) + 0.5
    rows = [
        pd.DataFrame({"connection": c, "time": times.strftime("%Y-%m-%dT%H:%MZ"), "p_kw": value})
        for c in ids
    ]
    out = path / "meters.csv"
    pd.concat(rows).to_csv(out, index=False)
    return str(out), value


def test_smart_meter_profiles_replace_the_drawn_base_load_on_2025_weekdays(tmp_path, caplog):
    grid = street(tmp_path)
    path, _ = _meter_file(tmp_path, ["house 0", "house 4", "shop"])
    with caplog.at_level(logging.INFO, logger="twin"):
        inp = build_inputs(_cfg(grid, tmp_path, profiles=path))
    f = inp.feeder
    names = list(f.net.load["name"])
    for name in ("house 0", "house 4", "shop"):
        day = f.load_p_kw[:, names.index(name)].reshape(365, STEPS_PER_DAY)
        # the 2023 readings on the 2025 calendar: every day carries its own weekday
        weekday = pd.date_range("2025-01-01", periods=365, freq="D").dayofweek.to_numpy()
        np.testing.assert_allclose(day[:, 40], weekday + 0.5)
    # the others keep their drawn base load
    assert f.load_p_kw[:, names.index("house 1")].std() > 0.05
    assert inp.base_load == "profiles"
    said = [r.message for r in caplog.records if r.message.startswith("grid.profiles:")]
    assert len(said) == 1 and "2 of 6 households and 1 other load(s)" in said[0]


def test_a_broken_profiles_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("connection,time,kw\nhouse 0,2025-01-01T00:00,1\n")
    with pytest.raises(TwinError, match="lacks column") as err:
        read_profiles(bad)
    assert "\n" not in str(err.value)
    path, _ = _meter_file(tmp_path, ["house 0"])
    short = pd.read_csv(path).iloc[: 24 * 100]
    short.to_csv(bad, index=False)
    with pytest.raises(TwinError, match="covers 100 days"):
        read_profiles(bad)
    with pytest.raises(TwinError, match="neither a net.load name"):
        frame = pd.read_csv(path).assign(connection="nobody")
        frame.to_csv(bad, index=False)
        build_inputs(_cfg(street(tmp_path), tmp_path, profiles=str(bad)))
