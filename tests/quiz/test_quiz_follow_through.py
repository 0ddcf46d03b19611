"""Follow-through credit in the chained derivation: each step is also checked against the learner's own
earlier answers, recomputed by the engine, so one slip (or one rounding) costs one step, not the chain."""

import numpy as np
import pytest

from bpcore.quiz import kinds
from bpcore.quiz.instance import make_instance
from bpcore.quiz.parse import parse_array
from bpcore.quiz.render import array_text, number

QUESTION = "three-layer-chain"


def rounded(a, digits: int) -> np.ndarray:
    return np.vectorize(lambda v: float(f"{v:.{digits}g}"))(np.asarray(a, dtype=np.float64))


def careful_learner(instance, digits: int) -> dict[str, str]:
    """Works every step by hand from the numbers the prompt shows (4 digits), types each step to ``digits``
    significant digits, and carries their own typed numbers into the next step, as the prompt invites."""
    v = instance.values
    shown = np.vectorize(lambda x: float(number(x)))
    h, y = shown(v["h"]), shown(v["y"])
    dz2 = rounded((y - v["t"]) * y * (1 - y), digits)
    dW2 = rounded(np.outer(dz2, h), digits)
    dh = rounded(v["W2"].T @ dz2, digits)
    dW1 = rounded(np.outer(dh * h * (1 - h), v["x"]), digits)
    return {"dL/dz2": dz2, "dL/dW2": dW2, "dL/dh": dh, "dL/dW1": dW1}


def carried(instance, step: str, value) -> dict[str, np.ndarray]:
    """A learner who writes ``value`` at ``step`` and works every later step out exactly from it (by hand, in
    numpy: independent of the engine's follow-through map, which these tests check)."""
    v, key = instance.values, instance.key
    h = v["h"]
    answers = {name: np.asarray(a, dtype=np.float64) for name, a in key.items()}
    answers[step] = parse_array(array_text(value))  # as written down (4 digits): later steps build on that
    if step == "dL/dz2":
        answers["dL/dW2"] = np.outer(answers["dL/dz2"], h)
        answers["dL/dh"] = v["W2"].T @ answers["dL/dz2"]
    if step in ("dL/dz2", "dL/dh"):
        answers["dL/dW1"] = np.outer(answers["dL/dh"] * h * (1 - h), v["x"])
    return answers


def typed(answers: dict) -> dict[str, str]:
    return {step: array_text(value) for step, value in answers.items()}


def rounding_matters(instance) -> bool:
    """The careful learner's dL/dh, carried from their 3-digit dL/dz2, is outside the key's tolerance."""
    dh = careful_learner(instance, 3)["dL/dh"]
    return not np.allclose(dh, instance.key["dL/dh"], rtol=1e-2, atol=1e-4)


def test_a_rounded_dz2_carried_into_dh_is_right_given_it(bank):
    q = bank.get(QUESTION)
    seeds = [s for s in range(300) if rounding_matters(make_instance(q, s))]
    assert seeds  # cancellation in W2^T dL/dz2 magnifies the rounding for some draws
    for seed in seeds:
        instance = make_instance(q, seed)
        result = kinds.check(instance, typed(careful_learner(instance, 3)))
        assert result.correct, (seed, result.feedback)
        assert "dL/dh: right, given your dL/dz2." in result.feedback
        assert not any("given your" in line for line in kinds.check(instance, typed(instance.key)).feedback)


def test_no_careful_learner_is_marked_wrong_over_many_seeds(bank):
    """Before follow-through, 155 of seeds 0..1999 (7.8%) marked this learner wrong at dL/dh."""
    q = bank.get(QUESTION)
    wrong, followed = [], 0
    for seed in range(2000):
        instance = make_instance(q, seed)
        result = kinds.check(instance, typed(careful_learner(instance, 3)))
        if not result.correct:
            wrong.append((seed, result.first_wrong_step))
        followed += any("given your" in line for line in result.feedback)
    assert wrong == []
    assert followed > 50  # the cases that used to fail are the ones follow-through now credits


@pytest.mark.parametrize("step", ["dL/dz2", "dL/dh"])
def test_a_slip_carried_on_consistently_costs_only_its_own_step(bank, step):
    """Wrong-but-consistent: a learner who forgets a slope early, then works the rest out right from it."""
    for seed in range(30):
        instance = make_instance(bank.get(QUESTION), seed)
        slip = instance.mistakes[step][0]
        answers = carried(instance, step, slip.value)
        result = kinds.check(instance, typed(answers))
        later = [s for s in instance.steps if list(instance.steps).index(s) > list(instance.steps).index(step)]
        assert result.first_wrong_step == step and result.diagnosis.name == slip.name
        assert result.step_scores[step] == 0 and all(result.step_scores[s] == 1 for s in later)
        for s in later:
            assert any(line.startswith(f"{s}: right") for line in result.feedback)
        upstream = {"dL/dW2": "dL/dz2", "dL/dh": "dL/dz2", "dL/dW1": "dL/dh"}
        followed_lines = [line for line in result.feedback if ", given your " in line]
        assert followed_lines and all(
            line.endswith(f"given your {upstream[line.split(':')[0]]}.") for line in followed_lines
        )
        assert result.score == pytest.approx(3 / 4)


def test_a_later_step_that_matches_neither_is_still_wrong(bank):
    instance = make_instance(bank.get(QUESTION), 4)
    slip = instance.mistakes["dL/dz2"][0].value
    answers = carried(instance, "dL/dz2", slip)
    answers["dL/dh"] = -answers["dL/dh"]  # a second, independent slip: neither the key nor their dL/dz2's
    result = kinds.check(instance, typed(answers))
    assert result.step_scores == {"dL/dz2": 0.0, "dL/dW2": 1.0, "dL/dh": 0.0, "dL/dW1": 0.0}
    assert result.followed == ["dL/dW2"]  # and dL/dW1, worked from the dL/dh before the slip, no longer follows
    assert result.diagnosis.name == instance.mistakes["dL/dz2"][0].name  # the first wrong step's slip


def test_all_zeros_earn_nothing(bank):
    """Zeros all the way down are consistent with each other, and show no working: no follow-through."""
    instance = make_instance(bank.get(QUESTION), 4)
    zeros = {step: array_text(np.zeros_like(value)) for step, value in instance.key.items()}
    result = kinds.check(instance, zeros)
    assert result.score == 0 and result.followed == []


def test_follow_through_needs_an_answer_upstream(bank):
    instance = make_instance(bank.get(QUESTION), 4)
    answers = typed(carried(instance, "dL/dz2", instance.mistakes["dL/dz2"][0].value))
    del answers["dL/dz2"]  # no dL/dz2: nothing for dL/dW2 and dL/dh to follow from
    result = kinds.check(instance, answers)
    assert result.step_scores == {"dL/dz2": 0.0, "dL/dW2": 0.0, "dL/dh": 0.0, "dL/dW1": 1.0}
    assert result.followed == ["dL/dW1"]  # which does follow from the dL/dh they gave
