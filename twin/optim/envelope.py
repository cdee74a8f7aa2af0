"""Flexibility envelopes: what a household's HEMS tells the DSO in envelope mode.

A :class:`FlexibilityEnvelope` gives, per household and period, the minimum and maximum
controllable load (kW) and bounds on the cumulative controllable energy since the start of the
horizon (kWh) — and nothing else: no temperatures, no states of charge, no device list. The
HEMS computes it from its private device models (:func:`household_envelopes`); the DSO
allocates on it (:class:`twin.optim.allocation.EnvelopeAllocation`).

A household's envelope is the sum of its devices' envelopes:

* **EV**: exact. Power in ``[0, p_max * home]``; with the cumulative charged energy ``E``,
  ``soc = soc0 + eta E - trips``, so ``soc_min <= soc <= capacity`` are bounds on ``E``,
  tightened to what the power limits can reach.
* **Heat pump**: an approximation. Electric power in ``[0, q_max / cop]``; ``E`` between the
  "lazy" schedule (heat only to stay at the comfort floor) and the "eager" one (heat at once to
  the pre-heat ceiling). Heat losses and the COP vary over time, so an allocation inside these
  bounds can leave the house a little colder than the floor it was computed for: the bounds are
  computed for a band narrowed by ``margin_k`` on each side. A hybrid's HEMS offers its heat
  pump like an all-electric one (the boiler covers what the heat pump cannot): offering the
  boiler as flexibility would let the DSO, which knows nothing of gas, turn it into gas
  heating.
* **Battery**: power in ``[-p_max, p_max]``; energy from empty to full, counted as lossless
  but with a reserve ``(1/eta - eta) * capacity * reserve_cycles`` kept back for conversion
  losses.
* **Hot-water tank**: electric power in ``[0, q_max / cop_dhw]``; ``E`` between the "lazy"
  schedule (charge only what keeps the tank at its floor under the expected draws) and the
  "eager" one (charge at once to full); like the heat pump's, an approximation (the COP and
  the draws vary). The heat pump's and the tank's power bounds are added although they share
  one compressor: an allocation neither can follow is answered with a counter-proposal.
* **V2G**: a bidirectional car is offered like a unidirectional one (charging only): the
  envelope's lossless energy cannot express the discharge path's losses and the owner's
  reserve; in envelope mode the HEMS may still discharge inside its band when it plans.

The sum of device envelopes can contain load profiles that the devices together cannot follow
(e.g. the energy an EV needs by 06:00 allocated in the afternoon, to the heat pump, while the car
is away): the envelope format cannot express which device may use which energy. A HEMS whose
plan would exceed its band therefore answers with the profile it can follow
(:func:`fixed_profile`), and the DSO allocates once more; whatever excess remains is measured and
reported (the HEMS keeps its service levels first).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.devices.ev import CHARGE_EFFICIENCY
from twin.optim.devices import COMFORT_TOL_K, DeviceInputs, DeviceSet, thermal_decay
from twin.optim.horizon import Horizon

__all__ = ["FlexibilityEnvelope", "household_envelopes"]


@dataclass(frozen=True)
class FlexibilityEnvelope:
    """Per household (rows) and period: controllable load and cumulative energy bounds.

    Attributes
    ----------
    p_min_kw, p_max_kw : np.ndarray
        ``(n, N)`` controllable load bounds.
    e_min_kwh, e_max_kwh : np.ndarray
        ``(n, N + 1)`` bounds on the controllable energy used since the start of the horizon
        (column 0 is zero).
    """

    p_min_kw: np.ndarray
    p_max_kw: np.ndarray
    e_min_kwh: np.ndarray
    e_max_kwh: np.ndarray

    def __post_init__(self) -> None:
        n, n_per = self.p_min_kw.shape
        for name in ("p_max_kw",):
            if getattr(self, name).shape != (n, n_per):
                raise ValueError(f"{name} must be {(n, n_per)}")
        for name in ("e_min_kwh", "e_max_kwh"):
            if getattr(self, name).shape != (n, n_per + 1):
                raise ValueError(f"{name} must be {(n, n_per + 1)}")


def fixed_profile(
    env: FlexibilityEnvelope, rows: np.ndarray, p_kw: np.ndarray, dt_h: np.ndarray
) -> FlexibilityEnvelope:
    """``env`` with households ``rows`` pinned to the load profile ``p_kw`` ``(len(rows), N)``.

    A HEMS whose devices cannot follow its allocation answers with the profile it can follow
    (a counter-proposal: still only kW per period, no device data).
    """
    p_lo, p_hi = env.p_min_kw.copy(), env.p_max_kw.copy()
    e_lo, e_hi = env.e_min_kwh.copy(), env.e_max_kwh.copy()
    p_lo[rows] = p_hi[rows] = p_kw
    cum = np.concatenate(
        [np.zeros((len(rows), 1)), np.cumsum(p_kw * dt_h[None, :], axis=1)], axis=1
    )
    e_lo[rows] = cum - 1e-6
    e_hi[rows] = cum + 1e-6
    return FlexibilityEnvelope(p_min_kw=p_lo, p_max_kw=p_hi, e_min_kwh=e_lo, e_max_kwh=e_hi)


def _tighten(
    lo: np.ndarray, hi: np.ndarray, p_lo: np.ndarray, p_hi: np.ndarray, dt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Make cumulative bounds consistent with the power bounds (both directions in time)."""
    lo, hi = lo.copy(), hi.copy()
    lo[:, 0] = hi[:, 0] = 0.0
    n_per = p_lo.shape[1]
    for j in range(n_per):  # forward: reachable from the previous state
        hi[:, j + 1] = np.minimum(hi[:, j + 1], hi[:, j] + p_hi[:, j] * dt[j])
        lo[:, j + 1] = np.maximum(lo[:, j + 1], lo[:, j] + p_lo[:, j] * dt[j])
    for j in range(n_per - 1, -1, -1):  # backward: the next state stays reachable
        lo[:, j] = np.maximum(lo[:, j], lo[:, j + 1] - p_hi[:, j] * dt[j])
        hi[:, j] = np.minimum(hi[:, j], hi[:, j + 1] - p_lo[:, j] * dt[j])
    lo[:, 0] = hi[:, 0] = 0.0
    return lo, np.maximum(hi, lo)


def _thermal(
    dev: DeviceSet, inp: DeviceInputs, horizon: Horizon, margin_k: float
) -> tuple[np.ndarray, ...]:
    a_per = thermal_decay(dev, horizon)
    gain = (1.0 - a_per) * dev.r_k_per_kw[:, None] * inp.cop  # K per kW electric
    rhs = inp.th_rhs_k
    p_hi = inp.hp_p_max_kw
    floor = -dev.comfort_band_k + COMFORT_TOL_K + margin_k
    ceil = max(dev.preheat_k - COMFORT_TOL_K - margin_k, floor)
    if np.isfinite(dev.swing_k):  # the swing rule: lazy and eager schedules within one window
        ceil = max(min(ceil, floor + dev.swing_k - 2 * COMFORT_TOL_K - 2 * margin_k), floor)
    n_per = horizon.n_periods
    d_lazy = d_eager = inp.d0_k.copy()
    lo = np.minimum(floor, d_lazy)
    p_lazy = np.empty_like(p_hi)
    p_eager = np.empty_like(p_hi)
    for j in range(n_per):
        lo = np.minimum(
            floor, a_per[:, j] * lo + rhs[:, j] + gain[:, j] * p_hi[:, j]
        )  # reachable floor
        p_lazy[:, j] = np.minimum(
            np.maximum((lo - a_per[:, j] * d_lazy - rhs[:, j]) / gain[:, j], 0.0), p_hi[:, j]
        )
        d_lazy = a_per[:, j] * d_lazy + rhs[:, j] + gain[:, j] * p_lazy[:, j]
        p_eager[:, j] = np.minimum(
            np.maximum((ceil - a_per[:, j] * d_eager - rhs[:, j]) / gain[:, j], p_lazy[:, j]),
            p_hi[:, j],
        )
        d_eager = a_per[:, j] * d_eager + rhs[:, j] + gain[:, j] * p_eager[:, j]
    dt = horizon.dt_h
    zero = np.zeros((dev.n_hp, 1))
    e_lo = np.concatenate([zero, np.cumsum(p_lazy * dt, axis=1)], axis=1)
    e_hi = np.concatenate([zero, np.cumsum(p_eager * dt, axis=1)], axis=1)
    return np.zeros_like(p_hi), p_hi, e_lo, e_hi


def _ev(dev: DeviceSet, inp: DeviceInputs, horizon: Horizon) -> tuple[np.ndarray, ...]:
    dt = horizon.dt_h
    p_hi = inp.ev_p_max_kw
    zero = np.zeros((dev.n_ev, 1))
    trips = np.concatenate([zero, np.cumsum(inp.ev_trip_kwh, axis=1)], axis=1)
    soc0 = inp.ev_soc0_kwh[:, None]
    soc_min = np.concatenate([soc0, np.maximum(inp.ev_soc_min_kwh, 0.0)], axis=1)
    e_lo = (soc_min - soc0 + trips) / CHARGE_EFFICIENCY
    e_hi = (dev.ev_capacity_kwh[:, None] - soc0 + trips) / CHARGE_EFFICIENCY
    e_lo, e_hi = _tighten(e_lo, e_hi, np.zeros_like(p_hi), p_hi, dt)
    return np.zeros_like(p_hi), p_hi, e_lo, e_hi


def _battery(
    dev: DeviceSet, inp: DeviceInputs, horizon: Horizon, reserve_cycles: float
) -> tuple[np.ndarray, ...]:
    n_per = horizon.n_periods
    eta = dev.bat_eta
    cap = dev.bat_capacity_kwh
    reserve = (1.0 / eta - eta) * cap * reserve_cycles
    soc0 = inp.bat_soc0_kwh
    up = np.maximum(cap - soc0 - reserve, 0.0) / eta
    down = np.maximum(soc0 - reserve, 0.0) * eta
    p = np.repeat(dev.bat_p_max_kw[:, None], n_per, axis=1)
    e_lo = np.repeat(-down[:, None], n_per + 1, axis=1)
    e_hi = np.repeat(up[:, None], n_per + 1, axis=1)
    e_lo, e_hi = _tighten(e_lo, e_hi, -p, p, horizon.dt_h)
    return -p, p, e_lo, e_hi


def _tank(dev: DeviceSet, inp: DeviceInputs, horizon: Horizon) -> tuple[np.ndarray, ...]:
    a, b = dev.tank_decay(horizon)
    p_hi = inp.tk_p_max_kw
    cop, draw = inp.tk_cop, inp.tk_draw_kw
    q_hi = p_hi * cop
    e_floor, e_max = inp.tk_e_min_kwh, dev.tk_e_max_kwh
    n_per = horizon.n_periods
    e_lazy = e_eager = inp.tk_e0_kwh.copy()
    p_lazy = np.empty_like(p_hi)
    p_eager = np.empty_like(p_hi)
    for j in range(n_per):
        q_l = (e_floor[:, j] - a[:, j] * e_lazy) / b[:, j] + draw[:, j]
        q_l = np.minimum(np.maximum(q_l, 0.0), q_hi[:, j])
        q_e = (e_max - a[:, j] * e_eager) / b[:, j] + draw[:, j]
        q_e = np.minimum(np.maximum(q_e, q_l), q_hi[:, j])
        e_lazy = np.maximum(a[:, j] * e_lazy + b[:, j] * (q_l - draw[:, j]), 0.0)
        e_eager = np.maximum(a[:, j] * e_eager + b[:, j] * (q_e - draw[:, j]), 0.0)
        p_lazy[:, j], p_eager[:, j] = q_l / cop[:, j], q_e / cop[:, j]
    dt = horizon.dt_h
    zero = np.zeros((dev.n_tk, 1))
    e_lo = np.concatenate([zero, np.cumsum(p_lazy * dt, axis=1)], axis=1)
    e_hi = np.concatenate([zero, np.cumsum(p_eager * dt, axis=1)], axis=1)
    return np.zeros_like(p_hi), p_hi, e_lo, e_hi


def household_envelopes(
    dev: DeviceSet,
    inp: DeviceInputs,
    horizon: Horizon,
    margin_k: float = 0.3,
    reserve_cycles: float = 1.0,
) -> FlexibilityEnvelope:
    """Every household's flexibility envelope (HEMS side: reads private device data).

    Parameters
    ----------
    dev, inp : DeviceSet, DeviceInputs
        The households' devices and the re-plan's data (forecasts and current states).
    horizon : Horizon
        Periods.
    margin_k : float
        Narrowing of the comfort band (each side) for the heat pump's energy bounds.
    reserve_cycles : float
        Battery conversion-loss reserve, in full cycles.
    """
    n, n_per = dev.n, horizon.n_periods
    p_lo = np.zeros((n, n_per))
    p_hi = np.zeros((n, n_per))
    e_lo = np.zeros((n, n_per + 1))
    e_hi = np.zeros((n, n_per + 1))
    for pos, parts in (
        (dev.hp, _thermal(dev, inp, horizon, margin_k)),
        (dev.ev, _ev(dev, inp, horizon)),
        (dev.bat, _battery(dev, inp, horizon, reserve_cycles)),
        (dev.tk, _tank(dev, inp, horizon)),
    ):
        for acc, part in zip((p_lo, p_hi, e_lo, e_hi), parts, strict=True):
            np.add.at(acc, pos, part)
    return FlexibilityEnvelope(
        p_min_kw=p_lo, p_max_kw=p_hi, e_min_kwh=e_lo, e_max_kwh=np.maximum(e_hi, e_lo)
    )
