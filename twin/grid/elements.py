"""Which pandapower element tables twin's power flow models, in one place.

The feeder checks (:mod:`twin.grid.feeders`) reject an in-service element of an unsupported
table when a feeder is loaded, naming the fix; the power-flow converter
(:mod:`twin.grid.powerflow`) refuses them too (for nets built by hand).
"""

from __future__ import annotations

__all__ = ["ASYMMETRIC_ONLY", "UNSUPPORTED", "UNSUPPORTED_FIX"]

#: Element tables the power flow does not model.
UNSUPPORTED: tuple[str, ...] = (
    "gen",
    "ward",
    "xward",
    "impedance",
    "trafo3w",
    "dcline",
    "storage",
    "motor",
    "svc",
    "tcsc",
    "ssc",
    "vsc",
)

#: Element tables only the unbalanced engine models (:mod:`twin.grid.asymmetric`).
ASYMMETRIC_ONLY: tuple[str, ...] = ("asymmetric_load", "asymmetric_sgen")

#: How to replace an element of an unsupported table (a default covers the rest).
UNSUPPORTED_FIX: dict[str, str] = {
    "gen": "model PV as sgen (twin sets sgens out of service and adds its own PV)",
    "trafo3w": "replace it by two-winding transformers (net.trafo)",
    "asymmetric_load": "replace it by a balanced load (net.load) with the sum of its phases",
    "impedance": "model it as a line (net.line) or a transformer",
    "ward": "model it as a load",
    "xward": "model it as a load",
    "dcline": "remove it (twin models an LV feeder behind one station)",
}
