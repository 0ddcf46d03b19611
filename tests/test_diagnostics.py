"""Diagnostics report what they claim: dead units, norms, ratios, and the two sanity checks."""

import math

import numpy as np
import pytest

import bpcore as bp
from bpcore import diagnostics as dg

F = bp.nn.functional


def small_classifier(seed=0, hidden=16):
    bp.manual_seed(seed)
    return bp.nn.Sequential(bp.nn.Linear(2, hidden), bp.nn.ReLU(), bp.nn.Linear(hidden, 3))


def test_grad_norms_by_layer_match_numpy():
    model = small_classifier()
    X = np.random.default_rng(0).standard_normal((8, 2))
    F.cross_entropy(model(bp.tensor(X)), np.arange(8) % 3).backward()
    norms = dg.grad_norms_by_layer(model)
    assert list(norms) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert norms["2.weight"] == pytest.approx(np.linalg.norm(model[2].weight.grad))


def test_dead_relu_fraction_counts_units_that_never_fire():
    model = small_classifier(hidden=10)
    with bp.no_grad():
        model[0].bias.data[:4] = -100.0  # four units pushed far below zero: dead for any input
    X = np.random.default_rng(1).standard_normal((64, 2))
    assert dg.dead_relu_fraction(model, X) == {"1": pytest.approx(0.4)}
    # and dead units get no gradient: their incoming weights cannot learn
    F.cross_entropy(model(bp.tensor(X)), np.arange(64) % 3).backward()
    assert np.all(model[0].weight.grad[:4] == 0) and np.any(model[0].weight.grad[4:] != 0)


def test_activation_monitor_records_and_unwraps():
    bp.manual_seed(0)
    model = bp.nn.Sequential(bp.nn.Linear(3, 50), bp.nn.Tanh(), bp.nn.Linear(50, 2))
    with bp.no_grad():
        model[0].weight.data *= 100  # saturate the tanh
    x = bp.tensor(np.random.default_rng(0).standard_normal((20, 3)))
    with dg.ActivationMonitor(model) as monitor:
        model(x)
    stats = monitor.stats
    assert set(stats) == {"0", "1", "2"}
    assert stats["1"].fraction_saturated > 0.8 and stats["1"].values.shape == (20, 50)
    assert "forward" not in vars(model[1])  # the wrapper is gone after the block


def test_update_to_weight_ratio_is_lr_times_gradient_over_weight():
    model = small_classifier()
    X = np.random.default_rng(2).standard_normal((8, 2))
    F.cross_entropy(model(bp.tensor(X)), np.arange(8) % 3).backward()
    before = dg.snapshot(model)
    grads = {n: p.grad.copy() for n, p in model.named_parameters()}
    bp.optim.SGD(model.parameters(), lr=0.01).step()
    ratios = dg.update_to_weight_ratios(model, before)
    expected = 0.01 * np.linalg.norm(grads["0.weight"]) / np.linalg.norm(before["0.weight"])
    assert ratios["0.weight"] == pytest.approx(expected, rel=1e-10)


def test_initial_loss_check_passes_for_small_weights_and_fails_for_large():
    X = np.random.default_rng(3).standard_normal((200, 2))
    y = np.arange(200) % 3
    model = small_classifier()
    with bp.no_grad():
        model[2].weight.data *= 0.01
    check = dg.initial_loss_check(model, F.cross_entropy, X, y, classes=3)
    assert check.passed and check.expected == pytest.approx(math.log(3))
    with bp.no_grad():
        model[2].weight.data *= 5000
    bad = dg.initial_loss_check(model, F.cross_entropy, X, y, classes=3)
    assert not bad.passed and bad.measured > 2 * math.log(3) and "CHECK" in str(bad)


def test_overfit_tiny_batch_succeeds_with_correct_gradients():
    model = small_classifier(hidden=32)
    X = np.random.default_rng(4).standard_normal((6, 2))
    y = np.array([0, 1, 2, 0, 1, 2])
    check, losses = dg.overfit_tiny_batch(
        model, F.cross_entropy, bp.optim.Adam(model.parameters(), lr=0.05), X, y
    )
    assert check.passed and losses[-1] < 0.05 < losses[0]


def test_overfit_tiny_batch_fails_when_the_optimizer_cannot_move():
    model = small_classifier()
    X = np.random.default_rng(5).standard_normal((6, 2))
    y = np.array([0, 1, 2, 0, 1, 2])
    check, losses = dg.overfit_tiny_batch(
        model, F.cross_entropy, bp.optim.SGD(model.parameters(), lr=0.0), X, y, 20
    )
    assert not check.passed and losses[0] == losses[-1]


def test_histogram_of_log_magnitudes():
    counts, edges = dg.histogram(np.array([1e-8, -1e-8, 1e-2, 0.0, 1.0]), bins=4, log_abs=True)
    assert counts.sum() == 4 and edges[0] == pytest.approx(-8) and edges[-1] == pytest.approx(0)




