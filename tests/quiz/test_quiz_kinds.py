"""Every checker: full marks, partial credit, zero, every named diagnosis, and unreadable answers."""

import numpy as np
import pytest

from bpcore.quiz import kinds
from bpcore.quiz.bank import Question
from bpcore.quiz.diagnose import Mistake, diagnose
from bpcore.quiz.instance import LETTERS, make_instance
from bpcore.quiz.parse import ParseError
from bpcore.quiz.render import array_text


def grade(bank, question_id, answer, seed=0):
    return kinds.check(make_instance(bank.get(question_id), seed), answer)


def question(kind, **spec):
    """A minimal in-memory question, for checkers that need odd specs."""
    return Question(
        id="t",
        topic="t",
        level="basic",
        kind=kind,
        prompt="p",
        hints=["h"],
        explanation="e",
        notebook="notebooks/x.ipynb",
        tags=[],
        spec=spec,
    )


# ----------------------------------------------------------------------------- single and multi


def shown(instance, *file_letters):
    """The letters the learner saw for options written ``file_letters`` in the bank (choices are shuffled)."""
    return " ".join(instance.letter(LETTERS.index(f)) for f in file_letters)


def test_single_choice(bank):
    instance = make_instance(bank.get("chain-rule-composite"), 0)  # answer "b" in the file
    assert kinds.check(instance, shown(instance, "b")).score == 1
    wrong = kinds.check(instance, shown(instance, "a"))
    assert wrong.score == 0 and "evaluated where f is applied" in " ".join(wrong.feedback)
    assert wrong.feedback[0] == f"({shown(instance, 'a')}) is not right."  # the letter the learner saw
    with pytest.raises(ParseError, match="exactly one"):
        kinds.check(instance, "a b")


@pytest.mark.parametrize(
    ("picked", "score"),
    [("a c d", 1.0), ("a c", 2 / 3), ("a", 1 / 3), ("a c d b", 2 / 3), ("a b", 0.0), ("b e", 0.0), ("a b e", 0.0)],
)
def test_multi_choice_partial_credit(bank, picked, score):
    """Right answers a, c, d in the file: each right pick earns 1/3, each wrong pick costs 1/3, never below 0."""
    instance = make_instance(bank.get("chain-rule-paths-add"), 3)
    assert kinds.check(instance, shown(instance, *picked.split())).score == pytest.approx(score)


def test_multi_choice_feedback_names_wrong_picks(bank):
    instance = make_instance(bank.get("chain-rule-paths-add"), 3)
    result = kinds.check(instance, shown(instance, "a", "b"))
    text = " ".join(result.feedback)
    assert f"({shown(instance, 'b')}) should not be" in text and "2 right choices still missing" in text
    assert result.recorded["letters"] == sorted(shown(instance, "a", "b").split())
    assert [instance.letter(i) for i in result.recorded["options"]] == result.recorded["letters"]


# ----------------------------------------------------------------------------- numeric


def test_numeric_tolerance_and_forms(bank):
    assert grade(bank, "chain-rule-central-difference", "12.01").correct
    assert grade(bank, "chain-rule-central-difference", "1201/100").correct
    assert not grade(bank, "chain-rule-central-difference", "12.02").correct  # rtol is 1e-4 here
    assert grade(bank, "training-accumulate", 12).correct


@pytest.mark.parametrize(
    ("answer", "diagnosis"),
    [
        ("12", "gave the exact derivative"),
        ("12.61", "used a one-sided difference"),
        ("24.02", "divided by h instead of 2h"),
        ("-12.01", "wrong sign"),
    ],
)
def test_numeric_diagnoses_from_the_bank(bank, answer, diagnosis):
    result = grade(bank, "chain-rule-central-difference", answer)
    assert result.score == 0 and result.diagnosis.name == diagnosis
    assert diagnosis in " ".join(result.feedback)


def test_generated_numeric_names_the_mistake(bank):
    instance = make_instance(bank.get("chain-rule-sigmoid-slope"), 11)
    z = instance.values["z"]
    assert kinds.check(instance, f"{instance.key:.6f}").correct
    result = kinds.check(instance, repr(z * (1 - z)))
    assert result.diagnosis.name == "used z instead of sigma(z)"


# ----------------------------------------------------------------------------- matrix and the six diagnoses


def mistake(instance, name):
    return next(m for m in instance.mistakes if m.name == name)


@pytest.mark.parametrize(
    ("question_id", "name"),
    [
        ("three-layer-dw2", "transposed"),
        ("three-layer-dw2", "missing 1/N"),
        ("three-layer-dw2", "missing activation derivative"),
        ("three-layer-dw2", "wrong sign"),
        ("three-layer-output-bias", "summed over the wrong axis"),
        ("three-layer-softmax-ce", "summed over the wrong axis"),
        ("three-layer-softmax-ce", "missing 1/N"),
        ("training-momentum", "off by the learning rate"),
    ],
)
def test_every_diagnosis_is_recognised(bank, question_id, name):
    instance = make_instance(bank.get(question_id), 5)
    result = kinds.check(instance, array_text(mistake(instance, name).value))
    assert result.score == 0
    assert result.diagnosis is not None and result.diagnosis.name == name
    assert f"**{name}**" in " ".join(result.feedback)


def test_matrix_right_answer_from_text_or_array(bank):
    instance = make_instance(bank.get("three-layer-dw2"), 2)
    assert kinds.check(instance, array_text(instance.key)).correct
    assert kinds.check(instance, instance.key.tolist()).correct
    assert kinds.check(instance, str(instance.key)).correct  # numpy's own printout


def test_matrix_checks_shape_first(bank):
    instance = make_instance(bank.get("three-layer-dw2"), 2)
    result = kinds.check(instance, "[[1, 2], [3, 4]]")
    assert result.score == 0 and "expected shape (2, 3), got (2, 2)" in result.feedback[0]
    close_but_wrong = kinds.check(instance, array_text(instance.key + 0.05))
    assert (
        close_but_wrong.score == 0
        and "6 of 6 entries are not right to 3 significant digits" in close_but_wrong.feedback[0]
    )


def test_a_wrong_matrix_is_described_in_the_learners_words(bank):
    """Not the engine's check output (`answer exact: False close: False max diff: ...`): how many entries are off,
    the largest difference and where it is, counted from 1."""
    instance = make_instance(bank.get("three-layer-softmax-ce"), 0)
    key = np.asarray(instance.key, dtype=float)
    wrong = key.copy()
    wrong.flat[-1] += 0.2  # one entry off: the last one
    (line, *_) = kinds.check(instance, wrong.tolist()).feedback
    for internal in ("exact:", "close:", "max diff", "`", "index ("):
        assert internal not in line, line
    where = f"row {key.shape[0]}, column {key.shape[1]}" if key.ndim == 2 else f"entry {key.size}"
    assert f"1 of {key.size} entry is not right to 3 significant digits" in line and f"0.2, is at {where}." in line, (
        line
    )


def test_a_constant_factor_is_noticed():
    key = np.array([[0.3, -0.1], [0.2, 0.5]])
    found = diagnose(2 * key, key, [Mistake("wrong sign", -key)], 3)
    assert found.name == "off by a constant factor" and "times 2" in found.explanation


def test_a_scalar_is_off_by_a_factor_only_when_the_factor_is_a_simple_one():
    """Every wrong number is *some* multiple of a scalar key: only 2..10 or their inverses mean a dropped factor."""
    assert "times 0.5" in diagnose(0.25, 0.5, [], 3).explanation
    assert "times 3" in diagnose(1.5, 0.5, [], 3).explanation
    assert diagnose(0.6, 0.5, [], 3) is None  # times 1.2: just a wrong number
    assert diagnose(73729, 73856, [], 15) is None


# ----------------------------------------------------------------------------- chained derivation


def test_chained_derivation_credits_each_step_and_names_the_first_wrong(bank):
    instance = make_instance(bank.get("three-layer-chain"), 4)
    right = {step: array_text(value) for step, value in instance.key.items()}
    assert kinds.check(instance, right).correct
    answer = {**right, "dL/dh": array_text(-instance.key["dL/dh"]), "dL/dW1": array_text(instance.key["dL/dW1"].T)}
    result = kinds.check(instance, answer)
    assert result.score == pytest.approx(0.5)
    assert result.first_wrong_step == "dL/dh" and result.diagnosis.name == "wrong sign"
    assert result.step_scores == {"dL/dz2": 1.0, "dL/dW2": 1.0, "dL/dh": 0.0, "dL/dW1": 0.0}
    assert "the first wrong step is **dL/dh**" in result.feedback[0]


def test_chained_derivation_accepts_a_list_and_blank_steps(bank):
    instance = make_instance(bank.get("three-layer-chain"), 4)
    steps = list(instance.key.values())
    result = kinds.check(instance, [array_text(steps[0]), array_text(steps[1])])  # the last two left out
    assert result.score == pytest.approx(0.5) and result.first_wrong_step == "dL/dh"
    with pytest.raises(ParseError, match="dL/dW2: "):
        kinds.check(instance, {"dL/dW2": "[[1, 2"})


def test_chained_derivation_diagnoses_a_slip_inside_a_step(bank):
    instance = make_instance(bank.get("three-layer-chain"), 4)
    right = {step: array_text(value) for step, value in instance.key.items()}
    no_slope = next(m for m in instance.mistakes["dL/dz2"] if m.name == "missing activation derivative")
    result = kinds.check(instance, {**right, "dL/dz2": array_text(no_slope.value)})
    assert result.first_wrong_step == "dL/dz2" and result.diagnosis.name == "missing activation derivative"


# ----------------------------------------------------------------------------- order


def shown_letters(instance, order):
    """The letters a learner would type to put the items in ``order`` (item indices)."""
    return " ".join(LETTERS[instance.display.index(i)] for i in order)


def test_order_full_and_partial_credit(bank):
    instance = make_instance(bank.get("training-step-order"), 9)
    assert instance.display != sorted(instance.display)  # shown shuffled
    assert kinds.check(instance, shown_letters(instance, [0, 1, 2, 3, 4])).correct
    swapped = kinds.check(instance, shown_letters(instance, [0, 1, 3, 2, 4]))
    assert swapped.score == pytest.approx(9 / 10)  # one of ten pairs out of order
    assert "Position 3" in swapped.feedback[0]
    assert kinds.check(instance, shown_letters(instance, [4, 3, 2, 1, 0])).score == 0
    with pytest.raises(ParseError, match="exactly once"):
        kinds.check(instance, "a a b c d")


# ----------------------------------------------------------------------------- code


def sigmoid_backward(z, upstream):
    s = 1 / (1 + np.exp(-z))
    return upstream * s * (1 - s)


def forgets_upstream(z, upstream):
    s = 1 / (1 + np.exp(-z))
    return s * (1 - s)


def crashes(z, upstream):
    cache = {}
    return upstream * cache["s"]


def test_code_question_runs_the_function_against_the_engine(bank):
    assert grade(bank, "chain-rule-code-sigmoid-backward", sigmoid_backward).correct
    wrong = grade(bank, "chain-rule-code-sigmoid-backward", forgets_upstream)
    assert wrong.score == 0 and "gradient check" in " ".join(wrong.feedback)


def test_code_question_reports_an_exception_readably(bank):
    result = grade(bank, "chain-rule-code-sigmoid-backward", crashes)
    text = " ".join(result.feedback)
    assert result.score == 0
    assert "your function raised KeyError: 's'" in text and "line 3 of crashes" in text
    assert 'cache["s"]' in text and "Traceback" not in text


def test_code_question_checks_shapes_and_stability(bank):
    transposed = grade(bank, "three-layer-code-linear-backward", lambda x, W, g: (g @ W, x.T @ g, g.sum(axis=0)))
    assert transposed.score == 0 and "transposed shape" in " ".join(transposed.feedback)

    def naive_softmax(z):
        return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)

    unstable = grade(bank, "three-layer-code-softmax", naive_softmax)
    assert unstable.score == 0 and "numerically stable" in " ".join(unstable.feedback)


def test_code_question_never_runs_text(bank, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParseError, match="text is never run"):
        grade(bank, "chain-rule-code-sigmoid-backward", "__import__('os').system('touch pwned')")
    assert not (tmp_path / "pwned").exists()


# ----------------------------------------------------------------------------- bug hunt and flashcard


@pytest.mark.parametrize(
    ("answer", "score"),
    [
        ({"line": 9, "fix": "a"}, 1.0),
        ({"line": 9, "fix": "b"}, 0.5),
        ({"line": 7, "fix": "a"}, 0.0),  # the right fix at a line that is not the bug is not right
        ({"line": 7, "fix": "c"}, 0.0),
        ((9, "delta_hidden = (W2.T @ delta_output)*h*(1 - h)  # typed"), 1.0),
        ({"line": "line 9", "fix": "delta_hidden = h"}, 0.5),
    ],
)
def test_bughunt_grades_line_and_fix(bank, answer, score):
    """Fix letters as written in the file, turned into the letters shown for this seed."""
    instance = make_instance(bank.get("three-layer-bughunt-sigmoid"), 0)
    line, fix = (answer["line"], answer["fix"]) if isinstance(answer, dict) else answer
    if len(fix) == 1:
        fix = shown(instance, fix)
    assert kinds.check(instance, {"line": line, "fix": fix}).score == score


def test_bughunt_unreadable_line(bank):
    with pytest.raises(ParseError, match="line number from 1 to 12"):
        grade(bank, "three-layer-bughunt-sigmoid", {"line": 40, "fix": "a"})


@pytest.mark.parametrize(("rating", "score"), [("again", 0.0), ("hard", 0.5), ("good", 1.0), ("easy", 1.0)])
def test_flashcard_self_rating(bank, rating, score):
    result = grade(bank, "chain-rule-vjp", rating)
    assert result.score == score and result.rating == ("again", "hard", "good", "easy").index(rating) + 1


def test_static_matrix_question_with_its_own_mistakes():
    q = question(
        "matrix",
        answer=[[1.0, 2.0], [3.0, 4.0]],
        mistakes=[{"name": "forgot the bias", "answer": [[0, 1], [2, 3]], "why": "add b"}],
    )
    instance = make_instance(q, 0)
    assert kinds.check(instance, "[[1, 2], [3, 4]]").correct
    assert kinds.check(instance, "[[0, 1], [2, 3]]").diagnosis.name == "forgot the bias"
    assert kinds.check(instance, "[[1, 3], [2, 4]]").diagnosis.name == "transposed"


def test_a_mistake_the_checker_would_call_the_key_is_not_distinguishable():
    """The digits rule is not symmetric (the half unit is the second argument's): ve-sigmoid-chain seed 63 once
    drew a mistake that passed the generator's check one way round and was skipped as 'the key' the other."""
    from bpcore.quiz.generators import Problem, distinguishable

    key, mistake = 0.0999, 0.1003  # 4e-4 apart: over half a unit of 0.0999 (5e-5), under half of 0.1003 (5e-4)
    assert not distinguishable(Problem({}, key, [Mistake("used only the slopes", mistake)]))
    assert not distinguishable(Problem({}, mistake, [Mistake("used only the slopes", key)]))
    assert distinguishable(Problem({}, 0.0999, [Mistake("used only the slopes", 0.1012)]))
