"""A leaf keeps the array its VJP returned as its ``.grad`` (no copy), unless anything else can see it.

Adopting saves a copy per leaf per step; these tests pin down that it can never alias: two
leaves, a saved array, the upstream gradient, a hook's argument or the caller's seed never end up
sharing memory with a ``.grad`` that is later changed in place.
"""

import weakref

import numpy as np

import bpcore as bp


def _independent(a: np.ndarray, b: np.ndarray) -> bool:
    return not np.shares_memory(a, b)


def test_a_fresh_vjp_output_becomes_the_leaf_gradient_itself():
    made = []

    @bp.primitive("double")
    def double(x):
        def vjp(g):
            out = g * 2.0
            made.append(weakref.ref(out))  # a weak reference: the engine sees no other holder
            return out

        return x * 2.0, (vjp,)

    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    double(x).backward(np.ones(3))
    assert x.grad is made[0]()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_two_leaves_fed_the_same_upstream_gradient_get_their_own_arrays():
    a = bp.tensor([1.0, 2.0], requires_grad=True)
    b = bp.tensor([3.0, 4.0], requires_grad=True)
    (a + b).backward(np.array([1.0, 1.0]))  # add's VJPs both return g itself
    assert _independent(a.grad, b.grad)
    a.grad += 10.0
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])


def test_clipping_in_place_scales_each_gradient_once():
    a = bp.tensor([3.0, 0.0], requires_grad=True)
    b = bp.tensor([0.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    bp.nn.utils.clip_grad_norm_([a, b], max_norm=1.0)  # the norm is 2: each .grad *= 0.5, in place
    np.testing.assert_allclose(a.grad, [0.5, 0.5], rtol=1e-5)
    np.testing.assert_allclose(b.grad, [0.5, 0.5], rtol=1e-5)


def test_a_saved_array_returned_by_a_vjp_is_copied_not_adopted():
    saved = np.array([5.0, 6.0])

    @bp.primitive("constant_slope")
    def constant_slope(x):
        return x * saved, (lambda g: saved,)  # (a wrong VJP, but a legal one to write)

    x = bp.tensor([1.0, 1.0], requires_grad=True)
    constant_slope(x).backward(np.ones(2))
    assert _independent(x.grad, saved)
    constant_slope(x).backward(np.ones(2))  # accumulation adds into .grad in place
    np.testing.assert_array_equal(x.grad, [10.0, 12.0])
    np.testing.assert_array_equal(saved, [5.0, 6.0])


def test_the_seed_passed_to_backward_stays_the_callers():
    seed = np.array([1.0, 2.0])
    x = bp.tensor([0.0, 0.0], requires_grad=True)
    x.backward(seed)  # the root is the leaf: its gradient is the seed
    y = bp.tensor([0.0, 0.0], requires_grad=True)
    (y + 0.0).backward(seed)  # add passes the seed on unchanged
    x.grad += 1.0
    y.grad += 1.0
    np.testing.assert_array_equal(seed, [1.0, 2.0])


def test_a_view_of_the_upstream_gradient_is_not_adopted():
    x = bp.tensor([[1.0, 2.0]], requires_grad=True)
    w = bp.tensor([[1.0, 2.0]], requires_grad=True)
    h = x.reshape(2) * 1.0  # reshape's VJP returns a view of g
    out = h + w.reshape(2)
    upstream = np.array([1.0, 1.0])
    out.backward(upstream)
    assert _independent(x.grad, w.grad) and _independent(x.grad, upstream)
    x.grad *= 3.0
    np.testing.assert_array_equal(w.grad, [[1.0, 1.0]])


def test_a_gradient_a_hook_kept_is_not_adopted():
    seen = []
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: seen.append(g))
    (x * 3.0).sum().backward()
    x.grad += 1.0
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad, [4.0, 4.0])


def test_an_array_a_hook_returns_and_keeps_is_not_adopted():
    replacement = np.array([7.0, 7.0])
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: replacement)
    (x * 3.0).sum().backward()
    x.grad += 1.0
    np.testing.assert_array_equal(replacement, [7.0, 7.0])


def test_a_retained_intermediate_and_its_leaf_do_not_share_a_gradient():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2.0
    h.retain_grad()
    (h + 0.0).backward(np.ones(2))
    h.grad += 100.0
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_accumulation_over_steps_with_sgd_updates_stays_exact():
    a = bp.tensor([1.0, 2.0], requires_grad=True)
    b = bp.tensor([3.0, 4.0], requires_grad=True)
    optimizer = bp.optim.SGD([a, b], lr=0.5)
    for _ in range(2):  # two backward passes into the same .grad, then one step
        (a * 2.0 + b).sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])
    np.testing.assert_array_equal(b.grad, [2.0, 2.0])
    optimizer.step()
    np.testing.assert_array_equal(a.data, [-1.0, 0.0])
    np.testing.assert_array_equal(b.data, [2.0, 3.0])
