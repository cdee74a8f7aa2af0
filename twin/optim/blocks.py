"""Pyomo building blocks: household devices, flexibility envelopes, feeder limits.

Each block adds its variables, constraints and mutable Params to a Pyomo model once, binds the
Params to the solver (:meth:`bind`), writes a re-plan's data (:meth:`push`) and reads a
solution back as numpy arrays (:meth:`read`). Constraint families are indexed components
(one rule per family, vectorised over households × periods); no component is named
``slack``, ``dual`` or ``rc`` (they break appsi's HiGHS interface).

Objective priorities: see :mod:`twin.optim.options`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo

from twin.devices.ev import CHARGE_EFFICIENCY
from twin.optim.devices import COMFORT_TOL_K, DeviceInputs, DeviceSet, thermal_decay
from twin.optim.horizon import Horizon
from twin.optim.options import Weights
from twin.optim.persistent import PersistentLP

__all__ = ["DeviceBlock", "DevicePlan", "EnvelopeBlock", "LimitBlock", "Weights"]

#: Weight per kWh·h a tank's stored heat is planned below its floor (the thermostat's level
#: and the plan's margin): a soft bound, because the heat pump's capacity is shared with the
#: comfort floor (a hard bound) and both cannot always be reached at once; above the feeder
#: limits' energy (Weights.over_kwh), below the comfort terms (the HEMS guards keep a hard
#: reserve whatever the plan says).
TANK_SHORT_WEIGHT = 1e3


def _grid(n: int, m: int) -> list[tuple[int, int]]:
    """``[(i, j)]`` in C order: the index of an ``(n, m)`` array."""
    return [(i, j) for i in range(n) for j in range(m)]


@dataclass
class DevicePlan:
    """A solved plan of the devices of a :class:`DeviceSet` (numpy, per period/state).

    ``d_k``: ``(n_hp, N+1)`` indoor temperature minus setpoint; ``p_hp_kw``, ``q_boiler_kw``:
    ``(n_hp, N)``; ``p_ev_kw`` ``(n_ev, N)`` (net: charging minus V2G discharge),
    ``ev_soc_kwh`` ``(n_ev, N+1)``; ``p_bat_kw`` (charging positive) ``(n_bat, N)``,
    ``bat_soc_kwh`` ``(n_bat, N+1)``; ``p_flex_kw`` ``(n, N)`` every household's controllable
    load (heat pump for space heat and hot water, EV, battery).
    """

    d_k: np.ndarray
    p_hp_kw: np.ndarray
    q_boiler_kw: np.ndarray
    p_ev_kw: np.ndarray
    ev_soc_kwh: np.ndarray
    p_bat_kw: np.ndarray
    bat_soc_kwh: np.ndarray
    p_flex_kw: np.ndarray
    swing_over_kh: np.ndarray | None = None  # (n_hp,) planned K·h outside the day's window
    p_dhw_kw: np.ndarray | None = None  # (n_tk, N) heat pump power charging the tank
    e_tank_kwh: np.ndarray | None = None  # (n_tk, N+1) stored hot-water heat
    p_v2g_kw: np.ndarray | None = None  # (n_v2g, N) discharge (>= 0; in p_ev_kw as negative)


class DeviceBlock:
    """Heat pumps in 1R1C buildings (and their hot-water tanks), EVs (with V2G) and batteries
    of a :class:`DeviceSet`.

    Hot water (``dev.tk``): ``p_dhw`` (electric) charges the tank at the period's hot-water
    COP, ``e[s+1] = A e[s] + B (cop_dhw p_dhw - draw)`` with ``e`` in ``[0, e_max]`` and
    ``e >= e_min`` as a soft floor (:data:`TANK_SHORT_WEIGHT`), and
    the heat pump's thermal capacity is shared, ``cop p_hp + cop_dhw p_dhw <= q_max``. V2G
    (``dev.v2g``): ``p_dis >= 0`` leaves the battery at ``1 / eta_dis``, costs the car's wear
    per kWh and enters the household's load with a minus.

    Parameters
    ----------
    m : pyo.Block
        Model (or block) to add the components to.
    dev : DeviceSet
        The devices.
    horizon : Horizon
        Periods.
    w : Weights
        Objective weights (the block's objective terms are in :attr:`objective`).
    """

    def __init__(self, m: pyo.Block, dev: DeviceSet, horizon: Horizon, w: Weights) -> None:
        self.dev, self.horizon = dev, horizon
        n_per = horizon.n_periods
        dt = horizon.dt_h
        self.b = b = m
        a_per = thermal_decay(dev, horizon)
        r = dev.r_k_per_kw

        # --- heat pumps and buildings ----------------------------------------------------------
        hy = dev.hybrid_pos
        b.HPJ = pyo.Set(initialize=_grid(dev.n_hp, n_per), dimen=2)
        b.HPS = pyo.Set(initialize=_grid(dev.n_hp, n_per + 1), dimen=2)
        b.HYJ = pyo.Set(initialize=[(i, j) for i in hy.tolist() for j in range(n_per)], dimen=2)
        b.hp_p_max = pyo.Param(b.HPJ, mutable=True, initialize=0.0)
        b.hp_coef = pyo.Param(b.HPJ, mutable=True, initialize=-1.0)
        b.th_rhs = pyo.Param(b.HPJ, mutable=True, initialize=0.0)
        b.warm_lb = pyo.Param(b.HPS, mutable=True, initialize=0.0)
        b.warm_ub = pyo.Param(b.HPS, mutable=True, initialize=1.0)
        b.cold_lb = pyo.Param(b.HPS, mutable=True, initialize=0.0)
        b.cold_ub = pyo.Param(b.HPS, mutable=True, initialize=1.0)
        b.p_hp = pyo.Var(b.HPJ, bounds=lambda b, i, j: (0.0, b.hp_p_max[i, j]))
        b.q_boil = pyo.Var(b.HYJ, bounds=(0.0, None))
        b.warm = pyo.Var(b.HPS, bounds=lambda b, i, s: (b.warm_lb[i, s], b.warm_ub[i, s]))
        b.cold = pyo.Var(b.HPS, bounds=lambda b, i, s: (b.cold_lb[i, s], b.cold_ub[i, s]))
        is_hy = set(hy.tolist())
        boil_coef = -(1.0 - a_per) * r[:, None]

        def thermal(b: pyo.Block, i: int, j: int) -> Any:
            e = (
                b.warm[i, j + 1]
                - b.cold[i, j + 1]
                - float(a_per[i, j]) * (b.warm[i, j] - b.cold[i, j])
                + b.hp_coef[i, j] * b.p_hp[i, j]
            )
            if i in is_hy:
                e += float(boil_coef[i, j]) * b.q_boil[i, j]
            return e == b.th_rhs[i, j]

        b.thermal = pyo.Constraint(b.HPJ, rule=thermal)

        # --- the daily swing (swing rule): each state within its day's window [lo, lo + w] --
        self.swing = bool(np.isfinite(dev.swing_k) and dev.n_hp)
        swing_terms: list[Any] = []
        if self.swing:
            width = float(dev.swing_k - 2 * COMFORT_TOL_K)
            b.HPS1 = pyo.Set(
                initialize=[(i, s) for i in range(dev.n_hp) for s in range(1, n_per + 1)], dimen=2
            )
            b.win_lb = pyo.Param(b.HPS, mutable=True, initialize=-1.0)
            b.win_ub = pyo.Param(b.HPS, mutable=True, initialize=1.0)
            b.wj_lb = pyo.Param(b.HPS1, mutable=True, initialize=0.0)
            b.wj_ub = pyo.Param(b.HPS1, mutable=True, initialize=0.0)
            b.win = pyo.Var(b.HPS, bounds=lambda b, i, s: (b.win_lb[i, s], b.win_ub[i, s]))
            b.wjump = pyo.Var(b.HPS1, bounds=lambda b, i, s: (b.wj_lb[i, s], b.wj_ub[i, s]))
            b.sw_lo = pyo.Var(b.HPS, bounds=(0.0, None))
            b.sw_hi = pyo.Var(b.HPS, bounds=(0.0, None))
            b.win_link = pyo.Constraint(
                b.HPS1,
                rule=lambda b, i, s: b.win[i, s] - b.win[i, s - 1] - b.wjump[i, s] == 0.0,
            )
            b.win_low = pyo.Constraint(
                b.HPS,
                rule=lambda b, i, s: (
                    b.warm[i, s] - b.cold[i, s] - b.win[i, s] + b.sw_lo[i, s] >= 0.0
                ),
            )
            b.win_high = pyo.Constraint(
                b.HPS,
                rule=lambda b, i, s: (
                    b.warm[i, s] - b.cold[i, s] - b.win[i, s] - b.sw_hi[i, s] <= width
                ),
            )
            wdt = np.r_[dt[0], dt]  # state s weighs with the period ending in it
            swing_terms = [
                w.swing_kh * float(wdt[s]) * (b.sw_lo[i, s] + b.sw_hi[i, s])
                for i in range(dev.n_hp)
                for s in range(n_per + 1)
            ]

        # --- EVs ------------------------------------------------------------------------------
        b.EVJ = pyo.Set(initialize=_grid(dev.n_ev, n_per), dimen=2)
        b.EVS = pyo.Set(initialize=_grid(dev.n_ev, n_per + 1), dimen=2)
        b.ev_p_max = pyo.Param(b.EVJ, mutable=True, initialize=0.0)
        b.ev_rhs = pyo.Param(b.EVJ, mutable=True, initialize=0.0)
        b.ev_soc_lb = pyo.Param(b.EVS, mutable=True, initialize=0.0)
        b.ev_soc_ub = pyo.Param(b.EVS, mutable=True, initialize=0.0)
        b.p_ev = pyo.Var(b.EVJ, bounds=lambda b, e, j: (0.0, b.ev_p_max[e, j]))
        b.ev_soc = pyo.Var(b.EVS, bounds=lambda b, e, s: (b.ev_soc_lb[e, s], b.ev_soc_ub[e, s]))
        ev_gain = CHARGE_EFFICIENCY * dt
        b.ev_balance = pyo.Constraint(
            b.EVJ,
            rule=lambda b, e, j: (
                b.ev_soc[e, j + 1] - b.ev_soc[e, j] - float(ev_gain[j]) * b.p_ev[e, j]
                == b.ev_rhs[e, j]
            ),
        )

        # --- V2G: discharge of the bidirectional cars --------------------------------------------
        vpos = dev.v2g
        b.VJ = pyo.Set(initialize=_grid(dev.n_v2g, n_per), dimen=2)
        b.v2g_p_max = pyo.Param(b.VJ, mutable=True, initialize=0.0)
        b.p_dis = pyo.Var(b.VJ, bounds=lambda b, v, j: (0.0, b.v2g_p_max[v, j]))
        dis_loss = dt / dev.v2g_eta
        for v, e in enumerate(vpos.tolist()):
            for j in range(n_per):
                b.ev_balance[e, j].set_value(
                    b.ev_soc[e, j + 1]
                    - b.ev_soc[e, j]
                    - float(ev_gain[j]) * b.p_ev[e, j]
                    + float(dis_loss[j]) * b.p_dis[v, j]
                    == b.ev_rhs[e, j]
                )

        # --- hot-water tanks ----------------------------------------------------------------------
        a_tk, b_tk = dev.tank_decay(horizon)
        b.TKJ = pyo.Set(initialize=_grid(dev.n_tk, n_per), dimen=2)
        b.TKS = pyo.Set(initialize=_grid(dev.n_tk, n_per + 1), dimen=2)
        b.tk_p_max = pyo.Param(b.TKJ, mutable=True, initialize=0.0)
        b.tk_coef = pyo.Param(b.TKJ, mutable=True, initialize=-1.0)
        b.tk_rhs = pyo.Param(b.TKJ, mutable=True, initialize=0.0)
        b.tk_e_lb = pyo.Param(b.TKS, mutable=True, initialize=0.0)
        b.tk_e_ub = pyo.Param(b.TKS, mutable=True, initialize=1.0)
        b.p_dhw = pyo.Var(b.TKJ, bounds=lambda b, t, j: (0.0, b.tk_p_max[t, j]))
        b.e_tank = pyo.Var(b.TKS, bounds=lambda b, t, s: (b.tk_e_lb[t, s], b.tk_e_ub[t, s]))
        b.TKS1 = pyo.Set(
            initialize=[(t, s) for t in range(dev.n_tk) for s in range(1, n_per + 1)], dimen=2
        )
        b.tk_floor_rhs = pyo.Param(b.TKS1, mutable=True, initialize=0.0)
        b.tk_under = pyo.Var(b.TKS1, bounds=(0.0, None))
        b.tk_floor = pyo.Constraint(
            b.TKS1,
            rule=lambda b, t, s: b.e_tank[t, s] + b.tk_under[t, s] >= b.tk_floor_rhs[t, s],
        )
        b.tk_balance = pyo.Constraint(
            b.TKJ,
            rule=lambda b, t, j: (
                b.e_tank[t, j + 1]
                - float(a_tk[t, j]) * b.e_tank[t, j]
                + b.tk_coef[t, j] * b.p_dhw[t, j]
                == b.tk_rhs[t, j]
            ),
        )
        # the heat pump's thermal capacity, shared by space heat and hot water
        tk_hp = dev.tk_hp
        q_cap_tk = dev.hp_q_max_kw[tk_hp]
        b.cap_sh = pyo.Param(b.TKJ, mutable=True, initialize=1.0)
        b.cap_dhw = pyo.Param(b.TKJ, mutable=True, initialize=1.0)
        b.hp_share = pyo.Constraint(
            b.TKJ,
            rule=lambda b, t, j: (
                b.cap_sh[t, j] * b.p_hp[int(tk_hp[t]), j] + b.cap_dhw[t, j] * b.p_dhw[t, j]
                <= float(q_cap_tk[t])
            ),
        )

        # --- batteries ------------------------------------------------------------------------
        b.BATJ = pyo.Set(initialize=_grid(dev.n_bat, n_per), dimen=2)
        b.BATS = pyo.Set(initialize=_grid(dev.n_bat, n_per + 1), dimen=2)
        b.bat_soc_lb = pyo.Param(b.BATS, mutable=True, initialize=0.0)
        b.bat_soc_ub = pyo.Param(b.BATS, mutable=True, initialize=0.0)
        pmax_bat = dev.bat_p_max_kw
        b.ch = pyo.Var(b.BATJ, bounds=lambda b, k, j: (0.0, float(pmax_bat[k])))
        b.dis = pyo.Var(b.BATJ, bounds=lambda b, k, j: (0.0, float(pmax_bat[k])))
        b.bat_soc = pyo.Var(b.BATS, bounds=lambda b, k, s: (b.bat_soc_lb[k, s], b.bat_soc_ub[k, s]))
        eta = dev.bat_eta
        b.bat_balance = pyo.Constraint(
            b.BATJ,
            rule=lambda b, k, j: (
                b.bat_soc[k, j + 1]
                - b.bat_soc[k, j]
                - float(eta[k] * dt[j]) * b.ch[k, j]
                + float(dt[j] / eta[k]) * b.dis[k, j]
                == 0.0
            ),
        )

        # --- objective terms --------------------------------------------------------------------
        # states 1..N weigh with the length of the period that ends in them
        hp_terms = [
            w.hp_kwh * float(dt[j]) * b.p_hp[i, j] for i in range(dev.n_hp) for j in range(n_per)
        ]
        th_terms = [
            float(dt[s - 1]) * (w.cold_kh * b.cold[i, s] + w.warm_kh * b.warm[i, s])
            for i in range(dev.n_hp)
            for s in range(1, n_per + 1)
        ]
        gas = [w.gas_kwh * float(dt[j]) * b.q_boil[i, j] for i in hy.tolist() for j in range(n_per)]
        ev_terms = [
            -w.ev_soc_kwh_h * float(dt[s - 1]) * b.ev_soc[e, s]
            for e in range(dev.n_ev)
            for s in range(1, n_per + 1)
        ]
        bat_terms = [
            w.bat_cycle_kwh * float(dt[j]) * (b.ch[k, j] + b.dis[k, j])
            for k in range(dev.n_bat)
            for j in range(n_per)
        ] + [
            -w.bat_soc_kwh_h * float(dt[s - 1]) * b.bat_soc[k, s]
            for k in range(dev.n_bat)
            for s in range(1, n_per + 1)
        ]
        dhw_terms = [
            w.hp_kwh * float(dt[j]) * b.p_dhw[t, j] for t in range(dev.n_tk) for j in range(n_per)
        ] + [
            -w.bat_soc_kwh_h * float(dt[s - 1]) * b.e_tank[t, s]
            + TANK_SHORT_WEIGHT * float(dt[s - 1]) * b.tk_under[t, s]
            for t in range(dev.n_tk)
            for s in range(1, n_per + 1)
        ]
        wear = dev.v2g_wear_eur_per_kwh
        v2g_terms = [
            float(wear[v]) * float(dt[j]) * b.p_dis[v, j]
            for v in range(dev.n_v2g)
            for j in range(n_per)
        ]
        self.objective = pyo.quicksum(
            hp_terms + th_terms + gas + ev_terms + bat_terms + swing_terms + dhw_terms + v2g_terms
        )

        # per household: its controllable load terms (coefficient, var-getter) at period j
        self._terms: list[list[tuple[float, str, int]]] = [[] for _ in range(dev.n)]
        for i, h in enumerate(dev.hp):
            self._terms[h].append((1.0, "p_hp", i))
        for e, h in enumerate(dev.ev):
            self._terms[h].append((1.0, "p_ev", e))
        for v, e in enumerate(dev.v2g):
            self._terms[dev.ev[e]].append((-1.0, "p_dis", v))
        for t, h in enumerate(dev.tk):
            self._terms[h].append((1.0, "p_dhw", t))
        for k, h in enumerate(dev.bat):
            self._terms[h].append((1.0, "ch", k))
            self._terms[h].append((-1.0, "dis", k))

    def household_terms(self, h: int, j: int) -> list[tuple[float, pyo.Var]]:
        """``[(coefficient, variable)]`` of household position ``h``'s controllable load."""
        b = self.b
        return [(c, getattr(b, name)[k, j]) for c, name, k in self._terms[h]]

    def has_flex(self) -> np.ndarray:
        """``(n,)`` whether a household has any controllable device."""
        return np.array([bool(t) for t in self._terms])

    # -- solver data ------------------------------------------------------------------------
    def bind(self, lp: PersistentLP) -> None:
        b, dev, n_per = self.b, self.dev, self.horizon.n_periods
        hp_j, hp_s = _grid(dev.n_hp, n_per), _grid(dev.n_hp, n_per + 1)
        ev_j, ev_s = _grid(dev.n_ev, n_per), _grid(dev.n_ev, n_per + 1)
        bat_s = _grid(dev.n_bat, n_per + 1)
        tk_j, tk_s = _grid(dev.n_tk, n_per), _grid(dev.n_tk, n_per + 1)
        v_j = _grid(dev.n_v2g, n_per)
        lp.bind(b.hp_p_max, hp_j, "col_ub", var=b.p_hp)
        lp.bind(b.v2g_p_max, v_j, "col_ub", var=b.p_dis)
        lp.bind(b.tk_p_max, tk_j, "col_ub", var=b.p_dhw)
        lp.bind(b.tk_coef, tk_j, "coef", con=b.tk_balance, var=b.p_dhw)
        lp.bind(b.tk_rhs, tk_j, "row_eq", con=b.tk_balance)
        lp.bind(b.tk_e_lb, tk_s, "col_lb", var=b.e_tank)
        lp.bind(b.tk_e_ub, tk_s, "col_ub", var=b.e_tank)
        lp.bind(b.tk_floor_rhs, list(b.TKS1), "row_lb", con=b.tk_floor)
        lp.bind(
            b.cap_sh,
            tk_j,
            "coef",
            con=b.hp_share,
            var=b.p_hp,
            var_index=[(int(dev.tk_hp[t]), j) for t, j in tk_j],
        )
        lp.bind(b.cap_dhw, tk_j, "coef", con=b.hp_share, var=b.p_dhw)
        lp.bind(b.hp_coef, hp_j, "coef", con=b.thermal, var=b.p_hp)
        lp.bind(b.th_rhs, hp_j, "row_eq", con=b.thermal)
        lp.bind(b.warm_lb, hp_s, "col_lb", var=b.warm)
        lp.bind(b.warm_ub, hp_s, "col_ub", var=b.warm)
        lp.bind(b.cold_lb, hp_s, "col_lb", var=b.cold)
        lp.bind(b.cold_ub, hp_s, "col_ub", var=b.cold)
        lp.bind(b.ev_p_max, ev_j, "col_ub", var=b.p_ev)
        lp.bind(b.ev_rhs, ev_j, "row_eq", con=b.ev_balance)
        lp.bind(b.ev_soc_lb, ev_s, "col_lb", var=b.ev_soc)
        lp.bind(b.ev_soc_ub, ev_s, "col_ub", var=b.ev_soc)
        lp.bind(b.bat_soc_lb, bat_s, "col_lb", var=b.bat_soc)
        lp.bind(b.bat_soc_ub, bat_s, "col_ub", var=b.bat_soc)
        self._cols = {
            "p_hp": lp.cols(b.p_hp, hp_j).reshape(dev.n_hp, n_per),
            "q_boil": lp.cols(
                b.q_boil, [(i, j) for i in dev.hybrid_pos.tolist() for j in range(n_per)]
            ).reshape(len(dev.hybrid_pos), n_per),
            "warm": lp.cols(b.warm, hp_s).reshape(dev.n_hp, n_per + 1),
            "cold": lp.cols(b.cold, hp_s).reshape(dev.n_hp, n_per + 1),
            "p_ev": lp.cols(b.p_ev, ev_j).reshape(dev.n_ev, n_per),
            "ev_soc": lp.cols(b.ev_soc, ev_s).reshape(dev.n_ev, n_per + 1),
            "ch": lp.cols(b.ch, _grid(dev.n_bat, n_per)).reshape(dev.n_bat, n_per),
            "dis": lp.cols(b.dis, _grid(dev.n_bat, n_per)).reshape(dev.n_bat, n_per),
            "bat_soc": lp.cols(b.bat_soc, bat_s).reshape(dev.n_bat, n_per + 1),
            "p_dhw": lp.cols(b.p_dhw, tk_j).reshape(dev.n_tk, n_per),
            "e_tank": lp.cols(b.e_tank, tk_s).reshape(dev.n_tk, n_per + 1),
            "p_dis": lp.cols(b.p_dis, v_j).reshape(dev.n_v2g, n_per),
        }
        if self.swing:
            hp_s1 = [(i, s) for i in range(dev.n_hp) for s in range(1, n_per + 1)]
            lp.bind(b.win_lb, hp_s, "col_lb", var=b.win)
            lp.bind(b.win_ub, hp_s, "col_ub", var=b.win)
            lp.bind(b.wj_lb, hp_s1, "col_lb", var=b.wjump)
            lp.bind(b.wj_ub, hp_s1, "col_ub", var=b.wjump)
            self._cols["sw_lo"] = lp.cols(b.sw_lo, hp_s).reshape(dev.n_hp, n_per + 1)
            self._cols["sw_hi"] = lp.cols(b.sw_hi, hp_s).reshape(dev.n_hp, n_per + 1)
        # read back in one gather (read): every column above, and where each array lies in it
        self._all_cols = np.concatenate([c.ravel() for c in self._cols.values()])
        ends = np.cumsum([c.size for c in self._cols.values()]).tolist()
        self._parts = [
            (name, end - c.size, end, c.shape)
            for (name, c), end in zip(self._cols.items(), ends, strict=True)
        ]

    def push(self, lp: PersistentLP, inp: DeviceInputs) -> None:
        """Write one re-plan's data (state 0 fixed to the measured state)."""
        b, dev, n_per = self.b, self.dev, self.horizon.n_periods
        a_per = thermal_decay(dev, self.horizon)
        lp.push(b.hp_p_max, inp.hp_p_max_kw)
        lp.push(b.hp_coef, -(1.0 - a_per) * dev.r_k_per_kw[:, None] * inp.cop)
        lp.push(b.th_rhs, inp.th_rhs_k)
        d0 = inp.d0_k[:, None]
        warm_lb = np.zeros((dev.n_hp, n_per + 1))
        warm_lb[:, :1] = np.maximum(d0, 0.0)
        cold_lb = np.zeros((dev.n_hp, n_per + 1))
        cold_lb[:, :1] = np.maximum(-d0, 0.0)
        lp.push(b.warm_lb, warm_lb)
        lp.push(
            b.warm_ub, np.concatenate([np.maximum(d0, 0.0), np.maximum(inp.d_hi_k, 0.0)], axis=1)
        )
        lp.push(b.cold_lb, cold_lb)
        lp.push(
            b.cold_ub, np.concatenate([np.maximum(-d0, 0.0), np.maximum(-inp.d_lo_k, 0.0)], axis=1)
        )
        lp.push(b.ev_p_max, inp.ev_p_max_kw)
        lp.push(b.ev_rhs, -inp.ev_trip_kwh)
        soc0 = inp.ev_soc0_kwh[:, None]
        lp.push(b.ev_soc_lb, np.concatenate([soc0, inp.ev_soc_min_kwh], axis=1))
        lp.push(
            b.ev_soc_ub,
            np.concatenate([soc0, np.repeat(dev.ev_capacity_kwh[:, None], n_per, 1)], axis=1),
        )
        if self.swing:
            lp.push(b.win_lb, inp.win_lb_k)
            lp.push(b.win_ub, inp.win_ub_k)
            jump = np.repeat(inp.win_jump_k[None, 1:], dev.n_hp, axis=0)
            shift = (
                np.diff(inp.win_shift_k, axis=1)
                if inp.win_shift_k is not None
                else np.zeros_like(jump)
            )
            lp.push(b.wj_lb, shift - jump)
            lp.push(b.wj_ub, shift + jump)
        if dev.n_v2g:
            lp.push(b.v2g_p_max, inp.v2g_p_max_kw)
        if dev.n_tk:
            a_tk, b_tk = dev.tank_decay(self.horizon)
            lp.push(b.tk_p_max, inp.tk_p_max_kw)
            lp.push(b.tk_coef, -b_tk * inp.tk_cop)
            lp.push(b.tk_rhs, -b_tk * inp.tk_draw_kw)
            e0 = inp.tk_e0_kwh[:, None]
            # below empty only by draws the tank and the heat pump cannot serve (a bath bigger
            # than the store, foreseen under perfect foresight): that shortfall is the floor's
            # penalised slack, not an infeasible plan
            e_lo = -np.cumsum(np.maximum(b_tk * inp.tk_draw_kw, 0.0), axis=1)
            lp.push(b.tk_e_lb, np.concatenate([e0, e_lo], axis=1))
            # a tank may start above full (a boost, or the physics' last step overshooting the
            # setpoint): the ceiling also lets that heat decay away, or the LP is infeasible
            # from its first period (seen on intraday re-plans under perfect foresight)
            decayed = e0 * np.cumprod(a_tk, axis=1) + 1e-6
            e_hi = np.maximum(np.maximum(dev.tk_e_max_kwh[:, None], inp.tk_e_min_kwh), decayed)
            lp.push(b.tk_e_ub, np.concatenate([e0, e_hi], axis=1))
            lp.push(b.tk_floor_rhs, inp.tk_e_min_kwh)
            lp.push(b.cap_sh, inp.cop[dev.tk_hp])
            lp.push(b.cap_dhw, inp.tk_cop)
        bsoc0 = inp.bat_soc0_kwh[:, None]
        lp.push(b.bat_soc_lb, np.concatenate([bsoc0, np.zeros((dev.n_bat, n_per))], axis=1))
        lp.push(
            b.bat_soc_ub,
            np.concatenate([bsoc0, np.repeat(dev.bat_capacity_kwh[:, None], n_per, 1)], axis=1),
        )

    def read(self, lp: PersistentLP) -> DevicePlan:
        """The last solution as numpy arrays."""
        dev, n_per = self.dev, self.horizon.n_periods
        flat = lp.values(self._all_cols)
        c = {name: flat[a:b].reshape(shape) for name, a, b, shape in self._parts}
        p_hp = c["p_hp"]
        q_boil = np.zeros((dev.n_hp, n_per))
        q_boil[dev.hybrid_pos] = c["q_boil"]
        p_ev = c["p_ev"]
        p_dis = c["p_dis"]
        p_ev[dev.v2g] -= p_dis
        p_dhw = c["p_dhw"]
        p_bat = c["ch"] - c["dis"]
        flex = np.zeros((dev.n, n_per))
        # a household has at most one device of each kind: the positions are unique
        flex[dev.hp] += p_hp
        flex[dev.tk] += p_dhw
        flex[dev.ev] += p_ev
        flex[dev.bat] += p_bat
        swing_over = None
        if self.swing:
            wdt = np.r_[self.horizon.dt_h[0], self.horizon.dt_h]
            swing_over = ((c["sw_lo"] + c["sw_hi"]) * wdt).sum(axis=1)
        return DevicePlan(
            swing_over_kh=swing_over,
            d_k=c["warm"] - c["cold"],
            p_hp_kw=p_hp,
            q_boiler_kw=q_boil,
            p_ev_kw=p_ev,
            ev_soc_kwh=c["ev_soc"],
            p_bat_kw=p_bat,
            bat_soc_kwh=c["bat_soc"],
            p_flex_kw=flex,
            p_dhw_kw=p_dhw,
            e_tank_kwh=c["e_tank"],
            p_v2g_kw=p_dis,
        )


class EnvelopeBlock:
    """Households as flexibility envelopes: power bounds and cumulative-energy bounds only.

    ``x[h, j]`` in ``[p_min, p_max]`` is household ``h``'s controllable load in period ``j``;
    ``E[h, s]`` (``E[h, 0] = 0``) its cumulative energy, within ``[e_min, e_max]``. This is
    everything the DSO learns about a household in envelope mode.
    """

    def __init__(self, m: pyo.Block, n: int, horizon: Horizon, w: Weights) -> None:
        self.n, self.horizon = n, horizon
        n_per = horizon.n_periods
        dt = horizon.dt_h
        self.b = b = m
        b.HJ = pyo.Set(initialize=_grid(n, n_per), dimen=2)
        b.HS = pyo.Set(initialize=_grid(n, n_per + 1), dimen=2)
        b.xp_lb = pyo.Param(b.HJ, mutable=True, initialize=0.0)
        b.xp_ub = pyo.Param(b.HJ, mutable=True, initialize=0.0)
        b.xn_lb = pyo.Param(b.HJ, mutable=True, initialize=0.0)
        b.xn_ub = pyo.Param(b.HJ, mutable=True, initialize=0.0)
        b.e_min = pyo.Param(b.HS, mutable=True, initialize=0.0)
        b.e_max = pyo.Param(b.HS, mutable=True, initialize=0.0)
        # x = xp - xn: consumption and feed-in parts, so that cycling a storage costs something
        b.xp = pyo.Var(b.HJ, bounds=lambda b, h, j: (b.xp_lb[h, j], b.xp_ub[h, j]))
        b.xn = pyo.Var(b.HJ, bounds=lambda b, h, j: (b.xn_lb[h, j], b.xn_ub[h, j]))
        b.e = pyo.Var(b.HS, bounds=lambda b, h, s: (b.e_min[h, s], b.e_max[h, s]))
        b.energy = pyo.Constraint(
            b.HJ,
            rule=lambda b, h, j: (
                b.e[h, j + 1] - b.e[h, j] - float(dt[j]) * (b.xp[h, j] - b.xn[h, j]) == 0.0
            ),
        )
        # a generous DSO: allocate what households can use, earlier rather than later; feed-in
        # (a battery discharging) only where it lowers the peak
        pref = w.alloc_kwh * dt * np.linspace(1.0, 0.5, n_per)
        self.objective = pyo.quicksum(
            [
                -float(pref[j]) * b.xp[h, j]
                + (float(pref[j]) + w.bat_cycle_kwh * float(dt[j])) * b.xn[h, j]
                for h in range(n)
                for j in range(n_per)
            ]
        )

    def household_terms(self, h: int, j: int) -> list[tuple[float, pyo.Var]]:
        return [(1.0, self.b.xp[h, j]), (-1.0, self.b.xn[h, j])]

    def bind(self, lp: PersistentLP) -> None:
        b, n, n_per = self.b, self.n, self.horizon.n_periods
        hj, hs = _grid(n, n_per), _grid(n, n_per + 1)
        lp.bind(b.xp_lb, hj, "col_lb", var=b.xp)
        lp.bind(b.xp_ub, hj, "col_ub", var=b.xp)
        lp.bind(b.xn_lb, hj, "col_lb", var=b.xn)
        lp.bind(b.xn_ub, hj, "col_ub", var=b.xn)
        lp.bind(b.e_min, hs, "col_lb", var=b.e)
        lp.bind(b.e_max, hs, "col_ub", var=b.e)
        self._xp = lp.cols(b.xp, hj).reshape(n, n_per)
        self._xn = lp.cols(b.xn, hj).reshape(n, n_per)

    def push(self, lp: PersistentLP, env: Any) -> None:
        """Write the households' envelopes: ``x = xp - xn`` within ``[p_min, p_max]``."""
        b = self.b
        lp.push(b.xp_lb, np.maximum(env.p_min_kw, 0.0))
        lp.push(b.xp_ub, np.maximum(env.p_max_kw, 0.0))
        lp.push(b.xn_lb, np.maximum(-env.p_max_kw, 0.0))
        lp.push(b.xn_ub, np.maximum(-env.p_min_kw, 0.0))
        lp.push(b.e_min, env.e_min_kwh)
        lp.push(b.e_max, env.e_max_kwh)

    def read(self, lp: PersistentLP) -> np.ndarray:
        """``(n, N)`` allocated controllable load."""
        return lp.values(self._xp) - lp.values(self._xn)


class LimitBlock:
    """Feeder limits and the peak, coupling the households' controllable loads.

    Rows ``r`` (transformer first, then screened cables, in both directions where needed):
    ``sign_r * sum_h coef[r, h] * flex_h[j] - over[r, j] <= rhs[r, j]``, where ``rhs`` is the
    limit minus the forecast flow of everything not controlled here. The peak row:
    ``sum_h flex_h[j] - peak <= -inflexible[j]`` with ``peak >= sunk`` (the peak already
    realised, a mutable bound).

    Parameters
    ----------
    m : pyo.Block
        Model to add the components to.
    terms : callable
        ``terms(h, j) -> [(coef, var)]``: household ``h``'s controllable load in period ``j``.
    n : int
        Households.
    coef : np.ndarray
        ``(R, n)`` sensitivity of each limited flow to each household's load (1 for the
        transformer). Rows whose coefficients are all one use one aggregated variable.
    sign : np.ndarray
        ``(R,)`` +1 (import direction) or -1 (export direction).
    """

    def __init__(
        self,
        m: pyo.Block,
        terms: Any,
        n: int,
        horizon: Horizon,
        coef: np.ndarray,
        sign: np.ndarray,
        w: Weights,
        lazy: np.ndarray | None = None,
    ) -> None:
        self.horizon, self.n_rows = horizon, len(coef)
        self.coef = np.asarray(coef, dtype=float)
        self.sign = np.asarray(sign, dtype=float)
        self.active = np.ones(len(coef), bool) if lazy is None else ~np.asarray(lazy, dtype=bool)
        n_per = horizon.n_periods
        dt = horizon.dt_h
        self.b = b = m
        b.J = pyo.Set(initialize=list(range(n_per)))
        b.RJ = pyo.Set(initialize=_grid(len(coef), n_per), dimen=2)
        b.total = pyo.Var(b.J)
        b.peak = pyo.Var(bounds=(0.0, None))
        b.over = pyo.Var(b.RJ, bounds=(0.0, None))
        b.rhs = pyo.Param(b.RJ, mutable=True, initialize=1e6)
        b.peak_rhs = pyo.Param(b.J, mutable=True, initialize=0.0)
        b.peak_lb = pyo.Param(mutable=True, initialize=0.0)
        b.peak.setlb(b.peak_lb)
        per_h = [[terms(h, j) for j in range(n_per)] for h in range(n)]

        def total(b: pyo.Block, j: int) -> Any:
            return b.total[j] - pyo.quicksum(c * v for h in range(n) for c, v in per_h[h][j]) == 0.0

        b.total_def = pyo.Constraint(b.J, rule=total)
        ones = np.all(np.isclose(coef, 1.0), axis=1)

        def limit(b: pyo.Block, r: int, j: int) -> Any:
            if ones[r]:
                flow = b.total[j]
            else:
                flow = pyo.quicksum(
                    float(coef[r, h]) * c * v
                    for h in np.flatnonzero(coef[r]).tolist()
                    for c, v in per_h[h][j]
                )
            return float(sign[r]) * flow - b.over[r, j] <= b.rhs[r, j]

        b.limit = pyo.Constraint(b.RJ, rule=limit)
        # the largest exceedance of each row over the horizon (what protection and ageing see)
        b.R = pyo.Set(initialize=list(range(len(coef))))
        b.over_max = pyo.Var(b.R, bounds=(0.0, None))
        b.over_cap = pyo.Constraint(b.RJ, rule=lambda b, r, j: b.over[r, j] - b.over_max[r] <= 0.0)
        for r in np.flatnonzero(~self.active).tolist():  # lazy rows: built, handed over when needed
            for j in range(n_per):
                b.limit[r, j].deactivate()
                b.over_cap[r, j].deactivate()
        b.peak_def = pyo.Constraint(b.J, rule=lambda b, j: b.total[j] - b.peak <= b.peak_rhs[j])
        self.objective = w.peak_kw * b.peak + pyo.quicksum(
            [w.over_kw * b.over_max[r] for r in range(len(coef))]
            + [
                w.over_kwh * float(dt[j]) * b.over[r, j]
                for r in range(len(coef))
                for j in range(n_per)
            ]
        )

    def _bind_row(self, lp: PersistentLP, r: int) -> None:
        n_per = self.horizon.n_periods
        lp.bind(
            self.b.rhs,
            [(r, j) for j in range(n_per)],
            "row_ub",
            con=self.b.limit,
            key=f"limit rhs {r}",
        )

    def bind(self, lp: PersistentLP) -> None:
        b, n_per = self.b, self.horizon.n_periods
        rj = _grid(self.n_rows, n_per)
        for r in np.flatnonzero(self.active).tolist():
            self._bind_row(lp, r)
        lp.bind(b.peak_rhs, list(range(n_per)), "row_ub", con=b.peak_def)
        lp.bind(b.peak_lb, [None], "col_lb", var=b.peak, var_index=[None])
        self._over = lp.cols(b.over, rj).reshape(self.n_rows, n_per)
        self._total = lp.cols(b.total, list(range(n_per)))
        self._peak = lp.cols(b.peak, [None])
        self._rhs = np.full((self.n_rows, n_per), np.inf)

    def activate(self, lp: PersistentLP, rows: np.ndarray) -> None:
        """Hand lazy rows ``rows`` to the solver (with their current right-hand sides)."""
        n_per = self.horizon.n_periods
        for r in np.asarray(rows).tolist():
            if self.active[r]:
                continue
            lp.add_constraints(
                [self.b.limit[r, j] for j in range(n_per)]
                + [self.b.over_cap[r, j] for j in range(n_per)]
            )
            self._bind_row(lp, r)
            self.active[r] = True
            lp.push(self.b.rhs, self._rhs[r], key=f"limit rhs {r}")

    def violated(self, flex_kw: np.ndarray, tol_kw: float = 1e-3) -> np.ndarray:
        """Inactive rows that the allocation ``flex_kw`` ``(n, N)`` would violate."""
        flow = self.sign[:, None] * (self.coef @ flex_kw)
        bad = np.any(flow > self._rhs + tol_kw, axis=1)
        return np.flatnonzero(bad & ~self.active)

    def push(
        self, lp: PersistentLP, rhs_kw: np.ndarray, inflexible_kw: np.ndarray, sunk_peak_kw: float
    ) -> None:
        b = self.b
        self._rhs = np.asarray(rhs_kw, dtype=float).copy()
        for r in np.flatnonzero(self.active).tolist():
            lp.push(b.rhs, self._rhs[r], key=f"limit rhs {r}")
        lp.push(b.peak_rhs, -np.asarray(inflexible_kw, dtype=float))
        lp.push(b.peak_lb, np.array([sunk_peak_kw]))

    def read(self, lp: PersistentLP) -> tuple[np.ndarray, np.ndarray, float]:
        """``(over_kw (R, N), controllable total (N,), peak_kw)``."""
        return lp.values(self._over), lp.values(self._total), float(lp.values(self._peak)[0])
