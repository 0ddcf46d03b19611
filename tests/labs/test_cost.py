"""Notebook 08's cost lab: FLOP counts, graph memory that follows its formula, forward vs reverse mode passes."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.labs import cost
from bpcore.labs.cost import cost_comparison, measure_jacobian_cost

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




def test_activation_memory_matches_the_formula_and_is_linear_in_depth_and_batch():
    by_depth = cost.memory_vs_depth(depths=(1, 2, 3, 5, 8), batch=32, width=16)
    by_batch = cost.memory_vs_batch(batches=(8, 16, 24, 40), depth=3, width=16)
    for curve in (by_depth, by_batch):
        np.testing.assert_array_equal(curve.measured_bytes, curve.formula_bytes)
        slopes = np.diff(curve.measured_bytes) / np.diff(curve.values)
        np.testing.assert_allclose(slopes, slopes[0], rtol=1e-12)  # a straight line
        assert slopes[0] > 0


# ----------------------------------------------------------------------------- (c) checkpointing


















@pytest.mark.parametrize(("n", "m"), [(7, 1), (1, 9), (5, 3)])
def test_pass_counts_are_n_for_forward_mode_and_m_for_reverse_mode(n, m):
    rng = np.random.default_rng(5)
    w = rng.standard_normal((n, m))

    def f(x):  # R^n -> R^m
        return (x @ w).tanh()

    cost = measure_jacobian_cost(f, rng.standard_normal(n))
    assert (cost.n_inputs, cost.m_outputs) == (n, m)
    assert cost.forward_mode_passes == n
    assert (cost.reverse_mode_forwards, cost.reverse_mode_passes) == (1, m)
    assert cost.max_abs_difference < 1e-13


def test_cost_comparison_counts_the_two_classic_cases():
    wide, tall = cost_comparison(n=100, m=100)
    assert (wide.n_inputs, wide.m_outputs, wide.forward_mode_passes, wide.reverse_mode_passes) == (100, 1, 100, 1)
    assert (tall.n_inputs, tall.m_outputs, tall.forward_mode_passes, tall.reverse_mode_passes) == (1, 100, 1, 100)
    for row in (wide, tall):  # times are measured, not asserted: only that they exist and print
        assert row.forward_mode_seconds > 0 and row.reverse_mode_seconds > 0
        assert "pass" in str(row)
