"""Service levels measured exactly as promised (twin.service): the EV range at the deadline
or at departure, whichever first; the reserve at all times; comfort on both sides of the band
and the daily swing; contracts on equal terms; bands as import limits; every service KPI
recomputable from the run folder alone."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_optim_devices import small_inputs

import twin
from twin.config import compose
from twin.contracts.firm import FirmContract
from twin.contracts.performance import PerformanceContract, PerformanceTerms
from twin.devices.ev import CHARGE_EFFICIENCY, TripSchedule
from twin.kpi import comfort_measures, ev_measures
from twin.model import FeederModel
from twin.pipeline import run
from twin.service import ServiceLevels
from twin.timegrid import DT_H, STEPS_PER_DAY

LEVELS = ServiceLevels()


def fixed_trips(days: int, n: int, has_ev: np.ndarray, dep_h: float, arr_h: float, kwh: float):
    """Every car leaves at ``dep_h`` and comes back at ``arr_h`` each day, using ``kwh``."""
    t = np.arange(days * STEPS_PER_DAY)
    tod = t % STEPS_PER_DAY
    dep, arr = int(dep_h * 4), int(arr_h * 4)
    away = ((tod >= dep) & (tod < arr))[:, None] & has_ev[None, :]
    departure = (tod == dep)[:, None] & has_ev[None, :]
    arrival = (tod == arr)[:, None] & has_ev[None, :]
    km = np.where(has_ev, 1.0, 0.0)[None, :].repeat(days, axis=0)
    return TripSchedule(
        home=~away, trip_kwh=np.where(arrival, kwh, 0.0), departure=departure, km=km
    )


def simulate(contract, monkeypatch, dep_h=5.0, arr_h=17.0, kwh=20.0, days=2, warmup_days=1):
    import twin.model

    def trips(rng, n_days, dep, arr, annual_km, days_used, kwh_per_km, has_ev):
        return fixed_trips(n_days, len(dep), has_ev, dep_h, arr_h, kwh)

    monkeypatch.setattr(twin.model, "draw_trips", trips)
    m = FeederModel(small_inputs(n=8, days=days, warmup_days=warmup_days), contract, seed=3)
    m.run_to_end()
    return m


# ---------------------------------------------------------------------------------------------
# EV: the range at the deadline or at departure, whichever first; the reserve
# ---------------------------------------------------------------------------------------------
def test_a_car_leaving_at_05_is_charged_by_05(monkeypatch):
    """Every car leaves at 05:00, an hour before the 06:00 deadline: the plan and the guards
    must have the range (and the trip + reserve) in the battery at 05:00."""
    m = simulate(PerformanceContract(PerformanceTerms()), monkeypatch, dep_h=5.0)
    k = m.household_kpis(LEVELS)
    f, rep = m.fleet, m.window.report
    ev = np.flatnonzero(f.has_ev)
    assert len(ev) >= 2 and k["ev_range_checked_at_departure"] == k["ev_range_checks"] > 0
    soc = m.log["ev_soc_kwh"][rep]
    need = np.minimum(150.0 * f.ev_kwh_per_km, f.ev_capacity_kwh)
    leave = np.minimum(20.0 + 30.0 * f.ev_kwh_per_km, f.ev_capacity_kwh)
    for day in range(m.window.days):
        at_05 = soc[day * STEPS_PER_DAY + 5 * 4 - 1, ev]  # the state reached by 05:00
        assert np.all(at_05 >= np.maximum(need, leave)[ev] - 1e-6)
    assert k["ev_days_met_share"] == 1.0 and k["ev_reserve_departures_met_share"] == 1.0


def test_the_kpi_counts_a_short_departure_as_a_miss():
    """A car that leaves at 05:00 with 10 kWh owes its 30 kWh range at 05:00, not at 06:00
    (when it is away): a miss; the old deadline-only check would have seen nothing."""
    from twin.fleet import Fleet  # noqa: F401 - the hand-made fleet below is a Fleet

    m = FeederModel(small_inputs(n=2, days=1), FirmContract(), seed=3)
    f = m.fleet
    h = int(np.flatnonzero(f.has_ev)[0])
    trips = fixed_trips(1, f.n, f.has_ev, 5.0, 17.0, 5.0)
    soc = np.full((STEPS_PER_DAY, f.n), 10.0)
    em = ev_measures(soc, soc[0], trips, f, LEVELS)
    need = min(150.0 * f.ev_kwh_per_km[h], f.ev_capacity_kwh[h])
    assert em.range_checked[0, h] and em.range_at_departure[0, h]
    # charging at full power from 10 kWh at midnight could have reached the range by 05:00
    reach = min(10.0 + CHARGE_EFFICIENCY * f.ev_p_max_kw[h] * 5.0, f.ev_capacity_kwh[h])
    assert em.range_short_kwh[0, h] == pytest.approx(min(need, reach) - 10.0)
    assert em.departure_short_kwh[5 * 4, h] > 0  # trip + reserve short too
    # the same state at 05:00 with a full battery is no miss
    full = np.full_like(soc, 0.0) + f.ev_capacity_kwh
    em = ev_measures(full, full[0], trips, f, LEVELS)
    assert em.range_short_kwh[0, h] == 0.0 and em.departure_short_kwh[:, h].max() == 0.0


def test_the_reserve_is_kept_at_home_unless_charging_cannot_restore_it_yet():
    m = FeederModel(small_inputs(n=2, days=1), FirmContract(), seed=3)
    f = m.fleet
    h = int(np.flatnonzero(f.has_ev)[0])
    trips = fixed_trips(1, f.n, f.has_ev, 5.0, 17.0, 0.0)  # no energy used: the floor alone
    reserve = 30.0 * f.ev_kwh_per_km[h]
    soc = np.full((STEPS_PER_DAY, f.n), f.ev_capacity_kwh[h])
    soc[75:85, h] = reserve - 1.0  # home since 17:00, below the reserve: a miss every step
    em = ev_measures(soc, soc[0], trips, f, LEVELS)
    assert em.home_below_reserve[76:86, h].all() and em.home_below_reserve[:, h].sum() == 10


# ---------------------------------------------------------------------------------------------
# comfort: both sides, the swing
# ---------------------------------------------------------------------------------------------
def comfort_case(dev: np.ndarray, q_heat: np.ndarray, rule: str = "swing"):
    m = FeederModel(small_inputs(n=2, days=1), FirmContract(), seed=3)
    f = m.fleet
    t = f.setpoint_c + dev
    # weather and gains that hold each house at its setpoint with no heat: the thermostat's
    # counterfactual home needs none, so only the given heat can warm a house above it
    t_out = np.full(len(dev), 10.0)
    q_gain = np.broadcast_to((f.setpoint_c - 10.0) / f.r_k_per_kw, dev.shape)
    levels = ServiceLevels(comfort_rule=rule)
    return comfort_measures(t, q_heat, f, levels, t_out, q_gain, f.setpoint_c), f


def test_comfort_counts_both_sides_but_not_warmth_pre_heating_did_not_bring():
    dev = np.zeros((STEPS_PER_DAY, 2))
    q = np.zeros((STEPS_PER_DAY, 2))
    dev[10:14, 0] = -1.5  # 0.5 K below the band for an hour
    dev[40:44, 1] = 1.6  # sun: 0.6 K above, no heating
    cm, _ = comfort_case(dev, q)
    below, above = cm.kelvin_hours()
    assert below[0] == pytest.approx(0.5 * 1.0) and above[1] == 0.0
    assert not cm.day_met[0, 0] and cm.day_met[0, 1]  # sun's warmth is not a miss
    # the same warmth brought by heating above the setpoint (pre-heating) is counted
    q[40:44, 1] = 1e4  # enough heat to lift the house to +1.6 K within each step
    cm, f = comfort_case(dev, q)
    _, above = cm.kelvin_hours()
    assert above[1] == pytest.approx(0.6 * 1.0) and not cm.day_met[0, 1]


def test_the_swing_rule_counts_a_day_that_varies_by_more_than_1_k():
    dev = np.zeros((STEPS_PER_DAY, 2))
    dev[:20, 0] = 0.8  # pre-heated 0.8 K ...
    dev[50:60, 0] = -0.7  # ... then coasted to -0.7 K: inside the band, a 1.5 K swing
    q = np.zeros_like(dev)
    q[:20, 0] = 50.0
    cm, _ = comfort_case(dev, q, "swing")
    assert cm.swing_k[0, 0] == pytest.approx(1.5) and not cm.day_met[0, 0]
    cm, _ = comfort_case(dev, q, "band")
    assert cm.day_met[0, 0]  # the band rule alone accepts it


@pytest.mark.parametrize("rule", ["swing", "band"])
def test_the_performance_plan_keeps_the_swing_in_the_simulated_result(rule):
    terms = PerformanceTerms(comfort_rule=rule)
    m = FeederModel(small_inputs(n=8, days=2, warmup_days=1), PerformanceContract(terms), seed=3)
    m.run_to_end()
    k = m.household_kpis(ServiceLevels(comfort_rule=rule))
    assert k["comfort_days_met_share"] == 1.0
    if rule == "swing":
        assert k["comfort_swing_max_k"] <= 1.0 + 1e-6
    else:  # the band alone lets the plan pre-heat and coast over up to 2 K; with the hot-water
        # tanks as flexibility (issue 11) this plan no longer needs to, but may
        assert k["comfort_swing_max_k"] <= 2.0 + 1e-6


# ---------------------------------------------------------------------------------------------
# equal terms, bands
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def week():
    out = {}
    for name in ("firm", "performance", "tou"):
        out[name] = run(compose([f"contract={name}", "output.progress=false"]))
    return out


def test_every_contract_starts_the_window_from_the_same_states(week):
    firm = week["firm"]
    for r in week.values():
        for name, values in r.start_state.items():
            np.testing.assert_array_equal(values, firm.start_state[name], err_msg=name)


def test_corrected_ev_energy_compares_like_with_like_and_closes_the_balance(week):
    """Home-charged EV energy corrected for the energy left in the batteries at the end is
    the driving (minus public charging) divided by the charging efficiency, plus the losses of
    what bidirectional cars discharged (issue 11: through the charger and back), for every
    contract; so it is within 3 % of firm's for the same trips."""
    from twin.devices.ev import DISCHARGE_EFFICIENCY

    firm = week["firm"].kpis["ev_kwh_per_ev_corrected"]
    for r in week.values():
        k = r.kpis
        drive = r.trips.trip_kwh[:, r.fleet.has_ev].sum()
        v2g = k["energy_v2g_discharge_kwh"]
        loss = v2g * (1.0 / (CHARGE_EFFICIENCY * DISCHARGE_EFFICIENCY) - 1.0)
        expected = (drive - k["ev_public_charging_kwh"]) / CHARGE_EFFICIENCY + loss
        assert k["energy_ev_home_corrected_kwh"] == pytest.approx(expected, rel=1e-9)
        assert k["ev_kwh_per_ev_corrected"] == pytest.approx(firm, rel=0.03)
        # the households' energy balance closes: import - export = devices - PV
        lg = r.log
        net = lg["p_net_kw"].sum() * DT_H
        parts = lg["p_base_kw"] + lg["p_hp_kw"] + lg["p_ev_kw"] + lg["p_bat_kw"] - lg["p_pv_kw"]
        assert net == pytest.approx(parts.sum() * DT_H, rel=1e-12)


def test_bands_are_import_limits_never_below_zero(week):
    band = week["performance"].log["band_kw"]
    signed = ~np.isnan(band)
    assert signed.any() and band[signed].min() >= 0.0


# ---------------------------------------------------------------------------------------------
# recomputable from the run folder alone
# ---------------------------------------------------------------------------------------------
def _recompute(folder) -> dict[str, float]:
    """Every service-level KPI from households.parquet and households_summary.csv, with code
    of its own (not twin.kpi)."""
    hh = pd.read_parquet(folder / "households.parquet")
    s = pd.read_csv(folder / "households_summary.csv").set_index("household")
    k = json.loads((folder / "kpis.json").read_text())
    n = len(s)
    wide = {c: hh.pivot(index="time", columns="household", values=c).to_numpy() for c in (
        "t_in_c", "q_hp_kw", "q_boiler_kw", "q_gain_kw", "ev_soc_kwh", "ev_home", "ev_departure",
        "ev_trip_kwh",
    )}  # fmt: skip
    t_out = pd.read_parquet(folder / "feeder.parquet")["t_out_c"].to_numpy()
    n_t = len(wide["t_in_c"])
    days = n_t // STEPS_PER_DAY
    hp = (s["heat_pump"] != "none").to_numpy()
    ev = s["ev"].to_numpy() & (s["ev_capacity_kwh"].to_numpy() > 0)
    # comfort: how much warmer than a thermostat at the setpoint would have kept the home
    r, c = s["r_k_per_kw"].to_numpy(), s["c_kwh_per_k"].to_numpy()
    a = np.exp(-DT_H / (r * c))
    t_in, setpoint = wide["t_in_c"], s["setpoint_c"].to_numpy()
    q_max = np.where(s["heat_pump"] == "all-electric", s["hp_q_max_kw"].to_numpy(), np.inf)
    rise, y = np.zeros((n_t, n)), np.zeros(n)
    start = s["start_t_in_c"].to_numpy()
    for t in range(n_t):
        t_cf = start - y
        need = (setpoint - a * t_cf - (1 - a) * t_out[t]) / ((1 - a) * r) - wide["q_gain_kw"][t]
        q = wide["q_hp_kw"][t] + wide["q_boiler_kw"][t]
        y = a * y + (1 - a) * r * (q - np.clip(need, 0, q_max))
        rise[t] = y
        start = t_in[t]
    below = np.maximum(s["comfort_min_c"].to_numpy() - t_in, 0)
    warm = np.maximum(t_in - setpoint, 0)
    pre = np.clip(rise, 0, warm)
    above = np.maximum(pre - (s["comfort_max_c"].to_numpy() - setpoint), 0)
    ctrl = (t_in - setpoint - (warm - pre))[: days * STEPS_PER_DAY]
    ctrl = ctrl.reshape(days, STEPS_PER_DAY, n)
    swing = ctrl.max(axis=1) - ctrl.min(axis=1)
    bad = ((below > 1e-6) | (above > 1e-6))[: days * STEPS_PER_DAY]
    met = ~bad.reshape(days, STEPS_PER_DAY, n).any(axis=1) & (
        swing <= s["comfort_swing_k"].to_numpy() + 1e-6
    )
    # EV: states 0..T, the full-power reference, range and trip + reserve checks
    soc = np.vstack([s["start_ev_soc_kwh"].to_numpy(), wide["ev_soc_kwh"]])
    home, dep, trip = (
        wide["ev_home"].astype(bool),
        wide["ev_departure"].astype(bool),
        wide["ev_trip_kwh"],
    )
    cap, pmax = s["ev_capacity_kwh"].to_numpy(), s["ev_charger_kw"].to_numpy()
    reach = np.empty_like(soc)
    reach[0] = g = soc[0]
    for t in range(n_t):  # charging at full power whenever home, trips at arrival
        g = g - trip[t] + np.maximum(trip[t] - g, 0.0)  # what the battery lacks: elsewhere
        p = np.where(home[t], np.minimum(pmax, (cap - g) / (CHARGE_EFFICIENCY * DT_H)), 0.0)
        g = np.minimum(g + CHARGE_EFFICIENCY * np.maximum(p, 0.0) * DT_H, cap)
        reach[t + 1] = g
    rng_need, reserve = s["ev_range_due_kwh"].to_numpy(), s["ev_reserve_kwh"].to_numpy()
    deadline = int(round(s["ev_deadline_h"].iloc[0] * 4)) % STEPS_PER_DAY
    short, checks = [], 0
    for d in range(days + 1):
        st = d * STEPS_PER_DAY + deadline
        if not 1 <= st <= n_t:
            continue
        for i in np.flatnonzero(ev):
            if home[st - 1, i]:
                at = st
            else:
                prior = np.flatnonzero(dep[:st, i])
                if not len(prior):
                    continue
                at = prior[-1]
            checks += 1
            short.append(max(min(rng_need[i], reach[at, i]) - soc[at, i], 0.0))
    trip_dep = np.zeros_like(trip)
    for i in range(n):
        last = -1
        for t in range(n_t):
            if dep[t, i]:
                last = t
            if trip[t, i] > 0:
                trip_dep[last if last >= 0 else t, i] += trip[t, i]
    leave = np.minimum(trip_dep + reserve, cap)
    dep_short = np.where(dep & ev, np.maximum(np.minimum(leave, reach[:-1]) - soc[:-1], 0.0), 0.0)
    short = np.array(short)
    return {
        "from_files": {
            "comfort_kelvin_hours_below": below.sum() * DT_H,
            "comfort_kelvin_hours_above": above.sum() * DT_H,
            "comfort_swing_max_k": swing[:, hp].max(),
            "comfort_days_met_share": met[:, hp].mean(),
            "ev_range_checks": checks,
            "ev_shortfall_kwh_total": short.sum(),
            "ev_days_met_share": 1 - (short > 1e-6).sum() / checks,
            "ev_reserve_short_kwh_total": dep_short.sum(),
            "ev_departures": int((dep & ev).sum()),
        },
        "kpis": k,
    }


def test_every_service_level_kpi_is_recomputed_from_the_run_folder(week, tmp_path):
    for name in ("performance", "firm"):
        folder = twin.write(week[name], tmp_path / name)
        got = _recompute(folder)
        for key, value in got["from_files"].items():
            assert value == pytest.approx(got["kpis"][key], rel=1e-9, abs=1e-9), (name, key)
