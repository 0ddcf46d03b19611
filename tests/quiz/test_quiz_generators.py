"""Generators, beyond the targets of issue 13 (which test_quiz_bank_content.py asserts with generator_survey):
the conv sizes, answers worked from shown values, no float residue shown, typed mistakes graded wrong."""

import numpy as np
import pytest
from generator_survey import FULL_SEEDS, survey

from bpcore.quiz.generators import GENERATORS


def test_conv_output_size_draws_every_allowed_problem():
    """The old generator drew 9 sizes (and could fail); it now draws from thousands, nearly all over 10,000 seeds."""
    from bpcore.quiz.generators import _conv_size_problems

    assert len(_conv_size_problems()) > 2000
    assert survey("conv_output_size")["distinct"] > 2000


@pytest.mark.parametrize("name", sorted(n for n, g in GENERATORS.items() if g.shown is not None))
def test_an_answer_worked_from_the_shown_values_is_right(name):
    """Where terms can cancel, the answer a learner works out from the prompt's 4-digit values, kept in full or
    rounded to 3 or 4 significant digits, is right entry by entry (draws where it could not be are redrawn)."""
    from bpcore.quiz.generators import worked_from_shown_is_right

    generator = GENERATORS[name]
    for seed in range(FULL_SEEDS):
        problem = generator(seed)
        worked = generator.shown(problem.values)
        assert worked_from_shown_is_right(worked, problem.key, 3), f"{name}: seed {seed}: {worked} for {problem.key}"


@pytest.mark.parametrize("name", ["tanh_batch_db1", "batchnorm_backward", "rnn_hidden_grad"])
def test_shown_values_carry_no_float_residue_of_an_exact_zero(name):
    """A forward value that is exactly 0 (tanh(0.18 - 0.08 - 0.1)) is shown as 0, not as -0.00000000000000002776:
    tanh_batch_db1 seed 7, batchnorm_backward seed 39 and rnn_hidden_grad seed 122 showed such residue."""
    from bpcore.quiz.render import number

    for seed in range(130):
        for p, value in GENERATORS[name](seed).values.items():
            array = np.asarray(value)
            if array.dtype.kind == "f" and array.size:
                shown = [number(x) for x in array.ravel()]
                assert not any(s.lstrip("-").startswith("0.00000000") for s in shown), (
                    f"{name}: seed {seed}: {p} is shown as {shown}"
                )


@pytest.mark.parametrize(("question", "seed"), [("rnn-hidden-grad", 193), ("ve-sigmoid-chain", 199)])
def test_a_known_mistake_typed_to_3_significant_digits_is_graded_wrong(question, seed):
    """A mistake just over the tolerance away from the key (0.3815 against 0.3783) comes within it once the
    learner who made it rounds it to the 3 digits the prompt asks for (0.381): such draws are redrawn."""
    from bpcore.quiz import kinds, render
    from bpcore.quiz.bank import load_banks
    from bpcore.quiz.instance import make_instance

    q = next(q for q in load_banks(None).questions if q.id == question)
    instance = make_instance(q, seed)
    for mistake in instance.mistakes:
        typed = np.vectorize(lambda x: float(f"{x:.2e}"))(np.asarray(mistake.value, dtype=np.float64))
        result = kinds.check(instance, render.array_text(typed))
        assert result.score == 0, f"{question}: seed {seed}: {mistake.name} typed as {typed} is graded right"


def _mistake(problem, step, name):
    return next(m.value for m in problem.mistakes[step] if m.name == name)


@pytest.mark.parametrize("seed", range(20))
def test_vae_kl_mistakes_are_the_gradients_for_the_wrong_parameter(seed):
    """The KL question's 'with respect to sigma' and 'with respect to the variance' answers are what the engine gives
    when the KL is written in sigma or sigma^2 and differentiated there; the key is 0 at the prior and mu otherwise."""
    from bpcore.tensor import Tensor

    problem = GENERATORS["vae_kl_grad"](seed)
    mu, logvar = problem.values["mu"], problem.values["logvar"]
    np.testing.assert_allclose(problem.key["dKL/dmu"], mu, rtol=1e-12)
    for name, parameter in (
        ("differentiated with respect to sigma", np.exp(0.5 * logvar)),
        ("differentiated with respect to the variance", np.exp(logvar)),
    ):
        leaf = Tensor(parameter.copy(), requires_grad=True)
        var = leaf**2 if "sigma" in name else leaf
        (0.5 * (var - 1 - var.log())).sum().backward()
        np.testing.assert_allclose(_mistake(problem, "dKL/dlogvar", name), leaf.grad, rtol=1e-12)
    # and neither is the key: the chain rule through sigma^2 = exp(logvar) is what they skip
    np.testing.assert_allclose(problem.key["dKL/dlogvar"], 0.5 * (np.exp(logvar) - 1), rtol=1e-12)


@pytest.mark.parametrize("seed", range(20))
def test_vae_reparam_mistakes_are_real_derivatives(seed):
    """'with respect to sigma' is the engine's dL/dsigma for z = mu + sigma eps; the key is that times
    dsigma/dlogvar = sigma / 2."""
    from bpcore.tensor import Tensor

    problem = GENERATORS["vae_reparam_grad"](seed)
    v = problem.values
    sigma = Tensor(np.exp(0.5 * v["logvar"]), requires_grad=True)
    (v["mu"] + sigma * v["eps"]).backward(v["g"])
    np.testing.assert_allclose(_mistake(problem, "dL/dlogvar", "differentiated with respect to sigma"), sigma.grad)
    np.testing.assert_allclose(problem.key["dL/dlogvar"], sigma.grad * 0.5 * sigma.data, rtol=1e-12)
    np.testing.assert_allclose(problem.key["z"], v["mu"] + sigma.data * v["eps"], rtol=1e-12)
    np.testing.assert_array_equal(problem.key["dL/dmu"], v["g"])
