"""Bad arguments to the engine fail at the call that made them, naming what was expected and what arrived.

Each case was silent (``bp.tensor(None)`` made nan; ``Adam(betas=(1.5, 0.9))`` trained on into nan) or
failed far away with numpy's words (``'Linear' object is not iterable``, ``zero-size array to reduction``).
PyTorch raises for each of these too, except where noted.
"""

import re

import numpy as np
import pytest

import bpcore as bp
from bpcore import nn, optim
from bpcore.nn import functional as F


def params():
    return nn.Linear(2, 2).parameters()


@pytest.mark.parametrize("data", [None, [1.0, None], [[None]]])
def test_tensor_of_none_is_refused(data):
    with pytest.raises(TypeError, match="NoneType"):
        bp.tensor(data)
    with pytest.raises(TypeError, match="NoneType"):
        bp.Tensor(None)


BAD_SETTINGS = [
    (optim.Adam, {"betas": 0.9}, TypeError, "betas must be a pair"),
    (optim.Adam, {"lr": "0.1"}, TypeError, "learning rate must be a number.*str"),
    (optim.SGD, {"lr": float("nan")}, ValueError, "Invalid learning rate value: nan"),
    (optim.SGD, {"lr": float("inf")}, ValueError, "Invalid learning rate value: inf"),
    (optim.SGD, {"lr": -0.1}, ValueError, "Invalid learning rate value: -0.1"),
    (optim.Adam, {"betas": (1.5, 0.9)}, ValueError, "Invalid beta parameter at index 0: 1.5"),
    (optim.Adam, {"betas": (0.9, 1.0)}, ValueError, "Invalid beta parameter at index 1: 1.0"),
    (optim.Adam, {"betas": (0.9, "0.99")}, TypeError, r"betas\[1\] must be a number"),
    (optim.Adam, {"eps": -1}, ValueError, "Invalid epsilon value: -1"),
    (optim.AdamW, {"weight_decay": -0.01}, ValueError, "Invalid weight_decay value"),
    (optim.SGD, {"lr": 0.1, "momentum": -1}, ValueError, "Invalid momentum value: -1"),
    (optim.RMSprop, {"alpha": 1.5}, ValueError, "Invalid alpha value: 1.5"),
    (optim.Adagrad, {"lr_decay": -1}, ValueError, "Invalid lr_decay value"),
    (optim.SGD, {"lr": True}, TypeError, "learning rate must be a number"),
]


@pytest.mark.parametrize(("cls", "settings", "error", "message"), BAD_SETTINGS)
def test_optimizer_hyperparameters_are_checked_at_construction(cls, settings, error, message):
    with pytest.raises(error, match=message):
        cls(params(), **settings)


def test_good_hyperparameters_still_work():
    for cls, settings in [
        (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
        (optim.Adam, {"lr": 1e-3, "betas": [0.8, 0.99], "eps": 0.0}),
        (optim.AdamW, {"lr": np.float64(0.01)}),
        (optim.RMSprop, {"lr": 0, "alpha": 0.9, "centered": True}),
        (optim.Adagrad, {"lr": 1}),
    ]:
        cls(params(), **settings)


@pytest.mark.parametrize("max_norm", [-1, float("nan"), "1"])
def test_clip_grad_norm_refuses_a_bad_max_norm(max_norm):
    with pytest.raises(ValueError, match="max_norm must be a number >= 0"):
        optim.clip_grad_norm_(params(), max_norm=max_norm)
    with pytest.raises(ValueError, match="clip_value must be a number >= 0"):
        optim.clip_grad_value_(params(), clip_value=max_norm)


def test_clip_grad_norm_with_an_infinite_cap_only_measures():
    p = bp.tensor([3.0, 4.0], requires_grad=True)
    p.grad = np.array([3.0, 4.0])
    assert optim.clip_grad_norm_([p], float("inf")) == 5.0 and p.grad.tolist() == [3.0, 4.0]


def test_the_model_itself_is_not_its_parameters():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    with pytest.raises(TypeError, match=r"pass model.parameters\(\).*Sequential"):
        optim.SGD(model, lr=0.1)
    with pytest.raises(TypeError, match="got a Tensor"):
        optim.Adam(bp.tensor([1.0], requires_grad=True))
    with pytest.raises(TypeError, match=r"iterable of Tensors.*int"):
        optim.SGD(3, lr=0.1)


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((-1, 2), ValueError, "in_features must be >= 0, got -1"),
        ((2, -3), ValueError, "out_features must be >= 0, got -3"),
        ((2.5, 2), TypeError, "in_features must be an integer.*float"),
        (("2", 2), TypeError, "in_features must be an integer.*str"),
    ],
)
def test_linear_sizes_are_checked(args, error, message):
    with pytest.raises(error, match=message):
        nn.Linear(*args)


def test_linear_of_size_zero_and_numpy_ints_still_work():
    assert nn.Linear(np.int64(3), 0).weight.shape == (0, 3)


@pytest.mark.parametrize("layer", [nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 1)), nn.Tanh(), nn.MSELoss()])
def test_a_python_list_given_to_a_layer_is_named(layer):
    with pytest.raises(TypeError, match=r"must be a Tensor, not list; make one with bp.tensor"):
        layer([[1.0, 2.0]]) if not isinstance(layer, nn.MSELoss) else layer([1.0], bp.tensor([1.0]))


def test_f_linear_refuses_a_list_as_pytorch_does():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match=r"linear\(\): argument 'input' \(position 1\) must be Tensor, not list"):
        F.linear([[1.0, 2.0]], layer.weight, layer.bias)


def test_softmax_over_an_empty_axis_is_empty_as_in_pytorch():
    for x in (bp.zeros(2, 0, requires_grad=True), bp.zeros(0, 3, requires_grad=True)):
        for op in (F.softmax, F.log_softmax):
            out = op(x, axis=1)
            assert out.shape == x.shape
            out.sum().backward()
            assert x.grad.shape == x.shape


def test_cross_entropy_on_an_empty_batch_or_zero_classes():
    with pytest.raises(ValueError, match=r"the batch is empty \(scores of shape \(0, 3\)\)"):
        F.cross_entropy(bp.zeros(0, 3), np.zeros(0, dtype=int))
    with pytest.raises(ValueError, match="0 classes"):
        F.cross_entropy(bp.zeros(2, 0), np.zeros(2, dtype=int))
    assert F.cross_entropy(bp.zeros(0, 3), np.zeros(0, dtype=int), reduction="sum").item() == 0.0


def test_mse_loss_with_numpy_predictions_says_the_gradient_is_lost():
    with pytest.raises(TypeError, match="must be Tensor, not ndarray; a numpy array carries no gradient"):
        F.mse_loss(np.zeros(3), bp.tensor(np.zeros(3)))
    with pytest.raises(TypeError, match="not list"):
        F.mse_loss([0.0], bp.tensor([0.0]))


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.RMSprop, optim.Adagrad])
@pytest.mark.parametrize("shape", [(3,), (2, 1), (1, 2, 2)])
def test_a_wrong_shape_grad_is_refused_at_step(cls, shape):
    layer = nn.Linear(2, 2)
    opt = cls(layer.parameters(), lr=0.1)
    before = layer.weight.data.copy()
    layer.weight.grad = np.ones(shape)
    with pytest.raises(ValueError, match=re.escape(f"parameter 0 has shape (2, 2) but its .grad has shape {shape}")):
        opt.step()
    assert np.array_equal(layer.weight.data, before)  # nothing was changed
