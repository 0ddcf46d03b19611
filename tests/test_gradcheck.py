"""gradcheck itself must be able to fail: planted bugs are caught, named and located."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.gradcheck import relative_error, verdict


@bp.primitive("bad_sigmoid")
def bad_sigmoid(x):
    """A planted bug: the derivative forgets the (1 - y) factor."""
    y = 1 / (1 + np.exp(-x))
    return y, (lambda g: g * y,)


@bp.primitive("bad_matmul")
def bad_matmul(a, b):
    """A planted bug: the gradient for ``a`` forgets to transpose ``b`` (only visible when square)."""
    return a @ b, (lambda g: g @ b, lambda g: a.T @ g)


def test_correct_gradients_pass_with_tiny_errors():
    rng = np.random.default_rng(0)
    report = bp.gradcheck(
        lambda a, b: (a @ b).tanh().sum(axis=1), rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    )
    assert report and report.passed
    for row in report.inputs:
        assert row.rel_err < 1e-7 and row.max_rel_err < 1e-6 and row.verdict == "good"
    text = str(report)
    assert "passed" in text and "x0" in text and "(3, 4)" in text and "<=1e-7 good" in text


def test_a_wrong_vjp_fails_the_check():
    x = np.linspace(-2, 2, 7)
    report = bp.gradcheck(lambda t: bad_sigmoid(t * 2.0).sum(), x)
    assert not report
    assert report.inputs[0].max_rel_err > 1e-2 and report.inputs[0].verdict == "wrong"
    assert "FAILED" in str(report)


def test_localize_names_the_first_wrong_op_and_its_line():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 3))

    def net(x, w):
        h = (x @ w).tanh()
        h2 = bad_matmul(h, w)  # the culprit
        return bad_sigmoid(h2).sum()

    report = bp.gradcheck(net, x, w, localize=True)
    assert not report
    bad = report.first_bad_node
    assert bad.op == "bad_matmul" and bad.input_index == 0
    assert "the culprit" in bad.site and "test_gradcheck.py" in bad.site
    assert "'bad_matmul'" in str(report)
    # the ops before it were fine, and the later bad_sigmoid is found too
    ops_checked = [n.op for n in report.nodes]
    assert ops_checked.index("matmul") < ops_checked.index("bad_matmul")
    assert any(n.op == "bad_sigmoid" and not n.passed for n in report.nodes)
    assert all(n.passed for n in report.nodes if n.op in ("matmul", "tanh"))


def test_localize_on_a_correct_graph_finds_nothing():
    report = bp.gradcheck(lambda t: (t * t).exp().mean(), np.array([0.1, 0.2]), localize=True)
    assert report and report.first_bad_node is None
    assert "all 4 op-input pairs agree" in str(report)  # mul counts twice: t is both inputs


def test_kinks_are_where_finite_differences_disagree():
    # relu at exactly 0: the analytic slope is 0, the central difference straddles the kink and gives 0.5
    report = bp.gradcheck(lambda t: t.relu().sum(), np.array([0.0, 1.0]))
    assert not report
    np.testing.assert_allclose(report.inputs[0].numerical, [0.5, 1.0])


def test_integer_inputs_pass_through_unchecked():
    logits = np.random.default_rng(2).standard_normal((4, 3))
    targets = np.array([0, 2, 1, 2])
    report = bp.gradcheck(lambda z, t: -z.log_softmax(axis=1)[np.arange(4), t].mean(), logits, targets)
    assert report and len(report.inputs) == 1


def test_float32_inputs_are_checked_in_float64():
    x = bp.tensor(np.array([0.3, -0.7], dtype=np.float32))
    report = bp.gradcheck(lambda t: (t * t * t).sum(), x)
    assert report and report.inputs[0].analytic.dtype == np.float64


def test_gradcheck_errors_are_readable():
    with pytest.raises(TypeError, match="must return a bpcore Tensor"):
        bp.gradcheck(lambda t: t.data.sum(), np.ones(2))
    with pytest.raises(TypeError, match="floating-point input"):
        bp.gradcheck(lambda t: t, np.array([1, 2]))


def test_the_learner_scale():
    assert [verdict(e) for e in (1e-9, 1e-5, 1e-3, 0.5)] == [
        "good",
        "suspicious unless there is a kink",
        "likely wrong",
        "wrong",
    ]
    np.testing.assert_allclose(relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.2])), [0.0, 0.2 / 2.2])


def test_step_size_trade_off_truncation_against_rounding():
    """The measured sweep behind the docstring in gradcheck.py.

    Large eps: truncation error falls like eps**2 (two decades per decade of eps).
    Tiny eps: rounding error grows like 1/eps. The best eps sits in between, near 1e-5.
    """
    x = np.array([0.7, -1.3, 2.1])
    sweep = bp.step_size_sweep(lambda t: (t * t).exp() * t.tanh(), x, eps_values=np.logspace(-1, -13, 13))
    errors = dict(zip(np.round(np.log10(sweep.eps)).astype(int), sweep.rel_err, strict=True))
    assert 1e-8 <= sweep.best_eps <= 1e-4
    assert errors[-1] / errors[-2] > 50  # truncation: ~100x per decade of eps
    assert errors[-2] / errors[-3] > 50
    assert errors[-13] > 100 * errors[-6]  # rounding takes over at tiny steps
    assert errors[-12] > errors[-9]
    assert min(sweep.rel_err) < 1e-8


def test_compare_exact_close_and_transposed():
    a = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    same = bp.compare("dW", a, a.copy())
    assert same and same.exact and same.max_diff == 0.0
    near = bp.compare("dW", a, a + 1e-12)
    assert near and not near.exact and 0 < near.max_diff < 1e-11
    off = bp.compare("dW", a, a * 1.01)
    assert not off and off.max_diff == pytest.approx(0.06)
    flipped = bp.compare("dW", a.T, bp.tensor(a))
    assert not flipped and "transpose" in str(flipped)
    assert "exact: True" in str(same) and "max diff" in str(same)


def test_transposed_and_strided_inputs_are_checked_correctly():
    a = np.random.default_rng(4).standard_normal((3, 5))
    assert bp.gradcheck(lambda x: x.tanh(), a.T)  # a Fortran-ordered view
    assert bp.gradcheck(lambda x: x.exp(), a[:, ::2], localize=True)
    with pytest.raises(ValueError, match="C-contiguous"):
        from bpcore.gradcheck import numerical_gradient

        numerical_gradient(lambda: 0.0, a.T, 1e-6)


def test_rounding_noise_on_small_elements_does_not_spoil_the_verdict():
    """Digit pixels that are 0 give exactly-zero gradients and tiny ones beside large ones; the
    verdict reads the whole tensor (||a - n|| / ||a||), so finite-difference noise stays 'good'."""
    d = bp.data.digits()
    X, y = d.X_train[:4], d.y_train[:4]
    w = np.random.default_rng(0).normal(size=(64, 10)) * 0.1
    report = bp.gradcheck(lambda w: bp.nn.functional.cross_entropy(bp.tensor(X) @ w, y), w)
    assert report and report.inputs[0].verdict == "good" and report.inputs[0].rel_err < 1e-8
