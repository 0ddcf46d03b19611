"""Every primitive, as a table of derivatives.

Each primitive is a plain numpy function decorated with ``@primitive("name")``. It returns two
things: the forward value, and one vector-Jacobian product (VJP) per tensor input, written
right beside it. A VJP takes ``g = dL/d(output)`` and returns ``dL/d(input)``::

    @primitive("tanh")
    def tanh(x):
        y = np.tanh(x)
        return y, (lambda g: g * (1 - y * y),)      # d tanh(x)/dx = 1 - tanh(x)^2

The decorator (``Primitive.__call__``) does the bookkeeping once for all ops: it unwraps tensors,
records the graph only when some input requires grad, reduces broadcast gradients back to each
input's shape (in ``tensor.run_backward``) and turns shape mismatches into readable errors.
Arguments passed by keyword (``axis=``, ``keepdims=`` ...) are settings, never differentiated.

You can add your own op the same way: ``bp.primitive("name")`` on a function of numpy arrays.
"""

from __future__ import annotations

import math

import numpy as np

from bpcore.tensor import SWITCHES, ShapeError, Tensor, check_finite, user_site


class Primitive:
    """A differentiable op: ``forward(*arrays, **settings) -> (value, vjps)``."""

    def __init__(self, name: str, forward):
        self.name = name
        self.forward = forward
        self.__doc__ = forward.__doc__
        self.__name__ = forward.__name__
        self.__wrapped__ = forward

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"

    def __call__(self, *inputs, **settings) -> Tensor:
        arrays = []
        wanted = []  # positions of the inputs that need a gradient
        for i, x in enumerate(inputs):
            if isinstance(x, Tensor):
                arrays.append(x.data)
                if x.requires_grad:
                    wanted.append(i)
            else:
                arrays.append(x)
        try:
            if SWITCHES.anomaly:  # the anomaly error replaces numpy's warnings
                with np.errstate(all="ignore"):
                    value, vjps = self.forward(*arrays, **settings)
            else:
                value, vjps = self.forward(*arrays, **settings)
        except ShapeError:
            raise
        except ValueError as error:
            if "broadcast" not in str(error) and "shape" not in str(error):
                raise
            shapes = " and ".join(str(np.shape(a)) for a in arrays)
            raise ShapeError(f"{self.name}: cannot combine shapes {shapes} ({error})") from None
        if SWITCHES.anomaly:
            check_finite(value, "its value", self.name, inputs, user_site())
        out = Tensor(value)
        if wanted and SWITCHES.grad_enabled:
            out.requires_grad = True
            out.op = self.name
            out.inputs = inputs
            out._edges = [(i, inputs[i], vjps[i]) for i in wanted if vjps[i] is not None]
            out._primitive = self
            out._static = settings
            if SWITCHES.record_sites:
                out._site = user_site()
        return out


def primitive(name: str):
    """Decorator: turn ``forward(*arrays, **settings) -> (value, vjps)`` into a differentiable op."""

    def wrap(forward) -> Primitive:
        return Primitive(name, forward)

    return wrap


def _as_array(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


# ============================================================================ elementwise arithmetic
# Broadcasting is handled by the engine: each VJP below may return a gradient of the output's
# shape, and run_backward sums it back down to the input's shape.


@primitive("add")
def add(a, b):
    return a + b, (lambda g: g, lambda g: g)


@primitive("sub")
def sub(a, b):
    return a - b, (lambda g: g, lambda g: -g)


@primitive("mul")
def mul(a, b):
    return a * b, (lambda g: g * b, lambda g: g * a)


@primitive("div")
def div(a, b):
    return a / b, (lambda g: g / b, lambda g: -g * a / (b * b))


@primitive("pow")
def pow(a, b):
    """a ** b for tensor or constant a and b. d/da = b a^(b-1); d/db = a^b ln a (taken as 0 where a <= 0)."""
    y = a**b

    def d_base(g):
        return g * b * a ** (b - 1)

    def d_exponent(g):
        a_arr = np.asarray(a)
        log_a = np.log(np.where(a_arr > 0, a_arr, 1))
        return g * y * log_a

    return y, (d_base, d_exponent)


@primitive("neg")
def neg(a):
    return -a, (lambda g: -g,)


# ============================================================================ matrix product


def _swap_last(m):
    return np.swapaxes(m, -1, -2)


@primitive("matmul")
def matmul(a, b):
    """a @ b: matrix-matrix, matrix-vector, vector-matrix and batched (leading dims broadcast).

    For matrices, dL/da = g @ b.T and dL/db = a.T @ g. Vectors are treated as a one-row (a)
    or one-column (b) matrix, so the same two formulas serve every case.
    """
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        raise ShapeError(
            f"matmul: both operands need at least one dimension, got shapes {np.shape(a)} and {np.shape(b)}"
        )
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
        raise ShapeError(
            f"matmul: cannot multiply shapes {a.shape} and {b.shape}: the last dimension of the left "
            f"operand ({a.shape[-1]}) must equal the {'second-to-last' if b.ndim > 1 else 'only'} dimension "
            f"of the right one ({inner_b}). Did you mean to transpose one of them?"
        )
    y = a @ b
    a2 = a[None, :] if a.ndim == 1 else a  # (n,) -> (1, n)
    b2 = b[:, None] if b.ndim == 1 else b  # (n,) -> (n, 1)

    def as_matrix_grad(g):
        g2 = g
        if b.ndim == 1:
            g2 = g2[..., None]
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        return g2

    def d_a(g):
        da = as_matrix_grad(g) @ _swap_last(b2)
        return da[..., 0, :] if a.ndim == 1 else da

    def d_b(g):
        db = _swap_last(a2) @ as_matrix_grad(g)
        return db[..., 0] if b.ndim == 1 else db

    return y, (d_a, d_b)


# ============================================================================ elementwise functions


@primitive("exp")
def exp(x):
    y = np.exp(x)
    return y, (lambda g: g * y,)


@primitive("log")
def log(x):
    return np.log(x), (lambda g: g / x,)


@primitive("sqrt")
def sqrt(x):
    y = np.sqrt(x)
    return y, (lambda g: g / (2 * y),)


@primitive("abs")
def abs(x):
    """|x|; the derivative at 0 is taken as 0 (a kink: finite differences disagree there)."""
    return np.abs(x), (lambda g: g * np.sign(x),)


@primitive("tanh")
def tanh(x):
    y = np.tanh(x)
    return y, (lambda g: g * (1 - y * y),)


@primitive("sigmoid")
def sigmoid(x):
    """1 / (1 + e^-x), computed as (1 + tanh(x/2)) / 2, which never overflows. d/dx = y (1 - y)."""
    y = 0.5 * (1 + np.tanh(0.5 * x))
    return y, (lambda g: g * y * (1 - y),)


@primitive("relu")
def relu(x):
    """max(x, 0); the derivative at exactly 0 is taken as 0, as PyTorch does."""
    return np.maximum(x, 0), (lambda g: g * (x > 0),)


@primitive("leaky_relu")
def leaky_relu(x, negative_slope=0.01):
    slope = np.where(x > 0, 1, negative_slope).astype(x.dtype)
    return x * slope, (lambda g: g * slope,)


_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_erf = np.frompyfunc(math.erf, 1, 1)


@primitive("gelu")
def gelu(x, approximate="none"):
    """x Phi(x), Phi the standard normal CDF. approximate="tanh" uses the tanh formula instead.

    Exact: d/dx = Phi(x) + x phi(x), phi the normal density.
    """
    if approximate == "none":
        cdf = (0.5 * (1 + np.asarray(_erf(x / _SQRT_2), dtype=x.dtype))).astype(x.dtype)
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        return x * cdf, (lambda g: g * (cdf + x * pdf),)
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        t = np.tanh(inner)
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        return 0.5 * x * (1 + t), (lambda g: g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner),)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


@primitive("clip")
def clip(x, min=None, max=None):
    """Clamp into [min, max]; the gradient passes where the value was inside (bounds included)."""
    inside = np.ones(x.shape, dtype=bool)
    if min is not None:
        inside &= x >= min
    if max is not None:
        inside &= x <= max
    return np.clip(x, min, max), (lambda g: g * inside,)


@primitive("cast")
def cast(x, dtype=np.float64):
    return x.astype(dtype), (lambda g: g.astype(x.dtype),)


# ============================================================================ softmax family


@primitive("softmax")
def softmax(x, axis=-1):
    """exp(x_i) / sum_j exp(x_j), shifted by the max so exp never overflows.

    VJP: s * (g - sum(g * s)): the Jacobian diag(s) - s s^T applied without building it.
    """
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    s = e / e.sum(axis=axis, keepdims=True)
    return s, (lambda g: s * (g - (g * s).sum(axis=axis, keepdims=True)),)


@primitive("log_softmax")
def log_softmax(x, axis=-1):
    """x_i - logsumexp(x), stable. VJP: g - softmax(x) * sum(g)."""
    shifted = x - x.max(axis=axis, keepdims=True)
    y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return y, (lambda g: g - np.exp(y) * g.sum(axis=axis, keepdims=True),)


# ============================================================================ reductions


def _expand_to(g, shape, axis, keepdims):
    """Put the reduced axes back (as size 1) so g broadcasts against the input again."""
    if axis is not None and not keepdims:
        axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
        axes = tuple(ax % len(shape) for ax in axes)
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def _count(shape, axis):
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return math.prod(shape[ax] for ax in axes)


@primitive("sum")
def sum(x, axis=None, keepdims=False):
    """Each input element adds to the sum with weight 1: its gradient is g, copied back out."""
    return x.sum(axis=axis, keepdims=keepdims), (lambda g: _expand_to(g, x.shape, axis, keepdims),)


@primitive("mean")
def mean(x, axis=None, keepdims=False):
    n = _count(x.shape, axis)
    return x.mean(axis=axis, keepdims=keepdims), (lambda g: _expand_to(g / n, x.shape, axis, keepdims),)


def _extreme(x, reduce, axis, keepdims):
    y = reduce(x, axis=axis, keepdims=keepdims)
    y_kept = y if keepdims or axis is None else np.expand_dims(y, axis)
    winners = (x == y_kept).astype(x.dtype)
    share = winners / winners.sum(axis=axis, keepdims=True)  # ties split the gradient evenly

    def vjp(g):
        return _expand_to(g, x.shape, axis, keepdims) * share

    return y, (vjp,)


@primitive("max")
def max(x, axis=None, keepdims=False):
    """The gradient goes to the element(s) that won; the others did not affect the result."""
    return _extreme(x, np.max, axis, keepdims)


@primitive("min")
def min(x, axis=None, keepdims=False):
    return _extreme(x, np.min, axis, keepdims)


def var(x, axis=None, keepdims=False, unbiased=False):
    """Variance, composed from primitives (mean, sub, mul), so its gradient needs no new rule."""
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64))
    centred = x - mean(x, axis=axis, keepdims=True)
    n = _count(x.shape, axis)
    return sum(centred * centred, axis=axis, keepdims=keepdims) / (n - 1 if unbiased else n)


# ============================================================================ shape and indexing


@primitive("reshape")
def reshape(x, shape=()):
    try:
        y = x.reshape(shape)
    except ValueError:
        raise ShapeError(
            f"reshape: cannot reshape {x.shape} ({x.size} elements) into {tuple(shape)}"
        ) from None
    return y, (lambda g: g.reshape(x.shape),)


@primitive("transpose")
def transpose(x, axes=None):
    """Permute axes (reverse them when axes is None). VJP: the inverse permutation."""
    inverse = None if axes is None else tuple(np.argsort(axes))
    return x.transpose(axes), (lambda g: g.transpose(inverse),)


def _is_basic_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, int | slice | type(None)) or p is Ellipsis for p in parts)


@primitive("getitem")
def _getitem(x, index=None):
    """x[index]. Slices scatter g back into place; integer arrays add it (repeated indices accumulate)."""
    y = x[index]

    def vjp(g):
        gx = np.zeros_like(x, dtype=g.dtype)
        if _is_basic_index(index):
            gx[index] = g
        else:
            np.add.at(gx, index, g)
        return gx

    return y, (vjp,)


def _split_vjp(axis, start, stop, ndim):
    selector = [slice(None)] * ndim
    selector[axis] = slice(start, stop)
    selector = tuple(selector)
    return lambda g: g[selector]


@primitive("concat")
def _concat(*xs, axis=0):
    try:
        y = np.concatenate(xs, axis=axis)
    except ValueError:
        shapes = ", ".join(str(x.shape) for x in xs)
        raise ShapeError(f"concat: all shapes must agree except along axis {axis}, got {shapes}") from None
    ax = axis % y.ndim
    bounds = np.cumsum([0] + [x.shape[ax] for x in xs])
    return y, tuple(_split_vjp(ax, bounds[i], bounds[i + 1], y.ndim) for i in range(len(xs)))


@primitive("stack")
def _stack(*xs, axis=0):
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise ShapeError(f"stack: all tensors need the same shape, got {', '.join(str(x.shape) for x in xs)}")
    y = np.stack(xs, axis=axis)
    ax = axis % y.ndim
    return y, tuple((lambda g, i=i: np.take(g, i, axis=ax)) for i in range(len(xs)))


@primitive("where")
def _where(a, b, condition=None):
    return np.where(condition, a, b), (
        lambda g: np.where(condition, g, 0),
        lambda g: np.where(condition, 0, g),
    )


def concat(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis. Each input's gradient is its slice of g."""
    if not tensors:
        raise ValueError("concat needs at least one tensor")
    return _concat(*tensors, axis=axis)


def stack(tensors, axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis. Each input's gradient is its layer of g."""
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    return _stack(*tensors, axis=axis)


def where(condition, a, b) -> Tensor:
    """Pick from ``a`` where ``condition`` holds, else from ``b``; the gradient follows the pick."""
    return _where(a, b, condition=np.asarray(_as_array(condition), dtype=bool))


# tensors (or their data) used as indices are plain integer arrays
def _index_data(index):
    if isinstance(index, tuple):
        return tuple(_index_data(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(x, index) -> Tensor:
    """x[index] with slices, integers, integer arrays (or tensors of them) and pairs of index arrays."""
    return _getitem(x, index=_index_data(index))


# -- Tensor's operators and methods ----------------------------------------------------
# Each is a thin call into a primitive above. They are defined here and attached to Tensor, so
# the dependency runs one way: ops imports tensor, tensor never imports ops.


class _TensorMethods:
    """Operators and methods that ``Tensor`` gets from this module (``x + y``, ``x.sum()``, ``x.T`` ...)."""

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __pow__(self, other):
        return pow(self, other)

    def __rpow__(self, other):
        return pow(other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return neg(self)

    def __getitem__(self, index):
        return getitem(self, index)

    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def sqrt(self):
        return sqrt(self)

    def abs(self):
        return abs(self)

    def tanh(self):
        return tanh(self)

    def sigmoid(self):
        return sigmoid(self)

    def relu(self):
        return relu(self)

    def leaky_relu(self, negative_slope: float = 0.01):
        return leaky_relu(self, negative_slope=negative_slope)

    def gelu(self, approximate: str = "none"):
        return gelu(self, approximate=approximate)

    def softmax(self, axis: int = -1):
        return softmax(self, axis=axis)

    def log_softmax(self, axis: int = -1):
        return log_softmax(self, axis=axis)

    def sum(self, axis=None, keepdims: bool = False):
        return sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return mean(self, axis=axis, keepdims=keepdims)

    def var(self, axis=None, keepdims: bool = False, unbiased: bool = False):
        return var(self, axis=axis, keepdims=keepdims, unbiased=unbiased)

    def max(self, axis=None, keepdims: bool = False):
        return max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims: bool = False):
        return min(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return reshape(self, shape=shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], tuple | list):
            axes = tuple(axes[0])
        return transpose(self, axes=axes or None)

    @property
    def T(self):
        return transpose(self, axes=None)

    def clip(self, min=None, max=None):
        return clip(self, min=min, max=max)

    def astype(self, dtype):
        return cast(self, dtype=np.dtype(dtype))


for _name, _member in vars(_TensorMethods).items():
    if _name not in ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__"):
        setattr(Tensor, _name, _member)
del _name, _member


__all__ = [
    "Primitive",
    "abs",
    "add",
    "cast",
    "clip",
    "concat",
    "div",
    "exp",
    "gelu",
    "getitem",
    "leaky_relu",
    "log",
    "log_softmax",
    "matmul",
    "max",
    "mean",
    "min",
    "mul",
    "neg",
    "pow",
    "primitive",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "sqrt",
    "stack",
    "sub",
    "sum",
    "tanh",
    "transpose",
    "var",
    "where",
]
