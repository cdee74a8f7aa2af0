"""The outcome of one run as data: :class:`RunResult`.

Arrays and frames only (the households' parameters, per-step logs, the grid result, KPIs,
bills, discounts), no live model: a result can be pickled, compared, written
(:func:`twin.writer.write_run`) and reopened without the simulation behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from twin.devices.ev import TripSchedule
from twin.fleet import PHASE_DEVICES, Fleet
from twin.grid.asymmetric import PHASES, AsymPowerFlowResult
from twin.grid.compliance import _lv_bus_mask, station_of
from twin.grid.feeders import Feeder
from twin.grid.powerflow import PowerFlowResult
from twin.grid.ratings import line_ampacity_ka, station_mask
from twin.kpi import per_household_table
from twin.measure import StateEstimation
from twin.scenario import Scenario
from twin.service import ServiceLevels
from twin.tariffs import Tariff
from twin.timegrid import DT_H, TimeWindow

__all__ = ["EXACT_COLUMNS", "RunResult", "TidyTable"]

#: households.parquet columns kept at full precision: every service-level KPI can be
#: recomputed from them exactly (with households_summary.csv).
EXACT_COLUMNS = (
    "t_in_c",
    "q_hp_kw",
    "q_boiler_kw",
    "q_gain_kw",
    "ev_soc_kwh",
    "bat_soc_kwh",
    "p_hp_kw",
    "p_ev_kw",
    "dhw_draw_kw",
    "dhw_delivered_kw",
    "e_tank_kwh",
    "q_dhw_kw",
    "p_dhw_kw",
)


class TidyTable:
    """A tidy (step, element) table described column by column: row ``k * n + j`` holds
    element ``j`` at reported step ``k``.

    Nothing is materialised until asked: :meth:`rows` builds any range of rows, :meth:`frame`
    all of them. The writer streams a year into parquet one row group at a time
    (:func:`twin.writer.write_tidy_parquet`) instead of holding the whole frame and its
    copies (a year of the default feeder's households is 3.6 million rows). Columns, in
    order:

    * :meth:`per_step`: one value per step (``time``, ``step``), repeated over the elements;
    * :meth:`per_element`: one value per element, repeated every step; a ``pd.Categorical``
      stays categorical (same categories in every range);
    * :meth:`cells`: a ``(T, n)`` array, or a function ``(k0, k1) -> (k1 - k0, n)`` array
      of the steps ``k0 .. k1 - 1``, cast to ``dtype`` range by range (the same values as
      casting the whole array).
    """

    def __init__(self, n_steps: int, n: int) -> None:
        self.n_steps, self.n = int(n_steps), int(n)
        self._columns: dict[str, tuple[str, Any, Any]] = {}

    @property
    def n_rows(self) -> int:
        return self.n_steps * self.n

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def per_step(self, name: str, values: Any) -> TidyTable:
        self._columns[name] = ("step", np.asarray(values), None)
        return self

    def per_element(self, name: str, values: Any) -> TidyTable:
        if not isinstance(values, pd.Categorical):
            values = np.asarray(values)
        self._columns[name] = ("element", values, None)
        return self

    def cells(self, name: str, values: Any, dtype: Any = None) -> TidyTable:
        self._columns[name] = ("cells", values, dtype)
        return self

    def rows(self, start: int = 0, stop: int | None = None) -> dict[str, Any]:
        """Columns of rows ``start .. stop - 1`` (numpy arrays, ``pd.Categorical``)."""
        stop = self.n_rows if stop is None else min(int(stop), self.n_rows)
        start = min(max(int(start), 0), stop)
        n, m = self.n, stop - start
        k0, k1 = (start // n, -(-stop // n)) if n else (0, 0)
        cut = slice(start - k0 * n, start - k0 * n + m)
        out: dict[str, Any] = {}
        for name, (kind, values, dtype) in self._columns.items():
            if kind == "step":
                out[name] = np.repeat(values[k0:k1], n)[cut]
            elif kind == "element" and isinstance(values, pd.Categorical):
                codes = np.tile(values.codes, k1 - k0)[cut]
                out[name] = pd.Categorical.from_codes(codes, dtype=values.dtype)
            elif kind == "element":
                out[name] = np.tile(values, k1 - k0)[cut]
            else:
                block = np.asarray(values(k0, k1) if callable(values) else values[k0:k1])
                if dtype is not None:
                    block = block.astype(dtype, copy=False)
                out[name] = block.reshape(-1)[cut]
        return out

    def frame(self) -> pd.DataFrame:
        """All rows as one frame."""
        return pd.DataFrame(self.rows())


def _columns_of(matrix: np.ndarray, cols: np.ndarray) -> Any:
    """``matrix[:, cols]`` as a :meth:`TidyTable.cells` source: the matrix itself when
    ``cols`` are all its columns in order (no copy), else the columns picked step range by
    step range."""
    if len(cols) == matrix.shape[1] and np.array_equal(cols, np.arange(matrix.shape[1])):
        return matrix
    return lambda k0, k1: matrix[k0:k1, cols]


@dataclass
class RunResult:
    """Everything one run produced (reported steps only; see :func:`twin.writer.write_run`
    for the files).

    Attributes
    ----------
    cfg : DictConfig
        The resolved configuration.
    window : TimeWindow
        The simulated window.
    feeder : Feeder
        The grid (pandapower net of record and its profiles).
    fleet : Fleet
        Every household's devices and parameters.
    load_index : np.ndarray
        ``(H,)`` ``net.load`` index of each household.
    log : dict[str, np.ndarray]
        ``(T, H)`` per logged variable (the model's, then the contract's time series).
    home : np.ndarray
        ``(T, H)`` EV at home.
    trips : TripSchedule
        The reported steps' trips (home mask, departures, energy at arrival, km per day).
    start_state : dict[str, np.ndarray]
        ``(H,)`` device states at the start of the reported window (``t_in_c``,
        ``ev_soc_kwh``, ``bat_soc_kwh``), i.e. at the end of the warm-up.
    t_out_c : np.ndarray
        ``(T,)`` outdoor temperature.
    grid : PowerFlowResult
        The AC power flow of every reported step.
    p_load_kw, q_load_kvar : np.ndarray
        ``(T, n_load)`` what the power flow saw, ``net.load`` row order.
    kpis : dict
        Flat KPIs (names carry their units).
    bills : pd.DataFrame
        One row per household, € per component over the window.
    tariff : Tariff
        The run's prices over the reported steps.
    discount_eur_per_year : np.ndarray
        ``(H,)`` each household's contract discount.
    stored_electricity_kwh : np.ndarray
        ``(H,)`` electricity in what is left stored at the end beyond the start
        (:func:`twin.kpi.stored_electricity_kwh`), the equal-terms correction.
    contract_households, contract_feeder : dict[str, np.ndarray]
        The contract's own ``(H,)`` columns (e.g. ``signed``) and ``(T,)`` series (e.g. the
        intervals the DSO declared congested).
    timings_s : dict
        Where the time went.
    grid_phases : AsymPowerFlowResult or None
        Unbalanced runs (``grid.unbalanced``): the per-phase AC power flow of every reported
        step (:mod:`twin.grid.phases`); None for balanced runs.
    scenario : Scenario, optional
        The scenario as simulated (with a study's adoption changes); ``None`` when the
        pipeline did not pass it (the writer then reads ``cfg.scenario.name`` again).
    estimation : StateEstimation, optional
        The DSO's state estimation of the reported steps (:mod:`twin.measure`): the nowcast,
        the final estimate, the measurements; None with ``measurement.estimate=false``.
    warmup_p_load_kw : np.ndarray, optional
        ``(T_warmup, n_load)`` the loads of the warm-up steps (the meters' history the
        measurement layer reads before the window: the sensor-placement study).
    standard_p_kw : np.ndarray, optional
        ``(T_sim, n_load)`` every connection's standard profile over the simulated steps
        (the pseudo-measurements, :attr:`twin.inputs.StudyInputs.standard_p_kw`).
    ghi_w_m2 : np.ndarray, optional
        ``(T,)`` global horizontal irradiance of the reported steps (the weather the DSO knows).
    unregistered : dict, optional
        ``{device: (H,) bool}`` the adopters the DSO's register does not know of
        (:func:`twin.population.draw_unregistered`).
    """

    cfg: DictConfig
    window: TimeWindow
    feeder: Feeder
    fleet: Fleet
    load_index: np.ndarray
    log: dict[str, np.ndarray]
    home: np.ndarray
    start_state: dict[str, np.ndarray]
    trips: TripSchedule
    t_out_c: np.ndarray
    grid: PowerFlowResult
    p_load_kw: np.ndarray
    q_load_kvar: np.ndarray
    kpis: dict[str, Any]
    bills: pd.DataFrame
    tariff: Tariff
    discount_eur_per_year: np.ndarray
    stored_electricity_kwh: np.ndarray
    contract_households: dict[str, np.ndarray] = field(default_factory=dict)
    contract_feeder: dict[str, np.ndarray] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    grid_phases: AsymPowerFlowResult | None = None
    scenario: Scenario | None = None
    estimation: StateEstimation | None = None
    warmup_p_load_kw: np.ndarray | None = None
    standard_p_kw: np.ndarray | None = None
    ghi_w_m2: np.ndarray | None = None
    unregistered: dict[str, np.ndarray] | None = None

    def households_table(self) -> TidyTable:
        """Tidy: one row per (time, household), one column per logged variable
        (``households.parquet``)."""
        t, h = self.log["p_net_kw"].shape
        table = TidyTable(t, h).per_step("time", self.window.times.values)
        table.per_element("household", np.arange(h, dtype=np.int32))
        table.per_element("load_index", self.load_index.astype(np.int32))
        for name, values in self.log.items():  # the model's LOGGED variables, then the contract's
            if values.ndim != 2:  # per step only (the weather: feeder.parquet)
                continue
            # what the service levels are recomputed from stays exact (float64); the rest float32
            table.cells(name, values, np.float64 if name in EXACT_COLUMNS else np.float32)
        table.cells("ev_home", self.home)
        table.cells("ev_departure", self.trips.departure)
        table.cells("ev_trip_kwh", self.trips.trip_kwh)
        return table

    def households_frame(self) -> pd.DataFrame:
        """Tidy: one row per (time, household), one column per logged variable."""
        return self.households_table().frame()

    def feeder_frame(self) -> pd.DataFrame:
        """One row per time step: feeder totals and the grid's worst values.

        The station columns (``trafo_*``) are the feeder's transformers together
        (:func:`twin.grid.compliance.station_of`); the voltage columns cover the energised LV
        buses only, as the KPIs do (the MV bus of the external grid is not part of the feeder).
        """
        g = self.grid
        st = station_of(g, self.feeder.net)
        lv = self.lv_buses()
        vm = g.vm_pu[:, np.flatnonzero(lv)]
        bus_lv = g.bus_index[lv]
        n_t = g.n_steps
        frame: dict[str, Any] = {
            "time": self.window.times,
            "t_out_c": self.t_out_c,
            "p_households_kw": self.log["p_net_kw"].sum(axis=1),
            "p_loads_kw": self.p_load_kw.sum(axis=1),
            "trafo_p_kw": st.p_kw,
            **({} if st.q_kvar is None else {"trafo_q_kvar": st.q_kvar}),
            "trafo_s_kva": st.s_kva,
            "trafo_loading_pct": st.loading_pct,
        }
        if vm.shape[1]:
            frame.update(
                vm_min_pu=vm.min(axis=1),
                vm_min_bus=bus_lv[vm.argmin(axis=1)],
                vm_max_pu=vm.max(axis=1),
                vm_max_bus=bus_lv[vm.argmax(axis=1)],
            )
        ll = g.line_loading_pct
        if ll.shape[1]:
            worst = ll.argmax(axis=1)
            names = np.asarray(self.element_names("line"), dtype=object)
            frame.update(
                line_loading_max_pct=ll[np.arange(n_t), worst],
                line_worst=g.line_index[worst],
                line_worst_name=pd.Categorical(names[worst], categories=pd.unique(names)),
            )
        frame["losses_kw"] = g.losses_kw
        frame.update(self.contract_feeder)
        return pd.DataFrame(frame)

    # -- the grid's elements -------------------------------------------------------------------
    def lv_buses(self) -> np.ndarray:
        """``(n_bus,)`` bool over the result's bus columns: the energised LV buses (< 1 kV,
        finite voltage at every step), the buses the voltage KPIs cover."""
        g = self.grid
        return _lv_bus_mask(g, self.feeder.net) & np.isfinite(g.vm_pu).all(axis=0)

    def element_names(self, table: str) -> list[str]:
        """Names of the result's columns of ``net.<table>`` (``bus``, ``line``, ``trafo``), the
        index label where a row has no name."""
        net, g = self.feeder.net, self.grid
        index = {"bus": g.bus_index, "line": g.line_index, "trafo": g.trafo_index}[table]
        names = net[table]["name"] if "name" in net[table] else pd.Series(dtype=object)
        return [
            str(n) if isinstance(n, str) and n else f"{table} {i}"
            for i, n in zip(index, names.reindex(index).to_numpy(), strict=True)
        ]

    def worst_buses(self, n: int) -> np.ndarray:
        """``net.bus`` labels of the ``n`` LV buses furthest from 1 p.u. at any step (lowest
        or highest voltage), worst first."""
        g = self.grid
        cols = np.flatnonzero(self.lv_buses())
        dev = np.abs(g.vm_pu[:, cols] - 1.0).max(axis=0) if g.n_steps else np.zeros(len(cols))
        order = np.argsort(-dev, kind="stable")[: max(int(n), 0)]
        return g.bus_index[cols[order]]

    def worst_lines(self, n: int) -> np.ndarray:
        """``net.line`` labels of the ``n`` lines with the highest loading, worst first."""
        g = self.grid
        peak = g.line_loading_pct.max(axis=0) if g.n_steps else np.zeros(len(g.line_index))
        order = np.argsort(-peak, kind="stable")[: max(int(n), 0)]
        return g.line_index[order]

    def _tidy(self, table: str, labels: np.ndarray | None) -> tuple[TidyTable, np.ndarray]:
        """A tidy (time, element) table with its time and element columns, and the positions
        of the chosen elements in the result's columns."""
        g = self.grid
        index = {"bus": g.bus_index, "line": g.line_index, "trafo": g.trafo_index}[table]
        cols = (
            np.arange(len(index))
            if labels is None
            else pd.Index(index).get_indexer(np.asarray(labels, dtype=index.dtype))
        )
        if (cols < 0).any():
            raise KeyError(f"net.{table} has no row(s) {np.asarray(labels)[cols < 0].tolist()}")
        n_t, n_e = g.n_steps, len(cols)
        names = np.asarray(self.element_names(table), dtype=object)[cols]
        tidy = TidyTable(n_t, n_e).per_step("time", self.window.times.values[:n_t])
        tidy.per_step("step", np.arange(n_t, dtype=np.int32))
        tidy.per_element(table, index[cols].astype(np.int32))
        tidy.per_element(f"{table}_name", pd.Categorical(names, categories=pd.unique(names)))
        return tidy, cols

    def bus_table(self, buses: np.ndarray | None = None) -> TidyTable:
        """Tidy bus voltages (``buses.parquet``), see :meth:`bus_frame`."""
        tidy, cols = self._tidy("bus", buses)
        g, net = self.grid, self.feeder.net
        tidy.per_element("vn_kv", net.bus.loc[g.bus_index[cols], "vn_kv"].to_numpy(np.float32))
        tidy.per_element("lv", self.lv_buses()[cols])
        return tidy.cells("vm_pu", _columns_of(g.vm_pu, cols), np.float32)

    def bus_frame(self, buses: np.ndarray | None = None) -> pd.DataFrame:
        """Tidy bus voltages: one row per (time, bus), ``net.bus`` order within a step.

        Columns ``time``, ``step`` (reported step, from 0), ``bus`` (``net.bus`` index),
        ``bus_name``, ``vn_kv`` (nominal voltage), ``lv`` (an energised LV bus, as the KPIs
        count it), ``vm_pu``. ``buses``: ``net.bus`` labels to keep (default all, the MV bus
        included).
        """
        return self.bus_table(buses).frame()

    def line_table(self, lines: np.ndarray | None = None) -> TidyTable:
        """Tidy line results (``lines.parquet``), see :meth:`line_frame`."""
        tidy, cols = self._tidy("line", lines)
        g, net = self.grid, self.feeder.net
        amp = pd.Series(line_ampacity_ka(net), index=net.line.index)
        amp = amp.loc[g.line_index[cols]].to_numpy()
        loading = _columns_of(g.line_loading_pct, cols)
        tidy.cells("loading_pct", loading, np.float32)

        def current(k0: int, k1: int) -> np.ndarray:
            ll = loading(k0, k1) if callable(loading) else loading[k0:k1]
            return ll / 100.0 * amp

        tidy.cells("i_ka", current, np.float32)
        return tidy.cells("p_from_kw", _columns_of(g.line_p_from_kw, cols), np.float32)

    def line_frame(self, lines: np.ndarray | None = None) -> pd.DataFrame:
        """Tidy line results: one row per (time, line), ``net.line`` order within a step.

        Columns ``time``, ``step``, ``line`` (``net.line`` index), ``line_name``,
        ``loading_pct`` (current based, % of ``max_i_ka * df * parallel``), ``i_ka`` (the larger
        of the currents at both ends, ``loading_pct / 100 * ampacity``), ``p_from_kw`` (active
        power into the line at its ``from_bus``). ``lines``: ``net.line`` labels to keep.
        """
        return self.line_table(lines).frame()

    def load_table(self) -> TidyTable:
        """Tidy load powers as the power flow saw them (``loads.parquet``), see
        :meth:`load_frame`."""
        net = self.feeder.net
        n_t, n_l = self.p_load_kw.shape
        household = np.full(n_l, -1, dtype=np.int32)
        household[net.load.index.get_indexer(self.load_index)] = np.arange(len(self.load_index))
        names = net.load["name"] if "name" in net.load else pd.Series(index=net.load.index)
        names = np.asarray(
            [
                str(n) if isinstance(n, str) and n else f"load {i}"
                for i, n in zip(net.load.index, names.to_numpy(), strict=True)
            ],
            dtype=object,
        )
        tidy = TidyTable(n_t, n_l).per_step("time", self.window.times.values[:n_t])
        tidy.per_step("step", np.arange(n_t, dtype=np.int32))
        tidy.per_element("load", net.load.index.to_numpy().astype(np.int32))
        tidy.per_element("load_name", pd.Categorical(names, categories=pd.unique(names)))
        tidy.per_element("household", household)
        tidy.cells("p_kw", self.p_load_kw, np.float32)
        return tidy.cells("q_kvar", self.q_load_kvar, np.float32)

    def load_frame(self) -> pd.DataFrame:
        """Tidy load powers as the power flow saw them: one row per (time, ``net.load`` row).

        Columns ``time``, ``step``, ``load`` (``net.load`` index), ``load_name``,
        ``household`` (the household number, -1 for a load that is not a household), ``p_kw``
        (a household's ``p_net_kw``: consumption minus its PV), ``q_kvar``. With
        ``network.json`` this is all ``pandapower.runpp`` needs to reproduce a step
        (:func:`twin.grid.snapshot.net_from_folder`).
        """
        return self.load_table().frame()

    def trafo_table(self) -> TidyTable:
        """Tidy transformer results (``transformers.parquet``), see :meth:`trafo_frame`."""
        tidy, _ = self._tidy("trafo", None)
        g, net = self.grid, self.feeder.net
        tidy.per_element(
            "in_station", station_mask(net)[net.trafo.index.get_indexer(g.trafo_index)]
        )
        tidy.cells("p_hv_kw", g.trafo_p_kw, np.float32)
        tidy.cells("s_kva", g.trafo_s_kva, np.float32)
        return tidy.cells("loading_pct", g.trafo_loading_pct, np.float32)

    def trafo_frame(self) -> pd.DataFrame:
        """Tidy transformer results: one row per (time, ``net.trafo`` row).

        Columns ``time``, ``step``, ``trafo`` (``net.trafo`` index), ``trafo_name``,
        ``in_station`` (part of the feeder's MV/LV station, :mod:`twin.grid.ratings`),
        ``p_hv_kw`` (active power into the HV side, import > 0), ``s_kva`` (apparent power,
        the larger of both sides), ``loading_pct`` (power based, % of this row's rating).
        """
        return self.trafo_table().frame()

    # -- labels ----------------------------------------------------------------------------------
    def period(self) -> str:
        """The reported period, e.g. ``2025-12-01 – 2025-12-07 (7 d)``."""
        t = self.window.times
        last = (t[-1] + pd.Timedelta(hours=DT_H) - pd.Timedelta(minutes=1)).date()
        days = self.window.days
        return (
            f"{t[0].date()} ({days} d)"
            if last == t[0].date()
            else f"{t[0].date()} – {last} ({days} d)"
        )

    def title(self) -> str:
        """Feeder · scenario · contract · period: the line every figure and summary starts
        with."""
        k = self.kpis
        return f"{k['grid']} · {k['scenario']} · contract {k['contract']} · {self.period()}"

    def households_summary(self) -> pd.DataFrame:
        """One row per household: devices, parameters, the service levels it is owed (what a
        KPI is recomputed from, with households.parquet) and its own KPIs."""
        f = self.fleet
        lv = ServiceLevels.from_config(self.cfg.service)
        cols = per_household_table(self.log, f, lv, self.start_state["t_in_c"])
        ev = f.has_ev & (f.ev_capacity_kwh > 0)
        return pd.DataFrame(
            {
                "household": np.arange(f.n),
                "load_index": self.load_index,
                "heat_pump": np.where(
                    f.has_hp, np.where(f.hp_hybrid, "hybrid", "all-electric"), "none"
                ),
                "ev": f.has_ev,
                "pv_kwp": f.pv_kwp,
                "battery_kwh": f.bat_capacity_kwh,
                "battery_kw": f.bat_p_max_kw,
                "battery_eta": f.bat_eta,
                "persons": f.persons,
                "design_heat_load_kw": f.design_heat_load_kw,
                "hp_q_max_kw": f.hp_q_max_kw,
                "hp_t_bivalent_c": np.where(f.hp_hybrid, f.hp_t_bivalent_c, np.nan),
                "hp_price_switch": f.hp_price_switch,
                # the hot-water tank and its promise (twin.service: no draw cut)
                "tank_l": np.where(f.has_tank, f.tank_volume_l, 0.0),
                "tank_t_set_c": np.where(f.has_tank, f.tank_t_set_c, np.nan),
                "tank_t_usable_c": np.where(f.has_tank, f.dhw_model.t_usable_c, np.nan),
                "tank_ua_w_per_k": np.where(f.has_tank, f.tank_ua_kw_per_k * 1e3, 0.0),
                "dhw_litres_60c_per_day": np.where(
                    f.has_tank, f.persons * f.dhw_litres_per_person_day, 0.0
                ),
                "start_e_tank_kwh": self.start_state.get("e_tank_kwh", np.zeros(f.n)),
                # the PV roof (plane 2: the second half of an east/west split)
                "pv_tilt_deg": np.where(f.has_pv, f.pv_tilt_deg, np.nan),
                "pv_azimuth_deg": np.where(f.has_pv, f.pv_azimuth_deg, np.nan),
                "pv_azimuth2_deg": np.where(
                    f.has_pv & (f.pv_share2 > 0), f.pv_azimuth2_deg, np.nan
                ),
                "pv_dc_ac_ratio": np.where(f.has_pv, f.pv_dc_ac_ratio, np.nan),
                # the building (1R1C) and its comfort terms (twin.service)
                "r_k_per_kw": f.r_k_per_kw,
                "c_kwh_per_k": f.c_kwh_per_k,
                "setpoint_c": f.setpoint_c,
                "comfort_min_c": f.setpoint_c - lv.comfort_band_k,
                "comfort_max_c": f.setpoint_c + lv.comfort_above_k,
                "comfort_swing_k": np.full(f.n, lv.swing_k if lv.swing_k is not None else np.nan),
                "start_t_in_c": self.start_state["t_in_c"],
                **(self.household_phase_columns() if self.grid_phases is not None else {}),
                # the EV and its promise: range due at the deadline or departure, the reserve
                "ev_capacity_kwh": f.ev_capacity_kwh,
                "ev_charger_kw": f.ev_p_max_kw,
                "ev_kwh_per_km": np.where(ev, f.ev_kwh_per_km, 0.0),
                "ev_range_due_kwh": np.where(
                    ev, np.minimum(lv.ev_range_km * f.ev_kwh_per_km, f.ev_capacity_kwh), 0.0
                ),
                "ev_reserve_kwh": np.where(
                    ev, np.minimum(lv.ev_reserve_km * f.ev_kwh_per_km, f.ev_capacity_kwh), 0.0
                ),
                "ev_deadline_h": np.full(f.n, lv.ev_deadline_h),
                "ev_bidirectional": f.has_v2g,
                "ev_v2g_reserve_kwh": f.ev_v2g_reserve_kwh,
                "ev_wear_eur_per_kwh": f.ev_wear_eur_per_kwh,
                "start_ev_soc_kwh": self.start_state["ev_soc_kwh"],
                "start_bat_soc_kwh": self.start_state["bat_soc_kwh"],
                **self.contract_households,
                **cols,
                "stored_electricity_kwh": self.stored_electricity_kwh,
                "bill_total_eur": self.bills["total_eur"].to_numpy(),
            }
        )

    def phases_frame(self) -> pd.DataFrame | None:
        """Unbalanced runs: per-phase results as one tidy frame, None for balanced runs.

        One row per (time, element, index, phase): ``element`` is ``bus``, ``line`` or
        ``trafo``, ``index`` its ``net`` index label, ``phase`` ``a``/``b``/``c``, or ``n``
        for the residual (neutral) current of lines and transformers. Columns (float32, NaN
        where they do not apply): ``vm_pu`` and ``va_degree`` (buses, phase to earth),
        ``i_ka`` (lines: phase current, the larger end; ``n``: residual current; transformer
        ``n``: at its LV terminals), ``loading_pct`` (lines: of the ampacity; transformer: of
        a third of its rating, power based), ``s_kva`` (transformer: apparent power per LV
        phase).
        """
        g = self.grid_phases
        if g is None:
            return None
        times = self.window.times.values
        n_t = g.n_steps
        parts = []

        def block(element: str, index: np.ndarray, cols: dict[str, np.ndarray], phases):
            # cols: (T, n, len(phases)) arrays
            n, m = len(index), len(phases)
            frame = {
                "time": np.repeat(times[:n_t], n * m),
                "element": element,
                "index": np.tile(np.repeat(index.astype(np.int64), m), n_t),
                "phase": np.tile(np.asarray(phases, dtype=object), n_t * n),
            }
            for name in ("vm_pu", "va_degree", "i_ka", "loading_pct", "s_kva"):
                value = cols.get(name)
                frame[name] = (
                    np.full(n_t * n * m, np.nan, np.float32)
                    if value is None
                    else np.asarray(value, np.float32).reshape(-1)
                )
            parts.append(pd.DataFrame(frame))

        block("bus", g.bus_index, {"vm_pu": g.vm_pu, "va_degree": g.va_degree}, PHASES)
        nan_l = np.full(g.line_i_n_ka.shape + (1,), np.nan)
        block(
            "line",
            g.line_index,
            {
                "i_ka": np.concatenate([g.line_i_ka, g.line_i_n_ka[..., None]], axis=-1),
                "loading_pct": np.concatenate([g.line_loading_pct, nan_l], axis=-1),
            },
            (*PHASES, "n"),
        )
        nan_t = np.full(g.trafo_i_n_ka.shape + (1,), np.nan)
        block(
            "trafo",
            g.trafo_index,
            {
                "i_ka": np.concatenate(
                    [np.full(g.trafo_s_kva.shape, np.nan), g.trafo_i_n_ka[..., None]], axis=-1
                ),
                "loading_pct": np.concatenate([g.trafo_loading_pct, nan_t], axis=-1),
                "s_kva": np.concatenate([g.trafo_s_kva, nan_t], axis=-1),
            },
            (*PHASES, "n"),
        )
        out = pd.concat(parts, ignore_index=True)
        out["element"] = out["element"].astype("category")
        out["phase"] = out["phase"].astype("category")
        return out

    def household_phase_columns(self) -> dict[str, np.ndarray]:
        """Columns for :meth:`households_summary` naming each household's phases: ``connection``
        (``1-phase`` / ``3-phase``) and ``phase_<part>`` for ``base``, ``hp``, ``ev``, ``pv``,
        ``bat`` (``a``, ``b``, ``c``, ``abc`` for three-phase; empty where the household has
        no such device). Empty dict for a fleet without phases."""
        from twin.grid.phases import phase_label

        f = self.fleet
        if not f.has_phases:
            return {}
        has = {
            "base": np.ones(f.n, bool),
            "hp": f.has_hp,
            "ev": f.has_ev,
            "pv": f.has_pv,
            "bat": f.has_battery,
        }
        cols: dict[str, np.ndarray] = {
            "connection": np.where(f.phase_connection >= 0, "1-phase", "3-phase").astype(object)
        }
        for part in PHASE_DEVICES:
            label = phase_label(getattr(f, f"phase_{part}"))
            cols[f"phase_{part}"] = np.where(has[part], label, "").astype(object)
        return cols
