"""The question bank's answer keys, checked harder than `bpcore validate` does.

* every generator's key agrees with its independent check over 200 seeds (validate runs 50);
* every code reference accepts its correct solution and rejects its known-wrong one over many seeds;
* every bug-hunt specimen's fixed version matches the engine and its buggy version does not, over 50 inputs;
* the bank meets the content targets of issue 7;
* every generator meets the targets of issue 13: over 10,000 seeds it never fails, draws at least 50 distinct
  problems (or all that exist), covers every declared parameter range, and rarely needs a redraw (the survey
  helpers are in generator_survey.py, shared with test_quiz_generators.py and test_quiz_tolerances.py).
"""

from collections import Counter

import numpy as np
import pytest
from generator_survey import FULL_SEEDS, MAX_REDRAW_RATE, SEEDS, redraw_rate, survey

from bpcore.quiz import bughunts, functions
from bpcore.quiz.generators import GENERATORS


def _close(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return np.shape(a) == np.shape(b) and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9))


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_key_agrees_with_independent_check_over_200_seeds(name):
    generator = GENERATORS[name]
    disagree = [seed for seed in range(200) if not _close(generator(seed).key, generator.check(generator(seed).values))]
    assert disagree == [], f"{name}: key and independent check disagree for seeds {disagree[:10]}"


@pytest.mark.parametrize("name", sorted(functions.REFERENCES))
def test_code_reference_accepts_solution_and_rejects_wrong_one(name):
    reference = functions.REFERENCES[name]
    for seed in range(20):
        assert functions.check_function(reference, reference.solution, seed)[0] == reference.trials, (name, seed)
        assert functions.check_function(reference, reference.wrong, seed)[0] < reference.trials, (name, seed)


@pytest.mark.parametrize("name", sorted(bughunts.SPECIMENS))
def test_bughunt_fixed_matches_engine_and_buggy_does_not(name):
    specimen = bughunts.SPECIMENS[name]
    assert len(specimen.changed) == 1
    for seed in range(50):
        values = specimen.inputs(np.random.default_rng(seed))
        assert specimen.agrees(specimen.fixed, values), (name, seed)
        assert not specimen.agrees(specimen.buggy, values), (name, seed)


def test_engine_formula_references_match_autodiff():
    """The values-mode references that state a formula agree with the engine's autodiff of the op itself."""
    from bpcore.nn import functional as F
    from bpcore.tensor import Tensor

    rng = np.random.default_rng(0)
    for _ in range(20):
        z, y = functions._onehot_inputs(rng)
        leaf = Tensor(z, requires_grad=True)
        F.cross_entropy(leaf, y.argmax(axis=1)).backward()
        assert np.allclose(functions._softmax_ce_engine(Tensor(z), Tensor(y)).data, leaf.grad)
        upstream, _, p = functions._dropout_inputs(rng)
        x = Tensor(rng.uniform(0.5, 1.5, upstream.shape), requires_grad=True)  # nonzero: the mask is visible
        y = F.dropout(x, float(p), rng=np.random.default_rng(1))
        y.backward(upstream)
        mask = (y.data != 0).astype(np.float64)
        engine = functions._dropout_engine(Tensor(upstream), Tensor(mask), Tensor(p)).data
        assert np.allclose(engine, x.grad)
        assert np.allclose(functions._dropout_solution(upstream, mask, float(p)), x.grad)


def test_bank_meets_the_content_targets(bank):
    levels = Counter(q.level for q in bank.questions)
    kinds = Counter(q.kind for q in bank.questions)
    assert len(bank.questions) >= 150
    assert levels["basic"] >= 40 and levels["intermediate"] >= 60 and levels["advanced"] >= 30
    assert sum(q.generator is not None for q in bank.questions) >= 25
    assert kinds["code"] >= 10 and kinds["bughunt"] >= 6 and kinds["flashcard"] >= 30
    assert len({q.generator for q in bank.questions if q.generator}) >= 25
    assert set(functions.REFERENCES) <= {q.spec.get("reference") for q in bank.questions}
    assert set(bughunts.SPECIMENS) <= {q.spec.get("specimen") for q in bank.questions}


def _length_rank_of_key(question) -> int:
    """1 when the right choice is the longest (ties count as longest), 2 for the second longest, and so on."""
    choices = question.spec["choices"]
    key = len(choices["abcdefghijklmnopqrstuvwxyz".index(question.spec["answer"])])
    return 1 + sum(len(choice) > key for choice in choices)


def test_no_choice_length_gives_the_answer_away(bank):
    # Choices are shuffled when shown, so position tells nothing (tests/quiz/test_quiz_shuffle.py); length is
    # the tell left. Picking the longest choice must not pay, nor picking any other length rank.
    singles = [q for q in bank.questions if q.kind == "single"]
    ranks = Counter(_length_rank_of_key(q) for q in singles)
    longest = [q.id for q in singles if _length_rank_of_key(q) == 1]
    assert len(singles) >= 60
    assert len(longest) <= 0.35 * len(singles), f"the key is the longest choice in {len(longest)}: {longest}"
    for rank, count in sorted(ranks.items()):
        assert count <= 0.40 * len(singles), f"the key is length rank {rank} in {count} of {len(singles)}: {ranks}"


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_never_fails_to_draw_over_10000_seeds(name):
    failures = survey(name)["failures"]
    assert failures == [], f"{name}: {len(failures)} of {SEEDS} seeds failed, e.g. {failures[:3]}"


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_draws_many_distinct_problems(name):
    generator, count = GENERATORS[name], survey(name)["distinct"]
    if generator.total is None:
        assert count >= 50, f"{name}: expected at least 50 distinct problems over {SEEDS} seeds, got {count}"
    else:
        assert count == generator.total, f"{name}: its docstring says {generator.total} problems exist, drew {count}"


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_covers_every_parameter_range(name):
    generator, found = GENERATORS[name], survey(name)
    assert found["names"] == {tuple(sorted(generator.ranges))}, (
        f"{name}: expected to yield the parameters {sorted(generator.ranges)}, yielded {sorted(found['names'])}"
    )
    for p, declared in generator.ranges.items():
        if isinstance(declared, set):
            assert found["seen"][p] == {float(v) for v in declared}, (
                f"{name}: parameter {p}: expected every one of {sorted(declared)}, drew {sorted(found['seen'][p])}"
            )
        else:
            reached = (found["low"][p], found["high"][p])
            assert np.allclose(reached, declared), (
                f"{name}: parameter {p}: expected the range {declared}, drew {reached}"
            )


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_generator_problems_rarely_need_a_redraw(name):
    """The full problem for a sample of seeds: built, its parameters are the survey's unless it was redrawn."""
    rate, redraws = redraw_rate(name)
    assert rate <= MAX_REDRAW_RATE, (
        f"{name}: the distinguishability check rejected {redraws} of {FULL_SEEDS + redraws} draws "
        f"({rate:.0%}); expected at most {MAX_REDRAW_RATE:.0%}"
    )
