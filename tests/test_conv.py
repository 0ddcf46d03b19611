"""Convolution and pooling proven correct, and a CNN proven useful.

Every vectorised op is compared with its definition written as plain loops (``conv_reference``)
to 1e-12, and every gradient with float64 central differences (``bp.gradcheck``). The formula
the docstrings teach for the input gradient (a full convolution with the flipped kernel) is
checked too, and so is the split of the weight gradient into per-position contributions (notebook 07's lab).
"""

import math

import conv_reference as ref
import numpy as np
import pytest

import bpcore as bp
from bpcore.labs.beyond import digits_cnn, filter_gradient_contributions
from bpcore.nn.conv import (
    AvgPool2d,
    Conv2d,
    MaxPool2d,
    avg_pool2d,
    conv2d,
    max_pool2d,
)

F = bp.nn.functional

# (x shape (N, C_in, H, W), C_out, kernel, stride, padding): square and non-square kernels,
# strides that do and do not divide the input (leftover rows get no gradient), 1x1 kernels,
# a kernel as large as the padded input, and stride 2 with padding.
CONV_CASES = [
    ((2, 3, 5, 6), 2, (3, 3), (1, 1), (0, 0)),
    ((2, 2, 5, 5), 3, (2, 3), (1, 1), (1, 1)),
    ((2, 3, 7, 6), 2, (3, 2), (2, 2), (1, 1)),
    ((1, 2, 6, 7), 2, (3, 3), (2, 1), (0, 2)),
    ((2, 2, 7, 8), 3, (2, 2), (3, 3), (0, 0)),
    ((2, 4, 4, 5), 3, (1, 1), (1, 1), (0, 0)),
    ((2, 1, 3, 4), 2, (5, 6), (1, 1), (1, 1)),
]
CASE_IDS = [f"k{k[0]}x{k[1]}-s{s[0]}{s[1]}-p{p[0]}{p[1]}" for _, _, k, s, p in CONV_CASES]

# (x shape, kernel, stride): side-by-side windows, overlapping windows, non-square, leftovers
POOL_CASES = [
    ((2, 3, 4, 6), (2, 2), (2, 2)),
    ((1, 2, 5, 5), (3, 3), (1, 1)),
    ((2, 2, 7, 6), (3, 3), (2, 2)),
    ((2, 1, 5, 7), (2, 3), (1, 2)),
    ((1, 2, 5, 5), (2, 2), (2, 2)),
]
POOL_IDS = [f"{x[2]}x{x[3]}-k{k[0]}x{k[1]}-s{s[0]}{s[1]}" for x, k, s in POOL_CASES]


def conv_inputs(x_shape, c_out, kernel, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    weight = rng.standard_normal((c_out, x_shape[1], *kernel))
    bias = rng.standard_normal(c_out)
    return x, weight, bias


def distinct_values(shape, seed=0):
    """Values at least 0.01 apart, so a gradcheck step (1e-6) never changes which element is the max."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(math.prod(shape)) * 0.01 - 1.0).reshape(shape)


def assert_gradcheck(fn, *inputs):
    report = bp.gradcheck(fn, *inputs)
    assert report, str(report)


def close(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)


def conv_with_grads(x, weight, bias, stride, padding, g):
    """(y, dx, dW, db) from bpcore, for upstream gradient g."""
    tensors = [bp.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    y = conv2d(*tensors, stride=stride, padding=padding)
    y.backward(g)
    return (y.data, *(t.grad for t in tensors))


# ============================================================================ conv2d


@pytest.mark.parametrize(("x_shape", "c_out", "kernel", "stride", "padding"), CONV_CASES, ids=CASE_IDS)
def test_conv2d_forward_and_gradients_equal_the_loops(x_shape, c_out, kernel, stride, padding):
    x, weight, bias = conv_inputs(x_shape, c_out, kernel)
    y_loop = ref.conv2d_forward(x, weight, bias, stride, padding)
    g = np.random.default_rng(1).standard_normal(y_loop.shape)
    y, dx, dw, db = conv_with_grads(x, weight, bias, stride, padding, g)
    dx_loop, dw_loop, db_loop = ref.conv2d_backward(x, weight, g, stride, padding)
    close(y, y_loop)
    close(dx, dx_loop)
    close(dw, dw_loop)
    close(db, db_loop)


@pytest.mark.parametrize(("x_shape", "c_out", "kernel", "stride", "padding"), CONV_CASES, ids=CASE_IDS)
def test_conv2d_gradcheck(x_shape, c_out, kernel, stride, padding):
    x, weight, bias = conv_inputs(x_shape, c_out, kernel)
    assert_gradcheck(lambda x, w, b: conv2d(x, w, b, stride=stride, padding=padding), x, weight, bias)


def test_conv2d_without_bias_and_with_integer_settings():
    x, weight, _ = conv_inputs((2, 3, 6, 6), 4, (3, 3))
    y = conv2d(bp.tensor(x), bp.tensor(weight), stride=2, padding=1)
    close(y.data, ref.conv2d_forward(x, weight, None, (2, 2), (1, 1)))
    assert y.shape == (2, 4, 3, 3)  # (6 + 2 - 3) // 2 + 1 = 3


def full_convolution_input_grad(g, weight, x_shape, stride, padding):
    """dL/dx as the docstring derives it: put stride-1 zeros between g's entries, pad by k-1, and
    correlate with the kernel flipped in both directions and its channel axes swapped."""
    n, c_out, out_h, out_w = g.shape
    kh, kw = weight.shape[2:]
    (sh, sw), (ph, pw) = stride, padding
    dilated = np.zeros((n, c_out, (out_h - 1) * sh + 1, (out_w - 1) * sw + 1))
    dilated[:, :, ::sh, ::sw] = g
    # rows and columns of the padded input that no window reached (stride leftovers) get zeros
    left_h = x_shape[2] + 2 * ph - ((out_h - 1) * sh + kh)
    left_w = x_shape[3] + 2 * pw - ((out_w - 1) * sw + kw)
    full = np.pad(dilated, ((0, 0), (0, 0), (kh - 1, kh - 1 + left_h), (kw - 1, kw - 1 + left_w)))
    flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in, C_out, kh, kw)
    dx_pad = conv2d(bp.tensor(full), bp.tensor(np.ascontiguousarray(flipped))).data
    return dx_pad[:, :, ph : ph + x_shape[2], pw : pw + x_shape[3]]


@pytest.mark.parametrize(("x_shape", "c_out", "kernel", "stride", "padding"), CONV_CASES, ids=CASE_IDS)
def test_input_gradient_is_the_full_convolution_with_the_flipped_kernel(x_shape, c_out, kernel, stride, padding):
    x, weight, bias = conv_inputs(x_shape, c_out, kernel)
    g = np.random.default_rng(1).standard_normal(ref.conv2d_forward(x, weight, bias, stride, padding).shape)
    _, dx, _, _ = conv_with_grads(x, weight, bias, stride, padding, g)
    close(dx, full_convolution_input_grad(g, weight, x_shape, stride, padding))


def test_op_by_op_gradcheck_locates_nothing_wrong_in_a_conv_stack():
    x, weight, bias = conv_inputs((2, 2, 6, 6), 3, (3, 3))
    report = bp.gradcheck(
        lambda x, w, b: avg_pool2d(conv2d(x, w, b, padding=1).tanh(), 2), x, 0.2 * weight, bias, localize=True
    )
    assert report and report.first_bad_node is None, str(report)  # the tanh check needs conv2d's output
    # in ordinary (C-contiguous) memory: gradcheck nudges elements through a flat view of it


def test_only_inputs_that_need_a_gradient_get_one():
    x, weight, bias = conv_inputs((2, 1, 5, 5), 2, (3, 3))
    w = bp.tensor(weight, requires_grad=True)
    conv2d(bp.tensor(x), w, bp.tensor(bias)).sum().backward()  # x and bias are data here
    close(w.grad, ref.conv2d_backward(x, weight, np.ones((2, 2, 3, 3)), (1, 1), (0, 0))[1])
    with bp.no_grad():
        assert not conv2d(x, w).requires_grad


# ============================================================================ parameter sharing






# ============================================================================ pooling


@pytest.mark.parametrize(("x_shape", "kernel", "stride"), POOL_CASES, ids=POOL_IDS)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_forward_and_gradient_equal_the_loops(kind, x_shape, kernel, stride):
    pool = max_pool2d if kind == "max" else avg_pool2d
    forward = ref.max_pool2d_forward if kind == "max" else ref.avg_pool2d_forward
    backward = ref.max_pool2d_backward if kind == "max" else ref.avg_pool2d_backward
    x = bp.tensor(np.random.default_rng(0).standard_normal(x_shape), requires_grad=True)
    y = pool(x, kernel, stride)
    g = np.random.default_rng(1).standard_normal(y.shape)
    y.backward(g)
    close(y.data, forward(x.data, kernel, stride))
    close(x.grad, backward(x.data, g, kernel, stride))


@pytest.mark.parametrize(("x_shape", "kernel", "stride"), POOL_CASES, ids=POOL_IDS)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_gradcheck(kind, x_shape, kernel, stride):
    pool = max_pool2d if kind == "max" else avg_pool2d
    assert_gradcheck(lambda x: pool(x, kernel, stride), distinct_values(x_shape))


def test_max_pool_ties_send_the_gradient_to_the_first_max_in_reading_order():
    x = bp.tensor(
        [[[[1.0, 3.0, 5.0, 5.0], [3.0, 0.0, 5.0, 5.0]]]], requires_grad=True
    )  # window 1: 3 at (0, 1) and (1, 0); window 2: all four equal
    max_pool2d(x, 2).backward(np.array([[[[10.0, 20.0]]]]))
    np.testing.assert_array_equal(x.grad, [[[[0.0, 10.0, 20.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])


def test_overlapping_windows_add_their_gradients():
    x = bp.tensor(np.array([[[[0.0, 1.0, 9.0, 2.0, 0.0]]]]), requires_grad=True)
    max_pool2d(x, (1, 3), stride=1).sum().backward()  # the 9 wins all three windows
    np.testing.assert_array_equal(x.grad, [[[[0.0, 0.0, 3.0, 0.0, 0.0]]]])


def test_pool_stride_defaults_to_the_kernel_size():
    x = np.arange(2 * 3 * 6 * 4, dtype=np.float64).reshape(2, 3, 6, 4)
    assert max_pool2d(x, (3, 2)).shape == (2, 3, 2, 2)
    close(avg_pool2d(x, 2).data, ref.avg_pool2d_forward(x, (2, 2), (2, 2)))


# ============================================================================ modules


def test_conv2d_module_names_shapes_and_forward():
    layer = Conv2d(3, 5, (2, 3), stride=2, padding=1)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.weight.shape == (5, 3, 2, 3)
    assert layer.bias.shape == (5,)
    assert layer.kernel_size == (2, 3) and layer.stride == (2, 2) and layer.padding == (1, 1)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7))
    expected = ref.conv2d_forward(x, layer.weight.data, layer.bias.data, (2, 2), (1, 1))
    close(layer(bp.tensor(x)).data, expected)
    assert repr(layer) == "Conv2d(3, 5, kernel_size=(2, 3), stride=(2, 2), padding=(1, 1))"
    no_bias = Conv2d(3, 5, 3, bias=False)
    assert [name for name, _ in no_bias.named_parameters()] == ["weight"]
    assert no_bias.bias is None
    assert repr(no_bias) == "Conv2d(3, 5, kernel_size=(3, 3), stride=(1, 1), bias=False)"


def test_conv2d_module_default_init_is_pytorchs():
    layer = Conv2d(16, 32, (3, 5), rng=np.random.default_rng(0))
    bound = 1 / math.sqrt(16 * 3 * 5)  # kaiming_uniform_(a=sqrt(5)) gives 1/sqrt(fan_in), as does the bias rule
    w, b = layer.weight.data, layer.bias.data
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.99 * bound  # 7,680 draws fill the interval
    # a uniform(-a, a) has variance a^2 / 3; its sample variance over n draws has relative sd sqrt(0.8 / n)
    assert abs(w.var() / (bound**2 / 3) - 1) < 5 * math.sqrt(0.8 / w.size)
    same = Conv2d(16, 32, (3, 5), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(same.weight.data, w)


def test_pooling_modules():
    x = bp.tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)))
    for module, fn in [(MaxPool2d(2), max_pool2d), (AvgPool2d(3, stride=1), avg_pool2d)]:
        assert list(module.parameters()) == []
        close(module(x).data, fn(x, module.kernel_size, module.stride).data)
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2)"
    assert AvgPool2d(3, stride=1)(x).shape == (2, 3, 4, 4)


# ============================================================================ errors


def test_errors_name_what_was_expected_and_what_arrived():
    x, weight, _ = conv_inputs((2, 3, 5, 5), 4, (3, 3))
    with pytest.raises(bp.ShapeError, match=r"input has 2 channels .*weight expects 3"):
        conv2d(x[:, :2], weight)
    with pytest.raises(bp.ShapeError, match=r"kernel \(3x3\) is larger than the padded input \(2x7"):
        conv2d(x[:, :, :2], weight, padding=(0, 1))
    with pytest.raises(bp.ShapeError, match=r"\(N, C_in, H, W\), got shape \(2, 75\).*reshape"):
        conv2d(x.reshape(2, -1), weight)
    with pytest.raises(bp.ShapeError, match=r"bias has shape \(3,\), expected \(4,\)"):
        conv2d(x, weight, np.zeros(3))
    with pytest.raises(bp.ShapeError, match=r"weight of shape \(C_out, C_in, kh, kw\), got shape \(4, 27\)"):
        conv2d(x, weight.reshape(4, -1))
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        conv2d(x, weight, stride=0)
    with pytest.raises(ValueError, match="padding must be an integer >= 0"):
        conv2d(x, weight, padding=-1)
    with pytest.raises(bp.ShapeError, match=r"pooling window \(3x3\) is larger than the padded input \(2x2"):
        max_pool2d(np.zeros((1, 1, 2, 2)), 3)
    with pytest.raises(bp.ShapeError, match=r"avg_pool2d expects an input of shape \(N, C, H, W\), got shape \(4, 4\)"):
        avg_pool2d(np.zeros((4, 4)), 2)
    with pytest.raises(ValueError, match="kernel_size must be"):
        MaxPool2d((2, 2, 2))
    layer = Conv2d(1, 8, 3)
    with pytest.raises(bp.ShapeError, match=r"input has 3 channels \(shape \(2, 3, 5, 5\)"):
        layer(bp.tensor(x))


# ============================================================================ dtypes


def test_float32_stays_float32():
    x, weight, bias = (a.astype(np.float32) for a in conv_inputs((2, 3, 6, 6), 4, (3, 3)))
    tensors = [bp.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    y = conv2d(*tensors, stride=2, padding=1)
    pooled = max_pool2d(y, 2) + avg_pool2d(y, 2)
    assert y.dtype == np.float32 and pooled.dtype == np.float32
    pooled.sum().backward()
    assert all(t.grad.dtype == np.float32 for t in tensors)
    model = digits_cnn().to(np.float32)
    out = model(bp.tensor(np.zeros((2, 1, 8, 8), dtype=np.float32)))
    assert out.dtype == np.float32 and out.shape == (2, 10)


# ============================================================================ the CNN earns its keep






# ============================================================================ PyTorch, when installed


@pytest.mark.parametrize(("stride", "padding"), [((1, 1), (0, 0)), ((2, 1), (1, 2))])
def test_filter_gradient_contributions_sum_to_the_weight_gradient(stride, padding):
    x, weight, bias = conv_inputs((3, 2, 6, 7), 4, (3, 2))
    y_shape = ref.conv2d_forward(x, weight, bias, stride, padding).shape
    g = np.random.default_rng(1).standard_normal(y_shape)
    _, _, dw, _ = conv_with_grads(x, weight, bias, stride, padding, g)
    contributions = filter_gradient_contributions(x, weight, g, stride=stride, padding=padding)
    assert contributions.shape == (*y_shape[2:], *weight.shape)  # (out_h, out_w, C_out, C_in, kh, kw)
    close(contributions.sum(axis=(0, 1)), dw)
    # one term on its own: position (1, 0) adds g[n, o, 1, 0] times the patch it saw, over the batch
    sh, (ph, pw) = stride[0], padding
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    patch = x_pad[:, :, sh : sh + 3, 0:2]  # (N, C_in, kh, kw) at i=1, j=0
    close(contributions[1, 0], np.einsum("no,ncpq->ocpq", g[:, :, 1, 0], patch))


def test_filter_gradient_contributions_takes_tensors_and_checks_the_upstream_shape():
    x, weight, _ = conv_inputs((2, 1, 5, 5), 2, (3, 3))
    g = np.ones((2, 2, 3, 3))
    assert filter_gradient_contributions(bp.tensor(x), bp.tensor(weight), bp.tensor(g)).shape == (3, 3, 2, 1, 3, 3)
    with pytest.raises(bp.ShapeError, match=r"upstream has shape \(2, 2, 5, 5\), expected \(2, 2, 3, 3\)"):
        filter_gradient_contributions(x, weight, np.ones((2, 2, 5, 5)))
