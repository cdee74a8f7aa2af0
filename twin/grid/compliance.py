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
    "cable_kpis",
    "grid_kpis",
    "Station",
    "loading_duration_curve",
    "station_of",
    "voltage_compliance",
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

    @property
    def loading_pct(self) -> np.ndarray:
        """``(T,)`` power-based loading, % of the station rating."""
        return 100.0 * self.s_kva / self.rating_kva


def station_of(result: PowerFlowResult, net: pandapowerNet) -> Station:
    """The station's series in ``result`` (the feeder's transformers together)."""
    in_station = station_mask(net)[net.trafo.index.get_indexer(result.trafo_index)]
    cols = np.flatnonzero(in_station)
    return Station(
        rating_kva=station_rating_kva(net),
        s_kva=result.trafo_s_kva[:, cols].sum(axis=1),
        p_kw=result.trafo_p_kw[:, cols].sum(axis=1),
        units=cols,
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
    share = np.add.reduceat(in95.astype(float), starts, axis=0) / counts[:, None]
    n_out_all = np.add.reduceat((~inall).astype(float), starts, axis=0)
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
