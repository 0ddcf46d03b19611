"""Vanishing and exploding gradients: every claim of notebook 4, asserted on the measured numbers."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.labs import vanishing
from bpcore.widgets import DepthExplorer

F = bp.nn.functional


@pytest.fixture(scope="module")
def batch():
    d = bp.data.digits()
    return d.X_train[:128], d.y_train[:128]


def ratio(batch, **kwargs):
    return vanishing.depth_profile(vanishing.deep_mlp(20, **kwargs), *batch, F.cross_entropy).ratio


def test_sigmoid_vanishes_under_every_initialisation(batch):
    for init in vanishing.INITS:
        assert ratio(batch, activation="sigmoid", init=init) < 1e-2, init


def test_matched_initialisation_keeps_the_gradient_alive(batch):
    assert 0.1 < ratio(batch, activation="tanh", init="xavier") < 10
    assert 0.1 < ratio(batch, activation="relu", init="he") < 10
    assert ratio(batch, activation="relu", init="default") < 1e-4  # PyTorch's default is too small for 20 ReLU layers
    assert ratio(batch, activation="tanh", init="small") < 1e-10


def test_large_weights_explode(batch):
    assert ratio(batch, activation="tanh", init="large") > 1e3
    assert ratio(batch, activation="relu", init="large") > 1e6


def test_batchnorm_and_residuals_rescue_a_deep_sigmoid_net(batch):
    plain = ratio(batch, activation="sigmoid")
    assert plain < 1e-10
    assert 0.1 < ratio(batch, activation="sigmoid", batchnorm=True) < 10
    assert 0.1 < ratio(batch, activation="sigmoid", residual=True) < 10


def test_profile_matches_a_plain_backward(batch):
    model = vanishing.deep_mlp(4, activation="tanh", init="xavier")
    profile = vanishing.depth_profile(model, *batch, F.cross_entropy)
    F.cross_entropy(model(bp.tensor(batch[0])), batch[1]).backward()
    blocks = [m for m in model if isinstance(m, vanishing.Block)]
    np.testing.assert_allclose(profile.weight_grad_norms, [np.linalg.norm(b.linear.weight.grad) for b in blocks])
    assert profile.activation_std.shape == (4,)


def test_clipping_by_norm_keeps_the_direction_by_value_does_not():
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal((5, 5)) * 100, rng.standard_normal(5)]
    effect = vanishing.clipping_effect(grads, max_norm=1.0, clip_value=0.5)
    assert effect["norm before"] > 100
    assert effect["norm after by norm"] == pytest.approx(1.0, rel=1e-5)
    assert effect["cosine by norm"] == pytest.approx(1.0)
    assert effect["cosine by value"] < 0.95


def test_depth_explorer_reacts(batch):
    explorer = DepthExplorer(*batch)
    assert explorer.profile.ratio < 1e-2 and "vanishing" in explorer.summary.value
    explorer.residual.value = True
    assert 0.1 < explorer.profile.ratio < 10 and "healthy" in explorer.summary.value
    explorer.depth.value = 5
    assert len(explorer.profile.activation_grad_norms) == 5


def test_a_linear_rnn_gradient_t_steps_back_is_rho_to_the_t():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))  # orthogonal: every |eigenvalue| is 1
    for rho in (0.8, 1.2):
        norms = vanishing.linear_rnn_gradient_norms(rho * Q, 30)
        np.testing.assert_allclose(norms, rho ** np.arange(31), rtol=1e-10)
