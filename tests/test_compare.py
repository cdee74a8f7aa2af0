"""The contract comparison: tables normalised to firm, bill changes per household, the CLI."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from twin.compare import (
    COMPARE_KPIS,
    ContractOutcome,
    compare_outcomes,
    contract_configs,
    normalise,
)
from twin.config import compose
from twin.errors import TwinError
from twin.tariffs import bills, make_tariff
from twin.timegrid import make_window
from twin.weather import load_weather

WEATHER = load_weather()
WINDOW = make_window("2025-12-01", 1)


def outcome(
    name: str, tariff: str, p_net_kw: np.ndarray, discount: float = 0.0, **kpis
) -> ContractOutcome:
    """A hand-made contract run on 3 households over one day."""
    prices = make_tariff(
        compose([f"tariff={tariff}"]).tariff, WINDOW, WEATHER.t_out_c, WEATHER.ghi_w_m2
    )
    disc = np.full(p_net_kw.shape[1], discount)
    base = {
        "households": 3,
        "seed": 1,
        "start": "2025-12-01",
        "days": 1,
        "grid": "g",
        "scenario": "s",
        "contract": name,
        "tariff": tariff,
    }
    return ContractOutcome(
        name=name,
        tariff=tariff,
        kpis={**base, **{k: 1.0 for k, _, _ in COMPARE_KPIS}, **kpis},
        bill_eur=bills(p_net_kw, prices, disc)["total_eur"].to_numpy(),
        trafo_loading_pct=np.full(96, 50.0),
        times=WINDOW.times,
        run_s=1.0,
        p_net_kw=p_net_kw,
        tariff_prices=prices,
        discount_eur_per_year=disc,
    )


def test_normalised_table_bill_changes_and_their_split_by_hand():
    flat_load = np.tile([1.0, 2.0, 0.5], (96, 1))
    evening = (np.arange(96) >= 68) & (np.arange(96) < 84)
    shifted = flat_load.copy()
    shifted[evening, 0] = 0.0  # household 0 moves its evening kWh to the night
    shifted[:28, 0] += 16 / 28  # the same 4 kWh
    outs = [
        outcome(
            "firm",
            "flat",
            flat_load,
            trafo_hours_over_100pct_h=0.0,
            coincident_peak_per_household_kw=3.5,
        ),
        outcome(
            "tou",
            "tou",
            shifted,
            trafo_hours_over_100pct_h=2.0,
            coincident_peak_per_household_kw=4.2,
        ),
        outcome("perf", "flat", flat_load, discount=365.0, trafo_hours_over_100pct_h=0.0),
    ]
    cmp = compare_outcomes(outs, "firm")
    norm = cmp.normalised
    assert (norm.loc["firm"] == 1.0).all()  # firm = 1.0 everywhere, 0/0 included
    assert norm.loc["tou", "coincident_peak_per_household_kw"] == pytest.approx(1.2)
    assert np.isinf(norm.loc["tou", "trafo_hours_over_100pct_h"])  # firm 0, tou 2 h
    assert norm.loc["perf", "trafo_hours_over_100pct_h"] == 1.0
    assert cmp.absolute.loc["tou", "tariff"] == "tou"
    # bill changes against firm, per household; the discount is a tariff effect (1 €/day)
    ch, s = cmp.bill_change, cmp.bill_change_summary
    np.testing.assert_allclose(ch["perf"], -1.0)
    assert s.loc["perf", "winners_share"] == 1.0 and s.loc[
        "perf", "response_mean_eur"
    ] == pytest.approx(0.0)
    # tou: the unchanged households pay the tariff effect only; household 0 also gains by shifting
    tariff_effect = cmp.passive_bills["tou"] - cmp.bills["firm"]
    np.testing.assert_allclose(ch["tou"][1:], tariff_effect[1:])
    assert ch["tou"][0] < tariff_effect[0]
    assert s.loc["tou", "tariff_effect_mean_eur"] + s.loc[
        "tou", "response_mean_eur"
    ] == pytest.approx(s.loc["tou", "mean_eur"])
    with pytest.raises(TwinError, match="study.baseline='nonfirm' is not among"):
        compare_outcomes(outs, "nonfirm")
    outs[1].kpis["seed"] = 2
    with pytest.raises(TwinError, match="ran on other inputs"):
        compare_outcomes(outs, "firm")


def test_normalise_divides_by_the_baseline_row():
    t = pd.DataFrame(
        {"tariff": ["a", "b"], "x": [2.0, 3.0], "y": [0.0, 0.0]}, index=["firm", "tou"]
    )
    n = normalise(t, "firm")
    assert list(n.columns) == ["x", "y"] and n.loc["tou", "x"] == 1.5 and n.loc["tou", "y"] == 1.0


def test_each_contract_keeps_its_own_tariff_and_a_tariff_override_applies_to_the_rest():
    cfgs = contract_configs(
        ["firm", "tou", "capacity", "performance"],
        ["sim=day", "tariff=dynamic", "study=compare", "study.contracts=[firm,tou]", "seed=7"],
        compose,
    )
    assert {k: c.tariff.name for k, c in cfgs.items()} == {
        "firm": "dynamic",
        "tou": "tou",
        "capacity": "capacity",
        "performance": "dynamic",
    }
    assert all(c.seed == 7 and c.sim.days == 1 and c.study.name == "single" for c in cfgs.values())


def test_compare_study_on_the_command_line(tmp_path, twin_exe, repo_dir):
    proc = subprocess.run(
        [
            twin_exe,
            "study=compare",
            "sim=day",
            "study.contracts=[firm,tou]",
            "output.progress=false",
            f"paths.results_dir={tmp_path}",
        ],
        capture_output=True,
        text=True,
        cwd=repo_dir,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (out,) = [p for p in (tmp_path / "runs").iterdir() if (p / "DONE").exists()]
    for name in (
        "compare.csv",
        "compare.json",
        "bills.csv",
        "summary.md",
        "compare_load.png",
        "compare_bills.png",
    ):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "compare.csv", index_col="contract")
    assert list(table.index) == ["firm", "tou"] and list(table.tariff) == ["flat", "tou"]
    ratios = table.filter(like="_vs_firm")
    assert len(ratios.columns) == len(COMPARE_KPIS) and (ratios.loc["firm"] == 1.0).all()
    # both ran on the same households; the time-of-use HEMS keeps the service levels
    assert (
        table.loc["tou", "comfort_days_met_share"] == 1.0
        and table.loc["tou", "ev_days_met_share"] == 1.0
    )
    data = json.loads((out / "compare.json").read_text())
    assert (
        data["baseline"] == "firm"
        and data["kpis"]["tou"]["households"] == data["kpis"]["firm"]["households"]
    )
    assert data["kpis"]["tou"]["hems_replans_failed"] == 0
    b = pd.read_csv(out / "bills.csv", index_col="household")
    assert len(b) == data["kpis"]["firm"]["households"]
    np.testing.assert_allclose(b["tou_minus_firm_eur"], b["tou"] - b["firm"], atol=1e-4)
    assert "| tou" in proc.stdout and "Normalised to firm" in (out / "summary.md").read_text()
    # who wins and who pays, per response type: the groups add up to the feeder
    r = pd.read_csv(out / "bills_by_response.csv", index_col=["contract", "response"])
    assert set(b["response"]) <= {"none", "manual", "timer", "full_automation"}
    for c in ("firm", "tou"):
        g = r.loc[c].drop(index="all")
        assert g["households"].sum() == r.loc[(c, "all"), "households"] == len(b)
        assert (g["households"] * g["bill_mean_eur"]).sum() == pytest.approx(b[c].sum(), rel=1e-5)
        mean = (g["households"] * g["change_mean_eur"]).sum() / len(b)
        assert mean == pytest.approx((b[c] - b["firm"]).mean(), abs=1e-6)
        np.testing.assert_allclose(
            g["tariff_effect_mean_eur"] + g["response_mean_eur"], g["change_mean_eur"], atol=1e-4
        )
    assert "Bills by response type" in (out / "summary.md").read_text()
