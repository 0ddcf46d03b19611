"""Numbers are graded to the significant digits the question asks for, every entry on its own digits.

The rule is stated once, in bpcore.quiz.diagnose (above DEFAULT_DIGITS); a question's digits come from its
prompt ("3 significant digits") or its ``digits`` field (Question.digits). Here:

* a slip of one unit in the last asked digit fails for keys of every leading digits 100..999 (the old 0.8%
  relative tolerance let it through from about 125 up);
* every honest rounding of a key passes (to the asked digits, more, in full, both neighbours at an exact tie);
* in an array, a small entry with the wrong sign, or 0, fails however small it is against the largest;
* every numeric and matrix question of the bank, over many seeds: the correct answers pass (generator_survey),
  and each nonzero entry off by one unit in its last asked digit, of the wrong sign, or 0, fails (in a chained
  derivation, the slip away from the key: a step near a rounding boundary also takes the rounding of what the
  earlier steps imply through the values as shown);
* the batchnorm generators over 10,000 seeds: a correct answer always passes, a wrong sign in the smallest
  entry always fails.
"""

import numpy as np
import pytest
from generator_survey import built, rejected_correct_answers

from bpcore.quiz import kinds, render
from bpcore.quiz.bank import Question, load_banks
from bpcore.quiz.diagnose import close, round_to_digits
from bpcore.quiz.instance import make_instance

BANK_SEEDS = 60
QUESTIONS = [q for q in load_banks().questions if q.kind in ("numeric", "matrix") and not q.integer]


def unit(x: float, digits: int) -> float:
    """One unit in the ``digits``-th significant digit of x."""
    return 10.0 ** (np.floor(np.log10(abs(x))) - digits + 1)


def _numeric(answer, digits: int = 3):
    q = Question(
        id="t", topic="t", level="basic", kind="numeric", prompt=f"({digits} significant digits.)", hints=["h"],
        explanation="e", notebook="n", tags=[], spec={"answer": answer},
    )  # fmt: skip
    return make_instance(q, 0)


@pytest.mark.parametrize("exponent", [-5, -2, 0, 3])
def test_a_slip_in_the_last_asked_digit_fails_for_every_leading_digits(exponent):
    accepted = []
    for lead in range(100, 1000):
        key = (lead + 0.3) * 10.0 ** (exponent - 2)  # lead.3 units: its 3-digit rounding is lead
        rounded = lead * 10.0 ** (exponent - 2)
        instance = _numeric(key)
        if not kinds.check(instance, rounded).correct:
            accepted.append(f"{key:.6g}: its rounding {rounded:.6g} is graded wrong")
        for slip in (rounded + unit(key, 3), rounded - unit(key, 3)):
            if kinds.check(instance, f"{slip:.2e}").correct:
                accepted.append(f"{key:.6g}: the slip {slip:.3g} is graded right")
    assert accepted == [], f"{len(accepted)} wrong grades, e.g. {accepted[:5]}"


def test_the_examples_of_the_rule():
    instance = _numeric(0.78645)
    for right in ("0.786", "0.7865", "0.78645", "0.7864", "0.786450001"):
        assert kinds.check(instance, right).correct, f"{right} for 0.78645 should be right"
    for wrong in ("0.79", "0.787", "0.785", "0.8", "0", "-0.786"):
        assert not kinds.check(instance, wrong).correct, f"{wrong} for 0.78645 should be wrong"
    tie = _numeric(0.7865)  # a float just below the decimal 0.7865: both neighbours are honest roundings
    assert kinds.check(tie, "0.786").correct and kinds.check(tie, "0.787").correct
    past = _numeric(0.78650001)  # past the boundary: 0.787 is the one honest rounding
    assert kinds.check(past, "0.787").correct and not kinds.check(past, "0.786").correct
    exact = _numeric(6.0)
    assert kinds.check(exact, "6").correct and kinds.check(exact, "6.00").correct
    assert not kinds.check(exact, "6.01").correct
    assert kinds.check(_numeric(0.78002), "0.78").correct  # 0.780 with its trailing zero left off
    assert not kinds.check(_numeric(12.01, 4), "12").correct and kinds.check(_numeric(12.01, 4), "12.01").correct


def _failing(answers, keys, digits: int) -> list[str]:
    """The entries of ``answers`` graded wrong against ``keys``, each judged alone."""
    pairs = zip(answers.tolist(), keys.tolist(), strict=True)
    return [f"{k!r} answered as {a!r}" for a, k in pairs if not close(a, k, digits)]


def test_every_honest_rounding_passes():
    rng = np.random.default_rng(0)
    keys = np.concatenate([rng.uniform(1, 10, 3000) * 10.0 ** rng.integers(-8, 6, 3000), [0.78645, 1.005, 9.995]])
    keys *= rng.choice([-1, 1], keys.size)
    assert np.all(keys != 0)  # so each entry of the arrays below is judged as that key alone would be
    for digits in (3, 4):
        for n in range(digits, 16):  # all keys at once: every entry is graded on its own digits
            rounded = round_to_digits(keys, n)
            assert close(rounded, keys, digits), f"to {n} digits, at {digits}: {_failing(rounded, keys, digits)}"
        shortest = np.array([float(f"{key:.{digits}g}") for key in keys])
        assert close(shortest, keys, digits), f"to {digits} digits, %g: {_failing(shortest, keys, digits)}"


def test_a_small_entry_of_the_wrong_sign_or_zero_fails():
    key = np.array([[2.0, 0.0003141], [-1.5, -0.00002718]])
    assert close(round_to_digits(key, 3), key, 3)
    for index in [(0, 1), (1, 1)]:
        for bent in (-key[index], 0.0, key[index] * 1.01):
            answer = key.copy()
            answer[index] = bent
            assert not close(answer, key, 3), f"entry {index} = {key[index]} answered as {bent} passes"


def _steps(instance):
    if isinstance(instance.key, dict):
        return [(name, np.asarray(value, dtype=np.float64)) for name, value in instance.key.items()]
    return [(None, np.asarray(instance.key, dtype=np.float64))]


def _answer(instance, step, value):
    if step is None:
        return float(value) if instance.kind == "numeric" else value
    return {**{k: np.asarray(v, dtype=np.float64) for k, v in instance.key.items()}, step: value}


def _wrong_answers_passing(q, instances) -> list[str]:
    """``instances``: the (seed, instance) pairs of generator_survey.built."""
    found, n = [], q.digits
    for seed, instance in instances:
        for step, key in _steps(instance):
            where = f"{q.id} seed {seed}" + (f" step {step}" if step else "")
            rounded = round_to_digits(key, n)
            for index in zip(*np.nonzero(key), strict=True) if key.ndim else ([()] if key != 0 else []):
                k = float(key[index])
                for wrong, what in (
                    (float(rounded[index]) + unit(k, n), f"one unit up in digit {n}"),
                    (float(rounded[index]) - unit(k, n), f"one unit down in digit {n}"),
                    (-k, "the wrong sign"),
                    (0.0, "0"),
                ):
                    bent = rounded.copy()
                    bent[index] = wrong
                    if close(wrong, k, n):  # the rounding sat on a tie: the slip is the other honest rounding
                        continue
                    if step is not None and abs(wrong - k) < unit(k, n) and wrong != 0:
                        # a step also takes what the earlier answers imply through h as the prompt shows it (4
                        # digits), which can move a key that sits near a rounding boundary across it: there the
                        # slip towards the key is an honest rounding of that; the slip away from it is tested
                        continue
                    if kinds.check(instance, _answer(instance, step, bent)).correct:
                        found.append(f"{where}: entry {index} = {k:.6g} answered as {wrong:.6g} ({what}) passes")
        if len(found) > 5:
            break
    return found


@pytest.mark.parametrize("q", QUESTIONS, ids=lambda q: q.id)
def test_every_question_grades_to_its_digits_entry_by_entry(q):
    instances = built(q, range(BANK_SEEDS if q.generator else 1))
    problems = rejected_correct_answers(q, instances) + _wrong_answers_passing(q, instances)
    assert problems == [], f"{q.id} ({q.digits} digits):\n" + "\n".join(problems)


# 2,000 full builds each (about a minute): a 10,000-seed survey took 4.6 minutes, half the suite's budget
BATCHNORM_SEEDS = 2_000


@pytest.mark.parametrize("qid", ["norm-bn-backward", "norm-bn-forward"])
def test_batchnorm_over_2000_seeds_right_answers_pass_and_a_small_sign_slip_fails(qid):
    q = load_banks().get(qid)
    instances = built(q, range(BATCHNORM_SEEDS))  # the full builds are most of the cost: made once for both checks
    assert rejected_correct_answers(q, instances) == []
    accepted = []
    for seed, instance in instances:
        key = np.asarray(instance.key)
        smallest = np.unravel_index(int(np.argmin(np.abs(key))), key.shape)
        if key[smallest] == 0:
            continue
        bent = round_to_digits(key, 3)
        bent[smallest] = -bent[smallest]
        if kinds.check(instance, bent).correct:
            accepted.append((seed, float(key[smallest]), float(np.max(np.abs(key)))))
    assert accepted == [], f"{qid}: the smallest entry with its sign flipped passes for {len(accepted)}: {accepted[:5]}"


def _shown(x):
    """``x`` as the prompt shows it (bpcore.quiz.render.number)."""
    return np.vectorize(lambda v: float(render.number(v)))(np.asarray(x, dtype=np.float64))


# a prompt that shows a rounded value ("tanh(z) ≈ 0.9633"), and the answer worked from what it shows
WORKED_FROM_SHOWN = {
    "act-tanh-slope": lambda v: 1 - _shown(v["tanh"]) ** 2,
    "chain-rule-sigmoid-slope": lambda v: _shown(v["sigma"]) * (1 - _shown(v["sigma"])),
    "gen-gan-logit": lambda v: _shown(v["sigma"]) - 1,
    "gen-reinforce": lambda v: -v["R"] * (np.eye(3)[v["a"]] - _shown(v["pi"])),
    "loss-bce-logits": lambda v: (_shown(v["S"]) - v["T"]) / v["count"],
    "three-layer-softmax-ce": lambda v: (_shown(v["P"]) - v["Y"]) / v["N"],
    "rnn-hidden-grad": lambda v: (
        v["U"].T @ (v["V"].T @ (v["V"] @ _shown(v["h2"]) - v["y"]) * (1 - _shown(v["h2"]) ** 2))
    ),
    "ve-sigmoid-chain": lambda v: np.prod(v["ws"] * _shown(v["hs"]) * (1 - _shown(v["hs"]))),
    "three-layer-relu-dw1": lambda v: np.outer((v["W2"].T @ (_shown(v["y"]) - v["t"])) * (_shown(v["z1"]) > 0), v["x"]),
    "ve-clip-norm": lambda v: np.concatenate([v["ga"], v["gb"]]) * min(1.0, v["max_norm"] / float(_shown(v["norm"]))),
}


@pytest.mark.parametrize("question_id", sorted(WORKED_FROM_SHOWN))
def test_an_answer_worked_from_the_shown_values_passes(question_id):
    question = next(q for q in QUESTIONS if q.id == question_id)
    wrong = []
    for seed in range(200):
        instance = make_instance(question, seed)
        typed = render.array_text(round_to_digits(WORKED_FROM_SHOWN[question_id](instance.values), question.digits))
        if not kinds.check(instance, typed).correct:
            wrong.append(f"seed {seed}: {typed} graded wrong against {instance.key}")
    assert wrong == [], f"{len(wrong)} of 200 answers worked from the prompt's shown values fail, e.g. {wrong[:3]}"
