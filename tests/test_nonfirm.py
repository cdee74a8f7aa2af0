"""Non-firm connection: the cap holds, heat pumps keep running at the allowed power."""

from __future__ import annotations

import numpy as np
import pytest

from twin.config import compose
from twin.pipeline import run


@pytest.fixture(scope="module")
def always_congested():
    # a threshold of 1 % declares (almost) every interval congested
    cfg = compose(
        [
            "sim=day",
            "output.progress=false",
            "contract=nonfirm",
            "contract.congestion_threshold_pct=1",
        ]
    )
    return run(cfg)


def test_controllable_load_respects_the_guaranteed_cap(always_congested):
    r = always_congested
    congested = r.contract_feeder["nonfirm_congested"]
    signed = r.contract_households["signed"]
    assert congested[1:].all()
    lg = r.log
    controllable = (lg["p_hp_kw"] + lg["p_ev_kw"])[congested][:, signed]
    assert controllable.max() <= 4.2 + 1e-9
    # the cap binds: EVs that would charge at 11 kW are held to the rest of 4.2 kW
    assert controllable.max() == pytest.approx(4.2, abs=1e-6)


def test_heat_pumps_keep_running_and_comfort_holds(always_congested):
    r = always_congested
    f = r.fleet
    lg = r.log
    cold = r.t_out_c < 10.0
    ae = f.has_hp & ~f.hp_hybrid
    assert cold.all()  # a winter day
    # never switched off: every all-electric heat pump draws power in every cold interval in
    # which its house needs heat (a house its own appliances warm to its setpoint needs none:
    # the base loads have their cooking and washing spikes since issue 11)
    off = lg["p_hp_kw"][:, ae] <= 0.1
    assert off.mean() < 0.05
    setpoint = np.broadcast_to(f.setpoint_c[ae], off.shape)
    assert (lg["t_in_c"][:, ae][off] >= setpoint[off] - 0.01).all()
    assert r.kpis["comfort_days_met_share"] == 1.0


def test_non_firm_lowers_ev_charging_power_but_not_the_energy_day():
    firm = run(compose(["sim=day", "output.progress=false"]))
    nonfirm = run(
        compose(
            [
                "sim=day",
                "output.progress=false",
                "contract=nonfirm",
                "contract.congestion_threshold_pct=1",
            ]
        )
    )
    assert nonfirm.log["p_ev_kw"].max() <= 4.2 + 1e-9 < firm.log["p_ev_kw"].max()
    assert nonfirm.kpis["bill_discount_eur_mean"] < 0 == firm.kpis["bill_discount_eur_mean"]
    np.testing.assert_array_equal(firm.fleet.has_ev, nonfirm.fleet.has_ev)  # same households
