"""Every primitive, as a table of derivatives.

Each primitive is a plain numpy function decorated with ``@primitive("name")``. It returns two
things: the forward value, and one vector-Jacobian product (VJP) per tensor input, written
right beside it. A VJP takes ``g = dL/d(output)`` and returns ``dL/d(input)``::

    @primitive("tanh")
    def tanh(x):
        y = np.tanh(x)
        return y, (lambda g: g * (1 - y * y),)      # d tanh(x)/dx = 1 - tanh(x)^2

The common ops below (arithmetic, matmul, the elementwise functions, softmax, sum, mean, reshape,
transpose and indexing) write the same rule the other way round: the VJPs go in the decorator, as
functions of ``g`` and what the forward saved, and the forward returns the value and those
saved arrays::

    @primitive("tanh", vjps=(lambda g, y: g * (1 - y * y),))
    def tanh(x):
        y = np.tanh(x)
        return y, (y,)

The two mean the same. The second is cheaper to record: a closure is three objects made for one
node (a function, its cell and their tuple) that Python's cyclic garbage collector must scan again
and again while the graph lives; a tuple of arrays it stops tracking at its first pass. A recorded
op then leaves it two objects (the output tensor and the tuple of its inputs) instead of seven
(tests/test_graph_memory.py), so each full collection of a big graph has far less to rescan.

The decorator (``Primitive.__call__``) does the bookkeeping once for all ops: it unwraps tensors,
records the graph only when some input requires grad, reduces broadcast gradients back to each
input's shape (in ``tensor.run_backward``) and turns shape mismatches into readable errors.

A VJP for an input of which the op reads one slice may return ``tensor.SliceGrad(index, value)``,
"``value`` is the gradient of ``x[index]``, zero elsewhere": backward then adds it into the input's
gradient in place instead of the VJP building a full array of zeros (the LSTM and GRU cells reading
step t of a sequence do this).
Arguments passed by keyword (``axis=``, ``keepdims=`` ...) are settings, never differentiated.

You can add your own op the same way: ``bp.primitive("name")`` on a function of numpy arrays.

The rule a VJP follows: never change ``g`` in place (other VJPs read it too), and never change an
array after returning it. Backward keeps a returned array as a leaf's ``.grad`` without copying it
when nothing else references it (a fresh result such as ``g * y``); ``g`` itself, a view of it, or
an array the op saved are still referenced elsewhere, so those are copied (``tensor._adopt_or_copy``).
"""

from __future__ import annotations

import builtins
import math
import string

import numpy as np

from bpcore.tensor import SWITCHES, ShapeError, Tensor, check_finite, mark_changed, user_site


class Primitive:
    """A differentiable op: ``forward(*arrays, **settings) -> (value, vjps)``.

    With ``vjps`` given (one function of ``(g, *saved)`` per input, or None for an input with no
    gradient), the forward returns ``(value, saved)`` instead: the arrays those VJPs read.
    """

    def __init__(self, name: str, forward, vjps: tuple | None = None):
        self.name = name
        self.forward = forward
        self.vjps = None if vjps is None else tuple(vjps)
        self._every_input = vjps is not None and None not in self.vjps  # every input has a gradient
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
                    value, saved = self.forward(*arrays, **settings)
            else:
                value, saved = self.forward(*arrays, **settings)
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
            out._epoch = SWITCHES.inplace_epoch
            out.op = self.name
            out.inputs = inputs
            rules = self.vjps
            if rules is None:  # one closure per input: keep only those an input needing a gradient uses
                if len(wanted) < len(saved):
                    saved = tuple(vjp if i in wanted else None for i, vjp in enumerate(saved))
                positions = tuple(i for i in wanted if saved[i] is not None)
            else:
                positions = tuple(wanted) if self._every_input else tuple(i for i in wanted if rules[i])
                out._vjps = rules
            out._grad_inputs = _POSITIONS.setdefault(positions, positions)
            out._saved = saved
            out._primitive = self
            out._static = settings or None
            if SWITCHES.record_sites:
                out._site = user_site()
        if SWITCHES.tracer is not None:  # bp.compile is recording this call
            SWITCHES.tracer.op(self, inputs, settings, out)
        return out


# The positions of the inputs that get a gradient, one shared tuple per pattern ((0,), (0, 1) ...): a
# node keeps no tuple of its own, and the collector's full passes have one object less to reach per node.
_POSITIONS: dict[tuple[int, ...], tuple[int, ...]] = {}


def primitive(name: str, vjps: tuple | None = None):
    """Decorator: turn ``forward(*arrays, **settings) -> (value, vjps)`` into a differentiable op.

    Or, with ``vjps=(d_first, d_second, ...)`` (functions of ``(g, *saved)``), turn
    ``forward(*arrays, **settings) -> (value, saved)`` into one: see the module docstring.
    """

    def wrap(forward) -> Primitive:
        return Primitive(name, forward, vjps)

    return wrap


def _as_array(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


# ============================================================================ elementwise arithmetic
# Broadcasting is handled by the engine: each VJP below may return a gradient of the output's
# shape, and run_backward sums it back down to the input's shape.


@primitive("add", vjps=(lambda g: g, lambda g: g))
def add(a, b):
    return a + b, ()


@primitive("sub", vjps=(lambda g: g, lambda g: -g))
def sub(a, b):
    return a - b, ()


@primitive("mul", vjps=(lambda g, a, b: g * b, lambda g, a, b: g * a))
def mul(a, b):
    return a * b, (a, b)


@primitive("div", vjps=(lambda g, a, b: g / b, lambda g, a, b: -g * a / (b * b)))
def div(a, b):
    return a / b, (a, b)


def _pow_d_base(g, a, b, y):
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 where b == 0: that term is 0
        return np.where(np.asarray(b) == 0, 0.0, g * b * a ** (b - 1))


def _pow_d_exponent(g, a, b, y):
    a_arr = np.asarray(a)
    log_a = np.log(np.where(a_arr > 0, a_arr, 1))
    return g * y * log_a


@primitive("pow", vjps=(_pow_d_base, _pow_d_exponent))
def pow(a, b):
    """a ** b for tensor or constant a and b. d/da = b a^(b-1); d/db = a^b ln a (taken as 0 where a <= 0)."""
    y = a**b
    return y, (a, b, y)


@primitive("neg", vjps=(lambda g: -g,))
def neg(a):
    return -a, ()


# ============================================================================ matrix product


def _swap_last(m):
    return np.swapaxes(m, -1, -2)


def _as_matrix_grad(g, a, b):
    g2 = g
    if b.ndim == 1:
        g2 = g2[..., None]
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    return g2


def _matmul_d_a(g, a, b):
    b2 = b[:, None] if b.ndim == 1 else b  # (n,) -> (n, 1)
    da = _as_matrix_grad(g, a, b) @ _swap_last(b2)
    return da[..., 0, :] if a.ndim == 1 else da


def _matmul_d_b(g, a, b):
    a2 = a[None, :] if a.ndim == 1 else a  # (n,) -> (1, n)
    db = _swap_last(a2) @ _as_matrix_grad(g, a, b)
    return db[..., 0] if b.ndim == 1 else db


@primitive("matmul", vjps=(_matmul_d_a, _matmul_d_b))
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
    return a @ b, (a, b)


# ============================================================================ elementwise functions


@primitive("exp", vjps=(lambda g, y: g * y,))
def exp(x):
    y = np.exp(x)
    return y, (y,)


@primitive("log", vjps=(lambda g, x: g / x,))
def log(x):
    return np.log(x), (x,)


@primitive("sqrt", vjps=(lambda g, y: g / (2 * y),))
def sqrt(x):
    y = np.sqrt(x)
    return y, (y,)


@primitive("abs", vjps=(lambda g, x: g * np.sign(x),))
def abs(x):
    """|x|; the derivative at 0 is taken as 0 (a kink: finite differences disagree there)."""
    return np.abs(x), (x,)


@primitive("tanh", vjps=(lambda g, y: g * (1 - y * y),))
def tanh(x):
    y = np.tanh(x)
    return y, (y,)


@primitive("sigmoid", vjps=(lambda g, y: g * y * (1 - y),))
def sigmoid(x):
    """1 / (1 + e^-x), computed as (1 + tanh(x/2)) / 2, which never overflows. d/dx = y (1 - y)."""
    y = 0.5 * (1 + np.tanh(0.5 * x))
    return y, (y,)


@primitive("relu", vjps=(lambda g, x: g * (x > 0),))
def relu(x):
    """max(x, 0); the derivative at exactly 0 is taken as 0, as PyTorch does."""
    return np.maximum(x, 0), (x,)


@primitive("leaky_relu", vjps=(lambda g, slope: g * slope,))
def leaky_relu(x, negative_slope=0.01):
    slope = np.where(x > 0, 1, negative_slope).astype(x.dtype)
    return x * slope, (slope,)


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


@primitive("clip", vjps=(lambda g, inside: g * inside,))
def clip(x, min=None, max=None):
    """Clamp into [min, max]; the gradient passes where the value was inside (bounds included)."""
    inside = np.ones(x.shape, dtype=bool)
    if min is not None:
        inside &= x >= min
    if max is not None:
        inside &= x <= max
    return np.clip(x, min, max), (inside,)


@primitive("cast", vjps=(lambda g, dtype: g.astype(dtype),))
def cast(x, dtype=np.float64):
    return x.astype(dtype), (x.dtype,)


# ============================================================================ softmax family


@primitive("softmax", vjps=(lambda g, s, axis: s * (g - (g * s).sum(axis=axis, keepdims=True)),))
def _softmax(x, axis=-1):
    """exp(x_i) / sum_j exp(x_j), shifted by the max so exp never overflows.

    VJP: s * (g - sum(g * s)): the Jacobian diag(s) - s s^T applied without building it.
    An empty input gives an empty result, as in PyTorch (there is no max of nothing to shift by).
    """
    shifted = x - x.max(axis=axis, keepdims=True, initial=-np.inf)  # (initial: an empty x gives an empty s)
    e = np.exp(shifted)
    s = e / e.sum(axis=axis, keepdims=True)
    return s, (s, axis)


@primitive("log_softmax", vjps=(lambda g, y, axis: g - np.exp(y) * g.sum(axis=axis, keepdims=True),))
def _log_softmax(x, axis=-1):
    """x_i - logsumexp(x), stable. VJP: g - softmax(x) * sum(g). Empty in, empty out (as PyTorch)."""
    shifted = x - x.max(axis=axis, keepdims=True, initial=-np.inf)
    with np.errstate(divide="ignore"):  # the sum is >= 1 unless the axis is empty (log 0 = -inf, never used)
        y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return y, (y, axis)


def _dims(op: str, dim, keepdim, axis, keepdims):
    """PyTorch's ``dim=``/``keepdim=`` or numpy's ``axis=``/``keepdims=``, as the (axis, keepdims) to use."""
    if dim is not None and axis is not None:
        raise TypeError(f"{op}: give dim= (PyTorch) or axis= (numpy), not both (got dim={dim!r}, axis={axis!r})")
    axis = dim if axis is None else axis
    if isinstance(axis, list):
        axis = tuple(axis)
    if isinstance(axis, bool) or not (axis is None or isinstance(axis, int | np.integer | tuple)):
        raise TypeError(f"{op}: dim must be an int, a tuple of ints or None, got {axis!r}")
    return axis, bool(keepdim if keepdims is None else keepdims)


def _in_dtype(x, dtype):
    return x if dtype is None else _cast(x if isinstance(x, Tensor) else Tensor(np.asarray(x)), dtype)


def softmax(x, dim=None, *, axis=None, dtype=None) -> Tensor:
    """``F.softmax(x, dim=1)`` (or numpy's ``axis=``); the last dim when none is given."""
    axis, _ = _dims("softmax", dim, False, axis, None)
    return _softmax(_in_dtype(x, dtype), axis=-1 if axis is None else axis)


def log_softmax(x, dim=None, *, axis=None, dtype=None) -> Tensor:
    """``F.log_softmax(x, dim=1)`` (or numpy's ``axis=``); the last dim when none is given."""
    axis, _ = _dims("log_softmax", dim, False, axis, None)
    return _log_softmax(_in_dtype(x, dtype), axis=-1 if axis is None else axis)


# ============================================================================ reductions


def _expand_to(g, shape, axis, keepdims):
    """Put the reduced axes back (as size 1) so g broadcasts against the input again."""
    if axis is not None and not keepdims:
        axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
        axes = tuple(ax % len(shape) for ax in axes)
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, shape)


def _reduction_axis(x: np.ndarray, axis):
    """A 0-d tensor reduces along dim 0 or -1 as along nothing, as in PyTorch."""
    if axis is None or x.ndim:
        return axis
    for ax in (axis,) if np.ndim(axis) == 0 else tuple(axis):
        if ax not in (0, -1):
            raise IndexError(f"dim {ax} is out of range for a 0-d tensor (0 and -1 are allowed)")
    return None


def _count(shape, axis):
    if axis is None:
        return math.prod(shape)
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return math.prod(shape[ax] for ax in axes)


@primitive("sum", vjps=(_expand_to,))
def _sum(x, axis=None, keepdims=False):
    """Each input element adds to the sum with weight 1: its gradient is g, copied back out."""
    axis = _reduction_axis(x, axis)
    return x.sum(axis=axis, keepdims=keepdims), (x.shape, axis, keepdims)


def _mean_vjp(g, shape, axis, keepdims, n):
    with np.errstate(divide="ignore", invalid="ignore"):  # nothing to share the gradient among: empty anyway
        return _expand_to(g / n, shape, axis, keepdims)


@primitive("mean", vjps=(_mean_vjp,))
def _mean(x, axis=None, keepdims=False):
    axis = _reduction_axis(x, axis)
    n = _count(x.shape, axis)
    with np.errstate(invalid="ignore"):  # the mean of nothing is NaN, quietly, as in PyTorch
        y = x.sum(axis=axis, keepdims=keepdims) / n
    return y, (x.shape, axis, keepdims, n)


def sum(x, dim=None, keepdim: bool = False, *, axis=None, keepdims=None, dtype=None) -> Tensor:
    """``bp.sum(x, dim=1, keepdim=True)`` as torch.sum (or numpy's ``axis=``, ``keepdims=``); all dims if none."""
    axis, keep = _dims("sum", dim, keepdim, axis, keepdims)
    return _sum(_in_dtype(x, dtype), axis=axis, keepdims=keep)


def mean(x, dim=None, keepdim: bool = False, *, axis=None, keepdims=None, dtype=None) -> Tensor:
    """``bp.mean(x, dim=0)`` as torch.mean (or numpy's ``axis=``, ``keepdims=``); all dims if none."""
    axis, keep = _dims("mean", dim, keepdim, axis, keepdims)
    return _mean(_in_dtype(x, dtype), axis=axis, keepdims=keep)


def _need_values(x: np.ndarray, axis, op: str, no_dim_error=RuntimeError) -> None:
    """max/min/argmax/argmin of nothing has no answer: PyTorch's errors, instead of numpy's."""
    if axis is None and x.size == 0:
        raise no_dim_error(f"{op}(): Expected reduction dim to be specified for input.numel() == 0. "
                           "Specify the reduction dim with the 'dim' argument.")
    if axis is not None and x.ndim:
        for ax in (axis,) if np.ndim(axis) == 0 else tuple(axis):
            if x.shape[ax] == 0:
                raise IndexError(f"{op}(): Expected reduction dim {ax} to have non-zero size.")


def _extreme(x, reduce, axis, keepdims):
    axis = _reduction_axis(x, axis)
    _need_values(x, axis, reduce.__name__.lstrip("a"))
    y = reduce(x, axis=axis, keepdims=keepdims)
    y_kept = y if keepdims or axis is None else np.expand_dims(y, axis)
    winners = ((x == y_kept) | (np.isnan(x) & np.isnan(y_kept))).astype(x.dtype)  # a NaN wins, as in PyTorch
    with np.errstate(invalid="ignore"):  # an empty reduction has no winner (and no gradient to share)
        share = winners / winners.sum(axis=axis, keepdims=True)  # ties split the gradient evenly

    def vjp(g):
        return _expand_to(g, x.shape, axis, keepdims) * share

    return y, (vjp,)


@primitive("max")
def _max(x, axis=None, keepdims=False):
    """The gradient goes to the element(s) that won; the others did not affect the result."""
    return _extreme(x, np.max, axis, keepdims)


@primitive("min")
def _min(x, axis=None, keepdims=False):
    return _extreme(x, np.min, axis, keepdims)


def _correction(unbiased, correction) -> int:
    """PyTorch's rule: divide by n - correction; correction 1 (unbiased) unless told otherwise."""
    if correction is not None:
        return int(correction)
    return 1 if unbiased is None or unbiased else 0


def _unbiased_first(dim, unbiased):
    """``x.var(True)``: a lone bool is ``unbiased``, as in PyTorch's older signature."""
    if isinstance(dim, bool):
        if unbiased is not None:
            raise TypeError("var/std: unbiased given twice")
        return None, dim
    return dim, unbiased


def var(x, dim=None, unbiased=None, keepdim: bool = False, *, correction=None, axis=None, keepdims=None) -> Tensor:
    """Variance, dividing by n - 1 unless unbiased=False (or correction=0), as torch.var (numpy's default is n).

    ``var(x, dim, unbiased, keepdim)`` as in PyTorch; numpy's ``axis=``, ``keepdims=`` work too. Composed
    from primitives (mean, sub, mul), so its gradient needs no new rule.
    """
    dim, unbiased = _unbiased_first(dim, unbiased)
    axis, keepdims = _dims("var", dim, keepdim, axis, keepdims)
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float64))
    axis = _reduction_axis(x.data, axis)
    centred = x - mean(x, axis=axis, keepdims=True)
    n = _count(x.shape, axis)
    divisor = n - _correction(unbiased, correction)
    if divisor <= 0:  # too few values for this estimate: NaN, as in PyTorch
        return sum(centred * centred, axis=axis, keepdims=keepdims) * np.nan
    return sum(centred * centred, axis=axis, keepdims=keepdims) / divisor


# ============================================================================ shape and indexing


@primitive("reshape", vjps=(lambda g, shape: g.reshape(shape),))
def reshape(x, shape=()):
    try:
        y = x.reshape(shape)
    except ValueError:
        raise ShapeError(
            f"reshape: cannot reshape {x.shape} ({x.size} elements) into {tuple(shape)}"
        ) from None
    return y, (x.shape,)


def permutation(ndim: int, dims, op: str = "permute") -> tuple[int, ...]:
    """``dims`` as a permutation of ``range(ndim)``, negative dims counted from the end, checked."""
    dims = tuple(int(d) for d in dims)
    normalised = tuple(d + ndim if d < 0 else d for d in dims)
    if sorted(normalised) != list(range(ndim)):
        raise ShapeError(
            f"{op}: dims {dims} are not a permutation of the {ndim} dims of this tensor "
            f"(give each of 0..{ndim - 1}, or its negative, exactly once)"
        )
    return normalised


def swapped(ndim: int, dim0: int, dim1: int, op: str = "transpose") -> tuple[int, ...]:
    """The permutation that swaps ``dim0`` and ``dim1`` (PyTorch's transpose), checked."""
    bound = ndim or 1  # a 0-d tensor accepts dims 0 and -1, as in PyTorch
    for d in (dim0, dim1):
        if not -bound <= d < bound:
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dims")
    order = list(range(ndim))
    if ndim:
        a, b = dim0 % ndim, dim1 % ndim
        order[a], order[b] = order[b], order[a]
    return tuple(order)


@primitive("transpose", vjps=(lambda g, inverse: g.transpose(inverse),))
def _permute(x, axes=()):
    """Reorder the axes: y = x.transpose(axes), axes already checked. VJP: the inverse permutation."""
    return x.transpose(axes), (tuple(np.argsort(axes)),)


def permute(x, *dims) -> Tensor:
    """``x.permute(2, 0, 1)``: axis i of the result is axis dims[i] of x (as ``torch.permute``)."""
    if len(dims) == 1 and isinstance(dims[0], tuple | list):
        dims = tuple(dims[0])
    return _permute(x, axes=permutation(np.ndim(_as_array(x)), dims))


def transpose(x, dim0: int, dim1: int) -> Tensor:
    """Swap two dims, as ``torch.transpose(x, dim0, dim1)``; ``permute`` reorders them all."""
    return _permute(x, axes=swapped(np.ndim(_as_array(x)), dim0, dim1))


def _is_basic_index(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, int | slice | type(None)) or p is Ellipsis for p in parts)


def _getitem_vjp(g, x, index):
    gx = np.zeros_like(x, dtype=g.dtype)
    if _is_basic_index(index):
        gx[index] = g
    else:
        np.add.at(gx, index, g)
    return gx


@primitive("getitem", vjps=(_getitem_vjp,))
def _getitem(x, index=None):
    """x[index]. Slices scatter g back into place; integer arrays add it (repeated indices accumulate)."""
    return x[index], (x, index)


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


def concat(tensors, axis: int = 0, *, dim=None) -> Tensor:
    """Join tensors along an existing axis (``bp.cat(tensors, dim=0)`` too). Each input's gradient is its slice of g."""
    if not tensors:
        raise ValueError("concat needs at least one tensor")
    axis, _ = _dims("cat", dim, False, None if axis == 0 and dim is not None else axis, None)
    return _concat(*tensors, axis=axis)


cat = concat


def stack(tensors, axis: int = 0, *, dim=None) -> Tensor:
    """Join same-shaped tensors along a new axis. Each input's gradient is its layer of g."""
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    axis, _ = _dims("stack", dim, False, None if axis == 0 and dim is not None else axis, None)
    return _stack(*tensors, axis=axis)


def where(condition, a, b) -> Tensor:
    """Pick from ``a`` where ``condition`` holds, else from ``b``; the gradient follows the pick."""
    return _where(a, b, condition=np.array(_as_array(condition), dtype=bool))  # a copy: later edits can't reach it


# tensors (or their data) used as indices are plain integer arrays
# (copied, so an index tensor changed in place later cannot change what backward scatters into)
def _index_data(index):
    if isinstance(index, tuple):
        return tuple(_index_data(i) for i in index)
    if isinstance(index, Tensor):
        return index.data.copy()
    if isinstance(index, list | np.ndarray):
        return np.array(index)
    return index


def getitem(x, index) -> Tensor:
    """x[index] with slices, integers, integer arrays (or tensors of them) and pairs of index arrays.

    Slices and integers give a view of x's memory, as in PyTorch (``w[0].zero_()`` under ``no_grad``
    changes ``w``); numpy would return a copy for ``w[0]`` of a vector, so an Ellipsis is added.
    """
    index = _index_data(index)
    if _is_basic_index(index):
        parts = index if isinstance(index, tuple) else (index,)
        if not builtins.any(p is Ellipsis for p in parts):
            index = (*parts, Ellipsis)
    return _getitem(x, index=index)


# ============================================================================ more shapes: PyTorch's names


def _dim(ndim: int, dim: int, op: str, extra: int = 0) -> int:
    """``dim`` counted from the end when negative; ``extra`` widens the range (unsqueeze adds a dim)."""
    size = ndim + extra
    bound = size or 1  # a 0-d tensor accepts dims 0 and -1, as in PyTorch
    if not -bound <= dim < bound:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dims")
    return dim % size if size else 0


def view(x, *shape) -> Tensor:
    """``x.view(2, -1)``: a reshape (numpy copies only when it must; the gradient is the same)."""
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        shape = tuple(shape[0])
    return reshape(x, shape=shape)


def unsqueeze(x, dim: int) -> Tensor:
    """A new dim of size 1 at ``dim``: (3,) -> unsqueeze(0) -> (1, 3)."""
    data = _as_array(x)
    return reshape(x, shape=np.expand_dims(data, _dim(data.ndim, dim, "unsqueeze", extra=1)).shape)


def squeeze(x, dim=None) -> Tensor:
    """Drop dims of size 1 (all of them, or only ``dim`` if it has size 1, as in PyTorch)."""
    data = _as_array(x)
    if dim is None:
        shape = tuple(n for n in data.shape if n != 1)
    else:
        d = _dim(data.ndim, dim, "squeeze")
        shape = data.shape if data.ndim == 0 or data.shape[d] != 1 else data.shape[:d] + data.shape[d + 1 :]
    return reshape(x, shape=shape)


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim into one: (N, C, H, W) -> flatten(1) -> (N, C*H*W)."""
    data = _as_array(x)
    if data.ndim == 0:
        return reshape(x, shape=(1,))
    a, b = _dim(data.ndim, start_dim, "flatten"), _dim(data.ndim, end_dim, "flatten")
    if a > b:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, shape=(*data.shape[:a], math.prod(data.shape[a : b + 1]), *data.shape[b + 1 :]))


def unflatten(x, dim: int, sizes) -> Tensor:
    """Split one dim into several: (N, 12) -> unflatten(1, (3, 4)) -> (N, 3, 4)."""
    data = _as_array(x)
    d = _dim(data.ndim, dim, "unflatten")
    return reshape(x, shape=data.shape[:d] + tuple(sizes) + data.shape[d + 1 :])


@primitive("expand")
def _expand(x, shape=()):
    """Broadcast to ``shape`` without copying; the engine sums the gradient back to x's shape."""
    return np.broadcast_to(x, shape), (lambda g: g,)


def expand(x, *sizes) -> Tensor:
    """``x.expand(4, -1)``: size-1 dims stretched (-1 keeps a dim), as ``torch.Tensor.expand``."""
    if len(sizes) == 1 and isinstance(sizes[0], tuple | list):
        sizes = tuple(sizes[0])
    data = _as_array(x)
    lead = len(sizes) - data.ndim
    if lead < 0:
        raise ShapeError(f"expand: {len(sizes)} sizes given for a tensor with {data.ndim} dims {data.shape}")
    shape = tuple(data.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    return _expand(x, shape=shape)


@primitive("repeat")
def _repeat(x, reps=()):
    """Tile x: each copy's gradient comes back and the copies' gradients add."""
    y = np.tile(x, reps)
    shape = (1,) * (len(reps) - x.ndim) + x.shape

    def vjp(g):
        split = [n for pair in zip(reps, shape, strict=True) for n in pair]  # (rep0, n0, rep1, n1, ...)
        return g.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(x.shape)

    return y, (vjp,)


def repeat(x, *reps) -> Tensor:
    """``x.repeat(2, 3)``: copies along each dim, as ``torch.Tensor.repeat`` (numpy's tile)."""
    if len(reps) == 1 and isinstance(reps[0], tuple | list):
        reps = tuple(reps[0])
    if len(reps) < np.ndim(_as_array(x)):
        raise ShapeError(f"repeat: {len(reps)} counts given for a tensor with {np.ndim(_as_array(x))} dims")
    return _repeat(x, reps=tuple(reps))


@primitive("flip")
def _flip(x, axes=()):
    return np.flip(x, axes).copy(), (lambda g: np.flip(g, axes),)  # a copy, as torch.flip


def flip(x, dims) -> Tensor:
    """Reverse the order along ``dims``; the gradient is flipped back."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    data = _as_array(x)
    axes = tuple(_dim(data.ndim, d, "flip") for d in dims) if data.ndim else ()
    return _flip(x, axes=axes)


def split(x, split_size_or_sections, dim: int = 0) -> list[Tensor]:
    """Pieces of ``split_size`` along ``dim`` (the last may be shorter), or pieces of the given sizes."""
    data = _as_array(x)
    d = _dim(data.ndim, dim, "split")
    n = data.shape[d]
    if isinstance(split_size_or_sections, int):
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        if n % split_size_or_sections:
            sizes.append(n % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise ShapeError(f"split: sections {sizes} add up to {builtins.sum(sizes)}, but dim {dim} has size {n}")
    pieces, start = [], 0
    for size in sizes:
        index = (slice(None),) * d + (slice(start, start + size),)
        pieces.append(getitem(x, index))
        start += size
    return pieces


def chunk(x, chunks: int, dim: int = 0) -> list[Tensor]:
    """``chunks`` pieces along ``dim`` of size ceil(n / chunks), as ``torch.chunk``."""
    n = _as_array(x).shape[_dim(np.ndim(_as_array(x)), dim, "chunk")]
    return split(x, -(-n // chunks), dim)


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_sources(n: int, before: int, after: int, mode: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """For one dim of size n: the input index each output position reads, and whether it reads one at all.

    The output covers positions -before .. n + after - 1 of the input's axis (a negative width
    crops); a position outside [0, n) takes the value (constant), its mirror image without the edge
    (reflect), the edge (replicate) or, for circular, the other end of what the crop kept, as in PyTorch.
    """
    length = n + before + after
    if length < 0 or (length == 0 and mode != "constant"):
        raise ShapeError(f"pad: widths ({before}, {after}) on dim {dim} of size {n} leave {length} elements")
    if mode == "circular":  # crop first, then wrap what is left
        start, kept = builtins.max(-before, 0), n + builtins.min(before, 0) + builtins.min(after, 0)
        if kept <= 0 or builtins.max(before, after) > kept:
            raise ShapeError(f"pad: circular widths ({before}, {after}) may not exceed the dim they wrap (size "
                             f"{builtins.max(kept, 0)} after cropping, dim {dim}), as in PyTorch")
        j = np.arange(-builtins.max(before, 0), kept + builtins.max(after, 0))
        return start + j % kept, np.ones(j.shape, dtype=bool)
    if mode == "reflect" and builtins.max(before, after) >= n:
        raise ShapeError(f"pad: reflect widths must be smaller than the dim they mirror, as in PyTorch; got "
                         f"({before}, {after}) on dim {dim} of size {n}")
    j = np.arange(-before, n + after)
    inside = (j >= 0) & (j < n)
    if mode == "reflect":
        period = builtins.max(2 * (n - 1), 1)
        j = np.abs(j) % period
        j = np.where(j >= n, period - j, j)
    else:  # replicate reads the edge; constant reads anything there, the value replaces it
        j = np.clip(j, 0, n - 1)
    return j, inside if mode == "constant" else np.ones(j.shape, dtype=bool)


@primitive("pad")
def _pad(x, sources=(), reads=None, value=0.0):
    """y = x at the source index of each output position (value where it reads none). The VJP adds g back
    to the sources: a reflected or repeated element collects the gradient of every copy."""
    where = np.ix_(*sources)
    y = x[where]
    if reads is not None:
        y = np.where(reads, y, np.asarray(value, dtype=x.dtype))

    def vjp(g):
        gx = np.zeros_like(x, dtype=g.dtype)
        np.add.at(gx, where, g if reads is None else np.where(reads, g, 0))
        return gx

    return y, (vjp,)


def pad(x, pad, mode: str = "constant", value=None) -> Tensor:
    """``F.pad(x, (left, right, top, bottom, ...), mode="constant", value=0)``, as in PyTorch.

    Pairs pad the LAST dims first; a negative width crops. ``mode``: "constant" (any dims,
    filled with ``value``), "reflect", "replicate" or "circular" (the last 1 to 3 dims of an
    input with one or two more dims: (C, W) or (N, C, W) for one pair, and so on).
    """
    data = _as_array(x)
    pad = tuple(int(w) for w in pad)
    pairs = len(pad) // 2
    if len(pad) % 2 or pairs > data.ndim:
        raise ShapeError(f"pad: needs pairs (before, after) for at most {data.ndim} dims, got {pad}")
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {PAD_MODES}, got {mode!r}")
    if mode != "constant":
        if value not in (None, 0, 0.0):
            raise ValueError(f"pad: value= applies to mode='constant' only, got value={value!r} with mode={mode!r}")
        if pairs > 3 or data.ndim not in (pairs + 1, pairs + 2):
            raise ShapeError(f"pad: mode={mode!r} with {pairs} pair(s) pads the last {pairs} dims of an input with "
                             f"{pairs + 1} or {pairs + 2} dims (as in PyTorch), got shape {data.shape}")
    widths = [(0, 0)] * data.ndim
    for i in range(pairs):
        widths[data.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    sources, reads = [], np.ones((), dtype=bool)
    for d, (n, (before, after)) in enumerate(zip(data.shape, widths, strict=True)):
        index, inside = _pad_sources(n, before, after, mode, d) if (before, after) != (0, 0) else (
            np.arange(n), np.ones(n, dtype=bool))
        sources.append(index)
        reads = reads & inside.reshape((-1,) + (1,) * (data.ndim - 1 - d))
    fill = 0.0 if value is None else value
    return _pad(x, sources=tuple(sources), reads=None if reads.all() else reads, value=fill)


@primitive("tril")
def _tril(x, k=0):
    keep = np.tril(np.ones(x.shape[-2:], dtype=bool), k)
    return np.where(keep, x, 0), (lambda g: np.where(keep, g, 0),)


@primitive("triu")
def _triu(x, k=0):
    keep = np.triu(np.ones(x.shape[-2:], dtype=bool), k)
    return np.where(keep, x, 0), (lambda g: np.where(keep, g, 0),)


def tril(x, diagonal: int = 0) -> Tensor:
    """Keep the lower triangle of the last two dims (a causal mask): the gradient passes only there."""
    _need_matrix(x, "tril")
    return _tril(x, k=diagonal)


def triu(x, diagonal: int = 0) -> Tensor:
    _need_matrix(x, "triu")
    return _triu(x, k=diagonal)


def _need_matrix(x, op: str) -> None:
    if np.ndim(_as_array(x)) < 2:
        raise ShapeError(f"{op} needs at least 2 dims, got shape {np.shape(_as_array(x))}")


@primitive("masked_fill")
def _masked_fill(x, value, mask=None):
    """x with ``value`` where mask is True: the filled places get no gradient; a tensor value gets their sum."""
    y = np.where(mask, np.asarray(value, dtype=x.dtype), x)
    return y, (lambda g: np.where(mask, 0, g), lambda g: np.where(mask, g, 0))


def masked_fill(x, mask, value) -> Tensor:
    mask = np.array(mask.data if isinstance(mask, Tensor) else mask)  # a copy: later edits can't reach it
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: the mask must be boolean, got dtype {mask.dtype} (compare first: x > 0)")
    if isinstance(value, Tensor) and value.ndim:
        raise ShapeError(f"masked_fill: the value must be a number or a 0-d tensor, got shape {value.shape}")
    return _masked_fill(x, value, mask=mask)


@primitive("gather")
def _gather(x, index=None, axis=0):
    """y[i][j] = x[i][index[i][j]] along ``axis`` (y has index's shape); the VJP adds g back where each came from."""
    where = list(np.ix_(*[np.arange(n) for n in index.shape]))
    where[axis] = index
    where = tuple(where)

    def vjp(g):
        full = np.zeros_like(x, dtype=g.dtype)
        np.add.at(full, where, g)
        return full

    return x[where], (vjp,)


def gather(x, dim: int, index) -> Tensor:
    """``torch.gather(x, dim, index)``: pick one element per position of ``index`` along ``dim``."""
    index = np.asarray(index.data if isinstance(index, Tensor) else index)
    if not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"gather: the index must hold integers, got dtype {index.dtype}")
    data = _as_array(x)
    if index.ndim != data.ndim:
        raise ShapeError(f"gather: index has {index.ndim} dims but the tensor has {data.ndim} ({data.shape})")
    axis = _dim(data.ndim, dim, "gather")
    pairs = enumerate(zip(index.shape, data.shape, strict=True))
    if builtins.any(i > n for d, (i, n) in pairs if d != axis):
        raise ShapeError(f"gather: index {index.shape} may not be larger than {data.shape} but along dim {dim}")
    if index.size and (index.min() < 0 or index.max() >= (data.shape[axis] if data.ndim else 1)):
        raise IndexError(f"gather: index values must lie in [0, {data.shape[axis] - 1 if data.ndim else 0}], "
                         f"got {index.min()} to {index.max()}")
    return _gather(x, index=np.array(index), axis=axis)


@primitive("cumsum")
def _cumsum(x, axis=0):
    """Each input adds to every later partial sum: its gradient is the sum of g from there to the end."""
    if x.ndim == 0:  # a 0-d tensor stays 0-d, as in PyTorch (numpy would flatten it)
        return x.copy(), (lambda g: g,)
    return np.cumsum(x, axis=axis), (lambda g: np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis),)


def cumsum(x, dim=None, *, axis=None) -> Tensor:
    """Running sums along ``dim`` (required, as in torch.cumsum; numpy's ``axis=`` too)."""
    axis, _ = _dims("cumsum", dim, False, axis, None)
    if not isinstance(axis, int | np.integer):
        raise TypeError(f"cumsum: give the dim to sum along (one int), got {axis!r}")
    return _cumsum(x, axis=_dim(np.ndim(_as_array(x)), axis, "cumsum"))


@primitive("einsum")
def _einsum(*operands, equation=""):
    """Any einsum: the gradient for operand k is the einsum of g with the other operands, into k's indices.

    A letter repeated within operand k ('ii': its diagonal) gets that gradient on the diagonal, 0 elsewhere.
    """
    inputs, output = equation.split("->")
    terms = inputs.split(",")

    def vjp_for(k):
        def vjp(g):
            others = [t for i, t in enumerate(terms) if i != k]
            arrays = [a for i, a in enumerate(operands) if i != k]
            wanted = terms[k]
            distinct = "".join(dict.fromkeys(wanted))  # 'iij' -> 'ij'
            size = {c: operands[k].shape[wanted.index(c)] for c in distinct}
            # an index that appears only in operand k (summed over in the forward) is broadcast back
            present = set(output) | set("".join(others))
            kept = "".join(c for c in distinct if c in present)
            result = np.einsum(f"{output}{',' if others else ''}{','.join(others)}->{kept}", g, *arrays)
            target = tuple(size[c] for c in distinct)
            if kept != distinct:
                result = np.expand_dims(result, tuple(i for i, c in enumerate(distinct) if c not in present))
                full = tuple(builtins.max(r, n) for r, n in zip(result.shape, target, strict=True))
                result = np.broadcast_to(result, full)  # (a size-1 dim broadcast in the forward is summed later)
            if distinct == wanted:
                return result
            wider = tuple(i for i, (r, n) in enumerate(zip(result.shape, target, strict=True)) if r != n)
            result = result.sum(axis=wider, keepdims=True) if wider else result
            gx = np.zeros(operands[k].shape, dtype=result.dtype)
            grids = np.ix_(*[np.arange(n) for n in target])
            gx[tuple(grids[distinct.index(c)] for c in wanted)] = result  # onto the diagonal, once each
            return gx

        return vjp

    return np.einsum(equation, *operands), tuple(vjp_for(k) for k in range(len(operands)))


def _explicit_equation(equation: str, shapes) -> str:
    """The equation with '...' spelled out in unused letters and the output written, as numpy and torch read it.

    '...' stands for the dims the letters leave over (broadcast across operands, aligned on the
    right). Without '->' the output is the '...' dims, then every letter used exactly once, in
    alphabetical order (capitals first): 'ij,jk' means 'ij,jk->ik', 'ba' means 'ba->ab'.
    """
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {equation!r} names {len(terms)} operands, got {len(shapes)}")
    free = [c for c in string.ascii_letters if c not in equation]
    spans = []
    for term, shape in zip(terms, shapes, strict=True):
        bare = term.replace("...", "", 1)
        if "." in bare or not builtins.all(c.isalpha() for c in bare):
            raise ValueError(f"einsum: each operand's indices are letters, with at most one '...', got {term!r}")
        extra = len(shape) - len(bare)
        if extra < 0 or (extra and "..." not in term):
            raise ShapeError(f"einsum: operand {term!r} names {len(bare)} dims but has shape {tuple(shape)}")
        spans.append(extra)
    ellipsis = "".join(free[: builtins.max(spans, default=0)])
    spelled = [t.replace("...", ellipsis[len(ellipsis) - n :]) for t, n in zip(terms, spans, strict=True)]
    if not arrow:
        letters = "".join(t.replace("...", "") for t in terms)
        output = ellipsis + "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    else:
        if "." in output.replace("...", "", 1) or not builtins.all(c.isalpha() for c in output.replace("...", "")):
            raise ValueError(f"einsum: the output indices are letters, with at most one '...', got {output!r}")
        output = output.replace("...", ellipsis)
    return ",".join(spelled) + "->" + output


def einsum(equation: str, *operands) -> Tensor:
    """``bp.einsum("bij,bjk->bik", a, b)``, ``bp.einsum("...ij,...jk", a, b)``: numpy's (and torch's) rules.

    Operands may also come as one list, as ``torch.einsum(eq, [a, b])``. A letter repeated within one
    operand takes its diagonal: ``einsum("ii->i", a)`` the diagonal, ``einsum("ii", a)`` the trace.
    """
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    shapes = [np.shape(_as_array(o)) for o in operands]
    return _einsum(*operands, equation=_explicit_equation(equation, shapes))


# ============================================================================ more math


@primitive("maximum")
def maximum(a, b):
    """Elementwise max; on a tie each side gets half the gradient (as max does)."""
    a_wins, tie = (a > b).astype(np.float64), (a == b) * 0.5
    return np.maximum(a, b), (lambda g: g * (a_wins + tie), lambda g: g * (1 - a_wins - tie))


@primitive("minimum")
def minimum(a, b):
    a_wins, tie = (a < b).astype(np.float64), (a == b) * 0.5
    return np.minimum(a, b), (lambda g: g * (a_wins + tie), lambda g: g * (1 - a_wins - tie))


@primitive("logsumexp")
def _logsumexp(x, axis=None, keepdims=False):
    """log sum exp x, shifted by the max for stability. Its gradient is softmax(x)."""
    axis = _reduction_axis(x, axis)
    peak = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    peak = np.where(np.isfinite(peak), peak, 0)
    with np.errstate(divide="ignore"):  # the log of an empty sum is -inf, as in PyTorch
        kept = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    if keepdims:
        y = kept
    else:
        y = kept.reshape(()) if axis is None else np.squeeze(kept, axis=axis)
    return y, (lambda g: _expand_to(g, x.shape, axis, keepdims) * np.exp(x - kept),)


def logsumexp(x, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    """log sum exp along ``dim`` (all dims if None), as torch.logsumexp; numpy's ``axis=``, ``keepdims=`` too."""
    axis, keep = _dims("logsumexp", dim, keepdim, axis, keepdims)
    return _logsumexp(x, axis=axis, keepdims=keep)


@primitive("prod")
def _prod(x, axis=None, keepdims=False):
    """The product; d/dx_i is the product of all the others (computed without dividing, so zeros are fine)."""
    axis = _reduction_axis(x, axis)
    y = np.prod(x, axis=axis, keepdims=keepdims)

    def vjp(g):
        flat = x.reshape(-1) if axis is None else np.moveaxis(x, axis, -1)
        before = np.cumprod(np.concatenate([np.ones_like(flat[..., :1]), flat[..., :-1]], axis=-1), axis=-1)
        after = np.flip(np.cumprod(np.concatenate(
            [np.ones_like(flat[..., :1]), np.flip(flat, -1)[..., :-1]], axis=-1), axis=-1), -1)
        others = before * after
        others = others.reshape(x.shape) if axis is None else np.moveaxis(others, -1, axis)
        return _expand_to(g, x.shape, axis, keepdims) * others

    return y, (vjp,)


def prod(x, dim=None, keepdim: bool = False, *, axis=None, keepdims=None, dtype=None) -> Tensor:
    """The product along one dim (all elements if None), as torch.prod; numpy's ``axis=``, ``keepdims=`` too."""
    axis, keep = _dims("prod", dim, keepdim, axis, keepdims)
    if axis is not None and not isinstance(axis, int | np.integer):
        raise TypeError(f"prod: dim must be one int (or None for all elements), as in PyTorch, got {axis!r}")
    return _prod(_in_dtype(x, dtype), axis=axis, keepdims=keep)


@primitive("std")
def _std(x, axis=None, keepdims=False, correction=1):
    """sqrt of the variance; d/dx_i = (x_i - mean) / (divisor * std), taken as 0 where std is 0 (as PyTorch)."""
    axis = _reduction_axis(x, axis)
    n = _count(x.shape, axis)
    divisor = n - correction
    centred = x - x.mean(axis=axis, keepdims=True) if n else x
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.sqrt((centred * centred).sum(axis=axis, keepdims=keepdims) / divisor) if divisor > 0 else np.full(
            np.sum(x, axis=axis, keepdims=keepdims).shape, np.nan)

    def vjp(g):
        y_kept = _expand_to(y, x.shape, axis, keepdims)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(y_kept == 0, 0.0, centred / (divisor * y_kept))  # a NaN stays NaN
        return _expand_to(g, x.shape, axis, keepdims) * share

    return y, (vjp,)


def std(x, dim=None, unbiased=None, keepdim: bool = False, *, correction=None, axis=None, keepdims=None) -> Tensor:
    """Standard deviation, dividing by n - 1 unless unbiased=False (or correction=0), as in PyTorch.

    ``std(x, dim, unbiased, keepdim)`` as torch.std; numpy's ``axis=``, ``keepdims=`` work too.
    """
    dim, unbiased = _unbiased_first(dim, unbiased)
    axis, keep = _dims("std", dim, keepdim, axis, keepdims)
    return _std(x, axis=axis, keepdims=keep, correction=_correction(unbiased, correction))


def norm(x, p="fro", dim=None, keepdim: bool = False, *, axis=None, keepdims=None, dtype=None) -> Tensor:
    """The p-norm of x along ``dim`` (of all elements if None), as torch.norm: (sum |x|^p)^(1/p).

    ``p``: "fro" (the default: the 2-norm of the entries), any number, ``inf`` (max |x|), ``-inf``
    (min |x|), 0 (the count of non-zeros). Where the norm is 0 the gradient is taken as 0, as in PyTorch
    (the 2-norm has a kink there: any vector of length <= 1 is a subgradient, and 0 is the one chosen).
    """
    axis, keep = _dims("norm", dim, keepdim, axis, keepdims)
    if isinstance(p, str):
        if p == "inf":
            p = math.inf
        elif p == "fro":
            p = 2.0
        else:
            raise ValueError(f"norm: p must be 'fro', a number, inf or -inf, got {p!r} (matrix norms such as 'nuc' "
                             "are not in bpcore)")
    if isinstance(p, bool) or not isinstance(p, int | float | np.integer | np.floating):
        raise TypeError(f"norm: p must be a number, inf, -inf or 'fro', got {p!r}")
    return _vector_norm(_in_dtype(x, dtype), order=float(p), axis=axis, keepdims=keep)


@primitive("norm")
def _vector_norm(x, order=2.0, axis=None, keepdims=False):
    """||x||_p along ``axis``. VJPs (g broadcast back over the reduced dims, y the norm):

    p = 1: g sign(x);  p = +-inf: g sign(x) on the entries where |x| = y (ties share it);  p = 0: 0;
    any other p: g x |x|^(p-2) / y^(p-1), taken as 0 where x = 0 or y = 0 (PyTorch's choice).
    """
    axis = _reduction_axis(x, axis)
    size = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if order == math.inf:
            y = size.max(axis=axis, keepdims=keepdims)
        elif order == -math.inf:
            y = size.min(axis=axis, keepdims=keepdims)
        elif order == 0:
            y = (x != 0).sum(axis=axis, keepdims=keepdims).astype(x.dtype)
        elif order == 1:
            y = size.sum(axis=axis, keepdims=keepdims)
        elif order == 2:
            y = np.sqrt((x * x).sum(axis=axis, keepdims=keepdims))
        else:
            y = (size**order).sum(axis=axis, keepdims=keepdims) ** (1 / order)
    y = np.asarray(y, dtype=x.dtype)

    def vjp(g):
        g_full, y_full = _expand_to(g, x.shape, axis, keepdims), _expand_to(y, x.shape, axis, keepdims)
        if order == 0:
            return np.zeros_like(x)
        if order == 1:
            return g_full * np.sign(x)
        if order in (math.inf, -math.inf):
            winners = (size == y_full).astype(x.dtype)
            with np.errstate(invalid="ignore"):
                share = winners / winners.sum(axis=axis, keepdims=True)
            return g_full * np.sign(x) * share
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            d = x / y_full if order == 2 else x * size ** (order - 2) / y_full ** (order - 1)
            return np.where((x == 0) | (y_full == 0), 0.0, g_full * d)

    return y, (vjp,)


@primitive("sin")
def sin(x):
    return np.sin(x), (lambda g: g * np.cos(x),)


@primitive("cos")
def cos(x):
    return np.cos(x), (lambda g: -g * np.sin(x),)


@primitive("erf")
def erf(x):
    """The error function; d erf(x)/dx = 2/sqrt(pi) exp(-x^2)."""
    y = np.asarray(_erf(x), dtype=x.dtype) if np.ndim(x) else x.dtype.type(math.erf(float(x)))
    return y, (lambda g: g * (2 / math.sqrt(math.pi)) * np.exp(-x * x),)


# ============================================================================ copies and in-place changes


@primitive("clone")
def clone(x):
    """A copy with its own data that stays in the graph: gradients pass straight through."""
    return x.copy(), (lambda g: g,)


@primitive("setitem")
def _setitem(x, value, index=None):
    """x with x[index] replaced by value. VJPs: g with those entries zeroed; g[index] for value."""
    y = x.copy()
    y[index] = value

    def d_x(g):
        g = g.copy()
        g[index] = 0
        return g

    return y, (d_x, lambda g: g[index])


@primitive("overwrite")
def _overwrite(x, value):
    """Every entry replaced by value (broadcast): fill_, zero_ and copy_ in a graph. The old values get no gradient."""
    return np.array(np.broadcast_to(value, x.shape), dtype=x.dtype), (None, lambda g: g)


_ROLE = ("data", "requires_grad", "op", "inputs", "_grad_inputs", "_vjps", "_saved", "_primitive", "_static",
         "_site", "_number", "_epoch", "_hooks", "_retain", "grad")


def _change_in_place(x: Tensor, what: str, on_data, build, operands=()) -> Tensor:
    """The rule behind every in-place method (``x += y``, ``x[i] = v``, ``x.zero_()`` ...), as in PyTorch.

    * A leaf that requires grad may not be changed while gradients are recorded (its gradient
      would be lost): do it inside ``no_grad()``, as optimizers do.
    * Outside the graph (under ``no_grad``, or nothing involved requires grad) the data is changed
      in place: ``on_data(array)`` mutates it, views of the same memory included.
    * Inside the graph, ``x`` becomes the output of ``build(previous x, *operands)``, a new op, so
      later uses of ``x`` differentiate through the change (an operand that is ``x`` itself is read
      as its previous value). A view cannot be changed this way: what it views would not follow.

    Either way the change is stamped on the memory (``tensor.mark_changed``): an op that read it
    before refuses to run backward, instead of giving a silently wrong gradient.
    """
    recording = SWITCHES.grad_enabled
    if recording and x.requires_grad and x.op is None:
        raise RuntimeError(
            f"a leaf tensor that requires grad is used in an in-place operation ({what}). Its gradient would "
            "be lost, so PyTorch refuses this too. To update a parameter, do it inside `with bp.no_grad():`"
        )
    needs_graph = x.requires_grad or builtins.any(isinstance(o, Tensor) and o.requires_grad for o in operands)
    SWITCHES.inplace_epoch += 1
    if not recording or not needs_graph:
        try:
            on_data(x.data)
        except ValueError as error:
            raise ShapeError(f"{what} on a tensor of shape {x.shape}: {error}") from None
        mark_changed(x.data)
        return x
    if x.data.base is not None:
        raise RuntimeError(
            f"{what} on a view (made by '{x.op or 'indexing'}') while gradients are recorded: the tensor it views "
            "would not see the change. Change that tensor itself (base[index] = ...), or work on a clone()"
        )
    previous = Tensor.__new__(Tensor)
    for slot in _ROLE:
        setattr(previous, slot, getattr(x, slot))
    previous.name = x.name
    out = build(previous, *(previous if o is x else o for o in operands))
    if out.shape != x.shape:
        raise ShapeError(f"{what}: the result has shape {out.shape}, but an in-place change must keep {x.shape}")
    if out.dtype != x.dtype:  # x += float64 on a float32 x stays float32, as in PyTorch
        out = cast(out, dtype=x.dtype)
    retain = previous._retain
    for slot in _ROLE:
        setattr(x, slot, getattr(out, slot))
    # retain_grad() follows the tensor, as in PyTorch: x.grad will be the gradient of its new value
    # (hooks stay with the value they were registered on)
    x._retain, previous._retain = retain, False
    mark_changed(x.data)  # ops that read x before now refuse to backward (their edge points at x)
    return x


# PyTorch's names of the dtypes, for its in-place error messages
_TORCH_DTYPE_NAMES = {"float64": "Double", "float32": "Float", "float16": "Half", "int64": "Long", "int32": "Int",
                      "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool"}


def _check_inplace_result(x, other_data, symbol: str) -> None:
    """``int_tensor += 0.5`` raises PyTorch's RuntimeError: the result (a float) cannot be stored in x (a long)."""
    result = np.result_type(x.dtype, other_data)
    if symbol == "/" and result.kind in "biu":  # true division of integers gives floats
        result = np.dtype(np.float64)
    if np.can_cast(result, x.dtype, casting="same_kind"):
        return
    python_scalar = isinstance(other_data, float) or (symbol == "/" and not isinstance(other_data, np.ndarray))
    name = "Float" if result.kind == "f" and python_scalar else _TORCH_DTYPE_NAMES.get(result.name, str(result))
    raise RuntimeError(f"result type {name} can't be cast to the desired output type "
                       f"{_TORCH_DTYPE_NAMES.get(x.dtype.name, str(x.dtype))} (x {symbol}= ... on a {x.dtype} "
                       f"tensor; convert it first, e.g. x = x.double(), or write x = x {symbol} ...)")


def _inplace_arithmetic(x, other, primitive_op, ufunc, symbol):
    other_data = other.data if isinstance(other, Tensor) else other
    _check_inplace_result(x, other_data, symbol)
    return _change_in_place(
        x, f"x {symbol}= ...", lambda a: ufunc(a, other_data, out=a, casting="same_kind"), primitive_op, (other,)
    )


def _overwrite_in_place(x, value, what: str) -> Tensor:
    raw = value.data if isinstance(value, Tensor) else value

    def on_data(a):
        a[...] = raw

    return _change_in_place(x, what, on_data, _overwrite, (value,))


def _cast(x, dtype) -> Tensor:
    """A new dtype. Casting to integers or booleans cuts the graph (no gradient crosses it), as in PyTorch."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        return Tensor(x.data.astype(dtype))
    return cast(x, dtype=dtype)


# -- Tensor's operators and methods ----------------------------------------------------
# Each is a thin call into a primitive above. They are defined here and attached to Tensor, so
# the dependency runs one way: ops imports tensor, tensor never imports ops.


class ExtremeResult(tuple):
    """What ``x.max(dim)`` returns, as in PyTorch: a pair with ``.values`` and ``.indices``."""

    __slots__ = ()

    def __new__(cls, values, indices):
        return super().__new__(cls, (values, indices))

    @property
    def values(self) -> Tensor:
        return self[0]

    @property
    def indices(self) -> Tensor:
        return self[1]


def argmax(x, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    """Index of the largest value along ``dim`` (of the flattened tensor if None): int64, no gradient."""
    axis, keep = _dims("argmax", dim, keepdim, axis, keepdims)
    return _arg_extreme(x, np.argmax, axis, keep)


def argmin(x, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    """Index of the smallest value along ``dim`` (of the flattened tensor if None): int64, no gradient."""
    axis, keep = _dims("argmin", dim, keepdim, axis, keepdims)
    return _arg_extreme(x, np.argmin, axis, keep)


def _arg_extreme(x, arg, dim, keepdim) -> Tensor:
    """Indices of the largest (or smallest) values: int64, no gradient. dim None: of the flattened tensor."""
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    if isinstance(dim, tuple):
        raise TypeError(f"argmax/argmin: dim must be one int or None, got {dim!r}")
    _need_values(x.data, dim if dim is None or x.ndim == 0 else _dim(x.ndim, dim, arg.__name__), arg.__name__,
                 IndexError)
    if dim is None:
        if keepdim:  # PyTorch keeps every dim, as size 1
            return Tensor(np.asarray(arg(x.data)).reshape((1,) * x.ndim))
        return Tensor(np.asarray(arg(x.data)))
    axis = _reduction_axis(x.data, dim)
    if axis is None:  # a 0-d tensor
        return Tensor(np.asarray(0))
    return Tensor(np.asarray(arg(x.data, axis=axis, keepdims=keepdim)))


def _extreme_method(x, reduce, arg, dim, keepdim, axis, keepdims, op: str):
    """``x.max()`` / ``x.max(axis=1)``: the values (ties share the gradient). ``x.max(dim)``: (values, indices),
    and the gradient goes to the returned index alone, as in PyTorch."""
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    keep = bool(keepdim if keepdims is None else keepdims)
    if dim is None:
        return reduce(x, axis=axis, keepdims=keep)
    if axis is not None:
        raise TypeError(f"{op}: give dim= (PyTorch) or axis= (numpy), not both")
    if x.ndim == 0:
        _reduction_axis(x.data, dim)
        return ExtremeResult(reduce(x), Tensor(np.asarray(0)))
    d = _dim(x.ndim, dim, op)
    _need_values(x.data, d, op)
    where = np.asarray(arg(x.data, axis=d, keepdims=True))
    values = _gather(x, index=where, axis=d)
    if not keep:
        values = squeeze(values, d)
        where = np.squeeze(where, axis=d)
    return ExtremeResult(values, Tensor(where))


def amax(x, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    """The largest values along ``dim`` (an int or a tuple; all dims if None), as torch.amax: values only,
    and tied maxima share the gradient evenly."""
    axis, keep = _dims("amax", dim, keepdim, axis, keepdims)
    return _max(x, axis=axis, keepdims=keep)


def amin(x, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
    axis, keep = _dims("amin", dim, keepdim, axis, keepdims)
    return _min(x, axis=axis, keepdims=keep)


def max_(x, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
    """``bp.max``: as ``x.max`` (values, or (values, indices) along a dim); ``bp.max(x, y)`` elementwise."""
    if isinstance(dim, Tensor | np.ndarray):
        return maximum(x, dim)
    return _extreme_method(x, _max, np.argmax, dim, keepdim, axis, keepdims, "max")


def min_(x, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
    if isinstance(dim, Tensor | np.ndarray):
        return minimum(x, dim)
    return _extreme_method(x, _min, np.argmin, dim, keepdim, axis, keepdims, "min")


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

    # in place, as in PyTorch: the data changes (inside no_grad) or the tensor becomes a new op's output
    def __iadd__(self, other):
        return _inplace_arithmetic(self, other, add, np.add, "+")

    def __isub__(self, other):
        return _inplace_arithmetic(self, other, sub, np.subtract, "-")

    def __imul__(self, other):
        return _inplace_arithmetic(self, other, mul, np.multiply, "*")

    def __itruediv__(self, other):
        return _inplace_arithmetic(self, other, div, np.divide, "/")

    def __setitem__(self, index, value):
        index = _index_data(index)
        raw = value.data if isinstance(value, Tensor) else value

        def on_data(a):
            a[index] = raw

        _change_in_place(self, "x[...] = ...", on_data, lambda prev, v: _setitem(prev, v, index=index), (value,))

    def zero_(self):
        return self.fill_(0.0)

    def fill_(self, value):
        if isinstance(value, Tensor) and value.ndim:
            raise RuntimeError(f"fill_ takes a number or a 0-d tensor, got a tensor of shape {value.shape}")
        return _overwrite_in_place(self, value, "fill_")

    def copy_(self, source):
        return _overwrite_in_place(self, source if isinstance(source, Tensor) else np.asarray(source), "copy_")

    def clone(self):
        return clone(self)

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

    # dims: PyTorch's spelling (dim=, keepdim=, or dim as the first argument) and numpy's (axis=, keepdims=)
    def softmax(self, dim=None, *, axis=None, dtype=None):
        return softmax(self, dim, axis=axis, dtype=dtype)

    def log_softmax(self, dim=None, *, axis=None, dtype=None):
        return log_softmax(self, dim, axis=axis, dtype=dtype)

    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None, dtype=None):
        return sum(self, dim, keepdim, axis=axis, keepdims=keepdims, dtype=dtype)

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None, dtype=None):
        return mean(self, dim, keepdim, axis=axis, keepdims=keepdims, dtype=dtype)

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None, axis=None, keepdims=None):
        """Divides by n - 1 unless unbiased=False (or correction=0), as in PyTorch (numpy's default is n)."""
        return var(self, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims)

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """``x.max()`` the largest value; ``x.max(dim)`` (values, indices) as in PyTorch; ``x.max(axis=)`` values."""
        return max_(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return min_(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amax(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return amax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def amin(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return amin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmax(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return argmax(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def argmin(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return argmin(self, dim, keepdim, axis=axis, keepdims=keepdims)

    # -- the sizes and conversions PyTorch code asks for
    def numel(self) -> int:
        return self.data.size

    def dim(self) -> int:
        return self.data.ndim

    def float(self):
        return _cast(self, np.float32)

    def double(self):
        return _cast(self, np.float64)

    def long(self):
        return _cast(self, np.int64)

    def int(self):
        return _cast(self, np.int32)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return reshape(self, shape=shape)

    def transpose(self, dim0: int, dim1: int):
        """Swap two dims (PyTorch's meaning, not numpy's): ``x.transpose(0, 1)``. See ``permute``."""
        return transpose(self, dim0, dim1)

    def permute(self, *dims):
        return permute(self, *dims)

    @property
    def T(self):
        """All dims reversed: the matrix transpose for 2-D tensors."""
        return _permute(self, axes=tuple(range(self.ndim))[::-1])

    @property
    def mT(self):
        """The last two dims swapped: a batch of matrices, each transposed."""
        if self.ndim < 2:
            raise ShapeError(f"mT needs at least 2 dims, got a tensor of shape {self.shape}")
        return transpose(self, -2, -1)

    def t(self):
        """The transpose of a tensor with at most 2 dims (as ``torch.Tensor.t``)."""
        if self.ndim > 2:
            raise ShapeError(f"t() works on at most 2 dims, got shape {self.shape}: use transpose(d0, d1) or mT")
        return _permute(self, axes=tuple(range(self.ndim))[::-1])

    def clip(self, min=None, max=None):
        return clip(self, min=min, max=max)

    clamp = clip

    # -- shapes, with PyTorch's names
    def view(self, *shape):
        return view(self, *shape)

    def unsqueeze(self, dim: int):
        return unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return squeeze(self, dim)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return flatten(self, start_dim, end_dim)

    def unflatten(self, dim: int, sizes):
        return unflatten(self, dim, sizes)

    def expand(self, *sizes):
        return expand(self, *sizes)

    def repeat(self, *reps):
        return repeat(self, *reps)

    def flip(self, dims):
        return flip(self, dims)

    def split(self, split_size_or_sections, dim: int = 0):
        return split(self, split_size_or_sections, dim)

    def chunk(self, chunks: int, dim: int = 0):
        return chunk(self, chunks, dim)

    def tril(self, diagonal: int = 0):
        return tril(self, diagonal)

    def triu(self, diagonal: int = 0):
        return triu(self, diagonal)

    def masked_fill(self, mask, value):
        return masked_fill(self, mask, value)

    def gather(self, dim: int, index):
        return gather(self, dim, index)

    # -- more math
    def logsumexp(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return logsumexp(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def prod(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None, dtype=None):
        return prod(self, dim, keepdim, axis=axis, keepdims=keepdims, dtype=dtype)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None, axis=None, keepdims=None):
        return std(self, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims)

    def norm(self, p="fro", dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return norm(self, p, dim, keepdim, axis=axis, keepdims=keepdims)

    def cumsum(self, dim=None, *, axis=None):
        return cumsum(self, dim, axis=axis)

    def sin(self):
        return sin(self)

    def cos(self):
        return cos(self)

    def erf(self):
        return erf(self)

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    def astype(self, dtype):
        return _cast(self, dtype)

    def to(self, target):
        """``x.to(bp.float32)``, or ``x.to("cpu")`` (the only device: numpy runs on the CPU)."""
        if isinstance(target, str):
            if target != "cpu":
                raise RuntimeError(f"bpcore runs on the CPU only (numpy); cannot move a tensor to {target!r}")
            return self
        return _cast(self, target)


for _name, _member in vars(_TensorMethods).items():
    if _name not in ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__"):
        setattr(Tensor, _name, _member)
del _name, _member


__all__ = [
    "ExtremeResult",
    "Primitive",
    "abs",
    "add",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "cast",
    "cat",
    "chunk",
    "clip",
    "clone",
    "concat",
    "cos",
    "cumsum",
    "div",
    "einsum",
    "erf",
    "exp",
    "expand",
    "flatten",
    "flip",
    "gather",
    "gelu",
    "getitem",
    "leaky_relu",
    "log",
    "log_softmax",
    "logsumexp",
    "masked_fill",
    "matmul",
    "max",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mul",
    "neg",
    "norm",
    "pad",
    "permute",
    "pow",
    "primitive",
    "prod",
    "relu",
    "repeat",
    "reshape",
    "sigmoid",
    "sin",
    "softmax",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "sub",
    "sum",
    "tanh",
    "transpose",
    "tril",
    "triu",
    "unflatten",
    "unsqueeze",
    "var",
    "view",
    "where",
]

max = max_  # bp.max / ops.max: values, (values, indices) along a dim, or elementwise
min = min_
