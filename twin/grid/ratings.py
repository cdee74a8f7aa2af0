"""Ratings of a feeder's equipment: one place, used by the power flow, the linear model, the
KPIs, the figures and the contracts.

* **Transformer unit**: ``sn_mva * 1000 * parallel * df`` kVA per ``net.trafo`` row (pandapower's
  ``parallel`` counts identical units in one row, ``df`` derates them).
* **Station**: every in-service MV/LV transformer of the feeder (HV side at or above 1 kV, LV
  side below it) together. Parallel transformers feed one LV feeder as one station: its
  rating is the sum of the units' ratings, its load the sum of their apparent powers (equal
  to the magnitude of the summed power when the units share the load in phase, as parallel
  units between the same buses do). An LV feeder has one station; twin plans against and
  reports on the station.
* **Line**: current based; ``max_i_ka * df * parallel`` kA, or as apparent power at nominal
  voltage ``sqrt(3) * vn_kv * max_i_ka * df * parallel * 1000`` kVA (``vn_kv`` of the line's
  ``from_bus``).
"""

from __future__ import annotations

import numpy as np
from pandapower.auxiliary import pandapowerNet

__all__ = [
    "LV_KV_MAX",
    "line_ampacity_ka",
    "line_rating_kva",
    "station_mask",
    "station_rating_kva",
    "trafo_unit_rating_kva",
]

#: Buses below this nominal voltage (kV) are low voltage.
LV_KV_MAX = 1.0


def trafo_unit_rating_kva(net: pandapowerNet) -> np.ndarray:
    """Rating of every ``net.trafo`` row (all its parallel units, derated), kVA."""
    t = net.trafo
    return (
        t["sn_mva"].to_numpy(float) * 1e3 * t["parallel"].to_numpy(float) * t["df"].to_numpy(float)
    )


def station_mask(net: pandapowerNet) -> np.ndarray:
    """``(n_trafo,)`` the in-service MV/LV transformers that make up the feeder's station."""
    t = net.trafo
    hv = net.bus.loc[t["hv_bus"].to_numpy(), "vn_kv"].to_numpy(float)
    lv = net.bus.loc[t["lv_bus"].to_numpy(), "vn_kv"].to_numpy(float)
    return t["in_service"].astype(bool).to_numpy() & (hv >= LV_KV_MAX) & (lv < LV_KV_MAX)


def station_rating_kva(net: pandapowerNet) -> float:
    """The station's rating: the sum of its transformers' ratings, kVA (inf without one)."""
    mask = station_mask(net)
    return float(trafo_unit_rating_kva(net)[mask].sum()) if mask.any() else float("inf")


def line_ampacity_ka(net: pandapowerNet) -> np.ndarray:
    """Current rating of every ``net.line`` row, kA (``max_i_ka * df * parallel``)."""
    line = net.line
    return (
        line["max_i_ka"].to_numpy(float)
        * line["df"].to_numpy(float)
        * line["parallel"].to_numpy(float)
    )


def line_rating_kva(net: pandapowerNet) -> np.ndarray:
    """Apparent-power rating of every ``net.line`` row at nominal voltage, kVA."""
    vn_kv = net.bus.loc[net.line["from_bus"].to_numpy(), "vn_kv"].to_numpy(float)
    return np.sqrt(3.0) * vn_kv * line_ampacity_ka(net) * 1e3
