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

__all__ = ["MMAP_THRESHOLD_BYTES", "big_arrays_back_to_the_os", "release_finished_models"]

#: Allocations from this size up get pages of their own from the OS (glibc ``mmap``), which go
#: back to it when freed (:func:`big_arrays_back_to_the_os`)
MMAP_THRESHOLD_BYTES = 4 * 2**20


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


def big_arrays_back_to_the_os(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Have glibc give every allocation of ``threshold`` bytes or more pages of its own, so
    that a freed year-long array goes back to the OS at once.

    glibc's default threshold is dynamic: once a mapped block is freed, blocks up to its size
    (up to 32 MiB) come from the heap from then on, and a heap cannot return the middle of
    itself. A year of a (steps, households) array of the default feeder is 28 MiB: after the
    first such temporary, the KPIs', the state estimation's and the writer's temporaries
    stayed in the process as heap (the hourly performance year ended at 2.4 GiB resident with
    1.6 GiB live). A fixed threshold turns the dynamic one off (``mallopt(M_MMAP_THRESHOLD)``);
    4 MiB keeps the small arrays a simulation step makes on the heap (no page faults for
    them). Returns whether it was set: not on other C libraries, nor when the user set
    ``MALLOC_MMAP_THRESHOLD_`` (glibc's own variable wins)."""
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_mmap_threshold = -3  # malloc.h
    return bool(mallopt(m_mmap_threshold, int(threshold)))
