"""Training without backprop: each alternative learns, at the cost the module docstring claims, counted."""

import numpy as np
import pytest

import bpcore as bp
from bpcore.labs import alternatives as alt

F = bp.nn.functional
SPIRALS = alt.make_problem("spirals", alt.Budget())  # 3 classes: chance is 1/3


def engine_gradients(problem):
    model = problem.new_model()
    F.cross_entropy(model(bp.tensor(problem.X_train)), problem.y_train).backward()
    return model, dict(zip(["W1", "b1", "W2", "b2"], [p.grad for p in model.parameters()], strict=True))


def test_numpy_network_and_manual_backprop_equal_the_engine():
    model, expected = engine_gradients(SPIRALS)
    w = alt.weights_of(model)
    _, logits = alt.forward(w, SPIRALS.X_train)
    np.testing.assert_allclose(logits, model(bp.tensor(SPIRALS.X_train)).data, rtol=1e-13, atol=1e-13)
    loss, grads, _ = alt.manual_gradients(w, SPIRALS.X_train, SPIRALS.y_train)
    assert loss == pytest.approx(F.cross_entropy(bp.tensor(logits), SPIRALS.y_train).item(), rel=1e-13)
    for name in expected:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-10, atol=1e-13)


# ----------------------------------------------------------------------------- (a) feedback alignment


def test_feedback_alignment_changes_only_the_hidden_update_and_the_loss_still_falls():
    model, true_grads = engine_gradients(SPIRALS)
    B = np.random.default_rng(9).uniform(-0.25, 0.25, size=(3, SPIRALS.hidden))
    _, fa_grads, _ = alt.manual_gradients(alt.weights_of(model), SPIRALS.X_train, SPIRALS.y_train, feedback=B)
    for name in ("W2", "b2"):  # the output layer sees the true error in both methods
        np.testing.assert_allclose(fa_grads[name], true_grads[name], rtol=1e-10, atol=1e-13)
    cosine = (
        np.sum(fa_grads["W1"] * true_grads["W1"]) / np.linalg.norm(fa_grads["W1"]) / np.linalg.norm(true_grads["W1"])
    )
    assert cosine < 0.9  # the hidden-layer update is not the gradient

    result = alt.feedback_alignment(SPIRALS, alt.Budget())
    assert result.train_loss_curve[-1] < 0.2 * result.train_loss_curve[0]
    angles = result.extra["alignment_degrees"]
    assert angles[-1] < 60 < angles[0]  # W2 came into alignment with B: the random feedback now points downhill


# ----------------------------------------------------------------------------- each alternative learns


def es_with_ranks(problem, budget):
    return alt.evolution_strategies(problem, budget, rank_shaping=True, lr=0.02)


# (method, accuracy threshold, seeds): thresholds sit below the test accuracies measured for seeds 0-2
# (FA >= 0.96, ES >= 0.97, ES with ranks 1.0, RS >= 0.92); chance is 1/3
LEARNERS = [
    (alt.feedback_alignment, 0.9, (0, 1)),
    (alt.evolution_strategies, 0.9, (0, 1)),
    (es_with_ranks, 0.9, (0,)),  # about 2 s per run: one seed is enough for the variant
    (alt.random_search, 0.85, (0, 1)),
]


@pytest.mark.parametrize(
    ("method", "threshold", "seed"),
    [(method, threshold, seed) for method, threshold, seeds in LEARNERS for seed in seeds],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_each_alternative_trains_far_above_chance(method, threshold, seed):
    budget = alt.Budget(seed=seed)
    result = method(alt.make_problem("spirals", budget), budget)
    assert result.test_accuracy >= threshold
    assert result.train_loss < 0.5 * np.log(3)  # chance-level cross-entropy is ln 3


def test_random_search_only_ever_keeps_improvements():
    result = alt.random_search(SPIRALS, alt.Budget(steps=50))
    assert np.all(np.diff(result.train_loss_curve) <= 0)
    assert result.loss_evaluations == 1 + 50 * 10


def test_es_gradient_points_along_the_true_gradient_and_costs_two_evaluations_per_pair():
    rng = np.random.default_rng(0)
    A = np.diag(np.linspace(1.0, 3.0, 10))
    theta = rng.standard_normal(10)
    calls = []

    def loss(t):
        calls.append(1)
        return 0.5 * t @ A @ t

    estimate = alt.es_gradient(loss, theta, sigma=1e-3, pairs=2000, rng=rng)
    true = A @ theta
    assert len(calls) == 4000
    assert estimate @ true / np.linalg.norm(estimate) / np.linalg.norm(true) > 0.95
    np.testing.assert_allclose(np.linalg.norm(estimate), np.linalg.norm(true), rtol=0.1)


def test_centred_ranks_are_scale_free():
    values = np.array([10.0, -3.0, 1e6, 0.5])
    np.testing.assert_allclose(alt.centred_ranks(values), [1 / 6, -0.5, 0.5, -1 / 6], rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(alt.centred_ranks(values), alt.centred_ranks(np.log(values - values.min() + 1)))


# ----------------------------------------------------------------------------- (d) finite differences


def test_finite_differences_use_exactly_two_evaluations_per_parameter_per_step():
    model = SPIRALS.new_model()
    flat = alt.FlatParameters(model)
    loss = alt.CountedLoss(SPIRALS, flat)
    alt.finite_difference_gradient(loss, flat.get())
    assert flat.size == model.num_parameters() == 99
    assert loss.evaluations == 2 * flat.size

    steps = 4
    result = alt.finite_differences(SPIRALS, alt.Budget(steps=steps))
    assert result.loss_evaluations == steps * 2 * flat.size
    assert result.backward_passes == 0


def test_finite_differences_follow_the_backprop_trajectory():
    budget = alt.Budget(steps=15)
    fd, reference = alt.finite_differences(SPIRALS, budget), alt.backprop(SPIRALS, budget)
    np.testing.assert_allclose(fd.train_loss_curve, reference.train_loss_curve, rtol=1e-7)
    assert fd.train_loss == pytest.approx(reference.train_loss, rel=1e-6)


# ----------------------------------------------------------------------------- (c) Oja's rule


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_oja_converges_to_the_first_principal_component(seed):
    result = alt.oja(alt.anisotropic_gaussian(seed=seed), seed=seed)
    assert result.cosine > 0.99
    assert np.linalg.norm(result.weight) == pytest.approx(1.0, abs=0.01)  # the decay term normalises w


def test_oja_finds_the_top_component_of_the_digits():
    result = alt.oja(bp.data.digits().X_train, lr=0.01, epochs=10)
    assert result.cosine > 0.99
    assert result.cosine_by_epoch[0] < result.cosine


# ----------------------------------------------------------------------------- all together


@pytest.mark.parametrize("seed", [0, 1])
def test_backprop_is_as_accurate_as_every_alternative_with_far_fewer_evaluations(seed):
    """moons, 8 hidden units, 100 steps: small enough that finite differences finish in about a second."""
    budget = alt.Budget(steps=100, hidden=8, seed=seed)
    results = {r.method: r for r in alt.compare_all("moons", budget)}
    assert list(results) == list(alt.METHODS)
    reference = results.pop("backprop")
    assert reference.loss_evaluations == reference.backward_passes == budget.steps
    n_params = 2 * 8 + 8 + 8 * 2 + 2
    assert results["finite differences"].loss_evaluations == budget.steps * 2 * n_params
    assert results["evolution strategies"].loss_evaluations == budget.steps * 40
    assert results["feedback alignment"].loss_evaluations == budget.steps  # as cheap, but not the gradient
    for name, result in results.items():
        assert reference.test_accuracy >= result.test_accuracy, name
        assert result.test_accuracy > 0.8, name  # every method learns something on moons
        if name != "feedback alignment":
            assert result.loss_evaluations >= 10 * reference.loss_evaluations, name
    table = alt.format_results([reference, *results.values()])
    assert all(name in table for name in alt.METHODS)


# ----------------------------------------------------------------------------- batched evaluation


def test_counted_loss_many_is_bitwise_one_call_per_row_and_counts_every_row():
    model = SPIRALS.new_model()
    flat = alt.FlatParameters(model)
    loss = alt.CountedLoss(SPIRALS, flat)
    thetas = flat.get() + 0.05 * np.random.default_rng(0).standard_normal((2 * loss.chunk + 3, flat.size))
    one_by_one = np.array([loss(theta) for theta in thetas])
    assert loss.evaluations == len(thetas)
    batched = loss.many(thetas)
    assert loss.evaluations == 2 * len(thetas), f"expected {2 * len(thetas)} evaluations, counted {loss.evaluations}"
    assert batched.tolist() == one_by_one.tolist(), f"max difference {np.max(np.abs(batched - one_by_one))}"


def test_counted_loss_many_shares_a_common_first_layer_and_stays_bitwise_one_call_per_row(monkeypatch):
    model = SPIRALS.new_model()
    flat = alt.FlatParameters(model)
    loss = alt.CountedLoss(SPIRALS, flat)
    first = flat.sizes[0] + flat.sizes[1]
    thetas = flat.get() + 0.05 * np.random.default_rng(1).standard_normal((2 * loss.chunk + 3, flat.size))
    thetas[: loss.chunk, :first] = thetas[0, :first]  # the first chunk: one first layer, own second layers
    one_by_one = np.array([loss(theta) for theta in thetas])
    full_forwards = []
    monkeypatch.setattr(alt, "forward", lambda w, X: full_forwards.append(1) or FORWARD(w, X))
    batched = loss.many(thetas)
    assert len(full_forwards) == 2, f"expected the shared first chunk to skip the full forward; {full_forwards}"
    assert batched.tolist() == one_by_one.tolist(), f"max difference {np.max(np.abs(batched - one_by_one))}"


FORWARD = alt.forward


def test_finite_difference_gradient_is_the_same_for_a_plain_function_and_a_counted_loss():
    model = SPIRALS.new_model()
    flat = alt.FlatParameters(model)
    loss = alt.CountedLoss(SPIRALS, flat)
    theta = flat.get()
    calls = []

    def plain(t):  # no many(): evaluated one row at a time
        calls.append(1)
        return alt.cross_entropy(alt.forward(flat.as_weights(t), SPIRALS.X_train)[1], SPIRALS.y_train)

    by_rows, batched = alt.finite_difference_gradient(plain, theta), alt.finite_difference_gradient(loss, theta)
    assert len(calls) == loss.evaluations == 2 * flat.size
    assert batched.tolist() == by_rows.tolist(), f"max difference {np.max(np.abs(batched - by_rows))}"
    _, expected = engine_gradients(SPIRALS)
    np.testing.assert_allclose(by_rows, np.concatenate([g.ravel() for g in expected.values()]), rtol=1e-6, atol=1e-9)
