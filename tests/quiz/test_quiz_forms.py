"""Answers read as people write them: vectors flat, as rows or as columns; integers exactly."""

import numpy as np
import pytest

from bpcore.quiz import kinds
from bpcore.quiz.bank import Question
from bpcore.quiz.instance import make_instance
from bpcore.quiz.parse import ParseError, parse_array
from bpcore.quiz.render import array_text

# every engine-computed question whose key is a vector (the chain has two vector steps, tested below)
VECTOR_QUESTIONS = [
    "act-leaky-backward",
    "attn-layernorm-backward",
    "attn-masked-row-ds",
    "gen-reinforce",
    "opt-adam-two-steps",
    "reg-l2-step",
    "rnn-hidden-grad",
    "three-layer-output-bias",
    "three-layer-tanh-db1",
    "training-momentum",
    "ve-clip-norm",
]


def static(kind, **spec) -> Question:
    """A minimal in-memory question with an answer spec of its own."""
    return Question("t", "t", "basic", kind, "p", ["h"], "e", "notebooks/x.ipynb", [], spec)


def forms(vector: np.ndarray) -> dict[str, str]:
    """One vector written every way a learner might: typed by hand, or pasted from numpy or the engine."""
    column, row = vector[:, None], vector[None, :]
    with np.printoptions(precision=8):
        return {
            "flat": array_text(vector),
            "row": array_text(row),
            "column": array_text(column),
            "numpy flat": str(vector),  # [0.1 0.2]
            "numpy row": str(row),  # [[0.1 0.2]]
            "numpy column": str(column),  # [[0.1]\n [0.2]]
            "repr flat": repr(vector),  # array([0.1, 0.2])
            "repr column": repr(column),  # array([[0.1],\n       [0.2]])
            "tensor column": f"tensor({np.array2string(column, separator=', ')}, requires_grad=True)",
            "no brackets": " ".join(f"{v:.8g}" for v in vector),
            "rows without brackets": "\n".join(f"{v:.8g}" for v in vector),
        }


def test_the_list_of_vector_questions_is_complete(bank):
    found = [
        q.id
        for q in bank.questions
        if q.kind == "matrix" and q.generator and not isinstance(make_instance(q, 0).key, dict)
        if np.ndim(make_instance(q, 0).key) == 1
    ]
    assert sorted(found) == VECTOR_QUESTIONS


@pytest.mark.parametrize("question_id", VECTOR_QUESTIONS)
def test_a_vector_key_accepts_flat_row_and_column_forms(bank, question_id):
    q = bank.get(question_id)
    for seed in range(3):
        instance = make_instance(q, seed)
        for form, text in forms(instance.key).items():
            result = kinds.check(instance, text)
            assert result.correct, (question_id, seed, form, text, result.feedback)
        assert kinds.check(instance, instance.key[:, None]).correct  # an array, not text
        assert kinds.check(instance, instance.key[None, :].tolist()).correct  # nested lists


def test_a_vector_written_as_a_column_is_still_diagnosed(bank):
    instance = make_instance(bank.get("three-layer-output-bias"), 5)
    wrong_axis = next(m for m in instance.mistakes if m.name == "summed over the wrong axis")
    assert np.ndim(wrong_axis.value) == 1  # a vector of the wrong length: the per-sample sums
    result = kinds.check(instance, array_text(np.asarray(wrong_axis.value)[:, None]))
    assert result.score == 0 and result.diagnosis.name == "summed over the wrong axis"
    flipped = kinds.check(instance, array_text(-instance.key[:, None]))
    assert flipped.score == 0 and flipped.diagnosis.name == "wrong sign"


def test_a_vector_of_the_wrong_length_says_what_it_expected(bank):
    instance = make_instance(bank.get("three-layer-output-bias"), 5)
    n = instance.key.size
    result = kinds.check(instance, array_text(np.ones((n + 1, 1))))
    assert result.score == 0
    assert f"expected a vector of {n} numbers (flat, a row or a column), got shape ({n + 1}, 1)" in result.feedback[0]
    assert n > 1
    square = kinds.check(instance, array_text(np.ones((n, n))))  # two dimensions of n are no vector of n
    assert square.score == 0 and "got shape" in square.feedback[0]


def test_the_chained_derivation_takes_its_vector_steps_as_columns(bank):
    """The prompt shows dL/dz2 and dL/dh as LaTeX columns: typed that way, they are right."""
    for seed in range(20):
        instance = make_instance(bank.get("three-layer-chain"), seed)
        answer = {step: array_text(value) for step, value in instance.key.items()}
        for step in ("dL/dz2", "dL/dh"):
            vector = instance.key[step]
            answer[step] = str(vector[:, None]) if seed % 2 else array_text(vector[None, :])
        result = kinds.check(instance, answer)
        assert result.correct, (seed, result.feedback)


def test_a_matrix_key_keeps_its_strict_shape(bank):
    instance = make_instance(bank.get("three-layer-dw2"), 2)  # dL/dW2 is 2 x 3
    flat = kinds.check(instance, array_text(instance.key.reshape(-1)))
    assert flat.score == 0 and "expected shape (2, 3), got (6,)" in flat.feedback[0]
    row = kinds.check(instance, array_text(instance.key.reshape(1, -1)))
    assert row.score == 0 and "expected shape (2, 3), got (1, 6)" in row.feedback[0]
    transposed = kinds.check(instance, str(instance.key.T))
    assert transposed.score == 0 and "expected shape (2, 3), got (3, 2)" in transposed.feedback[0]
    assert transposed.diagnosis.name == "transposed"


def test_a_one_by_n_matrix_key_is_a_matrix():
    """Only 1-D keys are vectors: a key written (1, n) in a bank asks for a row, and gets one."""
    instance = make_instance(static("matrix", answer=[[1.0, 2.0, 3.0]]), 0)
    assert kinds.check(instance, "[[1, 2, 3]]").correct
    column = kinds.check(instance, "[[1], [2], [3]]")
    assert column.score == 0 and column.diagnosis.name == "transposed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("array([0.1, 0.2])", [0.1, 0.2]),
        ("array([[0.1],\n       [0.2]])", [[0.1], [0.2]]),
        ("[[0.1]\n [0.2]]", [[0.1], [0.2]]),
        ("array([1., 2.], dtype=float32)", [1.0, 2.0]),
        ("np.array([1, 2])", [1.0, 2.0]),
        ("tensor([[1.],\n        [2.]], requires_grad=True)", [[1.0], [2.0]]),
        ("tensor([1., 2.], grad_fn=<ReluBackward0>)", [1.0, 2.0]),
    ],
)
def test_pasted_printouts_are_read(text, expected):
    assert parse_array(text).tolist() == expected


@pytest.mark.parametrize("text", ["array([1, 2]", "array([1, 2], x)", "tensor([1, 2]) + 1"])
def test_broken_printouts_are_still_refused(text):
    with pytest.raises(ParseError):
        parse_array(text)


# ----------------------------------------------------------------------------- integers


INTEGER_QUESTIONS = [
    "cnn-output-size",
    "cnn-param-count",
    "cost-checkpoint-count",
    "cost-linear-backward-macs",
    "training-accumulate",
    "var-updates-per-epoch",
]


def test_the_integer_questions_are_the_counts_and_sizes(bank):
    assert sorted(q.id for q in bank.questions if q.integer) == INTEGER_QUESTIONS
    assert not bank.get("chain-rule-central-difference").integer  # 12.01: a measurement, with a tolerance


@pytest.mark.parametrize("question_id", INTEGER_QUESTIONS)
def test_an_integer_answer_is_exact_and_its_neighbours_are_wrong(bank, question_id):
    for seed in range(40 if bank.get(question_id).generator else 1):
        instance = make_instance(bank.get(question_id), seed)
        key = instance.key
        assert isinstance(key, int)
        for right in (str(key), f"{key}.0", key, float(key)):
            assert kinds.check(instance, right).correct, (question_id, seed, right)
        for wrong in (key - 1, key + 1):
            result = kinds.check(instance, str(wrong))
            assert result.score == 0, (question_id, seed, wrong)
            assert f"{wrong} is not the answer (a count is graded exactly" in result.feedback[0]
        assert kinds.check(instance, f"{key}.5").score == 0


def test_a_count_may_be_written_with_digit_groups(bank):
    instance = make_instance(bank.get("cost-linear-backward-macs"), 0)
    assert kinds.check(instance, "16,777,216").correct and kinds.check(instance, "16_777_216").correct
    assert kinds.check(instance, "16,777,215").score == 0
    with pytest.raises(ParseError):  # not groups of three: refused, not misread
        kinds.check(instance, "16,77,7216")
    float_question = make_instance(bank.get("chain-rule-central-difference"), 0)
    with pytest.raises(ParseError):  # a decimal comma elsewhere is not read as a thousands separator
        kinds.check(float_question, "12,010")


def test_integer_mistakes_are_still_named_exactly(bank):
    instance = make_instance(bank.get("cnn-param-count"), 0)
    result = kinds.check(instance, "73,728")
    assert result.diagnosis.name == "forgot the bias"
    assert kinds.check(instance, "73729").diagnosis is None  # one off a mistake is not that mistake
    for seed in range(20):
        sized = make_instance(bank.get("cnn-output-size"), seed)
        plus_one = next(m for m in sized.mistakes if m.name == "forgot the +1")
        assert plus_one.value == sized.key - 1
        assert kinds.check(sized, str(plus_one.value)).diagnosis.name == "forgot the +1"


def test_integer_keys_are_shown_in_full(bank):
    from bpcore.quiz import render

    instance = make_instance(bank.get("cost-linear-backward-macs"), 0)
    assert render.solution(instance, "text") == "16777216"  # not 4 significant digits: 16780000
    assert render.number(0.123456) == "0.1235"


def test_exact_grading_lets_the_size_generator_use_its_large_images(bank):
    """At 1% tolerance a 224-pixel image's output (~110) was 'close' to its forget-the-+1 mistake, so such
    draws were thrown away as indistinguishable; graded exactly, every listed image size appears."""
    heights = {make_instance(bank.get("cnn-output-size"), seed).values["H"] // 10 * 10 for seed in range(100)}
    assert 220 in heights
