"""Sequence experiments, ready to run: the adding problem, forecasting, a character model.

Each function trains with the BPTT drivers of :mod:`bpcore.bptt` and returns the numbers a
notebook plots and a test asserts on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcore import bptt, data
from bpcore.nn import RecurrentNet
from bpcore.nn import functional as F
from bpcore.nn.recurrent import init_forget_gate_bias_
from bpcore.optim import Adam
from bpcore.random import manual_seed
from bpcore.tensor import Tensor, no_grad


@dataclass
class SequenceRun:
    model: RecurrentNet
    train_loss: list[float] = field(default_factory=list)
    test_curve: list[float] = field(default_factory=list)  # held-out metric at each checkpoint
    checkpoints: list[int] = field(default_factory=list)  # update numbers of those checkpoints
    baseline: float = float("nan")  # what a model without memory (or a naive rule) scores


def _test_mse(model, X, Y) -> float:
    with no_grad():
        prediction, _ = model(Tensor(X))
    return float(np.mean((prediction.data - Y) ** 2))


def train_adding(
    kind: str = "lstm",
    length: int = 20,
    updates: int = 500,
    hidden: int = 16,
    batch: int = 64,
    lr: float = 1e-2,
    seed: int = 0,
    every: int = 50,
) -> SequenceRun:
    """Train on the adding problem; the baseline is the MSE of always answering 1 (1/6 in theory)."""
    X, Y = data.adding_problem(2000, length, seed=seed)
    X_test, Y_test = data.adding_problem(500, length, seed=seed + 1)
    manual_seed(seed)
    model = RecurrentNet(kind, 2, hidden, 1, last_only=True)
    if kind == "lstm":
        init_forget_gate_bias_(model.rnn, 1.0)
    optimizer = Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    run = SequenceRun(model, baseline=float(np.mean((Y_test - 1.0) ** 2)))
    for update in range(1, updates + 1):
        rows = rng.integers(0, len(X), batch)
        log = bptt.bptt(model, X[rows], Y[rows], F.mse_loss, optimizer, clip_norm=1.0)
        run.train_loss.append(log.loss[-1])
        if update % every == 0:
            run.checkpoints.append(update)
            run.test_curve.append(_test_mse(model, X_test, Y_test))
    return run


def train_forecaster(
    kind: str = "gru", window: int = 24, epochs: int = 30, hidden: int = 16, seed: int = 0, length: int = 600
) -> SequenceRun:
    """One-step-ahead forecasting of the seasonal series from its last ``window`` values.

    The first 80% of the series trains, the rest tests. The baseline is the seasonal naive rule
    (the value one period ago), which already knows the period, so beating it takes learning.
    """
    series = data.seasonal_series(length, period=24, trend=0.0, seed=seed)  # stationary: no extrapolation
    X, Y = data.forecasting_windows(series, window)
    split = int(0.8 * len(X))
    manual_seed(seed)
    model = RecurrentNet(kind, 1, hidden, 1, last_only=True)
    optimizer = Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(seed)
    run = SequenceRun(model, baseline=float(np.mean((X[split:, -24, 0] - Y[split:, 0]) ** 2)))
    for epoch in range(1, epochs + 1):
        for rows in np.array_split(rng.permutation(split), max(1, split // 32)):
            log = bptt.bptt(model, X[rows], Y[rows], F.mse_loss, optimizer, clip_norm=1.0)
            run.train_loss.append(log.loss[-1])
        run.checkpoints.append(epoch)
        run.test_curve.append(_test_mse(model, X[split:], Y[split:]))
    return run


@dataclass
class CharRun:
    model: RecurrentNet
    text: data.CharText
    loss: list[float]
    samples: dict[float, str]  # temperature -> generated text


def train_char_model(
    epochs: int = 5,
    hidden: int = 48,
    seq_len: int = 32,
    batch: int = 16,
    seed: int = 0,
    prompt: str = "MENENIUS:\n",
    sample_length: int = 200,
) -> CharRun:
    """A character-level LSTM trained statefully on the bundled text, then sampled at two temperatures."""
    text = data.char_text()
    manual_seed(seed)
    model = RecurrentNet("lstm", 16, hidden, text.vocab_size, vocab_size=text.vocab_size)
    optimizer = Adam(model.parameters(), lr=1e-2)

    def loss_fn(logits, targets):
        return F.cross_entropy(logits.reshape(-1, text.vocab_size), np.asarray(targets).reshape(-1))

    log = bptt.train_stream(model, text.ids, loss_fn, optimizer, batch, seq_len, epochs=epochs, clip_norm=5.0)
    samples = {t: bptt.sample_chars(model, text, prompt, sample_length, temperature=t, seed=seed) for t in (0.5, 1.0)}
    return CharRun(model, text, log.loss, samples)
