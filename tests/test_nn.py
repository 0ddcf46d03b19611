"""bpcore.nn proven correct: the Module contract, every layer, loss and initialiser.

Values are checked against independent numpy formulas, gradients against float64 central
differences (``bp.gradcheck``), and random initialisations against the variance their formula
states, with tolerances derived from the sample size.
"""

import contextlib
import math

import numpy as np
import pytest

import bpcore as bp
from bpcore import nn
from bpcore.nn import functional as F
from bpcore.nn import init


def assert_gradcheck(fn, *inputs):
    report = bp.gradcheck(fn, *inputs)
    assert report, str(report)
    return report


@contextlib.contextmanager
def swapped(module, **leaves):
    """Replace some of ``module``'s parameters by gradcheck's leaf tensors, restoring them afterwards.

    ``object.__setattr__`` bypasses Module registration, so the module keeps its own Parameters
    registered while the forward pass reads the leaves (whose graph gradcheck differentiates).
    """
    saved = {name: getattr(module, name) for name in leaves}
    for name, leaf in leaves.items():
        object.__setattr__(module, name, leaf)
    try:
        yield module
    finally:
        for name, value in saved.items():
            object.__setattr__(module, name, value)


def call_with(module, *args, **leaves):
    """``module(*args)`` with the parameters named in ``leaves`` replaced by those tensors."""
    with swapped(module, **leaves):
        return module(*args)


def rand(*shape, seed=0, low=-2.0, high=2.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape)


def softmax_np(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax_np(z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def reduce_np(per_element, reduction):
    return {"mean": per_element.mean(), "sum": per_element.sum(), "none": per_element}[reduction]


def tolerance_of_variance(n, kurtosis_excess):
    """Six standard errors of a sample variance, relative to the true variance.

    For n iid samples, Var(s^2) / sigma^4 ~ (2 + kurtosis_excess) / n: 2/n for a normal
    distribution, 0.8/n for a uniform one (excess kurtosis -1.2). The seeds are fixed, so the tests
    are deterministic; six sigma keeps them passing for any other seed too.
    """
    return 6 * math.sqrt((2 + kurtosis_excess) / n)


NORMAL, UNIFORM = 0.0, -1.2  # excess kurtosis


# ============================================================================ 1. Module API


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)

    def forward(self, x):
        return self.norm(self.fc(x)).relu()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = nn.Sequential(nn.Linear(4, 2))

    def forward(self, x):
        return self.head(self.encoder(x))


def test_sequential_parameter_names_follow_pytorch():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    named = list(model.named_parameters())
    assert [name for name, _ in named] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert [p.shape for _, p in named] == [(4, 3), (4,), (2, 4), (2,)]
    assert named[0][1] is model[0].weight and named[3][1] is model[2].bias
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())
    assert model.num_parameters() == 4 * 3 + 4 + 2 * 4 + 2
    assert len(model) == 3 and [type(m) for m in model] == [nn.Linear, nn.ReLU, nn.Linear]


def test_nested_modules_give_dotted_names():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == [
        "encoder.fc.weight",
        "encoder.fc.bias",
        "encoder.norm.weight",
        "encoder.norm.bias",
        "head.0.weight",
        "head.0.bias",
    ]
    assert [name for name, _ in net.named_modules()] == [
        "",
        "encoder",
        "encoder.fc",
        "encoder.norm",
        "head",
        "head.0",
    ]
    assert list(net.children()) == [net.encoder, net.head]


def test_shared_parameter_is_listed_once_and_gets_both_gradients():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight  # tied weights
    model = nn.Sequential(a, nn.Tanh(), b)
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias", "2.bias"]
    assert model.num_parameters() == 9 + 3 + 3
    # the same module twice: its parameters once
    twice = nn.Sequential(a, nn.Tanh(), a)
    assert [name for name, _ in twice.named_parameters()] == ["0.weight", "0.bias"]

    # the tied weight's gradient is the sum over both uses: compare with central differences
    x = rand(5, 3, seed=1)
    model(bp.tensor(x)).sum().backward()
    xt = bp.tensor(x)
    report = assert_gradcheck(
        lambda w: F.linear(F.linear(xt, w, a.bias.detach()).tanh(), w, b.bias.detach()).sum(), a.weight
    )
    np.testing.assert_allclose(a.weight.grad, report.inputs[0].numerical, rtol=1e-6, atol=1e-9)


def test_zero_grad_clears_gradients():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x = bp.tensor(rand(6, 3, seed=2))
    model(x).sum().backward()
    first = [p.grad.copy() for p in model.parameters()]
    assert all(np.abs(g).sum() > 0 for g in first)
    model(x).sum().backward()  # without zero_grad gradients accumulate
    np.testing.assert_allclose(model[0].weight.grad, 2 * first[0])
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model(x).sum().backward()
    for g, p in zip(first, model.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, g)


def test_train_and_eval_propagate_to_children():
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.BatchNorm1d(3), nn.Dropout(0.5)))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert [m.training for m in model.modules()] == [False] * 5
    # behaviour follows: the nested Dropout is the identity in eval mode
    x = bp.tensor(rand(4, 3, seed=3))
    assert np.array_equal(model[1][1](x).data, x.data)
    assert model.train() is model
    assert [m.training for m in model.modules()] == [True] * 5
    model.train(False)
    assert not any(m.training for m in model.modules())


def test_to_float32_casts_parameters_and_buffers_and_stays_float32():
    bp.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    reference = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    reference.load_state_dict(model.state_dict())
    assert model.to(np.float32) is model
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float32 and model[1].running_var.dtype == np.float32

    x = rand(6, 3, seed=4)
    targets = np.array([0, 1, 1, 0, 1, 0])
    out = model(bp.tensor(x.astype(np.float32)))
    loss = F.cross_entropy(out, targets)
    assert out.dtype == np.float32 and loss.dtype == np.float32
    loss.backward()
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float32 and model[1].running_var.dtype == np.float32

    # same numbers as float64, to float32 precision
    ref_loss = F.cross_entropy(reference(bp.tensor(x)), targets)
    ref_loss.backward()
    assert abs(loss.item() - ref_loss.item()) < 1e-5
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model[1].running_var, reference[1].running_var, rtol=1e-5)

    model.eval()
    assert model(bp.tensor(x.astype(np.float32))).dtype == np.float32


def make_bn_model():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))


def test_state_dict_round_trip_includes_batchnorm_buffers():
    bp.manual_seed(1)
    source = make_bn_model()
    for seed in range(3):  # move the running statistics away from their initial values
        source(bp.tensor(rand(8, 3, seed=seed, low=1.0, high=4.0)))
    state = source.state_dict()
    parameters = ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
    buffers = ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert sorted(state) == sorted(parameters + buffers)
    assert state["1.num_batches_tracked"] == 3
    assert np.abs(state["1.running_mean"]).max() > 0.05

    target = make_bn_model()
    target.load_state_dict(state)
    for name, value in target.state_dict().items():
        np.testing.assert_array_equal(value, state[name], err_msg=name)
    source.eval()
    target.eval()
    x = bp.tensor(rand(5, 3, seed=9))
    np.testing.assert_array_equal(target(x).data, source(x).data)

    # state_dict hands out copies, and load_state_dict keeps its own
    state["1.running_mean"][:] = 100.0
    state["0.weight"][:] = 100.0
    assert np.abs(source[1].running_mean).max() < 100 and np.abs(target[1].running_mean).max() < 100
    assert np.abs(source[0].weight.data).max() < 100 and np.abs(target[0].weight.data).max() < 100


def test_state_dict_of_a_bare_batchnorm():
    source, target = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    source(bp.tensor(rand(6, 2, seed=5, low=2, high=6)))
    state = source.state_dict()
    assert sorted(state) == ["bias", "num_batches_tracked", "running_mean", "running_var", "weight"]
    target.load_state_dict(state)
    np.testing.assert_array_equal(target.running_mean, source.running_mean)
    np.testing.assert_array_equal(target.running_var, source.running_var)
    assert target.num_batches_tracked == 1 and np.abs(target.running_mean).max() > 0.2


def test_load_state_dict_rejects_wrong_keys_and_shapes():
    model = make_bn_model()
    state = model.state_dict()
    missing = dict(state)
    del missing["1.running_var"]
    with pytest.raises(KeyError, match=r"missing \['1.running_var'\]"):
        model.load_state_dict(missing)
    with pytest.raises(KeyError, match=r"unexpected \['extra.weight'\]"):
        model.load_state_dict({**state, "extra.weight": np.zeros(2)})
    with pytest.raises(ValueError, match=r"'0.weight' has shape \(3, 4\), expected \(4, 3\)"):
        model.load_state_dict({**state, "0.weight": np.zeros((3, 4))})
    with pytest.raises(ValueError, match=r"'1.running_mean' has shape \(5,\), expected \(4,\)"):
        model.load_state_dict({**state, "1.running_mean": np.zeros(5)})


def test_sequential_repr_lists_layers():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Dropout(0.25), nn.Linear(4, 2, bias=False)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=3, out_features=4, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.25)\n"
        "    (1): Linear(in_features=4, out_features=2, bias=False)\n"
        "  )\n"
        ")"
    )


def test_assigning_before_super_init_raises_clear_error():
    class Forgetful(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)
            super().__init__()

    with pytest.raises(RuntimeError, match=r"Forgetful.__init__ must call super\(\).__init__\(\)"):
        Forgetful()


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="argument 1 is a function"):
        nn.Sequential(nn.Linear(2, 2), lambda x: x)


# ============================================================================ 2. Linear


def test_linear_shapes_and_formula():
    layer = nn.Linear(3, 5)
    assert layer.weight.shape == (5, 3) and layer.bias.shape == (5,)
    x = rand(4, 3, seed=10)
    y = layer(bp.tensor(x))
    assert y.shape == (4, 5)
    np.testing.assert_allclose(y.data, x @ layer.weight.data.T + layer.bias.data, rtol=1e-14)
    # explicit sum, not numpy's matmul, as the independent reference
    expected = np.array(
        [[sum(x[n, i] * layer.weight.data[o, i] for i in range(3)) for o in range(5)] for n in range(4)]
    )
    np.testing.assert_allclose(y.data, expected + layer.bias.data, rtol=1e-12)


def test_linear_default_init_bounds():
    bp.manual_seed(11)
    layer = nn.Linear(50, 30)
    bound = 1 / math.sqrt(50)
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.95 * bound  # the whole range is used


def test_linear_default_init_is_uniform_with_the_right_spread():
    layer = nn.Linear(600, 400, rng=np.random.default_rng(12))
    w = layer.weight.data
    bound = 1 / math.sqrt(600)
    assert np.abs(w).max() <= bound
    # U(-a, a) has std a / sqrt(3)
    expected_var = bound**2 / 3
    assert abs(w.var() / expected_var - 1) < tolerance_of_variance(w.size, UNIFORM)
    # uniform, not normal: a quarter of the values in each quarter of the range (binomial, 6 sigma)
    counts, _ = np.histogram(w, bins=4, range=(-bound, bound))
    assert np.all(np.abs(counts / w.size - 0.25) < 6 * math.sqrt(0.25 * 0.75 / w.size))
    # the bias is U(-bound, bound) too: centred (standard error of the mean bound / sqrt(3 n)) and
    # reaching both ends (P(max < 0.9 bound) = 0.95^400 ~ 1e-9)
    b = layer.bias.data
    assert np.abs(b).max() <= bound
    assert abs(b.mean()) < 6 * bound / math.sqrt(3 * b.size)
    assert b.min() < -0.9 * bound and b.max() > 0.9 * bound


def test_linear_without_bias():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    x = rand(4, 3, seed=13)
    np.testing.assert_allclose(layer(bp.tensor(x)).data, x @ layer.weight.data.T, rtol=1e-14)
    assert_gradcheck(lambda x, w: call_with(layer, x, weight=w), x, layer.weight)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 3), (3,)], ids=["batch", "batch-time", "single"])
def test_linear_gradcheck(shape):
    layer = nn.Linear(3, 2).to(np.float64)
    x = rand(*shape, seed=14)
    assert_gradcheck(lambda x, w, b: F.linear(x, w, b), x, layer.weight, layer.bias)
    assert_gradcheck(lambda x, w, b: call_with(layer, x, weight=w, bias=b), x, layer.weight, layer.bias)


def test_linear_3d_input_matches_per_step_application():
    layer = nn.Linear(3, 2)
    x = rand(2, 4, 3, seed=15)
    y = layer(bp.tensor(x))
    assert y.shape == (2, 4, 2)
    for t in range(4):
        np.testing.assert_allclose(y.data[:, t], layer(bp.tensor(x[:, t])).data, rtol=1e-14)


def test_linear_shape_error_names_both_shapes():
    layer = nn.Linear(3, 2)
    with pytest.raises(bp.ShapeError, match=r"\(5, 4\).*\(2, 3\)"):
        layer(bp.tensor(np.zeros((5, 4))))


# ============================================================================ 3. activation modules


def gelu_np(x):
    return x * 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.GELU(), gelu_np),
    (
        nn.GELU("tanh"),
        lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
    ),
    (nn.Softmax(), softmax_np),
    (nn.Softmax(dim=0), lambda x: softmax_np(x.T).T),
    (nn.Identity(), lambda x: x),
]


@pytest.mark.parametrize(
    "module, reference",
    ACTIVATIONS,
    ids=["relu", "leaky", "leaky0.2", "sigmoid", "tanh", "gelu", "gelu-tanh", "softmax", "softmax-dim0", "identity"],
)
def test_activation_module_values_and_gradients(module, reference):
    x = rand(3, 4, seed=16)
    x[np.abs(x) < 0.1] += 0.3  # away from relu's kink
    np.testing.assert_allclose(module(bp.tensor(x)).data, reference(x), rtol=1e-12, atol=1e-15)
    assert_gradcheck(module, x)


def test_activation_modules_match_the_ops():
    x = bp.tensor(rand(3, 4, seed=17))
    pairs = [
        (nn.ReLU(), bp.relu(x)),
        (nn.LeakyReLU(0.1), bp.leaky_relu(x, negative_slope=0.1)),
        (nn.Sigmoid(), bp.sigmoid(x)),
        (nn.Tanh(), bp.tanh(x)),
        (nn.GELU(), bp.gelu(x)),
        (nn.Softmax(dim=0), bp.softmax(x, axis=0)),
        (nn.Identity(), x),
    ]
    for module, expected in pairs:
        np.testing.assert_array_equal(module(x).data, expected.data, err_msg=repr(module))


# ============================================================================ 4. losses

REDUCTION_NAMES = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", REDUCTION_NAMES)
def test_mse_loss(reduction):
    p, t = rand(4, 3, seed=20), rand(4, 3, seed=21)
    loss = F.mse_loss(bp.tensor(p), t, reduction=reduction)
    np.testing.assert_allclose(loss.data, reduce_np((p - t) ** 2, reduction), rtol=1e-14)
    assert_gradcheck(lambda p: F.mse_loss(p, t, reduction=reduction), p)
    assert_gradcheck(lambda p, t: F.mse_loss(p, t, reduction=reduction), p, t)  # target as a tensor


def test_mse_loss_gradient_formula():
    p, t = rand(5, 2, seed=22), rand(5, 2, seed=23)
    pred = bp.tensor(p, requires_grad=True)
    F.mse_loss(pred, t).backward()
    np.testing.assert_allclose(pred.grad, 2 * (p - t) / p.size, rtol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTION_NAMES)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy-targets", "tensor-targets"])
def test_cross_entropy(reduction, as_tensor):
    z = rand(5, 4, seed=24, low=-3, high=3)
    t = np.array([0, 3, 1, 1, 2])
    targets = bp.tensor(t, dtype=np.int64) if as_tensor else t
    loss = F.cross_entropy(bp.tensor(z), targets, reduction=reduction)
    # independent formula: -z_t + log sum_j exp(z_j)
    per_sample = -z[np.arange(5), t] + np.log(np.exp(z).sum(axis=1))
    np.testing.assert_allclose(loss.data, reduce_np(per_sample, reduction), rtol=1e-13)
    assert_gradcheck(lambda z: F.cross_entropy(z, targets, reduction=reduction), z)
    assert_gradcheck(lambda z, t: F.cross_entropy(z, t, reduction=reduction), z, targets)  # ints pass through


@pytest.mark.parametrize("reduction", REDUCTION_NAMES)
def test_cross_entropy_gradient_is_softmax_minus_onehot(reduction):
    z = rand(6, 5, seed=25, low=-3, high=3)
    t = np.array([4, 0, 2, 2, 1, 3])
    onehot = np.eye(5)[t]
    logits = bp.tensor(z, requires_grad=True)
    loss = F.cross_entropy(logits, t, reduction=reduction)
    g = rand(6, seed=26)
    loss.backward(g if reduction == "none" else None)
    expected = {
        "mean": (softmax_np(z) - onehot) / 6,
        "sum": softmax_np(z) - onehot,
        "none": (softmax_np(z) - onehot) * g[:, None],
    }[reduction]
    np.testing.assert_allclose(logits.grad, expected, rtol=0, atol=1e-12)


def test_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 1000.0]])
    t = np.array([1, 2])
    logits = bp.tensor(z, requires_grad=True)
    loss = F.cross_entropy(logits, t)
    loss.backward()
    # row 0: 1000 - (-1000) = 2000; row 1: a tie between two logits of 1000 gives log 2
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx((2000 + math.log(2)) / 2, rel=1e-14)
    assert np.all(np.isfinite(logits.grad))
    expected = (np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]) - np.eye(3)[t]) / 2
    np.testing.assert_allclose(logits.grad, expected, atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTION_NAMES)
def test_binary_cross_entropy_with_logits(reduction):
    z = rand(4, 3, seed=27, low=-4, high=4)
    t = rand(4, 3, seed=28, low=0, high=1)  # soft labels are allowed
    loss = F.binary_cross_entropy_with_logits(bp.tensor(z), t, reduction=reduction)
    s = 1 / (1 + np.exp(-z))
    per_element = -(t * np.log(s) + (1 - t) * np.log(1 - s))
    np.testing.assert_allclose(loss.data, reduce_np(per_element, reduction), rtol=1e-12)
    # float targets would be checked as inputs too, so they are closed over
    assert_gradcheck(lambda z: F.binary_cross_entropy_with_logits(z, t, reduction=reduction), z)
    hard = (t > 0.5).astype(np.int64)  # integer 0/1 targets work and pass through gradcheck
    assert_gradcheck(lambda z, h: F.binary_cross_entropy_with_logits(z, h, reduction=reduction), z, hard)


def test_binary_cross_entropy_gradient_formula_and_tensor_targets():
    z = rand(3, 2, seed=29)
    t = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    logits = bp.tensor(z, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(logits, bp.tensor(t))
    loss.backward()
    np.testing.assert_allclose(logits.grad, (1 / (1 + np.exp(-z)) - t) / 6, rtol=1e-12)


def test_binary_cross_entropy_is_stable_for_huge_logits():
    logits = bp.tensor([1000.0, -1000.0, 1000.0, -1000.0], requires_grad=True)
    t = np.array([1.0, 0.0, 0.0, 1.0])
    loss = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    np.testing.assert_allclose(loss.data, [0.0, 0.0, 1000.0, 1000.0], atol=1e-12)
    loss.sum().backward()
    np.testing.assert_allclose(logits.grad, [0.0, 0.0, 1.0, -1.0], atol=1e-15)


@pytest.mark.parametrize("reduction", REDUCTION_NAMES)
def test_nll_loss(reduction):
    z = rand(5, 3, seed=30)
    lp = log_softmax_np(z)
    t = np.array([2, 0, 1, 2, 2])
    loss = F.nll_loss(bp.tensor(lp), t, reduction=reduction)
    np.testing.assert_allclose(loss.data, reduce_np(-lp[np.arange(5), t], reduction), rtol=1e-14)
    assert_gradcheck(lambda lp: F.nll_loss(lp, t, reduction=reduction), lp)
    # nll_loss(log_softmax(z)) is cross_entropy(z), value and gradient
    assert_gradcheck(lambda z: F.nll_loss(bp.log_softmax(z), bp.tensor(t, dtype=np.int64), reduction=reduction), z)
    z1, z2 = bp.tensor(z, requires_grad=True), bp.tensor(z, requires_grad=True)
    nll = F.nll_loss(bp.log_softmax(z1), t, reduction=reduction)
    ce = F.cross_entropy(z2, t, reduction=reduction)
    np.testing.assert_allclose(nll.data, ce.data, rtol=1e-13)
    g = np.ones(5) if reduction == "none" else None
    nll.backward(g)
    ce.backward(g)
    np.testing.assert_allclose(z1.grad, z2.grad, atol=1e-14)


def test_nll_loss_gradient_is_minus_onehot_over_n():
    lp = bp.tensor(log_softmax_np(rand(4, 3, seed=31)), requires_grad=True)
    t = np.array([1, 1, 0, 2])
    F.nll_loss(lp, t).backward()
    np.testing.assert_array_equal(lp.grad, -np.eye(3)[t] / 4)  # repeated classes stay separate rows


@pytest.mark.parametrize("loss_fn", [F.cross_entropy, F.nll_loss], ids=["cross_entropy", "nll_loss"])
def test_class_losses_reject_bad_targets(loss_fn):
    z = bp.tensor(rand(3, 4, seed=32))
    with pytest.raises(TypeError, match=r"integer class indices.*float64"):
        loss_fn(z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="integer class indices"):
        loss_fn(z, bp.tensor([0.0, 1.0, 2.0]))  # float labels, as a tensor
    assert np.isfinite(loss_fn(z, bp.tensor([0, 1, 2])).item())  # integer data stays int64: accepted
    with pytest.raises(ValueError, match=r"\[0, 3\].*from 0 to 4"):
        loss_fn(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"\[0, 3\].*from -1 to 2"):
        loss_fn(z, np.array([-1, 2, 1]))
    with pytest.raises(bp.ShapeError, match=r"\(3, 4\) and \(4,\)"):
        loss_fn(z, np.array([0, 1, 2, 3]))
    with pytest.raises(bp.ShapeError, match=r"\(3,\) and \(3,\)"):
        loss_fn(bp.tensor(np.zeros(3)), np.array([0, 1, 2]))


def test_mse_loss_rejects_shape_mismatch():
    prediction = bp.tensor(np.zeros((4, 1)))
    with pytest.raises(bp.ShapeError, match=r"\(4, 1\).*\(4,\)"):
        F.mse_loss(prediction, np.zeros(4))
    with pytest.raises(bp.ShapeError, match=r"\(4, 1\).*\(4,\)"):
        F.mse_loss(prediction, bp.tensor(np.zeros(4)))
    with pytest.raises(bp.ShapeError, match=r"\(4,\).*\(4, 1\)"):
        F.mse_loss(bp.tensor(np.zeros(4)), np.zeros((4, 1)))


def test_bce_rejects_shape_mismatch():
    with pytest.raises(bp.ShapeError, match=r"\(4, 1\).*\(4,\)"):
        F.binary_cross_entropy_with_logits(bp.tensor(np.zeros((4, 1))), np.zeros(4))


@pytest.mark.parametrize(
    "loss_fn, target",
    [
        (F.mse_loss, np.zeros((2, 3))),
        (F.cross_entropy, np.array([0, 1])),
        (F.binary_cross_entropy_with_logits, np.zeros((2, 3))),
        (F.nll_loss, np.array([0, 1])),
    ],
    ids=["mse", "cross_entropy", "bce", "nll"],
)
def test_losses_reject_bad_reduction(loss_fn, target):
    with pytest.raises(ValueError, match=r"reduction must be one of .*'avg'"):
        loss_fn(bp.tensor(np.zeros((2, 3))), target, reduction="avg")


# ============================================================================ 5. Dropout


def test_dropout_eval_is_identity():
    drop = nn.Dropout(0.5).eval()
    x = bp.tensor(rand(20, 30, seed=40))
    np.testing.assert_array_equal(drop(x).data, x.data)
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).data, x.data)


def test_dropout_drops_a_fraction_p_and_preserves_the_mean():
    p, n = 0.3, 200 * 500
    bp.manual_seed(41)
    y = nn.Dropout(p)(bp.ones(200, 500)).data
    dropped = y == 0
    # the number dropped is Binomial(n, p): standard error of the fraction sqrt(p (1 - p) / n) ~ 0.0014
    assert abs(dropped.mean() - p) < 6 * math.sqrt(p * (1 - p) / n)
    # survivors are scaled exactly by 1 / (1 - p)
    np.testing.assert_array_equal(y[~dropped], 1 / (1 - p))
    # each output is 1/(1-p) with probability 1-p, else 0: mean 1, variance p / (1 - p), so the
    # sample mean has standard error sqrt(p / ((1 - p) n)) ~ 0.002
    assert abs(y.mean() - 1) < 6 * math.sqrt(p / ((1 - p) * n))


def test_dropout_preserves_the_mean_of_varied_inputs():
    p = 0.5
    x = rand(300, 400, seed=42, low=0.0, high=2.0)
    y = F.dropout(bp.tensor(x), p, rng=np.random.default_rng(43)).data
    # y_i = x_i m_i / (1 - p): E[y_i] = x_i, Var(y_i) = x_i^2 p / (1 - p); standard error of the mean below
    stderr = math.sqrt((x**2).sum() * p / (1 - p)) / x.size
    assert abs(y.mean() - x.mean()) < 6 * stderr


def test_dropout_gradient_follows_the_mask():
    p = 0.4
    x = bp.tensor(rand(30, 40, seed=44, low=0.5, high=2.0), requires_grad=True)  # nonzero inputs
    drop = nn.Dropout(p, rng=np.random.default_rng(45))
    y = drop(x)
    g = rand(30, 40, seed=46)
    y.backward(g)
    dropped = y.data == 0
    assert 0 < dropped.sum() < dropped.size
    assert np.all(x.grad[dropped] == 0)
    np.testing.assert_allclose(x.grad[~dropped], g[~dropped] / (1 - p), rtol=1e-15)
    # and the output is x / (1 - p) exactly where it was kept
    np.testing.assert_allclose(y.data[~dropped], x.data[~dropped] / (1 - p), rtol=1e-15)


def test_dropout_is_reproducible_under_manual_seed():
    x = bp.ones(10, 10)
    bp.manual_seed(7)
    first = nn.Dropout(0.5)(x).data
    bp.manual_seed(7)
    second = nn.Dropout(0.5)(x).data
    bp.manual_seed(8)
    other = nn.Dropout(0.5)(x).data
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)
    a = F.dropout(x, 0.5, rng=np.random.default_rng(3)).data
    b = F.dropout(x, 0.5, rng=np.random.default_rng(3)).data
    np.testing.assert_array_equal(a, b)


def test_dropout_rejects_bad_probability():
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            nn.Dropout(p)
        with pytest.raises(ValueError, match=r"\[0, 1\)"):
            F.dropout(bp.ones(2), p)


# ============================================================================ 6. BatchNorm1d


def test_batchnorm_training_normalises_each_feature():
    x = rand(16, 3, seed=50) * np.array([1.0, 10.0, 0.1]) + np.array([5.0, -3.0, 0.0])
    bn = nn.BatchNorm1d(3)
    y = bn(bp.tensor(x)).data
    var = x.var(axis=0)
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), var / (var + bn.eps), rtol=1e-10)  # 1 up to eps
    np.testing.assert_allclose(y.var(axis=0), 1, rtol=1e-3)


def test_batchnorm_affine_formula():
    bn = nn.BatchNorm1d(3)
    bn.weight.data[:] = [2.0, -1.0, 0.5]
    bn.bias.data[:] = [0.1, 0.2, -3.0]
    for shape, axes, view in (((6, 3), (0,), (1, 3)), ((4, 3, 5), (0, 2), (1, 3, 1))):
        x = rand(*shape, seed=51)
        mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
        expected = (x - mean) / np.sqrt(var + bn.eps) * bn.weight.data.reshape(view) + bn.bias.data.reshape(view)
        np.testing.assert_allclose(bn(bp.tensor(x)).data, expected, rtol=1e-12, atol=1e-14)


def test_batchnorm_without_affine():
    bn = nn.BatchNorm1d(2, affine=False)
    assert bn.weight is None and list(bn.parameters()) == []
    x = rand(5, 2, seed=52)
    np.testing.assert_allclose(bn(bp.tensor(x)).data, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-12)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2)], ids=["NC", "NCL"])
def test_batchnorm_running_statistics_use_momentum_and_unbiased_variance(shape):
    axes = (0,) if len(shape) == 2 else (0, 2)
    count = math.prod(shape[a] for a in axes)
    x1 = rand(*shape, seed=53, low=0, high=4)
    x2 = rand(*shape, seed=54, low=-3, high=1)
    bn = nn.BatchNorm1d(3)
    bn(bp.tensor(x1))
    bn(bp.tensor(x2))

    def unbiased_var(x):  # by hand: sum of squared deviations over (count - 1)
        d = x - x.mean(axis=axes, keepdims=True)
        return (d**2).sum(axis=axes) / (count - 1)

    mean1, mean2 = x1.mean(axis=axes), x2.mean(axis=axes)
    running_mean = 0.9 * (0.9 * np.zeros(3) + 0.1 * mean1) + 0.1 * mean2
    running_var = 0.9 * (0.9 * np.ones(3) + 0.1 * unbiased_var(x1)) + 0.1 * unbiased_var(x2)
    np.testing.assert_allclose(bn.running_mean, running_mean, rtol=1e-13)
    np.testing.assert_allclose(bn.running_var, running_var, rtol=1e-13)
    assert bn.num_batches_tracked == 2
    # the biased variance would give a different answer: the test can tell them apart
    assert not np.allclose(running_var, 0.9 * (0.9 + 0.1 * x1.var(axis=axes)) + 0.1 * x2.var(axis=axes))


def test_batchnorm_eval_uses_running_statistics():
    bn = nn.BatchNorm1d(3)
    bn.weight.data[:] = [1.5, -2.0, 0.3]
    bn.bias.data[:] = [0.0, 1.0, -1.0]
    for seed in range(3):
        bn(bp.tensor(rand(8, 3, seed=55 + seed, low=1, high=5)))
    bn.eval()
    mean, var = bn.running_mean.copy(), bn.running_var.copy()
    sample = rand(1, 3, seed=60)
    y = bn(bp.tensor(sample)).data
    expected = (sample - mean) / np.sqrt(var + bn.eps) * bn.weight.data + bn.bias.data
    np.testing.assert_allclose(y, expected, rtol=1e-13)
    # one sample's output no longer depends on its batch, and eval leaves the statistics alone
    batch = np.concatenate([sample, rand(4, 3, seed=61)])
    np.testing.assert_allclose(bn(bp.tensor(batch)).data[:1], y, rtol=1e-14)
    np.testing.assert_array_equal(bn.running_mean, mean)
    np.testing.assert_array_equal(bn.running_var, var)
    assert bn.num_batches_tracked == 3
    # in eval mode BatchNorm is a per-feature affine map: d y / d x = w / sqrt(running_var + eps)
    x = bp.tensor(rand(2, 3, 4, seed=62), requires_grad=True)
    bn(x).sum().backward()
    slope = bn.weight.data / np.sqrt(var + bn.eps)
    np.testing.assert_allclose(x.grad, np.broadcast_to(slope[None, :, None], (2, 3, 4)), rtol=1e-14)
    assert_gradcheck(lambda x, w, b: call_with(bn, x, weight=w, bias=b), x, bn.weight, bn.bias)


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 2)], ids=["NC", "NCL"])
def test_batchnorm_training_gradcheck(shape):
    bn = nn.BatchNorm1d(3).to(np.float64)
    x = rand(*shape, seed=63)
    w, b = rand(3, seed=64), rand(3, seed=65)
    assert_gradcheck(lambda x, w, b: call_with(bn, x, weight=w, bias=b), x, w, b)


def test_batchnorm_errors():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(bp.ShapeError, match=r"BatchNorm1d\(3\).*\(4, 5\)"):
        bn(bp.tensor(np.zeros((4, 5))))
    with pytest.raises(bp.ShapeError, match=r"\(4, 5, 2\)"):
        bn(bp.tensor(np.zeros((4, 5, 2))))
    with pytest.raises(ValueError, match="more than one value per feature"):
        bn(bp.tensor(np.zeros((1, 3))))


# ============================================================================ 7. LayerNorm


def test_layernorm_normalises_each_sample_in_train_and_eval():
    x = rand(4, 6, seed=70) * np.array([[1.0], [10.0], [0.1], [3.0]]) + np.array([[5.0], [-3.0], [0.0], [1.0]])
    ln = nn.LayerNorm(6)
    y_train = ln(bp.tensor(x)).data
    var = x.var(axis=1)
    np.testing.assert_allclose(y_train.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(y_train.var(axis=1), var / (var + ln.eps), rtol=1e-10)
    ln.eval()
    np.testing.assert_array_equal(ln(bp.tensor(x)).data, y_train)
    # each sample on its own: no batch statistics
    np.testing.assert_allclose(ln(bp.tensor(x[2:3])).data, y_train[2:3], rtol=1e-14)


def test_layernorm_over_two_dims_with_affine():
    ln = nn.LayerNorm((3, 4))
    assert ln.weight.shape == (3, 4) and ln.bias.shape == (3, 4)
    ln.weight.data[:] = rand(3, 4, seed=71)
    ln.bias.data[:] = rand(3, 4, seed=72)
    x = rand(2, 3, 4, seed=73)
    mean, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    expected = (x - mean) / np.sqrt(var + ln.eps) * ln.weight.data + ln.bias.data
    np.testing.assert_allclose(ln(bp.tensor(x)).data, expected, rtol=1e-12, atol=1e-14)
    # normalisation is over both dims, not the last one only
    plain = nn.LayerNorm((3, 4), elementwise_affine=False)
    y = plain(bp.tensor(x)).data
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-12)
    assert np.abs(y.mean(axis=2)).max() > 0.1


@pytest.mark.parametrize(
    "normalized_shape, x_shape",
    [(5, (3, 5)), ((3, 4), (2, 3, 4)), (4, (2, 3, 4))],
    ids=["1d", "2d", "1d-of-3d"],
)
def test_layernorm_gradcheck(normalized_shape, x_shape):
    ln = nn.LayerNorm(normalized_shape).to(np.float64)
    x = rand(*x_shape, seed=74)
    w, b = rand(*ln.normalized_shape, seed=75), rand(*ln.normalized_shape, seed=76)
    assert_gradcheck(lambda x, w, b: call_with(ln, x, weight=w, bias=b), x, w, b)


def test_layernorm_shape_error():
    with pytest.raises(bp.ShapeError, match=r"\(3, 4\).*\(2, 4, 3\)"):
        nn.LayerNorm((3, 4))(bp.tensor(np.zeros((2, 4, 3))))


# ============================================================================ 8. Embedding


def test_embedding_lookup_returns_rows():
    emb = nn.Embedding(5, 3)
    assert emb.weight.shape == (5, 3)
    idx = np.array([[2, 0], [4, 2]])
    y = emb(idx)
    assert y.shape == (2, 2, 3)
    for i in range(2):
        for j in range(2):
            np.testing.assert_array_equal(y.data[i, j], emb.weight.data[idx[i, j]])
    np.testing.assert_array_equal(emb(bp.tensor(idx, dtype=np.int64)).data, y.data)  # a tensor of ints
    np.testing.assert_array_equal(emb([1, 3]).data, emb.weight.data[[1, 3]])


def test_embedding_repeated_indices_accumulate():
    emb = nn.Embedding(4, 2)
    emb(np.array([1, 1, 1, 0])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad, [[1, 1], [3, 3], [0, 0], [0, 0]])
    emb.zero_grad()
    g = rand(4, 2, seed=80)
    emb(np.array([1, 1, 1, 0])).backward(g)
    np.testing.assert_allclose(emb.weight.grad[1], g[0] + g[1] + g[2], rtol=1e-15)
    np.testing.assert_array_equal(emb.weight.grad[0], g[3])
    np.testing.assert_array_equal(emb.weight.grad[2:], 0)


def test_embedding_gradcheck():
    emb = nn.Embedding(4, 3).to(np.float64)
    idx = np.array([[0, 3, 3], [1, 0, 3]])
    assert_gradcheck(lambda w, i: call_with(emb, i, weight=w), emb.weight, idx)


def test_embedding_rejects_bad_indices():
    emb = nn.Embedding(5, 2)
    with pytest.raises(TypeError, match=r"integer indices.*float64"):
        emb(np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="integer indices"):
        emb(bp.tensor([0.0, 1.0]))
    assert emb(bp.tensor([0, 1])).shape == (2, 2)  # integer data stays int64: accepted
    with pytest.raises(IndexError, match=r"\[0, 4\]"):
        emb(np.array([0, 5]))
    with pytest.raises(IndexError, match=r"\[0, 4\]"):
        emb(np.array([-1, 2]))


def test_embedding_init_is_standard_normal():
    w = nn.Embedding(1000, 64, rng=np.random.default_rng(81)).weight.data
    n = w.size
    assert abs(w.mean()) < 6 / math.sqrt(n)  # standard error of the mean of N(0, 1): 1/sqrt(n)
    assert abs(w.var() - 1) < tolerance_of_variance(n, NORMAL)


# ============================================================================ 9. Residual


def test_residual_output_is_x_plus_block():
    block = nn.Sequential(nn.Linear(4, 4), nn.Tanh())
    res = nn.Residual(block)
    assert [name for name, _ in res.named_parameters()] == ["block.0.weight", "block.0.bias"]
    x = rand(3, 4, seed=90)
    np.testing.assert_allclose(res(bp.tensor(x)).data, x + block(bp.tensor(x)).data, rtol=1e-15)
    lin = block[0]

    def residual_with(x, w, b):
        with swapped(lin, weight=w, bias=b):
            return res(x)

    assert_gradcheck(residual_with, x, lin.weight, lin.bias)


def test_residual_gradient_is_identity_plus_block_jacobian():
    lin = nn.Linear(4, 4)
    res = nn.Residual(lin)
    x = bp.tensor(rand(3, 4, seed=91), requires_grad=True)
    g = rand(3, 4, seed=92)
    res(x).backward(g)
    W = lin.weight.data
    # per sample, y = (I + W) x + b, so dL/dx = (I + W)^T g = (I + W^T) g
    expected = ((np.eye(4) + W.T) @ g.T).T
    np.testing.assert_allclose(x.grad, expected, rtol=1e-13)
    # the skip path alone: a block that outputs zeros passes the gradient through unchanged
    zero = nn.Linear(4, 4)
    init.zeros_(zero.weight)
    init.zeros_(zero.bias)
    x2 = bp.tensor(rand(3, 4, seed=93), requires_grad=True)
    nn.Residual(zero)(x2).backward(g)
    np.testing.assert_array_equal(x2.grad, g)
    # an identity block doubles it
    x3 = bp.tensor(rand(3, 4, seed=94), requires_grad=True)
    nn.Residual(nn.Identity())(x3).backward(g)
    np.testing.assert_array_equal(x3.grad, 2 * g)


# ============================================================================ 10. Flatten


def test_flatten():
    x = rand(2, 3, 4, 5, seed=100)
    y = nn.Flatten()(bp.tensor(x))
    assert y.shape == (2, 60)
    np.testing.assert_array_equal(y.data, x.reshape(2, 60))
    assert nn.Flatten(start_dim=2)(bp.tensor(x)).shape == (2, 3, 20)
    assert nn.Flatten()(bp.tensor(np.zeros((7, 3)))).shape == (7, 3)
    assert_gradcheck(nn.Flatten(), x[:, :2, :2, :2])
    # Flatten then Linear: the gradient flows back into the original shape
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 2))
    xt = bp.tensor(rand(4, 2, 3, seed=101), requires_grad=True)
    model(xt).sum().backward()
    assert xt.grad.shape == (4, 2, 3)
    np.testing.assert_allclose(xt.grad, np.broadcast_to(model[1].weight.data.sum(0).reshape(2, 3), (4, 2, 3)))


# ============================================================================ 11. init


def test_fans():
    assert init.fans(bp.zeros(5, 7)) == (7, 5)  # (out, in) -> (fan_in, fan_out)
    assert init.fans(bp.zeros(8, 3, 5, 5)) == (3 * 25, 8 * 25)  # conv (out, in, kh, kw)
    assert init.fans(nn.Linear(6, 2).weight) == (6, 2)
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*\(4,\)"):
        init.fans(bp.zeros(4))


def test_calculate_gain():
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2), rel=1e-15)
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3, rel=1e-15)
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)), rel=1e-15)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04), rel=1e-15)
    assert init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2), rel=1e-15)
    assert init.calculate_gain("linear") == 1.0 and init.calculate_gain("sigmoid") == 1.0
    with pytest.raises(ValueError, match="'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="'fan_avg'"):
        init.kaiming_normal_(bp.zeros(3, 4), mode="fan_avg")


FAN_IN, FAN_OUT = 600, 400  # weight shape (400, 600)

VARIANCE_CASES = [
    # (initialiser, kwargs, stated variance, distribution's excess kurtosis)
    (init.xavier_uniform_, {}, 2 / (FAN_IN + FAN_OUT), UNIFORM),
    (init.xavier_uniform_, {"gain": 1.5}, 1.5**2 * 2 / (FAN_IN + FAN_OUT), UNIFORM),
    (init.xavier_normal_, {}, 2 / (FAN_IN + FAN_OUT), NORMAL),
    (init.kaiming_uniform_, {"nonlinearity": "relu"}, 2 / FAN_IN, UNIFORM),
    (init.kaiming_uniform_, {"nonlinearity": "relu", "mode": "fan_out"}, 2 / FAN_OUT, UNIFORM),
    (init.kaiming_uniform_, {"a": 5**0.5}, 1 / (3 * FAN_IN), UNIFORM),  # Linear's default
    (init.kaiming_normal_, {"nonlinearity": "relu"}, 2 / FAN_IN, NORMAL),
    (init.kaiming_normal_, {}, 2 / FAN_IN, NORMAL),  # leaky_relu with a=0 is relu
    (init.kaiming_normal_, {"a": 0.2}, 2 / (1.04 * FAN_IN), NORMAL),
    (init.kaiming_normal_, {"nonlinearity": "tanh", "mode": "fan_out"}, (5 / 3) ** 2 / FAN_OUT, NORMAL),
]


@pytest.mark.parametrize(
    "fn, kwargs, variance, kurtosis",
    VARIANCE_CASES,
    ids=[fn.__name__ + "".join(f"-{k}={v}" for k, v in kw.items()) for fn, kw, _, _ in VARIANCE_CASES],
)
def test_initialisers_give_their_stated_variance(fn, kwargs, variance, kurtosis):
    w = nn.Parameter(np.zeros((FAN_OUT, FAN_IN)))
    assert fn(w, rng=np.random.default_rng(110), **kwargs) is w
    n = w.size
    assert abs(w.data.var() / variance - 1) < tolerance_of_variance(n, kurtosis)  # ~1.7% for n = 240,000
    assert abs(w.data.mean()) < 6 * math.sqrt(variance / n)
    if kurtosis == UNIFORM:  # U(-a, a) with a = sqrt(3 variance)
        bound = math.sqrt(3 * variance)
        assert bound * 0.999 < np.abs(w.data).max() <= bound


def test_constant_initialisers_return_the_tensor():
    w = nn.Parameter(rand(3, 4, seed=111))
    assert init.zeros_(w) is w and np.array_equal(w.data, np.zeros((3, 4)))
    assert init.ones_(w) is w and np.array_equal(w.data, np.ones((3, 4)))
    assert init.constant_(w, 2.5) is w and np.array_equal(w.data, np.full((3, 4), 2.5))
    f32 = nn.Parameter(np.zeros(3, dtype=np.float32))
    assert init.constant_(f32, 0.1).dtype == np.float32  # filled in place, dtype kept


def test_normal_and_uniform_initialisers():
    w = nn.Parameter(np.zeros((300, 400)))
    n = w.size
    assert init.normal_(w, mean=3.0, std=0.5, rng=np.random.default_rng(112)) is w
    assert abs(w.data.mean() - 3.0) < 6 * 0.5 / math.sqrt(n)
    assert abs(w.data.var() / 0.25 - 1) < tolerance_of_variance(n, NORMAL)
    assert init.uniform_(w, -2.0, 5.0, rng=np.random.default_rng(113)) is w
    assert w.data.min() >= -2.0 and w.data.max() < 5.0
    assert abs(w.data.mean() - 1.5) < 6 * (7 / math.sqrt(12)) / math.sqrt(n)
    assert abs(w.data.var() / (49 / 12) - 1) < tolerance_of_variance(n, UNIFORM)


@pytest.mark.parametrize(
    "fn",
    [
        init.normal_,
        init.uniform_,
        init.xavier_uniform_,
        init.xavier_normal_,
        init.kaiming_uniform_,
        init.kaiming_normal_,
    ],
)
def test_rng_argument_makes_initialisation_reproducible(fn):
    a, b, c = (nn.Parameter(np.zeros((5, 6))) for _ in range(3))
    fn(a, rng=np.random.default_rng(5))
    fn(b, rng=np.random.default_rng(5))
    fn(c, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)


def test_layer_initialisation_is_reproducible():
    first = nn.Linear(4, 3, rng=np.random.default_rng(0))
    second = nn.Linear(4, 3, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(first.weight.data, second.weight.data)
    np.testing.assert_array_equal(first.bias.data, second.bias.data)
    bp.manual_seed(3)
    third = nn.Sequential(nn.Linear(4, 3), nn.Embedding(5, 2))
    bp.manual_seed(3)
    fourth = nn.Sequential(nn.Linear(4, 3), nn.Embedding(5, 2))
    for p, q in zip(third.parameters(), fourth.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)
    assert not np.array_equal(third[0].weight.data, first.weight.data)


# ---------------------------------------------------------------- follow-ups to design review


def test_bce_soft_targets_get_a_gradient():
    rng = np.random.default_rng(11)
    z, t = rng.standard_normal((3, 2)), rng.uniform(0, 1, (3, 2))
    report = bp.gradcheck(lambda z, t: F.binary_cross_entropy_with_logits(z, t), z, t)
    assert report and len(report.inputs) == 2, str(report)


def test_assigning_a_plain_tensor_to_a_parameter_is_refused():
    layer = bp.nn.Linear(2, 3)
    with pytest.raises(TypeError, match="Parameter"):
        layer.weight = layer.weight * 2
    layer.bias = None  # removing a parameter is allowed
    assert [n for n, _ in layer.named_parameters()] == ["weight"]


def test_sequential_slices_are_sequential():
    model = bp.nn.Sequential(bp.nn.Linear(2, 3), bp.nn.ReLU(), bp.nn.Linear(3, 1))
    head = model[:2]
    assert isinstance(head, bp.nn.Sequential) and len(head) == 2 and head[0] is model[0]
