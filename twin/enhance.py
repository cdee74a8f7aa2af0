"""Data enhancement: finding the heat pumps, EVs and PV the DSO's register does not know of
(``twin study=unregistered``).

The feeder is simulated once with a share of adopters missing from the register
(``adoption.unregistered_given_adopter``; the study sets ``study.share``, default 0.3). The
DSO then screens every household's smart-meter data (as the ``study.base`` measurement
preset delivers it: noise, lost readings, aggregation; the window after the fact, so delay
does not matter) with three rules whose thresholds are physical, not fitted to the truth:

* **EV**: runs of at least ``EV_MIN_STEPS`` (4, an hour) consecutive readings at least
  ``EV_STEP_KW`` (3.0 kW) above the household's own median reading (home chargers draw 3.7 or
  11 kW), ``EV_MIN_HOURS_PER_WEEK`` (2 h) of them a week (a car charges on most days; a heat
  pump's bursts are rarer);
* **PV**: an export (a reading below ``-PV_EXPORT_KW``, 0.1 kW) in daylight, or a negative
  response to irradiance: the slope of the readings on the irradiance, both taken relative to
  their mean at the same hour of the day (so the daily shape of the base load does not count),
  at most ``PV_SLOPE_KW`` (-0.25 kW per kW/m², about 0.3 kWp) and significant (t statistic at
  most ``PV_T_STAT``, -3: the base load's own day-to-day swings make large slopes where the
  irradiance hardly varies, as in December);
* **heat pump**: outside the EV plateaus, the 25th percentile of the readings above the
  household's standard profile (what it would draw without devices, from its registered annual
  energy) at least ``HP_EXCESS_KW`` (0.3 kW): a heat pump runs most hours of a heating season
  (the rule is meant for a heating-season window).

Precision and recall are counted among the households the register does not list with that
device (the ones a DSO would screen). Found devices are then added to the DSO's per-connection
load forecast — the standard profile plus an expected profile of every device it knows of (a
heat pump: ``a * h(T_out)`` with the heating fraction ``h = clip((18 °C - T_out) / (18 °C -
T_design), 0, 1)`` and ``a`` the registered thermal capacity over a COP of 3, or, for a found
one, fitted to the household's readings; an EV: the scenario's mean daily energy spread over
17:00–23:00; PV: kWp × irradiance × 0.75, the kWp of a found one from its slope) — and the
forecast is scored against the truth three ways: the register as it is, with the found
devices, and with every device (a complete register, the upper bound); the same profiles are
the pseudo-measurements of a ``transformer_only`` state estimation, scored too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.timegrid import STEPS_PER_DAY

__all__ = ["DeviceDetection", "detect_devices", "device_profiles_kw", "unregistered_study"]

EV_STEP_KW = 3.0
EV_MIN_STEPS = 4
EV_MIN_HOURS_PER_WEEK = 2.0
PV_EXPORT_KW = 0.1
PV_SLOPE_KW = -0.25  # kW per kW/m2 of irradiance
PV_T_STAT = -3.0
PV_DAYLIGHT_W_M2 = 50.0
HP_EXCESS_KW = 0.3
HP_QUANTILE = 25.0
#: the DSO's rules of thumb for a device it knows of (assumptions)
HEATING_LIMIT_C = 18.0
COP_TYPICAL = 3.0
PV_PERFORMANCE_RATIO = 0.75
EV_HOURS = (17, 23)
DEVICES = ("heat_pump", "ev", "pv")


@dataclass
class DeviceDetection:
    """What the rules found per household (``(H,)`` arrays) and the sizes they estimate."""

    found: dict[str, np.ndarray]
    hp_a_kw: np.ndarray  # fitted heat-pump power at full heating fraction (kW)
    ev_kwh_per_day: np.ndarray  # energy of the plateaus per day (kWh)
    pv_kwp: np.ndarray  # kWp from the irradiance slope
    features: dict[str, np.ndarray] = field(default_factory=dict)


def heating_fraction(t_out_c: np.ndarray, t_design_c: float) -> np.ndarray:
    return np.clip((HEATING_LIMIT_C - t_out_c) / (HEATING_LIMIT_C - t_design_c), 0.0, 1.0)


def _runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """``(T, H)`` steps that belong to a run of at least ``min_len`` True values (per column)."""
    t = len(mask)
    run = np.zeros(mask.shape, np.int64)
    for k in range(t):
        run[k] = np.where(mask[k], (run[k - 1] if k else 0) + 1, 0)
    out = np.zeros(mask.shape, bool)
    ends = run >= min_len
    for k in range(t - 1, -1, -1):  # spread each long run back over its steps
        nxt = out[k + 1] if k + 1 < t else np.zeros(mask.shape[1], bool)
        out[k] = ends[k] | (mask[k] & nxt)
    return out


def detect_devices(
    read_kw: np.ndarray,
    standard_kw: np.ndarray,
    t_out_c: np.ndarray,
    ghi_w_m2: np.ndarray,
    t_design_c: float,
) -> DeviceDetection:
    """The module docstring's rules on ``(T, H)`` readings (NaN: no reading), the households'
    ``(T, H)`` standard profiles and the ``(T,)`` weather of the same steps (the window starts
    at midnight)."""
    read = np.asarray(read_kw, float)
    valid = np.isfinite(read)
    n_t, n_h = read.shape
    days = max(n_t / STEPS_PER_DAY, 1e-9)
    med = np.nanmedian(np.where(valid, read, np.nan), axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    above = np.where(valid, read - med[None, :], 0.0)
    plateau = _runs(above >= EV_STEP_KW, EV_MIN_STEPS)
    ev = plateau.sum(axis=0) * 0.25 >= EV_MIN_HOURS_PER_WEEK * days / 7.0
    ev_kwh = np.where(plateau, above, 0.0).sum(axis=0) * 0.25 / days
    # PV: export in daylight, or the readings falling with irradiance at the same hour
    day = ghi_w_m2 >= PV_DAYLIGHT_W_M2
    export = (valid & day[:, None] & (read < -PV_EXPORT_KW)).any(axis=0)
    hour = (np.arange(n_t) % STEPS_PER_DAY) // 4
    x = np.where(valid & day[:, None], read, np.nan)
    g = np.where(valid & day[:, None], ghi_w_m2[:, None] / 1000.0, np.nan)
    dx, dg = np.full_like(x, np.nan), np.full_like(g, np.nan)
    for h in np.unique(hour[day]):
        rows = (hour == h) & day
        if rows.sum() < 2:
            continue
        with np.errstate(invalid="ignore"):
            dx[rows] = x[rows] - np.nanmean(x[rows], axis=0)
            dg[rows] = g[rows] - np.nanmean(g[rows], axis=0)
    sxx = np.nansum(dg * dg, axis=0)
    slope = np.where(sxx > 1e-9, np.nansum(dx * dg, axis=0) / np.maximum(sxx, 1e-12), 0.0)
    resid = dx - slope[None, :] * dg
    n_obs = np.isfinite(resid).sum(axis=0)
    s2 = np.nansum(resid * resid, axis=0) / np.maximum(n_obs - 2, 1)
    t_stat = slope / np.sqrt(np.maximum(s2 / np.maximum(sxx, 1e-12), 1e-18))
    pv = export | ((slope <= PV_SLOPE_KW) & (t_stat <= PV_T_STAT))
    pv_kwp = np.maximum(-slope, 0.0) / PV_PERFORMANCE_RATIO
    # heat pump: a persistent excess over the standard profile, outside the EV plateaus
    near = plateau.copy()
    near[1:] |= plateau[:-1]
    near[:-1] |= plateau[1:]
    excess = np.where(valid & ~near, read - standard_kw, np.nan)
    with np.errstate(invalid="ignore"):
        q = np.nanpercentile(excess, HP_QUANTILE, axis=0)
    q = np.where(np.isfinite(q), q, 0.0)
    hp = q >= HP_EXCESS_KW
    h = heating_fraction(np.asarray(t_out_c, float), t_design_c)[:, None]
    ok = np.isfinite(excess)
    hh = np.where(ok, h, 0.0)
    a = np.nansum(np.where(ok, excess, 0.0) * hh, axis=0) / np.maximum((hh * hh).sum(axis=0), 1e-9)
    return DeviceDetection(
        found={"heat_pump": hp, "ev": ev, "pv": pv},
        hp_a_kw=np.maximum(a, 0.0),
        ev_kwh_per_day=ev_kwh,
        pv_kwp=pv_kwp,
        features={
            "hp_excess_p25_kw": q,
            "ev_plateau_steps": plateau.sum(axis=0),
            "pv_slope_kw_per_kw_m2": slope,
            "pv_slope_t": t_stat,
            "pv_export": export,
        },
    )


def device_profiles_kw(
    standard_kw: np.ndarray,
    t_out_c: np.ndarray,
    ghi_w_m2: np.ndarray,
    t_design_c: float,
    hp_a_kw: np.ndarray,
    ev_kwh_per_day: np.ndarray,
    pv_kwp: np.ndarray,
) -> np.ndarray:
    """``(T, H)`` the DSO's forecast of each household's net import: its standard profile plus
    the expected profile of every device it knows of (sizes ``(H,)``, 0: none; see the module
    docstring)."""
    n_t = len(standard_kw)
    h = heating_fraction(np.asarray(t_out_c, float), t_design_c)[:, None]
    hour = (np.arange(n_t) % STEPS_PER_DAY) / 4.0
    evening = ((hour >= EV_HOURS[0]) & (hour < EV_HOURS[1])).astype(float)[:, None]
    ev_kw = ev_kwh_per_day[None, :] / (EV_HOURS[1] - EV_HOURS[0]) * evening
    pv = pv_kwp[None, :] * np.asarray(ghi_w_m2, float)[:, None] / 1000.0 * PV_PERFORMANCE_RATIO
    return standard_kw + hp_a_kw[None, :] * h + ev_kw - pv


def _pr(found: np.ndarray, truth: np.ndarray, screened: np.ndarray) -> dict[str, Any]:
    det = found & screened
    tp = int((det & truth).sum())
    fp = int((det & ~truth).sum())
    fn = int((~found & truth & screened).sum())
    return {
        "screened": int(screened.sum()),
        "unregistered_adopters": int((truth & screened).sum()),
        "detected": int(det.sum()),
        "true_positives": tp,
        "false_positives": fp,
        "missed": fn,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
    }


def unregistered_study(result: Any, settings: Any, threads: int = 0) -> dict[str, Any]:
    """Detect, score and add the unregistered devices of a simulated ``result`` (a
    :class:`~twin.result.RunResult`) from the households' meter data as ``settings`` (a
    :class:`twin.measure.MeasurementSettings`) delivers it."""
    from dataclasses import replace

    from twin.measure import (
        MeasurementSettings,
        estimate_feeder,
        meter_groups,
        meter_noise,
        meter_readings,
        metered_connections,
    )

    t0 = time.perf_counter()
    feeder, window, fleet = result.feeder, result.window, result.fleet
    net = feeder.net
    seed = int(result.cfg.seed)
    hh = np.asarray(feeder.household_cols)
    w = window.n_warmup_steps
    p_sim = np.vstack([result.warmup_p_load_kw, result.p_load_kw])
    q_sim = feeder.load_q_kvar[window.sim_year_index]
    prof = result.standard_p_kw
    # the households' meter data, as the preset delivers it (after the fact: every reading
    # that arrives), the reported steps
    metered = metered_connections(settings, p_sim.shape[1], seed)
    z_p, z_q, lost = meter_noise(settings, seed, p_sim.shape)
    groups = meter_groups(settings, net.load["bus"].to_numpy(), metered)
    p_read, _, _, _, have = meter_readings(
        settings, p_sim, q_sim, z_p, z_q, lost, metered, groups, prof
    )
    read = np.where(have, p_read, np.nan)[w:, hh]
    standard = prof[w:, hh]
    t_out, ghi = np.asarray(result.t_out_c, float), np.asarray(result.ghi_w_m2, float)
    sc = result.scenario
    t_design = float(sc["dwelling"]["design_outdoor_c"].value)
    det = detect_devices(read, standard, t_out, ghi, t_design)
    has = {"heat_pump": fleet.has_hp, "ev": fleet.has_ev, "pv": fleet.pv_kwp > 0}
    unreg = result.unregistered or {d: np.zeros(fleet.n, bool) for d in DEVICES}
    registered = {d: has[d] & ~unreg[d] for d in DEVICES}
    rows = []
    for d in DEVICES:
        rows.append(
            {
                "device": d,
                "adopters": int(has[d].sum()),
                **_pr(det.found[d], has[d], ~registered[d]),
            }
        )
        # the same rule over every household (registered adopters too): its recall on more
        rows[-1]["recall_all_adopters"] = float(
            (det.found[d] & has[d]).sum() / max(int(has[d].sum()), 1)
        )
        rows[-1]["false_alarm_rate_all"] = float(
            (det.found[d] & ~has[d]).sum() / max(int((~has[d]).sum()), 1)
        )
    detection = pd.DataFrame(rows)
    # the DSO's forecasts: the register, the register + what was found, every device
    ev_day = (
        float(sc["ev"]["annual_km"].value)
        / 365.0
        * float(
            np.mean(np.asarray(fleet.ev_kwh_per_km)[fleet.has_ev]) if fleet.has_ev.any() else 0.0
        )
    )
    reg_hp_a = fleet.hp_q_max_kw / COP_TYPICAL
    sizes_known = {
        "heat_pump": reg_hp_a,
        "ev": np.full(fleet.n, ev_day),
        "pv": np.asarray(fleet.pv_kwp, float),
    }
    sizes_found = {"heat_pump": det.hp_a_kw, "ev": det.ev_kwh_per_day, "pv": det.pv_kwp}

    def sizes(known: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = {}
        for d in DEVICES:
            add = known[d] & ~registered[d]  # found (or, complete register: every) device
            out[d] = np.where(registered[d], sizes_known[d], np.where(add, sizes_found[d], 0.0))
        return out

    complete = {d: has[d] for d in DEVICES}
    found_new = {d: det.found[d] & ~registered[d] for d in DEVICES}
    variants = {
        "register": {d: np.zeros(fleet.n, bool) for d in DEVICES},
        "register + found": found_new,
        "complete register": complete,
    }
    truth = result.p_load_kw[:, hh]
    meas = MeasurementSettings.from_config(None)
    meas = replace(
        meas, name="transformer_only", heads=False, meter_share=0.0, trafo=True, estimate=True
    )
    fc_rows = []
    for name, known in variants.items():
        s = sizes(known)
        if name == "complete register":  # every device, at what a register would say of it
            s = {d: np.where(has[d], sizes_known[d], 0.0) for d in DEVICES}
        fc = device_profiles_kw(standard, t_out, ghi, t_design, s["heat_pump"], s["ev"], s["pv"])
        err = np.abs(fc - truth)
        prof_all = prof.copy()
        prof_all[w:, hh] = fc
        se = estimate_feeder(
            meas, net, p_sim, q_sim, prof_all, w, result.grid, seed, threads, final=False
        )
        fc_rows.append(
            {
                "forecast": name,
                "household_mae_kw": float(err.mean()),
                "feeder_mae_kw": float(np.abs(fc.sum(axis=1) - truth.sum(axis=1)).mean()),
                "feeder_bias_kw": float((fc.sum(axis=1) - truth.sum(axis=1)).mean()),
                "se_line_err_max_pp": se.kpis["se_line_err_max_pp"],
                "se_line_err_mean_pp": se.kpis["se_line_err_mean_pp"],
                "se_vm_err_max_pu": se.kpis["se_vm_err_max_pu"],
            }
        )
    forecasts = pd.DataFrame(fc_rows)
    households = pd.DataFrame(
        {
            "household": np.arange(fleet.n),
            "load_index": np.asarray(result.load_index),
            **{f"has_{d}": has[d] for d in DEVICES},
            **{f"registered_{d}": registered[d] for d in DEVICES},
            **{f"found_{d}": det.found[d] for d in DEVICES},
            **det.features,
            "hp_a_kw": det.hp_a_kw,
            "ev_kwh_per_day": det.ev_kwh_per_day,
            "pv_kwp_estimated": det.pv_kwp,
        }
    )
    info = {
        "share": float(sc["adoption"]["unregistered_given_adopter"].value),
        "measurement": settings.name,
        "steps": int(len(read)),
        "reading_share": float(np.isfinite(read).mean()),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return {"detection": detection, "forecasts": forecasts, "households": households, "info": info}


def unregistered_markdown(out: dict[str, Any], cfg: Any = None) -> str:
    head = "# Unregistered devices"
    if cfg is not None:
        head += (
            f": {cfg.grid.name} · {cfg.scenario.name} · contract {cfg.contract.name} · "
            f"{cfg.sim.start} + {cfg.sim.days} d · seed {cfg.seed}"
        )
    i = out["info"]
    return "\n".join(
        [
            head,
            "",
            f"{i['share']:.0%} of the adopters of each device are missing from the DSO's register. "
            f"The DSO screens the households' smart-meter data (`measurement={i['measurement']}`, "
            f"{i['reading_share']:.1%} of the readings there, {i['steps']} steps) with the rules of "
            "`twin/enhance.py`; precision and recall among the households the register does not "
            "list with the device.",
            "",
            "## Detection",
            "",
            out["detection"].to_markdown(index=False, floatfmt=".3g"),
            "",
            "## The DSO's forecast of each connection, and the state estimation on it",
            "",
            "Standard profile plus every device the DSO knows of; `se_*`: a `transformer_only` "
            "state estimation with these forecasts as its pseudo-measurements.",
            "",
            out["forecasts"].to_markdown(index=False, floatfmt=".4g"),
            "",
            "Files: `detection.csv`, `forecasts.csv`, `households.csv` (per household: devices, "
            "register, what was found, the rules' features), `unregistered.json`.",
            "",
        ]
    )


def write_unregistered(out: dict[str, Any], out_dir: Any, cfg: Any = None) -> Path:
    """The study's folder (an exclusive, all-or-nothing :class:`twin.writer.RunFolder`)."""
    from twin.writer import RunFolder, write_json

    out_dir = Path(out_dir)
    with RunFolder(out_dir) as folder:
        out["detection"].to_csv(folder.stage / "detection.csv", index=False)
        out["forecasts"].to_csv(folder.stage / "forecasts.csv", index=False)
        out["households"].to_csv(folder.stage / "households.csv", index=False)
        write_json(
            folder.stage / "unregistered.json",
            {
                **out["info"],
                "detection": out["detection"].to_dict(orient="records"),
                "forecasts": out["forecasts"].to_dict(orient="records"),
            },
        )
        (folder.stage / "summary.md").write_text(unregistered_markdown(out, cfg))
    return out_dir
