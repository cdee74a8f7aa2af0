"""Phases per household and device, the unbalanced run (grid.unbalanced) and phase-aware
limits: physics asserted, no timings."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandapower as pp
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

import twin.population as population
from twin.config import compose
from twin.fleet import THREE_PHASE, phase_share
from twin.grid.asymmetric import AsymmetricPowerFlow
from twin.grid.feeders import FeederError, load_feeder
from twin.grid.phases import household_phase_loads, phase_load_columns
from twin.optim.limits import GridLimits
from twin.pipeline import run
from twin.population import PV_SINGLE_PHASE_MAX_KWP, sample_fleet
from twin.scenario import load_scenario, with_adoption
from twin.writer import write_run

DAY = ["sim=day", "sim.warmup_days=1", "output.progress=false"]
PHASE_FIELDS = ("phase_connection", "phase_base", "phase_hp", "phase_ev", "phase_pv", "phase_bat")


def _fleet_fields(fleet) -> dict:
    return {
        f.name: getattr(fleet, f.name)
        for f in dataclasses.fields(fleet)
        if f.name not in PHASE_FIELDS
    }


# -- the draw ------------------------------------------------------------------------------------
def test_phase_draw_leaves_every_other_number_and_the_parent_stream_unchanged(monkeypatch):
    sc = load_scenario("nl-2040-central")
    rng_a = np.random.default_rng(42)
    with_phases = sample_fleet(sc, 300, rng_a)
    after_a = rng_a.random(5)

    monkeypatch.setattr(population, "draw_phases", lambda *a, **k: {})
    rng_b = np.random.default_rng(42)
    without = population.sample_fleet(sc, 300, rng_b)
    after_b = rng_b.random(5)
    assert without.phase_connection is None and with_phases.has_phases
    for name, value in _fleet_fields(without).items():
        np.testing.assert_array_equal(getattr(with_phases, name), value, err_msg=name)
    np.testing.assert_array_equal(after_a, after_b)  # later draws of the run (trips) too
    # the contract's draws come from a later spawn of the run's stream: same child
    np.testing.assert_array_equal(rng_a.spawn(1)[0].random(3), rng_b.spawn(1)[0].random(3))


def test_phases_follow_the_scenario_and_the_rules():
    sc = load_scenario("nl-2025")
    f = sample_fleet(sc, 2000, np.random.default_rng(1))
    single = f.phase_connection >= 0
    # the single-phase share, less households that need three phases
    need3 = (f.ev_p_max_kw > 4.0) | (f.pv_kwp > PV_SINGLE_PHASE_MAX_KWP)
    share = sc["dwelling"]["single_phase_connection_share"].value
    assert abs(single.mean() - share * (~need3).mean()) < 0.04
    assert not (single & need3).any()
    # on a single-phase connection everything sits on its phase
    for part in ("base", "hp", "ev", "pv", "bat"):
        ph = getattr(f, f"phase_{part}")
        np.testing.assert_array_equal(ph[single], f.phase_connection[single])
    three = ~single
    assert (f.phase_base[three] == THREE_PHASE).all()
    # 11 kW chargers three-phase, 3.7 kW single-phase (on any of the three phases)
    fast, slow = three & (f.ev_p_max_kw > 4.0), three & (f.ev_p_max_kw > 0) & (f.ev_p_max_kw < 4)
    assert (f.phase_ev[fast] == THREE_PHASE).all() and (f.phase_ev[slow] >= 0).all()
    assert set(np.unique(f.phase_ev[slow])) == {0, 1, 2}
    big_pv = f.pv_kwp > PV_SINGLE_PHASE_MAX_KWP
    assert (f.phase_pv[big_pv] == THREE_PHASE).all()
    small = three & f.has_pv & ~big_pv
    inv = sc["pv"]["single_phase_inverter_share"].value
    assert abs((f.phase_pv[small] >= 0).mean() - inv) < 0.06
    np.testing.assert_array_equal(f.phase_bat, f.phase_pv)
    # seeded
    g = sample_fleet(sc, 2000, np.random.default_rng(1))
    for name in PHASE_FIELDS:
        np.testing.assert_array_equal(getattr(f, name), getattr(g, name))


def test_more_devices_keep_every_households_phases():
    sc = load_scenario("nl-2040-central")
    more = with_adoption(sc, "test", ev=0.9, pv=0.9)
    a = sample_fleet(sc, 400, np.random.default_rng(3))
    b = sample_fleet(more, 400, np.random.default_rng(3))
    # the single-vs-three-phase choice of each device and its phase are drawn for every
    # household, so where both fleets have a device on a three-phase connection it agrees
    both = (a.phase_connection < 0) & (b.phase_connection < 0) & a.has_pv & b.has_pv
    np.testing.assert_array_equal(a.phase_pv[both], b.phase_pv[both])


def test_feeder_phases_are_kept_for_the_ieee_feeder():
    f = load_feeder("ieee_european_lv")
    assert f.has_phase_data and not f.has_asymmetric_loads
    counts = np.bincount(f.household_phase, minlength=3)
    assert counts.tolist() == [21, 19, 15]  # the published feeder's loads per phase
    fleet = sample_fleet(
        load_scenario("nl-2040-central"), 55, np.random.default_rng(0), f.household_phase
    )
    np.testing.assert_array_equal(fleet.phase_connection, f.household_phase)
    np.testing.assert_array_equal(fleet.phase_ev, f.household_phase)


# -- per-phase loads ------------------------------------------------------------------------------
def test_per_phase_loads_add_up_to_the_totals():
    sc = load_scenario("nl-2040-central")
    f = sample_fleet(sc, 50, np.random.default_rng(5))
    rng = np.random.default_rng(6)
    log = {k: rng.uniform(0, 3, (10, 50)) for k in ("p_base_kw", "p_hp_kw", "p_ev_kw")}
    log["p_pv_kw"] = rng.uniform(0, 4, (10, 50))
    log["p_bat_kw"] = rng.uniform(-2, 2, (10, 50))
    q = rng.uniform(0, 0.5, (10, 50))
    p3, q3 = household_phase_loads(f, log, q)
    p_net = log["p_base_kw"] + log["p_hp_kw"] + log["p_ev_kw"] + log["p_bat_kw"] - log["p_pv_kw"]
    np.testing.assert_allclose(p3.sum(axis=-1), p_net, atol=1e-12)
    np.testing.assert_allclose(q3.sum(axis=-1), q, atol=1e-12)
    one = f.phase_connection >= 0  # single-phase households load one phase only
    assert (np.count_nonzero(p3[:, one], axis=-1) <= 1).all()


# -- the unbalanced run ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ieee_day():
    return run(compose([*DAY, "grid.name=ieee_european_lv"]))


def test_unbalanced_run_power_balance_and_kpis(ieee_day):
    r = ieee_day
    g = r.grid_phases
    assert r.feeder.unbalanced and g is not None and r.kpis["grid_unbalanced"] is True
    p3, _ = phase_load_columns(r.feeder, r.fleet, r.log, r.p_load_kw, r.q_load_kvar)
    np.testing.assert_allclose(p3.sum(axis=-1), r.p_load_kw, atol=1e-9)
    # power balance: what enters the transformer = the loads + losses, every step
    load = p3.sum(axis=(1, 2))
    np.testing.assert_allclose(g.trafo_p_kw.sum(axis=1), load + g.losses_kw, rtol=1e-5, atol=1e-3)
    # per phase: what leaves the transformer on a phase = that phase's loads + at most the
    # line losses (the losses of a phase include what mutual coupling moves between phases)
    line_losses = g.losses_kw - (g.trafo_p_kw.sum(axis=1) - g.trafo_p_lv_kw.sum(axis=(1, 2)))
    per_phase = g.trafo_p_lv_kw.sum(axis=1) - p3.sum(axis=1)
    assert (np.abs(per_phase) <= line_losses[:, None] + 1e-3).all()
    # the published feeder's loads are single-phase: the phases differ, unbalance shows
    k = r.kpis
    assert k["vuf_max_pct"] > 0.1 and 0 <= k["vuf_p95_max_pct"] <= k["vuf_max_pct"]
    assert k["phase_line_max_loading_pct"] >= k["line_max_loading_pct"] - 1e-6
    assert k["line_residual_current_max_a"] > 1.0
    assert k["trafo_max_phase_loading_pct"] > 0 and k["trafo_worst_phase"] in "abc"
    assert 0 <= k["unbalance_bus_weeks_compliant_share"] <= 1
    assert k["phase_vm_min_pu"] <= k["vm_min_pu"] + 1e-9


def test_an_unbalanced_run_is_judged_on_its_worst_phase(ieee_day):
    """The limit table of an unbalanced run checks each phase, not only the balanced totals:
    the IEEE feeder's worst phase is lower and more loaded than the totals show, and a phase
    that breaks a limit breaks the run even where the totals keep it."""
    from twin.cli import format_kpi_table

    k = ieee_day.kpis
    table = format_kpi_table(k)
    rows = {ln.split("  ")[0]: ln for ln in table.splitlines()}
    assert float(rows["min voltage, worst phase"].split()[4]) == pytest.approx(
        k["phase_vm_min_pu"], abs=5e-4
    )
    assert k["phase_vm_min_pu"] < k["vm_min_pu"] - 0.01  # per phase is what the balanced hides
    bad = dict(k, phase_vm_min_pu=0.80, phase_line_max_loading_pct=120.0, vuf_p95_max_pct=2.5)
    assert bad["vm_min_pu"] >= 0.85 and bad["line_max_loading_pct"] <= 100  # totals keep them
    out = format_kpi_table(bad)
    assert out.splitlines()[-1] == (
        "limits broken: max cable loading, worst phase, min voltage, worst phase, "
        "voltage unbalance, p95 (worst bus-week)"
    )


def test_unbalanced_results_as_tidy_data(ieee_day):
    r = ieee_day
    g = r.grid_phases
    frame = r.phases_frame()
    n_t = g.n_steps
    n_bus, n_line, n_tr = len(g.bus_index), len(g.line_index), len(g.trafo_index)
    assert len(frame) == n_t * (3 * n_bus + 4 * n_line + 4 * n_tr)
    bus = frame[frame["element"] == "bus"]
    np.testing.assert_allclose(
        bus["vm_pu"].to_numpy().reshape(n_t, n_bus, 3), g.vm_pu, rtol=1e-6, equal_nan=True
    )
    line = frame[(frame["element"] == "line") & (frame["phase"] != "n")]
    np.testing.assert_allclose(
        line["loading_pct"].to_numpy().reshape(n_t, n_line, 3),
        g.line_loading_pct,
        rtol=1e-5,
    )
    cols = r.household_phase_columns()
    assert set(cols) == {"connection", *PHASE_FIELDS[1:]}
    # the IEEE loads keep their phases: every household is a single-phase connection
    assert (cols["connection"] == "1-phase").all()
    np.testing.assert_array_equal(
        cols["phase_base"], np.array(list("abc"))[r.feeder.household_phase]
    )
    ev = r.fleet.has_ev
    assert (cols["phase_ev"][~ev] == "").all() and (cols["phase_ev"][ev] != "").all()


def test_an_unbalanced_run_writes_its_phases_file(ieee_day, tmp_path):
    cfg = OmegaConf.create(OmegaConf.to_container(ieee_day.cfg))
    cfg.output.figures = False
    out = write_run(dataclasses.replace(ieee_day, cfg=cfg), tmp_path / "run")
    assert (out / "DONE").exists()
    stored = pd.read_parquet(out / "grid_phases.parquet")
    pd.testing.assert_frame_equal(stored, ieee_day.phases_frame())
    assert "grid_phases.parquet" in json.loads((out / "metadata.json").read_text())["files"]


def test_balanced_kpis_are_the_same_in_an_unbalanced_run():
    bal = run(compose([*DAY, "grid.name=kerber_landnetz_kabel_2"]))
    unb = run(compose([*DAY, "grid.name=kerber_landnetz_kabel_2", "grid.unbalanced=true"]))
    assert bal.grid_phases is None and "grid_unbalanced" not in bal.kpis
    assert unb.grid_phases is not None
    for key, value in bal.kpis.items():
        assert unb.kpis[key] == value or (value != value and unb.kpis[key] != unb.kpis[key]), key
    new = set(unb.kpis) - set(bal.kpis)
    assert {"vuf_max_pct", "phase_line_max_loading_pct", "trafo_max_phase_loading_pct"} <= new
    # the households' draws are the same: the phases do not move any other number
    np.testing.assert_array_equal(bal.log["p_net_kw"], unb.log["p_net_kw"])


def _net_with_asymmetric_load(path):
    net = pp.create_empty_network()
    mv, lv, b1 = pp.create_bus(net, 10.0), pp.create_bus(net, 0.4), pp.create_bus(net, 0.4)
    pp.create_ext_grid(net, mv)
    pp.create_transformer(net, mv, lv, "0.25 MVA 10/0.4 kV")
    pp.create_line(net, lv, b1, 0.2, "NAYY 4x150 SE")
    for _ in range(4):
        pp.create_load(net, b1, p_mw=0.001)
    pp.create_asymmetric_load(net, b1, p_a_mw=0.02)  # a constant single-phase load
    pp.to_json(net, str(path))
    return path


def test_asymmetric_loads_run_unbalanced_and_are_refused_balanced(tmp_path):
    path = _net_with_asymmetric_load(tmp_path / "asym.json")
    with pytest.raises(FeederError, match="asymmetric_load 0.*grid.unbalanced=true"):
        run(compose([*DAY, f"grid.name={path}", "grid.unbalanced=false"]))
    r = run(compose([*DAY, f"grid.name={path}"]))  # default: on for such a net
    assert r.feeder.unbalanced and r.kpis["grid_unbalanced"]
    g = r.grid_phases
    # the 20 kW on phase a is there in the unbalanced flow, in total in the balanced one
    p3, _ = phase_load_columns(r.feeder, r.fleet, r.log, r.p_load_kw, r.q_load_kvar)
    np.testing.assert_allclose(
        g.trafo_p_kw.sum(axis=1), p3.sum(axis=(1, 2)) + 20.0 + g.losses_kw, rtol=1e-5
    )
    assert (g.trafo_p_lv_kw[:, 0, 0] > g.trafo_p_lv_kw[:, 0, 1] + 15.0).all()
    np.testing.assert_allclose(
        r.grid.trafo_p_kw.sum(axis=1), r.p_load_kw.sum(axis=1) + 20.0 + r.grid.losses_kw, rtol=1e-5
    )


def test_a_bad_phase_column_is_a_one_line_error(tmp_path):
    net = pp.from_json(str(_net_with_asymmetric_load(tmp_path / "a.json")))
    net.asymmetric_load.drop(net.asymmetric_load.index, inplace=True)
    net.load["phase"] = ["a", "b", "x", None]
    pp.to_json(net, str(tmp_path / "bad.json"))
    with pytest.raises(FeederError, match=r"load 2 has phase='x'"):
        load_feeder(str(tmp_path / "bad.json"), cache_dir=tmp_path / "c")
    net.load["phase"] = ["a", "b", "abc", None]
    pp.to_json(net, str(tmp_path / "ok.json"))
    f = load_feeder(str(tmp_path / "ok.json"), cache_dir=tmp_path / "c")
    assert f.load_phase.tolist() == [0, 1, -1, -2] and f.has_phase_data


# -- phase-aware limits -----------------------------------------------------------------------------
def test_phase_rows_carry_each_households_share_on_the_phase():
    a = np.ones((2, 3))
    lim = GridLimits(
        ("line 0 phase a", "line 0 phase b"),
        np.ones(2),
        a,
        a,
        np.zeros(2),
        np.zeros(2),
        np.array([10.0, 10.0]),
        np.ones(2, bool),
        phase=np.array([0, 1]),
        flex_share=phase_share(np.array([0, 0, -1])),
    )
    fl = lim.feeder_limits(np.arange(3))
    np.testing.assert_allclose(fl.coef, [[1, 1, 1 / 3], [0, 0, 1 / 3]])
    p = np.zeros((1, 3, 3))
    p[0, :, 0] = 2.0  # 2 kW on phase a at every load
    np.testing.assert_allclose(lim.rhs(p, np.zeros_like(p))[:, 0], [10 - 6, 10])
    with pytest.raises(ValueError, match="per-phase"):
        lim.rhs(np.zeros((1, 3)), np.zeros((1, 3)))


def _one_phase_feeder(tmp_path):
    """20 single-phase households on phase a behind one 200 A cable: all their 3.7 kW
    chargers together fit the cable's three-phase rating but not one phase."""
    net = pp.create_empty_network()
    mv, lv, node = pp.create_bus(net, 10.0), pp.create_bus(net, 0.4), pp.create_bus(net, 0.4)
    pp.create_ext_grid(net, mv)
    pp.create_transformer_from_parameters(
        net, mv, lv, sn_mva=0.4, vn_hv_kv=10, vn_lv_kv=0.4, vk_percent=4, vkr_percent=1,
        pfe_kw=0, i0_percent=0, vector_group="Dyn5", shift_degree=150,
    )  # fmt: skip
    pp.create_line_from_parameters(
        net, lv, node, length_km=0.1, r_ohm_per_km=0.208, x_ohm_per_km=0.08, c_nf_per_km=0,
        max_i_ka=0.2, r0_ohm_per_km=0.832, x0_ohm_per_km=0.32, c0_nf_per_km=0,
    )  # fmt: skip
    for _ in range(20):
        pp.create_load(net, node, p_mw=0.001)
    net.load["phase"] = "a"
    pp.to_json(net, str(tmp_path / "onephase.json"))
    sc = {
        "name": "ev-only",
        "year": 2040,
        "extends": "nl-2040-central",
        "adoption": {
            k: {"value": v, "source": "test"}
            for k, v in dict(
                heat_pump_all_electric=0.0,
                heat_pump_hybrid=0.0,
                ev=1.0,
                pv=0.0,
                battery_given_pv=0.0,
            ).items()
        },  # fmt: skip
        "ev": {
            "share_11kw_charger": {"value": 0.0, "source": "test: all 3.7 kW, single-phase"},
            "annual_km": {"value": 20000, "source": "test"},
        },
    }
    (tmp_path / "ev_only.yaml").write_text(yaml.safe_dump(sc))
    return [
        *DAY,
        "contract=performance",
        f"grid.name={tmp_path / 'onephase.json'}",
        f"scenario.name={tmp_path / 'ev_only.yaml'}",
        # no incentive to flatten, early charging preferred: the rows alone hold the load
        "+contract.weights={peak_kw: 0.0, ev_soc_kwh_h: 1.0}",
        "forecast=perfect",  # the rows, not the forecasts, are under test
    ]


def test_phase_aware_rows_keep_every_phase_within_its_rating(tmp_path):
    over = _one_phase_feeder(tmp_path)
    balanced = run(compose([*over, "grid.unbalanced=false"]))
    aware = run(compose(over))  # the feeder has phase data: unbalanced by default
    # in total the chargers fit the cable (its row is screened out); on phase a they do not
    assert balanced.kpis["performance_limit_rows"] == ["trafo 0"]
    assert aware.kpis["performance_limit_rows"] == ["trafo 0", "line 0 phase a"]
    # judged on the unbalanced AC result of what the households did
    f = dataclasses.replace(balanced.feeder, unbalanced=True)
    p3, q3 = phase_load_columns(f, balanced.fleet, balanced.log, balanced.p_load_kw,
                                balanced.q_load_kvar)  # fmt: skip
    worst_balanced = AsymmetricPowerFlow(f.net).run(p3, q3).line_loading_max_pct.max()
    worst_aware = aware.grid_phases.line_loading_max_pct.max()
    # safe in total, one phase overloaded (108 % since issue 11: the file's p_mw = 1 kW is
    # now each household's base-load peak, a lighter load than the 2,550 kWh H0 copies were)
    assert worst_balanced > 105.0
    assert balanced.kpis["line_max_loading_pct"] < 60.0  # the balanced flow sees no problem
    assert worst_aware <= 100.0
    # and the service holds in both
    for r in (balanced, aware):
        assert r.kpis["performance_ev_deadlines_missed"] == 0
        assert r.kpis["ev_days_met_share"] == 1.0
