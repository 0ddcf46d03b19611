"""Code questions: the learner writes a function in the notebook; we call it and compare with the engine.

The learner's function arrives as a Python object (``quiz.submit(my_function)``); its text is never
read or run by us. Each :class:`Reference` says how to make random inputs, how the engine computes
the right answer, and how to call the learner's function. Two modes:

* ``values``:   ``fn(*inputs)`` is compared with the engine's forward value (shape first, then allclose).
* ``gradient``: ``fn`` is a backward function. It becomes the VJP of a one-off primitive whose forward
  is the engine's, and ``bp.gradcheck`` compares it with central differences. The feedback also lines
  it up against the engine's own gradient: exact / close / max diff.

An exception inside the learner's function is reported as what it is and where (the line of *their*
code), never as a traceback through this package.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bpcore.gradcheck import compare, gradcheck
from bpcore.nn import functional as F
from bpcore.ops import Primitive
from bpcore.tensor import Tensor, no_grad

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../bpcore


class LearnerError(Exception):
    """The learner's function failed or returned the wrong kind of thing; the message is for them."""


@dataclass
class Reference:
    """What a code question checks.

    Attributes:
        name: the registry key, used by ``reference = "..."`` in a bank.
        signature: the ``def`` line shown to the learner.
        mode: "values" or "gradient".
        inputs: rng -> the list of input arrays for one trial.
        engine: the engine's function of those inputs as tensors (a forward pass).
        call: (learner_fn, input arrays, upstream gradient or None) -> what it returned, as a tuple.
        returns: names of the returned values (in gradient mode, one gradient per input, in input order).
        solution, wrong: a correct and a plausible wrong implementation, run by ``bpcore validate`` to
            prove that the checker accepts the one and rejects the other.
    """

    name: str
    signature: str
    mode: str
    inputs: Callable[[np.random.Generator], list[np.ndarray]]
    engine: Callable[..., Tensor]
    call: Callable
    returns: tuple[str, ...]
    solution: Callable
    wrong: Callable
    trials: int = 3

    @property
    def function(self) -> str:
        """The name the learner's function should have (from the signature)."""
        return self.signature.split("(")[0].removeprefix("def ").strip()


# ----------------------------------------------------------------------------- running learner code


def function_name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def describe_exception(error: BaseException, fn) -> str:
    """'your function raised KeyError: 'x' at line 3 of sigmoid_backward: `return cache['x']`'."""
    text = f"your function raised {type(error).__name__}: {error}"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(_PACKAGE_DIR)]
    if frames:
        frame = frames[-1]
        code = getattr(fn, "__code__", None)
        if code is not None and frame.filename == code.co_filename:
            where = f"line {frame.lineno - code.co_firstlineno + 1} of {function_name(fn)}"
        else:
            where = f"{frame.name}, line {frame.lineno}"
        text += f" (at {where}" + (f": `{frame.line.strip()}`)" if frame.line else ")")
    return text


def run_learner(fn, *args):
    """Call the learner's function on copies of the inputs (so in-place edits cannot corrupt a check)."""
    copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    try:
        with np.errstate(all="ignore"):  # overflow in their code shows up as inf/nan in the result
            return fn(*copies)
    except Exception as error:  # any failure of theirs becomes a readable message
        raise LearnerError(describe_exception(error, fn)) from None


def as_array(value, name: str, shape: tuple, fn) -> np.ndarray:
    """The learner's returned value as a float array of the expected shape, or a LearnerError saying why not."""
    if value is None:
        raise LearnerError(f"{function_name(fn)} returned None for {name}: did you forget a `return`?")
    value = value.data if isinstance(value, Tensor) else value
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise LearnerError(f"{name} should be an array of numbers; got a {type(value).__name__}") from None
    if array.shape != shape:
        note = " (that is the transposed shape)" if array.shape == shape[::-1] and len(shape) == 2 else ""
        raise LearnerError(
            f"{name} has shape {array.shape}{note}, expected {shape}: "
            "a gradient has the shape of what it differentiates"
        )
    return array


def _tuple(result, count: int, fn) -> tuple:
    if count == 1:
        return (result,)
    if not isinstance(result, tuple | list) or len(result) != count:
        raise LearnerError(f"{function_name(fn)} should return {count} values, got {type(result).__name__}")
    return tuple(result)


# ----------------------------------------------------------------------------- one trial of each mode


def _values_trial(reference: Reference, fn, arrays: list[np.ndarray]) -> tuple[bool, list[str]]:
    with no_grad():
        expected = reference.engine(*[Tensor(a) for a in arrays]).data
    got = as_array(_tuple(reference.call(fn, arrays, None), 1, fn)[0], reference.returns[0], expected.shape, fn)
    if not np.all(np.isfinite(got)):
        biggest = float(np.max(np.abs(arrays[0])))
        return False, [f"the result contains inf or nan for inputs as large as {biggest:g}: is it numerically stable?"]
    result = compare(reference.returns[0], got, expected, rtol=1e-6, atol=1e-9)
    return bool(result), [f"`{result}` (against the engine)"]


def _gradient_trial(reference: Reference, fn, arrays: list[np.ndarray], rng) -> tuple[bool, list[str]]:
    def learner_grads(inputs, upstream):
        returned = _tuple(reference.call(fn, list(inputs), upstream), len(inputs), fn)
        return [as_array(v, n, x.shape, fn) for v, n, x in zip(returned, reference.returns, inputs, strict=True)]

    def forward(*inputs):
        with no_grad():
            value = reference.engine(*[Tensor(x) for x in inputs]).data
        return value, tuple((lambda g, i=i: learner_grads(inputs, g)[i]) for i in range(len(inputs)))

    # the learner's backward against the engine's, on one random upstream gradient
    leaves = [Tensor(np.array(a), requires_grad=True) for a in arrays]
    out = reference.engine(*leaves)
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    mine = learner_grads(arrays, upstream)
    lines = [f"`{compare(n, m, leaf.grad)}`" for n, m, leaf in zip(reference.returns, mine, leaves, strict=True)]
    # and against finite differences: the independent check
    report = gradcheck(Primitive(f"your {reference.name}", forward), *arrays)
    worst = max(report.inputs, key=lambda c: c.max_rel_err)
    lines.append(f"gradient check: worst relative error {worst.max_rel_err:.1e} ({worst.verdict})")
    return bool(report), lines


def check_function(reference: Reference, fn, seed: int) -> tuple[int, list[str]]:
    """Run ``reference.trials`` random trials. Returns (trials passed, feedback lines of the first failure)."""
    if not callable(fn):
        raise LearnerError(
            f"expected your function itself (for example submit({reference.function})), "
            f"got a {type(fn).__name__}; text is never run"
        )
    rng = np.random.default_rng(seed)
    passed, first_failure, last = 0, None, []
    for trial in range(1, reference.trials + 1):
        arrays = reference.inputs(rng)
        try:
            if reference.mode == "values":
                ok, lines = _values_trial(reference, fn, arrays)
            else:
                ok, lines = _gradient_trial(reference, fn, arrays, rng)
        except LearnerError as error:
            ok, lines = False, [str(error)]
        shapes = ", ".join(str(a.shape) for a in arrays)
        if ok:
            passed += 1
            last = [f"trial {trial} (input shapes {shapes}): passed", *lines]
        elif first_failure is None:
            first_failure = [f"trial {trial} (input shapes {shapes}): failed", *lines]
    return passed, first_failure or last


# ----------------------------------------------------------------------------- the references


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


def _sigmoid_backward_solution(z, upstream):
    s = _sigmoid(z)
    return upstream * s * (1 - s)


def _sigmoid_backward_wrong(z, upstream):  # forgets the upstream gradient: a local derivative, not a VJP
    s = _sigmoid(z)
    return s * (1 - s)


def _linear_backward_solution(x, W, upstream):
    return upstream @ W, upstream.T @ x, upstream.sum(axis=0)


def _linear_backward_wrong(x, W, upstream):  # averages the bias gradient: the 1/N already lives in upstream
    return upstream @ W, upstream.T @ x, upstream.mean(axis=0)


def _softmax_solution(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _softmax_wrong(z):  # not shifted: exp overflows for large logits
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _softmax_inputs(rng):
    z = rng.standard_normal((4, 5)) * 3
    z[rng.integers(4)] += 1000.0  # one row of huge logits: only a stable softmax survives it
    return [z]


REFERENCES: dict[str, Reference] = {
    r.name: r
    for r in (
        Reference(
            name="sigmoid_backward",
            signature="def sigmoid_backward(z, upstream):  # returns dL/dz",
            mode="gradient",
            inputs=lambda rng: [rng.standard_normal((3, 4)) * 2],
            engine=lambda z: z.sigmoid(),
            call=lambda fn, inputs, upstream: run_learner(fn, inputs[0], upstream),
            returns=("dL/dz",),
            solution=_sigmoid_backward_solution,
            wrong=_sigmoid_backward_wrong,
        ),
        Reference(
            name="linear_backward",
            signature="def linear_backward(x, W, upstream):  # returns (dL/dx, dL/dW, dL/db)",
            mode="gradient",
            inputs=lambda rng: [rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2)],
            engine=lambda x, W, b: F.linear(x, W, b),
            call=lambda fn, inputs, upstream: run_learner(fn, inputs[0], inputs[1], upstream),
            returns=("dL/dx", "dL/dW", "dL/db"),
            solution=_linear_backward_solution,
            wrong=_linear_backward_wrong,
        ),
        Reference(
            name="softmax",
            signature="def softmax(z):  # z has shape (N, C); each row becomes probabilities",
            mode="values",
            inputs=_softmax_inputs,
            engine=lambda z: z.softmax(axis=1),
            call=lambda fn, inputs, upstream: run_learner(fn, inputs[0]),
            returns=("softmax(z)",),
            solution=_softmax_solution,
            wrong=_softmax_wrong,
        ),
    )
}
