"""Gradient checking: prove an analytic gradient against central differences.

The numerical slope of a scalar function L at x, one coordinate at a time::

    dL/dx_i  ~  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

Its error has two sources pulling in opposite directions: truncation, which shrinks like eps**2,
and floating-point rounding in L, which grows like (machine epsilon * |L|) / eps. In float64 the
sum is smallest around eps = 1e-5 .. 1e-6 (:func:`step_size_sweep` measures the whole curve).

A non-scalar output y is checked through L = sum(v * y) for a fixed random v: one backward pass
and two forward passes per input element, yet every entry of the Jacobian still matters.

How to read the relative error (the scale learners meet in CS231n-style courses):

    <= 1e-7          good
    1e-7 .. 1e-4     suspicious, unless the function has a kink (relu, abs, max) near the inputs
    1e-4 .. 1e-2     likely wrong
    >  1e-2          wrong
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcore.tensor import (
    SWITCHES,
    Tensor,
    dense_grad,
    no_grad,
    topological_order,
    unbroadcast,
    vjp_edges,
    vjp_of,
)

SCALE = ((1e-7, "good"), (1e-4, "suspicious unless there is a kink"), (1e-2, "likely wrong"))


def verdict(rel_err: float) -> str:
    """Name the band of the learner's scale that a relative error falls in."""
    for bound, word in SCALE:
        if rel_err <= bound:
            return word
    return "wrong"


def relative_error(analytic: np.ndarray, numerical: np.ndarray) -> np.ndarray:
    """|a - n| / max(|a|, |n|), elementwise.

    An element is measured against its own size, but never against less than a millionth of the
    largest gradient of its tensor: central differences cannot resolve gradients smaller than that.
    """
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numerical, dtype=np.float64)
    size = np.maximum(np.abs(a), np.abs(n))
    floor = max(float(size.max(initial=0.0)) * 1e-6, 1e-12)
    return np.abs(a - n) / np.maximum(size, floor)


def norm_relative_error(analytic: np.ndarray, numerical: np.ndarray) -> float:
    """||a - n|| / max(||a||, ||n||) over a whole tensor: insensitive to the rounding noise of tiny elements."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numerical, dtype=np.float64)
    size = max(float(np.linalg.norm(a)), float(np.linalg.norm(n)))
    return float(np.linalg.norm(a - n) / size) if size > 0 else 0.0


def numerical_gradient(f, x: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to every element of ``x`` (edited in place)."""
    if not x.flags.c_contiguous:  # reshape(-1) would copy, and the nudges would never reach x
        raise ValueError("numerical_gradient needs a C-contiguous array; pass np.ascontiguousarray(x)")
    grad = np.zeros(x.shape, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + eps
        up = f()
        flat[i] = keep - eps
        down = f()
        flat[i] = keep
        gflat[i] = (up - down) / (2 * eps)
    return grad


@dataclass
class InputCheck:
    """Analytic and numerical gradient of one input, and how far apart they are."""

    name: str
    shape: tuple
    analytic: np.ndarray
    numerical: np.ndarray
    max_abs_err: float
    max_rel_err: float  # worst single element (its own size, floored): what pass/fail looks at
    rel_err: float  # ||analytic - numerical|| / max(||analytic||, ||numerical||): the learner's scale
    passed: bool

    @property
    def verdict(self) -> str:
        return verdict(self.rel_err)


@dataclass
class NodeCheck:
    """One op checked on its own (localize mode)."""

    op: str
    site: str | None
    input_index: int
    max_rel_err: float
    passed: bool


@dataclass
class GradcheckReport:
    """Truthy when every input passed. ``print(report)`` shows one row per input."""

    passed: bool
    eps: float
    inputs: list[InputCheck]
    nodes: list[NodeCheck] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def first_bad_node(self) -> NodeCheck | None:
        return next((n for n in self.nodes if not n.passed), None)

    def __str__(self) -> str:
        head = "passed" if self.passed else "FAILED"
        lines = [f"gradcheck {head} (float64 central differences, eps={self.eps:g})"]
        lines.append(f"  {'input':<8}{'shape':<14}{'max abs err':>13}{'rel err':>13}   verdict")
        for c in self.inputs:
            verdict_text = c.verdict if c.passed else f"{c.verdict}; an element fails (max rel {c.max_rel_err:.1e})"
            lines.append(f"  {c.name:<8}{c.shape!s:<14}{c.max_abs_err:>13.2e}{c.rel_err:>13.2e}   {verdict_text}")
        if self.nodes:
            bad = self.first_bad_node
            if bad is None:
                lines.append(
                    f"  localize: all {len(self.nodes)} op-input pairs agree with finite differences"
                )
            else:
                lines.append(
                    f"  localize: first op whose gradient disagrees: '{bad.op}' (input {bad.input_index}, "
                    f"rel err {bad.max_rel_err:.1e})"
                )
                if bad.site:
                    lines.append(f"    created at {bad.site}")
        lines.append(
            "  scale: <=1e-7 good | 1e-7..1e-4 suspicious unless a kink | "
            "1e-4..1e-2 likely wrong | >1e-2 wrong"
        )
        return "\n".join(lines)

    __repr__ = __str__


def _leaves(inputs) -> list:
    """float64 copies of the inputs that can be differentiated; other inputs pass through as given."""
    leaves = []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else np.asarray(x) if isinstance(x, list | float) else x
        if isinstance(data, np.ndarray) and np.issubdtype(data.dtype, np.floating):
            name = x.name if isinstance(x, Tensor) and x.name else None
            leaves.append(Tensor(np.array(data, dtype=np.float64, order="C"), requires_grad=True, name=name))
        else:
            leaves.append(x)
    return leaves


def gradcheck(
    fn,
    *inputs,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    seed: int = 0,
    localize: bool = False,
) -> GradcheckReport:
    """Check the gradients of ``fn(*inputs)`` against float64 central differences.

    Args:
        fn: takes the inputs as tensors and returns a tensor of any shape.
        inputs: tensors or arrays. Floating ones are copied to float64 and checked; others
            (integer targets, index arrays) are passed through unchanged.
        eps: the finite-difference step.
        rtol, atol: an element passes when its relative error is <= rtol or its absolute
            error is <= atol.
        localize: also check every op of the graph on its own and name the first whose VJP
            disagrees with finite differences of its own forward function.

    Returns:
        A :class:`GradcheckReport`: truthy on success, printable as a table.
    """
    leaves = _leaves(inputs)
    checked = [(i, t) for i, t in enumerate(leaves) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise TypeError("gradcheck needs at least one floating-point input to differentiate")
    if localize:
        SWITCHES.record_sites += 1
    try:
        out = fn(*leaves)
    finally:
        if localize:
            SWITCHES.record_sites -= 1
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a bpcore Tensor, got {type(out).__name__}")
    rng = np.random.default_rng(seed)
    v = np.ones(out.shape) if out.size == 1 else rng.standard_normal(out.shape)
    if out.requires_grad:
        out.backward(v)

    def loss() -> float:
        with no_grad():
            return float(np.sum(v * fn(*leaves).data))

    results = []
    for index, leaf in checked:
        analytic = leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
        numerical = numerical_gradient(loss, leaf.data, eps)
        abs_err = np.abs(analytic - numerical)
        rel_err = relative_error(analytic, numerical)
        ok = bool(np.all((rel_err <= rtol) | (abs_err <= atol)))
        results.append(
            InputCheck(
                name=leaf.name or f"x{index}",
                shape=leaf.shape,
                analytic=analytic,
                numerical=numerical,
                max_abs_err=float(abs_err.max(initial=0.0)),
                max_rel_err=float(rel_err.max(initial=0.0)),
                rel_err=norm_relative_error(analytic, numerical),
                passed=ok,
            )
        )
    nodes = check_each_op(out, eps=eps, rtol=rtol, atol=atol, seed=seed) if localize else []
    return GradcheckReport(passed=all(r.passed for r in results), eps=eps, inputs=results, nodes=nodes)


def check_each_op(out: Tensor, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-8, seed: int = 0):
    """Check every recorded op of the graph behind ``out`` in isolation, inputs first.

    For each op, its own VJP (with a random upstream gradient) is compared with central
    differences of its own forward function, so a wrong rule is found where it lives rather
    than as a wrong gradient somewhere downstream.
    """
    rng = np.random.default_rng(seed)
    checks = []
    for node in topological_order(out):
        if node.op is None or node._primitive is None:
            continue
        arrays = [x.data if isinstance(x, Tensor) else x for x in node.inputs]
        upstream = rng.standard_normal(node.shape)
        for i, x, _, _ in vjp_edges(node):
            vjp = vjp_of(node, i)
            analytic = dense_grad(vjp(upstream.astype(node.dtype)), x.shape, np.float64)
            analytic = unbroadcast(np.asarray(analytic, dtype=np.float64), x.shape)
            probe = list(arrays)
            probe[i] = np.array(x.data, dtype=np.float64, order="C")

            def local_loss(probe=probe, forward=node._primitive.forward, settings=node._static or {}, v=upstream):
                value, _ = forward(*probe, **settings)
                return float(np.sum(v * value))

            numerical = numerical_gradient(local_loss, probe[i], eps)
            rel = relative_error(analytic, numerical)
            ok = bool(np.all((rel <= rtol) | (np.abs(analytic - numerical) <= atol)))
            checks.append(NodeCheck(node.op, node._site, i, float(rel.max(initial=0.0)), ok))
    return checks


@dataclass
class Comparison:
    """The result of :func:`compare`: exact, close, and the largest difference."""

    name: str
    exact: bool
    close: bool
    max_diff: float
    note: str = ""

    def __bool__(self) -> bool:
        return self.close

    def __str__(self) -> str:
        text = (
            f"{self.name:<12} exact: {self.exact!s:<5} close: {self.close!s:<5} max diff: {self.max_diff:.2e}"
        )
        return text + (f"  ({self.note})" if self.note else "")

    __repr__ = __str__


def compare(name: str, mine, reference, rtol: float = 1e-7, atol: float = 1e-10) -> Comparison:
    """Compare a hand-computed array with a reference (autodiff, numerical): exact / close / max diff.

    A shape mismatch is reported, not raised, and a transposed answer is recognised as such.
    """
    a = np.asarray(mine.data if isinstance(mine, Tensor) else mine, dtype=np.float64)
    b = np.asarray(reference.data if isinstance(reference, Tensor) else reference, dtype=np.float64)
    if a.shape != b.shape:
        note = f"shape {a.shape}, expected {b.shape}"
        if a.T.shape == b.shape and np.allclose(a.T, b, rtol=rtol, atol=atol):
            note += ": it is the transpose of the reference"
        return Comparison(name, False, False, float("inf"), note)
    diff = float(np.abs(a - b).max(initial=0.0))
    return Comparison(name, bool(np.array_equal(a, b)), bool(np.allclose(a, b, rtol=rtol, atol=atol)), diff)


@dataclass
class StepSizeSweep:
    """Relative error of central differences as a function of the step eps."""

    eps: np.ndarray
    rel_err: np.ndarray

    @property
    def best_eps(self) -> float:
        return float(self.eps[int(np.argmin(self.rel_err))])


def step_size_sweep(fn, x, eps_values=None) -> StepSizeSweep:
    """Measure the truncation-versus-rounding trade-off for ``fn`` at ``x``.

    ``fn`` maps a tensor to a tensor; the analytic gradient of sum(fn(x)) comes from backward and
    each eps gives one numerical estimate. Large eps: truncation error ~ eps^2. Tiny eps: rounding
    error ~ 1e-16 / eps. The minimum sits in between.
    """
    eps_values = np.logspace(-1, -13, 25) if eps_values is None else np.asarray(eps_values, dtype=np.float64)
    leaf = _leaves([x])[0]
    fn(leaf).sum().backward()
    analytic = leaf.grad

    def loss() -> float:
        with no_grad():
            return float(fn(leaf).data.sum())

    errors = []
    for eps in eps_values:
        numerical = numerical_gradient(loss, leaf.data, float(eps))
        errors.append(float(np.max(relative_error(analytic, numerical))))
    return StepSizeSweep(eps=eps_values, rel_err=np.array(errors))
