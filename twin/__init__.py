"""twin: a digital twin of low-voltage distribution grids.

Households are mesa agents with vectorised device physics (building + heat pump, EV, battery,
PV, base load); a contract decides how their devices are dispatched; every time step is checked
by a batch AC power flow on a real pandapower feeder.

Python use (the same pipeline as the ``twin`` command)::

    import twin
    cfg = twin.compose(["sim.days=1", "seed=7"])
    result = twin.run(cfg)
    result.kpis["trafo_peak_kva"]
    twin.write(result, "results/my_run")
"""

from twin.errors import TwinError

__all__ = ["RunResult", "TwinError", "compose", "run", "write"]
__version__ = "0.1.0"


def __getattr__(name):  # lazy: keep `import twin` cheap for the CLI's --help
    if name in {"compose"}:
        from twin.config import compose

        return compose
    if name == "run":
        # the pipeline lives in twin.pipeline (a module named twin.run would shadow the function)
        from twin.pipeline import run

        return run
    if name == "RunResult":
        from twin.result import RunResult

        return RunResult
    if name == "write":
        from twin.writer import write_run

        return write_run
    raise AttributeError(name)
