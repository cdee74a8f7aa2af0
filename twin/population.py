"""Sample the households behind a feeder from a scenario (seeded): who has which device, and
each device's parameters. The result is a :class:`~twin.fleet.Fleet` of arrays over
households."""

from __future__ import annotations

import numpy as np

from twin.fleet import (
    THREE_PHASE,
    Fleet,
    HeatPumpModel,
    HotWaterModel,
    PvModel,
    response_codes,
)
from twin.scenario import SIZE_SHARE_KEYS, Scenario

CHARGER_KW_LOW = 3.7  # 1 x 16 A: single-phase
CHARGER_KW_HIGH = 11.0  # 3 x 16 A: three-phase
SOC_START_FRACTION = (0.5, 0.9)  # initial EV and battery state, drawn uniformly (assumption)
#: Largest PV inverter on one phase: the Netcode elektriciteit (art. 2.2.1.8, unbalanced
#: feed-in) allows at most 5 kW on a single-phase connection or inverter
#: (zelfenergieproduceren.nl, installatievoorwaarden); larger systems are three-phase.
PV_SINGLE_PHASE_MAX_KWP = 5.0
#: ``connection_phase`` entry of a household whose phase the feeder does not give.
PHASE_UNKNOWN = -2


#: EU 812/2013 Annex II storage classes: standing loss ``a + b V^0.4`` W at 45 K (class A, C).
TANK_LOSS_CLASS_A = (5.5, 3.16)
TANK_LOSS_CLASS_C = (12.0, 5.93)


#: The devices a DSO's register lists per connection (twin.view.Registered), in draw order.
REGISTERED_DEVICES = ("heat_pump", "ev", "pv")


def draw_unregistered(fleet: Fleet, share: float, seed: int) -> dict[str, np.ndarray]:
    """``{device: (n,) bool}`` the adopters of each device the DSO's register does not know
    of: ``round(share * adopters)`` of them, from a stream of their own (a larger share adds
    households to a smaller one's set; nothing else the run draws changes)."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x5E, 13, 9)))
    has = {"heat_pump": fleet.has_hp, "ev": fleet.has_ev, "pv": fleet.pv_kwp > 0}
    out = {}
    for device in REGISTERED_DEVICES:
        ranked = rng.permutation(fleet.n)
        ranked = ranked[has[device][ranked]]
        mask = np.zeros(fleet.n, bool)
        mask[ranked[: int(round(share * len(ranked)))]] = True
        out[device] = mask
    return out


def sample_fleet(
    scenario: Scenario,
    n: int,
    rng: np.random.Generator,
    connection_phase: np.ndarray | None = None,
    persons: np.ndarray | None = None,
    existing_pv_kwp: np.ndarray | None = None,
) -> Fleet:
    """Draw ``n`` households. Adoption is drawn as exact counts (rounded shares), assigned at
    random, so a 100-household feeder at 45 % all-electric heat pumps has exactly 45 of them.

    With the same seed, a scenario with higher shares gives a superset of the adopters of one
    with lower shares, and every device parameter of a household is the same in both.

    The households' phases (:func:`draw_phases`) come from a child stream of their own, so
    every other number is the same as without them; ``connection_phase`` ``(n,)`` gives the
    feeder's own phase of each connection (:data:`~twin.fleet.THREE_PHASE`, 0/1/2, or
    :data:`PHASE_UNKNOWN` to draw it).

    The parameters of issue 11 (hot-water tanks and draws, PV roofs, V2G, household size when
    ``persons`` is not given) come from a further child stream (:func:`draw_household_devices`),
    and bidirectional chargers are picked among the EVs after every other adoption draw: every
    number of the fleet before them is unchanged. ``persons`` ``(n,)``: household sizes drawn
    with the base load (:func:`twin.inputs.build_inputs`); ``existing_pv_kwp`` ``(n,)``: PV the
    feeder file already has at each household (0: none), kept, and counted toward the
    scenario's PV share.
    """
    ad, dw, hp, ev, pv, bat = (
        scenario[s] for s in ("adoption", "dwelling", "heat_pump", "ev", "pv", "battery")
    )
    # two independent streams: who adopts what, and the households' parameters
    adopt_rng, rng = rng.spawn(2)

    def pick(
        share: float, among: np.ndarray | None = None, keep: np.ndarray | None = None
    ) -> np.ndarray:
        # a random priority order, then the first k: the random stream consumed does not depend
        # on the share, so a larger share adds households to a smaller one's set (nested fleets
        # make hosting-capacity searches monotone) and all later draws stay the same; ``keep``
        # is in the set anyway and counts toward it
        ranked = adopt_rng.permutation(n)
        if among is not None:
            ranked = ranked[among[ranked]]
        mask = np.zeros(n, bool)
        k = int(round(share * len(ranked)))
        if keep is not None and keep.any():
            mask |= keep
            ranked = ranked[~keep[ranked]]
            k = max(k - int(keep.sum()), 0)
        mask[ranked[:k]] = True
        return mask

    order = adopt_rng.permutation(n)
    n_ae = int(round(ad["heat_pump_all_electric"].value * n))
    n_hy = int(round(ad["heat_pump_hybrid"].value * n))
    has_hp = np.zeros(n, bool)
    hp_hybrid = np.zeros(n, bool)
    has_hp[order[: n_ae + n_hy]] = True
    hp_hybrid[order[n_ae : n_ae + n_hy]] = True
    has_ev = pick(ad["ev"].value)
    existing = np.zeros(n) if existing_pv_kwp is None else np.asarray(existing_pv_kwp, dtype=float)
    has_pv = pick(ad["pv"].value, keep=existing > 0)
    has_battery = pick(ad["battery_given_pv"].value, among=has_pv)
    # after every earlier adoption draw: the adopters above are the same with or without V2G
    has_v2g = pick(ad["ev_bidirectional_given_ev"].value, among=has_ev)

    area = dw["floor_area_m2"].sample(rng, n)
    setpoint = dw["setpoint_c"].sample(rng, n)
    design_out = dw["design_outdoor_c"].value
    # one draw for every home (the stream stays as it was), placed in the range of its kind:
    # gas homes, all-electric and hybrid heat-pump homes (the same quantile of each range)
    w_m2 = dw["design_heat_load_w_m2"].sample(rng, n)
    w_m2 = np.where(
        has_hp & ~hp_hybrid,
        _same_quantile(w_m2, dw["design_heat_load_w_m2"], dw["design_heat_load_w_m2_all_electric"]),
        np.where(
            hp_hybrid,
            _same_quantile(w_m2, dw["design_heat_load_w_m2"], dw["design_heat_load_w_m2_hybrid"]),
            w_m2,
        ),
    )
    design_load_kw = w_m2 * area / 1000.0
    ua = design_load_kw / (setpoint - design_out)
    r = 1.0 / ua
    c = dw["heat_capacity_kwh_per_k_m2"].sample(rng, n) * area

    sizing = np.where(hp_hybrid, hp["sizing_hybrid"].value, hp["sizing_all_electric"].value)
    hp_q_max = np.where(has_hp, sizing * design_load_kw, 0.0)  # + hot water, below

    ev_cap = np.where(has_ev, ev["battery_kwh"].sample(rng, n), 0.0)
    fast = rng.random(n) < ev["share_11kw_charger"].value
    ev_p = np.where(has_ev, np.where(fast, CHARGER_KW_HIGH, CHARGER_KW_LOW), 0.0)

    bat_cap = np.where(has_battery, bat["capacity_kwh"].sample(rng, n), 0.0)
    # the order of the draws below is the order they always had
    aperture = dw["solar_aperture_m2_per_m2"].sample(rng, n) * area
    flow_design = hp["flow_temp_design_c"].sample(rng, n)
    ev_kwh_per_km = ev["consumption_kwh_per_km"].sample(rng, n)
    ev_departure = ev["departure_h"].sample(rng, n)
    ev_arrival = ev["arrival_h"].sample(rng, n)
    ev_soc0 = ev_cap * rng.uniform(*SOC_START_FRACTION, n)
    pv_kwp = np.where(has_pv, pv["kwp"].sample(rng, n), 0.0)
    pv_kwp = np.where(existing > 0, existing, pv_kwp)
    bat_soc0 = bat_cap * rng.uniform(*SOC_START_FRACTION, n)
    # two child streams of their own (spawning reads no number from ``rng``): the phases, then
    # the devices of issue 11; every number above is what it was before either was drawn
    phase_rng, device_rng = rng.spawn(2)
    extra = draw_household_devices(
        scenario, device_rng, hp_hybrid, has_hp & ~hp_hybrid, has_v2g, ev_cap, ev_p,
        ev_kwh_per_km, persons,
    )  # fmt: skip
    hp_ = scenario["heat_pump"]
    hw = scenario["hot_water"]
    # an all-electric unit with a tank is sized for its hot water too
    allowance = hp_["dhw_allowance_kw_per_person"].value * extra["persons"]
    hp_q_max = np.where(extra["has_tank"], hp_q_max + allowance, hp_q_max)
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
        solar_aperture_m2=aperture,
        internal_gains_kw=np.full(n, dw["internal_gains_kw"].value),
        setpoint_c=setpoint,
        design_heat_load_kw=design_load_kw,
        hp_q_max_kw=hp_q_max,
        flow_design_c=flow_design,
        ev_capacity_kwh=ev_cap,
        ev_p_max_kw=ev_p,
        ev_kwh_per_km=ev_kwh_per_km,
        ev_departure_h=ev_departure,
        ev_arrival_h=ev_arrival,
        ev_soc0_kwh=ev_soc0,
        pv_kwp=pv_kwp,
        bat_capacity_kwh=bat_cap,
        bat_p_max_kw=bat_cap * bat["c_rate"].value,
        bat_eta=np.full(n, np.sqrt(bat["roundtrip_efficiency"].value)),
        bat_soc0_kwh=bat_soc0,
        hp_t_bivalent_c=np.where(hp_hybrid, hp_["t_bivalent_c"].value, -np.inf),
        hp_price_switch=hp_hybrid & (hp_["price_switch"].value >= 0.5),
        hp_model=HeatPumpModel(
            **{
                k: hp_[k].value
                for k in (
                    "defrost_max_loss",
                    "min_modulation",
                    "cycling_cd",
                    "capacity_slope_per_k",
                    "dhw_flow_offset_k",
                    "standby_kw",
                    "field_cop_factor",
                    "boiler_eta",
                    "gas_eur_per_kwh",
                )
            }
        ),
        dhw_model=HotWaterModel(
            t_usable_c=hw["t_usable_c"].value,
            t_cold_c=hw["t_cold_c"].value,
            t_room_c=hw["t_room_c"].value,
            day_volume_sigma=hw["day_volume_sigma"].value,
        ),
        pv_model=PvModel(
            **{k: pv[k].value for k in ("system_loss", "gamma_pdc_per_k", "cell_u_c", "albedo")}
        ),
        **extra,
    )
    phases = draw_phases(
        scenario,
        phase_rng,
        fleet.hp_hybrid,
        fleet.ev_p_max_kw,
        fleet.pv_kwp,
        connection_phase=connection_phase,
    )
    for part, ph in phases.items():
        setattr(fleet, f"phase_{part}", ph)
    # a third child stream (spawned after the other two: every number above is unchanged)
    for key, values in draw_responses(scenario, rng.spawn(1)[0], n).items():
        setattr(fleet, key, values)
    return fleet


def draw_responses(scenario: Scenario, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """How each household responds to a tariff (``response.*``; the ``response*``, ``timer_*``
    and ``manual_*`` Fleet fields), drawn for every household in a fixed order: a random
    ranking (the first ``full_automation`` share of it fully automated, then timers, then
    manual responders, the rest none; :func:`twin.fleet.response_codes`), and every
    household's timer and manual habits whatever its type (a study that changes the shares
    keeps them). A timer is set at the start of the cheap block with
    ``timer_at_block_start``, otherwise ``timer_own_delay_h`` after it."""
    r = scenario["response"]
    position = np.empty(n, dtype=np.int64)
    position[rng.permutation(n)] = np.arange(n)
    at_start = rng.random(n) < r["timer_at_block_start"].value
    own = r["timer_own_delay_h"].sample(rng, n)
    setback = r["timer_setback_k"].sample(rng, n)
    shift = r["manual_shift_share"].sample(rng, n)
    delay = r["manual_delay_h"].sample(rng, n)
    return {
        "response": response_codes(
            position, r["full_automation"].value, r["timer"].value, r["manual"].value
        ),
        "response_position": position,
        "timer_delay_h": np.where(at_start, 0.0, own),
        "timer_setback_k": setback,
        "manual_shift_share": shift,
        "manual_delay_h": delay,
    }


def _same_quantile(x: np.ndarray, src, dst) -> np.ndarray:
    """``x`` drawn uniformly in ``src``'s range, at the same quantile of ``dst``'s range."""
    width = src.high - src.low
    q = (x - src.low) / width if width > 0 else np.full_like(x, 0.5)
    return dst.low + q * (dst.high - dst.low)


def draw_household_sizes(scenario: Scenario, rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n,)`` persons per household (5 = five or more), ``base_load.household_share_*``."""
    shares = np.array(
        [scenario["base_load"][f"household_share_{k}"].value for k in SIZE_SHARE_KEYS]
    )
    return rng.choice(np.arange(1, 6), size=n, p=shares / shares.sum())


def tank_volume_l(scenario: Scenario, persons: np.ndarray) -> np.ndarray:
    """``(n,)`` tank volume by household size (``hot_water.tank_volume_l_*``)."""
    hw = scenario["hot_water"]
    p = np.asarray(persons)
    return np.where(
        p <= 2,
        hw["tank_volume_l_1_2_persons"].value,
        np.where(
            p <= 4, hw["tank_volume_l_3_4_persons"].value, hw["tank_volume_l_5_plus_persons"].value
        ),
    )


def tank_loss_w(volume_l: np.ndarray, a_to_c: np.ndarray) -> np.ndarray:
    """Standing loss (W at 45 K) between the limits of EU storage classes A (0) and C (1)."""
    v04 = np.asarray(volume_l, dtype=float) ** 0.4
    a = TANK_LOSS_CLASS_A[0] + TANK_LOSS_CLASS_A[1] * v04
    c = TANK_LOSS_CLASS_C[0] + TANK_LOSS_CLASS_C[1] * v04
    return a + np.asarray(a_to_c) * (c - a)


def draw_roofs(
    rng: np.random.Generator,
    n: int,
    share_flat: float,
    share_flat_east_west: float,
    pitched_tilt_deg: tuple[float, float],
    pitched_azimuth_sd_deg: float,
    flat_tilt_deg: tuple[float, float],
    dc_ac_ratio: tuple[float, float],
) -> dict[str, np.ndarray]:
    """Roof orientations and inverter sizing of ``n`` PV systems (``pv_*`` Fleet fields).

    Pitched roofs: tilt uniform in ``pitched_tilt_deg``, azimuth 180° + N(0, sd) clipped to
    east (90°) .. west (270°); flat roofs (``share_flat``): racks at ``flat_tilt_deg``, facing
    south or (``share_flat_east_west``) split east/west into two half arrays. Angles are
    rounded to 5° so households share orientations (each distinct plane is evaluated once)."""
    flat = rng.random(n) < share_flat
    ew = flat & (rng.random(n) < share_flat_east_west)
    az_pitched = np.clip(rng.normal(180.0, pitched_azimuth_sd_deg, n), 90.0, 270.0)
    tilt = np.where(flat, rng.uniform(*flat_tilt_deg, n), rng.uniform(*pitched_tilt_deg, n))
    az = np.where(flat, np.where(ew, 90.0, 180.0), az_pitched)
    tilt = 5.0 * np.round(tilt / 5.0)
    az = 5.0 * np.round(az / 5.0)
    return {
        "pv_tilt_deg": tilt,
        "pv_azimuth_deg": az,
        "pv_tilt2_deg": tilt.copy(),
        "pv_azimuth2_deg": np.where(ew, 270.0, az),
        "pv_share2": np.where(ew, 0.5, 0.0),
        "pv_dc_ac_ratio": rng.uniform(*dc_ac_ratio, n),
    }


def draw_household_devices(
    scenario: Scenario,
    rng: np.random.Generator,
    hp_hybrid: np.ndarray,
    has_tank: np.ndarray,
    has_v2g: np.ndarray,
    ev_capacity_kwh: np.ndarray,
    ev_p_max_kw: np.ndarray,
    ev_kwh_per_km: np.ndarray,
    persons: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The Fleet fields of issue 11, drawn for every household in a fixed order (a scenario
    with more devices keeps them): household size (unless given), hot-water use and the tank
    (``hot_water.*``; a tank where ``has_tank``: the all-electric heat-pump homes, hybrids make
    hot water with their combi boiler), the PV roof (``pv.*``), the V2G reserve and wear cost
    (``ev.v2g_*``; discharge at the charger's rating where ``has_v2g``)."""
    n = len(hp_hybrid)
    hw, pv, ev = scenario["hot_water"], scenario["pv"], scenario["ev"]
    drawn_persons = draw_household_sizes(scenario, rng, n)
    persons = drawn_persons if persons is None else np.asarray(persons, dtype=np.int64)
    litres = hw["litres_60c_per_person_day"].sample(rng, n)
    a_to_c = hw["tank_loss_a_to_c"].sample(rng, n)
    t_set = hw["t_set_c"].sample(rng, n)
    hyst = hw["hysteresis_k"].sample(rng, n)
    roofs = draw_roofs(
        rng,
        n,
        pv["share_flat_roof"].value,
        pv["share_flat_east_west"].value,
        (pv["pitched_tilt_deg"].low, pv["pitched_tilt_deg"].high),
        pv["pitched_azimuth_sd_deg"].value,
        (pv["flat_tilt_deg"].low, pv["flat_tilt_deg"].high),
        (pv["dc_ac_ratio"].low, pv["dc_ac_ratio"].high),
    )
    wear = ev["v2g_wear_cost_eur_per_kwh"].sample(rng, n)
    vol = np.where(has_tank, tank_volume_l(scenario, persons), 0.0)
    reserve = np.maximum(
        ev["v2g_reserve_share"].value * ev_capacity_kwh, ev["v2g_reserve_km"].value * ev_kwh_per_km
    )
    v2g = np.asarray(has_v2g, bool) & (np.asarray(ev_capacity_kwh) > 0)
    return {
        "persons": persons.astype(np.int64),
        "has_tank": np.asarray(has_tank, bool).copy(),
        "tank_volume_l": vol,
        "tank_ua_kw_per_k": np.where(has_tank, tank_loss_w(vol, a_to_c) / 45.0 / 1000.0, 0.0),
        "tank_t_set_c": t_set,
        "tank_hysteresis_k": np.minimum(hyst, t_set - hw["t_cold_c"].value - 1.0),
        "tank_t_max_c": np.maximum(np.full(n, hw["t_max_c"].value), t_set),
        "tank_element_kw": np.where(has_tank, hw["element_kw"].value, 0.0),
        "dhw_litres_per_person_day": litres,
        **roofs,
        "ev_bidirectional": v2g,
        "ev_p_dis_max_kw": np.where(v2g, ev_p_max_kw, 0.0),
        "ev_v2g_reserve_kwh": np.where(v2g, np.minimum(reserve, ev_capacity_kwh), 0.0),
        "ev_wear_eur_per_kwh": np.where(v2g, wear, 0.0),
    }


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
