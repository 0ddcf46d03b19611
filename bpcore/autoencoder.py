"""An autoencoder: backpropagation without labels.

The target is the input itself. An encoder squeezes each 64-pixel digit into a short code, a
decoder rebuilds the image from it, and the reconstruction error is backpropagated through both:
the decoder's gradient flows on, through the code, into the encoder. Nothing but the loss changes
from supervised training, which is the point of the interview question "can backprop be used
without labels?".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcore import nn
from bpcore.nn import functional as F
from bpcore.optim import Adam
from bpcore.random import manual_seed
from bpcore.tensor import Tensor, no_grad


class Autoencoder(nn.Module):
    """x (N, n_in) -> code (N, code_size) -> reconstruction (N, n_in), pixels squashed into (0, 1)."""

    def __init__(self, n_in: int = 64, hidden: int = 32, code_size: int = 8):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, code_size))
        self.decoder = nn.Sequential(nn.Linear(code_size, hidden), nn.ReLU(), nn.Linear(hidden, n_in), nn.Sigmoid())

    def forward(self, x):
        return self.decoder(self.encoder(x))


@dataclass
class AutoencoderRun:
    model: Autoencoder
    train_loss: list[float] = field(default_factory=list)  # mean reconstruction error per epoch
    test_loss: list[float] = field(default_factory=list)
    originals: np.ndarray | None = None  # a few test images
    reconstructions: np.ndarray | None = None  # and what the trained model makes of them


def reconstruction_error(model: Autoencoder, X: np.ndarray) -> float:
    with no_grad():
        return float(F.mse_loss(model(Tensor(X)), X).item())


def train_autoencoder(
    data,
    code_size: int = 8,
    hidden: int = 32,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    n_show: int = 8,
) -> AutoencoderRun:
    """Train on ``data.X_train`` (targets = inputs) and record the reconstruction error per epoch."""
    manual_seed(seed)
    model = Autoencoder(data.X_train.shape[1], hidden, code_size)
    optimizer = Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    run = AutoencoderRun(model)
    run.train_loss.append(reconstruction_error(model, data.X_train))
    run.test_loss.append(reconstruction_error(model, data.X_test))
    for _ in range(epochs):
        order = rng.permutation(len(data.X_train))
        for start in range(0, len(order), batch_size):
            batch = data.X_train[order[start : start + batch_size]]
            optimizer.zero_grad()
            F.mse_loss(model(Tensor(batch)), batch).backward()  # the input is its own target
            optimizer.step()
        run.train_loss.append(reconstruction_error(model, data.X_train))
        run.test_loss.append(reconstruction_error(model, data.X_test))
    run.originals = data.X_test[:n_show]
    with no_grad():
        run.reconstructions = model(Tensor(run.originals)).data
    return run
