"""Home battery: power and energy limits, charge and discharge efficiency.

State ``soc_kwh`` in [soc_min_kwh, capacity_kwh]. A requested power ``p_req_kw`` (positive =
charging from the house/grid side) is clipped to the power rating and to what the state of
charge allows; the stored energy changes by ``eta * p_charge * dt - p_discharge / eta * dt``
with ``eta = sqrt(roundtrip_efficiency)``.
"""

from __future__ import annotations

import numpy as np


def _clip(x, lo, hi):
    """``np.clip`` without its dispatch overhead (the same result: ``min(max(x, lo), hi)``)."""
    if hi is None:
        return np.maximum(x, lo)
    return np.minimum(np.maximum(x, lo), hi)


def battery_step(
    soc_kwh: np.ndarray,
    p_req_kw: np.ndarray,
    capacity_kwh: np.ndarray,
    p_max_kw: np.ndarray,
    eta: np.ndarray,
    dt_h: float,
    soc_min_kwh: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one step. Returns ``(p_kw, new_soc_kwh)``; ``p_kw`` is what actually flows."""
    headroom_kw = (capacity_kwh - soc_kwh) / (eta * dt_h)
    available_kw = np.maximum(soc_kwh - soc_min_kwh, 0.0) * eta / dt_h
    p_charge = _clip(p_req_kw, 0.0, np.minimum(p_max_kw, headroom_kw))
    p_discharge = _clip(-p_req_kw, 0.0, np.minimum(p_max_kw, available_kw))
    new_soc = soc_kwh + (eta * p_charge - p_discharge / eta) * dt_h
    new_soc = _clip(new_soc, 0.0, capacity_kwh)  # round-off only
    return p_charge - p_discharge, new_soc


def self_consumption_request(residual_kw: np.ndarray) -> np.ndarray:
    """Battery request that cancels the rest of the house's net load (charge on PV surplus)."""
    return -residual_kw
