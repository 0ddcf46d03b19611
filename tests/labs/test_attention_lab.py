"""Attention and LayerNorm backward by hand equal the autodiff engine (1e-12) and finite differences."""

import numpy as np
import pytest

from bpcore.gradcheck import numerical_gradient
from bpcore.labs.attention import attention_backward, autodiff_attention, autodiff_layer_norm, layer_norm_backward

RNG = np.random.default_rng(10)


def attention_problem(lead=(2,), L=3, S=4, E=5, Ev=2):
    return (RNG.standard_normal((*lead, n, d)) for n, d in ((L, E), (S, E), (S, Ev), (L, Ev)))


MASKS = {
    "none": None,
    "bool": np.tril(np.ones((3, 4), dtype=bool), 1),
    "float": RNG.standard_normal((3, 4)),
}


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("scale", [None, 0.3])
def test_attention_backward_by_hand_equals_autodiff(mask, scale):
    Q, K, V, dO = attention_problem()
    hand = attention_backward(Q, K, V, dO, mask=MASKS[mask], scale=scale)
    engine = autodiff_attention(Q, K, V, dO, mask=MASKS[mask], scale=scale)
    for name in ("O", "dQ", "dK", "dV"):
        np.testing.assert_allclose(hand[name], engine[name], rtol=0, atol=1e-12, err_msg=name)


def test_attention_intermediates_are_named_shaped_and_consistent():
    Q, K, V, dO = attention_problem(lead=(), L=3, S=4, E=5, Ev=2)
    hand = attention_backward(Q, K, V, dO, mask=MASKS["bool"])
    shapes = {name: np.shape(value) for name, value in hand.items()}
    assert shapes == {
        "scale": (), "scores": (3, 4), "P": (3, 4), "O": (3, 2),
        "dV": (4, 2), "dP": (3, 4), "dS": (3, 4), "dQ": (3, 5), "dK": (4, 5),
    }  # fmt: skip
    assert hand["scale"] == pytest.approx(1 / np.sqrt(5))
    np.testing.assert_allclose(hand["P"].sum(axis=-1), 1.0)
    masked = ~MASKS["bool"]
    assert np.all(hand["P"][masked] == 0) and np.all(hand["dS"][masked] == 0)  # no gradient through a masked key
    np.testing.assert_allclose(hand["dS"].sum(axis=-1), 0.0, atol=1e-14)  # softmax rows: the gradient sums to 0
    np.testing.assert_allclose(hand["dV"], hand["P"].T @ dO, atol=1e-15)


def test_attention_backward_by_hand_equals_finite_differences():
    Q, K, V, dO = attention_problem(lead=(), L=3, S=4, E=3, Ev=2)
    hand = attention_backward(Q, K, V, dO, mask=MASKS["float"])

    def loss():
        return float((attention_backward(Q, K, V, dO, mask=MASKS["float"])["O"] * dO).sum())

    for name, array in (("dQ", Q), ("dK", K), ("dV", V)):
        np.testing.assert_allclose(hand[name], numerical_gradient(loss, array, 1e-6), 1e-6, 1e-8, err_msg=name)
    scores = hand["scores"].copy()

    def loss_from_scores():  # dS, the gradient at the softmax's input
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        return float(((e / e.sum(axis=-1, keepdims=True)) @ V * dO).sum())

    np.testing.assert_allclose(hand["dS"], numerical_gradient(loss_from_scores, scores, 1e-6), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 5)])
def test_layer_norm_backward_by_hand_equals_autodiff_and_finite_differences(shape):
    x, dy = RNG.standard_normal(shape), RNG.standard_normal(shape)
    gamma, beta = RNG.standard_normal(shape[-1]), RNG.standard_normal(shape[-1])
    hand = layer_norm_backward(x, gamma, beta, dy)
    engine = autodiff_layer_norm(x, gamma, beta, dy)
    for name in ("y", "dx", "dgamma", "dbeta"):
        np.testing.assert_allclose(hand[name], engine[name], rtol=0, atol=1e-12, err_msg=name)
    assert set(hand) == {"mean", "var", "rstd", "x_hat", "y", "dbeta", "dgamma", "dx_hat", "dx"}

    def loss():
        return float((layer_norm_backward(x, gamma, beta, dy)["y"] * dy).sum())

    for name, array in (("dx", x), ("dgamma", gamma), ("dbeta", beta)):
        np.testing.assert_allclose(hand[name], numerical_gradient(loss, array, 1e-6), 1e-6, 1e-8, err_msg=name)
