"""Building (1R1C) and air/water heat pump.

Building: one thermal mass ``c_kwh_per_k`` behind one resistance ``r_k_per_kw`` to outdoor air,

    C dT/dt = (T_out - T) / R + Q_heat + Q_gain.

With inputs held constant over a step of ``dt_h`` the exact solution is

    T(t+dt) = T_eq + (T(t) - T_eq) * a,   a = exp(-dt / (R C)),   T_eq = T_out + R (Q_heat + Q_gain),

which is what :func:`step_temperature` computes (no Euler error, stable for any step).

Heat pump: COP from the hplib "Generic" regulated air/water regression (hplib database),
COP = 7.045 + 0.154 T_amb - 0.0876 T_flow (A2/W35 ≈ 4.3, A-7/W35 ≈ 2.9), floored at 1.5; the
flow temperature follows a linear heating curve from ``T_setpoint`` at ``T_out = T_setpoint`` to
the design flow temperature at the design outdoor temperature.
"""

from __future__ import annotations

import numpy as np

COP_A = 7.045
COP_B_AMB = 0.154
COP_C_FLOW = 0.0876
COP_MIN = 1.5
FLOW_TEMP_MIN_C = 25.0


def decay_factor(r_k_per_kw: np.ndarray, c_kwh_per_k: np.ndarray, dt_h: float) -> np.ndarray:
    """``a = exp(-dt / (R C))`` of the exact 1R1C discretisation."""
    return np.exp(-dt_h / (r_k_per_kw * c_kwh_per_k))


def step_temperature(
    t_in_c: np.ndarray,
    t_out_c: np.ndarray | float,
    q_heat_kw: np.ndarray,
    q_gain_kw: np.ndarray,
    r_k_per_kw: np.ndarray,
    a: np.ndarray,
) -> np.ndarray:
    """Indoor temperature after one step with constant heat input (exact solution)."""
    t_eq = t_out_c + r_k_per_kw * (q_heat_kw + q_gain_kw)
    return t_eq + (t_in_c - t_eq) * a


def heat_to_reach(
    t_target_c: np.ndarray,
    t_in_c: np.ndarray,
    t_out_c: np.ndarray | float,
    q_gain_kw: np.ndarray,
    r_k_per_kw: np.ndarray,
    a: np.ndarray,
) -> np.ndarray:
    """Heat input (kW, unclipped) that brings ``t_in_c`` exactly to ``t_target_c`` in one step."""
    return (t_target_c - a * t_in_c - (1.0 - a) * t_out_c) / (r_k_per_kw * (1.0 - a)) - q_gain_kw


def mean_temperature(
    t_in_c: np.ndarray,
    t_out_c: np.ndarray | float,
    q_heat_kw: np.ndarray,
    q_gain_kw: np.ndarray,
    r_k_per_kw: np.ndarray,
    a: np.ndarray,
) -> np.ndarray:
    """Exact time-average of the indoor temperature over the step (for energy balances)."""
    t_eq = t_out_c + r_k_per_kw * (q_heat_kw + q_gain_kw)
    # ∫ (T - T_eq) dt / dt = (T0 - T_eq) * tau (1 - a) / dt, with tau / dt = -1 / ln a
    return t_eq + (t_in_c - t_eq) * (1.0 - a) / -np.log(a)


def flow_temperature_c(
    t_out_c: np.ndarray | float,
    flow_design_c: np.ndarray,
    setpoint_c: np.ndarray,
    design_outdoor_c: float,
) -> np.ndarray:
    """Heating-curve flow temperature, clipped to [25 °C, design flow temperature]."""
    frac = (setpoint_c - t_out_c) / (setpoint_c - design_outdoor_c)
    flow = setpoint_c + (flow_design_c - setpoint_c) * frac
    return np.clip(flow, FLOW_TEMP_MIN_C, flow_design_c)


def cop(t_out_c: np.ndarray | float, t_flow_c: np.ndarray) -> np.ndarray:
    """Coefficient of performance of a generic air/water heat pump (hplib regression)."""
    return np.maximum(COP_A + COP_B_AMB * np.asarray(t_out_c) - COP_C_FLOW * t_flow_c, COP_MIN)
