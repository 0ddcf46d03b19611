"""Shuffled choices: uniform, rebuilt from the logged seed, and graded by the letter the learner saw.

Keys are written against the file's order; each attempt shows the options in an order drawn from its
seed. These tests read the shown letters off the rendered prompt, as a learner would, so they do not
lean on the same mapping the checkers use.
"""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import chi2, chisquare

from bpcore.quiz import kinds, render
from bpcore.quiz.bank import Question
from bpcore.quiz.instance import LETTERS, make_instance
from bpcore.quiz.session import Session
from bpcore.quiz.validate import letter_references

SEEDS = range(2000)  # fixed: the statistics below are deterministic, not a fresh sample per run
P_MIN = 1e-4  # with ~90 questions a truly uniform shuffle fails one of them with probability ~1%; once, forever


def choice_questions(bank, *kinds_):
    return [q for q in bank.questions if q.kind in kinds_]


def options_of(q: Question) -> list[str]:
    return q.spec["fixes"] if q.kind == "bughunt" else q.spec["choices"]


def letters_in_prompt(instance) -> dict[str, str]:
    """{option text: the letter it is shown with}, read from the Markdown prompt."""
    text = render.prompt(instance, "latex")
    shown = {}
    for option in options_of(instance.question):
        shown_as = f"`{option}`" if instance.kind == "bughunt" else option
        found = re.findall(rf"^\* \(([a-z])\) {re.escape(shown_as)}$", text, re.MULTILINE)
        assert len(found) == 1, (instance.question.id, option, text)
        shown[option] = found[0]
    return shown


def test_every_choice_question_is_shuffled(bank):
    assert len(choice_questions(bank, "single")) == 73 and len(choice_questions(bank, "multi")) == 11
    q = bank.get("chain-rule-composite")
    orders = {tuple(make_instance(q, seed).display) for seed in range(50)}
    assert len(orders) > 10  # 4 choices: 24 orders, most of them seen in 50 attempts


@pytest.mark.parametrize("kind", ["single", "multi", "bughunt"])
def test_the_right_option_lands_on_every_position_equally_often(bank, kind):
    """Chi-square of the key's shown position over 2,000 seeds, for each question of the kind."""
    failures = []
    for q in choice_questions(bank, kind):
        n = len(options_of(q))
        key = {"single": lambda i: i.key, "multi": lambda i: i.key[0], "bughunt": lambda i: i.key[1]}[kind]
        counts = [0] * n
        for seed in SEEDS:
            instance = make_instance(q, seed)
            counts[instance.display.index(key(instance))] += 1
        p = chisquare(counts).pvalue
        if p < P_MIN:
            failures.append((q.id, counts, p))
    assert not failures


def test_every_option_visits_every_position_uniformly(bank):
    """The whole option-by-position table of the question with most choices, not only where the key goes."""
    q = max(choice_questions(bank, "single", "multi"), key=lambda q: len(q.spec["choices"]))
    n = len(q.spec["choices"])
    table = np.zeros((n, n))
    for seed in SEEDS:
        for position, option in enumerate(make_instance(q, seed).display):
            table[option, position] += 1
    assert (table.sum(axis=0) == len(SEEDS)).all() and (table.sum(axis=1) == len(SEEDS)).all()
    expected = len(SEEDS) / n
    statistic = float(((table - expected) ** 2 / expected).sum())
    assert chi2.sf(statistic, (n - 1) ** 2) > P_MIN  # both margins are fixed: (n - 1)^2 degrees of freedom


def test_the_order_is_rebuilt_from_the_seed_in_a_fresh_process(bank):
    """What a logged seed shows does not depend on the process (hash randomisation, import order)."""
    ids = ["chain-rule-composite", "chain-rule-paths-add", "three-layer-bughunt-sigmoid"]
    seeds = [0, 1, 12345, 2**31 - 1]
    here = {(i, s): make_instance(bank.get(i), s).display for i in ids for s in seeds}
    code = (
        "import json, sys; from bpcore.quiz.bank import load_banks; from bpcore.quiz.instance import make_instance; "
        f"b = load_banks(); print(json.dumps([make_instance(b.get(i), s).display for i in {ids!r} for s in {seeds!r}]))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [here[(i, s)] for i in ids for s in seeds]


def test_the_shown_letter_of_the_right_choice_scores_1_for_every_seed(bank):
    for q in choice_questions(bank, "single"):
        right = q.spec["choices"][LETTERS.index(q.spec["answer"])]
        for seed in range(0, 2000, 7):
            instance = make_instance(q, seed)
            shown = letters_in_prompt(instance)
            result = kinds.check(instance, shown[right])
            assert result.score == 1, (q.id, seed)
            assert result.recorded == {"letter": shown[right], "option": LETTERS.index(q.spec["answer"])}
            wrong = next(letter for text, letter in shown.items() if text != right)
            assert kinds.check(instance, wrong).score == 0, (q.id, seed)


def test_the_shown_letters_of_the_right_choices_score_1_for_every_seed(bank):
    for q in choice_questions(bank, "multi"):
        right = [q.spec["choices"][LETTERS.index(a)] for a in q.spec["answers"]]
        for seed in range(0, 2000, 7):
            instance = make_instance(q, seed)
            shown = letters_in_prompt(instance)
            assert kinds.check(instance, " ".join(shown[c] for c in right)).score == 1, (q.id, seed)
            if len(right) > 1:
                assert kinds.check(instance, shown[right[0]]).score == pytest.approx(1 / len(right))


def test_the_shown_letter_of_the_right_fix_scores_1_for_every_seed(bank):
    for q in choice_questions(bank, "bughunt"):
        right = q.spec["fixes"][LETTERS.index(q.spec["fix"])]
        for seed in range(0, 2000, 97):
            instance = make_instance(q, seed)
            shown = letters_in_prompt(instance)
            assert kinds.check(instance, {"line": instance.key[0], "fix": shown[right]}).score == 1, (q.id, seed)


def test_feedback_and_solution_speak_of_the_letters_seen(bank):
    q = bank.get("chain-rule-composite")
    for seed in range(20):
        instance = make_instance(q, seed)
        shown = letters_in_prompt(instance)
        for index, text in enumerate(q.spec["choices"]):
            result = kinds.check(instance, shown[text])
            assert result.feedback[0].startswith(f"({shown[text]}) is ")
            assert result.feedback[1] == q.spec["why"][index]  # why *that* option, wherever it was shown
        right = q.spec["choices"][instance.key]
        assert render.solution(instance, "latex") == f"({shown[right]}) {right}"


def test_multi_feedback_names_wrong_picks_by_their_shown_letters(bank):
    q = bank.get("chain-rule-paths-add")
    wrong_text = q.spec["choices"][1]  # "b" in the file is not one of the answers
    for seed in range(20):
        instance = make_instance(q, seed)
        shown = letters_in_prompt(instance)
        result = kinds.check(instance, shown[wrong_text])
        assert f"({shown[wrong_text]}) should not be" in result.feedback[0]
        assert f"({shown[wrong_text]}) {q.spec['why'][1]}" in result.feedback


def test_the_stored_attempt_maps_back_to_the_file_and_to_what_was_seen(bank, store):
    q = bank.get("chain-rule-composite")
    session = Session(store, "quiz", seed=5)
    for _ in range(6):
        instance = session.instance(q)
        session.grade(instance, "c")
    for attempt in store.attempts():
        rebuilt = make_instance(q, attempt["seed"])  # from the log alone
        shown = letters_in_prompt(rebuilt)
        answer = attempt["answer"]
        assert answer["letter"] == "c"
        assert shown[q.spec["choices"][answer["option"]]] == "c"  # the option stored is the one shown as (c)
        assert attempt["score"] == (answer["option"] == LETTERS.index(q.spec["answer"]))


def test_the_widget_lists_bughunt_fixes_in_the_shown_order(bank, store):
    from bpcore.quiz.widget import QuizWidget

    w = QuizWidget([bank.get("three-layer-bughunt-sigmoid")], store=store, seed=3)
    shown = letters_in_prompt(w.instance)
    labels = dict(w.fields["fix"].options)  # label -> letter
    for text, letter in shown.items():
        assert labels[f"({letter}) {text}"] == letter
    right = bank.get("three-layer-bughunt-sigmoid").spec["fixes"][0]
    w.fields["line"].value, w.fields["fix"].value = 9, shown[right]
    w.submit_button.click()
    assert "Right: 1.00" in w.feedback.value


def question(**fields):
    spec = {"choices": ["one", "two", "three"], "answer": "a", **fields.pop("spec", {})}
    return Question("q", "t", "basic", "single", fields.get("prompt", "p"), fields.get("hints", ["h"]),
                    fields.get("explanation", "e"), "notebooks/x.ipynb", [], spec)  # fmt: skip


@pytest.mark.parametrize(
    "fields",
    [
        {"explanation": "Unlike (b), this one keeps the slope."},
        {"hints": ["Option c is a trap."]},
        {"spec": {"why": ["Right.", "See choice (a).", "No."]}},
        {"explanation": "Answer b fails because the slope is lost."},
    ],
)
def test_validate_flags_texts_that_name_an_option_by_letter(fields):
    assert letter_references(question(**fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"explanation": "The slope $\\sigma'(a)$ at a point; `f(a)` in code; d) is not a letter reference."},
        {"hints": ["Think of (x), a letter beyond the three options."]},
        {"explanation": "A bias (a vector) and an answer about it."},
    ],
)
def test_validate_leaves_maths_code_and_prose_alone(fields):
    assert letter_references(question(**fields)) == []


def test_validate_notes_when_the_right_choice_is_usually_the_longest(write_bank, tmp_path):
    """Shuffling hides the key's letter, not its length: the authoring check says so when the tell is there."""
    from bpcore.quiz.validate import validate

    def bank(choices):
        return "\n".join(
            [
                'topic = "demo"',
                *(
                    f'[[question]]\nid = "q{i}"\nlevel = "basic"\nkind = "single"\nprompt = "p"\n'
                    f'choices = {choices!r}\nanswer = "a"\nhints = ["h"]\nexplanation = "e"\n'
                    'notebook = "notebooks/x.ipynb"\ntags = []\n'
                    for i in range(3)
                ),
            ]
        ).replace("'", '"')

    tell = validate(write_bank("demo.toml", bank(["the long right one", "short", "brief"])), seeds=1, root=tmp_path)
    assert tell.questions == 3
    assert any("in 3 of 3 single-choice questions the right choice is the longest" in n for n in tell.notes)
    other = tmp_path / "fair"
    other.mkdir()
    (other / "demo.toml").write_text(bank(["right", "a longer wrong one", "wrong"]))
    fair = validate(other, seeds=1, root=tmp_path)
    assert fair.questions == 3 and not any("longest" in n for n in fair.notes)
