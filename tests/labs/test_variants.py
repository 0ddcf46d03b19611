"""Notebook 03's lab: each training variant as defined, and mini-batch gradient noise that follows 1/B."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.labs import variants

F = bp.nn.functional

def test_compare_variants_same_samples_seen_different_update_counts():
    d = bp.data.digits()

    def make():
        bp.manual_seed(0)
        return bp.nn.Sequential(bp.nn.Linear(64, 16), bp.nn.ReLU(), bp.nn.Linear(16, 10))

    runs = variants.compare_variants(make, d, epochs=2, lr=0.05, batch_size=32)
    n = len(d.X_train)
    assert {k: r.history.updates for k, r in runs.items()} == {
        "batch": 2, "stochastic": 2 * n, "minibatch": 2 * -(-n // 32), "online": 2 * n}
    assert all(r.history.samples_seen[-1] == 2 * n for r in runs.values())
    # per sample seen, many small updates beat a few exact ones
    assert runs["stochastic"].test_accuracy > runs["minibatch"].test_accuracy > runs["batch"].test_accuracy


def test_minibatch_gradient_variance_follows_one_over_b():
    d = bp.data.digits()
    model = small_classifier_for(d)
    noise = variants.gradient_noise(model, F.cross_entropy, d.X_train, d.y_train, [1, 4, 16, 64, 256], draws=60)
    assert noise.slope == pytest.approx(-1.0, abs=0.15)
    assert noise.variance[0] / noise.variance[-1] > 100


def small_classifier_for(d):
    bp.manual_seed(0)
    return bp.nn.Sequential(bp.nn.Linear(d.n_features, 32), bp.nn.ReLU(), bp.nn.Linear(32, d.classes))


def test_demo_online_stream_brings_each_sample_exactly_as_many_times_as_the_passes():
    order = variants.online_stream_order(1347, 3, seed=0)
    assert len(order) == 3 * 1347
    counts = np.bincount(order, minlength=1347)
    assert counts.min() == counts.max() == 3, f"each sample should arrive 3 times, got {counts.min()}..{counts.max()}"
    assert not np.array_equal(order[:1347], np.arange(1347))  # shuffled, not three sorted passes


def test_gradient_noise_std_falls_like_one_over_sqrt_b():
    d = bp.data.digits()
    noise = variants.gradient_noise(small_classifier_for(d), F.cross_entropy, d.X_train, d.y_train, [4, 64], draws=60)
    std_ratio = np.sqrt(noise.variance[0] / noise.variance[1])  # 16 times the batch
    assert std_ratio == pytest.approx(4, rel=0.25), f"std fell {std_ratio:.3g}x for 16x the batch; 1/sqrt(B) says 4"
