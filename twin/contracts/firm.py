"""Firm connection (today's baseline): no control, unlimited capacity up to the fuse.

* heat pump: a thermostat that brings the indoor temperature to the setpoint every step
  (modulating, within the heat pump's thermal capacity);
* EV: charges at full power from arrival until full or departure;
* battery: self-consumption (charges on PV surplus, covers the house's deficit);
* PV: produces fully.

(:func:`twin.devices.household.firm_controls`, the one firm behaviour every contract falls
back to.)
"""

from __future__ import annotations

from twin.contracts.base import Contract
from twin.devices.household import Controls, firm_controls


class FirmContract(Contract):
    name = "firm"

    def dispatch(self, k: int) -> Controls:
        h = self.view.households
        x = h.present(k)
        return firm_controls(h.devices, h.state.t_in_c, x.t_out_c, x.q_gain_kw)
