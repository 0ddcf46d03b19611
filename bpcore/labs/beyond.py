"""Notebook 07 (beyond the MLP): the same backprop through convolutions, an autoencoder, a GAN, REINFORCE, a VAE.

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
* A VAE on digits with a 2-D latent space. The gradient of E_{z ~ q}[f(z)] through the sample, two
  ways on the same noise: reparameterised (z = mu + sigma eps, backprop through z) and score function
  (f(z) d log q(z), REINFORCE's identity); both unbiased, the first here with far lower variance. The KL
  term's gradient has a closed form (mu, and 0.5 (exp(logvar) - 1)) that the engine's backward matches.

Claims the tests prove on these functions (tests/labs/test_beyond.py, tests/test_conv.py): the
contributions sum to the weight gradient; the CNN beats the MLP on three seeds; the autoencoder's
error falls and carries to unseen digits, its gradient reaching the encoder through the code; the
generator step changes G and leaves D's weights and gradients alone, the discriminator step leaves
G alone, and the generated distribution moves onto the real one; REINFORCE finds each situation's
best arm and its surrogate's gradient equals the reward-weighted score; the VAE's two estimators agree
with each other and with the exact gradient within 4 standard errors, the score function's variance is
over 30x (d/dmu) and 10x (d/dlogvar) the reparameterised one's and that ratio grows as sigma shrinks
(for a fast-oscillating f it falls below 1), the KL gradient equals its closed form to 1e-12, the
negative ELBO falls and its reconstruction term stays above the grey pixels' entropy, and the codes sit
on the prior and group by class.
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
from bpcore.progress import progress_bar
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


def discriminator_step(G, D, optimizer_d, real, noise, update=None) -> float:
    """One discriminator update on ``real`` points and G's points from ``noise``: the generated points are
    computed without a graph, so this step cannot change the generator. ``update`` is
    :func:`discriminator_update` or a compiled copy of it (``bp.compile``, as :func:`train_gan` uses)."""
    with no_grad():
        fake = G(Tensor(noise))  # no graph into G: this step must not change the generator
    points = np.concatenate([real, fake.data])
    labels = np.concatenate([np.ones((len(real), 1)), np.zeros((len(noise), 1))])
    return (update or discriminator_update)(D, optimizer_d, points, labels)


def discriminator_update(D, optimizer_d, points, labels) -> float:
    """D's half of :func:`discriminator_step`: BCE of D(points) against labels (1 real, 0 generated), one step."""
    optimizer_d.zero_grad()
    loss = F.binary_cross_entropy_with_logits(D(Tensor(points)), labels)
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
    """Alternate one discriminator step and one generator step, ``steps`` times.

    Both updates are replayed by ``bp.compile`` (the same VJPs on raw arrays, bitwise the eager steps'
    numbers; tests/labs/test_beyond.py compares them): the 2,000 steps take about a third less time.
    """
    from bpcore.compile import compile

    manual_seed(seed)
    rng = np.random.default_rng(seed)
    G, D = make_generator(noise_dim), make_discriminator()
    optimizer_g = Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    optimizer_d = Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    run = GANRun(G, D)
    d_update, g_step = compile(discriminator_update), compile(generator_step)
    for _ in range(steps):
        real = real_samples(batch_size, rng)
        noise = rng.standard_normal((batch_size, noise_dim))
        run.d_loss.append(discriminator_step(G, D, optimizer_d, real, noise, update=d_update))
        run.g_loss.append(g_step(G, D, optimizer_g, rng.standard_normal((batch_size, noise_dim))))
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


# ------------------------------------------ a VAE: a gradient through a random sample, two ways


def kl_to_standard_normal(mu, logvar):
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per row: 0.5 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j).

    Shapes: mu, logvar (N, latent) Tensors -> (N,). Its gradient has a closed form, d/dmu = mu and
    d/dlogvar = 0.5 (exp(logvar) - 1), which :func:`kl_gradient_check` compares with the engine's backward.
    """
    return (0.5 * (mu**2 + logvar.exp() - 1.0 - logvar)).sum(axis=1)


@dataclass
class KLGradientCheck:
    mu: np.ndarray
    logvar: np.ndarray
    engine: dict[str, np.ndarray]  # the engine's backward of kl.sum(), per input
    closed_form: dict[str, np.ndarray]  # mu and 0.5 (exp(logvar) - 1)

    def max_difference(self) -> float:
        return max(float(np.max(np.abs(self.engine[k] - self.closed_form[k]))) for k in self.engine)


def kl_gradient_check(mu: np.ndarray, logvar: np.ndarray) -> KLGradientCheck:
    """The KL term's gradient by the engine's backward and by the closed form, for the same (N, latent) inputs."""
    mu_t, logvar_t = Tensor(mu, requires_grad=True), Tensor(logvar, requires_grad=True)
    kl_to_standard_normal(mu_t, logvar_t).sum().backward()
    closed = {"mu": np.array(mu, dtype=np.float64), "logvar": 0.5 * (np.exp(logvar) - 1.0)}
    return KLGradientCheck(mu, logvar, {"mu": mu_t.grad, "logvar": logvar_t.grad}, closed)


def quadratic_f(z, target: float = 0.0):
    """f(z) = (z - target)^2, on a Tensor or an array: E_{z ~ N(mu, sigma^2)}[f] = (mu - target)^2 + sigma^2."""
    return (z - target) ** 2


def exact_quadratic_gradient(mu: float, logvar: float, target: float = 0.0) -> dict[str, float]:
    """d/dmu and d/dlogvar of (mu - target)^2 + exp(logvar): 2 (mu - target) and exp(logvar)."""
    return {"mu": 2.0 * (mu - target), "logvar": float(np.exp(logvar))}


def reparameterised_samples(f, mu: float, logvar: float, eps: np.ndarray) -> dict[str, np.ndarray]:
    """One gradient estimate of d/d(mu, logvar) E_q[f(z)] per noise sample, by backprop through z = mu + sigma eps.

    Each sample gets its own copy of mu and logvar (leaves of shape (S,)), so the engine's gradient
    entry i is sample i's estimate: df/dz * 1 for mu, and df/dz * 0.5 sigma eps for logvar.
    """
    eps = np.asarray(eps, dtype=np.float64)
    mu_t = Tensor(np.full(eps.shape, float(mu)), requires_grad=True)
    logvar_t = Tensor(np.full(eps.shape, float(logvar)), requires_grad=True)
    z = mu_t + (0.5 * logvar_t).exp() * eps
    f(z).sum().backward()
    return {"mu": mu_t.grad, "logvar": logvar_t.grad}


def score_function_samples(f, mu: float, logvar: float, eps: np.ndarray) -> dict[str, np.ndarray]:
    """The same gradient by REINFORCE: f(z) d/d(mu, logvar) log q(z), with z sampled and f never differentiated.

    z = mu + sigma eps is drawn from the same noise, then held constant; the engine differentiates only
    log q(z) = -0.5 log(2 pi) - 0.5 logvar - 0.5 (z - mu)^2 / exp(logvar), weighted by the value f(z).
    """
    eps = np.asarray(eps, dtype=np.float64)
    z = float(mu) + np.exp(0.5 * float(logvar)) * eps  # a plain array: no path from f back to mu
    f_value = np.asarray(f(Tensor(z)).data)
    mu_t = Tensor(np.full(eps.shape, float(mu)), requires_grad=True)
    logvar_t = Tensor(np.full(eps.shape, float(logvar)), requires_grad=True)
    log_q = -0.5 * np.log(2 * np.pi) - 0.5 * logvar_t - 0.5 * (z - mu_t) ** 2 / logvar_t.exp()
    (log_q * f_value).sum().backward()
    return {"mu": mu_t.grad, "logvar": logvar_t.grad}


@dataclass
class EstimatorComparison:
    """Per-sample estimates of the same gradient; means, variances and standard errors by parameter."""

    samples: dict[str, dict[str, np.ndarray]]  # estimator -> parameter -> (S,) estimates
    exact: dict[str, float] | None = None

    def mean(self, estimator: str, parameter: str) -> float:
        return float(np.mean(self.samples[estimator][parameter]))

    def variance(self, estimator: str, parameter: str) -> float:
        return float(np.var(self.samples[estimator][parameter], ddof=1))

    def standard_error(self, estimator: str, parameter: str) -> float:
        return float(np.sqrt(self.variance(estimator, parameter) / len(self.samples[estimator][parameter])))

    def variance_ratio(self, parameter: str) -> float:
        """Score-function variance over reparameterised variance: how many more samples REINFORCE needs."""
        return self.variance("score function", parameter) / self.variance("reparameterised", parameter)

    def table(self) -> str:
        rows = [f"{'':16}{'parameter':>10}{'mean':>10}{'std err':>10}{'variance':>11}"]
        for estimator, by_parameter in self.samples.items():
            for p in by_parameter:
                rows.append(
                    f"{estimator:16}{p:>10}{self.mean(estimator, p):>10.3f}{self.standard_error(estimator, p):>10.3f}"
                    f"{self.variance(estimator, p):>11.3g}"
                )
        if self.exact:
            rows.append("exact gradient: " + ", ".join(f"d/d{p} = {v:.3f}" for p, v in self.exact.items()))
        return "\n".join(rows)


@one_blas_thread
def compare_estimators(
    f=quadratic_f,
    mu: float = 1.5,
    logvar: float = float(np.log(0.25)),
    samples: int = 10_000,
    seed: int = 0,
    exact: dict[str, float] | None = None,
) -> EstimatorComparison:
    """Both estimators of d/d(mu, logvar) E_{z ~ N(mu, exp(logvar))}[f(z)] on the SAME ``samples`` noise draws.

    With the default quadratic f the exact gradient is known (:func:`exact_quadratic_gradient`).
    """
    eps = np.random.default_rng(seed).standard_normal(samples)
    if exact is None and f is quadratic_f:
        exact = exact_quadratic_gradient(mu, logvar)
    return EstimatorComparison(
        {
            "reparameterised": reparameterised_samples(f, mu, logvar, eps),
            "score function": score_function_samples(f, mu, logvar, eps),
        },
        exact,
    )


@one_blas_thread
def estimators_by_sigma(
    sigmas=(1.0, 0.5, 0.25, 0.1), mu: float = 1.5, samples: int = 10_000, seed: int = 0
) -> dict[float, EstimatorComparison]:
    """sigma -> :func:`compare_estimators` for the quadratic f at that sigma (same mu, same noise draws).

    For f(z) = z^2 the variances have closed forms, to leading order as sigma shrinks:
    d/dmu: score function ~ mu^4 / sigma^2 (the score eps / sigma blows up, f(z) stays near mu^2), reparameterised
    exactly 4 sigma^2, ratio ~ mu^4 / (4 sigma^4). d/dlogvar: the score 0.5 (eps^2 - 1) does not depend on sigma,
    so the score function's variance falls towards mu^4 / 2, while the reparameterised one ~ mu^2 sigma^2 falls
    faster: ratio ~ mu^2 / (2 sigma^2).
    """
    return {
        float(sigma): compare_estimators(mu=mu, logvar=float(2 * np.log(sigma)), samples=samples, seed=seed)
        for sigma in sigmas
    }


def variance_ratio_by_sigma(
    sigmas=(1.0, 0.5, 0.25, 0.1), mu: float = 1.5, samples: int = 10_000, seed: int = 0
) -> dict[float, dict[str, float]]:
    """sigma -> {parameter: score-function variance / reparameterised variance} for the quadratic f
    (see :func:`estimators_by_sigma` for why both ratios grow as sigma shrinks)."""
    return {
        sigma: {p: comparison.variance_ratio(p) for p in ("mu", "logvar")}
        for sigma, comparison in estimators_by_sigma(sigmas, mu, samples, seed).items()
    }


class VAE(nn.Module):
    """x (N, n_in) -> (mu, logvar) (N, latent) -> z = mu + exp(logvar / 2) eps -> pixel logits (N, n_in).

    The encoder is one hidden ReLU layer with two heads (mu and logvar); the decoder mirrors it. Pixels
    are in [0, 1], so the reconstruction term is binary cross-entropy on the decoder's logits.
    """

    def __init__(self, n_in: int = 64, hidden: int = 64, latent: int = 2, rng=None):
        super().__init__()
        self.latent = latent
        self.hidden = nn.Linear(n_in, hidden, rng=rng)
        self.to_mu = nn.Linear(hidden, latent, rng=rng)
        self.to_logvar = nn.Linear(hidden, latent, rng=rng)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden, rng=rng), nn.ReLU(), nn.Linear(hidden, n_in, rng=rng))

    def encode(self, x):
        h = self.hidden(x).relu()
        return self.to_mu(h), self.to_logvar(h)

    def forward(self, x, eps):
        """Pixel logits, mu and logvar for inputs x (N, n_in) and noise eps (N, latent)."""
        mu, logvar = self.encode(x)
        z = mu + (0.5 * logvar).exp() * eps  # reparameterised: the noise is an input, mu and sigma get gradients
        return self.decoder(z), mu, logvar


def negative_elbo(model: VAE, x: np.ndarray, eps: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
    """-ELBO per digit, averaged over the batch, and its two terms: (loss, reconstruction, KL), each a Tensor.

    reconstruction = sum over pixels of BCE(decoder(z), x); KL = :func:`kl_to_standard_normal`.
    For binary pixels -reconstruction is the Bernoulli log-likelihood log p(x | z) and the ELBO a lower
    bound on log p(x). These digits have grey levels, for which the Bernoulli formula is the usual stand-in
    but not a normalised density: the reconstruction term cannot fall below :func:`reconstruction_floor`,
    and the numbers are a training objective, not a bound on a log-likelihood.
    """
    logits, mu, logvar = model(Tensor(x), eps)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = kl_to_standard_normal(mu, logvar).mean()
    return reconstruction + kl, reconstruction, kl


@dataclass
class VAERun:
    model: VAE
    # per epoch, epoch 0 = before training: the -ELBO and its terms on all training digits, with noise fixed
    # once (the same eps every epoch, so the curve shows the model changing, not the noise)
    negative_elbo: list[float] = field(default_factory=list)
    reconstruction: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    test_negative_elbo: float = float("nan")
    samples: np.ndarray | None = None  # decoded from z ~ N(0, I): pixel probabilities (n_samples, n_in)
    test_codes: np.ndarray | None = None  # mu of every test digit (N_test, latent)
    test_labels: np.ndarray | None = None
    train_codes: np.ndarray | None = None


def reconstruction_floor(X: np.ndarray) -> float:
    """The least the reconstruction term can be, per digit: BCE of each pixel against itself, sum_i H(x_i).

    BCE(p, x) = H(x) + KL(Bernoulli(x) || Bernoulli(p)) is smallest at p = x, where it is the entropy
    H(x) = -x log x - (1 - x) log(1 - x): 0 for a black or white pixel, up to log 2 for a grey one.
    """
    X = np.asarray(X, dtype=np.float64)
    # 0 log 0 = 0: a black or white pixel's log is taken of 1 instead
    entropy = -(X * np.log(np.where(X > 0, X, 1.0)) + (1 - X) * np.log(np.where(X < 1, 1 - X, 1.0)))
    return float(entropy.sum(axis=1).mean())


def _evaluate(model: VAE, X: np.ndarray, eps: np.ndarray) -> tuple[float, float, float]:
    with no_grad():
        return tuple(float(t.item()) for t in negative_elbo(model, X, eps))


def encode_means(model: VAE, X: np.ndarray) -> np.ndarray:
    with no_grad():
        return model.encode(Tensor(X))[0].data


def decode_prior_samples(model: VAE, n: int, rng: np.random.Generator) -> np.ndarray:
    """Pixel probabilities decoded from n draws z ~ N(0, I): the VAE used as a generator."""
    with no_grad():
        return model.decoder(Tensor(rng.standard_normal((n, model.latent)))).sigmoid().data


@one_blas_thread
def train_vae(
    data,
    latent: int = 2,
    hidden: int = 64,
    epochs: int = 15,
    batch_size: int = 64,
    lr: float = 1e-2,
    seed: int = 0,
    n_samples: int = 10,
    progress="auto",
) -> VAERun:
    """Train a :class:`VAE` on ``data.X_train`` with Adam, one reparameterised noise draw per digit per step.

    ``progress``: see :func:`bpcore.progress.progress_bar` (a bar in notebooks, none in tests).
    """
    init_rng, noise_rng, order_rng, eval_rng = (np.random.default_rng([seed, i]) for i in range(4))
    model = VAE(data.X_train.shape[1], hidden, latent, rng=init_rng)
    optimizer = Adam(model.parameters(), lr=lr)
    eval_eps = eval_rng.standard_normal((len(data.X_train), latent))
    run = VAERun(model)

    def record():
        loss, reconstruction, kl = _evaluate(model, data.X_train, eval_eps)
        run.negative_elbo.append(loss)
        run.reconstruction.append(reconstruction)
        run.kl.append(kl)

    record()
    bar = progress_bar(epochs, "VAE on digits", progress)
    for epoch in range(1, epochs + 1):
        order = order_rng.permutation(len(data.X_train))
        for start in range(0, len(order), batch_size):
            batch = data.X_train[order[start : start + batch_size]]
            optimizer.zero_grad()
            negative_elbo(model, batch, noise_rng.standard_normal((len(batch), latent)))[0].backward()
            optimizer.step()
        record()
        bar.update(epoch, f"-ELBO {run.negative_elbo[-1]:.1f}")
    bar.close()
    run.test_negative_elbo = _evaluate(model, data.X_test, eval_rng.standard_normal((len(data.X_test), latent)))[0]
    run.samples = decode_prior_samples(model, n_samples, eval_rng)
    run.train_codes = encode_means(model, data.X_train)
    run.test_codes, run.test_labels = encode_means(model, data.X_test), data.y_test
    return run


def latent_neighbour_accuracy(run: VAERun, train_labels: np.ndarray, k: int = 5) -> float:
    """Test accuracy of a k-nearest-neighbour vote in the latent space (codes = mu), train codes as the reference.

    The VAE never saw a label: an accuracy far above 1/10 says digits of one class share a region of z.
    """
    distances = ((run.test_codes[:, None, :] - run.train_codes[None, :, :]) ** 2).sum(axis=2)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]
    votes = np.array([np.bincount(train_labels[row], minlength=10).argmax() for row in nearest])
    return float(np.mean(votes == run.test_labels))
