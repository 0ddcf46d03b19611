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
