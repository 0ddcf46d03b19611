"""The cost of backprop: FLOP counts, graph memory that follows its formula, and exact checkpointing."""

import numpy as np
import pytest

import bpcore as bp
from bpcore import cost
from bpcore.tensor import topological_order

F = bp.nn.functional


# ----------------------------------------------------------------------------- (a) FLOPs and time


@pytest.mark.parametrize(("n", "a", "b"), [(1, 1, 1), (32, 64, 10), (256, 784, 128)])
def test_linear_backward_is_exactly_twice_the_forward_in_matmul_flops(n, a, b):
    flops = cost.linear_flops(n, a, b, bias=False)
    assert flops.forward_total == 2 * n * a * b
    assert flops.backward_total == 4 * n * a * b
    assert flops.ratio == 2.0


def test_bias_and_first_layer_move_the_ratio_as_the_docstring_says():
    with_bias = cost.linear_flops(64, 100, 50)
    assert with_bias.ratio == (4 * 64 * 100 * 50 + 64 * 50) / (2 * 64 * 100 * 50 + 64 * 50)
    assert 1.99 < with_bias.ratio < 2.0
    first = cost.linear_flops(64, 100, 50, bias=False, input_grad=False)  # no dX for the data
    assert first.ratio == 1.0
    whole = cost.mlp_flops([64, 256, 256, 256, 10], batch=128)
    assert 1.8 < whole.ratio < 2.0


def test_layer_costs_run_and_report_consistent_flops():
    rows = cost.layer_costs(batch=64, width=32, classes=5, repeats=2)
    names = [r.name for r in rows]
    assert names == ["Linear (hidden)", "Linear (first)", "ReLU", "Tanh", "Softmax + cross-entropy"]
    assert all(r.forward_seconds > 0 and r.backward_seconds > 0 for r in rows)  # timed, never asserted on
    assert rows[0].flops.backward_total == 2 * rows[1].flops.backward_total - 64 * 32
    assert "ratio" in cost.format_layer_costs(rows)


# ----------------------------------------------------------------------------- (b) memory


def test_graph_bytes_counts_op_outputs_only():
    x = bp.tensor(np.ones((4, 3)), requires_grad=True)  # a leaf: not counted
    y = (x * 2).tanh().sum()  # (4, 3) + (4, 3) + one number, float64
    assert cost.graph_bytes(y) == 8 * (12 + 12 + 1)


def test_activation_memory_matches_the_formula_and_is_linear_in_depth_and_batch():
    by_depth = cost.memory_vs_depth(depths=(1, 2, 3, 5, 8), batch=32, width=16)
    by_batch = cost.memory_vs_batch(batches=(8, 16, 24, 40), depth=3, width=16)
    for curve in (by_depth, by_batch):
        np.testing.assert_array_equal(curve.measured_bytes, curve.formula_bytes)
        slopes = np.diff(curve.measured_bytes) / np.diff(curve.values)
        np.testing.assert_allclose(slopes, slopes[0], rtol=1e-12)  # a straight line
        assert slopes[0] > 0


# ----------------------------------------------------------------------------- (c) checkpointing


def six_layer_problem(activation="tanh", seed=0):
    rng = np.random.default_rng(seed)
    model = cost.mlp(6, width=24, in_features=8, classes=5, activation=activation, seed=seed)
    x = rng.standard_normal((16, 8))
    targets = rng.integers(0, 5, size=16)
    return model, x, targets


def gradients(model, x, targets, segments):
    model.zero_grad()
    x_leaf = bp.tensor(x, requires_grad=True)
    out = cost.checkpointed_sequential(model, x_leaf, segments) if segments else model(x_leaf)
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
    loss = F.cross_entropy(cost.checkpointed_sequential(model, bp.tensor(x), 3), targets)
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
    ((cost.checkpoint(segment, x, params=[w]) @ w).sum()).backward()
    np.testing.assert_allclose(w.grad, plain_w, rtol=1e-14, atol=1e-15)
    assert np.array_equal(x.grad, plain_x)


def test_an_undeclared_parameter_is_reported_not_silently_dropped():
    w = bp.tensor(np.ones((2, 2)), requires_grad=True)
    y = cost.checkpoint(lambda h: h @ w, bp.tensor(np.ones((1, 2)), requires_grad=True))  # params not given
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
    loss = F.cross_entropy(cost.checkpointed_sequential(model, bp.tensor(x), 2), targets)
    loss.backward()
    loss.backward()
    for p, expected in zip(model.parameters(), plain, strict=True):
        assert np.array_equal(p.grad, expected)


def test_checkpointing_holds_less_graph_memory():
    model, x, targets = six_layer_problem()
    plain, *checkpointed = cost.checkpoint_sweep(model, x, targets, segment_counts=(2, 3, 4), repeats=1)
    assert plain.recomputations == 0 and plain.recomputed_graph_bytes == 0
    for row in checkpointed:
        assert row.recomputations == row.segments
        assert row.stored_graph_bytes < plain.stored_graph_bytes / 2
        assert row.peak_graph_bytes < plain.peak_graph_bytes
        assert row.seconds > 0 and row.peak_traced_bytes > 0  # measured; not asserted on
    best = min(checkpointed, key=lambda r: r.peak_graph_bytes)
    assert best.segments in (3, 4)  # about sqrt(11 modules)
    assert "segments" in cost.format_checkpoint_costs([plain, *checkpointed])


def test_checkpoint_passes_gradcheck_for_input_and_parameters_and_as_a_single_op():
    rng = np.random.default_rng(2)

    def fn(x, w, b):
        return cost.checkpoint(lambda h: (h @ w.T + b).tanh() * h.sum(), x, params=[w, b])

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
    F.cross_entropy(cost.checkpointed_sequential(model, bp.tensor(x), 3), targets).backward()
    handle.remove()
    assert len(seen) == 1 and np.array_equal(seen[0], weight.grad)
