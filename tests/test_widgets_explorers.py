"""Explorers driven without a browser: set values, click, assert on the numbers they show."""

import numpy as np
import pytest

from bpcore.labs.chain_rule import scalar_chain
from bpcore.labs.three_layer import three_layer
from bpcore.widgets import ChainRuleExplorer, ThreeLayerStepper


def test_chain_rule_explorer_three_columns_agree_and_follow_the_sliders():
    explorer = ChainRuleExplorer()
    for row in explorer.rows.values():
        assert row["chain rule"] == pytest.approx(row["engine"], rel=1e-12)
        assert row["finite difference"] == pytest.approx(row["engine"], rel=1e-6)
    before = explorer.rows["w1"]["engine"]
    explorer.sliders["w2"].value = 2.0
    assert explorer.rows["w1"]["engine"] != before
    expected = scalar_chain(1.5, 0.8, -0.3, 2.0, 0.4, 0.2).grads["w1"]
    assert explorer.rows["w1"]["chain rule"] == pytest.approx(expected, rel=1e-12)
    assert f"{expected:+.6f}" in explorer.table_html.value


def test_chain_rule_explorer_shows_the_relu_kink():
    explorer = ChainRuleExplorer()
    explorer.activation.value = "relu"
    explorer.sliders["x"].value = 0.0
    explorer.sliders["b1"].value = 0.0  # z1 = 0: exactly on the kink
    row = explorer.rows["w1"]
    assert row["chain rule"] == pytest.approx(row["engine"])  # both use relu'(0) = 0
    assert explorer.chain.values["z1"] == 0.0


def test_stepper_walks_forward_and_backward_with_the_manual_numbers():
    rng = np.random.default_rng(0)
    params = {
        "W1": rng.standard_normal((3, 2)),
        "b1": np.zeros(3),
        "W2": rng.standard_normal((2, 3)),
        "b2": np.zeros(2),
    }
    x, y = np.array([0.5, -1.0]), np.array([0.2, 0.9])
    stepper = ThreeLayerStepper(x, y, params)
    reference = three_layer(x, y, **params)
    assert stepper.current["title"].startswith("Forward 1") and stepper.previous_button.disabled
    np.testing.assert_array_equal(stepper.current["values"]["z1"], reference.steps["z1"])
    for _ in range(7):
        stepper.next_button.click()
    assert stepper.current["title"].startswith("Backward 3")
    np.testing.assert_array_equal(stepper.current["values"]["delta_hidden"], reference.steps["delta_hidden"])
    assert "delta_{hid}" in stepper.equation.value and "delta_hidden" in stepper.values.value
    for _ in range(5):
        stepper.next_button.click()
    assert stepper.index == 9 and stepper.next_button.disabled
    assert float(stepper.current["values"]["L_after"]) < reference.loss  # the update lowered the loss
    stepper.previous_button.click()
    assert stepper.current["title"].startswith("Backward 4")


def test_batch_size_explorer_counts_updates_and_reacts():
    import bpcore as bp
    from bpcore.widgets import BatchSizeExplorer

    explorer = BatchSizeExplorer(bp.data.digits(), epochs=1)
    explorer.batch_size.value = 64
    assert explorer.result["updates"] == -(-1347 // 64)  # ceil(N / B) updates per epoch
    few = explorer.result["test_accuracy"]
    explorer.batch_size.value = 4
    assert explorer.result["updates"] == -(-1347 // 4)
    assert explorer.result["test_accuracy"] > few  # same epoch, same lr: many small steps go further
    assert f"{explorer.result['test_accuracy']:.3f}" in explorer.summary.value


@pytest.mark.parametrize("batch_size", [1, 16, 1347])
def test_batch_size_explorer_numbers_are_fits_bit_for_bit(batch_size, replayed):
    """The explorer replays its step with bp.compile: every loss, the epoch's training loss and the test
    accuracy are those bp.fit gives for the same model, seed and settings."""
    import bpcore as bp
    from bpcore.nn.functional import cross_entropy
    from bpcore.widgets import BatchSizeExplorer

    digits = bp.data.digits()
    explorer = BatchSizeExplorer(digits, epochs=2)
    explorer.lr.value, explorer.batch_size.value = 0.1, batch_size
    bp.manual_seed(0)
    model = bp.nn.Sequential(bp.nn.Linear(64, 32), bp.nn.ReLU(), bp.nn.Linear(32, 10))
    history = bp.fit(
        model, cross_entropy, bp.optim.SGD(model.parameters(), lr=0.1), digits.X_train, digits.y_train,
        variant="minibatch", batch_size=batch_size, epochs=2, seed=0, progress=False,
    )  # fmt: skip
    accuracy = bp.train.evaluate(model, cross_entropy, digits.X_test, digits.y_test)["accuracy"]
    replayed.check(signatures=2, functions=None)  # one per run (each setting changed reruns it); full batches
    # and the epoch's last, smaller one
    np.testing.assert_array_equal(explorer.result["loss"], np.array(history.loss))
    np.testing.assert_array_equal(explorer.result["samples_seen"], np.array(history.samples_seen))
    assert explorer.result["final_loss"] == history.epochs[-1]["train_loss"]
    assert explorer.result["test_accuracy"] == accuracy
    assert explorer.result["updates"] == history.updates == 2 * -(-1347 // batch_size)


def test_conv_explorer_output_size_and_sharing():
    from bpcore.widgets import ConvExplorer

    explorer = ConvExplorer(size=6)
    assert explorer.result["output shape"] == (1, 1, 4, 4)
    assert explorer.result["positions per weight"] == 16
    assert explorer.result["max |sum of contributions - dW|"] < 1e-12
    explorer.stride.value = 2
    explorer.padding.value = 1
    assert explorer.result["output shape"] == (1, 1, 3, 3)  # floor((6 + 2 - 3) / 2) + 1
    assert explorer.result["max |sum of contributions - dW|"] < 1e-12


def test_through_time_explorer_shows_the_forget_bias_at_work():
    from bpcore.widgets import ThroughTimeExplorer

    explorer = ThroughTimeExplorer()
    assert explorer.norms.shape == (50,) and explorer.ratio < 1e-6  # the vanilla RNN forgets
    explorer.kind.value = "lstm"
    plain = explorer.ratio
    explorer.forget_bias.value = 2.0
    assert explorer.ratio > 1e3 * plain
    assert f"{explorer.ratio:.2e}" in explorer.summary.value


def test_memory_explorer_checkpointing_lowers_the_peak():
    from bpcore.widgets import MemoryExplorer

    explorer = MemoryExplorer()
    explorer.depth.value = 4
    plain = explorer.row.peak_graph_bytes
    explorer.segments.value = 2
    assert explorer.row.peak_graph_bytes < plain and explorer.row.recomputations == 2
    explorer.batch.value = 256
    assert explorer.row.peak_graph_bytes > plain / 2  # memory grows with the batch


def test_a_failing_explorer_callback_is_shown_in_the_explorer_and_the_next_change_works(monkeypatch, caplog):
    import logging

    from bpcore.widgets import chain_rule

    explorer = ChainRuleExplorer()
    assert explorer.errors.widget in explorer.widget.children[1].children  # the error area is on display
    real = chain_rule.engine_gradients
    monkeypatch.setattr(chain_rule, "engine_gradients", lambda values, activation: {}["w1"])
    with caplog.at_level(logging.ERROR, logger="bpcore.widgets"):
        explorer.sliders["w2"].value = 2.0  # raises nothing: the explorer reports it
    assert "recomputing the derivatives" in explorer.errors.value and "KeyError" in explorer.errors.value
    assert "no progress is lost" in explorer.errors.value and "KeyError" in caplog.text
    monkeypatch.setattr(chain_rule, "engine_gradients", real)
    explorer.sliders["w2"].value = 1.0
    assert explorer.errors.value == "" and explorer.rows["w1"]["engine"] == pytest.approx(
        scalar_chain(1.5, 0.8, -0.3, 1.0, 0.4, 0.2).grads["w1"]
    )


def test_stepper_buttons_report_failures(monkeypatch):
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((3, 2)), "b1": np.zeros(3)}
    params.update(W2=rng.standard_normal((2, 3)), b2=np.zeros(2))
    stepper = ThreeLayerStepper(np.array([0.5, -1.0]), np.array([0.2, 0.9]), params)
    monkeypatch.setattr(stepper, "numbers", {})
    stepper.next_button.click()
    assert "showing the step" in stepper.errors.value and "KeyError" in stepper.errors.value
    monkeypatch.undo()
    stepper.next_button.click()
    assert stepper.errors.value == "" and stepper.current["title"] in stepper.title.value


def test_memory_explorer_formula_is_the_measured_graph_byte_for_byte():
    from bpcore.labs.cost import measure_checkpointing, mlp
    from bpcore.widgets.memory import graph_memory

    for depth, width, batch in [(1, 16, 16), (2, 32, 16), (3, 16, 48), (5, 48, 32)]:
        x, targets = np.random.default_rng(0).normal(size=(batch, 64)), np.arange(batch) % 10
        for segments in range(depth + 1):
            measured = measure_checkpointing(mlp(depth, width, 64, 10), x, targets, segments=segments, repeats=1)
            formula = graph_memory(depth, width, batch, segments)
            assert (formula.stored_graph_bytes, formula.recomputed_graph_bytes, formula.recomputations) == (
                measured.stored_graph_bytes,
                measured.recomputed_graph_bytes,
                measured.recomputations,
            ), (depth, width, batch, segments)
            assert formula.peak_graph_bytes == measured.peak_graph_bytes


def test_memory_explorer_at_its_largest_settings_shows_the_formula():
    from bpcore.labs.cost import expected_activation_bytes
    from bpcore.widgets import MemoryExplorer

    explorer = MemoryExplorer()
    explorer.depth.value, explorer.width.value, explorer.batch.value = 24, 512, 512
    assert explorer.row.peak_graph_bytes == expected_activation_bytes(24, 512, 512, 10)
    explorer.segments.value = 8
    assert explorer.row.recomputations == 8 and explorer.row.peak_graph_bytes < expected_activation_bytes(
        24, 512, 512, 10
    )
    assert f"{explorer.row.peak_graph_bytes / 1e6:.2f} MB" in explorer.summary.value


def test_plotting_explorers_draw_into_one_image_and_redraw_it_on_each_change():
    import matplotlib.pyplot as plt

    import bpcore as bp
    from bpcore.widgets import (
        AttentionExplorer,
        BatchSizeExplorer,
        DepthExplorer,
        OptimizerExplorer,
        ThroughTimeExplorer,
    )
    from bpcore.widgets.figure import PNG_MAGIC

    digits = bp.data.digits()
    open_before = plt.get_fignums()
    explorers = {
        "batch size": (BatchSizeExplorer(digits, epochs=1), "lr", 0.1),
        "depth": (DepthExplorer(digits.X_train[:64], digits.y_train[:64]), "depth", 5),
        "optimizer": (OptimizerExplorer(), "landscape", "saddle"),
        "through time": (ThroughTimeExplorer(), "length", 10),
        "attention": (AttentionExplorer(), "d_k", 8),
    }
    for name, (explorer, control, value) in explorers.items():
        image = explorer.plot.widget
        assert image in explorer.widget.children, name
        first = bytes(image.value)  # ipywidgets keeps it as a memoryview
        assert first.startswith(PNG_MAGIC), f"{name}: expected PNG bytes in the Image, got {first[:8]!r}"
        getattr(explorer, control).value = value
        assert explorer.errors.value == "", (name, explorer.errors.value)
        assert bytes(image.value).startswith(PNG_MAGIC) and bytes(image.value) != first, (
            f"{name}: the image was not redrawn"
        )
        assert explorer.plot.renders == 2, name  # one at the start, one per change: no figure made twice
    assert plt.get_fignums() == open_before  # no pyplot figure left open per update


def test_attention_explorer_unscaled_scores_saturate_and_starve_q_and_k_of_gradient():
    from bpcore.widgets import AttentionExplorer
    from bpcore.widgets.attention import D_K_MAX

    explorer = AttentionExplorer()
    explorer.d_k.value = D_K_MAX
    scaled = explorer.result
    explorer.scaled.value = False
    unscaled = explorer.result
    assert scaled["score_std"] == pytest.approx(1, abs=0.2)  # Var(q . k / sqrt(d_k)) = 1
    assert unscaled["score_std"] == pytest.approx(np.sqrt(D_K_MAX), rel=0.2)  # Var(q . k) = d_k
    assert unscaled["max_weight"] > 0.9 > 0.5 > scaled["max_weight"]  # nearly one-hot rows
    assert unscaled["grad_norm_q"] < 0.1 * scaled["grad_norm_q"]
    assert unscaled["grad_norm_k"] < 0.5 * scaled["grad_norm_k"]
    assert f"{unscaled['grad_norm_q']:.3e}" in explorer.summary.value
    # the right panel: at d_k = 1 scaling changes nothing; unscaled, the gradient falls off with d_k
    assert explorer.sweep["scaled"][0] == explorer.sweep["unscaled"][0]
    assert explorer.sweep["unscaled"][-1] < 0.1 * explorer.sweep["scaled"][-1]
    assert explorer.sweep["unscaled"][-1] == unscaled["grad_norm_q"]


def test_attention_explorer_gradients_are_the_hand_derivation():
    from bpcore.labs.attention import attention_backward
    from bpcore.widgets.attention import D_V, LENGTH, attention_step

    for d_k, scaled, causal in [(4, True, False), (64, False, True)]:
        result = attention_step(d_k, scaled, causal, seed=3)
        rng = np.random.default_rng(3)  # the same draws as attention_step
        Q, K = rng.standard_normal((2, LENGTH, d_k))
        V, dO = rng.standard_normal((2, LENGTH, D_V))
        mask = np.tril(np.ones((LENGTH, LENGTH), dtype=bool)) if causal else None
        hand = attention_backward(Q, K, V, dO, mask=mask, scale=None if scaled else 1.0)
        np.testing.assert_allclose(result["weights"], hand["P"], rtol=1e-12, atol=1e-15)
        assert result["grad_norm_q"] == pytest.approx(np.median(np.linalg.norm(hand["dQ"], axis=-1)), rel=1e-10)
        assert result["grad_norm_k"] == pytest.approx(np.median(np.linalg.norm(hand["dK"], axis=-1)), rel=1e-10)


def test_attention_explorer_causal_pattern_has_a_zero_upper_triangle():
    from bpcore.widgets import AttentionExplorer

    explorer = AttentionExplorer()
    weights = explorer.result["weights"]
    above = np.triu_indices_from(weights, k=1)
    assert (weights[above] > 0).all()  # without the mask every key takes part
    explorer.causal.value = True
    weights = explorer.result["weights"]
    assert (weights[above] == 0).all()
    assert (np.diag(weights) > 0).all() and weights[0, 0] == 1.0  # the first query sees only itself
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    explorer.seed.value = 5
    assert (explorer.result["weights"][above] == 0).all() and "causal" in explorer.summary.value


def test_attention_explorer_compares_the_largest_weight_with_a_uniform_row_over_the_keys_each_query_sees():
    from bpcore.widgets import AttentionExplorer

    explorer = AttentionExplorer()
    T = explorer.result["weights"].shape[0]
    for causal in (False, True):
        explorer.causal.value = causal
        sees = np.tril(np.ones((T, T))) if causal else np.ones((T, T))  # the keys each query takes part with
        uniform = (sees / sees.sum(axis=-1, keepdims=True)).max(axis=-1).mean()
        assert f"(uniform: {uniform:.2f})" in explorer.summary.value, (causal, explorer.summary.value)


def test_attention_explorer_reports_a_failing_update_and_recovers(monkeypatch):
    from bpcore.widgets import AttentionExplorer, attention

    explorer = AttentionExplorer()
    real = attention.attention_step
    monkeypatch.setattr(attention, "attention_step", lambda *args, **kwargs: {}["grad_norm_q"])
    explorer.d_k.value = 16  # raises nothing: the explorer reports it
    assert "recomputing the attention" in explorer.errors.value and "KeyError" in explorer.errors.value
    monkeypatch.setattr(attention, "attention_step", real)
    explorer.d_k.value = 32
    assert explorer.errors.value == "" and "d_k = 32" in explorer.summary.value


@pytest.mark.parametrize(
    ("module", "computation", "build"),
    [
        ("batch_size", "evaluate", lambda w: w.BatchSizeExplorer(__import__("bpcore").data.digits(), epochs=1)),
        ("depth", "depth_profile", lambda w: w.DepthExplorer(*_small_digits())),
        ("through_time", "hidden_gradient_norms", lambda w: w.ThroughTimeExplorer()),
        ("optimizers", "optimizer_path", lambda w: w.OptimizerExplorer()),
        ("attention", "attention_step", lambda w: w.AttentionExplorer()),
    ],
)
def test_explorers_compute_on_one_blas_thread(monkeypatch, module, computation, build):
    """An update's products are too small for a second BLAS thread to pay off; on a busy machine each
    one would wait for it (the labs' training runs are pinned the same way)."""
    import importlib

    from threadpoolctl import threadpool_info, threadpool_limits

    import bpcore.widgets as w

    target = importlib.import_module(f"bpcore.widgets.{module}")
    original, seen = getattr(target, computation), []

    def recording(*args, **kwargs):
        seen.append({info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"})
        return original(*args, **kwargs)

    monkeypatch.setattr(target, computation, recording)
    with threadpool_limits(limits=2, user_api="blas"):
        explorer = build(w)
        assert seen, f"the explorer never called {computation}"
        assert all(threads == {1} for threads in seen), f"BLAS threads while {computation} ran: {seen}, expected {{1}}"
        assert {info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"} == {2}, (
            "the explorer did not give back the caller's BLAS thread count"
        )
    assert explorer.widget is not None


def _small_digits():
    import bpcore as bp

    digits = bp.data.digits()
    return digits.X_train[:128], digits.y_train[:128]
