"""bp.compile: a traced replay gives eager's results bit for bit, or runs eagerly and says why."""

from __future__ import annotations

import gc
import re
import tracemalloc
import warnings

import numpy as np
import pytest

import bpcore as bp

F = bp.nn.functional


# ----------------------------------------------------------------------------- models and steps


def mlp():
    return bp.nn.Sequential(bp.nn.Linear(4, 16), bp.nn.ReLU(), bp.nn.Linear(16, 16), bp.nn.Tanh(), bp.nn.Linear(16, 3))


def conv_net():
    return bp.nn.Sequential(
        bp.nn.Conv2d(1, 3, 3, padding=1), bp.nn.ReLU(), bp.nn.MaxPool2d(2), bp.nn.Flatten(), bp.nn.Linear(3 * 3 * 3, 3)
    )


class LSTMNet(bp.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = bp.nn.LSTM(4, 8)
        self.head = bp.nn.Linear(8, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class GRUNet(bp.nn.Module):
    """Two stacked GRU layers (the upper one reads the lower one's h_t) and a read-out of every step."""

    def __init__(self):
        super().__init__()
        self.gru = bp.nn.GRU(4, 6, num_layers=2)
        self.head = bp.nn.Linear(6, 3)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out).mean(axis=1)


MODELS = {
    "mlp": (mlp, lambda rng, n: rng.standard_normal((n, 4))),
    "conv": (conv_net, lambda rng, n: rng.standard_normal((n, 1, 6, 6))),
    "lstm": (LSTMNet, lambda rng, n: rng.standard_normal((n, 5, 4))),
    "gru": (GRUNet, lambda rng, n: rng.standard_normal((n, 5, 4))),
}
OPTIMIZERS = {
    "sgd_momentum": lambda params: bp.optim.SGD(params, lr=0.1, momentum=0.9),
    "adam": lambda params: bp.optim.Adam(params, lr=0.01),
}


def setup(model_name: str, optimizer_name: str, dtype=np.float64, seed: int = 0):
    bp.manual_seed(seed)
    model = MODELS[model_name][0]().to(dtype)
    optimizer = OPTIMIZERS[optimizer_name](model.parameters())

    def train_step(x, y):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(bp.Tensor(x)), y)
        loss.backward()
        optimizer.step()
        return loss

    return model, optimizer, train_step


def batches(model_name: str, count: int, n: int = 6, dtype=np.float64, seed: int = 1):
    rng = np.random.default_rng(seed)
    make_x = MODELS[model_name][1]
    return [(make_x(rng, n).astype(dtype), rng.integers(0, 3, n)) for _ in range(count)]


def same(a, b) -> bool:
    """Bit for bit: same shape, dtype and bytes (NaN equal to NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def assert_same_state(model_a, opt_a, model_b, opt_b):
    for (name, p), (_, q) in zip(model_a.named_parameters(), model_b.named_parameters(), strict=True):
        assert same(p.data, q.data), f"parameter {name} differs"
        assert (p.grad is None) == (q.grad is None), f"{name}.grad: one is None"
        if p.grad is not None:
            assert same(p.grad, q.grad), f"{name}.grad differs"
    params_a, params_b = list(model_a.parameters()), list(model_b.parameters())
    for p, q in zip(params_a, params_b, strict=True):
        state_a, state_b = opt_a.state.get(id(p), {}), opt_b.state.get(id(q), {})
        assert state_a.keys() == state_b.keys()
        for key in state_a:
            assert same(state_a[key], state_b[key]), f"optimizer state {key} differs"


# ----------------------------------------------------------------------------- bitwise equal to eager


@pytest.mark.parametrize("optimizer_name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_replay_is_bitwise_eager(model_name, optimizer_name):
    data = batches(model_name, 6)
    model_e, opt_e, eager = setup(model_name, optimizer_name)
    model_c, opt_c, step_fn = setup(model_name, optimizer_name)
    step = bp.compile(step_fn)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bp.CompileWarning)  # a fallback would make this test prove nothing
        for x, y in data:
            loss_e, loss_c = eager(x, y), step(x, y)
            assert isinstance(loss_c, bp.Tensor)
            assert same(loss_e.data, loss_c.data)
            assert loss_c.item() == loss_e.item()
            assert_same_state(model_e, opt_e, model_c, opt_c)
    assert step.fallback_reason is None
    assert step.replays == 4  # the first call is recorded, the second checks the replay, the rest replay


def test_float32_mlp_with_returned_float_and_tuple():
    data = batches("mlp", 5, dtype=np.float32)
    results = []
    for compiled in (False, True):
        model, optimizer, _ = setup("mlp", "adam", dtype=np.float32)

        def train_step(x, y, model=model, optimizer=optimizer):
            model.zero_grad()
            logits = model(bp.Tensor(x))
            loss = F.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()
            return loss.item(), logits

        fn = bp.compile(train_step) if compiled else train_step
        results.append([fn(x, y) for x, y in data])
        if compiled:
            assert fn.replays == 3 and fn.fallback_reason is None
    for (loss_e, logits_e), (loss_c, logits_c) in zip(*results, strict=True):
        assert type(loss_c) is float and loss_c == loss_e
        assert logits_c.dtype == np.float32 and same(logits_e.data, logits_c.data)


def test_gradients_equal_eager_in_float64():
    """Gradients only (no optimizer): a float64 regression whose .grad accumulates over calls, as eager."""
    rng = np.random.default_rng(3)
    data = rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 5, 1))
    grads = []
    for compiled in (False, True):
        bp.manual_seed(5)
        model = bp.nn.Sequential(bp.nn.Linear(3, 8), bp.nn.Sigmoid(), bp.nn.Linear(8, 1))

        def loss_and_grad(x, t, model=model):
            loss = F.mse_loss(model(bp.Tensor(x)), t)
            loss.backward()  # no zero_grad: gradients accumulate across calls, in both modes
            return loss

        fn = bp.compile(loss_and_grad) if compiled else loss_and_grad
        for x, t in zip(*data, strict=True):
            fn(x, t)
        grads.append([p.grad.copy() for p in model.parameters()])
        assert all(g.dtype == np.float64 for g in grads[-1])
    for g_eager, g_compiled in zip(*grads, strict=True):
        assert same(g_eager, g_compiled)


def test_gradients_match_a_numerical_check():
    """Not only equal to eager: equal to finite differences (so a shared mistake cannot hide)."""
    bp.manual_seed(0)
    w = bp.tensor(np.random.default_rng(0).standard_normal((3, 2)), requires_grad=True)
    optimizer = bp.optim.SGD([w], lr=0.0)

    def loss_fn(x):
        optimizer.zero_grad()
        loss = ((bp.Tensor(x) @ w).tanh() ** 2).sum()
        loss.backward()
        return loss

    step = bp.compile(loss_fn)
    x = np.random.default_rng(1).standard_normal((4, 3))
    for _ in range(3):
        step(x)
    assert step.replays == 1
    eps, numerical = 1e-6, np.zeros_like(w.data)
    for index in np.ndindex(w.shape):
        for sign in (1, -1):
            shifted = w.data.copy()
            shifted[index] += sign * eps
            numerical[index] += sign * (np.tanh(x @ shifted) ** 2).sum() / (2 * eps)
    np.testing.assert_allclose(w.grad, numerical, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- signatures


def test_new_shape_traces_again_and_each_shape_keeps_its_record():
    model_e, opt_e, eager = setup("mlp", "sgd_momentum")
    model_c, opt_c, step_fn = setup("mlp", "sgd_momentum")
    step = bp.compile(step_fn)
    small, large = batches("mlp", 4, n=4), batches("mlp", 4, n=9, seed=2)
    for (xs, ys), (xl, yl) in zip(small, large, strict=True):
        for x, y in ((xs, ys), (xl, yl)):
            assert same(eager(x, y).data, step(x, y).data)
            assert_same_state(model_e, opt_e, model_c, opt_c)
    assert step.traces == 4  # two per shape
    assert step.replays == 4
    x, y = large[0][0].astype(np.float32), large[0][1]  # a new dtype is a new signature too
    step(x, y)
    assert step.traces == 5


def test_plain_arguments_are_part_of_the_signature():
    w = bp.tensor(np.ones(3), requires_grad=True)

    def scaled(x, factor):
        return ((bp.Tensor(x) * w) * factor).sum()

    step = bp.compile(scaled)
    x = np.arange(3.0)
    assert [step(x, 2.0).item() for _ in range(3)] == [6.0, 6.0, 6.0]
    assert step(x, 3.0).item() == 9.0  # not the replay of factor=2.0
    assert step.traces == 3



def test_signatures_past_the_limit_run_eagerly_and_the_cache_stops_growing():
    def make():
        env, _ = case()

        def train_step(x, y, scale):  # a float passed as an argument: one signature per value
            env["opt"].zero_grad()
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), y) * scale
            loss.backward()
            env["opt"].step()
            return loss

        return env, train_step

    (env_e, eager), (env_c, train_step) = make(), make()
    step = bp.compile(train_step, max_signatures=3)
    scales = [1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 4.0, 1.0, 1.0, 6.0]
    with pytest.warns(bp.CompileWarning) as caught:
        for i, scale in enumerate(scales):
            x, y = np.random.default_rng(20 + i).standard_normal((8, 4)), CASE_Y[i % 6]
            assert same(eager(x, y, scale).data, step(x, y, scale).data), f"call {i + 1} (scale {scale}) differs"
            assert len(step._entries) <= 3
    assert_same_state(env_e["model"], env_e["opt"], env_c["model"], env_c["opt"])
    assert [str(w.message) for w in caught if "more than 3 signatures" in str(w.message)] != []
    assert len(caught) == 1, "one warning for the reason, not one per call"
    assert (step.traces, step.replays, step.eager_calls) == (5, 3, 4)  # 4.0, 5.0, 4.0, 6.0 came past the limit
    assert step.fallback_reason is not None and "set it on the optimizer" in step.fallback_reason


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_max_signatures_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(ValueError, match="max_signatures must be a whole number >= 1"):
        bp.compile(lambda x: x, max_signatures=bad)


# ----------------------------------------------------------------------------- eager fallbacks, with the reason


def run_three(step, *args):
    with pytest.warns(bp.CompileWarning) as caught:
        outputs = [step(*args) for _ in range(3)]
    return outputs, [str(w.message) for w in caught]


def simple_model():
    bp.manual_seed(0)
    model = bp.nn.Linear(3, 2)
    return model, bp.optim.SGD(model.parameters(), lr=0.1)


def test_hook_runs_eagerly():
    model, optimizer = simple_model()
    calls = []
    model.weight.register_hook(lambda g: calls.append(1))

    def train_step(x):
        optimizer.zero_grad()
        loss = model(bp.Tensor(x)).sum()
        loss.backward()
        optimizer.step()
        return loss

    step = bp.compile(train_step)
    _, messages = run_three(step, np.ones((2, 3)))
    assert len(calls) == 3  # the hook ran on every call: each one was eager
    assert "hook" in step.fallback_reason
    assert len(messages) == 1  # one warning, not one per call
    assert step.replays == 0


def test_anomaly_mode_runs_eagerly_and_names_the_op():
    w = bp.tensor(np.ones(3), requires_grad=True)

    def f(x):
        return (bp.Tensor(x) * w).log().sum()

    step = bp.compile(f)
    step(np.ones((2, 3)))
    with bp.detect_anomaly(), pytest.warns(bp.CompileWarning, match="anomaly"):
        with pytest.raises(bp.AnomalyError, match="log"):
            step(-np.ones((2, 3)))
    assert "anomaly" in step.fallback_reason


def acting_step(body):
    model, optimizer = simple_model()

    def train_step(x):
        optimizer.zero_grad()
        loss = body(model(bp.Tensor(x)).sum())
        loss.backward()
        optimizer.step()
        return loss

    return model, train_step


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (lambda loss: loss * 2 if loss > 0 else loss, "comparison"),
        (lambda loss: loss * 2 if bool(loss.sum() > 0) else loss, "comparison"),
        (lambda loss: loss * 2 if loss.item() > 0 else loss, "item"),
        (lambda loss: loss * (2 if float(loss) > 0 else 1), "item"),
        (lambda loss: loss * loss.tolist(), "tolist"),
    ],
)
def test_python_acting_on_a_value_runs_eagerly(body, reason):
    x = np.ones((2, 3))
    model, train_step = acting_step(body)
    step = bp.compile(train_step)
    outputs, messages = run_three(step, x)
    assert reason in step.fallback_reason and "eager" in messages[0]
    assert step.replays == 0
    model_e, eager = acting_step(body)
    expected = [eager(x) for _ in range(3)]
    assert [o.item() for o in outputs] == [e.item() for e in expected]
    assert same(model.weight.data, model_e.weight.data)


def test_bool_of_a_tensor_runs_eagerly():
    w = bp.tensor([1.0, -1.0], requires_grad=True)

    def f(x):
        total = (bp.Tensor(x) * w).sum()
        return total if bool(total.sum() * 0 == 0) else -total

    step = bp.compile(f)
    run_three(step, np.ones(2))
    assert "comparison" in step.fallback_reason or "bool" in step.fallback_reason


def numpy_update_step():
    model, _ = simple_model()

    def train_step(x):
        model.zero_grad()
        loss = (model(bp.Tensor(x)) ** 2).sum()
        loss.backward()
        model.weight.data -= 0.01 * model.weight.grad  # plain numpy: invisible to the tracer
        return loss

    return model, train_step


def test_unrecorded_side_effect_is_caught_by_the_check():
    """A parameter changed with numpy (not an optimizer) would be skipped by the replay: the second call sees it."""
    x = np.ones((2, 3))
    model, train_step = numpy_update_step()
    step = bp.compile(train_step)
    run_three(step, x)
    assert "parameter" in step.fallback_reason
    model_e, eager = numpy_update_step()
    for _ in range(3):
        eager(x)
    assert same(model.weight.data, model_e.weight.data)  # every call was eager, so the same weights


def test_grad_reset_by_hand_is_caught_by_the_check():
    w = bp.tensor([1.0, 2.0], requires_grad=True)

    def f(x):
        w.grad = None  # not an optimizer's zero_grad: the replay would not do it
        loss = (bp.Tensor(x) * w).sum()
        loss.backward()
        return loss

    step = bp.compile(f)
    run_three(step, np.ones(2))
    assert ".grad" in step.fallback_reason
    assert same(w.grad, np.ones(2))  # as eager: reset, then one gradient


def test_dropout_masks_are_not_frozen():
    bp.manual_seed(0)
    model = bp.nn.Sequential(bp.nn.Linear(3, 8), bp.nn.Dropout(0.5), bp.nn.Linear(8, 1))

    def f(x):
        return model(bp.Tensor(x)).sum()

    step = bp.compile(f)
    outputs, _ = run_three(step, np.ones((4, 3)))
    assert "random numbers" in step.fallback_reason and step.replays == 0
    assert len({o.item() for o in outputs}) == 3  # a fresh mask each call, as eager


def test_different_ops_on_the_second_call_run_eagerly():
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    calls = []

    def f(x):
        calls.append(1)
        y = bp.Tensor(x) * w
        return (y.exp() if len(calls) % 2 else y.tanh()).sum()  # Python state outside the arguments

    step = bp.compile(f)
    run_three(step, np.ones(2))
    assert "different ops" in step.fallback_reason
    assert len(calls) == 3


def test_returning_item_is_not_a_fallback():
    model, optimizer = simple_model()

    def train_step(x):
        optimizer.zero_grad()
        loss = model(bp.Tensor(x)).sum()
        loss.backward()
        optimizer.step()
        return loss.item()

    step = bp.compile(train_step)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bp.CompileWarning)
        values = [step(np.ones((2, 3))) for _ in range(4)]
    assert step.replays == 2 and all(type(v) is float for v in values)
    assert values[0] != values[-1]  # the weights moved: the returned value is recomputed, not frozen


# ----------------------------------------------------------------------------- misuse and resources


@pytest.mark.parametrize("not_callable", [3, "train_step", None, [lambda: 0]])
def test_compile_of_a_non_callable_says_what_it_got(not_callable):
    with pytest.raises(TypeError, match=f"expects a function.*got {type(not_callable).__name__}"):
        bp.compile(not_callable)


def test_errors_inside_the_function_propagate_and_nothing_is_cached():
    def f(x):
        return bp.Tensor(x) @ bp.Tensor(np.ones((5, 2)))

    step = bp.compile(f)
    with pytest.raises(bp.ShapeError, match="matmul"):
        step(np.ones((2, 3)))
    assert bp.is_grad_enabled() and bp.tensor(1.0).item() == 1.0  # nothing left switched on
    with pytest.raises(bp.ShapeError):
        step(np.ones((2, 3)))
    assert step.replays == 0


def test_no_memory_growth_over_many_calls():
    _, _, step_fn = setup("mlp", "adam")
    step = bp.compile(step_fn)
    x, y = batches("mlp", 1)[0]
    for _ in range(20):
        step(x, y)
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(50):
            step(x, y)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(500):
            step(x, y)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 20_000, f"{after - before} bytes more after 500 further calls"


def test_fewer_python_calls_than_eager():
    """The qualitative claim behind the speed-up, counted rather than timed."""
    import subprocess
    import sys

    # Counted in a fresh interpreter, as notebook 08 does in a fresh kernel: sys.setprofile sees whatever else the
    # process has installed, and inside the full test run (many modules, other tests' state) the count stalled.
    script = (
        "from bpcore.labs import cost; c = cost.python_calls_per_step(); "
        "print(c.eager, c.compiled, c.eager_ops, c.compiled_ops)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    eager, compiled, eager_ops, compiled_ops = map(int, done.stdout.split())
    assert compiled * 2 < eager
    assert compiled_ops == eager_ops  # the same primitives run, only the bookkeeping goes


def test_step_profile_and_timing_have_every_part():
    import json
    import subprocess
    import sys

    from bpcore.labs import cost

    # In a fresh interpreter, as notebook 08's kernel is (see test_fewer_python_calls_than_eager).
    script = (
        "import json; from bpcore.labs import cost; "
        "print(json.dumps([cost.eager_step_profile(steps=20), cost.step_microseconds(rounds=1, steps=3)]))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    shares, times = json.loads(done.stdout)
    assert list(shares) == list(cost.STEP_PARTS)
    assert all(share >= 0 for share in shares.values()) and sum(shares.values()) == pytest.approx(1.0)
    assert set(times) == {"eager", "bp.compile"} and all(t > 0 for t in times.values())


def test_in_place_change_inside_the_graph_and_keyword_arguments():
    results = []
    for compiled in (False, True):
        bp.manual_seed(2)
        model = bp.nn.Linear(3, 4)
        optimizer = bp.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)

        def train_step(x, *, target, model=model, optimizer=optimizer):
            optimizer.zero_grad()
            h = model(bp.Tensor(x))
            h += 1.0  # recorded as an op: h now holds the add's output
            h *= h
            loss = F.mse_loss(h, target)
            loss.backward()
            optimizer.step()
            return loss

        fn = bp.compile(train_step) if compiled else train_step
        rng = np.random.default_rng(4)
        results.append([fn(rng.standard_normal((5, 3)), target=rng.standard_normal((5, 4))).item() for _ in range(5)])
        results.append(model.weight.data.copy())
        if compiled:
            assert fn.replays == 3 and fn.fallback_reason is None
    assert results[0] == results[2]
    assert same(results[1], results[3])


def retain_grad_step():
    model, optimizer = simple_model()

    def train_step(x):
        optimizer.zero_grad()
        hidden = model(bp.Tensor(x))
        hidden.retain_grad()
        loss = (hidden * hidden).sum()
        loss.backward()
        optimizer.step()
        return hidden.grad

    return train_step


def checkpoint_step():
    model, optimizer = simple_model()

    def train_step(x):
        optimizer.zero_grad()
        loss = bp.checkpoint(model, bp.Tensor(x)).sum()
        loss.backward()
        optimizer.step()
        return loss

    return train_step


@pytest.mark.parametrize(
    ("make", "reason"), [(retain_grad_step, "retain_grad"), (checkpoint_step, "inside backward")]
)
def test_graph_features_the_replay_cannot_follow_run_eagerly(make, reason):
    x = np.arange(6.0).reshape(2, 3)
    step = bp.compile(make())
    outputs, _ = run_three(step, x)
    assert reason in step.fallback_reason and step.replays == 0
    eager = make()
    for output in outputs:
        assert _same_output(output, eager(x))


def _same_output(a, b) -> bool:
    return same(a.data, b.data) if isinstance(a, bp.Tensor) else same(a, b)


# ----------------------------------------------------------------------------- state the record must not freeze

CASE_X = [np.random.default_rng(7 + i).standard_normal((8, 4)) for i in range(6)]  # six different batches
CASE_Y = [np.random.default_rng(8 + i).integers(0, 3, 8) for i in range(6)]
LOSS_SCALE = 1.0  # read by scaled_step below, changed between calls by a test


def case(model_layers=None, optimizer=lambda ps: bp.optim.SGD(ps, lr=0.1), extra=None):
    """A fresh model, optimizer and step; ``extra(env)`` runs between backward and the optimizer step."""
    bp.manual_seed(0)
    model = bp.nn.Sequential(*(model_layers() if model_layers else
                               [bp.nn.Linear(4, 8), bp.nn.Tanh(), bp.nn.Linear(8, 3)]))
    env = {"model": model, "opt": optimizer(model.parameters())}

    def train_step(x, y):
        env["opt"].zero_grad()
        loss = F.cross_entropy(model(bp.Tensor(x)), y)
        loss.backward()
        if extra is not None:
            extra(env)
        env["opt"].step()
        return loss

    return env, train_step


def compare_six_calls(make, between=lambda env, i: None, check=lambda env: (), inputs=CASE_X):
    """Eager and compiled side by side over six calls: losses, parameters and ``check(env)`` bit for bit."""
    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(6):
        between(env_e, i)
        between(env_c, i)
        loss_e, loss_c = eager(inputs[i], CASE_Y[i]), step(inputs[i], CASE_Y[i])
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        for (name, p), (_, q) in zip(env_e["model"].named_parameters(), env_c["model"].named_parameters(), strict=True):
            assert same(p.data, q.data), f"call {i + 1}: parameter {name} differs from eager"
        for a, b in zip(check(env_e), check(env_c), strict=True):
            assert same(a, b), f"call {i + 1}: {check.__name__} differs from eager"
    return step


def bn_layers():
    return [bp.nn.Linear(4, 8), bp.nn.BatchNorm1d(8), bp.nn.Tanh(), bp.nn.Linear(8, 3)]


def dropout_layers():
    return [bp.nn.Linear(4, 8), bp.nn.Dropout(0.3, rng=np.random.default_rng(3)), bp.nn.Linear(8, 3)]


def running_stats_and_eval_output(env):
    model, bn = env["model"], env["model"][1]
    model.eval()
    out = model(bp.Tensor(CASE_X[0])).data
    model.train()
    return bn.running_mean, bn.running_var, bn.num_batches_tracked, out


def test_batchnorm_running_statistics_are_updated_on_every_replay():
    step = compare_six_calls(lambda: case(bn_layers), check=running_stats_and_eval_output)
    assert step.replays == 4 and step.fallback_reason is None


@pytest.mark.parametrize("train_at", [lambda i: i < 3, lambda i: i >= 3, lambda i: i % 2 == 0],
                         ids=["eval-from-call-4", "train-from-call-4", "alternating"])
@pytest.mark.parametrize("layers", [bn_layers, dropout_layers], ids=["batchnorm", "dropout"])
def test_switching_train_and_eval_between_calls_traces_again(layers, train_at):
    compare_six_calls(lambda: case(layers), between=lambda env, i: env["model"].train(train_at(i)))


def test_scheduler_stepping_inside_the_step_is_replayed():
    def make():
        env, train_step = case(optimizer=lambda ps: bp.optim.SGD(ps, lr=0.5, momentum=0.9))
        scheduler = bp.optim.StepLR(env["opt"], step_size=3, gamma=0.1)  # the rate first drops on the 3rd call

        def step_and_schedule(x, y):
            loss = train_step(x, y)
            scheduler.step()
            return loss

        return env, step_and_schedule

    step = compare_six_calls(make, check=lambda env: (env["opt"].param_groups[0]["lr"],))
    assert step.replays == 4


def test_clipping_that_starts_after_the_check_is_replayed():
    """The clip factor depends on the gradients: 1 on the first calls (small inputs), small later (large ones)."""
    def clip(env):
        bp.nn.utils.clip_grad_norm_(env["model"].parameters(), 1.0)

    inputs = [x * (0.01 * (i + 1) if i < 3 else 50.0 + i) for i, x in enumerate(CASE_X)]  # (no two calls alike)
    step = compare_six_calls(lambda: case(extra=clip), inputs=inputs)
    assert step.replays == 4 and step.fallback_reason is None


@pytest.mark.parametrize("change", ["freeze", "unfreeze", "replace"])
def test_parameters_frozen_or_replaced_between_calls_trace_again(change):
    def between(env, i):
        fc = env["model"][2]
        if change == "freeze":
            env["model"][0].weight.requires_grad_(i < 3)
        elif change == "unfreeze":
            env["model"][0].weight.requires_grad_(i >= 3)
        elif i == 3:
            fc.weight = bp.nn.Parameter(np.full(fc.weight.shape, 0.1))
            env["opt"].param_groups[0]["params"][2] = fc.weight

    compare_six_calls(case, between=between)


def scaled(loss):
    return loss * LOSS_SCALE  # a module-level helper of the step reading the global


@pytest.mark.parametrize("through_a_helper", [False, True])
def test_a_global_read_by_the_step_that_changes_traces_again(through_a_helper):
    global LOSS_SCALE

    def make():
        bp.manual_seed(0)
        model = bp.nn.Linear(4, 3)
        optimizer = bp.optim.SGD(model.parameters(), lr=0.1)

        def scaled_step(x, y):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(bp.Tensor(x)), y) * LOSS_SCALE
            loss.backward()
            optimizer.step()
            return loss

        def step_with_helper(x, y):  # names only its helper
            optimizer.zero_grad()
            loss = scaled(F.cross_entropy(model(bp.Tensor(x)), y))
            loss.backward()
            optimizer.step()
            return loss

        return {"model": model}, step_with_helper if through_a_helper else scaled_step

    try:
        compare_six_calls(make, between=lambda env, i: globals().__setitem__("LOSS_SCALE", 1.0 if i < 3 else 4.0))
    finally:
        LOSS_SCALE = 1.0


@pytest.mark.parametrize("bad, error", [(5, "targets must lie in"), (-1, "targets must lie in"),
                                        (np.float64(1.0), "integer class indices")])
def test_bad_targets_after_the_check_raise_as_eager(bad, error):
    env, train_step = case()
    step = bp.compile(train_step)
    for i in range(4):
        step(CASE_X[i], CASE_Y[i])
    assert step.replays == 2
    y = CASE_Y[4].astype(type(bad)) if isinstance(bad, np.floating) else CASE_Y[4].copy()
    y[3] = bad
    with pytest.raises((ValueError, TypeError), match=error):
        step(CASE_X[4], y)
    assert all(p.grad is None for p in env["model"].parameters())  # as eager: zero_grad ran before the loss
    step(CASE_X[5], CASE_Y[5])  # good targets again: traced anew, no stale record
    assert step.fallback_reason is None


def test_ignored_targets_appearing_later_are_not_replayed_as_kept():
    _, eager = case()
    _, train_step = case()
    step = bp.compile(train_step)
    for i in range(5):
        y = CASE_Y[i].copy()
        if i == 4:
            y[0] = -100  # cross_entropy's ignore_index: a different computation
        assert same(eager(CASE_X[i], y).data, step(CASE_X[i], y).data), f"call {i + 1} differs from eager"


@pytest.mark.parametrize("optimizer", [
    lambda ps: bp.optim.SGD(ps, lr=0.1),
    lambda ps: bp.optim.SGD(ps, lr=0.1, weight_decay=0.01),
    lambda ps: bp.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: bp.optim.Adam(ps, lr=0.01, amsgrad=True),
], ids=["plain", "weight-decay", "nesterov", "amsgrad"])
def test_optimizer_settings_and_lr_changed_by_hand(optimizer):
    step = compare_six_calls(lambda: case(optimizer=optimizer),
                             between=lambda env, i: env["opt"].param_groups[0].__setitem__("lr", 0.1 / (i + 1)))
    assert step.replays == 4


def returning(kind):
    def make():
        env, _ = case()
        model, optimizer = env["model"], env["opt"]

        def train_step(x, y):
            optimizer.zero_grad()
            logits = model(bp.Tensor(x))
            loss = F.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()
            return (loss, logits) if kind == "tuple" else {"loss": loss, "logits": logits, "kind": kind}

        return env, train_step

    return make


@pytest.mark.parametrize("kind", ["tuple", "dict"])
def test_returned_tuple_or_dict_equals_eager(kind):
    (_, eager), (_, step_fn) = returning(kind)(), returning(kind)()
    step = bp.compile(step_fn)
    for i in range(6):
        out_e, out_c = eager(CASE_X[i], CASE_Y[i]), step(CASE_X[i], CASE_Y[i])
        if kind == "dict":
            assert out_c["kind"] == "dict"
            out_e, out_c = (out_e["loss"], out_e["logits"]), (out_c["loss"], out_c["logits"])
        for a, b in zip(out_e, out_c, strict=True):
            assert same(a.data, b.data), f"call {i + 1}: a returned tensor differs from eager"
    assert step.replays == 4


def test_float32_and_dropout_in_eval_mode_replay_as_eager():
    def make():
        env, train_step = case(dropout_layers)
        env["model"].to(np.float32).eval()
        return env, train_step

    step = compare_six_calls(make, inputs=[x.astype(np.float32) for x in CASE_X])  # (cast inside: frozen, eager)
    assert step.replays == 4


def test_a_captured_tensor_changed_in_place_is_read_live():
    def make():
        env, _ = case()
        model, optimizer, scale = env["model"], env["opt"], bp.tensor(np.ones(4))
        env["scale"] = scale

        def train_step(x, y):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(bp.Tensor(x) * scale), y)
            loss.backward()
            optimizer.step()
            return loss

        return env, train_step

    step = compare_six_calls(make, between=lambda env, i: env["scale"].data.__imul__(0.5) if i >= 3 else None)
    assert step.replays == 4


def test_gradient_accumulation_on_a_python_counter_runs_eagerly_and_says_why():
    def make():
        env, _ = case()
        model, optimizer, count = env["model"], env["opt"], [0]

        def train_step(x, y):
            count[0] += 1
            if count[0] % 2 == 1:
                optimizer.zero_grad()
            loss = F.cross_entropy(model(bp.Tensor(x)), y)
            loss.backward()
            if count[0] % 2 == 0:
                optimizer.step()
            return loss

        return env, train_step

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        step = compare_six_calls(make)
    assert step.replays == 0 and "different ops" in step.fallback_reason


def test_an_eval_step_sees_batchnorm_statistics_changed_in_place():
    def make():
        bp.manual_seed(0)
        model = bp.nn.Sequential(*bn_layers()).eval()
        return model, lambda x: model(bp.Tensor(x))

    (model_e, eager), (model_c, eval_fn) = make(), make()
    step = bp.compile(eval_fn)
    for i in range(6):
        if i == 3:
            model_e[1].running_mean[...] = 2.0
            model_c[1].running_mean[...] = 2.0
        assert same(eager(CASE_X[i]).data, step(CASE_X[i]).data), f"call {i + 1} differs from eager"
    assert step.replays == 2  # calls 3 and 6: call 4 traced again, call 5 checked the new record


def test_the_norm_clip_grad_norm_returns_is_recomputed_on_each_replay():
    def make():
        env, _ = case()
        model, optimizer = env["model"], env["opt"]

        def train_step(x, y):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(bp.Tensor(x)), y)
            loss.backward()
            norm = bp.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()
            return loss, norm

        return env, train_step

    (_, eager), (_, step_fn) = make(), make()
    step = bp.compile(step_fn)
    norms = []
    for i in range(6):
        (loss_e, norm_e), (loss_c, norm_c) = eager(CASE_X[i], CASE_Y[i]), step(CASE_X[i], CASE_Y[i])
        assert same(loss_e.data, loss_c.data) and type(norm_c) is float and norm_c == norm_e, f"call {i + 1}"
        norms.append(norm_c)
    assert step.replays == 4 and len(set(norms)) == 6


def test_data_read_inside_the_step_runs_eagerly_and_says_to_pass_it():
    batches = iter(zip(CASE_X, CASE_Y, strict=True))
    _, train_step = case()
    step = bp.compile(lambda: train_step(*next(batches)))
    with pytest.warns(bp.CompileWarning, match="not an argument"):
        losses = [step() for _ in range(4)]
    _, eager = case()
    for i, loss in enumerate(losses):
        assert same(eager(CASE_X[i], CASE_Y[i]).data, loss.data), f"call {i + 1} differs from eager"
    assert step.replays == 0


# ----------------------------------------------------------------------------- the guard written out as code


class Scaled(bp.nn.Module):
    """A learner's layer whose forward reads an attribute that may be added or deleted between calls."""

    def forward(self, x):
        return x * self.scale if hasattr(self, "scale") else x


@pytest.mark.parametrize("change", ["added", "deleted", "renamed"])
def test_a_module_attribute_added_or_deleted_between_calls_traces_again(change):
    def make():
        env, train_step = case(lambda: [bp.nn.Linear(4, 8), Scaled(), bp.nn.Tanh(), bp.nn.Linear(8, 3)])
        if change != "added":
            env["model"][1].scale = 3.0
        return env, train_step

    def between(env, i):
        if i == 3 and change == "added":
            env["model"][1].scale = 3.0
        if i == 3 and change != "added":
            del env["model"][1].scale
        if i == 3 and change == "renamed":  # as many attributes as before: the deleted one is missed by name
            env["model"][1].factor = 3.0

    step = compare_six_calls(make, between=between)
    assert step.replays == 2 and step.fallback_reason is None  # calls 3 and 6


def test_a_parameter_moved_to_a_new_optimizer_group_traces_again():
    def between(env, i):
        if i == 3:
            groups = env["opt"].param_groups
            moved = groups[0]["params"].pop(0)
            groups.append({**groups[0], "params": [moved], "lr": 1.0})

    step = compare_six_calls(case, between=between)
    assert step.replays == 2


def test_a_closure_value_that_changes_traces_again():
    def make():
        env, _ = case()
        model, optimizer, scale = env["model"], env["opt"], 1.0

        def train_step(x, y):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(bp.Tensor(x)), y) * scale
            loss.backward()
            optimizer.step()
            return loss

        def rescale(value):
            nonlocal scale
            scale = value

        env["rescale"] = rescale
        return env, train_step

    step = compare_six_calls(make, between=lambda env, i: env["rescale"](1.0 if i < 3 else 4.0))
    assert step.replays == 2


def test_a_step_that_leaves_the_model_in_eval_mode_does_so_on_every_replay():
    def make():
        env, train_step = case()

        def train_then_eval(x, y):
            loss = train_step(x, y)
            env["model"].eval()
            return loss

        return env, train_then_eval

    modes = lambda env: [m.training for m in env["model"].modules()]  # noqa: E731
    step = compare_six_calls(make, between=lambda env, i: env["model"].train(), check=modes)
    assert step.replays == 4


@pytest.mark.parametrize("dtype, classes, bad", [(np.int8, 200, -90), (np.int32, 3, -1), (np.uint8, 3, 3)])
def test_narrow_integer_targets_out_of_range_after_the_check_raise_as_eager(dtype, classes, bad):
    """As unsigned, a negative int8 target lies in [128, 256): below 200 classes, so that check cannot be one
    reduction of the unsigned view; wider ints and few classes can."""
    _, train_step = case(lambda: [bp.nn.Linear(4, classes)])
    step = bp.compile(train_step)
    for i in range(4):
        step(CASE_X[i], CASE_Y[i].astype(dtype))
    assert step.replays == 2
    y = CASE_Y[4].astype(dtype)
    y[3] = bad
    with pytest.raises(ValueError, match="targets must lie in"):
        step(CASE_X[4], y)


def test_targets_passed_as_a_tensor_are_checked_on_each_replay():
    _, train_step = case()
    step = bp.compile(train_step)
    for i in range(4):
        step(CASE_X[i], bp.tensor(CASE_Y[i], dtype=np.int64))
    assert step.replays == 2 and step.fallback_reason is None
    y = CASE_Y[4].copy()
    y[0] = 7
    with pytest.raises(ValueError, match="targets must lie in"):
        step(CASE_X[4], bp.tensor(y, dtype=np.int64))


@pytest.mark.parametrize("setting, value", [("momentum", 0.9), ("weight_decay", 0.01)])
def test_plain_sgd_given_momentum_or_weight_decay_by_hand_runs_its_full_step(setting, value):
    """The replay writes plain SGD's p <- p - lr g out; set by hand later, the other terms are not left out."""
    step = compare_six_calls(case, between=lambda env, i: env["opt"].param_groups[0].__setitem__(setting, value)
                             if i == 3 else None)
    assert step.replays == 4


@pytest.mark.parametrize("change", ["dtype", "shape"])
def test_parameter_data_of_another_dtype_or_shape_traces_again(change):
    """model.to(float64) or a bias reshaped to (1, C) keeps the same Parameter objects with other arrays: the
    record casts gradients to the traced dtype and sums them to the traced shapes, so it is traced again (and
    the reshaped bias gets eager's error)."""
    rng = np.random.default_rng(5)
    xs = [rng.standard_normal((6, 4)).astype(np.float32) for _ in range(6)]  # 6 rows: 1/6 rounds in float32
    ys = [rng.integers(0, 3, 6) for _ in range(6)]
    (env_e, eager), (env_c, step_fn) = case(), case()
    for env in (env_e, env_c):
        env["model"].to(np.float32)
    step = bp.compile(step_fn)
    for i in range(6):
        if i == 3:
            for env in (env_e, env_c):
                if change == "dtype":
                    env["model"].to(np.float64)
                else:
                    env["model"][2].bias.data = env["model"][2].bias.data.reshape(1, 3)
        if change == "shape" and i >= 3:
            for run in (eager, step):
                with pytest.raises(bp.ShapeError, match=r"cannot belong to an input of shape \(1, 3\)"):
                    run(xs[i], ys[i])
            continue
        loss_e, loss_c = eager(xs[i], ys[i]), step(xs[i], ys[i])
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        for p, q in zip(env_e["model"].parameters(), env_c["model"].parameters(), strict=True):
            assert same(p.data, q.data) and same(p.grad, q.grad), f"call {i + 1}: a parameter differs from eager"
    assert step.replays == (2 if change == "dtype" else 1)


def test_the_replay_holds_no_more_memory_at_its_peak_than_eager():
    """The replay drops each value, saved array and gradient after its last use, as eager frees its graph."""
    def make():
        bp.manual_seed(0)
        model = bp.nn.Sequential(bp.nn.Linear(64, 128), bp.nn.ReLU(), bp.nn.Linear(128, 128), bp.nn.ReLU(),
                                 bp.nn.Linear(128, 10))
        optimizer = bp.optim.SGD(model.parameters(), lr=0.1)

        def train_step(x, y):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(bp.Tensor(x)), y)
            loss.backward()
            optimizer.step()
            return loss

        return train_step

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((256, 64)), rng.integers(0, 10, 256)
    eager, step = make(), bp.compile(make())
    for _ in range(3):
        eager(x, y)
        step(x, y)
    assert step.replays == 1
    peaks = []
    for run in (eager, step):
        tracemalloc.start()
        try:
            run(x, y)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] <= peaks[0], f"the replay's peak is {peaks[1]} bytes, eager's {peaks[0]}"


@pytest.mark.parametrize("other", ["batch size", "dtype", "a Tensor"])
def test_the_last_replay_runs_only_on_arguments_of_its_signature(other):
    """The replay that ran last is tried first, without a key: it checks the arguments are of its signature,
    so calls alternating between two signatures each run their own record."""
    change = {"batch size": lambda x, y: (x[:5], y[:5]), "dtype": lambda x, y: (x.astype(np.float32), y),
              "a Tensor": lambda x, y: (bp.Tensor(x), y)}[other]
    (env_e, eager_fn), (env_c, step_fn) = case(), case()

    def eager(x, y):
        return eager_fn(x.data if isinstance(x, bp.Tensor) else x, y)

    step = bp.compile(lambda x, y: step_fn(x.data if isinstance(x, bp.Tensor) else x, y))
    for i in range(6):
        for x, y in ((CASE_X[i], CASE_Y[i]), change(CASE_X[i], CASE_Y[i])):
            assert same(eager(x, y).data, step(x, y).data), f"call {i + 1} ({type(x).__name__}) differs from eager"
    for p, q in zip(env_e["model"].parameters(), env_c["model"].parameters(), strict=True):
        assert same(p.data, q.data)
    assert step.traces == 4 and step.replays == 8  # two traces per signature, then each replays its own


def test_a_step_compiled_with_grad_on_is_not_replayed_under_no_grad():
    _, eager = case()
    _, step_fn = case()
    step = bp.compile(step_fn)
    for i in range(3):
        eager(CASE_X[i], CASE_Y[i])
        step(CASE_X[i], CASE_Y[i])
    assert step.replays == 1
    for run in (eager, step):
        with bp.no_grad(), pytest.raises(RuntimeError, match="does not require grad"):
            run(CASE_X[3], CASE_Y[3])


@pytest.mark.parametrize("loss", [
    lambda logits, y: F.cross_entropy(logits, y, label_smoothing=0.1),
    lambda logits, y: F.cross_entropy(logits, y, ignore_index=1),
    lambda logits, y: F.binary_cross_entropy_with_logits(logits, np.eye(3)[y]),
    lambda logits, y: F.cross_entropy(logits * 0.5, y) + F.mse_loss(logits, np.eye(3, dtype=np.float32)[y]),
], ids=["label-smoothing", "ignore-index", "bce-float-targets", "mse-float32-targets"])
def test_a_batch_given_twice_first_does_not_freeze_arrays_computed_from_it(loss):
    def make():
        bp.manual_seed(0)
        model = bp.nn.Linear(4, 3)
        optimizer = bp.optim.SGD(model.parameters(), lr=0.1)

        def train_step(x, y):  # the losses turn y into arrays in numpy (smoothed, weighted, cast)
            optimizer.zero_grad()
            out = loss(model(bp.Tensor(x / 2.0)), y)  # and so does x / 2.0
            out.backward()
            optimizer.step()
            return out

        return {"model": model}, train_step

    calls = [0, 0, 1, 2, 3, 4]  # overfit one batch first: the first two calls cannot tell what is computed from it
    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i, k in enumerate(calls):
            loss_e, loss_c = eager(CASE_X[k], CASE_Y[k]), step(CASE_X[k], CASE_Y[k])
            assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
            for p, q in zip(env_e["model"].parameters(), env_c["model"].parameters(), strict=True):
                assert same(p.data, q.data) and same(p.grad, q.grad), f"call {i + 1}: a parameter differs"


def test_the_same_batch_on_every_call_keeps_replaying():
    env_e, eager = case()
    env_c, step_fn = case()
    step = bp.compile(step_fn)
    for i in range(6):
        assert same(eager(CASE_X[0], CASE_Y[0]).data, step(CASE_X[0], CASE_Y[0]).data), f"call {i + 1} differs"
    assert step.replays == 4 and step.fallback_reason is None
    assert same(env_e["model"][0].weight.data, env_c["model"][0].weight.data)



@pytest.mark.parametrize("bad, error", [(5, "targets must lie in"), (-1, "targets must lie in")])
def test_pinned_targets_skip_their_range_check_until_they_change_in_place(bad, error):
    _, train_step = case()
    step = bp.compile(train_step)
    x, y = CASE_X[0].copy(), CASE_Y[0].copy()
    for _ in range(4):
        step(x, y)
    assert step.replays == 2
    assert "class targets" not in step.source, "a pinned argument's bytes passed the range check already"
    assert "I[1].tobytes() != P1" in step.source
    y[3] = bad  # the same array, edited in place: the pin sees it and eager's check speaks
    with pytest.raises(ValueError, match=error):
        step(x, y)
    y[3] = CASE_Y[0][3]
    step(x, CASE_Y[1])  # other targets: a record that checks their range on every call
    step(x, CASE_Y[2])
    assert "class targets in [0, 3)" in step.source
    assert step.fallback_reason is None


def edits_its_targets(edit, wrap=lambda y: y):
    """case()'s model and optimizer, with a step that passes ``wrap(y)`` to the loss after ``edit(y)``."""

    def make():
        env, _ = case()

        def train_step(x, y):
            edit(y)
            env["opt"].zero_grad()
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), wrap(y))
            loss.backward()
            env["opt"].step()
            return loss

        return env, train_step

    return make


def _values(y):
    return y.data if isinstance(y, bp.Tensor) else y


def compare_same_batch_calls(make, targets, calls=5):
    """Eager and compiled over calls that each pass a fresh copy of one batch (equal bytes: the record pins
    them): the loss, each parameter and the targets argument as eager leaves it, bit for bit."""
    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(calls):
        y_e, y_c = targets(), targets()
        loss_e = eager(CASE_X[0].copy(), y_e)
        loss_c = step(CASE_X[0].copy(), y_c)
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        for (name, p), (_, q) in zip(env_e["model"].named_parameters(), env_c["model"].named_parameters(), strict=True):
            assert same(p.data, q.data), f"call {i + 1}: parameter {name} differs from eager"
        assert same(_values(y_e), _values(y_c)), f"call {i + 1}: the step left its targets otherwise than eager"
    return step


def _negative_first():
    y = CASE_Y[0].copy()
    y[2] = -1
    return y


def _clip_negatives(y):
    y[y < 0] = 0


def _shift_down(y):
    if isinstance(y, bp.Tensor):
        y.data -= 1
    else:
        y -= 1


def _replace_shifted(y):
    y.data = y.data - 1  # a new array: the loss reads it, frozen in the record; the argument gets it


@pytest.mark.parametrize("edit, targets", [
    (_shift_down, lambda: CASE_Y[0] + 1),  # labels 1..C made 0-based in place: the replay got C, an IndexError
    (_clip_negatives, _negative_first),  # -1 made 0 in place: the replay took -1 as the last class, silently
    (_shift_down, lambda: bp.tensor(CASE_Y[0] + 1, dtype=np.int64)),  # the same through a Tensor's .data
    (_replace_shifted, lambda: bp.tensor(CASE_Y[0] + 1, dtype=np.int64)),  # the replay left .data as called
], ids=["1-based labels", "negatives clipped", "tensor data shifted", "tensor data replaced"])
def test_targets_edited_in_place_before_the_loss_replay_as_eager(edit, targets):
    """The targets the loss checked are the edited ones; a pinned argument's bytes are those it was called with,
    out of range before the edit: dropping the range check for them replays targets eager never saw."""
    called = _values(targets())
    assert ((called < 0) | (called >= 3)).any(), "the test needs targets out of range before the edit"
    compare_same_batch_calls(edits_its_targets(edit), targets)


def test_targets_edited_in_place_within_range_replay_as_eager():
    """The replay does not redo a numpy edit of an argument (classes reversed in place before the loss); the
    second call's check ran its replay on the arguments eager had already edited, so it matched."""
    def reverse(y):
        y[:] = 2 - y

    compare_same_batch_calls(edits_its_targets(reverse), lambda: CASE_Y[0].copy())


@pytest.mark.parametrize("bad", [-1, 3, -100])
def test_targets_wrapped_in_a_tensor_inside_the_step_are_checked_on_each_replay(bad):
    """F.cross_entropy(logits, bp.Tensor(y)) (torch.tensor(y), by PyTorch habit): the Tensor is new on each call,
    its data is the argument y; eager raises for -1 and 3 and ignores -100."""
    make = edits_its_targets(lambda y: None, bp.Tensor)
    (_, eager), (_, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(4):
        assert same(eager(CASE_X[i], CASE_Y[i]).data, step(CASE_X[i], CASE_Y[i]).data), f"call {i + 1} differs"
    assert step.replays == 2
    y = CASE_Y[4].copy()
    y[3] = bad
    try:
        expected = eager(CASE_X[4], y)
    except ValueError as error:
        with pytest.raises(ValueError, match=re.escape(str(error))):  # eager's error, word for word
            step(CASE_X[4], y)
    else:
        assert same(expected.data, step(CASE_X[4], y).data), "the replay differs from eager"


def test_a_view_of_the_first_calls_targets_is_not_read_after_the_caller_reuses_that_array():
    """``y[:, 0]`` is an array made in numpy from the argument: the record keeps it as given, a view into the
    first call's array; the later calls' equal bytes pass the pin while the first array now holds other targets."""
    make = edits_its_targets(lambda y: None, lambda y: y[:, 0])
    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    first = None
    for i in range(5):
        y = CASE_Y[0][:, None].copy()
        if i == 0:
            first = y
        if i == 3:
            first[:, 0] = CASE_Y[1]  # the caller's buffer of the first call, refilled with another batch
        assert same(eager(CASE_X[0], y.copy()).data, step(CASE_X[0], y).data), f"call {i + 1}: the loss differs"
        assert same(env_e["model"][0].weight.data, env_c["model"][0].weight.data), f"call {i + 1}: a weight differs"


@pytest.mark.parametrize("bad_grad", [
    lambda p: bp.Tensor(np.zeros(p.shape)),  # torch.zeros_like(p), by PyTorch habit
    lambda p: np.zeros((2, *p.shape)),  # broadcasts in +=, but is not of the parameter's shape
], ids=["tensor", "wider"])
@pytest.mark.parametrize("optimizer", [lambda ps: bp.optim.SGD(ps, lr=0.1), lambda ps: bp.optim.Adam(ps, lr=0.01)],
                         ids=["sgd", "adam"])
def test_a_gradient_set_by_hand_between_calls_gets_the_optimizers_error(optimizer, bad_grad):
    def make():
        bp.manual_seed(0)
        model = bp.nn.Sequential(bp.nn.Linear(4, 8), bp.nn.Tanh(), bp.nn.Linear(8, 3))
        opt = optimizer(model.parameters())

        def train_step(x, y):  # zero_grad last: backward adds into whatever .grad it finds
            loss = F.cross_entropy(model(bp.Tensor(x)), y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss

        return model, train_step

    errors = []
    for compiled in (False, True):
        model, train_step = make()
        step = bp.compile(train_step) if compiled else train_step
        for i in range(4):
            step(CASE_X[i], CASE_Y[i])
        model[0].weight.grad = bad_grad(model[0].weight)
        with pytest.raises((TypeError, ValueError)) as error:
            step(CASE_X[4], CASE_Y[4])
        errors.append((error.type, str(error.value)))
    assert errors[1] == errors[0], "the compiled step's error differs from eager's"
    assert "step()" in errors[0][1]


class Trainer:
    """A training step as a method, PyTorch style: what it uses are attributes of ``self``."""

    def __init__(self):
        bp.manual_seed(0)
        self.model = bp.nn.Sequential(bp.nn.Linear(4, 8), bp.nn.Tanh(), bp.nn.Linear(8, 3))
        self.opt = bp.optim.SGD(self.model.parameters(), lr=0.1)
        self.scale = 1.0

    def train_step(self, x, y):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(bp.Tensor(x)), y) * self.scale
        loss.backward()
        self.opt.step()
        return loss


@pytest.mark.parametrize("through", ["method", "closure"])
@pytest.mark.parametrize("change", ["optimizer", "scale"])
def test_an_attribute_of_a_trainer_object_changed_between_calls_traces_again(change, through):
    def make():
        trainer = Trainer()
        step_fn = trainer.train_step if through == "method" else (lambda x, y: trainer.train_step(x, y))
        return {"model": trainer.model, "trainer": trainer}, step_fn

    def between(env, i):
        if i == 3 and change == "optimizer":
            env["trainer"].opt = bp.optim.SGD(env["model"].parameters(), lr=0.01)
        elif i == 3:
            env["trainer"].scale = 3.0

    step = compare_six_calls(make, between=between)
    assert step.fallback_reason is None and step.replays == 2  # the third and, traced again on the fourth, the sixth


class History:
    def __init__(self):
        self.losses = []


@pytest.mark.parametrize("where", ["closure list", "object attribute"])
def test_a_step_that_appends_to_a_history_runs_eagerly_and_says_why(where):
    def make():
        env, train_step = case()
        history = [] if where == "closure list" else History()
        losses = history if where == "closure list" else history.losses

        def logged_step(x, y):
            loss = train_step(x, y)
            (history if where == "closure list" else history.losses).append(loss)  # a Python side effect
            return loss

        return env, logged_step, losses

    (env_e, eager, losses_e), (env_c, step_fn, losses_c) = make(), make()
    step = bp.compile(step_fn)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(70):  # (past 64 items a list is compared by identity only)
            x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
            assert same(eager(x, y).data, step(x, y).data), f"call {i + 1}: the loss differs from eager"
            assert len(losses_c) == len(losses_e), f"call {i + 1}: the replay did not append to the history"
    assert "changes Python state" in step.fallback_reason
    assert same(env_e["model"][0].weight.data, env_c["model"][0].weight.data)


# ----------------------------------------------------------------------------- a second reading of the argument checks


def _same_parameters(env_e, env_c, call: int) -> None:
    for (name, p), (_, q) in zip(env_e["model"].named_parameters(), env_c["model"].named_parameters(), strict=True):
        assert same(p.data, q.data), f"call {call}: parameter {name} differs from eager"


def test_targets_shifted_for_the_loss_and_shifted_back_after_backward_run_as_eager():
    """Labels 1..C made 0-based in place for the loss and restored once backward has run: the argument ends as
    called, so nothing sees an edit; the second call's check then replays on the restored (1-based) targets and
    its IndexError escapes, on every later call, where eager raises nothing."""
    def make():
        env, _ = case()

        def train_step(x, y):
            env["opt"].zero_grad()
            y -= 1
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), y)
            loss.backward()
            y += 1  # the caller's array as it was given
            env["opt"].step()
            return loss

        return env, train_step

    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(5):
        x, y_e, y_c = CASE_X[i], CASE_Y[i] + 1, CASE_Y[i] + 1
        loss_e = eager(x, y_e)
        loss_c = step(x, y_c)
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        assert same(y_e, y_c), f"call {i + 1}: the targets were left otherwise than eager"
        _same_parameters(env_e, env_c, i + 1)


def test_an_argument_that_is_a_parameters_array_runs_eagerly_and_says_why():
    """step(x, y, w) given a layer's own weight array (to add its squared norm to the reported loss): the optimizer
    updates that array in place, which looks the same as the step's own numpy edit of it (np.clip(w, out=w), which
    a replay would skip): eager, saying so."""
    def make():
        env, _ = case()

        def train_step(x, y, w):
            env["opt"].zero_grad()
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), y)
            loss.backward()
            env["opt"].step()
            return loss + 0.01 * (bp.Tensor(w) * bp.Tensor(w)).sum()

        return env, train_step

    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    with pytest.warns(bp.CompileWarning, match="is a parameter's array"):
        for i in range(5):
            loss_e = eager(CASE_X[i], CASE_Y[i], env_e["model"][2].weight.data)
            loss_c = step(CASE_X[i], CASE_Y[i], env_c["model"][2].weight.data)
            assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
            _same_parameters(env_e, env_c, i + 1)
    assert "is a parameter's array" in step.fallback_reason
    assert step.replays == 0


class _Tally:
    def __init__(self):
        self.steps = 0


@pytest.mark.parametrize("kind", ["dict", "list", "object"])
def test_an_argument_container_changed_in_place_is_changed_as_eager(kind):
    """A dict of logs, a list or an object passed as an argument and changed by the step (logs["loss"] = loss,
    batch.append(...), tally.steps += 1): the replay does not do it. The module docstring lists "an argument
    changed in place" among what runs eagerly; only array arguments are compared after the traced calls."""
    def make():
        env, train_step = case()

        def logged_step(x, y, box):
            loss = train_step(x, y)
            if kind == "dict":
                box["loss"] = loss
            elif kind == "list":
                box.append(loss)
            else:
                box.steps += 1
            return loss

        return env, logged_step

    def fresh():
        return {} if kind == "dict" else [] if kind == "list" else _Tally()

    def contents(box):
        return sorted(box) if kind == "dict" else len(box) if kind == "list" else box.steps

    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    tally_e, tally_c = _Tally(), _Tally()  # (the object case passes one object on every call)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(5):
            box_e, box_c = (tally_e, tally_c) if kind == "object" else (fresh(), fresh())
            assert same(eager(CASE_X[i], CASE_Y[i], box_e).data, step(CASE_X[i], CASE_Y[i], box_c).data)
            assert contents(box_e) == contents(box_c), (
                f"call {i + 1}: eager left the {kind} argument with {contents(box_e)}, the compiled step with "
                f"{contents(box_c)}")
    _same_parameters(env_e, env_c, 5)


@pytest.mark.parametrize("refilled", [True, False], ids=["the caller refills one buffer", "a new array each call"])
def test_a_view_of_an_argument_equal_on_the_first_two_calls_is_not_replayed_once_it_changes(refilled):
    """Targets read as ``yy[:, 0]`` of a (N, 2) argument whose first column is equal on the first two calls and
    whose second is not: the argument is not pinned (its bytes differ), the frozen view passes the second call's
    check (equal), and from the third call on the replay keeps the first call's column."""
    make = edits_its_targets(lambda y: None, lambda yy: yy[:, 0])
    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    buffer = np.zeros((8, 2), dtype=np.int64)
    for i in range(6):
        batch = np.stack([CASE_Y[0] if i < 2 else CASE_Y[i], CASE_Y[i + 1 if i < 5 else 0]], axis=1)
        if refilled:
            buffer[...] = batch
        argument = buffer if refilled else batch.copy()
        loss_e = eager(CASE_X[i], batch.copy())
        loss_c = step(CASE_X[i], argument)
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        _same_parameters(env_e, env_c, i + 1)


# ----------------------------------------------------------------------------- a third reading of the argument checks


def _clipping_step():
    env, _ = case()

    def train_step(x, y):
        env["opt"].zero_grad()
        np.clip(x, -1.0, 1.0, out=x)  # the caller's inputs, clipped in place
        loss = F.cross_entropy(env["model"](bp.Tensor(x)), y)
        loss.backward()
        env["opt"].step()
        return loss

    return env, train_step


def test_an_argument_changed_in_place_on_the_first_call_only_runs_eagerly():
    """np.clip(x, -1, 1, out=x): the first call's inputs are out of range (clipped), the second call's are not
    (left alone), so the second call's check sees no edit; the first call's edit must still mean eager (as the
    module docstring says: 'changed in place on one of the first two calls'), or from call 3 on the replay leaves
    the caller's inputs unclipped and trains on them."""
    (env_e, eager), (env_c, step_fn) = _clipping_step(), _clipping_step()
    step = bp.compile(step_fn)
    for i in range(5):
        scale = 0.1 if i == 1 else 3.0  # only the second call's inputs are all within [-1, 1]
        x_e, x_c = CASE_X[i] * scale, CASE_X[i] * scale
        loss_e = eager(x_e, CASE_Y[i])
        loss_c = step(x_c, CASE_Y[i])
        assert same(x_e, x_c), f"call {i + 1}: the inputs were left otherwise than eager (which clipped them)"
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        _same_parameters(env_e, env_c, i + 1)


def test_an_argument_whose_shape_the_step_sets_in_place_runs_eagerly():
    """y.shape = (-1,) on the caller's (N, 1) targets changes the argument itself, not its bytes: the second call's
    check, putting the arguments back as given, must not raise (it raised numpy's ValueError 'could not broadcast',
    on every later call, where eager raises nothing)."""
    def make():
        env, _ = case()

        def train_step(x, y):
            env["opt"].zero_grad()
            y.shape = (-1,)
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), y)
            loss.backward()
            env["opt"].step()
            return loss

        return env, train_step

    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(5):
        y_e, y_c = CASE_Y[i].reshape(-1, 1).copy(), CASE_Y[i].reshape(-1, 1).copy()
        loss_e = eager(CASE_X[i], y_e)
        loss_c = step(CASE_X[i], y_c)
        assert y_c.shape == y_e.shape, f"call {i + 1}: targets of shape {y_e.shape} expected, {y_c.shape} left"
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        _same_parameters(env_e, env_c, i + 1)


def _read_only_view(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


@pytest.mark.parametrize("kind", ["a read-only view of a parameter", "a read-only view of an edited argument"])
def test_a_read_only_argument_array_does_not_make_the_check_raise(kind):
    """A read-only argument array whose contents change through the array it views (the optimizer updating the
    layer's weight in place; the step editing another argument it aliases): the second call's check writes it back
    as given and raised numpy's ValueError 'assignment destination is read-only', on every later call, where eager
    raises nothing."""
    def make():
        env, _ = case()

        def train_step(w, x, y):  # (w first: it is written back before the array it views)
            env["opt"].zero_grad()
            if kind == "a read-only view of an edited argument":
                x -= 1.0
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), y)
            loss.backward()
            env["opt"].step()
            return loss + 0.01 * (bp.Tensor(w) * bp.Tensor(w)).sum()

        return env, train_step

    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(5):
        x_e, x_c = CASE_X[i].copy(), CASE_X[i].copy()
        if kind == "a read-only view of a parameter":
            w_e, w_c = _read_only_view(env_e["model"][2].weight.data), _read_only_view(env_c["model"][2].weight.data)
        else:
            w_e, w_c = _read_only_view(x_e), _read_only_view(x_c)
        loss_e = eager(w_e, x_e, CASE_Y[i])
        loss_c = step(w_c, x_c, CASE_Y[i])
        assert same(x_e, x_c), f"call {i + 1}: the inputs were left otherwise than eager"
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        _same_parameters(env_e, env_c, i + 1)


def compare_trainer_calls(prepare, change, measure, what: str) -> None:
    """step(trainer, x, y): five calls eager and compiled, ``change(trainer, loss)`` at the end of the step; the loss,
    ``measure(trainer)`` and the parameters as eager's on every call."""
    def make():
        env, _ = case()
        trainer = History()
        prepare(trainer)

        def train_step(tr, x, y):
            env["opt"].zero_grad()
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), y)
            loss.backward()
            env["opt"].step()
            change(tr, loss)
            return loss

        return env, trainer, train_step

    (env_e, trainer_e, eager), (env_c, trainer_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(5):
        loss_e = eager(trainer_e, CASE_X[i], CASE_Y[i])
        loss_c = step(trainer_c, CASE_X[i], CASE_Y[i])
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        assert measure(trainer_c) == measure(trainer_e), (
            f"call {i + 1}: {measure(trainer_e)} {what} expected, {measure(trainer_c)} there")
        _same_parameters(env_e, env_c, i + 1)


@pytest.mark.parametrize("saved", [0, 100], ids=["new history", "a resumed run's 100 losses"])
def test_a_trainer_given_as_an_argument_whose_history_the_step_appends_to_runs_eagerly(saved):
    """step(trainer, x, y) appending the loss to trainer.losses: as for a bound method's self (caught: 'changes
    Python state'), the replay would not append, so it must run eagerly; the list is the same object, so its items
    (or, past 64, its length) are what shows the append."""
    compare_trainer_calls(lambda tr: setattr(tr, "losses", [0.0] * saved), lambda tr, loss: tr.losses.append(loss),
                          lambda tr: len(tr.losses), "losses in the history")


def test_a_parameters_array_given_as_an_argument_and_clipped_by_the_step_runs_as_eager():
    """step(x, y, w) given the first layer's own weight array and clipping it in place after the update
    (np.clip(w, -c, c, out=w), as a WGAN critic does): the first call's clip changes w, which the exemption for a
    parameter's array takes for the optimizer's update; the second call's inputs are all zero (no gradient for that
    layer, so no update and nothing to clip), so its check sees replay and eager agree; from call 3 on the replay
    skips the clip and trains unclipped weights. As for np.clip on an input array, the first call's edit, which is
    not the optimizer's, must mean eager."""
    def make():
        env, _ = case()

        def train_step(x, y, w):
            env["opt"].zero_grad()
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), y)
            loss.backward()
            env["opt"].step()
            np.clip(w, -0.05, 0.05, out=w)
            return loss

        return env, train_step

    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(5):
        x = CASE_X[i] * (0.0 if i == 1 else 1.0)  # only the second call leaves the clipped layer where it is
        loss_e = eager(x.copy(), CASE_Y[i], env_e["model"][0].weight.data)
        loss_c = step(x.copy(), CASE_Y[i], env_c["model"][0].weight.data)
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        assert np.abs(env_c["model"][0].weight.data).max() <= 0.05, (
            f"call {i + 1}: weights within [-0.05, 0.05] expected (the step clips them), largest "
            f"{np.abs(env_c['model'][0].weight.data).max()}")
        _same_parameters(env_e, env_c, i + 1)


def test_a_frozen_read_only_parameter_does_not_make_the_check_raise():
    """A frozen table (requires_grad False) whose array is read-only, as np.load(..., mmap_mode='r') gives for
    pretrained weights: eager only reads it; the second call's check puts every parameter back by writing into its
    array, even one that nothing changed, and numpy's ValueError 'assignment destination is read-only' escapes, on
    that call and every later one, where eager raises nothing."""
    def make():
        env, _ = case()
        table = np.random.default_rng(3).standard_normal((4, 4))
        table.flags.writeable = False
        frozen = bp.Tensor(table)

        def train_step(x, y):
            env["opt"].zero_grad()
            loss = F.cross_entropy(env["model"](bp.Tensor(x) @ frozen), y)
            loss.backward()
            env["opt"].step()
            return loss

        return env, train_step

    (env_e, eager), (env_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(5):
        loss_e = eager(CASE_X[i], CASE_Y[i])
        loss_c = step(CASE_X[i], CASE_Y[i])
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
        _same_parameters(env_e, env_c, i + 1)


class _Stats:
    def __init__(self):
        self.steps = 0


def test_a_counter_on_an_object_held_by_a_trainer_given_as_an_argument_counts_as_eager():
    """step(trainer, x, y) doing trainer.stats.steps += 1 (a counter on an object the trainer holds): the arguments'
    fingerprint goes one level into the trainer, where trainer.stats is the same object, so the count goes unseen on
    the first two calls and the replay counts nothing (2 steps counted after 5 calls, as eager counts 5). The module
    docstring leaves state reached 'deeper through objects' frozen for what a step reads; a step that changes it
    loses the learner's count silently, where eager (or a fallback) would keep it."""
    def count(tr, loss):
        tr.stats.steps += 1

    compare_trainer_calls(lambda tr: setattr(tr, "stats", _Stats()), count, lambda tr: tr.stats.steps, "steps counted")


class _Scaled:
    def __init__(self):
        self.scale = 1.0
        self.logs = {"loss": []}


def test_a_trainer_given_as_an_argument_whose_setting_changes_between_calls_is_not_frozen():
    """step(trainer, x, y) that only reads trainer.scale (a loss scale, a warm-up factor) set by the loop between
    calls: the trainer is in the signature by identity, and nothing before a replay looks at its attributes (those of
    a trainer in the step's globals or closure are checked), so scale 10 set before call 4 is replayed as 1: call 4's
    loss is a tenth of eager's and every parameter differs from there on."""
    def make():
        env, _ = case()

        def train_step(tr, x, y):
            env["opt"].zero_grad()
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), y) * tr.scale
            loss.backward()
            env["opt"].step()
            return loss

        return env, _Scaled(), train_step

    (env_e, trainer_e, eager), (env_c, trainer_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(6):
        if i == 3:
            trainer_e.scale = trainer_c.scale = 10.0
        loss_e = eager(trainer_e, CASE_X[i], CASE_Y[i])
        loss_c = step(trainer_c, CASE_X[i], CASE_Y[i])
        assert same(loss_e.data, loss_c.data), (
            f"call {i + 1} (trainer.scale {trainer_c.scale}): loss {loss_e.item()} expected, {loss_c.item()} returned")
        _same_parameters(env_e, env_c, i + 1)


def test_a_list_in_a_dict_a_trainer_given_as_an_argument_holds_is_appended_to_as_eager():
    """step(trainer, x, y) doing trainer.logs['loss'].append(loss): the arguments' fingerprint takes the trainer's
    dict by its items, and the list in it by identity, so the append goes unseen on the first two calls and the
    replay appends nothing (2 losses logged after 5 calls, as eager logs 5)."""
    def make():
        env, _ = case()

        def train_step(tr, x, y):
            env["opt"].zero_grad()
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), y)
            loss.backward()
            env["opt"].step()
            tr.logs["loss"].append(loss)
            return loss

        return env, _Scaled(), train_step

    (env_e, trainer_e, eager), (env_c, trainer_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(5):
        eager(trainer_e, CASE_X[i], CASE_Y[i])
        step(trainer_c, CASE_X[i], CASE_Y[i])
        assert len(trainer_c.logs["loss"]) == len(trainer_e.logs["loss"]), (
            f"call {i + 1}: {len(trainer_e.logs['loss'])} losses logged expected, {len(trainer_c.logs['loss'])} there")
        _same_parameters(env_e, env_c, i + 1)


LOGGED = [0.0] * 100  # a resumed run's loss history, appended to by the loop outside the step (below)


def test_a_step_reading_a_history_the_loop_appends_to_says_that_it_traces_every_call():
    """A step that reads len(LOGGED) (to print every 1000 steps) while the loop appends each loss outside it: big
    lists are now fingerprinted by their length, so each call finds the record stale and traces again, eagerly and
    with a tracer on top: 6 traces, no replay, and neither a CompileWarning nor fallback_reason says so (before,
    a list of more than 64 items was taken by identity and this step replayed). Tracing on every call is right for
    what the step reads; only saying nothing about it is tested here."""
    env, _ = case()

    def train_step(x, y):
        env["opt"].zero_grad()
        loss = F.cross_entropy(env["model"](bp.Tensor(x)), y)
        loss.backward()
        env["opt"].step()
        if len(LOGGED) % 1000 == 0:
            print("step", len(LOGGED))
        return loss

    step = bp.compile(train_step)
    start = len(LOGGED)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(6):
                LOGGED.append(step(CASE_X[i], CASE_Y[i]).item())
    finally:
        del LOGGED[start:]
    told = [str(w.message) for w in caught if issubclass(w.category, bp.CompileWarning)]
    assert step.replays > 0 or told or step.fallback_reason, (
        f"6 calls: {step.traces} traces, {step.replays} replays, {step.eager_calls} eager, and no warning or "
        "fallback_reason says why the step never replays")


def test_a_bptt_step_reading_time_steps_of_its_argument_in_numpy_is_told_they_are_views_of_it():
    """Truncated BPTT over xs of shape (T, N, F), each time step taken as bp.Tensor(xs[t]): xs[t] is a view of
    argument 1 made in numpy, and the fallback should say so (the docstring's 'a view of an argument made in numpy'
    case, whose message names the argument and says to pass the view itself). The check of the constant arrays runs
    first and says instead that the array 'is not an argument of the function' and to pass it as one: the learner
    is told to do what the step already does."""
    bp.manual_seed(0)
    cell, head = bp.nn.Linear(4 + 5, 5), bp.nn.Linear(5, 3)
    opt = bp.optim.SGD([*cell.parameters(), *head.parameters()], lr=0.1)

    def train_step(xs, y, h):
        opt.zero_grad()
        h = bp.Tensor(h)
        for t in range(xs.shape[0]):
            h = cell(bp.cat([bp.Tensor(xs[t]), h], axis=1)).tanh()
        loss = F.cross_entropy(head(h), y)
        loss.backward()
        opt.step()
        return loss, h.data

    step = bp.compile(train_step)
    h = np.zeros((8, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(3):
            xs = np.stack([CASE_X[i], CASE_X[i + 1], CASE_X[i + 2]])
            _, h = step(xs, CASE_Y[i], h)
    reason = step.fallback_reason or ""
    assert "view of array argument 1" in reason and "not an argument of the function" not in reason, (
        f"a fallback saying that bp.Tensor(xs[t]) reads a view of array argument 1 expected, got: {reason!r}")


class _Monitor:
    def __init__(self):
        self.last_logits = np.zeros((8, 3))


def test_an_array_a_trainer_given_as_an_argument_holds_is_written_as_eager():
    """step(monitor, x, y) keeping the last logits for a plot: monitor.last_logits[...] = logits.data. The arguments'
    fingerprint takes the monitor's array by identity and the check compares only the argument arrays, so the write
    goes unseen on the first two calls and from call 3 the replay writes nothing: the monitor shows call 2's logits
    (a trainer's own array attributes, as its lists and counters, are part of what the step changes)."""
    def make():
        env, _ = case()

        def train_step(mon, x, y):
            env["opt"].zero_grad()
            logits = env["model"](bp.Tensor(x))
            loss = F.cross_entropy(logits, y)
            loss.backward()
            env["opt"].step()
            mon.last_logits[...] = logits.data
            return loss

        return env, _Monitor(), train_step

    (env_e, mon_e, eager), (env_c, mon_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    for i in range(5):
        eager(mon_e, CASE_X[i], CASE_Y[i])
        step(mon_c, CASE_X[i], CASE_Y[i])
        assert same(mon_c.last_logits, mon_e.last_logits), (
            f"call {i + 1}: the monitor's logits differ from eager's (largest difference "
            f"{np.abs(mon_c.last_logits - mon_e.last_logits).max():.3g})")
        _same_parameters(env_e, env_c, i + 1)


def test_a_critics_weights_clipped_outside_the_compiled_step_are_clipped_as_eager():
    """A WGAN critic's weight clip, np.clip(w.data, -c, c, out=w.data) after opt.step(): numpy on .data is outside
    the record, and inside the step the second call's check cannot see it while the clip changes nothing on the
    first two calls (here their batches are scaled down, so the weights stay in range until later batches push
    them out). The module docstring says to clip outside the compiled step; done so, it is eager's, bit for bit."""
    clip = 0.6

    def make(inside):
        env, _ = case(optimizer=lambda ps: bp.optim.SGD(ps, lr=1.0))
        weight = env["model"][0].weight

        def train_step(x, y):
            env["opt"].zero_grad()
            loss = F.cross_entropy(env["model"](bp.Tensor(x)), y)
            loss.backward()
            env["opt"].step()
            if inside:
                np.clip(weight.data, -clip, clip, out=weight.data)
            return loss

        return env, train_step, weight

    (env_e, eager, _), (env_c, step_fn, weight) = make(inside=True), make(inside=False)
    step = bp.compile(step_fn)
    batches = [CASE_X[0] * 1e-3, CASE_X[1] * 1e-3, *(x * 30 for x in CASE_X[2:])]
    for i, x in enumerate(batches):
        eager(x, CASE_Y[i])
        step(x, CASE_Y[i])
        np.clip(weight.data, -clip, clip, out=weight.data)  # outside the compiled step
        largest = np.abs(env_c["model"][0].weight.data).max()
        assert largest <= clip, f"call {i + 1}: weights within [-{clip}, {clip}] expected, largest {largest:.3g}"
        _same_parameters(env_e, env_c, i + 1)
    assert step.replays == 4 and step.fallback_reason is None


class _Counted:
    """A trainer-like object the loop counts steps on; the step reads only its model and optimizer."""

    def __init__(self, env):
        self.model, self.opt, self.steps = env["model"], env["opt"], 0


def test_a_trainer_given_as_an_argument_whose_unread_counter_the_loop_bumps_still_replays():
    """step(trainer, x, y) reads trainer.model and trainer.opt; the loop does trainer.steps += 1 after each call, an
    attribute the step never reads. Every attribute of an argument object is guarded by identity, so each replay
    finds the int replaced, traces again, and after three such records its signature runs eagerly for good, saying
    "an attribute it reads" changes: an ordinary loop that replayed before guarding argument objects."""
    def make():
        env, _ = case()
        trainer = _Counted(env)

        def train_step(tr, x, y):
            tr.opt.zero_grad()
            loss = F.cross_entropy(tr.model(bp.Tensor(x)), y)
            loss.backward()
            tr.opt.step()
            return loss

        return env, trainer, train_step

    (env_e, trainer_e, eager), (env_c, trainer_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(6):
            eager(trainer_e, CASE_X[i], CASE_Y[i])
            step(trainer_c, CASE_X[i], CASE_Y[i])
            trainer_e.steps += 1
            trainer_c.steps += 1
            _same_parameters(env_e, env_c, i + 1)
    assert step.replays == 4, (
        f"calls 3 to 6 replayed expected (the step never reads trainer.steps); {step.replays} replays, "
        f"{step.traces} traces, {step.eager_calls} eager calls: {step.fallback_reason}")


def _scaled_step(env, scale_of):
    def train_step(x, y):
        env["opt"].zero_grad()
        loss = F.cross_entropy(env["model"](bp.Tensor(x)), y) * scale_of()
        loss.backward()
        env["opt"].step()
        return loss

    return train_step


def test_a_global_decayed_for_a_few_two_batch_epochs_replays_once_it_settles():
    """A loss scale in a global halved once per epoch for four epochs of two batches, then constant: each record
    goes stale on the call after its check, three in a row, and the signature then runs eagerly for good (saying
    the global "changes on every call"), though from epoch 5 on nothing changes; it replayed before the count."""
    scale = {"now": 1.0}
    env_e, _ = case()
    env_c, _ = case()
    eager = _scaled_step(env_e, lambda: scale["now"])
    step = bp.compile(_scaled_step(env_c, lambda: SCALE[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for epoch in range(10):
            scale["now"] = SCALE[0] = 0.5 ** min(epoch, 4)
            for b in range(2):
                eager(CASE_X[b], CASE_Y[b])
                step(CASE_X[b], CASE_Y[b])
            _same_parameters(env_e, env_c, 2 * epoch + 2)
    assert step.replays > 0, (
        f"replays once the scale settles (epochs 5 to 10) expected; {step.replays} replays, {step.traces} traces, "
        f"{step.eager_calls} eager calls: {step.fallback_reason}")


SCALE = [1.0]


def test_a_global_changed_between_the_first_two_calls_traces_again_and_then_replays():
    """The docstring: a global the function names that changed traces again. Changed between the trace and the
    second call's check, the check replays the record (with the first value) against eager (with the second), finds
    the parameters differ and runs eagerly for good, blaming "something outside bpcore ops" though the global is
    guarded, and though it stays constant from call 2 on."""
    env_e, _ = case()
    env_c, _ = case()
    eager = _scaled_step(env_e, lambda: SCALE[0])
    step = bp.compile(_scaled_step(env_c, lambda: SCALE2[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(6):
            SCALE[0] = SCALE2[0] = 1.0 if i == 0 else 0.5
            eager(CASE_X[i], CASE_Y[i])
            step(CASE_X[i], CASE_Y[i])
            _same_parameters(env_e, env_c, i + 1)
    assert step.replays > 0, (
        f"replays once the global settles (from call 2) expected; {step.replays} replays, {step.traces} traces, "
        f"{step.eager_calls} eager calls: {step.fallback_reason}")


SCALE2 = [1.0]


def test_a_trainer_given_as_an_argument_whose_setting_is_set_again_to_an_equal_value_still_replays():
    """step(trainer, x, y) reads trainer.scale, which the loop sets before every call from its config,
    float(config["scale"]): the same value, a new float object each time. A global is compared by value (x is v or
    x == v), an argument object's attributes only by identity, so every replay finds the setting "changed", traces
    again, and after three records the signature runs eagerly for good, though the value never changed."""
    config = {"scale": "0.5"}

    def make():
        env, _ = case()
        trainer = _Counted(env)

        def train_step(tr, x, y):
            tr.opt.zero_grad()
            loss = F.cross_entropy(tr.model(bp.Tensor(x)), y) * tr.scale
            loss.backward()
            tr.opt.step()
            return loss

        return env, trainer, train_step

    (env_e, trainer_e, eager), (env_c, trainer_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(6):
            trainer_e.scale = float(config["scale"])
            trainer_c.scale = float(config["scale"])
            eager(trainer_e, CASE_X[i], CASE_Y[i])
            step(trainer_c, CASE_X[i], CASE_Y[i])
            _same_parameters(env_e, env_c, i + 1)
    assert step.replays == 4, (
        f"calls 3 to 6 replayed expected (trainer.scale is 0.5 on every call); {step.replays} replays, "
        f"{step.traces} traces, {step.eager_calls} eager calls: {step.fallback_reason}")


class _MethodScaled(_Counted):
    """The loss scale is read by a method of the trainer (self.scale), not by the step's own code."""

    def scaled(self, loss):
        return loss * self.scale


class _PropertyScaled(_Counted):
    """trainer.scale is a property over trainer._scale."""

    @property
    def scale(self):
        return self._scale

    @scale.setter
    def scale(self, value):
        self._scale = value


def _scaled_by_helper(tr, loss):
    return loss * tr.scale


def _trainer_steps():
    """The same step four ways, each reading trainer.scale other than by an attribute name in its own code."""
    def by_method(tr, x, y):
        tr.opt.zero_grad()
        loss = tr.scaled(F.cross_entropy(tr.model(bp.Tensor(x)), y))
        loss.backward()
        tr.opt.step()
        return loss

    setting = "scale"  # the name of the setting, as a loop driven by a config holds it

    def by_getattr(tr, x, y):
        tr.opt.zero_grad()
        loss = F.cross_entropy(tr.model(bp.Tensor(x)), y) * getattr(tr, setting)
        loss.backward()
        tr.opt.step()
        return loss

    def by_property(tr, x, y):  # names .scale, but what changes is tr.__dict__["_scale"]
        tr.opt.zero_grad()
        loss = F.cross_entropy(tr.model(bp.Tensor(x)), y) * tr.scale
        loss.backward()
        tr.opt.step()
        return loss

    def by_helper(tr, x, y):  # a global helper function of the step reads tr.scale
        tr.opt.zero_grad()
        loss = _scaled_by_helper(tr, F.cross_entropy(tr.model(bp.Tensor(x)), y))
        loss.backward()
        tr.opt.step()
        return loss

    return {"method-reads-self": (_MethodScaled, by_method), "getattr-string": (_Counted, by_getattr),
            "property": (_PropertyScaled, by_property), "helper-function": (_Counted, by_helper)}


@pytest.mark.parametrize("how", ["method-reads-self", "getattr-string", "property", "helper-function"])
def test_a_trainer_argument_setting_the_step_reaches_other_than_by_its_own_name_is_still_guarded(how):
    """step(trainer, x, y) scales the loss by trainer.scale read through a method of the trainer
    (trainer.scaled(loss) reading self.scale), through getattr(trainer, setting) with setting = "scale", through
    a property over trainer._scale, or through a helper function of the step. The loop quarters the scale before
    call 4, after replays began. An argument object is guarded only on the attributes the step's own code names,
    and none of these names the attribute that holds the value, so calls 4 to 6 replay with the old scale: a
    silently wrong loss and parameters (when every attribute of an argument object was guarded, it traced again)."""
    def make():
        env, _ = case()
        cls, train_step = _trainer_steps()[how]
        trainer = cls(env)
        trainer.scale = 1.0
        return env, trainer, train_step

    (env_e, trainer_e, eager), (env_c, trainer_c, step_fn) = make(), make()
    step = bp.compile(step_fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(6):
            if i == 3:
                trainer_e.scale = trainer_c.scale = 0.25
            le = eager(trainer_e, CASE_X[i], CASE_Y[i])
            lc = step(trainer_c, CASE_X[i], CASE_Y[i])
            assert np.array_equal(le.data, lc.data), (
                f"call {i + 1}: eager's loss {le.data} expected, compiled returned {lc.data} "
                f"({step.replays} replays, {step.traces} traces)")
            _same_parameters(env_e, env_c, i + 1)


class _SelfScaled(_Counted):
    def train_step(self, x, y):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.model(bp.Tensor(x)), y) * self.scale
        loss.backward()
        self.opt.step()
        return loss


def _argument_scaled_step(tr, x, y):
    tr.opt.zero_grad()
    loss = F.cross_entropy(tr.model(bp.Tensor(x)), y) * tr.scale
    loss.backward()
    tr.opt.step()
    return loss


@pytest.mark.parametrize("how", ["bound-method-self", "argument"])
def test_a_trainer_attribute_changed_between_the_first_two_calls_traces_again_and_then_replays(how):
    """As for a global: trainer.scale (self.scale of trainer.train_step, or tr.scale of a trainer given as an
    argument) is guarded, and set to 0.5 after call 1, then constant. A global changed so starts the record again;
    this attribute does not (the restart compares only globals and closure values), so the check replays the
    record (scale 1.0) against eager (0.5), finds the parameters differ and runs eagerly for good, blaming
    "something outside bpcore ops" though the attribute is guarded before every replay."""
    def make():
        env, _ = case()
        trainer = _SelfScaled(env)
        trainer.scale = 1.0
        if how == "argument":
            return env, trainer, _argument_scaled_step, (trainer,)
        return env, trainer, trainer.train_step, ()

    (env_e, trainer_e, eager, args_e), (env_c, trainer_c, step_fn, args_c) = make(), make()
    step = bp.compile(step_fn)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(6):
            trainer_e.scale = trainer_c.scale = 1.0 if i == 0 else 0.5
            eager(*args_e, CASE_X[i], CASE_Y[i])
            step(*args_c, CASE_X[i], CASE_Y[i])
            _same_parameters(env_e, env_c, i + 1)
    assert step.replays > 0, (
        f"replays once trainer.scale settles (from call 2) expected; {step.replays} replays, {step.traces} traces, "
        f"{step.eager_calls} eager calls: {step.fallback_reason}")


LR_NOW = [1.0]


def test_a_global_the_loop_changes_before_every_call_does_not_trace_every_call_silently():
    """A per-call schedule in a global (LR_NOW[0] = 1 / (1 + i) before each call): no record can replay. Since a
    record that goes stale before replaying only warns, and a global changed between the first two calls starts
    the record again, every call is traced (each trace costs an eager call plus recording and writing the replay:
    about 16 times an eager call here) for as long as the loop runs, and fallback_reason stays None: nothing but
    one early warning says the step never replays. Expected: it settles on eager calls, saying why."""
    env_e, _ = case()
    env_c, _ = case()
    eager = _scaled_step(env_e, lambda: LR_NOW[0])
    step = bp.compile(_scaled_step(env_c, lambda: LR_NOW[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(30):
            LR_NOW[0] = 1.0 / (1 + i)
            eager(CASE_X[i % 6], CASE_Y[i % 6])
            step(CASE_X[i % 6], CASE_Y[i % 6])
            _same_parameters(env_e, env_c, i + 1)
    assert step.traces < 10 and step.fallback_reason is not None, (
        f"a few traces, then eager calls with a fallback_reason expected; {step.replays} replays, {step.traces} "
        f"traces, {step.eager_calls} eager calls, fallback_reason {step.fallback_reason!r}")


STARTED = None


def test_a_step_that_sets_a_global_once_on_its_first_call_replays_from_call_3():
    """A step sets a global it names once, on its first call (global STARTED; if STARTED is None: STARTED = ...),
    a flag no op depends on. The record of call 1 guards the global as call 1 found it (None), though the check on
    call 2 ran from the value call 1 left (and reads_after holds it), so call 3 finds it "changed", traces again,
    and the record is checked again on call 4: 4 traces where the `replayed` fixture allows 2."""
    global STARTED
    STARTED = None
    env_e, eager = case()
    env_c, _ = case()
    model, opt = env_c["model"], env_c["opt"]

    def train_step(x, y):
        global STARTED
        if STARTED is None:
            STARTED = "started"
        opt.zero_grad()
        loss = F.cross_entropy(model(bp.Tensor(x)), y)
        loss.backward()
        opt.step()
        return loss

    step = bp.compile(train_step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(8):
            eager(CASE_X[i % 6], CASE_Y[i % 6])
            step(CASE_X[i % 6], CASE_Y[i % 6])
            _same_parameters(env_e, env_c, i + 1)
    assert step.traces == 2 and step.replays == 6, (
        f"calls 3 to 8 replayed expected; {step.replays} replays, {step.traces} traces, {step.eager_calls} eager "
        f"calls: {step.fallback_reason}")


class _LossScaled:
    """A trainer whose loss method reads a setting the step itself never names."""

    def __init__(self):
        bp.manual_seed(0)
        self.model = bp.nn.Linear(4, 3)
        self.opt = bp.optim.SGD(self.model.parameters(), lr=0.1)
        self.scale, self.steps = 1.0, 0

    def loss(self, x, y):
        return F.cross_entropy(self.model(bp.Tensor(x)), y) * self.scale


def test_a_setting_read_by_a_method_of_a_trainer_given_as_an_argument_is_not_frozen():
    def train_step(tr, x, y):
        tr.opt.zero_grad()
        loss = tr.loss(x, y)
        loss.backward()
        tr.opt.step()
        return loss

    trainer_e, trainer_c = _LossScaled(), _LossScaled()
    step = bp.compile(train_step)
    for i in range(6):
        if i == 3:
            trainer_e.scale = trainer_c.scale = 10.0  # read through trainer.loss, not named in the step
        trainer_e.steps += 1  # named nowhere: no retrace for it
        trainer_c.steps += 1
        loss_e, loss_c = train_step(trainer_e, CASE_X[i], CASE_Y[i]), step(trainer_c, CASE_X[i], CASE_Y[i])
        assert same(loss_e.data, loss_c.data), f"call {i + 1}: the loss differs from eager"
    assert (step.traces, step.replays) == (4, 2)


class _SlotsTrainer:
    """A trainer with __slots__ (no __dict__), as a small dataclass(slots=True) config would be."""

    __slots__ = ("model", "opt", "scale")

    def __init__(self, env):
        self.model, self.opt, self.scale = env["model"], env["opt"], 1.0


class _ListScaled(_Counted):
    """trainer.scale is a one-item list the loop sets in place (trainer.scale[0] = 0.25), as LR_NOW[0] is."""


def _item_scaled_step(tr, x, y):
    tr.opt.zero_grad()
    scale = tr.scale[0] if isinstance(tr.scale, list) else tr.scale
    loss = F.cross_entropy(tr.model(bp.Tensor(x)), y) * scale
    loss.backward()
    tr.opt.step()
    return loss


@pytest.mark.parametrize("how", ["slots-class", "list-item"])
def test_a_trainer_argument_setting_changed_after_replays_began_is_not_replayed_stale(how):
    """step(trainer, x, y) scales the loss by trainer.scale, named in the step's own code; the loop quarters it
    before call 5, after replays began. A trainer whose class has __slots__ has no __dict__, so it is not taken for
    a learner's object and none of its attributes is guarded; a setting held as a one-item list set in place
    (trainer.scale[0] = 0.25) is guarded by the list's identity only (a global list is guarded by its items). Both
    replay the old scale from call 5 on: a silently wrong loss and parameters."""
    def make():
        env, _ = case()
        if how == "slots-class":
            return env, _SlotsTrainer(env)
        trainer = _ListScaled(env)
        trainer.scale = [1.0]
        return env, trainer

    def quarter(trainer):
        if how == "slots-class":
            trainer.scale = 0.25
        else:
            trainer.scale[0] = 0.25

    (env_e, trainer_e), (env_c, trainer_c) = make(), make()
    step = bp.compile(_item_scaled_step)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bp.CompileWarning)
        for i in range(8):
            if i == 4:
                quarter(trainer_e)
                quarter(trainer_c)
            le = _item_scaled_step(trainer_e, CASE_X[i % 6], CASE_Y[i % 6])
            lc = step(trainer_c, CASE_X[i % 6], CASE_Y[i % 6])
            assert np.array_equal(le.data, lc.data), (
                f"call {i + 1}: eager's loss {le.data} expected, compiled returned {lc.data} "
                f"({step.replays} replays, {step.traces} traces)")
            _same_parameters(env_e, env_c, i + 1)
