"""The configuration's schema: Hydra structured configs (dataclasses in the ConfigStore).

Every key of ``twin/configs`` has a type here, so a wrong type fails when Hydra composes the
config (``sim.days=abc``), and the keys that have bounds carry them in their field's metadata
(``low``, ``high``, ``choices``) with a one-line ``help``; :func:`twin.config.validate` checks
them all generically. The YAML files hold the values and their sources; this module holds what
a value may be.

Registered (:func:`register`): the primary config's schema ``twin_schema``, and one schema per
option of the ``contract``, ``tariff`` and ``study`` groups (each YAML file names its schema in
its defaults list).
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

from omegaconf import MISSING as REQUIRED  # '???': the YAML file must give it

__all__ = ["CONTRACT_SCHEMAS", "STUDY_SCHEMAS", "TwinConfig", "bounds_of", "register"]


def key(
    default: Any = MISSING,
    help: str = "",
    low: float | None = None,
    high: float | None = None,
    choices: tuple[Any, ...] | None = None,
    factory: Any = None,
) -> Any:
    """A config field with its bounds and a one-line description."""
    meta = {"help": help, "low": low, "high": high, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# -- groups of the primary config ---------------------------------------------------------------
@dataclass
class SimConfig:
    start: str = key("2025-12-01", "first reported day (YYYY-MM-DD; mapped onto the year 2025)")
    days: int = key(7, "reported days", 1, 365)
    warmup_days: int = key(2, "days simulated before start and not reported", 0, 14)


@dataclass
class ServiceConfig:
    comfort_band_k: float = key(1.0, "indoor temperature at most this far below setpoint", 0, 10)
    comfort_above_k: float = key(1.0, "... and this far above it (warmth heating brought)", 0, 10)
    comfort_rule: str = key(
        "swing",
        "swing: a day varies by no more than comfort_swing_k; band",
        choices=("swing", "band"),
    )
    comfort_swing_k: float = key(
        1.0, "largest swing of the indoor temperature within a day", 0.1, 10
    )
    ev_range_km: float = key(150.0, "EV range due at the deadline or departure, first", 0, 1000)
    ev_deadline_h: float = key(6.0, "hour of day the EV range is due", 0, 24)
    ev_reserve_km: float = key(30.0, "range kept at all times for an unplanned trip", 0, 1000)


@dataclass
class PathsConfig:
    results_dir: str = key("results", "where run folders go (relative to the start folder)")
    cache_dir: str | None = key(None, "feeder cache (null: $TWIN_CACHE_DIR or ~/.cache/twin)")


@dataclass
class OutputConfig:
    timeseries: bool = key(True, "write households.parquet and feeder.parquet")
    figures: bool = key(True, "write figures/")
    progress: bool = key(True, "progress bar (on a terminal only; never in piped output)")
    elements: str = key(
        "all",
        "per-step bus/line/transformer results: all, the worst_n worst buses and lines, none",
        choices=("all", "worst", "none"),
    )
    worst_n: int = key(10, "with elements=worst: how many buses and lines to keep", 1, 100_000)


@dataclass
class WeatherConfig:
    source: str = key("try2010", "try2010 (bundled) or csv", choices=("try2010", "csv"))
    region: int = key(5, "TRY2010 region (5 = Essen, on the Dutch border)", 1, 15)
    csv: str | None = key(None, "weather file (columns time, t_out_c, ghi_w_m2)")


@dataclass
class GridConfig:
    name: str = key("1-LV-urban6--0-sw", "SimBench LV code, pandapower.networks name or JSON")
    unbalanced: bool | None = key(
        None,
        "unbalanced (per-phase) power flow and limits; null: on for feeders with phase data",
    )
    base_load: str = key(
        "generated",
        "households' base load: generated (each its own) or feeder (the feeder's profiles)",
        choices=("generated", "feeder"),
    )
    profiles: str | None = key(
        None, "per-connection profiles: a CSV/parquet file with connection, time, p_kw"
    )


@dataclass
class ScenarioConfig:
    name: str = key("nl-2040-central", "twin/scenarios/<name>.yaml or a path")


@dataclass
class SolverConfig:
    time_limit_s: float = key(60.0, "HiGHS time limit per solve", 0.001, 86400)
    threads: int = key(1, "HiGHS threads", 1, 256)
    mirror_params: bool = key(False, "also write pushed values into the Pyomo Params")
    simplex_strategy: int = key(1, "HiGHS simplex_strategy (1: dual)", 0, 4)
    highs_options: dict[str, Any] = key(factory=dict, help="further HiGHS options as they are")


@dataclass
class ForecastConfig:
    name: str = key(
        "perfect", "what the deciding side knows of the future", choices=("perfect", "statistical")
    )
    history_days: int = key(56, "days of the feeder's past the models learn from", 15, 365)
    retrain_every_days: int = key(28, "models learned again this often", 1, 365)
    level_days: float = key(1.0, "level correction from the latest measured days (0: off)", 0, 14)
    nowcast_h: float = key(1.0, "the last measured error fades over this long (0: off)", 0, 48)
    t_sigma0_k: float = key(0.3, "temperature forecast error at lead 0 (K)", 0, 10)
    t_sigma24_k: float = key(1.3, "temperature forecast error at 24 h (K)", 0, 10)
    ghi_sigma4h: float = key(0.3, "relative irradiance error 4 h ahead", 0, 3)
    ghi_sigma_max: float = key(0.6, "cap of the relative irradiance error", 0, 3)
    error_corr_h: float = key(12.0, "correlation length of forecast errors (h)", 0.25, 168)
    ev_arrival_sigma_h: float = key(0.5, "real arrival vs declared plan (h, std)", 0, 12)
    ev_energy_sigma: float = key(0.15, "real trip energy vs declared (relative std)", 0, 2)
    n_estimators: int = key(60, "LightGBM trees", 1, 5000)
    num_leaves: int = key(15, "LightGBM leaves", 2, 1024)
    learning_rate: float = key(0.1, "LightGBM learning rate", 0.001, 1)
    min_child_samples: int = key(50, "LightGBM minimum samples per leaf", 1, 100000)
    threads: int = key(
        2,
        "blocks learned at once and ahead (threads; the same forecasts as 1, one after the other)",
        1,
        64,
    )


# -- measurement (twin/measure.py, twin/grid/estimation.py) --------------------------------------
@dataclass
class TransformerSensorConfig:
    present: bool = key(True, "P and Q on the transformer's LV terminal, U on its LV bus")
    power_sigma_pct: float = key(0.5, "P/Q noise: standard deviation, % of the reading", 0, 100)
    power_floor_kw: float = key(
        0.5, "added to the P/Q standard deviation the SE assumes", 1e-3, 1e4
    )
    u_sigma_pct: float = key(0.2, "U noise: standard deviation, % of nominal", 0, 100)
    u_floor_pct: float = key(0.01, "added to the U standard deviation", 1e-9, 100)


@dataclass
class CableHeadSensorConfig:
    present: bool = key(False, "current sensors at the station end of every outgoing cable")
    i_sigma_pct: float = key(1.0, "current noise: standard deviation, % of the reading", 0, 100)
    i_floor_a: float = key(1.0, "added to the current standard deviation", 1e-9, 1e4)
    angle_sigma_deg: float = key(1.0, "angle noise (current vs local voltage), degrees", 0, 90)
    angle_floor_deg: float = key(0.1, "added to the angle standard deviation", 1e-9, 90)


@dataclass
class MeterConfig:
    share: float = key(1.0, "share of connections whose smart meter reaches the DSO", 0, 1)
    sigma_pct: float = key(1.0, "15-min energy noise (accuracy class): % of the reading", 0, 100)
    floor_kw: float = key(
        0.004, "added to the meter standard deviation (register: 1 Wh per 15 min)", 1e-9, 10
    )
    reactive: bool = key(False, "meters report reactive energy (else Q from power_factor)")
    voltage: bool = key(True, "meters report the 15-min mean voltage")
    u_sigma_pct: float = key(0.5, "voltage noise: standard deviation, % of nominal", 0, 100)
    u_floor_pct: float = key(0.05, "added to the voltage standard deviation", 1e-9, 100)
    missing_share: float = key(0.0, "share of readings that never arrive", 0, 1)
    delay_steps: int = key(
        0, "15-min steps until a reading reaches the DSO (96: next day)", 0, 1344
    )
    aggregate_k: int = key(1, "the DSO sees sums over groups of at least k connections", 1, 10000)


@dataclass
class PseudoConfig:
    sigma_pct: float = key(50.0, "pseudo-measurement standard deviation, % of its value", 1, 1000)
    floor_kw: float = key(0.3, "added to the pseudo-measurement standard deviation", 1e-3, 100)
    history_days: int = key(7, "days of a connection's arrived readings averaged", 1, 56)
    power_factor: float = key(0.97, "assumed where a reading has no reactive energy", 0.5, 1)
    source_u_sigma_pct: float = key(
        2.0, "pseudo voltage at the MV source (its set-point); 0: none", 0, 100
    )


@dataclass
class MeasurementConfig:
    name: str = key("full", "the measurement preset (measurement group option)")
    estimate: bool = key(True, "run the batch state estimation and report se_* KPIs")
    dso_reads: str = key(
        "estimate",
        "what the DSO acts on: estimate (its state estimate of each step, in the loop) or "
        "readings (the station sensor's reading, else the sum over the meters)",
        choices=("estimate", "readings"),
    )
    method: str = key(
        "auto",
        "power-grid-model's WLS: auto (Newton-Raphson; iterative linear with current sensors)",
        choices=("auto", "newton_raphson", "iterative_linear"),
    )
    transformer: TransformerSensorConfig = field(default_factory=TransformerSensorConfig)
    cable_heads: CableHeadSensorConfig = field(default_factory=CableHeadSensorConfig)
    meters: MeterConfig = field(default_factory=MeterConfig)
    pseudo: PseudoConfig = field(default_factory=PseudoConfig)


# -- tariffs ------------------------------------------------------------------------------------
@dataclass
class TariffConfig:
    name: str = key("flat", "tariff name")
    energy_eur_per_kwh: float = key(0.11, "supplier's energy price", -10, 10)
    feed_in_eur_per_kwh: float = key(0.05, "feed-in compensation", -10, 10)
    grid_fee_eur_per_year: float = key(468.0, "fixed grid fee", 0, 1e5)
    grid_fee_eur_per_kwh: float = key(0.0, "volumetric grid fee", -10, 10)
    tax_eur_per_kwh: float = key(0.10154, "energy tax", -10, 10)
    vat: float = key(0.21, "VAT share", 0, 1)
    tou: Any = key(None, "time-of-use blocks (tariff=tou)")
    dynamic: Any = key(None, "day-ahead price series (tariff=dynamic)")
    capacity: Any = key(None, "capacity charge (tariff=capacity)")


# -- contracts ----------------------------------------------------------------------------------
@dataclass
class FirmConfig:
    name: str = "firm"


@dataclass
class NonfirmConfig:
    name: str = "nonfirm"
    guaranteed_kw: float = key(4.2, "cap on controllable devices when congested", 0, 100)
    congestion_threshold_pct: float = key(80.0, "% of the rating that declares congestion", 1, 1000)
    hold_steps: int = key(4, "15-min steps a declaration lasts", 1, 7 * 96)
    share_signed: float = key(1.0, "share of households on the non-firm connection", 0, 1)
    discount_eur_per_year: float = key(110.0, "grid-fee discount per signed household", 0, 1e4)


@dataclass
class _PlanningConfig:
    name: str = REQUIRED
    comfort_band_k: float = key(1.0, "comfort band below the setpoint", 0.05, 10)
    preheat_k: float = key(1.0, "pre-heating allowed above the setpoint", 0, 10)
    comfort_rule: str = key("swing", "swing or band", choices=("swing", "band"))
    comfort_swing_k: float = key(1.0, "largest swing within a day", 0.1, 10)
    comfort_margin_k: float = key(
        0.0, "kept free below the top and the swing for unforeseen heat", 0, 1
    )
    ev_range_km: float = key(150.0, "EV range due at the deadline or departure", 0, 1000)
    ev_deadline_h: float = key(6.0, "hour of day the EV range is due", 0, 24)
    ev_reserve_km: float = key(30.0, "range kept at all times", 0, 1000)
    horizon_h: float = key(24.0, "rolling planning horizon", 0.25, 168)
    resolution_h: float = key(1.0, "plan period length", 0.25, 24)
    fine_h: float = key(0.0, "leading part planned at 15 min", 0, 168)
    replan_every_h: float = key(24.0, "re-plan cadence", 0.25, 168)
    replan_at_h: float = key(12.0, "hour of day of the re-plans", 0, 23.75)
    weights: dict[str, float] = key(factory=dict, help="objective weights")
    solver: Any = key("${solver}", "HiGHS settings (the solver group)")


@dataclass
class PerformanceConfig(_PlanningConfig):
    name: str = "performance"
    share_signed: float = key(1.0, "share of households that signed", 0, 1)
    discount_eur_per_year: float = key(117.0, "grid-fee discount per signed household", 0, 1e4)
    information: str = key("central", "what the DSO sees", choices=("central", "envelope"))
    safety_margin: float = key(0.10, "share of every limit kept free", 0, 0.99)
    cables: bool = key(True, "cable limits in the DSO's LP")
    voltages: bool = key(True, "bus-voltage limits in the DSO's LP")
    limit_kva: float | None = key(None, "override of the station rating (kVA)", 0.001, 1e6)
    envelope_margin_k: float = key(0.3, "envelope mode: narrower band for heat pumps", 0, 5)
    battery_reserve_cycles: float = key(1.0, "envelope mode: battery energy kept back", 0, 10)
    envelope_rounds: int = key(3, "envelope mode: allocation rounds", 1, 20)
    margin_policy: str = key(
        "p10",
        "plan on p50, p10 (the load exceeded with 10 % probability), a fixed or a dynamic margin",
        choices=("p50", "p10", "fixed", "dynamic"),
    )
    margin_fixed_share: float = key(0.1, "fixed margin: share of each limit", 0, 0.9)
    margin_dynamic_quantile: float = key(0.9, "dynamic margin: quantile of recent errors", 0.5, 1)
    margin_dynamic_days: int = key(7, "dynamic margin: days of recent errors", 1, 60)
    flex_price_eur_per_kwh: float = key(
        0.1, "price of activated flexibility (financial risk)", 0, 10
    )
    coarse_after_h: float | None = key(
        None, "periods grow with lead: coarse_h periods from this lead on (h)", 0, 168
    )
    coarse_h: float | None = key(None, "period length of the coarse part (h)", 0.25, 24)
    replan_trigger: str = key(
        "always",
        "intraday re-plans always, or only when reality left the plan",
        choices=("always", "deviation"),
    )
    replan_tolerance_kw: float = key(
        10.0, "deviation trigger: metered feeder load above the plan's expectation", 0, 1e5
    )
    replan_tolerance_k: float = key(
        0.2, "deviation trigger: indoor temperature below the plan", 0, 10
    )
    replan_tolerance_kwh: float = key(
        1.0, "deviation trigger: EV or battery energy below the plan", 0, 1000
    )
    replan_min_households: int = key(
        1, "deviation trigger: signed households short of their plan, at least", 1, 100_000
    )
    replan_tight_share: float | None = key(
        None,
        "deviation trigger: households' states count only while the plan's expected load "
        "reaches this share of its band level ahead (null: always)",
        0,
        1,
    )
    replan_coarse: str = key(
        "always",
        "deviation trigger: a plan's coarse part re-planned always, or only while it is tight",
        choices=("always", "tight"),
    )
    sunk_peak_sigmas: float = key(
        3.0, "the peak already reached: measured feeder load less this many of its sigmas", 0, 100
    )
    group_households: int | None = key(
        64,
        "central mode: the DSO's LP per group of cable branches of at most this many",
        1,
        10**6,
    )
    group_above: int = key(
        128, "central mode: group the DSO's LP above this many households", 0, 10**6
    )
    group_sweeps: int = key(
        0, "grouped LP: passes against the other groups' plans after the share pass", 0, 10
    )


@dataclass
class TariffHemsConfig(_PlanningConfig):
    tariff: str = key(REQUIRED, "the tariff the HEMSs plan against (must be the run's)")
    horizon_h: float = key(36.0, "rolling planning horizon", 0.25, 168)
    automation_share: float | None = key(
        None, "share of households fully automated (null: the scenario's response shares)", 0, 1
    )
    response_rest: str = key(
        "scenario",
        "with automation_share: the others as the scenario mixes them, or all none/timer/manual",
        choices=("scenario", "none", "timer", "manual"),
    )
    random_delay_max_s: float = key(
        600.0, "chargers' random delay at a session's start: up to (s; GB 2021 rules: 600)", 0, 7200
    )


# -- studies ------------------------------------------------------------------------------------
@dataclass
class SingleStudyConfig:
    name: str = "single"
    label: str = "${contract.name}"


@dataclass
class CompareStudyConfig:
    name: str = "compare"
    contracts: list[str] = key(
        factory=lambda: ["firm", "tou", "dynamic", "capacity", "nonfirm", "performance"],
        help="contracts compared on the same households",
    )
    baseline: str = key("firm", "KPIs are normalised to this contract's")
    figures: bool = True
    label: str = "compare"


@dataclass
class HerdingStudyConfig:
    name: str = "herding"
    contracts: list[str] = key(
        factory=lambda: ["firm", "tou", "tou_acm", "tou_hourly", "dynamic", "capacity_flanders"],
        help="the baseline and the tariff contracts swept",
    )
    shares: list[float] = key(
        factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0], help="automation shares swept"
    )
    response_rest: str = key(
        "scenario",
        "the households not automated: the scenario's mix, or all none/timer/manual",
        choices=("scenario", "none", "timer", "manual"),
    )
    baseline: str = key("firm", "the run the peaks are normalised to")
    figures: bool = True
    label: str = "herding"


@dataclass
class HostingStudyConfig:
    name: str = "hosting"
    contracts: list[str] = key(
        factory=lambda: ["firm", "nonfirm", "performance"], help="contracts searched"
    )
    max_trafo_loading_pct: float = key(100.0, "transformer limit", 1, 1000)
    max_line_loading_pct: float = key(100.0, "cable limit", 1, 1000)
    vm_min_pu: float = key(0.90, "lowest bus voltage", 0.5, 1.2)
    vm_max_pu: float = key(1.10, "highest bus voltage", 0.8, 1.5)
    min_service_share: float = key(1.0, "share of household-days meeting the service levels", 0, 1)
    curve_points: int = key(5, "evenly spaced shares run first", 2, 50)
    label: str = "hosting"


@dataclass
class SensorsStudyConfig:
    name: str = "sensors"
    base: str = key(
        "transformer_only",
        "measurement preset the ranking starts from",
        choices=("full", "transformer_and_meters", "meters_only", "transformer_only"),
    )
    n_sensors: int = key(5, "current sensors placed (greedy rounds)", 1, 200)
    label: str = "sensors"


@dataclass
class UnregisteredStudyConfig:
    name: str = "unregistered"
    share: float | None = key(
        0.3, "share of adopters missing from the register (null: the scenario's)", 0, 1
    )
    base: str = key(
        "transformer_and_meters",
        "measurement preset whose smart-meter data the DSO screens",
        choices=("full", "transformer_and_meters", "meters_only", "transformer_only"),
    )
    label: str = "unregistered"


@dataclass
class RegionSlurmConfig:
    partition: str | None = key(None, "Slurm partition (null: the cluster's default)")
    account: str | None = key(None, "Slurm account to charge (null: your default)")
    array_parallelism: int = key(256, "at most this many tasks of an array at once", 1, 100000)
    timeout_min: int | None = key(
        None, "wall-clock limit per task, minutes (null: derived from the task's size)", 1, 100000
    )
    mem_gb: float | None = key(
        None, "memory per task, GB (null: derived from its largest feeder)", 0.25, 4096
    )
    setup: list[str] = key(
        factory=lambda: [
            "export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1",
        ],
        help="shell lines run in each task before twin starts",
    )


@dataclass
class RegionStudyConfig:
    name: str = "region"
    contracts: list[str] = key(
        factory=lambda: ["firm", "performance"], help="contracts run on every feeder"
    )
    feeders: list[str] | None = key(None, "the feeders to run (null: every feeder of the region)")
    max_feeders: int | None = key(
        None, "run only the first N feeders (in the region's station order)", 1, 100000
    )
    launcher: str = key(
        "local",
        "local: joblib processes here; slurm: a Slurm job array",
        choices=("local", "slurm"),
    )
    n_jobs: int = key(2, "local worker processes (-1: one per core)", -1, 1024)
    batch_households: int = key(
        400, "Slurm: feeders are packed into tasks of up to this many households", 1, 1000000
    )
    slurm: RegionSlurmConfig = field(default_factory=RegionSlurmConfig)
    mv_check: bool = key(True, "the MV grid's batch power flow of the stations' loads")
    feeder_figures: bool = key(False, "each feeder run's own figures")
    figures: bool = True
    label: str = "region"


# -- the primary config -------------------------------------------------------------------------
@dataclass
class TwinConfig:
    seed: int = key(42, "drives every random stream", 0, 2**32 - 1)
    run_name: str = "${study.label}"
    objective: str | None = key(
        None,
        "a KPI the run returns as its value, for Hydra sweepers (optuna); -name negates it",
    )
    service: ServiceConfig = field(default_factory=ServiceConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    sim: SimConfig = field(default_factory=SimConfig)
    weather: WeatherConfig = field(default_factory=WeatherConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    forecast: ForecastConfig = field(default_factory=ForecastConfig)
    measurement: MeasurementConfig = field(default_factory=MeasurementConfig)
    tariff: TariffConfig = field(default_factory=TariffConfig)
    contract: Any = None  # one of CONTRACT_SCHEMAS (the contract group's option names it)
    study: Any = None  # one of STUDY_SCHEMAS


#: The schema of each contract kind (keyed by ``contract.name``).
CONTRACT_SCHEMAS: dict[str, type] = {
    "firm": FirmConfig,
    "nonfirm": NonfirmConfig,
    "performance": PerformanceConfig,
    "tou": TariffHemsConfig,
    "dynamic": TariffHemsConfig,
    "capacity": TariffHemsConfig,
    "tou_acm": TariffHemsConfig,
    "tou_hourly": TariffHemsConfig,
    "capacity_flanders": TariffHemsConfig,
}
#: The schema of each study (keyed by ``study.name``).
STUDY_SCHEMAS: dict[str, type] = {
    "single": SingleStudyConfig,
    "compare": CompareStudyConfig,
    "hosting": HostingStudyConfig,
    "sensors": SensorsStudyConfig,
    "unregistered": UnregisteredStudyConfig,
    "herding": HerdingStudyConfig,
    "region": RegionStudyConfig,
}


def register() -> None:
    """Put the schemas into Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="twin_schema", node=TwinConfig)
    cs.store(group="tariff", name="tariff_schema", node=TariffConfig)
    cs.store(group="forecast", name="forecast_schema", node=ForecastConfig)
    cs.store(group="measurement", name="measurement_schema", node=MeasurementConfig)
    for name, schema in (
        ("firm_schema", FirmConfig),
        ("nonfirm_schema", NonfirmConfig),
        ("performance_schema", PerformanceConfig),
        ("tariff_hems_schema", TariffHemsConfig),
    ):
        cs.store(group="contract", name=name, node=schema)
    for name, schema in STUDY_SCHEMAS.items():
        cs.store(group="study", name=f"{name}_schema", node=schema)


def bounds_of(schema: type, prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every field of ``schema`` (recursively) that carries bounds, as ``(dotted key,
    metadata)``."""
    out = []
    for f in fields(schema):
        name = f"{prefix}{f.name}"
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if is_dataclass(default):
            out += bounds_of(type(default), f"{name}.")
        elif any(f.metadata.get(k) is not None for k in ("low", "high", "choices")):
            out.append((name, dict(f.metadata)))
    return out
