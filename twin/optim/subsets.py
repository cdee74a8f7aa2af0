"""Some of the households of a :class:`~twin.optim.devices.DeviceSet`: their devices, their
re-plan data, and putting their plans back together.

:class:`Subset` maps positions (into ``DeviceSet.households``) to the positions of their
heat pumps, EVs, batteries, hot-water tanks and V2G cars, and takes the matching rows of every
per-device array. Used by :class:`twin.optim.allocation.GroupedAllocation`, which solves the
DSO's LP per group of cable branches.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from twin.optim.blocks import DevicePlan
from twin.optim.devices import DeviceInputs, DeviceSet

__all__ = ["Subset", "merge_plans"]

# DeviceSet arrays by the device they are per (positions: hp/ev/bat/tk into households,
# tk_hp into the heat pumps, v2g into the EVs)
_SET_FIELDS = {
    "hp": ("hybrid", "r_k_per_kw", "a_step", "setpoint_c", "hp_q_max_kw", "hp_t_bivalent_c",
           "hp_standby_kw"),
    "ev": ("ev_capacity_kwh", "ev_p_max_kw", "ev_need_kwh", "ev_reserve_kwh"),
    "bat": ("bat_capacity_kwh", "bat_p_max_kw", "bat_eta"),
    "tk": ("tk_loss_per_h", "tk_e_guard_kwh", "tk_e_max_kwh", "tk_e_full_kwh", "tk_t_set_c",
           "tk_persons", "tk_litres"),
    "v2g": ("v2g_p_max_kw", "v2g_reserve_kwh", "v2g_wear_eur_per_kwh"),
}  # fmt: skip
# DeviceInputs arrays by device (first axis); win_jump_k and k0 are shared
_INPUT_FIELDS = {
    "hp": ("th_rhs_k", "cop", "hp_p_max_kw", "d0_k", "d_lo_k", "d_hi_k", "win_lb_k",
           "win_ub_k", "win_shift_k"),
    "ev": ("ev_p_max_kw", "ev_trip_kwh", "ev_soc0_kwh", "ev_soc_min_kwh"),
    "bat": ("bat_soc0_kwh",),
    "hh": ("p_inflex_kw",),
    "tk": ("tk_cop", "tk_draw_kw", "tk_p_max_kw", "tk_e0_kwh", "tk_e_min_kwh"),
    "v2g": ("v2g_p_max_kw", "v2g_keep_kwh"),
}  # fmt: skip
# DevicePlan arrays by device
_PLAN_FIELDS = {
    "hp": ("d_k", "p_hp_kw", "q_boiler_kw", "swing_over_kh"),
    "ev": ("p_ev_kw", "ev_soc_kwh"),
    "bat": ("p_bat_kw", "bat_soc_kwh"),
    "hh": ("p_flex_kw",),
    "tk": ("p_dhw_kw", "e_tank_kwh"),
    "v2g": ("p_v2g_kw",),
}


@dataclass(frozen=True)
class Subset:
    """Households ``pos`` (sorted positions into ``dev.households``) of ``dev``."""

    dev: DeviceSet
    pos: np.ndarray

    def sel(self, kind: str) -> np.ndarray:
        """Positions into the full set's ``kind`` arrays (``hh``, ``hp``, ``ev``, ``bat``,
        ``tk``, ``v2g``) of this subset's devices, in order."""
        d, pos = self.dev, np.asarray(self.pos, dtype=np.int64)
        if kind == "hh":
            return pos
        if kind in ("hp", "ev", "bat", "tk"):
            return np.flatnonzero(np.isin(getattr(d, kind), pos))
        if kind == "v2g":
            return np.flatnonzero(np.isin(d.v2g, self.sel("ev")))
        raise ValueError(kind)

    def devices(self) -> DeviceSet:
        """The subset's :class:`DeviceSet` (positions renumbered)."""
        d = self.dev
        sel = {k: self.sel(k) for k in ("hp", "ev", "bat", "tk", "v2g")}
        new: dict[str, object] = {"households": d.households[self.pos]}
        for kind in ("hp", "ev", "bat", "tk"):
            new[kind] = np.searchsorted(self.pos, getattr(d, kind)[sel[kind]]).astype(np.int64)
        new["tk_hp"] = np.searchsorted(sel["hp"], d.tk_hp[sel["tk"]]).astype(np.int64)
        new["v2g"] = np.searchsorted(sel["ev"], d.v2g[sel["v2g"]]).astype(np.int64)
        n_of = {"hp": d.n_hp, "ev": d.n_ev, "bat": d.n_bat, "tk": d.n_tk, "v2g": d.n_v2g}
        for kind, names in _SET_FIELDS.items():
            for name in names:
                a = np.asarray(getattr(d, name))
                # an optional array left empty (its default) stays empty
                new[name] = a[sel[kind]] if len(a) == n_of[kind] else a
        return dataclasses.replace(d, **new)

    def inputs(self, inp: DeviceInputs) -> DeviceInputs:
        """The subset's rows of a re-plan's data (relaxations of its households only)."""
        new: dict[str, object] = {}
        for kind, names in _INPUT_FIELDS.items():
            idx = self.sel(kind)
            for name in names:
                a = getattr(inp, name)
                if a is not None:
                    new[name] = np.asarray(a)[idx]
        hh = set(self.dev.households[self.pos].tolist())
        new["relaxations"] = [r for r in inp.relaxations if r.household in hh]
        return dataclasses.replace(inp, **new)


def merge_plans(dev: DeviceSet, parts: list[tuple[Subset, DevicePlan]]) -> DevicePlan:
    """One plan of all of ``dev`` from the plans of subsets that cover it."""
    counts = {"hh": dev.n, "hp": dev.n_hp, "ev": dev.n_ev, "bat": dev.n_bat}
    counts |= {"tk": dev.n_tk, "v2g": dev.n_v2g}
    out: dict[str, np.ndarray | None] = {}
    for kind, names in _PLAN_FIELDS.items():
        for name in names:
            pieces = [(s.sel(kind), getattr(p, name)) for s, p in parts]
            given = [(i, a) for i, a in pieces if a is not None]
            if not given:
                out[name] = None
                continue
            shape = next(np.asarray(a).shape[1:] for _, a in given)
            full = np.zeros((counts[kind], *shape))
            for i, a in given:
                full[i] = a
            out[name] = full
    return DevicePlan(**out)
