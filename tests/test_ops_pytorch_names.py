"""The shape, math, activation and creation functions PyTorch users type: values against their
definitions in numpy, gradients against float64 central differences over drawn shapes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bpcore as bp

F = bp.nn.functional
SETTINGS = settings(max_examples=20, deadline=None)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)


def values(shape, seed, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def weights(shape, seed):
    """A fixed random weighting, so the checked scalar depends on every output element differently."""
    return np.random.default_rng(seed + 7).standard_normal(shape)


def check(fn, *inputs):
    report = bp.gradcheck(fn, *inputs)
    assert report, str(report)


# ---------------------------------------------------------------- shapes


@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_unsqueeze_squeeze_flatten_view_keep_every_gradient(shape, seed, data):
    x = values(shape, seed)
    dim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    assert bp.tensor(x).unsqueeze(dim).shape == np.expand_dims(x, dim).shape
    check(lambda t: (t.unsqueeze(dim).squeeze(dim) * weights(shape, seed)).sum(), x)
    check(lambda t: (t.flatten() * weights((x.size,), seed)).sum(), x)
    check(lambda t: (t.view(-1) * weights((x.size,), seed)).sum(), x)
    assert bp.tensor(x).squeeze().shape == tuple(n for n in shape if n != 1)


def test_flatten_and_unflatten_like_pytorch():
    x = bp.tensor(np.zeros((2, 3, 4, 5)))
    assert x.flatten(1).shape == (2, 60) and x.flatten(1, 2).shape == (2, 12, 5) and x.flatten(-2).shape == (2, 3, 20)
    assert x.flatten(1).unflatten(1, (3, 20)).shape == (2, 3, 20)
    assert x.squeeze(0).shape == (2, 3, 4, 5)  # dim 0 has size 2: nothing to squeeze, as in PyTorch


@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_expand_and_repeat_sum_the_copies_gradients(shape, seed, data):
    base = tuple(1 if i % 2 else n for i, n in enumerate(shape))  # some dims of size 1 to stretch
    x = values(base, seed)
    target = (2, *shape)
    check(lambda t: (t.expand(*target) * weights(target, seed)).sum(), x)
    reps = tuple(data.draw(st.integers(1, 3)) for _ in base)
    np.testing.assert_array_equal(bp.tensor(x).repeat(*reps).data, np.tile(x, reps))
    check(lambda t: (t.repeat(*reps) * weights(np.tile(x, reps).shape, seed)).sum(), x)
    assert bp.tensor(np.zeros((3, 1))).expand(-1, 4).shape == (3, 4)


@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_flip_cumsum_split_chunk(shape, seed, data):
    x = values(shape, seed)
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    np.testing.assert_array_equal(bp.tensor(x).flip(dim).data, np.flip(x, dim))
    np.testing.assert_allclose(bp.tensor(x).cumsum(dim).data, np.cumsum(x, axis=dim))
    check(lambda t: (t.flip(dim) * weights(shape, seed)).sum(), x)
    check(lambda t: (t.cumsum(dim) * weights(shape, seed)).sum(), x)
    pieces = bp.tensor(x).split(2, dim)
    assert sum(p.shape[dim] for p in pieces) == shape[dim] and all(p.shape[dim] <= 2 for p in pieces)
    np.testing.assert_array_equal(bp.cat(pieces, dim=dim).data, x)
    check(lambda t: sum((p * p).sum() * (i + 1) for i, p in enumerate(t.chunk(2, dim))), x)


def test_split_by_sections_and_its_errors():
    x = bp.tensor(np.arange(10.0))
    assert [p.shape for p in x.split([3, 7])] == [(3,), (7,)]
    with pytest.raises(bp.ShapeError, match="add up to 9"):
        x.split([3, 6])


def test_pad_takes_pairs_for_the_last_dims_first():
    x = np.arange(6.0).reshape(2, 3)
    y = F.pad(bp.tensor(x), (1, 2, 0, 1), value=-1.0)
    np.testing.assert_array_equal(y.data, np.pad(x, ((0, 1), (1, 2)), constant_values=-1.0))
    check(lambda t: (F.pad(t, (1, 2, 0, 1)) * weights((3, 6), 0)).sum(), x)
    with pytest.raises(bp.ShapeError, match="pairs"):
        F.pad(bp.tensor(x), (1, 2, 3))


def test_tril_and_triu_pass_the_gradient_only_where_they_keep_values():
    x = bp.tensor(np.ones((2, 3, 3)), requires_grad=True)
    x.tril().sum().backward()
    np.testing.assert_array_equal(x.grad[0], np.tril(np.ones((3, 3))))  # a causal mask: zero above
    np.testing.assert_array_equal(bp.triu(bp.tensor(np.ones((3, 4))), 1).data, np.triu(np.ones((3, 4)), 1))
    check(lambda t: (bp.tril(t, -1) * weights((4, 4), 1)).sum(), values((4, 4), 1))


def test_masked_fill_gives_no_gradient_to_the_filled_places():
    scores = values((2, 4), 3)
    mask = np.triu(np.ones((2, 4), dtype=bool), 1)
    filled = bp.tensor(scores).masked_fill(mask, -np.inf)
    assert np.isneginf(filled.data[mask]).all() and np.array_equal(filled.data[~mask], scores[~mask])
    check(lambda t: (t.masked_fill(mask, -5.0) * weights((2, 4), 3)).sum(), scores)
    with pytest.raises(TypeError, match="boolean"):
        bp.tensor(scores).masked_fill(mask.astype(int), 0.0)


def test_gather_picks_along_a_dim_and_adds_repeated_picks():
    x = values((3, 4), 5)
    index = np.array([[0, 0], [3, 1], [2, 2]])
    np.testing.assert_array_equal(bp.tensor(x).gather(1, index).data, np.take_along_axis(x, index, 1))
    t = bp.tensor(x, requires_grad=True)
    t.gather(1, index).sum().backward()
    np.testing.assert_array_equal(t.grad[0], [2.0, 0.0, 0.0, 0.0])  # picked twice: two gradients
    check(lambda u: (bp.gather(u, 0, np.array([[2, 0, 1, 1]])) * weights((1, 4), 5)).sum(), x)


@pytest.mark.parametrize(
    ("equation", "shapes"),
    [
        ("ij,jk->ik", [(2, 3), (3, 4)]),
        ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
        ("bhqd,bhkd->bhqk", [(1, 2, 3, 4), (1, 2, 5, 4)]),  # attention scores
        ("ij->j", [(3, 4)]),
        ("i,j->ij", [(3,), (2,)]),
        ("ij,ij->", [(2, 3), (2, 3)]),
        ("ijk->kji", [(2, 3, 4)]),
    ],
)
def test_einsum_values_and_gradients(equation, shapes):
    arrays = [values(s, i) for i, s in enumerate(shapes)]
    out = bp.einsum(equation, *arrays)
    np.testing.assert_allclose(out.data, np.einsum(equation, *arrays), rtol=1e-12)
    w = weights(out.shape, 0)
    check(lambda *ts: (bp.einsum(equation, *ts) * w).sum(), *arrays)


# ---------------------------------------------------------------- math


@SETTINGS
@given(pair=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=4), seed=seeds)
def test_maximum_and_minimum(pair, seed):
    a, b = values(pair.input_shapes[0], seed), values(pair.input_shapes[1], seed + 1)
    np.testing.assert_array_equal(bp.maximum(bp.tensor(a), b).data, np.maximum(a, b))
    check(lambda x, y: (bp.maximum(x, y) * weights(pair.result_shape, seed)).sum(), a, b)
    check(lambda x, y: (bp.minimum(x, y) * weights(pair.result_shape, seed)).sum(), a, b)


@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_logsumexp_prod_std_norm_along_a_dim(shape, seed, data):
    x = values(shape, seed)
    dim = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    keep = data.draw(st.booleans())
    expected = np.log(np.exp(x).sum(axis=dim, keepdims=keep))
    np.testing.assert_allclose(bp.tensor(x).logsumexp(dim, keep).data, expected, rtol=1e-12)
    np.testing.assert_allclose(bp.tensor(x).prod(dim, keep).data, np.prod(x, axis=dim, keepdims=keep), rtol=1e-12)
    np.testing.assert_allclose(bp.tensor(x).norm(dim=dim, keepdim=keep).data,
                               np.sqrt((x * x).sum(axis=dim, keepdims=keep)), rtol=1e-12)
    out_shape = np.sum(x, axis=dim, keepdims=keep).shape
    w = weights(out_shape, seed)
    check(lambda t: (t.logsumexp(dim, keep) * w).sum(), x)
    check(lambda t: (t.prod(dim, keep) * w).sum(), x)
    check(lambda t: (t.norm(dim=dim, keepdim=keep) * w).sum(), x)
    if np.sum(np.ones(shape), axis=dim).min() > 1:
        check(lambda t: (t.std(dim, keepdim=keep) * w).sum(), x)


def test_prod_with_zeros_and_norm_at_zero():
    x = bp.tensor([2.0, 0.0, 3.0], requires_grad=True)
    x.prod().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 6.0, 0.0])  # the product of the others, no 0/0
    z = bp.tensor([0.0, 0.0], requires_grad=True)
    z.norm().backward()
    np.testing.assert_array_equal(z.grad, [0.0, 0.0])
    assert bp.tensor([3.0, -4.0]).norm(p=1).item() == 7.0 and bp.tensor([3.0, -4.0]).norm(p=float("inf")).item() == 4.0
    assert bp.tensor([[1.0, 2.0], [3.0, 5.0]]).std(dim=0, unbiased=True).data.tolist() == pytest.approx(
        [math.sqrt(2), math.sqrt(4.5)]
    )


@SETTINGS
@given(shape=shapes, seed=seeds)
def test_sin_cos_erf(shape, seed):
    x = values(shape, seed)
    np.testing.assert_allclose(bp.tensor(x).erf().data, np.vectorize(math.erf)(x), rtol=1e-14)
    for name in ("sin", "cos", "erf"):
        check(lambda t, name=name: (getattr(t, name)() * weights(shape, seed)).sum(), x)


# ---------------------------------------------------------------- activations


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


SELU_SCALE, SELU_ALPHA = 1.0507009873554805, 1.6732632423543772  # Klambauer et al. 2017

ACTIVATIONS = {
    "softplus": (F.softplus, lambda z: np.log1p(np.exp(z)), bp.nn.Softplus),
    "elu": (F.elu, lambda z: np.where(z > 0, z, np.exp(z) - 1), bp.nn.ELU),
    "selu": (F.selu, lambda z: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * (np.exp(z) - 1)), bp.nn.SELU),
    "silu": (F.silu, lambda z: z * sigmoid(z), bp.nn.SiLU),
    "mish": (F.mish, lambda z: z * np.tanh(np.log1p(np.exp(z))), bp.nn.Mish),
    "hardtanh": (F.hardtanh, lambda z: np.clip(z, -1, 1), bp.nn.Hardtanh),
    "relu6": (F.relu6, lambda z: np.clip(z, 0, 6), bp.nn.ReLU6),
    "logsigmoid": (F.logsigmoid, lambda z: np.log(sigmoid(z)), bp.nn.LogSigmoid),
    "softsign": (F.softsign, lambda z: z / (1 + np.abs(z)), bp.nn.Softsign),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values_modules_and_gradients(name):
    fn, definition, module = ACTIVATIONS[name]
    z = np.array([-7.5, -3.0, -1.2, -0.4, 0.3, 0.9, 1.6, 4.0, 7.5])  # away from every kink (0, +-1, 6)
    np.testing.assert_allclose(fn(bp.tensor(z)).data, definition(z), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(module()(bp.tensor(z)).data, definition(z), rtol=1e-12, atol=1e-15)
    check(lambda t: (fn(t) * weights(z.shape, 0)).sum(), z)


def test_softplus_is_linear_past_its_threshold_and_hardtanh_flat_outside():
    big = bp.tensor([30.0, 1000.0], requires_grad=True)
    y = F.softplus(big)
    y.sum().backward()
    np.testing.assert_array_equal(y.data, [30.0, 1000.0])
    np.testing.assert_array_equal(big.grad, [1.0, 1.0])
    h = bp.tensor([-2.0, 0.5, 2.0], requires_grad=True)
    F.hardtanh(h).sum().backward()
    np.testing.assert_array_equal(h.grad, [0.0, 1.0, 0.0])


# ---------------------------------------------------------------- creation


def test_creation_functions():
    assert bp.arange(5).data.tolist() == [0, 1, 2, 3, 4] and bp.arange(5).dtype == np.int64
    np.testing.assert_array_equal(bp.arange(0, 1, 0.25).data, [0.0, 0.25, 0.5, 0.75])
    np.testing.assert_array_equal(bp.linspace(0, 1, 5).data, np.linspace(0, 1, 5))
    np.testing.assert_array_equal(bp.eye(3).data, np.eye(3))
    assert bp.full((2, 3), 7.0).data.tolist() == [[7.0] * 3] * 2 and bp.full((2,), 7).dtype == np.int64
    x = bp.tensor(np.ones((2, 3), dtype=np.float32))
    assert bp.zeros_like(x).dtype == np.float32 and not bp.zeros_like(x).data.any()
    assert bp.ones_like(x).data.sum() == 6 and bp.full_like(x, 2.5).data[0, 0] == 2.5
    assert bp.empty(2, 2).shape == (2, 2) and bp.zeros(2, 3, requires_grad=True).requires_grad
    bp.manual_seed(3)
    first = bp.randn_like(x).data
    bp.manual_seed(3)
    np.testing.assert_array_equal(bp.randn_like(x).data, first)
    assert first.dtype == np.float32
