"""Grid KPIs from a :class:`~twin.grid.powerflow.PowerFlowResult`.

Definitions
-----------
* Transformer loading is power based (see :mod:`twin.grid.powerflow`) and refers to the
  feeder's **station** (:mod:`twin.grid.ratings`: parallel transformers together, their
  apparent powers summed against the sum of their ratings); "energy above 100 %" is the
  apparent energy above the rating, ``sum(max(0, S - S_rated)) * dt`` in kVAh. The worst single
  unit's own peak loading is reported beside it.
* Cable loading is current based; a cable's apparent rating is ``sqrt(3) * vn_kv * max_i_ka
  * df * parallel`` (kVA at nominal voltage), and its energy above 100 % is
  ``sum(max(0, loading_pct - 100) / 100) * rating * dt`` (kVAh).
* Losses (lines and transformer) are given in kWh and as a share of the energy through the
  transformer, ``sum(|trafo_p_kw|) * dt`` (both directions counted).
* Voltage compliance follows the Dutch Netcode elektriciteit / EN 50160 rule for LV: per bus
  and per week, 95 % of the 10-minute mean voltages within Un +/-10 %, and all of them within
  Un +10 % / -15 %. twin's steps are 15-minute means; each 15-minute mean stands in for the
  10-minute means inside it. (A 15-min mean averages over more fluctuation than a 10-min mean,
  so this can only be *milder* than the rule for fast-varying voltages; at 15-min resolution
  nothing finer is known.) Weeks are consecutive 7-day blocks from the first step (Jan 1 in a
  twin year); a remainder shorter than a week is merged into the last week (a 365-day year
  gives 51 weeks of 7 days and one of 8 days), and a run shorter than a week is one
  (partial) week. Only buses below 1 kV that are energised count (the MV bus of the external
  grid is not part of the LV feeder).
* Unbalance (unbalanced results, :func:`asym_grid_kpis`): the voltage unbalance factor
  ``|U2| / |U1|`` per bus and step from the phase voltage phasors; per bus and week, 95 % of
  the 10-min values must be at most 2 % (Netcode / EN 50160, LV), with 15-min steps standing
  in for 10-min values as for the voltage. Phase voltages are checked against the voltage
  rule per phase (a bus complies when all three phases do).
* Technical risk (the E.DSO paper's term, Sadales tīkls case: the realised load exceeds a
  limit): a step is a risk step when the station or any cable is loaded above 100 % of its
  rating; ``technical_risk_events`` counts the runs of consecutive risk steps,
  ``technical_risk_hours`` their duration, ``technical_risk_kwh`` the energy by which the
  most overloaded element exceeded its rating, step by step (``sum_t max_e max(0, S_e -
  S_rated,e) * dt``, kVAh: the load a perfect correction would have had to move, without
  counting the same overload in the station and the cables it flows through twice), and
  ``technical_risk_worst_pct`` the highest loading of any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandapower.auxiliary import pandapowerNet

from twin.grid.powerflow import PowerFlowResult
from twin.grid.ratings import line_rating_kva, station_mask, station_rating_kva

__all__ = [
    "BAND_ALWAYS_PU",
    "BAND_95_PU",
    "VUF_LIMIT_PCT",
    "asym_grid_kpis",
    "asym_run_kpis",
    "cable_kpis",
    "grid_kpis",
    "Station",
    "loading_duration_curve",
    "over_rating_kva",
    "station_of",
    "technical_risk",
    "station_limit_risk",
    "unbalance_compliance",
    "voltage_compliance",
    "voltage_unbalance_factor",
    "week_of_step",
]

#: 95 % of the 10-min means per week must lie within Un +/- 10 %.
BAND_95_PU = (0.90, 1.10)
#: All 10-min means must lie within Un +10 % / -15 %.
BAND_ALWAYS_PU = (0.85, 1.10)
STEPS_PER_WEEK_15MIN = 7 * 96


@dataclass(frozen=True)
class Station:
    """The feeder's MV/LV station over the steps of a result (see :mod:`twin.grid.ratings`)."""

    rating_kva: float
    s_kva: np.ndarray  # (T,) apparent power, sum over the station's transformers
    p_kw: np.ndarray  # (T,) active power into the station at its HV side (import > 0)
    units: np.ndarray  # (n_unit,) positions of its transformers in the result's columns
    q_kvar: np.ndarray | None = (
        None  # (T,) reactive power into it at its HV side (None: not reported)
    )

    @property
    def loading_pct(self) -> np.ndarray:
        """``(T,)`` power-based loading, % of the station rating."""
        return 100.0 * self.s_kva / self.rating_kva


def station_of(result: PowerFlowResult, net: pandapowerNet) -> Station:
    """The station's series in ``result`` (the feeder's transformers together)."""
    in_station = station_mask(net)[net.trafo.index.get_indexer(result.trafo_index)]
    cols = np.flatnonzero(in_station)
    q = getattr(result, "trafo_q_kvar", None)
    return Station(
        rating_kva=station_rating_kva(net),
        s_kva=result.trafo_s_kva[:, cols].sum(axis=1),
        p_kw=result.trafo_p_kw[:, cols].sum(axis=1),
        units=cols,
        q_kvar=None if q is None else q[:, cols].sum(axis=1),
    )


def week_of_step(n_steps: int, dt_h: float = 0.25) -> np.ndarray:
    """Week number of every step: 7-day blocks, a final partial week merged into the last."""
    per_week = max(1, int(round(7 * 24 / dt_h)))
    n_weeks = max(1, n_steps // per_week)
    return np.minimum(np.arange(n_steps) // per_week, n_weeks - 1)


def voltage_compliance(
    vm_pu: np.ndarray, dt_h: float = 0.25, share_required: float = 0.95
) -> dict[str, np.ndarray]:
    """Netcode / EN 50160 voltage compliance per bus and week.

    Parameters
    ----------
    vm_pu : np.ndarray
        ``(T, n_bus)`` voltages of the buses to check (NaN columns are ignored).
    dt_h : float
        Step length in hours.
    share_required : float
        Required share of steps within +/-10 % (0.95).

    Returns
    -------
    dict
        ``share_in_band`` ``(n_week, n_bus)`` share of steps within +/-10 %;
        ``all_within_limits`` ``(n_week, n_bus)`` bool, every step within +10/-15 %;
        ``compliant`` ``(n_week, n_bus)`` bool, both conditions (False for NaN buses);
        ``valid_bus`` ``(n_bus,)`` bool.
    """
    vm = np.asarray(vm_pu, dtype=float)
    if vm.ndim != 2 or vm.shape[0] == 0:
        raise ValueError(f"vm_pu must be (T, n_bus) with T >= 1, got shape {vm.shape}")
    week = week_of_step(vm.shape[0], dt_h)
    valid = np.isfinite(vm).all(axis=0)
    in95 = (vm >= BAND_95_PU[0]) & (vm <= BAND_95_PU[1])
    inall = (vm >= BAND_ALWAYS_PU[0]) & (vm <= BAND_ALWAYS_PU[1])
    starts = np.flatnonzero(np.r_[True, np.diff(week) != 0])  # weeks are contiguous blocks
    counts = np.diff(np.r_[starts, len(week)]).astype(float)
    share = np.add.reduceat(in95, starts, axis=0, dtype=np.int64) / counts[:, None]
    n_out_all = np.add.reduceat(~inall, starts, axis=0, dtype=np.int64)
    all_ok = n_out_all == 0
    # a tiny tolerance so that exactly 95 % counts as compliant despite float rounding
    compliant = (share >= share_required - 1e-12) & all_ok & valid[None, :]
    return {
        "share_in_band": share,
        "all_within_limits": all_ok,
        "compliant": compliant,
        "valid_bus": valid,
    }


def loading_duration_curve(loading_pct: np.ndarray) -> np.ndarray:
    """Loading (%) sorted from highest to lowest, one value per step."""
    return np.sort(np.asarray(loading_pct, dtype=float))[::-1].copy()


def cable_kpis(result: PowerFlowResult, net: pandapowerNet, dt_h: float = 0.25) -> pd.DataFrame:
    """Per-cable loading KPIs, indexed by ``net.line`` index.

    Columns: ``max_loading_pct``, ``hours_over_100pct_h``, ``energy_over_rating_kvah``,
    ``rating_kva``.
    """
    ll = result.line_loading_pct
    rating = line_rating_kva(net)
    over = np.clip(ll - 100.0, 0.0, None) / 100.0
    return pd.DataFrame(
        {
            "max_loading_pct": ll.max(axis=0) if len(ll) else np.zeros(ll.shape[1]),
            "hours_over_100pct_h": (ll > 100.0).sum(axis=0) * dt_h,
            "energy_over_rating_kvah": over.sum(axis=0) * rating * dt_h,
            "rating_kva": rating,
        },
        index=pd.Index(result.line_index, name="line"),
    )


def over_rating_kva(result: PowerFlowResult, net: pandapowerNet) -> np.ndarray:
    """``(T,)`` per step, how far the most overloaded element (the station or a cable) is
    above its rating (kVA; 0 when none is), and ``(T,)`` the highest loading (%)."""
    n_t = result.n_steps
    excess, worst = np.zeros(n_t), np.zeros(n_t)
    st = station_of(result, net)
    if len(st.units):
        excess = np.maximum(excess, st.s_kva - st.rating_kva)
        worst = np.maximum(worst, st.loading_pct)
    ll = result.line_loading_pct
    if ll.shape[1]:
        rating = line_rating_kva(net)
        excess = np.maximum(excess, ((ll - 100.0) / 100.0 * rating).max(axis=1))
        worst = np.maximum(worst, ll.max(axis=1))
    return np.maximum(excess, 0.0), worst


def technical_risk(result: PowerFlowResult, net: pandapowerNet, dt_h: float = 0.25) -> dict:
    """The technical-risk KPIs (module docstring)."""
    excess, worst = over_rating_kva(result, net)
    risk = worst > 100.0
    starts = risk & ~np.concatenate([[False], risk[:-1]])
    return {
        "technical_risk_events": int(starts.sum()),
        "technical_risk_steps": int(risk.sum()),
        "technical_risk_hours": float(risk.sum() * dt_h),
        "technical_risk_kwh": float(excess[risk].sum() * dt_h),
        "technical_risk_worst_pct": float(worst.max()) if len(worst) else 0.0,
    }


def station_limit_risk(
    result: PowerFlowResult, net: pandapowerNet, limit_kva: float, dt_h: float = 0.25
) -> dict:
    """Technical risk against the limit the DSO operates the station to (the performance
    contract's ``limit_kva``, e.g. a derated or a temporarily reduced transformer; the rating
    when none is set): ``technical_risk_dso_limit_events`` (runs of steps whose realised
    station apparent power exceeds it), ``_steps``, ``_hours``, ``_kvah`` (the energy above
    it) and ``_worst_pct`` (the highest station load in % of it)."""
    st = station_of(result, net)
    s = st.s_kva if len(st.units) else np.zeros(result.n_steps)
    over = s - float(limit_kva)
    risk = over > 0.0
    starts = risk & ~np.concatenate([[False], risk[:-1]])
    return {
        "technical_risk_dso_limit_kva": float(limit_kva),
        "technical_risk_dso_limit_events": int(starts.sum()),
        "technical_risk_dso_limit_steps": int(risk.sum()),
        "technical_risk_dso_limit_hours": float(risk.sum() * dt_h),
        "technical_risk_dso_limit_kvah": float(over[risk].sum() * dt_h),
        "technical_risk_dso_limit_worst_pct": float(s.max() / limit_kva * 100) if len(s) else 0.0,
    }


def _lv_bus_mask(result: PowerFlowResult, net: pandapowerNet) -> np.ndarray:
    vn = net.bus.loc[result.bus_index, "vn_kv"].to_numpy(float)
    return vn < 1.0


def grid_kpis(result: PowerFlowResult, net: pandapowerNet, dt_h: float = 0.25) -> dict:
    """Flat, JSON-able dict of grid KPIs (names carry units).

    Transformer KPIs refer to the station (parallel transformers together; ``trafo_index``
    names its unit with the highest own peak). Voltage KPIs cover the energised LV buses (< 1 kV). See the module docstring for
    the definitions.

    Parameters
    ----------
    result : PowerFlowResult
        AC power flow over the run's time steps.
    net : pandapowerNet
        The feeder the result belongs to (ratings, voltage levels, names).
    dt_h : float
        Step length in hours (0.25 for 15 minutes).
    """
    n_t = result.n_steps
    kpi: dict = {"n_steps": int(n_t), "dt_h": float(dt_h), "duration_h": float(n_t * dt_h)}

    # transformer station (parallel units together)
    st = station_of(result, net)
    if len(st.units):
        lt, s, p, rating = st.loading_pct, st.s_kva, st.p_kw, st.rating_kva
        unit_peak = result.trafo_loading_pct[:, st.units].max(axis=0)
        kpi.update(
            trafo_index=int(result.trafo_index[st.units[np.argmax(unit_peak)]]),
            trafo_units=len(st.units),
            trafo_rating_kva=rating,
            trafo_peak_kva=float(s.max()),
            trafo_peak_loading_pct=float(lt.max()),
            trafo_unit_peak_loading_pct=float(unit_peak.max()),
            trafo_mean_loading_pct=float(lt.mean()),
            trafo_hours_over_100pct_h=float((lt > 100.0).sum() * dt_h),
            trafo_energy_over_rating_kvah=float(np.clip(s - rating, 0.0, None).sum() * dt_h),
            trafo_import_kwh=float(np.clip(p, 0.0, None).sum() * dt_h),
            trafo_export_kwh=float(np.clip(-p, 0.0, None).sum() * dt_h),
            trafo_peak_import_kw=float(p.max()),
            trafo_peak_export_kw=float(max(0.0, -p.min())),
        )
        through_kwh = float(np.abs(p).sum() * dt_h)
    else:
        through_kwh = float("nan")

    # cables
    if result.line_loading_pct.shape[1]:
        ck = cable_kpis(result, net, dt_h)
        worst = ck["max_loading_pct"].idxmax()
        name = net.line.at[worst, "name"] if "name" in net.line else None
        kpi.update(
            line_max_loading_pct=float(ck.at[worst, "max_loading_pct"]),
            line_worst=int(worst),
            line_worst_name=str(name) if isinstance(name, str) else str(worst),
            line_worst_hours_over_100pct_h=float(ck.at[worst, "hours_over_100pct_h"]),
            line_worst_energy_over_rating_kvah=float(ck.at[worst, "energy_over_rating_kvah"]),
            lines_n_overloaded=int((ck["max_loading_pct"] > 100.0).sum()),
            lines_hours_over_100pct_max_h=float(ck["hours_over_100pct_h"].max()),
            lines_energy_over_rating_kvah=float(ck["energy_over_rating_kvah"].sum()),
        )

    kpi.update(technical_risk(result, net, dt_h))

    # voltages
    lv = _lv_bus_mask(result, net)
    vm = result.vm_pu[:, lv]
    bus_lv = result.bus_index[lv]
    ok = np.isfinite(vm).all(axis=0)
    vm, bus_lv = vm[:, ok], bus_lv[ok]
    if vm.shape[1]:
        i_min = np.unravel_index(np.argmin(vm), vm.shape)
        i_max = np.unravel_index(np.argmax(vm), vm.shape)
        comp = voltage_compliance(vm, dt_h)
        per_bus_worst_share = comp["share_in_band"].min(axis=0)
        per_bus_ok = comp["compliant"].all(axis=0)
        # worst bus: most non-compliant weeks, then lowest in-band share, then lowest voltage
        n_bad = (~comp["compliant"]).sum(axis=0)
        order = np.lexsort((vm.min(axis=0), per_bus_worst_share, -n_bad))
        wb = int(order[0])
        kpi.update(
            vm_min_pu=float(vm[i_min]),
            vm_min_bus=int(bus_lv[i_min[1]]),
            vm_min_step=int(result.steps[i_min[0]]) if len(result.steps) == n_t else int(i_min[0]),
            vm_max_pu=float(vm[i_max]),
            vm_max_bus=int(bus_lv[i_max[1]]),
            voltage_n_bus_weeks=int(comp["compliant"].size),
            voltage_bus_weeks_compliant_share=float(comp["compliant"].mean()),
            voltage_buses_compliant_share=float(per_bus_ok.mean()),
            voltage_all_compliant=bool(per_bus_ok.all()),
            voltage_worst_bus=int(bus_lv[wb]),
            voltage_worst_bus_weeks_noncompliant=int(n_bad[wb]),
            voltage_worst_bus_min_week_share_in_band_pct=float(100.0 * per_bus_worst_share[wb]),
            voltage_hours_outside_10pct_h=float(
                ((vm < BAND_95_PU[0]) | (vm > BAND_95_PU[1])).any(axis=1).sum() * dt_h
            ),
        )

    # losses
    losses_kwh = float(result.losses_kw.sum() * dt_h)
    kpi.update(
        losses_kwh=losses_kwh,
        losses_pct_of_trafo_energy=float(100.0 * losses_kwh / through_kwh)
        if through_kwh and np.isfinite(through_kwh)
        else float("nan"),
        losses_peak_kw=float(result.losses_kw.max()) if n_t else 0.0,
    )
    return kpi


# ----------------------------------------------------------------------------------------------
# unbalanced (three-phase) results
# ----------------------------------------------------------------------------------------------

#: Voltage unbalance limit (negative / positive sequence) for 95 % of the 10-min values of a
#: week, % (Dutch Netcode elektriciteit / EN 50160, LV).
VUF_LIMIT_PCT = 2.0
_A = np.exp(2j * np.pi / 3)


def voltage_unbalance_factor(u_pu: np.ndarray) -> np.ndarray:
    """Voltage unbalance factor ``|U2| / |U1|`` in %, from phase voltage phasors.

    Parameters
    ----------
    u_pu : np.ndarray
        ``(..., 3)`` complex phase-to-earth voltages of phases a, b, c (b lagging a), e.g.
        :attr:`twin.grid.asymmetric.AsymPowerFlowResult.u_pu`.

    Returns
    -------
    np.ndarray
        ``(...)`` VUF, %. ``U1 = (Ua + a Ub + a^2 Uc) / 3``, ``U2 = (Ua + a^2 Ub + a Uc) / 3``
        with ``a = exp(j 120 deg)``. The zero sequence does not enter, so this equals the
        negative-/positive-sequence ratio of the line-to-line voltages that EN 50160 defines.
        NaN where the bus is not energised.
    """
    u = np.asarray(u_pu)
    if u.shape[-1] != 3:
        raise ValueError(f"u_pu must have 3 phases on its last axis, got shape {u.shape}")
    u1 = (u[..., 0] + _A * u[..., 1] + _A**2 * u[..., 2]) / 3.0
    u2 = (u[..., 0] + _A**2 * u[..., 1] + _A * u[..., 2]) / 3.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * np.abs(u2) / np.abs(u1)


def unbalance_compliance(
    vuf_pct: np.ndarray,
    dt_h: float = 0.25,
    limit_pct: float = VUF_LIMIT_PCT,
    share_required: float = 0.95,
) -> dict[str, np.ndarray]:
    """Netcode / EN 50160 unbalance compliance per bus and week.

    Each 15-minute step stands in for the 10-minute values inside it (as for the voltage,
    see the module docstring); weeks as in :func:`week_of_step`.

    Parameters
    ----------
    vuf_pct : np.ndarray
        ``(T, n_bus)`` voltage unbalance factor, % (NaN columns are ignored).
    dt_h, limit_pct, share_required :
        Step length (h), the limit (2 %) and the share of a week's values that must respect
        it (95 %).

    Returns
    -------
    dict
        ``share_within`` ``(n_week, n_bus)`` share of steps with VUF <= limit;
        ``p95_pct`` ``(n_week, n_bus)`` the week's 95th percentile of the VUF (nearest rank,
        so ``p95_pct <= limit`` exactly where the week complies);
        ``compliant`` ``(n_week, n_bus)`` bool (False for NaN buses); ``valid_bus``.
    """
    vuf = np.asarray(vuf_pct, dtype=float)
    if vuf.ndim != 2 or vuf.shape[0] == 0:
        raise ValueError(f"vuf_pct must be (T, n_bus) with T >= 1, got shape {vuf.shape}")
    week = week_of_step(vuf.shape[0], dt_h)
    valid = np.isfinite(vuf).all(axis=0)
    starts = np.flatnonzero(np.r_[True, np.diff(week) != 0])
    ends = np.r_[starts[1:], len(week)]
    within = np.add.reduceat(vuf <= limit_pct, starts, axis=0, dtype=np.int64)
    share = within / (ends - starts)[:, None]
    # nearest rank: the smallest value that 95 % of the week's values do not exceed, so
    # p95 <= limit exactly when the week complies
    p95 = np.stack(
        [
            np.percentile(vuf[a:b], 100 * share_required, axis=0, method="inverted_cdf")
            for a, b in zip(starts, ends, strict=True)
        ]
    )
    compliant = (share >= share_required - 1e-12) & valid[None, :]
    return {"share_within": share, "p95_pct": p95, "compliant": compliant, "valid_bus": valid}


def _vuf_of(vm_pu: np.ndarray, va_degree: np.ndarray, cols: np.ndarray, chunk: int = 2048):
    """``(T, len(cols))`` VUF, %, of the buses at ``cols``, a block of steps at a time (the
    phasors of a year of a large feeder never exist at once); the results' precision."""
    n_t = vm_pu.shape[0]
    out = np.empty((n_t, len(cols)), dtype=vm_pu.dtype)
    cplx = np.complex64 if vm_pu.dtype == np.float32 else np.complex128
    for s0 in range(0, n_t, chunk):
        vm = vm_pu[s0 : s0 + chunk, cols]
        va = np.deg2rad(va_degree[s0 : s0 + chunk, cols])
        u = (vm * np.cos(va) + 1j * (vm * np.sin(va))).astype(cplx, copy=False)
        out[s0 : s0 + chunk] = voltage_unbalance_factor(u)
    return out


def asym_grid_kpis(result, net: pandapowerNet, dt_h: float = 0.25) -> dict:
    """Flat, JSON-able dict of the unbalance KPIs of an unbalanced power-flow result.

    Parameters
    ----------
    result : twin.grid.asymmetric.AsymPowerFlowResult
        Unbalanced AC power flow over the run's steps.
    net : pandapowerNet
        The feeder (voltage levels, names).
    dt_h : float
        Step length, hours.

    Returns
    -------
    dict
        Voltage unbalance over the energised LV buses (< 1 kV): ``vuf_max_pct`` (and its bus
        and step), ``vuf_p95_max_pct`` (largest weekly 95th percentile of any bus),
        ``unbalance_bus_weeks_compliant_share``, ``unbalance_buses_compliant_share``,
        ``unbalance_all_compliant``; phase voltages: ``vm_min_pu``/``vm_max_pu`` with bus and
        phase, ``voltage_buses_compliant_share`` (every phase of a bus must comply);
        cables: ``line_max_loading_pct`` of the worst phase with its line and phase,
        ``line_phase_loading_spread_max_pct`` (largest difference between the most and least
        loaded phase of a cable), ``line_residual_current_max_a`` (neutral current if all of
        the residual returns through the neutral) with its line; transformer:
        ``trafo_max_phase_loading_pct`` and its phase, ``trafo_residual_current_max_a``.
    """
    from twin.grid.asymmetric import PHASES

    kpi: dict = {"n_steps": int(result.n_steps), "dt_h": float(dt_h)}
    step_of = result.steps if len(result.steps) == result.n_steps else np.arange(result.n_steps)
    vn = net.bus.loc[result.bus_index, "vn_kv"].to_numpy(float)
    lv = vn < 1.0
    ok = lv & np.isfinite(result.vm_pu).all(axis=(0, 2))
    cols = np.flatnonzero(ok)
    vm = result.vm_pu[:, cols]
    bus_lv = result.bus_index[cols]
    if vm.shape[1]:
        vuf = _vuf_of(result.vm_pu, result.va_degree, cols)
        i_max = np.unravel_index(np.argmax(vuf), vuf.shape)
        comp = unbalance_compliance(vuf, dt_h)
        vcomp = voltage_compliance(vm.reshape(vm.shape[0], -1), dt_h)
        bus_ok_v = vcomp["compliant"].all(axis=0).reshape(-1, 3).all(axis=1)
        i_lo = np.unravel_index(np.argmin(vm), vm.shape)
        i_hi = np.unravel_index(np.argmax(vm), vm.shape)
        kpi.update(
            vuf_max_pct=float(vuf[i_max]),
            vuf_max_bus=int(bus_lv[i_max[1]]),
            vuf_max_step=int(step_of[i_max[0]]),
            vuf_p95_max_pct=float(comp["p95_pct"].max()),
            unbalance_bus_weeks_compliant_share=float(comp["compliant"].mean()),
            unbalance_buses_compliant_share=float(comp["compliant"].all(axis=0).mean()),
            unbalance_all_compliant=bool(comp["compliant"].all()),
            vm_min_pu=float(vm[i_lo]),
            vm_min_bus=int(bus_lv[i_lo[1]]),
            vm_min_phase=PHASES[int(i_lo[2])],
            vm_max_pu=float(vm[i_hi]),
            vm_max_bus=int(bus_lv[i_hi[1]]),
            vm_max_phase=PHASES[int(i_hi[2])],
            voltage_buses_compliant_share=float(bus_ok_v.mean()),
        )
    if result.line_i_ka.shape[1]:
        ll = result.line_loading_pct  # once: (T, n_line, 3)
        i_w = np.unravel_index(np.nanargmax(ll), ll.shape)
        i_n = np.unravel_index(np.argmax(result.line_i_n_ka), result.line_i_n_ka.shape)
        kpi.update(
            line_max_loading_pct=float(ll[i_w]),
            line_worst=int(result.line_index[i_w[1]]),
            line_worst_phase=PHASES[int(i_w[2])],
            line_worst_step=int(step_of[i_w[0]]),
            line_phase_loading_spread_max_pct=float(np.nanmax(ll.max(-1) - ll.min(-1))),
            lines_n_overloaded=int((ll.max(axis=(0, 2)) > 100.0).sum()),
            line_residual_current_max_a=float(result.line_i_n_ka[i_n] * 1e3),
            line_residual_current_max_line=int(result.line_index[i_n[1]]),
        )
    if result.trafo_s_kva.shape[1]:
        tl = result.trafo_loading_pct
        i_t = np.unravel_index(np.argmax(tl), tl.shape)
        kpi.update(
            trafo_max_phase_loading_pct=float(tl[i_t]),
            trafo_worst_phase=PHASES[int(i_t[2])],
            trafo_worst_step=int(step_of[i_t[0]]),
            trafo_phase_loading_spread_max_pct=float((tl.max(-1) - tl.min(-1)).max()),
            trafo_residual_current_max_a=float(np.nanmax(result.trafo_i_n_ka) * 1e3),
        )
    return kpi


#: Keys of :func:`asym_grid_kpis` that name a quantity the balanced KPIs also have: in a run's
#: KPIs they carry the prefix ``phase_`` (:func:`asym_run_kpis`).
_SHARED_WITH_BALANCED = (
    "vm_min_pu",
    "vm_min_bus",
    "vm_min_phase",
    "vm_max_pu",
    "vm_max_bus",
    "vm_max_phase",
    "voltage_buses_compliant_share",
    "line_max_loading_pct",
    "line_worst",
    "line_worst_phase",
    "line_worst_step",
    "lines_n_overloaded",
)


def asym_run_kpis(result, net: pandapowerNet, dt_h: float = 0.25) -> dict:
    """:func:`asym_grid_kpis` named for a run's KPIs beside the balanced :func:`grid_kpis`.

    ``grid_unbalanced`` is True; the unbalance KPIs keep their names (``vuf_max_pct``,
    ``vuf_p95_max_pct``, ``unbalance_*``, ``line_phase_loading_spread_max_pct``,
    ``line_residual_current_max_a``, ``trafo_max_phase_loading_pct``, ``trafo_worst_phase``,
    ``trafo_residual_current_max_a``, ...); the per-phase counterparts of balanced KPIs get
    the prefix ``phase_`` (``phase_vm_min_pu``, ``phase_line_max_loading_pct`` of the worst
    phase, ``phase_line_worst_phase``, ``phase_lines_n_overloaded``, ...).
    """
    raw = asym_grid_kpis(result, net, dt_h)
    out: dict = {"grid_unbalanced": True}
    for k, v in raw.items():
        if k in ("n_steps", "dt_h"):
            continue
        out[f"phase_{k}" if k in _SHARED_WITH_BALANCED else k] = v
    return out
