"""Every primitive's VJP is proven against float64 central differences.

Shapes are drawn at random (hypothesis), including every broadcasting pattern numpy allows, so
the reduction of broadcast gradients back to each input's shape is checked along with the rules.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bpcore as bp

SETTINGS = settings(max_examples=25, deadline=None)


def values(shape, seed, low=-2.0, high=2.0, away_from=None):
    """Random float64 values; ``away_from`` keeps them at least 0.1 from a kink."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=shape)
    if away_from is not None:
        close = np.abs(x - away_from) < 0.1
        x[close] += 0.2 * np.sign(x[close] - away_from + 1e-12)
    return x


def assert_gradcheck(fn, *inputs, **kwargs):
    report = bp.gradcheck(fn, *inputs, **kwargs)
    assert report, str(report)
    return report


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)


# ---------------------------------------------------------------- binary ops, with broadcasting


@SETTINGS
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4), seeds)
def test_add_sub_mul_broadcast(shapes_pair, seed):
    sa, sb = shapes_pair.input_shapes
    a, b = values(sa, seed), values(sb, seed + 1)
    assert_gradcheck(lambda x, y: x + y, a, b)
    assert_gradcheck(lambda x, y: x - y, a, b)
    assert_gradcheck(lambda x, y: x * y, a, b)


@SETTINGS
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4), seeds)
def test_div_and_pow_broadcast(shapes_pair, seed):
    sa, sb = shapes_pair.input_shapes
    positive = values(sa, seed, 0.5, 2.0)
    other = values(sb, seed + 1, 0.5, 2.0)
    assert_gradcheck(lambda x, y: x / y, positive, other)
    assert_gradcheck(lambda x, y: x**y, positive, other)


@SETTINGS
@given(shapes, seeds)
def test_scalar_operands_on_either_side(shape, seed):
    x = values(shape, seed, 0.5, 2.0)
    assert_gradcheck(lambda t: 3.0 - t * 2.5 + 1.0, x)
    assert_gradcheck(lambda t: 2.0 / t + t / 4.0, x)
    assert_gradcheck(lambda t: t**3 + t**0.5 + t**-1.5, x)
    assert_gradcheck(lambda t: 2.0**t, x)
    assert_gradcheck(lambda t: -t, x)


def test_tensor_and_numpy_array_operands_mix():
    a = values((3, 4), 0)
    constant = values((4,), 1)
    assert_gradcheck(lambda t: constant * t + constant, a)
    assert_gradcheck(lambda t: constant - t, a)  # ndarray on the left: Tensor.__rsub__ runs


# ---------------------------------------------------------------- matmul in all its forms


@pytest.mark.parametrize(
    "shape_a, shape_b",
    [
        ((3, 4), (4, 5)),  # matrix @ matrix
        ((3, 4), (4,)),  # matrix @ vector
        ((4,), (4, 5)),  # vector @ matrix
        ((4,), (4,)),  # vector @ vector
        ((2, 3, 4), (2, 4, 5)),  # batched
        ((2, 3, 4), (4, 5)),  # batched @ shared matrix (the weight's gradient sums over the batch)
        ((4,), (2, 4, 5)),  # vector @ batch
        ((2, 1, 3, 4), (5, 4, 2)),  # broadcast batch dimensions
    ],
)
def test_matmul_every_form(shape_a, shape_b):
    assert_gradcheck(lambda a, b: a @ b, values(shape_a, 0), values(shape_b, 1))


def test_matmul_weight_gradient_is_sum_of_outer_products():
    # dL/dW for y = x @ W summed over a batch: the sum over samples of x_n^T g_n
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((6, 3)), bp.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    g = rng.standard_normal((6, 2))
    (bp.tensor(x) @ w).backward(g)
    expected = sum(np.outer(x[n], g[n]) for n in range(6))
    np.testing.assert_allclose(w.grad, expected, rtol=1e-12)


# ---------------------------------------------------------------- elementwise functions


@pytest.mark.parametrize(
    "name, fn, low, high, kink",
    [
        ("exp", lambda t: t.exp(), -2, 2, None),
        ("log", lambda t: t.log(), 0.2, 3, None),
        ("sqrt", lambda t: t.sqrt(), 0.2, 3, None),
        ("abs", lambda t: t.abs(), -2, 2, 0.0),
        ("tanh", lambda t: t.tanh(), -3, 3, None),
        ("sigmoid", lambda t: t.sigmoid(), -5, 5, None),
        ("relu", lambda t: t.relu(), -2, 2, 0.0),
        ("leaky_relu", lambda t: t.leaky_relu(0.1), -2, 2, 0.0),
        ("gelu", lambda t: t.gelu(), -3, 3, None),
        ("gelu_tanh", lambda t: t.gelu(approximate="tanh"), -3, 3, None),
        ("clip", lambda t: t.clip(-0.5, 0.7), -2, 2, None),
        ("clip_min_only", lambda t: bp.clip(t, min=0.3), -2, 2, None),
    ],
)
@SETTINGS
@given(shape=shapes, seed=seeds)
def test_unary_functions(name, fn, low, high, kink, shape, seed):
    x = values(shape, seed, low, high, away_from=kink)
    if name.startswith("clip"):  # keep values away from the clipping bounds, where the slope jumps
        for bound in (-0.5, 0.7, 0.3):
            near = np.abs(x - bound) < 0.05
            x[near] += 0.1
    assert_gradcheck(fn, x)


def test_functions_match_their_definitions():
    x = np.linspace(-4, 4, 41)
    t = bp.tensor(x)
    np.testing.assert_allclose(t.sigmoid().data, 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(bp.sigmoid(bp.tensor([-800.0, 800.0])).data, [0.0, 1.0])  # no overflow
    np.testing.assert_allclose(t.leaky_relu(0.2).data, np.where(x > 0, x, 0.2 * x))
    from math import erf

    exact = np.array([0.5 * v * (1 + erf(v / np.sqrt(2))) for v in x])
    np.testing.assert_allclose(t.gelu().data, exact, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(t.gelu(approximate="tanh").data, exact, atol=1e-3)


# ---------------------------------------------------------------- softmax family and reductions


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), seed=seeds, data=st.data())
def test_softmax_and_log_softmax_any_axis(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = values(shape, seed, -3, 3)
    assert_gradcheck(lambda t: t.softmax(axis=axis), x)
    assert_gradcheck(lambda t: t.log_softmax(axis=axis), x)


def test_softmax_is_stable_for_huge_logits():
    logits = bp.tensor([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]])
    s = logits.softmax(axis=1).data
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s.sum(axis=1), 1.0)
    ls = logits.log_softmax(axis=1).data
    np.testing.assert_allclose(ls[0], np.log(np.exp([-2.0, -1.0, 0.0]) / np.exp([-2.0, -1.0, 0.0]).sum()))
    assert ls[1, 0] == pytest.approx(-2000.0)


def axis_choices(ndim):
    singles = list(range(-ndim, ndim))
    pairs = [(i, j) for i in range(ndim) for j in range(i + 1, ndim)]
    return st.sampled_from([None, *singles, *pairs])


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), seed=seeds, data=st.data())
def test_reductions_any_axis(shape, seed, data):
    axis = data.draw(axis_choices(len(shape)))
    keepdims = data.draw(st.booleans())
    x = values(shape, seed)
    assert_gradcheck(lambda t: t.sum(axis=axis, keepdims=keepdims), x)
    assert_gradcheck(lambda t: t.mean(axis=axis, keepdims=keepdims), x)
    assert_gradcheck(lambda t: t.max(axis=axis, keepdims=keepdims), x)  # continuous values: no ties
    assert_gradcheck(lambda t: t.min(axis=axis, keepdims=keepdims), x)
    assert_gradcheck(lambda t: t.var(axis=axis, keepdims=keepdims, unbiased=False), x)


def test_max_splits_gradient_between_ties():
    x = bp.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5, 0.0])


def test_var_matches_numpy_both_ways():
    x = values((4, 5), 2)
    np.testing.assert_allclose(bp.var(bp.tensor(x), axis=0).data, x.var(axis=0, ddof=1))  # n - 1, as PyTorch
    np.testing.assert_allclose(bp.tensor(x).var(0, correction=0).data, x.var(axis=0))
    np.testing.assert_allclose(bp.tensor(x).var(axis=1, unbiased=True).data, x.var(axis=1, ddof=1))


# ---------------------------------------------------------------- shapes and indexing


def test_reshape_and_transpose():
    x = values((2, 3, 4), 0)
    assert_gradcheck(lambda t: t.reshape(4, 6) * np.arange(24.0).reshape(4, 6), x)
    assert_gradcheck(lambda t: t.reshape((-1,)) ** 2, x)
    assert_gradcheck(lambda t: t.permute(2, 0, 1) * np.arange(24.0).reshape(4, 2, 3), x)
    assert_gradcheck(lambda t: t.T * np.arange(24.0).reshape(4, 3, 2), x)
    assert bp.tensor(x).T.shape == (4, 3, 2)


@pytest.mark.parametrize(
    "index",
    [
        (slice(None), 1),
        (slice(0, 2), slice(None, None, 2)),
        (Ellipsis, -1),
        (None, 0),
        np.array([0, 2, 2, 1, 0]),  # repeated rows: their gradients accumulate
        (np.array([0, 1, 1, 2]), np.array([3, 0, 0, 2])),  # pairs of index arrays (gather)
        np.array([True, False, True]),
    ],
)
def test_getitem(index):
    x = values((3, 4), 0)
    weight = values(np.shape(x[index]), 1)
    assert_gradcheck(lambda t: t[index] * weight, x)


def test_repeated_indices_accumulate():
    emb = bp.tensor(np.zeros((3, 2)), requires_grad=True)
    emb[np.array([1, 1, 1, 0])].sum().backward()
    np.testing.assert_array_equal(emb.grad, [[1, 1], [3, 3], [0, 0]])


def test_integer_tensor_as_index():
    x = bp.tensor(values((4, 3), 0), requires_grad=True)
    rows = bp.tensor([3, 0], dtype=np.int64)
    x[rows, bp.tensor([2, 1], dtype=np.int64)].sum().backward()
    expected = np.zeros((4, 3))
    expected[3, 2] = expected[0, 1] = 1
    np.testing.assert_array_equal(x.grad, expected)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat_and_stack(axis):
    a, b, c = values((2, 3), 0), values((2, 3), 1), values((2, 3), 2)
    weight = values(np.concatenate([a, b, c], axis=axis).shape, 3)
    assert_gradcheck(lambda x, y, z: bp.concat([x, y, z], axis=axis) * weight, a, b, c)
    weight = values(np.stack([a, b, c], axis=axis).shape, 4)
    assert_gradcheck(lambda x, y, z: bp.stack([x, y, z], axis=axis) * weight, a, b, c)


def test_concat_different_lengths():
    a, b = values((2, 3), 0), values((5, 3), 1)
    assert_gradcheck(lambda x, y: bp.concat([x, y]).tanh(), a, b)


def test_where_routes_the_gradient():
    a, b = values((3, 4), 0), values((4,), 1)
    condition = values((3, 4), 2) > 0
    assert_gradcheck(lambda x, y: bp.where(condition, x, y) * 1.5, a, b)
    assert_gradcheck(lambda x: bp.where(condition, x, 0.0), a)


def test_cast_keeps_the_gradient_in_the_input_dtype():
    x = bp.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    (x.astype(np.float64) * 2).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2, 2, 2])


# ---------------------------------------------------------------- composite expressions


def test_a_two_layer_network_end_to_end():
    rng = np.random.default_rng(0)
    x, w1, b1, w2, b2 = (rng.standard_normal(s) for s in [(5, 4), (4, 6), (6,), (6, 3), (3,)])
    targets = np.array([0, 2, 1, 1, 0])

    def loss(x, w1, b1, w2, b2):
        h = (x @ w1 + b1).tanh()
        logp = (h @ w2 + b2).log_softmax(axis=1)
        return -logp[np.arange(5), targets].mean()

    assert_gradcheck(loss, x, w1, b1, w2, b2)
