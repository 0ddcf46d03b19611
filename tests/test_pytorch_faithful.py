"""What a PyTorch user types does what it does in PyTorch: the silent traps, pinned down.

Each expected value is PyTorch's documented behaviour, derived by hand in the test (PyTorch is not
a test dependency).
"""

import warnings

import numpy as np
import pytest

import bpcore as bp

F = bp.nn.functional


# ---------------------------------------------------------------- transpose swaps two dims; permute reorders


def test_transpose_swaps_two_dims_as_in_pytorch():
    x = bp.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(x.transpose(0, 1).data, x.data.T)  # numpy's meaning would return x unchanged
    np.testing.assert_array_equal(x.transpose(1, 0).data, x.data.T)
    y = bp.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert y.transpose(0, 2).shape == (4, 3, 2) and y.transpose(-1, -2).shape == (2, 4, 3)
    assert bp.transpose(y, 0, 1).shape == (3, 2, 4)
    assert y.mT.shape == (2, 4, 3) and y.T.shape == (4, 3, 2)
    assert x.t().shape == (3, 2)
    with pytest.raises(bp.ShapeError, match="at most 2 dims"):
        y.t()
    with pytest.raises(IndexError, match="dim 3 is out of range"):
        y.transpose(0, 3)


def test_permute_with_negative_dims_has_the_right_gradient():
    weights = np.arange(24.0).reshape(3, 4, 2)
    x = bp.tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    (x.permute(1, -1, 0) * weights).sum().backward()
    np.testing.assert_array_equal(x.grad, weights.transpose(2, 0, 1))  # the inverse permutation, normalised
    assert bp.gradcheck(lambda t: (t.permute(-2, 2, 0) * weights).sum(), x)


def test_a_permutation_of_the_wrong_length_says_what_is_wrong():
    x = bp.tensor(np.zeros((2, 3, 4)))
    with pytest.raises(bp.ShapeError, match=r"dims \(0, 1\) are not a permutation of the 3 dims"):
        x.permute(0, 1)
    with pytest.raises(bp.ShapeError, match="exactly once"):
        x.permute(0, 0, 1)


# ---------------------------------------------------------------- in-place arithmetic changes the tensor


def test_an_update_in_no_grad_changes_the_parameter_and_the_loss_falls():
    w = bp.tensor([1.0, -2.0], requires_grad=True)
    params = [w]
    losses = []
    for _ in range(5):
        loss = (w * w).sum()
        losses.append(loss.item())
        w.grad = None
        loss.backward()
        with bp.no_grad():
            for p in params:
                p -= 0.1 * p.grad  # rebinding the loop variable would leave w unchanged
    assert losses[-1] < 0.2 * losses[0]
    np.testing.assert_allclose(w.data, np.array([1.0, -2.0]) * 0.8**5)


@pytest.mark.parametrize("change", ["+=", "-=", "*=", "/=", "zero_", "fill_", "copy_", "setitem"])
def test_a_leaf_that_requires_grad_refuses_in_place_changes_outside_no_grad(change):
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf tensor that requires grad is used in an in-place operation"):
        if change == "zero_":
            w.zero_()
        elif change == "fill_":
            w.fill_(3.0)
        elif change == "copy_":
            w.copy_(np.ones(2))
        elif change == "setitem":
            w[0] = 5.0
        else:
            exec(f"w {change} 2.0")
    np.testing.assert_array_equal(w.data, [1.0, 2.0])  # nothing happened


def test_in_place_methods_change_the_data_and_share_it():
    x = bp.tensor([1.0, 2.0, 3.0])
    alias = x
    x += 1
    x *= 2
    assert alias is x
    np.testing.assert_array_equal(x.data, [4.0, 6.0, 8.0])
    x[1] = 0.0
    np.testing.assert_array_equal(x.data, [4.0, 0.0, 8.0])
    x.copy_([1.0, 1.0, 1.0])
    np.testing.assert_array_equal(x.data, [1.0, 1.0, 1.0])
    x.fill_(7.0)
    np.testing.assert_array_equal(x.data, [7.0, 7.0, 7.0])
    assert x.zero_() is x and not x.data.any()
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    with bp.no_grad():
        w[0] += 5.0  # the finite-difference idiom
    np.testing.assert_array_equal(w.data, [6.0, 2.0])


def test_in_place_arithmetic_inside_the_graph_is_differentiated():
    a = bp.tensor([1.0, 2.0], requires_grad=True)
    h = a * 2
    h += a  # h = 3a
    h *= a  # h = 3a^2
    h.sum().backward()
    np.testing.assert_allclose(a.grad, 6 * a.data)
    b = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = b * 1
    d[1] = b[0] * 10
    d.sum().backward()
    np.testing.assert_allclose(b.grad, [11.0, 0.0, 1.0])  # b1 was overwritten; b0 is used twice


def test_changing_a_saved_tensor_in_place_makes_backward_refuse():
    x = bp.tensor([1.0, 2.0])
    w = bp.tensor([3.0, 4.0], requires_grad=True)
    y = (x * w).sum()  # mul's gradient for w is x: it was read here
    x += 1
    with pytest.raises(RuntimeError, match=r"backward through 'mul'.*input 0.*modified by an in-place operation"):
        y.backward()
    t = w.tanh()  # tanh's gradient reads its own output
    with bp.no_grad():
        t *= 2
    with pytest.raises(RuntimeError, match=r"'tanh'.*its output"):
        t.sum().backward()
    v = bp.tensor([1.0, 2.0], requires_grad=True)
    z = (v * v).sum()
    v.detach().zero_()  # detach shares the data, and so the record of changes
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.backward()


def test_changes_after_backward_or_to_other_tensors_do_not_get_in_the_way():
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with bp.no_grad():
        w -= 0.5 * w.grad
    other = bp.tensor([5.0])
    other += 1
    loss = (w * w).sum()  # a new graph after the change: fine
    w.grad = None
    loss.backward()
    np.testing.assert_allclose(w.grad, 2 * w.data)


def test_clone_copies_and_stays_in_the_graph():
    a = bp.tensor([1.0, 2.0], requires_grad=True)
    c = a.clone()
    assert c.data is not a.data and c.op == "clone"
    (c * 3).sum().backward()
    np.testing.assert_array_equal(a.grad, [3.0, 3.0])


# ---------------------------------------------------------------- one generator for everything random


def test_manual_seed_makes_randn_rand_and_randint_reproducible():
    bp.manual_seed(0)
    first = (bp.randn(2, 3).data, bp.rand(4).data, bp.randint(0, 10, (5,)).data, bp.nn.Linear(3, 2).weight.data)
    bp.manual_seed(0)
    again = (bp.randn(2, 3).data, bp.rand(4).data, bp.randint(0, 10, (5,)).data, bp.nn.Linear(3, 2).weight.data)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert bp.randint(3, size=4).dtype == np.int64 and bp.randint(3, size=4).data.max() < 3
    bp.manual_seed(1)
    assert not np.array_equal(bp.randn(2, 3).data, first[0])


# ---------------------------------------------------------------- integer data stays integer


def test_integer_labels_as_a_tensor_work_with_cross_entropy():
    labels = bp.tensor([0, 2, 1])
    assert labels.dtype == np.int64
    logits = bp.tensor(np.zeros((3, 3)), requires_grad=True)
    loss = F.cross_entropy(logits, labels)
    assert loss.item() == pytest.approx(np.log(3))


# ---------------------------------------------------------------- the peer suite's cases


def test_the_gradient_of_x_to_the_zero_at_zero_is_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = bp.tensor([0.0, 2.0], requires_grad=True)
        (x**0).sum().backward()
        np.testing.assert_array_equal(x.grad, [0.0, 0.0])
        x = bp.tensor([0.0, 2.0], requires_grad=True)
        e = bp.tensor([0.0, 0.0], requires_grad=True)
        (x**e).sum().backward()
        np.testing.assert_array_equal(x.grad, [0.0, 0.0])
        np.testing.assert_allclose(e.grad, [0.0, np.log(2.0)])  # d/de x^e = x^e ln x, taken as 0 at x = 0


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("dim", [0, -1])
def test_a_0d_tensor_reduces_along_dim_0_or_minus_1(reduce, dim):
    s = bp.tensor(3.0, requires_grad=True)
    y = getattr(s, reduce)(axis=dim)
    y.backward()
    assert y.item() == 3.0 and s.grad == 1.0
    with pytest.raises(IndexError, match="0-d tensor"):
        getattr(s, reduce)(axis=1)


def test_too_few_values_for_an_unbiased_variance_give_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(bp.tensor(np.zeros((0, 3))).var(axis=0, unbiased=True).data).all()  # was -0.0
        assert np.isnan(bp.tensor([1.0]).var(unbiased=True).item())
        assert np.isnan(bp.tensor(np.zeros((0, 2))).mean(axis=0).data).all()


# ---------------------------------------------------------------- the names and keywords people type


def test_dim_and_keepdim_are_accepted_beside_axis_and_keepdims():
    data = np.arange(6.0).reshape(2, 3)
    x = bp.tensor(data)
    np.testing.assert_array_equal(x.sum(dim=1, keepdim=True).data, data.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(x.sum(1).data, data.sum(axis=1))
    np.testing.assert_array_equal(x.mean(dim=0).data, data.mean(axis=0))
    np.testing.assert_array_equal(x.mean(axis=0, keepdims=True).data, data.mean(axis=0, keepdims=True))
    np.testing.assert_allclose(x.softmax(dim=0).data.sum(axis=0), 1.0)
    np.testing.assert_allclose(np.exp(x.log_softmax(dim=1).data).sum(axis=1), 1.0)
    assert bp.cat([x, x], dim=1).shape == (2, 6) and bp.stack([x, x], dim=2).shape == (2, 3, 2)
    with pytest.raises(TypeError, match="not both"):
        x.sum(dim=0, axis=1)


def test_max_along_a_dim_gives_values_and_indices():
    x = bp.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], requires_grad=True)
    values, indices = x.max(dim=1)
    np.testing.assert_array_equal(values.data, [5.0, 7.0])
    np.testing.assert_array_equal(indices.data, [1, 0])  # the first of a tie, as on PyTorch's CPU
    assert x.max(1).values.shape == (2,) and x.min(dim=0).indices.data.tolist() == [0, 1, 0]
    assert x.max(axis=1).shape == (2,)  # numpy's spelling: the values alone
    assert x.max().item() == 7.0 and x.argmax().item() == 3 and x.argmin(dim=1).data.tolist() == [0, 1]
    values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # all to the returned index
    assert x.max(1, keepdims=True).indices.shape == (2, 1)
    top, where = bp.max(x, 1)  # the function form too, so unpacking never walks the rows
    np.testing.assert_array_equal(where.data, [1, 0])
    np.testing.assert_array_equal(top.data, [5.0, 7.0])
    np.testing.assert_array_equal(bp.max(x, bp.tensor([[6.0, 0.0, 0.0]])).data, [[6.0, 5.0, 2.0], [7.0, 0.0, 7.0]])


def test_sizes_and_conversions():
    x = bp.tensor(np.zeros((2, 3)))
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3 and x.numel() == 6 and x.dim() == 2
    assert x.size == 6  # numpy's attribute still reads
    assert x.float().dtype == np.float32 and x.double().dtype == np.float64
    assert x.long().dtype == np.int64 and x.int().dtype == np.int32
    assert x.to(bp.float32).dtype == np.float32 and x.to("cpu") is x
    with pytest.raises(RuntimeError, match="CPU only"):
        x.to("cuda")
    assert x.tolist() == [[0.0] * 3] * 2
    array = np.ones(3)
    shared = bp.from_numpy(array)
    array[0] = 5.0
    assert shared.data[0] == 5.0


# ---------------------------------------------------------------- found by a second reader, against PyTorch


def test_in_place_with_itself_as_the_operand():
    a = bp.tensor([1.0, 2.0], requires_grad=True)
    y = a * 2
    y *= y  # y = 4 a^2
    y.sum().backward()
    np.testing.assert_allclose(a.grad, 8 * a.data)
    a.grad = None
    y = a * 2
    y += y  # y = 4 a
    (y * y).sum().backward()
    np.testing.assert_allclose(a.grad, 32 * a.data)
    a.grad = None
    y = a * 2
    y.copy_(y)
    (y * y).sum().backward()
    np.testing.assert_allclose(a.grad, 8 * a.data)


def test_writes_through_a_view_are_seen_by_backward():
    w = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    with bp.no_grad():
        w.view(-1).zero_()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()
    x, v = bp.tensor([1.0, 2.0, 3.0]), bp.tensor([1.0, 1.0, 1.0], requires_grad=True)
    loss = (x.view(3) * v).sum()
    x += 100
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()
    loss = (x * v).sum()
    x[1:].fill_(0.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


def test_indices_and_masks_changed_after_use_do_not_change_the_gradient():
    x = bp.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    idx = bp.tensor([[0], [1]])
    y = x.gather(1, idx)
    idx.zero_()
    (y * bp.tensor([[1.0], [10.0]])).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0], [0.0, 10.0]])
    m = bp.tensor([True, False])
    z = bp.tensor([1.0, 2.0], requires_grad=True)
    out = z.masked_fill(m, 0.0).sum() + bp.where(m, z, 0.0).sum()
    m.fill_(False)
    out.backward()
    np.testing.assert_array_equal(z.grad, [1.0, 1.0])


def test_fill_zero_and_copy_inside_a_graph():
    v = bp.tensor(3.0, requires_grad=True)
    z = bp.zeros(2)
    z.fill_(v)
    ((z * bp.tensor([1.0, 2.0])).sum() + v * v).backward()
    assert v.grad == 9.0  # 1 + 2 through the fill, 6 through v * v
    a = bp.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(divide="ignore"):
        y = a.log()  # -inf at 0
    y.fill_(2.0)
    np.testing.assert_array_equal(y.data, [2.0, 2.0])  # not NaN
    with np.errstate(over="ignore"):
        big = bp.tensor([1000.0, 1.0], requires_grad=True).exp()  # inf
    np.testing.assert_array_equal(big.zero_().data, [0.0, 0.0])
    with pytest.raises(RuntimeError, match="0-d tensor"):
        bp.zeros(2).fill_(bp.tensor([1.0, 2.0]))
    f32 = bp.tensor(np.zeros(2, dtype=np.float32))
    f32.copy_(bp.tensor([1.0, 2.0], requires_grad=True))
    assert f32.dtype == np.float32


def test_an_element_is_a_view_and_a_view_in_the_graph_refuses_in_place():
    w = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    m = bp.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    with bp.no_grad():
        w[0].zero_()
        m[1, 0].fill_(9.0)
    np.testing.assert_array_equal(w.data, [0.0, 2.0, 3.0])
    np.testing.assert_array_equal(m.data, [[1.0, 2.0], [9.0, 4.0]])
    x = w * 1
    with pytest.raises(RuntimeError, match="on a view"):
        x[0].zero_()
    with pytest.raises(RuntimeError, match="on a view"):
        v = x.view(3)
        v += 1
    x[0] = 5.0  # on the tensor itself: fine
    assert x.data[0] == 5.0


def test_flip_copies_and_integer_casts_cut_the_graph():
    x = bp.tensor([1.0, 2.0, 3.0])
    y = x.flip(0)
    y[0] = 99.0
    np.testing.assert_array_equal(x.data, [1.0, 2.0, 3.0])
    a = bp.tensor([1.5, 2.5], requires_grad=True)
    assert not a.long().requires_grad and a.long().dtype == np.int64
    ((bp.tensor([2.0, 3.0]) * a.long()).sum() + a.sum()).backward()
    np.testing.assert_array_equal(a.grad, [1.0, 1.0])
    assert a.double().requires_grad


def test_randint_with_high_and_size_as_in_torch():
    sample = bp.randint(10, (32,))
    assert sample.shape == (32,) and sample.data.min() >= 0 and sample.data.max() < 10
    with pytest.raises(TypeError, match="floating-point"):
        bp.randn(2, dtype=np.int64)


def test_gather_takes_the_index_shape_and_checks_its_range():
    x = bp.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    picked = x.gather(1, np.array([[3, 1]]))
    np.testing.assert_array_equal(picked.data, [[3.0, 1.0]])
    picked.sum().backward()
    assert x.grad.sum() == 2.0
    assert x.gather(0, np.array([[2], [0]])).data.ravel().tolist() == [8.0, 0.0]
    with pytest.raises(IndexError, match=r"\[0, 3\]"):
        x.gather(1, np.array([[-1]]))


def test_std_of_a_constant_slice_and_a_tensor_fill_value():
    c = bp.tensor([[2.0, 2.0, 2.0]], requires_grad=True)
    c.std(1).sum().backward()
    np.testing.assert_array_equal(c.grad, [[0.0, 0.0, 0.0]])
    assert bp.gradcheck(lambda t: t.std(dim=1, unbiased=True).sum(), np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]]))
    v = bp.tensor(2.0, requires_grad=True)
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x.masked_fill(np.array([True, False, True]), v).sum().backward()
    assert v.grad == 2.0 and x.grad.tolist() == [0.0, 1.0, 0.0]


def test_zero_d_tensors_take_dims_0_and_minus_1_in_shape_ops():
    s = bp.tensor(3.0)
    assert s.squeeze(-1).shape == () and s.flip(0).shape == () and s.unsqueeze(0).shape == (1,)
    with pytest.raises(bp.ShapeError, match="at least 2 dims"):
        bp.tensor([1.0, 2.0]).tril()
    with pytest.raises(ValueError, match="comes after"):
        bp.tensor(np.zeros((2, 3, 4))).flatten(2, 1)


def test_var_and_std_divide_by_n_minus_1_as_in_pytorch():
    data = np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]])
    x = bp.tensor(data)
    np.testing.assert_allclose(x.var().item(), data.var(ddof=1))
    np.testing.assert_allclose(x.var(dim=1).data, data.var(axis=1, ddof=1))
    np.testing.assert_allclose(x.var(1, unbiased=False).data, data.var(axis=1))
    np.testing.assert_allclose(x.std(0, correction=0).data, data.std(axis=0))
    np.testing.assert_allclose(bp.std(x).item(), data.std(ddof=1))
    bn = bp.nn.BatchNorm1d(3)
    out = bn(x)  # normalisation itself uses the batch variance (divides by n), as PyTorch's BatchNorm
    np.testing.assert_allclose(out.data, (data - data.mean(0)) / np.sqrt(data.var(0) + bn.eps), rtol=1e-12)
