"""The hand-derived 3-layer network equals the autodiff engine (1e-12) and finite differences."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.labs.chain_rule import ACTIVATIONS
from bpcore.labs.three_layer import LOSSES, autodiff_three_layer, sgd_update, three_layer

F = bp.nn.functional


def reference_problem(seed=0, n=4, m=5, k=3, batch=None, loss="mse", g="sigmoid"):
    rng = np.random.default_rng(seed)
    shape_x = (n,) if batch is None else (batch, n)
    x = rng.standard_normal(shape_x)
    params = {
        "W1": rng.standard_normal((m, n)) * 0.7,
        "b1": rng.standard_normal(m) * 0.1,
        "W2": rng.standard_normal((k, m)) * 0.7,
        "b2": rng.standard_normal(k) * 0.1,
    }
    rows = 1 if batch is None else batch
    if loss == "cross_entropy":
        y = np.eye(k)[rng.integers(0, k, size=rows)]
    elif loss == "bce":
        y = rng.integers(0, 2, size=(rows, k)).astype(float)
    else:
        y = rng.uniform(0.1, 0.9, size=(rows, k))
    y = y[0] if batch is None else y
    return x, y, params


CASES = [
    ("sigmoid", "sigmoid", "mse"),
    ("tanh", "identity", "half_sse"),
    ("relu", "sigmoid", "bce"),
    ("leaky_relu", "softmax", "cross_entropy"),
    ("tanh", "softmax", "mse"),
    ("sigmoid", "tanh", "half_sse"),
]


@pytest.mark.parametrize("batch", [None, 6])
@pytest.mark.parametrize("f, g, loss", CASES)
def test_manual_equals_autodiff(f, g, loss, batch):
    x, y, params = reference_problem(seed=1, batch=batch, loss=loss, g=g)
    by_hand = three_layer(x, y, **params, f=f, g=g, loss=loss)
    L, leaves = autodiff_three_layer(x, y, **params, f=f, g=g, loss=loss)
    L.backward()
    assert by_hand.loss == pytest.approx(L.item(), rel=1e-12)
    for name, grad in by_hand.grads.items():
        np.testing.assert_allclose(grad, leaves[name].grad, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("f, g, loss", CASES)
def test_manual_equals_finite_differences(f, g, loss):
    x, y, params = reference_problem(seed=2, batch=3, loss=loss, g=g)
    by_hand = three_layer(x, y, **params, f=f, g=g, loss=loss)
    for name in params:

        def loss_of(value, name=name):
            return three_layer(x, y, **{**params, name: value}, f=f, g=g, loss=loss).loss

        numerical = _central_differences(loss_of, params[name])
        np.testing.assert_allclose(by_hand.grads[name], numerical, rtol=1e-6, atol=1e-9, err_msg=name)


def _central_differences(loss_of, value, eps=1e-6):
    grad = np.zeros_like(value)
    for i in np.ndindex(value.shape):
        up, down = value.copy(), value.copy()
        up[i] += eps
        down[i] -= eps
        grad[i] = (loss_of(up) - loss_of(down)) / (2 * eps)
    return grad


def test_single_sample_shapes_follow_the_notes():
    n, m, k = 4, 5, 3
    x, y, params = reference_problem(n=n, m=m, k=k)
    out = three_layer(x, y, **params)
    expected = {
        "z1": (m,), "h": (m,), "z2": (k,), "y_pred": (k,), "L": (),
        "dL_dy": (k,), "dy_dz2": (k,), "delta_output": (k,), "dL_dW2": (k, m), "dL_db2": (k,),
        "delta_hidden": (m,), "dL_dW1": (m, n), "dL_db1": (m,),
    }  # fmt: skip
    assert {name: v.shape for name, v in out.steps.items()} == expected
    assert list(out.steps)[:5] == ["z1", "h", "z2", "y_pred", "L"]  # forward steps in order


def test_the_outer_product_form_of_the_notes():
    x, y, params = reference_problem(seed=3)
    out = three_layer(x, y, **params)
    s = out.steps
    np.testing.assert_allclose(s["delta_output"], s["dL_dy"] * s["dy_dz2"])
    np.testing.assert_allclose(s["dL_dW2"], np.outer(s["delta_output"], s["h"]))
    sig = 1 / (1 + np.exp(-s["z1"]))
    np.testing.assert_allclose(s["delta_hidden"], (params["W2"].T @ s["delta_output"]) * sig * (1 - sig))
    np.testing.assert_allclose(s["dL_dW1"], np.outer(s["delta_hidden"], x))
    np.testing.assert_array_equal(s["dL_db1"], s["delta_hidden"])


def test_batch_gradient_is_the_mean_of_single_sample_gradients():
    x, y, params = reference_problem(seed=4, batch=5)
    batch = three_layer(x, y, **params, loss="half_sse").grads
    singles = [three_layer(x[i], y[i], **params, loss="half_sse").grads for i in range(5)]
    for name in params:
        np.testing.assert_allclose(batch[name], np.mean([s[name] for s in singles], axis=0), rtol=1e-12)


def test_softmax_with_cross_entropy_gives_prediction_minus_truth():
    x, y, params = reference_problem(seed=5, batch=4, loss="cross_entropy", g="softmax")
    s = three_layer(x, y, **params, g="softmax", loss="cross_entropy").steps
    np.testing.assert_allclose(s["delta_output"], (s["y_pred"] - y) / 4, atol=1e-15)


def test_one_sgd_update_lowers_the_loss():
    x, y, params = reference_problem(seed=6, batch=8)
    before = three_layer(x, y, **params)
    updated = sgd_update(params, before.grads, lr=0.5)
    after = three_layer(x, y, **updated)
    assert after.loss < before.loss
    # to first order the loss falls by lr * ||grad||^2
    predicted = 0.5 * sum(float(np.sum(g * g)) for g in before.grads.values())
    assert before.loss - after.loss == pytest.approx(predicted, rel=0.05)


def test_table_and_errors():
    x, y, params = reference_problem()
    text = three_layer(x, y, **params).table()
    assert "delta_hidden" in text and "(W2^T delta_output) * f'(z1)" in text
    with pytest.raises(ValueError, match="unknown hidden activation"):
        three_layer(x, y, **params, f="swish")
    with pytest.raises(ValueError, match="unknown loss"):
        three_layer(x, y, **params, loss="hinge")
    with pytest.raises(ValueError, match="x has 3 features"):
        three_layer(x[:3], y, **params)
    assert set(ACTIVATIONS) >= {"sigmoid", "tanh", "relu"} and set(LOSSES) >= {"mse", "cross_entropy"}
