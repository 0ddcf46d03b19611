"""The training variants do what their definitions say: how many updates, on which samples, in what order.

Counts are taken independently of History: the optimizer's ``step`` is wrapped to count calls and the
model records every batch it is shown (row ids in column 0 of the inputs), so History is checked
against what actually happened.
"""

import io
import math

import numpy as np
import pytest

import bpcore as bp
from bpcore import optim
from bpcore.nn import functional as F
from bpcore.progress import TerminalBar, progress_bar
from bpcore.train import evaluate, fit, online

N = 50


# ---------------------------------------------------------------- instruments


def make_data(n=N, seed=0):
    """Two features plus a row id in column 0 (i / n: distinct and small), integer labels."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n, 2))
    X = np.column_stack([np.arange(n) / n, features])
    y = (features[:, 0] + features[:, 1] > 0).astype(np.int64)
    return X, y


class Recorder(bp.nn.Module):
    """A linear classifier that remembers each batch it sees: row ids, batch size, training mode."""

    def __init__(self, n_in=3, n_out=2, seed=0, n=N):
        super().__init__()
        self.linear = bp.nn.Linear(n_in, n_out, rng=np.random.default_rng(seed))
        self.n = n
        self.batches = []  # one array of row ids per forward call
        self.modes = []

    def forward(self, x):
        self.batches.append(np.rint(x.data[:, 0] * self.n).astype(int))
        self.modes.append(self.training)
        return self.linear(x)

    @property
    def sizes(self):
        return [len(b) for b in self.batches]


def count_steps(optimizer):
    """Wrap ``optimizer.step`` so that every call is counted; returns the (growing) list of calls."""
    calls = []
    original = optimizer.step

    def step():
        calls.append(1)
        original()

    optimizer.step = step
    return calls


def mlp(seed=0):
    rng = np.random.default_rng(seed)
    return bp.nn.Sequential(bp.nn.Linear(3, 5, rng=rng), bp.nn.Tanh(), bp.nn.Linear(5, 2, rng=rng))


def clone(model, make):
    """A second model from ``make()`` holding exactly the weights of ``model``."""
    twin = make()
    twin.load_state_dict(model.state_dict())
    return twin


def sgd_fit(model, X, y, lr, loss_fn=F.cross_entropy, **settings):
    """``fit`` with a fresh plain SGD optimizer and no progress output."""
    return fit(model, loss_fn, optim.SGD(model.parameters(), lr=lr), X, y, progress=False, **settings)


def global_norm(arrays):
    return math.sqrt(sum(float((a * a).sum()) for a in arrays))


# ---------------------------------------------------------------- how many updates, on how many samples

VARIANT_COUNTS = [
    # variant, batch_size, updates per epoch, batch sizes of one epoch
    ("batch", 32, 1, [50]),
    ("stochastic", 32, 50, [1] * 50),
    ("minibatch", 16, math.ceil(50 / 16), [16, 16, 16, 2]),
]


@pytest.mark.parametrize(("variant", "batch_size", "per_epoch", "sizes"), VARIANT_COUNTS)
def test_updates_and_samples_per_variant(variant, batch_size, per_epoch, sizes):
    X, y = make_data()
    model = Recorder()
    opt = optim.SGD(model.parameters(), lr=0.1)
    steps = count_steps(opt)
    history = fit(model, F.cross_entropy, opt, X, y, variant=variant, epochs=3, batch_size=batch_size,
                  progress=False)  # fmt: skip

    assert len(steps) == 3 * per_epoch == history.updates
    assert model.sizes == sizes * 3  # what the model was actually fed, in order
    assert np.diff([0, *history.samples_seen]).tolist() == sizes * 3
    assert history.samples_seen[-1] == 150
    if variant == "batch":
        assert history.samples_seen == [50, 100, 150]
    if variant == "stochastic":
        assert history.samples_seen == list(range(1, 151))
    assert len(history.loss) == len(history.grad_norm) == len(history.samples_seen)
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]


def test_batch_update_equals_one_full_gradient_step_by_hand():
    X, y = make_data()
    model = mlp()
    twin = clone(model, mlp)
    history = sgd_fit(model, X, y, lr=0.5, variant="batch", epochs=1)

    loss = F.cross_entropy(twin(bp.tensor(X)), y)  # the whole training set, one backward
    loss.backward()
    grads = {name: p.grad for name, p in twin.named_parameters()}
    for name, p in model.named_parameters():
        expected = twin.state_dict()[name] - 0.5 * grads[name]
        np.testing.assert_allclose(p.data, expected, rtol=0, atol=1e-12, err_msg=name)
    assert history.loss == [pytest.approx(loss.item(), rel=1e-12)]
    # History.grad_norm is the global norm over all parameters together, before the step
    assert history.grad_norm[0] == pytest.approx(global_norm(grads.values()), rel=1e-12)


# ---------------------------------------------------------------- which samples, in what order


@pytest.mark.parametrize(("variant", "batch_size"), [("stochastic", 1), ("minibatch", 16), ("minibatch", 7)])
def test_every_sample_once_per_epoch(variant, batch_size):
    X, y = make_data()
    model = Recorder()
    sgd_fit(model, X, y, lr=0.1, variant=variant, epochs=3, batch_size=batch_size)
    rows = np.concatenate(model.batches)
    epochs = rows.reshape(3, N)
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(N))  # a permutation: each row once
    # shuffled, and reshuffled every epoch
    assert not np.array_equal(epochs[0], np.arange(N))
    assert not np.array_equal(epochs[0], epochs[1])


def test_shuffle_false_keeps_the_data_order():
    X, y = make_data()
    model = Recorder()
    sgd_fit(model, X, y, lr=0.1, variant="minibatch", epochs=2, batch_size=16, shuffle=False)
    np.testing.assert_array_equal(np.concatenate(model.batches), np.tile(np.arange(N), 2))


def _run(seed):
    X, y = make_data()
    model = Recorder()
    history = sgd_fit(model, X, y, lr=0.3, variant="minibatch", epochs=2, batch_size=8, seed=seed)
    return history, np.concatenate(model.batches)


def test_same_seed_same_run_different_seed_different_order():
    h1, order1 = _run(seed=3)
    h2, order2 = _run(seed=3)
    h3, order3 = _run(seed=4)
    assert h1.loss == h2.loss  # bit for bit
    np.testing.assert_array_equal(order1, order2)
    assert not np.array_equal(order1, order3)
    assert h1.loss != h3.loss


# ---------------------------------------------------------------- online learning from a stream


class OnceStream:
    """An iterable that counts how often each item is handed out and refuses a second pass."""

    def __init__(self, items):
        self.items = items
        self.yielded = [0] * len(items)
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        if self.passes > 1:
            raise AssertionError("the stream was iterated a second time")
        return self._generate()

    def _generate(self):
        for i, item in enumerate(self.items):
            self.yielded[i] += 1
            yield item


def test_online_single_samples():
    X, y = make_data(20)
    stream = OnceStream([(X[i], y[i]) for i in range(20)])  # 1-D x and scalar y: one sample each
    model = Recorder(n=20)
    opt = optim.SGD(model.parameters(), lr=0.1)
    steps = count_steps(opt)
    history = online(model, F.cross_entropy, opt, stream)

    assert stream.yielded == [1] * 20 and stream.passes == 1
    assert len(steps) == history.updates == 20
    assert history.samples_seen == list(range(1, 21))
    assert model.sizes == [1] * 20
    np.testing.assert_array_equal(np.concatenate(model.batches), np.arange(20))  # order of arrival
    assert history.variant == "online" and history.epochs == []
    with pytest.raises(AssertionError, match="second time"):
        list(stream)


def test_online_first_update_equals_one_sgd_step_by_hand():
    X, y = make_data(5)
    model = mlp()
    twin = clone(model, mlp)
    history = online(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.5), [(X[0], y[0])])
    loss = F.cross_entropy(twin(bp.tensor(X[:1])), y[:1])
    loss.backward()
    for (name, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.data - 0.5 * q.grad, rtol=0, atol=1e-12, err_msg=name)
    assert history.loss == [pytest.approx(loss.item(), rel=1e-12)]


def test_online_small_batches():
    X, y = make_data(20)
    stream = OnceStream([(X[i : i + 4], y[i : i + 4]) for i in range(0, 20, 4)])
    model = Recorder(n=20)
    history = online(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), stream)
    assert stream.yielded == [1] * 5
    assert history.updates == 5 and history.samples_seen == [4, 8, 12, 16, 20]
    assert model.sizes == [4] * 5


def test_online_max_updates_stops_without_taking_more_from_the_stream():
    X, y = make_data(10)
    stream = OnceStream([(X[i], y[i]) for i in range(10)])
    model = Recorder(n=10)
    opt = optim.SGD(model.parameters(), lr=0.1)
    steps = count_steps(opt)
    history = online(model, F.cross_entropy, opt, stream, max_updates=3)
    assert history.updates == len(steps) == 3 and history.samples_seen == [1, 2, 3]
    assert model.sizes == [1, 1, 1]
    # A stream is consumed once: an item taken from it but not learned from is lost for good
    # (a caller continuing on the same generator would never see it). Only 3 items may be drawn.
    assert stream.yielded == [1, 1, 1] + [0] * 7


# ---------------------------------------------------------------- early stopping


def _diverging_fit(epochs, early_stopping=None, restore_best=True):
    """Linear regression by full-batch gradient descent; the lr is multiplied by 40 every 3 epochs.

    Epochs 1-3 improve the (validation = training) loss, from epoch 4 on the steps are too large and
    the loss grows: the best epoch is 3, and with patience 2 training stops after epoch 5.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.standard_normal((40, 1))
    model = bp.nn.Linear(3, 1, rng=np.random.default_rng(1))
    opt = optim.SGD(model.parameters(), lr=0.05)
    sched = optim.StepLR(opt, step_size=3, gamma=40.0)
    stopping = {"early_stopping": early_stopping, "restore_best": restore_best}
    history = fit(model, F.mse_loss, opt, X, y, variant="batch", epochs=epochs, validation=(X, y),
                  scheduler=sched, progress=False, **stopping)  # fmt: skip
    return model, history, (X, y)


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    model, history, (X, y) = _diverging_fit(epochs=20, early_stopping=2)
    val = history.epoch_values("val_loss")
    assert history.stopped_early
    assert history.best_epoch == 3 == int(np.argmin(val)) + 1
    assert len(history.epochs) == 3 + 2  # two stale epochs after the best one
    assert val[3] > val[2] and val[4] > val[3]  # the case really got worse
    best_model, *_ = _diverging_fit(epochs=3)  # the same run, stopped by hand at the best epoch
    for (name, p), q in zip(model.named_parameters(), best_model.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    # and the restored weights score the best validation loss
    assert F.mse_loss(model(bp.tensor(X)), y).item() == pytest.approx(val.min(), rel=1e-12)


def test_early_stopping_without_restore_keeps_the_last_weights():
    model, history, _ = _diverging_fit(epochs=20, early_stopping=2, restore_best=False)
    assert history.stopped_early and len(history.epochs) == 5 and history.best_epoch == 3
    last_model, *_ = _diverging_fit(epochs=5)
    for p, q in zip(model.parameters(), last_model.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)


def test_no_early_stop_while_improving():
    X, y = make_data()
    model = Recorder()
    history = sgd_fit(model, X, y, lr=0.1, variant="batch", epochs=6, validation=(X, y), early_stopping=2)
    assert not history.stopped_early and len(history.epochs) == 6 and history.best_epoch == 6


# ---------------------------------------------------------------- History contents


def test_epoch_records_and_values():
    X, y = make_data()
    X_val, y_val = make_data(30, seed=1)
    model = mlp()
    initial = clone(model, mlp)
    history = sgd_fit(model, X, y, lr=0.2, variant="batch", epochs=4, validation=(X_val, y_val))
    for record in history.epochs:
        assert set(record) == {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    values = history.epoch_values("val_accuracy")
    assert isinstance(values, np.ndarray) and values.dtype == float and values.shape == (4,)
    assert np.isnan(history.epoch_values("no_such_key")).all()

    # batch variant: epoch 1's training numbers are those of the initial model on the whole set
    out = initial(bp.tensor(X))
    assert history.epochs[0]["train_loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-12)
    assert history.epochs[0]["train_accuracy"] == np.mean(out.data.argmax(axis=1) == y)
    # the last validation numbers are those of the final model
    out = model(bp.tensor(X_val))
    assert history.epochs[-1]["val_loss"] == pytest.approx(F.cross_entropy(out, y_val).item(), rel=1e-12)
    assert history.epochs[-1]["val_accuracy"] == np.mean(out.data.argmax(axis=1) == y_val)
    assert "4 updates" in repr(history) and "4 epochs" in repr(history)


def test_train_loss_is_the_sample_weighted_mean_of_the_updates():
    X, y = make_data()
    model = Recorder()
    history = sgd_fit(model, X, y, lr=0.1, variant="minibatch", epochs=1, batch_size=16)
    sizes = np.diff([0, *history.samples_seen])
    assert history.epochs[0]["train_loss"] == pytest.approx(np.dot(history.loss, sizes) / N, rel=1e-12)
    assert np.isnan(history.epoch_values("val_loss")).all()  # no validation set given


def test_float_targets_have_no_accuracy():
    X, _ = make_data()
    y = X[:, 1:2] * 2.0
    model = bp.nn.Linear(3, 1, rng=np.random.default_rng(0))
    history = sgd_fit(model, X, y, lr=0.1, loss_fn=F.mse_loss, epochs=2)
    assert set(history.epochs[0]) == {"epoch", "train_loss"}


def test_clip_grad_norm_records_the_raw_norm_and_bounds_the_update():
    X, y = make_data()
    model = mlp()
    twin = clone(model, mlp)
    F.cross_entropy(twin(bp.tensor(X)), y).backward()
    raw = global_norm(p.grad for p in twin.parameters())
    max_norm = 0.05
    assert raw > 4 * max_norm  # a case where the clip bites

    before = [p.data.copy() for p in model.parameters()]
    history = sgd_fit(model, X, y, lr=1.0, variant="batch", epochs=1, clip_grad_norm=max_norm)
    assert history.grad_norm[0] == pytest.approx(raw, rel=1e-12)  # recorded before clipping
    deltas = [p.data - b for p, b in zip(model.parameters(), before, strict=True)]
    assert global_norm(deltas) <= max_norm + 1e-12  # with lr = 1 the step is the clipped gradient
    assert global_norm(deltas) == pytest.approx(max_norm, rel=1e-5)
    for d, q in zip(deltas, twin.parameters(), strict=True):  # same direction as the raw gradient
        np.testing.assert_allclose(d, -q.grad * max_norm / raw, rtol=1e-5, atol=1e-15)


def test_scheduler_is_stepped_once_per_epoch():
    X, y = make_data()
    model = Recorder()
    opt = optim.SGD(model.parameters(), lr=0.4)
    sched = optim.StepLR(opt, step_size=1, gamma=0.5)
    fit(model, F.cross_entropy, opt, X, y, epochs=3, batch_size=16, scheduler=sched, progress=False)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.4 * 0.5**3)


# ---------------------------------------------------------------- a real problem


def test_digits_mlp_reaches_90_percent():
    data = bp.data.digits()
    rng = np.random.default_rng(0)
    model = bp.nn.Sequential(bp.nn.Linear(64, 64, rng=rng), bp.nn.ReLU(), bp.nn.Linear(64, 10, rng=rng))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    X, y, test = data.X_train, data.y_train, (data.X_test, data.y_test)
    history = fit(model, F.cross_entropy, opt, X, y, epochs=3, validation=test, progress=False)
    assert history.epochs[-1]["val_accuracy"] > 0.9
    assert evaluate(model, F.cross_entropy, data.X_test, data.y_test)["accuracy"] > 0.9


# ---------------------------------------------------------------- evaluate


@pytest.mark.parametrize("training", [True, False])
def test_evaluate_returns_loss_and_accuracy_and_restores_the_mode(training):
    X, y = make_data()
    model = Recorder()
    model.train(training)
    result = evaluate(model, F.cross_entropy, X, y, batch_size=7)  # 8 chunks, the last of 1 sample
    assert model.training is training
    assert model.modes and not any(model.modes)  # every forward pass ran in eval mode
    assert model.sizes == [7] * 7 + [1]
    out = model.linear(bp.tensor(X))
    assert result["loss"] == pytest.approx(F.cross_entropy(out, y).item(), rel=1e-12)
    assert result["accuracy"] == np.mean(out.data.argmax(axis=1) == y)
    assert set(evaluate(model, F.cross_entropy, X, y, metric=None)) == {"loss"}


# ---------------------------------------------------------------- errors


def test_fit_errors():
    X, y = make_data()
    model = Recorder()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"bp\.train\.online"):
        fit(model, F.cross_entropy, opt, X, y, variant="online", progress=False)
    with pytest.raises(ValueError, match="'full'"):
        fit(model, F.cross_entropy, opt, X, y, variant="full", progress=False)
    with pytest.raises(ValueError, match=r"50 samples.*49"):
        fit(model, F.cross_entropy, opt, X, y[:49], progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        fit(model, F.cross_entropy, opt, X, y, variant="minibatch", batch_size=0, progress=False)
    assert model.batches == []  # nothing was trained before the errors


# ---------------------------------------------------------------- progress reporting


def test_terminal_bar_writes_only_after_its_delay():
    stream = io.StringIO()
    bar = TerminalBar(10, "train", delay=0, stream=stream)
    bar.update(3, "loss 0.5")
    text = stream.getvalue()
    assert "3/10" in text and "train" in text and "loss 0.5" in text
    assert "#" * 9 + "." * 21 in text  # 3/10 of a 30-wide bar
    bar.close()
    assert stream.getvalue().endswith("\n")

    quiet = io.StringIO()
    bar = TerminalBar(10, "train", delay=3600, stream=quiet)
    bar.update(3)
    bar.close()
    assert quiet.getvalue() == ""


def test_progress_bar_disabled_is_silent(capsys):
    bar = progress_bar(10, "quiet", False)
    bar.update(5, "text")
    bar.close()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_progress_factory_is_used_by_fit():
    events = []

    class Bar:
        def __init__(self, total, description):
            events.append(("new", total, description))

        def update(self, done, text=""):
            events.append(("update", done))

        def close(self):
            events.append(("close",))

    assert isinstance(progress_bar(4, "x", Bar), Bar)
    events.clear()
    X, y = make_data()
    model = Recorder()
    fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), X, y, epochs=3, progress=Bar)
    assert events == [("new", 3, "fit minibatch"), ("update", 1), ("update", 2), ("update", 3), ("close",)]


