"""What each headline KPI means on screen: one label and one unit per KPI key, in one place.

The KPI table of a run (``twin``), the comparison study's tables, ``twin-report`` and the
hosting study pick their rows from :data:`KPI_INFO` by key, so a label or a unit is written
once. The keys themselves are defined where they are computed (:mod:`twin.kpi`,
:mod:`twin.grid.compliance`, :mod:`twin.tariffs`, the contracts); names carry their units.
The limits a run is checked against live with the writer (:func:`twin.writer.limits`, which
needs the grid's voltage band); :func:`objective_value` turns ``objective=<kpi>`` into the
float a Hydra sweeper optimises.
"""

from __future__ import annotations

__all__ = [
    "COMPARE",
    "KPI_INFO",
    "REPORT",
    "RUN_TABLE",
    "SUMMARY_EXTRA",
    "label",
    "objective_value",
    "unit",
]

#: KPI key -> (label, unit).
KPI_INFO: dict[str, tuple[str, str]] = {
    "trafo_peak_kva": ("transformer peak", "kVA"),
    "trafo_peak_loading_pct": ("transformer peak", "% of rating"),
    "coincident_peak_per_household_kw": ("coincident peak per household", "kW"),
    "trafo_hours_over_100pct_h": ("hours above 100 % (transformer)", "h"),
    "trafo_peak_import_kw": ("transformer peak import", "kW"),
    "trafo_peak_export_kw": ("transformer peak export", "kW"),
    "line_max_loading_pct": ("max cable loading", "%"),
    "technical_risk_events": ("technical risk: overload events", "count"),
    "technical_risk_hours": ("technical risk: hours overloaded", "h"),
    "technical_risk_kwh": ("technical risk: energy above rating", "kVAh"),
    "technical_risk_worst_pct": ("technical risk: worst loading", "% of rating"),
    "financial_risk_kwh": ("financial risk: flexibility not needed", "kWh"),
    "financial_risk_eur": ("financial risk: its cost", "€"),
    "forecast_trafo_rmae": ("forecast: feeder load rMAE", "share"),
    "forecast_trafo_above_p90_share": ("forecast: outcomes above p90", "share"),
    "forecast_pv_mape_4h": ("forecast: PV MAPE 4 h ahead", "share"),
    "lines_n_overloaded": ("cables ever above 100 %", "count"),
    "vm_min_pu": ("min voltage", "p.u."),
    "vm_max_pu": ("max voltage", "p.u."),
    "voltage_bus_weeks_compliant_share": ("bus-weeks compliant (EN 50160)", "share"),
    "voltage_hours_outside_10pct_h": ("hours with a bus outside ±10 %", "h"),
    # unbalanced runs (grid.unbalanced): the same limits judged per phase
    "trafo_max_phase_loading_pct": ("transformer peak, worst phase", "% of rating"),
    "phase_line_max_loading_pct": ("max cable loading, worst phase", "%"),
    "phase_vm_min_pu": ("min voltage, worst phase", "p.u."),
    "phase_vm_max_pu": ("max voltage, worst phase", "p.u."),
    "phase_voltage_buses_compliant_share": ("buses compliant, every phase", "share"),
    "vuf_p95_max_pct": ("voltage unbalance, p95 (worst bus-week)", "%"),
    "unbalance_bus_weeks_compliant_share": ("bus-weeks within 2 % unbalance", "share"),
    "losses_kwh": ("network losses", "kWh"),
    "energy_base_kwh": ("energy: household appliances", "kWh"),
    "energy_heat_pump_kwh": ("energy: heat pumps", "kWh"),
    "energy_ev_home_kwh": ("energy: EV home charging", "kWh"),
    "energy_pv_kwh": ("energy: PV production", "kWh"),
    "energy_import_kwh": ("energy imported", "kWh"),
    "heat_pump_kwh_per_all_electric": ("energy per all-electric heat pump", "kWh"),
    "ev_kwh_per_ev": ("energy per EV (home charging)", "kWh"),
    "heat_from_boilers_kwh": ("hybrids' boiler heat", "kWh"),
    "comfort_kelvin_hours_total": ("comfort: K·h outside the band (all)", "K·h"),
    "comfort_kelvin_hours_worst_household": ("comfort: K·h, worst household", "K·h"),
    "comfort_days_met_share": ("comfort: household-days met", "share"),
    "ev_shortfall_kwh_total": ("EV: energy short at deadline", "kWh"),
    "ev_days_met_share": ("EV: household-days met", "share"),
    "dhw_days_met_share": ("hot water: household-days met", "share"),
    "dhw_shortfall_kwh_total": ("hot water: heat short at the taps", "kWh"),
    "heat_pump_seasonal_cop_all_electric": ("seasonal COP, all-electric (space + water)", "–"),
    "energy_hot_water_kwh": ("energy: hot water", "kWh"),
    "energy_v2g_discharge_kwh": ("energy: V2G discharge", "kWh"),
    "bill_mean_eur": ("household cost, mean", "€"),
    "bill_median_eur": ("household cost, median", "€"),
    "bill_worst_decile_eur": ("household cost, worst decile", "€"),
    "dso_revenue_eur": ("DSO revenue", "€"),
    "run_s": ("run time", "s"),
}

#: The terminal KPI table of one run, in order.
RUN_TABLE: tuple[str, ...] = (
    "trafo_peak_kva",
    "trafo_peak_loading_pct",
    "coincident_peak_per_household_kw",
    "trafo_hours_over_100pct_h",
    "line_max_loading_pct",
    "lines_n_overloaded",
    "vm_min_pu",
    "vm_max_pu",
    "voltage_bus_weeks_compliant_share",
    "trafo_max_phase_loading_pct",
    "phase_line_max_loading_pct",
    "phase_vm_min_pu",
    "phase_vm_max_pu",
    "phase_voltage_buses_compliant_share",
    "vuf_p95_max_pct",
    "unbalance_bus_weeks_compliant_share",
    "losses_kwh",
    "energy_base_kwh",
    "energy_heat_pump_kwh",
    "energy_ev_home_kwh",
    "energy_pv_kwh",
    "heat_pump_kwh_per_all_electric",
    "ev_kwh_per_ev",
    "comfort_kelvin_hours_total",
    "comfort_kelvin_hours_worst_household",
    "comfort_days_met_share",
    "ev_shortfall_kwh_total",
    "ev_days_met_share",
    "dhw_days_met_share",
    "dhw_shortfall_kwh_total",
    "technical_risk_events",
    "technical_risk_kwh",
    "financial_risk_kwh",
    "forecast_trafo_rmae",
    "forecast_trafo_above_p90_share",
    "forecast_pv_mape_4h",
)

#: The comparison study's table, in order.
COMPARE: tuple[str, ...] = (
    "coincident_peak_per_household_kw",
    "trafo_peak_loading_pct",
    "trafo_hours_over_100pct_h",
    "line_max_loading_pct",
    "technical_risk_events",
    "technical_risk_kwh",
    "vm_min_pu",
    "comfort_days_met_share",
    "comfort_kelvin_hours_total",
    "ev_days_met_share",
    "ev_shortfall_kwh_total",
    "dhw_days_met_share",
    "bill_mean_eur",
    "bill_median_eur",
    "bill_worst_decile_eur",
    "dso_revenue_eur",
    "energy_import_kwh",
    "heat_from_boilers_kwh",
    "run_s",
)

#: The columns ``twin-report`` shows for every run of a sweep.
REPORT: tuple[str, ...] = (
    "coincident_peak_per_household_kw",
    "trafo_peak_loading_pct",
    "trafo_hours_over_100pct_h",
    "line_max_loading_pct",
    "vm_min_pu",
    "comfort_days_met_share",
    "ev_days_met_share",
    "technical_risk_events",
    "technical_risk_kwh",
)


#: The terminal and summary KPI tables' extra rows in ``summary.md`` (after :data:`RUN_TABLE`).
SUMMARY_EXTRA: tuple[str, ...] = (
    "trafo_peak_import_kw",
    "trafo_peak_export_kw",
    "voltage_hours_outside_10pct_h",
    "bill_mean_eur",
    "bill_worst_decile_eur",
)


def label(key: str) -> str:
    return KPI_INFO[key][0]


def unit(key: str) -> str:
    return KPI_INFO[key][1]


def objective_value(kpis: dict, objective: str) -> float:
    """The value a run returns for ``objective=<kpi>`` (``-<kpi>``: negated; ``+<kpi>``: as
    is), for Hydra sweepers that optimise (optuna minimises by default).

    Raises :class:`twin.errors.TwinError` (one line) when ``kpi`` is not a numeric KPI of the
    run.
    """
    import difflib
    import math

    from twin.errors import TwinError

    text = str(objective).strip()
    sign = -1.0 if text.startswith("-") else 1.0
    name = text.lstrip("+-").strip()
    value = kpis.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        numeric = sorted(
            k for k, v in kpis.items() if isinstance(v, int | float) and not isinstance(v, bool)
        )
        near = difflib.get_close_matches(name, numeric, n=1)
        hint = f"did you mean {near[0]}?" if near else "use a numeric key of the run's kpis.json"
        what = "is not a KPI of this run" if value is None else "is not a number"
        raise TwinError(f"objective={objective!r}: {name!r} {what}: {hint}")
    out = sign * float(value)
    if not math.isfinite(out):
        raise TwinError(f"objective={objective!r}: the run's {name} is {value}: not a number")
    return out
