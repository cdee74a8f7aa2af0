"""Let finished simulations go: mesa 3 keeps every model it ever saw alive.

``mesa.Agent`` numbers agents per model in a class-level ``defaultdict`` keyed by the model
(``mesa.Agent._ids``, mesa 3.1-3.3), a strong reference: every :class:`twin.model.FeederModel`
and all it holds (its copy of the feeder, a year of load profiles, the logs, the contract's
optimiser) stays in memory until the process ends. A study that runs many simulations in one
process (the hosting study: about 25 runs; the comparison: six; a Hydra sweep with the basic
launcher or optuna: one per job) grew by 50-80 MB per run on the 92-household rural feeder,
2.2 GB in all. :func:`release_finished_models` drops those references once a run is over (the
pipeline returns data only, :class:`twin.result.RunResult`, and no live model).
"""

from __future__ import annotations

__all__ = ["release_finished_models"]


def release_finished_models() -> int:
    """Drop mesa's references to every finished :class:`twin.model.FeederModel` (one whose
    stepping is over); returns how many were dropped."""
    import mesa

    from twin.model import FeederModel

    ids = getattr(mesa.Agent, "_ids", None)
    if not isinstance(ids, dict):
        return 0
    done = [m for m in ids if isinstance(m, FeederModel) and m.k >= m.n_steps]
    for model in done:
        del ids[model]
    return len(done)
