"""Engine-computed problems: a seed in, the numbers of a problem and its answer (computed by bpcore) out.

A question names its generator (``generator = "three_layer_dW2"``); each attempt draws a fresh seed,
which is logged, so every instance can be rebuilt exactly. A generator returns a :class:`Problem`:

* ``values``: every number the prompt shows (``{{X}}`` in the prompt is replaced by ``values["X"]``),
* ``key``: the answer, computed by the engine (autodiff, ``bp.optim``, or ``bp.manual``),
* ``mistakes``: the usual wrong answers, also computed by the engine, so a wrong answer can be named.

Each generator also has an independent ``check``: the answer recomputed from the shown values by
another route (finite differences, or autodiff against the hand derivation). ``bpcore validate``
runs both for 50 seeds and requires them to agree.

Parameters are drawn on a grid of one decimal so the prompt shows them exactly; forward-pass
values offered "for convenience" are shown to 4 decimals, well inside the grading tolerance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bpcore import manual, optim
from bpcore.gradcheck import numerical_gradient
from bpcore.nn import functional as F
from bpcore.quiz.diagnose import Mistake, close, with_common_mistakes
from bpcore.tensor import Tensor

DEFAULT_RTOL = 1e-2  # answers are typed to about 3 significant digits
DEFAULT_ATOL = 1e-4
MAX_DRAWS = 50  # redraws allowed to make every mistake distinguishable from the key and from each other


@dataclass
class Problem:
    """One concrete instance: shown values, the key, and the plausible wrong answers.

    For a chained derivation ``key`` and ``mistakes`` are dicts keyed by step name, in order.
    """

    values: dict
    key: object
    mistakes: list[Mistake] | dict[str, list[Mistake]] = field(default_factory=list)
    seed: int = 0


@dataclass
class Generator:
    """A registered generator. ``draw(rng)`` makes a problem; ``check(values)`` recomputes its key independently."""

    name: str
    kind: str  # "numeric" or "matrix"
    draw: Callable[[np.random.Generator], Problem]
    check: Callable[[dict], object]
    common_mistakes: bool = True
    steps: dict[str, str] | None = None  # chained derivations: step name -> LaTeX label, in order
    description: str = ""

    def __call__(self, seed: int) -> Problem:
        """The problem for ``seed``: the same seed always gives the same numbers and answer."""
        rng = np.random.default_rng(seed)
        for _ in range(MAX_DRAWS):
            problem = self.draw(rng)
            problem.seed = seed
            if self.common_mistakes:
                if self.steps:
                    problem.mistakes = {s: with_common_mistakes(problem.key[s], m) for s, m in problem.mistakes.items()}
                else:
                    problem.mistakes = with_common_mistakes(problem.key, problem.mistakes)
            if distinguishable(problem):
                return problem
        raise RuntimeError(f"generator {self.name!r}: no distinguishable problem in {MAX_DRAWS} draws (seed {seed})")


def distinguishable(problem: Problem, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> bool:
    """Every mistake differs from the key and from every other mistake, at grading tolerance."""
    if isinstance(problem.key, dict):
        parts = [(problem.key[s], problem.mistakes.get(s, [])) for s in problem.key]
    else:
        parts = [(problem.key, problem.mistakes)]
    for key, mistakes in parts:
        values = [key, *(m.value for m in mistakes)]
        for i, a in enumerate(values):
            if any(close(a, b, rtol, atol) for b in values[i + 1 :]):
                return False
    return True


GENERATORS: dict[str, Generator] = {}


def register(name: str, kind: str, check: Callable, **options):
    """Decorator: add ``draw(rng) -> Problem`` to the registry under ``name``."""

    def wrap(draw):
        GENERATORS[name] = Generator(name, kind, draw, check, description=(draw.__doc__ or "").strip(), **options)
        return draw

    return wrap


# ----------------------------------------------------------------------------- shared helpers


def _grid(rng, shape, low=-1.0, high=1.0, decimals=1) -> np.ndarray:
    """Uniform numbers rounded to ``decimals``: what the prompt shows is exactly what was used."""
    values = np.round(rng.uniform(low, high, shape), decimals)
    return values + 0.0  # turn -0.0 into 0.0 so nothing prints as "-0"


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


@register("three_layer_dW2", "matrix", check=_check_dW2)
def three_layer_dW2(rng) -> Problem:
    """dL/dW2 of the reference network on a batch of 2 (sigmoid hidden and output, mean half squared error)."""
    N, n, m, k = 2, 2, 3, 2
    X, T = _grid(rng, (N, n)), rng.integers(0, 2, (N, k)).astype(np.float64)
    W1, b1, W2, b2 = _grid(rng, (m, n)), _grid(rng, m), _grid(rng, (k, m)), _grid(rng, k)
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
    """The same four gradients by autodiff (the key comes from the hand derivation in bp.manual)."""
    W1, b1, W2, b2 = _leaf(v["W1"]), _leaf(v["b1"]), _leaf(v["W2"]), _leaf(v["b2"])
    h = (W1 @ Tensor(v["x"]) + b1).sigmoid()
    h.retain_grad()
    z2 = W2 @ h + b2
    z2.retain_grad()
    y = z2.sigmoid()
    (0.5 * ((y - v["t"]) ** 2).sum()).backward()
    return {"dL/dz2": z2.grad, "dL/dW2": W2.grad, "dL/dh": h.grad, "dL/dW1": W1.grad}


@register("three_layer_chain", "matrix", check=_check_chain, steps=CHAIN_STEPS)
def three_layer_chain(rng) -> Problem:
    """One sample through the reference network, four steps backward, each graded (key from bp.manual)."""
    n, m, k = 2, 3, 2
    x, t = _grid(rng, n), rng.integers(0, 2, k).astype(np.float64)
    W1, b1, W2, b2 = _grid(rng, (m, n)), _grid(rng, m), _grid(rng, (k, m)), _grid(rng, k)
    walk = manual.three_layer(x, t, W1, b1, W2, b2, f="sigmoid", g="sigmoid", loss="half_sse")
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


@register("softmax_ce_grad", "matrix", check=_check_softmax_ce)
def softmax_ce_grad(rng) -> Problem:
    """dL/dZ of the mean cross-entropy of softmax(Z) for N = 2 samples and C = 3 classes."""
    N, C = 2, 3
    Z, targets = _grid(rng, (N, C), -2, 2), rng.integers(0, C, N)
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


@register("sigmoid_derivative", "numeric", check=_check_sigmoid_slope)
def sigmoid_derivative(rng) -> Problem:
    """sigma'(z) at a point z in [-3, 3] on a 0.01 grid."""
    z = float(_grid(rng, (), -3, 3, decimals=2))
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


@register("sgd_momentum_step", "matrix", check=_check_momentum, common_mistakes=False)
def sgd_momentum_step(rng) -> Problem:
    """The weights after two steps of bp.optim.SGD with momentum, from W0 with gradients G1 then G2."""
    W0, G1, G2 = _grid(rng, 3), _grid(rng, 3, -2, 2), _grid(rng, 3, -2, 2)
    lr, momentum = float(rng.choice([0.1, 0.2, 0.5])), float(rng.choice([0.5, 0.9]))
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


@register("output_bias_grad", "matrix", check=_check_output_bias)
def output_bias_grad(rng) -> Problem:
    """dL/db2 for a batch of N = 3 whose output pre-activations Z2 are given (sigmoid output, mean half SSE)."""
    N, k = 3, 2
    Z2, T = _grid(rng, (N, k), -2, 2), rng.integers(0, 2, (N, k)).astype(np.float64)
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
