"""The statistical forecaster learns from the past only, whatever order it is asked in: each
block of steps is forecast by the models learned from the measured past before the block."""

from __future__ import annotations

import dataclasses

import numpy as np
from test_optim_devices import small_inputs

from twin.contracts.firm import FirmContract
from twin.forecast import ForecastSettings
from twin.model import FeederModel
from twin.timegrid import STEPS_PER_DAY

SETTINGS = ForecastSettings(
    name="statistical", history_days=20, retrain_every_days=3, n_estimators=5, level_days=1.0
)


def forecaster(future_scale: float = 1.0, days: int = 9):
    """A statistical forecaster over ``days`` (three training blocks) with 20 days of past;
    the base load from day 3 on scaled by ``future_scale``."""
    n = 6
    inp = small_inputs(n=n, days=days)
    hist_steps = SETTINGS.history_days * STEPS_PER_DAY
    rng = np.random.default_rng(1)
    hist = np.tile(inp.p_base_kw[:STEPS_PER_DAY], (SETTINGS.history_days, 1))
    hist = hist * rng.uniform(0.7, 1.3, hist.shape)
    first = int(inp.window.sim_year_index[0])
    base = inp.p_base_kw * rng.uniform(0.7, 1.3, inp.p_base_kw.shape)
    base[3 * STEPS_PER_DAY :] *= future_scale
    inp = dataclasses.replace(
        inp,
        p_base_kw=base,
        history={
            "base_kw": hist,
            "other_kw": np.zeros((hist_steps, 0)),
            "year_rows": (first - hist_steps + np.arange(hist_steps)) % (365 * STEPS_PER_DAY),
        },
    )
    return FeederModel(inp, FirmContract(), seed=3, forecast=SETTINGS).forecaster


def test_a_forecast_does_not_depend_on_the_order_of_requests_nor_on_the_future():
    ahead = forecaster()
    late = ahead.issue(7 * STEPS_PER_DAY, STEPS_PER_DAY).base_kw.copy()  # the last block first
    first = ahead.issue(0, 2 * STEPS_PER_DAY).base_kw
    fresh = forecaster().issue(0, 2 * STEPS_PER_DAY).base_kw
    np.testing.assert_array_equal(first, fresh)
    # the first block is learned from the past before it: a different load after it (the
    # future at the time) changes nothing in it
    other = forecaster(future_scale=3.0)
    np.testing.assert_array_equal(other.issue(0, 2 * STEPS_PER_DAY).base_kw, fresh)
    # ... while the last block, learned from the days after day 3, does see it
    assert not np.allclose(other.issue(7 * STEPS_PER_DAY, STEPS_PER_DAY).base_kw, late)
    # two of the three blocks asked for, each learned once
    assert ahead.n_trainings == 2 and other.n_trainings == 2
