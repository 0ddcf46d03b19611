"""Optimizers, schedules and clipping against their written definitions.

Every optimizer is compared step by step with a reference written here on plain numpy arrays from
PyTorch's documented pseudo-code (torch.optim docs), not from bpcore/optim.py: both get the same five
random gradients and must agree to 1e-12 after every step.
"""

import math

import numpy as np
import pytest

import bpcore as bp
from bpcore import optim

STEPS = 5
TOL = 1e-12


# ---------------------------------------------------------------- references from the PyTorch docs
# Each reference is a generator: send it a gradient, it yields the parameter after the update.
# The state lives in local variables, exactly as the pseudo-code names them.


def ref_sgd(p, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    p = p.copy()
    b = None
    t = 0
    g = yield
    while True:
        t += 1
        if weight_decay != 0:
            g = g + weight_decay * p
        if momentum != 0:
            b = g.copy() if t == 1 else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        p = p - lr * g
        g = yield p.copy()


def ref_rmsprop(p, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    p = p.copy()
    v = np.zeros_like(p)  # running mean of g^2
    g_ave = np.zeros_like(p)  # running mean of g (centered only)
    b = np.zeros_like(p)  # momentum buffer
    g = yield
    while True:
        if weight_decay != 0:
            g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g**2
        v_tilde = v
        if centered:
            g_ave = alpha * g_ave + (1 - alpha) * g
            v_tilde = v_tilde - g_ave**2
        if momentum > 0:
            b = momentum * b + g / (np.sqrt(v_tilde) + eps)
            p = p - lr * b
        else:
            p = p - lr * g / (np.sqrt(v_tilde) + eps)
        g = yield p.copy()


def ref_adagrad(p, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    p = p.copy()
    state_sum = np.full_like(p, initial_accumulator_value)
    t = 0
    g = yield
    while True:
        t += 1
        lr_t = lr / (1 + (t - 1) * lr_decay)
        if weight_decay != 0:
            g = g + weight_decay * p
        state_sum = state_sum + g**2
        p = p - lr_t * g / (np.sqrt(state_sum) + eps)
        g = yield p.copy()


def ref_adam(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    """Adam, and AdamW when ``decoupled`` (the weight decay shrinks p instead of entering g)."""
    b1, b2 = betas
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    v_max = np.zeros_like(p)
    t = 0
    g = yield
    while True:
        t += 1
        if decoupled:
            p = p - lr * weight_decay * p
        elif weight_decay != 0:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        if amsgrad:
            # current PyTorch docs and code: the maximum of the raw second moments, then bias-corrected
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        g = yield p.copy()


def ref_adamw(p, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
    return ref_adam(p, lr, betas, eps, weight_decay, amsgrad, decoupled=True)


CASES = [
    # (id, optimizer class, settings, reference)
    ("sgd", optim.SGD, {"lr": 0.1}, ref_sgd),
    ("sgd-momentum", optim.SGD, {"lr": 0.1, "momentum": 0.9}, ref_sgd),
    ("sgd-dampening", optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}, ref_sgd),
    ("sgd-nesterov", optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}, ref_sgd),
    ("sgd-wd", optim.SGD, {"lr": 0.1, "weight_decay": 0.05}, ref_sgd),
    ("sgd-all", optim.SGD, {"lr": 0.1, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05}, ref_sgd),
    ("rmsprop-defaults", optim.RMSprop, {}, ref_rmsprop),
    ("rmsprop", optim.RMSprop, {"lr": 0.05, "alpha": 0.9}, ref_rmsprop),
    ("rmsprop-centered", optim.RMSprop, {"lr": 0.05, "alpha": 0.9, "centered": True}, ref_rmsprop),
    ("rmsprop-momentum", optim.RMSprop, {"lr": 0.05, "momentum": 0.7}, ref_rmsprop),
    ("rmsprop-wd", optim.RMSprop, {"lr": 0.05, "weight_decay": 0.1}, ref_rmsprop),
    (
        "rmsprop-all",
        optim.RMSprop,
        {"lr": 0.05, "alpha": 0.9, "centered": True, "momentum": 0.7, "weight_decay": 0.1},
        ref_rmsprop,
    ),
    ("adagrad-defaults", optim.Adagrad, {}, ref_adagrad),
    (
        "adagrad-decay",
        optim.Adagrad,
        {"lr": 0.3, "lr_decay": 0.2, "initial_accumulator_value": 0.5},
        ref_adagrad,
    ),
    ("adagrad-wd", optim.Adagrad, {"lr": 0.3, "weight_decay": 0.1}, ref_adagrad),
    ("adam-defaults", optim.Adam, {}, ref_adam),
    ("adam", optim.Adam, {"lr": 0.05, "betas": (0.8, 0.95), "eps": 1e-6}, ref_adam),
    ("adam-wd", optim.Adam, {"lr": 0.05, "weight_decay": 0.1}, ref_adam),
    ("adam-amsgrad", optim.Adam, {"lr": 0.05, "betas": (0.5, 0.6), "amsgrad": True}, ref_adam),
    ("adamw-defaults", optim.AdamW, {}, ref_adamw),
    ("adamw", optim.AdamW, {"lr": 0.05, "weight_decay": 0.3}, ref_adamw),
    ("adamw-amsgrad", optim.AdamW, {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True}, ref_adamw),
]


def _gradients(rng, shape, scales):
    # Gradients of very different sizes from step to step, so that AMSGrad's maximum and the
    # running averages actually change what happens.
    return [scale * rng.standard_normal(shape) for scale in scales]


@pytest.mark.parametrize(("cls", "settings", "reference"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_update_matches_reference_every_step(cls, settings, reference):
    rng = np.random.default_rng(42)
    # two parameters of different shapes: each must keep its own state
    p0 = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    params = [bp.nn.Parameter(a) for a in p0]
    opt = cls(params, **settings)
    refs = [reference(a, **settings) for a in p0]
    for r in refs:
        next(r)
    scales = [1.0, 3.0, 0.1, 2.0, 0.5]
    grads = [_gradients(rng, a.shape, scales) for a in p0]
    for step in range(STEPS):
        for p, g in zip(params, grads, strict=True):
            p.grad = g[step].copy()
        opt.step()
        for i, (p, r) in enumerate(zip(params, refs, strict=True)):
            expected = r.send(grads[i][step].copy())
            message = f"param {i}, step {step + 1}"
            np.testing.assert_allclose(p.data, expected, rtol=0, atol=TOL, err_msg=message)
    # and the parameters did move (a no-op optimizer would fail the comparison, but say it plainly)
    assert not np.allclose(params[0].data, p0[0])


def test_references_tell_the_variants_apart():
    """Guard for the test itself: different settings give different trajectories in the references."""
    rng = np.random.default_rng(0)
    p = rng.standard_normal(4)
    grads = _gradients(rng, 4, [1.0, 3.0, 0.1, 2.0, 0.5])

    def run(reference, **settings):
        r = reference(p, **settings)
        next(r)
        return [r.send(g) for g in grads][-1]

    finals = [
        run(ref_sgd, lr=0.1),
        run(ref_sgd, lr=0.1, momentum=0.9),
        run(ref_sgd, lr=0.1, momentum=0.9, dampening=0.3),
        run(ref_sgd, lr=0.1, momentum=0.9, nesterov=True),
        run(ref_adam, lr=0.05),
        run(ref_adam, lr=0.05, amsgrad=True, betas=(0.5, 0.6)),
        run(ref_adam, lr=0.05, weight_decay=0.3),
        run(ref_adamw, lr=0.05, weight_decay=0.3),
    ]
    for i in range(len(finals)):
        for j in range(i + 1, len(finals)):
            assert np.abs(finals[i] - finals[j]).max() > 1e-6, (i, j)


# ---------------------------------------------------------------- defaults, dtypes, bookkeeping


def _param(shape=(3,), dtype=np.float64, seed=0):
    return bp.nn.Parameter(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def test_defaults_match_pytorch():
    p = [_param()]
    sgd = optim.SGD(p).param_groups[0]
    assert sgd["momentum"] == 0 and sgd["dampening"] == 0 and sgd["weight_decay"] == 0
    assert sgd["nesterov"] is False and sgd["lr"] == 1e-3
    rms = optim.RMSprop(p).param_groups[0]
    assert (rms["lr"], rms["alpha"], rms["eps"]) == (1e-2, 0.99, 1e-8)
    assert rms["weight_decay"] == 0 and rms["momentum"] == 0
    assert rms["centered"] is False
    ada = optim.Adagrad(p).param_groups[0]
    assert (ada["lr"], ada["lr_decay"], ada["weight_decay"], ada["eps"]) == (1e-2, 0, 0, 1e-10)
    assert ada["initial_accumulator_value"] == 0
    adam = optim.Adam(p).param_groups[0]
    assert (adam["lr"], tuple(adam["betas"]), adam["eps"]) == (1e-3, (0.9, 0.999), 1e-8)
    assert adam["weight_decay"] == 0
    assert adam["amsgrad"] is False
    adamw = optim.AdamW(p).param_groups[0]
    assert (adamw["lr"], tuple(adamw["betas"]), adamw["eps"]) == (1e-3, (0.9, 0.999), 1e-8)
    assert adamw["weight_decay"] == 1e-2 and adamw["amsgrad"] is False
    assert optim.Adam(p).lr == 1e-3  # the convenience property reads the group


def test_changing_defaults_does_not_leak_between_instances():
    p = [_param()]
    opt = optim.Adam(p, lr=0.5)
    opt.param_groups[0]["lr"] = 0.7
    assert optim.Adam(p).param_groups[0]["lr"] == 1e-3


ALL_OPTIMIZERS = [
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    (optim.RMSprop, {"centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    (optim.Adagrad, {"lr_decay": 0.1, "weight_decay": 0.1, "initial_accumulator_value": 0.1}),
    (optim.Adam, {"amsgrad": True, "weight_decay": 0.1}),
    (optim.AdamW, {"amsgrad": True}),
]
OPT_IDS = ["sgd", "rmsprop", "adagrad", "adam", "adamw"]


@pytest.mark.parametrize(("cls", "settings"), ALL_OPTIMIZERS, ids=OPT_IDS)
def test_float32_parameters_stay_float32(cls, settings):
    p = _param((4, 3), np.float32)
    opt = cls([p], **settings)
    rng = np.random.default_rng(1)
    before = p.data.copy()
    for _ in range(3):
        p.grad = rng.standard_normal(p.shape).astype(np.float32)
        opt.step()
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
    assert not np.array_equal(p.data, before)


@pytest.mark.parametrize(("cls", "settings"), ALL_OPTIMIZERS, ids=OPT_IDS)
def test_zero_grad_and_params_without_grad(cls, settings):
    a, b = _param((3,), seed=1), _param((2,), seed=2)
    opt = cls([a, b], **settings)
    a.grad, b.grad = np.ones(3), np.ones(2)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    b_before = b.data.copy()
    a.grad = np.array([0.5, -1.0, 2.0])
    opt.step()  # b has no gradient: skipped, not treated as zero
    np.testing.assert_array_equal(b.data, b_before)


def test_state_starts_when_a_parameter_first_gets_a_gradient():
    """A parameter skipped for a while begins at Adam step t = 1 (its own bias correction)."""
    a, b = _param((3,), seed=1), _param((2,), seed=2)
    opt = optim.Adam([a, b], lr=0.1)
    for _ in range(4):
        a.grad = np.ones(3)
        opt.step()
    b0 = b.data.copy()
    g = np.array([0.3, -2.0])
    b.grad = g.copy()
    opt.step()
    ref = ref_adam(b0, lr=0.1)
    next(ref)
    np.testing.assert_allclose(b.data, ref.send(g), rtol=0, atol=TOL)
    # at t = 1 Adam moves every weight by almost exactly lr against the sign of its gradient
    np.testing.assert_allclose(b.data - b0, -0.1 * np.sign(g), atol=1e-6)


def test_accepts_a_generator_of_parameters():
    model = bp.nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    assert len(opt.param_groups[0]["params"]) == 2


def test_constructor_errors():
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="item 1"):
        optim.Adam([_param(), np.ones(3)])
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([_param()], lr=-0.1)
    with pytest.raises(TypeError, match="momentun"):
        optim.SGD([_param()], lr=0.1, momentun=0.9)
    with pytest.raises(TypeError, match="unknown"):
        optim.Adam([_param()], beta1=0.9)
    with pytest.raises(ValueError, match=r"[Nn]esterov"):
        optim.SGD([_param()], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"[Nn]esterov"):
        optim.SGD([_param()], lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)


# ---------------------------------------------------------------- learning-rate schedules


def _lrs(scheduler, steps):
    """The lr in the optimizer's group at t = 0, 1, ..., steps - 1 (stepping after each read)."""
    seen = []
    for _ in range(steps):
        seen.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.step()
    return seen


def test_step_lr():
    opt = optim.SGD([_param()], lr=0.1)
    expected = [0.1] * 3 + [0.05] * 3 + [0.025] * 3 + [0.0125]
    np.testing.assert_allclose(_lrs(optim.StepLR(opt, step_size=3, gamma=0.5), 10), expected, rtol=1e-15)


def test_exponential_lr():
    opt = optim.SGD([_param()], lr=0.2)
    expected = [0.2, 0.18, 0.162, 0.1458, 0.13122, 0.118098]
    np.testing.assert_allclose(_lrs(optim.ExponentialLR(opt, gamma=0.9), 6), expected, rtol=1e-13)


def test_cosine_annealing_lr():
    opt = optim.SGD([_param()], lr=1.0)
    # T_max = 4, eta_min = 0.2: 0.2 + 0.8 (1 + cos(pi t / 4)) / 2
    c = math.sqrt(2) / 2
    expected = [1.0, 0.2 + 0.4 * (1 + c), 0.6, 0.2 + 0.4 * (1 - c), 0.2]
    got = _lrs(optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.2), 5)
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_warmup_cosine_lr():
    opt = optim.SGD([_param()], lr=0.4)
    sched = optim.WarmupCosineLR(opt, warmup_steps=4, total_steps=8, eta_min=0.0)
    # warm-up: base_lr (t + 1) / warmup_steps, reaching base_lr on the last warm-up step;
    # then base_lr (1 + cos(pi (t - 4) / 4)) / 2 until t = total_steps, and eta_min after that
    c = math.sqrt(2) / 2
    expected = [0.1, 0.2, 0.3, 0.4, 0.4, 0.2 * (1 + c), 0.2, 0.2 * (1 - c), 0.0, 0.0]
    got = _lrs(sched, 10)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    assert max(got) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        optim.WarmupCosineLR(opt, warmup_steps=8, total_steps=8)


def test_schedule_sets_the_lr_that_step_uses():
    p = bp.nn.Parameter(np.zeros(2))
    opt = optim.SGD([p], lr=0.3)
    sched = optim.StepLR(opt, step_size=2, gamma=0.1)
    moves = []
    for _ in range(5):
        before = p.data.copy()
        p.grad = np.ones(2)
        opt.step()
        moves.append(float(before[0] - p.data[0]))  # plain SGD with g = 1 moves by exactly lr
        assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]
        sched.step()
    np.testing.assert_allclose(moves, [0.3, 0.3, 0.03, 0.03, 0.003], rtol=1e-12)


# ---------------------------------------------------------------- gradient clipping


def _params_with_grads(seed=0):
    rng = np.random.default_rng(seed)
    params = [_param((3, 2), seed=1), _param((4,), seed=2), _param((2,), seed=3)]
    params[0].grad = rng.standard_normal((3, 2)) * 3
    params[1].grad = rng.standard_normal(4) * 3
    # params[2] has no gradient: ignored by the norm and by clipping
    return params


def test_grad_norm_is_global():
    params = _params_with_grads()
    by_hand = math.sqrt(sum(float((p.grad**2).sum()) for p in params[:2]))
    assert optim.grad_norm(params) == pytest.approx(by_hand, rel=1e-14)
    assert optim.grad_norm(params[0]) == pytest.approx(np.linalg.norm(params[0].grad), rel=1e-14)
    # the global norm is not the sum (or the max) of the per-parameter norms
    assert optim.grad_norm(params) < sum(np.linalg.norm(p.grad) for p in params[:2])


def test_clip_grad_norm_rescales_all_gradients_together():
    params = _params_with_grads()
    before = [p.grad.copy() for p in params[:2]]
    total = math.sqrt(sum(float((g**2).sum()) for g in before))
    max_norm = 1.5
    assert total > 2 * max_norm  # the case is one that needs clipping
    returned = optim.clip_grad_norm_(params, max_norm)
    assert returned == pytest.approx(total, rel=1e-14)  # the norm before clipping
    after = math.sqrt(sum(float((p.grad**2).sum()) for p in params[:2]))
    assert after == pytest.approx(max_norm, rel=1e-6)
    # one common factor for every gradient: the direction of the full gradient is kept
    factors = [p.grad / g for p, g in zip(params[:2], before, strict=True)]
    factor = factors[0].flat[0]
    for f in factors:
        np.testing.assert_allclose(f, factor, rtol=1e-12)
    assert factor == pytest.approx(max_norm / total, rel=1e-6)
    assert params[2].grad is None


def test_clip_grad_norm_leaves_small_gradients_alone():
    params = _params_with_grads()
    before = [p.grad.copy() for p in params[:2]]
    total = optim.grad_norm(params)
    assert optim.clip_grad_norm_(params, total * 1.01) == pytest.approx(total)
    for p, g in zip(params[:2], before, strict=True):
        np.testing.assert_array_equal(p.grad, g)


def test_clip_grad_value_clamps_elementwise():
    params = _params_with_grads()
    before = [p.grad.copy() for p in params[:2]]
    optim.clip_grad_value_(params, 1.0)
    for p, g in zip(params[:2], before, strict=True):
        np.testing.assert_array_equal(p.grad, np.clip(g, -1.0, 1.0))
    assert (np.abs(before[0]) > 1).any() and (np.abs(before[0]) < 1).any()  # both cases occurred


# ---------------------------------------------------------------- end to end through the engine

END_TO_END = [
    (optim.SGD, {"lr": 0.05}),
    (optim.SGD, {"lr": 0.02, "momentum": 0.9}),
    (optim.SGD, {"lr": 0.02, "momentum": 0.9, "nesterov": True}),
    (optim.RMSprop, {"lr": 0.02}),
    (optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5}),
    (optim.Adagrad, {"lr": 0.5}),
    (optim.Adam, {"lr": 0.1}),
    (optim.Adam, {"lr": 0.1, "amsgrad": True}),
    (optim.AdamW, {"lr": 0.1}),
]


@pytest.mark.parametrize(
    ("cls", "settings"), END_TO_END, ids=[f"{c.__name__}-{i}" for i, (c, _) in enumerate(END_TO_END)]
)
def test_minimises_a_quadratic_bowl(cls, settings):
    rng = np.random.default_rng(3)
    A_np = rng.standard_normal((10, 4)) / math.sqrt(10)
    w_true = rng.standard_normal(4)
    A, b = bp.tensor(A_np), bp.tensor(A_np @ w_true)  # the minimum, at w_true, is 0
    w = bp.nn.Parameter(np.zeros(4))
    opt = cls([w], **settings)

    def loss():
        r = A @ w - b
        return (r * r).sum()

    first = float(loss().item())
    for _ in range(150):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    final = float(loss().item())
    assert final < 0.1 * first, (first, final)
