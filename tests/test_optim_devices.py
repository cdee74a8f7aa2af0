"""Device data for the optimiser: horizons, trips, reachable service levels, envelopes."""

from __future__ import annotations

import numpy as np
import pytest

from twin.contracts.firm import FirmContract
from twin.devices.ev import CHARGE_EFFICIENCY, TripSchedule
from twin.devices.household import Exogenous
from twin.forecast import horizon_index
from twin.inputs import StudyInputs
from twin.model import FeederModel
from twin.optim.devices import (
    COMFORT_TOL_K,
    DeviceSet,
    device_inputs,
    thermal_decay,
    trips_at_departure,
)
from twin.optim.envelope import household_envelopes
from twin.optim.horizon import Horizon
from twin.scenario import load_scenario
from twin.timegrid import STEPS_PER_DAY, make_window
from twin.weather import load_weather


def small_inputs(
    n: int = 8,
    days: int = 2,
    start: str = "2025-12-01",
    warmup_days: int = 0,
    trafo_rating_kva: float = float("inf"),
) -> StudyInputs:
    """``n`` households of the central 2040 scenario on a plain base load (no grid)."""
    window = make_window(start, days, warmup_days)
    weather = load_weather("try2010", 5)
    rows = window.sim_year_index
    hour = (np.arange(len(rows)) % STEPS_PER_DAY) / 4.0
    shape = (
        0.25
        + 0.35 * np.exp(-0.5 * ((hour - 19.0) / 2.0) ** 2)
        + 0.15 * np.exp(-0.5 * ((hour - 8.0) / 1.5) ** 2)
    )
    p_base = shape[:, None] * np.linspace(0.8, 1.2, n)[None, :]
    return StudyInputs(
        scenario=load_scenario("nl-2040-central"),
        window=window,
        t_out_c=weather.t_out_c[rows],
        ghi_w_m2=weather.ghi_w_m2[rows],
        p_base_kw=p_base,
        q_base_kvar=0.2 * p_base,
        load_index=np.arange(n),
        trafo_rating_kva=trafo_rating_kva,
    )


@pytest.fixture(scope="module")
def model():
    return FeederModel(small_inputs(), FirmContract(), seed=3)


def test_horizon_segments_and_aggregation():
    hz = Horizon.from_segments([(1.0, 0.25), (3.0, 1.0), (1.5, 2.0)])
    assert hz.steps.tolist() == [1, 1, 1, 1, 4, 4, 4, 6]
    assert hz.n_steps == 22 and hz.n_fine == 4 and hz.state_step[-1] == 22
    x = np.arange(22.0)
    assert hz.sum(x)[4] == pytest.approx(4 + 5 + 6 + 7) and hz.mean(x)[-1] == pytest.approx(18.5)
    mask = np.ones(22, bool)
    mask[5] = False
    assert hz.all(mask).tolist() == [True] * 4 + [False, True, True, True]
    assert Horizon.make(36, 24, 1.0).n_periods == 96 + 12


def test_trips_move_to_their_departure_and_horizons_repeat_the_last_day():
    trip = np.zeros((10, 2))
    dep = np.zeros((10, 2), bool)
    dep[2, 0], trip[6, 0] = True, 5.0  # left at 2, back at 6
    trip[3, 1] = 4.0  # left before the horizon: stays at arrival
    moved = trips_at_departure(trip, dep)
    assert moved[2, 0] == 5.0 and moved[6, 0] == 0.0 and moved[3, 1] == 4.0
    assert moved.sum() == trip.sum()
    idx = horizon_index(190, 10, 192)
    assert idx.tolist() == [190, 191] + list(range(96, 104))


def test_service_levels_are_bounds_relaxed_only_where_physics_forbids_and_reported(model):
    fleet = model.fleet
    hz = Horizon.from_segments([(24.0, 1.0)])
    h = np.arange(fleet.n)
    dev = DeviceSet.from_fleet(fleet, h, 1.0, 150.0, 6.0)
    fc = model.forecaster
    exo = fc.exogenous(0, hz.n_steps + STEPS_PER_DAY, h)
    s = model.state
    inp = device_inputs(dev, hz, exo, s.t_in_c, s.ev_soc_kwh, s.bat_soc_kwh, 0)
    # heat pumps sized to the design load hold the band: no relaxation, floor = -band + tol
    assert not [r for r in inp.relaxations if r.term == "comfort"]
    assert inp.d_lo_k.max() == pytest.approx(-1.0 + COMFORT_TOL_K)
    # a heat pump of 0.1 kW cannot: the floor follows full heating and the gap is reported
    small = DeviceSet.from_fleet(fleet, h, 1.0, 150.0, 6.0)
    object.__setattr__(small, "hp_q_max_kw", np.full(small.n_hp, 0.1))
    object.__setattr__(small, "hybrid", np.zeros(small.n_hp, bool))
    inp2 = device_inputs(small, hz, exo, s.t_in_c, s.ev_soc_kwh, s.bat_soc_kwh, 0)
    comfort = [r for r in inp2.relaxations if r.term == "comfort"]
    assert comfort and all(r.amount > 0 and r.cause == "heat pump too small" for r in comfort)
    i = 0
    a_per = thermal_decay(small, hz)[i]
    full = inp2.th_rhs_k[i] + (1 - a_per) * small.r_k_per_kw[i] * 0.1
    lo = min(-1.0 + COMFORT_TOL_K, inp2.d0_k[i])
    for j in range(hz.n_periods):
        lo = min(-1.0 + COMFORT_TOL_K, a_per[j] * lo + full[j])
        assert inp2.d_lo_k[i, j] == pytest.approx(lo)
    worst = max(r.amount for r in comfort if r.household == int(small.households[small.hp[i]]))
    assert worst == pytest.approx(-1.0 - inp2.d_lo_k[i].min(), abs=1e-9)


def test_ev_range_that_charging_cannot_reach_is_capped_and_reported():
    """An EV home all day at 5 kWh with a 3.7 kW charger can store at most 5 + 0.92 * 3.7 * 6
    kWh by 06:00: asking for its full battery reports the difference."""
    n_steps = 40
    ev = dict(
        home=np.ones((n_steps, 1), bool),
        trip_kwh=np.zeros((n_steps, 1)),
        departure=np.zeros((n_steps, 1), bool),
        km=np.zeros((1, 1)),
    )
    exo = Exogenous(
        np.zeros(n_steps),
        np.zeros(n_steps),
        np.zeros((n_steps, 1)),
        np.zeros((n_steps, 1)),
        np.zeros((n_steps, 1)),
        np.zeros((n_steps, 1)),
        np.full((n_steps, 1), 3.0),
        TripSchedule(**ev),
    )
    dev = DeviceSet(
        households=np.array([0]),
        hp=np.zeros(0, int),
        hybrid=np.zeros(0, bool),
        r_k_per_kw=np.zeros(0),
        a_step=np.zeros(0),
        setpoint_c=np.zeros(0),
        hp_q_max_kw=np.zeros(0),
        ev=np.array([0]),
        ev_capacity_kwh=np.array([60.0]),
        ev_p_max_kw=np.array([3.7]),
        ev_need_kwh=np.array([60.0]),
        ev_reserve_kwh=np.array([0.0]),
        bat=np.zeros(0, int),
        bat_capacity_kwh=np.zeros(0),
        bat_p_max_kw=np.zeros(0),
        bat_eta=np.zeros(0),
        comfort_band_k=1.0,
        preheat_k=1.0,
        deadline_step=24,
    )
    hz = Horizon.from_segments([(8.0, 0.25)])
    inp = device_inputs(dev, hz, exo, np.zeros(1), np.array([5.0]), np.zeros(1), 0)
    reach = 5.0 + CHARGE_EFFICIENCY * 3.7 * 6.0
    (rel,) = inp.relaxations
    assert (rel.household, rel.term, rel.step) == (0, "ev_range", 24)
    assert rel.amount == pytest.approx(60.0 - reach)
    assert inp.ev_soc_min_kwh[0, 23] == pytest.approx(reach)


def test_envelopes_contain_the_extreme_schedules_and_ev_bounds_are_exact(model):
    fleet = model.fleet
    hz = Horizon.from_segments([(24.0, 1.0)])
    h = np.arange(fleet.n)
    dev = DeviceSet.from_fleet(fleet, h, 1.0, 150.0, 6.0)
    fc = model.forecaster
    s = model.state
    inp = device_inputs(
        dev,
        hz,
        fc.exogenous(0, hz.n_steps + STEPS_PER_DAY, h),
        s.t_in_c,
        s.ev_soc_kwh,
        s.bat_soc_kwh,
        0,
    )
    env = household_envelopes(dev, inp, hz, margin_k=0.3)
    assert np.all(env.e_min_kwh <= env.e_max_kwh + 1e-9) and np.all(env.e_min_kwh[:, 0] == 0)
    assert np.all(env.p_min_kw <= env.p_max_kw)
    dt = hz.dt_h
    # EV alone (households with only an EV): the earliest schedule (charge as soon as the
    # upper bound allows) and the latest (as late as the lower bound allows) keep 0 <= soc <= cap
    # and meet every deadline requirement
    only_ev = [p for p in range(dev.n) if p in dev.ev and p not in dev.hp and p not in dev.bat]
    assert only_ev
    for p in only_ev:
        e = list(dev.ev).index(p)
        for bound in (env.e_min_kwh[p], env.e_max_kwh[p]):
            power = np.diff(bound) / dt
            assert np.all(power >= -1e-9) and np.all(power <= inp.ev_p_max_kw[e] + 1e-9)
            soc = inp.ev_soc0_kwh[e] + CHARGE_EFFICIENCY * bound[1:] - np.cumsum(inp.ev_trip_kwh[e])
            assert np.all(soc >= inp.ev_soc_min_kwh[e] - 1e-6)
            assert np.all(soc <= dev.ev_capacity_kwh[e] + 1e-6)


def test_a_plans_cycling_loss_never_takes_the_cop_to_zero(model):
    """The plan's COP is the full-output COP times the EN 14825 cycling loss at the heat that
    holds the setpoint; in mild periods that heat tends to zero and so would the loss factor
    (cr / (Cd cr + 1 - Cd)), leaving a heat pump that 'draws' q_max / COP: hundreds of kW. At
    a part-load ratio of at least PLAN_MIN_PART_LOAD the factor stays >= 0.53 (Cd 0.9), and
    so does every period's COP relative to full output, however mild."""
    from dataclasses import replace

    from twin.devices.heatpump import min_output_kw
    from twin.optim.devices import PLAN_MIN_PART_LOAD, plan_cop

    fleet = model.fleet
    hz = Horizon.from_segments([(24.0, 1.0)])
    h = np.arange(fleet.n)
    dev = DeviceSet.from_fleet(fleet, h, 1.0, 150.0, 6.0)
    exo = model.forecaster.exogenous(0, hz.n_steps + STEPS_PER_DAY, h)
    n = len(exo.t_out_c)
    mild = replace(exo, t_out_c=np.linspace(0.0, 24.0, n))  # every operating point in a day
    cop = plan_cop(dev, hz, mild)
    cop_full = hz.mean(mild.cop[:, dev.hp]).T
    t_out = hz.mean(mild.t_out_c)[None, :]
    gain = hz.mean(mild.q_gain_kw[:, dev.hp]).T
    q_need = (dev.setpoint_c[:, None] - t_out) / dev.r_k_per_kw[:, None] - gain
    q_min = min_output_kw(dev.hp_q_max_kw[:, None], t_out, model=dev.hp_model)
    tiny = (q_need > 0) & (q_need < PLAN_MIN_PART_LOAD * q_min)
    assert tiny.any()  # the ramp reaches the periods the floor is for
    cd = dev.hp_model.cycling_cd
    f_min = PLAN_MIN_PART_LOAD / (cd * PLAN_MIN_PART_LOAD + 1.0 - cd)
    assert f_min == pytest.approx(0.526, abs=1e-3)
    assert (cop / cop_full).min() >= f_min - 1e-12
    inp = device_inputs(
        dev, hz, mild, model.state.t_in_c, model.state.ev_soc_kwh, model.state.bat_soc_kwh, 0
    )
    rated = dev.hp_q_max_kw[:, None] / cop_full
    assert (inp.hp_p_max_kw <= rated / f_min + 1e-9).all()
