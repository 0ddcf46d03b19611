"""A recorded graph holds no reference cycle: it is freed by reference counting the moment its last
tensor goes away, with the cyclic garbage collector off (so it never waits for, or depends on, it)."""

import gc
import sys
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


# ---------------------------------------------------------------- what the cyclic collector must rescan
# The collector scans every object it tracks, again in each full pass, for as long as a graph lives: a
# recorded op should leave it only its output tensor and the tuple of that op's inputs (the tuples of
# saved arrays and input positions hold no object it tracks, so it drops them when it first looks at
# them: a tuple is dropped once the tuples inside it are, so a nested one may take a second pass).

import pytest  # noqa: E402

from bpcore.tensor import pace_full_collections  # noqa: E402

_NODES = 500
_BIAS = bp.tensor(np.zeros(3), requires_grad=True)
_ROUNDS = {
    "mul": lambda y, w: y * 1.01,
    "add": lambda y, w: y + 1.0,
    "sub": lambda y, w: y - 1.0,
    "div": lambda y, w: y / 1.01,
    "pow": lambda y, w: y**1.0,
    "neg": lambda y, w: -y,
    "tanh": lambda y, w: y.tanh(),
    "exp": lambda y, w: (y * 0.0).exp(),
    "relu": lambda y, w: y.relu(),
    "sigmoid": lambda y, w: y.sigmoid(),
    "matmul": lambda y, w: y @ w,
    "linear": lambda y, w: bp.nn.functional.linear(y, w, _BIAS),
    "sum": lambda y, w: y.sum(dim=0, keepdim=True) * np.ones((1, 3)),
    "softmax": lambda y, w: bp.nn.functional.softmax(y, dim=1),
    "reshape": lambda y, w: y.reshape(3, 2).reshape(2, 3),
    "transpose": lambda y, w: y.transpose(0, 1).transpose(0, 1),
}  # (not indexing: a slice is itself an object the collector tracks, kept in the op's settings)
_TWO_OPS = ("exp", "sum", "reshape", "transpose")  # rounds that record two ops


def _tracked_objects_left_per_op(step) -> float:
    x = bp.tensor(np.full((2, 3), 0.5), requires_grad=True)
    w = bp.tensor(np.eye(3), requires_grad=True)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        y = step(x, w)  # the first op: any one-time objects come before the count
        gc.collect()  # (also untracks tuples that hold only untracked objects)
        gc.collect()
        before = len(gc.get_objects())
        for _ in range(_NODES):
            y = step(y, w)
        gc.collect()
        gc.collect()
        return (len(gc.get_objects()) - before) / _NODES
    finally:
        if was_enabled:
            gc.enable()


@pytest.mark.parametrize("op", list(_ROUNDS))
def test_a_recorded_op_leaves_the_garbage_collector_at_most_its_tensor_and_inputs(op):
    per_op = _tracked_objects_left_per_op(_ROUNDS[op])
    nodes_per_round = 2 if op in _TWO_OPS else 1
    assert per_op <= 2 * nodes_per_round + 0.05, (
        f"each '{op}' in a growing graph left {per_op:.2f} objects that the cyclic garbage collector tracks; "
        f"expected at most {2 * nodes_per_round} per round (the output Tensor and its inputs tuple per op): "
        "closures, cells or lists made per node are rescanned by every full collection while the graph lives"
    )


def test_a_graph_of_declared_vjps_still_backpropagates_after_the_collector_untracked_its_saved_arrays():
    x = bp.tensor([0.5, -1.0], requires_grad=True)
    y = (x * 3.0).tanh()
    gc.collect()
    assert not gc.is_tracked(y._saved), "the tuple of arrays tanh saved should no longer be tracked"
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 3.0 * (1 - np.tanh(3.0 * np.array([0.5, -1.0])) ** 2))


def test_cycles_made_by_user_code_next_to_a_graph_are_still_collected():
    class Holder:
        pass

    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = x
    for _ in range(200):
        y = y * 1.01
    a, b = Holder(), Holder()
    a.other, b.other, a.graph = b, a, y  # a cycle that keeps the graph alive
    watched = weakref.ref(y)
    del a, b, y
    gc.collect()
    assert watched() is None, "a reference cycle holding a graph was not collected by gc.collect()"


# ---------------------------------------------------------------- how often the collector rescans a growing graph
# (bpcore.tensor._FullPassPacing: while tensors are being made, a full pass waits until the memory in use has about
# doubled, not grown by a quarter; the thresholds go back to the user's when no tensor was made between two passes)


@pytest.fixture
def thresholds():
    """The collector's thresholds as the user had them, restored after the test (whatever it set)."""
    before = pace_full_collections.user_thresholds
    yield before
    gc.set_threshold(*before)
    gc.collect()
    gc.collect()  # a full pass with no tensor made since the last: the pacing keeps the restored ones
    assert gc.get_threshold() == before


def _full_passes_while_recording(nodes: int) -> int:
    passes = []

    def count(phase, info):
        if phase == "start" and info["generation"] == 2:
            passes.append(1)

    x = bp.tensor(np.ones(4), requires_grad=True)
    y = x * 1.0
    gc.collect()  # every test starts from the same point: just after a full pass
    gc.callbacks.append(count)
    try:
        for _ in range(nodes - 1):
            y = y * 1.0
    finally:
        gc.callbacks.remove(count)
    return len(passes)


def test_recording_a_big_graph_takes_few_full_passes_of_the_collector(thresholds):
    # CPython alone starts one each time the surviving objects grew by a quarter: about 9 here (16 for 10^6 nodes),
    # each rescanning the whole graph, so the time per node grew with the graph
    passes = _full_passes_while_recording(300_000)
    assert passes <= 3, (
        f"recording a chain of 300,000 nodes ran {passes} full passes of the cyclic garbage collector; expected "
        "at most 3 (a full pass once the memory in use has about doubled): each one rescans every node of the graph"
    )


def test_cycles_that_reached_the_oldest_generation_are_freed_while_a_graph_is_recorded(thresholds):
    class Holder:
        pass

    x = bp.tensor(np.ones(4), requires_grad=True)
    y = x * 1.0
    for _ in range(2 * pace_full_collections.RECORDING):  # a graph is being recorded: the pacing is on
        y = y * 1.0
    a, b = Holder(), Holder()
    a.other, b.other = b, a
    watched = weakref.ref(a)
    gc.collect()  # the cycle survives it (still referenced): it now waits in the oldest generation
    del a, b
    assert gc.get_threshold()[2] > pace_full_collections.user_thresholds[2], "the pacing should be on here"
    blocks = sys.getallocatedblocks()  # the pacing's bound: at most this many allocations before the next full pass
    nodes = 0
    while watched() is not None and nodes < blocks:  # each node allocates two objects the collector tracks
        y = y * 1.0
        nodes += 1
    assert watched() is None, (
        f"a garbage cycle in the collector's oldest generation was still alive after recording {nodes:,} nodes "
        f"({2 * nodes:,} tracked allocations, more than the {blocks:,} memory blocks in use when it was made)"
    )


def test_the_thresholds_return_to_the_users_when_no_tensor_is_made_between_two_full_passes(thresholds):
    gc.set_threshold(800, 12, 9)  # as a user may set them
    gc.collect()
    assert gc.get_threshold() == (800, 12, 9), "with no graph recorded since the last full pass, the user's stay"
    x = bp.tensor(np.ones(4), requires_grad=True)
    y = x * 1.0
    for _ in range(5_000):
        y = y * 1.0
    gc.collect()
    young, middle, oldest = gc.get_threshold()
    assert (young, middle) == (800, 12) and oldest > 9, (
        f"while a graph is recorded only the oldest generation's threshold should rise, got {(young, middle, oldest)}"
    )
    del x, y
    gc.collect()
    assert gc.get_threshold() == (800, 12, 9), (
        f"after a full pass with no tensor made since the one before, the thresholds should be the user's "
        f"(800, 12, 9) again, got {gc.get_threshold()}"
    )


_TWO_COPIES = """
import gc, sys
import numpy as np
import bpcore as first
gc.set_threshold(700, 10, 10)
model = first.nn.Linear(4, 4)
for name in [name for name in sys.modules if name == "bpcore" or name.startswith("bpcore.")]:
    del sys.modules[name]  # bpcore imported a second time, the first copy still in use
import bpcore as second
pacings = [c for c in gc.callbacks if type(c).__name__ == "_FullPassPacing"]
def record(bp, n):
    y = bp.tensor(np.ones(4), requires_grad=True)
    for _ in range(n):
        y = y * 1.0
    return y
for k in range(4):  # both copies record graphs between full passes
    a, b = record(first, 3_000 + 2_000 * k), record(second, 60_000 + 20_000 * k)
    gc.collect()
    del a, b
gc.collect(); gc.collect()  # full passes with no tensor made since the one before
print(len(pacings), *gc.get_threshold())
"""


def test_importing_bpcore_twice_keeps_one_pacing_and_gives_the_users_thresholds_back():
    # two pacings recording at once each took the other's raised threshold for the user's: it stayed raised
    import subprocess

    done = subprocess.run([sys.executable, "-c", _TWO_COPIES], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    pacings, *thresholds = map(int, done.stdout.split())
    assert pacings == 1 and tuple(thresholds) == (700, 10, 10), (
        f"after importing bpcore twice and recording with both copies, expected one pacing hook in gc.callbacks "
        f"and the user's thresholds (700, 10, 10) back once no tensor is made; got {pacings} hook(s) and "
        f"{tuple(thresholds)}"
    )


def _record(nodes: int):
    y = bp.tensor(np.ones(4), requires_grad=True)
    for _ in range(nodes):
        y = y * 1.0
    return y


def test_thresholds_the_user_sets_while_a_graph_is_recorded_are_the_ones_given_back(thresholds):
    y = _record(5_000)
    gc.collect()
    assert gc.get_threshold()[2] > thresholds[2], "the pacing should be on here"
    gc.set_threshold(900, 11, 7)  # set while the pacing's raised threshold is in force
    y = _record(5_000)
    gc.collect()
    young, middle, oldest = gc.get_threshold()
    assert (young, middle) == (900, 11) and oldest > 7, (
        f"the user's new thresholds (900, 11, 7) with only the oldest raised were expected, "
        f"got {(young, middle, oldest)}"
    )
    del y
    gc.collect()
    assert gc.get_threshold() == (900, 11, 7), (
        f"once no tensor is made between two full passes the thresholds set while recording, (900, 11, 7), "
        f"should be back; got {gc.get_threshold()}"
    )


def test_the_pacing_leaves_a_disabled_collector_disabled(thresholds):
    gc.disable()
    try:
        y = _record(5_000)
        gc.collect()  # a full pass asked for explicitly runs the callbacks
        raised = gc.get_threshold()
        del y
        gc.collect()
        assert not gc.isenabled(), "the pacing enabled the collector the user had disabled"
    finally:
        gc.enable()
    assert raised[2] > thresholds[2] and gc.get_threshold() == thresholds, (
        f"with the collector disabled, expected a raised oldest threshold while recording and {thresholds} "
        f"after; got {raised} and {gc.get_threshold()}"
    )


def test_a_graph_recorded_in_another_thread_paces_and_gives_the_thresholds_back(thresholds):
    import threading

    seen = []

    def work():
        y = _record(5_000)
        gc.collect()  # the callbacks run in this thread
        seen.append(gc.get_threshold())
        del y

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    gc.collect()
    assert seen and seen[0][2] > thresholds[2] and gc.get_threshold() == thresholds, (
        f"a graph recorded in a thread: expected a raised oldest threshold, then {thresholds} back; "
        f"got {seen} and {gc.get_threshold()}"
    )


def test_a_cycle_in_the_oldest_generation_is_freed_after_recording_stopped(thresholds):
    # the raised threshold stays until the next full pass: that pass still comes, once the program has
    # allocated about as many objects as it held (here: plain lists, no tensor)
    class Holder:
        pass

    y = _record(2 * pace_full_collections.RECORDING)
    gc.collect()
    del y  # recording is over, the raised threshold still in force
    assert gc.get_threshold()[2] > thresholds[2], "the pacing should be on here"
    a, b = Holder(), Holder()
    a.other, b.other = b, a
    watched = weakref.ref(a)
    gc.collect(1)  # the cycle survives a middle pass (still referenced): it is now in the oldest generation
    del a, b
    blocks = sys.getallocatedblocks()
    kept = []
    while watched() is not None and len(kept) < 2 * blocks:
        kept.append([])
    made = len(kept)
    del kept
    assert watched() is None, (
        f"a garbage cycle in the oldest generation was still alive after {made:,} allocations of tracked "
        f"objects once recording had stopped (the bound: about the {blocks:,} memory blocks in use)"
    )
