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


def test_wide_tanh_with_unit_variance_weights_saturates_yet_explodes():
    """N(0, 1) weights at width 512: the units saturate, and the gradient still grows going back,
    by the mean-field factor chi = 512 E[tanh'(z)^2] (about 12) per layer in squared norm."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 512)), rng.integers(0, 10, 64)
    model = vanishing.deep_mlp(10, width=512, activation="tanh", init="large", in_features=512)
    profile = vanishing.depth_profile(model, X, y, F.cross_entropy)
    q, chi = vanishing.tanh_gradient_gain(512.0)
    assert 20 < np.sqrt(q) < 23, f"pre-activation std {np.sqrt(q):.3g}, expected about 22"
    assert 11 < chi < 14, f"chi = {chi:.3g}, expected about 12"
    assert profile.activation_std.min() > 0.95, f"expected saturated tanh outputs, std {profile.activation_std.min()}"
    g = profile.activation_grad_norms
    per_layer = (g[:-1] / g[1:]) ** 2  # squared-norm gain of each block, going back
    assert np.all(per_layer > 1), f"every block should amplify the gradient going back, got {per_layer}"
    assert abs(np.median(per_layer) / chi - 1) < 0.2, f"median gain {np.median(per_layer):.3g} against chi {chi:.3g}"
    assert profile.ratio > 1e3, f"first/last gradient ratio {profile.ratio:.3g}: expected an explosion (> 1e3)"


def test_gradient_gain_marks_the_edge_of_chaos():
    """Xavier's Var(W) = 1/fan_in (weight_var 1) sits at chi = 1; smaller vanishes, larger explodes."""
    assert vanishing.tanh_gradient_gain(0.5)[1] < 0.6
    assert abs(vanishing.tanh_gradient_gain(1.0)[1] - 1) < 0.01
    assert vanishing.tanh_gradient_gain(4.0)[1] > 1.1


def test_rho_to_the_t_is_exact_only_for_a_scaled_orthogonal_matrix():
    """A random matrix scaled to spectral radius 1 neither keeps the norm at 1 step by step nor drifts away:
    its singular values spread around 1, so the norm moves first and then settles (growth rate 1)."""
    for seed in range(5):
        W = vanishing.random_with_spectral_radius(16, 1.0, seed=seed)
        assert np.max(np.abs(np.linalg.eigvals(W))) == pytest.approx(1.0, rel=1e-12)
        assert np.linalg.norm(W, 2) > 1.2, "a random matrix's largest singular value exceeds its spectral radius"
        norms = vanishing.linear_rnn_gradient_norms(W, 400)
        assert np.max(np.abs(norms[1:21] - 1)) > 0.1, f"seed {seed}: norms stay at 1, expected them to move"
        assert norms[400] ** (1 / 400) == pytest.approx(1.0, abs=0.01), f"seed {seed}: long-run growth rate not 1"
