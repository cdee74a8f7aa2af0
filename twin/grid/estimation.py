"""Batch distribution system state estimation (DSSE) with power-grid-model, and the
pandapower reference.

:class:`BatchStateEstimator` builds one power-grid-model (PGM) model of the feeder with its
sensors once (the net converted by :func:`twin.grid.powerflow.pgm_input_from_net`, plus
sensor tables) and estimates every step of a measurement series in one batch call per chunk
of steps: weighted least squares, symmetric, Newton-Raphson (the WLS proper) or iterative
linear (PGM's default, the only one that takes current sensors; it linearises the power and
voltage-magnitude measurements around the last estimate, which makes it a slightly different
estimator: on the default feeder it weighs voltage readings so that adding them made the
estimated transformer loading ~5 % worse on average, where Newton-Raphson's did not change).

Sensors (what :class:`SensorLayout` places; the values and their standard deviations arrive
per step in :class:`SensorData`):

* a **power sensor on every load** (``measured_terminal_type=load``, consumption positive):
  a smart-meter reading where one arrived, else a pseudo-measurement with a wide standard
  deviation (:mod:`twin.measure` decides which);
* **voltage sensors** at the buses of the loads whose meter reads voltage (a missing reading
  is given a standard deviation of :data:`NO_READING_SIGMA_PU`, i.e. no weight);
* at each station transformer (optional) a **power sensor on its LV terminal** and a
  **voltage sensor on its LV bus**;
* on each cable leaving the station's LV busbar (optional) a **current sensor** at the
  station end: magnitude and the angle of the current relative to the local voltage
  (``local_angle``; PGM supports current sensors in the iterative-linear method only);
* a weak **pseudo voltage at the source** (the MV bus at the external grid's set-point,
  :attr:`SensorLayout.source_sigma_pu`): without it a feeder measured by smart meters only
  has no voltage reference once their voltage readings are late.

Steps the estimator cannot solve (PGM raises ``NotObservableError`` or does not converge)
are reported in :attr:`Estimate.observable` and their rows are NaN: a run never fails for
an unobservable step. The estimate is returned as a
:class:`~twin.grid.powerflow.PowerFlowResult`, so every grid KPI (:mod:`twin.grid.compliance`)
can be computed on what the DSO estimates exactly as on the truth.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace

import numpy as np
from pandapower.auxiliary import pandapowerNet
from power_grid_model import (
    AngleMeasurementType,
    CalculationMethod,
    CalculationType,
    ComponentType,
    MeasuredTerminalType,
    PowerGridModel,
    initialize_array,
)
from power_grid_model.errors import PowerGridError

from twin.grid.powerflow import (
    PowerFlowResult,
    pgm_input_from_net,
    reused_batch,
    solve_batch,
)
from twin.grid.ratings import station_mask, trafo_unit_rating_kva

__all__ = [
    "ERROR_TOLERANCE",
    "NO_READING_SIGMA_PU",
    "BatchStateEstimator",
    "Estimate",
    "SensorData",
    "SensorLayout",
    "SensorTruth",
    "StationFlow",
    "cable_head_lines",
    "pandapower_estimate",
    "source_ends",
]

#: Standard deviation given to a voltage sensor whose reading is missing: no weight.
NO_READING_SIGMA_PU = 1e3
#: Default convergence tolerance per PGM method (p.u.).
ERROR_TOLERANCE = {"iterative_linear": 1e-7, "newton_raphson": 1e-6}


#: Batches of up to this many steps (the DSO's estimates in the loop) are passed to PGM as
#: row-based arrays, one buffer per component instead of one per attribute: a quarter less
#: of PGM's per-call overhead (~0.4 -> 0.3 ms for one step of the default feeder), the same
#: results. (Such batches normally run through a reused batch,
#: :func:`twin.grid.powerflow.reused_batch`, whose own arrays are row-based; this is the
#: layout of PGM's public path, its fallback.)
ROW_BASED_UP_TO = 96


def row_based(update: dict) -> dict:
    """A columnar PGM batch update (``{component: {attribute: (n, m) array}}``, every row of
    the component in input order) as row-based arrays (the same data; no ids needed)."""
    out = {}
    for comp, cols in update.items():
        shape = next(iter(cols.values())).shape
        arr = initialize_array("update", comp, shape)
        for name, values in cols.items():
            arr[name] = values
        out[comp] = arr
    return out


def cable_head_lines(net: pandapowerNet) -> tuple[np.ndarray, np.ndarray]:
    """Positions (``net.line`` row order) of the in-service cables that leave a station
    transformer's LV bus, and whether the station end is the line's ``from_bus``."""
    mask = station_mask(net)
    lv = set(net.trafo.loc[mask, "lv_bus"].astype(int)) if mask.any() else set()
    line = net.line
    on = line["in_service"].astype(bool).to_numpy()
    fb = line["from_bus"].astype(int).isin(lv).to_numpy() & on
    tb = line["to_bus"].astype(int).isin(lv).to_numpy() & on
    pos = np.flatnonzero(fb | tb)
    return pos, fb[pos]


class StationFlow:
    """What a station sensor reads, step by step while the simulation runs: the active and
    reactive power into each station transformer at its LV terminal (negative while the MV
    grid supplies the feeder, as in :class:`SensorTruth`), from a power flow of the loads of
    the steps just simulated (power-grid-model, the same model and method as
    :meth:`BatchStateEstimator.sensor_truth`, only the transformer outputs asked for).

    Parameters
    ----------
    net : pandapowerNet
        The feeder (``asymmetric_load`` rows are taken as balanced loads of their constant
        total, as the run's balanced power flow takes them: :func:`twin.grid.phases.balanced_equivalent`).
    """

    def __init__(self, net: pandapowerNet) -> None:
        from twin.grid.phases import balanced_equivalent

        net, self._p_extra_kw, self._q_extra_kvar = balanced_equivalent(net)
        data, ids = pgm_input_from_net(net)
        tr = data.get(ComponentType.transformer)
        self.units = np.flatnonzero(station_mask(net)) if tr is not None else np.zeros(0, int)
        lv_bus = net.trafo["lv_bus"].to_numpy()[self.units]
        lv_node = ids["bus"][net.bus.index.get_indexer(lv_bus)]
        self._lv_is_to = (
            tr["to_node"][self.units] == lv_node if len(self.units) else np.zeros(0, bool)
        )
        self._model = PowerGridModel(data, system_frequency=float(net.f_hz or 50.0))
        self._reused: dict = {}  # prepared batches of the model for the loop's small reads

    def __call__(
        self, p_load_kw: np.ndarray, q_load_kvar: np.ndarray, step0: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(n, n_units)`` P (kW) and Q (kvar) into each station unit at its LV terminal for
        the ``(n, n_load)`` loads (``net.load`` order) of ``n`` steps."""
        p, q = np.atleast_2d(p_load_kw), np.atleast_2d(q_load_kvar)
        if len(self._p_extra_kw):
            n = len(p)
            p = np.hstack([p, np.broadcast_to(self._p_extra_kw, (n, len(self._p_extra_kw)))])
            q = np.hstack([q, np.broadcast_to(self._q_extra_kvar, (n, len(self._q_extra_kvar)))])
        p = np.ascontiguousarray(p * 1e3)
        q = np.ascontiguousarray(q * 1e3)
        if not len(self.units):
            return np.zeros((len(p), 0)), np.zeros((len(p), 0))
        upd = {ComponentType.sym_load: {"p_specified": p, "q_specified": q}}
        if len(p) <= ROW_BASED_UP_TO:
            upd = row_based(upd)
        res = solve_batch(
            self._model,
            upd,
            {ComponentType.transformer: ["p_from", "q_from", "p_to", "q_to"]},
            step0,
            symmetric=True,
            error_tolerance=1e-10,
            threading=-1,
            load_kw=lambda k: float(p[k].sum() / 1e3),
            reuse=self._reused,
        )
        o = res[ComponentType.transformer]
        side = self._lv_is_to
        pt = np.where(side, o["p_to"][:, self.units], o["p_from"][:, self.units])
        qt = np.where(side, o["q_to"][:, self.units], o["q_from"][:, self.units])
        return pt / 1e3, qt / 1e3


def source_ends(net: pandapowerNet, lines: np.ndarray) -> np.ndarray:
    """``(len(lines),)`` whether the ``from_bus`` end of each line (``net.line`` positions)
    is the one nearer the external grid (fewer branches away; ties: the from end)."""
    import networkx as nx
    from pandapower.topology import create_nxgraph

    lines = np.asarray(lines, np.int64)
    if not len(lines):
        return np.zeros(0, bool)
    g = create_nxgraph(net, respect_switches=True)
    dist: dict = {}
    for b in net.ext_grid["bus"].astype(int):
        for node, d in nx.single_source_shortest_path_length(g, int(b)).items():
            dist[node] = min(d, dist.get(node, d))
    far = len(net.bus) + 1
    fb = net.line["from_bus"].to_numpy()[lines]
    tb = net.line["to_bus"].to_numpy()[lines]
    return np.array(
        [dist.get(int(a), far) <= dist.get(int(b), far) for a, b in zip(fb, tb, strict=True)]
    )


@dataclass(frozen=True)
class SensorLayout:
    """Where the sensors are.

    Attributes
    ----------
    trafo : bool
        P/Q on each station transformer's LV terminal and U on its LV bus.
    cable_heads : bool
        A current sensor (magnitude and local angle) at the station end of every cable that
        leaves the station's LV bus (:func:`cable_head_lines`).
    voltage_loads : np.ndarray
        ``net.load`` row positions whose smart meter reads voltage (at the load's bus).
    source_sigma_pu : float
        Standard deviation of the pseudo voltage at the source (0: none).
    current_lines : np.ndarray
        ``net.line`` positions of further cables with a current sensor (magnitude and local
        angle, like a cable head) at the end nearer the source (:func:`source_ends`); the
        sensor-placement study's candidates.
    """

    trafo: bool
    cable_heads: bool
    voltage_loads: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    source_sigma_pu: float = 0.02
    current_lines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass
class SensorTruth:
    """What ideal sensors would read, per step (from an AC power flow of the truth).

    ``trafo_p_kw``/``trafo_q_kvar`` ``(T, n_units)``: power *into* each station transformer
    at its LV terminal (negative while the MV grid supplies the feeder); ``trafo_u_pu``
    ``(T, n_units)`` the LV bus voltage; ``line_i_ka``/``line_i_angle_rad`` ``(T, n_heads)``
    current into each cable head at the station end and how far it lags the local voltage
    (``atan2(q, p)``, PGM's ``local_angle``); ``bus_u_pu`` ``(T, n_bus)`` every bus voltage (``net.bus`` order).
    """

    trafo_p_kw: np.ndarray
    trafo_q_kvar: np.ndarray
    trafo_u_pu: np.ndarray
    line_i_ka: np.ndarray
    line_i_angle_rad: np.ndarray
    bus_u_pu: np.ndarray


@dataclass
class SensorData:
    """Sensor values and standard deviations per step (rows) for :meth:`BatchStateEstimator.run`.

    Loads ``(T, n_load)``: ``load_p_kw``, ``load_q_kvar`` and their ``*_sigma``; voltage
    meters ``(T, len(layout.voltage_loads))``: ``meter_u_pu`` (NaN: no reading) and
    ``meter_u_sigma_pu``; station ``(T, n_units)`` (layout.trafo): ``trafo_p_kw``,
    ``trafo_q_kvar``, ``trafo_power_sigma_kw``, ``trafo_u_pu``, ``trafo_u_sigma_pu``; cable
    heads ``(T, n_heads)`` (layout.cable_heads): ``line_i_ka``, ``line_i_angle_rad``,
    ``line_i_sigma_ka``, ``line_angle_sigma_rad``. Missing station or cable-head readings
    are NaN (they get no weight).
    """

    load_p_kw: np.ndarray
    load_q_kvar: np.ndarray
    load_p_sigma_kw: np.ndarray
    load_q_sigma_kvar: np.ndarray
    meter_u_pu: np.ndarray | None = None
    meter_u_sigma_pu: np.ndarray | None = None
    trafo_p_kw: np.ndarray | None = None
    trafo_q_kvar: np.ndarray | None = None
    trafo_power_sigma_kw: np.ndarray | None = None
    trafo_u_pu: np.ndarray | None = None
    trafo_u_sigma_pu: np.ndarray | None = None
    line_i_ka: np.ndarray | None = None
    line_i_angle_rad: np.ndarray | None = None
    line_i_sigma_ka: np.ndarray | None = None
    line_angle_sigma_rad: np.ndarray | None = None

    @property
    def n_steps(self) -> int:
        return self.load_p_kw.shape[0]


@dataclass
class Estimate:
    """The estimated state: a :class:`PowerFlowResult` (NaN rows where unobservable), which
    steps could be estimated, and the wall time. ``station_kw`` ``(T,)``: the estimated
    active power into the station's LV side (what a station sensor reads: the loads and the
    cable losses; NaN where unobservable, 0 without a station transformer); ``load_kw``
    ``(T,)``: the estimated sum of the loads' active power (the station load less the cable
    losses)."""

    result: PowerFlowResult
    observable: np.ndarray
    seconds: float
    first_error: str = ""
    station_kw: np.ndarray | None = None
    load_kw: np.ndarray | None = None


class BatchStateEstimator:
    """Batch WLS state estimation of one feeder with power-grid-model.

    Parameters
    ----------
    net : pandapowerNet
        The feeder (what :func:`twin.grid.powerflow.pgm_input_from_net` models).
    layout : SensorLayout
        Where the sensors are.
    threads : int
        0: all hardware threads, 1: sequential.
    error_tolerance : float or None
        Convergence tolerance (p.u., the largest voltage update of an iteration); None:
        :data:`ERROR_TOLERANCE` of the method (Newton-Raphson converges quadratically at the
        end: its 1e-6 lands within ~1e-7 p.u. of its 1e-7, one iteration less).
    steps_per_call : int
        Steps per PGM batch call (memory).
    method : {"iterative_linear", "newton_raphson"}
        PGM's estimator (Newton-Raphson takes no current sensors).
    """

    def __init__(
        self,
        net: pandapowerNet,
        layout: SensorLayout,
        threads: int = 0,
        error_tolerance: float | None = None,
        steps_per_call: int = 4 * 7 * 96,
        method: str = "iterative_linear",
    ) -> None:
        self.net = net
        self.method = CalculationMethod[method]
        self.layout = layout
        self.threads = int(threads)
        if error_tolerance is None:
            error_tolerance = ERROR_TOLERANCE[self.method.name]
        self.error_tolerance = float(error_tolerance)
        self._without_meter_u: BatchStateEstimator | None = None
        self.steps_per_call = int(steps_per_call)
        data, ids = pgm_input_from_net(net)
        self._ids = ids
        bus_pos = {int(b): i for i, b in enumerate(ids["bus"])}
        self._u_rated = data[ComponentType.node]["u_rated"].copy()
        load = data[ComponentType.sym_load]
        self.n_load = len(load)
        next_id = max(int(v.max()) for v in ids.values() if len(v)) + 1

        def new_ids(n: int) -> np.ndarray:
            nonlocal next_id
            out = np.arange(next_id, next_id + n, dtype=np.int32)
            next_id += n
            return out

        # station transformers: LV terminal and LV node
        tr = data.get(ComponentType.transformer)
        self.units = np.flatnonzero(station_mask(net)) if tr is not None else np.zeros(0, int)
        lv_bus = net.trafo["lv_bus"].to_numpy()[self.units]
        lv_node = ids["bus"][net.bus.index.get_indexer(lv_bus)]
        self._unit_lv_is_to = tr["to_node"][self.units] == lv_node if len(self.units) else []
        self._unit_lv_node = lv_node
        self.unit_rating_kva = trafo_unit_rating_kva(net)
        # cable heads
        self.heads, self._head_from = cable_head_lines(net)
        if not layout.cable_heads:
            self.heads, self._head_from = self.heads[:0], self._head_from[:0]
        #: current sensors: the cable heads first, then the further cables of the layout
        self.n_cable_heads = len(self.heads)
        extra = np.asarray(layout.current_lines, np.int64)
        extra = extra[~np.isin(extra, self.heads)]
        self.heads = np.concatenate([self.heads, extra]).astype(np.int64)
        self._head_from = np.concatenate([self._head_from, source_ends(net, extra)]).astype(bool)
        # voltage sensors: [trafo LV buses] + [meter buses] + [source]
        v_nodes = [lv_node] if layout.trafo else []
        self.voltage_loads = np.asarray(layout.voltage_loads, np.int64)
        v_nodes.append(load["node"][self.voltage_loads])
        src = data[ComponentType.source]
        self._src_u_pu = src["u_ref"].astype(float)
        if layout.source_sigma_pu > 0:
            v_nodes.append(src["node"])
        v_nodes_arr = np.concatenate(v_nodes).astype(np.int32) if v_nodes else np.zeros(0)
        vs = initialize_array("input", ComponentType.sym_voltage_sensor, len(v_nodes_arr))
        vs["id"] = new_ids(len(vs))
        vs["measured_object"] = v_nodes_arr
        self._vs_u_rated = self._u_rated[[bus_pos[int(n)] for n in v_nodes_arr]]
        vs["u_sigma"] = 0.01 * self._vs_u_rated
        vs["u_measured"] = self._vs_u_rated
        self._vs = vs
        # power sensors: [trafo LV terminals] + [loads]
        n_tr = len(self.units) if layout.trafo else 0
        ps = initialize_array("input", ComponentType.sym_power_sensor, n_tr + self.n_load)
        ps["id"] = new_ids(len(ps))
        if n_tr:
            ps["measured_object"][:n_tr] = tr["id"][self.units]
            ps["measured_terminal_type"][:n_tr] = np.where(
                self._unit_lv_is_to,
                MeasuredTerminalType.branch_to,
                MeasuredTerminalType.branch_from,
            )
        ps["measured_object"][n_tr:] = load["id"]
        ps["measured_terminal_type"][n_tr:] = MeasuredTerminalType.load
        ps["power_sigma"] = 1e3
        ps["p_measured"] = 0.0
        ps["q_measured"] = 0.0
        self._ps = ps
        self._n_tr_sensors = n_tr
        data[ComponentType.sym_voltage_sensor] = vs
        data[ComponentType.sym_power_sensor] = ps
        if len(self.heads):
            cs = initialize_array("input", ComponentType.sym_current_sensor, len(self.heads))
            cs["id"] = new_ids(len(cs))
            cs["measured_object"] = ids["line"][self.heads]
            cs["measured_terminal_type"] = np.where(
                self._head_from, MeasuredTerminalType.branch_from, MeasuredTerminalType.branch_to
            )
            cs["angle_measurement_type"] = AngleMeasurementType.local_angle
            cs["i_sigma"] = 1.0
            cs["i_angle_sigma"] = 0.01
            cs["i_measured"] = 0.0
            cs["i_angle_measured"] = 0.0
            data[ComponentType.sym_current_sensor] = cs
            self._cs = cs
        self._input = data
        self._model = PowerGridModel(data, system_frequency=float(net.f_hz or 50.0))
        #: the small batches in the loop, prepared once (twin.grid.powerflow.reused_batch)
        self._reused: dict = {}
        self._index = (
            net.bus.index.to_numpy(),
            net.line.index.to_numpy(),
            net.trafo.index.to_numpy(),
        )
        self._bus_pos = bus_pos
        self._lv_node_col = np.array([bus_pos[int(n)] for n in lv_node], dtype=np.int64)

    # -- the truth as ideal sensors would read it ------------------------------------------
    def sensor_truth(
        self,
        p_load_kw: np.ndarray,
        q_load_kvar: np.ndarray,
        bus_u: bool = True,
        threads: int | None = None,
    ) -> SensorTruth:
        """One batch power flow of the true loads: what ideal sensors read at every step
        (``bus_u=False``: the bus voltages are not asked for and stay 0, unless a station
        sensor reads its LV bus; nothing is solved when no sensor reads the result;
        ``threads``: for this call, None: the estimator's)."""
        p = np.atleast_2d(np.asarray(p_load_kw, float))
        q = np.atleast_2d(np.asarray(q_load_kvar, float))
        n_t = p.shape[0]
        n_u, n_h = len(self.units), len(self.heads)
        bus_u = bus_u or (self.layout.trafo and n_u > 0)
        out_t = {
            "trafo_p_kw": np.zeros((n_t, n_u)),
            "trafo_q_kvar": np.zeros((n_t, n_u)),
            "trafo_u_pu": np.zeros((n_t, n_u)),
            "line_i_ka": np.zeros((n_t, n_h)),
            "line_i_angle_rad": np.zeros((n_t, n_h)),
            "bus_u_pu": np.zeros((n_t, len(self._u_rated))),
        }
        outputs: dict = {ComponentType.node: ["u_pu"]} if bus_u else {}
        if n_u:
            outputs[ComponentType.transformer] = ["p_from", "q_from", "p_to", "q_to"]
        if n_h:
            outputs[ComponentType.line] = ["p_from", "q_from", "i_from", "p_to", "q_to", "i_to"]
        if not bus_u and not n_h and not (n_u and self.layout.trafo):
            return SensorTruth(**out_t)  # no sensor reads this power flow
        for s0 in range(0, n_t, self.steps_per_call):
            s1 = min(n_t, s0 + self.steps_per_call)
            upd = {
                ComponentType.sym_load: {
                    "p_specified": np.ascontiguousarray(p[s0:s1] * 1e3),
                    "q_specified": np.ascontiguousarray(q[s0:s1] * 1e3),
                }
            }
            if s1 - s0 <= ROW_BASED_UP_TO:
                upd = row_based(upd)
            res = solve_batch(
                self._model,
                upd,
                outputs,
                s0,
                symmetric=True,
                error_tolerance=1e-10,
                threading=self._threading(threads),
                load_kw=lambda k, s0=s0: float(p[s0 + k].sum()),
                reuse=self._reused,
            )
            if bus_u:
                u = res[ComponentType.node]["u_pu"]
                out_t["bus_u_pu"][s0:s1] = u
            if n_u:
                o = res[ComponentType.transformer]
                side = np.asarray(self._unit_lv_is_to)
                pt = np.where(side, o["p_to"][:, self.units], o["p_from"][:, self.units])
                qt = np.where(side, o["q_to"][:, self.units], o["q_from"][:, self.units])
                out_t["trafo_p_kw"][s0:s1] = pt / 1e3
                out_t["trafo_q_kvar"][s0:s1] = qt / 1e3
                if bus_u:
                    out_t["trafo_u_pu"][s0:s1] = u[:, self._lv_node_col]
            if n_h:
                o = res[ComponentType.line]
                f = self._head_from
                pl = np.where(f, o["p_from"][:, self.heads], o["p_to"][:, self.heads])
                ql = np.where(f, o["q_from"][:, self.heads], o["q_to"][:, self.heads])
                il = np.where(f, o["i_from"][:, self.heads], o["i_to"][:, self.heads])
                out_t["line_i_ka"][s0:s1] = il / 1e3
                # PGM's local angle: how far the current lags the local voltage (S = U I*)
                out_t["line_i_angle_rad"][s0:s1] = np.arctan2(ql, pl)
        return SensorTruth(**out_t)

    def _threading(self, threads: int | None = None) -> int:
        """PGM's ``threading`` for a call with ``threads`` (None: the estimator's)."""
        n = self.threads if threads is None else int(threads)
        return -1 if n == 1 else max(0, n)

    # -- estimation -------------------------------------------------------------------------
    def _update(self, d: SensorData, s0: int, s1: int) -> dict:
        lay = self.layout
        n = s1 - s0
        sl = slice(s0, s1)
        # voltage sensors
        u_cols, su_cols = [], []
        if lay.trafo:
            u = d.trafo_u_pu[sl]
            u_cols.append(u)
            su_cols.append(np.where(np.isfinite(u), d.trafo_u_sigma_pu[sl], NO_READING_SIGMA_PU))
        if len(self.voltage_loads):
            u = d.meter_u_pu[sl]
            u_cols.append(u)
            su_cols.append(np.where(np.isfinite(u), d.meter_u_sigma_pu[sl], NO_READING_SIGMA_PU))
        if lay.source_sigma_pu > 0:
            u_cols.append(np.broadcast_to(self._src_u_pu, (n, len(self._src_u_pu))))
            su_cols.append(np.full((n, len(self._src_u_pu)), lay.source_sigma_pu))
        upd: dict = {}
        if u_cols:
            u = np.concatenate(u_cols, axis=1)
            su = np.concatenate(su_cols, axis=1)
            u = np.where(np.isfinite(u), u, 1.0)
            upd[ComponentType.sym_voltage_sensor] = {
                "u_measured": np.ascontiguousarray(u * self._vs_u_rated),
                "u_sigma": np.ascontiguousarray(su * self._vs_u_rated),
                "u_angle_measured": np.full(u.shape, np.nan),
            }
        # power sensors
        p_cols = [d.load_p_kw[sl]]
        q_cols = [d.load_q_kvar[sl]]
        sp_cols = [d.load_p_sigma_kw[sl]]
        sq_cols = [d.load_q_sigma_kvar[sl]]
        if self._n_tr_sensors:
            tp, tq = d.trafo_p_kw[sl], d.trafo_q_kvar[sl]
            ok = np.isfinite(tp) & np.isfinite(tq)
            big = 1e6  # kW: a missing reading gets no weight
            sig = np.where(ok, d.trafo_power_sigma_kw[sl], big)
            p_cols.insert(0, np.where(ok, tp, 0.0))
            q_cols.insert(0, np.where(ok, tq, 0.0))
            sp_cols.insert(0, sig)
            sq_cols.insert(0, sig)
        upd[ComponentType.sym_power_sensor] = {
            "p_measured": np.ascontiguousarray(np.concatenate(p_cols, axis=1) * 1e3),
            "q_measured": np.ascontiguousarray(np.concatenate(q_cols, axis=1) * 1e3),
            "p_sigma": np.ascontiguousarray(np.concatenate(sp_cols, axis=1) * 1e3),
            "q_sigma": np.ascontiguousarray(np.concatenate(sq_cols, axis=1) * 1e3),
            "power_sigma": np.full((n, len(self._ps)), np.nan),
        }
        if len(self.heads):
            i = d.line_i_ka[sl]
            a = d.line_i_angle_rad[sl]
            ok = np.isfinite(i) & np.isfinite(a)
            upd[ComponentType.sym_current_sensor] = {
                "i_measured": np.ascontiguousarray(np.where(ok, i, 0.0) * 1e3),
                "i_angle_measured": np.ascontiguousarray(np.where(ok, a, 0.0)),
                "i_sigma": np.ascontiguousarray(np.where(ok, d.line_i_sigma_ka[sl], 1e3) * 1e3),
                "i_angle_sigma": np.ascontiguousarray(
                    np.where(ok, d.line_angle_sigma_rad[sl], 1e3)
                ),
            }
        return upd

    def run(
        self, data: SensorData, threads: int | None = None, station_only: bool = False
    ) -> Estimate:
        """Estimate every step of ``data``; unobservable steps are NaN and flagged.
        ``threads``: for this call (None: the estimator's); ``station_only``: only the station
        load and the cable loadings are read out (the DSO in the loop: the result's other
        arrays stay NaN).

        When no meter reads a voltage at any step (late meters' nowcast), the meters'
        voltage sensors, which would all carry :data:`NO_READING_SIGMA_PU`, are left out of
        the model: the same estimate (to ~1e-9 p.u.), with a tenth less work per step.
        """
        t_start = time.perf_counter()
        if (
            len(self.voltage_loads)
            and data.meter_u_pu is not None
            and not np.isfinite(data.meter_u_pu).any()
        ):
            if self._without_meter_u is None:
                self._without_meter_u = BatchStateEstimator(
                    self.net,
                    replace(self.layout, voltage_loads=np.zeros(0, np.int64)),
                    threads=self.threads,
                    error_tolerance=self.error_tolerance,
                    steps_per_call=self.steps_per_call,
                    method=self.method.name,
                )
            data = replace(data, meter_u_pu=None, meter_u_sigma_pu=None)
            out = self._without_meter_u.run(data, threads=threads, station_only=station_only)
            out.seconds = time.perf_counter() - t_start
            return out
        n_t = data.n_steps
        bus_index, line_index, trafo_index = self._index
        n_bus, n_line, n_tr = len(bus_index), len(line_index), len(trafo_index)
        vm = np.full((n_t, n_bus), np.nan)
        ll = np.full((n_t, n_line), np.nan)
        lp = np.full((n_t, n_line), np.nan)
        ts = np.full((n_t, n_tr), np.nan)
        tp = np.full((n_t, n_tr), np.nan)
        losses = np.full(n_t, np.nan)
        station = np.full(n_t, np.nan)
        load_sum = np.full(n_t, np.nan)
        lv_is_to = np.asarray(self._unit_lv_is_to, bool)
        ok = np.ones(n_t, bool)
        first_error = ""
        outputs: dict = {ComponentType.sym_load: ["p"]}
        if not station_only:
            outputs[ComponentType.node] = ["u_pu"]
        if n_line:
            outputs[ComponentType.line] = (
                ["loading"] if station_only else ["loading", "p_from", "p_to"]
            )
        if n_tr:
            outputs[ComponentType.transformer] = (
                ["p_from", "p_to"] if station_only else ["s_from", "s_to", "p_from", "p_to"]
            )
        for s0 in range(0, n_t, self.steps_per_call):
            s1 = min(n_t, s0 + self.steps_per_call)
            upd = self._update(data, s0, s1)
            options = {
                "calculation_method": self.method,
                "error_tolerance": self.error_tolerance,
                "max_iterations": 50,
                "threading": self._threading(threads),
            }
            rb = reused_batch(
                self._reused, self._model, CalculationType.state_estimation, upd, outputs, **options
            )
            if rb is None and s1 - s0 <= ROW_BASED_UP_TO:
                upd = row_based(upd)
            try:
                if rb is not None:  # the same calculation without PGM's per-call set-up
                    out, err = rb.calculate(upd)
                else:
                    out = self._model.calculate_state_estimation(
                        update_data=upd,
                        output_component_types=outputs,
                        continue_on_batch_error=True,
                        **options,
                    )
                    err = self._model.batch_error
            except PowerGridError as exc:  # the whole call failed (e.g. a bad model)
                ok[s0:s1] = False
                first_error = first_error or " ".join(str(exc).split())[:300]
                continue
            failed = np.zeros(s1 - s0, bool)
            if err is not None:
                failed[np.asarray(err.failed_scenarios, np.int64)] = True
                first_error = first_error or " ".join(str(err.error_messages[0]).split())[:300]
            good = ~failed
            ok[s0:s1] = good
            rows = np.arange(s0, s1)[good]
            load_sum[rows] = out[ComponentType.sym_load]["p"][good].sum(axis=1) / 1e3
            loss = np.zeros(len(rows))
            if n_line:
                o = out[ComponentType.line]
                ll[rows] = o["loading"][good] * 100.0
            if not station_only:
                vm[rows] = out[ComponentType.node]["u_pu"][good]
                if n_line:
                    o = out[ComponentType.line]
                    lp[rows] = o["p_from"][good] / 1e3
                    loss += (o["p_from"][good] + o["p_to"][good]).sum(axis=1) / 1e3
                if n_tr:
                    o = out[ComponentType.transformer]
                    ts[rows] = np.maximum(o["s_from"][good], o["s_to"][good]) / 1e3
                    tp[rows] = o["p_from"][good] / 1e3
                    loss += (o["p_from"][good] + o["p_to"][good]).sum(axis=1) / 1e3
                losses[rows] = loss
            if n_tr:
                o, u = out[ComponentType.transformer], self.units
                lv = np.where(lv_is_to, o["p_to"][good][:, u], o["p_from"][good][:, u])
                station[rows] = -lv.sum(axis=1) / 1e3
            else:
                station[rows] = 0.0
        res = PowerFlowResult(
            vm_pu=vm,
            line_loading_pct=ll,
            line_p_from_kw=lp,
            trafo_loading_pct=100.0 * ts / self.unit_rating_kva if n_tr else ts,
            trafo_s_kva=ts,
            trafo_p_kw=tp,
            losses_kw=losses,
            bus_index=bus_index.copy(),
            line_index=line_index.copy(),
            trafo_index=trafo_index.copy(),
            steps=np.arange(n_t),
        )
        return Estimate(res, ok, time.perf_counter() - t_start, first_error, station, load_sum)


# ----------------------------------------------------------------------------------------------
# pandapower reference
# ----------------------------------------------------------------------------------------------


def _appender(rows: list[tuple]):
    def add(kind: str, et: str, value: float, std: float, element: int, side=None) -> None:
        rows.append((kind, et, value, std, element, side))

    return add


def pandapower_estimate(
    net: pandapowerNet,
    estimator: BatchStateEstimator,
    data: SensorData,
    steps: np.ndarray,
    timings: list[float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference: ``pandapower.estimation.estimate`` (WLS) on the same measurements, one call
    per step of ``steps``.

    pandapower has no current-angle sensor, so the cable-head sensors (if any) are left out:
    compare it with an estimator without them. Load readings become bus injections
    (``element_type='bus'``, summed per bus with their variances added), the station reading
    a transformer flow at its LV side, voltage readings ``v`` measurements; the source's
    pseudo voltage a ``v`` measurement at the MV bus.

    Returns ``(vm_pu, line_loading_pct)`` of the steps, ``(len(steps), n_bus)`` and
    ``(len(steps), n_line)``; NaN rows where pandapower did not converge.
    """
    import pandapower as pp
    from pandapower.estimation import estimate

    lay = estimator.layout
    net = copy.deepcopy(net)
    net.measurement.drop(net.measurement.index, inplace=True)
    n_bus, n_line = len(net.bus), len(net.line)
    vm = np.full((len(steps), n_bus), np.nan)
    ll = np.full((len(steps), n_line), np.nan)
    load_bus = net.load["bus"].to_numpy()
    buses, inv = np.unique(load_bus, return_inverse=True)
    v_bus = load_bus[estimator.voltage_loads]
    units = estimator.units
    lv_bus = net.trafo["lv_bus"].to_numpy()[units]
    src_bus = net.ext_grid["bus"].to_numpy()
    for k, step in enumerate(steps):
        rows: list[tuple] = []
        add = _appender(rows)

        # bus injections: pandapower's bus p/q measurements count consumption positive
        p = np.bincount(inv, data.load_p_kw[step], len(buses))
        q = np.bincount(inv, data.load_q_kvar[step], len(buses))
        sp = np.sqrt(np.bincount(inv, data.load_p_sigma_kw[step] ** 2, len(buses)))
        sq = np.sqrt(np.bincount(inv, data.load_q_sigma_kvar[step] ** 2, len(buses)))
        for b, pb, qb, spb, sqb in zip(buses, p, q, sp, sq, strict=True):
            add("p", "bus", pb / 1e3, spb / 1e3, int(b))
            add("q", "bus", qb / 1e3, sqb / 1e3, int(b))
        # buses without any load or measurement: zero injection, known exactly
        for b in np.setdiff1d(net.bus.index.to_numpy(), np.r_[buses, src_bus]):
            add("p", "bus", 0.0, 1e-6, int(b))
            add("q", "bus", 0.0, 1e-6, int(b))
        if len(estimator.voltage_loads):
            u = data.meter_u_pu[step]
            for b, ub, sb in zip(v_bus, u, data.meter_u_sigma_pu[step], strict=True):
                if np.isfinite(ub):
                    add("v", "bus", float(ub), float(sb), int(b))
        if lay.trafo:
            for j, (u_idx, b) in enumerate(zip(units, lv_bus, strict=True)):
                tp_, tq_ = data.trafo_p_kw[step, j], data.trafo_q_kvar[step, j]
                s_ = data.trafo_power_sigma_kw[step, j]
                if np.isfinite(tp_):
                    add("p", "trafo", tp_ / 1e3, s_ / 1e3, int(net.trafo.index[u_idx]), "lv")
                    add("q", "trafo", tq_ / 1e3, s_ / 1e3, int(net.trafo.index[u_idx]), "lv")
                ub = data.trafo_u_pu[step, j]
                if np.isfinite(ub):
                    add("v", "bus", float(ub), float(data.trafo_u_sigma_pu[step, j]), int(b))
        if lay.source_sigma_pu > 0:
            for b, u0 in zip(src_bus, estimator._src_u_pu, strict=True):
                add("v", "bus", float(u0), lay.source_sigma_pu, int(b))
        for kind, et, value, std, element, side in rows:
            pp.create_measurement(net, kind, et, value, std, element, side=side)
        t0 = time.perf_counter()
        ok = estimate(net, algorithm="wls", init="flat", tolerance=1e-8, maximum_iterations=50)
        if timings is not None:
            timings.append(time.perf_counter() - t0)
        net.measurement.drop(net.measurement.index, inplace=True)
        if ok:
            vm[k] = net.res_bus_est["vm_pu"].to_numpy()
            ll[k] = net.res_line_est["loading_percent"].to_numpy()
    return vm, ll


# ----------------------------------------------------------------------------------------------
# error against the truth
# ----------------------------------------------------------------------------------------------


def _stats(err: np.ndarray, prefix: str, unit: str) -> dict[str, float]:
    e = err[np.isfinite(err)]
    if not e.size:
        nan = float("nan")
        return {
            f"{prefix}_max_{unit}": nan,
            f"{prefix}_p99_{unit}": nan,
            f"{prefix}_mean_{unit}": nan,
        }
    return {
        f"{prefix}_max_{unit}": float(e.max()),
        f"{prefix}_p99_{unit}": float(np.percentile(e, 99)),
        f"{prefix}_mean_{unit}": float(e.mean()),
    }


def estimation_errors(
    estimate: Estimate, truth: PowerFlowResult, net: pandapowerNet, prefix: str = "se"
) -> dict[str, float]:
    """Error of the estimate against the truth, over the observable steps.

    * ``<prefix>_vm_err_{max,p99,mean}_pu``: ``|U_est - U_true|`` over every energised LV bus
      and step (p.u.);
    * ``<prefix>_line_err_{max,p99,mean}_pp``: ``|loading_est - loading_true|`` over every
      cable and step (percentage points of its rating);
    * ``<prefix>_trafo_err_{max,p99,mean}_pp``: the station's loading (percentage points);
    * ``<prefix>_vm_err_rel_median_pct``: median over steps and LV buses of the voltage error
      relative to that step's largest deviation of an LV bus from the source voltage (twin's
      scale-free metric; not necessarily the one of arXiv 2603.28945);
    * ``<prefix>_unobservable_steps``: steps the estimator could not solve.
    """
    from twin.grid.compliance import _lv_bus_mask, station_of

    ok = estimate.observable
    est = estimate.result
    lv = _lv_bus_mask(truth, net)
    energised = np.isfinite(truth.vm_pu).all(axis=0) & lv
    dv = np.abs(est.vm_pu[ok][:, energised] - truth.vm_pu[ok][:, energised])
    out: dict[str, float] = {}
    out.update(_stats(dv, f"{prefix}_vm_err", "pu"))
    if truth.line_loading_pct.shape[1]:
        dl = np.abs(est.line_loading_pct[ok] - truth.line_loading_pct[ok])
        out.update(_stats(dl, f"{prefix}_line_err", "pp"))
    st_t = station_of(truth, net)
    if len(st_t.units):
        st_e = station_of(est, net)
        out.update(
            _stats(np.abs(st_e.loading_pct[ok] - st_t.loading_pct[ok]), f"{prefix}_trafo_err", "pp")
        )
    src = net.ext_grid["vm_pu"].to_numpy(float)
    v_src = float(src[0]) if len(src) else 1.0
    drop = np.abs(truth.vm_pu[ok][:, energised] - v_src).max(axis=1, keepdims=True)
    rel = dv / np.maximum(drop, 1e-6)
    out[f"{prefix}_vm_err_rel_median_pct"] = (
        float(np.median(rel) * 100.0) if rel.size else float("nan")
    )
    out[f"{prefix}_unobservable_steps"] = int((~ok).sum())
    return out
