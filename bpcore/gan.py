"""A generative adversarial network on a 2-D distribution: two losses, backpropagated through each other.

* The discriminator D learns to tell real points (label 1) from generated ones (label 0). Its loss
  is backpropagated into D only: the generated points are detached, so G is left alone.
* The generator G learns to make D say "real". Its loss, BCE(D(G(z)), 1), is computed THROUGH D:
  the gradient flows back through D's layers (which are not updated in this step: only G's
  optimizer steps, and D's gradients are discarded) into G's weights.

That second path is the interview answer to "how do both models' losses backpropagate?".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcore import nn
from bpcore.nn import functional as F
from bpcore.optim import Adam
from bpcore.random import manual_seed
from bpcore.tensor import Tensor, no_grad

REAL_MEAN = np.array([2.0, -1.0])
REAL_COV = np.array([[1.0, 0.8], [0.8, 1.0]])


def real_samples(n: int, rng: np.random.Generator) -> np.ndarray:
    """The distribution to imitate: a tilted 2-D Gaussian (mean (2, -1), correlation 0.8)."""
    return rng.multivariate_normal(REAL_MEAN, REAL_COV, size=n)


def make_generator(noise_dim: int = 2, hidden: int = 32) -> nn.Module:
    return nn.Sequential(nn.Linear(noise_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 2))


def make_discriminator(hidden: int = 32) -> nn.Module:
    return nn.Sequential(nn.Linear(2, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))  # a logit


@dataclass
class GANRun:
    generator: nn.Module
    discriminator: nn.Module
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    generated: np.ndarray | None = None  # samples from the trained generator
    real: np.ndarray | None = None


def discriminator_step(G, D, optimizer_d, real, noise) -> float:
    optimizer_d.zero_grad()
    with no_grad():
        fake = G(Tensor(noise))  # no graph into G: this step must not change the generator
    logits = D(Tensor(np.concatenate([real, fake.data])))
    labels = np.concatenate([np.ones((len(real), 1)), np.zeros((len(noise), 1))])
    loss = F.binary_cross_entropy_with_logits(logits, labels)
    loss.backward()
    optimizer_d.step()
    return float(loss.item())


def generator_step(G, D, optimizer_g, noise) -> float:
    optimizer_g.zero_grad()
    logits = D(G(Tensor(noise)))  # the graph runs through D ...
    loss = F.binary_cross_entropy_with_logits(logits, np.ones((len(noise), 1)))  # ... asking it to say "real"
    loss.backward()  # gradients reach G's weights through D's (frozen) weights
    optimizer_g.step()
    D.zero_grad()  # D's gradients from this pass are not used
    return float(loss.item())


def train_gan(steps: int = 2000, batch_size: int = 256, noise_dim: int = 2, lr: float = 1e-3, seed: int = 0) -> GANRun:
    """Alternate one discriminator step and one generator step, ``steps`` times."""
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    G, D = make_generator(noise_dim), make_discriminator()
    optimizer_g = Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    optimizer_d = Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    run = GANRun(G, D)
    for _ in range(steps):
        real = real_samples(batch_size, rng)
        run.d_loss.append(discriminator_step(G, D, optimizer_d, real, rng.standard_normal((batch_size, noise_dim))))
        run.g_loss.append(generator_step(G, D, optimizer_g, rng.standard_normal((batch_size, noise_dim))))
    with no_grad():
        run.generated = G(Tensor(rng.standard_normal((2000, noise_dim)))).data
    run.real = real_samples(2000, rng)
    return run
