"""Scenario files: every one loads with a source per number; bad files fail on one line."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from twin.errors import TwinError
from twin.population import sample_fleet
from twin.scenario import SCENARIO_DIR, SCHEMA, load_scenario

ALL = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def test_the_library_has_the_years_and_storylines():
    assert {
        "nl-2025",
        "nl-2030",
        "nl-2035",
        "nl-2040-low",
        "nl-2040-central",
        "nl-2040-high",
    } <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_scenario_loads_with_a_source_for_every_number(name):
    sc = load_scenario(name)
    for section, fields in SCHEMA.items():
        for field in fields:
            assert len(sc[section][field].source) > 10, f"{section}.{field}"


def test_adoption_grows_along_the_central_path():
    shares = [
        load_scenario(n)["adoption"] for n in ("nl-2025", "nl-2030", "nl-2035", "nl-2040-central")
    ]
    for key in ("heat_pump_all_electric", "ev"):
        values = [s[key].value for s in shares]
        assert values == sorted(values) and values[0] < values[-1]


def _write(tmp_path, data):
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _central():
    return yaml.safe_load((SCENARIO_DIR / "nl-2040-central.yaml").read_text())


def test_missing_field_is_named(tmp_path):
    data = _central()
    del data["ev"]["battery_kwh"]
    with pytest.raises(TwinError, match=r"ev\.battery_kwh is missing") as err:
        load_scenario(_write(tmp_path, data))
    assert "\n" not in str(err.value)


def test_out_of_range_field_is_named(tmp_path):
    data = _central()
    data["adoption"]["ev"]["value"] = 1.7
    with pytest.raises(TwinError, match=r"adoption\.ev=1\.7\.\.1\.7 is out of range"):
        load_scenario(_write(tmp_path, data))


def test_number_without_source_is_refused(tmp_path):
    data = _central()
    del data["pv"]["kwp"]["source"]
    with pytest.raises(TwinError, match=r"pv\.kwp has no source"):
        load_scenario(_write(tmp_path, data))


def test_extends_takes_the_parents_numbers(tmp_path):
    (tmp_path / "child.yaml").write_text(
        "name: child\nextends: nl-2040-central\nadoption:\n  ev: {value: 0.9, source: test}\n"
    )
    sc = load_scenario(str(tmp_path / "child.yaml"))
    assert sc["adoption"]["ev"].value == 0.9
    assert sc["adoption"]["pv"].value == load_scenario("nl-2040-central")["adoption"]["pv"].value


def test_fleet_matches_adoption_counts_and_sizes_heat_pumps_to_design_load():
    sc = load_scenario("nl-2040-central")
    f = sample_fleet(sc, 100, np.random.default_rng(0))
    assert f.has_hp.sum() == 70 and f.hp_hybrid.sum() == 25 and f.has_ev.sum() == 50
    assert not (f.has_battery & ~f.has_pv).any()
    ae = f.has_hp & ~f.hp_hybrid
    # all-electric: the design load plus the hot-water allowance of their tank (issue 11)
    allowance = sc["heat_pump"]["dhw_allowance_kw_per_person"].value * f.persons[ae]
    np.testing.assert_allclose(f.hp_q_max_kw[ae], f.design_heat_load_kw[ae] + allowance)
    assert f.has_tank[ae].all() and not f.has_tank[~ae].any()
    np.testing.assert_allclose(f.hp_q_max_kw[f.hp_hybrid], 0.4 * f.design_heat_load_kw[f.hp_hybrid])
    # UA from the design heat load: design load = UA * (setpoint - design outdoor temperature)
    np.testing.assert_allclose(f.ua_kw_per_k * (f.setpoint_c + 10.0), f.design_heat_load_kw)


def test_higher_adoption_gives_a_superset_of_adopters_with_the_same_parameters():
    low = sample_fleet(load_scenario("nl-2030"), 100, np.random.default_rng(9))
    high = sample_fleet(load_scenario("nl-2040-central"), 100, np.random.default_rng(9))
    assert (high.has_ev >= low.has_ev).all()
    np.testing.assert_array_equal(low.floor_area_m2, high.floor_area_m2)
