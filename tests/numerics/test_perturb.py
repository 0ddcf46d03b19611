"""The perturbation the notebooks' second run uses really perturbs, by at most one ulp, reproducibly."""

import numpy as np
import perturb
import pytest


@pytest.fixture
def nudged(monkeypatch):
    """Install the perturbation for one test; numpy's own default_rng comes back afterwards."""
    monkeypatch.setattr(np.random, "default_rng", np.random.default_rng)
    original = np.random.default_rng
    perturb.install(seed=1)
    return original


def ulps_apart(a, b) -> np.ndarray:
    a, b = np.asarray(a), np.asarray(b)
    return np.abs(a.view(np.int64) - b.view(np.int64)) if a.dtype == np.float64 else None


def test_float_draws_move_by_at_most_one_ulp_and_most_of_them_move(nudged):
    plain = nudged(0).standard_normal(10_000)
    moved = np.random.default_rng(0).standard_normal(10_000)
    apart = ulps_apart(plain, moved)
    assert apart.max() == 1
    assert 0.5 < np.mean(apart == 1) < 0.8  # -1, 0 or +1 ulp, each a third of the time


@pytest.mark.parametrize(
    "draw",
    [
        lambda g: g.normal(1.0, 2.0, size=(20, 30)),
        lambda g: g.uniform(-2, 2, size=500),
        lambda g: g.random(500),
        lambda g: g.multivariate_normal([0.0, 1.0], np.eye(2), size=100),
    ],
)
def test_every_float_method_the_package_uses_is_nudged(nudged, draw):
    plain, moved = draw(nudged(3)), draw(np.random.default_rng(3))
    assert plain.shape == moved.shape and not np.array_equal(plain, moved)
    assert ulps_apart(plain, moved).max() == 1


def test_integer_draws_and_shapes_stay_as_they_were(nudged):
    assert np.array_equal(nudged(0).integers(0, 10, 50), np.random.default_rng(0).integers(0, 10, 50))
    assert np.array_equal(nudged(0).permutation(50), np.random.default_rng(0).permutation(50))
    assert isinstance(np.random.default_rng(0).normal(), float)  # a scalar draw stays a scalar
    assert np.random.default_rng(0).standard_normal(4, dtype=np.float32).dtype == np.float32


def test_the_nudges_are_the_same_on_every_run(monkeypatch):
    runs = []
    for _ in range(2):
        monkeypatch.setattr(np.random, "default_rng", np.random.default_rng)
        saved = np.random.default_rng
        perturb.install(seed=7)
        runs.append(np.random.default_rng(0).standard_normal(100))
        np.random.default_rng = saved
    assert np.array_equal(runs[0], runs[1])


def test_the_cpu_features_to_switch_off_are_ones_numpy_dispatches_to_here():
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    for name in perturb.cpu_features_to_disable().split():
        assert name in __cpu_dispatch__ and __cpu_features__[name]
