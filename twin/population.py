"""Sample the households behind a feeder from a scenario (seeded): who has which device, and
each device's parameters. The result is a :class:`~twin.fleet.Fleet` of arrays over
households."""

from __future__ import annotations

import numpy as np

from twin.fleet import Fleet
from twin.scenario import Scenario

CHARGER_KW_LOW = 3.7  # 1 x 16 A
CHARGER_KW_HIGH = 11.0  # 3 x 16 A
SOC_START_FRACTION = (0.5, 0.9)  # initial EV and battery state, drawn uniformly (assumption)


def sample_fleet(scenario: Scenario, n: int, rng: np.random.Generator) -> Fleet:
    """Draw ``n`` households. Adoption is drawn as exact counts (rounded shares), assigned at
    random, so a 100-household feeder at 45 % all-electric heat pumps has exactly 45 of them.

    With the same seed, a scenario with higher shares gives a superset of the adopters of one
    with lower shares, and every device parameter of a household is the same in both.
    """
    ad, dw, hp, ev, pv, bat = (
        scenario[s] for s in ("adoption", "dwelling", "heat_pump", "ev", "pv", "battery")
    )
    # two independent streams: who adopts what, and the households' parameters
    adopt_rng, rng = rng.spawn(2)

    def pick(share: float, among: np.ndarray | None = None) -> np.ndarray:
        # a random priority order, then the first k: the random stream consumed does not depend
        # on the share, so a larger share adds households to a smaller one's set (nested fleets
        # make hosting-capacity searches monotone) and all later draws stay the same
        ranked = adopt_rng.permutation(n)
        if among is not None:
            ranked = ranked[among[ranked]]
        mask = np.zeros(n, bool)
        mask[ranked[: int(round(share * len(ranked)))]] = True
        return mask

    order = adopt_rng.permutation(n)
    n_ae = int(round(ad["heat_pump_all_electric"].value * n))
    n_hy = int(round(ad["heat_pump_hybrid"].value * n))
    has_hp = np.zeros(n, bool)
    hp_hybrid = np.zeros(n, bool)
    has_hp[order[: n_ae + n_hy]] = True
    hp_hybrid[order[n_ae : n_ae + n_hy]] = True
    has_ev = pick(ad["ev"].value)
    has_pv = pick(ad["pv"].value)
    has_battery = pick(ad["battery_given_pv"].value, among=has_pv)

    area = dw["floor_area_m2"].sample(rng, n)
    setpoint = dw["setpoint_c"].sample(rng, n)
    design_out = dw["design_outdoor_c"].value
    design_load_kw = dw["design_heat_load_w_m2"].sample(rng, n) * area / 1000.0
    ua = design_load_kw / (setpoint - design_out)
    r = 1.0 / ua
    c = dw["heat_capacity_kwh_per_k_m2"].sample(rng, n) * area

    sizing = np.where(hp_hybrid, hp["sizing_hybrid"].value, hp["sizing_all_electric"].value)
    hp_q_max = np.where(has_hp, sizing * design_load_kw, 0.0)

    ev_cap = np.where(has_ev, ev["battery_kwh"].sample(rng, n), 0.0)
    fast = rng.random(n) < ev["share_11kw_charger"].value
    ev_p = np.where(has_ev, np.where(fast, CHARGER_KW_HIGH, CHARGER_KW_LOW), 0.0)

    bat_cap = np.where(has_battery, bat["capacity_kwh"].sample(rng, n), 0.0)
    return Fleet(
        n=n,
        has_hp=has_hp,
        hp_hybrid=hp_hybrid,
        has_ev=has_ev,
        has_pv=has_pv,
        has_battery=has_battery,
        floor_area_m2=area,
        ua_kw_per_k=ua,
        r_k_per_kw=r,
        c_kwh_per_k=c,
        solar_aperture_m2=dw["solar_aperture_m2_per_m2"].sample(rng, n) * area,
        internal_gains_kw=np.full(n, dw["internal_gains_kw"].value),
        setpoint_c=setpoint,
        design_heat_load_kw=design_load_kw,
        hp_q_max_kw=hp_q_max,
        flow_design_c=hp["flow_temp_design_c"].sample(rng, n),
        ev_capacity_kwh=ev_cap,
        ev_p_max_kw=ev_p,
        ev_kwh_per_km=ev["consumption_kwh_per_km"].sample(rng, n),
        ev_departure_h=ev["departure_h"].sample(rng, n),
        ev_arrival_h=ev["arrival_h"].sample(rng, n),
        ev_soc0_kwh=ev_cap * rng.uniform(*SOC_START_FRACTION, n),
        pv_kwp=np.where(has_pv, pv["kwp"].sample(rng, n), 0.0),
        bat_capacity_kwh=bat_cap,
        bat_p_max_kw=bat_cap * bat["c_rate"].value,
        bat_eta=np.full(n, np.sqrt(bat["roundtrip_efficiency"].value)),
        bat_soc0_kwh=bat_cap * rng.uniform(*SOC_START_FRACTION, n),
    )
