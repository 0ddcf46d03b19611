"""Notebook 5's claims: learning rate, optimizers on a saddle and a ravine, overfitting, dead ReLUs, float32."""

import numpy as np
import pytest

from bpcore.labs import pitfalls
from bpcore.widgets import OptimizerExplorer


def test_learning_rate_too_low_crawls_too_high_diverges():
    final = pitfalls.learning_rate_sweep([0.001, 0.035, 0.045])
    assert final[0.035] < 0.01  # just under the stability limit 2/50 = 0.04
    assert final[0.001] > 100 * final[0.035]  # too small: still far away after 100 steps
    assert final[0.045] > 1e6  # just over the limit: the steep direction blows up


def test_momentum_and_adaptive_methods_cross_the_ravine_faster():
    steps = {name: pitfalls.steps_until(pitfalls.optimizer_path("ravine", name, lr, 300)[1], 1e-3)
             for name, lr in [("SGD", 0.035), ("SGD + momentum", 0.01), ("Nesterov", 0.01), ("Adam", 0.1),
                              ("RMSprop", 0.1)]}
    assert all(s is not None for s in steps.values())
    assert steps["SGD + momentum"] < 0.6 * steps["SGD"]
    assert steps["Nesterov"] < steps["SGD"] / 3 and steps["RMSprop"] < steps["SGD"] / 3
    assert steps["Adam"] < steps["SGD"]


def test_gradient_descent_lingers_at_the_saddle_momentum_leaves_sooner():
    leave = {name: pitfalls.steps_until(pitfalls.optimizer_path("saddle", name, 0.05, 200)[1], -0.5)
             for name in ("SGD", "SGD + momentum", "Nesterov")}
    assert leave["SGD"] > 40  # y grows only by a factor 1.1 per step from 1e-3
    assert leave["SGD + momentum"] < leave["SGD"] / 2
    points, _ = pitfalls.optimizer_path("saddle", "SGD", 0.05, 200)
    np.testing.assert_allclose(np.abs(points[-1]), [0.0, np.sqrt(2)], atol=1e-3)  # ends at a true minimum


def test_every_cure_beats_no_regularisation_on_held_out_points():
    runs, data = pitfalls.overfitting_study()
    assert (len(data.X_train), len(data.X_test)) == (16, 48 + 200)  # train; validation + test
    plain = runs["no regularisation"]
    assert plain.train_loss < 0.01 < plain.test_loss  # memorised the noise (noise variance 0.09)
    for name in ("dropout 0.2", "weight decay 0.1", "early stopping"):
        assert runs[name].test_loss < 0.9 * plain.test_loss, name
        assert runs[name].train_loss > plain.train_loss, name  # each gives up some fit to the training noise
    assert runs["early stopping"].epochs_run < 300


def test_a_huge_learning_rate_kills_relus():
    dead = pitfalls.dead_relu_study(lrs=(0.01, 3.0))
    assert dead[0.01] < 0.1 and dead[3.0] > 0.5


def test_float32_finite_differences_are_too_coarse_to_check_gradients():
    errors = pitfalls.float32_versus_float64()
    assert min(errors["float64"].values()) < 1e-9
    assert min(errors["float32"].values()) > 1e-7
    assert errors["float32"][1e-6] > 100 * errors["float32"][1e-3]  # tiny steps drown in rounding


def test_relu_kink_breaks_the_check_only_next_to_zero():
    assert pitfalls.relu_kink_error(1e-7) > 0.1
    assert pitfalls.relu_kink_error(1e-3) < 1e-9


def test_optimizer_explorer_follows_its_controls():
    explorer = OptimizerExplorer("ravine", "SGD", lr=0.035, steps=100)
    assert explorer.losses[-1] < 0.01 and "final loss" in explorer.summary.value
    explorer.lr.value = 0.05
    assert "diverged" in explorer.summary.value
    explorer.landscape.value = "saddle"
    assert explorer.points.shape == (101, 2)
    assert explorer.losses[0] == pytest.approx(1.0, abs=1e-5)
