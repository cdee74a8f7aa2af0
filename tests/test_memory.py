"""twin.memory: what a finished run keeps resident."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

#: a fresh interpreter: frees a 30 MiB array (glibc's dynamic threshold then rises), holds a
#: 20 MiB one and a small block allocated after it, frees the 20 MiB one; prints how far the
#: resident memory fell (MiB)
PROBE = textwrap.dedent(
    """
    import sys
    import numpy as np
    from twin.memory import big_arrays_back_to_the_os

    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    if sys.argv[1] == "on":
        assert big_arrays_back_to_the_os()
    a = np.ones(30 * 2**17)  # 30 MiB, mapped, then freed
    del a
    b = np.ones(20 * 2**17)  # 20 MiB, written
    pin = np.ones(40_000)  # 320 kB after it
    held = rss_mib()
    del b
    print(held - rss_mib())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_freed_year_long_array_goes_back_to_the_os():
    """With the threshold fixed (what twin.pipeline.run sets), a freed 20 MiB array is
    returned at once; with glibc's dynamic threshold it stays resident as heap behind a later
    small block (what kept the hourly performance year at 2.4 GiB after its KPIs)."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}

    def fell(mode: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env
        )
        assert out.returncode == 0, out.stderr
        return float(out.stdout)

    assert fell("on") > 18.0
    assert fell("off") < 2.0


def test_the_model_is_gone_before_the_power_flow(monkeypatch):
    """pipeline.run deletes the model once its results are taken (the power flow, the state
    estimation and the KPIs get its memory): by the power flow no FeederModel is alive, the
    forecasters it released included (a name left bound to one kept the whole model)."""
    import gc
    import weakref

    import twin.pipeline as pipeline
    from twin.config import compose
    from twin.model import FeederModel

    made: list[weakref.ref] = []
    init = FeederModel.__init__

    def tracked(self, *args, **kwargs):
        made.append(weakref.ref(self))
        init(self, *args, **kwargs)

    alive_at_flow: list[bool] = []
    flows = pipeline.run_power_flows

    def flow(*args, **kwargs):
        gc.collect()
        alive_at_flow.append(any(r() is not None for r in made))
        return flows(*args, **kwargs)

    monkeypatch.setattr(FeederModel, "__init__", tracked)
    monkeypatch.setattr(pipeline, "run_power_flows", flow)
    r = pipeline.run(compose(["sim=day", "contract=performance", "output.figures=false"]))
    assert made and alive_at_flow == [False]
    assert r.kpis["forecast"] == "StatisticalForecaster"  # the forecasters were released
