"""The allocation LPs on instances small enough to solve by hand (2-3 households, 4 periods).

Every expected optimum is derived in the test's docstring; the LP must reproduce it, and its
physics (state balances, service levels) must hold in the solution.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from twin.devices.ev import CHARGE_EFFICIENCY
from twin.optim.allocation import (
    CentralAllocation,
    EnvelopeAllocation,
    FeederLimits,
    HemsPlanning,
    LimitData,
)
from twin.optim.devices import DeviceInputs, DeviceSet
from twin.optim.envelope import FlexibilityEnvelope
from twin.optim.horizon import Horizon
from twin.optim.options import SolverOptions, Weights

ETA = CHARGE_EFFICIENCY
HOURLY4 = Horizon.from_segments([(4.0, 1.0)])
E0 = np.zeros(0)


def devset(
    n: int,
    ev: list[int] = (),
    hp: list[int] = (),
    bat: list[int] = (),
    *,
    ev_p_max_kw: float = 11.0,
    ev_capacity_kwh: float = 60.0,
    r_k_per_kw: float = 5.0,
    c_kwh_per_k: float = 10.0,
    hp_q_max_kw: float = 8.0,
    bat_kwh: float = 10.0,
    bat_kw: float = 5.0,
) -> DeviceSet:
    ev, hp, bat = (np.array(x, dtype=np.int64) for x in (ev, hp, bat))
    a = np.exp(-0.25 / (r_k_per_kw * c_kwh_per_k))
    return DeviceSet(
        households=np.arange(n),
        hp=hp,
        hybrid=np.zeros(len(hp), bool),
        r_k_per_kw=np.full(len(hp), r_k_per_kw),
        a_step=np.full(len(hp), a),
        setpoint_c=np.full(len(hp), 20.0),
        hp_q_max_kw=np.full(len(hp), hp_q_max_kw),
        ev=ev,
        ev_capacity_kwh=np.full(len(ev), ev_capacity_kwh),
        ev_p_max_kw=np.full(len(ev), ev_p_max_kw),
        ev_need_kwh=np.full(len(ev), 30.0),
        ev_reserve_kwh=np.zeros(len(ev)),  # the hand-computed optima keep no reserve
        bat=bat,
        bat_capacity_kwh=np.full(len(bat), bat_kwh),
        bat_p_max_kw=np.full(len(bat), bat_kw),
        bat_eta=np.full(len(bat), np.sqrt(0.9)),
        comfort_band_k=1.0,
        preheat_k=1.0,
        deadline_step=24,
    )


def inputs(
    dev: DeviceSet,
    hz: Horizon,
    *,
    p_inflex_kw: np.ndarray | None = None,
    ev_soc_min: np.ndarray | None = None,
    t_out_c: float = 0.0,
    cop: float = 3.0,
    d0_k: float = 0.0,
    bat_soc0: float = 5.0,
) -> DeviceInputs:
    n_per = hz.n_periods
    a_per = dev.a_step[:, None] ** hz.steps[None, :]
    th_rhs = (1 - a_per) * (t_out_c - dev.setpoint_c[:, None]) * np.ones((dev.n_hp, n_per))
    return DeviceInputs(
        k0=0,
        th_rhs_k=th_rhs,
        cop=np.full((dev.n_hp, n_per), cop),
        hp_p_max_kw=dev.hp_q_max_kw[:, None] / cop * np.ones((1, n_per)),
        d0_k=np.full(dev.n_hp, d0_k),
        d_lo_k=np.full((dev.n_hp, n_per), -dev.comfort_band_k),
        d_hi_k=np.full((dev.n_hp, n_per), dev.preheat_k),
        ev_p_max_kw=np.repeat(dev.ev_p_max_kw[:, None], n_per, 1),
        ev_trip_kwh=np.zeros((dev.n_ev, n_per)),
        ev_soc0_kwh=np.zeros(dev.n_ev),
        ev_soc_min_kwh=np.zeros((dev.n_ev, n_per)) if ev_soc_min is None else ev_soc_min,
        bat_soc0_kwh=np.full(dev.n_bat, bat_soc0),
        p_inflex_kw=np.zeros((dev.n, n_per)) if p_inflex_kw is None else p_inflex_kw,
    )


def limit_data(inflexible: np.ndarray, limit_kw: float = 1e4, sunk: float = 0.0) -> LimitData:
    inflexible = np.asarray(inflexible, dtype=float)
    return LimitData(
        rhs_kw=(limit_kw - inflexible)[None, :], inflexible_kw=inflexible, sunk_peak_kw=sunk
    )


OPTS = SolverOptions(time_limit_s=30.0)


def test_two_evs_flatten_the_peak_to_the_hand_computed_optimum():
    """Two EVs, empty, home for 4 hours, must store 9.2 and 27.6 kWh (10 and 30 kWh from the
    grid at 92 %); the rest of the feeder draws [2, 0, 0, 2] kW. Total energy 44 kWh over 4 h:
    a flat 11 kW is feasible (charging 9, 11, 11, 9 kW in total, each EV <= 11 kW), so the
    minimum peak is exactly 11 kW."""
    dev = devset(2, ev=[0, 1])
    soc_min = np.zeros((2, 4))
    soc_min[:, 3] = [10 * ETA, 30 * ETA]
    inp = inputs(dev, HOURLY4, ev_soc_min=soc_min)
    alloc = CentralAllocation(dev, HOURLY4, FeederLimits.transformer_only(2), Weights(), OPTS)
    res = alloc.solve(inp, limit_data([2.0, 0.0, 0.0, 2.0]))
    assert res.stats.ok
    assert res.peak_kw == pytest.approx(11.0, abs=1e-6)
    np.testing.assert_allclose(res.total_kw + [2, 0, 0, 2], 11.0, atol=1e-6)
    # state of charge: balance and the guaranteed energy at the deadline
    soc = res.plan.ev_soc_kwh
    np.testing.assert_allclose(np.diff(soc, axis=1), ETA * res.plan.p_ev_kw, atol=1e-7)
    assert soc[0, -1] >= 10 * ETA - 1e-7 and soc[1, -1] >= 30 * ETA - 1e-7
    assert res.plan.p_ev_kw.max() <= 11.0 + 1e-7


def test_re_solve_with_new_data_matches_a_fresh_model():
    """The model is built once: after new data is pushed, the re-solve gives the optimum a model
    built from scratch for that data gives (here: 40 kWh over 4 h with [0, 4, 4, 0] kW of other
    load -> a flat 12 kW)."""
    dev = devset(2, ev=[0, 1])
    soc_min = np.zeros((2, 4))
    soc_min[:, 3] = [10 * ETA, 30 * ETA]
    alloc = CentralAllocation(dev, HOURLY4, FeederLimits.transformer_only(2), Weights(), OPTS)
    alloc.solve(inputs(dev, HOURLY4, ev_soc_min=soc_min), limit_data([2.0, 0.0, 0.0, 2.0]))
    soc_min[:, 3] = [20 * ETA, 20 * ETA]
    again = alloc.solve(inputs(dev, HOURLY4, ev_soc_min=soc_min), limit_data([0.0, 4.0, 4.0, 0.0]))
    fresh = CentralAllocation(
        dev, HOURLY4, FeederLimits.transformer_only(2), Weights(), OPTS
    ).solve(inputs(dev, HOURLY4, ev_soc_min=soc_min), limit_data([0.0, 4.0, 4.0, 0.0]))
    assert again.peak_kw == pytest.approx(12.0, abs=1e-6)
    assert again.stats.objective == pytest.approx(fresh.stats.objective, rel=1e-9, abs=1e-9)
    assert again.stats.highs_s >= 0.0


def test_heat_pump_minimum_peak_is_the_constant_power_that_ends_on_the_comfort_floor():
    """One all-electric heat pump, 0 °C outside, no gains, starting at the setpoint. Temperatures
    only have a lower bound that matters, the dynamics are monotone, so the least peak is a
    constant power p* whose trajectory ends exactly on the floor (any schedule with a lower
    maximum ends colder). With A = a^4 per hour, d4 = sum_j A^(3-j) (1-A) (R cop p* + T_out -
    T_set), and d4 = -band + tolerance."""
    dev = devset(1, hp=[0])
    inp = inputs(dev, HOURLY4, t_out_c=0.0, cop=3.0)
    floor = -1.0 + 0.02
    inp.d_lo_k[:] = floor
    alloc = CentralAllocation(dev, HOURLY4, FeederLimits.transformer_only(1), Weights(), OPTS)
    res = alloc.solve(inp, limit_data(np.zeros(4)))
    a = dev.a_step[0] ** 4
    r = dev.r_k_per_kw[0]
    weights = np.array([a ** (3 - j) * (1 - a) for j in range(4)])
    p_star = (floor / weights.sum() + 20.0) / (r * 3.0)  # solve d4 = floor for p
    assert res.peak_kw == pytest.approx(p_star, rel=1e-6)
    np.testing.assert_allclose(res.plan.p_hp_kw[0], p_star, rtol=1e-6)
    d = res.plan.d_k[0]
    assert d[-1] == pytest.approx(floor, abs=1e-7) and np.all(d >= floor - 1e-9)
    # the temperature path is the exact 1R1C solution for the planned power
    exact = [0.0]
    for _ in range(4):
        exact.append(a * exact[-1] + (1 - a) * (r * 3.0 * p_star - 20.0))
    np.testing.assert_allclose(d, exact, atol=1e-7)


def test_battery_shaves_the_peak_by_its_power_and_energy():
    """Other load [6, 6, 2, 2] kW, one 10 kWh / 5 kW battery at 5 kWh (eta = sqrt(0.9) each
    way). Discharging x kWh over the two first hours and recharging it (x / eta^2 grid
    energy... bounded by 5 kWh stored -> x <= 5 * eta kWh delivered): the best flat level over
    the first two hours is 6 - 5 * eta / 2, as long as the recharge fits under it later."""
    dev = devset(1, bat=[0])
    alloc = CentralAllocation(dev, HOURLY4, FeederLimits.transformer_only(1), Weights(), OPTS)
    res = alloc.solve(inputs(dev, HOURLY4, bat_soc0=5.0), limit_data([6.0, 6.0, 2.0, 2.0]))
    eta = np.sqrt(0.9)
    assert res.peak_kw == pytest.approx(6.0 - 5.0 * eta / 2.0, abs=1e-6)
    soc = res.plan.bat_soc_kwh[0]
    assert soc.min() >= -1e-9 and soc.max() <= 10 + 1e-9


def test_envelope_allocation_finds_the_flat_peak():
    """Two households as envelopes only: each may draw 0-8 kW and must have used 10 kWh by the
    end (e_min = 10 at the last state, e_max large). Other load [4, 0, 0, 4] kW: 28 kWh over
    4 h -> a flat 7 kW (4 + 3, 7, 7, 4 + 3) is feasible, so the optimum is 7 kW."""
    n, n_per = 2, 4
    e_min = np.zeros((n, n_per + 1))
    e_min[:, -1] = 10.0
    env = FlexibilityEnvelope(
        np.zeros((n, n_per)), np.full((n, n_per), 8.0), e_min, np.full((n, n_per + 1), 100.0)
    )
    env.e_max_kwh[:, 0] = 0.0
    alloc = EnvelopeAllocation(n, HOURLY4, FeederLimits.transformer_only(n), Weights(), OPTS)
    res = alloc.allocate(env, limit_data([4.0, 0.0, 0.0, 4.0]))
    assert res.stats.ok
    assert res.peak_kw == pytest.approx(7.0, abs=1e-6)
    assert res.flex_kw.sum(axis=1) == pytest.approx([10.0, 10.0], abs=1e-6)


def test_a_feeder_limit_that_cannot_hold_is_exceeded_and_reported_not_the_service_level():
    """Limit 5 kW, two EVs needing 40 kWh in 4 h: the service levels are hard, so the limit
    gives: exactly 40 / 4 - 5 = 5 kW over in every hour (a flat 10 kW is the least excess)."""
    dev = devset(2, ev=[0, 1])
    soc_min = np.zeros((2, 4))
    soc_min[:, 3] = [20 * ETA, 20 * ETA]
    alloc = CentralAllocation(dev, HOURLY4, FeederLimits.transformer_only(2), Weights(), OPTS)
    res = alloc.solve(
        inputs(dev, HOURLY4, ev_soc_min=soc_min), limit_data(np.zeros(4), limit_kw=5.0)
    )
    assert res.stats.ok
    np.testing.assert_allclose(res.over_kw[0], 5.0, atol=1e-6)
    assert res.plan.ev_soc_kwh[:, -1] == pytest.approx([20 * ETA, 20 * ETA], abs=1e-6)


def test_lazy_cable_row_is_added_when_the_plan_would_overload_it():
    """EV 0 (12 kWh from the grid) sits behind a cable that carries nothing in hour 0 and 4 kW
    after (a lazy row); EV 1 needs 28 kWh; other load [-10, 0, 0, 0] kW. Without the cable the
    optimum is a flat 7.5 kW (40 - 10 over 4 h) with EV 0 charging in hour 0. With it, EV 0
    must charge 4, 4, 4 kW in hours 1-3; EV 1 at most 11 kW in hour 0, so hours 1-3 carry
    the remaining 29 kWh: peak 29 / 3 kW."""
    dev = devset(2, ev=[0, 1])
    soc_min = np.zeros((2, 4))
    soc_min[:, 3] = [12 * ETA, 28 * ETA]
    coef = np.array([[1.0, 1.0], [1.0, 0.0]])
    limits = FeederLimits(coef, np.ones(2), ("trafo", "line"), lazy=np.array([False, True]))
    alloc = CentralAllocation(dev, HOURLY4, limits, Weights(), OPTS)
    assert not alloc.limits.active[1]
    rhs = np.array([np.full(4, 1e4), [0.0, 4.0, 4.0, 4.0]])
    res = alloc.solve(
        inputs(dev, HOURLY4, ev_soc_min=soc_min),
        LimitData(rhs_kw=rhs, inflexible_kw=np.array([-10.0, 0.0, 0.0, 0.0])),
    )
    assert alloc.limits.active[1]
    np.testing.assert_allclose(res.plan.p_ev_kw[0], [0.0, 4.0, 4.0, 4.0], atol=1e-6)
    assert res.peak_kw == pytest.approx(29.0 / 3.0, abs=1e-6)
    assert res.over_kw.max() == pytest.approx(0.0, abs=1e-7)


def test_hems_planning_stays_in_its_band_unless_a_service_level_needs_more():
    """One EV needing 30 kWh from the grid in 4 h. Band 8 kW per hour: it fits (7.5 kW flat
    or any split), no excess. Band 5 kW: 20 kWh fit, the other 10 kWh are band excess (and the
    service level is met)."""
    dev = devset(1, ev=[0])
    soc_min = np.zeros((1, 4))
    soc_min[0, 3] = 30 * ETA
    hems = HemsPlanning(dev, HOURLY4, Weights(), OPTS)
    _, plan, excess = hems.plan(inputs(dev, HOURLY4, ev_soc_min=soc_min), np.full((1, 4), 8.0))
    assert excess.max() == pytest.approx(0.0, abs=1e-7)
    _, plan, excess = hems.plan(inputs(dev, HOURLY4, ev_soc_min=soc_min), np.full((1, 4), 5.0))
    assert excess.sum() == pytest.approx(10.0, abs=1e-6)
    assert plan.ev_soc_kwh[0, -1] == pytest.approx(30 * ETA, abs=1e-6)


# -- the central LP per group of cable branches (GroupedAllocation) -------------------------------


def test_branch_groups_keep_every_local_row_whole_and_pack_up_to_the_size():
    """Rows that reach every household (transformer) are shared; a cable row's households
    stay together; parts are packed first-fit by decreasing size."""
    from twin.optim.allocation import branch_groups

    coef = np.zeros((4, 7))
    coef[0] = 1.0  # transformer
    coef[1, [0, 1, 2]] = 1.0  # branch A (3)
    coef[2, [3, 4]] = 0.8  # branch B (2)
    coef[3, [5]] = 1.0  # branch C (1); household 6 is on no cable row
    groups = branch_groups(coef, 3)
    assert [g.tolist() for g in groups] == [[0, 1, 2], [3, 4, 5], [6]]
    covered = np.sort(np.concatenate(groups))
    np.testing.assert_array_equal(covered, np.arange(7))
    for row in coef[1:]:  # no local row is split
        members = set(np.flatnonzero(row).tolist())
        assert sum(bool(members & set(g.tolist())) for g in groups) == 1
    assert max(len(g) for g in groups) <= 3
    assert len(branch_groups(coef, 100)) == 1


def test_subset_of_a_device_set_and_its_plans_put_back_together():
    from twin.optim.subsets import Subset, merge_plans

    dev = devset(5, ev=[0, 2, 3], hp=[1, 2, 4], bat=[3, 4])
    whole = Subset(dev, np.arange(5)).devices()
    for f in dataclasses.fields(dev):
        a, b = getattr(dev, f.name), getattr(whole, f.name)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
    part = Subset(dev, np.array([2, 4]))
    sub = part.devices()
    np.testing.assert_array_equal(sub.households, [2, 4])
    np.testing.assert_array_equal(sub.hp, [0, 1])  # households 2 and 4 have heat pumps
    np.testing.assert_array_equal(sub.ev, [0])  # household 2's EV
    np.testing.assert_array_equal(sub.bat, [1])  # household 4's battery
    inp = inputs(dev, HOURLY4)
    inp.p_inflex_kw[:] = np.arange(5)[:, None]
    np.testing.assert_array_equal(part.inputs(inp).p_inflex_kw[:, 0], [2, 4])
    # plans of two complementary subsets merge into the plan of the whole set
    rest = Subset(dev, np.array([0, 1, 3]))
    limits = FeederLimits.transformer_only
    plans = []
    for s in (part, rest):
        d = s.devices()
        res = CentralAllocation(d, HOURLY4, limits(d.n), Weights(), OPTS).solve(
            s.inputs(inp), limit_data(np.zeros(4))
        )
        plans.append((s, res.plan))
    merged = merge_plans(dev, plans)
    np.testing.assert_array_equal(merged.p_flex_kw[[2, 4]], plans[0][1].p_flex_kw)
    np.testing.assert_array_equal(merged.p_flex_kw[[0, 1, 3]], plans[1][1].p_flex_kw)
    np.testing.assert_array_equal(merged.p_ev_kw[[1]], plans[0][1].p_ev_kw)  # household 2
    np.testing.assert_array_equal(merged.d_k[[0]], plans[1][1].d_k)  # household 1's house


def _four_evs_two_branches(line_b_kw: float):
    """Four empty EVs home for 4 h that must draw 10, 30, 10 and 30 kWh from the grid;
    households 0-1 on cable A, 2-3 on cable B (limit ``line_b_kw``), the rest of the feeder
    draws [2, 0, 0, 2] kW."""
    dev = devset(4, ev=[0, 1, 2, 3])
    soc_min = np.zeros((4, 4))
    soc_min[:, 3] = np.array([10, 30, 10, 30]) * ETA
    coef = np.array([[1.0] * 4, [1.0, 1.0, 0, 0], [0, 0, 1.0, 1.0]])
    limits = FeederLimits(coef, np.ones(3), ("trafo", "line A", "line B"))
    infl = np.array([2.0, 0.0, 0.0, 2.0])
    rhs = np.array([1e4 - infl, np.full(4, 1e4), np.full(4, line_b_kw)])
    return dev, inputs(dev, HOURLY4, ev_soc_min=soc_min), limits, LimitData(rhs, infl)


@pytest.mark.parametrize(
    ("line_b_kw", "peak"),
    [
        # 80 kWh from the grid + 4 kWh other load over 4 h: a flat 21 kW
        (1e4, 21.0),
        # cable B carries at most 10 kW: its EVs must charge 10 kW every hour (40 kWh), cable
        # A's 9, 11, 11, 9 kW: the feeder still flat at 21 kW
        (10.0, 21.0),
    ],
)
def test_grouped_allocation_reaches_the_central_optimum_and_keeps_the_cable_row(
    line_b_kw: float, peak: float
):
    """Two groups (one per cable): after the share pass and one sweep the coincident peak is
    the central LP's hand-computed optimum, cable B's row holds exactly, every EV gets its
    energy; and each group's LP is the size of a two-household LP, not a four-household one
    (the point of grouping: the LP per solve does not grow with the feeder)."""
    from twin.optim.allocation import GroupedAllocation

    dev, inp, limits, lim = _four_evs_two_branches(line_b_kw)
    central = CentralAllocation(dev, HOURLY4, limits, Weights(), OPTS)
    ref = central.solve(inp, lim)
    grouped = GroupedAllocation(dev, HOURLY4, limits, Weights(), OPTS, 2, sweeps=1)
    assert [s.pos.tolist() for s, _, _ in grouped.groups] == [[0, 1], [2, 3]]
    res = grouped.solve(inp, lim)
    assert res.stats.ok
    assert ref.peak_kw == pytest.approx(peak, abs=1e-6)
    assert res.peak_kw == pytest.approx(peak, abs=1e-6)
    np.testing.assert_allclose(res.total_kw + lim.inflexible_kw, peak, atol=1e-6)
    assert (res.flex_kw[2] + res.flex_kw[3]).max() <= line_b_kw + 1e-6
    if line_b_kw < 1e3:  # the cable row binds: cable B's EVs charge at its limit throughout
        np.testing.assert_allclose(res.flex_kw[2] + res.flex_kw[3], line_b_kw, atol=1e-6)
    assert res.over_kw.max() == pytest.approx(0.0, abs=1e-7)
    soc = res.plan.ev_soc_kwh
    assert np.all(soc[:, -1] >= np.array([10, 30, 10, 30]) * ETA - 1e-7)
    np.testing.assert_allclose(np.diff(soc, axis=1), ETA * res.plan.p_ev_kw, atol=1e-7)
    two = CentralAllocation(devset(2, ev=[0, 1]), HOURLY4, limits_2(), Weights(), OPTS)
    assert max(a.lp.n_cols for _, _, a in grouped.groups) == two.lp.n_cols < central.lp.n_cols
    # re-solved warm with new data (the model is built once)
    again = grouped.solve(inp, lim)
    assert again.peak_kw == pytest.approx(peak, abs=1e-6)


def limits_2() -> FeederLimits:
    """The rows a two-household group of :func:`_four_evs_two_branches` has."""
    return FeederLimits(np.array([[1.0, 1.0], [1.0, 1.0]]), np.ones(2), ("trafo", "line"))


def test_grouped_allocation_with_one_group_is_the_central_lp():
    from twin.optim.allocation import GroupedAllocation

    dev, inp, limits, lim = _four_evs_two_branches(10.0)
    ref = CentralAllocation(dev, HOURLY4, limits, Weights(), OPTS).solve(inp, lim)
    one = GroupedAllocation(dev, HOURLY4, limits, Weights(), OPTS, max_households=4)
    assert len(one.groups) == 1
    res = one.solve(inp, lim)
    np.testing.assert_allclose(res.flex_kw, ref.flex_kw, atol=1e-7)
    assert res.peak_kw == pytest.approx(ref.peak_kw, abs=1e-7)


def test_grouped_allocation_share_pass_alone_keeps_every_row_and_the_service():
    """Without a sweep each group plans against its share: cable A's EVs (40 kWh) flat at
    10.5 kW on their half of the other load [1, 0, 0, 1] (so 9.5, 10.5, 10.5, 9.5 kW of
    charging), cable B's at its 10 kW limit: the feeder draws 21.5, 20.5, 20.5, 21.5 kW,
    0.5 kW above the joint optimum's flat 21 kW, with every row and every EV's energy kept."""
    from twin.optim.allocation import GroupedAllocation

    dev, inp, limits, lim = _four_evs_two_branches(10.0)
    res = GroupedAllocation(dev, HOURLY4, limits, Weights(), OPTS, 2).solve(inp, lim)
    assert res.stats.ok
    np.testing.assert_allclose(
        res.total_kw + lim.inflexible_kw, [21.5, 20.5, 20.5, 21.5], atol=1e-6
    )
    assert res.peak_kw == pytest.approx(21.5, abs=1e-6)
    np.testing.assert_allclose(res.flex_kw[2] + res.flex_kw[3], 10.0, atol=1e-6)
    assert res.over_kw.max() == pytest.approx(0.0, abs=1e-7)
    assert np.all(res.plan.ev_soc_kwh[:, -1] >= np.array([10, 30, 10, 30]) * ETA - 1e-7)
