"""Notebook 07's lab: the CNN beats the MLP; autoencoder, GAN and REINFORCE each make their headline claim."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.labs import beyond
from bpcore.labs.beyond import digits_cnn


def test_autoencoder_learns_to_reconstruct_unseen_digits():
    run = beyond.train_autoencoder(bp.data.digits(), epochs=15)
    assert run.train_loss[-1] < 0.25 * run.train_loss[0]  # reconstruction error falls by 4x or more
    assert run.test_loss[-1] < 1.3 * run.train_loss[-1]  # and it carries over to test digits
    assert run.reconstructions.shape == run.originals.shape == (8, 64)
    errors = np.mean((run.reconstructions - run.originals) ** 2, axis=1)
    shuffled = np.mean((run.reconstructions - run.originals[::-1]) ** 2, axis=1)
    assert errors.mean() < 0.5 * shuffled.mean()  # each reconstruction resembles its own original


def test_autoencoder_gradient_reaches_the_encoder_through_the_code():
    bp.manual_seed(0)
    model = beyond.Autoencoder(64, 16, 4)
    x = bp.data.digits().X_train[:5]
    bp.nn.functional.mse_loss(model(bp.tensor(x)), x).backward()
    assert all(np.abs(p.grad).sum() > 0 for p in model.encoder.parameters())


def test_generator_step_changes_g_and_leaves_d_alone():
    bp.manual_seed(1)
    G, D = beyond.make_generator(), beyond.make_discriminator()
    before_d = {n: p.data.copy() for n, p in D.named_parameters()}
    before_g = {n: p.data.copy() for n, p in G.named_parameters()}
    seen_d_grads = []
    D[0].weight.register_hook(lambda g: seen_d_grads.append(np.abs(g).sum()))
    noise = np.random.default_rng(0).standard_normal((32, 2))
    beyond.generator_step(G, D, bp.optim.Adam(G.parameters(), lr=1e-2), noise)
    assert seen_d_grads and seen_d_grads[0] > 0  # the generator's gradient really ran through D
    assert all(np.array_equal(p.data, before_d[n]) for n, p in D.named_parameters())
    assert all(p.grad is None for p in D.parameters())
    assert any(not np.array_equal(p.data, before_g[n]) for n, p in G.named_parameters())


def test_discriminator_step_leaves_g_alone():
    bp.manual_seed(2)
    G, D = beyond.make_generator(), beyond.make_discriminator()
    before = {n: p.data.copy() for n, p in G.named_parameters()}
    rng = np.random.default_rng(0)
    real, noise = beyond.real_samples(32, rng), rng.standard_normal((32, 2))
    beyond.discriminator_step(G, D, bp.optim.Adam(D.parameters()), real, noise)
    assert all(np.array_equal(p.data, before[n]) and p.grad is None for n, p in G.named_parameters())


@pytest.mark.parametrize("seed", [0, 1])
def test_gan_moves_the_generated_distribution_onto_the_real_one(seed):
    run = beyond.train_gan(steps=2000, seed=seed)
    mean = run.generated.mean(axis=0)
    np.testing.assert_allclose(mean, beyond.REAL_MEAN, atol=0.25)
    cov = np.cov(run.generated.T)
    correlation = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert correlation > 0.5  # the tilt of the real cloud (0.8) is learned, if not exactly
    assert abs(np.mean(run.d_loss[-200:]) - np.log(4) / 2) < 0.15  # D near a coin flip: loss ~ ln 2


def test_reinforce_finds_the_best_arm_in_every_situation():
    run = beyond.train_reinforce(batches=200, seed=0)
    assert run.best_arm_probability[0] < 0.5
    assert run.best_arm_probability[-1] > 0.95
    assert np.mean(run.mean_reward[-20:]) > np.mean(run.mean_reward[:20]) + 0.3
    probs = beyond.policy_probabilities(run.policy)
    np.testing.assert_array_equal(probs.argmax(axis=1), beyond.ARM_MEANS.argmax(axis=1))


def test_reinforce_gradient_is_the_reward_weighted_score():
    """The surrogate's gradient w.r.t. the logits equals -(R - b)(onehot(a) - pi) / N, the REINFORCE formula."""
    logits = bp.tensor(np.random.default_rng(3).standard_normal((4, 3)), requires_grad=True)
    actions, advantage = np.array([0, 2, 1, 2]), np.array([1.0, -0.5, 2.0, 0.3])
    surrogate = -(logits.log_softmax(axis=1)[np.arange(4), actions] * advantage).mean()
    surrogate.backward()
    pi = logits.softmax(axis=1).data
    expected = -advantage[:, None] * (np.eye(3)[actions] - pi) / 4
    np.testing.assert_allclose(logits.grad, expected, rtol=1e-12)






def test_digits_cnn_beats_an_mlp_with_the_same_budget():
    """Same data, epochs (15), optimizer (Adam, lr 1e-2), batch size (32) and seeds; the CNN has
    fewer parameters (1,610 against 2,410). Measured: MLP 95.6 / 97.3 / 96.7 %, CNN 97.8 / 98.0 / 98.7 %."""
    accuracy = beyond.cnn_versus_mlp(seeds=(0, 1, 2))
    assert digits_cnn().num_parameters() < beyond.digits_mlp().num_parameters()
    assert all(c > m for c, m in zip(accuracy["cnn"], accuracy["mlp"], strict=True)), accuracy
    assert np.mean(accuracy["cnn"]) - np.mean(accuracy["mlp"]) > 0.01, accuracy  # about half of the MLP's errors gone
    assert min(accuracy["cnn"]) >= 0.975, accuracy
