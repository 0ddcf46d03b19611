"""The Tensor: a numpy array that remembers how it was made and can send gradients back.

Reverse-mode automatic differentiation in three ideas:

1. Every primitive op (see ``ops.py``) records, on its output, the inputs it read and one
   vector-Jacobian product (VJP) per input: a function that turns dL/d(output) into
   dL/d(input) (with the arrays the forward saved for it).
2. ``backward()`` walks the recorded graph from the output to the leaves in reverse creation
   order (a heap, no recursion, so a chain of 100,000 ops is fine), calling each VJP once.
3. Gradients that reach the same tensor along different paths are added (the multivariable
   chain rule), and leaves accumulate into ``.grad`` until someone zeroes it.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import linecache
import operator
import os
import sys
import weakref
from collections.abc import Callable
from heapq import heappop, heappush

import numpy as np

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class _Switches:
    """Process-wide switches read by every op (kept in one place so they are easy to find)."""

    grad_enabled = True  # False inside no_grad(): ops record nothing
    anomaly = False  # True inside detect_anomaly(): every value and gradient is checked
    record_sites = 0  # > 0: ops remember the line of user code that created them
    inplace_epoch = 0  # counts in-place changes (x += 1, x.zero_() ...); see mark_changed
    tracer = None  # set by bp.compile while it records one call of a function (see compile.py)


SWITCHES = _Switches()


class ShapeError(ValueError):
    """Two shapes that an op cannot combine; the message names the op and both shapes."""


class AnomalyError(FloatingPointError):
    """Raised inside ``detect_anomaly()`` by the first op whose value or gradient is NaN or Inf."""


# ----------------------------------------------------------------------------- grad mode


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) in which ops record no graph: for evaluation and updates.

    >>> with bp.no_grad():
    ...     w.data -= lr * w.grad      # (plain numpy is also fine for updates)
    """

    def __enter__(self):
        self._previous = SWITCHES.grad_enabled
        SWITCHES.grad_enabled = False
        return self

    def __exit__(self, *exc):
        SWITCHES.grad_enabled = self._previous
        return False


class enable_grad(contextlib.ContextDecorator):
    """Turn graph recording back on inside a ``no_grad`` block."""

    def __enter__(self):
        self._previous = SWITCHES.grad_enabled
        SWITCHES.grad_enabled = True
        return self

    def __exit__(self, *exc):
        SWITCHES.grad_enabled = self._previous
        return False


def is_grad_enabled() -> bool:
    return SWITCHES.grad_enabled


class detect_anomaly(contextlib.ContextDecorator):
    """Inside this block the first op whose value or gradient holds NaN or Inf raises
    :class:`AnomalyError`, naming the op, its input shapes and the line of your code that made it.

    It costs a finiteness check per op and a stack lookup per op, so use it to debug, not to train.
    """

    def __enter__(self):
        self._previous = SWITCHES.anomaly
        SWITCHES.anomaly = True
        SWITCHES.record_sites += 1
        return self

    def __exit__(self, *exc):
        SWITCHES.anomaly = self._previous
        SWITCHES.record_sites -= 1
        return False


def user_site() -> str | None:
    """'file:line: code' of the innermost frame outside the bpcore package (who called the op)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return None
    filename, lineno = frame.f_code.co_filename, frame.f_lineno
    code = linecache.getline(filename, lineno).strip()
    return f"{filename}:{lineno}: {code}" if code else f"{filename}:{lineno}"


# ----------------------------------------------------------------------------- the tensor


_creation_counter = itertools.count()


class RemovableHandle:
    """Returned by :meth:`Tensor.register_hook`; ``handle.remove()`` takes the hook off again."""

    def __init__(self, hooks: list, fn: Callable):
        self._hooks, self._fn = hooks, fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


class _Size(int):
    """The element count that can also be called: ``x.size`` (numpy) and ``x.size()``, ``x.size(1)`` (PyTorch)."""

    def __new__(cls, count: int, shape: tuple[int, ...]):
        made = super().__new__(cls, count)
        made._shape = shape
        return made

    def __call__(self, dim: int | None = None):
        return self._shape if dim is None else self._shape[dim]


class Tensor:
    """An n-dimensional array with an optional gradient.

    Attributes:
        data: the values, a numpy array (live: editing it in place is seen by the tensor).
        grad: dL/d(this tensor), same shape and dtype as ``data``; None until a backward pass
            reaches a leaf (or a tensor that called :meth:`retain_grad`).
        requires_grad: whether ops on this tensor are recorded for backward.

    Graph fields (set by ops, read by ``backward``, ``gradcheck`` and ``draw_graph``):
        op: name of the primitive that produced this tensor (None for a leaf).
        inputs: the arguments that primitive received (tensors and constants).
    """

    __slots__ = (
        "__weakref__",
        "_epoch",
        "_grad_inputs",
        "_hooks",
        "_number",
        "_primitive",
        "_retain",
        "_saved",
        "_seed",
        "_site",
        "_static",
        "_vjps",
        "data",
        "grad",
        "inputs",
        "name",
        "op",
        "requires_grad",
    )
    __array_ufunc__ = None  # numpy defers to Tensor's reflected operators: ndarray + Tensor works
    __hash__ = object.__hash__  # comparisons return arrays, identity stays the hash

    def __init__(self, data, requires_grad: bool = False, name: str | None = None):
        if data is None:
            raise TypeError(_NONE_MESSAGE.format(call="Tensor"))
        if not isinstance(data, np.ndarray):
            # a numpy scalar (what reductions return) keeps its dtype; anything else becomes float64
            data = np.asarray(data) if isinstance(data, np.generic) else np.asarray(data, dtype=np.float64)
        if requires_grad:
            check_can_require_grad(data.dtype)
        self.data = data
        self._number = next(_creation_counter)  # see topological_order
        self.grad = None
        self.requires_grad = requires_grad
        self.name = name
        self.op = None
        self.inputs = ()
        # How backward reaches the inputs (see vjp_of). None of these hold a function made for this node
        # alone, and the tuples hold only numbers and arrays, so the cyclic garbage collector (which
        # untracks such tuples) has one object less to rescan per node as a graph grows.
        self._grad_inputs = ()  # positions of the inputs that get a gradient
        self._vjps = None  # the op's VJP functions, one per input (shared by every node of that op), or None
        self._saved = None  # what the forward saved for them; with _vjps None: one VJP closure per input
        self._primitive = None
        self._static = None
        self._hooks = None
        self._retain = False
        self._site = None
        self._epoch = 0  # the in-place epoch this tensor's op ran in (see mark_changed)

    # -- basic facts ----------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> _Size:
        """``x.size()`` the shape and ``x.size(0)`` one dim, as in PyTorch; bare ``x.size`` the count, as numpy."""
        return _Size(self.data.size, self.data.shape)

    @property
    def is_leaf(self) -> bool:
        return self.op is None

    @property
    def parents(self) -> tuple[Tensor, ...]:
        """The tensor inputs of the op that made this tensor (constants left out)."""
        return tuple(x for x in self.inputs if isinstance(x, Tensor))

    def __len__(self) -> int:
        return len(self.data)

    def item(self) -> float:
        if SWITCHES.tracer is not None:
            return SWITCHES.tracer.read(self, "item", _item)
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.item()

    def __float__(self) -> float:
        return float(self.item())

    def __bool__(self) -> bool:
        if SWITCHES.tracer is not None:
            SWITCHES.tracer.branch(self, "bool()")
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous: "
                "use .data.any() or .data.all()"
            )
        return bool(self.data.item())

    def numpy(self) -> np.ndarray:
        """The underlying array itself (not a copy), as ``torch.Tensor.numpy()`` does."""
        if SWITCHES.tracer is not None:
            return SWITCHES.tracer.read(self, "numpy", lambda t: t.data)
        return self.data

    def tolist(self):
        if SWITCHES.tracer is not None:
            return SWITCHES.tracer.read(self, "tolist", lambda t: t.data.tolist())
        return self.data.tolist()

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", precision=4, prefix="tensor(")
        extras = []
        if self.data.dtype != np.float64:
            extras.append(f"dtype={self.data.dtype}")
        if self.op is not None:
            extras.append(f"op={self.op}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self.name:
            extras.append(f"name={self.name!r}")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # -- graph control --------------------------------------------------------
    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut off from the graph (gradients stop here).

        They share in-place changes too: ``x.detach().zero_()`` changes ``x``, and backward knows it.
        """
        return Tensor(self.data, requires_grad=False, name=self.name)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if not self.is_leaf:
            raise RuntimeError(
                "requires_grad_() can only change leaf tensors; this one was made by "
                f"'{self.op}'. Use .detach().requires_grad_() for a new leaf."
            )
        if flag:
            check_can_require_grad(self.data.dtype)
        self.requires_grad = flag
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this intermediate tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError(
                "retain_grad() on a tensor that does not require grad: no gradient will reach it"
            )
        self._retain = True

    def register_hook(self, fn: Callable[[np.ndarray], np.ndarray | None]) -> RemovableHandle:
        """Call ``fn(grad)`` when this tensor's full gradient is known during backward.

        ``grad`` is a numpy array. If ``fn`` returns an array, it replaces the gradient that flows
        on (to the inputs, and into ``.grad`` for a leaf). Returns a handle with ``.remove()``.
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(fn)
        return RemovableHandle(self._hooks, fn)

    def backward(self, grad=None) -> None:
        """Send gradients from this tensor back to every leaf that requires them.

        Args:
            grad: dL/d(self). May be omitted when self holds a single number (it is then 1).

        Gradients are added into each leaf's ``.grad``: call ``zero_grad()`` (or set ``.grad = None``)
        between steps. Calling ``backward()`` twice on the same graph adds the gradients twice.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: none of its inputs had "
                "requires_grad=True, or it was computed inside no_grad()"
            )
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() without a gradient works only for a single number, but this tensor has "
                    f"shape {self.shape}. Reduce it first (y.sum().backward()) or pass dL/dy: "
                    f"y.backward(np.ones({self.shape}))"
                )
            data = self.data  # dL/dL = 1: a 0-d array is the cheapest fresh one to make
            grad = np.array(1, data.dtype) if data.ndim == 0 else np.ones(data.shape, data.dtype)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            grad = np.asarray(grad, dtype=self.data.dtype)
            if grad.shape != self.shape:
                raise ShapeError(
                    f"backward(grad): grad has shape {grad.shape}, but the tensor has shape {self.shape}"
                )
        if SWITCHES.tracer is not None:  # bp.compile records the pass (and runs it)
            return SWITCHES.tracer.backward(self, grad)
        # kept before the pass, so a leaf root never adopts the seed as its .grad (see _adopt_or_copy)
        self._seed = grad
        run_backward(self, grad)

    # -- comparisons: plain boolean arrays, no gradient ---------------------------
    # (the arithmetic operators and methods such as exp, sum and reshape are attached by ops.py,
    # where the primitives they call are defined: tensor.py never imports ops)
    def __pos__(self):
        return self

    def __eq__(self, other):
        if SWITCHES.tracer is not None:
            SWITCHES.tracer.branch(self, "a comparison (==)")
        return self.data == _raw(other)

    def __ne__(self, other):
        if SWITCHES.tracer is not None:
            SWITCHES.tracer.branch(self, "a comparison (!=)")
        return self.data != _raw(other)

    def __lt__(self, other):
        if SWITCHES.tracer is not None:
            SWITCHES.tracer.branch(self, "a comparison (<)")
        return self.data < _raw(other)

    def __le__(self, other):
        if SWITCHES.tracer is not None:
            SWITCHES.tracer.branch(self, "a comparison (<=)")
        return self.data <= _raw(other)

    def __gt__(self, other):
        if SWITCHES.tracer is not None:
            SWITCHES.tracer.branch(self, "a comparison (>)")
        return self.data > _raw(other)

    def __ge__(self, other):
        if SWITCHES.tracer is not None:
            SWITCHES.tracer.branch(self, "a comparison (>=)")
        return self.data >= _raw(other)



def _item(t: Tensor):
    if t.data.size != 1:
        raise ValueError(f"item() needs a tensor with one element, this one has shape {t.shape}")
    return t.data.item()


def replayed(method: Callable) -> Callable:
    """Mark a method (an optimizer's ``step``, ``zero_grad``) that ``bp.compile`` records as one call and
    replays as a whole: it works on raw arrays, so the replay simply calls it again."""

    def recorded(*args, **kwargs):
        if SWITCHES.tracer is None:
            return method(*args, **kwargs)
        return SWITCHES.tracer.call(method, args, kwargs)

    recorded.__name__, recorded.__qualname__, recorded.__doc__ = method.__name__, method.__qualname__, method.__doc__
    recorded.__wrapped__ = method
    return recorded


def check_can_require_grad(dtype) -> None:
    if not np.issubdtype(dtype, np.floating):
        raise RuntimeError(
            f"only tensors of floating point dtype can require gradients, got dtype {np.dtype(dtype)}. "
            "Write the numbers as floats (1.0, not 1) or pass dtype=bp.float64"
        )


# In-place changes, as PyTorch's version counter. An op records the epoch it ran in; an in-place
# change stamps the memory it wrote with a newer epoch, keyed by the array that owns that memory, so
# every tensor sharing it (a view, a detach(), a from_numpy array) sees the change. Backward refuses
# an op whose input or output memory was changed after the op ran.
_CHANGED: dict[int, int] = {}  # id(owning array) -> epoch of its last in-place change


def _owner(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def mark_changed(array: np.ndarray) -> None:
    """Record that ``array``'s memory was just changed in place (at the current epoch)."""
    owner = _owner(array)
    key = id(owner)
    if key not in _CHANGED:
        weakref.finalize(owner, _CHANGED.pop, key, None)  # forget it when the memory goes
    _CHANGED[key] = SWITCHES.inplace_epoch


def changed_since(array: np.ndarray, epoch: int) -> bool:
    return _CHANGED.get(id(_owner(array)), 0) > epoch


def check_unchanged(node: Tensor) -> None:
    """Refuse to backward through ``node`` if its output or an input it read was changed in place since."""
    changed = [(f"its input {i}", x) for i, x in enumerate(node.inputs) if isinstance(x, Tensor)]
    for what, x in [("its output", node), *changed]:
        if changed_since(x.data, node._epoch):
            where = f" (made at {node._site})" if node._site else ""
            raise RuntimeError(
                f"backward through '{node.op}'{where}: {what} (shape {x.shape}) was modified by an in-place "
                "operation after the op ran, so its gradient would be computed from the wrong values. Write "
                "x = x + y instead of x += y (or clone() before changing it), or rebuild the graph after the change."
            )


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def tensor(data, requires_grad: bool = False, dtype=None, name: str | None = None) -> Tensor:
    """Make a tensor from a number, nested lists, a numpy array or another tensor (always a copy).

    The dtype follows the data, as in PyTorch: floats give float64 (a floating numpy array keeps
    its dtype, so float32 data gives a float32 graph), integers int64 (class labels, indices),
    booleans bool. ``dtype`` overrides it: ``bp.tensor([1, 2], dtype=bp.float64)``.
    """
    if isinstance(data, Tensor):
        data = data.data
    if data is None or (not isinstance(data, np.ndarray) and _holds_none(data)):
        raise TypeError(_NONE_MESSAGE.format(call="bp.tensor"))
    if dtype is None:
        kind = np.asarray(data).dtype if isinstance(data, np.ndarray | np.generic) else _python_dtype(data)
        if np.issubdtype(kind, np.floating) or kind == np.bool_:
            dtype = kind
        elif np.issubdtype(kind, np.integer):  # Python ints give int64; a numpy integer array keeps its type
            dtype = kind if isinstance(data, np.ndarray | np.generic) else np.int64
        else:
            dtype = np.float64
    try:
        array = np.array(data, dtype=dtype)
    except (ValueError, TypeError) as error:
        raise TypeError(
            f"bp.tensor could not turn {type(data).__name__} into a {np.dtype(dtype)} array: {error}"
        ) from None
    return Tensor(array, requires_grad=requires_grad, name=name)


_NONE_MESSAGE = (
    "{call}(): could not infer dtype of NoneType: expected a number, nested lists of numbers or an array, "
    "got None (numpy would have made it nan)"
)


def _holds_none(data) -> bool:
    """Nested lists with a None somewhere (numpy would turn it into nan without a word)."""
    if not isinstance(data, list | tuple):
        return False
    pending = [data]
    while pending:
        item = pending.pop()
        if item is None:
            return True
        if isinstance(item, list | tuple):
            pending.extend(item)
    return False


def _python_dtype(data) -> np.dtype:
    try:
        return np.asarray(data).dtype
    except (ValueError, TypeError):  # ragged lists and the like: tensor() reports them below
        return np.dtype(np.float64)


# ----------------------------------------------------------------------------- backward


def topological_order(root: Tensor, every_tensor: bool = False) -> list[Tensor]:
    """Tensors ``root`` depends on (itself included), inputs before the tensors made from them.

    By default only tensors that take part in backward (those requiring grad); with
    ``every_tensor`` also constants such as input data, for pictures of the graph.

    Every tensor is numbered when it is created, and an op's inputs always exist before its
    output, so sorting the reachable tensors by that number is a topological order. Finding them
    is an iterative walk (a stack, not recursion), so a chain of 100,000 ops is no problem.
    """
    seen: set[Tensor] = {root}  # tensors hash by identity, so they can be set members
    stack = [root]
    while stack:
        node = stack.pop()
        inputs = node.parents if every_tensor else [node.inputs[i] for i in node._grad_inputs]
        for x in inputs:
            if x not in seen:
                seen.add(x)
                stack.append(x)
    return sorted(seen, key=_creation_number)


_creation_number = operator.attrgetter("_number")


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the VJP of numpy broadcasting.

    A value that was broadcast (copied) to many positions influenced all of them, so its
    gradient is the sum over those positions.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra < 0:
        raise ShapeError(f"a gradient of shape {grad.shape} cannot belong to an input of shape {shape}")
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    if grad.shape != shape:
        raise ShapeError(f"a gradient of shape {grad.shape} cannot belong to an input of shape {shape}")
    return grad


def _sole_reference_count() -> int:
    """What ``sys.getrefcount`` reports for an array held by one local variable only (see _adopt_or_copy)."""
    array = np.empty(0)
    return sys.getrefcount(array)


_ALONE = _sole_reference_count()


def _adopt_or_copy(g: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The array a leaf keeps as its new ``.grad``: ``g`` itself when nothing else can see it, else a copy.

    A VJP usually returns a fresh array (``g * y``, ``g @ w``): copying it would only cost time. But
    a VJP may also hand back its upstream gradient (``add``: ``lambda g: g``), a view of it, or an
    array it saved, and a hook may keep what it was given. If a leaf adopted one of those, an
    in-place change of its ``.grad`` (``+=`` on the next backward, an optimizer, clipping) would
    change another tensor's gradient or a saved value too. So ``g`` is adopted only when it owns its
    memory (not a view), is a plain writeable ndarray of the leaf's dtype, and the only reference to
    it is the caller's one local variable (nothing else can be aliased to it). A caller must hold
    ``g`` in exactly one variable and nowhere else, or the count below adopts nothing.
    """
    # references here: the caller's variable, this parameter and getrefcount's argument
    owned = type(g) is np.ndarray and g.base is None and g.dtype == dtype and g.flags.writeable
    if owned and sys.getrefcount(g) <= _ALONE + 1:
        return g
    return np.array(g, dtype=dtype, copy=True)


def check_finite(array: np.ndarray, what: str, op: str, inputs: tuple, site: str | None) -> None:
    """Raise AnomalyError if ``array`` (the value or a gradient of op ``op``) holds NaN or Inf."""
    if np.isfinite(array).all():
        return
    kind = "NaN" if np.isnan(array).any() else "Inf"
    shapes = ", ".join(
        str(np.shape(_raw(x))) if isinstance(x, Tensor | np.ndarray) else repr(x) for x in inputs
    )
    where = f"\n  created at {site}" if site else ""
    raise AnomalyError(f"'{op}' produced {kind} in {what} (input shapes: {shapes}){where}")


def backward_seed(root: Tensor) -> np.ndarray | None:
    """dL/d(root) the last ``root.backward()`` started from (1 for a scalar), or None if none ran on ``root``.

    Only the seed is kept (on the root, one number for a scalar loss): a picture of the graph recomputes
    every node's gradient from it (:func:`bpcore.graph.node_gradients`), so backward holds no more memory.
    """
    return getattr(root, "_seed", None)  # the slot is set by backward() only, so ops never pay for it


class SliceGrad:
    """A VJP's answer "``value`` is the gradient of ``x[index]``; the rest of ``x`` gets zero".

    An op that reads one slice of a large input (the LSTM cell reading step t of the sequence) returns
    this instead of a full array of zeros with the slice filled: backward allocates the zeros once per
    input and adds each slice into them in place (:func:`add_slice_grad`), with the same sums.
    """

    __slots__ = ("index", "value")

    def __init__(self, index, value: np.ndarray):
        self.index, self.value = index, value

    def dense(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """The gradient as a full array of ``shape``: zeros, with ``value`` at ``index``."""
        return add_slice_grad(None, self, shape, dtype, owned=False)


def add_slice_grad(previous: np.ndarray | None, grad: SliceGrad, shape, dtype, owned: bool) -> np.ndarray:
    """``previous + grad.dense(shape, dtype)`` (``previous`` None: zeros), in place in ``previous`` when
    ``owned`` (an array backward made itself), else in a copy. ``value`` is cast to ``dtype`` first, as a
    full gradient of another dtype would be."""
    value = grad.value if grad.value.dtype == dtype else grad.value.astype(dtype)
    if previous is None:
        previous = np.zeros(shape, dtype)
        previous[grad.index] = value
        return previous
    if not owned:
        previous = np.array(previous, copy=True)
    previous[grad.index] += value
    return previous


def dense_grad(grad, shape: tuple[int, ...], dtype) -> np.ndarray:
    """What a VJP returned, as an array: a :class:`SliceGrad` made full, anything else as it is."""
    return grad.dense(shape, dtype) if type(grad) is SliceGrad else grad


def run_backward(root: Tensor, grad: np.ndarray) -> None:
    """Walk the graph from ``root`` back to the leaves, calling each recorded VJP once.

    The walk is in decreasing creation number (see :func:`topological_order`), kept in a heap of the
    tensors a gradient has reached: a tensor is taken off only when every tensor made from it is
    done, so its gradient is complete. Tensors no gradient reaches are never visited.

    A leaf with no ``.grad`` yet keeps the array that arrives (see :func:`_adopt_or_copy`); a second
    backward adds into it in place.
    """
    grads: dict[Tensor, np.ndarray] = {root: grad}
    summed: set[Tensor] = set()  # tensors whose gradient so far is an array made here by adding
    waiting = [(-root._number, root)]  # a heap: the most recently created tensor comes first
    check = SWITCHES.anomaly
    epoch = SWITCHES.inplace_epoch
    while waiting:
        node = heappop(waiting)[1]
        g = grads.pop(node)
        if epoch > node._epoch and node._grad_inputs:  # something changed in place since this op ran
            check_unchanged(node)
        if node._hooks:
            g = _run_hooks(node, g)
        if node.op is None or node._retain:
            if node.grad is None:
                node.grad = _adopt_or_copy(g, node.data.dtype)
            else:
                node.grad += g
        rules, saved, inputs = node._vjps, node._saved, node.inputs
        for index in node._grad_inputs:
            x = inputs[index]
            if check:
                with np.errstate(all="ignore"):
                    gx = saved[index](g) if rules is None else rules[index](g, *saved)
            else:
                gx = saved[index](g) if rules is None else rules[index](g, *saved)
            data = x.data
            if type(gx) is SliceGrad:  # one slice of the input: added into its gradient in place
                if check:
                    which = f"the gradient for input {index}" if len(node.inputs) > 1 else "its gradient"
                    check_finite(gx.value, which, node.op, node.inputs, node._site)
                previous = grads.get(x)
                owned = x in summed and isinstance(previous, np.ndarray)
                grads[x] = add_slice_grad(previous, gx, data.shape, data.dtype, owned)
                if previous is None:
                    heappush(waiting, (-x._number, x))
                summed.add(x)
                continue
            if gx.shape != data.shape:
                gx = unbroadcast(gx, data.shape)
            if gx.dtype != data.dtype:
                gx = gx.astype(data.dtype)
            if check:
                which = f"the gradient for input {index}" if len(node.inputs) > 1 else "its gradient"
                check_finite(gx, which, node.op, node.inputs, node._site)
            previous = grads.get(x)
            if previous is None:
                grads[x] = gx
                heappush(waiting, (-x._number, x))
            elif x in summed and isinstance(previous, np.ndarray):  # a sum made here: add in place
                previous += gx
            else:
                grads[x] = previous + gx
                summed.add(x)
        gx = previous = None  # hold no gradient between nodes: a leaf adopts only what nothing else holds


# How a node's VJPs are kept (``_grad_inputs``, ``_vjps``, ``_saved``) is the business of this module and
# of ``Primitive.__call__`` (ops.py), which sets them; other code (gradcheck, draw_graph, bp.compile)
# reads them through the two functions below and changes them only through ``watch_vjps``.


def vjp_edges(node: Tensor) -> list[tuple[int, Tensor, Callable, tuple | None]]:
    """``(position, input, rule, saved)`` for each input of ``node`` that backward sends a gradient to.

    dL/d(input) is ``rule(g, *saved)`` for an op that declared its VJPs in the decorator (``saved``: the
    arrays its forward returned for them), and ``rule(g)`` with ``saved`` None for an op whose forward
    returned one closure per input. A leaf, or an op none of whose inputs requires grad, has none.
    """
    rules, saved, inputs = node._vjps, node._saved, node.inputs
    if rules is None:
        return [(i, inputs[i], saved[i], None) for i in node._grad_inputs]
    return [(i, inputs[i], rules[i], saved) for i in node._grad_inputs]


def vjp_of(node: Tensor, index: int) -> Callable[[np.ndarray], np.ndarray]:
    """The VJP of the op that made ``node``, for its input ``index``, as one function of ``g``."""
    if node._vjps is None:
        return node._saved[index]
    rule, saved = node._vjps[index], node._saved
    return lambda g: rule(g, *saved)


def watch_vjps(node: Tensor, wrap: Callable[[int, Callable], Callable]) -> Callable[[], None]:
    """Until the returned ``undo()`` is called, backward calls ``wrap(index, vjp_of(node, index))`` (a
    function of ``g``) for each input of ``node`` instead of its VJP: bp.compile learns what each returns."""
    kept = node._vjps, node._saved
    watched = [None] * len(node.inputs)
    for i in node._grad_inputs:
        watched[i] = wrap(i, vjp_of(node, i))
    node._vjps, node._saved = None, tuple(watched)

    def undo() -> None:
        node._vjps, node._saved = kept

    return undo


def _run_hooks(node: Tensor, g: np.ndarray) -> np.ndarray:
    for hook in list(node._hooks):
        replaced = hook(g)
        if replaced is not None:
            replaced = np.asarray(replaced.data if isinstance(replaced, Tensor) else replaced)
            if replaced.shape != node.shape:
                raise ShapeError(
                    f"a hook returned a gradient of shape {replaced.shape} for a tensor of shape {node.shape}"
                )
            g = replaced
    return g


# ----------------------------------------------------------------------------- the cyclic collector


class _FullPassPacing:
    """How often Python's cyclic garbage collector rescans everything while graphs are recorded.

    A recorded graph holds no reference cycle (reference counting frees it), yet every node is an
    object the collector tracks, and each full pass of the collector (its oldest generation) rescans
    all of them. CPython's collector (3.11 here) starts a full pass once the objects that survived the last one
    have grown by 25%: building a graph of n nodes then costs full passes over about 5n objects, and
    a chain of nodes is its slowest case (each node is first taken as unreachable, then moved back),
    so the time per node grew with the graph (tests/test_graph_memory.py, bench/graph_build.py).

    Installed in ``gc.callbacks``, this runs after each full pass. When at least ``RECORDING`` tensors
    were made since the previous one (a graph is being recorded), it sets the collector's third threshold so that the
    next full pass waits until as many objects have been allocated (net, counted by the collector) as
    ``sys.getallocatedblocks()`` counts alive now: the memory in use may about double between full
    passes, rather than grow by a quarter. CPython's own 25% rule still applies as well, and the two
    younger generations, which collect most cycles made by user code, run as before. When fewer
    tensors were made between two full passes, the thresholds go back to what they were (a threshold the user
    sets with ``gc.set_threshold`` becomes the one kept). No collection is skipped or disabled: a
    cycle that reaches the oldest generation is freed by the next full pass, at the latest once the
    process has allocated as many objects again as it held.
    """

    RECORDING = 1_000  # tensors made since the last full pass that mean a graph is being recorded

    def __init__(self):
        self.tensors_made = next(_creation_counter)
        self.user_thresholds = self.set_thresholds = gc.get_threshold()

    def __call__(self, phase: str, info: dict) -> None:
        if phase != "stop" or info["generation"] != 2:
            return
        now = gc.get_threshold()
        if now != self.set_thresholds:  # someone else changed them: theirs are the ones to go back to
            self.user_thresholds = now
        made = next(_creation_counter)  # (a number taken here is never a tensor's: only their order counts)
        recording, self.tensors_made = made - self.tensors_made >= self.RECORDING, made
        young, middle, oldest = self.user_thresholds
        if recording and young > 0 and middle > 0:  # a full pass once per `oldest` middle passes, each of
            oldest = max(oldest, sys.getallocatedblocks() // (young * middle))  # young * middle allocations
        self.set_thresholds = (young, middle, oldest)
        gc.set_threshold(*self.set_thresholds)


def _install_pacing() -> _FullPassPacing:
    """One pacing in ``gc.callbacks``, even when this module runs again (bpcore imported a second time, or
    reloaded): an earlier copy's is taken out, and the thresholds it would have given back are the ones kept.
    Two pacings each took the other's raised threshold for the user's, and it stayed raised."""
    pacing = _FullPassPacing()
    for earlier in [c for c in gc.callbacks if type(c).__name__ == "_FullPassPacing" and
                    type(c).__module__ == __name__]:
        gc.callbacks.remove(earlier)
        if pacing.set_thresholds == earlier.set_thresholds:  # still the ones it set: the user's are its own
            pacing.user_thresholds = earlier.user_thresholds
    gc.callbacks.append(pacing)
    return pacing


pace_full_collections = _install_pacing()
