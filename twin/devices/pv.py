"""Rooftop PV from global horizontal irradiance.

``p_kw = kwp * ghi / 1000 * yield_factor``; the yield factor (performance ratio × tilt gain,
scenario field ``pv.yield_factor``) is calibrated so a kWp yields ~935 kWh a year in a Dutch
normal year.
"""

from __future__ import annotations

import numpy as np

STC_IRRADIANCE_W_M2 = 1000.0


def pv_power_kw(
    ghi_w_m2: np.ndarray, kwp: np.ndarray, yield_factor: float | np.ndarray
) -> np.ndarray:
    """PV output (kW, >= 0) for irradiance (T,) and installed peak power (H,) -> (T, H)."""
    return np.outer(np.clip(ghi_w_m2, 0.0, None) / STC_IRRADIANCE_W_M2, kwp * yield_factor)
