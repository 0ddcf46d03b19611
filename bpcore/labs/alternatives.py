"""Notebook 08 (cost and alternatives), the alternatives half: training without backpropagation, measured.

The interview answer: backpropagation gives the exact gradient of the loss with respect to all P
parameters for about the price of two forward passes (see :mod:`bpcore.labs.cost`). Every alternative below
pays more, learns worse, or learns something else:

* Feedback alignment (Lillicrap et al., 2016) keeps the backward pass but sends the output error
  to the hidden layer through a FIXED RANDOM matrix B instead of W2^T. No weight transport is
  needed (biologically more plausible), and it still learns: the forward weights W2 drift into
  alignment with B, so the random feedback becomes a useful direction. Cost: as backprop; the
  hidden-layer update is not the gradient.
* Evolution strategies estimate the gradient from loss values only: try theta +- sigma eps for
  random directions eps and move along the eps whose perturbations did better. Unbiased for the
  gradient of the smoothed loss E[L(theta + sigma eps)], but the variance grows with P: it needs
  many evaluations per step and scales badly to large networks. Random search is its crude cousin:
  keep a random perturbation if it lowers the loss.
* Finite differences compute the gradient one coordinate at a time, 2 loss evaluations per
  parameter per step (central differences): the exact gradient up to O(eps^2), at P times the cost.
* Hebbian learning ("cells that fire together wire together") is local and unsupervised. Oja's
  rule, dw = lr y (x - y w) with y = w . x, is Hebb's lr y x plus a decay that keeps |w| near 1; it
  converges to the first principal component of the data. It learns features, not a task.

Every supervised method here trains the same 2-layer network (x -> tanh(W1 x + b1) -> W2 h + b2,
cross-entropy, PyTorch's layout W1 (H, D), W2 (C, H)) from the same initial weights, for the same
number of updates, with the same optimizer (``bp.optim.SGD``, fed with each method's gradient or
gradient estimate). A :class:`TrainingResult` records the test accuracy, the loss evaluations and
backward passes the method needed (monitoring is not counted), and the wall time.

Claims the tests prove on these numbers (tests/labs/test_alternatives.py): the numpy network and its
manual backprop equal the engine; feedback alignment changes only the hidden update and the loss
still falls; every method trains far above chance; finite differences use exactly 2 evaluations per
parameter per step; Oja's rule converges to the first principal component; backprop is as accurate
as every alternative with far fewer evaluations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bpcore import data as datasets
from bpcore.labs import one_blas_thread
from bpcore.nn import functional as F
from bpcore.nn.layers import Linear, Sequential, Tanh
from bpcore.optim import SGD
from bpcore.progress import progress_bar
from bpcore.tensor import Tensor

# ============================================================================ the shared task and network


@dataclass
class Budget:
    """What every method gets: ``steps`` updates of the same network (``hidden`` tanh units), started
    from the same weights (drawn with ``seed``, which also picks the data split)."""

    steps: int = 300
    hidden: int = 16
    seed: int = 0


@dataclass
class Problem:
    """A classification task with a train/test split, and the seeded initial network for it."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: int
    hidden: int
    seed: int

    def new_model(self) -> Sequential:
        """The network every method starts from: the same initial weights at every call."""
        rng = np.random.default_rng(self.seed)
        return Sequential(
            Linear(self.X_train.shape[1], self.hidden, rng=rng), Tanh(), Linear(self.hidden, self.classes, rng=rng)
        )


def make_problem(task: str = "spirals", budget: Budget | None = None) -> Problem:
    """One of ``bp.data``'s classification sets by name ("spirals", "moons", "xor", "circles", "digits")."""
    budget = budget or Budget()
    loaders = {
        "spirals": datasets.spirals,
        "moons": datasets.moons,
        "xor": datasets.xor,
        "circles": datasets.circles,
        "digits": datasets.digits,
    }
    if task not in loaders:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(loaders)}")
    d = loaders[task](seed=budget.seed)
    return Problem(task, d.X_train, d.y_train, d.X_test, d.y_test, d.classes, budget.hidden, budget.seed)


def weights_of(model: Sequential) -> dict[str, np.ndarray]:
    """The four weight arrays of the 2-layer network, by the names the equations use (views, not copies)."""
    return {"W1": model[0].weight.data, "b1": model[0].bias.data, "W2": model[2].weight.data, "b2": model[2].bias.data}


def forward(w: dict[str, np.ndarray], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain numpy forward pass. X (N, D) -> hidden h (N, H), logits (N, C).

    Weights with leading axes (K networks: W1 (K, H, D), b1 (K, H), ...) give h (K, N, H) and
    logits (K, N, C), each network's numbers exactly those of its own call.
    """
    h = np.tanh(X @ np.swapaxes(w["W1"], -1, -2) + w["b1"][..., None, :])
    return h, h @ np.swapaxes(w["W2"], -1, -2) + w["b2"][..., None, :]


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the integer targets y (N,) under softmax(logits)."""
    return float(cross_entropies(logits, y))


def cross_entropies(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`cross_entropy` of each network's logits (K, N, C) -> (K,); logits (N, C) -> a 0-d array."""
    # the row maximum column by column: exact like logits.max(axis=-1), and much faster over 3 to 10 classes
    top = logits[..., 0]
    for c in range(1, logits.shape[-1]):
        top = np.maximum(top, logits[..., c])
    shifted = logits - top[..., None]
    return np.mean(np.log(np.exp(shifted).sum(axis=-1)) - shifted[..., np.arange(len(y)), y], axis=-1)


def accuracy(w: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(forward(w, X)[1].argmax(axis=1) == y))


class FlatParameters:
    """The model's parameters seen as one vector theta (P,), for methods that only perturb and evaluate."""

    def __init__(self, model: Sequential):
        self.params = list(model.parameters())
        self.names = ["W1", "b1", "W2", "b2"]  # the order of model.parameters() for this network
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.size for p in self.params]

    @property
    def size(self) -> int:
        return sum(self.sizes)

    def get(self) -> np.ndarray:
        return np.concatenate([p.data.reshape(-1) for p in self.params])

    def as_weights(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """theta (P,) -> {"W1": (H, D), ...}, as views into theta; thetas (K, P) -> {"W1": (K, H, D), ...}."""
        parts = np.split(theta, np.cumsum(self.sizes)[:-1], axis=-1)
        lead = theta.shape[:-1]
        return {n: part.reshape(lead + s) for n, part, s in zip(self.names, parts, self.shapes, strict=True)}

    def set_grad(self, flat_grad: np.ndarray) -> None:
        """Hand a gradient (or an estimate of one) to the optimizer through each parameter's .grad."""
        for p, g in zip(self.params, np.split(flat_grad, np.cumsum(self.sizes)[:-1]), strict=True):
            p.grad = g.reshape(p.shape).copy()


class CountedLoss:
    """L(theta) on the training set, counting every evaluation: the currency of derivative-free methods."""

    chunk = 16  # networks per batched forward pass in many(): small enough for the arrays to stay in cache

    def __init__(self, problem: Problem, flat: FlatParameters):
        self.problem, self.flat, self.evaluations = problem, flat, 0

    def __call__(self, theta: np.ndarray) -> float:
        self.evaluations += 1
        _, logits = forward(self.flat.as_weights(theta), self.problem.X_train)
        return cross_entropy(logits, self.problem.y_train)

    def many(self, thetas: np.ndarray) -> np.ndarray:
        """L at each row of thetas (K, P): K evaluations, each a full forward pass and bitwise the value
        of ``self(theta)``, run ``chunk`` networks at a time so numpy loops in C instead of Python.

        Networks of a chunk that share their first layer (W1, b1; as the finite-difference probes of
        W2 and b2 do) share its output too: h is computed once, for the first of them, and broadcast
        against each one's second layer. Each network's h is then the same numbers it would compute
        itself (the same product, tanh and sum on the same values), so the losses stay bitwise the same.
        """
        self.evaluations += len(thetas)
        first_layer = self.flat.sizes[0] + self.flat.sizes[1]  # theta holds W1, b1 first
        losses = []
        for start in range(0, len(thetas), self.chunk):
            chunk = thetas[start : start + self.chunk]
            if len(chunk) > 1 and (chunk[1:, :first_layer] == chunk[0, :first_layer]).all():
                w = self.flat.as_weights(chunk)
                h = np.tanh(self.problem.X_train @ np.swapaxes(w["W1"][:1], -1, -2) + w["b1"][:1, None, :])
                logits = h @ np.swapaxes(w["W2"], -1, -2) + w["b2"][..., None, :]
            else:
                _, logits = forward(self.flat.as_weights(chunk), self.problem.X_train)
            losses.append(cross_entropies(logits, self.problem.y_train))
        return np.concatenate(losses) if losses else np.empty(0)


def losses_at(loss: Callable, thetas: np.ndarray) -> np.ndarray:
    """loss at each row of thetas (K, P): through ``loss.many`` when it has one (:class:`CountedLoss`),
    otherwise one call per row. Either way K evaluations."""
    many = getattr(loss, "many", None)
    return many(thetas) if many is not None else np.array([loss(theta) for theta in thetas])


@dataclass
class TrainingResult:
    """One method's run. ``loss_evaluations`` and ``backward_passes`` are what the algorithm needed;
    the monitoring that fills ``train_loss_curve`` (one loss per step) is not counted."""

    method: str
    test_accuracy: float
    train_loss: float
    loss_evaluations: int
    backward_passes: int
    seconds: float
    train_loss_curve: np.ndarray
    extra: dict = field(default_factory=dict)

    @property
    def forward_pass_equivalents(self) -> int:
        """Work in forward-pass units, counting a backward pass as 2 (see cost.py)."""
        return self.loss_evaluations + 2 * self.backward_passes


def _result(method, problem, model, curve, evaluations, backwards, seconds, **extra) -> TrainingResult:
    w = weights_of(model)
    final_loss = cross_entropy(forward(w, problem.X_train)[1], problem.y_train)
    test = accuracy(w, problem.X_test, problem.y_test)
    return TrainingResult(method, test, final_loss, evaluations, backwards, seconds, np.array(curve), extra)


# ============================================================================ backprop (the reference)


def backprop(problem: Problem, budget: Budget, lr: float = 1.0, momentum: float = 0.9) -> TrainingResult:
    """Full-batch SGD with the engine: one forward and one backward pass per step."""
    model = problem.new_model()
    optimizer = SGD(model.parameters(), lr=lr, momentum=momentum)
    X, curve = Tensor(problem.X_train), []
    start = time.perf_counter()
    for _ in range(budget.steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(X), problem.y_train)
        loss.backward()
        optimizer.step()
        curve.append(loss.item())
    seconds = time.perf_counter() - start
    return _result("backprop", problem, model, curve, budget.steps, budget.steps, seconds)


# ============================================================================ (a) feedback alignment


def manual_gradients(w: dict, X: np.ndarray, y: np.ndarray, feedback: np.ndarray | None = None):
    """Forward and backward by hand. ``feedback=None`` is backprop; a fixed matrix B (C, H) is feedback alignment.

        delta_output = dL/dz2 = (softmax(z2) - onehot(y)) / N          (N, C)
        dW2 = delta_output^T h,  db2 = sum_n delta_output               exact in both methods
        delta_hidden = (delta_output @ M) * (1 - h^2)                   (N, H)
            backprop:            M = W2   (the transpose of the forward map h -> W2 h)
            feedback alignment:  M = B    (fixed and random: no weight transport)
        dW1 = delta_hidden^T x,  db1 = sum_n delta_hidden

    Returns (loss, grads by name, delta_hidden).
    """
    h, logits = forward(w, X)
    delta_output = softmax(logits)
    delta_output[np.arange(len(y)), y] -= 1
    delta_output /= len(y)
    send_back = w["W2"] if feedback is None else feedback
    delta_hidden = (delta_output @ send_back) * (1 - h * h)
    grads = {
        "W1": delta_hidden.T @ X,
        "b1": delta_hidden.sum(axis=0),
        "W2": delta_output.T @ h,
        "b2": delta_output.sum(axis=0),
    }
    return cross_entropy(logits, y), grads, delta_hidden


def _angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    cosine = np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-300)
    return float(np.degrees(np.arccos(np.clip(cosine, -1, 1))))


def feedback_alignment(problem: Problem, budget: Budget, lr: float = 1.0, momentum: float = 0.9) -> TrainingResult:
    """Train with a fixed random feedback matrix B in place of W2 in the backward pass.

    B is drawn once, from the same distribution as W2's initial weights. ``extra["alignment_degrees"]``
    records, per step, the angle between the hidden-layer update FA uses and the one backprop would
    use (computed alongside for the record, never used): below 90 degrees it still points downhill.
    """
    model = problem.new_model()
    optimizer = SGD(model.parameters(), lr=lr, momentum=momentum)
    bound = 1 / math.sqrt(problem.hidden)
    B = np.random.default_rng(problem.seed + 1).uniform(-bound, bound, size=(problem.classes, problem.hidden))
    layers = {"W1": model[0].weight, "b1": model[0].bias, "W2": model[2].weight, "b2": model[2].bias}
    curve, angles, monitoring = [], [], 0.0
    start = time.perf_counter()
    for _ in range(budget.steps):
        w = weights_of(model)
        loss, grads, delta_hidden = manual_gradients(w, problem.X_train, problem.y_train, feedback=B)
        tick = time.perf_counter()  # the true hidden delta is for the record only: its time is not charged
        _, _, true_delta_hidden = manual_gradients(w, problem.X_train, problem.y_train)
        angles.append(_angle_degrees(delta_hidden, true_delta_hidden))
        monitoring += time.perf_counter() - tick
        for name, p in layers.items():
            p.grad = grads[name]
        optimizer.step()
        curve.append(loss)
    seconds = time.perf_counter() - start - monitoring
    return _result(
        "feedback alignment",
        problem,
        model,
        curve,
        budget.steps,
        budget.steps,
        seconds,
        alignment_degrees=np.array(angles),
        feedback=B,
    )


# ============================================================================ (b) evolution strategies, random search


def centred_ranks(values: np.ndarray) -> np.ndarray:
    """Fitness shaping: replace values by their ranks scaled to [-0.5, 0.5] (robust to outliers and to scale)."""
    ranks = np.empty(len(values))
    ranks[np.argsort(values)] = np.arange(len(values))
    return ranks / max(len(values) - 1, 1) - 0.5


def es_gradient(loss: Callable, theta: np.ndarray, sigma: float, pairs: int, rng, rank_shaping: bool = False):
    """Antithetic estimate of the gradient of the smoothed loss E[L(theta + sigma eps)], eps ~ N(0, I):

        g = 1 / (2 sigma n) sum_i (L(theta + sigma eps_i) - L(theta - sigma eps_i)) eps_i

    2 * pairs loss evaluations. The pair shares one eps, so constant and even parts of L cancel
    (lower variance than one-sided samples). For a Gaussian with fixed sigma this is also the
    natural gradient of expected fitness (-L) for the mean, up to the factor sigma^2 (Fisher = I / sigma^2).
    ``rank_shaping`` uses centred ranks of the 2n losses instead of their values (OpenAI-ES).
    """
    eps = rng.standard_normal((pairs, theta.size))
    up = losses_at(loss, theta + sigma * eps)
    down = losses_at(loss, theta - sigma * eps)
    if rank_shaping:
        shaped = centred_ranks(np.concatenate([up, down]))
        up, down = shaped[:pairs], shaped[pairs:]
    return ((up - down) @ eps) / (2 * sigma * pairs)


def evolution_strategies(
    problem: Problem,
    budget: Budget,
    population: int = 40,
    sigma: float = 0.05,
    lr: float = 0.5,
    momentum: float = 0.9,
    rank_shaping: bool = False,
) -> TrainingResult:
    """ES: each step, ``population`` evaluations (population / 2 antithetic pairs) estimate the gradient,
    and the same SGD as backprop takes the step (fitness = -loss, so descending L ascends fitness).

    Why lr 0.5 and not backprop's 1.0: the estimate is right on average but noisy, its norm about
    sqrt(P / pairs) times the gradient's, and lr 1.0 diverged on some seeds. With ``rank_shaping``
    the estimate is in rank units, not loss units: use lr ~ 0.02.
    """
    model = problem.new_model()
    flat = FlatParameters(model)
    loss = CountedLoss(problem, flat)
    optimizer = SGD(model.parameters(), lr=lr, momentum=momentum)
    rng = np.random.default_rng(problem.seed + 2)
    curve, monitoring = [], 0.0
    start = time.perf_counter()
    for _ in range(budget.steps):
        theta = flat.get()
        flat.set_grad(es_gradient(loss, theta, sigma, population // 2, rng, rank_shaping))
        tick = time.perf_counter()
        curve.append(cross_entropy(forward(weights_of(model), problem.X_train)[1], problem.y_train))
        monitoring += time.perf_counter() - tick
        optimizer.step()
    seconds = time.perf_counter() - start - monitoring
    return _result("evolution strategies", problem, model, curve, loss.evaluations, 0, seconds)


def random_search(problem: Problem, budget: Budget, candidates: int = 10, sigma: float = 0.05) -> TrainingResult:
    """Each step, try ``candidates`` random perturbations theta + sigma eps; keep the best if it lowers the loss.

    No gradient, not even an estimate: only comparisons. 1 + steps * candidates evaluations.
    """
    model = problem.new_model()
    flat = FlatParameters(model)
    loss = CountedLoss(problem, flat)
    rng = np.random.default_rng(problem.seed + 3)
    theta = flat.get()
    best = loss(theta)
    curve = []
    start = time.perf_counter()
    for _ in range(budget.steps):
        curve.append(best)  # the loss of the kept point is known: monitoring is free here
        trials = theta + sigma * rng.standard_normal((candidates, theta.size))
        losses = losses_at(loss, trials)
        winner = int(np.argmin(losses))
        if losses[winner] < best:
            theta, best = trials[winner], float(losses[winner])
    seconds = time.perf_counter() - start
    for p, value in zip(flat.params, flat.as_weights(theta).values(), strict=True):
        p.data[...] = value
    return _result("random search", problem, model, curve, loss.evaluations, 0, seconds)


# ============================================================================ (d) finite differences


def finite_difference_gradient(loss: Callable, theta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Central differences, one parameter at a time: exactly 2 * theta.size loss evaluations.

    dL/dtheta_i ~ (L(theta + eps e_i) - L(theta - eps e_i)) / (2 eps), error O(eps^2) plus rounding
    O(machine eps / eps) (see gradcheck.py for the trade-off).
    """
    # row 2i is theta + eps e_i, row 2i + 1 is theta - eps e_i
    probes = np.repeat(theta[None, :], 2 * theta.size, axis=0)
    index = np.arange(theta.size)
    probes[2 * index, index] = theta + eps
    probes[2 * index + 1, index] = theta - eps
    losses = losses_at(loss, probes)
    up, down = losses[0::2], losses[1::2]
    return (up - down) / (2 * eps)


def finite_differences(problem: Problem, budget: Budget, lr: float = 1.0, momentum: float = 0.9, eps: float = 1e-5):
    """Gradient descent with a numerical gradient: the same trajectory as backprop, at 2P evaluations per step."""
    model = problem.new_model()
    flat = FlatParameters(model)
    loss = CountedLoss(problem, flat)
    optimizer = SGD(model.parameters(), lr=lr, momentum=momentum)
    curve, monitoring = [], 0.0
    start = time.perf_counter()
    for _ in range(budget.steps):
        flat.set_grad(finite_difference_gradient(loss, flat.get(), eps))
        tick = time.perf_counter()
        curve.append(cross_entropy(forward(weights_of(model), problem.X_train)[1], problem.y_train))
        monitoring += time.perf_counter() - tick
        optimizer.step()
    seconds = time.perf_counter() - start - monitoring
    return _result("finite differences", problem, model, curve, loss.evaluations, 0, seconds)


# ============================================================================ (c) Hebbian learning: Oja's rule


@dataclass
class OjaResult:
    """The learned unit vector, the top principal direction, and |cos| between them after each epoch."""

    weight: np.ndarray
    top_component: np.ndarray
    cosine_by_epoch: np.ndarray

    @property
    def cosine(self) -> float:
        return float(self.cosine_by_epoch[-1])


def top_principal_component(X: np.ndarray) -> np.ndarray:
    """The unit eigenvector of the covariance of X (N, D) with the largest eigenvalue."""
    centred = X - X.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred / len(X))
    return vectors[:, -1]


def oja(X: np.ndarray, lr: float = 0.005, epochs: int = 10, seed: int = 0) -> OjaResult:
    """Oja's rule on the rows of X (N, D), one sample at a time, with step lr / sqrt(1 + epoch):

        y = w . x;   w <- w + lr y (x - y w)

    The Hebbian term lr y x strengthens w along inputs that make it respond; alone it grows without
    bound. The decay -lr y^2 w normalises: at a fixed point E[y x] = E[y^2] w, i.e. C w = (w^T C w) w,
    so w is a unit eigenvector of the covariance C, and only the top one is stable. No labels, no loss.
    """
    rng = np.random.default_rng(seed)
    centred = X - X.mean(axis=0)  # Oja finds eigenvectors of E[x x^T]: centring makes that the covariance
    top = top_principal_component(X)
    w = rng.standard_normal(X.shape[1])
    w /= np.linalg.norm(w)
    cosines = []
    for epoch in range(epochs):
        step = lr / np.sqrt(
            1 + epoch
        )  # a decaying step lets the sampling noise die out (with a constant one, w jitters)
        for x in centred[rng.permutation(len(centred))]:
            y = w @ x
            w += step * y * (x - y * w)
        cosines.append(abs(w @ top) / np.linalg.norm(w))  # the sign of an eigenvector is arbitrary
    return OjaResult(w, top, np.array(cosines))


def anisotropic_gaussian(n: int = 2000, variances=(5.0, 2.0, 1.0, 0.5, 0.2), seed: int = 0) -> np.ndarray:
    """Samples (n, D) of a Gaussian whose covariance has the given eigenvalues along random directions."""
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.standard_normal((len(variances), len(variances))))
    return (rng.standard_normal((n, len(variances))) * np.sqrt(variances)) @ rotation.T + rng.standard_normal(
        len(variances)
    )


# ============================================================================ all of them, one table

METHODS: dict[str, Callable[[Problem, Budget], TrainingResult]] = {
    "backprop": backprop,
    "feedback alignment": feedback_alignment,
    "evolution strategies": evolution_strategies,
    "random search": random_search,
    "finite differences": finite_differences,
}


@one_blas_thread
def compare_all(
    task: str = "spirals", budget: Budget | None = None, methods=None, progress="auto"
) -> list[TrainingResult]:
    """Run backprop and each alternative on the same task, network, initial weights and number of steps.

    The default (spirals, 16 hidden units, P = 99 parameters, 300 steps) takes seconds, most of them in
    finite differences: 2P evaluations per step. On "digits" (P = 1,210) that becomes 726,000
    evaluations; leave it out with ``methods=[...]`` (names as in :data:`METHODS`). ``progress``: a bar
    over the methods (see :func:`bpcore.progress.progress_bar`).
    """
    budget = budget or Budget()
    problem = make_problem(task, budget)
    names = list(methods or METHODS)
    bar = progress_bar(len(names), f"methods on {task}", progress)
    results = []
    for done, name in enumerate(names):
        bar.update(done, name)
        results.append(METHODS[name](problem, budget))
    bar.update(len(names), "done")
    bar.close()
    return results


def format_results(results: list[TrainingResult]) -> str:
    """One row per method: accuracy, final training loss, what was evaluated, wall time."""
    header = [("test acc", 9), ("train loss", 12), ("loss evals", 12), ("backwards", 11)]
    header += [("fwd-equiv", 11), ("seconds", 9)]
    lines = [f"{'method':<22}" + "".join(f"{title:>{width}}" for title, width in header)]
    for r in results:
        lines.append(
            f"{r.method:<22}{r.test_accuracy:>9.3f}{r.train_loss:>12.4f}{r.loss_evaluations:>12,}"
            f"{r.backward_passes:>11,}{r.forward_pass_equivalents:>11,}{r.seconds:>9.2f}"
        )
    return "\n".join(lines)


__all__ = [
    "METHODS",
    "Budget",
    "CountedLoss",
    "FlatParameters",
    "OjaResult",
    "Problem",
    "TrainingResult",
    "anisotropic_gaussian",
    "backprop",
    "centred_ranks",
    "compare_all",
    "cross_entropies",
    "es_gradient",
    "evolution_strategies",
    "feedback_alignment",
    "finite_difference_gradient",
    "finite_differences",
    "format_results",
    "losses_at",
    "make_problem",
    "manual_gradients",
    "oja",
    "random_search",
    "top_principal_component",
]
