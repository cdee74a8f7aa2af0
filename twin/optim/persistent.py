"""A Pyomo model built once, handed once to HiGHS (appsi persistent interface), re-solved.

:class:`PersistentLP` wraps ``pyomo.contrib.appsi.solvers.Highs``:

* ``set_instance`` is called once; the HiGHS object keeps the model, and after every solve its
  simplex basis, so each re-solve is warm-started from the last optimal basis (HiGHS keeps the
  basis valid across bound, right-hand-side and coefficient changes).
* Data change through **mutable Params**. Every mutable Param is *bound* to what it sets in
  HiGHS (row bounds, column bounds or matrix coefficients); :meth:`PersistentLP.push` writes a
  numpy array of new values to the solver in one vectorised call per Param (and, with
  ``mirror_params``, into the Pyomo Params too, so the Pyomo model shows the data last
  solved). appsi's own ``update_params`` re-evaluates every parameter expression in Python
  (several µs each, tens of thousands per re-plan): it gives the same LP
  (``tests/test_optim_persistent.py`` checks this) but is the bottleneck, so it is switched
  off (``update_config``) and only used for that check.
* Solutions are read back as numpy arrays for the columns asked for (no loading of values
  into the Pyomo variables).
* HiGHS's ``getRunTime()`` accumulates over the life of the object: :class:`SolveStats` holds
  the difference per solve (the "solver-only" time the benchmark compares against).

**The one adapter to solver internals.** appsi exposes the HiGHS object, its index maps and
its last solution only as private attributes, and twin overrides two private methods for the
lean re-solve path. All of that is here and nowhere else; :func:`check_solver_internals` lists
what twin relies on and fails with one message naming what moved, on import of a Pyomo that
changed it (``tests/test_optim_persistent.py`` runs it). Why appsi and not the newer
``pyomo.contrib.solver`` interface: appsi's persistent HiGHS with this lean path is what twin
measured (``benchmarks/bench_performance.py``); the adapter keeps a switch to one file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs

from twin.optim.options import SolverOptions

__all__ = ["PersistentLP", "SolveStats", "SolverOptions", "check_solver_internals"]

#: appsi HiGHS methods twin overrides or calls that are not public API.
_PRIVATE_METHODS = ("_solve", "_postsolve", "update")
#: appsi HiGHS instance attributes twin reads after ``set_instance`` (not public API).
_PRIVATE_ATTRIBUTES = (
    "_solver_model",
    "_pyomo_var_to_solver_var_map",
    "_pyomo_con_to_solver_con_map",
)
#: highspy methods twin calls on the HiGHS object.
_HIGHSPY_METHODS = (
    "run",
    "getLp",
    "getInfo",
    "getRunTime",
    "getSolution",
    "getModelStatus",
    "setOptionValue",
    "changeCoeff",
    "changeRowsBounds",
    "changeColsBounds",
    "changeColsCost",
    "getNumCol",
    "getNumRow",
    "getNumNz",
)


def check_solver_internals(opt: Any | None = None) -> None:
    """Raise ``RuntimeError`` naming every appsi/HiGHS internal twin relies on that the
    installed Pyomo or highspy no longer has (``opt``: an appsi ``Highs`` after
    ``set_instance``, to check its instance attributes and HiGHS object too)."""
    import pyomo

    missing = [f"Highs.{m}" for m in _PRIVATE_METHODS if not callable(getattr(Highs, m, None))]
    if opt is not None:
        missing += [f"Highs().{a}" for a in _PRIVATE_ATTRIBUTES if not hasattr(opt, a)]
        h = getattr(opt, "_solver_model", None)
        if h is not None:
            missing += [f"highspy.Highs.{m}" for m in _HIGHSPY_METHODS if not hasattr(h, m)]
    if missing:
        raise RuntimeError(
            f"pyomo {pyomo.__version__} moved appsi/HiGHS internals twin uses "
            f"({', '.join(missing)}): pin the versions in pyproject.toml, or update "
            "twin/optim/persistent.py (the one adapter to them)"
        )


class _LeanHighs(Highs):
    """appsi's HiGHS with a lean re-solve path for a model whose structure does not change.

    * ``update`` does nothing: data reach HiGHS through :meth:`PersistentLP.push`, structure
      changes only through :meth:`PersistentLP.add_constraints` (appsi's own ``update`` walks
      the model and rebuilds its row map even when nothing changed: ~5 ms per solve here);
    * ``_solve`` sets the options once (:meth:`PersistentLP.__init__`) and neither captures
      file descriptors nor installs the per-iteration keyboard-interrupt callback (another
      ~3 µs per simplex iteration); the time limit still applies.
    """

    def update(self, timer: Any = None) -> None:
        return None

    def _solve(self, timer: Any) -> Any:
        timer.start("optimize")
        self._solver_model.run()
        timer.stop("optimize")
        return self._postsolve(timer)


def _termination(status: Any) -> TerminationCondition:
    """appsi's termination condition for a HiGHS model status (as appsi's HiGHS maps it)."""
    ms = highspy.HighsModelStatus
    table = {
        ms.kOptimal: TerminationCondition.optimal,
        ms.kInfeasible: TerminationCondition.infeasible,
        ms.kUnboundedOrInfeasible: TerminationCondition.infeasibleOrUnbounded,
        ms.kUnbounded: TerminationCondition.unbounded,
        ms.kObjectiveBound: TerminationCondition.objectiveLimit,
        ms.kObjectiveTarget: TerminationCondition.objectiveLimit,
        ms.kTimeLimit: TerminationCondition.maxTimeLimit,
        ms.kIterationLimit: TerminationCondition.maxIterations,
        ms.kLoadError: TerminationCondition.error,
        ms.kModelError: TerminationCondition.error,
        ms.kPresolveError: TerminationCondition.error,
        ms.kSolveError: TerminationCondition.error,
        ms.kPostsolveError: TerminationCondition.error,
    }
    return table.get(status, TerminationCondition.unknown)


@dataclass
class SolveStats:
    """One solve: status and where the time went."""

    ok: bool
    status: str
    objective: float
    highs_s: float  # HiGHS's own run time of this solve
    solve_wall_s: float  # the appsi solve call, wall clock
    iterations: int


@dataclass
class _Binding:
    kind: str  # "row_eq", "row_ub", "row_lb", "col_lb", "col_ub", "coef"
    rows: np.ndarray | None
    cols: np.ndarray | None
    datas: list
    last: np.ndarray | None = None  # "coef": the values the solver holds


class PersistentLP:
    """A Pyomo LP in a persistent HiGHS instance; data change through bound Params.

    Parameters
    ----------
    model : pyo.ConcreteModel
        The complete model (built once).
    options : SolverOptions
        Solver settings.
    """

    def __init__(self, model: pyo.ConcreteModel, options: SolverOptions | None = None) -> None:
        self.model = model
        self.options = options or SolverOptions()
        opt = _LeanHighs(only_child_vars=True)  # add all variables in one batch
        opt.config.load_solution = False
        opt.config.stream_solver = False
        opt.config.time_limit = self.options.time_limit_s
        uc = opt.update_config
        for flag in (
            "check_for_new_or_removed_constraints",
            "check_for_new_or_removed_vars",
            "check_for_new_or_removed_params",
            "check_for_new_objective",
            "update_constraints",
            "update_vars",
            "update_params",
            "update_named_expressions",
            "update_objective",
        ):
            setattr(uc, flag, False)
        opt.highs_options = {
            "threads": self.options.threads,
            "simplex_strategy": self.options.simplex_strategy,
            "output_flag": False,
            **dict(self.options.extra),
        }
        t0 = time.perf_counter()
        opt.set_instance(model)
        self.set_instance_s = time.perf_counter() - t0
        check_solver_internals(opt)
        self.opt = opt
        options = {**opt.highs_options, "time_limit": float(self.options.time_limit_s)}
        for key, value in options.items():
            opt._solver_model.setOptionValue(key, value)
        # appsi keeps these private; read them here only
        self._highs = opt._solver_model
        self._var_map: dict[int, int] = opt._pyomo_var_to_solver_var_map
        self._con_map: dict[Any, int] = opt._pyomo_con_to_solver_con_map
        self._bindings: dict[Any, _Binding] = {}
        self._pending_rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_cols: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._row_lo, self._row_hi = self._lp_row_bounds()
        self._col_lo, self._col_hi = self._lp_col_bounds()
        self._run_time_s = self._highs.getRunTime()
        self.push_s = 0.0
        self.readback_s = 0.0

    # -- index maps ----------------------------------------------------------------------
    def cols(self, var: pyo.Var, index: list) -> np.ndarray:
        """Solver column of ``var[idx]`` for every ``idx`` in ``index``."""
        vm = self._var_map
        return np.fromiter((vm[id(var[i])] for i in index), dtype=np.int64, count=len(index))

    def rows(self, con: pyo.Constraint, index: list) -> np.ndarray:
        """Solver row of ``con[idx]`` for every ``idx`` in ``index``."""
        cm = self._con_map
        return np.fromiter((cm[con[i]] for i in index), dtype=np.int64, count=len(index))

    def _lp_row_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lp = self._highs.getLp()
        return np.array(lp.row_lower_, dtype=float), np.array(lp.row_upper_, dtype=float)

    def _lp_col_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lp = self._highs.getLp()
        return np.array(lp.col_lower_, dtype=float), np.array(lp.col_upper_, dtype=float)

    # -- parameters ------------------------------------------------------------------------
    def bind(
        self,
        param: pyo.Param,
        index: list,
        kind: str,
        con: pyo.Constraint | None = None,
        var: pyo.Var | None = None,
        con_index: list | None = None,
        var_index: list | None = None,
        key: str | None = None,
    ) -> None:
        """Declare what mutable ``param[idx]`` (``idx`` in ``index``, in order) sets.

        ``key`` names the binding (default: the Param's name); a Param can have several
        bindings over disjoint parts of its index.

        ``kind``: ``"row_eq"`` / ``"row_ub"`` / ``"row_lb"`` — the right-hand side of
        ``con[con_index[k]]`` (the constraint's body must have no constant term);
        ``"col_lb"`` / ``"col_ub"`` — a bound of ``var[var_index[k]]``; ``"coef"`` — the
        coefficient of ``var[var_index[k]]`` in ``con[con_index[k]]``.
        """
        rows = (
            self.rows(con, con_index if con_index is not None else index)
            if con is not None
            else None
        )
        cols = (
            self.cols(var, var_index if var_index is not None else index)
            if var is not None
            else None
        )
        datas = [param[i] for i in index]
        last = np.array([pyo.value(d) for d in datas], dtype=float) if kind == "coef" else None
        self._bindings[key or id(param)] = _Binding(kind, rows, cols, datas, last)

    def push(self, param: pyo.Param, values: np.ndarray, key: str | None = None) -> None:
        """Set new values of a bound Param (C-order flattening of ``values``)."""
        b = self._bindings[key or id(param)]
        v = np.ascontiguousarray(values, dtype=float).ravel()
        if len(v) != len(b.datas):
            raise ValueError(f"{param.name}: {len(v)} values for {len(b.datas)} parameters")
        if self.options.mirror_params:
            for d, x in zip(b.datas, v.tolist(), strict=True):
                d.set_value(x)
        if b.kind == "coef":  # one call per coefficient: only those that changed
            changed = np.flatnonzero(b.last != v)
            rows, cols, vals = b.rows[changed], b.cols[changed], v[changed]
            for _ in map(self._highs.changeCoeff, rows.tolist(), cols.tolist(), vals.tolist()):
                pass
            b.last[changed] = vals
        elif b.kind.startswith("row"):
            lo, hi = self._row_lo, self._row_hi
            old = lo[b.rows] if b.kind == "row_lb" else hi[b.rows]
            changed = old != v
            if changed.any():
                if b.kind in ("row_eq", "row_lb"):
                    lo[b.rows] = v
                if b.kind in ("row_eq", "row_ub"):
                    hi[b.rows] = v
                self._pending_rows.append(b.rows[changed])
        else:
            bound = self._col_lo if b.kind == "col_lb" else self._col_hi
            changed = bound[b.cols] != v
            if changed.any():
                bound[b.cols] = v
                self._pending_cols.append(b.cols[changed])

    def push_costs(self, cols: np.ndarray, costs: np.ndarray) -> None:
        """Set the objective coefficients of solver columns ``cols`` (same shape)."""
        t0 = time.perf_counter()
        c = np.ascontiguousarray(cols, dtype=np.int32).ravel()
        v = np.ascontiguousarray(costs, dtype=float).ravel()
        if len(c) != len(v):
            raise ValueError(f"{len(v)} costs for {len(c)} columns")
        self._highs.changeColsCost(len(c), c, v)
        self.push_s += time.perf_counter() - t0

    def add_constraints(self, cons: list) -> None:
        """Hand constraints that were built but inactive to the solver (lazy rows)."""
        for c in cons:
            c.activate()
        self.opt.add_constraints(cons)
        lo, hi = self._lp_row_bounds()
        n_old = len(self._row_lo)
        self._row_lo = np.concatenate([self._row_lo, lo[n_old:]])
        self._row_hi = np.concatenate([self._row_hi, hi[n_old:]])

    def _flush(self) -> None:
        h = self._highs
        if self._pending_rows:
            mark = np.zeros(len(self._row_lo), bool)
            for r in self._pending_rows:
                mark[r] = True
            rows = np.flatnonzero(mark).astype(np.int32)
            h.changeRowsBounds(len(rows), rows, self._row_lo[rows], self._row_hi[rows])
            self._pending_rows = []
        if self._pending_cols:
            mark = np.zeros(len(self._col_lo), bool)
            for c in self._pending_cols:
                mark[c] = True
            cols = np.flatnonzero(mark).astype(np.int32)
            h.changeColsBounds(len(cols), cols, self._col_lo[cols], self._col_hi[cols])
            self._pending_cols = []

    # -- solving -----------------------------------------------------------------------------
    def solve(self) -> SolveStats:
        """Push pending changes and re-solve (warm: HiGHS keeps its basis).

        HiGHS is run directly (the model and its data are HiGHS's already; appsi's solve
        call would only add its result objects, timers and a copy of every primal and dual
        value): the status is named as appsi's ``TerminationCondition`` names it."""
        t0 = time.perf_counter()
        self._flush()
        self.push_s += time.perf_counter() - t0
        h = self._highs
        # HiGHS checks time_limit against its run clock, which adds up over every run() of
        # this object: without this, once the re-solves of a long run have used
        # time_limit_s in total, every later solve stops at once (kTimeLimit)
        h.setOptionValue("time_limit", self._run_time_s + float(self.options.time_limit_s))
        t0 = time.perf_counter()
        h.run()
        wall = time.perf_counter() - t0
        self._col_value = None  # read on demand (values)
        run_time = h.getRunTime()
        highs_s, self._run_time_s = run_time - self._run_time_s, run_time
        condition = _termination(h.getModelStatus())
        ok = condition == TerminationCondition.optimal
        info = h.getInfo()
        return SolveStats(
            ok=ok,
            status=str(condition.name),
            objective=float(info.objective_function_value) if ok else float("nan"),
            highs_s=highs_s,
            solve_wall_s=wall,
            iterations=int(info.simplex_iteration_count),
        )

    def values(self, cols: np.ndarray) -> np.ndarray:
        """Primal values of solver columns ``cols`` (any shape) from the last solve."""
        t0 = time.perf_counter()
        if getattr(self, "_col_value", None) is None:
            self._col_value = np.asarray(self._highs.getSolution().col_value, dtype=float)
        out = self._col_value[cols]
        self.readback_s += time.perf_counter() - t0
        return out

    @property
    def n_cols(self) -> int:
        return int(self._highs.getNumCol())

    @property
    def n_rows(self) -> int:
        return int(self._highs.getNumRow())

    @property
    def n_nonzeros(self) -> int:
        return int(self._highs.getNumNz())
