"""Sample the households behind a feeder from a scenario (seeded): who has which device, and
each device's parameters. The result is a :class:`~twin.fleet.Fleet` of arrays over
households."""

from __future__ import annotations

import numpy as np

from twin.fleet import THREE_PHASE, Fleet
from twin.scenario import Scenario

CHARGER_KW_LOW = 3.7  # 1 x 16 A: single-phase
CHARGER_KW_HIGH = 11.0  # 3 x 16 A: three-phase
SOC_START_FRACTION = (0.5, 0.9)  # initial EV and battery state, drawn uniformly (assumption)
#: Largest PV inverter on one phase: the Netcode elektriciteit (art. 2.2.1.8, unbalanced
#: feed-in) allows at most 5 kW on a single-phase connection or inverter
#: (zelfenergieproduceren.nl, installatievoorwaarden); larger systems are three-phase.
PV_SINGLE_PHASE_MAX_KWP = 5.0
#: ``connection_phase`` entry of a household whose phase the feeder does not give.
PHASE_UNKNOWN = -2


def sample_fleet(
    scenario: Scenario,
    n: int,
    rng: np.random.Generator,
    connection_phase: np.ndarray | None = None,
) -> Fleet:
    """Draw ``n`` households. Adoption is drawn as exact counts (rounded shares), assigned at
    random, so a 100-household feeder at 45 % all-electric heat pumps has exactly 45 of them.

    With the same seed, a scenario with higher shares gives a superset of the adopters of one
    with lower shares, and every device parameter of a household is the same in both.

    The households' phases (:func:`draw_phases`) come from a child stream of their own, so
    every other number is the same as without them; ``connection_phase`` ``(n,)`` gives the
    feeder's own phase of each connection (:data:`~twin.fleet.THREE_PHASE`, 0/1/2, or
    :data:`PHASE_UNKNOWN` to draw it).
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
    fleet = Fleet(
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
    # a child stream of its own (spawning reads no number from ``rng``): every number above
    # is what it was before phases were drawn
    phases = draw_phases(
        scenario,
        rng.spawn(1)[0],
        fleet.hp_hybrid,
        fleet.ev_p_max_kw,
        fleet.pv_kwp,
        connection_phase=connection_phase,
    )
    for part, ph in phases.items():
        setattr(fleet, f"phase_{part}", ph)
    return fleet


def draw_phases(
    scenario: Scenario,
    rng: np.random.Generator,
    hp_hybrid: np.ndarray,
    ev_p_max_kw: np.ndarray,
    pv_kwp: np.ndarray,
    connection_phase: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Each household's connection type and the phase of each of its loads (seeded).

    Returns ``{part: (n,) int8}`` for ``connection``, ``base``, ``hp``, ``ev``, ``pv``, ``bat``:
    :data:`~twin.fleet.THREE_PHASE` (-1, split equally) or 0/1/2 (phase a/b/c). Drawn for
    every household, whether it has the device or not, in a fixed order (a scenario with more
    devices keeps every household's phases; a larger single-phase share adds connections to a
    smaller one's):

    * **connection**: single-phase with ``dwelling.single_phase_connection_share`` (a random
      priority order, the first ones), on a uniformly drawn phase; households that need three
      phases are three-phase whatever the draw: an 11 kW (3 x 16 A) charger, PV above
      :data:`PV_SINGLE_PHASE_MAX_KWP`. ``connection_phase`` (from the feeder file) replaces
      the draw where it is not :data:`PHASE_UNKNOWN` (then the feeder's phase wins);
    * on a **single-phase** connection every load is on its phase;
    * on a **three-phase** connection the base load is split equally over the phases (an
      assumption: the groups of a house are spread over its phases), an 11 kW charger is
      three-phase and a 3.7 kW one single-phase, PV up to 5 kWp has a single-phase inverter
      with ``pv.single_phase_inverter_share``, a heat pump is single-phase with
      ``heat_pump.single_phase_share_all_electric`` / ``..._hybrid``; the battery shares the
      PV inverter's phases (a hybrid inverter, assumption). Single-phase devices sit on a
      uniformly drawn phase each (assumption: the installer's choice).
    """
    n = len(hp_hybrid)
    dw, hp, pv = scenario["dwelling"], scenario["heat_pump"], scenario["pv"]
    ranked = rng.permutation(n)
    single = np.zeros(n, bool)
    single[ranked[: int(round(dw["single_phase_connection_share"].value * n))]] = True
    conn_ph = rng.integers(0, 3, n)
    u_pv, ph_pv = rng.random(n), rng.integers(0, 3, n)
    u_hp, ph_hp = rng.random(n), rng.integers(0, 3, n)
    ph_ev = rng.integers(0, 3, n)

    ev_three = np.asarray(ev_p_max_kw) > CHARGER_KW_LOW + 1e-9
    pv_three = np.asarray(pv_kwp) > PV_SINGLE_PHASE_MAX_KWP
    single &= ~ev_three & ~pv_three
    connection = np.where(single, conn_ph, THREE_PHASE)
    if connection_phase is not None:
        given = np.asarray(connection_phase, dtype=np.int64)
        if given.shape != (n,):
            raise ValueError(f"connection_phase must have one entry per household ({n})")
        connection = np.where(given != PHASE_UNKNOWN, given, connection)
    one = connection >= 0

    hp_share = np.where(
        hp_hybrid,
        hp["single_phase_share_hybrid"].value,
        hp["single_phase_share_all_electric"].value,
    )
    pv_1ph = ~pv_three & (u_pv < pv["single_phase_inverter_share"].value)
    out = {
        "connection": connection,
        "base": np.where(one, connection, THREE_PHASE),
        "hp": np.where(one, connection, np.where(u_hp < hp_share, ph_hp, THREE_PHASE)),
        "ev": np.where(one, connection, np.where(ev_three, THREE_PHASE, ph_ev)),
        "pv": np.where(one, connection, np.where(pv_1ph, ph_pv, THREE_PHASE)),
    }
    out["bat"] = out["pv"].copy()
    return {k: v.astype(np.int8) for k, v in out.items()}
