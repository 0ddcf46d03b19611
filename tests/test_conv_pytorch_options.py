"""Conv2d's ``dilation=`` and ``groups=``, pooling's ``padding=``, ConvTranspose2d and Conv1d, as PyTorch.

Each forward pass is compared with its definition written below as plain loops, one multiply-add
at a time; each gradient with float64 central differences over hypothesis-drawn shapes, strides,
paddings, dilations and groups. The transposed convolution is checked to be conv2d's adjoint:
<conv2d(z, W), y> = <z, conv_transpose2d(y, W)>.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpcore as bp

F = bp.nn.functional
nn = bp.nn
SETTINGS = settings(max_examples=15, deadline=None)


# ============================================================================ the definitions, as loops


def pad_with(x, ph, pw, fill=0.0):
    n, c, h, w = x.shape
    out = np.full((n, c, h + 2 * ph, w + 2 * pw), fill)
    for i in range(h):
        for j in range(w):
            out[:, :, ph + i, pw + j] = x[:, :, i, j]
    return out


def conv2d_loops(x, weight, bias, stride, padding, dilation, groups):
    """y[n, o, i, j] = b[o] + sum_{c, p, q} x_pad[n, g c_in + c, i sh + p dh, j sw + q dw] W[o, c, p, q],
    g the group of output channel o."""
    n_batch, _, h, w = x.shape
    c_out, c_group, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    x_pad = pad_with(x, ph, pw)
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    per_group_out = c_out // groups
    y = np.zeros((n_batch, c_out, out_h, out_w))
    for n in range(n_batch):
        for o in range(c_out):
            first = (o // per_group_out) * c_group
            for i in range(out_h):
                for j in range(out_w):
                    total = 0.0 if bias is None else bias[o]
                    for c in range(c_group):
                        for p in range(kh):
                            for q in range(kw):
                                total += x_pad[n, first + c, i * sh + p * dh, j * sw + q * dw] * weight[o, c, p, q]
                    y[n, o, i, j] = total
    return y


def conv_transpose2d_loops(x, weight, bias, stride, padding, output_padding, dilation, groups):
    """Each input pixel x[n, c, i, j] spreads x W[c, o, :, :] onto the output at
    (i sh + p dh - ph, j sw + q dw - pw)."""
    n_batch, c_in, h, w = x.shape
    _, per_group_out, kh, kw = weight.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    full = np.zeros((n_batch, per_group_out * groups, (h - 1) * sh + dh * (kh - 1) + 1 + oph,
                     (w - 1) * sw + dw * (kw - 1) + 1 + opw))
    per_group_in = c_in // groups
    for n in range(n_batch):
        for c in range(c_in):
            first = (c // per_group_in) * per_group_out
            for i in range(h):
                for j in range(w):
                    for o in range(per_group_out):
                        for p in range(kh):
                            for q in range(kw):
                                spread = x[n, c, i, j] * weight[c, o, p, q]
                                full[n, first + o, i * sh + p * dh, j * sw + q * dw] += spread
    out_h = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    out_w = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    y = full[:, :, ph : ph + out_h, pw : pw + out_w]
    return y if bias is None else y + bias[None, :, None, None]


def pool_loops(x, kernel, stride, padding, kind, dilation=(1, 1), count_include_pad=True):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    x_pad = pad_with(x, ph, pw, fill=-math.inf if kind == "max" else 0.0)
    real = pad_with(np.ones((1, 1, *x.shape[2:])), ph, pw)[0, 0]
    out_h = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((*x.shape[:2], out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            rows = [i * sh + p * dh for p in range(kh)]
            cols = [j * sw + q * dw for q in range(kw)]
            window = x_pad[:, :, rows][:, :, :, cols]
            if kind == "max":
                y[:, :, i, j] = window.max(axis=(2, 3))
            else:
                count = kh * kw if count_include_pad else real[np.ix_(rows, cols)].sum()
                y[:, :, i, j] = window.sum(axis=(2, 3)) / count
    return y


# ============================================================================ drawn settings


def span(k, d):
    return d * (k - 1) + 1


@st.composite
def conv_cases(draw, transpose=False):
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    if transpose:
        output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
        size = tuple(draw(st.integers(1, 4)) for _ in range(2))
        for side in range(2):  # the output must not be empty
            while (size[side] - 1) * stride[side] - 2 * padding[side] + span(kernel[side], dilation[side]) < 1:
                size = tuple(n + 1 if s == side else n for s, n in enumerate(size))
        weight_shape = (c_in, c_out // groups, *kernel)
        return dict(x_shape=(draw(st.integers(1, 2)), c_in, *size), weight_shape=weight_shape, bias_shape=(c_out,),
                    stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    size = tuple(max(1, span(k, d) - 2 * p) + draw(st.integers(0, 3))
                 for k, d, p in zip(kernel, dilation, padding, strict=True))
    return dict(x_shape=(draw(st.integers(1, 2)), c_in, *size), weight_shape=(c_out, c_in // groups, *kernel),
                bias_shape=(c_out,), stride=stride, padding=padding, dilation=dilation, groups=groups)


def arrays(case, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(case["x_shape"]), rng.standard_normal(case["weight_shape"]),
            rng.standard_normal(case["bias_shape"]))


def settings_of(case):
    return {k: v for k, v in case.items() if not k.endswith("shape")}


def check(fn, *inputs):
    report = bp.gradcheck(fn, *inputs)
    assert report, str(report)


# ============================================================================ conv2d: dilation and groups


@SETTINGS
@given(case=conv_cases(), seed=st.integers(0, 2**32 - 1))
def test_conv2d_with_dilation_and_groups_equals_the_loops_and_gradchecks(case, seed):
    x, weight, bias = arrays(case, seed)
    s = settings_of(case)
    expected = conv2d_loops(x, weight, bias, s["stride"], s["padding"], s["dilation"], s["groups"])
    got = F.conv2d(bp.tensor(x), bp.tensor(weight), bp.tensor(bias), **s)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)
    check(lambda a, w, b: F.conv2d(a, w, b, **s), x, weight, bias)


def test_depthwise_conv2d_one_filter_set_per_channel():
    rng = np.random.default_rng(0)
    x, weight, bias = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((6, 1, 3, 3)), rng.standard_normal(6)
    layer = nn.Conv2d(3, 6, 3, padding=1, groups=3)
    assert layer.weight.shape == (6, 1, 3, 3)
    y = F.conv2d(bp.tensor(x), bp.tensor(weight), bp.tensor(bias), padding=1, groups=3)
    np.testing.assert_allclose(y.data, conv2d_loops(x, weight, bias, (1, 1), (1, 1), (1, 1), 3), rtol=1e-12)
    for o in range(6):  # output channel o sees input channel o // 2 alone
        alone = F.conv2d(bp.tensor(x[:, o // 2 : o // 2 + 1]), bp.tensor(weight[o : o + 1]), padding=1)
        np.testing.assert_allclose(y.data[:, o], alone.data[:, 0] + bias[o], rtol=1e-12)
    check(lambda a, w: F.conv2d(a, w, padding=1, groups=3, dilation=2), x, weight)


def test_conv2d_module_dilation_groups_shapes_and_init():
    layer = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, rng=np.random.default_rng(0))
    assert layer.weight.shape == (6, 2, 3, 3) and layer.bias.shape == (6,)
    bound = 1 / math.sqrt(2 * 3 * 3)  # fan_in = in_channels / groups * kh * kw, as PyTorch
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert layer(bp.tensor(np.zeros((1, 4, 9, 9)))).shape == (1, 6, 5, 5)  # (9 + 4 - 4 - 1) // 2 + 1
    assert "dilation=(2, 2)" in repr(layer) and "groups=2" in repr(layer)
    with pytest.raises(ValueError, match=r"divisible by groups"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(bp.ShapeError, match=r"input has 3 channels .* weight expects 2 per group"):
        F.conv2d(bp.tensor(np.zeros((1, 3, 5, 5))), bp.tensor(np.zeros((6, 2, 3, 3))), groups=2)
    with pytest.raises(bp.ShapeError, match=r"kernel \(5x5\) is larger"):  # a 3x3 kernel with dilation 2 spans 5
        F.conv2d(bp.tensor(np.zeros((1, 1, 4, 4))), bp.tensor(np.zeros((1, 1, 3, 3))), dilation=2)


# ============================================================================ the transposed convolution


@SETTINGS
@given(case=conv_cases(transpose=True), seed=st.integers(0, 2**32 - 1))
def test_conv_transpose2d_equals_the_loops_and_gradchecks(case, seed):
    x, weight, bias = arrays(case, seed)
    s = settings_of(case)
    expected = conv_transpose2d_loops(x, weight, bias, s["stride"], s["padding"], s["output_padding"],
                                      s["dilation"], s["groups"])
    got = F.conv_transpose2d(bp.tensor(x), bp.tensor(weight), bp.tensor(bias), **s)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)
    check(lambda a, w, b: F.conv_transpose2d(a, w, b, **s), x, weight, bias)


@SETTINGS
@given(case=conv_cases(transpose=True), seed=st.integers(0, 2**32 - 1))
def test_conv_transpose2d_is_the_adjoint_of_conv2d(case, seed):
    y, weight, _ = arrays(case, seed)
    s = settings_of(case)
    up = F.conv_transpose2d(bp.tensor(y), bp.tensor(weight), **s)
    z = np.random.default_rng(seed + 1).standard_normal(up.shape)
    conv_settings = {k: v for k, v in s.items() if k != "output_padding"}
    down = F.conv2d(bp.tensor(z), bp.tensor(weight), **conv_settings).data
    if all(op < st_ for op, st_ in zip(s["output_padding"], s["stride"], strict=True)):
        assert down.shape == y.shape
    # an output_padding >= the stride (allowed below the dilation) adds windows conv2d would also slide over
    down = down[:, :, : y.shape[2], : y.shape[3]]
    assert np.sum(down * y) == pytest.approx(np.sum(z * up.data), rel=1e-10, abs=1e-10)


def test_conv_transpose2d_module_weight_layout_and_output_size():
    layer = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2, rng=np.random.default_rng(0))
    assert layer.weight.shape == (4, 3, 3, 3)  # (in, out / groups, kh, kw), as PyTorch
    bound = 1 / math.sqrt(3 * 3 * 3)  # PyTorch's fan_in of that weight: size(1) * kh * kw
    assert np.abs(layer.weight.data).max() <= bound
    assert layer(bp.tensor(np.zeros((2, 4, 5, 5)))).shape == (2, 6, 10, 10)  # (5 - 1) 2 - 2 + 3 + 1
    assert "output_padding=(1, 1)" in repr(layer)
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d(bp.tensor(np.zeros((1, 1, 3, 3))), bp.tensor(np.zeros((1, 1, 3, 3))), stride=1,
                           output_padding=1)


# ============================================================================ conv1d


@SETTINGS
@given(case=conv_cases(), seed=st.integers(0, 2**32 - 1))
def test_conv1d_equals_the_loops_and_gradchecks(case, seed):
    x, weight, bias = arrays(case, seed)
    x, weight = x[:, :, 0], weight[:, :, 0]  # (N, C, L) and (C_out, C_in / groups, k)
    s = {"stride": case["stride"][1], "padding": case["padding"][1], "dilation": case["dilation"][1],
         "groups": case["groups"]}
    if x.shape[2] + 2 * s["padding"] < span(weight.shape[2], s["dilation"]):
        return
    expected = conv2d_loops(x[:, :, None], weight[:, :, None], bias, (1, s["stride"]), (0, s["padding"]),
                            (1, s["dilation"]), s["groups"])[:, :, 0]
    got = F.conv1d(bp.tensor(x), bp.tensor(weight), bp.tensor(bias), **s)
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-12)
    check(lambda a, w, b: F.conv1d(a, w, b, **s), x, weight, bias)


def test_conv1d_module():
    layer = nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2, rng=np.random.default_rng(0))
    assert layer.weight.shape == (6, 2, 3)
    assert np.abs(layer.weight.data).max() <= 1 / math.sqrt(2 * 3)
    assert layer(bp.tensor(np.zeros((2, 4, 9)))).shape == (2, 6, 5)
    with pytest.raises(bp.ShapeError, match=r"conv1d expects an input of shape \(N, C_in, L\)"):
        layer(bp.tensor(np.zeros((2, 4, 9, 9))))


# ============================================================================ pooling with padding


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    size = tuple(max(1, k - 2 * p) + draw(st.integers(0, 3)) for k, p in zip(kernel, padding, strict=True))
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 2)), *size), kernel=kernel, stride=stride,
                padding=padding)


@SETTINGS
@given(case=pool_cases(), seed=st.integers(0, 2**32 - 1), count_include_pad=st.booleans())
def test_pooling_with_padding_equals_the_loops_and_gradchecks(case, seed, count_include_pad):
    x = np.random.default_rng(seed).standard_normal(case["shape"])
    k, s, p = case["kernel"], case["stride"], case["padding"]
    np.testing.assert_allclose(F.max_pool2d(bp.tensor(x), k, s, p).data, pool_loops(x, k, s, p, "max"), rtol=1e-12)
    got = F.avg_pool2d(bp.tensor(x), k, s, p, count_include_pad=count_include_pad)
    np.testing.assert_allclose(got.data, pool_loops(x, k, s, p, "avg", count_include_pad=count_include_pad),
                               rtol=1e-12)
    check(lambda t: F.max_pool2d(t, k, s, p), x)
    check(lambda t: F.avg_pool2d(t, k, s, p, count_include_pad=count_include_pad), x)


def test_max_pool_pads_with_minus_infinity_and_avg_pool_counts_the_padding():
    x = -np.ones((1, 1, 2, 2))  # all negative: a zero padding would win the max
    np.testing.assert_array_equal(F.max_pool2d(bp.tensor(x), 2, 1, 1).data, -np.ones((1, 1, 3, 3)))
    corner = F.avg_pool2d(bp.tensor(np.ones((1, 1, 2, 2))), 2, 1, 1)
    assert corner.data[0, 0, 0, 0] == 0.25  # one real pixel of four: count_include_pad=True, PyTorch's default
    assert F.avg_pool2d(bp.tensor(np.ones((1, 1, 2, 2))), 2, 1, 1, count_include_pad=False).data[0, 0, 0, 0] == 1.0
    np.testing.assert_allclose(F.max_pool2d(bp.tensor(np.arange(16.0).reshape(1, 1, 4, 4)), 2, 1, dilation=2).data,
                               pool_loops(np.arange(16.0).reshape(1, 1, 4, 4), (2, 2), (1, 1), (0, 0), "max", (2, 2)))
    with pytest.raises(ValueError, match="at most half"):
        F.max_pool2d(bp.tensor(x), 2, 1, 2)
    assert nn.MaxPool2d(3, 2, 1)(bp.tensor(np.zeros((1, 1, 7, 7)))).shape == (1, 1, 4, 4)
    assert nn.AvgPool2d(3, 2, 1)(bp.tensor(np.zeros((1, 1, 7, 7)))).shape == (1, 1, 4, 4)
    assert repr(nn.MaxPool2d(3, 2, 1)) == "MaxPool2d(kernel_size=3, stride=2, padding=1)"
