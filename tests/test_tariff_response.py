"""Households respond to a tariff as they really do (issue 18): full automation, timers,
manual response, none; the chargers' random delay; bills per response type."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_optim_devices import small_inputs

from twin.config import compose
from twin.contracts import make_contract
from twin.contracts.firm import FirmContract
from twin.contracts.tariff_hems import STEP_S, TariffHemsContract
from twin.errors import TwinError
from twin.fleet import (
    RESPONSE_AUTO,
    RESPONSE_MANUAL,
    RESPONSE_NONE,
    RESPONSE_TIMER,
    RESPONSE_TYPES,
    response_codes,
)
from twin.model import FeederModel
from twin.scenario import Param, Scenario, load_scenario
from twin.tariffs import bills, cheap_block, make_tariff
from twin.timegrid import STEPS_PER_DAY, STEPS_PER_HOUR
from twin.weather import load_weather

WEATHER = load_weather()


def with_response(scenario: Scenario, **values: float) -> Scenario:
    """``scenario`` with some ``response.*`` numbers replaced."""
    r = dict(scenario.params["response"])
    for key, v in values.items():
        r[key] = Param(float(v), float(v), "test")
    return dataclasses.replace(scenario, params={**scenario.params, "response": r})


def simulate(
    contract, tariff: str = "tou", n: int = 24, days: int = 3, scenario: Scenario | None = None
) -> FeederModel:
    inp = small_inputs(n=n, days=days, warmup_days=1)
    if scenario is not None:
        inp = dataclasses.replace(inp, scenario=scenario)
    prices = make_tariff(
        compose([f"tariff={tariff}"]).tariff, inp.window, WEATHER.t_out_c, WEATHER.ghi_w_m2
    )
    m = FeederModel(dataclasses.replace(inp, tariff=prices), contract, seed=5)
    m.run_to_end()
    return m


def contract(name: str = "tou", *overrides: str) -> TariffHemsContract:
    return make_contract(compose([f"contract={name}", *overrides]).contract)


# ----------------------------------------------------------------------------------------------
# the types themselves
# ----------------------------------------------------------------------------------------------
def test_response_types_are_drawn_from_the_scenario_shares_and_nest():
    sc = load_scenario("nl-2040-central")
    r = sc["response"]
    assert (r["full_automation"].value, r["timer"].value, r["manual"].value) == (0.35, 0.3, 0.15)
    pos = np.random.default_rng(0).permutation(100)
    codes = response_codes(pos, 0.35, 0.30, 0.15)
    assert np.bincount(codes, minlength=4).tolist() == [20, 15, 30, 35]  # none manual timer auto
    # a larger automation share only turns more of the ranking automated
    prev = np.zeros(100, bool)
    for a in np.linspace(0, 1, 11):
        auto = response_codes(pos, a, 0.0, 0.0) == RESPONSE_AUTO
        assert auto.sum() == round(a * 100) and np.all(auto[prev])
        prev = auto
    # the contract's override: all none, all timer, the scenario's mix of the rest
    m = simulate(contract("tou", "contract.automation_share=0.5"), n=20, days=1)
    kinds = m.contract.response
    assert (kinds == RESPONSE_AUTO).sum() == 10
    rest = np.bincount(kinds[kinds != RESPONSE_AUTO], minlength=4)
    # the scenario's rest (20 none : 15 manual : 30 timer of 65) scaled to 10 households
    assert rest[RESPONSE_TIMER] == 5 and rest[RESPONSE_MANUAL] + rest[RESPONSE_NONE] == 5
    assert np.array_equal(
        m.contract.household_table()["response"], np.asarray(RESPONSE_TYPES)[kinds]
    )


def test_response_shares_above_one_stop_the_run_with_one_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text(
        "name: bad\nextends: nl-2040-central\nresponse:\n"
        "  full_automation: {value: 0.6, source: test}\n  timer: {value: 0.5, source: test}\n"
    )
    with pytest.raises(TwinError, match=r"response.full_automation \+ timer \+ manual = 1.25 > 1"):
        load_scenario(str(p))
    with pytest.raises(TwinError, match="contract.automation_share"):
        contract("tou", "contract.automation_share=1.5")


def test_cheap_block_of_the_tariffs():
    hour = (np.arange(3 * STEPS_PER_DAY) % STEPS_PER_DAY) / STEPS_PER_HOUR
    tou = np.where((hour >= 17) & (hour < 21), 0.12, np.where((hour >= 7) & (hour < 9), 0.06, 0.02))
    b = cheap_block(tou)
    assert (b.start, b.length) == (21 * STEPS_PER_HOUR, 10 * STEPS_PER_HOUR)
    assert b.dear[17 * 4 : 21 * 4].all() and b.dear.sum() == 16  # the evening block only
    assert not cheap_block(np.full(96 * 2, 0.3)).exists  # a flat price has none


# ----------------------------------------------------------------------------------------------
# item 6: the tests the issue asks for
# ----------------------------------------------------------------------------------------------
def test_zero_automation_reproduces_firm_behaviour_for_non_responders():
    firm = simulate(FirmContract())
    none = simulate(contract("tou", "contract.automation_share=0", "contract.response_rest=none"))
    assert (none.contract.response == RESPONSE_NONE).all()
    assert none.contract_kpis()["hems_households_planning"] == 0
    for key in ("p_net_kw", "p_ev_kw", "p_hp_kw", "p_bat_kw", "t_in_c"):
        np.testing.assert_array_equal(none.log[key], firm.log[key])
    # in the scenario's mix, the households that do not respond are firm households
    mix = simulate(contract("tou"))
    idle = mix.contract.response == RESPONSE_NONE
    assert idle.sum() >= 3
    np.testing.assert_array_equal(mix.log["p_net_kw"][:, idle], firm.log["p_net_kw"][:, idle])
    assert not np.array_equal(mix.log["p_net_kw"], firm.log["p_net_kw"])


def timer_run(delay_s: float, n: int = 40, days: int = 3) -> FeederModel:
    sc = with_response(load_scenario("nl-2040-central"), timer_at_block_start=1.0)
    c = contract(
        "tou",
        "contract.automation_share=0",
        "contract.response_rest=timer",
        f"contract.random_delay_max_s={delay_s}",
    )
    return simulate(c, n=n, days=days, scenario=sc)


def session_starts(m: FeederModel) -> tuple[np.ndarray, np.ndarray]:
    """(step, household) of every charging start of the simulated window after warm-up."""
    p = m.log["p_ev_kw"] > 1e-9
    start = p[1:] & ~p[:-1]
    k, h = np.nonzero(start)
    k = k + 1
    keep = k >= m.window.n_warmup_steps
    return k[keep], h[keep]


def test_a_timer_population_herds_exactly_at_the_block_start():
    m = timer_run(0.0)
    f, c = m.fleet, m.contract
    assert (c.response == RESPONSE_TIMER).all() and c.block.start == 21 * STEPS_PER_HOUR
    k, h = session_starts(m)
    home = m.exo.trips.home
    at_start = k % STEPS_PER_DAY == c.block.start
    # every other start is a car that came home inside the block (or below its reserve)
    arrived = home[k, h] & ~home[k - 1, h]
    assert np.all(at_start | arrived)
    assert at_start.sum() >= 0.8 * len(k) and at_start.sum() >= 20
    # before the block nobody charges (above its reserve); at its first step every car at home
    # with room charges at full power
    ev = np.flatnonzero(f.has_ev)
    for day in range(1, m.window.warmup_days + m.window.days):
        k0 = day * STEPS_PER_DAY + c.block.start
        assert m.log["p_ev_kw"][k0 - 1, ev].sum() == 0.0
        room = home[k0, ev] & (m.log["ev_soc_kwh"][k0 - 1, ev] < f.ev_capacity_kwh[ev] - 1.0)
        np.testing.assert_allclose(m.log["p_ev_kw"][k0, ev[room]], f.ev_p_max_kw[ev[room]])
    # the herd: the feeder's EV load jumps at 21:00
    p = m.log["p_ev_kw"][m.window.report].sum(axis=1).reshape(-1, STEPS_PER_DAY)
    assert np.all(p[:, c.block.start] > 5 * p[:, c.block.start - 1] + 10.0)


@pytest.mark.parametrize("delay_s", [600.0, 1800.0])
def test_the_random_delay_spreads_the_herd_as_configured(delay_s):
    m = timer_run(delay_s)
    f, c = m.fleet, m.contract
    delays = c.ev_delay_s  # (steps, n): the delay drawn at each session start, NaN elsewhere
    k, h = np.nonzero(np.isfinite(delays))
    d = delays[k, h].astype(float)
    assert len(d) >= 30 and d.min() >= 0 and d.max() <= delay_s
    assert np.array_equal(d, np.round(d))  # to the nearest second
    # uniform on [0, delay_s]: the mean within 4 standard errors
    assert abs(d.mean() - delay_s / 2) < 4 * delay_s / np.sqrt(12 * len(d))
    # each delayed session's first steps carry exactly the undelayed share of full power
    p, soc = m.log["p_ev_kw"], m.log["ev_soc_kwh"]
    checked = 0
    for kk, hh, dd in zip(k, h, d, strict=True):
        for j in range(int(np.ceil(delay_s / STEP_S)) + 1):
            if kk + j >= len(p) or not m.exo.trips.home[kk + j, hh]:
                break
            if soc[kk + j, hh] > f.ev_capacity_kwh[hh] - 1.0:  # full: the car takes less
                break
            share = np.clip(1.0 - (dd - j * STEP_S) / STEP_S, 0.0, 1.0)
            assert p[kk + j, hh] == pytest.approx(share * f.ev_p_max_kw[hh], abs=1e-9)
            checked += 1
    assert checked >= len(d)
    # the herd's first step is cut by the mean delayed share; later steps as configured
    starts = (k % STEPS_PER_DAY) == c.block.start
    first = np.clip(1.0 - d[starts] / STEP_S, 0.0, 1.0)
    expected = np.clip(1.0 - np.linspace(0.0, delay_s, 10_001) / STEP_S, 0.0, 1.0).mean()
    assert expected == pytest.approx(2 / 3 if delay_s == 600 else 0.25, abs=1e-3)
    assert first.mean() == pytest.approx(expected, abs=0.12)
    if delay_s <= STEP_S:  # 600 s: from the second step on the herd is whole again
        kk, hh = k[starts], h[starts]
        ok = soc[kk + 1, hh] < f.ev_capacity_kwh[hh] - 1.0
        np.testing.assert_allclose(p[kk[ok] + 1, hh[ok]], f.ev_p_max_kw[hh[ok]])


def test_without_a_cheap_block_timers_and_manual_responders_do_not_respond():
    firm = simulate(FirmContract(), tariff="capacity", n=16, days=2)
    c = contract("capacity", "contract.automation_share=0", "contract.response_rest=timer")
    m = simulate(c, tariff="capacity", n=16, days=2)
    assert not m.contract.block.exists
    # the heat pumps: no dear block either; every household as under firm but for the delay
    # (which only timers with a session start would apply: none start outside firm behaviour)
    np.testing.assert_array_equal(m.log["t_in_c"], firm.log["t_in_c"])


def test_manual_responders_shift_on_some_days_and_start_late():
    sc = with_response(load_scenario("nl-2040-central"), manual_shift_share=1.0, manual_delay_h=2.0)
    c = contract("tou", "contract.automation_share=0", "contract.response_rest=manual")
    m = simulate(c, n=30, days=3, scenario=sc)
    k, h = session_starts(m)
    phase = (k - m.contract.block.start) % STEPS_PER_DAY
    home = m.exo.trips.home
    arrived = home[k, h] & ~home[k - 1, h]
    # every shifted start lies 1.5 .. 2.5 h into the block (habit 2 h ± 0.5 h)
    late = (phase >= 6) & (phase <= 10)
    assert np.all(late | arrived) and late.sum() >= 10


def test_bills_add_up_for_every_response_type():
    m = simulate(contract("tou"), n=30, days=2)
    tariff = m.inputs.tariff.sliced(m.window.report)
    b = bills(m.log["p_net_kw"][m.window.report], tariff)
    parts = [c for c in b.columns if c != "total_eur"]
    np.testing.assert_allclose(b[parts].sum(axis=1), b["total_eur"], atol=1e-9)
    kinds = np.asarray(RESPONSE_TYPES)[m.contract.response]
    by = b.groupby(kinds)["total_eur"].agg(["sum", "count"])
    assert by["count"].sum() == 30 and by["sum"].sum() == pytest.approx(b["total_eur"].sum())
