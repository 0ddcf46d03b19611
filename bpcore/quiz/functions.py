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

The learner's function runs in the kernel, so what it does to the kernel is contained: a check stops
after :data:`TIME_LIMIT` seconds (an infinite loop is reported, not waited for); ``sys.exit()`` is an
error like any other; results that are complex, not numbers, or inf/nan are refused; and gradient
recording (a ``bp.no_grad()`` left entered) and the random generators (numpy's global one, bpcore's,
Python's) are put back as they were after every call, with feedback saying what the function did.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from bpcore import random as bp_random
from bpcore.gradcheck import compare, gradcheck
from bpcore.nn import functional as F
from bpcore.ops import Primitive
from bpcore.tensor import SWITCHES, Tensor, enable_grad, no_grad

TIME_LIMIT = 10.0  # seconds one check (all its trials) may take; the learner's function is most of it

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../bpcore


class LearnerError(Exception):
    """The learner's function failed or returned the wrong kind of thing; the message is for them."""


class TimeUp(BaseException):
    """Raised into the thread running a check when its time limit is over.

    A BaseException, so that a learner's ``except Exception`` around their loop does not swallow it.
    """


@contextmanager
def time_limit(seconds: float):
    """Raise :class:`TimeUp` in this thread after ``seconds``.

    On the main thread an interval timer interrupts even a ``time.sleep``; on another thread (a widget
    callback) a watchdog raises it asynchronously, which a loop of Python code notices within a few
    bytecodes. Neither stops a single numpy call that never returns to Python.
    """
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):

        def time_up(signum, frame):
            raise TimeUp

        previous = signal.signal(signal.SIGALRM, time_up)
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return
    target, done, fired = threading.get_ident(), threading.Event(), []

    def watchdog():
        if not done.wait(seconds):
            fired.append(True)
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), ctypes.py_object(TimeUp))

    guard = threading.Thread(target=watchdog, daemon=True)
    guard.start()
    try:
        yield
    finally:
        done.set()
        guard.join()
        if fired:  # raised already (and being handled), or still pending: then it must not land later
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)


class _KernelState:
    """Grad mode and the random generators, as they were before the learner's function ran.

    ``restore()`` puts them back and returns what the function changed, in words for the feedback.
    """

    def __init__(self):
        self.grad = SWITCHES.grad_enabled
        self.numpy = np.random.get_state()  # noqa: NPY002 - the legacy global state is what learners reseed
        self.package = (bp_random._generator, bp_random._generator.bit_generator.state)
        self.python = random.getstate()

    def restore(self) -> list[str]:
        notes = []
        if SWITCHES.grad_enabled != self.grad:
            SWITCHES.grad_enabled = self.grad
            notes.append(
                "your function left gradient recording off (a `bp.no_grad()` entered and never exited); "
                "it was switched back on after the check"
                if self.grad
                else "your function switched gradient recording on and left it on; it was switched back off"
            )
        now = np.random.get_state()  # noqa: NPY002
        if now[0] != self.numpy[0] or not np.array_equal(now[1], self.numpy[1]) or now[2:] != self.numpy[2:]:
            np.random.set_state(self.numpy)  # noqa: NPY002
            notes.append(
                "your function reseeded or drew from numpy's global random generator (`np.random.seed`, "
                "`np.random.randn`, ...); its state was put back, so your notebook's random numbers are unchanged"
            )
        generator, state = self.package
        if bp_random._generator is not generator or generator.bit_generator.state != state:
            bp_random._generator = generator
            generator.bit_generator.state = state
            notes.append(
                "your function reseeded or drew from bpcore's random generator (`bp.manual_seed`, `bp.randn`, ...); "
                "its state was put back"
            )
        if random.getstate() != self.python:
            random.setstate(self.python)
            notes.append("your function reseeded or drew from Python's `random` module; its state was put back")
        return notes


_notes: list[str] = []  # what the learner's function did to the kernel, during the current check


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
        mistake: the known mistake ``wrong`` makes, in words: named in the feedback when the learner's
            function gives what ``wrong`` gives on every failed trial.
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
    mistake: str = ""

    @property
    def function(self) -> str:
        """The name the learner's function should have (from the signature)."""
        return self.signature.split("(")[0].removeprefix("def ").strip()


# ----------------------------------------------------------------------------- running learner code


def function_name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def describe_exception(error: BaseException, fn) -> str:
    """'your function raised KeyError: 'x' at line 3 of sigmoid_backward: `return cache['x']`'."""
    try:
        said = str(error)
    except Exception:  # an exception whose own __str__ raises
        said = "(its message could not be printed)"
    text = f"your function raised {type(error).__name__}: {said}"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(_PACKAGE_DIR)]
    if frames:
        frame = frames[-1]
        code = getattr(fn, "__code__", None)
        if code is not None and frame.filename == code.co_filename and frame.name == code.co_name:
            where = f"line {frame.lineno - code.co_firstlineno + 1} of {function_name(fn)}"
        else:
            where = f"{frame.name}, line {frame.lineno}"
        text += f" (at {where}" + (f": `{frame.line.strip()}`)" if frame.line else ")")
    return text


def run_learner(fn, *args):
    """Call the learner's function on copies of the inputs (so in-place edits cannot corrupt a check)."""
    copies = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    before = _KernelState()
    try:
        with np.errstate(all="ignore"):  # overflow in their code shows up as inf/nan in the result
            return fn(*copies)
    except SystemExit as error:
        raise LearnerError(
            f"your function called sys.exit({error.code!r}) (or raised SystemExit): it must return its result; "
            "the kernel keeps running"
        ) from None
    except Exception as error:  # any failure of theirs becomes a readable message
        raise LearnerError(describe_exception(error, fn)) from None
    finally:
        _notes.extend(note for note in before.restore() if note not in _notes)


def as_array(value, name: str, shape: tuple, fn, finite: bool = True) -> np.ndarray:
    """The learner's returned value as a float array of the expected shape, or a LearnerError saying why not.

    Real numbers only: a complex result (its imaginary part would be dropped without a word), an array of
    objects or text, and (with ``finite``) inf or nan are refused.
    """
    if value is None:
        raise LearnerError(f"{function_name(fn)} returned None for {name}: did you forget a `return`?")
    value = value.data if isinstance(value, Tensor) else value
    try:
        raw = np.asarray(value)
    except Exception as error:  # the returned object's own __array__ (or __len__, __getitem__) raised
        raise LearnerError(
            f"{name}: the {type(value).__name__} your function returned could not be read as an array "
            f"({describe_exception(error, fn).removeprefix('your function raised ')})"
        ) from None
    if raw.dtype.kind == "c":
        raise LearnerError(
            f"{name} has complex values (dtype {raw.dtype}): a gradient or value of real inputs is real; "
            "drop the imaginary part where it came from"
        )
    if raw.dtype.kind not in "biuf":
        raise LearnerError(f"{name} should be an array of numbers; got a {type(value).__name__} of dtype {raw.dtype}")
    array = raw.astype(np.float64)
    if finite and not np.all(np.isfinite(array)):
        raise LearnerError(f"{name} contains inf or nan: a gradient of finite inputs is finite")
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
    got = as_array(
        _tuple(reference.call(fn, arrays, None), 1, fn)[0], reference.returns[0], expected.shape, fn, finite=False
    )
    if not np.all(np.isfinite(got)):
        biggest = float(np.max(np.abs(arrays[0])))
        return False, [f"the result contains inf or nan for inputs as large as {biggest:g}: is it numerically stable?"]
    result = compare(reference.returns[0], got, expected, rtol=1e-6, atol=1e-9)
    return bool(result), [f"`{result}` (against the engine)"]


def _known_mistake(reference: Reference, fn, arrays: list[np.ndarray], upstream) -> bool:
    """Whether ``fn`` gives what the reference's known wrong implementation gives on these inputs."""
    try:
        mine = _tuple(reference.call(fn, arrays, upstream), len(reference.returns), fn)
        wrong = _tuple(reference.call(reference.wrong, arrays, upstream), len(reference.returns), reference.wrong)
        for m, w, name in zip(mine, wrong, reference.returns, strict=True):
            w = np.asarray(w, dtype=np.float64)
            m = as_array(m, name, w.shape, fn, finite=False)  # anything odd it returned: a LearnerError
            if not np.allclose(m, w, rtol=1e-6, atol=1e-9, equal_nan=True):
                return False
    except (LearnerError, TypeError, ValueError):
        return False
    return not all(np.allclose(np.asarray(w, dtype=np.float64), 0) for w in wrong)


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
    worst = max(report.inputs, key=lambda c: c.rel_err)
    lines.append(f"gradient check: worst relative error {worst.rel_err:.1e} ({worst.verdict})")
    return bool(report), lines


def check_function(reference: Reference, fn, seed: int, limit: float | None = None) -> tuple[int, list[str]]:
    """Run ``reference.trials`` random trials. Returns (trials passed, feedback lines of the first failure)."""
    if not callable(fn):
        raise LearnerError(
            f"expected your function itself (for example submit({reference.function})), "
            f"got a {type(fn).__name__}; text is never run"
        )
    rng = np.random.default_rng(seed)
    passed, first_failure, last, mistaken, failed = 0, None, [], True, 0
    _notes.clear()
    started = time.monotonic()
    try:
        with time_limit(limit if limit is not None else TIME_LIMIT):
            for trial in range(1, reference.trials + 1):
                arrays = reference.inputs(rng)
                upstream_rng = np.random.default_rng([seed, trial])  # the known-mistake comparison's own draws
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
                    continue
                failed += 1
                if first_failure is None:
                    first_failure = [f"trial {trial} (input shapes {shapes}): failed", *lines]
                if mistaken and reference.mistake:
                    upstream = _upstream_of(reference, arrays, upstream_rng)
                    mistaken = _known_mistake(reference, fn, arrays, upstream)
    except TimeUp:
        seconds = time.monotonic() - started
        lines = [
            f"stopped after {seconds:.1f} s: your function was still running (the time limit is "
            f"{limit if limit is not None else TIME_LIMIT:g} s). An endless loop? A `while` whose condition never "
            f"changes? {passed} trial{'s' * (passed != 1)} passed before that."
        ]
        return passed, lines + [f"note: {note}" for note in _notes]
    feedback = first_failure or last
    if failed and mistaken and reference.mistake:
        feedback = [*feedback, f"It looks like: **{reference.mistake}**."]
    return passed, feedback + [f"note: {note}" for note in _notes]


def _upstream_of(reference: Reference, arrays: list[np.ndarray], rng) -> np.ndarray | None:
    """An upstream gradient for the known-mistake comparison (gradient mode), shaped like the engine's output."""
    if reference.mode != "gradient":
        return None
    with no_grad():
        shape = reference.engine(*[Tensor(a) for a in arrays]).shape
    return rng.standard_normal(shape)


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


# ----------------------------------------------------------------------------- issue 7: more references


def _relu_backward_solution(z, upstream):
    return upstream * (z > 0)


def _relu_backward_wrong(z, upstream):  # uses the ReLU's value as its slope
    return upstream * np.maximum(z, 0)


def _onehot_inputs(rng):
    n, c = int(rng.integers(2, 6)), 4
    return [rng.standard_normal((n, c)) * 2, np.eye(c)[rng.integers(0, c, n)]]


def _softmax_ce_engine(z, y):
    """dL/dz of F.cross_entropy by autodiff (the loss is a mean over the rows)."""
    with enable_grad():
        leaf = Tensor(np.array(z.data), requires_grad=True)
        F.cross_entropy(leaf, y.data.argmax(axis=1)).backward()
    return Tensor(leaf.grad)


def _softmax_ce_solution(z, y):
    return (_softmax_solution(z) - y) / z.shape[0]


def _softmax_ce_wrong(z, y):  # forgets the 1/N of the mean
    return _softmax_solution(z) - y


def _batchnorm_engine(x):
    mean = x.mean(axis=0, keepdims=True)
    return (x - mean) / (x.var(axis=0, keepdims=True, unbiased=False) + 1e-5).sqrt()


def _batchnorm_backward_solution(x, upstream):
    std = np.sqrt(x.var(axis=0) + 1e-5)
    xhat = (x - x.mean(axis=0)) / std
    return (upstream - upstream.mean(axis=0) - xhat * (upstream * xhat).mean(axis=0)) / std


def _batchnorm_backward_wrong(x, upstream):  # treats the batch statistics as constants
    return upstream / np.sqrt(x.var(axis=0) + 1e-5)


def _dropout_inputs(rng):
    shape = (int(rng.integers(2, 5)), 5)
    p = float(rng.choice([0.1, 0.3, 0.5]))
    return [rng.standard_normal(shape), (rng.random(shape) >= p).astype(np.float64), np.array(p)]


def _dropout_engine(upstream, mask, p):
    """The gradient of F.dropout's op, y = x * mask / (1 - p), by autodiff."""
    with enable_grad():
        x = Tensor(np.ones_like(upstream.data), requires_grad=True)
        (x * Tensor(mask.data / (1 - float(p.data)))).backward(upstream.data)
    return Tensor(x.grad)


def _dropout_solution(upstream, mask, p):
    return upstream * mask / (1 - p)


def _dropout_wrong(upstream, mask, p):  # forgets the inverted-dropout scale
    return upstream * mask


def _rnn_step_inputs(rng):
    n, d, m = 3, 2, 4
    return [
        rng.standard_normal((n, d)),
        rng.standard_normal((n, m)),
        rng.standard_normal((m, d)),
        rng.standard_normal((m, m)) * 0.5,
    ]


def _rnn_step_solution(x, h, W_xh, W_hh, upstream):
    h_new = np.tanh(x @ W_xh.T + h @ W_hh.T)
    g = upstream * (1 - h_new**2)
    return g @ W_xh, g @ W_hh, g.T @ x, g.T @ h


def _rnn_step_wrong(x, h, W_xh, W_hh, upstream):  # skips the tanh's slope
    g = upstream
    return g @ W_xh, g @ W_hh, g.T @ x, g.T @ h


def _clip_inputs(rng):
    scales = rng.permutation([0.05, 0.2, 3.0, 5.0])[:, None]  # every trial has rows below and above the cap
    return [rng.standard_normal((4, 6)) * scales, np.array(1.0)]


def _clip_engine(G, max_norm):
    """Each row through bp.optim.clip_grad_norm_ as one model's whole gradient."""
    from bpcore import optim

    rows = []
    for g in G.data:
        p = Tensor(np.zeros_like(g), requires_grad=True)
        p.grad = np.array(g, copy=True)
        optim.clip_grad_norm_([p], float(max_norm.data))
        rows.append(p.grad)
    return Tensor(np.stack(rows))


def _clip_solution(G, max_norm):
    norms = np.sqrt(np.sum(G**2, axis=1, keepdims=True))
    return G * np.minimum(1.0, max_norm / (norms + 1e-6))


def _clip_wrong(g, max_norm):  # clamps each entry instead: changes the direction
    return np.clip(g, -max_norm, max_norm)


def _momentum_inputs(rng):
    return [rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4)]


def _momentum_engine(w, velocity, grad):
    """bp.optim.SGD(lr=0.1, momentum=0.9) with its velocity buffer set to ``velocity``."""
    from bpcore import optim

    p = Tensor(np.array(w.data, copy=True), requires_grad=True)
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    sgd.state[id(p)] = {"momentum_buffer": np.array(velocity.data, copy=True)}
    p.grad = np.array(grad.data, copy=True)
    sgd.step()
    return Tensor(p.data)


def _momentum_solution(w, velocity, grad):
    return w - 0.1 * (0.9 * velocity + grad)


def _momentum_wrong(w, velocity, grad):  # ignores the velocity: plain SGD
    return w - 0.1 * grad


def _adam_inputs(rng):
    return [
        rng.standard_normal(4),
        rng.standard_normal(4) * 0.1,
        rng.random(4) * 0.01,
        rng.standard_normal(4),
        np.array(float(rng.integers(1, 20))),
    ]


def _adam_engine(w, m, v, grad, t):
    """bp.optim.Adam(lr=0.01) with its moments set to m, v after t - 1 steps, taking step t."""
    from bpcore import optim

    p = Tensor(np.array(w.data, copy=True), requires_grad=True)
    adam = optim.Adam([p], lr=0.01)
    adam.state[id(p)] = {
        "step": int(t.data) - 1,
        "exp_avg": np.array(m.data, copy=True),
        "exp_avg_sq": np.array(v.data, copy=True),
    }
    p.grad = np.array(grad.data, copy=True)
    adam.step()
    return Tensor(p.data)


def _adam_solution(w, m, v, grad, t):
    m = 0.9 * m + 0.1 * grad
    v = 0.999 * v + 0.001 * grad**2
    return w - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)


def _adam_wrong(w, m, v, grad, t):  # no bias correction
    m = 0.9 * m + 0.1 * grad
    v = 0.999 * v + 0.001 * grad**2
    return w - 0.01 * m / (np.sqrt(v) + 1e-8)


def _conv_inputs(rng):
    return [rng.standard_normal((5, 5)), rng.standard_normal((3, 3))]


def _conv_engine(x, upstream):
    """dL/dW of F.conv2d (stride 1, no padding) by autodiff, one channel in and out."""
    kh, kw = x.shape[0] - upstream.shape[0] + 1, x.shape[1] - upstream.shape[1] + 1
    with enable_grad():
        w = Tensor(np.zeros((1, 1, kh, kw)), requires_grad=True)
        F.conv2d(Tensor(np.array(x.data)[None, None]), w).backward(np.array(upstream.data)[None, None])
    return Tensor(w.grad[0, 0])


def _conv_solution(x, upstream):
    oh, ow = upstream.shape
    kh, kw = x.shape[0] - oh + 1, x.shape[1] - ow + 1
    return np.array([[np.sum(upstream * x[p : p + oh, q : q + ow]) for q in range(kw)] for p in range(kh)])


def _conv_wrong(x, upstream):  # flips the result: dL/dW of a true convolution, not of this cross-correlation
    return _conv_solution(x, upstream)[::-1, ::-1]


def _attention_inputs(rng):
    L, S, d, dv = 3, int(rng.integers(3, 6)), 4, 2
    return [rng.standard_normal((L, d)), rng.standard_normal((S, d)), rng.standard_normal((S, dv))]


def _attention_forward(Q, K):
    scores = Q @ K.T / np.sqrt(Q.shape[1])
    P = np.exp(scores - scores.max(axis=1, keepdims=True))
    return P / P.sum(axis=1, keepdims=True)


def _attention_backward_solution(Q, K, V, dO):
    P = _attention_forward(Q, K)
    dV = P.T @ dO
    dP = dO @ V.T
    dS = P * (dP - (dP * P).sum(axis=1, keepdims=True))
    scale = 1 / np.sqrt(Q.shape[1])
    return scale * dS @ K, scale * dS.T @ Q, dV


def _attention_backward_wrong(Q, K, V, dO):  # the softmax's diagonal only: no rowsum term
    P = _attention_forward(Q, K)
    dS = P * (dO @ V.T)
    scale = 1 / np.sqrt(Q.shape[1])
    return scale * dS @ K, scale * dS.T @ Q, P.T @ dO


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
            mistake="forgot the upstream gradient: that is the local derivative, not dL/dz",
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
            mistake="averaged the bias gradient over the rows: b is added to every row, so its gradient is their sum "
            "(any 1/N of a mean loss is already in upstream)",
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
            mistake="no shift by the row's max: exp overflows for large logits",
        ),
        Reference(
            name="relu_backward",
            signature="def relu_backward(z, upstream):  # returns dL/dz",
            mode="gradient",
            inputs=lambda rng: [rng.standard_normal((3, 4)) * 2],
            engine=lambda z: z.relu(),
            call=lambda fn, inputs, upstream: run_learner(fn, inputs[0], upstream),
            returns=("dL/dz",),
            solution=_relu_backward_solution,
            wrong=_relu_backward_wrong,
            mistake="used the ReLU's output as its slope",
        ),
        Reference(
            name="softmax_ce_grad",
            signature="def softmax_ce_grad(z, y):  # z (N, C) logits, y (N, C) one-hot; returns dL/dz of the mean CE",
            mode="values",
            inputs=_onehot_inputs,
            engine=_softmax_ce_engine,
            call=lambda fn, inputs, upstream: run_learner(fn, inputs[0], inputs[1]),
            returns=("dL/dz",),
            solution=_softmax_ce_solution,
            wrong=_softmax_ce_wrong,
            mistake="forgot the 1/N of the mean",
        ),
        Reference(
            name="batchnorm_backward",
            signature="def batchnorm_backward(x, upstream):  # x (N, C); y = (x - mean) / sqrt(var + 1e-5)",
            mode="gradient",
            inputs=lambda rng: [rng.standard_normal((int(rng.integers(3, 7)), 3)) * 2 + 1],
            engine=_batchnorm_engine,
            call=lambda fn, inputs, upstream: run_learner(fn, inputs[0], upstream),
            returns=("dL/dx",),
            solution=_batchnorm_backward_solution,
            wrong=_batchnorm_backward_wrong,
            mistake="treated the batch mean and variance as constants",
        ),
        Reference(
            name="dropout_backward",
            signature="def dropout_backward(upstream, mask, p):  # mask: 1 kept, 0 dropped; returns dL/dx",
            mode="values",
            inputs=_dropout_inputs,
            engine=_dropout_engine,
            call=lambda fn, inputs, upstream: run_learner(fn, inputs[0], inputs[1], float(inputs[2])),
            returns=("dL/dx",),
            solution=_dropout_solution,
            wrong=_dropout_wrong,
            mistake="forgot the inverted-dropout scale 1/(1 - p)",
        ),
        Reference(
            name="rnn_step_backward",
            signature="def rnn_step_backward(x, h, W_xh, W_hh, upstream):  # returns (dx, dh, dW_xh, dW_hh)",
            mode="gradient",
            inputs=_rnn_step_inputs,
            engine=lambda x, h, W_xh, W_hh: (x @ W_xh.T + h @ W_hh.T).tanh(),
            call=lambda fn, inputs, upstream: run_learner(fn, *inputs, upstream),
            returns=("dL/dx", "dL/dh", "dL/dW_xh", "dL/dW_hh"),
            solution=_rnn_step_solution,
            wrong=_rnn_step_wrong,
            mistake="skipped the tanh's slope: upstream must first be multiplied by 1 - h_new^2",
        ),
        Reference(
            name="clip_grad_norm",
            signature="def clip_by_norm(G, max_norm):  # each row of G: one model's whole gradient; returns G clipped",
            mode="values",
            inputs=_clip_inputs,
            engine=_clip_engine,
            call=lambda fn, inputs, upstream: run_learner(fn, inputs[0], float(inputs[1])),
            returns=("clipped g",),
            solution=_clip_solution,
            wrong=_clip_wrong,
            mistake="clamped each entry to [-max_norm, max_norm] instead of rescaling the whole row: that can change "
            "its direction and leave its norm above max_norm",
        ),
        Reference(
            name="momentum_step",
            signature="def momentum_step(w, velocity, grad):  # lr = 0.1, momentum = 0.9; returns the new w",
            mode="values",
            inputs=_momentum_inputs,
            engine=_momentum_engine,
            call=lambda fn, inputs, upstream: run_learner(fn, *inputs),
            returns=("new w",),
            solution=_momentum_solution,
            wrong=_momentum_wrong,
            mistake="ignored the velocity: plain SGD",
        ),
        Reference(
            name="adam_step",
            signature="def adam_step(w, m, v, grad, t):  # lr = 0.01, betas (0.9, 0.999), eps 1e-8; returns the new w",
            mode="values",
            inputs=_adam_inputs,
            engine=_adam_engine,
            call=lambda fn, inputs, upstream: run_learner(fn, *inputs[:4], int(inputs[4])),
            returns=("new w",),
            solution=_adam_solution,
            wrong=_adam_wrong,
            mistake="no bias correction of m and v",
        ),
        Reference(
            name="conv_weight_grad",
            signature="def conv_weight_grad(x, upstream):  # x (H, W), upstream = dL/dy (out_h, out_w); returns dL/dW",
            mode="values",
            inputs=_conv_inputs,
            engine=_conv_engine,
            call=lambda fn, inputs, upstream: run_learner(fn, *inputs),
            returns=("dL/dW",),
            solution=_conv_solution,
            wrong=_conv_wrong,
            mistake="returned dL/dW flipped (rows and columns reversed): that is the gradient of a true convolution, "
            "which flips its kernel; this layer is a cross-correlation and flips nothing",
        ),
        Reference(
            name="attention_backward",
            signature="def attention_backward(Q, K, V, dO):  # Q (L, d), K (S, d), V (S, dv); returns (dQ, dK, dV)",
            mode="gradient",
            inputs=_attention_inputs,
            engine=lambda Q, K, V: F.scaled_dot_product_attention(Q, K, V),
            call=lambda fn, inputs, upstream: run_learner(fn, *inputs, upstream),
            returns=("dL/dQ", "dL/dK", "dL/dV"),
            solution=_attention_backward_solution,
            wrong=_attention_backward_wrong,
            mistake="left out the softmax's rowsum term: dS = P * (dP - rowsum(dP * P)), not P * dP, because each "
            "weight of a row depends on every score of that row",
        ),
    )
}
