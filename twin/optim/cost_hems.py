"""A household HEMS that minimises its own bill: the LP behind the tariff contracts.

Every household with a controllable device (heat pump in a 1R1C building with its hot-water
tank, EV — a bidirectional one may discharge into the house or the grid at its battery wear
cost —, home battery) plans its devices over a rolling horizon against **its own** bill under
a tariff, with no coupling to the feeder or to the other households (implicit flexibility). The HEMSs are
independent (no shared row, separable objective); they are solved as one block-diagonal LP
because one warm re-solve is far faster than ~100 tiny ones.

Per household ``h`` and period ``j`` (length ``dt_j`` hours), on top of the device model of
:class:`~twin.optim.blocks.DeviceBlock`:

* grid exchange: ``imp[h, j] - exp[h, j] - flex[h, j] = inflex[h, j]`` with
  ``imp, exp >= 0`` (``inflex``: forecast base load minus PV, period mean);
* soft service levels (never infeasible, penalised far above any price):
  ``cold[i, s] - under[i, s] <= band - tol`` (comfort floor, K) and
  ``ev_soc[e, s] + short[e, s] >= need[e, s]`` (EV range at the deadline, kWh);
* the energy left in a battery at the horizon's end is worth a share of the horizon's
  cheapest import price after discharge losses and wear (without it the plan sells it off
  before the end);
* capacity tariff only: per household and billing period ``b`` met by the horizon a peak
  variable, ``flex[h, j] - pk[h, b] <= -inflex_max[h, j]`` for the periods in ``b``
  (the row is switched off, right-hand side ``+inf``, for the others), ``pk >= max(the peak
  already metered in b, the tariff's minimum)``.

Objective (€):

    sum dt_j (c_imp[j] imp[h, j] - c_exp[j] exp[h, j])          the energy bill
    + sum c_cap[b] pk[h, b]                                      capacity charge (if any)
    - sum v_bat soc_bat[N]                                       stored energy left at the end
    + below_band * under + ev_short * short                      soft service levels
    + the device block's small terms                             comfort preference inside the
                                                                 band, boiler gas, battery
                                                                 cycling, tie-breaking rewards

``c_imp`` is the tariff's marginal import price (energy, volumetric grid fee and tax, VAT
included), ``c_exp`` its feed-in price capped at ``c_imp`` (a household cannot earn by
importing and exporting at once), ``c_cap`` the charge for one more kW of the billing period's
peak (VAT included). Prices change every re-plan: they are objective coefficients, written
straight into HiGHS (:meth:`~twin.optim.persistent.PersistentLP.push_costs`), next to the mutable Params that
:class:`~twin.optim.persistent.PersistentLP` pushes in bulk. The model is built once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyomo.environ as pyo

from twin.devices.household import Exogenous
from twin.optim.blocks import DeviceBlock, DevicePlan
from twin.optim.devices import COMFORT_TOL_K, EV_TOL_KWH, DeviceInputs, DeviceSet, horizon_due
from twin.optim.horizon import Horizon
from twin.optim.options import SolverOptions, Weights
from twin.optim.persistent import PersistentLP, SolveStats

__all__ = ["CapacityPrices", "CostHems", "CostPlan", "CostWeights", "PriceInputs"]

#: Upper bound of the cold side of the temperature (K below the setpoint) once the comfort
#: floor is a penalised row rather than a bound: loose, never binding in practice.
COLD_UB_K = 50.0


@dataclass(frozen=True)
class CostWeights:
    """Money (€) a HEMS puts on things besides the bill; see the module docstring.

    Attributes
    ----------
    comfort_eur_per_kh : float
        Preference for the setpoint inside the comfort band (per K·h below it): small, so
        the house may coast inside the band when prices make it worth it.
    preheat_eur_per_kh : float
        Discomfort of pre-heating above the setpoint (per K·h).
    below_band_eur_per_kh : float
        Penalty per K·h below the comfort band: far above any price, so the band holds
        wherever the heat pump can hold it.
    ev_short_eur_per_kwh : float
        Penalty per kWh the EV is short of its range at the deadline.
    gas_eur_per_kwh : float
        A hybrid's boiler heat (gas price over boiler efficiency).
    battery_cycle_eur_per_kwh : float
        Battery wear per kWh charged and per kWh discharged.
    ev_soc_eur_per_kwh_h, bat_soc_eur_per_kwh_h : float
        Tiny rewards for stored energy over time: break ties between equally cheap periods
        (earlier charging) and give the stored energy a little value at the horizon's end.
    hp_eur_per_kwh : float
        Tiny cost per heat-pump kWh on top of the price (regularisation).
    battery_end_value_share : float
        A kWh left in a battery at the horizon's end is worth this share of the horizon's
        cheapest import (after discharge losses and wear): below 1 so the battery is used
        inside the horizon rather than hoarded, high enough that it is not sold off at the
        feed-in price.
    """

    comfort_eur_per_kh: float = 0.05
    preheat_eur_per_kh: float = 0.01
    below_band_eur_per_kh: float = 10.0
    ev_short_eur_per_kwh: float = 5.0
    gas_eur_per_kwh: float = 0.15
    battery_cycle_eur_per_kwh: float = 0.02
    ev_soc_eur_per_kwh_h: float = 0.0005
    bat_soc_eur_per_kwh_h: float = 0.0001
    hp_eur_per_kwh: float = 1e-4
    battery_end_value_share: float = 0.8

    @classmethod
    def from_config(cls, cfg: Any) -> CostWeights:
        """From a mapping of field names to numbers (missing keys keep their defaults)."""
        names = {f.name for f in fields(cls)}
        given = dict(cfg or {})
        unknown = set(given) - names
        if unknown:
            raise ValueError(f"unknown HEMS weight(s) {sorted(unknown)}: use {sorted(names)}")
        return cls(**{k: float(v) for k, v in given.items()})

    def device_weights(self) -> Weights:
        """The :class:`~twin.optim.options.Weights` of the device block's own terms."""
        return Weights(
            cold_kh=self.comfort_eur_per_kh,
            warm_kh=self.preheat_eur_per_kh,
            hp_kwh=self.hp_eur_per_kwh,
            gas_kwh=self.gas_eur_per_kwh,
            bat_cycle_kwh=self.battery_cycle_eur_per_kwh,
            ev_soc_kwh_h=self.ev_soc_eur_per_kwh_h,
            bat_soc_kwh_h=self.bat_soc_eur_per_kwh_h,
            swing_kh=self.below_band_eur_per_kh,
        )


@dataclass
class CapacityPrices:
    """One re-plan's capacity charge.

    Attributes
    ----------
    slot_of_period : np.ndarray
        ``(N,)`` billing period (slot ``0 .. S-1``) each plan period falls in.
    eur_per_kw : np.ndarray
        ``(S,)`` cost of one more kW of each slot's peak (0 for unused slots).
    floor_kw : np.ndarray
        ``(n, S)`` peak each household pays for in each slot anyway: the larger of its peak
        metered so far in that billing period and the tariff's minimum.
    inflex_max_kw : np.ndarray
        ``(n, N)`` worst step of each period's inflexible load (base load minus PV): a
        device's power is held over the period, so the period must fit its worst step.
    """

    slot_of_period: np.ndarray
    eur_per_kw: np.ndarray
    floor_kw: np.ndarray
    inflex_max_kw: np.ndarray


@dataclass
class PriceInputs:
    """One re-plan's prices per period (€/kWh, VAT included) and the capacity charge."""

    import_eur_per_kwh: np.ndarray  # (N,)
    export_eur_per_kwh: np.ndarray  # (N,)
    ev_need_kwh: np.ndarray  # (n_ev, N) range due at the end of period j (0: none)
    capacity: CapacityPrices | None = None


@dataclass
class CostPlan:
    """A solved HEMS plan (arrays over the LP's households, per period)."""

    devices: DevicePlan
    import_kw: np.ndarray  # (n, N)
    export_kw: np.ndarray  # (n, N)
    peak_kw: np.ndarray | None  # (n, S) capacity tariff only
    below_band_kh: np.ndarray  # (n_hp,) planned K·h below the comfort band
    ev_short_kwh: np.ndarray  # (n_ev,) planned kWh short at deadlines
    bill_eur: np.ndarray  # (n,) planned energy (+ capacity increment) cost over the horizon


def ev_need_per_period(dev: DeviceSet, horizon: Horizon, fc: Exogenous, k0: int) -> np.ndarray:
    """``(n_ev, N)`` energy each EV should hold at the end of period ``j`` (soft).

    What the cars owe (:func:`twin.optim.devices.horizon_due`: the range at the deadline or
    departure, trip + reserve at every departure) binds the last state of the plan at or before
    it; the reserve binds every state. Planned :data:`EV_TOL_KWH` inside the line.
    """
    need = np.repeat(dev.ev_reserve_kwh[:, None] + EV_TOL_KWH, horizon.n_periods, axis=1)
    due = horizon_due(dev, fc.trips, k0, horizon.n_steps).due_kwh
    for s in np.flatnonzero(due.max(axis=1, initial=0.0) > 0):
        j = int(np.searchsorted(horizon.state_step, s, side="right")) - 2
        if j >= 0:
            need[:, j] = np.maximum(need[:, j], np.where(due[s] > 0, due[s] + EV_TOL_KWH, 0.0))
    return need


class CostHems:
    """Every HEMS's cost-minimising plan, one block-diagonal LP built once and re-solved.

    Parameters
    ----------
    dev : DeviceSet
        Devices of the households that plan (each household its own block).
    horizon : Horizon
        Periods.
    weights : CostWeights
        Money on comfort, gas, wear and ties.
    options : SolverOptions
        HiGHS settings.
    capacity_slots : int
        Billing periods a horizon can meet (0: the tariff has no capacity charge).
    """

    def __init__(
        self,
        dev: DeviceSet,
        horizon: Horizon,
        weights: CostWeights,
        options: SolverOptions,
        capacity_slots: int = 0,
    ) -> None:
        t0 = time.perf_counter()
        self.dev, self.horizon, self.weights = dev, horizon, weights
        n, n_per, n_slot = dev.n, horizon.n_periods, int(capacity_slots)
        self.n_slots = n_slot
        dt = horizon.dt_h
        m = pyo.ConcreteModel(name="cost_hems")
        m.devices = pyo.Block()
        self.devices = DeviceBlock(m.devices, dev, horizon, weights.device_weights())
        terms = self.devices.household_terms

        def flex(h: int, j: int) -> Any:
            return pyo.quicksum(c * v for c, v in terms(h, j))

        # grid exchange, priced per period
        m.HJ = pyo.Set(initialize=[(h, j) for h in range(n) for j in range(n_per)], dimen=2)
        m.imp = pyo.Var(m.HJ, bounds=(0.0, None))
        m.exp = pyo.Var(m.HJ, bounds=(0.0, None))
        m.inflex = pyo.Param(m.HJ, mutable=True, initialize=0.0)
        m.price_imp = pyo.Param(range(n_per), mutable=True, initialize=0.0)
        m.price_exp = pyo.Param(range(n_per), mutable=True, initialize=0.0)
        # (a bound Param is the row's right-hand side as it stands: no sign in front of it)
        m.net = pyo.Constraint(
            m.HJ, rule=lambda m, h, j: m.imp[h, j] - m.exp[h, j] - flex(h, j) == m.inflex[h, j]
        )
        bill = [
            float(dt[j]) * (m.price_imp[j] * m.imp[h, j] - m.price_exp[j] * m.exp[h, j])
            for h in range(n)
            for j in range(n_per)
        ]

        # soft comfort floor (constant) and EV needs (mutable) instead of hard bounds
        b = m.devices
        floor_k = dev.comfort_band_k - COMFORT_TOL_K
        m.HS1 = pyo.Set(
            initialize=[(i, s) for i in range(dev.n_hp) for s in range(1, n_per + 1)], dimen=2
        )
        m.under = pyo.Var(m.HS1, bounds=(0.0, None))
        m.floor = pyo.Constraint(
            m.HS1, rule=lambda m, i, s: b.cold[i, s] - m.under[i, s] <= floor_k
        )
        m.ES1 = pyo.Set(
            initialize=[(e, s) for e in range(dev.n_ev) for s in range(1, n_per + 1)], dimen=2
        )
        m.short = pyo.Var(m.ES1, bounds=(0.0, None))
        m.need = pyo.Param(m.ES1, mutable=True, initialize=0.0)
        m.ev_need = pyo.Constraint(
            m.ES1, rule=lambda m, e, s: b.ev_soc[e, s] + m.short[e, s] >= m.need[e, s]
        )
        w = weights
        soft = [w.below_band_eur_per_kh * float(dt[s - 1]) * m.under[i, s] for i, s in m.HS1] + [
            w.ev_short_eur_per_kwh * m.short[e, s] for e, s in m.ES1
        ]

        # capacity charge: one peak per household and billing period the horizon meets
        cap: list[Any] = []
        if n_slot:
            m.HB = pyo.Set(initialize=[(h, s) for h in range(n) for s in range(n_slot)], dimen=2)
            m.HJB = pyo.Set(
                initialize=[
                    (h, j, s) for h in range(n) for j in range(n_per) for s in range(n_slot)
                ],
                dimen=3,
            )
            m.pk_floor = pyo.Param(m.HB, mutable=True, initialize=0.0)
            m.pk_rhs = pyo.Param(m.HJB, mutable=True, initialize=1e6)  # +inf once pushed
            m.price_cap = pyo.Param(range(n_slot), mutable=True, initialize=0.0)
            m.pk = pyo.Var(m.HB, bounds=lambda m, h, s: (m.pk_floor[h, s], None))
            m.pk_def = pyo.Constraint(
                m.HJB, rule=lambda m, h, j, s: flex(h, j) - m.pk[h, s] <= m.pk_rhs[h, j, s]
            )
            cap = [m.price_cap[s] * m.pk[h, s] for h, s in m.HB]

        m.objective = pyo.Objective(
            expr=self.devices.objective + pyo.quicksum(bill + soft + cap), sense=pyo.minimize
        )
        self.build_s = time.perf_counter() - t0
        self.lp = PersistentLP(m, options)
        self.devices.bind(self.lp)
        lp = self.lp
        hj = [(h, j) for h in range(n) for j in range(n_per)]
        lp.bind(m.inflex, hj, "row_eq", con=m.net)
        es1 = list(m.ES1)
        lp.bind(m.need, es1, "row_lb", con=m.ev_need)
        self._cols = {
            "imp": lp.cols(m.imp, hj).reshape(n, n_per),
            "exp": lp.cols(m.exp, hj).reshape(n, n_per),
            "under": lp.cols(m.under, list(m.HS1)).reshape(dev.n_hp, n_per),
            "short": lp.cols(m.short, es1).reshape(dev.n_ev, n_per),
            "bat_end": lp.cols(m.devices.bat_soc, [(k, n_per) for k in range(dev.n_bat)]),
        }
        if n_slot:
            hb = list(m.HB)
            lp.bind(m.pk_floor, hb, "col_lb", var=m.pk)
            lp.bind(m.pk_rhs, list(m.HJB), "row_ub", con=m.pk_def)
            self._cols["pk"] = lp.cols(m.pk, hb).reshape(n, n_slot)
        self.model = m
        self.solves = 0

    def solve(self, inp: DeviceInputs, prices: PriceInputs) -> tuple[SolveStats, CostPlan | None]:
        """Push one re-plan's data and prices, re-solve (warm), read the plan back.

        Returns ``(stats, plan)``; ``plan`` is None when the solve failed.
        """
        lp, m, dev, hz = self.lp, self.model, self.dev, self.horizon
        n_per = hz.n_periods
        self.devices.push(lp, inp)
        # the comfort floor and the EV needs are penalised rows here, not bounds
        d0 = inp.d0_k[:, None]
        lp.push(
            m.devices.cold_ub,
            np.concatenate([np.maximum(-d0, 0.0), np.full((dev.n_hp, n_per), COLD_UB_K)], axis=1),
        )
        soc0 = inp.ev_soc0_kwh[:, None]
        soc_lb = np.zeros((dev.n_ev, n_per))
        if dev.n_v2g:  # a bidirectional car is never discharged below its owner's V2G reserve
            soc_lb[dev.v2g] = inp.v2g_keep_kwh
        lp.push(m.devices.ev_soc_lb, np.concatenate([soc0, soc_lb], axis=1))
        lp.push(m.need, prices.ev_need_kwh)
        lp.push(m.inflex, inp.p_inflex_kw)
        c_imp = np.asarray(prices.import_eur_per_kwh, dtype=float)
        c_exp = np.minimum(np.asarray(prices.export_eur_per_kwh, dtype=float), c_imp)
        dt = hz.dt_h
        cols = self._cols
        if lp.options.mirror_params:  # keep the Pyomo model showing the prices last solved
            for j in range(n_per):
                m.price_imp[j].set_value(float(c_imp[j]))
                m.price_exp[j].set_value(float(c_exp[j]))
        lp.push_costs(cols["imp"], np.broadcast_to(dt * c_imp, cols["imp"].shape))
        lp.push_costs(cols["exp"], np.broadcast_to(-dt * c_exp, cols["exp"].shape))
        # energy left in a battery at the horizon's end displaces imports later: valued at a
        # share of the horizon's cheapest import (after discharge losses and wear), less than
        # using it inside the horizon, more than selling it off at the feed-in price
        w = self.weights
        value = np.maximum(
            w.battery_end_value_share * dev.bat_eta * c_imp.min() - w.battery_cycle_eur_per_kwh,
            0.0,
        )
        lp.push_costs(cols["bat_end"], -(self.weights.bat_soc_eur_per_kwh_h * dt[-1] + value))
        cap = prices.capacity
        if self.n_slots:
            if cap is None:
                raise ValueError("this HEMS was built for a capacity tariff: give capacity prices")
            slot = np.asarray(cap.slot_of_period)
            on = slot[None, :, None] == np.arange(self.n_slots)[None, None, :]  # (1, N, S)
            rhs = np.where(on, -np.asarray(cap.inflex_max_kw)[:, :, None], np.inf)
            lp.push(m.pk_rhs, rhs)
            lp.push(m.pk_floor, cap.floor_kw)
            lp.push_costs(cols["pk"], np.broadcast_to(cap.eur_per_kw, cols["pk"].shape))
            if lp.options.mirror_params:
                for s, v in enumerate(np.asarray(cap.eur_per_kw, dtype=float).tolist()):
                    m.price_cap[s].set_value(v)
        try:
            stats = lp.solve()
        except Exception as err:  # noqa: BLE001 - any solver failure: the caller falls back
            stats = SolveStats(False, f"error: {err}", float("nan"), 0.0, 0.0, 0)
        self.solves += 1
        if not stats.ok:
            return stats, None
        imp, exp = lp.values(cols["imp"]), lp.values(cols["exp"])
        bill = (imp * (dt * c_imp) - exp * (dt * c_exp)).sum(axis=1)
        peak = None
        if self.n_slots:
            peak = lp.values(cols["pk"])
            bill = bill + ((peak - cap.floor_kw) * cap.eur_per_kw).sum(axis=1)
        under = (lp.values(cols["under"]) * dt).sum(axis=1)
        plan = CostPlan(
            devices=self.devices.read(lp),
            import_kw=imp,
            export_kw=exp,
            peak_kw=peak,
            below_band_kh=under,
            ev_short_kwh=lp.values(cols["short"]).sum(axis=1),
            bill_eur=bill,
        )
        return stats, plan
