"""Per-phase loads of a run, and the unbalanced power-flow stage of the pipeline.

Each household's load is put on the phases its parts are connected to (the fleet's phases,
:func:`twin.population.draw_phases`): the base load on the connection's phase(s), each device
on its own, PV as a negative load on its inverter's phases. A part on a three-phase
connection or device is split equally over a, b, c. The feeder's other loads sit on their
``net.load.phase`` (a single-phase entry there) or are split equally.

Power balance: the three phases of every load add up to the total the balanced power flow
sees (``p_net = base + hp + ev + bat - pv``), step by step (``tests/test_phases.py``).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
from pandapower.auxiliary import pandapowerNet

from twin.fleet import PHASE_DEVICES, THREE_PHASE, Fleet, phase_share
from twin.grid.asymmetric import PHASES, AsymmetricPowerFlow, AsymPowerFlowResult
from twin.grid.feeders import Feeder
from twin.grid.powerflow import BatchPowerFlow, PowerFlowResult

__all__ = [
    "FLOAT32_ABOVE_BUSES",
    "balanced_equivalent",
    "household_phase_loads",
    "phase_label",
    "phase_load_columns",
    "run_power_flows",
]

#: Feeders with more buses get float32 unbalanced results (a year of the 906-bus IEEE
#: European LV feeder is ~1.4 GB then instead of ~2.8 GB).
FLOAT32_ABOVE_BUSES = 500

#: The sign with which each part's logged power enters the household's net load.
_LOGGED = {"base": ("p_base_kw", 1.0), "hp": ("p_hp_kw", 1.0), "ev": ("p_ev_kw", 1.0)}
_LOGGED |= {"pv": ("p_pv_kw", -1.0), "bat": ("p_bat_kw", 1.0)}


def phase_label(phase: np.ndarray) -> np.ndarray:
    """``"a"``/``"b"``/``"c"`` for single-phase entries, ``"abc"`` for three-phase ones."""
    ph = np.asarray(phase, dtype=np.int64)
    return np.where(ph < 0, "abc", np.array(PHASES, dtype=object)[np.clip(ph, 0, 2)])


def household_phase_loads(
    fleet: Fleet, log: dict[str, np.ndarray], q_base_kvar: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(T, H, 3)`` active and reactive power of every household per phase.

    Parameters
    ----------
    fleet : Fleet
        The households and their phases (a fleet without phases is balanced).
    log : dict
        ``(T, H)`` logged powers ``p_base_kw``, ``p_hp_kw``, ``p_ev_kw``, ``p_pv_kw``,
        ``p_bat_kw`` (kW, as :data:`twin.model.LOGGED`).
    q_base_kvar : np.ndarray
        ``(T, H)`` the households' reactive power (their base load's; devices run at unity
        power factor), put on the base load's phases.
    """
    shares = fleet.phase_shares()
    t, h = np.shape(log["p_base_kw"])
    p = np.zeros((3, t, h))  # phase-major while adding up, (T, H, 3) at the end
    for part in PHASE_DEVICES:
        name, sign = _LOGGED[part]
        value = np.asarray(log[name], dtype=float)
        for f in range(3):
            w = sign * shares[part][:, f]
            if w.any():
                p[f] += value * w
    q = np.asarray(q_base_kvar, dtype=float)[..., None] * shares["base"]
    return np.ascontiguousarray(np.moveaxis(p, 0, -1)), q


def phase_load_columns(
    feeder: Feeder,
    fleet: Fleet,
    log: dict[str, np.ndarray],
    p_load_kw: np.ndarray,
    q_load_kvar: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``(T, len(net.load), 3)`` per-phase loads of every ``net.load`` row.

    ``p_load_kw`` / ``q_load_kvar`` ``(T, len(net.load))`` are what the balanced power flow
    sees; household columns are replaced by :func:`household_phase_loads` (the same totals),
    the other loads go on their ``net.load.phase`` or are split equally.
    """
    p_load = np.asarray(p_load_kw, dtype=float)
    q_load = np.asarray(q_load_kvar, dtype=float)
    n_load = p_load.shape[1]
    ph = feeder.load_phase
    ph = np.full(n_load, THREE_PHASE) if ph is None else np.where(ph >= 0, ph, THREE_PHASE)
    share = phase_share(ph)
    cols = feeder.household_cols
    other = np.setdiff1d(np.arange(n_load), cols)
    p = np.empty(p_load.shape + (3,))
    q = np.empty_like(p)
    p[:, other] = p_load[:, other, None] * share[other]
    q[:, other] = q_load[:, other, None] * share[other]
    p[:, cols], q[:, cols] = household_phase_loads(fleet, log, q_load[:, cols])
    return p, q


def balanced_equivalent(net: pandapowerNet) -> tuple[pandapowerNet, np.ndarray, np.ndarray]:
    """A copy of ``net`` for the balanced power flow: each in-service ``asymmetric_load`` row
    becomes a ``net.load`` row (appended) with the sum of its phases, balanced.

    Returns the copy and the ``(n_asym,)`` constant powers (kW, kvar) of the appended rows;
    ``net`` itself is returned (no copy) when it has no such row.
    """
    asym = net.get("asymmetric_load")
    if not isinstance(asym, pd.DataFrame) or not len(asym):
        return net, np.zeros(0), np.zeros(0)
    on = asym[asym["in_service"].fillna(False).astype(bool)]
    if not len(on):
        return net, np.zeros(0), np.zeros(0)
    import pandapower as pp

    out = copy.deepcopy(net)
    scale = on["scaling"].fillna(1.0).to_numpy(float)
    p_kw = on[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy(float).sum(axis=1) * scale * 1e3
    q_kw = on[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].to_numpy(float).sum(axis=1) * scale * 1e3
    for bus, p, q in zip(on["bus"].to_numpy(), p_kw, q_kw, strict=True):
        pp.create_load(out, bus=int(bus), p_mw=p / 1e3, q_mvar=q / 1e3, name="asymmetric_load")
    out.asymmetric_load["in_service"] = False
    return out, p_kw, q_kw


def run_power_flows(
    feeder: Feeder,
    fleet: Fleet,
    log: dict[str, np.ndarray],
    p_load_kw: np.ndarray,
    q_load_kvar: np.ndarray,
    threads: int = 0,
) -> tuple[PowerFlowResult, AsymPowerFlowResult | None]:
    """The run's power flows: the balanced batch flow of the connections' totals and, for an
    unbalanced run (:attr:`Feeder.unbalanced`), the unbalanced one of the per-phase loads.

    A balanced run gives exactly ``BatchPowerFlow(feeder.net).run(p, q)``. In an unbalanced
    run the balanced flow sees ``asymmetric_load`` rows as balanced loads of their total
    (:func:`balanced_equivalent`), the unbalanced one takes them as they are.
    """
    if not feeder.unbalanced:
        return BatchPowerFlow(feeder.net, threads=threads).run(p_load_kw, q_load_kvar), None
    net_b, p_extra, q_extra = balanced_equivalent(feeder.net)
    t = p_load_kw.shape[0]
    p_b = np.hstack([p_load_kw, np.broadcast_to(p_extra, (t, len(p_extra)))])
    q_b = np.hstack([q_load_kvar, np.broadcast_to(q_extra, (t, len(q_extra)))])
    grid = BatchPowerFlow(net_b, threads=threads).run(p_b, q_b)
    p3, q3 = phase_load_columns(feeder, fleet, log, p_load_kw, q_load_kvar)
    dtype = np.float32 if len(feeder.net.bus) > FLOAT32_ABOVE_BUSES else np.float64
    phases = AsymmetricPowerFlow(feeder.net, threads=threads, dtype=dtype).run(p3, q3)
    return grid, phases
