"""Gradient checkpointing: gradients equal to the plain ones bit for bit, with less held for backward."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.checkpointing import checkpoint, checkpointed_sequential
from bpcore.labs.cost import checkpoint_sweep, format_checkpoint_costs, mlp
from bpcore.tensor import topological_order

F = bp.nn.functional

def six_layer_problem(activation="tanh", seed=0):
    rng = np.random.default_rng(seed)
    model = mlp(6, width=24, in_features=8, classes=5, activation=activation, seed=seed)
    x = rng.standard_normal((16, 8))
    targets = rng.integers(0, 5, size=16)
    return model, x, targets


def gradients(model, x, targets, segments):
    model.zero_grad()
    x_leaf = bp.tensor(x, requires_grad=True)
    out = checkpointed_sequential(model, x_leaf, segments) if segments else model(x_leaf)
    loss = F.cross_entropy(out, targets)
    loss.backward()
    return loss.item(), x_leaf.grad, {name: p.grad.copy() for name, p in model.named_parameters()}


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("segments", [1, 2, 3, 4, 11])
def test_checkpointed_gradients_equal_plain_gradients_exactly(activation, segments):
    model, x, targets = six_layer_problem(activation)
    plain_loss, plain_dx, plain = gradients(model, x, targets, segments=0)
    loss, dx, checkpointed = gradients(model, x, targets, segments)
    assert loss == plain_loss
    assert np.array_equal(dx, plain_dx)
    assert plain.keys() == checkpointed.keys() and len(plain) == 12
    for name in plain:
        assert np.array_equal(checkpointed[name], plain[name]), name


def test_the_checkpointed_graph_keeps_no_values_from_inside_a_segment():
    model, x, targets = six_layer_problem()
    loss = F.cross_entropy(checkpointed_sequential(model, bp.tensor(x), 3), targets)
    ops = [t.op for t in topological_order(loss, every_tensor=True) if t.op]
    assert ops == ["checkpoint"] * 3 + ["cross_entropy"]


def test_a_parameter_used_inside_and_outside_a_segment_gets_both_contributions():
    rng = np.random.default_rng(1)
    w = bp.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    x = bp.tensor(rng.standard_normal((4, 3)), requires_grad=True)

    def segment(h):
        return (h @ w).tanh() @ w

    ((segment(x) @ w).sum()).backward()
    plain_w, plain_x = w.grad, x.grad
    w.grad = x.grad = None
    ((checkpoint(segment, x, params=[w]) @ w).sum()).backward()
    np.testing.assert_allclose(w.grad, plain_w, rtol=1e-14, atol=1e-15)
    assert np.array_equal(x.grad, plain_x)


def test_an_undeclared_parameter_is_reported_not_silently_dropped():
    w = bp.tensor(np.ones((2, 2)), requires_grad=True)
    y = checkpoint(lambda h: h @ w, bp.tensor(np.ones((1, 2)), requires_grad=True))  # params not given
    with pytest.raises(ValueError, match="not declared"):
        y.sum().backward()


def test_backward_twice_accumulates_as_without_checkpointing():
    model, x, targets = six_layer_problem()
    model.zero_grad()
    loss = F.cross_entropy(model(bp.tensor(x)), targets)
    loss.backward()
    loss.backward()
    plain = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    loss = F.cross_entropy(checkpointed_sequential(model, bp.tensor(x), 2), targets)
    loss.backward()
    loss.backward()
    for p, expected in zip(model.parameters(), plain, strict=True):
        assert np.array_equal(p.grad, expected)


def test_checkpoint_passes_gradcheck_for_input_and_parameters_and_as_a_single_op():
    rng = np.random.default_rng(2)

    def fn(x, w, b):
        return checkpoint(lambda h: (h @ w.T + b).tanh() * h.sum(), x, params=[w, b])

    report = bp.gradcheck(
        fn, rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal(2), localize=True
    )
    assert report.passed, str(report)
    assert [n.op for n in report.nodes] == ["checkpoint"] * 3 and all(n.passed for n in report.nodes)


def test_parameter_hooks_fire_once_with_the_full_gradient():
    model, x, targets = six_layer_problem()
    weight = model[0].weight
    seen = []
    handle = weight.register_hook(lambda g: seen.append(g.copy()))
    model.zero_grad()
    F.cross_entropy(checkpointed_sequential(model, bp.tensor(x), 3), targets).backward()
    handle.remove()
    assert len(seen) == 1 and np.array_equal(seen[0], weight.grad)


def test_checkpointing_holds_less_graph_memory():
    model, x, targets = six_layer_problem()
    plain, *checkpointed = checkpoint_sweep(model, x, targets, segment_counts=(2, 3, 4), repeats=1)
    assert plain.recomputations == 0 and plain.recomputed_graph_bytes == 0
    for row in checkpointed:
        assert row.recomputations == row.segments
        assert row.stored_graph_bytes < plain.stored_graph_bytes / 2
        assert row.peak_graph_bytes < plain.peak_graph_bytes
        assert row.seconds > 0 and row.peak_traced_bytes > 0  # measured; not asserted on
    best = min(checkpointed, key=lambda r: r.peak_graph_bytes)
    assert best.segments in (3, 4)  # about sqrt(11 modules)
    assert "segments" in format_checkpoint_costs([plain, *checkpointed])
