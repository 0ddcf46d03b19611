"""Forward-mode automatic differentiation with dual numbers, next to the engine's reverse mode.

The interview answer in four points:

* Forward mode carries, beside every value x, its tangent dx = dx/dt along one chosen input
  direction v. Each op maps (x, dx) to (f(x), J_f dx): a Jacobian-vector product (JVP).
  One pass gives J v for the whole program: one *column* of the Jacobian (for v = e_i).
* Reverse mode (``backward()``) carries adjoints g = dL/dy from the output back: each op maps
  g to g J_f, a vector-Jacobian product (VJP). One pass gives u^T J: one *row* of the Jacobian.
* So for f: R^n -> R^m the full Jacobian costs n forward-mode passes or m reverse-mode passes.
  A loss is R^(millions) -> R^1: reverse mode wins by a factor of millions, and that is why
  training uses backpropagation. For a tall function (few inputs, many outputs) forward mode wins.
* Forward mode needs no stored graph: the tangent travels with the value and is dropped as soon
  as the next op has used it, so it costs one extra array per live value, nothing kept for later.
  Reverse mode must keep every intermediate value until backward reaches it (see ``cost.py``).

The rule table below reads like ``ops.py``: each rule returns the value and, for each input, a
function that maps that input's tangent to its share of the output tangent (the JVP, ``t -> J_i t``).
The output tangent is the sum of the shares over the inputs that carry a tangent (the
multivariable chain rule, run forwards). Compare with ``ops.py``, whose VJPs map ``g -> g J_i``.

Two things forward mode gets for free: broadcasting (a tangent broadcasts just as its value
does, so nothing like ``unbroadcast`` is needed) and vectors in matmul (a tangent has its value's
shape, so ``da @ b`` is already the right shape).

A user function written with operators and methods (``x @ w``, ``(x * x).sum()``, ``.tanh()``)
runs on bpcore tensors (reverse mode) and on :class:`Dual` values (forward mode) unchanged.
Functions such as ``bp.tanh(x)`` or ``F.linear`` are engine primitives and take tensors only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bpcore.ops import ExtremeResult, _dims, permutation, swapped
from bpcore.tensor import Tensor

# ============================================================================ the dual value


_NOT_FOR_NUMPY = (
    "forward mode: a numpy function (or a bpcore primitive called as a function, such as bp.tanh or F.linear) "
    "received a Dual. Write the function with operators and methods instead: x @ w, x.tanh(), (x * x).sum()"
)


class Dual:
    """A value and its tangent: ``primal`` (any shape) and ``tangent`` (the same shape).

    ``tangent`` is d(primal)/dt along the direction being pushed forward. Supports the operators and
    methods of :class:`bpcore.Tensor` that have a rule in :data:`JVP_RULES`.
    """

    __slots__ = ("primal", "tangent")

    def __init__(self, primal, tangent):
        self.primal = np.asarray(primal, dtype=np.float64) if not isinstance(primal, np.ndarray) else primal
        tangent = np.asarray(tangent, dtype=self.primal.dtype)
        if tangent.shape != self.primal.shape:
            raise ValueError(f"Dual: the tangent must have the value's shape {self.primal.shape}, got {tangent.shape}")
        self.tangent = tangent

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # numpy calls this for `ndarray @ Dual`, `ndarray * Dual` ...: send those operators to our rules
        name = _OPERATOR_UFUNCS.get(ufunc)
        if name is None or method != "__call__" or kwargs:
            raise TypeError(_NOT_FOR_NUMPY)
        return apply(name, *inputs)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_NOT_FOR_NUMPY)

    # -- facts, named as on Tensor so user code can read them --------------------
    @property
    def data(self) -> np.ndarray:
        return self.primal

    @property
    def shape(self) -> tuple[int, ...]:
        return self.primal.shape

    @property
    def ndim(self) -> int:
        return self.primal.ndim

    @property
    def size(self) -> int:
        return self.primal.size

    @property
    def dtype(self) -> np.dtype:
        return self.primal.dtype

    def __len__(self) -> int:
        return len(self.primal)

    def __repr__(self) -> str:
        return f"Dual(primal={self.primal!r}, tangent={self.tangent!r})"

    # -- operators: each one looks up its rule ------------------------------------
    def __add__(self, other):
        return apply("add", self, other)

    def __radd__(self, other):
        return apply("add", other, self)

    def __sub__(self, other):
        return apply("sub", self, other)

    def __rsub__(self, other):
        return apply("sub", other, self)

    def __mul__(self, other):
        return apply("mul", self, other)

    def __rmul__(self, other):
        return apply("mul", other, self)

    def __truediv__(self, other):
        return apply("div", self, other)

    def __rtruediv__(self, other):
        return apply("div", other, self)

    def __pow__(self, other):
        return apply("pow", self, other)

    def __rpow__(self, other):
        return apply("pow", other, self)

    def __matmul__(self, other):
        return apply("matmul", self, other)

    def __rmatmul__(self, other):
        return apply("matmul", other, self)

    def __neg__(self):
        return apply("neg", self)

    def __pos__(self):
        return self

    def __getitem__(self, index):
        return apply("getitem", self, index=_plain_index(index))

    # -- methods ---------------------------------------------------------------
    def exp(self):
        return apply("exp", self)

    def log(self):
        return apply("log", self)

    def sqrt(self):
        return apply("sqrt", self)

    def abs(self):
        return apply("abs", self)

    def tanh(self):
        return apply("tanh", self)

    def sigmoid(self):
        return apply("sigmoid", self)

    def relu(self):
        return apply("relu", self)

    def leaky_relu(self, negative_slope: float = 0.01):
        return apply("leaky_relu", self, negative_slope=negative_slope)

    # dims: PyTorch's spelling (dim=, keepdim=) and numpy's (axis=, keepdims=), as on Tensor
    def softmax(self, dim=None, *, axis=None):
        axis, _ = _dims("softmax", dim, False, axis, None)
        return apply("softmax", self, axis=-1 if axis is None else axis)

    def log_softmax(self, dim=None, *, axis=None):
        axis, _ = _dims("log_softmax", dim, False, axis, None)
        return apply("log_softmax", self, axis=-1 if axis is None else axis)

    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        axis, keep = _dims("sum", dim, keepdim, axis, keepdims)
        return apply("sum", self, axis=axis, keepdims=keep)

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        axis, keep = _dims("mean", dim, keepdim, axis, keepdims)
        return apply("mean", self, axis=axis, keepdims=keep)

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """As Tensor.max: ``max(dim)`` gives (values, indices), ``max()`` and ``max(axis=)`` the values."""
        return self._extreme("max", np.argmax, dim, keepdim, axis, keepdims)

    def min(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        return self._extreme("min", np.argmin, dim, keepdim, axis, keepdims)

    def _extreme(self, name, arg, dim, keepdim, axis, keepdims):
        along, keep = _dims(name, dim, keepdim, axis, keepdims)
        values = apply(name, self, axis=along, keepdims=keep)
        if dim is None:
            return values
        indices = arg(self.primal, axis=along, keepdims=keep) if self.ndim else np.asarray(0)
        return ExtremeResult(values, Tensor(np.asarray(indices)))

    def var(self, dim=None, unbiased: bool = True, keepdim: bool = False, *, axis=None, keepdims=None):
        # composed from rules, as ops.var is composed from primitives: no rule of its own needed
        axis, keepdims = _dims("var", dim, keepdim, axis, keepdims)
        centred = self - self.mean(axis=axis, keepdims=True)
        n = self.size if axis is None else int(np.prod([self.shape[a] for a in np.atleast_1d(axis)]))
        return (centred * centred).sum(axis=axis, keepdims=keepdims) / (n - 1 if unbiased else n)

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], tuple | list):
            shape = tuple(shape[0])
        return apply("reshape", self, shape=shape)

    def transpose(self, dim0: int, dim1: int):
        return apply("transpose", self, axes=swapped(self.ndim, dim0, dim1))

    def permute(self, *dims):
        if len(dims) == 1 and isinstance(dims[0], tuple | list):
            dims = tuple(dims[0])
        return apply("transpose", self, axes=permutation(self.ndim, dims))

    @property
    def T(self):
        return apply("transpose", self, axes=tuple(range(self.ndim))[::-1])

    @property
    def mT(self):
        return self.transpose(-2, -1)


_OPERATOR_UFUNCS = {
    np.add: "add",
    np.subtract: "sub",
    np.multiply: "mul",
    np.true_divide: "div",
    np.power: "pow",
    np.matmul: "matmul",
    np.negative: "neg",
}


def _plain_index(index):
    """Tensors used as indices are integer arrays; everything else numpy understands as is."""
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    return index.data if isinstance(index, Tensor) else index


# ============================================================================ the rule table

JVP_RULES: dict[str, Callable] = {}


def jvp_rule(name: str):
    """Register ``rule(*values, **settings) -> (value, jvps)``; ``jvps[i]`` maps input i's tangent
    to its contribution to the output tangent (a linear map: the partial Jacobian J_i applied to it)."""

    def register(rule):
        JVP_RULES[name] = rule
        return rule

    return register


def apply(name: str, *inputs, **settings) -> Dual:
    """Run rule ``name`` on values and Duals: the value from the primal parts, the tangent as
    sum_i J_i t_i over the inputs that are Duals (constants have tangent 0 and are skipped)."""
    primals = [x.primal if isinstance(x, Dual) else _constant(x) for x in inputs]
    value, jvps = JVP_RULES[name](*primals, **settings)
    value = np.asarray(value)
    tangent = None
    for x, push in zip(inputs, jvps, strict=True):
        if isinstance(x, Dual):
            share = push(x.tangent)
            tangent = share if tangent is None else tangent + share
    if tangent is None:  # every input was a constant
        tangent = np.zeros_like(value)
    elif tangent.shape != value.shape:  # e.g. a bias's tangent (3,) in a (2, 3) sum: it broadcasts
        tangent = np.broadcast_to(tangent, value.shape).copy()
    return Dual(value, tangent)


def _constant(x):
    if isinstance(x, Tensor):
        return x.data  # a tensor inside forward mode is a constant (its tangent is zero)
    return x


# -- elementwise arithmetic: d(a op b) = (d/da) da + (d/db) db ---------------------------


@jvp_rule("add")
def add(a, b):
    return a + b, (lambda da: da, lambda db: db)


@jvp_rule("sub")
def sub(a, b):
    return a - b, (lambda da: da, lambda db: -db)


@jvp_rule("mul")
def mul(a, b):
    return a * b, (lambda da: da * b, lambda db: a * db)


@jvp_rule("div")
def div(a, b):
    return a / b, (lambda da: da / b, lambda db: -a * db / (b * b))


@jvp_rule("pow")
def pow(a, b):
    """d(a^b) = b a^(b-1) da + a^b ln(a) db, with ln(a) taken as 0 where a <= 0 (as in ops.pow)."""
    y = a**b

    def d_exponent(db):
        a_arr = np.asarray(a)
        return y * np.log(np.where(a_arr > 0, a_arr, 1)) * db

    return y, (lambda da: b * a ** (b - 1) * da, d_exponent)


@jvp_rule("neg")
def neg(a):
    return -a, (lambda da: -da,)


@jvp_rule("matmul")
def matmul(a, b):
    """d(a @ b) = da @ b + a @ db: the product rule. Vectors need no special case (compare ops.matmul)."""
    return a @ b, (lambda da: da @ b, lambda db: a @ db)


# -- elementwise functions: dy = f'(x) dx -------------------------------------------------


@jvp_rule("exp")
def exp(x):
    y = np.exp(x)
    return y, (lambda dx: y * dx,)


@jvp_rule("log")
def log(x):
    return np.log(x), (lambda dx: dx / x,)


@jvp_rule("sqrt")
def sqrt(x):
    y = np.sqrt(x)
    return y, (lambda dx: dx / (2 * y),)


@jvp_rule("abs")
def abs(x):
    return np.abs(x), (lambda dx: np.sign(x) * dx,)


@jvp_rule("tanh")
def tanh(x):
    y = np.tanh(x)
    return y, (lambda dx: (1 - y * y) * dx,)


@jvp_rule("sigmoid")
def sigmoid(x):
    y = 0.5 * (1 + np.tanh(0.5 * x))  # the same overflow-free formula as ops.sigmoid
    return y, (lambda dx: y * (1 - y) * dx,)


@jvp_rule("relu")
def relu(x):
    return np.maximum(x, 0), (lambda dx: (x > 0) * dx,)


@jvp_rule("leaky_relu")
def leaky_relu(x, negative_slope=0.01):
    slope = np.where(x > 0, 1, negative_slope).astype(x.dtype)
    return x * slope, (lambda dx: slope * dx,)


# -- softmax family ------------------------------------------------------------------------


@jvp_rule("softmax")
def softmax(x, axis=-1):
    """J = diag(s) - s s^T is symmetric, so the JVP s * (dx - sum(s dx)) has the VJP's form."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return s, (lambda dx: s * (dx - (s * dx).sum(axis=axis, keepdims=True)),)


@jvp_rule("log_softmax")
def log_softmax(x, axis=-1):
    """J = I - 1 s^T is NOT symmetric: JVP dx - sum(s dx), while the VJP is g - s sum(g)."""
    shifted = x - x.max(axis=axis, keepdims=True)
    y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    s = np.exp(y)
    return y, (lambda dx: dx - (s * dx).sum(axis=axis, keepdims=True),)


# -- reductions: linear maps, so the tangent goes through the same reduction --------------


@jvp_rule("sum")
def sum(x, axis=None, keepdims=False):
    return x.sum(axis=axis, keepdims=keepdims), (lambda dx: dx.sum(axis=axis, keepdims=keepdims),)


@jvp_rule("mean")
def mean(x, axis=None, keepdims=False):
    return x.mean(axis=axis, keepdims=keepdims), (lambda dx: dx.mean(axis=axis, keepdims=keepdims),)


def _extreme(x, reduce, axis, keepdims):
    """max/min: the tangent of the winner (ties share it evenly, matching the VJP in ops.py)."""
    y = reduce(x, axis=axis, keepdims=keepdims)
    y_kept = y if keepdims or axis is None else np.expand_dims(y, axis)
    winners = (x == y_kept).astype(x.dtype)
    share = winners / winners.sum(axis=axis, keepdims=True)
    return y, (lambda dx: (share * dx).sum(axis=axis, keepdims=keepdims),)


@jvp_rule("max")
def max(x, axis=None, keepdims=False):
    return _extreme(x, np.max, axis, keepdims)


@jvp_rule("min")
def min(x, axis=None, keepdims=False):
    return _extreme(x, np.min, axis, keepdims)


# -- shape and indexing: the tangent moves exactly as the values move ---------------------


@jvp_rule("reshape")
def reshape(x, shape=()):
    return x.reshape(shape), (lambda dx: dx.reshape(shape),)


@jvp_rule("transpose")
def transpose(x, axes=()):
    return x.transpose(axes), (lambda dx: dx.transpose(axes),)


@jvp_rule("getitem")
def getitem(x, index=None):
    """Slices and integer arrays alike: select the same entries of the tangent (no scatter needed)."""
    return x[index], (lambda dx: dx[index],)


# ============================================================================ jvp and Jacobians


def _as_tuple(xs) -> tuple:
    return tuple(xs) if isinstance(xs, tuple | list) else (xs,)


def _array(x) -> np.ndarray:
    """Inputs as floating arrays (integers become float64: they are points we differentiate at)."""
    x = np.asarray(x.data if isinstance(x, Tensor) else x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


def jvp(fn: Callable, inputs, tangents) -> tuple[np.ndarray, np.ndarray]:
    """Value and directional derivative of ``fn`` at ``inputs`` along ``tangents``, in one forward pass.

    Args:
        fn: a function of one or more arrays written with Tensor operators and methods.
        inputs: an array, or a tuple of arrays (one per argument of ``fn``).
        tangents: the direction v, shaped like ``inputs`` (an array or a tuple of arrays).

    Returns:
        (value, J v): ``fn(inputs)`` as an array, and its derivative along v, of the same shape.
        Nothing is stored for later and ``backward()`` is never called.
    """
    inputs, tangents = _as_tuple(inputs), _as_tuple(tangents)
    if len(inputs) != len(tangents):
        raise ValueError(f"jvp: {len(inputs)} inputs but {len(tangents)} tangents; give one tangent per input")
    duals = []
    for position, (x, v) in enumerate(zip(inputs, tangents, strict=True)):
        x, v = _array(x), _array(v)
        if v.shape != x.shape:
            raise ValueError(f"jvp: input {position} has shape {x.shape} but its tangent has shape {v.shape}")
        duals.append(Dual(x, v.astype(x.dtype)))
    out = fn(*duals)
    if not isinstance(out, Dual):  # fn ignored its inputs: a constant has derivative zero
        value = _array(out)
        return value, np.zeros_like(value)
    return out.primal, out.tangent


def jacobian_forward(fn: Callable, x) -> np.ndarray:
    """The Jacobian of ``fn`` at ``x`` by forward mode: one JVP per input element (column by column).

    Shapes: x (*in_shape), fn(x) (*out_shape) -> J (*out_shape, *in_shape), J[o, i] = d fn(x)[o] / d x[i]
    (the layout of ``torch.autograd.functional.jacobian``). Costs x.size forward passes.
    """
    x = _array(x)
    columns = []
    for i in range(x.size):
        e_i = np.zeros(x.size, dtype=x.dtype)
        e_i[i] = 1.0
        value, column = jvp(fn, x, e_i.reshape(x.shape))
        columns.append(column.reshape(-1))
    return np.stack(columns, axis=-1).reshape(value.shape + x.shape)


def jacobian_reverse(fn: Callable, x) -> np.ndarray:
    """The Jacobian of ``fn`` at ``x`` by reverse mode: one forward, then one backward per output element.

    Each backward with upstream gradient e_o gives row o, (e_o^T J). The graph is built once and
    walked fn(x).size times (the engine keeps it, so walking it again is allowed). Same shapes as
    :func:`jacobian_forward`.
    """
    x = _array(x)
    leaf = Tensor(x.copy(), requires_grad=True)
    y = fn(leaf)
    if not isinstance(y, Tensor) or not y.requires_grad:  # fn does not depend on x
        return np.zeros(_array(y).shape + x.shape)
    rows = []
    for o in range(y.size):
        e_o = np.zeros(y.size, dtype=y.dtype)
        e_o[o] = 1.0
        leaf.grad = None  # backward accumulates: start each row from zero
        y.backward(e_o.reshape(y.shape))
        rows.append(leaf.grad.reshape(-1))
    return np.stack(rows, axis=0).reshape(y.shape + x.shape)


# ============================================================================ which mode is cheaper


__all__ = [
    "JVP_RULES",
    "Dual",
    "apply",
    "jacobian_forward",
    "jacobian_reverse",
    "jvp",
    "jvp_rule",
]
