"""``twin``: the Hydra command line. Compose the config, run, write the results, print KPIs.

    twin                                  # the embedded default (configs/config.yaml)
    twin sim.days=1 seed=7                # overrides
    twin -m seed=1,2,3 hydra/launcher=joblib   # a sweep

Errors in the input print one line (``twin: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from twin.config import CONFIG_DIR
from twin.errors import TwinError

log = logging.getLogger("twin")

KPI_TABLE = (
    ("trafo_peak_kva", "transformer peak", "kVA"),
    ("trafo_peak_loading_pct", "transformer peak", "% of rating"),
    ("coincident_peak_per_household_kw", "coincident peak per household", "kW"),
    ("trafo_hours_over_100pct_h", "hours above 100 % (transformer)", "h"),
    ("line_max_loading_pct", "max cable loading", "%"),
    ("lines_n_overloaded", "cables ever above 100 %", "count"),
    ("vm_min_pu", "min voltage", "p.u."),
    ("vm_max_pu", "max voltage", "p.u."),
    ("voltage_bus_weeks_compliant_share", "bus-weeks compliant (EN 50160)", "share"),
    ("losses_kwh", "network losses", "kWh"),
    ("energy_base_kwh", "energy: household appliances", "kWh"),
    ("energy_heat_pump_kwh", "energy: heat pumps", "kWh"),
    ("energy_ev_home_kwh", "energy: EV home charging", "kWh"),
    ("energy_pv_kwh", "energy: PV production", "kWh"),
    ("heat_pump_kwh_per_all_electric", "energy per all-electric heat pump", "kWh"),
    ("ev_kwh_per_ev", "energy per EV (home charging)", "kWh"),
    ("comfort_kelvin_hours_total", "comfort: K·h below band (all)", "K·h"),
    ("comfort_kelvin_hours_worst_household", "comfort: K·h, worst household", "K·h"),
    ("comfort_days_met_share", "comfort: household-days met", "share"),
    ("ev_shortfall_kwh_total", "EV: energy short at deadline", "kWh"),
    ("ev_days_met_share", "EV: household-days met", "share"),
)


def format_kpi_table(kpis: dict[str, Any]) -> str:
    """The terminal KPI table (also used in the README)."""
    rows = [(label, unit, kpis[key]) for key, label, unit in KPI_TABLE if key in kpis]
    width = max(len(r[0]) for r in rows)
    uwidth = max(len(r[1]) for r in rows)
    head = (
        f"{kpis.get('grid')} | {kpis.get('scenario')} | contract {kpis.get('contract')} | "
        f"{kpis.get('start')} + {kpis.get('days')} d | {kpis.get('households')} households | seed {kpis.get('seed')}"
    )
    lines = [head, "-" * len(head)]
    for label, unit, value in rows:
        text = f"{value:,.3f}" if isinstance(value, float) and abs(value) < 10 else (
            f"{value:,.1f}" if isinstance(value, float) else str(value)
        )
        lines.append(f"{label:<{width}}  {text:>12}  {unit:<{uwidth}}")
    return "\n".join(lines)


def _output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def _app(cfg: DictConfig) -> dict[str, Any] | None:
    from twin.run import run

    out_dir = _output_dir()
    t0 = time.perf_counter()
    try:
        result = run(cfg)
    except TwinError as err:
        print(f"twin: error: {err}", file=sys.stderr)
        sys.exit(2)
    result.timings_s["total_run"] = time.perf_counter() - t0
    result.write(out_dir)
    print(format_kpi_table(result.kpis))
    print(f"results: {out_dir}")
    return result.kpis


def main() -> None:
    """Console-script entry point."""
    _app()


if __name__ == "__main__":
    main()
