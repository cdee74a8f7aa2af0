"""Non-firm connection (a capacity cap the DSO may impose, as in German §14a EnWG).

DSO: before each interval it reads the transformer's measured active load (all households plus
the feeder's other loads) of the previous interval and of the same interval a day earlier (a
persistence forecast of the daily peak); when either exceeds ``congestion_threshold_pct`` of
the rating it declares the interval and the next ``hold_steps - 1`` congested. Households: outside
congestion they behave as firm; inside, the controllable devices of each signed household (heat
pump + EV charger) share ``guaranteed_kw``: the heat pump first (it keeps running at up to the
allowed power, never switched off; a hybrid's boiler covers what it cannot), the EV the rest.
Base load, PV and the battery (self-consumption never charges from the grid) are not capped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twin.contracts.firm import FirmContract
from twin.contracts.hems import draw_signed
from twin.devices.household import Controls
from twin.timegrid import STEPS_PER_DAY
from twin.view import FeederView, Outcome


class NonFirmContract(FirmContract):
    name = "nonfirm"

    def __init__(
        self,
        guaranteed_kw: float = 4.2,
        congestion_threshold_pct: float = 80.0,
        hold_steps: int = 4,
        share_signed: float = 1.0,
        discount_eur_per_year: float = 0.0,
    ) -> None:
        self.guaranteed_kw = guaranteed_kw
        self.threshold_pct = congestion_threshold_pct
        self.hold_steps = hold_steps
        self.share_signed = share_signed
        self.discount = discount_eur_per_year

    @classmethod
    def from_config(cls, cfg: Any) -> NonFirmContract:
        return cls(
            guaranteed_kw=float(cfg.guaranteed_kw),
            congestion_threshold_pct=float(cfg.congestion_threshold_pct),
            hold_steps=int(cfg.hold_steps),
            share_signed=float(cfg.share_signed),
            discount_eur_per_year=float(cfg.discount_eur_per_year),
        )

    def setup(self, view: FeederView) -> None:
        super().setup(view)
        n = view.households.devices.n
        self.signed = draw_signed(view.draws, n, self.share_signed)
        self.congested = np.zeros(view.n_steps, bool)
        self._until = -1
        # the DSO reads the station's meter and knows its rating; nothing of the households
        self.dso = view.dso("envelope")

    def dso_step(self, k: int) -> None:
        limit_kw = self.threshold_pct / 100.0 * self.dso.station_rating_kva
        meter = self.dso.meters
        seen = [k - 1, k - STEPS_PER_DAY]
        if any(j >= 0 and float(meter.transformer_kw(j, j + 1)[0]) > limit_kw for j in seen):
            self._until = k + self.hold_steps - 1
        self.congested[k] = k <= self._until

    def dispatch(self, k: int) -> Controls:
        ctl = super().dispatch(k)
        if not self.congested[k]:
            return ctl
        f = self.view.households.devices
        cop = self.view.households.present(k).cop
        cap = np.where(self.signed, self.guaranteed_kw, np.inf)
        p_hp_wanted = np.minimum(np.maximum(ctl.q_heat_kw, 0.0), f.hp_q_max_kw) / cop
        p_hp_allowed = np.minimum(p_hp_wanted, cap)
        ctl.q_hp_max_kw = np.where(self.signed, p_hp_allowed * cop, np.inf)
        ctl.p_ev_kw = np.minimum(ctl.p_ev_kw, np.maximum(cap - p_hp_allowed, 0.0))
        return ctl

    def discount_eur_per_year(self) -> np.ndarray:
        return np.where(self.signed, self.discount, 0.0)

    def household_table(self) -> dict[str, np.ndarray]:
        return {"signed": self.signed.copy()}

    def feeder_timeseries(self) -> dict[str, np.ndarray]:
        return {"nonfirm_congested": self.congested.copy()}

    def kpis(self, outcome: Outcome) -> dict[str, Any]:
        report = self.view.window.report
        return {
            "nonfirm_households_signed": int(self.signed.sum()),
            "nonfirm_congested_hours": float(self.congested[report].sum() * 0.25),
        }
