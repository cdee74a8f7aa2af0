"""Linear feeder model (LinDistFlow around an operating point, default no load) for the optimiser.

Per phase (unbalanced loads, ``(..., n_load, 3)`` arrays of phases a, b, c): a line's flow on
phase ``f`` is the sum of the phase-``f`` loads downstream (:meth:`~LinearFeederModel.
line_phase_p_kw`, the same ``A_line`` for every phase), the phase voltages follow a
three-phase LinDistFlow with each branch's self and mutual impedance ``Zs = (Z0 + 2 Z1)/3``,
``Zm = (Z0 - Z1)/3`` (:meth:`~LinearFeederModel.phase_vm_pu`), and a line's phase current is
``|S_phase| / (U_phase vm_up)`` (:meth:`~LinearFeederModel.line_phase_i_ka`); measured error
against the unbalanced AC solution in ``tests/test_grid_asym_linear.py``.

The feeder must be radial (a tree rooted at the external grid). For load powers ``p`` (kW,
consumption positive, injection negative) and ``q`` (kvar) at the chosen ``net.load`` rows:

* **flows** (lossless DistFlow): the active power entering a branch at its upstream end is the
  sum of the loads downstream of it, ``line_p_kw = line_p0_kw + A_line @ p`` (signed in the
  ``from_bus -> to_bus`` direction of ``net.line``, like pandapower's ``p_from_mw``), and
  ``trafo_p_kw = trafo_p0_kw + A_trafo @ p`` at the HV terminal; the same matrices map ``q``.
* **voltages** (linearised DistFlow): ``vm_pu = vm0_pu + V_p @ p + V_q @ q`` with
  ``V_p[b, l] = -sum(R_e) / (V_base^2 * vm0_b)`` over the branches ``e`` shared by the paths
  from the root to bus ``b`` and to the bus of load ``l`` (``X_e`` for ``V_q``); the
  transformer's series impedance is referred to its LV side.
* the model is linearised around an operating point ``(p_ref_kw, q_ref_kvar)``, by default
  no load: ``y = y_ref + A (p - p_ref)`` where ``y_ref`` comes from one pandapower AC power
  flow at that point, stored as the constant terms ``*0 = y_ref - A p_ref``. At no load they
  carry the transformer's iron losses and magnetising current, cable charging, and the no-load
  voltage set by the external grid and the tap position; at a loaded point they also carry
  that point's losses and voltage drop (the voltage divisor is then the loaded voltage).

Loadings: a line's current is ``|S| / (sqrt(3) V)``, so ``line_loading_pct = 100 * |S| /
(line_rating_kva * vm_up)`` with ``vm_up`` the model's voltage at the line's upstream bus and
``line_rating_kva`` the rating at nominal voltage; the transformer loading is power based,
``100 * |S_hv| / trafo_rating_kva`` (as in :mod:`twin.grid.powerflow`). For a linear
programme, bound ``|S|`` by a polygon in (P, Q) or bound P with a power-factor assumption, and
use a conservative voltage (e.g. 0.95 p.u.) in the line rating.

What is neglected: network losses in the flows (the transformer power is underestimated by
the losses, 1-3 % at high load) and the second-order voltage terms, so the model is
*optimistic*: lower transformer loading and higher voltages than the AC solution.

Measured error against the AC batch power flow over a year of SimBench 1-LV-urban6 with its
profiles x3, 11 kW EV charging at 30 % of the households and 4 kWp PV at another 30 %
(transformer up to 114 %, reverse flow at noon; ``tests/test_grid_linear.py``):

=======================  ==============  ================
quantity                 max abs error   99th percentile
=======================  ==============  ================
transformer loading      4.0 %-points    1.9 %-points
line loading             3.0 %-points    0.44 %-points
bus voltage              0.0048 p.u.     0.0018 p.u.
=======================  ==============  ================

The test asserts 6 / 3 %-points, 5 / 1 %-points and 0.008 / 0.003 p.u. An optimiser using
this model should keep a margin of about 4 % of the transformer rating and 0.005 p.u.

Linearised instead at a loaded point (``p_ref_kw`` = mean of the 1 % most loaded steps),
the error where it matters shrinks: at steps above 80 % transformer loading the transformer
error is -1.8 ... +0.4 %-points (instead of -4.0 ... -1.5) and the voltage error at most
0.0017 p.u. (instead of 0.0048); the price is a pessimistic bias at light load (up to +4.9
%-points, where no limit binds). Use that for the optimiser's constraints, the no-load
default for a transparent, operating-point-free model.
"""

from __future__ import annotations

import copy
from collections import deque

import numpy as np
import pandapower as pp
from pandapower.auxiliary import pandapowerNet

from twin.grid.powerflow import (
    LINE_ZERO_SEQUENCE_DEFAULT,
    LineZeroSequence,
    line_zero_sequence_per_km,
)
from twin.grid.ratings import (
    line_ampacity_ka,
    line_rating_kva,
    station_mask,
    station_rating_kva,
    trafo_unit_rating_kva,
)

__all__ = ["LinearFeederModel"]

# angle of phase a, b, c (b lags a by 120 degrees)
_PHASE_ANGLE = np.deg2rad([0.0, -120.0, 120.0])


def _closed(net: pandapowerNet, et: str, element: int, bus: int) -> bool:
    sw = net.switch
    if not len(sw):
        return True
    m = (sw["et"] == et) & (sw["element"] == element) & (sw["bus"] == bus)
    return bool(sw.loc[m, "closed"].astype(bool).all())


class LinearFeederModel:
    """Linear map from load powers to flows, loadings and voltages of a radial feeder.

    Parameters
    ----------
    net : pandapowerNet
        Radial feeder with one in-service external grid.
    load_idx : array of int, optional
        ``net.load`` index labels the model's columns refer to (default: all loads, in row
        order). Loads left out are taken as zero; out-of-service loads get zero columns.
    p_ref_kw, q_ref_kvar : np.ndarray, optional
        ``(n_load,)`` operating point to linearise around (default: zero load).

    Attributes
    ----------
    load_idx : np.ndarray
        Column labels (``net.load`` index).
    bus_index, line_index, trafo_index : np.ndarray
        Row labels of the voltage, line and transformer matrices.
    A_line : np.ndarray
        ``(n_line, n_load)`` d line_p_from / d p (entries 0, +1 or -1); same for q.
    A_trafo : np.ndarray
        ``(n_trafo, n_load)`` d trafo_p_hv / d p (entries 0 or 1; parallel units between the
        same buses share the station's flow in proportion to their admittances).
    V_p, V_q : np.ndarray
        ``(n_bus, n_load)`` voltage sensitivities, p.u. per kW and per kvar.
    vm0_pu, line_p0_kw, line_q0_kvar, trafo_p0_kw, trafo_q0_kvar : np.ndarray
        Constant terms of the affine model (the AC no-load state for the default operating
        point).
    line_rating_kva : np.ndarray
        ``sqrt(3) * vn_kv * max_i_ka * df * parallel * 1000`` (kVA at nominal voltage).
    trafo_rating_kva : np.ndarray
        ``sn_mva * 1000 * parallel * df`` (:mod:`twin.grid.ratings`).
    station_units, A_station, station_p0_kw, station_q0_kvar, station_rating_kva
        The station (:func:`twin.grid.ratings.station_mask`): which transformers it is made
        of, the sum of their sensitivity rows and constant terms, and its rating.
    line_up_bus_pos : np.ndarray
        Position (in ``bus_index``) of each line's upstream bus (-1 if not energised).
    """

    def __init__(
        self,
        net: pandapowerNet,
        load_idx: np.ndarray | None = None,
        p_ref_kw: np.ndarray | None = None,
        q_ref_kvar: np.ndarray | None = None,
        line_zero_sequence: LineZeroSequence = LINE_ZERO_SEQUENCE_DEFAULT,
    ) -> None:
        self.load_idx = (
            net.load.index.to_numpy() if load_idx is None else np.asarray(load_idx, dtype=np.int64)
        )
        self.bus_index = net.bus.index.to_numpy()
        self.line_index = net.line.index.to_numpy()
        self.trafo_index = net.trafo.index.to_numpy()
        n_bus, n_line, n_tr = len(self.bus_index), len(self.line_index), len(self.trafo_index)
        bus_pos = {int(b): i for i, b in enumerate(self.bus_index)}
        vn_kv = net.bus["vn_kv"].to_numpy(float)
        bus_ok = net.bus["in_service"].astype(bool).to_numpy()

        # branches: (kind, position, bus_a, bus_b, r_ohm, x_ohm, v_base_kv); z0 per branch
        branches: list[tuple[str, int, int, int, float, float, float]] = []
        z0: list[complex] = []
        if len(net.line):
            r0_km, x0_km, _, _ = line_zero_sequence_per_km(net.line, line_zero_sequence)
        for k, (idx, row) in enumerate(net.line.iterrows()):
            fb, tb = int(row["from_bus"]), int(row["to_bus"])
            if not (row["in_service"] and bus_ok[bus_pos[fb]] and bus_ok[bus_pos[tb]]):
                continue
            if not (_closed(net, "l", idx, fb) and _closed(net, "l", idx, tb)):
                continue
            length, par = float(row["length_km"]), float(row["parallel"])
            branches.append(
                (
                    "line",
                    k,
                    fb,
                    tb,
                    float(row["r_ohm_per_km"]) * length / par,
                    float(row["x_ohm_per_km"]) * length / par,
                    float(vn_kv[bus_pos[fb]]),
                )
            )
            z0.append(complex(r0_km[k], x0_km[k]) * length / par)
        # transformers: parallel units between the same two buses are one station branch
        # (their impedances in parallel); each unit carries its admittance's share of the flow
        units: dict[tuple[int, int], list[tuple[int, complex, float]]] = {}
        for k, (idx, row) in enumerate(net.trafo.iterrows()):
            hb, lb = int(row["hv_bus"]), int(row["lv_bus"])
            if not (row["in_service"] and bus_ok[bus_pos[hb]] and bus_ok[bus_pos[lb]]):
                continue
            if not (_closed(net, "t", idx, hb) and _closed(net, "t", idx, lb)):
                continue
            z_base = float(row["vn_lv_kv"]) ** 2 / (float(row["sn_mva"]) * float(row["parallel"]))
            z = float(row["vk_percent"]) / 100 * z_base
            r = float(row["vkr_percent"]) / 100 * z_base
            zc = complex(r, float(np.sqrt(max(z * z - r * r, 0.0))))
            units.setdefault((hb, lb), []).append((k, zc, float(row["vn_lv_kv"])))
        self._trafo_share: dict[int, list[tuple[int, float]]] = {}
        for (hb, lb), group in units.items():
            y = np.array([1.0 / zc for _, zc, _ in group])
            z_eq = group[0][1] if len(group) == 1 else 1.0 / y.sum()
            self._trafo_share[len(branches)] = [
                (k, float(abs(yk) / np.abs(y).sum()))
                for (k, _, _), yk in zip(group, y, strict=True)
            ]
            branches.append(("trafo", group[0][0], hb, lb, z_eq.real, z_eq.imag, group[0][2]))
            # Dyn / YNd: the LV side sees the leakage impedance in the zero sequence too
            z0.append(complex(z_eq.real, z_eq.imag))
        if len(net.switch):
            for _idx, row in net.switch[
                (net.switch["et"] == "b") & net.switch["closed"].astype(bool)
            ].iterrows():
                a, b = int(row["bus"]), int(row["element"])
                if bus_ok[bus_pos[a]] and bus_ok[bus_pos[b]]:
                    branches.append(("switch", -1, a, b, 0.0, 0.0, float(vn_kv[bus_pos[a]])))
                    z0.append(0j)

        eg = net.ext_grid[net.ext_grid["in_service"].astype(bool)]
        if len(eg) != 1:
            raise ValueError(f"linear model needs exactly one in-service ext_grid, found {len(eg)}")
        root = bus_pos[int(eg["bus"].iloc[0])]

        # breadth-first search from the root: parent branch of every reachable bus
        adj: list[list[int]] = [[] for _ in range(n_bus)]
        for e, br in enumerate(branches):
            adj[bus_pos[br[2]]].append(e)
            adj[bus_pos[br[3]]].append(e)
        parent_edge = np.full(n_bus, -1)
        seen = np.zeros(n_bus, dtype=bool)
        seen[root] = True
        order = [root]
        queue = deque([root])
        used_edges = 0
        while queue:
            u = queue.popleft()
            for e in adj[u]:
                a, b = bus_pos[branches[e][2]], bus_pos[branches[e][3]]
                v = b if a == u else a
                if e == parent_edge[u]:
                    continue
                if seen[v]:
                    raise ValueError(
                        "linear model needs a radial feeder, but the net has a mesh "
                        f"(at bus {self.bus_index[v]}): open a switch to make it radial"
                    )
                seen[v] = True
                parent_edge[v] = e
                used_edges += 1
                order.append(v)
                queue.append(v)
        self._energized = seen

        # path matrix: P[e, b] = 1 if branch e lies on the path root -> bus b
        n_e = len(branches)
        path = np.zeros((n_e, n_bus))
        for v in order[1:]:
            e = parent_edge[v]
            a, b = bus_pos[branches[e][2]], bus_pos[branches[e][3]]
            up = a if b == v else b
            path[:, v] = path[:, up]
            path[e, v] = 1.0

        load = net.load.loc[self.load_idx]
        load_bus_pos = np.array([bus_pos[int(b)] for b in load["bus"]], dtype=np.int64)
        load_on = load["in_service"].astype(bool).to_numpy() & seen[load_bus_pos]
        m_load = path[:, load_bus_pos] * load_on[None, :]  # (n_e, n_load)

        # upstream side of each branch
        def upstream_is_first(e: int) -> bool:
            a, b = bus_pos[branches[e][2]], bus_pos[branches[e][3]]
            return parent_edge[b] == e and seen[a]

        self.A_line = np.zeros((n_line, len(self.load_idx)))
        self.A_trafo = np.zeros((n_tr, len(self.load_idx)))
        self.line_up_bus_pos = np.full(n_line, -1)
        for e, br in enumerate(branches):
            if not (seen[bus_pos[br[2]]] and seen[bus_pos[br[3]]]):
                continue
            sign = 1.0 if upstream_is_first(e) else -1.0
            up = bus_pos[br[2]] if sign > 0 else bus_pos[br[3]]
            if br[0] == "line":
                self.A_line[br[1]] = sign * m_load[e]
                self.line_up_bus_pos[br[1]] = up
            elif br[0] == "trafo":
                for k, share in self._trafo_share[e]:
                    self.A_trafo[k] = share * sign * m_load[e]

        # operating point (default: no load) from one pandapower AC power flow
        n_ld = len(self.load_idx)
        p_ref = np.zeros(n_ld) if p_ref_kw is None else np.asarray(p_ref_kw, dtype=float)
        q_ref = np.zeros(n_ld) if q_ref_kvar is None else np.asarray(q_ref_kvar, dtype=float)
        if p_ref.shape != (n_ld,) or q_ref.shape != (n_ld,):
            raise ValueError(f"p_ref_kw and q_ref_kvar must have shape ({n_ld},)")
        net0 = copy.deepcopy(net)
        net0.load["p_mw"] = 0.0
        net0.load["q_mvar"] = 0.0
        net0.load["scaling"] = 1.0
        net0.load.loc[self.load_idx, "p_mw"] = p_ref / 1e3
        net0.load.loc[self.load_idx, "q_mvar"] = q_ref / 1e3
        if len(net0.sgen):
            net0.sgen["in_service"] = False
        pp.runpp(
            net0,
            trafo_model="pi",
            trafo_loading="power",
            calculate_voltage_angles=True,
            tolerance_mva=1e-10,
            lightsim2grid=False,
            numba=False,
        )
        vm_ref = net0.res_bus["vm_pu"].to_numpy(float)

        # voltage sensitivities (LinDistFlow, linearised around the operating point)
        r = np.array([br[4] for br in branches])
        x = np.array([br[5] for br in branches])
        vb2 = np.array([(br[6] * 1e3) ** 2 for br in branches])
        vref = np.where(np.isfinite(vm_ref) & (vm_ref > 0), vm_ref, 1.0)
        # kW -> W: * 1e3
        self.V_p = -(path.T * (r / vb2)) @ m_load * 1e3 / vref[:, None]
        self.V_q = -(path.T * (x / vb2)) @ m_load * 1e3 / vref[:, None]
        # per phase: self and mutual impedance of each branch, Zs = (Z0 + 2 Z1) / 3 and
        # Zm = (Z0 - Z1) / 3, summed over the shared paths; phase voltage base^2 = vb2 / 3
        z1 = r + 1j * x
        z0a = np.array(z0, dtype=complex)
        vb2_ph = vb2 / 3.0
        self._Zs = (path.T * ((z0a + 2 * z1) / 3 / vb2_ph)) @ m_load * 1e3 / vref[:, None]
        self._Zm = (path.T * ((z0a - z1) / 3 / vb2_ph)) @ m_load * 1e3 / vref[:, None]

        # constant terms: y = y_ref + A (p - p_ref)  =>  y0 = y_ref - A p_ref
        self.vm0_pu = vm_ref - self.V_p @ p_ref - self.V_q @ q_ref
        res_line, res_trafo = net0.res_line, net0.res_trafo
        self.line_p0_kw = (
            res_line["p_from_mw"].fillna(0.0).to_numpy(float) * 1e3 - self.A_line @ p_ref
        )
        self.line_q0_kvar = (
            res_line["q_from_mvar"].fillna(0.0).to_numpy(float) * 1e3 - self.A_line @ q_ref
        )
        self.trafo_p0_kw = (
            res_trafo["p_hv_mw"].fillna(0.0).to_numpy(float) * 1e3 - self.A_trafo @ p_ref
        )
        self.trafo_q0_kvar = (
            res_trafo["q_hv_mvar"].fillna(0.0).to_numpy(float) * 1e3 - self.A_trafo @ q_ref
        )

        self.line_rating_kva = line_rating_kva(net)
        #: per-phase apparent-power rating of each line at nominal voltage, kVA
        self.line_phase_rating_kva = self.line_rating_kva / 3.0
        self._line_vph_kv = net.bus.loc[net.line["from_bus"].to_numpy(), "vn_kv"].to_numpy(
            float
        ) / np.sqrt(3.0)
        self._line_rating_ka = line_ampacity_ka(net)
        self.trafo_rating_kva = trafo_unit_rating_kva(net)
        # the station: its transformers together (parallel units are one station)
        self.station_units = station_mask(net)
        self.station_rating_kva = station_rating_kva(net)
        self.A_station = self.A_trafo[self.station_units].sum(axis=0)
        self.station_p0_kw = float(self.trafo_p0_kw[self.station_units].sum())
        self.station_q0_kvar = float(self.trafo_q0_kvar[self.station_units].sum())

    # -- helpers --------------------------------------------------------------------------
    def _pq(
        self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        p = np.asarray(p_load_kw, dtype=float)
        q = np.zeros_like(p) if q_load_kvar is None else np.asarray(q_load_kvar, dtype=float)
        if p.shape[-1] != len(self.load_idx) or q.shape != p.shape:
            raise ValueError(
                f"loads must have last dimension {len(self.load_idx)} (and p, q equal shapes); "
                f"got {p.shape} and {q.shape}"
            )
        return p, q

    # -- flows ----------------------------------------------------------------------------
    def trafo_p_kw(
        self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Active power into each transformer at its HV side, kW, shape ``(..., n_trafo)``."""
        p, _ = self._pq(p_load_kw, q_load_kvar)
        return self.trafo_p0_kw + p @ self.A_trafo.T

    def trafo_q_kvar(
        self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Reactive power into each transformer at its HV side, kvar."""
        _, q = self._pq(p_load_kw, q_load_kvar)
        return self.trafo_q0_kvar + q @ self.A_trafo.T

    def trafo_s_kva(
        self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Apparent power through each transformer (HV side), kVA."""
        return np.hypot(
            self.trafo_p_kw(p_load_kw, q_load_kvar), self.trafo_q_kvar(p_load_kw, q_load_kvar)
        )

    def trafo_loading_pct(
        self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Power-based transformer loading, %."""
        return 100.0 * self.trafo_s_kva(p_load_kw, q_load_kvar) / self.trafo_rating_kva

    def line_p_kw(self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray | None = None) -> np.ndarray:
        """Active power entering each line at its ``from_bus``, kW, ``(..., n_line)``."""
        p, _ = self._pq(p_load_kw, q_load_kvar)
        return self.line_p0_kw + p @ self.A_line.T

    def line_q_kvar(
        self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Reactive power entering each line at its ``from_bus``, kvar."""
        _, q = self._pq(p_load_kw, q_load_kvar)
        return self.line_q0_kvar + q @ self.A_line.T

    def vm_pu(self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray | None = None) -> np.ndarray:
        """Bus voltage magnitudes, p.u., ``(..., n_bus)`` in ``net.bus`` order."""
        p, q = self._pq(p_load_kw, q_load_kvar)
        return self.vm0_pu + p @ self.V_p.T + q @ self.V_q.T

    def line_loading_pct(
        self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Current-based line loading, %: ``|S| / (rating * vm_upstream)``."""
        s = np.hypot(
            self.line_p_kw(p_load_kw, q_load_kvar), self.line_q_kvar(p_load_kw, q_load_kvar)
        )
        vm = self.vm_pu(p_load_kw, q_load_kvar)
        up = np.where(self.line_up_bus_pos >= 0, self.line_up_bus_pos, 0)
        v_up = np.clip(vm[..., up], 0.5, None)
        out = 100.0 * s / (self.line_rating_kva * v_up)
        return np.where(self.line_up_bus_pos >= 0, out, 0.0)

    # -- per phase ------------------------------------------------------------------------
    def _pq_phase(
        self, p_kw: np.ndarray, q_kvar: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        p = np.asarray(p_kw, dtype=float)
        q = np.zeros_like(p) if q_kvar is None else np.asarray(q_kvar, dtype=float)
        if p.shape[-2:] != (len(self.load_idx), 3) or q.shape != p.shape:
            raise ValueError(
                f"per-phase loads must have trailing shape ({len(self.load_idx)}, 3) (and p, q "
                f"equal shapes); got {p.shape} and {q.shape}"
            )
        return p, q

    def line_phase_p_kw(
        self, p_phase_kw: np.ndarray, q_phase_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Active power per phase entering each line at its ``from_bus``, ``(..., n_line, 3)``.

        Lossless and per phase: a line's phase-``a`` flow is the sum of the phase-``a`` loads
        downstream (``A_line`` for every phase; the no-load term is split equally).
        """
        p, _ = self._pq_phase(p_phase_kw, q_phase_kvar)
        return self.line_p0_kw[:, None] / 3.0 + np.einsum("lj,...jp->...lp", self.A_line, p)

    def line_phase_q_kvar(
        self, p_phase_kw: np.ndarray, q_phase_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Reactive power per phase entering each line at its ``from_bus``, kvar."""
        _, q = self._pq_phase(p_phase_kw, q_phase_kvar)
        return self.line_q0_kvar[:, None] / 3.0 + np.einsum("lj,...jp->...lp", self.A_line, q)

    def phase_vm_pu(
        self, p_phase_kw: np.ndarray, q_phase_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Phase-to-neutral voltage magnitudes, p.u., ``(..., n_bus, 3)`` (linear).

        Three-phase LinDistFlow: the drop on phase ``f`` along the shared path is
        ``Re(Zs S_f*) + sum over the other phases g of Re(Zm S_g* exp(j(theta_g - theta_f)))``
        divided by the squared phase voltage, with ``Zs = (Z0 + 2 Z1)/3``, ``Zm = (Z0 -
        Z1)/3`` of every branch (lines: their zero sequence as in the AC engine;
        transformer: ``Z0 = Z1``, Dyn). Balanced loads give :meth:`vm_pu`.
        """
        p, q = self._pq_phase(p_phase_kw, q_phase_kvar)
        out = np.repeat(self.vm0_pu[..., None], 3, axis=-1) * np.ones(p.shape[:-2] + (1, 1))
        for f in range(3):
            for g in range(3):
                z = (
                    self._Zs
                    if f == g
                    else self._Zm * np.exp(1j * (_PHASE_ANGLE[g] - _PHASE_ANGLE[f]))
                )
                out[..., f] -= p[..., g] @ z.real.T + q[..., g] @ z.imag.T
        return out

    def line_phase_i_ka(
        self, p_phase_kw: np.ndarray, q_phase_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Phase current of each line, kA, ``(..., n_line, 3)``: ``|S_phase| / (U_phase
        vm_up)`` with the per-phase flows of :meth:`line_phase_p_kw` and the upstream bus's
        phase voltage from :meth:`phase_vm_pu`.

        For a linear programme the per-phase flows are linear in the per-phase loads; bound
        ``|S_phase| <= U_phase * I_max * vm_min`` by a polygon in (P, Q), or P alone with a
        power-factor assumption, per phase (so that a band that is safe in total but
        overloads one phase is not allocated).
        """
        s = np.hypot(
            self.line_phase_p_kw(p_phase_kw, q_phase_kvar),
            self.line_phase_q_kvar(p_phase_kw, q_phase_kvar),
        )
        vm = self.phase_vm_pu(p_phase_kw, q_phase_kvar)
        up = np.where(self.line_up_bus_pos >= 0, self.line_up_bus_pos, 0)
        v_up = np.clip(vm[..., up, :], 0.5, None)
        i = s / (self._line_vph_kv[:, None] * v_up) / 1e3
        return np.where(self.line_up_bus_pos[:, None] >= 0, i, 0.0)

    def line_phase_loading_pct(
        self, p_phase_kw: np.ndarray, q_phase_kvar: np.ndarray | None = None
    ) -> np.ndarray:
        """Current-based loading per phase, % of the ampacity, ``(..., n_line, 3)``."""
        i = self.line_phase_i_ka(p_phase_kw, q_phase_kvar)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 100.0 * i / self._line_rating_ka[:, None]
