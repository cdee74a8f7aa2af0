"""What a contract may read: the feeder view. An envelope-mode DSO cannot reach indoor
temperatures or states of charge (nor the model, nor the households' view), by any chain
of references from its objects; a central-mode DSO can (the upper bound); the present and
the past are read only at the steps that exist."""

from __future__ import annotations

import gc
import sys
import types

import numpy as np
import pytest
from test_optim_devices import small_inputs

from twin.contracts.firm import FirmContract
from twin.contracts.performance import PerformanceContract, PerformanceTerms
from twin.measure import DsoMeters, Meters
from twin.model import FeederModel
from twin.view import HouseholdView


def reachable(root: object, limit: int = 2_000_000) -> list[object]:
    """Every data object reachable from ``root`` through references (gc referents).

    Classes and modules are not followed (they lead to everything loaded), nor a function's
    globals; a function's closure and defaults and a bound method's object are.
    """
    module_dicts = {id(vars(m)) for m in list(sys.modules.values()) if m is not None}
    seen, out, todo = set(), [], [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType) or id(obj) in module_dicts:
            continue
        seen.add(id(obj))
        out.append(obj)
        if len(out) > limit:
            raise AssertionError(f"more than {limit} objects reachable: the walk is not bounded")
        if isinstance(obj, types.FunctionType):
            todo.extend(c.cell_contents for c in obj.__closure__ or ())
            todo.extend(obj.__defaults__ or ())
            continue
        if isinstance(obj, types.MethodType):
            todo.extend([obj.__self__, obj.__func__])
            continue
        todo.extend(gc.get_referents(obj))
    return out


def simulated(information: str, steps: int = 200) -> FeederModel:
    m = FeederModel(
        small_inputs(n=8, days=3),
        PerformanceContract(PerformanceTerms(information=information)),
        seed=3,
    )
    for _ in range(steps):
        m.step()
    return m


@pytest.mark.parametrize("information", ["envelope", "central"])
def test_what_the_dso_can_reach(information):
    m = simulated(information)
    dso = m.contract.dso  # the DSO side: its planner, LP, limits, view and forecaster
    objs = reachable(dso)
    ids = {id(o) for o in objs}
    truth = [m.state.t_in_c, m.state.ev_soc_kwh, m.state.bat_soc_kwh]
    sees_state = any(id(a) in ids for a in truth) or id(m.state) in ids
    assert id(m) not in ids and not any(isinstance(o, HouseholdView) for o in objs)
    # its meters are the measurement preset's, not the households' own (exact) meters
    assert isinstance(dso.view.meters, DsoMeters)
    assert not any(isinstance(o, Meters) for o in objs)
    # the walk goes deep: the DSO reaches its meters' readings and the LP it built
    assert id(m.log["p_net_kw"]) in ids and id(dso.alloc.lp) in ids
    if information == "envelope":
        assert not sees_state
        with pytest.raises(PermissionError, match="envelope"):
            dso.view.declared()
    else:
        assert sees_state  # central mode is the "sees everything" upper bound
        assert dso.view.declared().state is m.state
    # the reachability walk itself can find what is there: the households' side sees the state
    hems_ids = {id(o) for o in reachable(m.contract.hems)}
    assert id(m.state.t_in_c) in hems_ids


def test_present_and_past_only():
    m = FeederModel(small_inputs(n=4, days=1), FirmContract(), seed=1)
    for _ in range(10):
        m.step()
    view = m.view
    with pytest.raises(RuntimeError, match="present"):
        view.households.present(11)  # the future
    with pytest.raises(RuntimeError, match="measured"):
        view.households.metered_net_kw(0, 11)
    np.testing.assert_array_equal(view.households.metered_net_kw(0, 10), m.log["p_net_kw"][:10])
    dso = view.dso("envelope")
    # the DSO reads the station sensor of the default preset (no grid here: the loads' sum),
    # within its accuracy class (0.5 % of the reading + 0.5 kW, one sigma), never the truth
    read, true = dso.meters.transformer_kw(0, 10), m.log["p_net_kw"][:10].sum(axis=1)
    assert not np.array_equal(read, true)
    assert np.all(np.abs(read - true) <= 5 * (0.005 * np.abs(true) + 0.5))
    with pytest.raises(RuntimeError, match="measured"):
        dso.meters.transformer_kw(0, 11)
