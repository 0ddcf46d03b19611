"""Notebook 01's lab: the chain rule link by link equals the engine and finite differences."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.labs.chain_rule import ACTIVATIONS, scalar_chain

POINT = {"x": 0.7, "w1": -1.3, "b1": 0.4, "w2": 2.1, "b2": -0.6, "y": 0.25}


def engine_loss(params, f):
    z1 = params["w1"] * POINT["x"] + params["b1"]
    a1 = z1.leaky_relu(0.01) if f == "leaky_relu" else (z1 if f == "identity" else getattr(z1, f)())
    z2 = params["w2"] * a1 + params["b2"]
    a2 = z2.leaky_relu(0.01) if f == "leaky_relu" else (z2 if f == "identity" else getattr(z2, f)())
    return 0.5 * (a2 - POINT["y"]) ** 2


@pytest.mark.parametrize("f", sorted(ACTIVATIONS))
def test_the_products_of_local_derivatives_are_the_engine_gradients(f):
    chain = scalar_chain(**POINT, f=f)
    params = {k: bp.tensor(POINT[k], requires_grad=True) for k in ("w1", "b1", "w2", "b2")}
    loss = engine_loss(params, f)
    loss.backward()
    assert chain.values["L"] == pytest.approx(loss.item(), rel=1e-14)
    for name, leaf in params.items():
        assert chain.grads[name] == pytest.approx(float(leaf.grad), rel=1e-12, abs=1e-15), name


@pytest.mark.parametrize("f", sorted(ACTIVATIONS))
def test_the_products_equal_finite_differences(f):
    chain, eps = scalar_chain(**POINT, f=f), 1e-6
    for name in ("w1", "b1", "w2", "b2"):
        up, down = dict(POINT, **{name: POINT[name] + eps}), dict(POINT, **{name: POINT[name] - eps})
        numeric = (scalar_chain(**up, f=f).values["L"] - scalar_chain(**down, f=f).values["L"]) / (2 * eps)
        assert chain.grads[name] == pytest.approx(numeric, rel=1e-6, abs=1e-9), name


def test_the_gradient_is_the_product_of_the_links_along_its_path():
    chain = scalar_chain(**POINT, f="sigmoid")
    link = chain.local
    along_w1 = link["dL/da2"] * link["da2/dz2"] * link["dz2/da1"] * link["da1/dz1"] * link["dz1/dw1"]
    assert chain.grads["w1"] == pytest.approx(along_w1, rel=1e-15)
    assert chain.grads["w2"] == pytest.approx(link["dL/da2"] * link["da2/dz2"] * link["dz2/dw2"], rel=1e-15)


@pytest.mark.parametrize("f", sorted(ACTIVATIONS))
def test_each_activation_derivative_is_its_finite_difference(f):
    act, act_prime = ACTIVATIONS[f]
    z = np.array([-2.5, -0.3, 0.2, 1.7])  # away from the ReLU kink at 0
    eps = 1e-6
    np.testing.assert_allclose(act_prime(z), (act(z + eps) - act(z - eps)) / (2 * eps), rtol=1e-7, atol=1e-9)
