"""bench/eager_profile.py explains the eager engine's cost as bookkeeping over "the numpy calls bpcore makes, run
bare". That holds only while its bare step makes the engine's numpy calls: the same numbers, bit for bit."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = str(Path(__file__).resolve().parents[1] / "bench")
sys.path.insert(0, BENCH)  # (for its own `from mlp_step import ...`; bench's other names must not shadow anything)
try:
    import eager_profile
finally:
    sys.path.remove(BENCH)


@pytest.mark.parametrize("size", [0, 1])
def test_the_bare_step_is_bpcores_step_bit_for_bit(size):
    x, y, weights = eager_profile._data(size)
    eager_profile._check_bare(weights, x, y)  # raises unless loss, gradients and new weights are eager's


def test_the_check_catches_a_bare_step_that_drifts(monkeypatch):
    x, y, weights = eager_profile._data(0)
    monkeypatch.setattr(eager_profile.BareStep, "update", lambda self: None)  # forgets SGD: other weights
    with pytest.raises(AssertionError, match="no longer makes bpcore's numpy calls"):
        eager_profile._check_bare(weights, x, y)


def test_the_cache_sweep_wraps_every_linear_and_relu_call_and_puts_them_back():
    F, ops = eager_profile.F, eager_profile.ops
    before = F._linear.forward, F._linear.vjps, ops.relu.forward, ops.relu.vjps
    x, y, weights = eager_profile._data(0)
    bare, eager = eager_profile.BareStep(weights), eager_profile.BpcoreMLP(weights)
    with eager_profile._sweeping(4096) as buffer:
        eager_loss = eager.step(x, y)
        assert buffer[0] == 15, "3 linear and 2 relu forwards, 8 linear and 2 relu VJPs: each sweeps once in eager"
        loss = bare.step(x, y)
        assert buffer[0] == 30, "and as often in the bare step"
        assert np.array_equal(loss, eager_loss.data)  # the sweep changes no number
    assert (F._linear.forward, F._linear.vjps, ops.relu.forward, ops.relu.vjps) == before


def test_the_check_catches_a_bare_step_that_makes_an_extra_call(monkeypatch):
    x, y, weights = eager_profile._data(0)
    backward = eager_profile.BareStep.backward

    def twice(self):  # the same numbers, one more VJP call
        backward(self)
        backward(self)

    monkeypatch.setattr(eager_profile.BareStep, "backward", twice)
    with pytest.raises(AssertionError, match="no longer makes bpcore's numpy calls: bare"):
        eager_profile._check_bare(weights, x, y)
