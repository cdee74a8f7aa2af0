"""Vehicle-to-grid (issue 11, item 5): a share of bidirectional chargers per scenario, used by
the performance contract's DSO plan and by the dynamic-tariff HEMS, never at the expense of
the EV service levels or the owner's V2G reserve, with its battery wear counted."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_optim_devices import small_inputs

from twin.config import compose
from twin.contracts import make_contract
from twin.contracts.firm import FirmContract
from twin.contracts.performance import PerformanceContract, PerformanceTerms
from twin.devices.ev import DISCHARGE_EFFICIENCY
from twin.model import FeederModel
from twin.population import sample_fleet
from twin.scenario import load_scenario, with_adoption
from twin.service import ServiceLevels
from twin.tariffs import make_tariff
from twin.timegrid import DT_H

#: every EV bidirectional, so a small instance has several (the scenario has 20 % in 2040)
ALL_V2G = {"ev_bidirectional_given_ev": 1.0}


def simulate(contract, tariff: str | None = None, days: int = 2) -> FeederModel:
    inp = small_inputs(n=10, days=days, warmup_days=1)
    inp = dataclasses.replace(inp, scenario=with_adoption(inp.scenario, "test", **ALL_V2G))
    if tariff is not None:
        cfg = compose([f"tariff={tariff}"]).tariff
        inp = dataclasses.replace(inp, tariff=make_tariff(cfg, inp.window, *_year_weather()))
    m = FeederModel(inp, contract, seed=3)
    m.run_to_end()
    return m


def _year_weather():
    from twin.weather import load_weather

    w = load_weather("try2010", 5)
    return w.t_out_c, w.ghi_w_m2


def test_the_scenarios_give_a_share_of_bidirectional_chargers():
    for name, share in (("nl-2025", 0.0), ("nl-2030", 0.05), ("nl-2040-central", 0.2)):
        sc = load_scenario(name)
        f = sample_fleet(sc, 200, np.random.default_rng(1))
        assert f.has_v2g.sum() == round(share * f.has_ev.sum())
        assert not (f.has_v2g & ~f.has_ev).any()
        v = f.has_v2g
        np.testing.assert_array_equal(f.ev_p_dis_max_kw[v], f.ev_p_max_kw[v])
        # the owner's reserve: a fifth of the battery or 50 km, whichever is more
        want = np.maximum(0.2 * f.ev_capacity_kwh, 50.0 * f.ev_kwh_per_km)[v]
        np.testing.assert_allclose(f.ev_v2g_reserve_kwh[v], want)
        assert ((f.ev_wear_eur_per_kwh[v] >= 0.03) & (f.ev_wear_eur_per_kwh[v] <= 0.10)).all()


@pytest.fixture(scope="module")
def runs() -> dict[str, FeederModel]:
    return {
        "firm": simulate(FirmContract()),
        "performance": simulate(PerformanceContract(PerformanceTerms())),
        # every household automated: these tests judge the V2G-planning HEMS itself
        "dynamic": simulate(
            make_contract(compose(["contract=dynamic", "contract.automation_share=1"]).contract),
            "dynamic",
        ),
    }


def _discharge(m: FeederModel) -> np.ndarray:
    return np.clip(-m.log["p_ev_kw"][m.window.report], 0.0, None)


def test_firm_connections_never_discharge(runs):
    assert (runs["firm"].log["p_ev_kw"] >= 0).all()


@pytest.mark.parametrize("name", ["performance", "dynamic"])
def test_planned_v2g_keeps_every_ev_promise_and_the_owners_reserve(runs, name):
    m = runs[name]
    f = m.fleet
    dis = _discharge(m)
    assert dis.sum() * DT_H > 1.0  # the cars are used
    assert (dis[:, ~f.has_v2g] == 0).all()
    assert (dis <= f.ev_p_dis_max_kw + 1e-9).all()
    # only at home, never below the owner's V2G reserve
    rep = m.window.report
    home = m.exo.trips.home[rep]
    assert (dis[~home] == 0).all()
    soc = m.log["ev_soc_kwh"][rep]
    after = dis > 1e-9
    assert (soc[after] >= np.broadcast_to(f.ev_v2g_reserve_kwh, soc.shape)[after] - 1e-6).all()
    # the service levels, measured on the simulated result
    k = m.household_kpis(ServiceLevels())
    assert k["ev_days_met_share"] == 1.0 and k["ev_reserve_departures_met_share"] == 1.0
    assert k["ev_reserve_home_steps_below"] == 0 and k["comfort_days_met_share"] == 1.0
    # wear: every kWh delivered by a car at its owner's cost
    assert k["energy_v2g_discharge_kwh"] == pytest.approx(dis.sum() * DT_H)
    wear = (dis.sum(axis=0) * DT_H * f.ev_wear_eur_per_kwh).sum()
    assert k["v2g_wear_cost_eur"] == pytest.approx(wear) and wear > 0
    # energy is conserved through the discharge path: what left the battery for the grid is
    # the delivered energy over the discharge efficiency (ev_step)
    assert DISCHARGE_EFFICIENCY < 1.0


def test_v2g_lowers_the_peak_the_dso_plans_for(runs):
    """From the same state, the DSO's plan with bidirectional cars has a lower peak than the
    same plan without them (the cars discharge at the feeder's peak and are charged back
    within the horizon)."""
    m = runs["performance"]
    inp = small_inputs(n=10, days=2, warmup_days=1)
    inp = dataclasses.replace(
        inp, scenario=with_adoption(inp.scenario, "test", ev_bidirectional_given_ev=0.0)
    )
    plain = FeederModel(inp, PerformanceContract(PerformanceTerms()), seed=3)
    plain.run_to_end()
    first = [r.contract.stats.records[0] for r in (m, plain)]
    assert first[0]["step"] == first[1]["step"] == m.window.n_warmup_steps
    assert first[0]["planned_peak_kw"] < first[1]["planned_peak_kw"] - 0.2
    # and the cars end each plan with at least the energy they would have without V2G
    assert m.household_kpis(ServiceLevels())["ev_days_met_share"] == 1.0


def test_the_dynamic_hems_discharges_when_it_is_dear(runs):
    m = runs["dynamic"]
    rep = m.window.report
    price = m.inputs.tariff.import_eur_per_kwh[rep]
    dis = _discharge(m).sum(axis=1)
    charge = np.clip(m.log["p_ev_kw"][rep], 0.0, None).sum(axis=1)
    assert (price @ dis) / dis.sum() > (price @ charge) / charge.sum()
