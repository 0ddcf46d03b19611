"""Engine-computed problems: a seed in, the numbers of a problem and its answer (computed by bpcore) out.

A question names its generator (``generator = "three_layer_dW2"``); each attempt draws a fresh seed,
which is logged, so every instance can be rebuilt exactly. A generator returns a :class:`Problem`:

* ``values``: every number the prompt shows (``{{X}}`` in the prompt is replaced by ``values["X"]``),
* ``key``: the answer, computed by the engine (autodiff, ``bp.optim``, or ``bpcore.labs.three_layer``),
* ``mistakes``: the usual wrong answers, also computed by the engine, so a wrong answer can be named.

Each generator also has an independent ``check``: the answer recomputed from the shown values by
another route (finite differences, or autodiff against the hand derivation). ``bpcore validate``
runs both for many seeds and requires them to agree.

Parameters are drawn on a grid of one decimal so the prompt shows them exactly; forward-pass
values offered "for convenience" are shown to 4 significant digits, and where terms of the answer can
cancel the generator rejects draws whose answer those shown values cannot give to 3 digits (``shown``).

A draw yields its parameters before it computes anything, so the tests survey 10,000 seeds of every
generator cheaply (``Generator.parameters``). A draw is redrawn when two of its answers (the key and the
mistakes) coincide at grading tolerance, or a mistake typed to 3 significant digits comes within it; each
generator's docstring says when that happens if it is more than about 1% of draws, and the tests hold every
generator to at most 40% (0.4 ** 50 < 1e-19: no seed runs out of draws).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Generator as Steps
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from bpcore import optim
from bpcore.gradcheck import numerical_gradient
from bpcore.labs import three_layer, through_time
from bpcore.nn import functional as F
from bpcore.quiz.diagnose import DEFAULT_DIGITS, NOISE, Mistake, close, round_to_digits, with_common_mistakes
from bpcore.tensor import Tensor

# Answers are graded entry by entry to the significant digits the question asks for, 3 unless it says more
# (the rule: bpcore.quiz.diagnose, above DEFAULT_DIGITS). Generators make their problems fair at 3 digits, the
# fewest any question asks for: mistakes differ from the key at 3 digits, and so are graded wrong at 4 too.
# Float residue of an exact 0 is cleaned from keys (denoise), so a zero entry takes 0 and nothing else.
EXACT_DIGITS = 15  # whole-number answers: equal to all the digits a float holds
MAX_DRAWS = 50  # redraws allowed to make every mistake distinguishable from the key and from each other

# A draw is a Python generator: it draws the problem's parameters from the rng, yields them (a dict),
# then computes the problem with the engine and returns it. Stopping at the yield gives the parameters
# for almost nothing, which is how the tests survey thousands of seeds.
Draw = Steps[dict, None, "Problem"]


@dataclass
class Problem:
    """One concrete instance: shown values, the key, and the plausible wrong answers.

    For a chained derivation ``key`` and ``mistakes`` are dicts keyed by step name, in order.
    """

    values: dict
    key: object
    mistakes: list[Mistake] | dict[str, list[Mistake]] = field(default_factory=list)
    seed: int = 0
    draws: int = 1  # how many draws it took (the distinguishability check rejected the ones before)


def _solve(steps: Draw) -> Problem:
    """Run a draw on from its yield to the problem it returns."""
    try:
        next(steps)
    except StopIteration as done:
        return done.value
    raise TypeError("a draw yields its parameters once, then returns its Problem")


def denoise(value):
    """``value`` with float-rounding residue of an exact 0 (5.6e-17 from 0.3 - 0.1 - 0.2) set to 0.

    A learner who works out an exact 0 must never be asked for 5.6e-17, whatever the absolute tolerance.
    Whole-number answers are returned as they are.
    """
    if isinstance(value, dict):
        return {k: denoise(v) for k, v in value.items()}
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.floating):
        return value
    scale = float(np.max(np.abs(array))) if array.size else 0.0
    cleaned = np.where(np.abs(array) <= NOISE * scale, 0.0, array)
    return float(cleaned) if np.ndim(value) == 0 and not isinstance(value, np.ndarray) else cleaned


@dataclass
class Generator:
    """A registered generator. ``draw(rng)`` makes a problem; ``check(values)`` recomputes its key independently."""

    name: str
    kind: str  # "numeric" or "matrix"
    draw: Callable[[np.random.Generator], Draw]
    check: Callable[[dict], object]
    common_mistakes: bool = True
    steps: dict[str, str] | None = None  # chained derivations: step name -> LaTeX label, in order
    # chained derivations, for follow-through credit: follow(values, given) -> {step: what that step should be
    # given the learner's own answers to the steps it builds on}; upstream[step] names the step it builds on
    follow: Callable[[dict, dict], dict] | None = None
    upstream: dict[str, str] | None = None
    description: str = ""
    integer: bool = False  # a whole-number answer (a size, a count): graded exactly, keys and mistakes are ints
    # each parameter the draw yields -> its range: (low, high) for numbers (every entry of an array lies in it,
    # and over many seeds both ends are drawn), or a set of the values it takes (each is drawn)
    ranges: dict[str, tuple | set] = field(default_factory=dict)
    total: int | None = None  # how many distinct problems exist, when that is fewer than 50
    # the answer as a learner works it out from the values as the prompt shows them (4 significant digits):
    # a draw where that answer, kept in full or rounded to 3 or 4 digits, is not right entry by entry is redrawn
    shown: Callable[[dict], object] | None = None

    def __call__(self, seed: int) -> Problem:
        """The problem for ``seed``: the same seed always gives the same numbers and answer."""
        rng = np.random.default_rng(seed)
        for draws in range(1, MAX_DRAWS + 1):
            steps = self.draw(rng)
            next(steps)
            problem = _solve(steps)
            problem.seed, problem.draws = seed, draws
            problem.key = denoise(problem.key)
            problem.values = denoise(problem.values)  # shown forward values too: 0, not -2.8e-17
            if self.common_mistakes:
                if self.steps:
                    problem.mistakes = {s: with_common_mistakes(problem.key[s], m) for s, m in problem.mistakes.items()}
                else:
                    problem.mistakes = with_common_mistakes(problem.key, problem.mistakes)
            problem.mistakes = _denoise_mistakes(problem.mistakes)
            if (
                distinguishable(problem, EXACT_DIGITS if self.integer else DEFAULT_DIGITS)
                and (self.integer or mistakes_typed_are_wrong(problem))
                and (self.shown is None or worked_from_shown_is_right(self.shown(problem.values), problem.key))
            ):
                return problem
        raise RuntimeError(f"generator {self.name!r}: no distinguishable problem in {MAX_DRAWS} draws (seed {seed})")

    def parameters(self, seed: int, rng: np.random.Generator | None = None) -> dict:
        """The parameters of the first draw for ``seed``, without computing its problem.

        They are the seed's problem unless the distinguishability check rejects that draw, which the
        tests require to be rare. ``rng``, if given, must be ``np.random.default_rng(seed)`` (or in its state).
        """
        return next(self.draw(np.random.default_rng(seed) if rng is None else rng))


def _denoise_mistakes(mistakes):
    if isinstance(mistakes, dict):
        return {s: _denoise_mistakes(m) for s, m in mistakes.items()}
    return [Mistake(m.name, denoise(m.value), m.why) for m in mistakes]


def distinguishable(problem: Problem, digits: int = DEFAULT_DIGITS) -> bool:
    """Every mistake differs from the key and from every other mistake, at ``digits`` significant digits."""
    if isinstance(problem.key, dict):
        parts = [(problem.key[s], problem.mistakes.get(s, [])) for s in problem.key]
    else:
        parts = [(problem.key, problem.mistakes)]
    for key, mistakes in parts:
        values = [key, *(m.value for m in mistakes)]
        for i, a in enumerate(values):
            # both ways round: close measures its tolerance against its second argument
            if any(close(a, b, digits) or close(b, a, digits) for b in values[i + 1 :]):
                return False
    return True


TYPED_DIGITS = (3, 4)  # how a learner writes a number down: as asked, or with one digit more


def mistakes_typed_are_wrong(problem: Problem, digits: int = DEFAULT_DIGITS) -> bool:
    """Every mistake, rounded to 3 or 4 significant digits as a learner writes it, is still graded wrong.

    A mistake just over half a unit from the key is distinguishable, yet rounding it (0.78555 -> 0.786 against
    a key of 0.7861) can make it the key's own rounding: the learner who made it would be graded right.
    """
    if isinstance(problem.mistakes, dict):
        parts = [(problem.key[s], m) for s, m in problem.mistakes.items()]
    else:
        parts = [(problem.key, problem.mistakes)]
    return not any(
        close(round_to_digits(m.value, typed), key, digits)
        for key, mistakes in parts
        for m in mistakes
        for typed in TYPED_DIGITS
    )


def worked_from_shown_is_right(worked, key, digits: int = DEFAULT_DIGITS) -> bool:
    """The answer a learner works out from the prompt's shown values passes, kept in full or rounded to 3 or 4
    significant digits: every entry right to ``digits`` digits of its own (bpcore.quiz.diagnose.close).

    For a chained derivation ``worked`` holds the steps worked from shown values alone (the later ones build on
    the learner's own answers and get follow-through credit: bpcore.quiz.kinds.check_steps)."""
    if isinstance(worked, dict):
        return all(worked_from_shown_is_right(w, key[step], digits) for step, w in worked.items())
    return all(close(w, key, digits) for w in (worked, *(round_to_digits(worked, typed) for typed in TYPED_DIGITS)))


def as_shown(values: dict) -> dict:
    """``values`` as the prompt shows them: every float to 4 significant digits (exact grid values stay exact)."""
    return {k: _as_shown(v) if np.asarray(v).dtype.kind == "f" and np.asarray(v).size else v for k, v in values.items()}


GENERATORS: dict[str, Generator] = {}


def register(name: str, kind: str, check: Callable, **options):
    """Decorator: add ``draw(rng) -> Draw`` to the registry under ``name``."""

    def wrap(draw):
        GENERATORS[name] = Generator(name, kind, draw, check, description=(draw.__doc__ or "").strip(), **options)
        return draw

    return wrap


def _ranges(**ranges) -> dict:
    return ranges


# ----------------------------------------------------------------------------- shared helpers


def _grid(rng, shape, low=-1.0, high=1.0, decimals=1) -> np.ndarray:
    """Uniform numbers rounded to ``decimals``: what the prompt shows is exactly what was used."""
    scale = 10.0**decimals
    values = np.rint(rng.uniform(low, high, shape) * scale) / scale  # np.round's own arithmetic, quicker
    return values + 0.0  # turn -0.0 into 0.0 so nothing prints as "-0"


def _as_shown(array) -> np.ndarray:
    """``array`` as the prompt shows it: every entry to 4 significant digits (see bpcore.quiz.render.number)."""
    return np.vectorize(lambda x: float(f"{x:.3e}"))(np.asarray(array, dtype=np.float64))


def _shown_dW2(v):
    Y, H = _as_shown(v["Y"]), _as_shown(v["H"])
    return (((Y - v["T"]) * Y * (1 - Y)) / v["N"]).T @ H


def _shown_db1(v):
    Y, H = _as_shown(v["Y"]), _as_shown(v["H"])
    return ((((Y - v["T"]) / v["N"]) @ v["W2"]) * (1 - H**2)).sum(axis=0)


def _shown_output_bias(v):
    Y = _as_shown(v["Y"])
    return ((Y - v["T"]) * Y * (1 - Y) / v["N"]).sum(axis=0)


def _leaf(array) -> Tensor:
    return Tensor(np.array(array, dtype=np.float64), requires_grad=True)


def _finite_differences(loss: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """Central differences of ``loss()`` with respect to ``array``, which ``loss`` must read (it is nudged in place)."""
    return numerical_gradient(loss, array, eps=1e-6)


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))


def _batch_net_loss(X, T, W1, b1, W2, b2) -> float:
    """Plain numpy forward of the reference network, batch rows, sigmoid layers, L = 1/(2N) sum ||y - t||^2."""
    Y = _sigmoid(_sigmoid(X @ W1.T + b1) @ W2.T + b2)
    return float(np.sum((Y - T) ** 2) / (2 * X.shape[0]))


# ----------------------------------------------------------------------------- 1. dL/dW2 of the 3-layer net


def _check_dW2(v):
    W2 = np.array(v["W2"], dtype=np.float64)
    return _finite_differences(lambda: _batch_net_loss(v["X"], v["T"], v["W1"], v["b1"], W2, v["b2"]), W2)


@register(
    "three_layer_dW2",
    "matrix",
    check=_check_dW2,
    shown=_shown_dW2,
    ranges=_ranges(X=(-1, 1), T=(0, 1), W1=(-1, 1), b1=(-1, 1), W2=(-1, 1), b2=(-1, 1)),
)
def three_layer_dW2(rng) -> Draw:
    """dL/dW2 of the reference network on a batch of 2 (sigmoid hidden and output, mean half squared error).

    Rejected draws: about 38% (seeds 0-599), those whose answer cannot be worked out to 3 significant digits of
    every entry from H and Y as shown (Y - T cancels near a target, and the samples' terms cancel), besides the
    usual check that every mistake gives a different answer.
    """
    N, n, m, k = 2, 2, 3, 2
    X, T = _grid(rng, (N, n)), rng.integers(0, 2, (N, k)).astype(np.float64)
    W1, b1, W2, b2 = _grid(rng, (m, n)), _grid(rng, m), _grid(rng, (k, m)), _grid(rng, k)
    yield {"X": X, "T": T, "W1": W1, "b1": b1, "W2": W2, "b2": b2}
    w1, c1, w2, c2 = _leaf(W1), _leaf(b1), _leaf(W2), _leaf(b2)
    H = (Tensor(X) @ w1.T + c1).sigmoid()
    Y = (H @ w2.T + c2).sigmoid()
    loss = ((Y - T) ** 2).sum() / (2 * N)
    loss.backward()
    dL_dY = (Y.data - T) / N
    mistakes = [
        Mistake("missing 1/N", N * w2.grad),
        Mistake("missing activation derivative", dL_dY.T @ H.data),
    ]
    values = {"X": X, "T": T, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "H": H.data, "Y": Y.data, "N": N}
    return Problem(values, w2.grad, mistakes)


# ----------------------------------------------------------------------------- 2. the chained derivation

CHAIN_STEPS = {
    "dL/dz2": r"\partial L / \partial z_2",
    "dL/dW2": r"\partial L / \partial W_2",
    "dL/dh": r"\partial L / \partial h",
    "dL/dW1": r"\partial L / \partial W_1",
}


def _check_chain(v):
    """The same four gradients by autodiff (the key comes from the hand derivation in bpcore.labs.three_layer)."""
    W1, b1, W2, b2 = _leaf(v["W1"]), _leaf(v["b1"]), _leaf(v["W2"]), _leaf(v["b2"])
    h = (W1 @ Tensor(v["x"]) + b1).sigmoid()
    h.retain_grad()
    z2 = W2 @ h + b2
    z2.retain_grad()
    y = z2.sigmoid()
    (0.5 * ((y - v["t"]) ** 2).sum()).backward()
    return {"dL/dz2": z2.grad, "dL/dW2": W2.grad, "dL/dh": h.grad, "dL/dW1": W1.grad}


# the step each later step is computed from
CHAIN_UPSTREAM = {"dL/dW2": "dL/dz2", "dL/dh": "dL/dz2", "dL/dW1": "dL/dh"}


def _follow_chain(v, given):
    """Each later step recomputed from the learner's own earlier answers: the engine's VJPs fed their numbers.

    ``given`` holds the learner's answers (shaped like the key) to the steps they gave. dL/dW2 and dL/dh
    are the backward pass of z2 = W2 h + b2 run with their dL/dz2 as the upstream gradient; dL/dW1 is the
    backward pass of h = sigmoid(W1 x + b1) run with their dL/dh. h is read from ``v``, so the grader can
    ask what their answers imply with h as the prompt shows it (bpcore.quiz.kinds).
    """
    implied = {}
    if "dL/dz2" in given:
        W2, b2, h = _leaf(v["W2"]), _leaf(v["b2"]), _leaf(v["h"])
        (W2 @ h + b2).backward(np.asarray(given["dL/dz2"], dtype=np.float64))
        implied["dL/dW2"], implied["dL/dh"] = W2.grad, h.grad
    if "dL/dh" in given:  # through h = sigmoid(z1), whose slope is h(1 - h) with h as given in ``v``
        W1, b1, h = _leaf(v["W1"]), _leaf(v["b1"]), v["h"]
        z1 = W1 @ Tensor(v["x"]) + b1
        z1.backward(np.asarray(given["dL/dh"], dtype=np.float64) * h * (1 - h))
        implied["dL/dW1"] = W1.grad
    return implied


def _shown_chain(v):
    """dL/dz2 as a learner works it from y as shown: the one step that builds on no earlier answer."""
    y = _as_shown(v["y"])
    return {"dL/dz2": (y - v["t"]) * y * (1 - y)}


@register(
    "three_layer_chain",
    "matrix",
    check=_check_chain,
    steps=CHAIN_STEPS,
    follow=_follow_chain,
    upstream=CHAIN_UPSTREAM,
    shown=_shown_chain,
    ranges=_ranges(x=(-1, 1), t=(0, 1), W1=(-1, 1), b1=(-1, 1), W2=(-1, 1), b2=(-1, 1)),
)
def three_layer_chain(rng) -> Draw:
    """One sample through the reference network, four steps backward, each graded (key: bpcore.labs.three_layer)."""
    n, m, k = 2, 3, 2
    x, t = _grid(rng, n), rng.integers(0, 2, k).astype(np.float64)
    W1, b1, W2, b2 = _grid(rng, (m, n)), _grid(rng, m), _grid(rng, (k, m)), _grid(rng, k)
    yield {"x": x, "t": t, "W1": W1, "b1": b1, "W2": W2, "b2": b2}
    walk = three_layer.three_layer(x, t, W1, b1, W2, b2, f="sigmoid", g="sigmoid", loss="half_sse")
    s = walk.steps
    dL_dh = W2.T @ s["delta_output"]
    key = {"dL/dz2": s["delta_output"], "dL/dW2": s["dL_dW2"], "dL/dh": dL_dh, "dL/dW1": s["dL_dW1"]}
    h_slope = s["h"] * (1 - s["h"])
    mistakes = {
        "dL/dz2": [Mistake("missing activation derivative", s["dL_dy"])],
        "dL/dW2": [Mistake("missing activation derivative", np.outer(s["dL_dy"], s["h"]))],
        "dL/dh": [
            Mistake(
                "gave dL/dz1 instead of dL/dh",
                dL_dh * h_slope,
                "That is dL/dz1: the sigmoid's slope h(1 - h) belongs to the next step, on the way from h to z1.",
            )
        ],
        "dL/dW1": [Mistake("missing activation derivative", np.outer(dL_dh, x))],
    }
    values = {"x": x, "t": t, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "h": s["h"], "y": s["y_pred"]}
    return Problem(values, key, mistakes)


# ----------------------------------------------------------------------------- 3. softmax + cross-entropy


def _check_softmax_ce(v):
    Z = np.array(v["Z"], dtype=np.float64)
    rows = np.arange(Z.shape[0])

    def loss():
        shifted = Z - Z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[rows, v["targets"]]))

    return _finite_differences(loss, Z)


def _shown_softmax_ce(v):
    return (_as_shown(v["P"]) - v["Y"]) / v["N"]  # worked from P as the prompt shows it


@register(
    "softmax_ce_grad",
    "matrix",
    check=_check_softmax_ce,
    shown=_shown_softmax_ce,
    ranges=_ranges(Z=(-2, 2), targets=(0, 2)),
)
def softmax_ce_grad(rng) -> Draw:
    """dL/dZ of the mean cross-entropy of softmax(Z) for N = 2 samples and C = 3 classes.

    Rejected draws: about 28% (seeds 0-599), those whose answer worked from P as shown is not right to 3
    significant digits in every entry (P - Y cancels where P is near 1)."""
    N, C = 2, 3
    Z, targets = _grid(rng, (N, C), -2, 2), rng.integers(0, C, N)
    yield {"Z": Z, "targets": targets}
    logits = _leaf(Z)
    F.cross_entropy(logits, targets).backward()
    onehot = np.eye(C)[targets]
    P = logits.softmax(axis=1).data
    mistakes = [
        Mistake("missing 1/N", N * logits.grad),
        Mistake("summed over the wrong axis", (Tensor(Z).softmax(axis=0).data - onehot) / N),
    ]
    values = {"Z": Z, "targets": targets, "Y": onehot, "P": P, "N": N}
    return Problem(values, logits.grad, mistakes)


# ----------------------------------------------------------------------------- 4. the sigmoid's slope


def _check_sigmoid_slope(v):
    z = np.array([float(v["z"])])
    return float(_finite_differences(lambda: float(_sigmoid(z[0])), z)[0])


def _shown_sigmoid_slope(v):
    s = _as_shown(v["sigma"])  # worked from sigma(z) as the prompt shows it
    return s * (1 - s)


@register(
    "sigmoid_derivative", "numeric", check=_check_sigmoid_slope, shown=_shown_sigmoid_slope, ranges=_ranges(z=(-3, 3))
)
def sigmoid_derivative(rng) -> Draw:
    """sigma'(z) at a point z in [-3, 3] on a 0.01 grid.

    Rejected draws: about 3% (seeds 0-599), those whose slope worked from sigma(z) as shown is not right to 3
    significant digits."""
    z = float(_grid(rng, (), -3, 3, decimals=2))
    yield {"z": z}
    leaf = _leaf(z)
    leaf.sigmoid().backward()
    s = _sigmoid(z)
    mistakes = [
        Mistake(
            "used z instead of sigma(z)",
            z * (1 - z),
            "The slope is sigma(z)(1 - sigma(z)): apply it to the sigmoid's output, not to its input z.",
        ),
        Mistake("forgot the (1 - sigma) factor", s, "That is sigma(z) itself; its slope is sigma(z)(1 - sigma(z))."),
    ]
    return Problem({"z": z, "sigma": s}, float(leaf.grad), mistakes)


# ----------------------------------------------------------------------------- 5. two SGD steps with momentum


def _check_momentum(v):
    velocity = v["G1"]  # PyTorch starts the buffer at the first gradient
    after_one = v["W0"] - v["lr"] * velocity
    velocity = v["momentum"] * velocity + v["G2"]
    return after_one - v["lr"] * velocity


@register(
    "sgd_momentum_step",
    "matrix",
    check=_check_momentum,
    common_mistakes=False,
    ranges=_ranges(W0=(-1, 1), G1=(-2, 2), G2=(-2, 2), lr={0.1, 0.2, 0.5}, momentum={0.5, 0.9}),
)
def sgd_momentum_step(rng) -> Draw:
    """The weights after two steps of bp.optim.SGD with momentum, from W0 with gradients G1 then G2."""
    W0, G1, G2 = _grid(rng, 3), _grid(rng, 3, -2, 2), _grid(rng, 3, -2, 2)
    lr, momentum = float(rng.choice([0.1, 0.2, 0.5])), float(rng.choice([0.5, 0.9]))
    yield {"W0": W0, "G1": G1, "G2": G2, "lr": lr, "momentum": momentum}
    w = _leaf(W0)
    sgd = optim.SGD([w], lr=lr, momentum=momentum)
    for g in (G1, G2):
        w.grad = np.array(g)
        sgd.step()
    step_two = momentum * G1 + G2
    mistakes = [
        Mistake("off by the learning rate", W0 - G1 - step_two),
        Mistake(
            "ignored momentum",
            W0 - lr * (G1 + G2),
            "The second step must carry momentum times the first "
            "step's velocity: v = momentum * v + g, then w -= lr * v.",
        ),
        Mistake("wrong sign", W0 + lr * G1 + lr * step_two, "That climbs the loss: gradient descent subtracts lr * v."),
    ]
    values = {"W0": W0, "G1": G1, "G2": G2, "lr": lr, "momentum": momentum}
    return Problem(values, w.data.copy(), mistakes)


# ----------------------------------------------------------------------------- 6. an output bias over a batch


def _check_output_bias(v):
    b2 = np.zeros(v["Z2"].shape[1])

    def loss():
        Y = _sigmoid(v["Z2"] + b2)
        return float(np.sum((Y - v["T"]) ** 2) / (2 * v["Z2"].shape[0]))

    return _finite_differences(loss, b2)


@register(
    "output_bias_grad",
    "matrix",
    check=_check_output_bias,
    shown=_shown_output_bias,
    ranges=_ranges(Z2=(-2, 2), T=(0, 1)),
)
def output_bias_grad(rng) -> Draw:
    """dL/db2 for a batch of N = 3 whose output pre-activations Z2 are given (sigmoid output, mean half SSE).

    Rejected draws: the few whose answer cannot be worked out to 3 significant digits from Y as shown
    (the samples' terms cancel), besides the usual check that every mistake gives a different answer.
    """
    N, k = 3, 2
    Z2, T = _grid(rng, (N, k), -2, 2), rng.integers(0, 2, (N, k)).astype(np.float64)
    yield {"Z2": Z2, "T": T}
    b2 = _leaf(np.zeros(k))
    Y = (Tensor(Z2) + b2).sigmoid()
    (((Y - T) ** 2).sum() / (2 * N)).backward()
    y = Y.data
    delta = (y - T) * y * (1 - y) / N
    mistakes = [
        Mistake("summed over the wrong axis", delta.sum(axis=1)),
        Mistake("missing 1/N", N * b2.grad),
        Mistake("missing activation derivative", ((y - T) / N).sum(axis=0)),
    ]
    return Problem({"Z2": Z2, "T": T, "Y": y, "N": N}, b2.grad, mistakes)


# ============================================================================= issue 7: more engine-computed problems
# Each generator below: the key comes from the engine (autodiff, bp.optim, bp.nn), the check recomputes
# it by another route (finite differences on plain numpy, or a closed form), and the mistakes are the
# slips a learner really makes, named so the diagnoser can say which one it was.


def _away_from_kinks(rng, shape, low=-1.0, high=1.0, margin=0.05, decimals=1):
    """Grid numbers none of which lies within ``margin`` of 0 (so a ReLU's kink is never touched)."""
    while True:
        values = _grid(rng, shape, low, high, decimals)
        if np.all(np.abs(values) > margin):
            return values


# ----------------------------------------------------------------------------- 7. tanh's slope


def _check_tanh_slope(v):
    z = np.array([float(v["z"])])
    return float(_finite_differences(lambda: float(np.tanh(z[0])), z)[0])


def _shown_tanh_slope(v):
    return 1 - _as_shown(v["tanh"]) ** 2  # worked from tanh(z) as the prompt shows it


@register("tanh_derivative", "numeric", check=_check_tanh_slope, shown=_shown_tanh_slope, ranges=_ranges(z=(-2, 2)))
def tanh_derivative(rng) -> Draw:
    """tanh'(z) at a point z in [-2, 2] on a 0.01 grid, never within 0.35 of 0.

    Near 0, 1 - z^2 (the slope worked from z instead of tanh z) is within grading tolerance of the key, so
    those points are not drawn; the check rejects under 1% of the rest, and about 10% (seeds 0-599) are redrawn
    because the slope worked from tanh(z) as shown is not right to 3 significant digits (1 - t^2 is small where
    t is near 1, so the 4 shown digits of t leave it fewer)."""
    z = float(_away_from_kinks(rng, (), -2, 2, margin=0.35, decimals=2))
    yield {"z": z}
    leaf = _leaf(z)
    leaf.tanh().backward()
    t = float(np.tanh(z))
    mistakes = [
        Mistake("used z instead of tanh(z)", 1 - z * z, "The slope is 1 - tanh(z)^2: square the tanh's output, not z."),
        Mistake("forgot to square", 1 - t, "tanh'(z) = 1 - tanh(z)^2; 1 - tanh(z) drops the square."),
        Mistake(
            "used the sigmoid's formula", t * (1 - t), "t(1 - t) is the sigmoid's slope pattern; tanh's is 1 - t^2."
        ),
    ]
    return Problem({"z": z, "tanh": t}, float(leaf.grad), mistakes)


# ----------------------------------------------------------------------------- 8. leaky ReLU backward


def _check_leaky(v):
    z = np.array(v["z"], dtype=np.float64)
    a = v["slope"]
    return _finite_differences(lambda: float(np.sum(v["g"] * np.where(z > 0, z, a * z))), z)


@register("leaky_relu_backward", "matrix", check=_check_leaky, ranges=_ranges(z=(-2, 2), g=(-2, 2), slope={0.1, 0.2}))
def leaky_relu_backward(rng) -> Draw:
    """dL/dz through a leaky ReLU for a vector z, given the upstream gradient g = dL/dy.

    The check rejects about 4% of draws: those where g is 0 wherever z < 0, so the plain ReLU slope gives the key."""
    z, g = _away_from_kinks(rng, 5, -2, 2), _grid(rng, 5, -2, 2)
    slope = float(rng.choice([0.1, 0.2]))
    yield {"z": z, "g": g, "slope": slope}
    leaf = _leaf(z)
    leaf.leaky_relu(slope).backward(g)
    local = np.where(z > 0, 1.0, slope)
    mistakes = [
        Mistake(
            "used the plain ReLU slope",
            g * (z > 0),
            "Negative inputs still pass a gradient: the slope there is a, not 0.",
        ),
        Mistake(
            "forgot the upstream gradient", local, "That is the local slope only; the chain rule multiplies it by g."
        ),
    ]
    return Problem({"z": z, "g": g, "slope": slope}, leaf.grad, mistakes)


# ----------------------------------------------------------------------------- 9. BCE with logits


def _check_bce(v):
    Z = np.array(v["Z"], dtype=np.float64)

    def loss():
        s = _sigmoid(Z)
        return float(-np.mean(v["T"] * np.log(s) + (1 - v["T"]) * np.log(1 - s)))

    return _finite_differences(loss, Z)


def _shown_bce(v):
    return (_as_shown(v["S"]) - v["T"]) / v["count"]  # worked from sigma(Z) as the prompt shows it


@register("bce_logits_grad", "matrix", check=_check_bce, shown=_shown_bce, ranges=_ranges(Z=(-2, 2), T=(0, 1)))
def bce_logits_grad(rng) -> Draw:
    """dL/dZ of binary cross-entropy with logits, mean over all N x k elements.

    The check rejects about 2% of draws: those whose key is symmetric, so its transpose is the key; about 16%
    more (seeds 0-599) are redrawn because the answer worked from sigma(Z) as shown is not right to 3
    significant digits in every entry."""
    N, k = 2, 2
    Z, T = _grid(rng, (N, k), -2, 2), rng.integers(0, 2, (N, k)).astype(np.float64)
    yield {"Z": Z, "T": T}
    leaf = _leaf(Z)
    F.binary_cross_entropy_with_logits(leaf, T).backward()
    S = _sigmoid(Z)
    count = N * k
    mistakes = [
        Mistake(
            "missing 1/N", (S - T), "The mean runs over all N x k elements, so every entry is divided by their count."
        ),
        Mistake(
            "multiplied by the sigmoid's slope again",
            (S - T) * S * (1 - S) / count,
            "The log in the cross-entropy cancels the sigmoid's slope: dL/dz = sigma(z) - t, with no extra s(1 - s).",
        ),
    ]
    return Problem({"Z": Z, "T": T, "S": S, "count": count}, leaf.grad, mistakes)


# ----------------------------------------------------------------------------- 10. MSE gradient


def _check_mse(v):
    Y = np.array(v["Y"], dtype=np.float64)
    return _finite_differences(lambda: float(np.mean((Y - v["T"]) ** 2)), Y)


@register("mse_grad", "matrix", check=_check_mse, ranges=_ranges(Y=(-2, 2), T=(-2, 2)))
def mse_grad(rng) -> Draw:
    """dL/dY of F.mse_loss (mean over every element) for an N x k prediction."""
    N, k = 3, 2
    Y, T = _grid(rng, (N, k), -2, 2), _grid(rng, (N, k), -2, 2)
    yield {"Y": Y, "T": T}
    leaf = _leaf(Y)
    F.mse_loss(leaf, T).backward()
    mistakes = [
        Mistake("forgot the factor 2", (Y - T) / (N * k), "d(u^2)/du = 2u: the square brings down a 2."),
        Mistake(
            "divided by N instead of N x k",
            2 * (Y - T) / N,
            "mse_loss averages over every element, N x k of them, not over the N rows only.",
        ),
        Mistake("missing 1/N", 2 * (Y - T), "The loss is a mean, so each entry carries 1/(N k)."),
    ]
    return Problem({"Y": Y, "T": T, "N": N, "k": k}, leaf.grad, mistakes)


# ----------------------------------------------------------------------------- 11. dL/dW1 with a ReLU hidden layer


def _check_relu_dW1(v):
    W1 = np.array(v["W1"], dtype=np.float64)

    def loss():
        h = np.maximum(W1 @ v["x"] + v["b1"], 0)
        y = v["W2"] @ h + v["b2"]
        return float(0.5 * np.sum((y - v["t"]) ** 2))

    return _finite_differences(loss, W1)


@register(
    "relu_net_dW1",
    "matrix",
    check=_check_relu_dW1,
    ranges=_ranges(x=(-1, 1), t=(-1, 1), W1=(-1, 1), b1=(-1, 1), W2=(-1, 1), b2=(-1, 1)),
)
def relu_net_dW1(rng) -> Draw:
    """dL/dW1 for one sample: ReLU hidden layer, linear output, L = 1/2 ||y - t||^2 (key: bpcore.labs.three_layer)."""
    n, m, k = 2, 3, 2
    while True:
        x, t = _grid(rng, n), _grid(rng, k)
        W1, b1, W2, b2 = _grid(rng, (m, n)), _grid(rng, m), _grid(rng, (k, m)), _grid(rng, k)
        z1 = W1 @ x + b1
        if np.all(np.abs(z1) > 0.02) and np.any(z1 > 0) and np.any(z1 < 0):
            break
    yield {"x": x, "t": t, "W1": W1, "b1": b1, "W2": W2, "b2": b2}
    walk = three_layer.three_layer(x, t, W1, b1, W2, b2, f="relu", g="identity", loss="half_sse")
    s = walk.steps
    dL_dh = W2.T @ s["delta_output"]
    mistakes = [
        Mistake(
            "missing activation derivative",
            np.outer(dL_dh, x),
            "ReLU passes the gradient only where z1 > 0: multiply by that mask.",
        ),
        Mistake(
            "used h as the ReLU's slope",
            np.outer(dL_dh * s["h"], x),
            "ReLU's slope is 1 where z1 > 0 and 0 elsewhere, not the value h itself.",
        ),
    ]
    values = {"x": x, "t": t, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "z1": s["z1"], "h": s["h"], "y": s["y_pred"]}
    return Problem(values, s["dL_dW1"], mistakes)


# ----------------------------------------------------------------------------- 12. db1 of a tanh batch


def _check_tanh_db1(v):
    b1 = np.array(v["b1"], dtype=np.float64)

    def loss():
        H = np.tanh(v["X"] @ v["W1"].T + b1)
        Y = H @ v["W2"].T + v["b2"]
        return float(np.sum((Y - v["T"]) ** 2) / (2 * v["X"].shape[0]))

    return _finite_differences(loss, b1)


@register(
    "tanh_batch_db1",
    "matrix",
    check=_check_tanh_db1,
    shown=_shown_db1,
    ranges=_ranges(X=(-1, 1), T=(-1, 1), W1=(-1, 1), b1=(-1, 1), W2=(-1, 1), b2=(-1, 1)),
)
def tanh_batch_db1(rng) -> Draw:
    """dL/db1 for a batch of 2: tanh hidden layer, linear output, mean half squared error.

    Rejected draws: the few whose answer cannot be worked out to 3 significant digits from H and Y as shown
    (the samples' terms cancel), besides the usual check that every mistake gives a different answer.
    """
    N, n, m, k = 2, 2, 3, 1
    X, T = _grid(rng, (N, n)), _grid(rng, (N, k))
    W1, b1, W2, b2 = _grid(rng, (m, n)), _grid(rng, m), _grid(rng, (k, m)), _grid(rng, k)
    yield {"X": X, "T": T, "W1": W1, "b1": b1, "W2": W2, "b2": b2}
    w1, c1, w2, c2 = _leaf(W1), _leaf(b1), _leaf(W2), _leaf(b2)
    H = (Tensor(X) @ w1.T + c1).tanh()
    Y = H @ w2.T + c2
    (((Y - T) ** 2).sum() / (2 * N)).backward()
    dH = ((Y.data - T) / N) @ W2
    mistakes = [
        Mistake("missing 1/N", N * c1.grad),
        Mistake("missing activation derivative", dH.sum(axis=0)),
        Mistake("forgot to square", (dH * (1 - H.data)).sum(axis=0), "tanh's slope is 1 - H^2, not 1 - H."),
    ]
    values = {"X": X, "T": T, "W1": W1, "b1": b1, "W2": W2, "b2": b2, "H": H.data, "Y": Y.data, "N": N}
    return Problem(values, c1.grad, mistakes)


# ----------------------------------------------------------------------------- 13. a linear layer's input gradient


def _check_linear_dx(v):
    X = np.array(v["X"], dtype=np.float64)
    return _finite_differences(lambda: float(np.sum(v["G"] * (X @ v["W"].T + v["b"]))), X)


@register(
    "linear_input_grad", "matrix", check=_check_linear_dx, ranges=_ranges(X=(-1, 1), W=(-1, 1), b=(-1, 1), G=(-2, 2))
)
def linear_input_grad(rng) -> Draw:
    """dL/dX of y = X W^T + b (2 samples, 3 inputs, 2 outputs) given the upstream gradient G = dL/dY."""
    X, W, b, G = _grid(rng, (2, 3)), _grid(rng, (2, 3)), _grid(rng, 2), _grid(rng, (2, 2), -2, 2)
    yield {"X": X, "W": W, "b": b, "G": G}
    leaf = _leaf(X)
    F.linear(leaf, Tensor(W), Tensor(b)).backward(G)
    mistakes = [
        Mistake(
            "gave dL/dW instead of dL/dX",
            G.T @ X,
            "G^T X is the weight's gradient (shape of W). The input's gradient sends G back through W: G W.",
        ),
    ]
    return Problem({"X": X, "W": W, "b": b, "G": G}, leaf.grad, mistakes)


# ----------------------------------------------------------------------------- 14. SGD with an L2 penalty


def _check_l2_step(v):
    return v["w"] - v["lr"] * (v["g"] + v["lam"] * v["w"])


@register(
    "sgd_l2_step",
    "matrix",
    check=_check_l2_step,
    common_mistakes=False,
    ranges=_ranges(w=(-2, 2), g=(-1, 1), lr={0.1, 0.5}, lam={0.1, 0.2, 0.5}),
)
def sgd_l2_step(rng) -> Draw:
    """One bp.optim.SGD step with weight_decay = lambda (the gradient of (lambda/2)||w||^2 is lambda w)."""
    w, g = _away_from_kinks(rng, 3, -2, 2), _grid(rng, 3)
    lr, lam = float(rng.choice([0.1, 0.5])), float(rng.choice([0.1, 0.2, 0.5]))
    yield {"w": w, "g": g, "lr": lr, "lam": lam}
    p = _leaf(w)
    p.grad = np.array(g)
    optim.SGD([p], lr=lr, weight_decay=lam).step()
    mistakes = [
        Mistake("forgot the penalty", w - lr * g, "The penalty's gradient lambda w is added to the data gradient."),
        Mistake(
            "used 2 lambda w",
            w - lr * (g + 2 * lam * w),
            "The penalty is (lambda/2)||w||^2, so its gradient is lambda w, not 2 lambda w.",
        ),
        Mistake("off by the learning rate", w - (g + lam * w)),
        Mistake("wrong sign", w + lr * (g + lam * w), "Gradient descent subtracts; this climbs the loss."),
    ]
    return Problem({"w": w, "g": g, "lr": lr, "lam": lam}, p.data.copy(), mistakes)


# ----------------------------------------------------------------------------- 15. two Adam steps


def _check_adam(v):
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, v["lr"]
    m = (1 - b1) * v["g1"]
    s = (1 - b2) * v["g1"] ** 2
    w = v["w"] - lr * (m / (1 - b1)) / (np.sqrt(s / (1 - b2)) + eps)
    m = b1 * m + (1 - b1) * v["g2"]
    s = b2 * s + (1 - b2) * v["g2"] ** 2
    return w - lr * (m / (1 - b1**2)) / (np.sqrt(s / (1 - b2**2)) + eps)


@register(
    "adam_two_steps",
    "matrix",
    check=_check_adam,
    common_mistakes=False,
    ranges=_ranges(w=(-1, 1), g1=(-2, 2), g2=(-2, 2), lr={0.1, 0.01}),
)
def adam_two_steps(rng) -> Draw:
    """The weights after two bp.optim.Adam steps (betas 0.9 and 0.999, eps 1e-8, bias-corrected).

    The check rejects about 3% of draws: those where plain SGD lands within tolerance of Adam's answer."""
    while True:
        w, g1, g2 = _grid(rng, 3), _away_from_kinks(rng, 3, -2, 2), _away_from_kinks(rng, 3, -2, 2)
        if np.all(np.abs(g1 - g2) > 0.25):  # so the second step is not the first one again
            break
    lr = float(rng.choice([0.1, 0.01]))
    yield {"w": w, "g1": g1, "g2": g2, "lr": lr}
    p = _leaf(w)
    adam = optim.Adam([p], lr=lr)
    for g in (g1, g2):
        p.grad = np.array(g)
        adam.step()
    m, s = 0.1 * g1, 0.001 * g1**2
    raw_one = w - lr * m / (np.sqrt(s) + 1e-8)
    m, s = 0.9 * m + 0.1 * g2, 0.999 * s + 0.001 * g2**2
    raw = raw_one - lr * m / (np.sqrt(s) + 1e-8)
    mistakes = [
        Mistake(
            "no bias correction",
            raw,
            "m and v start at 0, so early on they are too small; Adam divides them by 1 - beta^t to undo that.",
        ),
        Mistake(
            "plain SGD",
            w - lr * (g1 + g2),
            "Adam does not step by lr times the raw gradient: it divides by sqrt(v_hat).",
        ),
        Mistake("wrong sign", 2 * w - p.data, "The step must go against the gradient's average."),
    ]
    return Problem({"w": w, "g1": g1, "g2": g2, "lr": lr}, p.data.copy(), mistakes)


# ----------------------------------------------------------------------------- 16. clipping by global norm


def _check_clip(v):
    g = np.concatenate([v["ga"], v["gb"]])
    norm = np.sqrt(np.sum(g**2))
    return g * min(1.0, v["max_norm"] / (norm + 1e-6))


def _shown_clip(v):
    g = np.concatenate([v["ga"], v["gb"]])  # scaled by max_norm over the global norm as the prompt shows it
    return g * min(1.0, v["max_norm"] / float(_as_shown(v["norm"])))


@register(
    "clip_grad_norm",
    "matrix",
    check=_check_clip,
    shown=_shown_clip,
    common_mistakes=False,
    ranges=_ranges(ga=(-3, 3), gb=(-3, 3), max_norm={0.5, 1.5, 2.0}),
)
def clip_grad_norm(rng) -> Draw:
    """Both gradients after bp.optim.clip_grad_norm_ over two parameters, concatenated [ga, gb].

    The check rejects about 1% of draws: those where clipping per parameter and clipping by value agree; about
    13% more (seeds 0-599) are redrawn because the answer worked from the global norm as shown is not right to 3
    significant digits in every entry."""
    while True:
        ga, gb = _grid(rng, 2, -3, 3), _grid(rng, 2, -3, 3)
        max_norm = float(rng.choice([0.5, 1.5, 2.0]))  # not 1: scaling to length 1 would be right
        total = np.sqrt(np.sum(ga**2) + np.sum(gb**2))
        if total > max_norm + 0.5 and np.max(np.abs(np.concatenate([ga, gb]))) > max_norm:
            break
    yield {"ga": ga, "gb": gb, "max_norm": max_norm}
    a, b = _leaf(np.zeros(2)), _leaf(np.zeros(2))
    a.grad, b.grad = ga.copy(), gb.copy()
    optim.clip_grad_norm_([a, b], max_norm)
    key = np.concatenate([a.grad, b.grad])

    def per_tensor(g):
        norm = np.sqrt(np.sum(g**2))
        return g if norm == 0 else g * min(1.0, max_norm / norm)  # an all-zero part stays zero

    mistakes = [
        Mistake(
            "clipped each parameter separately",
            np.concatenate([per_tensor(ga), per_tensor(gb)]),
            "clip_grad_norm_ uses ONE norm over all parameters together, so the whole gradient keeps its direction.",
        ),
        Mistake(
            "clipped by value",
            np.clip(np.concatenate([ga, gb]), -max_norm, max_norm),
            "Clamping each entry is clip_grad_value_; it changes the direction. Norm clipping rescales everything.",
        ),
        Mistake(
            "scaled to the norm instead of by max_norm / norm",
            np.concatenate([ga, gb]) / total,
            "Dividing by the norm gives length 1; the clipped gradient has length max_norm.",
        ),
    ]
    return Problem({"ga": ga, "gb": gb, "max_norm": max_norm, "norm": total}, key, mistakes)


# ----------------------------------------------------------------------------- 17. BatchNorm forward


def _check_bn_forward(v):
    X = v["X"]
    mean, var = X.mean(axis=0), ((X - X.mean(axis=0)) ** 2).mean(axis=0)
    return v["gamma"] * (X - mean) / np.sqrt(var + 1e-5) + v["beta"]


def _batchnorm(X, gamma, beta):
    from bpcore.nn import BatchNorm1d  # the layer, as a learner would use it

    layer = BatchNorm1d(X.shape[1])
    layer.weight.data[...] = gamma
    layer.bias.data[...] = beta
    return layer(Tensor(X)).data


@register(
    "batchnorm_forward", "matrix", check=_check_bn_forward, ranges=_ranges(X=(-2, 2), gamma=(0.5, 2), beta=(-1, 1))
)
def batchnorm_forward(rng) -> Draw:
    """BatchNorm1d's training-mode output for a batch of 4 samples and 2 features (eps = 1e-5)."""
    while True:
        X = _grid(rng, (4, 2), -2, 2)
        if np.all(X.std(axis=0) > 0.3):
            break
    gamma, beta = _grid(rng, 2, 0.5, 2), _grid(rng, 2)
    yield {"X": X, "gamma": gamma, "beta": beta}
    key = _batchnorm(X, gamma, beta)
    mean = X.mean(axis=0)
    unbiased = X.var(axis=0, ddof=1)
    per_sample = (X - X.mean(axis=1, keepdims=True)) / np.sqrt(X.var(axis=1, keepdims=True) + 1e-5)
    mistakes = [
        Mistake(
            "used the unbiased variance",
            gamma * (X - mean) / np.sqrt(unbiased + 1e-5) + beta,
            "Training-mode BatchNorm divides by the batch's biased variance (mean of squared deviations, 1/N).",
        ),
        Mistake(
            "normalised each sample instead of each feature",
            gamma * per_sample + beta,
            "That is LayerNorm. BatchNorm normalises each feature (column) over the batch (axis 0).",
        ),
        Mistake(
            "forgot gamma and beta",
            (X - mean) / np.sqrt(X.var(axis=0) + 1e-5),
            "After normalising, BatchNorm scales by gamma and shifts by beta.",
        ),
    ]
    return Problem({"X": X, "gamma": gamma, "beta": beta}, key, mistakes)


# ----------------------------------------------------------------------------- 18. BatchNorm backward


def _check_bn_backward(v):
    X = np.array(v["X"], dtype=np.float64)

    def loss():
        xhat = (X - X.mean(axis=0)) / np.sqrt(X.var(axis=0) + 1e-5)
        return float(np.sum(v["G"] * (v["gamma"] * xhat)))

    return _finite_differences(loss, X)


@register(
    "batchnorm_backward", "matrix", check=_check_bn_backward, ranges=_ranges(X=(-2, 2), gamma=(0.5, 2), G=(-1, 1))
)
def batchnorm_backward(rng) -> Draw:
    """dL/dX through BatchNorm (training mode, 3 samples, 2 features) given G = dL/dY.

    Every entry is graded on its own 3 significant digits, and the small ones come from cancellation: with 3
    samples each column of dL/dX is orthogonal to 1 and to xhat, so it is a multiple of (x3 - x2, x1 - x3,
    x2 - x1), and two samples that nearly tie make an entry near 0. So the samples of a feature are drawn at
    least 0.3 apart, and the prompt shows only exact numbers (X, gamma and G on a grid of 0.1; no rounded xhat
    "for convenience", whose 4 digits put about 1e-3 of relative error into an entry, more where terms cancel):
    an answer worked in full precision and rounded to 3 digits is the key's rounding, whatever the draw.
    """
    while True:
        X = _grid(rng, (3, 2), -2, 2)
        gaps = np.abs(X[[0, 0, 1]] - X[[1, 2, 2]])
        if np.all(X.std(axis=0) > 0.3) and np.all(gaps >= 0.3 - 1e-9):
            break
    gamma, G = _grid(rng, 2, 0.5, 2), _grid(rng, (3, 2))
    yield {"X": X, "gamma": gamma, "G": G}
    leaf = _leaf(X)
    mean, var = leaf.mean(axis=0, keepdims=True), leaf.var(axis=0, keepdims=True, unbiased=False)
    Y = (leaf - mean) / (var + 1e-5).sqrt() * Tensor(gamma)
    Y.backward(G)
    std = np.sqrt(X.var(axis=0) + 1e-5)
    dxhat = G * gamma
    no_var = (dxhat - dxhat.mean(axis=0)) / std
    mistakes = [
        Mistake(
            "treated the batch mean and variance as constants",
            dxhat / std,
            "The mean and variance are computed from X too: each sample's gradient gets two correction terms "
            "that subtract the batch means of dxhat and of dxhat * xhat.",
        ),
        Mistake(
            "forgot the variance's path",
            no_var,
            "Subtracting the mean of dxhat covers the mean's path; "
            "the variance's path adds - xhat * mean(dxhat * xhat).",
        ),
    ]
    return Problem({"X": X, "gamma": gamma, "G": G}, leaf.grad, mistakes)


# ----------------------------------------------------------------------------- 19. dropout backward


def _check_dropout(v):
    X = np.array(v["X"], dtype=np.float64)
    scale = v["M"] / (1 - v["p"])
    return _finite_differences(lambda: float(np.sum(v["G"] * X * scale)), X)


@register(
    "dropout_backward",
    "matrix",
    check=_check_dropout,
    ranges=_ranges(X=(-1, 1), G=(-2, 2), M=(0, 1), p={0.2, 0.25, 0.4}),
)
def dropout_backward(rng) -> Draw:
    """dL/dX through inverted dropout (F.dropout, training mode) given the mask it drew and G = dL/dY.

    The check rejects about 1% of draws: those where G is 0 at every dropped unit, so letting the gradient
    through them changes nothing."""
    while True:
        X, G = _away_from_kinks(rng, (2, 3)), _grid(rng, (2, 3), -2, 2)
        p = float(rng.choice([0.2, 0.25, 0.4]))
        leaf = _leaf(X)
        Y = F.dropout(leaf, p, training=True, rng=rng)
        M = (Y.data != 0).astype(np.float64)
        if 0 < M.sum() < M.size and np.any(G * M != 0):
            break
    yield {"X": X, "G": G, "M": M, "p": p}
    Y.backward(G)
    mistakes = [
        Mistake(
            "forgot the 1/(1-p) scale",
            G * M,
            "Inverted dropout scales the survivors by 1/(1-p) forward, so backward too.",
        ),
        Mistake("scaled by 1/p", G * M / p, "Survivors are kept with probability 1 - p, so the scale is 1/(1-p)."),
        Mistake(
            "let the gradient through dropped units",
            G / (1 - p),
            "A dropped unit's output is 0 whatever its input: its gradient is 0.",
        ),
    ]
    return Problem({"X": X, "G": G, "M": M, "p": p}, leaf.grad, mistakes)


# ----------------------------------------------------------------------------- 20. an RNN's hidden gradient


def _check_rnn_dh1(v):
    """dL/dh1 by autodiff: h1 is made a leaf and the second step and loss are rebuilt on it."""
    h1 = _leaf(v["h1"])
    h2 = (Tensor(v["W"]) @ Tensor(v["x2"]) + Tensor(v["U"]) @ h1 + Tensor(v["b"])).tanh()
    err = Tensor(v["V"]) @ h2 - v["y"]
    (0.5 * (err * err).sum()).backward()
    return h1.grad


def _shown_rnn_dh1(v):
    h2 = _as_shown(v["h2"])  # worked from h2 as the prompt shows it
    return v["U"].T @ (v["V"].T @ (v["V"] @ h2 - v["y"]) * (1 - h2**2))


@register(
    "rnn_hidden_grad",
    "matrix",
    check=_check_rnn_dh1,
    shown=_shown_rnn_dh1,
    ranges=_ranges(x1=(-1, 1), x2=(-1, 1), y=(-1, 1), W=(-1, 1), U=(-1, 1), b=(-1, 1), V=(-1, 1)),
)
def rnn_hidden_grad(rng) -> Draw:
    """dL/dh1 of a 2-step tanh RNN with the loss on the last step (key from bpcore.labs.through_time.rnn_by_hand).

    The check rejects about 7% of draws: those where U is near symmetric (U delta is then U^T delta) or h2 is
    near 0 (tanh's slope 1 - h2^2 is then near 1); about 12% more (seeds 0-599) are redrawn because the answer
    worked from h2 as shown is not right to 3 significant digits in every entry."""
    x1, x2, y = _grid(rng, 2), _grid(rng, 2), _grid(rng, 1)
    W, U, b, V = _grid(rng, (2, 2)), _grid(rng, (2, 2)), _grid(rng, 2), _grid(rng, (1, 2))
    yield {"x1": x1, "x2": x2, "y": y, "W": W, "U": U, "b": b, "V": V}
    walk = through_time.rnn_by_hand([x1, x2], y, W, U, b, V)
    s = walk.steps
    delta2 = s["delta2"]
    slope2 = 1 - s["h2"] ** 2
    mistakes = [
        Mistake(
            "missing activation derivative",
            U.T @ delta2,
            "On the way from h2 back to h1 the gradient passes tanh: multiply by 1 - h2^2 first.",
        ),
        Mistake(
            "multiplied by U instead of U^T",
            U @ (delta2 * slope2),
            "The forward pass used U h1, so the backward pass uses U^T.",
        ),
    ]
    values = {"x1": x1, "x2": x2, "y": y, "W": W, "U": U, "b": b, "V": V, "h1": s["h1"], "h2": s["h2"]}
    return Problem(values, s["delta1"], mistakes)


# ----------------------------------------------------------------------------- 21. a convolution's weight gradient


def _check_conv_dW(v):
    x, G = v["x"], v["G"]
    kh = x.shape[0] - G.shape[0] + 1
    out = np.zeros((kh, kh))
    for p in range(kh):
        for q in range(kh):
            out[p, q] = sum(G[i, j] * x[i + p, j + q] for i in range(G.shape[0]) for j in range(G.shape[1]))
    return out


@register("conv_weight_grad", "matrix", check=_check_conv_dW, ranges=_ranges(x=(-2, 2), W=(-1, 1), G=(-1, 1)))
def conv_weight_grad(rng) -> Draw:
    """dL/dW of a 2x2 filter slid (stride 1, no padding) over a 4x4 single-channel image, given G = dL/dy (3x3).

    The check rejects about 9% of draws: those whose key (sums of small whole numbers) is symmetric, so its
    transpose is the key."""
    x = rng.integers(-2, 3, (4, 4)).astype(np.float64)
    W, G = _grid(rng, (2, 2)), rng.integers(-1, 2, (3, 3)).astype(np.float64)
    yield {"x": x, "W": W, "G": G}
    w = _leaf(W[None, None])
    F.conv2d(Tensor(x[None, None]), w).backward(G[None, None])
    key = w.grad[0, 0]
    mistakes = [
        Mistake(
            "used one position only",
            G[0, 0] * x[0:2, 0:2],
            "The filter is used at all 9 positions: its gradient sums every position's term.",
        ),
        Mistake(
            "averaged over positions",
            key / 9,
            "Parameter sharing adds the contributions; nothing divides by the number of positions.",
        ),
    ]
    return Problem({"x": x, "W": W, "G": G}, key, mistakes)


# ----------------------------------------------------------------------------- 22. a convolution's output size


def _check_conv_size(v):
    return (v["H"] + 2 * v["pad"] - v["k"]) // v["stride"] + 1


CONV_SIZES = range(8, 257)  # input heights H
CONV_KERNELS, CONV_PADS, CONV_STRIDES = (5, 7, 9, 11), (3, 4, 5), (2, 3, 4)


def _conv_size_answers(H, k, pad, stride) -> list[int]:
    """The key and the four mistakes of ``conv_output_size`` in closed form, in that order."""
    return [
        (H + 2 * pad - k) // stride + 1,
        (H + 2 * pad - k) // stride,
        (H - k) // stride + 1,
        (H + pad - k) // stride + 1,
        H + 2 * pad - k + 1,
    ]


@cache
def _conv_size_problems() -> list[tuple[int, int, int, int]]:
    """Every (H, k, pad, stride) with pad at most (k + 1) / 2 whose five answers are five different numbers."""
    return [
        (H, k, pad, stride)
        for H in CONV_SIZES
        for k in CONV_KERNELS
        for pad in CONV_PADS
        for stride in CONV_STRIDES
        if pad <= (k + 1) // 2 and len(set(_conv_size_answers(H, k, pad, stride))) == 5
    ]


@register(
    "conv_output_size",
    "numeric",
    check=_check_conv_size,
    common_mistakes=False,
    integer=True,
    ranges=_ranges(
        H=(CONV_SIZES[0], CONV_SIZES[-1]), k=set(CONV_KERNELS), pad=set(CONV_PADS), stride=set(CONV_STRIDES)
    ),
)
def conv_output_size(rng) -> Draw:
    """The output height of F.conv2d for an H x H input (8 to 256), a k x k kernel (5 to 11), a padding (3 to 5,
    at most (k + 1) / 2) and a stride (2 to 4).

    Drawn uniformly from the combinations whose answer and four mistakes are five different numbers, so the
    draw never needs a second try: 2,446 problems. The answers are whole numbers, and with pad <= stride
    padding one side only gives the same number as forgetting the +1 for most sizes (and ignoring the padding
    often does too), so pads start at 3 and the few such coincidences left are not drawn.
    """
    problems = _conv_size_problems()
    H, k, pad, stride = problems[int(rng.integers(len(problems)))]
    yield {"H": H, "k": k, "pad": pad, "stride": stride}
    out = F.conv2d(Tensor(np.zeros((1, 1, H, H))), Tensor(np.zeros((1, 1, k, k))), stride=stride, padding=pad)
    key = int(out.shape[2])
    _, no_one, no_pad, one_side, no_stride = _conv_size_answers(H, k, pad, stride)
    mistakes = [
        Mistake("forgot the +1", no_one, "Count positions: the first window sits at 0, so add 1."),
        Mistake("ignored the padding", no_pad, "Padding adds pad rows on each side: H + 2 pad."),
        Mistake("padded one side only", one_side, "Padding goes on both sides: H + 2 pad."),
        Mistake("ignored the stride", no_stride, "With stride s the window jumps s pixels: divide by s."),
    ]
    return Problem({"H": H, "k": k, "pad": pad, "stride": stride}, key, mistakes)


# ----------------------------------------------------------------------------- 23. Xavier variance of a conv weight


def _check_xavier(v):
    fan_in = v["c_in"] * v["k"] * v["k"]
    fan_out = v["c_out"] * v["k"] * v["k"]
    return float(np.sqrt(2.0 / (fan_in + fan_out)))


XAVIER_C_IN, XAVIER_C_OUT, XAVIER_K = (1, 3, 16, 32, 64), (8, 16, 64, 128, 256), (3, 5, 7)


@register(
    "xavier_conv_std",
    "numeric",
    check=_check_xavier,
    common_mistakes=False,
    ranges=_ranges(c_in=set(XAVIER_C_IN), c_out=set(XAVIER_C_OUT), k=set(XAVIER_K)),
)
def xavier_conv_std(rng) -> Draw:
    """The std of xavier_normal_ for a conv weight (C_out, C_in, k, k): sqrt(2 / (fan_in + fan_out)), via bp.nn.init.

    C_in in (1, 3, 16, 32, 64), C_out in (8, 16, 64, 128, 256), k in (3, 5, 7): 75 combinations. The
    distinguishability check rejects the 6 with C_in = C_out (the fan_in-only mistake then equals the key) and
    the 3 with C_out = C_in (k^2 - 1) (ignoring the receptive field then equals He's rule): 66 problems.
    """
    from bpcore.nn import init

    c_in, c_out, k = int(rng.choice(XAVIER_C_IN)), int(rng.choice(XAVIER_C_OUT)), int(rng.choice(XAVIER_K))
    yield {"c_in": c_in, "c_out": c_out, "k": k}
    fan_in, fan_out = init.fans(Tensor(np.zeros((c_out, c_in, k, k))))
    key = float(np.sqrt(2.0 / (fan_in + fan_out)))
    mistakes = [
        Mistake(
            "ignored the receptive field",
            float(np.sqrt(2.0 / (c_in + c_out))),
            "A conv weight's fans count every kernel tap: fan_in = C_in k^2.",
        ),
        Mistake(
            "used He's rule",
            float(np.sqrt(2.0 / fan_in)),
            "sqrt(2/fan_in) is He's rule for ReLU; Xavier averages the fans: 2/(fan_in + fan_out).",
        ),
        Mistake(
            "used fan_in only",
            float(np.sqrt(1.0 / fan_in)),
            "1/fan_in keeps only the forward condition; Xavier compromises with the backward one.",
        ),
        Mistake(
            "gave the variance",
            key**2,
            "The question asks for the standard deviation, the square root of the variance.",
        ),
    ]
    return Problem({"c_in": c_in, "c_out": c_out, "k": k}, key, mistakes)


# ----------------------------------------------------------------------------- 24. He std for a leaky ReLU


def _check_he(v):
    return float(np.sqrt(2.0 / ((1 + v["a"] ** 2) * v["fan_in"])))


HE_FAN_IN, HE_FAN_OUT, HE_SLOPE = (64, 100, 128, 256, 400, 512, 784, 1024), (10, 32, 512), (0.2, 0.25, 0.3, 0.4, 0.5)


@register(
    "he_std_leaky",
    "numeric",
    check=_check_he,
    common_mistakes=False,
    ranges=_ranges(fan_in=set(HE_FAN_IN), fan_out=set(HE_FAN_OUT), a=set(HE_SLOPE)),
)
def he_std_leaky(rng) -> Draw:
    """The std of kaiming_normal_ (fan_in mode) for Linear(fan_in, fan_out) before a leaky ReLU of slope a.

    fan_in in (64, ... 1024), fan_out in (10, 32, 512), a in (0.2, ... 0.5): 120 combinations. The
    distinguishability check rejects the 5 with fan_in = fan_out = 512 (the fan_out mistake then equals the
    key), so there are 115 problems in all. Slopes below 0.2 are not drawn: the plain ReLU gain would then be
    within 1% of the key, so that mistake could not be told from a right answer.
    """
    from bpcore.nn import init

    fan_in, fan_out = int(rng.choice(HE_FAN_IN)), int(rng.choice(HE_FAN_OUT))
    a = float(rng.choice(HE_SLOPE))
    yield {"fan_in": fan_in, "fan_out": fan_out, "a": a}
    key = init.calculate_gain("leaky_relu", a) / np.sqrt(init.fans(Tensor(np.zeros((fan_out, fan_in))))[0])
    mistakes = [
        Mistake(
            "used the plain ReLU gain",
            float(np.sqrt(2.0 / fan_in)),
            "A leaky ReLU keeps a^2 of the variance on the negative side: gain^2 = 2/(1 + a^2).",
        ),
        Mistake(
            "gave the variance",
            float(key**2),
            "The question asks for the standard deviation: the square root of the variance.",
        ),
        Mistake(
            "used fan_out",
            float(np.sqrt(2.0 / ((1 + a * a) * fan_out))),
            "fan_in mode preserves the forward signal: divide by the layer's inputs.",
        ),
    ]
    return Problem({"fan_in": fan_in, "fan_out": fan_out, "a": a}, float(key), mistakes)


# ----------------------------------------------------------------------------- 25. a deep sigmoid chain


def _chain_numpy(x, ws):
    h = x
    for w in ws:
        h = _sigmoid(w * h)
    return h


def _check_sigmoid_chain(v):
    x = np.array([float(v["x"])])
    return float(_finite_differences(lambda: float(_chain_numpy(x[0], v["ws"])), x)[0])


def _shown_sigmoid_chain(v):
    hs = _as_shown(v["hs"])  # worked from h_1..h_4 as the prompt shows them
    return float(np.prod(v["ws"] * hs * (1 - hs)))


@register(
    "sigmoid_chain_grad",
    "numeric",
    check=_check_sigmoid_chain,
    shown=_shown_sigmoid_chain,
    ranges=_ranges(x=(-2, 2), ws=(-3, 3)),
)
def sigmoid_chain_grad(rng) -> Draw:
    """d h4 / d x through four scalar sigmoid layers h_i = sigma(w_i h_{i-1}): the vanishing product.

    Rejected draws: about 10% (seeds 0-599), those whose product worked from h_1..h_4 as shown is not right to 3
    significant digits."""
    x, ws = float(_away_from_kinks(rng, (), -2, 2)), _away_from_kinks(rng, 4, -3, 3)
    yield {"x": x, "ws": ws}
    leaf = _leaf(x)
    h, hs = leaf, []
    for w in ws:
        h = (float(w) * h).sigmoid()
        hs.append(float(h.data))
    h.backward()
    hs = np.array(hs)
    mistakes = [
        Mistake(
            "missing activation derivative",
            float(np.prod(ws)),
            "Each layer contributes w_i times the sigmoid's slope h_i(1 - h_i).",
        ),
        Mistake("used only the slopes", float(np.prod(hs * (1 - hs))), "Each layer also multiplies by its weight w_i."),
    ]
    return Problem({"x": x, "ws": ws, "hs": hs}, float(leaf.grad), mistakes)


# ----------------------------------------------------------------------------- 26. a residual chain


def _residual_numpy(x, ws):
    h = x
    for w in ws:
        h = h + np.tanh(w * h)
    return h


def _check_residual(v):
    x = np.array([float(v["x"])])
    return float(_finite_differences(lambda: float(_residual_numpy(x[0], v["ws"])), x)[0])


@register("residual_chain_grad", "numeric", check=_check_residual, ranges=_ranges(x=(-1, 1), ws=(-2, 2)))
def residual_chain_grad(rng) -> Draw:
    """d h3 / d x through three scalar residual blocks h_i = h_{i-1} + tanh(w_i h_{i-1})."""
    x, ws = float(_away_from_kinks(rng, (), -1, 1)), _grid(rng, 3, -2, 2)
    yield {"x": x, "ws": ws}
    leaf = _leaf(x)
    h, hs = leaf, []
    for w in ws:
        h = h + (float(w) * h).tanh()
        hs.append(float(h.data))
    h.backward()
    ins = np.array([x, *hs[:-1]])
    branch = ws * (1 - np.tanh(ws * ins) ** 2)
    mistakes = [
        Mistake(
            "dropped the identity path",
            float(np.prod(branch)),
            "Each block's local derivative is 1 + w tanh'(w h): the skip connection adds the 1.",
        ),
        Mistake(
            "added the blocks instead of multiplying",
            float(np.sum(1 + branch)),
            "Blocks in series multiply their local derivatives.",
        ),
    ]
    return Problem({"x": x, "ws": ws}, float(leaf.grad), mistakes)


# ----------------------------------------------------------------------------- 27. REINFORCE on softmax logits


def _check_reinforce(v):
    z = np.array(v["z"], dtype=np.float64)

    def loss():
        shifted = z - z.max()
        return float(-v["R"] * (shifted[v["a"]] - np.log(np.exp(shifted).sum())))

    return _finite_differences(loss, z)


def _shown_reinforce(v):
    return -v["R"] * (np.eye(3)[v["a"]] - _as_shown(v["pi"]))  # worked from pi as the prompt shows it


@register(
    "reinforce_logit_grad",
    "matrix",
    check=_check_reinforce,
    shown=_shown_reinforce,
    ranges=_ranges(z=(-2, 2), a=(0, 2), R={-2.0, -0.5, 0.5, 2.0, 3.0}),
)
def reinforce_logit_grad(rng) -> Draw:
    """dL/dz of the REINFORCE loss L = -R log pi(a) for a softmax policy over 3 actions.

    Rejected draws: about 7% (seeds 0-599), those whose answer worked from pi as shown is not right to 3
    significant digits in every entry."""
    z, a = _grid(rng, 3, -2, 2), int(rng.integers(0, 3))
    R = float(rng.choice([-2.0, -0.5, 0.5, 2.0, 3.0]))  # not -1: forgetting R would be the sign slip
    yield {"z": z, "a": a, "R": R}
    leaf = _leaf(z)
    (-R * leaf.log_softmax(axis=0)[a]).backward()
    pi = _softmax_np(z)
    onehot = np.eye(3)[a]
    mistakes = [
        Mistake("forgot the return", pi - onehot, "The log-probability's gradient is weighted by the return R."),
        Mistake(
            "used pi instead of pi - onehot",
            R * pi,
            "d log pi(a)/dz = onehot(a) - pi: the chosen action's own term matters.",
        ),
    ]
    return Problem({"z": z, "a": a, "R": R, "pi": pi}, leaf.grad, mistakes)


def _softmax_np(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# ----------------------------------------------------------------------------- 28. a GAN generator's gradient


def _check_gan(v):
    s = np.array([float(v["s"])])
    return float(_finite_differences(lambda: float(-np.log(_sigmoid(s[0]))), s)[0])


def _shown_gan(v):
    return _as_shown(v["sigma"]) - 1  # worked from D = sigma(s) as the prompt shows it


@register("gan_generator_logit_grad", "numeric", check=_check_gan, shown=_shown_gan, ranges=_ranges(s=(-4, 1)))
def gan_generator_logit_grad(rng) -> Draw:
    """d/ds of the non-saturating generator loss -log sigma(s), s = the discriminator's logit on a fake.

    s in [-4, 1] on a 0.01 grid, never within 0.2 of 0 (there the minimax mistake -sigma(s) is close to the
    key sigma(s) - 1): 461 points, of which 439 are drawn; the other 22 are redrawn because the answer worked
    from D as shown is not right to 3 significant digits.
    """
    s = float(_away_from_kinks(rng, (), -4, 1, margin=0.2, decimals=2))
    yield {"s": s}
    leaf = _leaf(s)
    F.binary_cross_entropy_with_logits(leaf.reshape(1), np.ones(1)).backward()
    sig = float(_sigmoid(s))
    mistakes = [
        Mistake(
            "used the saturating (minimax) loss",
            -sig,
            "d/ds log(1 - sigma(s)) = -sigma(s): tiny when D confidently rejects the fake, "
            "which is why it is replaced.",
        ),
    ]
    return Problem({"s": s, "sigma": sig}, float(leaf.grad[0] if np.ndim(leaf.grad) else leaf.grad), mistakes)


# ----------------------------------------------------------------------------- 29. a VAE's KL term


VAE_KL_STEPS = {
    "dKL/dmu": r"\partial\,\mathrm{KL} / \partial \mu",
    "dKL/dlogvar": r"\partial\,\mathrm{KL} / \partial \log\sigma^2",
}


def _kl_numpy(mu, logvar) -> float:
    return float(0.5 * np.sum(mu**2 + np.exp(logvar) - 1 - logvar))


def _check_vae_kl(v):
    """Central differences of the KL written in numpy (the key is the engine's backward)."""
    mu, logvar = np.array(v["mu"], dtype=np.float64), np.array(v["logvar"], dtype=np.float64)
    return {
        "dKL/dmu": _finite_differences(lambda: _kl_numpy(mu, logvar), mu),
        "dKL/dlogvar": _finite_differences(lambda: _kl_numpy(mu, logvar), logvar),
    }


@register(
    "vae_kl_grad",
    "matrix",
    check=_check_vae_kl,
    steps=VAE_KL_STEPS,
    ranges=_ranges(mu=(-2, 2), logvar=(-2, 2)),
)
def vae_kl_grad(rng) -> Draw:
    """d/dmu and d/dlogvar of KL(N(mu, diag exp(logvar)) || N(0, I)) for a 2-D latent (bpcore.labs.beyond).

    Entries on a 0.1 grid, none of them 0 (at mu = 0 or logvar = 0 the gradient's entry is 0 for the key
    and for several mistakes alike)."""
    from bpcore.labs.beyond import kl_to_standard_normal

    mu, logvar = _away_from_kinks(rng, 2, -2, 2), _away_from_kinks(rng, 2, -2, 2)
    yield {"mu": mu, "logvar": logvar}
    mu_leaf, logvar_leaf = _leaf(mu.reshape(1, 2)), _leaf(logvar.reshape(1, 2))
    kl_to_standard_normal(mu_leaf, logvar_leaf).sum().backward()
    var, sigma = np.exp(logvar), np.exp(0.5 * logvar)
    key = {"dKL/dmu": mu_leaf.grad[0], "dKL/dlogvar": logvar_leaf.grad[0]}
    mistakes = {
        "dKL/dmu": [
            Mistake(
                "forgot the 1/2",
                2 * mu,
                "KL = 1/2 sum(mu^2 + ...): the 2 that d(mu^2)/dmu brings down cancels the 1/2 in front, leaving mu.",
            )
        ],
        "dKL/dlogvar": [
            Mistake(
                "forgot the 1/2",
                var - 1,
                "The whole KL carries a factor 1/2: d/dlogvar of 1/2 (exp(logvar) - logvar) is 1/2 (exp(logvar) - 1).",
            ),
            Mistake(
                "differentiated with respect to sigma",
                sigma - 1 / sigma,
                "That is dKL/dsigma. The encoder outputs logvar = log sigma^2, so sigma^2 = exp(logvar) and "
                "d(sigma^2)/dlogvar = sigma^2: dKL/dlogvar = 1/2 (sigma^2 - 1).",
            ),
            Mistake(
                "differentiated with respect to the variance",
                0.5 * (1 - 1 / var),
                "That is dKL/d(sigma^2) = 1/2 (1 - 1/sigma^2); the chain rule through sigma^2 = exp(logvar) "
                "multiplies it by sigma^2.",
            ),
            Mistake(
                "dropped the -log sigma^2 term",
                0.5 * var,
                "-log sigma^2 is -logvar itself, whose derivative is -1: it gives the -1 in 1/2 (exp(logvar) - 1).",
            ),
        ],
    }
    return Problem({"mu": mu, "logvar": logvar, "var": var}, key, mistakes)


# ----------------------------------------------------------------------------- 30. the reparameterisation trick


VAE_REPARAM_STEPS = {
    "z": "z",
    "dL/dmu": r"\partial L / \partial \mu",
    "dL/dlogvar": r"\partial L / \partial \log\sigma^2",
}


def _check_vae_reparam(v):
    """z in numpy, and the gradients of L = g . z by central differences (the key is the engine's backward)."""
    mu, logvar = np.array(v["mu"], dtype=np.float64), np.array(v["logvar"], dtype=np.float64)

    def loss():
        return float(np.sum(v["g"] * (mu + np.exp(0.5 * logvar) * v["eps"])))

    return {
        "z": v["mu"] + np.exp(0.5 * v["logvar"]) * v["eps"],
        "dL/dmu": _finite_differences(loss, mu),
        "dL/dlogvar": _finite_differences(loss, logvar),
    }


@register(
    "vae_reparam_grad",
    "matrix",
    check=_check_vae_reparam,
    steps=VAE_REPARAM_STEPS,
    ranges=_ranges(mu=(-1, 1), logvar=(-2, 1), eps=(-2, 2), g=(-2, 2)),
)
def vae_reparam_grad(rng) -> Draw:
    """A VAE's reparameterised sample z = mu + exp(logvar / 2) eps for a 2-D latent, and, for an upstream
    gradient g = dL/dz, dL/dmu and dL/dlogvar by the engine's backward.

    logvar, eps and g are never 0 (an entry of the key would then be 0 for the key and its mistakes alike)."""
    mu, logvar = _grid(rng, 2, -1, 1), _away_from_kinks(rng, 2, -2, 1)
    eps, g = _away_from_kinks(rng, 2, -2, 2), _away_from_kinks(rng, 2, -2, 2)
    yield {"mu": mu, "logvar": logvar, "eps": eps, "g": g}
    mu_leaf, logvar_leaf = _leaf(mu), _leaf(logvar)
    z = mu_leaf + (0.5 * logvar_leaf).exp() * eps
    z.backward(g)
    sigma = np.exp(0.5 * logvar)
    key = {"z": z.data.copy(), "dL/dmu": mu_leaf.grad, "dL/dlogvar": logvar_leaf.grad}
    mistakes = {
        "z": [
            Mistake(
                "used the variance as the standard deviation",
                mu + np.exp(logvar) * eps,
                "sigma = exp(logvar / 2): logvar is the log of sigma^2, so halve it before exponentiating.",
            ),
            Mistake(
                "used logvar as sigma",
                mu + logvar * eps,
                "logvar is log sigma^2, not sigma: sigma = exp(logvar / 2).",
            ),
        ],
        "dL/dmu": [
            Mistake(
                "gave dz/dmu, without the upstream gradient",
                np.ones(2),
                "dz/dmu = 1 is the local derivative; the chain rule multiplies it by g = dL/dz.",
            ),
        ],
        "dL/dlogvar": [
            Mistake(
                "differentiated with respect to sigma",
                g * eps,
                "That is dL/dsigma = g eps; through sigma = exp(logvar / 2), dsigma/dlogvar = sigma / 2.",
            ),
            Mistake(
                "forgot the 1/2",
                g * sigma * eps,
                "d exp(logvar / 2)/dlogvar = 1/2 exp(logvar / 2): the 1/2 of the exponent comes down.",
            ),
            Mistake(
                "gave dz/dlogvar, without the upstream gradient",
                0.5 * sigma * eps,
                "dz/dlogvar = sigma eps / 2 is the local derivative; the chain rule multiplies it by g = dL/dz.",
            ),
        ],
    }
    return Problem({"mu": mu, "logvar": logvar, "eps": eps, "g": g, "sigma": sigma}, key, mistakes)


# ----------------------------------------------------------------------------- 31. attention: dV = P^T dO


def _attention_rows(rng, rows: int, keys: int) -> np.ndarray:
    """``rows`` attention rows over ``keys`` keys: positive entries on a 0.1 grid that sum to exactly 1."""
    tenths = np.array([rng.multinomial(10 - keys, np.full(keys, 1 / keys)) + 1 for _ in range(rows)])
    return tenths / 10.0


def _check_attention_dV(v):
    """dV by finite differences of L = sum(dO * (P V)) around any V (the loss is linear in V)."""
    V = np.zeros((v["P"].shape[1], v["dO"].shape[1]))
    return _finite_differences(lambda: float(np.sum(v["dO"] * (v["P"] @ V))), V)


@register("attention_dV", "matrix", check=_check_attention_dV, ranges=_ranges(P=(0.1, 0.8), dO=(-1, 1)))
def attention_dV(rng) -> Draw:
    """dL/dV of O = P V for 3 queries, 3 keys, values of width 2, given P and dO = dL/dO.

    The key is the engine's: P is made the softmax of log P inside F.scaled_dot_product_attention (identity
    keys, scale 1), so autodiff of the real op gives dV. The check rejects about 1% of draws: those where P is
    close to symmetric (P dO is then P^T dO)."""
    P, dO = _attention_rows(rng, 3, 3), _grid(rng, (3, 2))
    yield {"P": P, "dO": dO}
    value = _leaf(np.zeros((3, 2)))
    out = F.scaled_dot_product_attention(Tensor(np.log(P)), Tensor(np.eye(3)), value, scale=1.0)
    out.backward(dO)
    mistakes = [
        Mistake(
            "used P instead of P^T",
            P @ dO,
            "O = P V, so each value row j collects dO from every query i in proportion to P[i, j]: dV = P^T dO, "
            "summing down the columns of P, not along its rows.",
        ),
    ]
    return Problem({"P": P, "dO": dO}, value.grad, mistakes)


# ----------------------------------------------------------------------------- 32. attention: the scaled scores


def _check_attention_scores(v):
    Q, K = v["Q"], v["K"]
    return np.einsum("ie,je->ij", Q, K) / np.sqrt(Q.shape[1])


@register("attention_scores", "matrix", check=_check_attention_scores, ranges=_ranges(Q=(-1, 1), K=(-1, 1)))
def attention_scores(rng) -> Draw:
    """The scaled scores Q K^T / sqrt(d_k) of 2 queries against 3 keys, d_k = 4 (so the scale is 1/2).

    The key is the engine's: q @ k.T * scale, the first step of F.scaled_dot_product_attention."""
    Q, K = _grid(rng, (2, 4)), _grid(rng, (3, 4))
    yield {"Q": Q, "K": K}
    raw = (Tensor(Q) @ Tensor(K).T).data
    key = (Tensor(Q) @ Tensor(K).T * (1.0 / np.sqrt(4))).data
    mistakes = [
        Mistake(
            "forgot the 1/sqrt(d_k) scale",
            raw,
            "Scaled dot-product attention divides every score by sqrt(d_k) = 2 here, before the softmax.",
        ),
        Mistake(
            "divided by d_k instead of sqrt(d_k)",
            raw / 4,
            "The scale is 1/sqrt(d_k): it undoes the growth of the scores' standard deviation, which is sqrt(d_k).",
        ),
        Mistake(
            "transposed",
            raw.T / 2,
            "That is K Q^T: the scores have one row per query and one column per key, S = Q K^T of shape (2, 3).",
        ),
    ]
    return Problem({"Q": Q, "K": K}, key, mistakes)


# ----------------------------------------------------------------------------- 33. causal attention weights


def _causal_softmax(S, axis=1):
    masked = np.where(np.tril(np.ones(S.shape, dtype=bool)), S, -np.inf)
    e = np.exp(masked - masked.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _check_causal_weights(v):
    return _causal_softmax(np.array(v["S"], dtype=np.float64))


@register("causal_attention_weights", "matrix", check=_check_causal_weights, ranges=_ranges(S=(-2, 2)))
def causal_attention_weights(rng) -> Draw:
    """The attention weights P = softmax(S + causal mask) of 3 positions, given the scaled scores S.

    The key is the engine's: F.scaled_dot_product_attention(S, I, I, is_causal=True, scale=1) is S I^T = S
    masked, softmaxed and multiplied by V = I, which is P itself."""
    S = _grid(rng, (3, 3), -2, 2)
    yield {"S": S}
    eye = Tensor(np.eye(3))
    key = F.scaled_dot_product_attention(Tensor(S), eye, eye, is_causal=True, scale=1.0).data
    unmasked = Tensor(S).softmax(axis=1).data
    mistakes = [
        Mistake(
            "applied the mask after the softmax",
            np.tril(unmasked),
            "Zeroing the future weights after the softmax leaves rows that no longer sum to 1: the mask is added "
            "to the scores (-inf above the diagonal) before the softmax, which then renormalises over the "
            "visible keys.",
        ),
        Mistake(
            "took the softmax over the wrong axis",
            _causal_softmax(S, axis=0),
            "Each query's weights are a distribution over the keys: normalise each row (the keys, axis -1), "
            "not each column.",
        ),
        Mistake(
            "forgot the causal mask",
            unmasked,
            "With a causal mask position i attends to keys 1..i only: the weights above the diagonal are 0.",
        ),
    ]
    return Problem({"S": S}, key, mistakes)


# ----------------------------------------------------------------------------- 34. dS through a masked softmax row


def _check_masked_row(v):
    """dS by finite differences of sum(dP * softmax(s + mask)) around s = log p (the masked key at any score)."""
    s = np.log(np.where(v["p"] > 0, v["p"], 1.0))
    visible = v["p"] > 0

    def loss():
        e = np.where(visible, np.exp(s - s[visible].max()), 0.0)
        return float(np.sum(v["dP"] * e / e.sum()))

    return _finite_differences(loss, s)


@register("masked_softmax_row_grad", "matrix", check=_check_masked_row, ranges=_ranges(p=(0, 0.8), dP=(-1, 1)))
def masked_softmax_row_grad(rng) -> Draw:
    """dS for query 3 of 4 under a causal mask: weights p = (p1, p2, p3, 0) and dP = dL/dP (4 entries) given.

    The key is the engine's: F.scaled_dot_product_attention with the scores as the query (identity keys,
    scale 1), the mask hiding key 4 and V = I (so O = P and dO = dP); the query's gradient is dS. The
    check rejects about 7% of draws: mostly those where dP_4 is 0 (the masked key's mistake is then the key).
    A dP equal at the three visible keys is drawn again before it is shown: dS would be 0, left by float
    rounding as entries near 1e-17 that a learner's exact 0 could not match."""
    p = np.append(_attention_rows(rng, 1, 3)[0], 0.0)
    dP = _grid(rng, 4)
    while np.ptp(dP[:3]) == 0:  # equal at the visible keys: dS would be exactly 0, its key float residue
        dP = _grid(rng, 4)
    yield {"p": p, "dP": dP}
    scores = _leaf(np.log(np.where(p > 0, p, 1.0))[None, :])
    mask = np.array([[True, True, True, False]])
    eye = Tensor(np.eye(4))
    F.scaled_dot_product_attention(scores, eye, eye, attn_mask=mask, scale=1.0).backward(dP[None, :])
    key = scores.grad[0]
    rowsum = float(np.sum(dP * p))
    through = p * (dP - rowsum)
    through[3] = dP[3]
    mistakes = [
        Mistake(
            "no rowsum term",
            p * dP,
            "The softmax's Jacobian is diag(p) - p p^T: besides p * dP there is - p * sum(dP * p), because "
            "raising one score lowers every other weight of the row.",
        ),
        Mistake(
            "used only the diagonal of the softmax's Jacobian",
            p * (1 - p) * dP,
            "p(1 - p) is the diagonal of the Jacobian alone; each weight also depends on the other scores of the "
            "row (the -p_i p_j terms), which is what the rowsum term collects.",
        ),
        Mistake(
            "let the gradient through the masked key",
            through,
            "The masked key's weight is exactly 0 whatever its score, so its score's gradient p_4 (dP_4 - ...) is 0: "
            "adding -inf passes no gradient to a blocked position.",
        ),
    ]
    return Problem({"p": p, "dP": dP}, key, mistakes)


# ----------------------------------------------------------------------------- 35. LayerNorm backward


def _check_ln_backward(v):
    x = np.array(v["x"], dtype=np.float64)

    def loss():
        xhat = (x - x.mean()) / np.sqrt(x.var() + 1e-5)
        return float(np.sum(v["dy"] * v["gamma"] * xhat))

    return _finite_differences(loss, x)


@register(
    "layernorm_backward",
    "matrix",
    check=_check_ln_backward,
    ranges=_ranges(x=(-2, 2), gamma=(0.5, 2), dy=(-1, 1)),
)
def layernorm_backward(rng) -> Draw:
    """dL/dx through LayerNorm over 4 features (eps = 1e-5) given gamma and dy = dL/dy; key: nn.LayerNorm.

    The prompt shows only exact numbers (x, gamma, dy on a 0.1 grid): x_hat and 1/sigma rounded for convenience
    left the small, cancelling entries of the answer off in their 3rd digit in over half the draws. The check
    rejects draws where two of the mistakes (or a mistake and the key) coincide."""
    while True:
        x = _grid(rng, 4, -2, 2)
        if x.std() > 0.3:
            break
    gamma, dy = _grid(rng, 4, 0.5, 2), _grid(rng, 4)
    yield {"x": x, "gamma": gamma, "dy": dy}
    from bpcore.labs.attention import autodiff_layer_norm

    key = autodiff_layer_norm(x, gamma, np.zeros(4), dy)["dx"]
    rstd = 1 / np.sqrt(x.var() + 1e-5)
    xhat = (x - x.mean()) * rstd
    dxhat = dy * gamma
    mistakes = [
        Mistake(
            "treated the mean and variance as constants",
            dxhat * rstd,
            "The mean and variance are computed from x itself: each feature's gradient also gets the two terms "
            "that subtract mean(dx_hat) and x_hat * mean(dx_hat * x_hat).",
        ),
        Mistake(
            "forgot the variance's path",
            rstd * (dxhat - dxhat.mean()),
            "Subtracting mean(dx_hat) covers the mean's path; the variance's path adds - x_hat * mean(dx_hat * x_hat).",
        ),
        Mistake(
            "forgot gamma",
            rstd * (dy - dy.mean() - xhat * (dy * xhat).mean()),
            "y = gamma * x_hat + beta, so the gradient reaching x_hat is dy * gamma before the normalisation's "
            "backward pass.",
        ),
    ]
    return Problem({"x": x, "gamma": gamma, "dy": dy, "xhat": xhat, "rstd": rstd}, key, mistakes)
