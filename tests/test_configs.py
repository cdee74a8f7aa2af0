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
