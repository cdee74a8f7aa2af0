"""Hosting capacity: the bisection lands on the last hosted household count."""

from __future__ import annotations

from omegaconf import OmegaConf

from twin.config import compose
from twin.hosting import electrified, search_contract, summarise, violation
from twin.pipeline import run
from twin.scenario import load_scenario


def test_bisection_finds_the_boundary_and_fleets_are_nested():
    cfg = compose(["sim=day", "output.progress=false", "output.figures=false"])
    # a tight transformer limit makes the default feeder's boundary fall inside the range
    limits = OmegaConf.create(
        {
            "max_trafo_loading_pct": 60.0,
            "max_line_loading_pct": 100.0,
            "vm_min_pu": 0.9,
            "vm_max_pu": 1.1,
            "min_service_share": 1.0,
        }
    )
    points = search_contract(cfg, limits, curve_points=3)
    s = summarise(points)
    k = s["hosted_households"]
    assert 0 < k < 102 and s["first_violation"] == "transformer"
    by_k = {p.households_electrified: p for p in points}
    assert by_k[k].hosted and not by_k[k + 1].hosted  # the boundary was resolved to one household
    # loading grows with the electrified share (nested fleets)
    loads = [
        p.trafo_peak_loading_pct for p in sorted(points, key=lambda p: p.households_electrified)
    ]
    assert loads == sorted(loads)
    # an independent run one household past the boundary breaks the limit
    again = run(
        cfg, progress=False, scenario=electrified(load_scenario("nl-2040-central"), (k + 1) / 102)
    ).kpis
    assert violation(again, limits) == "transformer"
