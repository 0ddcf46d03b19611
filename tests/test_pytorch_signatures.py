"""The signatures PyTorch users type: ``dim=``/``keepdim=`` on the module-level functions
(``bp.sum(x, dim=1)``, ``F.softmax(x, dim=-1)`` ...) and on the methods, numpy's
``axis=``/``keepdims=`` beside them; ``norm`` with every p; ``F.pad`` with every mode; ``einsum``
with '...' and without '->'. Values against numpy formulas, gradients against central differences."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bpcore as bp

F = bp.nn.functional
SETTINGS = settings(max_examples=15, deadline=None)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=2, max_side=4)
seeds = st.integers(0, 2**32 - 1)


def values(shape, seed):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, size=shape)


def check(fn, x):
    report = bp.gradcheck(fn, x)
    assert report, str(report)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# name -> (the bpcore function, its numpy value along (axis, keepdims))
REDUCTIONS = {
    "sum": (bp.sum, lambda x, a, k: x.sum(axis=a, keepdims=k)),
    "mean": (bp.mean, lambda x, a, k: x.mean(axis=a, keepdims=k)),
    "var": (bp.var, lambda x, a, k: x.var(axis=a, keepdims=k, ddof=1)),
    "std": (bp.std, lambda x, a, k: x.std(axis=a, keepdims=k, ddof=1)),
    "prod": (bp.prod, lambda x, a, k: x.prod(axis=a, keepdims=k)),
    "logsumexp": (bp.logsumexp, lambda x, a, k: np.log(np.exp(x).sum(axis=a, keepdims=k))),
    "norm": (bp.norm, lambda x, a, k: np.sqrt((x * x).sum(axis=a, keepdims=k))),
    "max": (lambda x, **kw: bp.max(x, **kw).values if "dim" in kw else bp.max(x, **kw),
            lambda x, a, k: x.max(axis=a, keepdims=k)),
    "min": (lambda x, **kw: bp.min(x, **kw).values if "dim" in kw else bp.min(x, **kw),
            lambda x, a, k: x.min(axis=a, keepdims=k)),
    "amax": (bp.amax, lambda x, a, k: x.max(axis=a, keepdims=k)),
    "amin": (bp.amin, lambda x, a, k: x.min(axis=a, keepdims=k)),
}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_module_reductions_take_dim_keepdim_and_axis_keepdims(name, shape, seed, data):
    fn, expected = REDUCTIONS[name]
    x = values(shape, seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    keep = data.draw(st.booleans())
    want = expected(x, axis, keep)
    np.testing.assert_allclose(fn(bp.tensor(x), dim=axis, keepdim=keep).data, want, rtol=1e-12)
    np.testing.assert_allclose(fn(bp.tensor(x), axis=axis, keepdims=keep).data, want, rtol=1e-12)
    w = np.random.default_rng(seed + 1).standard_normal(want.shape)
    check(lambda t: (fn(t, dim=axis, keepdim=keep) * w).sum(), x)


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "prod", "logsumexp", "norm"])
def test_methods_take_both_spellings_and_refuse_both_at_once(name):
    x = bp.tensor(values((3, 4), 0))
    method = getattr(x, name)
    np.testing.assert_allclose(method(dim=1, keepdim=True).data, method(axis=1, keepdims=True).data)
    np.testing.assert_allclose(getattr(bp, name)(x, 1).data, method(1).data)  # dim as the 2nd argument
    with pytest.raises(TypeError, match="not both"):
        method(dim=1, axis=0)


def test_tuple_dims_as_pytorch():
    x = values((2, 3, 4), 1)
    np.testing.assert_allclose(bp.amax(bp.tensor(x), dim=(0, 2)).data, x.max(axis=(0, 2)))
    np.testing.assert_allclose(bp.tensor(x).amin((1, 2), True).data, x.min(axis=(1, 2), keepdims=True))
    tied = bp.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0]], requires_grad=True)
    tied.amax(dim=1).sum().backward()  # tied maxima share the gradient, as torch.amax
    np.testing.assert_array_equal(tied.grad, [[0.0, 0.5, 0.5], [0.5, 0.0, 0.5]])
    np.testing.assert_allclose(bp.sum(bp.tensor(x), dim=(0, 2)).data, x.sum(axis=(0, 2)))
    want = x.mean(axis=(0, 2), keepdims=True)
    np.testing.assert_allclose(bp.mean(bp.tensor(x), dim=[0, -1], keepdim=True).data, want)
    np.testing.assert_allclose(bp.var(bp.tensor(x), dim=(1, 2)).data, x.var(axis=(1, 2), ddof=1))


@pytest.mark.parametrize("fn", [bp.softmax, F.softmax, bp.log_softmax, F.log_softmax])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_family_takes_dim(fn, dim):
    x = values((3, 4), 2)
    expected = _softmax(x, dim)
    if fn in (bp.log_softmax, F.log_softmax):
        expected = np.log(expected)
    np.testing.assert_allclose(fn(bp.tensor(x), dim=dim).data, expected, rtol=1e-12)
    np.testing.assert_allclose(fn(bp.tensor(x), dim).data, expected, rtol=1e-12)
    np.testing.assert_allclose(fn(bp.tensor(x), axis=dim).data, expected, rtol=1e-12)
    np.testing.assert_allclose(bp.tensor(x).softmax(dim=dim).data, _softmax(x, dim), rtol=1e-12)
    w = np.random.default_rng(3).standard_normal(x.shape)
    check(lambda t: (fn(t, dim=dim) * w).sum(), x)
    assert F.softmax(bp.tensor(x), dim=dim, dtype=bp.float32).dtype == np.float32


def test_var_and_std_read_positional_arguments_as_pytorch():
    x = values((3, 5), 4)
    # torch.var(x, dim, unbiased, keepdim); a lone bool is unbiased
    np.testing.assert_allclose(bp.var(bp.tensor(x), 1, False).data, x.var(axis=1))
    np.testing.assert_allclose(bp.var(bp.tensor(x), 1, True, True).data, x.var(axis=1, ddof=1, keepdims=True))
    np.testing.assert_allclose(bp.std(bp.tensor(x), 0, False, keepdim=True).data, x.std(axis=0, keepdims=True))
    np.testing.assert_allclose(bp.tensor(x).var(False).data, x.var())
    np.testing.assert_allclose(bp.tensor(x).std(dim=1, correction=0).data, x.std(axis=1))


@pytest.mark.parametrize("keep", [False, True])
def test_argmax_argmin_module_level_with_dim_and_axis(keep):
    x = values((3, 4, 2), 5)
    for fn, ref in ((bp.argmax, np.argmax), (bp.argmin, np.argmin)):
        for d in (0, 1, -1):
            got = fn(bp.tensor(x), dim=d, keepdim=keep)
            np.testing.assert_array_equal(got.data, ref(x, axis=d, keepdims=keep))
            assert got.dtype == np.int64
            np.testing.assert_array_equal(fn(bp.tensor(x), axis=d, keepdims=keep).data, got.data)
        assert fn(bp.tensor(x)).item() == ref(x)
    assert bp.argmax(bp.tensor(x), keepdim=True).shape == (1, 1, 1)  # all dims kept, as size 1 (PyTorch)
    np.testing.assert_array_equal(bp.tensor(x).argmax(axis=1).data, np.argmax(x, axis=1))


def test_max_min_module_level_with_dim_give_values_and_indices():
    x = values((3, 4), 6)
    values_, indices = bp.max(bp.tensor(x), dim=1, keepdim=True)
    np.testing.assert_array_equal(values_.data, x.max(axis=1, keepdims=True))
    np.testing.assert_array_equal(indices.data, x.argmax(axis=1)[:, None])
    np.testing.assert_array_equal(bp.min(bp.tensor(x), axis=0).data, x.min(axis=0))


def test_cat_stack_cumsum_take_dim_and_axis():
    a, b = values((2, 3), 7), values((2, 3), 8)
    for fn, ref in ((bp.cat, np.concatenate), (bp.stack, np.stack)):
        for d in (0, 1, -1):
            np.testing.assert_array_equal(fn([bp.tensor(a), bp.tensor(b)], dim=d).data, ref([a, b], axis=d))
            np.testing.assert_array_equal(fn([bp.tensor(a), bp.tensor(b)], axis=d).data, ref([a, b], axis=d))
            np.testing.assert_array_equal(fn([bp.tensor(a), bp.tensor(b)], d).data, ref([a, b], axis=d))
        with pytest.raises(TypeError, match="not both"):
            fn([bp.tensor(a), bp.tensor(b)], dim=1, axis=1)
    np.testing.assert_array_equal(bp.cumsum(bp.tensor(a), dim=1).data, np.cumsum(a, axis=1))
    np.testing.assert_array_equal(bp.tensor(a).cumsum(axis=0).data, np.cumsum(a, axis=0))


def test_sum_mean_take_dtype():
    x = bp.tensor(np.arange(6).reshape(2, 3))
    assert bp.sum(x, dim=0, dtype=bp.float64).dtype == np.float64
    assert bp.mean(x.double(), dim=1).data.tolist() == [1.0, 4.0]


# ---------------------------------------------------------------- norm with every p


def _numpy_norm(x, p, axis, keep):
    a = np.abs(x)
    if p == math.inf:
        return a.max(axis=axis, keepdims=keep)
    if p == -math.inf:
        return a.min(axis=axis, keepdims=keep)
    if p == 0:
        return (x != 0).sum(axis=axis, keepdims=keep).astype(float)
    return (a**p).sum(axis=axis, keepdims=keep) ** (1 / p)


ORDERS = [1, 2, 3, 0.5, 1.5, -1, math.inf, -math.inf, 0]


@pytest.mark.parametrize("p", ORDERS)
@SETTINGS
@given(shape=shapes, seed=seeds, data=st.data())
def test_norm_every_p_value_and_gradient(p, shape, seed, data):
    x = values(shape, seed)
    x = np.sign(x) * (0.5 + 0.75 * np.abs(x))  # |x| in [0.5, 2]: away from the kink at 0 of p < 1
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    keep = data.draw(st.booleans())
    want = _numpy_norm(x, p, axis, keep)
    np.testing.assert_allclose(bp.norm(bp.tensor(x), p=p, dim=axis, keepdim=keep).data, want, rtol=1e-12)
    np.testing.assert_allclose(bp.tensor(x).norm(p, axis=axis, keepdims=keep).data, want, rtol=1e-12)
    w = np.random.default_rng(seed + 2).standard_normal(np.shape(want))
    if p == 0:  # a count: piecewise constant, gradient 0 everywhere
        t = bp.tensor(x, requires_grad=True)
        (bp.norm(t, p=0, dim=axis, keepdim=keep) * w).sum().backward()
        np.testing.assert_array_equal(t.grad, np.zeros_like(x))
    else:
        check(lambda t: (bp.norm(t, p=p, dim=axis, keepdim=keep) * w).sum(), x)


def test_norm_default_is_frobenius_and_accepts_fro_and_a_tuple_of_dims():
    x = values((2, 3, 4), 9)
    assert bp.norm(bp.tensor(x)).item() == pytest.approx(np.sqrt((x * x).sum()), rel=1e-12)
    np.testing.assert_allclose(bp.norm(bp.tensor(x), p="fro", dim=(1, 2)).data, np.sqrt((x * x).sum(axis=(1, 2))))
    np.testing.assert_allclose(bp.norm(bp.tensor(x), p=3, dim=(0, 2), keepdim=True).data,
                               _numpy_norm(x, 3, (0, 2), True))
    with pytest.raises(ValueError, match="nuc"):
        bp.norm(bp.tensor(x), p="nuc")


@pytest.mark.parametrize("p", [2, "fro", 1, 3, 0.5, math.inf, -math.inf, -1])
def test_norm_gradient_at_the_zero_vector_is_zero_as_pytorch(p):
    z = bp.tensor(np.zeros((2, 3)), requires_grad=True)
    bp.norm(z, p=p, dim=1).sum().backward()
    np.testing.assert_array_equal(z.grad, np.zeros((2, 3)))


def test_norm_inf_ties_share_the_gradient_as_pytorch():
    x = bp.tensor([3.0, -3.0, 1.0], requires_grad=True)
    bp.norm(x, p=math.inf).backward()
    np.testing.assert_array_equal(x.grad, [0.5, -0.5, 0.0])
    y = bp.tensor([3.0, -1.0, 1.0], requires_grad=True)
    bp.norm(y, p=-math.inf).backward()
    np.testing.assert_array_equal(y.grad, [0.0, -0.5, 0.5])
    # an entry that is 0 gets no gradient, even for p < 1 where |x|^(p-1) blows up
    v = bp.tensor([3.0, -3.0, 0.0, 1.0], requires_grad=True)
    bp.norm(v, p=0.5).backward()
    assert v.grad[2] == 0.0 and np.isfinite(v.grad).all()


# ---------------------------------------------------------------- F.pad with every mode, negative widths crop

NUMPY_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def numpy_pad(x, pad, mode, value=0.0):
    """PyTorch's F.pad from numpy: pairs for the last dims first; a negative width crops (for circular,
    before wrapping), a positive one pads with np.pad's matching mode."""
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "circular":
        crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(x.shape, widths, strict=True))
        return np.pad(x[crop], [(max(b, 0), max(a, 0)) for b, a in widths], mode="wrap")
    grown = np.pad(x, [(max(b, 0), max(a, 0)) for b, a in widths], mode=NUMPY_MODES[mode],
                   **({"constant_values": value} if mode == "constant" else {}))
    crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(grown.shape, widths, strict=True))
    return grown[crop]


@st.composite
def pad_cases(draw):
    mode = draw(st.sampled_from(sorted(NUMPY_MODES)))
    pairs = draw(st.integers(1, 3))
    ndim = pairs + draw(st.integers(0 if mode == "constant" else 1, 2))
    shape = tuple(draw(st.integers(2, 4)) for _ in range(ndim))
    pad = []
    for i in range(pairs):
        n = shape[ndim - 1 - i]
        limit = n - 1 if mode in ("reflect", "circular") else 3
        before = draw(st.integers(-1, limit))
        after = draw(st.integers(-1, limit))
        kept = n + min(before, 0) + min(after, 0)
        if kept < 1 or (mode == "circular" and max(before, after) > kept):  # nothing left, or too little to wrap
            before, after = max(before, 0), max(after, 0)
        pad += [before, after]
    return mode, shape, tuple(pad)


@settings(max_examples=60, deadline=None)
@given(case=pad_cases(), seed=seeds)
def test_pad_every_mode_against_numpy_and_gradcheck(case, seed):
    mode, shape, pad = case
    x = values(shape, seed)
    kw = {"value": 1.5} if mode == "constant" else {}
    want = numpy_pad(x, pad, mode, **kw)
    got = F.pad(bp.tensor(x), pad, mode=mode, **kw)
    np.testing.assert_array_equal(got.data, want)
    w = np.random.default_rng(seed + 3).standard_normal(want.shape)
    check(lambda t: (F.pad(t, pad, mode=mode, **kw) * w).sum(), x)


def test_pad_reflect_gradient_adds_every_copy_and_pad_refuses_what_pytorch_refuses():
    x = bp.tensor([[[0.0, 1.0, 2.0, 3.0]]], requires_grad=True)
    y = F.pad(x, (2, 1), mode="reflect")
    assert y.data.tolist() == [[[2.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0]]]
    y.sum().backward()
    assert x.grad.tolist() == [[[1.0, 2.0, 3.0, 1.0]]]  # 1 appears twice, 2 three times
    assert F.pad(x, (-1, -1)).data.tolist() == [[[1.0, 2.0]]]  # negative widths crop
    assert F.pad(x, (1, 1), mode="circular").data.tolist() == [[[3.0, 0.0, 1.0, 2.0, 3.0, 0.0]]]
    assert F.pad(x, (2, 0), mode="replicate").data.tolist() == [[[0.0, 0.0, 0.0, 1.0, 2.0, 3.0]]]
    with pytest.raises(bp.ShapeError, match="smaller than the dim"):
        F.pad(x, (4, 0), mode="reflect")
    with pytest.raises(bp.ShapeError, match="pads the last 2 dims of an input with 3 or 4 dims"):
        F.pad(bp.tensor(np.zeros((2, 3))), (1, 1, 1, 1), mode="replicate")
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="symmetric")


# ---------------------------------------------------------------- einsum: '...' and the implicit output


@st.composite
def einsum_cases(draw):
    """An equation with '...' and/or without '->', and operand shapes that fit it (broadcast size-1 dims too)."""
    batch = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    i, j, k = (draw(st.integers(1, 3)) for _ in range(3))

    def thinned(shape):  # each batch dim possibly 1 (broadcast) or dropped from the left (aligned on the right)
        drop = draw(st.integers(0, len(shape)))
        return tuple(1 if draw(st.booleans()) else n for n in shape[drop:])

    forms = [
        ("...ij,...jk", [(*thinned(batch), i, j), (*thinned(batch), j, k)]),
        ("...ij,...jk->...ik", [(*batch, i, j), (*thinned(batch), j, k)]),
        ("...i->...", [(*batch, i)]),
        ("i...->...i", [(i, *batch)]),
        ("ij,jk", [(i, j), (j, k)]),
        ("ba", [(i, j)]),
        ("ij,kj", [(i, j), (k, j)]),
        ("Ab,bC", [(i, j), (j, k)]),
        ("i,i", [(i,), (i,)]),
        ("bi,bj->...", [(i, j), (i, k)]),
        ("...ij->...", [(*batch, i, j)]),
        ("ii->i", [(i, i)]),  # a diagonal
        ("ii", [(i, i)]),  # the trace
        ("bii->b", [(j, i, i)]),  # a batch of traces
        ("iij,jk->ik", [(i, i, j), (j, k)]),
        ("...ii->...i", [(*batch, i, i)]),
    ]
    return draw(st.sampled_from(forms))


@settings(max_examples=60, deadline=None)
@given(case=einsum_cases(), seed=seeds)
def test_einsum_ellipsis_and_implicit_output_as_numpy(case, seed):
    equation, shapes = case
    arrays = [values(shape, seed + n) for n, shape in enumerate(shapes)]
    want = np.einsum(equation, *arrays)
    got = bp.einsum(equation, *[bp.tensor(a) for a in arrays])
    assert got.shape == want.shape
    np.testing.assert_allclose(got.data, want, rtol=1e-12, atol=1e-12)
    w = np.random.default_rng(seed + 9).standard_normal(want.shape)
    report = bp.gradcheck(lambda *ts: (bp.einsum(equation, *ts) * w).sum(), *arrays)
    assert report, str(report)


def test_einsum_implicit_order_and_list_operands():
    a, b = values((2, 3), 1), values((3, 4), 2)
    assert bp.einsum("ba", bp.tensor(a)).shape == (3, 2)  # letters used once, in alphabetical order
    assert bp.einsum("aB", bp.tensor(a)).shape == (3, 2)  # capitals sort first, as numpy and torch
    np.testing.assert_allclose(bp.einsum("ij,jk", [bp.tensor(a), bp.tensor(b)]).data, a @ b)
    with pytest.raises(bp.ShapeError, match=r"names 3 dims but has shape \(2, 3\)"):
        bp.einsum("ijk->i", bp.tensor(a))
    with pytest.raises(ValueError, match="at most one"):
        bp.einsum("...i...", bp.tensor(a))
    m = bp.tensor(values((3, 3), 3), requires_grad=True)
    bp.einsum("ii", m).backward()  # d trace / dm = the identity
    np.testing.assert_array_equal(m.grad, np.eye(3))


def test_forward_mode_duals_read_the_same_dims_as_tensors():
    x = values((3, 4), 11)
    v = np.random.default_rng(12).standard_normal(x.shape)

    def fn(t):
        return (t.softmax(dim=1) * t.sum(dim=0, keepdim=True)).mean(dim=1) + t.max(1).values + t.var(1, False)

    value, tangent = bp.jvp(fn, [x], [v])
    np.testing.assert_allclose(value, fn(bp.tensor(x)).data, rtol=1e-12)
    t = bp.tensor(x, requires_grad=True)
    u = np.random.default_rng(13).standard_normal(value.shape)
    fn(t).backward(u)
    assert float((t.grad * v).sum()) == pytest.approx(float((u * tangent).sum()), rel=1e-10)
