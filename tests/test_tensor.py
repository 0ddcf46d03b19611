"""The Tensor's contract: creation, dtypes, accumulation, graph control, hooks, anomaly mode, errors."""

import subprocess
import sys

import numpy as np
import pytest

import bpcore as bp

# ---------------------------------------------------------------- creation and basic facts


def test_tensor_defaults_to_float64_and_copies():
    source = [[1.0, 2.0], [3.0, 4.0]]
    x = bp.tensor(source)
    assert x.dtype == np.float64 and x.shape == (2, 2) and x.grad is None and not x.requires_grad
    array = np.ones(3)
    y = bp.tensor(array)
    array[0] = 5
    assert y.data[0] == 1  # bp.tensor copies, like torch.tensor


def test_float32_arrays_and_dtype_argument():
    assert bp.tensor(np.ones(2, dtype=np.float32)).dtype == np.float32
    assert bp.tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert bp.tensor([1, 2], dtype=bp.float32).dtype == np.float32


def test_data_is_live():
    x = bp.tensor([1.0, 2.0])
    x.data[1] = 7.0
    assert x.numpy() is x.data and x.tolist() == [1.0, 7.0]


def test_item_float_len_repr():
    x = bp.tensor([[2.5]], requires_grad=True, name="w")
    assert x.item() == 2.5 and float(x) == 2.5 and len(x) == 1
    assert "requires_grad=True" in repr(x) and "'w'" in repr(x)
    assert "op=mul" in repr(x * 2)
    with pytest.raises(ValueError, match=r"one element.*\(2,\)"):
        bp.tensor([1.0, 2.0]).item()


def test_comparisons_give_plain_boolean_arrays():
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = x > 1.5
    assert isinstance(mask, np.ndarray) and mask.dtype == bool
    np.testing.assert_array_equal(x == bp.tensor([1.0, 0.0, 3.0]), [True, False, True])
    assert {x: 1}[x] == 1  # still hashable by identity


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(RuntimeError, match=r"floating point dtype can require gradients.*1\.0, not 1"):
        bp.tensor([1, 2], dtype=np.int64, requires_grad=True)
    with pytest.raises(RuntimeError, match="got dtype int64"):
        bp.tensor([1, 2], requires_grad=True)  # integer data stays integer, as in PyTorch
    assert bp.tensor([1, 2], dtype=bp.float64, requires_grad=True).requires_grad


def test_the_dtype_follows_the_data_as_in_pytorch():
    assert bp.tensor([0, 2, 1]).dtype == np.int64
    assert bp.tensor(3).dtype == np.int64
    assert bp.tensor([1.0, 2]).dtype == np.float64
    assert bp.tensor(np.float32([1, 2])).dtype == np.float32
    assert bp.tensor(np.array([1, 2], dtype=np.int32)).dtype == np.int32  # a numpy dtype is kept, as in torch
    assert bp.tensor([True, False]).dtype == np.bool_
    logits = bp.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]], requires_grad=True)
    loss = bp.nn.functional.cross_entropy(logits, bp.tensor([0, 2]))  # labels as a tensor, as people write it
    loss.backward()
    assert logits.grad.shape == (2, 3)


# ---------------------------------------------------------------- float32 stays float32


def test_float32_graph_stays_float32_in_values_and_gradients():
    rng = np.random.default_rng(0)
    x = bp.tensor(rng.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    w = bp.tensor(rng.standard_normal((3, 5)).astype(np.float32), requires_grad=True)
    b = bp.tensor(np.zeros(5, dtype=np.float32), requires_grad=True)
    h = (x @ w + b).tanh() * 0.5 + 1.0
    parts = [
        h.sigmoid(),
        h.relu(),
        h.gelu(),
        h.leaky_relu(),
        h.softmax(axis=1),
        h.log_softmax(axis=0),
        h.exp(),
        h.log(),
        h.sqrt(),
        h.abs(),
        h**2,
        2.0**h,
        h / 3.0,
        h.clip(0.2, 0.8),
        h.max(axis=1, keepdims=True),
        h.min(axis=0, keepdims=True),
        h.mean(axis=1, keepdims=True),
        h.var(axis=0, keepdims=True, unbiased=False),
        bp.where(h.data > 1, h, 0.0),
        h[np.array([0, 0, 3])].sum(axis=0, keepdims=True),
    ]
    total = bp.stack([p.sum() for p in parts]).sum() + bp.concat([h, h], axis=1).mean()
    for t in [*parts, total]:
        assert t.dtype == np.float32, (t.op, t.dtype)
    total.backward()
    for leaf in (x, w, b):
        assert leaf.grad.dtype == np.float32


# ---------------------------------------------------------------- accumulation, second backward


def test_gradients_accumulate_until_zeroed():
    w = bp.tensor([1.0, -2.0], requires_grad=True)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad, [6.0, 6.0])
    w.grad = None
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [2.0, -4.0])


def test_second_backward_on_the_same_graph_adds_again():
    x = bp.tensor([0.5, 1.5], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    once = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * once)
    np.testing.assert_allclose(once, np.exp([0.5, 1.5]) * (1 + np.array([0.5, 1.5])))


def test_paths_that_reuse_a_tensor_add_up():
    x = bp.tensor(3.0, requires_grad=True)
    y = x * x + x * 2  # dy/dx = 2x + 2 = 8
    y.backward()
    assert x.grad == 8.0


def test_leaf_gradients_do_not_alias_each_other():
    a = bp.tensor([1.0, 2.0], requires_grad=True)
    b = bp.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # add hands the same upstream array to both inputs
    a.grad += 10
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_chain_of_100000_ops_does_not_recurse():
    x = bp.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    limit = sys.getrecursionlimit()
    y.backward()
    assert sys.getrecursionlimit() == limit
    assert x.grad == pytest.approx(1.00001**100_000, rel=1e-9)


def test_backward_of_non_scalar_needs_a_gradient():
    x = bp.tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\).*y.sum\(\).backward\(\)"):
        y.backward()
    y.backward(np.full((2, 3), 0.5))
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))
    with pytest.raises(bp.ShapeError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))


def test_backward_on_a_tensor_without_grad_explains_why():
    with pytest.raises(RuntimeError, match="requires_grad=True"):
        (bp.tensor([1.0]) * 2).sum().backward()


# ---------------------------------------------------------------- no_grad, detach, retain_grad, hooks


def test_no_grad_records_nothing_and_restores():
    w = bp.tensor([1.0], requires_grad=True)
    with bp.no_grad():
        y = w * 2
        assert not bp.is_grad_enabled()
        with bp.enable_grad():
            z = w * 2
    assert bp.is_grad_enabled()
    assert not y.requires_grad and y.op is None and y.inputs == ()
    assert z.requires_grad

    @bp.no_grad()
    def evaluate():
        return w * 3

    assert not evaluate().requires_grad


def test_detach_cuts_the_graph_and_shares_data():
    x = bp.tensor([2.0], requires_grad=True)
    h = x * 3
    d = h.detach()
    assert d.is_leaf and not d.requires_grad and d.data is h.data
    y = (h * d).sum()  # gradient flows only through h
    y.backward()
    assert x.grad[0] == 3 * 6.0


def test_retain_grad_keeps_intermediate_gradients():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    h.retain_grad()
    other = x * 4
    (h * h).sum().backward()
    np.testing.assert_array_equal(h.grad, 2 * h.data)
    assert other.grad is None  # intermediates keep no gradient unless asked


def test_hooks_see_and_may_replace_the_gradient():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    seen = []
    handle = h.register_hook(lambda g: seen.append(g.copy()))
    h.register_hook(lambda g: g * 0.0 + 1.0)  # replace the gradient flowing to x
    (h * h).sum().backward()
    np.testing.assert_array_equal(seen[0], 2 * h.data)
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])  # 1.0 (replaced) times dh/dx = 3
    handle.remove()
    x.grad = None
    (h * h).sum().backward()
    assert len(seen) == 1


def test_leaf_hook_replaces_what_lands_in_grad():
    w = bp.tensor([1.0, 1.0], requires_grad=True)
    w.register_hook(lambda g: np.clip(g, -1, 1))
    (w * 5).sum().backward()
    np.testing.assert_array_equal(w.grad, [1.0, 1.0])


def test_hook_with_wrong_shape_is_reported():
    w = bp.tensor([1.0, 1.0], requires_grad=True)
    w.register_hook(lambda g: np.ones(3))
    with pytest.raises(bp.ShapeError, match="hook"):
        (w * 2).sum().backward()


# ---------------------------------------------------------------- anomaly mode


def test_anomaly_mode_names_the_op_shapes_and_line_in_forward():
    x = bp.tensor([0.0, 1.0], requires_grad=True)
    with bp.detect_anomaly(), pytest.raises(bp.AnomalyError) as caught:
        y = x.log()  # the offending line
        y.sum()
    message = str(caught.value)
    assert "'log'" in message and "Inf" in message and "(2,)" in message
    assert "test_tensor.py" in message and "the offending line" in message


def test_anomaly_mode_names_the_op_in_backward():
    x = bp.tensor([0.0, 4.0], requires_grad=True)
    with bp.detect_anomaly():
        y = x.sqrt().sum()  # finite value, infinite slope at 0
        with pytest.raises(bp.AnomalyError, match=r"'sqrt' produced Inf in its gradient") as caught:
            y.backward()
    assert "x.sqrt().sum()" in str(caught.value)


def test_without_anomaly_mode_nan_passes_silently():
    x = bp.tensor([-1.0], requires_grad=True)
    with np.errstate(invalid="ignore"):
        y = x.sqrt()
    assert np.isnan(y.data).all()


# ---------------------------------------------------------------- errors that speak to the learner


def test_shape_errors_name_the_op_and_both_shapes():
    a, b = bp.tensor(np.ones((2, 3))), bp.tensor(np.ones((4, 5)))
    with pytest.raises(bp.ShapeError, match=r"matmul.*\(2, 3\).*\(4, 5\).*transpose"):
        a @ b
    with pytest.raises(bp.ShapeError, match=r"add.*\(2, 3\).*\(4, 5\)"):
        a + b
    with pytest.raises(bp.ShapeError, match=r"reshape.*\(2, 3\).*\(4, 2\)"):
        a.reshape(4, 2)
    with pytest.raises(bp.ShapeError, match=r"concat.*\(2, 3\), \(4, 5\)"):
        bp.concat([a, b], axis=0)
    with pytest.raises(bp.ShapeError, match=r"stack"):
        bp.stack([a, b])
    assert issubclass(bp.ShapeError, ValueError)


def test_truth_value_of_many_elements_is_an_error():
    with pytest.raises(ValueError, match="ambiguous"):
        bool(bp.tensor([1.0, 2.0]))


# ---------------------------------------------------------------- custom primitives


def test_custom_primitive_from_the_public_decorator():
    @bp.primitive("cube")
    def cube(x):
        return x**3, (lambda g: g * 3 * x**2,)

    x = bp.tensor([1.0, -2.0], requires_grad=True)
    y = cube(x)
    assert y.op == "cube"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 12.0])
    assert bp.gradcheck(lambda t: cube(t), np.array([0.3, -1.2]))


def test_custom_primitive_with_its_vjps_in_the_decorator():
    @bp.primitive("scaled_cube", vjps=(lambda g, x, k: g * 3 * k * x**2, None))
    def scaled_cube(x, k):
        return k * x**3, (x, k)

    x = bp.tensor([1.0, -2.0], requires_grad=True)
    k = bp.tensor(2.0, requires_grad=True)
    y = scaled_cube(x, k)
    assert y.op == "scaled_cube"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 24.0])
    assert k.grad is None, f"a None VJP means no gradient for that input, but k.grad is {k.grad}"
    assert bp.gradcheck(lambda t: scaled_cube(t, 2.0), np.array([0.3, -1.2]))


def _column_op():
    """A primitive reading one column of its input, whose VJP answers with a SliceGrad for that column."""
    from bpcore.tensor import SliceGrad

    @bp.primitive("scaled_column", vjps=(lambda g, x, k, t: SliceGrad((slice(None), t), g * k), None))
    def scaled_column(x, k, t=0):
        return k * x[:, t], (x, k, t)

    return scaled_column


def test_slice_gradients_are_added_into_one_full_gradient():
    from bpcore.gradcheck import check_each_op

    column = _column_op()
    rng = np.random.default_rng(0)
    data = rng.standard_normal((3, 4))

    def fn(x):  # column 1 read twice, column 3 once, and x also through a dense op
        return (column(x, 2.0, t=1) * column(x, -1.5, t=3) + column(x, 0.5, t=1) + x.exp()[:, 0]).sum()

    for first_dense in (False, True):
        x = bp.tensor(data, requires_grad=True)
        out = (x * 1.0).sum() if first_dense else None  # a full gradient reaching x first
        loss = fn(x) + out if first_dense else fn(x)
        loss.backward()
        expected = np.exp(data) * (np.arange(4) == 0) + (1.0 if first_dense else 0.0)
        expected[:, 1] += 2.0 * -1.5 * data[:, 3] + 0.5
        expected[:, 3] += -1.5 * 2.0 * data[:, 1]
        assert type(x.grad) is np.ndarray and x.grad.shape == (3, 4), f"x.grad should be a (3, 4) array, got {x.grad!r}"
        np.testing.assert_allclose(x.grad, expected, rtol=1e-12)
    assert bp.gradcheck(fn, data)
    assert all(check.passed for check in check_each_op(fn(bp.tensor(data, requires_grad=True)))), \
        "check_each_op should pass on an op whose VJP returns a SliceGrad"
    leaf = bp.tensor(data, requires_grad=True)
    column(leaf, 3.0, t=2).sum().backward()  # a leaf reached by a slice alone: zeros elsewhere
    np.testing.assert_array_equal(leaf.grad, np.where(np.arange(4) == 2, 3.0, 0.0) * np.ones((3, 1)))


def test_slice_gradients_replay_under_compile_as_eager():
    column = _column_op()
    data = np.random.default_rng(1).standard_normal((3, 4))

    def step(x):
        # (.grad accumulates over the calls)
        loss = (column(x, 2.0, t=1) * column(x, -1.5, t=3) + column(x, 0.5, t=1)).sum()
        loss.backward()
        return loss.item()

    eager_x, compiled_x = bp.tensor(data, requires_grad=True), bp.tensor(data, requires_grad=True)
    compiled = bp.compile(lambda: step(compiled_x))
    for _ in range(4):
        step(eager_x)
        compiled()
        np.testing.assert_array_equal(compiled_x.grad, eager_x.grad)
    assert compiled.replays >= 2, f"the step should replay, got {compiled.replays} replays"


# ---------------------------------------------------------------- import cost


def test_import_is_light():
    code = "import sys, bpcore; assert 'matplotlib' not in sys.modules and 'ipywidgets' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_gradients_summed_from_many_uses_do_not_disturb_what_hooks_saw():
    x = bp.tensor(np.arange(4.0), requires_grad=True)
    h = x * 2
    seen = []
    h.register_hook(lambda g: seen.append(g))
    parts = [h[0:2].sum() * 1.0, h[1:3].sum() * 2.0, h[2:4].sum() * 3.0, h.sum() * 4.0]  # four uses of h
    (parts[0] + parts[1] + parts[2] + parts[3]).backward()
    expected_h = np.array([1 + 4, 1 + 2 + 4, 2 + 3 + 4, 3 + 4.0])
    np.testing.assert_array_equal(seen[0], expected_h)
    np.testing.assert_array_equal(x.grad, 2 * expected_h)
    (parts[0] + parts[1] + parts[2] + parts[3]).backward()  # a second pass sums afresh
    np.testing.assert_array_equal(seen[0], expected_h)
    np.testing.assert_array_equal(seen[1], expected_h)
