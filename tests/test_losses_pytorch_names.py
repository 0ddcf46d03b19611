"""Losses with PyTorch's options and module names, against their definitions written in numpy."""

import numpy as np
import pytest

import bpcore as bp

F = bp.nn.functional


def log_softmax(z, axis=-1):
    return z - np.log(np.exp(z - z.max(axis=axis, keepdims=True)).sum(axis=axis, keepdims=True)) - z.max(
        axis=axis, keepdims=True
    )


def smoothed_nll(z, t, eps, ignore=-100):
    """PyTorch's definition: q = (1 - eps) onehot + eps / C; mean of -sum q log softmax over kept rows."""
    kept = t != ignore
    q = np.full(z.shape, eps / z.shape[1])
    q[np.flatnonzero(kept), t[kept]] += 1 - eps
    return -(q * log_softmax(z)).sum(axis=1)[kept].mean()


Z = np.random.default_rng(0).standard_normal((5, 4))
T = np.array([0, 3, 1, -100, 2])


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
def test_label_smoothing_and_ignore_index(eps):
    loss = F.cross_entropy(bp.tensor(Z), T, label_smoothing=eps)
    assert loss.item() == pytest.approx(smoothed_nll(Z, T, eps), rel=1e-12)
    assert bp.gradcheck(lambda z: F.cross_entropy(z, T, label_smoothing=eps), Z)
    z = bp.tensor(Z, requires_grad=True)
    F.cross_entropy(z, T, label_smoothing=eps).backward()
    np.testing.assert_array_equal(z.grad[3], 0.0)  # the ignored row gets no gradient
    assert F.cross_entropy(bp.tensor(Z), T, reduction="sum", label_smoothing=eps).item() == pytest.approx(
        4 * smoothed_nll(Z, T, eps), rel=1e-12
    )


def test_probability_targets_and_every_target_ignored():
    p = np.abs(np.random.default_rng(1).standard_normal((5, 4)))
    p /= p.sum(axis=1, keepdims=True)
    assert F.cross_entropy(bp.tensor(Z), p).item() == pytest.approx(-(p * log_softmax(Z)).sum(axis=1).mean())
    assert bp.gradcheck(lambda z: F.cross_entropy(z, p, label_smoothing=0.2), Z)
    assert np.isnan(F.cross_entropy(bp.tensor(Z), np.full(5, -100)).item())


def test_scores_with_extra_dims_put_the_classes_on_dim_1():
    rng = np.random.default_rng(2)
    z, t = rng.standard_normal((2, 3, 4, 5)), rng.integers(0, 3, (2, 4, 5))
    flat = np.moveaxis(z, 1, -1).reshape(-1, 3)
    expected = -log_softmax(flat)[np.arange(40), t.reshape(-1)].mean()
    assert F.cross_entropy(bp.tensor(z), t).item() == pytest.approx(expected, rel=1e-12)
    assert F.cross_entropy(bp.tensor(z), t, reduction="none").shape == (2, 4, 5)
    assert bp.gradcheck(lambda u: F.cross_entropy(u, t), z)
    with pytest.raises(bp.ShapeError, match=r"targets of shape \(2, 4, 5\)"):
        F.cross_entropy(bp.tensor(z), t[:, :, :2])


def test_bce_on_probabilities_clamps_its_logs_as_pytorch():
    p = bp.tensor([0.5, 1.0, 0.2], requires_grad=True)
    t = np.array([1.0, 0.0, 1.0])
    loss = F.binary_cross_entropy(p, t)
    expected = -(np.log(0.5) + -100.0 + np.log(0.2)) / 3  # log(1 - 1) is clamped to -100
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    np.testing.assert_allclose(p.grad, [(0.5 - 1) / 0.25 / 3, 1 / 1e-12 / 3, (0.2 - 1) / 0.16 / 3])
    assert bp.gradcheck(lambda u: F.binary_cross_entropy(u, np.array([1.0, 0.0, 0.3])), np.array([0.3, 0.6, 0.9]))
    with pytest.raises(ValueError, match="probabilities in"):
        F.binary_cross_entropy(bp.tensor([1.5]), np.array([1.0]))


def test_l1_huber_and_one_hot():
    pred, target = np.array([0.0, 3.0, -0.4]), np.array([0.5, 0.0, 0.0])
    assert F.l1_loss(bp.tensor(pred), target).item() == pytest.approx(np.abs(pred - target).mean())
    e = np.abs(pred - target)
    huber = np.where(e <= 1.0, 0.5 * e**2, e - 0.5)
    assert F.huber_loss(bp.tensor(pred), target).item() == pytest.approx(huber.mean())
    assert bp.gradcheck(lambda u: F.huber_loss(u, target, delta=0.8), pred)
    np.testing.assert_array_equal(F.one_hot(bp.tensor([0, 2]), 4).data, [[1, 0, 0, 0], [0, 0, 1, 0]])
    assert F.one_hot(np.array([1, 2])).shape == (2, 3)


@pytest.mark.parametrize(
    ("module", "function", "target"),
    [
        (bp.nn.CrossEntropyLoss(label_smoothing=0.1), lambda z, t: F.cross_entropy(z, t, label_smoothing=0.1), T % 4),
        (bp.nn.NLLLoss(), F.nll_loss, T % 4),
        (bp.nn.MSELoss(), F.mse_loss, np.ones((5, 4))),
        (bp.nn.L1Loss(reduction="sum"), lambda z, t: F.l1_loss(z, t, reduction="sum"), np.ones((5, 4))),
        (bp.nn.HuberLoss(delta=0.5), lambda z, t: F.huber_loss(z, t, delta=0.5), np.ones((5, 4))),
        (bp.nn.BCEWithLogitsLoss(), F.binary_cross_entropy_with_logits, np.ones((5, 4)) * 0.3),
    ],
)
def test_loss_modules_call_their_functions(module, function, target):
    z = bp.tensor(Z)
    assert module(z, target).item() == function(z, target).item()
    assert "reduction" in repr(module)
    probabilities = bp.tensor(1 / (1 + np.exp(-Z)))
    assert bp.nn.BCELoss()(probabilities, np.zeros((5, 4))).item() == F.binary_cross_entropy(
        probabilities, np.zeros((5, 4))
    ).item()


def test_pytorch_module_paths_for_schedules_and_clipping():
    from bpcore.optim.lr_scheduler import CosineAnnealingLR, StepLR

    w = bp.tensor([1.0], requires_grad=True)
    optimizer = bp.optim.SGD([w], lr=1.0)
    schedule = StepLR(optimizer, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        optimizer.step()
        schedule.step()
        lrs.append(schedule.get_last_lr()[0])
    assert lrs == [1.0, 0.5, 0.5, 0.25, 0.25]
    assert CosineAnnealingLR is bp.optim.CosineAnnealingLR
    w.grad = np.array([30.0])
    assert bp.nn.utils.clip_grad_norm_([w], 1.0) == pytest.approx(30.0)
    assert w.grad[0] == pytest.approx(1.0)
