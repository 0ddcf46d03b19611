"""Notebook 07 (beyond the MLP): the same backprop through convolutions, an autoencoder, a GAN and REINFORCE.

* Convolution. A filter is used at every position, so its gradient is the SUM over positions of
  (upstream gradient there) x (input patch there): :func:`filter_gradient_contributions` keeps the
  terms apart, and they add up exactly to the engine's weight gradient. :func:`digits_cnn` has fewer
  parameters than :func:`digits_mlp` and beats it on digits (:func:`cnn_versus_mlp`).
* An autoencoder: the target is the input itself. An encoder squeezes each 64-pixel digit into a
  short code, a decoder rebuilds it, and the reconstruction error is backpropagated through both:
  nothing but the loss changes from supervised training ("can backprop be used without labels?").
* A GAN on a 2-D Gaussian. The discriminator D tells real points (label 1) from generated ones
  (label 0); its loss reaches D only, because the generated points are detached. The generator G
  wants D to say "real": its loss BCE(D(G(z)), 1) is computed THROUGH D, so the gradient flows
  back through D's layers (not updated in that step: only G's optimizer steps, and D's gradients
  are discarded) into G's weights. That second path answers "how do both losses backpropagate?".
* REINFORCE on a contextual bandit (3 situations, 4 arms, a different best arm in each). The reward
  comes from the world, not from a formula of the weights; the identity
  d/dtheta E[R] = E[(R - b) d/dtheta log pi(a | s)] turns it into the surrogate loss
  -(R - b) log pi(a | s), which ordinary backprop differentiates.

Claims the tests prove on these functions (tests/labs/test_beyond.py, tests/test_conv.py): the
contributions sum to the weight gradient; the CNN beats the MLP on three seeds; the autoencoder's
error falls and carries to unseen digits, its gradient reaching the encoder through the code; the
generator step changes G and leaves D's weights and gradients alone, the discriminator step leaves
G alone, and the generated distribution moves onto the real one; REINFORCE finds each situation's
best arm and its surrogate's gradient equals the reward-weighted score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bpcore import data as datasets
from bpcore import nn
from bpcore.labs import one_blas_thread
from bpcore.nn import functional as F
from bpcore.nn.conv import Conv2d, MaxPool2d, _check_conv, _pad, _pair, _windows
from bpcore.nn.functional import cross_entropy
from bpcore.nn.layers import Flatten, Linear, ReLU, Sequential
from bpcore.optim import Adam
from bpcore.random import manual_seed
from bpcore.tensor import ShapeError, Tensor, no_grad
from bpcore.train import evaluate, fit

# ------------------------------- convolution: parameter sharing, and a CNN against an MLP on digits


def digits_cnn(rng=None):
    """A small CNN for ``bp.data.digits()``: images (N, 1, 8, 8) -> class scores (N, 10).

    (N, 1, 8, 8) -conv 3x3, 16 filters-> (N, 16, 6, 6) -ReLU, max pool 2-> (N, 16, 3, 3)
    -flatten-> (N, 144) -linear-> (N, 10)

    1,610 parameters, fewer than a 64-32-10 MLP (2,410), yet more accurate on digits: each 3x3
    filter is shared by all 36 positions, so it learns a stroke detector from every part of every
    image. (Two conv layers pooled down to 2x2 did worse than the MLP here: 8x8 images are too
    small to halve twice.) Feed it ``X.reshape(-1, 1, 8, 8)``. Returns a ``bp.nn.Sequential``.
    """
    return Sequential(
        Conv2d(1, 16, 3, rng=rng),
        ReLU(),
        MaxPool2d(2),
        Flatten(),
        Linear(16 * 3 * 3, 10, rng=rng),
    )


def filter_gradient_contributions(x, weight, upstream, stride=1, padding=0) -> np.ndarray:
    """Each output position's contribution to dL/dW, kept apart instead of summed.

    Shapes: x (N, C_in, H, W), weight (C_out, C_in, kh, kw), upstream = dL/dy (N, C_out, out_h, out_w)
    -> (out_h, out_w, C_out, C_in, kh, kw), where::

        contributions[i, j, o, c, p, q] = sum_n upstream[n, o, i, j] * x_pad[n, c, i*sh + p, j*sw + q]

    The filter is shared by all positions, so ``contributions.sum(axis=(0, 1))`` is exactly the
    weight's gradient from ``conv2d``: a learner can see which positions drive the update.
    """
    x, weight, upstream = (np.asarray(a.data if isinstance(a, Tensor) else a) for a in (x, weight, upstream))
    stride, padding = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    _check_conv(x, weight, None, padding)
    windows = _windows(_pad(x, padding), weight.shape[2:], stride)
    expected = (x.shape[0], weight.shape[0], *windows.shape[2:4])
    if upstream.shape != expected:
        raise ShapeError(
            f"filter_gradient_contributions: upstream has shape {upstream.shape}, expected {expected} "
            "(N, C_out, out_h, out_w): the shape of conv2d's output for this x, weight, stride and padding"
        )
    return np.einsum("noij,ncijpq->ijocpq", upstream, windows)


def digits_mlp() -> nn.Sequential:
    """64-32-10: more parameters (2,410) than the small CNN (1,610)."""
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


@one_blas_thread
def cnn_versus_mlp(seeds=(0, 1, 2), epochs: int = 15) -> dict[str, list[float]]:
    """Test accuracy on digits of the MLP and the CNN, same data, optimizer (Adam 1e-2), batch and seeds.

    The CNN sees each image as 8x8 pixels and shares one small filter across all positions; the MLP
    sees 64 unrelated numbers.
    """
    d = datasets.digits()
    inputs = {"mlp": (d.X_train, d.X_test), "cnn": (d.X_train.reshape(-1, 1, 8, 8), d.X_test.reshape(-1, 1, 8, 8))}
    makers = {"mlp": digits_mlp, "cnn": digits_cnn}
    accuracy: dict[str, list[float]] = {"mlp": [], "cnn": []}
    for seed in seeds:
        for kind, make in makers.items():
            manual_seed(seed)
            model = make()
            X_train, X_test = inputs[kind]
            fit(
                model,
                cross_entropy,
                Adam(model.parameters(), lr=1e-2),
                X_train,
                d.y_train,
                epochs=epochs,
                batch_size=32,
                seed=seed,
                metric=None,
                progress=False,
            )
            accuracy[kind].append(evaluate(model, cross_entropy, X_test, d.y_test)["accuracy"])
    return accuracy


# ---------------------------------------------------------- an autoencoder: backprop without labels


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


@one_blas_thread
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


# --------------------------------------------- a GAN: two losses, backpropagated through each other


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


@one_blas_thread
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


# ------------------------------------------ REINFORCE: backprop when the loss is not differentiable


ARM_MEANS = np.array(
    [
        [1.0, 0.0, 0.2, 0.1],
        [0.0, 0.3, 1.0, 0.2],
        [0.2, 0.1, 0.0, 1.0],
    ]
)


@dataclass
class BanditRun:
    policy: nn.Module
    mean_reward: list[float] = field(default_factory=list)  # per batch of episodes
    best_arm_probability: list[float] = field(default_factory=list)  # mean over situations


def policy_probabilities(policy: nn.Module) -> np.ndarray:
    """pi(a | s) for every situation s (rows) and arm a (columns)."""
    with no_grad():
        return policy(Tensor(np.eye(ARM_MEANS.shape[0]))).softmax(axis=1).data


@one_blas_thread
def train_reinforce(
    batches: int = 200, batch_size: int = 32, lr: float = 0.05, seed: int = 0, baseline: bool = True
) -> BanditRun:
    """Sample situations, sample arms from the policy, and follow the REINFORCE gradient."""
    manual_seed(seed)
    rng = np.random.default_rng(seed)
    states, arms = ARM_MEANS.shape
    policy = nn.Sequential(nn.Linear(states, 16), nn.Tanh(), nn.Linear(16, arms))
    optimizer = Adam(policy.parameters(), lr=lr)
    run = BanditRun(policy)
    best = ARM_MEANS.argmax(axis=1)
    running_mean = 0.0
    for _ in range(batches):
        s = rng.integers(0, states, size=batch_size)
        log_probs = policy(Tensor(np.eye(states)[s])).log_softmax(axis=1)
        probs = np.exp(log_probs.data)
        a = np.array([rng.choice(arms, p=p) for p in probs])  # act by sampling the policy
        reward = ARM_MEANS[s, a] + rng.standard_normal(batch_size)
        b = running_mean if baseline else 0.0
        advantage = reward - b  # how much better than usual: the only place the reward enters
        optimizer.zero_grad()
        surrogate = -(log_probs[np.arange(batch_size), a] * advantage).mean()
        surrogate.backward()
        optimizer.step()
        running_mean = 0.9 * running_mean + 0.1 * reward.mean()
        run.mean_reward.append(float(reward.mean()))
        run.best_arm_probability.append(float(policy_probabilities(policy)[np.arange(states), best].mean()))
    return run
