"""A recorded graph holds no reference cycle: it is freed by reference counting the moment its last
tensor goes away, with the cyclic garbage collector off (so it never waits for, or depends on, it)."""

import gc
import weakref

import numpy as np

import bpcore as bp


def _freed_without_the_collector(make_graph) -> bool:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        loss, inner = make_graph()
        watched = [weakref.ref(t) for t in inner]
        del loss, inner
        return all(ref() is None for ref in watched)
    finally:
        if was_enabled:
            gc.enable()


def test_an_mlp_graph_is_freed_after_backward_when_the_loss_goes_out_of_scope():
    def make_graph():
        model = bp.nn.Sequential(bp.nn.Linear(3, 4), bp.nn.Tanh(), bp.nn.Linear(4, 2))
        x = bp.tensor(np.ones((5, 3)))
        hidden = model[0](x)
        logits = model[2](model[1](hidden))
        loss = bp.nn.functional.cross_entropy(logits, np.array([0, 1, 0, 1, 1]))
        loss.backward()
        return loss, [hidden, logits]

    assert _freed_without_the_collector(make_graph)


def test_a_long_chain_with_hooks_and_retained_gradients_is_freed():
    def make_graph():
        x = bp.tensor([1.0, 2.0], requires_grad=True)
        y = x
        kept = []
        for step in range(200):
            y = (y * 1.01).tanh()
            if step % 50 == 0:
                y.retain_grad()
                y.register_hook(lambda g: None)
                kept.append(y)
        loss = y.sum()
        loss.backward()
        return loss, kept

    assert _freed_without_the_collector(make_graph)
