"""Cost-minimising HEMS contracts (tou, dynamic, capacity): each household answers its own
tariff; behaviour and service levels are judged on the simulated result."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_optim_devices import small_inputs

from twin.config import compose
from twin.contracts import make_contract
from twin.contracts.firm import FirmContract
from twin.contracts.tariff_hems import TariffHemsContract
from twin.errors import TwinError
from twin.kpi import stored_electricity_kwh
from twin.model import FeederModel
from twin.optim.cost_hems import CostHems, CostWeights, PriceInputs, ev_need_per_period
from twin.optim.devices import DeviceInputs, DeviceSet, device_inputs
from twin.optim.horizon import Horizon
from twin.optim.options import SolverOptions
from twin.tariffs import bills, make_tariff, stored_value_eur
from twin.timegrid import DT_H, STEPS_PER_DAY
from twin.weather import load_weather

WEATHER = load_weather()
SERVICE = type("Service", (), {"comfort_band_k": 1.0, "ev_range_km": 150.0, "ev_deadline_h": 6.0})()


def simulate(contract, tariff: str, n: int = 12, days: int = 4) -> FeederModel:
    """``n`` households of the central 2040 scenario (seed 3: 8 heat pumps, 6 EVs, 2 batteries),
    one warm-up day, billed and planned with ``tariff``."""
    inp = small_inputs(n=n, days=days, warmup_days=1)
    prices = make_tariff(
        compose([f"tariff={tariff}"]).tariff, inp.window, WEATHER.t_out_c, WEATHER.ghi_w_m2
    )
    m = FeederModel(dataclasses.replace(inp, tariff=prices), contract, seed=3)
    for _ in range(m.n_steps):
        m.step()
    return m


def hems(name: str, *overrides: str) -> TariffHemsContract:
    """Every household fully automated: these tests judge the cost-minimising HEMS itself
    (the other response types: tests/test_tariff_response.py)."""
    cfg = compose([f"contract={name}", "contract.automation_share=1", *overrides])
    return make_contract(cfg.contract)


@pytest.fixture(scope="module")
def runs() -> dict[str, FeederModel]:
    out = {"firm": simulate(FirmContract(), "flat")}
    for name in ("tou", "dynamic", "capacity"):
        out[name] = simulate(hems(name), name)
    return out


def reported(m: FeederModel, name: str) -> np.ndarray:
    return m.log[name][m.window.report]


def test_contract_selects_its_tariff_and_a_contradicting_tariff_is_rejected():
    for name in ("tou", "dynamic", "capacity"):
        cfg = compose([f"contract={name}"])
        assert cfg.tariff.name == name and cfg.contract.tariff == name
        assert cfg.contract.comfort_band_k == cfg.service.comfort_band_k
        assert isinstance(make_contract(cfg.contract), TariffHemsContract)
    assert compose([]).tariff.name == "flat" and compose([]).contract.name == "firm"
    # an explicit tariff wins the composition, and the run stops with one clear line
    cfg = compose(["contract=tou", "tariff=flat"])
    assert cfg.tariff.name == "flat"
    inp = small_inputs(n=3, days=1)
    flat = make_tariff(cfg.tariff, inp.window, WEATHER.t_out_c, WEATHER.ghi_w_m2)
    with pytest.raises(
        TwinError, match="contract=tou plans against tariff=tou, but the run uses tariff=flat"
    ):
        FeederModel(dataclasses.replace(inp, tariff=flat), make_contract(cfg.contract), seed=3)
    with pytest.raises(TwinError, match="contract.replan_every_h"):
        make_contract(compose(["contract=tou", "contract.replan_every_h=48"]).contract)
    with pytest.raises(TwinError, match="contract.weights"):
        make_contract(compose(["contract=tou", "+contract.weights.cheap=1"]).contract)


def test_time_of_use_moves_ev_and_heat_pump_energy_out_of_the_dear_blocks(runs):
    firm, tou = runs["firm"], runs["tou"]
    off_peak = tou.inputs.tariff.grid_fee_eur_per_kwh[tou.window.report] == 0.02
    evening = ~off_peak & (np.arange(off_peak.size) % STEPS_PER_DAY >= 17 * 4)

    def ev_off_peak_share(m: FeederModel) -> float:
        ev = reported(m, "p_ev_kw")
        return float(ev[off_peak].sum() / ev.sum())

    # firm charges on arrival (partly in the evening block); the HEMS waits for the cheap block
    assert ev_off_peak_share(firm) < 0.5 and ev_off_peak_share(tou) > 0.99
    hp_evening = {k: reported(m, "p_hp_kw")[evening].sum() * DT_H for k, m in runs.items()}
    # pre-heats, then coasts in the band: within the day's 1 K swing (the E.DSO wording)
    assert hp_evening["tou"] < 0.6 * hp_evening["firm"]
    # the two batteries discharge in the dear blocks and never charge from the grid there
    bat = reported(tou, "p_bat_kw")[:, tou.fleet.has_battery]
    assert bat[~off_peak].sum() < -1.0 and bat[~off_peak].max() < 0.05


def test_dynamic_prices_move_ev_charging_to_cheap_hours(runs):
    price = runs["dynamic"].inputs.tariff.import_eur_per_kwh[runs["dynamic"].window.report]

    def paid_per_kwh(m: FeederModel) -> float:
        ev = reported(m, "p_ev_kw").sum(axis=1)
        return float(price @ ev / ev.sum())

    m = runs["dynamic"]
    home = m.exo.trips.home[m.window.report][:, m.fleet.has_ev]
    home_price = float((price[:, None] * home).sum() / home.sum())  # mean price while cars are home
    assert paid_per_kwh(m) < paid_per_kwh(runs["firm"]) - 0.015
    assert paid_per_kwh(m) < home_price


def test_capacity_tariff_lowers_each_households_own_peak(runs):
    firm, cap = runs["firm"], runs["capacity"]
    floor_kw = cap.inputs.tariff.capacity_min_kw
    p_firm = reported(firm, "p_net_kw").max(axis=0)
    p_cap = reported(cap, "p_net_kw").max(axis=0)
    # the EV households (since issue 11 a heat-pump home's own peak can be its hot-water tank
    # recovering after a draw its HEMS did not expect)
    high = (p_firm > floor_kw + 0.5) & cap.fleet.has_ev
    assert high.sum() >= 4
    assert np.all(p_cap[high] < p_firm[high] - 0.5)
    # below the tariff's minimum billed peak a kW costs nothing: no household goes far above it
    assert np.all(p_cap <= np.maximum(p_firm, floor_kw) + 0.6)
    assert p_cap[high].mean() < 0.4 * p_firm[high].mean()


@pytest.mark.parametrize("name", ["tou", "dynamic", "capacity"])
def test_service_levels_met_and_each_household_pays_less_for_the_same_needs(runs, name):
    m, c = runs[name], runs[name].contract
    rep = m.window.report
    k = m.household_kpis(SERVICE)
    assert k["comfort_days_met_share"] == 1.0 and k["ev_days_met_share"] == 1.0
    hp = m.fleet.has_hp
    assert np.all(m.log["t_in_c"][:, hp] >= m.fleet.setpoint_c[hp] - 1.0 - 1e-9)
    out = m.contract_kpis()
    assert out["hems_comfort_households_missed"] == 0 and out["hems_ev_deadlines_missed"] == 0
    assert out["hems_replans_failed"] == 0 and out["hems_fallback_steps"] == 0
    # one LP for the run, re-solved once a day (first plan at the window's start, after the
    # common firm warm-up, then at every noon)
    noons = m.window.days
    assert out["hems_replans"] == c.hems.solves == 1 + noons and out["hems_lp_columns"] > 0
    # under its own tariff the HEMS pays less than the firm household behaviour would
    prices = m.inputs.tariff.sliced(rep)

    def corrected_bill(run: FeederModel) -> np.ndarray:
        # equal terms: both start from the firm warm-up's state; what each leaves stored at
        # the end (EV, battery, building heat) is valued at the mean import price
        log = {n: v[rep] for n, v in run.log.items()}
        stored = stored_electricity_kwh(log, run.fleet, run.start_state())["total_kwh"]
        bill = bills(reported(run, "p_net_kw"), prices)["total_eur"].to_numpy()
        return bill - stored_value_eur(stored, prices)

    own, passive = corrected_bill(m), corrected_bill(runs["firm"])
    assert (own - passive).sum() < -10.0 and (own - passive).max() < 0.2


def test_the_hems_optimises_the_money_its_bill_charges(runs):
    """What the LP prices (import/export per kWh, capacity per kW) is what the bill charges."""
    for name in ("tou", "capacity"):
        m = runs[name]
        t = m.inputs.tariff.sliced(m.window.report)
        p = reported(m, "p_net_kw")
        b = bills(p, t)
        imp, exp = np.clip(p, 0, None) * DT_H, np.clip(-p, 0, None) * DT_H
        energy = t.import_eur_per_kwh @ imp - t.export_eur_per_kwh @ exp
        fixed = t.grid_fee_eur_per_day * len(p) / STEPS_PER_DAY * (1 + t.vat)
        np.testing.assert_allclose(
            b.total_eur - fixed - b.capacity_eur * (1 + t.vat), energy, atol=1e-9
        )


def one_battery(eta: float = 0.95) -> DeviceSet:
    """A household with a 4 kWh / 2 kW battery and nothing else controllable."""
    e, one = np.zeros(0), np.ones(1)
    return DeviceSet(
        households=np.array([0]),
        hp=np.zeros(0, int),
        hybrid=np.zeros(0, bool),
        r_k_per_kw=e,
        a_step=e,
        setpoint_c=e,
        hp_q_max_kw=e,
        ev=np.zeros(0, int),
        ev_capacity_kwh=e,
        ev_p_max_kw=e,
        ev_need_kwh=e,
        ev_reserve_kwh=e,
        bat=np.array([0]),
        bat_capacity_kwh=4.0 * one,
        bat_p_max_kw=2.0 * one,
        bat_eta=eta * one,
        comfort_band_k=1.0,
        preheat_k=1.0,
        deadline_step=24,
    )


def battery_inputs(n_per: int, load_kw: float = 1.0) -> DeviceInputs:
    z = np.zeros((0, n_per))
    return DeviceInputs(
        k0=0,
        th_rhs_k=z,
        cop=z,
        hp_p_max_kw=z,
        d0_k=np.zeros(0),
        d_lo_k=z,
        d_hi_k=z,
        ev_p_max_kw=z,
        ev_trip_kwh=z,
        ev_soc0_kwh=np.zeros(0),
        ev_soc_min_kwh=z,
        bat_soc0_kwh=np.zeros(1),
        p_inflex_kw=np.full((1, n_per), load_kw),
    )


def test_a_battery_shifts_the_house_load_only_when_the_spread_pays_for_losses_and_wear():
    hz = Horizon.from_segments([(4.0, 1.0)])
    lp = CostHems(one_battery(), hz, CostWeights(), SolverOptions())
    inp = battery_inputs(4)
    no_ev = np.zeros((0, 4))
    # cheap then dear: store just what covers the dear hours' 2 kWh, sell nothing back
    stats, plan = lp.solve(
        inp, PriceInputs(np.array([0.1, 0.1, 0.5, 0.5]), np.full(4, 0.05), no_ev)
    )
    assert stats.ok
    np.testing.assert_allclose(plan.import_kw[0, 2:], 0.0, atol=1e-7)
    np.testing.assert_allclose(plan.export_kw, 0.0, atol=1e-7)
    np.testing.assert_allclose(plan.import_kw[0, :2].sum(), 2.0 + 2.0 / 0.95**2, rtol=1e-7)
    np.testing.assert_allclose(plan.devices.bat_soc_kwh[0, -1], 0.0, atol=1e-7)
    # a spread smaller than losses and wear: the battery stays idle (same model, re-solved warm)
    stats, plan = lp.solve(
        inp, PriceInputs(np.array([0.30, 0.30, 0.31, 0.31]), np.full(4, 0.05), no_ev)
    )
    assert stats.ok and lp.solves == 2
    np.testing.assert_allclose(plan.devices.p_bat_kw, 0.0, atol=1e-7)
    np.testing.assert_allclose(plan.import_kw, 1.0, atol=1e-7)


def test_unreachable_service_levels_are_penalised_not_infeasible():
    """A house 5 K below its band and an empty EV due in an hour: the plan heats and charges
    at full power, reports what it cannot reach, and never fails."""
    m = FeederModel(small_inputs(n=12, days=2), FirmContract(), seed=3)
    f = m.fleet
    h = np.flatnonzero(f.has_hp | f.has_ev)
    dev = DeviceSet.from_fleet(f, h, 1.0, 150.0, 6.0)
    hz = Horizon.from_segments([(12.0, 1.0)])
    k0 = 5 * 4  # 05:00, the EV range is due at 06:00
    fc = m.forecaster.exogenous(k0, hz.n_steps + STEPS_PER_DAY, h)
    home = np.ones_like(fc.trips.home)  # every car at home, no trips
    fc = dataclasses.replace(
        fc,
        trips=dataclasses.replace(fc.trips, home=home, trip_kwh=0.0 * fc.trips.trip_kwh),
        q_dhw_kw=None,  # no hot-water draws known: the tanks do not compete for the heat pump
    )
    t_in = f.setpoint_c[h] - 6.0
    inp = device_inputs(dev, hz, fc, t_in, np.zeros(len(h)), f.bat_soc0_kwh[h], k0)
    assert {r.term for r in inp.relaxations} == {"comfort", "ev_range"}
    need = ev_need_per_period(dev, hz, fc, k0)
    lp = CostHems(dev, hz, CostWeights(), SolverOptions())
    price = np.full(hz.n_periods, 0.3)
    stats, plan = lp.solve(inp, PriceInputs(price, np.full(hz.n_periods, 0.05), need))
    assert stats.ok
    electric = ~dev.hybrid
    np.testing.assert_allclose(
        plan.devices.p_hp_kw[electric, 0], inp.hp_p_max_kw[electric, 0], rtol=1e-6
    )
    np.testing.assert_allclose(plan.devices.p_ev_kw[:, 0], dev.ev_p_max_kw, rtol=1e-6)
    assert np.all(plan.below_band_kh[electric] > 0) and np.all(plan.ev_short_kwh > 0)


def test_a_failed_solve_falls_back_to_firm_behaviour_and_is_reported():
    # (without the chargers' random delay, which a charger applies whoever decides)
    c = hems("tou", "solver.time_limit_s=0", "contract.random_delay_max_s=0")
    m = simulate(c, "tou", n=6, days=1)
    out = m.contract_kpis()
    # the first plan at the window's start (after the firm warm-up), then at noon
    assert out["hems_replans_failed"] == out["hems_replans"] == 2 and out["hems_failures"]
    assert out["hems_fallback_steps"] == m.window.n_steps
    firm = simulate(FirmContract(), "tou", n=6, days=1)
    np.testing.assert_allclose(m.log["p_net_kw"], firm.log["p_net_kw"])


def test_a_tank_starting_above_full_is_feasible_and_only_decays():
    """A tank the physics left above its setpoint's full level (a boost, an overshooting last
    step) must not make the plan infeasible: with no draws and no need to heat, its planned
    stored heat only decays from where it is, at the tank's own standing loss."""
    m = FeederModel(small_inputs(n=12, days=2), FirmContract(), seed=3)
    f = m.fleet
    h = np.flatnonzero(f.has_hp | f.has_ev)
    dev = DeviceSet.from_fleet(f, h, 1.0, 150.0, 6.0)
    assert dev.n_tk > 0
    hz = Horizon.from_segments([(12.0, 1.0)])
    k0 = 12 * 4
    fc = m.forecaster.exogenous(k0, hz.n_steps + STEPS_PER_DAY, h)
    fc = dataclasses.replace(fc, q_dhw_kw=np.zeros_like(fc.q_dhw_kw))
    e_tank = np.zeros(len(h))
    e_over = dev.tk_e_full_kwh * 1.05  # 5 % above full
    e_tank[dev.tk] = e_over
    inp = device_inputs(
        dev, hz, fc, f.setpoint_c[h], np.zeros(len(h)), f.bat_soc0_kwh[h], k0, e_tank_kwh=e_tank
    )
    need = ev_need_per_period(dev, hz, fc, k0)
    lp = CostHems(dev, hz, CostWeights(), SolverOptions())
    stats, plan = lp.solve(inp, PriceInputs(np.full(hz.n_periods, 0.3), np.full(12, 0.05), need))
    assert stats.ok, stats.status
    a_tk, _ = dev.tank_decay(hz)
    decay_only = e_over[:, None] * np.cumprod(a_tk, axis=1)
    e_plan = plan.devices.e_tank_kwh[:, 1:]
    # never above what decay alone leaves (the tank cannot gain heat it is not given) ...
    assert np.all(e_plan <= decay_only + 1e-5)
    # ... and over full at first, so the start really was infeasible for a ceiling at full
    assert np.all(decay_only[:, 0] > dev.tk_e_full_kwh)


def test_a_draw_bigger_than_the_tank_can_serve_is_a_shortfall_not_an_infeasible_plan():
    """A draw in the first period larger than a full tank plus the heat pump at full output
    (foreseen, as under perfect foresight): the plan still solves, and the part it cannot
    serve shows as the planned store going below empty by exactly the unserved heat."""
    m = FeederModel(small_inputs(n=12, days=2), FirmContract(), seed=3)
    f = m.fleet
    h = np.flatnonzero(f.has_hp | f.has_ev)
    dev = DeviceSet.from_fleet(f, h, 1.0, 150.0, 6.0)
    hz = Horizon.from_segments([(12.0, 1.0)])
    k0 = 12 * 4
    fc = m.forecaster.exogenous(k0, hz.n_steps + STEPS_PER_DAY, h)
    q = np.zeros_like(fc.q_dhw_kw)
    q[:4, dev.tk] = 4.0 * (dev.tk_e_full_kwh + 50.0)  # kW over the first hour: far too much
    fc = dataclasses.replace(fc, q_dhw_kw=q)
    e_tank = np.zeros(len(h))
    e_tank[dev.tk] = dev.tk_e_full_kwh
    inp = device_inputs(
        dev, hz, fc, f.setpoint_c[h], np.zeros(len(h)), f.bat_soc0_kwh[h], k0, e_tank_kwh=e_tank
    )
    need = ev_need_per_period(dev, hz, fc, k0)
    lp = CostHems(dev, hz, CostWeights(), SolverOptions())
    stats, plan = lp.solve(inp, PriceInputs(np.full(hz.n_periods, 0.3), np.full(12, 0.05), need))
    assert stats.ok, stats.status
    a_tk, b_tk = dev.tank_decay(hz)
    e1 = plan.devices.e_tank_kwh[:, 1]
    assert np.all(e1 < 0)  # the store cannot hold what was drawn
    # the exact step: what is left = decayed start + heat put in - heat drawn
    heat = b_tk[:, 0] * inp.tk_cop[:, 0] * plan.devices.p_dhw_kw[:, 0]
    np.testing.assert_allclose(
        e1, a_tk[:, 0] * dev.tk_e_full_kwh + heat - b_tk[:, 0] * inp.tk_draw_kw[:, 0], atol=1e-6
    )
