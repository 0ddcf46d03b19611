"""The training variants, named and first-class.

They differ only in how much data one update sees:

* ``"batch"``:      the whole training set per update (one update per epoch; exact gradient)
* ``"stochastic"``: one shuffled sample per update (N updates per epoch; noisiest)
* ``"minibatch"``:  ``batch_size`` shuffled samples per update (ceil(N / B) per epoch; the standard)
* :func:`online`:   a stream consumed once, one update per arrival, no epochs and no revisiting

Every variant runs the same four steps per update: forward, loss, backward, optimizer step.
:class:`History` records what happened, per update and per epoch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from bpcore.bptt import bptt, tbptt, tbptt_chunks, train_stream  # the sequence variants, named here too
from bpcore.nn.module import Module
from bpcore.optim import Optimizer, clip_grad_norm_, grad_norm
from bpcore.progress import progress_bar
from bpcore.tensor import Tensor, no_grad

VARIANTS = ("batch", "stochastic", "minibatch")
__all__ = [
    "History",
    "accuracy",
    "batches",
    "bptt",
    "evaluate",
    "fit",
    "online",
    "tbptt",
    "tbptt_chunks",
    "train_step",
    "train_stream",
]


@dataclass
class History:
    """What a training run did.

    Per update: ``loss``, ``grad_norm`` (global L2 norm before clipping), ``samples_seen``
    (cumulative). Per epoch: a dict per epoch in ``epochs`` (``train_loss`` averaged over the
    epoch's updates, ``train_accuracy``, ``val_loss``, ``val_accuracy`` when available).
    """

    variant: str
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    samples_seen: list[int] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def updates(self) -> int:
        return len(self.loss)

    def epoch_values(self, key: str) -> np.ndarray:
        """One metric across epochs, e.g. ``history.epoch_values("val_accuracy")``."""
        return np.array([e.get(key, np.nan) for e in self.epochs], dtype=float)

    def record_update(self, loss: float, norm: float, batch: int) -> None:
        self.loss.append(loss)
        self.grad_norm.append(norm)
        self.samples_seen.append((self.samples_seen[-1] if self.samples_seen else 0) + batch)

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if k != "epoch")
        return f"History({self.variant}: {self.updates} updates, {len(self.epochs)} epochs; last epoch: {shown})"


def _as_input(X, model: Module) -> np.ndarray:
    """Inputs as an array in the model's dtype (float32 models get float32 data, no silent upcast)."""
    array = np.asarray(X.data if isinstance(X, Tensor) else X)
    params = list(model.parameters())
    if params and np.issubdtype(array.dtype, np.floating):
        array = array.astype(params[0].dtype, copy=False)
    return array


def _targets(y) -> np.ndarray:
    return np.asarray(y.data if isinstance(y, Tensor) else y)


def accuracy(output: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of rows whose largest score is at the target class (or whose sign matches a 0/1 target)."""
    if output.ndim == 2 and output.shape[1] > 1:
        return float(np.mean(output.argmax(axis=1) == targets))
    return float(np.mean((output.reshape(-1) > 0) == (targets.reshape(-1) > 0.5)))


def _default_metric(y: np.ndarray) -> Callable | None:
    return accuracy if np.issubdtype(y.dtype, np.integer) else None


def evaluate(model: Module, loss_fn, X, y, batch_size: int = 1024, metric="auto") -> dict:
    """Loss (mean over samples) and metric on a dataset, in eval mode and without a graph."""
    X, y = _as_input(X, model), _targets(y)
    metric = _default_metric(y) if metric == "auto" else metric
    was_training = model.training
    model.eval()
    total_loss, outputs = 0.0, []
    with no_grad():
        for start in range(0, len(X), batch_size):
            out = model(Tensor(X[start : start + batch_size]))
            total_loss += float(loss_fn(out, y[start : start + batch_size]).item()) * len(out)
            outputs.append(out.data)
    model.train(was_training)
    result = {"loss": total_loss / len(X)}
    if metric is not None:
        result["accuracy"] = metric(np.concatenate(outputs), y)
    return result


def train_step(model: Module, loss_fn, optimizer: Optimizer, xb: np.ndarray, yb, clip: float | None = None):
    """One update: forward, loss, backward, (clip), step. Returns (loss value, gradient norm, output)."""
    optimizer.zero_grad()
    out = model(Tensor(xb))
    loss = loss_fn(out, yb)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = clip_grad_norm_(params, clip) if clip is not None else grad_norm(params)
    optimizer.step()
    return float(loss.data), norm, out.data


def batches(n: int, variant: str, batch_size: int, rng: np.random.Generator, shuffle: bool = True):
    """The index sets of one epoch: the whole set, single samples, or mini-batches."""
    if variant == "batch":
        return [np.arange(n)]
    order = rng.permutation(n) if shuffle else np.arange(n)
    size = 1 if variant == "stochastic" else batch_size
    return [order[i : i + size] for i in range(0, n, size)]


def fit(
    model: Module,
    loss_fn,
    optimizer: Optimizer,
    X,
    y,
    variant: str = "minibatch",
    epochs: int = 10,
    batch_size: int = 32,
    shuffle: bool = True,
    seed: int = 0,
    validation: tuple | None = None,
    early_stopping: int | None = None,
    restore_best: bool = True,
    metric="auto",
    clip_grad_norm: float | None = None,
    scheduler=None,
    progress="auto",
) -> History:
    """Train ``model`` with one of the named variants and return its :class:`History`.

    Args:
        loss_fn: ``loss_fn(output, targets) -> scalar tensor``, e.g. ``F.cross_entropy``.
        X, y: arrays (or tensors) with samples along the first axis.
        variant: "batch", "stochastic" or "minibatch" (see the module docstring).
        validation: optional (X_val, y_val), evaluated after every epoch.
        early_stopping: stop after this many epochs without a better validation loss; with
            ``restore_best`` the best weights return. Without a validation set the epoch's running
            training loss is watched instead, which is measured during the epoch's updates, so the
            restored weights are those at the end of the epoch with the best running loss.
        metric: a function (output array, targets) -> float; "auto" means accuracy for integer
            targets; None for no metric.
        clip_grad_norm: clip the global gradient norm to this value before each step.
        scheduler: a learning-rate schedule stepped once per epoch.
        progress: see :func:`bpcore.progress.progress_bar`.
    """
    if variant not in VARIANTS:
        hint = " (for a stream use bp.train.online)" if variant == "online" else ""
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}{hint}")
    X, y = _as_input(X, model), _targets(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
    if variant == "minibatch" and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    metric = _default_metric(y) if metric == "auto" else metric
    rng = np.random.default_rng(seed)
    history = History(variant)
    best_loss, best_state, stale = math.inf, None, 0
    bar = progress_bar(epochs, f"fit {variant}", progress)
    model.train()
    for epoch in range(1, epochs + 1):
        epoch_loss, epoch_hits, seen = 0.0, 0.0, 0
        for index in batches(len(X), variant, batch_size, rng, shuffle):
            loss, norm, out = train_step(model, loss_fn, optimizer, X[index], y[index], clip_grad_norm)
            history.record_update(loss, norm, len(index))
            epoch_loss += loss * len(index)
            if metric is not None:
                epoch_hits += metric(out, y[index]) * len(index)
            seen += len(index)
        record = {"epoch": epoch, "train_loss": epoch_loss / seen}
        if metric is not None:
            record["train_accuracy"] = epoch_hits / seen
        if validation is not None:
            scores = evaluate(model, loss_fn, *validation, metric=metric)
            record.update({f"val_{k}": v for k, v in scores.items()})
        history.epochs.append(record)
        if scheduler is not None:
            scheduler.step()
        monitored = record.get("val_loss", record["train_loss"])
        if monitored < best_loss:
            best_loss, history.best_epoch, stale = monitored, epoch, 0
            if early_stopping is not None and restore_best:
                best_state = model.state_dict()
        else:
            stale += 1
        bar.update(epoch, f"loss {record['train_loss']:.4f}")
        if early_stopping is not None and stale >= early_stopping:
            history.stopped_early = True
            break
    bar.close()
    if best_state is not None and history.best_epoch != len(history.epochs):
        model.load_state_dict(best_state)
    return history


def online(
    model: Module,
    loss_fn,
    optimizer: Optimizer,
    stream: Iterable,
    clip_grad_norm: float | None = None,
    max_updates: int | None = None,
) -> History:
    """Learn from a stream: each arriving (x, y) is used for one update, then never seen again.

    ``stream`` is any iterable of (x, y) pairs: one sample (x of shape (features,)) or a small
    batch. Nothing is stored and nothing is shuffled: the order of arrival is the order of learning.
    """
    history = History("online")
    model.train()
    if max_updates is not None:  # stop before drawing: an item taken from a stream would be lost
        stream = itertools.islice(stream, max_updates)
    for x, y in stream:
        x, y = _as_input(x, model), _targets(y)
        if x.ndim == 1:  # a single sample: make it a batch of one
            x, y = x[None, :], y.reshape(1, *y.shape)
        loss, norm, _ = train_step(model, loss_fn, optimizer, x, y, clip_grad_norm)
        history.record_update(loss, norm, len(x))
    return history
