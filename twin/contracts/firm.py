"""Firm connection (today's baseline): no control, unlimited capacity up to the fuse.

* heat pump: a thermostat that brings the indoor temperature to the setpoint every step
  (modulating, within the heat pump's thermal capacity);
* EV: charges at full power from arrival until full or departure;
* battery: self-consumption (charges on PV surplus, covers the house's deficit);
* PV: produces fully.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twin.contracts.base import Contract
from twin.devices.household import Controls
from twin.devices.thermal import heat_to_reach

if TYPE_CHECKING:
    from twin.model import FeederModel


class FirmContract(Contract):
    name = "firm"

    def dispatch(self, model: FeederModel, k: int) -> Controls:
        f, s, x = model.fleet, model.state, model.exo
        q_heat = heat_to_reach(
            f.setpoint_c, s.t_in_c, x.t_out_c[k], x.q_gain_kw[k], f.r_k_per_kw, f.a_step
        )
        return Controls(q_heat_kw=q_heat, p_ev_kw=f.ev_p_max_kw, p_bat_kw=None)
