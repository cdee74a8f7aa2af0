"""mesa agents: identity, contract and decisions. State lives in the model's arrays.

Following the design principle "arrays simulate, agents decide", a :class:`HouseholdAgent` is a
view on one column of the model's household arrays; the HEMS decisions of all household agents
are taken together, vectorised, by the contract (``Contract.dispatch``), so no Python loop over
households runs in the inner time loop. The :class:`DsoAgent` takes the DSO's decisions.

Agents know the model only as a :class:`mesa.Model` holding ``fleet``, ``state``, ``contract``
and ``k`` (no import of :mod:`twin.model`).
"""

from __future__ import annotations

import mesa


class HouseholdAgent(mesa.Agent):
    """One household (its HEMS), attached to one load of the feeder."""

    def __init__(self, model: mesa.Model, index: int, load_index: int) -> None:
        super().__init__(model)
        self.index = index
        self.load_index = load_index

    @property
    def devices(self) -> list[str]:
        f, i = self.model.fleet, self.index
        names = []
        if f.has_hp[i]:
            names.append("hybrid heat pump" if f.hp_hybrid[i] else "heat pump")
        for flag, name in ((f.has_ev, "EV"), (f.has_pv, "PV"), (f.has_battery, "battery")):
            if flag[i]:
                names.append(name)
        return names

    @property
    def t_in_c(self) -> float:
        return float(self.model.state.t_in_c[self.index])

    @property
    def ev_soc_kwh(self) -> float:
        return float(self.model.state.ev_soc_kwh[self.index])


class DsoAgent(mesa.Agent):
    """The grid operator: takes the contract's DSO decision each interval."""

    def step(self) -> None:
        self.model.contract.dso_step(self.model.k)
