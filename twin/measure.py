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
    "dso_read_kpis",
    "estimate_feeder",
    "metered_connections",
    "Clock",
    "DsoMeters",
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
    """The households' own meters over the simulated steps (what each HEMS reads of its own
    house: exact; the DSO reads :class:`DsoMeters`).

    Parameters
    ----------
    clock : Clock
        The simulation clock (reads beyond ``clock.now`` are refused).
    p_net_kw : np.ndarray
        ``(T, H)`` each household's net import as the simulation records it (read-only use).
    q_heat_kw : tuple of np.ndarray
        ``(T, H)`` heat delivered by each home's heat pump and by its boiler.
    """

    __slots__ = ("_clock", "_p_net", "_q_heat")

    def __init__(
        self,
        clock: Clock,
        p_net_kw: np.ndarray,
        q_heat_kw: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        self._clock = clock
        self._q_heat = q_heat_kw
        self._p_net = p_net_kw

    def _check(self, k_start: int, k_end: int) -> None:
        if not 0 <= k_start <= k_end <= self._clock.now:
            raise RuntimeError(
                f"meters read steps {k_start}..{k_end - 1}, but only steps before "
                f"{self._clock.now} have been measured"
            )

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
    dso_reads: str = "estimate"
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
            dso_reads=str(cfg.dso_reads),
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
    rows = np.asarray(rows)
    if len(rows) and rows[0] >= 0 and np.array_equal(rows, np.arange(rows[0], rows[0] + len(rows))):
        # consecutive steps (every caller): slices instead of gathers, the same sums
        a = int(rows[0])
        for lag in lags:
            i0 = max(lag - a, 0)  # the first row with a step ``lag`` back
            if i0 >= len(rows):
                continue
            src = slice(a + i0 - lag, a + len(rows) - lag)
            h = have[src]
            total[i0:] += np.where(h, reading[src], 0.0)
            count[i0:] += h
        mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        return mean, count
    for lag in lags:
        src = rows - lag
        ok = src >= 0
        r = np.where(ok)[0]
        h = have[src[ok]]
        total[r] += np.where(h, reading[src[ok]], 0.0)
        count[r] += h
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return mean, count


def meter_groups(settings: MeasurementSettings, bus: np.ndarray, metered: np.ndarray) -> np.ndarray:
    """``(n_load,)`` each metered connection's aggregation group (-1: none, and every
    connection when ``meters.aggregate_k`` is 1); ``bus``: each connection's bus."""
    if settings.meter_aggregate_k > 1 and metered.any():
        return _groups(bus, np.flatnonzero(metered), settings.meter_aggregate_k)
    return np.full(len(bus), -1)


def meter_noise(
    settings: MeasurementSettings, seed: int, shape: tuple[int, int], stream: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The smart meters' draws over ``shape`` = (simulated steps, connections): standard
    normal noise of P and of Q, and which readings are lost, in this order from the layer's
    stream 1 (the history before the window, which the forecaster learns from: stream 7)."""
    rng = _rng(seed, stream)
    z_p = rng.normal(0.0, 1.0, shape)
    z_q = rng.normal(0.0, 1.0, shape)
    lost = rng.random(shape) < settings.meter_missing_share
    return z_p, z_q, lost


def meter_readings(
    settings: MeasurementSettings,
    p_kw: np.ndarray,
    q_kvar: np.ndarray,
    z_p: np.ndarray,
    z_q: np.ndarray,
    lost: np.ndarray,
    metered: np.ndarray,
    groups: np.ndarray,
    profile_p_kw: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the connections' smart meters read at some steps (rows of the ``(n, n_load)``
    arrays: true P and Q, the draws of :func:`meter_noise`, the standard profiles): ``(p, q,
    sigma_p, sigma_q, have)`` with the accuracy class's noise, the lost readings, the
    aggregation (module docstring). Row by row: any subset of steps reads the same."""
    s = settings
    tan_phi = np.tan(np.arccos(s.pseudo_power_factor))
    sig_p = meter_sigma_kw(s, p_kw)
    sig_q = meter_sigma_kw(s, q_kvar)
    p_read = p_kw + z_p * sig_p
    q_read = q_kvar + z_q * sig_q
    if not s.meter_reactive:  # Q from an assumed power factor: as uncertain as a pseudo
        q_read = p_read * tan_phi
        sig_q = s.pseudo_sigma_pct / 100.0 * np.abs(q_read) + s.pseudo_floor_kw * tan_phi
    have = metered[None, :] & ~lost
    k = s.meter_aggregate_k
    cols = np.flatnonzero(groups >= 0)
    if k > 1 and len(cols):
        n_all = len(p_kw)
        n_g = groups.max() + 1
        gi = groups[cols]
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
    return p_read, q_read, sig_p, sig_q, have


def pseudo_lags(settings: MeasurementSettings) -> list[int]:
    """Steps back whose readings a pseudo-measurement averages: the same quarter-hour of the
    past ``pseudo.history_days`` days, those that have arrived by the end of the step."""
    d = settings.meter_delay_steps
    history = [day * STEPS_PER_DAY for day in range(1, settings.pseudo_history_days + 1)]
    return [lag for lag in history if lag >= d]


def pseudo_p_kw(
    settings: MeasurementSettings,
    p_read: np.ndarray,
    have: np.ndarray,
    rows: np.ndarray,
    profile_p_kw: np.ndarray,
) -> np.ndarray:
    """``(len(rows), n_load)`` the pseudo-measurement of P at steps ``rows`` (positions in
    ``p_read``/``have``, every earlier step's readings): the mean of the connection's arrived
    readings of the same quarter-hour (:func:`pseudo_lags`), else ``profile_p_kw`` (the
    standard profile at ``rows``)."""
    mean, count = _history_pseudo(p_read, have, rows, pseudo_lags(settings))
    return np.where(count > 0, mean, profile_p_kw)


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
    n_all, n_load = p_load_kw.shape
    rep = np.arange(n_warmup_steps, n_all)
    # -- smart meters: readings of every simulated step (the history the pseudo uses) -------
    z_p, z_q, lost = meter_noise(s, seed, p_load_kw.shape)
    groups = meter_groups(s, estimator.net.load["bus"].to_numpy(), metered)
    p_read, q_read, sig_p, sig_q, have = meter_readings(
        s, p_load_kw, q_load_kvar, z_p, z_q, lost, metered, groups, profile_p_kw
    )
    del z_p, z_q, lost  # (a year of the default feeder: ~30 MB each; memory is the limit here)
    u_read = None
    if len(estimator.voltage_loads):
        bus_col = estimator.net.bus.index.get_indexer(
            estimator.net.load["bus"].to_numpy()[estimator.voltage_loads]
        )
        u_true = truth.bus_u_pu[:, bus_col]
        u_sig = meter_u_sigma_pu(s)
        noise = meter_u_noise(s, seed, (len(u_true), n_load))
        u_read = u_true + noise[:, estimator.voltage_loads]
        del u_true, noise

    # -- pseudo-measurements ------------------------------------------------------------------
    d = s.meter_delay_steps
    rs = slice(n_warmup_steps, n_all)  # the reported steps (a view, not a copy)
    have_rep = have[rs]
    now = have_rep if d == 0 else np.zeros_like(have_rep)
    final_wanted = d > 0 and have_rep.any()
    pseudo: tuple[np.ndarray, ...] = ()
    # where every reading is there in time (e.g. the full preset), no pseudo-measurement is
    # ever used: it is not made (a year: six arrays of ~30 MB and their temporaries)
    if not now.all() or (final_wanted and not have_rep.all()):
        pseudo = pseudo_columns(s, pseudo_p_kw(s, p_read, have, rep, profile_p_kw[rep]))

    reads = (p_read[rs], q_read[rs], sig_p[rs], sig_q[rs])
    del p_read, q_read, sig_p, sig_q  # (the views in reads keep them until the data is made)

    def sensor_data(now: np.ndarray) -> SensorData:
        """SensorData with the readings ``now`` ``(n_t, n_load)`` and pseudo elsewhere."""
        some = bool(now.any())  # none (late meters' nowcast): the pseudo arrays as they are
        if now.all():  # np.where(now, read, pseudo) is the reading everywhere
            cols = [x.copy() for x in reads]
        elif not some:
            cols = list(pseudo)
        else:
            cols = [np.where(now, x, ps) for x, ps in zip(reads, pseudo, strict=True)]
        data = SensorData(
            load_p_kw=cols[0],
            load_q_kvar=cols[1],
            load_p_sigma_kw=cols[2],
            load_q_sigma_kvar=cols[3],
        )
        if u_read is not None:
            vl = estimator.voltage_loads
            data.meter_u_pu = (
                np.where(now[:, vl], u_read, np.nan) if some else np.full(u_read.shape, np.nan)
            )
            data.meter_u_sigma_pu = np.full(u_read.shape, u_sig)
        return data

    nowcast = sensor_data(now)
    final = sensor_data(have_rep) if final_wanted else None
    reads, pseudo = (), ()

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
        z_tp, z_tq, z_tu = trafo_noise(seed, truth.trafo_p_kw.shape)
        tp, tq, ts = trafo_readings(s, truth.trafo_p_kw, truth.trafo_q_kvar, z_tp, z_tq)
        tu, tus = trafo_u_readings(s, truth.trafo_u_pu, z_tu)
        for data in (nowcast, final):
            if data is not None:
                data.trafo_p_kw, data.trafo_q_kvar, data.trafo_u_pu = tp, tq, tu
                data.trafo_power_sigma_kw, data.trafo_u_sigma_pu = ts, tus
    if len(estimator.heads):
        i = truth.line_i_ka
        # the cable heads' draws from stream 4; every further cable's from a stream of its
        # own, so adding a sensor leaves the readings of the others as they were
        n_std = estimator.n_cable_heads
        z_i, z_a = np.empty(i.shape), np.empty(i.shape)
        z_i[:, :n_std], z_a[:, :n_std] = head_noise(seed, (len(i), n_std))
        for c in range(n_std, i.shape[1]):
            r = np.random.default_rng(
                np.random.SeedSequence(
                    int(seed), spawn_key=(*_SPAWN_KEY, 8, int(estimator.heads[c]))
                )
            )
            z_i[:, c] = r.normal(0, 1, len(i))
            z_a[:, c] = r.normal(0, 1, len(i))
        i_read, a_read, i_sig, a_sig = head_readings(s, i, truth.line_i_angle_rad, z_i, z_a)
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


def sum_sigma_kw(load_sigma_kw: np.ndarray, station_sigma_kw: np.ndarray | None) -> np.ndarray:
    """``(n,)`` the standard deviation of the feeder load the DSO holds, per step, kW: of the
    sum over the connections' values (``(n, n_load)`` their standard deviations, independent
    errors), combined, where there is one, with the station sensor's (``(n, n_units)``) as
    two independent measurements of the same total (linearised, the cable losses left out)."""
    var_m = np.square(load_sigma_kw).sum(axis=1)
    if station_sigma_kw is None or not station_sigma_kw.size:
        return np.sqrt(var_m)
    var_t = np.square(station_sigma_kw).sum(axis=1)
    return np.sqrt(var_m * var_t / (var_m + var_t))


def station_units(net: Any) -> np.ndarray:
    """Positions (``net.trafo`` rows) of the station's transformer units."""
    from twin.grid.ratings import station_mask

    if net is None or not len(net.trafo):
        return np.zeros(0, np.int64)
    return np.flatnonzero(station_mask(net))


def trafo_noise(
    seed: int, shape: tuple[int, int], stream: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The station sensor's standard normal draws over ``shape`` = (reported steps, units):
    P, Q, U in this order from the layer's stream 3 (the warm-up steps, which only the DSO's
    meters in the loop read: stream 5)."""
    rng = _rng(seed, stream)
    return rng.normal(0, 1, shape), rng.normal(0, 1, shape), rng.normal(0, 1, shape)


def trafo_readings(
    settings: MeasurementSettings,
    p_kw: np.ndarray,
    q_kvar: np.ndarray,
    z_p: np.ndarray,
    z_q: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The station sensor's P and Q readings and their standard deviation (kW) from the true
    P and Q at each unit's LV terminal and the draws of :func:`trafo_noise`."""
    ts = trafo_sigma_kw(settings, p_kw, q_kvar)
    return p_kw + z_p * ts, q_kvar + z_q * ts, ts


def trafo_sigma_kw(
    settings: MeasurementSettings, p_kw: np.ndarray, q_kvar: np.ndarray
) -> np.ndarray:
    """The station sensor's standard deviation of P and Q (kW) at the power ``(p, q)``."""
    s = settings
    return s.trafo_power_sigma_pct / 100.0 * np.hypot(p_kw, q_kvar) + s.trafo_power_floor_kw


def meter_sigma_kw(settings: MeasurementSettings, x: np.ndarray) -> np.ndarray:
    """A smart meter's standard deviation of a reading of ``x`` (kW or kvar)."""
    return settings.meter_sigma_pct / 100.0 * np.abs(x) + settings.meter_floor_kw


def trafo_u_readings(
    settings: MeasurementSettings, u_pu: np.ndarray, z_u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The station sensor's voltage readings and their standard deviation (p.u.) from the true
    LV bus voltage and the draws of :func:`trafo_noise`."""
    s = settings
    sig = np.full(u_pu.shape, (s.trafo_u_sigma_pct + s.trafo_u_floor_pct) / 100.0)
    return u_pu + z_u * sig, sig


def meter_u_sigma_pu(settings: MeasurementSettings) -> float:
    """A smart meter's voltage reading's standard deviation (p.u.)."""
    return (settings.meter_u_sigma_pct + settings.meter_u_floor_pct) / 100.0


def meter_u_noise(
    settings: MeasurementSettings, seed: int, shape: tuple[int, int], stream: int = 2
) -> np.ndarray:
    """The smart meters' voltage noise (p.u.) over ``shape`` = (reported steps, connections):
    every connection's is drawn, so the readings kept do not depend on how many read voltage
    (stream 2; the warm-up steps, which only the DSO's meters in the loop read: stream 9)."""
    return _rng(seed, stream).normal(0.0, meter_u_sigma_pu(settings), shape)


def head_noise(seed: int, shape: tuple[int, int], stream: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The cable-head current sensors' standard normal draws over ``shape`` = (reported steps,
    cable heads): magnitude, then angle (stream 4; the warm-up steps: stream 10)."""
    rng = _rng(seed, stream)
    return rng.normal(0, 1, shape), rng.normal(0, 1, shape)


def head_readings(
    settings: MeasurementSettings,
    i_ka: np.ndarray,
    angle_rad: np.ndarray,
    z_i: np.ndarray,
    z_a: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Current sensors' magnitude (kA) and local-angle (rad) readings and their standard
    deviations from the true current and the draws of :func:`head_noise`."""
    s = settings
    i_sig = s.head_i_sigma_pct / 100.0 * np.abs(i_ka) + s.head_i_floor_a / 1e3
    a_sig = np.full(i_ka.shape, np.deg2rad(s.head_angle_sigma_deg + s.head_angle_floor_deg))
    return i_ka + z_i * i_sig, angle_rad + z_a * a_sig, i_sig, a_sig


def pseudo_columns(
    settings: MeasurementSettings, pseudo_p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A pseudo-measurement's P, Q and their standard deviations (the module docstring)."""
    s = settings
    tan_phi = np.tan(np.arccos(s.pseudo_power_factor))
    pseudo_q = pseudo_p * tan_phi
    sp = s.pseudo_sigma_pct / 100.0 * np.abs(pseudo_p) + s.pseudo_floor_kw
    sq = s.pseudo_sigma_pct / 100.0 * np.abs(pseudo_q) + s.pseudo_floor_kw * tan_phi
    return pseudo_p, pseudo_q, sp, sq


class DsoMeters:
    """What the DSO's sensors have delivered so far, under the run's measurement preset, and
    the state it estimates from them.

    The DSO's side of a contract reads the present through this object only (the
    :class:`~twin.view.DsoView`'s ``meters``); the truth it is built on scores. Every quantity
    is what the preset delivers, with the conventions of the module docstring and the same
    draws as :func:`measure` (so a step read here is exactly that step of the measurement
    layer's data the state estimation is scored on):

    * **the station load** (:meth:`transformer_kw`): with ``measurement.dso_reads=estimate``
      (the default) the DSO's **state estimate** of the active power into the station's LV side
      (the loads and the cable losses), by the batch estimator the run is scored with
      (:class:`~twin.grid.estimation.BatchStateEstimator`, one power-grid-model call per read
      over the steps simulated since the last): at each step from the data it had at the end
      of that step (the *nowcast*), and, once the late meters of a step have arrived, from
      every reading that arrives (the *final* data); so the estimate the DSO acted on at a step
      is, to rounding, the scored estimate of that step (``tests/test_dso_measured.py``). An
      unobservable step falls back on the readings below. With
      ``measurement.dso_reads=readings``, the readings: with a station sensor
      (``measurement.transformer.present``) its active-power reading in real time, the true
      power at the LV terminals from a power flow of each step once it has been simulated
      (:class:`~twin.grid.estimation.StationFlow`) plus the sensor's noise; without one, the
      sum over the connections of what the DSO has for each: the smart-meter reading if it
      has arrived (``meters.delay_steps``; lost readings never do), else the
      pseudo-measurement (the connection's arrived readings of the same quarter-hour of the
      past days, else its standard profile);
    * **the feeder load** (:meth:`load_kw`): the estimate's sum of the connections' loads,
      the station load less the cable losses (the quantity the DSO plans: the peak it has
      reached, the load leaving its plan are judged on it); with the readings the station
      load;
    * **the cable loadings** (:meth:`cable_loading_max_pct`): the estimate's most loaded
      cable per step (NaN without the estimate);
    * **what has been measured** (:attr:`measured_until`): the steps for which the DSO holds
      measurements, not only pseudo-measurements: realised events (the peak so far, the
      feeder load leaving the plan) are judged on those;
    * **the inflexible load** (:meth:`inflexible_kw`): the feeder load less the controllable
      devices' power (heat pumps, EV chargers, batteries), which every HEMS reports exactly as
      the simulation logs it (assumption: the devices are sub-metered);
    * **the history the DSO's forecaster learns from** (:meth:`learning_series`): every
      connection's base load as its meter delivers it (below).

    A reading of step ``j`` has arrived at the decision of step ``now`` when
    ``j + delay_steps <= now - 1`` (it reaches the DSO at the end of step ``j + delay_steps``);
    the station sensor and the cable heads are real time. Reads beyond the simulated steps
    raise, as :class:`Meters` does. The warm-up steps' sensor noise (which only the DSO in
    the loop reads) comes from streams of their own (5: station, 9: meter voltage, 10: cable
    heads).

    Parameters
    ----------
    clock : Clock
    settings : MeasurementSettings
    seed : int
        The run's seed (the layer's own streams).
    n_warmup_steps : int
    hh_cols, other_cols : np.ndarray
        Load columns (``net.load`` order) of the households and of the other loads.
    p_net_kw : np.ndarray
        ``(T, H)`` the households' net import as the simulation logs it (filled step by step).
    device_kw : tuple of np.ndarray
        ``(T, H)`` logs of the controllable devices' power (heat pump, EV, battery).
    p_other_kw : np.ndarray
        ``(T, n_other)`` the other loads.
    q_load_kvar : np.ndarray
        ``(T, n_load)`` every connection's reactive power.
    standard_p_kw : np.ndarray
        ``(T, n_load)`` every connection's standard profile.
    net : pandapowerNet or None
        The feeder (None: no grid; a station sensor then reads the sum of the loads, and
        nothing is estimated).
    """

    __slots__ = (
        "_clock",
        "_devices",
        "_done",
        "_est",
        "_flow",
        "_groups",
        "_have",
        "_lost",
        "_p_net",
        "_p_other",
        "_p_read",
        "_pseudo",
        "_q",
        "_standard",
        "_station",
        "_z_p",
        "_z_q",
        "_z_tp",
        "_z_tq",
        "_z_tu",
        "hh_cols",
        "metered",
        "n_warmup_steps",
        "other_cols",
        "seed",
        "settings",
    )

    def __init__(
        self,
        clock: Clock,
        settings: MeasurementSettings,
        seed: int,
        n_warmup_steps: int,
        hh_cols: np.ndarray,
        other_cols: np.ndarray,
        p_net_kw: np.ndarray,
        device_kw: tuple[np.ndarray, ...],
        p_other_kw: np.ndarray,
        q_load_kvar: np.ndarray,
        standard_p_kw: np.ndarray,
        net: Any = None,
    ) -> None:
        self._clock = clock
        self.settings = settings
        self.seed = int(seed)
        self.n_warmup_steps = int(n_warmup_steps)
        self.hh_cols = np.asarray(hh_cols, np.int64)
        self.other_cols = np.asarray(other_cols, np.int64)
        self._p_net = p_net_kw
        self._devices = device_kw
        self._p_other = p_other_kw
        self._q = q_load_kvar
        self._standard = standard_p_kw
        n_t = len(p_net_kw)
        n_load = len(self.hh_cols) + len(self.other_cols)
        self.metered = metered_connections(settings, n_load, seed)
        bus = (
            net.load["bus"].to_numpy()
            if net is not None
            else np.arange(n_load)  # no grid: connections in column order
        )
        self._groups = meter_groups(settings, bus, self.metered)
        self._z_p, z_q, self._lost = meter_noise(settings, seed, (n_t, n_load))
        in_loop = settings.dso_reads == "estimate" and net is not None
        self._est = _LoopEstimates(self, net, n_t) if in_loop else None
        # Q is read only by the estimate, from reactive meters (else from a power factor)
        self._z_q = z_q if self._est is not None and settings.meter_reactive else None
        del z_q
        self._p_read = np.zeros((n_t, n_load))
        self._have = np.zeros((n_t, n_load), bool)
        self._pseudo = np.zeros((n_t, n_load))
        self._station = np.full(n_t, np.nan)
        self._done = 0
        self._flow = None
        if settings.trafo:
            from twin.grid.estimation import StationFlow

            if net is not None and self._est is None:
                self._flow = StationFlow(net)
            n_u = len(station_units(net)) if net is not None else 1
            w = self.n_warmup_steps
            z_rep = trafo_noise(seed, (n_t - w, n_u))
            z_warm = trafo_noise(seed, (w, n_u), stream=5)
            self._z_tp = np.vstack([z_warm[0], z_rep[0]])
            self._z_tq = np.vstack([z_warm[1], z_rep[1]])
            self._z_tu = np.vstack([z_warm[2], z_rep[2]])

    @property
    def delay_steps(self) -> int:
        return self.settings.meter_delay_steps

    @property
    def has_station_sensor(self) -> bool:
        return self.settings.trafo

    @property
    def estimates(self) -> bool:
        """Whether the DSO reads its state estimate (``measurement.dso_reads=estimate`` and a
        grid)."""
        return self._est is not None

    @property
    def measured_until(self) -> int:
        """Steps before this one the DSO has *measured* now, rather than filled with
        pseudo-measurements: with a station sensor every simulated step, else those whose
        smart-meter readings have arrived (a lost reading stays a pseudo-measurement). What
        happened (a realised peak, a deviation from the plan) is judged on these only."""
        now = self._clock.now
        if self.settings.trafo:
            return now
        if self.settings.meter_share <= 0:
            return 0
        return max(now - self.delay_steps, 0)

    def _check(self, k_start: int, k_end: int) -> None:
        if not 0 <= k_start <= k_end <= self._clock.now:
            raise RuntimeError(
                f"meters read steps {k_start}..{k_end - 1}, but only steps before "
                f"{self._clock.now} have been measured"
            )

    def _loads(self, rows: slice) -> np.ndarray:
        """``(n, n_load)`` every connection's true active power at ``rows`` (net.load order)."""
        p = np.zeros((rows.stop - rows.start, len(self.hh_cols) + len(self.other_cols)))
        p[:, self.hh_cols] = self._p_net[rows]
        p[:, self.other_cols] = self._p_other[rows]
        return p

    def _advance(self) -> None:
        """Measure the steps simulated since the last read (the meters read every step; what
        the DSO has of them depends on when it asks), four weeks at a time (memory)."""
        while self._done < self._clock.now:
            self._measure(self._done, min(self._clock.now, self._done + 28 * STEPS_PER_DAY))

    def _measure(self, a: int, b: int) -> None:
        s, r = self.settings, slice(a, b)
        p = self._loads(r)
        q = self._q[r]
        p_read, _, _, _, have = meter_readings(
            s,
            p,
            q,
            self._z_p[r],
            np.zeros_like(p),
            self._lost[r],
            self.metered,
            self._groups,
            self._standard[r],
        )
        self._p_read[r], self._have[r] = p_read, have
        if s.meter_delay_steps or not have.all():
            self._pseudo[r] = pseudo_p_kw(
                s, self._p_read, self._have, np.arange(a, b), self._standard[r]
            )
        else:  # every reading there at once: a pseudo-measurement of these steps is never read
            self._pseudo[r] = np.nan
        if s.trafo and self._est is None:  # (with the estimate: read from its power flow)
            if self._flow is not None:
                tp, tq = self._flow(p, q, a)
            else:
                tp, tq = -p.sum(axis=1, keepdims=True), -q.sum(axis=1, keepdims=True)
            read, _, _ = trafo_readings(s, tp, tq, self._z_tp[r], self._z_tq[r])
            self._station[r] = -read.sum(axis=1)
        self._done = b

    def connections_kw(self, k_start: int, k_end: int, nowcast: bool = False) -> np.ndarray:
        """``(k_end - k_start, n_load)`` what the DSO has now of every connection's active
        power (net.load order): the arrived reading, else the pseudo-measurement. With
        ``nowcast``: what it had at the end of each step (the measurement layer's nowcast)."""
        self._check(k_start, k_end)
        self._advance()
        r = slice(k_start, k_end)
        use = self._use(k_start, k_end, nowcast)
        return np.where(use, self._p_read[r], self._pseudo[r])

    def _use(self, k_start: int, k_end: int, nowcast: bool) -> np.ndarray:
        """``(n, n_load)`` whether the DSO has each connection's reading of the steps now (or,
        ``nowcast``, at the end of each step)."""
        steps = np.arange(k_start, k_end)
        known = steps if nowcast else np.full(len(steps), self._clock.now - 1)
        return self._have[k_start:k_end] & (steps + self.delay_steps <= known)[:, None]

    def _readings_kw(self, k_start: int, k_end: int, nowcast: bool) -> np.ndarray:
        """The station load from the readings alone (the class docstring), kW."""
        if self.settings.trafo and self._est is None:
            return self._station[k_start:k_end].copy()
        if self.settings.trafo:  # the estimate's power flow gave the sensor's readings
            self._est.fill(k_start, k_end, final=False)
            return self._station[k_start:k_end].copy()
        return self.connections_kw(k_start, k_end, nowcast).sum(axis=1)

    def _final_from(self, k_start: int, k_end: int, nowcast: bool) -> np.ndarray:
        """``(n,)`` which steps the DSO now holds every reading of that will ever arrive (the
        final data; with meters in real time the nowcast is final)."""
        steps = np.arange(k_start, k_end)
        if nowcast or self.delay_steps == 0:
            return np.zeros(len(steps), bool)
        return steps + self.delay_steps <= self._clock.now - 1

    def transformer_kw(self, k_start: int, k_end: int, nowcast: bool = False) -> np.ndarray:
        """``(k_end - k_start,)`` the station's active load as the DSO knows it now, kW: its
        state estimate (else the station sensor's reading, else the sum over the
        connections); ``nowcast``: as it knew each step at its end."""
        self._check(k_start, k_end)
        self._advance()
        if self._est is None:
            return self._readings_kw(k_start, k_end, nowcast)
        out = self._estimated("station_kw", k_start, k_end, nowcast)
        bad = ~np.isfinite(out)
        if bad.any():  # an unobservable step: the readings
            out[bad] = self._readings_kw(k_start, k_end, nowcast)[bad]
        return out

    def load_kw(self, k_start: int, k_end: int, nowcast: bool = False) -> np.ndarray:
        """``(k_end - k_start,)`` the feeder's load as the DSO knows it now, kW: the sum over
        every connection of its active power, without the cable losses (the quantity the
        DSO plans and the coincident peak counts): with the estimate, the estimated loads'
        sum (an unobservable step: the station load); with the readings, the station load
        (:meth:`transformer_kw`: the sensor's reading includes the losses)."""
        if self._est is None:
            return self.transformer_kw(k_start, k_end, nowcast)
        out = self._estimated("load_kw", k_start, k_end, nowcast)
        bad = ~np.isfinite(out)
        if bad.any():
            out[bad] = self.transformer_kw(k_start, k_end, nowcast)[bad]
        return out

    def load_sigma_kw(self, k_start: int, k_end: int, nowcast: bool = False) -> np.ndarray:
        """``(k_end - k_start,)`` how uncertain :meth:`load_kw` is, as the DSO can tell from its
        sensors' stated accuracy (one standard deviation, kW; :func:`sum_sigma_kw`): the
        estimate's from the data it was made from; the readings' from the station sensor's
        class, else from the connections' (reading or pseudo-measurement)."""
        if self._est is not None:
            return self._estimated("load_sigma_kw", k_start, k_end, nowcast)
        self._check(k_start, k_end)
        self._advance()
        s = self.settings
        if s.trafo:
            read = self._station[k_start:k_end]
            return trafo_sigma_kw(s, read, np.zeros_like(read))
        use = self._use(k_start, k_end, nowcast)
        r = slice(k_start, k_end)
        read = np.where(use, self._p_read[r], self._pseudo[r])
        sig = np.where(use, meter_sigma_kw(s, read), pseudo_columns(s, read)[2])
        return sum_sigma_kw(sig, None)

    def cable_loading_max_pct(self, k_start: int, k_end: int, nowcast: bool = False) -> np.ndarray:
        """``(k_end - k_start,)`` the most loaded cable's loading (% of its rating) in the
        DSO's state estimate of each step (NaN where unobservable, and everywhere without
        the estimate: meters do not measure cables)."""
        if self._est is None:
            self._check(k_start, k_end)
            return np.full(k_end - k_start, np.nan)
        return self._estimated("cable_max_pct", k_start, k_end, nowcast)

    def _estimated(self, name: str, k_start: int, k_end: int, nowcast: bool) -> np.ndarray:
        """``name`` of the DSO's in-loop estimates of the steps, as it holds them now (final
        where every late reading has arrived, else the nowcast) or, ``nowcast``, at each
        step's end."""
        self._check(k_start, k_end)
        self._advance()
        return self._est.read(name, k_start, k_end, self._final_from(k_start, k_end, nowcast))

    def inflexible_kw(self, k_start: int, k_end: int) -> np.ndarray:
        """``(k_end - k_start,)`` the feeder's inflexible load as the DSO knows it now: its
        load (:meth:`load_kw`) less the controllable devices' reported power, kW."""
        dev = sum(d[k_start:k_end].sum(axis=1) for d in self._devices)
        return self.load_kw(k_start, k_end) - dev

    def sensor_data(self, a: int, b: int, truth: SensorTruth, final: bool, est: Any) -> SensorData:
        """The estimator's data of steps ``a .. b-1`` (measured: :meth:`_advance`): at the end
        of each step (nowcast) or with every reading that arrives (``final``), with the
        ideal readings ``truth`` of the steps and the layer's draws, exactly as
        :func:`measure` makes them."""
        s, r = self.settings, slice(a, b)
        p, q = self._loads(r), self._q[r]
        z_q = self._z_q[r] if self._z_q is not None else np.zeros_like(p)
        reads = meter_readings(
            s, p, q, self._z_p[r], z_q, self._lost[r], self.metered, self._groups, self._standard[r]
        )[:4]
        use = self._have[r] if final else self._use(a, b, nowcast=True)
        if use.all():
            cols = list(reads)
        else:
            pseudo = pseudo_columns(s, self._pseudo[r])
            cols = [np.where(use, x, ps) for x, ps in zip(reads, pseudo, strict=True)]
        n_extra = est.n_load - p.shape[1]
        if n_extra:  # asymmetric loads as balanced ones (constant: the register knows them)
            extra_p, extra_q = self._est.extra_p_kw, self._est.extra_q_kvar
            floor = np.full((b - a, n_extra), s.meter_floor_kw)
            for i, x in enumerate((extra_p, extra_q, floor, floor)):
                cols[i] = np.hstack([cols[i], np.broadcast_to(x, (b - a, n_extra))])
        data = SensorData(*cols)
        vl = est.voltage_loads
        if len(vl):
            u_true = truth.bus_u_pu[:, self._est.meter_bus_col]
            u_read = u_true + self._est.z_u[r]
            data.meter_u_pu = np.where(use[:, vl], u_read, np.nan)
            data.meter_u_sigma_pu = np.full(u_read.shape, meter_u_sigma_pu(s))
        if est.layout.trafo:
            tp, tq, ts = trafo_readings(
                s, truth.trafo_p_kw, truth.trafo_q_kvar, self._z_tp[r], self._z_tq[r]
            )
            tu, tus = trafo_u_readings(s, truth.trafo_u_pu, self._z_tu[r])
            data.trafo_p_kw, data.trafo_q_kvar, data.trafo_u_pu = tp, tq, tu
            data.trafo_power_sigma_kw, data.trafo_u_sigma_pu = ts, tus
            self._station[r] = -tp.sum(axis=1)
        if len(est.heads):
            z_i, z_a = self._est.z_i[r], self._est.z_a[r]
            i_read, a_read, i_sig, a_sig = head_readings(
                s, truth.line_i_ka, truth.line_i_angle_rad, z_i, z_a
            )
            data.line_i_ka, data.line_i_angle_rad = i_read, a_read
            data.line_i_sigma_ka, data.line_angle_sigma_rad = i_sig, a_sig
        return data

    def learning_series(
        self,
        p_base_kw: np.ndarray,
        history: dict[str, np.ndarray] | None,
    ) -> dict[str, Any]:
        """What the DSO's forecaster learns from: every connection's base load (households:
        base load without devices and PV, which the HEMS's sub-meters take out of the reading;
        other loads: their load) as the meters deliver it, over the history before the window
        and the simulated steps: the meter's noise (of the base load), lost readings and
        aggregation, unmetered connections and lost readings filled with the
        pseudo-measurement. The window's steps use the meters' own draws, the history a
        stream of its own (7). Returns ``base_kw`` ``(T_h + T, H)``, ``other_kw`` ``(T_h + T,
        n_other)`` and ``delay_steps``: a step's value is known ``delay_steps`` after it."""
        s = self.settings
        n_t, n_load = self._p_read.shape
        x = np.zeros((n_t, n_load))
        x[:, self.hh_cols] = p_base_kw
        x[:, self.other_cols] = self._p_other
        z_p, lost, prof = self._z_p, self._lost, self._standard
        if history is not None and len(history["base_kw"]):
            n_h = len(history["base_kw"])
            xh = np.zeros((n_h, n_load))
            xh[:, self.hh_cols] = history["base_kw"]
            xh[:, self.other_cols] = history["other_kw"]
            zh, _, lh = meter_noise(s, self.seed, (n_h, n_load), stream=7)
            x = np.vstack([xh, x])
            z_p = np.vstack([zh, z_p])
            lost = np.vstack([lh, lost])
            prof = np.vstack([history["standard_kw"], prof])
        zeros = np.zeros_like(x)
        read, _, _, _, have = meter_readings(
            s, x, zeros, z_p, zeros, lost, self.metered, self._groups, prof
        )
        pseudo = pseudo_p_kw(s, read, have, np.arange(len(x)), prof)
        value = np.where(have, read, pseudo)
        return {
            "base_kw": value[:, self.hh_cols],
            "other_kw": value[:, self.other_cols],
            "delay_steps": s.meter_delay_steps,
        }


class _LoopEstimates:
    """The DSO's state estimates in the loop (:class:`DsoMeters`): of each step from the
    nowcast data and, with late meters, from the final data, made lazily by one estimator call
    per read over the steps not estimated yet (at most four weeks a call), with the
    estimators and draws of :func:`estimate_feeder`. What is kept of each step is what the DSO
    reads: the station load and the most loaded cable."""

    CHUNK_STEPS = 28 * STEPS_PER_DAY
    #: below this many steps a call runs sequentially (threads cost more than they give)
    THREADED_FROM = STEPS_PER_DAY

    def __init__(self, meters: DsoMeters, net: Any, n_t: int) -> None:
        import os

        from twin.grid.phases import balanced_equivalent

        s, seed, w = meters.settings, meters.seed, meters.n_warmup_steps
        self.meters = meters
        net_se, self.extra_p_kw, self.extra_q_kvar = balanced_equivalent(net)
        metered = np.concatenate([meters.metered, np.zeros(len(self.extra_p_kw), bool)])
        layout = sensor_layout(s, metered)
        method, now_method = estimator_methods(s, layout)
        self.threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
        self.final_est = BatchStateEstimator(net_se, layout, threads=self.threads, method=method)
        self.now_est = self.final_est
        if now_method != method:
            self.now_est = BatchStateEstimator(
                net_se, layout, threads=self.threads, method=now_method
            )
        est = self.final_est
        n_load = est.n_load
        vl = est.voltage_loads
        self.z_u = np.zeros((n_t, 0))
        self.meter_bus_col = np.zeros(0, np.int64)
        if len(vl):
            self.meter_bus_col = net_se.bus.index.get_indexer(net_se.load["bus"].to_numpy()[vl])
            self.z_u = np.vstack(
                [
                    meter_u_noise(s, seed, (w, n_load), stream=9)[:, vl],
                    meter_u_noise(s, seed, (n_t - w, n_load))[:, vl],
                ]
            )
        n_h = est.n_cable_heads
        z_rep, z_warm = head_noise(seed, (n_t - w, n_h)), head_noise(seed, (w, n_h), stream=10)
        self.z_i = np.vstack([z_warm[0], z_rep[0]])
        self.z_a = np.vstack([z_warm[1], z_rep[1]])
        self.values = {
            final: {
                name: np.full(n_t, np.nan)
                for name in ("station_kw", "load_kw", "load_sigma_kw", "cable_max_pct")
            }
            for final in (False, True)
        }
        self.done = {final: np.zeros(n_t, bool) for final in (False, True)}

    def fill(self, a: int, b: int, final: bool) -> None:
        """Estimate the steps of ``a .. b-1`` not estimated yet from their nowcast (or final)
        data."""
        todo = np.flatnonzero(~self.done[final][a:b]) + a
        if not len(todo):
            return
        for run in np.split(todo, np.flatnonzero(np.diff(todo) > 1) + 1):
            for c0 in range(int(run[0]), int(run[-1]) + 1, self.CHUNK_STEPS):
                self._estimate(c0, min(int(run[-1]) + 1, c0 + self.CHUNK_STEPS), final)

    def _estimate(self, a: int, b: int, final: bool) -> None:
        m = self.meters
        est = self.final_est if final else self.now_est
        p, q = m._loads(slice(a, b)), m._q[a:b]
        if len(self.extra_p_kw):
            n = b - a
            p = np.hstack([p, np.broadcast_to(self.extra_p_kw, (n, len(self.extra_p_kw)))])
            q = np.hstack([q, np.broadcast_to(self.extra_q_kvar, (n, len(self.extra_q_kvar)))])
        threads = self.threads if b - a >= self.THREADED_FROM else 1
        # the meters' voltage readings are in the data: every arrived one (final), else only
        # where they arrive at once
        meter_u = len(est.voltage_loads) > 0 and (final or m.delay_steps == 0)
        truth = est.sensor_truth(p, q, bus_u=meter_u, threads=threads)
        data = m.sensor_data(a, b, truth, final, est)
        e = est.run(data, threads=threads, station_only=True)
        v = self.values[final]
        v["station_kw"][a:b] = e.station_kw
        v["load_kw"][a:b] = e.load_kw
        v["load_sigma_kw"][a:b] = sum_sigma_kw(
            data.load_p_sigma_kw, data.trafo_power_sigma_kw if est.layout.trafo else None
        )
        ll = e.result.line_loading_pct
        v["cable_max_pct"][a:b] = ll.max(axis=1) if ll.shape[1] else 0.0
        self.done[final][a:b] = True

    def read(self, name: str, a: int, b: int, final: np.ndarray) -> np.ndarray:
        """``(b - a,)`` the estimated ``name`` of the steps: from the final data where
        ``final`` (a leading run of the steps: the older ones), else from the nowcast."""
        n_final = int(final.sum())
        self.fill(a, a + n_final, True)
        self.fill(a + n_final, b, False)
        return np.concatenate(
            [self.values[True][name][a : a + n_final], self.values[False][name][a + n_final : b]]
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
    # (T,) the true active power into the LV side of the station (what an ideal station
    # sensor reads: the loads and the cable losses), kW
    station_true_kw: np.ndarray | None = None

    def dso_station_kw(self) -> np.ndarray:
        """``(T,)`` the station load the DSO had at the end of each step
        (:meth:`DsoMeters.transformer_kw` with ``nowcast``): the nowcast estimate, where a
        step was unobservable the readings (the station sensor's, else the sum over the
        connections' readings and pseudo-measurements), kW."""
        out = self.nowcast.station_kw.copy()
        bad = ~np.isfinite(out)
        if bad.any():
            d = self.measured.nowcast
            n_load = len(self.measured.metered)
            read = (
                -d.trafo_p_kw.sum(axis=1)
                if d.trafo_p_kw is not None
                else d.load_p_kw[:, :n_load].sum(axis=1)
            )
            out[bad] = read[bad]
        return out


def estimator_methods(settings: MeasurementSettings, layout: SensorLayout) -> tuple[str, str]:
    """PGM's estimator for the data with every reading that arrives, and for the nowcast
    (``measurement.method``; ``auto``: Newton-Raphson, the WLS proper, unless there are
    current sensors, which only iterative linear takes)."""
    method = settings.method
    if method != "auto":
        return method, method
    currents = layout.cable_heads or len(layout.current_lines) > 0
    method = "iterative_linear" if currents else "newton_raphson"
    meter_u_now = (
        len(layout.voltage_loads) > 0
        and settings.meter_delay_steps == 0
        and settings.meter_missing_share < 1.0
    )
    if method == "newton_raphson" and not layout.trafo and layout.source_sigma_pu > 0:
        if not meter_u_now:
            # No redundancy: every load's reading or pseudo-measurement and the source's
            # pseudo voltage are all there is, and they fix the state exactly (a power flow).
            # Every WLS method finds that state (iterative linear to ~1e-9 p.u. of
            # Newton-Raphson, tests/test_estimation.py) and iterative linear is the cheaper.
            return method, "iterative_linear"
    return method, method


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
    current_lines: np.ndarray | None = None,
    final: bool = True,
) -> StateEstimation:
    """Measure the truth as ``settings`` says and estimate every reported step in batch.

    ``p_load_kw``/``q_load_kvar``/``profile_p_kw`` cover every simulated step (warm-up
    first); ``truth`` is the power flow of the reported steps
    (:class:`~twin.grid.powerflow.PowerFlowResult`), which only scores the estimate.
    ``current_lines``: further cables with a current sensor (``net.line`` positions, the
    sensor-placement study); ``final=False`` skips the estimate once late meters arrived.
    """
    from dataclasses import replace

    from twin.grid.estimation import estimation_errors

    metered = metered_connections(settings, p_load_kw.shape[1], seed)
    layout = sensor_layout(settings, metered)
    if current_lines is not None and len(current_lines):
        layout = replace(layout, current_lines=np.asarray(current_lines, np.int64))
    method, now_method = estimator_methods(settings, layout)
    est = BatchStateEstimator(net, layout, threads=threads, method=method)
    rep = slice(n_warmup_steps, None)
    sensors = est.sensor_truth(p_load_kw[rep], q_load_kvar[rep])
    measured = measure(
        settings, est, sensors, p_load_kw, q_load_kvar, profile_p_kw, n_warmup_steps, metered, seed
    )
    now_est = est
    if now_method != method:
        now_est = BatchStateEstimator(net, layout, threads=threads, method=now_method)
    nowcast = now_est.run(measured.nowcast)
    final = est.run(measured.final) if final and measured.final is not None else None
    kpis: dict[str, Any] = {
        "se_preset": settings.name,
        "se_meters": int(metered.sum()),
        "se_reading_share": measured.reading_share,
        "se_voltage_sensors": int(len(est.voltage_loads) + len(est.units) * settings.trafo),
        "se_current_sensors": int(len(est.heads)),
        "se_method": method,
    }
    if now_est is not est:
        kpis["se_nowcast_method"] = now_est.method.name
    kpis.update(estimation_errors(nowcast, truth, net, "se"))
    if final is not None:
        kpis["se_final_reading_share"] = measured.final_reading_share
        kpis.update(estimation_errors(final, truth, net, "se_final"))
    if nowcast.first_error:
        kpis["se_first_error"] = nowcast.first_error
    # (the wall time is in timings.json: a KPI must not differ between two runs of one seed)
    station = -sensors.trafo_p_kw.sum(axis=1) if sensors.trafo_p_kw.shape[1] else None
    return StateEstimation(settings, nowcast, final, measured, kpis, station)


def dso_read_kpis(read_kw: np.ndarray, true_kw: np.ndarray) -> dict[str, float]:
    """How far the station load the DSO acted on (``read_kw``: as it knew each step at its
    end, :meth:`DsoMeters.transformer_kw` with ``nowcast``) was from the truth (the active
    power into the station's LV side), kW: ``dso_station_err_{max,p99,mean}_kw`` of the
    absolute error and ``dso_station_bias_kw`` (mean of read - true)."""
    err = np.asarray(read_kw, float) - np.asarray(true_kw, float)
    a = np.abs(err)
    return {
        "dso_station_err_max_kw": float(a.max()) if a.size else float("nan"),
        "dso_station_err_p99_kw": float(np.percentile(a, 99)) if a.size else float("nan"),
        "dso_station_err_mean_kw": float(a.mean()) if a.size else float("nan"),
        "dso_station_bias_kw": float(err.mean()) if a.size else float("nan"),
    }
