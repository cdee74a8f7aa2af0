"""Optimisation for the performance contract (Pyomo + HiGHS through appsi's persistent interface).

* :mod:`twin.optim.horizon` — the periods of a rolling horizon;
* :mod:`twin.optim.devices` — device models as data, reachable service-level bounds;
* :mod:`twin.optim.envelope` — flexibility envelopes (what a HEMS tells the DSO);
* :mod:`twin.optim.options` — objective weights and solver options (no Pyomo);
* :mod:`twin.optim.persistent` — one Pyomo model in one persistent HiGHS, data through Params;
* :mod:`twin.optim.blocks` — Pyomo blocks: devices, envelopes, feeder limits and the peak;
* :mod:`twin.optim.allocation` — the DSO's allocation LPs and the HEMS planning LP;
* :mod:`twin.optim.limits` — feeder limits from the grid engine's linear model.

Importing this package does not import Pyomo; the modules that build models do.
"""
