"""Forward mode (dual numbers) agrees with reverse mode, with finite differences, and costs n passes, not m."""

import sys

import numpy as np
import pytest

import bpcore as bp
from bpcore.forward_mode import (
    JVP_RULES,
    Dual,
    jacobian_forward,
    jacobian_reverse,
    jvp,
)
from bpcore.gradcheck import relative_error

TARGETS = np.array([0, 2, 1, 1, 0])

# Each function is written once with operators and methods and runs on Tensors and on Duals alike.
FUNCTIONS = {
    "mlp": (lambda x, w1, b1, w2: (x @ w1 + b1).tanh() @ w2, [(5, 3), (3, 4), (4,), (4, 2)]),
    "cross_entropy": (lambda x, w: -(x @ w).log_softmax(axis=1)[np.arange(5), TARGETS].mean(), [(5, 3), (3, 3)]),
    "normalise": (
        lambda x, g: (x - x.mean(axis=0, keepdims=True))
        / (x.var(axis=0, keepdims=True, unbiased=False) + 1e-5).sqrt()
        * g,
        [(6, 3), (3,)],
    ),
    "exp_log_pow": (lambda x, y: (x.exp() + 1).log() / (1 + y**2) + (x * x + 1) ** y, [(4, 3), (4, 3)]),
    "attention": (lambda q, k, v: (q @ k.T / 2).softmax(axis=-1) @ v, [(3, 4), (5, 4), (5, 2)]),
    "shapes": (lambda x, y: x[1:, ::2].reshape(-1) * y.transpose(1, 0)[0] + x.T[2, :2].sum(), [(3, 4), (4, 3)]),
    "kinks": (lambda x: (x.relu() * x.sigmoid()).max(axis=1) + x.abs().min() + x.leaky_relu(0.1).sum(), [(4, 5)]),
    "vectors": (lambda w, v: (w @ v).tanh() @ v[:3], [(3, 4), (4,)]),
}


def random_inputs(shapes, rng):
    return [rng.standard_normal(shape) for shape in shapes]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_jvp_equals_the_reverse_mode_contraction(name, seed):
    """u^T (J v) from one forward-mode pass equals (J^T u)^T v from one backward pass."""
    fn, shapes = FUNCTIONS[name]
    rng = np.random.default_rng(seed)
    xs, vs = random_inputs(shapes, rng), random_inputs(shapes, rng)
    value, jv = jvp(fn, xs, vs)

    leaves = [bp.tensor(x, requires_grad=True) for x in xs]
    y = fn(*leaves)
    u = rng.standard_normal(y.shape)
    y.backward(u)
    reverse = sum(float((leaf.grad * v).sum()) for leaf, v in zip(leaves, vs, strict=True))
    forward = float((u * jv).sum())

    np.testing.assert_allclose(value, y.data, rtol=1e-13, atol=1e-13)
    assert abs(forward - reverse) <= 1e-10 * max(1.0, abs(reverse))


def _positive(shape, rng):
    return rng.uniform(0.5, 2.0, size=shape)


def _away_from_zero(shape, rng):  # keeps relu, abs and leaky_relu off their kinks
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 2.0, size=shape)


# rule -> (function that uses it, input makers); one case per entry of JVP_RULES
RULE_CASES = {
    "add": (lambda a, b: a + b, [(2, 3), (3,)]),
    "sub": (lambda a, b: a - b, [(2, 3), (2, 1)]),
    "mul": (lambda a, b: a * b, [(2, 3), (3,)]),
    "div": (lambda a, b: a / b, [(2, 3), ("positive", (2, 3))]),
    "pow": (lambda a, b: a**b + a**3, [("positive", (2, 3)), (2, 3)]),
    "neg": (lambda a: -a, [(2, 3)]),
    "matmul": (lambda a, b, v: a @ b + v @ b, [(2, 3), (3, 4), (3,)]),
    "exp": (lambda a: a.exp(), [(2, 3)]),
    "log": (lambda a: a.log(), [("positive", (2, 3))]),
    "sqrt": (lambda a: a.sqrt(), [("positive", (2, 3))]),
    "abs": (lambda a: a.abs(), [("away", (2, 3))]),
    "tanh": (lambda a: a.tanh(), [(2, 3)]),
    "sigmoid": (lambda a: a.sigmoid(), [(2, 3)]),
    "relu": (lambda a: a.relu(), [("away", (2, 3))]),
    "leaky_relu": (lambda a: a.leaky_relu(0.2), [("away", (2, 3))]),
    "softmax": (lambda a: a.softmax(axis=0), [(3, 4)]),
    "log_softmax": (lambda a: a.log_softmax(axis=-1), [(3, 4)]),
    "sum": (lambda a: a.sum(axis=1) + a.sum(), [(3, 4)]),
    "mean": (lambda a: a.mean(axis=(0,), keepdims=True), [(3, 4)]),
    "max": (lambda a: a.max(axis=1), [(3, 4)]),
    "min": (lambda a: a.min(), [(3, 4)]),
    "reshape": (lambda a: a.reshape(4, 3) * np.arange(12.0).reshape(4, 3), [(3, 4)]),
    "transpose": (lambda a: a.permute(1, 0, 2) * np.arange(24.0).reshape(3, 2, 4), [(2, 3, 4)]),
    "getitem": (lambda a: a[1:, ::2] * 2 + a[np.array([0, 0, 2]), np.array([1, 1, 3])].sum(), [(3, 4)]),
}


def make_input(spec, rng):
    if spec[0] == "positive":
        return _positive(spec[1], rng)
    if spec[0] == "away":
        return _away_from_zero(spec[1], rng)
    return rng.standard_normal(spec)


def test_every_rule_has_a_finite_difference_case():
    assert set(RULE_CASES) == set(JVP_RULES)


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_each_rule_against_central_differences(rule):
    """(f(x + eps v) - f(x - eps v)) / (2 eps) = J v up to O(eps^2): relative error <= 1e-7 is 'good'."""
    fn, specs = RULE_CASES[rule]
    rng = np.random.default_rng(len(rule))
    xs = [make_input(spec, rng) for spec in specs]
    vs = [rng.standard_normal(x.shape) for x in xs]
    _, jv = jvp(fn, xs, vs)
    eps = 1e-6
    up, _ = jvp(fn, [x + eps * v for x, v in zip(xs, vs, strict=True)], vs)
    down, _ = jvp(fn, [x - eps * v for x, v in zip(xs, vs, strict=True)], vs)
    numerical = (up - down) / (2 * eps)
    assert relative_error(jv, numerical).max() < 1e-7


@pytest.mark.parametrize("name", ["mlp_in_x", "matrix_in", "scalar_out", "tall"])
def test_forward_and_reverse_jacobians_agree(name):
    rng = np.random.default_rng(3)
    w, a = rng.standard_normal((4, 3)), rng.standard_normal(6)
    fn, x = {
        "mlp_in_x": (lambda x: (x @ w).tanh(), rng.standard_normal(4)),
        "matrix_in": (lambda x: (x @ w.T).softmax(axis=1), rng.standard_normal((2, 3))),
        "scalar_out": (lambda x: (x * x).sum().sqrt(), rng.standard_normal((3, 2))),
        "tall": (lambda x: (x * a).sigmoid(), rng.standard_normal(1)),
    }[name]
    j_forward, j_reverse = jacobian_forward(fn, x), jacobian_reverse(fn, x)
    out_shape = fn(bp.tensor(x)).shape
    assert j_forward.shape == j_reverse.shape == out_shape + x.shape
    np.testing.assert_allclose(j_forward, j_reverse, rtol=1e-12, atol=1e-14)


def test_jacobian_forward_matches_central_differences():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((3, 5))
    x = rng.standard_normal(3)

    def f(z):
        return (z @ w).exp() / (1 + (z * z).sum())

    numerical = np.zeros((5, 3))
    for i in range(3):
        e = np.zeros(3)
        e[i] = 1e-6
        numerical[:, i] = (jvp(f, x + e, e)[0] - jvp(f, x - e, e)[0]) / 2e-6
    assert relative_error(jacobian_forward(f, x), numerical).max() < 1e-7






def test_broadcasting_and_constants():
    x, v = np.ones((2, 3)), np.full((2, 3), 2.0)
    bias = Dual(np.zeros(3), np.array([1.0, 2.0, 3.0]))
    out = (Dual(x, v) + bias) * 3.0 + bp.tensor(np.ones(3))  # a tensor inside forward mode is a constant
    np.testing.assert_array_equal(out.tangent, 3 * (v + np.array([1.0, 2.0, 3.0])))
    w = np.arange(6.0).reshape(2, 3)
    left = w @ Dual(np.ones(3), np.array([1.0, 0.0, 0.0]))  # ndarray on the left: numpy hands over to Dual
    np.testing.assert_array_equal(left.tangent, w[:, 0])
    np.testing.assert_array_equal((np.float64(2.0) * Dual(np.ones(2), np.ones(2))).tangent, [2.0, 2.0])
    _, tangent = jvp(lambda z: np.ones(2), np.zeros(2), np.ones(2))
    np.testing.assert_array_equal(tangent, np.zeros(2))


def test_jvp_never_runs_backward(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("forward mode must not call the reverse-mode engine")

    monkeypatch.setattr(sys.modules["bpcore.tensor"], "run_backward", forbidden)
    monkeypatch.setattr(bp.Tensor, "backward", forbidden)
    fn, shapes = FUNCTIONS["mlp"]
    rng = np.random.default_rng(0)
    value, tangent = jvp(fn, random_inputs(shapes, rng), random_inputs(shapes, rng))
    assert value.shape == tangent.shape == (5, 2)


def test_engine_functions_on_duals_explain_what_to_write_instead():
    with pytest.raises(TypeError, match="operators and methods"):
        jvp(lambda x: bp.tanh(x), np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="tangent has shape"):
        jvp(lambda x: x, np.ones(2), np.ones(3))
