"""Every config group option composes and validates; every scenario runs for a day."""

from __future__ import annotations

import pytest

from twin.config import CONFIG_DIR, compose, validate
from twin.pipeline import run
from twin.scenario import SCENARIO_DIR, load_scenario

GROUPS = {
    d.name: sorted(p.stem for p in d.glob("*.yaml"))
    for d in CONFIG_DIR.iterdir()
    if d.is_dir() and d.name != "hydra"
}
CASES = [(g, o) for g, opts in sorted(GROUPS.items()) for o in opts]


@pytest.mark.parametrize(("group", "option"), CASES, ids=[f"{g}={o}" for g, o in CASES])
def test_every_group_option_composes(group, option):
    cfg = compose([f"{group}={option}"])
    validate(cfg)
    assert cfg[group] is not None


@pytest.mark.parametrize("name", sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
def test_every_scenario_runs_for_a_day(name):
    r = run(compose(["sim=day", f"scenario={name}", "output.progress=false"]))
    k = r.kpis
    assert k["scenario"] == name
    ad = load_scenario(name)["adoption"]
    n = k["households"]
    expected = round(ad["heat_pump_all_electric"].value * n) + round(
        ad["heat_pump_hybrid"].value * n
    )
    assert k["households_with_heat_pump"] == expected
    assert k["households_with_ev"] == round(ad["ev"].value * n)
    assert k["comfort_days_met_share"] == 1.0 and k["trafo_peak_kva"] > 0


@pytest.mark.parametrize(
    "override",
    ["sim.days=abc", "seed=1.5", "output.figures=maybe", "contract.horizon_h=abc"],
)
def test_a_wrong_type_fails_when_hydra_composes(override):
    from hydra.errors import ConfigCompositionException

    extra = ["contract=performance"] if override.startswith("contract.") else []
    with pytest.raises(ConfigCompositionException):
        compose([*extra, override])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sim.days=400"], r"sim.days=400 is out of range: give a number from 1 to 365"),
        (["contract=performance", "contract.limit_kva=-5"], r"contract.limit_kva=-5"),
        (["contract=performance", "contract.information=psychic"], r"use one of central"),
        (["contract=nonfirm", "contract.share_signed=1.5"], r"contract.share_signed=1.5"),
        (["+seeed=3"], r"'seeed' is not a twin key: did you mean seed\?"),
        (["weather.source=netcdf"], r"weather.source='netcdf' is invalid: use one of try2010"),
    ],
)
def test_bounds_from_the_schema_give_one_line(overrides, message):
    from twin.errors import TwinError

    with pytest.raises(TwinError, match=message) as err:
        validate(compose(overrides))
    assert "\n" not in str(err.value)


def test_every_bounded_key_of_the_schema_is_in_the_configs():
    """The schema's bounds cover keys the YAML files really have (no dead bounds), and the
    defaults of the YAML files are within them."""
    from twin.schema import CONTRACT_SCHEMAS, TwinConfig, bounds_of

    assert len(bounds_of(TwinConfig)) >= 15
    for name, schema in CONTRACT_SCHEMAS.items():
        cfg = compose([f"contract={name}"])
        validate(cfg)
        for key, _ in bounds_of(schema, "contract."):
            assert key.split(".", 1)[1] in cfg.contract, key
