"""The measurement layer: what the DSO's and the households' meters have recorded so far.

The simulation holds the truth; a contract reads the *past* only through :class:`Meters`
(the transformer's meter, each connection's smart meter), never the simulation's logs. Every
read is checked against the simulation clock: a step that has not been simulated yet cannot be
read (the future is the forecaster's business, :mod:`twin.forecast`).

The clocked :class:`Meters` are what a contract reads while the simulation runs. What a DSO
*receives* from its sensors — the measurement layer proper, :func:`measure` — turns the
simulated truth into sensor readings (seeded noise per accuracy class, lost readings, delay
until the data arrive, aggregation over groups of connections) and pseudo-measurements where
no reading is there, as :class:`~twin.grid.estimation.SensorData` for the batch state
estimation (:mod:`twin.grid.estimation`). What is configurable, and the named presets, are the
``measurement`` config group (``twin/configs/measurement/``, keys in
:class:`twin.schema.MeasurementConfig`).

Conventions of the layer (each an assumption, stated once):

* **noise** is Gaussian with standard deviation ``*_sigma_pct`` of the measured quantity
  (of nominal for voltages) plus the configured ``*_floor`` (the sensor's resolution and
  offset), and the estimator weighs each reading with exactly that standard deviation (a
  correctly specified WLS for the sensors; pseudo-measurements are the part that is not); a
  near-perfect sensor is ``*_sigma_pct=0`` with a tiny floor;
* a **reading** of step ``t`` reaches the DSO at the end of step ``t + delay_steps``; the
  *nowcast* (what the DSO knows at the end of step ``t``, what it acts on) uses the readings
  that have arrived, the *final* estimate all readings that ever arrive;
* where a connection has no reading, its **pseudo-measurement** is the mean of its own arrived
  readings of the same quarter-hour over the past ``pseudo.history_days`` days, else its
  standard profile (the feeder's profile of that load: what a DSO holds from registration),
  with a standard deviation of ``pseudo.sigma_pct`` of the value plus ``pseudo.floor_kw``;
  reactive power where no meter reports it: ``P tan(acos(pseudo.power_factor))``;
* **aggregation** (``meters.aggregate_k = k > 1``): connections are grouped along the feeder
  (``net.load`` ordered by bus) in groups of at least ``k``; the DSO receives each group's
  summed reading (lost if any member's is) and allocates it over the members in proportion to
  their standard profiles, each allocated value with the member's meter standard deviation
  plus its pseudo standard deviation times ``sqrt(1 - 1/k)``; aggregated meters give no
  voltage (it cannot be attributed to a connection);
* every connection (households and the feeder's other loads alike) is a connection with a
  meter where ``meters.share`` says so (which ones: a seeded draw).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.grid.estimation import (
    BatchStateEstimator,
    SensorData,
    SensorLayout,
    SensorTruth,
)
from twin.timegrid import STEPS_PER_DAY

__all__ = [
    "MEASUREMENT_PRESETS",
    "StateEstimation",
    "estimate_feeder",
    "metered_connections",
    "Clock",
    "Measured",
    "MeasurementSettings",
    "Meters",
    "measure",
    "sensor_layout",
]

#: The shipped presets (``twin/configs/measurement/<name>.yaml``).
MEASUREMENT_PRESETS = ("full", "transformer_and_meters", "meters_only", "transformer_only")
#: The measurement layer's own random stream: a child of the run's seed that no other stream
#: uses (the model's streams are first-level children), so adding it changes no other draw.
_SPAWN_KEY = (0x5E, 13)


class Clock:
    """The simulation's current step: steps ``0 .. now - 1`` have been simulated."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now = 0


class Meters:
    """Ideal 15-minute meters over the simulated steps.

    Parameters
    ----------
    clock : Clock
        The simulation clock (reads beyond ``clock.now`` are refused).
    p_net_kw : np.ndarray
        ``(T, H)`` each household's net import as the simulation records it (read-only use).
    p_other_kw : np.ndarray
        ``(T, n_other)`` the feeder's other (non-household) loads.
    """

    __slots__ = ("_clock", "_p_base", "_p_net", "_p_other", "_p_pv", "_q_heat")

    def __init__(
        self,
        clock: Clock,
        p_net_kw: np.ndarray,
        p_other_kw: np.ndarray,
        p_base_kw: np.ndarray | None = None,
        p_pv_kw: np.ndarray | None = None,
        q_heat_kw: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self._clock = clock
        self._q_heat = q_heat_kw
        self._p_net = p_net_kw
        self._p_other = p_other_kw
        self._p_base = p_base_kw
        self._p_pv = p_pv_kw

    def _check(self, k_start: int, k_end: int) -> None:
        if not 0 <= k_start <= k_end <= self._clock.now:
            raise RuntimeError(
                f"meters read steps {k_start}..{k_end - 1}, but only steps before "
                f"{self._clock.now} have been measured"
            )

    def transformer_kw(self, k_start: int, k_end: int) -> np.ndarray:
        """``(k_end - k_start,)`` the station's metered active load (all loads), kW."""
        self._check(k_start, k_end)
        p = self._p_net[k_start:k_end].sum(axis=1)
        return p + self._p_other[k_start:k_end].sum(axis=1)

    def inflexible_kw(self, k_start: int, k_end: int) -> np.ndarray:
        """``(k_end - k_start,)`` the feeder's inflexible load (households' base load minus PV
        and the other loads), kW. Assumption: the households' controllable devices are
        sub-metered (a HEMS under a contract reports what its devices drew), so the DSO can
        tell the inflexible part of the measured load apart."""
        self._check(k_start, k_end)
        p = self._p_base[k_start:k_end].sum(axis=1) - self._p_pv[k_start:k_end].sum(axis=1)
        return p + self._p_other[k_start:k_end].sum(axis=1)

    def heat_kw(self, k_start: int, k_end: int, households: np.ndarray) -> np.ndarray:
        """``(k_end - k_start, n)`` heat each home's heating delivered (heat pump and a
        hybrid's boiler, kW): every heat pump reports its heat output to its HEMS."""
        self._check(k_start, k_end)
        q_hp, q_boiler = self._q_heat
        return q_hp[k_start:k_end, households] + q_boiler[k_start:k_end, households]

    def household_kw(
        self, k_start: int, k_end: int, households: np.ndarray | None = None
    ) -> np.ndarray:
        """``(k_end - k_start, n)`` smart-meter readings (net import, kW) of ``households``."""
        self._check(k_start, k_end)
        rows = self._p_net[k_start:k_end]
        return rows if households is None else rows[:, households]


# ----------------------------------------------------------------------------------------------
# the measurement layer: what the DSO receives
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeasurementSettings:
    """The ``measurement`` config group as plain values (see :class:`twin.schema.MeasurementConfig`)."""

    name: str = "full"
    estimate: bool = True
    method: str = "auto"
    trafo: bool = True
    trafo_power_sigma_pct: float = 0.5
    trafo_power_floor_kw: float = 0.5
    trafo_u_sigma_pct: float = 0.2
    trafo_u_floor_pct: float = 0.01
    heads: bool = False
    head_i_sigma_pct: float = 1.0
    head_i_floor_a: float = 1.0
    head_angle_sigma_deg: float = 1.0
    head_angle_floor_deg: float = 0.1
    meter_share: float = 1.0
    meter_sigma_pct: float = 1.0
    meter_floor_kw: float = 0.004
    meter_reactive: bool = False
    meter_voltage: bool = True
    meter_u_sigma_pct: float = 0.5
    meter_u_floor_pct: float = 0.05
    meter_missing_share: float = 0.0
    meter_delay_steps: int = 0
    meter_aggregate_k: int = 1
    pseudo_sigma_pct: float = 50.0
    pseudo_floor_kw: float = 0.3
    pseudo_history_days: int = 7
    pseudo_power_factor: float = 0.97
    pseudo_source_u_sigma_pct: float = 2.0

    @classmethod
    def from_config(cls, cfg: Any) -> MeasurementSettings:
        """From the composed ``measurement`` node (None: the defaults)."""
        if cfg is None:
            return cls()
        t, h, m, p = cfg.transformer, cfg.cable_heads, cfg.meters, cfg.pseudo
        return cls(
            name=str(cfg.name),
            estimate=bool(cfg.estimate),
            method=str(cfg.method),
            trafo=bool(t.present),
            trafo_power_sigma_pct=float(t.power_sigma_pct),
            trafo_power_floor_kw=float(t.power_floor_kw),
            trafo_u_sigma_pct=float(t.u_sigma_pct),
            trafo_u_floor_pct=float(t.u_floor_pct),
            heads=bool(h.present),
            head_i_sigma_pct=float(h.i_sigma_pct),
            head_i_floor_a=float(h.i_floor_a),
            head_angle_sigma_deg=float(h.angle_sigma_deg),
            head_angle_floor_deg=float(h.angle_floor_deg),
            meter_share=float(m.share),
            meter_sigma_pct=float(m.sigma_pct),
            meter_floor_kw=float(m.floor_kw),
            meter_reactive=bool(m.reactive),
            meter_voltage=bool(m.voltage),
            meter_u_sigma_pct=float(m.u_sigma_pct),
            meter_u_floor_pct=float(m.u_floor_pct),
            meter_missing_share=float(m.missing_share),
            meter_delay_steps=int(m.delay_steps),
            meter_aggregate_k=int(m.aggregate_k),
            pseudo_sigma_pct=float(p.sigma_pct),
            pseudo_floor_kw=float(p.floor_kw),
            pseudo_history_days=int(p.history_days),
            pseudo_power_factor=float(p.power_factor),
            pseudo_source_u_sigma_pct=float(p.source_u_sigma_pct),
        )


def _rng(seed: int, stream: int) -> np.random.Generator:
    """The layer's streams, one per kind of draw (0: which connections are metered, 1: meter
    power noise and lost readings, 2: meter voltage noise, 3: station sensor, 4: cable
    heads), so that a preset with fewer sensors reads the sensors it keeps exactly as one
    with more does."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(*_SPAWN_KEY, stream))
    return np.random.default_rng(ss)


def metered_connections(settings: MeasurementSettings, n_load: int, seed: int) -> np.ndarray:
    """``(n_load,)`` which connections' smart meters reach the DSO (a seeded draw of
    ``round(share * n_load)``; the same connections for the same seed, nested in the share)."""
    order = _rng(seed, 0).permutation(n_load)
    n = int(round(settings.meter_share * n_load))
    out = np.zeros(n_load, bool)
    out[order[:n]] = True
    return out


def sensor_layout(settings: MeasurementSettings, metered: np.ndarray) -> SensorLayout:
    """Where the sensors of ``settings`` are (``metered``: connections with a meter)."""
    voltage = settings.meter_voltage and settings.meter_aggregate_k == 1
    return SensorLayout(
        trafo=settings.trafo,
        cable_heads=settings.heads,
        voltage_loads=np.flatnonzero(metered) if voltage else np.zeros(0, np.int64),
        source_sigma_pu=settings.pseudo_source_u_sigma_pct / 100.0,
    )


@dataclass
class Measured:
    """What the DSO received over the reported steps, ready for the estimator.

    ``nowcast``: the data as known at the end of each step (what the DSO acts on); ``final``:
    with every reading that ever arrives (None when that is the nowcast: no delay, or no
    meters); ``metered``: ``(n_load,)`` connections with a meter; ``reading_share``: share of
    connection-steps the nowcast has a reading for (the rest are pseudo-measurements).
    """

    nowcast: SensorData
    final: SensorData | None
    metered: np.ndarray
    reading_share: float
    final_reading_share: float


def _groups(bus: np.ndarray, members: np.ndarray, k: int) -> np.ndarray:
    """``(n_load,)`` group number of each metered connection (-1: none), groups of at least
    ``k`` along the feeder (ordered by bus, then row); a short remainder joins the last group."""
    g = np.full(len(bus), -1)
    idx = members[np.argsort(bus[members], kind="stable")]
    n_groups = max(len(idx) // k, 1) if len(idx) else 0
    for j, i in enumerate(idx):
        g[i] = min(j // k, n_groups - 1)
    return g


def _history_pseudo(
    reading: np.ndarray, have: np.ndarray, rows: np.ndarray, lags: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``reading`` where ``have`` over the lags (steps back), for the steps ``rows``
    (positions in the full arrays); and how many lags contributed."""
    total = np.zeros((len(rows), reading.shape[1]))
    count = np.zeros((len(rows), reading.shape[1]))
    for lag in lags:
        src = rows - lag
        ok = src >= 0
        r = np.where(ok)[0]
        h = have[src[ok]]
        total[r] += np.where(h, reading[src[ok]], 0.0)
        count[r] += h
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return mean, count


def measure(
    settings: MeasurementSettings,
    estimator: BatchStateEstimator,
    truth: SensorTruth,
    p_load_kw: np.ndarray,
    q_load_kvar: np.ndarray,
    profile_p_kw: np.ndarray,
    n_warmup_steps: int,
    metered: np.ndarray,
    seed: int,
) -> Measured:
    """Turn the truth into what the DSO receives (the module docstring's conventions).

    Parameters
    ----------
    settings : MeasurementSettings
        The preset.
    estimator : BatchStateEstimator
        Built with :func:`sensor_layout` of ``settings`` and ``metered``.
    truth : SensorTruth
        Ideal sensor readings of the reported steps (:meth:`BatchStateEstimator.sensor_truth`).
    p_load_kw, q_load_kvar : np.ndarray
        ``(T_sim, n_load)`` true load of every ``net.load`` row over every simulated step
        (warm-up first: the meters' history), kW/kvar.
    profile_p_kw : np.ndarray
        ``(T_sim, n_load)`` each connection's standard profile over the same steps.
    n_warmup_steps : int
        Leading steps of the arrays that are not reported.
    metered : np.ndarray
        ``(n_load,)`` connections with a meter (:func:`metered_connections`).
    seed : int
        The run's seed (the layer's own child stream).
    """
    s = settings
    rng = _rng(seed, 1)
    n_all, n_load = p_load_kw.shape
    rep = np.arange(n_warmup_steps, n_all)
    tan_phi = np.tan(np.arccos(s.pseudo_power_factor))
    # -- smart meters: readings of every simulated step (the history the pseudo uses) -------
    sig_p = s.meter_sigma_pct / 100.0 * np.abs(p_load_kw) + s.meter_floor_kw
    sig_q = s.meter_sigma_pct / 100.0 * np.abs(q_load_kvar) + s.meter_floor_kw
    p_read = p_load_kw + rng.normal(0.0, 1.0, p_load_kw.shape) * sig_p
    q_read = q_load_kvar + rng.normal(0.0, 1.0, q_load_kvar.shape) * sig_q
    if not s.meter_reactive:  # Q from an assumed power factor: as uncertain as a pseudo
        q_read = p_read * tan_phi
        sig_q = s.pseudo_sigma_pct / 100.0 * np.abs(q_read) + s.pseudo_floor_kw * tan_phi
    lost = rng.random(p_load_kw.shape) < s.meter_missing_share
    have = metered[None, :] & ~lost
    k = s.meter_aggregate_k
    if k > 1 and metered.any():
        bus = estimator.net.load["bus"].to_numpy()
        grp = _groups(bus, np.flatnonzero(metered), k)
        n_g = grp.max() + 1
        cols = np.flatnonzero(grp >= 0)
        gi = grp[cols]
        w = np.maximum(profile_p_kw[:, cols], 0.01)
        w_sum = np.zeros((n_all, n_g))
        np.add.at(w_sum.T, gi, w.T)
        share = w / w_sum[:, gi]
        g_sum = np.zeros((n_all, n_g))
        np.add.at(g_sum.T, gi, p_read[:, cols].T)
        g_have = np.ones((n_all, n_g), bool)
        np.logical_and.at(g_have.T, gi, have[:, cols].T)
        p_read[:, cols] = share * g_sum[:, gi]
        q_read[:, cols] = p_read[:, cols] * tan_phi if not s.meter_reactive else q_read[:, cols]
        have[:, cols] = g_have[:, gi]
        extra = np.sqrt(1.0 - 1.0 / k) * s.pseudo_sigma_pct / 100.0
        sig_p[:, cols] += extra * np.abs(p_read[:, cols]) + np.sqrt(1 - 1 / k) * s.pseudo_floor_kw
    u_read = None
    if len(estimator.voltage_loads):
        bus_col = estimator.net.bus.index.get_indexer(
            estimator.net.load["bus"].to_numpy()[estimator.voltage_loads]
        )
        u_true = truth.bus_u_pu[:, bus_col]
        # every connection's noise is drawn, so the readings kept do not depend on how many
        u_sig = (s.meter_u_sigma_pct + s.meter_u_floor_pct) / 100.0
        noise = _rng(seed, 2).normal(0.0, u_sig, (len(u_true), n_load))
        u_read = u_true + noise[:, estimator.voltage_loads]

    # -- pseudo-measurements ------------------------------------------------------------------
    d = s.meter_delay_steps
    history = [day * STEPS_PER_DAY for day in range(1, s.pseudo_history_days + 1)]
    arrived_lags = [lag for lag in history if lag >= d]
    mean, count = _history_pseudo(p_read, have, rep, arrived_lags)
    prof = profile_p_kw[rep]
    pseudo_p = np.where(count > 0, mean, prof)
    pseudo_q = pseudo_p * tan_phi
    pseudo_sp = s.pseudo_sigma_pct / 100.0 * np.abs(pseudo_p) + s.pseudo_floor_kw
    pseudo_sq = s.pseudo_sigma_pct / 100.0 * np.abs(pseudo_q) + s.pseudo_floor_kw * tan_phi

    def sensor_data(now: np.ndarray) -> SensorData:
        """SensorData with the readings ``now`` ``(n_t, n_load)`` and pseudo elsewhere."""
        r = rep
        data = SensorData(
            load_p_kw=np.where(now, p_read[r], pseudo_p),
            load_q_kvar=np.where(now, q_read[r], pseudo_q),
            load_p_sigma_kw=np.where(now, sig_p[r], pseudo_sp),
            load_q_sigma_kvar=np.where(now, sig_q[r], pseudo_sq),
        )
        if u_read is not None:
            vl = estimator.voltage_loads
            data.meter_u_pu = np.where(now[:, vl], u_read, np.nan)
            data.meter_u_sigma_pu = np.full(u_read.shape, u_sig)
        return data

    have_rep = have[rep]
    now = have_rep if d == 0 else np.zeros_like(have_rep)
    nowcast = sensor_data(now)
    final = sensor_data(have_rep) if d > 0 and have_rep.any() else None

    # -- station and cable heads (real time) ---------------------------------------------------
    for data in (nowcast, final):
        if data is None:
            continue
        if estimator.layout.trafo:
            data.trafo_p_kw = truth.trafo_p_kw
            data.trafo_q_kvar = truth.trafo_q_kvar
            data.trafo_u_pu = truth.trafo_u_pu
        if len(estimator.heads):
            data.line_i_ka = truth.line_i_ka
            data.line_i_angle_rad = truth.line_i_angle_rad
    if estimator.layout.trafo:
        rng = _rng(seed, 3)
        ts = (
            s.trafo_power_sigma_pct / 100.0 * np.hypot(truth.trafo_p_kw, truth.trafo_q_kvar)
            + s.trafo_power_floor_kw
        )
        tus = np.full(truth.trafo_u_pu.shape, (s.trafo_u_sigma_pct + s.trafo_u_floor_pct) / 100.0)
        tp = truth.trafo_p_kw + rng.normal(0, 1, ts.shape) * ts
        tq = truth.trafo_q_kvar + rng.normal(0, 1, ts.shape) * ts
        tu = truth.trafo_u_pu + rng.normal(0, 1, tus.shape) * tus
        for data in (nowcast, final):
            if data is not None:
                data.trafo_p_kw, data.trafo_q_kvar, data.trafo_u_pu = tp, tq, tu
                data.trafo_power_sigma_kw, data.trafo_u_sigma_pu = ts, tus
    if len(estimator.heads):
        rng = _rng(seed, 4)
        i = truth.line_i_ka
        i_sig = s.head_i_sigma_pct / 100.0 * np.abs(i) + s.head_i_floor_a / 1e3
        a_sig = np.full(i.shape, np.deg2rad(s.head_angle_sigma_deg + s.head_angle_floor_deg))
        i_read = i + rng.normal(0, 1, i.shape) * i_sig
        a_read = truth.line_i_angle_rad + rng.normal(0, 1, i.shape) * a_sig
        for data in (nowcast, final):
            if data is not None:
                data.line_i_ka, data.line_i_angle_rad = i_read, a_read
                data.line_i_sigma_ka, data.line_angle_sigma_rad = i_sig, a_sig
    n_cells = max(now.size, 1)
    return Measured(
        nowcast=nowcast,
        final=final,
        metered=metered,
        reading_share=float(now.sum() / n_cells),
        final_reading_share=float(have_rep.sum() / n_cells),
    )


@dataclass
class StateEstimation:
    """A run's state estimation: the nowcast (what the DSO acts on), the final estimate (all
    readings arrived; None when it equals the nowcast), the measurements, and the KPIs."""

    settings: MeasurementSettings
    nowcast: Any  # twin.grid.estimation.Estimate
    final: Any | None
    measured: Measured
    kpis: dict[str, Any]


def estimate_feeder(
    settings: MeasurementSettings,
    net: Any,
    p_load_kw: np.ndarray,
    q_load_kvar: np.ndarray,
    profile_p_kw: np.ndarray,
    n_warmup_steps: int,
    truth: Any,
    seed: int,
    threads: int = 0,
) -> StateEstimation:
    """Measure the truth as ``settings`` says and estimate every reported step in batch.

    ``p_load_kw``/``q_load_kvar``/``profile_p_kw`` cover every simulated step (warm-up
    first); ``truth`` is the power flow of the reported steps
    (:class:`~twin.grid.powerflow.PowerFlowResult`), which only scores the estimate.
    """
    from twin.grid.estimation import estimation_errors

    metered = metered_connections(settings, p_load_kw.shape[1], seed)
    layout = sensor_layout(settings, metered)
    method = settings.method
    if method == "auto":  # PGM's Newton-Raphson WLS takes no current sensors
        method = "iterative_linear" if layout.cable_heads else "newton_raphson"
    est = BatchStateEstimator(net, layout, threads=threads, method=method)
    rep = slice(n_warmup_steps, None)
    sensors = est.sensor_truth(p_load_kw[rep], q_load_kvar[rep])
    measured = measure(
        settings, est, sensors, p_load_kw, q_load_kvar, profile_p_kw, n_warmup_steps, metered, seed
    )
    nowcast = est.run(measured.nowcast)
    final = est.run(measured.final) if measured.final is not None else None
    kpis: dict[str, Any] = {
        "se_preset": settings.name,
        "se_meters": int(metered.sum()),
        "se_reading_share": measured.reading_share,
        "se_voltage_sensors": int(len(est.voltage_loads) + len(est.units) * settings.trafo),
        "se_current_sensors": int(len(est.heads)),
        "se_method": method,
    }
    kpis.update(estimation_errors(nowcast, truth, net, "se"))
    if final is not None:
        kpis["se_final_reading_share"] = measured.final_reading_share
        kpis.update(estimation_errors(final, truth, net, "se_final"))
    if nowcast.first_error:
        kpis["se_first_error"] = nowcast.first_error
    # (the wall time is in timings.json: a KPI must not differ between two runs of one seed)
    return StateEstimation(settings, nowcast, final, measured, kpis)
