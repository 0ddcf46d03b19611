"""The labs' training runs keep BLAS on one thread while they run, and give it back afterwards."""

import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from bpcore.labs import (
    alternatives,
    attention,
    beyond,
    cost,
    one_blas_thread,
    pitfalls,
    through_time,
    vanishing,
    variants,
)


def blas_threads() -> list[int]:
    return [library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"]


def test_one_blas_thread_limits_blas_inside_and_restores_it_after():
    if not blas_threads():
        pytest.fail("expected numpy to load a BLAS library threadpoolctl can see; threadpool_info() lists none")
    with threadpool_limits(limits=2, user_api="blas"):
        inside = one_blas_thread(blas_threads)()
        after = blas_threads()
    assert inside == [1] * len(inside), f"inside: expected one BLAS thread per library, got {inside}"
    assert after == [2] * len(after), f"after: expected the 2 threads set outside back, got {after}"


def test_one_blas_thread_restores_the_threads_when_the_function_raises():
    def fails():
        raise RuntimeError("planted")

    with threadpool_limits(limits=2, user_api="blas"):
        with pytest.raises(RuntimeError, match="planted"):
            one_blas_thread(fails)()
        assert blas_threads() == [2] * len(blas_threads())


@pytest.mark.parametrize(
    "function",
    [
        variants.compare_variants,
        variants.gradient_noise,
        vanishing.depth_profile,
        pitfalls.learning_rate_sweep,
        pitfalls.overfitting_study,
        pitfalls.dead_relu_study,
        through_time.train_adding,
        through_time.train_forecaster,
        through_time.train_char_model,
        alternatives.compare_all,
        beyond.cnn_versus_mlp,
        beyond.train_autoencoder,
        beyond.train_gan,
        beyond.train_reinforce,
        beyond.train_vae,
        attention.train_lm,
        attention.depth_profile,
        attention.weight_gradient_profile,
        attention.sublayer_output_scale,
        attention.scale_study,
        beyond.compare_estimators,
        beyond.estimators_by_sigma,
        cost.checkpoint_sweep,
    ],
    ids=lambda f: f.__name__,
)
def test_the_notebooks_training_runs_are_on_one_blas_thread(function):
    assert getattr(function, "__wrapped__", None) is not None, f"{function.__name__} is not wrapped by one_blas_thread"
    assert function.__code__ is one_blas_thread(lambda: None).__code__, f"{function.__name__}: another wrapper"
