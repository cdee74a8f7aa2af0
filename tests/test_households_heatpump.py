"""Heat pumps as measured, in the simulation (issue 11, item 3): a one-year firm run of the
default feeder lands in the field ranges of DOMAIN.md; the physics applies the field COP with
cycling below the minimum output, shares the capacity with the hot-water tank, and runs a
hybrid's heat pump only at or above its bivalence point (and, with the price switch, only
while it is the cheaper heat)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from twin.config import compose
from twin.contracts.firm import FirmContract
from twin.devices.heatpump import cycling_factor, dhw_cop, electric_power_kw, min_output_kw
from twin.devices.household import Controls, HouseholdState, step_households
from twin.inputs import build_inputs
from twin.kpi import seasonal_cop
from twin.model import FeederModel
from twin.service import ServiceLevels
from twin.timegrid import DT_H, STEPS_PER_YEAR


@pytest.fixture(scope="module")
def year() -> FeederModel:
    """The default feeder (102 households, nl-2040-central), a whole year, firm: the model
    only (no power flow), so the physics of a year stays a few seconds."""
    inputs = build_inputs(compose(["sim=year", "sim.warmup_days=0"]))
    m = FeederModel(inputs, FirmContract(), seed=42)
    m.run_to_end()
    return m


@pytest.mark.slow
def test_one_year_firm_run_lands_in_the_field_ranges(year):
    """DOMAIN.md: seasonal performance of air/water heat pumps in existing homes 2.8-3.1
    (Fraunhofer ISE field tests, space heat + hot water); ~3,200 kWh a year per all-electric
    heat pump (incl. hot water), ~1,900 kWh per hybrid (warmte365.nl)."""
    m, f, log = year, year.fleet, year.log
    assert log["p_hp_kw"].shape[0] == STEPS_PER_YEAR
    ae, hy = f.has_hp & ~f.hp_hybrid, f.hp_hybrid
    standby = f.hp_model.standby_kw
    scop = seasonal_cop(log, ae, standby)
    assert 2.8 <= scop <= 3.1
    kwh_ae = log["p_hp_kw"][:, ae].sum(0) * DT_H + standby * 8760
    kwh_hy = log["p_hp_kw"][:, hy].sum(0) * DT_H + standby * 8760
    assert 2_900 <= kwh_ae.mean() <= 3_500
    assert 1_700 <= kwh_hy.mean() <= 2_300
    # hot water is part of it: a fifth to a third of an all-electric unit's electricity
    share = log["p_dhw_kw"][:, ae].sum() / log["p_hp_kw"][:, ae].sum()
    assert 0.15 < share < 0.4
    # hybrids: the heat pump gives most of the space heat, the boiler the rest in the cold
    q_hp, q_boiler = log["q_hp_kw"][:, hy].sum(), log["q_boiler_kw"][:, hy].sum()
    assert 0.7 < q_hp / (q_hp + q_boiler) < 0.95
    # the tanks' thermostats deliver the hot water on almost every day of the year (a firm
    # connection promises nothing: a bath larger than what a small tank holds runs it out)
    k = m.household_kpis(ServiceLevels())
    assert k["dhw_days_met_share"] > 0.99
    assert k["dhw_shortfall_kwh_total"] < 1e-3 * k["dhw_draw_kwh"]
    assert k["heat_pump_seasonal_cop_all_electric"] == pytest.approx(scop)


@pytest.mark.slow
def test_the_heat_pump_never_gives_more_heat_than_its_rating(year):
    f, log = year.fleet, year.log
    hp = f.has_hp
    heat_hp = log["q_hp_kw"] + log["q_dhw_kw"] - log["q_dhw_element_kw"]
    assert (heat_hp[:, hp] <= f.hp_q_max_kw[hp] + 1e-9).all()
    # below its minimum output it cycles: those steps cost more electricity than q / COP
    t_out = year.exo.t_out_c
    q_min = min_output_kw(f.hp_q_max_kw[None, :], t_out[:, None], model=f.hp_model)
    low = (log["q_hp_kw"] > 1e-3) & (log["q_hp_kw"] < q_min) & (log["q_dhw_kw"] == 0) & hp
    assert low.sum() > 1_000
    p = log["p_hp_kw"][low]
    assert (p > log["q_hp_kw"][low] / year.exo.cop[low] * (1 + 1e-9)).all()


def test_cycling_below_the_minimum_output_costs_what_en_14825_says():
    q_min, cop, cd = np.array([1.5]), np.array([3.0]), 0.9
    for q in (0.2, 0.75, 1.5, 3.0):
        f = cycling_factor(np.array([q]), q_min, cd)
        p = electric_power_kw(np.array([q]), cop, q_min, cd)
        assert p == pytest.approx(q / (cop * f))
    assert electric_power_kw(np.array([0.0]), cop, q_min, cd) == 0.0
    # hot water is made at a higher flow temperature: a lower COP than space heat at 35 °C
    assert dhw_cop(0.0, np.array([52.0]))[0] < dhw_cop(0.0, np.array([30.0]))[0]


@pytest.fixture(scope="module")
def week() -> FeederModel:
    m = FeederModel(build_inputs(compose(["sim.days=2"])), FirmContract(), seed=42)
    m.run_to_end()
    return m


def test_hybrids_below_their_bivalence_point_heat_with_the_boiler(week):
    m = week
    f = dataclasses.replace(m.fleet)
    hy = np.flatnonzero(f.hp_hybrid)
    f.hp_t_bivalent_c = np.where(f.hp_hybrid, 100.0, -np.inf)  # always below it
    state = HouseholdState.initial(f)
    ctl = Controls(q_heat_kw=np.full(f.n, 2.0), p_ev_kw=np.zeros(f.n))
    out = step_households(f, state, m.exo, 10, ctl)
    assert (out.q_hp_kw[hy] == 0).all() and (out.q_boiler_kw[hy] == 2.0).all()
    assert (out.p_hp_kw[hy] == 0).all()
    f.hp_t_bivalent_c = np.where(f.hp_hybrid, -100.0, -np.inf)  # always above it
    out = step_households(f, HouseholdState.initial(f), m.exo, 10, ctl)
    assert (out.q_hp_kw[hy] > 0).all()


def test_price_switch_runs_a_hybrids_heat_pump_only_while_it_is_the_cheaper_heat(week):
    m = week
    f = dataclasses.replace(m.fleet)
    hy = np.flatnonzero(f.hp_hybrid)
    f.hp_price_switch = f.hp_hybrid.copy()
    ctl = Controls(q_heat_kw=np.full(f.n, 2.0), p_ev_kw=np.zeros(f.n))
    gas = f.hp_model.gas_eur_per_kwh / f.hp_model.boiler_eta  # € per kWh of boiler heat
    cop = m.exo.cop[10, hy]
    for price, hp_runs in ((0.5 * gas * cop.min(), True), (2.0 * gas * cop.max(), False)):
        exo = dataclasses.replace(m.exo, price_eur_per_kwh=np.full(m.n_steps, price))
        out = step_households(f, HouseholdState.initial(f), exo, 10, ctl)
        assert ((out.q_hp_kw[hy] > 0) == hp_runs).all()
