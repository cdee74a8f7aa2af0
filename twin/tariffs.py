"""Tariffs and household bills. Energy price, grid fee and taxes are kept apart.

A :class:`Tariff` turns a tariff config (``twin/configs/tariff/``) into per-step prices over a run's
window; :func:`bills` turns household net loads into bills per component.

Synthetic day-ahead series (the ``dynamic`` tariff's default, no market data ships offline):

    price [€/MWh] = 80 + 30·shape(hour) + 2·max(15 − T_out, 0) − 0.2·GHI [W/m²]

``shape`` has a morning (08:00, weight 0.6) and an evening (19:00, weight 1) Gaussian peak; the
cold term raises winter prices, the irradiance term makes the midday solar dip. On the
TRY2010 region-5 year its mean is €78.5/MWh (NL day-ahead 2024: about €77/MWh) and 8.0 % of
hours are negative (NL 2024: 8 % as reported; an assumption-level calibration, no price data ships offline).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from twin.errors import TwinError
from twin.timegrid import DT_H, STEPS_PER_DAY, STEPS_PER_HOUR, TimeWindow

DAYS_PER_MONTH = 365.0 / 12.0


def synthetic_day_ahead_eur_per_kwh(t_out_c: np.ndarray, ghi_w_m2: np.ndarray) -> np.ndarray:
    """The synthetic day-ahead price (€/kWh) for a year of 15-minute weather (see module doc)."""
    hour = (np.arange(len(t_out_c)) % STEPS_PER_DAY) / STEPS_PER_HOUR
    shape = 0.6 * np.exp(-0.5 * ((hour - 8.0) / 1.5) ** 2) + np.exp(
        -0.5 * ((hour - 19.0) / 2.0) ** 2
    )
    eur_per_mwh = 80.0 + 30.0 * shape + 2.0 * np.clip(15.0 - t_out_c, 0.0, None) - 0.2 * ghi_w_m2
    return eur_per_mwh / 1000.0


def read_price_csv(path: str) -> np.ndarray:
    """A year of prices from a CSV (columns ``time``, ``price_eur_per_kwh``) at 15 minutes."""
    p = Path(path)
    if not p.is_file():
        raise TwinError(
            f"price file {path!r} not found: give tariff.dynamic.csv an existing CSV path"
        )
    df = pd.read_csv(p)
    if not {"time", "price_eur_per_kwh"} <= set(df.columns):
        raise TwinError(f"price file {path!r} needs columns time, price_eur_per_kwh")
    s = df.set_index(pd.to_datetime(df["time"]))["price_eur_per_kwh"].astype(float)
    s = s[~((s.index.month == 2) & (s.index.day == 29))].resample("15min").ffill()
    if len(s) < 365 * STEPS_PER_DAY:
        raise TwinError(
            f"price file {path!r} covers {len(s) / 96:.0f} days: it must cover a whole year"
        )
    return s.to_numpy()[: 365 * STEPS_PER_DAY]


@dataclass(frozen=True)
class Tariff:
    """Per-step prices over a window (€ excl. VAT unless named otherwise)."""

    name: str
    energy_eur_per_kwh: np.ndarray  # (T,) import
    feed_in_eur_per_kwh: np.ndarray  # (T,) export compensation
    grid_fee_eur_per_kwh: np.ndarray  # (T,) volumetric grid fee (time-of-use)
    tax_eur_per_kwh: float
    vat: float
    grid_fee_eur_per_day: float
    capacity_eur_per_kw_per_day: float  # 0 without a capacity charge
    capacity_period_days: int  # 1 (daily peak) or 30/31 (monthly peak, calendar month)
    capacity_min_kw: float
    months: np.ndarray  # (T,) calendar month of each step, for monthly peaks

    def sliced(self, rows: slice) -> Tariff:
        """The same tariff over a sub-range of its steps."""
        return replace(
            self,
            energy_eur_per_kwh=self.energy_eur_per_kwh[rows],
            feed_in_eur_per_kwh=self.feed_in_eur_per_kwh[rows],
            grid_fee_eur_per_kwh=self.grid_fee_eur_per_kwh[rows],
            months=self.months[rows],
        )

    @property
    def import_eur_per_kwh(self) -> np.ndarray:
        """Marginal price of one more imported kWh, VAT included: what a HEMS sees."""
        return (self.energy_eur_per_kwh + self.grid_fee_eur_per_kwh + self.tax_eur_per_kwh) * (
            1 + self.vat
        )

    @property
    def export_eur_per_kwh(self) -> np.ndarray:
        return self.feed_in_eur_per_kwh


def make_tariff(
    cfg: Any, window: TimeWindow, t_out_year_c: np.ndarray, ghi_year_w_m2: np.ndarray
) -> Tariff:
    """Build the tariff of ``cfg`` (a ``twin/configs/tariff/`` entry) for every simulated step of
    ``window`` (warm-up included; :meth:`Tariff.sliced` cuts it to the reported steps)."""
    rows = window.sim_year_index
    n = len(rows)
    hour = (np.arange(n) % STEPS_PER_DAY) / STEPS_PER_HOUR
    energy = np.full(n, float(cfg.energy_eur_per_kwh))
    if cfg.get("dynamic"):
        csv = cfg.dynamic.get("csv")
        year = (
            read_price_csv(csv)
            if csv
            else synthetic_day_ahead_eur_per_kwh(t_out_year_c, ghi_year_w_m2)
        )
        energy = year[rows] + float(cfg.dynamic.margin_eur_per_kwh)
    grid_kwh = np.full(n, float(cfg.grid_fee_eur_per_kwh))
    if cfg.get("tou"):
        grid_kwh[:] = float(cfg.tou.off_peak_eur_per_kwh)
        for block in cfg.tou.blocks:
            start, end, price = float(block[0]), float(block[1]), float(block[2])
            if not 0 <= start < end <= 24:
                raise TwinError(
                    f"tariff.tou block {list(block)} is invalid: give [start hour, end hour, €/kWh] with 0 <= start < end <= 24"
                )
            grid_kwh[(hour >= start) & (hour < end)] = price
    cap = cfg.get("capacity")
    if cap and cap.period not in ("month", "day"):
        raise TwinError(f"tariff.capacity.period={cap.period!r} is invalid: use month or day")
    per_day = float(cap.eur_per_kw_per_month) / DAYS_PER_MONTH if cap else 0.0
    return Tariff(
        name=str(cfg.name),
        energy_eur_per_kwh=energy,
        feed_in_eur_per_kwh=np.full(n, float(cfg.feed_in_eur_per_kwh)),
        grid_fee_eur_per_kwh=grid_kwh,
        tax_eur_per_kwh=float(cfg.tax_eur_per_kwh),
        vat=float(cfg.vat),
        grid_fee_eur_per_day=float(cfg.grid_fee_eur_per_year) / 365.0,
        capacity_eur_per_kw_per_day=per_day,
        capacity_period_days=1 if cap and cap.period == "day" else 31,
        capacity_min_kw=float(cap.min_kw) if cap else 0.0,
        months=pd.date_range(
            window.start - pd.Timedelta(days=window.warmup_days), periods=n, freq="15min"
        ).month.to_numpy(),
    )


#: A step of the tariff's mean day is in its cheap block if its import price lies within this
#: share of the day's price spread above the day's lowest, in its dear block if at least this
#: share above it (:func:`cheap_block`; assumptions: how a timer's owner reads a tariff).
CHEAP_WITHIN_SPREAD = 0.1
DEAR_FROM_SPREAD = 0.5


@dataclass(frozen=True)
class CheapBlock:
    """The night's cheap block of a tariff's mean day, as a timer's owner reads it.

    ``start`` (step of the day, 0..95) and ``length`` (steps) of the cheap run around the
    night's cheapest step (:func:`cheap_block`); ``dear`` ``(96,)`` marks the dear steps.
    ``length`` 0: the tariff has no cheap block (a flat price: timers have nothing to aim at).
    """

    start: int
    length: int
    dear: np.ndarray

    @property
    def exists(self) -> bool:
        return self.length > 0

    def phase(self, k: int) -> int:
        """Steps since the block last started (0 .. 95) at simulated step ``k``."""
        return (k - self.start) % STEPS_PER_DAY

    def window(self, k: int) -> int:
        """Index of the block that is running at step ``k``, or that starts next (0: the one
        that starts in the first day of the simulation or runs at its start)."""
        w = (k - self.start) // STEPS_PER_DAY + 1
        return w if self.phase(k) < self.length else w + 1


#: The hours a timer's owner looks for the cheap block in: when the car is usually at home
#: (assumption: from 18:00 to 07:00).
NIGHT_FROM_H, NIGHT_TO_H = 18.0, 7.0


def cheap_block(import_eur_per_kwh: np.ndarray) -> CheapBlock:
    """The cheap block of the tariff's mean day over the given steps (see :class:`CheapBlock`):
    the run of steps around the night's cheapest one (between :data:`NIGHT_FROM_H` and
    :data:`NIGHT_TO_H`, when the car is usually home) whose price lies within
    :data:`CHEAP_WITHIN_SPREAD` of the day's spread above it; dear: at least
    :data:`DEAR_FROM_SPREAD` of the spread above the day's lowest price."""
    p = np.asarray(import_eur_per_kwh, float)
    days = len(p) // STEPS_PER_DAY
    day = p[: days * STEPS_PER_DAY].reshape(days, STEPS_PER_DAY).mean(axis=0)
    lo, hi = float(day.min()), float(day.max())
    spread = hi - lo
    if spread <= 1e-9 * max(abs(hi), 1.0):
        return CheapBlock(0, 0, np.zeros(STEPS_PER_DAY, bool))
    dear = day >= lo + DEAR_FROM_SPREAD * spread
    # the night in order, from NIGHT_FROM_H (steps of the day)
    first = int(NIGHT_FROM_H * STEPS_PER_HOUR)
    n_night = int(round((24.0 - NIGHT_FROM_H + NIGHT_TO_H) * STEPS_PER_HOUR))
    night = (first + np.arange(n_night)) % STEPS_PER_DAY
    price = day[night]
    best = int(np.argmin(price))
    cheap = price <= price[best] + CHEAP_WITHIN_SPREAD * spread
    a = best
    while a > 0 and cheap[a - 1]:
        a -= 1
    b = best
    while b + 1 < n_night and cheap[b + 1]:
        b += 1
    return CheapBlock(int(night[a]), int(b - a + 1), dear)


def period_peaks_kw(p_net_kw: np.ndarray, tariff: Tariff) -> tuple[np.ndarray, np.ndarray]:
    """Per billing period: (days in the window, peak import per household (P, H))."""
    t = len(p_net_kw)
    if tariff.capacity_period_days == 1:
        days = t // STEPS_PER_DAY
        peaks = p_net_kw[: days * STEPS_PER_DAY].reshape(days, STEPS_PER_DAY, -1).max(axis=1)
        return np.ones(days), peaks
    labels, first = np.unique(tariff.months, return_index=True)
    order = np.argsort(first)
    peaks = np.stack([p_net_kw[tariff.months == labels[i]].max(axis=0) for i in order])
    days = np.array([(tariff.months == labels[i]).sum() / STEPS_PER_DAY for i in order])
    return days, peaks


def bills(
    p_net_kw: np.ndarray, tariff: Tariff, discount_eur_per_year: np.ndarray | float = 0.0
) -> pd.DataFrame:
    """Each household's bill over the window, per component, VAT included (€).

    ``energy_eur`` (supplier, import), ``feed_in_eur`` (negative: credit for export),
    ``grid_fee_eur`` (fixed + volumetric), ``capacity_eur`` (capacity charge), ``tax_eur``
    (energy tax), ``vat_eur``, ``discount_eur`` (negative: e.g. a performance contract) and
    ``total_eur``, which is their sum.
    """
    imp = np.clip(p_net_kw, 0.0, None) * DT_H
    exp = np.clip(-p_net_kw, 0.0, None) * DT_H
    n_days = len(p_net_kw) / STEPS_PER_DAY
    energy = tariff.energy_eur_per_kwh @ imp
    grid = tariff.grid_fee_eur_per_kwh @ imp + tariff.grid_fee_eur_per_day * n_days
    if tariff.capacity_eur_per_kw_per_day > 0:
        days, peaks = period_peaks_kw(p_net_kw, tariff)
        capacity = (np.maximum(peaks, tariff.capacity_min_kw) * days[:, None]).sum(
            axis=0
        ) * tariff.capacity_eur_per_kw_per_day
    else:
        capacity = np.zeros(p_net_kw.shape[1])
    tax = tariff.tax_eur_per_kwh * imp.sum(axis=0)
    vat = tariff.vat * (energy + grid + capacity + tax)
    feed_in = -(tariff.feed_in_eur_per_kwh @ exp)
    discount = (
        -np.broadcast_to(np.asarray(discount_eur_per_year, float), energy.shape) * n_days / 365.0
    )
    frame = pd.DataFrame(
        {
            "energy_eur": energy,
            "feed_in_eur": feed_in,
            "grid_fee_eur": grid,
            "capacity_eur": capacity,
            "tax_eur": tax,
            "vat_eur": vat,
            "discount_eur": discount,
        }
    )
    frame["total_eur"] = frame.sum(axis=1)
    return frame


def stored_value_eur(stored_kwh: np.ndarray, tariff: Tariff) -> np.ndarray:
    """``(H,)`` what the electricity left stored at the end of a window would cost to buy at the
    window's mean marginal import price (VAT included): the bill correction that compares
    contracts ending in different states like with like."""
    return np.asarray(stored_kwh, float) * float(np.mean(tariff.import_eur_per_kwh))


def bill_kpis(frame: pd.DataFrame, stored_value: np.ndarray | None = None) -> dict[str, float]:
    """Across households: mean, median and worst decile of the total; mean per component."""
    total = frame["total_eur"]
    out = {
        "bill_mean_eur": float(total.mean()),
        "bill_median_eur": float(total.median()),
        "bill_worst_decile_eur": float(total.quantile(0.9)),
    }
    out.update(
        {f"bill_{c}_mean": float(frame[c].mean()) for c in frame.columns if c != "total_eur"}
    )
    out["dso_revenue_eur"] = float(
        (frame["grid_fee_eur"] + frame["capacity_eur"] + frame["discount_eur"]).sum()
    )
    if stored_value is not None:  # corrected for what is left stored at the end
        corrected = total - stored_value
        out["bill_mean_corrected_eur"] = float(corrected.mean())
        out["bill_median_corrected_eur"] = float(corrected.median())
        out["bill_worst_decile_corrected_eur"] = float(corrected.quantile(0.9))
    return out
