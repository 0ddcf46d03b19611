"""The sequence experiments of notebook 6: their headline claims, asserted."""

import numpy as np

from bpcore import sequence_tasks as st


def test_lstm_beats_a_vanilla_rnn_on_the_adding_problem():
    lstm = st.train_adding("lstm", length=20, updates=500)
    rnn = st.train_adding("rnn", length=20, updates=500)
    assert 0.15 < lstm.baseline < 0.2  # always answering 1: about 1/6
    assert lstm.test_curve[-1] < 0.01  # the LSTM solves it
    assert rnn.test_curve[-1] > 2 * lstm.test_curve[-1]  # the RNN, same budget, lags behind


def test_forecaster_beats_the_seasonal_naive_rule():
    run = st.train_forecaster("gru", epochs=30)
    assert run.test_curve[-1] < 0.75 * run.baseline
    assert run.test_curve[-1] > 0.03  # and cannot beat the noise (variance 0.04) by much


def test_character_model_learns_and_writes_from_its_alphabet():
    run = st.train_char_model(epochs=3)
    assert run.loss[0] > 3.5 and np.mean(run.loss[-5:]) < 2.6
    for sample in run.samples.values():
        assert sample.startswith("MENENIUS:\n") and set(sample) <= set(run.text.alphabet)
