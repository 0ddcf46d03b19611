"""The corners PyTorch users meet: NaN inputs, retain_grad() before an in-place op, reductions of
0-d and empty tensors, and in-place arithmetic that cannot keep the dtype."""

import math
import warnings

import numpy as np
import pytest

import bpcore as bp

F = bp.nn.functional
WITH_NAN = np.array([1.0, np.nan, -2.0])


def grad_of(fn, data=WITH_NAN):
    """fn's gradient at data, with every numpy warning turned into an error (a NaN must pass quietly)."""
    t = bp.tensor(np.array(data, dtype=np.float64), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn(t).backward()
    return t.grad


# elementwise ops whose derivative at NaN is NaN; the other entries keep their ordinary gradient
SMOOTH = {
    "exp": lambda t: t.exp(), "tanh": lambda t: t.tanh(), "sigmoid": lambda t: t.sigmoid(), "sin": lambda t: t.sin(),
    "erf": lambda t: t.erf(), "gelu": F.gelu, "softplus": F.softplus, "silu": F.silu, "mish": F.mish,
    "logsigmoid": F.logsigmoid, "softsign": F.softsign, "square": lambda t: t * t, "elu_below_0": F.elu,
}


@pytest.mark.parametrize("name", sorted(SMOOTH))
def test_gradient_at_nan_is_nan_and_quiet(name):
    grad = grad_of(lambda t: SMOOTH[name](t).sum())
    assert np.isnan(grad[1])
    assert np.isfinite(grad[[0, 2]]).all()


@pytest.mark.parametrize(
    "fn",
    [lambda t: t.softmax(0).sum(), lambda t: t.log_softmax(0).sum(), lambda t: t.logsumexp(), lambda t: t.norm(),
     lambda t: t.std(), lambda t: t.var(), lambda t: F.cross_entropy(t.reshape(1, 3), np.array([0])),
     lambda t: F.binary_cross_entropy_with_logits(t, np.ones(3))],
    ids=["softmax", "log_softmax", "logsumexp", "norm", "std", "var", "cross_entropy", "bce_with_logits"],
)
def test_reductions_over_a_nan_give_nan_gradients_quietly(fn):
    grad = grad_of(fn)
    assert np.isnan(grad[1])


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_of_a_nan_send_the_gradient_to_the_nan_as_pytorch(op):
    np.testing.assert_array_equal(grad_of(lambda t: getattr(t, op)()), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(grad_of(lambda t: getattr(t, op)(0).values), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(grad_of(lambda t: F.max_pool2d(t.reshape(1, 1, 1, 3), (1, 3)).sum()), [0, 1, 0])


# ---------------------------------------------------------------- retain_grad and in-place ops


def test_retain_grad_before_an_in_place_op_gives_the_gradient_of_the_new_value():
    a = bp.tensor([1.0, 2.0], requires_grad=True)
    x = a * 2
    x.retain_grad()
    x += 1  # x is now [3, 5]
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * np.array([3.0, 5.0]))  # d(sum x^2)/dx at the new x, as PyTorch
    np.testing.assert_array_equal(a.grad, 2 * 2 * np.array([3.0, 5.0]))
    b = bp.tensor([1.0, 2.0], requires_grad=True)
    y = b * 2
    y.retain_grad()
    y *= 3
    y.sum().backward()
    np.testing.assert_array_equal(y.grad, [1.0, 1.0])
    np.testing.assert_array_equal(b.grad, [6.0, 6.0])


# ---------------------------------------------------------------- 0-d and empty reductions


def quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("sum", lambda x, a: x.sum(axis=a)), ("mean", lambda x, a: np.full(np.sum(x, axis=a).shape, np.nan)),
     ("prod", lambda x, a: x.prod(axis=a)), ("var", lambda x, a: np.full(np.sum(x, axis=a).shape, np.nan)),
     ("std", lambda x, a: np.full(np.sum(x, axis=a).shape, np.nan)),
     ("logsumexp", lambda x, a: np.full(np.sum(x, axis=a).shape, -np.inf)),
     ("norm", lambda x, a: np.sqrt((x * x).sum(axis=a)))],
)
@pytest.mark.parametrize(("shape", "axis"), [((0,), None), ((0,), 0), ((0, 3), 0), ((0, 3), 1), ((3, 0), 1)])
def test_empty_reductions_give_pytorchs_values_and_an_empty_gradient(name, expected, shape, axis):
    x = np.zeros(shape)
    t = bp.tensor(x, requires_grad=True)
    y = quiet(lambda: getattr(bp, name)(t, dim=axis) if axis is not None else getattr(bp, name)(t))
    np.testing.assert_array_equal(y.data, expected(x, axis))
    quiet(lambda: y.sum().backward())
    assert t.grad.shape == shape


@pytest.mark.parametrize("dim", [None, 0, -1])
@pytest.mark.parametrize("name", ["sum", "mean", "prod", "logsumexp", "norm", "max", "min", "cumsum", "softmax"])
def test_a_0d_tensor_reduces_to_itself_with_gradient_one(name, dim):
    t = bp.tensor(1.5, requires_grad=True)
    fn = getattr(t, name)
    if dim is None and name not in ("cumsum", "softmax"):
        y = fn()
    else:
        y = fn(dim=0 if dim is None else dim)
    y = y.values if isinstance(y, tuple) else y
    assert y.shape == ()
    assert y.item() == (1.0 if name == "softmax" else 1.5)
    y.backward()
    assert t.grad == (0.0 if name == "softmax" else 1.0)


@pytest.mark.parametrize("op", ["max", "min", "argmax", "argmin"])
def test_max_min_argmax_of_nothing_raise_pytorchs_errors(op):
    empty = bp.tensor(np.zeros((0, 3)))
    with pytest.raises(IndexError, match=rf"{op}\(\): Expected reduction dim 0 to have non-zero size"):
        getattr(empty, op)(0)
    with pytest.raises(RuntimeError if op in ("max", "min") else IndexError,
                       match=rf"{op}\(\): Expected reduction dim to be specified for input.numel\(\) == 0"):
        getattr(empty, op)()
    along_1 = getattr(empty, op)(1)
    assert (along_1.values if op in ("max", "min") else along_1).shape == (0,)


def test_softmax_of_an_empty_dim_is_empty():
    y = quiet(lambda: F.softmax(bp.tensor(np.zeros((3, 0))), dim=1))
    assert y.shape == (3, 0)


# ---------------------------------------------------------------- in-place arithmetic that cannot keep the dtype


@pytest.mark.parametrize("symbol", ["+", "-", "*", "/"])
def test_int_tensor_in_place_with_a_float_raises_pytorchs_error(symbol):
    i = bp.tensor([1, 2])
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        exec(f"i {symbol}= 0.5")
    assert i.data.tolist() == [1, 2]  # unchanged
    if symbol == "/":
        with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
            i /= 2  # true division of integers gives floats
    else:
        exec(f"i {symbol}= 2")
        assert i.dtype == np.int64
    b = bp.tensor([True, False])
    with pytest.raises(RuntimeError, match="result type Long can't be cast to the desired output type Bool"):
        b += 1
    f = bp.tensor(np.ones(2, dtype=np.float32))
    f += bp.tensor([1, 2])  # an int into a float tensor is fine, and the dtype stays
    assert f.dtype == np.float32 and f.data.tolist() == [2.0, 3.0]
    assert math.isclose(bp.tensor([1.0]).__iadd__(0.5).item(), 1.5)
