"""Finding unregistered devices (twin/enhance.py, ``twin study=unregistered``).

* the rules find each device in readings built from its physics (a charger's block, PV on the
  irradiance, a heat pump following the outdoor temperature) and nothing in a plain base load;
* the register misses the drawn share of each device's adopters, nested in the share, and the
  DSO's view carries no nameplate for them;
* on a simulated day, precision and recall are counted among the households the register does
  not list, and adding the found devices makes the DSO's forecasts better than the register
  alone.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from test_optim_devices import small_inputs

from twin.config import compose
from twin.contracts.firm import FirmContract
from twin.enhance import (
    EV_STEP_KW,
    detect_devices,
    device_profiles_kw,
    heating_fraction,
    unregistered_study,
)
from twin.measure import MeasurementSettings
from twin.model import FeederModel
from twin.pipeline import run
from twin.population import draw_unregistered
from twin.scenario import load_scenario, with_adoption
from twin.timegrid import STEPS_PER_DAY


def _weather(days: int = 7):
    rng = np.random.default_rng(0)
    t = np.arange(days * STEPS_PER_DAY)
    hour = (t % STEPS_PER_DAY) / 4.0
    clear = rng.uniform(0.2, 1.0, days).repeat(STEPS_PER_DAY)  # cloudy and clear days
    ghi = np.clip(np.sin((hour - 8.5) / 7.5 * np.pi), 0, None) * 300.0 * clear
    t_out = 2.0 + 3.0 * np.sin(2 * np.pi * t / (3 * STEPS_PER_DAY))
    return t, hour, ghi, t_out


def test_the_rules_find_each_device_from_its_physics():
    t, hour, ghi, t_out = _weather()
    rng = np.random.default_rng(1)
    base = 0.3 + 0.25 * np.exp(-0.5 * ((hour - 19) / 2) ** 2)
    n = 5
    read = base[:, None] + rng.normal(0, 0.05, (len(t), n))
    standard = np.repeat(base[:, None], n, axis=1)
    read[:, 1] += np.where((hour >= 18) & (hour < 20.5), 3.7, 0.0)  # a charger every evening
    read[:, 2] -= 4.0 * ghi / 1000.0 * 0.85  # 4 kWp of PV
    read[:, 3] += 2.0 * heating_fraction(t_out, -10.0)  # a heat pump, 2 kW at design
    read[::37, 4] = np.nan  # lost readings do not matter
    det = detect_devices(read, standard, t_out, ghi, -10.0)
    assert det.found["ev"].tolist() == [False, True, False, False, False]
    assert det.found["pv"].tolist() == [False, False, True, False, False]
    assert det.found["heat_pump"].tolist() == [False, False, False, True, False]
    # and the sizes it reads off the data
    assert det.pv_kwp[2] == pytest.approx(4.0 * 0.85 / 0.75, rel=0.1)
    assert det.hp_a_kw[3] == pytest.approx(2.0, rel=0.1)
    assert det.ev_kwh_per_day[1] == pytest.approx(3.7 * 2.5, rel=0.1)
    # a heat pump's burst of an hour in the week is not a car
    burst = read[:, :1].copy()
    burst[40:44, 0] += EV_STEP_KW + 0.5
    assert not detect_devices(burst, standard[:, :1], t_out, ghi, -10.0).found["ev"][0]
    # the forecast with the found sizes follows the readings
    fc = device_profiles_kw(standard, t_out, ghi, -10.0, det.hp_a_kw, np.zeros(n), det.pv_kwp)
    for h in (2, 3):
        assert (
            np.abs(fc[:, h] - read[:, h]).mean() < 0.5 * np.abs(standard[:, h] - read[:, h]).mean()
        )


def test_the_register_misses_the_drawn_share_nested():
    sc = load_scenario("nl-2040-central")
    assert sc["adoption"]["unregistered_given_adopter"].value == 0.0
    r = run(
        compose(
            [
                "sim=day",
                "output.progress=false",
                "output.figures=false",
                "measurement.estimate=false",
            ]
        )
    )
    f = r.fleet
    has = {"heat_pump": f.has_hp, "ev": f.has_ev, "pv": f.pv_kwp > 0}
    low, high = draw_unregistered(f, 0.2, 42), draw_unregistered(f, 0.5, 42)
    for d in has:
        assert low[d].sum() == round(0.2 * has[d].sum())
        assert not (low[d] & ~has[d]).any() and not (low[d] & ~high[d]).any()
    assert not any(v.any() for v in r.unregistered.values())  # the default register is complete
    # the DSO's view: no nameplate for a device the register does not know of
    inp = small_inputs(n=40, days=1)
    inp = replace(inp, scenario=with_adoption(inp.scenario, "test", unregistered_given_adopter=0.5))
    m = FeederModel(inp, FirmContract(), seed=5)
    reg, u = m.view.dso("envelope").registered, m.unregistered
    assert u["heat_pump"].any() and u["ev"].any() and u["pv"].any()
    assert (reg.hp_q_max_kw[u["heat_pump"]] == 0).all() and (reg.ev_p_max_kw[u["ev"]] == 0).all()
    assert (reg.pv_kwp[u["pv"]] == 0).all()
    known = m.fleet.has_ev & ~u["ev"]
    np.testing.assert_array_equal(reg.ev_p_max_kw[known], m.fleet.ev_p_max_kw[known])


@pytest.fixture(scope="module")
def study():
    cfg = compose(
        [
            "sim=day",
            "output.progress=false",
            "output.figures=false",
            "measurement=transformer_and_meters",
            "measurement.estimate=false",
        ]
    )
    sc = with_adoption(load_scenario("nl-2040-central"), "test", unregistered_given_adopter=0.3)
    r = run(cfg, scenario=sc)
    return r, unregistered_study(r, MeasurementSettings.from_config(cfg.measurement), 1)


def test_precision_and_recall_among_the_screened(study):
    r, out = study
    hh = out["households"]
    det = out["detection"].set_index("device")
    for d in ("heat_pump", "ev", "pv"):
        screened = ~hh[f"registered_{d}"]
        truth = hh[f"has_{d}"] & screened
        found = hh[f"found_{d}"] & screened
        row = det.loc[d]
        assert row["screened"] == screened.sum()
        assert row["unregistered_adopters"] == truth.sum() == r.unregistered[d].sum() > 0
        assert row["true_positives"] == (found & truth).sum()
        assert row["true_positives"] + row["missed"] == row["unregistered_adopters"]
        assert row["precision"] == pytest.approx((found & truth).sum() / found.sum())
        assert 0.5 <= row["recall"] <= 1.0  # the rules find most of them, even in one day
        assert not (hh[f"registered_{d}"] & ~hh[f"has_{d}"]).any()


def test_found_devices_improve_the_dsos_forecasts(study):
    _, out = study
    fc = out["forecasts"].set_index("forecast")
    reg, found = fc.loc["register"], fc.loc["register + found"]
    assert found["household_mae_kw"] < reg["household_mae_kw"]
    assert found["feeder_mae_kw"] < reg["feeder_mae_kw"]
    assert found["se_line_err_mean_pp"] < reg["se_line_err_mean_pp"]
    # a complete register is the upper bound the found devices approach
    assert fc.loc["complete register", "household_mae_kw"] < reg["household_mae_kw"]
